"""QA L13: Ctrl-C while ``envctl up -d`` waits for start-up printed "interrupted" but left the
supervisor and its services running silently; now it stops what was started (promptly, even while
a service waits for readiness) and exits 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from envctl.commands._enter import env_dir
from envctl.services_up import services_dir
from tests.fixtures.registry import free_port

SCRIPT = """
import sys
from envctl.output import Output
from envctl.project import find_project
from envctl.services_up import _detach
try:
    _detach(find_project(sys.argv[1]), Output(), host=True)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _status(d):
    try:
        return json.loads((services_dir(d) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_ctrl_c_during_start_up_stops_the_services(tmp_path):
    port = free_port()
    pidfile = tmp_path / "svc.pid"
    (tmp_path / "envctl.yaml").write_text(
        "version: 1\nimage: busybox\nservices:\n"
        f"  slow:\n    command: echo $$ > {pidfile}; exec sleep 600\n    ready: {{port: {port}, timeout: 120s}}\n")
    d = env_dir(tmp_path / "envctl.yaml")
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    sup = None
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()
                   and any(r.get("state") == "starting" for r in _status(d).get("services") or ())):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.02)
        sup = _status(d)["supervisorPid"]
        svc = int(pidfile.read_text())
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert time.monotonic() - t0 < 30      # not the 120 s readiness timeout
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "stopping the services started so far" in err
    assert not os.path.exists(f"/proc/{sup}") or open(f"/proc/{sup}/stat").read().split(") ")[1][0] == "Z"
    assert not os.path.exists(f"/proc/{svc}")
