"""Engine errors (registry, store, unpacking, build). See the tree in specs/errors.py.

::

    EnvctlError
    └── EngineError                  exit 1
        ├── RegistryError            an HTTP/registry failure (status, code, temporary)
        ├── ManifestError            a manifest/index/config that is malformed or unsupported
        ├── PlatformNotFound         the image has no manifest for the wanted platform
        ├── DigestMismatch           bytes do not hash to the expected digest
        ├── SizeMismatch             bytes are longer/shorter than the descriptor says
        ├── BlobNotFound             a blob the store or a source does not have
        ├── UnsafeLayer              a layer tries to leave its directory or is otherwise refused
        ├── StoreError               the store is corrupt, locked or unusable
        └── BuildError               a build step failed
"""

from __future__ import annotations

from specs.errors import EnvctlError

__all__ = [
    "EngineError",
    "RegistryError",
    "ManifestError",
    "PlatformNotFound",
    "DigestMismatch",
    "SizeMismatch",
    "BlobNotFound",
    "UnsafeLayer",
    "StoreError",
    "BuildError",
]


class EngineError(EnvctlError):
    """Base of engine failures (exit 1)."""


class RegistryError(EngineError):
    """A registry answered with an error or could not be reached.

    Attributes:
        status: HTTP status (int) or None for connection errors.
        code: distribution-spec error code (e.g. ``MANIFEST_UNKNOWN``) or None.
        temporary: True when retrying may help (429, 5xx, connection errors).
    """

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 code: str | None = None, temporary: bool = False):
        super().__init__(message, hint)
        self.status = status
        self.code = code
        self.temporary = temporary


class ManifestError(EngineError):
    """A manifest, index or config that is malformed, oversized or of an unsupported media type."""


class PlatformNotFound(EngineError):
    """The image index lists no manifest for the requested platform."""


class DigestMismatch(EngineError):
    """Content does not hash to its expected digest; the message names both digests."""


class SizeMismatch(EngineError):
    """Content is not the size its descriptor promised (bytes)."""


class BlobNotFound(EngineError):
    """A blob is missing from the store or the source."""


class UnsafeLayer(EngineError):
    """A layer entry would write outside the layer directory, or is refused by policy."""


class StoreError(EngineError):
    """The store is unusable: corrupt metadata, wrong permissions, a held lock."""


class BuildError(EngineError):
    """A build step failed (exit status and the tail of its output in the message)."""
