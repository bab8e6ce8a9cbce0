"""Run a config.json: the builtin runtime (fork into namespaces) or an external runc/crun.

Process tree of the builtin runtime::

    envctl (supervisor: signals, pty relay, cgroup, state)   host namespaces
     └─ setup (user ns; joins the cgroup; unshares the rest)  waits and passes the status up
         └─ PID 1 (mounts, pivot_root, pty; runtime.init.pid1) new pid/mount/uts/ipc/cgroup[/net] ns
             └─ the command

Each process sets PR_SET_PDEATHSIG=SIGKILL, so when envctl dies the whole environment dies
(PID 1's death kills its pid namespace). Messages between setup/PID 1 and the supervisor go over
one SOCK_SEQPACKET pair: ``userns`` (map my ids) / ``go``, ``pid N``, ``pty`` + fd, ``started N``,
``err {json}``.
"""

from __future__ import annotations

import _signal as signal  # signal's functions without its enum wrappers (enum costs ~2 ms at start-up)
import os

from runtime import _ipc, _sys
from runtime.errors import ContainerError, SyscallError, UnsupportedHost
from runtime.init import FORWARDED, exit_code_of, pid1, seccomp_program, send_error, set_cmdline
from runtime.namespaces import clone_flags, loopback_up, write_id_maps

__all__ = ["BuiltinRunner", "ExternalRunner", "run_container", "Started", "run_config", "run_external"]


def _has_ns(config: dict, kind: str) -> bool:
    return any(n["type"] == kind and not n.get("path") for n in (config.get("linux") or {}).get("namespaces", ()))


def _recv(ctl, what: str) -> tuple[bytes, list[int]]:
    msg, fds = _ipc.recv_fds(ctl, 4096, 2)
    if not msg:
        raise ContainerError(f"environment setup ended before {what}",
                             hint="rerun with -v; 'envctl doctor' checks namespaces and overlay support")
    if msg.startswith(b"err "):
        from specs.fastjson import loads

        info = loads(msg[4:])
        raise ContainerError(info.get("message") or "setup failed", info.get("hint"))
    return msg, fds


