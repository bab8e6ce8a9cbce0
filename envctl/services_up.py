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

Below this module: envctl.services_session (the supervisor process), envctl.services_state (its
files; the status/down/restart/logs hooks are defined there and re-exported here) and
envctl.services_config (spec -> runtime configs). None of them imports this module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from envctl.envdir import env_dir
from envctl.services_config import rebuild_inputs, services_from_spec  # noqa: F401 (re-exported)
from envctl.services_state import (_pid_alive, _read_status, request_restart, services_dir,  # noqa: F401
                                   services_status, start_failures, stop_services)
from specs.errors import EnvctlError

__all__ = ["run_services", "services_status", "stop_services", "request_restart", "services_dir",
           "services_from_spec", "rebuild_inputs"]


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
    d = env_dir(project.spec_path)
    data = _read_status(d)
    if data and _pid_alive(data.get("supervisorPid")) and not host:
        _wait_supervisor_after_down(d, data["supervisorPid"])
    if data and _pid_alive(data.get("supervisorPid")):
        raise EnvctlError(f"services already running for {project.display_spec} "
                          f"(supervisor pid {data['supervisorPid']})",
                          hint="'envctl restart' restarts them, 'envctl down' stops them")


def _raise_if_failed(rows: list[dict], sdir: Path) -> None:
    """``up -d``: exit non-zero (like ``docker compose up --wait``) when a service died at once or
    never became ready (QA M7). The supervisor keeps running the others."""
    bad = start_failures(rows, sdir)
    if bad:
        names = " ".join(b.split(":", 1)[0] for b in bad)
        raise EnvctlError(f"{len(bad)} service(s) did not start: " + "; ".join(bad),
                          hint=f"see 'envctl logs {names}'; 'envctl down' stops the others")


def _detach(project, out, host: bool) -> int:
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
