"""Rootless ID mappings of layer directories: real owners under the user's subordinate ids.

Unprivileged, the unpacker (engine/layers/unpack.py) cannot chown: every file becomes the user's and the
image owner is kept in ``user.rootlesscontainers`` (umoci's rootless mode). When the user has a
/etc/subuid and /etc/subgid range and newuidmap/newgidmap exist, :func:`apply_owners` then runs
once per layer inside a user namespace with the runtime's standard rootless mapping (container 0
-> the user, 1..N -> the subordinate range; runtime.config.id_mappings with inside=0) and chowns
each entry to the owner recorded in that xattr, so inside an environment ``_apt``'s files are
``_apt``'s. Such a layer only makes sense under that one mapping: its directory is
``layers/<chainID hex>.<mapping key>`` and its layer.json records ``idMap`` (Store.layer_dir,
Store.has_layer). Root's layers and the fallback's stay ``layers/<chainID hex>``, so a store used
first with the fallback and later with subuids (or the reverse) never mixes the two.

keep-id (``user: NAME|UID``, runtime.config maps that uid to the user) is another mapping, so it
gets its own copy of every lower layer: :func:`present_layers` copies each standard-mapping layer
into ``layers/<hex>.<keep-id key>`` translating owners (podman's storage chowns per-mapping layer
copies the same way; idmapped mounts are not available to unprivileged users on ext4).

``ENVCTL_SUBIDS=0`` disables the subordinate-id path (the umoci-style fallback is used).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IdMap", "standard_mapping", "from_oci", "apply_owners", "present_layers", "translate"]

ROOTLESS_XATTR = "user.rootlesscontainers"
Triple = tuple[int, int, int]


@dataclass(frozen=True)
class IdMap:
    """uid and gid mappings, each a tuple of (containerID, hostID, size) triples."""

    uid: tuple[Triple, ...]
    gid: tuple[Triple, ...]

    def key(self) -> str:
        """12 hex chars naming this mapping in layer directory names."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]

    def to_json(self) -> dict:
        """OCI runtime spec form (config-linux.md: user namespace mappings) as a dict:
        ``{"uidMappings": [[containerID, hostID, size], ...], "gidMappings": [...]}``.
        """
        return {"uidMappings": [list(m) for m in self.uid], "gidMappings": [list(m) for m in self.gid]}


def from_oci(uid_maps, gid_maps) -> IdMap:
    """IdMap from OCI config ``linux.uidMappings``/``gidMappings`` lists of dicts."""
    conv = lambda ms: tuple((int(m["containerID"]), int(m["hostID"]), int(m["size"])) for m in ms)  # noqa: E731
    return IdMap(conv(uid_maps), conv(gid_maps))


def standard_mapping() -> IdMap | None:
    """The invoking user's standard rootless mapping, or None (root, no subids, no helpers, disabled).

    None means: layers are unpacked the umoci way (root: real owners; rootless: the user's own).
    """
    if os.geteuid() == 0 or os.environ.get("ENVCTL_SUBIDS", "").lower() in ("0", "no", "false", "off"):
        return None
    if not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        return None
    from engine.store.userns import own_mapping

    m = own_mapping()
    return IdMap(tuple(m[0]), tuple(m[1])) if m else None


