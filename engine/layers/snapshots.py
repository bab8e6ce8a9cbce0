"""Layer snapshots in the store: unpack into ``tmp/``, verify the diffID, syncfs, rename into place.

A layer directory ``layers/<chainID hex>/`` holds ``root/`` (the overlay lowerdir) and
``layer.json`` (chainID, diffID, blob digest, entry count, ``treeDigest``). It is renamed in
only when complete and verified, so it exists whole or not at all; ``layer.json`` is what
:meth:`Store.has_layer` looks for. ``treeDigest`` hashes the unpacked tree's metadata
(names, types, modes, owners, sizes, mtimes, link targets, device numbers, xattrs) so that
``envctl store fsck`` can find a layer changed or truncated after the fact.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from engine.layers.compression import open_decompressed
from engine.errors import EngineError, StoreError, UnsafeLayer
from engine.store.cas import Store
from engine.store.fsutil import fsync_dir, remove_tree
from engine.store.layer_dirs import tree_digest
from engine.store.userns import remove_tree_rootless
from engine.layers.unpack import OPAQUE_ROOT, OPAQUE_ROOTLESS, UnpackOptions, UnpackStats, unpack_tar
from engine.store.verifying import VerifyingReader, drain
from specs.digest import Digest

__all__ = ["LayerResult", "unpack_into_store", "remove_stale_tmp", "default_options",
           "syncfs"]


@dataclass
class LayerResult:
    """One committed layer: ``root`` (Path, the lowerdir) and the unpack statistics."""

    chain_id: Digest
    root: Path
    stats: UnpackStats
    compression: str


def default_options(what: str = "layer", warn: Callable[[str], None] = lambda m: None,
                    lowers: Callable[[], list[Path]] | None = None) -> UnpackOptions:
    """Unpack options for this process: rootless unless the effective uid is 0."""
    rootless = os.geteuid() != 0
    return UnpackOptions(rootless=rootless, opaque_xattrs=OPAQUE_ROOTLESS if rootless else OPAQUE_ROOT,
                         lowers=lowers, warn=warn, what=what)


_libc = None


def syncfs(path: Path) -> None:
    """syncfs(2) on the filesystem holding ``path``: one flush per layer instead of per file."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise StoreError(f"syncfs {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def remove_stale_tmp(store: Store, chain_id: Digest) -> int:
    """Remove ``tmp/layer-<chainID hex[:16]>-*`` directories left by an interrupted unpack of the
    same layer (Ctrl-C during ``up``: the unpack threads die with the process before their
    cleanup runs). Only safe while holding ``locks/layer-<chainID>``, as unpack_into_store's
    caller does: nobody else can be unpacking that layer then. Returns how many were removed
    (int); errors are ignored (``store fsck``/``gc`` still clean up) (QA L3).
    """
    removed = 0
    try:
        stale = [p for p in store.tmp.glob(f"layer-{chain_id.hex[:16]}-*") if p.is_dir()]
    except OSError:
        return 0
    for p in stale:
        try:
            remove_tree_rootless(p)
            removed += 1
        except (OSError, EngineError):   # BuildError: no user namespace for a rootless removal
            pass
    return removed


def unpack_into_store(store: Store, chain_id: Digest, diff_id: Digest, blob: BinaryIO, opts: UnpackOptions,
                      *, blob_digest: Digest | None = None,
                      after_tar: Callable[[], None] | None = None) -> LayerResult:
    """Unpack the compressed layer stream ``blob`` as ``layers/<chain_id>``; caller holds the layer lock.

    Args:
        blob: the compressed layer bytes, normally a :class:`VerifyingReader` of the blob digest
            (drained here to EOF so trailing bytes are verified too).
        after_tar: called after the tar and the blob are read to EOF and verified, before the
            layer is renamed in (the pull commits its downloaded blob there).

    Raises:
        DigestMismatch: the uncompressed bytes are not ``diff_id`` (or the blob not its digest).
        UnsafeLayer: see engine/layers/unpack.py.
    """
    remove_stale_tmp(store, chain_id)
    tmp = store.new_tmp_dir(f"layer-{chain_id.hex[:16]}")
    try:
        root = tmp / "root"
        root.mkdir(mode=0o755)
        tar, kind = open_decompressed(blob)
        diff_reader = VerifyingReader(tar, diff_id, None, what=f"{opts.what} (diffID)")
        # (a prefetch thread for gunzip + hashing was tried: no gain here, +8 MiB; the tar parse
        # and per-entry syscalls on this thread are the critical path)
        buffered = io.BufferedReader(diff_reader, 1 << 20)
        idmap = store.idmap if opts.rootless else None
        if idmap is not None:
            opts = _mapped_options(opts, idmap)
        try:
            stats = unpack_tar(buffered, root, opts)
        except UnsafeLayer as e:
            if idmap is None or not isinstance(e.__cause__, PermissionError):
                raise
            # a hardlink to, or an implicit parent in, a lower layer's directory that only its
            # (subordinate-id) owner may read: the host-side unpack cannot look there
            raise UnsafeLayer(f"{e.message}: a lower layer's file is not readable outside the user namespace",
                              hint="set ENVCTL_SUBIDS=0 to unpack this image without subordinate ids") from None
        drain(buffered)   # tar's end-of-archive padding and anything after it is hashed too
        drain(blob)       # and so is the compressed stream's tail
        if after_tar:
            after_tar()
        meta = {"chainID": str(chain_id), "diffID": str(diff_id),
                "blob": str(blob_digest) if blob_digest else None, "compression": kind,
                "entries": stats.entries, "bytes": stats.bytes, "rootless": opts.rootless}
        if idmap is None:
            meta["treeDigest"] = tree_digest(root)
        else:  # real owners: chown inside the user namespace (engine/store/idmap.py)
            from engine.store.idmap import apply_owners
            from engine.store.userns import call_in_userns

            meta["treeDigest"] = call_in_userns(apply_owners, (str(root), opts.link_owners), idmap.uid,
                                                idmap.gid, f"unpack {opts.what} with subordinate ids")
            meta.update(idMap=idmap.key(), idMappings=idmap.to_json())
        (tmp / "layer.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        syncfs(tmp)
        final = store.layer_dir(chain_id)
        if store.has_layer(chain_id):
            remove_tree_rootless(tmp)
        else:
            if final.exists():  # an incomplete leftover without layer.json
                remove_tree_rootless(final)
            os.rename(tmp, final)
            fsync_dir(store.layers)
        return LayerResult(chain_id, store.layer_root(chain_id), stats, kind)
    except BaseException:
        remove_tree_rootless(tmp)
        raise


def _mapped_options(opts: UnpackOptions, idmap) -> UnpackOptions:
    """``opts`` for a rootless unpack whose owners apply_owners will set under ``idmap``."""
    from dataclasses import replace

    from engine.store.idmap import _to_container

    def host_owner(uid: int, gid: int) -> tuple[int, int]:
        u, g = _to_container(idmap.uid, uid), _to_container(idmap.gid, gid)
        return (65534 if u is None else u), (65534 if g is None else g)

    return replace(opts, link_owners={}, host_owner=host_owner)
