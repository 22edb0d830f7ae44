"""The Python binding against the real library: the checkpoint and restore
flow of docs/operations.md, a database directory, filtered search, threads, bad input,
use after close."""
import json
import math
import threading

import numpy as np
import pytest

import aidb


def vecs(n, dim, seed=0):
    i = np.arange(n * dim, dtype=np.float64).reshape(n, dim) + seed * dim + 1
    return (np.sin(i) + (np.arange(n)[:, None] + seed) % 7).astype(np.float32)


def test_version_matches_header():
    assert aidb.version_number() == aidb.HEADER_VERSION_NUMBER
    # The package is versioned with the library.
    assert aidb.__version__ == aidb.version()


def test_every_library_status_has_an_exception():
    named = 0
    for code in range(1, 1000):
        name = aidb.errors.error_for(code).status
        if name == "UNKNOWN":
            break
        named += 1
        e = aidb.errors.error_for(code, "msg")
        assert type(e) is not aidb.AidbError, f"status {code} ({name}) has no exception class"
        assert (e.code, e.status, e.message) == (code, name, "msg")
    assert named >= 11
    e = aidb.errors.error_for(11, "retry")
    assert isinstance(e, aidb.BusyError) and isinstance(e, aidb.AidbError) and e.status == "BUSY"


def test_enum_names_are_the_librarys():
    with aidb.Collection("names", 2, metric="l2", index="hnsw", durability="batch") as c:
        info = c.info()
        assert (info["metric"], info["index"], info["durability"]) == ("euclidean", "hnsw", "batch")
    with pytest.raises(aidb.InvalidArgumentError, match="bogus"):
        aidb.Collection("names", 2, metric="bogus")


def busy_collection():
    """An HNSW collection of a cluster of points and one far away."""
    n, dim = 500, 8
    c = aidb.Collection("busy", dim, metric="euclidean", index="hnsw")
    cluster = np.sin(np.arange(1, n * dim + 1, dtype=np.float64)).astype(np.float32).reshape(n, dim)
    ids = ["00000000-0000-4000-8000-%012d" % i for i in range(n)]
    far = aidb.new_id()
    c.upsert_batch(ids + [far], np.vstack([cluster, np.full((1, dim), 100, np.float32)]))
    return c, ids, cluster, far


def test_nonblocking_search_answers_or_says_busy():
    """nonblocking reaches the library: on an idle collection it answers like
    a blocking search, and it raises BusyError where the library must refuse
    (an HNSW walk through a graph of deleted points needs far more distance
    computations than ef predicts) while a blocking search answers."""
    c, ids, cluster, far = busy_collection()
    with c:
        for q in cluster[::25]:
            want = c.search(q, k=5)
            assert c.search(q, k=5, nonblocking=True) == want
            assert c.search_batch(q, k=5, nonblocking=True) == [want]
        for i in ids:
            c.delete(i)
        with pytest.raises(aidb.BusyError) as info:
            c.search(cluster[0], k=1, ef_search=1, nonblocking=True)
        assert info.value.code == 11 and info.value.message
        with pytest.raises(aidb.BusyError):
            c.search_batch(cluster[:2], k=1, ef_search=1, nonblocking=True)
        assert [h.id for h in c.search(cluster[0], k=1, ef_search=1)] == [far]


def test_ids_are_canonicalised():
    assert len(aidb.new_id()) == 36
    assert aidb.canonical_id("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}") == \
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    with pytest.raises(aidb.InvalidArgumentError):
        aidb.canonical_id("nope")


