"""RssAnon growth of one AIDB collection built through the Python binding, in
a fresh process: what the engine and its index hold per point.

  PYTHONPATH=bindings/python AIDB_LIBRARY=<build>/src/libaidb.so \\
    python3 bench/ann/collection_memory.py KIND N DIM [--payloads] [--step S]
        [--base FILE --metric cosine]

KIND flat, hnsw (M 16, ef_construction 100) or ivf (nlist round(sqrt(N))).
Vectors: N x DIM standard Gaussian (seed 7), or the first N rows of a float32
FILE (e.g. base.f32 of an `aidb_ivf_bench --export` directory). Ids
00000000-0000-4000-8000-<12 digits>; with --payloads each point has a
~40-byte JSON payload. upsert_batch of S points at a time (default 50,000).
Prints the RssAnon growth across the build (MiB and bytes per point), the
process's CPU seconds for it (the Python loop included), the growth after
malloc_trim(0), and glibc's heap figures (mallinfo2). Swap AIDB_LIBRARY to
compare two builds of the library.

With --reopen DIR the collection is built with its WAL in DIR (durability
none), closed, and opened again twice: once replaying the whole WAL, once
loading a snapshot taken after that; each prints the RssAnon growth of
the reopened collection, as for the build (heap holes that a replay or a
load leave behind show up here, not in a build).
"""
import argparse
import ctypes
import os
import time

import numpy as np

import aidb
from ivf_peers import rss_anon  # bench/ann/ivf_peers.py, beside this script


class MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["flat", "hnsw", "ivf"])
    ap.add_argument("n", type=int)
    ap.add_argument("dim", type=int)
    ap.add_argument("--payloads", action="store_true")
    ap.add_argument("--step", type=int, default=50000)
    ap.add_argument("--base")
    ap.add_argument("--metric", default="euclidean")
    ap.add_argument("--reopen", metavar="DIR")
    a = ap.parse_args()
    n, d = a.n, a.dim
    if a.base:
        base = np.fromfile(a.base, dtype=np.float32).reshape(-1, d)[:n]
    else:
        base = np.random.default_rng(7).standard_normal((n, d), dtype=np.float32)
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
    pl = [f'{{"label":{i % 10},"name":"boot","row":{i}}}' for i in range(n)] if a.payloads else None
    kw = {}
    if a.kind == "hnsw":
        kw = {"m": 16, "ef_construction": 100}
    elif a.kind == "ivf":
        kw = {"ivf": {"nlist": int(round(n ** 0.5))}}
    if a.reopen:
        kw.update(wal_path=os.path.join(a.reopen, "m.wal"), durability="none")
    r0, c0, t0 = rss_anon(), os.times(), time.perf_counter()
    c = aidb.Collection(name="m", dim=d, metric=a.metric, index=a.kind, **kw)
    for s in range(0, n, a.step):
        c.upsert_batch(ids[s:s + a.step], base[s:s + a.step],
                       payloads=pl[s:s + a.step] if pl else None)
    c1 = os.times()
    grow = rss_anon() - r0
    print(f"{a.kind} n={n} dim={d} payloads={int(a.payloads)}: RssAnon growth "
          f"{grow / 2**20:.1f} MiB = {grow / n:.1f} B/point (vectors {4 * d} B/point); build "
          f"{time.perf_counter() - t0:.1f} s wall, "
          f"{c1.user + c1.system - c0.user - c0.system:.1f} CPU s; count {c.count()}")
    report(r0, n)
    if not a.reopen:
        return
    c.close()
    snap = os.path.join(a.reopen, "m.snap")
    for how in ("WAL replay", "snapshot load"):
        del c
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        r0, c0, t0 = rss_anon(), os.times(), time.perf_counter()
        c = aidb.Collection(name="m", dim=d, metric=a.metric, index=a.kind, **kw)
        if how == "snapshot load":
            c.load_snapshot(snap)
        c.recover()
        c1 = os.times()
        grow = rss_anon() - r0
        print(f"{how}: RssAnon growth {grow / 2**20:.1f} MiB = {grow / n:.1f} B/point; "
              f"{time.perf_counter() - t0:.1f} s wall, "
              f"{c1.user + c1.system - c0.user - c0.system:.1f} CPU s; count {c.count()}")
        report(r0, n)
        if how == "WAL replay":
            c.snapshot_to(snap)
        c.close()


def report(r0, n):
    libc = ctypes.CDLL("libc.so.6")
    t = time.perf_counter()
    libc.malloc_trim(0)
    t = time.perf_counter() - t
    trim = rss_anon() - r0
    print(f"  after malloc_trim(0) ({t * 1e3:.1f} ms): {trim / 2**20:.1f} MiB = {trim / n:.1f} B/point")
    libc.mallinfo2.restype = MallInfo2
    m = libc.mallinfo2()
    print(f"  malloc: heap {m.arena / 2**20:.1f} MiB, in use {m.uordblks / 2**20:.1f} MiB, "
          f"free in heap {m.fordblks / 2**20:.1f} MiB, mmapped {m.hblkhd / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
