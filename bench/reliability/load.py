#!/usr/bin/env python3
"""aidbd under sustained mixed load: searches + upserts + periodic snapshots.

    bench/reliability/load.py --aidbd build/release/src/server/aidbd [--seconds 300]
        [--procs 4] [--dim 128] [--preload 50000] [--snapshot-every 15] [--search-frac 0.7]

Starts aidbd (fsync durability) on a fresh data directory, creates a flat (or
--index hnsw) collection, preloads points in batches, then runs --procs load
processes, each with its own keep-alive connection, for --seconds: each request
is a search (top 10, every 4th with a payload filter) with probability
--search-frac, else an upsert (a new point or a replacement). One more
process snapshots the collection every --snapshot-every seconds. Prints
throughput and latency percentiles per operation, errors (any non-2xx is an
error), and the daemon's RSS after the preload, every 30 s, and at the end.
Exits 1 on any error, or if the RSS grew by more than --max-rss-growth-mb
beyond what the new points explain (a leak check, not a timing check).
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def pid_id(i):
    return "00000000-0000-4000-8000-%012x" % i


def vec(rng, dim):
    return [round(rng.uniform(-1, 1), 4) for _ in range(dim)]


def call(conn, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = conn.getresponse()
    raw = r.read()
    return r.status, raw


def worker(port, args, seed, stop_at, out_q, id_base, preload):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lat = {"search": [], "upsert": []}
    errors = []
    next_id = id_base
    while time.monotonic() < stop_at:
        if rng.random() < args.search_frac:
            body = {"vector": vec(rng, args.dim), "top_k": 10}
            if rng.random() < 0.25:
                body["filter"] = {"group": rng.randrange(10)}
            t0 = time.perf_counter()
            st, raw = call(conn, "POST", "/collections/load/search", body)
            dt = time.perf_counter() - t0
            op = "search"
        else:
            if rng.random() < 0.5:
                i = next_id
                next_id += 1
            else:
                i = rng.randrange(preload)
            body = {"id": pid_id(i), "vector": vec(rng, args.dim), "payload": {"group": i % 10, "w": rng.random()}}
            t0 = time.perf_counter()
            st, raw = call(conn, "POST", "/collections/load/points", body)
            dt = time.perf_counter() - t0
            op = "upsert"
        if 200 <= st < 300:
            lat[op].append(dt)
        else:
            errors.append("%s -> %d %s" % (op, st, raw[:200]))
    out_q.put((lat, errors, next_id - id_base))


def snapshotter(port, every, stop_at, out_q):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    times, errors = [], []
    while time.monotonic() + every < stop_at:
        time.sleep(every)
        t0 = time.perf_counter()
        st, raw = call(conn, "POST", "/collections/load/snapshot", {})
        if st == 200:
            times.append(time.perf_counter() - t0)
        else:
            errors.append("snapshot -> %d %s" % (st, raw[:200]))
    out_q.put(({"snapshot": times}, errors, 0))


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--aidbd", required=True)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--preload", type=int, default=50000)
    ap.add_argument("--index", default="flat")
    ap.add_argument("--snapshot-every", type=float, default=15)
    ap.add_argument("--search-frac", type=float, default=0.7)
    ap.add_argument("--max-rss-growth-mb", type=float, default=256)
    ap.add_argument("--data-dir", default="")
    args = ap.parse_args()

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="aidb-load-")
    env = dict(os.environ)
    env.setdefault("UV_THREADPOOL_SIZE", "4")
    proc = subprocess.Popen([args.aidbd, "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                             "--durability", "fsync", "--log-level", "info"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    port = None
    lines = []
    ready = threading.Event()

    def reader():
        nonlocal port
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            lines.append(line)
            if "event=listening" in line and port is None:
                port = int(line.split("addr=")[1].split()[0].rsplit(":", 1)[1])
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    import atexit
    atexit.register(lambda: proc.poll() is None and proc.kill())
    if not ready.wait(60) or port is None:
        print("aidbd did not start:\n" + "\n".join(lines[-20:]))
        return 1
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    st, raw = call(conn, "POST", "/collections", {"name": "load", "dim": args.dim, "metric": "euclidean",
                                                  "index": args.index})
    if st not in (200, 201):
        print("create -> %d %s" % (st, raw))
        return 1
    rng = random.Random(1)
    t0 = time.perf_counter()
    for b in range(0, args.preload, 1000):
        pts = [{"id": pid_id(i), "vector": vec(rng, args.dim), "payload": {"group": i % 10}}
               for i in range(b, min(args.preload, b + 1000))]
        st, raw = call(conn, "POST", "/collections/load/points:batch", {"points": pts})
        if st != 200:
            print("preload -> %d %s" % (st, raw[:300]))
            return 1
    preload_s = time.perf_counter() - t0
    rss0 = rss_mb(proc.pid)
    print("preloaded %d points of dim %d (%s) in %.1f s; RSS %.0f MB" % (args.preload, args.dim, args.index,
                                                                       preload_s, rss0))

    stop_at = time.monotonic() + args.seconds
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(port, args, 100 + k, stop_at, q, 10_000_000 * (k + 1), args.preload))
          for k in range(args.procs)]
    ps.append(mp.Process(target=snapshotter, args=(port, args.snapshot_every, stop_at, q)))
    start = time.monotonic()
    for p in ps:
        p.start()
    rss_samples = [(0.0, rss0)]
    while time.monotonic() < stop_at:
        time.sleep(min(30, max(0.1, stop_at - time.monotonic())))
        rss_samples.append((time.monotonic() - start, rss_mb(proc.pid)))
        print("  t=%4.0f s RSS %.0f MB" % rss_samples[-1], flush=True)
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    elapsed = time.monotonic() - start
    rss1 = rss_mb(proc.pid)
    lat = {"search": [], "upsert": [], "snapshot": []}
    errors, new_points = [], 0
    for l, e, n in results:
        for k, v in l.items():
            lat[k].extend(v)
        errors.extend(e)
        new_points += n
    conn.close()  # idle through the run: the daemon's idle timeout closed it
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        st, raw = call(conn, "GET", "/collections/load")
    except (OSError, http.client.HTTPException) as e:
        st, raw = 0, str(e).encode()
    info = json.loads(raw) if st == 200 else {}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        errors.append("aidbd did not stop within 120 s of SIGTERM")
    if proc.returncode not in (0, None):
        errors.append("aidbd exited with %s" % proc.returncode)

    total = len(lat["search"]) + len(lat["upsert"])
    print("mixed load: %.0f s, %d procs, %d requests: %.0f req/s (search %.0f/s, upsert %.0f/s), %d snapshots"
          % (elapsed, args.procs, total, total / elapsed, len(lat["search"]) / elapsed,
             len(lat["upsert"]) / elapsed, len(lat["snapshot"])))
    for op in ("search", "upsert", "snapshot"):
        xs = lat[op]
        if xs:
            print("  %-8s p50 %7.2f ms  p99 %7.2f ms  max %8.2f ms  (n=%d)" % (
                op, pct(xs, 50) * 1e3, pct(xs, 99) * 1e3, max(xs) * 1e3, len(xs)))
    # Memory: what the new points explain (vector + id + payload, x2 for slack).
    explained = new_points * (args.dim * 4 + 16 + 40) * 2 / 2**20
    growth = rss1 - rss0
    print("RSS: %.0f MB after preload, %.0f MB at the end (+%.0f MB; %d new points explain ~%.0f MB); "
          "collection len %s; errors %d" % (rss0, rss1, growth, new_points, explained, info.get("len"), len(errors)))
    for e in errors[:10]:
        print("  ERROR", e)
    if not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    bad = bool(errors) or growth > explained + args.max_rss_growth_mb
    if growth > explained + args.max_rss_growth_mb:
        print("RSS grew more than the new points explain + %.0f MB" % args.max_rss_growth_mb)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