def test_checkpoint_then_restore_sees_points_from_before_and_after(tmp_path):
    wal, snap = tmp_path / "docs.wal", tmp_path / "docs.snapshot"
    opts = dict(name="docs", dim=8, metric="euclidean", wal_path=wal)
    before = [aidb.new_id() for _ in range(3)]
    after = [aidb.new_id() for _ in range(2)]
    with aidb.Collection(**opts) as c:
        c.upsert_batch(before, vecs(3, 8), [{"phase": "before", "i": i} for i in range(3)])
        w = c.wal_stats()
        assert w["size_bytes"] > 0 and w["last_truncate_unix_ns"] is None
        c.snapshot_to(snap)
        w = c.wal_stats()
        assert w["size_bytes"] == 0, "the checkpoint must empty the WAL"
        assert w["last_truncate_unix_ns"] is not None
        for i, id in enumerate(after):
            c.upsert(id, vecs(1, 8, seed=10 + i)[0], '{"phase":"after"}')
        c.delete(before[2])

    with aidb.Collection(**opts) as r:
        r.load_snapshot(snap)
        assert r.count() == 3  # the snapshot alone
        st = r.recover()
        assert st["records_applied"] == 3 and not st["torn_tail"], st
        assert len(r) == 4
        for id in before[:2] + after:
            assert id in r
        with pytest.raises(aidb.NotFoundError):
            r.get(before[2])
        hits = r.search(vecs(1, 8, seed=10)[0], k=1)
        assert [h.id for h in hits] == [after[0]]
        assert hits[0].payload == {"phase": "after"}
        r.snapshot_to(snap)
        assert r.wal_stats()["size_bytes"] == 0
    assert aidb.verify_snapshot(snap)["count"] == 4


@pytest.mark.parametrize("quantization", ["sq8", "none"])
def test_vectors_on_disk_and_quantization_reach_the_library(tmp_path, quantization):
    wal = tmp_path / "od.wal"
    with aidb.Collection("od", 8, metric="euclidean", index="hnsw", wal_path=wal,
                         quantization=quantization, vectors_on_disk=True) as c:
        info = c.info()
        assert info["quantization"] == quantization and info["vectors_on_disk"] is True
        assert (info["ivf_nlist"], info["ivf_nprobe"], info["ivf_rerank"]) == (0, 0, 0)
        ids = [aidb.new_id() for _ in range(3)]
        c.upsert_batch(ids, vecs(3, 8))
        assert np.array_equal(c.get(ids[1])[0], vecs(3, 8)[1])
        assert [h.id for h in c.search(vecs(3, 8)[2], k=1)] == [ids[2]]
        assert (tmp_path / "od.wal.vectors").exists()
    with aidb.Database(tmp_path / "db") as db:
        c = db.create_collection("items", 4, index="flat", quantization=quantization,
                                 vectors_on_disk=True)
        assert c.info()["vectors_on_disk"] is True
        assert c.info()["quantization"] == quantization
    with pytest.raises(aidb.InvalidArgumentError):  # no WAL: no place for the file
        aidb.Collection("mem", 8, vectors_on_disk=True)
    with pytest.raises(aidb.InvalidArgumentError):
        aidb.Collection("bad", 8, wal_path=wal, quantization="pq")


def test_ivf_with_vectors_on_disk(tmp_path):
    """IVF parameters reach the library and come back in info(); set_ef_search
    sets the partitions probed; with more than 2048 points (trained) the
    configured re-rank of 10 candidates misses some exact hits, while probing
    every partition with a per-query re-rank of all points gives the exact
    scan's hits (search, search_batch, search_batch_arrays), before and after
    a snapshot + restore with the vectors file deleted."""
    n, dim = 3000, 16
    wal = tmp_path / "ivf.wal"
    opts = dict(metric="euclidean", index="ivf", wal_path=wal, vectors_on_disk=True,
                ivf={"nlist": 8, "nprobe": 2, "rerank": 10})
    ids = [aidb.new_id() for _ in range(n)]
    queries = vecs(20, dim, seed=n)
    wide = dict(k=10, ef_search=8, ivf_rerank=n, with_payload=False)

    def same_as_exact(c):
        want = [[h.id for h in hits] for hits in c.search_batch(queries, k=10, exact=True)]
        narrow = [[h.id for h in hits] for hits in c.search_batch(queries, k=10)]
        assert narrow != want  # an IVF search, not an exact scan
        assert [[h.id for h in hits] for hits in c.search_batch(queries, **wide)] == want
        assert [[h.id for h in c.search(q, **wide)] for q in queries] == want
        arr_ids, _ = c.search_batch_arrays(queries, k=10, ef_search=8, ivf_rerank=n)
        assert arr_ids.tolist() == want

    with aidb.Collection("ivf", dim, **opts) as c:
        c.upsert_batch(ids, vecs(n, dim))
        info = c.info()
        assert info["index"] == "ivf" and info["vectors_on_disk"] is True
        assert (info["ivf_nlist"], info["ivf_nprobe"], info["ivf_rerank"]) == (8, 2, 10)
        c.set_ef_search(8)
        assert c.info()["ivf_nprobe"] == 8
        same_as_exact(c)
        c.snapshot_to(tmp_path / "ivf.snapshot")
    (tmp_path / "ivf.wal.vectors").unlink()  # a cache: rebuilt at the next open
    with aidb.Collection("ivf", dim, **opts) as r:
        r.load_snapshot(tmp_path / "ivf.snapshot")
        r.recover()
        assert r.count() == n
        info = r.info()
        assert (info["ivf_nlist"], info["ivf_nprobe"], info["ivf_rerank"]) == (8, 8, 10)
        same_as_exact(r)
    with aidb.Database(tmp_path / "db") as db:
        c = db.create_collection("items", 4, index="ivf", ivf={"nlist": 4})
        assert c.info()["ivf_nlist"] == 4
        with pytest.raises(aidb.InvalidArgumentError):
            db.create_collection("bad", 4, index="ivf", ivf={"lists": 4})
        with pytest.raises(aidb.InvalidArgumentError):
            db.create_collection("bad", 4, index="ivf", ivf={"nlist": -1})


