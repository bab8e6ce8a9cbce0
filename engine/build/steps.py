"""Build steps: each step runs on the chain below it with a fresh upperdir that becomes a layer.

Issue 6 "Build". For every step, in order:

- metadata steps (``env``, ``workdir``, ``user``) only change the :class:`StepContext` (and so the
  config and the cache keys of later steps); they make no layer;
- the cache key is computed (engine.build.cache); a hit in the local index whose layer is present,
  or one a remote cache can supply, skips the step;
- otherwise a fresh ``upper``/``work`` pair is made in the store's ``tmp/``; ``run`` steps
  execute through the :class:`Executor` (the engine never forks a container; envctl/ wires the
  runtime in), ``copy`` steps write straight into the upperdir;
- the upperdir is written as a deterministic layer blob (engine.layers.writer), the blob is
  committed to ``blobs/``, and the upperdir itself — already in overlay form — is renamed to
  ``layers/<chainID>/root``: no unpack needed.

A failed step raises :class:`BuildError` with its exit status and the last lines of its output;
it caches nothing and every earlier layer stays in the store.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

from engine.build.cache import CachedLayer, LocalCache, StepContext, cache_key
from engine.build.copy_inputs import CopyItem, collect_copy
from engine.errors import BuildError
from engine.layers.chain import chain_ids
from engine.store.cas import Store
from engine.store.fsutil import fsync_dir, remove_tree
from specs.digest import Digest

__all__ = ["RunRequest", "RunResult", "Executor", "RemoteCache", "StepOutcome", "BuildResult",
           "initial_context", "final_context", "describe_step", "build_steps", "chain_after",
           "remove_build_tree", "DEFAULT_SHELL", "commit_blob", "commit_layer_dir"]

DEFAULT_SHELL = "/bin/sh"
TAIL_LINES = 20


@dataclass(frozen=True)
class RunRequest:
    """One ``run`` step for the executor.

    Attributes:
        argv: the command (``[shell, "-c", script]`` or the exec form).
        env: ``NAME=value`` strings, sorted by name.
        workdir: working directory inside the environment.
        user: ``user[:group]`` or None for root.
        rootfs: overlay plan ``{"driver": "overlay", "lowerdirs": [top..bottom], "upperdir",
            "workdir", "userxattr": bool}`` (the env.json "rootfs" shape; mounted by the runtime).
        network: ``"host"`` (default for builds) or ``"none"``.
        step_index: 0-based index of the step in the spec (for logs).
    """

    argv: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    user: str | None
    rootfs: dict
    network: str = "host"
    step_index: int = 0


@dataclass(frozen=True)
class RunResult:
    """What the executor reports: exit status (int, 128+N for a signal) and the output's last lines."""

    status: int
    output_tail: tuple[str, ...] = ()
    hint: str | None = None   # the executor's own advice for a failed step (e.g. what doctor says)


class Executor(Protocol):
    """Runs build commands in a container; implemented in envctl/ over the runtime.

    Attributes:
        rootless: True when the container runs in a user namespace mapped by uid_map/gid_map;
            the upperdir then uses ``user.overlay.*`` xattrs (``userxattr``).
        uid_map, gid_map: OCI id mappings (containerID, hostID, size) used for the container;
            () when ids are not mapped (root).
    """

    rootless: bool
    uid_map: tuple[tuple[int, int, int], ...]
    gid_map: tuple[tuple[int, int, int], ...]

    def run(self, request: RunRequest) -> RunResult:
        """Run one ``run`` step's command on the composed rootfs described by ``request``.

        Returns a RunResult (exit code and captured output); raises an EnvctlError subclass when the
        command cannot be started (a non-zero exit is a result, not an error).
        """


