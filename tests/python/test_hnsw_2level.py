"""Index2Layer and IndexHNSW2Level against FAISS: files in both directions
(byte for byte where FAISS wrote them), search against brute force over the
decoded vectors and against FAISS's own search, factory strings, attributes
and bad input.

FAISS's IndexHNSW2Level build hangs with more than one OpenMP thread here, so
FAISS builds run on one thread (faiss.omp_set_num_threads(1))."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")

D = 32


def data(n, seed, d=D):
    rs = np.random.RandomState(seed)
    return rs.rand(n, d).astype("float32")


@pytest.fixture(scope="module")
def ds():
    xb, xq = data(3000, 1), data(100, 2)
    gt = faiss.knn(xq, xb, 10)[1]
    return xb, xq, gt


@pytest.fixture(autouse=True)
def one_faiss_thread():
    n = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(n)


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, gt)])


_KEEP = []  # FAISS objects whose downcast views are in use


def to_faiss(v):
    """v through a file into FAISS (downcast; the owning object is kept)."""
    f = faiss.deserialize_index(
        np.frombuffer(vecdex.serialize_index(v), dtype="uint8"))
    _KEEP.append(f)
    return faiss.downcast_index(f)


@pytest.fixture(scope="module")
def faiss_2layer(ds):
    xb = ds[0]
    faiss.omp_set_num_threads(1)
    q = faiss.IndexFlatL2(D)
    f = faiss.Index2Layer(q, 64, 8)
    f.train(xb)
    f.add(xb)
    return f, q  # q: FAISS does not own it


@pytest.fixture(scope="module")
def faiss_hnsw2(ds):
    xb = ds[0]
    faiss.omp_set_num_threads(1)
    q = faiss.IndexFlatL2(D)
    f = faiss.IndexHNSW2Level(q, 64, 8, 16)
    f.train(xb)
    f.add(xb)
    f.hnsw.efSearch = 48
    return f, q


def test_2layer_faiss_file_in_vecdex(ds, faiss_2layer):
    xb, xq, _ = ds
    f = faiss_2layer[0]
    buf = faiss.serialize_index(f)
    v = vecdex.deserialize_index(buf)
    assert type(v) is vecdex.Index2Layer
    assert (v.ntotal, v.d, v.is_trained) == (f.ntotal, f.d, True)
    assert (v.code_size_1, v.code_size_2, v.code_size) == \
        (f.code_size_1, f.code_size_2, f.code_size)
    assert v.q1.nlist == 64 and v.q1.quantizer.ntotal == 64
    assert (v.pq.M, v.pq.nbits, v.pq.code_size) == (8, 8, f.pq.code_size)
    np.testing.assert_array_equal(v.reconstruct_n(0, v.ntotal),
                                  f.reconstruct_n(0, f.ntotal))
    np.testing.assert_array_equal(v.q1.quantizer.reconstruct_n(0, 64),
                                  f.q1.quantizer.reconstruct_n(0, 64))
    assert bytes(vecdex.serialize_index(v)) == buf.tobytes()
    # FAISS's Index2Layer cannot search; vecdex's search is exhaustive over
    # the decoded vectors
    dec = f.reconstruct_n(0, f.ntotal)
    Dg, Ig = faiss.knn(xq, dec, 10)
    Dv, Iv = v.search(xq, 10)
    assert np.mean(Iv == Ig) > 0.99
    np.testing.assert_allclose(Dv, Dg, rtol=1e-5, atol=1e-5)


def test_2layer_vecdex_file_in_faiss(ds, faiss_2layer):
    xb, xq, _ = ds
    q = vecdex.IndexFlatL2(D)
    v = vecdex.Index2Layer(q, 64, 8)
    assert not v.is_trained
    v.train(xb)
    v.add(xb)
    f = to_faiss(v)
    assert isinstance(f, faiss.Index2Layer)
    assert (f.ntotal, f.code_size_1, f.code_size) == (v.ntotal, 1, 9)
    np.testing.assert_array_equal(f.reconstruct_n(0, f.ntotal),
                                  v.reconstruct_n(0, v.ntotal))
    assert faiss.serialize_index(f).tobytes() == \
        bytes(vecdex.serialize_index(v))
    # vecdex's encoder is FAISS's: the same vectors re-encoded by FAISS give
    # the same codes (but for float near-ties in the assignment)
    f.reset()
    f.add(xb)
    same = np.all(f.reconstruct_n(0, f.ntotal) == v.reconstruct_n(0, v.ntotal),
                  axis=1)
    assert same.mean() > 0.995
    # training as good as FAISS's: reconstruction error within 10%
    ff = faiss_2layer[0]
    ev = ((v.reconstruct_n(0, v.ntotal) - xb) ** 2).sum(1).mean()
    ef = ((ff.reconstruct_n(0, ff.ntotal) - xb) ** 2).sum(1).mean()
    assert ev < 1.1 * ef, (ev, ef)


def test_hnsw2level_faiss_file_in_vecdex(ds, faiss_hnsw2):
    xb, xq, gt = ds
    f = faiss_hnsw2[0]
    buf = faiss.serialize_index(f)
    v = vecdex.deserialize_index(buf)
    assert type(v) is vecdex.IndexHNSW2Level
    assert isinstance(v, vecdex.IndexHNSW)
    assert type(v.storage) is vecdex.Index2Layer
    assert v.hnsw.efSearch == 48 and v.hnsw.M == 16
    assert v.hnsw.entry_point == f.hnsw.entry_point
    np.testing.assert_array_equal(v.hnsw.levels,
                                  faiss.vector_to_array(f.hnsw.levels))
    Df, If = f.search(xq, 10)
    Dv, Iv = v.search(xq, 10)
    assert np.mean(Iv == If) > 0.97
    np.testing.assert_allclose(Dv, Df, rtol=1e-4, atol=1e-4)
    assert bytes(vecdex.serialize_index(v)) == buf.tobytes()
    np.testing.assert_array_equal(v.reconstruct_n(0, 50),
                                  f.reconstruct_n(0, 50))


def test_hnsw2level_vecdex_file_in_faiss(ds, faiss_hnsw2):
    xb, xq, gt = ds
    q = vecdex.IndexFlatL2(D)
    v = vecdex.IndexHNSW2Level(q, 64, 8, 16)
    with pytest.raises(RuntimeError):
        v.add(xb)  # not trained
    v.train(xb)
    v.add(xb)
    v.hnsw.efSearch = 48
    f = to_faiss(v)
    # FAISS's downcast_index stops at IndexHNSW for this kind: the fourcc
    # FAISS writes back tells the class
    assert faiss.serialize_index(f)[:4].tobytes() == b"IHN2"
    assert f.hnsw.efSearch == 48 and f.ntotal == v.ntotal
    assert isinstance(faiss.downcast_index(f.storage), faiss.Index2Layer)
    Dv, Iv = v.search(xq, 10)
    Df, If = f.search(xq, 10)
    assert np.mean(Iv == If) > 0.97
    np.testing.assert_allclose(Dv, Df, rtol=1e-4, atol=1e-4)
    # recall: against the exhaustive search over each one's own codes, and
    # against the raw vectors, as good as FAISS's build
    fh = faiss_hnsw2[0]
    own_v = faiss.knn(xq, v.reconstruct_n(0, v.ntotal), 10)[1]
    own_f = faiss.knn(xq, fh.reconstruct_n(0, fh.ntotal), 10)[1]
    rv, rf = recall(Iv, own_v), recall(fh.search(xq, 10)[1], own_f)
    assert rv > 0.85 and rv >= rf - 0.03, (rv, rf)
    assert recall(Iv, gt) >= recall(fh.search(xq, 10)[1], gt) - 0.05


def test_search_params_and_filter(ds):
    xb, xq, _ = ds
    q = vecdex.IndexFlatL2(D)
    v = vecdex.IndexHNSW2Level(q, 32, 8, 16)
    v.train(xb)
    v.add(xb)
    own = faiss.knn(xq, v.reconstruct_n(0, v.ntotal), 10)[1]
    r16 = recall(v.search(xq, 10)[1], own)
    p = vecdex.SearchParametersHNSW(efSearch=200)
    r200 = recall(v.search(xq, 10, params=p)[1], own)
    assert r200 >= r16 and r200 > 0.95
    sel = vecdex.IDSelectorRange(0, 1500)
    I = v.search(xq, 10, params=vecdex.SearchParametersHNSW(sel=sel,
                                                           efSearch=64))[1]
    assert I.max() < 1500 and (I >= 0).all()
    # Index2Layer alone: selector and range search on the exhaustive scan
    t = v.storage
    I = t.search(xq, 5, params=vecdex.SearchParameters(sel=sel))[1]
    assert I.max() < 1500
    dec = t.reconstruct_n(0, t.ntotal)
    Dg = faiss.knn(xq, dec, 5)[0]
    lims, Dr, Ir = t.range_search(xq[:5], float(np.median(Dg[:5, -1])))
    for i in range(5):
        d = ((dec - xq[i]) ** 2).sum(1)
        want = np.nonzero(d < float(np.median(Dg[:5, -1])))[0]
        assert set(Ir[lims[i]:lims[i + 1]]) == set(want)


FACTORY = ["Residual64,PQ8", "Residual300,PQ4x6", "HNSW32_256+PQ8",
           "HNSW16_1000+PQ4", "HNSW8,64+PQ16"]


@pytest.mark.parametrize("desc", FACTORY)
def test_factory(desc):
    v = vecdex.index_factory(64, desc)
    f0 = faiss.index_factory(64, desc)
    f = faiss.downcast_index(f0)
    fourcc = faiss.serialize_index(f)[:4].tobytes()
    if hasattr(f, "hnsw"):
        assert type(v) is vecdex.IndexHNSW2Level and fourcc == b"IHN2"
    else:
        assert type(v) is vecdex.Index2Layer and fourcc == b"Ix2L"
    if hasattr(f, "hnsw"):
        assert v.hnsw.M == f.hnsw.nb_neighbors(1)
        assert v.hnsw.efConstruction == f.hnsw.efConstruction
        s, fs = v.storage, faiss.downcast_index(f.storage)
    else:
        s, fs = v, f
    assert (s.code_size_1, s.code_size_2) == (fs.code_size_1, fs.code_size_2)
    assert (s.pq.M, s.pq.nbits) == (fs.pq.M, fs.pq.nbits)
    assert s.q1.nlist == fs.q1.nlist
    # untrained files agree too
    assert bytes(vecdex.serialize_index(v)) == \
        faiss.serialize_index(f).tobytes()


def test_bad_input(ds):
    xb = ds[0]
    with pytest.raises(ValueError):
        vecdex.Index2Layer(vecdex.IndexFlatL2(D), 0, 8)
    with pytest.raises(ValueError):
        vecdex.Index2Layer(vecdex.IndexFlatL2(D), 16, 5)  # M must divide d
    with pytest.raises(ValueError):
        vecdex.IndexHNSW2Level(vecdex.IndexFlatL2(D), 16, 8, 1)
    with pytest.raises(TypeError):
        vecdex.Index2Layer(None, 16, 8)
    q = vecdex.IndexFlatL2(D)
    t = vecdex.Index2Layer(q, 16, 8)
    with pytest.raises(ValueError):
        vecdex.Index2Layer(q, 16, 8)  # the quantizer already belongs to t
    with pytest.raises(RuntimeError):
        q.add(xb[:4])  # owned by t now
    with pytest.raises(RuntimeError):
        t.search(xb[:2], 3)  # not trained
    with pytest.raises(RuntimeError):
        t.train(xb[:10])  # fewer points than nlist
    t.train(xb)
    with pytest.raises(ValueError):
        t.add(xb[:, :16])
    with pytest.raises(RuntimeError):
        t.add_with_ids(xb[:2], np.arange(2))
    with pytest.raises(RuntimeError):
        vecdex.index_factory(D, "HNSW32_2x8+PQ8")  # MultiIndexQuantizer
    with pytest.raises(RuntimeError):
        vecdex.index_factory(D, "Residual2x8,PQ8")
    with pytest.raises(ValueError):
        vecdex.index_factory(D, "HNSW32_256+PQ8", vecdex.METRIC_INNER_PRODUCT)
    # corrupt files: a list number out of range, truncation
    t.add(xb[:100])
    buf = bytearray(vecdex.serialize_index(t))
    head = len(buf) - 100 * t.code_size
    buf[head] = 200  # list 200 >= nlist 16
    with pytest.raises(RuntimeError, match="list"):
        vecdex.deserialize_index(bytes(buf))
    with pytest.raises(RuntimeError):
        vecdex.deserialize_index(bytes(buf[:-1]))


def test_2layer_inner_product(ds):
    """Index2Layer with METRIC_INNER_PRODUCT (FAISS builds it but cannot
    search it): the largest inner products over the decoded vectors; its
    file carries the metric to FAISS."""
    xb, xq, _ = ds
    q = vecdex.IndexFlatIP(D)
    v = vecdex.Index2Layer(q, 32, 8, 8, vecdex.METRIC_INNER_PRODUCT)
    v.train(xb)
    v.add(xb)
    dec = v.reconstruct_n(0, v.ntotal)
    Dg, Ig = faiss.knn(xq, dec, 10, metric=faiss.METRIC_INNER_PRODUCT)
    Dv, Iv = v.search(xq, 10)
    assert np.mean(Iv == Ig) > 0.99
    np.testing.assert_allclose(Dv, Dg, rtol=1e-5, atol=1e-4)
    f = to_faiss(v)
    assert f.metric_type == faiss.METRIC_INNER_PRODUCT
    np.testing.assert_array_equal(f.reconstruct_n(0, f.ntotal), dec)
