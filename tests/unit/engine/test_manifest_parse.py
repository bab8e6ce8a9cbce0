"""Manifest/index structural checks shared by all sources (engine/sources/manifest.py)."""

from __future__ import annotations

import json

import pytest

from engine.errors import DigestMismatch, ManifestError, SizeMismatch
from engine.sources.manifest import (DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST,
                          parse_manifest, verify_bytes)
from specs.digest import Digest

D = "sha256:" + "b" * 64
DESC = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D, "size": 3}
MANIFEST = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
            "layers": [DESC]}
INDEX = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{**DESC, "mediaType": OCI_MANIFEST}]}


def raw(doc) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize("doc,ctype,want", [
    (MANIFEST, OCI_MANIFEST, OCI_MANIFEST),
    (MANIFEST, "application/json", OCI_MANIFEST),           # sniffed from the document
    ({**MANIFEST, "mediaType": DOCKER_MANIFEST}, None, DOCKER_MANIFEST),
    (INDEX, OCI_INDEX + "; charset=utf-8", OCI_INDEX),
    ({k: v for k, v in INDEX.items() if k != "mediaType"}, "", OCI_INDEX),
    ({**INDEX, "mediaType": DOCKER_LIST}, DOCKER_LIST, DOCKER_LIST),
])
def test_accepts(doc, ctype, want):
    parsed, mt = parse_manifest(raw(doc), ctype, "x")
    assert mt == want and parsed == doc


@pytest.mark.parametrize("data,ctype,needle", [
    (b'{"schemaVersion": 1, "fsLayers": []}', "application/vnd.docker.distribution.manifest.v1+prettyjws",
     "docker schema 1"),
    (b'{"schemaVersion": 1, "fsLayers": []}', "application/json", "docker schema 1"),
    (b"{", OCI_MANIFEST, "not valid JSON"),
    (b"\xff\xfe", OCI_MANIFEST, "not valid JSON"),
    (b"[]", OCI_MANIFEST, "not a JSON object"),
    (raw(MANIFEST), "application/vnd.example+json", "unsupported media type"),
    (raw({**MANIFEST, "schemaVersion": 3}), OCI_MANIFEST, "schemaVersion 3"),
    (raw({**MANIFEST, "layers": [{**DESC, "digest": "md5:abc"}]}), OCI_MANIFEST, "layers[0]: invalid digest"),
    (raw({**MANIFEST, "layers": [{**DESC, "size": -1}]}), OCI_MANIFEST, "layers[0]: descriptor size -1"),
    (raw({**MANIFEST, "config": None}), OCI_MANIFEST, "config: expected a descriptor"),
    (raw({**INDEX, "manifests": {}}), OCI_INDEX, "no 'manifests' list"),
    (b"{" + b" " * MAX_MANIFEST_BYTES + b"}", OCI_MANIFEST, "over the 4194304 byte limit"),
])
def test_refuses_with_one_line(data, ctype, needle):
    with pytest.raises(ManifestError) as e:
        parse_manifest(data, ctype, "reg/x:1")
    assert needle in e.value.message and "\n" not in e.value.message and "reg/x:1" in e.value.message


def test_verify_bytes():
    d = Digest.from_bytes(b"abc")
    verify_bytes(b"abc", d, "x", 3)
    with pytest.raises(SizeMismatch):
        verify_bytes(b"abcd", d, "x", 3)
    with pytest.raises(DigestMismatch, match=f"expected {d}, got sha256:"):
        verify_bytes(b"abd", d, "x", 3)
