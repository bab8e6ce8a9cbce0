"""Pack a root filesystem tar stream into a one-layer OCI image layout, byte-reproducibly.

Layout written (OCI image-layout spec 1.0): ``oci-layout``, ``index.json`` (one entry, tagged via
``org.opencontainers.image.ref.name``) → an image index (one platform, as Docker Hub serves
``debian:bookworm``) → manifest → config + one gzip layer. Every JSON document is serialised
with sorted keys and no whitespace, the gzip header carries no name and mtime 0, so the same
input tar gives the same digests on every run.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# Directories whose contents never belong in an image: the runtime mounts /proc, /sys, /dev.
# Device nodes would also make the layer unpackable rootless (DESIGN.md, unpack rules).
_EMPTY_DIRS = ("./proc/", "./sys/", "./dev/")


@dataclass
class LayerStats:
    """Result of packing: diffID and digest ("sha256:..."), sizes in bytes, tar entry count."""

    diff_id: str
    digest: str
    size: int
    tar_size: int
    entries: int


class _HashingWriter:
    """File-like sink that hashes and counts what passes through before writing it."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def write(self, b) -> int:
        self.hash.update(b)
        self.size += len(b)
        return self.raw.write(b)

    def flush(self) -> None:
        self.raw.flush()


def pack_layer(stream: BinaryIO, blobs: Path) -> LayerStats:
    """Copy the tar ``stream`` into a gzip layer blob under ``blobs`` (the layout's blobs/sha256).

    Entries under /proc, /sys and /dev are dropped (the directories themselves kept); everything
    else — order, metadata, PAX headers (xattrs) — is kept as the builder wrote it.
    Returns LayerStats. Raises tarfile.TarError on a malformed stream.
    """
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / f".layer.{os.getpid()}.tmp"
    entries = 0
    with open(tmp, "wb") as raw:
        gz_sink = _HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=gz_sink, compresslevel=6, mtime=0) as gz:
            tar_sink = _HashingWriter(gz)
            with tarfile.open(fileobj=stream, mode="r|") as src, \
                    tarfile.open(fileobj=tar_sink, mode="w|", format=tarfile.PAX_FORMAT) as dst:
                for member in src:
                    if any(member.name.startswith(d) and member.name != d for d in _EMPTY_DIRS):
                        continue
                    dst.addfile(member, src.extractfile(member) if member.isfile() else None)
                    entries += 1
        raw.flush()
        os.fsync(raw.fileno())
    digest = gz_sink.hash.hexdigest()
    os.replace(tmp, blobs / digest)
    return LayerStats(f"sha256:{tar_sink.hash.hexdigest()}", f"sha256:{digest}",
                      gz_sink.size, tar_sink.size, entries)


def oci_arch() -> str:
    """The host's architecture in OCI/Go naming (amd64, arm64, ...)."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def write_image(layout: Path, layer: LayerStats, *, tag: str, created: int, created_by: str,
                arch: str) -> str:
    """Write config, manifest, index and index.json for ``layer`` into ``layout``.

    Args: created — unix seconds (SOURCE_DATE_EPOCH); created_by — history text; arch — OCI
    architecture. Returns the image index digest ("sha256:..."), the digest a registry serves
    for the tag.
    """
    blobs = layout / "blobs" / "sha256"
    stamp = datetime.datetime.fromtimestamp(created, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "architecture": arch, "os": "linux", "created": stamp,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["bash"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": stamp, "created_by": created_by}],
    }
    config_desc = _put_json(blobs, config, MT_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config_desc,
                "layers": [{"mediaType": MT_LAYER_GZIP, "digest": layer.digest, "size": layer.size}]}
    manifest_desc = _put_json(blobs, manifest, MT_MANIFEST)
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    index_desc = _put_json(blobs, {"schemaVersion": 2, "mediaType": MT_INDEX,
                                   "manifests": [manifest_desc]}, MT_INDEX)
    index_desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_bytes(_canonical({"schemaVersion": 2, "manifests": [index_desc]}))
    return index_desc["digest"]


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _put_json(blobs: Path, obj, media_type: str) -> dict:
    data = _canonical(obj)
    hexd = hashlib.sha256(data).hexdigest()
    (blobs / hexd).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{hexd}", "size": len(data)}
