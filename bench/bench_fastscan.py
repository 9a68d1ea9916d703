#!/usr/bin/env python3
"""bench_fastscan.py — 4-bit PQ fast scan: vecdex against faiss-cpu.

Cases (each library in its own process, same data):
  - PQ32x4fs and IVF100,PQ32x4fs (nprobe 10) on the FAISS tutorial data
    (d=64, uniform, column 0 + i/1000: FAISS's fast scan loses its recall
    there) and on SyntheticDataset-like data (d=64);
  - IVF1024,PQ32x4fs (nprobe 10) on SyntheticDataset-like d=128 data, 100k
    base by default (to fit a few minutes on 2 cores), 1M with --full;
each plain, with ",RFlat" and with ",Refine(SQfp16)" (k_factor 3).
vecdex runs once per SIMD level forced with VECDEX_SIMD (avx2, avx512);
a level the CPU lacks is reported as not measured.  Prints 10-recall@10,
QPS and vecdex/faiss QPS ratios.

Each library's worker builds its indexes once and stays up; then, per
case, the libraries take --turns turns (default 8) of about 0.3 s of
repeated searches each, alternating, and each turn keeps its best time.
QPS is the median over a library's turns; the ratio is the median over
turns of faiss's time / vecdex's time in the same turn.  This machine's
speed drifts: on tutorial IVF100,PQ32x4fs the best of 300 two-thread
searches moved between 340k and 510k QPS from one second to the next,
while one-thread searches stayed within 3%.  Turns a fraction of a second
apart see the same drift, and the medians keep a lucky or unlucky turn of
one library from deciding.  Each case is timed on one thread and on all
(--threads, default "1,<cores>").  --quick shrinks everything.

    python3 bench/bench_fastscan.py [--quick | --full] [--levels avx2,avx512]
                                    [--threads 1,2] [--turns T]
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
# seconds of repeated searches per turn (at least two searches)
TURN_SECONDS = 0.3
TURN_PAUSE = 0.2
VARIANTS = ["", ",RFlat", ",Refine(SQfp16)"]


def worker(lib, folder):
    """Builds every variant's index, then serves timing requests."""
    L = common.import_lib(lib)
    cfg = json.load(open(os.path.join(folder, "cfg.json")))
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n))
                  for n in ("xt", "xb", "xq"))
    d = xb.shape[1]
    info = {}
    if lib == "vecdex":
        info["simd"] = L.build_info().split("simd=")[1].split(";")[0]
        if os.environ.get("VECDEX_SIMD", info["simd"]) != info["simd"]:
            common.serve([], info, L)  # level not here: nothing to build
            return
    searches = []
    for v in VARIANTS:
        index = L.index_factory(d, cfg["desc"] + v)
        index.train(xt)
        index.add(xb)
        if "IVF" in cfg["desc"]:
            L.extract_index_ivf(index).nprobe = cfg["nprobe"]
        params = L.IndexRefineSearchParameters(k_factor=3) if v else None
        searches.append(lambda index=index, params=params:
                        index.search(xq, K, params=params))
    common.serve(searches, info, L)


def run(name, cfg, xt, xb, xq, levels, turns, threads):
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        json.dump(cfg, open(os.path.join(folder, "cfg.json"), "w"))
        gt = common.exact_knn(xb, xq, K)
        script = os.path.abspath(__file__)
        # every library's worker stays up (built one after the other), and
        # they take turns timing each case
        servers = {"faiss": common.Server(script, "faiss", folder)}
        try:
            for lv in levels:
                s = common.Server(script, "vecdex", folder,
                                  env=dict(os.environ, VECDEX_SIMD=lv))
                if s.info["simd"] != lv:
                    print(f"  [{name}] vecdex {lv}: not available on this CPU "
                          f"(it would run {s.info['simd']}); not measured")
                    s.close()
                    continue
                servers["vecdex-" + lv] = s
            res = {c: {} for c in servers}
            for vi, v in enumerate(VARIANTS):
                for c, s in servers.items():
                    f = os.path.join(folder, f"I_{c}_{vi}.npy")
                    s.ask("save", vi, f)
                    res[c][vi] = dict(recall=common.recall_at(np.load(f), gt, K))
                for nt in threads:
                    times = {c: [] for c in servers}
                    for turn in range(turns):
                        order = list(servers) if turn % 2 == 0 else list(servers)[::-1]
                        for c in order:
                            # a pause first: threads that spin after a search
                            # (OpenMP, OpenBLAS) must not overlap the next turn
                            time.sleep(TURN_PAUSE)
                            times[c].append(servers[c].ask("time", vi, TURN_SECONDS, nt)["t"])
                    tf = np.array(times["faiss"])
                    for c in servers:
                        tc = np.array(times[c])
                        res[c][vi][nt] = dict(qps=len(xq) / np.median(tc),
                                              ratio=float(np.median(tf / tc)))
        finally:
            for s in servers.values():
                s.close()
    print(f"\n{name}: d={xb.shape[1]} nt={len(xt)} nb={len(xb)} nq={len(xq)}"
          + (f" nprobe={cfg['nprobe']}" if "IVF" in cfg["desc"] else ""))
    cols = list(res)
    print(f"  {'index':<34}{'threads':>8}"
          + "".join(f"{c + ' R@10':>18}{'QPS':>9}" for c in cols)
          + "".join(f"{'x ' + c[7:]:>10}" for c in cols[1:]))
    for vi, v in enumerate(VARIANTS):
        for nt in threads:
            line = f"  {cfg['desc'] + v:<34}{nt:>8}"
            for c in cols:
                line += f"{res[c][vi]['recall']:>18.4f}{res[c][vi][nt]['qps']:>9.0f}"
            for c in cols[1:]:
                line += f"{res[c][vi][nt]['ratio']:>10.2f}"
            print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--levels", default="avx2,avx512")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}",
                    help="thread counts timed (omp_set_num_threads in both)")
    ap.add_argument("--turns", type=int, default=None,
                    help="turns per case and library, alternating between the "
                         "libraries (default 8, 3 with --quick)")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data)
        return
    levels = a.levels.split(",")
    threads = sorted({int(t) for t in a.threads.split(",")})
    if a.turns is None:
        a.turns = 3 if a.quick else 8
    nb, nq, nt = (20000, 500, 10000) if a.quick else (100000, 1000, 20000)
    _, xb, xq = common.tutorial(nb=nb, nq=nq)
    xt = xb[:nt]
    for desc in ("PQ32x4fs", "IVF100,PQ32x4fs"):
        run(f"tutorial data, {desc}", dict(desc=desc, nprobe=10), xt, xb, xq, levels,
            a.turns, threads)
    xt, xb, xq = common.synthetic(64, nt, nb, nq)
    for desc in ("PQ32x4fs", "IVF100,PQ32x4fs"):
        run(f"synthetic d=64, {desc}", dict(desc=desc, nprobe=10), xt, xb, xq, levels,
            a.turns, threads)
    if a.full:
        nt, nb, nq = 100000, 1000000, 2000
    elif a.quick:
        nt, nb, nq = 20000, 50000, 200
    else:
        nt, nb, nq = 20000, 100000, 500
    xt, xb, xq = common.synthetic(128, nt, nb, nq)
    run("synthetic d=128, IVF1024,PQ32x4fs", dict(desc="IVF1024,PQ32x4fs", nprobe=10),
        xt, xb, xq, levels, a.turns, threads)


if __name__ == "__main__":
    main()
