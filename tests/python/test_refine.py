"""IndexRefine / IndexRefineFlat: exact re-ranking of a base index's
k * k_factor candidates, compared with FAISS on identical trained bases,
file compatibility both ways, params, factory strings, ownership."""
import gc

import numpy as np
import pytest

import vecdex

d = 16


def data(rng, nb=1000, nq=30):
    xb = rng.random((nb, d), dtype=np.float32)
    xq = rng.random((nq, d), dtype=np.float32)
    return xb, xq


def check_same(D1, I1, D2, I2):
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", [vecdex.METRIC_L2,
                                    vecdex.METRIC_INNER_PRODUCT])
def test_refine_flat_sq_equals_faiss(faiss_ref, rng, metric):
    faiss = faiss_ref
    xb, xq = data(rng)
    v = vecdex.IndexRefineFlat(vecdex.IndexScalarQuantizer(
        d, vecdex.ScalarQuantizer.QT_8bit, metric))
    f = faiss.IndexRefineFlat(faiss.IndexScalarQuantizer(
        d, faiss.ScalarQuantizer.QT_8bit, metric))
    for ix in (v, f):
        ix.train(xb)
        ix.add(xb)
    assert v.k_factor == 1.0
    for kf in (1, 3, 10.5):
        v.k_factor = kf
        f.k_factor = kf
        check_same(*v.search(xq, 7), *f.search(xq, 7))
    # params override the index's k_factor
    v.k_factor = f.k_factor = 1
    pv = vecdex.IndexRefineSearchParameters(k_factor=4)
    pf = faiss.IndexRefineSearchParameters(k_factor=4)
    check_same(*v.search(xq, 5, params=pv), *f.search(xq, 5, params=pf))


def test_exact_when_covered(rng):
    xb, xq = data(rng, nb=300)
    ix = vecdex.IndexRefineFlat(vecdex.IndexPQ(d, 4, 4))
    ix.train(xb)
    ix.add(xb)
    ix.k_factor = 300 / 5
    fl = vecdex.IndexFlatL2(d)
    fl.add(xb)
    De, Ie = fl.search(xq, 5)
    D, I = ix.search(xq, 5)
    np.testing.assert_array_equal(I, Ie)
    np.testing.assert_allclose(D, De, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ix.reconstruct(3), xb[3])
    # padding
    D, I = ix.search(xq[:1], 310)
    assert (I[0, 300:] == -1).all() and I[0, 299] >= 0


def test_files_both_ways(faiss_ref, rng, tmp_path):
    faiss = faiss_ref
    xb, xq = data(rng)
    f = faiss.IndexRefineFlat(faiss.IndexPQ(d, 4, 8))
    f.train(xb)
    f.add(xb)
    f.k_factor = 2.5
    buf = faiss.serialize_index(f)
    v = vecdex.deserialize_index(buf)
    assert type(v) is vecdex.IndexRefineFlat
    assert v.k_factor == 2.5
    assert type(v.base_index) is vecdex.IndexPQ
    assert type(v.refine_index) is vecdex.IndexFlatL2
    check_same(*v.search(xq, 6), *f.search(xq, 6))
    # byte-identical when written back
    assert bytes(vecdex.serialize_index(v)) == bytes(buf)
    # vecdex -> faiss, through a file, with a non-flat refine index
    v2 = vecdex.IndexRefine(
        vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_4bit),
        vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_fp16))
    v2.train(xb)
    v2.add(xb)
    v2.k_factor = 4
    p = str(tmp_path / "rf.index")
    vecdex.write_index(v2, p)
    f2 = faiss.read_index(p)
    assert isinstance(f2, faiss.IndexRefine)
    assert f2.k_factor == 4
    Dv, Iv = v2.search(xq, 5)
    Df, If = f2.search(xq, 5)
    np.testing.assert_array_equal(Iv, If)
    np.testing.assert_allclose(Dv, Df, rtol=1e-4, atol=1e-4)
    v3 = vecdex.read_index(p)
    assert type(v3) is vecdex.IndexRefine
    check_same(*v3.search(xq, 5), Dv, Iv)


