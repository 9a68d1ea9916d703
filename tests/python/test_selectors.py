"""ID selectors and SearchParameters, compared with Python sets, numpy brute
force and FAISS using the same selector."""
import gc

import numpy as np
import pytest

import vecdex

IDS = np.array([3, 17, 17, 64, 65, 1000, 2**40, -5], dtype=np.int64)
PROBE = list(range(-10, 1100)) + [2**40, 2**40 + 1, -(2**40)]


def bitmap_of(ids, nbytes):
    bm = np.zeros(nbytes, np.uint8)
    for i in ids:
        bm[i >> 3] |= 1 << (i & 7)
    return bm


def members(sel):
    return {i for i in PROBE if sel.is_member(i)}


def test_leaf_selectors_membership():
    assert members(vecdex.IDSelectorRange(10, 20)) == set(range(10, 20))
    assert members(vecdex.IDSelectorRange(20, 10)) == set()
    r = vecdex.IDSelectorRange(-3, 5, assume_sorted=True)
    assert (r.imin, r.imax, r.assume_sorted) == (-3, 5, True)
    assert members(r) == set(range(-3, 5))
    assert vecdex.IDSelectorRange(imin=0, imax=2).is_member(1) is True
    want = set(IDS.tolist())
    for cls in (vecdex.IDSelectorBatch, vecdex.IDSelectorArray):
        assert members(cls(IDS)) == want
        assert members(cls(IDS.tolist())) == want
        assert members(cls(3, IDS)) == {3, 17}                    # first n only
        assert members(cls(len(IDS), vecdex.swig_ptr(IDS))) == want  # FAISS idiom
        assert members(cls(np.array([], np.int64))) == set()
        small = IDS[np.abs(IDS) < 2**31]
        assert members(cls(small.astype(np.int32))) == set(small.tolist())
        with pytest.raises(ValueError):
            cls(9, IDS)
        with pytest.raises(TypeError):
            cls()


def test_bitmap_bit_order_matches_faiss(faiss_ref):
    chosen = [0, 1, 7, 8, 9, 63, 70, 79]
    bm = bitmap_of(chosen, 10)
    v = vecdex.IDSelectorBitmap(bm)
    f = faiss_ref.IDSelectorBitmap(bm)
    assert members(v) == set(chosen)
    assert members(v) == {i for i in PROBE if f.is_member(i)}
    assert members(vecdex.IDSelectorBitmap(2, bm)) == {0, 1, 7, 8, 9}   # n bytes
    packed = np.packbits(np.isin(np.arange(80), chosen), bitorder="little")
    assert members(vecdex.IDSelectorBitmap(packed)) == set(chosen)
    with pytest.raises(TypeError):      # a bool mask is not a bitmap
        vecdex.IDSelectorBitmap(np.ones(8, bool))


def test_composites_and_references():
    a = vecdex.IDSelectorRange(0, 100)
    b = vecdex.IDSelectorBatch(np.array([5, 150, 99]))
    assert members(vecdex.IDSelectorNot(a)) == set(PROBE) - set(range(100))
    assert members(vecdex.IDSelectorAnd(a, b)) == {5, 99}
    assert members(vecdex.IDSelectorOr(a, b)) == set(range(100)) | {150}
    # composites keep their children alive (the C composites borrow them)
    nested = vecdex.IDSelectorOr(
        vecdex.IDSelectorNot(vecdex.IDSelectorRange(10, 1000)),
        vecdex.IDSelectorAnd(vecdex.IDSelectorBatch([500, 501, 2000]),
                             vecdex.IDSelectorRange(0, 1001)))
    del a, b
    gc.collect()
    assert members(nested) == (set(PROBE) - set(range(10, 1000))) | {500, 501}
    for cls in (vecdex.IDSelectorNot,):
        with pytest.raises(TypeError):
            cls(None)
    with pytest.raises(TypeError):
        vecdex.IDSelectorAnd(vecdex.IDSelectorRange(0, 1), [1, 2])
    with pytest.raises(TypeError):
        vecdex.IDSelector()
    assert isinstance(nested, vecdex.IDSelector)


def test_search_parameters_object():
    p = vecdex.SearchParameters()
    assert p.sel is None
    s = vecdex.IDSelectorRange(0, 3)
    p.sel = s
    assert p.sel is s
    p.sel = None
    assert p.sel is None
    assert vecdex.SearchParameters(sel=s).sel is s
    with pytest.raises(TypeError):
        p.sel = [1, 2]
    with pytest.raises(TypeError):
        vecdex.SearchParameters(sel=3)
    ivf = vecdex.SearchParametersIVF(sel=s, nprobe=7, max_codes=1000)
    assert isinstance(ivf, vecdex.SearchParameters)
    assert (ivf.sel, ivf.nprobe, ivf.max_codes) == (s, 7, 1000)
    ivf.nprobe = 3
    assert ivf.nprobe == 3 and vecdex.SearchParametersIVF().nprobe == 0
    assert vecdex.IVFSearchParameters is vecdex.SearchParametersIVF
    with pytest.raises(ValueError):
        ivf.nprobe = -1


