"""The services part of ``envctl up``: run the spec's services in the environment and keep them
in step with the project's files (issue 7).

Hooks for other commands (the only functions they call):

* ``envctl up``      -> :func:`run_services` (foreground, or ``detach=True`` for ``-d``);
* ``envctl status``  -> :func:`services_status` (per-service state, pid, restarts, last exit);
* ``envctl down``    -> :func:`stop_services` (before stopping the environment itself);
* ``envctl restart`` -> :func:`request_restart`; ``envctl logs`` reads :func:`services_dir`.

Files under ``envs/<id>/services/``: ``status.json`` (written on every state change, with the
supervisor's pid), ``<name>.log``, ``requests/`` (restart requests, delivered with SIGUSR1),
``daemon.log`` (the detached supervisor's own messages).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from specs.errors import EnvctlError

__all__ = ["run_services", "services_status", "stop_services", "request_restart", "services_dir",
           "services_from_spec", "rebuild_inputs"]

HOLD = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


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


# -- spec -> runtime --------------------------------------------------------------------------
def _argv(command) -> tuple[str, ...]:
    return ("/bin/sh", "-c", command) if isinstance(command, str) else tuple(command)


def services_from_spec(spec, *, host: bool = False, project_root: Path | None = None):
    """Runtime service configs and watch blocks from an EnvSpec.

    Args:
        spec: specs.model.EnvSpec.
        host: build for host processes (cwd = project root instead of the spec's workdir).

    Returns:
        ``(list[runtime.services.ServiceConfig], dict[str, runtime.reload.ServiceWatch])``.
    """
    from runtime.reload import ServiceWatch
    from runtime.services import Readiness, ServiceConfig

    configs, watches = [], {}
    for s in spec.services:
        ready = None
        if s.ready is not None:
            r = s.ready
            url = r.http
            if url and url.startswith("/"):
                url = f"http://127.0.0.1:{r.port or 80}{url}"
            ready = Readiness(port=r.port if r.kind == "port" else None, http=url if r.kind == "http" else None,
                              command=_argv(r.command) if r.kind == "command" and r.command else None,
                              timeout=r.timeout_ms / 1000, interval=max(0.01, min(r.interval_ms / 1000, 0.1)))
        cwd = str(project_root) if host else (s.workdir or spec.workdir)
        configs.append(ServiceConfig(s.name, _argv(s.command), tuple(s.env), cwd, tuple(s.depends_on), ready,
                                     {"never": "no"}.get(s.restart, s.restart)))
        if s.watch is not None:
            w = s.watch
            watches[s.name] = ServiceWatch(tuple(w.paths), tuple(w.ignore), w.action, w.debounce_ms / 1000,
                                           bool(getattr(w, "gitignore", True)))
    return configs, watches


def rebuild_inputs(spec, project) -> tuple[str, ...]:
    """Project-relative globs whose change means "rebuild the environment": the spec, its lock,
    and every file read by a ``copy`` step (a directory source covers everything below it)."""
    root = Path(project.root)
    out = []
    for p in (project.spec_path, project.lock_path):
        try:
            out.append("/" + Path(p).relative_to(root).as_posix())
        except ValueError:
            pass
    for step in spec.steps:
        if step.kind == "copy" and step.src:
            src = step.src.strip("/").removeprefix("./")
            out.append(f"/{src}/**" if (root / src).is_dir() else f"/{src}")
    return tuple(out)


# -- envctl up ---------------------------------------------------------------------------------
def run_services(project, out, *, detach: bool = False) -> int | None:
    """The services part of ``envctl up``, called after the environment is prepared.

    Args:
        project: envctl.project.Project.
        out: envctl.output.Output.
        detach: ``-d``: start a supervisor daemon and return once the services are started.

    Returns:
        None when the spec declares no services (``up`` returns as before), else the exit code.
        ``ENVCTL_SERVICES_ON_HOST=1`` runs the services as host processes (benchmarks; hosts
        without the runtime).

    Raises:
        EnvctlError: services already running for this project, or the daemon failed.
    """
    from specs import load_spec

    spec = load_spec(project.spec_path)
    if not spec.services:
        return None
    host = os.environ.get("ENVCTL_SERVICES_ON_HOST") == "1"
    _refuse_if_running(project, host)
    if detach:
        return _detach(project, out, host)
    from envctl.services_session import ServicesSession

    return ServicesSession(project, out, host=host).run()


def _wait_supervisor_after_down(d: Path, pid: int, timeout: float = 5.0) -> None:
    """Right after ``envctl down`` the supervisor is still shutting down (it stops when its
    environment ends): give it a moment instead of refusing to start."""
    from runtime.state import is_alive, read_state

    state = read_state(d)
    if state and is_alive(state):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.02)


def _refuse_if_running(project, host: bool) -> None:
    """Raise when a supervisor (``up -d`` or a foreground ``up``) already runs this project's
    services: a second one would fight over the ports, the logs and status.json."""
    from envctl.commands._enter import env_dir

    d = env_dir(project.spec_path)
    data = _read_status(d)
    if data and _pid_alive(data.get("supervisorPid")) and not host:
        _wait_supervisor_after_down(d, data["supervisorPid"])
    if data and _pid_alive(data.get("supervisorPid")):
        raise EnvctlError(f"services already running for {project.display_spec} "
                          f"(supervisor pid {data['supervisorPid']})",
                          hint="'envctl restart' restarts them, 'envctl down' stops them")


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


def _raise_if_failed(rows: list[dict], sdir: Path) -> None:
    """``up -d``: exit non-zero (like ``docker compose up --wait``) when a service died at once or
    never became ready (QA M7). The supervisor keeps running the others."""
    bad = start_failures(rows, sdir)
    if bad:
        names = " ".join(b.split(":", 1)[0] for b in bad)
        raise EnvctlError(f"{len(bad)} service(s) did not start: " + "; ".join(bad),
                          hint=f"see 'envctl logs {names}'; 'envctl down' stops the others")


def _detach(project, out, host: bool) -> int:
    from envctl.commands._enter import env_dir

    d = env_dir(project.spec_path)
    sdir = services_dir(d)
    sdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "envctl.services_session", str(project.root), str(project.spec_path)]
    with open(sdir / "daemon.log", "ab") as log:
        daemon = subprocess.Popen(argv + (["--host"] if host else []), stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, start_new_session=True)
    try:
        return _wait_started(d, sdir, daemon, out)
    except KeyboardInterrupt:
        # QA L13: Ctrl-C during start-up cancels it, rather than leaving services starting silently
        out.warn("envctl: interrupted: stopping the services started so far")
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            out.warn(f"envctl: the supervisor (pid {daemon.pid}) is still stopping; 'envctl down' stops it")
        raise


def _wait_started(d: Path, sdir: Path, daemon, out) -> int:
    """Wait until every service of the ``daemon`` supervisor started (or failed); print the rows.
    Returns 0; raises EnvctlError as :func:`_raise_if_failed`, or when the supervisor dies."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        data = _read_status(d) or {}
        rows = data.get("services") or []
        if (data.get("supervisorPid") == daemon.pid and rows and data.get("watching")
                and all(r["state"] not in ("created", "starting") for r in rows)):
            out.result({"supervisorPid": daemon.pid, "services": rows},
                       "\n".join(f"{r['name']}: {r['state']}" + (f" (pid {r['pid']})" if r["pid"] else "")
                                 + ("" if r["state"] != "running" or r.get("ready") else ", not ready")
                                 for r in rows))
            _raise_if_failed(rows, sdir)
            return 0
        if daemon.poll() is not None:
            tail = (sdir / "daemon.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise EnvctlError("the services supervisor exited during start-up"
                              + (f": {tail[0]}" if tail else ""), hint=f"see {sdir / 'daemon.log'}")
        time.sleep(0.05)
    raise EnvctlError("services did not start within 600s", hint=f"see {sdir / 'daemon.log'}")
