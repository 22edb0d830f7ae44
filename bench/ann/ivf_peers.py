#!/usr/bin/env python3
"""ScaNN, FAISS (IVFPQFastScan + exact refine, HNSW) and USearch on the data
aidb_ivf_bench --export wrote: one search thread through each library's
batch API (QPS per second of process CPU time), recall@10 against the same ground truth, the best QPS at
recall >= 0.95 and >= 0.99, build time (wall clock and process CPU seconds)
and anonymous RSS growth.

    ivf_peers.py DIR [--libs aidb,aidb-disk,scann,faiss,faiss-hnsw,usearch] [--build-threads 2]
                 [--nprobes 2,4,...] [--reranks 40,60,100] [--k-factors 4,10,20]
                 [--reorders 50,100,200]

--nprobes is the partitions swept for every IVF library (AIDB's nprobe,
FAISS's nprobe, ScaNN's leaves_to_search); --reranks, --k-factors and
--reorders the exact re-rank depth of AIDB, FAISS and ScaNN. QPS are given
per second of process CPU time and of wall time (best of 3 repeats each).

"aidb" runs AIDB's IVF through the Python binding (the C API's batch search,
one thread) in the same process as the peers; "aidb-disk" the same with
vectors_on_disk (the float vectors in a file beside a WAL in DIR, durability
none: its RSS growth leaves them out, the page cache holds them).
"""
import argparse
import math
import os
import sys
import time

import numpy as np


def rss_anon():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds():
    """User + system CPU time of the whole process (every thread): a build's
    work, which unlike its wall clock does not grow with the machine's load."""
    t = os.times()
    return t.user + t.system


def recall(ids, gt):
    k = gt.shape[1]
    hit = 0
    for row, truth in zip(ids, gt):
        hit += len(set(int(x) for x in row[:k]) & set(int(x) for x in truth))
    return hit / gt.size


def best(rows, target, col=2):
    ok = [r for r in rows if r[1] >= target]
    return max(ok, key=lambda r: r[col]) if ok else None


SWEEP = {"nprobes": (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128),
         "reranks": (40, 60, 100), "k_factors": (4, 10, 20), "reorders": (50, 100, 200)}


def timed_batches(fn, q, repeats=3):
    """Queries per second of process CPU time (one search thread, so this is
    the time on a core; wall time on a shared machine measures the
    neighbours), best of the repeats."""
    qps, wall = [], []
    out = None
    for _ in range(repeats):
        t0, w0 = time.process_time(), time.perf_counter()
        out = fn(q)
        qps.append(len(q) / max(time.process_time() - t0, 1e-9))
        wall.append(len(q) / max(time.perf_counter() - w0, 1e-9))
    return out, (max(qps), max(wall))


