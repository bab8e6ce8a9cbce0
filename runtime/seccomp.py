"""A default seccomp filter (OCI ``linux.seccomp``) and a small compiler from that JSON to BPF.

The profile follows the spirit of Docker/moby's default: the process may use every syscall
except those that reach kernel state not isolated by namespaces (keyrings, BPF, perf, kexec,
modules, userfaultfd, io_uring, the mount API) or that create namespaces — each returns EPERM
unless the capability that Docker ties it to was added with ``cap_add`` (e.g. ``SYS_ADMIN``
gives mount/unshare/setns back). Docker allow-lists instead; a deny-list keeps this file short
and new harmless syscalls working. Foreign-architecture (i386 via int 0x80) and x32 syscalls
get ENOSYS so the numbers below cannot be side-stepped.

The compiler supports what this profile uses: ``defaultAction`` SCMP_ACT_ALLOW, rules with
SCMP_ACT_ERRNO, and ``SCMP_CMP_MASKED_EQ`` argument tests where value == valueTwo (a flag bit is
set). runc/crun compile the same JSON with libseccomp, so ``envctl bundle`` stays portable.
"""

from __future__ import annotations

import errno
import os
import struct

__all__ = ["default_profile", "compile_filter", "install", "DENIED"]

# syscall -> capability that lifts the denial (None: always denied)
DENIED = {
    "acct": "CAP_SYS_PACCT", "add_key": None, "bpf": "CAP_SYS_ADMIN", "clock_adjtime": "CAP_SYS_TIME",
    "clock_settime": "CAP_SYS_TIME", "settimeofday": "CAP_SYS_TIME", "create_module": "CAP_SYS_MODULE",
    "delete_module": "CAP_SYS_MODULE", "finit_module": "CAP_SYS_MODULE", "init_module": "CAP_SYS_MODULE",
    "get_kernel_syms": None, "query_module": None, "fsconfig": "CAP_SYS_ADMIN", "fsmount": "CAP_SYS_ADMIN",
    "fsopen": "CAP_SYS_ADMIN", "fspick": "CAP_SYS_ADMIN", "move_mount": "CAP_SYS_ADMIN",
    "open_tree": "CAP_SYS_ADMIN", "mount_setattr": "CAP_SYS_ADMIN", "mount": "CAP_SYS_ADMIN",
    "umount2": "CAP_SYS_ADMIN", "pivot_root": "CAP_SYS_ADMIN", "setns": "CAP_SYS_ADMIN",
    "unshare": "CAP_SYS_ADMIN", "quotactl": "CAP_SYS_ADMIN", "quotactl_fd": "CAP_SYS_ADMIN",
    "io_uring_enter": None, "io_uring_register": None, "io_uring_setup": None, "ioperm": "CAP_SYS_RAWIO",
    "iopl": "CAP_SYS_RAWIO", "kcmp": "CAP_SYS_PTRACE", "kexec_file_load": "CAP_SYS_BOOT",
    "kexec_load": "CAP_SYS_BOOT", "reboot": "CAP_SYS_BOOT", "keyctl": None, "request_key": None,
    "lookup_dcookie": "CAP_SYS_ADMIN", "move_pages": "CAP_SYS_NICE", "nfsservctl": None,
    "open_by_handle_at": "CAP_DAC_READ_SEARCH", "perf_event_open": "CAP_SYS_ADMIN",
    "swapoff": "CAP_SYS_ADMIN", "swapon": "CAP_SYS_ADMIN", "sysfs": None, "_sysctl": None,
    "syslog": "CAP_SYSLOG", "uselib": None, "userfaultfd": None, "ustat": None,
}
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone() may not create namespaces
NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

