"""Registry build cache: step layers shared through an OCI registry repository, keyed by cache key.

Issue 6 "Registry build cache" (``cache: {registry: REF}``, ``--cache-to/--cache-from``). Each
step layer is one small OCI artifact in the cache repository, tagged ``step-<cache key hex>``::

    manifest (application/vnd.oci.image.manifest.v1+json, artifactType below)
      config: application/vnd.dev.envctl.step.v1+json  {"cacheKey", "diffID", "cacheKeyVersion"}
      layers: [the step's layer blob, exactly as built]

A tag lookup is one GET; a miss (404) costs nothing else. A hit downloads the layer blob into
the store (verified by digest), unpacks it over the chain below (verified by diffID) and is then
an ordinary local layer. The cache is best-effort: a failing registry is reported as a warning
and the step is built instead; it never makes a build fail or give a different result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from engine.build.cache import CACHE_KEY_VERSION, CachedLayer
from engine.errors import EngineError, RegistryError
from engine.store.cas import Store
from specs.digest import Digest

__all__ = ["RegistryCache", "STEP_ARTIFACT_TYPE", "step_tag"]

STEP_ARTIFACT_TYPE = "application/vnd.dev.envctl.step.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def step_tag(key: str) -> str:
    """The tag of a cache entry: ``step-<64 hex>``."""
    return "step-" + Digest.parse(key).hex


def _chain(parent: str | None, diff_id: str) -> str:
    from engine.build.steps import chain_after

    return chain_after(parent, diff_id)


class RegistryCache:
    """A RemoteCache (engine.build.steps) over one registry repository.

    Args:
        reference: ``registry/repository`` (a tag, if given, is ignored).
        pull: fetch layers from it (``--cache-from``).
        push: publish built layers to it (``--cache-to``).
        warn: one-line warning callback.
        transport: httpx transport (tests).
    """

    def __init__(self, reference: str, *, pull: bool = True, push: bool = True,
                 warn: Callable[[str], None] = lambda m: None, transport=None):
        from specs.reference import parse_reference

        ref = parse_reference(reference)
        if ref.transport != "docker":
            raise EngineError(f"build cache {reference}: only registry references can hold a cache",
                              hint="use REGISTRY/REPOSITORY, e.g. ghcr.io/team/envctl-cache")
        self.registry, self.repository = ref.registry, ref.repository
        self.pull, self.push, self.warn, self._transport = pull, push, warn, transport
        self.hits = 0
        self.published = 0

    def _failed(self, e: RegistryError, consequence: str) -> None:
        """Warn; an unreachable or failing registry is not asked again during this build."""
        if e.temporary or e.status is None or e.status >= 500:
            self.pull = self.push = False
            consequence += "; cache disabled for this build"
        self.warn(f"build cache {self}: {e.message}; {consequence}")

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"

    def _source(self, key: str):
        from engine.sources.registry import RegistrySource
        from specs.reference import parse_reference

        return RegistrySource(parse_reference(f"{self}:{step_tag(key)}"), transport=self._transport)

    def blob_source(self, record: dict):
        """An ImageSource over the cache repository for a lock record's layer (verify), or None."""
        if not self.pull or not record.get("cacheKey"):
            return None
        return self._source(record["cacheKey"])

    def open_locked(self, record: dict):
        """A verifying stream of a lock record's layer blob from the cache, or None when absent."""
        from engine.store.verifying import VerifyingReader

        src = self.blob_source(record)
        if src is None:
            return None
        digest = Digest.parse(record["digest"])
        try:
            return VerifyingReader(src.open_blob(digest, record.get("size")), digest, record.get("size"),
                                   what=f"cached layer {digest.short()}")
        except RegistryError:
            return None

    def fetch(self, key: str, store: Store, parent: str | None, lowers: list[Path]) -> CachedLayer | None:
        """The cached layer for ``key`` made present in ``store``, or None (miss or cache failure)."""
        if not self.pull:
            return None
        try:
            with self._source(key) as src:
                entry = self._entry(src, key)
                if entry is None:
                    return None
                layer = self._materialise(src, store, entry, parent, lowers)
        except RegistryError as e:
            self._failed(e, "building the step instead")
            return None
        self.hits += 1
        return layer

    def _entry(self, src, key: str) -> dict | None:
        try:
            raw, _ = src.get_manifest()
        except RegistryError as e:
            if e.status == 404:
                return None
            raise
        manifest = json.loads(raw)
        (layer,) = manifest["layers"]
        cfg = manifest["config"]
        with src.open_blob(Digest.parse(cfg["digest"]), cfg["size"]) as f:
            config = json.loads(f.read(1 << 16))
        if config.get("cacheKey") != key:
            self.warn(f"build cache {self}: entry {step_tag(key)} names another key; ignored")
            return None
        return {"digest": layer["digest"], "size": int(layer["size"]), "mediaType": layer["mediaType"],
                "diffID": config["diffID"]}

    def _materialise(self, src, store: Store, e: dict, parent: str | None, lowers: list[Path]) -> CachedLayer:
        from engine.layers.snapshots import default_options, unpack_into_store

        digest, diff_id = Digest.parse(e["digest"]), Digest.parse(e["diffID"])
        chain = Digest.parse(_chain(parent, str(diff_id)))
        store.fetch_blob(src, digest, e["size"], what=f"cached step layer {digest.short()}")
        with store.layer_lock(chain):
            if not store.has_layer(chain):
                opts = default_options(f"cached layer {digest.short()}", self.warn, lambda: lowers)
                with store.open_blob(digest, e["size"]) as blob:
                    unpack_into_store(store, chain, diff_id, blob, opts, blob_digest=digest)
        return CachedLayer(str(diff_id), str(digest), e["size"], e["mediaType"], str(chain))

    def publish(self, key: str, layer: CachedLayer, store: Store) -> None:
        """Push ``layer`` under ``step-<key>`` (warning only on failure)."""
        if not self.push:
            return
        from engine.publish.push import Pusher

        config = json.dumps({"cacheKey": key, "diffID": layer.diff_id, "cacheKeyVersion": CACHE_KEY_VERSION},
                            sort_keys=True, separators=(",", ":")).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": STEP_ARTIFACT_TYPE,
            "config": {"mediaType": STEP_ARTIFACT_TYPE, "digest": str(Digest.from_bytes(config)), "size": len(config)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}],
        }, sort_keys=True, separators=(",", ":")).encode()
        digest = Digest.parse(layer.digest)
        try:
            with Pusher(self.registry, self.repository, transport=self._transport) as p:
                p.ensure_scheme()
                p.push_blob(digest, layer.size, lambda: store.open_blob(digest, layer.size))
                p.push_bytes(config)
                p.put_manifest(manifest, MANIFEST_TYPE, step_tag(key))
        except RegistryError as e:
            self._failed(e, "step layer not stored")
            return
        self.published += 1
