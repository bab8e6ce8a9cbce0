"""Readiness checks for services: a TCP port accepts, an HTTP URL answers, a command exits 0.

Checks run from the supervisor's side. With ``network: host`` (the default) the environment
shares the host's loopback, so ``port`` and ``http`` probes are made directly; ``command`` runs
through the same spawner as the service (inside the environment).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

__all__ = ["Readiness", "wait_ready", "probe_once"]


@dataclass(frozen=True)
class Readiness:
    """How to tell a service is ready (exactly one of ``port``, ``http``, ``command``).

    Attributes:
        port: TCP port on ``host`` that must accept a connection (int).
        http: URL that must answer 2xx or 3xx (str).
        command: argv that must exit 0 (tuple of str).
        timeout: seconds to wait before reporting "not ready" (float, default 60).
        interval: seconds between probes (float, default 0.02).
        host: address for ``port`` probes (str, default 127.0.0.1).
    """

    port: int | None = None
    http: str | None = None
    command: tuple[str, ...] | None = None
    timeout: float = 60.0
    interval: float = 0.02
    host: str = "127.0.0.1"

    def describe(self) -> str:
        """One phrase for messages: ``port 8000``, ``http://...``, ``command ...``."""
        if self.port is not None:
            return f"port {self.port}"
        if self.http:
            return self.http
        return "command " + " ".join(self.command or ())


def probe_once(ready: Readiness, spawner=None, cfg=None) -> bool:
    """One probe (bool). ``spawner``/``cfg`` run ``command`` checks like the service itself."""
    if ready.port is not None:
        try:
            with socket.create_connection((ready.host, ready.port), timeout=0.5):
                return True
        except OSError:
            return False
    if ready.http:
        import http.client
        import urllib.parse

        u = urllib.parse.urlsplit(ready.http)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(u.hostname or "127.0.0.1", u.port, timeout=1.0)
        try:
            conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""))
            return conn.getresponse().status < 400      # 2xx or 3xx (schema: services.*.ready.http)
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
    if ready.command:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            proc = spawner.spawn(list(ready.command), dict(cfg.env), cfg.cwd, devnull)
        finally:
            os.close(devnull)
        rc = proc.wait(max(1.0, ready.timeout))
        if rc is None:
            import signal

            proc.signal(signal.SIGKILL)
            proc.wait(5)
        return rc == 0
    return True


def wait_ready(ready: Readiness | None, spawner, cfg, exited: threading.Event, stopping) -> bool:
    """Probe until ready (True), or the process exited, a stop was asked or the timeout passed (False).

    Args:
        ready: the check, or None (ready at once).
        spawner, cfg: for ``command`` checks.
        exited: set when the service's process is gone.
        stopping: callable returning True when the supervisor stops the service.
    """
    if ready is None:
        return not exited.is_set()
    deadline = time.monotonic() + ready.timeout
    step = 0.005      # probe fast first (hot reload latency), back off to ``interval``
    while time.monotonic() < deadline:
        if exited.is_set() or stopping():
            return False
        if probe_once(ready, spawner, cfg):
            return not exited.is_set()
        exited.wait(min(step, ready.interval))
        step *= 1.5
    return False
