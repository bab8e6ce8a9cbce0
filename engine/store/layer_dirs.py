"""The on-disk form of one unpacked layer: ``layers/<chainID hex>[.<mapping key>]/``.

It holds ``root/`` (the overlay lowerdir) and ``layer.json`` (chainID, diffID, blob digest, entry
count, ``treeDigest``). ``treeDigest`` hashes the unpacked tree's metadata (names, types, modes,
owners, sizes, mtimes, link targets, device numbers, xattrs) so that ``envctl store fsck`` and
``envctl verify`` can find a layer changed or truncated after it was committed. Writing a layer
directory is the layers stage's work (engine/layers/snapshots.py); reading one back is the store's.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from engine.errors import StoreError
from specs.digest import Digest

__all__ = ["read_layer_meta", "tree_digest"]


def read_layer_meta(store, chain_id: Digest) -> dict:
    """``layer.json`` of a committed layer (dict); ``store`` is an :class:`engine.store.cas.Store`.

    Raises StoreError when unreadable.
    """
    p = store.layer_dir(chain_id) / "layer.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(f"read {p}: {e}") from e


def tree_digest(root: Path) -> str:
    """``sha256:`` over the sorted metadata of every entry under ``root`` (root included)."""
    h = hashlib.sha256()
    _tree(h, str(root), "")
    return "sha256:" + h.hexdigest()


def _tree(h, path: str, rel: str) -> None:
    st = os.lstat(path)
    _record(h, path, rel or ".", st)
    if stat.S_ISDIR(st.st_mode):
        try:
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
        except PermissionError:  # rootless, a 0000 directory: its listing is not ours to read
            h.update(b"unreadable\n")
            return
        for n in names:
            _tree(h, os.path.join(path, n), f"{rel}/{n}" if rel else n)


def _record(h, path: str, rel: str, st: os.stat_result) -> None:
    fields = [rel, oct(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns]
    if stat.S_ISREG(st.st_mode):
        fields.append(st.st_size)
    elif stat.S_ISLNK(st.st_mode):
        fields.append(os.readlink(path))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        fields.append(st.st_rdev)
    if not stat.S_ISLNK(st.st_mode):
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            names = []
        for x in sorted(names):
            try:
                fields.append(f"{x}={os.getxattr(path, x, follow_symlinks=False).hex()}")
            except OSError:
                fields.append(f"{x}=?")
    h.update(json.dumps(fields).encode() + b"\n")
