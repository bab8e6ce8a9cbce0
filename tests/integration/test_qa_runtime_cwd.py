"""QA H1: the builtin runtime creates a missing working directory (OCI process.cwd) like runc does."""

from __future__ import annotations

import os

import pytest

from tests.integration.runtime_fixtures import rt_env  # noqa: F401 (fixture)


def test_run_w_creates_missing_directory(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "-w", "/a/b", "--", "sh", "-c", "pwd; stat -c %a /a/b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/a/b", "755"]


def test_cwd_created_before_the_user_switch(rt_env):
    # runc makes process.cwd as the container's root, then switches user: a non-root user gets it too
    rt_env.prepare({"user": "1000:1000"})
    r = rt_env.envctl("run", "-w", "/opt/new", "--", "sh", "-c", "id -u; pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "/opt/new"]


@pytest.mark.registry
@pytest.mark.skipif(os.geteuid() != 0, reason="root build path")
def test_workdir_step_creates_the_directory(tmp_path, run_envctl, test_images):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {test_images.refs['single']}\n"
                                      "steps:\n  - workdir: /opt/w\n  - run: pwd > /opt/w/where\n")
    up = run_envctl("up", cwd=proj)
    assert up.returncode == 0, up.stderr
    r = run_envctl("run", "--", "busybox", "cat", "/opt/w/where", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/opt/w\n"
