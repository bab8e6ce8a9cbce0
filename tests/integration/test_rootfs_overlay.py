"""Real overlayfs mounts of unpacked layers, as root and rootless, and the copy driver beside them.

The layers (whiteouts, opaque dirs, a hardlink across layers, setuid, owners) are unpacked through
engine.layers.pull into a store owned by the running user, composed by engine.rootfs.compose, and mounted in a
private mount namespace (``unshare -m`` as root, ``unshare -Urm`` with ``userxattr`` as the
unprivileged test user). The merged view is listed from inside and compared exactly; the mount
dies with the namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.layers import E, tar_bytes

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and the rootless user need root (CI)")

LAYERS = [
    [E.dir("etc"), E.file("etc/a", b"A"), E.file("etc/b", b"B"), E.dir("etc/d"), E.file("etc/d/x", b"X"),
     E.dir("opt"), E.file("opt/old", b"old"), E.file("bin/busybox", b"BB", mode=0o755),
     E.dir("tmp", mode=0o1777), E.file("usr/bin/su", b"su", mode=0o4755),
     E.dir("ro", mode=0o555), E.file("ro/x", b"x", mode=0o400)],
    [E.whiteout("etc/a"), E.whiteout("etc/d"), E.dir("etc/d"), E.file("etc/d/y", b"Y"),
     E.dir("opt"), E.opaque("opt"), E.file("opt/new", b"new"), E.link("bin/sh", "bin/busybox"),
     E.file("home/u/f", b"F", uid=1000, gid=1000)],
]
EXPECTED = {
    "bin": ("dir", 0o755, None), "bin/busybox": ("file", 0o755, "BB"), "bin/sh": ("file", 0o755, "BB"),
    "etc": ("dir", 0o755, None), "etc/b": ("file", 0o644, "B"), "etc/d": ("dir", 0o755, None),
    "etc/d/y": ("file", 0o644, "Y"), "home": ("dir", 0o755, None), "home/u": ("dir", 0o755, None),
    "home/u/f": ("file", 0o644, "F"), "opt": ("dir", 0o755, None), "opt/new": ("file", 0o644, "new"),
    "tmp": ("dir", 0o1777, None), "usr": ("dir", 0o755, None), "usr/bin": ("dir", 0o755, None),
    "usr/bin/su": ("file", 0o4755, "su"), "ro": ("dir", 0o555, None), "ro/x": ("file", 0o400, "x"),
}

PREPARE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from engine.store.cas import Store
    from engine.layers.pull import LayerRef, ensure_layers
    from engine.rootfs.compose import compose
    from tests.fixtures.layers import DictSource, digest_of
    store, driver = Store(Path(sys.argv[2])), sys.argv[3]
    src, refs = DictSource(), []
    for p in sys.argv[4:]:
        t = Path(p).read_bytes()
        refs.append(LayerRef(src.add(t), digest_of(t), len(t), None))
    rep = ensure_layers(store, lambda: src, refs, warn=lambda m: print(m, file=sys.stderr))
    plan, reset = compose(store, "testenv", rep.lowerdirs, rep.chain_ids, driver=driver)
    print(json.dumps(plan))
""")

# Runs inside the new mount namespace: mount as the runtime does (paths relative to their common
# base, so long chains fit in a page), list the merged tree, write into it, list the upper dir.
MOUNT_AND_LIST = textwrap.dedent("""
    import json, os, stat, subprocess, sys
    plan = json.loads(sys.argv[1])
    base = os.path.commonpath([*plan["lowerdirs"], plan["upperdir"], plan["workdir"]])
    os.chdir(base)
    rel = lambda p: os.path.relpath(p, base)
    opts = (f"lowerdir={':'.join(map(rel, plan['lowerdirs']))},upperdir={rel(plan['upperdir'])},"
            f"workdir={rel(plan['workdir'])}" + (",userxattr" if plan["userxattr"] else ""))
    assert len(opts) < 4096, len(opts)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, plan["merged"]], check=True)
    out = {}
    for d, dirs, files in os.walk(plan["merged"]):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
            body = open(p).read() if kind == "file" and st.st_size < 100 else None
            out[os.path.relpath(p, plan["merged"])] = (kind, stat.S_IMODE(st.st_mode), body)
    if "etc/b" in out:
        with open(os.path.join(plan["merged"], "etc/b"), "w") as f:
            f.write("changed")
        os.unlink(os.path.join(plan["merged"], "opt/new"))
    print(json.dumps(out))
""")


def _tars(d: Path, layers) -> list[str]:
    paths = []
    for i, entries in enumerate(layers):
        p = d / f"layer{i}.tar"
        p.write_bytes(tar_bytes(entries))
        paths.append(str(p))
    return paths


def _prepare(run, work: Path, driver: str, layers=LAYERS) -> dict:
    tars = _tars(work, layers)
    r = run([sys.executable, "-c", PREPARE, str(REPO), str(work / "store"), driver, *tars])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _mount_and_list(run, plan: dict, unshare: list[str]) -> dict:
    r = run([*unshare, sys.executable, "-c", MOUNT_AND_LIST, json.dumps(plan)])
    assert r.returncode == 0, r.stderr
    return {k: tuple(v) for k, v in json.loads(r.stdout).items()}


