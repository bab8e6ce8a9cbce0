"""The ``-e`` and ``-w`` options of run/shell/exec.

``-e KEY=VALUE`` sets a variable, ``-e KEY`` passes the host's value (omitted when unset), and an
empty name (``-e =x``) is a usage error at parse time (the builtin runtime's execve would refuse it
after start-up, with exit 1 and no message). A relative ``-w`` is a usage error (exit 2) saying it
must be absolute, in the full CLI and through the fast entry (not a failed chdir, exit 1).
"""

import os
import subprocess
import sys

import pytest

from envctl import _fast
from envctl.cli import build_parser, main


@pytest.mark.parametrize("cmd", ["run", "shell", "exec"])
def test_env_key_value_and_host_passthrough(cmd, monkeypatch):
    monkeypatch.setenv("QA_FROM_HOST", "host value")
    monkeypatch.delenv("QA_UNSET", raising=False)
    args = build_parser([cmd]).parse_args([cmd, "-e", "A=1", "-e", "QA_FROM_HOST", "-e", "QA_UNSET", "-e", "B="])
    assert args.env == ["A=1", "QA_FROM_HOST=host value", "B="]


def test_env_defaults_do_not_leak_between_parses():
    p = build_parser(["run"])
    assert p.parse_args(["run", "-e", "A=1"]).env == ["A=1"]
    assert p.parse_args(["run"]).env == []


@pytest.mark.parametrize("value", ["=x", "="])
def test_empty_env_name_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "-e", value, "--", "true"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "envctl: error: argument -e/--env:" in err and "the variable name is empty" in err


@pytest.mark.parametrize("cmd", ["run", "shell", "exec"])
def test_relative_workdir_is_a_usage_error(tmp_path, capsys, cmd):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    with pytest.raises(SystemExit) as e:
        main([cmd, "-C", str(tmp_path), "-w", "rel", *(["--", "pwd"] if cmd != "shell" else [])])
    assert e.value.code == 2
    assert "'rel': must be an absolute path inside the environment" in capsys.readouterr().err


def test_fast_entry_hands_relative_workdir_over(tmp_path):
    assert _fast.parse_run(["-w", "rel", "--", "pwd"]) is None
    assert _fast.parse_run(["-w", "/abs", "--", "pwd"]).workdir == "/abs"
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    r = subprocess.run([sys.executable, "-m", "envctl", "run", "-w", "rel", "--", "pwd"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env={**os.environ, "ENVCTL_HOME": str(tmp_path / "h")})
    assert r.returncode == 2 and "must be an absolute path" in r.stderr, r.stderr
