"""runtime.cgroups: layout detection and the v2/v1 writers against directories laid out like cgroupfs."""

from __future__ import annotations

from pathlib import Path

from runtime.cgroups import V1Cgroup, V2Cgroup, detect_layout, open_cgroup

RES = {"memory": {"limit": 1 << 30}, "cpu": {"quota": 150000, "period": 100000}, "pids": {"limit": 64}}


def _proc(tmp_path, text):
    p = tmp_path / "proc-cgroup"
    p.write_text(text)
    return str(p)


def _fake_v2(tmp_path) -> Path:
    root = tmp_path / "cg2"
    own = root / "user.slice" / "me"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    return root


def test_detect_layouts(tmp_path):
    assert detect_layout(_fake_v2(tmp_path)) == "v2"
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    assert detect_layout(v1) == "v1"
    (v1 / "unified").mkdir()
    (v1 / "unified" / "cgroup.controllers").write_text("")
    assert detect_layout(v1) == "hybrid"
    assert detect_layout(tmp_path / "nothing") == "none"


def test_v2_writer(tmp_path):
    root = _fake_v2(tmp_path)
    cg = V2Cgroup("envctl-x", root, _proc(tmp_path, "0::/user.slice/me\n"))
    cg.create(RES)
    d = root / "user.slice" / "me" / "envctl-x"
    assert (root / "user.slice" / "me" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (d / "memory.max").read_text() == str(1 << 30)
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "pids.max").read_text() == "64"
    cg.add(4242)
    assert (d / "cgroup.procs").read_text() == "4242\n"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cg.oom_killed()
    for f in d.iterdir():  # a real cgroupfs rmdir succeeds with its control files; emulate that
        f.unlink()
    cg.remove(timeout=0)
    assert not d.exists()


def test_v1_writer(tmp_path):
    root = tmp_path / "v1"
    for c in ("memory", "cpu", "pids"):
        (root / c / "a").mkdir(parents=True)
    (root / "memory" / "a" / "memory.memsw.limit_in_bytes").write_text("")
    cg = V1Cgroup("envctl-y", root, _proc(tmp_path, "4:memory:/a\n1:cpu:/a\n8:pids:/a\n"))
    cg.create(RES)
    assert (root / "memory" / "a" / "envctl-y" / "memory.limit_in_bytes").read_text() == str(1 << 30)
    assert (root / "cpu" / "a" / "envctl-y" / "cpu.cfs_quota_us").read_text() == "150000"
    assert (root / "pids" / "a" / "envctl-y" / "pids.max").read_text() == "64"
    (root / "memory" / "a" / "envctl-y" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_killed()


def test_unwritable_warns_once(tmp_path):
    warnings = []
    assert open_cgroup("x", RES, root=tmp_path / "none", warn=warnings.append) is None
    assert len(warnings) == 1 and "not enforced" in warnings[0]
    assert open_cgroup("x", {}, root=tmp_path / "none", warn=warnings.append) is None
    assert len(warnings) == 1
