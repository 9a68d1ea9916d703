"""Child process of test_ondisk_memcap.py (run under prlimit --as).

    memcap_build.py baseline            -> prints VmSize (kB) after setup
    memcap_build.py build DIR N D NS    -> builds IVF-PQ over N x D vectors
                                           in NS shards, merges on disk,
                                           searches; prints JSON
    memcap_build.py hog N D             -> tries to hold all N x D floats

The data is generated shard by shard from per-shard seeds, never whole;
the exact neighbours are kept as a running top-k per query.  MEMCAP_KEY,
MEMCAP_NTRAIN and MEMCAP_NPROBE change the index (bench/bench_memcap.py's
20M run); the defaults are the CI test's.
"""
import json
import os
import sys
import time

import numpy as np

import vecdex
from vecdex.contrib.ondisk import merge_ondisk

K = 10


def vm(field="VmPeak"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])


def vmpeak():
    return vm("VmPeak")


def setup():
    """What every mode does first: imports (above) and a tiny index, so
    that the libraries' threads and buffers exist."""
    ix = vecdex.index_factory(8, "IVF4,PQ2")
    ix.train(chunk(0, 1000, 8))
    ix.add(chunk(1, 100, 8))
    ix.search(chunk(2, 5, 8), 3)


def chunk(i, n, d):
    return np.random.default_rng(1000 + i).standard_normal(
        (n, d), dtype=np.float32)


def queries(d):
    return np.random.default_rng(7).standard_normal((50, d), dtype=np.float32)


def main():
    mode = sys.argv[1]
    setup()
    if mode == "baseline":
        print(vm("VmSize"))
        return
    if mode == "hog":
        n, d = int(sys.argv[2]), int(sys.argv[3])
        try:
            x = np.ones((n, d), dtype=np.float32)
            print(json.dumps({"held": float(x.sum())}))
        except MemoryError:
            print(json.dumps({"held": None}))
        return
    folder, n, d, ns = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    xq = queries(d)
    trained = os.path.join(folder, "trained.index")
    key = os.environ.get("MEMCAP_KEY", "IVF256,PQ16")
    ntrain = int(os.environ.get("MEMCAP_NTRAIN", "20000"))
    nprobe = int(os.environ.get("MEMCAP_NPROBE", "32"))
    t0 = time.perf_counter()
    ix = vecdex.index_factory(d, key)
    ix.train(chunk(99, ntrain, d))
    vecdex.write_index(ix, trained)
    del ix
    step = n // ns
    shards = []
    gD = np.full((len(xq), K), np.inf, dtype=np.float32)
    gI = np.full((len(xq), K), -1, dtype=np.int64)
    for i in range(ns):
        x = chunk(i, step, d)
        sh = vecdex.read_index(trained)
        sh.add_with_ids(x, np.arange(i * step, (i + 1) * step, dtype=np.int64))
        shards.append(os.path.join(folder, "shard%d.index" % i))
        vecdex.write_index(sh, shards[-1])
        del sh
        # running exact top-k over this chunk
        f = vecdex.IndexFlatL2(d)
        f.add(x)
        Dc, Ic = f.search(xq, K)
        del f, x
        allD = np.hstack([gD, Dc])
        allI = np.hstack([gI, Ic + i * step])
        o = np.argsort(allD, axis=1, kind="stable")[:, :K]
        gD = np.take_along_axis(allD, o, 1)
        gI = np.take_along_axis(allI, o, 1)
    t_shards = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = vecdex.read_index(trained)
    if os.environ.get("MEMCAP_DEBUG"):
        print("before merge VmSize", vm("VmSize"), file=sys.stderr)
    merge_ondisk(index, shards, os.path.join(folder, "merged.ivfdata"))
    vecdex.write_index(index, os.path.join(folder, "merged.index"))
    del index
    if os.environ.get("MEMCAP_DEBUG"):
        print("after merge VmSize", vm("VmSize"), "peak", vmpeak(), file=sys.stderr)
    t_merge = time.perf_counter() - t0
    for s in shards:
        os.remove(s)
    t0 = time.perf_counter()
    index = vecdex.read_index(os.path.join(folder, "merged.index"))
    t_open = time.perf_counter() - t0
    index.nprobe = nprobe
    t0 = time.perf_counter()
    D, I = index.search(xq, 100)
    t_search = time.perf_counter() - t0
    np.save(os.path.join(folder, "I.npy"), I)
    recall = float(np.mean([len(np.intersect1d(I[q], gI[q, :1])) for q in range(len(xq))]))
    print(json.dumps({"ntotal": index.ntotal, "recall1_at_100": recall,
                      "vmpeak_kb": vmpeak(), "shards_s": t_shards,
                      "merge_s": t_merge, "open_s": t_open,
                      "search_ms_per_query": 1e3 * t_search / len(xq)}))


if __name__ == "__main__":
    main()
