"""``envctl version``: print the version (and, with --json, the Python and platform)."""

from __future__ import annotations


def add_parser(sub, name, parents):
    """Register ``envctl version`` on ``sub`` (argparse subparsers action) with the common option
    ``parents`` (list of ArgumentParser); returns the new subparser (argparse.ArgumentParser).
    """
    return sub.add_parser(name, parents=parents, help="print the envctl version")


def run(args) -> int:
    """``envctl version``: print the envctl version, Python version and platform. Returns 0 (int).
    Raises EnvctlError subclasses (the CLI prints them and exits with their ``exit_code``).
    """
    import platform
    import sys

    from envctl import __version__
    from envctl.output import Output

    data = {"version": __version__, "python": platform.python_version(),
            "platform": f"{sys.platform}/{platform.machine()}"}
    Output(args.json, args.verbosity).result(data, f"envctl {__version__}")
    return 0
