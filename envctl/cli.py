"""The envctl command line: argument tree, dispatch, and the one place that maps errors to exits.

Exit codes: 0 ok, 1 failure, 2 usage or spec error, 3 lock drift; ``run``/``exec`` pass the
command's own status through. Errors print ``envctl: error: <one line>`` and, when known,
``hint: <what to do>``; tracebacks only with ``ENVCTL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from specs.errors import EXIT_FAILURE, EXIT_USAGE, EnvctlError

__all__ = ["main", "build_parser", "COMMANDS"]

# name -> module under envctl.commands. Each module defines add_parser(sub) and run(args).
# Add a command here when it really exists (no placeholders).
COMMANDS: dict[str, str] = {
    "version": "version",
    "init": "init",
    "validate": "validate",
    "lock": "lock",
    "login": "login",
    "logout": "login",
    "run": "run",
    "shell": "shell",
    "exec": "exec",
    "down": "down",
    "status": "status",
    "up": "up",
    "gc": "gc",
    "store": "store",
    "logs": "logs",
    "restart": "restart",
    "generate": "generate",
    "import": "import_",
    "verify": "verify",
    "push": "push",
    "export": "export",
    "bundle": "bundle",
    "oci": "oci",
    "doctor": "doctor",
    "completion": "completion",
}

EPILOG = """\
exit codes:
  0  success
  1  failure
  2  usage or envctl.yaml error
  3  envctl.lock missing or stale (lock drift)
  run/exec exit with the command's own status (126 not executable, 127 not found, 128+N signal)

environment:
  ENVCTL_HOME     store location (default /var/lib/envctl as root, ~/.local/share/envctl otherwise)
  ENVCTL_DEBUG=1  show tracebacks
"""


class _TopHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``envctl --help``: one line per command, whatever the terminal width (never wrapped)."""

    def _split_lines(self, text, width):
        return text.splitlines()

    def add_argument(self, action):
        # argparse sizes the help column by options only; a command name longer than the
        # longest option ("completion") would push its description to the next line
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            longest = max((len(c) for c in action.choices), default=0)
            self._action_max_length = max(self._action_max_length, longest + self._current_indent + 4)


class _Parser(argparse.ArgumentParser):
    def format_help(self) -> str:
        # command descriptions are the modules' docstrings: show their RST markup as plain text
        import re

        text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", super().format_help())
        return text.replace("``", "")

    def error(self, message: str):  # argparse's own exit is 2 too; keep our one-line format
        self.print_usage(sys.stderr)
        sys.stderr.write(f"envctl: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _common_options() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-C", "--project", metavar="DIR", dest="project",
                        help="project directory (default: search upwards for envctl.yaml)")
    common.add_argument("-f", "--file", metavar="FILE", help="spec file (default: envctl.yaml)")
    common.add_argument("--json", action="store_true", help="print results as JSON")
    common.add_argument("-q", "--quiet", action="count", default=0, help="hide progress lines (results are still printed)")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    return common


def build_parser(only: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with the commands named in ``only`` (default: all of them).

    Every subparser costs about a millisecond (argparse looks up gettext catalogs on disk for
    its own strings), so :func:`main` registers just the command being run; the full tree is
    built for ``--help``, a bare ``envctl`` and unknown commands.
    """
    from envctl import __version__

    p = _Parser(prog="envctl", description="Declarative, reproducible development environments.",
                epilog=EPILOG, formatter_class=_TopHelpFormatter)
    p.add_argument("--version", action="version", version=f"envctl {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        if only is not None and name not in only:
            continue
        mod = importlib.import_module(f"envctl.commands.{module}")
        # a fresh parent per command: argparse shares parent actions, and a command that
        # overrides one (logs: conflict_handler="resolve" for -f) would strip it from all
        sp = mod.add_parser(sub, name, [_common_options()])
        sp.set_defaults(_module=mod)
    return p


def _commands_needed(argv: list[str]) -> list[str] | None:
    """The commands the parser needs for ``argv``: [] for --version, the one named, else all."""
    if argv[:1] == ["--version"]:
        return []
    if argv and argv[0] in COMMANDS:
        return [argv[0]]
    return None


_LEADING_VALUE = {"-C": "--project", "--project": "--project", "-f": "--file", "--file": "--file"}
_LEADING_FLAGS = {"--json", "-q", "--quiet", "-v", "--verbose"}


def _hoist_common(argv: list[str]) -> list[str]:
    """``envctl -C DIR status`` (git's habit) -> ``envctl status --project DIR``: common options
    before the command move after it (``-f`` spelled ``--file``: ``logs -f`` is --follow). Any
    other leading token leaves argv unchanged (QA L4). Returns the new argv (list of str)."""
    moved, i = [], 0
    while i < len(argv):
        tok = argv[i]
        name, eq, value = tok.partition("=")
        if tok in _LEADING_FLAGS:
            moved.append(tok)
            i += 1
        elif eq and name in ("--project", "--file"):
            moved += [name, value]
            i += 1
        elif tok in _LEADING_VALUE and i + 1 < len(argv):
            moved += [_LEADING_VALUE[tok], argv[i + 1]]
            i += 2
        else:
            break
    if moved and i < len(argv) and argv[i] in COMMANDS:
        return [argv[i], *moved, *argv[i + 1:]]
    return argv


def _check_command(argv: list[str]) -> None:
    """An unknown command is one usage error with the closest commands (git's "did you mean").

    Raises UsageError (exit 2) when ``argv[0]`` is neither an option nor a command.
    """
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return
    import difflib

    from specs.errors import UsageError

    close = difflib.get_close_matches(argv[0], list(COMMANDS), n=3, cutoff=0.5)
    hint = ("did you mean " + " or ".join(f"'envctl {c}'" for c in close) + "? " if close else "") + \
        "'envctl --help' lists the commands"
    raise UsageError(f"unknown command '{argv[0]}'", hint=hint)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (int)."""
    argv = _hoist_common(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("ENVCTL_DEBUG") == "1"
    try:
        _check_command(argv)
        parser = build_parser(_commands_needed(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "_module", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        args.verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
        rc = args._module.run(args)
        return int(rc or 0)
    except EnvctlError as e:
        if debug:
            import traceback
            traceback.print_exc()
        sys.stderr.write(f"envctl: error: {e.message}\n")
        if e.hint:
            sys.stderr.write(f"hint: {e.hint}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("envctl: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as e:  # a bug: one line unless debugging
        if debug:
            raise
        sys.stderr.write(f"envctl: internal error: {type(e).__name__}: {e}\n"
                         "hint: this is a bug in envctl; rerun with ENVCTL_DEBUG=1 and report the traceback\n")
        return EXIT_FAILURE
