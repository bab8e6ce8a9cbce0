"""Apply one layer tar to an empty directory in overlayfs's on-disk form, never writing outside it.

``tarfile`` only parses members; every path is resolved and created here, inside the root
(STYLE.md rule 5; umoci ``UnpackEntry``, crun ``safe_openat``). Python's extraction filters are
not the boundary (CVE-2025-4517), and ``filter="data"`` would strip setuid bits and refuse the
absolute symlinks real images carry.

Rules (OCI image-spec layer.md, and what containerd/umoci do):

* names are relative to the layer root: a leading ``/`` or ``./`` is dropped; any ``..``
  component refuses the layer (:class:`UnsafeLayer`) — real images never need one;
* parent directories are resolved inside the root: a symlink met on the way is followed as if
  the root were ``/`` (``openat2(RESOLVE_IN_ROOT)`` when the kernel has it, else our own
  component-by-component ``O_NOFOLLOW`` walk), so ``x -> /etc`` then ``x/passwd`` lands in
  ``<root>/etc/passwd``; the final component is never followed: an existing entry is replaced
  (unlinked, or removed recursively) unless both are directories; files are created with
  ``O_CREAT|O_EXCL|O_NOFOLLOW``, never opened for writing through an existing name or link;
* duplicate entries: the last wins; a whiteout never deletes what the same layer wrote
  (umoci ``upperPaths``): ``.wh.NAME`` becomes a 0/0 character device only where the layer has
  nothing; a directory the layer creates over a whiteout, or ``.wh..wh..opq``, becomes opaque
  (``trusted.overlay.opaque=y`` + ``user.overlay.opaque=y`` as root, the ``user.`` one rootless);
* hardlinks: to a file of this layer, a real link; to a file only in a lower layer, a copy —
  layer directories stay independent (gc, fsck and read-only-ness of one never touch another)
  and a link would share the lower inode's metadata with a layer whose tar may set other modes;
* ownership as root; rootless every owner becomes the user and the original uid/gid is kept in
  ``user.rootlesscontainers`` (umoci's protobuf form); devices are skipped rootless (one warning);
  ``trusted.overlay.*``/``user.overlay.*`` xattrs from the tar are dropped (they would steer
  overlayfs: redirects, metacopy);
* directory modes and mtimes are applied at the end (writes inside change mtimes; a 0555 dir
  must stay writable while its contents arrive); no per-file fsync: the caller does one syncfs.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from engine.errors import UnsafeLayer

from engine.layers.confine import (OPAQUE_ROOT, OPAQUE_ROOTLESS, ConfinedRoot, clean_name, is_whiteout_dev,
                            lower_lookup)
from engine.layers.confine import join as _join

__all__ = ["UnpackOptions", "UnpackStats", "unpack_tar", "rootless_owner_xattr", "lower_lookup",
           "OPAQUE_ROOT", "OPAQUE_ROOTLESS", "clean_name"]

ROOTLESS_XATTR = "user.rootlesscontainers"
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
_SMALL = 1 << 20
_PARALLEL_MAX = 256 << 10   # files up to this size are handed to a worker thread with their data
_IN_FLIGHT = 128            # at most this many queued files (bounds memory to ~32 MiB)


@dataclass
class UnpackOptions:
    """How to unpack.

    Attributes:
        rootless: True when not real root (owners mapped to the user, devices skipped).
        opaque_xattrs: xattr names set to ``y`` on opaque directories.
        lowers: callable returning the lower layer roots, top first (may block until they are
            complete); used only for hardlinks into lower layers and implicit parent directories.
        warn: callable receiving one-line warnings.
        what: the layer named in errors, e.g. ``layer sha256:ab12..``.
        workers: threads creating regular files (0: ``ENVCTL_UNPACK_WORKERS`` or 1 = inline;
            measured slower on this 2-core machine under load, see docs/store.md).
    """

    rootless: bool = False
    opaque_xattrs: tuple[str, ...] = OPAQUE_ROOT
    lowers: Callable[[], list[Path]] | None = None
    warn: Callable[[str], None] = lambda msg: None
    what: str = "layer"
    workers: int = 0
    # rootless under a subordinate-id mapping (engine/store/idmap.py): owners of symlinks (no user.*
    # xattrs on links) are collected here by path, and files copied from lower layers get their
    # owner (host ids -> container ids through ``host_owner``) recorded in the xattr
    link_owners: dict | None = None
    host_owner: Callable[[int, int], tuple[int, int]] | None = None


@dataclass
class UnpackStats:
    """Counts from one unpack: ``entries`` (tar members), ``bytes`` (file data written)."""

    entries: int = 0
    bytes: int = 0
    skipped_devices: int = 0
    dropped_xattrs: int = 0
    warnings: list[str] = field(default_factory=list)


def rootless_owner_xattr(uid: int, gid: int) -> bytes:
    """``user.rootlesscontainers`` value: protobuf ``Resource{uint32 uid = 1; uint32 gid = 2}``."""
    return b"\x08" + _varint(uid) + b"\x10" + _varint(gid)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _current_umask() -> int:
    """The process umask without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o777  # unknown: every file gets its explicit fchmod


