"""Consistency levels (session read-your-writes with write tokens, strong),
write tokens, and the bad input that cluster mode adds: clear 400s."""
import json
import random
import uuid

import pytest

from conftest import (CONSISTENCY_TIMEOUT_MS, assert_error, parse_token, unique, wait_until,
                      write_token)


@pytest.fixture(scope="module")
def coll(nodes):
    name = unique("cons")
    r = nodes[0].post("/collections", {"name": name, "dim": 3, "metric": "euclidean",
                                       "shards": 4, "replication": 2})
    assert r.status == 200 and r.json() == {"ok": True}, r
    for node in nodes:
        wait_until(lambda: node.get("/collections/" + name).status == 200, 30,
                   "%s known to %s" % (name, node.id))
    return name


def test_create_rejects_bad_shards_and_replication(nodes):
    for node in nodes:
        for extra in ({"shards": 0}, {"shards": -1}, {"shards": "2"}, {"shards": 1.5},
                      {"replication": 0}, {"replication": -2}, {"replication": "x"},
                      # groups 0 and 1 have live nodes: at most 2 replicas
                      {"replication": 3}, {"shards": 2, "replication": 7}):
            name = unique("bad")
            r = node.post("/collections", dict({"name": name, "dim": 3}, **extra))
            msg = assert_error(r, 400)
            key = "shards" if "shards" in extra and "replication" not in extra else "replica"
            assert key in msg.lower(), (extra, msg)
            assert node.get("/collections/" + name).status == 404, (extra, name)
    # A valid name whose topic would be the metadata topic (aidb.__meta):
    # a clear 400 at once, not a 409 for a collection that does not exist.
    msg = assert_error(nodes[2].post("/collections", {"name": "__meta", "dim": 3}), 400)
    assert "reserved" in msg and "aidb.__meta" in msg, msg
    assert nodes[0].get("/collections/__meta").status == 404
    # The largest replication the live groups allow is accepted.
    name = unique("r2")
    assert nodes[1].post("/collections", {"name": name, "dim": 3, "replication": 2}).status == 200
    assert nodes[1].delete("/collections/" + name).status == 200


def test_created_through_one_node_used_through_another_at_once(nodes):
    """A create is answered once the node that took it knows the collection;
    the other nodes' metadata consumers may be a moment behind, and Kafka
    assigns the new partitions after a rebalance, yet a client that uses
    another node right away must find it there (no 404) and read it (no
    503 for a shard no replica holds yet)."""
    for i in range(12):
        name = unique("fresh%d" % i)
        r = nodes[i % 3].post("/collections", {"name": name, "dim": 2, "shards": 2})
        assert r.status == 200, r
        other, third = nodes[(i + 1) % 3], nodes[(i + 2) % 3]
        w = other.post("/collections/%s/points" % name, {"vector": [1, 2]})
        assert w.status == 200, (i, other.id, w)
        info = third.get("/collections/" + name)
        assert info.status == 200, (i, third.id, info)
        listed = [c["name"] for c in other.get("/collections").json()]
        assert name in listed, (i, other.id, listed)
        assert third.delete("/collections/" + name).status == 200


def test_write_answers_carry_tokens(nodes, coll):
    pid = str(uuid.uuid4())
    r = nodes[0].post("/collections/%s/points" % coll, {"id": pid, "vector": [1, 2, 3]})
    assert r.status == 200, r
    # A bare id (the standalone shape): the token travels in the header only.
    tok = write_token(r)
    assert r.json() == pid, r
    name, offs = parse_token(tok)
    assert name == coll and len(offs) == 1
    (p, off), = offs.items()
    assert 0 <= p < 4 and off >= 0
    # A batch touching several shards: one offset per partition written.
    pts = [{"id": str(uuid.uuid4()), "vector": [i, 0, 0]} for i in range(40)]
    r = nodes[1].post("/collections/%s/points:batch" % coll, {"points": pts})
    assert r.status == 200, r
    name, offs = parse_token(write_token(r))
    assert name == coll and 2 <= len(offs) <= 4 and all(0 <= p < 4 for p in offs)
    assert r.json() == [p["id"] for p in pts], r
    r = nodes[2].delete("/collections/%s/points/%s" % (coll, pid))
    assert r.status == 200 and r.json() is True, r
    name, offs = parse_token(write_token(r))
    assert name == coll and list(offs) == [p]
    # Deleting it again writes nothing: false, and no token.
    r = nodes[0].delete("/collections/%s/points/%s" % (coll, pid))
    assert r.status == 200 and r.json() is False, r
    assert "aidb-write-token" not in r.headers, r.headers
    # An empty batch writes nothing either.
    r = nodes[1].post("/collections/%s/points:batch" % coll, {"points": []})
    assert r.status == 200 and r.json() == [], r
    assert "aidb-write-token" not in r.headers, r.headers