def test_factory(faiss_ref, rng):
    faiss = faiss_ref
    xb, xq = data(rng)
    for s, cls in [("PQ4x4,RFlat", vecdex.IndexRefineFlat),
                   ("SQ8,Refine(Flat)", vecdex.IndexRefine),
                   ("IVF8,PQ4x4,Refine(SQfp16)", vecdex.IndexRefine),
                   ("SQ8,RFlat", vecdex.IndexRefineFlat)]:
        v = vecdex.index_factory(d, s)
        assert type(v) is cls, s
        f = faiss.index_factory(d, s)
        v.train(xb)
        v.add(xb)
        D, I = v.search(xb[:5], 3)
        np.testing.assert_array_equal(I[:, 0], np.arange(5))
        if s.startswith("SQ8"):  # deterministic training: same as faiss
            f.train(xb)
            f.add(xb)
            check_same(D, I, *f.search(xb[:5], 3))
    with pytest.raises(ValueError):
        vecdex.index_factory(d, "PQ4,Refine(Nope)")


def test_params_and_selector(rng):
    xb, xq = data(rng, nb=400)
    ix = vecdex.IndexRefineFlat(vecdex.IndexScalarQuantizer(
        d, vecdex.ScalarQuantizer.QT_8bit))
    ix.train(xb)
    ix.add(xb)
    sel = vecdex.IDSelectorRange(100, 200)
    p = vecdex.IndexRefineSearchParameters(
        k_factor=3, base_index_params=vecdex.SearchParameters(sel=sel))
    assert p.k_factor == 3
    assert isinstance(p.base_index_params, vecdex.SearchParameters)
    del sel
    gc.collect()
    D, I = ix.search(xq, 5, params=p)
    assert ((I >= 100) & (I < 200)).all()
    assert vecdex.IndexRefineSearchParameters().k_factor == 1
    with pytest.raises(ValueError):
        vecdex.IndexRefineSearchParameters(k_factor=0.5)
    with pytest.raises(TypeError):
        vecdex.IndexRefineSearchParameters(base_index_params=3)
    with pytest.raises(Exception):
        ix.k_factor = 0.5


def test_ownership(rng):
    xb, xq = data(rng, nb=200)
    base = vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_8bit)
    ref = vecdex.IndexFlatL2(d)
    ix = vecdex.IndexRefine(base, ref)
    assert ix.base_index is base and ix.refine_index is ref
    ix.train(xb)
    ix.add(xb)
    assert base.ntotal == ref.ntotal == 200
    with pytest.raises(RuntimeError):
        ref.add(xb)
    with pytest.raises(ValueError):
        vecdex.IndexRefine(vecdex.IndexFlatL2(d), ref)
    with pytest.raises(ValueError):
        vecdex.IndexRefine(base, vecdex.IndexFlatL2(d))
    D, I = ix.search(xq, 4)
    del ix
    gc.collect()
    # the children outlive the wrapper
    assert ref.ntotal == 200
    D2, I2 = ref.search(xq, 4)
    assert D2.shape == (30, 4)
    # the sub-index of an IVF cannot be taken
    q = vecdex.IndexFlatL2(d)
    ivf = vecdex.IndexIVFFlat(q, d, 4)
    with pytest.raises(ValueError):
        vecdex.IndexRefine(vecdex.IndexFlatL2(d), q)
    del ivf
    # bad inputs
    with pytest.raises(Exception):
        vecdex.IndexRefine(vecdex.IndexFlatL2(d), vecdex.IndexFlatL2(d + 1))
    with pytest.raises(TypeError):
        vecdex.IndexRefine(3, 4)
    rf = vecdex.IndexRefineFlat(vecdex.IndexFlatL2(d))
    assert type(rf.refine_index) is vecdex.IndexFlatL2
    rf.add(xb)
    rf.reset()
    assert rf.ntotal == 0 and rf.base_index.ntotal == 0
    r = rf.refine_index
    del rf
    gc.collect()
    assert r.ntotal == 0


def test_params_k_factor_error_quotes_the_value():
    # PyErr_Format has no %g: the message used to read "got %g"
    for bad, shown in ((-1.0, "-1.0"), (0.5, "0.5"), (1e10, "10000000000.0"),
                       (float("nan"), "nan")):
        with pytest.raises(ValueError) as e:
            vecdex.IndexRefineSearchParameters(k_factor=bad)
        assert "%g" not in str(e.value) and shown in str(e.value)
