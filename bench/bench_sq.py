#!/usr/bin/env python3
"""bench_sq.py — scalar quantizer indexes: vecdex against faiss-cpu.

Workload: SyntheticDataset-like d=128, 20k train, 100k base, 1k queries
(--nq to change).  Indexes: IndexScalarQuantizer with QT_8bit, QT_4bit and
QT_fp16 (exhaustive), and IVF1024,SQ8 (IndexIVFScalarQuantizer, residuals)
at nprobe 4 and 16.  Each library runs in its own process on the same data;
prints train / add time, recall@10 against exact search, QPS, the
vecdex/faiss QPS ratio and bytes per stored vector.  About a minute.

    python3 bench/bench_sq.py [--nq 1000]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

K = 10
FLAT = [("SQ8", "QT_8bit"), ("SQ4", "QT_4bit"), ("SQfp16", "QT_fp16")]
NLIST, NPROBES = 1024, [4, 16]


def worker(lib, folder):
    L = common.import_lib(lib)
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n)) for n in ("xt", "xb", "xq"))
    d = xb.shape[1]
    res = []
    for name, qt in FLAT:
        index = L.IndexScalarQuantizer(d, getattr(L.ScalarQuantizer, qt), L.METRIC_L2)
        t_train, _ = common.timed(index.train, xt)
        t_add, _ = common.timed(index.add, xb)
        t, (D, I) = common.timed(index.search, xq, K, repeat=2)
        np.save(os.path.join(folder, f"I_{lib}_{name}.npy"), I)
        res.append(dict(name=name, train_s=t_train, add_s=t_add, qps=len(xq) / t,
                        bpv=index.sq.code_size))
    q = L.IndexFlatL2(d)
    index = L.IndexIVFScalarQuantizer(q, d, NLIST, L.ScalarQuantizer.QT_8bit, L.METRIC_L2)
    t_train, _ = common.timed(index.train, xt)
    t_add, _ = common.timed(index.add, xb)
    for nprobe in NPROBES:
        index.nprobe = nprobe
        t, (D, I) = common.timed(index.search, xq, K, repeat=2)
        name = f"IVF{NLIST},SQ8 np={nprobe}"
        np.save(os.path.join(folder, f"I_{lib}_{name}.npy"), I)
        res.append(dict(name=name, train_s=t_train, add_s=t_add, qps=len(xq) / t,
                        bpv=index.sq.code_size + 8))
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--nq", type=int, default=1000)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    xt, xb, xq = common.synthetic(128, 20000, 100000, a.nq)
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        t0 = time.perf_counter()
        gt = common.exact_knn(xb, xq, K)
        print(f"ground truth in {time.perf_counter() - t0:.1f} s", flush=True)
        res = {lib: common.run_worker(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        rec = {lib: [common.recall_at(np.load(os.path.join(folder, f"I_{lib}_{r['name']}.npy")),
                                      gt, K) for r in res[lib]] for lib in res}
    print(f"\nd=128 nt={len(xt)} nb={len(xb)} nq={len(xq)}, k={K}")
    print(f"  {'index':<20} {'B/vec':>5} {'faiss R@10':>10} {'vecdex R@10':>11} "
          f"{'faiss QPS':>10} {'vecdex QPS':>10} {'ratio':>6} {'train f/v s':>12} "
          f"{'add f/v s':>10}")
    for i, (f, v) in enumerate(zip(res["faiss"], res["vecdex"])):
        print(f"  {f['name']:<20} {v['bpv']:>5} {rec['faiss'][i]:>10.4f} "
              f"{rec['vecdex'][i]:>11.4f} {f['qps']:>10.0f} {v['qps']:>10.0f} "
              f"{v['qps'] / f['qps']:>6.2f} {f['train_s']:>5.2f}/{v['train_s']:<5.2f} "
              f"{f['add_s']:>4.2f}/{v['add_s']:<4.2f}")


if __name__ == "__main__":
    main()
