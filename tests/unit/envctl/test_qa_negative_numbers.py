"""QA L7: ``down -t -1`` was taken as "no grace period" and ``logs -n -1`` printed all lines but the
first; both are usage errors now (exit 2). ``-n 0`` prints nothing (``lines[-0:]`` was everything)."""

from __future__ import annotations

import json

import pytest

from envctl.cli import main
from envctl.commands._enter import env_dir
from envctl.project import find_project
from envctl.services_up import services_dir


@pytest.fixture
def proj(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\nservices:\n  web: {command: x}\n")
    d = services_dir(env_dir(find_project(str(tmp_path)).spec_path))
    d.mkdir(parents=True)
    (d / "status.json").write_text(json.dumps({"supervisorPid": None, "services": []}))
    (d / "web.log").write_text("one\ntwo\nthree\n")
    return str(tmp_path)


@pytest.mark.parametrize("argv,msg", [
    (["down", "-t", "-1"], "0 or more seconds"), (["down", "-t", "nan"], "0 or more seconds"),
    (["down", "-t", "x"], "invalid number of seconds"), (["logs", "-n", "-1", "web"], "0 or more"),
    (["logs", "-n", "x", "web"], "invalid number of lines")])
def test_negative_or_bad_numbers_are_usage_errors(proj, capsys, argv, msg):
    with pytest.raises(SystemExit) as e:
        main([*argv, "-C", proj])
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize("n,want", [("0", ""), ("1", "three\n"), ("2", "two\nthree\n"), ("9", "one\ntwo\nthree\n")])
def test_tail_counts(proj, capsys, n, want):
    assert main(["logs", "-n", n, "web", "-C", proj]) == 0
    assert capsys.readouterr().out == want
