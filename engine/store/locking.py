"""File locks on the store, and the one order they are taken in.

``flock(2)`` locks belong to the open file description, so they are released by the kernel when
the process dies (a SIGKILLed ``envctl up`` never leaves a stale lock) and they work across
processes and threads (each :class:`FileLock` opens its own description).

Lock order (always outer to inner, never the reverse, so two envctl processes cannot deadlock):

1. ``locks/store``            shared by ``up``/``fsck``-reads, exclusive by ``gc`` and ``fsck --repair``
2. ``locks/env-<id>``         exclusive while ``up`` composes an environment; shared while it runs
3. ``locks/blob-<hex>``       exclusive while one process downloads that blob
4. ``locks/layer-<chainID>``  exclusive while one process unpacks that layer
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from engine.errors import StoreError

__all__ = ["FileLock", "LockBusy", "is_locked"]


class LockBusy(StoreError):
    """A non-blocking lock attempt found the lock held by another process."""


class FileLock:
    """An flock on ``path`` (created 0644 if missing); use as a context manager.

    Args:
        path: lock file (Path).
        shared: take LOCK_SH instead of LOCK_EX.
        blocking: wait (True) or raise :class:`LockBusy` at once (False).
    """

    def __init__(self, path: Path, *, shared: bool = False, blocking: bool = True):
        self.path = Path(path)
        self.shared = shared
        self.blocking = blocking
        self._fd: int | None = None

    def acquire(self) -> "FileLock":
        """Take the lock. Raises LockBusy (non-blocking and held) or StoreError (cannot open)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"open lock {self.path}: {e.strerror}") from e
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        if not self.blocking:
            op |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, op)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockBusy(f"lock {self.path} is held by another envctl process") from e
            raise StoreError(f"flock {self.path}: {e.strerror}") from e
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock (bool)."""
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(path: Path) -> bool:
    """True when another process holds any flock on ``path`` (probes with a non-blocking LOCK_EX)."""
    if not Path(path).exists():
        return False
    try:
        FileLock(path, blocking=False).acquire().release()
    except LockBusy:
        return True
    return False


__all__.append("is_locked")
