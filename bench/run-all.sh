#!/usr/bin/env bash
# Run every bench/*.sh (or the ones named: `bench/run-all.sh startup lock`) and write
# docs/benchmarks.md from their RESULT lines (bench/README.md) and hyperfine exports.
# Logs stay in $BENCH_OUT (default: a new temp dir, printed). Each bench gets BENCH_TIMEOUT
# seconds (default 1800). A failing bench is reported in the table; the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export BENCH_OUT=${BENCH_OUT:-$(mktemp -d /tmp/envctl-bench.XXXXXX)}
mkdir -p "$BENCH_OUT"
PY=$REPO/.venv/bin/python
[[ -x $PY ]] || PY=python3

ORDER=(startup lock pull enter build reload)      # issue 8's order; any other bench/*.sh follows
if [[ $# -gt 0 ]]; then
    benches=("$@")
else
    benches=()
    for b in "${ORDER[@]}"; do [[ -f bench/$b.sh ]] && benches+=("$b"); done
    for f in bench/*.sh; do
        b=$(basename "$f" .sh)
        [[ $b == run-all || $b == _* || " ${benches[*]} " == *" $b "* ]] || benches+=("$b")  # _*.sh: shared helpers
    done
fi

{
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:   $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (dirty tree)')"
    echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) online)"
    echo "memory:   $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel:   $(uname -sr)"
    echo "os:       $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "python:   $($PY --version 2>&1)"
    echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine skews results)"
    for t in skopeo umoci podman crun runc bwrap hyperfine watchmedo; do
        v=$(dpkg-query -W -f='${Version}' "$(case $t in bwrap) echo bubblewrap;; watchmedo) echo python3-watchdog;; *) echo $t;; esac)" 2>/dev/null) || v="not installed"
        printf '%-9s %s\n' "$t:" "$v"
    done
} > "$BENCH_OUT/machine.txt"

for b in "${benches[@]}"; do
    echo "==> bench/$b.sh  (log: $BENCH_OUT/$b.log)"
    start=$(date +%s.%N)
    BENCH_NAME=$b PATH="$REPO/bench/_shim:$PATH" timeout "${BENCH_TIMEOUT:-1800}" bash "bench/$b.sh" \
        > "$BENCH_OUT/$b.log" 2>&1
    echo $? > "$BENCH_OUT/$b.rc"
    awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f\n", e - s}' > "$BENCH_OUT/$b.seconds"
    grep '^RESULT ' "$BENCH_OUT/$b.log" || echo "    (no RESULT lines; exit $(cat "$BENCH_OUT/$b.rc"))"
done

"$PY" bench/report.py "$BENCH_OUT" docs/benchmarks.md "${benches[@]}"
