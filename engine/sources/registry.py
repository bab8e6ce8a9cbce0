"""Registry image source: an OCI distribution-spec v1.1 client on httpx.

* Manifests by tag or digest with ``Accept`` listing OCI index/manifest and Docker manifest
  list/schema 2 (schema 1 is never asked for and refused if served), capped at
  ``MAX_MANIFEST_BYTES``; bytes fetched by digest are verified, and ``Docker-Content-Digest``
  must match the body when a registry sends it.
* Auth via engine.sources.auth.RegistryAuth (bearer tokens per scope, Basic).
* Redirects followed by hand (up to 5): ``Authorization`` is only ever attached to requests to the
  registry's own host, never to blob storage on another host; no downgrade to plain http except
  towards loopback or insecure hosts.
* Retries with exponential backoff on connection errors, 429 and 5xx, honouring ``Retry-After``,
  bounded by ``RetryPolicy`` (attempts and total seconds).
* Plain http only for loopback hosts and registries listed as insecure (https is tried first);
  mirrors (engine.sources.registry_config) are tried before the origin and any mirror failure falls through.
"""

from __future__ import annotations

import email.utils
import io
import json
import random
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from engine.sources.auth import RegistryAuth
from engine.errors import BlobNotFound, DigestMismatch, EngineError, ManifestError, RegistryError
from engine.sources.manifest import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, parse_manifest
from engine.sources.registry_config import Endpoint, RegistryConfig, is_loopback
from specs.digest import Digest

