"""The extra metrics of pairwise_distances / knn, compared with faiss and
with formulas written out here."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")

METRICS = ["METRIC_L1", "METRIC_Linf", "METRIC_Lp", "METRIC_Canberra",
           "METRIC_BrayCurtis", "METRIC_JensenShannon", "METRIC_Jaccard",
           "METRIC_NaNEuclidean", "METRIC_GOWER"]


@pytest.mark.parametrize("name", METRICS)
def test_pairwise_vs_faiss(name):
    assert getattr(vecdex, name) == getattr(faiss, name)
    rng = np.random.default_rng(5)
    x = rng.random((7, 19)).astype("float32")
    y = rng.random((11, 19)).astype("float32")
    if name == "METRIC_NaNEuclidean":
        x[0, 3] = y[2, 5] = np.nan
    mt = getattr(vecdex, name)
    arg = 1.5 if name == "METRIC_Lp" else 0
    ours = vecdex.pairwise_distances(x, y, mt, arg)
    ref = faiss.pairwise_distances(x, y, mt, arg)
    np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=1e-6)
    if name != "METRIC_GOWER":  # faiss 1.15's knn lacks Gower
        D, I = vecdex.knn(x, y, 4, mt, arg)
        Dr, Ir = faiss.knn(x, y, 4, mt, arg)
        np.testing.assert_allclose(D, Dr, rtol=2e-5, atol=1e-6)
        np.testing.assert_array_equal(I, Ir)


def test_formulas_by_hand():
    x = np.array([[1, 2, 0]], "float32")
    y = np.array([[3, 0, 0]], "float32")
    pd = vecdex.pairwise_distances
    assert pd(x, y, vecdex.METRIC_L1)[0, 0] == 4
    assert pd(x, y, vecdex.METRIC_Linf)[0, 0] == 2
    assert pd(x, y, vecdex.METRIC_Lp, 3)[0, 0] == 16
    assert np.isclose(pd(x, y, vecdex.METRIC_Jaccard)[0, 0], 1 / 5)
    assert np.isnan(pd(x, y, vecdex.METRIC_Canberra)[0, 0])  # 0/0, as faiss
    with pytest.raises(ValueError, match="unknown metric"):
        pd(x, y, 99)
    with pytest.raises(ValueError, match="p = metric_arg"):
        pd(x, y, vecdex.METRIC_Lp, 0)
    with pytest.raises(ValueError):
        pd(x, np.zeros((2, 4), "float32"))
