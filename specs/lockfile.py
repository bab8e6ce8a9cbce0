"""The ``envctl.lock`` model and its canonical bytes (DESIGN.md "envctl.lock").

Canonical JSON (specs/canonical.py): sorted keys, two-space indent, trailing newline; no
timestamps, no absolute paths, so the same inputs give byte-identical files everywhere::

    {"lockVersion": 1,
     "envctl": {"specDigest": "sha256:..."},
     "image": {"reference": "docker.io/library/debian:bookworm", "digest": "sha256:...", "mediaType": "..."},
     "platforms": {"linux/amd64": {"manifest": {"digest", "mediaType", "size"},
                                   "config":   {"digest", "mediaType", "size"},
                                   "layers": [{"digest", "diffID", "size", "mediaType"}, ...]}},
     "steps": [...]}       # owned by the build-steps work; kept verbatim here

Readers accept exactly ``lockVersion`` 1 and refuse newer versions with a hint to upgrade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from specs.canonical import canonical_json
from specs.digest import Digest
from specs.errors import EnvctlError, LockError

__all__ = ["Lockfile", "ImageLock", "PlatformLock", "Descriptor", "LayerLock", "LOCK_VERSION"]

LOCK_VERSION = 1


def _err(where: str, msg: str) -> LockError:
    return LockError(f"envctl.lock: {where}: {msg}",
                     hint="regenerate it with 'envctl lock --update' (or restore it from git)")


def _get(d, key: str, typ, where: str):
    if not isinstance(d, dict):
        raise _err(where, "expected an object")
    v = d.get(key)
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise _err(f"{where}.{key}", f"missing or not a {getattr(typ, '__name__', 'value')}")
    return v


def _digest(d, key: str, where: str) -> Digest:
    text = _get(d, key, str, where)
    try:
        return Digest.parse(text)
    except EnvctlError as e:
        raise _err(f"{where}.{key}", e.message) from None


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: digest, media type, size (bytes)."""

    digest: Digest
    media_type: str
    size: int

    @classmethod
    def from_dict(cls, d, where: str) -> "Descriptor":
        """Parse a descriptor object of envctl.lock (OCI image spec, descriptor.md).

        Args: ``d`` the JSON object (dict); ``where`` its dotted path in the lock (str), for messages.
        Returns a Descriptor. Raises LockError (via ``_err``) naming ``where.<key>`` when ``digest``,
        ``mediaType`` or ``size`` (int bytes, >= 0) is missing, mistyped or invalid.
        """
        size = _get(d, "size", int, where)
        if size < 0:
            raise _err(f"{where}.size", "must be >= 0")
        return cls(_digest(d, "digest", where), _get(d, "mediaType", str, where), size)

    def to_dict(self) -> dict:
        """The lock's JSON form (dict): ``{"digest": str, "mediaType": str, "size": int bytes}``."""
        return {"digest": str(self.digest), "mediaType": self.media_type, "size": self.size}


@dataclass(frozen=True)
class LayerLock:
    """One layer: compressed ``digest``/``size``/``media_type`` and uncompressed ``diff_id``."""

    digest: Digest
    diff_id: Digest
    size: int
    media_type: str

    @classmethod
    def from_dict(cls, d, where: str) -> "LayerLock":
        """Parse a ``layers[i]`` entry: a descriptor plus ``diffID`` (OCI image spec, config.md: rootfs.diff_ids).

        Args: ``d`` (dict), ``where`` (str, dotted path for messages). Returns a LayerLock.
        Raises LockError naming the bad key.
        """
        desc = Descriptor.from_dict(d, where)
        return cls(desc.digest, _digest(d, "diffID", where), desc.size, desc.media_type)

    def to_dict(self) -> dict:
        """The lock's JSON form (dict): digest, diffID (str ``sha256:...``), size (int bytes), mediaType."""
        return {"digest": str(self.digest), "diffID": str(self.diff_id), "size": self.size,
                "mediaType": self.media_type}


