"""The stages of ``envctl up``, one function each, in pipeline order; envctl.workflow.ensure_up
calls them one after the other (docs/architecture.md has the diagram).

Each stage is one call into its engine subpackage and hands a small value to the next, never the
project: the layer stack so far is a :class:`Layers` (diffIDs, chain IDs, layer roots).

  fetch + unpack  :func:`fetch_base`      engine.store.cas (config, manifest), engine.layers.pull
  packages        (slot)                  engine.packages: Layers -> Layers, below the step layers
  build steps     :func:`build_layers`    engine.build.steps.build_steps: Layers -> Layers
  compose         :func:`present_layers`, :func:`compose_rootfs`   engine.store.idmap, engine.rootfs.compose
  env.json        :func:`env_json`, :func:`write_json_atomic`      runtime.config.generate_config

The lock stage (envctl.lockfile_io.ensure_lock, engine.sources.resolve) comes before them.
Also used by ``envctl lock`` (envctl.steps.lock_steps: fetch + build, to record the steps) and by
the verify/gc/store commands (open_store, remote_cache_for, clear_env_upper).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import EngineError, StoreError
from engine.layers.pull import LayerRef, PullReport, ensure_layers
from engine.rootfs.compose import compose, detect_driver, needs_reset
from engine.store.cas import Store
from specs.digest import Digest
from specs.errors import EnvctlError, LockError

__all__ = ["Layers", "BaseImage", "open_store", "source_opener", "fetch_base", "remote_cache_for",
           "build_layers", "present_layers", "compose_rootfs", "env_json", "write_json_atomic",
           "gc_root_for", "clear_env_upper"]


@dataclass
class Layers:
    """The layer stack one stage hands the next (what compose finally mounts).

    Attributes:
        diff_ids: the layers' diffIDs, bottom first (``sha256:...`` str).
        chain: their chain IDs, bottom first (specs.digest.Digest).
        lowerdirs: the unpacked layer roots in the store, top first (Path).
    """

    diff_ids: list[str]
    chain: list[Digest]
    lowerdirs: list[Path]


@dataclass
class BaseImage:
    """The fetch + unpack stage's result: the image config (dict, OCI image config), its layers
    unpacked in the store (:class:`Layers`), and what was downloaded/unpacked (PullReport, whose
    ``downloaded_bytes`` include the config and manifest)."""

    config: dict
    layers: Layers
    report: PullReport


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


# -- fetch + unpack ----------------------------------------------------------------------------
def source_opener(ref, project_root: Path, frozen: bool, out):
    """A function opening the image's source (engine.sources.source) when a blob must be fetched;
    file-transport references are relative to ``project_root``. With ``frozen`` it raises
    EnvctlError instead (``--frozen`` forbids downloading)."""
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


def fetch_base(store: Store, plat, opener, out) -> BaseImage:
    """Fetch the locked platform's manifest and config and make sure its layers are unpacked
    (caller holds the store lock shared).

    Args:
        plat: the lock's platform entry (specs.lockfile); opener: from :func:`source_opener`.

    Returns:
        :class:`BaseImage`. Raises EngineError as ensure_layers does, LockError when the config
        does not match the lock.
    """
    config, fetched = _image_config(store, plat, opener)
    refs = [LayerRef(x.digest, x.diff_id, x.size, x.media_type) for x in plat.layers]
    report = ensure_layers(store, opener, refs, warn=out.warn, progress=out.debug)
    report.downloaded_bytes += fetched
    layers = Layers([str(d) for d in _diff_ids(config)], list(report.chain_ids), report.lowerdirs)
    return BaseImage(config, layers, report)


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


def _diff_ids(config: dict) -> list[Digest]:
    return [Digest.parse(d) for d in config["rootfs"]["diff_ids"]]


# -- build steps -------------------------------------------------------------------------------
def remote_cache_for(spec, out, *, cache_from: str | None = None, cache_to: str | None = None):
    """The registry build cache to use (engine.publish.registry_cache.RegistryCache), or None.

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


