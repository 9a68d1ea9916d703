"""FAISS's DistanceComputer (index.get_distance_computer()), ProductQuantizer
lookup tables, IndexRefine.range_search and faiss.Clustering, checked
against FAISS itself on identical inputs (deterministically trained SQ8,
shared PQ centroids) and against numpy brute force."""
import numpy as np
import pytest

import vecdex

d = 32


def data(seed=0, nb=1000, nq=20):
    rs = np.random.RandomState(seed)
    return (rs.rand(nb, d).astype("float32"), rs.rand(nq, d).astype("float32"))


@pytest.mark.parametrize("key,metric", [
    ("PQ8np", vecdex.METRIC_L2), ("SQ8", vecdex.METRIC_L2),
    ("SQ6", vecdex.METRIC_INNER_PRODUCT), ("PCA20,SQ8", vecdex.METRIC_L2),
    ("RQ3x4", vecdex.METRIC_L2), ("RQ3x4_Nqint8", vecdex.METRIC_INNER_PRODUCT),
    ("PQ4x4fs", vecdex.METRIC_L2), ("HNSW16", vecdex.METRIC_L2)])
def test_dc_matches_search(key, metric):
    xb, xq = data()
    index = vecdex.index_factory(d, key, metric)
    index.train(xb)
    index.add(xb)
    D, I = index.search(xq, 10)
    dc = index.get_distance_computer()
    assert dc.this.own()
    for q in range(len(xq)):
        dc.set_query(xq[q])
        got = np.array([dc(int(i)) for i in I[q]])
        if "fs" in key:
            # fast-scan search uses quantized LUTs; the computer the float
            # distance to the decoded vector (as FAISS's)
            R = index.reconstruct_batch(I[q])
            ref = ((R.astype(np.float64) - xq[q]) ** 2).sum(1)
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
            # and the quantized search is close to it
            np.testing.assert_allclose(D[q], ref, rtol=0.1, atol=0.5)
        else:
            np.testing.assert_allclose(got, D[q], rtol=1e-5, atol=1e-5)
    # symmetric_dis: between decoded vectors
    R = index.reconstruct_batch(np.array([3, 7]))
    if metric == vecdex.METRIC_L2:
        ref = ((R[0].astype(np.float64) - R[1]) ** 2).sum()
    else:
        ref = np.dot(R[0].astype(np.float64), R[1])
    assert abs(dc.symmetric_dis(3, 7) - ref) < 1e-4 * (1 + abs(ref))
    # the query survives symmetric_dis
    assert dc(int(I[-1, 0])) == pytest.approx(dc(int(I[-1, 0])))


def test_dc_bad_input():
    xb, xq = data()
    index = vecdex.IndexFlatL2(d)
    index.add(xb)
    dc = index.get_distance_computer()
    with pytest.raises(RuntimeError):
        dc(0)
    with pytest.raises(ValueError):
        dc.set_query(xq[0, :5])
    dc.set_query(xq[0])
    with pytest.raises(ValueError):
        dc(len(xb))
    with pytest.raises(ValueError):
        dc(-1)
    assert dc(5) == pytest.approx(float(((xq[0] - xb[5]) ** 2).sum()), rel=1e-5)
    assert isinstance(index, vecdex.IndexFlatCodes)
    assert isinstance(vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_8bit),
                      vecdex.IndexFlatCodes)
    assert not isinstance(vecdex.IndexHNSWFlat(d, 8), vecdex.IndexFlatCodes)


