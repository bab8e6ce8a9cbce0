"""A signal straight to the ``envctl up -d`` supervisor (``kill PID``) stops its services and its
environment, like ``docker compose``; SIGKILL of the supervisor still takes the environment down
(PR_SET_PDEATHSIG on the long-lived ``envctl run`` holder).

Runs as root (CI), on the busybox environment of tests/integration/runtime_env.py (no registry).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach, services_status, stop_services
from runtime.lifecycle import stop as stop_env
from runtime.state import is_alive, read_state
from tests.integration.runtime_env import make_busybox_rootfs, make_env
from tests.integration.test_services_env import needs_root, wait_until

SPEC = """version: 1
image: busybox
services:
  hold:
    command: "echo $$ > /workspace/svc.pid; trap 'echo got-term > /workspace/svc.term; exit 0' TERM; while :; do sleep 1; done"
"""


def _pid_exists(pid) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, ValueError):
        return False


def _own_cgroup_dirs(pid: int) -> list[Path]:
    """The cgroup directories of ``pid`` that envctl created (named ``envctl-...``)."""
    out = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if "/envctl-" not in path:
            continue
        base = Path("/sys/fs/cgroup") if hid == "0" else Path("/sys/fs/cgroup") / ctrls.split(",")[0]
        out.append(base / path.lstrip("/"))
    return out


def _mounts_under(*dirs: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [ln for ln in text.splitlines() if any(f" {d}" in ln for d in dirs)]


@pytest.fixture
def started(tmp_path):
    """``envctl up -d`` of one service in a busybox environment with a pids limit (so it has a
    cgroup of its own); yields (env dir, project dir, supervisor pid, state); cleans up by pid."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "envctl.yaml").write_text(SPEC)
    d = make_env(project, make_busybox_rootfs(tmp_path / "rootfs"), {"pids": 256})
    state = None
    try:
        assert _detach(find_project(str(project)), Output(), host=False) == 0
        data = json.loads((d / "services" / "status.json").read_text())
        state = read_state(d)
        assert state and is_alive(state) and data["supervisorPid"]
        assert services_status(d)[0]["state"] == "running"
        yield d, project, data["supervisorPid"], state
    finally:
        stop_services(d)
        if state and _pid_exists(state["pid"]):
            stop_env(d, timeout=1)
            for key in ("supervisor", "pid"):
                if _pid_exists(state.get(key)):
                    os.kill(state[key], signal.SIGKILL)


def _env_cgroups(project: Path, state: dict) -> list[Path]:
    """The environment's own cgroup dirs, once its service is up (it wrote its pid)."""
    wait_until(lambda: (project / "svc.pid").exists(), what="the service writes its pid")
    cgroups = _own_cgroup_dirs(state["pid"])
    assert cgroups, "the environment should run in a cgroup of its own (pids limit)"
    return cgroups


def _wait_gone(d, project, sup, state, cgroups, run_envctl):
    """Bounded polls: supervisor, PID 1, the ``envctl run`` holder and setup gone, cgroup removed;
    ``envctl status`` and the services' status say stopped; no mount of the env left on the host."""
    wait_until(lambda: not _pid_exists(sup), timeout=30, what="the supervisor exits")
    wait_until(lambda: not _pid_exists(state["pid"]), timeout=30, what="envctl-init (PID 1) exits")
    wait_until(lambda: not _pid_exists(state["supervisor"]), timeout=30, what="the envctl run holder exits")
    if state.get("nsPid"):
        wait_until(lambda: not _pid_exists(state["nsPid"]), timeout=30, what="the setup process exits")
    wait_until(lambda: not any(c.exists() for c in cgroups), timeout=30, what="the cgroup is removed")
    assert services_status(d)[0]["state"] == "stopped"
    r = run_envctl("status", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["running"] for x in rows] == [False], rows
    assert [s["state"] for s in rows[0]["services"]] == ["stopped"], rows
    r = run_envctl("status", cwd=project)
    assert r.returncode == 0 and "running" not in r.stdout and "stopped" in r.stdout, r.stdout
    assert not _mounts_under(d, project.parent / "rootfs")


@needs_root
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_supervisor_stops_services_and_environment(started, sig, run_envctl):
    d, project, sup, state = started
    cgroups = _env_cgroups(project, state)
    os.kill(sup, sig)
    _wait_gone(d, project, sup, state, cgroups, run_envctl)
    assert (project / "svc.term").read_text().strip() == "got-term"     # the service's own cleanup ran
    assert "Traceback" not in (d / "services" / "daemon.log").read_text()


@needs_root
def test_sigkill_of_supervisor_takes_the_environment_down(started, run_envctl):
    d, project, sup, state = started
    cgroups = _env_cgroups(project, state)
    os.kill(sup, signal.SIGKILL)
    _wait_gone(d, project, sup, state, cgroups, run_envctl)
