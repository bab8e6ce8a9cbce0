"""The one exception tree of envctl, and the exit codes it maps to.

Every error a user can cause or meet is an :class:`EnvctlError`; the CLI prints
``envctl: error: <message>`` (plus ``hint: ...`` when there is one) and exits
with ``exit_code``. Nothing else is caught there: any other exception is a bug
and shows a traceback only with ``ENVCTL_DEBUG=1``.

Tree (subclasses in ``engine/errors.py`` and ``runtime/errors.py`` hang below)::

    EnvctlError                     exit 1   generic failure
    ├── UsageError                  exit 2   bad command-line arguments
    ├── SpecError                   exit 2   envctl.yaml problem, with file:line:col and key path
    │   └── SpecErrors              exit 2   several SpecError at once (all reported)
    ├── InvalidReference            exit 2   image reference grammar
    ├── InvalidDigest               exit 2   digest grammar
    ├── LockError                   exit 1   envctl.lock unreadable or inconsistent
    │   └── LockDrift               exit 3   lock missing or stale w.r.t. envctl.yaml
    ├── engine.errors.EngineError   exit 1   registry, store, unpack, build
    └── runtime.errors.ContainerError exit 1 namespaces, mounts, cgroups, processes

Exit codes (documented in ``envctl --help``): 0 ok, 1 failure, 2 usage or spec
error, 3 lock drift. ``envctl run`` passes the command's own status through.
"""

from __future__ import annotations

__all__ = [
    "EnvctlError",
    "UsageError",
    "SpecError",
    "SpecErrors",
    "InvalidReference",
    "InvalidDigest",
    "LockError",
    "LockDrift",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "EXIT_DRIFT",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DRIFT = 3


class EnvctlError(Exception):
    """Base of every user-facing error.

    Args:
        message: one line: what failed and on which object (lowercase, no final period).
        hint: optional one line telling the user what to do about it.
    """

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(EnvctlError):
    """Bad command-line usage (exit 2)."""

    exit_code = EXIT_USAGE


class SpecError(EnvctlError):
    """A problem in envctl.yaml at a known place (exit 2).

    Args:
        message: what is wrong, e.g. ``expected a string, got a mapping``.
        file: path of the spec file as the user named it (str).
        line, col: 1-based position, or None when unknown.
        path: dotted key path such as ``steps[1].run`` ('' for the document).
        hint: what to do.

    Renders as ``envctl.yaml:7:5: steps[1].run: expected a string, got a mapping``.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        path: str = "",
        hint: str | None = None,
    ):
        self.file = file
        self.line = line
        self.col = col
        self.path = path
        self.detail = message
        where = file or "envctl.yaml"
        if line is not None:
            where += f":{line}"
            if col is not None:
                where += f":{col}"
        text = f"{where}: {path + ': ' if path else ''}{message}"
        super().__init__(text, hint)


class SpecErrors(SpecError):
    """Several spec errors found in one pass; ``errors`` keeps them in file order."""

    def __init__(self, errors: list[SpecError]):
        self.errors = sorted(errors, key=lambda e: (e.line or 0, e.col or 0, e.path))
        first = self.errors[0]
        EnvctlError.__init__(self, "\n".join(e.message for e in self.errors), first.hint)
        self.file, self.line, self.col, self.path = first.file, first.line, first.col, first.path
        self.detail = first.detail


class InvalidReference(EnvctlError):
    """An image reference that does not follow the distribution reference grammar (exit 2)."""

    exit_code = EXIT_USAGE


class InvalidDigest(EnvctlError):
    """A digest that is not ``algorithm:hex`` with a supported algorithm (exit 2)."""

    exit_code = EXIT_USAGE


class LockError(EnvctlError):
    """envctl.lock cannot be read or does not fit the spec (exit 1)."""


class LockDrift(LockError):
    """envctl.lock is missing or stale relative to envctl.yaml (exit 3)."""

    exit_code = EXIT_DRIFT
