"""scripts/demo, the README's first command, end to end with its own registry, store and copy."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, need_root_for_mmdebstrap, run_script
from tests.fixtures.registry import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.slow]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_twice_and_cleans_up(tmp_path, envctl_home):
    need_root_for_mmdebstrap()
    if port_in_use(8000):
        pytest.fail("127.0.0.1:8000 is taken; the webapp example serves there")
    port = free_port()
    env = {**os.environ, "ENVCTL_REGISTRY_PORT": str(port), "ENVCTL_REGISTRY_STATE": str(tmp_path / "reg"),
           "ENVCTL_DEMO_DIR": str(tmp_path / "demo"), "ENVCTL_HOME": str(envctl_home)}
    for run in (1, 2):
        r = subprocess.run(["bash", str(REPO / "scripts" / "demo")], env=env, capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, f"run {run}: exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
        out = r.stdout
        assert "Hello from an envctl environment" in out and "<h1>Reloaded at" in out
        assert "envctl.lock is up to date" in out and "verify: OK" in out and "demo finished" in out
        assert f"registry started: 127.0.0.1:{port}" in out          # it started it, so it stopped it
    assert "cached bookworm" in out                                     # second run: nothing rebuilt
    assert run_script("registry", "status", "--state", str(tmp_path / "reg")).returncode == 3
    assert not port_in_use(8000) and not port_in_use(port)
    assert (Path(tmp_path / "demo" / "webapp" / "greeting.py").read_text()
            == (REPO / "examples" / "webapp" / "greeting.py").read_text())
