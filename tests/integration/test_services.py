"""Supervisor + hot reload with real host processes, real inotify, real editors.

Counting "exactly N restarts" without sleeping: a second service, ``sentinel``, watches only
``zz-sentinel``. After the action under test, the test writes that file and waits for the
sentinel's restart; change sets are debounced identically, so by then every change set the
action caused has been handed to the supervisor.
"""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from runtime.reload import Reloader, ServiceWatch
from runtime.services import HostSpawner, Readiness, ServiceConfig, ServiceError, Supervisor, start_order
from runtime.service_log import LogSink
from tests.fixtures.poll import wait_until as _wait_until
from tests.fixtures.registry import free_port

PY = sys.executable
TIMEOUT = 30.0   # generous: a loaded CI machine, never waited out when things work

SERVER = textwrap.dedent("""
    import http.server, os, sys, time
    time.sleep(float(os.environ.get("SLOW", "0")))
    while os.environ.get("GATE") and not os.path.exists(os.environ["GATE"]):
        time.sleep(0.01)     # held in "starting" until the test opens the gate
    msg = open(sys.argv[2]).read()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            b = msg.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
        def log_message(self, *a):
            pass
    s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
    print("serving", msg.strip(), flush=True)
    s.serve_forever()
""")


def wait_until(pred, timeout=TIMEOUT, what="condition"):
    return _wait_until(pred, timeout, what, interval=0.01)


def get(port) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
        return r.read().decode()


class Stack:
    def __init__(self, root: Path, tmp: Path):
        self.root, self.tmp = root, tmp
        self.console = io.StringIO()
        self.sup = self.reloader = None

    def start(self, services, watches, **kw):
        services = list(services) + [ServiceConfig("sentinel", (PY, "-c", "import time; time.sleep(600)"),
                                                   grace=1)]
        watches = {n: dataclasses.replace(w, ignore=w.ignore + ("zz-sentinel",)) for n, w in watches.items()}
        watches["sentinel"] = ServiceWatch(paths=("zz-sentinel",))
        self.log = LogSink(self.tmp / "logs", [s.name for s in services], console=self.console)
        self.sup = Supervisor(services, HostSpawner(), self.log, backoff_base=kw.pop("backoff_base", 0.5))
        self.sup.start()
        self.reloader = Reloader(self.root, self.sup, watches, **kw)
        self.reloader.start()
        return self

    def logtext(self, name) -> str:
        p = self.tmp / "logs" / f"{name}.log"
        return p.read_text() if p.exists() else ""

    def st(self, name):
        return {s["name"]: s for s in self.sup.status()}[name]

    def settled(self, name="web") -> dict:
        """Write the sentinel, wait for its restart, then for ``name`` to be idle; its status."""
        n = self.st("sentinel")["restarts"]
        (self.root / "zz-sentinel").write_text(str(time.monotonic()))
        wait_until(lambda: self.st("sentinel")["restarts"] > n and self.st("sentinel")["state"] == "running",
                   what="sentinel restart")
        r = self.sup.runners[name]
        wait_until(lambda: r.restart_req is None and r.st.state in ("running", "exited"), what=f"{name} idle")
        return self.st(name)

    def stop(self):
        if self.reloader:
            self.reloader.stop()
        if self.sup:
            self.sup.stop()


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "msg.txt").write_text("v1\n")
    (root / "src" / "app.py").write_text("x = 1\n")
    return root


@pytest.fixture
def stack(project, tmp_path):
    s = Stack(project, tmp_path)
    yield s
    s.stop()


@pytest.fixture
def server(tmp_path) -> Path:
    p = tmp_path / "server.py"
    p.write_text(SERVER)
    return p


def sleeper(name="web", **kw) -> ServiceConfig:
    return ServiceConfig(name, (PY, "-c", "import time; print('up', flush=True); time.sleep(600)"), **kw)


def test_http_service_serves_new_content_after_one_edit(stack, project, server):
    port = free_port()
    web = ServiceConfig("web", (PY, str(server), str(port), "src/msg.txt"), cwd=str(project),
                        ready=Readiness(port=port, timeout=10))
    stack.start([web], {"web": ServiceWatch(paths=("src/**",))})
    assert get(port) == "v1\n"
    (project / "src" / "msg.txt").write_text("v2\n")
    wait_until(lambda: stack.st("web")["restarts"] == 1 and stack.st("web")["ready"], what="restart")
    assert get(port) == "v2\n"
    assert stack.settled()["restarts"] == 1
    log = stack.logtext("web")
    assert "serving v1" in log and "serving v2" in log and "restarting (src/msg.txt changed)" in log
    assert "web      | serving v2" in stack.console.getvalue()   # plain prefix: not a terminal


