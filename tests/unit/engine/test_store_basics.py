"""Store building blocks: the verifying reader, compression sniffing, flock, blob ingest/fetch, and
an unusable store root (ENVCTL_HOME a file, another user's store): one StoreError line naming the
store with an ENVCTL_HOME hint, not an internal OSError."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import threading

import pytest

from engine.layers.compression import check_media_type, detect, open_decompressed
from engine.errors import BlobNotFound, DigestMismatch, SizeMismatch, StoreError, UnsafeLayer
from engine.store.locking import FileLock, LockBusy, is_locked
from engine.layers.chain import chain_ids
from engine.store.cas import Store
from engine.store.verifying import VerifyingReader
from specs.digest import Digest
from tests.fixtures.layers import DictSource, digest_of

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_verifying_reader_checks_at_eof_only():
    data = b"hello world"
    r = VerifyingReader(io.BytesIO(data), digest_of(data), len(data))
    assert r.read(5) == b"hello" and not r.verified
    assert r.drain() == 6 and r.verified


@pytest.mark.parametrize("body,size,exc,msg", [
    (b"hello worlx", 11, DigestMismatch, "content has digest sha256:"),
    (b"hello", 11, SizeMismatch, "got 5 bytes, expected 11"),
    (b"hello world!", 11, SizeMismatch, "more than the expected 11 bytes"),
])
def test_verifying_reader_refuses(body, size, exc, msg):
    r = VerifyingReader(io.BytesIO(body), digest_of(b"hello world"), size, what="blob x of ref")
    with pytest.raises(exc, match=msg):
        r.drain()


def test_compression_sniffing():
    assert detect(gzip.compress(b"x")) == "gzip"
    assert detect(b"\x28\xb5\x2f\xfd....") == "zstd"
    assert detect(b"usr/\x00\x00") == "plain"
    raw = b"tar bytes" * 1000
    stream, kind = open_decompressed(io.BytesIO(gzip.compress(raw)))
    assert (kind, stream.read()) == ("gzip", raw)


def test_media_types():
    check_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip", "d")
    check_media_type(None, "d")
    with pytest.raises(UnsafeLayer, match="unsupported layer media type text/plain"):
        check_media_type("text/plain", "d")
    check_media_type("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "d", allow_foreign=True)


def test_chain_ids_follow_the_image_spec():
    a, b = Digest.from_bytes(b"a"), Digest.from_bytes(b"b")
    c = chain_ids([a, b])
    assert c[0] == a and c[1] == Digest.from_bytes(f"{a} {b}".encode())


def test_flock_is_exclusive_between_descriptions(tmp_path):
    held = FileLock(tmp_path / "l").acquire()
    assert is_locked(tmp_path / "l")
    with pytest.raises(LockBusy, match="held by another envctl process"):
        FileLock(tmp_path / "l", blocking=False).acquire()
    held.release()
    assert not is_locked(tmp_path / "l")


def test_ingest_verifies_and_is_read_only(tmp_path):
    s = Store(tmp_path / "s").ensure()
    assert oct(s.root.stat().st_mode & 0o777) == "0o700"
    d = digest_of(b"blob")
    p = s.ingest(io.BytesIO(b"blob"), d, 4)
    assert p.read_bytes() == b"blob" and p.stat().st_mode & 0o777 == 0o444
    assert s.ingest(io.BytesIO(b"blob"), d, 4) == p  # already there: fine
    with pytest.raises(DigestMismatch):
        s.ingest(io.BytesIO(b"blab"), digest_of(b"other"), 4)
    assert list(s.tmp.iterdir()) == []
    with pytest.raises(BlobNotFound):
        s.open_blob(digest_of(b"missing"))


def test_fetch_blob_once_across_threads(tmp_path):
    s = Store(tmp_path / "s").ensure()
    src = DictSource()
    d = src.add(b"x" * 100000)
    results = []
    threads = [threading.Thread(target=lambda: results.append(s.fetch_blob(src, d, 100000))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(src.requests) == 1 and sorted(r.cached for r in results) == [False, True, True, True]


def test_tmp_and_envs_are_orlov_top_dirs(tmp_path):
    import fcntl
    import os
    import struct
    import subprocess

    from engine.store.fsutil import FS_IOC_GETFLAGS, FS_TOPDIR_FL

    s = Store(tmp_path / "s").ensure()
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout.strip()
    for d in (s.tmp, s.envs):
        fd = os.open(d, os.O_RDONLY)
        try:
            flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
        except OSError:
            flags = 0
        finally:
            os.close(fd)
        assert bool(flags & FS_TOPDIR_FL) == fstype.startswith("ext"), fstype


def test_store_home_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for root in (f, f / "sub"):
        with pytest.raises(StoreError) as e:
            Store(root).ensure()
        assert e.value.message.startswith(f"open store {root}: ") and "ENVCTL_HOME" in e.value.hint


def test_cli_reports_an_unusable_store_in_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = subprocess.run([sys.executable, "-m", "envctl", "store", "fsck"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "ENVCTL_HOME": str(f), "PYTHONPATH": REPO})
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"envctl: error: open store {f}: not a directory", r.stderr


def test_other_users_store_is_one_error(tmp_path, rootless_user):
    root_store = tmp_path / "store"
    Store(root_store).ensure()
    os.chmod(tmp_path, 0o755)
    code = ("import sys; from pathlib import Path; from engine.store.cas import Store\n"
            "from engine.errors import StoreError\n"
            "try:\n    Store(Path(sys.argv[1])).ensure()\n"
            "except StoreError as e:\n    print(e.message); sys.exit(7)\n")
    r = rootless_user.run([rootless_user.python, "-c", code, str(root_store)])
    assert r.returncode == 7, r.stderr
    assert r.stdout.strip() in (f"open store {root_store}: Operation not permitted",
                                f"open store {root_store}: Permission denied")
