"""Export and push a built environment; skopeo and podman (independent clients) read and run it."""

import json
import os
import shutil
import subprocess

import pytest

from engine.build.steps import build_steps
from engine.publish.export import Blob, assemble_image, write_docker_archive, write_oci_layout
from engine.publish.push import push_image
from engine.store.cas import Store
from specs.model import Step
from tests.fixtures.build_env import ChrootExecutor, base_image, host_arch, install_base

pytestmark = [pytest.mark.needs_root, pytest.mark.registry]
if os.geteuid() != 0:
    pytest.skip("overlay mounts for the chroot executor need root", allow_module_level=True)

SPEC_DIGEST = "sha256:" + "5" * 64
STEPS = (Step("run", run="echo built-by-envctl > /etc/motd && rm /etc/removeme"),
         Step("env", env=(("GREETING", "hi"),)),
         Step("run", run="mkdir -p /workspace && echo $GREETING > /workspace/hello"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    store = Store(root / "store")
    diff_ids, config = install_base(store)
    (root / "proj").mkdir()
    result = build_steps(STEPS, store=store, base_diff_ids=diff_ids, image_config=config, spec_env={},
                         project_root=root / "proj", executor=ChrootExecutor())
    base_cfg, base_layers = base_image(store)
    steps = [Blob(l.digest, l.size, l.media_type, l.diff_id) for l in result.layers]
    parts = assemble_image(base_cfg, base_layers, steps, step_history=["run 1", "run 3"],
                           env=list(result.context.env), workdir="/workspace", user=None, shell="/bin/sh",
                           spec_digest=SPEC_DIGEST, base_name="example.test/busybox:1",
                           base_digest="sha256:" + "6" * 64, platform=f"linux/{host_arch()}")
    return store, parts, root


def skopeo(*args):
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True, timeout=120).stdout


def test_assembled_config(built):
    store, parts, _ = built
    cfg = json.loads(parts.config)
    assert cfg["config"]["Cmd"] == ["/bin/sh"] and "Entrypoint" not in cfg["config"]
    assert cfg["config"]["WorkingDir"] == "/workspace"
    assert "GREETING=hi" in cfg["config"]["Env"]
    assert cfg["config"]["Labels"]["dev.envctl.spec.digest"] == SPEC_DIGEST
    assert len(cfg["rootfs"]["diff_ids"]) == 3 == len(json.loads(parts.manifest)["layers"])


def test_export_oci_layout_and_docker_archive(built, tmp_path):
    store, parts, _ = built
    d = write_oci_layout(parts, store, tmp_path / "oci", tag="dev")
    info = json.loads(skopeo("inspect", f"oci:{tmp_path / 'oci'}:dev"))
    assert info["Digest"] == str(d) and info["Labels"]["dev.envctl.spec.digest"] == SPEC_DIGEST
    # the layout's manifest is byte-identical when exported again
    d2 = write_oci_layout(parts, store, tmp_path / "oci2", tag="dev")
    assert d2 == d
    write_docker_archive(parts, store, tmp_path / "env.tar", "localhost/envctl-test:dev")
    cfg = json.loads(skopeo("inspect", "--config", f"docker-archive:{tmp_path / 'env.tar'}"))
    assert cfg["rootfs"]["diff_ids"] == json.loads(parts.config)["rootfs"]["diff_ids"]
    # skopeo copies it into a layout and every blob verifies
    skopeo("copy", "-q", f"docker-archive:{tmp_path / 'env.tar'}", f"oci:{tmp_path / 'copy'}:x")


def test_push_then_skopeo_and_podman_run(built, registry, tmp_path):
    store, parts, _ = built
    digest, stats = push_image(parts, store, registry.host, "envctl/pushed", "v1", chunk_size=1 << 20)
    assert len(stats.uploaded) == 4 and not stats.existing  # 3 layers + config
    info = registry.skopeo_inspect("envctl/pushed", "v1")
    assert info["Digest"] == str(digest)
    # a second push sends nothing but the manifest
    digest2, stats2 = push_image(parts, store, registry.host, "envctl/pushed", "v2")
    assert digest2 == digest and len(stats2.existing) == 4 and stats2.bytes_sent == 0
    # another repository on the same registry: blobs are mounted, not uploaded
    _, stats3 = push_image(parts, store, registry.host, "envctl/other", "v1", mount_from=("envctl/pushed",))
    assert len(stats3.mounted) == 4 and stats3.bytes_sent == 0
    if not shutil.which("podman"):
        pytest.fail("podman is missing: apt-get install podman (.ci/run installs it)")
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="envctl-pm-"))  # podman wants a runroot under 50 chars
    base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"), "--cgroup-manager",
            "cgroupfs", "--events-backend", "file", "--storage-driver", "vfs",
            "--runtime", "runc"]  # crun 1.8 refuses hybrid cgroups; podman prefers crun when installed
    p = subprocess.run([*base, "run", "--rm", "--tls-verify=false", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                        f"{registry.host}/envctl/pushed:v1", "sh", "-c",
                        "cat /etc/motd /workspace/hello; pwd; test ! -e /etc/removeme && echo gone"],
                       capture_output=True, text=True, timeout=180)
    try:
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == ["built-by-envctl", "hi", "/workspace", "gone"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_chunked_upload(built, registry):
    store, parts, _ = built
    big = max(parts.layers, key=lambda b: b.size)
    digest, stats = push_image(parts, store, registry.host, "envctl/chunked", "v1", chunk_size=64 << 10)
    assert stats.chunks >= big.size // (64 << 10)
    assert registry.skopeo_inspect("envctl/chunked", "v1")["Digest"] == str(digest)


def test_push_with_basic_auth(built, auth_registry, tmp_path, monkeypatch):
    store, parts, _ = built
    from engine.errors import RegistryError

    with pytest.raises(RegistryError, match="requires credentials|login"):
        push_image(parts, store, auth_registry.host, "envctl/authed", "v1")
    auth = {"auths": {auth_registry.host: {"auth": __import__("base64").b64encode(
        f"{auth_registry.username}:{auth_registry.password}".encode()).decode()}}}
    (tmp_path / "auth.json").write_text(json.dumps(auth))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    digest, _ = push_image(parts, store, auth_registry.host, "envctl/authed", "v1")
    assert auth_registry.skopeo_inspect("envctl/authed", "v1")["Digest"] == str(digest)
