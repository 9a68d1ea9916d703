#!/usr/bin/env python3
"""bench_hnsw_2level.py — IndexHNSW2Level: vecdex against faiss-cpu.

Workload (each library in its own process, same data): the FAISS tutorial
data (d=64), index_factory "HNSW32_256+PQ16" (an HNSW graph with M=32 over
an Index2Layer storage: 256 coarse centroids + PQ16x8 of the residual),
searched with efSearch 16 and 64.  Prints training, add, QPS, recall
(10-recall@10 and 1-recall@10 against exact search on the raw vectors) and
the vecdex/faiss ratios.

Everything runs on ONE thread in both libraries: FAISS's IndexHNSW2Level
build does not finish with several OpenMP threads (faiss-cpu 1.15.1), so the
numbers compare single-thread builds and searches.

    python3 bench/bench_hnsw_2level.py [--quick | --full]

default: nb=50k, nq=1000 (~2 minutes); --quick: nb=10k, nq=200;
--full: nb=100k, nq=10000.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

K = 10
DESC = "HNSW32_256+PQ16"
EFS = (16, 64)


def worker(lib, folder):
    L = common.import_lib(lib)
    L.omp_set_num_threads(1)
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n))
                  for n in ("xt", "xb", "xq"))
    index = L.index_factory(xb.shape[1], DESC)
    t_train, _ = common.timed(index.train, xt)
    t_add, _ = common.timed(index.add, xb)
    out = dict(train_s=t_train, add_s=t_add)
    for ef in EFS:
        index.hnsw.efSearch = ef
        t, (D, I) = common.timed(index.search, xq, K, repeat=2)
        np.save(os.path.join(folder, f"I_{lib}_{ef}.npy"), I)
        out[f"qps_{ef}"] = len(xq) / t
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data)
        return
    nb, nq = (10000, 200) if a.quick else (100000, 10000) if a.full \
        else (50000, 1000)
    xt, xb, xq = common.tutorial(nb=nb, nq=nq)
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        gt = common.exact_knn(xb, xq, K)
        res = {lib: common.run_worker(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        I = {(lib, ef): np.load(os.path.join(folder, f"I_{lib}_{ef}.npy"))
             for lib in res for ef in EFS}
    f, v = res["faiss"], res["vecdex"]
    print(f"\n{DESC}: d={xb.shape[1]} nt={len(xt)} nb={nb} nq={nq}, 1 thread")
    print(f"  {'':>16} {'faiss':>9} {'vecdex':>9} {'ratio':>6}")
    for key in ("train_s", "add_s"):
        print(f"  {key:>16} {f[key]:>9.2f} {v[key]:>9.2f} {v[key] / f[key]:>6.2f}")
    for ef in EFS:
        q = f"qps_{ef}"
        print(f"  {'QPS ef=%d' % ef:>16} {f[q]:>9.0f} {v[q]:>9.0f} "
              f"{v[q] / f[q]:>6.2f}")
        rf = common.recall_at(I["faiss", ef], gt, K)
        rv = common.recall_at(I["vecdex", ef], gt, K)
        print(f"  {'R10@10 ef=%d' % ef:>16} {rf:>9.4f} {rv:>9.4f} {rv - rf:>+6.3f}")
        r1f = float((I["faiss", ef] == gt[:, :1]).any(1).mean())
        r1v = float((I["vecdex", ef] == gt[:, :1]).any(1).mean())
        print(f"  {'1-R@10 ef=%d' % ef:>16} {r1f:>9.4f} {r1v:>9.4f} "
              f"{r1v - r1f:>+6.3f}")


if __name__ == "__main__":
    main()
