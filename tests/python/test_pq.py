"""ProductQuantizer, IndexPQ and IndexIVFPQ against FAISS: codes
byte-identical with the same centroids, IndexPQ / IndexIVFPQ results equal
with the same trained state, FAISS's tutorial 3-IVFPQ.py flow, file
compatibility in both directions, and bad input."""
import numpy as np
import pytest

import vecdex

METRICS = [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT]


def data(rng, n, d):
    return rng.random((n, d), dtype=np.float32)


def copy_pq(faiss, src_pq, dst_pq):
    """The test helper: faiss's trained centroids into vecdex's."""
    dst_pq.centroids = faiss.vector_to_array(src_pq.centroids)


@pytest.mark.parametrize("nbits", list(range(1, 17)))
def test_codes_identical_to_faiss(faiss_ref, rng, nbits):
    d, M = 12, (6 if nbits <= 12 else 2)
    n = max(300, 2 << nbits) if nbits < 14 else (1 << nbits) + 10
    xt = data(rng, n, d)
    xb = data(rng, 500, d)
    fp = faiss_ref.ProductQuantizer(d, M, nbits)
    fp.cp.niter = 2
    fp.verbose = False
    fp.train(xt)
    vp = vecdex.ProductQuantizer(d, M, nbits)
    copy_pq(faiss_ref, fp, vp)
    assert vp.code_size == fp.code_size and vp.ksub == fp.ksub
    assert vp.M == M and vp.nbits == nbits and vp.dsub == d // M
    a, b = fp.compute_codes(xb), vp.compute_codes(xb)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fp.decode(a), vp.decode(b))


