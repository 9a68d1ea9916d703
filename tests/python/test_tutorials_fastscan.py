"""The flows of tutorials 7-PQFastScan.py, 8-PQFastScanRefine.py and
9-RefineComparison.py (seed 000), run with `import vecdex as faiss` and the
scripts' own lines, sizes reduced for test time; each checks its results
against brute force (and 9 its own assertion, fp16 refinement beating SQ8)."""
import numpy as np

import vecdex as faiss
from vecdex.contrib import datasets
from vecdex.contrib.evaluation import knn_intersection_measure


def tutorial_data(nb=20000, nq=1000, d=64):
    np.random.seed(1234)
    xb = np.random.random((nb, d)).astype('float32')
    xb[:, 0] += np.arange(nb) / 1000.
    xq = np.random.random((nq, d)).astype('float32')
    xq[:, 0] += np.arange(nq) / 1000.
    return xb, xq


def brute(xq, xb, k):
    gt = faiss.IndexFlatL2(xb.shape[1])
    gt.add(xb)
    return gt.search(xq, k)


def recall(I, gt):
    k = gt.shape[1]
    return np.mean([len(set(I[i]) & set(gt[i])) / k for i in range(len(I))])


def test_7_pq_fast_scan():
    xb, xq = tutorial_data()
    d = 64
    m = 8
    k = 4
    n_bit = 4
    bbs = 32
    index = faiss.IndexPQFastScan(d, m, n_bit, faiss.METRIC_L2, bbs)
    assert not index.is_trained
    index.train(xb)
    assert index.is_trained
    index.add(xb)
    D, I = index.search(xb[:5], k)
    # each of the first five vectors finds itself first or at ADC distance
    # no larger than its own code's
    assert I.shape == (5, k) and (I >= 0).all()
    assert (np.diff(D, axis=1) >= 0).all()
    index.nprobe = 10
    D, I = index.search(xq, k)
    assert I.shape == (len(xq), k)
    _, gt = brute(xq, xb, k)
    # the float tables of the same codes give the same recall
    ref = faiss.IndexPQ(d, m, n_bit)
    ref.pq.centroids = index.pq.centroids
    ref.add(xb)
    _, Ir = ref.search(xq, k)
    assert abs(recall(I, gt) - recall(Ir, gt)) <= 0.02
    assert recall(I, gt) > 0.05       # 8 x 4 bits: a very coarse code


def test_8_pq_fast_scan_refine():
    xb, xq = tutorial_data()
    d = 64
    m = 8
    k = 4
    n_bit = 4
    index = faiss.IndexPQFastScan(d, m, n_bit, faiss.METRIC_L2)
    index_refine = faiss.IndexRefineFlat(index)
    assert not index_refine.is_trained
    index_refine.train(xb)
    assert index_refine.is_trained
    index_refine.add(xb)
    params = faiss.IndexRefineSearchParameters(k_factor=3)
    D, I = index_refine.search(xq[:5], 10, params=params)
    Dg, Ig = brute(xq[:5], xb, 10)
    # refined distances are exact: each equals the brute-force distance of
    # the id it names
    exact = ((xq[:5, None, :] - xb[I]) ** 2).sum(-1)
    np.testing.assert_allclose(D, exact, rtol=1e-4, atol=1e-3)
    index.nprobe = 10
    D2, I2 = index.search(xq[:5], k)
    assert I2.shape == (5, k)
    # refinement does not lose to the plain fast scan
    Dall, Iall = index_refine.search(xq, 10, params=params)
    _, Iplain = index.search(xq, 10)
    _, gt = brute(xq, xb, 10)
    assert recall(Iall, gt) > recall(Iplain, gt) + 0.05


def test_9_refine_comparison():
    ds = datasets.SyntheticDataset(64, 5000, 20000, 500)
    d = 64
    index_fp16 = faiss.index_factory(d, 'PQ32x4fs,Refine(SQfp16)')
    index_fp16.train(ds.get_train())
    index_fp16.add(ds.get_database())
    index_sq8 = faiss.index_factory(d, 'PQ32x4fs,Refine(SQ8)')
    index_sq8.train(ds.get_train())
    index_sq8.add(ds.get_database())
    k_factor = 3.0
    params = faiss.IndexRefineSearchParameters(k_factor=k_factor)
    D_fp16, I_fp16 = index_fp16.search(ds.get_queries(), 100, params=params)
    D_sq8, I_sq8 = index_sq8.search(ds.get_queries(), 100, params=params)
    KIM_fp16 = knn_intersection_measure(I_fp16, ds.get_groundtruth())
    KIM_sq8 = knn_intersection_measure(I_sq8, ds.get_groundtruth())
    assert (KIM_fp16 > KIM_sq8)
    # against brute force on the same data
    _, gt = brute(ds.get_queries(), ds.get_database(), 100)
    assert recall(I_fp16, gt) > 0.8 and recall(I_sq8, gt) > 0.7
