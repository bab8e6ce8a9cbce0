"""Hot-reload latency: file saved -> restarted service serves the new content (issue 7).

One run measures, on the same host service (a small Python HTTP server that reads its content
at start-up, readiness = its port):

* ``service start``: spawn -> first correct answer, without any watcher (the service's own
  start time, the floor for every reloader);
* ``envctl``: runtime.reload.Reloader + runtime.services.Supervisor (the code ``envctl up``
  runs; host spawner, default 100 ms debounce);
* ``watchmedo``: watchdog's ``watchmedo auto-restart`` on the same command (defaults, SIGTERM).

SAVES rounds (default 20), interleaved so machine load hits all three alike: one service start,
one atomic save (write temp + rename, like most editors) for envctl, one for watchmedo;
latency = save -> first HTTP answer with the new value. Prints p50/p95 per tool and the
overhead: median over rounds of (save latency - that round's service start). Target (DESIGN.md):
envctl's overhead under 150 ms; it includes the 100 ms debounce.
Usage: python bench/reload.py [SAVES]
"""

from __future__ import annotations

import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERVER = """
import http.server, sys
msg = open(sys.argv[2]).read().encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(msg))); self.end_headers()
        self.wfile.write(msg)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer(port) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
            return r.read().decode()
    except (OSError, ValueError, __import__("http.client").client.HTTPException):
        return None          # restarting: refused, reset or cut short


def wait_for(port, value, timeout=30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer(port) == value:
            return time.monotonic()
        time.sleep(0.002)
    raise SystemExit(f"bench: {value!r} never served on port {port}")


def save(path: Path, value: str) -> float:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(value)
    t = time.monotonic()
    os.rename(tmp, path)
    return t


def one_save(project: Path, port: int, value: str) -> float:
    t0 = save(project / "msg.txt", value)
    return wait_for(port, value) - t0


def one_start(server: Path, project: Path, value: str) -> float:
    port = free_port()
    (project / "msg.txt").write_text(value)
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, str(server), str(port), str(project / "msg.txt")])
    try:
        return wait_for(port, value) - t0
    finally:
        p.terminate()
        p.wait()


def start_envctl(server: Path, project: Path):
    from runtime.reload import Reloader, ServiceWatch
    from runtime.service_log import LogSink
    from runtime.services import HostSpawner, Readiness, ServiceConfig, Supervisor

    port = free_port()
    (project / "msg.txt").write_text("start\n")
    cfg = ServiceConfig("web", (sys.executable, str(server), str(port), str(project / "msg.txt")),
                        ready=Readiness(port=port, timeout=30))
    sup = Supervisor([cfg], HostSpawner(), LogSink(None, ["web"], console=io.StringIO()))
    sup.start()
    rel = Reloader(project, sup, {"web": ServiceWatch(paths=("*.txt",))})
    rel.start()
    wait_for(port, "start\n")

    def stop():
        rel.stop()
        sup.stop()
    return port, stop


def start_watchmedo(server: Path, project: Path):
    port = free_port()
    (project / "msg.txt").write_text("start\n")
    watchmedo = Path(sys.executable).with_name("watchmedo")
    # watchdog 7 matches -p against the whole path: "*.txt" never matches, "**/*.txt" does
    p = subprocess.Popen([str(watchmedo), "auto-restart", "-d", str(project), "-p", "**/*.txt", "--signal", "SIGTERM",
                          "--", sys.executable, str(server), str(port), str(project / "msg.txt")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(port, "start\n")
    time.sleep(0.5)        # let its observer finish scheduling before the first save

    def stop():
        os.killpg(p.pid, 15)
        p.wait()
    return port, stop


def pct(xs, q) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))] * 1000


def main() -> None:
    saves = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rows: dict[str, list[float]] = {"service start (no watcher)": [], "envctl": [], "watchmedo auto-restart": []}
    with tempfile.TemporaryDirectory(prefix="envctl-reload-") as tmp:
        server = Path(tmp) / "server.py"
        server.write_text(SERVER)
        dirs = {n: Path(tmp) / n for n in ("base", "envctl", "watchmedo")}
        for d in dirs.values():
            d.mkdir()
        e_port, e_stop = start_envctl(server, dirs["envctl"])
        w_port, w_stop = start_watchmedo(server, dirs["watchmedo"])
        try:
            for i in range(saves):      # interleaved, so machine load hits all three alike
                rows["service start (no watcher)"].append(one_start(server, dirs["base"], f"b{i}\n"))
                rows["envctl"].append(one_save(dirs["envctl"], e_port, f"e{i}\n"))
                time.sleep(0.2)
                rows["watchmedo auto-restart"].append(one_save(dirs["watchmedo"], w_port, f"w{i}\n"))
                time.sleep(0.2)
        finally:
            e_stop()
            w_stop()
    base = rows["service start (no watcher)"]
    print(f"save -> new content served, {saves} saves each (ms); overhead = p50 of (save latency - "
          "service start of the same round)")
    print(f"{'':28} {'p50':>8} {'p95':>8} {'overhead p50':>13}")
    for name, xs in rows.items():
        over = statistics.median(x - b for x, b in zip(xs, base)) * 1000
        print(f"{name:28} {pct(xs, 0.5):8.1f} {pct(xs, 0.95):8.1f} {over:13.1f}")


if __name__ == "__main__":
    main()
