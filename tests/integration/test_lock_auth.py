"""Registry auth: htpasswd Basic registry, bearer-token server (proxy), credential files and helpers,
`envctl login` / `envctl logout`."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from tests.integration.test_lock import lock_json, sha, write_spec
from tests.integration.test_lock_errors import one_error

pytestmark = [pytest.mark.registry]


@pytest.fixture(scope="module")
def auth_images(auth_registry, test_images):
    auth_registry.push(test_images.layout, "multi", "envctl/multi", "v1")
    return auth_registry


def write_auth(path, host, user, password, key=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {key or host: {"auth": token}}}))


def test_basic_auth_registry_with_login_and_logout(auth_images, auth_env, run_envctl, tmp_path):
    reg = auth_images
    proj = tmp_path / "p"
    write_spec(proj, reg.ref("envctl/multi", "v1"), ("linux/amd64", "linux/arm64"))
    one_error(run_envctl("lock", cwd=proj), 1, f"registry {reg.host} requires credentials for envctl/multi")
    r = run_envctl("login", reg.host, "-u", "envctl", "--password-stdin", input="wrong\n")
    one_error(r, 1, f"login to {reg.host} failed: the registry rejected user 'envctl'")
    assert not auth_env["docker_config"].exists()
    r = run_envctl("login", reg.host, "-u", "envctl", "--password-stdin", input=reg.password + "\n")
    assert r.returncode == 0, r.stderr
    cfg = auth_env["docker_config"]
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    entry = json.loads(cfg.read_text())["auths"][reg.host]
    assert base64.b64decode(entry["auth"]).decode() == f"envctl:{reg.password}"
    assert reg.password not in r.stdout + r.stderr
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert lock_json(proj)["image"]["digest"] == sha(reg.skopeo_inspect("envctl/multi", "v1", raw=True))
    r = run_envctl("logout", reg.host)
    assert r.returncode == 0 and "removed" in r.stdout
    assert reg.host not in json.loads(cfg.read_text())["auths"]
    assert run_envctl("lock", "--update", cwd=proj).returncode == 1


def test_wrong_credentials_in_containers_auth_file(auth_images, auth_env, run_envctl, tmp_path):
    reg = auth_images
    proj = tmp_path / "p"
    write_spec(proj, reg.ref("envctl/multi", "v1"))
    write_auth(auth_env["runtime_auth"], reg.host, "envctl", "not-the-password")
    one_error(run_envctl("lock", cwd=proj), 1, f"authentication to {reg.host} failed",
              "credentials for user 'envctl' were rejected")
    # REGISTRY_AUTH_FILE wins over $XDG_RUNTIME_DIR/containers/auth.json
    good = tmp_path / "good-auth.json"
    write_auth(good, reg.host, "envctl", reg.password)
    r = run_envctl("lock", cwd=proj, env={"REGISTRY_AUTH_FILE": str(good)})
    assert r.returncode == 0, r.stderr


def test_credential_helper(auth_images, auth_env, run_envctl, tmp_path):
    reg = auth_images
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-envctltest"
    log = tmp_path / "helper.log"
    helper.write_text(f"""#!/bin/sh
read server
echo "$1 $server" >> {log}
[ "$server" = "{reg.host}" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
echo '{{"ServerURL": "{reg.host}", "Username": "envctl", "Secret": "{reg.password}"}}'
""")
    helper.chmod(0o755)
    auth_env["docker_config"].write_text(json.dumps({"credHelpers": {reg.host: "envctltest"}}))
    proj = tmp_path / "p"
    write_spec(proj, reg.ref("envctl/multi", "v1"))
    r = run_envctl("lock", cwd=proj, env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    assert log.read_text() == f"get {reg.host}\n"


def test_bearer_token_flow(test_images, registry_proxy, auth_env, run_envctl, tmp_path):
    proxy = registry_proxy(users={"alice": "s3cret"})
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/multi:v1", ("linux/amd64", "linux/arm64"))
    one_error(run_envctl("lock", cwd=proj), 1, f"registry {proxy.host} requires credentials")
    write_auth(auth_env["docker_config"], proxy.host, "alice", "wrong", key=f"http://{proxy.host}/v1/")
    one_error(run_envctl("lock", cwd=proj), 1, f"authentication to {proxy.host} failed",
              "credentials for user 'alice' were rejected")
    write_auth(auth_env["docker_config"], proxy.host, "alice", "s3cret")
    proxy.clear()
    r = run_envctl("lock", "-v", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert lock_json(proj)["image"]["digest"] == test_images.descriptors["multi"]["digest"]
    # one 401 challenge, one token for the repository's pull scope (cached), then 5 authorised requests
    assert len(proxy.token_requests) == 1
    q = proxy.token_requests[0].path
    assert "scope=repository%3Aenvctl%2Fmulti%3Apull" in q and "service=envctl-test" in q
    assert proxy.token_requests[0].headers["Authorization"].startswith("Basic ")
    api = [s for s in proxy.requests if s.path.startswith("/v2/")]
    assert len(api) == 6 and "Authorization" not in api[0].headers
    assert all(s.headers["Authorization"].startswith("Bearer ") for s in api[1:])
    assert "7 HTTP requests" in r.stderr


def test_anonymous_token(test_images, registry_proxy, auth_env, run_envctl, tmp_path):
    proxy = registry_proxy(anonymous=True)
    proj = tmp_path / "p"
    write_spec(proj, f"{proxy.host}/envctl/busybox:single")
    r = run_envctl("lock", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert len(proxy.token_requests) == 1 and "Authorization" not in proxy.token_requests[0].headers