def _decode_owner(raw: bytes) -> tuple[int, int]:
    """uid, gid of a ``user.rootlesscontainers`` protobuf (missing fields are 0)."""
    vals, i = {1: 0, 2: 0}, 0
    while i < len(raw):
        tag = raw[i]
        i += 1
        n = shift = 0
        while i < len(raw):
            b = raw[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if tag & 7 == 0:
            vals[tag >> 3] = n
    return vals[1], vals[2]


def apply_owners(root: str, link_owners: dict | None = None) -> str:
    """Chown every entry under ``root`` to its recorded owner; run inside the mapped namespace.

    Entries without the xattr (symlinks, whiteouts, owner 0:0) get ``link_owners[relpath]`` or 0:0.
    setuid/setgid bits are restored after chown (chown clears them), the xattr is removed.
    Returns the layer's tree digest as seen in the namespace (container ids; engine.layers.snapshots).
    """
    from engine.store.layer_dirs import tree_digest

    link_owners = link_owners or {}
    stack = [""]
    while stack:
        rel = stack.pop()
        path = os.path.join(root, rel) if rel else root
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            uid, gid = link_owners.get(rel, (0, 0))
            os.chown(path, uid, gid, follow_symlinks=False)
            continue
        try:
            uid, gid = _decode_owner(os.getxattr(path, ROOTLESS_XATTR, follow_symlinks=False))
            os.removexattr(path, ROOTLESS_XATTR, follow_symlinks=False)
        except OSError:
            uid, gid = link_owners.get(rel, (0, 0))
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISDIR(st.st_mode):
                os.chmod(path, stat.S_IMODE(st.st_mode))
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(path) as it:
                stack.extend(os.path.join(rel, e.name) if rel else e.name for e in it)
    return tree_digest(Path(root))


def _to_host(maps, cid: int) -> int | None:
    for c, h, n in maps:
        if c <= cid < c + n:
            return h + cid - c
    return None


def _to_container(maps, hid: int) -> int | None:
    for c, h, n in maps:
        if h <= hid < h + n:
            return c + hid - h
    return None


def translate(src: IdMap, dst: IdMap, kind: str, cid: int) -> int:
    """The id, as seen under ``src``, that shows as ``cid`` under ``dst`` (65534 when unmapped)."""
    host = _to_host(dst.uid if kind == "uid" else dst.gid, cid)
    out = None if host is None else _to_container(src.uid if kind == "uid" else src.gid, host)
    return 65534 if out is None else out


def _copy_translated(src_root: str, dst_root: str, src: IdMap, dst: IdMap) -> str:
    """Copy a layer tree (inside ``src``'s namespace) so that under ``dst`` it shows the same owners."""
    from engine.store.layer_dirs import tree_digest

    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel = os.path.relpath(dirpath, src_root)
        out = dst_root if rel == "." else os.path.join(dst_root, rel)
        st = os.lstat(dirpath)
        if rel != ".":
            os.mkdir(out, 0o700)
        _copy_xattrs(dirpath, out)
        dirs.append((out, st))
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            _copy_entry(os.path.join(dirpath, name), os.path.join(out, name), src, dst, links)
    for out, st in reversed(dirs):  # modes and times last: writing children changes them
        _owner_mode_time(out, st, src, dst)
    return tree_digest(Path(dst_root))


def _copy_entry(s: str, t: str, src: IdMap, dst: IdMap, links: dict) -> None:
    st = os.lstat(s)
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) in links:
        os.link(links[(st.st_dev, st.st_ino)], t)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(s), t)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(s, t, follow_symlinks=False)
        _copy_xattrs(s, t)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(t)
    else:  # whiteouts (0/0 character devices)
        os.mknod(t, st.st_mode, st.st_rdev)
    if st.st_nlink > 1:
        links[(st.st_dev, st.st_ino)] = t
    _owner_mode_time(t, st, src, dst)


def _copy_xattrs(s: str, t: str) -> None:
    for x in os.listxattr(s, follow_symlinks=False):
        os.setxattr(t, x, os.getxattr(s, x, follow_symlinks=False), follow_symlinks=False)


def _owner_mode_time(t: str, st: os.stat_result, src: IdMap, dst: IdMap) -> None:
    os.chown(t, translate(src, dst, "uid", st.st_uid), translate(src, dst, "gid", st.st_gid),
             follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(t, stat.S_IMODE(st.st_mode))
    os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def present_layers(store, chain: list, target: IdMap) -> list[Path]:
    """Lower layer roots (top first) that show their image owners under ``target`` (keep-id).

    ``chain`` (bottom first) must be complete in ``store`` under the standard mapping; a missing
    ``layers/<hex>.<target key>`` copy is made from it inside the standard namespace.

    Raises:
        BuildError: the user namespace could not be set up or the copy failed.
    """
    from engine.store.layer_dirs import read_layer_meta
    from engine.store.fsutil import fsync_dir
    from engine.store.userns import call_in_userns, remove_tree_rootless

    std = store.idmap
    view = store.with_idmap(target)
    for c in chain:
        if view.has_layer(c):
            continue
        with store.layer_lock(c):
            if view.has_layer(c):
                continue
            tmp = store.new_tmp_dir(f"idmap-{c.hex[:16]}")
            try:
                (tmp / "root").mkdir()
                tree = call_in_userns(_copy_translated, (str(store.layer_root(c)), str(tmp / "root"), std, target),
                                      std.uid, std.gid, f"copy layer {c.short()} for id mapping {target.key()}")
                meta = dict(read_layer_meta(store, c), treeDigest=tree, idMap=target.key(),
                            idMappings=target.to_json(), treeIdMappings=std.to_json())
                (tmp / "layer.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
                final = view.layer_dir(c)
                if final.exists():
                    remove_tree_rootless(final)
                os.rename(tmp, final)
                fsync_dir(store.layers)
            except BaseException:
                remove_tree_rootless(tmp)
                raise
    return [view.layer_root(c) for c in reversed(chain)]
