"""aidbd and RLIMIT_NOFILE: it raises its soft limit to fit --max-connections,
and with a hard limit too low it serves fewer connections (refusing the extras
cleanly) instead of failing accept() with EMFILE (docs/operations.md, "File
descriptors"). aidbd runs under prlimit(1) with a soft limit of 256, the
common default being 1024, below the default --max-connections of 4096."""
import http.client
import re
import resource
import shutil
import socket
import subprocess

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
