"""``envctl generate ci --provider github|gitlab``: a CI job that proves the locked environment.

The job installs envctl (the version that generated the file), then runs ``envctl lock --check``
(exit 3 when envctl.lock is stale), ``envctl verify`` (the environment rebuilds to the locked
digests) and the project's test command inside the environment (``envctl run -- CMD``). The
envctl store (``ENVCTL_HOME``) is cached between runs, keyed by envctl.lock, so a warm run
downloads nothing.

The test command is ``--test-command`` or the spec's ``x-test`` extension key (a string, run by
``/bin/sh -c`` unless it is a plain word list, or an argv list).
"""

from __future__ import annotations

import shlex

from envctl.generate import GenerateError, Generated, header_lines
from envctl.generate.common import comment, render_template, test_command

__all__ = ["render", "run_line", "PATHS"]

PATHS = {"github": ".github/workflows/envctl.yml", "gitlab": ".gitlab-ci.yml"}
_SHELL_CHARS = set("|&;<>()$`\\\"'*?[]#~=%{}!\n")


def run_line(command) -> str:
    """``envctl run -- ...`` for a command string or argv list (plain words stay readable)."""
    if isinstance(command, list):
        return shlex.join(["envctl", "run", "--", *command])
    if not (set(command) & _SHELL_CHARS):
        return shlex.join(["envctl", "run", "--", *command.split()])
    return shlex.join(["envctl", "run", "--", "/bin/sh", "-c", command])


def _install() -> str:
    from envctl import __version__

    return f"python3 -m pip install 'envctl=={__version__}'"


def _github_expressions(inputs) -> dict:
    # GitHub's ${{ }} expressions, passed in as values so the template needs no raw blocks
    return {"temp": "${{ runner.temp }}", "os": "${{ runner.os }}",
            "lock_hash": "${{ hashFiles('%s') }}" % inputs.lock_name.replace("'", "''")}


def render(inputs, options) -> Generated:
    """The workflow bytes for ``options.provider``. Raises GenerateError for an unknown provider."""
    provider = options.provider
    if provider not in PATHS:
        raise GenerateError(f"generate ci: unknown provider {provider!r}", hint="use --provider github or gitlab")
    cmd = test_command(inputs.spec, options)
    notes = [] if cmd is not None else ["test command (set x-test in envctl.yaml or pass --test-command)"]
    spec_dir = inputs.spec_name
    text = render_template(f"ci-{provider}.yml.j2",
                           header=comment(header_lines(inputs, "ci", options, notes)),
                           install=_install(), test=run_line(cmd) if cmd is not None else None,
                           lock_name=inputs.lock_name, spec_name=spec_dir, gh=_github_expressions(inputs))
    return Generated("ci", PATHS[provider], text.encode(), tuple(notes))
