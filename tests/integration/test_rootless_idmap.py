"""Rootless ID mapping end to end (issue 4 "rootless ... subordinate ID range", issue 5 "ID mapping").

An image whose layer has files of several owners (root, ``_apt``-like 100:101, nobody 65534, a
setgid ``shadow`` binary, a user's home) is unpacked rootless under the user's /etc/subuid range
and entered with ``envctl run -- stat``: every file shows its image owner. Without subuids
(``ENVCTL_SUBIDS=0``) the umoci-style fallback keeps the owner in ``user.rootlesscontainers``;
a store switching modes keeps the two kinds of layers apart; keep-id ``user:`` environments get
per-mapping layer copies and project files owned by the host user; gc removes subuid-owned trees.
Real components: the loopback registry, the CLI as an unprivileged user, newuidmap, overlayfs.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.fixtures.images import MTIME, LayoutBuilder, busybox_files, tar_layer

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n_apt:x:100:65534::/nonexistent:/bin/false\n"
          b"dev:x:1000:1000::/home/dev:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n")
GROUP = b"root:x:0:\nshadow:x:42:\nsystemd:x:101:\ndev:x:1000:\nnogroup:x:65534:\n"

# path -> (type, uid, gid, mode); parents of these are root-owned 0755 dirs
OWNED = {
    "var/cache/apt/archives/partial": ("dir", 100, 101, 0o700),
    "etc/shadow": ("file", 0, 42, 0o640),
    "usr/bin/chage": ("file", 0, 42, 0o2755),
    "srv/nobody": ("file", 65534, 65534, 0o644),
    "home/dev": ("dir", 1000, 1000, 0o755),
    "home/dev/.profile": ("file", 1000, 1000, 0o644),
    "srv/apt-link": ("symlink", 100, 101, 0o777),
}
EXPECT = {"/" + p: f"{u}:{g}" for p, (_t, u, g, _m) in OWNED.items()}
EXPECT.update({"/etc/passwd": "0:0", "/bin/busybox": "0:0", "/": "0:0", "/etc": "0:0"})


def _owners_layer() -> bytes:
    buf = io.BytesIO()
    dirs = sorted({str(Path(p).parents[i]) for p in OWNED for i in range(len(Path(p).parts) - 1)})
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(ti)
        for name, (kind, uid, gid, mode) in sorted(OWNED.items()):
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mode, ti.mtime = uid, gid, mode, MTIME
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, "nobody"
                tar.addfile(ti)
            else:
                ti.size = 3
                tar.addfile(ti, io.BytesIO(b"abc"))
    return buf.getvalue()


@pytest.fixture(scope="session")
def owners_image(registry, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("idmap-images")
    lb = LayoutBuilder(root / "layout")
    base = tar_layer(busybox_files({"etc/passwd": PASSWD, "etc/group": GROUP}))
    lb.tag(lb.image([base, _owners_layer()]), "owners")
    registry.push(lb.root, "owners", "envctl/idmap", "owners", all=False)
    lb.tag(lb.image([base, *_link_layers()]), "hardlink")
    registry.push(lb.root, "hardlink", "envctl/idmap", "hardlink", all=False)
    return f"{registry.host}/envctl/idmap:owners"


def _link_layers() -> list[bytes]:
    """A file inside an ``_apt``-style 0700 directory, then a layer hardlinking to it."""
    out = []
    for step in (0, 1):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if step == 0:
                ti = tarfile.TarInfo("secret")
                ti.type, ti.uid, ti.gid, ti.mode, ti.mtime = tarfile.DIRTYPE, 100, 101, 0o700, MTIME
                tar.addfile(ti)
                ti = tarfile.TarInfo("secret/f")
                ti.uid, ti.gid, ti.size, ti.mtime = 100, 101, 1, MTIME
                tar.addfile(ti, io.BytesIO(b"x"))
            else:
                ti = tarfile.TarInfo("hl")
                ti.type, ti.linkname, ti.mtime = tarfile.LNKTYPE, "secret/f", MTIME
                tar.addfile(ti)
        out.append(buf.getvalue())
    return out


STAT = ["run", "--", "/bin/busybox", "stat", "-c", "%u:%g %n", *EXPECT]


def _stat(stdout: str) -> dict:
    return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in stdout.splitlines() if " " in line}


class _Proj:
    """A project directory and store owned by the rootless user."""

    def __init__(self, user, image: str, extra: str = ""):
        self.user, self.work = user, user.tmpdir()
        self.proj, self.home = self.work / "proj", self.work / "store"
        user.run(["mkdir", "-p", str(self.proj)], check=True)
        self.write(f"version: 1\nimage: {image}\n{extra}")

    def write(self, text: str) -> None:
        self.user.run(["sh", "-c", f"cat > {self.proj}/envctl.yaml"], input=text, check=True)

    def envctl(self, *args, env=None, ok=True):
        r = self.user.envctl(*args, cwd=self.proj, env={"ENVCTL_HOME": str(self.home), **(env or {})}, timeout=300)
        if ok:
            assert r.returncode == 0, f"envctl {' '.join(args)}: {r.stdout}\n{r.stderr}"
        return r

    def up(self, env=None) -> dict:
        return json.loads(self.envctl("up", "--json", env=env).stdout)

    def close(self) -> None:
        subprocess.run(["rm", "-rf", str(self.work)], check=True)


@pytest.mark.rootless
def test_rootless_subuids_fallback_and_switching_modes_then_gc(rootless_user, owners_image):
    p = _Proj(rootless_user, owners_image)
    try:
        sub = p.up()
        lowers = [Path(x) for x in sub["rootfs"]["lowerdirs"]]
        assert all("." in x.parent.name for x in lowers), lowers     # layers/<hex>.<mapping key>
        meta = json.loads((lowers[0].parent / "layer.json").read_text())
        assert meta["idMap"] == lowers[0].parent.name.split(".")[1]
        assert meta["idMappings"]["uidMappings"][0] == [0, rootless_user.uid, 1]
        # on the host: image owners shifted into the subordinate range (165536 + id - 1)
        st = os.lstat(lowers[0] / "etc/shadow")
        assert (st.st_uid, st.st_gid) == (rootless_user.uid, _subgid(rootless_user) + 41)
        assert os.lstat(lowers[0] / "usr/bin/chage").st_mode & 0o7777 == 0o2755
        r = p.envctl(*STAT)
        assert _stat(r.stdout) == EXPECT, r.stdout
        r = p.envctl("run", "--", "/bin/busybox", "stat", "-c", "%a", "/usr/bin/chage", "/var/cache/apt/archives/partial")
        assert r.stdout.split() == ["2755", "700"]
        assert "store ok" in p.envctl("store", "fsck").stdout

        # the copy driver (no overlay) copies subuid layers inside the namespace: same owners
        cp = {"ENVCTL_STORAGE_DRIVER": "copy"}
        assert p.up(env=cp)["rootfs"]["driver"] == "copy"
        assert _stat(p.envctl(*STAT, env=cp).stdout) == EXPECT
        p.envctl("down", "--reset", env=cp)

        # fallback: no subordinate ids -> every owner is the user (root inside), the image owner in the xattr
        off = {"ENVCTL_SUBIDS": "0"}
        fb = p.up(env=off)
        fb_lowers = [Path(x) for x in fb["rootfs"]["lowerdirs"]]
        assert fb["layersUnpacked"] == 2 and all("." not in x.parent.name for x in fb_lowers)
        shadow = fb_lowers[0] / "etc/shadow"
        assert os.lstat(shadow).st_uid == rootless_user.uid
        assert os.getxattr(shadow, "user.rootlesscontainers") == b"\x08\x00\x10\x2a"   # uid 0, gid 42
        partial = fb_lowers[0] / "var/cache/apt/archives/partial"
        assert os.getxattr(partial, "user.rootlesscontainers") == b"\x08\x64\x10\x65"  # 100:101
        r = p.envctl(*STAT, env=off)
        assert set(_stat(r.stdout).values()) == {"0:0"}, r.stdout
        assert "store ok" in p.envctl("store", "fsck", env=off).stdout

        # back to subuids: the mapped layers are reused, never the fallback ones
        again = p.up()
        assert again["layersCached"] == 2 and again["layersUnpacked"] == 0
        assert again["rootfs"]["lowerdirs"] == sub["rootfs"]["lowerdirs"]
        assert _stat(p.envctl(*STAT).stdout) == EXPECT

        # the env's upper now holds a subuid-owned file: a reset and gc must remove it rootless
        p.envctl("run", "--", "/bin/busybox", "sh", "-c",
                 "mkdir -m 700 /var/cache/apt/archives/partial/x && chown -R 100:101 /var/cache/apt/archives/partial")
        p.envctl("down", "--reset")
        p.user.run(["rm", str(p.proj / "envctl.lock")], check=True)
        r = p.envctl("gc", "--json")
        assert json.loads(r.stdout)["bytesFreed"] > 0
        assert list((p.home / "layers").iterdir()) == [] and list((p.home / "envs").iterdir()) == []
    finally:
        p.close()


def _subgid(user) -> int:
    for line in Path("/etc/subgid").read_text().splitlines():
        f = line.split(":")
        if f[0] == user.name:
            return int(f[1])
    raise AssertionError("no /etc/subgid entry for the test user")


@pytest.mark.rootless
def test_rootless_keep_id_user_sees_image_owners_and_owns_project_files(rootless_user, owners_image):
    steps = ("user: dev\nsteps:\n  - run: [/bin/busybox, sh, -c, 'mkdir /home/dev/made && touch /home/dev/made/f && chown 100:101 /home/dev/made/f']\n")
    p = _Proj(rootless_user, owners_image, steps)
    try:
        info = p.up()
        lowers = [Path(x) for x in info["rootfs"]["lowerdirs"]]
        assert len(lowers) == 3 and len({x.parent.name.split(".")[1] for x in lowers}) == 1
        # the step ran as root (a spec-level ``user:`` applies to the environment, not to steps)
        r = p.envctl(*STAT, "/home/dev/made", "/home/dev/made/f")
        assert _stat(r.stdout) == EXPECT | {"/home/dev/made": "0:0", "/home/dev/made/f": "100:101"}, r.stdout
        r = p.envctl("run", "--", "/bin/busybox", "sh", "-c", "id -u; touch /workspace/created; echo ok > /home/dev/x")
        assert r.stdout.split() == ["1000"], r.stderr
        assert (p.proj / "created").stat().st_uid == rootless_user.uid
        # the standard-mapping copies stay for root environments of the same image
        std = [d for d in (p.home / "layers").iterdir() if d.name.split(".")[1] != lowers[0].parent.name.split(".")[1]]
        assert len(std) == 3
        assert "store ok" in p.envctl("store", "fsck").stdout
        p.user.run(["rm", str(p.proj / "envctl.lock")], check=True)
        p.envctl("gc")
        assert list((p.home / "layers").iterdir()) == []
    finally:
        p.close()


@pytest.mark.needs_root
def test_root_unpack_keeps_real_owners(owners_image, tmp_path, envctl_home):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {owners_image}\n")
    env = dict(os.environ, ENVCTL_HOME=str(envctl_home))
    r = subprocess.run([sys.executable, "-m", "envctl", *STAT], cwd=proj, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _stat(r.stdout) == EXPECT, r.stdout
    assert all("." not in d.name for d in (envctl_home / "layers").iterdir())


@pytest.mark.rootless
def test_rootless_hardlink_into_an_unreadable_lower_dir_is_one_clear_error(rootless_user, owners_image):
    # known gap (docs/rootless-idmap.md): the host-side unpack cannot read a lower layer's 0700
    # directory of a subordinate id; it says so and how to get past it, without a traceback
    p = _Proj(rootless_user, owners_image.replace(":owners", ":hardlink"))
    try:
        r = p.envctl("up", ok=False)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "not readable outside the user namespace" in r.stderr and "ENVCTL_SUBIDS=0" in r.stderr, r.stderr
        assert not any((p.home / "tmp").iterdir())
        off = {"ENVCTL_SUBIDS": "0"}
        p.up(env=off)
        r = p.envctl("run", "--", "/bin/busybox", "cat", "/hl", env=off)
        assert r.stdout == "x"
    finally:
        p.close()
