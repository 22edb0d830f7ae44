"""Daemon lifecycle: graceful shutdown, restart persistence, kill -9 mid-ingest,
clients during snapshots, /metrics (checked with promtool) and log lines."""
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import read_response


def create(d, name, dim, **extra):
    # FLAT unless told otherwise (the daemon's default is HNSW, as the original's).
    r = d.post("/collections", {"name": name, "dim": dim, "index": "flat", **extra})
    assert r.status == 200 and r.json() == {"ok": True}, r


def batch_upsert_in_flight(d):
    """Creates "docs" and starts a 3000-point batch upsert on a raw socket
    (returned, unread), so a request is in flight when the caller signals."""
    create(d, "docs", 64)
    pts = [{"vector": [random.random() for _ in range(64)]} for _ in range(3000)]
    body = json.dumps({"points": pts}).encode()
    s = d.connect(timeout=60)
    s.sendall(b"POST /collections/docs/points:batch HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    time.sleep(0.05)
    return s


def all_points(d, name, ids):
    out = {}
    for pid in ids:
        r = d.get(f"/collections/{name}/points/{pid}")
        assert r.status == 200, (pid, r)
        out[pid] = r.json()
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_gracefully(start_daemon, sig):
    d = start_daemon()
    create(d, "docs", 2)
    assert d.post("/collections/docs/points", {"vector": [1, 2]}).status == 200
    idle = d.connect()  # an idle keep-alive connection must not hold up shutdown
    idle.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    assert read_response(idle.makefile("rb")).status == 200
    assert d.stop(sig) == 0, d.log_text()
    log = d.log_text()
    assert "event=shutdown" in log and "event=drained" in log and "event=stopped exit_code=0" in log
    assert "loop_close_failed" not in log
    idle.close()


def test_shutdown_finishes_requests_in_flight(start_daemon):
    d = start_daemon()
    s = batch_upsert_in_flight(d)
    d.proc.send_signal(signal.SIGTERM)
    try:
        r = read_response(s.makefile("rb"))
    except ConnectionResetError:
        # Closed with part of the request still unread by the daemon: the
        # kernel resets such a connection instead of ending it (seen with
        # the slower TSan build). Unanswered, as an EOF.
        r = None
    s.close()
    assert d.stop() == 0, d.log_text()
    d2 = start_daemon()
    n = d2.get("/collections/docs").json()["len"]
    if r is not None:
        # Answered: then it was applied, fully.
        assert r.status == 200, r
        assert n == 3000
    else:
        # Closed unanswered only if it had not been read when the signal came.
        assert n == 0
    assert d2.stop() == 0


def test_restart_brings_everything_back(start_daemon):
    d = start_daemon()
    create(d, "flat", 3, metric="euclidean")
    create(d, "graph", 8, metric="cosine", index="hnsw", hnsw={"m": 8, "ef_construction": 40})
    rnd = random.Random(7)
    flat_ids = [d.post("/collections/flat/points",
                       {"vector": [rnd.random() for _ in range(3)], "payload": {"i": i}}).json()
                for i in range(30)]
    pts = [{"vector": [rnd.random() for _ in range(8)], "payload": {"g": i % 3}} for i in range(300)]
    graph_ids = d.post("/collections/graph/points:batch", {"points": pts}).json()
    # A checkpoint in the middle, then more writes, a delete and a param change.
    assert d.post("/collections/graph/snapshot").status == 200
    more = [{"vector": [rnd.random() for _ in range(8)]} for _ in range(50)]
    graph_ids += d.post("/collections/graph/points:batch", {"points": more}).json()
    assert d.delete(f"/collections/flat/points/{flat_ids[0]}").json() is True
    assert d.post("/collections/graph/params", {"ef_search": 99}).json() is True
    q = {"vector": [0.5] * 8, "top_k": 5, "filter": {"g": 1}}
    search_before = d.post("/collections/graph/search", q).json()
    flat_before = all_points(d, "flat", flat_ids[1:])
    info_before = {c["name"]: c for c in d.get("/collections").json()}
    assert d.stop() == 0

    d2 = start_daemon()
    info_after = {c["name"]: c for c in d2.get("/collections").json()}
    assert info_after["flat"]["len"] == 29 and info_after["graph"]["len"] == 350
    assert info_after["graph"]["hnsw"]["ef_search"] == 99
    assert info_after["graph"]["wal_last_lsn"] == info_before["graph"]["wal_last_lsn"]
    assert all_points(d2, "flat", flat_ids[1:]) == flat_before
    assert d2.get(f"/collections/flat/points/{flat_ids[0]}").status == 404
    assert d2.post("/collections/graph/search", q).json() == search_before
    all_points(d2, "graph", graph_ids)
    assert d2.stop() == 0


@pytest.mark.parametrize("durability", ["fsync", "batch", "none"])
def test_kill9_mid_ingest_keeps_every_acknowledged_write(start_daemon, durability):
    d = start_daemon("--durability", durability)
    create(d, "docs", 16)
    acked = []
    acked_lock = threading.Lock()
    stop = threading.Event()

    def writer(k):
        rnd = random.Random(k)
        conn_errors = 0
        while not stop.is_set():
            try:
                if k == 0:
                    pts = [{"vector": [rnd.random() for _ in range(16)], "payload": {"w": k}}
                           for _ in range(20)]
                    r = d.post("/collections/docs/points:batch", {"points": pts}, timeout=10)
                    if r.status == 200:
                        with acked_lock:
                            acked.extend(r.json())
                else:
                    r = d.post("/collections/docs/points",
                               {"vector": [rnd.random() for _ in range(16)]}, timeout=10)
                    if r.status == 200:
                        with acked_lock:
                            acked.append(r.json())
            except (OSError, ConnectionError, Exception):  # the daemon died under us
                conn_errors += 1
                if conn_errors > 3:
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with acked_lock:
            if len(acked) >= 300:
                break
        time.sleep(0.01)
    d.kill9()  # while the writers are still going
    stop.set()
    for t in threads:
        t.join()
    with acked_lock:
        ids = list(acked)
    assert len(ids) >= 300
    d2 = start_daemon()
    info = d2.get("/collections/docs").json()
    assert info["len"] >= len(set(ids))
    for pid in ids:
        assert d2.get(f"/collections/docs/points/{pid}").status == 200, pid
    assert d2.stop() == 0


def test_clients_during_snapshots(start_daemon):
    d = start_daemon()
    create(d, "docs", 32, metric="dot")
    create(d, "other", 4)
    rnd = random.Random(3)
    for _ in range(10):
        pts = [{"vector": [rnd.random() for _ in range(32)]} for _ in range(1000)]
        assert d.post("/collections/docs/points:batch", {"points": pts}).status == 200
    assert d.post("/collections/other/points", {"vector": [1, 2, 3, 4]}).status == 200
    errors = []
    written = []
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            r = d.post("/collections/docs/search", {"vector": [0.5] * 32, "top_k": 3})
            if r.status != 200 or len(r.json()["results"]) != 3:
                errors.append(r)
            r = d.post("/collections/other/search", {"vector": [1, 2, 3, 4], "top_k": 1})
            if r.status != 200:
                errors.append(r)

    def writer():
        while not stop.is_set():
            r = d.post("/collections/docs/points", {"vector": [rnd.random() for _ in range(32)]})
            if r.status != 200:
                errors.append(r)
            else:
                written.append(r.json())

    def health():
        while not stop.is_set():
            if d.get("/health").status != 200:
                errors.append("health")

    threads = [threading.Thread(target=f) for f in (searcher, searcher, writer, writer, health)]
    for t in threads:
        t.start()
    for _ in range(5):
        r = d.post("/collections/docs/snapshot")
        assert r.status == 200, r
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert written
    expected = 10000 + len(written)
    assert d.get("/collections/docs").json()["len"] == expected
    assert len(d.get("/collections/docs/snapshots").json()["snapshots"]) == 5
    assert d.stop() == 0
    d2 = start_daemon()
    assert d2.get("/collections/docs").json()["len"] == expected
    for pid in written:
        assert d2.get(f"/collections/docs/points/{pid}").status == 200
    assert d2.stop() == 0


def parse_metrics(text):
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_metrics_are_valid_prometheus_text(daemon):
    promtool = shutil.which("promtool")
    create(daemon, "docs", 2)
    create(daemon, "empty", 2)
    for i in range(5):
        assert daemon.post("/collections/docs/points", {"vector": [1, i]}).status == 200
    daemon.get("/collections/missing")
    daemon.get("/nope")
    # A request is counted once its answer has been written (its duration
    # runs to the last byte), so the client may read the answer a moment
    # before the counter moves, and a scrape on another I/O loop can come in
    # between: wait (bounded) until both 404s show.
    deadline = time.monotonic() + 10
    while True:
        r = daemon.get("/metrics")
        assert r.status == 200
        seen = ('route="unmatched",method="GET",status="404"' in r.body and
                'route="/collections/:name",method="GET",status="404"' in r.body)
        if seen or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=r.body.encode(),
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
    else:
        pytest.fail("promtool (Debian package prometheus) is not installed")
    m = parse_metrics(r.body)
    info = daemon.get("/collections/docs").json()
    assert m['aidb_wal_size_bytes{collection="docs"}'] == info["wal_size_bytes"] > 0
    assert m['aidb_collection_points{collection="docs"}'] == 5
    assert m['aidb_collection_points{collection="empty"}'] == 0
    since = m['aidb_wal_seconds_since_truncate{collection="docs"}']
    assert math.isfinite(since) and since >= 0
    assert m['aidb_http_requests_total{route="/collections/:name",method="GET",status="404"}'] == 1
    assert m['aidb_http_requests_total{route="unmatched",method="GET",status="404"}'] == 1
    assert m['aidb_http_requests_total{route="/collections/:name/points",method="POST",status="200"}'] == 5
    assert m['aidb_http_request_duration_seconds_count{route="/collections/:name/points"}'] == 5
    assert m['aidb_http_request_duration_seconds_bucket{route="/collections/:name/points",le="+Inf"}'] == 5
    assert "# TYPE aidb_http_request_duration_seconds histogram" in r.body
    # After a checkpoint the WAL gauge drops to zero and the clock restarts.
    assert daemon.post("/collections/docs/snapshot").status == 200
    m2 = parse_metrics(daemon.get("/metrics").body)
    assert m2['aidb_wal_size_bytes{collection="docs"}'] == 0
    assert m2['aidb_wal_seconds_since_truncate{collection="docs"}'] < 60
    assert daemon.wait_log("level=info target=aidb::storage event=wal_truncated collection=docs")


def test_log_lines_are_key_value(daemon):
    create(daemon, "docs", 2)
    assert daemon.post("/collections/docs/snapshot").status == 200
    assert daemon.wait_log("event=wal_truncated")
    for line in daemon.log_text().splitlines():
        assert re.match(r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warn|error) "
                        r"target=\S+ event=\w+( \w+=(\"[^\"]*\"|\S+))*$", line), line


