"""vecdex.Store against brute force computed here: filtered search (recall
of HNSW at 0.1% / 1% / 10% / 50% selectivity, full results), filters
against a Python evaluation of the same rows, ids of both kinds, keyword
and hybrid search, persistence, bad input."""
import json
import threading

import numpy as np
import pytest

import vecdex

D = 32
N = 20000
CATS = [f"c{i}" for i in range(20)]


def rows(n, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.normal(size=(n, D)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # 'sel' gives exact selectivities: sel < s*1000 admits s of the rows
    meta = [{"year": 2000 + int(i % 25), "category": CATS[i % 20],
             "sel": int(rs.randint(1000)), "price": float(i % 13) / 2,
             "tags": ["rag"] if i % 7 == 0 else ["x", f"t{i % 3}"]}
            for i in range(n)]
    return x, meta


def matches(m, f):
    """Reference semantics of the filter language (store's filter.c)."""
    for key, v in f.items():
        if key == "$and":
            if not all(matches(m, g) for g in v):
                return False
        elif key == "$or":
            if not any(matches(m, g) for g in v):
                return False
        elif key == "$not":
            if matches(m, v):
                return False
        else:
            ops = v if isinstance(v, dict) else {"$eq": v}
            val = m.get(key)
            for op, a in ops.items():
                if isinstance(val, list):  # tags
                    ok = {"$eq": a in val, "$contains": a in val, "$ne": a not in val,
                          "$in": any(t in val for t in a),
                          "$nin": not any(t in val for t in a)}[op]
                elif val is None:
                    ok = op in ("$ne", "$nin")
                else:
                    ok = {"$eq": lambda: val == a, "$ne": lambda: val != a,
                          "$lt": lambda: val < a, "$lte": lambda: val <= a,
                          "$gt": lambda: val > a, "$gte": lambda: val >= a,
                          "$in": lambda: val in a, "$nin": lambda: val not in a}[op]()
                if not ok:
                    return False
    return True


SCHEMA = {"year": "int", "category": "text", "sel": "int", "price": "float",
          "tags": "tags"}


@pytest.fixture(scope="module")
def hnsw(tmp_path_factory):
    x, meta = rows(N)
    p = tmp_path_factory.mktemp("st") / "hnsw"
    s = vecdex.Store.create(p, D, metric="cosine", index="HNSW32", schema=SCHEMA)
    for b in range(0, N, 5000):
        s.upsert(range(b, b + 5000), x[b:b + 5000], meta[b:b + 5000],
                 [f"row {i} about {meta[i]['category']}" for i in range(b, b + 5000)])
    yield s, x, meta, p
    s.close()


@pytest.mark.parametrize("frac", [0.001, 0.01, 0.1, 0.5])
def test_filtered_recall(hnsw, frac):
    s, x, meta, _ = hnsw
    where = {"sel": {"$lt": int(frac * 1000)}}
    ok = np.array([matches(m, where) for m in meta])
    assert ok.sum() >= 10
    q = np.random.RandomState(3).normal(size=(50, D)).astype("float32")
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    res = s.search(q, 10, where=where, params={"efSearch": 64})
    sims = q @ x.T
    sims[:, ~ok] = -np.inf
    gt = np.argsort(-sims, axis=1)[:, :10]
    hits = 0
    for h, g in zip(res, gt):
        assert len(h.ids) == 10  # full results
        assert all(ok[i] for i in h.ids)
        hits += len(set(h.ids) & set(g.tolist()))
    assert hits / gt.size >= 0.95, (frac, hits / gt.size)


def test_filters_match_reference(hnsw):
    s, x, meta, _ = hnsw
    fs = [{"category": "c3", "year": {"$gte": 2020}},
          {"tags": {"$contains": "rag"}},
          {"$or": [{"year": {"$lt": 2002}}, {"category": {"$in": ["c1", "c2"]}}]},
          {"$not": {"price": {"$gt": 3}}},
          {"category": {"$nin": ["c0", "c5"]}, "tags": {"$ne": "t1"}},
          {"$and": [{"year": {"$lte": 2010}}, {"$not": {"tags": "x"}}]},
          {"category": "x'; DROP TABLE vdx_rows; --"}]
    for f in fs:
        assert s.count(f) == sum(matches(m, f) for m in meta), f
    assert s.count() == N


def test_keyword_hybrid(hnsw):
    s, x, meta, _ = hnsw
    h = s.keyword_search("c7", 5, where={"year": 2007}, include_metadata=True)
    assert len(h.ids) == 5
    assert all(m["category"] == "c7" and m["year"] == 2007 for m in h.metadata)
    h = s.hybrid_search(x[42], "c13", 10)
    assert 42 in h.ids[:2]
    assert any(meta[i]["category"] == "c13" for i in h.ids)


def test_str_ids_replace_delete_persist(tmp_path):
    p = tmp_path / "s"
    x, meta = rows(300, seed=1)
    with vecdex.Store.create(p, D, metric="l2", index="Flat", schema=SCHEMA) as s:
        ids = [f"doc-{i}" for i in range(300)]
        s.upsert(ids, x, meta)
        s.upsert(["doc-5"], x[6:7], [{"year": 1999}])  # replaced atomically
        assert s.delete(where={"year": {"$gte": 2020}}) == sum(
            m["year"] >= 2020 for m in meta[:300] if m is not meta[5])
        g = s.get(["doc-5", "doc-nope"])
        assert g["found"] == [True, False]
        np.testing.assert_array_equal(g["vectors"][0], x[6])
        assert g["metadata"][0] == {"year": 1999}
        n = s.count()
        st = s.stats()
        assert st["rows"] == n and st["dead"] > 0
        s.compact()
        assert s.stats()["dead"] == 0
    with vecdex.Store.open(p, read_only=True) as r:
        assert r.count() == n
        h = r.search(x[10], 1)[0]
        assert h.ids == ["doc-10"] and h.scores[0] < 1e-5
        with pytest.raises(RuntimeError, match="read-only"):
            r.upsert(["a"], x[:1])
    # the index file opens on its own
    ix = vecdex.read_index(str(next(p.glob("index.*.faiss"))))
    assert ix.ntotal == n


def test_bad_input(tmp_path):
    s = vecdex.Store.create(tmp_path / "b", 4, metric="l2", index="Flat",
                            schema={"year": "int"})
    v = np.ones((2, 4), "float32")
    with pytest.raises(vecdex.ShapeError):
        s.upsert([1, 2], np.ones((2, 5), "float32"))
    with pytest.raises(vecdex.ShapeError):
        s.upsert([1, 2, 3], v)
    bad = v.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        s.upsert([1, 2], bad)
    with pytest.raises(ValueError, match="twice"):
        s.upsert([7, 7], v)
    with pytest.raises(ValueError, match="'year'"):
        s.upsert([1, 2], v, [{"year": "2020"}, None])
    with pytest.raises(ValueError, match="unknown field 'colour'"):
        s.count({"colour": 1})
    with pytest.raises(ValueError, match=r"\$regex"):
        s.count({"year": {"$regex": "x"}})
    with pytest.raises(ValueError, match="UTF-8"):
        s.upsert([1, 2], v, None, ["ok", "bad \udcff"])
    assert s.count() == 0
    s.upsert([1, 2], v)
    assert s.count() == 2
    with pytest.raises(RuntimeError, match="another process|BUSY"):
        vecdex.Store.open(tmp_path / "b")
    s.close()
    with pytest.raises(RuntimeError, match="not a store"):
        vecdex.Store.open(tmp_path)


def test_threads_search_while_writing(tmp_path):
    x, meta = rows(2000, seed=2)
    s = vecdex.Store.create(tmp_path / "t", D, metric="l2", index="HNSW16",
                            schema=SCHEMA)
    s.upsert(range(1000), x[:1000], meta[:1000])
    errors = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for h in s.search(x[:4], 5, include_metadata=True):
                if len(h.ids) != 5:
                    errors.append(h)

    ts = [threading.Thread(target=reader) for _ in range(4)]
    for t in ts:
        t.start()
    for b in range(1000, 2000, 100):
        s.upsert(range(b, b + 100), x[b:b + 100], meta[b:b + 100])
    stop.set()
    for t in ts:
        t.join()
    assert not errors
    assert s.count() == 2000
    s.check()
    s.close()