class RemoteCache(Protocol):
    """A shared step cache (engine.publish.registry_cache): fetch a layer by key, or publish one.

    ``fetch`` makes the layer present in ``store`` (blob + ``layers/<chainID>``, unpacked over
    ``lowers``, top first) on top of chain ``parent``, or returns None.
    """

    def fetch(self, key: str, store: Store, parent: str | None, lowers: list[Path]) -> CachedLayer | None:
        """Fetch the step layer cached under ``key`` (str cache key) into ``store`` on top of chain
        ``parent`` (chainID str or None), unpacked over ``lowers`` (list of Path, top first).

        Returns the CachedLayer, or None on a miss; a cache that fails (unreachable, corrupt
        entry) is a miss too: implementations warn and return None rather than raise.
        """

    def publish(self, key: str, layer: CachedLayer, store: Store) -> None:
        """Publish ``layer`` (its blob read from ``store``) to the cache under ``key`` (str).

        Returns None; a failed push is warned about, not raised (the build itself succeeded).
        """


@dataclass(frozen=True)
class StepOutcome:
    """One step's result.

    Attributes:
        index: 0-based position in ``spec.steps``.
        kind: step kind.
        cache_key: ``sha256:...`` (None for metadata steps).
        layer: the step's layer (None for metadata steps).
        source: ``"built"``, ``"local"`` (local cache), ``"remote"`` (remote cache) or ``"metadata"``.
        reproducible: the step's ``reproducible`` flag.
        step_digest: canonical digest of the step itself (``sha256:...``).
    """

    index: int
    kind: str
    cache_key: str | None
    layer: CachedLayer | None
    source: str
    reproducible: bool = True
    step_digest: str | None = None

    def lock_entry(self) -> dict:
        """The per-platform part of this step's envctl.lock entry."""
        if self.layer is None:
            return {}
        return {"cacheKey": self.cache_key, "diffID": self.layer.diff_id, "digest": self.layer.digest,
                "size": self.layer.size, "mediaType": self.layer.media_type}


@dataclass
class BuildResult:
    """All step outcomes, the final context and the chain (chainIDs of the base + step layers)."""

    steps: list[StepOutcome]
    context: StepContext
    chain: list[str] = field(default_factory=list)

    @property
    def layers(self) -> list[CachedLayer]:
        """The step layers of the build, bottom first (list of CachedLayer; steps without a layer omitted)."""
        return [s.layer for s in self.steps if s.layer is not None]

    @property
    def chains(self) -> list[str]:
        """Alias of ``chain`` (the name envctl.workflow uses)."""
        return self.chain

    @property
    def outcomes(self) -> list[StepOutcome]:
        """Alias of ``steps`` (the name envctl.workflow uses)."""
        return self.steps

    @property
    def executed(self) -> int:
        """How many steps were built here rather than taken from a cache (int)."""
        return sum(1 for s in self.steps if s.source == "built")


def initial_context(image_config: dict, spec_env: dict[str, str]) -> StepContext:
    """The context of the first step: the image's Env/WorkingDir/User, then the spec's ``env``.

    Args:
        image_config: the image config's ``config`` object (dict; may be empty).
        spec_env: the spec's environment (dict).
    """
    env = dict(e.split("=", 1) for e in image_config.get("Env") or [] if "=" in e)
    env.update(spec_env)
    return StepContext(tuple(sorted(env.items())), image_config.get("WorkingDir") or "/",
                       image_config.get("User") or None, DEFAULT_SHELL)


def final_context(steps, image_config: dict, spec_env: dict[str, str]) -> StepContext:
    """The context after every metadata step (what the environment's config carries)."""
    ctx = initial_context(image_config, spec_env)
    for step in steps:
        if step.kind in ("env", "workdir", "user"):
            ctx = _apply_metadata(ctx, step)
    return ctx


def describe_step(step) -> str:
    """Short one-line text of a step (``run: apt-get ...``), for logs and image history."""
    return _describe(step)


def _apply_metadata(ctx: StepContext, step) -> StepContext:
    if step.kind == "env":
        env = dict(ctx.env)
        env.update(dict(step.env))
        return replace(ctx, env=tuple(sorted(env.items())))
    if step.kind == "workdir":
        return replace(ctx, workdir=os.path.normpath(os.path.join(ctx.workdir, step.workdir)))
    return replace(ctx, user=step.user)


def chain_after(parent: str | None, diff_id: str) -> str:
    """chainID of a layer ``diff_id`` on top of chain ``parent`` (None = first layer)."""
    import hashlib

    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


