"""Human vs JSON output and verbosity, in one place for every command."""

from __future__ import annotations

import sys

__all__ = ["Output"]


class Output:
    """Writes results to stdout and progress/notices to stderr.

    Args:
        json_mode: results are printed as JSON documents (bool).
        verbosity: -1 quiet, 0 normal, 1+ verbose.
    """

    def __init__(self, json_mode: bool = False, verbosity: int = 0):
        self.json_mode = json_mode
        self.verbosity = verbosity

    def result(self, data, text: str | None = None) -> None:
        """Print a command's result: ``data`` as JSON in --json mode, else ``text`` (or str(data))."""
        if self.json_mode:
            import json  # here: the warm `envctl run` path prints no result

            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            sys.stdout.write((text if text is not None else str(data)).rstrip("\n") + "\n")
        sys.stdout.flush()

    def info(self, msg: str) -> None:
        """A progress line on stderr (hidden by -q)."""
        if self.verbosity >= 0:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def debug(self, msg: str) -> None:
        """A detail line on stderr (shown with -v)."""
        if self.verbosity > 0:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def warn(self, msg: str) -> None:
        """A warning on stderr (always shown)."""
        sys.stderr.write(f"envctl: warning: {msg}\n")
        sys.stderr.flush()
