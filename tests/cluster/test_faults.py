"""Faults with writers and searchers running: kill -9 of an aidbd node (it
restarts and catches up from its snapshot), kill -9 of a Kafka broker (ingest
continues, nothing acknowledged is lost), a node that leaves for good (its
replica group's remaining member takes its shards over from a snapshot), a
node that joins (shards rebalance to it). After each: every acknowledged write
is found from every live node, and nothing appears twice.

These tests change the session cluster (node3 leaves, node4 joins), so they
run last (marker `disruptive`), in file order."""
import http.client
import json
import random
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (CONSISTENCY_TIMEOUT_MS, Load, cluster_view, parse_token, shards_of,
                      unique, wait_caught_up, wait_until)

pytestmark = pytest.mark.disruptive

SHARDS = 6
DIM = 8
# How long the load runs around each fault (seconds). Not a timing assertion:
# only long enough for writes and searches to overlap the fault.
AROUND = 4.0


@pytest.fixture(scope="module")
def fcoll(cluster, nodes):
    name = unique("faults")
    r = nodes[0].post("/collections", {"name": name, "dim": DIM, "metric": "euclidean",
                                       "index": "hnsw", "shards": SHARDS, "replication": 2,
                                       "hnsw": {"m": 8, "ef_construction": 64,
                                                "ef_search": 64}})
    assert r.status == 200, r
    # "either": ids whose acknowledged vector a later failed write (error or
    # no answer: maybe applied) may have replaced; either vector is right.
    state = {"name": name, "acked": {}, "unacked": {}, "either": {}}
    rng = random.Random(5)
    for b in range(10):
        pts = [{"id": str(uuid.UUID(int=(b * 1000 + i + 1) << 64)),
                "vector": [rng.uniform(-1, 1) for _ in range(DIM)]} for i in range(200)]
        r = nodes[b % 3].post("/collections/%s/points:batch" % name, {"points": pts})
        assert r.status == 200, r
        state["acked"].update((p["id"], p["vector"]) for p in pts)
    wait_caught_up(cluster, name, SHARDS)
    # Every replica, not only one per shard: the snapshot below is what a
    # restarted node reopens from (a replica that had applied nothing yet
    # would snapshot offset -1 and replay its partition from the start).
    wait_until(lambda: all_replicas_caught_up(nodes[0], name, SHARDS, groups=2), 120,
               "every replica of %s caught up" % name)
    snap(nodes[0], name)
    return state


def all_replicas_caught_up(node, name, shards, groups):
    """Each replica group 0..groups-1 holds every shard of `name` on its live
    nodes, and each of those replicas has lag 0."""
    held = {g: set() for g in range(groups)}
    for n in cluster_view(node)["nodes"]:
        if n.get("state", "up") != "up":
            continue
        for s in n.get("shards", []):
            if s["collection"] != name:
                continue
            if s.get("lag") != 0:
                return False
            held.setdefault(n["replica_group"], set()).add(s["shard"])
    return all(held[g] == set(range(shards)) for g in range(groups))


def snap(node, name):
    r = node.post("/collections/%s/snapshot" % name, {}, timeout=300)
    assert r.status == 200, r
    return r.json()


T0 = time.monotonic()


def step(what):
    """Progress on stdout (pytest -s), to see where a slow fault test waits."""
    print("[%6.1f s] %s" % (time.monotonic() - T0, what), flush=True)


def run_load(cluster, state, fault, after=AROUND):
    """Runs writers and searchers, calls fault() once they are going, lets them
    run `after` seconds more, stops them and folds their results into state."""
    load = Load(cluster, state["name"], DIM, random.Random(len(state["acked"])))
    with load:
        wait_until(lambda: load.counts()[0] > 0 and load.counts()[1] > 0, 60, "load running")
        step("load running; fault")
        info = fault(load)
        time.sleep(after)
        step("stopping the load")
    # Each Load writes the same ids again (its own sequence numbers) with
    # other vectors: an acknowledged write settles an id; a failed one over
    # an acknowledged id leaves it either way.
    for pid, v in load.acked.items():
        state["acked"][pid] = v
        state["unacked"].pop(pid, None)
        state["either"].pop(pid, None)
    for pid, v in load.unacked.items():
        if pid in state["acked"]:
            state["either"].setdefault(pid, []).append(v)
        else:
            state["unacked"][pid] = v
    return load, info


