"""OCI/Docker manifest media types and structural checks shared by every image source.

Sources only fetch bytes (``get_manifest``/``open_blob``); this module decides what those bytes
are: an image index (OCI index, Docker manifest list) or an image manifest (OCI, Docker schema 2),
refusing Docker schema 1 and unknown types with one clear line. OCI image spec manifest.md,
image-index.md, descriptor.md; Docker "Image Manifest V 2, Schema 2".
"""

from __future__ import annotations

import json

from engine.errors import DigestMismatch, EngineError, ManifestError, SizeMismatch
from specs.digest import Digest

__all__ = [
    "OCI_INDEX", "OCI_MANIFEST", "DOCKER_LIST", "DOCKER_MANIFEST", "OCI_CONFIG", "DOCKER_CONFIG",
    "INDEX_TYPES", "MANIFEST_TYPES", "SCHEMA1_TYPES", "LAYER_TYPES", "MANIFEST_ACCEPT",
    "MAX_MANIFEST_BYTES", "MAX_CONFIG_BYTES",
    "parse_manifest", "is_index", "read_small_blob", "check_descriptor", "verify_bytes",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
# The Accept list sent for manifests: indexes first, schema 1 deliberately absent.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 << 20   # containerd and the distribution spec's "at least 4 MiB"
MAX_CONFIG_BYTES = 8 << 20
_RESUMES = 3  # interrupted reads of a small blob resumed at most this often

_SCHEMA1_HINT = "re-push the image with a current client (docker push, or skopeo copy --format v2s2/oci)"


def is_index(media_type: str) -> bool:
    """True for OCI image index and Docker manifest list media types."""
    return media_type in INDEX_TYPES


def _sniff(doc: dict) -> str:
    """Media type of a manifest that did not say (Content-Type missing or generic)."""
    if isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
        return doc["mediaType"]
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    return ""


def parse_manifest(raw: bytes, media_type: str | None, what: str) -> tuple[dict, str]:
    """Parse and structurally check manifest/index bytes.

    Args:
        raw: the exact bytes served (bytes).
        media_type: the Content-Type / descriptor media type, or None/generic to sniff.
        what: reference text for messages.

    Returns:
        (document dict, effective media type str).

    Raises:
        ManifestError: oversized, not JSON, schema 1, unknown media type, or missing fields.
    """
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest for {what} is {len(raw)} bytes, over the {MAX_MANIFEST_BYTES} byte limit")
    mt = (media_type or "").split(";")[0].strip()
    if mt in SCHEMA1_TYPES:
        raise ManifestError(f"manifest for {what} is docker schema 1, which envctl does not support",
                            hint=_SCHEMA1_HINT)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"manifest for {what} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"manifest for {what} is not a JSON object")
    if doc.get("schemaVersion") == 1:
        raise ManifestError(f"manifest for {what} is docker schema 1, which envctl does not support",
                            hint=_SCHEMA1_HINT)
    if mt in ("", "application/json", "text/plain", "application/octet-stream"):
        mt = _sniff(doc)
    if mt not in INDEX_TYPES + MANIFEST_TYPES:
        raise ManifestError(f"manifest for {what} has unsupported media type {mt or 'unknown'!r}",
                            hint="envctl reads OCI and Docker schema 2 images and indexes")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"manifest for {what} has schemaVersion {doc.get('schemaVersion')!r}, expected 2")
    if mt in INDEX_TYPES:
        if not isinstance(doc.get("manifests"), list):
            raise ManifestError(f"image index for {what} has no 'manifests' list")
        for i, d in enumerate(doc["manifests"]):
            check_descriptor(d, f"image index for {what}: manifests[{i}]")
    else:
        check_descriptor(doc.get("config"), f"manifest for {what}: config")
        if not isinstance(doc.get("layers"), list):
            raise ManifestError(f"manifest for {what} has no 'layers' list")
        for i, d in enumerate(doc["layers"]):
            check_descriptor(d, f"manifest for {what}: layers[{i}]")
    return doc, mt


def check_descriptor(d, where: str) -> None:
    """Raise ManifestError unless ``d`` is a descriptor with mediaType, a valid digest and size >= 0."""
    from specs.errors import InvalidDigest

    if not isinstance(d, dict):
        raise ManifestError(f"{where}: expected a descriptor object")
    if not isinstance(d.get("mediaType"), str) or not d["mediaType"]:
        raise ManifestError(f"{where}: descriptor has no mediaType")
    size = d.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}: descriptor size {size!r} is not a non-negative integer")
    try:
        Digest.parse(d.get("digest"))
    except InvalidDigest as e:
        raise ManifestError(f"{where}: {e.message}") from None


def verify_bytes(data: bytes, expected: Digest, what: str, size: int | None = None) -> None:
    """Raise SizeMismatch/DigestMismatch unless ``data`` has ``size`` bytes and hashes to ``expected``."""
    if size is not None and len(data) != size:
        raise SizeMismatch(f"{what}: expected {size} bytes, got {len(data)}")
    h = expected.hasher()
    h.update(data)
    if h.hexdigest() != expected.hex:
        raise DigestMismatch(f"{what}: digest mismatch: expected {expected}, got {expected.algorithm}:{h.hexdigest()}")


def read_small_blob(source, digest: Digest, size: int, what: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """Read a small blob (a config) fully from ``source`` and verify size and digest.

    Raises:
        ManifestError: descriptor size over ``limit`` bytes.
        SizeMismatch, DigestMismatch: the bytes are not the described ones.
    """
    if size > limit:
        raise ManifestError(f"{what} is {size} bytes, over the {limit} byte limit")
    data = b""
    for attempt in range(1, _RESUMES + 2):
        stream = source.open_blob(digest, size, offset=len(data))
        try:
            while len(data) <= size:
                more = stream.read(size + 1 - len(data))
                if not more:
                    break
                data += more
            break
        except EngineError as e:  # an interrupted download resumes where it stopped (HTTP Range)
            if not getattr(e, "temporary", False) or attempt > _RESUMES:
                raise
        finally:
            stream.close()
    verify_bytes(data, digest, what, size)
    return data
