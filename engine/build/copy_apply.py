"""Apply a ``copy`` step directly to a fresh upperdir (no container needed).

What overlayfs would do on a copy-up is done by hand: a destination's parent directories that
exist below keep their metadata (mode, owner, mtime) in the upperdir, so creating
``/usr/local/bin/tool`` does not turn ``/usr`` into a 0755 root directory with today's mtime.
Symlinks in the merged view (``/bin -> usr/bin`` on merged-/usr systems) are followed inside the
root, never out of it.

Ownership defaults to ``0:0`` (like a Containerfile ``COPY``); ``owner: user[:group]`` names are
looked up in the image's ``/etc/passwd`` and ``/etc/group``. Container ids are mapped to host
ids through the executor's uid/gid maps (rootless builds).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from engine.build.copy_inputs import CopyItem
from engine.errors import BuildError

__all__ = ["apply_copy", "resolve_owner"]

_MAX_LINKS = 40


class _Merged:
    """Read-only view of upper + lowers (top first) for lookups by absolute in-root path."""

    def __init__(self, upper: Path, lowers: list[Path]):
        self.layers = [Path(upper), *map(Path, lowers)]

    def find(self, rel: str) -> Path | None:
        for layer in self.layers:
            p = layer / rel
            if os.path.lexists(p):
                st = os.lstat(p)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None  # overlay whiteout: deleted above
                return p
        return None

    def resolve(self, dest: str) -> str:
        """``dest`` with every symlinked parent followed inside the root; returns a relative path."""
        parts, done, hops = [p for p in dest.split("/") if p], [], 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                done = done[:-1]
                continue
            if name == ".":
                continue
            found = self.find("/".join(done + [name])) if parts else None
            if found is not None and os.path.islink(found):
                hops += 1
                if hops > _MAX_LINKS:
                    raise BuildError(f"copy to {dest}: too many levels of symbolic links")
                target = os.readlink(found)
                done = [] if target.startswith("/") else done
                parts = [p for p in target.split("/") if p] + parts
                continue
            done.append(name)
        return "/".join(done)


def _lookup_id(merged: _Merged, table: str, name: str) -> int:
    if name.isdigit():
        return int(name)
    path = merged.find(f"etc/{table}")
    if path is not None:
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
                return int(fields[2])
    raise BuildError(f"copy: {'user' if table == 'passwd' else 'group'} {name!r} not found in the image's /etc/{table}",
                     hint="use a numeric uid:gid or create the user in an earlier run step")


def resolve_owner(merged: _Merged, owner: str | None) -> tuple[int, int]:
    """``user[:group]`` -> (uid, gid) inside the container; None -> (0, 0)."""
    if not owner:
        return 0, 0
    user, _, group = owner.partition(":")
    uid = _lookup_id(merged, "passwd", user)
    if group:
        return uid, _lookup_id(merged, "group", group)
    if user.isdigit():
        return uid, uid
    passwd = merged.find("etc/passwd")
    for line in passwd.read_text(errors="replace").splitlines() if passwd else []:
        f = line.split(":")
        if len(f) > 3 and f[0] == user and f[3].isdigit():
            return uid, int(f[3])
    return uid, uid


def _to_host(cid: int, idmap) -> int:
    if not idmap:
        return cid
    for container_id, host_id, size in idmap:
        if container_id <= cid < container_id + size:
            return host_id + cid - container_id
    raise BuildError(f"copy: id {cid} is not mapped into the build's user namespace",
                     hint="use an owner inside the mapped range (see /etc/subuid)")


def _chown(path: Path, uid: int, gid: int) -> None:
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except PermissionError as e:
        if os.lstat(path).st_uid == uid and os.lstat(path).st_gid == gid:
            return
        raise BuildError(f"copy: chown {path} to {uid}:{gid}: permission denied",
                         hint="rootless copies can only give files to the mapped root user; "
                              "chown in a run step instead") from e


def _make_parents(merged: _Merged, upper: Path, rel: str, owner: tuple[int, int]) -> None:
    """Create the missing parents of ``rel`` in ``upper``, copying metadata from below."""
    parts = rel.split("/")[:-1]
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        target = upper / sub
        if os.path.lexists(target):
            continue
        below = merged.find(sub)
        target.mkdir()
        if below is not None and below.is_dir():
            st = os.stat(below)
            os.chmod(target, stat.S_IMODE(st.st_mode))
            _chown(target, st.st_uid, st.st_gid)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            os.chmod(target, 0o755)
            _chown(target, *owner)


def apply_copy(items: list[CopyItem], upper: Path, lowers: list[Path], owner: str | None,
               mode: int | None, executor=None) -> None:
    """Copy ``items`` into ``upper`` (an empty upperdir over ``lowers``, top first).

    Args:
        items: engine.build.copy_inputs.collect_copy result.
        upper: the step's upperdir (Path).
        lowers: layer roots below, top first (Path list).
        owner: ``user[:group]`` inside the container, or None for root.
        mode: permission bits for copied files and directories, or None to keep the source's.
        executor: gives ``uid_map``/``gid_map`` for rootless builds (None: ids unmapped).

    Raises:
        BuildError: an unknown owner, a chown not permitted, an unreadable source.
    """
    merged = _Merged(upper, lowers)
    cuid, cgid = resolve_owner(merged, owner)
    host = (_to_host(cuid, getattr(executor, "uid_map", ())), _to_host(cgid, getattr(executor, "gid_map", ())))
    root_owner = (_to_host(0, getattr(executor, "uid_map", ())), _to_host(0, getattr(executor, "gid_map", ())))
    for item in items:
        rel = merged.resolve(item.dest)
        if not rel:
            raise BuildError(f"copy {item.rel}: cannot replace the root directory")
        _make_parents(merged, upper, rel, root_owner)
        target = upper / rel
        try:
            _place(item, target, mode)
        except OSError as e:
            raise BuildError(f"copy {item.rel} to {item.dest}: {e.strerror}") from e
        _chown(target, *host)


def _place(item: CopyItem, target: Path, mode: int | None) -> None:
    if os.path.lexists(target) and not (target.is_dir() and item.kind == "dir"):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    if item.kind == "dir":
        target.mkdir(exist_ok=True)
        os.chmod(target, item.mode if mode is None else mode)
    elif item.kind == "symlink":
        os.symlink(os.readlink(item.source), target)
    else:
        shutil.copyfile(item.source, target)
        os.chmod(target, item.mode if mode is None else mode)
