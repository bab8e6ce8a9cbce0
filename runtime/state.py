"""``envs/<id>/state.json`` (and ``--root/<id>/state.json`` for ``envctl oci``): a running environment.

Fields follow the OCI runtime spec's state (ociVersion, id, status, pid, bundle, annotations)
plus envctl's own: supervisor pid, start time, rootless, namespaces, the process template used
by ``envctl exec``.
"""

from __future__ import annotations

import os
import time

from specs import fastjson  # not json: its re/enum imports cost ~4 ms on every warm `envctl run`

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


def write_state(state_dir: str | os.PathLike, state: dict) -> None:
    """Atomically write ``state_dir/state.json`` (``state_dir``: str or Path, created if missing)."""
    state_dir = os.fspath(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    tmp = os.path.join(state_dir, f".{STATE}.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(fastjson.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, os.path.join(state_dir, STATE))


def read_state(state_dir: str | os.PathLike) -> dict | None:
    """The state in ``state_dir`` or None when absent/unreadable."""
    try:
        with open(os.path.join(state_dir, STATE), "rb") as f:
            return fastjson.loads(f.read())
    except (OSError, ValueError):
        return None


def remove_state(state_dir: str | os.PathLike) -> None:
    """Delete the state file in ``state_dir`` (str or PathLike); no error when it is already gone.
    Raises OSError for other failures.
    """
    try:
        os.unlink(os.path.join(state_dir, STATE))
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
