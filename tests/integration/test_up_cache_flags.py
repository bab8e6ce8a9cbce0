"""``envctl up --cache-to/--cache-from REF``: the registry build cache chosen on the command line
(no ``cache:`` in the spec) — store A publishes its step layers, empty store B runs no step."""

import os

import pytest

from tests.integration.test_build_cli import STEPS, make_project, ok

pytestmark = [pytest.mark.registry, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="root runtime path (rootless: test_build_cli)")]


def test_up_cache_flags_share_steps_between_stores(tmp_path, run_envctl, test_images, registry):
    ref = f"{registry.host}/envctl/flagcache"
    proj = make_project(tmp_path / "p", test_images.refs["single"], STEPS)
    a = ok(run_envctl("up", "--cache-to", ref, cwd=proj, env={"ENVCTL_HOME": str(tmp_path / "store-a")}))
    assert a.stderr.count(": building") == 3 and "warning" not in a.stderr, a.stderr
    # without --cache-from a fresh store builds (the spec names no cache)
    c = ok(run_envctl("up", cwd=proj, env={"ENVCTL_HOME": str(tmp_path / "store-c")}))
    assert c.stderr.count(": building") == 3 and "cached (remote)" not in c.stderr, c.stderr
    b = ok(run_envctl("up", "--cache-from", ref, cwd=proj, env={"ENVCTL_HOME": str(tmp_path / "store-b")}))
    assert ": building" not in b.stderr and b.stderr.count("cached (remote)") == 3, b.stderr
    r = ok(run_envctl("run", "--", "busybox", "cat", "/opt/app/out", cwd=proj,
                      env={"ENVCTL_HOME": str(tmp_path / "store-b")}))
    assert r.stdout == "built\nhello\napp v1\n"
