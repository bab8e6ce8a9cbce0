"""Every command takes the global options (-C/--project, -f/--file, --json, -q, -v), even when
another command redefines one of them (argparse shares a parent's action objects)."""

import argparse

import pytest

from envctl.cli import COMMANDS, build_parser


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
