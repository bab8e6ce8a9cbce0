"""Paths resolved and created inside one directory, never outside it (STYLE.md rule 5).

:class:`ConfinedRoot` hands out directory fds for tar paths: ``openat2(RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`` through ``runtime._sys`` when the kernel has it, else a
component-by-component ``O_NOFOLLOW`` walk that follows symlinks as if the root were ``/`` (umoci
``SecureJoinVFS``, crun ``safe_openat``) and creates missing parents. :func:`lower_lookup` finds a
path in the lower layers of an overlay stack honouring whiteouts and opaque directories.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable

from engine.errors import UnsafeLayer

try:  # the one engine -> runtime import allowed (DESIGN.md); optional: the walk below suffices
    from runtime import _sys as _sys
except Exception:  # pragma: no cover - missing cffi module
    _sys = None

__all__ = ["ConfinedRoot", "clean_name", "join", "lower_lookup", "is_whiteout_dev", "is_opaque",
           "OPAQUE_ROOT", "OPAQUE_ROOTLESS"]

OPAQUE_ROOT = ("trusted.overlay.opaque", "user.overlay.opaque")
OPAQUE_ROOTLESS = ("user.overlay.opaque",)
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40


def clean_name(name: str, what: str) -> list[str]:
    """Split a tar member name into components inside the root; refuse ``..``."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"unpack {what}: entry {name!r} climbs out of the layer with '..'",
                          hint="the image is malformed or hostile; do not use it")
    return parts


def join(parts: list[str]) -> str:
    """Join root-relative path components with ``/`` (list of str -> str, no leading slash)."""
    return "/".join(parts)


def is_whiteout_dev(st: os.stat_result) -> bool:
    """True when ``st`` (os.stat_result) is a 0/0 character device: an overlayfs whiteout
    (kernel overlayfs.rst: whiteouts and opaque directories).
    """
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class ConfinedRoot:
    """Path resolution and creation confined to one directory (fd-based, symlinks scoped)."""

    def __init__(self, path: Path, what: str, on_mkdir: Callable[[list[str]], None]):
        self.path = Path(path)
        self.fd = os.open(self.path, _O_PATH_DIR)
        self.what = what
        self._cache: dict[str, int] = {}
        self._inos: dict[int, int] = {}
        self._on_mkdir = on_mkdir
        self._openat2 = _sys is not None and _probe_openat2(self.fd)

    def close(self) -> None:
        """Drop the cached directory fds and close the root fd. Returns None."""
        self.invalidate()
        os.close(self.fd)

    def invalidate(self) -> None:
        """Forget cached directory fds (after a directory or symlink was removed or replaced)."""
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()
        self._inos.clear()

    def ino(self, fd: int) -> int:
        """Inode number of a directory fd from :meth:`dir_fd` (cached)."""
        ino = self._inos.get(fd)
        if ino is None:
            ino = self._inos[fd] = os.fstat(fd).st_ino
        return ino

    def dir_fd(self, parts: list[str], create: bool) -> int:
        """An O_PATH fd of directory ``parts`` resolved inside the root (cached; do not close)."""
        if not parts:
            return self.fd
        key = join(parts)
        fd = self._cache.get(key)
        if fd is None:
            fd = self._resolve_in_root(parts) if self._openat2 else None
            if fd is None:
                fd = self._walk(parts, create)
            if len(self._cache) >= 512:
                self.invalidate()
            self._cache[key] = fd
        return fd

    def _resolve_in_root(self, parts: list[str]) -> int | None:
        try:
            return _sys.openat2(self.fd, join(parts), _O_PATH_DIR & ~os.O_NOFOLLOW, 0,
                                _sys.RESOLVE_IN_ROOT | _sys.RESOLVE_NO_MAGICLINKS | _sys.RESOLVE_NO_XDEV)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None  # the walk creates missing parents or reports the file in the way
            raise

    def _walk(self, parts: list[str], create: bool) -> int:
        """Component-by-component O_NOFOLLOW walk; symlinks resolved with the root as ``/``."""
        todo = list(reversed(parts))
        done: list[str] = []
        cur = os.dup(self.fd)
        links = 0
        try:
            while todo:
                comp = todo.pop()
                if comp in ("", "."):
                    continue
                if comp == "..":
                    done = done[:-1]
                    os.close(cur)
                    cur = self._reopen(done)
                    continue
                try:
                    nxt = os.open(comp, _O_PATH_DIR, dir_fd=cur)
                except OSError as e:
                    if e.errno == errno.ENOENT and create:
                        os.mkdir(comp, 0o755, dir_fd=cur)
                        self._on_mkdir(done + [comp])
                        nxt = os.open(comp, _O_PATH_DIR, dir_fd=cur)
                    elif e.errno in (errno.ENOTDIR, errno.ELOOP):
                        st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                        if not stat.S_ISLNK(st.st_mode):
                            raise UnsafeLayer(f"unpack {self.what}: {join(done + [comp])} is not a "
                                              "directory; cannot create entries below it") from None
                        links += 1
                        if links > _MAX_LINKS:
                            raise UnsafeLayer(f"unpack {self.what}: too many symlinks resolving "
                                              f"{join(parts)}") from None
                        target = os.readlink(comp, dir_fd=cur)
                        if target.startswith("/"):
                            done = []
                            os.close(cur)
                            cur = os.dup(self.fd)
                        todo.extend(reversed(target.split("/")))
                        continue
                    else:
                        raise
                os.close(cur)
                cur = nxt
                done.append(comp)
            return cur
        except BaseException:
            os.close(cur)
            raise

    def _reopen(self, done: list[str]) -> int:
        fd = os.dup(self.fd)
        for comp in done:
            nxt = os.open(comp, _O_PATH_DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd


def _probe_openat2(root_fd: int) -> bool:
    try:
        os.close(_sys.openat2(root_fd, ".", _O_PATH_DIR, 0, _sys.RESOLVE_IN_ROOT))
        return True
    except Exception:
        return False


def lower_lookup(lowers: list[Path], parts: list[str]) -> tuple[Path, os.stat_result] | None:
    """Find ``parts`` in the lower layer roots (top first) honouring whiteouts and opaque dirs.

    Returns (path, lstat) of the topmost visible entry, or None. Paths through a lower symlink
    are not followed (layer tars name real paths).
    """
    for root in lowers:
        p = Path(root)
        for i, comp in enumerate(parts):
            p = p / comp
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                break
            if is_whiteout_dev(st):
                return None
            if i == len(parts) - 1:
                return p, st
            if not stat.S_ISDIR(st.st_mode):
                return None
        else:
            continue
        if _opaque_prefix(Path(root), parts):
            return None
    return None


def _opaque_prefix(root: Path, parts: list[str]) -> bool:
    p = root
    for comp in parts[:-1]:
        p = p / comp
        if not p.is_dir() or p.is_symlink():
            return False
        if is_opaque(p):
            return True
    return False


def is_opaque(path: str | os.PathLike) -> bool:
    """True (bool) when the directory at ``path`` carries an overlayfs opaque marker
    (``trusted.overlay.opaque`` or ``user.overlay.opaque`` = ``y``; kernel overlayfs.rst:
    whiteouts and opaque directories). Unreadable xattrs count as absent; raises nothing.
    """
    for name in OPAQUE_ROOT + OPAQUE_ROOTLESS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False