def selectors(faiss, nb):
    """(name, vecdex selector, faiss selector, boolean mask over ids 0..nb)."""
    rng = np.random.default_rng(5)
    batch = rng.choice(nb, 60, replace=False).astype(np.int64)
    bm = bitmap_of(rng.choice(nb, 100, replace=False), (nb + 7) // 8)
    mask_bm = np.array([(bm[i >> 3] >> (i & 7)) & 1 for i in range(nb)], bool)
    out = [
        ("range", vecdex.IDSelectorRange(100, 250), faiss.IDSelectorRange(100, 250),
         (np.arange(nb) >= 100) & (np.arange(nb) < 250)),
        ("batch", vecdex.IDSelectorBatch(batch), faiss.IDSelectorBatch(batch),
         np.isin(np.arange(nb), batch)),
        ("array", vecdex.IDSelectorArray(batch), faiss.IDSelectorArray(batch),
         np.isin(np.arange(nb), batch)),
        ("bitmap", vecdex.IDSelectorBitmap(bm), faiss.IDSelectorBitmap(bm), mask_bm),
        ("empty", vecdex.IDSelectorBatch(np.array([], np.int64)),
         faiss.IDSelectorBatch(np.array([], np.int64)), np.zeros(nb, bool)),
    ]
    vr, fr = vecdex.IDSelectorRange(0, nb // 2), faiss.IDSelectorRange(0, nb // 2)
    vb, fb = vecdex.IDSelectorBitmap(bm), faiss.IDSelectorBitmap(bm)
    half = np.arange(nb) < nb // 2
    out += [
        ("not", vecdex.IDSelectorNot(vr), faiss.IDSelectorNot(fr), ~half),
        ("and", vecdex.IDSelectorAnd(vr, vb), faiss.IDSelectorAnd(fr, fb), half & mask_bm),
        ("or", vecdex.IDSelectorOr(vr, vb), faiss.IDSelectorOr(fr, fb), half | mask_bm),
    ]
    return out


@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("nq", [2, 50])
def test_search_with_selector_vs_faiss_and_bruteforce(rng, bf, faiss_ref, metric, nq):
    d, nb = 16, 1000
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    v = vecdex.IndexFlat(d, metric)
    f = faiss_ref.IndexFlat(d, metric)
    v.add(xb)
    f.add(xb)
    radius = 20.0 if metric == vecdex.METRIC_L2 else 5.0
    for name, sv, sf, mask in selectors(faiss_ref, nb):
        Dv, Iv = v.search(xq, 8, params=vecdex.SearchParameters(sel=sv))
        Df, If = f.search(xq, 8, params=faiss_ref.SearchParameters(sel=sf))
        ok = Iv[Iv >= 0]
        assert mask[ok].all(), name
        bf.assert_knn_equal(Dv, Iv, *bf.knn(xq, xb, 8, metric, mask=mask))
        bf.assert_knn_equal(Dv, Iv, Df.astype(np.float64), If, rtol=1e-5)
        pv = vecdex.SearchParameters(sel=sv)
        got = bf.range_to_dicts(*v.range_search(xq, radius, params=pv))
        ref = bf.range(xq, xb, radius, metric, mask=mask)
        bf.assert_range_equal(got, ref, radius)
        fgot = bf.range_to_dicts(*f.range_search(xq, radius, params=faiss_ref.SearchParameters(sel=sf)))
        bf.assert_range_equal(got, fgot, radius)


@pytest.mark.parametrize("kind", ["IndexIDMap", "IndexIDMap2"])
def test_selector_applies_to_user_ids(rng, bf, faiss_ref, kind):
    d, nb = 8, 400
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((10, d)).astype(np.float32)
    ids = np.arange(nb, dtype=np.int64) * 10 + 5
    v = getattr(vecdex, kind)(vecdex.IndexFlatL2(d))
    f = getattr(faiss_ref, kind)(faiss_ref.IndexFlatL2(d))
    v.add_with_ids(xb, ids)
    f.add_with_ids(xb, ids)
    sv, sf = vecdex.IDSelectorRange(1000, 2500), faiss_ref.IDSelectorRange(1000, 2500)
    Dv, Iv = v.search(xq, 5, params=vecdex.SearchParameters(sel=sv))
    Df, If = f.search(xq, 5, params=faiss_ref.SearchParameters(sel=sf))
    assert ((Iv >= 1000) & (Iv < 2500)).all()
    np.testing.assert_array_equal(Iv, If)
    np.testing.assert_allclose(Dv, Df, rtol=1e-5, atol=1e-5)
    mask = (ids >= 1000) & (ids < 2500)
    bf.assert_knn_equal(Dv, Iv, *bf.knn(xq, xb, 5, vecdex.METRIC_L2, ids=ids, mask=mask))


def test_params_keep_selector_alive(rng):
    xb = rng.standard_normal((50, 4)).astype(np.float32)
    ix = vecdex.IndexFlatL2(4)
    ix.add(xb)
    params = vecdex.SearchParameters(sel=vecdex.IDSelectorNot(vecdex.IDSelectorRange(0, 49)))
    gc.collect()
    D, I = ix.search(xb, 3, params=params)
    assert (I[:, 0] == 49).all() and (I[:, 1:] == -1).all()
    ivf = vecdex.SearchParametersIVF(sel=vecdex.IDSelectorBatch([3]), nprobe=4)
    gc.collect()
    assert (ix.search(xb[:2], 1, params=ivf)[1] == 3).all()     # flat ignores nprobe
    with pytest.raises(TypeError):
        ix.search(xb, 3, params=vecdex.IDSelectorRange(0, 3))
    with pytest.raises(TypeError):
        ix.range_search(xb, 1.0, params={"sel": None})
    assert ix.search(xb, 3, params=None)[1][0, 0] == 0
    assert ix.search(xb, 3, params=vecdex.SearchParameters())[1][0, 0] == 0
