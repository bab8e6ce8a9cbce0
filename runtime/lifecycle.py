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


def reset_upper(rootfs: dict, config: dict | None = None) -> bool:
    """Empty the overlay upperdir and workdir of a stopped environment; False for non-overlay.

    Rootless, the upper layer holds files owned by subordinate ids (and overlay's 000 work dir),
    which the user cannot delete on the host: the removal runs in a user namespace with the
    environment's own ID mappings, where the user is root over all of them.
    """
    if rootfs.get("driver") != "overlay":
        return False
    linux = (config or {}).get("linux") or {}
    if os.geteuid() != 0 and linux.get("uidMappings"):
        _in_userns(lambda: _empty(rootfs), linux["uidMappings"], linux.get("gidMappings") or [])
    else:
        _empty(rootfs)
    return True


def _in_userns(fn, uid_maps, gid_maps) -> None:
    """Run ``fn`` in a forked child inside a new user namespace mapped like the environment."""
    from runtime import _sys
    from runtime.errors import ContainerError
    from runtime.namespaces import write_id_maps

    go_r, go_w = os.pipe()
    up_r, up_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(go_w)
            os.close(up_r)
            _sys.unshare(_sys.CLONE_NEWUSER)
            os.write(up_w, b"u")
            if os.read(go_r, 1) == b"g":
                fn()
                code = 0
        except BaseException as e:  # noqa: BLE001 - a forked child must not unwind into the caller
            os.write(2, f"envctl: error: reset: {e}\n".encode())
        os._exit(code)
    os.close(go_r)
    os.close(up_w)
    try:
        if os.read(up_r, 1) == b"u":
            write_id_maps(pid, uid_maps, gid_maps)
            os.write(go_w, b"g")
    finally:
        os.close(go_w)
        os.close(up_r)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise ContainerError("reset the environment's writable layer failed",
                             hint="remove the upper directory by hand (see env.json rootfs.upperdir)")


def _empty(rootfs: dict) -> None:
    for key in ("upperdir", "workdir"):
        p = Path(rootfs[key])
        if p.is_dir():
            for child in p.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
