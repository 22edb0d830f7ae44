#!/usr/bin/env python3
"""SIGKILL aidbd under HTTP ingest, again and again; check every acknowledged write.

    daemon_crash.py --aidbd PATH --dir DIR --kills N [--clients 3] [--faultfs SHIM] [--seed S]
                    [--powerfs SHIM --rollback TOOL [--variant mix]]

Each round starts aidbd (fsync durability) on the same data directory, lets
several keep-alive clients upsert single points, batches and deletes and one
of them ask for snapshots, then SIGKILLs the daemon at a random moment; with
--faultfs, every other round instead makes the daemon kill itself at a crash
point (before/after a write, fsync, rename or ftruncate of the WAL, its LSN
sidecar, a snapshot temp file or the MANIFEST), so kills land inside the
snapshot and the WAL truncation. After each kill the daemon is restarted and
the round's acknowledged writes are read back over HTTP: every acknowledged
point is there with its exact vector and payload, an acknowledged delete
stays deleted, a request in flight is all-or-nothing, and the collection's
`len` equals the number of points the model holds (no phantom, no duplicate).
At the end every point ever written is checked. Exits 1 on any violation.

With --powerfs, every kill is a simulated power cut instead (the powerfs shim
of tests/reliability, see its README): odd rounds at a random count of file
operations (also during start-up recovery), even rounds on SIGUSR2 after a
random time; the rollback tool then drops (or keeps, tears, zero-fills)
everything the daemon had not synced before the restart, so an acknowledged
200 must have been fsynced.
"""
import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

DIM = 8
COLL = "crash"
CRASH_POINTS = [
    ("write", "wal.log"), ("fsync", "wal.log"), ("ftruncate", "wal.log"),
    ("write", ".tmp"), ("fsync", ".tmp"), ("rename", ".aidbsnap"),
    ("rename", "wal.log.lsn"), ("rename", "MANIFEST"), ("fsync", "snap"),
]


def pid_id(i):
    return "00000000-0000-4000-8000-%012x" % i


def vec(i, ver):
    return [((i * 131 + ver * 17 + d * 7) % 97) / 8.0 - 6.0 for d in range(DIM)]


def payload(i, ver):
    return {"i": i, "v": ver, "tag": "t%d" % ((i + ver) % 7)}


