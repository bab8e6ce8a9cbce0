"""Hostile and tricky layers: each one with the exact resulting layer tree or the exact error.

Every case also checks that nothing outside the store changed (a sentinel tree beside it, and the
host's /etc/passwd). Layers are unpacked through the real pull path (engine.layers.pull.ensure_layers)
from an in-memory source, as root (CI) — rootless mapping is exercised with ``rootless=True``
options here and for real as an unprivileged user in tests/integration/test_rootfs_overlay.py.
"""

from __future__ import annotations

import os

import pytest

from engine.errors import DigestMismatch, UnsafeLayer
from engine.layers.pull import LayerRef, ensure_layers
from engine.store.cas import Store
from engine.store.layer_dirs import tree_digest
from engine.layers.unpack import ROOTLESS_XATTR, rootless_owner_xattr
from tests.fixtures.layers import MTIME, DictSource, E, compress, describe, digest_of, tar_bytes, tree

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="ownership/devices/trusted xattrs need root")
OPQ = {"trusted.overlay.opaque": b"y", "user.overlay.opaque": b"y"}


@pytest.fixture(autouse=True, params=["inline", "3workers", "walk"])
def unpack_mode(request, monkeypatch):
    """Every case runs three ways: inline file creation with openat2(RESOLVE_IN_ROOT) resolution,
    the parallel worker path, and the O_NOFOLLOW component walk used where openat2 is missing."""
    import engine.layers.confine

    monkeypatch.setenv("ENVCTL_UNPACK_WORKERS", "3" if request.param == "3workers" else "1")
    if request.param == "walk":
        monkeypatch.setattr(engine.layers.confine, "_sys", None)
    else:
        assert engine.layers.confine._sys is not None, "runtime._sys (openat2) should be importable here"
    return request.param


