#!/usr/bin/env bash
# AIDB's IVF index against ScaNN, FAISS and USearch (from PyPI, in a venv this
# script creates) on the same data, one search thread each.
#   bench/ann/run_ivf_bench.sh [fmnist|clustered100k|clustered1m|clustered768] [build dir]
# Needs a build with -DAIDB_BUILD_BENCH=ON (target aidb_ivf_bench) and network
# access for pip the first time. Not part of CI. PEERS=aidb,aidb-disk,scann,faiss,faiss-hnsw,usearch
# picks what runs in the peers' process ("aidb": AIDB through the C API, next
# to them; "aidb-disk": the same with vectors_on_disk; FAISS's float HNSW and
# USearch are left out by default: slow to build). AIDB_BENCH_VENV names an
# existing venv.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SET=${1:-clustered100k}
BUILD=${2:-$ROOT/build/release}
VENV=${AIDB_BENCH_VENV:-$HOME/.cache/aidb-ivf-bench-venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy faiss-cpu scann usearch ||
    "$VENV/bin/pip" install -q numpy faiss-cpu usearch  # ScaNN has no wheel here: skipped
fi
case "$SET" in
  fmnist) ARGS=(--data fmnist --nq 1000) ;;
  clustered100k) ARGS=(--data clustered --n 100000 --dim 128 --centres 1000 --spread 1.0 --metric cosine --nq 1000) ;;
  # The 1M sets leave out the filtered runs (the exact filtered scans of
  # 1M points take minutes); run aidb_ivf_bench without --no-filtered for them.
  clustered1m) ARGS=(--data clustered --n 1000000 --dim 128 --centres 10000 --spread 1.0 --metric cosine --nq 1000 --no-filtered) ;;
  clustered768) ARGS=(--data clustered --n 1000000 --dim 768 --centres 10000 --spread 1.0 --metric cosine --nq 1000 --no-filtered) ;;
  *) echo "unknown data set $SET" >&2; exit 2 ;;
esac
OUT=$(mktemp -d "${TMPDIR:-/tmp}/aidb-ivf-bench-XXXXXX")
trap 'rm -rf "$OUT"' EXIT
"$BUILD/bench/ann/aidb_ivf_bench" "${ARGS[@]}" --nprobe 2,3,4,6,8,12,16,24,32,48 --rerank 40,60,100 \
  --export "$OUT" | tee "$OUT/aidb.log"
PYTHONPATH="$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}" AIDB_LIBRARY="$BUILD/src/libaidb.so" \
  "$VENV/bin/python" "$ROOT/bench/ann/ivf_peers.py" "$OUT" --libs "${PEERS:-aidb-disk,aidb,scann,faiss}"
# Ratios: AIDB (C API batch, same process as the peers, and its
# vectors_on_disk row: "disk") over each peer, and
# AIDB's own single-query index call (aidb_ivf_bench, above) beside it.
"$VENV/bin/python" - "$OUT" <<'PY'
import sys, re
d = sys.argv[1]
log = open(d + "/aidb.log").read()
m = re.search(r"recall >= 0.95: (\d+) .*?>= 0.99: (\d+)", log)
i95, i99 = (float(m.group(1)), float(m.group(2))) if m else (0, 0)
rows = [l.rstrip("\n").split("\t") for l in open(d + "/peers.txt")]
a = next((r for r in rows if r[0].startswith("AIDB IVF (C API")), None)
a95, a99 = (float(a[3]), float(a[4])) if a else (0, 0)
# The vectors_on_disk row (aidb-disk), if it ran: its ratios too.
v = next((r for r in rows if r[0].startswith("AIDB IVF vectors_on_disk")), None)
v95, v99 = (float(v[3]), float(v[4])) if v else (0, 0)
ratio = lambda x, y: f"{x / float(y):.2f}" if float(y) and x else "-"
print("\n| library | build s | RSS MiB | QPS@0.95 | AIDB/peer | disk/peer | QPS@0.99 | AIDB/peer | disk/peer |")
print("|---|---|---|---|---|---|---|---|---|")
for name, build, mem, q95, q99 in rows:
    print(f"| {name} | {build} | {mem} | {q95} | {ratio(a95, q95)} | {ratio(v95, q95)} "
          f"| {q99} | {ratio(a99, q99)} | {ratio(v99, q99)} |")
print(f"| AIDB IVF (index call, aidb_ivf_bench) | | | {i95:.0f} | | | {i99:.0f} | | |")
if v:
    for name, build, mem, q95, q99 in rows:
        if name.startswith("ScaNN") or name.startswith("FAISS"):
            print(f"vectors_on_disk / {name}: build {ratio(float(v[1]), build)}, "
                  f"RSS {ratio(float(v[2]), mem)}")
PY
