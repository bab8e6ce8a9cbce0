"""The build-steps CLI end to end on a busybox image in the loopback registry, through the real
runtime: up (steps + lock records), verify, push/export (skopeo reads it; a second env uses it
as its image), the registry build cache across two stores, and a rootless build. Ctrl-C during a
build step is ``envctl: interrupted``, exit 130 (not a failed step to fix in envctl.yaml); a step
that exits 130 by itself is still a failed step."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

STEPS = """\
steps:
  - run: busybox mkdir -p /opt/app && echo built > /opt/app/out && busybox rm -f /etc/group
  - copy: {src: app.txt, dest: /opt/app/app.txt, mode: "0600"}
  - env: {GREETING: hello}
  - run: echo "$GREETING" >> /opt/app/out && busybox cat /opt/app/app.txt >> /opt/app/out
"""


def make_project(path, image, steps=STEPS, extra=""):
    path.mkdir(parents=True, exist_ok=True)
    (path / "envctl.yaml").write_text(f"version: 1\nimage: {image}\n{steps}{extra}")
    (path / "app.txt").write_text("app v1\n")
    return path


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="root runtime path; rootless is tested below")


@needs_root
def test_up_builds_steps_records_lock_and_verify_passes(tmp_path, run_envctl, test_images):
    proj = make_project(tmp_path / "p", test_images.refs["single"])
    up = ok(run_envctl("up", cwd=proj))
    assert up.stderr.count(": building") == 3
    lock = json.loads((proj / "envctl.lock").read_text())
    kinds = [(s["kind"], "platforms" in s) for s in lock["steps"]]
    assert kinds == [("run", True), ("copy", True), ("env", False), ("run", True)]
    assert ok(run_envctl("run", "--", "busybox", "cat", "/opt/app/out", cwd=proj)).stdout == "built\nhello\napp v1\n"
    assert ok(run_envctl("run", "--", "busybox", "stat", "-c", "%a", "/opt/app/app.txt", cwd=proj)).stdout == "600\n"
    again = ok(run_envctl("up", cwd=proj))
    assert ": building" not in again.stderr and again.stderr.count("cached (local)") == 3
    # editing the copied file rebuilds that step and later ones only
    (proj / "app.txt").write_text("app v2\n")
    edited = ok(run_envctl("up", cwd=proj))
    assert edited.stderr.count(": building") == 2 and edited.stderr.count("cached (local)") == 1
    v = ok(run_envctl("verify", "--json", cwd=proj))
    report = json.loads(v.stdout)
    assert report["ok"] and [s["status"] for s in report["steps"]] == ["ok", "ok", "ok"]
    assert all(b["status"] in ("ok", "downloaded") for b in report["blobs"])


@needs_root
def test_verify_names_the_file_a_nondeterministic_step_writes(tmp_path, run_envctl, test_images):
    steps = ("steps:\n  - run: busybox mkdir -p /opt && busybox date > /opt/stamp"
             " && busybox cat /proc/sys/kernel/random/uuid >> /opt/stamp && echo same > /opt/same\n")
    proj = make_project(tmp_path / "p", test_images.refs["single"], steps)
    ok(run_envctl("up", cwd=proj))
    v = run_envctl("verify", cwd=proj)
    assert v.returncode == 1, v.stdout + v.stderr
    assert "/opt/stamp: content" in v.stdout and "/opt/same" not in v.stdout and "FAILED" in v.stdout
    js = json.loads(run_envctl("verify", "--json", cwd=proj).stdout)
    (step,) = js["steps"]
    assert step["status"] == "differs" and [p["path"] for p in step["paths"]] == ["opt/stamp"]
    # marked non-reproducible: reported, not failed
    (proj / "envctl.yaml").write_text((proj / "envctl.yaml").read_text().replace(
        "  - run: busybox", "  - reproducible: false\n    run: busybox"))
    ok(run_envctl("lock", cwd=proj))
    ok(run_envctl("up", cwd=proj))
    v2 = run_envctl("verify", "--json", cwd=proj)
    assert v2.returncode == 0, v2.stdout + v2.stderr
    assert json.loads(v2.stdout)["steps"][0]["status"] == "nondeterministic"


@needs_root
def test_failed_step_shows_status_and_output(tmp_path, run_envctl, test_images):
    steps = "steps:\n  - run: echo first > /first\n  - run: echo preparing; echo broken >&2; exit 7\n"
    proj = make_project(tmp_path / "p", test_images.refs["single"], steps)
    p = run_envctl("up", cwd=proj)
    assert p.returncode == 1
    assert "step 2" in p.stderr and "exit status 7" in p.stderr and "broken" in p.stderr
    assert "Traceback" not in p.stderr
    fixed = make_project(tmp_path / "p", test_images.refs["single"],
                         "steps:\n  - run: echo first > /first\n  - run: echo fixed > /second\n")
    again = ok(run_envctl("up", cwd=fixed))
    assert again.stderr.count("cached (local)") == 1 and again.stderr.count(": building") == 1


def _project(tmp_path, image, run):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {image}\nsteps:\n  - run: {run}\n")
    return proj


@pytest.mark.skipif(os.geteuid() != 0, reason="root build path")
def test_ctrl_c_during_a_step_is_an_interruption(tmp_path, test_images, envctl_home):
    proj = _project(tmp_path, test_images.refs["single"], "busybox touch /started && busybox sleep 60")
    p = subprocess.Popen([sys.executable, "-m", "envctl", "up"], cwd=proj, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(envctl_home.glob("tmp/build-*/layer/root/started")):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "envctl: interrupted" in err and "failed with exit status" not in err, err


@pytest.mark.skipif(os.geteuid() != 0, reason="root build path")
def test_step_exiting_130_by_itself_is_a_failed_step(tmp_path, run_envctl, test_images):
    proj = _project(tmp_path, test_images.refs["single"], "exit 130")
    r = run_envctl("up", cwd=proj)
    assert r.returncode == 1 and "failed with exit status 130" in r.stderr, r.stderr


@needs_root
def test_push_export_and_reuse_as_image(tmp_path, run_envctl, test_images, registry):
    proj = make_project(tmp_path / "p", test_images.refs["single"])
    ok(run_envctl("up", cwd=proj))
    pushed = json.loads(ok(run_envctl("push", "--json", f"{registry.host}/envctl/devenv:v1", cwd=proj)).stdout)
    info = registry.skopeo_inspect("envctl/devenv", "v1")
    assert info["Digest"] == pushed["digest"]
    assert pushed["mounted"] >= 1  # base layers mounted from the base image's repository
    assert info["Labels"]["dev.envctl.spec.digest"].startswith("sha256:")
    cfg = registry.skopeo_inspect("envctl/devenv", "v1", config=True)
    assert cfg["config"]["Cmd"] == ["/bin/sh"] and "GREETING=hello" in cfg["config"]["Env"]
    # export gives the same manifest
    exported = json.loads(ok(run_envctl("export", "--json", f"oci:{tmp_path / 'oci'}:dev", cwd=proj)).stdout)
    assert exported["manifestDigest"] == pushed["digest"]
    ok(run_envctl("export", f"docker-archive:{tmp_path / 'env.tar'}:envctl/devenv:v1", cwd=proj))
    out = subprocess.run(["skopeo", "inspect", f"docker-archive:{tmp_path / 'env.tar'}"], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)["Labels"]["dev.envctl.spec.digest"] == info["Labels"]["dev.envctl.spec.digest"]
    # the pushed reference is the image of a second environment
    second = make_project(tmp_path / "second", pushed["pushed"], steps="")
    ok(run_envctl("up", cwd=second))
    r = ok(run_envctl("run", "--", "busybox", "cat", "/opt/app/out", cwd=second))
    assert r.stdout == "built\nhello\napp v1\n"
    assert ok(run_envctl("run", "--", "sh", "-c", "test -e /etc/group || echo gone", cwd=second)).stdout == "gone\n"


@needs_root
def test_registry_cache_second_store_runs_no_step(tmp_path, run_envctl, test_images, registry):
    cache = f"\ncache: {{registry: {registry.host}/envctl/buildcache}}\n"
    proj = make_project(tmp_path / "p", test_images.refs["single"], extra=cache)
    a = ok(run_envctl("up", cwd=proj, env={"ENVCTL_HOME": str(tmp_path / "store-a")}))
    assert a.stderr.count(": building") == 3 and "warning" not in a.stderr
    b = ok(run_envctl("up", cwd=proj, env={"ENVCTL_HOME": str(tmp_path / "store-b")}))
    assert ": building" not in b.stderr and b.stderr.count("cached (remote)") == 3, b.stderr
    r = ok(run_envctl("run", "--", "busybox", "cat", "/opt/app/out", cwd=proj,
                      env={"ENVCTL_HOME": str(tmp_path / "store-b")}))
    assert r.stdout == "built\nhello\napp v1\n"


@pytest.mark.rootless
def test_rootless_steps(rootless_user, test_images):
    work = rootless_user.tmpdir()
    try:
        proj = work / "p"
        make_project(proj, test_images.refs["single"], STEPS + "  - copy: {src: app.txt, dest: /home/app/, owner: \"1000:1000\"}\n"
                     "  - user: \"1000:1000\"\n  - run: echo mine > /tmp/byapp\n")
        for p in (proj, proj / "envctl.yaml", proj / "app.txt"):
            os.chown(p, rootless_user.uid, rootless_user.gid)
        env = {"ENVCTL_HOME": str(work / "home")}
        up = rootless_user.envctl("up", cwd=proj, env=env, timeout=180)
        assert up.returncode == 0, up.stderr
        assert up.stderr.count(": building") == 5
        r = rootless_user.envctl("run", "--", "busybox", "cat", "/opt/app/out", cwd=proj, env=env)
        assert r.returncode == 0 and r.stdout == "built\nhello\napp v1\n", r.stderr
        lock = json.loads((proj / "envctl.lock").read_text())
        ids = [s["platforms"] for s in lock["steps"] if "platforms" in s]
        assert len(ids) == 5
        own = rootless_user.envctl("run", "--", "busybox", "stat", "-c", "%u:%g %a", "/home/app/app.txt",
                                   "/opt/app/app.txt", "/tmp/byapp", "/tmp", cwd=proj, env=env)
        assert own.stdout.split() == ["1000:1000", "644", "0:0", "600", "1000:1000", "644", "0:0", "1777"], \
            own.stdout + own.stderr
        v = rootless_user.envctl("verify", "--json", cwd=proj, env=env, timeout=180)
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


@pytest.mark.rootless
def test_rootless_step_switching_users_without_subids_says_what_doctor_says(rootless_user, test_images):
    """Only the user's own id mapped (ENVCTL_SUBIDS=0, as without an /etc/subuid range): a step
    that chowns to another id fails with the mapping explained, not 'fix the command'."""
    work = rootless_user.tmpdir()
    try:
        proj = work / "p"
        make_project(proj, test_images.refs["single"], "steps:\n  - run: busybox touch /x && busybox chown 5:5 /x\n")
        for p in (proj, proj / "envctl.yaml", proj / "app.txt"):
            os.chown(p, rootless_user.uid, rootless_user.gid)
        env = {"ENVCTL_HOME": str(work / "home"), "ENVCTL_SUBIDS": "0"}
        up = rootless_user.envctl("up", cwd=proj, env=env, timeout=180)
        assert up.returncode == 1, up.stderr
        assert "build step 1" in up.stderr and "Invalid argument" in up.stderr, up.stderr
        hint = [line for line in up.stderr.splitlines() if line.startswith("hint: ")]
        assert hint and "maps only your own user id" in hint[0] and "envctl doctor" in hint[0], up.stderr
        assert "fix the command" not in up.stderr
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