def test_database_directory_persists_snapshots_and_restores(tmp_path):
    d = tmp_path / "db"
    ids = [aidb.new_id() for _ in range(3)]
    db = aidb.Database(d)
    c = db.create_collection("items", 4, index="hnsw")
    with pytest.raises(aidb.AlreadyExistsError):
        db.create_collection("items", 4)
    c.upsert(ids[0], vecs(1, 4)[0])
    snap = db.snapshot("items")
    c.upsert_batch(ids[1:], vecs(2, 4, seed=1), [None, {"k": 1}])
    snaps = db.list_snapshots("items")
    assert len(snaps) == 1 and snaps[0]["count"] == 1
    db.close()
    with pytest.raises(aidb.ClosedError):  # closed with its database
        c.count()

    with aidb.Database(d) as db:
        assert db.list_collections() == ["items"]
        c = db["items"]
        assert c.count() == 3  # snapshot + WAL replay on open
        db.restore("items", snap)
        assert c.count() == 3
        with pytest.raises(aidb.NotFoundError):
            db.collection("nope")
        db.drop_collection("items")
        assert db.list_collections() == []
        with pytest.raises(aidb.NotFoundError):
            c.upsert(aidb.new_id(), vecs(1, 4)[0])


def test_filtered_search_returns_only_matches():
    n = 500
    with aidb.Collection("f", 8, metric="dot", durability="none") as c:
        v = vecs(n, 8)
        ids = [aidb.new_id() for _ in range(n)]
        c.upsert_batch(ids, v, [{"group": i % 50, "meta": {"rank": i}} for i in range(n)])
        assert c.count() == n
        hits = c.search(v[1], k=10, filter={"group": 7})
        assert len(hits) == 10, "a selective filter still returns k hits"
        assert all(h.payload["group"] == 7 for h in hits)
        hits = c.search(v[1], k=100, with_payload=False,
                        filter={"must": [{"key": "meta.rank", "range": {"gte": 10, "lt": 20}}]})
        assert len(hits) == 10
        assert all(h.payload is None for h in hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores), "distances ascend: best first"
        res = c.search_batch(v[:3], k=5, filter='{"group":3}')
        assert [len(r) for r in res] == [5, 5, 5]
        ids2, sc = c.search_batch_arrays(v[:3], k=5)
        assert sc.shape == (3, 5) and sc.dtype == np.float32 and len(ids2[0]) == 5
        with pytest.raises(aidb.InvalidArgumentError):
            c.search(v[1], filter='{"must": [')
        kept = c.search(v[2], k=3)
    # Payloads are read lazily from the result, which outlives the collection.
    assert all(h.payload["meta"]["rank"] >= 0 for h in kept)


