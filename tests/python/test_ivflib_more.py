"""FAISS's ivflib helpers (merge_into, search_centroid,
search_and_return_centroids, get/set_invlist_range), pack_bitstrings /
unpack_bitstrings, BitstringWriter and IndexFlat1D: compared with FAISS
itself on the same data, or with numpy's brute force."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")

D = 16


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(7)
    return (rs.rand(3000, D).astype("float32"), rs.rand(2000, D).astype("float32"),
            rs.rand(50, D).astype("float32"))


def trained_pair(data, nlist=32, nprobe=4):
    xt, xb, _ = data
    v = vecdex.index_factory(D, "IVF%d,Flat" % nlist)
    v.train(xt)
    cent = v.quantizer.reconstruct_n(0, nlist)
    fq = faiss.IndexFlatL2(D)
    fq.add(cent)
    f = faiss.IndexIVFFlat(fq, D, nlist)
    f.is_trained = True
    v.add(xb)
    f.add(xb)
    v.nprobe = f.nprobe = nprobe
    return v, f, fq


def test_search_centroid_matches_faiss(data):
    v, f, _ = trained_pair(data)
    xq = data[2]
    ref = np.zeros(len(xq), dtype="int64")
    faiss.search_centroid(f, faiss.swig_ptr(xq), len(xq), faiss.swig_ptr(ref))
    out = np.zeros(len(xq), dtype="int64")
    got = vecdex.search_centroid(v, xq, len(xq), out)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(out, ref)


def test_search_and_return_centroids_matches_faiss(data):
    v, f, _ = trained_pair(data)
    xq, k = data[2], 7
    n = len(xq)
    Dr = np.zeros((n, k), "float32")
    Ir = np.zeros((n, k), "int64")
    qr = np.zeros(n, "int64")
    rr = np.zeros((n, k), "int64")
    faiss.search_and_return_centroids(
        f, n, faiss.swig_ptr(xq), k, faiss.swig_ptr(Dr), faiss.swig_ptr(Ir),
        faiss.swig_ptr(qr), faiss.swig_ptr(rr))
    Dn, In, qn, rn = vecdex.search_and_return_centroids(v, xq, k)
    np.testing.assert_array_equal(In, Ir)
    np.testing.assert_allclose(Dn, Dr, rtol=1e-5)
    np.testing.assert_array_equal(qn, qr)
    np.testing.assert_array_equal(rn, rr)


def test_merge_into_shift_ids(data):
    xt, xb, xq = data
    a = vecdex.index_factory(D, "IVF16,Flat")
    a.train(xt)
    b = vecdex.clone_index(a)
    a.add(xb[:1000])
    b.add(xb[1000:])
    vecdex.check_compatible_for_merge(a, b)
    vecdex.merge_into(a, b, True)
    assert (a.ntotal, b.ntotal) == (2000, 0)
    a.nprobe = 16   # every list: exact
    Dv, Iv = a.search(xq, 5)
    Db, Ib = faiss.knn(xq, xb, 5)
    np.testing.assert_array_equal(Iv, Ib)
    other = vecdex.index_factory(D + 4, "IVF16,Flat")
    with pytest.raises(RuntimeError):
        vecdex.check_compatible_for_merge(a, other)


def test_invlist_range_round_trip(data):
    v, _, _ = trained_pair(data)
    xq = data[2]
    D0, I0 = v.search(xq, 10)
    il = vecdex.get_invlist_range(v, 4, 12)
    assert il.nlist == 8
    for l in range(4, 12):
        np.testing.assert_array_equal(il.get_ids(l - 4), v.invlists.get_ids(l))
    # clearing the range loses the entries, putting it back restores them
    vecdex.set_invlist_range(v, 4, 12, vecdex.ArrayInvertedLists(8, il.code_size))
    assert v.ntotal == 2000 - il.compute_ntotal()
    vecdex.set_invlist_range(v, 4, 12, il)
    assert v.ntotal == 2000
    D1, I1 = v.search(xq, 10)
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_array_equal(D1, D0)
    with pytest.raises(RuntimeError):
        vecdex.get_invlist_range(v, 5, 40)


@pytest.mark.parametrize("nbit", [5, [10, 5, 3, 12, 6, 7, 4]])
def test_pack_bitstrings_matches_faiss(nbit):
    rs = np.random.RandomState(3)
    widths = np.full(7, nbit) if np.ndim(nbit) == 0 else np.array(nbit)
    a = (rs.randint(1 << 16, size=(30, 7)) & ((1 << widths) - 1)).astype("int32")
    b = vecdex.pack_bitstrings(a, nbit)
    np.testing.assert_array_equal(b, faiss.pack_bitstrings(a, nbit))
    if np.ndim(nbit) == 0:
        c = vecdex.unpack_bitstrings(b, 7, nbit)
    else:
        c = vecdex.unpack_bitstrings(b, nbit)
    np.testing.assert_array_equal(c, a)
    with pytest.raises(ValueError):
        vecdex.pack_bitstrings(a + (1 << 12), nbit)


def test_bitstring_writer_clears_and_matches_faiss():
    rs = np.random.RandomState(5)
    vals = [(int(nb), int(rs.randint(1 << nb))) for nb in rs.randint(1, 30, 40)]
    nbyte = (sum(nb for nb, _ in vals) + 7) // 8
    ours = np.full(nbyte, 0xFF, dtype="uint8")
    ref = np.full(nbyte, 0xFF, dtype="uint8")
    w = vecdex.BitstringWriter(ours, nbyte)
    fw = faiss.BitstringWriter(faiss.swig_ptr(ref), nbyte)
    for nb, x in vals:
        w.write(x, nb)
        fw.write(x, nb)
    np.testing.assert_array_equal(ours, ref)
    r = vecdex.BitstringReader(ours, nbyte)
    assert [r.read(nb) for nb, _ in vals] == [x for _, x in vals]
    with pytest.raises(ValueError):
        w.write(1, 8 * nbyte)


def test_flat1d_matches_faiss():
    rs = np.random.RandomState(11)
    xb = rs.uniform(size=(300, 1)).astype("float32")
    xq = (rs.uniform(size=(200, 1)) * 1.2 - 0.1).astype("float32")
    ours, ref = vecdex.IndexFlat1D(), faiss.IndexFlat1D()
    for ix in (ours, ref):
        ix.add(xb[:150])
        ix.add(xb[150:])
    Dv, Iv = ours.search(xq, 12)
    Df, If = ref.search(xq, 12)
    np.testing.assert_allclose(Dv, Df, atol=1e-6)
    # ties aside, the same neighbours
    assert (Iv != If).sum() <= 5
    brute = np.sort(np.abs(xq - xb.T), axis=1)[:, :12]
    np.testing.assert_allclose(Dv, brute, atol=1e-6)


def test_flat1d_small_and_deferred():
    ix = vecdex.IndexFlat1D(False)
    ix.add(np.array([[0.5], [0.1]], dtype="float32"))
    with pytest.raises(RuntimeError):
        ix.search(np.zeros((1, 1), "float32"), 3)
    ix.update_permutation()
    D, I = ix.search(np.array([[0.2]], "float32"), 3)
    np.testing.assert_array_equal(I, [[1, 0, -1]])
    np.testing.assert_allclose(D[0, :2], [0.1, 0.3], atol=1e-6)
    with pytest.raises(ValueError):
        ix.search(np.zeros((1, 2), "float32"), 3)
    with pytest.raises(ValueError):
        ix.search(np.zeros((1, 1), "float32"), 0)


def test_fill_attached_quantizer_then_train_skips_kmeans(data):
    xt, xb, xq = data
    rs = np.random.RandomState(2)
    cent = rs.rand(32, D).astype("float32")
    v = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(D), D, 32)
    v.quantizer.add(cent)
    f = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, 32)
    f.quantizer.add(cent)
    for ix in (v, f):
        ix.train(xt)      # the quantizer holds nlist centroids: kept
        ix.add(xb)
        ix.nprobe = 3
    np.testing.assert_array_equal(v.quantizer.reconstruct_n(0, 32), cent)
    Dv, Iv = v.search(xq, 5)
    Df, If = f.search(xq, 5)
    np.testing.assert_array_equal(Iv, If)
    # once the IVF holds vectors (or the quantizer centroids) it is frozen
    with pytest.raises(RuntimeError):
        v.quantizer.add(cent[:1])
    w = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(D), D, 32)
    w.quantizer.add(cent)
    with pytest.raises(RuntimeError):
        w.quantizer.add(cent)


@pytest.mark.parametrize("generate_ids", [True, False])
@pytest.mark.parametrize("qkind", ["flat", "hnsw"])
def test_shard_ivf_index_centroids_like_faiss(tmp_path, generate_ids, qkind):
    d, nlist, nc, shards = 8, 10, 60, 4
    cent = np.random.RandomState(4).rand(nc, d).astype("float32")
    fn = (lambda i, n: (3 * i) % n)
    made = {}
    for name, lib in (("v", vecdex), ("f", faiss)):
        q = lib.IndexFlatL2(d) if qkind == "flat" else lib.IndexHNSWFlat(d, 8)
        ix = lib.IndexIVFFlat(q, d, nlist)
        ix.quantizer.add(cent)
        tpl = str(tmp_path / (name + ".%d.index"))
        lib.shard_ivf_index_centroids(ix, shards, tpl, fn, generate_ids)
        made[name] = tpl
    for s in range(shards):
        sel = np.array([i for i in range(nc) if fn(i, shards) == s])
        for tpl in made.values():      # vecdex reads FAISS's shards too
            sh = vecdex.read_index(tpl % s)
            assert sh.quantizer.ntotal == len(sel)
            for j, i in enumerate(sel):
                np.testing.assert_array_equal(
                    sh.quantizer.reconstruct(int(i) if generate_ids else j),
                    cent[i])
        # and FAISS reads vecdex's
        fs = faiss.read_index(made["v"] % s)
        assert fs.quantizer.ntotal == len(sel)
    with pytest.raises(RuntimeError):
        vecdex.shard_ivf_index_centroids(
            vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, nlist), 2,
            str(tmp_path / "x.%d"))
    with pytest.raises(RuntimeError):
        vecdex.shard_ivf_index_centroids(_filled(d, nlist, cent), 2,
                                         str(tmp_path / "nofmt"))


def _filled(d, nlist, cent):
    ix = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, nlist)
    ix.quantizer.add(cent)
    return ix


@pytest.mark.parametrize("generate_ids", [True, False])
def test_shard_binary_ivf_index_centroids(tmp_path, generate_ids):
    d, nlist, nc, shards = 32, 10, 40, 3
    cent = np.random.RandomState(6).randint(256, size=(nc, d // 8)).astype("uint8")
    for name, lib in (("v", vecdex), ("f", faiss)):
        ix = lib.IndexBinaryIVF(lib.IndexBinaryFlat(d), d, nlist)
        ix.quantizer.add(cent)
        lib.shard_binary_ivf_index_centroids(
            ix, shards, str(tmp_path / (name + ".%d")), None, generate_ids)
    for s in range(shards):
        sel = np.arange(s, nc, shards)
        for name in "vf":
            sh = vecdex.read_index_binary(str(tmp_path / ("%s.%d" % (name, s))))
            for j, i in enumerate(sel):
                np.testing.assert_array_equal(
                    sh.quantizer.reconstruct(int(i) if generate_ids else j),
                    cent[i])
        fs = faiss.read_index_binary(str(tmp_path / ("v.%d" % s)))
        assert fs.quantizer.ntotal == len(sel)


def test_parallel_mode_no_heap_init_accumulates(data):
    """FAISS's sequential scan: search_preassigned over blocks of lists into
    one ResultHeap equals a plain search."""
    v, f, _ = trained_pair(data, nlist=32, nprobe=8)
    xq, k = data[2], 9
    assert v.parallel_mode == 0
    v.parallel_mode = 1          # kept; results unchanged
    np.testing.assert_array_equal(v.search(xq, k)[1], f.search(xq, k)[1])
    ref_D, ref_I = v.search(xq, k)
    Dq, Iq = v.quantizer.search(xq, v.nprobe)
    rh = vecdex.ResultHeap(len(xq), k)
    v.parallel_mode |= v.PARALLEL_MODE_NO_HEAP_INIT
    assert v.PARALLEL_MODE_NO_HEAP_INIT == f.PARALLEL_MODE_NO_HEAP_INIT
    for l0 in range(0, 32, 5):
        sub = Iq.copy()
        sub[(Iq < l0) | (Iq >= l0 + 5)] = -1
        v.search_preassigned(xq, k, sub, Dq, D=rh.D, I=rh.I)
    rh.finalize()
    np.testing.assert_array_equal(rh.I, ref_I)
    np.testing.assert_array_equal(rh.D, ref_D)
    # without the flag D / I are overwritten
    v.parallel_mode = 0
    D2 = np.zeros((len(xq), k), "float32")
    I2 = np.zeros((len(xq), k), "int64")
    v.search_preassigned(xq, k, Iq, Dq, D=D2, I=I2)
    np.testing.assert_array_equal(I2, ref_I)
