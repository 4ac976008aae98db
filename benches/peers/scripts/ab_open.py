#!/usr/bin/env python3
"""Interleaved A/B of cold open + get one key at 1M between two builds of the peers binary.

Usage (root: it drops the page cache), from benches/peers after `cargo run --release -- open`
has built the data sets:

    python3 scripts/ab_open.py OLD_BINARY NEW_BINARY [ROUNDS]

Each round runs, for each build, `child-open walstore` and `child-open walstore_rw` in a fresh
process after `sync` and dropping the page cache, then SQLite once (with NEW), and prints the
median of each. Both binaries stay mapped by this script, so their own code pages are not
read from disk inside the timed open (the peers harness gets the same by running its
children from its own executable).
"""
import collections
import mmap
import os
import statistics
import subprocess
import sys

old, new = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
data = "target/bench-data/v2"
keep = []
for binary in (new, old):
    f = open(binary, "rb")
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    sum(m[i] for i in range(0, len(m), 4096))
    keep.append((f, m))


def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def child(binary, engine, db):
    out = subprocess.run([binary, "child-open", engine, f"{data}/{db}"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1e6


times = collections.defaultdict(list)
for _ in range(rounds):
    for name, binary in (("old", old), ("new", new)):
        for engine in ("walstore", "walstore_rw"):
            drop()
            times[(name, engine)].append(child(binary, engine, "peers-1m-walstore"))
    drop()
    times[("new", "sqlite")].append(child(new, "sqlite", "peers-1m-sqlite"))
for key, values in sorted(times.items()):
    print(f"{key[0]:4} {key[1]:12} median {statistics.median(values):.2f} ms (n={len(values)})")