def _fallback(user):
    """Run as ``user`` with the umoci-style rootless unpack (no subordinate ids: engine/store/idmap.py),
    the form these tests assert and that ``unshare -Ur``'s single mapping can mount."""
    return lambda argv: user.run(argv, env={"ENVCTL_SUBIDS": "0"})


def _root_run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_overlay_as_root(tmp_path):
    plan = _prepare(_root_run, tmp_path, "overlay")
    assert plan["userxattr"] is False and len(plan["lowerdirs"]) == 2
    assert _mount_and_list(_root_run, plan, ["unshare", "-m"]) == EXPECTED
    upper = Path(plan["upperdir"])
    assert (upper / "etc/b").read_text() == "changed"
    assert os.stat(upper / "opt/new").st_rdev == 0  # overlay's own whiteout in the upper dir
    assert os.stat(Path(plan["lowerdirs"][1]) / "usr/bin/su").st_mode & 0o4000
    assert os.stat(Path(plan["lowerdirs"][0]) / "home/u/f").st_uid == 1000


def test_overlay_rootless_in_a_user_namespace(rootless_user):
    work = rootless_user.tmpdir()
    try:
        plan = _prepare(_fallback(rootless_user), work, "overlay")
        assert plan["userxattr"] is True
        listed = _mount_and_list(rootless_user.run, plan, ["unshare", "-Urm"])
        assert listed == EXPECTED
        top = Path(plan["lowerdirs"][0])
        assert os.stat(top / "home/u/f").st_uid == rootless_user.uid
        assert os.getxattr(top / "home/u/f", "user.rootlesscontainers") == b"\x08\xe8\x07\x10\xe8\x07"
        assert os.getxattr(top / "opt", "user.overlay.opaque") == b"y"
        assert (Path(plan["upperdir"]) / "etc/b").read_text() == "changed"
        # the user can delete its own layers although they hold 0555 directories (gc's remove_tree)
        r = rootless_user.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                               f"from engine.store.fsutil import remove_tree; remove_tree({str(work / 'store/layers')!r})"])
        assert r.returncode == 0 and not (work / "store/layers").exists(), r.stderr
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)


def _listing(root: Path) -> dict:
    listed = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = Path(d, n)
            st = os.lstat(p)
            kind = "dir" if p.is_dir() else "file"
            listed[str(p.relative_to(root))] = (kind, st.st_mode & 0o7777,
                                                p.read_text() if kind == "file" else None)
    return listed


def test_copy_driver_matches_the_overlay_view(tmp_path):
    plan = _prepare(_root_run, tmp_path, "copy")
    assert _listing(Path(plan["path"])) == EXPECTED
    assert os.stat(Path(plan["path"]) / "home/u/f").st_uid == 1000


def test_copy_driver_rootless(rootless_user):
    work = rootless_user.tmpdir()
    try:
        plan = _prepare(_fallback(rootless_user), work, "copy")
        root = Path(plan["path"])
        assert _listing(root) == EXPECTED
        assert os.stat(root / "home/u/f").st_uid == rootless_user.uid
        assert os.getxattr(root / "home/u/f", "user.rootlesscontainers") == b"\x08\xe8\x07\x10\xe8\x07"
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)


def test_many_layers_fit_the_mount_option_limit(tmp_path):
    layers = [[E.file(f"l/{i:03d}", str(i).encode())] for i in range(120)]
    plan = _prepare(_root_run, tmp_path, "overlay", layers)
    assert all("/l/" in p for p in plan["lowerdirs"])  # short links instead of 120 long paths
    listed = _mount_and_list(_root_run, plan, ["unshare", "-m"])
    assert listed["l/119"] == ("file", 0o644, "119") and len(listed) == 121


def test_upper_kept_while_layers_unchanged_and_reset_when_they_change(tmp_path):
    from engine.rootfs.compose import compose, reset_env
    from engine.store.cas import Store
    from specs.digest import Digest

    store = Store(tmp_path / "s").ensure()
    low = [tmp_path / "l1"]
    low[0].mkdir()
    chain = [Digest.from_bytes(b"1")]
    plan, reset = compose(store, "e", low, chain, driver="overlay")
    (Path(plan["upperdir"]) / "mine").write_text("user change")
    plan, reset = compose(store, "e", low, chain, driver="overlay")
    assert not reset and (Path(plan["upperdir"]) / "mine").exists()
    notices = []
    plan, reset = compose(store, "e", low, [Digest.from_bytes(b"2")], driver="overlay", notice=notices.append)
    assert reset and not (Path(plan["upperdir"]) / "mine").exists()
    assert notices == ["the environment's layers changed: its changes to the root filesystem were reset"]
    (Path(plan["upperdir"]) / "again").write_text("x")
    reset_env(store, "e")
    assert not Path(plan["upperdir"]).exists()