def _env_workers() -> int:
    """``ENVCTL_UNPACK_WORKERS`` (int >= 1; 1 when unset or empty). Raises StoreError (one line
    naming the setting) for anything else (QA L1: was an internal ValueError)."""
    text = os.environ.get("ENVCTL_UNPACK_WORKERS", "").strip() or "1"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        from engine.errors import StoreError

        raise StoreError(f"ENVCTL_UNPACK_WORKERS={text}: not a number of threads",
                         hint="use a whole number of 1 or more (1 = unpack in one thread), or unset it")
    return n


@dataclass
class _DirMeta:
    mode: int
    uid: int
    gid: int
    mtime: float
    explicit: bool


class _Unpacker:
    """One unpack run; see the module docstring for the rules."""

    def __init__(self, dest: Path, opts: UnpackOptions):
        self.opts = opts
        self.what = opts.what
        self.stats = UnpackStats()
        self.dirs: dict[str, _DirMeta] = {}
        self.whiteouts: set[str] = set()
        self.root = ConfinedRoot(dest, opts.what, self._implicit_dir)
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()
        # directories stay 0700 (no setgid) until finish_dirs, so a new file's owner is our ids
        self._ids = (os.geteuid(), os.getegid())
        self._umask = _current_umask()
        workers = opts.workers or _env_workers()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="envctl-unpack") if workers > 1 else None
        self._slots = threading.BoundedSemaphore(_IN_FLIGHT)
        self.pending: dict[tuple[int, str], Future] = {}
        self.pending_paths: set[str] = set()

    # ---- driver
    def run(self, stream: BinaryIO) -> UnpackStats:
        # Workers need the GIL back after every syscall while this thread parses the tar; at the
        # default 5 ms switch interval they convoy behind it and parallelism makes things slower.
        old_interval = sys.getswitchinterval()
        if self.pool:
            sys.setswitchinterval(min(old_interval, 0.0002))
        try:
            # tarfile's stream reader re-slices its whole buffer on every 512-byte header read:
            # 16 KiB measured 25-40% faster than 1 MiB on debian:bookworm (6,662 entries)
            with tarfile.open(fileobj=stream, mode="r|", bufsize=16 << 10) as tf:
                for m in tf:
                    self.stats.entries += 1
                    try:
                        self.entry(tf, m)
                    except OSError as e:
                        if e.errno is None or isinstance(e, ConnectionError):
                            raise  # the source failed, not the filesystem
                        raise UnsafeLayer(f"unpack {self.what}: entry {m.name!r}: "
                                          f"{e.strerror or e}") from e
                    except (ValueError, OverflowError) as e:  # NUL in a name, absurd mtime/ids
                        raise UnsafeLayer(f"unpack {self.what}: entry {m.name!r}: {e}") from e
            self.barrier()
            self.finish_dirs()
        except tarfile.TarError as e:
            raise UnsafeLayer(f"unpack {self.what}: not a valid tar archive: {e}") from e
        finally:
            if self.pool:
                self.pool.shutdown(wait=True, cancel_futures=True)
                sys.setswitchinterval(old_interval)
            self.root.close()
        return self.stats

    # ---- parallel file creation
    # Regular files (most entries) are created by worker threads: file creation latency, not CPU,
    # is the floor of unpacking (issue 4). Ordering is kept where it matters: an entry whose path,
    # or a prefix of it, is still queued waits for the queue (``barrier``), and so do removals,
    # hardlinks, whiteouts and devices. Workers get their own dup of the parent fd.
    def barrier(self) -> None:
        """Wait for every queued file; re-raise the first worker failure."""
        pending, self.pending = self.pending, {}
        self.pending_paths.clear()
        for fut in pending.values():
            fut.result()

    def _conflicts(self, parts: list[str]) -> bool:
        if not self.pending_paths:
            return False
        return any(_join(parts[:i]) in self.pending_paths for i in range(1, len(parts) + 1))

    def _queued(self, parent: int, name: str) -> bool:
        return bool(self.pending) and (self.root.ino(parent), name) in self.pending

    def warn_once(self, key: str, msg: str) -> None:
        with self._warn_lock:
            if key in self._warned:
                return
            self._warned.add(key)
            self.stats.warnings.append(msg)
            self.opts.warn(msg)

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name, self.what)
        if not parts:
            if not m.isdir():
                raise UnsafeLayer(f"unpack {self.what}: entry {m.name!r} would replace the root "
                                  "directory with a non-directory")
            self.dirs[""] = _DirMeta(m.mode, m.uid, m.gid, m.mtime, True)
            self._xattrs_path(self.root.fd, ".", m, is_link=False)
            return
        name = parts[-1]
        if parts[0].startswith(WH_PREFIX + WH_PREFIX) and parts != [WH_OPAQUE]:
            return  # AUFS metadata at the layer root (.wh..wh.plnk/...): skipped like Docker does
        if self.pending and (self._conflicts(parts) or not (m.isreg() or m.isdir() or m.issym())
                             or name.startswith(WH_PREFIX)):
            self.barrier()
        if name.startswith(WH_PREFIX):
            return self.whiteout(parts)
        parent = self.root.dir_fd(parts[:-1], create=True)
        if self._queued(parent, name):
            self.barrier()
        if m.isdir():
            self.mkdir(parent, parts, m)
        elif m.islnk():
            self.hardlink(parent, parts, m)
        elif m.issym():
            self.replace(parent, parts, want_dir=False)
            os.symlink(m.linkname, name, dir_fd=parent)
            self.meta_path(parent, name, m, is_link=True)
        elif m.isreg():
            self.regular(tf, parent, parts, m)
        elif m.ischr() or m.isblk():
            self.device(parent, parts, m)
        elif m.isfifo():
            self.replace(parent, parts, want_dir=False)
            os.mkfifo(name, 0o600, dir_fd=parent)
            self.meta_path(parent, name, m, is_link=False)
        else:
            self.warn_once(f"type{m.type!r}", f"unpack {self.what}: skipped {m.name!r} of "
                                              f"unsupported tar type {m.type!r}")

    # ---- entry kinds
    def replace(self, parent: int, parts: list[str], want_dir: bool) -> bool:
        """Clear the final name for a new entry; True when an existing directory is kept."""
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if want_dir:
                return True
            self.barrier()
            shutil.rmtree(name, dir_fd=parent)
            prefix = _join(parts)
            self.dirs = {k: v for k, v in self.dirs.items() if k != prefix and not k.startswith(prefix + "/")}
            self.root.invalidate()
        else:
            os.unlink(name, dir_fd=parent)
            if stat.S_ISLNK(st.st_mode):
                self.root.invalidate()
        return False

    def mkdir(self, parent: int, parts: list[str], m: tarfile.TarInfo) -> None:
        name, key = parts[-1], _join(parts)
        if not self.replace(parent, parts, want_dir=True):
            os.mkdir(name, 0o700, dir_fd=parent)
        self.dirs[key] = _DirMeta(m.mode, m.uid, m.gid, m.mtime, True)
        if key in self.whiteouts:  # the layer whited out a lower NAME and made its own dir
            self.set_opaque(parent, name)
        self._xattrs_path(parent, name, m, is_link=False)

    def _implicit_dir(self, parts: list[str]) -> None:
        self.dirs.setdefault(_join(parts), _DirMeta(0o755, 0, 0, 0.0, False))

    def regular(self, tf, parent: int, parts: list[str], m: tarfile.TarInfo) -> None:
        name = parts[-1]
        self.replace(parent, parts, want_dir=False)
        if self.pool is not None and m.size <= _PARALLEL_MAX:
            data = tf.extractfile(m).read() if m.size else b""
            self.stats.bytes += m.size
            self._slots.acquire()
            try:
                fut = self.pool.submit(self._create_job, os.dup(parent), name, data, m)
            except BaseException:
                self._slots.release()
                raise
            self.pending[(self.root.ino(parent), name)] = fut
            self.pending_paths.add(_join(parts))
            return
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     m.mode & 0o777, dir_fd=parent)
        try:
            if m.size:
                src = tf.extractfile(m)
                if m.size <= _SMALL:
                    self._write_all(fd, src.read())
                else:
                    while block := src.read(_SMALL):
                        self._write_all(fd, block)
                self.stats.bytes += m.size
            self.meta_fd(fd, m)
        finally:
            os.close(fd)

    def _create_job(self, parent: int, name: str, data: bytes, m: tarfile.TarInfo) -> None:
        """Worker: create one regular file in ``parent`` (an fd this job owns and closes)."""
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         m.mode & 0o777, dir_fd=parent)
            try:
                if data:
                    self._write_all(fd, data)
                self.meta_fd(fd, m)
            finally:
                os.close(fd)
        except (OSError, ValueError, OverflowError) as e:
            raise UnsafeLayer(f"unpack {self.what}: entry {m.name!r}: {getattr(e, 'strerror', None) or e}") from e
        finally:
            os.close(parent)
            self._slots.release()

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def hardlink(self, parent: int, parts: list[str], m: tarfile.TarInfo) -> None:
        target = clean_name(m.linkname, self.what)
        if not target:
            raise UnsafeLayer(f"unpack {self.what}: hardlink {m.name!r} points at the root directory")
        try:
            tparent = self.root.dir_fd(target[:-1], create=False)
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise UnsafeLayer(f"unpack {self.what}: hardlink {m.name!r} points at directory {m.linkname!r}")
        if _join(target) == _join(parts):
            return  # a link to itself: already there
        if st is not None and not is_whiteout_dev(st):
            self.replace(parent, parts, want_dir=False)
            os.link(target[-1], parts[-1], src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
            return
        found = None if st is not None else lower_lookup(self.opts.lowers() if self.opts.lowers else [], target)
        if found is None or stat.S_ISDIR(found[1].st_mode):
            raise UnsafeLayer(f"unpack {self.what}: hardlink {m.name!r} -> {m.linkname!r}: "
                              "no such file in this layer or the layers below")
        self.replace(parent, parts, want_dir=False)
        self.copy_lower(parent, parts[-1], found[0], found[1])

    def copy_lower(self, parent: int, name: str, src: Path, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), name, dir_fd=parent)
            return
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            with open(src, "rb") as f:
                remaining = st.st_size
                while remaining > 0:
                    n = os.copy_file_range(f.fileno(), fd, remaining)
                    if n == 0:
                        break
                    remaining -= n
            for x in os.listxattr(src, follow_symlinks=False):
                os.setxattr(fd, x, os.getxattr(src, x, follow_symlinks=False))
            if not self.opts.rootless:
                os.fchown(fd, st.st_uid, st.st_gid)
            elif self.opts.host_owner and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                os.setxattr(fd, ROOTLESS_XATTR, rootless_owner_xattr(*self.opts.host_owner(st.st_uid, st.st_gid)))
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            os.utime(fd, ns=(st.st_mtime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)

    def device(self, parent: int, parts: list[str], m: tarfile.TarInfo) -> None:
        if self.opts.rootless:
            self.stats.skipped_devices += 1
            self.warn_once("dev", f"unpack {self.what}: device nodes skipped (rootless), "
                                  f"first: {m.name!r}")
            return
        self.replace(parent, parts, want_dir=False)
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
        os.mknod(parts[-1], kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
        self.meta_path(parent, parts[-1], m, is_link=False)

    def whiteout(self, parts: list[str]) -> None:
        parent = self.root.dir_fd(parts[:-1], create=True)
        name = parts[-1]
        if name == WH_OPAQUE:
            self.set_opaque_dir(parts[:-1])
            return
        if name.startswith(WH_PREFIX + WH_PREFIX):  # AUFS metadata: skipped (entry() too)
            return
        hidden = name[len(WH_PREFIX):]
        if not hidden or hidden in (".", ".."):
            raise UnsafeLayer(f"unpack {self.what}: invalid whiteout {_join(parts)!r}")
        key = _join(parts[:-1] + [hidden])
        try:
            st = os.stat(hidden, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        self.whiteouts.add(key)
        if st is None:
            os.mknod(hidden, stat.S_IFCHR | 0o600, 0, dir_fd=parent)
        elif stat.S_ISDIR(st.st_mode):
            self.set_opaque(parent, hidden)  # same-layer dir stays; the lower one is hidden
        # an existing non-directory written by this layer already hides the lower entry

    def set_opaque_dir(self, parts: list[str]) -> None:
        if not parts:
            self._set_opaque_fd(self.root.fd, ".")
            return
        parent = self.root.dir_fd(parts[:-1], create=True)
        self.set_opaque(parent, parts[-1])

    def set_opaque(self, parent: int, name: str) -> None:
        self._set_opaque_fd(parent, name)

    def _set_opaque_fd(self, parent: int, name: str) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            for x in self.opts.opaque_xattrs:
                os.setxattr(fd, x, b"y")
        finally:
            os.close(fd)

    # ---- metadata
    def meta_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        """Owner, xattrs, mode (after chown: chown clears setuid), mtime on an open file."""
        if self.opts.rootless:
            if m.uid or m.gid:
                os.setxattr(fd, ROOTLESS_XATTR, rootless_owner_xattr(m.uid, m.gid))
        elif (m.uid, m.gid) != self._ids:  # new files are ours already: skip the syscall
            os.fchown(fd, m.uid, m.gid)
        self._xattrs(lambda k, v: os.setxattr(fd, k, v), m, is_link=False)
        if m.mode & 0o7777 != m.mode & 0o777 & ~self._umask:  # created with mode & ~umask
            os.fchmod(fd, m.mode & 0o7777)
        os.utime(fd, (m.mtime, m.mtime))

    def meta_path(self, parent: int, name: str, m: tarfile.TarInfo, is_link: bool) -> None:
        """Metadata for symlinks, fifos and devices just created by us (never following a link)."""
        if self.opts.rootless:
            if (m.uid or m.gid) and not is_link:
                self._setx_at(parent, name, ROOTLESS_XATTR, rootless_owner_xattr(m.uid, m.gid))
            elif (m.uid or m.gid) and self.opts.link_owners is not None:
                top = os.readlink(f"/proc/self/fd/{self.root.fd}")
                where = os.path.relpath(os.path.join(os.readlink(f"/proc/self/fd/{parent}"), name), top)
                self.opts.link_owners[where] = (m.uid, m.gid)
        else:
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        self._xattrs_path(parent, name, m, is_link)
        if not is_link:  # Linux has no lchmod; the entry was just created by us and is no link
            os.chmod(name, m.mode & 0o7777, dir_fd=parent)
        os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)

    def _setx_at(self, parent: int, name: str, key: str, value: bytes) -> None:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            os.setxattr(f"/proc/self/fd/{fd}", key, value)
        except OSError as e:
            # user.* xattrs exist only on regular files and directories (xattr(7))
            if not (e.errno == errno.EPERM and key.startswith("user.")):
                raise
            self.stats.dropped_xattrs += 1
        finally:
            os.close(fd)

    def _xattrs_path(self, parent: int, name: str, m: tarfile.TarInfo, is_link: bool) -> None:
        if not m.pax_headers:
            return
        if is_link:
            self._xattrs(lambda k, v: self._setx_link(parent, name, k, v), m, is_link=True)
        else:
            self._xattrs(lambda k, v: self._setx_at(parent, name, k, v), m, is_link=False)

    def _setx_link(self, parent: int, name: str, key: str, value: bytes) -> None:
        raise OSError(errno.EPERM, "xattrs on symlinks are not supported")

    def _xattrs(self, setter, m: tarfile.TarInfo, is_link: bool) -> None:
        for k, v in m.pax_headers.items():
            if not k.startswith("SCHILY.xattr."):
                continue
            key = k[len("SCHILY.xattr."):]
            if key.startswith(("trusted.overlay.", "user.overlay.")) or key == ROOTLESS_XATTR:
                self.stats.dropped_xattrs += 1
                continue
            if (self.opts.rootless and not key.startswith("user.")) or is_link:
                self.stats.dropped_xattrs += 1
                self.warn_once("xattr", f"unpack {self.what}: xattr {key} on {m.name!r} not kept "
                                        f"({'symlink' if is_link else 'rootless'}); further ones silently")
                continue
            value = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v
            setter(key, value)

    def finish_dirs(self) -> None:
        """Apply directory owners, modes and mtimes, deepest first (writes inside change mtimes)."""
        lowers = None
        for key in sorted(self.dirs, key=lambda k: k.count("/") + (1 if k else 0), reverse=True):
            meta = self.dirs[key]
            parts = key.split("/") if key else []
            if not meta.explicit:
                if lowers is None:
                    lowers = self.opts.lowers() if self.opts.lowers else []
                meta = self._implicit_meta(lowers, parts, meta)
            self._apply_dir(parts, meta)

    def _implicit_meta(self, lowers, parts, meta: _DirMeta) -> _DirMeta:
        found = lower_lookup(lowers, parts) if parts else None
        if found and stat.S_ISDIR(found[1].st_mode):
            st = found[1]
            return _DirMeta(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime, False)
        return meta

    def _apply_dir(self, parts: list[str], meta: _DirMeta) -> None:
        try:
            parent = self.root.dir_fd(parts[:-1], create=False) if parts else None
            name = parts[-1] if parts else "."
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=parent if parts else self.root.fd)
        except (FileNotFoundError, NotADirectoryError, UnsafeLayer):
            return
        try:
            if self.opts.rootless:
                if meta.uid or meta.gid:
                    os.setxattr(fd, ROOTLESS_XATTR, rootless_owner_xattr(meta.uid, meta.gid))
            else:
                os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode & 0o7777)
            os.utime(fd, (meta.mtime, meta.mtime))
        finally:
            os.close(fd)


def unpack_tar(stream: BinaryIO, dest: Path, opts: UnpackOptions | None = None) -> UnpackStats:
    """Unpack the uncompressed layer tar ``stream`` into the existing directory ``dest``.

    Args:
        stream: uncompressed tar bytes (read sequentially, never seeked).
        dest: an empty directory that only this call writes (Path).
        opts: :class:`UnpackOptions`.

    Returns:
        :class:`UnpackStats`.

    Raises:
        UnsafeLayer: a member would leave ``dest``, replace the root, or is malformed; OS errors
            are reported as UnsafeLayer naming the layer and the entry.
    """
    return _Unpacker(Path(dest), opts or UnpackOptions()).run(stream)
