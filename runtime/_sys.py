"""Leaf syscall bindings (cffi, ABI mode, no compiler): the only module of ours that talks C.

Imports nothing of ours, so ``engine/`` may use it (``openat2`` while unpacking). The cffi
declarations live in ``runtime/_sys_build.py``; the generated out-of-line module
``runtime/_sys_ffi.py`` loads in ~1.3 ms (in-line ``ffi.cdef`` costs ~30 ms of pycparser per
process, which the warm ``envctl run`` path cannot afford).

Errors: every wrapper raises :class:`SysError`, an ``OSError`` subclass carrying ``op`` (the
syscall or operation), ``path`` (the object, '' when none) and ``errno``, rendered as
``mount /dev/pts: Operation not permitted``. Being an ``OSError`` it is caught by ordinary
``except OSError`` code (``e.errno == errno.ENOENT`` works). Callers in ``runtime/`` convert it
with ``runtime.errors.SyscallError.from_os_error(e)``; ``engine/`` maps it to its own errors.

Numbers for the syscalls glibc does not wrap (or wraps only recently) are per architecture:
only x86_64 and aarch64 are supported (``UnsupportedArch`` otherwise, raised on first use).
"""

from __future__ import annotations

import os

from runtime._sys_ffi import ffi

__all__ = [
    "SysError", "unshare", "setns", "mount", "umount2", "pivot_root", "prctl", "capget", "capset",
    "sethostname", "openat2", "mknodat", "mount_setattr", "close_range", "pidfd_open",
    "CAPS", "cap_number", "cap_last", "seccomp_set_filter", "UnsupportedArch",
]

_libc = ffi.dlopen(None)

# <sched.h> clone flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_FS = 0x00000200

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_FORCE = 1
MNT_DETACH = 2

# mount_setattr(2)
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
AT_FDCWD = -100
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# <linux/openat2.h>
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Syscall numbers glibc 2.36 does not wrap (openat2, mount_setattr) or that musl lacks.
_NR = {
    "x86_64": {"pivot_root": 155, "openat2": 437, "mount_setattr": 442, "close_range": 436,
               "pidfd_open": 434},
    "aarch64": {"pivot_root": 41, "openat2": 437, "mount_setattr": 442, "close_range": 436,
                "pidfd_open": 434},
}

# capability(7) numbers, in kernel order.
CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


class SysError(OSError):
    """A failed syscall: ``op`` (str), ``path`` (str, '' when none), ``errno`` (int).

    ``str(e)`` is ``"<op> <path>: <strerror>"``.
    """

    def __init__(self, op: str, path: str, err: int):
        super().__init__(err, os.strerror(err), path or None)
        self.op, self.path = op, path

    def __str__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"{self.op}{where}: {self.strerror}"

    def __reduce__(self):
        return (type(self), (self.op, self.path, self.errno))


class UnsupportedArch(SysError):
    """No syscall number table for this machine (only x86_64 and aarch64 are known)."""


def _check(rc: int, op: str, path: str = "") -> int:
    if rc < 0:
        raise SysError(op, path, ffi.errno)
    return rc


_MACHINE: list[str] = []  # os.uname().machine, looked up once (not once per syscall)


def _nr(name: str) -> int:
    if not _MACHINE:
        _MACHINE.append(os.uname().machine)  # not platform.machine(): importing platform costs ~1 ms
    machine = _MACHINE[0]
    table = _NR.get(machine)
    if table is None:
        import errno
        raise UnsupportedArch(name, machine, errno.ENOSYS)
    return table[name]


def _long(v: int):
    return ffi.cast("long", v)


def _s(v: str | bytes | None):
    if v is None:
        return ffi.NULL
    return os.fsencode(v)


def _str(v) -> str:
    return "" if v is None else os.fsdecode(v)


