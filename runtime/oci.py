"""The builtin runtime behind a runc-like lifecycle: create, start, state, kill, delete, run.

``create`` leaves a detached holder process (it keeps the caller's stdio for the container, as
runc does) whose PID 1 waits for ``start``; ``start`` talks to the holder over
``<root>/<id>/start.sock``. State lives in ``<root>/<id>/state.json`` in the OCI runtime spec's
state shape (ociVersion, id, status, pid, bundle, annotations).
"""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

from runtime.errors import ContainerError, ContainerNotFound, ContainerStateError
from runtime.state import is_alive, read_state, write_state

__all__ = ["default_root", "load_bundle", "create", "start", "state", "kill", "delete", "run"]


def default_root() -> Path:
    """``/run/envctl-oci`` for root, ``$XDG_RUNTIME_DIR/envctl-oci`` (or /tmp) otherwise."""
    if os.geteuid() == 0:
        return Path("/run/envctl-oci")
    return Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/envctl-oci-{os.getuid()}") / "envctl-oci"


def load_bundle(bundle: Path) -> dict:
    """config.json of ``bundle`` with root.path made absolute. Raises ContainerError."""
    try:
        cfg = json.loads((bundle / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ContainerError(f"read {bundle / 'config.json'}: {e}", hint="pass --bundle DIR with a config.json") from None
    root = Path(cfg.get("root", {}).get("path", "rootfs"))
    cfg.setdefault("root", {})["path"] = str(root if root.is_absolute() else (bundle / root).resolve())
    return cfg


def _dir(root: Path, cid: str) -> Path:
    if not cid or "/" in cid or cid.startswith("."):
        raise ContainerError(f"invalid container id {cid!r}")
    return Path(root) / cid


def _public(st: dict) -> dict:
    status = st.get("status", "stopped")
    if status in ("created", "running") and not is_alive(st):
        status = "stopped"
    out = {"ociVersion": st.get("ociVersion", "1.0.2"), "id": st["id"], "status": status,
           "bundle": st.get("bundle", ""), "annotations": st.get("annotations") or {}}
    if status in ("created", "running"):
        out["pid"] = st["pid"]
    return out


def state(root: Path, cid: str) -> dict:
    """OCI state of ``cid``. Raises ContainerNotFound."""
    st = read_state(_dir(root, cid))
    if st is None:
        raise ContainerNotFound(f"container {cid} does not exist")
    return _public(st)


def create(root: Path, cid: str, bundle: Path, *, pid_file: Path | None = None) -> dict:
    """Create ``cid`` from ``bundle``; returns its state once PID 1 waits for ``start``."""
    from runtime.runner import BuiltinRunner

    d = _dir(root, cid)
    if (d / "state.json").exists():
        raise ContainerStateError(f"container {cid} already exists")
    config = load_bundle(bundle)
    d.mkdir(parents=True, exist_ok=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if os.fork():  # the holder is a grandchild: create returns, the holder lives on
            os._exit(0)
        os.setsid()
        _holder(BuiltinRunner(config), config, d, cid, str(bundle), w)
    os.close(w)
    os.waitpid(pid, 0)
    try:  # one read: the holder's children inherit the pipe, so EOF would never come
        msg = os.read(r, 65536)
    finally:
        os.close(r)
    if not msg.startswith(b"ok"):
        import shutil
        shutil.rmtree(d, ignore_errors=True)
        info = json.loads(msg[4:]) if msg.startswith(b"err ") else {}
        raise ContainerError(info.get("message") or f"create {cid} failed", info.get("hint"))
    st = state(root, cid)
    if pid_file:
        Path(pid_file).write_text(str(st["pid"]))
    return st


def _holder(runner, config: dict, d: Path, cid: str, bundle: str, w: int) -> None:
    from runtime.state import running_state

    code = 1
    try:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(d / "start.sock"))
        srv.listen(1)
        started = runner.start(wait_start=True)
        st = running_state(config, started, name=cid, bundle=bundle)
        st["status"] = "created"
        write_state(d, st)
        os.write(w, b"ok")
        os.close(w)
        conn, _ = srv.accept()
        conn.recv(16)
        started.ctl.send(b"start")
        st["status"] = "running"
        write_state(d, st)
        conn.send(b"ok")
        conn.close()
        srv.close()
        code = started.wait()
        st["status"] = "stopped"
        st["exitCode"] = code
        write_state(d, st)
    except BaseException as e:  # noqa: BLE001 - report to the create caller, never unwind
        try:
            msg = {"message": getattr(e, "message", None) or str(e), "hint": getattr(e, "hint", None)}
            os.write(w, b"err " + json.dumps(msg).encode())
        except OSError:
            pass
    os._exit(code)


def start(root: Path, cid: str) -> None:
    """Let a created container's PID 1 run the process. Raises ContainerStateError."""
    st = state(root, cid)
    if st["status"] != "created":
        raise ContainerStateError(f"container {cid} is {st['status']}, not created")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(_dir(root, cid) / "start.sock"))
        s.send(b"start")
        if s.recv(16) != b"ok":
            raise ContainerStateError(f"container {cid} did not start")


def _signum(sig: str | int) -> int:
    if isinstance(sig, int) or str(sig).isdigit():
        return int(sig)
    name = str(sig).upper()
    return int(getattr(signal, name if name.startswith("SIG") else "SIG" + name))


def kill(root: Path, cid: str, sig: str | int = "TERM") -> None:
    """Send ``sig`` to the container's PID 1. Raises ContainerStateError when not running."""
    st = state(root, cid)
    if st["status"] not in ("created", "running"):
        raise ContainerStateError(f"container {cid} is not running")
    os.kill(st["pid"], _signum(sig))


def delete(root: Path, cid: str, *, force: bool = False) -> None:
    """Remove a stopped container (``force`` kills it first)."""
    import shutil
    import time

    st = state(root, cid)
    if st["status"] in ("created", "running"):
        if not force:
            raise ContainerStateError(f"container {cid} is {st['status']}", hint="stop it first or use --force")
        os.kill(st["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while is_alive({"pid": st["pid"]}) and time.monotonic() < deadline:
            time.sleep(0.01)
    shutil.rmtree(_dir(root, cid), ignore_errors=True)


def run(root: Path, cid: str, bundle: Path, *, detach: bool = False, pid_file: Path | None = None) -> int:
    """create + start; in the foreground (not ``detach``) wait and return the exit code."""
    if detach:
        create(root, cid, bundle, pid_file=pid_file)
        start(root, cid)
        return 0
    from runtime.runner import run_container

    d = _dir(root, cid)
    if (d / "state.json").exists():
        raise ContainerStateError(f"container {cid} already exists")
    try:
        return run_container(load_bundle(bundle), state_dir=d, name=cid)
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
