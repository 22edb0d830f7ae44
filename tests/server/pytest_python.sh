# Sourced by the pytest runners (tests/server, tests/cluster): sets PY to a
# python3 that has pytest; when none on PATH has it, makes a venv once in
# $BUILD_DIR/server-tests-venv and installs tests/server/requirements.txt.
# Needs BUILD_DIR set.
PY=""
for cand in python3 /usr/bin/python3 "$BUILD_DIR/server-tests-venv/bin/python"; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import pytest" >/dev/null 2>&1; then
    PY=$cand
    break
  fi
done
if [ -z "$PY" ]; then
  echo "run.sh: no pytest found; installing it into $BUILD_DIR/server-tests-venv" >&2
  python3 -m venv "$BUILD_DIR/server-tests-venv"
  "$BUILD_DIR/server-tests-venv/bin/python" -m pip install -q \
    -r "$(dirname "${BASH_SOURCE[0]}")/requirements.txt"
  PY="$BUILD_DIR/server-tests-venv/bin/python"
fi
