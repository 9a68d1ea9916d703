"""IndexIDMap / IndexIDMap2: ids, removal, reconstruction, and the ownership
of the wrapped index."""
import gc
import weakref

import numpy as np
import pytest

import vecdex

KINDS = ["IndexIDMap", "IndexIDMap2"]


def data(rng, n, d):
    return rng.standard_normal((n, d)).astype(np.float32)


def make_pair(faiss, kind, d, metric=vecdex.METRIC_L2):
    sub_v = vecdex.IndexFlat(d, metric)
    sub_f = faiss.IndexFlat(d, metric)
    return getattr(vecdex, kind)(sub_v), getattr(faiss, kind)(sub_f)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_add_with_ids_search_vs_faiss_and_bruteforce(rng, bf, faiss_ref, kind, metric):
    d = 24
    xb, xq = data(rng, 600, d), data(rng, 25, d)
    ids = rng.choice(10**9, size=600, replace=False).astype(np.int64) * 7 - 10**8
    v, f = make_pair(faiss_ref, kind, d, metric)
    v.add_with_ids(xb[:250], ids[:250])
    v.add_with_ids(xb[250:], ids[250:].tolist())
    f.add_with_ids(xb, ids)
    assert v.ntotal == f.ntotal == 600
    assert v.metric_type == metric and v.d == d and v.is_trained
    Dv, Iv = v.search(xq, 15)
    Df, If = f.search(xq, 15)
    bf.assert_knn_equal(Dv, Iv, Df.astype(np.float64), If, rtol=1e-5)
    bf.assert_knn_equal(Dv, Iv, *bf.knn(xq, xb, 15, metric, ids=ids))
    radius = 30.0 if metric == vecdex.METRIC_L2 else 8.0
    got = bf.range_to_dicts(*v.range_search(xq, radius))
    assert sum(map(len, got)) > 0
    bf.assert_range_equal(got, bf.range(xq, xb, radius, metric, ids=ids), radius)
    bf.assert_range_equal(got, bf.range_to_dicts(*f.range_search(xq, radius)), radius)
    # k > ntotal
    D, I = v.search(xq[:2], 700)
    assert (I[:, 600:] == -1).all() and set(I[0, :600].tolist()) == set(ids.tolist())


@pytest.mark.parametrize("kind", KINDS)
def test_id_map_and_vector_to_array(rng, faiss_ref, kind):
    xb = data(rng, 10, 4)
    ids = np.arange(10, dtype=np.int64) * 100 + 3
    v, f = make_pair(faiss_ref, kind, 4)
    v.add_with_ids(xb, ids)
    f.add_with_ids(xb, ids)
    m = v.id_map
    assert isinstance(m, np.ndarray) and m.dtype == np.int64
    np.testing.assert_array_equal(m, ids)
    np.testing.assert_array_equal(vecdex.vector_to_array(v.id_map),
                                  faiss_ref.vector_to_array(f.id_map))
    m[:] = 0                           # a copy: the index is unaffected
    np.testing.assert_array_equal(v.id_map, ids)
    assert vecdex.IndexIDMap(vecdex.IndexFlatL2(3)).id_map.shape == (0,)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["array", "range", "batch", "not"])
