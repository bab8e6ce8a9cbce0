"""`envctl generate` / `envctl import` through the real CLI: writing, --stdout, determinism,
--check (exit 3, naming the file), lock drift, the reverse import."""

import json
import shutil

import pytest

from envctl.generate.devcontainer import strip_comments
from tests.fixtures.gen_project import FULL_SPEC, PUSHED, make_project, write_lock

TARGETS = {"devcontainer": ".devcontainer/devcontainer.json", "containerfile": "Containerfile",
           "ci": ".github/workflows/envctl.yml", "k8s": "k8s/envctl-k8s.yaml"}


def _args(target):
    return [target, "--image", PUSHED] if target in ("devcontainer", "k8s") else [target]


@pytest.fixture
def proj(tmp_path):
    return make_project(tmp_path / "proj")


def _gen(run_envctl, proj, *args):
    r = run_envctl("generate", *args, cwd=proj)
    assert r.returncode == 0, r.stderr
    return r


def test_write_stdout_and_rewrite_are_byte_identical(run_envctl, proj):
    for target, path in TARGETS.items():
        r = _gen(run_envctl, proj, *_args(target))
        assert r.stdout.strip() == f"wrote {path}"
        data = (proj / path).read_bytes()
        assert _gen(run_envctl, proj, *_args(target)).stdout.strip() == f"unchanged: {path}"
        assert (proj / path).read_bytes() == data
        out = run_envctl("generate", *_args(target), "--stdout", cwd=proj)
        assert out.returncode == 0 and out.stdout.encode() == data


def test_same_bytes_from_another_checkout(run_envctl, proj, tmp_path):
    other = tmp_path / "somewhere" / "else"
    shutil.copytree(proj, other)
    for target in TARGETS:
        a = run_envctl("generate", *_args(target), "--stdout", cwd=proj).stdout
        b = run_envctl("generate", *_args(target), "--stdout", cwd=other).stdout
        assert a == b and a and str(tmp_path) not in a


def test_check_exit_3_names_the_file(run_envctl, proj):
    r = run_envctl("generate", "containerfile", "--check", cwd=proj)
    assert r.returncode == 3
    assert r.stderr.splitlines()[0] == "envctl: error: generate --check: Containerfile is missing"
    _gen(run_envctl, proj, "containerfile")
    assert run_envctl("generate", "containerfile", "--check", cwd=proj).returncode == 0
    # the spec changes and the lock follows: the Containerfile is now stale
    (proj / "envctl.yaml").write_text(FULL_SPEC.replace('PYTHONUNBUFFERED: "1"', 'PYTHONUNBUFFERED: "0"'))
    write_lock(proj)
    r = run_envctl("generate", "containerfile", "--check", cwd=proj)
    assert r.returncode == 3 and "Containerfile is stale" in r.stderr
    assert "hint: run 'envctl generate containerfile' and commit Containerfile" in r.stderr
    assert "Traceback" not in r.stderr


def test_check_without_target_uses_each_files_header_options(run_envctl, proj):
    _gen(run_envctl, proj, "ci", "--provider", "gitlab", "--test-command", "make test")
    _gen(run_envctl, proj, "k8s", "--image", PUSHED, "--kind", "deployment")
    _gen(run_envctl, proj, "devcontainer")
    r = run_envctl("generate", "--check", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(r.stdout)["checked"]) == [".devcontainer/devcontainer.json", ".gitlab-ci.yml",
                                                       "k8s/envctl-k8s.yaml"]
    k8s = proj / "k8s" / "envctl-k8s.yaml"
    k8s.write_text(k8s.read_text().replace("replicas: 1", "replicas: 2"))  # a hand edit
    r = run_envctl("generate", "--check", cwd=proj)
    assert r.returncode == 3 and "k8s/envctl-k8s.yaml is stale" in r.stderr
    assert "envctl generate k8s --image " in r.stderr and "--kind deployment" in r.stderr


def test_stale_lock_is_lock_drift(run_envctl, proj):
    (proj / "envctl.yaml").write_text(FULL_SPEC.replace("team/base:1", "team/base:2"))
    r = run_envctl("generate", "containerfile", cwd=proj)
    assert r.returncode == 3 and "envctl.lock is not current" in r.stderr and "envctl lock" in r.stderr
    (proj / "envctl.lock").unlink()
    r = run_envctl("generate", "containerfile", "--stdout", cwd=proj)
    assert r.returncode == 3 and "envctl.lock is missing" in r.stderr


def test_usage_errors_exit_2(run_envctl, proj):
    r = run_envctl("generate", "k8s", "--image", "registry.example.test/team/env:latest", cwd=proj)
    assert r.returncode == 2 and "not pinned by digest" in r.stderr
    r = run_envctl("generate", cwd=proj)
    assert r.returncode == 2 and "no target given" in r.stderr
    r = run_envctl("generate", "nonsense", cwd=proj)
    assert r.returncode == 2


