"""Registry client behaviour that a real registry cannot be made to show, on httpx.MockTransport:
scheme policy, retries and their bounds, redirects and Authorization, token caching and re-auth."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from engine.errors import RegistryError
from engine.sources.manifest import OCI_MANIFEST
from engine.sources.registry_config import RegistryConfig
from engine.sources.registry import RegistrySource, RetryPolicy
from specs.digest import Digest
from specs.reference import parse_reference

BODY = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                              "digest": "sha256:" + "c" * 64, "size": 2}, "layers": []}).encode()
FAST = RetryPolicy(attempts=3, max_seconds=5, base=0.001, max_sleep=2)


@pytest.fixture(autouse=True)
def no_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("ENVCTL_REGISTRIES_CONF", str(tmp_path / "none.conf"))
    monkeypatch.delenv("ENVCTL_REGISTRY_MIRRORS", raising=False)
    monkeypatch.delenv("ENVCTL_INSECURE_REGISTRIES", raising=False)


def source(ref: str, handler, policy=FAST) -> tuple[RegistrySource, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request):
        seen.append(request)
        return handler(request)

    return RegistrySource(parse_reference(ref), config=RegistryConfig.from_env(),
                          transport=httpx.MockTransport(record), policy=policy), seen


def ok(request):
    return httpx.Response(200, content=BODY, headers={"Content-Type": OCI_MANIFEST})


def test_remote_registry_is_https_only():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    src, seen = source("registry.example/a/b:1", refuse)
    with pytest.raises(RegistryError, match="cannot reach registry registry.example for tag '1': connection refused"):
        src.get_manifest()
    assert len(seen) == 3 and {r.url.scheme for r in seen} == {"https"}


def test_loopback_falls_back_to_plain_http_once():
    def handler(request):
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER]", request=request)
        return ok(request)

    src, seen = source("127.0.0.1:5000/a:1", handler)
    assert src.get_manifest() == (BODY, OCI_MANIFEST)
    src.get_manifest(Digest.from_bytes(BODY))
    assert [r.url.scheme for r in seen] == ["https", "http", "http"]
    assert src.requests == 2


def test_retry_after_http_date_and_bounds():
    answers = iter([httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                    httpx.Response(429), None])

    def handler(request):
        r = next(answers)
        return r if r is not None else ok(request)

    progress = []
    src = RegistrySource(parse_reference("reg.example/a:1"), config=RegistryConfig.from_env(), policy=FAST,
                         transport=httpx.MockTransport(handler), progress=progress.append)
    assert src.get_manifest()[0] == BODY
    assert [m.split(";")[0] for m in progress] == ["reg.example: HTTP 503", "reg.example: HTTP 429"]


def test_not_retried_on_404_or_401():
    src, seen = source("reg.example/a:1", lambda r: httpx.Response(
        404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}))
    with pytest.raises(RegistryError, match="tag '1' not found in reg.example/a"):
        src.get_manifest()
    assert [r.url.path for r in seen] == ["/v2/a/manifests/1", "/v2/a/tags/list"]


def token_server(tokens_issued: list, valid: set, expire_first=False):
    """A registry + token realm on reg.example with a blob redirect to storage.example."""

    def handler(request: httpx.Request):
        if request.url.host == "auth.example":
            tokens_issued.append(request)
            tok = f"tok{len(tokens_issued)}"
            valid.add(tok)
            return httpx.Response(200, json={"token": tok})
        if request.url.host == "storage.example":
            return httpx.Response(200, content=b"{}")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in valid:
            return httpx.Response(401, headers={"WWW-Authenticate":
                                                'Bearer realm="https://auth.example/token",service="reg",'
                                                'scope="repository:a/b:pull"'})
        if expire_first and auth == "Bearer tok1" and "/blobs/" in request.url.path:
            valid.discard("tok1")
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example/token"'})
        if "/blobs/" in request.url.path:
            return httpx.Response(307, headers={"Location": "https://storage.example/blob?sig=1"})
        return ok(request)

    return handler


def test_token_cached_per_scope_and_not_sent_to_blob_storage():
    issued, valid = [], set()
    src, seen = source("reg.example/a/b:1", token_server(issued, valid))
    src.get_manifest()
    src.get_manifest(Digest.from_bytes(BODY))
    with src.open_blob(Digest.from_bytes(b"{}")) as f:
        assert f.read() == b"{}"
    assert len(issued) == 1
    assert dict(httpx.QueryParams(issued[0].url.query)) == {"service": "reg", "scope": "repository:a/b:pull"}
    storage = [r for r in seen if r.url.host == "storage.example"]
    assert len(storage) == 1 and "Authorization" not in storage[0].headers
    blob = [r for r in seen if "/blobs/" in r.url.path]
    assert blob[-1].headers["Authorization"] == "Bearer tok1"


def test_expired_token_reauthenticates_once():
    issued, valid = [], set()
    src, seen = source("reg.example/a/b:1", token_server(issued, valid, expire_first=True))
    src.get_manifest()
    with src.open_blob(Digest.from_bytes(b"{}")) as f:
        assert f.read() == b"{}"
    assert len(issued) == 2


def test_token_credentials_from_docker_config(tmp_path):
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps(
        {"auths": {"https://reg.example/v1/": {"auth": base64.b64encode(b"u:p").decode()}}}))
    issued, valid = [], set()
    src, _ = source("reg.example/a/b:1", token_server(issued, valid))
    src.get_manifest()
    assert issued[0].headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_redirect_downgrade_to_http_refused():
    def handler(request):
        return httpx.Response(302, headers={"Location": "http://cdn.example/x"})

    src, _ = source("reg.example/a:1", handler)
    with pytest.raises(RegistryError, match="redirected to insecure http://cdn.example; refused"):
        src.get_manifest()


def test_basic_challenge(tmp_path):
    (tmp_path / "run" / "containers").mkdir(parents=True)
    (tmp_path / "run" / "containers" / "auth.json").write_text(json.dumps(
        {"auths": {"reg.example/a": {"auth": base64.b64encode(b"u:p").decode()}}}))

    def handler(request):
        if request.headers.get("Authorization") == "Basic " + base64.b64encode(b"u:p").decode():
            return ok(request)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    src, seen = source("reg.example/a:1", handler)
    src.get_manifest()
    src.get_manifest(Digest.from_bytes(BODY))
    assert len(seen) == 3   # one challenge, then Basic sent up front
