"""Vector transforms (PCAMatrix, OPQMatrix, RandomRotationMatrix,
NormalizationTransform, CenteringTransform, LinearTransform) and
IndexPreTransform, compared with numpy references and with FAISS itself:
PCA statistics and projections, search results, OPQ quality, factory
structures, files both ways, errors."""
import gc
import os

import numpy as np
import pytest

import vecdex


def aniso(rng, n, d, offset=1.0):
    """Anisotropic, correlated data: distinct eigenvalues."""
    scales = np.linspace(3.0, 0.2, d)
    mix = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return ((rng.standard_normal((n, d)) * scales) @ mix.T + offset).astype(
        np.float32)


def signs_to(ref_rows, rows):
    """Per-row signs that align rows with ref_rows (eigenvectors)."""
    return np.sign((ref_rows * rows).sum(1))


# --------------------------------------------------------------------------
# PCA
# --------------------------------------------------------------------------
def test_pca_matches_faiss(faiss_ref, rng):
    faiss = faiss_ref
    d, dout = 24, 8
    x = aniso(rng, 4000, d)
    v = vecdex.PCAMatrix(d, dout)
    f = faiss.PCAMatrix(d, dout)
    v.train(x)
    f.train(x)
    assert v.is_trained and v.d_in == d and v.d_out == dout
    assert v.is_orthonormal == f.is_orthonormal
    ev_f = faiss.vector_to_array(f.eigenvalues)
    ev_v = vecdex.vector_to_array(v.eigenvalues)
    np.testing.assert_allclose(ev_v, ev_f, rtol=2e-4, atol=1e-3 * ev_f[0])
    np.testing.assert_allclose(vecdex.vector_to_array(v.mean),
                               faiss.vector_to_array(f.mean), atol=1e-5)
    P_f = faiss.vector_to_array(f.PCAMat).reshape(d, d)[:dout]
    P_v = v.PCAMat.reshape(d, d)[:dout]
    s = signs_to(P_f, P_v)
    np.testing.assert_allclose(P_v * s[:, None], P_f, atol=2e-3)
    # projections equal up to the sign of each component
    y_v = v.apply(x[:50])
    y_f = f.apply(x[:50])
    np.testing.assert_allclose(y_v * s[None, :], y_f, rtol=1e-3, atol=2e-3)
    A = v.A.reshape(dout, d)
    np.testing.assert_allclose(y_v, x[:50] @ A.T + v.b, rtol=1e-4, atol=1e-4)
    assert v.apply_py(x[:3]).shape == (3, dout)


def test_pca_numpy_reference(rng):
    d = 10
    x = aniso(rng, 3000, d)
    v = vecdex.PCAMatrix(d, d)
    v.train(x)
    xc = x.astype(np.float64) - x.mean(0)
    w, V = np.linalg.eigh(xc.T @ xc)  # scatter matrix, as FAISS
    w, V = w[::-1], V[:, ::-1]
    np.testing.assert_allclose(v.eigenvalues, w, rtol=1e-4)
    P = v.PCAMat.reshape(d, d)
    s = signs_to(V.T, P)
    np.testing.assert_allclose(P * s[:, None], V.T, atol=1e-3)
    # full-rank orthonormal PCA is invertible
    y = v.apply(x[:20])
    np.testing.assert_allclose(v.reverse_transform(y), x[:20], atol=1e-3)


@pytest.mark.parametrize("rot", [False, True])
def test_pca_whitening_matches_faiss(faiss_ref, rng, rot):
    faiss = faiss_ref
    d, dout = 16, 6
    x = aniso(rng, 3000, d)
    v = vecdex.PCAMatrix(d, dout, -0.5, rot)
    f = faiss.PCAMatrix(d, dout, -0.5, rot)
    v.train(x)
    f.train(x)
    y = v.apply(x).astype(np.float64)
    # decorrelated with unit sum of squares (eigenvalues are scatter sums)
    np.testing.assert_allclose(y.T @ y, np.eye(dout), atol=2e-3)
    assert not v.is_orthonormal and not f.is_orthonormal
    if not rot:
        y_f = f.apply(x[:40])
        s = signs_to(y_f.T, v.apply(x[:40]).T)
        np.testing.assert_allclose(v.apply(x[:40]) * s, y_f, rtol=1e-3,
                                   atol=1e-4)
    with pytest.raises(RuntimeError, match="orthonormal"):
        v.reverse_transform(y[:2].astype(np.float32))


