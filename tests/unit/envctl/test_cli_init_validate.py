"""`envctl init` and `envctl validate` through the real CLI (subprocess, `python -m envctl`); init's
"next:" hint carries ``-f FILE`` when the spec has another name (checked in-process)."""

import json

import yaml

from envctl.cli import main
from specs.load import parse_spec


def test_init_writes_a_valid_commented_spec_and_gitignore(run_envctl, tmp_path):
    r = run_envctl("init", "--image", "localhost:5000/team/base:1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "envctl.yaml").read_text()
    assert text.startswith("# envctl.yaml") and "image: localhost:5000/team/base:1\n" in text
    assert str(parse_spec(text).image) == "localhost:5000/team/base:1"
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "/.envctl/"
    assert "wrote" in r.stderr


def test_init_refuses_to_overwrite_then_force(run_envctl, tmp_path):
    (tmp_path / "envctl.yaml").write_text("mine\n")
    r = run_envctl("init", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"envctl: error: create {tmp_path / 'envctl.yaml'}: already exists"
    assert "--force" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "envctl.yaml").read_text() == "mine\n"
    assert run_envctl("init", "--force", "--preset", "python", cwd=tmp_path).returncode == 0
    spec = parse_spec((tmp_path / "envctl.yaml").read_text())
    assert spec.image.repository == "library/python" and spec.steps[0].kind == "copy"


def test_init_keeps_existing_gitignore_entry_and_uses_dash_C(run_envctl, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / ".gitignore").write_text("node_modules\n.envctl/")
    r = run_envctl("init", "-C", str(proj), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["gitignoreUpdated"] is False
    assert (proj / ".gitignore").read_text() == "node_modules\n.envctl/"
    assert (proj / "envctl.yaml").is_file() and not (tmp_path / "envctl.yaml").exists()


def test_init_bad_image_is_a_usage_error(run_envctl, tmp_path):
    r = run_envctl("init", "--image", "Debian:12", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("envctl: error: invalid image reference 'Debian:12'")
    assert not (tmp_path / "envctl.yaml").exists()


def test_validate_prints_normalised_yaml_and_json(run_envctl, tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: debian:12\nresources: {memory: 1G}\nenv: {PORT: 80}\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    r = run_envctl("validate", cwd=sub)  # found by searching upwards
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# ") and "valid; spec digest sha256:" in r.stdout.splitlines()[0]
    data = yaml.safe_load(r.stdout)
    assert data["image"] == "docker.io/library/debian:12" and data["resources"] == {"memory": 1 << 30}
    assert data["env"] == {"PORT": "80"} and data["workdir"] == "/workspace"
    j = run_envctl("validate", "--json", cwd=tmp_path)
    assert j.returncode == 0 and json.loads(j.stdout) == data
    assert parse_spec(j.stdout).digest() == parse_spec((tmp_path / "envctl.yaml").read_text()).digest()


def test_validate_reports_every_error_with_position_exit_2(run_envctl, tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: debian\nimgae: x\nenv:\n  DEBUG: yes\n")
    r = run_envctl("validate", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines()[:2] == [
        "envctl: error: envctl.yaml:3:1: imgae: unknown key 'imgae' (did you mean 'image'?)",
        'envctl.yaml:5:10: env.DEBUG: expected a string, got a boolean: YAML 1.1 reads `yes` as true; quote it: "yes"',
    ]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_validate_with_file_flag_and_missing_spec(run_envctl, tmp_path):
    (tmp_path / "dev.yaml").write_text("version: 1\nimage: [\n")
    r = run_envctl("validate", "-f", "dev.yaml", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("envctl: error: dev.yaml:3:1: invalid YAML:")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_envctl("validate", cwd=empty)
    assert r.returncode == 1 and "no envctl.yaml" in r.stderr and "envctl init" in r.stderr


def test_help_lists_commands_and_exit_codes(run_envctl, tmp_path):
    r = run_envctl("--help", cwd=tmp_path)
    assert r.returncode == 0
    for word in ("init", "validate", "version", "exit codes", "3  envctl.lock missing or stale"):
        assert word in r.stdout


def test_init_on_a_read_only_filesystem_is_one_error(tmp_path):
    """EROFS (a read-only bind mount in a private mount namespace), with and without --force."""
    import os
    import shutil
    import subprocess
    import sys

    import pytest

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a read-only bind mount")
    proj = tmp_path / "ro"
    proj.mkdir()
    for extra in ([], ["--force"]):
        script = (f"mount --bind -o ro {proj} {proj} && cd {proj} && "
                  f"exec {sys.executable} -m envctl init {' '.join(extra)}")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
        assert r.stderr.splitlines()[0].startswith(f"envctl: error: create {proj}/envctl.yaml"), r.stderr
        assert "Read-only file system" in r.stderr and "hint: run envctl init in a writable directory" in r.stderr
    assert list(proj.iterdir()) == []


def test_init_in_a_directory_the_user_cannot_write_is_one_error(rootless_user):
    proj = rootless_user.tmpdir() / "locked"
    proj.mkdir(mode=0o555)
    r = rootless_user.envctl("init", cwd=proj)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert "Permission denied" in r.stderr.splitlines()[0]
    assert "hint: run envctl init in a directory you can write to" in r.stderr
    assert list(proj.iterdir()) == []


def test_init_hint_carries_the_file(tmp_path, capsys):
    assert main(["init", "-C", str(tmp_path), "-f", "custom.yaml", "--image", "busybox"]) == 0
    out = capsys.readouterr().out
    assert "'envctl validate -f custom.yaml' and 'envctl lock -f custom.yaml'" in out
    assert main(["validate", "-C", str(tmp_path), "-f", "custom.yaml"]) == 0


def test_init_hint_without_file_option_for_the_default_name(tmp_path, capsys):
    assert main(["init", "-C", str(tmp_path), "--image", "busybox"]) == 0
    assert "then 'envctl validate' and 'envctl lock'" in capsys.readouterr().out
