#!/usr/bin/env bash
# Runs the aidbd / aidb integration tests against the binaries of a build dir.
# Usage: tests/server/run.sh BUILD_DIR [pytest args...]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [pytest args...]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
shift
HERE=$(cd "$(dirname "$0")" && pwd)
for bin in "$BUILD_DIR/src/server/aidbd" "$BUILD_DIR/src/server/aidb"; do
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing: build the aidbd and aidb_cli targets first" >&2
    exit 1
  fi
done
export AIDB_BUILD_DIR="$BUILD_DIR"
exec python3 -m pytest -q -p no:cacheprovider "$HERE" "$@"
