"""Every route through every cluster node answers as one standalone aidbd
does for the same data (same status codes, same JSON shapes and values), and
cluster search recall@10 is at least a standalone node's at the same ef."""
import math
import os
import random
import time
import uuid

import pytest

from conftest import (assert_error, cluster_view, shards_of, strong, unique, wait_caught_up,
                      wait_until, write_token)

# Fields of the collection info that describe the local storage of one node
# (its WAL), not the collection's data: they differ by construction.
LOCAL_FIELDS = {"wal_size_bytes", "wal_last_truncate", "wal_bytes_since_truncate",
                "wal_last_lsn", "durability", "write_token"}


def same(a, b, path="$"):
    """Asserts the standalone answer `a` and the cluster answer `b` agree: every
    key of `a` is in `b` with an equal value (floats to 1e-5), except the local
    storage fields. `b` may carry more keys (e.g. shards, replication)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), (path, a, b)
        for k, v in a.items():
            if k in LOCAL_FIELDS:
                continue
            assert k in b, "%s.%s missing in the cluster answer %r" % (path, k, b)
            same(v, b[k], "%s.%s" % (path, k))
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (path, i))
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5), (path, a, b)
        if ".vector[" in path and a == 0:  # a stored -0.0 keeps its sign
            assert math.copysign(1, a) == math.copysign(1, b), (path, a, b)
    else:
        assert a == b, (path, a, b)


def mirror(standalone, nodes, method, path, body=None, cluster_path=None):
    """Sends one request to the standalone node and to every cluster node and
    asserts the answers agree. Returns the standalone answer."""
    ref = standalone.request(method, path, body=body)
    for node in nodes:
        r = node.request(method, cluster_path or path, body=body)
        assert r.status == ref.status, (node.id, method, path, body, ref, r)
        if ref.status >= 400:
            assert r.json().get("error"), (node.id, r)
        else:
            same(ref.json(), r.json())
    return ref


def create_both(standalone, nodes, body, shards, replication):
    r = standalone.post("/collections", body)
    assert r.status == 200 and r.json()["ok"] is True, r
    c = nodes[0].post("/collections", dict(body, shards=shards, replication=replication))
    assert c.status == 200, c
    same(r.json(), c.json())
    return c.json()


def test_cluster_view_and_metrics(nodes):
    name = unique("view")
    r = nodes[0].post("/collections", {"name": name, "dim": 2, "shards": 4, "replication": 2})
    assert r.status == 200, r
    for node in nodes:
        view = cluster_view(node)
        assert view["node_id"] == node.id
        ids = {n["id"] for n in view["nodes"]}
        assert {m.id for m in nodes} <= ids, view
        for n in view["nodes"]:
            for key in ("id", "address", "replica_group", "state", "shards"):
                assert key in n, (key, n)
            for s in n["shards"]:
                for key in ("collection", "shard", "applied_offset", "high_watermark", "lag"):
                    assert key in s, (key, s)
        mine = [n for n in view["nodes"] if n["id"] == node.id][0]
        assert mine["address"] == node.address and mine["replica_group"] == node.group

    # Replication 2 on groups 0,1,0: every shard has one replica in group 0
    # (node1 or node3) and one in group 1 (node2).
    def placed():
        held = shards_of(cluster_view(nodes[0]), name)
        g0 = sorted(held.get("node1", []) + held.get("node3", []))
        return g0 == [0, 1, 2, 3] and held.get("node2") == [0, 1, 2, 3] and held
    wait_until(placed, 60, "shards of %s on both replica groups" % name)

    # Per-shard gauges, once the shards have records (a shard's lag is
    # reported once its high watermark is known).
    r = nodes[0].post("/collections/%s/points:batch" % name,
                      {"points": [{"vector": [i, 1]} for i in range(20)]})
    assert r.status == 200, r
    for node in nodes:
        assert node.get(strong("/collections/" + name)).json()["len"] == 20

    def gauges():
        text = nodes[1].get("/metrics").body
        found = {}
        for metric in ("aidb_cluster_shard_applied_offset", "aidb_cluster_shard_lag"):
            found[metric] = [l for l in text.splitlines()
                             if l.startswith(metric + '{collection="%s",shard="' % name)]
        return all(len(v) == 4 for v in found.values()) and found
    found = wait_until(gauges, 30, "per-shard gauges of %s on node2" % name)
    assert all(l.endswith(" 0") for l in found["aidb_cluster_shard_lag"]), found


def test_collection_routes_agree(standalone, nodes):
    name = unique("coll")
    body = {"name": name, "dim": 3, "metric": "euclidean", "index": "hnsw",
            "hnsw": {"m": 8, "ef_construction": 64, "ef_search": 32}}
    create_both(standalone, nodes, body, shards=3, replication=2)
    # Every node knows it (the metadata topic), with the standalone shape.
    ref = standalone.get("/collections/" + name).json()
    for node in nodes:
        got = wait_until(lambda: node.get(strong("/collections/" + name)), 30,
                         "%s on %s" % (name, node.id))
        assert got.status == 200, got
        same(ref, got.json())
        listed = [c for c in node.get("/collections").json() if c["name"] == name]
        assert len(listed) == 1, node.id
        same(ref, listed[0])
    # Same errors for the same bad bodies.
    for bad in ({"name": name, "dim": 3}, {"name": "../etc", "dim": 3}, {"name": "ok"},
                {"name": "x" * 65, "dim": 3}, {"name": "ok", "dim": 0},
                {"name": "ok", "dim": 3, "metric": "manhattan"},
                {"name": "ok", "dim": 3, "index": "lsh"}, [1, 2]):
        mirror(standalone, nodes, "POST", "/collections", bad)
    mirror(standalone, nodes, "GET", "/collections/missing_" + name)
    # ef_search goes through the metadata topic: every node sees it.
    r = nodes[1].post("/collections/%s/params" % name, {"ef_search": 77})
    assert r.status == 200 and r.json() is True, r
    assert standalone.post("/collections/%s/params" % name, {"ef_search": 77}).json() is True
    for node in nodes:
        wait_until(lambda: node.get("/collections/" + name).json()["hnsw"]["ef_search"] == 77,
                   30, "ef_search 77 on " + node.id)
    mirror(standalone, nodes, "POST", "/collections/%s/params" % name, {"ef_search": "x"})
    # compact and snapshot answer on every node.
    for node in nodes:
        mirror(standalone, nodes[node.n - 1:node.n], "POST", "/collections/%s/compact" % name)
    r = nodes[0].post("/collections/%s/points:batch" % name,
                      {"points": [{"vector": [i, 1, 2]} for i in range(30)]})
    assert r.status == 200, r
    r = nodes[2].post("/collections/%s/snapshot" % name, {})
    assert r.status == 200, r
    # One snapshot per replica of every shard (3 shards x 2 replicas).
    snaps = r.json()["snapshots"]
    assert len({(s["node"], s["shard"]) for s in snaps}) >= 6, r.json()
    assert {s["shard"] for s in snaps} == {0, 1, 2} and not r.json()["errors"], r.json()
    for node in nodes:
        listed = node.get("/collections/%s/snapshots" % name)
        assert listed.status == 200 and len(listed.json()["snapshots"]) >= 6, listed
    # Documented differences of cluster mode (docs/cluster.md): a snapshot
    # "path", restore and the WAL change feed are refused with a clear error.
    for node in nodes:
        assert_error(node.post("/collections/%s/snapshot" % name, {"path": "x.aidb"}), 400)
        assert_error(node.post("/collections/%s/restore" % name, {"snapshot": "x"}), 501)
        assert_error(node.get("/collections/%s/wal?from_lsn=0" % name), 501)
    # Drop through one node: gone everywhere.
    r = nodes[2].delete("/collections/" + name)
    assert r.status == 200 and r.json() == {"name": name, "deleted": True}, r
    assert standalone.delete("/collections/" + name).status == 200
    for node in nodes:
        wait_until(lambda: node.get("/collections/" + name).status == 404, 30,
                   "%s dropped on %s" % (name, node.id))
        assert_error(node.post("/collections/%s/search" % name, {"vector": [0, 0, 0]}), 404)
        assert_error(node.delete("/collections/" + name), 404)


def test_storage_and_ivf_settings_reach_every_shard(standalone, nodes):
    """quantization, vectors_on_disk and the ivf parameters of a create body
    travel through the metadata topic: every node reports them as standalone
    does, the shards' local collections are made with them, a create that
    differs in them is a 409, and params sets an IVF collection's nprobe."""
    hn, iv = unique("disk"), unique("ivfp")
    create_both(standalone, nodes, {"name": hn, "dim": 3, "index": "hnsw", "quantization": "none",
                                    "vectors_on_disk": True}, shards=2, replication=1)
    ivf_body = {"name": iv, "dim": 3, "index": "ivf",
                "ivf": {"nlist": 4, "nprobe": 2, "rerank": 30}}
    create_both(standalone, nodes, ivf_body, shards=2, replication=1)
    for name in (hn, iv):
        ref = standalone.get("/collections/" + name).json()
        for node in nodes:
            got = wait_until(lambda: node.get(strong("/collections/" + name)), 30,
                             "%s on %s" % (name, node.id))
            same(ref, got.json())
    assert ref["ivf"] == {"nlist": 4, "nprobe": 2, "rerank": 30}, ref
    # The shards' own collections hold their vectors in files (vectors.bin).
    r = nodes[0].post("/collections/%s/points:batch" % hn,
                      {"points": [{"vector": [i, 1, 2]} for i in range(40)]})
    assert r.status == 200, r
    def vector_files():
        found = [os.path.join(d, f) for node in nodes for d, _, fs in os.walk(node.data_dir)
                 for f in fs if f == "vectors.bin" and os.path.getsize(os.path.join(d, f)) > 0]
        return len(found) >= 2 and found
    wait_until(vector_files, 30, "the shards' vectors.bin files")
    for node in nodes:
        assert "quantization" in assert_error(node.post("/collections", {
            "name": hn, "dim": 3, "index": "hnsw", "vectors_on_disk": True}), 409)
        assert "ivf.nlist" in assert_error(node.post("/collections", dict(
            ivf_body, ivf={"nlist": 5, "rerank": 30})), 409)
        r = node.post("/collections", dict(ivf_body, ivf={"nlist": 4, "nprobe": 7, "rerank": 30}))
        assert r.status == 200 and r.json()["ok"] is True, r
    r = nodes[1].post("/collections/%s/params" % iv, {"ef_search": 3})
    assert r.status == 200 and r.json() is True, r
    assert standalone.post("/collections/%s/params" % iv, {"ef_search": 3}).json() is True
    for node in nodes:
        wait_until(lambda: node.get("/collections/" + iv).json()["ivf"]["nprobe"] == 3,
                   30, "nprobe 3 on " + node.id)
    mirror(standalone, nodes, "POST", "/collections/%s/params" % iv, {"ef_search": 70000})
    r = nodes[2].post("/collections/%s/points:batch" % iv,
                      {"points": [{"vector": [i, 1, 0]} for i in range(30)]})
    assert r.status == 200, r
    r = nodes[0].post(strong("/collections/%s/search" % iv), {"vector": [3, 1, 0], "top_k": 3})
    assert r.status == 200 and len(r.json()["results"]) == 3, r


