"""Credential lookup and storage (engine/sources/auth.py): docker config, containers auth files, helpers."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from engine.sources.auth import (Credentials, erase_credentials, lookup_credentials, parse_www_authenticate,
                         store_credentials)
from engine.errors import RegistryError


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    (tmp_path / "docker").mkdir()
    (tmp_path / "run" / "containers").mkdir(parents=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return {"docker": tmp_path / "docker" / "config.json", "containers": tmp_path / "run" / "containers" / "auth.json",
            "bin": bindir, "tmp": tmp_path}


def helper(bindir, name, log):
    """A docker-credential-NAME that stores in a JSON file next to ``log``."""
    p = bindir / f"docker-credential-{name}"
    p.write_text(f"""#!/usr/bin/env python3
import json, sys, os
db = {str(log)!r} + ".db"
data = json.load(open(db)) if os.path.exists(db) else {{}}
arg = sys.stdin.read().strip()
open({str(log)!r}, "a").write(sys.argv[1] + " " + (arg if sys.argv[1] != "store" else json.loads(arg)["ServerURL"]) + "\\n")
if sys.argv[1] == "get":
    if arg not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({{"ServerURL": arg, "Username": data[arg][0], "Secret": data[arg][1]}}))
elif sys.argv[1] == "store":
    d = json.loads(arg); data[d["ServerURL"]] = [d["Username"], d["Secret"]]; json.dump(data, open(db, "w"))
elif sys.argv[1] == "erase":
    data.pop(arg, None); json.dump(data, open(db, "w"))
""")
    p.chmod(0o755)


def test_docker_hub_key_and_precedence(files):
    files["docker"].write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hub:pw")},
        "ghcr.io": {"auth": b64("gh:pw:with:colons")}}}))
    assert lookup_credentials("docker.io") == Credentials("hub", "pw")
    assert lookup_credentials("index.docker.io") == Credentials("hub", "pw")
    assert lookup_credentials("ghcr.io") == Credentials("gh", "pw:with:colons")
    assert lookup_credentials("quay.io") is None
    # the containers auth file wins, and per-repository keys win over the registry's
    files["containers"].write_text(json.dumps({"auths": {"ghcr.io": {"auth": b64("c:1")},
                                                         "ghcr.io/org": {"auth": b64("org:2")}}}))
    assert lookup_credentials("ghcr.io") == Credentials("c", "1")
    assert lookup_credentials("ghcr.io", "org/app") == Credentials("org", "2")
    assert "pw" not in repr(lookup_credentials("docker.io"))


def test_helpers_and_store_erase(files):
    log = files["tmp"] / "helper.log"
    helper(files["bin"], "fake", log)
    files["docker"].write_text(json.dumps({"credsStore": "fake"}))
    assert lookup_credentials("reg.example") is None
    assert store_credentials("docker.io", Credentials("u", "p")) == "docker-credential-fake"
    assert lookup_credentials("docker.io") == Credentials("u", "p")
    assert erase_credentials("docker.io")
    assert lookup_credentials("docker.io") is None
    assert log.read_text().splitlines() == ["get reg.example", "store https://index.docker.io/v1/",
                                            "get https://index.docker.io/v1/", "erase https://index.docker.io/v1/",
                                            "get https://index.docker.io/v1/"]


def test_store_to_file(files):
    files["docker"].write_text(json.dumps({"auths": {"https://reg.example/v1/": {"auth": b64("old:x")}},
                                           "other": {"kept": True}}))
    assert store_credentials("reg.example", Credentials("new", "y")) == str(files["docker"])
    doc = json.loads(files["docker"].read_text())
    assert doc["auths"] == {"reg.example": {"auth": b64("new:y")}} and doc["other"] == {"kept": True}
    assert stat.S_IMODE(files["docker"].stat().st_mode) == 0o600
    assert erase_credentials("reg.example") and not erase_credentials("reg.example")


def test_broken_files_and_helpers(files):
    files["docker"].write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read credentials file"):
        lookup_credentials("reg.example")
    files["docker"].write_text(json.dumps({"credHelpers": {"reg.example": "missing"}}))
    with pytest.raises(RegistryError, match="docker-credential-missing is not installed"):
        lookup_credentials("reg.example")


def test_parse_www_authenticate():
    assert parse_www_authenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                                  'scope="repository:library/debian:pull,push"') == (
        "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                   "scope": "repository:library/debian:pull,push"})
    assert parse_www_authenticate('Basic realm="x"') == ("basic", {"realm": "x"})