def test_remove_ids_vs_faiss(rng, faiss_ref, kind, how):
    d = 8
    xb, xq = data(rng, 300, d), data(rng, 12, d)
    ids = np.arange(300, dtype=np.int64) * 3 + 1000
    v, f = make_pair(faiss_ref, kind, d)
    v.add_with_ids(xb, ids)
    f.add_with_ids(xb, ids)
    if how == "array":
        rm = np.array([1000, 1003, 1897, 5, 1003], np.int64)
        sv, sf = rm, rm
    elif how == "range":
        sv, sf = vecdex.IDSelectorRange(1100, 1400), faiss_ref.IDSelectorRange(1100, 1400)
    elif how == "batch":
        rm = ids[::7]
        sv, sf = vecdex.IDSelectorBatch(rm), faiss_ref.IDSelectorBatch(rm)
    else:
        sv = vecdex.IDSelectorNot(vecdex.IDSelectorRange(1030, 1800))
        sf = faiss_ref.IDSelectorNot(faiss_ref.IDSelectorRange(1030, 1800))
    nv, nf = v.remove_ids(sv), f.remove_ids(sf)
    assert nv == nf > 0 and v.ntotal == f.ntotal == 300 - nv
    np.testing.assert_array_equal(v.id_map, faiss_ref.vector_to_array(f.id_map))
    assert v.index.ntotal == f.index.ntotal
    Dv, Iv = v.search(xq, 10)
    Df, If = f.search(xq, 10)
    np.testing.assert_array_equal(Iv, If)
    np.testing.assert_allclose(Dv, Df, rtol=1e-5, atol=1e-5)
    if kind == "IndexIDMap2":
        for key in faiss_ref.vector_to_array(f.id_map)[::13]:
            np.testing.assert_array_equal(v.reconstruct(int(key)), f.reconstruct(int(key)))


def test_idmap2_reconstruct_by_id(rng, faiss_ref):
    xb = data(rng, 20, 6)
    ids = np.arange(20, dtype=np.int64)[::-1] * 11
    v, f = make_pair(faiss_ref, "IndexIDMap2", 6)
    v.add_with_ids(xb, ids)
    f.add_with_ids(xb, ids)
    for i, key in enumerate(ids):
        np.testing.assert_array_equal(v.reconstruct(int(key)), xb[i])
        np.testing.assert_array_equal(v.reconstruct(key), f.reconstruct(int(key)))
    for missing in (5, -1, 10**15):
        with pytest.raises(RuntimeError):
            v.reconstruct(missing)
    with pytest.raises(RuntimeError):
        f.reconstruct(5)
    # reconstruct_n takes positions (FAISS's IndexIDMap2.reconstruct_n aborts
    # the process, so it is not compared)
    np.testing.assert_array_equal(v.reconstruct_n(0, 20), xb)


def test_idmap_reconstruct_not_supported_like_faiss(rng, faiss_ref):
    v, f = make_pair(faiss_ref, "IndexIDMap", 4)
    xb = data(rng, 3, 4)
    v.add_with_ids(xb, np.array([7, 8, 9]))
    f.add_with_ids(xb, np.array([7, 8, 9]))
    with pytest.raises(RuntimeError):
        f.reconstruct(7)
    with pytest.raises(RuntimeError):
        v.reconstruct(7)


def test_add_without_ids_rejected_like_faiss(faiss_ref):
    x = np.ones((2, 4), np.float32)
    v, f = make_pair(faiss_ref, "IndexIDMap", 4)
    with pytest.raises(RuntimeError):
        f.add(x)
    with pytest.raises(RuntimeError):
        v.add(x)
    with pytest.raises(RuntimeError):
        vecdex.IndexFlatL2(4).add_with_ids(x, np.arange(2))
    with pytest.raises(RuntimeError):
        faiss_ref.IndexFlatL2(4).add_with_ids(x, np.arange(2))


def test_ids_shape_checked(rng):
    ix = vecdex.IndexIDMap(vecdex.IndexFlatL2(4))
    x = data(rng, 5, 4)
    for bad in (np.arange(4), np.arange(6), np.arange(5).reshape(5, 1), 3):
        with pytest.raises(ValueError):
            ix.add_with_ids(x, bad)
        with pytest.raises(AssertionError):
            ix.add_with_ids(x, bad)
    assert ix.ntotal == 0
    ix.add_with_ids(x, np.arange(5, dtype=np.int32))      # converted
    ix.add_with_ids(x, np.arange(5, 10).astype(np.float64))
    np.testing.assert_array_equal(ix.id_map, np.arange(10))


def test_reset(rng):
    ix = vecdex.IndexIDMap2(vecdex.IndexFlatL2(4))
    ix.add_with_ids(data(rng, 5, 4), np.arange(5) + 10)
    ix.reset()
    assert ix.ntotal == 0 and ix.index.ntotal == 0 and ix.id_map.size == 0
    with pytest.raises(RuntimeError):
        ix.reconstruct(10)
    ix.add_with_ids(data(rng, 2, 4), np.array([10, 11]))
    assert ix.search(ix.reconstruct(11)[None], 1)[1][0, 0] == 11