def _vim(project):
    subprocess.run(["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", "set backup writebackup backupcopy=no",
                    "-c", "%s/1/2/", "-c", "wq", "src/app.py"], cwd=project, check=True, timeout=20,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _jetbrains(project):
    d = project / "src"
    (d / "app.py___jb_tmp___").write_text("x = 2\n")
    os.rename(d / "app.py", d / "app.py___jb_old___")
    os.rename(d / "app.py___jb_tmp___", d / "app.py")
    os.unlink(d / "app.py___jb_old___")


def _sed(project):
    subprocess.run(["sed", "-i", "s/1/2/", "src/app.py"], cwd=project, check=True)


def _recreate(project):
    os.unlink(project / "src" / "app.py")
    (project / "src" / "app.py").write_text("x = 3\n")


@pytest.mark.parametrize("editor", [_vim, _jetbrains, _sed, _recreate], ids=["vim", "jetbrains", "sed", "recreate"])
def test_one_save_is_one_restart(stack, project, editor):
    stack.start([sleeper()], {"web": ServiceWatch(paths=("**/*.py",))})
    editor(project)
    wait_until(lambda: stack.st("web")["restarts"] >= 1, what="restart")
    assert stack.settled()["restarts"] == 1


def test_git_checkout_of_many_files_is_one_restart(stack, project):
    git = ["git", "-c", "user.email=t@e", "-c", "user.name=t"]
    run = lambda *a: subprocess.run(git + list(a), cwd=project, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    for i in range(200):
        (project / "src" / f"f{i}.py").write_text(f"x = {i}\n")
    run("add", "-A")
    run("commit", "-qm", "one")
    run("checkout", "-qb", "two")
    for i in range(200):
        (project / "src" / f"f{i}.py").write_text(f"x = {i + 1}\n")
    run("commit", "-qam", "two")
    run("checkout", "-q", "main")
    stack.start([sleeper()], {"web": ServiceWatch()})
    run("checkout", "-q", "two")
    wait_until(lambda: stack.st("web")["restarts"] >= 1, what="restart")
    assert stack.settled()["restarts"] == 1


def test_fifty_writes_in_one_second(stack, project):
    stack.start([sleeper()], {"web": ServiceWatch()})
    t0 = time.monotonic()
    for i in range(50):
        (project / "src" / "app.py").write_text(f"x = {i}\n")
        time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))   # pacing the writes
    assert 1 <= stack.settled()["restarts"] <= 2


def test_changes_during_a_slow_restart_make_exactly_one_more(stack, project, server, tmp_path):
    port = free_port()
    gate = tmp_path / "gate"       # outside the project: the server starts only while it exists
    gate.touch()
    web = ServiceConfig("web", (PY, str(server), str(port), "src/msg.txt"), cwd=str(project),
                        env=(("GATE", str(gate)),), ready=Readiness(port=port, timeout=60))
    stack.start([web], {"web": ServiceWatch()})
    gate.unlink()                   # the restart below stays "starting" until the gate reopens
    (project / "src" / "msg.txt").write_text("v2\n")
    wait_until(lambda: stack.st("web")["state"] == "starting", what="restart begins")
    for i in range(3):                      # three separate change sets while it is starting
        n = stack.reloader.change_sets
        (project / "src" / "app.py").write_text(f"x = {i + 10}\n")
        wait_until(lambda: stack.reloader.change_sets > n, what="change set")
        assert stack.st("web")["state"] == "starting"
    gate.touch()
    assert stack.settled()["restarts"] == 2
    assert get(port) == "v2\n"


def test_ignored_and_git_changes_restart_nothing(stack, project):
    (project / ".gitignore").write_text("*.log\nbuild/\n")
    (project / ".git").mkdir()
    (project / "build").mkdir()
    stack.start([sleeper()], {"web": ServiceWatch()})
    (project / ".git" / "HEAD").write_text("ref: refs/heads/x\n")
    (project / "build" / "a.o").write_text("x")
    (project / "server.log").write_text("x")
    assert stack.settled()["restarts"] == 0


def test_sigterm_ignoring_service_is_killed_after_grace(stack, project):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    web = ServiceConfig("web", (PY, "-c", code), grace=0.5)
    stack.start([web], {"web": ServiceWatch()})
    pid = stack.st("web")["pid"]
    wait_until(lambda: "up" in stack.logtext("web"), what="handler installed")
    t = time.monotonic()
    (project / "src" / "app.py").write_text("x = 2\n")
    wait_until(lambda: stack.st("web")["restarts"] == 1 and stack.st("web")["state"] == "running", what="restart")
    assert time.monotonic() - t >= 0.5
    assert stack.st("web")["pid"] != pid
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2],
               what="old process gone")
    assert "sending SIGKILL" in stack.logtext("web")


