"""Registry authentication: credential files and helpers, and the httpx bearer/basic flow.

Credentials are looked up the way podman/skopeo and docker do, first hit wins:

1. ``$REGISTRY_AUTH_FILE`` (containers-auth.json(5)), else ``$XDG_RUNTIME_DIR/containers/auth.json``;
2. ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``): ``credHelpers[registry]``
   (runs ``docker-credential-NAME get``), then ``auths[registry]``, then ``credsStore``.

Keys may be ``host``, ``https://host/v1/`` or (containers) ``host/namespace/repo``; docker.io is
also ``https://index.docker.io/v1/``. Credentials are only read after a registry asks (401).

:class:`RegistryAuth` implements the distribution token protocol (docker "Token Authentication
Specification"): on ``401`` with ``WWW-Authenticate: Bearer realm=..,service=..,scope=..`` it asks
the realm for a token (with Basic credentials when it has some, anonymously otherwise), caches it
per (realm, service, scope), and retries once; ``Basic`` challenges are answered with the
credentials. Secrets never appear in messages.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from engine.errors import RegistryError
from engine.sources.registry_config import canonical_host

__all__ = ["Credentials", "RegistryAuth", "lookup_credentials", "auth_file_for_write",
           "store_credentials", "erase_credentials", "parse_www_authenticate"]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_REPO_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)/")
_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Credentials:
    """A username and secret (password or token) for one registry; ``repr`` hides the secret."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"

    def basic(self) -> str:
        """The ``Authorization: Basic ...`` header value."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _key_host(key: str) -> str:
    """Normalise an auth-file key to ``host[/path]`` with docker.io canonical."""
    key = key.split("://", 1)[-1].rstrip("/")
    host, sep, rest = key.partition("/")
    if rest in ("v1", "v2"):
        rest, sep = "", ""
    return canonical_host(host) + sep + rest


def _docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def _containers_auth_path() -> Path | None:
    if v := os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(v)
    if v := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(v) / "containers" / "auth.json"
    return None


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise RegistryError(f"cannot read credentials file {path}: {e}",
                            hint="fix or remove the file, then run 'envctl login' again") from None
    return doc if isinstance(doc, dict) else {}


def _from_auths(auths: dict, wanted: list[str], path: Path) -> Credentials | None:
    by_key = {_key_host(k): v for k, v in auths.items() if isinstance(v, dict)}
    for name in wanted:
        entry = by_key.get(name)
        if not entry:
            continue
        if entry.get("auth"):
            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(f"credentials for {name} in {path} are not valid base64 user:password") from None
            return Credentials(user, pw)
        if entry.get("username") and entry.get("password"):
            return Credentials(entry["username"], entry["password"])
    return None


def _run_helper(helper: str, action: str, data: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([f"docker-credential-{helper}", action], input=data, capture_output=True,
                              text=True, timeout=30)
    except FileNotFoundError:
        raise RegistryError(f"credential helper docker-credential-{helper} is not installed",
                            hint="install it or remove it from ~/.docker/config.json") from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"credential helper docker-credential-{helper} timed out") from None


def _helper_get(helper: str, registry: str) -> Credentials | None:
    server = DOCKER_HUB_KEY if registry == "docker.io" else registry
    p = _run_helper(helper, "get", server)
    if p.returncode != 0:
        if "not found" in (p.stdout + p.stderr).lower():
            return None
        raise RegistryError(f"credential helper docker-credential-{helper} failed for {registry}: "
                            f"{(p.stderr or p.stdout).strip().splitlines()[-1:] or ['exit ' + str(p.returncode)]}")
    try:
        doc = json.loads(p.stdout)
        return Credentials(doc["Username"], doc["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"credential helper docker-credential-{helper} printed no credentials for {registry}") from None


def lookup_credentials(registry: str, repository: str | None = None) -> Credentials | None:
    """Credentials for ``registry`` (and optionally a repository, for per-namespace keys), or None.

    Raises:
        RegistryError: an unreadable auth file or a failing credential helper.
    """
    registry = canonical_host(registry)
    wanted = []
    if repository:
        parts = repository.split("/")
        wanted += [f"{registry}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)]
    wanted.append(registry)
    if (cpath := _containers_auth_path()) is not None:
        if creds := _from_auths(_read_json(cpath).get("auths") or {}, wanted, cpath):
            return creds
    dpath = _docker_config_path()
    doc = _read_json(dpath)
    helpers = {_key_host(k): v for k, v in (doc.get("credHelpers") or {}).items()}
    if registry in helpers:
        return _helper_get(helpers[registry], registry)
    if creds := _from_auths(doc.get("auths") or {}, wanted, dpath):
        return creds
    if doc.get("credsStore"):
        return _helper_get(doc["credsStore"], registry)
    return None


def auth_file_for_write() -> Path:
    """The file ``envctl login`` writes: ``$REGISTRY_AUTH_FILE`` if set, else docker's config.json."""
    if v := os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(v)
    return _docker_config_path()


def _write_json_atomic(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc, indent="\t") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _auth_key(registry: str) -> str:
    return DOCKER_HUB_KEY if registry == "docker.io" else registry


