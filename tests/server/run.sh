#!/usr/bin/env bash
# Runs the aidbd / aidb integration tests against the binaries of a build dir.
# Usage: tests/server/run.sh BUILD_DIR [pytest args...]
# Needs python3 with pytest (requirements.txt); when the python3 on PATH has no
# pytest, a venv is made once in BUILD_DIR/server-tests-venv and pytest
# installed into it from PyPI. promtool (Debian package prometheus) and wrk are
# installed by scripts/install-deps.sh.
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

# shellcheck source=tests/server/pytest_python.sh
source "$HERE/pytest_python.sh"

export AIDB_BUILD_DIR="$BUILD_DIR"
exec "$PY" -m pytest -q -p no:cacheprovider "$HERE" "$@"
