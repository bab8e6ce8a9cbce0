"""runtime.config: generated config.json validates against the OCI runtime-spec schema (Debian's
golang-github-opencontainers-specs-dev) and carries issue 5's defaults."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from runtime.config import (DEFAULT_CAPS, MASKED_PATHS, ROOTFS_ANNOTATION, generate_config, id_mappings,
                            lookup_user, resolve_caps)

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")


def _validator():
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = []
    for f in SCHEMA_DIR.glob("*.json"):
        doc = json.loads(f.read_text())
        resources.append((f.name, Resource.from_contents(doc, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def _spec(**kw):
    base = dict(workdir="/workspace", network="host", env_dict=lambda: {"A": "1"}, user=None, shell=None,
                runtime="builtin", resources=types.SimpleNamespace(memory=None, cpus=None, pids=None),
                mounts=(), cap_add=(), cap_drop=())
    base.update(kw)
    return types.SimpleNamespace(**base)


def _rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n")
    (r / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    return {"driver": "copy", "path": str(r)}


VARIANTS = [
    dict(rootless=False, tty=False, spec={}),
    dict(rootless=True, tty=True, spec={"network": "none", "user": "app"}),
    dict(rootless=False, tty=False, spec={"resources": types.SimpleNamespace(memory=1 << 30, cpus=1.5, pids=100),
                                          "mounts": (types.SimpleNamespace(source="cache", target="/c", readonly=True),),
                                          "cap_add": ("SYS_PTRACE",), "cap_drop": ("NET_RAW",)}),
]


@pytest.mark.skipif(not SCHEMA_DIR.is_dir(), reason="runtime-spec schema package not installed")
@pytest.mark.parametrize("v", VARIANTS)
def test_config_validates_against_runtime_spec_schema(tmp_path, v):
    cfg = generate_config(_spec(**v["spec"]), image_config={"Env": ["PATH=/usr/bin"], "User": ""},
                          rootfs=_rootfs(tmp_path), project_root=str(tmp_path), rootless=v["rootless"],
                          args=["sh"], tty=v["tty"])
    errors = sorted(_validator().iter_errors(cfg), key=str)
    assert not errors, [e.message for e in errors]


def test_overlay_plan_goes_in_annotation(tmp_path):
    up = tmp_path / "upper"
    (up / "etc").mkdir(parents=True)
    (up / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    plan = {"driver": "overlay", "lowerdirs": [str(tmp_path / "l1")], "upperdir": str(up),
            "workdir": str(tmp_path / "w"), "merged": str(tmp_path / "m"), "userxattr": True}
    cfg = generate_config(_spec(), image_config={}, rootfs=plan, project_root=None, rootless=False,
                          args=None, tty=False)
    assert json.loads(cfg["annotations"][ROOTFS_ANNOTATION]) == plan
    assert cfg["root"]["path"] == plan["merged"]
    assert "args" not in cfg["process"]


def test_defaults(tmp_path):
    cfg = generate_config(_spec(), image_config={"Env": ["PATH=/x", "A=0"], "WorkingDir": "/w"},
                          rootfs=_rootfs(tmp_path), project_root=str(tmp_path), rootless=False, args=["sh"], tty=False)
    p = cfg["process"]
    assert p["capabilities"]["bounding"] == resolve_caps() and len(DEFAULT_CAPS) == 14
    assert p["capabilities"]["ambient"] == [] and p["noNewPrivileges"] is True
    assert "PATH=/x" in p["env"] and "A=1" in p["env"] and "HOME=/root" in p["env"]
    assert p["cwd"] == "/workspace"
    assert cfg["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert {n["type"] for n in cfg["linux"]["namespaces"]} == {"pid", "ipc", "uts", "mount", "cgroup"}
    proj = [m for m in cfg["mounts"] if m["destination"] == "/workspace"]
    assert proj and proj[0]["source"] == str(tmp_path)


def test_resolve_caps_add_drop_all():
    assert "CAP_SYS_ADMIN" in resolve_caps(cap_add=["sys_admin"])
    assert "CAP_CHOWN" not in resolve_caps(cap_drop=["CHOWN"])
    assert resolve_caps(cap_drop=["ALL"], cap_add=["KILL"]) == ["CAP_KILL"]
    with pytest.raises(ValueError):
        resolve_caps(cap_add=["CAP_BOGUS"])


def test_id_mappings_keep_id():
    assert id_mappings(1000, None) == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert id_mappings(1000, (100000, 65536)) == [
        {"containerID": 0, "hostID": 1000, "size": 1},
        {"containerID": 1, "hostID": 100000, "size": 65536}]
    assert id_mappings(1000, (100000, 65536), inside=1000) == [
        {"containerID": 1000, "hostID": 1000, "size": 1},
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1001, "hostID": 101000, "size": 64536}]


def test_lookup_user(tmp_path):
    r = _rootfs(tmp_path)
    assert lookup_user(r, "app") == (1000, 1001, "app", "/home/app")
    assert lookup_user(r, "app:staff")[:2] == (1000, 50)
    assert lookup_user(r, "4242")[:2] == (4242, 4242)
    with pytest.raises(ValueError):
        lookup_user(r, "nobody-here")
