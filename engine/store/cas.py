"""The content-addressed store under ``$ENVCTL_HOME`` (DESIGN.md "On disk").

::

    blobs/sha256/<hex>        verified blobs, exactly as the source served them (mode 0444)
    layers/<chainID hex>/     root/ (the overlay lowerdir) + layer.json, renamed in when complete
    envs/<env id>/            upper/ work/ merged/ env.json
    roots/<hash>              gc roots (JSON naming a project's lock file)
    locks/  tmp/  quarantine/

Blobs are streamed into ``tmp/``, hashed while written, fsynced, verified, renamed into place and
the directory fsynced (umoci ``PutBlob``, containerd ``writer.Commit``). One process downloads a
given blob at a time (``locks/blob-<hex>``); a partial download survives a crash in
``tmp/blob-<hex>.partial`` and is resumed from its length (HTTP Range) by the next fetch.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from engine.errors import BlobNotFound, DigestMismatch, SizeMismatch, StoreError
from engine.store.fsutil import fsync_dir, remove_tree, set_topdir
from engine.store.locking import FileLock
from engine.store.verifying import CHUNK, VerifyingReader
from specs.digest import Digest

__all__ = ["Store", "FetchResult"]

_UNSET = object()


@dataclass
class FetchResult:
    """What :meth:`Store.fetch_blob` did. ``downloaded`` is bytes transferred (int)."""

    path: Path
    cached: bool
    downloaded: int


class Store:
    """The store rooted at ``root`` (Path). :meth:`ensure` creates the directories."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.envs = self.root / "envs"
        self.roots = self.root / "roots"
        self.locks = self.root / "locks"
        self.tmp = self.root / "tmp"
        self.quarantine = self.root / "quarantine"
        self._idmap = _UNSET

    @property
    def idmap(self):
        """The rootless ID mapping layers are unpacked under (engine.store.idmap.IdMap), or None
        (root, or the umoci-style fallback): selects ``layers/<hex>`` vs ``layers/<hex>.<key>``."""
        if self._idmap is _UNSET:
            from engine.store.idmap import standard_mapping

            self._idmap = standard_mapping()
        return self._idmap

    def with_idmap(self, idmap) -> "Store":
        """This store seen under another mapping (keep-id layer copies); shares everything else."""
        view = copy.copy(self)
        view._idmap = idmap
        return view

    def ensure(self) -> "Store":
        """Create the layout. The root is 0700: layers hold setuid binaries owned by real uids.

        Returns self (Store). Raises StoreError (one line naming the store, hint ENVCTL_HOME) when
        the root is not a directory or not ours (QA M2: was an internal OSError).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
            for d in (self.blobs, self.layers, self.envs, self.roots, self.locks, self.tmp, self.quarantine):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            what = "not a directory" if isinstance(e, FileExistsError) else (e.strerror or str(e))
            raise StoreError(f"open store {self.root}: {what}",
                             hint="set ENVCTL_HOME to a directory you own (each user has their own store)") from None
        for d in (self.tmp, self.envs):  # new layers and environments each in a fresh block group
            set_topdir(d)
        return self

    # ---- locks (order: store, env, blob, layer; see engine/store/locking.py)
    def store_lock(self, shared: bool = True, blocking: bool = True) -> FileLock:
        """The store-wide lock (FileLock, not yet acquired): shared for readers/writers of entries,
        exclusive for gc. ``blocking=False`` makes acquire raise LockBusy instead of waiting.
        """
        return FileLock(self.locks / "store", shared=shared, blocking=blocking)

    def env_lock(self, env_id: str, shared: bool = False, blocking: bool = True) -> FileLock:
        """The lock of environment ``env_id`` (FileLock, exclusive by default, not yet acquired)."""
        return FileLock(self.locks / f"env-{env_id}", shared=shared, blocking=blocking)

    def blob_lock(self, digest: Digest) -> FileLock:
        """The exclusive lock serialising the ingest of blob ``digest`` (FileLock, not yet acquired)."""
        return FileLock(self.locks / f"blob-{digest.hex}")

    def layer_lock(self, chain_id: Digest) -> FileLock:
        """The exclusive lock serialising the unpack of layer ``chain_id`` (FileLock, not yet acquired)."""
        return FileLock(self.locks / f"layer-{chain_id.hex}")

    # ---- blobs
    def blob_path(self, digest: Digest) -> Path:
        """Where blob ``digest`` is stored: ``blobs/sha256/<hex>`` (Path; may not exist).

        Raises StoreError for a non-sha256 digest.
        """
        if digest.algorithm != "sha256":
            raise StoreError(f"store blob {digest}: only sha256 blobs are stored")
        return self.blobs / digest.hex

    def has_blob(self, digest: Digest) -> bool:
        """True (bool) when blob ``digest`` is in the store (presence only; see fsck for integrity).

        Raises StoreError for a non-sha256 digest.
        """
        return self.blob_path(digest).is_file()

    def open_blob(self, digest: Digest, size: int | None = None) -> VerifyingReader:
        """A verifying reader over a stored blob (the store is re-checked on every read).

        Raises:
            BlobNotFound: not in the store.
        """
        try:
            f = open(self.blob_path(digest), "rb", buffering=0)
        except FileNotFoundError:
            raise BlobNotFound(f"open blob {digest}: not in the store {self.root}") from None
        return VerifyingReader(f, digest, size, what=f"stored blob {digest}")

    def read_blob(self, digest: Digest, size: int | None = None, limit: int = 4 << 20) -> bytes:
        """Whole small blob (manifests, configs), verified; refuses more than ``limit`` bytes."""
        with self.open_blob(digest, size) as r:
            data = r.read(limit + 1)
            if len(data) > limit:
                raise StoreError(f"read blob {digest}: larger than {limit} bytes")
            r.drain()
        return data

    def put_bytes(self, data: bytes, digest: Digest) -> Path:
        """Store small verified bytes (manifest, config) under ``digest``."""
        import io
        return self.ingest(io.BytesIO(data), digest, len(data))

    def ingest(self, stream: BinaryIO, digest: Digest, size: int | None,
               on_chunk: Callable[[bytes], None] | None = None, what: str = "") -> Path:
        """Stream ``stream`` into the store under ``digest`` (temp file, fsync, verify, rename).

        Returns the blob path. Raises DigestMismatch/SizeMismatch (nothing is stored then).
        An existing blob wins: the ingest is discarded.
        """
        self.ensure_dirs_for_blob()
        tmp = self.tmp / f"ingest-{digest.hex}-{uuid.uuid4().hex[:8]}"
        reader = VerifyingReader(stream, digest, size, what=what or f"blob {digest}")
        try:
            with open(tmp, "wb") as out:
                _copy(reader, out, on_chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(tmp, digest)
        finally:
            if tmp.exists():
                tmp.unlink()

    def ensure_dirs_for_blob(self) -> None:
        """Create the store's directories (:meth:`ensure`) when ``blobs/`` or ``tmp/`` is missing.
        Returns None; raises OSError when they cannot be made.
        """
        if not self.blobs.is_dir() or not self.tmp.is_dir():
            self.ensure()

    def _commit(self, tmp: Path, digest: Digest) -> Path:
        final = self.blob_path(digest)
        os.chmod(tmp, 0o444)
        if final.exists():
            tmp.unlink()
            return final
        os.rename(tmp, final)
        fsync_dir(self.blobs)
        return final

    def partial_path(self, digest: Digest) -> Path:
        """The resumable download file of blob ``digest``: ``tmp/blob-<hex>.partial`` (Path)."""
        return self.tmp / f"blob-{digest.hex}.partial"

    def fetch_blob(self, source, digest: Digest, size: int | None, *, what: str = "",
                   on_chunk: Callable[[bytes], None] | None = None) -> FetchResult:
        """Make ``digest`` present, downloading it from ``source`` (an ImageSource) at most once.

        Holds ``locks/blob-<hex>`` so concurrent envctl processes wait for one download and then
        reuse it. Resumes a partial download left by a killed process (``open_blob(offset=n)``);
        when the resumed bytes do not verify, restarts once from byte 0.

        Raises:
            DigestMismatch, SizeMismatch: the source served wrong bytes (nothing stored).
            RegistryError / other EngineError from the source.
        """
        self.ensure_dirs_for_blob()
        with self.blob_lock(digest):
            return self.fetch_blob_locked(source, digest, size, what=what, on_chunk=on_chunk)

    def fetch_blob_locked(self, source, digest: Digest, size: int | None, *, what: str = "",
                          on_chunk: Callable[[bytes], None] | None = None) -> FetchResult:
        """:meth:`fetch_blob` for a caller that already holds ``blob_lock(digest)``."""
        if self.has_blob(digest):
            return FetchResult(self.blob_path(digest), True, 0)
        try:
            n = self._download(source, digest, size, what, on_chunk)
        except (DigestMismatch, SizeMismatch):
            if not self.partial_path(digest).exists():
                raise
            self.partial_path(digest).unlink()
            n = self._download(source, digest, size, what, on_chunk)
        return FetchResult(self.blob_path(digest), False, n)

    def commit_partial(self, digest: Digest) -> Path:
        """Commit a fully written and verified ``tmp/blob-<hex>.partial`` (caller holds the lock)."""
        return self._commit(self.partial_path(digest), digest)

    def _download(self, source, digest, size, what, on_chunk) -> int:
        """Download into the partial file (append from its length), verify, commit. Caller locks."""
        partial = self.partial_path(digest)
        hasher, offset = digest.hasher(), 0
        if partial.exists():
            offset = _hash_file(partial, hasher)
            if size is not None and offset > size:
                partial.unlink()
                hasher, offset = digest.hasher(), 0
        what = what or f"blob {digest}"
        raw = source.open_blob(digest, size, offset) if offset else source.open_blob(digest, size)
        reader = VerifyingReader(raw, digest, size, what=what, hasher=hasher, seen=offset)
        try:
            with open(partial, "ab") as out:
                n = _copy(reader, out, on_chunk)
                out.flush()
                os.fsync(out.fileno())
        except (DigestMismatch, SizeMismatch):
            partial.unlink(missing_ok=True)
            raise
        finally:
            reader.close()
        self._commit(partial, digest)
        return n

    # ---- layers
    def layer_dir(self, chain_id: Digest) -> Path:
        """``layers/<hex>``, or ``layers/<hex>.<mapping key>`` under a subordinate-id mapping."""
        m = self.idmap
        return self.layers / (chain_id.hex if m is None else f"{chain_id.hex}.{m.key()}")

    def layer_root(self, chain_id: Digest) -> Path:
        """The overlay lowerdir of a layer (``layers/<hex>[.<key>]/root``)."""
        return self.layer_dir(chain_id) / "root"

    def has_layer(self, chain_id: Digest) -> bool:
        """True when the layer is complete and was unpacked under this store's mapping."""
        p = self.layer_dir(chain_id) / "layer.json"
        if self.idmap is None:
            return p.is_file()
        try:
            return json.loads(p.read_text()).get("idMap") == self.idmap.key()
        except (OSError, ValueError):
            return False

    def new_tmp_dir(self, prefix: str) -> Path:
        """Create a fresh private (0700) directory ``tmp/<prefix>-<12 hex>`` and return it (Path).

        Raises OSError when it cannot be made.
        """
        self.ensure_dirs_for_blob()
        d = self.tmp / f"{prefix}-{uuid.uuid4().hex[:12]}"
        d.mkdir(mode=0o700)
        return d


def _copy(reader, out, on_chunk) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    while True:
        n = reader.readinto(buf)
        if not n:
            return total
        out.write(view[:n])
        if on_chunk:
            on_chunk(bytes(view[:n]))
        total += n


def _hash_file(path: Path, hasher) -> int:
    total = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            hasher.update(block)
            total += len(block)
    return total


