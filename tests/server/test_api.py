"""Every REST route of aidbd against the real daemon, with good and bad input."""
import json
import math
import os
import pathlib
import uuid

import pytest


def make(daemon, name="docs", dim=4, **extra):
    """Creates a collection (FLAT unless told otherwise; the daemon's default
    is HNSW) and answers its info."""
    body = {"name": name, "dim": dim, "index": "flat", **extra}
    r = daemon.post("/collections", body)
    assert r.status == 200 and r.json() == {"ok": True}, r
    r = daemon.get(f"/collections/{name}")
    assert r.status == 200, r
    return r.json()


def upsert(daemon, name, vector, id=None, payload=None):
    body = {"vector": vector}
    if id is not None:
        body["id"] = id
    if payload is not None:
        body["payload"] = payload
    r = daemon.post(f"/collections/{name}/points", body)
    assert r.status == 200, r
    pid = r.json()
    assert isinstance(pid, str), r
    return pid


def assert_error(r, status):
    assert r.status == status, r
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


def test_health_is_ok(daemon):
    r = daemon.get("/health")
    assert r.status == 200 and r.body == "ok"
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["aidb-version"].count(".") == 2


def test_create_collection_accepts_original_bodies(daemon):
    info = make(daemon, "a", 3, metric="Cosine")
    assert info["metric"] == "cosine" and info["index"] == "flat" and info["dim"] == 3
    assert info["hnsw"] is None and info["ivf"] is None
    assert make(daemon, "b", 3, distance="Euclid")["metric"] == "euclidean"
    assert make(daemon, "c", 3, metric="l2")["metric"] == "euclidean"
    assert make(daemon, "d", 3, metric="DOT")["metric"] == "dot"
    h = make(daemon, "e", 3, metric="cosine", index="hnsw",
             hnsw={"m": 8, "ef_construction": 64, "ef_search": 32})
    assert h["index"] == "hnsw"
    assert h["hnsw"] == {"m": 8, "ef_construction": 64, "ef_search": 32}
    for key in ("name", "dim", "metric", "index", "hnsw", "len", "wal_size_bytes",
                "wal_last_truncate", "wal_bytes_since_truncate", "wal_last_lsn"):
        assert key in h, key
    assert h["len"] == 0 and h["wal_last_truncate"] is None


def test_create_collection_accepts_every_metric_alias(daemon):
    # The aliases aidb.h lists for aidb_metric_from_string, which the daemon
    # relies on alone (any case); the answer names the canonical metric.
    aliases = {"euclidean": ["euclid", "L2", "l2sq", "Euclidean_Distance"],
               "dot": ["ip", "Inner_Product", "dot_product"]}
    for canonical, names in aliases.items():
        for i, name in enumerate(names):
            info = make(daemon, f"{canonical}{i}", 2, metric=name)
            assert info["metric"] == canonical, name
    r = daemon.post("/collections", {"name": "x", "dim": 2, "metric": "L1"})
    assert_error(r, 400)
    assert "unknown metric 'l1'" in r.json()["error"]


def test_create_collection_rejects_bad_input(daemon):
    make(daemon, "docs", 3)
    assert_error(daemon.post("/collections", {"name": "docs", "dim": 4, "index": "flat"}), 409)
    assert_error(daemon.post("/collections", {"name": "docs", "dim": 3}), 409)  # HNSW
    assert_error(daemon.post("/collections", {"name": "../etc", "dim": 3}), 400)
    assert_error(daemon.post("/collections", {"name": "a/b", "dim": 3}), 400)
    assert_error(daemon.post("/collections", {"name": "x" * 65, "dim": 3}), 400)
    assert_error(daemon.post("/collections", {"name": "ok"}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": "3"}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": -3}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": 0}), 400)
    assert_error(daemon.post("/collections", {"name": 5, "dim": 3}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": 3, "metric": "manhattan"}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": 3, "index": "lsh"}), 400)
    assert_error(daemon.post("/collections", [1, 2]), 400)
    assert_error(daemon.request("POST", "/collections", raw=b"{not json"), 400)
    assert_error(daemon.request("POST", "/collections", raw=b""), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": 3, "index": 5}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": 3, "hnsw": []}), 400)
    assert_error(daemon.post("/collections", {"name": "ok", "dim": 3, "wal_dir": 5}), 400)
    # The data dir's LOCK file is no collection folder: refused, not replaced
    # by one (the directory could not be opened again).
    msg = assert_error(daemon.post("/collections", {"name": "LOCK", "dim": 3}), 400)
    assert "not a collection's folder" in msg, msg
    assert os.path.isfile(os.path.join(daemon.data_dir, "LOCK"))
    # A NUL inside a string must not cut it short ("dot\0x" is not "dot").
    for field, value in (("metric", "dot"), ("index", "flat"), ("quantization", "none")):
        msg = assert_error(daemon.post("/collections", {"name": "ok", "dim": 3,
                                                        field: value + "\u0000x"}), 400)
        assert field in msg and "NUL" in msg, msg
    names = [c["name"] for c in daemon.get("/collections").json()]
    assert names == ["docs"]


