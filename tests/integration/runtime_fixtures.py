"""Fixtures for runtime integration tests: one busybox environment per test, as root or as the
rootless test user, driven through the real CLI (``python -m envctl``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Env:
    """A prepared environment: ``project`` dir, ``home`` (ENVCTL_HOME), ``mode`` root|rootless."""

    mode: str
    base: Path
    project: Path
    home: Path
    rootfs: Path
    user: object = None
    uid: int = 0
    procs: list = field(default_factory=list)

    def _env(self, extra=None) -> dict:
        env = {"ENVCTL_HOME": str(self.home), "PYTHONPATH": str(REPO)}
        env.update(extra or {})
        return env

    def prepare(self, opts: dict | None = None) -> None:
        argv = [self.python, "-m", "tests.integration.runtime_env", str(self.project), str(self.rootfs),
                json.dumps(opts or {})]
        r = self.run_raw(argv, cwd=REPO)
        assert r.returncode == 0, r.stderr

    @property
    def python(self) -> str:
        return self.user.python if self.user else sys.executable

    def run_raw(self, argv, *, cwd=None, input=None, timeout=60, env=None):
        if self.user:
            return self.user.run(argv, cwd=cwd or self.project, env=self._env(env), input=input, timeout=timeout)
        full = dict(os.environ)
        full.update(self._env(env))
        return subprocess.run(argv, cwd=cwd or self.project, env=full, input=input, timeout=timeout,
                              capture_output=True, text=True)

    def envctl(self, *args, input=None, timeout=60, env=None):
        """Run ``envctl ARGS`` in the project; CompletedProcess (text)."""
        return self.run_raw([self.python, "-m", "envctl", *args], input=input, timeout=timeout, env=env)

    def popen(self, *args, **kw):
        """Start ``envctl ARGS`` in the background (stdout piped, text); killed at teardown."""
        argv = [self.python, "-m", "envctl", *args]
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        if self.user:
            p = self.user.popen(argv, cwd=self.project, env=self._env(), text=True, **kw)
        else:
            full = dict(os.environ)
            full.update(self._env())
            p = subprocess.Popen(argv, cwd=self.project, env=full, text=True, **kw)
        self.procs.append(p)
        return p

    def state_file(self) -> Path:
        return next(self.home.glob("envs/*/")) / "state.json"

    def wait_state(self, timeout=20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return json.loads(self.state_file().read_text())
            except (OSError, ValueError, StopIteration):
                time.sleep(0.02)
        raise AssertionError("state.json never appeared")


def _make(mode: str, request) -> Env:
    if mode == "rootless":
        user = request.getfixturevalue("rootless_user")
        base = user.tmpdir(prefix="envctl-rt-")
        uid = user.uid
    else:
        if os.geteuid() != 0:
            pytest.skip("root mode needs root")
        user, uid = None, 0
        base = Path(tempfile.mkdtemp(prefix="envctl-rt-"))
    os.chmod(base, 0o755)
    project = base / "project"
    home = base / "home"
    for d in (project, home):
        d.mkdir()
        if user:
            os.chown(d, user.uid, user.gid)
    return Env(mode, base, project, home, base / "rootfs", user, uid)


def _teardown(env: Env) -> None:
    """Kill what the test left running (by its Popen), then remove the environment's files."""
    for p in env.procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    shutil.rmtree(env.base, ignore_errors=True)


@pytest.fixture(params=["root", "rootless"])
def rt_env(request):
    """A busybox environment (prepare() it with spec options), as root and as the rootless user."""
    env = _make(request.param, request)
    yield env
    _teardown(env)


@pytest.fixture
def root_env(request):
    """Root-only variant (cgroup v1 limits are enforceable only as root on this host)."""
    env = _make("root", request)
    yield env
    _teardown(env)


@pytest.fixture
def rootless_env(request):
    """Rootless-only variant."""
    env = _make("rootless", request)
    yield env
    _teardown(env)
