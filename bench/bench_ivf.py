#!/usr/bin/env python3
"""bench_ivf.py — IndexIVFFlat: vecdex against faiss-cpu, side by side.

Workloads (each library in its own process, same data, one run):
  - tutorial: the FAISS tutorial data (d=64, nb=100k, nq=10k), nlist=100,
    nprobe 1 and 10;
  - synthetic: SyntheticDataset-like d=128, 100k train, 1M base, 10k queries,
    nlist=1024, nprobe 1, 4, 16, 64 (--small shrinks it for a quick look).
Prints k-means training time, add time, and per nprobe recall@10 (against a
numpy brute force) and QPS, with the vecdex/faiss ratios.

    python3 bench/bench_ivf.py [--small] [--only tutorial|synthetic]
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
    q = L.IndexFlatL2(d)
    index = L.IndexIVFFlat(q, d, cfg["nlist"], L.METRIC_L2)
    t_train, _ = common.timed(index.train, xt)
    t_add, _ = common.timed(index.add, xb)
    res = dict(train_s=t_train, add_s=t_add, runs=[], filtered=[])
    for nprobe in cfg["nprobes"]:
        index.nprobe = nprobe
        t, (D, I) = common.timed(index.search, xq, K, repeat=2)
        np.save(os.path.join(folder, f"I_{lib}_{nprobe}.npy"), I)
        res["runs"].append(dict(nprobe=nprobe, qps=len(xq) / t))
    # filtered search: the same selector (1% of the ids) in both libraries
    sel = L.IDSelectorBatch(np.arange(0, len(xb), 100, dtype="int64"))
    for nprobe in cfg["filter_nprobes"]:
        params = L.SearchParametersIVF(sel=sel, nprobe=nprobe)
        t, (D, I) = common.timed(lambda: index.search(xq, K, params=params), repeat=2)
        res["filtered"].append(dict(nprobe=nprobe, qps=len(xq) / t,
                                    ok=bool(np.all(I[I >= 0] % 100 == 0)),
                                    full=float((I >= 0).mean())))
    print(json.dumps(res))


def run(name, xt, xb, xq, nlist, nprobes, filter_nprobes):
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        json.dump(dict(nlist=nlist, nprobes=nprobes, filter_nprobes=filter_nprobes),
                  open(os.path.join(folder, "cfg.json"), "w"))
        t0 = time.perf_counter()
        gt = common.exact_knn(xb, xq, K)
        print(f"[{name}] ground truth in {time.perf_counter() - t0:.1f} s", flush=True)
        res = {lib: common.run_worker(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        rec = {lib: {p: common.recall_at(np.load(os.path.join(folder, f"I_{lib}_{p}.npy")), gt, K)
                     for p in nprobes} for lib in res}
    f, v = res["faiss"], res["vecdex"]
    print(f"\n{name}: d={xb.shape[1]} nt={len(xt)} nb={len(xb)} nq={len(xq)} nlist={nlist}")
    print(f"  train (k-means): faiss {f['train_s']:.2f} s, vecdex {v['train_s']:.2f} s, "
          f"vecdex/faiss time {v['train_s'] / f['train_s']:.2f}")
    print(f"  add:             faiss {f['add_s']:.2f} s, vecdex {v['add_s']:.2f} s")
    print(f"  {'nprobe':>6} {'faiss R@10':>10} {'vecdex R@10':>11} {'diff':>7} "
          f"{'faiss QPS':>10} {'vecdex QPS':>10} {'ratio':>6}")
    for fr, vr in zip(f["runs"], v["runs"]):
        p = fr["nprobe"]
        print(f"  {p:>6} {rec['faiss'][p]:>10.4f} {rec['vecdex'][p]:>11.4f} "
              f"{rec['vecdex'][p] - rec['faiss'][p]:>+7.4f} {fr['qps']:>10.0f} "
              f"{vr['qps']:>10.0f} {vr['qps'] / fr['qps']:>6.2f}")
    print("  filtered search, IDSelectorBatch admitting 1% of the ids:")
    print(f"  {'nprobe':>6} {'faiss QPS':>10} {'vecdex QPS':>10} {'ratio':>6} "
          f"{'faiss filled':>12} {'vecdex filled':>13} {'only admitted':>13}")
    for fr, vr in zip(f["filtered"], v["filtered"]):
        print(f"  {fr['nprobe']:>6} {fr['qps']:>10.0f} {vr['qps']:>10.0f} "
              f"{vr['qps'] / fr['qps']:>6.2f} {fr['full']:>12.3f} {vr['full']:>13.3f} "
              f"{str(fr['ok'] and vr['ok']):>13}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--only", choices=["tutorial", "synthetic"])
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data)
        return
    if a.only in (None, "tutorial"):
        _, xb, xq = common.tutorial()
        run("tutorial", xb, xb, xq, 100, [1, 10], [10, 100])
    if a.only in (None, "synthetic"):
        nb = 100000 if a.small else 1000000
        xt, xb, xq = common.synthetic(128, 100000, nb, 10000)
        run("synthetic", xt, xb, xq, 1024, [1, 4, 16, 64], [16])


if __name__ == "__main__":
    main()
