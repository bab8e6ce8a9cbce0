"""Content digests: ``algorithm:encoded``.

OCI image spec, descriptor.md "Digests": ``sha256`` (64 lowercase hex) and
``sha512`` (128 lowercase hex) are the registered algorithms; anything else is
refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from specs.errors import InvalidDigest

__all__ = ["Digest", "ALGORITHMS", "sha256_bytes", "hash_stream"]

ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, order=True)
class Digest:
    """A validated content digest.

    Attributes:
        algorithm: ``"sha256"`` or ``"sha512"``.
        hex: the lowercase hex encoding (64 or 128 chars).
    """

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Parse ``sha256:<64 hex>``; raises :class:`InvalidDigest` naming the input."""
        if not isinstance(text, str) or ":" not in text:
            raise InvalidDigest(f"invalid digest {text!r}: expected algorithm:hex such as sha256:<64 hex digits>")
        algorithm, _, hexpart = text.partition(":")
        if algorithm not in ALGORITHMS:
            raise InvalidDigest(f"invalid digest {text!r}: unsupported algorithm {algorithm!r} (supported: sha256, sha512)")
        if len(hexpart) != ALGORITHMS[algorithm] or not _HEX.fullmatch(hexpart):
            raise InvalidDigest(
                f"invalid digest {text!r}: {algorithm} needs {ALGORITHMS[algorithm]} lowercase hex digits"
            )
        return cls(algorithm, hexpart)

    @classmethod
    def from_bytes(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        """Digest of ``data`` (bytes)."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self):
        """A fresh ``hashlib`` object for this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def short(self) -> str:
        """``sha256:0123456789ab`` — 12 hex digits, for messages."""
        return f"{self.algorithm}:{self.hex[:12]}"


def sha256_bytes(data: bytes) -> str:
    """``"sha256:<hex>"`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_stream(stream: BinaryIO, algorithm: str = "sha256", chunk: int = 1 << 20) -> tuple[Digest, int]:
    """Read ``stream`` to EOF in ``chunk``-byte pieces; return (digest, size in bytes)."""
    h = hashlib.new(algorithm)
    size = 0
    while True:
        block = stream.read(chunk)
        if not block:
            break
        h.update(block)
        size += len(block)
    return Digest(algorithm, h.hexdigest()), size
