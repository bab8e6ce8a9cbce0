"""Root filesystem drivers: an overlay mount plan over the layer chain, or a flattened copy.

``overlay`` (default where the kernel has overlayfs): the engine only plans — lowerdirs (top
first: layers/<chainID>/root), a per-environment ``upper/`` and ``work/`` under ``envs/<id>/``,
``merged/``, and ``userxattr`` when rootless; the runtime mounts it inside the container's mount
namespace (CONTRACTS.md). The mount data must fit in one page (4096 bytes) — 76 characters per
layer relative to the store would allow ~50 layers, so long chains are planned through short
symlinks ``envs/<id>/l/<n>`` (containers/storage's ``l/`` trick; overlayfs follows them when it
resolves lowerdir paths), which with the runtime's common-base relative paths allows the
kernel's own limit of 500 layers.

``copy`` (no overlayfs, or ``ENVCTL_STORAGE_DRIVER=copy``): the layers are applied bottom-up into
``envs/<id>/rootfs/`` (whiteouts delete, opaque dirs clear), cloning file data with ``FICLONE``
where the filesystem can (btrfs, xfs) and ``copy_file_range`` otherwise.

Both keep the user's changes (upper/ or rootfs/) while the layer chain is unchanged; when the
locked layers change they are reset with a notice, and :func:`reset_env` resets on demand
(``envctl down --reset``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Callable

from engine.layers.confine import is_opaque
from engine.errors import StoreError
from engine.store.cas import Store
from engine.store.envs import env_dir, env_in_use
from engine.store.fsutil import remove_tree
from engine.layers.unpack import OPAQUE_ROOT, OPAQUE_ROOTLESS
from specs.digest import Digest

__all__ = ["detect_driver", "compose", "reset_env", "env_dir", "needs_reset", "env_in_use", "MAX_MOUNT_DATA"]

MAX_MOUNT_DATA = 4095
FICLONE = 0x40049409
DRIVERS = ("overlay", "copy")


def detect_driver() -> str:
    """``ENVCTL_STORAGE_DRIVER`` when set, else ``overlay`` if the kernel lists it, else ``copy``.

    Raises StoreError for an unknown driver name.
    """
    forced = os.environ.get("ENVCTL_STORAGE_DRIVER")
    if forced:
        if forced not in DRIVERS:
            raise StoreError(f"ENVCTL_STORAGE_DRIVER={forced}: unknown storage driver",
                             hint="use 'overlay' or 'copy'")
        return forced
    try:
        with open("/proc/filesystems") as f:
            if any(line.split()[-1:] == ["overlay"] for line in f):
                return "overlay"
    except OSError:
        pass
    return "copy"


def _state(d: Path) -> dict:
    try:
        return json.loads((d / "layers.json").read_text())
    except (OSError, ValueError):
        return {}


def _want(driver: str, chain: list[Digest], lowerdirs) -> dict:
    want = {"driver": driver, "chainIDs": [str(c) for c in chain]}
    # layers/<hex>.<key>: unpacked under a subordinate-id mapping (engine/store/idmap.py); an upper made
    # under one mapping shows wrong owners under another, so a change of mapping resets it too
    keys = sorted({Path(p).parent.name.partition(".")[2] for p in lowerdirs or ()} - {""})
    if keys:
        want["idMap"] = keys[0]
    return want


def needs_reset(store: Store, env_id: str, chain: list[Digest], driver: str, lowerdirs=None) -> bool:
    """True when the environment exists with another layer chain (or driver, or ID mapping of
    ``lowerdirs`` when given) than ``chain``."""
    old = _state(env_dir(store, env_id))
    want = _want(driver, chain, lowerdirs)
    if lowerdirs is None:
        old = {k: v for k, v in old.items() if k != "idMap"}
    return bool(old) and old != want


def compose(store: Store, env_id: str, lowerdirs: list[Path], chain: list[Digest], *,
            driver: str | None = None, rootless: bool | None = None,
            notice: Callable[[str], None] = lambda m: None) -> tuple[dict, bool]:
    """Prepare the environment's root filesystem; caller holds ``store.env_lock(env_id)``.

    Args:
        lowerdirs: layer roots, top first (engine.layers.pull.PullReport.lowerdirs).
        chain: the chainIDs, bottom first (recorded to detect a changed lock).

    Returns:
        (rootfs dict for env.json — the overlay plan or ``{"driver": "copy", "path": ...}``,
        reset: True when earlier changes were discarded because the layers changed).
    """
    driver = driver or detect_driver()
    rootless = os.geteuid() != 0 if rootless is None else rootless
    d = env_dir(store, env_id)
    d.mkdir(parents=True, exist_ok=True)
    want = _want(driver, chain, lowerdirs)
    old = _state(d)
    reset = bool(old) and old != want
    if reset:
        notice("the environment's layers changed: its changes to the root filesystem were reset")
        _reset_dirs(d)
    if driver == "overlay":
        plan = _overlay(d, lowerdirs, rootless)
    elif rootless and "idMap" in want and store.idmap is not None:
        # subordinate-id layers (engine/store/idmap.py): copy them as root of the standard namespace,
        # where their owners are container ids that a real chown keeps (keep-id copies included)
        from engine.store.userns import call_in_userns

        plan = call_in_userns(_copy, (d, [Path(p) for p in lowerdirs], False, reset or not old),
                              store.idmap.uid, store.idmap.gid, f"copy the root filesystem of {env_id}")
    else:
        plan = _copy(d, lowerdirs, rootless, fresh=reset or not old)
    (d / "layers.json").write_text(json.dumps(want, indent=2) + "\n")
    return plan, reset


def reset_env(store: Store, env_id: str) -> None:
    """Discard the environment's changes (upper/work or the copied rootfs); next ``up`` recreates."""
    d = env_dir(store, env_id)
    _reset_dirs(d)
    (d / "layers.json").unlink(missing_ok=True)