def test_collection_list_and_info(daemon):
    make(daemon, "beta", 2)
    make(daemon, "alpha", 2)
    upsert(daemon, "alpha", [1, 0])
    cols = daemon.get("/collections").json()
    assert [c["name"] for c in cols] == ["alpha", "beta"]
    assert cols[0] == daemon.get("/collections/alpha").json()
    alpha = daemon.get("/collections/alpha").json()
    assert alpha["len"] == 1 and alpha["wal_size_bytes"] > 0
    assert alpha["wal_bytes_since_truncate"] > 0 and alpha["wal_last_lsn"] == 1
    assert_error(daemon.get("/collections/missing"), 404)


def test_upsert_get_delete_point(daemon):
    make(daemon, "docs", 3, metric="euclidean")
    pid = upsert(daemon, "docs", [1, 2, 3], payload={"title": "hello", "n": 1})
    assert str(uuid.UUID(pid)) == pid
    r = daemon.get(f"/collections/docs/points/{pid}")
    assert r.status == 200
    p = r.json()
    assert p == {"id": pid, "vector": [1.0, 2.0, 3.0], "payload": {"title": "hello", "n": 1}}
    # Ids in any accepted form come back canonical; upsert replaces.
    fixed = "8E422589-992F-4C2E-8000-000000000001"
    assert upsert(daemon, "docs", [0, 0, 1], id=fixed) == fixed.lower()
    assert upsert(daemon, "docs", [0.5, 0, 1], id=fixed.lower()) == fixed.lower()
    got = daemon.get(f"/collections/docs/points/{{{fixed}}}").json()
    assert got["vector"] == [0.5, 0.0, 1.0] and got["payload"] is None
    assert daemon.get("/collections/docs").json()["len"] == 2
    r = daemon.delete(f"/collections/docs/points/{pid}")
    assert r.status == 200 and r.json() is True
    assert_error(daemon.get(f"/collections/docs/points/{pid}"), 404)
    r = daemon.delete(f"/collections/docs/points/{pid}")  # no such point (any more)
    assert r.status == 200 and r.json() is False
    assert daemon.get("/collections/docs").json()["len"] == 1


def test_upsert_rejects_bad_input(daemon):
    make(daemon, "docs", 3)
    base = "/collections/docs/points"
    assert_error(daemon.post(base, {"vector": [1, 2]}), 400)  # dimension mismatch
    assert_error(daemon.post(base, {"vector": [1, 2, 3, 4]}), 400)
    assert_error(daemon.post(base, {"vector": [1, "2", 3]}), 400)
    assert_error(daemon.post(base, {"vector": "1,2,3"}), 400)
    assert_error(daemon.post(base, {"vector": []}), 400)
    assert_error(daemon.post(base, {"vector": [1, 2, 1e39]}), 400)  # not a float32
    assert_error(daemon.request("POST", base, raw=b'{"vector":[1,2,NaN]}'), 400)
    assert_error(daemon.post(base, {}), 400)
    assert_error(daemon.post(base, {"vector": [1, 2, 3], "id": "not-a-uuid"}), 400)
    assert_error(daemon.post(base, {"vector": [1, 2, 3], "id": 7}), 400)
    # The id is checked whole: a valid UUID then a NUL and more is malformed.
    good = "aaaaaaaa-0000-0000-0000-000000000001"
    assert "NUL" in assert_error(daemon.post(base, {"vector": [1, 2, 3],
                                                     "id": good + "\u0000junk"}), 400)
    assert_error(daemon.post(base + ":batch", {"points": [{"vector": [1, 2, 3], "id": good},
                                                          {"vector": [1, 2, 3],
                                                           "id": good + "\u0000"}]}), 400)
    # The library's message names the id once.
    msg = assert_error(daemon.post(base, {"vector": [1, 2, 3], "id": "not-a-uuid"}), 400)
    assert msg.count("not-a-uuid") == 1, msg
    assert_error(daemon.post(base, {"vector": [1, 2, 3], "payload": [1]}), 400)
    assert_error(daemon.post(base, {"vector": [1, 2, 3], "payload": "x"}), 400)
    assert_error(daemon.post("/collections/nope/points", {"vector": [1, 2, 3]}), 404)
    assert_error(daemon.get("/collections/docs/points/not-a-uuid"), 400)
    assert_error(daemon.delete("/collections/docs/points/1234"), 400)
    assert daemon.get("/collections/docs").json()["len"] == 0


