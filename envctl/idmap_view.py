"""Which layer copies an environment's overlay uses: the store's, or keep-id copies (engine/store/idmap.py).

Rootless with subordinate ids, layers are unpacked under the runtime's standard mapping (container
0 -> the user, 1..N -> /etc/subuid). An environment whose process user is not root (the spec's
``user:`` or the image's ``User``) gets runtime.config's keep-id mapping instead (that uid -> the
user, so files it creates in the project are the user's on the host); under that mapping the
standard layers would show wrong owners, so it gets per-mapping copies (engine.store.idmap.present_layers).
Build steps keep running under the standard mapping (envctl/executor.py): their layers are
written in the same form as the unpacked ones and are presented the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["runtime_idmap", "present_lowerdirs", "own_upper_root"]


def runtime_idmap(store, user: str | None, rootfs: dict):
    """The engine.store.idmap.IdMap the runtime will use for ``user`` (None: root/no subids/no user)."""
    std = store.idmap
    if os.geteuid() == 0 or std is None or not user:
        return None
    from engine.store.idmap import from_oci
    from runtime.config import id_mappings, lookup_user

    try:
        uid, gid, _name, _home = lookup_user(rootfs, user)
    except ValueError:
        return None  # generate_config reports the unknown user
    (_c, _h, _n), (_c1, ustart, ucount) = std.uid
    (_c, _h, _n), (_c1, gstart, gcount) = std.gid
    return from_oci(id_mappings(os.getuid(), (ustart, ucount), uid),
                    id_mappings(os.getgid(), (gstart, gcount), gid))


def present_lowerdirs(store, spec, config: dict, env_dir: Path, lowerdirs: list[Path], chain):
    """``(lowerdirs, idmap)``: the lowerdirs (top first), replaced by keep-id copies when the runtime
    maps another user (``idmap``: that mapping, else None).

    Raises: engine BuildError when the copies cannot be made (user namespace failure).
    """
    user = getattr(spec, "user", None) or (config.get("config") or {}).get("User") or None
    rootfs = {"driver": "overlay", "upperdir": str(Path(env_dir) / "upper"), "lowerdirs": [str(p) for p in lowerdirs]}
    target = runtime_idmap(store, user, rootfs)
    if target is None or target == store.idmap:
        return lowerdirs, None
    from engine.store.idmap import present_layers

    return present_layers(store, list(chain), target), target


def own_upper_root(store, rootfs: dict, target) -> None:
    """Give the overlay upperdir's root (which is the merged ``/``) the owner that shows as 0:0
    under the keep-id mapping ``target`` (made by the user, it would show as the keep-id uid).

    Raises: engine BuildError when the user namespace cannot be set up.
    """
    from engine.store.idmap import _to_host, translate
    from engine.store.userns import call_in_userns

    upper = rootfs.get("upperdir")
    if target is None or rootfs.get("driver") != "overlay" or not upper:
        return
    st = os.lstat(upper)
    if (st.st_uid, st.st_gid) == (_to_host(target.uid, 0), _to_host(target.gid, 0)):
        return
    std = store.idmap
    ids = (translate(std, target, "uid", 0), translate(std, target, "gid", 0))
    call_in_userns(os.chown, (upper, *ids), std.uid, std.gid, f"chown {upper}")
