"""Build steps seen from the commands: ``envctl lock``'s step records (:func:`lock_steps`) and the
environment as an OCI image for push/export (:func:`environment_image`).

Both run the stages of ``envctl up`` (envctl.stages; environment_image runs all of
envctl.workflow.ensure_up); nothing below imports this module.
"""

from __future__ import annotations

import os

from envctl.lockfile_io import write_lock_atomic as _write_atomic  # noqa: F401 (its old name here)

__all__ = ["lock_steps", "environment_image"]


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
    from envctl.lockfile_io import record_steps
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
    from envctl.stages import open_store
    from envctl.workflow import ensure_up
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

