"""Mirrors and insecure registries (engine/sources/registry_config.py)."""

from __future__ import annotations

import pytest

from engine.sources.registry_config import Endpoint, RegistryConfig, is_loopback
from specs.errors import UsageError


@pytest.mark.parametrize("host,loop", [
    ("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:5000", True), ("[::1]:5000", True),
    ("::1", True), ("registry.localhost", True), ("10.0.0.1:5000", False), ("example.com", False),
])
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_env_mirrors_for_docker_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("ENVCTL_REGISTRIES_CONF", str(tmp_path / "none.conf"))
    monkeypatch.setenv("ENVCTL_REGISTRY_MIRRORS", "docker.io=https://mirror.gcr.io,http://10.0.0.5:5000/hub ; quay.io=q.example")
    monkeypatch.setenv("ENVCTL_INSECURE_REGISTRIES", "reg.internal:5000")
    cfg = RegistryConfig.from_env()
    assert cfg.endpoints("docker.io", "library/debian") == [
        Endpoint("mirror.gcr.io", "library/debian", False, True),
        Endpoint("10.0.0.5:5000", "hub/library/debian", True, True),
        Endpoint("registry-1.docker.io", "library/debian", False, False),
    ]
    assert cfg.endpoints("index.docker.io", "library/debian")[0].host == "mirror.gcr.io"
    assert cfg.endpoints("ghcr.io", "o/r") == [Endpoint("ghcr.io", "o/r", False, False)]
    assert cfg.endpoints("reg.internal:5000", "x") == [Endpoint("reg.internal:5000", "x", True, False)]
    assert cfg.endpoints("127.0.0.1:5000", "x")[0].insecure


def test_registries_conf_longest_prefix(monkeypatch, tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text("""
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "all.example"

[[registry]]
prefix = "docker.io/library"
insecure = false
[[registry.mirror]]
location = "lib.example/official"
insecure = true
""")
    monkeypatch.setenv("ENVCTL_REGISTRIES_CONF", str(conf))
    monkeypatch.delenv("ENVCTL_REGISTRY_MIRRORS", raising=False)
    cfg = RegistryConfig.from_env()
    assert cfg.endpoints("docker.io", "library/debian")[0] == Endpoint("lib.example", "official/debian", True, True)
    assert cfg.endpoints("docker.io", "someone/app")[0] == Endpoint("all.example", "someone/app", False, True)


@pytest.mark.parametrize("value", ["docker.io", "=http://x", "docker.io="])
def test_bad_env_mirrors(monkeypatch, tmp_path, value):
    monkeypatch.setenv("ENVCTL_REGISTRIES_CONF", str(tmp_path / "none.conf"))
    monkeypatch.setenv("ENVCTL_REGISTRY_MIRRORS", value)
    with pytest.raises(UsageError, match="ENVCTL_REGISTRY_MIRRORS"):
        RegistryConfig.from_env()


def test_bad_conf(monkeypatch, tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text("[[registry]\n")
    monkeypatch.setenv("ENVCTL_REGISTRIES_CONF", str(conf))
    with pytest.raises(UsageError, match="cannot read registry config"):
        RegistryConfig.from_env()
