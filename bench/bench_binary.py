#!/usr/bin/env python3
"""bench_binary.py — binary indexes: vecdex against faiss-cpu, side by side.

Random codes (seed 123), nb = 200,000, nq = 2,000, for d = 64, 256 and 1024
bits: IndexBinaryFlat k-NN (k = 10), IndexBinaryFlat range search, and
IndexBinaryIVF (nlist 256, nprobe 8) k-NN.  Each library runs in its own
process (common.Server); the two take alternating turns and the best time of
each is kept.  Prints QPS per library and the vecdex/faiss ratio, and checks
that both return the same labels for the flat search.

    python3 bench/bench_binary.py [--quick] [--threads T]
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DS = (64, 256, 1024)


def worker(lib, folder):
    L = common.import_lib(lib)
    searches, names = [], []
    for d in DS:
        xb = np.ascontiguousarray(common.load(folder, f"xb{d}"))
        xq = np.ascontiguousarray(common.load(folder, f"xq{d}"))
        xt = xb[:20000]
        fl = L.IndexBinaryFlat(d)
        fl.add(xb)
        radius = int(d * 0.40)
        ivf = L.IndexBinaryIVF(L.IndexBinaryFlat(d), d, 256)
        ivf.train(xt)
        ivf.add(xb)
        ivf.nprobe = 8
        searches += [lambda fl=fl, xq=xq: fl.search(xq, 10),
                     lambda fl=fl, xq=xq, r=radius: (None, fl.range_search(xq, r)[2]),
                     lambda ivf=ivf, xq=xq: ivf.search(xq, 10)]
        names += [f"flat d={d} k=10", f"flat range d={d} r={radius}",
                  f"ivf256 np=8 d={d} k=10"]
    common.serve(searches, {"names": names}, L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    nb, nq = (50000, 500) if a.quick else (200000, 2000)
    with tempfile.TemporaryDirectory() as folder:
        rs = np.random.RandomState(123)
        for d in DS:
            common.save(folder, **{f"xb{d}": rs.randint(256, size=(nb, d // 8)).astype("uint8"),
                                   f"xq{d}": rs.randint(256, size=(nq, d // 8)).astype("uint8")})
        servers = [common.Server(__file__, lib, folder) for lib in ("faiss", "vecdex")]
        names = servers[0].info["names"]
        threads = a.threads or os.cpu_count()
        print(f"# {common.cpu_model()}; nb={nb} nq={nq} threads={threads}")
        print(f"{'case':32s} {'faiss QPS':>11s} {'vecdex QPS':>11s} {'ratio':>6s}")
        for i, name in enumerate(names):
            best = {}
            for _ in range(2):  # alternating turns
                for s in servers:
                    t = s.ask("time", i, 0.5 if a.quick else 1.5, threads)["t"]
                    best[s.lib] = min(best.get(s.lib, 1e30), t)
            qf, qv = nq / best["faiss"], nq / best["vecdex"]
            print(f"{name:32s} {qf:11.0f} {qv:11.0f} {qv / qf:6.2f}")
        for i, name in enumerate(names):
            if name.startswith("flat d="):
                paths = [os.path.join(folder, f"I{s.lib}.npy") for s in servers]
                for s, p in zip(servers, paths):
                    s.ask("save", i, p)
                same = np.array_equal(np.load(paths[0]), np.load(paths[1]))
                print(f"# {name}: labels identical to faiss: {same}")
        for s in servers:
            s.close()


if __name__ == "__main__":
    main()