@dataclass
class _Builder:
    store: Store
    executor: Executor | None
    project_root: Path
    local: LocalCache | None
    remote: RemoteCache | None
    compression: str
    epoch: int
    notify: Callable[[str], None]
    lowers: list[Path]  # layer roots, top first
    network: str = "host"

    def step(self, index: int, step, parent: str | None, ctx: StepContext) -> StepOutcome:
        inputs = self._inputs(step, ctx)
        key = cache_key(parent, step, ctx, inputs, self.epoch)
        repro = getattr(step, "reproducible", True)
        for source, layer in self._lookup(key, parent):
            self.notify(f"step {index + 1}: {_describe(step)}: cached ({source})")
            return StepOutcome(index, step.kind, key, layer, source, repro, _step_digest(step))
        self.notify(f"step {index + 1}: {_describe(step)}: building")
        layer = self._build(index, step, parent, ctx, inputs)
        if self.local is not None:
            self.local.put(key, layer)
        if self.remote is not None:
            self.remote.publish(key, layer, self.store)
        return StepOutcome(index, step.kind, key, layer, "built", repro, _step_digest(step))

    def _inputs(self, step, ctx: StepContext) -> list[CopyItem]:
        if step.kind != "copy":
            return []
        return collect_copy(self.project_root, [step.src], step.dest, ctx.workdir)

    def _lookup(self, key: str, parent: str | None):
        if self.local is None:
            return
        layer = self.local.get(key)
        if layer is not None and self.store.has_layer(Digest.parse(layer.chain_id)):
            yield "local", layer
            return
        if self.remote is not None:
            layer = self.remote.fetch(key, self.store, parent, list(self.lowers))
            if layer is not None:
                self.local.put(key, layer)
                yield "remote", layer

    def _build(self, index, step, parent, ctx, inputs) -> CachedLayer:
        tmp = self.store.new_tmp_dir("build")
        try:
            upper = tmp / "layer" / "root"
            upper.mkdir(parents=True)
            (tmp / "work").mkdir()
            if step.kind == "run":
                self._run(index, step, ctx, upper, tmp / "work")
            else:
                self._copy(inputs, upper, step)
            return self._commit(tmp, upper, parent)
        finally:
            remove_build_tree(tmp, self.executor)

    def _copy(self, inputs, upper: Path, step) -> None:
        from engine.build.copy_apply import apply_copy

        ex = self.executor
        if _rootless(ex):  # owners other than root are subordinate ids: chown as their root
            from engine.store.userns import call_in_userns

            call_in_userns(apply_copy, (inputs, upper, list(self.lowers), step.owner, step.mode, None),
                           ex.uid_map, ex.gid_map, f"copy {step.src}")
        else:
            apply_copy(inputs, upper, self.lowers, step.owner, step.mode, ex)

    def _run(self, index, step, ctx, upper: Path, work: Path) -> None:
        if self.executor is None:
            raise BuildError(f"build step {index + 1}: no executor to run commands",
                             hint="this build was started without a container runtime")
        argv = tuple(step.run) if isinstance(step.run, (tuple, list)) else (ctx.shell, "-c", step.run)
        lowers = self.lowers or [self._empty_lower()]
        rootfs = {"driver": "overlay", "lowerdirs": [str(p) for p in lowers], "upperdir": str(upper),
                  "workdir": str(work), "userxattr": bool(self.executor.rootless)}
        # reproducible-builds.org: tools (compileall/pip: hash-based .pyc, dpkg, gzip...) honour it
        env = tuple(f"{k}={v}" for k, v in sorted({"SOURCE_DATE_EPOCH": str(self.epoch), **dict(ctx.env)}.items()))
        result = self.executor.run(RunRequest(argv, env, ctx.workdir, ctx.user, rootfs, self.network, index))
        if result.status != 0:
            tail = "\n".join("  | " + line for line in result.output_tail[-TAIL_LINES:])
            raise BuildError(f"build step {index + 1} ({_describe(step)}) failed with exit status "
                             f"{result.status}" + (f"; last lines of output:\n{tail}" if tail else ""),
                             hint=result.hint or "fix the command in envctl.yaml; earlier steps stay cached")

    def _empty_lower(self) -> Path:
        p = self.store.root / "cache" / "empty-lower"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def _commit(self, tmp: Path, upper: Path, parent: str | None) -> CachedLayer:
        ex = self.executor
        if _rootless(ex):  # the upperdir holds files of subordinate ids: read it as their root
            from engine.store.userns import call_in_userns

            result, blob = call_in_userns(_write_layer, (str(upper), str(self.store.tmp), self.compression,
                                                         self.epoch, (), ()),
                                          ex.uid_map, ex.gid_map, "write layer")
        else:
            result, blob = _write_layer(upper, self.store.tmp, self.compression, self.epoch,
                                        ex.uid_map if ex else (), ex.gid_map if ex else ())
        commit_blob(self.store, Path(blob), result.digest)
        chain = chain_after(parent, str(result.diff_id))
        layer = CachedLayer(str(result.diff_id), str(result.digest), result.size, result.media_type, chain)
        commit_layer_dir(self.store, tmp / "layer", layer, rootless=bool(ex and ex.rootless),
                         tree=not _rootless(ex))
        return layer


