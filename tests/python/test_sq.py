"""Scalar quantizer: codes, search and files against FAISS."""
import os
import tempfile

import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")

QTYPES = ["QT_8bit", "QT_4bit", "QT_8bit_uniform", "QT_4bit_uniform",
          "QT_fp16", "QT_8bit_direct", "QT_6bit", "QT_bf16"]


def data(n, d, seed=0, direct=False):
    rs = np.random.RandomState(seed)
    x = (rs.randn(n, d) * 3).astype("float32")
    if direct:  # 8bit_direct stores integers 0..255
        x = np.floor(np.clip(np.abs(x) * 20, 0, 255)).astype("float32")
    return x


@pytest.mark.parametrize("qname", QTYPES)
def test_qtype_numbers(qname):
    assert getattr(vecdex.ScalarQuantizer, qname) == \
        getattr(faiss.ScalarQuantizer, qname)


@pytest.mark.parametrize("d", [1, 5, 16, 33, 128])
@pytest.mark.parametrize("qname", QTYPES)
def test_codes_identical(qname, d):
    qt = getattr(faiss.ScalarQuantizer, qname)
    x = data(300, d, seed=d, direct=qname == "QT_8bit_direct")
    f = faiss.ScalarQuantizer(d, qt)
    f.train(x)
    v = vecdex.ScalarQuantizer(d, qt)
    v.train(x)
    assert v.code_size == f.code_size
    np.testing.assert_array_equal(v.trained, faiss.vector_to_array(f.trained))
    cf = f.compute_codes(x)
    cv = v.compute_codes(x)
    if qname == "QT_bf16":
        assert_bf16_codes(x, cv, cf)
    else:
        np.testing.assert_array_equal(cv, cf)
    # the same codes decode alike (faiss decoding vecdex's codes)
    np.testing.assert_allclose(v.decode(cv), f.decode(cv), rtol=1e-5,
                               atol=1e-5)


def assert_bf16_codes(x, cv, cf):
    """vecdex rounds bf16 to nearest, ties to even.  faiss's generic code
    rounds ties up and its AVX512_SPR build to even, so codes must equal
    faiss's except on exact ties, where vecdex's must be the even one."""
    u = x.view("uint32").ravel()
    hv = cv.view("uint16").ravel()
    hf = cf.view("uint16").ravel()
    tie = (u & 0xFFFF) == 0x8000
    np.testing.assert_array_equal(hv[~tie], hf[~tie])
    np.testing.assert_array_equal(hv[tie], ((u[tie] >> 16) + ((u[tie] >> 16) & 1)) & 0xFFFF)
    np.testing.assert_array_equal(hv, (u + 0x7FFF + ((u >> 16) & 1)) >> 16)


def test_bf16_rounding_ties_to_even():
    """Exact ties round to the even neighbour; everything else to nearest,
    as faiss's generic code does."""
    vals = np.array([1 + 2**-8, 1 + 3 * 2**-8, -2.2265625, -(1 + 2**-8),
                     1 + 2**-9, 1 + 2**-8 + 2**-20, 1.0e18, -1.5e-38],
                    dtype="float32")
    x = np.tile(vals, (3, 1))
    v = vecdex.ScalarQuantizer(len(vals), vecdex.ScalarQuantizer.QT_bf16)
    v.train(x)
    h = v.compute_codes(x)[0].view("uint16")
    assert list(h[:4]) == [0x3F80, 0x3F82, 0xC00E, 0xBF80]
    f = faiss.ScalarQuantizer(len(vals), faiss.ScalarQuantizer.QT_bf16)
    f.train(x)
    assert_bf16_codes(x, v.compute_codes(x), f.compute_codes(x))


def assert_same_results(Dv, Iv, Df, If, rtol=1e-4):
    np.testing.assert_allclose(Dv, Df, rtol=rtol, atol=1e-3)
    # ids equal except where distances tie (within tolerance)
    for q in range(If.shape[0]):
        if np.array_equal(Iv[q], If[q]):
            continue
        bad = np.nonzero(Iv[q] != If[q])[0]
        for j in bad:
            assert abs(Df[q, j] - Dv[q, j]) <= rtol * abs(Df[q, j]) + 1e-3
        assert set(Iv[q][:bad[0]]) == set(If[q][:bad[0]])


