"""``envctl up`` against the loopback registry: cold/warm, sharing, crashes, concurrency, gc, fsck.

A changed unpacked layer: ``store fsck`` quarantines it and ``up`` repairs it; after the quarantine
``envctl run`` (fast entry and full CLI) brings the environment up again (unpacks the layer)
instead of failing with a bare mount error; ``envctl verify`` re-checks the layers the environment
uses (fsck's tree comparison, read-only) and fails on the changed one.

Real components only: docker-registry on 127.0.0.1 (tests.fixtures.registry), a throttling
forwarder in front of it when a test must act mid-download (tests.fixtures.throttle), the CLI in
subprocesses, SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envctl import _fast
from envctl.commands._enter import rootfs_present
from tests.fixtures.images import LayoutBuilder, busybox_files, tar_layer
from tests.fixtures.throttle import Throttle

pytestmark = [pytest.mark.registry, pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]


def _many_files_layer(n: int, big: int) -> bytes:
    rnd = random.Random(7)
    files = {"data/": ("dir",), "data/big.bin": rnd.randbytes(big)}
    for i in range(n):
        files.setdefault(f"data/d{i % 40}/", ("dir",))
        files[f"data/d{i % 40}/f{i}"] = b"x" * 100
    files["etc/"] = ("dir",)
    files["etc/.wh.group"] = b""
    return tar_layer(files)


def _hostile_layer() -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in ("etc/ok", "../../../../tmp/envctl-escaped"):
            ti = tarfile.TarInfo(name)
            ti.size = 3
            tf.addfile(ti, io.BytesIO(b"bad"))
    return buf.getvalue()


@pytest.fixture(scope="session")
def up_images(registry, tmp_path_factory):
    """{"base2": ref, "other": ref, "big": ref} pushed to the loopback registry; base shared."""
    root = tmp_path_factory.mktemp("up-images")
    lb = LayoutBuilder(root / "layout")
    base = tar_layer(busybox_files())
    lb.tag(lb.image([base, tar_layer({"etc/": ("dir",), "etc/which": b"base2\n"})]), "base2")
    lb.tag(lb.image([base, tar_layer({"etc/": ("dir",), "etc/which": b"other\n"})]), "other")
    lb.tag(lb.image([base, _many_files_layer(6000, 6 << 20)]), "big")
    lb.tag(lb.image([base, _hostile_layer()]), "hostile")
    refs = {}
    for name in ("base2", "other", "big", "hostile"):
        registry.push(lb.root, name, "envctl/up", name, all=False)
        refs[name] = f"envctl/up:{name}"
    return refs


def project(tmp_path: Path, image: str, name: str = "proj") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "envctl.yaml").write_text(f"version: 1\nimage: {image}\n")
    return d


def envctl(*args, cwd, home, timeout=120, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, ENVCTL_HOME=str(home))
    r = subprocess.run([sys.executable, "-m", "envctl", *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"envctl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def popen_up(cwd, home) -> subprocess.Popen:
    env = dict(os.environ, ENVCTL_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "envctl", "up", "--json"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if v := cond():
            return v
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def up_json(r) -> dict:
    return json.loads(r.stdout)


def test_cold_then_warm_up_makes_no_network_call(registry_proxy, up_images, tmp_path, envctl_home):
    proxy = registry_proxy()
    proj = project(tmp_path, f"{proxy.host}/{up_images['base2']}")
    cold = up_json(envctl("up", "--json", cwd=proj, home=envctl_home))
    assert (cold["layersUnpacked"], cold["layersCached"]) == (2, 0) and cold["downloadedBytes"] > 0
    n = len(proxy.requests)
    warm = envctl("up", "--json", cwd=proj, home=envctl_home)
    assert len(proxy.requests) == n  # not one request: lock, config, manifest and layers all cached
    assert (up_json(warm)["layersUnpacked"], up_json(warm)["layersCached"]) == (0, 2)
    assert "2 cached" in warm.stderr and "ready" in warm.stderr
    env = json.loads(Path(up_json(warm)["envJson"]).read_text())
    assert env["rootfs"]["driver"] == "overlay" and len(env["rootfs"]["lowerdirs"]) == 2
    assert env["lockSha256"] and env["specSha256"] and env["imageConfig"]["Cmd"] == ["/bin/sh"]


def test_second_image_sharing_the_base_fetches_only_its_layer(registry_proxy, up_images, tmp_path, envctl_home):
    proxy = registry_proxy()
    a = project(tmp_path, f"{proxy.host}/{up_images['base2']}", "a")
    b = project(tmp_path, f"{proxy.host}/{up_images['other']}", "b")
    envctl("up", cwd=a, home=envctl_home)
    before = len(proxy.requests)
    rb = up_json(envctl("up", "--json", cwd=b, home=envctl_home))
    blob_gets = {r.path.rsplit(":", 1)[1] for r in proxy.requests[before:]
                 if "/blobs/" in r.path and r.method == "GET"}
    lock = json.loads((b / "envctl.lock").read_text())["platforms"]["linux/amd64"]
    layers = [x["digest"].split(":")[1] for x in lock["layers"]]
    assert (rb["layersUnpacked"], rb["layersCached"]) == (1, 1)
    # its config and its own top layer; the shared base layer is not fetched again
    assert blob_gets == {lock["config"]["digest"].split(":")[1], layers[1]}


def test_two_concurrent_ups_download_each_blob_once(registry, up_images, tmp_path, envctl_home):
    with Throttle(registry.url, rate=8 << 20) as t:
        a = project(tmp_path, f"{t.host}/{up_images['big']}", "a")
        b = project(tmp_path, f"{t.host}/{up_images['big']}", "b")
        for p in (a, b):  # lock first (cheap) so both ups race on the blobs
            envctl("lock", cwd=p, home=envctl_home)
        n = len(t.blob_gets())
        procs = [popen_up(a, envctl_home), popen_up(b, envctl_home)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        gets = [d for d, _ in t.blob_gets()[n:]]
    lock = json.loads((a / "envctl.lock").read_text())["platforms"]["linux/amd64"]
    wanted = [x["digest"] for x in lock["layers"]] + [lock["config"]["digest"]]
    assert sorted(gets) == sorted(wanted), "each blob exactly once across both processes"
    results = [json.loads(o[0]) for o in outs]
    assert sum(r["layersUnpacked"] for r in results) == 2  # the work is shared, never repeated


def test_sigkill_mid_download_then_fsck_clean_and_resume(registry, up_images, tmp_path, envctl_home):
    # The forwarder stops the big layer's body after 2 MiB until released, so the kill lands
    # mid-download however loaded the machine is (the smaller base layer passes whole).
    with Throttle(registry.url, rate=2 << 20, hold_after=2 << 20) as t:
        proj = project(tmp_path, f"{t.host}/{up_images['big']}")
        envctl("lock", cwd=proj, home=envctl_home)
        layers = [x["digest"].split(":")[1]
                  for x in json.loads((proj / "envctl.lock").read_text())["platforms"]["linux/amd64"]["layers"]]
        p = popen_up(proj, envctl_home)
        tmp, blobs = envctl_home / "tmp", envctl_home / "blobs" / "sha256"

        def held_mid_download() -> list[Path]:
            if not t.held:
                return []
            held = t.held[0].split(":")[-1]
            partial = tmp / f"blob-{held}.partial"
            others = [h for h in layers if h != held]
            done = all((blobs / h).exists() for h in others)  # no other download still in flight
            return [partial] if done and partial.exists() and partial.stat().st_size > (1 << 20) else []

        partial = wait_for(held_mid_download, what="the big layer held mid-download with a partial over 1 MiB")
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        t.release()
        size = partial[0].stat().st_size
        assert (1 << 20) < size <= (2 << 20)
        fsck = envctl("store", "fsck", "--json", cwd=proj, home=envctl_home)
        rep = json.loads(fsck.stdout)
        assert rep["clean"] and rep["partialDownloads"] == [partial[0].name]
        assert not [x for x in tmp.iterdir() if not x.name.endswith(".partial")]
        r = up_json(envctl("up", "--json", cwd=proj, home=envctl_home))
        assert r["layersUnpacked"] >= 1
        ranges = [rng for d, rng in t.blob_gets() if rng]
    assert ranges and int(ranges[-1].split("=")[1].split("-")[0]) >= size - (1 << 20)
    assert json.loads(envctl("store", "fsck", "--json", cwd=proj, home=envctl_home).stdout)["clean"]


def test_sigkill_mid_unpack_then_fsck_clean_and_up_completes(registry, up_images, tmp_path, envctl_home):
    proj = project(tmp_path, f"{registry.host}/{up_images['big']}")
    envctl("up", cwd=proj, home=envctl_home)
    layers = envctl_home / "layers"
    for d in layers.iterdir():  # keep the blobs, drop the unpacked layers: the next up unpacks only
        subprocess.run(["rm", "-rf", str(d)], check=True)
    p = popen_up(proj, envctl_home)
    wait_for(lambda: [d for d in (envctl_home / "tmp").glob("layer-*/root/data/d*") if any(d.iterdir())],
             what="an unpack in progress")
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not [d for d in layers.iterdir() if not (d / "layer.json").exists()]  # nothing half-done
    rep = json.loads(envctl("store", "fsck", "--json", cwd=proj, home=envctl_home).stdout)
    assert rep["clean"] and rep["removedTmp"]
    r = up_json(envctl("up", "--json", cwd=proj, home=envctl_home))
    assert r["downloadedBytes"] == 0 and r["layersUnpacked"] + r["layersCached"] == 2
    top = Path(r["rootfs"]["lowerdirs"][0])
    assert len(list((top / "data").glob("d*/f*"))) == 6000 and (top / "data/big.bin").stat().st_size == 6 << 20


def test_fsck_quarantines_corruption_and_up_repairs(registry, up_images, tmp_path, envctl_home):
    proj = project(tmp_path, f"{registry.host}/{up_images['base2']}")
    r = up_json(envctl("up", "--json", cwd=proj, home=envctl_home))
    blob = next(p for p in (envctl_home / "blobs/sha256").iterdir() if p.stat().st_size > 100_000)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    top = Path(r["rootfs"]["lowerdirs"][0])
    os.chmod(top / "etc/which", 0o777)
    bad = envctl("store", "fsck", "--json", cwd=proj, home=envctl_home, check=False)
    rep = json.loads(bad.stdout)
    assert bad.returncode == 1 and len(rep["corrupt"]) == 2
    assert f"blob sha256:{blob.name}: content does not match its digest" in rep["corrupt"]
    assert any("unpacked tree changed" in c for c in rep["corrupt"])
    assert "quarantined" in bad.stderr
    again = up_json(envctl("up", "--json", cwd=proj, home=envctl_home))
    assert again["layersUnpacked"] == 1
    assert json.loads(envctl("store", "fsck", "--json", cwd=proj, home=envctl_home).stdout)["clean"]


def test_rootfs_present_same_in_fast_entry(tmp_path):
    (tmp_path / "a").mkdir()
    cases = [None, {}, {"driver": "overlay", "lowerdirs": []},
             {"driver": "overlay", "lowerdirs": [str(tmp_path / "a")]},
             {"driver": "overlay", "lowerdirs": [str(tmp_path / "a"), str(tmp_path / "gone")]},
             {"driver": "copy", "path": str(tmp_path / "a")}, {"driver": "copy", "path": str(tmp_path / "b")}]
    got = [rootfs_present(c) for c in cases]
    assert got == [_fast._rootfs_present(c) for c in cases] == [False, False, False, True, False, True, False]


@pytest.mark.skipif(os.geteuid() != 0, reason="root runtime path")
@pytest.mark.parametrize("entry", ["fast", "full"])
def test_run_after_fsck_quarantine_unpacks_again(tmp_path, run_envctl, test_images, envctl_home, entry):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {test_images.refs['single']}\n")
    up = run_envctl("up", cwd=proj)
    assert up.returncode == 0, up.stderr
    env = json.loads(next((envctl_home / "envs").glob("*/env.json")).read_text())
    lower = env["rootfs"]["lowerdirs"][-1]
    victim = next(os.path.join(r, f) for r, _, fs in os.walk(lower) for f in fs
                  if not os.path.islink(os.path.join(r, f)))
    with open(victim, "ab") as f:
        f.write(b"tampered\n")
    fsck = run_envctl("store", "fsck", cwd=proj)
    assert fsck.returncode == 1 and "quarantined" in fsck.stdout + fsck.stderr
    assert not os.path.isdir(lower)
    # "--project=." is not one of the fast entry's plain forms: the full CLI's load_env runs
    args = ("run", "--", "busybox", "true") if entry == "fast" else ("run", "--project=.", "--", "busybox", "true")
    assert (_fast.parse_run(list(args[1:])) is None) == (entry == "full")
    r = run_envctl(*args, cwd=proj)
    assert r.returncode == 0, r.stderr
    assert os.path.isdir(lower)
    with open(victim, "rb") as f:
        assert b"tampered" not in f.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="root store")
def test_verify_fails_on_a_changed_unpacked_layer(tmp_path, run_envctl, test_images, envctl_home):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {test_images.refs['single']}\n")
    assert run_envctl("lock", cwd=proj).returncode == 0
    before = run_envctl("verify", cwd=proj)  # not up yet: says what it did not check
    assert before.returncode == 0, before.stderr
    assert "layers: not checked" in before.stdout
    assert run_envctl("up", cwd=proj).returncode == 0
    good = run_envctl("verify", cwd=proj)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 changed" in good.stdout and "verify: OK" in good.stdout
    env = json.loads(next((envctl_home / "envs").glob("*/env.json")).read_text())
    lower = env["rootfs"]["lowerdirs"][-1]
    victim = next(os.path.join(r, f) for r, _, fs in os.walk(lower) for f in fs
                  if not os.path.islink(os.path.join(r, f)))
    with open(victim, "ab") as f:
        f.write(b"tampered\n")
    bad = run_envctl("verify", cwd=proj)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "1 changed" in bad.stdout and "unpacked tree changed" in bad.stdout and "FAILED" in bad.stdout
    js = json.loads(run_envctl("verify", "--json", "--no-rebuild", cwd=proj).stdout)
    assert js["ok"] is False and [x["status"] for x in js["layers"]].count("changed") == 1
    assert os.path.isdir(lower)  # read-only: verify quarantines nothing



def test_gc_drops_projects_whose_lock_is_gone_keeps_running_envs(registry, up_images, tmp_path, envctl_home):
    from engine.store.locking import FileLock

    a = project(tmp_path, f"{registry.host}/{up_images['base2']}", "a")
    b = project(tmp_path, f"{registry.host}/{up_images['other']}", "b")
    ra, rb = (up_json(envctl("up", "--json", cwd=p, home=envctl_home)) for p in (a, b))
    dry = json.loads(envctl("gc", "--dry-run", "--json", cwd=a, home=envctl_home).stdout)
    assert dry["bytesFreed"] == 0 and dry["removed"] == []
    (b / "envctl.lock").unlink()
    running = FileLock(envctl_home / "locks" / f"env-{rb['envId']}", shared=True).acquire()
    try:
        kept = json.loads(envctl("gc", "--json", cwd=a, home=envctl_home).stdout)
        assert kept["keptRunning"] == [rb["envId"]] and kept["removed"] == []
    finally:
        running.release()
    state = envctl_home / "envs" / rb["envId"] / "state.json"  # the runtime's record of a live env
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        state.write_text(json.dumps({"status": "running", "pid": sleeper.pid}))
        kept = json.loads(envctl("gc", "--json", cwd=a, home=envctl_home).stdout)
        assert kept["keptRunning"] == [rb["envId"]] and kept["removed"] == []
    finally:
        sleeper.kill()
        sleeper.wait()
    dry = json.loads(envctl("gc", "--dry-run", "--json", cwd=a, home=envctl_home).stdout)
    gone = json.loads(envctl("gc", "--json", cwd=a, home=envctl_home).stdout)
    assert gone["removed"] == dry["removed"] and gone["bytesFreed"] == dry["bytesFreed"] > 0
    assert f"envs/{rb['envId']}" in gone["removed"]
    assert sum(x.startswith("layers/") for x in gone["removed"]) == 1  # b's own top layer only
    assert all(Path(p).is_dir() for p in ra["rootfs"]["lowerdirs"])
    assert up_json(envctl("up", "--json", cwd=a, home=envctl_home))["layersCached"] == 2


def test_hostile_image_is_one_clear_error_and_stores_nothing(registry, up_images, tmp_path, envctl_home):
    proj = project(tmp_path, f"{registry.host}/{up_images['hostile']}")
    r = envctl("up", cwd=proj, home=envctl_home, check=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-2].startswith("envctl: error: unpack layer sha256:")
    assert lines[-2].endswith("entry '../../../../tmp/envctl-escaped' climbs out of the layer with '..'")
    assert lines[-1] == "hint: the image is malformed or hostile; do not use it"
    assert "Traceback" not in r.stderr and not Path("/tmp/envctl-escaped").exists()
    layers = {p.name for p in (envctl_home / "layers").iterdir()}
    assert len(layers) <= 1  # at most the (valid) base layer; never the hostile one
    assert [p for p in (envctl_home / "tmp").iterdir()] == []


def test_locked_and_frozen(registry, up_images, tmp_path, envctl_home):
    proj = project(tmp_path, f"{registry.host}/{up_images['base2']}")
    r = envctl("up", "--locked", cwd=proj, home=envctl_home, check=False)
    assert r.returncode == 3 and "envctl.lock is missing" in r.stderr
    envctl("lock", cwd=proj, home=envctl_home)
    r = envctl("up", "--frozen", cwd=proj, home=envctl_home, check=False)
    assert r.returncode == 1 and "--frozen forbids downloading" in r.stderr
    envctl("up", "--locked", cwd=proj, home=envctl_home)
    envctl("up", "--frozen", cwd=proj, home=envctl_home)


@pytest.mark.rootless
def test_rootless_up_run_and_gc(rootless_user, registry, up_images):
    work = rootless_user.tmpdir()
    try:
        proj, home = work / "proj", work / "home"
        rootless_user.run(["mkdir", "-p", str(proj)], check=True)
        rootless_user.run(["sh", "-c", f"printf 'version: 1\\nimage: {registry.host}/{up_images['base2']}\\n'"
                                       f" > {proj}/envctl.yaml"], check=True)
        env = {"ENVCTL_HOME": str(home)}
        r = rootless_user.envctl("up", "--json", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["rootfs"]["userxattr"] is True and info["layersUnpacked"] == 2
        top = Path(info["rootfs"]["lowerdirs"][0])
        assert top.stat().st_uid == rootless_user.uid
        r = rootless_user.envctl("run", "--", "/bin/busybox", "cat", "/etc/which", cwd=proj, env=env)
        assert (r.returncode, r.stdout) == (0, "base2\n"), r.stderr
        r = rootless_user.envctl("store", "fsck", cwd=proj, env=env)
        assert r.returncode == 0 and "store ok" in r.stdout, r.stderr
        rootless_user.run(["rm", str(proj / "envctl.lock")], check=True)
        r = rootless_user.envctl("gc", "--json", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["bytesFreed"] > 0
        assert list((home / "layers").iterdir()) == [] and list((home / "envs").iterdir()) == []
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)


def test_changed_layers_reset_the_upper_with_a_notice_but_never_while_running(registry, up_images, tmp_path,
                                                                              envctl_home):
    proj = project(tmp_path, f"{registry.host}/{up_images['base2']}")
    r = up_json(envctl("up", "--json", cwd=proj, home=envctl_home))
    upper = Path(r["rootfs"]["upperdir"])
    (upper / "my-change").write_text("kept while the lock is unchanged")
    assert "notice" not in envctl("up", cwd=proj, home=envctl_home).stderr
    assert (upper / "my-change").exists()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {registry.host}/{up_images['other']}\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (upper.parent / "state.json").write_text(json.dumps({"status": "running", "pid": sleeper.pid}))
        busy = envctl("up", cwd=proj, home=envctl_home, check=False)
        assert busy.returncode == 1 and "is running and its layers changed" in busy.stderr
        assert (upper / "my-change").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    done = envctl("up", cwd=proj, home=envctl_home)
    assert "notice: the environment's layers changed" in done.stderr
    assert not (upper / "my-change").exists()
