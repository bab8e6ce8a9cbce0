"""``envctl verify``'s work: check every locked blob, rebuild every step from scratch, compare.

Issue 6 "envctl verify (the CI check)":

1. every blob the lock names (index/manifest, config, layers, for every platform; step layers
   when they can be had) is read by digest and hashed to EOF — a blob already in the store is
   re-hashed, a missing one is downloaded (verified) into the store;
2. the steps are rebuilt on the host platform in a throwaway store, with no cache, on top of the
   locked base layers;
3. each rebuilt step's diffID is compared with the lock; for a difference, the locked layer
   (from the store, or the registry build cache) and the rebuilt one are compared path by path
   (engine.layers.diff). Steps marked ``reproducible: false`` are reported, never failed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.build.records import compare_with_lock, locked_entry
from engine.layers.diff import PathDiff, diff_tars
from engine.errors import EngineError
from engine.store.cas import Store
from specs.digest import Digest

__all__ = ["BlobCheck", "StepCheck", "VerifyReport", "check_blobs", "rebuild_and_compare"]


@dataclass
class BlobCheck:
    """One locked blob: ``what`` it is, its digest, ``status`` (``ok``/``downloaded``/``failed``/
    ``unavailable``) and the error text when it failed."""

    what: str
    digest: str
    status: str
    error: str | None = None

    def to_dict(self) -> dict:
        """JSON form (dict): what, digest, status (str), and error when set."""
        d = {"what": self.what, "digest": self.digest, "status": self.status}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class StepCheck:
    """One rebuilt layer step compared with the lock.

    ``status``: ``ok``; ``differs`` (reproducible step, a failure); ``nondeterministic`` (differs but
    marked ``reproducible: false``); ``unlocked`` (the lock has no record for this platform).
    """

    index: int
    kind: str
    status: str
    reproducible: bool
    locked_diff_id: str | None
    rebuilt_diff_id: str
    paths: list[PathDiff] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict:
        """JSON form (dict): step (1-based int), kind, status, reproducible, locked/rebuilt diffIDs,
        paths that differ (list of dict), and note when set.
        """
        return {"step": self.index + 1, "kind": self.kind, "status": self.status,
                "reproducible": self.reproducible, "lockedDiffID": self.locked_diff_id,
                "rebuiltDiffID": self.rebuilt_diff_id, "paths": [p.to_dict() for p in self.paths],
                **({"note": self.note} if self.note else {})}


@dataclass
class VerifyReport:
    """Everything verify found; ``ok`` is the exit decision."""

    platform: str
    blobs: list[BlobCheck] = field(default_factory=list)
    steps: list[StepCheck] = field(default_factory=list)
    # the unpacked layers this project's environment mounts: {"layer", "path", "status": "ok" |
    # "changed", "error"}; None when there is no environment (nothing unpacked to check)
    layers: list[dict] | None = None

    @property
    def ok(self) -> bool:
        """True (bool) when every blob is ok, downloaded or unavailable, every step rebuilt to the
        locked diffID or is known nondeterministic, and every unpacked layer of the environment
        still matches what was unpacked.
        """
        return all(b.status in ("ok", "downloaded", "unavailable") for b in self.blobs) and \
            all(s.status in ("ok", "nondeterministic") for s in self.steps) and \
            all(x["status"] == "ok" for x in self.layers or ())

    def to_dict(self) -> dict:
        """JSON form (dict): ok (bool), platform (str), blobs, steps and layers (lists of dict;
        layers None when the environment is not up)."""
        return {"ok": self.ok, "platform": self.platform, "blobs": [b.to_dict() for b in self.blobs],
                "steps": [s.to_dict() for s in self.steps], "layers": self.layers}


def _check_one(store: Store, what: str, digest: Digest, size: int | None, opener) -> BlobCheck:
    try:
        if store.has_blob(digest):
            with store.open_blob(digest, size) as r:
                r.drain()
            return BlobCheck(what, str(digest), "ok")
        if opener is None:
            return BlobCheck(what, str(digest), "unavailable")
        store.fetch_blob(opener(), digest, size, what=what)
        return BlobCheck(what, str(digest), "downloaded")
    except EngineError as e:
        return BlobCheck(what, str(digest), "failed", e.message)


def check_blobs(store: Store, lock, open_source: Callable[[], object], *,
                step_blobs: Callable[[dict], object] | None = None) -> list[BlobCheck]:
    """Read every locked blob by digest and verify it (see the module doc).

    Args:
        store: the store (missing blobs are downloaded into it).
        lock: specs.lockfile.Lockfile.
        open_source: returns the base image's ImageSource (called at most once).
        step_blobs: given a step's per-platform lock record, returns an ImageSource holding its
            layer blob (the registry build cache), or None.
    """
    src = []

    def opener():
        if not src:
            src.append(open_source())
        return src[0]

    checks = []
    try:
        try:
            opener().get_manifest(lock.image.digest)
            checks.append(BlobCheck("image", str(lock.image.digest), "ok"))
        except EngineError as e:
            checks.append(BlobCheck("image", str(lock.image.digest), "failed", e.message))
        for name, plat in sorted(lock.platforms.items()):
            for what, d in (("manifest", plat.manifest), ("config", plat.config)):
                checks.append(_manifest_check(store, opener, f"{name} {what}", d) if what == "manifest"
                              else _check_one(store, f"{name} {what}", d.digest, d.size, opener))
            for i, layer in enumerate(plat.layers):
                checks.append(_check_one(store, f"{name} layer {i + 1}", layer.digest, layer.size, opener))
        for entry in lock.steps:
            for name, rec in sorted((entry.get("platforms") or {}).items()):
                src_fn = (lambda r=rec: step_blobs(r)) if step_blobs else None
                checks.append(_check_one(store, f"{name} step {entry.get('index', 0) + 1}",
                                         Digest.parse(rec["digest"]), rec.get("size"), src_fn))
    finally:
        for s in src:
            s.close()
    return checks


def _manifest_check(store: Store, opener, what: str, desc) -> BlobCheck:
    try:
        if store.has_blob(desc.digest):
            store.read_blob(desc.digest, desc.size)
            return BlobCheck(what, str(desc.digest), "ok")
        raw, _ = opener().get_manifest(desc.digest)  # verified by digest by the source
        store.put_bytes(raw, desc.digest)
        return BlobCheck(what, str(desc.digest), "downloaded")
    except EngineError as e:
        return BlobCheck(what, str(desc.digest), "failed", e.message)


def rebuild_and_compare(steps, lock_steps, *, store: Store, platform: str, base_diff_ids: list[str],
                        image_config: dict, spec_env: dict, project_root: Path, executor,
                        locked_blob: Callable[[dict], object] | None = None, network: str = "host",
                        notify: Callable[[str], None] = lambda m: None) -> list[StepCheck]:
    """Rebuild ``steps`` without any cache in a throwaway store and compare with the lock.

    Args:
        store: the real store; holds the unpacked base layers (and maybe the locked step blobs).
        locked_blob: given a lock record, returns a readable stream of the locked layer blob
            when one can be had elsewhere (registry cache), or None.
        Others as engine.build.steps.build_steps.

    Returns:
        list[StepCheck], one per layer step, in order.

    Raises:
        BuildError: a step failed to build at all.
    """
    from engine.build.steps import build_steps

    scratch = Store(Path(tempfile.mkdtemp(prefix="verify-", dir=store.tmp)))
    try:
        result = build_steps(steps, store=scratch, base_store=store, base_diff_ids=base_diff_ids,
                             image_config=image_config, spec_env=spec_env, project_root=project_root,
                             executor=executor, use_cache=False, network=network, notify=notify)
        differing = {m.index: m for m in compare_with_lock(lock_steps, result.steps, platform)}
        checks = []
        for o in result.steps:
            if o.layer is None:
                continue
            locked = locked_entry(lock_steps, o.index, platform, o.step_digest)
            m = differing.get(o.index)
            if m is None:
                checks.append(StepCheck(o.index, o.kind, "ok", o.reproducible, locked["diffID"], o.layer.diff_id))
            elif locked is None:
                checks.append(StepCheck(o.index, o.kind, "unlocked", o.reproducible, None, o.layer.diff_id,
                                        note="the lock has no record of this step for this platform; "
                                             "run 'envctl up' (or 'envctl lock') and commit envctl.lock"))
            else:
                status = "differs" if o.reproducible else "nondeterministic"
                paths, note = _paths(store, scratch, locked, o.layer, locked_blob)
                checks.append(StepCheck(o.index, o.kind, status, o.reproducible, locked["diffID"],
                                        o.layer.diff_id, paths, note))
        return checks
    finally:
        from engine.build.steps import remove_build_tree

        remove_build_tree(scratch.root, executor)


def _paths(store: Store, scratch: Store, locked: dict, rebuilt, locked_blob) -> tuple[list[PathDiff], str | None]:
    digest = Digest.parse(locked["digest"])
    if store.has_blob(digest):
        left = store.open_blob(digest, locked.get("size"))
    elif locked_blob is not None and (stream := locked_blob(locked)) is not None:
        left = stream
    else:
        return [], "the locked layer blob is not available here (not in the store or the build cache); " \
                   "paths cannot be compared"
    with left, scratch.open_blob(Digest.parse(rebuilt.digest), rebuilt.size) as right:
        return diff_tars(left, right), None
