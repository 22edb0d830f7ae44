"""The daemon as an attacker would try it (issue 14, part 3), against the real
aidbd on loopback: the API key on every route (pipelined and chunked too),
snapshot/restore path confinement, and resource exhaustion (idle
connections, slowloris, huge top_k / batches / nesting / dimensions /
Content-Length) while a healthy client keeps being served.

Answer shapes change with issue 11, so these tests assert status codes and
side effects (files on disk), rarely bodies. Timings and memory are measured
and PRINTED (run with -s to see them); pass/fail only on correctness and on
generous bounds (every healthy request succeeds, RSS below a GiB cap)."""
import json
import os
import re
import resource
import socket
import statistics
import threading
import time

import pytest

from conftest import read_response, recv_all

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEY = "k3y-0123456789abcdef"
AUTH = {"api-key": KEY}
PID = "00000000-0000-4000-8000-000000000001"
RSS_CAP_MIB = 3 * 1024


# --- helpers ------------------------------------------------------------------

def http(method, path, body=b"", headers=(), version="HTTP/1.1", chunked=False):
    """One raw request as bytes."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}", "Host: x", *headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        parts = [body[i:i + 5] for i in range(0, len(body), 5)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    else:
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def exchange(d, data, timeout=30):
    """Sends raw bytes, half-closes, returns the status codes of every answer."""
    s = d.connect(timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        blob = recv_all(s, timeout)
    finally:
        s.close()
    # Bodies do not end in CRLF: an answer's status line follows the last one's body.
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Za-z -]*\r\n", blob)]


def rss_mib(d, field="VmRSS"):
    """aidbd's resident memory now (VmHWM: its peak so far), in MiB."""
    with open(f"/proc/{d.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mib(d):
    return rss_mib(d, "VmHWM")


def make(d, name, dim=4, headers=None, **extra):
    r = d.post("/collections", {"name": name, "dim": dim, **extra}, headers=headers)
    assert r.status in (200, 201), r


def fill(d, name, n, dim=4, headers=None):
    pts = [{"vector": [float(i % 7), float(i), 1.0, 2.0][:dim] + [0.5] * max(0, dim - 4),
            "payload": {"i": i}} for i in range(n)]
    r = d.post(f"/collections/{name}/points:batch", {"points": pts}, headers=headers)
    assert r.status == 200, r


class HealthyClient:
    """A concurrent client doing health checks and small searches on one
    keep-alive connection (a new one when closed); records latencies."""

    def __init__(self, d, coll, headers=None):
        self.d, self.coll, self.headers = d, coll, dict(headers or {})
        self.lat, self.errors = [], []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        import http.client
        conn = None
        i = 0
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.d.host, self.d.port, timeout=60)
                t0 = time.monotonic()
                if i % 2:
                    conn.request("GET", "/health")
                else:
                    conn.request("POST", f"/collections/{self.coll}/search",
                                 body=json.dumps({"vector": [1, 2, 3, 4], "top_k": 3}),
                                 headers={"Content-Type": "application/json", **self.headers})
                r = conn.getresponse()
                r.read()
                self.lat.append(time.monotonic() - t0)
                if r.status != 200:
                    self.errors.append(r.status)
            except Exception as e:  # noqa: BLE001 -- recorded, asserted below
                self.errors.append(repr(e))
                conn = None
            i += 1
            time.sleep(0.01)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(120)

    def report(self, what):
        lat = sorted(self.lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        print(f"\n[security] {what}: healthy client {len(lat)} requests, "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {len(self.errors)}")
        assert self.lat, "the healthy client got no answer at all"
        assert not self.errors, self.errors[:5]


def raise_fd_limit(n):
    """Raises this process's soft RLIMIT_NOFILE (daemons started after
    inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


# The daemons started by these tests inherit it: room for the idle-connection test.
raise_fd_limit(4096)


# --- API key --------------------------------------------------------------------

def route_table():
    """(label, methods) of every route in src/server/api.cc's MatchRoute."""
    with open(os.path.join(ROOT, "src", "server", "api.cc")) as f:
        src = f.read()
    routes = re.findall(r'pick\("([^"]+)",\s*"([^"]+)"', src)
    assert len(routes) >= 15, routes
    return [(label, [m.strip() for m in methods.split(",")]) for label, methods in routes]


def concrete(label):
    return label.replace(":name", "sec").replace(":id", PID)


def every_request():
    out = []
    for label, methods in route_table():
        if label == "/health":
            continue
        for m in methods + (["HEAD"] if "GET" in methods else []):
            out.append((m, concrete(label)))
    # Paths that match no route and methods that match none: refused before
    # they can tell what exists.
    out += [("GET", "/nope"), ("GET", "/collections/sec/nope"), ("PUT", "/metrics"),
            ("GET", "/health/../collections"), ("GET", "/collections/../health"),
            ("GET", "/%68ealth/x"), ("OPTIONS", "/collections"), ("GET", "/collections/")]
    return out


@pytest.fixture
def keyed(start_daemon):
    d = start_daemon("--api-key", KEY)
    make(d, "sec", headers=AUTH)
    fill(d, "sec", 5, headers=AUTH)
    yield d
    assert d.alive(), d.log_text()


def test_every_route_but_health_needs_the_key(keyed):
    reqs = every_request()
    bad_keys = [{}, {"api-key": ""}, {"api-key": "wrong"}, {"api-key": KEY[:-1]},
                {"api-key": KEY + "x"}, {"api-key": "X" + KEY[1:]}, {"api-key": KEY[:-1] + "X"},
                {"api-key": KEY.upper()}, {"Authorization": "Bearer wrong"},
                {"Authorization": "Basic " + KEY}, {"Authorization": KEY},
                {"Authorization": "Bearer"}, {"Authorization": "Bearer  "}]
    for method, path in reqs:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        for hdrs in bad_keys:
            r = keyed.request(method, path, body=body, headers=hdrs)
            assert r.status == 401, (method, path, hdrs, r)
            if method != "HEAD":
                assert "www-authenticate" in r.headers
    # /health alone is open, and the console's static files (no data).
    assert keyed.get("/health").status == 200
    assert keyed.request("HEAD", "/health").status == 200
    assert keyed.get("/console/").status == 200
    # With the key, nothing answers 401 (header or bearer token).
    for method, path in reqs:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        for hdrs in (AUTH, {"Authorization": "Bearer " + KEY}, {"API-KEY": KEY}):
            if method == "DELETE" and path == "/collections/sec":
                continue  # keeps the collection for the others
            r = keyed.request(method, path, body=body, headers=hdrs)
            assert r.status != 401, (method, path, hdrs, r)


def test_key_is_checked_per_request_on_a_pipelined_connection(keyed):
    good = [f"api-key: {KEY}"]
    ok = http("GET", "/collections/sec", headers=good)
    bad = http("GET", "/collections/sec")
    wrong = http("GET", "/collections/sec", headers=["api-key: " + KEY[:-1] + "!"])
    up = http("POST", "/collections/sec/points", {"vector": [9, 9, 9, 9]})
    # An authorised request does not authorise the connection.
    assert exchange(keyed, ok + bad + ok + wrong + up + ok) == [200, 401, 200, 401, 401, 200]
    # Nor does a refused one poison it.
    assert exchange(keyed, bad + ok) == [401, 200]
    # The second request's key in the first one's body: still one request each.
    smuggle = http("POST", "/collections/sec/search", ok.decode())
    assert exchange(keyed, smuggle + bad) == [401, 401]
    # HTTP/1.0, a NUL after the key, the key split over two header lines.
    assert exchange(keyed, http("GET", "/collections", version="HTTP/1.0")) == [401]
    assert exchange(keyed, http("GET", "/collections", headers=[f"api-key: {KEY}\x00"])) \
        in ([400], [401])
    assert exchange(keyed, http("GET", "/collections", headers=[f"api-key: {KEY[:5]}",
                                                                 f"api-key: {KEY[5:]}"])) == [401]
    # Whitespace around a field value is not part of it (RFC 9110, 5.5).
    assert exchange(keyed, http("GET", "/collections", headers=[f"api-key: {KEY} \t"])) == [200]
    assert exchange(keyed, http("GET", "/collections",
                                headers=[f"Authorization: Bearer {KEY} "])) == [200]
    assert exchange(keyed, http("GET", "/collections", headers=["Authorization: Bearer \t"])) \
        == [401]


def test_key_is_checked_with_chunked_bodies(keyed):
    body = {"vector": [7, 7, 7, 7]}
    assert exchange(keyed, http("POST", "/collections/sec/points", body, chunked=True)) == [401]
    # The key in a trailer (after the chunks) does not count either.
    raw = (b"POST /collections/sec/points HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Trailer: api-key\r\n\r\n" + b"%x\r\n" % len(json.dumps(body)) +
           json.dumps(body).encode() + b"\r\n0\r\napi-key: " + KEY.encode() + b"\r\n\r\n")
    assert exchange(keyed, raw) == [401]
    with_key = http("POST", "/collections/sec/points", body, headers=[f"api-key: {KEY}"],
                    chunked=True)
    assert exchange(keyed, with_key + http("POST", "/collections/sec/points", body,
                                           chunked=True) + with_key) == [200, 401, 200]
    # Exactly two of the points went in.
    r = keyed.get("/collections/sec", headers=AUTH)
    assert r.status == 200 and r.json()["len"] == 7


def test_pipelined_requests_split_at_every_offset(keyed):
    """The framing does not depend on how the bytes arrive: the same
    pipelined requests (chunked with the key, one without, one with a
    Content-Length) split into two reads at every offset get the same
    answers. (fuzz/http_fuzz.cc does this with random bytes.)"""
    body = {"vector": [1, 2, 3, 4], "top_k": 2}
    seq = (http("POST", "/collections/sec/search", body, headers=[f"api-key: {KEY}"],
                chunked=True)
           + http("GET", "/collections/sec")
           + http("POST", "/collections/sec/search", body, headers=[f"Authorization: Bearer {KEY}"]))
    assert exchange(keyed, seq) == [200, 401, 200]
    for k in range(1, len(seq)):
        s = keyed.connect(timeout=30)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(seq[:k])
            time.sleep(0.002)
            s.sendall(seq[k:])
            s.shutdown(socket.SHUT_WR)
            blob = recv_all(s, 30)
        finally:
            s.close()
        got = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Za-z -]*\r\n", blob)]
        assert got == [200, 401, 200], (k, seq[:k][-20:], blob[:200])


def test_key_comparison_timing_is_reported(keyed):
    """Reports (never asserts) the latency of wrong keys that differ at the
    first vs the last byte. The constant-time property itself is shown by
    construction in tests/server/unit (ctest -R ConstantTimeEquals)."""
    def measure(key, n=300):
        s = keyed.connect()
        f = s.makefile("rb")
        req = http("GET", "/collections/sec", headers=[f"api-key: {key}"])
        out = []
        try:
            for _ in range(n):
                t0 = time.perf_counter_ns()
                s.sendall(req)
                r = read_response(f)
                out.append(time.perf_counter_ns() - t0)
                assert r.status == 401
        finally:
            f.close()
            s.close()
        return statistics.median(out) / 1000

    first = "X" + KEY[1:]
    last = KEY[:-1] + "X"
    a, b = measure(first), measure(last)
    print(f"\n[security] wrong key, median latency: differs at byte 0 {a:.1f} us, "
          f"at the last byte {b:.1f} us (report only)")


# --- path confinement ---------------------------------------------------------------

@pytest.fixture
def snapd(start_daemon, tmp_path):
    d = start_daemon()
    make(d, "docs", dim=2)
    make(d, "other", dim=2)
    for c in ("docs", "other"):
        r = d.post(f"/collections/{c}/points:batch",
                   {"points": [{"vector": [1.0, float(i)]} for i in range(3)]})
        assert r.status == 200, r
    outside = tmp_path / "outside"
    outside.mkdir()
    d.outside = outside
    yield d
    assert d.alive(), d.log_text()


def snapshot(d, path, coll="docs"):
    return d.post(f"/collections/{coll}/snapshot", {"path": path})


def restore(d, snap, coll="docs"):
    return d.post(f"/collections/{coll}/restore", {"snapshot": snap})


def outside_untouched(d, *names):
    assert sorted(os.listdir(d.outside)) == sorted(names), os.listdir(d.outside)


def test_symlinked_directory_to_outside_is_refused(snapd):
    os.symlink(str(snapd.outside), os.path.join(snapd.data_dir, "escape"))
    for p in ("escape/x.snap", "escape/sub/x.snap", os.path.join(snapd.data_dir, "escape/x.snap")):
        assert snapshot(snapd, p).status == 400, p
    outside_untouched(snapd)


def test_symlinked_file_to_outside_is_neither_written_nor_read(snapd):
    d = snapd
    # A valid snapshot outside, reached through a link inside the data dir.
    r = snapshot(d, "good.snap")
    assert r.status == 200, r
    os.rename(os.path.join(d.data_dir, "good.snap"), d.outside / "good.snap")
    os.symlink(str(d.outside / "good.snap"), os.path.join(d.data_dir, "link.snap"))
    assert restore(d, "./link.snap").status == 400
    assert restore(d, os.path.join(d.data_dir, "link.snap")).status == 400
    # ... also from the collection's own snapshots folder, by bare name.
    snaps = os.path.join(d.data_dir, "docs", "snapshots")
    os.makedirs(snaps, exist_ok=True)
    os.symlink(str(d.outside / "good.snap"), os.path.join(snaps, "inner.aidbsnap"))
    assert restore(d, "inner.aidbsnap").status == 400
    # Writing through a dangling link, or through the export's temporary file.
    os.symlink(str(d.outside / "new.snap"), os.path.join(d.data_dir, "dangling.snap"))
    snapshot(d, "dangling.snap")
    os.symlink(str(d.outside / "tmp.snap"), os.path.join(d.data_dir, "t.snap.tmp"))
    snapshot(d, "t.snap")
    outside_untouched(d, "good.snap")
    # A symlink created after the file was checked once is checked again.
    assert snapshot(d, "later.snap").status == 200
    os.remove(os.path.join(d.data_dir, "later.snap"))
    os.symlink(str(d.outside / "good.snap"), os.path.join(d.data_dir, "later.snap"))
    assert restore(d, "./later.snap").status == 400
    assert d.get("/collections/docs").json()["len"] == 3


def test_symlinks_inside_the_data_dir_are_refused_too(snapd):
    # Snapshot paths are opened with openat2(RESOLVE_BENEATH |
    # RESOLVE_NO_SYMLINKS) relative to the data dir (src/server/confined.h):
    # the open itself refuses any symlink on the way, so one swapped in after
    # the checks cannot lead out. Hence also a link that stays inside.
    d = snapd
    assert snapshot(d, "real/a.snap").status == 200
    os.symlink(os.path.join(d.data_dir, "real"), os.path.join(d.data_dir, "alias"))
    os.mkdir(os.path.join(d.data_dir, "links"))
    os.symlink(os.path.join(d.data_dir, "real", "a.snap"),
               os.path.join(d.data_dir, "links", "b.snap"))
    for p in ("alias/c.snap", "links/b.snap", "alias/deeper/c.snap"):
        r = snapshot(d, p)
        assert r.status == 400 and "symlink" in r.json()["error"], (p, r)
    for p in ("alias/a.snap", "links/b.snap", os.path.join(d.data_dir, "links", "b.snap")):
        r = restore(d, p)
        assert r.status == 400 and "symlink" in r.json()["error"], (p, r)
    assert sorted(os.listdir(os.path.join(d.data_dir, "real"))) == ["a.snap"]
    assert restore(d, "real/a.snap").status == 200
    outside_untouched(d)


def test_export_answers_name_the_real_path(snapd):
    # The library is handed /proc/self/fd/N paths; clients never see them.
    d = snapd
    r = snapshot(d, "x/y/z.snap")
    assert r.status == 200, r
    j = r.json()
    want = os.path.join(os.path.realpath(d.data_dir), "x", "y", "z.snap")
    assert j["copied_to"] == want and j["path"] == want and j["file"] == "z.snap", j
    assert os.path.isfile(want)
    assert not os.path.exists(want + ".tmp")
    r = restore(d, "x/y/missing.snap")
    assert r.status == 404 and "/proc/" not in r.body, r
    with open(os.path.join(d.data_dir, "x", "bad.snap"), "wb") as f:
        f.write(b"not a snapshot")
    r = restore(d, "x/bad.snap")
    assert r.status >= 400 and "/proc/" not in r.body, r
    # A file where a folder is needed.
    r = snapshot(d, "x/y/z.snap/w.snap")
    assert r.status == 400 and "/proc/" not in r.body, r


DOTDOT = [
    "../x.snap", "../../x.snap", "a/../../x.snap", "./../x.snap", "a/./../../x.snap",
    "..", "../", "a/..", "..//x.snap", "a//..//..//x.snap",
    "%2e%2e/x.snap", "%2E%2E%2Fx.snap", "..%2fx.snap", "%2e%2e%2f%2e%2e%2fx.snap",
    "%252e%252e/x.snap", "..\\x.snap", "..\\..\\x.snap", "a\\..\\..\\x.snap",
    "\u2024\u2024/x.snap", "\uff0e\uff0e/x.snap", "\u2025/x.snap", "\uff0e\uff0e\uff0fx.snap",
    "..\u2215x.snap", "..\uff0fx.snap", "\u002e\u002e/x.snap",
    "/../x.snap", "//x.snap", "///etc/x.snap",
]


@pytest.mark.parametrize("path", DOTDOT)
def test_dotdot_in_every_encoding_is_refused(snapd, path):
    d = snapd
    before = sorted(os.listdir(d.data_dir))
    r = snapshot(d, path)
    assert r.status == 400, (path, r)
    r = restore(d, path)
    assert r.status in (400, 404), (path, r)
    # Nothing was written anywhere: not outside, not as odd names inside.
    assert sorted(os.listdir(d.data_dir)) == before
    assert not os.path.exists(os.path.join(os.path.dirname(d.data_dir), "x.snap"))
    outside_untouched(d)


def test_overlong_utf8_and_raw_bytes_are_refused(snapd):
    d = snapd
    for raw in (b"\xc0\xae\xc0\xae/x.snap", b"\xe0\x80\xae\xe0\x80\xae/x.snap",
                b"\xc0\xaf", b"a\x00b", b"..\xc0\xafx.snap", b"\xff\xfe"):
        body = b'{"path":"' + raw + b'"}'
        r = d.request("POST", "/collections/docs/snapshot", raw=body,
                      headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r)
        body = b'{"snapshot":"' + raw + b'"}'
        r = d.request("POST", "/collections/docs/restore", raw=body,
                      headers={"Content-Type": "application/json"})
        assert r.status in (400, 404), (raw, r)
    # The same as JSON escapes (valid UTF-8 of the decoded look-alikes).
    for esc in ("\\u00c0\\u00ae\\u00c0\\u00ae/x.snap", "\\u0000", ".\\u002e/x.snap"):
        body = ('{"path":"' + esc + '"}').encode()
        r = d.request("POST", "/collections/docs/snapshot", raw=body,
                      headers={"Content-Type": "application/json"})
        assert r.status == 400, (esc, r)


def test_collection_names_in_urls_cannot_traverse(snapd):
    d = snapd
    for name in ("..", "%2e%2e", "%2E%2e", "..%2f..%2fetc", "%2e%2e%2fdocs", "docs%00",
                 "%c0%ae%c0%ae", "docs%2f..", ".", "%ef%bc%8e%ef%bc%8e"):
        for method, route, body in (("POST", "snapshot", {}), ("POST", "restore", {"snapshot": "x"}),
                                    ("GET", "snapshots", None)):
            r = d.request(method, f"/collections/{name}/{route}", body=body)
            assert r.status in (400, 404), (name, route, r)
    assert exchange(d, http("GET", "/collections/../../etc/passwd")) == [404]


def test_very_long_paths_are_refused(snapd):
    d = snapd
    for p in ("a" * 300 + ".snap", "/".join(["a"] * 2000) + "/x.snap",
              "/".join(["b" * 200] * 30) + "/x.snap", "x" * 100000):
        before = sorted(os.listdir(d.data_dir))
        assert snapshot(d, p).status == 400, p[:50]
        assert restore(d, p).status in (400, 404), p[:50]
        assert sorted(os.listdir(d.data_dir)) == before
    # A reasonable nested path still works.
    assert snapshot(d, "backups/2026/11/one.snap").status == 200


def test_snapshots_of_another_collection_are_refused(snapd):
    d = snapd
    r = d.post("/collections/other/snapshot")
    assert r.status == 200, r
    snaps = d.get("/collections/other/snapshots").json()["snapshots"]
    theirs = snaps[-1]
    # By bare name: looked up in docs' own folder only.
    assert restore(d, theirs["file"]).status == 404
    # By path into the other collection's folder, relative or absolute.
    rel = os.path.relpath(theirs["path"], d.data_dir)
    for p in (rel, "./" + rel, theirs["path"], "docs/../" + rel, "docs/snapshots/../../" + rel):
        assert restore(d, p).status in (400, 404), p
    # Writing into any collection's folder.
    for p in ("other/x.snap", "other/snapshots/x.aidbsnap", "docs/snapshots/x.aidbsnap",
              os.path.join(d.data_dir, "other", "wal.log")):
        assert snapshot(d, p).status == 400, p
    assert d.get("/collections/docs").json()["len"] == 3
    # Their own snapshot, by name and by path, still restores.
    mine = d.post("/collections/docs/snapshot").json()
    assert restore(d, mine["file"]).status == 200
    assert restore(d, mine["path"]).status == 200


# --- resource exhaustion ----------------------------------------------------------

# The memory-heavy attacks measure aidbd's bounds on the release build (the
# server suite). Under a sanitizer (tests/reliability/run.sh tsan-daemon and
# asan-daemon set AIDB_SANITIZER) memory and speed are several times larger and
# those bounds mean nothing, so they are left out there; the cheap attacks
# (idle connections, slowloris, nesting, pipelining) still run.
heavy = pytest.mark.skipif(bool(os.environ.get("AIDB_SANITIZER")),
                           reason="memory bounds are measured on the release build")

@pytest.fixture
def busy(start_daemon):
    d = start_daemon("--request-timeout-ms", "3000", "--idle-timeout-ms", "20000")
    make(d, "h")
    fill(d, "h", 50)
    yield d
    assert d.alive(), d.log_text()


def test_many_idle_connections(busy):
    d = busy
    n = 2000
    if raise_fd_limit(n + 200) < n + 100:
        pytest.skip("not enough file descriptors for the test client")
    rss0 = rss_mib(d)
    socks = []
    with HealthyClient(d, "h") as hc:
        for i in range(n):
            try:
                socks.append(socket.create_connection(d.addr, timeout=30))
            except OSError as e:
                print(f"\n[security] connection {i} failed: {e!r}")
                break
        time.sleep(1.0)
        assert d.get("/health").status == 200
        rss1 = rss_mib(d)
        # Each also sends half a request line: held, not answered.
        for s in socks[: n // 4]:
            s.sendall(b"GET /hea")
        assert d.get("/collections/h").status == 200
        time.sleep(0.5)
    print(f"\n[security] {len(socks)} idle connections: aidbd RSS {rss0:.0f} -> {rss1:.0f} MiB")
    hc.report(f"{len(socks)} idle connections")
    assert len(socks) >= n * 0.9
    assert rss1 < RSS_CAP_MIB
    for s in socks:
        s.close()
    assert d.get("/health").status == 200


def test_slowloris_headers_time_out(busy):
    d = busy
    slow = []
    for _ in range(50):
        s = d.connect(timeout=60)
        s.sendall(b"G")
        slow.append(s)
    t0 = time.monotonic()
    answers = {}
    payload = b"ET /health HTTP/1.1\r\nX-Slow: " + b"a" * 1000
    with HealthyClient(d, "h") as hc:
        for i in range(len(payload)):
            alive = [s for s in slow if s not in answers]
            if not alive:
                break
            for s in alive:
                try:
                    s.sendall(payload[i:i + 1])
                except OSError:
                    answers[s] = b"(closed)"
            time.sleep(0.25)  # about 4 bytes a second per connection
            for s in alive:
                s.settimeout(0.001)
                try:
                    got = s.recv(4096)
                    answers[s] = got or b"(closed)"
                except (socket.timeout, BlockingIOError):
                    pass
                except OSError:
                    answers[s] = b"(reset)"
            if time.monotonic() - t0 > 120:
                break
    took = time.monotonic() - t0
    print(f"\n[security] slowloris: {len(answers)}/{len(slow)} cut off after {took:.1f} s "
          f"(request timeout 3 s); first answer {next(iter(answers.values()), b'')[:40]!r}")
    hc.report("50 slowloris connections")
    # Every slow connection was cut off by the daemon (408 or closed), long
    # before the 1 KB header was complete.
    assert len(answers) == len(slow)
    for a in answers.values():
        assert a.startswith(b"HTTP/1.1 408") or a in (b"(closed)", b"(reset)"), a[:80]
    for s in slow:
        s.close()


@heavy
def test_huge_top_k_and_search_knobs(busy):
    d = busy
    with HealthyClient(d, "h") as hc:
        for k in (10**9, 2**32, 2**64, -1, 1e300, "10", None, [1]):
            r = d.post("/collections/h/search", {"vector": [1, 2, 3, 4], "top_k": k})
            assert r.status == 400, (k, r)
        r = d.post("/collections/h/search", {"vector": [1, 2, 3, 4], "top_k": 100000})
        assert r.status == 200, r
        for ef in (10**12, -5):
            r = d.post("/collections/h/search", {"vector": [1, 2, 3, 4], "ef_search": ef})
            assert r.status in (200, 400), r
    print(f"\n[security] huge top_k: aidbd peak RSS {peak_mib(d):.0f} MiB")
    hc.report("huge top_k")


@heavy
def test_huge_batches_are_bounded(busy):
    d = busy
    rss0 = rss_mib(d)
    with HealthyClient(d, "h") as hc:
        # Hits requested by one batch: refused beyond the one-search maximum.
        q = [[1, 2, 3, 4]] * 20000
        r = d.post("/collections/h/search:batch", {"queries": q, "top_k": 100000})
        assert r.status == 400, r
        r = d.post("/collections/h/search:batch", {"queries": q[:1000], "top_k": 10})
        assert r.status == 200, r
        # Upserts: at most 100,000 points a batch, whatever fits in the body.
        big = b'{"points":[' + b",".join([b'{"vector":[1,2,3,4]}'] * 2_500_000) + b"]}"
        assert len(big) < 64 << 20
        r = d.request("POST", "/collections/h/points:batch", raw=big,
                      headers={"Content-Type": "application/json"}, timeout=300)
        assert r.status == 400, r
        ok = b'{"points":[' + b",".join([b'{"vector":[1,2,3,4]}'] * 100_000) + b"]}"
        r = d.request("POST", "/collections/h/points:batch", raw=ok,
                      headers={"Content-Type": "application/json"}, timeout=300)
        assert r.status == 200, r
        # Search batches: the body's queries are bounded by the hit cap too.
        many = b'{"top_k":1,"queries":[' + b",".join([b"[1,2,3,4]"] * 3_000_000) + b"]}"
        r = d.request("POST", "/collections/h/search:batch", raw=many,
                      headers={"Content-Type": "application/json"}, timeout=300)
        assert r.status == 400, r
    print(f"\n[security] huge batches: aidbd RSS {rss0:.0f} -> peak {peak_mib(d):.0f} MiB, "
          f"after {rss_mib(d):.0f} MiB")
    hc.report("huge batches")
    assert peak_mib(d) < RSS_CAP_MIB


def test_deeply_nested_filter_json(busy):
    d = busy
    with HealthyClient(d, "h") as hc:
        for depth in (100, 1000, 10000, 200000):
            nested = "[" * depth + "]" * depth
            body = '{"vector":[1,2,3,4],"filter":' + nested + "}"
            r = d.request("POST", "/collections/h/search", raw=body.encode(),
                          headers={"Content-Type": "application/json"})
            assert r.status == 400, (depth, r)
            levels = depth // 2 if depth < 5000 else 2500
            f = ('{"must":[' * levels + '{"key":"i","match":{"value":1}}' + "]}" * levels)
            r = d.request("POST", "/collections/h/search", raw=(
                '{"vector":[1,2,3,4],"filter":' + f + "}").encode(),
                headers={"Content-Type": "application/json"})
            assert r.status in (200, 400), (depth, r)
            obj = '{"a":' * depth + "1" + "}" * depth
            r = d.request("POST", "/collections/h/points", raw=(
                '{"vector":[1,2,3,4],"payload":' + obj + "}").encode(),
                headers={"Content-Type": "application/json"})
            assert r.status in (200, 400), (depth, r)
    print(f"\n[security] deeply nested JSON: aidbd peak RSS {peak_mib(d):.0f} MiB")
    hc.report("deeply nested JSON")


@heavy
def test_64k_dimension_vectors(busy):
    d = busy
    with HealthyClient(d, "h") as hc:
        make(d, "wide", dim=65536)
        v = [0.5] * 65536
        r = d.post("/collections/wide/points", {"vector": v})
        assert r.status == 200, r
        r = d.post("/collections/wide/search", {"vector": v, "top_k": 1})
        assert r.status == 200, r
        r = d.post("/collections/wide/search:batch", {"queries": [v] * 50, "top_k": 1})
        assert r.status == 200, r
        assert d.post("/collections", {"name": "wider", "dim": 65537}).status == 400
        assert d.post("/collections", {"name": "wider", "dim": 2**40}).status == 400
        # Wrong sizes, huge and tiny.
        assert d.post("/collections/wide/points", {"vector": v + [1.0]}).status == 400
        assert d.post("/collections/h/search", {"vector": v}).status == 400
        r = d.request("POST", "/collections/h/search",
                      raw=b'{"vector":[' + b",".join([b"1"] * 5_000_000) + b"]}",
                      headers={"Content-Type": "application/json"})
        assert r.status == 400, r
    print(f"\n[security] 64k-dimension vectors: aidbd peak RSS {peak_mib(d):.0f} MiB")
    hc.report("64k-dimension vectors")
    assert peak_mib(d) < RSS_CAP_MIB


@heavy
def test_huge_content_length_and_chunk_sizes(busy):
    d = busy
    with HealthyClient(d, "h") as hc:
        for cl in (b"99999999999999999", b"18446744073709551615", b"18446744073709551616",
                   b"-1", b"1e9", b"67108865"):
            s = d.connect()
            s.sendall(b"POST /collections/h/points HTTP/1.1\r\nContent-Length: " + cl +
                      b"\r\n\r\n{")
            blob = recv_all(s, 30)
            s.close()
            assert re.match(rb"HTTP/1\.1 (413|400) ", blob), (cl, blob[:80])
        # Chunked: a chunk announcing more than the limit is refused once the
        # limit is crossed (never allocated up front).
        for size in (b"ffffffffffffffff", b"4000001", b"fffffffffffffffff"):
            s = d.connect()
            s.sendall(b"POST /collections/h/points HTTP/1.1\r\nTransfer-Encoding: chunked"
                      b"\r\n\r\n" + size + b"\r\n" + b"x" * 100000)
            blob = recv_all(s, 30)
            s.close()
            assert re.match(rb"HTTP/1\.1 (413|400) ", blob), (size, blob[:80])
        # Many small chunks past the limit.
        s = d.connect()
        s.sendall(b"POST /collections/h/points HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                s.sendall(b"".join([b"8000\r\n" + b"y" * 0x8000 + b"\r\n"] * 20))
        except OSError:
            pass
        blob = recv_all(s, 30)
        s.close()
        assert blob.startswith(b"HTTP/1.1 413 "), blob[:80]
        # Headers: many, and long.
        many = b"".join(b"X-%d: y\r\n" % i for i in range(5000))
        assert exchange(d, b"GET /health HTTP/1.1\r\n" + many + b"\r\n") == [431]
        assert exchange(d, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n") == [431]
    print(f"\n[security] huge Content-Length: aidbd peak RSS {peak_mib(d):.0f} MiB")
    hc.report("huge Content-Length")
    assert peak_mib(d) < RSS_CAP_MIB


def test_many_pipelined_requests_in_one_write(busy):
    d = busy
    rss0 = rss_mib(d)
    with HealthyClient(d, "h") as hc:
        s = d.connect(timeout=60)
        req = http("GET", "/health")
        sent = 0
        s.setblocking(False)
        t0 = time.monotonic()
        # The client never reads until it has written 20 MB: the daemon stops
        # reading while its answers are not taken (back-pressure), so the
        # write stalls instead of the daemon buffering everything.
        blob = req * 20000
        while sent < len(blob) * 10 and time.monotonic() - t0 < 20:
            try:
                sent += s.send(blob)
            except BlockingIOError:
                time.sleep(0.05)
                if time.monotonic() - t0 > 5:
                    break
            except OSError:
                break  # the daemon gave up on a client that does not read
        rss1 = rss_mib(d)
        s.close()
    print(f"\n[security] pipelining flood: wrote {sent >> 20} MiB before back-pressure; "
          f"aidbd RSS {rss0:.0f} -> {rss1:.0f} MiB")
    hc.report("pipelining flood")
    assert rss1 < RSS_CAP_MIB
    assert d.get("/health").status == 200