# from <asm/unistd_64.h> and <asm-generic/unistd.h> (Linux 6.1 headers)
_NR = {
    "x86_64": {"_sysctl": 156, "acct": 163, "add_key": 248, "bpf": 321, "clock_adjtime": 305,
               "clock_settime": 227, "clone": 56, "clone3": 435, "create_module": 174, "delete_module": 176,
               "finit_module": 313, "fsconfig": 431, "fsmount": 432, "fsopen": 430, "fspick": 433,
               "get_kernel_syms": 177, "init_module": 175, "io_uring_enter": 426, "io_uring_register": 427,
               "io_uring_setup": 425, "ioperm": 173, "iopl": 172, "kcmp": 312, "kexec_file_load": 320,
               "kexec_load": 246, "keyctl": 250, "lookup_dcookie": 212, "mount": 165, "mount_setattr": 442,
               "move_mount": 429, "move_pages": 279, "nfsservctl": 180, "open_by_handle_at": 304,
               "open_tree": 428, "perf_event_open": 298, "pivot_root": 155, "query_module": 178,
               "quotactl": 179, "quotactl_fd": 443, "reboot": 169, "request_key": 249, "setns": 308,
               "settimeofday": 164, "swapoff": 168, "swapon": 167, "sysfs": 139, "syslog": 103,
               "umount2": 166, "unshare": 272, "uselib": 134, "userfaultfd": 323, "ustat": 136},
    "aarch64": {"acct": 89, "add_key": 217, "bpf": 280, "clock_adjtime": 266, "clock_settime": 112,
                "clone": 220, "clone3": 435, "delete_module": 106, "finit_module": 273, "fsconfig": 431,
                "fsmount": 432, "fsopen": 430, "fspick": 433, "init_module": 105, "io_uring_enter": 426,
                "io_uring_register": 427, "io_uring_setup": 425, "kcmp": 272, "kexec_file_load": 294,
                "kexec_load": 104, "keyctl": 219, "lookup_dcookie": 18, "mount": 40, "mount_setattr": 442,
                "move_mount": 429, "move_pages": 239, "nfsservctl": 42, "open_by_handle_at": 265,
                "open_tree": 428, "perf_event_open": 241, "pivot_root": 41, "quotactl": 60,
                "quotactl_fd": 443, "reboot": 142, "request_key": 218, "setns": 268, "settimeofday": 170,
                "swapoff": 225, "swapon": 224, "syslog": 116, "umount2": 39, "unshare": 97, "userfaultfd": 282},
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SCMP_ARCH = {"x86_64": ["SCMP_ARCH_X86_64"], "aarch64": ["SCMP_ARCH_AARCH64"]}
_X32_BIT = 0x40000000

# classic BPF opcodes and seccomp return values (<linux/filter.h>, <linux/seccomp.h>)
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000


def _machine() -> str:
    return os.uname().machine


def default_profile(caps, machine: str | None = None) -> dict | None:
    """OCI ``linux.seccomp`` for a process with capability names ``caps``; None on an
    architecture without a syscall table here (no filter rather than a wrong one)."""
    machine = machine or _machine()
    nrs = _NR.get(machine)
    if nrs is None:
        return None
    caps = set(caps)
    names = sorted(n for n, cap in DENIED.items() if n in nrs and (cap is None or cap not in caps))
    rules = [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}]
    if "CAP_SYS_ADMIN" not in caps:
        # glibc falls back from clone3 (whose flags a filter cannot read) to clone on ENOSYS
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
        rules += [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM,
                   "args": [{"index": 0, "value": f, "valueTwo": f, "op": "SCMP_CMP_MASKED_EQ"}]}
                  for f in NS_FLAGS]
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": _SCMP_ARCH[machine], "syscalls": rules}


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k & 0xFFFFFFFF)


def compile_filter(profile: dict, machine: str | None = None) -> list[tuple[int, int, int, int]]:
    """BPF program (list of (code, jt, jf, k)) for ``profile``. Raises ValueError on an unsupported
    construct or architecture."""
    machine = machine or _machine()
    if profile.get("defaultAction") != "SCMP_ACT_ALLOW" or machine not in _NR:
        raise ValueError(f"unsupported seccomp profile (default {profile.get('defaultAction')}, {machine})")
    nrs = _NR[machine]
    enosys = _ins(_RET, _RET_ERRNO | errno.ENOSYS)
    prog = [_ins(_LD_ABS, 4), _ins(_JEQ, _AUDIT_ARCH[machine], jt=1), enosys, _ins(_LD_ABS, 0)]
    if machine == "x86_64":
        prog += [_ins(_JGE, _X32_BIT, jf=1), enosys]
    for rule in profile.get("syscalls", ()):
        if rule.get("action") != "SCMP_ACT_ERRNO":
            raise ValueError(f"unsupported seccomp action {rule.get('action')}")
        ret = _ins(_RET, _RET_ERRNO | int(rule.get("errnoRet", errno.EPERM)))
        for name in rule["names"]:
            if name not in nrs:
                continue
            prog += _rule_block(nrs[name], rule.get("args") or (), ret)
    prog.append(_ins(_RET, _RET_ALLOW))
    return prog


def _rule_block(nr: int, args, ret) -> list:
    if not args:
        return [_ins(_JEQ, nr, jf=1), ret]
    body = []
    for a in args:
        if a.get("op") != "SCMP_CMP_MASKED_EQ" or a.get("value") != a.get("valueTwo") or a["value"] >> 32:
            raise ValueError(f"unsupported seccomp argument rule {a}")
        body += [_ins(_LD_ABS, 16 + 8 * int(a["index"])), _ins(_JSET, a["value"], jf=1), ret]
    body.append(_ins(_LD_ABS, 0))  # reload the syscall number for the rules that follow
    return [_ins(_JEQ, nr, jf=len(body)), *body]


def install(prog) -> None:
    """Load ``prog`` for this thread (needs no_new_privs or CAP_SYS_ADMIN). Raises OSError."""
    from runtime import _sys

    _sys.seccomp_set_filter(b"".join(struct.pack("=HBBI", *ins) for ins in prog))
