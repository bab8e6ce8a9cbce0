"""``envctl down`` stops the services supervisor first and says what it stopped ("stopped" also when
the supervisor took the environment down with its services); its ``-t`` takes 0 or more seconds
(anything else is a usage error); ``envctl status`` shows per-service rows."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import envctl.services_up
import runtime.lifecycle
from envctl.cli import main
from envctl.commands._enter import env_dir
from envctl.project import find_project
from envctl.services_up import services_dir

SPEC = "version: 1\nimage: docker.io/library/busybox:1.36\nservices:\n  web:\n    command: [sleep, '600']\n"

# a stand-in supervisor: notes the SIGTERM it gets, then exits (what envctl.services_session does
# after giving each service SIGTERM + its grace period)
SUPERVISOR = """\
import pathlib, signal, sys, time
def term(*_):
    pathlib.Path(sys.argv[1]).write_text("TERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
pathlib.Path(sys.argv[1] + ".ready").write_text("")
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "envctl.yaml").write_text(SPEC)
    return find_project(str(tmp_path))


@pytest.fixture
def supervisor(project, tmp_path):
    marker = tmp_path / "supervisor.term"
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(marker)])
    try:
        deadline = time.monotonic() + 10
        while not marker.with_name(marker.name + ".ready").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        d = env_dir(project.spec_path)
        services_dir(d).mkdir(parents=True)
        (services_dir(d) / "status.json").write_text(json.dumps({"supervisorPid": proc.pid, "services": [
            {"name": "db", "state": "running", "pid": 4242, "ready": True, "restarts": 0, "lastExit": None,
             "crashes": 0, "nextStart": None},
            {"name": "web", "state": "backoff", "pid": None, "ready": False, "restarts": 3, "lastExit": 1,
             "crashes": 3, "nextStart": 2.5}]}))
        yield proc, marker
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_down_stops_services_through_their_supervisor(project, supervisor, capsys):
    proc, marker = supervisor
    assert main(["down", "-C", str(project.root), "--json", "-t", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert marker.read_text() == "TERM"          # the supervisor got SIGTERM (services: SIGTERM + grace)
    assert proc.wait(5) == 0
    assert res["servicesStopped"] is True and res["stopped"] is False


def test_down_without_services(project, capsys):
    assert main(["down", "-C", str(project.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["servicesStopped"] is False


def test_status_shows_service_rows(project, supervisor, capsys):
    assert main(["status", "-C", str(project.root), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["services"] == [
        {"name": "db", "state": "running", "pid": 4242, "ready": True, "restarts": 0, "lastExit": None},
        {"name": "web", "state": "backoff", "pid": None, "ready": False, "restarts": 3, "lastExit": 1}]
    assert main(["status", "-C", str(project.root)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert "  db  running  pid 4242  ready  restarts 0" in text
    assert "  web  backoff  not ready  restarts 3  last exit 1" in text


def test_status_services_stopped_when_supervisor_gone(project, supervisor, capsys):
    proc, _ = supervisor
    proc.kill()
    proc.wait()
    assert main(["status", "-C", str(project.root), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["state"], s["pid"]) for s in row["services"]] == [("db", "stopped", None),
                                                                              ("web", "stopped", None)]
    assert main(["status", "-C", str(project.root), "--json", "--all"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["services"]) == 2


@pytest.fixture
def cwd_project(tmp_path, monkeypatch):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    monkeypatch.chdir(d)
    return d


@pytest.mark.parametrize("services, env, expect", [
    (True, False, "proj: stopped\n"),
    (False, True, "proj: stopped\n"),
    (False, False, "proj: not running\n"),
])
def test_down_says_what_it_stopped(cwd_project, monkeypatch, capsys, services, env, expect):
    monkeypatch.setattr(envctl.services_up, "stop_services", lambda d, timeout: services)
    monkeypatch.setattr(runtime.lifecycle, "stop", lambda d, timeout: env)
    assert main(["down"]) == 0
    assert capsys.readouterr().out == expect


@pytest.mark.parametrize("argv,msg", [
    (["down", "-t", "-1"], "0 or more seconds"), (["down", "-t", "nan"], "0 or more seconds"),
    (["down", "-t", "x"], "invalid number of seconds")])
def test_negative_or_bad_grace_period_is_a_usage_error(project, capsys, argv, msg):
    with pytest.raises(SystemExit) as e:
        main([*argv, "-C", str(project.root)])
    assert e.value.code == 2
    assert msg in capsys.readouterr().err
