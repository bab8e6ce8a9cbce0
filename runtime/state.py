"""``envs/<id>/state.json`` (and ``--root/<id>/state.json`` for ``envctl oci``): a running environment.

Fields follow the OCI runtime spec's state (ociVersion, id, status, pid, bundle, annotations)
plus envctl's own: supervisor pid, start time, rootless, namespaces, the process template used
by ``envctl exec``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["write_state", "read_state", "remove_state", "running_state", "is_alive"]

STATE = "state.json"


def running_state(config: dict, started, *, name: str | None = None, bundle: str | None = None) -> dict:
    """State dict for a just-started environment (``started``: runtime.runner.Started)."""
    return {
        "ociVersion": config.get("ociVersion", "1.0.2"),
        "id": name or str(started.pid),
        "status": "running",
        "pid": started.pid,
        "bundle": bundle or "",
        "annotations": config.get("annotations") or {},
        "supervisor": os.getpid(),
        # the setup process holds every namespace of the environment (pid as pid_for_children) and,
        # unlike PID 1, is dumpable and outside the environment's pid namespace: exec joins through it
        "nsPid": getattr(started, "setup_pid", None),
        "started": time.time(),
        "rootless": any(n["type"] == "user" for n in (config.get("linux") or {}).get("namespaces", ())),
        "namespaces": [n["type"] for n in (config.get("linux") or {}).get("namespaces", ())],
        "process": config.get("process") or {},
        "seccomp": (config.get("linux") or {}).get("seccomp"),
    }


def write_state(state_dir: Path, state: dict) -> None:
    """Atomically write ``state_dir/state.json``."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{STATE}.{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, state_dir / STATE)


def read_state(state_dir: Path) -> dict | None:
    """The state in ``state_dir`` or None when absent/unreadable."""
    try:
        return json.loads((Path(state_dir) / STATE).read_text())
    except (OSError, ValueError):
        return None


def remove_state(state_dir: Path) -> None:
    try:
        (Path(state_dir) / STATE).unlink()
    except FileNotFoundError:
        pass


def is_alive(state: dict) -> bool:
    """True when the state's PID 1 still exists (a stale state file otherwise)."""
    pid = state.get("pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
