"""QA M5: ``envctl verify`` said OK while the environment mounted a tampered unpacked layer; it now
re-checks the layers the environment uses (fsck's tree comparison, read-only)."""

import json
import os

import pytest

pytestmark = [pytest.mark.registry]


@pytest.mark.skipif(os.geteuid() != 0, reason="root store")
def test_verify_fails_on_a_changed_unpacked_layer(tmp_path, run_envctl, test_images, envctl_home):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {test_images.refs['single']}\n")
    assert run_envctl("lock", cwd=proj).returncode == 0
    before = run_envctl("verify", cwd=proj)  # not up yet: says what it did not check
    assert before.returncode == 0, before.stderr
    assert "layers: not checked" in before.stdout
    assert run_envctl("up", cwd=proj).returncode == 0
    good = run_envctl("verify", cwd=proj)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 changed" in good.stdout and "verify: OK" in good.stdout
    env = json.loads(next((envctl_home / "envs").glob("*/env.json")).read_text())
    lower = env["rootfs"]["lowerdirs"][-1]
    victim = next(os.path.join(r, f) for r, _, fs in os.walk(lower) for f in fs
                  if not os.path.islink(os.path.join(r, f)))
    with open(victim, "ab") as f:
        f.write(b"tampered\n")
    bad = run_envctl("verify", cwd=proj)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "1 changed" in bad.stdout and "unpacked tree changed" in bad.stdout and "FAILED" in bad.stdout
    js = json.loads(run_envctl("verify", "--json", "--no-rebuild", cwd=proj).stdout)
    assert js["ok"] is False and [x["status"] for x in js["layers"]].count("changed") == 1
    assert os.path.isdir(lower)  # read-only: verify quarantines nothing
