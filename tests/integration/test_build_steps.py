"""Build steps on a busybox base with real overlayfs (root): layers, caching, copy, failure."""

import gzip
import io
import os
import tarfile

import pytest

from engine.build.steps import build_steps
from engine.errors import BuildError
from engine.store.cas import Store
from specs.model import Step
from tests.fixtures.build_env import ChrootExecutor, install_base

pytestmark = pytest.mark.needs_root
if os.geteuid() != 0:
    pytest.skip("overlay mounts for the chroot executor need root", allow_module_level=True)


def steps_for(tmp):
    return (
        Step("run", run="mkdir -p /opt/app && echo built > /opt/app/out && rm /etc/removeme"),
        Step("env", env=(("GREETING", "hello"),)),
        Step("copy", src="requirements.txt", dest="/opt/app/requirements.txt", owner="app", mode=0o600),
        Step("workdir", workdir="/opt/app"),
        Step("run", run='echo "$GREETING from $(pwd)" > greeting && cat requirements.txt >> greeting'),
    )


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "proj"
    p.mkdir()
    (p / "requirements.txt").write_text("flask==3.0\n")
    return p


def build(store, project, steps, executor, **kw):
    diff_ids, config = install_base(store) if not store.layers.exists() or not any(store.layers.iterdir()) \
        else kw.pop("_base")
    return build_steps(steps, store=store, base_diff_ids=diff_ids, image_config=config, spec_env={"LANG": "C"},
                       project_root=project, executor=executor, **kw), (diff_ids, config)


def layer_members(store, layer):
    from specs.digest import Digest
    data = gzip.decompress(store.blob_path(Digest.parse(layer.digest)).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: m for m in t}, {m.name: t.extractfile(m).read() for m in t if m.isreg()}


def test_steps_make_layers_with_whiteouts_and_copy(tmp_path, project):
    store = Store(tmp_path / "store")
    ex = ChrootExecutor()
    result, _ = build(store, project, steps_for(tmp_path), ex)
    assert [s.source for s in result.steps] == ["built", "metadata", "built", "metadata", "built"]
    assert len(ex.calls) == 2 and "GREETING=hello" in ex.calls[1].env and ex.calls[1].workdir == "/opt/app"
    first, _ = layer_members(store, result.steps[0].layer)
    assert "etc/.wh.removeme" in first and "opt/app/out" in first
    copy, _ = layer_members(store, result.steps[2].layer)
    m = copy["opt/app/requirements.txt"]
    assert (m.uid, m.gid, m.mode) == (1000, 1000, 0o600)
    assert copy["opt"].mode == 0o755 and copy["opt"].uid == 0  # parents keep the lower's metadata
    _, files = layer_members(store, result.steps[4].layer)
    assert files["opt/app/greeting"] == b"hello from /opt/app\nflask==3.0\n"
    assert result.context.workdir == "/opt/app" and ("GREETING", "hello") in result.context.env
    for s in result.layers:  # every step layer is in the store, in overlay form
        from specs.digest import Digest
        assert store.has_layer(Digest.parse(s.chain_id)) and store.has_blob(Digest.parse(s.digest))


def test_two_empty_stores_same_digests_and_cache_hits(tmp_path, project):
    ex = ChrootExecutor()
    a, base = build(Store(tmp_path / "a"), project, steps_for(tmp_path), ex)
    b, _ = build(Store(tmp_path / "b"), project, steps_for(tmp_path), ex)
    assert [s.lock_entry() for s in a.steps] == [s.lock_entry() for s in b.steps]
    calls = len(ex.calls)
    again, _ = build(Store(tmp_path / "a"), project, steps_for(tmp_path), ex, _base=base)
    assert len(ex.calls) == calls and again.executed == 0
    assert [s.source for s in again.steps if s.layer] == ["local"] * 3
    # editing the copied file rebuilds that step and the later one, nothing before
    (project / "requirements.txt").write_text("flask==3.1\n")
    edited, _ = build(Store(tmp_path / "a"), project, steps_for(tmp_path), ex, _base=base)
    assert [s.source for s in edited.steps if s.layer] == ["local", "built", "built"]
    assert edited.steps[0].lock_entry() == a.steps[0].lock_entry()
    assert edited.steps[2].layer.diff_id != a.steps[2].layer.diff_id


def test_failed_step_reports_and_keeps_earlier_layers(tmp_path, project):
    store = Store(tmp_path / "s")
    ex = ChrootExecutor()
    steps = (Step("run", run="echo one > /one"),
             Step("run", run="echo some output; echo 'oh no' >&2; exit 3"))
    with pytest.raises(BuildError) as e:
        build(store, project, steps, ex)
    msg = str(e.value)
    assert "step 2" in msg and "exit status 3" in msg and "oh no" in msg and "some output" in msg
    assert len(list((store.root / "cache" / "steps").iterdir())) == 1  # only the first step cached
    assert not any(store.tmp.iterdir())  # the failed upperdir is gone
    ok = (Step("run", run="echo one > /one"), Step("run", run="true"))
    from tests.fixtures import build_env

    res = build_steps(ok, store=store, base_diff_ids=[_base_diff(store)], image_config=build_env.BASE_CONFIG,
                      spec_env={"LANG": "C"}, project_root=project, executor=ex)
    assert [s.source for s in res.steps] == ["local", "built"]


def _base_diff(store):
    import json
    for d in store.layers.iterdir():
        meta = json.loads((d / "layer.json").read_text())
        if "builtBy" not in meta:
            return meta["diffID"]


def test_copy_refuses_paths_outside_project(tmp_path, project):
    with pytest.raises(BuildError, match="leaves the project"):
        build(Store(tmp_path / "s"), project, (Step("copy", src="../x", dest="/x"),), ChrootExecutor())


def test_real_overlay_whiteouts_and_opaque_dirs_round_trip(tmp_path, project):
    """A step that deletes and recreates a lower directory: overlayfs marks it opaque; the layer
    says .wh..wh..opq; unpacked again (engine.layers.unpack) it hides the lower directory the same way."""
    from engine.layers.diff import compare, summarize_tree
    from engine.layers.snapshots import default_options
    from engine.layers.unpack import unpack_tar
    from specs.digest import Digest

    store = Store(tmp_path / "s")
    steps = (Step("run", run="rm -rf /etc && mkdir /etc && echo only > /etc/only && rm /bin/ls"),)
    result, _ = build(store, project, steps, ChrootExecutor())
    members, _ = layer_members(store, result.steps[0].layer)
    assert {"etc/.wh..wh..opq", "etc/only", "bin/.wh.ls"} <= set(members)
    upper = store.layer_root(Digest.parse(result.steps[0].layer.chain_id))
    out = tmp_path / "unpacked"
    out.mkdir()
    data = gzip.decompress(store.blob_path(Digest.parse(result.steps[0].layer.digest)).read_bytes())
    unpack_tar(io.BytesIO(data), out, default_options())
    a, b = summarize_tree(upper), summarize_tree(out)
    # whiteout devices: overlayfs makes them mode 0000, the unpacker 0600; both mean "deleted"
    strip = lambda d: {k: v.__class__(**{**v.__dict__, "xattrs": (), "mtime": 0,  # noqa: E731
                                         "mode": 0 if v.type == "char" else v.mode}) for k, v in d.items()}
    assert compare(strip(a), strip(b)) == []
    assert os.getxattr(out / "etc", "trusted.overlay.opaque") == b"y"