def test_batch_upsert_is_atomic(daemon):
    make(daemon, "docs", 2)
    pts = [{"vector": [1, 0], "payload": {"i": 0}},
           {"id": str(uuid.uuid4()), "vector": [0, 1]},
           {"vector": [1, 1], "payload": None}]
    r = daemon.post("/collections/docs/points:batch", {"points": pts})
    assert r.status == 200, r
    ids = r.json()
    assert len(ids) == 3 and ids[1] == pts[1]["id"]
    assert daemon.get("/collections/docs").json()["len"] == 3
    bad = [{"vector": [1, 0]}, {"vector": [1, 0, 0]}]
    assert_error(daemon.post("/collections/docs/points:batch", {"points": bad}), 400)
    bad = [{"vector": [1, 0]}, {"vector": [1, 0], "id": "zzz"}]
    assert_error(daemon.post("/collections/docs/points:batch", {"points": bad}), 400)
    bad = [{"vector": [1, 0, 5]}, {"vector": [1, 0, 6]}]  # both of the wrong dimension
    assert_error(daemon.post("/collections/docs/points:batch", {"points": bad}), 400)
    assert_error(daemon.post("/collections/docs/points:batch", {"points": {}}), 400)
    assert daemon.get("/collections/docs").json()["len"] == 3
    r = daemon.post("/collections/docs/points:batch", {"points": []})
    assert r.status == 200 and r.json() == []


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_search(daemon, index):
    make(daemon, "docs", 2, metric="euclidean", index=index)
    ids = {}
    for i in range(20):
        ids[i] = upsert(daemon, "docs", [float(i), 0.0],
                        payload={"i": i, "even": i % 2 == 0, "tag": {"k": "t%d" % (i % 3)}})
    r = daemon.post("/collections/docs/search", {"vector": [3.2, 0], "top_k": 3})
    assert r.status == 200, r
    res = r.json()["results"]
    assert [h["id"] for h in res] == [ids[3], ids[4], ids[2]]
    assert res[0]["payload"]["i"] == 3
    assert res[0]["score"] <= res[1]["score"] <= res[2]["score"]
    assert abs(res[0]["score"] - 0.2) < 1e-5
    # Synonyms of top_k, payload off, short and full filters.
    for key in ("k", "limit"):
        assert len(daemon.post("/collections/docs/search",
                               {"vector": [0, 0], key: 5}).json()["results"]) == 5
    r = daemon.post("/collections/docs/search",
                    {"vector": [0, 0], "top_k": 2, "with_payload": False}).json()["results"]
    assert all(h["payload"] is None for h in r)
    r = daemon.post("/collections/docs/search",
                    {"vector": [0, 0], "top_k": 4, "filter": {"even": False}}).json()["results"]
    assert [h["payload"]["i"] for h in r] == [1, 3, 5, 7]
    full = {"must": [{"key": "i", "range": {"gte": 10}}],
            "must_not": [{"key": "tag.k", "match": {"value": "t0"}}]}
    # ef_search is taken by every kind; a flat collection ignores it
    # (docs/http-api.md, Search).
    r = daemon.post("/collections/docs/search",
                    {"vector": [0, 0], "top_k": 3, "filter": full, "ef_search": 64}).json()
    assert [h["payload"]["i"] for h in r["results"]] == [10, 11, 13]
    # A very selective filter still finds its k.
    r = daemon.post("/collections/docs/search",
                    {"vector": [0, 0], "top_k": 2, "filter": {"i": 17}}).json()["results"]
    assert [h["id"] for h in r] == [ids[17]]
    # Bad searches.
    assert_error(daemon.post("/collections/docs/search", {"vector": [0, 0, 0]}), 400)
    assert_error(daemon.post("/collections/docs/search", {"top_k": 3}), 400)
    assert_error(daemon.post("/collections/docs/search", {"vector": [0, 0], "top_k": -1}), 400)
    assert_error(daemon.post("/collections/docs/search", {"vector": [0, 0], "top_k": "3"}), 400)
    assert_error(daemon.post("/collections/docs/search", {"vector": [0, 0], "filter": "x"}), 400)
    assert_error(daemon.post("/collections/docs/search",
                             {"vector": [0, 0], "filter": {"must": 5}}), 400)
    assert_error(daemon.post("/collections/docs/search",
                             {"vector": [0, 0], "with_payload": "yes"}), 400)
    assert_error(daemon.post("/collections/nope/search", {"vector": [0, 0]}), 404)


