#!/usr/bin/env python3
"""bench_memcap.py — issue 20's large run: an IVF-PQ index over more
vectors than the process may hold (default 20M x 64 floats = 5.1 GB),
built shard by shard and merged on disk (vecdex.contrib.ondisk), then
searched, with the process's address space capped by `prlimit --as` at
its own baseline (imports, a tiny index) plus a quarter of the data's
float size.  Too long for CI: tests/python/test_ondisk_memcap.py runs the
same child (tests/python/memcap_build.py) at 1M.

It first shows that the cap bites (holding the whole data under it fails),
then prints the child's figures: time to build the shards, to merge, to
open the merged index, search latency per query, VmPeak against the cap,
and recall of the true nearest neighbour (exact, computed shard by shard)
in the top 100.

    python3 bench/bench_memcap.py [--n 20000000] [--d 64] [--shards 200]
        [--key IVF1024,PQ16] [--ntrain 100000] [--nprobe 32] [--dir DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "..", "tests", "python", "memcap_build.py")


def run(args, cap=None, env=None):
    cmd = [sys.executable, CHILD, *map(str, args)]
    if cap:
        cmd = ["prlimit", "--as=%d" % cap, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--shards", type=int, default=200)
    ap.add_argument("--key", default="IVF1024,PQ16")
    ap.add_argument("--ntrain", type=int, default=100000)
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--dir", default=os.environ.get("BENCH_DIR"))
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MEMCAP_KEY=a.key, MEMCAP_NTRAIN=str(a.ntrain),
               MEMCAP_NPROBE=str(a.nprobe))
    base = run(["baseline"], env=env)
    if base.returncode:
        sys.exit(base.stderr)
    baseline = int(base.stdout.split()[-1]) * 1024
    data = a.n * a.d * 4
    cap = baseline + data // 4
    print(f"{a.n} x {a.d} floats = {data / 1e9:.2f} GB; cap = baseline "
          f"{baseline / 1e6:.0f} MB + {data / 4e6:.0f} MB = {cap / 1e6:.0f} MB "
          f"(prlimit --as)", flush=True)
    hog = run(["hog", a.n, a.d], cap, env)
    bites = hog.returncode != 0 or json.loads(hog.stdout.splitlines()[-1])["held"] is None
    print(f"holding the whole data under the cap: {'fails' if bites else 'SUCCEEDS'}",
          flush=True)
    with tempfile.TemporaryDirectory(dir=a.dir) as folder:
        t0 = time.perf_counter()
        p = run(["build", folder, a.n, a.d, a.shards], cap, env)
        wall = time.perf_counter() - t0
        if p.returncode:
            sys.exit(f"build failed under the cap (rc {p.returncode}):\n"
                     + p.stderr[-3000:])
        r = json.loads(p.stdout.splitlines()[-1])
        size = os.path.getsize(os.path.join(folder, "merged.ivfdata"))
    print(f"{a.key}, {a.shards} shards, 1 thread: wall {wall:.0f} s (shards "
          f"{r['shards_s']:.0f} s incl. training and exact top-k, merge "
          f"{r['merge_s']:.1f} s); merged .ivfdata {size / 1e6:.0f} MB; open "
          f"{1e3 * r['open_s']:.1f} ms; search {r['search_ms_per_query']:.2f} "
          f"ms/query at nprobe {a.nprobe}; VmPeak {r['vmpeak_kb'] * 1024 / 1e6:.0f} MB "
          f"of cap {cap / 1e6:.0f} MB; recall of the true NN in the top 100 "
          f"{r['recall1_at_100']:.2f}; ntotal {r['ntotal']}")


if __name__ == "__main__":
    main()
