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


@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_implem_settable_and_results_unchanged(metric):
    xb, xq = data()
    ix = vecdex.IndexPQ(32, 8, 4, metric)
    ix.train(xb)
    ix.add(xb)
    fs = vecdex.IndexPQFastScan(ix)
    D0, I0 = fs.search(xq, 10)
    # every implem but 2 runs the one SIMD scan: the same results
    for implem in (1, 12, 15, 0):
        fs.implem = implem
        assert fs.implem == implem
        D, I = fs.search(xq, 10)
        np.testing.assert_array_equal(I, I0)
    # implem 2 is FAISS's float-table reference: exactly IndexPQ's results,
    # as FAISS's TestRounding checks (the SIMD scan may miss a near tie)
    fs.implem = 2
    Dp, Ip = ix.search(xq, 10)
    D2, I2 = fs.search(xq, 10)
    np.testing.assert_array_equal(I2, Ip)
    np.testing.assert_array_equal(D2, Dp)
    # ... and the scan's top-k distances are float-table distances too
    assert np.mean(I0 == Ip) > 0.9
    fs.implem = 0
    for bad in (-1, 7, 16):
        with pytest.raises(ValueError, match="implem"):
            fs.implem = bad
    assert fs.implem == 0


def test_k_below_10_is_the_prefix_of_k_10():
    # the scan re-scores at least 10 candidates: top-1 / top-5 are the
    # first columns of a k = 10 search (FAISS's TestImplem13 k=1 checks it)
    xb, xq = data()
    fs = vecdex.IndexPQFastScan(32, 16, 4)
    fs.train(xb)
    fs.add(xb)
    D10, I10 = fs.search(xq, 10)
    for k in (1, 5):
        D, I = fs.search(xq, k)
        np.testing.assert_array_equal(I, I10[:, :k])
        np.testing.assert_array_equal(D, D10[:, :k])


def test_codes_and_code_packer_match_indexpq():
    xb, xq = data()
    ix = vecdex.IndexPQ(32, 8, 4)
    ix.train(xb)
    ix.add(xb[:1000])
    fs = vecdex.IndexPQFastScan(ix, 64)
    flat = vecdex.vector_to_array(ix.codes).reshape(-1, ix.code_size)
    packed = vecdex.vector_to_array(fs.codes)
    assert packed.dtype == np.uint8
    assert packed.size == fs.ntotal2 * fs.M2 // 2 == 1024 * 4
    np.testing.assert_array_equal(packed, vecdex.AlignedTable_to_array(fs.codes))
    cp = fs.get_CodePacker()
    assert (cp.nvec, cp.code_size, cp.block_size) == (64, 4, 64 * 4)
    blocks = packed.reshape(-1, cp.block_size)
    for i in range(0, 1000, 7):
        np.testing.assert_array_equal(cp.unpack_1(blocks, i), flat[i])
    # pack_1 writes a code back in place; the padding lanes stay zero
    b2 = np.zeros_like(blocks)
    for i in range(1000):
        cp.pack_1(flat[i], i, b2)
    np.testing.assert_array_equal(b2, blocks)
    with pytest.raises(ValueError, match="offset"):
        cp.unpack_1(blocks, 1024)
    with pytest.raises(ValueError, match="shape"):
        cp.unpack_1(packed, 0)


def test_codes_equal_faiss_packed_codes():
    faiss = pytest.importorskip("faiss")
    xb, xq = data()
    ref = faiss.IndexPQ(32, 8, 4)
    ref.train(xb)
    ref.add(xb[:777])
    ours = vecdex.deserialize_index(faiss.serialize_index(ref))
    fr = faiss.IndexPQFastScan(ref)
    fo = vecdex.IndexPQFastScan(ours)
    np.testing.assert_array_equal(vecdex.vector_to_array(fo.codes),
                                  faiss.AlignedTable_to_array(fr.codes))
    # the same qbs kept and written: FAISS reads it back
    fo.qbs = 0x223
    assert fo.qbs == 0x223
    back = faiss.deserialize_index(vecdex.serialize_index(fo))
    assert back.qbs == 0x223
    with pytest.raises(ValueError, match="qbs"):
        fo.qbs = 0x5
