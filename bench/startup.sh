#!/usr/bin/env bash
# Start-up cost of the CLI: `envctl --version` against a bare `python3 -c pass`, with hyperfine.
# Prints both means and their ratio (the issue's target: a small constant factor; heavy
# libraries are imported only by the commands that need them).
# Usage: bash bench/startup.sh [ENVCTL]   (default: .venv/bin/envctl, else envctl on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
ENVCTL=${1:-.venv/bin/envctl}
[ -x "$ENVCTL" ] || ENVCTL=$(command -v envctl)
PY=$(dirname "$ENVCTL")/python3
[ -x "$PY" ] || PY=python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hyperfine -N --warmup 5 --runs "${RUNS:-40}" --export-json "$out/r.json" \
    -n "python3 -c pass" "$PY -c pass" \
    -n "envctl --version" "$ENVCTL --version"
"$PY" - "$out/r.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base, ours = r["python3 -c pass"], r["envctl --version"]
print(f"python3 -c pass:  {base['mean'] * 1000:7.1f} ms ± {base['stddev'] * 1000:.1f}")
print(f"envctl --version: {ours['mean'] * 1000:7.1f} ms ± {ours['stddev'] * 1000:.1f}")
print(f"ratio: {ours['mean'] / base['mean']:.2f}x")
PY
