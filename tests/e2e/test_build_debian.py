"""Build steps on a real Debian base: ``apt-get install`` from the Debian archive this machine
reaches, as root and rootless; verify reports the apt logs of the non-reproducible step."""

import json
import os
import subprocess

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.registry]

SPEC = """\
version: 1
image: docker.io/library/debian:bookworm-slim
steps:
  - run: apt-get update && apt-get install -y --no-install-recommends hello
    reproducible: false
  - copy: {src: motd, dest: /etc/motd}
  - run: hello > /opt/greeting && cat /etc/motd >> /opt/greeting
"""


def project(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "envctl.yaml").write_text(SPEC)
    (root / "motd").write_text("built by envctl\n")
    return root


def test_apt_get_install_as_root(base_registry, tmp_path, run_envctl):
    if os.geteuid() != 0:
        pytest.skip("the root path; rootless is the next test")
    proj = project(tmp_path / "p")
    env = base_registry.mirror_env
    up = run_envctl("up", cwd=proj, env=env, timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    r = run_envctl("run", "--", "cat", "/opt/greeting", cwd=proj, env=env)
    assert r.stdout == "Hello, world!\nbuilt by envctl\n", r.stderr
    v = run_envctl("verify", "--json", cwd=proj, env=env, timeout=600)
    assert v.returncode == 0, v.stdout[-3000:] + v.stderr[-3000:]
    steps = json.loads(v.stdout)["steps"]
    assert [s["status"] for s in steps][1:] == ["ok", "ok"]
    if steps[0]["status"] == "nondeterministic":  # apt/dpkg logs carry the time of the run
        assert {p["path"] for p in steps[0]["paths"]} <= {"var/log/apt/history.log", "var/log/apt/term.log",
                                                          "var/log/dpkg.log", "var/cache/ldconfig/aux-cache",
                                                          "var/log/apt/eipp.log.xz"}


@pytest.mark.rootless
def test_apt_get_install_rootless(base_registry, rootless_user):
    work = rootless_user.tmpdir()
    try:
        proj = project(work / "p")
        for p in (proj, proj / "envctl.yaml", proj / "motd"):
            os.chown(p, rootless_user.uid, rootless_user.gid)
        env = {**base_registry.mirror_env, "ENVCTL_HOME": str(work / "home")}
        up = rootless_user.envctl("up", cwd=proj, env=env, timeout=600)
        assert up.returncode == 0, up.stderr[-3000:]
        r = rootless_user.envctl("run", "--", "cat", "/opt/greeting", cwd=proj, env=env)
        assert r.stdout == "Hello, world!\nbuilt by envctl\n", r.stderr
        own = rootless_user.envctl("run", "--", "stat", "-c", "%u:%g %a", "/usr/bin/hello", "/etc/motd",
                                   cwd=proj, env=env)
        assert own.stdout.split("\n")[:2] == ["0:0 755", "0:0 644"], own.stdout + own.stderr
        # subordinate ids (engine/store/idmap.py): apt's sandbox user keeps its own directory
        apt = rootless_user.envctl("run", "--", "stat", "-c", "%U %a", "/var/cache/apt/archives/partial",
                                   cwd=proj, env=env)
        assert apt.stdout.strip() == "_apt 700", apt.stdout + apt.stderr
        v = rootless_user.envctl("verify", "--json", cwd=proj, env=env, timeout=600)
        assert v.returncode == 0, v.stdout[-3000:] + v.stderr[-3000:]
        assert [s["status"] for s in json.loads(v.stdout)["steps"]][1:] == ["ok", "ok"]
        assert not any((work / "home" / "tmp").iterdir()), "scratch trees left behind"
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
