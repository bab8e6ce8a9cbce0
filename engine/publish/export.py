"""The environment as a standard OCI image: base layers + step layers, a config saying how to enter.

Issue 6 "envctl push / export". The image is assembled from what the store already holds (the
base image's config and layer blobs, the step layer blobs); nothing is recompressed, so the
same build gives the same manifest digest everywhere. Config changes (OCI image-spec config.md):

- ``Env``: the base image's, then the spec's ``env``, then ``env`` steps;
- ``WorkingDir``: the spec's ``workdir``; ``User``: the spec's ``user`` or the last ``user`` step;
- ``Cmd``: the shell (``[shell]``), ``Entrypoint`` cleared so ``podman run IMAGE`` opens it;
- labels ``dev.envctl.spec.digest`` and ``org.opencontainers.image.base.{name,digest}``;
- ``rootfs.diff_ids`` and ``history`` extended with one entry per step layer.

Docker media types of base layers are rewritten to their OCI equivalents (same bytes).
Writers: :func:`write_oci_layout` (``oci:DIR[:TAG]``) and :func:`write_docker_archive`
(``docker-archive:FILE[:NAME:TAG]``, uncompressed layers as ``docker load`` expects).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.errors import BlobNotFound, EngineError
from engine.sources.manifest import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from engine.store.cas import Store
from specs.digest import Digest

__all__ = ["Blob", "ImageParts", "assemble_image", "write_oci_layout", "write_docker_archive",
           "MEDIA_OCI_MANIFEST", "MEDIA_OCI_CONFIG", "LABEL_SPEC_DIGEST"]

MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_CONFIG = OCI_MANIFEST, OCI_INDEX, OCI_CONFIG
LABEL_SPEC_DIGEST = "dev.envctl.spec.digest"
_OCI_LAYER = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def _json_bytes(doc: dict) -> bytes:
    """Stable compact JSON (sorted keys): the same document always has the same digest."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Blob:
    """A layer of the image: its descriptor and diffID (str ``sha256:...``)."""

    digest: str
    size: int
    media_type: str
    diff_id: str

    def descriptor(self) -> dict:
        """The layer's OCI descriptor (OCI image spec, descriptor.md) as a dict: mediaType, digest,
        size (int bytes).
        """
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class ImageParts:
    """An assembled image: config and manifest bytes and the layers they name."""

    config: bytes
    manifest: bytes
    layers: tuple[Blob, ...]
    platform: str

    @property
    def config_digest(self) -> Digest:
        """Digest of the config bytes (the manifest's ``config.digest``)."""
        return Digest.from_bytes(self.config)

    @property
    def manifest_digest(self) -> Digest:
        """Digest of the manifest bytes (the image's identity, what a registry names it by)."""
        return Digest.from_bytes(self.manifest)


def _image_config(base: dict, *, env: list[tuple[str, str]], workdir: str, user: str | None, shell: str,
                  labels: dict[str, str]) -> dict:
    cfg = dict(base.get("config") or {})
    cfg["Env"] = [f"{k}={v}" for k, v in env]
    cfg["WorkingDir"] = workdir
    if user:
        cfg["User"] = user
    else:
        cfg.pop("User", None)
    cfg["Cmd"] = [shell]
    cfg.pop("Entrypoint", None)
    cfg["Labels"] = {**(cfg.get("Labels") or {}), **labels}
    return cfg


def assemble_image(base_config: bytes, base_layers: list[Blob], step_layers: list[Blob], *,
                   step_history: list[str], env: list[tuple[str, str]], workdir: str, user: str | None,
                   shell: str, spec_digest: str, base_name: str, base_digest: str,
                   platform: str, created: str | None = None) -> ImageParts:
    """Build the image config and OCI manifest for an environment.

    Args:
        base_config: the base image config blob (bytes, already verified).
        base_layers, step_layers: layers bottom first (Blob).
        step_history: ``created_by`` text per step layer.
        env: final environment, in order (list of (name, value)).
        workdir, user, shell: the environment's working directory, user (None = root), shell path.
        spec_digest: ``EnvSpec.digest()``; base_name/base_digest: the locked base reference.
        platform: ``os/arch[/variant]`` (str).
        created: RFC 3339 time for the config and history (None: omitted; deterministic).

    Returns:
        ImageParts.

    Raises:
        EngineError: the base config is not JSON.
    """
    try:
        base = json.loads(base_config)
    except ValueError as e:
        raise EngineError(f"export: base image config is not JSON: {e}") from None
    labels = {LABEL_SPEC_DIGEST: spec_digest, "org.opencontainers.image.base.name": base_name,
              "org.opencontainers.image.base.digest": base_digest}
    doc = {k: v for k, v in base.items() if k not in ("config", "rootfs", "history", "created", "container_config",
                                                       "container", "docker_version", "parent", "id")}
    os_, arch, *variant = platform.split("/")
    doc.update({"os": os_, "architecture": arch, "config": _image_config(
        base, env=env, workdir=workdir, user=user, shell=shell, labels=labels)})
    if variant:
        doc["variant"] = variant[0]
    layers = [Blob(b.digest, b.size, _OCI_LAYER.get(b.media_type, b.media_type), b.diff_id) for b in base_layers]
    layers += list(step_layers)
    doc["rootfs"] = {"type": "layers", "diff_ids": [b.diff_id for b in layers]}
    history = list(base.get("history") or [])
    for text in step_history:
        entry = {"created_by": text, "comment": "envctl build step"}
        if created:
            entry["created"] = created
        history.append(entry)
    doc["history"] = history
    if created:
        doc["created"] = created
    config = _json_bytes(doc)
    manifest = _json_bytes({
        "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": str(Digest.from_bytes(config)), "size": len(config)},
        "layers": [b.descriptor() for b in layers],
        "annotations": {"org.opencontainers.image.base.name": base_name,
                        "org.opencontainers.image.base.digest": base_digest},
    })
    return ImageParts(config, manifest, tuple(layers), platform)


