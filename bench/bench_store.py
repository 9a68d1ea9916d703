#!/usr/bin/env python3
"""bench_store.py — the store: vecdex.Store against chromadb and lancedb.

The seeds' shape: 384-d normalised vectors (--n rows, 100k by default), a
category of 20 values, a year (20 values), tags, a short text each; cosine.
Each library runs in its own process on the same data (written once as
.npy/.json), one after the other: ingest rows/s (batches of 5000 with ids,
metadata and texts, then closed), open time, one query per call (k=10) for
QPS and recall@10 unfiltered and at 1% / 10% / 50% filters (ground truth by
brute force here), hybrid QPS where the library has it, bytes on disk.
Filtered results shorter than k are counted and reported.

  vecdex: HNSW32 (efSearch 64); chromadb: its default HNSW (hnswlib, M 16);
  lancedb: no ANN index (its flat scan, exact) with prefilter.

    python3 bench/bench_store.py [--n 100000] [--nq 200]
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

D, K = 384, 10
FILTERS = {  # name -> (vecdex/chroma where, lance SQL, numpy mask)
    "1%": ({"$and": [{"category": "c3"}, {"year": {"$lt": 2004}}]},
           "category = 'c3' AND year < 2004", lambda c, y: (c == 3) & (y < 2004)),
    "10%": ({"category": {"$in": ["c0", "c1"]}}, "category IN ('c0', 'c1')",
            lambda c, y: c < 2),
    "50%": ({"year": {"$gte": 2010}}, "year >= 2010", lambda c, y: y >= 2010),
}


def make(folder, n, nq):
    rs = np.random.RandomState(123)
    # clustered like embeddings: 200 centres + noise, normalised
    cen = rs.normal(size=(200, D)).astype("float32")
    lab = rs.randint(200, size=n + nq)
    x = cen[lab] + 0.6 * rs.normal(size=(n + nq, D)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cat = rs.randint(20, size=n)
    year = 2000 + rs.randint(20, size=n)
    words = ["vector", "store", "search", "index", "query", "graph", "model",
             "retrieval", "token", "embedding", "cluster", "filter"]
    texts = [" ".join(words[j] for j in rs.randint(len(words), size=6)) + f" doc{i}"
             for i in range(n)]
    common.save(folder, xb=x[:n], xq=x[n:], cat=cat, year=year)
    json.dump(texts, open(os.path.join(folder, "texts.json"), "w"))


def du(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def worker(lib, folder):
    xb = np.ascontiguousarray(common.load(folder, "xb"))
    xq = np.ascontiguousarray(common.load(folder, "xq"))
    cat, year = common.load(folder, "cat"), common.load(folder, "year")
    texts = json.load(open(os.path.join(folder, "texts.json")))
    n = len(xb)
    path = os.path.join(folder, "db_" + lib)
    meta = [{"category": f"c{c}", "year": int(y)} for c, y in zip(cat, year)]
    out = {}
    B = 5000
    if lib == "vecdex":
        import vecdex
        t0 = time.perf_counter()
        s = vecdex.Store.create(path, D, metric="cosine", index="HNSW32",
                                schema={"category": "text", "year": "int", "tags": "tags"})
        for b in range(0, n, B):
            e = min(n, b + B)
            s.upsert(range(b, e), xb[b:e], [dict(m, tags=["t%d" % (i % 5)])
                                           for i, m in enumerate(meta[b:e], b)],
                     texts[b:e])
        s.close()
        out["ingest"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        s = vecdex.Store.open(path)
        out["open_s"] = time.perf_counter() - t0
        P = {"efSearch": 64}

        def search(q, where):
            return s.search(q, K, where=where, params=P)[0].ids

        def hybrid(q, text):
            return s.hybrid_search(q, text, K, params=P).ids
    elif lib == "chromadb":
        import chromadb
        t0 = time.perf_counter()
        cl = chromadb.PersistentClient(path=path)
        col = cl.create_collection("bench", metadata={"hnsw:space": "cosine"})
        for b in range(0, n, B):
            e = min(n, b + B)
            col.add(ids=[str(i) for i in range(b, e)], embeddings=xb[b:e],
                    metadatas=meta[b:e], documents=texts[b:e])
        del col, cl
        out["ingest"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        cl = chromadb.PersistentClient(path=path)
        col = cl.get_collection("bench")
        col.query(query_embeddings=xq[:1], n_results=1)  # loads the index
        out["open_s"] = time.perf_counter() - t0

        def search(q, where):
            r = col.query(query_embeddings=q, n_results=K, where=where, include=[])
            return [int(i) for i in r["ids"][0]]
        hybrid = None
    else:
        import lancedb
        import pyarrow as pa
        t0 = time.perf_counter()
        db = lancedb.connect(path)
        tbl = None
        for b in range(0, n, B):
            e = min(n, b + B)
            data = pa.table({
                "id": pa.array(np.arange(b, e)),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(xb[b:e].ravel()), D),
                "category": [f"c{c}" for c in cat[b:e]],
                "year": pa.array(year[b:e].astype("int64")),
                "text": texts[b:e]})
            if tbl is None:
                tbl = db.create_table("t", data=data)
            else:
                tbl.add(data)
        del tbl, db
        out["ingest"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        db = lancedb.connect(path)
        tbl = db.open_table("t")
        tbl.search(xq[0]).metric("cosine").limit(1).to_list()
        out["open_s"] = time.perf_counter() - t0
        sqlw = {json.dumps(v[0]): v[1] for v in FILTERS.values()}

        def search(q, where):
            qq = tbl.search(q[0]).metric("cosine").select(["id"]).limit(K)
            if where is not None:
                qq = qq.where(sqlw[json.dumps(where)], prefilter=True)
            return [r["id"] for r in qq.to_list()]
        hybrid = None
    res = {}
    for name, where in [("unfiltered", None)] + [(k, v[0]) for k, v in FILTERS.items()]:
        search(xq[:1], where)  # warm-up
        t0 = time.perf_counter()
        I = [search(xq[i:i + 1], where) for i in range(len(xq))]
        t = time.perf_counter() - t0
        short = sum(len(r) < K for r in I)
        I = np.array([r + [-1] * (K - len(r)) for r in I])
        np.save(os.path.join(folder, f"I_{lib}_{name}.npy"), I)
        res[name] = dict(qps=len(xq) / t, short=short)
    out["search"] = res
    if hybrid:
        words = [t.split()[0] + " " + t.split()[1] for t in texts[:len(xq)]]
        t0 = time.perf_counter()
        for i in range(len(xq)):
            hybrid(xq[i], words[i])
        out["hybrid_qps"] = len(xq) / (time.perf_counter() - t0)
    out["bytes_disk"] = du(path)
    print(json.dumps(out))


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--libs", default="vecdex,chromadb,lancedb")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    import vecdex
    print(f"CPU: {cpu_model()} ({os.cpu_count()} threads); vecdex {vecdex.build_info()}")
    folder = tempfile.mkdtemp(prefix="bench_store_")
    try:
        make(folder, a.n, a.nq)
        xb, xq = common.load(folder, "xb"), common.load(folder, "xq")
        cat, year = common.load(folder, "cat"), common.load(folder, "year")
        sims = np.asarray(xq) @ np.asarray(xb).T
        gts = {"unfiltered": np.argsort(-sims, axis=1)[:, :K]}
        for name, (_, _, mask) in FILTERS.items():
            s2 = sims.copy()
            s2[:, ~mask(np.asarray(cat), np.asarray(year))] = -np.inf
            gts[name] = np.argsort(-s2, axis=1)[:, :K]
        print(f"data: n={a.n}, d={D}, {a.nq} queries, one per call, k={K}")
        results = {}
        for lib in a.libs.split(","):
            try:
                results[lib] = common.run_worker(__file__, lib, folder)
            except SystemExit as e:
                print(f"{lib}: failed: {str(e)[-500:]}")
        hdr = f"{'':16}" + "".join(f"{lib:>22}" for lib in results)
        print(hdr)
        print(f"{'ingest rows/s':16}" + "".join(f"{r['ingest']:>22.0f}" for r in results.values()))
        print(f"{'open s':16}" + "".join(f"{r['open_s']:>22.3f}" for r in results.values()))
        print(f"{'bytes on disk':16}" + "".join(f"{r['bytes_disk']:>22,}" for r in results.values()))
        for name in ["unfiltered"] + list(FILTERS):
            cells = []
            for lib, r in results.items():
                I = np.load(os.path.join(folder, f"I_{lib}_{name}.npy"))
                rec = common.recall_at(I, gts[name], K)
                s = r["search"][name]
                cells.append(f"{s['qps']:8.0f} QPS R {rec:.3f}" +
                             (f" {s['short']}<k" if s["short"] else ""))
            print(f"{'search ' + name:16}" + "".join(f"{c:>22}" for c in cells))
        print(f"{'hybrid QPS':16}" + "".join(
            f"{r['hybrid_qps']:>22.0f}" if "hybrid_qps" in r else f"{'(none built in)':>22}"
            for r in results.values()))
        v = results.get("vecdex")
        for lib, r in results.items():
            if lib == "vecdex" or not v:
                continue
            ratios = [v["ingest"] / r["ingest"]] + [
                v["search"][k]["qps"] / r["search"][k]["qps"] for k in v["search"]]
            print(f"vecdex / {lib}: ingest {ratios[0]:.2f}x, search " +
                  ", ".join(f"{k} {q:.2f}x" for k, q in zip(v["search"], ratios[1:])) +
                  " (target >= 2x each)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