def test_session_reads_your_writes_on_every_node(nodes, coll):
    rng = random.Random(3)
    for i in range(12):
        writer = nodes[i % 3]
        pid = str(uuid.uuid4())
        vec = [rng.uniform(-5, 5) for _ in range(3)]
        r = writer.post("/collections/%s/points" % coll, {"id": pid, "vector": vec,
                                                          "payload": {"i": i}})
        assert r.status == 200, r
        tok = write_token(r)
        for reader in nodes:
            # Header form, GET point.
            g = reader.get("/collections/%s/points/%s?consistency=session" % (coll, pid),
                           headers={"AIDB-Write-Token": tok})
            assert g.status == 200, (writer.id, reader.id, g)
            assert g.json()["payload"] == {"i": i}
            # Body form (string and array), search: the point is its own nearest.
            for t in (tok, [tok]):
                s = reader.post("/collections/%s/search" % coll,
                                {"vector": vec, "top_k": 1, "consistency": "session",
                                 "write_token": t})
                assert s.status == 200, s
                assert s.json()["results"][0]["id"] == pid, (reader.id, s)
    # A delete is read too.
    r = nodes[0].delete("/collections/%s/points/%s" % (coll, pid))
    tok = write_token(r)
    for reader in nodes:
        g = reader.get("/collections/%s/points/%s?consistency=session" % (coll, pid),
                       headers={"AIDB-Write-Token": tok})
        assert_error(g, 404)


def test_session_batch_token_and_batch_search(nodes, coll):
    pts = [{"id": str(uuid.uuid4()), "vector": [100 + i, 50, -50]} for i in range(25)]
    r = nodes[2].post("/collections/%s/points:batch" % coll, {"points": pts})
    tok = write_token(r)
    for reader in nodes:
        s = reader.post("/collections/%s/search:batch" % coll,
                        {"searches": [p["vector"] for p in pts], "top_k": 1,
                         "consistency": "session", "write_token": tok})
        assert s.status == 200, s
        assert [q[0]["id"] for q in s.json()["results"]] == [p["id"] for p in pts]


def test_strong_reads_see_every_acknowledged_write(nodes, coll):
    before = nodes[0].get("/collections/%s?consistency=strong" % coll).json()["len"]
    ids = []
    for i in range(10):
        r = nodes[i % 3].post("/collections/%s/points" % coll,
                              {"vector": [-100 - i, 7, 7], "payload": {"s": i}})
        assert r.status == 200, r
        ids.append(r.json())
    for reader in nodes:
        info = reader.get("/collections/%s?consistency=strong" % coll)
        assert info.status == 200 and info.json()["len"] == before + 10, (reader.id, info)
        for i, pid in enumerate(ids):
            g = reader.get("/collections/%s/points/%s?consistency=strong" % (coll, pid))
            assert g.status == 200 and g.json()["payload"] == {"s": i}, (reader.id, g)
        s = reader.post("/collections/%s/search" % coll,
                        {"vector": [-100, 7, 7], "top_k": 1, "consistency": "strong"})
        assert s.status == 200 and s.json()["results"][0]["id"] == ids[0], s


def test_eventual_is_the_default_and_explicit(nodes, coll):
    for node in nodes:
        for body in ({"vector": [0, 0, 0]}, {"vector": [0, 0, 0], "consistency": "eventual"}):
            assert node.post("/collections/%s/search" % coll, body).status == 200
        assert node.get("/collections/%s?consistency=eventual" % coll).status == 200


def test_bad_consistency_and_tokens(nodes, coll):
    other = unique("other")
    assert nodes[0].post("/collections", {"name": other, "dim": 3}).status == 200
    wait_until(lambda: all(n.get("/collections/" + other).status == 200 for n in nodes), 30,
               other + " everywhere")
    r = nodes[0].post("/collections/%s/points" % other, {"vector": [1, 1, 1]})
    assert r.status == 200, r
    foreign = write_token(r)
    pid = str(uuid.uuid4())
    s = "/collections/%s/search" % coll
    g = "/collections/%s/points/%s" % (coll, pid)
    for node in nodes:
        # Unknown level: body, query, batch search, info.
        for level in ("linearizable", "STRONGEST", "", 3):
            assert_error(node.post(s, {"vector": [0, 0, 0], "consistency": level}), 400)
        assert_error(node.get(g + "?consistency=bogus"), 400)
        assert_error(node.get("/collections/%s?consistency=bogus" % coll), 400)
        assert_error(node.post(s + ":batch", {"searches": [[0, 0, 0]],
                                              "consistency": "bogus"}), 400)
        # A token of another collection: 400, however it is given.
        msg = assert_error(node.post(s, {"vector": [0, 0, 0], "consistency": "session",
                                         "write_token": foreign}), 400)
        assert "token" in msg.lower(), msg
        assert_error(node.post(s, {"vector": [0, 0, 0], "consistency": "session",
                                   "write_token": [foreign]}), 400)
        assert_error(node.get(g + "?consistency=session",
                              headers={"AIDB-Write-Token": foreign}), 400)
        # Malformed tokens.
        for bad in ("garbage", coll + ":", coll + ":x=1", coll + ":0=-1", coll + ":99=1", 5,
                    {"a": 1}):
            assert_error(node.post(s, {"vector": [0, 0, 0], "consistency": "session",
                                       "write_token": bad}), 400)
    assert nodes[0].delete("/collections/" + other).status == 200


def test_session_wait_is_bounded(nodes, coll):
    """A token no shard will reach within the timeout: 504 with an error."""
    ahead = "%s:0=%d" % (coll, 10 ** 12)
    r = nodes[1].post("/collections/%s/search" % coll,
                      {"vector": [0, 0, 0], "consistency": "session", "write_token": ahead},
                      timeout=CONSISTENCY_TIMEOUT_MS / 1000 + 30)
    assert_error(r, 504)
    # The node keeps answering.
    assert nodes[1].post("/collections/%s/search" % coll, {"vector": [0, 0, 0]}).status == 200
