"""engine.build.cache + engine.build.copy_inputs: the step cache key changes exactly when its inputs change."""

import os
from dataclasses import dataclass

import pytest

from engine.build.cache import CachedLayer, LocalCache, StepContext, cache_key
from engine.build.copy_inputs import IgnoreRules, collect_copy
from engine.errors import BuildError

PARENT = "sha256:" + "a" * 64
CTX = StepContext(env=(("A", "1"),), workdir="/workspace", user=None, shell="/bin/sh")


@dataclass(frozen=True)
class Step:  # stands in for specs.model steps: a frozen dataclass with kind + fields
    kind: str
    run: str | None = None
    src: tuple = ()
    dest: str | None = None
    reproducible: bool = True


def project(tmp_path):
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "requirements.txt").write_text("flask==3.0\n")
    (root / "src" / "pkg" / "a.py").write_text("print(1)\n")
    (root / "src" / "pkg" / "b.pyc").write_text("junk")
    (root / "src" / "build").mkdir()
    (root / "src" / "build" / "out").write_text("junk")
    (root / ".envctlignore").write_text("# comment\n*.pyc\nbuild/\n")
    return root


def test_key_stable_and_sensitive():
    step = Step("run", run="echo hi")
    k = cache_key(PARENT, step, CTX)
    assert k == cache_key(PARENT, step, CTX) and k.startswith("sha256:")
    assert cache_key("sha256:" + "b" * 64, step, CTX) != k
    assert cache_key(PARENT, Step("run", run="echo ho"), CTX) != k
    assert cache_key(PARENT, step, StepContext((("A", "2"),), "/workspace", None, "/bin/sh")) != k
    assert cache_key(PARENT, step, StepContext((("A", "1"),), "/src", None, "/bin/sh")) != k
    # marking a step non-reproducible changes reporting, not the layer
    assert cache_key(PARENT, Step("run", run="echo hi", reproducible=False), CTX) == k


def test_copy_key_follows_content_and_mode_not_mtime(tmp_path):
    root = project(tmp_path)
    step = Step("copy", src=("requirements.txt",), dest="/tmp/")
    key = lambda: cache_key(PARENT, step, CTX, collect_copy(root, list(step.src), step.dest))  # noqa: E731
    k = key()
    os.utime(root / "requirements.txt", (10, 10))
    assert key() == k
    (root / "requirements.txt").write_text("flask==3.1\n")
    k2 = key()
    assert k2 != k
    os.chmod(root / "requirements.txt", 0o755)
    assert key() != k2
    (root / "unrelated.txt").write_text("x")
    assert key() != k  # unrelated files are not inputs
    assert key() == key()


def test_ignored_files_are_not_inputs(tmp_path):
    root = project(tmp_path)
    items = collect_copy(root, ["src"], "/app")
    assert [i.dest for i in items] == \
        ["/app/pkg", "/app/pkg/a.py"]
    step = Step("copy", src=("src",), dest="/app")
    k = cache_key(PARENT, step, CTX, items)
    (root / "src" / "pkg" / "c.pyc").write_text("more junk")
    assert cache_key(PARENT, step, CTX, collect_copy(root, ["src"], "/app")) == k


def test_copy_destinations(tmp_path):
    root = project(tmp_path)
    assert [i.dest for i in collect_copy(root, ["requirements.txt"], "/tmp/r.txt")] == ["/tmp/r.txt"]
    assert [i.dest for i in collect_copy(root, ["requirements.txt"], "/tmp/")] == ["/tmp/requirements.txt"]
    assert [i.dest for i in collect_copy(root, ["requirements.txt"], "rel/", workdir="/w")] == \
        ["/w/rel/requirements.txt"]
    assert [i.dest for i in collect_copy(root, ["src/pkg/*.py"], "/x")] == ["/x/a.py"]


@pytest.mark.parametrize("src", ["../outside", "/etc/passwd", "src/../../x"])
def test_paths_leaving_project_refused(tmp_path, src):
    root = project(tmp_path)
    with pytest.raises(BuildError, match="leaves the project"):
        collect_copy(root, [src], "/x")