class Started:
    """A started container: ``pid`` (host pid of PID 1), ``setup_pid``, ``ctl``, ``pty_master``."""

    def __init__(self, setup_pid: int, pid: int, ctl, pty_master: int | None, cgroup):
        self.setup_pid, self.pid, self.ctl, self.pty_master, self.cgroup = setup_pid, pid, ctl, pty_master, cgroup
        self.status: int | None = None

    def poll(self) -> bool:
        """True once the environment has ended (status kept for ``wait``)."""
        if self.status is None:
            try:
                pid, status = os.waitpid(self.setup_pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.setup_pid, 255 << 8
            if pid:
                self.status = status
        return self.status is not None

    def wait_exit_message(self) -> int | None:
        """The command's exit code as PID 1 reports it on the control socket (None if it could
        not: killed, or the channel closed). The setup process is reaped later by ``wait``."""
        try:
            while True:
                msg, _fds = _ipc.recv_fds(self.ctl, 64, 1)
                if not msg:
                    return None
                if msg.startswith(b"exit "):
                    return int(msg.split()[1])
        except (OSError, ValueError):
            return None

    def wait(self) -> int:
        """Wait for the environment to end; returns the command's exit code."""
        if self.status is not None:
            return exit_code_of(self.status)
        while True:
            try:
                _, status = os.waitpid(self.setup_pid, 0)
                return exit_code_of(status)
            except ChildProcessError:
                return 255
            except InterruptedError:
                continue


class BuiltinRunner:
    """The builtin runtime over a config.json dict (see module docstring)."""

    name = "builtin"

    def __init__(self, config: dict):
        self.config = config
        self.rootless = _has_ns(config, "user")

    def start(self, *, cgroup=None, wait_start: bool = False, stdio: tuple[int, int, int] | None = None) -> Started:
        """Fork the environment; returns once PID 1 has finished setup (or raises its error).

        Args:
            cgroup: a runtime.cgroups.Cgroup to join (or None).
            wait_start: PID 1 waits for ``b"start"`` on ``Started.ctl`` before forking the command
                (``envctl oci create`` / ``start``).
            stdio: fds to use as 0/1/2 inside (default: inherited).
        Raises: ContainerError (setup failure reported by the child, with its hint).
        """
        from runtime.mounts import apply_plan  # noqa: F401 - loaded before fork: PID 1 would pay ~3x (fresh pages)
        from runtime.plan import build_plan

        ops = build_plan(self.config, rootless=self.rootless)  # computed before fork: errors stay here
        self.seccomp = seccomp_program((self.config.get("linux") or {}).get("seccomp"))
        ours, theirs = _ipc.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._setup_child(theirs, ops, wait_start, stdio)  # never returns
        theirs.close()
        try:
            return self._handshake(pid, ours, cgroup)
        except ContainerError as e:
            status = _reap(pid)
            if status is not None and "ended before" in e.message:
                e.message += f" (setup {_describe(status)})"
                e.args = (e.message,)
            ours.close()
            raise
        except BaseException:
            _kill_wait(pid)
            ours.close()
            raise

    def _handshake(self, pid: int, ctl, cgroup) -> Started:
        linux = self.config.get("linux") or {}
        if self.rootless:
            _recv(ctl, "user namespace")
            write_id_maps(pid, linux.get("uidMappings") or [], linux.get("gidMappings") or [])
        if cgroup is not None:
            cgroup.add(pid)
        ctl.send(b"go")
        # setup sends "pid", PID 1 sends "pty"/"ready"/"started": two senders, so any order
        g, master, ready = None, None, False
        while g is None or not ready:
            msg, fds = _recv(ctl, "the command start" if g else "PID 1")
            if msg.startswith(b"pid "):
                g = int(msg.split()[1])
            elif msg == b"pty":
                master = fds[0]
            elif msg.startswith(b"ready") or msg.startswith(b"started"):
                ready = True
        return Started(pid, g, ctl, master, cgroup)

    def _setup_child(self, ctl, ops, wait_start: bool, stdio) -> None:
        code = 1
        try:
            _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)
            for s in FORWARDED:  # PID 1 gets them from the supervisor; a terminal's Ctrl-C must not double up
                signal.signal(s, signal.SIG_IGN)
            if stdio:
                for i, fd in enumerate(stdio):
                    os.dup2(fd, i, inheritable=True)
            if self.rootless:
                try:
                    _sys.unshare(_sys.CLONE_NEWUSER)
                except _sys.SysError as e:
                    from runtime.host import userns_hint
                    raise UnsupportedHost(f"create a user namespace: {e.strerror}", hint=userns_hint()) from None
                ctl.send(b"userns")
            if ctl.recv(16) != b"go":
                os._exit(1)
            _sys.unshare(clone_flags(self.config))
            g = os.fork()
            if g == 0:
                self._pid1(ctl, ops, wait_start)
            ctl.send(f"pid {g}".encode())
            ctl.close()
            while True:
                try:
                    _, status = os.waitpid(g, 0)
                    code = exit_code_of(status)
                    break
                except InterruptedError:
                    continue
        except BaseException as e:  # noqa: BLE001 - report anything to the supervisor, never unwind
            send_error(ctl, e if isinstance(e, ContainerError) else _wrap(e))
        os._exit(code)

    def _pid1(self, ctl, ops, wait_start: bool) -> None:
        from runtime.mounts import apply_plan

        try:
            _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)
            os.setsid()
            set_cmdline()
            if _has_ns(self.config, "network"):
                loopback_up()  # before pivot_root: it imports socket, and the host's stdlib is gone after
            # nothing may be imported lazily from here on (the host's Python library is not in the new root)
            apply_plan(ops, rootless=self.rootless, readonly_root=(self.config.get("root") or {}).get("readonly", False))
            if _has_ns(self.config, "uts") and self.config.get("hostname"):
                _sys.sethostname(self.config["hostname"])
            process = self.config.get("process") or {}
            setgroups = not self.rootless or _setgroups_allowed()
            pid1(process, ctl=ctl, tty=bool(process.get("terminal")), wait_start=wait_start, setgroups=setgroups,
                 seccomp=self.seccomp)
        except BaseException as e:  # noqa: BLE001
            send_error(ctl, e if isinstance(e, ContainerError) else _wrap(e))
            os._exit(1)


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups", "rb") as f:
            return f.read().strip() == b"allow"
    except OSError:
        return True


