"""Turn a directory in overlayfs on-disk form (a build step's upperdir) into an OCI layer blob.

OCI image spec, layer.md: changesets are tars; a deleted path is a ``.wh.NAME`` entry and a
directory whose lower contents are hidden carries ``.wh..wh..opq``. overlayfs records the same
facts differently (Documentation/filesystems/overlayfs.rst): a whiteout is a 0/0 character
device (or, since 6.7, a zero-size file with ``*.overlay.whiteout``), an opaque directory has
``trusted.overlay.opaque=y`` (``user.overlay.opaque=y`` with ``userxattr``).

Determinism is the point (same tree -> same diffID and digest, on any machine):
- entries depth-first, names sorted bytewise, every directory before its children;
- numeric uid/gid only (no uname/gname), ids mapped back through the build's uid/gid map;
- mtimes clamped to ``SOURCE_DATE_EPOCH`` (int seconds), no atime/ctime;
- PAX records only when needed (long or non-ASCII names, xattrs), in sorted key order;
- gzip without file name and with mtime 0 at a fixed level, or zstd at a fixed level,
  single-threaded. The digest also depends on the zlib/zstd library build; the diffID does not.

Streaming: the tar is produced, hashed (diffID), compressed and hashed again (digest) in one
pass; nothing larger than one copy buffer is held in memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from engine.errors import BuildError
from specs.digest import Digest

__all__ = [
    "LayerResult",
    "IdMap",
    "write_layer",
    "write_layer_file",
    "clamp_mtimes",
    "source_date_epoch",
    "MEDIA_TYPE_GZIP",
    "MEDIA_TYPE_ZSTD",
    "MEDIA_TYPE_TAR",
    "GZIP_LEVEL",
    "ZSTD_LEVEL",
]

MEDIA_TYPE_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
WHITEOUT_PREFIX = ".wh."
OPAQUE_NAME = ".wh..wh..opq"
_OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerResult:
    """What was written.

    Attributes:
        diff_id: digest of the uncompressed tar (Digest).
        digest: digest of the blob as written to ``out`` (Digest).
        size: blob size in bytes (int).
        media_type: OCI layer media type (str).
    """

    diff_id: Digest
    digest: Digest
    size: int
    media_type: str


IdMap = tuple[tuple[int, int, int], ...]  # OCI LinuxIDMapping rows: (containerID, hostID, size)


def _map_back(host_id: int, idmap: IdMap) -> int:
    """Host id -> id inside the container; unmapped ids become 65534 (nobody), like the kernel."""
    if not idmap:
        return host_id
    for container_id, host_start, size in idmap:
        if host_start <= host_id < host_start + size:
            return container_id + host_id - host_start
    return 65534


class _HashWriter(io.RawIOBase):
    """Write-through sink that hashes and counts; ``tell()`` is the byte count (tarfile needs it)."""

    def __init__(self, sink: BinaryIO | None):
        self._sink = sink
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.hash.update(b)
        self.count += len(b)
        if self._sink is not None:
            self._sink.write(b)
        return len(b)

    def tell(self) -> int:
        return self.count


ROOTLESS_XATTR = "user.rootlesscontainers"


def _rootless_owner(value: bytes) -> tuple[int, int] | None:
    """Decode umoci's ``user.rootlesscontainers`` protobuf ``Resource{uint32 uid=1; uint32 gid=2}``."""
    ids, i = {1: 0, 2: 0}, 0
    try:
        while i < len(value):
            tag = value[i]
            i += 1
            n, shift = 0, 0
            while True:
                b = value[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            if tag & 7 != 0:
                return None
            ids[tag >> 3] = n
    except IndexError:
        return None
    return ids[1], ids[2]


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def _overlay_attr(xattrs: dict[str, bytes], key: str) -> bytes | None:
    for prefix in _OVERLAY_PREFIXES:
        if prefix + key in xattrs:
            return xattrs[prefix + key]
    return None


def _is_whiteout(st: os.stat_result, xattrs: dict[str, bytes]) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and _overlay_attr(xattrs, "whiteout") is not None


def _check_supported(rel: str, xattrs: dict[str, bytes]) -> None:
    # redirect_dir / metacopy make the upperdir depend on the lowerdirs: not a self-contained diff.
    for key in ("redirect", "metacopy"):
        if _overlay_attr(xattrs, key) is not None:
            raise BuildError(f"write layer: {rel} carries overlay {key} metadata",
                             hint="mount the build overlay with redirect_dir=off,metacopy=off")


class _Entry:
    """One path of the upperdir with what the tar needs to know about it."""

    __slots__ = ("rel", "full", "st", "xattrs")

    def __init__(self, rel: str, full: str, st: os.stat_result, xattrs: dict[str, bytes]):
        self.rel, self.full, self.st, self.xattrs = rel, full, st, xattrs


def _walk(root: str, rel: str = "") -> Iterator[_Entry]:
    """Depth-first, bytewise-sorted walk; each directory is yielded before its contents."""
    base = os.path.join(root, rel) if rel else root
    try:
        names = sorted(os.listdir(base), key=os.fsencode)
    except OSError as e:
        raise BuildError(f"write layer: list {base}: {e.strerror}") from e
    for name in names:
        child_rel = f"{rel}/{name}" if rel else name
        full = os.path.join(root, child_rel)
        st = os.lstat(full)
        entry = _Entry(child_rel, full, st, _xattrs(full))
        yield entry
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, child_rel)


