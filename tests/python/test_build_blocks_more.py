"""IndexIVFScalarQuantizer.by_residual settable before training (results
compared with FAISS's built the same way), MatrixStats' diagnostics
against counts computed here with numpy and FAISS's own report, and the
int64 maps against a dict."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("by_residual", [True, False])
def test_ivfsq_by_residual_like_faiss(by_residual):
    rs = np.random.RandomState(3)
    d = 24
    xt, xb, xq = (rs.rand(n, d).astype("float32") for n in (800, 500, 20))
    v = vecdex.index_factory(d, "IVF8,SQ8")
    v.by_residual = by_residual
    assert v.by_residual == by_residual
    v.train(xt)
    cent = v.quantizer.reconstruct_n(0, 8)
    fq = faiss.IndexFlatL2(d)
    fq.add(cent)
    f = faiss.IndexIVFScalarQuantizer(fq, d, 8, faiss.ScalarQuantizer.QT_8bit)
    f.by_residual = by_residual
    f.train(xt)    # the quantizer holds the 8 centroids: kept
    for ix in (v, f):
        ix.add(xb)
        ix.nprobe = 8
    Dv, Iv = v.search(xq, 5)
    Df, If = f.search(xq, 5)
    assert (Iv == If).mean() > 0.95
    np.testing.assert_allclose(Dv, Df, rtol=1e-3, atol=1e-4)
    with pytest.raises(Exception):
        v.by_residual = not by_residual   # it holds codes now
    v.reset()
    v.by_residual = not by_residual
    assert v.by_residual == (not by_residual)


def test_matrix_stats_counts():
    rs = np.random.RandomState(123)
    m = rs.rand(40, 20).astype("float32")
    m[5:10] = 0                 # 5 null rows, copies of each other
    m[20] = m[21]               # one more pair
    m[:, 3] = 0                 # a constant column
    c = vecdex.MatrixStats(m).comments
    ndistinct = len(np.unique(m, axis=0))
    assert "%d vectors are distinct" % ndistinct in c
    assert "has 5 copies" in c
    assert "5 null vectors" in c
    assert "1 dimensions are constant" in c
    ref = faiss.MatrixStats(m).comments
    for phrase in ("vectors are distinct", "null vectors", "has 5 copies",
                   "dimensions are constant"):
        assert phrase in ref
    n = vecdex.MatrixStats(m / np.linalg.norm(m + 1e-3, axis=1, keepdims=True))
    assert "vectors are normalized" not in n.comments
    x = rs.rand(30, 8).astype("float32")
    faiss.normalize_L2(x)
    assert "vectors are normalized" in vecdex.MatrixStats(x).comments
    assert vecdex.MatrixStats(x).hash_value == vecdex.MatrixStats(x.copy()).hash_value
    assert vecdex.MatrixStats(x).hash_value != vecdex.MatrixStats(x[::-1].copy()).hash_value
    with pytest.raises(ValueError):
        vecdex.MatrixStats(np.zeros(5, "float32"))


def test_maps_against_dict():
    rs = np.random.RandomState(9)
    keys = np.unique(rs.randint(0, 1 << 40, size=3000)).astype("int64")
    rs.shuffle(keys)
    vals = rs.randint(0, 1 << 40, size=len(keys)).astype("int64")
    ref = dict(zip(keys.tolist(), vals.tolist()))
    probe = np.concatenate([keys[:500], rs.randint(1 << 41, 1 << 42, 200)]).astype("int64")
    want = np.array([ref.get(k, -1) for k in probe.tolist()])
    m = vecdex.MapInt64ToInt64(4096)
    m.add(keys, vals)
    np.testing.assert_array_equal(m.lookup(probe), want)
    with pytest.raises(RuntimeError):
        vecdex.MapInt64ToInt64(10).add(keys[:11], vals[:11])
    l2 = vecdex.MapLong2Long()
    l2.add(keys, vals)
    np.testing.assert_array_equal(l2.search_multiple(probe), want)
    assert l2.search(int(probe[-1])) == -1
    fm = faiss.MapLong2Long()
    fm.add(keys, vals)
    np.testing.assert_array_equal(fm.search_multiple(probe), want)


@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_8bit_direct_signed_like_faiss(metric, tmp_path):
    rs = np.random.RandomState(5)
    d = 21
    xb = rs.randint(-128, 128, size=(400, d)).astype("float32")
    xq = rs.randint(-128, 128, size=(15, d)).astype("float32")
    qt = vecdex.ScalarQuantizer.QT_8bit_direct_signed
    assert qt == faiss.ScalarQuantizer.QT_8bit_direct_signed
    v = vecdex.IndexScalarQuantizer(d, qt, metric)
    f = faiss.IndexScalarQuantizer(d, qt, metric)
    for ix in (v, f):
        ix.add(xb)
    np.testing.assert_array_equal(v.sa_encode(xq), f.sa_encode(xq))
    Dv, Iv = v.search(xq, 7)
    Df, If = f.search(xq, 7)
    np.testing.assert_array_equal(Iv, If)
    np.testing.assert_array_equal(Dv, Df)
    fn = str(tmp_path / "ds.index")
    faiss.write_index(f, fn)
    np.testing.assert_array_equal(vecdex.read_index(fn).search(xq, 7)[1], If)
