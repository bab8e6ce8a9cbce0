#!/usr/bin/env bash
# Extra unpack cost of rootless subordinate-id mapping (engine/store/idmap.py) on the Debian base image
# that bench/pull.sh uses (scripts/base-images, cached). Runs bench/idmap_unpack.py as the test
# suite's unprivileged user (envctl-rl, with a /etc/subuid range; tests/fixtures/users.py creates it).
# Usage (as root): bash bench/idmap.sh        RUNS=N  IMAGE=bookworm|bookworm-slim  BENCH_USER=name
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-bookworm}
U=${BENCH_USER:-envctl-rl}
cache=${ENVCTL_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/envctl-base-images}
layout=$(ls -d "$cache"/"$IMAGE"-*/layout 2>/dev/null | grep -v slim | head -1 || true)
[ "$IMAGE" = bookworm-slim ] && layout=$(ls -d "$cache"/bookworm-slim-*/layout | head -1)
if [ -z "$layout" ]; then echo "no cached $IMAGE image: run scripts/base-images $IMAGE first" >&2; exit 1; fi
work=$(mktemp -d /var/tmp/envctl-bench-idmap.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$layout" "$work/layout"
chmod -R a+rX "$work"
chown "$U" "$work"
BENCH_DIR=$work RUNS=${RUNS:-3} PYTHONPATH=$PWD setpriv --reuid "$U" --regid "$U" --clear-groups \
    env HOME="$work" BENCH_DIR="$work" RUNS="${RUNS:-3}" PYTHONPATH="$PWD" .venv/bin/python bench/idmap_unpack.py "$work/layout"