def run_aidb(base, q, gt, metric, threads, disk_dir=None):
    """AIDB's IVF through the Python binding (PYTHONPATH=bindings/python,
    AIDB_LIBRARY=<build>/src/libaidb.so). Two rows: the C API's batch call
    itself (aidb_collection_search_batch + aidb_search_result_free through
    ctypes, per-query nprobe and rerank in aidb_search_options: what any
    host pays), and the binding's search_batch_arrays (the same call plus
    copying every hit's 36-character id into a numpy <U36 array, default
    rerank)."""
    import ctypes
    import aidb
    from aidb import _capi as C
    from aidb._search import _hit_view
    lib = C.lib
    n, d = base.shape
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
    r0, t0, c0 = rss_anon(), time.perf_counter(), cpu_seconds()
    # nlist as AIDB picks it for n points (round(sqrt(n))), given explicitly
    # because a large set is loaded in several calls (one call's WAL record
    # is at most 1 GiB) and the first training runs inside the first call,
    # on the points it brings. That call brings over a quarter of the set,
    # so no retraining (at 4x the trained count) follows.
    ivf = {"nlist": int(round(math.sqrt(n)))}
    if disk_dir:
        c = aidb.Collection(name="bench", dim=d, metric=metric, index="ivf", ivf=ivf,
                            wal_path=os.path.join(disk_dir, "aidb-disk.wal"), durability="none",
                            vectors_on_disk=True)
    else:
        c = aidb.Collection(name="bench", dim=d, metric=metric, index="ivf", ivf=ivf)
    step = max(n // 4 + 1, min(n, (768 << 20) // (4 * d)))
    for s in range(0, n, step):
        c.upsert_batch(ids[s:s + step], base[s:s + step])
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - c0
    mem = rss_anon() - r0
    qc = np.ascontiguousarray(q, dtype=np.float32)

    def capi_batch(nprobe, rerank):
        o = C.aidb_search_options()
        lib.aidb_search_options_init(ctypes.byref(o))
        o.top_k, o.ef_search, o.ivf_rerank, o.threads = 10, nprobe, rerank, 1
        best_qps, best_wall, got = 0.0, 0.0, None
        for _ in range(3):
            res = ctypes.c_void_p()
            t, w = time.process_time(), time.perf_counter()
            c._call(lib.aidb_collection_search_batch, qc.ctypes.data, qc.shape[0], qc.shape[1],
                    ctypes.byref(o), ctypes.byref(res))
            if got is None:  # read the hits once, outside the timed part
                t_read, w_read = time.process_time(), time.perf_counter()
                got = []
                for i in range(len(qc)):
                    v = _hit_view(res.value, i)
                    got.append([] if v is None else [int(x[-12:]) for x in v["id"]])
                t += time.process_time() - t_read
                w += time.perf_counter() - w_read
            lib.aidb_search_result_free(res)
            best_qps = max(best_qps, len(qc) / max(time.process_time() - t, 1e-9))
            best_wall = max(best_wall, len(qc) / max(time.perf_counter() - w, 1e-9))
        return got, (best_qps, best_wall)

    def capi_single(nprobe, rerank):
        """aidb_collection_search once per query (result freed each time),
        called straight through ctypes (~1 us of Python per call counts)."""
        o = C.aidb_search_options()
        lib.aidb_search_options_init(ctypes.byref(o))
        o.top_k, o.ef_search, o.ivf_rerank = 10, nprobe, rerank
        ptr, search, free = c._ptr, lib.aidb_collection_search, lib.aidb_search_result_free
        addrs = [qc.ctypes.data + i * qc.strides[0] for i in range(len(qc))]
        res, ro = ctypes.c_void_p(), ctypes.byref(o)
        rr = ctypes.byref(res)
        got = []
        for a in addrs:  # the hits, outside the timed part
            if search(ptr, a, d, ro, rr, None) != 0:
                raise RuntimeError("aidb_collection_search failed")
            v = _hit_view(res.value, 0)
            got.append([] if v is None else [int(x[-12:]) for x in v["id"]])
            free(res)
        best_qps, best_wall = 0.0, 0.0
        for _ in range(3):
            t, w = time.process_time(), time.perf_counter()
            for a in addrs:
                search(ptr, a, d, ro, rr, None)
                free(res)
            best_qps = max(best_qps, len(qc) / max(time.process_time() - t, 1e-9))
            best_wall = max(best_wall, len(qc) / max(time.perf_counter() - w, 1e-9))
        return got, (best_qps, best_wall)

    nprobes = SWEEP["nprobes"]
    rows, single = [], []
    for rerank in SWEEP["reranks"]:
        for nprobe in nprobes:
            got, qps = capi_batch(nprobe, rerank)
            rows.append((f"nprobe={nprobe} rerank={rerank}", recall(got, gt), *qps))
            if not disk_dir:
                got, qps = capi_single(nprobe, rerank)
                single.append((f"nprobe={nprobe} rerank={rerank}", recall(got, gt), *qps))
    if disk_dir:
        c.close()
        yield ("AIDB IVF vectors_on_disk (C API batch)",
               "nlist=sqrt(n), 4-bit PQ, floats in a file (page cache)", build, build_cpu, mem,
               rows)
        return
    yield ("AIDB IVF (C API batch)", "nlist=sqrt(n), 4-bit PQ", build, build_cpu, mem, rows)
    yield ("AIDB IVF (C API single query)", "same index, aidb_collection_search per query",
           0.0, 0.0, 0, single)
    rows = []
    for nprobe in nprobes:
        (got, _), qps = timed_batches(
            lambda x: c.search_batch_arrays(x, k=10, ef_search=nprobe, threads=1), q)
        ints = np.array([[int(s[-12:]) if s else -1 for s in row] for row in got])
        rows.append((f"nprobe={nprobe} rerank=default", recall(ints, gt), *qps))
    c.close()
    yield ("AIDB IVF (Python search_batch_arrays)", "same index", 0.0, 0.0, 0, rows)


def run_faiss(base, q, gt, metric, threads):
    import faiss
    n, d = base.shape
    nlist = int(round(math.sqrt(n)))
    sub = 1 if d <= 64 else 2 if d <= 256 else 4
    m = d // sub
    mt = faiss.METRIC_INNER_PRODUCT if metric != "euclidean" else faiss.METRIC_L2
    rows = []
    faiss.omp_set_num_threads(threads)
    r0, t0, c0 = rss_anon(), time.perf_counter(), cpu_seconds()
    idx = faiss.index_factory(d, f"IVF{nlist},PQ{m}x4fs,RFlat", mt)
    idx.train(base)
    idx.add(base)
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - c0
    mem = rss_anon() - r0
    faiss.omp_set_num_threads(1)
    ivf = faiss.extract_index_ivf(idx)
    for nprobe in SWEEP["nprobes"]:
        if nprobe > nlist:
            continue
        for kf in SWEEP["k_factors"]:
            ivf.nprobe = nprobe
            idx.k_factor = kf
            (_, ids), qps = timed_batches(lambda x: idx.search(x, 10), q)
            rows.append((f"nprobe={nprobe} k_factor={kf}", recall(ids, gt), *qps))
    yield ("FAISS IVFPQFastScan+refine", f"IVF{nlist},PQ{m}x4fs,RFlat", build, build_cpu, mem,
           rows)


def run_faiss_hnsw(base, q, gt, metric, threads):
    import faiss
    n, d = base.shape
    mt = faiss.METRIC_INNER_PRODUCT if metric != "euclidean" else faiss.METRIC_L2
    faiss.omp_set_num_threads(threads)
    r0, t0, c0 = rss_anon(), time.perf_counter(), cpu_seconds()
    h = faiss.IndexHNSWFlat(d, 16, mt)
    h.hnsw.efConstruction = 200
    h.add(base)
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - c0
    mem = rss_anon() - r0
    faiss.omp_set_num_threads(1)
    rows = []
    for ef in (16, 32, 48, 64, 96, 128, 192, 256):
        h.hnsw.efSearch = ef
        (_, ids), qps = timed_batches(lambda x: h.search(x, 10), q)
        rows.append((f"efSearch={ef}", recall(ids, gt), *qps))
    yield ("FAISS HNSWFlat", "M=16 efConstruction=200", build, build_cpu, mem, rows)


def run_scann(base, q, gt, metric, threads):
    import scann
    n, d = base.shape
    leaves = int(round(math.sqrt(n)))
    dist = "squared_l2" if metric == "euclidean" else "dot_product"
    r0, t0, c0 = rss_anon(), time.perf_counter(), cpu_seconds()
    s = (scann.scann_ops_pybind.builder(base, 10, dist)
         .tree(num_leaves=leaves, num_leaves_to_search=max(8, leaves // 10),
               training_sample_size=min(n, 250000))
         .score_ah(2, anisotropic_quantization_threshold=0.2)
         .reorder(100)
         .set_n_training_threads(threads)
         .build())
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - c0
    mem = rss_anon() - r0
    rows = []
    for lts in SWEEP["nprobes"]:
        if lts > leaves:
            continue
        for pre in SWEEP["reorders"]:
            (ids, _), qps = timed_batches(
                lambda x: s.search_batched(x, leaves_to_search=lts, pre_reorder_num_neighbors=pre), q)
            rows.append((f"leaves_to_search={lts} reorder={pre}", recall(ids, gt), *qps))
    yield ("ScaNN", f"tree {leaves} leaves, AH 2 dims/block (thr 0.2), reorder", build, build_cpu,
           mem, rows)


def run_usearch(base, q, gt, metric, threads):
    from usearch.index import Index
    n, d = base.shape
    r0, t0, c0 = rss_anon(), time.perf_counter(), cpu_seconds()
    idx = Index(ndim=d, metric="l2sq" if metric == "euclidean" else "ip", dtype="f32",
                connectivity=16, expansion_add=200)
    idx.add(np.arange(n, dtype=np.uint64), base, threads=threads)
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - c0
    mem = rss_anon() - r0
    rows = []
    for ef in (16, 32, 48, 64, 96, 128, 192, 256):
        idx.expansion_search = ef
        res, qps = timed_batches(lambda x: idx.search(x, 10, threads=1), q)
        rows.append((f"expansion_search={ef}", recall(res.keys, gt), *qps))
    yield ("USearch HNSW f32", "connectivity=16 expansion_add=200", build, build_cpu, mem, rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--libs", default="scann,faiss,usearch")
    ap.add_argument("--build-threads", type=int, default=2)
    ints = lambda v: tuple(int(x) for x in v.split(","))
    ap.add_argument("--nprobes", type=ints, default=SWEEP["nprobes"])
    ap.add_argument("--reranks", type=ints, default=SWEEP["reranks"])
    ap.add_argument("--k-factors", type=ints, default=SWEEP["k_factors"])
    ap.add_argument("--reorders", type=ints, default=SWEEP["reorders"])
    a = ap.parse_args()
    SWEEP.update(nprobes=a.nprobes, reranks=a.reranks, k_factors=a.k_factors,
                 reorders=a.reorders)
    n, nq, d, metric = open(os.path.join(a.dir, "meta.txt")).read().split()
    n, nq, d = int(n), int(nq), int(d)
    base = np.fromfile(os.path.join(a.dir, "base.f32"), dtype=np.float32).reshape(n, d)
    q = np.fromfile(os.path.join(a.dir, "queries.f32"), dtype=np.float32).reshape(nq, d)
    gt = np.fromfile(os.path.join(a.dir, "gt.u32"), dtype=np.uint32).reshape(nq, 10)
    if metric == "cosine":
        base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    base = np.ascontiguousarray(base)
    q = np.ascontiguousarray(q)
    print(f"peers on {n} x {d} ({metric}), {nq} queries; 1 search thread, "
          f"{a.build_threads} build threads")
    runners = {"aidb": run_aidb,
               "aidb-disk": lambda *x: run_aidb(*x, disk_dir=a.dir), "faiss": run_faiss, "faiss-hnsw": run_faiss_hnsw, "scann": run_scann,
               "usearch": run_usearch}
    for lib in a.libs.split(","):
        try:
            runner = runners[lib](base, q, gt, metric, a.build_threads)
            for name, params, build, build_cpu, mem, rows in runner:
                b95, b99 = best(rows, 0.95), best(rows, 0.99)
                w95, w99 = best(rows, 0.95, 3), best(rows, 0.99, 3)
                fmt = lambda r, c=2: (f"{r[c]:.0f} ({r[0]}, recall {r[1]:.4f})" if r
                                      else "not reached")
                print(f"\n{name} [{params}]: build {build:.2f} s wall, {build_cpu:.2f} CPU s "
                      f"(load {os.getloadavg()[0]:.2f}), RSS growth {mem / 2**20:.1f} MiB")
                for r in rows:
                    print(f"  {r[0]}: recall@10 {r[1]:.4f}, {r[2]:.0f} QPS (CPU), {r[3]:.0f} wall")
                print(f"  best at recall >= 0.95: {fmt(b95)}; wall {fmt(w95, 3)}")
                print(f"  best at recall >= 0.99: {fmt(b99)}; wall {fmt(w99, 3)}")
                print(f"  best recall in the sweep: {max(r[1] for r in rows):.4f}")
                with open(os.path.join(a.dir, "peers.txt"), "a") as f:
                    f.write(f"{name}\t{build:.2f}\t{build_cpu:.2f}\t{mem / 2**20:.1f}\t"
                            f"{b95[2] if b95 else 0:.0f}\t{b99[2] if b99 else 0:.0f}\t"
                            f"{w95[3] if w95 else 0:.0f}\t{w99[3] if w99 else 0:.0f}\n")
        except ImportError as e:
            print(f"\n{lib}: not installed ({e})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
