#!/usr/bin/env bash
# The long forms of the reliability suite (on demand, not in CI).
#   bench/reliability/long.sh [crash|daemon|fuzz|load|all] ...
# Environment: AIDB_BUILD (default build/release), KILLS (default 200),
# FUZZ_SECONDS (per target, default 600), LOAD_SECONDS (default 300).
#   crash   aidb_crash_loop: KILLS SIGKILLs of a library writer (fsync
#           durability; half at crash points inside snapshot_to / the WAL
#           truncation), then KILLS of a database writer.
#   daemon  daemon_crash.py: KILLS SIGKILLs of aidbd under HTTP ingest.
#   fuzz    every libFuzzer target for FUZZ_SECONDS from the committed corpus.
#   load    load.py: aidbd under searches + upserts + snapshots.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${AIDB_BUILD:-$ROOT/build/release}
KILLS=${KILLS:-200}
WHAT=${1:-all}
WORK=$(mktemp -d /tmp/aidb-long-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target aidb_faultfs aidb_crash_loop aidbd aidb_cli >/dev/null || exit 1
SHIM=$BUILD/tests/reliability/libaidb_faultfs.so
rc=0
if [ "$WHAT" = crash ] || [ "$WHAT" = all ]; then
  AIDB_FAULTFS=$SHIM "$BUILD/tests/reliability/aidb_crash_loop" "$WORK/lib" "$KILLS" lib 11 || rc=1
  AIDB_FAULTFS=$SHIM "$BUILD/tests/reliability/aidb_crash_loop" "$WORK/db" "$KILLS" db 12 || rc=1
fi
if [ "$WHAT" = daemon ] || [ "$WHAT" = all ]; then
  python3 "$ROOT/tests/reliability/daemon_crash.py" --aidbd "$BUILD/src/server/aidbd" --dir "$WORK/daemon" \
    --kills "$KILLS" --faultfs "$SHIM" --seed 13 || rc=1
fi
if [ "$WHAT" = fuzz ] || [ "$WHAT" = all ]; then
  bash "$ROOT/fuzz/run.sh" "${FUZZ_SECONDS:-600}" "$WORK/fuzz" || rc=1
fi
if [ "$WHAT" = load ] || [ "$WHAT" = all ]; then
  python3 "$ROOT/bench/reliability/load.py" --aidbd "$BUILD/src/server/aidbd" --seconds "${LOAD_SECONDS:-300}" \
    "${@:2}" || rc=1
fi
exit $rc
