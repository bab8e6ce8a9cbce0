"""The runtime on a real Debian rootfs (issue 5: busybox AND Debian), as root and rootless:
debian:bookworm from the loopback mirror (tests/e2e/conftest.py) entered with ``envctl run``:
/etc/os-release, ``id``, apt's ``_apt`` user resolving and usable (subordinate ids rootless),
bash as a login shell, PID 1 / signals / exit codes, and the probe of
tests/integration/test_runtime_oci.py run by envctl's runtime and by runc on the same bundle."""

from __future__ import annotations

import shutil
import signal

import pytest

from tests.integration.runtime_fixtures import _make, _teardown
from tests.integration.test_runtime_oci import PROBE, RUNC, _probe

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

SPEC = "version: 1\nimage: docker.io/library/debian:bookworm\nshell: /bin/bash\n"


@pytest.fixture(scope="module", params=["root", pytest.param("rootless", marks=pytest.mark.rootless)])
def debian(request, base_registry):
    """An up-to-date debian:bookworm environment, one per mode for the module (``up`` and the
    teardown of a Debian tree are the slow parts); tests only run commands in it."""
    env = _make(request.param, request)
    env.mirror = base_registry.mirror_env
    (env.project / "envctl.yaml").write_text(SPEC)
    if env.user:
        shutil.chown(env.project / "envctl.yaml", env.user.uid, env.user.gid)
    up = env.envctl("up", env=env.mirror, timeout=300)
    assert up.returncode == 0, up.stderr[-3000:]
    yield env
    _teardown(env)


def run(env, *argv, **kw):
    return env.envctl("run", "--", *argv, env=env.mirror, **kw)


def test_debian_identity_users_and_shell(debian):
    osr = run(debian, "cat", "/etc/os-release")
    assert osr.returncode == 0, osr.stderr
    assert "ID=debian" in osr.stdout.splitlines() and "VERSION_CODENAME=bookworm" in osr.stdout.splitlines()
    ident = run(debian, "id")
    assert ident.stdout.strip() == "uid=0(root) gid=0(root) groups=0(root)", ident.stdout + ident.stderr
    # apt's sandbox user resolves through the image's passwd, and the runtime can switch to it
    # (rootless: the user's /etc/subuid range is mapped, so uid 42 exists in the namespace)
    apt = run(debian, "bash", "-c", "id _apt && setpriv --reuid=_apt --regid=nogroup --clear-groups id -un "
                                    "&& stat -c '%U %a' /var/cache/apt/archives/partial")
    assert apt.returncode == 0, apt.stdout + apt.stderr
    assert apt.stdout.splitlines() == ["uid=42(_apt) gid=65534(nogroup) groups=65534(nogroup)", "_apt", "_apt 700"]
    sh = run(debian, "bash", "-lc", "shopt -q login_shell && echo login; echo $BASH_VERSION; echo $HOME; pwd")
    lines = sh.stdout.splitlines()
    assert sh.returncode == 0 and lines[0] == "login" and lines[1].startswith("5.2"), sh.stdout + sh.stderr
    assert lines[2:] == ["/root", "/workspace"], lines


@pytest.mark.parametrize("argv,code,msg", [
    (["bash", "-c", "exit 7"], 7, ""),
    (["no-such-command"], 127, "no-such-command: command not found"),
    (["/etc/os-release"], 126, "permission denied"),
    (["bash", "-c", "kill -TERM $$"], 128 + signal.SIGTERM, ""),
])
def test_debian_exit_codes(debian, argv, code, msg):
    r = run(debian, *argv)
    assert r.returncode == code, r.stderr
    assert msg in r.stderr


def test_debian_pid1_and_sigterm(debian):
    # the command is PID 2 under envctl's init, which reaps the orphan the subshell leaves
    script = ("echo self=$$; echo init=$(tr -d '\\0' < /proc/1/cmdline); (sleep 0.1 &); sleep 0.3; "
              "for i in $(seq 50); do z=$(grep -h '^State:' /proc/[0-9]*/status | grep -c Z); "
              "[ $z = 0 ] && break; sleep 0.05; done; echo zombies=$z")
    r = run(debian, "bash", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["self=2", "init=envctl-init", "zombies=0"], r.stdout + r.stderr
    # SIGTERM to envctl reaches the command; its exit status passes through
    p = debian.popen("run", "--", "bash", "-c",
                     "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.05; done")
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert "got-term" in out and p.returncode == 9, (out, err)


@pytest.mark.skipif(RUNC is None, reason="runc not installed (.ci/run installs it)")
def test_debian_probe_matches_runc(debian):
    # runc cannot mount envctl's overlay plan: both runtimes get the same plain rootfs — as root a
    # --copy bundle; rootless (--copy of an overlay needs root) the copy storage driver's tree.
    # Last test of the module: the rootless environment is re-composed with the copy driver.
    b = debian.base / "bundle"
    if debian.user:
        up = debian.envctl("up", env={**debian.mirror, "ENVCTL_STORAGE_DRIVER": "copy"}, timeout=300)
        assert up.returncode == 0, up.stderr[-3000:]
        r = debian.envctl("bundle", str(b), "--", "sh", "-c", PROBE, env={"ENVCTL_STORAGE_DRIVER": "copy"})
    else:
        r = debian.envctl("bundle", "--copy", str(b), "--", "sh", "-c", PROBE, timeout=120)
    assert r.returncode == 0, r.stderr
    ours = debian.envctl("oci", "--root", str(debian.base / "oci"), "run", "--bundle", str(b), "d1")
    theirs = debian.run_raw([RUNC, "--root", str(debian.base / "runc"), "run", "--bundle", str(b), "d1"])
    assert (ours.returncode, theirs.returncode) == (3, 3), (ours.stderr, theirs.stderr)
    a, b = _probe(ours.stdout), _probe(theirs.stdout)
    assert a == b
    assert a["CapEff"] == "00000000a80425fb" and a["NoNewPrivs"] == "1" and a["fds"].split() == ["0", "1", "2"]
    assert a["uid"] == a["gid"] == "0" and a["Seccomp"] == "2"