@pytest.fixture
def world(tmp_path):
    """(store, outside dir) — the outside dir is a sentinel tree that must never change."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep").write_text("keep")
    return Store(tmp_path / "store"), outside


def build(layers, kind="gzip"):
    src, refs = DictSource(), []
    for entries in layers:
        t = tar_bytes(entries)
        b = compress(t, kind)
        refs.append(LayerRef(src.add(b), digest_of(t), len(b), None))
    return src, refs


def apply(world, *layers, kind="gzip", **kw):
    store, outside = world
    before = tree_digest(outside), os.stat("/etc/passwd").st_mtime_ns
    src, refs = build(layers, kind)
    try:
        return ensure_layers(store, lambda: src, refs, **kw)
    finally:
        assert (tree_digest(outside), os.stat("/etc/passwd").st_mtime_ns) == before
        assert sorted(p.name for p in outside.parent.iterdir()) == ["outside", "store"]


def top(report) -> dict:
    return tree(report.lowerdirs[0])


def kinds(t: dict) -> dict:
    return {k: (v[0], v[4]) for k, v in t.items()}


def assert_failed_cleanly(world):
    store, _ = world
    assert list(store.layers.iterdir()) == []
    assert [p.name for p in store.tmp.iterdir() if not p.name.endswith(".partial")] == []


# ---- escapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../evil", "a/b/../../../evil"])
def test_dotdot_refused(world, name):
    with pytest.raises(UnsafeLayer, match=r"climbs out of the layer with '\.\.'"):
        apply(world, [E.file("a/ok", b"1"), E.file(name, b"x")])
    assert_failed_cleanly(world)


def test_absolute_names_are_relative_to_the_layer(world):
    r = apply(world, [E.file("/abs/file", b"x"), E.dir("//etc/"), E.file("/etc//hosts", b"h")])
    assert kinds(top(r)) == {"abs": ("dir", None), "abs/file": ("file", b"x"), "etc": ("dir", None),
                             "etc/hosts": ("file", b"h")}


def test_symlink_then_write_through_it_stays_inside(world):
    _, outside = world
    r = apply(world, [E.sym("x", "/etc"), E.file("x/passwd", b"pw"),
                      E.sym("up", "../../../../../../" + str(outside).lstrip("/")),
                      E.file("up/sub/keep", b"pwned")])
    rel = str(outside).lstrip("/")
    assert kinds(top(r)) == {
        "x": ("sym", "/etc"), "etc": ("dir", None), "etc/passwd": ("file", b"pw"),
        "up": ("sym", "../../../../../../" + rel),
        **{"/".join(rel.split("/")[:i]): ("dir", None) for i in range(1, len(rel.split("/")) + 1)},
        rel + "/sub": ("dir", None), rel + "/sub/keep": ("file", b"pwned"),
    }


def test_symlink_to_root_dir_then_write(world):
    r = apply(world, [E.sym("d", "/"), E.file("d/etc/x", b"1"), E.sym("dd", ".."), E.file("dd/y", b"2")])
    assert kinds(top(r)) == {"d": ("sym", "/"), "dd": ("sym", ".."), "etc": ("dir", None),
                             "etc/x": ("file", b"1"), "y": ("file", b"2")}


def test_symlink_loop_refused(world):
    with pytest.raises(UnsafeLayer, match="too many symlinks|Too many levels"):
        apply(world, [E.sym("a", "b"), E.sym("b", "a"), E.file("a/x", b"1")])
    assert_failed_cleanly(world)


@pytest.mark.parametrize("target", ["../../etc/passwd", "/../etc/passwd"])
def test_hardlink_out_with_dotdot_refused(world, target):
    with pytest.raises(UnsafeLayer, match="climbs out"):
        apply(world, [E.link("l", target)])
    assert_failed_cleanly(world)


def test_hardlink_to_absolute_host_path_is_confined(world):
    # /etc/passwd exists on the host but not in the layer: confined lookup finds nothing
    with pytest.raises(UnsafeLayer, match=r"hardlink 'l' -> '/etc/passwd': no such file in this layer"):
        apply(world, [E.link("l", "/etc/passwd")])
    assert_failed_cleanly(world)


def test_hardlink_through_symlinked_dir_stays_inside(world):
    r = apply(world, [E.file("real/f", b"F"), E.sym("s", "/real"), E.link("l", "s/f")])
    t = top(r)
    assert t["l"][4] == b"F"
    root = r.lowerdirs[0]
    assert os.stat(root / "l").st_ino == os.stat(root / "real/f").st_ino


@pytest.mark.parametrize("entry,msg", [
    (E.file("f", b"x", mtime=10**30), "entry 'f': "),
    (E.file("n" * 300, b"x"), "File name too long"),
])
def test_malformed_entries_are_one_clear_error(world, entry, msg):
    with pytest.raises(UnsafeLayer, match=msg):
        apply(world, [entry])
    assert_failed_cleanly(world)


def test_root_replaced_by_file_refused(world):
    with pytest.raises(UnsafeLayer, match="would replace the root directory"):
        apply(world, [E.file(".", b"x")])
    assert_failed_cleanly(world)


def test_file_in_the_way_of_a_parent(world):
    with pytest.raises(UnsafeLayer, match="a is not a directory; cannot create entries below it"):
        apply(world, [E.file("a", b"x"), E.file("a/b", b"y")])
    assert_failed_cleanly(world)


# ---- tar semantics ---------------------------------------------------------------------------

def test_duplicates_last_wins(world):
    r = apply(world, [E.file("a", b"1"), E.file("a", b"2", mode=0o600), E.file("s", b"f"),
                      E.sym("s", "a"), E.sym("t", "a"), E.file("t", b"now a file")])
    t = top(r)
    assert (t["a"][0], t["a"][1], t["a"][4]) == ("file", 0o600, b"2")
    assert kinds(t)["s"] == ("sym", "a") and kinds(t)["t"] == ("file", b"now a file")


def test_hardlinked_file_is_replaced_not_written_through(world):
    r = apply(world, [E.file("a", b"orig"), E.link("b", "a"), E.file("b", b"new")])
    assert kinds(top(r)) == {"a": ("file", b"orig"), "b": ("file", b"new")}


def test_dir_replaced_by_file_and_reverse(world):
    r = apply(world, [E.dir("a"), E.file("a/x", b"1"), E.file("a", b"file now"),
                      E.file("b", b"file"), E.dir("b", mode=0o700), E.file("b/y", b"2"),
                      E.dir("c"), E.sym("c", "/a")])
    t = top(r)
    assert kinds(t) == {"a": ("file", b"file now"), "b": ("dir", None), "b/y": ("file", b"2"),
                        "c": ("sym", "/a")}
    assert t["b"][1] == 0o700


def test_whiteouts_of_lower_files_and_same_layer_files(world):
    r = apply(world, [E.dir("etc"), E.file("etc/a", b"A"), E.file("etc/b", b"B"), E.dir("etc/d"),
                      E.file("etc/d/x", b"X")],
              [E.whiteout("etc/a"), E.file("etc/new", b"N"), E.whiteout("etc/new"),
               E.whiteout("etc/d"), E.dir("etc/d"), E.file("etc/d/y", b"Y")])
    t = top(r)
    assert kinds(t) == {"etc": ("dir", None), "etc/a": ("chr", (0, 0)), "etc/new": ("file", b"N"),
                        "etc/d": ("dir", None), "etc/d/y": ("file", b"Y")}
    assert t["etc/d"][5] == OPQ  # whited-out lower dir replaced by this layer's dir = opaque
    assert kinds(tree(r.lowerdirs[1]))["etc/a"] == ("file", b"A")  # lower layer untouched


def test_opaque_dir_keeps_the_layer_s_own_entries(world):
    r = apply(world, [E.dir("opt"), E.file("opt/old", b"o")],
              [E.dir("opt", mode=0o750), E.file("opt/new", b"n"), E.opaque("opt"), E.opaque("fresh")])
    t = top(r)
    assert kinds(t) == {"opt": ("dir", None), "opt/new": ("file", b"n"), "fresh": ("dir", None)}
    assert t["opt"][1] == 0o750 and t["opt"][5] == OPQ and t["fresh"][5] == OPQ


def test_aufs_metadata_is_skipped(world):
    r = apply(world, [E.dir(".wh..wh.plnk"), E.file(".wh..wh.plnk/123.456", b"x"), E.file("a", b"A")])
    assert kinds(top(r)) == {"a": ("file", b"A")}


def test_invalid_whiteout_name(world):
    with pytest.raises(UnsafeLayer, match="invalid whiteout"):
        apply(world, [E.file("a/.wh.", b"")])


def test_hardlinks_within_and_across_layers(world):
    r = apply(world, [E.file("bin/busybox", b"BB", mode=0o755), E.file("etc/x", b"X", mode=0o640, uid=7)],
              [E.link("bin/sh", "bin/busybox"), E.file("own", b"O"), E.link("own2", "own"),
               E.link("etc/y", "/etc/x")])
    t, root = top(r), r.lowerdirs[0]
    assert kinds(t)["bin/sh"] == ("file", b"BB") and t["bin/sh"][1] == 0o755
    assert os.stat(root / "own").st_ino == os.stat(root / "own2").st_ino
    assert os.stat(root / "own").st_nlink == 2
    assert t["etc/y"][:5] == ("file", 0o640, 7 if ROOT else t["etc/y"][2], 0, b"X")
    assert os.stat(root / "bin/sh").st_ino != os.stat(r.lowerdirs[1] / "bin/busybox").st_ino


def test_hardlink_to_whited_out_lower_file_refused(world):
    with pytest.raises(UnsafeLayer, match="no such file in this layer or the layers below"):
        apply(world, [E.file("a", b"A")], [E.whiteout("a"), E.link("b", "a")])


def test_implicit_parents_copy_lower_metadata(world):
    r = apply(world, [E.dir("tmp", mode=0o1777, mtime=1234)], [E.file("tmp/x", b"x")])
    t = top(r)
    assert t["tmp"][1] == 0o1777 and os.stat(r.lowerdirs[0] / "tmp").st_mtime == 1234


@needs_root
def test_modes_owners_mtimes_setuid(world):
    r = apply(world, [E.dir(".", mode=0o755, mtime=5), E.dir("tmp", mode=0o1777), E.dir("g", mode=0o2775, gid=50),
                      E.file("bin/su", b"su", mode=0o4755), E.file("home/u/f", b"f", uid=1000, gid=1000),
                      E.dir("ro", mode=0o555), E.file("ro/x", b"x", mode=0o000), E.fifo("p", mode=0o620, uid=3)])
    t, root = top(r), r.lowerdirs[0]
    assert t["bin/su"][:4] == ("file", 0o4755, 0, 0)
    assert t["tmp"][1] == 0o1777 and t["g"][1:4] == (0o2775, 0, 50)
    assert t["home/u/f"][:4] == ("file", 0o644, 1000, 1000)
    assert t["ro"][1] == 0o555 and t["ro/x"][1] == 0
    assert t["p"][:4] == ("fifo", 0o620, 3, 0)
    assert os.stat(root / "bin/su").st_mtime == MTIME and os.stat(root / "tmp").st_mtime == MTIME
    assert os.stat(root).st_mtime == 5


@needs_root
def test_xattrs_capabilities_and_overlay_xattrs_dropped(world):
    cap = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")  # cap_net_raw, v2
    r = apply(world, [E.file("bin/ping", b"p", mode=0o755, xattrs={"security.capability": cap, "user.k": "v"}),
                      E.dir("d", xattrs={"trusted.overlay.opaque": "y", "user.overlay.redirect": "/x"}),
                      E.sym("s", "bin/ping", xattrs={"user.k": "v"})])
    t = top(r)
    assert t["bin/ping"][5] == {"security.capability": cap, "user.k": b"v"}
    assert t["d"][5] == {} and t["s"][0] == "sym"


@needs_root
def test_devices_as_root(world):
    r = apply(world, [E.chr("dev/null", 1, 3, mode=0o666), E.chr("dev/w", 0, 0)])
    t = top(r)
    assert t["dev/null"][:2] == ("chr", 0o666) and t["dev/null"][4] == (1, 3)


def test_rootless_mapping_devices_and_owner_xattr(world):
    from engine.layers import snapshots as L
    orig = L.default_options

    def rootless(*a, **kw):
        o = orig(*a, **kw)
        o.rootless, o.opaque_xattrs = True, ("user.overlay.opaque",)
        return o

    warnings = []
    L.default_options = rootless
    import engine.layers.pull as P
    P.default_options = rootless
    try:
        r = apply(world, [E.chr("dev/null", 1, 3), E.chr("dev/zero", 1, 5), E.file("f", b"x", uid=1000, gid=100),
                          E.file("g", b"y", xattrs={"security.capability": b"\x01", "user.ok": "1"}),
                          E.dir("d", uid=5), E.opaque("d")], warn=warnings.append)
    finally:
        L.default_options = P.default_options = orig
    t = top(r)
    me = os.geteuid()
    assert "dev/null" not in t and "dev/zero" not in t
    assert t["f"][2] == me and t["f"][5] == {ROOTLESS_XATTR: rootless_owner_xattr(1000, 100)}
    assert t["g"][5] == {"user.ok": b"1"}
    assert t["d"][5] == {"user.overlay.opaque": b"y", ROOTLESS_XATTR: rootless_owner_xattr(5, 0)}
    dev = [w for w in warnings if "device" in w]
    assert len(dev) == 1 and dev[0].endswith(": device nodes skipped (rootless), first: 'dev/null'")


def test_rootless_owner_xattr_matches_umoci_protobuf():
    assert rootless_owner_xattr(0, 0) == b"\x08\x00\x10\x00"
    assert rootless_owner_xattr(1000, 100) == b"\x08\xe8\x07\x10\x64"


def test_long_pax_names_and_targets(world):
    long_dir = "/".join(["d" * 100] * 3)
    name = f"{long_dir}/{'f' * 200}"
    r = apply(world, [E.file(name, b"long"), E.sym("l", "/" + name)])
    t = top(r)
    assert t[name][4] == b"long" and t["l"][4] == "/" + name


@pytest.mark.parametrize("kind", ["zstd", "plain", "gzip"])
def test_compressions(world, kind):
    r = apply(world, [E.file("a", b"A" * 100000)], kind=kind)
    assert top(r)["a"][4] == b"A" * 100000


def test_diffid_mismatch_stores_nothing(world):
    store, _ = world
    src, refs = build([[E.file("a", b"A")]])
    bad = [LayerRef(refs[0].digest, digest_of(b"not the tar"), refs[0].size, None)]
    with pytest.raises(DigestMismatch, match=r"\(diffID\): content has digest sha256:"):
        ensure_layers(store, lambda: src, bad)
    assert_failed_cleanly(world)


def test_blob_digest_mismatch_stores_nothing(world):
    store, _ = world
    src, refs = build([[E.file("a", b"A")]])
    src.blobs[refs[0].digest.hex] = compress(tar_bytes([E.file("a", b"B")]))
    with pytest.raises(DigestMismatch, match=f"verify blob {refs[0].digest}"):
        ensure_layers(store, lambda: src, refs)
    assert_failed_cleanly(world)
    assert list(store.blobs.iterdir()) == [] and list(store.tmp.iterdir()) == []


def test_not_a_tar(world):
    store, _ = world
    src = DictSource()
    data = b"\x00garbage" * 100
    ref = LayerRef(src.add(compress(data)), digest_of(data), None, None)
    with pytest.raises(UnsafeLayer, match="not a valid tar archive|entry"):
        ensure_layers(store, lambda: src, [ref])
    assert list(store.layers.iterdir()) == []


def test_foreign_layer_refused(world):
    store, _ = world
    src, refs = build([[E.file("a", b"A")]])
    ref = LayerRef(refs[0].digest, refs[0].diff_id, refs[0].size,
                   "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    with pytest.raises(UnsafeLayer, match="refuse foreign layer"):
        ensure_layers(store, lambda: src, [ref])
    assert src.requests == []


def test_second_pull_is_cached_and_layers_are_shared(world):
    store, _ = world
    src, refs = build([[E.file("base", b"b")], [E.file("top", b"t")]])
    r1 = ensure_layers(store, lambda: src, refs)
    assert (r1.unpacked, r1.cached, r1.blobs_downloaded) == (2, 0, 2)
    calls = []
    r2 = ensure_layers(store, lambda: calls.append(1), refs)
    assert (r2.unpacked, r2.cached, calls) == (0, 2, [])
    src2, refs2 = build([[E.file("base", b"b")], [E.file("other", b"o")]])
    r3 = ensure_layers(store, lambda: src2, refs2)
    assert (r3.unpacked, r3.cached) == (1, 1) and [d for d, _ in src2.requests] == [refs2[1].digest.hex]


def test_interrupted_download_resumes_with_offset(world):
    store, _ = world
    big = os.urandom(3 << 20)
    src, refs = build([[E.file("big", big)]], kind="plain")
    failing = DictSource(src.blobs, fail_after=1 << 20)
    with pytest.raises(ConnectionError):
        ensure_layers(store, lambda: failing, refs)
    assert store.partial_path(refs[0].digest).stat().st_size >= 1 << 20
    r = ensure_layers(store, lambda: src, refs)
    assert r.unpacked == 1 and src.requests[0][1] >= 1 << 20
    assert top(r)["big"][4] == big
    assert describe(store.blob_path(refs[0].digest))[1] == 0o444
