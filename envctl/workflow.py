"""``envctl up``'s work: lock if needed, fetch, unpack, compose, and write ``envs/<id>/env.json``.

A second ``up`` with everything cached opens no image source (no network call) and unpacks
nothing: the config and manifest come from the store and every layer's ``layer.json`` is there.
``--locked`` refuses to write or change envctl.lock (exit 3 when it is missing or stale);
``--frozen`` additionally refuses any download.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import EngineError, StoreError
from engine.layers.pull import LayerRef, PullReport, ensure_layers
from engine.rootfs.compose import compose, detect_driver, env_in_use, needs_reset
from engine.store.cas import Store
from specs.digest import Digest
from specs.errors import EnvctlError, LockDrift, LockError

__all__ = ["EnvInfo", "ensure_up", "env_id_for", "open_store", "write_json_atomic", "gc_root_for",
           "clear_env_upper", "summary"]

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


def env_id_for(spec_path: Path) -> str:
    """First 16 hex of sha256 of the absolute spec path (CONTRACTS.md)."""
    return hashlib.sha256(str(Path(spec_path).absolute()).encode()).hexdigest()[:16]


def open_store() -> Store:
    """The store at ``envctl_home()``, created if missing."""
    from envctl.settings import envctl_home

    return Store(envctl_home()).ensure()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` (JSON-able dict) to ``path`` as sorted, indented JSON through a temp file and
    ``os.replace``: readers see the old file or the new one. Raises OSError on write failure.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def gc_root_for(store: Store, lock_path: Path) -> Path:
    """``roots/<sha256(abs lock path)[:32]>``: a gc root naming the project's lock file."""
    return store.roots / hashlib.sha256(str(Path(lock_path).absolute()).encode()).hexdigest()[:32]


def _source_opener(ref, project_root: Path, frozen: bool, out):
    def open_() -> object:
        if frozen:
            raise EnvctlError(f"{ref}: blobs are missing from the store and --frozen forbids downloading",
                              hint="run 'envctl up' without --frozen once (online)")
        from engine.sources.source import open_source

        r = ref
        if r.transport != "docker" and r.path and not os.path.isabs(r.path):
            r = replace(r, path=str(project_root / r.path))
        return open_source(r, progress=out.info)
    return open_


def _lock(project, spec, out, locked: bool, frozen: bool):
    from engine.sources.resolve import lock_drift, make_lock, steps_drift
    from specs.lockfile import Lockfile

    lock_path = project.lock_path
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
    from envctl.commands.lock import _source_factory, _write_atomic

    lock, _ = make_lock(spec, previous, progress=out.info, source_factory=_source_factory(project.root))
    data = lock.to_bytes()
    _write_atomic(lock_path, data)
    out.info(f"wrote {lock_path.name}: {lock.image.reference} @ {lock.image.digest}")
    return lock, data, True


def _base_layers(store: Store, plat, opener, out) -> tuple[dict, PullReport]:
    """Fetch the locked platform's config and make sure its layers are unpacked (caller holds the
    store lock shared). Returns (the image config dict, the PullReport, whose downloaded_bytes
    include the config's bytes). Raises EngineError as ensure_layers and _image_config do.
    """
    config, fetched = _image_config(store, plat, opener)
    layers = [LayerRef(x.digest, x.diff_id, x.size, x.media_type) for x in plat.layers]
    report = ensure_layers(store, opener, layers, warn=out.warn, progress=out.debug)
    report.downloaded_bytes += fetched
    return config, report


