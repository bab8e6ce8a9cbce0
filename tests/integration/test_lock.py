"""`envctl lock` against a real loopback docker-registry, cross-checked with skopeo.

Images are built by tests.fixtures.images and pushed with skopeo (an independent client).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.registry]


def write_spec(directory, image: str, platforms=("linux/amd64",), extra: str = "") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    plats = "[" + ", ".join(platforms) + "]"
    (directory / "envctl.yaml").write_text(f"version: 1\nimage: {image}\nplatforms: {plats}\n{extra}")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def lock_json(directory) -> dict:
    return json.loads((directory / "envctl.lock").read_bytes())


def test_two_platform_lock_matches_skopeo(test_images, run_envctl, tmp_path):
    reg = test_images.registry
    proj = tmp_path / "p"
    write_spec(proj, test_images.refs["multi"], ("linux/amd64", "linux/arm64"))
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = lock_json(proj)
    raw_index = reg.skopeo_inspect("envctl/multi", "v1", raw=True)
    assert lock["image"] == {"reference": test_images.refs["multi"], "digest": sha(raw_index),
                             "mediaType": "application/vnd.oci.image.index.v1+json"}
    assert sorted(lock["platforms"]) == ["linux/amd64", "linux/arm64"]
    index = json.loads(raw_index)
    for plat in ("linux/amd64", "linux/arm64"):
        entry = lock["platforms"][plat]
        arch = plat.split("/")[1]
        want = next(m for m in index["manifests"] if m["platform"]["architecture"] == arch)
        assert entry["manifest"] == {"digest": want["digest"], "mediaType": want["mediaType"], "size": want["size"]}
        # skopeo's own platform choice agrees (its Digest is the index's), and so do config and layers
        info = reg.skopeo_inspect("envctl/multi", "v1", platform=plat)
        assert info["Digest"] == lock["image"]["digest"]
        assert [x["digest"] for x in entry["layers"]] == info["Layers"]
        manifest = json.loads(subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/envctl/multi@{want['digest']}"],
            check=True, capture_output=True).stdout)
        assert entry["config"]["digest"] == manifest["config"]["digest"]
        config = reg.skopeo_inspect("envctl/multi", "v1", config=True, platform=plat)
        assert [x["diffID"] for x in entry["layers"]] == config["rootfs"]["diff_ids"]
        assert [x["size"] for x in entry["layers"]] == [x["size"] for x in manifest["layers"]]
    assert lock["platforms"]["linux/arm64"]["layers"][0]["mediaType"].endswith("+zstd")
    assert lock["steps"] == [] and lock["lockVersion"] == 1


@pytest.mark.parametrize("name", ["single", "zstd", "plain", "docker"])
def test_single_manifest_images(test_images, run_envctl, tmp_path, name):
    reg = test_images.registry
    proj = tmp_path / name
    write_spec(proj, test_images.refs[name])
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = lock_json(proj)
    repo, tag = test_images.NAMES[name]
    raw = reg.skopeo_inspect(repo, tag, raw=True)
    assert lock["image"]["digest"] == sha(raw) == reg.skopeo_inspect(repo, tag)["Digest"]
    entry = lock["platforms"]["linux/amd64"]
    assert entry["manifest"]["digest"] == sha(raw) and entry["manifest"]["size"] == len(raw)
    assert [x["digest"] for x in entry["layers"]] == reg.skopeo_inspect(repo, tag)["Layers"]
    if name == "docker":
        assert lock["image"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert entry["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"


def test_same_bytes_twice_and_on_a_second_clone(test_images, run_envctl, tmp_path):
    proj = tmp_path / "repo"
    write_spec(proj, test_images.refs["multi"], ("linux/arm64", "linux/amd64"), "env: {A: '1'}\n")
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    assert run_envctl("lock", cwd=proj).returncode == 0
    first = (proj / "envctl.lock").read_bytes()
    assert first.endswith(b"}\n") and b"\t" not in first and str(tmp_path).encode() not in first
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0 and "unchanged" in r.stdout
    assert (proj / "envctl.lock").read_bytes() == first
    # --update re-resolves the tag and, the registry being unchanged, writes the same bytes
    assert run_envctl("lock", "--update", cwd=proj).returncode == 0
    assert (proj / "envctl.lock").read_bytes() == first
    # a second clone (lock not committed) at another path locks to the same bytes
    git = ["git", "-C", str(proj), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "envctl.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], check=True)
    clone = tmp_path / "elsewhere" / "clone"
    subprocess.run(["git", "clone", "-q", str(proj), str(clone)], check=True)
    assert not (clone / "envctl.lock").exists()
    assert run_envctl("lock", cwd=clone).returncode == 0
    assert (clone / "envctl.lock").read_bytes() == first
    assert run_envctl("lock", "--check", cwd=clone).returncode == 0


def test_check_reports_drift_without_network(test_images, run_envctl, tmp_path):
    proj = tmp_path / "p"
    write_spec(proj, test_images.refs["multi"], ("linux/amd64",))
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 3 and "envctl.lock is missing" in r.stderr
    assert run_envctl("lock", cwd=proj).returncode == 0
    before = (proj / "envctl.lock").read_bytes()
    # no network: point the image's registry at a closed port after locking
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 0 and "up to date" in r.stdout
    write_spec(proj, test_images.refs["multi"], ("linux/amd64", "linux/arm64"))
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("envctl: error: envctl.lock is stale: platforms not locked: linux/arm64"), r.stderr
    write_spec(proj, test_images.refs["single"], ("linux/amd64",))
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 3 and f"image: envctl.yaml has {test_images.refs['single']}" in r.stderr
    write_spec(proj, test_images.refs["multi"], ("linux/amd64",), "env: {X: '1'}\n")
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 3 and "envctl.yaml changed since the lock was written" in r.stderr
    assert (proj / "envctl.lock").read_bytes() == before  # --check never writes


def test_check_makes_no_network_call(test_images, run_envctl, tmp_path, registry_proxy):
    proxy = registry_proxy()
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/multi:v1", ("linux/amd64",))
    assert run_envctl("lock", cwd=proj).returncode == 0
    proxy.clear()
    assert run_envctl("lock", "--check", cwd=proj).returncode == 0
    write_spec(proj, f"{proxy.host}/envctl/multi:v1", ("linux/amd64", "linux/arm64"))
    assert run_envctl("lock", "--check", cwd=proj).returncode == 3
    assert proxy.requests == []


def test_existing_pins_kept_until_update(test_images, run_envctl, tmp_path):
    """A moved tag does not change the lock; adding a platform resolves it by the pinned digest."""
    reg = test_images.registry
    proj = tmp_path / "p"
    ref = reg.ref("envctl/moving", "v1")
    reg.push(test_images.layout, "multi", "envctl/moving", "v1")
    write_spec(proj, ref, ("linux/amd64",))
    assert run_envctl("lock", cwd=proj).returncode == 0
    pinned = lock_json(proj)["image"]["digest"]
    reg.push(test_images.layout, "single", "envctl/moving", "v1", all=False)   # the tag moves
    write_spec(proj, ref, ("linux/amd64", "linux/arm64"))
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = lock_json(proj)
    assert lock["image"]["digest"] == pinned and sorted(lock["platforms"]) == ["linux/amd64", "linux/arm64"]
    r = run_envctl("lock", "--update", cwd=proj)      # now the single-platform image: arm64 missing
    assert r.returncode == 1
    assert "has no linux/arm64 manifest (it has: linux/amd64)" in r.stderr
    write_spec(proj, ref, ("linux/amd64",))
    assert run_envctl("lock", "--update", cwd=proj).returncode == 0
    assert lock_json(proj)["image"]["digest"] == test_images.descriptors["single"]["digest"] != pinned


def test_oci_layout_and_docker_archive_sources(test_images, run_envctl, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    shutil.copytree(test_images.layout, proj / "layout")
    shutil.copy(test_images.docker_archive, proj / "image.tar")
    write_spec(proj, "oci:layout:multi", ("linux/amd64", "linux/arm64"))
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = lock_json(proj)
    assert lock["image"] == {"reference": "oci:layout:multi", "digest": test_images.descriptors["multi"]["digest"],
                             "mediaType": "application/vnd.oci.image.index.v1+json"}
    write_spec(proj, "docker-archive:image.tar", ("linux/amd64",))
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = lock_json(proj)
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"docker-archive:{proj / 'image.tar'}"],
                         check=True, capture_output=True).stdout
    assert lock["image"]["digest"] == sha(raw)   # the same synthesised manifest as containers/image
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"docker-archive:{proj / 'image.tar'}"],
                                       check=True, capture_output=True).stdout)
    assert [x["diffID"] for x in lock["platforms"]["linux/amd64"]["layers"]] == config["rootfs"]["diff_ids"]
    assert str(proj) not in (proj / "envctl.lock").read_text()


def test_request_count_for_two_platforms(test_images, registry_proxy, run_envctl, tmp_path):
    """Index + (manifest + config) per platform: 5 requests, no /v2/ ping, no layer downloads."""
    proxy = registry_proxy()
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/multi:v1", ("linux/amd64", "linux/arm64"))
    r = run_envctl("lock", "-v", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert [s.path.split("/")[4] for s in proxy.requests] == ["manifests", "manifests", "blobs", "manifests", "blobs"]
    assert "5 HTTP requests" in r.stderr
    accept = proxy.requests[0].headers["Accept"]
    assert "application/vnd.oci.image.index.v1+json" in accept and "distribution.manifest.v1" not in accept


def test_reference_pinned_by_digest(test_images, run_envctl, tmp_path):
    reg = test_images.registry
    digest = test_images.descriptors["multi"]["digest"]
    proj = tmp_path / "p"
    write_spec(proj, f"{reg.host}/envctl/multi:v1@{digest}", ("linux/arm64",))
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = lock_json(proj)
    assert lock["image"]["digest"] == digest and lock["image"]["reference"].endswith(f"multi:v1@{digest}")
    other = "sha256:" + "0" * 64
    write_spec(proj, f"{reg.host}/envctl/multi@{other}", ("linux/arm64",))
    r = run_envctl("lock", "--check", cwd=proj)
    assert r.returncode == 3 and "image: envctl.yaml has" in r.stderr
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 1 and f"manifest {other} not found in {reg.host}/envctl/multi" in r.stderr
