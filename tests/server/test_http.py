"""HTTP-level robustness: limits, malformed and abusive clients, pipelining,
keep-alive, timeouts. After each abuse the daemon must still serve its data."""
import json
import socket
import threading
import time

from conftest import read_response, recv_all


def populate(d, name="docs", n=10, dim=4):
    assert d.post("/collections", {"name": name, "dim": dim, "index": "flat"}).status == 200
    pts = [{"vector": [float(i + 1)] + [1.0] * (dim - 1), "payload": {"i": i}} for i in range(n)]
    r = d.post(f"/collections/{name}/points:batch", {"points": pts})
    assert r.status == 200
    return r.json()


def assert_intact(d, name="docs", n=10):
    assert d.alive(), d.log_text()
    assert d.get("/health").status == 200
    assert d.get(f"/collections/{name}").json()["len"] == n


def json_error(resp, status):
    assert resp is not None
    assert resp.status == status, resp
    assert "error" in json.loads(resp.body)


def raw_exchange(d, data, timeout=10):
    s = d.connect(timeout)
    try:
        s.sendall(data)
        f = s.makefile("rb")
        return read_response(f)
    finally:
        s.close()


def test_keep_alive_and_pipelining(daemon):
    ids = populate(daemon)
    s = daemon.connect()
    f = s.makefile("rb")
    # Three requests in one write; the answers come back in order.
    reqs = b"".join([
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /collections/docs/points/" + ids[3].encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /collections/docs/search HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\n"
        b'{"vector":[1,1,1,1],"top_k":2}     ',
    ])
    s.sendall(reqs)
    r1, r2, r3 = read_response(f), read_response(f), read_response(f)
    assert r1.status == 200 and r1.body == "ok"
    assert r2.status == 200 and json.loads(r2.body)["id"] == ids[3]
    assert r3.status == 200 and len(json.loads(r3.body)["results"]) == 2
    assert r1.headers["connection"] == "keep-alive"
    # The same connection keeps serving, also byte by byte.
    for b in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n":
        s.send(bytes([b]))
    assert read_response(f).status == 200
    # Connection: close is honoured.
    s.sendall(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    r = read_response(f)
    assert r.status == 200 and r.headers["connection"] == "close"
    assert f.read() == b""
    s.close()
    assert_intact(daemon)


def test_http10_closes(daemon):
    s = daemon.connect()
    s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
    s.close()


def test_pipelined_error_stops_the_connection(daemon):
    populate(daemon)
    s = daemon.connect()
    f = s.makefile("rb")
    s.sendall(b"GET /health HTTP/1.1\r\n\r\nGARBAGE\x00\x01\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
    assert read_response(f).status == 200
    json_error(read_response(f), 400)
    assert f.read() == b""
    s.close()
    assert_intact(daemon)


def test_garbage_bytes(daemon):
    populate(daemon)
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
                 b"HELLO WORLD\r\n\r\n",
                 b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
                 b"POST /collections HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                 b"POST /collections HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"):
        json_error(raw_exchange(daemon, junk), 400)
    json_error(raw_exchange(daemon, b"GET /health HTTP/9.9\r\n\r\n"), 505)
    assert_intact(daemon)


def test_invalid_json_bodies(daemon):
    populate(daemon)
    for body in (b"{", b"[1,2", b'{"vector": [1,2,3,4]', b"\xff\xfe", b"nul", b"123",
                 b'"str"', b'{"vector": [1,2,3,4]} trailing', b"{'a': 1}"):
        r = daemon.request("POST", "/collections/docs/points", raw=body)
        json_error(r, 400)
        r = daemon.request("POST", "/collections/docs/search", raw=body)
        json_error(r, 400)
    assert_intact(daemon)


def test_body_size_limit(start_daemon):
    d = start_daemon("--max-body-bytes", "4096")
    populate(d, n=3)
    big = {"vector": [1.0] * 4, "payload": {"blob": "x" * 8000}}
    r = d.post("/collections/docs/points", big)
    json_error(r, 413)
    # Announced by Content-Length: refused before the body is read.
    r = raw_exchange(d, b"POST /collections/docs/points HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n")
    json_error(r, 413)
    # Chunked bodies are counted as they arrive.
    chunk = b"x" * 3000
    data = (b"POST /collections/docs/points HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
            (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"0\r\n\r\n")
    json_error(raw_exchange(d, data), 413)
    # Within the limit, chunked works.
    body = json.dumps({"vector": [1, 2, 3, 4]}).encode()
    data = (b"POST /collections/docs/points HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
            b"%x\r\n" % 5 + body[:5] + b"\r\n" + b"%x\r\n" % (len(body) - 5) + body[5:] +
            b"\r\n0\r\n\r\n")
    r = raw_exchange(d, data)
    assert r.status == 200, r
    assert_intact(d, n=4)
    assert d.stop() == 0


def test_header_size_limit(daemon):
    populate(daemon)
    r = raw_exchange(daemon, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    json_error(r, 431)
    r = raw_exchange(daemon, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
    json_error(r, 431)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(400))
    json_error(raw_exchange(daemon, b"GET /health HTTP/1.1\r\n" + many + b"\r\n"), 431)
    assert_intact(daemon)


def test_expect_100_continue(daemon):
    populate(daemon)
    s = daemon.connect()
    body = json.dumps({"vector": [1, 2, 3, 4]}).encode()
    s.sendall(b"POST /collections/docs/points HTTP/1.1\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    s.settimeout(10)
    interim = s.recv(1024)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    s.sendall(body)
    r = read_response(s.makefile("rb"))
    assert r.status == 200
    s.close()


def test_half_closed_client_gets_its_answers(daemon):
    ids = populate(daemon)
    s = daemon.connect()
    s.sendall(b"GET /collections/docs/points/" + ids[0].encode() + b" HTTP/1.1\r\n\r\n"
              b"GET /health HTTP/1.1\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = recv_all(s)
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == 2 and ids[0].encode() in data
    # Half-closed in the middle of a request: the connection is just closed.
    s = daemon.connect()
    s.sendall(b"POST /collections HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"na")
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    s.close()
    assert_intact(daemon)


def test_abrupt_disconnects(daemon):
    populate(daemon)
    for data in (b"POST /collections/docs/search HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{",
                 b"GET /metr", b"POST /collections/docs/points:batch HTTP/1.1\r\n"
                 b"Content-Length: 40\r\n\r\n" + b'{"points":[]}' + b" " * 27):
        s = daemon.connect()
        s.sendall(data)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    assert_intact(daemon)


def test_slow_client_times_out(start_daemon):
    d = start_daemon("--request-timeout-ms", "300", "--idle-timeout-ms", "600")
    populate(d)
    # Slowloris: headers trickle in and never end.
    s = d.connect()
    s.sendall(b"GET /health HTTP/1.1\r\nX-A: 1\r\n")
    for _ in range(3):
        time.sleep(0.1)
        try:
            s.sendall(b"X-B: 2\r\n")
        except OSError:
            break
    data = recv_all(s, timeout=10)
    s.close()
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b'"error"' in data
    # A body that never completes.
    s = d.connect()
    s.sendall(b"POST /collections/docs/search HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    data = recv_all(s, timeout=10)
    s.close()
    assert data.startswith(b"HTTP/1.1 408"), data
    # An idle keep-alive connection is closed without an answer.
    s = d.connect()
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    data = recv_all(s, timeout=10)
    s.close()
    assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1") == 1
    assert_intact(d)
    assert d.stop() == 0


def test_many_concurrent_connections(daemon):
    ids = populate(daemon)
    errors = []

    def worker(k):
        try:
            s = daemon.connect()
            f = s.makefile("rb")
            for j in range(20):
                body = json.dumps({"vector": [float(k % 10 + 1), 1, 1, 1], "top_k": 1}).encode()
                s.sendall(b"POST /collections/docs/search HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
                r = read_response(f)
                if r.status != 200 or json.loads(r.body)["results"][0]["id"] != ids[k % 10]:
                    errors.append(r)
            s.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert_intact(daemon)


def test_streamed_answer_then_more_requests_on_one_connection(daemon):
    ids = populate(daemon, n=10)
    s = daemon.connect()
    f = s.makefile("rb")
    s.sendall(b"GET /collections/docs/wal?from_lsn=0 HTTP/1.1\r\n\r\n"
              b"GET /collections/docs/points/" + ids[9].encode() + b" HTTP/1.1\r\n\r\n"
              b"HEAD /health HTTP/1.1\r\n\r\n"
              b"GET /collections/docs/wal?from_lsn=1 HTTP/1.1\r\n\r\n")
    r = read_response(f)
    assert r.status == 200 and r.headers["transfer-encoding"] == "chunked"
    lines = [json.loads(l) for l in r.body.splitlines()]
    assert len(lines) == 1 and len(lines[0]["points"]) == 10  # one batch record
    r = read_response(f)
    assert r.status == 200 and json.loads(r.body)["id"] == ids[9]
    # HEAD: headers only (Content-Length of the GET answer, no body).
    line = f.readline()
    assert line.startswith(b"HTTP/1.1 200")
    while f.readline() not in (b"\r\n", b""):
        pass
    r = read_response(f)
    assert r.status == 200 and len(r.body.splitlines()) == 1
    s.close()
    assert_intact(daemon)


def test_connection_limit(start_daemon):
    d = start_daemon("--max-connections", "3")
    held = [d.connect() for _ in range(3)]
    for s in held:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        assert read_response(s.makefile("rb")).status == 200
    extra = d.connect()
    extra.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    assert recv_all(extra) == b""  # closed without an answer
    extra.close()
    assert d.wait_log("event=too_many_connections")
    held.pop().close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the slot frees once the close is seen
        try:
            if d.get("/health").status == 200:
                break
        except (ConnectionError, OSError):
            time.sleep(0.05)
    else:
        raise AssertionError("no connection accepted after one closed")
    deadline = time.monotonic() + 10
    while True:  # a slot again, once the last close is seen
        try:
            assert refused_metric(d, "max_connections") >= 1
            break
        except (ConnectionError, OSError):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def refused_metric(d, reason):
    r = d.get("/metrics")
    assert r.status == 200, r
    for line in r.body.splitlines():
        if line.startswith(f'aidb_http_connections_refused_total{{reason="{reason}"}} '):
            return int(line.split()[-1])
    raise AssertionError("no aidb_http_connections_refused_total{reason=%r}" % reason)


def test_connection_limit_per_client_address(start_daemon):
    d = start_daemon("--max-connections-per-ip", "3")

    def connect(src):
        return socket.create_connection(d.addr, timeout=10, source_address=(src, 0))

    def health(s):
        s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        return read_response(s.makefile("rb")).status

    held = [connect("127.0.0.1") for _ in range(3)]
    for s in held:
        assert health(s) == 200
    # A fourth from the same address: closed at once, unanswered.
    extra = connect("127.0.0.1")
    extra.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    assert recv_all(extra) == b""
    extra.close()
    # Another client address (127.0.0.2 is loopback too) is not affected,
    # and the refusal is counted.
    other = [connect("127.0.0.2") for _ in range(3)]
    for s in other:
        assert health(s) == 200
    for s in other:
        s.close()
    with connect("127.0.0.3") as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        body = read_response(s.makefile("rb")).body
    assert 'aidb_http_connections_refused_total{reason="per_ip"} 1' in body, body[-600:]
    assert 'aidb_http_connections_refused_total{reason="max_connections"} 0' in body
    # Once one of the address's connections closes, it may open another.
    held.pop().close()
    deadline = time.monotonic() + 10
    while True:
        s = connect("127.0.0.1")
        try:
            if health(s) == 200:
                break
        except (OSError, AttributeError):
            pass
        finally:
            s.close()
        assert time.monotonic() < deadline, "no connection accepted after one closed"
        time.sleep(0.05)
    for s in held:
        assert health(s) == 200
        s.close()
    assert d.alive()


def test_connection_limit_per_client_address_is_off_by_default(start_daemon):
    d = start_daemon()
    held = [d.connect() for _ in range(40)]
    for s in held:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        assert read_response(s.makefile("rb")).status == 200
    for s in held:
        s.close()
    assert refused_metric(d, "per_ip") == 0
    for s in held:
        s.close()
    assert d.stop() == 0


def test_head_has_no_body(daemon):
    populate(daemon)
    s = daemon.connect()
    f = s.makefile("rb")
    s.sendall(b"HEAD /collections/docs HTTP/1.1\r\n\r\nHEAD /collections/docs/wal HTTP/1.1\r\n\r\n"
              b"GET /health HTTP/1.1\r\n\r\n")
    for _ in range(2):
        line = f.readline()
        assert line.startswith(b"HTTP/1.1 200"), line
        while f.readline() not in (b"\r\n", b""):
            pass
    r = read_response(f)
    assert r.status == 200 and r.body == "ok"
    s.close()


def test_connection_close_with_more_pipelined_input_still_delivers_the_answer(daemon):
    ids = populate(daemon)
    for _ in range(20):
        s = daemon.connect()
        s.sendall(b"GET /collections/docs/points/" + ids[1].encode() +
                  b" HTTP/1.1\r\nConnection: close\r\n\r\n" + b"GET /health HTTP/1.1\r\n\r\n" * 50)
        data = recv_all(s)
        s.close()
        assert data.count(b"HTTP/1.1 ") == 1, data[:200]
        body = data.split(b"\r\n\r\n", 1)[1]
        assert json.loads(body)["id"] == ids[1]
