"""OCI runtime-spec ``config.json`` generation (runtime-spec 1.0.2, Linux).

``generate_config`` turns an environment spec + the image config + a rootfs plan into the
config.json that both the builtin runtime and runc/crun run. Defaults follow runc's
``runc spec`` / ``--rootless`` templates: Docker's 14 default capabilities, runc's masked and
read-only paths, devpts/shm/mqueue mounts. The overlay plan travels as the annotation
``dev.envctl.rootfs`` (JSON); the builtin runtime mounts it inside the new mount namespace.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["generate_config", "DEFAULT_CAPS", "MASKED_PATHS", "READONLY_PATHS", "ROOTFS_ANNOTATION",
           "resolve_caps", "id_mappings", "build_env", "lookup_user", "write_etc_files"]

ROOTFS_ANNOTATION = "dev.envctl.rootfs"
OCI_VERSION = "1.0.2"

# Docker/moby oci/caps/defaults.go: the default set dev containers are expected to have.
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")

# runc libcontainer/specconv/example.go defaults.
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100_000  # microseconds, the kernel default CFS period


def _get(spec, name, default=None):
    return getattr(spec, name, default) if spec is not None else default


def resolve_caps(cap_add=(), cap_drop=()) -> list[str]:
    """Docker's default set plus ``cap_add`` minus ``cap_drop`` (``ALL`` allowed in either).

    Returns: sorted list of ``CAP_*`` names. Raises ValueError on an unknown name.
    """
    from runtime._sys import CAPS

    def norm(c: str) -> str:
        c = c.upper()
        c = c if c.startswith("CAP_") or c == "ALL" else "CAP_" + c
        if c != "ALL" and c not in CAPS:
            raise ValueError(f"unknown capability {c}")
        return c

    caps = set(DEFAULT_CAPS)
    drop = {norm(c) for c in cap_drop}
    if "ALL" in drop:
        caps = set()
    caps -= drop
    add = {norm(c) for c in cap_add}
    caps |= set(CAPS) if "ALL" in add else add
    return sorted(caps, key=CAPS.index)


def id_mappings(host_id: int, subrange: tuple[int, int] | None, inside: int = 0) -> list[dict]:
    """Rootless ID mappings: container ``inside`` -> ``host_id``; the rest of 0..N from ``subrange``.

    Args:
        host_id: the invoking user's uid/gid on the host.
        subrange: ``(start, count)`` from /etc/subuid or /etc/subgid, or None (single mapping).
        inside: the id the invoking user has inside (0 = root; the spec's ``user:`` = keep-id).
    Returns: list of OCI IDMapping dicts (containerID, hostID, size).
    """
    maps = [{"containerID": inside, "hostID": host_id, "size": 1}]
    if not subrange:
        return maps
    start, count = subrange
    if inside > 0:
        maps.append({"containerID": 0, "hostID": start, "size": min(inside, count)})
    rest = count - min(inside, count)
    if rest > 0:
        maps.append({"containerID": inside + 1, "hostID": start + min(inside, count), "size": rest})
    return maps


def _rootfs_candidates(rootfs: dict) -> list[Path]:
    if rootfs.get("driver") == "overlay":
        return [Path(rootfs["upperdir"]), *map(Path, rootfs.get("lowerdirs", []))]
    return [Path(rootfs["path"])]


def _read_rootfs_file(rootfs: dict, rel: str) -> str | None:
    """Read a file from the (possibly not yet mounted) rootfs, upper layer first; None if absent."""
    for base in _rootfs_candidates(rootfs):
        p = base / rel
        if p.is_file() and not p.is_symlink():
            return p.read_text(errors="replace")
        if os.path.lexists(p):
            return None  # a whiteout or symlink in a higher layer hides lower ones
    return None


def lookup_user(rootfs: dict, user: str | None) -> tuple[int, int, str, str]:
    """Resolve ``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) in the rootfs passwd/group.

    Returns: (uid, gid, name, home). Raises ValueError when a name is not in /etc/passwd.
    """
    if not user:
        return 0, 0, "root", "/root"
    name, _, group = user.partition(":")
    passwd = _read_rootfs_file(rootfs, "etc/passwd") or ""
    rows = [line.split(":") for line in passwd.splitlines() if line.count(":") >= 6]
    row = next((r for r in rows if r[0] == name or (name.isdigit() and r[2] == name)), None)
    if row is None and not name.isdigit():
        raise ValueError(f"user {name} not found in the environment's /etc/passwd")
    uid = int(name) if name.isdigit() else int(row[2])
    gid = int(row[3]) if row else uid
    home = row[5] if row else "/"
    uname = row[0] if row else name
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            groups = _read_rootfs_file(rootfs, "etc/group") or ""
            g = next((r for r in (line.split(":") for line in groups.splitlines()) if r[0] == group), None)
            if g is None:
                raise ValueError(f"group {group} not found in the environment's /etc/group")
            gid = int(g[2])
    return uid, gid, uname, home


def build_env(image_env, spec_env: dict, *, home: str, user: str, tty: bool) -> list[str]:
    """Image Env, then the spec's env, then TERM/HOME/USER/PATH when not set (issue 5 order)."""
    env: dict[str, str] = {}
    for item in image_env or ():
        k, _, v = item.partition("=")
        env[k] = v
    env.update(spec_env or {})
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home)
    env.setdefault("USER", user)
    if tty:
        env.setdefault("TERM", os.environ.get("TERM", "xterm"))
    return [f"{k}={v}" for k, v in env.items()]