def _write_layer(upper, tmpdir, compression: str, epoch: int, uid_map, gid_map):
    from engine.layers.writer import clamp_mtimes, write_layer_file  # tarfile: only when a layer is written

    clamp_mtimes(upper, epoch)  # the kept layer dir then equals what unpacking its tar gives
    result, path = write_layer_file(upper, tmpdir, compression=compression, epoch=epoch,
                                    uid_map=uid_map, gid_map=gid_map)
    return result, str(path)


def _step_digest(step) -> str:
    from engine.build.cache import step_dict
    from specs.canonical import canonical_digest

    return canonical_digest(step_dict(step))


def _rootless(executor) -> bool:
    from engine.store.userns import needs_userns

    return executor is not None and bool(getattr(executor, "rootless", False)) and needs_userns(executor.uid_map)


def remove_build_tree(path: Path, executor=None) -> None:
    """Remove a build's scratch tree; rootless, inside the build's user namespace (see engine/store/userns.py)."""
    if not os.path.lexists(path):
        return
    if _rootless(executor):
        from engine.store.userns import call_in_userns

        call_in_userns(remove_tree, (Path(path),), executor.uid_map, executor.gid_map, f"remove {path}")
    else:
        remove_tree(Path(path))


def commit_blob(store: Store, tmp: Path, digest: Digest) -> Path:
    """Rename a finished blob file into ``blobs/`` (read-only; an existing blob wins)."""
    final = store.blob_path(digest)
    os.chmod(tmp, 0o444)
    if final.exists():
        tmp.unlink()
        return final
    os.rename(tmp, final)
    fsync_dir(store.blobs)
    return final


def commit_layer_dir(store: Store, layer_dir: Path, layer: CachedLayer, rootless: bool, tree: bool = True) -> Path:
    """Rename ``layer_dir`` (holding ``root/``) to ``layers/<chainID hex>`` with its layer.json.

    layer.json has the fields engine/layers/snapshots.py writes for unpacked layers (fsck checks
    ``treeDigest``, gc follows ``blob``), plus ``builtBy``. ``tree=False`` omits treeDigest
    (rootless builds: the tree holds directories only the build's user namespace can read).
    """
    from engine.layers.snapshots import syncfs
    from engine.store.layer_dirs import tree_digest

    chain = Digest.parse(layer.chain_id)
    meta = {"chainID": layer.chain_id, "diffID": layer.diff_id, "blob": layer.digest, "digest": layer.digest,
            "size": layer.size, "compression": layer.media_type.rsplit("+", 1)[-1] if "+" in layer.media_type
            else "plain", "mediaType": layer.media_type, "rootless": rootless, "builtBy": "envctl build",
            **({"treeDigest": tree_digest(layer_dir / "root")} if tree else {})}
    idmap = store.idmap if rootless else None
    if idmap is not None:  # the step ran under the store's subordinate-id mapping (engine/store/idmap.py)
        from engine.store.userns import call_in_userns

        meta.update(idMap=idmap.key(), idMappings=idmap.to_json(),
                    treeDigest=call_in_userns(tree_digest, (layer_dir / "root",), idmap.uid, idmap.gid,
                                              f"digest layer {layer.chain_id}"))
    (layer_dir / "layer.json").write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n")
    syncfs(layer_dir)
    with store.layer_lock(chain):
        if store.has_layer(chain):
            return store.layer_dir(chain)
        final = store.layer_dir(chain)
        if final.exists():  # an incomplete earlier attempt
            remove_tree(final)
        os.rename(layer_dir, final)
        fsync_dir(store.layers)
    return final


