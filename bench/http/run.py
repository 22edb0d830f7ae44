#!/usr/bin/env python3
"""HTTP vs in-process benchmark of AIDB (bench/README.md, section "HTTP").

Same run, same data, same machine:
  1. in-process: aidb_http_bench_inproc searches the collection through the C API
     with C threads (C = --connections);
  2. HTTP: aidbd serves the same data directory and wrk sends the same queries
     as POST /collections/:name/search over C keep-alive connections.
Then the same for single-point upserts (flat collection, --durability).

Data: Fashion-MNIST (Debian package dataset-fashion-mnist; pixels / 255, 784
dims, L2): the first --n training images are indexed, test images are the
queries. Without the package, seeded random vectors of the same shape.

Usage: bench/http/run.py --build-dir BUILD [--n 20000] [--seconds 10] ...
Needs the targets aidbd and aidb_http_bench_inproc, and wrk on PATH.
"""
import argparse
import array
import gzip
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

MNIST = "/usr/share/datasets/fashion-mnist"

WRK_LUA = r"""
-- Requests are formatted once in init, so wrk spends as little CPU per
-- request as possible (it shares the machine with aidbd).
local reqs = {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    reqs[n] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, line)
  end
end
local i = 0
function request()
  i = i % n + 1
  return reqs[i]
end
"""


def load_idx_images(path, limit):
    with gzip.open(path, "rb") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, path
        dim = rows * cols
        count = min(count, limit)
        raw = f.read(count * dim)
    out = array.array("f", (b / 255.0 for b in raw))
    return out, count, dim


def random_vectors(count, dim, seed):
    rnd = random.Random(seed)
    return array.array("f", (rnd.random() for _ in range(count * dim))), count, dim


def fmt(x):
    return "%.7g" % x


def write_bodies(path, vecs, count, dim, extra):
    with open(path, "w") as f:
        for i in range(count):
            row = vecs[i * dim:(i + 1) * dim]
            body = '{"vector":[' + ",".join(fmt(x) for x in row) + "]" + extra + "}"
            f.write(body + "\n")


