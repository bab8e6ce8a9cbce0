"""End-to-end fixtures: the loopback registry mirror with the Debian base images in it.

The base images are built by scripts/base-images into its normal cache
(``$ENVCTL_BASE_CACHE`` or ``~/.cache/envctl-base-images``), keyed by every input including the
Debian archive's InRelease hashes: a fresh CI machine builds once (about a minute), reruns reuse
it. The registry itself is started by ``scripts/registry`` on a free loopback port with its state
in a temp dir, and stopped after the session.

These tests reach the Debian archive through the machine's configured apt sources (mmdebstrap,
and apt-get in the examples' steps); every registry request goes to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.registry import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def run_script(name: str, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run scripts/<name> with /usr/bin/python3-compatible environment; text output, no check."""
    return subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def need_root_for_mmdebstrap() -> None:
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap builds the base images in root mode here; CI runs as root")
    if not shutil.which("mmdebstrap"):
        pytest.fail("mmdebstrap is not installed (.ci/run installs it)")


@dataclass
class MirrorRegistry:
    """The loopback registry holding library/debian:bookworm[-slim]; ``host`` = "127.0.0.1:PORT"."""

    host: str
    state: Path
    build_output: str

    @property
    def mirror_env(self) -> dict[str, str]:
        """Environment that makes docker.io resolve through this registry (engine/sources/registry_config.py)."""
        return {"ENVCTL_REGISTRY_MIRRORS": f"docker.io=http://{self.host}"}


@pytest.fixture(scope="session")
def base_registry():
    """Session registry (scripts/registry, temp state, free port) with the base images pushed."""
    need_root_for_mmdebstrap()
    state = Path(tempfile.mkdtemp(prefix="envctl-e2e-registry-"))
    port = free_port()
    try:
        r = run_script("registry", "start", "--port", str(port), "--state", str(state), timeout=60)
        assert r.returncode == 0, r.stderr
        b = run_script("base-images", "--registry", f"127.0.0.1:{port}")
        assert b.returncode == 0, f"scripts/base-images failed:\n{b.stdout}\n{b.stderr}"
        sys.stderr.write(b.stdout)
        yield MirrorRegistry(f"127.0.0.1:{port}", state, b.stdout)
    finally:
        run_script("registry", "stop", "--state", str(state), timeout=60)
        shutil.rmtree(state, ignore_errors=True)