def _describe(step) -> str:
    if step.kind == "run":
        text = step.run if isinstance(step.run, str) else " ".join(step.run)
        text = text.strip().splitlines()[0] if text.strip() else ""
        return "run: " + (text[:60] + "..." if len(text) > 60 else text)
    if step.kind == "copy":
        return f"copy: {step.src} {step.dest}"
    return step.kind


def build_steps(steps, *, store: Store, base_diff_ids: list[str], image_config: dict,
                spec_env: dict[str, str], project_root: Path, executor: Executor | None,
                use_cache: bool = True, remote: RemoteCache | None = None, compression: str = "gzip",
                epoch: int | None = None, network: str = "host", base_store: Store | None = None,
                notify: Callable[[str], None] = lambda _m: None) -> BuildResult:
    """Build (or find in a cache) every step on top of a base image whose layers are unpacked.

    Args:
        steps: ``spec.steps`` (specs.model.Step, in order).
        store: the store holding the base layers; step blobs and layers are added to it.
        base_diff_ids: the base image's diffIDs, bottom first (``sha256:...``); their chains must
            be unpacked in ``store`` (``layers/<chainID>/root``).
        image_config: the base image config's ``config`` object (Env, WorkingDir, User).
        spec_env: the spec's ``env`` (dict), seen by every step.
        project_root: directory copy sources are relative to.
        executor: runs ``run`` steps (None: a run step that is not cached fails).
        use_cache: look steps up in the local index (False: rebuild everything, e.g. ``verify``).
        remote: shared step cache to fetch from / publish to (None: local only).
        compression: ``"gzip"`` or ``"zstd"`` for new layer blobs.
        epoch: mtime clamp (default ``SOURCE_DATE_EPOCH`` or 0).
        network: network of run steps.
        base_store: where the base layers are unpacked (default ``store``; ``verify`` builds into
            a throwaway store over the real store's base layers).
        notify: progress callback (one line per step).

    Returns:
        BuildResult.

    Raises:
        BuildError: a step failed (exit status + output tail), a copy source is refused,
            or a base layer is not unpacked.
    """
    base_store = base_store or store
    store.ensure()
    chains = [str(c) for c in chain_ids(base_diff_ids)]
    lowers = [base_store.layer_root(Digest.parse(c)) for c in reversed(chains)]
    for c in chains:
        if not base_store.has_layer(Digest.parse(c)):
            raise BuildError(f"build steps: base layer {c} is not unpacked in {base_store.root}",
                             hint="run 'envctl up' (it fetches and unpacks the image first)")
    from engine.layers.writer import source_date_epoch

    b = _Builder(store, executor, Path(project_root), LocalCache(store.root) if use_cache else None,
                 remote if use_cache else None, compression,
                 source_date_epoch() if epoch is None else epoch, notify, lowers, network)
    ctx = initial_context(image_config, spec_env)
    outcomes, parent = [], chains[-1] if chains else None
    for i, step in enumerate(steps):
        if step.kind in ("env", "workdir", "user"):
            ctx = _apply_metadata(ctx, step)
            outcomes.append(StepOutcome(i, step.kind, None, None, "metadata", step.reproducible, _step_digest(step)))
            continue
        out = b.step(i, step, parent, ctx)
        outcomes.append(out)
        parent = out.layer.chain_id
        chains.append(parent)
        b.lowers = [store.layer_root(Digest.parse(parent))] + b.lowers
    return BuildResult(outcomes, ctx, chains)