def test_search_batch(daemon):
    make(daemon, "docs", 2, metric="euclidean")
    ids = [upsert(daemon, "docs", [float(i), 0.0], payload={"i": i}) for i in range(10)]
    r = daemon.post("/collections/docs/search:batch",
                    {"searches": [{"vector": [0, 0], "top_k": 1}, {"vector": [9, 0], "top_k": 1}]})
    assert r.status == 200, r
    res = r.json()["results"]
    assert [[h["id"] for h in q] for q in res] == [[ids[0]], [ids[9]]]
    # "queries", per-query options that differ, plain arrays with top-level defaults.
    r = daemon.post("/collections/docs/search:batch",
                    {"queries": [{"vector": [0, 0], "top_k": 2, "filter": {"i": 5}},
                                 [4.1, 0]], "top_k": 3}).json()["results"]
    assert [h["id"] for h in r[0]] == [ids[5]]
    assert [h["id"] for h in r[1]] == [ids[4], ids[5], ids[3]]
    many = daemon.post("/collections/docs/search:batch",
                       {"searches": [[float(i), 0] for i in range(10)], "top_k": 1}).json()
    assert [q[0]["id"] for q in many["results"]] == ids
    assert daemon.post("/collections/docs/search:batch", {"searches": []}).json() == \
        {"results": []}
    assert_error(daemon.post("/collections/docs/search:batch", {"searches": [[0, 0, 0]]}), 400)
    assert_error(daemon.post("/collections/docs/search:batch", {"searches": 3}), 400)
    assert_error(daemon.post("/collections/docs/search:batch", {"searches": ["x"]}), 400)


def test_drop_collection(daemon):
    make(daemon, "docs", 2)
    upsert(daemon, "docs", [1, 1])
    r = daemon.delete("/collections/docs")
    assert r.status == 200 and r.json()["deleted"] is True
    assert_error(daemon.get("/collections/docs"), 404)
    assert_error(daemon.post("/collections/docs/search", {"vector": [1, 1]}), 404)
    assert_error(daemon.delete("/collections/docs"), 404)
    assert make(daemon, "docs", 3)["len"] == 0
    upsert(daemon, "docs", [1, 1, 1])
    assert daemon.get("/collections/docs").json()["len"] == 1


def test_params_and_compact(daemon):
    make(daemon, "h", 2, index="hnsw")
    make(daemon, "f", 2)
    r = daemon.post("/collections/h/params", {"ef_search": 77})
    assert r.status == 200 and r.json() is True, r
    assert daemon.get("/collections/h").json()["hnsw"]["ef_search"] == 77
    r = daemon.post("/collections/h/params", {"hnsw": {"ef_search": 78}})
    assert r.status == 200 and r.json() is True, r
    assert daemon.get("/collections/h").json()["hnsw"]["ef_search"] == 78
    # An exact index has no parameters: false, and nothing changes.
    r = daemon.post("/collections/f/params", {"ef_search": 77})
    assert r.status == 200 and r.json() is False, r
    assert daemon.get("/collections/f").json()["hnsw"] is None
    assert_error(daemon.post("/collections/h/params", {"ef_search": "x"}), 400)
    assert_error(daemon.post("/collections/f/params", {"ef_search": -1}), 400)
    assert_error(daemon.post("/collections/h/params", [1]), 400)
    assert_error(daemon.post("/collections/nope/params", {"ef_search": 7}), 404)
    # IVF: ef_search is the default number of lists probed.
    info = make(daemon, "v", 2, index="ivf")
    assert info["hnsw"] is None and info["ivf"] == {"nlist": 0, "nprobe": 0, "rerank": 0}
    assert daemon.get("/collections/h").json()["ivf"] is None
    upsert(daemon, "v", [1, 2])
    r = daemon.post("/collections/v/params", {"ef_search": 5})
    assert r.status == 200 and r.json() is True, r
    assert daemon.get("/collections/v").json()["ivf"] == {"nlist": 0, "nprobe": 5, "rerank": 0}
    r = daemon.post("/collections/v/search", {"vector": [1, 2], "top_k": 1})
    assert r.status == 200 and len(r.json()) == 1, r
    assert_error(daemon.post("/collections/v/params", {"ef_search": 70000}), 400)
    # Without ef_search: nothing to change (the original answered true too).
    r = daemon.post("/collections/h/params", {})
    assert r.status == 200 and r.json() is True, r
    assert daemon.get("/collections/h").json()["hnsw"]["ef_search"] == 78
    for name, compacted in (("h", True), ("f", False)):
        pid = upsert(daemon, name, [1, 2])
        upsert(daemon, name, [2, 2])
        assert daemon.delete(f"/collections/{name}/points/{pid}").json() is True
        r = daemon.post(f"/collections/{name}/compact")
        assert r.status == 200 and r.json() is compacted, r
        assert daemon.get(f"/collections/{name}").json()["len"] == 1
    assert_error(daemon.post("/collections/nope/compact"), 404)


