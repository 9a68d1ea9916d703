"""IndexIVFFlat: results against a numpy brute force and against FAISS with
the same centroids, per-call parameters, selectors, threads, the adopted
quantizer, inverted lists, direct map, persistence and bad input."""
import gc
import pickle
import threading
import warnings

import numpy as np
import pytest

import vecdex

METRICS = [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT]
FLT_MAX = float(np.finfo(np.float32).max)


def data(rng, n, d):
    return rng.standard_normal((n, d)).astype(np.float32)


def flat(mod, d, metric):
    return mod.IndexFlatL2(d) if metric == mod.METRIC_L2 else mod.IndexFlatIP(d)


def ivf(mod, d, nlist, metric=vecdex.METRIC_L2, xt=None):
    """An IndexIVFFlat of `mod`, trained on xt when given (no k-means
    warnings: the tests that want them ask for them)."""
    ix = mod.IndexIVFFlat(flat(mod, d, metric), d, nlist, metric)
    if xt is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ix.train(xt)
    return ix


def same_centroids_pair(faiss, xt, nlist, metric):
    """FAISS's IVF trained on xt, and a vecdex IVF whose quantizer holds the
    same centroids (so vecdex keeps them: no k-means of its own)."""
    d = xt.shape[1]
    f = ivf(faiss, d, nlist, metric, xt)
    cent = f.quantizer.reconstruct_n(0, nlist)
    q = flat(vecdex, d, metric)
    q.add(cent)
    v = vecdex.IndexIVFFlat(q, d, nlist, metric)
    assert v.is_trained and v.quantizer is q and q.ntotal == nlist
    v.train(xt)                                # a no-op: keeps the centroids
    np.testing.assert_array_equal(q.reconstruct_n(0, nlist), cent)
    return v, f


@pytest.mark.parametrize("metric", METRICS)
def test_nprobe_nlist_is_exact(rng, bf, metric):
    d, nlist = 16, 32
    xb, xq = data(rng, 3000, d), data(rng, 40, d)
    ix = ivf(vecdex, d, nlist, metric, xb)
    assert ix.is_trained and ix.quantizer.ntotal == nlist and ix.nlist == nlist
    ix.add(xb)
    assert ix.ntotal == 3000
    ix.nprobe = nlist
    D, I = ix.search(xq, 10)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == (40, 10)
    bf.assert_knn_equal(D, I, *bf.knn(xq, xb, 10, metric))
    # fewer lists probed: a subset of the exact answer's quality, not better
    ix.nprobe = 2
    D2, I2 = ix.search(xq, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I2, I)])
    assert 0.2 < recall < 1.0
    worse = D2[:, 0] >= D[:, 0] - 1e-4 if metric == vecdex.METRIC_L2 else D2[:, 0] <= D[:, 0] + 1e-4
    assert worse.all()


@pytest.mark.parametrize("metric", METRICS)
def test_same_centroids_as_faiss(rng, bf, faiss_ref, metric):
    d, nlist = 16, 24
    xb, xq = data(rng, 2500, d), data(rng, 60, d)
    v, f = same_centroids_pair(faiss_ref, xb, nlist, metric)
    v.add(xb)
    f.add(xb)
    # same lists (the assignment is an exact search over the same centroids)
    for l in range(nlist):
        assert v.invlists.list_size(l) == f.invlists.list_size(l)
        n = f.invlists.list_size(l)
        ids_f = faiss_ref.rev_swig_ptr(f.invlists.get_ids(l), n)
        ids_v = vecdex.rev_swig_ptr(v.invlists.get_ids(l), n)
        np.testing.assert_array_equal(ids_v, ids_f)
    for nprobe in (1, 3, nlist):
        v.nprobe = f.nprobe = nprobe
        Dv, Iv = v.search(xq, 12)
        Df, If = f.search(xq, 12)
        bf.assert_knn_equal(Dv, Iv, Df.astype(np.float64), If, rtol=1e-5, atol=1e-5)
    radius = 20.0 if metric == vecdex.METRIC_L2 else 6.0
    v.nprobe = f.nprobe = 4
    got = bf.range_to_dicts(*v.range_search(xq, radius))
    assert sum(map(len, got)) > 60
    bf.assert_range_equal(got, bf.range_to_dicts(*f.range_search(xq, radius)), radius)


