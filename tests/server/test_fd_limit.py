"""aidbd and RLIMIT_NOFILE: it raises its soft limit to fit --max-connections,
and with a hard limit too low it serves fewer connections (refusing the extras
cleanly) instead of failing accept() with EMFILE (docs/operations.md, "File
descriptors"). aidbd runs under prlimit(1) with a soft limit of 256, the
common default being 1024, below the default --max-connections of 4096."""
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import time

import pytest

from conftest import AIDBD

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit(1)")


def client_fds(n):
    """Raises this test process's soft RLIMIT_NOFILE to n; False if it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return True
    if hard != resource.RLIM_INFINITY and hard < n:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    return True


def ask_health(sock):
    """GET /health on an open connection: the status, or None if the daemon
    closed the connection without an answer."""
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            b = sock.recv(4096)
            if not b:
                return None
            data += b
        return int(data.split(b" ", 2)[1])
    except (ConnectionResetError, BrokenPipeError):
        return None


def health(d):
    conn = http.client.HTTPConnection(d.host, d.port, timeout=30)
    try:
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def fd_limit_of(d):
    with open(f"/proc/{d.proc.pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


def test_soft_limit_is_raised_to_fit_max_connections(start_daemon):
    n = 1000
    if not client_fds(n + 200):
        pytest.skip("not enough file descriptors for the test client")
    d = start_daemon("--idle-timeout-ms", "60000", wrap=("prlimit", "--nofile=256:8192"))
    soft, hard = fd_limit_of(d)
    assert hard == 8192
    assert soft > 4096, soft  # the default --max-connections and a reserve
    assert "fd_limit_low" not in d.log_text()
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(d.addr, timeout=30))
        # Far past the old soft limit of 256: every connection is served,
        # and so is a new client.
        assert health(d) == 200
        for s in socks[-20:] + socks[:5]:
            assert ask_health(s) == 200
        assert health(d) == 200
    finally:
        for s in socks:
            s.close()
    assert "accept_failed" not in d.log_text(), d.log_text()
    assert d.alive()
    assert d.stop() == 0


def test_low_hard_limit_lowers_max_connections_and_refuses_extras(start_daemon):
    if not client_fds(1024):
        pytest.skip("not enough file descriptors for the test client")
    d = start_daemon(wrap=("prlimit", "--nofile=256:256"))
    assert d.wait_log("event=fd_limit_low")
    line = next(l for l in d.log_text().splitlines() if "event=fd_limit_low" in l)
    assert "hard_limit=256" in line and "max_connections_requested=4096" in line, line
    cap = int(re.search(r" max_connections=(\d+)", line).group(1))
    assert 16 <= cap < 256, line
    extra = 40
    socks = []
    try:
        for _ in range(cap + extra):
            socks.append(socket.create_connection(d.addr, timeout=30))
        statuses = [ask_health(s) for s in socks]
        served = statuses.count(200)
        refused = statuses.count(None)
        assert served + refused == len(socks), statuses
        # `cap` connections are served, the rest closed at once (not left
        # hanging, not failing accept() with EMFILE). Which ones depends on
        # the order the I/O loops adopt them in.
        assert served == cap, (served, cap)
        assert d.wait_log("event=too_many_connections")
        # Room again once some go away: a new client is served.
        for s in socks[:10]:
            s.close()
        socks = socks[10:]
        ok = False
        for _ in range(50):
            try:
                if health(d) == 200:
                    ok = True
                    break
            except (ConnectionError, http.client.HTTPException):
                pass
        assert ok, d.log_text()[-2000:]
    finally:
        for s in socks:
            s.close()
    assert "accept_failed" not in d.log_text()
    assert "Too many open files" not in d.log_text()
    assert d.alive()
    assert d.stop() == 0


def test_explicit_max_connections_above_the_hard_limit_refuses_to_start(tmp_path):
    r = subprocess.run(["prlimit", "--nofile=256:256", AIDBD, "--data-dir", str(tmp_path / "d"),
                        "--listen", "127.0.0.1:0", "--max-connections", "1000"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "event=fd_limit_too_low" in err, err
    assert "max_connections_requested=1000" in err and "hard_limit=256" in err, err
    assert "event=listening" not in err
    # What fits is accepted.
    ok = subprocess.Popen(["prlimit", "--nofile=256:256", AIDBD, "--data-dir",
                           str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                           "--max-connections", "50"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        for raw in ok.stderr:
            line = raw.decode()
            assert "fd_limit" not in line, line
            if "event=listening" in line:
                break
        else:
            raise AssertionError("aidbd did not start")
    finally:
        ok.terminate()
        ok.wait(60)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_connections_are_dropped_without_spinning(start_daemon):
    # The reserve is for a bounded number of files; past it (here: WALs of
    # more collections than fit), accept() itself fails with EMFILE. The
    # daemon must drop those clients, not spin on the listener or die, count
    # and log them (at most a line a second), and serve again once
    # descriptors free up.
    if not client_fds(1024):
        pytest.skip("not enough file descriptors for the test client")
    d = start_daemon("--durability", "none", wrap=("prlimit", "--nofile=256:256"))
    conn = http.client.HTTPConnection(d.host, d.port, timeout=30)  # kept open throughout
    # Idle connections whose descriptors are given back at the end (deleting
    # a collection needs a few itself).
    spare = [socket.create_connection(d.addr, timeout=10) for _ in range(8)]

    def call(method, path, body=None):
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read().decode()

    made = 0
    for i in range(400):
        status, body = call("POST", "/collections", {"name": f"c{i}", "dim": 4})
        if status != 200:
            assert "Too many open files" in body, (status, body)
            break
        made += 1
    else:
        raise AssertionError("400 collections fit in 256 descriptors")
    assert made > 50
    try:
        tries = 30
        answered = 0
        for _ in range(tries):
            try:
                with socket.create_connection(d.addr, timeout=10) as s:
                    answered += ask_health(s) == 200
            except OSError:
                pass  # refused or reset: dropped either way
        assert answered == 0
        cpu0 = cpu_seconds(d.proc.pid)
        time.sleep(2)
        # Idle while out of descriptors, not polling a listener it cannot
        # accept from (a spin would be about 2 s of CPU here).
        assert cpu_seconds(d.proc.pid) - cpu0 < 1.0
        assert d.alive()
        lines = [l for l in d.log_text().splitlines() if "event=accept_failed" in l]
        assert 1 <= len(lines) < tries, lines
        assert "too many open files" in lines[0] and "hint=" in lines[0], lines[0]
        # Free some descriptors: the keep-alive connection still works, new
        # clients are served again, and the dropped ones were counted.
        for s in spare:
            s.close()
        deadline = time.monotonic() + 30
        while call("DELETE", "/collections/c0")[0] != 200:  # once the closes are seen
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for i in range(1, 20):
            assert call("DELETE", f"/collections/c{i}")[0] == 200
        assert health(d) == 200
        status, body = call("GET", "/metrics")
        assert status == 200
        m = re.search(r'aidb_http_connections_refused_total\{reason="accept_failed"\} (\d+)', body)
        assert m and int(m.group(1)) >= tries, body[-800:]
    finally:
        conn.close()
    assert d.stop() == 0