def test_create_takes_ivf_parameters(daemon):
    """`ivf` in a create body sets the configured values info reports; the same
    create again is a no-op, another nlist or rerank a 409 naming it (nprobe is
    not compared: params changes it, as hnsw.ef_search)."""
    body = {"name": "iv", "dim": 2, "index": "ivf",
            "ivf": {"nlist": 8, "nprobe": 3, "rerank": 40}}
    r = daemon.post("/collections", body)
    assert r.status == 200 and r.json() == {"ok": True}, r
    info = daemon.get("/collections/iv").json()
    assert info["ivf"] == {"nlist": 8, "nprobe": 3, "rerank": 40}, info
    for i in range(20):
        upsert(daemon, "iv", [i, 1])
    r = daemon.post("/collections/iv/search", {"vector": [3, 1], "top_k": 2})
    assert r.status == 200 and len(r.json()["results"]) == 2, r
    assert daemon.post("/collections", body).json() == {"ok": True}
    assert daemon.post("/collections", dict(body, ivf={"nlist": 8, "nprobe": 9,
                                                       "rerank": 40})).status == 200
    assert "ivf.nlist 8 (requested 9)" in assert_error(
        daemon.post("/collections", dict(body, ivf={"nlist": 9, "rerank": 40})), 409)
    assert "ivf.rerank" in assert_error(
        daemon.post("/collections", dict(body, ivf={"nlist": 8, "rerank": 41})), 409)
    for bad in ({"nlist": -1}, {"nprobe": "x"}, {"rerank": 70000}, [1]):
        assert_error(daemon.post("/collections", {"name": "iv2", "dim": 2, "index": "ivf",
                                                  "ivf": bad}), 400)
    assert daemon.get("/collections/iv2").status == 404


def test_search_takes_ivf_rerank(daemon):
    """`ivf_rerank` sets an IVF search's exact re-rank for that query (single
    and batch): with more than 2048 points (trained) the configured 10
    candidates miss exact hits; all lists with every point re-ranked give
    the exact hits; a bad value is a 400."""
    n, dim = 3000, 16
    body = {"name": "ivr", "dim": dim, "metric": "euclidean", "index": "ivf",
            "ivf": {"nlist": 8, "nprobe": 2, "rerank": 10}}
    assert daemon.post("/collections", body).status == 200
    def vec(i):
        return [math.sin(i * dim + j + 1) + i % 7 for j in range(dim)]
    for start in range(0, n, 1000):
        points = [{"vector": vec(i)} for i in range(start, start + 1000)]
        assert daemon.post("/collections/ivr/points:batch", {"points": points}).status == 200
    queries = [vec(n + q) for q in range(20)]
    def ids(options):
        r = daemon.post("/collections/ivr/search:batch",
                        dict({"searches": queries, "top_k": 10, "with_payload": False},
                             **options))
        assert r.status == 200, r
        return [[h["id"] for h in hits] for hits in r.json()["results"]]
    exact = ids({"exact": True})
    assert ids({}) != exact  # an IVF search: 10 candidates re-ranked
    assert ids({"ef_search": 8, "ivf_rerank": n}) == exact
    one = daemon.post("/collections/ivr/search", {"vector": queries[0], "top_k": 10,
                                                  "ef_search": 8, "ivf_rerank": n})
    assert [h["id"] for h in one.json()["results"]] == exact[0]
    for bad in (-1, "x", 1.5, 2**33):
        assert "ivf_rerank" in assert_error(daemon.post(
            "/collections/ivr/search", {"vector": queries[0], "ivf_rerank": bad}), 400)


def test_routes_and_methods(daemon):
    assert_error(daemon.get("/nope"), 404)
    assert_error(daemon.get("/collections/docs/points/a/b"), 404)
    r = daemon.request("PUT", "/collections")
    assert_error(r, 405)
    assert "POST" in r.headers["allow"]
    assert_error(daemon.get("/collections/docs/search"), 405)
    # Percent-encoded traversal is decoded, then refused as a name.
    assert_error(daemon.get("/collections/..%2F..%2Fetc"), 404)  # becomes extra segments
    assert_error(daemon.get("/collections/%2e%2e"), 400)
    assert_error(daemon.get("/collections/a%00b"), 400)
    assert_error(daemon.get("/collections/%zz"), 400)


