"""Filesystem primitives the store is built on: durable renames, removal, ext4 allocation hints.

Leaf module: imports nothing of ours, so every part of the store (and the stages above it) can use
it without an import circle.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["fsync_dir", "remove_tree", "set_topdir"]


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove ``path`` recursively even where modes forbid it (rootless layers hold 0555 dirs)."""
    def onerror(func, p, exc):
        parent = os.path.dirname(p)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, onerror=onerror)
            else:
                os.unlink(p)
        except FileNotFoundError:
            pass
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=onerror)
        else:
            os.unlink(path)


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def set_topdir(path: Path) -> bool:
    """Mark ``path`` as a top of a directory hierarchy (``chattr +T``) for ext2/3/4's Orlov allocator.

    New layer directories are made in ``tmp/``; with the flag each one is placed in a block group
    with many free inodes instead of its parent's group. On a filesystem where other programs
    create and delete many files, the parent's group is full of recently freed inodes that ext4
    (without a journal) skips one inode-table lookup at a time: measured here under that churn,
    unpacking debian:bookworm took 4.5-6.3 s without the flag and 1.9 s with it (kernel time
    3.3 s -> 0.35 s); no difference when the parent's group happens to be clean.
    Best effort: other filesystems ignore or refuse it. Returns True when the flag is set.
    """
    import fcntl
    import struct

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
        if not flags & FS_TOPDIR_FL:
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
