#!/usr/bin/env python3
"""Cluster vs standalone benchmark of AIDB (bench/cluster/README.md).

One run, same machine, same client, same data:
  1. ingest: the same pre-encoded batch upserts (--batch points each, over
     --clients keep-alive connections) into one standalone aidbd
     (--durability fsync) and into a cluster of 3 aidbd nodes on 3 Kafka
     brokers (replica groups 0,1,0; the collection has S=--shards,
     R=--replication). Acknowledged points/s, plus for the cluster the time
     until every replica has applied everything ("applied" points/s);
  2. search: the same queries (top_k, ef_search) with wrk over --clients
     connections against the standalone node and against one cluster node
     (which scatters to one replica of each shard and merges): QPS, p50, p99;
     recall@10 of both against the standalone's exact answers;
  3. takeover: a collection with one shard of --takeover-n points (HNSW),
     replication 2, snapshotted; kill -9 of the group-0 node holding it; time
     until the other group-0 node holds it caught up (lag 0), and the node's
     own figure for download + load (event cluster_shard_taken_over,
     seconds=); against the time a standalone aidbd takes to load a snapshot
     of the same size (POST /collections/:name/restore).
Ratios are printed at the end, and a JSON line with every figure.

Usage: bench/cluster/run.py --build-dir BUILD [--n 100000] [--dim 128] ...
Needs aidbd (with --kafka), scripts/kafka.sh's tools (java, maven, kcat), wrk.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")

WRK_LUA = r"""
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


def log(*a):
    print("#", *a, flush=True)