def test_search_batch_arrays_match_search_batch():
    with aidb.Collection("arr", 8, metric="euclidean", durability="none") as c:
        v = vecs(50, 8)
        c.upsert_batch([aidb.new_id() for _ in range(50)], v,
                       [{"g": i % 5} for i in range(50)])
        ids, scores = c.search_batch_arrays(v[:4], k=6)
        assert ids.shape == scores.shape == (4, 6)
        assert ids.dtype == np.dtype("<U36") and scores.dtype == np.float32
        want = c.search_batch(v[:4], k=6)
        assert ids.tolist() == [[h.id for h in hs] for hs in want]
        assert scores.tolist() == [[h.score for h in hs] for hs in want]
        # Fewer hits than k (a filter matching 10 points): "" and inf after them.
        ids, scores = c.search_batch_arrays(v[:2], k=12, filter={"g": 1})
        assert (ids[:, :10] != "").all() and (ids[:, 10:] == "").all()
        assert np.isfinite(scores[:, :10]).all() and (scores[:, 10:] == np.inf).all()
        assert all(list(r) == sorted(r) for r in scores), "rows ascend, padding too"
        # One query as a 1-D array; no hits at all in an empty result.
        ids, scores = c.search_batch_arrays(v[0], k=3)
        assert ids.shape == (1, 3) and ids[0, 0] == want[0][0].id
        ids, scores = c.search_batch_arrays(v[:2], k=3, filter={"g": 99})
        assert (ids == "").all() and (scores == np.inf).all()


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_scores_are_distances_ascending(index):
    # Hand-computed for q = (1,1) against a = (1,0), b = (0,2), c = (3,4),
    # d = (-2,0): cosine 1 - cos, Euclidean ||p-q||, dot -(p.q).
    pts = np.array([[1, 0], [0, 2], [3, 4], [-2, 0]], np.float32)
    r2 = math.sqrt(2)
    want = {"cosine": [1 - 1 / r2, 1 - 1 / r2, 1 - 7 / (5 * r2), 1 + 1 / r2],
            "euclidean": [1, r2, math.sqrt(13), math.sqrt(10)],
            "dot": [-1, -2, -7, 2]}
    for metric, dist in want.items():
        with aidb.Collection("d", 2, metric=metric, index=index, durability="none") as c:
            ids = [aidb.new_id() for _ in pts]
            c.upsert_batch(ids, pts)
            hits = c.search([1, 1], k=4)
            assert [h.score for h in hits] == sorted(h.score for h in hits), metric
            got = {h.id: h.score for h in hits}
            assert [got[i] for i in ids] == pytest.approx(dist, abs=1e-5), metric
            _, arr = c.search_batch_arrays(np.array([[1, 1]], np.float32), k=4)
            assert arr[0].tolist() == [h.score for h in hits]
            # An exact match is the best hit: 0 for cosine and Euclidean.
            self_hit = c.search(pts[2], k=1)[0]
            assert self_hit.id == ids[2]
            if metric == "dot":
                assert self_hit.score == pytest.approx(-25, abs=1e-4)
            else:
                assert abs(self_hit.score) <= 1e-6 and math.copysign(1, self_hit.score) == 1


def test_hits_compare_by_id_score_and_payload():
    with aidb.Collection("eq", 4, durability="none") as c:
        c.upsert(aidb.new_id(), [1, 0, 0, 0], {"a": 1})
        a, b = c.search([1, 0, 0, 0], k=1), c.search([1, 0, 0, 0], k=1)
        assert a == b and hash(a[0]) == hash(b[0])
        assert a[0] == aidb.Hit(a[0].id, a[0].score, b'{"a":1}')
        assert a[0] != aidb.Hit(a[0].id, a[0].score, b'{"a":2}')
        assert a[0].payload == {"a": 1}


def test_vectors_pass_without_copies_and_come_back_into_caller_memory():
    with aidb.Collection("z", 4, metric="euclidean") as c:
        base = np.arange(40, dtype=np.float32).reshape(10, 4)
        ids = [aidb.new_id() for _ in range(10)]
        # C-contiguous float32 arrays are handed over as they are, no copy.
        assert aidb._f32(base, 2) is base and np.shares_memory(aidb._f32(base[3], 1), base)
        c.upsert_batch(ids, base)
        out = np.zeros(4, dtype=np.float32)
        got, _ = c.get(ids[3], out=out)
        assert got is out and np.array_equal(out, base[3])
        # Non-float32 input is converted once and still works.
        c.upsert(ids[0], [1, 2, 3, 4])
        assert np.array_equal(c.get(ids[0])[0], np.array([1, 2, 3, 4], np.float32))


