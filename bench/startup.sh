#!/usr/bin/env bash
# Start-up cost of the CLI: `envctl --version` against a bare `python3 -c pass`, with hyperfine.
# Prints both means and their ratio (heavy libraries are imported only by the commands that
# need them; tests/unit/envctl/test_startup_imports.py guards that).
#
# Usage: bash bench/startup.sh [--installed | ENVCTL]
#   default      .venv/bin/envctl (the editable dev install: its import hook adds ~10 ms)
#   --installed  a non-editable `pip install --no-deps .` into a temporary venv (what users
#                run; dependencies borrowed from .venv through a .pth file)
#   ENVCTL       any envctl executable
# RUNS=N sets the number of runs (default 40).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/_installed.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ENVCTL=${1:-.venv/bin/envctl}
if [ "$ENVCTL" = "--installed" ]; then
    install_envctl "$out"
fi
[ -x "$ENVCTL" ] || ENVCTL=$(command -v envctl)
PY=$(dirname "$ENVCTL")/python3
[ -x "$PY" ] || PY=python3

hyperfine -N --warmup 5 --runs "${RUNS:-40}" --export-json "$out/r.json" \
    -n "python3 -c pass" "$PY -c pass" \
    -n "envctl --version" "$ENVCTL --version"
"$PY" - "$out/r.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base, ours = r["python3 -c pass"], r["envctl --version"]
print(f"python3 -c pass:  {base['mean'] * 1000:7.1f} ms ± {base['stddev'] * 1000:.1f} (median {base['median'] * 1000:.1f})")
print(f"envctl --version: {ours['mean'] * 1000:7.1f} ms ± {ours['stddev'] * 1000:.1f} (median {ours['median'] * 1000:.1f})")
print(f"ratio: {ours['mean'] / base['mean']:.2f}x (medians: {ours['median'] / base['median']:.2f}x, "
      f"minimums: {ours['min'] / base['min']:.2f}x — the least load-sensitive)")
PY
# CPU time (user+sys of the child, median of 40) is far less sensitive than wall time to other
# load on a shared machine; printed as a cross-check.
"$PY" - "$PY" "$ENVCTL" <<'PY'
import resource, subprocess, sys
def cpu_ms(argv, n=40):
    xs = []
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        xs.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
    return sorted(xs)[n // 2]
base, ours = cpu_ms([sys.argv[1], "-c", "pass"]), cpu_ms([sys.argv[2], "--version"])
print(f"cpu time (median): python3 -c pass {base:.1f} ms, envctl --version {ours:.1f} ms, ratio {ours / base:.2f}x")
PY
