"""Search QPS through the Python binding on the data set written by
tests/packaging/bench/capi_search_bench (`prepare`), doing exactly what its
`run` does: load the snapshot, run every query ROUNDS times on one thread,
top 10 with payloads.

    python bench/bench_search.py DIR [ROUNDS]

Run it against an installed package (not from this directory) to measure
aidb._fast, the compiled search; AIDB_PYTHON_FAST=0 measures the ctypes
route. The route taken is printed.
"""
import os
import sys
import time

import numpy as np

import aidb
from aidb._search import SEARCH_ROUTE

DIM = 784


def main():
    d = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    q = np.fromfile(os.path.join(d, "queries.f32"), dtype="<f4").reshape(-1, DIM)
    with aidb.Collection("bench", DIM, metric="euclidean", index="hnsw", m=16,
                         ef_construction=100) as c:
        c.load_snapshot(os.path.join(d, "bench.snapshot"))
        hits = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            for row in q:
                hits += len(c.search(row, k=10))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = len(q) * rounds
    print(f"python qps={n / dt:.1f} cpu_qps={n / dc:.1f} queries={n} hits={hits} "
          f"route={SEARCH_ROUTE}")


if __name__ == "__main__":
    main()
