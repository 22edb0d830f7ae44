#!/usr/bin/env python3
"""A snapshot exported into directories that did not exist survives a power cut.

    powerloss_export.py --shim libaidb_powerfs.so --rollback aidb_powerfs_rollback \
        --lib libaidb.so --dir DIR

A child process, under the powerfs shim, makes a database, takes a snapshot and
exports it with aidb_snapshot_export to <root>/exports/a/b/snap.aidb (three
directories made by the call), prints "exported" once the call has returned,
then cuts the power. After the rollback (unsynced data and directory entries
dropped) the exported file must be there, whole: aidb_snapshot_export
acknowledged it. Before the fix the new directories' entries were never synced
and the export vanished with them. Exits 1 on a mismatch.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys

CHILD = r'''
import ctypes, os, signal, sys, time, types
from ctypes import byref, c_void_p
# The binding's ctypes layer alone (its package needs numpy, this does not).
pkg = types.ModuleType("aidb")
pkg.__path__ = [sys.argv[2]]
sys.modules["aidb"] = pkg
from aidb import _capi as C
lib = C.lib
R = sys.argv[1]
err = c_void_p()
def check(rc, what):
    if rc != 0:
        msg = ctypes.string_at(err.value).decode() if err.value else ""
        sys.stderr.write("%s failed: %d %s\n" % (what, rc, msg))
        sys.exit(3)
db = c_void_p()
check(lib.aidb_db_open((R + "/db").encode(), None, byref(db), byref(err)), "open")
o = C.aidb_collection_options()
lib.aidb_collection_options_init(byref(o))
o.name = b"main"
o.dim = 4
check(lib.aidb_db_create_collection(db, byref(o), None, byref(err)), "create")
p = c_void_p()
check(lib.aidb_db_snapshot(db, b"main", byref(p), byref(err)), "snapshot")
snap = ctypes.string_at(p.value)
dest = R + "/exports/a/b/snap.aidb"
check(lib.aidb_snapshot_export(snap, dest.encode(), None, byref(err)), "export")
sys.stdout.write("exported %d\n" % os.path.getsize(dest))
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGUSR2)
time.sleep(10)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--rollback", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    pkg = os.path.join(here, "..", "..", "bindings", "python", "aidb")
    root = os.path.join(args.dir, "root")
    side = os.path.join(args.dir, "side")
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(root)
    os.makedirs(side)
    env = dict(os.environ, LD_PRELOAD=args.shim, AIDB_POWERFS_ROOT=root, AIDB_POWERFS_SIDE=side,
               AIDB_POWERFS_SIGNAL=str(int(signal.SIGUSR2)), AIDB_LIBRARY=args.lib)
    p = subprocess.run([sys.executable, "-c", CHILD, root, pkg], env=env, capture_output=True,
                       timeout=120, text=True)
    if p.returncode != -signal.SIGKILL or "exported" not in p.stdout:
        print("FAIL child ended with %s: %s %s" % (p.returncode, p.stdout, p.stderr[-800:]))
        return 1
    size = int(p.stdout.split()[1])
    r = subprocess.run([args.rollback, root, side, "drop", "1"], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL rollback: " + r.stdout + r.stderr)
        return 1
    dest = os.path.join(root, "exports", "a", "b", "snap.aidb")
    ok = os.path.isfile(dest) and os.path.getsize(dest) == size
    shutil.rmtree(args.dir, ignore_errors=True)
    if not ok:
        print("FAIL the acknowledged export %s did not survive the power cut" % dest)
        return 1
    print("powerloss_export: the exported snapshot (%d bytes) survived the cut" % size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
