"""Fixtures that run a real AIDB cluster on loopback: 3 Kafka brokers (KRaft,
started by scripts/kafka.sh in a temporary directory on free ports) and aidbd
nodes in cluster mode (--kafka, --node-id, --advertise, --replica-group), plus
one standalone aidbd to compare answers with.

The daemon wrapper (Daemon, Response) comes from tests/server/conftest.py; only
the Python standard library and pytest are used. Binaries come from
$AIDB_BUILD_DIR (set by run.sh) or $AIDBD.

Modules marked `disruptive` (faults: kill -9 of nodes and brokers, a node
leaving for good, one joining) run last, on the same session cluster.
"""
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")


def _load_server_helpers():
    spec = importlib.util.spec_from_file_location(
        "aidb_server_conftest", os.path.join(ROOT, "tests", "server", "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


server = _load_server_helpers()
Daemon = server.Daemon
Response = server.Response
AIDBD = server.AIDBD

# Longest wait of a session/strong read on the nodes under test.
CONSISTENCY_TIMEOUT_MS = 5000
# Replica group of node N (1-based): group 1 holds a full copy of every
# replication-2 collection on node2, group 0 splits the shards between node1
# and node3, so any one node may fail.
GROUPS = {1: 0, 2: 1, 3: 0}


def pytest_configure(config):
    config.addinivalue_line("markers", "disruptive: kills nodes or brokers; runs last")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda it: 1 if it.get_closest_marker("disruptive") else 0)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port_range(n=1):
    """A base port P such that P..P+n-1 are free on 127.0.0.1 right now, below
    the kernel's ephemeral range: the ports of fixed listeners (brokers, nodes
    with --advertise) must not be taken by some client's outgoing connection
    between this check and the server's bind."""
    import random
    lo = 20000
    hi = _ephemeral_range()[0] - n - 1
    if hi <= lo:
        lo, hi = 10000, 65000 - n
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        base = rng.randrange(lo, hi)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def free_port():
    return free_port_range(1)


class Kafka:
    """The 3 brokers of scripts/kafka.sh in a temporary directory."""

    def __init__(self, root, brokers=3):
        self.dir = os.path.join(root, "kafka")
        self.brokers = brokers
        for attempt in range(3):
            self.base_port = free_port_range(2 * brokers)
            out = subprocess.run(
                ["bash", KAFKA_SH, "up", "--brokers", str(brokers), "--dir", self.dir,
                 "--base-port", str(self.base_port)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
            if out.returncode == 0:
                break
            # A port taken between the check and the bind: new ports, new dir.
            self.down()
            if "Address already in use" not in out.stderr or attempt == 2:
                raise RuntimeError("kafka.sh up failed:\n" + out.stderr[-4000:])
            shutil.rmtree(self.dir, ignore_errors=True)
        self.bootstrap = out.stdout.strip().splitlines()[-1]

    def kill(self, i):
        subprocess.run(["bash", KAFKA_SH, "kill", str(i), "--dir", self.dir], check=True)

    def start(self, i):
        subprocess.run(["bash", KAFKA_SH, "start", str(i), "--dir", self.dir], check=True,
                       timeout=300)

    def down(self):
        subprocess.run(["bash", KAFKA_SH, "down", "--dir", self.dir], timeout=120)


class Node:
    """One aidbd in cluster mode; restartable on the same data dir and port."""

    def __init__(self, root, n, kafka, group, extra=()):
        self.n = n
        self.id = "node%d" % n
        self.group = group
        self.data_dir = os.path.join(root, self.id)
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.kafka = kafka
        self.extra = list(extra)
        self.daemon = None
        self.logs = []  # stderr of earlier runs
        self.start()

    def flags(self):
        return ["--listen", self.address, "--advertise", self.address,
                "--kafka", self.kafka.bootstrap, "--node-id", self.id,
                "--replica-group", str(self.group),
                "--consistency-timeout-ms", str(CONSISTENCY_TIMEOUT_MS), *self.extra]

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.daemon = Daemon(self.data_dir, *self.flags())
        return self

    def kill9(self):
        self.daemon.kill9()
        self.logs.append(self.daemon.log_text())

    def stop(self):
        rc = self.daemon.stop()
        self.logs.append(self.daemon.log_text())
        return rc

    def alive(self):
        return self.daemon is not None and self.daemon.alive()

    def log_text(self):
        return "\n".join(self.logs + [self.daemon.log_text() if self.daemon else ""])

    def request(self, *a, **kw):
        return self.daemon.request(*a, **kw)

    def get(self, path, **kw):
        return self.daemon.get(path, **kw)

    def post(self, path, body=None, **kw):
        return self.daemon.post(path, body, **kw)

    def delete(self, path, **kw):
        return self.daemon.delete(path, **kw)

    def __repr__(self):
        return "<%s %s group %d>" % (self.id, self.address, self.group)


class Cluster:
    def __init__(self, root, kafka):
        self.root = root
        self.kafka = kafka
        self.nodes = []

    def add_node(self, group, extra=()):
        n = len(self.nodes) + 1
        node = Node(self.root, n, self.kafka, group, extra)
        self.nodes.append(node)
        return node

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def wait_ready(self, timeout=90):
        """Until every live node lists every live node in GET /cluster."""
        want = {n.id for n in self.live()}
        last = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = True
            for node in self.live():
                try:
                    r = node.get("/cluster", timeout=10)
                except OSError as e:
                    ok, last = False, e
                    break
                if r.status != 200:
                    ok, last = False, r
                    break
                seen = {x["id"] for x in r.json().get("nodes", [])
                        if x.get("state", "up") not in ("down", "dead", "gone")}
                if not want <= seen:
                    ok, last = False, (node.id, sorted(seen))
                    break
            if ok:
                return
            time.sleep(0.3)
        raise AssertionError("cluster not ready: %r" % (last,))

    def shutdown(self):
        live = [n for n in self.nodes if n.alive()]
        for node in live:  # every node drains at the same time
            node.daemon.proc.send_signal(signal.SIGTERM)
        for node in live:
            try:
                node.daemon.proc.wait(60)
            except subprocess.TimeoutExpired:
                node.daemon.kill9()


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="aidb-cluster-tests-")
    yield d
    if os.environ.get("AIDB_CLUSTER_KEEP"):
        print("cluster test dir kept:", d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka(workdir):
    k = Kafka(workdir)
    yield k
    k.down()


@pytest.fixture(scope="session")
def cluster(workdir, kafka):
    c = Cluster(os.path.join(workdir, "nodes"), kafka)
    try:
        for n in (1, 2, 3):
            c.add_node(GROUPS[n])
        c.wait_ready()
    except BaseException:
        for node in c.nodes:
            if node.daemon and node.alive():
                print(node.id, "log:\n", node.daemon.log_text()[-4000:])
        c.shutdown()
        raise
    yield c
    if os.environ.get("AIDB_CLUSTER_KEEP"):
        for node in c.nodes:  # the nodes' stderr next to their data dirs
            with open(node.data_dir + ".log", "w") as f:
                f.write(node.log_text())
    try:
        c.shutdown()
    except Exception:  # a node that does not stop in time is killed
        for node in c.nodes:
            if node.daemon and node.daemon.proc.poll() is None:
                node.daemon.kill9()


@pytest.fixture(scope="session")
def nodes(cluster):
    return cluster.nodes[:3]


@pytest.fixture(scope="session")
def standalone(workdir):
    d = Daemon(os.path.join(workdir, "standalone"))
    yield d
    if d.alive():
        d.stop()


# ---------------------------------------------------------------- helpers

def unique(prefix):
    """A collection name unique to this test run (topics outlive collections)."""
    return "%s_%d_%d" % (prefix, os.getpid(), int(time.monotonic() * 1000) % 1000000)


def assert_error(r, status):
    assert r.status == status, r
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


def strong(path):
    sep = "&" if "?" in path else "?"
    return path + sep + "consistency=strong"


def write_token(r):
    """The write token of a write answer (header; also the JSON field when present)."""
    tok = r.headers.get("aidb-write-token")
    assert tok, "write answer without AIDB-Write-Token: %r" % (r,)
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "write_token" in body:
        assert body["write_token"] == tok, (body, tok)
    return tok


def parse_token(tok):
    name, _, rest = tok.rpartition(":")
    offs = {}
    for part in rest.split(","):
        p, _, o = part.partition("=")
        offs[int(p)] = int(o)
    return name, offs


def cluster_view(node):
    r = node.get("/cluster", timeout=10)
    assert r.status == 200, r
    return r.json()


def shards_of(view, collection):
    """{node id: sorted shard numbers of `collection` that node holds}."""
    out = {}
    for n in view["nodes"]:
        out[n["id"]] = sorted(s["shard"] for s in n.get("shards", [])
                              if s["collection"] == collection)
    return out


def wait_until(fn, timeout, what, interval=0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, AssertionError, KeyError, ValueError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def wait_caught_up(cluster, collection, shards, timeout=120):
    """Until every shard of `collection` has a live replica with lag 0 in every
    live node's GET /cluster view."""
    def check():
        for node in cluster.live():
            view = cluster_view(node)
            held = {}
            for n in view["nodes"]:
                for s in n.get("shards", []):
                    if s["collection"] == collection and s.get("lag", 1) == 0:
                        held.setdefault(s["shard"], []).append(n["id"])
            if set(held) != set(range(shards)):
                return False
        return True
    wait_until(check, timeout, "%s caught up on every node" % collection)


def unit(v):
    n = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / n for x in v]


def rand_vectors(rng, count, dim):
    return [[rng.uniform(-1.0, 1.0) for _ in range(dim)] for _ in range(count)]


class Load:
    """Writers and searchers running against the live nodes of a cluster, for
    the fault tests. Writers upsert client-chosen ids in batches (through
    random live nodes) and record which batches were acknowledged; searchers
    count answers and errors."""

    def __init__(self, cluster, collection, dim, rng, writers=2, searchers=2, batch=20):
        self.cluster = cluster
        self.collection = collection
        self.dim = dim
        self.rng = rng
        self.batch = batch
        self.acked = {}  # id -> vector
        self.unacked = {}  # id -> vector (error or no answer: may or may not be applied)
        self.tokens = []
        self.search_ok = 0
        self.search_err = []
        self.write_err = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seq = 0
        self.threads = ([threading.Thread(target=self._writer, args=(i,), daemon=True)
                         for i in range(writers)] +
                        [threading.Thread(target=self._searcher, args=(i,), daemon=True)
                         for i in range(searchers)])

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(60)

    def _node(self, k):
        live = self.cluster.live()
        return live[k % len(live)] if live else None

    def _writer(self, w):
        import random
        rng = random.Random(1000 + w)
        k = w
        while not self._stop.is_set():
            with self._lock:
                self._seq += 1
                seq = self._seq
            pts = []
            for j in range(self.batch):
                pid = "%08x-0000-4000-8000-%012x" % (w + 1, seq * 1000 + j)
                pts.append({"id": pid, "vector": [rng.uniform(-1, 1) for _ in range(self.dim)],
                            "payload": {"w": w, "seq": seq}})
            node = self._node(k)
            k += 1
            if node is None:
                time.sleep(0.1)
                continue
            try:
                r = node.post("/collections/%s/points:batch" % self.collection,
                              {"points": pts}, timeout=30)
                ok = r.status == 200
            except OSError as e:
                ok, r = False, e
            with self._lock:
                target = self.acked if ok else self.unacked
                for p in pts:
                    target[p["id"]] = p["vector"]
                if ok:
                    self.tokens.append(r.headers.get("aidb-write-token"))
                else:
                    self.write_err.append((node.id, repr(r)[:300]))
            if not ok:
                time.sleep(0.2)

    def _searcher(self, s):
        import random
        rng = random.Random(2000 + s)
        k = s
        while not self._stop.is_set():
            node = self._node(k)
            k += 1
            if node is None:
                time.sleep(0.1)
                continue
            body = {"vector": [rng.uniform(-1, 1) for _ in range(self.dim)], "top_k": 10}
            try:
                r = node.post("/collections/%s/search" % self.collection, body,
                              timeout=CONSISTENCY_TIMEOUT_MS / 1000 + 10)
                ok = r.status == 200
            except OSError as e:
                ok, r = False, e
            with self._lock:
                if ok:
                    self.search_ok += 1
                    ids = [h["id"] for h in r.json()["results"]]
                    if len(ids) != len(set(ids)):
                        self.search_err.append((node.id, "duplicate ids: %r" % ids))
                else:
                    self.search_err.append((node.id, repr(r)[:300]))
            time.sleep(0.02)

    def counts(self):
        with self._lock:
            return len(self.acked), self.search_ok, len(self.search_err)

    def write_errors_from(self, exclude=()):
        with self._lock:
            return [e for e in self.write_err if e[0] not in exclude]

    def errors_from(self, exclude=()):
        """Search errors of nodes other than `exclude` (ids of nodes killed on
        purpose, whose own in-flight requests may fail)."""
        with self._lock:
            return [e for e in self.search_err if e[0] not in exclude]
