"""QA M12: ``envctl logs SERVICE`` for a service that runs but has printed nothing (no .log file
yet) was a usage error (exit 2); now empty output, exit 0, like ``docker compose logs``."""

from __future__ import annotations

import json

import pytest

from envctl.cli import main
from envctl.commands._enter import env_dir
from envctl.project import find_project
from envctl.services_up import services_dir


@pytest.fixture
def sdir(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\nservices:\n  web: {command: x}\n"
                                          "  worker: {command: y}\n")
    d = services_dir(env_dir(find_project(str(tmp_path)).spec_path))
    d.mkdir(parents=True)
    rows = [{"name": n, "state": "running", "pid": None, "ready": True, "restarts": 0, "lastExit": None}
            for n in ("web", "worker")]
    (d / "status.json").write_text(json.dumps({"supervisorPid": None, "services": rows}))
    (d / "worker.log").write_text("tick 1\ntick 2\n")
    return tmp_path


def test_silent_running_service_has_empty_logs(sdir, capsys):
    assert main(["logs", "-C", str(sdir), "web"]) == 0
    assert capsys.readouterr().out == ""


def test_all_services_include_the_silent_one(sdir, capsys):
    assert main(["logs", "-C", str(sdir)]) == 0
    out = capsys.readouterr().out
    assert "tick 2" in out


def test_unknown_service_is_still_a_usage_error(sdir, capsys):
    assert main(["logs", "-C", str(sdir), "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no logs for service nosuch" in err and "web, worker" in err
