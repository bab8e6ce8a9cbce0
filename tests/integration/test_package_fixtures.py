"""The package fixtures are real: apt, pip and npm themselves accept (and reject) what they serve.

These pin the fixtures the packages tests (issue #12) build on: a signed loopback Debian archive
that apt-get verifies, a simple index pip resolves from, a registry npm installs from.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile

import pytest

from tests.fixtures.apt_archive import build_deb, hello_package, standard_packages
from tests.fixtures.npm_registry import npm_env, pad_package
from tests.fixtures.pypi_index import JSON_TYPE, WheelSpec, build_wheel, greet_wheel, pip_env


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


def test_image_files_make_apt_trust_the_archive_through_signed_by(apt_archive, apt_root):
    files = apt_archive.image_files()
    for rel, data in files.items():
        (apt_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (apt_root / rel).write_bytes(data)
    argv = apt_archive.apt_argv(apt_root)
    (apt_root / "etc/apt/sources.list").write_text("")  # only the .sources file from the image
    sources = apt_root / "etc/apt/sources.list.d/envctl-test.sources"
    sources.write_text(sources.read_text().replace("Signed-By: /", f"Signed-By: {apt_root}/"))
    r = subprocess.run(["apt-get", *argv, "update"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "W:" not in r.stderr, r.stdout + r.stderr
    assert "Signed-By: /etc/apt/keyrings/envctl-test.gpg" in files["etc/apt/sources.list.d/envctl-test.sources"].decode()


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


# -- the simple index


def _pip(index, *args, env=None, check=True):
    r = subprocess.run(index.pip_argv(*args), env=env or pip_env(), capture_output=True, text=True, timeout=180)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def _report(index, *reqs, env=None):
    rep = json.loads(_pip(index, "install", "--dry-run", "--quiet", "--report", "-", *reqs, env=env).stdout)
    return {i["metadata"]["name"]: (i["metadata"]["version"], i["download_info"]["url"]) for i in rep["install"]}


def test_pip_resolves_dependencies_and_extras_from_the_index(pypi_index):
    got = _report(pypi_index, "ectl-cli[fast]")
    assert {n: v for n, (v, _) in got.items()} == {"ectl-cli": "1.0", "ectl-greet": "2.0", "ectl-util": "1.0"}
    assert all(url.startswith(pypi_index.server.url + "/files/") for _, url in got.values())
    assert {n: v for n, (v, _) in _report(pypi_index, "ectl-greet<2").items()} == {"ectl-greet": "1.0"}


def test_pip_download_checks_the_sha256_fragment(pypi_index, tmp_path):
    _pip(pypi_index, "download", "--no-deps", "-d", str(tmp_path / "dl"), "ectl-greet==1.0")
    assert (tmp_path / "dl/ectl_greet-1.0-py3-none-any.whl").read_bytes() == pypi_index.wheel("ectl-greet", "1.0").read_bytes()
    pypi_index.tamper("ectl_greet-1.0-py3-none-any.whl", b"PK not the wheel the index hashed")
    r = _pip(pypi_index, "download", "--no-deps", "-d", str(tmp_path / "dl2"), "ectl-greet==1.0", check=False)
    assert r.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in r.stderr.upper(), r.stderr


def test_index_speaks_pep_691_json_and_pep_503_html(pypi_index):
    def get(path, accept):
        req = urllib.request.Request(pypi_index.server.url + path, headers={"Accept": accept})
        with urllib.request.urlopen(req) as resp:
            return resp.headers["Content-Type"], resp.read().decode()

    ctype, body = get("/simple/ectl-greet/", f"{JSON_TYPE}, text/html;q=0.01")
    doc = json.loads(body)
    assert ctype == JSON_TYPE and doc["meta"]["api-version"] == "1.1" and doc["versions"] == ["1.0", "2.0"]
    f = doc["files"][0]
    assert f["hashes"]["sha256"] == pypi_index.sha256(f["filename"]) and "dist-info-metadata" not in f
    meta = urllib.request.urlopen(pypi_index.server.url + f["url"] + ".metadata").read()
    assert hashlib.sha256(meta).hexdigest() == f["core-metadata"]["sha256"]
    ctype, body = get("/simple/Ectl_Greet/", "text/html")  # redirected to the normalized name
    assert "text/html" in ctype or "v1+html" in ctype
    assert f'#sha256={f["hashes"]["sha256"]}' in body and f'data-core-metadata="sha256={f["core-metadata"]["sha256"]}"' in body


def test_html_only_index_lets_pip_resolve_from_metadata_files(pypi_index):
    pypi_index.serve_json = False
    _report(pypi_index, "ectl-cli")
    # pip 23.0 (bookworm) resolves from the PEP 658 files, then still fetches every wheel (twice,
    # even with --dry-run): the resolution part is what this index must support
    paths = [r.path for r in pypi_index.server.requests]
    first_wheel = next(i for i, p in enumerate(paths) if p.endswith(".whl"))
    assert sum(p.endswith(".metadata") for p in paths[:first_wheel]) == 3


def test_wheels_have_a_valid_record_and_console_script(pypi_index, tmp_path):
    wheel = pypi_index.wheel("ectl-cli", "1.0")
    with zipfile.ZipFile(wheel) as z:
        rows = [line.split(",") for line in z.read("ectl_cli-1.0.dist-info/RECORD").decode().splitlines()]
        for path, digest, size in rows:
            if digest:
                data = z.read(path)
                assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert int(size) == len(data)
        assert set(z.namelist()) == {r[0] for r in rows}
    _pip(pypi_index, "install", "--target", str(tmp_path / "t"), "ectl-cli")
    r = subprocess.run([str(tmp_path / "t/bin/ectl-cli")], env={**pip_env(), "PYTHONPATH": str(tmp_path / "t")},
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "ectl-cli 2.0\n", r.stderr


def test_publish_and_remove_reach_pip(pypi_index):
    pypi_index.publish(greet_wheel("3.0"))
    assert _report(pypi_index, "ectl-greet")["ectl-greet"][0] == "3.0"
    pypi_index.remove("ectl-greet", "3.0")
    pypi_index.remove("ectl-greet", "2.0")
    assert _report(pypi_index, "ectl-greet")["ectl-greet"][0] == "1.0"


def test_pip_env_hides_machine_config_and_find_links(pypi_index, tmp_path):
    local = tmp_path / "local-wheels"
    build_wheel(WheelSpec("ectl-local-only", "1.0"), local)
    leaky = {**os.environ, "PIP_FIND_LINKS": str(local)}
    assert "ectl-local-only" in _report(pypi_index, "ectl-local-only", env={**leaky, "PIP_CONFIG_FILE": os.devnull})
    r = _pip(pypi_index, "install", "--dry-run", "ectl-local-only", env=pip_env(base=leaky), check=False)
    assert r.returncode != 0 and "No matching distribution" in r.stderr
    conf = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=pip_env(base=leaky),
                          capture_output=True, text=True, timeout=60)
    lines = conf.stdout.splitlines()
    assert conf.returncode == 0 and all(line.startswith(":env:.") for line in lines), conf.stdout
    assert not any(k in conf.stdout for k in ("constraint", "find-links", "index-url")), conf.stdout


# -- the npm registry


def _npm(env, *args, cwd, check=True):
    r = subprocess.run(["npm", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture
def npm_work(tmp_path):
    if not shutil.which("npm"):
        pytest.fail("missing test tool npm: run .ci/run or apt-get install nodejs npm")
    (tmp_path / "proj").mkdir()
    return tmp_path


def test_npm_view_reads_the_packument(npm_registry, npm_work):
    env = npm_env(npm_work / "npm", npm_registry.url)
    view = json.loads(_npm(env, "view", "ectl-pad", "--json", cwd=npm_work).stdout)
    assert view["versions"] == ["1.0.0", "1.1.0"] and view["dist-tags"] == {"latest": "1.1.0"}
    assert view["dist"]["integrity"] == npm_registry.integrity("ectl-pad", "1.1.0")
    assert _npm(env, "view", "@ectl/util@1.0.0", "dist.shasum", cwd=npm_work).stdout.strip() == \
        hashlib.sha1(npm_registry.tarball("@ectl/util", "1.0.0").read_bytes()).hexdigest()


def test_npm_installs_with_bin_and_dependency_and_locks_integrity(npm_registry, npm_work):
    env = npm_env(npm_work / "npm", npm_registry.url)
    proj = npm_work / "proj"
    _npm(env, "install", "--prefix", str(proj), "ectl-hi", "@ectl/util", cwd=proj)
    r = subprocess.run([str(proj / "node_modules/.bin/ectl-hi")], capture_output=True, text=True, timeout=60)
    assert r.stdout == "hi from ectl-hi 1.0.0 (pad 1.1.0)\n", r.stderr
    lock = json.loads((proj / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/ectl-pad"]["integrity"] == npm_registry.integrity("ectl-pad", "1.1.0")
    assert lock["node_modules/ectl-pad"]["resolved"] == f"{npm_registry.url}ectl-pad/-/ectl-pad-1.1.0.tgz"
    assert npm_registry.server.count(".tgz") == 3


def test_npm_follows_publish_and_dist_tags(npm_registry, npm_work):
    env = npm_env(npm_work / "npm", npm_registry.url)
    npm_registry.publish(pad_package("1.2.0"))
    npm_registry.set_tag("ectl-pad", "latest", "1.0.0")
    npm_registry.remove("ectl-pad", "1.1.0")
    view = json.loads(_npm(env, "view", "ectl-pad", "--json", cwd=npm_work).stdout)
    assert view["versions"] == ["1.0.0", "1.2.0"] and view["version"] == "1.0.0"
    gone = _npm(env, "view", "ectl-pad@1.1.0", "version", cwd=npm_work, check=False)
    assert gone.returncode != 0 and "E404" in gone.stderr


def test_npm_rejects_a_tarball_that_does_not_match_its_integrity(npm_registry, npm_work):
    env = npm_env(npm_work / "npm", npm_registry.url)
    good = npm_registry.tarball("ectl-pad", "1.0.0").read_bytes()
    npm_registry.tamper("ectl-pad", "1.1.0", good)
    r = _npm(env, "install", "--prefix", str(npm_work / "proj"), "ectl-pad", cwd=npm_work / "proj", check=False)
    assert r.returncode != 0 and "EINTEGRITY" in r.stderr, r.stderr


def test_npm_env_hides_the_machine_npmrc(npm_registry, npm_work):
    env = npm_env(npm_work / "npm", npm_registry.url, base={**os.environ, "npm_config_registry": "http://127.0.0.9:9/"})
    out = _npm(env, "config", "get", "registry", cwd=npm_work).stdout.strip()
    assert out == npm_registry.url
    assert _npm(env, "config", "get", "omit-lockfile-registry-resolved", cwd=npm_work).stdout.strip() == "false"
