"""The examples end to end: debian:bookworm through the loopback mirror, steps from the Debian
archive, services with readiness and hot reload, the CI checks (what scripts/demo shows)."""

from __future__ import annotations

import json
import os
import re
import signal
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.registry import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def copy_example(name: str, dest: Path) -> Path:
    return Path(shutil.copytree(EXAMPLES / name, dest / name,
                                ignore=shutil.ignore_patterns("__pycache__", "envctl.lock")))


def ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return None


def poll(fn, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := fn():
            return value
        time.sleep(interval)
    return None


def index_digest(build_output: str, tag: str) -> str:
    return re.search(rf"(?:built|cached) {tag}: index (sha256:[0-9a-f]{{64}})", build_output).group(1)


def test_cli_tool_tests_run_inside_the_environment(base_registry, tmp_path, run_envctl):
    proj = copy_example("cli-tool", tmp_path)
    env = base_registry.mirror_env
    ok(run_envctl("lock", cwd=proj, env=env))
    lock = (proj / "envctl.lock").read_bytes()
    # the unchanged "image: debian:bookworm" resolved through the mirror to the image we built
    assert json.loads(lock)["image"] == {
        "reference": "docker.io/library/debian:bookworm",
        "digest": index_digest(base_registry.build_output, "bookworm"),
        "mediaType": "application/vnd.oci.image.index.v1+json"}
    ok(run_envctl("lock", cwd=proj, env=env))
    assert (proj / "envctl.lock").read_bytes() == lock
    out = ok(run_envctl("run", "--", "python3", "-m", "pytest", cwd=proj, env=env, timeout=600))
    assert "6 passed" in out
    ok(run_envctl("lock", "--check", cwd=proj))
    assert "lines 1" in ok(run_envctl("run", "--", "sh", "-c", "echo hi | python3 -m wordstat", cwd=proj))


def test_webapp_serves_reloads_verifies_and_stops(base_registry, tmp_path, run_envctl, envctl_home):
    proj = copy_example("webapp", tmp_path)
    port = free_port()
    spec = proj / "envctl.yaml"
    spec.write_text(spec.read_text().replace("8000", str(port)))   # a free port, not the demo's
    env, url = base_registry.mirror_env, f"http://127.0.0.1:{port}/"
    ok(run_envctl("lock", cwd=proj, env=env))
    try:
        ok(run_envctl("up", "-d", cwd=proj, env=env, timeout=600))
        page = get(url)                    # up -d returns once `ready: {port}` succeeded
        assert page and "Hello from an envctl environment" in page
        greeting = proj / "greeting.py"
        greeting.write_text(greeting.read_text().replace("Hello from", "Reloaded:"))
        assert poll(lambda: "Reloaded:" in (get(url) or ""), timeout=15), "no reload after the edit"
        assert "running" in ok(run_envctl("status", cwd=proj))
        ok(run_envctl("lock", "--check", cwd=proj))
        out = ok(run_envctl("verify", cwd=proj, env=env, timeout=600))
        assert "verify: OK" in out
        ok(run_envctl("down", cwd=proj))
        assert poll(lambda: get(url) is None, timeout=10), "still serving after down"
        # a stopped project starts again (the services supervisor is gone, not just the env)
        ok(run_envctl("up", "-d", cwd=proj, env=env, timeout=120))
        assert "Reloaded:" in (get(url) or "")
    finally:
        run_envctl("down", cwd=proj)
        kill_leftover_supervisors(envctl_home)


def kill_leftover_supervisors(home: Path) -> None:
    """SIGTERM (then SIGKILL) services supervisors of this test's store still alive after down."""
    for status in home.glob("envs/*/services/status.json"):
        pid = json.loads(status.read_text()).get("supervisorPid")
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, TypeError):
            continue
        if b"services_session" in cmdline:
            os.kill(pid, signal.SIGTERM)
            if not poll(lambda: not Path(f"/proc/{pid}").exists(), timeout=5):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.rootless
def test_cli_tool_rootless(base_registry, rootless_user):
    """The CI path as an unprivileged user: lock through the mirror, build, run the tests."""
    work = rootless_user.tmpdir()
    try:
        proj = work / "cli-tool"
        rootless_user.run(["cp", "-r", str(EXAMPLES / "cli-tool"), str(proj)], check=True)
        env = {**base_registry.mirror_env, "ENVCTL_HOME": str(work / "store")}
        ok(rootless_user.envctl("lock", cwd=proj, env=env, timeout=120))
        out = ok(rootless_user.envctl("run", "--", "python3", "-m", "pytest", cwd=proj, env=env, timeout=600))
        assert "6 passed" in out
        ok(rootless_user.envctl("lock", "--check", cwd=proj, env=env))
    finally:
        shutil.rmtree(work, ignore_errors=True)