def _reset_dirs(d: Path) -> None:
    from engine.store.userns import remove_tree_rootless  # rootless uppers hold subordinate-id files

    for name in ("upper", "work", "rootfs", "l"):
        remove_tree_rootless(d / name)


def _overlay(d: Path, lowerdirs: list[Path], rootless: bool) -> dict:
    for name in ("upper", "work", "merged"):
        (d / name).mkdir(exist_ok=True)
    lowers = [str(p) for p in lowerdirs]
    if len(":".join(lowers)) + 3 * len(str(d)) + 64 > MAX_MOUNT_DATA:
        lowers = _short_links(d, lowerdirs)
    return {"driver": "overlay", "lowerdirs": lowers, "upperdir": str(d / "upper"),
            "workdir": str(d / "work"), "merged": str(d / "merged"), "userxattr": rootless}


def _short_links(d: Path, lowerdirs: list[Path]) -> list[str]:
    links = d / "l"
    remove_tree(links)
    links.mkdir()
    out = []
    for i, p in enumerate(lowerdirs):
        name = format(i, "x")
        os.symlink(os.path.relpath(p, links), links / name)
        out.append(str(links / name))
    return out


# ---- copy driver -------------------------------------------------------------------------------

def _copy(d: Path, lowerdirs: list[Path], rootless: bool, fresh: bool) -> dict:
    target = d / "rootfs"
    if fresh or not target.exists():
        tmp = d / "rootfs.tmp"
        remove_tree(tmp)
        tmp.mkdir()
        dirmeta: dict[str, tuple[int, int]] = {}
        for layer in reversed(lowerdirs):  # bottom first
            _apply_layer(Path(layer), tmp, rootless, dirmeta)
        _dir_meta(tmp, dirmeta)
        remove_tree(target)
        os.rename(tmp, target)
    return {"driver": "copy", "path": str(target)}


def _apply_layer(src: Path, dst: Path, rootless: bool, dirmeta: dict) -> None:
    """Apply one overlay-form layer directory onto ``dst`` (whiteouts delete, opaque clears)."""
    links: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        out_dir = dst if rel == "." else dst / rel
        if rel != "." and is_opaque(dirpath):
            for child in list(out_dir.iterdir()) if out_dir.is_dir() else []:
                remove_tree(child)
        for name in sorted(dirnames) + sorted(filenames):
            s, t = os.path.join(dirpath, name), out_dir / name
            st = os.lstat(s)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                remove_tree(t)
                continue
            if stat.S_ISDIR(st.st_mode):
                if os.path.lexists(t) and not (t.is_dir() and not t.is_symlink()):
                    remove_tree(t)
                t.mkdir(exist_ok=True)
            else:
                remove_tree(t)
                _copy_entry(s, t, st, links)
            _meta(s, t, st, rootless)
            if stat.S_ISDIR(st.st_mode):
                dirmeta[os.path.relpath(t, dst)] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    root_st = os.lstat(src)
    dirmeta["."] = (stat.S_IMODE(root_st.st_mode), root_st.st_mtime_ns)


def _copy_entry(s: str, t: Path, st: os.stat_result, links: dict) -> None:
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(s), t)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            os.link(links[key], t)
            return
        _clone_file(s, t)
        links[key] = str(t)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(t, 0o600)
    else:
        os.mknod(t, st.st_mode, st.st_rdev)


def _clone_file(s: str, t: Path) -> None:
    with open(s, "rb") as fs, open(t, "wb") as ft:
        try:
            fcntl.ioctl(ft.fileno(), FICLONE, fs.fileno())
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
                raise
        remaining = os.fstat(fs.fileno()).st_size
        while remaining > 0:
            n = os.copy_file_range(fs.fileno(), ft.fileno(), remaining)
            if n == 0:
                break
            remaining -= n


def _meta(s: str, t: Path, st: os.stat_result, rootless: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        if not rootless:
            os.chown(t, st.st_uid, st.st_gid, follow_symlinks=False)
        os.utime(t, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    for x in os.listxattr(s, follow_symlinks=False):
        if x in OPAQUE_ROOT + OPAQUE_ROOTLESS:
            continue
        try:
            os.setxattr(t, x, os.getxattr(s, x, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            pass
    if not rootless:
        os.chown(t, st.st_uid, st.st_gid, follow_symlinks=False)
    # directories stay writable until _dir_times (later layers write into them)
    os.chmod(t, stat.S_IMODE(st.st_mode) | (0o700 if stat.S_ISDIR(st.st_mode) else 0))
    os.utime(t, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _dir_meta(dst: Path, dirmeta: dict) -> None:
    """Final directory modes and mtimes, deepest first, once every layer is applied."""
    for rel in sorted(dirmeta, key=lambda r: r.count("/") + (0 if r == "." else 1), reverse=True):
        t = dst if rel == "." else dst / rel
        if t.is_dir() and not t.is_symlink():
            mode, mtime = dirmeta[rel]
            os.chmod(t, mode)
            os.utime(t, ns=(mtime, mtime))
