"""End to end through the real workflow: an OCI image layout (made with umoci from a busybox
rootfs) -> ``envctl run`` brings the environment up (lock, unpack, overlay plan in env.json) and
enters it; the warm second run imports no YAML/HTTP/template library; runc runs the same
environment; rootless uses overlay with userxattr. Through the installed fast entry
(``.venv/bin/envctl``) on a warm environment, ``-e KEY`` passes the host's value (omitted when
unset) and ``-e =x`` is a usage error, as in the full CLI (envctl/_fast.py's parse_run hands these
forms to the full parser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from envctl import _fast
from tests.integration.runtime_env import make_busybox_rootfs
from tests.integration.runtime_fixtures import root_env, rt_env  # noqa: F401 (fixtures)

HEAVY = ("yaml", "httpx", "jinja2", "watchdog", "zstandard", "jsonschema")
ENVCTL = str(Path(sys.executable).parent / "envctl")


@pytest.fixture(scope="module")
def oci_layout():
    if not shutil.which("umoci"):
        pytest.skip("umoci not installed (.ci/run installs it)")
    base = Path(tempfile.mkdtemp(prefix="envctl-layout-"))  # pytest's tmp is 0700: the rootless user reads this
    os.chmod(base, 0o755)
    layout, bundle = base / "L", base / "B"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:bb"], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:bb", str(bundle)], check=True, capture_output=True)
    shutil.rmtree(bundle / "rootfs")
    make_busybox_rootfs(bundle / "rootfs")
    subprocess.run(["umoci", "repack", "--image", f"{layout}:bb", str(bundle)], check=True)
    for root, dirs, files in os.walk(layout):
        for n in dirs + files:
            p = os.path.join(root, n)
            os.chmod(p, os.stat(p).st_mode | 0o005 | (0o001 if os.path.isdir(p) else 0))
    yield layout
    shutil.rmtree(base, ignore_errors=True)


def test_cold_then_warm_run(rt_env, oci_layout):
    spec = rt_env.project / "envctl.yaml"
    spec.write_text(f"version: 1\nimage: oci:{oci_layout}:bb\nshell: /bin/sh\nenv:\n  GREETING: hi\n")
    if rt_env.user:
        os.chown(spec, rt_env.user.uid, rt_env.user.gid)
    r = rt_env.envctl("run", "--", "sh", "-c", "echo $GREETING from $(hostname); echo x > /etc/mark; id -u",
                      timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["hi", "from", "project", "0"]
    assert (rt_env.project / "envctl.lock").exists()
    warm = rt_env.run_raw([rt_env.python, "-X", "importtime", "-m", "envctl", "run", "--", "cat", "/etc/mark"])
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == "x\n"
    imported = {line.split("|")[-1].strip().split(".")[0] for line in warm.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), imported & set(HEAVY)
    assert "overlay" in rt_env.envctl("run", "--", "grep", " / ", "/proc/self/mountinfo").stdout


def test_runc_runs_the_same_environment(root_env, oci_layout):
    # root only: runc cannot mount envctl's overlay plan rootless (documented; builtin only)
    rt_env = root_env
    if not shutil.which("runc"):
        pytest.skip("runc not installed (.ci/run installs it)")
    (rt_env.project / "envctl.yaml").write_text(f"version: 1\nimage: oci:{oci_layout}:bb\n")
    assert rt_env.envctl("run", "--", "sh", "-c", "echo one > /etc/by-builtin", timeout=120).returncode == 0
    r = rt_env.envctl("run", "--", "sh", "-c", "cat /etc/by-builtin; grep CapEff /proc/self/status; exit 6",
                      env={"ENVCTL_RUNTIME": "runc"})
    assert r.returncode == 6, r.stderr
    assert "one" in r.stdout and "00000000a80425fb" in r.stdout
    with open("/proc/self/mountinfo") as f:
        assert "/merged " not in f.read()  # unmounted after runc


def test_parse_run_hands_over_env_without_name_or_value():
    assert _fast.parse_run(["-e", "A", "--", "x"]) is None
    assert _fast.parse_run(["-e", "=x", "--", "x"]) is None
    assert _fast.parse_run(["--env", "=", "--", "x"]) is None
    assert _fast.parse_run(["-e", "A=", "--", "x"]).env == ["A="]


def test_installed_entry_env_forms(root_env):
    assert os.access(ENVCTL, os.X_OK), ENVCTL
    root_env.prepare()
    warm = root_env.run_raw([ENVCTL, "run", "-e", "B=2", "--", "sh", "-c", 'echo "$B"'])
    assert (warm.returncode, warm.stdout) == (0, "2\n"), warm.stderr
    r = root_env.run_raw([ENVCTL, "run", "-e", "A", "--", "sh", "-c", 'echo "${A-unset}"'], env={"A": "hello"})
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    r = root_env.run_raw([ENVCTL, "run", "-e", "NOPE_QA", "--", "sh", "-c", 'echo "${NOPE_QA-unset}"'])
    assert (r.returncode, r.stdout) == (0, "unset\n"), r.stderr
    r = root_env.run_raw([ENVCTL, "run", "-e", "=x", "--", "true"])
    assert r.returncode == 2 and "envctl: error:" in r.stderr and "variable name is empty" in r.stderr, r.stderr
