"""QA M8 through the installed fast entry (``.venv/bin/envctl``) on a warm environment: ``-e KEY``
passes the host's value (omitted when unset) and ``-e =x`` is a usage error, as in the full CLI;
envctl/_fast.py's parse_run hands these forms to the full parser."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from envctl import _fast
from tests.integration.runtime_fixtures import root_env  # noqa: F401 (fixture)

ENVCTL = str(Path(sys.executable).parent / "envctl")


def test_parse_run_hands_over_env_without_name_or_value():
    assert _fast.parse_run(["-e", "A", "--", "x"]) is None
    assert _fast.parse_run(["-e", "=x", "--", "x"]) is None
    assert _fast.parse_run(["--env", "=", "--", "x"]) is None
    assert _fast.parse_run(["-e", "A=", "--", "x"]).env == ["A="]


def test_installed_entry_env_forms(root_env):
    assert os.access(ENVCTL, os.X_OK), ENVCTL
    root_env.prepare()
    warm = root_env.run_raw([ENVCTL, "run", "-e", "B=2", "--", "sh", "-c", 'echo "$B"'])
    assert (warm.returncode, warm.stdout) == (0, "2\n"), warm.stderr
    r = root_env.run_raw([ENVCTL, "run", "-e", "A", "--", "sh", "-c", 'echo "${A-unset}"'], env={"A": "hello"})
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    r = root_env.run_raw([ENVCTL, "run", "-e", "NOPE_QA", "--", "sh", "-c", 'echo "${NOPE_QA-unset}"'])
    assert (r.returncode, r.stdout) == (0, "unset\n"), r.stderr
    r = root_env.run_raw([ENVCTL, "run", "-e", "=x", "--", "true"])
    assert r.returncode == 2 and "envctl: error:" in r.stderr and "variable name is empty" in r.stderr, r.stderr
