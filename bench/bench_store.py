#!/usr/bin/env python3
"""bench_store.py — the store: vecdex.Store against chromadb and lancedb.

The seeds' shape: 384-d normalised vectors (--n rows, 100k by default), a
category of 20 values, a year (20 values), one tag of 5, a short text each;
cosine.  Each library runs in its own process (common.Server) on the same
data, written once as .npy/.json; the libraries take turns a fraction of a
second apart, so that the machine's drift hits them alike:
  - ingest: batches of 5000 rows (ids, vectors, metadata, texts), one batch
    per library in turn, then close; rows/s over the summed batch times
    plus the close;
  - open time (open + first query, which loads the index);
  - search: one query per call (k=10) over --nq queries, unfiltered and at
    0.1% / 1% / 10% / 50% filters, and hybrid (vector + keywords) where the
    library has it built in; each pass timed --rounds times in turn, the
    best kept; recall@10 against brute force computed here; results shorter
    than k (with k matching rows) counted and reported;
  - bytes on disk.

  vecdex: HNSW32 (efConstruction 100, the store's default; efSearch 128,
  or $BENCH_STORE_EF); chromadb: its default HNSW (hnswlib, M 16, ef 100);
  lancedb: no ANN index (its flat scan, exact) with prefilter, and its
  native FTS index (built after the last batch, counted in its ingest) for
  hybrid search, fused by its default RRF reranker.  lancedb's ingest
  thus builds no vector index at all (vecdex's and chromadb's build HNSW
  graphs as they go): the optional peer `lancedb_ann` (--libs ...,
  lancedb_ann) is the same table with its IVF_HNSW_SQ index built after the
  last batch, counted in its ingest, searched with nprobes 20 and a
  refine factor 4 (exact rescoring of 4 k candidates).  vecdex's
  tags field is a list ["t3"]; the peers hold the same tag as a text field,
  so `$contains` and `=` select the same rows.

    python3 bench/bench_store.py [--n 100000] [--nq 200] [--rounds 3]
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

D, K, B = 384, 10, 5000
# name -> (vecdex where, chroma where, lance SQL, numpy mask over (cat, year, tag))
FILTERS = {
    "0.1%": ({"category": "c3", "year": {"$lt": 2002}, "tags": {"$contains": "t0"}},
             {"$and": [{"category": "c3"}, {"year": {"$lt": 2002}}, {"tag": "t0"}]},
             "category = 'c3' AND year < 2002 AND tag = 't0'",
             lambda c, y, t: (c == 3) & (y < 2002) & (t == 0)),
    "1%": ({"$and": [{"category": "c3"}, {"year": {"$lt": 2004}}]},
           {"$and": [{"category": "c3"}, {"year": {"$lt": 2004}}]},
           "category = 'c3' AND year < 2004", lambda c, y, t: (c == 3) & (y < 2004)),
    "10%": ({"category": {"$in": ["c0", "c1"]}}, {"category": {"$in": ["c0", "c1"]}},
            "category IN ('c0', 'c1')", lambda c, y, t: c < 2),
    "50%": ({"year": {"$gte": 2010}}, {"year": {"$gte": 2010}}, "year >= 2010",
            lambda c, y, t: y >= 2010),
}
WORDS = ["vector", "store", "search", "index", "query", "graph", "model",
         "retrieval", "token", "embedding", "cluster", "filter"]


def make(folder, n, nq):
    rs = np.random.RandomState(123)
    # clustered like embeddings: 200 centres + noise, normalised
    cen = rs.normal(size=(200, D)).astype("float32")
    lab = rs.randint(200, size=n + nq)
    x = cen[lab] + 0.6 * rs.normal(size=(n + nq, D)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cat = rs.randint(20, size=n)
    year = 2000 + rs.randint(20, size=n)
    tag = rs.randint(5, size=n)
    texts = [" ".join(WORDS[j] for j in rs.randint(len(WORDS), size=6)) + f" doc{i}"
             for i in range(n)]
    common.save(folder, xb=x[:n], xq=x[n:], cat=cat, year=year, tag=tag)
    json.dump(texts, open(os.path.join(folder, "texts.json"), "w"))


def du(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


class VecdexLib:
    def __init__(self, path):
        import vecdex
        self.vecdex, self.path = vecdex, path
        self.s = vecdex.Store.create(path, D, metric="cosine", index="HNSW32",
                                     schema={"category": "text", "year": "int",
                                             "tags": "tags"})
        self.P = {"efSearch": int(os.environ.get("BENCH_STORE_EF", "128"))}

    def ingest(self, ids, x, cat, year, tag, texts):
        self.s.upsert(ids, x, [{"category": f"c{c}", "year": int(y), "tags": [f"t{t}"]}
                               for c, y, t in zip(cat, year, tag)], texts)

    def close(self):
        self.s.close()

    def open(self, q):
        self.s = self.vecdex.Store.open(self.path)
        self.s.search(q, 1)

    def search(self, q, i):
        return self.s.search(q, K, where=FILTERS[i][0] if i else None, params=self.P)[0].ids

    def hybrid(self, q, text):
        return self.s.hybrid_search(q, text, K, params=self.P).ids  # RRF, k = 60


class ChromaLib:
    hybrid = None

    def __init__(self, path):
        import chromadb
        self.chromadb, self.path = chromadb, path
        self.cl = chromadb.PersistentClient(path=path)
        self.col = self.cl.create_collection("bench", metadata={"hnsw:space": "cosine"})

    def ingest(self, ids, x, cat, year, tag, texts):
        self.col.add(ids=[str(i) for i in ids], embeddings=x,
                     metadatas=[{"category": f"c{c}", "year": int(y), "tag": f"t{t}"}
                                for c, y, t in zip(cat, year, tag)], documents=texts)

    def close(self):
        del self.col, self.cl

    def open(self, q):
        self.cl = self.chromadb.PersistentClient(path=self.path)
        self.col = self.cl.get_collection("bench")
        self.col.query(query_embeddings=q, n_results=1)  # loads the index

    def search(self, q, i):
        r = self.col.query(query_embeddings=q, n_results=K,
                           where=FILTERS[i][1] if i else None, include=[])
        return [int(j) for j in r["ids"][0]]


class LanceLib:
    def __init__(self, path):
        import lancedb
        import pyarrow as pa
        self.lancedb, self.pa, self.path = lancedb, pa, path
        self.db = lancedb.connect(path)
        self.tbl = None

    def ingest(self, ids, x, cat, year, tag, texts):
        pa = self.pa
        data = pa.table({
            "id": pa.array(np.asarray(ids, dtype="int64")),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), D),
            "category": [f"c{c}" for c in cat], "year": pa.array(year.astype("int64")),
            "tag": [f"t{t}" for t in tag], "text": texts})
        if self.tbl is None:
            self.tbl = self.db.create_table("t", data=data)
        else:
            self.tbl.add(data)

    def close(self):
        # its keyword index, built once here (counted in the ingest time,
        # as vecdex's FTS5 table is filled during the upserts)
        self.tbl.create_fts_index("text")
        del self.tbl, self.db

    def open(self, q):
        self.db = self.lancedb.connect(self.path)
        self.tbl = self.db.open_table("t")
        self.tbl.search(q[0]).metric("cosine").limit(1).to_list()

    def search(self, q, i):
        qq = self.tbl.search(q[0]).metric("cosine").select(["id"]).limit(K)
        if i:
            qq = qq.where(FILTERS[i][2], prefilter=True)
        return [r["id"] for r in qq.to_list()]

    def hybrid(self, q, text):
        # its default reranker: reciprocal rank fusion (k = 60), as vecdex's
        return [r["id"] for r in self.tbl.search(query_type="hybrid").vector(q).text(text)
                .metric("cosine").select(["id"]).limit(K).to_list()]


class LanceAnnLib(LanceLib):
    """lancedb with its ANN index (IVF partitions, an HNSW graph over SQ
    codes in each), built once at close like its FTS index."""

    def close(self):
        self.tbl.create_index(metric="cosine", index_type="IVF_HNSW_SQ",
                              num_partitions=max(1, self.tbl.count_rows() // 4096))
        LanceLib.close(self)

    def search(self, q, i):
        qq = (self.tbl.search(q[0]).metric("cosine").nprobes(20).refine_factor(4)
              .select(["id"]).limit(K))
        if i:
            qq = qq.where(FILTERS[i][2], prefilter=True)
        return [r["id"] for r in qq.to_list()]


LIBS = {"vecdex": VecdexLib, "chromadb": ChromaLib, "lancedb": LanceLib,
        "lancedb_ann": LanceAnnLib}
NOTES = {"lancedb": "flat scan: no vector index built during its ingest",
         "lancedb_ann": "IVF_HNSW_SQ index built at close (in its ingest)",
         "chromadb": "HNSW (hnswlib M16 efC100) built during its ingest",
         "vecdex": "HNSW32 efC100 built during its ingest"}
SEARCHES = ["unfiltered"] + list(FILTERS) + ["hybrid"]


def worker(lib, folder):
    """Answers one JSON line per request on stdin (see main)."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the libraries' own output goes to stderr

    def answer(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    xb = common.load(folder, "xb")
    xq = np.ascontiguousarray(common.load(folder, "xq"))
    cat, year, tag = (np.asarray(common.load(folder, k)) for k in ("cat", "year", "tag"))
    texts = json.load(open(os.path.join(folder, "texts.json")))
    queries = [" ".join(t.split()[:2]) for t in texts[:len(xq)]]
    path = os.path.join(folder, "db_" + lib)
    L = LIBS[lib](path)
    answer({"ready": 1})

    def run(name, nq=len(xq)):
        if name == "hybrid":
            return [L.hybrid(xq[i], queries[i]) for i in range(nq)]
        f = None if name == "unfiltered" else name
        return [L.search(xq[i:i + 1], f) for i in range(nq)]

    warm = set()

    for line in sys.stdin:
        w = line.split()
        if not w or w[0] == "quit":
            break
        if w[0] == "ingest":
            b, e = int(w[1]), int(w[2])
            x = np.ascontiguousarray(xb[b:e])
            t0 = time.perf_counter()
            L.ingest(range(b, e), x, cat[b:e], year[b:e], tag[b:e], texts[b:e])
            answer({"t": time.perf_counter() - t0})
        elif w[0] == "close":
            t0 = time.perf_counter()
            L.close()
            t1 = time.perf_counter()
            L.open(xq[:1])
            answer({"close_s": t1 - t0, "open_s": time.perf_counter() - t1,
                    "bytes": du(path), "hybrid": L.hybrid is not None})
        elif w[0] == "time":
            name = w[1]
            if name not in warm:
                run(name, 10)  # warm-up
                warm.add(name)
            t0 = time.perf_counter()
            I = run(name)
            t = time.perf_counter() - t0
            short = sum(len(r) < K for r in I)
            I = np.array([list(r)[:K] + [-1] * (K - len(r)) for r in I])
            np.save(os.path.join(folder, f"I_{lib}_{name}.npy"), I)
            answer({"t": t, "short": short})


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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--libs", default="vecdex,chromadb,lancedb")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data)
    import vecdex
    print(f"CPU: {cpu_model()} ({os.cpu_count()} threads, load {os.getloadavg()[0]:.1f}); "
          f"vecdex {vecdex.build_info()}")
    folder = tempfile.mkdtemp(prefix="bench_store_")
    servers = {}
    try:
        make(folder, a.n, a.nq)
        xb, xq = np.asarray(common.load(folder, "xb")), np.asarray(common.load(folder, "xq"))
        cat, year, tag = (np.asarray(common.load(folder, k)) for k in ("cat", "year", "tag"))
        sims = xq @ xb.T
        gts = {"unfiltered": np.argsort(-sims, axis=1)[:, :K]}
        for name, f in FILTERS.items():
            mask = f[3](cat, year, tag)
            s2 = sims.copy()
            s2[:, ~mask] = -np.inf
            gts[name] = np.argsort(-s2, axis=1)[:, :K]
            print(f"filter {name}: {mask.sum()} rows match")
        del sims
        print(f"data: n={a.n}, d={D}, {a.nq} queries, one per call, k={K}, "
              f"best of {a.rounds} alternating passes")
        libs = a.libs.split(",")
        env = dict(os.environ, RUST_LOG="error")  # lance's deprecation warnings
        for lib in libs:
            servers[lib] = common.Server(__file__, lib, folder, env=env)
        r = {lib: {"ingest_t": 0.0, "search": {}} for lib in libs}
        for b in range(0, a.n, B):
            for lib in libs:
                r[lib]["ingest_t"] += servers[lib].ask("ingest", b, min(a.n, b + B))["t"]
        for lib in libs:
            c = servers[lib].ask("close")
            r[lib].update(c)
            r[lib]["ingest"] = a.n / (r[lib]["ingest_t"] + c["close_s"])
        for name in SEARCHES:
            for rnd in range(a.rounds):
                for lib in libs:
                    if name == "hybrid" and not r[lib]["hybrid"]:
                        continue
                    ans = servers[lib].ask("time", name)
                    best = r[lib]["search"].get(name)
                    if best is None or ans["t"] < best["t"]:
                        if name != "hybrid":
                            I = np.load(os.path.join(folder, f"I_{lib}_{name}.npy"))
                            ans["recall"] = common.recall_at(I, gts[name], K)
                        r[lib]["search"][name] = ans
        w = 24
        print(f"{'':16}" + "".join(f"{lib:>{w}}" for lib in libs))
        print(f"{'ingest rows/s':16}" + "".join(f"{r[l]['ingest']:>{w}.0f}" for l in libs))
        print(f"{'open s':16}" + "".join(f"{r[l]['open_s']:>{w}.3f}" for l in libs))
        print(f"{'bytes on disk':16}" + "".join(f"{r[l]['bytes']:>{w},}" for l in libs))
        for name in SEARCHES:
            cells = []
            for lib in libs:
                s = r[lib]["search"].get(name)
                if s is None:
                    cells.append("(not built in)")
                    continue
                c = f"{a.nq / s['t']:7.0f} QPS"
                if "recall" in s:
                    c += f" R {s['recall']:.3f}"
                if s["short"]:
                    c += f" {s['short']}<k"
                cells.append(c)
            print(f"{'search ' + name:16}" + "".join(f"{c:>{w}}" for c in cells))
        v = r.get("vecdex")
        for lib in libs:
            if lib == "vecdex" or not v:
                continue
            parts = [f"ingest {v['ingest'] / r[lib]['ingest']:.2f}x"]
            for name in SEARCHES:
                if name in r[lib]["search"] and name in v["search"]:
                    parts.append(f"{name} {r[lib]['search'][name]['t'] / v['search'][name]['t']:.2f}x")
            print(f"vecdex / {lib}: " + ", ".join(parts) + " (target >= 2x each)")
        for lib in libs:
            print(f"  {lib}: {NOTES[lib]}")
        print("results shorter than k are marked n<k (every filter matches >= k rows)")
    finally:
        for s in servers.values():
            s.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