@dataclass(frozen=True)
class PlatformLock:
    """Everything pinned for one platform: its manifest, config and layers (bottom first)."""

    manifest: Descriptor
    config: Descriptor
    layers: tuple[LayerLock, ...]

    @classmethod
    def from_dict(cls, d, where: str) -> "PlatformLock":
        """Parse one ``platforms.<os/arch>`` entry: manifest and config descriptors and the layer list.

        Args: ``d`` (dict), ``where`` (str, dotted path for messages). Returns a PlatformLock.
        Raises LockError naming the bad key.
        """
        layers = _get(d, "layers", list, where)
        return cls(Descriptor.from_dict(d.get("manifest"), f"{where}.manifest"),
                   Descriptor.from_dict(d.get("config"), f"{where}.config"),
                   tuple(LayerLock.from_dict(x, f"{where}.layers[{i}]") for i, x in enumerate(layers)))

    def to_dict(self) -> dict:
        """The lock's JSON form (dict): ``{"manifest": {...}, "config": {...}, "layers": [...]}``."""
        return {"manifest": self.manifest.to_dict(), "config": self.config.to_dict(),
                "layers": [x.to_dict() for x in self.layers]}

    def diff_ids(self) -> list[Digest]:
        """The layers' diffIDs, bottom first."""
        return [x.diff_id for x in self.layers]


@dataclass(frozen=True)
class ImageLock:
    """The resolved image: the reference as written in the spec (normalised), and the digest
    and media type of what it pointed to (an index, or a single manifest)."""

    reference: str
    digest: Digest
    media_type: str

    @classmethod
    def from_dict(cls, d, where: str) -> "ImageLock":
        """Parse the lock's ``image`` object: reference (str), digest (index or manifest), mediaType.

        Args: ``d`` (dict), ``where`` (str, dotted path for messages). Returns an ImageLock.
        Raises LockError naming the bad key.
        """
        return cls(_get(d, "reference", str, where), _digest(d, "digest", where), _get(d, "mediaType", str, where))

    def to_dict(self) -> dict:
        """The lock's JSON form (dict): ``{"reference": str, "digest": str, "mediaType": str}``."""
        return {"reference": self.reference, "digest": str(self.digest), "mediaType": self.media_type}


@dataclass(frozen=True)
class Lockfile:
    """A parsed envctl.lock.

    Attributes:
        spec_digest: ``EnvSpec.digest()`` of the spec it was made from (``"sha256:..."``).
        image: the resolved base image.
        platforms: platform name (``"linux/amd64"``) -> PlatformLock.
        steps: per-step entries, JSON objects kept verbatim (owned by the build-steps work).
        lock_version: always LOCK_VERSION when written by this version.
    """

    spec_digest: str
    image: ImageLock
    platforms: dict[str, PlatformLock]
    steps: tuple = ()
    lock_version: int = LOCK_VERSION
    extra: dict = field(default_factory=dict, compare=False)

    def platform(self, name: str) -> PlatformLock:
        """The lock for platform ``name``; raises LockError listing the locked platforms."""
        try:
            return self.platforms[name]
        except KeyError:
            have = ", ".join(sorted(self.platforms)) or "none"
            raise LockError(f"envctl.lock has no platform {name} (locked: {have})",
                            hint="add it to 'platforms:' in envctl.yaml and run 'envctl lock'") from None

    def to_dict(self) -> dict:
        """The JSON-able document (see module doc)."""
        return {"lockVersion": self.lock_version, "envctl": {"specDigest": self.spec_digest},
                "image": self.image.to_dict(),
                "platforms": {k: v.to_dict() for k, v in self.platforms.items()},
                "steps": [dict(s) for s in self.steps]}

    def to_bytes(self) -> bytes:
        """Canonical bytes (UTF-8 JSON, sorted keys, 2-space indent, trailing newline)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, doc) -> "Lockfile":
        """Build from a parsed document; raises LockError naming the bad key."""
        version = _get(doc, "lockVersion", int, "$")
        if version != LOCK_VERSION:
            raise LockError(f"envctl.lock has lockVersion {version}; this envctl reads version {LOCK_VERSION}",
                            hint="upgrade envctl, or regenerate the lock with 'envctl lock --update'")
        spec_digest = _get(doc.get("envctl"), "specDigest", str, "envctl")
        platforms = _get(doc, "platforms", dict, "$")
        steps = doc.get("steps", [])
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise _err("steps", "expected a list of objects")
        return cls(spec_digest, ImageLock.from_dict(doc.get("image"), "image"),
                   {k: PlatformLock.from_dict(v, f"platforms.{k}") for k, v in sorted(platforms.items())},
                   tuple(steps))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Lockfile":
        """Parse lock bytes; raises LockError (not JSON, wrong shape, unknown version)."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise LockError(f"envctl.lock is not valid JSON ({e})",
                            hint="resolve merge conflicts, or regenerate it with 'envctl lock --update'") from None
        return cls.from_dict(doc)

    @classmethod
    def load(cls, path: str | Path) -> "Lockfile":
        """Read and parse ``path``; raises LockError (also for a missing file: use exists() first)."""
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise LockError(f"cannot read {path}: {e.strerror}") from None
        return cls.from_bytes(data)