@pytest.mark.parametrize("metric", ["METRIC_L2", "METRIC_INNER_PRODUCT"])
@pytest.mark.parametrize("qname", QTYPES)
def test_index_search_matches_faiss(qname, metric):
    d, qt = 24, getattr(faiss.ScalarQuantizer, qname)
    direct = qname == "QT_8bit_direct"
    xb = data(2000, d, 1, direct)
    xq = data(30, d, 2, direct)
    f = faiss.IndexScalarQuantizer(d, qt, getattr(faiss, metric))
    v = vecdex.IndexScalarQuantizer(d, qt, getattr(vecdex, metric))
    f.train(xb)
    v.train(xb)
    f.add(xb)
    v.add(xb)
    Df, If = f.search(xq, 10)
    Dv, Iv = v.search(xq, 10)
    assert_same_results(Dv, Iv, Df, If)
    # single query (database split over threads)
    Dv1, Iv1 = v.search(xq[:1], 10)
    assert_same_results(Dv1, Iv1, Df[:1], If[:1])
    np.testing.assert_allclose(v.reconstruct_n(0, 5), f.reconstruct_n(0, 5),
                               rtol=1e-5, atol=1e-5)


def test_recall_sq8_vs_flat():
    d = 32
    xb, xq = data(5000, d, 3), data(50, d, 4)
    v = vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_8bit)
    v.train(xb)
    v.add(xb)
    ref = vecdex.IndexFlatL2(d)
    ref.add(xb)
    _, I = v.search(xq, 1)
    _, Ir = ref.search(xq, 1)
    assert (I[:, 0] == Ir[:, 0]).mean() >= 0.9


def test_range_search_selector_remove():
    d = 16
    xb, xq = data(1000, d, 5), data(5, d, 6)
    v = vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_8bit)
    f = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit)
    for ix in (v, f):
        ix.train(xb)
        ix.add(xb)
    D, _ = f.search(xq, 20)
    r = float(np.median(D[:, -1]))
    lv, Dv, Iv = v.range_search(xq, r)
    lf, Df, If = f.range_search(xq, r)
    for q in range(5):
        a = set(Iv[lv[q]:lv[q + 1]])
        b = set(If[lf[q]:lf[q + 1]])
        assert len(a ^ b) <= 1  # boundary ties only
    sel = vecdex.IDSelectorRange(100, 400)
    _, I = v.search(xq, 5, params=vecdex.SearchParameters(sel=sel))
    assert ((I >= 100) & (I < 400)).all()
    before = v.reconstruct(500)
    n = v.remove_ids(vecdex.IDSelectorRange(0, 100))
    assert n == 100 and v.ntotal == 900
    np.testing.assert_array_equal(v.reconstruct(400), before)


@pytest.mark.parametrize("metric", ["METRIC_L2", "METRIC_INNER_PRODUCT"])
@pytest.mark.parametrize("qname", ["QT_8bit", "QT_fp16", "QT_4bit", "QT_6bit"])
def test_ivf_sq_matches_faiss(qname, metric):
    d, nlist, qt = 16, 8, getattr(faiss.ScalarQuantizer, qname)
    xb, xq = data(3000, d, 7), data(20, d, 8)
    mf, mv = getattr(faiss, metric), getattr(vecdex, metric)
    km = faiss.Kmeans(d, nlist, niter=5, seed=1)
    km.train(xb)
    qf = faiss.IndexFlat(d, mf)
    qf.add(km.centroids)
    qv = vecdex.IndexFlat(d, mv)
    qv.add(km.centroids)
    f = faiss.IndexIVFScalarQuantizer(qf, d, nlist, qt, mf)
    v = vecdex.IndexIVFScalarQuantizer(qv, d, nlist, qt, mv)
    assert f.by_residual and v.by_residual
    f.train(xb)
    v.train(xb)
    np.testing.assert_allclose(v.sq.trained, faiss.vector_to_array(f.sq.trained),
                               rtol=1e-5, atol=1e-5)
    f.add(xb)
    v.add(xb)
    f.nprobe = v.nprobe = 3
    Df, If = f.search(xq, 10)
    Dv, Iv = v.search(xq, 10)
    assert_same_results(Dv, Iv, Df, If, rtol=1e-3)


