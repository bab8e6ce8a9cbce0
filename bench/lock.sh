#!/usr/bin/env bash
# `envctl lock` against `skopeo inspect --raw` for the same 2-platform image (linux/amd64 +
# linux/arm64 + an attestation manifest) on a loopback docker-registry, with hyperfine; and the
# number of HTTP requests envctl makes (its own count, `-v`, cross-checked by a counting proxy).
# The registry and image come from the test fixtures (tests/fixtures/registry.py, images.py).
# Usage: bash bench/lock.sh [RUNS]      (needs docker-registry, skopeo, hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" - "${1:-20}" <<'PY'
import json, os, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, os.getcwd())
from tests.fixtures.images import make_standard_images, push_standard_images
from tests.fixtures.proxy import RegistryProxy
from tests.fixtures.registry import start_registry

runs = sys.argv[1]
work = Path(tempfile.mkdtemp(prefix="envctl-bench-lock-"))
envctl = str(Path(sys.executable).parent / "envctl")
env = {**os.environ, "ENVCTL_HOME": str(work / "home"), "DOCKER_CONFIG": str(work / "docker"),
       "REGISTRY_AUTH_FILE": str(work / "auth.json"), "ENVCTL_REGISTRIES_CONF": str(work / "none.conf")}
env.pop("ENVCTL_REGISTRY_MIRRORS", None)
with start_registry(work / "registry") as reg:
    imgs = push_standard_images(make_standard_images(work / "layout"), reg, work)
    ref = imgs.refs["multi"]
    proj = work / "project"
    proj.mkdir()
    (proj / "envctl.yaml").write_text(f"version: 1\nimage: {ref}\nplatforms: [linux/amd64, linux/arm64]\n")

    with RegistryProxy(reg.url) as proxy:   # count what envctl really sends
        pref = f"{proxy.host}/envctl/multi:v1"
        pproj = work / "counted"
        pproj.mkdir()
        (pproj / "envctl.yaml").write_text(f"version: 1\nimage: {pref}\nplatforms: [linux/amd64, linux/arm64]\n")
        r = subprocess.run([envctl, "lock", "-v"], cwd=pproj, env=env, capture_output=True, text=True, check=True)
        own = [l for l in r.stderr.splitlines() if l.endswith("HTTP requests")]
        seen = [f"{s.method} {s.path}" for s in proxy.requests]
        subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{pref}"],
                       check=True, capture_output=True)
        skopeo_raw = len(proxy.requests) - len(seen)
        n = len(proxy.requests)
        subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{pref}"], check=True, capture_output=True)
        skopeo_full = len(proxy.requests) - n
    print(f"envctl lock (2 platforms): {len(seen)} HTTP requests seen by the proxy; envctl says: {own[0] if own else '?'}")
    for s in seen:
        print("   ", s)
    print(f"skopeo inspect --raw: {skopeo_raw} HTTP requests; skopeo inspect (one platform + config): {skopeo_full}")

    out = work / "hyperfine.json"
    subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", runs, "--export-json", str(out),
                    "--prepare", f"rm -f {proj}/envctl.lock", "--prepare", "true",
                    "--prepare", "true", "--prepare", "true",
                    "-n", "envctl lock (fresh, 2 platforms)",
                    f"{envctl} lock -q -C {proj}",
                    "-n", "envctl lock --check (offline)",
                    f"{envctl} lock --check -q -C {proj}",
                    "-n", "skopeo inspect --raw",
                    f"skopeo inspect --raw --tls-verify=false docker://{ref}",
                    "-n", "skopeo inspect (1 platform)",
                    f"skopeo inspect --tls-verify=false docker://{ref}"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(out.read_text())["results"]
    for x in results:
        print(f"{x['command']:36s} {x['mean'] * 1000:7.1f} ms ± {x['stddev'] * 1000:5.1f}")
    base = next(x for x in results if x["command"] == "skopeo inspect --raw")["mean"]
    lock = results[0]["mean"]
    print(f"envctl lock / skopeo inspect --raw: {lock / base:.2f}x")
subprocess.run(["rm", "-rf", str(work)])
PY
