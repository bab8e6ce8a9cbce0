"""cgroups: memory, cpus and pids limits on v1, v2 and hybrid hosts; OOM detection; cleanup.

Layouts (``detect_layout``): ``v2`` (/sys/fs/cgroup is cgroup2), ``v1`` (per-controller
hierarchies), ``hybrid`` (v1 controllers plus a controller-less cgroup2 at ``unified`` — limits go
to v1 there). The container's cgroup is created under the invoking process's own cgroup for each
hierarchy, joined by the intermediate process before it unshares the cgroup namespace, and
removed when the environment stops. Rootless without a writable (delegated) cgroup: a single
warning that limits are not enforced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["detect_layout", "Cgroup", "V1Cgroup", "V2Cgroup", "open_cgroup", "CGROUP_ROOT"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "pids")


def detect_layout(root: Path = CGROUP_ROOT) -> str:
    """``"v2"``, ``"hybrid"``, ``"v1"`` or ``"none"`` for the cgroup mount at ``root``."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "memory").is_dir() or (root / "pids").is_dir():
        return "hybrid" if (root / "unified" / "cgroup.controllers").exists() else "v1"
    return "none"


def _own_path(controller: str | None, proc_cgroup: str = "/proc/self/cgroup") -> str:
    for line in Path(proc_cgroup).read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if (controller is None and hid == "0") or (controller and controller in ctrls.split(",")):
            return path
    return "/"


class Cgroup:
    """Common interface: ``create(resources)``, ``add(pid)``, ``oom_killed()``, ``remove()``."""

    dirs: list[Path]

    def add(self, pid: int) -> None:
        """Move ``pid`` into the cgroup (every hierarchy)."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(f"{pid}\n")

    def remove(self, timeout: float = 5.0) -> None:
        """rmdir the cgroup(s), waiting (polling) until their processes have exited."""
        deadline = time.monotonic() + timeout
        for d in self.dirs:
            while d.exists():
                try:
                    d.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)


class V1Cgroup(Cgroup):
    """cgroup v1 (and hybrid): one directory per controller hierarchy."""

    def __init__(self, name: str, root: Path = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup"):
        self.dirs = []
        self.by_ctrl = {}
        for c in V1_CONTROLLERS:
            if (root / c).is_dir():
                d = root / c / _own_path(c, proc_cgroup).lstrip("/") / name
                self.by_ctrl[c] = d
                self.dirs.append(d)

    def create(self, res: dict) -> None:
        """Make the per-controller directories and write the limits from ``res`` (OCI runtime spec,
        config-linux.md: resources; dict): memory.limit (bytes, also memsw when present), cpu
        quota/period (microseconds), pids.max. Returns None; raises OSError when a write fails.
        """
        for d in self.dirs:
            d.mkdir(exist_ok=True)
        mem = (res.get("memory") or {}).get("limit")
        if mem and "memory" in self.by_ctrl:
            d = self.by_ctrl["memory"]
            (d / "memory.limit_in_bytes").write_text(str(mem))
            if (d / "memory.memsw.limit_in_bytes").exists():  # no swap escape hatch
                (d / "memory.memsw.limit_in_bytes").write_text(str(mem))
        cpu = res.get("cpu") or {}
        if cpu.get("quota") and "cpu" in self.by_ctrl:
            d = self.by_ctrl["cpu"]
            (d / "cpu.cfs_period_us").write_text(str(cpu.get("period", 100000)))
            (d / "cpu.cfs_quota_us").write_text(str(cpu["quota"]))
        pids = (res.get("pids") or {}).get("limit")
        if pids and "pids" in self.by_ctrl:
            (self.by_ctrl["pids"] / "pids.max").write_text(str(pids))

    def oom_killed(self) -> bool:
        """True (bool) when memory.oom_control reports an OOM kill in this cgroup; False when unreadable."""
        d = self.by_ctrl.get("memory")
        try:
            text = (d / "memory.oom_control").read_text() if d else ""
        except OSError:
            return False
        kv = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(kv.get("oom_kill", 0)) > 0


class V2Cgroup(Cgroup):
    """cgroup v2 unified hierarchy: one directory, controllers enabled in the parent."""

    def __init__(self, name: str, root: Path = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup"):
        self.parent = root / _own_path(None, proc_cgroup).lstrip("/")
        self.dirs = [self.parent / name]

    def create(self, res: dict) -> None:
        """Enable the needed controllers in the parent's cgroup.subtree_control, make the leaf and
        write the limits from ``res`` (OCI runtime spec, config-linux.md: resources; dict):
        memory.max (bytes), cpu.max (quota/period microseconds), pids.max. Returns None;
        raises OSError when a write fails (e.g. cgroup not delegated).
        """
        d = self.dirs[0]
        wanted = [c for c, k in (("memory", "memory"), ("cpu", "cpu"), ("pids", "pids")) if res.get(k)]
        avail = (self.parent / "cgroup.controllers").read_text().split()
        enable = " ".join(f"+{c}" for c in wanted if c in avail)
        if enable:
            (self.parent / "cgroup.subtree_control").write_text(enable)
        d.mkdir(exist_ok=True)
        mem = (res.get("memory") or {}).get("limit")
        if mem:
            (d / "memory.max").write_text(str(mem))
            if (d / "memory.swap.max").exists():
                (d / "memory.swap.max").write_text("0")
        cpu = res.get("cpu") or {}
        if cpu.get("quota"):
            (d / "cpu.max").write_text(f"{cpu['quota']} {cpu.get('period', 100000)}")
        pids = (res.get("pids") or {}).get("limit")
        if pids:
            (d / "pids.max").write_text(str(pids))

    def oom_killed(self) -> bool:
        """True (bool) when memory.events counts an ``oom_kill`` (cgroup-v2.rst); False when unreadable."""
        try:
            text = (self.dirs[0] / "memory.events").read_text()
        except OSError:
            return False
        kv = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(kv.get("oom_kill", 0)) > 0


def open_cgroup(name: str, res: dict, *, root: Path = CGROUP_ROOT, warn=None) -> Cgroup | None:
    """Create the container cgroup for ``res`` (OCI linux.resources); None when not possible.

    ``warn(msg)`` is called once when limits were requested but cannot be enforced (rootless
    without delegation). Returns None when no limits were requested.
    """
    if not res:
        return None
    layout = detect_layout(root)
    cg: Cgroup | None = None
    if layout == "v2":
        cg = V2Cgroup(name, root)
    elif layout in ("v1", "hybrid"):
        cg = V1Cgroup(name, root)
    try:
        if cg is None:
            raise PermissionError("no cgroup filesystem")
        cg.create(res)
        return cg
    except OSError as e:
        if cg is not None:
            try:
                cg.remove(timeout=0)
            except OSError:
                pass
        if warn:
            why = "no delegated cgroup for this user" if os.geteuid() else f"cgroup setup failed: {e}"
            warn(f"resource limits are not enforced ({why}; cgroup layout {layout})")
        return None
