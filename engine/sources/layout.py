"""OCI image layout source (``oci:PATH[:TAG]``): ``oci-layout``, ``index.json``, ``blobs/ALG/HEX``.

The tag is matched against ``org.opencontainers.image.ref.name`` annotations in ``index.json``
(skopeo/umoci naming); without a tag the layout must hold exactly one manifest. When the matched
entry is the layout's only entry and it is itself an image index, that index is the image.
OCI image spec image-layout.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import BlobNotFound, EngineError, ManifestError
from engine.sources.manifest import MAX_MANIFEST_BYTES, verify_bytes
from specs.digest import Digest

__all__ = ["OciLayoutSource"]

REF_NAME = "org.opencontainers.image.ref.name"


class OciLayoutSource:
    """ImageSource over an OCI image layout directory.

    Args:
        ref: ImageRef with transport ``oci`` (``path``, optional ``tag``, optional ``digest``).

    Raises:
        EngineError: the directory is not an OCI layout (names the path and what is missing).
    """

    def __init__(self, ref):
        self.ref = ref
        self.root = Path(ref.path)
        layout = self.root / "oci-layout"
        try:
            marker = json.loads(layout.read_bytes())
        except FileNotFoundError:
            raise EngineError(f"{self.root} is not an OCI image layout (no oci-layout file)",
                              hint="create it with 'skopeo copy ... oci:DIR:TAG' or 'umoci init'") from None
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot read {layout}: {e}") from None
        if not isinstance(marker, dict) or marker.get("imageLayoutVersion") != "1.0.0":
            raise EngineError(f"{layout}: unsupported imageLayoutVersion")
        try:
            self._index = json.loads((self.root / "index.json").read_bytes())
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot read {self.root / 'index.json'}: {e}") from None

    def _top(self) -> dict:
        entries = self._index.get("manifests") if isinstance(self._index, dict) else None
        if not isinstance(entries, list):
            raise ManifestError(f"{self.root}/index.json has no 'manifests' list")
        tag = getattr(self.ref, "tag", None)
        if self.ref.digest is not None:
            return {"digest": str(self.ref.digest), "mediaType": ""}
        if tag:
            hits = [d for d in entries if isinstance(d, dict) and (d.get("annotations") or {}).get(REF_NAME) == tag]
            if not hits:
                names = sorted({(d.get("annotations") or {}).get(REF_NAME, "") for d in entries if isinstance(d, dict)} - {""})
                raise ManifestError(f"tag {tag!r} not found in OCI layout {self.root} (it has: {', '.join(names) or 'no tags'})")
            return hits[0]
        if len(entries) != 1:
            raise ManifestError(f"OCI layout {self.root} holds {len(entries)} images; name one with oci:PATH:TAG")
        return entries[0]

    def _blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        """See ImageSource.get_manifest; bytes are verified against their digest."""
        if digest is None:
            top = self._top()
            digest = Digest.parse(top["digest"])
            media_type = top.get("mediaType") or ""
        else:
            media_type = ""
        path = self._blob_path(digest)
        try:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ManifestError(f"manifest {digest} in {self.root} is over the {MAX_MANIFEST_BYTES} byte limit")
            raw = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"manifest {digest} missing from OCI layout {self.root}") from None
        verify_bytes(raw, digest, f"manifest {digest.short()} in {self.root}")
        if not media_type:
            try:
                media_type = json.loads(raw).get("mediaType") or ""
            except (ValueError, AttributeError):
                media_type = ""
        return raw, media_type

    def open_blob(self, digest: Digest, size: int | None = None, offset: int = 0):
        """See ImageSource.open_blob."""
        try:
            f = open(self._blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} missing from OCI layout {self.root}") from None
        if offset:
            f.seek(offset)
        return f

    def close(self) -> None:
        """Nothing to release (blobs are opened per call); present for the ImageSource protocol."""
        pass
