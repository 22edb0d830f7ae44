#!/usr/bin/env bash
# Builds AIDB (installing what it needs) and starts the daemon on ./data,
# listening on 127.0.0.1:8080. Extra arguments go to aidbd (see --help).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/build.sh" release aidbd aidb_cli
mkdir -p data
exec "$ROOT/build/release/src/server/aidbd" --data-dir ./data "$@"
