"""QA L3: an interrupted ``up`` left ``tmp/layer-*`` unpack directories until gc/fsck; the next
unpack of that layer (under its layer lock) removes them."""

import io
import tarfile

from engine.layers.snapshots import default_options, unpack_into_store
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
