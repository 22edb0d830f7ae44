#!/usr/bin/env bash
# Checks the operator files under ops/ (Prometheus rules, Grafana dashboard):
#   tests/ops/run.sh BUILD_DIR [pytest args...]
# 1. promtool check rules + promtool test rules (ops/prometheus/tests/*.yml)
# 2. pytest tests/ops: the dashboard is valid JSON; every metric name used by
#    the rules and the dashboard is exported by a live aidbd (BUILD_DIR's
#    src/server/aidbd, started as tests/server does); promtool check metrics
#    on that scrape.
# promtool comes with Debian's prometheus package (scripts/install-deps.sh).
# Output of the promtool runs: BUILD_DIR/ops/promtool-*.log.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [pytest args...]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
shift
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$BUILD_DIR/ops
mkdir -p "$OUT"
if [ ! -x "$BUILD_DIR/src/server/aidbd" ]; then
  echo "run.sh: $BUILD_DIR/src/server/aidbd is missing: build the aidbd target first" >&2
  exit 1
fi
command -v promtool >/dev/null || { echo "run.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }

echo "=== promtool check rules"
promtool check rules "$ROOT"/ops/prometheus/*.yml 2>&1 | tee "$OUT/promtool-check.log"
echo "=== promtool test rules"
(cd "$ROOT/ops/prometheus/tests" && promtool test rules ./*.yml) 2>&1 | tee "$OUT/promtool-test.log"

PY=""
for cand in python3 "$BUILD_DIR/server-tests-venv/bin/python"; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import pytest" >/dev/null 2>&1; then
    PY=$cand
    break
  fi
done
if [ -z "$PY" ]; then
  VENV="$BUILD_DIR/server-tests-venv"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -r "$ROOT/tests/server/requirements.txt"
  PY="$VENV/bin/python"
fi
echo "=== pytest tests/ops"
export AIDB_BUILD_DIR="$BUILD_DIR"
cd "$HERE"
exec "$PY" -m pytest -q -p no:cacheprovider "$HERE" "$@"
