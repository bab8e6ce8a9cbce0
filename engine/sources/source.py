"""Image sources: one protocol, chosen by the reference's transport as skopeo names them.

``docker://`` (the default) is a registry (engine/sources/registry.py), ``oci:PATH[:TAG]`` an OCI image
layout directory (engine/sources/layout.py), ``docker-archive:PATH[:NAME:TAG]`` a ``docker save`` tarball
and ``oci-archive:PATH[:TAG]`` a tarred layout (engine/sources/archive.py). A source serves only bytes;
engine/sources/manifest.py and engine/sources/resolve.py derive everything else, once, for all sources.
Heavy modules (httpx) are imported only when a registry source is opened.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Protocol, runtime_checkable

from specs.digest import Digest
from specs.errors import InvalidReference

__all__ = ["ImageSource", "open_source", "Progress"]

Progress = Callable[[str], None]


@runtime_checkable
class ImageSource(Protocol):
    """What every image source provides (the ggcr ``partial`` minimal core).

    Attributes:
        ref: the ImageRef this source was opened for.
    """

    ref: object

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        """Raw manifest/index bytes and media type.

        Args:
            digest: a manifest digest, or None for the reference's own tag or digest.

        Returns:
            (bytes exactly as stored/served, media type str).

        Raises:
            RegistryError, ManifestError, DigestMismatch, BlobNotFound. Bytes fetched by digest
            (given, or the reference's) are verified before they are returned.
        """

    def open_blob(self, digest: Digest, size: int | None = None, offset: int = 0) -> BinaryIO:
        """A stream of the raw (compressed) blob from byte ``offset``; the caller verifies it."""

    def close(self) -> None:
        """Release connections and open files."""


def open_source(ref, *, progress: Progress | None = None, config=None) -> ImageSource:
    """Open the source for ``ref`` (specs.reference.ImageRef) by its transport.

    Args:
        ref: parsed reference.
        progress: callable receiving one-line progress messages (network waits, retries).
        config: engine.sources.registry_config.RegistryConfig for registries (default: from the environment).

    Raises:
        InvalidReference: unknown transport.
        EngineError: the source cannot be opened (missing directory or archive, ...).
    """
    transport = ref.transport
    if transport == "docker":
        from engine.sources.registry import RegistrySource

        return RegistrySource(ref, progress=progress, config=config)
    if transport == "oci":
        from engine.sources.layout import OciLayoutSource

        return OciLayoutSource(ref)
    if transport == "docker-archive":
        from engine.sources.archive import DockerArchiveSource

        return DockerArchiveSource(ref)
    if transport == "oci-archive":
        from engine.sources.archive import OciArchiveSource

        return OciArchiveSource(ref)
    raise InvalidReference(f"unsupported transport {transport!r} in {ref}",
                           hint="use docker://, oci:, oci-archive: or docker-archive:")