def test_pca_max_points_per_d(rng):
    d = 8
    x = aniso(rng, 5000, d)
    v = vecdex.PCAMatrix(d, 4)
    assert v.max_points_per_d == 1000
    v.max_points_per_d = 100  # 800 of the 5000 points
    v.train(x)
    full = vecdex.PCAMatrix(d, 4)
    full.train(x)
    ratio = v.eigenvalues[:4] / full.eigenvalues[:4]
    np.testing.assert_allclose(ratio, 800 / 5000, rtol=0.25)
    with pytest.raises(ValueError):
        v.max_points_per_d = -1


# --------------------------------------------------------------------------
# Random rotation, normalisation, centring, LinearTransform
# --------------------------------------------------------------------------
@pytest.mark.parametrize("din,dout", [(32, 32), (32, 12), (8, 20)])
def test_random_rotation(rng, din, dout):
    rr = vecdex.RandomRotationMatrix(din, dout)
    assert not rr.is_trained
    rr.init(5)
    assert rr.is_trained and rr.is_orthonormal and not rr.have_bias
    A = rr.A.reshape(dout, din)
    G = A @ A.T if dout <= din else A.T @ A
    np.testing.assert_allclose(G, np.eye(min(din, dout)), atol=1e-5)
    x = rng.standard_normal((30, din)).astype(np.float32)
    np.testing.assert_allclose(rr.apply(x), x @ A.T, rtol=1e-5, atol=1e-5)
    if dout >= din:
        np.testing.assert_allclose(rr.reverse_transform(rr.apply(x)), x,
                                   atol=1e-5)
    rr2 = vecdex.RandomRotationMatrix(din, dout)
    rr2.train(x)  # FAISS's seed
    rr3 = vecdex.RandomRotationMatrix(din, dout)
    rr3.init(12345)
    np.testing.assert_array_equal(rr2.A, rr3.A)


