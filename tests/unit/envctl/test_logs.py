"""``envctl logs``: a service that runs but has printed nothing (no .log file yet) has empty logs
(exit 0, like ``docker compose logs``), an unknown service is a usage error naming the known ones;
``-n LINES`` takes 0 or more (``-n 0`` prints nothing), anything else is a usage error (exit 2)."""

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


def test_unknown_service_is_a_usage_error(sdir, capsys):
    assert main(["logs", "-C", str(sdir), "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no logs for service nosuch" in err and "web, worker" in err


@pytest.fixture
def proj(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\nservices:\n  web: {command: x}\n")
    d = services_dir(env_dir(find_project(str(tmp_path)).spec_path))
    d.mkdir(parents=True)
    (d / "status.json").write_text(json.dumps({"supervisorPid": None, "services": []}))
    (d / "web.log").write_text("one\ntwo\nthree\n")
    return str(tmp_path)


@pytest.mark.parametrize("argv,msg", [
    (["logs", "-n", "-1", "web"], "0 or more"),
    (["logs", "-n", "x", "web"], "invalid number of lines")])
def test_negative_or_bad_line_count_is_a_usage_error(proj, capsys, argv, msg):
    with pytest.raises(SystemExit) as e:
        main([*argv, "-C", proj])
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize("n,want", [("0", ""), ("1", "three\n"), ("2", "two\nthree\n"), ("9", "one\ntwo\nthree\n")])
def test_tail_counts(proj, capsys, n, want):
    assert main(["logs", "-n", n, "web", "-C", proj]) == 0
    assert capsys.readouterr().out == want