def _wrap(e: BaseException) -> ContainerError:
    if isinstance(e, OSError):
        return SyscallError.from_os_error(e)
    return ContainerError(f"environment setup failed: {type(e).__name__}: {e}")


def _reap(pid: int, timeout: float = 2.0) -> int | None:
    """Wait briefly for the setup process; kill it if it lingers. Returns its status or None."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if p:
            return status
        time.sleep(0.005)
    _kill_wait(pid)
    return None


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _kill_wait(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


class ExternalRunner:
    """Run a bundle with an installed OCI runtime (``runc``/``crun``) — same config.json."""

    def __init__(self, name: str):
        import shutil

        self.name = name
        self.exe = shutil.which(name)
        if not self.exe:
            raise UnsupportedHost(f"oci runtime {name} not found", hint=f"install {name} or unset ENVCTL_RUNTIME")

    def run(self, bundle: Path, container_id: str, *, root: Path | None = None) -> int:
        """``<runtime> run --bundle BUNDLE ID`` with stdio inherited; returns its exit status."""
        argv = [self.exe]
        if root:
            argv += ["--root", str(root)]
        argv += ["run", "--bundle", str(bundle), container_id]
        import subprocess  # only here: ~4 ms of imports the builtin warm path does not pay

        return subprocess.run(argv).returncode


def run_container(config: dict, *, state_dir: Path | None = None, detach: bool = False, warn=None,
                  name: str | None = None) -> int:
    """Run ``config`` (OCI config.json dict) with the builtin runtime in the foreground.

    Stdin/stdout/stderr pass through (or a pty relay when ``process.terminal``); signals to envctl
    reach the command; the cgroup (if limits) and state are removed afterwards.
    Returns the command's exit code (137 + "killed: out of memory" on an OOM kill).
    Raises ContainerError on setup failures. ``detach`` is not supported here (see envctl oci).
    """
    from runtime.supervise import supervise

    if detach:
        raise ContainerError("detached runs go through 'envctl oci create/start'")
    return supervise(BuiltinRunner(config), config, state_dir=state_dir, warn=warn, name=name)


def run_external(config: dict, runtime: str, bundle: Path, container_id: str) -> int:
    """Run ``config`` with runc/crun: write ``bundle/config.json``; as root, mount the overlay rootfs
    plan first (and unmount after). Returns the exit status. Raises UnsupportedHost."""
    import json

    from runtime.plan import MountOverlay, _overlay_op
    from runtime.mounts import _overlay

    runner = ExternalRunner(runtime)
    ov = _overlay_op(config, config["root"]["path"])
    if ov and os.geteuid() != 0:
        raise UnsupportedHost(f"{runtime} cannot mount envctl's overlay rootfs rootless",
                              hint="use the builtin runtime (unset ENVCTL_RUNTIME) or 'envctl bundle --copy'")
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    mounted = False
    try:
        if ov:
            _overlay(ov, rootless=False)
            mounted = True
        return runner.run(bundle, container_id)
    finally:
        if mounted:
            _sys.umount2(ov.target, _sys.MNT_DETACH)


def run_config(config: dict, *, runtime: str = "builtin", state_dir: Path | None = None,
               name: str | None = None, warn=None) -> int:
    """Run ``config`` in the foreground with the named runtime; returns the exit code."""
    if runtime == "builtin":
        return run_container(config, state_dir=state_dir, warn=warn, name=name)
    from pathlib import Path

    base = state_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    return run_external(config, runtime, Path(base) / "bundle", name or f"envctl-{os.getpid()}")
