"""make_lock / lock_drift over an OCI layout source (no network): pins, platforms, drift phrases."""

from __future__ import annotations

import pytest

from engine.errors import PlatformNotFound
from engine.sources.platform import host_platform
from engine.sources.resolve import lock_drift, make_lock
from specs.load import parse_spec
from tests.fixtures.images import LayoutBuilder, tar_layer


@pytest.fixture
def layout(tmp_path):
    lb = LayoutBuilder(tmp_path / "layout")
    base = tar_layer({"etc/": ("dir",), "etc/os-release": b"ID=test\n"})
    amd = lb.image([base], arch="amd64")
    arm = lb.image([base, tar_layer({"etc/arch": b"arm64\n"})], arch="arm64", compression="zstd")
    lb.tag(lb.index([amd, arm], attest=True), "multi")
    lb.tag(amd, "single")
    return lb


def spec(layout, tag, platforms=None, extra=""):
    plats = "" if platforms is None else f"platforms: [{', '.join(platforms)}]\n"
    return parse_spec(f"version: 1\nimage: oci:{layout.root}:{tag}\n{plats}{extra}")


def test_lock_keeps_pins_and_adds_platforms(layout):
    s1 = spec(layout, "multi", ["linux/amd64"])
    lock1, _ = make_lock(s1)
    assert list(lock1.platforms) == ["linux/amd64"] and lock_drift(s1, lock1) == []
    s2 = spec(layout, "multi", ["linux/arm64", "linux/amd64"])
    assert lock_drift(s2, lock1) == ["platforms not locked: linux/arm64"]
    lock2, _ = make_lock(s2, lock1)
    assert lock2.platforms["linux/amd64"] == lock1.platforms["linux/amd64"]
    assert lock2.platform("linux/arm64").layers[1].media_type.endswith("+zstd")
    assert lock2.to_bytes() == make_lock(s2, None)[0].to_bytes() == make_lock(s2, lock2, update=True)[0].to_bytes()
    s3 = spec(layout, "multi", ["linux/arm64"], "env: {A: '1'}\n")
    assert lock_drift(s3, lock2) == ["platforms locked but no longer wanted: linux/amd64"]
    assert list(make_lock(s3, lock2)[0].platforms) == ["linux/arm64"]
    s4 = spec(layout, "multi", ["linux/amd64"], "env: {A: '1'}\n")
    assert lock_drift(s4, lock1)[0].startswith("envctl.yaml changed since the lock was written")


def test_image_change_is_reported_and_re_resolved(layout):
    lock, _ = make_lock(spec(layout, "multi", ["linux/amd64"]))
    s = spec(layout, "single", ["linux/amd64"])
    assert lock_drift(s, lock) == [f"image: envctl.yaml has oci:{layout.root}:single, the lock has "
                                   f"oci:{layout.root}:multi"]
    new, _ = make_lock(s, lock)
    assert new.image.media_type.endswith("manifest.v1+json") and new.image.digest != lock.image.digest


def test_single_manifest_platform_checked_against_config(layout):
    with pytest.raises(PlatformNotFound, match=r"has no linux/arm64 manifest \(it has: linux/amd64\)"):
        make_lock(spec(layout, "single", ["linux/arm64"]))


def test_no_platforms_means_this_machine_plus_what_is_locked(layout):
    host = str(host_platform())
    other = "linux/arm64" if host != "linux/arm64" else "linux/amd64"
    s = spec(layout, "multi")
    lock, _ = make_lock(s)
    assert list(lock.platforms) == [host] and lock_drift(s, lock) == []
    teammate, _ = make_lock(spec(layout, "multi", [other]))
    # a lock made on another machine (same spec digest would differ: simulate by re-stamping)
    from dataclasses import replace

    theirs = replace(teammate, spec_digest=s.digest())
    assert lock_drift(s, theirs) == [f"platform {host} (this machine; envctl.yaml names no platforms) is not locked"]
    merged, _ = make_lock(s, theirs)
    assert sorted(merged.platforms) == sorted([host, other]) and lock_drift(s, merged) == []


def test_oci_archive_and_docker_archive_selection(layout, tmp_path):
    import json
    import tarfile

    from engine.errors import ManifestError

    archive = tmp_path / "image.oci.tar"
    with tarfile.open(archive, "w") as t:
        t.add(layout.root, arcname=".")
    lock, _ = make_lock(parse_spec(f"version: 1\nimage: oci-archive:{archive}:multi\nplatforms: [linux/arm64]\n"))
    direct, _ = make_lock(spec(layout, "multi", ["linux/arm64"]))
    assert lock.image.digest == direct.image.digest and lock.platforms == direct.platforms
    # a docker archive with two images: chosen by NAME:TAG, refused when the name is unknown
    d = tmp_path / "save"
    d.mkdir()
    (d / "c.json").write_bytes(json.dumps({"os": "linux", "architecture": "amd64",
                                           "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    (d / "manifest.json").write_text(json.dumps([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": []},
                                                 {"Config": "c.json", "RepoTags": ["docker.io/library/b:2"],
                                                  "Layers": []}]))
    tar = tmp_path / "save.tar"
    with tarfile.open(tar, "w") as t:
        t.add(d, arcname=".")
    ok = parse_spec(f"version: 1\nimage: docker-archive:{tar}:b:2\nplatforms: [linux/amd64]\n")
    assert make_lock(ok)[0].platform("linux/amd64").layers == ()
    with pytest.raises(ManifestError, match="has no image tagged c:3"):
        make_lock(parse_spec(f"version: 1\nimage: docker-archive:{tar}:c:3\nplatforms: [linux/amd64]\n"))
    with pytest.raises(ManifestError, match="holds 2 images"):
        make_lock(parse_spec(f"version: 1\nimage: docker-archive:{tar}\nplatforms: [linux/amd64]\n"))