def busy_cpu_seconds():
    """CPU seconds spent by all CPUs outside idle and iowait (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_per_op(fn):
    """Runs fn() -> result with "ops" or "requests"; adds "cpu_us_per_op": the
    machine's busy CPU time (all processes) per operation."""
    before = busy_cpu_seconds()
    r = fn()
    spent = busy_cpu_seconds() - before
    n = r.get("ops") or r.get("requests")
    r["cpu_us_per_op"] = 1e6 * spent / n if n else float("nan")
    return r


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def start_aidbd(aidbd, data_dir, durability, log_path):
    log = open(log_path, "wb")
    proc = subprocess.Popen([aidbd, "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                             "--durability", durability],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    addr = None
    lines = []
    for raw in proc.stderr:
        log.write(raw)
        line = raw.decode()
        lines.append(line)
        if "event=listening" in line:
            addr = line.split("addr=")[1].split()[0]
            break
    if addr is None:
        raise SystemExit("aidbd did not start:\n" + "".join(lines))
    threading.Thread(target=lambda: [log.write(b) for b in proc.stderr], daemon=True).start()
    return proc, addr


def parse_latency(text, pct):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
    if not m:
        return None
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000.0 if unit == "us" else v * 1000.0 if unit == "s" else v


def run_wrk(wrk, url, lua, bodies, connections, seconds):
    cmd = [wrk, "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency", url]
    if lua:
        cmd[5:5] = ["-s", lua]
        cmd += ["--", bodies]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    return {"qps": float(m.group(1)), "p50_ms": parse_latency(out, 50),
            "p99_ms": parse_latency(out, 99), "requests": int(total.group(1)),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else None, "raw": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--n", type=int, default=20000, help="points indexed")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=5, help="per measurement")
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--index", default="hnsw")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--ef-search", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--durability", default="fsync", help="for the upsert runs")
    ap.add_argument("--work-dir", help="default: a fresh temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--reuse", action="store_true",
                    help="with --work-dir: keep a collection built by an earlier run")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians")
    args = ap.parse_args()

    build = os.path.abspath(args.build_dir)
    aidbd = os.path.join(build, "src", "server", "aidbd")
    inproc = os.path.join(build, "bench", "http", "aidb_http_bench_inproc")
    wrk = shutil.which("wrk")
    for p in (aidbd, inproc):
        if not os.access(p, os.X_OK):
            raise SystemExit(f"missing {p}: build the aidbd and aidb_http_bench_inproc targets")
    if not wrk:
        raise SystemExit("wrk is not installed (Debian package wrk)")

    work = args.work_dir or tempfile.mkdtemp(prefix="aidb-http-bench-")
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "db")
    reuse = args.reuse and os.path.isdir(os.path.join(db, "bench"))
    if not reuse:
        shutil.rmtree(db, ignore_errors=True)

    if os.path.exists(os.path.join(MNIST, "train-images-idx3-ubyte.gz")):
        base, n, dim = load_idx_images(os.path.join(MNIST, "train-images-idx3-ubyte.gz"), args.n)
        queries, nq, _ = load_idx_images(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"),
                                         args.queries)
        dataset = "fashion-mnist"
    else:
        base, n, dim = random_vectors(args.n, 784, 1)
        queries, nq, _ = random_vectors(args.queries, 784, 2)
        dataset = "random"
    paths = {k: os.path.join(work, k) for k in
             ("base.f32", "queries.f32", "search.ndjson", "upsert.ndjson", "wrk.lua",
              "empty.f32", "aidbd.log")}
    with open(paths["base.f32"], "wb") as f:
        base.tofile(f)
    with open(paths["queries.f32"], "wb") as f:
        queries.tofile(f)
    open(paths["empty.f32"], "wb").close()
    write_bodies(paths["search.ndjson"], queries, nq, dim,
                 ',"top_k":%d,"ef_search":%d' % (args.top_k, args.ef_search))
    write_bodies(paths["upsert.ndjson"], queries, nq, dim, "")
    with open(paths["wrk.lua"], "w") as f:
        f.write(WRK_LUA)

    print(f"# dataset={dataset} n={n} dim={dim} queries={nq} index={args.index} "
          f"m={args.m} ef_construction={args.ef_construction} ef_search={args.ef_search} "
          f"top_k={args.top_k} connections={args.connections} seconds={args.seconds} "
          f"durability={args.durability} cpus={os.cpu_count()}", flush=True)
    if reuse:
        print(f"# reusing the collections in {db}", flush=True)
    else:
        built = run_json([inproc, "build", db, "bench", paths["base.f32"], str(dim), args.index,
                          str(args.m), str(args.ef_construction)])
        print(f"# built {built['points']} points in {built['build_seconds']:.1f}s", flush=True)
        run_json([inproc, "build", db, "ingest", paths["empty.f32"], str(dim), "flat", "16",
                  "100"])

    c = args.connections
    s = args.seconds
    # The machine may be shared: alternate in-process and HTTP runs and take
    # medians, so a load change hits both sides alike. The daemon is stopped
    # while the in-process side has the directory open.
    rounds = {"search": [], "upsert": []}
    empty = []
    for rnd in range(args.rounds):
        in_search = run_json([inproc, "search", db, "bench", paths["queries.f32"], str(dim),
                              str(c), str(s), str(args.top_k), str(args.ef_search)])
        # Its C threads only search (never wait): c threads' time per search.
        in_search["cpu_us_per_op"] = 1e6 * c / in_search["qps"]
        in_upsert = run_json([inproc, "upsert", db, "ingest", paths["queries.f32"], str(dim),
                              str(c), str(s), args.durability])
        proc, addr = start_aidbd(aidbd, db, args.durability, paths["aidbd.log"])
        try:
            url = f"http://{addr}"
            if rnd == 0:
                req = urllib.request.Request(
                    url + "/collections", method="POST",
                    data=json.dumps({"name": "ingest_http", "dim": dim,
                                     "index": "flat"}).encode())
                # {"ok": true}, also when it exists already (--reuse).
                if json.loads(urllib.request.urlopen(req).read()) != {"ok": True}:
                    raise RuntimeError("creating ingest_http failed")
            run_wrk(wrk, url + "/collections/bench/search", paths["wrk.lua"],
                    paths["search.ndjson"], c, 1)  # warm-up
            http_search = cpu_per_op(lambda: run_wrk(
                wrk, url + "/collections/bench/search", paths["wrk.lua"], paths["search.ndjson"],
                c, s))
            http_upsert = run_wrk(wrk, url + "/collections/ingest_http/points", paths["wrk.lua"],
                                  paths["upsert.ndjson"], c, s)
            # The cost of a request that does no work (GET /health, answered
            # on the loop), with the client on the same cores.
            http_empty = cpu_per_op(lambda: run_wrk(wrk, url + "/health", None, None, c, s))
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(120)
        if rc != 0:
            raise SystemExit(f"aidbd exited with {rc}; see {paths['aidbd.log']}")
        for name, r in (("search", http_search), ("upsert", http_upsert), ("health", http_empty)):
            if r["non_2xx"] or r["socket_errors"]:
                raise SystemExit(f"HTTP {name} had errors:\n{r['raw']}")
        rounds["search"].append((in_search, http_search))
        rounds["upsert"].append((in_upsert, http_upsert))
        empty.append(http_empty)
        print(f"# round {rnd + 1}: search in-process {in_search['qps']:.0f} QPS, HTTP "
              f"{http_search['qps']:.0f} QPS ({100 * http_search['qps'] / in_search['qps']:.0f}%);"
              f" upsert in-process {in_upsert['qps']:.0f}, HTTP {http_upsert['qps']:.0f};"
              f" GET /health {http_empty['qps']:.0f}", flush=True)

    def med(values):
        v = sorted(values)
        return v[len(v) // 2]

    summary = {}
    for op, pairs in rounds.items():
        summary[op] = ({"qps": med([a["qps"] for a, _ in pairs]),
                        "p99_ms": med([a["p99_ms"] for a, _ in pairs])},
                       {"qps": med([b["qps"] for _, b in pairs]),
                        "p99_ms": med([b["p99_ms"] for _, b in pairs])})
    in_search, http_search = summary["search"]
    in_upsert, http_upsert = summary["upsert"]
    rows = [("search", in_search, http_search), ("upsert", in_upsert, http_upsert)]
    print()
    print(f"medians of {args.rounds} alternating rounds:")
    print(f"| op | connections | in-process QPS | in-process p99 ms | HTTP QPS | HTTP p99 ms |"
          f" HTTP / in-process |")
    print("|---|---|---|---|---|---|---|")
    for op, a, b in rows:
        print(f"| {op} | {c} | {a['qps']:.0f} | {a['p99_ms']:.3f} | {b['qps']:.0f} |"
              f" {b['p99_ms']:.3f} | {100.0 * b['qps'] / a['qps']:.0f}% |")
    per_round = [b["qps"] / a["qps"] for a, b in rounds["search"]]
    print()
    print("search HTTP / in-process per round: " +
          ", ".join(f"{100 * r:.0f}%" for r in per_round))
    print(f"search over HTTP = {100 * med(per_round):.0f}% of in-process QPS "
          f"(median of the per-round ratios; target >= 70%)")
    # CPU per operation (the whole machine's busy time: aidbd, wrk, kernel).
    # With every core busy on both sides, a search over HTTP costs at least
    # the search plus an empty request (GET /health, answered on the loop):
    # HTTP / in-process <= s / (s + e), s and e their CPU per operation.
    s_cpu = med([a["cpu_us_per_op"] for a, _ in rounds["search"]])
    h_cpu = med([b["cpu_us_per_op"] for _, b in rounds["search"]])
    e_cpu = med([r["cpu_us_per_op"] for r in empty])
    print(f"CPU per operation (all processes, {os.cpu_count()} CPUs): in-process search "
          f"{s_cpu:.0f} us, search over HTTP {h_cpu:.0f} us, GET /health over HTTP "
          f"{e_cpu:.0f} us ({med([r['qps'] for r in empty]):.0f} requests/s)")
    print(f"ceiling for search over HTTP with the client on the same CPUs, if aidbd spent "
          f"nothing beyond the search and an empty request: {100 * s_cpu / (s_cpu + e_cpu):.0f}%"
          f" of in-process")
    if not args.keep and not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
