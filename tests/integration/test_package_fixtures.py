"""The package fixtures are real: apt, pip and npm themselves accept (and reject) what they serve.

These pin the fixtures the packages tests (issue #12) build on: a signed loopback Debian archive
that apt-get verifies, a simple index pip resolves from, a registry npm installs from.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess

import pytest

from tests.fixtures.apt_archive import build_deb, hello_package, standard_packages


def _apt(archive, root, *args, arch="amd64", check=True):
    r = subprocess.run(["apt-get", *archive.apt_argv(root, arch=arch), *args], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def _madison(archive, root, name, arch="amd64"):
    out = subprocess.run(["apt-cache", *archive.apt_argv(root, arch=arch), "madison", name], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return [line.split("|")[1].strip() for line in out.splitlines() if "|" in line]


@pytest.fixture
def apt_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("apt-get update as non-root cannot keep its lists in a private Dir (CI runs as root)")
    return tmp_path / "apt-root"


def test_apt_update_verifies_signed_archive_and_sees_both_versions(apt_archive, apt_root):
    r = _apt(apt_archive, apt_root, "update")
    assert "InRelease" in r.stdout and "NO_PUBKEY" not in r.stderr and "W:" not in r.stderr
    assert _madison(apt_archive, apt_root, "ectl-hello") == ["2.0-1", "1.0-1"]
    assert apt_archive.server.count("/dists/stable/InRelease") == 1


def _inst(archive, root, *names):
    out = _apt(archive, root, "install", "-s", *names).stdout
    return {line.split()[1]: line.split()[2].strip("(") for line in out.splitlines() if line.startswith("Inst ")}


def test_apt_resolves_dependency_chain_and_alternatives(apt_archive, apt_root):
    _apt(apt_archive, apt_root, "update")
    assert _inst(apt_archive, apt_root, "ectl-hello") == {"ectl-hello": "2.0-1", "ectl-libgreet1": "1.0-1",
                                                          "ectl-data": "1.0-1"}
    assert _inst(apt_archive, apt_root, "ectl-choice") == {"ectl-choice": "1.0-1", "ectl-alt-a": "1.0-1"}
    assert _inst(apt_archive, apt_root, "ectl-fallback") == {"ectl-fallback": "1.0-1", "ectl-alt-b": "1.0-1"}


def test_arm64_index_holds_arm64_and_all_packages(apt_archive, apt_root):
    arches = {(p["Package"], p["Architecture"]) for p in apt_archive.packages("arm64")}
    assert ("ectl-hello", "arm64") in arches and ("ectl-data", "all") in arches
    assert not any(a == "amd64" for _, a in arches)
    _apt(apt_archive, apt_root, "update", arch="arm64")
    out = _apt(apt_archive, apt_root, "install", "-s", "ectl-hello", arch="arm64").stdout
    assert "Inst ectl-hello (2.0-1 envctl-tests:stable [arm64])" in out


def test_apt_rejects_packages_changed_after_signing(apt_archive, apt_root):
    index = apt_archive.dists / "main/binary-amd64"
    text = (index / "Packages").read_bytes().replace(b"Version: 2.0-1", b"Version: 9.0-1")
    (index / "Packages").write_bytes(text)
    (index / "Packages.gz").write_bytes(gzip.compress(text, mtime=0))
    r = _apt(apt_archive, apt_root, "update", check=False)
    assert r.returncode != 0 and ("Hash Sum mismatch" in r.stderr or "unexpected size" in r.stderr), r.stderr
    assert "9.0-1" not in " ".join(_madison(apt_archive, apt_root, "ectl-hello"))


def test_apt_rejects_inrelease_changed_after_signing(apt_archive, apt_root):
    inrel = apt_archive.dists / "InRelease"
    inrel.write_text(inrel.read_text().replace("Suite: stable", "Suite: stab1e"))
    r = _apt(apt_archive, apt_root, "update", check=False)
    assert r.returncode != 0 and ("BADSIG" in r.stderr or "not valid" in r.stderr), r.stderr


def test_publish_and_remove_while_serving_reach_apt(apt_archive, apt_root):
    _apt(apt_archive, apt_root, "update")
    apt_archive.publish(hello_package("3.0-1", "amd64"))
    apt_archive.remove("ectl-hello", "1.0-1")
    assert not apt_archive.deb_file("ectl-hello", "1.0-1", "arm64").exists()
    _apt(apt_archive, apt_root, "update")
    assert _madison(apt_archive, apt_root, "ectl-hello") == ["3.0-1", "2.0-1"]
    apt_archive.server.clear_log()
    _apt(apt_archive, apt_root, "install", "--download-only", "-y", "ectl-hello")
    assert apt_archive.server.count(".deb") == 3  # hello 3.0-1, libgreet1, data
    assert apt_archive.server.count("ectl-hello_3.0-1_amd64.deb") == 1


def test_debs_carry_scripts_conffile_and_root_ownership(tmp_path):
    daemon = next(s for s in standard_packages() if s.name == "ectl-daemon")
    deb = build_deb(daemon, tmp_path / "d.deb")
    info = subprocess.run(["dpkg-deb", "--info", deb], capture_output=True, text=True, check=True).stdout
    assert "postinst" in info and "prerm" in info and "conffiles" in info
    ctrl = subprocess.run(["dpkg-deb", "--field", deb, "Depends"], capture_output=True, text=True, check=True).stdout
    assert ctrl.strip() == "ectl-data"
    post = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
    assert b"useradd --system" in post and b"update-alternatives --install" in post
    listing = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True, check=True).stdout
    assert "./etc/ectl-daemon/daemon.conf" in listing and all("root/root" in line for line in listing.splitlines())


def test_same_spec_builds_the_same_deb_bytes(tmp_path):
    spec = hello_package("1.0-1", "arm64")
    a, b = build_deb(spec, tmp_path / "a.deb"), build_deb(spec, tmp_path / "b.deb")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


@pytest.mark.needs_root
def test_daemon_deb_installs_with_real_dpkg_adding_user_alternative_and_conffile(tmp_path):
    """dpkg -i in an overlay over the host root (private mount namespace): the maintainer scripts work."""
    if os.geteuid() != 0:
        pytest.skip("overlay mount and chroot need root")
    debs = [build_deb(s, tmp_path / f"{s.name}.deb") for s in standard_packages() if s.name in ("ectl-data", "ectl-daemon")]
    for d in ("upper", "work", "merged"):
        (tmp_path / d).mkdir()
    inner = ("dpkg -i /tmp/ectl-data.deb /tmp/ectl-daemon.deb >/dev/null && grep '^ectl-daemon:' /etc/passwd"
             " && ectl-editor && dpkg-query -W -f='${Conffiles}' ectl-daemon")
    script = (f"mount -t overlay overlay -o lowerdir=/,upperdir={tmp_path}/upper,workdir={tmp_path}/work {tmp_path}/merged"
              f" && cp {' '.join(map(str, debs))} {tmp_path}/merged/tmp/ && exec chroot {tmp_path}/merged sh -c \"$0\"")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, inner],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ectl-daemon:x:") and "ectl-editor from ectl-daemon" in r.stdout
    assert "/etc/ectl-daemon/daemon.conf" in r.stdout
    assert (tmp_path / "upper/etc/alternatives/ectl-editor").is_symlink()
