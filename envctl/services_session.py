"""One ``envctl up`` services session: environment holder, supervisor, watcher, control loop.

Runs in the foreground process of ``envctl up`` (Ctrl-C stops everything cleanly) or as the
detached daemon of ``envctl up -d`` (``python -m envctl.services_session ROOT SPEC``). The main
thread only waits for events: SIGINT/SIGTERM/SIGHUP (stop), SIGUSR1 (``envctl restart`` requests),
and a reload after ``envctl.yaml``/copy inputs changed (rebuild, then restart the environment
and its services; a broken spec keeps the old ones running and prints the error).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from envctl.envdir import env_dir
from envctl.services_config import HOLD, rebuild_inputs, services_from_spec
from envctl.services_state import services_dir, start_failures
from specs.errors import EnvctlError

__all__ = ["ServicesSession", "main"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _die_with_parent(prctl, option: int, parent: int) -> None:
    """``preexec_fn`` of the environment holder: PR_SET_PDEATHSIG=SIGTERM, so a SIGKILLed
    supervisor still ends its environment (``envctl run`` forwards TERM to PID 1, then removes
    its state and cgroup; its own children have PDEATHSIG=SIGKILL). Exits at once when the
    parent is already gone (it died before the prctl). ``prctl``, ``option``: runtime._sys.prctl
    and PR_SET_PDEATHSIG, taken by the parent (no imports between fork and exec: another thread may hold the import lock)."""
    prctl(option, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(0)


class ServicesSession:
    """Runs the spec's services until stopped.

    Args:
        project: envctl.project.Project.
        out: envctl.output.Output (warnings, progress).
        console: stream for prefixed service output (None: log files only, for ``-d``).
        host: run services as host processes in the project directory, no environment
            (benchmarks, and hosts where the runtime is unavailable).
    """

    def __init__(self, project, out, *, console=sys.stdout, host: bool = False):
        self.project, self.out, self.console, self.host = project, out, console, host
        self.env_dir = env_dir(project.spec_path)
        self.dir = services_dir(self.env_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._events: list[tuple[str, object]] = []
        self._cond = threading.Condition()
        self._status_lock = threading.Lock()
        self.holder: subprocess.Popen | None = None
        self.sup = self.reloader = None
        self._watching = False
        self._generation = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, serve events until stopped, stop everything; returns the exit code."""
        from specs import load_spec

        spec = load_spec(self.project.spec_path)
        # SIGHUP too: `kill -HUP` of the -d daemon must not skip the teardown and orphan the environment
        old = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS + (signal.SIGUSR1,)}
        try:
            self._start(spec)
            self._serve()
        finally:
            self._teardown(stop_env=True)
            for s, h in old.items():
                signal.signal(s, h)
        return 0

    def _start(self, spec) -> None:
        from runtime.reload import Reloader
        from runtime.service_log import LogSink
        from runtime.services import HostSpawner, Supervisor

        configs, watches = services_from_spec(spec, host=self.host, project_root=self.project.root)
        spawner = HostSpawner() if self.host else self._env_spawner()
        log = LogSink(self.dir, [c.name for c in configs], console=self.console)
        self.sup = Supervisor(configs, spawner, log, on_status=self._write_status)
        self._write_status()
        self.sup.start()
        self.reloader = Reloader(self.project.root, self.sup, watches, rebuild=self._spec_changed,
                                 rebuild_paths=rebuild_inputs(spec, self.project), on_warning=self.out.warn)
        self.reloader.start()
        self._watching = True
        self._write_status()
        bad = start_failures(self.sup.status(), self.dir)
        for line in bad:   # QA M7: say which did not come up (they restart on the next change)
            self.out.warn(f"service {line}")
        self.out.info(f"envctl: {len(configs) - len(bad)} of {len(configs)} service(s) running"
                      if bad else f"envctl: {len(configs)} service(s) running")
        self.out.info(f"envctl: watching {self.project.root}" + (" (Ctrl-C stops)" if self.console is not None else ""))

    def _teardown(self, *, stop_env: bool) -> None:
        self._generation += 1       # the environment watcher of this generation retires
        if self.reloader is not None:
            self.reloader.stop()
        if self.sup is not None:
            self.sup.stop()
            self._write_status(final=True)
        self.reloader = self.sup = None
        self._watching = False
        if stop_env:
            self._stop_holder()

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._events)
                kind, arg = self._events.pop(0)
            if kind == "stop":
                return
            if kind == "envgone":
                self.out.warn("the environment stopped; stopping its services")
                return
            if kind == "requests":
                self._take_requests()
            elif kind == "reload":
                self._reload(arg)

    def _post(self, kind: str, arg=None) -> None:
        with self._cond:
            self._events.append((kind, arg))
            self._cond.notify_all()

    def _on_signal(self, sig, _frame) -> None:
        self._post("requests" if sig == signal.SIGUSR1 else "stop")
        if sig != signal.SIGUSR1 and getattr(self, "sup", None) is not None:
            # a stop during start-up (Ctrl-C of `up -d`, QA L13) must not wait out readiness timeouts
            for r in self.sup.runners.values():
                r.request_stop()

    # -- restarts and rebuilds -------------------------------------------------------------------
    def _take_requests(self) -> None:
        req = self.dir / "requests"
        for p in sorted(req.glob("*.json")) if req.is_dir() else []:
            try:
                names = json.loads(p.read_text()).get("services") or None
            except (OSError, ValueError):
                names = None
            p.unlink(missing_ok=True)
            try:
                self.sup.restart(names, reason="envctl restart")
            except EnvctlError as e:
                self.out.warn(e.message)

    def _spec_changed(self, paths) -> bool:
        """Reloader callback (dispatcher thread): validate now, rebuild in the main thread."""
        from specs import load_spec

        try:
            load_spec(self.project.spec_path)
        except EnvctlError as e:
            self.out.warn(f"{e.message}")
            self.out.warn("envctl.yaml is broken; the running services are kept")
            return False
        self._post("reload", paths)
        return False       # the main thread restarts everything after the rebuild

    def _reload(self, paths) -> None:
        from specs import load_spec

        self.out.info(f"envctl: {', '.join(paths)} changed: rebuilding the environment")
        try:
            spec = load_spec(self.project.spec_path)
            if not self.host:
                from envctl.workflow import ensure_up

                ensure_up(self.project, self.out)
        except EnvctlError as e:
            self.out.warn(f"rebuild failed: {e.message}; the running services are kept")
            return
        self._teardown(stop_env=True)
        self._start(spec)

    # -- the environment ---------------------------------------------------------------------------
    def _env_spawner(self):
        from runtime.service_env import EnvSpawner
        from runtime.state import is_alive, read_state

        state = read_state(self.env_dir)
        if not (state and is_alive(state)):
            state = self._start_holder()
        threading.Thread(target=self._watch_env, args=(state, self._generation), daemon=True).start()
        return EnvSpawner(state)

    def _watch_env(self, state: dict, generation: int) -> None:
        """When the environment ends under us (``envctl down``, a crash), the services are gone
        with it: stop the session too, so a later ``envctl up`` starts afresh."""
        from runtime.state import is_alive

        while generation == self._generation:
            if not is_alive(state):
                if generation == self._generation:
                    self._post("envgone")
                return
            time.sleep(0.1)

    def _start_holder(self) -> dict:
        """Keep the environment running with an idle PID 1 command (``envctl run``), like
        ``docker compose`` keeps a container; services join it with setns."""
        from runtime import _sys
        from runtime.state import is_alive, read_state

        # PDEATHSIG fires when the *thread* that forked the child ends, not the process: fork only
        # from the main thread (run() and _reload() are), which lives as long as the supervisor
        if threading.current_thread() is not threading.main_thread():
            raise EnvctlError("start the services environment: not called from the main thread",
                              hint="this is a bug in envctl; please report it")
        log = open(self.dir / "environment.log", "ab")
        argv = [sys.executable, "-m", "envctl", "run", "-C", str(self.project.root), "-f",
                str(self.project.spec_path), "--", "/bin/sh", "-c", HOLD]
        die = functools.partial(_die_with_parent, _sys.prctl, _sys.PR_SET_PDEATHSIG, os.getpid())
        self.holder = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True, preexec_fn=die)
        log.close()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = read_state(self.env_dir)
            if state and is_alive(state) and state.get("supervisor", self.holder.pid) == self.holder.pid:
                return state
            if self.holder.poll() is not None:
                tail = [ln for ln in (self.dir / "environment.log").read_text(errors="replace").splitlines()
                        if ln.startswith("envctl: ")][-1:]
                raise EnvctlError("the environment for the services did not start"
                                  + (f": {tail[-1]}" if tail else ""),
                                  hint=f"see {self.dir / 'environment.log'}; 'envctl run -- true' shows the problem")
            time.sleep(0.02)
        raise EnvctlError("the environment for the services did not start within 300s")

    def _stop_holder(self) -> None:
        """SIGTERM to our ``envctl run`` (it forwards to PID 1 and cleans up state and cgroup);
        ``runtime.lifecycle.stop`` (SIGKILL to PID 1) only if that does not end it in 5 s.
        The holder is our child: reap it here, or it would look alive as a zombie."""
        if self.holder is None:
            return
        self.holder.send_signal(signal.SIGTERM)
        try:
            self.holder.wait(5)
        except subprocess.TimeoutExpired:
            from runtime.lifecycle import stop

            threading.Thread(target=stop, args=(self.env_dir,), kwargs={"timeout": 1}, daemon=True).start()
            try:
                self.holder.wait(10)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()
        self.holder = None

    def _write_status(self, final: bool = False) -> None:
        sup = self.sup
        if sup is None:
            return
        data = {"supervisorPid": None if final else os.getpid(), "project": str(self.project.root),
                "updated": time.time(), "watching": self._watching and not final, "services": sup.status()}
        with self._status_lock:
            tmp = self.dir / f".status.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(data, indent=2))
            os.replace(tmp, self.dir / "status.json")


def main(argv=None) -> int:
    """Entry of the ``envctl up -d`` daemon: ``python -m envctl.services_session ROOT SPEC [--host]``."""
    from envctl.output import Output
    from envctl.project import find_project

    argv = sys.argv[1:] if argv is None else argv
    project = find_project(argv[0], argv[1])
    out = Output(False, 0)
    try:
        return ServicesSession(project, out, console=None, host="--host" in argv).run()
    except EnvctlError as e:
        sys.stderr.write(f"envctl: error: {e.message}\n")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
