"""envctl.services_up: spec services -> supervisor configs, rebuild inputs, status/restart hooks."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from envctl.project import find_project
from envctl.services_up import (rebuild_inputs, request_restart, services_dir, services_from_spec,
                                services_status, stop_services)
from specs import load_spec
from specs.errors import EnvctlError

SPEC = textwrap.dedent("""\
    version: 1
    image: docker.io/library/busybox:1.36
    steps:
      - copy: requirements.txt /tmp/requirements.txt
      - copy: conf /etc/app
    services:
      db:
        command: [sleep, "600"]
        ready: {command: "true", timeout: 5s}
      web:
        command: flask run --port 8000
        env: {DEBUG: "1"}
        depends_on: [db]
        restart: on-failure
        ready: {http: /health, port: 8000, timeout: 10s}
        watch: {paths: ["**/*.py"], ignore: ["tests/**"], debounce: 50ms, action: reload}
""")


@pytest.fixture
def project(tmp_path):
    (tmp_path / "envctl.yaml").write_text(SPEC)
    (tmp_path / "requirements.txt").write_text("flask\n")
    (tmp_path / "conf").mkdir()
    return find_project(str(tmp_path))


def test_services_from_spec(project):
    configs, watches = services_from_spec(load_spec(project.spec_path))
    db, web = configs
    assert db.argv == ("sleep", "600") and db.restart == "no" and db.ready.command == ("/bin/sh", "-c", "true")
    assert web.argv == ("/bin/sh", "-c", "flask run --port 8000")
    assert web.env == (("DEBUG", "1"),) and web.depends_on == ("db",) and web.restart == "on-failure"
    assert web.ready.http == "http://127.0.0.1:8000/health" and web.ready.timeout == 10
    assert web.cwd == "/workspace"
    w = watches["web"]
    assert (w.paths, w.ignore, w.action, w.debounce) == (("**/*.py",), ("tests/**",), "reload", 0.05)
    assert "db" not in watches


def test_rebuild_inputs_cover_spec_lock_and_copy_sources(project):
    assert rebuild_inputs(load_spec(project.spec_path), project) == (
        "/envctl.yaml", "/envctl.lock", "/requirements.txt", "/conf/**")


def test_status_and_restart_hooks_without_a_supervisor(project):
    from envctl.commands._enter import env_dir

    d = env_dir(project.spec_path)
    assert services_status(d) is None
    assert stop_services(d) is False
    with pytest.raises(EnvctlError, match="no services are running"):
        request_restart(d, ["web"])
    services_dir(d).mkdir(parents=True)
    (services_dir(d) / "status.json").write_text(json.dumps(
        {"supervisorPid": os.getpid(), "services": [{"name": "web", "state": "running", "pid": 1, "ready": True,
                                                     "restarts": 0, "lastExit": None}]}))
    assert services_status(d)[0]["state"] == "running"
    with pytest.raises(EnvctlError, match="no service named api"):
        request_restart(d, ["api"])
