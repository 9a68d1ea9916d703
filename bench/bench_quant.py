#!/usr/bin/env python3
"""bench_quant.py — the compressed indexes, vecdex against faiss-cpu.

Cases (each library in its own process, on the same data, one run):
  tutorial   FAISS tutorial data (d=64, nb=100k, nq=10k):
               IVFPQ nlist=100 M=8 nbits=8 nprobe=10 (tutorial 3-IVFPQ.py)
  big        SyntheticDataset-like d=128, nb=1M (--nb to change), nq=1000:
               IVF1024,PQ16 and IVF1024,PQ32, nprobe=16
  small      SyntheticDataset-like d=128, nb=100k, nq=1000:
               PQ16, SQ8, SQ4, SQfp16, LSH (nbits=2d, rotated),
               Refine: IndexRefineFlat(PQ16) with k_factor=4

Indexes are built with the constructors (faiss's index_factory turns on
polysemous training for IVFPQ, which would make faiss's training look
slow).  Prints, per case: bytes per vector, training and add time,
10-recall@10 against exact search, QPS, and the vecdex/faiss ratios
(training: time ratio, lower is better; QPS: higher is better).

    python3 bench/bench_quant.py [--small] [--only tutorial|big|small] [--nb N]
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


def build(L, name, d):
    """The index of a case, with each library's own classes."""
    if name == "IVFPQ tutorial":
        return L.IndexIVFPQ(L.IndexFlatL2(d), d, 100, 8, 8), 10
    if name.startswith("IVF1024,PQ"):
        M = int(name.split("PQ")[1])
        return L.IndexIVFPQ(L.IndexFlatL2(d), d, 1024, M, 8), 16
    if name == "PQ16":
        return L.IndexPQ(d, 16, 8), None
    if name.startswith("SQ"):
        qt = {"SQ8": "QT_8bit", "SQ4": "QT_4bit", "SQfp16": "QT_fp16"}[name]
        return L.IndexScalarQuantizer(d, getattr(L.ScalarQuantizer, qt),
                                      L.METRIC_L2), None
    if name == "LSH":
        return L.IndexLSH(d, 2 * d, True, False), None
    if name == "PQ16,RFlat":
        index = L.IndexRefineFlat(L.IndexPQ(d, 16, 8))
        index.k_factor = 4
        return index, None
    raise SystemExit(f"unknown case {name}")


def code_bytes(index, name, d):
    """Bytes stored per vector, as both libraries lay them out."""
    if name.startswith("IVF"):
        return index.pq.code_size + 8  # code + id in the inverted list
    if name == "PQ16":
        return index.pq.code_size
    if name.startswith("SQ"):
        return index.sq.code_size
    if name == "LSH":
        return (2 * d + 7) // 8
    if name == "PQ16,RFlat":
        return 16 + 4 * d  # the PQ code and the full vector
    return -1


def worker(lib, folder):
    L = common.import_lib(lib)
    cfg = json.load(open(os.path.join(folder, "cfg.json")))
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n)) for n in ("xt", "xb", "xq"))
    d = xb.shape[1]
    out = []
    for name in cfg["cases"]:
        index, nprobe = build(L, name, d)
        t_train, _ = common.timed(index.train, xt)
        t_add, _ = common.timed(index.add, xb)
        if nprobe:
            index.nprobe = nprobe
        t, (D, I) = common.timed(index.search, xq, K, repeat=2)
        np.save(os.path.join(folder, f"I_{lib}_{name}.npy"), I)
        out.append(dict(name=name, train_s=t_train, add_s=t_add, qps=len(xq) / t,
                        bpv=code_bytes(index, name, d)))
        del index
    print(json.dumps(out))


def run(title, cases, xt, xb, xq, rows):
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        json.dump(dict(cases=cases), open(os.path.join(folder, "cfg.json"), "w"))
        t0 = time.perf_counter()
        gt = common.exact_knn(xb, xq, K)
        print(f"{title}: d={xb.shape[1]} nt={len(xt)} nb={len(xb)} nq={len(xq)} "
              f"(ground truth {time.perf_counter() - t0:.1f} s)", flush=True)
        res = {lib: common.run_worker(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        for f, v in zip(res["faiss"], res["vecdex"]):
            rf = common.recall_at(np.load(os.path.join(folder, f"I_faiss_{f['name']}.npy")), gt, K)
            rv = common.recall_at(np.load(os.path.join(folder, f"I_vecdex_{v['name']}.npy")), gt, K)
            rows.append((title, f, v, rf, rv))


def tr_ratio(f, v):
    """Training time ratio, or '-' when both take under 50 ms (nothing to
    learn, e.g. LSH without thresholds: the ratio of two timer readings
    would mean nothing)."""
    if max(f["train_s"], v["train_s"]) < 0.05:
        return "-"
    return f"{v['train_s'] / max(f['train_s'], 1e-9):.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--small", action="store_true", help="smaller data, quick look")
    ap.add_argument("--only", choices=["tutorial", "big", "small"])
    ap.add_argument("--nb", type=int, default=None, help="base size of the big case")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    rows = []
    if a.only in (None, "tutorial"):
        nb, nq = (20000, 1000) if a.small else (100000, 10000)
        xt, xb, xq = common.tutorial(nb=nb, nq=nq)
        run("tutorial", ["IVFPQ tutorial"], xt, xb, xq, rows)
    if a.only in (None, "big"):
        nb = a.nb or (100000 if a.small else 1000000)
        xt, xb, xq = common.synthetic(128, 65536, nb, 1000)
        run("big", ["IVF1024,PQ16", "IVF1024,PQ32"], xt, xb, xq, rows)
    if a.only in (None, "small"):
        nb = 20000 if a.small else 100000
        xt, xb, xq = common.synthetic(128, 20000, nb, 1000)
        run("small", ["PQ16", "SQ8", "SQ4", "SQfp16", "LSH", "PQ16,RFlat"],
            xt, xb, xq, rows)
    print(f"\n{'case':<16} {'B/vec f/v':>10} {'train s f/v':>13} {'ratio':>5} "
          f"{'add s f/v':>11} {'R@10 faiss':>10} {'vecdex':>7} {'diff':>7} "
          f"{'QPS faiss':>10} {'vecdex':>9} {'ratio':>6}")
    for title, f, v, rf, rv in rows:
        print(f"{f['name']:<16} {f['bpv']:>4}/{v['bpv']:<5} "
              f"{f['train_s']:>6.2f}/{v['train_s']:<6.2f} "
              f"{tr_ratio(f, v):>5} "
              f"{f['add_s']:>5.2f}/{v['add_s']:<5.2f} {rf:>10.4f} {rv:>7.4f} "
              f"{rv - rf:>+7.4f} {f['qps']:>10.0f} {v['qps']:>9.0f} "
              f"{v['qps'] / f['qps']:>6.2f}")


if __name__ == "__main__":
    main()
