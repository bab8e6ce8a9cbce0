"""Bad input to `envctl lock`: each gets one clear error line (plus a hint) and an exit code."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.registry import free_port
from tests.integration.test_lock import write_spec

pytestmark = [pytest.mark.registry]

SCHEMA1 = json.dumps({"schemaVersion": 1, "name": "envctl/multi", "tag": "v1", "architecture": "amd64",
                      "fsLayers": [], "history": [], "signatures": []}).encode()


def one_error(r, code: int, *needles: str) -> str:
    """Assert exit ``code``, one ``envctl: error:`` line (+ optional hint), no traceback; return the line."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    errors = [x for x in lines if x.startswith("envctl: error: ")]
    assert len(errors) == 1, r.stderr
    assert all(x.startswith(("envctl: error: ", "hint: ", "resolving ")) or "retrying in" in x for x in lines), r.stderr
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def lock_with(run_envctl, tmp_path, image, platforms=("linux/amd64",), env=None):
    proj = tmp_path / "p"
    write_spec(proj, image, platforms)
    r = run_envctl("lock", cwd=proj, env=env)
    assert not (proj / "envctl.lock").exists()
    return r


def test_unknown_tag(test_images, run_envctl, tmp_path):
    r = lock_with(run_envctl, tmp_path, test_images.registry.ref("envctl/multi", "nope"))
    one_error(r, 1, "tag 'nope' not found in", "/envctl/multi (it has: v1)")


def test_unknown_repository(test_images, run_envctl, tmp_path):
    r = lock_with(run_envctl, tmp_path, test_images.registry.ref("envctl/nothing-here", "v1"))
    one_error(r, 1, "repository envctl/nothing-here not found on 127.0.0.1:")


def test_unreachable_registry(run_envctl, tmp_path):
    port = free_port()
    r = lock_with(run_envctl, tmp_path, f"127.0.0.1:{port}/envctl/multi:v1")
    one_error(r, 1, f"cannot reach registry 127.0.0.1:{port}", "connection refused")


def test_platform_missing_lists_available(test_images, run_envctl, tmp_path):
    r = lock_with(run_envctl, tmp_path, test_images.refs["multi"], ("linux/amd64", "linux/s390x"))
    line = one_error(r, 1, "has no linux/s390x manifest (it has: linux/amd64, linux/arm64)")
    assert "unknown" not in line   # the attestation manifest is not offered


def test_invalid_reference(run_envctl, tmp_path):
    r = lock_with(run_envctl, tmp_path, "127.0.0.1:5000/UPPER/case:v1")
    one_error(r, 2, "must be lowercase")


@pytest.mark.parametrize("kind,body,ctype,needle", [
    ("schema1", SCHEMA1, "application/vnd.docker.distribution.manifest.v1+prettyjws", "docker schema 1"),
    ("schema1-json", SCHEMA1, "application/json", "docker schema 1"),
    ("oversized", b"{" + b" " * (5 << 20) + b"}", "application/vnd.oci.image.manifest.v1+json",
     "over the 4194304 byte limit"),
    ("malformed", b'{"schemaVersion": 2, "mediaType": ', "application/vnd.oci.image.manifest.v1+json",
     "is not valid JSON"),
    ("media-type", b'{"schemaVersion": 2}', "application/vnd.example.thing+json", "unsupported media type"),
])
def test_bad_manifests(test_images, run_envctl, tmp_path, registry_proxy, kind, body, ctype, needle):
    proxy = registry_proxy()
    proxy.add_fault(r"/manifests/v1$", "body", times=10, body=body, content_type=ctype)
    r = lock_with(run_envctl, tmp_path, f"{proxy.host}/envctl/multi:v1")
    one_error(r, 1, needle)


def test_digest_mismatch_body(test_images, run_envctl, tmp_path, registry_proxy):
    """A platform manifest fetched by digest whose bytes are altered is refused, naming both digests."""
    proxy = registry_proxy()
    amd = test_images.descriptors["multi/amd64"]["digest"]
    proxy.add_fault(f"/manifests/{amd}$", "corrupt", times=10)
    r = lock_with(run_envctl, tmp_path, f"{proxy.host}/envctl/multi:v1")
    one_error(r, 1, "digest mismatch", f"requested {amd}")


def test_docker_content_digest_mismatch(test_images, run_envctl, tmp_path, registry_proxy):
    proxy = registry_proxy()
    proxy.add_fault(r"/manifests/v1$", "digest-header", times=10)
    r = lock_with(run_envctl, tmp_path, f"{proxy.host}/envctl/multi:v1")
    one_error(r, 1, "digest mismatch: Docker-Content-Digest sha256:000000000000")


def test_config_digest_mismatch(test_images, run_envctl, tmp_path, registry_proxy):
    proxy = registry_proxy()
    proxy.add_fault(r"/blobs/", "corrupt", times=10)
    r = lock_with(run_envctl, tmp_path, f"{proxy.host}/envctl/busybox:single")
    one_error(r, 1, "config of", "digest mismatch: expected sha256:")


def test_corrupt_lock_file(test_images, run_envctl, tmp_path):
    proj = tmp_path / "p"
    write_spec(proj, test_images.refs["multi"])
    (proj / "envctl.lock").write_text("<<<<<<< HEAD\n")
    one_error(run_envctl("lock", cwd=proj), 1, "envctl.lock is not valid JSON")
    one_error(run_envctl("lock", "--check", cwd=proj), 1, "envctl.lock is not valid JSON")
    assert run_envctl("lock", "--update", cwd=proj).returncode == 0
