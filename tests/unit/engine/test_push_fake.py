"""engine.publish.push against an in-process fake registry (httpx.MockTransport) with fault knobs a real
docker-registry cannot be made to show: relative/absolute Location, refused mounts, a wrong
Docker-Content-Digest, failing uploads."""

import hashlib
import io
import re
import uuid

import httpx
import pytest

from engine.errors import DigestMismatch, RegistryError
from engine.publish.push import Pusher
from specs.digest import Digest


class FakeRegistry:
    def __init__(self, *, absolute_location=False, allow_mount=True, bad_manifest_digest=False, fail_put=False):
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[str] = []
        self.absolute, self.allow_mount = absolute_location, allow_mount
        self.bad_digest, self.fail_put = bad_manifest_digest, fail_put

    def _loc(self, repo, uid):
        path = f"/v2/{repo}/blobs/uploads/{uid}?_state=abc"
        return f"https://fake.test{path}" if self.absolute else path

    def handler(self, req: httpx.Request) -> httpx.Response:
        p, m = req.url.path, req.method
        self.requests.append(f"{m} {p}")
        if p == "/v2/":
            return httpx.Response(200)
        if mt := re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", p):
            ok = mt.group(2) in self.blobs.get(mt.group(1), {})
            return httpx.Response(200 if ok else 404)
        if mt := re.fullmatch(r"/v2/(.+)/blobs/uploads/", p):
            repo = mt.group(1)
            if "mount" in req.url.params and self.allow_mount:
                src = self.blobs.get(req.url.params["from"], {})
                if req.url.params["mount"] in src:
                    self.blobs.setdefault(repo, {})[req.url.params["mount"]] = src[req.url.params["mount"]]
                    return httpx.Response(201)
            uid = uuid.uuid4().hex
            self.uploads[uid] = bytearray()
            return httpx.Response(202, headers={"Location": self._loc(repo, uid)})
        if mt := re.fullmatch(r"/v2/(.+)/blobs/uploads/([0-9a-f]+)", p):
            repo, uid = mt.groups()
            assert req.url.params.get("_state") == "abc", "upload state from Location must be kept"
            buf = self.uploads[uid]
            if m == "PATCH":
                start, end = map(int, req.headers["Content-Range"].split("-"))
                assert start == len(buf) and end == start + len(req.content) - 1
                buf += req.content
                return httpx.Response(202, headers={"Location": self._loc(repo, uid), "Range": f"0-{len(buf) - 1}"})
            if m == "PUT":
                if self.fail_put:
                    return httpx.Response(400, json={"errors": [{"code": "BLOB_UPLOAD_INVALID", "message": "nope"}]})
                buf += req.read()
                digest = req.url.params["digest"]
                if "sha256:" + hashlib.sha256(buf).hexdigest() != digest:
                    return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
                self.blobs.setdefault(repo, {})[digest] = bytes(buf)
                return httpx.Response(201)
        if mt := re.fullmatch(r"/v2/(.+)/manifests/(.+)", p):
            body = req.read()
            d = "sha256:" + hashlib.sha256(body).hexdigest()
            self.manifests[mt.groups()] = body
            return httpx.Response(201, headers={"Docker-Content-Digest": "sha256:" + "0" * 64 if self.bad_digest else d})
        return httpx.Response(404)


def blob(n):
    data = bytes(range(256)) * (n // 256 + 1)
    return data[:n], Digest.from_bytes(data[:n])


@pytest.mark.parametrize("absolute", [False, True])
def test_chunked_and_monolithic(absolute):
    reg = FakeRegistry(absolute_location=absolute)
    big, dbig = blob(100_000)
    small, dsmall = blob(10)
    with Pusher("fake.test", "team/env", transport=httpx.MockTransport(reg.handler), chunk_size=30_000) as p:
        assert p.push_blob(dbig, len(big), lambda: io.BytesIO(big)) == "uploaded"
        assert p.push_blob(dsmall, len(small), lambda: io.BytesIO(small)) == "uploaded"
        assert p.push_blob(dsmall, len(small), lambda: io.BytesIO(small)) == "existing"
        assert p.stats.chunks == 4 and p.stats.bytes_sent == len(big) + len(small)
    assert reg.blobs["team/env"] == {str(dbig): big, str(dsmall): small}
    assert sum(r.startswith("PATCH") for r in reg.requests) == 4


def test_mount_then_refused_mount_falls_back_to_upload():
    reg = FakeRegistry()
    data, d = blob(5000)
    t = httpx.MockTransport(reg.handler)
    with Pusher("fake.test", "base/img", transport=t) as p:
        p.push_blob(d, len(data), lambda: io.BytesIO(data))
    with Pusher("fake.test", "team/env", transport=t) as p:
        assert p.push_blob(d, len(data), lambda: pytest.fail("must not read"), mount_from=("base/img",)) == "mounted"
    reg.allow_mount = False
    with Pusher("fake.test", "team/other", transport=t) as p:
        assert p.push_blob(d, len(data), lambda: io.BytesIO(data), mount_from=("base/img",)) == "uploaded"
    assert reg.blobs["team/other"][str(d)] == data


def test_wrong_manifest_digest_reported():
    reg = FakeRegistry(bad_manifest_digest=True)
    with Pusher("fake.test", "team/env", transport=httpx.MockTransport(reg.handler)) as p:
        with pytest.raises(DigestMismatch, match="registry stored sha256:0000"):
            p.put_manifest(b"{}", "application/vnd.oci.image.manifest.v1+json", "v1")


def test_refused_upload_is_one_error_line():
    reg = FakeRegistry(fail_put=True)
    data, d = blob(100)
    with Pusher("fake.test", "team/env", transport=httpx.MockTransport(reg.handler)) as p:
        with pytest.raises(RegistryError) as e:
            p.push_blob(d, len(data), lambda: io.BytesIO(data))
    assert "\n" not in e.value.message and "fake.test" in e.value.message