DEVCONTAINER_JSONC = """\
// a hand-written dev container
{
  "name": "Team env",
  "image": "mcr.microsoft.com/devcontainers/python:3.12", /* pinned later */
  "containerEnv": {"PIP_NO_CACHE_DIR": "1", "HOST_HOME": "${localEnv:HOME}"},
  "workspaceFolder": "/workspaces/app",
  "remoteUser": "vscode",
  "mounts": ["source=${localEnv:HOME}/.ssh,target=/home/vscode/.ssh,type=bind,readonly",
             "source=cache,target=/cache,type=volume"],
  "runArgs": ["--memory=4g", "--cpus", "2", "--cap-add=SYS_PTRACE", "--privileged"],
  "postCreateCommand": "pip install -r requirements.txt",
  "forwardPorts": [8000],
  "features": {"ghcr.io/devcontainers/features/node:1": {}},
  "customizations": {"vscode": {"extensions": ["ms-python.python"]}},
}
"""


def test_import_devcontainer_then_generate_round_trip(run_envctl, tmp_path):
    proj = tmp_path / "imp"
    (proj / ".devcontainer").mkdir(parents=True)
    (proj / ".devcontainer" / "devcontainer.json").write_text(DEVCONTAINER_JSONC)
    r = run_envctl("import", ".devcontainer/devcontainer.json", cwd=proj)
    assert r.returncode == 0, r.stderr
    text = (proj / "envctl.yaml").read_text()
    assert text.startswith("# Imported by envctl from .devcontainer/devcontainer.json (Team env).")
    import yaml

    spec = yaml.safe_load(text)
    assert spec == {"version": 1, "image": "mcr.microsoft.com/devcontainers/python:3.12",
                    "steps": [{"run": "pip install -r requirements.txt"}], "env": {"PIP_NO_CACHE_DIR": "1"},
                    "workdir": "/workspaces/app", "user": "vscode",
                    "mounts": [{"source": "~/.ssh", "target": "/home/vscode/.ssh", "readonly": True}],
                    "resources": {"memory": "4G", "cpus": 2.0}, "cap_add": ["CAP_SYS_PTRACE"]}
    skipped = [line.split("not carried over: ", 1)[1] for line in r.stderr.splitlines() if "not carried over" in line]
    assert "containerEnv.HOST_HOME (uses ${...} variables)" in skipped
    assert "runArgs --privileged" in skipped and "forwardPorts" in skipped and "features" in skipped
    assert "customizations" in skipped and any("volume" in s for s in skipped)
    assert any(s.startswith("postCreateCommand: became build steps") for s in skipped)
    # refuses to overwrite; the imported spec locks and generates a valid devcontainer.json again
    assert run_envctl("import", ".devcontainer/devcontainer.json", cwd=proj).returncode == 2
    write_lock(proj)
    out = _gen(run_envctl, proj, "devcontainer", "--stdout", "-o", "dc.json").stdout
    doc = json.loads(strip_comments(out))
    assert doc["workspaceFolder"] == "/workspaces/app" and doc["containerUser"] == "vscode"
    assert doc["runArgs"] == ["--memory=4294967296b", "--cpus=2.0"]  # docker's 4g is 4 GiB, as envctl's 4G
    assert doc["capAdd"] == ["SYS_PTRACE"]


def test_import_errors(run_envctl, tmp_path):
    (tmp_path / "a.json").write_text('{"build": {"dockerfile": "Dockerfile"}}')
    r = run_envctl("import", "a.json", cwd=tmp_path)
    assert r.returncode == 2 and "no image to import (build.dockerfile)" in r.stderr
    (tmp_path / "b.json").write_text('{"image": ')
    r = run_envctl("import", "b.json", cwd=tmp_path)
    assert r.returncode == 2 and "not valid JSON with comments" in r.stderr and "Traceback" not in r.stderr
    r = run_envctl("import", "missing.json", cwd=tmp_path)
    assert r.returncode == 2 and "cannot read missing.json" in r.stderr


def test_generated_k8s_manifest_is_not_taken_for_the_spec(run_envctl, proj):
    _gen(run_envctl, proj, *_args("k8s"))
    k8s = proj / "k8s"
    assert not (k8s / "envctl.yaml").exists()
    # from inside k8s/, envctl finds the project's envctl.yaml (upwards), not the manifest
    r = run_envctl("validate", "--json", cwd=k8s)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["image"] == json.loads(run_envctl("validate", "--json", cwd=proj).stdout)["image"]
