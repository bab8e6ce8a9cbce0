"""Spawn services inside a running environment (joins its namespaces like ``envctl exec``).

Implements :class:`runtime.services.Spawner` over :mod:`runtime.exec`: a joiner process enters
the environment's user, mount, pid, ... namespaces and cgroup, then forks the service, which
``setsid()``s (so its host pid is its process group id and ``killpg`` reaches everything it
started). The joiner's stdin is /dev/null and its stdout/stderr are the supervisor's log pipe;
the service inherits them. The service runs inside the same environment for every restart:
no re-entry of the rootfs, no re-mount (issue 7).
"""

from __future__ import annotations

import os
import signal
import threading

from runtime.errors import ContainerError, ContainerNotFound

__all__ = ["EnvSpawner"]


class _EnvProc:
    def __init__(self, started):
        self._started = started
        self.pid = started.pid             # host pid of the service == its process group id
        self._done = threading.Event()
        self._code: int | None = None
        self._lock = threading.Lock()

    def wait(self, timeout=None):
        if self._done.is_set():
            return self._code
        if timeout is None:
            with self._lock:
                if not self._done.is_set():
                    self._code = self._started.wait()   # the joiner exits with the service's code
                    self._started.ctl.close()
                    self._done.set()
            return self._code
        deadline = timeout
        while deadline > 0 and not self._done.is_set():
            with self._lock:
                if self._started.poll():
                    self._code = self._started.wait()
                    self._started.ctl.close()
                    self._done.set()
                    break
            self._done.wait(0.01)
            deadline -= 0.01
        return self._code if self._done.is_set() else None

    def signal(self, sig):
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class EnvSpawner:
    """Spawns into the running environment described by ``state`` (runtime.state dict).

    Args:
        state: the environment's state.json contents (pid, namespaces, process, rootless).

    ``spawn`` raises ContainerNotFound when the environment is gone and ContainerError when
    joining fails (both are reported by the supervisor as a failed start).
    """

    def __init__(self, state: dict):
        self.state = state

    def spawn(self, argv, env, cwd, stdout):
        """Start ``argv`` (list of str) inside the running environment (setns exec) with ``env``
        (dict str -> str) added to the environment's process env, in ``cwd`` (str or None),
        stdout+stderr to the fd ``stdout`` (int). Returns a Proc. Raises ContainerNotFound when
        the environment is not running.
        """
        from runtime.exec import _Exec
        from runtime.state import is_alive

        if not is_alive(self.state):
            raise ContainerNotFound(f"environment {self.state.get('id')} is not running",
                                    hint="run 'envctl up' again")
        out_fd = stdout

        class _ServiceExec(_Exec):
            def _joiner(self, ctl):     # runs in the forked joiner: wire stdio, then join
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out_fd, 1)
                os.dup2(out_fd, 2)
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                super()._joiner(ctl)

        ex = _ServiceExec(self.state, list(argv), False, [f"{k}={v}" for k, v in env.items()], cwd)
        try:
            started = ex.start()
        except ContainerError:
            raise
        except OSError as e:
            raise ContainerError(f"start {argv[0]} in the environment: {e.strerror}") from e
        return _EnvProc(started)