def test_ivf_rerank_reaches_every_shard(nodes, cluster):
    """A search's `ivf_rerank` (single and batch, docs/http-api.md) reaches
    each shard's IVF search: with every shard trained (> 2048 points each),
    the configured 10 candidates miss exact hits, while all lists with every
    point re-ranked give the exact hits through every node; a bad value is a
    400 from the router as from a standalone node."""
    n, dim = 6000, 16
    name = unique("ivfrr")
    r = nodes[0].post("/collections", {"name": name, "dim": dim, "metric": "euclidean",
                                       "index": "ivf", "shards": 2, "replication": 1,
                                       "ivf": {"nlist": 8, "nprobe": 2, "rerank": 10}})
    assert r.status == 200, r
    def vec(i):
        return [math.sin(i * dim + j + 1) + i % 7 for j in range(dim)]
    for start in range(0, n, 1000):
        pts = [{"id": str(uuid.UUID(int=i + 1)), "vector": vec(i)}
               for i in range(start, start + 1000)]
        r = nodes[(start // 1000) % 3].post("/collections/%s/points:batch" % name,
                                            {"points": pts}, timeout=120)
        assert r.status == 200, r
    wait_caught_up(cluster, name, 2, timeout=120)
    queries = [vec(n + q) for q in range(20)]
    s = "/collections/%s/search:batch" % name
    def ids(node, options):
        r = node.post(s, dict({"searches": queries, "top_k": 10, "with_payload": False,
                               "consistency": "strong"}, **options), timeout=120)
        assert r.status == 200, r
        return [[h["id"] for h in hits] for hits in r.json()["results"]]
    exact = ids(nodes[0], {"exact": True})
    # The shards train in the background once they hold 2048 points.
    wait_until(lambda: ids(nodes[1], {}) != exact, 60, "trained IVF shards")
    for node in nodes:
        assert ids(node, {"ef_search": 8, "ivf_rerank": n}) == exact, node.id
        one = node.post(strong("/collections/%s/search" % name),
                        {"vector": queries[0], "top_k": 10, "ef_search": 8, "ivf_rerank": n})
        assert one.status == 200, one
        assert [h["id"] for h in one.json()["results"]] == exact[0], node.id
    for bad in (-1, "x", 2**33):
        assert "ivf_rerank" in assert_error(nodes[2].post(
            "/collections/%s/search" % name, {"vector": queries[0], "ivf_rerank": bad}), 400)
    assert nodes[0].delete("/collections/" + name).status == 200


def test_point_routes_agree(standalone, nodes, cluster):
    name = unique("pts")
    body = {"name": name, "dim": 4, "metric": "euclidean"}  # flat: exact answers
    create_both(standalone, nodes, body, shards=3, replication=2)
    rng = random.Random(7)
    pts = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "vector": [round(rng.uniform(-1, 1), 3) for _ in range(4)],
            "payload": {"i": i, "even": i % 2 == 0, "tag": {"k": "t%d" % (i % 3)}}}
           for i in range(60)]
    pts[7]["vector"][1] = -0.0  # read back below (GET point), sign included
    pts[35]["vector"][2] = -0.0  # the same through a batch
    # Singles through every node in turn, then one batch through node2.
    for i, p in enumerate(pts[:30]):
        a = standalone.post("/collections/%s/points" % name, p)
        b = nodes[i % 3].post("/collections/%s/points" % name, p)
        assert a.status == b.status == 200, (a, b)
        same(a.json(), b.json())
        write_token(b)
    a = standalone.post("/collections/%s/points:batch" % name, {"points": pts[30:]})
    b = nodes[1].post("/collections/%s/points:batch" % name, {"points": pts[30:]})
    assert a.status == b.status == 200, (a, b)
    same(a.json(), b.json())
    write_token(b)
    # An upsert with no id: both generate one; the shape is the same.
    b = nodes[0].post("/collections/%s/points" % name, {"vector": [9, 9, 9, 9]})
    assert b.status == 200 and str(uuid.UUID(b.json())) == b.json(), b
    assert standalone.post("/collections/%s/points" % name,
                           {"id": b.json(), "vector": [9, 9, 9, 9]}).status == 200
    # Deletes through node3.
    for p in pts[:5]:
        a = standalone.delete("/collections/%s/points/%s" % (name, p["id"]))
        b = nodes[2].delete("/collections/%s/points/%s" % (name, p["id"]))
        assert a.status == b.status == 200, (a, b)
        same(a.json(), b.json())
    wait_caught_up(cluster, name, 3)

    # Reads, strong consistency (standalone ignores the extra field).
    mirror(standalone, nodes, "GET", "/collections/" + name,
           cluster_path=strong("/collections/" + name))
    for p in pts[::7]:
        path = "/collections/%s/points/%s" % (name, p["id"])
        mirror(standalone, nodes, "GET", path, cluster_path=strong(path))
        upper = "/collections/%s/points/%s" % (name, p["id"].upper())
        mirror(standalone, nodes, "GET", upper, cluster_path=strong(upper))
    s = "/collections/%s/search" % name
    for q in ([0, 0, 0, 0], [1, -1, 0.5, 0], [-0.3, 0.2, 0.9, -0.9]):
        for extra in ({"top_k": 5}, {"k": 12}, {"limit": 70}, {"top_k": 4, "with_payload": False},
                      {"top_k": 6, "filter": {"even": True}},
                      {"top_k": 3, "filter": {"must": [{"key": "i", "range": {"gte": 40}}],
                                              "must_not": [{"key": "tag.k",
                                                            "match": {"value": "t0"}}]}},
                      {"top_k": 5, "exact": True}):
            mirror(standalone, nodes, "POST", s, dict({"vector": q, "consistency": "strong"},
                                                      **extra))
    mirror(standalone, nodes, "POST", "/collections/%s/search:batch" % name,
           {"searches": [{"vector": [0, 0, 0, 0], "top_k": 3},
                         {"vector": [1, 1, 1, 1], "top_k": 2, "filter": {"even": False}},
                         [0.5, 0.5, 0, 0]], "top_k": 4, "consistency": "strong"})
    mirror(standalone, nodes, "POST", "/collections/%s/search:batch" % name,
           {"searches": [], "consistency": "strong"})

    # Bad input: the same status everywhere.
    base = "/collections/%s/points" % name
    for bad in ({"vector": [1, 2]}, {"vector": [1, "2", 3, 4]}, {}, {"vector": []},
                {"vector": [1, 2, 3, 4], "id": "not-a-uuid"},
                {"vector": [1, 2, 3, 4], "payload": [1]}, {"vector": [1, 2, 3, 1e39]}):
        mirror(standalone, nodes, "POST", base, bad)
    mirror(standalone, nodes, "POST", base + ":batch",
           {"points": [{"vector": [1, 0, 0, 0]}, {"vector": [1, 0, 0]}]})
    mirror(standalone, nodes, "POST", base + ":batch", {"points": {}})
    mirror(standalone, nodes, "GET", base + "/not-a-uuid")
    mirror(standalone, nodes, "GET", base + "/" + str(uuid.UUID(int=5)))
    mirror(standalone, nodes, "DELETE", base + "/" + pts[0]["id"])  # already deleted: false
    mirror(standalone, nodes, "POST", s, {"vector": [0, 0, 0]})
    mirror(standalone, nodes, "POST", s, {"vector": [0, 0, 0, 0], "top_k": -1})
    mirror(standalone, nodes, "POST", s, {"vector": [0, 0, 0, 0], "filter": "x"})
    mirror(standalone, nodes, "POST", "/collections/%s/search:batch" % name, {"searches": 3})
    mirror(standalone, nodes, "POST", "/collections/nope_%s/search" % name, {"vector": [0] * 4})
    mirror(standalone, nodes, "POST", "/collections/nope_%s/points" % name, {"vector": [0] * 4})
    # Nothing of the rejected writes was applied.
    mirror(standalone, nodes, "GET", "/collections/" + name,
           cluster_path=strong("/collections/" + name))
    for path, method in (("/collections/%s/search" % name, "GET"), ("/nope", "GET")):
        mirror(standalone, nodes, method, path)


