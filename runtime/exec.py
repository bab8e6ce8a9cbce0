"""Run a command inside a running environment by joining its namespaces (``envctl exec``).

Process tree: envctl (supervisor: signals, pty) -> joiner (setns user first, then the rest, so
the user namespace's capabilities allow the mount/pid joins) -> the command (forked after the
pid-namespace join so it is inside it). The joiner is made non-dumpable before any join: while it
is a host Python inside the environment's namespaces, nothing inside can open its
``/proc/PID/exe`` or fds (CVE-2019-5736 class). The command gets the same user, capabilities,
cwd, environment and no_new_privs as the environment's main process, and its cgroup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from runtime import _ipc, _sys
from runtime.errors import ContainerError, ContainerNotFound
from runtime.init import (FORWARDED, exec_command, exit_code_of, open_console, prepare_command, seccomp_program,
                          send_error)
from runtime.namespaces import join
from runtime.runner import Started, _recv

__all__ = ["exec_in"]


def _cgroup_procs(pid: int, root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """cgroup.procs files of every hierarchy ``pid`` is in (v1 per controller, v2/unified)."""
    out = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if hid == "0":
            base = root / "unified" if (root / "unified").is_dir() else root
        else:
            base = root / ctrls.replace("name=", "")
        out.append(base / path.lstrip("/") / "cgroup.procs")
    return out


def _join_cgroup(pid: int) -> None:
    for procs in _cgroup_procs(pid):
        try:
            procs.write_text(str(os.getpid()))
        except OSError:
            pass  # rootless without delegation: the command runs in envctl's cgroup


class _Exec:
    def __init__(self, state: dict, args: list[str], tty: bool, env: list[str] | None, cwd: str | None):
        self.pid = state["pid"]
        self.ns_pid = state.get("nsPid")
        self.types = set(state.get("namespaces") or ())
        self.rootless = bool(state.get("rootless"))
        self.process = dict(state.get("process") or {})
        self.process["args"] = list(args)
        self.process["terminal"] = tty
        self.seccomp = seccomp_program(state.get("seccomp"))
        if env:
            self.process["env"] = list(self.process.get("env") or []) + list(env)
        if cwd:
            self.process["cwd"] = cwd

    def start(self, cgroup=None, **_kw) -> Started:
        ours, theirs = _ipc.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._joiner(theirs)
        theirs.close()
        master = None
        msg, fds = _recv(ours, "joining the environment")
        while not msg.startswith(b"started"):
            if msg == b"pty":
                master = fds[0]
            msg, fds = _recv(ours, "the command start")
        return Started(pid, int(msg.split()[1]), ours, master, None)

    def _joiner(self, ctl) -> None:
        code = 1
        try:
            _sys.prctl(_sys.PR_SET_DUMPABLE, 0)
            _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)
            for s in FORWARDED:
                signal.signal(s, signal.SIG_IGN)
            src = self.ns_pid or self.pid
            _join_cgroup(src)
            join(src, self.types, pid_for_children=bool(self.ns_pid))
            os.chdir("/")  # the cwd still pointed into the host mount namespace
            slave = None
            if self.process["terminal"]:
                master, slave = open_console()
                _ipc.send_fds(ctl, b"pty", [master])
                os.close(master)
            prepare_command(self.process)
            child = os.fork()
            if child == 0:
                ctl.close()
                exec_command(self.process, tty_slave=slave, setgroups=_setgroups_ok(), seccomp=self.seccomp)
            if slave is not None:
                os.close(slave)
            ctl.send(f"started {child}".encode())
            ctl.close()
            while True:
                try:
                    code = exit_code_of(os.waitpid(child, 0)[1])
                    break
                except InterruptedError:
                    continue
        except BaseException as e:  # noqa: BLE001 - report to the supervisor, never unwind into its code
            send_error(ctl, e if isinstance(e, ContainerError) else ContainerError(f"exec: {e}"))
        os._exit(code)


def _setgroups_ok() -> bool:
    try:
        return Path("/proc/self/setgroups").read_text().strip() == "allow"
    except OSError:
        return True


def exec_in(state: dict, args: list[str], *, tty: bool = False, env: list[str] | None = None,
            cwd: str | None = None) -> int:
    """Run ``args`` in the running environment described by ``state`` (runtime.state); returns
    the exit code. Raises ContainerNotFound when it is not running, ContainerError on join failure.
    """
    from runtime.state import is_alive
    from runtime.supervise import supervise

    if not is_alive(state):
        raise ContainerNotFound(f"environment {state.get('id')} is not running",
                                hint="start it with 'envctl run' or 'envctl shell'")
    cfg = {"process": {"terminal": tty}}
    return supervise(_Exec(state, args, tty, env, cwd), cfg, state_dir=None)