def test_range_search_nprobe_nlist_vs_bruteforce(rng, bf):
    d, nlist = 12, 16
    xb, xq = data(rng, 1500, d), data(rng, 20, d)
    ix = ivf(vecdex, d, nlist, xt=xb)
    ix.add(xb)
    p = vecdex.SearchParametersIVF(nprobe=nlist)
    lims, D, I = ix.range_search(xq, 8.0, params=p)
    assert lims.dtype == np.uint64 and lims.shape == (21,)   # as FAISS (size_t)
    got = bf.range_to_dicts(lims, D, I)
    assert sum(map(len, got)) > 20
    bf.assert_range_equal(got, bf.range(xq, xb, 8.0, vecdex.METRIC_L2), 8.0)


@pytest.mark.parametrize("metric", METRICS)
def test_selector_one_percent(rng, bf, faiss_ref, metric):
    d, nlist, nb, k = 16, 20, 3000, 10
    xb, xq = data(rng, nb, d), data(rng, 30, d)
    v, f = same_centroids_pair(faiss_ref, xb, nlist, metric)
    v.add(xb)
    f.add(xb)
    keep = rng.choice(nb, size=nb // 100, replace=False).astype(np.int64)
    mask = np.zeros(nb, dtype=bool)
    mask[keep] = True
    pv = vecdex.SearchParametersIVF(sel=vecdex.IDSelectorBatch(keep), nprobe=nlist)
    D, I = v.search(xq, k, params=pv)
    assert (I >= 0).all() and mask[I].all()            # k results, all admitted
    bf.assert_knn_equal(D, I, *bf.knn(xq, xb, k, metric, mask=mask))
    pf = faiss_ref.SearchParametersIVF(sel=faiss_ref.IDSelectorBatch(keep), nprobe=nlist)
    Df, If = f.search(xq, k, params=pf)
    bf.assert_knn_equal(D, I, Df.astype(np.float64), If, rtol=1e-5, atol=1e-5)
    # a range selector through the IVF alias, with one list probed
    pr = vecdex.IVFSearchParameters(sel=vecdex.IDSelectorRange(0, 1500), nprobe=1)
    D1, I1 = v.search(xq, k, params=pr)
    assert ((I1 == -1) | (I1 < 1500)).all()
    # remove_ids with a selector
    assert v.remove_ids(vecdex.IDSelectorBatch(keep)) == len(keep)
    D, I = v.search(xq, k, params=pv)
    assert (I == -1).all()


def test_per_call_nprobe_overrides_the_attribute(rng, bf):
    d, nlist = 16, 32
    xb, xq = data(rng, 2000, d), data(rng, 30, d)
    ix = ivf(vecdex, d, nlist, xt=xb)
    ix.add(xb)
    ix.nprobe = 1
    D1, I1 = ix.search(xq, 5)
    p = vecdex.SearchParametersIVF(nprobe=nlist)
    assert p.nprobe == nlist and p.max_codes == 0 and p.sel is None
    D, I = ix.search(xq, 5, params=p)
    bf.assert_knn_equal(D, I, *bf.knn(xq, xb, 5, vecdex.METRIC_L2))
    assert ix.nprobe == 1                                # unchanged
    np.testing.assert_array_equal(ix.search(xq, 5)[1], I1)
    # nprobe=0 in the params means "the index's own"
    np.testing.assert_array_equal(ix.search(xq, 5, params=vecdex.SearchParametersIVF())[1], I1)
    # max_codes: as in FAISS, the scan stops after that many codes, inside a
    # list if need be: with 1, one result, a vector of the query's nearest list
    few = ix.search(xq, 5, params=vecdex.SearchParametersIVF(nprobe=nlist, max_codes=1))
    def one_from_nearest_list(res):
        Ires = res[1]
        assert (Ires[:, 1:] == -1).all() and (Ires[:, 0] >= 0).all()
        qlist = ix.quantizer.search(xq, 1)[1][:, 0]
        blist = ix.quantizer.search(xb[Ires[:, 0]], 1)[1][:, 0]
        np.testing.assert_array_equal(blist, qlist)
    one_from_nearest_list(few)
    ix.max_codes = 1
    ix.nprobe = nlist
    assert ix.max_codes == 1
    one_from_nearest_list(ix.search(xq, 5))
    ix.max_codes = 0
    np.testing.assert_array_equal(ix.search(xq, 5)[1], I)
    with pytest.raises(ValueError):
        ix.max_codes = -1
    with pytest.raises(ValueError):
        vecdex.SearchParametersIVF(nprobe=-1)


def test_concurrent_searches_with_different_nprobe(rng, bf):
    d, nlist = 16, 32
    xb = data(rng, 4000, d)
    ix = ivf(vecdex, d, nlist, xt=xb)
    ix.add(xb)
    qs = [data(rng, 40, d) for _ in range(6)]
    nprobes = [1, 2, 4, 8, 16, 32]
    params = [vecdex.SearchParametersIVF(nprobe=p) for p in nprobes]
    serial = [ix.search(q, 8, params=p) for q, p in zip(qs, params)]
    results = [None] * len(qs)
    errors = []

    def work(i):
        try:
            vecdex.omp_set_num_threads(1)    # as test_misc: no oversubscription
            for _ in range(3):
                results[i] = ix.search(qs[i], 8, params=params[i])
                if i % 2:                    # the attribute changes meanwhile
                    ix.nprobe = 1 + (ix.nprobe % nlist)
        except Exception as e:               # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(qs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (D, I), (Ds, Is) in zip(results, serial):
        bf.assert_knn_equal(D, I, Ds.astype(np.float64), Is, rtol=1e-6, atol=1e-6)
    # and the widest one is exact
    bf.assert_knn_equal(*results[-1], *bf.knn(qs[-1], xb, 8, vecdex.METRIC_L2))


def test_nprobe_clamps_and_k_larger_than_ntotal(rng, bf):
    d, nlist = 8, 10
    xb = data(rng, 500, d)
    ix = ivf(vecdex, d, nlist, xt=xb)
    ix.nprobe = 1000
    assert ix.nprobe == nlist
    with pytest.raises(ValueError):
        ix.nprobe = -1
    assert ix.nprobe == nlist
    ix.add(xb[:7])
    # 0 is accepted when set and refused when used, as in FAISS
    ix.nprobe = 0
    with pytest.raises(RuntimeError, match="nprobe=0"):
        ix.search(xb[:3], 10)
    ix.nprobe = 1000
    D, I = ix.search(xb[:3], 10)
    assert (I[:, 7:] == -1).all() and (D[:, 7:] == FLT_MAX).all()
    assert sorted(I[0, :7].tolist()) == list(range(7))
    # per-call nprobe above nlist clamps too
    D2, I2 = ix.search(xb[:3], 10, params=vecdex.SearchParametersIVF(nprobe=10**6))
    np.testing.assert_array_equal(I2, I)
    ipx = ivf(vecdex, d, nlist, vecdex.METRIC_INNER_PRODUCT, xb)
    ipx.add(xb[:3])
    D, I = ipx.search(xb[:2], 5, params=vecdex.SearchParametersIVF(nprobe=nlist))
    assert (I[:, 3:] == -1).all() and (D[:, 3:] == -FLT_MAX).all()


def test_untrained_and_bad_input(rng):
    d, nlist = 8, 16
    x = data(rng, 100, d)
    ix = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, nlist)
    assert not ix.is_trained and ix.quantizer.ntotal == 0
    with pytest.raises(RuntimeError, match="trained"):
        ix.add(x)
    with pytest.raises(RuntimeError, match="trained"):
        ix.search(x[:2], 3)
    with pytest.raises(RuntimeError, match="trained"):
        ix.range_search(x[:2], 1.0)
    assert ix.ntotal == 0
    with pytest.raises(ValueError, match="nlist"):
        ix.train(x[:nlist - 1])                     # n < nlist
    assert not ix.is_trained
    with pytest.raises(vecdex.InvalidArgumentError):
        ix.train(np.full((50, d), np.nan, dtype=np.float32))
    with pytest.raises(AssertionError):             # ShapeError, as FAISS asserts
        ix.train(data(rng, 50, d + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ix.train(x)
    assert ix.is_trained and ix.quantizer.ntotal == nlist
    with pytest.raises(ValueError):
        ix.search(x[:2], 0)
    with pytest.raises(ValueError):
        ix.add(x[:, :4])
    # the quantizer must have the index's dimension; it stays usable after
    q = vecdex.IndexFlatL2(d + 1)
    with pytest.raises(ValueError, match="quantizer"):
        vecdex.IndexIVFFlat(q, d, nlist)
    q.add(data(rng, 3, d + 1))
    assert q.ntotal == 3
    with pytest.raises(ValueError):
        vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, 0)
    with pytest.raises(ValueError):
        vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, nlist, 7)   # metric
    with pytest.raises(TypeError):
        vecdex.IndexIVFFlat("not an index", d, nlist)
    # one quantizer cannot serve two indexes
    q = vecdex.IndexFlatL2(d)
    vecdex.IndexIVFFlat(q, d, nlist)
    with pytest.raises(ValueError, match="belongs"):
        vecdex.IndexIVFFlat(q, d, nlist)
    with pytest.raises(ValueError, match="belongs"):
        vecdex.IndexIDMap(q)


