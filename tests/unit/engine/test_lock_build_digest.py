"""Lock drift is judged by the spec's build inputs (EnvSpec.build_digest), and step records never
outlive the base image or the steps they were built for (make_lock, lock_drift; no network)."""

from __future__ import annotations

from dataclasses import replace

from engine.sources.resolve import lock_drift, make_lock, steps_drift
from tests.unit.engine.test_resolve import layout, spec  # noqa: F401 - fixture

SERVICE = "services:\n  web:\n    command: {cmd}\n"
STEP = "steps:\n  - run: echo hi > /hi\n"
RECORD = ({"index": 0, "kind": "run", "reproducible": True, "step": "sha256:" + "1" * 64,
           "platforms": {"linux/amd64": {"cacheKey": "sha256:" + "2" * 64, "diffID": "sha256:" + "3" * 64,
                                         "digest": "sha256:" + "4" * 64, "size": 1, "mediaType": "x"}}},)


def test_lock_records_the_build_digest(layout):
    s = spec(layout, "multi", ["linux/amd64"], SERVICE.format(cmd="a"))
    lock, _ = make_lock(s)
    assert lock.spec_digest == s.build_digest() != s.digest()


def test_service_edit_is_not_drift_but_env_and_steps_are(layout):
    s1 = spec(layout, "multi", ["linux/amd64"], SERVICE.format(cmd="a"))
    lock, _ = make_lock(s1)
    assert lock_drift(spec(layout, "multi", ["linux/amd64"], SERVICE.format(cmd="b")), lock) == []
    assert lock_drift(spec(layout, "multi", ["linux/amd64"], "resources: {memory: 1GiB}\n"), lock) == []
    assert lock_drift(spec(layout, "multi", ["linux/amd64"], "env: {A: '1'}\n"), lock)[0].startswith(
        "envctl.yaml changed since the lock was written")
    with_steps = spec(layout, "multi", ["linux/amd64"], STEP)
    assert lock_drift(with_steps, lock)[0].startswith("envctl.yaml changed")


def test_lock_with_the_whole_spec_digest_still_current(layout):
    s = spec(layout, "multi", ["linux/amd64"], SERVICE.format(cmd="a"))
    lock, _ = make_lock(s)
    old = replace(lock, spec_digest=s.digest())          # written before build_digest existed
    assert lock_drift(s, old) == []
    assert make_lock(s, old)[0].spec_digest == s.build_digest()


def test_steps_missing_from_the_lock_is_drift(layout):
    s = spec(layout, "multi", ["linux/amd64"], STEP)
    lock, _ = make_lock(s)
    assert lock.steps == ()
    assert lock_drift(s, lock) == [] and steps_drift(s, lock) == [
        "steps are not recorded (cache key, diffID and layer digest per step)"]
    assert steps_drift(s, replace(lock, steps=RECORD)) == []


def test_no_stale_step_records(layout):
    s = spec(layout, "multi", ["linux/amd64"], STEP)
    lock = replace(make_lock(s)[0], steps=RECORD)
    assert make_lock(s, lock)[0].steps == RECORD                    # nothing changed: kept
    assert make_lock(s, lock, update=True)[0].steps == RECORD       # re-resolved to the same image: kept
    other = spec(layout, "single", ["linux/amd64"], STEP)
    assert make_lock(other, lock)[0].steps == ()                    # another base: dropped
    no_steps = spec(layout, "multi", ["linux/amd64"])
    assert make_lock(no_steps, lock)[0].steps == ()                 # steps removed: dropped
