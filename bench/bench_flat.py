#!/usr/bin/env python3
"""bench_flat.py — IndexFlat: vecdex against faiss-cpu, side by side.

Each library runs in its own process on the same data (the FAISS tutorial's:
d=64, nb=100,000, nq=10,000, seed 1234, column 0 shifted), written once by
this parent process.  Cases: k = 4 and 10, L2 and IP, all threads and 1
thread, batch throughput (all queries in one call) and single-query latency
(1,000 queries one at a time).  Prints QPS per library, the vecdex/faiss
ratio, and for batch runs the fraction of the sgemm bound reached: the time
2*nq*nb*d flops take at this machine's measured sgemm rate.

    python3 bench/bench_flat.py [--quick] [--json OUT]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def make_data(path):
    _, xb, xq = common.tutorial()
    np.savez(path, xb=xb, xq=xq)


def worker(lib, data_path, quick):
    """Runs every case with one library; prints a JSON list of results."""
    L = common.import_lib(lib)
    z = np.load(data_path)
    xb, xq = z["xb"], z["xq"]
    d = xb.shape[1]
    nthreads_all = L.omp_get_max_threads()
    n_single = 200 if quick else 1000
    out = []
    for metric in ("L2", "IP"):
        index = L.IndexFlatL2(d) if metric == "L2" else L.IndexFlatIP(d)
        index.add(xb)
        for threads in (nthreads_all, 1):
            L.omp_set_num_threads(threads)
            for k in (4, 10):
                # batch: best of 2 runs (the first warms caches and pages)
                best = 1e30
                for _ in range(1 if quick else 2):
                    t0 = time.perf_counter()
                    D, I = index.search(xq, k)
                    best = min(best, time.perf_counter() - t0)
                out.append(dict(case="batch", metric=metric, threads=threads, k=k,
                                qps=len(xq) / best, seconds=best,
                                I0=I[:20].tolist()))
                # single-query latency
                t0 = time.perf_counter()
                for i in range(n_single):
                    index.search(xq[i:i + 1], k)
                t = time.perf_counter() - t0
                out.append(dict(case="single", metric=metric, threads=threads, k=k,
                                qps=n_single / t, seconds=t))
        L.omp_set_num_threads(nthreads_all)
    print(json.dumps(out))


def sgemm_rate():
    """GFLOP/s of a well-shaped float32 sgemm (numpy's OpenBLAS), all cores."""
    a = np.random.random((2048, 2048)).astype("float32")
    b = np.random.random((2048, 2048)).astype("float32")
    a @ b
    best = 1e30
    for _ in range(3):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048 ** 3 / best / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["vecdex", "faiss"])
    ap.add_argument("--data")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data, a.quick)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.npz")
        make_data(data)
        res = {}
        for lib in ("faiss", "vecdex"):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib,
                   "--data", data] + (["--quick"] if a.quick else [])
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"{lib} worker failed:\n{p.stderr}")
            res[lib] = json.loads(p.stdout.strip().splitlines()[-1])
    rate = sgemm_rate()
    d, nb, nq = 64, 100000, 10000
    bound_s = 2.0 * nq * nb * d / (rate * 1e9)
    print(f"IndexFlat, d={d}, nb={nb}, nq={nq} (tutorial data); sgemm rate "
          f"{rate:.0f} GFLOP/s -> sgemm bound {bound_s:.3f} s per batch")
    hdr = f"{'case':8} {'metric':6} {'thr':>3} {'k':>3} {'faiss QPS':>11} " \
          f"{'vecdex QPS':>11} {'ratio':>6} {'same top':>8} {'bound %':>7}"
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for f, v in zip(res["faiss"], res["vecdex"]):
        assert (f["case"], f["metric"], f["threads"], f["k"]) == \
            (v["case"], v["metric"], v["threads"], v["k"])
        ratio = v["qps"] / f["qps"]
        same = ""
        bound = ""
        if f["case"] == "batch":
            fi, vi = np.array(f["I0"]), np.array(v["I0"])
            same = f"{(fi == vi).mean():.3f}"
            if f["threads"] > 1:
                bound = f"{100 * bound_s / v['seconds']:.0f}%"
        print(f"{f['case']:8} {f['metric']:6} {f['threads']:>3} {f['k']:>3} "
              f"{f['qps']:>11.0f} {v['qps']:>11.0f} {ratio:>6.2f} {same:>8} {bound:>7}")
        rows.append(dict(case=f["case"], metric=f["metric"], threads=f["threads"],
                         k=f["k"], faiss_qps=f["qps"], vecdex_qps=v["qps"],
                         ratio=ratio))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(sgemm_gflops=rate, rows=rows), fh, indent=1)


if __name__ == "__main__":
    main()