def unshare(flags: int) -> None:
    """unshare(2) with ``CLONE_*`` flags (int). Raises SysError."""
    _check(_libc.unshare(flags), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0, what: str = "") -> None:
    """setns(2): join the namespace open at ``fd``; ``what`` names it for errors. Raises SysError."""
    _check(_libc.setns(fd, nstype), "setns", what or f"fd {fd}")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2). ``target`` is a path (str). Raises SysError naming the target."""
    d = _s(data)
    rc = _libc.mount(_s(source), _s(target), _s(fstype), flags, d)
    _check(rc, f"mount {fstype}" if fstype else "mount", _str(target))


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2), e.g. ``MNT_DETACH``. Raises SysError."""
    _check(_libc.umount2(_s(target), flags), "umount", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) by syscall number (glibc < 2.36 and musl have no wrapper). Raises SysError."""
    rc = _libc.syscall(_long(_nr("pivot_root")), ffi.new("char[]", os.fsencode(new_root)),
                       ffi.new("char[]", os.fsencode(put_old)))
    _check(rc, "pivot_root", new_root)


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0, what: str = "") -> int:
    """prctl(2) with integer arguments; returns its result (int). Raises SysError."""
    rc = _libc.prctl(option, _long(a2), _long(a3), _long(a4), _long(a5))
    return _check(rc, "prctl", what or str(option))


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Capability sets of ``pid`` (0 = self) as 64-bit masks ``(effective, permitted, inheritable)``."""
    hdr = ffi.new("cap_user_header_t *", {"version": _LINUX_CAPABILITY_VERSION_3, "pid": pid})
    data = ffi.new("cap_user_data_t[2]")
    _check(_libc.capget(hdr, data), "capget", str(pid) if pid else "")
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32) for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets from 64-bit masks. Raises SysError."""
    hdr = ffi.new("cap_user_header_t *", {"version": _LINUX_CAPABILITY_VERSION_3, "pid": 0})
    data = ffi.new("cap_user_data_t[2]")
    for i in (0, 1):
        shift, m = 32 * i, 0xFFFFFFFF
        data[i].effective = (effective >> shift) & m
        data[i].permitted = (permitted >> shift) & m
        data[i].inheritable = (inheritable >> shift) & m
    _check(_libc.capset(hdr, data), "capset")


def sethostname(name: str) -> None:
    """sethostname(2) in the current UTS namespace. Raises SysError."""
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), "sethostname", name)


def openat2(dirfd: int, path: str, flags: int = 0, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` under ``RESOLVE_*`` rules; returns the fd.

    Raises SysError (ENOSYS before Linux 5.6 — callers fall back to an O_NOFOLLOW walk;
    EXDEV/ELOOP when the path would leave the root under RESOLVE_BENEATH/NO_SYMLINKS).
    """
    how = ffi.new("struct open_how *", {"flags": flags, "mode": mode, "resolve": resolve})
    rc = _libc.syscall(_long(_nr("openat2")), ffi.cast("int", dirfd),
                       ffi.new("char[]", os.fsencode(path)), how, ffi.cast("size_t", ffi.sizeof(how[0])))
    return _check(rc, "openat2", _str(path))


def mknodat(dirfd: int, path: str, mode: int, dev: int = 0) -> None:
    """mknodat(2) (``os.mknod`` takes no dirfd on every Python build). Raises SysError."""
    _check(_libc.mknodat(dirfd, os.fsencode(path), mode, dev), "mknod", _str(path))


def mount_setattr(path: str, attr_set: int = 0, attr_clr: int = 0, propagation: int = 0,
                  recursive: bool = True, dirfd: int = AT_FDCWD, flags: int = 0) -> None:
    """mount_setattr(2) (Linux 5.12): e.g. make a whole bind tree read-only (``MS_RDONLY`` on a
    remount does not recurse). Raises SysError."""
    attr = ffi.new("struct mount_attr *", {"attr_set": attr_set, "attr_clr": attr_clr,
                                           "propagation": propagation})
    f = flags | (AT_RECURSIVE if recursive else 0)
    rc = _libc.syscall(_long(_nr("mount_setattr")), ffi.cast("int", dirfd),
                       ffi.new("char[]", os.fsencode(path)), ffi.cast("unsigned int", f), attr,
                       ffi.cast("size_t", ffi.sizeof(attr[0])))
    _check(rc, "mount_setattr", path)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """close_range(2) (Linux 5.9). Raises SysError (ENOSYS on older kernels)."""
    rc = _libc.syscall(_long(_nr("close_range")), ffi.cast("unsigned int", first),
                       ffi.cast("unsigned int", last), ffi.cast("unsigned int", flags))
    _check(rc, "close_range")


def pidfd_open(pid: int) -> int:
    """pidfd_open(2); returns a pidfd (int). Raises SysError."""
    rc = _libc.syscall(_long(_nr("pidfd_open")), ffi.cast("int", pid), ffi.cast("unsigned int", 0))
    return _check(rc, "pidfd_open", str(pid))


def seccomp_set_filter(program: bytes) -> None:
    """Install a classic-BPF seccomp filter (``program``: packed ``struct sock_filter`` array) for
    this thread: ``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)``. Raises SysError."""
    buf = ffi.new("char[]", program)
    fprog = ffi.new("struct sock_fprog *", {"len": len(program) // 8, "filter": ffi.cast("void *", buf)})
    rc = _libc.prctl(22, _long(2), ffi.cast("void *", fprog))  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    _check(rc, "prctl", "PR_SET_SECCOMP")


def cap_number(name: str) -> int:
    """Capability number of ``"CAP_CHOWN"``/``"chown"`` (int). Raises ValueError when unknown."""
    n = name.upper()
    n = n if n.startswith("CAP_") else "CAP_" + n
    try:
        return CAPS.index(n)
    except ValueError:
        raise ValueError(f"unknown capability {name}") from None


_CAP_LAST: list[int] = []  # a kernel constant: read once (PID 1 and the command used to read it 4 times)


def cap_last() -> int:
    """Highest capability number this kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    if not _CAP_LAST:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _CAP_LAST.append(int(f.read()))
        except OSError:
            return len(CAPS) - 1
    return _CAP_LAST[0]
