"""Build-step glue for the CLI: the remote cache from the spec/flags, and the lock's ``steps``.

Called by envctl.workflow (``up``) and the verify/push/export commands.
"""

from __future__ import annotations

import os

__all__ = ["remote_cache_for", "record_steps", "lock_steps"]


def _write_atomic(path, data: bytes) -> None:
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


def remote_cache_for(spec, out, *, cache_from: str | None = None, cache_to: str | None = None):
    """The registry build cache to use, or None.

    ``--cache-from``/``--cache-to`` (or ``ENVCTL_CACHE_FROM``/``ENVCTL_CACHE_TO``) override the
    spec's ``cache: {registry: REF}``, which means both.
    """
    from engine.publish.registry_cache import RegistryCache

    cache_from = cache_from or os.environ.get("ENVCTL_CACHE_FROM") or None
    cache_to = cache_to or os.environ.get("ENVCTL_CACHE_TO") or None
    spec_ref = spec.cache.registry if getattr(spec, "cache", None) else None
    ref = cache_from or cache_to or spec_ref
    if not ref:
        return None
    if (cache_from or cache_to) and cache_from != cache_to and cache_from and cache_to:
        out.warn("--cache-from and --cache-to differ; using --cache-from for both")
    pull = bool(cache_from) or not cache_to
    push = bool(cache_to) or not cache_from
    return RegistryCache(ref, pull=pull, push=push, warn=out.warn)


def record_steps(project, lock, lock_bytes: bytes, outcomes, platform: str, out, *, locked: bool) -> bytes:
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
        _write_atomic(project.lock_path, data)
        out.debug(f"recorded {sum(1 for o in outcomes if o.layer)} step layers in {project.lock_path.name}")
    return data


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
    from envctl.workflow import _base_layers, _build_steps, _source_opener, open_store

    if not has_layer_steps(spec):
        return replace(lock, steps=())
    platform = str(host_platform())
    if platform not in lock.platforms:
        out.info(f"notice: steps not recorded: this machine ({platform}) is not among the locked platforms "
                 f"({', '.join(sorted(lock.platforms))}); run 'envctl lock' on one of them")
        return lock
    plat = lock.platform(platform)
    store = open_store()
    opener = _source_opener(spec.image, project.root, False, out)
    with store.store_lock(shared=True):
        config, report = _base_layers(store, plat, opener, out)
        _, _, outcomes = _build_steps(store, spec, project, config, report, out,
                                      cache_from=cache_from, cache_to=cache_to)
    record_steps(project, lock, b"", outcomes, platform, out, locked=True)  # warnings only, no write
    return replace(lock, steps=tuple(merge_step_entries(lock.steps, outcomes, platform)))


def environment_image(project, out, *, locked: bool = False):
    """Bring the environment up (building steps) and assemble it as an OCI image.

    Returns:
        (engine.publish.export.ImageParts, engine.store.cas.Store, spec, lock, info) — info is
        envctl.workflow.EnvInfo.

    Raises:
        EnvctlError subclasses from ``ensure_up`` (spec, lock, registry, build).
    """
    from engine.build.steps import describe_step, final_context
    from engine.publish.export import Blob, assemble_image
    from engine.layers.writer import source_date_epoch
    from engine.sources.platform import host_platform
    from envctl.workflow import ensure_up, open_store
    from specs.load import load_spec
    from specs.lockfile import Lockfile

    info = ensure_up(project, out, locked=locked, frozen=False)
    spec = load_spec(project.spec_path)
    lock = Lockfile.load(project.lock_path)
    platform = str(host_platform())
    plat = lock.platform(platform)
    store = open_store()
    base_config = store.read_blob(plat.config.digest, plat.config.size)
    base = [Blob(str(x.digest), x.size, x.media_type, str(x.diff_id)) for x in plat.layers]
    outcomes = [o for o in info.steps if o.layer is not None]
    steps = [Blob(o.layer.digest, o.layer.size, o.layer.media_type, o.layer.diff_id) for o in outcomes]
    history = [describe_step(spec.steps[o.index]) for o in outcomes]
    image_config = info.data.get("imageConfig") or {}
    ctx = final_context(spec.steps, image_config, spec.env_dict())
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    created = None
    if epoch:
        import datetime

        created = datetime.datetime.fromtimestamp(source_date_epoch(), datetime.timezone.utc) \
            .strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = assemble_image(base_config, base, steps, step_history=history, env=list(ctx.env),
                           workdir=spec.workdir, user=spec.user or ctx.user, shell=spec.shell or "/bin/sh",
                           spec_digest=spec.digest(), base_name=lock.image.reference,
                           base_digest=str(lock.image.digest), platform=platform, created=created)
    return parts, store, spec, lock, info


__all__.append("environment_image")