# ------------------------------------------------------------- ownership --
def test_child_is_the_given_object_and_stays_usable(rng):
    sub = vecdex.IndexFlatL2(4)
    ix = vecdex.IndexIDMap(sub)
    assert ix.index is sub and isinstance(ix, vecdex.Index)
    assert isinstance(vecdex.IndexIDMap2(vecdex.IndexFlatIP(2)), vecdex.IndexIDMap)
    xb = data(rng, 6, 4)
    ix.add_with_ids(xb, np.arange(6) * 2)
    assert sub.ntotal == 6 and ix.index.ntotal == 6
    np.testing.assert_array_equal(sub.reconstruct_n(), xb)        # reads are fine
    assert sub.search(xb[:1], 1)[1][0, 0] == 0                    # positions
    assert ix.search(xb[1:2], 1)[1][0, 0] == 2                    # user ids
    # mutating the sub-index would desynchronise the id map
    for call in (lambda: sub.add(xb), lambda: sub.reset(),
                 lambda: sub.remove_ids(np.array([0]))):
        with pytest.raises(RuntimeError):
            call()
    assert ix.ntotal == sub.ntotal == 6
    sub.nprobe = 3                      # attributes still settable
    assert ix.index.nprobe == 3


def test_child_outlives_parent(rng):
    xb = data(rng, 6, 4)
    sub = vecdex.IndexFlatL2(4)
    ix = vecdex.IndexIDMap2(sub)
    ix.add_with_ids(xb, np.arange(6) + 100)
    wparent = weakref.ref(ix)
    del ix
    assert wparent() is None            # no reference cycle: freed at once
    assert sub.ntotal == 6              # the C sub-index is still alive
    np.testing.assert_array_equal(sub.reconstruct(5), xb[5])
    sub.add(xb)                          # and mutable now that it is alone
    assert sub.ntotal == 12
    with pytest.raises(ValueError):      # but still owned by the dead IDMap's tree
        vecdex.IndexIDMap(sub)


def test_parent_outlives_temporary_child(rng):
    ix = vecdex.IndexIDMap(vecdex.IndexFlatL2(4))
    gc.collect()
    xb = data(rng, 6, 4)
    ix.add_with_ids(xb, np.arange(6) + 1)
    assert ix.index.ntotal == 6 and ix.index is ix.index
    w = weakref.ref(ix.index)
    del ix
    assert w() is None


def test_wrapping_rules(rng):
    sub = vecdex.IndexFlatL2(4)
    vecdex.IndexIDMap(sub)
    with pytest.raises(ValueError):
        vecdex.IndexIDMap(sub)           # already owned
    full = vecdex.IndexFlatL2(4)
    full.add(data(rng, 2, 4))
    with pytest.raises(RuntimeError):   # FAISS: "index must be empty on input"
        vecdex.IndexIDMap(full)
    assert full.ntotal == 2
    vecdex.IndexIDMap(full.__class__(4))
    with pytest.raises(TypeError):
        vecdex.IndexIDMap(None)
    with pytest.raises(TypeError):
        vecdex.IndexIDMap2("flat")
    nested = vecdex.IndexIDMap(vecdex.IndexFlatL2(3))
    ix = vecdex.IndexIDMap(vecdex.IndexFlatL2(3))
    with pytest.raises(RuntimeError):
        ix.__init__(nested)               # re-initialisation refused


def test_many_indexes_are_freed():
    refs = []
    for _ in range(50):
        ix = vecdex.IndexIDMap2(vecdex.IndexFlatL2(64))
        ix.add_with_ids(np.zeros((100, 64), np.float32), np.arange(100))
        ix.me = ix                       # a cycle through __dict__ is collectable
        refs.append(weakref.ref(ix))
        refs.append(weakref.ref(ix.index))
        del ix
    gc.collect()
    assert all(r() is None for r in refs)
