"""Writing OCI bundles (config.json + rootfs) for ``envctl bundle``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runtime.errors import ContainerError

__all__ = ["write_bundle"]


def _copy_tree(src: str, dst: Path) -> None:
    r = subprocess.run(["cp", "-a", "--reflink=auto", f"{src}/.", str(dst)], capture_output=True, text=True)
    if r.returncode != 0:
        raise ContainerError(f"copy rootfs {src} to {dst}: {r.stderr.strip()}")


def _copy_overlay(rootfs: dict, dst: Path) -> None:
    """Materialise an overlay plan: mount it in a private mount namespace and copy (needs root)."""
    if os.geteuid() != 0:
        raise ContainerError("bundle --copy of an overlay rootfs needs root",
                             hint="use 'envctl bundle DIR' and run it with 'envctl oci run'")
    lower = ":".join([rootfs["upperdir"], *rootfs["lowerdirs"]])  # upper first: it is the top layer
    opts = f"lowerdir={lower}" + (",userxattr" if rootfs.get("userxattr") else "")
    script = f'mount -t overlay overlay -o "{opts}" "$1" && cp -a "$1/." "$2"'
    tmp = dst.parent / f".{dst.name}.mnt"
    tmp.mkdir(exist_ok=True)
    try:
        r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(tmp), str(dst)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ContainerError(f"copy overlay rootfs to {dst}: {r.stderr.strip()}")
    finally:
        tmp.rmdir()


def write_bundle(path: Path, config: dict, rootfs: dict, *, copy: bool = False) -> Path:
    """Write ``path/config.json`` (and ``path/rootfs`` with ``copy``); returns the bundle path."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(json.dumps(config))
    if copy:
        dst = path / "rootfs"
        dst.mkdir(exist_ok=True)
        if rootfs.get("driver") == "overlay":
            _copy_overlay(rootfs, dst)
        else:
            _copy_tree(rootfs["path"], dst)
        cfg["root"]["path"] = "rootfs"
        cfg.get("annotations", {}).pop("dev.envctl.rootfs", None)
    (path / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return path
