"""envctl.lock on disk, for ``envctl up`` and ``envctl lock``: the one atomic writer, opening
file-transport sources relative to the project, lock-if-needed (:func:`ensure_lock`, up's lock
stage), ``envctl lock``'s work (:func:`lock_project`) and the step records (:func:`lock_steps`,
:func:`record_steps`).

The lock itself is made by engine.sources.resolve (``make_lock``, ``lock_drift``) and the step
records merged by engine.build.records; this module decides when to write, and writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["write_lock_atomic", "source_factory", "ensure_lock", "LockResult", "lock_project", "lock_steps",
           "record_steps"]


def write_lock_atomic(path, data: bytes) -> None:
    """Temp file + fsync + rename: readers see the old lock or the new one, never half.

    Raises LockError (exit 1, one line naming the lock file) when the project directory cannot be
    written (read-only file system, not the owner, full disk); no temp file is left (QA M1).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        from specs.errors import LockError

        raise LockError(f"write {path}: {e.strerror or e}",
                        hint="make the project directory writable, or commit a current "
                             f"{path.name} and use --locked") from None


def source_factory(project_root):
    """Open file-transport references relative to the project directory (the lock keeps them relative)."""
    from dataclasses import replace

    def factory(ref):
        from engine.sources.source import open_source

        if ref.transport != "docker" and ref.path and not os.path.isabs(ref.path):
            return open_source(replace(ref, path=str(project_root / ref.path)))
        return None  # registry: opened by resolve_image with progress

    return factory


def ensure_lock(spec, lock_path: Path, project_root: Path, out, *, locked: bool, frozen: bool):
    """``envctl up``'s lock stage: the current lock, made and written first when missing or stale.

    Args:
        spec: specs.model.EnvSpec; lock_path: the project's envctl.lock; project_root: the
        directory file-transport image references are relative to; out: envctl.output.Output.
        locked/frozen: never write (``--locked``/``--frozen``; every step must be pinned too).

    Returns:
        ``(Lockfile, lock bytes, written: bool)``.

    Raises:
        LockDrift (exit 3) with ``locked``/``frozen`` when the lock is missing or stale;
        LockError, registry errors from engine.sources.resolve.make_lock.
    """
    from engine.sources.resolve import lock_drift, make_lock, steps_drift
    from specs.errors import LockDrift
    from specs.lockfile import Lockfile

    previous = Lockfile.load(lock_path) if lock_path.exists() else None
    drift = lock_drift(spec, previous)
    if not drift and (locked or frozen):
        drift = steps_drift(spec, previous)  # --locked: every step must be pinned too (docs/lock.md)
    if not drift:
        return previous, lock_path.read_bytes(), False
    if locked or frozen:
        what = "missing" if previous is None else "stale: " + "; ".join(drift)
        raise LockDrift(f"{lock_path.name} is {what}", hint="run 'envctl lock' and commit envctl.lock "
                                                            "(--locked/--frozen never write it)")
    lock, _ = make_lock(spec, previous, progress=out.info, source_factory=source_factory(project_root))
    data = lock.to_bytes()
    write_lock_atomic(lock_path, data)
    out.info(f"wrote {lock_path.name}: {lock.image.reference} @ {lock.image.digest}")
    return lock, data, True


def record_steps(lock_path: Path, lock, lock_bytes: bytes, outcomes, platform: str, out, *,
                 locked: bool) -> bytes:
    """Write this platform's step results into envctl.lock; returns the lock bytes now on disk.

    With ``locked`` (``--locked``/``--frozen``) the lock is never written: a rebuilt step whose
    diffID differs from the locked one is reported as a warning (``envctl verify`` is the strict
    check). Without, entries are refreshed (steps the lock lacked, or whose cache key changed).
    """
    from dataclasses import replace

    from engine.build.records import compare_with_lock, merge_step_entries

    if not any(o.layer is not None for o in outcomes) and not lock.steps:
        return lock_bytes
    for m in compare_with_lock(lock.steps, outcomes, platform):
        if m.locked is not None and m.locked.get("cacheKey") == m.rebuilt.get("cacheKey"):
            note = "" if m.reproducible else " (marked reproducible: false)"
            out.warn(f"step {m.index + 1} ({m.kind}) built to {m.rebuilt['diffID']}, the lock says "
                     f"{m.locked['diffID']}{note}; run 'envctl verify' for the differing paths")
    if locked:
        return lock_bytes
    new = replace(lock, steps=tuple(merge_step_entries(lock.steps, outcomes, platform)))
    data = new.to_bytes()
    if data != lock_bytes:
        write_lock_atomic(lock_path, data)
        out.debug(f"recorded {sum(1 for o in outcomes if o.layer)} step layers in {lock_path.name}")
    return data


