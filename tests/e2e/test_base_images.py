"""scripts/registry and scripts/base-images against a real loopback docker-registry."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
import urllib.request

import pytest

from tests.e2e.conftest import run_script
from tests.fixtures.registry import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.registry]


def skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=120).stdout


def test_registry_script_is_idempotent(tmp_path):
    port, state = str(free_port()), str(tmp_path / "reg")
    assert run_script("registry", "status", "--state", state).returncode == 3
    first = run_script("registry", "start", "--port", port, "--state", state)
    try:
        assert first.returncode == 0 and "registry started" in first.stdout, first.stderr
        again = run_script("registry", "start", "--port", port, "--state", state)
        assert again.returncode == 0 and "already running" in again.stdout
        assert run_script("registry", "status", "--state", state).returncode == 0
        other = run_script("registry", "start", "--port", str(free_port()), "--state", state)
        assert other.returncode == 1 and "already running on port" in other.stderr
    finally:
        stop = run_script("registry", "stop", "--state", state)
    assert stop.returncode == 0 and "registry stopped" in stop.stdout
    assert "not running" in run_script("registry", "stop", "--state", state).stdout
    assert run_script("registry", "status", "--state", state).returncode == 3


@pytest.mark.parametrize("tag", ["bookworm", "bookworm-slim"])
def test_pushed_image_is_a_one_layer_debian_index(base_registry, tag):
    ref = f"docker://{base_registry.host}/library/debian:{tag}"
    index = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", ref))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"]["os"] for m in index["manifests"]] == ["linux"]
    info = json.loads(skopeo("inspect", "--tls-verify=false", ref))
    assert info["Os"] == "linux" and info["Architecture"] == host_arch()
    assert len(info["Layers"]) == 1
    digest = re.search(rf"(?:built|cached) {tag}: index (sha256:[0-9a-f]{{64}})", base_registry.build_output)
    assert digest and info["Digest"] == digest.group(1)
    config = json.loads(skopeo("inspect", "--config", "--tls-verify=false", ref))
    assert config["config"]["Cmd"] == ["bash"]
    assert config["rootfs"]["diff_ids"] and config["created"].endswith("Z")


def test_slim_is_smaller_and_has_no_docs(base_registry):
    sizes = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"(?:built|cached) (\S+): .* (\d+) entries", base_registry.build_output)}
    assert sizes["bookworm-slim"] < sizes["bookworm"] * 0.8
    names = layer_names(base_registry.host, "bookworm-slim")
    assert "./usr/bin/apt-get" in names and "./usr/share/doc/apt/copyright" in names
    assert "./usr/sbin/policy-rc.d" in names                                     # no service starts
    docs = [n for n in names if n.startswith(("./usr/share/doc/", "./usr/share/man/", "./usr/share/locale/"))
            and not n.endswith(("/", "/copyright", "locale.alias"))]
    assert docs == []
    assert not [n for n in names if n.startswith("./dev/") and n != "./dev/"]   # no device nodes


def layer_names(host: str, tag: str) -> set[str]:
    """Entry names of the single layer of library/debian:TAG, read from the registry."""
    manifest = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                                 f"docker://{host}/library/debian:{tag}"))
    if "manifests" in manifest:
        manifest = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                                     f"docker://{host}/library/debian@{manifest['manifests'][0]['digest']}"))
    url = f"http://{host}/v2/library/debian/blobs/{manifest['layers'][0]['digest']}"
    with urllib.request.urlopen(url, timeout=60) as resp, tarfile.open(fileobj=resp, mode="r|gz") as tar:
        return {m.name + "/" if m.isdir() else m.name for m in tar}


def test_second_run_is_cached_and_fast(base_registry):
    started = time.monotonic()
    r = run_script("base-images", "--registry", base_registry.host)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert "building" not in r.stdout
    for tag in ("bookworm", "bookworm-slim"):
        assert f"cached {tag}:" in r.stdout
        assert f"up to date {base_registry.host}/library/debian:{tag}" in r.stdout
    assert elapsed < 15, f"cached run took {elapsed:.1f}s"


def host_arch() -> str:
    machine = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
