"""Regression (QA defect list): ``envctl down`` with services running printed
"PROJECT: not running; services stopped" (the supervisor ends the environment together with the
services, so the environment was already gone when down looked). It now says "stopped"."""

import pytest

import envctl.services_up
import runtime.lifecycle
from envctl.cli import main


@pytest.fixture
def project(tmp_path, monkeypatch):
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
def test_down_says_what_it_stopped(project, monkeypatch, capsys, services, env, expect):
    monkeypatch.setattr(envctl.services_up, "stop_services", lambda d, timeout: services)
    monkeypatch.setattr(runtime.lifecycle, "stop", lambda d, timeout: env)
    assert main(["down"]) == 0
    assert capsys.readouterr().out == expect
