"""Environment directories in the store (``envs/<env id>/``) and whether one is in use.

Used by gc (a running environment's layers are never collected) and by the rootfs drivers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.store.cas import Store

__all__ = ["env_dir", "env_in_use"]


def env_dir(store: Store, env_id: str) -> Path:
    """The environment's directory in the store: ``envs/<env_id>`` (Path; not created)."""
    return store.envs / env_id


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def env_in_use(store: Store, env_id: str) -> bool:
    """True while an environment runs: its ``locks/env-<id>`` is held by another process, or the
    runtime's ``envs/<id>/state.json`` names a live process (``pid`` or ``supervisor``)."""
    from engine.store.locking import is_locked

    if is_locked(store.locks / f"env-{env_id}"):
        return True
    try:
        state = json.loads((env_dir(store, env_id) / "state.json").read_text())
    except (OSError, ValueError):
        return False
    return any(_pid_alive(state.get(k)) for k in ("pid", "supervisor"))
