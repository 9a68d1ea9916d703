"""FAISS's small helpers (vecdex/_helpers.py): each compared with numpy
brute force, and with faiss where the result is deterministic."""
import numpy as np
import pytest

import vecdex as faiss

try:
    import faiss as real_faiss
except ImportError:  # pragma: no cover
    real_faiss = None


def test_random_ranges():
    x = faiss.rand(5000, 3)
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 1
    assert faiss.rand((10, 4)).shape == (10, 4)
    np.testing.assert_array_equal(faiss.randn(50, 7), faiss.randn(50, 7))
    r = faiss.randint(20000, vmax=100)
    assert r.min() >= 0 and r.max() < 100 and r.dtype == np.int64
    with pytest.raises(ValueError):
        faiss.randint(5, vmax=0)


@pytest.mark.parametrize("largest", [False, True])
def test_partition_fuzzy(largest):
    rng = np.random.default_rng(0)
    for n, qmin, qmax in [(160, 80, 80), (32, 10, 15), (5, 0, 0)]:
        vals = rng.integers(0, 16, n).astype("float32")
        ids = rng.permutation(n).astype("int64") + 100
        pairs = dict(zip(ids.tolist(), vals.tolist()))
        orig = vals.copy()
        qo = np.array([-1], dtype="int64")
        f = (faiss.CMin_float_partition_fuzzy if largest
             else faiss.CMax_float_partition_fuzzy)
        f(vals, ids, n, qmin, qmax, qo)
        q = int(qo[0])
        assert qmin <= q <= qmax
        srt = np.sort(-orig)[:q] * -1 if largest else np.sort(orig)[:q]
        np.testing.assert_array_equal(np.sort(vals[:q]), np.sort(srt))
        assert all(pairs[i] == v for i, v in zip(ids.tolist(),
                                                 vals.tolist()))
    with pytest.raises(ValueError):
        faiss.CMax_float_partition_fuzzy(vals, ids, n + 1, 1, 1, None)


def test_histograms():
    rng = np.random.default_rng(1)
    tab = rng.integers(10, 65500, 1000).astype("uint16")
    t = faiss.AlignedTableUint16()
    faiss.copy_array_to_AlignedTable(tab, t)
    np.testing.assert_array_equal(faiss.AlignedTable_to_array(t), tab)
    for nbin, f in ((8, faiss.simd_histogram_8), (16, faiss.simd_histogram_16)):
        for minv, shift in ((300, 5), (0, 12), (100, 0)):
            hist = np.zeros(nbin, "int32")
            f(t.get(), len(tab), minv, shift, hist)
            b = (tab.astype(np.int64) - minv)
            ok = b >= 0
            ref = np.bincount((b[ok] >> shift)[(b[ok] >> shift) < nbin],
                              minlength=nbin)
            np.testing.assert_array_equal(hist, ref)


def test_result_heap_and_kmin():
    rng = np.random.default_rng(2)
    D = rng.random((30, 200)).astype("float32")
    I = rng.integers(0, 10**6, (30, 200))
    for keep_max in (False, True):
        rh = faiss.ResultHeap(30, 10, keep_max=keep_max)
        rh.add_result(D[:, :70], I[:, :70])
        rh.add_result(D[:, 70:], I[:, 70:])
        rh.finalize()
        o = np.argsort(-D if keep_max else D, axis=1)[:, :10]
        np.testing.assert_array_equal(rh.D, np.take_along_axis(D, o, 1))
        np.testing.assert_array_equal(rh.I, np.take_along_axis(I, o, 1))
    Dm, Im = faiss.kmin(D, 5)
    np.testing.assert_array_equal(Im, np.argsort(D, axis=1)[:, :5])
    Dx, Ix = faiss.kmax(D, 5)
    np.testing.assert_array_equal(Ix, np.argsort(-D, axis=1)[:, :5])


