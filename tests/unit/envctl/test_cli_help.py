"""``envctl --help`` lists every command with a one-line description and the exit codes;
``envctl <cmd> --help`` works for every command in COMMANDS."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from envctl.cli import COMMANDS, main


def _help(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0, argv
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", ["60", "200"])
def test_top_help_one_line_per_command_and_exit_codes(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    text = _help(capsys, ["--help"])
    lines = text.splitlines()
    for name in COMMANDS:
        (line,) = [x for x in lines if re.match(rf"\s+{re.escape(name)}\s", x)]
        desc = line.split(None, 1)[1].strip()
        assert len(desc) > 10, (name, line)
        after = lines[lines.index(line) + 1]
        nxt = after.split()[0] if after.strip() else ""
        assert nxt in COMMANDS or not after.startswith("      "), f"{name}: description wraps: {after!r}"
    for code, what in (("0", "success"), ("1", "failure"), ("2", "usage"), ("3", "lock")):
        assert re.search(rf"^\s+{code}\s+.*{what}", text, re.M), code


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_help(capsys, name):
    text = _help(capsys, [name, "--help"])
    assert text.startswith(f"usage: envctl {name}"), text[:200]
    assert "--json" in text or name == "oci"


def test_help_through_the_entry_point():
    r = subprocess.run([sys.executable, "-m", "envctl", "--help"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "COLUMNS": "80"})
    assert r.returncode == 0 and "exit codes:" in r.stdout and all(f"    {n} " in r.stdout for n in COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_is_plain_text_without_rst_markup(capsys, name):
    text = _help(capsys, [name, "--help"])
    assert "``" not in text and ":func:" not in text and ":class:" not in text, text