def _topic_configs(kafka, topic):
    desc = _topic_command(kafka, "--describe", "--topic", topic)
    return dict(kv.split("=", 1) for kv in
                desc.split("Configs:", 1)[1].splitlines()[0].strip().split(",") if kv)


def test_an_older_topics_record_limit_is_raised_on_first_need(nodes, kafka):
    """Topics made by 0.2.0 and earlier kept Kafka's ~1 MB record limit. A
    point too large for it raises the topic's max.message.bytes to 32 MiB,
    keeping its other settings, and is written (a batch too); before, it
    was a 413. The old topic is made here by removing the override with
    Kafka's own ConfigCommand."""
    import subprocess
    name = unique("oldtopic")
    topic = "aidb." + name
    r = nodes[0].post("/collections", {"name": name, "dim": 3, "shards": 2})
    assert r.status == 200, r
    jars = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "cluster", "target", "dependency", "*")
    out = subprocess.run(["java", "-cp", jars, "kafka.admin.ConfigCommand", "--bootstrap-server",
                          kafka.bootstrap, "--entity-type", "topics", "--entity-name", topic,
                          "--alter", "--delete-config", "max.message.bytes"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout
    before = _topic_configs(kafka, topic)
    assert "max.message.bytes" not in before and before.get("cleanup.policy") == "compact", before
    # Until the brokers apply it, a record may pass the old limit: wait.
    small = {"vector": [0, 0, 1], "payload": {"blob": "s" * 1200000}}
    deadline = time.time() + 60
    while True:
        r = nodes[1].post("/collections/%s/points" % name, small)
        if r.status == 200 and "max.message.bytes" in _topic_configs(kafka, topic):
            break  # raised by this write
        assert r.status == 200, (r, [l for l in nodes[1].log_text().splitlines()
                                     if "topic_limit" in l])
        assert time.time() < deadline, "the brokers kept the 32 MiB limit"
        time.sleep(0.5)
    after = _topic_configs(kafka, topic)
    assert after.get("max.message.bytes") == "33554432", after
    for k, v in before.items():
        assert after.get(k) == v, (k, before, after)
    assert "cluster_topic_limit_raised" in nodes[1].log_text()
    big = {"id": str(uuid.uuid4()), "vector": [1, 2, 3], "payload": {"blob": "a" * 2500000}}
    r = nodes[2].post("/collections/%s/points" % name, big)
    assert r.status == 200, r
    batch = [{"vector": [i, 0, 1], "payload": {"blob": chr(98 + i) * 1500000}} for i in range(2)]
    r = nodes[0].post("/collections/%s/points:batch" % name, {"points": batch})
    assert r.status == 200, r
    r = nodes[0].get(strong("/collections/%s/points/%s" % (name, big["id"])))
    assert r.status == 200 and r.json()["payload"] == big["payload"], r.status
    assert nodes[0].delete("/collections/" + name).status == 200


# The fields of a collection info that clients of the original server read.
def test_large_payloads_are_stored_as_standalone_stores_them(standalone, nodes):
    """A point's payload may be up to the library's limit (16 MiB) on a
    standalone node; through a cluster it travels as one Kafka record, which
    must not be refused at Kafka's default record size (~1 MB)."""
    name = unique("bigpl")
    create_both(standalone, nodes, {"name": name, "dim": 3, "metric": "euclidean"},
                shards=2, replication=2)
    one = {"id": str(uuid.uuid4()), "vector": [1, 2, 3], "payload": {"blob": "a" * 2500000}}
    batch = [{"id": str(uuid.uuid4()), "vector": [i, 0, 1],
              "payload": {"blob": chr(98 + i) * 1500000, "i": i}} for i in range(3)]
    for path, body in (("points", one), ("points:batch", {"points": batch})):
        a = standalone.post("/collections/%s/%s" % (name, path), body)
        b = nodes[0].post("/collections/%s/%s" % (name, path), body)
        assert a.status == b.status == 200, (a, b)
        same(a.json(), b.json())
    for p in [one] + batch:
        path = "/collections/%s/points/%s" % (name, p["id"])
        r = nodes[2].get(strong(path))
        assert r.status == 200, r
        assert r.json()["payload"] == p["payload"], path
    # Over the library's limit: the standalone answer (400), not Kafka's.
    mirror(standalone, nodes[:1], "POST", "/collections/%s/points" % name,
           {"vector": [1, 2, 3], "payload": {"blob": "c" * (17 << 20)}})


def _fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def _topic_command(kafka, *args):
    """Kafka's own TopicCommand (the jars scripts/kafka.sh resolved); its output."""
    import subprocess
    jars = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "cluster", "target", "dependency", "*")
    out = subprocess.run(["java", "-cp", jars, "org.apache.kafka.tools.TopicCommand",
                          "--bootstrap-server", kafka.bootstrap] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout
    return out.stdout


def _topics(kafka):
    return set(_topic_command(kafka, "--list").split())


def test_topic_layout_in_kafka(nodes, kafka):
    """What docs/cluster.md says of the Kafka side, read back from the real
    brokers with Kafka's own tools: topic aidb.<name> with one partition per
    shard, replication factor 3 (3 brokers), cleanup.policy=compact,
    min.insync.replicas=2; record key = the canonical point id, partition =
    FNV-1a of its 16 bytes mod S; a delete is a tombstone."""
    import json as _json
    import subprocess
    name, shards = unique("layout"), 3
    r = nodes[0].post("/collections", {"name": name, "dim": 2, "shards": shards})
    assert r.status == 200, r
    ids = [str(uuid.UUID(int=(i + 1) * 0x9E3779B97F4A7C15 << 40, version=4)) for i in range(12)]
    r = nodes[1].post("/collections/%s/points:batch" % name,
                      {"points": [{"id": i.upper(), "vector": [1, k]} for k, i in enumerate(ids)]})
    assert r.status == 200 and r.json() == ids, r
    assert nodes[2].delete("/collections/%s/points/%s" % (name, ids[0])).json() is True
    topic = "aidb." + name
    md = _json.loads(subprocess.run(["kcat", "-b", kafka.bootstrap, "-L", "-J", "-t", topic],
                                    stdout=subprocess.PIPE, check=True, timeout=60).stdout)
    parts = md["topics"][0]["partitions"]
    assert sorted(p["partition"] for p in parts) == list(range(shards)), parts
    assert all(len(p["replicas"]) == 3 for p in parts), parts
    configs = _topic_configs(kafka, topic)
    assert configs.get("cleanup.policy") == "compact", configs
    assert configs.get("min.insync.replicas") == "2", configs
    assert int(configs.get("max.message.bytes", 0)) >= 17 << 20, configs
    out = subprocess.run(["kcat", "-b", kafka.bootstrap, "-C", "-t", topic, "-e", "-q", "-Z",
                          "-X", "isolation.level=read_committed", "-f", "%p %k %S\n"],
                         stdout=subprocess.PIPE, text=True, check=True, timeout=60).stdout
    records = [l.split(" ") for l in out.splitlines()]
    assert len(records) == len(ids) + 1, out
    for p, key, size in records:
        assert key in ids, key  # canonical (lower case), as sent in upper case
        assert int(p) == _fnv1a32(uuid.UUID(key).bytes) % shards, (p, key)
    assert [k for _, k, size in records if size == "-1"] == [ids[0]], out  # the tombstone


ORIGINAL_INFO = ("name", "dim", "metric", "len", "index", "hnsw", "wal_size_bytes",
                 "wal_last_truncate", "wal_bytes_since_truncate")


def test_a_write_racing_a_drop_does_not_bring_the_topic_back(nodes, kafka):
    """Brokers create a topic on first use by default (auto.create.topics.enable,
    which scripts/kafka.sh leaves at Kafka's default). A node that has not yet
    read a drop made through another node still routes writes to the dropped
    collection's topic: those must fail, not re-create the topic with the
    broker's defaults (one partition, ~1 MB records, no compaction) and be
    acknowledged. The drop's topic deletion is made here with Kafka's own
    tool, so the node surely has not read the drop."""
    name = unique("racedrop")
    topic = "aidb." + name
    r = nodes[0].post("/collections", {"name": name, "dim": 2, "shards": 1})
    assert r.status == 200, r
    r = nodes[1].post("/collections/%s/points" % name, {"vector": [1, 2]})
    assert r.status == 200, r
    _topic_command(kafka, "--delete", "--topic", topic)
    deadline = time.time() + 60
    while topic in _topics(kafka):
        assert time.time() < deadline, "topic %s still listed" % topic
        time.sleep(0.5)
    r = nodes[1].post("/collections/%s/points" % name, {"vector": [3, 4]})
    assert assert_error(r, 503).startswith("kafka: "), r
    assert topic not in _topics(kafka)
    # The drop itself, then a write through the other node: 404 (once it
    # has read the drop, or when its write finds the topic gone).
    assert nodes[0].delete("/collections/" + name).status == 200
    assert_error(nodes[1].post("/collections/%s/points" % name, {"vector": [5, 6]}), 404)
    assert topic not in _topics(kafka)
    # The name can be created again (a topic left behind would make it a
    # 409), and is empty.
    r = nodes[2].post("/collections", {"name": name, "dim": 2, "shards": 1})
    assert r.status == 200, r
    r = nodes[1].get(strong("/collections/" + name))
    assert r.status == 200 and r.json()["len"] == 0, r
    assert nodes[0].delete("/collections/" + name).status == 200


def test_original_server_routes_answer_in_its_shapes(standalone, nodes):
    """Each route of the original AIDB server, through every cluster node,
    decoded the way a typed client of the original decodes it (docs/http-api.md):
    bare strings, arrays and booleans stay bare, the write token of such an
    answer is in the AIDB-Write-Token header only, hits ascend by distance."""
    hn, flat = unique("orig"), unique("origflat")
    for node in nodes:
        r = node.get("/health")
        assert r.status == 200 and r.body == "ok", r
        assert r.headers["content-type"].startswith("text/plain"), r.headers

    # POST /collections: {"ok": true}; again with the same configuration (from
    # any node): unchanged; with another: 409 saying what differs.
    body = {"name": hn, "dim": 3, "metric": "cosine",
            "hnsw": {"m": 8, "ef_construction": 64, "ef_search": 32}}
    r = nodes[0].post("/collections", dict(body, shards=3, replication=2))
    assert r.status == 200 and r.json()["ok"] is True, r
    r = nodes[1].post("/collections", {"name": flat, "dim": 3, "metric": "euclidean",
                                       "index": "bruteforce", "shards": 2})
    assert r.status == 200 and r.json()["ok"] is True, r
    for node in nodes:
        for name in (hn, flat):
            wait_until(lambda: node.get("/collections/" + name).status == 200, 30,
                       "%s on %s" % (name, node.id))
        r = node.post("/collections", body)
        assert r.status == 200 and r.json()["ok"] is True, (node.id, r)
        r = node.post("/collections", dict(body, shards=3, replication=2))
        assert r.status == 200 and r.json()["ok"] is True, (node.id, r)
        assert "dim" in assert_error(node.post("/collections", dict(body, dim=4)), 409)
        assert "metric" in assert_error(
            node.post("/collections", dict(body, metric="euclidean")), 409)
        assert "shards" in assert_error(node.post("/collections", dict(body, shards=2)), 409)
    assert nodes[0].get("/collections/" + hn).json()["dim"] == 3
    # "wal_dir" must name the receiving node's --data-dir, as standalone.
    for node in nodes:
        wd = unique("walcheck")
        r = node.post("/collections", {"name": wd, "dim": 3,
                                       "wal_dir": os.path.realpath(node.data_dir)})
        assert r.status == 200 and r.json()["ok"] is True, (node.id, r)
        assert node.delete("/collections/" + wd).status == 200
        assert "wal_dir" in assert_error(node.post("/collections", {
            "name": unique("walbad"), "dim": 3, "wal_dir": node.data_dir + "/elsewhere"}), 400)

    # GET /collections: a bare array of infos; GET /collections/:name: the info.
    for node in nodes:
        r = node.get("/collections")
        assert r.status == 200 and isinstance(r.json(), list), r
        mine = {c["name"]: c for c in r.json() if c["name"] in (hn, flat)}
        assert set(mine) == {hn, flat}, r.json()
        for info in list(mine.values()) + [node.get("/collections/" + hn).json()]:
            assert isinstance(info, dict)
            for key in ORIGINAL_INFO:
                assert key in info, (key, info)
        assert mine[hn]["index"] == "hnsw" and mine[hn]["hnsw"]["m"] == 8, mine[hn]

    # Points: a bare id string, a bare array of ids.
    pts = "/collections/%s/points" % hn
    pid = str(uuid.uuid4())
    r = nodes[2].post(pts, {"id": pid, "vector": [1, 0, 0], "payload": {"k": "own"}})
    assert r.status == 200 and r.json() == pid, r
    assert r.headers["content-type"].startswith("application/json"), r.headers
    tokens = [write_token(r)]
    r = nodes[0].post(pts, {"vector": [0, 1, 0]})
    gen = r.json()
    assert r.status == 200 and isinstance(gen, str) and str(uuid.UUID(gen)) == gen, r
    tokens.append(write_token(r))
    ids = [str(uuid.uuid4()) for _ in range(6)]
    r = nodes[1].post(pts + ":batch", {"points": [
        {"id": i, "vector": [1, k + 1, 0], "payload": {"k": k}} for k, i in enumerate(ids)]})
    assert r.status == 200 and r.json() == ids, r
    tokens.append(write_token(r))

    # search: {"results": [{"id", "score", "payload"}]}, ascending distances
    # (cosine: 1 - cosine similarity, 0 for the point itself).
    for node in nodes:
        r = node.post("/collections/%s/search" % hn,
                      {"vector": [1, 0, 0], "top_k": 4, "consistency": "session",
                       "write_token": tokens})
        assert r.status == 200, r
        hits = r.json()["results"]
        assert isinstance(hits, list) and len(hits) == 4, r
        for h in hits:
            assert isinstance(h["id"], str) and isinstance(h["score"], (int, float)), h
            assert "payload" in h, h
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores), scores
        assert hits[0]["id"] == pid and abs(hits[0]["score"]) < 1e-5, hits
        assert hits[0]["payload"] == {"k": "own"}, hits
        # search:batch {"queries": [[...]]} -> {"results": [[...]]}
        r = node.post("/collections/%s/search:batch" % hn,
                      {"queries": [[1, 0, 0], [0, 1, 0]], "top_k": 3,
                       "consistency": "session", "write_token": tokens})
        assert r.status == 200, r
        lists = r.json()["results"]
        assert isinstance(lists, list) and len(lists) == 2, r
        for hits in lists:
            assert isinstance(hits, list) and len(hits) == 3, lists
            scores = [h["score"] for h in hits]
            assert scores == sorted(scores), scores
        assert lists[0][0]["id"] == pid and lists[1][0]["id"] == gen, lists

    # DELETE point: true (a write: token in the header), then false (nothing).
    r = nodes[0].delete("%s/%s" % (pts, pid))
    assert r.status == 200 and r.json() is True, r
    write_token(r)
    for node in nodes:
        r = node.delete("%s/%s" % (pts, pid))
        assert r.status == 200 and r.json() is False, (node.id, r)
        assert "aidb-write-token" not in r.headers, r.headers

    # compact and params: true, false for the exact index.
    for node in nodes:
        r = node.post("/collections/%s/compact" % hn)
        assert r.status == 200 and r.json() is True, (node.id, r)
        r = node.post("/collections/%s/compact" % flat)
        assert r.status == 200 and r.json() is False, (node.id, r)
        r = node.post("/collections/%s/params" % hn, {"ef_search": 40})
        assert r.status == 200 and r.json() is True, (node.id, r)
        r = node.post("/collections/%s/params" % flat, {"ef_search": 40})
        assert r.status == 200 and r.json() is False, (node.id, r)
    for node in nodes:
        wait_until(lambda: node.get("/collections/" + hn).json()["hnsw"]["ef_search"] == 40,
                   30, "ef_search 40 on " + node.id)
    # snapshot keeps its object answer.
    r = nodes[1].post("/collections/%s/snapshot" % hn, {})
    assert r.status == 200 and isinstance(r.json()["snapshots"], list), r
    for name in (hn, flat):
        assert nodes[0].delete("/collections/" + name).status == 200


def _recall(found, truth):
    hit = sum(len(set(f) & set(t)) for f, t in zip(found, truth))
    return hit / float(sum(len(t) for t in truth))


def test_recall_at_least_standalone(standalone, nodes, cluster):
    long_run = os.environ.get("AIDB_CLUSTER_LONG") == "1"
    count, dim, queries, ef = (100000, 32, 300, 24) if long_run else (20000, 32, 200, 16)
    name = unique("recall")
    body = {"name": name, "dim": dim, "metric": "euclidean", "index": "hnsw",
            "hnsw": {"m": 8, "ef_construction": 64, "ef_search": ef}}
    create_both(standalone, nodes, body, shards=6, replication=2)
    rng = random.Random(12)
    for start in range(0, count, 1000):
        pts = [{"id": str(uuid.UUID(int=start + i + 1)),
                "vector": [rng.gauss(0, 1) for _ in range(dim)]} for i in range(1000)]
        assert standalone.post("/collections/%s/points:batch" % name, {"points": pts},
                               timeout=300).status == 200
        r = nodes[(start // 1000) % 3].post("/collections/%s/points:batch" % name,
                                            {"points": pts}, timeout=300)
        assert r.status == 200, r
    wait_caught_up(cluster, name, 6, timeout=600)
    qs = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(queries)]
    s = "/collections/%s/search:batch" % name
    truth = standalone.post(s, {"searches": qs, "top_k": 10, "exact": True}, timeout=300).json()
    truth = [[h["id"] for h in q] for q in truth["results"]]
    single = standalone.post(s, {"searches": qs, "top_k": 10, "ef_search": ef}).json()["results"]
    single = _recall([[h["id"] for h in q] for q in single], truth)
    for node in nodes:
        got = node.post(s, {"searches": qs, "top_k": 10, "ef_search": ef,
                            "consistency": "strong"}, timeout=300)
        assert got.status == 200, got
        rec = _recall([[h["id"] for h in q] for q in got.json()["results"]], truth)
        print("recall@10 ef=%d n=%d: standalone %.4f, cluster via %s %.4f"
              % (ef, count, single, node.id, rec))
        assert rec >= single, (node.id, rec, single)
    assert nodes[0].delete("/collections/" + name).status == 200
    assert standalone.delete("/collections/" + name).status == 200
