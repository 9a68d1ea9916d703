#!/usr/bin/env python3
"""bench_pq.py — product quantization: vecdex against faiss-cpu.

Workloads (each library in its own process, same data):
  - ivfpq: the FAISS tutorial data (d=64, nb=100k, nq=10k), IndexIVFPQ
    nlist=100, M=8, nbits=8, nprobe=10 (the tutorial's 3-IVFPQ.py);
  - pq16: SyntheticDataset-like d=128, 100k base, IndexPQ M=16, nbits=8
    (exhaustive ADC scan).
Prints training time, add time, bytes per vector, recall (1-recall@1 and
10-recall@10 against exact search), QPS and the vecdex/faiss ratios.
--small shrinks both for a quick look.

    python3 bench/bench_pq.py [--small] [--only ivfpq|pq16]
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


def worker(lib, folder):
    L = common.import_lib(lib)
    cfg = json.load(open(os.path.join(folder, "cfg.json")))
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n)) for n in ("xt", "xb", "xq"))
    d = xb.shape[1]
    if cfg["kind"] == "ivfpq":
        index = L.IndexIVFPQ(L.IndexFlatL2(d), d, cfg["nlist"], cfg["M"], 8)
    else:
        index = L.IndexPQ(d, cfg["M"], 8)
    t_train, _ = common.timed(index.train, xt)
    t_add, _ = common.timed(index.add, xb)
    if cfg["kind"] == "ivfpq":
        index.nprobe = cfg["nprobe"]
    t, (D, I) = common.timed(index.search, xq, K, repeat=2)
    np.save(os.path.join(folder, f"I_{lib}.npy"), I)
    code_size = index.pq.code_size
    # IVF stores an 8-byte id next to each code
    bpv = code_size + (8 if cfg["kind"] == "ivfpq" else 0)
    print(json.dumps(dict(train_s=t_train, add_s=t_add, qps=len(xq) / t,
                          bytes_per_vector=bpv)))


def run(name, cfg, xt, xb, xq):
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        json.dump(cfg, open(os.path.join(folder, "cfg.json"), "w"))
        gt = common.exact_knn(xb, xq, K)
        res = {lib: common.run_worker(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        I = {lib: np.load(os.path.join(folder, f"I_{lib}.npy")) for lib in res}
    f, v = res["faiss"], res["vecdex"]
    print(f"\n{name}: d={xb.shape[1]} nt={len(xt)} nb={len(xb)} nq={len(xq)} {cfg}")
    print(f"  {'':>14} {'faiss':>9} {'vecdex':>9} {'ratio':>6}")
    print(f"  {'train s':>14} {f['train_s']:>9.2f} {v['train_s']:>9.2f} "
          f"{v['train_s'] / f['train_s']:>6.2f}")
    print(f"  {'add s':>14} {f['add_s']:>9.2f} {v['add_s']:>9.2f} "
          f"{v['add_s'] / f['add_s']:>6.2f}")
    print(f"  {'QPS':>14} {f['qps']:>9.0f} {v['qps']:>9.0f} {v['qps'] / f['qps']:>6.2f}")
    for k in (1, 10):
        rf = common.recall_at(I["faiss"][:, :k], gt[:, :k], k)
        rv = common.recall_at(I["vecdex"][:, :k], gt[:, :k], k)
        print(f"  {f'R{k}@{k}':>14} {rf:>9.4f} {rv:>9.4f} {rv - rf:>+6.3f}")
    r1f = float((I["faiss"] == gt[:, :1]).any(1).mean())
    r1v = float((I["vecdex"] == gt[:, :1]).any(1).mean())
    print(f"  {'1-R@10':>14} {r1f:>9.4f} {r1v:>9.4f} {r1v - r1f:>+6.3f}")
    print(f"  {'bytes/vector':>14} {f['bytes_per_vector']:>9} {v['bytes_per_vector']:>9}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--only", choices=["ivfpq", "pq16"])
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data)
        return
    if a.only in (None, "ivfpq"):
        nb, nq = (20000, 1000) if a.small else (100000, 10000)
        xt, xb, xq = common.tutorial(nb=nb, nq=nq)
        run("ivfpq (tutorial 3-IVFPQ)", dict(kind="ivfpq", nlist=100, M=8, nprobe=10),
            xt, xb, xq)
    if a.only in (None, "pq16"):
        nt, nb, nq = (10000, 20000, 500) if a.small else (20000, 100000, 2000)
        xt, xb, xq = common.synthetic(128, nt, nb, nq)
        run("pq16 (IndexPQ d=128 M=16 nbits=8)", dict(kind="pq16", M=16), xt, xb, xq)


if __name__ == "__main__":
    main()
