#!/usr/bin/env python3
"""bench_mmap.py — opening indexes memory-mapped (IO_FLAG_MMAP) against
loading them, vecdex against faiss-cpu, on the same files, one run.

The parent builds the index files once with faiss (Flat, IVF<nlist>,Flat,
IVF<nlist>,PQ32, HNSW32 over SyntheticDataset-like data) and starts one
worker per library (bench/common.py's Server: each library in its own
process, searches timed in alternating turns).  Each worker opens every file
twice, mapped and loaded, and reports:
  - open time and the growth of its RSS across the open (and the file
    size), for both modes;
  - warm-page-cache QPS of the mapped and the loaded index (1 thread);
  - cold cache: the pages of the file are dropped from the page cache with
    posix_fadvise(POSIX_FADV_DONTNEED) before a fresh mapped open (no root
    needed; /proc/sys/vm/drop_caches is used instead when writable), then
    single queries are timed one by one: latency per query and the bytes
    read from storage (/proc/self/io read_bytes).
faiss's mapped mode is read_index(path, IO_FLAG_MMAP | IO_FLAG_MMAP_IFC)
(it maps IVF lists and, with _IFC, flat codes; other kinds are loaded).

    python3 bench/bench_mmap.py [--nb 1000000] [--nlist 4096] [--nb-hnsw N]
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


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_bytes():
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def drop_cache(path):
    """Evicts path's pages from the page cache: posix_fadvise(DONTNEED) on
    the file (no root needed, and it leaves other processes' caches alone;
    pages mapped by a live process stay), or with BENCH_DROP_CACHES=1 the
    global /proc/sys/vm/drop_caches when writable."""
    if os.environ.get("BENCH_DROP_CACHES") == "1":
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("1\n")
            return "drop_caches"
        except OSError:
            pass
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    return "fadvise"


def mmap_flags(L, path):
    """The flags that open path mapped in library L, and whether they did."""
    for fl in (L.IO_FLAG_MMAP | L.IO_FLAG_MMAP_IFC, L.IO_FLAG_MMAP):
        try:
            ix = L.read_index(path, fl)
            del ix
            return fl
        except RuntimeError:
            continue
    return 0


def set_params(ix, key):
    if "IVF" in key:
        ix.nprobe = 16
    if "HNSW" in key:
        ix.hnsw.efSearch = 64


def worker(lib, folder):
    L = common.import_lib(lib)
    L.omp_set_num_threads(1)
    cfg = json.load(open(os.path.join(folder, "cfg.json")))
    xq = np.ascontiguousarray(common.load(folder, "xq"))
    info, searches = dict(files=[]), []
    for key, path in cfg["files"]:
        fl = mmap_flags(L, path)
        entry = dict(key=key, size=os.path.getsize(path), flags=fl)
        # cold: pages dropped, fresh mapped open, single queries
        entry["cold_how"] = drop_cache(path)
        r0 = read_bytes()
        t0 = time.perf_counter()
        cold = L.read_index(path, fl)
        t_open_cold = time.perf_counter() - t0
        set_params(cold, key)
        lat = []
        for i in range(cfg["ncold"]):
            t0 = time.perf_counter()
            cold.search(xq[i:i + 1], K)
            lat.append(time.perf_counter() - t0)
        entry.update(cold_open_s=t_open_cold, cold_lat_ms=1e3 * float(np.median(lat)),
                     cold_lat_first_ms=1e3 * lat[0],
                     cold_read_mb=(read_bytes() - r0) / 1e6 if r0 >= 0 else -1)
        del cold
        for mode, flags in (("mmap", fl), ("mem", 0)):
            r = rss_kb()
            t0 = time.perf_counter()
            ix = L.read_index(path, flags)
            entry[mode + "_open_s"] = time.perf_counter() - t0
            entry[mode + "_rss_mb"] = (rss_kb() - r) / 1024
            set_params(ix, key)
            nq = cfg["nq_flat"] if key == "Flat" else len(xq)
            q = xq[:nq]
            entry[mode + "_i"] = len(searches)
            entry[mode + "_nq"] = nq
            searches.append(lambda ix=ix, q=q: ix.search(q, K))
        info["files"].append(entry)
    common.serve(searches, info, L)


def build(folder, xt, xb, nlist, nb_hnsw):
    import faiss
    faiss.omp_set_num_threads(2)
    d = xb.shape[1]
    out = []
    for key, n in (("Flat", len(xb)), (f"IVF{nlist},Flat", len(xb)),
                   (f"IVF{nlist},PQ32", len(xb)), ("HNSW32", nb_hnsw)):
        path = os.path.join(folder, key.replace(",", "_") + ".faiss")
        t0 = time.perf_counter()
        ix = faiss.index_factory(d, key)
        if not ix.is_trained:
            ix.train(xt)
        ix.add(xb[:n])
        faiss.write_index(ix, path)
        print(f"built {key} over {n} vectors in {time.perf_counter() - t0:.0f} s",
              flush=True)
        del ix
        out.append((key, path))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--nb", type=int, default=1000000)
    ap.add_argument("--nt", type=int, default=100000)
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--nb-hnsw", type=int, default=None)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--turns", type=int, default=3)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    xt, xb, xq = common.synthetic(128, a.nt, a.nb, a.nq)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        common.save(folder, xq=xq)
        files = build(folder, xt, xb, a.nlist, a.nb_hnsw or a.nb)
        json.dump(dict(files=files, nq_flat=20, ncold=20),
                  open(os.path.join(folder, "cfg.json"), "w"))
        srv = {lib: common.Server(os.path.abspath(__file__), lib, folder)
               for lib in ("faiss", "vecdex")}
        best = {lib: {} for lib in srv}
        for _ in range(a.turns):
            for e in srv["vecdex"].info["files"]:
                for mode in ("mmap", "mem"):
                    for lib in ("faiss", "vecdex"):
                        ee = next(x for x in srv[lib].info["files"] if x["key"] == e["key"])
                        t = srv[lib].ask("time", ee[mode + "_i"], 0.5, 1)["t"]
                        k = (e["key"], mode)
                        best[lib][k] = min(best[lib].get(k, 1e30), t)
        for s in srv.values():
            s.close()
    print(f"\nd=128 nb={a.nb} (HNSW {a.nb_hnsw or a.nb}) nq={a.nq} (Flat 20), "
          f"k={K}, 1 thread; nprobe 16, efSearch 64")
    for e in srv["vecdex"].info["files"]:
        key = e["key"]
        f = next(x for x in srv["faiss"].info["files"] if x["key"] == key)
        print(f"\n{key}: file {e['size'] / 1e6:.0f} MB; faiss mapped flags "
              f"{'0x%x' % f['flags'] if f['flags'] else 'none (loads)'}")
        print(f"  {'':8} {'open ms':>9} {'RSS MB':>8} {'RSS/file':>8} {'QPS':>9}")
        for lib, x in (("faiss", f), ("vecdex", e)):
            for mode in ("mmap", "mem"):
                qps = x[mode + "_nq"] / best[lib][(key, mode)]
                print(f"  {lib + ' ' + mode:14} {1e3 * x[mode + '_open_s']:>9.1f} "
                      f"{x[mode + '_rss_mb']:>8.1f} {x[mode + '_rss_mb'] * 2**20 / x['size']:>8.3f} {qps:>9.0f}")
        v = {m: e[m + "_nq"] / best["vecdex"][(key, m)] for m in ("mmap", "mem")}
        fm = f["mmap_nq"] / best["faiss"][(key, "mmap")]
        print(f"  vecdex mapped/loaded QPS {v['mmap'] / v['mem']:.2f}; "
              f"vecdex/faiss mapped QPS {v['mmap'] / fm:.2f}")
        for lib, x in (("faiss", f), ("vecdex", e)):
            print(f"  cold ({x['cold_how']}) {lib}: open {1e3 * x['cold_open_s']:.1f} ms, "
                  f"first query {x['cold_lat_first_ms']:.1f} ms, median "
                  f"{x['cold_lat_ms']:.2f} ms/query, read {x['cold_read_mb']:.1f} MB "
                  f"for 20 queries")


if __name__ == "__main__":
    main()
