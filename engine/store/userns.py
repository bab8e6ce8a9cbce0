"""Run a function inside a user namespace with the build's id mappings (rootless builds only).

A rootless ``run`` step leaves files owned by the user's subordinate ids (``_apt``'s 0700
``/var/cache/apt/archives/partial``): the unprivileged user can neither read nor delete them on
the host. Inside a user namespace with the same mappings, its process is root over exactly those
ids (CAP_DAC_OVERRIDE/READ_SEARCH in the namespace, user_namespaces(7)), like podman's
``unshare``. The child is forked, unshares CLONE_NEWUSER, waits while the parent writes the maps
with newuidmap/newgidmap (setuid helpers that check /etc/subuid), becomes uid 0, runs the
function and sends its pickled result back through a pipe. Inside, stat() shows container ids
directly, so no mapping back is needed there.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import traceback
from typing import Callable

from engine.errors import BuildError

__all__ = ["call_in_userns", "needs_userns", "own_mapping", "remove_tree_rootless"]


def needs_userns(uid_map) -> bool:
    """True when ids other than our own are mapped and we are not real root."""
    if os.geteuid() == 0 or not uid_map:
        return False
    return any(size > 1 or host != os.geteuid() for _c, host, size in uid_map)


def _write_maps(pid: int, uid_map, gid_map) -> None:
    for tool, maps in (("newgidmap", gid_map), ("newuidmap", uid_map)):
        exe = shutil.which(tool)
        if exe is None:
            raise BuildError(f"rootless build: {tool} not found", hint="install the uidmap package")
        argv = [exe, str(pid)] + [str(v) for m in maps for v in m]
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != 0:
            raise BuildError(f"rootless build: {tool} {pid}: {p.stderr.strip() or p.returncode}",
                             hint="check /etc/subuid and /etc/subgid for your user")


def _child(ready_w: int, go_r: int, out_w: int, func, args) -> None:
    from runtime import _sys

    try:
        _sys.unshare(_sys.CLONE_NEWUSER)
        os.write(ready_w, b"1")
        if os.read(go_r, 1) != b"1":
            os._exit(3)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        result = ("ok", func(*args))
    except BaseException as e:  # crossing a fork: send the error text back
        result = ("err", f"{type(e).__name__}: {e}", getattr(e, "message", None),
                  traceback.format_exc() if os.environ.get("ENVCTL_DEBUG") == "1" else "")
    data = pickle.dumps(result)
    view = memoryview(data)
    while view:
        view = view[os.write(out_w, view):]
    os._exit(0)


def call_in_userns(func: Callable, args: tuple, uid_map, gid_map, what: str):
    """``func(*args)`` run as root of a new user namespace mapped by ``uid_map``/``gid_map``.

    Args:
        func: a module-level function (its result must pickle).
        uid_map, gid_map: OCI mappings (containerID, hostID, size), as the build container used.
        what: the operation, for error messages.

    Raises:
        BuildError: the namespace could not be set up, or ``func`` raised (its message kept).
    """
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(ready_r), os.close(go_w), os.close(out_r)
        _child(ready_w, go_r, out_w, func, args)
    os.close(ready_w), os.close(go_r), os.close(out_w)
    try:
        if os.read(ready_r, 1) != b"1":
            raise BuildError(f"{what}: could not create a user namespace",
                             hint="run 'envctl doctor' (unprivileged user namespaces must be enabled)")
        _write_maps(pid, uid_map, gid_map)
        os.write(go_w, b"1")
        chunks = []
        while block := os.read(out_r, 1 << 16):
            chunks.append(block)
    finally:
        for fd in (ready_r, go_w, out_r):
            os.close(fd)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        raise BuildError(f"{what}: helper process failed (wait status {status})")
    result = pickle.loads(b"".join(chunks))
    if result[0] == "ok":
        return result[1]
    raise BuildError(f"{what}: {result[2] or result[1]}" + (f"\n{result[3]}" if result[3] else ""))


def own_mapping() -> tuple[tuple, tuple] | None:
    """The invoking user's rootless mapping as the runtime builds it for root containers:
    ``((0, uid, 1), (1, subuid_start, count))`` (same for gids), or None without /etc/subuid."""
    import pwd

    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    maps = []
    for kind, me in (("uid", uid), ("gid", gid)):
        try:
            lines = open(f"/etc/sub{kind}").read().splitlines()
        except OSError:
            return None
        for line in lines:
            f = line.strip().split(":")
            if len(f) == 3 and f[0] in (name, str(uid)) and f[1].isdigit() and f[2].isdigit():
                maps.append(((0, me, 1), (1, int(f[1]), int(f[2]))))
                break
        else:
            return None
    return maps[0], maps[1]


def remove_tree_rootless(path) -> None:
    """Remove ``path`` even when a rootless build left subordinate-id files in it.

    Tries engine.store.fsutil.remove_tree first; on a permission error as a non-root user, removes it
    again inside a user namespace mapping the user's /etc/subuid range (where those files are
    ours). For gc, env resets and verify scratch stores.

    Raises:
        PermissionError: still not removable (no subordinate ids configured).
        BuildError: the user namespace could not be set up.
    """
    from engine.store.fsutil import remove_tree

    try:
        remove_tree(path)
    except PermissionError:
        mapping = own_mapping() if os.geteuid() != 0 else None
        if mapping is None:
            raise
        call_in_userns(remove_tree, (path,), mapping[0], mapping[1], f"remove {path}")


__all__ += ["own_mapping", "remove_tree_rootless"]
