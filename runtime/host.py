"""What this host allows: user namespaces, unprivileged overlay (userxattr), cgroup layout and
delegation, subordinate ids, OCI runtimes. Each finding names the setting to change when it fails
(``envctl doctor`` prints them; the runtime uses them for its error hints)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime import _sys
from runtime.cgroups import CGROUP_ROOT, detect_layout

__all__ = ["Finding", "probe", "userns_hint", "userns_sysctls", "probe_userns", "probe_overlay",
           "probe_overlay_userxattr", "probe_cgroups", "probe_idmap_tools", "probe_subids", "probe_openat2",
           "probe_seccomp", "probe_store", "probe_oci_runtimes", "OK", "WARN", "FAIL"]


OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Finding:
    """One probe result.

    Attributes:
        name: what was probed (``"user namespaces"``).
        ok: True when it works (``status == "ok"``).
        detail: what was seen, one line.
        hint: the exact setting or package to change (None when ok).
        data: machine-readable values (sysctls, paths, layout...).
        status: ``"ok"``, ``"warn"`` (works with a limitation or a fallback) or ``"fail"``
            (envctl cannot work here as this user until it is fixed); default from ``ok``.
    """
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    data: dict = field(default_factory=dict)
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = OK if self.ok else FAIL
        self.ok = self.status == OK

    def to_dict(self) -> dict:
        """JSON form (dict) of every field of the finding (dataclasses.asdict)."""
        return asdict(self)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


USERNS_SYSCTLS = ("/proc/sys/user/max_user_namespaces", "/proc/sys/kernel/unprivileged_userns_clone",
                  "/proc/sys/kernel/apparmor_restrict_unprivileged_userns")


def _sysctl_name(path: str) -> str:
    return path.removeprefix("/proc/sys/").replace("/", ".")


def userns_sysctls() -> dict[str, str]:
    """The user-namespace sysctls this kernel has (name -> value); absent ones are left out."""
    return {_sysctl_name(p): v for p in USERNS_SYSCTLS if (v := _read(p)) is not None}


def userns_hint() -> str:
    """The sysctl that blocks unprivileged user namespaces here, as an actionable hint."""
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "enable them: sysctl -w kernel.unprivileged_userns_clone=1; 'envctl doctor' checks the rest"
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return "enable them: sysctl -w user.max_user_namespaces=15000; 'envctl doctor' checks the rest"
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor restricts them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; "
                "'envctl doctor' checks the rest")
    return ("user namespaces are unavailable; check the kernel's CONFIG_USER_NS and the container's "
            "seccomp policy ('envctl doctor')")


def _blocking_sysctl() -> bool:
    return (_read("/proc/sys/kernel/unprivileged_userns_clone") == "0"
            or _read("/proc/sys/user/max_user_namespaces") == "0"
            or _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")


def _in_child(fn) -> tuple[bool, str]:
    """Run ``fn`` in a forked child (namespaces must not leak into this process)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            fn()
            os.write(w, b"ok")
        except BaseException as e:  # noqa: BLE001
            os.write(w, str(e).encode()[:500])
        os._exit(0)
    os.close(w)
    msg = os.read(r, 600).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return msg == "ok", msg


def probe_userns() -> Finding:
    """Can this process create a user namespace (and thus run rootless)? Required when not root;
    as root a sysctl that blocks unprivileged users is a warning."""
    ok, msg = _in_child(lambda: _sys.unshare(_sys.CLONE_NEWUSER))
    sysctls = userns_sysctls()
    shown = ", ".join(f"{k}={v}" for k, v in sysctls.items())
    if not ok:
        return Finding("user namespaces", False, f"unavailable: {msg} ({shown})", userns_hint(), sysctls,
                       status=WARN if os.geteuid() == 0 else FAIL)
    if os.geteuid() == 0 and _blocking_sysctl():
        return Finding("user namespaces", False, f"root can create them, unprivileged users cannot ({shown})",
                       userns_hint(), sysctls, status=WARN)
    return Finding("user namespaces", True, f"available ({shown})", data=sysctls)


def probe_overlay() -> Finding:
    """Does the kernel offer overlayfs (the ``overlay`` storage driver)?"""
    have = "overlay" in (_read("/proc/filesystems") or "").split()
    forced = os.environ.get("ENVCTL_STORAGE_DRIVER")
    if have:
        note = f"; ENVCTL_STORAGE_DRIVER={forced} in effect" if forced else ""
        return Finding("overlay", True, f"overlayfs available{note}")
    return Finding("overlay", False, "overlayfs not in /proc/filesystems: the copy driver is used (slower, more disk)",
                   "modprobe overlay (and add 'overlay' to /etc/modules-load.d/ to keep it)", status=WARN)


