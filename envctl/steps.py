"""The environment as an OCI image, for ``envctl push`` and ``envctl export``
(:func:`environment_image`): all of envctl.workflow.ensure_up, then engine.publish.export's
assemble_image over the base and step layers. Nothing below imports this module.
"""

from __future__ import annotations

import os

from envctl.lockfile_io import write_lock_atomic as _write_atomic  # noqa: F401 (its old name)

__all__ = ["environment_image"]


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

