"""``envctl shell`` driven through a real pty (pexpect): prompt marker, window size and resize,
job control (Ctrl-C reaches the foreground job, not envctl), exit status, terminal restored."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

from tests.integration.runtime_fixtures import REPO, rt_env  # noqa: F401 (fixture)


def _spawn(env, *args, dimensions=(24, 80)):
    full = dict(os.environ) if env.user is None else env.user.env()
    full.update(env._env({"TERM": "xterm"}))
    kw = {}
    if env.user is not None:
        kw["preexec_fn"] = env.user._demote
    return pexpect.spawn(env.python, ["-m", "envctl", *args], cwd=str(env.project), env=full,
                         dimensions=dimensions, encoding="utf-8", timeout=20, **kw)


def test_shell_pty_size_resize_jobs_exit(rt_env):
    rt_env.prepare({"shell": "/bin/sh"})
    child = _spawn(rt_env, "shell", dimensions=(30, 100))
    try:
        child.expect_exact("(project)")
        child.sendline("stty size; tty")
        child.expect(r"30 100\r\n/dev/pts/0")
        child.setwinsize(40, 120)
        child.sendline("stty size")
        child.expect(r"40 120")
        child.sendline("sh -c 'echo started; exec sleep 30'")
        child.expect_exact("started\r\n")
        child.sendintr()  # Ctrl-C: the foreground job inside dies, the shell and envctl stay
        child.sendline("echo alive-$?")
        child.expect(r"alive-130")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5, child.before


def test_shell_falls_back_to_sh(rt_env):
    rt_env.prepare({"shell": "/bin/zsh"})
    child = _spawn(rt_env, "shell")
    try:
        child.expect_exact("/bin/zsh not found in the environment, using /bin/sh")
        child.sendline("echo $0; exit")
        child.expect(r"/bin/sh")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_run_tty_restores_terminal(rt_env):
    rt_env.prepare()
    script = ("import os,sys,termios,subprocess; before=termios.tcgetattr(0); "
              "rc=subprocess.call([sys.executable,'-m','envctl','run','-t','--','sh','-c','stty raw; echo in']); "
              "print('restored' if termios.tcgetattr(0)==before else 'changed', rc)")
    full = dict(os.environ) if rt_env.user is None else rt_env.user.env()
    full.update(rt_env._env({"TERM": "xterm"}))
    kw = {"preexec_fn": rt_env.user._demote} if rt_env.user else {}
    child = pexpect.spawn(rt_env.python, ["-c", script], cwd=str(rt_env.project), env=full,
                          encoding="utf-8", timeout=20, **kw)
    child.expect(pexpect.EOF)
    child.close()
    assert "restored 0" in child.before, child.before


def test_exec_with_tty_into_running_env(rt_env):
    rt_env.prepare()
    main = rt_env.popen("run", "--", "sh", "-c", "echo ready; exec sleep 60")
    assert main.stdout.readline().strip() == "ready"
    rt_env.wait_state()
    child = _spawn(rt_env, "exec", "-t", "--", "sh", dimensions=(33, 99))
    try:
        child.sendline("stty size; tty; pidof sleep >/dev/null && echo sees-main")
        child.expect(r"33 99\r\n/dev/pts/\d+\r\nsees-main")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3
    assert rt_env.envctl("down", "-t", "2").returncode == 0
    main.wait(timeout=20)