def test_crash_loop_backs_off_and_a_change_restarts_at_once(stack, project):
    web = ServiceConfig("web", (PY, "-c", "import sys; print('boom', flush=True); sys.exit(3)"), restart="always")
    stack.start([web], {"web": ServiceWatch()}, backoff_base=0.05)
    wait_until(lambda: stack.st("web")["crashes"] >= 4, what="crash loop")
    log = stack.logtext("web")
    assert "exited with status 3; restarting in 0.1s" in log
    assert "restarting in 0.4s (crash loop)" in log
    assert stack.st("web")["lastExit"] == 3


def test_exit_with_restart_no_waits_for_a_change(stack, project, tmp_path):
    marker = tmp_path / "runs"
    code = f"open({str(marker)!r}, 'a').write('r\\n')"
    stack.start([ServiceConfig("web", (PY, "-c", code), restart="on-failure")], {"web": ServiceWatch()})
    wait_until(lambda: stack.st("web")["state"] == "exited", what="exit")
    assert stack.st("web")["lastExit"] == 0
    (project / "src" / "app.py").write_text("x = 2\n")
    wait_until(lambda: marker.read_text().count("r") == 2, what="second run after the change")


def test_stop_kills_the_whole_process_group(stack, project, tmp_path):
    pidfile = tmp_path / "child.pid"
    code = (f"import subprocess, time; p = subprocess.Popen(['sleep', '600']);"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(600)")
    stack.start([ServiceConfig("web", (PY, "-c", code), grace=2)], {})
    child = int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), what="child pid"))
    stack.stop()
    stack.sup = stack.reloader = None
    wait_until(lambda: not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2],
               what="grandchild killed")


def test_dependency_order_and_cycles(tmp_path):
    a = ServiceConfig("a", ("true",), depends_on=("b",))
    b = ServiceConfig("b", ("true",), depends_on=("c",))
    c = ServiceConfig("c", ("true",))
    assert [s.name for s in start_order([a, b, c])] == ["c", "b", "a"]
    with pytest.raises(ServiceError, match="cycle: a -> b -> a"):
        start_order([ServiceConfig("a", ("true",), depends_on=("b",)), ServiceConfig("b", ("true",), depends_on=("a",))])
    with pytest.raises(ServiceError, match="unknown service x"):
        start_order([ServiceConfig("a", ("true",), depends_on=("x",))])


def test_dependents_start_after_readiness(stack, project, server, tmp_path):
    port = free_port()
    db = ServiceConfig("db", (PY, str(server), str(port), "src/msg.txt"), cwd=str(project),
                       env=(("SLOW", "0.3"),), ready=Readiness(port=port, timeout=10))
    probe = f"import urllib.request; print('db says', urllib.request.urlopen('http://127.0.0.1:{port}/').read().decode().strip(), flush=True); import time; time.sleep(600)"
    web = ServiceConfig("web", (PY, "-c", probe), depends_on=("db",))
    stack.start([web, db], {})
    wait_until(lambda: "db says v1" in stack.logtext("web"), what="web output")


def test_rebuild_rule_and_broken_spec_keep_services(stack, project):
    calls = []
    ok = {"value": False}

    def rebuild(paths):
        calls.append(paths)
        return ok["value"]

    (project / "envctl.yaml").write_text("version: 1\n")
    stack.start([sleeper()], {"web": ServiceWatch(paths=("src/**",))}, rebuild=rebuild,
                rebuild_paths=("envctl.yaml", "requirements.txt"))
    (project / "envctl.yaml").write_text("version: [broken\n")
    wait_until(lambda: calls, what="rebuild call")
    assert calls == [("envctl.yaml",)]
    assert stack.settled()["restarts"] == 0           # broken spec: old services keep running
    ok["value"] = True
    (project / "requirements.txt").write_text("flask\n")
    wait_until(lambda: stack.st("web")["restarts"] == 1, what="restart after rebuild")


def test_reload_action_sends_sighup_instead_of_restarting(stack, project):
    code = ("import signal, time\n"
            "signal.signal(signal.SIGHUP, lambda *a: print('reloaded', flush=True))\n"
            "print('up', flush=True)\n"
            "while True: time.sleep(1)\n")
    stack.start([ServiceConfig("web", (PY, "-c", code))], {"web": ServiceWatch(action="reload")})
    wait_until(lambda: "up" in stack.logtext("web"), what="handler installed")
    (project / "src" / "app.py").write_text("x = 2\n")
    wait_until(lambda: "reloaded" in stack.logtext("web"), what="SIGHUP handled")
    assert stack.settled()["restarts"] == 0