def build_layers(store: Store, spec, image_config: dict, below: Layers, project_root: Path, out, *,
                 cache_from: str | None = None, cache_to: str | None = None) -> tuple[Layers, list]:
    """The spec's ``run``/``copy`` steps as layers on top of ``below`` (engine.build.steps; the
    runtime runs ``run`` steps through envctl.executor). Caller holds the store lock shared.

    Args:
        image_config: the base image config (dict); below: the layers the steps build on.
        project_root: directory copy sources are relative to.
        cache_from/cache_to: registry build cache references (:func:`remote_cache_for`).

    Returns:
        ``(Layers with the step layers on top, list of engine.build.steps.StepOutcome)``; ``below``
        and ``[]`` when the spec has no layer steps. Raises BuildError (a step failed).
    """
    if not any(s.kind in ("run", "copy") for s in spec.steps):
        return below, []
    from engine.build.steps import build_steps
    from envctl.executor import make_executor

    res = build_steps(spec.steps, store=store, base_diff_ids=list(below.diff_ids),
                      image_config=image_config.get("config") or {}, spec_env=spec.env_dict(),
                      project_root=project_root, executor=make_executor(spec), network=spec.network,
                      notify=out.info, remote=remote_cache_for(spec, out, cache_from=cache_from, cache_to=cache_to))
    chain = [Digest.parse(c) for c in res.chains]
    diff_ids = list(below.diff_ids) + [str(o.layer.diff_id) for o in res.outcomes if o.layer is not None]
    return Layers(diff_ids, chain, [store.layer_root(c) for c in reversed(chain)]), res.outcomes


# -- compose -----------------------------------------------------------------------------------
def present_layers(store: Store, spec, image_config: dict, env_dir: Path, layers: Layers):
    """The lowerdirs the environment's overlay uses: the store's, or keep-id copies when the
    runtime maps another user (envctl.idmap_view). Returns ``(lowerdirs top first, idmap or None)``."""
    from envctl.idmap_view import present_lowerdirs

    return present_lowerdirs(store, spec, image_config, env_dir, layers.lowerdirs, layers.chain)


def compose_rootfs(store: Store, env_id: str, lowerdirs: list[Path], chain: list[Digest], idmap, *,
                   running: bool, out) -> tuple[dict, bool]:
    """Compose the environment's root filesystem (engine.rootfs.compose); caller holds
    ``store.env_lock(env_id)``. The upper dir is cleared first when the layers changed.

    Returns ``(env.json's rootfs dict, reset: bool)``. Raises StoreError when the environment is
    ``running`` while its layers must be reset.
    """
    driver = detect_driver()
    if needs_reset(store, env_id, chain, driver, lowerdirs):
        if running:
            raise StoreError(f"environment {env_id} is running and its layers changed",
                             hint="stop it with 'envctl down', then run 'envctl up' again")
        clear_env_upper(store.envs / env_id)
    rootfs, reset = compose(store, env_id, lowerdirs, chain, driver=driver,
                            notice=lambda m: out.info(f"notice: {m}"))
    if idmap is not None:
        from envctl.idmap_view import own_upper_root

        own_upper_root(store, rootfs, idmap)
    return rootfs, reset


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


# -- env.json ----------------------------------------------------------------------------------
def env_json(spec, *, env_id: str, project_root: Path, display_spec: str, spec_bytes: bytes,
             lock_bytes: bytes, platform: str, rootfs: dict, config: dict, chain: list[Digest]) -> dict:
    """env.json's content: the hand-off to runtime/ (the cached OCI runtime config from
    runtime.config.generate_config, the rootfs to mount, the hashes the warm path compares).
    Raises EngineError when the runtime config cannot be generated."""
    image_config = config.get("config") or {}
    try:
        from runtime.config import generate_config

        runtime = generate_config(spec, image_config=image_config, rootfs=rootfs,
                                  project_root=str(project_root), rootless=os.geteuid() != 0,
                                  args=None, tty=False)
    except ImportError:
        runtime = {}
    except (ValueError, KeyError) as e:
        raise EngineError(f"generate the runtime config of {display_spec}: {e}") from None
    return {"envId": env_id, "project": str(project_root),
            "specSha256": hashlib.sha256(spec_bytes).hexdigest(),
            "lockSha256": hashlib.sha256(lock_bytes).hexdigest(),
            "platform": platform, "rootfs": rootfs, "imageConfig": image_config, "runtime": runtime,
            "layers": [str(c) for c in chain]}
