"""Network faults between envctl and a real registry (fault-injecting loopback proxy), and mirrors."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.registry import free_port
from tests.integration.test_lock import lock_json, write_spec
from tests.integration.test_lock_errors import one_error

pytestmark = [pytest.mark.registry]


def locked(run_envctl, proj, *args, env=None):
    r = run_envctl("lock", *args, cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    return r


def hits(proxy, pattern: str) -> int:
    import re

    return sum(1 for s in proxy.requests if re.search(pattern, s.path))


def test_429_then_200_honours_retry_after(test_images, registry_proxy, run_envctl, tmp_path):
    proxy = registry_proxy()
    proxy.add_fault(r"/manifests/v1$", "status", status=429, headers={"Retry-After": "1"})
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/multi:v1")
    t0 = time.monotonic()
    r = locked(run_envctl, proj)
    assert time.monotonic() - t0 >= 1.0
    assert "HTTP 429; retrying in 1.0s (attempt 2/4)" in r.stderr
    assert hits(proxy, r"/manifests/v1$") == 2
    assert lock_json(proj)["image"]["digest"] == test_images.descriptors["multi"]["digest"]


def test_503s_then_success(test_images, registry_proxy, run_envctl, tmp_path):
    proxy = registry_proxy()
    proxy.add_fault(r"/blobs/", "status", times=2, status=503)
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/busybox:single")
    locked(run_envctl, proj)
    assert hits(proxy, r"/blobs/") == 3


def test_503_forever_is_bounded(test_images, registry_proxy, run_envctl, tmp_path):
    proxy = registry_proxy()
    proxy.add_fault(r"/manifests/", "status", times=100, status=503)
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/busybox:single")
    one_error(run_envctl("lock", cwd=proj), 1, f"registry {proxy.host} answered HTTP 503")
    assert hits(proxy, r"/manifests/") == 4


def test_retry_after_beyond_budget_gives_up_at_once(test_images, registry_proxy, run_envctl, tmp_path):
    proxy = registry_proxy()
    proxy.add_fault(r"/manifests/", "status", times=100, status=429, headers={"Retry-After": "3600"})
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/busybox:single")
    one_error(run_envctl("lock", cwd=proj), 1, "HTTP 429", "beyond the retry budget")
    assert hits(proxy, r"/manifests/") == 1


@pytest.mark.parametrize("where", [r"/manifests/v1$", r"/blobs/"])
def test_truncated_body_is_retried(test_images, registry_proxy, run_envctl, tmp_path, where):
    proxy = registry_proxy()
    proxy.add_fault(where, "truncate")
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/multi:v1")
    locked(run_envctl, proj)
    assert hits(proxy, where) == 2
    if "blobs" in where:   # the config download resumed where it stopped
        assert [s.headers.get("Range") for s in proxy.requests if "/blobs/" in s.path] == [None, "bytes=259-"]
    assert lock_json(proj)["image"]["digest"] == test_images.descriptors["multi"]["digest"]


def test_cross_host_redirect_drops_the_token(test_images, registry_proxy, run_envctl, auth_env, tmp_path):
    proxy = registry_proxy(anonymous=True)
    proxy.add_fault(r"/blobs/", "redirect", times=10)
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/multi:v1", ("linux/amd64", "linux/arm64"))
    locked(run_envctl, proj)
    blob_requests = [s for s in proxy.requests if "/blobs/" in s.path]
    assert blob_requests and all(s.headers.get("Authorization", "").startswith("Bearer ") for s in blob_requests)
    assert len(proxy.redirected) == 2
    for s in proxy.redirected:
        assert s.host.startswith("localhost:")
        assert "Authorization" not in s.headers, s.headers


def test_mirror_for_docker_io_is_used(test_images, run_envctl, tmp_path):
    """docker.io references resolve through a mirror (dockerd registry-mirrors); the lock names docker.io."""
    reg = test_images.registry
    proj = tmp_path / "p"
    write_spec(proj, "envctl/multi:v1", ("linux/amd64", "linux/arm64"))
    r = locked(run_envctl, proj, env={"ENVCTL_REGISTRY_MIRRORS": f"docker.io=http://{reg.host}"})
    lock = lock_json(proj)
    assert lock["image"]["reference"] == "docker.io/envctl/multi:v1"
    assert lock["image"]["digest"] == test_images.descriptors["multi"]["digest"]
    assert "mirror" not in r.stderr


def test_failing_mirror_falls_back_to_origin(test_images, registry_proxy, run_envctl, tmp_path):
    proxy = registry_proxy()
    proj = tmp_path / "p"
    dead = f"127.0.0.1:{free_port()}"
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{proxy.host}"\n[[registry.mirror]]\nlocation = "{dead}"\n'
                    f'[[registry.mirror]]\nlocation = "{proxy.host}/nothing-here"\n')
    write_spec(proj, f"{proxy.host}/envctl/multi:v1")
    r = locked(run_envctl, proj, env={"ENVCTL_REGISTRIES_CONF": str(conf)})
    assert f"mirror {dead}: cannot reach registry {dead}" in r.stderr
    assert f"mirror {proxy.host}: repository nothing-here/envctl/multi not found" in r.stderr
    assert hits(proxy, r"^/v2/envctl/multi/manifests/v1$") == 1
    assert lock_json(proj)["image"]["reference"] == f"{proxy.host}/envctl/multi:v1"
