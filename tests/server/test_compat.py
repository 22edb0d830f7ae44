"""aidbd as a drop-in for the original AIDB server (issue 11).

Replays the requests the original server's clients make (its desktop app,
benchmark tool and the curl/jq lines of its docs and runbook) and decodes
every answer the way a typed client of the original does: a bare JSON string
for an upsert, a bare array for a batch upsert and the collection list, a
bool for delete, compact and params, objects for create, info and search, and
`ok` as text/plain for /health. A decoder fails on any other type, so a
shape that changes (a bare value becoming an object, say) fails here.

Scores are only checked to be numbers: their meaning (distances, lower is
better) is tested with the engine. Extra fields in objects are allowed, as
they are for the original's clients.
"""
import json
import os
import uuid

import pytest


class DecodeError(AssertionError):
    pass


def _expect(cond, what, value):
    if not cond:
        raise DecodeError(f"expected {what}, got {value!r}")


def uuid_string(v):
    _expect(isinstance(v, str), "a UUID string", v)
    try:
        parsed = uuid.UUID(v)
    except ValueError:
        raise DecodeError(f"expected a UUID string, got {v!r}") from None
    _expect(str(parsed) == v, "a canonical UUID", v)
    return v


def integer(v):
    _expect(isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an unsigned integer", v)
    return v


def number(v):
    _expect(isinstance(v, (int, float)) and not isinstance(v, bool), "a number", v)
    return v


def string(v):
    _expect(isinstance(v, str), "a string", v)
    return v


def boolean(v):
    _expect(isinstance(v, bool), "a JSON bool", v)
    return v


def obj(v, **fields):
    """An object with at least `fields` (name -> decoder); extra keys are fine."""
    _expect(isinstance(v, dict), "a JSON object", v)
    for name, decode in fields.items():
        _expect(name in v, f"field '{name}'", v)
        decode(v[name])
    return v


def optional(decode):
    return lambda v: v if v is None else decode(v)


def array(decode):
    def dec(v):
        _expect(isinstance(v, list), "a JSON array", v)
        for x in v:
            decode(x)
        return v
    return dec


def hnsw_meta(v):
    return obj(v, m=integer, ef_construction=integer, ef_search=integer)


def collection_info(v):
    """The original desktop app's CollectionInfo."""
    return obj(v, name=string, dim=integer, metric=string, len=integer, index=string,
               hnsw=optional(hnsw_meta), wal_size_bytes=integer,
               wal_last_truncate=optional(string), wal_bytes_since_truncate=integer)


def payload(v):
    _expect(v is None or isinstance(v, dict), "a payload object or null", v)
    return v


def search_result(v):
    return obj(v, id=uuid_string, score=number, payload=payload)


def search_resp(v):
    return obj(v, results=array(search_result))


def batch_search_resp(v):
    return obj(v, results=array(array(search_result)))


class OriginalClient:
    """What a client written against the original server does: JSON bodies,
    `Content-Type: application/json`, answers decoded by type; any status
    but 200 is an error (the error body is shown, never parsed)."""

    def __init__(self, daemon):
        self.d = daemon

    def call(self, method, path, body=None):
        r = self.d.request(method, path, body=body)
        if r.status != 200:
            raise RuntimeError(f"{method} {path} -> {r.status} {r.body}")
        _expect(r.headers["content-type"].startswith("application/json"), "a JSON answer",
                r.headers["content-type"])
        return json.loads(r.body)

    def health(self):
        r = self.d.get("/health")
        _expect(r.status == 200, "200", r.status)
        _expect(r.headers["content-type"].startswith("text/plain"), "text/plain",
                r.headers["content-type"])
        return r.body == "ok"

    def create(self, name, dim, metric="cosine", wal_dir=None, index=None, hnsw=None):
        body = {"name": name, "dim": dim, "metric": metric}
        for k, v in (("wal_dir", wal_dir), ("index", index), ("hnsw", hnsw)):
            if v is not None:
                body[k] = v
        resp = obj(self.call("POST", "/collections", body), ok=boolean)
        return resp["ok"]

    def list_collections(self):
        return array(collection_info)(self.call("GET", "/collections"))

    def info(self, name):
        return collection_info(self.call("GET", f"/collections/{name}"))

    def upsert(self, name, vector, id=None, payload=None):
        body = {"vector": vector}
        if id is not None:
            body["id"] = id
        if payload is not None:
            body["payload"] = payload
        return uuid_string(self.call("POST", f"/collections/{name}/points", body))

    def upsert_batch(self, name, points):
        return array(uuid_string)(self.call("POST", f"/collections/{name}/points:batch",
                                            {"points": points}))

    def delete(self, name, pid):
        return boolean(self.call("DELETE", f"/collections/{name}/points/{pid}"))

    def search(self, name, vector, top_k, filter=None):
        body = {"vector": vector, "top_k": top_k}
        if filter is not None:
            body["filter"] = filter
        return search_resp(self.call("POST", f"/collections/{name}/search", body))["results"]

    def search_batch(self, name, queries, top_k, filter=None):
        body = {"queries": queries, "top_k": top_k}
        if filter is not None:
            body["filter"] = filter
        return batch_search_resp(self.call("POST", f"/collections/{name}/search:batch",
                                           body))["results"]

    def compact(self, name):
        return boolean(self.call("POST", f"/collections/{name}/compact"))

    def update_params(self, name, ef_search):
        return boolean(self.call("POST", f"/collections/{name}/params", {"ef_search": ef_search}))

    def snapshot(self, name, path=None):
        return obj(self.call("POST", f"/collections/{name}/snapshot",
                             {} if path is None else {"path": path}))


def test_the_decoders_reject_the_shapes_aidbd_answered_before():
    """The decoders are as strict as a typed client: aidbd's former answers
    (objects where the original answered bare values) fail them."""
    pid = str(uuid.uuid4())
    info = {"name": "d", "dim": 2, "metric": "cosine", "len": 0, "index": "flat",
            "wal_size_bytes": 0, "wal_last_truncate": None, "wal_bytes_since_truncate": 0}
    for decode, old in ((uuid_string, {"id": pid}),
                        (array(uuid_string), {"ids": [pid]}),
                        (array(collection_info), {"collections": []}),
                        (boolean, {"id": pid, "deleted": True}),
                        (boolean, {**info, "hnsw": None}),
                        # No "hnsw" at all: clients decoding it as optional
                        # would cope, but the issue lists it, so aidbd always
                        # sends it and the decoder insists.
                        (collection_info, info),
                        (lambda v: obj(v, ok=boolean), {**info, "hnsw": None}),
                        (boolean, 1)):
        with pytest.raises(DecodeError):
            decode(old)
    assert collection_info({**info, "hnsw": None})
    assert obj({"ok": True, "extra": 1}, ok=boolean)


@pytest.fixture
def client(daemon):
    return OriginalClient(daemon)


def test_health_is_ok_as_text(client, daemon):
    assert client.health() is True
    r = daemon.get("/health")
    assert r.body == "ok" and r.headers["content-type"].startswith("text/plain")
    # The version moved to a header; HEAD answers like GET without a body.
    assert r.headers["aidb-version"]
    h = daemon.request("HEAD", "/health")
    assert h.status == 200 and h.body == "" and h.headers["content-type"].startswith("text/plain")


def test_create_answers_ok_and_defaults_to_hnsw_16_200(client):
    assert client.create("docs", 4) is True
    info = client.info("docs")
    assert info["index"] == "hnsw" and info["metric"] == "cosine" and info["dim"] == 4
    assert info["hnsw"]["m"] == 16 and info["hnsw"]["ef_construction"] == 200
    assert info["len"] == 0 and info["wal_last_truncate"] is None
    assert client.create("tuned", 4, metric="euclidean", index="hnsw",
                         hnsw={"m": 8, "ef_construction": 64, "ef_search": 32}) is True
    tuned = client.info("tuned")
    assert tuned["hnsw"] == {"m": 8, "ef_construction": 64, "ef_search": 32}
    assert tuned["metric"] == "euclidean"
    # Only some of the HNSW parameters: the others keep the defaults.
    assert client.create("partial", 4, hnsw={"m": 12}) is True
    partial = client.info("partial")["hnsw"]
    assert partial["m"] == 12 and partial["ef_construction"] == 200


def test_bruteforce_is_the_exact_index(client, daemon):
    assert client.create("bf", 2, metric="euclidean", index="bruteforce") is True
    info = client.info("bf")
    assert info["index"] == "flat" and info["hnsw"] is None
    # "flat", our name for it, is the same configuration.
    assert client.create("bf", 2, metric="euclidean", index="flat") is True
    assert client.create("bf", 2, metric="euclidean", index="BruteForce") is True
    ids = [client.upsert("bf", [float(i), 0.0]) for i in range(5)]
    hits = client.search("bf", [3.0, 0.0], 1)
    assert [h["id"] for h in hits] == [ids[3]]


def test_create_again_with_the_same_configuration_changes_nothing(client, daemon):
    assert client.create("docs", 3, index="hnsw", hnsw={"m": 8, "ef_construction": 40}) is True
    pid = client.upsert("docs", [1, 2, 3], payload={"k": 1})
    client.update_params("docs", 55)
    before = client.info("docs")
    # The same request again, and equivalent spellings of it (defaults
    # spelled out or left out, metric case, ef_search, a search setting).
    assert client.create("docs", 3, index="hnsw", hnsw={"m": 8, "ef_construction": 40}) is True
    assert client.create("docs", 3, metric="COSINE", index="hnsw",
                         hnsw={"m": 8, "ef_construction": 40, "ef_search": 10}) is True
    r = daemon.post("/collections", {"name": "docs", "dim": 3, "hnsw": {"m": 8, "ef_construction": 40}})
    assert r.status == 200 and r.json() == {"ok": True}, r
    after = client.info("docs")
    assert after == before and after["len"] == 1 and after["hnsw"]["ef_search"] == 55
    assert daemon.get(f"/collections/docs/points/{pid}").json()["payload"] == {"k": 1}
    # The defaults count as given: HNSW 16/200 and cosine.
    assert client.create("plain", 3) is True
    assert client.create("plain", 3, index="hnsw", hnsw={"m": 16, "ef_construction": 200})


def test_create_with_another_configuration_is_409_naming_what_differs(client, daemon):
    assert client.create("docs", 3, index="hnsw", hnsw={"m": 8, "ef_construction": 40}) is True

    def conflict(body, *words):
        r = daemon.post("/collections", {"name": "docs", **body})
        assert r.status == 409, r
        msg = r.json()["error"]
        assert "docs" in msg and "already exists" in msg, msg
        for w in words:
            assert w in msg, (w, msg)
        return msg

    conflict({"dim": 4, "hnsw": {"m": 8, "ef_construction": 40}}, "dim 3 (requested 4)")
    conflict({"dim": 3, "metric": "euclidean", "hnsw": {"m": 8, "ef_construction": 40}},
             "metric cosine (requested euclidean)")
    conflict({"dim": 3, "index": "bruteforce"}, "index hnsw (requested flat)")
    conflict({"dim": 3}, "hnsw.m 8 (requested 16)", "hnsw.ef_construction 40 (requested 200)")
    msg = conflict({"dim": 5, "metric": "dot", "hnsw": {"m": 8, "ef_construction": 40}},
                   "dim 3 (requested 5)", "metric cosine (requested dot)")
    assert "hnsw.m" not in msg
    # Nothing changed.
    info = client.info("docs")
    assert info["dim"] == 3 and info["hnsw"]["m"] == 8 and info["metric"] == "cosine"


def test_wal_dir_must_name_the_data_dir(client, daemon, tmp_path):
    data = daemon.data_dir
    assert client.create("a", 2, wal_dir=data) is True
    assert client.create("b", 2, wal_dir=data + "/") is True
    # Relative to the working directory, as the original server took it
    # (aidbd runs in the test's working directory).
    assert client.create("c", 2, wal_dir=os.path.relpath(data)) is True
    assert client.create("d", 2, wal_dir=os.path.join(data, "x", "..")) is True
    os.symlink(data, tmp_path / "link")
    assert client.create("e", 2, wal_dir=str(tmp_path / "link")) is True
    # Repeating the create with the wal_dir is the original's reopen: fine.
    assert client.create("a", 2, wal_dir=data) is True

    elsewhere = tmp_path / "elsewhere"
    for bad in (str(elsewhere), "./data-somewhere-else", os.path.join(data, "a"),
                os.path.dirname(data), "/", ""):
        r = daemon.post("/collections", {"name": "f", "dim": 2, "wal_dir": bad})
        assert r.status == 400, (bad, r)
        msg = r.json()["error"]
        assert "wal_dir" in msg and "data directory" in msg and os.path.realpath(data) in msg, msg
    assert not elsewhere.exists()
    assert daemon.get("/collections/f").status == 404
    # A bad wal_dir is refused even for a collection that exists.
    r = daemon.post("/collections", {"name": "a", "dim": 2, "wal_dir": str(elsewhere)})
    assert r.status == 400, r
    assert sorted(c["name"] for c in client.list_collections()) == ["a", "b", "c", "d", "e"]


def test_collection_list_is_a_bare_array_of_infos(client, daemon):
    assert client.list_collections() == []
    client.create("beta", 2, index="bruteforce")
    client.create("alpha", 2)
    client.upsert("alpha", [1, 0])
    cols = client.list_collections()
    assert [c["name"] for c in cols] == ["alpha", "beta"]
    assert cols[0] == client.info("alpha") and cols[1] == client.info("beta")
    assert cols[0]["len"] == 1 and cols[0]["wal_size_bytes"] > 0
    assert cols[0]["wal_bytes_since_truncate"] > 0 and cols[0]["wal_last_truncate"] is None
    # The runbook's jq line: curl -s :8080/collections | jq '.[] | select(.wal_size_bytes > 1e9)'
    assert [c["name"] for c in cols if c["wal_size_bytes"] > 1e9] == []
    assert [c["name"] for c in cols if c["wal_size_bytes"] > 0] == ["alpha"]
    client.snapshot("alpha")
    info = client.info("alpha")
    assert info["wal_size_bytes"] == 0 and info["wal_last_truncate"].endswith("Z")
    r = daemon.get("/collections/missing")
    assert r.status == 404 and "error" in r.json()


def test_points_answer_bare_ids(client, daemon):
    client.create("docs", 3, metric="euclidean", index="bruteforce")
    pid = client.upsert("docs", [1, 2, 3], payload={"title": "hello"})
    fixed = str(uuid.uuid4())
    assert client.upsert("docs", [3, 2, 1], id=fixed) == fixed
    assert client.upsert("docs", [3, 2, 1.5], id=fixed.upper()) == fixed  # canonical form back
    r = daemon.request("PUT", "/collections/docs/points", body={"vector": [0, 0, 1]})
    assert r.status == 200 and uuid_string(r.json())
    ids = client.upsert_batch("docs", [{"vector": [0, 1, 0]},
                                       {"id": fixed, "vector": [3, 2, 2]},
                                       {"vector": [1, 1, 1], "payload": {"n": 1}}])
    assert len(ids) == 3 and ids[1] == fixed and len(set(ids)) == 3
    assert client.upsert_batch("docs", []) == []
    # "id": null and "payload": null, as a typed client of the original sends
    # its optionals, mean no id and no payload.
    r = daemon.post("/collections/docs/points", {"id": None, "vector": [5, 5, 5], "payload": None})
    assert r.status == 200 and uuid_string(r.json()) not in ids
    assert daemon.get(f"/collections/docs/points/{r.json()}").json()["payload"] is None
    assert client.info("docs")["len"] == 6
    assert pid not in ids


def test_integers_past_64_bits_are_read_as_doubles(client, daemon):
    # The original server's JSON reader took such integers as doubles;
    # simdjson alone refuses them. Python's json sends them digit for digit.
    big = 123456789012345678901234567890
    client.create("docs", 2, metric="euclidean", index="bruteforce")
    pid = client.upsert("docs", [1.0, 0.0], payload={"big": big, "n": 1})
    ids = client.upsert_batch("docs", [{"vector": [0.0, 1.0], "payload": {"big": -big}},
                                       {"vector": [0.5, 0.5], "payload": {"big": 2 ** 64}}])
    got = daemon.get(f"/collections/docs/points/{pid}").json()["payload"]
    assert got == {"big": float(big), "n": 1}
    assert daemon.get(f"/collections/docs/points/{ids[1]}").json()["payload"] == {
        "big": float(2 ** 64)}
    hits = client.search("docs", [0.0, 0.0], 3, filter={"big": big})
    assert [h["id"] for h in hits] == [pid]
    hits = client.search("docs", [0.0, 0.0], 3, filter={"big": -big})
    assert [h["id"] for h in hits] == [ids[0]]
    # Past the double range it is still an error, and nothing is written.
    r = daemon.request("POST", "/collections/docs/points",
                       raw=b'{"vector":[1,1],"payload":{"n":1e400}}',
                       headers={"Content-Type": "application/json"})
    assert r.status == 400 and "invalid JSON" in r.json()["error"], r
    assert client.info("docs")["len"] == 3


def test_delete_point_answers_true_then_false(client, daemon):
    client.create("docs", 2)
    pid = client.upsert("docs", [1, 0])
    assert client.delete("docs", pid) is True
    assert client.delete("docs", pid) is False
    assert client.delete("docs", str(uuid.uuid4())) is False
    assert client.info("docs")["len"] == 0
    r = daemon.delete(f"/collections/nope/points/{pid}")
    assert r.status == 404, r


@pytest.mark.parametrize("index", ["hnsw", "bruteforce"])
def test_search_and_batch_search(client, index):
    client.create("docs", 2, metric="euclidean", index=index)
    ids = client.upsert_batch("docs", [{"vector": [float(i), 0.0],
                                        "payload": {"i": i, "even": i % 2 == 0}}
                                       for i in range(10)])
    hits = client.search("docs", [4.0, 0.0], 3)
    assert len(hits) == 3 and hits[0]["id"] == ids[4] and hits[0]["payload"]["i"] == 4
    assert {h["id"] for h in hits} == {ids[3], ids[4], ids[5]}
    hits = client.search("docs", [4.0, 0.0], 1, filter={"even": False})
    assert [h["payload"]["i"] for h in hits] in ([3], [5])
    hits = client.search("docs", [7.0, 0.0], 2, filter={"i": 2})
    assert [h["id"] for h in hits] == [ids[2]]
    # The original's empty filter map means no filter.
    assert len(client.search("docs", [7.0, 0.0], 4, filter={})) == 4
    res = client.search_batch("docs", [[0.0, 0.0], [9.0, 0.0], [6.0, 0.0]], 1)
    assert [[h["id"] for h in q] for q in res] == [[ids[0]], [ids[9]], [ids[6]]]
    res = client.search_batch("docs", [[0.0, 0.0], [9.0, 0.0]], 2, filter={"even": True})
    assert [len(q) for q in res] == [2, 2]
    assert all(h["payload"]["even"] for q in res for h in q)
    assert res[0][0]["id"] == ids[0] and res[1][0]["id"] == ids[8]
    assert client.search_batch("docs", [], 3) == []


def test_compact_and_params_answer_bools(client, daemon):
    client.create("h", 2)
    client.create("bf", 2, index="bruteforce")
    for name in ("h", "bf"):
        pid = client.upsert(name, [1, 2])
        client.upsert(name, [2, 2])
        assert client.delete(name, pid) is True
    assert client.compact("h") is True
    assert client.compact("bf") is False
    assert client.info("h")["len"] == 1 and client.info("bf")["len"] == 1
    assert client.update_params("h", 128) is True
    assert client.info("h")["hnsw"]["ef_search"] == 128
    assert client.update_params("bf", 128) is False
    assert client.info("bf")["hnsw"] is None
    r = daemon.post("/collections/nope/compact")
    assert r.status == 404, r


def test_snapshot_keeps_its_object_answer(client, daemon):
    client.create("docs", 2)
    client.upsert("docs", [1, 2])
    snap = client.snapshot("docs")
    obj(snap, file=string, path=string, lsn=integer, size_bytes=integer, collection=string,
        wal_size_bytes=integer, wal_last_truncate=string)
    assert snap["wal_size_bytes"] == 0
    # The runbook's `curl -s -X POST :8080/collections/docs/snapshot`: no body.
    r = daemon.request("POST", "/collections/docs/snapshot")
    assert r.status == 200 and obj(r.json(), file=string)
    # Paths stay confined to the data dir (a documented difference).
    copy = client.snapshot("docs", path="backups/docs.snap")
    assert copy["copied_to"] == os.path.join(os.path.realpath(daemon.data_dir), "backups",
                                             "docs.snap")
    r = daemon.post("/collections/docs/snapshot", {"path": "/tmp/aidb-compat-outside.snap"})
    assert r.status == 400 and not os.path.exists("/tmp/aidb-compat-outside.snap")


def test_metrics_keep_the_original_wal_families(client, daemon):
    client.create("docs", 2)
    client.upsert("docs", [1, 2])
    r = daemon.get("/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
    for family in ("aidb_wal_size_bytes", "aidb_wal_seconds_since_truncate",
                   "aidb_wal_bytes_since_truncate"):
        assert f'{family}{{collection="docs"}}' in r.body, family


def test_a_session_of_the_original_desktop_app(client):
    """The requests the original desktop app makes, in its order."""
    assert client.health()
    assert client.create("notes", 3, metric="cosine", index="hnsw",
                         hnsw={"m": 16, "ef_construction": 200, "ef_search": 50})
    listed = client.list_collections()
    assert [c["name"] for c in listed] == ["notes"] and listed[0]["hnsw"]["ef_search"] == 50
    a = client.upsert("notes", [1, 0, 0], payload={"text": "a"})
    b, c = client.upsert_batch("notes", [{"vector": [0, 1, 0], "payload": {"text": "b"}},
                                         {"vector": [0, 0, 1]}])
    hits = client.search("notes", [0, 1, 0], 3)
    assert hits[0]["id"] == b and {h["id"] for h in hits} == {a, b, c}
    assert [h["payload"] for h in hits if h["id"] == c] == [None]
    assert client.update_params("notes", 64)
    assert client.delete("notes", a) is True
    assert client.compact("notes") is True
    assert client.info("notes")["len"] == 2