def test_checkpoint_and_restore_workflow(daemon):
    """docs/operations.md over HTTP: checkpoint truncates the WAL; restore = snapshot + newer WAL."""
    make(daemon, "docs", 2, metric="euclidean")
    before = [upsert(daemon, "docs", [float(i), 1.0], payload={"phase": "before"})
              for i in range(5)]
    info = daemon.get("/collections/docs").json()
    assert info["wal_size_bytes"] > 0 and info["wal_last_truncate"] is None
    r = daemon.post("/collections/docs/snapshot")
    assert r.status == 200, r
    snap = r.json()
    assert snap["lsn"] == 5 and snap["count"] == 5 and snap["size_bytes"] > 0
    assert snap["wal_size_bytes"] == 0 and snap["wal_last_truncate"] is not None
    info = daemon.get("/collections/docs").json()
    assert info["wal_size_bytes"] == 0
    assert info["wal_last_truncate"].endswith("Z") and "T" in info["wal_last_truncate"]
    assert daemon.wait_log("target=aidb::storage event=wal_truncated")
    after = [upsert(daemon, "docs", [float(i), 2.0], payload={"phase": "after"})
             for i in range(3)]
    assert daemon.get("/collections/docs").json()["wal_size_bytes"] > 0
    snaps = daemon.get("/collections/docs/snapshots").json()["snapshots"]
    assert [s["file"] for s in snaps] == [snap["file"]]
    assert snaps[0]["lsn"] == 5 and snaps[0]["created"].endswith("Z")
    r = daemon.post("/collections/docs/restore", {"snapshot": snap["file"]})
    assert r.status == 200, r
    restored = r.json()
    assert restored["len"] == 8 and restored["wal_size_bytes"] == 0
    for pid in before + after:
        assert daemon.get(f"/collections/docs/points/{pid}").status == 200
    # The restore sealed a new baseline snapshot; restoring it by absolute path
    # (inside the data dir) gives the same 8 points.
    snaps = daemon.get("/collections/docs/snapshots").json()["snapshots"]
    assert len(snaps) == 2 and snaps[-1]["lsn"] == 8 and snaps[-1]["count"] == 8
    r = daemon.post("/collections/docs/restore", {"snapshot": snaps[-1]["path"]})
    assert r.status == 200 and r.json()["len"] == 8
    # The old checkpoint alone: the WAL after it was sealed away by the restore.
    r = daemon.post("/collections/docs/restore", {"snapshot": snap["path"]})
    assert r.status == 200 and r.json()["len"] == 5
    assert_error(daemon.post("/collections/docs/restore", {"snapshot": "nope.aidbsnap"}), 404)
    assert_error(daemon.post("/collections/docs/restore", {"snapshot": "../../../etc/passwd"}),
                 400)
    assert_error(daemon.post("/collections/docs/restore", {"snapshot": "/etc/passwd"}), 400)
    assert_error(daemon.post("/collections/docs/restore", {"snapshot": ".."}), 400)
    assert_error(daemon.post("/collections/docs/restore", {}), 400)
    assert_error(daemon.post("/collections/nope/restore", {"snapshot": snap["file"]}), 404)
    assert_error(daemon.post("/collections/nope/snapshot"), 404)
    assert_error(daemon.get("/collections/nope/snapshots"), 404)


def test_snapshot_paths_are_confined_to_the_data_dir(daemon, tmp_path):
    make(daemon, "docs", 2)
    upsert(daemon, "docs", [1, 2])
    r = daemon.post("/collections/docs/snapshot", {"path": "backups/one.snap"})
    assert r.status == 200, r
    target = os.path.join(daemon.data_dir, "backups", "one.snap")
    assert os.path.isfile(target) and r.json()["copied_to"] == os.path.realpath(target)
    upsert(daemon, "docs", [3, 4])
    r = daemon.post("/collections/docs/restore", {"snapshot": "backups/one.snap"})
    assert r.status == 200 and r.json()["len"] == 2  # snapshot + newer WAL
    outside = tmp_path / "outside.snap"
    for bad in ("../outside.snap", str(outside), "/etc/aidb.snap", "backups/../../x.snap",
                "docs/wal.log", "docs/snapshots/evil", "", ".", "backups/"):
        r = daemon.post("/collections/docs/snapshot", {"path": bad})
        assert_error(r, 400)
    assert not outside.exists()
    os.symlink(str(tmp_path), os.path.join(daemon.data_dir, "escape"))
    assert_error(daemon.post("/collections/docs/snapshot", {"path": "escape/x.snap"}), 400)
    assert not (tmp_path / "x.snap").exists()
    assert_error(daemon.post("/collections/docs/snapshot", {"path": 5}), 400)
    assert daemon.get("/collections/docs").json()["len"] == 2


