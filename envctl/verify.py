"""``envctl verify``'s work: prove the environment is the one in envctl.lock (the CI check).

Blobs by digest, the environment's unpacked layers (fsck's tree comparison, read-only), and every
build step rebuilt from scratch (engine.build.reproduce); envctl/commands/verify.py prints the
report. docs/build.md describes the check.
"""

from __future__ import annotations

__all__ = ["verify_project"]


def verify_project(project, out, rebuild: bool = True, cache_from: str | None = None):
    """``envctl verify``'s work: check every locked blob (engine.build.reproduce.check_blobs), the
    environment's unpacked layers, and rebuild every step from scratch against envctl.lock
    (rebuild_and_compare) unless ``rebuild`` is False.

    Args:
        project: envctl.project.Project; out: envctl.output.Output.
        cache_from: registry build cache holding the locked step layers (default: the spec's).

    Returns:
        engine.build.reproduce.VerifyReport (``ok`` says whether everything matched).

    Raises:
        LockDrift (exit 3) when envctl.lock is missing or stale; SpecError, EngineError.
    """
    import json

    from engine.errors import EngineError
    from engine.sources.platform import host_platform
    from engine.layers.pull import LayerRef, ensure_layers
    from engine.build.reproduce import VerifyReport, check_blobs, rebuild_and_compare
    from engine.sources.resolve import lock_drift
    from envctl.executor import make_executor
    from envctl.stages import open_store, remote_cache_for
    from specs.errors import LockDrift
    from specs.load import load_spec
    from specs.lockfile import Lockfile

    spec = load_spec(project.spec_path)
    lock = Lockfile.load(project.lock_path) if project.lock_path.exists() else None
    if drift := lock_drift(spec, lock):
        raise LockDrift(f"verify: {project.lock_path.name} is " + ("missing" if lock is None else "stale: " +
                        "; ".join(drift)), hint="run 'envctl lock' (then 'envctl up') and commit envctl.lock")
    platform = str(host_platform())
    store = open_store()
    opener = _opener(spec.image, project.root, out)
    cache = remote_cache_for(spec, out, cache_from=cache_from)
    report = VerifyReport(platform)
    with store.store_lock(shared=True):
        out.info("verify: checking every locked blob")
        report.blobs = check_blobs(store, lock, opener, step_blobs=cache.blob_source if cache else None)
        report.layers = _check_env_layers(store, project, out)
        if not rebuild or not any(s.kind in ("run", "copy") for s in spec.steps):
            return report
        plat = lock.platform(platform)
        try:
            config = json.loads(store.read_blob(plat.config.digest, plat.config.size))
            ensure_layers(store, opener, [LayerRef(x.digest, x.diff_id, x.size, x.media_type) for x in plat.layers],
                          warn=out.warn)
        except (EngineError, ValueError) as e:
            out.warn(f"verify: base image unavailable, steps not rebuilt: {getattr(e, 'message', e)}")
            return report
        out.info("verify: rebuilding every step from scratch")
        report.steps = rebuild_and_compare(
            spec.steps, lock.steps, store=store, platform=platform,
            base_diff_ids=[str(x.diff_id) for x in plat.layers], image_config=config.get("config") or {},
            spec_env=spec.env_dict(), project_root=project.root, executor=make_executor(spec),
            locked_blob=cache.open_locked if cache else None, network=spec.network, notify=out.info)
    return report


def _check_env_layers(store, project, out) -> list[dict] | None:
    """Re-check the unpacked layers the project's environment mounts (env.json's overlay
    lowerdirs) with fsck's tree comparison. Returns a list of {"layer", "path", "status" ("ok" |
    "changed"), "error"} (list of dict), or None when the environment is not up or uses the copy
    driver (nothing per-layer to check). Raises EngineError when an id-mapped tree cannot be read.
    """
    import json
    from pathlib import Path

    from engine.store.fsck import layer_problem
    from envctl.envdir import env_dir

    try:
        env = json.loads((env_dir(project.spec_path) / "env.json").read_text())
    except (OSError, ValueError):
        return None
    rootfs = env.get("rootfs") if isinstance(env, dict) else None
    if not isinstance(rootfs, dict) or rootfs.get("driver") != "overlay":
        return None
    out.info("verify: checking the environment's unpacked layers")
    checks = []
    for lower in rootfs.get("lowerdirs") or ():
        d = Path(lower).parent
        problem = layer_problem(store, d) if Path(lower).is_dir() else "missing (run 'envctl up')"
        checks.append({"layer": f"sha256:{d.name.partition('.')[0]}", "path": str(d),
                       "status": "ok" if problem is None else "changed", "error": problem})
    return checks


def _opener(ref, project_root, out):
    """Opens the base image's source lazily (relative oci:/docker-archive: paths from the project)."""
    import os
    from dataclasses import replace

    from engine.sources.source import open_source

    if ref.transport != "docker" and ref.path and not os.path.isabs(ref.path):
        ref = replace(ref, path=str(project_root / ref.path))
    return lambda: open_source(ref, progress=out.info)
