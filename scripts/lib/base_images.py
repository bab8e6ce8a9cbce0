"""scripts/base-images: build Debian base images with mmdebstrap, cache them, push them with skopeo.

Images (both variant minbase with merged /usr and the official images' container tweaks, as
debuerreotype builds ``debian:bookworm``; the slim one also drops docs, man pages and locales
through dpkg ``path-exclude`` like ``debian:bookworm-slim``):

    bookworm        -> <registry>/library/debian:bookworm
    bookworm-slim   -> <registry>/library/debian:bookworm-slim

Inputs (the cache key): suite, variant, package set, dpkg options, the hook scripts, this packer's
version, mmdebstrap's version, the architecture, the machine's apt sources for the suite and the
sha256 of each InRelease file. SOURCE_DATE_EPOCH = the newest InRelease ``Date:``, so the same
archive state gives byte-identical layers (``--check-reproducible`` builds twice and compares).

Output lines (stable, for scripts and tests): ``built NAME ...``, ``cached NAME ...``,
``pushed REF DIGEST``, ``up to date REF DIGEST``, ``reproducible NAME: yes|NO ...``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import apt_sources
import oci_pack

PACKER_VERSION = 1
HERE = Path(__file__).resolve().parent
CUSTOMIZE_HOOK = HERE / "hooks" / "customize-docker.sh"
SLIMIFY_HOOK = HERE / "hooks" / "slimify.sh"
POLICY_RC_HOOK = HERE / "hooks" / "policy-rc.sh"
MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")

# debuerreotype's .slimify-excludes / .slimify-includes, as dpkg options (dpkg.cfg(5)).
SLIM_EXCLUDE = ("/usr/share/doc/*", "/usr/share/groff/*", "/usr/share/info/*", "/usr/share/linda/*",
                "/usr/share/lintian/overrides/*", "/usr/share/locale/*", "/usr/share/man/*")
SLIM_INCLUDE = ("/usr/share/doc/*/copyright", "/usr/share/locale/locale.alias")


@dataclass(frozen=True)
class ImageDef:
    """What to build: suite, mmdebstrap variant, extra packages, dpkg options, registry tag."""

    name: str
    suite: str
    variant: str = "minbase"
    include: tuple[str, ...] = ()
    dpkgopts: tuple[str, ...] = ()
    slim: bool = False

    @property
    def tag(self) -> str:
        return self.name


IMAGES = {
    "bookworm": ImageDef("bookworm", "bookworm"),
    "bookworm-slim": ImageDef("bookworm-slim", "bookworm", slim=True, dpkgopts=tuple(
        [f"path-exclude={p}" for p in SLIM_EXCLUDE] + [f"path-include={p}" for p in SLIM_INCLUDE])),
}


@dataclass
class Plan:
    """Resolved inputs for one image: where its cache entry lives and the epoch to build with."""

    image: ImageDef
    sources_text: str
    inputs: dict
    releases: list = field(default_factory=list)
    epoch: int = 0
    entry: Path = Path()


def cache_root() -> Path:
    """$ENVCTL_BASE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/envctl-base-images."""
    if env := os.environ.get("ENVCTL_BASE_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "envctl-base-images"


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mmdebstrap_version() -> str:
    out = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def static_inputs(image: ImageDef, sources_text: str) -> dict:
    """Every cache-key input except the archive's state (the InRelease hashes)."""
    hooks = sorted(MERGED_USR_HOOKS.glob("*.sh"))
    return {"packer": PACKER_VERSION, "suite": image.suite, "variant": image.variant,
            "include": list(image.include), "dpkgopts": list(image.dpkgopts),
            "hooks": {p.name: _file_sha(p) for p in [CUSTOMIZE_HOOK, SLIMIFY_HOOK, POLICY_RC_HOOK, *hooks]},
            "packScript": _file_sha(HERE / "oci_pack.py"), "arch": oci_pack.oci_arch(),
            "mmdebstrap": mmdebstrap_version(), "sources": sources_text}


