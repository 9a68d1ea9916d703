#!/usr/bin/env python3
"""bench_build.py — index builds (train + add): vecdex against faiss-cpu.

Workload: SyntheticDataset-like d=128, 20k training vectors, 100k base
vectors (--nt / --nb to change).  Cases, built with each library's
index_factory: SQfp16, SQbf16, SQ8, LSH (IndexLSH nbits=d), LSHrt
(rotation + trained thresholds) and PCA32,IVF256,Flat.  Each library runs
in its own process (common.Server) and the two take alternating turns per
case; the best of --turns turns is kept.  Prints train + add seconds per
library and the speed ratio (faiss time / vecdex time: > 1 means vecdex
builds faster), with the CPU, vecdex's SIMD level and the load average.

    python3 bench/bench_build.py [--turns 5] [--threads 2]
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CASES = ["SQfp16", "SQbf16", "SQ8", "LSH", "LSHrt", "PCA32,IVF256,Flat"]


def worker(lib, folder):
    L = common.import_lib(lib)
    xt, xb = (np.ascontiguousarray(common.load(folder, n)) for n in ("xt", "xb"))
    d = xb.shape[1]

    def builder(key):
        def build():
            index = L.index_factory(d, key)
            index.train(xt)
            index.add(xb)
            return None, np.zeros((1, 1), dtype="int64")
        return build

    info = {"lib": lib}
    if lib == "vecdex":
        info["simd"] = L.build_info().split("simd=")[1].split(";")[0]
    common.serve([builder(k) for k in CASES], info, L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--nt", type=int, default=20000)
    ap.add_argument("--nb", type=int, default=100000)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    xt, xb, _ = common.synthetic(128, a.nt, a.nb, 1)
    script = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb)
        srv = {lib: common.Server(script, lib, folder) for lib in ("faiss", "vecdex")}
        best = {lib: [1e30] * len(CASES) for lib in srv}
        for _ in range(a.turns):
            for i in range(len(CASES)):
                for lib, s in srv.items():
                    best[lib][i] = min(best[lib][i], s.ask("time", i, 0, a.threads)["t"])
        simd = srv["vecdex"].info.get("simd")
        for s in srv.values():
            s.close()
    print(f"\nCPU: {common.cpu_model()}, vecdex SIMD {simd}, {a.threads} threads, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"d=128 nt={a.nt} nb={a.nb}; best train+add of {a.turns} alternating turns")
    print(f"  {'index':<20} {'faiss s':>8} {'vecdex s':>9} {'speed ratio':>11}")
    for i, key in enumerate(CASES):
        f, v = best["faiss"][i], best["vecdex"][i]
        print(f"  {key:<20} {f:>8.4f} {v:>9.4f} {f / v:>11.2f}")


if __name__ == "__main__":
    main()
