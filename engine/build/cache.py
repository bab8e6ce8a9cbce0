"""Build-step cache: the key of a step, and the local index from key to layer.

Cache key (issue 6, "Build") = canonical digest of::

    {"cacheKeyVersion": 1,
     "parent": <chainID of everything below the step>,
     "step": <the step, normalised>,
     "context": {"env": {...}, "workdir": "...", "user": ..., "shell": ...},   # what the step sees
     "inputs": [{"path", "dest", "kind", "mode", "digest" | "target"}, ...],    # copy steps only
     "sourceDateEpoch": <int>}                                                  # mtimes and env

so a step is rebuilt exactly when what it runs on, what it is, what it sees or what it copies
changes; an earlier step never depends on a later one. Reading every copied file costs one
sequential hash per file (no stat-based shortcut: mtimes are not content).

The local index lives in ``<store>/cache/steps/<key hex>.json`` holding the step's layer
descriptor (diffID, digest, size, mediaType) and chainID; entries are written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.build.copy_inputs import CopyItem
from specs.canonical import canonical_digest
from specs.digest import Digest

__all__ = ["StepContext", "CachedLayer", "step_dict", "cache_key", "LocalCache", "file_digest"]

CACHE_KEY_VERSION = 1


@dataclass(frozen=True)
class StepContext:
    """What a step sees from the metadata before it.

    Attributes:
        env: environment variables (tuple of (name, value), sorted).
        workdir: working directory (absolute str).
        user: ``user[:group]`` or None (root).
        shell: shell used for ``run`` steps (str).
    """

    env: tuple[tuple[str, str], ...]
    workdir: str
    user: str | None
    shell: str

    def to_dict(self) -> dict:
        """JSON form (dict) of the context that enters the step's cache key: env (dict), workdir,
        user, shell (str or None).
        """
        return {"env": dict(self.env), "workdir": self.workdir, "user": self.user, "shell": self.shell}


@dataclass(frozen=True)
class CachedLayer:
    """A built step layer.

    Attributes:
        diff_id, digest: ``sha256:...`` strings of the tar and of the blob.
        size: blob size in bytes (int).
        media_type: layer media type (str).
        chain_id: chainID of the chain ending with this layer (str).
    """

    diff_id: str
    digest: str
    size: int
    media_type: str
    chain_id: str

    def to_dict(self) -> dict:
        """JSON form (dict): diffID, digest, chainID (str ``sha256:...``), size (int bytes), mediaType."""
        return {"diffID": self.diff_id, "digest": self.digest, "size": self.size,
                "mediaType": self.media_type, "chainID": self.chain_id}

    @classmethod
    def from_dict(cls, d: dict) -> "CachedLayer":
        """Inverse of :meth:`to_dict`. Args: ``d`` (dict). Returns a CachedLayer.

        Raises KeyError, ValueError or TypeError on a malformed record (LocalCache.get: a miss).
        """
        return cls(d["diffID"], d["digest"], int(d["size"]), d["mediaType"], d["chainID"])


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def step_dict(step) -> dict:
    """The step as canonical data: ``step.to_dict()`` when it has one, else its dataclass fields.

    Fields that only change reporting (``reproducible``) are dropped: marking a step
    non-reproducible must not rebuild it.
    """
    data = step.to_dict() if hasattr(step, "to_dict") else _jsonable(step)
    data = _jsonable(data)
    return {k: v for k, v in sorted(data.items()) if k not in ("reproducible", "line", "col")}


def file_digest(path: str) -> str:
    """``sha256:<hex>`` of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _input(item: CopyItem) -> dict:
    entry = {"path": item.rel, "dest": item.dest, "kind": item.kind, "mode": item.mode}
    if item.kind == "file":
        entry["digest"] = file_digest(item.source)
    elif item.kind == "symlink":
        entry["target"] = os.readlink(item.source)
    return entry


def cache_key(parent_chain_id: str | Digest | None, step, context: StepContext,
              inputs: list[CopyItem] = (), epoch: int = 0) -> str:
    """The cache key of a step (``sha256:...``); see the module doc for what goes in.

    Args:
        parent_chain_id: chainID below the step (None for an empty base).
        step: a specs.model step (dataclass) or a dict.
        context: env/workdir/user/shell the step sees.
        inputs: the files a copy step copies (engine.build.copy_inputs.collect_copy).
        epoch: SOURCE_DATE_EPOCH of the build (int): it is in the layer's mtimes and the step's env.
    """
    return canonical_digest({
        "sourceDateEpoch": epoch,
        "cacheKeyVersion": CACHE_KEY_VERSION,
        "parent": None if parent_chain_id is None else str(parent_chain_id),
        "step": step_dict(step) if not isinstance(step, dict) else _jsonable(step),
        "context": context.to_dict(),
        "inputs": [_input(i) for i in inputs],
    })


class LocalCache:
    """The store's index from step cache key to layer.

    Args:
        root: the store root (``$ENVCTL_HOME``); entries go under ``cache/steps/``.
    """

    def __init__(self, root: str | os.PathLike):
        self.dir = Path(root) / "cache" / "steps"

    def _path(self, key: str) -> Path:
        return self.dir / (Digest.parse(key).hex + ".json")

    def get(self, key: str) -> CachedLayer | None:
        """The layer recorded for ``key``, or None (also for an unreadable entry)."""
        try:
            return CachedLayer.from_dict(json.loads(self._path(key).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, layer: CachedLayer) -> None:
        """Record ``layer`` under ``key`` (temp file + rename: readers see old or new)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(layer.to_dict(), sort_keys=True) + "\n")
        os.replace(tmp, path)
