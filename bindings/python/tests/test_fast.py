"""aidb._fast (src/aidb_fast.c), the compiled single-query search, against
the ctypes route it replaces: the same hits (ids, scores, payloads, order),
the same exceptions, for every kind of query and option.

Skipped where the package has no extension (a plain source checkout loading
a system libaidb), unless AIDB_EXPECT_FAST=1 says it must be there (the
wheel test sets it)."""
import array
import gc
import os
import threading

import numpy as np
import pytest

import aidb
from aidb import _search

if _search.SEARCH_ROUTE != "extension":
    if os.environ.get("AIDB_EXPECT_FAST") == "1":
        raise AssertionError(
            "AIDB_EXPECT_FAST=1 but search() takes the ctypes route (aidb._fast not built, "
            "failed its layout check, or AIDB_PYTHON_FAST=0)")
    pytest.skip("aidb._fast is not built (ctypes route)", allow_module_level=True)

DIM = 16


def both(c, query, **kw):
    """(extension hits, ctypes hits) for the same call."""
    a = dict(k=None, filter=None, ef_search=0, with_payload=True, exact=False, nonblocking=False)
    a.update(kw)
    fast = c._search_fast(query, a["k"], a["filter"], a["ef_search"], a["with_payload"],
                          a["exact"], a["nonblocking"])
    slow = c._search_ctypes(query, a["k"], a["filter"], a["ef_search"], a["with_payload"],
                            a["exact"], a["nonblocking"])
    return fast, slow


def same(fast, slow):
    assert type(fast) is list and type(slow) is list
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow):
        assert type(f) is aidb.Hit
        assert type(f.id) is str and type(f.score) is float
        assert (f.id, f.score, f.payload_json, f.payload) == (s.id, s.score, s.payload_json,
                                                               s.payload)
        assert f == s and hash(f) == hash(s)


@pytest.fixture(params=[("cosine", "flat"), ("euclidean", "hnsw"), ("dot", "hnsw")])
def coll(request):
    metric, index = request.param
    rng = np.random.default_rng(7)
    n = 300
    ids = [aidb.new_id() for _ in range(n)]
    payloads = [{"n": i, "even": i % 2 == 0, "s": "é" * (i % 3)} if i % 5 else None
                for i in range(n)]
    with aidb.Collection("fast", DIM, metric=metric, index=index) as c:
        c.upsert_batch(ids, rng.standard_normal((n, DIM), dtype=np.float32),
                       payloads=payloads)
        yield c, rng


def test_the_extension_is_the_route_search_takes(coll):
    c, rng = coll
    q = rng.standard_normal(DIM, dtype=np.float32)
    # search() is the extension's: hits hold no _Result, and the same as ctypes.
    hits = c.search(q, k=5)
    same(hits, c._search_ctypes(q, 5, None, 0, True, False, False))
    assert all(not isinstance(h[2], _search._Result) for h in hits)


def test_same_hits_for_every_option(coll):
    c, rng = coll
    for _ in range(10):
        q = rng.standard_normal(DIM, dtype=np.float32)
        for kw in ({}, {"k": 1}, {"k": 0}, {"k": 50}, {"k": 1000}, {"with_payload": False},
                   {"filter": {"even": True}, "k": 7}, {"filter": '{"n": 11}'},
                   {"filter": {"n": -1}}, {"exact": True, "k": 20}, {"ef_search": 200},
                   {"nonblocking": True}):
            same(*both(c, q, **kw))


def test_same_hits_for_every_kind_of_query(coll):
    c, rng = coll
    q = rng.standard_normal(DIM, dtype=np.float32)
    ro = q.copy()
    ro.flags.writeable = False
    wide = np.repeat(q, 2)[::2]  # a strided (non-contiguous) view
    assert not wide.flags.c_contiguous
    big_endian = q.astype(">f4")
    expected = c._search_ctypes(q, 10, None, 0, True, False, False)
    for query in (q, ro, wide, big_endian, q.astype(np.float64), q.tolist(), tuple(q.tolist()),
                  array.array("f", q.tolist()), memoryview(q), q.astype(np.float16)):
        fast, slow = both(c, query, k=10)
        same(fast, slow)
        if query is not q and not (isinstance(query, np.ndarray) and query.dtype == np.float16):
            same(fast, expected)