class Fetcher:
    """GETs over one keep-alive connection (thousands of point reads)."""

    def __init__(self, node):
        host, port = node.address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self):
        self.conn.close()


def verify(cluster, state):
    """Every acknowledged write is found, with its vector, from every live
    node; unacknowledged ones are there at most once; len agrees."""
    name = state["name"]
    step("verify: waiting until caught up")
    wait_caught_up(cluster, name, SHARDS, timeout=120)
    step("verify: reading %d acknowledged points from %d nodes"
         % (len(state["acked"]), len(cluster.live())))
    for node in cluster.live():
        r = node.get("/collections/%s?consistency=strong" % name, timeout=60)
        assert r.status == 200, (node.id, r)
        length = r.json()["len"]
        f = Fetcher(node)
        try:
            missing = []
            for pid, vec in state["acked"].items():
                st, body = f.get("/collections/%s/points/%s" % (name, pid))
                if st != 200:
                    missing.append((pid, st))
                    continue
                got = json.loads(body)["vector"]
                assert any(all(abs(a - b) < 1e-5 for a, b in zip(got, v))
                           for v in [vec] + state["either"].get(pid, [])), (node.id, pid)
            assert not missing, "%s: %d acknowledged writes missing, e.g. %r" % (
                node.id, len(missing), missing[:5])
            present = 0
            for pid in state["unacked"]:
                st, _ = f.get("/collections/%s/points/%s" % (name, pid))
                assert st in (200, 404), (node.id, pid, st)
                present += st == 200
        finally:
            f.close()
        assert length == len(state["acked"]) + present, (
            node.id, length, len(state["acked"]), present)
        # No id twice in a search that would find it.
        for pid, vec in list(state["acked"].items())[:50]:
            res = node.post("/collections/%s/search" % name,
                            {"vector": vec, "top_k": 20}).json()["results"]
            ids = [h["id"] for h in res]
            assert len(ids) == len(set(ids)), (node.id, ids)
            assert ids[0] == pid, (node.id, pid, ids[:3])


def node_by_id(cluster, nid):
    return [n for n in cluster.nodes if n.id == nid][0]


def events(lines, event, collection):
    """Log lines of `event` (key=value logs) about `collection`."""
    return [l for l in lines if "event=%s " % event in l + " " and
            re.search(r"\bcollection=%s\b" % re.escape(collection), l)]


def next_offset(line):
    m = re.search(r"\bnext_offset=(-?\d+)", line)
    return int(m.group(1)) if m else None


def test_kill9_node_searches_continue_and_it_catches_up(cluster, nodes, fcoll):
    victim = nodes[0]  # group 0: its shards also live on node2 (group 1)
    owned = set()

    def fault(load):
        # The shards Kafka assigns to it now; its other local copies are warm
        # standbys, which may have applied nothing (a shard it held for a
        # moment while the collection's topic was new: snap--1.aidb).
        owned.update(shards_of(cluster_view(victim), fcoll["name"]).get(victim.id, []))
        victim.kill9()
        # The other nodes list it as down, in the documented shape (every
        # key of a live node's entry, with empty shard lists).
        entry = [n for n in cluster_view(nodes[1])["nodes"] if n["id"] == victim.id]
        assert len(entry) == 1, entry
        assert entry[0]["state"] == "down", entry
        assert entry[0]["shards"] == [] and entry[0]["standby_shards"] == [], entry
        assert {"address", "replica_group"} <= set(entry[0]), entry
        return None

    load, _ = run_load(cluster, fcoll, fault)
    errors = load.errors_from(exclude={victim.id})
    assert not errors, "searches through live nodes failed: %r" % errors[:5]
    werr = load.write_errors_from(exclude={victim.id})
    assert not werr, "writes through live nodes failed: %r" % werr[:5]
    step("restarting " + victim.id)
    victim.start()
    cluster.wait_ready()
    step(victim.id + " back")
    verify(cluster, fcoll)
    # It came back from its own snapshot (taken before the kill) and WAL and
    # consumed from the snapshot's offset, not from the start of the topic
    # (event cluster_shard_opened, next_offset > 0), or took the shard over
    # from a replica's snapshot (cluster_shard_taken_over).
    lines = victim.daemon.log_text().splitlines()
    opened = events(lines, "cluster_shard_opened", fcoll["name"])
    taken = events(lines, "cluster_shard_taken_over", fcoll["name"])
    assert opened or taken, "no shard reopened or taken over:\n" + "\n".join(lines[-40:])
    assert owned, "node %s held no shard of %s" % (victim.id, fcoll["name"])
    for l in opened:
        shard = int(re.search(r"\bshard=(\d+)", l).group(1))
        if shard in owned:
            assert (next_offset(l) or 0) > 0, l
    assert not events(lines, "cluster_shard_from_topic", fcoll["name"]), lines[-40:]