def plan_image(image: ImageDef, cache: Path, *, offline_ok: bool = True) -> Plan:
    """Compute the inputs and cache entry of ``image`` (fetches the suite's InRelease files).

    When the archive is unreachable and a cache entry with the same static inputs exists, that
    entry is used (printed as a warning). Raises RuntimeError when neither works.
    """
    sources = apt_sources.host_sources(image.suite)
    text = apt_sources.render_deb822(sources)
    inputs = static_inputs(image, text)
    static = _sha(inputs)[:12]
    plan = Plan(image, text, inputs)
    try:
        plan.releases = [apt_sources.fetch_release(s) for s in sources]
    except OSError as e:
        prior = sorted(cache.glob(f"{image.name}-{static}-*/build.json"), key=lambda p: p.stat().st_mtime)
        if not (offline_ok and prior):
            raise RuntimeError(f"fetch InRelease for {image.suite}: {e}") from e
        print(f"warning: archive unreachable ({e}); using the newest cached {image.name}", file=sys.stderr)
        plan.entry = prior[-1].parent
        plan.epoch = json.loads(prior[-1].read_text())["sourceDateEpoch"]
        return plan
    key = _sha({"static": inputs, "releases": [r.sha256 for r in plan.releases]})[:16]
    plan.epoch = max(r.date for r in plan.releases)
    plan.entry = cache / f"{image.name}-{static}-{key}"
    return plan


def mmdebstrap_argv(image: ImageDef, sources_file: Path) -> list[str]:
    """The mmdebstrap command line writing ``image``'s rootfs as a tar to stdout."""
    argv = ["mmdebstrap", f"--variant={image.variant}", "--format=tar", "--skip=output/dev",
            "--skip=chroot/policy-rc.d", f"--hook-dir={MERGED_USR_HOOKS}",
            f"--essential-hook={POLICY_RC_HOOK}", f"--customize-hook={CUSTOMIZE_HOOK}"]
    argv += [f"--dpkgopt={o}" for o in image.dpkgopts]
    if image.slim:
        argv.append(f"--customize-hook={SLIMIFY_HOOK}")
    if image.include:
        argv.append("--include=" + ",".join(image.include))
    return argv + [image.suite, "-", str(sources_file)]