def free_port_range(n=1):
    """Free ports P..P+n-1 below the kernel's ephemeral range (20000-32767),
    so no outgoing connection takes them before the servers bind."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        base = rng.randrange(20000, 32767 - n)
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise SystemExit("no free port range")


def free_port():
    return free_port_range(1)


class Proc:
    """An aidbd process whose stderr goes to a file (and is scanned)."""

    def __init__(self, args, log_path):
        self.args = args
        self.log_path = log_path
        self.lines = []
        self.lock = threading.Lock()
        self.addr = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ev = threading.Event()

        def pump(proc):
            with open(self.log_path, "ab") as f:
                for raw in proc.stderr:
                    f.write(raw)
                    line = raw.decode("utf-8", "replace")
                    with self.lock:
                        self.lines.append(line)
                    if "event=listening" in line:
                        self.addr = line.split("addr=")[1].split()[0]
                        ev.set()
        threading.Thread(target=pump, args=(self.proc,), daemon=True).start()
        if not ev.wait(60):
            raise SystemExit("aidbd did not start: %s" % self.log_path)

    def text(self):
        with self.lock:
            return "".join(self.lines)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def call(addr, method, path, body=None, timeout=600):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        payload = r.read()
        # Every JSON answer decodes, bare ids and booleans included (the
        # original server's shapes); /health's "ok" is text.
        is_json = (r.getheader("Content-Type") or "").startswith("application/json")
        return r.status, json.loads(payload) if is_json and payload else payload
    finally:
        c.close()


def ok(addr, method, path, body=None, want=(200, 201), timeout=600):
    st, out = call(addr, method, path, body, timeout)
    if st not in want:
        raise SystemExit("%s %s %s -> %d %r" % (addr, method, path, st, out))
    return out


def vectors(n, dim, seed):
    rng = random.Random(seed)
    return [[round(rng.gauss(0, 1), 5) for _ in range(dim)] for _ in range(n)]


def id_of(i, space=0):
    return "%08x-0000-4000-8000-%012x" % (space, i + 1)


def batch_bodies(vecs, batch, space):
    out = []
    for start in range(0, len(vecs), batch):
        pts = [{"id": id_of(start + j, space), "vector": v}
               for j, v in enumerate(vecs[start:start + batch])]
        out.append(json.dumps({"points": pts}, separators=(",", ":")).encode())
    return out


def ingest(addrs, collection, bodies, clients):
    """Sends the bodies over `clients` keep-alive connections (client i to
    addrs[i % len(addrs)]); returns seconds until the last was acknowledged."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors = []

    def worker(i):
        host, port = addrs[i % len(addrs)].rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=600)
        while True:
            with lock:
                if not queue or errors:
                    break
                body = queue.pop()
            c.request("POST", "/collections/%s/points:batch" % collection, body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            payload = r.read()
            if r.status != 200:
                with lock:
                    errors.append((r.status, payload[:300]))
        c.close()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("ingest errors: %r" % errors[:3])
    return time.monotonic() - t0


def cluster_view(addr):
    return ok(addr, "GET", "/cluster", timeout=30)


def holders(view, collection):
    out = {}
    for n in view["nodes"]:
        for s in n.get("shards", []):
            if s["collection"] == collection:
                out.setdefault(s["shard"], []).append((n["id"], s.get("lag"), n.get("state")))
    return out


def wait_applied(addr, collection, shards, replicas, timeout=3600):
    """Until every shard has `replicas` replicas with lag 0."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = holders(cluster_view(addr), collection)
        if len(h) == shards and all(sum(1 for _, lag, _ in v if lag == 0) >= replicas
                                    for v in h.values()):
            return
        time.sleep(0.2)
    raise SystemExit("%s not applied in time" % collection)


def parse_latency(text, pct):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
    if not m:
        return None
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000.0 if unit == "us" else v * 1000.0 if unit == "s" else v


def run_wrk(url, lua, bodies, connections, seconds):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency", "-s", lua, url,
           "--", bodies]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    qps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"qps": qps, "p50_ms": parse_latency(out, 50), "p99_ms": parse_latency(out, 99),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def recall(addr, collection, queries, truth, ef, extra=None):
    body = dict({"searches": queries, "top_k": 10, "ef_search": ef}, **(extra or {}))
    res = ok(addr, "POST", "/collections/%s/search:batch" % collection, body)["results"]
    hit = sum(len({h["id"] for h in r} & set(t)) for r, t in zip(res, truth))
    return hit / float(sum(len(t) for t in truth))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--n", type=int, default=100000, help="points ingested and searched")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--shards", type=int, default=6)
    ap.add_argument("--replication", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500, help="points per batch upsert")
    ap.add_argument("--clients", type=int, default=4, help="client connections")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10, help="per search measurement")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--ef-search", type=int, default=64)
    ap.add_argument("--takeover-n", type=int, default=100000)
    ap.add_argument("--skip", default="", help="comma list of phases to skip: "
                    "ingest,search,takeover")
    ap.add_argument("--work-dir")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    aidbd = os.path.join(os.path.abspath(args.build_dir), "src", "server", "aidbd")
    if not os.access(aidbd, os.X_OK):
        raise SystemExit("missing %s" % aidbd)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")
    work = args.work_dir or tempfile.mkdtemp(prefix="aidb-cluster-bench-")
    os.makedirs(work, exist_ok=True)
    log("work dir", work, "| n=%d dim=%d S=%d R=%d batch=%d clients=%d m=%d ef_c=%d ef=%d "
        "takeover_n=%d cpus=%d" % (args.n, args.dim, args.shards, args.replication, args.batch,
                                   args.clients, args.m, args.ef_construction, args.ef_search,
                                   args.takeover_n, os.cpu_count()))

    kdir = os.path.join(work, "kafka")
    base = free_port_range(6)
    t0 = time.monotonic()
    out = subprocess.run(["bash", KAFKA_SH, "up", "--dir", kdir, "--base-port", str(base)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    brokers = out.strip().splitlines()[-1]
    log("3 brokers up in %.1f s: %s" % (time.monotonic() - t0, brokers))
    procs = []
    results = {}
    try:
        std = Proc([aidbd, "--data-dir", os.path.join(work, "standalone"), "--listen",
                    "127.0.0.1:0", "--durability", "fsync"], os.path.join(work, "standalone.log"))
        procs.append(std)
        nodes = []
        for n, g in ((1, 0), (2, 1), (3, 0)):
            addr = "127.0.0.1:%d" % free_port()
            p = Proc([aidbd, "--data-dir", os.path.join(work, "node%d" % n), "--listen", addr,
                      "--advertise", addr, "--kafka", brokers, "--node-id", "node%d" % n,
                      "--replica-group", str(g), "--durability", "fsync"],
                     os.path.join(work, "node%d.log" % n))
            p.id, p.group = "node%d" % n, g
            nodes.append(p)
            procs.append(p)
        caddrs = [p.addr for p in nodes]
        hnsw = {"m": args.m, "ef_construction": args.ef_construction,
                "ef_search": args.ef_search}
        coll = {"name": "bench", "dim": args.dim, "metric": "euclidean", "index": "hnsw",
                "hnsw": hnsw}
        ok(std.addr, "POST", "/collections", coll)
        ok(caddrs[0], "POST", "/collections",
           dict(coll, shards=args.shards, replication=args.replication))
        t = time.monotonic()
        vecs = vectors(args.n, args.dim, 1)
        bodies = batch_bodies(vecs, args.batch, 1)
        log("data made in %.1f s (%d batches, %.0f MB of JSON)"
            % (time.monotonic() - t, len(bodies), sum(map(len, bodies)) / 1e6))

        # 1. ingest
        if "ingest" not in skip:
            s_std = ingest([std.addr], "bench", bodies, args.clients)
            time.sleep(2)
            t = time.monotonic()
            s_acked = ingest(caddrs, "bench", bodies, args.clients)
            wait_applied(caddrs[0], "bench", args.shards, args.replication)
            s_applied = time.monotonic() - t
            results["ingest"] = {
                "standalone_fsync_pps": args.n / s_std, "cluster_acked_pps": args.n / s_acked,
                "cluster_applied_pps": args.n / s_applied}
            log("ingest: standalone fsync %.0f points/s; cluster acked %.0f points/s, all %d "
                "replicas applied %.0f points/s" % (args.n / s_std, args.n / s_acked,
                                                   args.replication, args.n / s_applied))

        # 2. search
        if "search" not in skip and "ingest" not in skip:
            qs = vectors(args.queries, args.dim, 2)
            lua = os.path.join(work, "wrk.lua")
            with open(lua, "w") as f:
                f.write(WRK_LUA)
            nd = os.path.join(work, "search.ndjson")
            with open(nd, "w") as f:
                for q in qs:
                    f.write(json.dumps({"vector": q, "top_k": 10,
                                        "ef_search": args.ef_search}) + "\n")
            nq = min(200, len(qs))
            truth = ok(std.addr, "POST", "/collections/bench/search:batch",
                       {"searches": qs[:nq], "top_k": 10, "exact": True})["results"]
            truth = [[h["id"] for h in r] for r in truth]
            r_std = recall(std.addr, "bench", qs[:nq], truth, args.ef_search)
            r_cl = recall(caddrs[1], "bench", qs[:nq], truth, args.ef_search)
            res = {"standalone": [], "cluster": []}
            for rnd in range(2):  # alternate: a noisy neighbour hits both
                res["standalone"].append(run_wrk("http://%s/collections/bench/search" % std.addr,
                                                 lua, nd, args.clients, args.seconds))
                res["cluster"].append(run_wrk("http://%s/collections/bench/search" % caddrs[1],
                                              lua, nd, args.clients, args.seconds))
            best = {k: max(v, key=lambda x: x["qps"]) for k, v in res.items()}
            results["search"] = dict(best, recall_standalone=r_std, recall_cluster=r_cl)
            for k in ("standalone", "cluster"):
                b = best[k]
                log("search %s: %.0f QPS, p50 %.2f ms, p99 %.2f ms, non-2xx %d"
                    % (k, b["qps"], b["p50_ms"], b["p99_ms"], b["non_2xx"]))
            log("recall@10 at ef %d: standalone %.4f, cluster %.4f"
                % (args.ef_search, r_std, r_cl))

        # 3. takeover
        if "takeover" not in skip:
            tn = args.takeover_n
            tcoll = dict(coll, name="take")
            ok(caddrs[0], "POST", "/collections", dict(tcoll, shards=1, replication=2))
            ok(std.addr, "POST", "/collections", tcoll)
            tv = vecs[:tn] if tn <= len(vecs) else vectors(tn, args.dim, 3)
            tb = batch_bodies(tv, args.batch, 2)
            ingest([std.addr], "take", tb, args.clients)
            ingest(caddrs, "take", tb, args.clients)
            wait_applied(caddrs[0], "take", 1, 2)
            ok(caddrs[0], "POST", "/collections/take/snapshot", {})
            # Standalone: the time to load a snapshot of the same data.
            snap = ok(std.addr, "POST", "/collections/take/snapshot", {})
            t = time.monotonic()
            ok(std.addr, "POST", "/collections/take/restore", {"snapshot": snap["file"]})
            load_s = time.monotonic() - t
            h = holders(cluster_view(caddrs[0]), "take")[0]
            g0 = [nid for nid, _, _ in h if nid in ("node1", "node3")]
            victim = [p for p in nodes if p.id == g0[0]][0]
            heir = [p for p in nodes if p.id in ("node1", "node3") and p is not victim][0]
            mark = len(heir.text())
            t = time.monotonic()
            victim.kill9()
            deadline = t + 600
            took = None
            while time.monotonic() < deadline:
                hh = holders(cluster_view(heir.addr), "take").get(0, [])
                if any(nid == heir.id and lag == 0 for nid, lag, _ in hh):
                    took = time.monotonic() - t
                    break
                time.sleep(0.05)
            if took is None:
                raise SystemExit("no takeover within 600 s; see %s" % heir.log_path)
            ev = re.findall(r"event=cluster_shard_taken_over[^\n]*collection=take[^\n]*",
                            heir.text()[mark:])
            secs = [float(x) for e in ev for x in re.findall(r"\bseconds=([\d.]+)", e)]
            results["takeover"] = {"points": tn, "kill_to_caught_up_s": took,
                                   "download_and_load_s": secs[-1] if secs else None,
                                   "standalone_snapshot_load_s": load_s,
                                   "event": ev[-1] if ev else None}
            log("takeover of a %d x %d HNSW shard: kill -9 -> caught up on %s in %.2f s "
                "(node's own download + load: %s s); standalone snapshot load (restore) %.2f s"
                % (tn, args.dim, heir.id, took, secs[-1] if secs else "?", load_s))
            if not ev:
                log("no cluster_shard_taken_over event: the shard was not loaded from a snapshot")
            victim.start()
        rss = {}
        for p in procs:
            try:
                with open("/proc/%d/status" % p.proc.pid) as f:
                    rss[getattr(p, "id", "standalone")] = int(
                        re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) // 1024
            except (OSError, AttributeError):
                pass
        results["rss_mb"] = rss
    finally:
        for p in procs:
            p.stop()
        subprocess.run(["bash", KAFKA_SH, "down", "--dir", kdir])
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    print("== ratios (cluster / standalone)")
    if "ingest" in results:
        i = results["ingest"]
        print("ingest acked:   %.2fx  (%.0f vs %.0f points/s)"
              % (i["cluster_acked_pps"] / i["standalone_fsync_pps"], i["cluster_acked_pps"],
                 i["standalone_fsync_pps"]))
        print("ingest applied: %.2fx  (%.0f vs %.0f points/s)"
              % (i["cluster_applied_pps"] / i["standalone_fsync_pps"], i["cluster_applied_pps"],
                 i["standalone_fsync_pps"]))
    if "search" in results:
        s = results["search"]
        print("search QPS:     %.2fx  (%.0f vs %.0f)" % (s["cluster"]["qps"] / s["standalone"]["qps"],
                                                        s["cluster"]["qps"], s["standalone"]["qps"]))
        print("search p99:     %.2fx  (%.2f vs %.2f ms)"
              % (s["cluster"]["p99_ms"] / s["standalone"]["p99_ms"], s["cluster"]["p99_ms"],
                 s["standalone"]["p99_ms"]))
    if "takeover" in results:
        t = results["takeover"]
        print("takeover / snapshot load: %.2fx  (%.2f vs %.2f s)"
              % (t["kill_to_caught_up_s"] / t["standalone_snapshot_load_s"],
                 t["kill_to_caught_up_s"], t["standalone_snapshot_load_s"]))
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