def test_kill9_mid_batch_does_not_stall_reads_after_restart(cluster, nodes):
    """A node killed between a batch's records and its Kafka commit leaves
    that transaction open; read_committed replicas apply nothing past it, so
    writes acknowledged through the other nodes are invisible (session reads
    answer 504) until the transaction is aborted. The restarted node must
    abort it (it reuses its transactional ids), so read-your-writes works
    again as soon as it is back, not only when Kafka times the transaction
    out (transaction.timeout.ms)."""
    victim, writer, reader = nodes[0], nodes[1], nodes[2]
    name = unique("midbatch")
    r = writer.post("/collections", {"name": name, "dim": 4, "index": "flat", "shards": 2,
                                     "replication": 2})
    assert r.status == 200, r
    rng = random.Random(9)

    def read_your_write():
        pts = [{"vector": [rng.uniform(-1, 1) for _ in range(4)]} for _ in range(20)]
        w = writer.post("/collections/%s/points:batch" % name, {"points": pts})
        assert w.status == 200, w
        tok = w.headers["aidb-write-token"]
        assert set(parse_token(tok)[1]) == {0, 1}, tok  # both partitions
        return reader.post("/collections/%s/search" % name,
                           {"vector": pts[0]["vector"], "top_k": 1, "consistency": "session",
                            "write_token": tok}, timeout=CONSISTENCY_TIMEOUT_MS / 1000 + 30)

    stalled = 0
    for attempt in range(4):
        stop = threading.Event()

        def batches(seed):
            wr = random.Random(seed)
            while not stop.is_set():
                pts = [{"vector": [wr.uniform(-1, 1) for _ in range(4)]} for _ in range(200)]
                try:
                    victim.post("/collections/%s/points:batch" % name, {"points": pts},
                                timeout=10)
                except OSError:
                    pass
        threads = [threading.Thread(target=batches, args=(attempt * 10 + i,), daemon=True)
                   for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        victim.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        # 504 here: the kill left a transaction open (not every kill does).
        before = read_your_write()
        assert before.status in (200, 504), before
        stalled += before.status == 504
        victim.start()
        cluster.wait_ready()
        step("%s restarted (attempt %d, stalled: %s)" % (victim.id, attempt, before.status))
        after = read_your_write()
        assert after.status == 200, (
            "a session read still waits for a transaction the killed node left open, after "
            "that node restarted: %r\n%s" % (after, victim.daemon.log_text()[-2000:]))
        if stalled:
            break
    print("kills that left a transaction open: %d of %d" % (stalled, attempt + 1))


def test_kill9_broker_ingest_continues(cluster, kafka, nodes, fcoll):
    marks = {}

    def fault(load):
        marks["acked_before"] = load.counts()[0]
        kafka.kill(1)
        return None

    try:
        load, _ = run_load(cluster, fcoll, fault, after=AROUND * 2)
    finally:
        kafka.start(1)
    assert len(load.acked) > marks["acked_before"], "no write acknowledged after the broker died"
    errors = load.errors_from()
    assert not errors, "searches failed while a broker was down: %r" % errors[:5]
    verify(cluster, fcoll)


def test_node_leaves_for_good_shards_move_from_snapshot(cluster, nodes, fcoll):
    name = fcoll["name"]
    leaver, heir = nodes[2], nodes[0]  # both in replica group 0
    # Fresh snapshots on every replica, so the takeover has one to load.
    snap(nodes[1], name)
    wait_caught_up(cluster, name, SHARDS)
    held = shards_of(cluster_view(heir), name)
    moved = held.get(leaver.id, [])
    assert moved, "node3 held no shard of %s: %r" % (name, held)
    heir_lines = len(heir.daemon.log_text().splitlines())
    # A shard the heir still keeps as a warm standby copy (from an earlier
    # rebalance) is resumed from that copy; the others must come from a
    # replica's snapshot.
    standby = {s["shard"] for n in cluster_view(heir)["nodes"] if n["id"] == heir.id
               for s in n.get("standby_shards", []) if s["collection"] == name}

    def fault(load):
        leaver.kill9()
        return None

    load, _ = run_load(cluster, fcoll, fault)
    assert not load.errors_from(exclude={leaver.id}), load.errors_from(exclude={leaver.id})[:5]

    def taken():
        h = shards_of(cluster_view(heir), name)
        return h.get(heir.id) == list(range(SHARDS)) and h
    wait_until(taken, 120, "node1 holding every group-0 shard of %s" % name)
    step("node1 holds every group-0 shard")
    verify(cluster, fcoll)
    # The shards it took over came from a snapshot (its replica's, over HTTP:
    # event cluster_shard_taken_over with the snapshot's offset), not from a
    # rebuild out of the topic (event cluster_shard_from_topic).
    new = heir.daemon.log_text().splitlines()[heir_lines:]
    taken = events(new, "cluster_shard_taken_over", name)
    from_topic = events(new, "cluster_shard_from_topic", name)
    for shard in moved:
        mine = lambda ls: [l for l in ls if re.search(r"\bshard=%d\b" % shard, l)]
        assert not mine(from_topic), "shard %d rebuilt from the topic:\n%s" % (
            shard, "\n".join(mine(from_topic)))
        if shard in standby:
            continue
        assert mine(taken), "shard %d not taken over from a snapshot on node1:\n%s" % (
            shard, "\n".join(new[-60:]))


def test_node_joins_shards_rebalance_to_it(cluster, nodes, fcoll):
    name = fcoll["name"]
    snap(nodes[0], name)
    joiner = cluster.add_node(group=0)
    cluster.wait_ready()

    def fault(load):
        return None

    def balanced():
        h = shards_of(cluster_view(joiner), name)
        mine, other = h.get(joiner.id, []), h.get(nodes[0].id, [])
        return mine and sorted(mine + other) == list(range(SHARDS)) and h
    load, _ = run_load(cluster, fcoll, fault)
    h = wait_until(balanced, 120, "shards of %s shared by node1 and node4" % name)
    assert not load.errors_from(), load.errors_from()[:5]
    verify(cluster, fcoll)
    # The newcomer loaded its shards from a replica's snapshot.
    lines = joiner.daemon.log_text().splitlines()
    assert not events(lines, "cluster_shard_from_topic", name), lines[-40:]
    taken = events(lines, "cluster_shard_taken_over", name)
    for shard in h[joiner.id]:
        assert [l for l in taken if re.search(r"\bshard=%d\b" % shard, l)], (shard, lines[-40:])


def thread_stacks(pid):
    """Every thread's stack of a hung process (gdb, when installed)."""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 15"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return "(no stacks: %s)" % e
    return "\n".join(l for l in out.splitlines() if l.startswith(("Thread", "#")))[-12000:]


def test_sigterm_stops_every_node(cluster):
    """Last: SIGTERM drains and stops every node with exit status 0, as for a
    standalone aidbd (a node that hangs fails here rather than being killed
    silently at teardown)."""
    live = cluster.live()
    t0 = time.monotonic()
    for node in live:
        node.daemon.proc.send_signal(signal.SIGTERM)
    for node in live:
        try:
            node.daemon.proc.wait(90)
        except subprocess.TimeoutExpired:
            stacks = thread_stacks(node.daemon.proc.pid)
            node.kill9()
            raise AssertionError("%s did not stop within 90 s of SIGTERM:\n%s\n\nthreads:\n%s"
                                 % (node.id, node.log_text()[-3000:], stacks))
        rc = node.daemon.stop()
        print("%s stopped with %r after %.1f s" % (node.id, rc, time.monotonic() - t0))
        assert rc == 0, "%s exited with %r:\n%s" % (node.id, rc, node.daemon.log_text()[-3000:])
