"""scripts/lib (base images): apt source parsing, the reproducible OCI packer, cache planning."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "lib"))
import apt_sources  # noqa: E402
import base_images  # noqa: E402
import oci_pack  # noqa: E402

ONE_LINE = """\
# comment
deb http://mirror.example/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm-updates main
deb-src http://mirror.example/debian bookworm main
deb http://mirror.example/debian bookworm-backports main
deb http://other.example/debian trixie main
"""
DEB822 = """\
Types: deb
URIs: http://sec.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no
"""


def apt_etc(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    return tmp_path


def test_host_sources_keeps_the_suite_family_in_order(tmp_path):
    got = apt_sources.host_sources("bookworm", apt_etc(tmp_path))
    assert [(s.uri, s.suite, s.signed_by) for s in got] == [
        ("http://mirror.example/debian", "bookworm", None),
        ("http://mirror.example/debian", "bookworm-updates", "/usr/share/keyrings/k.gpg"),
        ("http://sec.example/debian-security", "bookworm-security",
         "/usr/share/keyrings/debian-archive-keyring.gpg")]
    text = apt_sources.render_deb822(got)
    assert text.count("Components: main\n") == 3 and "contrib" not in text and "backports" not in text


def test_no_source_for_the_suite_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="no apt source for suite 'sid'"):
        apt_sources.host_sources("sid", apt_etc(tmp_path))


def rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data in [("./", tarfile.DIRTYPE, b""), ("./dev/", tarfile.DIRTYPE, b""),
                                 ("./dev/null", tarfile.CHRTYPE, b""), ("./proc/", tarfile.DIRTYPE, b""),
                                 ("./etc/", tarfile.DIRTYPE, b""), ("./etc/os-release", tarfile.REGTYPE, b"ID=debian\n"),
                                 ("./usr/bin/perl", tarfile.REGTYPE, b"#!perl\n" * 100),
                                 ("./usr/bin/perl5", tarfile.LNKTYPE, b"")]:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mtime = kind, len(data), 1700000000
            if kind == tarfile.LNKTYPE:
                info.linkname = "./usr/bin/perl"
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def pack(layout: Path) -> tuple[oci_pack.LayerStats, str]:
    stats = oci_pack.pack_layer(io.BytesIO(rootfs_tar()), layout / "blobs" / "sha256")
    index = oci_pack.write_image(layout, stats, tag="t", created=1700000000, created_by="test", arch="amd64")
    return stats, index


def test_packing_is_byte_reproducible_and_drops_device_nodes(tmp_path):
    (a, ia), (b, ib) = pack(tmp_path / "a"), pack(tmp_path / "b")
    assert (a.digest, a.diff_id, ia) == (b.digest, b.diff_id, ib)
    blob = (tmp_path / "a" / "blobs" / "sha256" / a.digest.split(":")[1]).read_bytes()
    assert f"sha256:{hashlib.sha256(blob).hexdigest()}" == a.digest and len(blob) == a.size
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        names = tar.getnames()
        assert tar.getmember("./usr/bin/perl5").islnk()
    assert "./dev/null" not in names and "./dev" in names and "./proc" in names
    assert a.entries == len(names) == 7


def test_layout_is_read_by_skopeo_as_a_one_platform_index(tmp_path):
    stats, index = pack(tmp_path / "l")
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'l'}:t"], check=True,
                         capture_output=True).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == index
    assert json.loads(raw)["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{tmp_path / 'l'}:t"],
                                       check=True, capture_output=True).stdout)
    assert config["rootfs"]["diff_ids"] == [stats.diff_id] and config["created"] == "2023-11-14T22:13:20Z"


def test_unreachable_archive_falls_back_to_the_newest_cached_build(tmp_path, monkeypatch, capsys):
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("deb http://127.0.0.1:9/debian bookworm main\n")   # discard port
    monkeypatch.setattr(apt_sources, "APT_ETC", etc)
    image, cache = base_images.IMAGES["bookworm"], tmp_path / "cache"
    with pytest.raises(RuntimeError, match="fetch InRelease for bookworm"):
        base_images.plan_image(image, cache)
    text = apt_sources.render_deb822(apt_sources.host_sources("bookworm"))
    static = base_images._sha(base_images.static_inputs(image, text))[:12]
    for n, key in enumerate(["0" * 16, "1" * 16]):
        entry = cache / f"bookworm-{static}-{key}"
        entry.mkdir(parents=True)
        (entry / "build.json").write_text(json.dumps({"sourceDateEpoch": 1700000000 + n}))
    plan = base_images.plan_image(image, cache)
    assert plan.epoch in (1700000000, 1700000001) and plan.entry.parent == cache
    assert "using the newest cached bookworm" in capsys.readouterr().err


def test_prune_keeps_the_newest_entries_of_one_image(tmp_path):
    import os
    for n, name in enumerate(["bookworm-aaa-1", "bookworm-aaa-2", "bookworm-bbb-3", "bookworm-bbb-4",
                              "bookworm-slim-aaa-1"]):
        (tmp_path / name).mkdir()
        (tmp_path / name / "build.json").write_text("{}")
        os.utime(tmp_path / name / "build.json", (1000 + n, 1000 + n))
    base_images.prune(tmp_path, "bookworm", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bookworm-bbb-3", "bookworm-bbb-4",
                                                          "bookworm-slim-aaa-1"]
