"""Regression (QA defect list): a foreground ``envctl up`` while ``up -d`` already supervises the
project's services used to start a second supervisor — its services failed on the taken ports,
it overwrote status.json and the logs, and when it stopped, ``restart`` no longer reached the
first one. Both forms now refuse, naming the running supervisor."""

import json
import os
import textwrap

import pytest

from envctl.commands._enter import env_dir
from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import run_services, services_dir
from specs.errors import EnvctlError


@pytest.fixture
def project(tmp_path):
    (tmp_path / "envctl.yaml").write_text(textwrap.dedent("""\
        version: 1
        image: docker.io/library/busybox:1.36
        services:
          web: {command: [sleep, "600"]}
    """))
    return find_project(str(tmp_path))


@pytest.mark.parametrize("detach", [False, True])
def test_second_up_refuses_while_a_supervisor_runs(project, detach, monkeypatch):
    monkeypatch.setenv("ENVCTL_SERVICES_ON_HOST", "1")  # no runtime state to wait for
    sdir = services_dir(env_dir(project.spec_path))
    sdir.mkdir(parents=True)
    (sdir / "status.json").write_text(json.dumps({"supervisorPid": os.getpid(), "services": []}))
    with pytest.raises(EnvctlError, match=f"services already running .*supervisor pid {os.getpid()}"):
        run_services(project, Output(False, 0), detach=detach)
    assert not (sdir / "daemon.log").exists()  # nothing was started
