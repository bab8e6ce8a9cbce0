"""A services supervisor's files under ``envs/<id>/services/``, read and written from outside it.

``status.json`` (written by envctl.services_session on every state change, with the supervisor's
pid), ``<name>.log``, ``requests/`` (restart requests, delivered with SIGUSR1). Used by the
session itself, by envctl.services_up (``up -d``) and, through services_up, by the
status/down/restart/logs commands. Imports nothing of envctl but specs errors and runtime.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

from specs.errors import EnvctlError

__all__ = ["services_dir", "services_status", "stop_services", "request_restart", "start_failures"]


def services_dir(env_dir: Path) -> Path:
    """``envs/<id>/services`` (Path; not created)."""
    return Path(env_dir) / "services"


def _pid_alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:        # a zombie (exited, not yet reaped by its parent) is not a running supervisor
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _read_status(env_dir: Path) -> dict | None:
    try:
        return json.loads((services_dir(env_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return None


def services_status(env_dir: Path) -> list[dict] | None:
    """Per-service rows for ``envctl status``, or None when this environment never ran services.

    Each row: ``name, state, pid, ready, restarts, lastExit, crashes, nextStart`` — state is
    ``stopped`` for every service when the supervisor is gone (crashed or stopped).
    """
    data = _read_status(env_dir)
    if data is None:
        return None
    rows = data.get("services") or []
    if not _pid_alive(data.get("supervisorPid")):
        rows = [{**r, "state": "stopped", "pid": None, "ready": False} for r in rows]
    return rows


def stop_services(env_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the supervisor of ``env_dir`` (foreground or ``-d``) and wait for it; True if one ran."""
    data = _read_status(env_dir)
    pid = (data or {}).get("supervisorPid")
    if not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.02)
    return True


def request_restart(env_dir: Path, names: list[str]) -> None:
    """Ask the running supervisor to restart ``names`` (all when empty).

    Raises:
        EnvctlError: no supervisor runs for this environment.
    """
    data = _read_status(env_dir)
    pid = (data or {}).get("supervisorPid")
    if not _pid_alive(pid):
        raise EnvctlError("no services are running for this project", hint="start them with 'envctl up'")
    known = {r["name"] for r in data.get("services") or []}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EnvctlError(f"no service named {unknown[0]}",
                          hint=f"services: {', '.join(sorted(known)) or 'none'}")
    req = services_dir(env_dir) / "requests"
    req.mkdir(parents=True, exist_ok=True)
    tmp = req / f".{uuid.uuid4().hex}"
    tmp.write_text(json.dumps({"services": names}))
    tmp.rename(req / f"{uuid.uuid4().hex}.json")
    os.kill(pid, signal.SIGUSR1)


def start_failures(rows: list[dict], sdir: Path) -> list[str]:
    """The services that did not come up, one line each (list of str; empty when all did): exited
    non-zero, failed to start, crash-looping (backoff), or running but not ready after their
    ``ready`` timeout; each with the last line of its log. ``rows`` as ``services_status``.
    """
    from runtime.service_log import log_path, read_lines

    bad = []
    for r in rows:
        state, rc = r.get("state"), r.get("lastExit")
        if state in ("failed", "backoff") or (state == "exited" and rc not in (0, None)):
            what = f"exited with status {rc}" if rc is not None else "failed to start"
        elif state == "running" and not r.get("ready"):
            what = "running, not ready"
        else:
            continue
        try:
            lines = [x.strip() for _, x in read_lines(log_path(sdir, r["name"]))]
        except OSError:
            lines = []
        own = [x for x in lines if x and not x.startswith("[envctl]")]  # the service's own output first
        tail = own[-1] if own else next((x.split(" ", 2)[-1] for x in reversed(lines) if x), "")
        bad.append(f"{r['name']}: {what}" + (f": {tail}" if tail else ""))
    return bad