def _open_layer(store: Store, blob: Blob) -> BinaryIO:
    digest = Digest.parse(blob.digest)
    if not store.has_blob(digest):
        raise BlobNotFound(f"export: layer {blob.digest} is not in the store {store.root}",
                           hint="run 'envctl up' first (it fetches every layer), or 'envctl verify'")
    return store.open_blob(digest, blob.size)


def _copy_into(src: BinaryIO, dst: Path) -> None:
    with src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def write_oci_layout(parts: ImageParts, store: Store, directory: str | os.PathLike, tag: str | None = None) -> Digest:
    """Write (or add to) an OCI image layout at ``directory``; returns the manifest digest.

    Blobs already present are kept; ``index.json`` gains the manifest (replacing one with the
    same ``org.opencontainers.image.ref.name`` tag). Blob files are written to temp names and
    renamed, and ``index.json`` last, so an interrupted export leaves a valid older layout.
    """
    root = Path(directory)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data_or_blob, digest: Digest) -> None:
        final = blobs / digest.hex
        if final.exists():
            return
        tmp = blobs / f".{digest.hex}.tmp"
        if isinstance(data_or_blob, bytes):
            tmp.write_bytes(data_or_blob)
        else:
            _copy_into(_open_layer(store, data_or_blob), tmp)
        os.replace(tmp, final)

    for blob in parts.layers:
        put(blob, Digest.parse(blob.digest))
    put(parts.config, parts.config_digest)
    put(parts.manifest, parts.manifest_digest)
    index_path = root / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["mediaType"] = MEDIA_OCI_INDEX
    os_, arch, *variant = parts.platform.split("/")
    desc = {"mediaType": MEDIA_OCI_MANIFEST, "digest": str(parts.manifest_digest), "size": len(parts.manifest),
            "platform": {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant else {})}}
    if tag:
        desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index["manifests"] = [m for m in index.get("manifests", [])
                          if not tag or (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append(desc)
    tmp = root / ".index.json.tmp"
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, index_path)
    return parts.manifest_digest


def write_docker_archive(parts: ImageParts, store: Store, path: str | os.PathLike, repo_tag: str | None = None) -> Digest:
    """Write a ``docker load``-able tar at ``path``; returns the config digest (the image ID).

    Layers are stored uncompressed as ``<diffID hex>/layer.tar`` (decompressed through a temp
    file next to ``path``: a tar header needs the size first; memory stays bounded).
    """
    from engine.layers.compression import open_decompressed

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=".envctl-export-", dir=path.parent))
    out_tmp = tmpdir / "archive.tar"
    try:
        with tarfile.open(out_tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            names = []
            for blob in parts.layers:
                hexid = Digest.parse(blob.diff_id).hex
                raw = tmpdir / "layer.tar"
                reader, _ = open_decompressed(_open_layer(store, blob))
                _copy_into(reader, raw)
                _add_file(tar, f"{hexid}/layer.tar", raw)
                raw.unlink()
                names.append(f"{hexid}/layer.tar")
            cfg_name = f"{parts.config_digest.hex}.json"
            _add_bytes(tar, cfg_name, parts.config)
            manifest = [{"Config": cfg_name, "RepoTags": [repo_tag] if repo_tag else [], "Layers": names}]
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        os.replace(out_tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return parts.config_digest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), 0o644
    tar.addfile(ti, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = path.stat().st_size, 0o644
    with open(path, "rb") as f:
        tar.addfile(ti, f)
