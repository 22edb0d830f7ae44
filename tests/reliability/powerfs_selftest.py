#!/usr/bin/env python3
"""Checks the power-loss model itself, so the loops cannot pass vacuously.

    powerfs_selftest.py --shim libaidb_powerfs.so --rollback aidb_powerfs_rollback --dir DIR

A child Python process runs a fixed script of file operations under the
powerfs shim (synced and unsynced appends, overwrites, truncates, creates,
unlinks, renames over a file, directories made and removed) and then cuts
the power; after the rollback every file must be in exactly the state the
model promises, for each variant. A cut at an operation count must stop the
script at that operation. Exits 1 on any mismatch.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys

CHILD = r'''
import os, signal, sys, time
R = sys.argv[1]
def put(p, data, sync=False, flags=os.O_WRONLY | os.O_CREAT):
    fd = os.open(p, flags, 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)
def dsync(p):
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
put(R + "/append", b"-unsynced-tail" * 100, flags=os.O_WRONLY | os.O_APPEND)
put(R + "/durable", b"kept", sync=True)
put(R + "/gone", b"g", sync=True)
dsync(R)                                           # entries so far are durable
os.unlink(R + "/gone")
dsync(R)                                           # a durable unlink
# From here on the root directory is never synced again.
put(R + "/newsynced", b"data", sync=True)          # data synced, entry not
put(R + "/durable", b"XX", flags=os.O_WRONLY)      # unsynced overwrite
os.unlink(R + "/old")                              # unsynced unlink
put(R + "/swap.tmp", b"NEW", sync=True)
os.rename(R + "/swap.tmp", R + "/swap")            # unsynced rename over a file
os.mkdir(R + "/sub")
put(R + "/sub/inner", b"i", sync=True)
dsync(R + "/sub")                                  # sub itself never synced in R
fd = os.open(R + "/trunc", os.O_RDWR)
os.ftruncate(fd, 2)                                # unsynced truncate
os.close(fd)
put(R + "/synced-append", b"+more", sync=True, flags=os.O_WRONLY | os.O_APPEND)
sys.stdout.write("done\n")
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGUSR2)
time.sleep(10)
'''

TAIL = b"-unsynced-tail" * 100


def setup(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    files = {"append": b"head", "old": b"OLD", "swap": b"PREV", "trunc": b"tttttt",
             "synced-append": b"base"}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)


def tree(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            out[rel] = None if os.path.isdir(p) else open(p, "rb").read()
    return out


def run(args, variant, seed, cut_at=0):
    root = os.path.join(args.dir, "root")
    side = os.path.join(args.dir, "side")
    setup(root)
    shutil.rmtree(side, ignore_errors=True)
    os.makedirs(side)
    env = dict(os.environ, LD_PRELOAD=args.shim, AIDB_POWERFS_ROOT=root, AIDB_POWERFS_SIDE=side,
               AIDB_POWERFS_SIGNAL=str(int(signal.SIGUSR2)))
    if cut_at:
        env["AIDB_POWERFS_CUT_AT"] = str(cut_at)
    p = subprocess.run([sys.executable, "-c", CHILD, root], env=env, capture_output=True, timeout=60)
    if p.returncode != -signal.SIGKILL:
        return None, "child ended with %s: %s" % (p.returncode, p.stderr.decode()[-500:])
    r = subprocess.run([args.rollback, root, side, variant, str(seed)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "rollback failed: " + r.stdout + r.stderr
    return tree(root), p.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--rollback", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    fails = []
    # What every variant must show; only "append" differs between them.
    common = {"newsynced": None, "durable": b"kept", "old": b"OLD", "swap": b"PREV",
              "trunc": b"tttttt", "synced-append": b"base+more"}
    checked = 0
    for variant in ("drop", "keep", "torn", "zero"):
        for seed in range(1, 9 if variant in ("torn", "zero") else 2):
            got, why = run(args, variant, seed)
            checked += 1
            if got is None:
                fails.append("%s: %s" % (variant, why))
                continue
            for name, want in common.items():
                if got.get(name) != want:
                    fails.append("%s seed %d: %s is %r, want %r" % (variant, seed, name, got.get(name), want))
            for name in ("sub", "sub/inner", "swap.tmp", "gone"):
                if name in got:
                    fails.append("%s: %s survived although its entry was never synced" % (variant, name))
            a = got.get("append") or b""
            if variant == "drop" and a != b"head":
                fails.append("drop: append is %r" % a[:40])
            if variant == "keep" and a != b"head" + TAIL:
                fails.append("keep: append lost its unsynced tail")
            full = b"head" + TAIL
            cuts = [4] + list(range(512, len(full), 512)) + [len(full)]
            if variant == "torn" and not any(a == full[:e] for e in cuts):
                fails.append("torn: append of %d bytes is no sector-cut prefix" % len(a))
            if variant == "zero" and not any(
                    a == full[:e] + b"\0" * (len(full) - e) for e in cuts):
                fails.append("zero: append of %d bytes is no prefix followed by zeros" % len(a))
    # A cut at an operation count stops the script there: nothing after it.
    got, why = run(args, "drop", 1, cut_at=3)
    checked += 1
    if got is None:
        fails.append("cut at 3: " + why)
    elif "done" in why or got.get("durable") is not None or got.get("append") != b"head":
        fails.append("cut at 3: the script went on (%s)" % sorted(got))
    shutil.rmtree(args.dir, ignore_errors=True)
    for f in fails:
        print("FAIL", f)
    print("powerfs_selftest: %d scripted cuts, %d mismatches" % (checked, len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