def test_bad_flags_and_help(tmp_path):
    from conftest import AIDBD
    r = subprocess.run([AIDBD, "--help"], capture_output=True, timeout=30)
    assert r.returncode == 0
    for flag in (b"--data-dir", b"--listen", b"--api-key", b"--log-level", b"--max-body-bytes",
                 b"--durability", b"UV_THREADPOOL_SIZE"):
        assert flag in r.stdout
    for args in (["--bogus"], ["--listen", "nohost:abc"], ["--durability", "sometimes"],
                 ["--log-level", "loud"], ["--max-body-bytes", "-1"], ["--data-dir"]):
        r = subprocess.run([AIDBD, "--data-dir", str(tmp_path / "d"), *args],
                           capture_output=True, timeout=30)
        assert r.returncode == 2, (args, r.stderr)


def test_port_in_use_fails_cleanly(start_daemon, tmp_path):
    from conftest import AIDBD
    d = start_daemon()
    r = subprocess.run([AIDBD, "--data-dir", str(tmp_path / "other"), "--listen",
                        f"127.0.0.1:{d.port}"], capture_output=True, timeout=30)
    assert r.returncode == 1
    assert b"event=listen_failed" in r.stderr
    assert d.stop() == 0


def test_listening_line_at_every_log_level(start_daemon, tmp_path):
    for level in ("warn", "off"):
        d = start_daemon("--log-level", level, data_dir=tmp_path / level)
        assert d.get("/health").status == 200
        assert d.stop() == 0
        assert "event=listening" in d.log_text()
        assert "event=starting" not in d.log_text()


