#!/usr/bin/env bash
# Runs the cluster-mode tests: 3 real Kafka brokers (scripts/kafka.sh, KRaft,
# loopback, free ports, temporary directory) and real aidbd nodes in cluster
# mode, against the aidbd of a build dir.
# Usage: tests/cluster/run.sh BUILD_DIR [pytest args...]
# AIDB_CLUSTER_LONG=1 runs the recall test on 100k points instead of 20k.
# The broker jars are resolved once by scripts/kafka.sh (Maven Central); java,
# maven and kcat are installed with apt-get when missing. pytest: as
# tests/server/run.sh (python3's, else a venv in BUILD_DIR).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [pytest args...]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
shift
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ ! -x "$BUILD_DIR/src/server/aidbd" ]; then
  echo "run.sh: $BUILD_DIR/src/server/aidbd is missing: build the aidbd target first" >&2
  exit 1
fi
if ! "$BUILD_DIR/src/server/aidbd" --help 2>&1 | grep -q -- --kafka; then
  echo "run.sh: $BUILD_DIR/src/server/aidbd has no --kafka (built without cluster mode)" >&2
  exit 1
fi

# shellcheck source=tests/server/pytest_python.sh
source "$ROOT/tests/server/pytest_python.sh"

# The tools and jars once, before pytest's clock starts (a no-op when present).
bash "$ROOT/scripts/kafka.sh" prepare

export AIDB_BUILD_DIR="$BUILD_DIR"
exec "$PY" -m pytest -q -p no:cacheprovider -x "$HERE" --ignore="$HERE/unit" "$@"