def store_credentials(registry: str, creds: Credentials) -> str:
    """Save ``creds`` for ``registry`` like ``docker login``: a configured helper, else ``auths``.

    Returns:
        Where they went (a file path, or ``docker-credential-NAME``).
    """
    registry = canonical_host(registry)
    path = auth_file_for_write()
    doc = _read_json(path)
    helper = {_key_host(k): v for k, v in (doc.get("credHelpers") or {}).items()}.get(registry) \
        or doc.get("credsStore")
    if helper:
        payload = json.dumps({"ServerURL": _auth_key(registry), "Username": creds.username, "Secret": creds.password})
        p = _run_helper(helper, "store", payload)
        if p.returncode != 0:
            raise RegistryError(f"credential helper docker-credential-{helper} could not store credentials for {registry}")
        return f"docker-credential-{helper}"
    auths = doc.setdefault("auths", {})
    for k in [k for k in auths if _key_host(k) == registry]:
        del auths[k]
    auths[_auth_key(registry)] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    _write_json_atomic(path, doc)
    return str(path)


def erase_credentials(registry: str) -> bool:
    """Remove saved credentials for ``registry`` (file entry and helper). True when something was removed."""
    registry = canonical_host(registry)
    path = auth_file_for_write()
    doc = _read_json(path)
    removed = False
    auths = doc.get("auths") or {}
    for k in [k for k in auths if _key_host(k) == registry]:
        del auths[k]
        removed = True
    if removed:
        _write_json_atomic(path, doc)
    helper = {_key_host(k): v for k, v in (doc.get("credHelpers") or {}).items()}.get(registry) \
        or doc.get("credsStore")
    if helper:
        removed = _run_helper(helper, "erase", _auth_key(registry)).returncode == 0 or removed
    return removed


def parse_www_authenticate(value: str) -> tuple[str, dict[str, str]]:
    """Parse a ``WWW-Authenticate`` header into (lowercase scheme, params dict)."""
    scheme, _, rest = value.strip().partition(" ")
    params = {}
    for m in _PARAM.finditer(rest):
        params[m.group(1).lower()] = m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
    return scheme.lower(), params


class RegistryAuth(httpx.Auth):
    """httpx auth flow for one registry host (token cache per realm/service/scope).

    Args:
        registry: registry name for credential lookup and messages (``docker.io``, ``host:port``).
        credentials: explicit credentials (``envctl login``), else looked up on the first challenge.
    """

    def __init__(self, registry: str, credentials: Credentials | None = None):
        self.registry = registry
        self._creds = credentials
        self._looked_up = credentials is not None
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._scope_key: dict[str, tuple[str, str, str]] = {}
        self._basic = False
        self.token_requests = 0

    def credentials(self, repository: str | None = None) -> Credentials | None:
        """The credentials in use (looked up once, lazily)."""
        if not self._looked_up:
            self._creds = lookup_credentials(self.registry, repository)
            self._looked_up = True
        return self._creds

    @staticmethod
    def scope_for(request: httpx.Request) -> str:
        """The pull scope a request needs (``repository:NAME:pull``), or ``""`` for /v2/."""
        m = _REPO_PATH.match(request.url.path)
        return f"repository:{m.group(1)}:pull" if m else ""

    def _cached(self, scope: str) -> str | None:
        key = self._scope_key.get(scope)
        if key and (entry := self._tokens.get(key)) and entry[1] > time.monotonic():
            return entry[0]
        return None

    def auth_flow(self, request: httpx.Request):
        """httpx.Auth flow (a generator of requests): known Basic credentials or a cached bearer
        token first; on 401, answer the ``WWW-Authenticate`` challenge once: Basic with the saved
        credentials, or a token from the Bearer realm (distribution spec, token authentication;
        the credentials sent to the realm when there are any) and resend.

        Args: ``request`` (httpx.Request). Yields httpx.Request; receives httpx.Response.
        Raises RegistryError (engine.errors) when the token server refuses or answers badly.
        """
        scope = self.scope_for(request)
        repo = scope.split(":")[1] if scope else None
        if self._basic and self.credentials(repo):
            request.headers["Authorization"] = self.credentials(repo).basic()
        elif tok := self._cached(scope):
            request.headers["Authorization"] = f"Bearer {tok}"
        response = yield request
        if response.status_code != 401:
            return
        scheme, params = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
        creds = self.credentials(repo)
        if scheme == "basic":
            if creds is None or self._basic and "Authorization" in request.headers:
                return
            self._basic = True
            request.headers["Authorization"] = creds.basic()
            yield request
            return
        if scheme != "bearer" or not params.get("realm"):
            return
        key = (params["realm"], params.get("service", ""), params.get("scope") or scope)
        token_response = yield self._token_request(key, creds)
        token = self._store_token(key, token_response, creds)
        self._scope_key[scope] = key
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def _token_request(self, key, creds: Credentials | None) -> httpx.Request:
        realm, service, scope = key
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers = {"Authorization": creds.basic()} if creds else {}
        self.token_requests += 1
        return httpx.Request("GET", realm, params=params, headers=headers)

    def _store_token(self, key, response: httpx.Response, creds: Credentials | None) -> str:
        response.read()
        if response.status_code in (401, 403):
            if creds is None:
                raise RegistryError(f"registry {self.registry} requires credentials", status=401,
                                    hint=f"run 'envctl login {self.registry}'")
            raise RegistryError(f"authentication to {self.registry} failed: the credentials for user "
                                f"{creds.username!r} were rejected", status=401,
                                hint=f"run 'envctl login {self.registry}' with the right password")
        if response.status_code != 200:
            raise RegistryError(f"token server {response.request.url.host} for {self.registry} answered "
                                f"HTTP {response.status_code}", status=response.status_code,
                                temporary=response.status_code >= 500 or response.status_code == 429)
        try:
            doc = response.json()
            token = doc.get("token") or doc.get("access_token")
            expires = int(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token server for {self.registry} answered without a token")
        self._tokens[key] = (token, time.monotonic() + max(expires - 10, 5))
        return token
