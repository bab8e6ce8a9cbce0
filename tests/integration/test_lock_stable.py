"""With nothing changed, ``envctl lock``, ``envctl lock --update`` and ``envctl up`` leave envctl.lock
byte-identical — including the ``steps`` section and step records another machine (platform) wrote,
and the platforms teammates locked when envctl.yaml names none."""

import json
import os

import pytest

from specs.canonical import canonical_json
from tests.integration.test_build_cli import STEPS, ok

pytestmark = [pytest.mark.registry, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="root runtime path (up builds the steps)")]

OTHER = "linux/arm64"


def write(proj, image, platforms: str):
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {image}\n{platforms}{STEPS}")
    (proj / "app.txt").write_text("app v1\n")


def add_teammate_records(lock_path) -> bytes:
    """What the lock looks like after a teammate on ``OTHER`` ran ``envctl lock``: a record for
    their platform next to ours in every layer step. Returns the new canonical bytes."""
    lock = json.loads(lock_path.read_bytes())
    plats = [e["platforms"] for e in lock["steps"] if "platforms" in e]
    assert plats and all(OTHER not in p for p in plats), lock["steps"]
    for i, p in enumerate(plats):
        mine = next(iter(p.values()))
        p[OTHER] = {**mine, "cacheKey": "sha256:" + f"{i + 1:x}" * 64,
                    "diffID": "sha256:" + f"{i + 11:x}" * 32, "digest": "sha256:" + f"{i + 21:x}" * 32}
    data = canonical_json(lock)
    lock_path.write_bytes(data)
    return data


def assert_stable(run_envctl, proj, data: bytes) -> None:
    lock_path = proj / "envctl.lock"
    ok(run_envctl("lock", cwd=proj))
    assert lock_path.read_bytes() == data, "envctl lock changed the lock"
    r = ok(run_envctl("lock", "--update", cwd=proj))
    assert lock_path.read_bytes() == data, f"envctl lock --update changed the lock\n{r.stderr}"
    assert "unchanged" in r.stdout, r.stdout
    ok(run_envctl("up", cwd=proj))
    assert lock_path.read_bytes() == data, "envctl up changed the lock"
    ok(run_envctl("lock", "--check", cwd=proj))


def test_lock_update_keeps_other_platforms_step_records(tmp_path, run_envctl, test_images, registry):
    proj = tmp_path / "p"
    write(proj, test_images.refs["multi"], "platforms: [linux/amd64, linux/arm64]\n")
    ok(run_envctl("lock", cwd=proj))
    data = add_teammate_records(proj / "envctl.lock")
    assert_stable(run_envctl, proj, data)


def test_lock_update_keeps_teammates_platforms_when_spec_names_none(tmp_path, run_envctl, test_images, registry):
    proj = tmp_path / "p"
    write(proj, test_images.refs["multi"], "platforms: [linux/amd64, linux/arm64]\n")
    ok(run_envctl("lock", cwd=proj))
    add_teammate_records(proj / "envctl.lock")
    write(proj, test_images.refs["multi"], "")  # no platforms: the locked ones are kept, host added
    ok(run_envctl("lock", cwd=proj))
    data = (proj / "envctl.lock").read_bytes()
    lock = json.loads(data)
    assert sorted(lock["platforms"]) == ["linux/amd64", "linux/arm64"], sorted(lock["platforms"])
    assert all(OTHER in e["platforms"] for e in lock["steps"] if "platforms" in e), lock["steps"]
    assert_stable(run_envctl, proj, data)
