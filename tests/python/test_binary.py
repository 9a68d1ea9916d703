"""Binary indexes (vecdex/_binary*.py over src/index/binary) against faiss
and against a brute force computed here with numpy; files written by each
library read by the other; hostile files."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")
if getattr(faiss, "__name__", "") == "vecdex":  # the suite's shim
    pytest.skip("needs the real faiss", allow_module_level=True)

LEVELS = [lv for lv in ("scalar", "avx2", "avx512")
          if vecdex.simd_level_available(lv)]


def brute(xq, xb):
    bq = np.unpackbits(xq, axis=1).astype(np.int32)
    bb = np.unpackbits(xb, axis=1).astype(np.int32)
    return (bq[:, None, :] != bb[None, :, :]).sum(2)


def data(cs, nb=1200, nq=40, nt=300, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.randint(256, size=(nb + nq + nt, cs)).astype(np.uint8)
    return x[:nt], x[nt:nt + nb], x[nt + nb:]


@pytest.fixture(params=LEVELS)
def level(request):
    vecdex.set_simd_level(request.param)
    yield request.param
    vecdex.set_simd_level(None)


@pytest.mark.parametrize("cs", [1, 4, 8, 12, 16, 32, 40, 64, 65, 128])
def test_flat_vs_brute_and_faiss(level, cs):
    _, xb, xq = data(cs)
    ix = vecdex.IndexBinaryFlat(8 * cs)
    ix.add(xb)
    D, I = ix.search(xq, 10)
    ref = brute(xq, xb)
    # ties by id: a stable sort of the brute-force distances
    o = np.argsort(ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(I, o)
    np.testing.assert_array_equal(D, np.take_along_axis(ref, o, 1))
    fi = faiss.IndexBinaryFlat(8 * cs)
    fi.add(xb)
    Df, If = fi.search(xq, 10)
    np.testing.assert_array_equal(D, Df)
    np.testing.assert_array_equal(I, If)
    np.testing.assert_array_equal(vecdex.hamming_distances(xq, xb), ref)


def test_range_search_vs_faiss():
    _, xb, xq = data(8)
    ix, fi = vecdex.IndexBinaryFlat(64), faiss.IndexBinaryFlat(64)
    ix.add(xb)
    fi.add(xb)
    for r in (0, 20, 25, 65):
        got, ref = ix.range_search(xq, r), fi.range_search(xq, r)
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)
    lims, D, I = ix.range_search(xq, 25)
    assert 0 < lims[-1] < len(xq) * len(xb)
    assert D.dtype == np.int32 and I.dtype == np.int64


def test_flat_empty_reconstruct_remove():
    _, xb, xq = data(4)
    ix = vecdex.IndexBinaryFlat(32)
    D, I = ix.search(xq, 5)
    assert (I == -1).all() and (D == 2147483647).all()
    ix.add(xb)
    np.testing.assert_array_equal(ix.reconstruct(7), xb[7])
    np.testing.assert_array_equal(ix.reconstruct_n(3, 4), xb[3:7])
    with pytest.raises(RuntimeError):
        ix.reconstruct(len(xb))
    n = ix.remove_ids(vecdex.IDSelectorRange(0, 100))
    assert n == 100 and ix.ntotal == len(xb) - 100
    np.testing.assert_array_equal(ix.reconstruct(0), xb[100])
    ix.reset()
    assert ix.ntotal == 0


def test_bad_input():
    ix = vecdex.IndexBinaryFlat(32)
    with pytest.raises(AssertionError):
        ix.add(np.zeros((3, 5), np.uint8))
    with pytest.raises(AssertionError):
        ix.search(np.zeros((3, 4), np.uint8), 0)
    with pytest.raises(RuntimeError):
        vecdex.IndexBinaryFlat(33)
    with pytest.raises(TypeError):
        ix.add(np.full((2, 4), 300))
    assert ix.ntotal == 0


def test_idmap_vs_faiss():
    _, xb, xq = data(8)
    ids = np.random.RandomState(1).choice(10 ** 6, len(xb), replace=False)
    out = []
    for lib in (vecdex, faiss):
        ix = lib.IndexBinaryIDMap2(lib.IndexBinaryFlat(64))
        ix.add_with_ids(xb, ids)
        ix.remove_ids(np.array(ids[:50], dtype=np.int64)
                      if lib is vecdex else lib.IDSelectorBatch(ids[:50]))
        out.append(ix.search(xq, 7) + (ix.reconstruct(int(ids[60])),))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_ivf_equals_faiss():
    xt, xb, xq = data(4)
    res = []
    for lib in (vecdex, faiss):
        ix = lib.IndexBinaryIVF(lib.IndexBinaryFlat(32), 32, 8)
        ix.cp.min_points_per_centroid = 5
        ix.nprobe = 3
        ix.train(xt)
        ix.add(xb)
        res.append(ix.search(xq, 10) + ix.range_search(xq, 9)[:1])
    # same k-means, same lists, same heap: identical, ties included
    for a, b in zip(res[0], res[1]):
        np.testing.assert_array_equal(a, b)


def test_ivf_exhaustive_is_flat():
    xt, xb, xq = data(8)
    ix = vecdex.index_binary_factory(64, "BIVF10")
    ix.train(xt)
    ix.add(xb)
    ix.nprobe = 100
    fl = vecdex.IndexBinaryFlat(64)
    fl.add(xb)
    np.testing.assert_array_equal(ix.search(xq, 5)[0], fl.search(xq, 5)[0])


@pytest.mark.parametrize("nflip", [0, 1, 2])
def test_hash_equals_faiss(nflip):
    _, xb, xq = data(8, nb=3000)
    res = []
    for lib in (vecdex, faiss):
        ix = lib.IndexBinaryHash(64, 12)
        ix.nflip = nflip
        ix.add(xb)
        res.append(ix.search(xq, 10))
    for a, b in zip(res[0], res[1]):
        np.testing.assert_array_equal(a, b)


def test_multihash_distances_equal_faiss():
    _, xb, xq = data(8, nb=3000)
    res = []
    for lib in (vecdex, faiss):
        ix = lib.IndexBinaryMultiHash(64, 4, 10)
        ix.nflip = 1
        ix.add(xb)
        res.append(ix.search(xq, 10)[0])
    np.testing.assert_array_equal(res[0], res[1])


def test_hnsw_exact_distances_and_recall():
    _, xb, xq = data(4)
    ix = vecdex.IndexBinaryHNSW(32, 16)
    ix.add(xb)
    D, I = ix.search(xq, 3)
    ref = brute(xq, xb)
    np.testing.assert_array_equal(D, np.take_along_axis(ref, I, 1))
    assert (D[:, 0] == ref.min(1)).mean() > 0.9


def _all_kinds():
    xt, xb, _ = data(4)
    out = []
    for lib in (vecdex, faiss):
        f = lib.IndexBinaryFlat(32)
        f.add(xb)
        ivf = lib.IndexBinaryIVF(lib.IndexBinaryFlat(32), 32, 8)
        ivf.cp.min_points_per_centroid = 5
        ivf.train(xt)
        ivf.add(xb)
        ivf.nprobe = 2
        idm = lib.IndexBinaryIDMap(lib.IndexBinaryFlat(32))
        idm.add_with_ids(xb, np.arange(len(xb)) * 3 + 1)
        hs = lib.IndexBinaryHash(32, 10)
        hs.add(xb)
        mh = lib.IndexBinaryMultiHash(32, 3, 8)
        mh.add(xb)
        hn = lib.IndexBinaryHNSW(32, 8)
        hn.add(xb)
        ff = lib.IndexBinaryFromFloat(lib.IndexFlatL2(32))
        ff.add(xb)
        out.append([f, ivf, idm, hs, mh, hn, ff])
    return out


@pytest.mark.parametrize("kind", range(7))
def test_files_both_directions(kind):
    _, _, xq = data(4)
    v, f = (lst[kind] for lst in _all_kinds())
    # faiss writes, vecdex reads; vecdex writes, faiss reads
    v2 = vecdex.deserialize_index_binary(faiss.serialize_index_binary(f))
    f2 = faiss.deserialize_index_binary(vecdex.serialize_index_binary(v))
    Df, If = f.search(xq, 5)
    Dv, Iv = v.search(xq, 5)
    D2, I2 = v2.search(xq, 5)
    D3, I3 = f2.search(xq, 5)
    np.testing.assert_array_equal(D2[:, 0], Df[:, 0])
    np.testing.assert_array_equal(D3[:, 0], Dv[:, 0])
    if kind not in (4, 5):  # multi-hash / HNSW ties and walks may differ
        np.testing.assert_array_equal(I2, If)
        np.testing.assert_array_equal(I3, Iv)
    # and vecdex's bytes are FAISS's bytes for the deterministic kinds
    if kind in (0, 2):
        np.testing.assert_array_equal(vecdex.serialize_index_binary(v2),
                                      faiss.serialize_index_binary(f))


def test_write_read_file(tmp_path):
    _, xb, xq = data(4)
    ix = vecdex.IndexBinaryFlat(32)
    ix.add(xb)
    p = str(tmp_path / "b.index")
    vecdex.write_index_binary(ix, p)
    f = faiss.read_index_binary(p)
    np.testing.assert_array_equal(f.search(xq, 4)[1], ix.search(xq, 4)[1])
    faiss.write_index_binary(f, p)
    np.testing.assert_array_equal(vecdex.read_index_binary(p).search(xq, 4)[1],
                                  ix.search(xq, 4)[1])


def test_hostile_files():
    """Truncations and byte mutations of every kind: a RuntimeError (or a
    readable index), never a crash, a hang or a giant allocation."""
    rs = np.random.RandomState(7)
    for v in _all_kinds()[0]:
        blob = vecdex.serialize_index_binary(v)
        for cut in sorted(set(rs.randint(0, len(blob), 40).tolist()
                              + [0, 3, 4, 20, len(blob) - 1])):
            with pytest.raises(RuntimeError):
                vecdex.deserialize_index_binary(blob[:cut])
        for _ in range(60):
            m = blob.copy()
            for pos in rs.randint(0, min(len(m), 200), 3):
                m[pos] = rs.randint(256)
            try:
                vecdex.deserialize_index_binary(m)
            except (RuntimeError, ValueError):
                pass
    # a huge claimed size fails before allocating
    bad = bytearray(vecdex.serialize_index_binary(_all_kinds()[0][0]))
    bad[25:33] = (2 ** 62).to_bytes(8, "little")
    with pytest.raises(RuntimeError, match="claims|entries|expected"):
        vecdex.deserialize_index_binary(np.frombuffer(bytes(bad), np.uint8))


def test_factory():
    assert isinstance(vecdex.index_binary_factory(16, "BFlat"),
                      vecdex.IndexBinaryFlat)
    ix = vecdex.index_binary_factory(256, "BIVF64_BHNSW16")
    assert ix.nlist == 64 and isinstance(ix.quantizer, vecdex.IndexBinaryHNSW)
    mh = vecdex.index_binary_factory(256, "BHash5x6")
    assert (mh.nhash, mh.b) == (5, 6)
    assert isinstance(vecdex.index_binary_factory(16, "IDMap,BFlat"),
                      vecdex.IndexBinaryIDMap)
    for bad in ("BFoo", "BIVF0", "BFlat,BFlat", ""):
        with pytest.raises(ValueError):
            vecdex.index_binary_factory(64, bad)
    with pytest.raises(ValueError):
        vecdex.index_binary_factory(12, "BFlat")


def test_knn_hamming_helper():
    _, xb, xq = data(16)
    D, I = vecdex.knn_hamming(xq, xb, 6)
    ref = brute(xq, xb)
    o = np.argsort(ref, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(I, o)
    np.testing.assert_array_equal(D, np.take_along_axis(ref, o, 1))
