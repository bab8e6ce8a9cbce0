"""Reproducibility report: how two layers (tars) or two trees differ, path by path.

Used by ``envctl verify`` when a rebuilt step's diffID is not the locked one. Each side is read
once, streaming, into a small per-path summary (type, mode, owner, mtime, size, content digest,
link target, xattrs) — content is hashed, never kept — and the summaries are compared.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from engine.errors import EngineError

__all__ = ["PathInfo", "PathDiff", "summarize_tar", "summarize_tree", "compare", "diff_tars", "diff_trees",
           "format_report"]

ASPECTS = ("type", "content", "mode", "owner", "mtime", "link", "xattrs")


@dataclass(frozen=True)
class PathInfo:
    """What is compared for one path (xattrs as sorted (name, hex value) pairs)."""

    type: str
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int
    digest: str | None
    link: str | None
    xattrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PathDiff:
    """One differing path.

    Attributes:
        path: path inside the layer, no leading '/' (str).
        kinds: what differs: subset of ``type content mode owner mtime link xattrs`` or one of
            ``only-left`` / ``only-right`` (tuple[str, ...]).
        left, right: short descriptions of each side's value, for humans (str or None).
    """

    path: str
    kinds: tuple[str, ...]
    left: str | None = None
    right: str | None = None

    def to_dict(self) -> dict:
        """JSON form (dict): path (str), differs (list of kinds), left and right (entry descriptions)."""
        return {"path": self.path, "differs": list(self.kinds), "left": self.left, "right": self.right}


_TAR_TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
              tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
              tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def _norm(name: str) -> str:
    name = name.lstrip("/")
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _hash_stream(f: BinaryIO) -> str:
    h = hashlib.sha256()
    while block := f.read(1 << 20):
        h.update(block)
    return "sha256:" + h.hexdigest()


def summarize_tar(stream: BinaryIO) -> dict[str, PathInfo]:
    """Per-path summary of a layer tar (compressed or not) read from ``stream`` to EOF.

    Raises:
        EngineError: the stream is not a readable tar.
    """
    from engine.layers.compression import open_decompressed

    reader, _ = open_decompressed(stream)
    out: dict[str, PathInfo] = {}
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for m in tar:
                digest = _hash_stream(tar.extractfile(m)) if m.isreg() else None
                xattrs = tuple(sorted((k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape").hex())
                                      for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")))
                out[_norm(m.name)] = PathInfo(_TAR_TYPES.get(m.type, "other"), m.mode, m.uid, m.gid,
                                              int(m.mtime), m.size if m.isreg() else 0, digest,
                                              m.linkname or None, xattrs)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise EngineError(f"read layer for comparison: {e}") from e
    return out


def _tree_type(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo")):
        if test(mode):
            return name
    return "other"


def summarize_tree(root: str | os.PathLike) -> dict[str, PathInfo]:
    """Per-path summary of a directory tree (the root itself excluded; hardlinks not detected)."""
    root = os.fspath(root)
    out: dict[str, PathInfo] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            kind = _tree_type(st.st_mode)
            digest = None
            if kind == "file":
                with open(full, "rb") as f:
                    digest = _hash_stream(f)
            try:
                names = sorted(os.listxattr(full, follow_symlinks=False))
                xattrs = tuple((n, os.getxattr(full, n, follow_symlinks=False).hex()) for n in names)
            except OSError:
                xattrs = ()
            out[os.path.relpath(full, root)] = PathInfo(
                kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime),
                st.st_size if kind == "file" else 0, digest,
                os.readlink(full) if kind == "symlink" else None, xattrs)
    return out


def _describe(info: PathInfo, kind: str) -> str:
    return {"type": info.type, "content": f"{info.digest} ({info.size} bytes)" if info.digest else "-",
            "mode": oct(info.mode), "owner": f"{info.uid}:{info.gid}", "mtime": str(info.mtime),
            "link": str(info.link), "xattrs": ",".join(n for n, _ in info.xattrs) or "-"}[kind]


def _aspects(a: PathInfo, b: PathInfo) -> list[str]:
    checks = {"type": a.type != b.type, "content": (a.digest, a.size) != (b.digest, b.size),
              "mode": a.mode != b.mode, "owner": (a.uid, a.gid) != (b.uid, b.gid),
              "mtime": a.mtime != b.mtime, "link": a.link != b.link, "xattrs": a.xattrs != b.xattrs}
    return [k for k in ASPECTS if checks[k]]


def compare(left: dict[str, PathInfo], right: dict[str, PathInfo]) -> list[PathDiff]:
    """Differences between two summaries, sorted by path."""
    out = []
    for path in sorted(set(left) | set(right)):
        a, b = left.get(path), right.get(path)
        if b is None:
            out.append(PathDiff(path, ("only-left",), a.type, None))
        elif a is None:
            out.append(PathDiff(path, ("only-right",), None, b.type))
        elif kinds := _aspects(a, b):
            out.append(PathDiff(path, tuple(kinds), "; ".join(_describe(a, k) for k in kinds),
                                "; ".join(_describe(b, k) for k in kinds)))
    return out


def diff_tars(left: BinaryIO, right: BinaryIO) -> list[PathDiff]:
    """Compare two layer blobs (gzip, zstd or plain tar streams)."""
    return compare(summarize_tar(left), summarize_tar(right))


def diff_trees(left: str | os.PathLike, right: str | os.PathLike) -> list[PathDiff]:
    """Compare two directory trees."""
    return compare(summarize_tree(left), summarize_tree(right))


def format_report(diffs: list[PathDiff], limit: int = 50) -> str:
    """Human report, one line per path: ``  /etc/date: content, mtime``."""
    lines = [f"  /{d.path}: {', '.join(d.kinds)}" + (f" ({d.left} -> {d.right})" if d.left and d.right else "")
             for d in diffs[:limit]]
    if len(diffs) > limit:
        lines.append(f"  ... and {len(diffs) - limit} more")
    return "\n".join(lines)


__all__.append("format_report")
