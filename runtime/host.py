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

__all__ = ["Finding", "probe", "userns_hint", "probe_userns", "probe_overlay_userxattr", "probe_cgroups"]


@dataclass
class Finding:
    """One probe result: ``name``, ``ok`` (bool), ``detail`` (what was seen), ``hint`` (the fix)."""
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def userns_hint() -> str:
    """The sysctl that blocks unprivileged user namespaces here, as an actionable hint."""
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return "enable them: sysctl -w kernel.unprivileged_userns_clone=1"
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return "enable them: sysctl -w user.max_user_namespaces=15000"
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return "AppArmor restricts them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    return "user namespaces are unavailable; check the kernel's CONFIG_USER_NS and container seccomp policy"


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
    """Can this process create a user namespace (and thus run rootless)?"""
    ok, msg = _in_child(lambda: _sys.unshare(_sys.CLONE_NEWUSER))
    return Finding("user namespaces", ok, "available" if ok else msg, None if ok else userns_hint())


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
                   None if ok else "needs Linux >= 5.11 (overlay in user namespaces); envctl falls back to the copy driver")


def probe_cgroups(root: Path = CGROUP_ROOT) -> Finding:
    """cgroup layout and whether limits can be enforced for this user."""
    layout = detect_layout(root)
    if layout == "none":
        return Finding("cgroups", False, "no cgroup filesystem", "mount cgroup2 on /sys/fs/cgroup")
    if os.geteuid() == 0:
        return Finding("cgroups", True, f"{layout}; limits enforced", data={"layout": layout})
    own = _read("/proc/self/cgroup") or ""
    path = next((line.split(":", 2)[2] for line in own.splitlines() if line.startswith("0::")), "/")
    writable = layout == "v2" and os.access(root / path.lstrip("/"), os.W_OK)
    return Finding("cgroups", writable, f"{layout}; {'delegated' if writable else 'no delegation for this user'}",
                   None if writable else "limits are not enforced rootless here; use systemd delegation "
                   "(Delegate=yes) on a cgroup v2 host, or run as root", {"layout": layout})


def probe_subids() -> Finding:
    """Subordinate id ranges for this user (multi-id rootless environments)."""
    name = pwd.getpwuid(os.getuid()).pw_name
    found = {}
    for kind in ("uid", "gid"):
        text = _read(f"/etc/sub{kind}") or ""
        found[kind] = any(line.split(":")[0] in (name, str(os.getuid())) for line in text.splitlines())
    ok = all(found.values()) and bool(shutil.which("newuidmap"))
    return Finding("subordinate ids", ok or os.geteuid() == 0,
                   "root" if os.geteuid() == 0 else ("/etc/subuid and newuidmap present" if ok else f"{found}"),
                   None if ok or os.geteuid() == 0 else
                   f"add '{name}:100000:65536' to /etc/subuid and /etc/subgid and install uidmap "
                   "(without them only your own id is mapped: tools that switch users fail)")


def probe() -> list[Finding]:
    """Every finding, in the order ``envctl doctor`` shows them."""
    out = [probe_userns(), probe_overlay_userxattr(), probe_cgroups(), probe_subids()]
    runtimes = {n: shutil.which(n) for n in ("runc", "crun")}
    out.append(Finding("oci runtimes", True, ", ".join(f"{n}: {p or 'missing'}" for n, p in runtimes.items())))
    return out
