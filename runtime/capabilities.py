"""Capability sets and no_new_privs for the container process (issue 5 "Security").

Order matters (runc libcontainer/init_linux.go ``finalizeNamespace``): drop the bounding set
while we still hold CAP_SETPCAP, keep permitted caps across setuid (``PR_SET_KEEPCAPS`` via
securebits is not needed because ``capset`` runs after the uid switch), set
effective/permitted/inheritable, clear ambient, then ``PR_SET_NO_NEW_PRIVS``.
"""

from __future__ import annotations

import os

from runtime import _sys
from runtime.errors import SyscallError

__all__ = ["mask_of", "drop_bounding", "apply_capabilities", "switch_user"]

PR_SET_KEEPCAPS = 8


def mask_of(names) -> int:
    """64-bit mask of capability names (``CAP_*``; unknown to this kernel are skipped)."""
    last = _sys.cap_last()
    m = 0
    for n in names:
        c = _sys.cap_number(n)
        if c <= last:
            m |= 1 << c
    return m


def drop_bounding(names) -> None:
    """Drop every capability not in ``names`` from the bounding set (needs CAP_SETPCAP: call
    before switching to a non-root user). Raises SyscallError."""
    try:
        _drop_bounding(mask_of(names))
    except _sys.SysError as e:
        raise SyscallError.from_os_error(e) from None


def _drop_bounding(keep: int) -> None:
    for c in range(_sys.cap_last() + 1):
        if not keep & (1 << c) and _sys.prctl(_sys.PR_CAPBSET_READ, c):
            _sys.prctl(_sys.PR_CAPBSET_DROP, c, what=f"PR_CAPBSET_DROP {_sys.CAPS[c]}")


def switch_user(uid: int, gid: int, additional_gids=(), set_groups: bool = True) -> None:
    """setgroups/setgid/setuid keeping permitted capabilities (``PR_SET_KEEPCAPS``).

    ``set_groups`` is False in a user namespace where setgroups is denied (single mapping).
    Raises SyscallError.
    """
    try:
        _sys.prctl(PR_SET_KEEPCAPS, 1, what="PR_SET_KEEPCAPS")
        if set_groups:
            os.setgroups(list(additional_gids))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise SyscallError("setuid", f"{uid}:{gid}", e.errno or 0,
                           hint="the user's id is not mapped in the environment's user namespace") from None


def apply_capabilities(caps: dict, *, no_new_privs: bool = True) -> None:
    """Set effective/permitted/inheritable/ambient from OCI ``process.capabilities`` and
    no_new_privs; the bounding set is dropped earlier by ``drop_bounding``.

    Raises SyscallError.
    """
    try:
        eff, prm, inh = (mask_of(caps.get(k, ())) for k in ("effective", "permitted", "inheritable"))
        _sys.capset(eff & prm, prm, inh)
        _sys.prctl(_sys.PR_CAP_AMBIENT, _sys.PR_CAP_AMBIENT_CLEAR_ALL, what="PR_CAP_AMBIENT")
        for c in caps.get("ambient", ()):
            _sys.prctl(_sys.PR_CAP_AMBIENT, _sys.PR_CAP_AMBIENT_RAISE, _sys.cap_number(c), what="ambient")
        if no_new_privs:
            _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1, what="PR_SET_NO_NEW_PRIVS")
    except _sys.SysError as e:
        raise SyscallError.from_os_error(e) from None
