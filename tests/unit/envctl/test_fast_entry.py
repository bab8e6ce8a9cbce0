"""envctl._fast: the warm `envctl run` fast path reads arguments exactly as the argparse parser
does (or gives up), and finds the same project, lock file, store and env id as the full path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envctl import _fast
from envctl.cli import build_parser
from envctl.commands._enter import env_id
from envctl.project import find_project
from envctl.settings import envctl_home

FIELDS = ("project", "file", "json", "quiet", "verbose", "env", "workdir", "tty", "cmd")

ACCEPTED = [
    ["--", "true"],
    ["true"],
    ["true", "-v", "--", "x"],
    ["-v", "true", "-q"],
    ["-C", "dir", "--", "sh", "-c", "echo hi"],
    ["--project", "d", "-f", "x.yaml", "--json", "-q", "-v", "-v", "--", "-q"],
    ["--file", "f", "-e", "A=1", "--env", "B=2", "-w", "/w", "--workdir", "/x", "-t", "--tty", "--", "a"],
    ["--quiet", "--verbose", "--", "--", "x"],
    ["-C", "a", "-C", "b", "--", "c"],
    ["-e", "A=1", "cmd", "--json"],
]
REJECTED = [
    [], ["--"], ["-v"], ["-v", "--"], ["-h"], ["--help"], ["-qv", "--", "x"], ["-Cdir", "--", "x"],
    ["--project=dir", "--", "x"], ["--proj", "d", "--", "x"], ["-C"], ["-C", "-v", "--", "x"],
    ["-e", "--", "x"], ["--bogus", "--", "x"], ["-", "x"], ["--env=A=1", "--", "x"], ["-x"],
]


@pytest.mark.parametrize("argv", ACCEPTED)
def test_accepted_forms_parse_as_argparse_does(argv):
    fast = _fast.parse_run(argv)
    assert fast is not None
    ns = build_parser(["run"]).parse_args(["run", *argv])
    assert {f: getattr(fast, f) for f in FIELDS} == {f: getattr(ns, f) for f in FIELDS}


@pytest.mark.parametrize("argv", REJECTED)
def test_other_forms_go_to_the_full_parser(argv):
    assert _fast.parse_run(argv) is None


@pytest.mark.parametrize("argv", ACCEPTED + [["-i", "--", "x"], ["--interactive", "-t", "sh"], ["x", "-i"]])
def test_exec_forms_parse_as_argparse_does(argv):
    fast = _fast.parse_run(argv, command="exec")
    assert fast is not None
    ns = build_parser(["exec"]).parse_args(["exec", *argv])
    assert {f: getattr(fast, f) for f in FIELDS + ("interactive",)} == {f: getattr(ns, f) for f in FIELDS + ("interactive",)}
    assert _fast.parse_run(["-i", "--", "x"]) is None  # not a run option


def test_exec_without_running_environment_falls_back(tmp_path):
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: x\n")
    r = subprocess.run([sys.executable, "-m", "envctl", "exec", "--", "true"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "ENVCTL_HOME": str(tmp_path / "home")})
    assert r.returncode != 0 and "no running environment" in r.stderr


@pytest.mark.parametrize("directory,file", [(None, None), (".", None), ("sub/..", None), ("sub//./", None),
                                            (None, "other.yaml"), ("sub", "../envctl.yaml"),
                                            (None, "./sub/../other.yaml")])
def test_same_project_and_env_id_as_full_path(tmp_path, monkeypatch, directory, file):
    (tmp_path / "sub").mkdir()
    (tmp_path / "envctl.yaml").write_text("version: 1\nimage: x\n")
    (tmp_path / "other.yaml").write_text("version: 1\nimage: x\n")
    monkeypatch.chdir(tmp_path / "sub" if directory is None and file is None else tmp_path)
    project = find_project(directory, file)
    spec = _fast._find_spec(directory, file)
    assert spec == str(project.spec_path)
    assert _fast._lock_path(spec) == str(project.lock_path)
    assert _fast._sha256(spec.encode()).hexdigest()[:16] == env_id(project.spec_path)


def test_no_project_or_missing_paths_give_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _fast._find_spec(None, None) is None
    assert _fast._find_spec("nope", None) is None
    assert _fast._find_spec(None, "nope.yaml") is None
    assert _fast.warm_run(_fast.parse_run(["--", "true"])) is None


@pytest.mark.parametrize("home", [None, "rel/home", "/abs//home/./x"])
def test_same_store_as_settings(tmp_path, monkeypatch, home):
    monkeypatch.chdir(tmp_path)
    if home is None:
        monkeypatch.delenv("ENVCTL_HOME", raising=False)
    else:
        monkeypatch.setenv("ENVCTL_HOME", home)
    assert _fast._home() == str(envctl_home())


def test_lock_name_follows_pathlib_stem():
    for name in ["envctl.yaml", "dev.yaml", "a.b.yaml", ".yaml", "noext", "trail."]:
        assert _fast._lock_path("/p/" + name) == str(find_project.__globals__["Project"](Path("/p"), Path("/p/" + name)).lock_path)


def test_cold_project_falls_back_to_the_full_cli(tmp_path):
    """Not the warm case (no envctl.yaml): the full CLI's error and exit code, through the script."""
    r = subprocess.run([sys.executable, "-m", "envctl", "run", "--", "true"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "ENVCTL_HOME": str(tmp_path / "home")})
    assert r.returncode == 1
    assert r.stderr.startswith("envctl: error: no envctl.yaml in ")
    r = subprocess.run([sys.executable, "-m", "envctl", "run"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "run: no command given" in r.stderr


def test_shipped_script_uses_the_fast_entry():
    repo = Path(__file__).resolve().parents[3]
    text = (repo / "envctl" / "bin" / "envctl").read_text()
    assert text.startswith("#!python\n") and "from envctl._fast import entry" in text and "import re" not in text
