#!/usr/bin/env bash
# Hot-reload latency (issue 7): save -> restarted service serving the new content, 20 saves,
# p50/p95, for envctl's watcher + supervisor and for watchdog's `watchmedo auto-restart` on the
# same host service, plus the service's own start time. One run; see bench/reload.py.
# Usage: bash bench/reload.sh [SAVES]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" bench/reload.py "${1:-20}"
