"""``envctl up`` starting services (run as host processes here): ``up -d`` exits non-zero with the
reason when a service dies at once or never becomes ready, the foreground ``up`` names the service
that did not start, Ctrl-C while ``up -d`` waits for start-up stops what was started (promptly, even
while a service waits for readiness) and exits 130, and a second ``up`` (either form) refuses while
a supervisor already runs the project's services, naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from envctl.commands._enter import env_dir
from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach, run_services, services_dir, services_status, stop_services
from specs.errors import EnvctlError
from tests.fixtures.registry import free_port


def _project(tmp_path, services: str):
    (tmp_path / "envctl.yaml").write_text(f"version: 1\nimage: busybox\nservices:\n{services}")
    return find_project(str(tmp_path))


@pytest.fixture
def detach(tmp_path):
    started = []

    def run(services: str):
        proj = _project(tmp_path, services)
        started.append(env_dir(proj.spec_path))
        return _detach(proj, Output(), host=True)

    yield run
    for d in started:
        stop_services(d)


def test_command_not_found_fails_with_its_log_line(detach, tmp_path):
    port = free_port()
    with pytest.raises(EnvctlError) as e:
        detach(f"  a:\n    command: nosuchcmd_qa\n    restart: never\n    ready: {{port: {port}, timeout: 5s}}\n")
    assert "a: exited with status 127" in e.value.message and "nosuchcmd_qa" in e.value.message
    assert "envctl logs a" in e.value.hint and e.value.exit_code == 1


def test_not_ready_within_timeout_fails(detach):
    port = free_port()
    with pytest.raises(EnvctlError) as e:
        detach(f"  a:\n    command: sleep 100\n    ready: {{port: {port}, timeout: 1s}}\n"
               "  b:\n    command: sleep 100\n")
    assert e.value.message.startswith("1 service(s) did not start: a: running, not ready")


def test_started_services_exit_zero(detach, tmp_path):
    port = free_port()
    assert detach(f"  a:\n    command: exec {sys.executable} -m http.server {port} --bind 127.0.0.1\n    ready: {{port: {port}, timeout: 10s}}\n"
                  "  once:\n    command: 'true'\n    restart: never\n") == 0
    rows = {r["name"]: r for r in services_status(env_dir(tmp_path / "envctl.yaml"))}
    assert rows["a"]["state"] == "running" and rows["a"]["ready"]


FOREGROUND = """
import sys
from envctl.output import Output
from envctl.project import find_project
from envctl.services_session import ServicesSession
sys.exit(ServicesSession(find_project(sys.argv[1]), Output(), host=True).run())
"""


def test_foreground_up_names_the_service_that_did_not_start(tmp_path):
    import signal
    import subprocess

    port = free_port()
    _project(tmp_path, f"  a:\n    command: nosuchcmd_qa\n    restart: never\n    ready: {{port: {port}, timeout: 5s}}\n"
                       "  b:\n    command: sleep 100\n")
    p = subprocess.Popen([sys.executable, "-c", FOREGROUND, str(tmp_path)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in p.stderr:
            lines.append(line)
            if "watching" in line:
                break
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = "".join(lines)
    assert "service a: exited with status 127: " in text and "nosuchcmd_qa" in text, text
    assert "envctl: 1 of 2 service(s) running" in text, text


# Ctrl-C while ``up -d`` waits for start-up

SCRIPT = """
import sys
from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach
try:
    _detach(find_project(sys.argv[1]), Output(), host=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _status(d):
    try:
        return json.loads((services_dir(d) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_ctrl_c_during_start_up_stops_the_services(tmp_path):
    port = free_port()
    pidfile = tmp_path / "svc.pid"
    (tmp_path / "envctl.yaml").write_text(
        "version: 1\nimage: busybox\nservices:\n"
        f"  slow:\n    command: echo $$ > {pidfile}; exec sleep 600\n    ready: {{port: {port}, timeout: 120s}}\n")
    d = env_dir(tmp_path / "envctl.yaml")
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    sup = None
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()
                   and any(r.get("state") == "starting" for r in _status(d).get("services") or ())):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.02)
        sup = _status(d)["supervisorPid"]
        svc = int(pidfile.read_text())
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert time.monotonic() - t0 < 30      # not the 120 s readiness timeout
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "stopping the services started so far" in err
    assert not os.path.exists(f"/proc/{sup}") or open(f"/proc/{sup}/stat").read().split(") ")[1][0] == "Z"
    assert not os.path.exists(f"/proc/{svc}")


# a second ``up`` while a supervisor runs

@pytest.fixture
def project(tmp_path):
    (tmp_path / "envctl.yaml").write_text(textwrap.dedent("""\
        version: 1
        image: docker.io/library/busybox:1.36
        services:
          web: {command: [sleep, "600"]}
    """))
    return find_project(str(tmp_path))


@pytest.mark.parametrize("detached", [False, True])  # up -d or foreground up
def test_second_up_refuses_while_a_supervisor_runs(project, detached, monkeypatch):
    monkeypatch.setenv("ENVCTL_SERVICES_ON_HOST", "1")  # no runtime state to wait for
    sdir = services_dir(env_dir(project.spec_path))
    sdir.mkdir(parents=True)
    (sdir / "status.json").write_text(json.dumps({"supervisorPid": os.getpid(), "services": []}))
    with pytest.raises(EnvctlError, match=f"services already running .*supervisor pid {os.getpid()}"):
        run_services(project, Output(False, 0), detach=detached)
    assert not (sdir / "daemon.log").exists()  # nothing was started
