"""Inside the container: PID 1 (``pid1``) and the command process (``exec_command``).

Design: fork, not exec. The supervisor's already-initialised Python forks into the new
namespaces, so no second interpreter start (~10 ms) is paid on every ``envctl run``. PID 1 is
that forked Python; it makes itself non-dumpable (``PR_SET_DUMPABLE 0``) so that, without
CAP_SYS_PTRACE (not in the default set), nothing inside can open ``/proc/1/exe``, ``/proc/1/fd``
or ``/proc/1/mem`` — the CVE-2019-5736 class — and it keeps no host descriptor besides 0-2 and
the control socket. The command process closes every descriptor above 2 and sets its working
directory by path inside the new root after pivot_root (CVE-2024-21626's leaked-fd class), runs
in a new session (TIOCSTI cannot reach the host terminal) and execs with capabilities reduced
and no_new_privs set.

PID 1 blocks the forwarded signals and SIGCHLD, waits for them with ``sigwaitinfo``, forwards
SIGINT/TERM/HUP/QUIT/USR1/USR2/WINCH to the command, reaps every zombie, and exits with the
command's status (128+N for signal N) — tini's behaviour.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import _signal as signal  # signal's functions without its enum wrappers (enum costs ~2 ms at start-up)
import struct

from runtime import _ipc, _sys
from specs import fastjson  # not json (re/enum at start-up); must be loaded before pivot_root
from runtime.capabilities import apply_capabilities, drop_bounding, switch_user
from runtime.errors import ContainerError, SyscallError

__all__ = ["FORWARDED", "pid1", "set_cmdline", "seccomp_program", "exec_command", "send_error", "exit_code_of", "prepare_command",
           "open_console"]

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)
_RLIMITS = {n: getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")}
TIOCSCTTY, TIOCGPTN, TIOCSPTLCK = 0x540E, 0x80045430, 0x40045431


def exit_code_of(status: int) -> int:
    """waitpid status -> shell-style exit code (128+N for signal N)."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def send_error(ctl, e: BaseException) -> None:
    """Report a setup failure to the supervisor as one JSON message (best effort)."""
    if ctl is None:
        return
    msg = {"message": getattr(e, "message", None) or str(e), "hint": getattr(e, "hint", None)}
    try:
        ctl.send(b"err " + fastjson.dumps(msg).encode())
    except OSError:
        pass


def _set_rlimits(rlimits) -> None:
    for r in rlimits or ():
        res = _RLIMITS.get(r["type"])
        if res is None:
            continue
        soft, hard = r.get("soft", 0), r.get("hard", 0)
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            # unprivileged: the hard limit cannot be raised above the host's; clamp to it
            cur_hard = resource.getrlimit(res)[1]
            cap = cur_hard if cur_hard != resource.RLIM_INFINITY else hard
            resource.setrlimit(res, (min(soft, cap), min(hard, cap)))


def set_cmdline(name: str = "envctl-init") -> None:
    """Overwrite this process's argv area (what ``ps`` and /proc/PID/cmdline show inside the
    environment) so PID 1 does not display envctl's host command line and paths. Best effort."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: stat fields 48 and 49
        data = name.encode()[: end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data + b"\0" * (end - start - len(data)))
    except (OSError, ValueError, IndexError):
        pass


def open_console() -> tuple[int, int]:
    """Open a pty pair from the container's own devpts (/dev/ptmx after pivot_root).

    Returns (master fd, slave fd); the master goes to the supervisor over the control socket,
    like runc's --console-socket. Raises SyscallError.
    """
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        raise SyscallError("open console", "/dev/ptmx", e.errno or 0) from None
    return master, slave


def prepare_command(process: dict) -> None:
    """Process attributes set before the command's exec: rlimits and the bounding set (as root)."""
    _set_rlimits(process.get("rlimits"))
    drop_bounding((process.get("capabilities") or {}).get("bounding", ()))


def seccomp_program(profile: dict | None) -> bytes | None:
    """Packed BPF for an OCI ``linux.seccomp`` profile (compiled before forking). Raises
    ContainerError for a profile the builtin compiler does not support."""
    if not profile:
        return None
    from runtime.seccomp import compile_filter

    try:
        prog = compile_filter(profile)
    except ValueError as e:
        raise ContainerError(f"seccomp: {e}", hint="run this bundle with runc or crun (ENVCTL_RUNTIME=runc)") from None
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def _env_dict(env_list) -> dict:
    return dict(item.partition("=")[::2] for item in env_list or ())


def _make_cwd(cwd: str | None) -> None:
    """Create the working directory ``cwd`` (str, absolute path in the container; None/"" = "/")
    with mode 0755 when missing, before the user switch, as runc does (OCI ``process.cwd``:
    runc's prepareRootfs ``MkdirAll(cwd, 0755)``). Errors are left to the chdir that follows,
    which names them. Returns None.
    """
    if cwd and cwd != "/":
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)
        except OSError:
            pass


