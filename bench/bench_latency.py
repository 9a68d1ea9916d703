#!/usr/bin/env python3
"""bench_latency.py — single-query search latency: vecdex against faiss-cpu.

A query at a time (search(xq[i:i+1], 10)) on small indexes, where opening
an OpenMP team for each call costs more than the search itself (a
scheduler time slice when the machine is busy).  Data: the FAISS
tutorial's (d=64, nb=--nb, default 20k).  Indexes (each library's
index_factory): Flat, HNSW32, IVF256,Flat (nprobe 8), PQ16, IVF256,PQ16
(nprobe 8), SQ8.  Each library runs in its own process (common.Server) and
they alternate turns per case; a turn times --per queries one by one and
the best mean latency of --turns turns is kept, at --threads threads
(default: all) and at 1 thread.  Prints microseconds per query, the
speed ratio (faiss time / vecdex time), the CPU, SIMD level and load.

    python3 bench/bench_latency.py [--nb 20000] [--turns 5] [--per 200]
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CASES = [("Flat", None), ("HNSW32", None), ("IVF256,Flat", 8), ("PQ16", None),
         ("IVF256,PQ16", 8), ("SQ8", None)]


def worker(lib, folder):
    L = common.import_lib(lib)
    xb, xq = (np.ascontiguousarray(common.load(folder, n)) for n in ("xb", "xq"))
    per = json.load(open(os.path.join(folder, "cfg.json")))["per"]
    d = xb.shape[1]
    fns = []
    for key, nprobe in CASES:
        index = L.index_factory(d, key)
        index.train(xb)
        index.add(xb)
        if nprobe:
            index.nprobe = nprobe

        def one_by_one(index=index):
            out = np.empty((per, 10), dtype="int64")
            for i in range(per):
                out[i] = index.search(xq[i:i + 1], 10)[1][0]
            return None, out
        fns.append(one_by_one)
    info = {"lib": lib}
    if lib == "vecdex":
        info["simd"] = L.build_info().split("simd=")[1].split(";")[0]
    common.serve(fns, info, L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--nb", type=int, default=20000)
    ap.add_argument("--per", type=int, default=200)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    _, xb, xq = common.tutorial(nb=a.nb, nq=a.per)
    script = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xb=xb, xq=xq)
        json.dump({"per": a.per}, open(os.path.join(folder, "cfg.json"), "w"))
        srv = {lib: common.Server(script, lib, folder) for lib in ("faiss", "vecdex")}
        thr = [a.threads, 1] if a.threads > 1 else [1]
        best = {(lib, t): [1e30] * len(CASES) for lib in srv for t in thr}
        for _ in range(a.turns):
            for i in range(len(CASES)):
                for t in thr:
                    for lib, s in srv.items():
                        r = s.ask("time", i, 0, t)["t"] / a.per
                        best[lib, t][i] = min(best[lib, t][i], r)
        simd = srv["vecdex"].info.get("simd")
        for s in srv.values():
            s.close()
    print(f"\nCPU: {common.cpu_model()}, vecdex SIMD {simd}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"d=64 nb={a.nb}, k=10, one query a call; best mean of {a.turns} "
          f"alternating turns of {a.per} queries")
    print(f"  {'index':<14} {'threads':>7} {'faiss us':>9} {'vecdex us':>10} {'speed ratio':>11}")
    for i, (key, _) in enumerate(CASES):
        for t in thr:
            f, v = best["faiss", t][i], best["vecdex", t][i]
            print(f"  {key:<14} {t:>7} {f * 1e6:>9.1f} {v * 1e6:>10.1f} {f / v:>11.2f}")


if __name__ == "__main__":
    main()
