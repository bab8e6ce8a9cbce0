"""``envctl up``'s work, as one pipeline: load the spec, lock, fetch + unpack, build the steps,
compose, write ``envs/<id>/env.json``. :func:`ensure_up` reads top to bottom as those stages; each
stage is one function of envctl.stages (or envctl.lockfile_io for the lock) making one call into
its engine subpackage (docs/architecture.md).

A second ``up`` with everything cached opens no image source (no network call) and unpacks
nothing: the config and manifest come from the store and every layer's ``layer.json`` is there.
``--locked`` refuses to write or change envctl.lock (exit 3 when it is missing or stale);
``--frozen`` additionally refuses any download.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.layers.pull import PullReport
from engine.store.envs import env_in_use
from envctl.envdir import env_id as env_id_for
from envctl.lockfile_io import ensure_lock, record_steps
from envctl.stages import (build_layers, compose_rootfs, env_json, fetch_base, gc_root_for, open_store,
                           present_layers, source_opener, write_json_atomic)

__all__ = ["EnvInfo", "ensure_up", "env_id_for", "summary"]

MIB = 1 << 20


@dataclass
class EnvInfo:
    """The environment ``up`` prepared: id, directory, env.json path and content, what it did."""

    env_id: str
    env_dir: Path
    env_json: Path
    data: dict
    report: PullReport
    reset: bool = False
    locked_now: bool = False
    seconds: float = 0.0
    steps: list = field(default_factory=list)


def ensure_up(project, out, *, locked: bool = False, frozen: bool = False,
              cache_from: str | None = None, cache_to: str | None = None) -> EnvInfo:
    """Make the project's environment ready to enter (CONTRACTS.md ``ensure_up``).

    Args:
        project: envctl.project.Project.
        out: envctl.output.Output for progress lines.
        locked: never write envctl.lock (LockDrift, exit 3, when it is missing or stale).
        frozen: ``locked`` and never download (EnvctlError when a blob is missing).
        cache_from/cache_to: registry build cache references (``up --cache-from/--cache-to``);
            they override the spec's ``cache:`` (envctl.stages.remote_cache_for).

    Returns:
        :class:`EnvInfo`. Raises SpecError, LockError/LockDrift, EngineError (registry, digest,
        unsafe layer), StoreError (environment running while its layers must be reset).
    """
    from engine.sources.platform import host_platform
    from specs.load import load_spec

    t0 = time.monotonic()
    root, lock_path = project.root, project.lock_path
    # 1. spec (specs.load)
    spec_bytes = project.spec_path.read_bytes()
    spec = load_spec(project.spec_path)
    # 2. lock: resolve the image to digests when envctl.lock is missing or stale (engine.sources.resolve)
    lock, lock_bytes, locked_now = ensure_lock(spec, lock_path, root, out, locked=locked, frozen=frozen)
    platform = str(host_platform())
    plat = lock.platform(platform)
    store = open_store()
    with store.store_lock(shared=True):
        # 3+4. fetch the config, manifest and layer blobs the store lacks, unpack the layers
        #      (engine.store.cas, engine.layers.pull)
        base = fetch_base(store, plat, source_opener(spec.image, root, frozen, out), out)
        layers = base.layers
        # (packages stage, issue 12: engine.packages installs the locked apt/pip/npm artifacts
        #  as layers here, on top of the image and under the step layers: Layers -> Layers)
        # 5. build steps: run/copy steps as cached layers (engine.build.steps), recorded in the lock
        layers, steps = build_layers(store, spec, base.config, layers, root, out,
                                     cache_from=cache_from, cache_to=cache_to)
        if steps:  # issue 6: per-step cacheKey/diffID/digest into envctl.lock "steps"
            lock_bytes = record_steps(lock_path, lock, lock_bytes, steps, platform, out, locked=locked or frozen)
        # 6. compose the overlay root filesystem (engine.rootfs.compose; keep-id copies: engine.store.idmap)
        env_id = env_id_for(project.spec_path)
        env_dir = store.envs / env_id
        running = env_in_use(store, env_id)
        lowerdirs, idmap = present_layers(store, spec, base.config, env_dir, layers)
        with store.env_lock(env_id):
            rootfs, reset = compose_rootfs(store, env_id, lowerdirs, layers.chain, idmap, running=running, out=out)
            # 7. env.json: the hand-off to runtime/ (runtime.config.generate_config), and the gc root
            data = env_json(spec, env_id=env_id, project_root=root, display_spec=project.display_spec,
                            spec_bytes=spec_bytes, lock_bytes=lock_bytes, platform=platform, rootfs=rootfs,
                            config=base.config, chain=layers.chain)
            data["imageBlobs"] = [str(plat.manifest.digest), str(plat.config.digest)]
            write_json_atomic(env_dir / "env.json", data)
            write_json_atomic(gc_root_for(store, lock_path),
                              {"lock": str(lock_path), "project": str(root), "env": env_id})
    info = EnvInfo(env_id, env_dir, env_dir / "env.json", data, base.report, reset, locked_now,
                   time.monotonic() - t0, steps)
    out.info(summary(info))
    return info


def summary(info: EnvInfo) -> str:
    """One line: what ``up`` did and how long it took."""
    r = info.report
    parts = []
    if r.downloaded_bytes:
        parts.append(f"downloaded {r.downloaded_bytes / MIB:.1f} MiB")
    if r.unpacked:
        parts.append(f"unpacked {r.unpacked} layer{'s' * (r.unpacked != 1)}")
    if r.cached:
        parts.append(f"{r.cached} cached")
    built = sum(1 for o in info.steps if getattr(o, "source", "") == "built")
    reused = sum(1 for o in info.steps if getattr(o, "source", "") in ("local", "remote"))
    if built or reused:
        parts.append(f"steps: {built} built, {reused} from cache")
    if not parts:
        parts.append("nothing to do")
    return f"environment {info.env_id} ready: {', '.join(parts)} in {info.seconds:.2f}s"
