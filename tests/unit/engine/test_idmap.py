"""engine/store/idmap.py helpers and Store's per-mapping layer directories (no namespaces needed)."""

import json

from engine.store.idmap import IdMap, _decode_owner, from_oci, translate
from engine.store.cas import Store
from engine.layers.unpack import rootless_owner_xattr
from specs.digest import Digest

STD = IdMap(((0, 1002, 1), (1, 165536, 65536)), ((0, 1002, 1), (1, 165536, 65536)))
KEEP = IdMap(((1000, 1002, 1), (0, 165536, 1000), (1001, 166536, 64536)),
             ((1000, 1002, 1), (0, 165536, 1000), (1001, 166536, 64536)))
CHAIN = Digest.parse("sha256:" + "ab" * 32)


def test_owner_xattr_round_trip():
    for uid, gid in ((0, 0), (0, 42), (100, 101), (65534, 65534), (1000, 1000), (300000, 5)):
        assert _decode_owner(rootless_owner_xattr(uid, gid)) == (uid, gid)
    assert _decode_owner(b"") == (0, 0)


def test_translate_keep_id_into_the_standard_namespace():
    # what the standard namespace must chown to so that keep-id shows the image owner
    assert translate(STD, KEEP, "uid", 1000) == 0          # keep-id uid -> the user -> std root
    assert translate(STD, KEEP, "uid", 0) == 1              # image root -> first subuid
    assert translate(STD, KEEP, "uid", 100) == 101
    assert translate(STD, KEEP, "uid", 65534) == 65534      # above the keep-id uid: shift cancels
    assert translate(STD, STD, "gid", 42) == 42
    assert translate(STD, KEEP, "uid", 70000) == 65534      # unmapped -> nobody


def test_mapping_key_is_stable_and_distinct():
    oci = from_oci([{"containerID": 0, "hostID": 1002, "size": 1}, {"containerID": 1, "hostID": 165536, "size": 65536}],
                   [{"containerID": 0, "hostID": 1002, "size": 1}, {"containerID": 1, "hostID": 165536, "size": 65536}])
    assert oci == STD and oci.key() == STD.key() and len(STD.key()) == 12
    assert STD.key() != KEEP.key()


def test_store_layer_dirs_are_keyed_and_validated_by_mapping(tmp_path):
    store = Store(tmp_path).ensure()
    plain, mapped = store.with_idmap(None), store.with_idmap(STD)
    assert plain.layer_dir(CHAIN).name == "ab" * 32
    assert mapped.layer_dir(CHAIN).name == f"{'ab' * 32}.{STD.key()}"
    assert mapped.layer_root(CHAIN) == mapped.layer_dir(CHAIN) / "root"
    d = mapped.layer_dir(CHAIN)
    (d / "root").mkdir(parents=True)
    (d / "layer.json").write_text(json.dumps({"chainID": str(CHAIN), "idMap": KEEP.key()}))
    assert not mapped.has_layer(CHAIN)          # made under another mapping: never used
    (d / "layer.json").write_text(json.dumps({"chainID": str(CHAIN), "idMap": STD.key()}))
    assert mapped.has_layer(CHAIN) and not plain.has_layer(CHAIN)
    assert not store.with_idmap(KEEP).has_layer(CHAIN)
