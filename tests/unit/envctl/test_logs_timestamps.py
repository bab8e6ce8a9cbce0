"""``envctl logs`` shows the services' text without the file's time stamps, ``-t`` shows them,
sessions are separated, and ``-f envctl.yaml`` (follow, not file) gets a hint."""

from __future__ import annotations

import json

import pytest

from envctl.cli import main
from envctl.commands._enter import env_dir
from envctl.project import find_project
from envctl.services_up import services_dir
from runtime.service_log import SESSION_MARK, LogSink


@pytest.fixture
def proj(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\nservices:\n  web: {command: x}\n")
    d = services_dir(env_dir(find_project(str(tmp_path)).spec_path))
    d.mkdir(parents=True)
    rows = [{"name": "web", "state": "running", "pid": None, "ready": True, "restarts": 0, "lastExit": None}]
    (d / "status.json").write_text(json.dumps({"supervisorPid": None, "services": rows}))
    for text in ("first session", "second session"):   # two `envctl up`s, each with its own sink
        sink = LogSink(d, ["web"], console=None)
        sink.line("web", text)
        sink.close()
    return tmp_path


def test_logs_print_the_text_and_mark_each_new_session(proj, capsys):
    assert main(["logs", "-C", str(proj)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "first session" and lines[2] == "second session"
    assert lines[1].startswith(SESSION_MARK)


def test_logs_timestamps_show_when_each_line_was_written(proj, capsys):
    import re

    assert main(["logs", "-C", str(proj), "--timestamps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line), line
    assert lines[0].endswith(" first session")


def test_logs_dash_f_with_a_spec_file_says_that_f_is_follow(proj, capsys):
    assert main(["logs", "-C", str(proj), "-f", "envctl.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no logs for service envctl.yaml" in err and "--file FILE" in err
