"""Fixtures that run the real aidbd binary on an ephemeral loopback port.

Binaries come from $AIDB_BUILD_DIR (set by run.sh) or $AIDBD / $AIDB_CLI.
Only the Python standard library and pytest are used.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

BUILD_DIR = os.environ.get("AIDB_BUILD_DIR", "build")
AIDBD = os.environ.get("AIDBD") or os.path.join(BUILD_DIR, "src", "server", "aidbd")
AIDB_CLI = os.environ.get("AIDB_CLI") or os.path.join(BUILD_DIR, "src", "server", "aidb")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Daemon:
    """One aidbd process. Its stderr is collected line by line."""

    def __init__(self, data_dir, *extra, env=None, wrap=()):
        self.data_dir = str(data_dir)
        # `wrap`: a command that runs aidbd, e.g. ("prlimit", "--nofile=256:256").
        self.args = [*wrap, AIDBD, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                     *extra]
        full_env = dict(os.environ)
        full_env.pop("AIDB_API_KEY", None)
        if env:
            full_env.update(env)
        self.lines = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self.host = None
        self.port = None
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=full_env)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 30
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(2)
                raise RuntimeError("aidbd did not start:\n" + self.log_text())

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if "event=listening" in line and not self._listening.is_set():
                addr = line.split("addr=")[1].split()[0]
                host, port = addr.rsplit(":", 1)
                self.host, self.port = host, int(port)
                self._listening.set()

    def log_text(self):
        with self._lock:
            return "\n".join(self.lines)

    def wait_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            time.sleep(0.05)
        return False

    @property
    def addr(self):
        return (self.host, self.port)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=60):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                            payload.decode("utf-8", "replace"))
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def connect(self, timeout=10):
        s = socket.create_connection(self.addr, timeout=timeout)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("aidbd did not stop in time:\n" + self.log_text())
        self._reader.join(5)
        return rc

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)

    def alive(self):
        return self.proc.poll() is None


@pytest.fixture
def start_daemon(tmp_path):
    """Factory: start_daemon(*flags, data_dir=None, env=None, wrap=()) -> Daemon."""
    started = []

    def start(*extra, data_dir=None, env=None, wrap=()):
        d = Daemon(data_dir or (tmp_path / "data"), *extra, env=env, wrap=wrap)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.alive():
            d.kill9()


@pytest.fixture
def daemon(start_daemon):
    d = start_daemon()
    yield d
    assert d.alive(), "aidbd died during the test:\n" + d.log_text()
    rc = d.stop()
    assert rc == 0, "aidbd exited with %r:\n%s" % (rc, d.log_text())


def recv_all(sock, timeout=10):
    """Reads until the peer closes (or the timeout)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


def read_response(sock_file):
    """Reads one HTTP/1.1 response from a file made by sock.makefile('rb')."""
    status_line = sock_file.readline()
    if not status_line:
        return None
    parts = status_line.decode().split(" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        line = sock_file.readline().decode()
        if line in ("\r\n", "\n", ""):
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int(sock_file.readline().strip(), 16)
            if size == 0:
                sock_file.readline()
                break
            body += sock_file.read(size)
            sock_file.readline()
    else:
        body = sock_file.read(int(headers.get("content-length", "0")))
    return Response(status, headers, body.decode("utf-8", "replace"))