def test_symlink_out_of_project_refused(tmp_path):
    root = project(tmp_path)
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", root / "link")
    with pytest.raises(BuildError, match="outside the project"):
        collect_copy(root, ["link"], "/x")


def test_missing_source(tmp_path):
    with pytest.raises(BuildError, match="no such file"):
        collect_copy(project(tmp_path), ["nope.txt"], "/x")


@pytest.mark.parametrize("pattern,path,is_dir,ignored", [
    ("*.pyc", "a/b/c.pyc", False, True),
    ("/top.txt", "top.txt", False, True),
    ("/top.txt", "sub/top.txt", False, False),
    ("build/", "build", True, True),
    ("build/", "build", False, False),
    ("build/", "x/build/y", False, True),
    ("docs/**/*.md", "docs/a/b/c.md", False, True),
    ("docs/**/*.md", "docs/c.md", False, True),
    ("**/node_modules", "a/node_modules", True, True),
])
def test_ignore_rules(pattern, path, is_dir, ignored):
    assert IgnoreRules([pattern]).ignored(path, is_dir) is ignored


def test_ignore_negation_last_wins():
    rules = IgnoreRules(["*.log", "!keep.log"])
    assert rules.ignored("a.log", False) and not rules.ignored("keep.log", False)


def test_local_cache_roundtrip(tmp_path):
    cache = LocalCache(tmp_path)
    key = "sha256:" + "c" * 64
    assert cache.get(key) is None
    layer = CachedLayer("sha256:" + "1" * 64, "sha256:" + "2" * 64, 12, "application/vnd.oci.image.layer.v1.tar+gzip",
                        "sha256:" + "3" * 64)
    cache.put(key, layer)
    assert cache.get(key) == layer


def test_lock_step_entries_merge_platforms_until_a_step_changes():
    from engine.build.steps import StepOutcome
    from engine.build.records import compare_with_lock, merge_step_entries

    def layer(n):
        return CachedLayer(f"sha256:{n * 64}", f"sha256:{n * 64}", 1, "application/vnd.oci.image.layer.v1.tar+gzip",
                           f"sha256:{n * 64}")

    amd = [StepOutcome(0, "run", "sha256:" + "a" * 64, layer("1"), "built", True, "sha256:" + "d" * 64),
           StepOutcome(1, "env", None, None, "metadata", True, "sha256:" + "e" * 64),
           StepOutcome(2, "run", "sha256:" + "b" * 64, layer("2"), "built", False, "sha256:" + "f" * 64)]
    steps = merge_step_entries([], amd, "linux/amd64")
    assert [sorted(s) for s in steps] == [["index", "kind", "platforms", "reproducible", "step"],
                                         ["index", "kind", "step"],
                                         ["index", "kind", "platforms", "reproducible", "step"]]
    arm = [StepOutcome(o.index, o.kind, o.cache_key, layer("3") if o.layer else None, "built", o.reproducible,
                       o.step_digest) for o in amd]
    both = merge_step_entries(steps, arm, "linux/arm64")
    assert sorted(both[0]["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert compare_with_lock(both, amd, "linux/amd64") == []
    # the first step changes: the other platform's records are stale from there on
    changed = [StepOutcome(0, "run", "sha256:" + "c" * 64, layer("4"), "built", True, "sha256:" + "9" * 64)] + arm[1:]
    after = merge_step_entries(both, changed, "linux/arm64")
    assert all(sorted(e.get("platforms", {"linux/arm64": 1})) == ["linux/arm64"] for e in after)
    (m,) = compare_with_lock(after, [changed[0]], "linux/amd64")
    assert m.locked is None and m.index == 0


def test_umask_does_not_change_copy_inputs(tmp_path):
    root = project(tmp_path)
    os.chmod(root / "requirements.txt", 0o664)
    (item,) = collect_copy(root, ["requirements.txt"], "/tmp/")
    assert item.mode == 0o644


def test_source_date_epoch_is_in_the_key():
    step = Step("run", run="echo hi")
    assert cache_key(PARENT, step, CTX, epoch=0) != cache_key(PARENT, step, CTX, epoch=1700000000)