def test_dc_same_as_faiss_sq8(faiss_ref):
    # SQ8 trains deterministically (per-dimension min / max): same codes
    xb, xq = data()
    a = vecdex.index_factory(d, "SQ8")
    b = faiss_ref.index_factory(d, "SQ8")
    for ix in a, b:
        ix.train(xb)
        ix.add(xb)
    da, db = a.get_distance_computer(), b.get_distance_computer()
    for q in range(5):
        da.set_query(xq[q])
        db.set_query(faiss_ref.swig_ptr(xq[q]))
        for i in range(0, 1000, 97):
            assert da(i) == pytest.approx(db(i), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("dsub,nbits", [(2, 8), (5, 8), (4, 4)])
def test_pq_tables_same_as_faiss(faiss_ref, dsub, nbits):
    D = dsub * 4
    rs = np.random.RandomState(1)
    xt = rs.randn(max(1000, 50 << nbits), D).astype("float32")
    pq = vecdex.ProductQuantizer(D, 4, nbits)
    pq.cp.niter = 4
    pq.train(xt)
    ref = faiss_ref.ProductQuantizer(D, 4, nbits)
    faiss_ref.copy_array_to_vector(np.asarray(pq.centroids), ref.centroids)
    x = rs.randn(30, D).astype("float32")
    sp = faiss_ref.swig_ptr
    for ours, theirs in ((pq.compute_distance_tables, ref.compute_distance_tables),
                         (pq.compute_inner_prod_tables,
                          ref.compute_inner_prod_tables)):
        t1 = np.zeros((30, 4, pq.ksub), "float32")
        t2 = np.zeros((30, 4, pq.ksub), "float32")
        ours(30, x, t1)
        theirs(30, sp(x), sp(t2))
        np.testing.assert_allclose(t1, t2, rtol=1e-5, atol=1e-4)
    ref.compute_sdc_table()
    pq.compute_sdc_table()
    np.testing.assert_allclose(np.asarray(pq.sdc_table),
                               faiss_ref.vector_to_array(ref.sdc_table),
                               rtol=1e-5, atol=1e-4)
    ref.sync_transposed_centroids()
    pq.sync_transposed_centroids()
    np.testing.assert_allclose(
        np.asarray(pq.transposed_centroids),
        faiss_ref.vector_to_array(ref.transposed_centroids))
    np.testing.assert_allclose(
        np.asarray(pq.centroids_sq_lengths),
        faiss_ref.vector_to_array(ref.centroids_sq_lengths), rtol=1e-5)
    codes = np.empty((30, pq.code_size), "uint8")
    pq.compute_codes_with_assign_index(x, codes, 30)
    assert np.array_equal(codes, pq.compute_codes(x))
    with pytest.raises(ValueError):
        pq.compute_distance_tables(30, x, np.zeros(5, "float32"))


@pytest.mark.parametrize("metric,radius", [(vecdex.METRIC_L2, 4.0),
                                           (vecdex.METRIC_INNER_PRODUCT, 9.0)])
def test_refine_range_search_same_as_faiss(faiss_ref, metric, radius):
    xb, xq = data(nq=50)
    out = []
    for lib in vecdex, faiss_ref:
        base = lib.index_factory(d, "SQ8", metric)
        base.train(xb)
        base.add(xb)
        flat = lib.IndexFlat(d, metric)
        flat.add(xb)
        r = lib.IndexRefine(base, flat)
        r.k_factor = 1.5 if metric == vecdex.METRIC_L2 else 1.0
        out.append(r.range_search(xq, radius))
    (l1, D1, I1), (l2, D2, I2) = out
    assert 0 < len(I2) < len(xq) * len(xb)
    same = 0
    for q in range(len(xq)):
        a = dict(zip(I1[l1[q]:l1[q + 1]], D1[l1[q]:l1[q + 1]]))
        b = dict(zip(I2[l2[q]:l2[q + 1]], D2[l2[q]:l2[q + 1]]))
        same += len(set(a) & set(b))
        for i in set(a) & set(b):
            assert a[i] == pytest.approx(b[i], rel=1e-5, abs=1e-5)
        for i, v in a.items():  # exact distances on the right side
            e = (np.dot(xq[q], xb[i]) if metric == vecdex.METRIC_INNER_PRODUCT
                 else ((xq[q] - xb[i]) ** 2).sum())
            assert v == pytest.approx(e, rel=1e-5, abs=1e-5)
            assert v > radius if metric == vecdex.METRIC_INNER_PRODUCT \
                else v < radius
    assert same >= 0.99 * len(I2)


def test_clustering_vs_faiss(faiss_ref):
    rs = np.random.RandomState(123)
    x = rs.uniform(size=(2000, d)).astype("float32")
    objs = []
    for lib in vecdex, faiss_ref:
        clus = lib.Clustering(d, 20)
        clus.niter = 10
        index = lib.IndexFlatL2(d)
        clus.train(x, index)
        assert index.ntotal == 20
        cent = lib.vector_to_array(clus.centroids).reshape(20, d)
        # the index holds the centroids; the objective is the assignment's
        assert np.allclose(index.reconstruct_n(0, 20), cent)
        objs.append(clus.iteration_stats.at(clus.iteration_stats.size() - 1).obj)
    assert abs(objs[0] - objs[1]) < 0.03 * objs[1]


def test_clustering_details():
    rs = np.random.RandomState(5)
    x = rs.uniform(size=(600, 8)).astype("float32")
    # niter = 0: the centroids are training points
    clus = vecdex.Clustering(8, 6)
    clus.niter = 0
    index = vecdex.IndexFlatL2(8)
    clus.train(x, index)
    c = clus.centroids.reshape(6, 8)
    assert all((np.abs(x - ci).sum(1) == 0).any() for ci in c)
    assert clus.iteration_stats.size() == 0
    # obj is what a brute-force assignment to the previous centroids gives
    clus = vecdex.Clustering(8, 6)
    clus.niter = 1
    init = x[:6].copy()
    clus.centroids = init.reshape(-1).copy()
    clus.train(x, vecdex.IndexFlatL2(8))
    dis = ((x[:, None, :].astype(np.float64) - init[None]) ** 2).sum(2)
    assert clus.iteration_stats.at(0).obj == pytest.approx(dis.min(1).sum(),
                                                           rel=1e-5)
    lab = dis.argmin(1)
    ref = np.array([x[lab == j].mean(0) for j in range(6)])
    np.testing.assert_allclose(clus.centroids.reshape(6, 8), ref, rtol=1e-5)
    # weights: a weighted mean
    w = rs.uniform(size=600).astype("float32")
    clus = vecdex.Clustering(8, 6)
    clus.niter = 1
    clus.centroids = init.reshape(-1).copy()
    clus.train(x, vecdex.IndexFlatL2(8), weights=w)
    ref = np.array([(x[lab == j] * w[lab == j, None]).sum(0) / w[lab == j].sum()
                    for j in range(6)])
    np.testing.assert_allclose(clus.centroids.reshape(6, 8), ref, rtol=1e-4)
    # early stop: converges well before 1000 iterations
    clus = vecdex.Clustering(8, 6)
    clus.niter = 1000
    clus.train(x, vecdex.IndexFlatL2(8))
    assert 1 < clus.iteration_stats.size() < 1000
    # bad input
    with pytest.raises(ValueError):
        vecdex.Clustering(8, 6).train(x[:, :4], vecdex.IndexFlatL2(4))
    with pytest.raises(ValueError):
        vecdex.Clustering(8, 6).train(x[:3], vecdex.IndexFlatL2(8))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        vecdex.Clustering(8, 6).train(bad, vecdex.IndexFlatL2(8))
