"""Environments' and build steps' overlays are mounted with redirects and metacopy off, explicitly
(engine.layers.writer refuses those xattrs in an upper dir; kernel defaults vary), and the kernel
accepts the options as root and rootless (``userxattr``, where only ``redirect_dir=nofollow`` is
allowed). The mounts are real, made by runtime.mounts in private mount namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime.mounts import overlay_options

REPO = Path(__file__).resolve().parents[2]

# mount through runtime.mounts._overlay (what apply_plan and the runc path call), report the
# superblock options the kernel shows, rename a lower directory in the merged view and list the
# xattrs the upper dir got
MOUNT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from runtime.mounts import _overlay
    from runtime.plan import MountOverlay
    base, rootless = sys.argv[2], sys.argv[3] == "1"
    op = MountOverlay([base + "/l"], base + "/u", base + "/w", base + "/m", rootless)
    _overlay(op, rootless)
    opts = [l.split()[-1] for l in open("/proc/self/mountinfo") if l.split()[4] == base + "/m"][0]
    try:
        os.rename(base + "/m/d", base + "/m/moved")
        renamed = "ok"
    except OSError as e:
        renamed = e.errno
    with open(base + "/m/moved/new" if renamed == "ok" else base + "/m/d/new", "w") as f:
        f.write("x")
    xattrs = {}
    for d, dirs, files in os.walk(base + "/u"):
        for n in dirs + files:
            p = os.path.join(d, n)
            names = [x for x in os.listxattr(p, follow_symlinks=False) if "overlay." in x]
            if names:
                xattrs[os.path.relpath(p, base + "/u")] = names
    print(json.dumps({"opts": opts, "renamed": renamed, "xattrs": xattrs}))
""")


def test_options_string():
    assert overlay_options(["/a", "/b"], "/u", "/w", False) == \
        "lowerdir=/a:/b,upperdir=/u,workdir=/w,redirect_dir=off,metacopy=off"
    assert overlay_options(["/a"], "/u", "/w", True) == \
        "lowerdir=/a,upperdir=/u,workdir=/w,redirect_dir=nofollow,metacopy=off,userxattr"


def _layout(base: Path) -> None:
    for d in ("l/d", "u", "w", "m"):
        (base / d).mkdir(parents=True)
    (base / "l/d/f").write_text("lower\n")


def _check(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert "metacopy=on" not in res["opts"] and "redirect_dir=on" not in res["opts"], res
    assert not [x for names in res["xattrs"].values() for x in names if "redirect" in x or "metacopy" in x], res
    return res


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root (CI runs as root)")
def test_root_overlay_accepts_the_options(tmp_path):
    _layout(tmp_path)
    r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", MOUNT, str(REPO),
                        str(tmp_path), "0"], capture_output=True, text=True, timeout=60)
    res = _check(r)
    assert res["renamed"] == 18   # EXDEV: with redirects off a merged lower dir cannot be renamed in place


@pytest.mark.rootless
def test_rootless_overlay_accepts_the_options(rootless_user):
    work = rootless_user.tmpdir()
    try:
        mk = rootless_user.run(["sh", "-c", 'mkdir -p "$1/l/d" "$1/u" "$1/w" "$1/m" && echo lower > "$1/l/d/f"',
                                "sh", str(work)])   # the user's own dirs, or the upper is not writable
        assert mk.returncode == 0, mk.stderr
        r = rootless_user.run(["unshare", "-Urm", rootless_user.python, "-c", MOUNT, str(REPO), str(work), "1"])
        res = _check(r)
        assert "redirect_dir=nofollow" in res["opts"] and "userxattr" in res["opts"], res
        assert res["renamed"] == 18
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)
