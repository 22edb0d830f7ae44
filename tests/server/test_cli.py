"""The aidb admin command on data directories written by aidbd."""
import json
import os
import subprocess

import pytest

from conftest import AIDB_CLI


def cli(*args):
    return subprocess.run([AIDB_CLI, *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def data_dir(start_daemon, tmp_path):
    d = start_daemon()
    assert d.post("/collections", {"name": "docs", "dim": 3, "index": "flat"}).status == 200
    assert d.post("/collections", {"name": "g", "dim": 2, "index": "hnsw"}).status == 200
    for i in range(4):
        assert d.post("/collections/docs/points", {"vector": [1, 2, i + 1]}).status == 200
    assert d.post("/collections/docs/snapshot").status == 200
    for i in range(3):
        assert d.post("/collections/docs/points",
                      {"vector": [3, 2, i + 1], "payload": {"after": i}}).status == 200
    assert d.stop() == 0
    return tmp_path / "data"


def test_usage_errors_exit_2():
    assert cli().returncode == 2
    assert cli("frobnicate").returncode == 2
    assert cli("info").returncode == 2
    assert cli("snapshot", "x").returncode == 2
    assert cli("restore", "x", "y").returncode == 2
    assert cli("wal-dump", "x").returncode == 2
    assert cli("wal-dump", "x", "y", "--from-lsn", "abc").returncode == 2
    assert cli("verify").returncode == 2
    r = cli("--help")
    assert r.returncode == 0 and "wal-dump" in r.stdout


def test_info(data_dir):
    r = cli("info", data_dir)
    assert r.returncode == 0, r.stderr
    assert "docs: dim=3" in r.stdout and "len=7" in r.stdout and "g: dim=2" in r.stdout
    r = cli("info", data_dir, "--json")
    info = {c["name"]: c for c in json.loads(r.stdout)}
    assert info["docs"]["len"] == 7 and len(info["docs"]["snapshots"]) == 1
    assert info["docs"]["snapshots"][0]["lsn"] == 4
    assert cli("info", data_dir / "missing").returncode == 1


def test_wal_dump(data_dir):
    r = cli("wal-dump", data_dir, "docs")
    assert r.returncode == 0, r.stderr
    lsns = [json.loads(l)["lsn"] for l in r.stdout.splitlines()]
    assert lsns == [5, 6, 7]  # the WAL since the checkpoint
    r = cli("wal-dump", data_dir, "docs", "--from-lsn", "7")
    assert [json.loads(l)["lsn"] for l in r.stdout.splitlines()] == [7]
    assert cli("wal-dump", data_dir, "nope").returncode == 1


def test_snapshot_and_restore(data_dir):
    r = cli("snapshot", data_dir, "docs")
    assert r.returncode == 0, r.stderr
    path = r.stdout.split()[0]
    assert os.path.isfile(path) and "lsn=7" in r.stdout
    assert cli("wal-dump", data_dir, "docs").stdout == ""
    assert cli("snapshot", data_dir, "nope").returncode == 1
    r = cli("restore", data_dir, "docs", os.path.basename(path))
    assert r.returncode == 0, r.stderr
    assert "len=7" in r.stdout
    r = cli("restore", data_dir, "docs", "missing.aidbsnap")
    assert r.returncode == 1 and r.stderr


def test_verify_finds_damage(data_dir):
    r = cli("verify", data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 problem(s)" in r.stdout
    wal = data_dir / "docs" / "wal.log"
    raw = bytearray(wal.read_bytes())
    assert len(raw) > 40
    raw[20] ^= 0xFF  # inside the first of three records
    wal.write_bytes(bytes(raw))
    r = cli("verify", data_dir)
    assert r.returncode == 1 and "FAIL" in r.stdout and "wal.log" in r.stdout
    raw[20] ^= 0xFF
    wal.write_bytes(bytes(raw))
    assert cli("verify", data_dir).returncode == 0
    # Zeros after the records (what a crash leaves of fsync mode's
    # preallocation) are no damage; a partial record is a torn tail.
    wal.write_bytes(bytes(raw) + bytes(65536))
    r = cli("verify", data_dir)
    assert r.returncode == 0 and "(preallocated zeros)" in r.stdout, r.stdout
    wal.write_bytes(bytes(raw) + bytes(raw[:40]))
    r = cli("verify", data_dir)
    assert r.returncode == 0 and "(torn tail)" in r.stdout, r.stdout
    wal.write_bytes(bytes(raw))
    snaps = sorted((data_dir / "docs" / "snapshots").iterdir())
    data = bytearray(snaps[0].read_bytes())
    data[len(data) // 2] ^= 0x55
    snaps[0].write_bytes(bytes(data))
    r = cli("verify", data_dir)
    assert r.returncode == 1 and "FAIL" in r.stdout and snaps[0].name in r.stdout
    assert cli("verify", data_dir / "missing").returncode == 1
