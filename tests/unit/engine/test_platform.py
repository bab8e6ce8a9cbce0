"""Platform normalisation and choice from an image index (engine/sources/platform.py)."""

from __future__ import annotations

import pytest

from engine.errors import PlatformNotFound
from engine.sources.platform import host_platform, index_platforms, is_attestation, parse_platform, select_manifest
from specs.errors import UsageError

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text,canonical", [
    ("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"), ("x86-64", "linux/amd64"),
    ("linux/arm64", "linux/arm64"), ("linux/arm64/v8", "linux/arm64"), ("linux/aarch64", "linux/arm64"),
    ("linux/arm", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"), ("linux/armel", "linux/arm/v6"),
    ("linux/arm/7", "linux/arm/v7"), ("linux/i686", "linux/386"), ("linux/ppc64el", "linux/ppc64le"),
    ("Linux/AMD64", "linux/amd64"), ("linux/s390x", "linux/s390x"),
])
def test_normalisation(text, canonical):
    assert str(parse_platform(text)) == canonical
    assert parse_platform(canonical) == parse_platform(text)


@pytest.mark.parametrize("bad", ["", "linux/", "/amd64", "a/b/c/d"])
def test_bad_platform(bad):
    with pytest.raises(UsageError, match="invalid platform"):
        parse_platform(bad)


def test_host_platform_is_normalised():
    assert str(host_platform()) in {"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6",
                                    "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64"}


def entry(arch, variant=None, os="linux", **extra):
    p = {"os": os, "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D, "size": 1,
            "platform": p, **extra}


ATTEST = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D, "size": 1,
          "platform": {"os": "unknown", "architecture": "unknown"},
          "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": D}}


def test_select_skips_attestations_and_matches_variants():
    index = {"manifests": [ATTEST, entry("amd64"), entry("arm64", "v8", tag="arm64"), entry("arm", "v6", tag="v6"),
                           entry("arm", "v7", tag="v7")]}
    assert is_attestation(ATTEST) and not is_attestation(entry("amd64"))
    assert [str(p) for p in index_platforms(index)] == ["linux/amd64", "linux/arm64", "linux/arm/v6", "linux/arm/v7"]
    assert select_manifest(index, parse_platform("linux/arm64"), "x")["tag"] == "arm64"
    assert select_manifest(index, parse_platform("linux/arm"), "x")["tag"] == "v7"
    assert select_manifest(index, parse_platform("linux/arm/v6"), "x")["tag"] == "v6"
    # an index that gives arm64 without a variant still matches arm64 (= arm64/v8)
    assert select_manifest({"manifests": [entry("arm64", tag="bare")]}, parse_platform("linux/arm64/v8"), "x")["tag"] == "bare"


def test_missing_platform_lists_what_exists():
    index = {"manifests": [entry("amd64"), entry("arm64"), ATTEST]}
    with pytest.raises(PlatformNotFound) as e:
        select_manifest(index, parse_platform("linux/riscv64"), "example.com/a:b")
    assert e.value.message == "image example.com/a:b has no linux/riscv64 manifest (it has: linux/amd64, linux/arm64)"
    assert e.value.hint
    with pytest.raises(PlatformNotFound):
        select_manifest({"manifests": [ATTEST]}, parse_platform("linux/amd64"), "x")