def test_repeated_signals_during_shutdown_do_not_kill_the_daemon(start_daemon):
    # A second SIGTERM (an impatient supervisor, or a test's stop()) used to
    # arrive after the signal handles were closed and kill aidbd (-15) while
    # it flushed the WALs.
    d = start_daemon()
    s = batch_upsert_in_flight(d)
    # Signals back to back until the process is gone, so one lands in the
    # window between the drain and the exit; at most 10 s of them (under ASan
    # the leak check at exit runs under ptrace, where every ignored signal
    # still stops the process: an endless storm would starve it).
    deadline = time.monotonic() + 10
    while d.proc.poll() is None and time.monotonic() < deadline:
        try:
            os.kill(d.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            break
    s.close()
    assert d.stop() == 0, d.log_text()


def search_counters(d):
    m = parse_metrics(d.get("/metrics").body)
    return (m["aidb_http_searches_on_loop_total"],
            {r: m[f'aidb_http_searches_deferred_total{{reason="{r}"}}']
             for r in ("shape", "busy", "payload")})


def test_short_searches_run_on_the_loop_and_the_others_on_the_pool(start_daemon):
    # One I/O loop: what runs on it must be short and never wait; filtered,
    # exact, FLAT and wide searches go to the thread pool, with the same answers.
    d = start_daemon("--io-threads", "1")
    create(d, "h", 8, index="hnsw", metric="euclidean", hnsw={"ef_search": 200})
    create(d, "f", 8, metric="euclidean")
    rnd = random.Random(5)
    pts = [{"vector": [rnd.random() for _ in range(8)], "payload": {"i": i}} for i in range(200)]
    for name in ("h", "f"):
        assert d.post(f"/collections/{name}/points:batch", {"points": pts}).status == 200
    q = {"vector": pts[17]["vector"], "top_k": 5}
    d.post("/collections/h/search", q)  # opens the cached handle (first use: pool)
    loop0, deferred0 = search_counters(d)

    on_loop = d.post("/collections/h/search", q).json()["results"]
    loop1, deferred1 = search_counters(d)
    assert loop1 == loop0 + 1 and deferred1 == deferred0
    assert on_loop[0]["payload"] == {"i": 17} and len(on_loop) == 5

    pooled = [
        d.post("/collections/h/search", {**q, "filter": {"must": []}}).json()["results"],
        d.post("/collections/h/search", {**q, "exact": True}).json()["results"],
        d.post("/collections/f/search", q).json()["results"],
        d.post("/collections/h/search", {**q, "ef_search": 100000}).json()["results"],
        # A body too large to parse on the loop (whitespace is valid JSON).
        d.post("/collections/h/search",
               raw=json.dumps(q).encode() + b" " * (300 << 10)).json()["results"],
    ]
    loop2, deferred2 = search_counters(d)
    assert loop2 == loop1
    assert deferred2["shape"] == deferred1["shape"] + 5
    for n, res in enumerate(pooled):  # the same points (ids differ in "f")
        assert [h["payload"] for h in res] == [h["payload"] for h in on_loop], (n, res, on_loop)

    # Bad input is answered on the loop too, with the same errors.
    r = d.post("/collections/h/search", {"vector": [1, 2, 3], "top_k": 5})
    assert r.status == 400 and "dimension" in r.json()["error"]
    r = d.post("/collections/h/search", {"vector": [1, 2, 3, 4, 5, 6, 7, "x"]})
    assert r.status == 400
    assert search_counters(d)[0] == loop2 + 2
    assert d.stop() == 0


def test_searches_on_one_loop_while_writers_hold_the_locks(start_daemon):
    # Compaction, restore and upserts take the collection's locks exclusively:
    # a search on the loop then must not wait there (it goes to the pool), and
    # /health and the searches keep being answered, correctly.
    d = start_daemon("--io-threads", "1")
    create(d, "docs", 16, index="hnsw", metric="euclidean")
    rnd = random.Random(9)
    base = [[rnd.random() for _ in range(16)] for _ in range(3000)]
    r = d.post("/collections/docs/points:batch", {"points": [{"vector": v} for v in base]})
    ids = r.json()
    assert d.post("/collections/docs/snapshot").status == 200
    snap = d.get("/collections/docs/snapshots").json()["snapshots"][-1]["file"]
    errors = []
    searches = []  # whether each search found the point it was made from
    stop = threading.Event()

    def searcher(seed):
        rs = random.Random(seed)
        while not stop.is_set():
            i = rs.randrange(len(base))
            r = d.post("/collections/docs/search",
                       {"vector": base[i], "top_k": 3, "ef_search": 100})
            if r.status != 200:
                errors.append(("search", r.status, r.body[:200]))
            else:
                searches.append(ids[i] in [h["id"] for h in r.json()["results"]])

    def health():
        while not stop.is_set():
            r = d.get("/health")
            if r.status != 200:
                errors.append(("health", r.status))

    def writer():
        while not stop.is_set():
            r = d.post("/collections/docs/points:batch",
                       {"points": [{"vector": [rnd.random() for _ in range(16)]}
                                   for _ in range(100)]})
            if r.status != 200:
                errors.append(("upsert", r.status))
                continue
            new = r.json()
            for pid in new[:50]:
                # 404: a restore in between took the collection back to the snapshot.
                if d.delete(f"/collections/docs/points/{pid}").status not in (200, 404):
                    errors.append(("delete", pid))

    threads = [threading.Thread(target=f, args=a) for f, a in
               ((searcher, (1,)), (searcher, (2,)), (health, ()), (writer, ()))]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            assert d.post("/collections/docs/compact").status == 200
            r = d.post("/collections/docs/restore", {"snapshot": snap})
            assert r.status == 200, r
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    # HNSW is approximate, and compaction under concurrent inserts may leave
    # a rare node poorly linked: a few misses, not many.
    misses = searches.count(False)
    assert searches and misses <= max(2, len(searches) // 100), (misses, len(searches))
    on_loop, deferred = search_counters(d)
    assert on_loop > 0
    print(f"searches on the loop {on_loop:.0f}, deferred {deferred}")
    assert d.stop() == 0