class _TarBuilder:
    """Turns walk entries into deterministic TarInfo headers (+ content)."""

    def __init__(self, epoch: int | None, uid_map: IdMap, gid_map: IdMap):
        self.epoch = epoch
        self.uid_map, self.gid_map = uid_map, gid_map
        self.links: dict[tuple[int, int], str] = {}

    def _info(self, name: str, st: os.stat_result | None, type_: bytes,
              xattrs: dict[str, bytes] | None = None) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.uname = ti.gname = ""
        if st is None:  # synthetic whiteout entries: root-owned, mode 0, time 0 clamped
            ti.mode, ti.uid, ti.gid, ti.mtime = 0, 0, 0, 0
            return ti
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid = _map_back(st.st_uid, self.uid_map)
        ti.gid = _map_back(st.st_gid, self.gid_map)
        # Rootless layers keep the real owner in an xattr (umoci) and give the file to the mapped
        # root; overlay copy-up carries the xattr up. A chown inside the container moves the file
        # to another host id but leaves the xattr stale: trust it only while the file is still root's.
        if (ti.uid, ti.gid) == (0, 0) and xattrs and ROOTLESS_XATTR in xattrs \
                and (owner := _rootless_owner(xattrs[ROOTLESS_XATTR])):
            ti.uid, ti.gid = owner
        mtime = int(st.st_mtime)
        ti.mtime = max(0, mtime if self.epoch is None else min(mtime, self.epoch))
        return ti

    def _pax(self, ti: tarfile.TarInfo, xattrs: dict[str, bytes]) -> None:
        keep = {k: v for k, v in xattrs.items() if not k.startswith(_OVERLAY_PREFIXES)
                and k != ROOTLESS_XATTR}
        ti.pax_headers = {f"SCHILY.xattr.{k}": keep[k].decode("utf-8", "surrogateescape")
                          for k in sorted(keep)}

    def headers(self, e: _Entry) -> Iterator[tuple[tarfile.TarInfo, str | None]]:
        """Yield (header, path of content or None) for one entry (two for an opaque dir)."""
        st, parent, base = e.st, os.path.dirname(e.rel), os.path.basename(e.rel)
        _check_supported(e.rel, e.xattrs)
        if _is_whiteout(st, e.xattrs):
            wh = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
            yield self._info(wh, None, tarfile.REGTYPE), None
            return
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            ti = self._info(e.rel, st, tarfile.DIRTYPE, e.xattrs)
            self._pax(ti, e.xattrs)
            yield ti, None
            if _overlay_attr(e.xattrs, "opaque") == b"y":
                yield self._info(f"{e.rel}/{OPAQUE_NAME}", None, tarfile.REGTYPE), None
            return
        if stat.S_ISSOCK(mode):
            return  # sockets cannot be represented in a tar (OCI layer.md lists no socket type)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            ti = self._info(e.rel, st, tarfile.LNKTYPE, e.xattrs)
            ti.linkname = self.links[key]
            self._pax(ti, e.xattrs)
            yield ti, None
            return
        if st.st_nlink > 1:
            self.links[key] = e.rel
        yield self._typed(e), (e.full if stat.S_ISREG(mode) else None)

    def _typed(self, e: _Entry) -> tarfile.TarInfo:
        st, mode = e.st, e.st.st_mode
        if stat.S_ISREG(mode):
            ti = self._info(e.rel, st, tarfile.REGTYPE, e.xattrs)
            ti.size = st.st_size
        elif stat.S_ISLNK(mode):
            ti = self._info(e.rel, st, tarfile.SYMTYPE, e.xattrs)
            ti.linkname = os.readlink(e.full)
        elif stat.S_ISFIFO(mode):
            ti = self._info(e.rel, st, tarfile.FIFOTYPE, e.xattrs)
        else:
            ti = self._info(e.rel, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE, e.xattrs)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self._pax(ti, e.xattrs)
        return ti