def test_ivf_sq_no_residual():
    d, nlist = 16, 4
    xb = data(1000, d, 9)
    v = vecdex.IndexIVFScalarQuantizer(vecdex.IndexFlatL2(d), d, nlist,
                                       vecdex.ScalarQuantizer.QT_8bit,
                                       vecdex.METRIC_L2, False)
    assert not v.by_residual
    v.train(xb)
    v.add(xb)
    v.nprobe = nlist
    _, I = v.search(xb[:20], 1)
    assert (I[:, 0] == np.arange(20)).mean() >= 0.9


def roundtrip_both_ways(f, v, xq):
    with tempfile.TemporaryDirectory() as td:
        pf, pv = os.path.join(td, "f.index"), os.path.join(td, "v.index")
        faiss.write_index(f, pf)
        vecdex.write_index(v, pv)
        bf, bv = open(pf, "rb").read(), open(pv, "rb").read()
        assert bf == bv
        v2 = vecdex.read_index(pf)
        f2 = faiss.read_index(pv)
        assert type(v2) is type(v)
        Dv, Iv = v2.search(xq, 5)
        Df, If = f2.search(xq, 5)
        assert_same_results(Dv, Iv, Df, If)


@pytest.mark.parametrize("qname", QTYPES)
def test_file_index_sq(qname):
    d, qt = 12, getattr(faiss.ScalarQuantizer, qname)
    direct = qname == "QT_8bit_direct"
    xb, xq = data(200, d, 10, direct), data(5, d, 11, direct)
    f = faiss.IndexScalarQuantizer(d, qt)
    v = vecdex.IndexScalarQuantizer(d, qt)
    for ix in (f, v):
        ix.train(xb)
        ix.add(xb)
    roundtrip_both_ways(f, v, xq)


def test_file_untrained_index_sq():
    f = faiss.IndexScalarQuantizer(8, faiss.ScalarQuantizer.QT_8bit)
    v = vecdex.IndexScalarQuantizer(8, vecdex.ScalarQuantizer.QT_8bit)
    assert bytes(faiss.serialize_index(f)) == bytes(vecdex.serialize_index(v))
    v2 = vecdex.deserialize_index(faiss.serialize_index(f))
    assert not v2.is_trained


@pytest.mark.parametrize("qname", ["QT_8bit", "QT_fp16", "QT_6bit"])
def test_file_ivf_sq(qname):
    d, nlist, qt = 8, 4, getattr(faiss.ScalarQuantizer, qname)
    xb, xq = data(500, d, 12), data(5, d, 13)
    km = faiss.Kmeans(d, nlist, niter=5, seed=1)
    km.train(xb)
    qf, qv = faiss.IndexFlatL2(d), vecdex.IndexFlatL2(d)
    qf.add(km.centroids)
    qv.add(km.centroids)
    f = faiss.IndexIVFScalarQuantizer(qf, d, nlist, qt)
    v = vecdex.IndexIVFScalarQuantizer(qv, d, nlist, qt)
    for ix in (f, v):
        ix.train(xb)
        ix.add(xb)
        ix.nprobe = 2
    roundtrip_both_ways(f, v, xq)
    assert isinstance(vecdex.read_index, object)


def test_bad_inputs():
    with pytest.raises(ValueError):
        vecdex.ScalarQuantizer(8, 42)
    with pytest.raises(ValueError):
        vecdex.IndexScalarQuantizer(8, 99)
    with pytest.raises(ValueError):
        vecdex.IndexIVFScalarQuantizer(vecdex.IndexFlatL2(8), 8, 4, -1)
    v = vecdex.IndexScalarQuantizer(8, vecdex.ScalarQuantizer.QT_8bit)
    assert not v.is_trained
    x = data(10, 8)
    with pytest.raises(RuntimeError):
        v.add(x)
    with pytest.raises(RuntimeError):
        v.search(x, 1)
    sq = vecdex.ScalarQuantizer(8, vecdex.ScalarQuantizer.QT_4bit)
    with pytest.raises(RuntimeError):
        sq.compute_codes(x)
    with pytest.raises(ValueError):
        sq.train(data(10, 7))
    # trainless kinds are ready at once
    v = vecdex.IndexScalarQuantizer(8, vecdex.ScalarQuantizer.QT_fp16)
    assert v.is_trained
    v.add(x)
    assert v.ntotal == 10
    with pytest.raises(RuntimeError):
        v.add_with_ids(x, np.arange(10))