def _mounts(*, rootless: bool, netns: bool, gid5: bool, project_root: str | None, workdir: str,
            extra, etc_dir: str | None, network: str) -> list[dict]:
    pts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] + (["gid=5"] if gid5 else [])
    m = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": pts},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if rootless or not netns:
        # sysfs can only be mounted by the owner of the network namespace (runc --rootless does the same)
        m.append({"destination": "/sys", "type": "none", "source": "/sys",
                  "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    else:
        m.append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                  "options": ["nosuid", "noexec", "nodev", "ro"]})
    etc = {"resolv.conf": "/etc/resolv.conf", "hosts": "/etc/hosts"}
    if etc_dir:
        etc = {n: os.path.join(etc_dir, n) for n in ("resolv.conf", "hosts", "hostname")}
    for name, src in etc.items():
        if os.path.exists(src):
            m.append({"destination": f"/etc/{name}", "type": "bind", "source": src,
                      "options": ["bind", "nosuid", "nodev", "noexec", "ro" if name != "hosts" else "rw"]})
    if project_root:
        m.append({"destination": workdir, "type": "bind", "source": str(project_root),
                  "options": ["rbind", "rw"]})
    for mt in extra or ():
        src = os.path.expanduser(str(_get(mt, "source")))
        if project_root and not os.path.isabs(src):
            src = os.path.join(project_root, src)
        m.append({"destination": str(_get(mt, "target")), "type": "bind", "source": src,
                  "options": ["rbind", "ro" if _get(mt, "readonly", False) else "rw"]})
    return m


def _resources(res) -> dict:
    out: dict = {}
    if _get(res, "memory"):
        out["memory"] = {"limit": int(res.memory)}
    if _get(res, "cpus"):
        out["cpu"] = {"quota": int(float(res.cpus) * CPU_PERIOD), "period": CPU_PERIOD}
    if _get(res, "pids"):
        out["pids"] = {"limit": int(res.pids)}
    return out


def _nofile() -> dict:
    # Docker's 1048576, capped at what this host lets us have (runc fails on EPERM otherwise)
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    n = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    return {"type": "RLIMIT_NOFILE", "hard": n, "soft": n}


def _hostname(project_root: str | None) -> str:
    base = Path(project_root).name if project_root else "envctl"
    return (re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "envctl")[:63]


def _subrange(kind: str, name: str, uid: int) -> tuple[int, int] | None:
    if os.environ.get("ENVCTL_SUBIDS", "").lower() in ("0", "no", "false", "off"):
        return None  # disabled: single mapping, as engine.store.idmap unpacks without subids then
    try:
        text = Path(f"/etc/sub{kind}").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        f = line.strip().split(":")
        if len(f) == 3 and f[0] in (name, str(uid)):
            return int(f[1]), int(f[2])
    return None