def test_quantizer_ownership(rng):
    d, nlist = 8, 4
    x = data(rng, 200, d)
    q = vecdex.IndexFlatL2(d)
    ix = vecdex.IndexIVFFlat(q, d, nlist)
    assert ix.quantizer is q
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ix.train(x)
    ix.add(x)
    assert q.ntotal == nlist                        # filled by train
    for op in (lambda: q.add(x[:1]), q.reset, lambda: q.remove_ids(np.arange(2))):
        with pytest.raises(RuntimeError, match="quantizer"):
            op()
    cent = q.reconstruct_n(0, nlist)
    # the IVF keeps the quantizer object alive
    del q
    gc.collect()
    np.testing.assert_array_equal(ix.quantizer.reconstruct_n(0, nlist), cent)
    # and the quantizer outlives the IVF wrapper, as in FAISS
    q = ix.quantizer
    del ix
    gc.collect()
    assert q.ntotal == nlist
    D, I = q.search(cent, 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(nlist))


def test_invlists_and_add_with_ids(rng, bf):
    d, nlist = 8, 12
    xb, xq = data(rng, 600, d), data(rng, 10, d)
    ix = ivf(vecdex, d, nlist, xt=xb)
    ids = rng.choice(10**12, size=600, replace=False).astype(np.int64)
    ix.add_with_ids(xb, ids)
    il = ix.invlists
    assert il.nlist == nlist and il.code_size == 4 * d
    sizes = [il.list_size(l) for l in range(nlist)]
    assert sum(sizes) == 600
    got = np.concatenate([vecdex.rev_swig_ptr(il.get_ids(l), sizes[l]) for l in range(nlist)])
    assert got.dtype == np.int64 and sorted(got.tolist()) == sorted(ids.tolist())
    # each vector sits in the list of its nearest centroid
    cent = ix.quantizer.reconstruct_n(0, nlist)
    owner = {int(i): l for l in range(nlist) for i in il.get_ids(l)}
    nearest = np.argmin(((xb[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)
    assert np.mean([owner[int(i)] == n for i, n in zip(ids, nearest)]) > 0.99
    with pytest.raises(ValueError):
        il.list_size(nlist)
    with pytest.raises(ValueError):
        il.get_ids(-1)
    ix.nprobe = nlist
    D, I = ix.search(xq, 7)
    bf.assert_knn_equal(D, I, *bf.knn(xq, xb, 7, vecdex.METRIC_L2, ids=ids))
    # the view keeps the index alive
    del ix
    gc.collect()
    assert sum(il.list_size(l) for l in range(nlist)) == 600
    with pytest.raises(ValueError):
        vecdex.rev_swig_ptr(np.arange(3), 4)


def test_remove_ids_reconstruct_and_direct_map(rng, bf):
    d, nlist = 8, 8
    xb, xq = data(rng, 400, d), data(rng, 10, d)
    ix = ivf(vecdex, d, nlist, xt=xb)
    ix.add(xb)
    with pytest.raises(RuntimeError, match="direct map"):
        ix.reconstruct(5)
    np.testing.assert_array_equal(ix.reconstruct_n(10, 5), xb[10:15])   # no map needed
    ix.make_direct_map()
    np.testing.assert_array_equal(ix.reconstruct(5), xb[5])
    np.testing.assert_array_equal(ix.reconstruct(399), xb[399])
    with pytest.raises(RuntimeError):
        ix.reconstruct(400)
    with pytest.raises(RuntimeError):
        ix.add_with_ids(xb[:2], np.array([1000, 1001]))   # needs sequential ids
    ix.add(xq[:2])                                       # the map follows add
    np.testing.assert_array_equal(ix.reconstruct(401), xq[1])
    with pytest.raises(RuntimeError):
        ix.remove_ids(np.arange(3))                     # not with the map on
    ix.set_direct_map_type(vecdex.DirectMap.NoMap)
    with pytest.raises(RuntimeError):
        ix.reconstruct(5)
    with pytest.raises(ValueError, match="Hashtable"):
        ix.set_direct_map_type(vecdex.DirectMap.Hashtable)
    removed = np.arange(0, 402, 3)
    assert ix.remove_ids(removed) == len(removed)
    assert ix.ntotal == 402 - len(removed)
    keep = np.setdiff1d(np.arange(402), removed)
    allx = np.vstack([xb, xq[:2]])
    ix.nprobe = nlist
    D, I = ix.search(xq, 5)
    assert not np.isin(I, removed).any()
    bf.assert_knn_equal(D, I, *bf.knn(xq, allx[keep], 5, vecdex.METRIC_L2, ids=keep))
    with pytest.raises(ValueError, match="direct map"):
        ix.set_direct_map_type(vecdex.DirectMap.Array)  # ids are not 0..n-1 any more
    ix.reset()
    assert ix.ntotal == 0 and ix.quantizer.ntotal == nlist
    ix.add(xb[:10])
    ix.make_direct_map(True)
    np.testing.assert_array_equal(ix.reconstruct(9), xb[9])


def test_persistence(rng, bf, faiss_ref, tmp_path):
    d, nlist = 12, 10
    xb, xq = data(rng, 800, d), data(rng, 15, d)
    ix = ivf(vecdex, d, nlist, vecdex.METRIC_INNER_PRODUCT, xb)
    ix.add(xb)
    ix.nprobe = 3
    D, I = ix.search(xq, 6)
    clones = [vecdex.deserialize_index(vecdex.serialize_index(ix)),
              pickle.loads(pickle.dumps(ix)), vecdex.clone_index(ix)]
    vecdex.write_index(ix, str(tmp_path / "v.index"))
    clones.append(vecdex.read_index(str(tmp_path / "v.index")))
    for c in clones:
        assert type(c) is vecdex.IndexIVFFlat
        assert type(c.quantizer) is vecdex.IndexFlatIP
        assert c.quantizer.ntotal == nlist and c.nlist == nlist and c.ntotal == 800
        assert c.metric_type == vecdex.METRIC_INNER_PRODUCT and c.is_trained
        for l in range(nlist):
            np.testing.assert_array_equal(c.invlists.get_ids(l), ix.invlists.get_ids(l))
        c.nprobe = 3
        Dc, Ic = c.search(xq, 6)
        np.testing.assert_array_equal(Ic, I)
        with pytest.raises(RuntimeError, match="quantizer"):
            c.quantizer.add(xb[:1])
    # a loaded quantizer outlives its index
    c = clones.pop()
    q = c.quantizer
    del c, clones
    gc.collect()
    assert q.ntotal == nlist
    # FAISS reads vecdex's file and vice versa
    f = faiss_ref.read_index(str(tmp_path / "v.index"))
    f.nprobe = 3
    Df, If = f.search(xq, 6)
    bf.assert_knn_equal(D, I, Df.astype(np.float64), If, rtol=1e-5, atol=1e-5)
    fi = ivf(faiss_ref, d, nlist, vecdex.METRIC_L2, xb)
    fi.add(xb)
    faiss_ref.write_index(fi, str(tmp_path / "f.index"))
    v = vecdex.read_index(str(tmp_path / "f.index"))
    assert type(v) is vecdex.IndexIVFFlat and type(v.quantizer) is vecdex.IndexFlatL2
    v.nprobe = fi.nprobe = 4
    Dv, Iv = v.search(xq, 6)
    Df, If = fi.search(xq, 6)
    bf.assert_knn_equal(Dv, Iv, Df.astype(np.float64), If, rtol=1e-5, atol=1e-5)


def test_tutorial_2_ivfflat(faiss_ref):
    """FAISS's tutorial/python/2-IVFFlat.py (queries cut to 2000)."""
    import vecdex as faiss              # the point of the exercise

    d = 64                              # dimension
    nb = 100000                         # database size
    nq = 2000                           # nb of queries (10000 in the tutorial)
    np.random.seed(1234)                # make reproducible
    xb = np.random.random((nb, d)).astype('float32')
    xb[:, 0] += np.arange(nb) / 1000.
    xq = np.random.random((nq, d)).astype('float32')
    xq[:, 0] += np.arange(nq) / 1000.

    nlist = 100
    k = 4
    quantizer = faiss.IndexFlatL2(d)  # the other index
    index = faiss.IndexIVFFlat(quantizer, d, nlist)
    assert not index.is_trained
    index.train(xb)
    assert index.is_trained
    index.add(xb)                  # add may be a bit slower as well
    D, I = index.search(xq, k)     # actual search
    I1 = I
    index.nprobe = 10              # default nprobe is 1, try a few more
    D, I = index.search(xq, k)

    # sanity: every vector finds itself with one list probed
    index.nprobe = 1
    Ds, Is = index.search(xb[:200], k)
    np.testing.assert_array_equal(Is[:, 0], np.arange(200))
    # exact top-1 of the last 300 queries (the tutorial prints I[-5:])
    part = slice(nq - 300, nq)
    q = xq[part].astype(np.float64)
    dist = (q ** 2).sum(1)[:, None] - 2 * q @ xb.T.astype(np.float64) \
        + (xb.astype(np.float64) ** 2).sum(1)[None, :]
    gt = np.argmin(dist, axis=1)
    r1 = np.mean(I1[part, 0] == gt)
    r10 = np.mean(I[part, 0] == gt)
    assert r1 < r10 and r10 > 0.85
    # FAISS on the same data: a recall of the same order
    fq = faiss_ref.IndexFlatL2(d)
    fi = faiss_ref.IndexIVFFlat(fq, d, nlist)
    fi.train(xb)
    fi.add(xb)
    fi.nprobe = 10
    Df, If = fi.search(xq[part], k)
    assert r10 >= np.mean(If[:, 0] == gt) - 0.05