def _overlay_in_userns(base: str) -> None:
    uid, gid = os.getuid(), os.getgid()
    _sys.unshare(_sys.CLONE_NEWUSER | _sys.CLONE_NEWNS)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    for d in ("l", "u", "w", "m"):
        os.mkdir(os.path.join(base, d))
    from runtime.mounts import overlay_options  # the options environments are mounted with

    _sys.mount("overlay", os.path.join(base, "m"), "overlay", 0,
               overlay_options([f"{base}/l"], f"{base}/u", f"{base}/w", userxattr=True))


def probe_overlay_userxattr() -> Finding:
    """Can an unprivileged user namespace mount overlayfs with ``userxattr`` (Linux >= 5.11)?"""
    base = tempfile.mkdtemp(prefix="envctl-probe-")
    try:
        ok, msg = _in_child(lambda: _overlay_in_userns(base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return Finding("rootless overlay", ok, "overlay with userxattr mounts" if ok else msg,
                   None if ok else "needs Linux >= 5.11 (overlay in user namespaces); envctl falls back to the copy driver",
                   status=OK if ok else WARN)


def _v1_writable(root: Path) -> bool:
    from runtime.cgroups import V1_CONTROLLERS, _own_path

    dirs = [root / c / _own_path(c).lstrip("/") for c in V1_CONTROLLERS if (root / c).is_dir()]
    return bool(dirs) and all(os.access(d, os.W_OK) for d in dirs)


def probe_cgroups(root: Path = CGROUP_ROOT) -> Finding:
    """cgroup layout (v1, v2, hybrid) and whether limits can be enforced for this user (a warning
    when not: environments run, ``resources`` are not applied)."""
    layout = detect_layout(root)
    if layout == "none":
        return Finding("cgroups", False, "no cgroup filesystem", "mount -t cgroup2 none /sys/fs/cgroup",
                       {"layout": layout}, status=WARN)
    if layout == "v2":
        from runtime.cgroups import _own_path

        writable = os.access(root / _own_path(None).lstrip("/"), os.W_OK)
    else:
        writable = _v1_writable(root)
    if writable:
        return Finding("cgroups", True, f"{layout}; limits enforced", data={"layout": layout})
    hint = ("limits are not enforced rootless here; use systemd delegation (Delegate=yes, e.g. "
            "systemd-run --user --scope -p Delegate=yes envctl ...) on a cgroup v2 host, or run as root")
    return Finding("cgroups", False, f"{layout}; no delegation for this user: resources limits not enforced",
                   hint, {"layout": layout}, status=WARN)


def _subid_range(kind: str, name: str, uid: int) -> list[tuple[int, int]]:
    out = []
    for line in (_read(f"/etc/sub{kind}") or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (name, str(uid)) and parts[1].isdigit() and parts[2].isdigit():
            out.append((int(parts[1]), int(parts[2])))
    return out


def probe_idmap_tools() -> list[Finding]:
    """newuidmap/newgidmap (package uidmap): required rootless when the user has a subordinate
    range (the runtime maps it with them), else a warning."""
    name = pwd.getpwuid(os.getuid()).pw_name
    needed = os.geteuid() != 0 and os.environ.get("ENVCTL_SUBIDS") != "0" and bool(_subid_range("uid", name, os.getuid()))
    out = []
    for tool in ("newuidmap", "newgidmap"):
        path = shutil.which(tool)
        if path:
            out.append(Finding(tool, True, path, data={"path": path}))
        else:
            why = "your /etc/subuid range cannot be mapped" if needed else "rootless environments get a single id"
            out.append(Finding(tool, False, f"not found on PATH: {why}", "apt-get install uidmap",
                               {"path": None}, status=FAIL if needed else WARN))
    return out


def probe_subids() -> Finding:
    """Subordinate id ranges for this user (multi-id rootless environments, e.g. apt's ``_apt``)."""
    uid = os.getuid()
    name = pwd.getpwuid(uid).pw_name
    ranges = {k: _subid_range(k, name, uid) for k in ("uid", "gid")}
    data = {k: [{"start": a, "count": n} for a, n in v] for k, v in ranges.items()}
    if os.geteuid() == 0:
        return Finding("subordinate ids", True, "not needed as root", data=data)
    if os.environ.get("ENVCTL_SUBIDS") == "0":
        return Finding("subordinate ids", True, "not used (ENVCTL_SUBIDS=0)", data=data)
    shown = "; ".join(f"/etc/sub{k}: " + (", ".join(f"{name}:{a}:{n}" for a, n in v) or "none")
                      for k, v in ranges.items())
    if all(ranges.values()):
        small = min(n for v in ranges.values() for _, n in v) < 65536
        return Finding("subordinate ids", not small, shown,
                       "a range of 65536 ids covers every id an image uses: "
                       f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}" if small else None,
                       data, status=WARN if small else OK)
    return Finding("subordinate ids", False, f"{shown}: only your own id is mapped (tools that switch users fail)",
                   f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name} "
                   "(pick a range no other user has)", data, status=WARN)


def probe_openat2() -> Finding:
    """openat2(2) with RESOLVE_IN_ROOT (Linux >= 5.6): confined layer unpacking."""
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(_sys.openat2(fd, ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, _sys.RESOLVE_IN_ROOT))
        return Finding("openat2", True, "available (RESOLVE_IN_ROOT)")
    except OSError as e:
        return Finding("openat2", False, f"unavailable ({e.strerror or e}): unpacking checks each path component "
                       "in user space (slower)", "needs Linux >= 5.6 (and a seccomp policy allowing openat2)",
                       status=WARN)
    finally:
        os.close(fd)


def _seccomp_mode() -> str | None:
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("Seccomp:"):
            return line.split()[1]
    return None


def _install_default_filter() -> None:
    from runtime.seccomp import compile_filter, default_profile, install

    profile = default_profile(["CAP_CHOWN"])
    if profile is None:
        raise OSError(f"no syscall table for {os.uname().machine}")
    _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
    install(compile_filter(profile))


def probe_seccomp() -> Finding:
    """Can the environment's default seccomp filter be loaded (CONFIG_SECCOMP_FILTER)?"""
    mode = _seccomp_mode()
    data = {"mode": mode}
    outer = "; envctl itself runs under a seccomp filter" if mode == "2" else ""
    if mode is None:
        return Finding("seccomp", False, "the kernel has no seccomp (no Seccomp: in /proc/self/status)",
                       "build the kernel with CONFIG_SECCOMP_FILTER=y", data, status=FAIL)
    ok, msg = _in_child(_install_default_filter)
    if ok:
        return Finding("seccomp", True, f"default filter loads{outer}", data=data)
    return Finding("seccomp", False, f"default filter refused: {msg}{outer}",
                   "build the kernel with CONFIG_SECCOMP_FILTER=y", data, status=FAIL)


def _existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (and can be seen by this user)."""
    p = path
    while not os.path.exists(p) and p != p.parent:
        p = p.parent
    return p


def _mount_of(path: Path) -> tuple[str, str]:
    """(mount point, filesystem type) of the nearest existing ancestor of ``path``."""
    real = os.path.realpath(_existing(path))
    best = ("/", "unknown")
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4].replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
            best = (point, right.split()[0])
    return best


def probe_store(path: Path) -> Finding:
    """The store at ``path`` (``$ENVCTL_HOME``): its filesystem and whether this user can write it.

    Overlay cannot use an upperdir on overlayfs (nor on some network filesystems): a warning
    (the copy driver is needed there); an unwritable store fails.
    """
    point, fstype = _mount_of(path)
    p = _existing(path)
    data = {"path": str(path), "filesystem": fstype, "mountPoint": point, "exists": os.path.exists(path)}
    detail = f"{path} on {fstype} ({point})"
    if not os.access(p, os.W_OK | os.X_OK):
        return Finding("store", False, f"{detail}: {p} is not writable by this user",
                       f"set ENVCTL_HOME to a directory you own, or chown {p}", data, status=FAIL)
    if fstype in ("overlay", "nfs", "nfs4", "fuse", "fuse.sshfs", "9p", "cifs", "smb3"):
        return Finding("store", False, f"{detail}: overlay environments cannot have their upper layer here",
                       "set ENVCTL_HOME to a directory on ext4, xfs, btrfs or tmpfs, or ENVCTL_STORAGE_DRIVER=copy",
                       data, status=WARN)
    return Finding("store", True, detail, data=data)


def probe_oci_runtimes() -> list[Finding]:
    """Whether ``runc``/``crun`` are installed (needed only for ``ENVCTL_RUNTIME=runc|crun``:
    missing is a failure only when selected)."""
    selected = os.environ.get("ENVCTL_RUNTIME", "")
    out = []
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            out.append(Finding(name, True, path, data={"path": path}))
        else:
            chosen = selected == name
            out.append(Finding(name, False, "not found on PATH" + (" but ENVCTL_RUNTIME selects it" if chosen else
                                                                    " (optional: the builtin runtime is used)"),
                               f"apt-get install {name}" + ("" if chosen else " (or leave it: only ENVCTL_RUNTIME="
                                                            f"{name} needs it)"),
                               {"path": None}, status=FAIL if chosen else WARN))
    return out


def probe(store: Path | None = None) -> list[Finding]:
    """Every finding, in the order ``envctl doctor`` shows them.

    Args:
        store: the store root (``$ENVCTL_HOME``) to check; None skips that finding.

    Returns:
        list[Finding]; any ``status == "fail"`` means envctl cannot work here as this user.
    """
    out = [probe_userns(), probe_overlay(), probe_overlay_userxattr(), probe_cgroups(),
           *probe_idmap_tools(), probe_subids(), probe_openat2(), probe_seccomp()]
    if store is not None:
        out.append(probe_store(store))
    return out + probe_oci_runtimes()
