"""Tarball image sources: ``docker-archive:PATH[:NAME:TAG]`` (``docker save``) and ``oci-archive:PATH[:TAG]``.

A docker archive has no registry manifest: like containers/image's ``docker/internal/tarfile``,
a Docker schema 2 manifest is synthesised from ``manifest.json`` (compact JSON, fields in
schemaVersion/mediaType/config/layers order), with each layer's digest taken from the bytes of its
file in the archive. Docker "Image Manifest V 2, Schema 2"; moby image/tarexport.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from engine.errors import BlobNotFound, EngineError, ManifestError
from engine.sources.manifest import DOCKER_CONFIG, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, verify_bytes
from specs.digest import Digest

__all__ = ["DockerArchiveSource", "OciArchiveSource"]

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"  # what c/image labels every layer


class _Tar:
    def __init__(self, path: Path, kind: str):
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:")
        except FileNotFoundError:
            raise EngineError(f"{kind} {path} does not exist") from None
        except (OSError, tarfile.TarError) as e:
            raise EngineError(f"cannot read {kind} {path}: {e}",
                              hint="docker-archive/oci-archive need an uncompressed tar") from None
        self.members = {m.name.lstrip("./"): m for m in self.tar.getmembers() if m.isfile()}

    def open(self, name: str):
        m = self.members.get(name.lstrip("./"))
        if m is None:
            raise BlobNotFound(f"{name} missing from {self.path}")
        return self.tar.extractfile(m)

    def read(self, name: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        m = self.members.get(name.lstrip("./"))
        if m is not None and m.size > limit:
            raise ManifestError(f"{name} in {self.path} is over the {limit} byte limit")
        with self.open(name) as f:
            return f.read()


class DockerArchiveSource:
    """ImageSource over a ``docker save`` tarball (ImageRef transport ``docker-archive``)."""

    def __init__(self, ref):
        self.ref = ref
        self._tar = _Tar(Path(ref.path), "docker archive")
        try:
            entries = json.loads(self._tar.read("manifest.json"))
        except (ValueError, BlobNotFound):
            raise ManifestError(f"{ref.path} is not a docker archive (no valid manifest.json)") from None
        if not isinstance(entries, list) or not entries:
            raise ManifestError(f"{ref.path}: manifest.json lists no images")
        self._entry = self._choose(entries)
        self._blobs: dict[str, str] = {}   # digest -> member name
        self._manifest: bytes | None = None

    def _choose(self, entries: list) -> dict:
        wanted = getattr(self.ref, "tag", None)   # "NAME:TAG" as written after the path
        if wanted:
            short = wanted.removeprefix("docker.io/").removeprefix("library/")
            for e in entries:
                for t in e.get("RepoTags") or []:
                    if t.removeprefix("docker.io/").removeprefix("library/") == short:
                        return e
            raise ManifestError(f"docker archive {self.ref.path} has no image tagged {wanted}")
        if len(entries) > 1:
            raise ManifestError(f"{self.ref.path} holds {len(entries)} images; name one with docker-archive:PATH:NAME:TAG")
        return entries[0]

    def _describe(self, name: str) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        with self._tar.open(name) as f:
            while block := f.read(1 << 20):
                h.update(block)
                size += len(block)
        digest = f"sha256:{h.hexdigest()}"
        self._blobs[digest] = name
        return digest, size

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        """The synthesised schema 2 manifest (``digest`` must be its digest when given)."""
        if self._manifest is None:
            try:
                config_name, layer_names = self._entry["Config"], list(self._entry["Layers"])
            except (KeyError, TypeError):
                raise ManifestError(f"{self.ref.path}: manifest.json entry lacks Config/Layers") from None
            cdigest, csize = self._describe(config_name)
            layers = []
            for name in layer_names:
                ldigest, lsize = self._describe(name)
                layers.append({"mediaType": DOCKER_LAYER, "size": lsize, "digest": ldigest})
            doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                   "config": {"mediaType": DOCKER_CONFIG, "size": csize, "digest": cdigest}, "layers": layers}
            self._manifest = json.dumps(doc, separators=(",", ":")).encode()
        if digest is not None:
            verify_bytes(self._manifest, digest, f"manifest of {self.ref.path}")
        return self._manifest, DOCKER_MANIFEST

    def open_blob(self, digest: Digest, size: int | None = None, offset: int = 0):
        """See ImageSource.open_blob (config or layer file of the archive)."""
        if self._manifest is None:
            self.get_manifest()
        name = self._blobs.get(str(digest))
        if name is None:
            raise BlobNotFound(f"blob {digest} is not in docker archive {self.ref.path}")
        f = self._tar.open(name)
        if offset:
            f.seek(offset)
        return f

    def close(self) -> None:
        """Close the archive file (ImageSource protocol). Returns None; raises nothing of ours."""
        self._tar.tar.close()


class OciArchiveSource:
    """ImageSource over a tarred OCI layout (ImageRef transport ``oci-archive``)."""

    def __init__(self, ref):
        self.ref = ref
        self._tar = _Tar(Path(ref.path), "oci archive")
        try:
            self._index = json.loads(self._tar.read("index.json"))
            self._tar.read("oci-layout")
        except (ValueError, BlobNotFound):
            raise ManifestError(f"{ref.path} is not an OCI archive (no index.json/oci-layout)") from None

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        """See ImageSource.get_manifest; verified against the digest."""
        media_type = ""
        if digest is None:
            from engine.sources.layout import REF_NAME

            entries = self._index.get("manifests") or []
            tag = getattr(self.ref, "tag", None)
            hits = [d for d in entries if not tag or (d.get("annotations") or {}).get(REF_NAME) == tag]
            if self.ref.digest is not None:
                hits = [{"digest": str(self.ref.digest)}]
            if len(hits) != 1:
                raise ManifestError(f"{'tag ' + repr(tag) + ' not found in' if tag and not hits else 'name one image of'} "
                                    f"OCI archive {self.ref.path}")
            digest = Digest.parse(hits[0]["digest"])
            media_type = hits[0].get("mediaType", "")
        raw = self._tar.read(f"blobs/{digest.algorithm}/{digest.hex}")
        verify_bytes(raw, digest, f"manifest {digest.short()} in {self.ref.path}")
        if not media_type:
            try:
                media_type = json.loads(raw).get("mediaType") or ""
            except (ValueError, AttributeError):
                pass
        return raw, media_type

    def open_blob(self, digest: Digest, size: int | None = None, offset: int = 0):
        """See ImageSource.open_blob."""
        f = self._tar.open(f"blobs/{digest.algorithm}/{digest.hex}")
        if offset:
            f.seek(offset)
        return f

    def close(self) -> None:
        """Close the archive file (ImageSource protocol). Returns None; raises nothing of ours."""
        self._tar.tar.close()
