"""bench_gpu.py — vecdex's GPU indexes against faiss-gpu (issue 22).

Cases (the full run): Flat on 1M x 128 with 10k queries at k = 1, 10, 100,
1024; IVF4096,Flat and IVF4096,PQ32 at nprobe 1..64.  Each case reports QPS
(queries per second of the search of all queries, host arrays in and out,
best of --reps runs after a warm-up) and recall against exact ground truth
(vecdex's CPU flat index: independent of either GPU code).  --quick runs a
small version (200k x 128, 2k queries, IVF1024) that fits a short check.

The IVF indexes are trained and filled once on the CPU by vecdex, written to
a file, and each library loads that file and clones it to the GPU, so both
search the same centroids and codes.

faiss-gpu: used when `import faiss` gives a build with GPUs (faiss-gpu wheels
need the CUDA 12 cuBLAS of nvidia-cublas-cu12, which is too large to carry
to this workplace's GPU machines: see scripts/gpu_check.sh).  Otherwise the
faiss-cpu numbers are printed as a labelled reference and the GPU ratio is
reported as not measured.

The bound of exact search: the time of the sgemm of all queries with all
vectors (torch.mm in fp32, TF32 off, in the tiles vecdex uses) plus the time
to read the nq x nb distance matrix once at the measured device-to-device
bandwidth; a k-selection that reads the inner products once can do no
better.  Reported as bound_s and vecdex's time over it.

Usage: python3 bench/bench_gpu.py [--quick] [--out results.json]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import synthetic  # noqa: E402

import vecdex  # noqa: E402


def timeit(fn, reps):
    fn()  # warm-up (module load, pools, handles)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def recall_at(gt, I, k):
    k = min(k, gt.shape[1], I.shape[1])
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(gt, I)]))


def faiss_gpu():
    try:
        import faiss
    except ImportError:
        return None, "faiss is not installed"
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return faiss, "faiss has no GPU (faiss-cpu build, or no CUDA 12 cuBLAS)"
    return faiss, None


def bound(xq, xb, tile):
    """(sgemm seconds, matrix read seconds) measured with torch, or None."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    q = torch.from_numpy(np.ascontiguousarray(xq)).cuda()
    b = torch.from_numpy(np.ascontiguousarray(xb)).cuda()
    out = torch.empty((min(tile[0], q.shape[0]), min(tile[1], b.shape[0])),
                      device="cuda")

    def run():
        for i in range(0, q.shape[0], tile[0]):
            for j in range(0, b.shape[0], tile[1]):
                qi, bj = q[i:i + tile[0]], b[j:j + tile[1]]
                torch.mm(qi, bj.T, out=out[:qi.shape[0], :bj.shape[0]])
        torch.cuda.synchronize()
    t_gemm = timeit(run, 3)
    big = torch.empty(1 << 28, device="cuda")  # 1 GiB
    dst = torch.empty_like(big)

    def cp():
        dst.copy_(big)
        torch.cuda.synchronize()
    t_cp = timeit(cp, 5)
    bw = 2 * big.numel() * 4 / t_cp  # bytes read + written per second
    t_read = q.shape[0] * b.shape[0] * 4 / (bw / 2)
    return t_gemm, t_read, bw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-ivf", action="store_true")
    ap.add_argument("--tiny", action="store_true",
                    help="a smoke test of the script (e.g. on the emulated device)")
    a = ap.parse_args()
    if a.tiny:
        d, nb, nq, nt, nlist = 32, 20000, 100, 5000, 64
        ks, nprobes, pq = [1, 10, 100], [1, 8], "PQ8"
    elif a.quick:
        d, nb, nq, nt, nlist = 128, 200000, 2000, 50000, 1024
        ks, nprobes, pq = [1, 10, 100, 1024], [1, 4, 16, 64], "PQ32"
    else:
        d, nb, nq, nt, nlist = 128, 1000000, 10000, 160000, 4096
        ks, nprobes, pq = [1, 10, 100, 1024], [1, 2, 4, 8, 16, 32, 64], "PQ32"
    print(f"vecdex {vecdex.__version__}: {vecdex.gpu_info()}", flush=True)
    if vecdex.get_num_gpus() == 0:
        raise SystemExit("bench_gpu: no GPU")
    faiss, why = faiss_gpu()
    print("faiss-gpu:", "yes" if why is None else f"not measured ({why})", flush=True)
    xt, xb, xq = synthetic(d, nt, nb, nq)
    rows = []
    t0 = time.perf_counter()
    cpu = vecdex.IndexFlatL2(d)
    cpu.add(xb)
    _, gt = cpu.search(xq, max(ks))
    print(f"ground truth (vecdex CPU, k={max(ks)}): {time.perf_counter() - t0:.1f}s",
          flush=True)

    # ---- Flat ----
    res = vecdex.StandardGpuResources()
    g = vecdex.index_cpu_to_gpu(res, 0, cpu)
    fres = fg = None
    if why is None:
        fres = faiss.StandardGpuResources()
        fc = faiss.IndexFlatL2(d)
        fc.add(xb)
        fg = faiss.index_cpu_to_gpu(fres, 0, fc)
    b = bound(xq, xb, (4096, 65536))
    for k in ks:
        row = {"case": f"Flat k={k}"}
        t = timeit(lambda: g.search(xq, k), a.reps)
        _, I = g.search(xq, k)
        row.update(vecdex_qps=nq / t, vecdex_recall=recall_at(gt, I, k))
        if fg is not None and k <= 2048:
            tf = timeit(lambda: fg.search(xq, k), a.reps)
            _, If = fg.search(xq, k)
            row.update(faiss_qps=nq / tf, faiss_recall=recall_at(gt, If, k),
                       ratio=tf / t)
        if b:
            row.update(bound_s=b[0] + b[1], vecdex_s=t,
                       of_bound=(b[0] + b[1]) / t)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if b:
        print(f"bound: sgemm {b[0]:.4f}s + one read of the {nq}x{nb} matrix "
              f"{b[1]:.4f}s (copy bandwidth {b[2] / 1e12:.2f} TB/s)", flush=True)
    del g

    # ---- IVF ----
    if not a.skip_ivf:
        for desc in [f"IVF{nlist},Flat", f"IVF{nlist},{pq}"]:
            t0 = time.perf_counter()
            ci = vecdex.index_factory(d, desc)
            ci.train(xt)
            ci.add(xb)
            print(f"{desc}: built on the CPU in {time.perf_counter() - t0:.1f}s",
                  flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "ivf.index")
                vecdex.write_index(ci, path)
                gi = vecdex.index_cpu_to_gpu(res, 0, vecdex.read_index(path))
                fgi = None
                if why is None:
                    fgi = faiss.index_cpu_to_gpu(fres, 0, faiss.read_index(path))
            for nprobe in nprobes:
                gi.nprobe = nprobe
                row = {"case": f"{desc} nprobe={nprobe}"}
                t = timeit(lambda: gi.search(xq, 10), a.reps)
                _, I = gi.search(xq, 10)
                row.update(vecdex_qps=nq / t, vecdex_recall=recall_at(gt, I, 10))
                if fgi is not None:
                    fgi.nprobe = nprobe
                    tf = timeit(lambda: fgi.search(xq, 10), a.reps)
                    _, If = fgi.search(xq, 10)
                    row.update(faiss_qps=nq / tf, faiss_recall=recall_at(gt, If, 10),
                               ratio=tf / t)
                rows.append(row)
                print(json.dumps(row), flush=True)
            del gi, fgi

    print("\n%-28s %12s %8s %12s %8s %7s %9s" % ("case", "vecdex QPS", "R", "faiss QPS",
                                             "R", "ratio", "of bound"))
    for r in rows:
        print("%-28s %12.0f %8.3f %12s %8s %7s %9s" % (
            r["case"], r["vecdex_qps"], r["vecdex_recall"],
            "%.0f" % r["faiss_qps"] if "faiss_qps" in r else "-",
            "%.3f" % r["faiss_recall"] if "faiss_recall" in r else "-",
            "%.2f" % r["ratio"] if "ratio" in r else "-",
            "%.2f" % r["of_bound"] if "of_bound" in r else "-"))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"gpu": vecdex.gpu_info(), "faiss_gpu": why or "yes",
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