def generate_config(spec, *, image_config: dict, rootfs: dict, project_root: str | None, rootless: bool,
                    args: list[str] | None, tty: bool, etc_dir: str | None = None,
                    hostname: str | None = None, use_subids: bool | None = None) -> dict:
    """Build the OCI runtime config.json (dict) for an environment.

    Args:
        spec: a specs.model.EnvSpec (or None for image defaults only).
        image_config: the OCI image config's ``config`` object (Env, WorkingDir, User, Cmd, ...).
        rootfs: ``{"driver": "copy", "path": ...}`` or the overlay plan (lowerdirs, upperdir, workdir,
            merged, userxattr); the overlay plan is passed as annotation ``dev.envctl.rootfs``.
        project_root: host directory bind-mounted read-write at the spec's workdir (None: none).
        rootless: generate a user namespace with ID mappings for the invoking user.
        args: process.args (None: omitted, e.g. for env.json's cached template).
        tty: process.terminal.
        etc_dir: directory holding resolv.conf/hosts/hostname to bind (see write_etc_files);
            None binds the host's resolv.conf and hosts.
        use_subids: rootless only; use /etc/subuid ranges (None: when present).
    Returns: the config dict (JSON-able). Raises ValueError for unknown capabilities/users.
    Implements issue 5 "Mounts", "Security", "cgroups", "Environment variables".
    """
    image_config = image_config or {}
    user_str = _get(spec, "user") or image_config.get("User") or None
    uid, gid, uname, home = lookup_user(rootfs, user_str)
    network = _get(spec, "network", "host") or "host"
    workdir = _get(spec, "workdir") or image_config.get("WorkingDir") or "/"
    spec_env = spec.env_dict() if spec is not None and hasattr(spec, "env_dict") else {}
    caps = resolve_caps(_get(spec, "cap_add", ()) or (), _get(spec, "cap_drop", ()) or ())
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if network == "none":
        namespaces.append({"type": "network"})
    linux: dict = {"namespaces": namespaces, "maskedPaths": list(MASKED_PATHS),
                   "readonlyPaths": list(READONLY_PATHS)}
    gid5 = True
    if rootless:
        import pwd
        namespaces.append({"type": "user"})
        me_uid, me_gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(me_uid).pw_name if me_uid else "root"
        subu = _subrange("uid", me, me_uid) if use_subids is not False else None
        subg = _subrange("gid", me, me_uid) if use_subids is not False else None
        linux["uidMappings"] = id_mappings(me_uid, subu, uid)
        linux["gidMappings"] = id_mappings(me_gid, subg, gid)
        gid5 = any(m["containerID"] <= 5 < m["containerID"] + m["size"] for m in linux["gidMappings"])
    from runtime.seccomp import default_profile

    profile = default_profile(caps)
    if profile is not None:
        linux["seccomp"] = profile
    res = _resources(_get(spec, "resources"))
    if res:
        linux["resources"] = res
    cfg = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": bool(tty),
            "user": {"uid": uid, "gid": gid},
            "env": build_env(image_config.get("Env"), spec_env, home=home, user=uname, tty=tty),
            "cwd": workdir,
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "inheritable")}
            | {"ambient": []},
            "rlimits": [_nofile()],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs.get("merged") or rootfs.get("path"), "readonly": False},
        "hostname": hostname or _hostname(project_root),
        "mounts": _mounts(rootless=rootless, netns=network == "none", gid5=gid5, project_root=project_root,
                          workdir=workdir, extra=_get(spec, "mounts", ()), etc_dir=etc_dir, network=network),
        "linux": linux,
        "annotations": {"dev.envctl.network": network},
    }
    if _get(spec, "shell"):
        cfg["annotations"]["dev.envctl.shell"] = spec.shell
    if (_get(spec, "runtime") or "builtin") != "builtin":
        cfg["annotations"]["dev.envctl.runtime"] = spec.runtime
    if args is not None:
        cfg["process"]["args"] = list(args)
    if rootfs.get("driver") == "overlay":
        cfg["annotations"][ROOTFS_ANNOTATION] = json.dumps(rootfs, sort_keys=True)
    return cfg


def write_etc_files(etc_dir: str | Path, hostname: str, network: str = "host") -> None:
    """Write resolv.conf, hosts and hostname for an environment into ``etc_dir``."""
    d = Path(etc_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "hostname").write_text(hostname + "\n")
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    (d / "hosts").write_text(hosts)
    try:
        resolv = Path("/etc/resolv.conf").read_text() if network == "host" else ""
    except OSError:
        resolv = ""
    (d / "resolv.conf").write_text(resolv)
