"""envctl.lock model and canonical bytes (specs/lockfile.py)."""

from __future__ import annotations

import json

import pytest

from specs.errors import LockError
from specs.lockfile import Lockfile

H = "sha256:" + "1" * 64
DOC = {
    "lockVersion": 1,
    "envctl": {"specDigest": H},
    "image": {"reference": "docker.io/library/debian:bookworm", "digest": H,
              "mediaType": "application/vnd.oci.image.index.v1+json"},
    "platforms": {
        "linux/arm64": {"manifest": {"digest": H, "mediaType": "m", "size": 10},
                        "config": {"digest": H, "mediaType": "c", "size": 20},
                        "layers": [{"digest": H, "diffID": H, "size": 30, "mediaType": "l"}]},
        "linux/amd64": {"manifest": {"digest": H, "mediaType": "m", "size": 1},
                        "config": {"digest": H, "mediaType": "c", "size": 2}, "layers": []},
    },
    "steps": [{"cacheKey": H}],
}


def test_round_trip_is_canonical():
    data = json.dumps(DOC).encode()
    lock = Lockfile.from_bytes(data)
    out = lock.to_bytes()
    assert json.loads(out) == DOC
    assert out == Lockfile.from_bytes(out).to_bytes()
    text = out.decode()
    assert text.endswith("}\n") and text.index('"envctl"') < text.index('"image"') < text.index('"lockVersion"')
    assert text.index('"linux/amd64"') < text.index('"linux/arm64"')
    assert '\n  "envctl": {\n    "specDigest"' in text
    assert lock.platform("linux/arm64").layers[0].size == 30
    assert [str(d) for d in lock.platform("linux/arm64").diff_ids()] == [H]


def test_missing_platform_names_locked_ones():
    lock = Lockfile.from_dict(DOC)
    with pytest.raises(LockError, match=r"no platform linux/s390x \(locked: linux/amd64, linux/arm64\)"):
        lock.platform("linux/s390x")


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(lockVersion=2), "lockVersion 2"),
    (lambda d: d.pop("image"), "image: expected an object"),
    (lambda d: d["image"].update(digest="sha256:zz"), "image.digest"),
    (lambda d: d["platforms"]["linux/amd64"]["config"].update(size="2"), "platforms.linux/amd64.config.size"),
    (lambda d: d["platforms"]["linux/arm64"]["layers"][0].pop("diffID"), "layers[0].diffID"),
    (lambda d: d.update(steps={}), "steps"),
])
def test_bad_locks_name_the_key(mutate, needle):
    doc = json.loads(json.dumps(DOC))
    mutate(doc)
    with pytest.raises(LockError) as e:
        Lockfile.from_dict(doc)
    assert needle in e.value.message and e.value.hint


def test_not_json():
    with pytest.raises(LockError, match="not valid JSON"):
        Lockfile.from_bytes(b"<<<<<<< HEAD")
