"""Every command takes the global options (-C/--project, -f/--file, --json, -q, -v), even when
another command redefines one of them (argparse shares a parent's action objects), and also before
the command name (``envctl -C DIR status``, as git users write it)."""

import argparse
import json

import pytest

from envctl.cli import COMMANDS, _hoist_common, build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    p = build_parser()
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_global_options_on_every_command(name):
    sp = _subparsers()[name]
    opts = sp._option_string_actions
    for flag in ("-C", "--project", "--file", "--json", "-q", "--quiet", "-v", "--verbose"):
        assert flag in opts, f"envctl {name}: {flag} missing"
    assert opts["--file"].dest == "file" and opts["-C"].dest == "project"
    assert "-f" in opts, f"envctl {name}: -f missing"  # -f is --file unless the command redefines it


def test_spec_commands_take_dash_f_as_file():
    subs = _subparsers()
    for name in ("validate", "init"):
        assert subs[name].parse_args(["-f", "x.yaml", "-C", "d", "--json", "-q"]).file == "x.yaml"


@pytest.mark.parametrize("argv,want", [
    (["-C", "d", "status"], ["status", "--project", "d"]),
    (["--json", "-C", "d", "-v", "logs", "-f", "web"], ["logs", "--json", "--project", "d", "-v", "-f", "web"]),
    (["-f", "x.yaml", "logs", "-f"], ["logs", "--file", "x.yaml", "-f"]),
    (["--project=d", "run", "--", "-C", "x"], ["run", "--project", "d", "--", "-C", "x"]),
    (["status", "-C", "d"], ["status", "-C", "d"]),
    (["-C", "d", "nosuchcommand"], ["-C", "d", "nosuchcommand"]),
    (["--version"], ["--version"]), (["-C"], ["-C"]), ([], []),
])
def test_common_options_before_the_command_move_after_it(argv, want):
    assert _hoist_common(argv) == want


def test_status_with_leading_dash_C(tmp_path, capsys):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: busybox\n")
    assert main(["-C", str(tmp_path), "--json", "status"]) == 0
    from envctl.commands._enter import env_id
    rows = json.loads(capsys.readouterr().out)
    assert [r["env"] for r in rows] == [env_id(tmp_path.resolve() / "envctl.yaml")]
