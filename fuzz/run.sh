#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build/fuzz and runs each
# for SECONDS from its committed corpus (fuzz/corpus/<target>/), copied to a
# scratch dir so the committed corpus is not changed.
#   fuzz/run.sh [SECONDS=20] [WORKDIR] [TARGET...]
# Long run (on demand): AIDB_FUZZ_MERGE=1 fuzz/run.sh 1800  -- and with
# AIDB_FUZZ_MERGE=1 the new inputs that add coverage are merged back into
# fuzz/corpus/. Prints executions and coverage (libFuzzer's cov/ft) per target.
# Exits non-zero if a target crashes (the reproducer is kept in WORKDIR).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${1:-20}
WORK=${2:-$(mktemp -d /tmp/aidb-fuzz-XXXXXX)}
shift 2 2>/dev/null || shift $#
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(wal snapshot filter api http)
BUILD=${AIDB_FUZZ_BUILD:-$ROOT/build/fuzz}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/aidb-ccache}
mkdir -p "$WORK"

# The server is configured (only the fuzz targets are built) because the api
# and http fuzzers link its console-assets target.
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAIDB_BUILD_FUZZ=ON -DAIDB_SANITIZE=address,undefined \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
    -DAIDB_BUILD_BENCH=OFF -DAIDB_BUILD_SERVER=ON >"$WORK/configure.log" 2>&1 || {
    cat "$WORK/configure.log"
    exit 1
  }
fi
bins=()
for t in "${TARGETS[@]}"; do bins+=("aidb_fuzz_$t"); done
cmake --build "$BUILD" -j "$(nproc)" --target "${bins[@]}" >"$WORK/build.log" 2>&1 || {
  tail -40 "$WORK/build.log"
  exit 1
}

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export AIDB_FUZZ_TMP="$WORK"
rc=0
for t in "${TARGETS[@]}"; do
  corpus="$WORK/corpus-$t"
  mkdir -p "$corpus"
  cp "$ROOT/fuzz/corpus/$t"/* "$corpus/" 2>/dev/null || true
  dict=()
  [ -f "$ROOT/fuzz/$t.dict" ] && dict=(-dict="$ROOT/fuzz/$t.dict")
  log="$WORK/$t.log"
  (cd "$WORK" && "$BUILD/fuzz/aidb_fuzz_$t" "$corpus" "${dict[@]}" -max_total_time="$SECONDS_EACH" \
    -max_len=65536 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$WORK/$t-" \
    >"$log" 2>&1)
  st=$?
  execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')
  files=$(ls "$corpus" | wc -l)
  printf 'fuzz %-9s %4ss: %s execs, cov %s, ft %s, corpus %s -> %s files: %s\n' "$t" "$SECONDS_EACH" \
    "${execs:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$ROOT/fuzz/corpus/$t" 2>/dev/null | wc -l)" "$files" \
    "$([ $st -eq 0 ] && echo ok || echo FAILED)"
  if [ $st -ne 0 ]; then
    rc=1
    grep -E 'ERROR|runtime error|SUMMARY|==[0-9]+==|#[0-9]+ 0x' "$log" | head -40
    ls "$WORK/$t-"* 2>/dev/null
  fi
  if [ "${AIDB_FUZZ_MERGE:-0}" = 1 ] && [ $st -eq 0 ]; then
    mkdir -p "$ROOT/fuzz/corpus/$t"
    "$BUILD/fuzz/aidb_fuzz_$t" -merge=1 "$ROOT/fuzz/corpus/$t" "$corpus" >"$WORK/$t-merge.log" 2>&1
  fi
done
exit $rc
