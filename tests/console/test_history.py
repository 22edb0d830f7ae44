"""GET /collections/:name/history, the ring buffer behind the console's
charts, over plain HTTP (no browser)."""
import importlib.util
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "aidb_server_conftest_history", os.path.join(HERE, "..", "server", "conftest.py"))
server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(server)


def wait_for(cond, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_history(tmp_path):
    d = server.Daemon(tmp_path / "data", "--history-interval-ms", "200")
    try:
        assert d.post("/collections", {"name": "h", "dim": 2, "index": "flat"}).status == 200
        # A new collection has a sample at once (taken on demand if the
        # sampler has not been round yet).
        r = d.get("/collections/h/history")
        assert r.status == 200, r
        j = r.json()
        assert j["collection"] == "h" and j["capacity"] == 360 and j["interval_seconds"] == 0.2
        assert len(j["samples"]) >= 1
        s = j["samples"][-1]
        assert set(s) == {"time", "unix_ms", "points", "wal_size_bytes",
                          "wal_bytes_since_truncate", "wal_last_lsn"}
        assert s["time"].endswith("Z") and s["points"] == 0

        pts = [{"vector": [i, 1], "payload": {"i": i}} for i in range(20)]
        assert d.post("/collections/h/points:batch", {"points": pts}).status == 200
        info = d.get("/collections/h").json()
        # The sampler picks the writes up within an interval or so.
        j = wait_for(lambda: (lambda j: j if j["samples"][-1]["points"] == 20 else None)(
            d.get("/collections/h/history").json()), "a sample with 20 points")
        last = j["samples"][-1]
        assert last["wal_size_bytes"] == info["wal_size_bytes"] > 0
        assert last["wal_last_lsn"] == info["wal_last_lsn"]
        times = [s["unix_ms"] for s in j["samples"]]
        assert times == sorted(times)

        # A snapshot's answer comes after its sample: WAL 0 at once.
        assert d.post("/collections/h/snapshot", {}).status == 200
        last = d.get("/collections/h/history").json()["samples"][-1]
        assert last["wal_size_bytes"] == 0 and last["wal_bytes_since_truncate"] == 0
        assert last["points"] == 20

        # Dropped and created again: a fresh history.
        assert d.delete("/collections/h").status == 200
        assert d.get("/collections/h/history").status == 404
        assert d.post("/collections", {"name": "h", "dim": 2, "index": "flat"}).status == 200
        assert all(s["points"] == 0 for s in d.get("/collections/h/history").json()["samples"])

        r = d.post("/collections/h/history", {})
        assert r.status == 405 and r.headers["allow"] == "GET"
        assert d.get("/collections/nope/history").json()["error"] == "collection 'nope' not found"
    finally:
        assert d.stop() == 0, d.log_text()
