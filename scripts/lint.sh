#!/usr/bin/env bash
# Runs clang-tidy (the checks of .clang-tidy, warnings are errors) over the
# C++ sources of src/, with the compile commands of the release build.
#   scripts/lint.sh [FILE...]            (default: every tracked src/**/*.cc)
# Configures build/release when needed and generates the Cap'n Proto header
# (target aidb_schema); builds nothing else. The whole run is bounded by
# AIDB_LINT_TIMEOUT seconds (default 1200); parallel jobs: AIDB_LINT_JOBS
# (default: the number of CPUs).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${AIDB_LINT_BUILD:-$ROOT/build/release}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
JOBS=${AIDB_LINT_JOBS:-$(nproc)}
LIMIT=${AIDB_LINT_TIMEOUT:-1200}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/aidb-ccache}

if ! command -v "$CLANG_TIDY" >/dev/null 2>&1; then
  echo "lint: $CLANG_TIDY not found (scripts/install-deps.sh installs clang-tidy)" >&2
  exit 1
fi
if [ ! -f "$BUILD/compile_commands.json" ]; then
  if [ "$BUILD" = "$ROOT/build/release" ]; then
    cmake --preset release >/dev/null || exit 1
  else
    echo "lint: $BUILD/compile_commands.json is missing" >&2
    exit 1
  fi
fi
# The sources include the generated snapshot.capnp.h.
cmake --build "$BUILD" --target aidb_schema >/dev/null || exit 1

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files -- 'src/*.cc')
fi

LOG=$(mktemp "${TMPDIR:-/tmp}/aidb-lint-XXXXXX")
trap 'rm -f "$LOG"' EXIT
start=$SECONDS
# One clang-tidy per file, JOBS at a time; --quiet drops the suppression
# statistics, so the log holds only findings and errors.
printf '%s\0' "${files[@]}" |
  timeout "$LIMIT" xargs -0 -P "$JOBS" -n 1 \
    "$CLANG_TIDY" --quiet -p "$BUILD" >"$LOG" 2>&1
rc=$?
grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$LOG"
if [ $rc -eq 124 ]; then
  echo "lint: stopped after ${LIMIT}s (AIDB_LINT_TIMEOUT)"
  exit 1
fi
findings=$(grep -c -E ': (warning|error): ' "$LOG")
echo "lint: ${#files[@]} files, $findings findings, $((SECONDS - start)) s"
[ $rc -eq 0 ] && [ "$findings" -eq 0 ]
