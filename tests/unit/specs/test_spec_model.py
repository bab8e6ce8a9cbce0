"""The spec model: normalisation, to_dict round trip, digest stability, canonical JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from specs.build import normalize_capability, normalize_platform, parse_duration_ms, parse_size
from specs.canonical import CanonicalError, canonical_digest, canonical_json
from specs.load import parse_spec
from specs.model import EnvSpec, Mount, Resources, Step
from specs.reference import parse_reference

FULL = """\
version: 1
image: python:3.12-slim
platforms: [linux/amd64, linux/aarch64]
runtime: crun
steps:
  - run: apt-get update
    reproducible: false
  - copy: requirements.txt /tmp/requirements.txt
  - run: [pip, install, -r, /tmp/requirements.txt]
  - env: {A: "1"}
  - workdir: /app
  - user: "1000:1000"
  - copy: {src: ./a/../b, dest: /b, owner: dev, mode: "0644"}
env: {PYTHONDONTWRITEBYTECODE: 1, PORT: 8000}
mounts: [{source: ~/.cache/pip, target: /root/.cache/pip}, "./data:/data:ro"]
resources: {memory: 2GiB, cpus: 1.5, pids: 1024}
network: none
shell: /bin/bash
user: dev
cap_add: [net_admin]
cap_drop: [CAP_NET_RAW, all]
cache: {registry: localhost:5000/team/cache}
services:
  db:
    command: postgres
    ready: {command: pg_isready}
  web:
    command: flask --app app run --port 8000
    env: {FLASK_DEBUG: "1"}
    workdir: /workspace/web
    depends_on: [db]
    ready: {http: /health, port: 8000, timeout: 10s, interval: 0.25}
    restart: on-failure
    watch: {paths: ["**/*.py"], ignore: [".git/**"], action: reload, debounce: 1s, gitignore: false}
