"""Services inside a real busybox environment (builtin runtime, setns exec), driven like
``envctl up -d``: the supervisor daemon, ``envctl logs``, ``envctl restart``, status, stop.

Runs as root (CI). The environment is made by tests/integration/runtime_env.py (no registry).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

import pytest

from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach, services_status, stop_services
from runtime.state import is_alive, read_state
from tests.fixtures.poll import wait_until as _wait_until
from tests.fixtures.registry import free_port
from tests.integration.runtime_env import make_busybox_rootfs, make_env

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the busybox environment test runs as root (CI)")


def wait_until(pred, timeout=20.0, what="condition"):
    return _wait_until(pred, timeout, what, interval=0.02)


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


@needs_root
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

        r = run_envctl("down", cwd=project)         # stops the environment; the supervisor follows
        assert r.returncode == 0, r.stderr
        wait_until(lambda: services_status(d)[0]["state"] == "stopped", what="supervisor stops after down")
    finally:
        stop_services(d)
    assert services_status(d)[0]["state"] == "stopped"
    assert read_state(d) is None or not is_alive(read_state(d))
    assert get(port) == ""


FOREGROUND = """
import sys
sys.path.insert(0, sys.argv[1])
from envctl.output import Output
from envctl.project import find_project
from envctl.services_session import ServicesSession
sys.exit(ServicesSession(find_project(sys.argv[2]), Output(), host=True).run())
"""


def test_foreground_session_streams_prefixed_output_and_stops_on_ctrl_c(tmp_path):
    """``envctl up`` in the foreground (services as host processes): prefixed output, Ctrl-C."""
    import signal
    import subprocess

    from envctl.commands._enter import env_dir

    project = tmp_path / "proj"
    project.mkdir()
    pidfile = tmp_path / "pid"
    (project / "envctl.yaml").write_text(
        "version: 1\nimage: busybox\nservices:\n"
        f"  api:\n    command: echo api up; echo $$ > {pidfile}; exec sleep 600\n"
        "    watch: {paths: ['*.txt']}\n")
    script = tmp_path / "fg.py"
    script.write_text(FOREGROUND)
    p = subprocess.Popen([sys.executable, str(script), str(Path(__file__).resolve().parents[2]), str(project)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d = env_dir(project / "envctl.yaml")
    try:
        wait_until(lambda: (services_status(d) or [{}])[0].get("state") == "running"
                   and json_watching(d), what="service running")
        first = wait_until(lambda: _pid_in(pidfile), what="first service pid")
        (project / "a.txt").write_text("x")
        # restarts counts up before the new process starts: wait for the new process itself
        # (it echoes, then writes its pid), not just the counter, before Ctrl-C
        svc_pid = wait_until(lambda: services_status(d)[0]["restarts"] == 1 and _pid_in(pidfile) not in (None, first)
                             and _pid_in(pidfile), what="restarted service writing its pid")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert out.count("api    | api up") == 2                  # plain prefix when not a terminal
    assert "api    | [envctl]" in out and "restarting (a.txt changed)" in out
    assert not os.path.exists(f"/proc/{svc_pid}")
    assert services_status(d)[0]["state"] == "stopped"


def _pid_in(pidfile) -> int | None:
    """The pid the service wrote (None while missing or half-written)."""
    try:
        return int(pidfile.read_text())
    except (OSError, ValueError):
        return None


def json_watching(d) -> bool:
    import json

    try:
        return bool(json.loads((d / "services" / "status.json").read_text()).get("watching"))
    except (OSError, ValueError):
        return False


def test_spec_edit_restarts_services_with_the_new_definition(tmp_path):
    """A valid envctl.yaml change rebuilds (host mode: nothing to build) and restarts with the
    new service definitions; a copy-step input counts as an input of the environment."""
    from envctl.commands._enter import env_dir

    project = tmp_path / "proj"
    project.mkdir()
    (project / "conf.txt").write_text("a\n")
    spec = ("version: 1\nimage: busybox\nsteps:\n  - copy: conf.txt /etc/conf.txt\nservices:\n"
            "  api:\n    command: echo {word}; exec sleep 600\n")
    (project / "envctl.yaml").write_text(spec.format(word="first"))
    proj = find_project(str(project))
    d = env_dir(project / "envctl.yaml")
    try:
        assert _detach(proj, Output(), host=True) == 0
        log = d / "services" / "api.log"
        wait_until(lambda: "first" in log.read_text(), what="first output")
        (project / "envctl.yaml").write_text(spec.format(word="second"))
        wait_until(lambda: "second" in log.read_text(), what="restart with the new command")
        (project / "conf.txt").write_text("b\n")
        wait_until(lambda: log.read_text().count("second") == 2, what="restart after a copy input changed")
        assert "environment" in (d / "services" / "daemon.log").read_text()
    finally:
        stop_services(d)
    assert services_status(d)[0]["state"] == "stopped"
