"""Verify bytes at the boundary: hash while reading, decide at EOF (STYLE.md rule 2).

Modelled on ggcr ``internal/verify`` and umoci ``pkg/hardening/verified_reader.go``: nothing read
through a :class:`VerifyingReader` may be trusted until it has returned EOF without raising, and
callers that stop early (``tarfile`` stops at the end-of-archive blocks) must :meth:`drain` so the
trailing bytes are hashed too.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from engine.errors import DigestMismatch, SizeMismatch
from specs.digest import Digest

__all__ = ["VerifyingReader", "drain"]

CHUNK = 1 << 20


class VerifyingReader(io.RawIOBase):
    """A raw stream that hashes what it reads and checks digest and size at EOF.

    Args:
        raw: the untrusted stream (anything with ``readinto`` or ``read``).
        digest: the expected :class:`Digest`.
        size: expected length in bytes, or None when unknown (the digest still binds it).
        what: the object named in errors, e.g. ``"blob sha256:ab.. of docker.io/library/debian"``.
        hasher: a hashlib object already fed with a prefix (resumed downloads), default fresh.
        seen: bytes already fed to ``hasher`` (int).

    Raises (from reads): :class:`SizeMismatch` as soon as more than ``size`` bytes arrive or at EOF
    when fewer did; :class:`DigestMismatch` at EOF.
    """

    def __init__(self, raw: BinaryIO, digest: Digest, size: int | None = None, *, what: str = "",
                 hasher=None, seen: int = 0):
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._size = size
        self._what = what or f"blob {digest}"
        self._hash = hasher if hasher is not None else digest.hasher()
        self._seen = seen
        self.verified = False

    @property
    def seen(self) -> int:
        """Bytes read so far (int)."""
        return self._seen

    def readable(self) -> bool:
        """Always True (io.RawIOBase protocol)."""
        return True

    def readinto(self, b) -> int:
        """Read into ``b`` (writable buffer), hashing as it goes; returns the byte count (int, 0 at EOF).

        Raises SizeMismatch when more (or, at EOF, fewer) bytes than the expected size arrive and
        DigestMismatch at EOF when the hash differs (STYLE example 2: verify at EOF).
        """
        if self.verified:
            return 0
        n = self._read_raw(b)
        if n:
            self._seen += n
            if self._size is not None and self._seen > self._size:
                raise SizeMismatch(f"verify {self._what}: more than the expected {self._size} bytes")
            self._hash.update(memoryview(b)[:n])
            return n
        self._check_eof()
        return 0

    def _read_raw(self, b) -> int:
        if hasattr(self._raw, "readinto"):
            return self._raw.readinto(b) or 0
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _check_eof(self) -> None:
        if self._size is not None and self._seen != self._size:
            raise SizeMismatch(f"verify {self._what}: got {self._seen} bytes, expected {self._size}")
        got = self._hash.hexdigest()
        if got != self._digest.hex:
            raise DigestMismatch(f"verify {self._what}: content has digest {self._digest.algorithm}:{got}, "
                                 f"expected {self._digest}")
        self.verified = True

    def drain(self) -> int:
        """Read (and hash) the rest of the stream to EOF; returns the bytes drained (int)."""
        return drain(self)

    def close(self) -> None:
        """Close the underlying stream, then this reader. Returns None; verifies nothing (see drain)."""
        try:
            close = getattr(self._raw, "close", None)
            if close:
                close()
        finally:
            super().close()


def drain(stream: BinaryIO, chunk: int = CHUNK) -> int:
    """Read ``stream`` to EOF, discarding the bytes; returns how many were read (int)."""
    total = 0
    buf = bytearray(chunk)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
        else:
            data = stream.read(chunk)
            n = len(data)
        if not n:
            return total
        total += n