def test_same_exceptions(coll):
    c, rng = coll
    cases = [
        (rng.standard_normal(DIM + 1, dtype=np.float32), {}),  # wrong dimension
        (rng.standard_normal((1, DIM), dtype=np.float32), {}),  # 2-D
        (rng.standard_normal(DIM, dtype=np.float32), {"filter": "{not json"}),
        (rng.standard_normal(DIM, dtype=np.float32), {"filter": {"must": 3}}),
        (np.zeros(0, np.float32), {}),
    ]
    for query, kw in cases:
        a = dict(k=None, filter=None, ef_search=0, with_payload=True, exact=False,
                 nonblocking=False)
        a.update(kw)
        args = (query, a["k"], a["filter"], a["ef_search"], a["with_payload"], a["exact"],
                a["nonblocking"])
        with pytest.raises(aidb.AidbError) as fast:
            c._search_fast(*args)
        with pytest.raises(aidb.AidbError) as slow:
            c._search_ctypes(*args)
        assert type(fast.value) is type(slow.value)
        assert str(fast.value) == str(slow.value)
    with pytest.raises(ValueError):
        c.search(["x"] * DIM)
    # The extension counts its calls in flight as _Handle does, errors too.
    assert c._inflight == 0


def test_closed_collection_same_error():
    c = aidb.Collection("closed", 2)
    c.upsert(aidb.new_id(), [1.0, 0.0])
    for _ in range(3):
        c.search([1.0, 0.0])
    assert c._inflight == 0
    c.close()
    with pytest.raises(aidb.ClosedError) as fast:
        c._search_fast([1.0, 0.0])
    with pytest.raises(aidb.ClosedError) as slow:
        c._search_ctypes([1.0, 0.0])
    assert str(fast.value) == str(slow.value) and "Collection is closed" in str(fast.value)
    assert c._inflight == 0


def test_payloads_outlive_the_list_and_the_collection():
    """A hit reads its payload from the C result on first access: the
    result lives as long as any hit that has one, even after the collection
    is closed and the other hits are gone."""
    c = aidb.Collection("keep", 2)
    c.upsert(aidb.new_id(), [1.0, 0.0], payload={"name": "a" * 10000})
    c.upsert(aidb.new_id(), [0.9, 0.1], payload={"name": "b"})
    hits = c.search([1.0, 0.0], k=2)
    last = hits[-1]
    del hits
    c.close()
    gc.collect()
    assert last.payload == {"name": "b"}
    with pytest.raises(aidb.ClosedError):
        c.search([1.0, 0.0])


def test_empty_collection_and_no_payloads():
    with aidb.Collection("empty", 3) as c:
        same(*both(c, [1.0, 0.0, 0.0]))
        assert c.search([1.0, 0.0, 0.0]) == []
        c.upsert(aidb.new_id(), [1.0, 0.0, 0.0])
        fast, slow = both(c, [1.0, 0.0, 0.0])
        same(fast, slow)
        assert fast[0].payload_json is None and fast[0].payload is None


def test_threads_get_the_same_hits(coll):
    """The extension releases the GIL during the C search; concurrent
    searches from threads still return what one thread gets."""
    c, rng = coll
    queries = rng.standard_normal((40, DIM), dtype=np.float32)
    expected = [c._search_ctypes(q, 10, None, 0, True, False, False) for q in queries]
    errors = []

    def worker():
        try:
            for _ in range(5):
                for q, e in zip(queries, expected):
                    same(c.search(q, k=10), e)
        except Exception as ex:  # reported below, with the thread's traceback lost
            errors.append(ex)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_close_finishes_while_threads_keep_searching():
    """close() used to wait for a moment with no call in flight; with the
    extension four threads searching in a loop never leave one (each enters
    its next search before giving up the GIL), so close() waited for ever.
    Now new calls raise ClosedError once close() starts and it only waits
    for the calls already in flight. (A liveness check: the joins' timeout
    is only there so a regression fails instead of hanging.)"""
    c = aidb.Collection("drain", 8)
    rng = np.random.default_rng(3)
    c.upsert_batch([aidb.new_id() for _ in range(50)], rng.random((50, 8), dtype=np.float32),
                   payloads=[{"i": i} for i in range(50)])
    q = rng.random(8, dtype=np.float32)
    started = threading.Barrier(5)
    errors = []

    def work():
        started.wait()
        try:
            while True:
                c.search(q, k=10)
        except aidb.ClosedError:
            return
        except Exception as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=work, daemon=True) for _ in range(4)]
    for t in ts:
        t.start()
    started.wait()
    for _ in range(200):  # let them run (and overlap) for a while
        c._search_ctypes(q, 10)
    closer = threading.Thread(target=c.close, daemon=True)
    closer.start()
    closer.join(120)
    assert not closer.is_alive(), "close() did not return while threads were searching"
    for t in ts:
        t.join(120)
        assert not t.is_alive()
    assert not errors, errors
    assert c.closed and c._inflight == 0