@dataclass
class LockResult:
    """What ``envctl lock`` made: the lock (specs.lockfile.Lockfile), whether the file changed
    (bool) and the HTTP requests resolving took (int)."""

    lock: object
    changed: bool
    requests: int


def _previous_lock(lock_path, update: bool):
    """The lock on disk, or None. ``--update`` reads it too: re-resolving to the same image keeps
    its step records (other platforms' included) and the platforms teammates locked, so an
    unchanged image gives byte-identical lock bytes; an unreadable lock is just re-made then."""
    from specs.errors import LockError
    from specs.lockfile import Lockfile

    if not lock_path.exists():
        return None
    try:
        return Lockfile.load(lock_path)
    except LockError:
        if update:
            return None
        raise


def lock_project(project, out, *, update: bool = False, check: bool = False,
                 cache_from: str | None = None, cache_to: str | None = None) -> LockResult | None:
    """``envctl lock``'s work: resolve the image for every platform, build and record the steps
    (:func:`lock_steps`), write envctl.lock when its bytes change (docs/lock.md).

    Args:
        project: envctl.project.Project; out: envctl.output.Output.
        update: re-resolve tags even when the lock has pins (``--update``).
        check: only compare, no network, no writes (``--check``): returns None when current.
        cache_from/cache_to: registry build cache references for the step builds.

    Returns:
        :class:`LockResult`, or None with ``check`` (the lock is current).

    Raises:
        LockDrift (exit 3) with ``check`` when the lock is missing or stale; SpecError, LockError,
        registry and build errors otherwise.
    """
    from specs.errors import LockDrift
    from specs.load import load_spec

    spec = load_spec(project.spec_path)
    lock_path = project.lock_path
    previous = _previous_lock(lock_path, update)
    from engine.sources.resolve import has_layer_steps, lock_drift, make_lock, steps_drift

    if check:
        diffs = lock_drift(spec, previous) + steps_drift(spec, previous)
        if diffs:
            raise LockDrift(f"{lock_path.name} is stale: " + "; ".join(diffs)
                            if previous is not None else f"{lock_path.name} is missing",
                            hint="run 'envctl lock' and commit envctl.lock")
        return None
    lock, requests = make_lock(spec, previous, update=update, progress=out.info,
                               source_factory=source_factory(project.root))
    if has_layer_steps(spec) or lock.steps:
        lock = lock_steps(project, out, spec, lock, cache_from=cache_from, cache_to=cache_to)
    data = lock.to_bytes()
    changed = not lock_path.exists() or lock_path.read_bytes() != data
    if changed:
        write_lock_atomic(lock_path, data)
    return LockResult(lock, changed, requests)


def lock_steps(project, out, spec, lock, *, cache_from: str | None = None, cache_to: str | None = None):
    """``envctl lock``'s step records: build the spec's steps for this machine's platform through
    the path ``envctl up`` uses (fetch + unpack the locked base, engine.build.steps with the same
    executor, local and registry cache) and return ``lock`` with this platform's per-step cache
    key, diffID and layer digest merged in (other platforms' records kept while their steps are
    unchanged; see engine.build.records). Nothing is composed or written here.

    Args:
        project: envctl.project.Project; out: envctl.output.Output.
        spec: specs.model.EnvSpec; lock: specs.lockfile.Lockfile with the image part resolved.

    Returns:
        specs.lockfile.Lockfile. Unchanged when this machine's platform is not locked (steps
        cannot be built for another platform here: a notice says so).

    Raises:
        EnvctlError subclasses: registry/download errors, a failed step (exit 1).
    """
    from dataclasses import replace

    from engine.build.records import merge_step_entries
    from engine.sources.platform import host_platform
    from engine.sources.resolve import has_layer_steps
    from envctl.stages import build_layers, fetch_base, open_store, source_opener

    if not has_layer_steps(spec):
        return replace(lock, steps=())
    platform = str(host_platform())
    if platform not in lock.platforms:
        out.info(f"notice: steps not recorded: this machine ({platform}) is not among the locked platforms "
                 f"({', '.join(sorted(lock.platforms))}); run 'envctl lock' on one of them")
        return lock
    plat = lock.platform(platform)
    store = open_store()
    with store.store_lock(shared=True):
        base = fetch_base(store, plat, source_opener(spec.image, project.root, False, out), out)
        _, outcomes = build_layers(store, spec, base.config, base.layers, project.root, out,
                                   cache_from=cache_from, cache_to=cache_to)
    record_steps(project.lock_path, lock, b"", outcomes, platform, out, locked=True)  # warnings only, no write
    return replace(lock, steps=tuple(merge_step_entries(lock.steps, outcomes, platform)))