def test_normalization_and_centering(faiss_ref, rng):
    faiss = faiss_ref
    x = rng.standard_normal((50, 12)).astype(np.float32) + 2
    v = vecdex.NormalizationTransform(12)
    f = faiss.NormalizationTransform(12)
    assert v.is_trained
    np.testing.assert_allclose(v.apply(x), f.apply(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(v.reverse_transform(x), x)  # as FAISS
    c = vecdex.CenteringTransform(12)
    cf = faiss.CenteringTransform(12)
    c.train(x)
    cf.train(x)
    np.testing.assert_allclose(c.mean, faiss.vector_to_array(cf.mean),
                               atol=1e-6)
    np.testing.assert_allclose(c.apply(x), cf.apply(x), atol=1e-5)
    np.testing.assert_allclose(c.reverse_transform(c.apply(x)), x, atol=1e-5)
    with pytest.raises(ValueError):
        vecdex.NormalizationTransform(12, 1.0)


def test_linear_transform(rng):
    lt = vecdex.LinearTransform(6, 3, True)
    assert not lt.is_trained and lt.have_bias
    A = rng.standard_normal((3, 6)).astype(np.float32)
    b = np.array([1, -1, 0.5], dtype=np.float32)
    lt.A = A
    lt.b = b
    assert lt.is_trained and not lt.is_orthonormal
    x = rng.standard_normal((7, 6)).astype(np.float32)
    np.testing.assert_allclose(lt.apply(x), x @ A.T + b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expected 18 floats"):
        lt.A = np.zeros(17, dtype=np.float32)
    q = np.linalg.qr(rng.standard_normal((6, 6)))[0][:3].astype(np.float32)
    lt.A = q
    assert lt.is_orthonormal
    y = lt.apply(x)
    np.testing.assert_allclose(lt.reverse_transform(y),
                               (x @ q.T) @ q, atol=1e-5)


# --------------------------------------------------------------------------
# OPQ
# --------------------------------------------------------------------------
def pq_error(lib, x, M):
    pq = lib.ProductQuantizer(x.shape[1], M, 8)
    pq.train(x)
    r = pq.decode(pq.compute_codes(x))
    return float(((r - x) ** 2).sum(1).mean())


@pytest.fixture
def faiss1(faiss_ref):
    """FAISS on one thread: its OpenMP teams crawl on a busy machine."""
    n = faiss_ref.omp_get_max_threads()
    faiss_ref.omp_set_num_threads(1)
    yield faiss_ref
    faiss_ref.omp_set_num_threads(n)


def test_opq_matches_faiss_quality(faiss1, rng):
    faiss = faiss1
    d, M = 32, 8
    x = aniso(rng, 4000, d, offset=0.0)
    errs = {}
    for name, lib in (("vecdex", vecdex), ("faiss", faiss)):
        o = lib.OPQMatrix(d, M)
        assert (o.niter, o.niter_pq, o.niter_pq_0, o.max_train_points) == \
            (50, 4, 40, 65536)
        o.niter = 8
        o.train(x)
        assert o.is_trained
        A = lib.vector_to_array(o.A).reshape(d, d)
        np.testing.assert_allclose(A @ A.T, np.eye(d), atol=1e-4)
        errs[name] = pq_error(lib, o.apply(x), M)
    errs["plain"] = pq_error(vecdex, x, M)
    # OPQ helps (faiss gains ~2.7% on this data) and vecdex, which draws
    # FAISS's random rotations and k-means samples, lands where faiss does
    assert errs["vecdex"] < 0.985 * errs["plain"], errs
    assert errs["vecdex"] <= 1.01 * errs["faiss"], errs


def test_opq_d2_and_errors(rng):
    x = aniso(rng, 1000, 16)
    o = vecdex.OPQMatrix(16, 4, 8)
    assert (o.d_in, o.d_out, o.M) == (16, 8, 4)
    o.niter = 2
    o.niter_pq_0 = 3
    o.train(x)
    A = o.A.reshape(8, 16)
    np.testing.assert_allclose(A @ A.T, np.eye(8), atol=1e-4)
    with pytest.raises(ValueError, match="M=3"):
        vecdex.OPQMatrix(16, 3)
    with pytest.raises(ValueError, match="256"):
        vecdex.OPQMatrix(16, 4).train(x[:100])
    with pytest.raises(ValueError):
        o.niter_pq = 0


# --------------------------------------------------------------------------
# IndexPreTransform
# --------------------------------------------------------------------------
def test_pca_flat_search_matches_faiss(faiss_ref, rng):
    faiss = faiss_ref
    d = 32
    xb = aniso(rng, 3000, d)
    xq = aniso(rng, 40, d)
    v = vecdex.IndexPreTransform(vecdex.PCAMatrix(d, 12),
                                 vecdex.IndexFlatL2(12))
    f = faiss.IndexPreTransform(faiss.PCAMatrix(d, 12), faiss.IndexFlatL2(12))
    for ix in (v, f):
        assert not ix.is_trained
        ix.train(xb)
        ix.add(xb)
    Dv, Iv = v.search(xq, 10)
    Df, If = f.search(xq, 10)
    assert (Iv == If).mean() > 0.98
    np.testing.assert_allclose(Dv, Df, rtol=1e-3, atol=1e-3)


def test_pretransform_equals_manual(rng):
    d = 24
    xb = aniso(rng, 2000, d)
    xq = aniso(rng, 15, d)
    pca = vecdex.PCAMatrix(d, 8)
    ix = vecdex.IndexPreTransform(pca, vecdex.IndexFlatL2(8))
    ix.train(xb)
    # the caller's object shows the training (shared, as in FAISS)
    assert pca.is_trained and len(vecdex.vector_to_array(pca.eigenvalues)) == d
    ix.add(xb)
    assert ix.ntotal == 2000 and ix.index.ntotal == 2000
    flat = vecdex.IndexFlatL2(8)
    flat.add(pca.apply(xb))
    D1, I1 = ix.search(xq, 5)
    D2, I2 = flat.search(pca.apply(xq), 5)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ix.apply_chain(xq), pca.apply(xq))
    # selectors pass through
    sel = vecdex.IDSelectorRange(100, 200)
    D3, I3 = ix.search(xq, 5, params=vecdex.SearchParameters(sel=sel))
    D4, I4 = flat.search(pca.apply(xq), 5,
                         params=vecdex.SearchParameters(sel=sel))
    np.testing.assert_array_equal(I3, I4)
    assert ((I3 >= 100) & (I3 < 200)).all()
    # range search
    lims1, RD1, RI1 = ix.range_search(xq[:3], float(D1[0, 4]) + 1e-3)
    lims2, RD2, RI2 = flat.range_search(pca.apply(xq[:3]),
                                        float(D1[0, 4]) + 1e-3)
    np.testing.assert_array_equal(lims1, lims2)
    # reconstruct reverses the chain: the projection in input space
    r = ix.reconstruct(5)
    np.testing.assert_allclose(r, pca.reverse_transform(pca.apply(xb[5:6]))[0],
                               atol=1e-4)
    assert ix.reconstruct_n(0, 3).shape == (3, d)
    assert ix.remove_ids(np.arange(10)) == 10 and ix.ntotal == 1990
    ix.reset()
    assert ix.ntotal == 0 and ix.index.ntotal == 0


def test_pretransform_chain_api(faiss_ref, rng):
    faiss = faiss_ref
    d = 16
    x = aniso(rng, 1000, d)
    ix = vecdex.IndexPreTransform(vecdex.IndexFlatL2(d))
    assert ix.chain.size() == 0 and ix.is_trained
    pca = vecdex.PCAMatrix(d, d)
    ix.prepend_transform(pca)
    norm = vecdex.NormalizationTransform(d)
    ix.prepend_transform(norm)
    ch = ix.chain
    assert len(ch) == 2 and ch.size() == 2
    assert isinstance(ch.at(0), vecdex.NormalizationTransform)
    assert isinstance(vecdex.downcast_VectorTransform(ch.at(1)),
                      vecdex.PCAMatrix)
    with pytest.raises(IndexError):
        ch.at(2)
    ix.train(x)
    ix.add(x)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    flat = vecdex.IndexFlatL2(d)
    flat.add(pca.apply(xn))
    np.testing.assert_array_equal(ix.search(x[:5], 3)[1],
                                  flat.search(pca.apply(xn[:5]), 3)[1])
    # a transform belongs to one index
    with pytest.raises(ValueError, match="already belongs"):
        vecdex.IndexPreTransform(pca, vecdex.IndexFlatL2(d))
    assert isinstance(vecdex.downcast_index(ix), vecdex.IndexPreTransform)
    # the transforms outlive the index's wrapper
    sub = ix.index
    del ix
    gc.collect()
    assert pca.is_trained and pca.apply(x[:2]).shape == (2, d)
    assert sub.ntotal == 1000


def test_pretransform_params_ivf(rng):
    d = 16
    x = aniso(rng, 3000, d)
    ix = vecdex.index_factory(d, "PCA8,IVF16,Flat")
    ix.train(x)
    ix.add(x)
    ivf = vecdex.downcast_index(ix.index)
    assert isinstance(ivf, vecdex.IndexIVFFlat) and ivf.d == 8
    pca = ix.chain.at(0)
    flat = vecdex.IndexFlatL2(8)
    flat.add(pca.apply(x))
    Iref = flat.search(pca.apply(x[:10]), 5)[1]
    # all lists probed through params: exact
    I1 = ix.search(x[:10], 5, params=vecdex.SearchParametersIVF(nprobe=16))[1]
    np.testing.assert_array_equal(I1, Iref)
    I2 = ix.search(x[:10], 5, params=vecdex.SearchParametersPreTransform(
        index_params=vecdex.SearchParametersIVF(nprobe=16)))[1]
    np.testing.assert_array_equal(I2, Iref)
    ivf.nprobe = 16
    np.testing.assert_array_equal(ix.search(x[:10], 5)[1], Iref)


def test_pretransform_errors(rng):
    with pytest.raises(ValueError, match="d_out=8"):
        vecdex.IndexPreTransform(vecdex.PCAMatrix(16, 8),
                                 vecdex.IndexFlatL2(9))
    with pytest.raises(TypeError):
        vecdex.IndexPreTransform(vecdex.IndexFlatL2(4), vecdex.IndexFlatL2(4))
    with pytest.raises(TypeError):
        vecdex.VectorTransform()
    with pytest.raises(ValueError, match="d_out=9"):
        vecdex.PCAMatrix(8, 9)
    pca = vecdex.PCAMatrix(8, 4)
    with pytest.raises(RuntimeError, match="trained"):
        pca.apply(np.zeros((2, 8), dtype=np.float32))
    with pytest.raises(vecdex.ShapeError):
        pca.train(np.zeros((10, 7), dtype=np.float32))
    ix = vecdex.IndexPreTransform(pca, vecdex.IndexFlatL2(4))
    with pytest.raises(RuntimeError, match="trained"):
        ix.add(np.zeros((2, 8), dtype=np.float32))
    with pytest.raises(vecdex.ShapeError):
        ix.train(np.zeros((10, 4), dtype=np.float32))
    x = rng.random((100, 8), dtype=np.float32)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN|finite"):
        ix.train(x)
    with pytest.raises(ValueError, match="d_out"):
        ix.prepend_transform(vecdex.PCAMatrix(16, 4))
    # the sub-index refuses direct mutation while wrapped
    with pytest.raises(RuntimeError, match="IndexPreTransform"):
        ix.index.add(np.zeros((1, 4), dtype=np.float32))


# --------------------------------------------------------------------------
# index_factory
# --------------------------------------------------------------------------
FACTORY = ["PCA32,IVF100,Flat", "OPQ16_64,IVF256,PQ16", "OPQ8,PQ8",
           "OPQ16_32,Flat", "RR64,LSH", "RR,Flat", "L2norm,Flat",
           "PCAR32,SQ8", "PCAW16,Flat", "PCAWR16,Flat", "L2norm,PCA32,Flat",
           "PCA16,OPQ4,PQ4", "PCA32,IDMap,Flat", "IDMap,PCA32,Flat",
           "IDMap2,L2norm,Flat", "PCA32,Flat,RFlat", "PCA64,Flat"]


def structure(lib, ix):
    ix = lib.downcast_index(ix)
    s = [type(ix).__name__, ix.d]
    if isinstance(ix, lib.IndexPreTransform):
        chain = [lib.downcast_VectorTransform(ix.chain.at(i))
                 for i in range(ix.chain.size())]
        s.append([(type(c).__name__, c.d_in, c.d_out) for c in chain])
        for c in chain:
            if isinstance(c, lib.PCAMatrix):
                s.append((c.eigen_power, bool(c.random_rotation)))
            if isinstance(c, lib.OPQMatrix):
                s.append(c.M)
        s.append(structure(lib, ix.index))
    elif type(ix).__name__ in ("IndexIDMap", "IndexIDMap2"):
        s.append(structure(lib, ix.index))
    return s


def normalise(s):
    """FAISS reads/builds flat L2 as IndexFlat or IndexFlatL2: same thing."""
    if isinstance(s, list):
        return [normalise(e) for e in s]
    return "IndexFlat" if s in ("IndexFlatL2", "IndexFlat") else s


@pytest.mark.parametrize("desc", FACTORY)
def test_factory_matches_faiss(faiss_ref, desc):
    faiss = faiss_ref
    v = vecdex.index_factory(64, desc)
    f = faiss.index_factory(64, desc)
    assert normalise(structure(vecdex, v)) == normalise(structure(faiss, f))


@pytest.mark.parametrize("desc,where", [
    ("PCA128,Flat", "'PCA128' at position 0"),
    ("OPQ5,PQ5", "'OPQ5' at position 0"),
    ("IVF10,PCA32,Flat", "'PCA32' at position 6"),
    ("PCA32,PCAZ8,Flat", "'PCAZ8' at position 6"),
    ("L2norm", "ends with 'L2norm'"),
])
def test_factory_errors(faiss_ref, desc, where):
    with pytest.raises(ValueError, match=where):
        vecdex.index_factory(64, desc)
    with pytest.raises(RuntimeError):  # FAISS rejects them too
        ix = faiss_ref.index_factory(64, desc)
        # FAISS builds PCA128 over d=64 and fails only when training
        ix.train(np.random.default_rng(0).random((300, 64), dtype=np.float32))


def test_factory_opq_ivfpq_recall_vs_faiss(faiss1, rng):
    faiss = faiss1
    d = 32
    xb = aniso(rng, 5000, d, offset=0.0)
    xq = aniso(rng, 100, d, offset=0.0)
    gt = vecdex.knn(xq, xb, 10)[1]
    rec = {}
    for name, lib in (("vecdex", vecdex), ("faiss", faiss)):
        # "OPQ8,IVF32,PQ8" built by hand: FAISS's factory would also turn
        # on its (slow) polysemous training, which vecdex does not have
        opq = lib.OPQMatrix(d, 8)
        opq.niter = 5
        ix = lib.IndexPreTransform(
            opq, lib.IndexIVFPQ(lib.IndexFlatL2(d), d, 32, 8, 8))
        ix.train(xb)
        ix.add(xb)
        I = ix.search(xq, 10, params=lib.SearchParametersIVF(nprobe=8))[1]
        rec[name] = np.mean([len(set(I[i]) & set(gt[i])) / 10
                             for i in range(len(xq))])
    assert rec["vecdex"] >= rec["faiss"] - 0.05, rec


# --------------------------------------------------------------------------
# Files, both ways
# --------------------------------------------------------------------------
FILE_CASES = ["PCA8,Flat", "PCAW8,Flat", "PCAR8,Flat", "RR24,Flat",
              "L2norm,Flat", "OPQ4,Flat", "L2norm,PCA8,IVF4,Flat",
              "PCA8,IDMap,Flat"]


def build(lib, desc, x):
    ix = lib.index_factory(16, desc)
    for i in range(ix.chain.size()):
        vt = lib.downcast_VectorTransform(ix.chain.at(i))
        if isinstance(vt, lib.OPQMatrix):
            vt.niter = 3
    ix.train(x)
    if "IDMap" in desc:
        ix.add_with_ids(x, np.arange(len(x), dtype=np.int64) * 3 + 1)
    else:
        ix.add(x)
    return ix


@pytest.mark.parametrize("desc", FILE_CASES)
def test_files_both_ways(faiss_ref, rng, tmp_path, desc):
    faiss = faiss_ref
    x = aniso(rng, 1200, 16)
    xq = x[:20] + 0.01
    # faiss writes, vecdex reads
    f = build(faiss, desc, x)
    p = str(tmp_path / "f.index")
    faiss.write_index(f, p)
    v = vecdex.read_index(p)
    assert isinstance(v, vecdex.IndexPreTransform)
    assert v.ntotal == f.ntotal and v.d == f.d
    Df, If = f.search(xq, 5)
    Dv, Iv = v.search(xq, 5)
    assert (Iv == If).mean() > 0.97
    np.testing.assert_allclose(Dv, Df, rtol=1e-4, atol=1e-4)
    # vecdex writes the same bytes back
    p2 = str(tmp_path / "v.index")
    vecdex.write_index(v, p2)
    with open(p, "rb") as a, open(p2, "rb") as b:
        assert a.read() == b.read()
    # vecdex trains and writes, faiss reads
    v2 = build(vecdex, desc, x)
    p3 = str(tmp_path / "v2.index")
    vecdex.write_index(v2, p3)
    f2 = faiss.read_index(p3)
    assert f2.ntotal == v2.ntotal
    Dv2, Iv2 = v2.search(xq, 5)
    Df2, If2 = f2.search(xq, 5)
    assert (Iv2 == If2).mean() > 0.97
    np.testing.assert_allclose(Dv2, Df2, rtol=1e-4, atol=1e-4)
    # serialize / deserialize and pickling keep the chain
    v3 = vecdex.deserialize_index(vecdex.serialize_index(v2))
    np.testing.assert_array_equal(v3.search(xq, 5)[1], Iv2)


def test_file_transform_kinds_from_faiss(faiss_ref, rng, tmp_path):
    faiss = faiss_ref
    x = aniso(rng, 500, 8)
    c = faiss.CenteringTransform(8)
    c.train(x)
    lt = faiss.LinearTransform(8, 8, True)
    q = np.linalg.qr(rng.standard_normal((8, 8)))[0].astype(np.float32)
    faiss.copy_array_to_vector(q.ravel(), lt.A)
    faiss.copy_array_to_vector(np.arange(8, dtype=np.float32), lt.b)
    lt.is_trained = True
    lt.set_is_orthonormal()
    f = faiss.IndexPreTransform(lt, faiss.IndexFlatIP(8))
    f.prepend_transform(c)
    f.add(x)
    p = str(tmp_path / "f.index")
    faiss.write_index(f, p)
    v = vecdex.read_index(p)
    kinds = [type(v.chain.at(i)).__name__ for i in range(v.chain.size())]
    assert kinds == ["CenteringTransform", "LinearTransform"]
    assert v.chain.at(1).is_orthonormal
    np.testing.assert_allclose(v.chain.at(1).A, q.ravel())
    np.testing.assert_array_equal(v.search(x[:5], 3)[1], f.search(x[:5], 3)[1])
    np.testing.assert_allclose(v.reconstruct(4), f.reconstruct(4), atol=1e-5)


def test_hostile_files(tmp_path, rng):
    v = vecdex.index_factory(8, "PCA4,Flat")
    x = aniso(rng, 300, 8)
    v.train(x)
    v.add(x[:5])
    data = bytes(vecdex.serialize_index(v))
    for n in range(0, len(data), 7):
        with pytest.raises(RuntimeError):
            vecdex.deserialize_index(np.frombuffer(data[:n], dtype=np.uint8))
    bad = bytearray(data)
    bad[37:41] = (1 << 30).to_bytes(4, "little")
    with pytest.raises(RuntimeError, match="chain length"):
        vecdex.deserialize_index(bytes(bad))


def test_vector_transform_files_both_ways(faiss_ref, rng, tmp_path):
    faiss = faiss_ref
    x = aniso(rng, 600, 12)
    made = {
        "pca": lambda L: L.PCAMatrix(12, 5, -0.5, True),
        "rr": lambda L: L.RandomRotationMatrix(12, 7),
        "norm": lambda L: L.NormalizationTransform(12),
        "center": lambda L: L.CenteringTransform(12),
    }
    for name, make in made.items():
        f = make(faiss)
        f.train(x)
        p = str(tmp_path / (name + ".vt"))
        faiss.write_VectorTransform(f, p)
        v = vecdex.read_VectorTransform(p)
        assert type(v).__name__ == type(faiss.downcast_VectorTransform(f)).__name__
        np.testing.assert_allclose(v.apply(x[:10]), f.apply(x[:10]),
                                   rtol=1e-5, atol=1e-5)
        p2 = str(tmp_path / (name + "_v.vt"))
        vecdex.write_VectorTransform(v, p2)
        assert open(p, "rb").read() == open(p2, "rb").read()
        v2 = make(vecdex)
        v2.train(x)
        vecdex.write_VectorTransform(v2, p2)
        f2 = faiss.read_VectorTransform(p2)
        np.testing.assert_allclose(f2.apply(x[:10]), v2.apply(x[:10]),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="truncated"):
        vecdex.deserialize_VectorTransform(open(p, "rb").read()[:-3])


def test_pickle_pretransform(rng):
    import pickle
    x = aniso(rng, 500, 8)
    ix = vecdex.index_factory(8, "PCA4,Flat")
    ix.train(x)
    ix.add(x)
    ix2 = pickle.loads(pickle.dumps(ix))
    assert isinstance(ix2, vecdex.IndexPreTransform)
    np.testing.assert_array_equal(ix2.search(x[:5], 3)[1], ix.search(x[:5], 3)[1])