def test_wal_change_feed(daemon):
    make(daemon, "docs", 2)
    ids = [upsert(daemon, "docs", [1.0, float(i)]) for i in range(4)]
    assert daemon.delete(f"/collections/docs/points/{ids[0]}").status == 200
    r = daemon.get("/collections/docs/wal")
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers.get("transfer-encoding") == "chunked"
    entries = [json.loads(line) for line in r.body.splitlines()]
    assert [e["lsn"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["op"] for e in entries] == ["upsert"] * 4 + ["delete"]
    r = daemon.get("/collections/docs/wal?from_lsn=4")
    assert [json.loads(line)["lsn"] for line in r.body.splitlines()] == [4, 5]
    assert daemon.get("/collections/docs/wal?from_lsn=99").body == ""
    assert_error(daemon.get("/collections/docs/wal?from_lsn=abc"), 400)
    assert_error(daemon.get("/collections/docs/wal?from_lsn=-1"), 400)
    assert_error(daemon.get("/collections/nope/wal"), 404)


def test_wal_change_feed_streams_large_logs(daemon):
    make(daemon, "big", 64)
    pts = [{"vector": [float(i % 7)] * 64} for i in range(200)]
    for _ in range(10):
        assert daemon.post("/collections/big/points:batch", {"points": pts}).status == 200
    r = daemon.get("/collections/big/wal?from_lsn=1")
    lines = r.body.splitlines()
    assert len(lines) == 10 and len(r.body) > 64 * 1024
    assert sum(len(json.loads(l)["points"]) for l in lines) == 2000


def test_api_key(start_daemon):
    d = start_daemon("--api-key", "s3cret-key")
    try:
        assert d.get("/health").status == 200
        r = d.get("/collections")
        assert_error(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        assert_error(d.get("/collections", headers={"api-key": "wrong"}), 401)
        assert_error(d.get("/collections", headers={"api-key": "s3cret-key2"}), 401)
        assert_error(d.get("/collections", headers={"Authorization": "Bearer s3cret"}), 401)
        assert_error(d.get("/metrics"), 401)
        assert_error(d.post("/collections", {"name": "x", "dim": 2}), 401)
        assert_error(d.get("/nope"), 401)
        assert d.get("/collections", headers={"api-key": "s3cret-key"}).status == 200
        assert d.get("/metrics", headers={"Authorization": "Bearer s3cret-key"}).status == 200
        r = d.post("/collections", {"name": "x", "dim": 2},
                   headers={"authorization": "bearer s3cret-key"})
        assert r.status == 200 and r.json() == {"ok": True}
    finally:
        assert d.stop() == 0


def test_api_key_from_environment(start_daemon):
    d = start_daemon(env={"AIDB_API_KEY": "env-key"})
    assert_error(d.get("/collections"), 401)
    assert d.get("/collections", headers={"api-key": "env-key"}).status == 200
    assert d.stop() == 0


def test_backup_copy_restores_a_dropped_collection_across_restart(start_daemon):
    d = start_daemon()
    make(d, "docs", 2)
    ids = [upsert(d, "docs", [1.0, float(i)], payload={"i": i}) for i in range(3)]
    r = d.post("/collections/docs/snapshot", {"path": "backups/docs.snap"})
    assert r.status == 200 and r.json()["lsn"] == 3
    assert d.delete("/collections/docs").status == 200
    assert make(d, "docs", 2)["len"] == 0
    r = d.post("/collections/docs/restore", {"snapshot": "backups/docs.snap"})
    assert r.status == 200 and r.json()["len"] == 3, r
    ids.append(upsert(d, "docs", [5.0, 5.0]))
    assert d.stop() == 0
    d2 = start_daemon()
    info = d2.get("/collections/docs").json()
    assert info["len"] == 4 and info["wal_last_lsn"] == 4
    for i, pid in enumerate(ids):
        p = d2.get(f"/collections/docs/points/{pid}").json()
        assert p["payload"] == ({"i": i} if i < 3 else None)
    assert d2.stop() == 0


def test_quantization_and_vectors_on_disk_in_create_and_info(start_daemon):
    d = start_daemon()
    info = make(d, "plain", 2)
    assert info["quantization"] == "sq8" and info["vectors_on_disk"] is False
    info = make(d, "docs", 2, index="hnsw", quantization="none", vectors_on_disk=True)
    assert info["quantization"] == "none" and info["vectors_on_disk"] is True
    ids = [upsert(d, "docs", [1.0, float(i)], payload={"i": i}) for i in range(3)]
    vfile = pathlib.Path(d.data_dir) / "docs" / "vectors.bin"
    assert vfile.exists()
    # The same request again is fine; another quantization or placement is 409.
    r = d.post("/collections", {"name": "docs", "dim": 2, "index": "hnsw",
                                "quantization": "NONE", "vectors_on_disk": True})
    assert r.status == 200, r
    r = d.post("/collections", {"name": "docs", "dim": 2, "index": "hnsw", "vectors_on_disk": True})
    assert_error(r, 409)
    assert "quantization none (requested sq8)" in r.json()["error"]
    r = d.post("/collections", {"name": "docs", "dim": 2, "index": "hnsw", "quantization": "none"})
    assert_error(r, 409)
    assert "vectors_on_disk true (requested false)" in r.json()["error"]
    assert_error(d.post("/collections", {"name": "x", "dim": 2, "quantization": "pq"}), 400)
    assert_error(d.post("/collections", {"name": "x", "dim": 2, "quantization": 1}), 400)
    assert_error(d.post("/collections", {"name": "x", "dim": 2, "vectors_on_disk": "yes"}), 400)
    # IVF too (it used to answer 400): its vectors in the folder's file.
    r = d.post("/collections", {"name": "iv", "dim": 2, "index": "ivf", "vectors_on_disk": True})
    assert r.status == 200, r
    assert d.get("/collections/iv").json()["vectors_on_disk"] is True
    iv_id = upsert(d, "iv", [3.0, 4.0])
    assert (pathlib.Path(d.data_dir) / "iv" / "vectors.bin").exists()
    # A snapshot, one more point, a restart: snapshot + WAL, the file rebuilt.
    assert d.post("/collections/docs/snapshot", {}).status == 200
    ids.append(upsert(d, "docs", [5.0, 5.0]))
    assert d.stop() == 0
    vfile.unlink()
    d2 = start_daemon()
    info = d2.get("/collections/docs").json()
    assert info["len"] == 4 and info["vectors_on_disk"] is True and info["quantization"] == "none"
    p = d2.get(f"/collections/docs/points/{ids[3]}").json()
    assert [round(x, 4) for x in p["vector"]] == [0.7071, 0.7071], p  # cosine: normalised
    assert vfile.exists()
    p = d2.get(f"/collections/iv/points/{iv_id}").json()
    assert [round(x, 4) for x in p["vector"]] == [0.6, 0.8], p
    assert d2.stop() == 0


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_nil_uuid_is_a_point_id_like_any_other(start_daemon, index):
    # uuid.UUID(int=0), where clients that number their points start. It
    # once vanished from searches and made the next start fail after a
    # snapshot ("point count mismatch").
    nil = str(uuid.UUID(int=0))
    d = start_daemon()
    make(d, "n", 3, index=index, metric="cosine")
    for i in range(1, 40):
        upsert(d, "n", [1.0, float(i), -float(i % 7)], id=str(uuid.UUID(int=i)))
    assert upsert(d, "n", [0.5, -2.0, 9.0], id=nil, payload={"first": True}) == nil

    def check(daemon):
        r = daemon.post("/collections/n/search", {"vector": [0.5, -2.0, 9.0], "top_k": 3})
        assert r.status == 200, r
        hits = r.json()["results"]
        # An exact match scores 0 (cosine: 1 - cosine similarity).
        assert hits[0] == {"id": nil, "score": 0, "payload": {"first": True}}, hits
        p = daemon.get(f"/collections/n/points/{nil}").json()
        assert p["id"] == nil and p["payload"] == {"first": True}, p
        assert daemon.get("/collections/n").json()["len"] == 40

    check(d)
    assert d.post("/collections/n/snapshot", {}).status == 200
    d.kill9()
    d2 = start_daemon()  # the snapshot, then the (empty) WAL
    check(d2)
    r = d2.request("DELETE", f"/collections/n/points/{nil}")
    assert r.status == 200 and r.json() is True, r
    assert d2.get("/collections/n").json()["len"] == 39
    assert d2.post("/collections/n/snapshot", {}).status == 200
    assert d2.stop() == 0
    d3 = start_daemon()
    assert d3.get("/collections/n").json()["len"] == 39
    assert d3.get(f"/collections/n/points/{nil}").status == 404
    assert d3.stop() == 0
