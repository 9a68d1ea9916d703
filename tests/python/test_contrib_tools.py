"""contrib modules written for vecdex (factory_tools, exhaustive_search,
big_batch_search, evaluation's checks, clustering), compared with faiss's
contrib and with brute force."""
import numpy as np
import pytest

import vecdex
from vecdex.contrib import (big_batch_search, clustering, evaluation,
                            exhaustive_search, factory_tools, ondisk)

faiss = pytest.importorskip("faiss")
from faiss.contrib import factory_tools as ref_ft  # noqa: E402


def data(nb=1000, nq=20, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((nb, d)).astype("float32"),
            rng.random((nq, d)).astype("float32"))


@pytest.mark.parametrize("key", ["Flat", "IVF32,Flat,Refine(PQ25x12)",
                                 "HNSW16", "HNSW32,Flat", "IVF8,SQ6",
                                 "PQ8x4fs", "IVF64,PQ10x8", "SQfp16",
                                 "PCA16,IVF8,SQ8"])
def test_get_code_size_vs_faiss(key):
    assert factory_tools.get_code_size(50, key) == \
        ref_ft.get_code_size(50, key)


def test_reverse_index_factory_roundtrip():
    for key in ["Flat", "IDMap,Flat", "IDMap2,Flat", "IVF16,Flat", "SQ4",
                "IVF16,SQ8", "PQ8x8", "IVF16,PQ4x8"]:
        ix = vecdex.index_factory(32, key)
        assert factory_tools.reverse_index_factory(ix) == key
    with pytest.raises(ValueError, match="cannot parse"):
        factory_tools.get_code_size(32, "Bogus12")


def test_knn_and_range_ground_truth():
    xb, xq = data()
    D, I = exhaustive_search.knn_ground_truth(
        xq, (xb[i:i + 128] for i in range(0, len(xb), 128)), 7)
    ref = ((xq[:, None] - xb[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(I, np.argsort(ref, axis=1)[:, :7])
    thr = float(np.sort(ref, axis=1)[:, 10].mean())
    lims, Dr, Ir = exhaustive_search.range_ground_truth(
        xq, (xb[i:i + 300] for i in range(0, len(xb), 300)), thr)
    for q in range(len(xq)):
        assert sorted(Ir[lims[q]:lims[q + 1]].tolist()) == \
            np.nonzero(ref[q] < thr)[0].tolist()
    index = vecdex.IndexFlatL2(xb.shape[1])
    index.add(xb)
    L0, D0, I0 = index.range_search(xq, thr)
    evaluation.check_ref_range_results(L0, D0, I0, lims, Dr, Ir)
    cap = int(lims[-1]) // 2
    r, L, D2, I2 = exhaustive_search.range_search_max_results(
        index, exhaustive_search.exponential_query_iterator(xq, 4), thr,
        max_results=cap)
    assert L[-1] <= cap and r < thr
    L1, D1, I1 = index.range_search(xq, r)
    evaluation.check_ref_range_results(L1, D1, I1, L, D2, I2)


def test_check_ref_knn_with_draws():
    D = np.array([[0.0, 1.0, 1.0, 2.0]], "float32")
    I = np.array([[5, 6, 7, 8]])
    evaluation.check_ref_knn_with_draws(D, I, D, np.array([[5, 7, 6, 8]]))
    with pytest.raises(AssertionError):
        evaluation.check_ref_knn_with_draws(D, I, D,
                                            np.array([[6, 5, 7, 8]]))
    with pytest.raises(AssertionError):
        evaluation.check_ref_knn_with_draws(D, I, D + 1, I)


def test_big_batch_search_and_clustering():
    xb, xq = data(2000, 50)
    ix = vecdex.index_factory(16, "IVF16,Flat")
    ix.train(xb)
    ix.add(xb)
    ix.nprobe = 4
    D0, I0 = ix.search(xq, 5)
    D, I = big_batch_search.big_batch_search(ix, xq, 5, bs=7)
    np.testing.assert_array_equal(I, I0)
    c = clustering.kmeans(10, clustering.DatasetAssign(xb), niter=5)
    assert c.shape == (10, 16)
    _, a = vecdex.knn(xb, c, 1)
    assert 1.0 <= clustering.imbalance_factor(10, a.ravel()) < 3
    # merge_ondisk itself is checked against faiss in test_mmap.py
    assert callable(ondisk.merge_ondisk)


def test_operating_points():
    op = evaluation.OperatingPoints()
    op.add_operating_point("A", 0.5, 1.0)
    op.add_operating_point("B", 0.9, 1.0)
    op.add_operating_point("C", 0.95, 3.0)
    op.add_operating_point("D", 0.7, 4.0)
    assert [k for k, _, _ in op.operating_points] == ["B", "C"]


def test_evaluation_return_orders_match_faiss():
    """sort_range_res_2 returns (I, D) as faiss's does; the other range
    helpers give faiss's values on the same inputs."""
    from faiss.contrib import evaluation as ref_ev
    xb, xq = data(500, 15, 8, seed=3)
    index = vecdex.IndexFlatL2(8)
    index.add(xb)
    ref = ((xq[:, None] - xb[None]) ** 2).sum(-1)
    thr = float(np.sort(ref, axis=1)[:, 20].mean())
    lims, D, I = index.range_search(xq, thr)
    I1, D1 = evaluation.sort_range_res_2(lims, D, I)
    I2, D2 = ref_ev.sort_range_res_2(lims, D, I)
    np.testing.assert_array_equal(D1, D2)
    assert I1.dtype == I.dtype and D1.dtype == D.dtype
    for q in range(len(xq)):
        a, b = lims[q], lims[q + 1]
        assert np.all(np.diff(D1[a:b]) >= 0)
        assert sorted(I1[a:b].tolist()) == sorted(I2[a:b].tolist())
    np.testing.assert_array_equal(evaluation.sort_range_res_1(lims, I),
                                  ref_ev.sort_range_res_1(lims, I))
    # a noisier result set: drop every third result
    keep = np.ones(len(I), bool)
    keep[::3] = False
    cnt = np.array([keep[lims[q]:lims[q + 1]].sum() for q in range(len(xq))])
    lims_n = np.concatenate([[0], np.cumsum(cnt)]).astype(lims.dtype)
    for mode in ("overall", "average"):
        assert evaluation.range_PR(lims, I, lims_n, I[keep], mode) == \
            pytest.approx(ref_ev.range_PR(lims, I, lims_n, I[keep], mode))
        th = np.array([thr / 4, thr / 2, thr])
        P1, R1 = evaluation.range_PR_multiple_thresholds(
            lims, I, lims_n, D[keep], I[keep], th, mode=mode)
        P2, R2 = ref_ev.range_PR_multiple_thresholds(
            lims, I, lims_n, D[keep], I[keep], th, mode=mode)
        np.testing.assert_allclose(P1, P2)
        np.testing.assert_allclose(R1, R2)
    l1, d1, i1 = evaluation.filter_range_results(lims, D, I, thr / 2)
    l2, d2, i2 = ref_ev.filter_range_results(lims, D, I, thr / 2)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(i1, i2)
