"""Make an image's layers present in the store: bounded parallel downloads, unpacking while downloading.

Per layer (bottom first, ``jobs`` at a time):

1. ``layers/<chainID>`` complete → nothing to do (no network, no source opened);
2. take ``locks/blob-<digest>`` then ``locks/layer-<chainID>`` (engine/store/locking.py order) and look
   again — another envctl process may just have finished it;
3. blob stored → unpack from the store (verified again while read);
   partial download left by a killed process → resume it (HTTP Range), then unpack from the store;
   otherwise → stream the download through a tee: every byte goes to ``tmp/blob-<hex>.partial``
   and, through the verifier and the decompressor, into the unpacker; the blob is committed once
   the stream verified at EOF, the layer after it.

Only hardlinks into lower layers and implicit parent directories need the layers below; those
calls wait for the lower layers' jobs (jobs are started bottom first, so waiting cannot deadlock).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.layers.compression import check_media_type
from engine.errors import DigestMismatch, SizeMismatch, UnsafeLayer
from engine.layers.snapshots import LayerResult, default_options, unpack_into_store
from engine.layers.chain import chain_ids
from engine.store.cas import Store
from engine.store.verifying import VerifyingReader
from specs.digest import Digest

__all__ = ["LayerRef", "PullReport", "ensure_layers"]

DEFAULT_JOBS = 3


@dataclass(frozen=True)
class LayerRef:
    """A layer as the lock names it: blob ``digest``, ``diff_id``, ``size`` (bytes), ``media_type``."""

    digest: Digest
    diff_id: Digest
    size: int | None
    media_type: str | None = None


@dataclass
class PullReport:
    """What :func:`ensure_layers` did: layer roots top first, counts, bytes downloaded, seconds."""

    lowerdirs: list[Path] = field(default_factory=list)
    chain_ids: list[Digest] = field(default_factory=list)
    cached: int = 0
    unpacked: int = 0
    downloaded_bytes: int = 0
    blobs_downloaded: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class _Tee:
    """A raw stream that copies every byte it returns into ``sink`` (the partial blob file)."""

    def __init__(self, raw, sink, counter: Callable[[int], None]):
        self._raw, self._sink, self._count = raw, sink, counter

    def readinto(self, b) -> int:
        if hasattr(self._raw, "readinto"):
            n = self._raw.readinto(b) or 0
        else:
            data = self._raw.read(len(b))
            n = len(data)
            b[:n] = data
        if n:
            self._sink.write(memoryview(b)[:n])
            self._count(n)
        return n

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close:
            close()


class _Puller:
    def __init__(self, store: Store, open_source: Callable[[], object], layers: list[LayerRef],
                 warn: Callable[[str], None], allow_foreign: bool,
                 progress: Callable[[str], None] = lambda m: None):
        self.store, self.layers, self.warn, self.progress = store, layers, warn, progress
        self._open_source = open_source
        self._source = None
        self._source_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.chains = chain_ids([layer.diff_id for layer in layers])
        self.futures: list[Future] = []
        self.failed = threading.Event()
        self.report = PullReport(chain_ids=self.chains)
        for layer in layers:
            check_media_type(layer.media_type, str(layer.digest), allow_foreign)

    def source(self):
        with self._source_lock:
            if self._source is None:
                self._source = self._open_source()
            return self._source

    def close(self) -> None:
        if self._source is not None and hasattr(self._source, "close"):
            self._source.close()

    def count(self, n: int, blobs: int = 0) -> None:
        with self._count_lock:
            self.report.downloaded_bytes += n
            self.report.blobs_downloaded += blobs

    def lowers(self, i: int) -> Callable[[], list[Path]]:
        def wait() -> list[Path]:
            for f in self.futures[:i]:
                f.result()
            return [self.store.layer_root(c) for c in reversed(self.chains[:i])]
        return wait

    def job(self, i: int) -> str:
        try:
            return self._job(i)
        except BaseException:
            self.failed.set()
            raise

    def _job(self, i: int) -> str:
        layer, chain = self.layers[i], self.chains[i]
        if self.store.has_layer(chain):
            return "cached"
        if self.failed.is_set():  # another layer failed: do not start more downloads
            return "skipped"
        with self.store.blob_lock(layer.digest), self.store.layer_lock(chain):
            if self.store.has_layer(chain):
                return "cached"
            opts = default_options(f"layer {layer.digest.short()}", self._warn, self.lowers(i))
            if not self.store.has_blob(layer.digest) and self.store.partial_path(layer.digest).exists():
                res = self.store.fetch_blob_locked(self.source(), layer.digest, layer.size,
                                                   on_chunk=lambda b: self.count(len(b)))
                self.count(0, 0 if res.cached else 1)
            if self.store.has_blob(layer.digest):
                self.progress(f"layer {layer.digest.short()}: unpacking from the store")
                with self.store.open_blob(layer.digest, layer.size) as blob:
                    unpack_into_store(self.store, chain, layer.diff_id, blob, opts, blob_digest=layer.digest)
                return "unpacked"
            size = f" ({layer.size / (1 << 20):.1f} MiB)" if layer.size else ""
            self.progress(f"layer {layer.digest.short()}: downloading and unpacking{size}")
            self.stream_and_unpack(layer, chain, opts)
            self.count(0, 1)
            return "unpacked"

    def stream_and_unpack(self, layer: LayerRef, chain: Digest, opts) -> LayerResult:
        partial = self.store.partial_path(layer.digest)
        raw = self.source().open_blob(layer.digest, layer.size)
        with open(partial, "wb") as sink:
            tee = _Tee(raw, sink, self.count)
            blob = VerifyingReader(tee, layer.digest, layer.size, what=f"blob {layer.digest}")

            def commit_blob() -> None:
                sink.flush()
                os.fsync(sink.fileno())
                self.store.commit_partial(layer.digest)

            try:
                return unpack_into_store(self.store, chain, layer.diff_id, blob, opts,
                                         blob_digest=layer.digest, after_tar=commit_blob)
            except (DigestMismatch, SizeMismatch, UnsafeLayer):
                partial.unlink(missing_ok=True)  # only an interrupted transfer is worth resuming
                raise
            finally:
                tee.close()

    def _warn(self, msg: str) -> None:
        self.report.warnings.append(msg)
        self.warn(msg)


def ensure_layers(store: Store, open_source: Callable[[], object], layers: list[LayerRef], *,
                  jobs: int = DEFAULT_JOBS, warn: Callable[[str], None] = lambda m: None,
                  allow_foreign: bool = False,
                  progress: Callable[[str], None] = lambda m: None) -> PullReport:
    """Download and unpack whatever of ``layers`` (bottom first) the store lacks.

    Args:
        open_source: called at most once, only when a blob must be downloaded (ImageSource).
        jobs: layers processed at once (downloads and unpacks overlap across them).
        progress: one line per layer that is downloaded or unpacked.

    Returns:
        :class:`PullReport` with ``lowerdirs`` top first (the overlay order).

    Raises:
        DigestMismatch, SizeMismatch, UnsafeLayer, RegistryError: the first failure (by layer).
    """
    t0 = time.monotonic()
    store.ensure()
    p = _Puller(store, open_source, layers, warn, allow_foreign, progress)
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="envctl-layer") as ex:
            for i in range(len(layers)):
                p.futures.append(ex.submit(p.job, i))
        errors = [f.exception() for f in p.futures if f.exception() is not None]
        if errors:
            raise errors[0]  # the lowest failing layer's own error
        outcomes = [f.result() for f in p.futures]
    finally:
        p.close()
    p.report.cached = outcomes.count("cached")
    p.report.unpacked = outcomes.count("unpacked")
    p.report.lowerdirs = [store.layer_root(c) for c in reversed(p.chains)]
    p.report.seconds = time.monotonic() - t0
    return p.report