"""


@pytest.fixture
def spec() -> EnvSpec:
    return parse_spec(FULL, "envctl.yaml")


def test_every_field(spec):
    assert str(spec.image) == "docker.io/library/python:3.12-slim"
    assert spec.platforms == ("linux/amd64", "linux/arm64")
    assert spec.runtime == "crun" and spec.network == "none" and spec.shell == "/bin/bash" and spec.user == "dev"
    assert [s.kind for s in spec.steps] == ["run", "copy", "run", "env", "workdir", "user", "copy"]
    assert spec.steps[0] == Step("run", run="apt-get update", reproducible=False)
    assert spec.steps[1] == Step("copy", src="requirements.txt", dest="/tmp/requirements.txt")
    assert spec.steps[2].run == ("pip", "install", "-r", "/tmp/requirements.txt")
    assert spec.steps[5].user == "1000:1000"
    assert spec.steps[6] == Step("copy", src="b", dest="/b", owner="dev", mode=0o644)
    assert spec.env_dict() == {"PYTHONDONTWRITEBYTECODE": "1", "PORT": "8000"}
    assert spec.workdir == "/workspace"
    assert spec.mounts == (Mount("~/.cache/pip", "/root/.cache/pip"), Mount("./data", "/data", True))
    assert spec.resources == Resources(2 << 30, 1.5, 1024)
    assert spec.cap_add == ("CAP_NET_ADMIN",) and spec.cap_drop == ("CAP_NET_RAW", "ALL")
    assert spec.cache.registry == "localhost:5000/team/cache"
    db, web = spec.services
    assert db.ready.kind == "command" and db.ready.command == "pg_isready" and db.restart == "never"
    assert web.depends_on == ("db",) and web.workdir == "/workspace/web" and web.env_dict() == {"FLASK_DEBUG": "1"}
    assert (web.ready.kind, web.ready.port, web.ready.http, web.ready.timeout_ms, web.ready.interval_ms) == (
        "http", 8000, "/health", 10000, 250)
    assert (web.watch.action, web.watch.debounce_ms, web.watch.gitignore) == ("reload", 1000, False)
    assert spec.service("web") is web and spec.service("nope") is None


def test_defaults():
    spec = parse_spec("version: 1\nimage: debian\n")
    assert spec.platforms == () and spec.steps == () and spec.workdir == "/workspace"
    assert spec.network == "host" and spec.runtime == "builtin" and spec.resources == Resources()
    assert spec.shell is None and spec.user is None and spec.cache is None
    w = parse_spec("version: 1\nimage: debian\nservices:\n  s:\n    command: x\n    watch: {paths: [a]}\n").services[0]
    assert (w.watch.action, w.watch.debounce_ms, w.watch.gitignore, w.watch.ignore) == ("restart", 100, True, ())


def test_spec_is_frozen(spec):
    with pytest.raises(AttributeError):
        spec.workdir = "/x"  # type: ignore[misc]
    hash(spec.steps[0])


def test_to_dict_round_trips_through_yaml_and_json(spec):
    d = spec.to_dict()
    again_yaml = parse_spec(yaml.safe_dump(d, sort_keys=False), "envctl.yaml")
    again_json = parse_spec(json.dumps(d), "envctl.yaml")
    assert again_yaml == spec == again_json
    assert again_yaml.digest() == spec.digest() == again_json.digest()


def test_digest_ignores_comments_formatting_and_spelling():
    a = parse_spec("version: 1\nimage: debian\nresources: {memory: 2GiB}\nenv: {B: '2', A: '1'}\n")
    b = parse_spec("# my env\nversion: 1   # v\nenv:\n  A: \"1\"\n  B: '2'\nresources:\n  memory: 2147483648\n"
                   "image: docker.io/library/debian:latest\nworkdir: /workspace\n")
    assert a.digest() == b.digest()
    c = parse_spec("version: 1\nimage: debian\nresources: {memory: 3GiB}\nenv: {B: '2', A: '1'}\n")
    assert c.digest() != a.digest()
    assert a.digest().startswith("sha256:") and len(a.digest()) == 71


def test_digest_is_stable_across_processes(spec):
    code = ("import sys; from specs.load import parse_spec; "
            "print(parse_spec(sys.stdin.read(), 'envctl.yaml').digest())")
    out = subprocess.run([sys.executable, "-c", code], input=FULL, capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
                         cwd=Path(__file__).resolve().parents[3], check=True).stdout.strip()
    assert out == spec.digest()


def test_mount_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    assert Mount("~/.cache", "/c").resolve_source(tmp_path) == "/home/u/.cache"
    assert Mount("./data/../d", "/d").resolve_source(tmp_path) == str(tmp_path / "d")


def test_model_constructible_by_hand():
    s = EnvSpec(version=1, image=parse_reference("debian"))
    assert s.to_dict()["image"] == "docker.io/library/debian:latest"
    assert s.digest() == parse_spec("version: 1\nimage: debian\n").digest()


@pytest.mark.parametrize("text,ms", [("250ms", 250), ("2s", 2000), ("1.5s", 1500), ("1m", 60000), ("1h", 3600000),
                                     (0.1, 100), (3, 3000)])
def test_parse_duration(text, ms):
    assert parse_duration_ms(text) == ms


def test_parse_size_and_platform_and_caps():
    assert parse_size("1.5G") == 1610612736 and parse_size(" 4 KiB ") == 4096 and parse_size(10) == 10
    with pytest.raises(ValueError):
        parse_size("1.5")  # bytes cannot be fractional
    assert normalize_platform("linux/x86_64") == "linux/amd64"
    assert normalize_platform("linux/arm64/v8") == "linux/arm64"
    assert normalize_platform("linux/armhf") == "linux/arm/v7"
    assert normalize_platform("linux/arm/v6") == "linux/arm/v6"
    assert normalize_capability("sys_ptrace") == "CAP_SYS_PTRACE" and normalize_capability("ALL") == "ALL"


def test_canonical_json_bytes():
    assert canonical_json({"b": [1, None, True], "a": "é"}) == (
        '{\n  "a": "é",\n  "b": [\n    1,\n    null,\n    true\n  ]\n}\n').encode()
    assert canonical_digest({}) == "sha256:ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
    for bad in ({"x": 1.5}, {1: "a"}, {"x": object()}, {"x": "\udc80"}):
        with pytest.raises(CanonicalError):
            canonical_json(bad)


def test_build_digest_ignores_runtime_only_settings():
    a = parse_spec("version: 1\nimage: debian\nsteps: [{run: make}]\n")
    b = parse_spec("version: 1\nimage: debian\nsteps: [{run: make}]\nnetwork: none\nresources: {cpus: 2}\n"
                   "services: {web: {command: x}}\nshell: /bin/sh\nmounts: ['~/x:/x']\n")
    assert a.build_digest() == b.build_digest() and a.digest() != b.digest()
    c = parse_spec("version: 1\nimage: debian\nsteps: [{run: make all}]\n")
    d = parse_spec("version: 1\nimage: debian\nsteps: [{run: make}]\nenv: {A: '1'}\n")
    assert len({a.build_digest(), c.build_digest(), d.build_digest()}) == 3
