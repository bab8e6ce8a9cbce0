"""Namespaces: flags from config.json, user-namespace ID maps, loopback, joining (setns).

Rootless ID maps go through newuidmap/newgidmap (setuid helpers checking /etc/subuid) when the
config asks for more than the invoking user's own id; a single mapping is written directly
(``setgroups`` denied first, as user_namespaces(7) requires of an unprivileged writer).
"""

from __future__ import annotations

import fcntl
import os
import struct

from runtime import _sys
from runtime.errors import SyscallError, UnsupportedHost

__all__ = ["clone_flags", "write_id_maps", "loopback_up", "join", "NS_FLAGS", "NS_PROC"]

NS_FLAGS = {"pid": _sys.CLONE_NEWPID, "network": _sys.CLONE_NEWNET, "mount": _sys.CLONE_NEWNS,
            "ipc": _sys.CLONE_NEWIPC, "uts": _sys.CLONE_NEWUTS, "user": _sys.CLONE_NEWUSER,
            "cgroup": _sys.CLONE_NEWCGROUP}
# /proc/PID/ns names, in the order nsenter(1) joins them (user first: it grants the caps the rest need)
NS_PROC = (("user", "user"), ("ipc", "ipc"), ("uts", "uts"), ("network", "net"), ("pid", "pid"),
           ("cgroup", "cgroup"), ("mount", "mnt"))

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def clone_flags(config: dict, *, exclude_user: bool = True) -> int:
    """CLONE_NEW* flags for the config's namespaces without a ``path`` (user excluded by default)."""
    flags = 0
    for ns in (config.get("linux") or {}).get("namespaces", ()):
        if ns.get("path") or (exclude_user and ns["type"] == "user"):
            continue
        flags |= NS_FLAGS[ns["type"]]
    return flags


def _fmt(maps) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def _is_self_only(maps, me: int) -> bool:
    return len(maps) == 1 and maps[0]["hostID"] == me and maps[0]["size"] == 1


def write_id_maps(pid: int, uid_maps, gid_maps) -> None:
    """Write uid_map/gid_map of process ``pid`` (which just unshared CLONE_NEWUSER).

    Raises UnsupportedHost when newuidmap is needed but missing, SyscallError on refusal.
    """
    if os.geteuid() == 0 or (_is_self_only(uid_maps, os.getuid()) and _is_self_only(gid_maps, os.getgid())):
        _write_direct(pid, uid_maps, gid_maps, deny_setgroups=os.geteuid() != 0)
        return
    import shutil
    import subprocess

    for tool, maps in (("newgidmap", gid_maps), ("newuidmap", uid_maps)):
        exe = shutil.which(tool) or f"/usr/bin/{tool}"
        if not os.path.exists(exe):
            raise UnsupportedHost(f"{tool} not found for a multi-id user namespace",
                                  hint="apt-get install uidmap (or set ENVCTL_SUBIDS=0 for a single-id mapping); "
                                       "'envctl doctor' checks the rest")
        argv = [exe, str(pid)] + [str(x) for m in maps for x in (m["containerID"], m["hostID"], m["size"])]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise UnsupportedHost(f"{tool} {pid} failed: {r.stderr.strip() or r.returncode}",
                                  hint="check your /etc/subuid and /etc/subgid ranges ('envctl doctor' shows them)")


def _write_direct(pid: int, uid_maps, gid_maps, deny_setgroups: bool) -> None:
    try:
        if deny_setgroups:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(_fmt(gid_maps))
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(_fmt(uid_maps))
    except OSError as e:
        raise SyscallError("write id map", f"/proc/{pid}", e.errno or 0,
                           hint="user namespaces may be disabled; run 'envctl doctor'") from None


def loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (``network: none``). Raises SyscallError."""
    import socket  # only for network: none (socket's import is ~2 ms)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH22x", b"lo", 0)
        try:
            flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
        except OSError as e:
            raise SyscallError("ioctl SIOCSIFFLAGS", "lo", e.errno or 0) from None


def join(pid: int, types, *, pid_for_children: bool = False) -> None:
    """setns into the namespaces ``types`` (OCI names) of ``pid``, user first. Raises SyscallError.

    ``pid_for_children``: take the pid namespace from ``/proc/PID/ns/pid_for_children`` (the
    environment's setup process). A pid namespace join applies to children only: the caller
    forks afterwards.
    """
    fds = []
    try:
        for oci, proc in NS_PROC:
            if oci in types:
                if proc == "pid" and pid_for_children:
                    proc = "pid_for_children"
                try:
                    fds.append((proc, os.open(f"/proc/{pid}/ns/{proc}", os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    raise SyscallError("open namespace", f"/proc/{pid}/ns/{proc}", e.errno or 0) from None
        for proc, fd in fds:
            if proc == "user" and os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user"):
                continue
            try:
                _sys.setns(fd, 0, what=f"/proc/{pid}/ns/{proc}")
            except _sys.SysError as e:
                raise SyscallError.from_os_error(e) from None
    finally:
        for _, fd in fds:
            os.close(fd)
