"""FAISS's conversion constructors IndexPQFastScan(IndexPQ) and
IndexIVFPQFastScan(IndexIVFPQ), and IndexIVFPQ.by_residual settable:
the converted index holds the same codes, so its results match the
source's (up to the fast scan's 8-bit tables) and faiss's own
conversion."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")


def data():
    rng = np.random.default_rng(7)
    return (rng.random((3000, 32)).astype("float32"),
            rng.random((60, 32)).astype("float32"))


def recall(I, ref):
    return np.mean([len(set(a) & set(b)) / len(b)
                    for a, b in zip(I.tolist(), ref.tolist())])


@pytest.mark.parametrize("mt", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_pq_fastscan_from_pq(mt):
    xb, xq = data()
    ix = vecdex.IndexPQ(32, 8, 4, mt)
    ix.train(xb)
    ix.add(xb)
    D, I = ix.search(xq, 10)
    fs = vecdex.IndexPQFastScan(ix)
    assert fs.ntotal == ix.ntotal and fs.is_trained
    D2, I2 = fs.search(xq, 10)
    assert recall(I2, I) > 0.97
    assert np.abs(D2 - D).mean() < 0.01 * np.abs(D).mean()
    np.testing.assert_array_equal(fs.reconstruct_n(0, 100),
                                  ix.reconstruct_n(0, 100))
    with pytest.raises(vecdex.InvalidArgumentError, match="nbits=4"):
        vecdex.IndexPQFastScan(vecdex.IndexPQ(32, 8, 8))
    with pytest.raises(vecdex.InvalidArgumentError, match="IndexPQ"):
        vecdex.IndexPQFastScan(vecdex.IndexFlatL2(32))


@pytest.mark.parametrize("by_residual", [True, False])
@pytest.mark.parametrize("mt", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_ivfpq_fastscan_from_ivfpq(mt, by_residual):
    xb, xq = data()
    ix = vecdex.index_factory(32, "IVF16,PQ8x4np", mt)
    ix.by_residual = by_residual
    ix.train(xb)
    ix.add(xb)
    ix.nprobe = 4
    assert ix.by_residual == by_residual
    D, I = ix.search(xq, 10)
    fs = vecdex.IndexIVFPQFastScan(ix)
    assert fs.ntotal == ix.ntotal and fs.nprobe == 4
    assert fs.by_residual == by_residual
    D2, I2 = fs.search(xq, 10)
    assert recall(I2, I) > 0.97
    # the source is untouched and still usable; so is its quantizer
    D3, I3 = ix.search(xq, 10)
    np.testing.assert_array_equal(I3, I)
    # faiss's own IndexIVFPQ searched the same way agrees on recall
    rf = faiss.index_factory(32, "IVF16,PQ8x4np", mt)
    rf.by_residual = by_residual
    rf.train(xb)
    rf.add(xb)
    rf.nprobe = 4
    gt = vecdex.knn(xq, xb, 10, mt)[1]
    r_ours = recall(I2, gt)
    r_ref = recall(faiss.IndexIVFPQFastScan(rf).search(xq, 10)[1], gt)
    assert r_ours > r_ref - 0.08, (r_ours, r_ref)


def test_ivfpq_by_residual_changes_search():
    xb, xq = data()
    ix = vecdex.index_factory(32, "IVF16,PQ8np")
    ix.train(xb)
    ix.add(xb)
    ix.nprobe = 16
    _, I1 = ix.search(xq, 5)
    ix.by_residual = False  # the residual codes are now read as vectors
    _, I2 = ix.search(xq, 5)
    ix.by_residual = True
    _, I3 = ix.search(xq, 5)
    np.testing.assert_array_equal(I1, I3)
    assert not np.array_equal(I1, I2)


def test_implem_settable_and_results_unchanged():
    xb, xq = data()
    ix = vecdex.IndexPQ(32, 8, 4)
    ix.train(xb)
    ix.add(xb)
    fs = vecdex.IndexPQFastScan(ix)
    D0, I0 = fs.search(xq, 10)
    for implem in (1, 2, 12, 15, 0):
        fs.implem = implem
        assert fs.implem == implem
        D, I = fs.search(xq, 10)
        np.testing.assert_array_equal(I, I0)
    for bad in (-1, 7, 16):
        with pytest.raises(ValueError, match="implem"):
            fs.implem = bad
    assert fs.implem == 0