def test_merge_knn_results_vs_faiss():
    rng = np.random.default_rng(3)
    Dall = np.sort(rng.random((3, 20, 8)).astype("float32"), axis=2)
    Iall = rng.integers(0, 1000, (3, 20, 8))
    D, I = faiss.merge_knn_results(Dall, Iall)
    ref = np.sort(Dall.transpose(1, 0, 2).reshape(20, -1), axis=1)[:, :8]
    np.testing.assert_array_equal(D, ref)
    if real_faiss is not None:
        Dr, Ir = real_faiss.merge_knn_results(Dall, Iall)
        np.testing.assert_array_equal(D, Dr)
        np.testing.assert_array_equal(I, Ir)


def test_bucket_sorts_and_kernels():
    rng = np.random.default_rng(4)
    tab = rng.integers(0, 50, 1000)
    lims, perm = faiss.bucket_sort(tab)
    for b in range(50):
        assert np.all(tab[perm[lims[b]:lims[b + 1]]] == b)
    m = rng.integers(0, 30, (100, 4)).astype("int32")
    m2 = m.copy()
    lims = faiss.matrix_bucket_sort_inplace(m2)
    flat = m2.ravel()
    for b in range(30):
        rows = sorted(np.where(m == b)[0].tolist())
        assert sorted(flat[lims[b]:lims[b + 1]].tolist()) == rows
    x = rng.random(13).astype("float32")
    y = rng.random((40, 13)).astype("float32")
    out = np.zeros(40, "float32")
    faiss.fvec_L2sqr_ny(out, x, y, 13, 40)
    np.testing.assert_allclose(out, ((y - x) ** 2).sum(1), rtol=1e-5)
    faiss.fvec_inner_products_ny(out, x, y, 13, 40)
    np.testing.assert_allclose(out, y @ x, rtol=1e-5)
    c = np.zeros(13, "float32")
    i = faiss.fvec_madd_and_argmin(13, x, -0.5, y[0], c)
    np.testing.assert_allclose(c, x - 0.5 * y[0], rtol=1e-6)
    assert i == int(np.argmin(c))
    with pytest.raises(ValueError):
        faiss.fvec_L2sqr_ny(out, x, y, 13, 41)
    I1 = rng.integers(0, 20, (10, 5))
    I2 = rng.integers(0, 20, (10, 5))
    ref = sum(len(set(a) & set(b)) for a, b in zip(I1.tolist(), I2.tolist()))
    assert faiss.eval_intersection(I1, I2) == ref


@pytest.mark.parametrize("three_d", [False, True])
def test_quantize_LUT_and_bias(three_d):
    rng = np.random.default_rng(6)
    M, ksub, nprobe = 20, 16, 10
    LUT = rng.random((nprobe, M, ksub) if three_d else (M, ksub)).astype(
        "float32")
    bias = (rng.random(nprobe) * 10).astype("float32")
    LUTq = np.zeros(LUT.shape, "uint8")
    biasq = np.zeros(nprobe, "uint16")
    a, b = np.zeros(1, "float32"), np.zeros(1, "float32")
    faiss.quantize_LUT_and_bias(nprobe, M, ksub, three_d, LUT, bias, LUTq, M,
                                biasq, a, b)
    codes = rng.integers(0, ksub, (nprobe, 50, M))
    for p in range(nprobe):
        T = LUT[p] if three_d else LUT
        Tq = LUTq[p] if three_d else LUTq
        ref = bias[p] + T[np.arange(M), codes[p]].sum(1)
        s = biasq[p] + Tq[np.arange(M), codes[p]].astype(np.int64).sum(1)
        assert s.max() <= 65535
        new = s / a[0] + b[0]
        # each entry is rounded to 1/a: the error is at most (M + 1) / 2a
        assert np.abs(new - ref).max() <= (M + 1) / (2 * a[0]) + 1e-4
    flat = np.full((M, ksub), 5.0, "float32")
    LUTq = np.zeros(flat.shape, "uint8")
    faiss.quantize_LUT_and_bias(nprobe, M, ksub, False, flat, None, LUTq, M,
                                None, a, b)
    assert a[0] == 0 and (LUTq == 0).all() and b[0] == 5.0 * M