def test_threads_share_one_collection(tmp_path):
    with aidb.Collection("conc", 16, index="hnsw", wal_path=tmp_path / "wal",
                         durability="batch") as c:
        errors = []

        def work(w):
            try:
                for i, v in enumerate(vecs(50, 16, seed=w)):
                    c.upsert(aidb.new_id(), v, {"w": w})
                    c.search(v, k=3)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        ts = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        assert c.count() == 400


def test_bad_input_raises_the_right_exception(tmp_path):
    with aidb.Collection("bad", 4) as c:
        id = aidb.new_id()
        v = np.ones(4, np.float32)
        cases = [
            (aidb.DimensionMismatchError, lambda: c.upsert(id, v[:3])),
            (aidb.InvalidArgumentError, lambda: c.upsert(id, [1, math.nan, 3, 4])),
            (aidb.InvalidArgumentError, lambda: c.upsert(id, [1, math.inf, 3, 4])),
            (aidb.InvalidArgumentError, lambda: c.upsert("xyz", v)),
            (aidb.InvalidArgumentError, lambda: c.upsert(id, v, '{"a":')),
            (aidb.InvalidArgumentError, lambda: c.upsert(id, v, "[1,2]")),
            (aidb.InvalidArgumentError, lambda: c.upsert(id, v, {"f": object()})),
            (aidb.InvalidArgumentError, lambda: c.upsert_batch([aidb.new_id(), "nope"], np.ones((2, 4)))),
            (aidb.NotFoundError, lambda: c.delete(aidb.new_id())),
            (aidb.DimensionMismatchError, lambda: c.search([1.0])),
            (aidb.UnsupportedError, lambda: c.set_ef_search(10)),
            (aidb.InvalidArgumentError, lambda: aidb.Collection("no spaces", 4)),
            (aidb.InvalidArgumentError, lambda: aidb.Collection("z", 0)),
            (aidb.NotFoundError, lambda: c.load_snapshot(tmp_path / "none")),
        ]
        for exc, fn in cases:
            with pytest.raises(exc) as info:
                fn()
            assert isinstance(info.value, aidb.AidbError)
        assert c.count() == 0, "nothing half-applied"


def test_unknown_status_codes_are_tolerated():
    e = aidb.errors.error_for(4242, "future")
    assert type(e) is aidb.AidbError and e.code == 4242 and e.status == "UNKNOWN"


def test_use_after_close_raises_closed_error():
    c = aidb.Collection("closed", 2)
    c.close()
    c.close()  # idempotent
    with pytest.raises(aidb.ClosedError):
        c.upsert(aidb.new_id(), [1, 2])
    with pytest.raises(aidb.MisuseError):
        c.search([1, 2])
    assert c.closed


def test_wal_entries_replay_the_change_feed(tmp_path):
    with aidb.Collection("feed", 2, wal_path=tmp_path / "wal") as c:
        id = aidb.new_id()
        c.upsert(id, [1, 2])
        c.delete(id)
        entries = c.wal_entries()
        assert [e["op"] for e in entries] == ["upsert", "delete"]
        assert entries[0]["lsn"] < entries[1]["lsn"]
        assert isinstance(entries[0]["record"], dict)
        json.dumps(entries)


def test_logger_receives_wal_truncated_event(tmp_path):
    events = []
    aidb.set_logger(lambda *e: events.append(e), "info")
    try:
        with aidb.Collection("logged", 2, wal_path=tmp_path / "wal") as c:
            c.upsert(aidb.new_id(), [1, 2])
            c.snapshot_to(tmp_path / "snap")
    finally:
        aidb.set_logger(None)
    assert any(t == "aidb::storage" and ev == "wal_truncated" for _, t, ev, _ in events), events


def test_close_while_searching_is_safe():
    c = aidb.Collection("race", 8)
    c.upsert_batch([aidb.new_id() for _ in range(100)], vecs(100, 8))
    errors = []

    def work():
        while True:
            try:
                c.search(vecs(1, 8)[0])
            except aidb.ClosedError:
                return
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)
                return

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    c.close()  # waits for searches in flight; later ones raise ClosedError
    for t in ts:
        t.join()
    assert not errors
