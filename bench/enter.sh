#!/usr/bin/env bash
# Warm entry: `envctl run -- true` on a ready environment vs bwrap, runc run, crun run (where this
# host's cgroups allow), podman run --rm and `python3 -c pass`, all on the same busybox rootfs.
# Prints RESULT lines (bench/README.md) and the issue-5 target ratio:
#   envctl / (python -c pass + bwrap)  -- target <= 2.0
#
# Usage: sudo bash bench/enter.sh [--editable]
#   default     a non-editable `pip install .` into a temp venv, run as users run it: the installed
#               `envctl` script (envctl/bin/envctl -> envctl._fast) from the project directory
#               (hyperfine runs in it, so no wrapper shell is timed); --editable uses
#               .venv/bin/envctl (its import hook adds ~10 ms). RUNS=N (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/_installed.sh
REPO=$(pwd)
out=$(mktemp -d /tmp/envctl-bench-enter.XXXXXX)
cleanup() {
    [ -n "${PODMAN:-}" ] && $PODMAN rmi -f envctl-bench-busybox >/dev/null 2>&1 || true
    rm -rf "$out"
}
trap cleanup EXIT
unset PYTHONDONTWRITEBYTECODE  # measure with .pyc files, as an installed envctl has

ENVCTL=$REPO/.venv/bin/envctl
if [ "${1:-}" != "--editable" ]; then
    install_envctl "$out"
fi
PY=$(dirname "$ENVCTL")/python3
"$PY" -m compileall -q "$(dirname "$ENVCTL")/.." >/dev/null 2>&1 || true

export ENVCTL_HOME=$out/home
mkdir -p "$out/project"
PYTHONPATH=$REPO "$PY" - "$out" <<'PY'
import sys
from pathlib import Path
from tests.integration.runtime_env import make_busybox_rootfs, make_env
out = Path(sys.argv[1])
make_busybox_rootfs(out / "rootfs")
make_env(out / "project", out / "rootfs")
PY
(cd "$out/project" && "$ENVCTL" run -- true)   # fail early if the environment does not run
(cd "$out/project" && "$ENVCTL" bundle "$out/bundle" -- true >/dev/null)

cmds=(-n "python3 -c pass" "$PY -c pass"
      -n "envctl run -- true" "$ENVCTL run -- true"
      -n "bwrap true" "bwrap --bind $out/rootfs / --proc /proc --dev /dev --unshare-all --die-with-parent true"
      -n "runc run" "runc --root $out/runc run --bundle $out/bundle b1")
if command -v crun >/dev/null && crun --root "$out/crun" run --bundle "$out/bundle" c0 >/dev/null 2>&1; then
    cmds+=(-n "crun run" "crun --root $out/crun run --bundle $out/bundle c1")
else
    echo "crun: not installed or refuses this host's cgroups; skipped"
fi
if command -v podman >/dev/null; then
    PODMAN="podman --root $out/podman/root --runroot $out/podman/run --cgroup-manager cgroupfs --events-backend file --runtime runc"
    tar -C "$out/rootfs" -c . | $PODMAN import -q - envctl-bench-busybox >/dev/null
    # podman's default NOFILE/NPROC make runc fail with EPERM on this host; small explicit limits work
    lim="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
    $PODMAN run --rm --network host $lim envctl-bench-busybox true
    cmds+=(-n "podman run --rm" "$PODMAN run --rm --network host $lim envctl-bench-busybox true")
fi
# from the project directory: `envctl run` finds envctl.yaml there, as for a user in a checkout
(cd "$out/project" && hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$out/r.json" "${cmds[@]}")
"$PY" bench/hf_results.py "$out/r.json" "enter-"
"$PY" - "$out/r.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
r = {x["command"]: x["median"] * 1000 for x in res}
lo = {x["command"]: x["min"] * 1000 for x in res}
ours = r["envctl run -- true"]
base = r["python3 -c pass"] + r["bwrap true"]
print(f"envctl run -- true: {ours:.1f} ms (median), {lo['envctl run -- true']:.1f} ms (min)")
for k, v in r.items():
    if k != "envctl run -- true":
        print(f"  vs {k:18s} {v:7.1f} ms   ratio {ours / v:5.2f}")
print(f"target: envctl / (python -c pass + bwrap) = {ours / base:.2f} (<= 2.0); by min "
      f"{lo['envctl run -- true'] / (lo['python3 -c pass'] + lo['bwrap true']):.2f}")
print(f"RESULT name=enter-target-python+bwrap envctl_ms={ours:.2f} peer=python-c-pass+bwrap "
      f"peer_ms={base:.2f} note=target_ratio_2.0")
PY
