"""QA L2: Ctrl-C during a build step was reported as "build step 1 (...) failed with exit status
130 ... fix the command in envctl.yaml"; now ``envctl: interrupted``, exit 130. A step that exits
130 by itself is still a failed step."""

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.registry]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="root build path")


def _project(tmp_path, image, run):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {image}\nsteps:\n  - run: {run}\n")
    return proj


@needs_root
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


@needs_root
def test_step_exiting_130_by_itself_still_fails(tmp_path, run_envctl, test_images):
    proj = _project(tmp_path, test_images.refs["single"], "exit 130")
    r = run_envctl("up", cwd=proj)
    assert r.returncode == 1 and "failed with exit status 130" in r.stderr, r.stderr
