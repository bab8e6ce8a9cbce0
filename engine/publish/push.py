"""Push an image to a registry by the OCI distribution spec (spec/push).

Per blob: ``HEAD`` first (already there: nothing sent); then a cross-repository mount
(``POST .../blobs/uploads/?mount=DIGEST&from=REPO``) when a repository on the same registry is
known to hold it (the base image's, the cache repository); else an upload session: one
monolithic ``PUT ?digest=`` for blobs up to ``chunk_size``, or ``PATCH`` chunks with
``Content-Range`` then a closing ``PUT``. Config before manifest, manifest last (a registry
refuses a manifest naming unknown blobs). Bodies are streamed from the store: a layer is never
held in memory, a chunk at most.

The HTTP plumbing (scheme choice, auth challenges and token cache, retries, error messages) is
engine/sources/registry.py's and engine/sources/auth.py's; only the write requests are added here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

import httpx

from engine.errors import DigestMismatch, RegistryError
from engine.sources.registry import RetryPolicy, _error_for, _Host
from engine.sources.auth import RegistryAuth
from engine.sources.registry_config import RegistryConfig, api_host
from specs.digest import Digest

__all__ = ["Pusher", "PushStats", "DEFAULT_CHUNK", "env_chunk_size", "push_image"]

DEFAULT_CHUNK = 16 << 20
_READ = 1 << 20


@dataclass
class PushStats:
    """What a push did, in blob counts and bytes sent."""

    existing: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    chunks: int = 0

    def to_dict(self) -> dict:
        """JSON form (dict): counts of blobs existing/mounted/uploaded (int), bytesSent (int bytes),
        chunks (int).
        """
        return {"existing": len(self.existing), "mounted": len(self.mounted), "uploaded": len(self.uploaded),
                "bytesSent": self.bytes_sent, "chunks": self.chunks}


def _file_chunks(f: BinaryIO, counter: list[int]):
    while block := f.read(_READ):
        counter[0] += len(block)
        yield block


class Pusher:
    """Writes blobs and manifests to one repository.

    Args:
        registry: registry name (``127.0.0.1:5000``, ``docker.io``).
        repository: repository path (``team/env``).
        config: RegistryConfig (insecure hosts); default from the environment.
        transport: httpx transport (tests).
        chunk_size: blobs larger than this (bytes) go up in PATCH chunks of this size.
        progress: one-line progress callback.
    """

    def __init__(self, registry: str, repository: str, *, config: RegistryConfig | None = None,
                 transport=None, chunk_size: int = DEFAULT_CHUNK, progress: Callable[[str], None] | None = None):
        config = config or RegistryConfig.from_env()
        self.registry, self.repository = registry, repository
        host = api_host(registry)
        self.chunk_size = chunk_size
        self.stats = PushStats()
        self._host = _Host(host, config.is_insecure(registry), RegistryAuth(registry), RetryPolicy(),
                           progress or (lambda m: None), [0], transport)

    def close(self) -> None:
        """Close the registry connection. Returns None."""
        self._host.close()

    def __enter__(self) -> "Pusher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- plumbing
    def _fail(self, resp: httpx.Response, what: str) -> RegistryError:
        try:
            return _error_for(resp, self._host.host, self.repository, what, self._host.auth)
        finally:
            resp.close()

    def _url(self, location: str) -> httpx.URL:
        base = httpx.URL(f"{self._host.scheme or 'https'}://{self._host.host}/")
        return base.join(location)

    def _send(self, method: str, url: httpx.URL, *, headers: dict, content=None, what: str) -> httpx.Response:
        """One write request (auth applied); transport failures become RegistryError."""
        try:
            req = self._host.client.build_request(method, url, headers=headers, content=content)
            resp = self._host.client.send(req, auth=self._host.auth)
        except httpx.TransportError as e:
            raise RegistryError(f"push {what} to {self._host.host}/{self.repository}: {e}", temporary=True) from None
        resp.read()
        return resp

    # ---- blobs
    def blob_exists(self, digest: Digest) -> bool:
        """HEAD the blob; True when the repository already has it."""
        resp = self._host.fetch("HEAD", f"/v2/{self.repository}/blobs/{digest}", {}, f"blob {digest.short()}")
        if resp.status_code >= 400 and resp.status_code != 404:
            raise self._fail(resp, f"blob {digest.short()}")
        resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self._fail(resp, f"blob {digest.short()}")

    def _start(self, digest: Digest, mount_from: str | None) -> httpx.URL | None:
        """POST an upload session (with a mount attempt); None when the mount completed."""
        path = f"/v2/{self.repository}/blobs/uploads/"
        if mount_from:
            path += f"?mount={digest}&from={mount_from}"
        resp = self._host.fetch("POST", path, {"Content-Length": "0"}, f"upload of {digest.short()}")
        resp.read()
        if resp.status_code == 201 and mount_from:
            return None
        if resp.status_code != 202 or "Location" not in resp.headers:
            raise self._fail(resp, f"upload of {digest.short()}")
        return self._url(resp.headers["Location"])

    def push_blob(self, digest: Digest, size: int, opener: Callable[[], BinaryIO],
                  mount_from: tuple[str, ...] = ()) -> str:
        """Make the repository hold ``digest``; returns ``"existing"``, ``"mounted"`` or ``"uploaded"``.

        Args:
            digest, size: the blob (size in bytes).
            opener: returns a fresh readable stream of the blob's bytes (only called to upload).
            mount_from: repositories on the same registry that may hold the blob.

        Raises:
            RegistryError: the registry refused (message names the blob and repository).
        """
        if self.blob_exists(digest):
            self.stats.existing.append(str(digest))
            return "existing"
        location = None
        for repo in mount_from:
            if repo == self.repository:
                continue
            try:
                location = self._start(digest, repo)
            except RegistryError:
                location = None  # mount refused (scope, policy): fall back to an upload
                continue
            if location is None:
                self.stats.mounted.append(str(digest))
                return "mounted"
            break
        location = location or self._start(digest, None)
        with opener() as stream:
            if size > self.chunk_size:
                self._chunked(location, digest, size, stream)
            else:
                self._monolithic(location, digest, size, stream)
        self.stats.uploaded.append(str(digest))
        return "uploaded"

    def _monolithic(self, location: httpx.URL, digest: Digest, size: int, stream: BinaryIO) -> None:
        counter = [0]
        resp = self._send("PUT", location.copy_merge_params({"digest": str(digest)}),
                          headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                          content=_file_chunks(stream, counter), what=f"blob {digest.short()}")
        self.stats.bytes_sent += counter[0]
        if resp.status_code != 201:
            raise self._fail(resp, f"blob {digest.short()}")

    def _chunked(self, location: httpx.URL, digest: Digest, size: int, stream: BinaryIO) -> None:
        offset = 0
        while offset < size:
            chunk = stream.read(min(self.chunk_size, size - offset))
            if not chunk:
                raise RegistryError(f"push blob {digest.short()}: the store copy ended at byte {offset} of {size}")
            resp = self._send("PATCH", location, content=chunk, what=f"blob {digest.short()}", headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            if resp.status_code != 202:
                raise self._fail(resp, f"chunk {offset}-{offset + len(chunk) - 1} of blob {digest.short()}")
            location = self._url(resp.headers.get("Location") or str(location))
            offset += len(chunk)
            self.stats.bytes_sent += len(chunk)
            self.stats.chunks += 1
        resp = self._send("PUT", location.copy_merge_params({"digest": str(digest)}),
                          headers={"Content-Length": "0"}, content=b"", what=f"blob {digest.short()}")
        if resp.status_code != 201:
            raise self._fail(resp, f"closing upload of blob {digest.short()}")

    def push_bytes(self, data: bytes, mount_from: tuple[str, ...] = ()) -> Digest:
        """Push a small blob (a config) from memory; returns its digest."""
        import io

        digest = Digest.from_bytes(data)
        self.push_blob(digest, len(data), lambda: io.BytesIO(data), mount_from)
        return digest

    # ---- manifests
    def put_manifest(self, data: bytes, media_type: str, reference: str) -> Digest:
        """PUT a manifest under ``reference`` (tag or digest); returns its digest.

        Raises:
            RegistryError: refused (e.g. ``MANIFEST_BLOB_UNKNOWN``).
            DigestMismatch: the registry reports another digest than the bytes sent.
        """
        digest = Digest.from_bytes(data)
        url = self._url(f"/v2/{self.repository}/manifests/{reference}")
        resp = self._send("PUT", url, headers={"Content-Type": media_type}, content=data,
                          what=f"manifest {reference}")
        if resp.status_code not in (200, 201):
            raise self._fail(resp, f"manifest {reference}")
        header = resp.headers.get("Docker-Content-Digest")
        if header and header.strip() != str(digest):
            raise DigestMismatch(f"push manifest {reference} to {self.registry}/{self.repository}: registry "
                                 f"stored {header.strip()}, sent {digest}")
        return digest

    def ensure_scheme(self) -> None:
        """Probe ``/v2/`` once so write requests know http vs https (loopback/insecure hosts)."""
        resp = self._host.fetch("GET", "/v2/", {}, f"push to {self.repository}")
        resp.close()


def env_chunk_size() -> int:
    """``ENVCTL_PUSH_CHUNK`` (bytes) or :data:`DEFAULT_CHUNK`."""
    v = os.environ.get("ENVCTL_PUSH_CHUNK", "")
    return int(v) if v.isdigit() and int(v) > 0 else DEFAULT_CHUNK


__all__.append("env_chunk_size")


def push_image(parts, store, registry: str, repository: str, tag: str | None, *,
               mount_from: tuple[str, ...] = (), fallback=None, chunk_size: int | None = None,
               config: RegistryConfig | None = None, transport=None,
               progress: Callable[[str], None] | None = None) -> tuple[Digest, PushStats]:
    """Push an assembled image (engine.publish.export.ImageParts) to ``registry/repository[:tag]``.

    Args:
        parts: the image (config, manifest, layers).
        store: engine.store.cas.Store holding the layer blobs.
        tag: tag to set (None: push by digest only).
        mount_from: repositories on the same registry to mount blobs from (e.g. the base's).
        fallback: an ImageSource to read blobs the store lacks (the base image's source).
        chunk_size: upload in chunks above this size (default ``ENVCTL_PUSH_CHUNK`` or 16 MiB).

    Returns:
        (manifest digest, PushStats).

    Raises:
        RegistryError, DigestMismatch, BlobNotFound.
    """
    from engine.errors import BlobNotFound
    from engine.store.verifying import VerifyingReader

    def opener(blob):
        d = Digest.parse(blob.digest)
        if store.has_blob(d):
            return lambda: store.open_blob(d, blob.size)
        if fallback is None:
            raise BlobNotFound(f"push: layer {blob.digest} is neither in the store nor mountable",
                               hint="run 'envctl up' to fetch the base image first")
        return lambda: VerifyingReader(fallback.open_blob(d, blob.size), d, blob.size, what=f"layer {d.short()}")

    with Pusher(registry, repository, config=config, transport=transport,
                chunk_size=chunk_size or env_chunk_size(), progress=progress) as p:
        p.ensure_scheme()
        for blob in parts.layers:
            d = Digest.parse(blob.digest)
            how = p.push_blob(d, blob.size, _lazy(opener, blob), mount_from)
            (progress or (lambda m: None))(f"layer {d.short()}: {how}")
        p.push_bytes(parts.config, mount_from)
        digest = p.put_manifest(parts.manifest, "application/vnd.oci.image.manifest.v1+json", tag or str(Digest.from_bytes(parts.manifest)))
        return digest, p.stats


def _lazy(opener, blob):
    """Resolve where a blob comes from only when it must really be uploaded."""
    return lambda: opener(blob)()
