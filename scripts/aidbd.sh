#!/usr/bin/env bash
# Installs what is missing (scripts/install-deps.sh apt), builds AIDB and
# starts the daemon on ./data, listening on 127.0.0.1:8080. Extra arguments
# go to aidbd (see --help and docs/http-api.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/install-deps.sh" apt
bash "$ROOT/scripts/build.sh" release aidbd aidb_cli
mkdir -p data
exec "$ROOT/build/release/src/server/aidbd" --data-dir ./data "$@"
