"""runtime.seccomp: the default profile, its BPF, and the filter's effect in a forked child."""

from __future__ import annotations

import errno
import os

import pytest

from runtime import _sys, seccomp
from runtime.config import resolve_caps


def test_profile_lifts_denials_with_capabilities():
    base = seccomp.default_profile(resolve_caps(), "x86_64")
    denied = set(base["syscalls"][0]["names"])
    assert {"keyctl", "bpf", "unshare", "mount", "userfaultfd", "io_uring_setup"} <= denied
    assert any(r["names"] == ["clone"] for r in base["syscalls"])
    admin = seccomp.default_profile(resolve_caps(cap_add=["SYS_ADMIN"]), "x86_64")
    assert "mount" not in admin["syscalls"][0]["names"] and "keyctl" in admin["syscalls"][0]["names"]
    assert not any(r["names"] == ["clone"] for r in admin["syscalls"])
    assert seccomp.default_profile(resolve_caps(), "riscv64") is None


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_program_shape(machine):
    prog = seccomp.compile_filter(seccomp.default_profile(resolve_caps(), machine), machine)
    assert prog[0] == (0x20, 0, 0, 4) and prog[-1] == (0x06, 0, 0, 0x7FFF0000)
    for i, (code, jt, jf, _k) in enumerate(prog):  # every jump lands inside the program
        if code & 0x07 == 0x05:
            assert i + 1 + max(jt, jf) < len(prog)


def test_unsupported_profiles_are_refused():
    with pytest.raises(ValueError):
        seccomp.compile_filter({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}, "x86_64")
    with pytest.raises(ValueError):
        seccomp.compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_LOG"}]}, "x86_64")


def _in_filtered_child(fn) -> int:
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.install(seccomp.compile_filter(seccomp.default_profile(resolve_caps())))
            code = fn()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_filter_denies_namespaces_but_not_fork():
    def probe():
        try:
            _sys.unshare(_sys.CLONE_NEWUSER)
            return 1
        except OSError as e:
            if e.errno != errno.EPERM:
                return 2
        child = os.fork()  # clone without namespace flags still works
        if child == 0:
            os._exit(7)
        return 0 if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 7 else 3
    assert _in_filtered_child(probe) == 0