def _image_config(store: Store, plat, opener) -> tuple[dict, int]:
    """The image config (verified; fetched when missing) and the manifest kept beside it.

    Returns (config dict, bytes downloaded)."""
    source, fetched = None, 0
    try:
        for desc, is_manifest in ((plat.manifest, True), (plat.config, False)):
            if store.has_blob(desc.digest):
                continue
            source = source or opener()
            if is_manifest:
                raw, _ = source.get_manifest(desc.digest)
                store.put_bytes(raw, desc.digest)
                fetched += len(raw)
            else:
                fetched += store.fetch_blob(source, desc.digest, desc.size,
                                            what=f"config {desc.digest}").downloaded
    finally:
        if source is not None:
            source.close()
    try:
        config = json.loads(store.read_blob(plat.config.digest, plat.config.size))
        diff_ids = [Digest.parse(d) for d in config["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError, EnvctlError) as e:
        raise LockError(f"image config {plat.config.digest} has no valid rootfs.diff_ids ({e})") from None
    if diff_ids != plat.diff_ids():
        raise LockError(f"envctl.lock layers do not match the image config {plat.config.digest}: "
                        f"diffIDs differ", hint="regenerate the lock with 'envctl lock --update'")
    return config, fetched


def ensure_up(project, out, *, locked: bool = False, frozen: bool = False,
              cache_from: str | None = None, cache_to: str | None = None) -> EnvInfo:
    """Make the project's environment ready to enter (CONTRACTS.md ``ensure_up``).

    Args:
        project: envctl.project.Project.
        out: envctl.output.Output for progress lines.
        locked: never write envctl.lock (LockDrift, exit 3, when it is missing or stale).
        frozen: ``locked`` and never download (EnvctlError when a blob is missing).
        cache_from/cache_to: registry build cache references (``up --cache-from/--cache-to``);
            they override the spec's ``cache:`` (envctl.steps.remote_cache_for).

    Returns:
        :class:`EnvInfo`. Raises SpecError, LockError/LockDrift, EngineError (registry, digest,
        unsafe layer), StoreError (environment running while its layers must be reset).
    """
    from engine.sources.platform import host_platform
    from specs.load import load_spec

    t0 = time.monotonic()
    spec_bytes = project.spec_path.read_bytes()
    spec = load_spec(project.spec_path)
    lock, lock_bytes, locked_now = _lock(project, spec, out, locked, frozen)
    platform = str(host_platform())
    plat = lock.platform(platform)
    store = open_store()
    opener = _source_opener(spec.image, project.root, frozen, out)
    with store.store_lock(shared=True):
        config, report = _base_layers(store, plat, opener, out)
        lowerdirs, chain, steps = _build_steps(store, spec, project, config, report, out,
                                               cache_from=cache_from, cache_to=cache_to)
        if steps:  # issue 6: per-step cacheKey/diffID/digest into envctl.lock "steps" (envctl/steps.py)
            from envctl.steps import record_steps
            lock_bytes = record_steps(project, lock, lock_bytes, steps, platform, out, locked=locked or frozen)
        env_id = env_id_for(project.spec_path)
        env_dir = store.envs / env_id
        running = env_in_use(store, env_id)
        from envctl.idmap_view import present_lowerdirs  # rootless keep-id: per-mapping layer copies

        lowerdirs, idmap = present_lowerdirs(store, spec, config, env_dir, lowerdirs, chain)
        with store.env_lock(env_id):
            driver = detect_driver()
            if needs_reset(store, env_id, chain, driver, lowerdirs):
                if running:
                    raise StoreError(f"environment {env_id} is running and its layers changed",
                                     hint="stop it with 'envctl down', then run 'envctl up' again")
                clear_env_upper(env_dir)
            rootfs, reset = compose(store, env_id, lowerdirs, chain, driver=driver,
                                    notice=lambda m: out.info(f"notice: {m}"))
            if idmap is not None:
                from envctl.idmap_view import own_upper_root

                own_upper_root(store, rootfs, idmap)
            data = _env_json(project, spec, env_id, spec_bytes, lock_bytes, platform, rootfs, config, chain)
            data["imageBlobs"] = [str(plat.manifest.digest), str(plat.config.digest)]
            write_json_atomic(env_dir / "env.json", data)
            write_json_atomic(gc_root_for(store, project.lock_path),
                              {"lock": str(project.lock_path), "project": str(project.root), "env": env_id})
    info = EnvInfo(env_id, env_dir, env_dir / "env.json", data, report, reset, locked_now,
                   time.monotonic() - t0, steps)
    out.info(summary(info))
    return info


def clear_env_upper(env_dir: Path) -> None:
    """Empty an environment's overlay upper/work dirs the way the runtime made them.

    Rootless, they hold files of subordinate ids the user cannot remove on the host; the runtime
    removes them inside a user namespace with the environment's own ID mappings.
    """
    try:
        data = json.loads((Path(env_dir) / "env.json").read_text())
    except (OSError, ValueError):
        return
    from runtime.lifecycle import reset_upper

    rootfs = data.get("rootfs") or {}
    if Path(rootfs.get("upperdir") or "/nonexistent").is_dir():
        reset_upper(rootfs, data.get("runtime"))


def _build_steps(store, spec, project, config, report, out, *, cache_from=None, cache_to=None):
    """Step layers on top of the image (issue 6's engine.build.steps); the runtime runs ``run`` steps."""
    chain = list(report.chain_ids)
    if not any(s.kind in ("run", "copy") for s in spec.steps):
        return report.lowerdirs, chain, []
    from engine.build.steps import build_steps

    executor = None
    try:
        from envctl.executor import make_executor  # wired by the build-steps work, when present
        executor = make_executor(spec, project)
    except ImportError:
        pass
    res = build_steps(spec.steps, store=store, base_diff_ids=[str(c) for c in _diff_ids(config)],
                      image_config=config.get("config") or {}, spec_env=spec.env_dict(),
                      project_root=project.root, executor=executor, network=spec.network, notify=out.info,
                      remote=_remote_cache(spec, out, cache_from=cache_from, cache_to=cache_to))
    chain = [Digest.parse(c) for c in res.chains]
    return [store.layer_root(c) for c in reversed(chain)], chain, res.outcomes


def _remote_cache(spec, out, *, cache_from: str | None = None, cache_to: str | None = None):
    from envctl.steps import remote_cache_for  # issue 6: registry build cache (flags, env vars, spec)

    return remote_cache_for(spec, out, cache_from=cache_from, cache_to=cache_to)


def _diff_ids(config: dict) -> list[Digest]:
    return [Digest.parse(d) for d in config["rootfs"]["diff_ids"]]


def _env_json(project, spec, env_id, spec_bytes, lock_bytes, platform, rootfs, config, chain) -> dict:
    image_config = config.get("config") or {}
    try:
        from runtime.config import generate_config

        runtime = generate_config(spec, image_config=image_config, rootfs=rootfs,
                                  project_root=str(project.root), rootless=os.geteuid() != 0,
                                  args=None, tty=False)
    except ImportError:
        runtime = {}
    except (ValueError, KeyError) as e:
        raise EngineError(f"generate the runtime config of {project.display_spec}: {e}") from None
    return {"envId": env_id, "project": str(project.root),
            "specSha256": hashlib.sha256(spec_bytes).hexdigest(),
            "lockSha256": hashlib.sha256(lock_bytes).hexdigest(),
            "platform": platform, "rootfs": rootfs, "imageConfig": image_config, "runtime": runtime,
            "layers": [str(c) for c in chain]}


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
