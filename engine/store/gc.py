"""Garbage collection of the store: mark from gc roots and running environments, sweep the rest.

Roots are ``roots/<hash>`` files naming a project's lock file (written by ``envctl up``); a root
whose lock file is gone is dropped. From each live root: its environment (``envs/<id>``), the
layers recorded in that environment's ``env.json`` (image and step chains), every blob the lock
names (manifests, configs, layers, for every platform) and the blob each kept layer came from.
An environment in use — its ``locks/env-<id>`` held, or its runtime ``state.json`` naming a live
process — is kept with everything it uses even when its root is gone. The sweep runs under the exclusive
store lock, so no ``envctl up`` is half-way through (they hold it shared).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.store.locking import is_locked
from engine.store.envs import env_in_use
from engine.store.cas import Store
from engine.store.userns import remove_tree_rootless
from specs.digest import Digest

__all__ = ["GcReport", "collect", "tree_size"]


@dataclass
class GcReport:
    """What gc removed (or would remove with ``dry_run``): paths and bytes (apparent size)."""

    removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    roots_dropped: list[str] = field(default_factory=list)
    kept_running: list[str] = field(default_factory=list)
    dry_run: bool = False


def tree_size(path: Path) -> int:
    """Apparent size in bytes of a file or tree (hardlinked inodes counted once)."""
    seen, total = set(), 0
    if not os.path.lexists(path):
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_size
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _lock_blobs(lock_path: Path) -> set[str]:
    doc = _json(lock_path) or {}
    out = set()
    for plat in (doc.get("platforms") or {}).values():
        for key in ("manifest", "config"):
            if d := (plat.get(key) or {}).get("digest"):
                out.add(d)
        out.update(x.get("digest") for x in plat.get("layers") or [] if x.get("digest"))
    return out


def _mark(store: Store, report: GcReport, dry_run: bool) -> tuple[set[str], set[str], set[str]]:
    envs, blobs, layers = set(), set(), set()
    for root in sorted(store.roots.iterdir()) if store.roots.is_dir() else []:
        doc = _json(root) or {}
        lock = doc.get("lock")
        if not lock or not Path(lock).is_file():
            report.roots_dropped.append(lock or root.name)
            if not dry_run:
                root.unlink(missing_ok=True)
            continue
        blobs |= _lock_blobs(Path(lock))
        if doc.get("env"):
            envs.add(doc["env"])
    for env in sorted(store.envs.iterdir()) if store.envs.is_dir() else []:
        if env.name not in envs and env_in_use(store, env.name):
            envs.add(env.name)
            report.kept_running.append(env.name)
    for env in envs:
        data = _json(store.envs / env / "env.json") or {}
        layers.update(data.get("layers") or [])
        blobs.update(data.get("imageBlobs") or [])
        st = _json(store.envs / env / "layers.json") or {}
        layers.update(st.get("chainIDs") or [])
    for chain in list(layers):
        meta = (_json(store.layers / Digest.parse(chain).hex / "layer.json")
                or _json(store.layer_dir(Digest.parse(chain)) / "layer.json") or {})
        for key in ("blob", "digest"):
            if meta.get(key):
                blobs.add(meta[key])
    return envs, {Digest.parse(b).hex for b in blobs}, {Digest.parse(c).hex for c in layers}


def collect(store: Store, *, dry_run: bool = False,
            prepare_env_removal: Callable[[Path], None] | None = None) -> GcReport:
    """Remove everything not reachable from a root or a running environment.

    Args:
        prepare_env_removal: called with an ``envs/<id>`` directory before it is removed (the CLI
            empties a rootless upperdir inside a user namespace there: it holds subordinate ids).

    Returns:
        :class:`GcReport` (``bytes_freed`` counts what was, or with ``dry_run`` would be, removed).

    Raises:
        StoreError: the store lock cannot be taken.
    """
    report = GcReport(dry_run=dry_run)
    store.ensure()
    with store.store_lock(shared=False):
        envs, blobs, layers = _mark(store, report, dry_run)
        victims: list[Path] = []
        victims += [p for p in store.blobs.iterdir() if p.name not in blobs]
        # layers/<hex> and its per-mapping copies layers/<hex>.<key> (engine/store/idmap.py)
        victims += [p for p in store.layers.iterdir() if p.name.partition(".")[0] not in layers]
        victims += [p for p in store.envs.iterdir() if p.name not in envs]
        victims += list(store.tmp.iterdir()) + list(store.quarantine.iterdir())
        for p in sorted(victims):
            report.bytes_freed += tree_size(p)
            report.removed.append(str(p.relative_to(store.root)))
            if not dry_run:
                if prepare_env_removal and p.parent == store.envs:
                    prepare_env_removal(p)
                remove_tree_rootless(p)  # rootless: subordinate-id trees go inside a user namespace
        if not dry_run:
            for lock in store.locks.iterdir():  # lock files of swept objects
                kind, _, name = lock.name.partition("-")
                gone = ((kind == "blob" and name not in blobs) or (kind == "layer" and name not in layers)
                        or (kind == "env" and name not in envs))
                if gone and not is_locked(lock):
                    lock.unlink(missing_ok=True)
    return report
