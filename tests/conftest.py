"""Shared fixtures: a temporary ENVCTL_HOME for every test, the CLI runner, the rootless user.

Tests touch only temporary directories, unmount what they mount, stop what they start and talk
only to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.registry_fixtures import (auth_env, auth_registry, registry, registry_proxy,  # noqa: E402,F401
                                             test_images)
from tests.fixtures.package_fixtures import apt_archive, npm_registry, pypi_index  # noqa: E402,F401


@pytest.fixture(autouse=True)
def envctl_home(tmp_path, monkeypatch) -> Path:
    """A fresh ENVCTL_HOME (Path) under the test's tmp dir; XDG config isolated too."""
    home = tmp_path / "envctl-home"
    monkeypatch.setenv("ENVCTL_HOME", str(home))
    monkeypatch.setenv("ENVCTL_CONFIG_DIR", str(tmp_path / "envctl-config"))
    monkeypatch.delenv("ENVCTL_DEBUG", raising=False)
    return home


@pytest.fixture
def run_envctl(envctl_home):
    """Run the real CLI in a subprocess: ``run_envctl(*args, cwd=..., input=..., env={...})``.

    Returns subprocess.CompletedProcess with text stdout/stderr.
    """

    def _run(*args, cwd=None, input=None, env=None, timeout=300):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run([sys.executable, "-m", "envctl", *map(str, args)], cwd=cwd, input=input,
                              env=full_env, capture_output=True, text=True, timeout=timeout)

    return _run


@pytest.fixture(scope="session")
def rootless_user():
    """An unprivileged user (tests.fixtures.users.RootlessUser) made by the test setup; needs root."""
    if os.geteuid() != 0:
        pytest.skip("creating the rootless test user needs root (CI runs as root)")
    from tests.fixtures.users import make_rootless_user

    from tests.fixtures.users import remove_what_we_added

    work = Path(tempfile.mkdtemp(prefix="envctl-rl-"))
    try:
        yield make_rootless_user(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_what_we_added()   # tests leave the machine as they found it
