#!/usr/bin/env bash
# Builds AIDB once and runs every test suite: the C++ unit and C API tests
# (ctest), the daemon's integration tests against the real aidbd, and the
# packaging + Go + Rust + Python binding tests against the library of this
# build. Installs what it needs. Exits non-zero if any suite fails.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD="$ROOT/build/release"

bash scripts/build.sh release || { echo "build failed"; exit 1; }

passed=0
failed=0
failed_names=()
run_suite() {
  local name=$1
  shift
  echo "=== $name: $*"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

run_suite ctest ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" --timeout 600
if [ -x tests/server/run.sh ]; then
  run_suite server bash tests/server/run.sh "$BUILD"
fi
if [ -x tests/packaging/run_bindings.sh ]; then
  run_suite bindings bash tests/packaging/run_bindings.sh "$BUILD"
fi
if [ -x tests/reliability/run.sh ]; then
  run_suite reliability bash tests/reliability/run.sh "$ROOT"
fi

if [ "$failed" -ne 0 ]; then echo "failed suites: ${failed_names[*]}"; fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
