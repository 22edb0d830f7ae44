#!/usr/bin/env bash
# Binding overhead benchmark: single-thread search QPS on 784-dim vectors
# (HNSW, M=16, top 10 with payloads) through the C API and through the Go,
# Rust and Python bindings, on the same snapshot and queries, in one run.
#   tests/packaging/run_bench.sh BUILD_DIR [N_POINTS] [N_QUERIES] [ROUNDS]
# Prints, per language, the median over interleaved runs of QPS by wall clock
# and by process CPU time (robust when the machine is shared), and each ratio
# binding / C. Not a pass/fail test.
set -euo pipefail
BUILD=$(realpath "$1")
N=${2:-10000}
NQ=${3:-1000}
ROUNDS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$BUILD/packaging/bench
PREFIX=$BUILD/packaging/bench-prefix
mkdir -p "$OUT"
rm -rf "$PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
LIBDIR=$PREFIX/lib
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig LD_LIBRARY_PATH=$LIBDIR

# shellcheck disable=SC2046
cc -std=c99 -O2 -D_POSIX_C_SOURCE=200809L -o "$OUT/capi_search_bench" \
  "$HERE/bench/capi_search_bench.c" $(pkg-config --cflags --libs aidb)
(cd "$ROOT/bindings/go" && go build -o "$OUT/aidb-bench-go" ./cmd/aidb-bench)
(cd "$ROOT/bindings/rust" && CARGO_TARGET_DIR=$BUILD/packaging/cargo-target \
  cargo build --locked --release --example bench_search -q)
RUST_BENCH=$BUILD/packaging/cargo-target/release/examples/bench_search
# Python: the package with its compiled search (aidb._fast) built against the
# installed header and no bundled library, so it loads the same libaidb as
# the others ($AIDB_LIBRARY); "python-ctypes" is the same package with the
# extension turned off.
VENV=$BUILD/packaging/bench-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy "scikit-build-core>=0.10"
fi
AIDB_INCLUDE_DIR=$PREFIX/include "$VENV/bin/pip" install -q --no-deps --no-build-isolation \
  --force-reinstall -C cmake.define.AIDB_PYTHON_BUNDLE=OFF \
  -C build-dir="$BUILD/packaging/bench-python-build" "$ROOT/bindings/python"

if [ ! -f "$OUT/data/bench.snapshot" ] || [ "$(cat "$OUT/data/params" 2>/dev/null)" != "$N $NQ" ]; then
  rm -rf "$OUT/data" && mkdir -p "$OUT/data"
  echo "preparing $N points x 784 dims, $NQ queries ..."
  "$OUT/capi_search_bench" prepare "$OUT/data" "$N" "$NQ"
  echo "$N $NQ" >"$OUT/data/params"
fi

qps() { sed -n 's/.* qps=\([0-9.]*\) cpu_qps=\([0-9.]*\).*/\1 \2/p'; }
# The machine is shared: interleave the four programs REPS times and compare
# medians, so a burst of load elsewhere hits every language alike.
REPS=${REPS:-5}
: >"$OUT/results.txt"
for r in $(seq "$REPS"); do
  echo "c $("$OUT/capi_search_bench" run "$OUT/data" "$ROUNDS" | qps)" >>"$OUT/results.txt"
  echo "go $("$OUT/aidb-bench-go" "$OUT/data" "$ROUNDS" | qps)" >>"$OUT/results.txt"
  echo "rust $("$RUST_BENCH" "$OUT/data" "$ROUNDS" | qps)" >>"$OUT/results.txt"
  echo "python $(cd "$OUT" && AIDB_LIBRARY=$LIBDIR/libaidb.so.0 "$VENV/bin/python" \
    "$ROOT/bindings/python/bench/bench_search.py" "$OUT/data" "$ROUNDS" |
    grep route=extension | qps)" >>"$OUT/results.txt"
  echo "python-ctypes $(cd "$OUT" && AIDB_LIBRARY=$LIBDIR/libaidb.so.0 AIDB_PYTHON_FAST=0 \
    "$VENV/bin/python" "$ROOT/bindings/python/bench/bench_search.py" "$OUT/data" "$ROUNDS" |
    qps)" >>"$OUT/results.txt"
done
echo "search QPS, $N points x 784 dims, $NQ queries x $ROUNDS rounds, median of $REPS interleaved runs"
"$VENV/bin/python" - "$OUT/results.txt" <<'PY'
import statistics, sys
wall, cpu = {}, {}
for line in open(sys.argv[1]):
    lang, w, c = line.split()
    wall.setdefault(lang, []).append(float(w))
    cpu.setdefault(lang, []).append(float(c))
cw, cc = statistics.median(wall["c"]), statistics.median(cpu["c"])
print("               wall-clock QPS (ratio)     per CPU-second QPS (ratio)   [wall runs]")
for lang in ("c", "go", "rust", "python", "python-ctypes"):
    w, c = statistics.median(wall[lang]), statistics.median(cpu[lang])
    print(f"{lang:13s} {w:10.1f} ({w / cw:.3f})      {c:10.1f} ({c / cc:.3f})"
          f"      [{' '.join(f'{x:.0f}' for x in wall[lang])}]")
PY