class Daemon:
    def __init__(self, aidbd, data_dir, env_extra, may_die=False):
        env = dict(os.environ)
        env.pop("AIDB_API_KEY", None)
        env.update(env_extra)
        self.proc = subprocess.Popen(
            [aidbd, "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--durability", "fsync",
             "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.port = None
        self.lines = []
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                if "event=listening" in line and not ready.is_set():
                    self.port = int(line.split("addr=")[1].split()[0].rsplit(":", 1)[1])
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=reader, daemon=True)
        self.reader.start()
        if not ready.wait(60) or self.port is None:
            if may_die and self.proc.wait(10) == -signal.SIGKILL:
                self.port = None  # a power cut during start-up
                return
            raise RuntimeError("aidbd did not start:\n" + "\n".join(self.lines[-30:]))

    def kill(self):
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.reader.join(5)


def request(conn, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    return r.status, (json.loads(raw) if raw else None)


class Model:
    def __init__(self):
        self.ver = {}          # id -> version (0 = absent)
        self.next_id = 0
        self.lock = threading.Lock()

    def new_id(self):
        with self.lock:
            i = self.next_id
            self.next_id += 1
            return i


def client(port, model, rng, stop, inflight, slot, stats, snapshots):
    """Writes until the connection dies. inflight[slot] = the op not yet answered."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            r = rng.random()
            if snapshots and r < 0.04:
                inflight[slot] = ("S", [])
                st, _ = request(conn, "POST", "/collections/%s/snapshot" % COLL, {})
                if st != 200:
                    stats["errors"].append("snapshot -> %d" % st)
                inflight[slot] = None
                continue
            if r < 0.6:
                with model.lock:
                    if rng.random() < 0.7 or model.next_id == 0:
                        i = model.next_id
                        model.next_id += 1
                    else:
                        i = rng.randrange(model.next_id)
                        if any(f and i in [x[0] for x in f[1]] for f in inflight if f):
                            i = model.next_id
                            model.next_id += 1
                    v = model.ver.get(i, 0) + 1
                    inflight[slot] = ("U", [(i, v)])
                st, body = request(conn, "POST", "/collections/%s/points" % COLL,
                                   {"id": pid_id(i), "vector": vec(i, v), "payload": payload(i, v)})
            elif r < 0.88:
                pts = []
                with model.lock:
                    for _ in range(rng.randrange(2, 24)):
                        i = model.next_id
                        model.next_id += 1
                        pts.append((i, 1))
                    inflight[slot] = ("U", pts)
                st, body = request(conn, "POST", "/collections/%s/points:batch" % COLL,
                                   {"points": [{"id": pid_id(i), "vector": vec(i, v),
                                                "payload": payload(i, v)} for i, v in pts]})
            else:
                with model.lock:
                    # Only ids no other client is touching.
                    busy = {x[0] for f in inflight if f for x in f[1]}
                    present = [k for k, v in model.ver.items() if v and k not in busy]
                    if not present:
                        continue
                    i = rng.choice(present)
                    inflight[slot] = ("D", [(i, 0)])
                st, body = request(conn, "DELETE", "/collections/%s/points/%s" % (COLL, pid_id(i)))
            kind, pts = inflight[slot]
            if st == 200:
                with model.lock:
                    for i, v in pts:
                        model.ver[i] = v
                    stats["acked"] += 1
            else:
                stats["errors"].append("%s -> %d %s" % (kind, st, body))
            inflight[slot] = None
    except (OSError, http.client.HTTPException):
        pass  # the daemon died: the op in inflight[slot] has no answer


def prune_snapshots(cdir):
    """Removes the snapshots MANIFEST does not name (AIDB keeps them all;
    hundreds of rounds would fill the RAM disk). Between rounds only."""
    try:
        with open(os.path.join(cdir, "MANIFEST")) as f:
            keep = f.read()
        for name in os.listdir(os.path.join(cdir, "snapshots")):
            if name not in keep:
                os.unlink(os.path.join(cdir, "snapshots", name))
    except OSError:
        pass


def rollback(args, side, rng, violations, rnd):
    """Rewinds the data dir to what the disk held at the power cut."""
    r = subprocess.run([args.rollback, os.path.abspath(args.dir), side, args.variant,
                        str(rng.randrange(1 << 30))], capture_output=True, text=True)
    if r.returncode != 0:
        violations.append("round %d: rollback failed: %s %s" % (rnd, r.stdout, r.stderr))
        return False
    return True


def get_point(conn, i):
    st, body = request(conn, "GET", "/collections/%s/points/%s" % (COLL, pid_id(i)))
    if st == 404:
        return 0
    if st != 200:
        raise RuntimeError("GET point %d -> %d %s" % (i, st, body))
    p = body.get("payload") or {}
    v = p.get("v", -1)
    if p != payload(i, v) or [float(x) for x in body["vector"]] != vec(i, v):
        return -1
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--aidbd", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--faultfs", default="")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--powerfs", default="")
    ap.add_argument("--rollback", default="")
    ap.add_argument("--variant", default="mix")
    ap.add_argument("--max-cut", type=int, default=1500)
    args = ap.parse_args()
    side = os.path.abspath(args.dir) + ".side"
    if args.powerfs:
        os.makedirs(side, exist_ok=True)
    rng = random.Random(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    model = Model()
    violations = []
    totals = {"acked": 0, "rounds": 0, "points_checked": 0, "self_kills": 0, "timed_kills": 0,
              "inflight_applied": 0, "inflight_dropped": 0, "inflight_snapshot": 0,
              "startup_cuts": 0}

    d = Daemon(args.aidbd, args.dir, {})
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    st, body = request(conn, "POST", "/collections",
                       {"name": COLL, "dim": DIM, "metric": "euclidean", "index": "flat"})
    if st not in (200, 201):
        print("create collection -> %d %s" % (st, body))
        return 1
    conn.close()
    d.kill()

    for rnd in range(1, args.kills + 1):
        use_point = bool(args.faultfs) and rnd % 2 == 0 and not args.powerfs
        env = {}
        cut_at = 0
        if args.powerfs:
            env = {"LD_PRELOAD": args.powerfs, "AIDB_POWERFS_ROOT": os.path.abspath(args.dir),
                   "AIDB_POWERFS_SIDE": side, "AIDB_POWERFS_SIGNAL": str(int(signal.SIGUSR2))}
            if rnd % 2 == 1:
                # One in four lands in the first operations: start-up recovery.
                cut_at = rng.randrange(1, 6 if rnd % 8 == 1 else args.max_cut)
                env["AIDB_POWERFS_CUT_AT"] = str(cut_at)
        if use_point:
            ops, path = rng.choice(CRASH_POINTS)
            env = {"LD_PRELOAD": args.faultfs,
                   "AIDB_FAULT": "ops=%s;path=%s;after=%d;count=1;mode=%s" % (
                       ops, path, rng.randrange(4), rng.choice(["kill", "killafter"]))}
        d = Daemon(args.aidbd, args.dir, env, may_die=bool(args.powerfs))
        if d.port is None:  # cut during start-up recovery
            totals["rounds"] += 1
            totals["startup_cuts"] += 1
            if not rollback(args, side, rng, violations, rnd):
                break
            d = Daemon(args.aidbd, args.dir, {})
            d.kill()
            continue
        stop = threading.Event()
        inflight = [None] * args.clients
        stats = {"acked": 0, "errors": []}
        threads = [threading.Thread(target=client, args=(d.port, model, random.Random(rng.random()),
                                                         stop, inflight, k, stats, k == 0))
                   for k in range(args.clients)]
        for t in threads:
            t.start()
        budget = 3.0 if use_point or cut_at else rng.uniform(0.05, 0.6)
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline and d.proc.poll() is None:
            time.sleep(0.005)
        self_killed = d.proc.poll() is not None
        if args.powerfs:
            if not self_killed:
                d.proc.send_signal(signal.SIGUSR2)  # the shim cuts the power
            try:
                rc = d.proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            if rc != -signal.SIGKILL:
                violations.append("round %d: aidbd did not die by the power cut (%s)" % (rnd, rc))
        d.kill()
        stop.set()
        for t in threads:
            t.join(30)
        totals["self_kills" if self_killed else "timed_kills"] += 1
        totals["acked"] += stats["acked"]
        totals["rounds"] += 1
        if stats["errors"]:
            violations.append("round %d: error answers: %s" % (rnd, stats["errors"][:3]))
        if args.powerfs and not rollback(args, side, rng, violations, rnd):
            break

        # Restart (no faults) and check.
        d = Daemon(args.aidbd, args.dir, {})
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            for f in inflight:
                if not f:
                    continue
                kind, pts = f
                if kind == "S":
                    totals["inflight_snapshot"] += 1
                    continue
                got = [get_point(conn, i) for i, _ in pts]
                new = [v for _, v in pts]
                old = [model.ver.get(i, 0) for i, _ in pts]
                applied = [g == n and g != o for g, n, o in zip(got, new, old)]
                kept = [g == o and g != n for g, n, o in zip(got, new, old)]
                if all(applied):
                    totals["inflight_applied"] += 1
                    for i, v in pts:
                        model.ver[i] = v
                elif all(kept):
                    totals["inflight_dropped"] += 1
                else:
                    violations.append("round %d: in-flight %s of %d points half applied: got %s new %s old %s"
                                      % (rnd, kind, len(pts), got[:5], new[:5], old[:5]))
            # This round's and a sample of earlier points, then the count.
            ids = list(range(max(0, model.next_id - 400), model.next_id))
            ids += rng.sample(range(model.next_id), min(200, model.next_id))
            for i in ids:
                g = get_point(conn, i)
                want = model.ver.get(i, 0)
                totals["points_checked"] += 1
                if g != want:
                    violations.append("round %d: id %d has version %d, acknowledged %d (%s)" % (
                        rnd, i, g, want, "LOST" if g == 0 else "phantom" if want == 0 else "wrong"))
            st, info = request(conn, "GET", "/collections/%s" % COLL)
            live = sum(1 for v in model.ver.values() if v)
            if st != 200 or info.get("len") != live:
                violations.append("round %d: len %s, model holds %d" % (rnd, info and info.get("len"), live))
        except (OSError, RuntimeError, http.client.HTTPException) as e:
            violations.append("round %d: verification failed: %s" % (rnd, e))
        conn.close()
        d.kill()
        if args.powerfs:
            prune_snapshots(os.path.join(args.dir, COLL))
        if len(violations) > 20:
            break

    # Every point ever written, once more.
    d = Daemon(args.aidbd, args.dir, {})
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    for i in range(model.next_id):
        g = get_point(conn, i)
        totals["points_checked"] += 1
        if g != model.ver.get(i, 0):
            violations.append("final: id %d has version %d, acknowledged %d" % (i, g, model.ver.get(i, 0)))
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(30)
    for v in violations[:30]:
        print("VIOLATION", v)
    live = sum(1 for v in model.ver.values() if v)
    if args.powerfs:
        print("daemon_crash: %d power cuts survived (variant %s: %d at an operation count, %d of them "
              "during start-up recovery, %d on a signal), %d acknowledged requests (200), %d point "
              "checks, %d live points, in-flight applied %d / dropped %d / snapshots %d; violations: %d"
              % (totals["rounds"], args.variant, totals["self_kills"] + totals["startup_cuts"],
                 totals["startup_cuts"], totals["timed_kills"], totals["acked"],
                 totals["points_checked"], live, totals["inflight_applied"],
                 totals["inflight_dropped"], totals["inflight_snapshot"], len(violations)))
        return 1 if violations else 0
    print("daemon_crash: %d kills survived (%d timed SIGKILLs, %d at crash points), %d acknowledged "
          "requests, %d point checks, %d live points, in-flight applied %d / dropped %d / snapshots %d; "
          "violations: %d" % (totals["rounds"], totals["timed_kills"], totals["self_kills"], totals["acked"],
                              totals["points_checked"], live, totals["inflight_applied"],
                              totals["inflight_dropped"], totals["inflight_snapshot"], len(violations)))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
