#!/usr/bin/env bash
# The web console's browser test: a real aidbd, Debian's chromium driven
# headless by chromedriver through Python selenium.
# Usage: tests/console/run.sh BUILD_DIR [pytest args...]
# Installs chromium and chromium-driver with apt-get when they are missing
# (root or sudo), and selenium + pytest (requirements.txt, pinned) into a venv
# of its own, BUILD_DIR/console-tests-venv. Screenshots of every view go to
# BUILD_DIR/console-screenshots/ (their paths are printed).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [pytest args...]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
shift
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$BUILD_DIR/src/server/aidbd" ]; then
  echo "run.sh: $BUILD_DIR/src/server/aidbd is missing: build the aidbd target first" >&2
  exit 1
fi

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "run.sh: installing chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

VENV="$BUILD_DIR/console-tests-venv"
STAMP="$VENV/.requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$HERE/requirements.txt" "$STAMP"; then
  echo "run.sh: installing $(grep -v '^#' "$HERE/requirements.txt" | tr '\n' ' ')into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$STAMP"
fi

export AIDB_BUILD_DIR="$BUILD_DIR"
export AIDB_CONSOLE_SCREENSHOTS="$BUILD_DIR/console-screenshots"
# Selenium must use the system chromium and chromedriver, never download one.
export SE_OFFLINE=true
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider -s "$HERE" "$@"
