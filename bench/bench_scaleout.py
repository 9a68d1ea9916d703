#!/usr/bin/env python3
"""bench_scaleout.py — scale-out in one process: vecdex's IndexShards,
IndexShardsIVF and IndexReplicas against faiss-cpu's, side by side
(issue 21 §4), and with --mpi the sharded search across MPI ranks.

Cases, the same data for both libraries, each library in its own process
(common.Server), taking alternating timing turns:
  - IndexShards of 4 IndexFlatL2 (successive ids), threaded and not
    (faiss's threaded shards each start their own OpenMP / BLAS team);
  - IndexShards(threaded) of 4 IVF1024,Flat sharing trained centroids
    (each shard's nprobe set to 16);
  - IndexShardsIVF(threaded): one quantizer, 4 IVF1024,Flat shards,
    nprobe 16 (coarse step once for all shards in vecdex; per shard in
    faiss);
  - IndexReplicas(threaded) of 2 IndexFlatL2 (the query batch split).
Prints recall@10 against brute force, QPS and the vecdex/faiss QPS ratio
(median over turns of the per-turn ratio).

    python3 bench/bench_scaleout.py [--small] [--turns N] [--threads 1,2]
    python3 bench/bench_scaleout.py --mpi [--mpi-nb 1000000] [--ranks 1,2,4]
                                    [--bench-dist build/release/bench_dist]

MPI part: `mpirun -np N bench_dist KIND NB NQ BATCH` (bench/bench_dist.c,
built with the C library when MPI is found) for Flat and IVF4096,Flat
nprobe 16 on NB x 128 (ranks on this machine's cores, one OpenMP thread
each): QPS, latency per batch, and its parts — the slowest shard's
search, the merge on rank 0, and the rest (communication and waiting);
comm + merge share is (latency - search) / latency.
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
NSHARD = 4
NLIST = 1024
NPROBE = 16
TURN_SECONDS = 0.3
TURN_PAUSE = 0.2
CASES = ["Shards(4 x Flat)", "Shards(4 x Flat) not threaded", "Shards(4 x IVF1024,Flat) np16",
         "ShardsIVF(4 x IVF1024,Flat) np16", "Replicas(2 x Flat)"]


def worker(lib, folder):
    L = common.import_lib(lib)
    xt, xb, xq = (np.ascontiguousarray(common.load(folder, n))
                  for n in ("xt", "xb", "xq"))
    d = xb.shape[1]
    keep = []  # sub-indexes stay referenced for the shards' lifetime
    info = {"build_s": {}}

    def flat_shards(threaded=True):
        sh = L.IndexShards(d, threaded, True)
        for _ in range(NSHARD):
            s = L.IndexFlatL2(d)
            keep.append(s)
            sh.add_shard(s)
        sh.add(xb)
        return sh

    def ivf_shards():
        proto = L.index_factory(d, f"IVF{NLIST},Flat")
        proto.train(xt)
        sh = L.IndexShards(d, True, True)
        for _ in range(NSHARD):
            s = L.clone_index(proto)
            s.nprobe = NPROBE
            keep.append(s)
            sh.add_shard(s)
        sh.add(xb)
        return sh

    def shards_ivf():
        q = L.IndexFlatL2(d)
        keep.append(q)
        sh = L.IndexShardsIVF(q, NLIST, True, True)
        for _ in range(NSHARD):
            s = L.IndexIVFFlat(L.IndexFlatL2(d), d, NLIST)
            s.nprobe = NPROBE
            keep.append(s)
            sh.add_shard(s)
        sh.train(xt)
        sh.add(xb)
        return sh

    def replicas():
        one = L.IndexFlatL2(d)
        one.add(xb)
        sh = L.IndexReplicas(d, True)
        for _ in range(2):
            s = L.clone_index(one)
            keep.append(s)
            sh.add_replica(s)
        return sh

    searches = []
    for name, build in zip(CASES, (flat_shards, lambda: flat_shards(False), ivf_shards, shards_ivf, replicas)):
        t, index = common.timed(build)
        info["build_s"][name] = t
        keep.append(index)
        searches.append(lambda index=index: index.search(xq, K))
    common.serve(searches, info, L)


def mpi_part(a):
    import subprocess
    exe = a.bench_dist
    if not os.path.exists(exe):
        raise SystemExit(f"{exe} not built (MPI not found?)")
    print(f"\nMPI sharded search: nb={a.mpi_nb} d=128 k=10, queries in batches of {a.batch}")
    print(f"  {'index':<22}{'ranks':>6}{'QPS':>9}{'batch ms':>10}{'search ms':>11}"
          f"{'merge ms':>10}{'comm ms':>9}{'comm+merge':>11}{'build s':>9}")
    for kind, nq in (("flat", a.nq_flat), ("ivf", a.nq_ivf)):
        for np_ in [int(r) for r in a.ranks.split(",")]:
            cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
                   "-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1", "-np", str(np_),
                   exe, kind, str(a.mpi_nb), str(nq), str(a.batch)]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            if p.returncode or not line:
                print(f"  {kind} {np_} ranks failed: {p.stderr[-2000:]}")
                continue
            r = json.loads(line[-1])
            name = "Flat" if kind == "flat" else "IVF4096,Flat np16"
            print(f"  {name:<22}{np_:>6}{r['qps']:>9.1f}{r['latency_ms']:>10.2f}"
                  f"{r['search_ms']:>11.2f}{r['merge_ms']:>10.3f}{r['comm_ms']:>9.2f}"
                  f"{100 * r['comm_merge_share']:>10.1f}%{r['build_s']:>9.1f}", flush=True)
    mpi_writes(a)


def mpi_writes(a):
    """Routed adds (vdx_dist_add, batches of 10k, round robin) vs the same
    batches added to one local IDMap,Flat; a removal of 1% of the ids; a
    save of every shard."""
    import subprocess
    nb = a.mpi_nb // 4
    print(f"\nMPI writes: {nb} x 128 added in batches of 10000 to IDMap,Flat shards")
    print(f"  {'ranks':>6}{'add vec/s':>12}{'local vec/s':>13}{'ratio':>7}"
          f"{'remove ms':>11}{'save s':>8}")
    for np_ in [int(r) for r in a.ranks.split(",")]:
        cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
               "-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1", "-np", str(np_),
               a.bench_dist, "add", str(nb), str(nb // 100), "10000"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode or not line:
            print(f"  add {np_} ranks failed: {p.stderr[-2000:]}")
            continue
        r = json.loads(line[-1])
        print(f"  {np_:>6}{r['add_vps']:>12.0f}{r['local_add_vps']:>13.0f}"
              f"{r['add_vps'] / r['local_add_vps']:>7.2f}{r['remove_ms']:>11.2f}"
              f"{r['save_s']:>8.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpi", action="store_true")
    ap.add_argument("--mpi-nb", type=int, default=1000000)
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--nq-flat", type=int, default=300)
    ap.add_argument("--nq-ivf", type=int, default=2000)
    ap.add_argument("--bench-dist", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "release",
        "bench_dist"))
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--threads", default="2")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.data)
        return
    if a.mpi:
        mpi_part(a)
        return
    nb = 100000 if a.small else 200000
    nq = 500 if a.small else 1000
    xt, xb, xq = common.synthetic(128, 50000, nb, nq)
    threads = [int(t) for t in a.threads.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        common.save(folder, xt=xt, xb=xb, xq=xq)
        gt = common.exact_knn(xb, xq, K)
        script = os.path.abspath(__file__)
        servers = {lib: common.Server(script, lib, folder) for lib in ("faiss", "vecdex")}
        res = {lib: {} for lib in servers}
        try:
            for ci in range(len(CASES)):
                for lib, s in servers.items():
                    f = os.path.join(folder, f"I_{lib}_{ci}.npy")
                    s.ask("save", ci, f)
                    res[lib][ci] = dict(recall=common.recall_at(np.load(f), gt, K))
                for nt in threads:
                    times = {lib: [] for lib in servers}
                    for turn in range(a.turns):
                        order = list(servers) if turn % 2 == 0 else list(servers)[::-1]
                        for lib in order:
                            time.sleep(TURN_PAUSE)
                            times[lib].append(servers[lib].ask("time", ci, TURN_SECONDS, nt)["t"])
                    tf = np.array(times["faiss"])
                    for lib in servers:
                        tl = np.array(times[lib])
                        res[lib][ci][nt] = dict(qps=nq / np.median(tl),
                                                ratio=float(np.median(tf / tl)))
            build = {lib: s.info["build_s"] for lib, s in servers.items()}
        finally:
            for s in servers.values():
                s.close()
    print(f"\nin-process scale-out: d=128 nt={len(xt)} nb={nb} nq={nq} k={K} "
          f"({a.turns} alternating turns, median)")
    print(f"  {'case':<36}{'thr':>4}{'faiss R@10':>11}{'vecdex R@10':>12}"
          f"{'faiss QPS':>10}{'vecdex QPS':>11}{'ratio':>7}{'build f/v s':>14}")
    for ci, name in enumerate(CASES):
        for nt in threads:
            f, v = res["faiss"][ci], res["vecdex"][ci]
            print(f"  {name:<36}{nt:>4}{f['recall']:>11.4f}{v['recall']:>12.4f}"
                  f"{f[nt]['qps']:>10.0f}{v[nt]['qps']:>11.0f}{v[nt]['ratio']:>7.2f}"
                  f"{build['faiss'][name]:>7.2f}/{build['vecdex'][name]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
