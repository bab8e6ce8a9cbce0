"""The supervisor side of a builtin run: cgroup, state, signal forwarding, pty relay, exit status."""

from __future__ import annotations

import os
import _signal as signal  # signal's functions without its enum wrappers (enum costs ~2 ms at start-up)
import sys
import time

from runtime.init import FORWARDED

__all__ = ["supervise", "OOM_EXIT", "forwarded_signals"]

OOM_EXIT = 137
_LINGERING: list[int] = []  # setup processes whose command's status we already have
_FORWARDED: list[int] = []  # signals forwarded to the command during the latest supervise()


def forwarded_signals() -> tuple[int, ...]:
    """The signals (tuple of int, SIGWINCH excluded) this process forwarded to the command during
    its latest :func:`supervise` run: a caller can tell "the user pressed Ctrl-C" from "the
    command exited 130 by itself" (build steps, QA L2)."""
    return tuple(_FORWARDED)


def _reap_lingering() -> None:
    for pid in list(_LINGERING):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                _LINGERING.remove(pid)
        except ChildProcessError:
            _LINGERING.remove(pid)


def _cgroup(config: dict, name: str | None, warn):
    res = (config.get("linux") or {}).get("resources") or {}
    if not res:
        return None
    from runtime.cgroups import open_cgroup

    cg_name = f"envctl-{name}-{os.getpid()}" if name else f"envctl-{os.getpid()}"  # concurrent runs of one env
    return open_cgroup(cg_name, res, warn=warn)


def supervise(runner, config: dict, *, state_dir: Path | None, warn=None, name: str | None = None) -> int:
    """Start ``runner`` (BuiltinRunner) and supervise until the command ends; returns its exit code.

    Forwards FORWARDED signals to PID 1 (WINCH resizes the pty instead in terminal mode), relays
    the pty with the host terminal in raw mode, writes/removes ``state_dir/state.json``, removes
    the cgroup, and reports an OOM kill ("killed: out of memory", exit 137).
    """
    from runtime import state as st

    _reap_lingering()
    cg = _cgroup(config, name, warn)
    if state_dir is not None:  # a second concurrent run of the same environment leaves the first's state
        prev = st.read_state(state_dir)
        if prev and st.is_alive(prev):
            state_dir = None
    term = bool((config.get("process") or {}).get("terminal"))
    if term:  # only then: the plain `envctl run` path does without select/fcntl/struct
        from runtime import tty
    winsize = tty.get_winsize(0) or tty.get_winsize(1) if term else None
    started = None
    saved = {}
    pending: list[int] = []

    _FORWARDED.clear()

    def forward(sig, _frame):
        if sig != signal.SIGWINCH:
            _FORWARDED.append(sig)
        if started is None:  # the command may already run and a signal arrive before start() returns
            pending.append(sig)
            return
        if sig == signal.SIGWINCH and started.pty_master is not None:
            tty.set_winsize(started.pty_master, tty.get_winsize(0) or tty.get_winsize(1))
            return
        try:
            os.kill(started.pid, sig)
        except ProcessLookupError:
            pass

    try:
        for s in FORWARDED:
            saved[s] = signal.signal(s, forward)
        started = runner.start(cgroup=cg)
        if state_dir is not None:
            st.write_state(state_dir, st.running_state(config, started, name=name))
        for sig in pending:
            forward(sig, None)
        if started.pty_master is not None:
            tty.set_winsize(started.pty_master, winsize)
            with tty.RawMode(0):
                tty.relay(started.pty_master, done=started.poll)
            os.close(started.pty_master)
        code = None
        if cg is None and started.pty_master is None:
            code = started.wait_exit_message()
        if code is None:
            code = started.wait()
        elif not started.poll():
            _LINGERING.append(started.setup_pid)  # tearing its namespaces down (~4 ms); reaped later
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
        if started is not None:
            started.ctl.close()
        if state_dir is not None:
            st.remove_state(state_dir)
    if cg is not None:
        oom = cg.oom_killed()
        _remove_cgroup(cg)
        if oom and code in (OOM_EXIT, 128 + signal.SIGKILL):
            sys.stderr.write("envctl: killed: out of memory\n")
            return OOM_EXIT
    return code


def _remove_cgroup(cg) -> None:
    try:
        cg.remove()
    except OSError:
        time.sleep(0)
