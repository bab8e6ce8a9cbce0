"""Stopping environments and resetting their writable layer (``envctl down``)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from runtime.errors import ContainerStateError
from runtime.state import is_alive, read_state, remove_state

__all__ = ["stop", "reset_upper"]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """SIGTERM the environment's PID 1 (forwarded to the command), SIGKILL after ``timeout``
    seconds; wait for the supervisor to clean up. Returns False when nothing was running."""
    state = read_state(state_dir)
    if not state or not is_alive(state):
        if state:
            remove_state(state_dir)
        return False
    pid = state["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not _wait_gone(pid, timeout):
        try:
            os.kill(pid, signal.SIGKILL)  # PID 1's death takes its whole pid namespace
        except ProcessLookupError:
            pass
        _wait_gone(pid, 5)
    sup = state.get("supervisor")
    if sup and sup != os.getpid():
        _wait_gone(sup, 5)
    remove_state(state_dir)
    return True


def reset_upper(rootfs: dict) -> bool:
    """Empty the overlay upperdir and workdir of a stopped environment; False for non-overlay."""
    if rootfs.get("driver") != "overlay":
        return False
    for key in ("upperdir", "workdir"):
        p = Path(rootfs[key])
        if p.is_dir():
            for child in p.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    return True
