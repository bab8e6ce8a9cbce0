"""The ``steps`` part of envctl.lock: what each step built, per platform, and checks against it.

specs/lockfile.py keeps ``steps`` verbatim; its shape is owned here::

    "steps": [
      {"index": 0, "kind": "run", "reproducible": true, "step": "sha256:<canonical step>",
       "platforms": {"linux/amd64": {"cacheKey": "sha256:..", "diffID": "sha256:..",
                                     "digest": "sha256:..", "size": 123, "mediaType": "..."}}},
      {"index": 1, "kind": "env"},                       # metadata steps make no layer
      ...]

Entries of other platforms are kept while this step and every step before it are unchanged
(same ``step`` digests), so locking on an amd64 and an arm64 machine fills both, and editing a
step drops the other platforms' stale records from that step on.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["merge_step_entries", "StepMismatch", "compare_with_lock", "locked_entry"]


def merge_step_entries(previous: tuple | list, outcomes, platform: str) -> list[dict]:
    """New ``steps`` list: this platform's outcomes (engine.build.steps.StepOutcome) over ``previous``."""
    old = {e.get("index"): e for e in previous if isinstance(e, dict)}
    out, same_prefix = [], True
    for o in outcomes:
        prev = old.get(o.index) or {}
        same_prefix = same_prefix and prev.get("step") == o.step_digest and prev.get("kind") == o.kind
        entry: dict = {"index": o.index, "kind": o.kind, "step": o.step_digest}
        if o.layer is not None:
            plats = dict(prev.get("platforms") or {}) if same_prefix else {}
            plats[platform] = o.lock_entry()
            entry["reproducible"] = bool(o.reproducible)
            entry["platforms"] = dict(sorted(plats.items()))
        out.append(entry)
    return out


def locked_entry(lock_steps, index: int, platform: str, step_digest: str | None = None) -> dict | None:
    """The locked per-platform record of step ``index``, or None (also when the lock's record is
    of another step definition: ``step_digest`` given and different)."""
    for e in lock_steps:
        if isinstance(e, dict) and e.get("index") == index:
            if step_digest and e.get("step") and e["step"] != step_digest:
                return None
            return (e.get("platforms") or {}).get(platform)
    return None


@dataclass(frozen=True)
class StepMismatch:
    """A rebuilt step whose diffID differs from the lock.

    Attributes:
        index: step index (0-based); kind: step kind; reproducible: the step's flag.
        locked, rebuilt: the two lock records (dicts; ``locked`` None when the lock has none).
    """

    index: int
    kind: str
    reproducible: bool
    locked: dict | None
    rebuilt: dict

    def to_dict(self) -> dict:
        """JSON form (dict): step (1-based int), kind, reproducible (bool), lockedDiffID and
        rebuiltDiffID (str ``sha256:...`` or None).
        """
        return {"step": self.index + 1, "kind": self.kind, "reproducible": self.reproducible,
                "lockedDiffID": (self.locked or {}).get("diffID"), "rebuiltDiffID": self.rebuilt.get("diffID")}


def compare_with_lock(lock_steps, outcomes, platform: str) -> list[StepMismatch]:
    """Layer steps whose rebuilt diffID is not the locked one (or that the lock does not record)."""
    out = []
    for o in outcomes:
        if o.layer is None:
            continue
        locked = locked_entry(lock_steps, o.index, platform, o.step_digest)
        if locked is None or locked.get("diffID") != o.layer.diff_id:
            out.append(StepMismatch(o.index, o.kind, bool(o.reproducible), locked, o.lock_entry()))
    return out
