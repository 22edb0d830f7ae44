#!/usr/bin/env bash
# Configures and builds AIDB with a CMake preset (default: release).
#   scripts/build.sh [preset] [targets...]
# Installs nothing: when a Debian package is missing it stops and says so
# (install with scripts/install-deps.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PRESET=${1:-release}
shift || true
bash scripts/install-deps.sh --check apt
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/aidb-ccache}
if [ ! -f "build/$PRESET/build.ninja" ]; then
  cmake --preset "$PRESET" >/dev/null
fi
cmake --build --preset "$PRESET" -j "$(nproc)" ${1:+--target "$@"}