def exec_command(process: dict, *, tty_slave: int | None, setgroups: bool = True, seccomp=None) -> None:
    """In the command's own process: session/tty, user, caps, cwd, fds, then exec. Never returns.

    Exit 127 when the command is not found, 126 when it cannot be executed (message on stderr).
    """
    try:
        for s in FORWARDED + (signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(s, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.setsid()
        if tty_slave is not None:
            fcntl.ioctl(tty_slave, TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(tty_slave, fd)
            if tty_slave > 2:
                os.close(tty_slave)
        user = process.get("user") or {}
        _make_cwd(process.get("cwd"))
        switch_user(user.get("uid", 0), user.get("gid", 0), user.get("additionalGids", ()), setgroups)
        try:
            os.chdir(process.get("cwd") or "/")
        except OSError as e:
            raise SyscallError("chdir", process.get("cwd") or "/", e.errno or 0) from None
        apply_capabilities(process.get("capabilities") or {},
                           no_new_privs=process.get("noNewPrivileges", True))
        _sys.close_range(3)
        if seccomp:  # last: the filter also binds everything we still do before exec
            try:
                _sys.seccomp_set_filter(seccomp)
            except _sys.SysError as e:
                raise SyscallError.from_os_error(e) from None
    except ContainerError as e:
        os.write(2, f"envctl: error: {e.message}\n".encode())
        os._exit(1)
    _execvpe(process.get("args") or ["/bin/sh"], _env_dict(process.get("env")))


def _execvpe(args: list[str], env: dict) -> None:
    try:
        _exec_path_search(args, env)
    except FileNotFoundError:
        os.write(2, f"envctl: {args[0]}: command not found\n".encode())
        os._exit(127)
    except OSError as e:
        code = 126
        os.write(2, f"envctl: {args[0]}: {os.strerror(e.errno or errno.EACCES).lower()}\n".encode())
        os._exit(code)
    os._exit(127)


def _exec_path_search(args: list[str], env: dict) -> None:
    """``os.execvpe(args[0], args, env)`` without ``os.get_exec_path``, which imports ``warnings``
    lazily: after pivot_root the host's stdlib is gone, and importing it before costs start-up time.
    Same search: a name with a slash is run as is; else each ``PATH`` entry (the image's, default
    ``os.defpath``); the first error other than not-found wins, else the last not-found."""
    file = args[0]
    if "/" in file:
        os.execve(file, args, env)
    saved = last = None
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        try:
            os.execve(os.path.join(d, file), args, env)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
        except OSError as e:
            last = e
            saved = saved or e
    raise saved or last


def pid1(process: dict, *, ctl, tty: bool, wait_start: bool = False,
         setgroups: bool = True, seccomp: bytes | None = None) -> None:
    """Run as PID 1 after the mounts: fork the command, forward signals, reap, exit. Never returns."""
    slave = None
    keep = {ctl.fileno()} if ctl is not None else set()
    if tty:
        master, slave = open_console()
        _ipc.send_fds(ctl, b"pty", [master])
        os.close(master)
        keep.add(slave)
    _close_except(keep)
    prepare_command(process)
    _sys.prctl(_sys.PR_SET_DUMPABLE, 0, what="PR_SET_DUMPABLE")
    watched = set(FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    if wait_start and ctl is not None:
        ctl.send(b"ready")
        if ctl.recv(64) != b"start":
            os._exit(1)
    child = os.fork()
    if child == 0:
        if ctl is not None:
            ctl.close()
        exec_command(process, tty_slave=slave, setgroups=setgroups, seccomp=seccomp)
    if slave is not None:
        os.close(slave)
    if ctl is not None:
        try:
            ctl.send(f"started {child}".encode())
        except OSError:
            pass
    code = _supervise(child, watched)
    if ctl is not None:
        # the status goes to the supervisor first: it need not wait for the kernel to tear the
        # namespaces down (the setup process's exit) before returning it
        try:
            ctl.send(f"exit {code}".encode())
        except OSError:
            pass
    os._exit(code)


def _close_except(keep: set[int]) -> None:
    hi = 3
    for fd in sorted(keep):
        if fd > hi:
            os.closerange(hi, fd)
        hi = max(hi, fd + 1)
    try:
        _sys.close_range(hi)
    except OSError:
        os.closerange(hi, 65536)


def _supervise(child: int, watched: set) -> int:
    code = None
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(child, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:  # reap every exited process; the command's status is the one we keep
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return code if code is not None else 0
            if pid == 0:
                break
            if pid == child:
                code = exit_code_of(status)
        if code is not None:
            return code
