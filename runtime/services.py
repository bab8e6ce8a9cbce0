"""Service supervisor: start in dependency order, wait for readiness, restart on change or crash.

Implements issue 7's service rules over a small spawn interface (:class:`Spawner`), so the same
supervisor runs host processes (tests, benchmarks) and processes joined into a running
environment (``envctl up``):

* start order from ``depends_on`` (a cycle or an unknown name is a :class:`ServiceError`); each
  service is waited for (port / http / command readiness, with a timeout) before the next starts;
* restart = SIGTERM to the service's process group, ``grace`` seconds (default 5), SIGKILL;
  restart requests that arrive while a restart is in progress collapse into exactly one more;
* ``restart: no | on-failure | always`` for exits nobody asked for, with exponential, capped
  backoff for crash loops (each reported); a file change restarts a stopped or backed-off
  service at once (the edit may be the fix);
* output streamed line by line, prefixed by the service name (:mod:`runtime.service_log`) and
  kept in ``<log_dir>/<name>.log``.

Threads: one runner thread per service, one waiter and one output reader per process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from runtime.errors import ContainerError
from runtime.service_log import LogSink
from runtime.service_ready import Readiness, wait_ready

__all__ = ["ServiceConfig", "Readiness", "ServiceError", "Spawner", "Proc", "HostSpawner",
           "Supervisor", "start_order"]


class ServiceError(ContainerError):
    """A service set that cannot run: dependency cycle, unknown dependency, spawn failure."""


@dataclass(frozen=True)
class ServiceConfig:
    """One service as the supervisor runs it (built from the spec's ``services.<name>``).

    Attributes:
        name: service name (str).
        argv: command and arguments (tuple of str).
        env: extra environment ``((key, value), ...)``.
        cwd: working directory (str, in the spawner's view; None = spawner default).
        depends_on: names started (and ready) before this one (tuple of str).
        ready: readiness check or None (ready when spawned).
        restart: ``"no" | "on-failure" | "always"`` for exits nobody asked for.
        grace: seconds between SIGTERM and SIGKILL (float).
    """

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    depends_on: tuple[str, ...] = ()
    ready: Readiness | None = None
    restart: str = "no"
    grace: float = 5.0


class Proc(Protocol):
    """A spawned process leading its own process group."""

    pid: int

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit status (128+N for signal N), or None when ``timeout`` (seconds) passed."""

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole process group (no error when it is gone)."""


class Spawner(Protocol):
    """Starts processes: ``spawn(argv, env, cwd, stdout_fd) -> Proc`` (stderr joins stdout,
    stdin is /dev/null, the process leads a new session and process group)."""

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str | None, stdout: int) -> Proc:
        """Start ``argv`` with ``env`` (dict str -> str), in ``cwd`` (str or None), stdout+stderr to the
        fd ``stdout`` (int), stdin /dev/null, in a new session. Returns a Proc; raises ServiceError
        when the process cannot be started.
        """


class _HostProc:
    def __init__(self, popen: subprocess.Popen):
        self._p = popen
        self.pid = popen.pid

    def wait(self, timeout=None):
        try:
            rc = self._p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return 128 - rc if rc < 0 else rc

    def signal(self, sig):
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class HostSpawner:
    """Runs services as host processes (tests, benchmarks, ``runtime`` without an environment).

    Args:
        base_env: environment the service env is layered on (default: os.environ).
    """

    def __init__(self, base_env: dict[str, str] | None = None):
        self.base_env = dict(os.environ if base_env is None else base_env)

    def spawn(self, argv, env, cwd, stdout):
        """Start ``argv`` on the host (subprocess.Popen, new session) with ``base_env`` + ``env``, in
        ``cwd``, stdout+stderr to the fd ``stdout`` (int). Returns a Proc. Raises ServiceError
        naming the command when exec fails (OSError).
        """
        try:
            p = subprocess.Popen(list(argv), env={**self.base_env, **env}, cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise ServiceError(f"start {argv[0]}: {e.strerror}",
                               hint="check the service's command and workdir in envctl.yaml") from e
        return _HostProc(p)


def start_order(services: list[ServiceConfig]) -> list[ServiceConfig]:
    """Services sorted so each comes after its ``depends_on`` (stable: spec order otherwise).

    Raises:
        ServiceError: a name in ``depends_on`` is unknown, or the dependencies form a cycle
            (the message shows it: ``a -> b -> a``).
    """
    by_name = {s.name: s for s in services}
    out: list[ServiceConfig] = []
    state: dict[str, str] = {}

    def visit(s: ServiceConfig, path: list[str]) -> None:
        if state.get(s.name) == "done":
            return
        if state.get(s.name) == "active":
            cycle = path[path.index(s.name):] + [s.name]
            raise ServiceError(f"services depend on each other in a cycle: {' -> '.join(cycle)}",
                               hint="remove one of these depends_on entries in envctl.yaml")
        state[s.name] = "active"
        for dep in s.depends_on:
            if dep not in by_name:
                raise ServiceError(f"service {s.name} depends on unknown service {dep}",
                                   hint=f"declare services.{dep} or fix depends_on")
            visit(by_name[dep], path + [s.name])
        state[s.name] = "done"
        out.append(s)

    for s in services:
        visit(s, [])
    return out


@dataclass
class _Status:
    state: str = "created"   # created starting running exited backoff stopping stopped failed
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    started_at: float | None = None
    ready: bool = False
    crashes: int = 0
    next_start: float | None = None


class _Runner:
    """Runs one service until stopped; see the module docstring for the rules."""

    def __init__(self, sup: "Supervisor", cfg: ServiceConfig):
        self.sup, self.cfg = sup, cfg
        self.st = _Status()
        self.cond = threading.Condition()
        self.restart_req: str | None = None
        self.stop_req = False
        self.proc: Proc | None = None
        self.exited = threading.Event()
        self.first_ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=f"envctl-svc-{cfg.name}", daemon=True)

    # requests (any thread) -------------------------------------------------------------------
    def request_restart(self, reason: str) -> None:
        with self.cond:
            self.restart_req = self.restart_req or reason
            self.cond.notify_all()

    def request_stop(self) -> None:
        with self.cond:
            self.stop_req = True
            self.cond.notify_all()

    # runner thread ---------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._spawn_and_wait_ready()
            while True:
                with self.cond:
                    self.cond.wait_for(lambda: self.stop_req or self.restart_req or self._unhandled_exit())
                    stop, reason = self.stop_req, self.restart_req
                if stop:
                    self._terminate()
                    self._set(state="stopped", ready=False, pid=None)
                    return
                if reason is not None:
                    self._restart(reason)
                else:
                    self._after_exit()
        except Exception as e:   # a bug must not kill the supervisor silently
            self.sup.log.event(self.cfg.name, f"supervisor error: {type(e).__name__}: {e}")
            self._set(state="failed")
        finally:
            self.first_ready.set()

    def _unhandled_exit(self) -> bool:
        return self.proc is not None and self.exited.is_set()

    def _restart(self, reason: str) -> None:
        with self.cond:
            self.restart_req = None     # requests from now on make exactly one more restart
        self.sup.log.event(self.cfg.name, f"restarting ({reason})")
        self._terminate()
        self.st.restarts += 1
        self._spawn_and_wait_ready()

    def _after_exit(self) -> None:
        rc = self.st.last_exit
        ran = time.monotonic() - (self.st.started_at or 0)
        self.proc = None          # this exit is handled
        policy = self.cfg.restart
        if policy == "no" or (policy == "on-failure" and rc == 0):
            self._set(state="exited", pid=None, ready=False)
            self.sup.log.event(self.cfg.name, f"exited with status {rc}; restarts on the next change")
            with self.cond:
                self.cond.wait_for(lambda: self.stop_req or self.restart_req)
            return
        crashes = 1 if ran >= self.sup.reset_after else self.st.crashes + 1
        delay = min(self.sup.backoff_cap, self.sup.backoff_base * 2 ** (crashes - 1))
        self._set(state="backoff", crashes=crashes, pid=None, ready=False,
                  next_start=time.time() + delay)
        loop = " (crash loop)" if crashes >= 3 else ""
        self.sup.log.event(self.cfg.name, f"exited with status {rc}; restarting in {delay:.1f}s{loop}")
        with self.cond:
            self.cond.wait_for(lambda: self.stop_req or self.restart_req, timeout=delay)
            if self.stop_req or self.restart_req:
                return          # the main loop handles it (a change restarts at once)
        self.st.restarts += 1
        self._spawn_and_wait_ready()

    def _spawn_and_wait_ready(self) -> None:
        self.exited.clear()
        self._set(state="starting", ready=False, next_start=None)
        env = dict(self.cfg.env)
        log_fd = self.sup.log.open_pipe(self.cfg.name)
        try:
            proc = self.sup.spawner.spawn(list(self.cfg.argv), env, self.cfg.cwd, log_fd)
        except ContainerError as e:
            os.close(log_fd)
            self.sup.log.event(self.cfg.name, e.message)
            self.st.last_exit = 127
            self._set(state="failed")
            self.first_ready.set()
            return
        os.close(log_fd)   # the child holds the write end; the reader sees EOF when it is gone
        self.proc = proc
        self._set(pid=proc.pid, started_at=time.monotonic())
        threading.Thread(target=self._wait_proc, args=(proc,), daemon=True).start()
        ok = wait_ready(self.cfg.ready, self.sup.spawner, self.cfg, self.exited, self._stopping)
        if ok:
            self._set(state="running", ready=True)
        elif not self.exited.is_set() and not self._stopping():
            self.sup.log.event(self.cfg.name, f"not ready after {self.cfg.ready.timeout:g}s "
                                              f"({self.cfg.ready.describe()}); still running")
            self._set(state="running", ready=False)
        self.first_ready.set()     # dependents wait for the first attempt only

    def _stopping(self) -> bool:
        return self.stop_req

    def _wait_proc(self, proc: Proc) -> None:
        rc = proc.wait()
        proc.signal(signal.SIGKILL)          # leftovers of the group die with their leader
        if proc is self.proc:
            self.st.last_exit = rc
            self.exited.set()
            with self.cond:
                self.cond.notify_all()
            self.sup._changed()

    def _terminate(self) -> None:
        proc = self.proc
        if proc is None or self.exited.is_set():
            return
        self._set(state="stopping", ready=False)   # not serving from here until the next ready
        proc.signal(signal.SIGTERM)
        if not self.exited.wait(self.cfg.grace):
            self.sup.log.event(self.cfg.name, f"did not stop within {self.cfg.grace:g}s of SIGTERM; "
                                              "sending SIGKILL")
            proc.signal(signal.SIGKILL)
            self.exited.wait(10)

    def _set(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self.st, k, v)
        self.sup._changed()


class Supervisor:
    """Runs a set of services.

    Args:
        services: the services (list of :class:`ServiceConfig`); validated by :func:`start_order`.
        spawner: a :class:`Spawner` (HostSpawner, or the runtime's exec into an environment).
        log: a :class:`runtime.service_log.LogSink` (console + per-service log files).
        on_status: called (no args) after any state change, e.g. to persist :meth:`status`.
        backoff_base, backoff_cap: crash-loop delay ``min(cap, base * 2**(n-1))`` seconds.
        reset_after: a run this long (seconds) forgets earlier crashes.

    Raises:
        ServiceError: from the constructor, for cycles or unknown dependencies.
    """

    def __init__(self, services, spawner: Spawner, log: LogSink, *, on_status: Callable[[], None] | None = None,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0, reset_after: float = 10.0):
        self.order = start_order(list(services))
        self.spawner, self.log = spawner, log
        self.backoff_base, self.backoff_cap, self.reset_after = backoff_base, backoff_cap, reset_after
        self._on_status = on_status
        self.runners = {s.name: _Runner(self, s) for s in self.order}

    def start(self) -> None:
        """Start every service in dependency order; each is waited for (ready, failed or timed
        out) before the next starts."""
        for s in self.order:
            r = self.runners[s.name]
            r.thread.start()
            r.first_ready.wait()

    def restart(self, names=None, reason: str = "requested") -> None:
        """Ask services (default: all) to restart; returns at once. Unknown names raise ServiceError."""
        for name in self._names(names):
            self.runners[name].request_restart(reason)

    def signal(self, names, sig: int, reason: str = "requested") -> None:
        """Send ``sig`` to the process groups of ``names`` (default: all) that are running
        (``watch.action: reload``: SIGHUP makes nginx, gunicorn, ... reload in place)."""
        for name in self._names(names):
            r = self.runners[name]
            proc = r.proc
            if proc is not None and not r.exited.is_set():
                self.log.event(name, f"sending {signal.Signals(sig).name} ({reason})")
                proc.signal(sig)

    def stop(self) -> None:
        """Stop every service, dependents first; returns when all are stopped."""
        for s in reversed(self.order):
            r = self.runners[s.name]
            r.request_stop()
            if r.thread.is_alive():
                r.thread.join()
        self.log.close()

    def status(self) -> list[dict]:
        """Per service: name, state, pid, ready, restarts, lastExit, crashes, nextStart (epoch s)."""
        out = []
        for s in self.order:
            st = self.runners[s.name].st
            out.append({"name": s.name, "state": st.state, "pid": st.pid, "ready": st.ready,
                        "restarts": st.restarts, "lastExit": st.last_exit, "crashes": st.crashes,
                        "nextStart": st.next_start})
        return out

    def _names(self, names):
        names = list(names) if names else [s.name for s in self.order]
        for n in names:
            if n not in self.runners:
                raise ServiceError(f"no service named {n}", hint="envctl status lists the services")
        return names

    def _changed(self) -> None:
        if self._on_status is not None:
            try:
                self._on_status()
            except Exception:
                pass
