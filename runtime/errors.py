"""Runtime errors (namespaces, mounts, cgroups, processes). See the tree in specs/errors.py.

::

    EnvctlError
    └── ContainerError               exit 1
        ├── SyscallError             a syscall failed: ``mount /dev/pts: Operation not permitted``
        ├── UnsupportedHost          the kernel/host forbids a feature; hint names the setting
        ├── ContainerNotFound        no such running environment/container id
        └── ContainerStateError      the container is not in a state that allows the operation
"""

from __future__ import annotations

import os

from specs.errors import EnvctlError

__all__ = ["ContainerError", "SyscallError", "UnsupportedHost", "ContainerNotFound", "ContainerStateError"]


class ContainerError(EnvctlError):
    """Base of runtime failures (exit 1)."""


class SyscallError(ContainerError):
    """A failed syscall, naming the operation, the object and errno.

    Args:
        op: syscall or operation name (``"mount"``, ``"pivot_root"``).
        path: the path or object it was applied to ('' when none).
        errno: the errno value (int).
    """

    def __init__(self, op: str, path: str, errno: int, hint: str | None = None):
        self.op, self.path, self.errno = op, path, errno
        where = f" {path}" if path else ""
        super().__init__(f"{op}{where}: {os.strerror(errno)}", hint)

    @classmethod
    def from_os_error(cls, e: OSError, op: str = "", hint: str | None = None) -> "SyscallError":
        """Convert an ``OSError`` (e.g. ``runtime._sys.SysError``, which carries ``op``/``path``)."""
        return cls(getattr(e, "op", None) or op or "syscall",
                   getattr(e, "path", None) or (str(e.filename) if e.filename else ""),
                   e.errno or 0, hint)


class UnsupportedHost(ContainerError):
    """The host cannot do what was asked (e.g. user namespaces disabled); the hint names the fix."""


class ContainerNotFound(ContainerError):
    """No container/environment with that id."""


class ContainerStateError(ContainerError):
    """The container's state does not allow the operation (e.g. start on a stopped one)."""
