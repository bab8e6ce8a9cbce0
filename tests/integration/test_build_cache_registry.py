"""Registry build cache: build on store A with a registry cache, then on empty store B: no step runs."""

import os

import pytest

from engine.build.steps import build_steps
from engine.publish.registry_cache import RegistryCache, step_tag
from engine.store.cas import Store
from specs.digest import Digest
from specs.model import Step
from tests.fixtures.build_env import ChrootExecutor, install_base

pytestmark = [pytest.mark.needs_root, pytest.mark.registry]
if os.geteuid() != 0:
    pytest.skip("overlay mounts for the chroot executor need root", allow_module_level=True)

STEPS = (Step("run", run="echo one > /one && rm /etc/removeme"),
         Step("copy", src="app.txt", dest="/app/"),
         Step("run", run="cat /app/app.txt /one > /both"))


def build(store, project, executor, cache):
    diff_ids, config = install_base(store)
    return build_steps(STEPS, store=store, base_diff_ids=diff_ids, image_config=config, spec_env={},
                       project_root=project, executor=executor, remote=cache)


def test_second_store_downloads_instead_of_building(tmp_path, registry):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "app.txt").write_text("app\n")
    warnings = []
    ref = f"{registry.host}/envctl/cache"
    ex_a = ChrootExecutor()
    a = build(Store(tmp_path / "a"), project, ex_a, RegistryCache(ref, warn=warnings.append))
    assert a.executed == 3 and len(ex_a.calls) == 2  # two run steps, one copy
    key = a.steps[0].cache_key
    assert registry.skopeo_inspect("envctl/cache", step_tag(key), raw=True)

    ex_b = ChrootExecutor()
    cache_b = RegistryCache(ref, warn=warnings.append)
    store_b = Store(tmp_path / "b")
    b = build(store_b, project, ex_b, cache_b)
    assert ex_b.calls == [] and b.executed == 0 and cache_b.hits == 3
    assert [s.source for s in b.steps] == ["remote"] * 3
    assert [s.lock_entry() for s in b.steps] == [s.lock_entry() for s in a.steps]
    assert warnings == []
    # the fetched layers are real lowerdirs: the last one holds the file the step wrote
    top = store_b.layer_root(Digest.parse(b.steps[-1].layer.chain_id))
    assert (top / "both").read_text() == "app\none\n"


def test_unreachable_cache_only_warns(tmp_path):
    from tests.fixtures.registry import free_port

    project = tmp_path / "proj"
    project.mkdir()
    (project / "app.txt").write_text("app\n")
    warnings = []
    ex = ChrootExecutor()
    res = build(Store(tmp_path / "s"), project, ex, RegistryCache(f"127.0.0.1:{free_port()}/x/cache",
                                                                   warn=warnings.append))
    assert res.executed == 3 and len(ex.calls) == 2
    assert warnings and all("build cache" in w for w in warnings)
