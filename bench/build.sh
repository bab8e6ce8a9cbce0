#!/usr/bin/env bash
# Warm `envctl up` of an environment whose build steps are all cached, against `podman build`
# of the equivalent Containerfile with its layer cache warm (issue 6 "Done when"), with hyperfine.
# Base: the busybox test image on a loopback docker-registry (tests/fixtures). Runs as root.
# Usage: bash bench/build.sh [RUNS]      (needs docker-registry, skopeo, podman, hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" - "${1:-20}" <<'PY'
import os, shutil, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, os.getcwd())
from tests.fixtures.images import make_standard_images, push_standard_images
from tests.fixtures.registry import start_registry

runs = sys.argv[1]
work = Path(tempfile.mkdtemp(prefix="envctl-bb-"))   # short: podman wants a runroot < 50 chars
envctl = str(Path(sys.executable).parent / "envctl")
env = {**os.environ, "ENVCTL_HOME": str(work / "home")}
podman = ["podman", "--root", str(work / "pr"), "--runroot", str(work / "pu"), "--cgroup-manager", "cgroupfs",
          "--events-backend", "file", "--storage-driver", "overlay", "--runtime", "runc"]
try:
    with start_registry(work / "registry") as reg:
        ref = push_standard_images(make_standard_images(work / "layout"), reg, work).refs["single"]
        proj = work / "p"
        proj.mkdir()
        (proj / "app.txt").write_text("app\n")
        (proj / "envctl.yaml").write_text(
            f"version: 1\nimage: {ref}\nsteps:\n"
            "  - run: busybox mkdir -p /opt/app && echo built > /opt/app/out\n"
            "  - copy: {src: app.txt, dest: /opt/app/app.txt}\n"
            "  - env: {GREETING: hello}\n"
            "  - run: echo \"$GREETING\" >> /opt/app/out\n")
        (proj / "Containerfile").write_text(
            f"FROM {ref}\n"
            "RUN busybox mkdir -p /opt/app && echo built > /opt/app/out\n"
            "COPY app.txt /opt/app/app.txt\n"
            "ENV GREETING=hello\n"
            "RUN echo \"$GREETING\" >> /opt/app/out\n")
        subprocess.run([envctl, "up", "-q"], cwd=proj, env=env, check=True)          # cold: builds
        build = [*podman, "build", "-q", "--tls-verify=false", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=1024:1024", "-t", "envctl-bench", "-f", str(proj / "Containerfile"), str(proj)]
        subprocess.run(build, check=True, capture_output=True)                       # cold: builds
        print("warm: every step cached on both sides")
        subprocess.run(["hyperfine", "-N", "--warmup", "2", "--runs", runs,
                        "-n", "envctl up (steps cached)", f"{envctl} up -q -C {proj}",
                        "-n", "podman build (cache warm)", " ".join(build)],
                       env=env, check=True)
finally:
    subprocess.run([*podman, "system", "reset", "-f"], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
PY
