"""Unpacking a layer, beside the hostile-layer corpus (test_unpack_corpus.py): a bad
``ENVCTL_UNPACK_WORKERS`` is one StoreError line naming the setting (like
ENVCTL_STORAGE_DRIVER=zfs), not an internal ValueError; the next unpack of a layer (under its
layer lock) removes the ``tmp/layer-*`` directories an interrupted ``up`` left for that layer, and
keeps other layers' and resumable downloads' temp files."""

import io
import tarfile

import pytest

from engine.errors import StoreError
from engine.layers.snapshots import default_options, unpack_into_store
from engine.layers.unpack import UnpackOptions, unpack_tar
from engine.store.cas import Store
from specs.digest import Digest


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"hello\n"
        info = tarfile.TarInfo("etc/hello")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_unpack_workers_setting_is_one_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("ENVCTL_UNPACK_WORKERS", value)
    with pytest.raises(StoreError) as e:
        unpack_tar(io.BytesIO(_tar()), tmp_path, UnpackOptions())
    assert e.value.message == f"ENVCTL_UNPACK_WORKERS={value}: not a number of threads"
    assert "1 or more" in e.value.hint


@pytest.mark.parametrize("value", ["", "1", "4", " 2 "])
def test_good_unpack_workers_settings_unpack(tmp_path, monkeypatch, value):
    monkeypatch.setenv("ENVCTL_UNPACK_WORKERS", value)
    unpack_tar(io.BytesIO(_tar()), tmp_path, UnpackOptions())
    assert (tmp_path / "etc" / "hello").read_text() == "hello\n"


def test_next_unpack_of_the_layer_removes_leftovers(tmp_path):
    store = Store(tmp_path / "store").ensure()
    data = _tar()
    chain = Digest.from_bytes(data)
    other = Digest.from_bytes(b"another layer")
    stale = [store.tmp / f"layer-{chain.hex[:16]}-{n}" for n in ("0123456789ab", "ba9876543210")]
    for s in stale:
        (s / "root" / "usr").mkdir(parents=True)
        (s / "root" / "usr" / "big").write_bytes(b"x" * 1000)
    keep = store.tmp / f"layer-{other.hex[:16]}-0123456789ab"   # another layer: maybe in progress
    keep.mkdir()
    partial = store.tmp / f"blob-{chain.hex}.partial"            # resumable download: kept
    partial.write_bytes(b"abc")
    with store.layer_lock(chain):
        unpack_into_store(store, chain, chain, io.BytesIO(data), default_options())
    assert not any(s.exists() for s in stale)
    assert keep.is_dir() and partial.is_file()
    assert store.has_layer(chain)
    assert sorted(p.name for p in store.tmp.iterdir()) == sorted([keep.name, partial.name])
