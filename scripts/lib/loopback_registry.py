"""A loopback docker-registry (Debian's /usr/bin/docker-registry) as a long-lived dev service.

Used by ``scripts/registry start|stop|status`` (the demo's registry mirror) and importable by the
test fixtures (``render_config`` is the one place that knows the registry's YAML). Stdlib only, so
it runs with ``/usr/bin/python3`` before the project's venv exists.

State directory layout (``$ENVCTL_REGISTRY_STATE``, default
``${XDG_STATE_HOME:-~/.local/state}/envctl-registry``)::

    config.yml   registry.pid   registry.log   port   storage/
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"
DEFAULT_PORT = 5115


def render_config(addr: str, storage: Path, *, htpasswd: Path | None = None) -> str:
    """YAML config for docker-registry 2.x listening on ``addr`` ("127.0.0.1:PORT").

    Args: addr — listen address (always loopback in envctl); storage — filesystem root for blobs;
    htpasswd — bcrypt htpasswd file to turn on Basic auth (realm "envctl-test").
    Returns the config text (JSON is valid YAML, so no YAML library is needed).
    """
    config: dict = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"}},
        # a fixed secret: otherwise the registry logs a warning and makes a random one per start
        "http": {"addr": addr, "secret": "envctl-loopback-registry",
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "envctl-test", "path": str(htpasswd)}}
    return json.dumps(config, indent=2) + "\n"


def wait_ready(port: int, *, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``GET /v2/`` on 127.0.0.1:``port`` until it answers (200 or 401).

    Raises RuntimeError naming the port when ``timeout`` seconds (float) pass or ``proc`` exits.
    """
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/v2/"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"docker-registry on 127.0.0.1:{port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry on 127.0.0.1:{port} not ready after {timeout:.0f}s")


def default_state_dir() -> Path:
    """The state directory (Path): $ENVCTL_REGISTRY_STATE or $XDG_STATE_HOME/envctl-registry."""
    if env := os.environ.get("ENVCTL_REGISTRY_STATE"):
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "envctl-registry"


@dataclass
class LoopbackRegistry:
    """One registry instance bound to a state directory (see module docstring)."""

    state: Path

    @property
    def pid_file(self) -> Path:
        return self.state / "registry.pid"

    def pid(self) -> int | None:
        """The live registry's pid (int), or None; a stale pid file is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _is_registry_process(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def port(self) -> int | None:
        """The port (int) the running instance was started on, or None."""
        try:
            return int((self.state / "port").read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, port: int) -> tuple[int, bool]:
        """Start the registry on 127.0.0.1:``port`` unless already running; idempotent.

        Returns (pid, started) — started is False when an instance was already running (on the
        same port). Raises RuntimeError when one runs on another port or the start fails.
        """
        if (pid := self.pid()) is not None:
            if self.port() != port:
                raise RuntimeError(f"registry already running on port {self.port()} (pid {pid}); "
                                   f"stop it first")
            wait_ready(port)
            return pid, False
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "storage").mkdir(exist_ok=True)
        config = self.state / "config.yml"
        config.write_text(render_config(f"127.0.0.1:{port}", self.state / "storage"))
        with open(self.state / "registry.log", "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        try:
            wait_ready(port, proc=proc)
        except RuntimeError:
            _terminate(proc.pid)
            raise
        (self.state / "port").write_text(f"{port}\n")
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid, True

    def stop(self) -> int | None:
        """Stop the running instance (SIGTERM, then SIGKILL after 5 s). Returns its pid or None."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return pid


def _is_registry_process(pid: int) -> bool:
    """True when ``pid`` is alive and runs docker-registry (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0]) == b"docker-registry"


def _terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM ``pid``, wait up to ``grace`` seconds, then SIGKILL; reaps it if it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _alive(pid)


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False
