"""``envctl lock`` records the steps (cache key, diffID, layer digest for this platform), built the
way ``envctl up`` builds them; the lock's bytes are deterministic; ``--check`` is offline and exits 3
on drift; a service edit is not drift; image changes and removed steps leave no stale records."""

import json
import os

import pytest

from engine.sources.platform import host_platform
from tests.integration.test_build_cli import STEPS, ok

pytestmark = [pytest.mark.registry, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="root runtime path (rootless: test_build_cli)")]

SERVICE = "services:\n  hold:\n    command: [busybox, sleep, '{n}']\n"


def write(proj, image, steps=STEPS, n=600):
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {image}\n{steps}{SERVICE.format(n=n)}")
    (proj / "app.txt").write_text("app v1\n")
    return proj


def layer_records(lock: dict) -> list[dict]:
    return [e["platforms"] for e in lock["steps"] if "platforms" in e]


def test_lock_records_steps(tmp_path, run_envctl, test_images, registry):
    host = str(host_platform())
    proj = write(tmp_path / "p", test_images.refs["single"])
    home = {"ENVCTL_HOME": str(tmp_path / "store-a")}
    assert run_envctl("lock", "--check", cwd=proj, env=home).returncode == 3
    first = ok(run_envctl("lock", cwd=proj, env=home))
    assert first.stderr.count(": building") == 3, first.stderr
    data = (proj / "envctl.lock").read_bytes()
    lock = json.loads(data)
    assert [(e["kind"], "platforms" in e) for e in lock["steps"]] == [
        ("run", True), ("copy", True), ("env", False), ("run", True)]
    for plats in layer_records(lock):
        assert list(plats) == [host]
        assert set(plats[host]) >= {"cacheKey", "diffID", "digest"}
    # deterministic: again (cached) and in an empty store from scratch give the same bytes
    ok(run_envctl("lock", cwd=proj, env=home))
    assert (proj / "envctl.lock").read_bytes() == data
    (proj / "envctl.lock").unlink()
    fresh = ok(run_envctl("lock", cwd=proj, env={"ENVCTL_HOME": str(tmp_path / "store-b")}))
    assert fresh.stderr.count(": building") == 3 and (proj / "envctl.lock").read_bytes() == data
    # --check: current (no network call, nothing written)
    ok(run_envctl("lock", "--check", cwd=proj, env=home))
    # up --locked uses the recorded steps, writes nothing; a service edit is not drift
    write(proj, test_images.refs["single"], n=700)
    ok(run_envctl("lock", "--check", cwd=proj, env=home))
    try:      # down even when up -d fails: it leaves the environment and its supervisor running
        ok(run_envctl("up", "--locked", "-d", cwd=proj, env=home))
        assert (proj / "envctl.lock").read_bytes() == data
    finally:
        ok(run_envctl("down", "-t", "2", cwd=proj, env=home))
    # a lock whose steps were never recorded is stale
    (proj / "envctl.lock").write_text(json.dumps({**lock, "steps": []}))
    r = run_envctl("lock", "--check", cwd=proj, env=home)
    assert r.returncode == 3 and "steps are not recorded" in r.stderr, r.stderr
    assert run_envctl("up", "--locked", cwd=proj, env=home).returncode == 3
    ok(run_envctl("lock", cwd=proj, env=home))
    assert (proj / "envctl.lock").read_bytes() == data
    # --update re-resolves to the same image: same records
    ok(run_envctl("lock", "--update", cwd=proj, env=home))
    assert (proj / "envctl.lock").read_bytes() == data


def test_image_change_and_removed_steps_leave_no_stale_records(tmp_path, run_envctl, test_images, registry):
    proj = write(tmp_path / "p", test_images.refs["single"])
    ok(run_envctl("lock", cwd=proj))
    before = layer_records(json.loads((proj / "envctl.lock").read_text()))
    write(proj, test_images.refs["plain"])
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 3 and "image:" in r.stderr, r.stderr
    ok(run_envctl("lock", cwd=proj))
    after = json.loads((proj / "envctl.lock").read_text())
    assert after["image"]["reference"].endswith("envctl/plain:v1")
    keys = lambda recs: [p["cacheKey"] for plats in recs for p in plats.values()]  # noqa: E731
    assert len(keys(layer_records(after))) == 3 and not set(keys(before)) & set(keys(layer_records(after)))
    write(proj, test_images.refs["plain"], steps="steps:\n  - env: {A: '1'}\n")
    ok(run_envctl("lock", cwd=proj))
    assert json.loads((proj / "envctl.lock").read_text())["steps"] == []
    ok(run_envctl("lock", "--check", cwd=proj))