def test_pq_train_and_centroids(rng):
    d, M = 16, 4
    pq = vecdex.ProductQuantizer(d, M, 6)
    assert pq.centroids.size == 0
    with pytest.raises(RuntimeError):
        pq.compute_codes(data(rng, 3, d))
    xt = data(rng, 3000, d)
    pq.train(xt)
    c = pq.centroids.reshape(M, 64, d // M)
    codes = pq.compute_codes(xt[:100])
    # each index is the nearest centroid of its sub-vector
    for m in range(M):
        sub = xt[:100, m * 4:(m + 1) * 4]
        ref = ((sub[:, None, :] - c[m][None]) ** 2).sum(-1).argmin(1)
        dec = pq.decode(codes)[:, m * 4:(m + 1) * 4]
        np.testing.assert_array_equal(dec, c[m][ref])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("nbits", [8, 4])
def test_index_pq_equals_faiss(faiss_ref, rng, metric, nbits):
    d, M, k = 32, 8, 10
    xt, xb, xq = data(rng, 4000, d), data(rng, 3000, d), data(rng, 50, d)
    fi = faiss_ref.IndexPQ(d, M, nbits, metric)
    fi.pq.cp.niter = 5
    fi.train(xt)
    fi.add(xb)
    vi = vecdex.IndexPQ(d, M, nbits, metric)
    copy_pq(faiss_ref, fi.pq, vi.pq)
    assert vi.is_trained
    vi.add(xb)
    Df, If = fi.search(xq, k)
    Dv, Iv = vi.search(xq, k)
    np.testing.assert_allclose(Dv, Df, rtol=1e-5, atol=1e-5)
    # equal up to ties
    assert (Iv == If).mean() > 0.98
    # reconstruct equals faiss's
    np.testing.assert_array_equal(vi.reconstruct_n(0, 20), fi.reconstruct_n(0, 20))
    # threads: one query, many threads
    D1, I1 = vi.search(xq[:1], k)
    np.testing.assert_allclose(D1, Dv[:1], rtol=1e-6)


def test_index_pq_selector_remove(rng):
    d = 16
    xt = data(rng, 2000, d)
    ix = vecdex.IndexPQ(d, 4, 8)
    ix.train(xt)
    ix.add(xt[:1000])
    sel = vecdex.IDSelectorRange(100, 200)
    D, I = ix.search(xt[:5], 5, params=vecdex.SearchParameters(sel=sel))
    assert ((I >= 100) & (I < 200)).all()
    rec = ix.reconstruct(500)
    assert ix.remove_ids(vecdex.IDSelectorRange(0, 100)) == 100
    assert ix.ntotal == 900
    np.testing.assert_array_equal(ix.reconstruct(400), rec)


def test_index_pq_files(faiss_ref, rng, tmp_path):
    d = 16
    xt = data(rng, 2000, d)
    fi = faiss_ref.IndexPQ(d, 4, 5)
    fi.pq.cp.niter = 3
    fi.train(xt)
    fi.add(xt[:300])
    p = str(tmp_path / "f.index")
    faiss_ref.write_index(fi, p)
    vi = vecdex.read_index(p)
    assert type(vi) is vecdex.IndexPQ and vi.ntotal == 300
    q = xt[:10]
    Df, If = fi.search(q, 5)
    Dv, Iv = vi.search(q, 5)
    np.testing.assert_allclose(Dv, Df, rtol=1e-5)
    p2 = str(tmp_path / "v.index")
    vecdex.write_index(vi, p2)
    assert open(p, "rb").read() == open(p2, "rb").read()
    fi2 = faiss_ref.read_index(p2)
    np.testing.assert_array_equal(fi2.search(q, 5)[1], If)
    # untrained index round trip
    vu = vecdex.IndexPQ(d, 4, 8)
    vecdex.write_index(vu, p2)
    fu = faiss_ref.read_index(p2)
    assert not fu.is_trained and fu.pq.M == 4
    assert not vecdex.read_index(p2).is_trained


@pytest.mark.parametrize("metric", METRICS)
def test_ivfpq_equals_faiss(faiss_ref, rng, metric, tmp_path):
    d, nlist, M, k = 32, 16, 8, 10
    xt, xb, xq = data(rng, 5000, d), data(rng, 4000, d), data(rng, 40, d)
    fq = (faiss_ref.IndexFlatL2(d) if metric == vecdex.METRIC_L2
          else faiss_ref.IndexFlatIP(d))
    fi = faiss_ref.IndexIVFPQ(fq, d, nlist, M, 8, metric)
    fi.cp.niter = 5
    fi.pq.cp.niter = 5
    fi.train(xt)
    fi.add(xb)
    fi.nprobe = 4
    p = str(tmp_path / "ivfpq.index")
    faiss_ref.write_index(fi, p)
    vi = vecdex.read_index(p)
    assert type(vi) is vecdex.IndexIVFPQ and isinstance(vi, vecdex.IndexIVF)
    assert vi.nlist == nlist and vi.nprobe == 4 and vi.pq.M == M
    Df, If = fi.search(xq, k)
    Dv, Iv = vi.search(xq, k)
    np.testing.assert_allclose(Dv, Df, rtol=1e-3, atol=1e-3)
    assert (Iv == If).mean() > 0.95
    p2 = str(tmp_path / "v.index")
    vecdex.write_index(vi, p2)
    assert open(p, "rb").read() == open(p2, "rb").read()
    # vecdex-built, read by faiss
    vq = vecdex.IndexFlatL2(d) if metric == vecdex.METRIC_L2 else vecdex.IndexFlatIP(d)
    v2 = vecdex.IndexIVFPQ(vq, d, nlist, M, 8, metric)
    v2.train(xt)
    v2.add(xb)
    v2.nprobe = 4
    vecdex.write_index(v2, p2)
    f2 = faiss_ref.read_index(p2)
    Dv2, Iv2 = v2.search(xq, k)
    Df2, If2 = f2.search(xq, k)
    np.testing.assert_allclose(Dv2, Df2, rtol=1e-3, atol=1e-3)
    assert (Iv2 == If2).mean() > 0.95


def test_tutorial_3_ivfpq(faiss_ref):
    """FAISS's tutorial/python/3-IVFPQ.py (nb cut to 20000)."""
    def run(faiss):
        d = 64
        nb = 20000
        nq = 1000
        np.random.seed(1234)
        xb = np.random.random((nb, d)).astype('float32')
        xb[:, 0] += np.arange(nb) / 1000.
        xq = np.random.random((nq, d)).astype('float32')
        xq[:, 0] += np.arange(nq) / 1000.
        nlist = 100
        m = 8
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8)
        index.train(xb)
        index.add(xb)
        D, I = index.search(xb[:5], 4)
        index.nprobe = 10
        D, I = index.search(xq, 10)
        return xb, xq, I
    xb, xq, Iv = run(vecdex)
    _, _, If = run(faiss_ref)
    gt = faiss_ref.IndexFlatL2(64)
    gt.add(xb)
    _, G = gt.search(xq, 1)
    rv = (Iv == G).any(1).mean()
    rf = (If == G).any(1).mean()
    assert rv >= rf - 0.02, (rv, rf)


def test_bad_inputs(rng):
    with pytest.raises(ValueError):
        vecdex.ProductQuantizer(10, 3, 8)
    with pytest.raises(ValueError):
        vecdex.IndexPQ(10, 3, 8)
    with pytest.raises(ValueError):
        vecdex.IndexPQ(8, 2, 0)
    with pytest.raises(ValueError):
        vecdex.IndexPQ(8, 2, 17)
    with pytest.raises(ValueError):
        vecdex.IndexIVFPQ(vecdex.IndexFlatL2(10), 10, 4, 3, 8)
    ix = vecdex.IndexPQ(8, 2, 8)
    x = data(rng, 5, 8)
    with pytest.raises(RuntimeError):
        ix.add(x)
    with pytest.raises(RuntimeError):
        ix.search(x, 1)
    iv = vecdex.IndexIVFPQ(vecdex.IndexFlatL2(8), 8, 4, 2, 8)
    with pytest.raises(RuntimeError):
        iv.add(x)
    with pytest.raises(ValueError):
        vecdex.ProductQuantizer(8, 2, 8).decode(np.zeros((3, 5), np.uint8))
