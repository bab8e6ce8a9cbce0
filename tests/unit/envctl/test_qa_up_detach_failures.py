"""QA M7: ``envctl up -d`` exits non-zero with the reason when a service dies at once or never
becomes ready (was exit 0 with "a: exited" / "a: running"). Services run as host processes."""

from __future__ import annotations

import sys

import pytest

from envctl.commands._enter import env_dir
from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach, services_status, stop_services
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
