"""``envctl bundle`` + ``envctl oci``: the same bundle run by envctl's builtin runtime and by runc
gives the same capabilities, no_new_privs, mounts, masked paths, rlimits, fds, user and exit
codes; the create/start/state/kill/delete lifecycle follows runc's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.runtime_fixtures import REPO, root_env, rt_env  # noqa: F401 (fixtures)

RUNC = shutil.which("runc")

# Prints one JSON object describing the process's view of the container (busybox sh).
PROBE = r"""#!/bin/sh
st() { grep "^$1:" /proc/self/status | cut -f2; }
printf '{'
for k in CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp; do printf '"%s": "%s", ' $k "$(st $k)"; done
printf '"uid": "%s", "gid": "%s", ' "$(id -u)" "$(id -g)"
printf '"nofile": "%s", "cwd": "%s", "hostname": "%s", ' "$(ulimit -n)" "$(pwd)" "$(hostname)"
sleep 5 & printf '"fds": "%s", ' "$(ls /proc/$!/fd | tr '\n' ' ')"; kill $!
printf '"masked": "'
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /sys/firmware; do
  if [ -d $p ]; then printf '%s:%s ' $p "$(ls -A $p | wc -l)"; elif [ -e $p ]; then printf '%s:%s ' $p "$(head -c 64 $p 2>/dev/null | wc -c)"; fi
done
printf '", "mounts": "'
cut -d' ' -f5,6 /proc/self/mountinfo | while read mp opts; do
  case $mp in /dev/null|/dev/zero|/dev/full|/dev/random|/dev/urandom|/dev/tty|/sys/*) continue;; esac
  ro=rw; case ,$opts, in *,ro,*) ro=ro;; esac; printf '%s:%s ' $mp $ro
done
printf '"}\n'
exit 3
"""


def _probe(out: str) -> dict:
    line = next(x for x in out.splitlines() if x.startswith("{"))
    data = json.loads(line)
    data["mounts"] = sorted(data["mounts"].split())
    data["masked"] = sorted(data["masked"].split())
    return data


@pytest.fixture
def bundle(rt_env):
    root_env = rt_env
    root_env.prepare()
    b = root_env.base / "bundle"
    # passed with sh -c, not as a script file: busybox sh keeps a script open on fd 10 and its
    # background children may inherit it, which would make the fd table racy
    r = root_env.envctl("bundle", str(b), "--", "sh", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((b / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh", "-c", PROBE]
    return b


@pytest.mark.skipif(RUNC is None, reason="runc not installed (.ci/run installs it)")
def test_probe_matches_runc(rt_env, bundle):
    # as root and rootless (runc's rootless mode with the same newuidmap mappings)
    ours = rt_env.envctl("oci", "--root", str(rt_env.base / "oci"), "run", "--bundle", str(bundle), "p1")
    theirs = rt_env.run_raw([RUNC, "--root", str(rt_env.base / "runc"), "run", "--bundle", str(bundle), "p1"])
    assert (ours.returncode, theirs.returncode) == (3, 3), (ours.stderr, theirs.stderr)
    a, b = _probe(ours.stdout), _probe(theirs.stdout)
    assert a == b
    assert a["CapEff"] == "00000000a80425fb" and a["NoNewPrivs"] == "1" and a["fds"].split() == ["0", "1", "2"]
    assert a["Seccomp"] == "2"


def _oci(env, *args, **kw):
    return env.envctl("oci", "--root", str(env.base / "oci"), *args, **kw)


def _oci_create(env, *args) -> int:
    """``oci create`` with stdio in a file: like runc's, the container keeps the caller's stdio, so
    pipes would stay open until it exits."""
    with open(env.base / "create.log", "w") as log:
        full = dict(os.environ)
        full.update(env._env())
        return subprocess.run([sys.executable, "-m", "envctl", "oci", "--root", str(env.base / "oci"), "create", *args],
                              cwd=env.project, env=full, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                              timeout=60).returncode


def test_oci_lifecycle(root_env):
    root_env.prepare()
    b = root_env.base / "b2"
    assert root_env.envctl("bundle", str(b), "--", "sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.05; done").returncode == 0
    pidfile = root_env.base / "pid"
    assert _oci_create(root_env, "--bundle", str(b), "--pid-file", str(pidfile), "c1") == 0, \
        (root_env.base / "create.log").read_text()
    st = json.loads(_oci(root_env, "state", "c1").stdout)
    assert st["status"] == "created" and st["pid"] == int(pidfile.read_text())
    assert _oci_create(root_env, "--bundle", str(b), "c1") == 1  # id taken
    assert _oci(root_env, "start", "c1").returncode == 0
    assert json.loads(_oci(root_env, "state", "c1").stdout)["status"] == "running"
    assert _oci(root_env, "delete", "c1").returncode == 1  # running, no --force
    assert _oci(root_env, "kill", "c1", "TERM").returncode == 0
    deadline = time.monotonic() + 10
    while json.loads(_oci(root_env, "state", "c1").stdout)["status"] != "stopped":
        assert time.monotonic() < deadline, "container did not stop"
        time.sleep(0.05)
    assert _oci(root_env, "delete", "c1").returncode == 0
    r = _oci(root_env, "state", "c1")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_bundle_copy_runs_anywhere(root_env):
    root_env.prepare()
    b = root_env.base / "b3"
    assert root_env.envctl("bundle", "--copy", str(b), "--", "sh", "-c", "exit 4").returncode == 0
    assert (b / "rootfs" / "bin" / "busybox").is_file()
    cfg = json.loads((b / "config.json").read_text())
    assert cfg["root"]["path"] == "rootfs"
    assert _oci(root_env, "run", "--bundle", str(b), "c3").returncode == 4
