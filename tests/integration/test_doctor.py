"""``envctl doctor`` on this host, as root and as the rootless test user; missing tools simulated by
PATH; user namespaces really disabled (max_user_namespaces=0 inside an identity-mapped user
namespace) for doctor and for ``envctl run``, whose error must point at ``envctl doctor``."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.integration.test_build_cli import make_project

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs the doctor as root and as the rootless test user")

NAMES = ["user namespaces", "overlay", "rootless overlay", "cgroups", "newuidmap", "newgidmap",
         "subordinate ids", "openat2", "seccomp", "store", "runc", "crun"]

# Runs argv as uid/gid inside a user namespace mapped 1:1 onto the host's ids (so files look the
# same) whose user.max_user_namespaces is 0: there, unprivileged user namespaces are disabled.
NO_USERNS = r"""
import ctypes, os, sys
uid, gid, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
r1, w1 = os.pipe(); r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:
        os._exit(99)
    os.write(w1, b"u"); os.read(r2, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.setgroups([]); os.setgid(gid); os.setuid(uid)
    os.execvp(argv[0], argv)
os.read(r1, 1)
for name in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write("0 0 4294967295\n")
os.write(w2, b"g")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def doctor_json(r) -> dict[str, dict]:
    data = json.loads(r.stdout)
    assert [f["name"] for f in data["findings"]] == NAMES
    for f in data["findings"]:
        assert f["status"] in ("ok", "warn", "fail"), f
        assert f["status"] == "ok" or f["hint"], f
    assert data["ok"] == (r.returncode == 0) == all(f["status"] != "fail" for f in data["findings"])
    return {f["name"]: f for f in data["findings"]}


def test_doctor_as_root(run_envctl, tmp_path):
    r = run_envctl("doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    f = doctor_json(r)
    assert f["user namespaces"]["status"] == "ok" and "user.max_user_namespaces" in f["user namespaces"]["data"]
    assert f["cgroups"]["status"] == "ok" and f["cgroups"]["data"]["layout"] in ("v1", "v2", "hybrid")
    assert f["subordinate ids"]["detail"] == "not needed as root"
    assert f["openat2"]["status"] == f["seccomp"]["status"] == f["overlay"]["status"] == "ok"
    store = f["store"]
    assert store["status"] == "ok" and store["data"]["path"] == os.environ["ENVCTL_HOME"]
    assert store["data"]["filesystem"] and store["data"]["mountPoint"].startswith("/")
    assert f["runc"]["data"]["path"] == shutil.which("runc")
    text = run_envctl("doctor")
    assert text.returncode == 0 and text.stdout.splitlines()[0].split()[:3] == ["ok", "user", "namespaces"]
    assert text.stdout.rstrip().endswith("envctl can run here")


def test_doctor_missing_tools_via_path(run_envctl, tmp_path):
    bin_dir = tmp_path / "bin"  # only python: no newuidmap, newgidmap, runc, crun
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    r = run_envctl("doctor", "--json", env={"PATH": str(bin_dir)})
    f = doctor_json(r)
    assert r.returncode == 0, r.stdout  # as root none of them is required
    for tool in ("newuidmap", "newgidmap"):
        assert f[tool]["status"] == "warn" and f[tool]["hint"] == "apt-get install uidmap"
    assert f["runc"]["status"] == "warn" and f["runc"]["hint"].startswith("apt-get install runc")
    # selected with ENVCTL_RUNTIME, a missing runc fails
    r = run_envctl("doctor", env={"PATH": str(bin_dir), "ENVCTL_RUNTIME": "runc"})
    assert r.returncode == 1, r.stdout
    assert "fail  runc" in r.stdout and "fix: apt-get install runc" in r.stdout


def test_doctor_rootless(rootless_user):
    work = rootless_user.tmpdir()
    try:
        env = {"ENVCTL_HOME": str(work / "store")}
        r = rootless_user.envctl("doctor", "--json", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        f = doctor_json(r)
        assert f["user namespaces"]["status"] == "ok"
        assert f["rootless overlay"]["status"] == "ok"
        sub = f["subordinate ids"]
        mine = [line.strip() for line in open("/etc/subuid") if line.split(":")[0] == rootless_user.name]
        assert sub["status"] == "ok" and mine and all(m in sub["detail"] for m in mine), (mine, sub)
        assert sub["data"]["uid"] == [{"start": int(m.split(":")[1]), "count": int(m.split(":")[2])} for m in mine]
        assert f["newuidmap"]["status"] == "ok"
        if f["cgroups"]["status"] != "ok":  # no delegation for this user here: limits not enforced
            assert f["cgroups"]["status"] == "warn" and "Delegate=yes" in f["cgroups"]["hint"]
        assert f["store"]["status"] == "ok" and f["store"]["data"]["path"] == str(work / "store")
        # the user has a subordinate range: without newuidmap/newgidmap the runtime cannot map it
        bin_dir = work / "bin"
        bin_dir.mkdir()
        os.symlink(rootless_user.python, bin_dir / "python3")
        r = rootless_user.run(["python3", "-m", "envctl", "doctor"], env={**env, "PATH": str(bin_dir)})
        assert r.returncode == 1, r.stdout + r.stderr
        assert "fail  newuidmap" in r.stdout and "fix: apt-get install uidmap" in r.stdout
        # ENVCTL_SUBIDS=0 (single mapping): not required
        r = rootless_user.run(["python3", "-m", "envctl", "doctor", "--json"],
                              env={**env, "PATH": str(bin_dir), "ENVCTL_SUBIDS": "0"})
        assert r.returncode == 0 and doctor_json(r)["newuidmap"]["status"] == "warn", r.stdout
        # an unwritable store fails
        r = rootless_user.envctl("doctor", "--json", env={"ENVCTL_HOME": "/root/envctl-store"})
        assert r.returncode == 1 and doctor_json(r)["store"]["status"] == "fail", r.stdout
        assert "ENVCTL_HOME" in doctor_json(r)["store"]["hint"]
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def test_userns_disabled_doctor_and_run(rootless_user, test_images, tmp_path):
    helper = tmp_path / "no_userns.py"
    helper.write_text(NO_USERNS)
    work = rootless_user.tmpdir()
    try:
        proj = work / "p"
        make_project(proj, test_images.refs["single"], "")
        for p in (proj, *proj.iterdir()):
            os.chown(p, rootless_user.uid, rootless_user.gid)
        env = rootless_user.env({"ENVCTL_HOME": str(work / "store")})
        up = rootless_user.envctl("up", cwd=proj, env={"ENVCTL_HOME": str(work / "store")}, timeout=180)
        assert up.returncode == 0, up.stderr

        def no_userns(*args):
            return subprocess.run([sys.executable, str(helper), str(rootless_user.uid), str(rootless_user.gid),
                                   rootless_user.python, "-m", "envctl", *args],
                                  cwd=proj, env=env, capture_output=True, text=True, timeout=120)

        d = no_userns("doctor", "--json")
        assert d.returncode == 1, d.stdout + d.stderr
        userns = doctor_json(d)["user namespaces"]
        assert userns["status"] == "fail" and userns["data"]["user.max_user_namespaces"] == "0"
        assert userns["hint"].startswith("enable them: sysctl -w user.max_user_namespaces=")
        r = no_userns("run", "--", "true")
        assert r.returncode == 1, r.stdout + r.stderr
        assert "envctl: error:" in r.stderr and "envctl doctor" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
