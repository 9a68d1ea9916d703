#!/usr/bin/env python3
"""bench_transform.py — vector transforms: vecdex against faiss-cpu.

Workloads (each library in its own process, same data):
  - pca: PCAMatrix(128 -> 32) on SyntheticDataset-like data: training time
    (mean, scatter matrix, eigen-decomposition) and apply time on the base
    set, plus the share of variance the 32 components keep;
  - opq: "OPQ16,IVF256,PQ16" built by hand as FAISS's factory builds it
    (OPQMatrix(d, 16) in an IndexPreTransform over IndexIVFPQ): OPQ training
    time alone (FAISS's schedule: niter 50, niter_pq 4, niter_pq_0 40), then
    the IVF-PQ training, add, search QPS and recall against exact search.
Defaults fit in a few minutes on two cores; --small shrinks everything,
--full uses d=128 and FAISS's 65536 OPQ training points.

    python3 bench/bench_transform.py [--small | --full] [--only pca|opq]
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


def worker(lib, folder):
    L = common.import_lib(lib)
    cfg = json.load(open(os.path.join(folder, "cfg.json")))
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n))
                  for n in ("xt", "xb", "xq"))
    d = xb.shape[1]
    out = {}
    if cfg["kind"] == "pca":
        pca = L.PCAMatrix(d, cfg["dout"])
        out["train_s"], _ = common.timed(pca.train, xt)
        out["apply_s"], y = common.timed(pca.apply, xb, repeat=2)
        ev = L.vector_to_array(pca.eigenvalues)
        out["kept"] = float(ev[:cfg["dout"]].sum() / ev.sum())
        np.save(os.path.join(folder, f"Y_{lib}.npy"), y[:1000])
    else:
        opq = L.OPQMatrix(d, cfg["M"])
        opq.niter = cfg["niter"]
        out["opq_train_s"], _ = common.timed(opq.train, xt)
        ivf = L.IndexIVFPQ(L.IndexFlatL2(d), d, cfg["nlist"], cfg["M"], 8)
        index = L.IndexPreTransform(opq, ivf)
        out["ivfpq_train_s"], _ = common.timed(index.train, xt)
        out["add_s"], _ = common.timed(index.add, xb)
        ivf.nprobe = cfg["nprobe"]
        t, (D, I) = common.timed(index.search, xq, K, repeat=2)
        out["qps"] = len(xq) / t
        np.save(os.path.join(folder, f"I_{lib}.npy"), I)
        # PQ reconstruction error of the rotated training data
        y = opq.apply(xt[:20000])
        pq = L.ProductQuantizer(d, cfg["M"], 8)
        pq.train(y)
        r = pq.decode(pq.compute_codes(y))
        out["pq_mse"] = float(((r - y) ** 2).sum(1).mean())
    print(json.dumps(out))


def row(name, f, v, fmt=".2f", ratio=True):
    r = f"{v / f:>6.2f}" if ratio and f else ""
    print(f"  {name:>16} {f:>9{fmt}} {v:>9{fmt}} {r}")


def run(name, cfg, xt, xb, xq):
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        json.dump(cfg, open(os.path.join(folder, "cfg.json"), "w"))
        res = {lib: common.run_worker(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        f, v = res["faiss"], res["vecdex"]
        print(f"\n{name}: d={xb.shape[1]} nt={len(xt)} nb={len(xb)} "
              f"nq={len(xq)} {cfg}")
        print(f"  {'':>16} {'faiss':>9} {'vecdex':>9} {'ratio':>6}")
        if cfg["kind"] == "pca":
            row("train s", f["train_s"], v["train_s"], ".3f")
            row("apply s", f["apply_s"], v["apply_s"], ".3f")
            row("variance kept", f["kept"], v["kept"], ".4f", False)
            yf = np.load(os.path.join(folder, "Y_faiss.npy"))
            yv = np.load(os.path.join(folder, "Y_vecdex.npy"))
            # same projection up to the sign of each component
            s = np.sign((yf * yv).sum(0))
            err = float(np.abs(yv * s - yf).max() / np.abs(yf).max())
            print(f"  {'max rel. diff':>16} {err:>9.2e}")
            return
        gt = common.exact_knn(xb, xq, K)
        I = {lib: np.load(os.path.join(folder, f"I_{lib}.npy")) for lib in res}
    row("OPQ train s", f["opq_train_s"], v["opq_train_s"])
    row("IVFPQ train s", f["ivfpq_train_s"], v["ivfpq_train_s"])
    row("add s", f["add_s"], v["add_s"])
    row("QPS", f["qps"], v["qps"], ".0f")
    row("PQ mse (OPQ)", f["pq_mse"], v["pq_mse"], ".4f")
    for k in (1, 10):
        rf = common.recall_at(I["faiss"][:, :k], gt[:, :k], k)
        rv = common.recall_at(I["vecdex"][:, :k], gt[:, :k], k)
        print(f"  {f'R{k}@{k}':>16} {rf:>9.4f} {rv:>9.4f} {rv - rf:>+6.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--small", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--only", choices=["pca", "opq"])
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data)
        return
    if a.only in (None, "pca"):
        nt, nb = (20000, 20000) if a.small else (100000, 100000)
        xt, xb, xq = common.synthetic(128, nt, nb, 10)
        run("pca (PCAMatrix 128 -> 32)", dict(kind="pca", dout=32), xt, xb, xq)
    if a.only in (None, "opq"):
        if a.full:
            d, nt, nb, nq, niter = 128, 65536, 100000, 2000, 50
        elif a.small:
            d, nt, nb, nq, niter = 64, 10000, 20000, 500, 10
        else:
            d, nt, nb, nq, niter = 64, 10000, 50000, 1000, 50
        xt, xb, xq = common.synthetic(d, nt, nb, nq)
        run("opq (OPQ16,IVF256,PQ16)",
            dict(kind="opq", M=16, nlist=256, nprobe=16, niter=niter),
            xt, xb, xq)


if __name__ == "__main__":
    main()
