"""Regression: ``-e`` of run/shell/exec (QA defect list, /work/notes/defects.md).

``-e =x`` used to reach the builtin runtime, whose execve refused it after start-up with exit 1
and no message; ``-e KEY`` put ``KEY`` (no value) into the environment instead of the host's value.
"""

import pytest

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