def _compressor(compression: str, sink: BinaryIO, level: int | None):
    if compression == "gzip":
        import gzip

        # filename="" omits FNAME; mtime=0 fixes MTIME; the OS byte is always 255 in CPython.
        return gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0,
                             compresslevel=GZIP_LEVEL if level is None else level)
    if compression == "zstd":
        import zstandard

        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL if level is None else level, threads=0,
                                        write_content_size=False, write_checksum=False)
        return cctx.stream_writer(sink, closefd=False)
    if compression == "none":
        return None
    raise BuildError(f"write layer: unknown compression {compression!r}", hint="use gzip, zstd or none")


_MEDIA = {"gzip": MEDIA_TYPE_GZIP, "zstd": MEDIA_TYPE_ZSTD, "none": MEDIA_TYPE_TAR}


def source_date_epoch(default: int = 0) -> int:
    """``SOURCE_DATE_EPOCH`` from the environment (int seconds), else ``default``.

    reproducible-builds.org/specs/source-date-epoch; an unparsable value is an error.
    """
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise BuildError(f"read SOURCE_DATE_EPOCH: {value!r} is not a non-negative integer",
                         hint="set SOURCE_DATE_EPOCH to seconds since 1970, e.g. $(git log -1 --format=%ct)")
    return int(value)


def write_layer(upperdir: str | os.PathLike, out: BinaryIO, *, compression: str = "gzip",
                level: int | None = None, epoch: int | None = 0, uid_map: IdMap = (),
                gid_map: IdMap = (), progress: Callable[[int], None] | None = None) -> LayerResult:
    """Write ``upperdir`` (overlay on-disk form) to ``out`` as a deterministic OCI layer blob.

    Args:
        upperdir: directory to turn into a layer; its own metadata is not recorded.
        out: binary sink; receives exactly the blob bytes (not closed here).
        compression: ``"gzip"``, ``"zstd"`` or ``"none"``.
        level: compression level; None = the fixed default (gzip 6, zstd 3).
        epoch: clamp mtimes to this many seconds since 1970 (None keeps them; see
            :func:`source_date_epoch`).
        uid_map, gid_map: the build's OCI id mappings; host ids are mapped back to container ids.
        progress: called with the uncompressed byte count after each file.

    Returns:
        LayerResult(diff_id, digest, size, media_type).

    Raises:
        BuildError: unreadable upperdir, unsupported overlay metadata, bad compression name.
    """
    root = os.fspath(upperdir)
    blob = _HashWriter(out)
    comp = _compressor(compression, blob, level)
    tar_sink = _HashWriter(comp if comp is not None else blob)
    builder = _TarBuilder(epoch, tuple(uid_map), tuple(gid_map))
    with tarfile.TarFile(fileobj=tar_sink, mode="w", format=tarfile.PAX_FORMAT,
                         encoding="utf-8", errors="surrogateescape") as tar:
        for entry in _walk(root):
            for ti, content in builder.headers(entry):
                _add(tar, ti, content)
            if progress is not None:
                progress(tar_sink.count)
    if comp is not None:
        comp.close()  # ends the gzip member / zstd frame; the sink stays open (closefd=False)
    return LayerResult(Digest("sha256", tar_sink.hash.hexdigest()), Digest("sha256", blob.hash.hexdigest()),
                       blob.count, _MEDIA[compression])


def _add(tar: tarfile.TarFile, ti: tarfile.TarInfo, content: str | None) -> None:
    if content is None:
        tar.addfile(ti)
        return
    try:
        with open(content, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != ti.size:
                raise BuildError(f"write layer: {ti.name} changed size while being archived")
            tar.addfile(ti, f)
    except OSError as e:
        raise BuildError(f"write layer: read {content}: {e.strerror}") from e


def clamp_mtimes(root: str | os.PathLike, epoch: int | None) -> int:
    """Set every mtime (and atime) under ``root`` newer than ``epoch`` to ``epoch``; returns the count.

    Symlinks are changed themselves (not followed). ``root`` itself is left alone.
    """
    if epoch is None:
        return 0
    n = 0
    for e in _walk(os.fspath(root)):
        if e.st.st_mtime > epoch:
            os.utime(e.full, (epoch, epoch), follow_symlinks=False)
            n += 1
    return n


def write_layer_file(upperdir: str | os.PathLike, directory: str | os.PathLike, **kw) -> tuple[LayerResult, Path]:
    """Write the layer of ``upperdir`` to a new temporary file in ``directory``.

    Returns (LayerResult, Path of the temporary file); the caller renames it into a store
    (e.g. ``blobs/sha256/<digest hex>``) or deletes it. Keyword args as :func:`write_layer`.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="layer-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            result = write_layer(upperdir, f, **kw)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return result, Path(tmp)
