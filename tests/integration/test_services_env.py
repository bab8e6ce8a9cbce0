"""Services inside a real busybox environment (builtin runtime, setns exec), driven like
``envctl up -d``: the supervisor daemon, ``envctl logs``, ``envctl restart``, status, stop.

Runs as root (CI). The environment is made by tests/integration/runtime_env.py (no registry).
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach, services_status, stop_services
from runtime.state import is_alive, read_state
from tests.integration.runtime_env import make_busybox_rootfs, make_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the busybox environment test runs as root (CI)")


def wait_until(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


SPEC = """version: 1
image: busybox
services:
  web:
    command: "rm -rf /tmp/site && cp -r /workspace/www /tmp/site && echo serving $(cat /tmp/site/index.html) && exec httpd -f -p 127.0.0.1:{port} -h /tmp/site"
    ready: {{port: {port}, timeout: 20s}}
    watch: {{paths: ["www/**"]}}
"""


def test_busybox_http_service_reloads_inside_the_environment(tmp_path, run_envctl):
    project = tmp_path / "proj"
    (project / "www").mkdir(parents=True)
    (project / "www" / "index.html").write_text("v1\n")
    port = free_port()
    (project / "envctl.yaml").write_text(SPEC.format(port=port))
    d = make_env(project, make_busybox_rootfs(tmp_path / "rootfs"))
    proj = find_project(str(project))
    try:
        assert _detach(proj, Output(), host=False) == 0
        row = services_status(d)[0]
        assert row["state"] == "running" and row["ready"], row
        assert get(port) == "v1\n"
        env_pid = read_state(d)["pid"]

        (project / "www" / "index.html").write_text("v2\n")
        wait_until(lambda: services_status(d)[0]["restarts"] == 1 and services_status(d)[0]["ready"],
                   what="restart after the edit")
        assert get(port) == "v2\n"
        assert read_state(d)["pid"] == env_pid          # same environment: no re-entry, no re-mount

        r = run_envctl("logs", "web", cwd=project)
        assert r.returncode == 0, r.stderr
        assert "serving v1" in r.stdout and "serving v2" in r.stdout
        assert "restarting (www/index.html changed)" in r.stdout

        r = run_envctl("restart", "web", cwd=project)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: services_status(d)[0]["restarts"] == 2 and services_status(d)[0]["ready"],
                   what="envctl restart")

        (project / "envctl.yaml").write_text("version: [broken\n")   # old services keep running
        wait_until(lambda: "running services are kept" in (d / "services" / "daemon.log").read_text(),
                   what="spec error reported")
        assert services_status(d)[0]["restarts"] == 2 and get(port) == "v2\n"
    finally:
        assert stop_services(d)
    assert services_status(d)[0]["state"] == "stopped"
    assert read_state(d) is None or not is_alive(read_state(d))
    assert get(port) == ""
