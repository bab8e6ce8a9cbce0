"""``envctl store fsck``: re-verify every blob and layer; quarantine what is corrupt.

Blobs are re-hashed against their names. Layers must have a readable ``layer.json`` naming their
own chainID and, when it records one, the same ``treeDigest`` (engine/layers/snapshots.py) as the tree on
disk now. Corrupt entries are moved to ``quarantine/`` (never deleted: the user may want to look;
``envctl gc`` empties it), and the next ``up`` downloads or unpacks them again. Leftovers of
killed processes in ``tmp/`` are not corruption: unpack directories are removed, partial
downloads kept for resuming (both reported). Runs under the exclusive store lock.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from engine.store.layer_dirs import tree_digest
from engine.store.cas import Store
from engine.store.fsutil import remove_tree
from engine.store.verifying import CHUNK

__all__ = ["FsckReport", "fsck", "layer_problem"]


@dataclass
class FsckReport:
    """Findings: counts checked, ``corrupt`` (what was quarantined and why), tmp leftovers."""

    blobs: int = 0
    layers: int = 0
    corrupt: list[str] = field(default_factory=list)
    removed_tmp: list[str] = field(default_factory=list)
    partial_downloads: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing corrupt was found (bool)."""
        return not self.corrupt


def _blob_ok(path) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest() == path.name


def _layer_problem(store: Store, d) -> str | None:
    try:
        meta = json.loads((d / "layer.json").read_text())
    except FileNotFoundError:
        return "incomplete (no layer.json)"
    except (OSError, ValueError) as e:
        return f"unreadable layer.json ({e})"
    if meta.get("chainID") != f"sha256:{d.name.partition('.')[0]}":
        return f"layer.json names chainID {meta.get('chainID')}"
    if not (d / "root").is_dir():
        return "no root/ directory"
    want = meta.get("treeDigest")
    if want and meta.get("idMappings"):  # owners are container ids: digest inside that mapping
        from engine.store.idmap import IdMap
        from engine.store.userns import call_in_userns

        j = meta.get("treeIdMappings") or meta["idMappings"]
        m = IdMap(tuple(map(tuple, j["uidMappings"])), tuple(map(tuple, j["gidMappings"])))
        got = call_in_userns(tree_digest, (d / "root",), m.uid, m.gid, f"check layer {d.name}")
        return None if got == want else "unpacked tree changed since it was unpacked"
    if want and tree_digest(d / "root") != want:
        return "unpacked tree changed since it was unpacked"
    return None


def layer_problem(store: Store, layer_dir) -> str | None:
    """What is wrong with the unpacked layer directory ``layer_dir`` (``layers/<chainID hex>[.key]``,
    str or Path), as fsck judges it (layer.json, chainID, ``treeDigest`` of ``root/`` re-computed),
    or None when it matches. Read-only (nothing quarantined); ``envctl verify`` uses it on the
    layers an environment mounts. Raises EngineError when an id-mapped tree cannot be read.
    """
    from pathlib import Path

    return _layer_problem(store, Path(layer_dir))


def _quarantine(store: Store, path, kind: str) -> None:
    target = store.quarantine / f"{kind}-{path.name}"
    remove_tree(target)
    os.rename(path, target)


def fsck(store: Store, *, repair: bool = True) -> FsckReport:
    """Verify the store; with ``repair`` quarantine corrupt entries and clear dead tmp entries."""
    rep = FsckReport()
    store.ensure()
    with store.store_lock(shared=not repair):
        for p in sorted(store.blobs.iterdir()):
            rep.blobs += 1
            if not _blob_ok(p):
                rep.corrupt.append(f"blob sha256:{p.name}: content does not match its digest")
                if repair:
                    _quarantine(store, p, "blob")
        for d in sorted(store.layers.iterdir()):
            rep.layers += 1
            if problem := _layer_problem(store, d):
                rep.corrupt.append(f"layer sha256:{d.name}: {problem}")
                if repair:
                    _quarantine(store, d, "layer")
        for p in sorted(store.tmp.iterdir()):
            if p.name.endswith(".partial"):
                rep.partial_downloads.append(p.name)
            else:
                rep.removed_tmp.append(p.name)
                if repair:
                    remove_tree(p)
    return rep