__all__ = ["RegistrySource", "RetryPolicy", "RETRY_STATUSES"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    """Retry bounds: at most ``attempts`` tries within ``max_seconds``; sleeps ``base * 2**n``
    (jittered, capped at ``max_sleep``) unless the registry sends Retry-After (seconds or date)."""

    attempts: int = 4
    max_seconds: float = 30.0
    base: float = 0.25
    max_sleep: float = 10.0


def _retry_after(resp: httpx.Response) -> float | None:
    v = resp.headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(v).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low or "no address" in low:
        return "unknown host"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return text.splitlines()[0][:160]


class _Host:
    """HTTP access to one registry host: scheme choice, auth, redirects, retries, request count."""

    def __init__(self, host: str, insecure: bool, auth: RegistryAuth, policy: RetryPolicy,
                 progress: Callable[[str], None], counter: list[int], transport=None):
        self.host = host
        self.insecure = insecure
        self.auth = auth
        self.policy = policy
        self.progress = progress
        self.scheme = None if insecure else "https"
        self._counter = counter
        kwargs = {"transport": transport} if transport is not None else {}
        self.client = httpx.Client(verify=not insecure, follow_redirects=False,
                                   timeout=httpx.Timeout(30.0, connect=10.0),
                                   event_hooks={"response": [self._count]}, **kwargs)

    def _count(self, response: httpx.Response) -> None:
        self._counter[0] += 1

    def close(self) -> None:
        self.client.close()

    def _send_once(self, method: str, path: str, headers: dict) -> httpx.Response:
        if self.scheme is None:  # insecure/loopback: https first, plain http on a connect/TLS failure
            try:
                resp = self._send_following(method, f"https://{self.host}{path}", headers)
                self.scheme = "https"
                return resp
            except httpx.ConnectError:
                self.scheme = "http"
        return self._send_following(method, f"{self.scheme}://{self.host}{path}", headers)

    def _send_following(self, method: str, url: str, headers: dict) -> httpx.Response:
        origin = httpx.URL(url)
        req = self.client.build_request(method, url, headers=headers)
        resp = self.client.send(req, auth=self.auth, stream=True)
        for _ in range(_MAX_REDIRECTS):
            if resp.status_code not in _REDIRECTS or "Location" not in resp.headers:
                return resp
            target = resp.url.join(resp.headers["Location"])
            resp.close()
            same = (target.scheme, target.host, target.port) == (origin.scheme, origin.host, origin.port)
            if target.scheme != "https" and not (same or is_loopback(target.host)):
                raise RegistryError(f"registry {self.host} redirected to insecure {target.scheme}://{target.host}; refused")
            nmethod = method if resp.status_code in (307, 308) else "GET"
            clean = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            nreq = self.client.build_request(nmethod, target, headers=clean)
            # Authorization (added by the auth flow) only goes to the registry's own origin.
            resp = self.client.send(nreq, auth=self.auth if same else None, stream=True)
        resp.close()
        raise RegistryError(f"registry {self.host} redirected more than {_MAX_REDIRECTS} times for {origin.path}")

    def fetch(self, method: str, path: str, headers: dict, what: str, consume=None):
        """Send with retries. ``consume(resp)`` (run inside the retry loop, so a truncated body is
        retried) returns the result; without it the open streaming response is returned.

        Raises:
            RegistryError: unreachable after retries, or a final temporary status.
        """
        deadline = time.monotonic() + self.policy.max_seconds
        attempt = 0
        while True:
            attempt += 1
            delay = None
            try:
                resp = self._send_once(method, path, headers)
                if resp.status_code in RETRY_STATUSES:
                    delay = _retry_after(resp)
                    reason = f"HTTP {resp.status_code}"
                    error = RegistryError(f"registry {self.host} answered HTTP {resp.status_code} for {what}",
                                          status=resp.status_code, temporary=True,
                                          hint="the registry is busy or failing; try again later")
                    resp.close()
                elif consume is None or resp.status_code >= 400:
                    return resp
                else:
                    try:
                        return consume(resp)
                    finally:
                        resp.close()
            except httpx.TransportError as e:
                reason = _describe(e)
                error = RegistryError(f"cannot reach registry {self.host} for {what}: {reason}", temporary=True,
                                      hint="check the registry address and your network (mirrors and proxies too)")
            if delay is None:
                delay = min(self.policy.max_sleep, self.policy.base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            if attempt >= self.policy.attempts:
                raise error
            if delay > self.policy.max_sleep or time.monotonic() + delay > deadline:
                error.message += f" (retry asked after {delay:.0f}s, beyond the retry budget)"
                raise error
            self.progress(f"{self.host}: {reason}; retrying in {delay:.1f}s (attempt {attempt + 1}/{self.policy.attempts})")
            time.sleep(delay)


def _error_detail(resp: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of the first distribution-spec error in the body, or (None, None)."""
    try:
        if not resp.is_stream_consumed:   # error bodies are small: never read more than 64 KiB
            length = resp.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > 65536:
                return None, None
            resp.read()
        err = (json.loads(resp.content).get("errors") or [{}])[0]
        return err.get("code"), err.get("message")
    except (ValueError, AttributeError, IndexError, TypeError, httpx.HTTPError):
        return None, None


def _error_code(resp: httpx.Response) -> str | None:
    return _error_detail(resp)[0]


def _error_for(resp: httpx.Response, host: str, repository: str, what: str, auth: RegistryAuth) -> RegistryError:
    """A one-line RegistryError for a final >= 400 response."""
    code, detail = _error_detail(resp)
    status = resp.status_code
    where = f"{host}/{repository}"
    if status == 401:
        creds = auth.credentials(repository) if auth else None
        if creds:
            return RegistryError(f"authentication to {host} failed: the credentials for user {creds.username!r} "
                                 f"were rejected for {repository}", status=401, code=code,
                                 hint=f"run 'envctl login {host}' with the right password")
        return RegistryError(f"registry {host} requires credentials for {repository}", status=401, code=code,
                             hint=f"run 'envctl login {host}' (some registries answer so for a repository "
                                  "that does not exist, too)")
    if status == 403 or code == "DENIED":
        return RegistryError(f"access to {where} denied", status=status, code=code,
                             hint="check that your account may pull this repository")
    if status == 404 and code == "NAME_UNKNOWN":
        return RegistryError(f"repository {repository} not found on {host}", status=404, code=code,
                             hint="check the image name in envctl.yaml")
    if status == 404:
        cls = BlobNotFound if code == "BLOB_UNKNOWN" else RegistryError
        err = cls(f"{what} not found in {where}", hint="check the tag or digest in envctl.yaml")
        err.status, err.code, err.temporary = 404, code, False
        return err
    return RegistryError(f"registry {host} answered HTTP {status} for {what}" + (f": {detail}" if detail else ""),
                         status=status, code=code)


class _BlobStream(io.RawIOBase):
    """A streaming response as a readable file; transport errors become RegistryError."""

    def __init__(self, resp: httpx.Response, what: str, skip: int = 0):
        self._resp = resp
        # raw: no Content-Encoding decoding (the digest covers the bytes as stored)
        self._iter = iter([resp.content]) if resp.is_stream_consumed else resp.iter_raw()
        self._buf = b""
        self._what = what
        self._skip = skip

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                chunk = next(self._iter)
            except StopIteration:
                return 0
            except httpx.TransportError as e:
                raise RegistryError(f"download of {self._what} interrupted: {_describe(e)}", temporary=True) from None
            if self._skip:
                cut = min(self._skip, len(chunk))
                chunk, self._skip = chunk[cut:], self._skip - cut
            self._buf = chunk
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


class RegistrySource:
    """An ImageSource (engine/sources/source.py) for a ``docker://`` reference.

    Args:
        ref: specs.reference.ImageRef with transport ``docker``.
        progress: callable for one-line progress messages (retries, mirror fallbacks).
        config: RegistryConfig (default: from the environment and registries.conf).
        transport: an httpx transport (tests); default: real network.
        policy: RetryPolicy.
    """

    def __init__(self, ref, *, progress=None, config: RegistryConfig | None = None, transport=None,
                 policy: RetryPolicy | None = None):
        self.ref = ref
        self._progress = progress or (lambda msg: None)
        self._config = config or RegistryConfig.from_env()
        self._endpoints = self._config.endpoints(ref.registry, ref.repository)
        self._transport = transport
        self._policy = policy or RetryPolicy()
        self._hosts: dict[tuple[str, bool], _Host] = {}
        self._counter = [0]
        self._dead: set[Endpoint] = set()

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (tokens and redirects included)."""
        return self._counter[0]

    def _host(self, ep: Endpoint) -> _Host:
        key = (ep.host, ep.mirror)
        if key not in self._hosts:
            auth = RegistryAuth(ep.host if ep.mirror else self.ref.registry)
            policy = RetryPolicy(attempts=1) if ep.mirror else self._policy  # a failing mirror: next source
            self._hosts[key] = _Host(ep.host, ep.insecure, auth, policy, self._progress,
                                     self._counter, self._transport)
        return self._hosts[key]

    def _label(self, ep: Endpoint) -> str:
        """The registry name for messages: the mirror's host, or the reference's registry (docker.io)."""
        return ep.host if ep.mirror else self.ref.registry

    def _each_endpoint(self, fn):
        """Run ``fn(endpoint, host)`` on the mirrors, then the origin; a mirror's failure falls
        through (an unreachable mirror is skipped for the rest of this source's life)."""
        for ep in self._endpoints:
            if ep in self._dead:
                continue
            try:
                return fn(ep, self._host(ep))
            except EngineError as e:
                if not ep.mirror:
                    raise
                if isinstance(e, RegistryError) and e.temporary and e.status is None:
                    self._dead.add(ep)
                self._progress(f"mirror {ep.host}: {e.message}; trying the next source")
        raise AssertionError("unreachable: the origin is always the last endpoint")

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        """See ImageSource.get_manifest. Raises RegistryError, ManifestError, DigestMismatch."""
        expected = digest or self.ref.digest
        part = str(expected) if expected else self.ref.tag
        what = f"manifest {part}" if expected else f"tag {part!r}"

        def one(ep: Endpoint, host: _Host):
            label = f"{ep.host}/{ep.repository}" + (f"@{part}" if expected else f":{part}")

            def consume(resp: httpx.Response):
                return self._read_manifest(resp, label), resp.headers.get("Content-Type", ""), \
                    resp.headers.get("Docker-Content-Digest")

            resp_or_result = host.fetch("GET", f"/v2/{ep.repository}/manifests/{part}",
                                        {"Accept": MANIFEST_ACCEPT}, what, consume)
            if isinstance(resp_or_result, httpx.Response):
                err = _error_for(resp_or_result, self._label(ep), ep.repository, what, host.auth)
                resp_or_result.close()
                if err.status == 404 and not expected:
                    err = self._explain_missing_tag(host, ep, what, err)
                raise err
            raw, ctype, header = resp_or_result
            self._verify_manifest(raw, expected, header, label)
            parse_manifest(raw, ctype, label)  # refuse schema 1 / unknown types / oversize here
            return raw, ctype.split(";")[0].strip()

        return self._each_endpoint(one)

    def _explain_missing_tag(self, host: _Host, ep: Endpoint, what: str, err: RegistryError) -> RegistryError:
        """Distribution answers MANIFEST_UNKNOWN for unknown repositories too: ask tags/list which it is."""
        try:
            resp = host.fetch("GET", f"/v2/{ep.repository}/tags/list?n=20", {}, "tag list")
        except RegistryError:
            return err
        try:
            if resp.status_code == 404:
                return _error_for(resp, self._label(ep), ep.repository, what, host.auth) if \
                    _error_code(resp) == "NAME_UNKNOWN" else err
            if resp.status_code == 200:
                resp.read()
                tags = (resp.json().get("tags") or [])[:20]
                if not tags:
                    return RegistryError(f"repository {ep.repository} on {self._label(ep)} has no tags", status=404,
                                         hint="check the image name in envctl.yaml")
                err.message += f" (it has: {', '.join(sorted(tags))})"
        except (ValueError, AttributeError, httpx.HTTPError):
            pass
        finally:
            resp.close()
        return err

    @staticmethod
    def _read_manifest(resp: httpx.Response, label: str) -> bytes:
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest for {label} is {length} bytes, over the {MAX_MANIFEST_BYTES} byte limit")
        data = bytearray()
        for chunk in resp.iter_bytes(1 << 16):
            data += chunk
            if len(data) > MAX_MANIFEST_BYTES:
                raise ManifestError(f"manifest for {label} is over the {MAX_MANIFEST_BYTES} byte limit")
        return bytes(data)

    @staticmethod
    def _verify_manifest(raw: bytes, expected: Digest | None, header: str | None, label: str) -> None:
        for source, want in (("requested", expected), ("Docker-Content-Digest", header)):
            if not want:
                continue
            d = want if isinstance(want, Digest) else Digest.parse(want.strip())
            got = Digest.from_bytes(raw, d.algorithm)
            if got != d:
                raise DigestMismatch(f"manifest for {label}: digest mismatch: {source} {d}, content is {got}",
                                     hint="the registry or a proxy served corrupt or substituted content")

    def open_blob(self, digest: Digest, size: int | None = None, offset: int = 0):
        """See ImageSource.open_blob; HTTP Range when ``offset`` > 0. The caller verifies the bytes."""
        what = f"blob {digest.short()}"

        def one(ep: Endpoint, host: _Host):
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            resp = host.fetch("GET", f"/v2/{ep.repository}/blobs/{digest}", headers, what)
            if resp.status_code >= 400:
                try:
                    raise _error_for(resp, self._label(ep), ep.repository, what, host.auth)
                finally:
                    resp.close()
            header = resp.headers.get("Docker-Content-Digest")
            if header and header.strip() != str(digest):
                resp.close()
                raise DigestMismatch(f"{what} from {ep.host}: digest mismatch: requested {digest}, "
                                     f"Docker-Content-Digest {header.strip()}")
            skip = offset if offset and resp.status_code == 200 else 0
            return _BlobStream(resp, f"{what} from {ep.host}", skip)

        return self._each_endpoint(one)

    def close(self) -> None:
        """Close every registry host connection opened so far (ImageSource protocol). Returns None."""
        for h in self._hosts.values():
            h.close()
        self._hosts.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
