"""QA L8: commands run from a subdirectory of the project start in the matching subdirectory of
the workdir (the project's bind mount), like ``nix develop``/devbox keep the cwd; the project
root and directories outside the project still start in the workdir; ``-w`` wins."""

from __future__ import annotations

import os

import pytest

from envctl import _fast
from envctl.commands._enter import mapped_cwd  # noqa
from tests.integration.runtime_fixtures import rt_env  # noqa: F401 (fixture)


def _cfg(src, dest="/workspace"):
    return {"process": {"cwd": dest}, "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                                                 {"destination": dest, "type": "bind", "source": str(src)}]}


@pytest.mark.parametrize("where,want", [("", None), ("sub", "/workspace/sub"), ("sub/deep er", "/workspace/sub/deep er"),
                                        ("..", None), ("link", "/workspace/sub")])
def test_mapping_same_in_fast_entry(tmp_path, monkeypatch, where, want):
    proj = tmp_path / "proj"
    (proj / "sub" / "deep er").mkdir(parents=True)
    (proj / "link").symlink_to(proj / "sub")
    monkeypatch.chdir(proj / where)
    assert mapped_cwd(_cfg(proj)) == _fast._mapped_cwd(_cfg(proj)) == want
    other = _cfg(proj, "/srv/app/")
    assert mapped_cwd(other) == _fast._mapped_cwd(other) == (want and want.replace("/workspace", "/srv/app"))
    assert mapped_cwd({"process": {"cwd": "/workspace"}, "mounts": []}) is None


def test_run_from_a_subdirectory(rt_env):
    rt_env.prepare()
    sub = rt_env.project / "sub" / "deeper"
    sub.mkdir(parents=True)
    if rt_env.user:
        os.chown(rt_env.project / "sub", rt_env.uid, rt_env.uid)
        os.chown(sub, rt_env.uid, rt_env.uid)
    py = [rt_env.python, "-m", "envctl"]
    fast = rt_env.run_raw([*py, "run", "--", "pwd"], cwd=sub)
    assert (fast.returncode, fast.stdout) == (0, "/workspace/sub/deeper\n"), fast.stderr
    full = rt_env.run_raw([*py, "run", "--project=../..", "--", "pwd"], cwd=sub)
    assert (full.returncode, full.stdout) == (0, "/workspace/sub/deeper\n"), full.stderr
    top = rt_env.run_raw([*py, "run", "--", "pwd"], cwd=rt_env.project)
    assert top.stdout == "/workspace\n", top.stderr
    w = rt_env.run_raw([*py, "run", "-w", "/tmp", "--", "pwd"], cwd=sub)
    assert w.stdout == "/tmp\n", w.stderr