def build(plan: Plan, dest: Path) -> dict:
    """Run mmdebstrap piped into the OCI packer; writes an OCI layout + build.json under ``dest``.

    ``dest`` is filled through a temporary sibling renamed into place at the end. Returns the
    build record (dict). Raises RuntimeError with mmdebstrap's log tail when the build fails.
    """
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "layout").mkdir(parents=True)
    sources_file = tmp / "debian.sources"
    sources_file.write_text(plan.sources_text)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(plan.epoch), LC_ALL="C.UTF-8")
    started = time.monotonic()
    with open(tmp / "mmdebstrap.log", "wb") as log:
        proc = subprocess.Popen(mmdebstrap_argv(plan.image, sources_file), stdout=subprocess.PIPE,
                                stderr=log, stdin=subprocess.DEVNULL, env=env)
        try:
            layer = oci_pack.pack_layer(proc.stdout, tmp / "layout" / "blobs" / "sha256")
            while proc.stdout.read(1 << 16):       # the tar's trailing padding
                pass
        except Exception:
            proc.kill()
            raise
        finally:
            rc = proc.wait()
    if rc != 0:
        tail = (tmp / "mmdebstrap.log").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"mmdebstrap {plan.image.name} failed (exit {rc}):\n  " + "\n  ".join(tail))
    created_by = f"mmdebstrap --variant={plan.image.variant} {plan.image.suite} (envctl scripts/base-images {plan.image.name})"
    index = oci_pack.write_image(tmp / "layout", layer, tag=plan.image.tag, created=plan.epoch,
                                 created_by=created_by, arch=plan.inputs["arch"])
    record = {"name": plan.image.name, "index": index, "layer": layer.digest, "diffID": layer.diff_id,
              "size": layer.size, "tarSize": layer.tar_size, "entries": layer.entries,
              "sourceDateEpoch": plan.epoch, "buildSeconds": round(time.monotonic() - started, 1),
              "inputs": plan.inputs, "releases": [{"suite": r.source.suite, "sha256": r.sha256,
                                                   "date": r.date} for r in plan.releases]}
    (tmp / "build.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    sources_file.unlink()
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return record


def prune(cache: Path, name: str, keep: int = 3) -> None:
    """Remove all but the ``keep`` newest cache entries of image ``name`` (older archive states)."""
    entries = sorted((p.parent for p in cache.glob(f"{name}-*/build.json")
                      if p.parent.name.count("-") == name.count("-") + 2),
                     key=lambda d: (d / "build.json").stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def describe(record: dict) -> str:
    """One-line summary: digests, sizes (MB), entries, build time."""
    return (f"index {record['index']} layer {record['layer']} "
            f"{record['size'] / 1e6:.1f} MB gzip, {record['tarSize'] / 1e6:.1f} MB tar, "
            f"{record['entries']} entries, built in {record['buildSeconds']} s")


def registry_digest(addr: str, repo: str, tag: str) -> str | None:
    """Docker-Content-Digest the registry at ``addr`` serves for ``repo:tag`` (None if absent)."""
    req = urllib.request.Request(f"http://{addr}/v2/{repo}/manifests/{tag}", method="HEAD", headers={
        "Accept": f"{oci_pack.MT_INDEX}, {oci_pack.MT_MANIFEST}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def push(entry: Path, record: dict, addr: str, repo: str) -> None:
    """Push the cached layout to ``addr``/``repo``:TAG with skopeo unless already there."""
    tag = record["name"]
    ref = f"{addr}/{repo}:{tag}"
    if registry_digest(addr, repo, tag) == record["index"]:
        print(f"up to date {ref} {record['index']}", flush=True)
        return
    subprocess.run(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{entry / 'layout'}:{tag}", f"docker://{ref}"], check=True)
    got = registry_digest(addr, repo, tag)
    if got != record["index"]:
        raise RuntimeError(f"push {ref}: registry serves {got}, expected {record['index']}")
    print(f"pushed {ref} {record['index']}", flush=True)


def check_reproducible(plan: Plan, record: dict) -> bool:
    """Build ``plan`` again in a temporary directory and compare digests with ``record``."""
    scratch = plan.entry.parent / f".repro-{plan.image.name}-{os.getpid()}"
    try:
        again = build(plan, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    same = again["layer"] == record["layer"] and again["index"] == record["index"]
    verdict = "yes" if same else f"NO (second build: layer {again['layer']} index {again['index']})"
    print(f"reproducible {plan.image.name}: {verdict}; layer {record['layer']} "
          f"(second build {again['buildSeconds']} s)", flush=True)
    return same


def parse_args(argv):
    p = argparse.ArgumentParser(prog="scripts/base-images", description=__doc__.splitlines()[0])
    p.add_argument("images", nargs="*", default=[],
                   help="images to build (default: all)")
    port = os.environ.get("ENVCTL_REGISTRY_PORT", "5115")
    p.add_argument("--registry", default=f"127.0.0.1:{port}", help="HOST:PORT to push to (loopback)")
    p.add_argument("--repo", default="library/debian", help="repository name in the registry")
    p.add_argument("--no-push", action="store_true", help="build/cache only")
    p.add_argument("--cache-dir", type=Path, default=None, help="default: $ENVCTL_BASE_CACHE or XDG cache")
    p.add_argument("--rebuild", action="store_true", help="ignore the cache entry and build again")
    p.add_argument("--check-reproducible", action="store_true", help="build a second time and compare")
    a = p.parse_args(argv)
    if unknown := sorted(set(a.images) - set(IMAGES)):
        p.error(f"unknown image {', '.join(unknown)} (choose from {', '.join(IMAGES)})")
    return a


def require_tools(push: bool) -> None:
    """Fail early, naming the Debian package, when a tool the run needs is missing."""
    needed = {"mmdebstrap": "mmdebstrap", **({"skopeo": "skopeo"} if push else {})}
    missing = [pkg for tool, pkg in needed.items() if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed; run: apt-get install {' '.join(missing)}")


def main(argv=None) -> int:
    a = parse_args(argv)
    require_tools(not a.no_push)
    cache = a.cache_dir or cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    ok = True
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)            # one builder per cache dir at a time
        for name in a.images or list(IMAGES):
            plan = plan_image(IMAGES[name], cache)
            if (plan.entry / "build.json").is_file() and not a.rebuild:
                record = json.loads((plan.entry / "build.json").read_text())
                print(f"cached {name}: {describe(record)} [{plan.entry.name}]", flush=True)
            else:
                print(f"building {name} (SOURCE_DATE_EPOCH={plan.epoch}) ...", flush=True)
                record = build(plan, plan.entry)
                print(f"built {name}: {describe(record)} [{plan.entry.name}]", flush=True)
                prune(cache, name)
            if a.check_reproducible:
                ok = check_reproducible(plan, record) and ok
            if not a.no_push:
                push(plan.entry, record, a.registry, a.repo)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, subprocess.CalledProcessError, tarfile.TarError) as e:
        print(f"scripts/base-images: error: {e}", file=sys.stderr)
        sys.exit(1)
