"""The builtin runtime through the real CLI, as root and as an unprivileged user (busybox rootfs).

Covers issue 5's test list: PID 1, exit codes, signals, stdin, ownership in the project, masked
paths, capabilities, fds, network none, exec into a running environment, down. The working
directory: a missing one (OCI process.cwd, ``-w``, a ``workdir:`` step) is created, like runc does;
commands run from a subdirectory of the project start in the matching subdirectory of the workdir
(the project's bind mount), like ``nix develop``/devbox keep the cwd, while the project root and
directories outside the project start in the workdir, and ``-w`` wins.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from envctl import _fast
from envctl.commands._enter import mapped_cwd
from tests.integration.runtime_fixtures import root_env, rootless_env, rt_env  # noqa: F401 (fixtures)

# Docker's 14 default capabilities as a /proc/self/status mask
DEFAULT_CAP_MASK = "00000000a80425fb"


def _status(text: str) -> dict:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.mark.parametrize("argv,code,msg", [
    (["true"], 0, ""),
    (["sh", "-c", "exit 3"], 3, ""),
    (["no-such-command"], 127, "no-such-command: command not found"),
    (["/etc/passwd"], 126, "/etc/passwd: permission denied"),
    (["sh", "-c", "kill -9 $$"], 137, ""),
])
def test_exit_codes(rt_env, argv, code, msg):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", *argv)
    assert r.returncode == code, r.stderr
    assert msg in r.stderr


def test_pid1_reaps_and_command_is_pid2(rt_env):
    rt_env.prepare()
    script = ("echo self=$$; (sh -c 'exit 0' &); i=0; "
              "while [ $i -lt 50 ]; do z=$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z '); "
              "[ \"$z\" = 0 ] && break; i=$((i+1)); sleep 0.02; done; echo zombies=$z; "
              "echo init=$(tr -d '\\0' < /proc/1/cmdline)")
    r = rt_env.envctl("run", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert "self=2" in r.stdout
    assert "zombies=0" in r.stdout
    assert "init=envctl-init" in r.stdout  # not envctl's host command line


def test_sigterm_reaches_command(rt_env):
    rt_env.prepare()
    p = rt_env.popen("run", "--", "sh", "-c",
                     "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done")
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert "got-term" in out, err
    assert p.returncode == 7


def test_stdin_pipes_through(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", "cat", input="hello\nworld\n")
    assert r.stdout == "hello\nworld\n"


def test_project_files_owned_by_invoking_user(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", "sh", "-c", "id -u; touch /workspace/made-inside; mkdir /workspace/d")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"  # root inside
    for name in ("made-inside", "d"):
        assert (rt_env.project / name).stat().st_uid == rt_env.uid


def test_user_keep_id(rt_env):
    rt_env.prepare({"user": "user"})
    if rt_env.mode == "root":  # as root there is no user namespace: uid 1000 is uid 1000 on the host
        os.chmod(rt_env.project, 0o777)
    r = rt_env.envctl("run", "--", "sh", "-c", "id -u; id -g; touch /workspace/by-user")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "1000"]
    expected = rt_env.uid if rt_env.mode == "rootless" else 1000
    assert (rt_env.project / "by-user").stat().st_uid == expected


def test_masked_and_readonly_paths(rt_env):
    rt_env.prepare()
    script = ("for p in /proc/keys /proc/timer_list /proc/sched_debug; do "
              "[ -e $p ] && echo $p=$(wc -c < $p); done; echo fw=$(ls -A /sys/firmware | wc -l); "
              "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-ro; "
              "touch /sys/x 2>/dev/null && echo sysfs-writable || echo sysfs-ro")
    r = rt_env.envctl("run", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        if line.startswith("/proc/"):
            assert line.endswith("=0"), line
    assert "fw=0" in r.stdout and "sys-ro" in r.stdout and "sysfs-ro" in r.stdout


def test_capabilities_and_no_new_privs(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", "cat", "/proc/self/status")
    st = _status(r.stdout)
    for k in ("CapBnd", "CapEff", "CapPrm", "CapInh"):
        assert st[k].strip() == DEFAULT_CAP_MASK, (k, st[k])
    assert st["CapAmb"].strip() == "0000000000000000"
    assert st["NoNewPrivs"].strip() == "1"


def test_seccomp_denies_namespaces_and_keyrings(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", "sh", "-c",
                      "grep Seccomp: /proc/self/status; unshare -U true 2>&1 || echo denied-$?; "
                      "sleep 0 & wait $! && echo fork-ok")
    assert "Seccomp:\t2" in r.stdout, r.stdout + r.stderr
    assert "Operation not permitted" in r.stdout and "denied-" in r.stdout
    assert "fork-ok" in r.stdout
    # exec gets the same filter
    p = rt_env.popen("run", "--", "sh", "-c", "echo ready; exec sleep 60")
    assert p.stdout.readline().strip() == "ready"
    rt_env.wait_state()
    r = rt_env.envctl("exec", "--", "grep", "Seccomp:", "/proc/self/status")
    assert "Seccomp:\t2" in r.stdout, r.stdout + r.stderr


def test_cap_add_and_drop(rt_env):
    rt_env.prepare({"cap_add": ["SYS_PTRACE"], "cap_drop": ["NET_RAW", "MKNOD"]})
    st = _status(rt_env.envctl("run", "--", "cat", "/proc/self/status").stdout)
    mask = int(st["CapBnd"], 16)
    assert mask & (1 << 19) and not mask & (1 << 13) and not mask & (1 << 27)


def test_no_host_fds(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", "sh", "-c", "sleep 10 & ls /proc/$!/fd; kill $!")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["0", "1", "2"]
    # PID 1 (the host's Python) is not dumpable: nothing inside can reach its exe or fds
    r = rt_env.envctl("run", "--", "sh", "-c", "readlink /proc/1/exe || echo denied; readlink /proc/1/fd/1 || echo denied; cat /proc/1/environ || echo denied")
    assert r.stdout.count("denied") == 3, r.stdout


def test_network_none_has_only_loopback(rt_env):
    rt_env.prepare({"network": "none"})
    r = rt_env.envctl("run", "--", "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1; ip link show lo")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert [x.strip() for x in lines if x.strip() and ":" not in x and "link/" not in x] == ["lo"]
    assert "UP" in r.stdout


def test_hostname_and_cwd(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "--", "sh", "-c", "pwd; hostname")
    assert r.stdout.split() == ["/workspace", "project"]


def test_run_w_creates_missing_directory(rt_env):
    rt_env.prepare()
    r = rt_env.envctl("run", "-w", "/a/b", "--", "sh", "-c", "pwd; stat -c %a /a/b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/a/b", "755"]


def test_cwd_created_before_the_user_switch(rt_env):
    # runc makes process.cwd as the container's root, then switches user: a non-root user gets it too
    rt_env.prepare({"user": "1000:1000"})
    r = rt_env.envctl("run", "-w", "/opt/new", "--", "sh", "-c", "id -u; pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "/opt/new"]


@pytest.mark.registry
@pytest.mark.skipif(os.geteuid() != 0, reason="root build path")
def test_workdir_step_creates_the_directory(tmp_path, run_envctl, test_images):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {test_images.refs['single']}\n"
                                      "steps:\n  - workdir: /opt/w\n  - run: pwd > /opt/w/where\n")
    up = run_envctl("up", cwd=proj)
    assert up.returncode == 0, up.stderr
    r = run_envctl("run", "--", "busybox", "cat", "/opt/w/where", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/opt/w\n"


def _cfg(src, dest="/workspace"):
    return {"process": {"cwd": dest}, "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                                                 {"destination": dest, "type": "bind", "source": str(src)}]}


@pytest.mark.parametrize("where,want", [("", None), ("sub", "/workspace/sub"), ("sub/deep er", "/workspace/sub/deep er"),
                                        ("..", None), ("link", "/workspace/sub")])
def test_subdirectory_cwd_mapping_same_in_fast_entry(tmp_path, monkeypatch, where, want):
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


def test_exec_status_and_down(rt_env):
    rt_env.prepare()
    p = rt_env.popen("run", "--", "sh", "-c", "echo main > /tmp/marker; echo ready; exec sleep 60")
    assert p.stdout.readline().strip() == "ready"
    state = rt_env.wait_state()
    assert state["status"] == "running"
    r = rt_env.envctl("exec", "--", "sh", "-c", "cat /tmp/marker; hostname; pwd; grep NoNewPrivs /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:3] == ["main", "project", "/workspace"]
    assert "NoNewPrivs:\t1" in r.stdout
    assert rt_env.envctl("exec", "--", "sh", "-c", "exit 4").returncode == 4
    st = rt_env.envctl("status", "--json")
    assert '"running": true' in st.stdout, st.stdout + st.stderr
    d = rt_env.envctl("down", "-t", "5")
    assert d.returncode == 0, d.stderr
    p.wait(timeout=20)
    assert p.returncode == 128 + signal.SIGTERM
    assert not rt_env.state_file().exists()
    assert rt_env.envctl("exec", "--", "true").returncode == 1


def test_envctl_death_kills_environment(rt_env):
    rt_env.prepare()
    p = rt_env.popen("run", "--", "sh", "-c", "echo ready; exec sleep 60")
    assert p.stdout.readline().strip() == "ready"
    pid1 = rt_env.wait_state()["pid"]
    p.kill()
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid1, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("environment outlived envctl")


def test_pids_limit_stops_fork_loop(root_env):
    root_env.prepare({"pids": 20})
    r = root_env.envctl("run", "--", "sh", "-c",
                        "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo spawned; kill $(jobs -p) 2>/dev/null; exit 0",
                        timeout=60)
    assert "fork" in r.stderr.lower() or "resource" in r.stderr.lower(), r.stderr


def test_memory_limit_oom_is_137(root_env):
    root_env.prepare({"memory": 32 * 1024 * 1024})
    r = root_env.envctl("run", "--", "tail", "/dev/zero", timeout=60)
    assert r.returncode == 137, r.stderr
    assert "killed: out of memory" in r.stderr


def test_rootless_limits_warn_once(rootless_env):
    rt_env = rootless_env
    rt_env.prepare({"pids": 50, "memory": 64 * 1024 * 1024})
    r = rt_env.envctl("run", "--", "true")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("resource limits are not enforced") == 1


def _overlay_plan(env) -> dict:
    d = {k: env.base / k for k in ("upper", "work", "merged")}
    for p in d.values():
        p.mkdir()
        if env.user:
            os.chown(p, env.user.uid, env.user.gid)
    return {"driver": "overlay", "lowerdirs": [str(env.rootfs)], "upperdir": str(d["upper"]),
            "workdir": str(d["work"]), "merged": str(d["merged"]), "userxattr": env.mode == "rootless"}


def test_overlay_rootfs_from_annotation(rt_env):
    # the rootfs dir doubles as the single lowerdir; the runtime mounts the overlay in its own namespace
    r = rt_env.run_raw([rt_env.python, "-m", "tests.integration.runtime_env", str(rt_env.project),
                        str(rt_env.rootfs)], cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert r.returncode == 0, r.stderr
    rt_env.prepare({"rootfs": _overlay_plan(rt_env)})
    r = rt_env.envctl("run", "--", "sh", "-c", "echo new > /etc/created; rm /bin/vi; grep ' / ' /proc/self/mountinfo")
    assert r.returncode == 0, r.stderr
    assert "overlay" in r.stdout
    assert (rt_env.base / "upper" / "etc" / "created").read_text() == "new\n"
    assert (rt_env.rootfs / "bin" / "vi").is_symlink()  # the lower layer is untouched
    assert not os.listdir(rt_env.base / "merged")  # nothing mounted on the host
    r = rt_env.envctl("run", "--", "sh", "-c", "cat /etc/created; [ -e /bin/vi ] && echo vi-exists || echo vi-gone")
    assert r.stdout.split() == ["new", "vi-gone"]
    r = rt_env.envctl("down", "--reset")
    assert r.returncode == 0, r.stderr
    r = rt_env.envctl("run", "--", "sh", "-c", "[ -e /etc/created ] && echo kept || echo reset")
    assert r.stdout.strip() == "reset"


def _cgroup_dirs(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            for c in ("cpu", "pids", "memory"):
                if c in ctrls.split(","):
                    out[c] = f"/sys/fs/cgroup/{ctrls}{path}"
    return out


def test_cgroup_limits_applied_and_removed(root_env):
    root_env.prepare({"cpus": 0.5, "pids": 30, "memory": 256 * 1024 * 1024})
    p = root_env.popen("run", "--", "sh", "-c", "echo ready; exec sleep 60")
    assert p.stdout.readline().strip() == "ready"
    dirs = _cgroup_dirs(root_env.wait_state()["pid"])
    assert open(f"{dirs['cpu']}/cpu.cfs_quota_us").read().strip() == "50000"
    assert open(f"{dirs['pids']}/pids.max").read().strip() == "30"
    assert open(f"{dirs['memory']}/memory.limit_in_bytes").read().strip() == str(256 * 1024 * 1024)
    r = root_env.envctl("run", "--", "cat", "/proc/self/cgroup")  # the cgroup namespace hides the host path
    assert all(line.endswith(":/") for line in r.stdout.split()), r.stdout
    assert root_env.envctl("down").returncode == 0
    p.wait(timeout=20)
    for d in dirs.values():
        assert not os.path.exists(d), d


@pytest.mark.parametrize("user,inside", [(None, "0"), ("user", "1000")])
def test_rootless_single_mapping_without_subids(rootless_env, user, inside):
    rootless_env.prepare({"subids": False, "user": user})
    r = rootless_env.envctl("run", "--", "sh", "-c", "id -u; wc -l < /proc/self/uid_map; touch /workspace/f")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [inside, "1"]
    assert (rootless_env.project / "f").stat().st_uid == rootless_env.uid
