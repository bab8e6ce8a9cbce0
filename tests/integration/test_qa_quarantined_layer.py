"""QA M4: after ``store fsck`` quarantines a changed layer, ``envctl run`` (fast entry and full CLI)
brings the environment up again (unpacks the layer) instead of failing with a bare mount error."""

import json
import os

import pytest

from envctl import _fast
from envctl.commands._enter import rootfs_present  # noqa

pytestmark = [pytest.mark.registry]


def test_rootfs_present_same_in_fast_entry(tmp_path):
    (tmp_path / "a").mkdir()
    cases = [None, {}, {"driver": "overlay", "lowerdirs": []},
             {"driver": "overlay", "lowerdirs": [str(tmp_path / "a")]},
             {"driver": "overlay", "lowerdirs": [str(tmp_path / "a"), str(tmp_path / "gone")]},
             {"driver": "copy", "path": str(tmp_path / "a")}, {"driver": "copy", "path": str(tmp_path / "b")}]
    got = [rootfs_present(c) for c in cases]
    assert got == [_fast._rootfs_present(c) for c in cases] == [False, False, False, True, False, True, False]


@pytest.mark.skipif(os.geteuid() != 0, reason="root runtime path")
@pytest.mark.parametrize("entry", ["fast", "full"])
def test_run_after_fsck_quarantine_unpacks_again(tmp_path, run_envctl, test_images, envctl_home, entry):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {test_images.refs['single']}\n")
    up = run_envctl("up", cwd=proj)
    assert up.returncode == 0, up.stderr
    env = json.loads(next((envctl_home / "envs").glob("*/env.json")).read_text())
    lower = env["rootfs"]["lowerdirs"][-1]
    victim = next(os.path.join(r, f) for r, _, fs in os.walk(lower) for f in fs
                  if not os.path.islink(os.path.join(r, f)))
    with open(victim, "ab") as f:
        f.write(b"tampered\n")
    fsck = run_envctl("store", "fsck", cwd=proj)
    assert fsck.returncode == 1 and "quarantined" in fsck.stdout + fsck.stderr
    assert not os.path.isdir(lower)
    # "--project=." is not one of the fast entry's plain forms: the full CLI's load_env runs
    args = ("run", "--", "busybox", "true") if entry == "fast" else ("run", "--project=.", "--", "busybox", "true")
    assert (_fast.parse_run(list(args[1:])) is None) == (entry == "full")
    r = run_envctl(*args, cwd=proj)
    assert r.returncode == 0, r.stderr
    assert os.path.isdir(lower)
    with open(victim, "rb") as f:
        assert b"tampered" not in f.read()
