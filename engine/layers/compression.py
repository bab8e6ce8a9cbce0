"""Layer compression: detect gzip / zstd / plain tar by magic bytes and open a decompressing stream.

The media type says what a layer should be, but the bytes decide (containerd and umoci also sniff):
registries serve ``tar.gzip`` layers labelled ``tar`` and Docker's own type names differ from OCI's.
``zstandard`` is imported only when a zstd layer is met (start-up time, CONTRACTS.md).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from engine.errors import UnsafeLayer

__all__ = ["detect", "open_decompressed", "LAYER_MEDIA_TYPES", "FOREIGN_MEDIA_TYPES", "check_media_type"]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# OCI image-spec media-types.md and the Docker v2 schema 2 names.
LAYER_MEDIA_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
}
# "Non-distributable" (deprecated in image-spec 1.1) and Docker's foreign layers: the blob lives at
# an URL outside the registry, under licence terms; we refuse rather than fetch from elsewhere.
FOREIGN_MEDIA_TYPES = {
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}


def check_media_type(media_type: str | None, digest: str, allow_foreign: bool = False) -> None:
    """Refuse foreign/non-distributable and unknown layer media types.

    Raises:
        UnsafeLayer: naming the layer digest and its media type.
    """
    if not media_type or media_type in LAYER_MEDIA_TYPES:
        return
    if media_type in FOREIGN_MEDIA_TYPES:
        if allow_foreign:
            return
        raise UnsafeLayer(f"refuse foreign layer {digest} ({media_type})",
                          hint="foreign/non-distributable layers are fetched from outside the registry; "
                               "mirror the image without them")
    raise UnsafeLayer(f"unsupported layer media type {media_type} for {digest}")


def detect(head: bytes) -> str:
    """``"gzip"``, ``"zstd"`` or ``"plain"`` for the first bytes of a layer blob."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "plain"


def open_decompressed(stream: BinaryIO) -> tuple[BinaryIO, str]:
    """Wrap ``stream`` (compressed layer bytes) in a reader of the uncompressed tar.

    Returns:
        (reader, kind) where kind is ``"gzip"``, ``"zstd"`` or ``"plain"``. Reading the returned
        reader to EOF reads ``stream`` to EOF (gzip trailers included), so a verifying stream under
        it sees every byte.
    """
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream, 1 << 20)
    kind = detect(buffered.peek(4)[:4])
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=buffered, mode="rb"), kind
    if kind == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_size=1 << 20,
                                                            read_across_frames=True)
        return reader, kind
    return buffered, kind
