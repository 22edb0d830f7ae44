#!/usr/bin/env bash
# Runs the storage benchmarks (ingest vs SQLite/RocksDB, WAL replay,
# snapshot load) and deletes their data afterwards. Builds the two harnesses in
# BUILD_DIR (default build-bench) first.
#   bench/run_storage_bench.sh [build-dir]
# Extra flags go to the harnesses through INGEST_ARGS / RECOVERY_ARGS, e.g.
#   INGEST_ARGS="--runs 5 --seconds 3" RECOVERY_ARGS="--runs 5" bench/run_storage_bench.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build-bench}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIDB_BUILD_BENCH=ON
fi
ninja -C "$build" -j2 aidb_ingest_bench aidb_recovery_bench
data="$build/bench-data"
trap 'rm -rf "$data"' EXIT
df -hT "$build" | tail -1 | awk '{print "# filesystem: " $1 " (" $2 "), " $5 " free"}'
"$build/bench/ingest/aidb_ingest_bench" ${INGEST_ARGS:-}
echo
"$build/bench/recovery/aidb_recovery_bench" ${RECOVERY_ARGS:-}
