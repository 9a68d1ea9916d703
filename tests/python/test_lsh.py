"""IndexLSH against FAISS: codes identical to faiss's sa_encode without
rotation (same data, thresholds trained or not), FAISS-written files read
with identical codes and search results (rotation included), vecdex-written
files read by FAISS, Hamming search against brute force, and bad input."""
import itertools

import numpy as np
import pytest

import vecdex

EMPTY = np.float32(2147483647)


def data(rng, n, d):
    return (rng.random((n, d), dtype=np.float32) - 0.5).astype(np.float32)


def hamming(a, b):
    """(na, nb) Hamming distances between uint8 code arrays."""
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(2)


def check_search(D, I, qcodes, dbcodes, k):
    """Each row sorted by (distance, id), nothing better missed."""
    H = hamming(qcodes, dbcodes)
    for q in range(len(qcodes)):
        order = np.lexsort((np.arange(H.shape[1]), H[q]))[:k]
        np.testing.assert_array_equal(I[q, :len(order)], order)
        np.testing.assert_array_equal(D[q, :len(order)],
                                      H[q, order].astype(np.float32))


def same_as_faiss(D, I, fD, fI):
    """Identical distances; ids identical up to ties at the last distance
    (FAISS's heap does not order ties by id)."""
    np.testing.assert_array_equal(D, fD)
    for q in range(len(D)):
        last = D[q, -1]
        assert set(I[q][D[q] < last]) == set(fI[q][fD[q] < last])


@pytest.mark.parametrize("tt", [False, True])
@pytest.mark.parametrize("nbits", [1, 7, 8, 13, 32, 64])
@pytest.mark.parametrize("ntrain", [301, 400])
def test_codes_without_rotation_equal_faiss(faiss_ref, rng, tt, nbits,
                                            ntrain):
    d = 64
    xt, xq = data(rng, ntrain, d), data(rng, 200, d)
    f = faiss_ref.IndexLSH(d, nbits, False, tt)
    v = vecdex.IndexLSH(d, nbits, rotate_data=False, train_thresholds=tt)
    assert (v.nbits, v.rotate_data, v.train_thresholds) == (nbits, False, tt)
    assert v.is_trained == (not tt)
    f.train(xt)
    v.train(xt)
    assert v.code_size == f.code_size == (nbits + 7) // 8
    if tt:
        np.testing.assert_array_equal(
            v.thresholds, faiss_ref.vector_to_array(f.thresholds))
    for x in (xt, xq):
        np.testing.assert_array_equal(v.sa_encode(x), f.sa_encode(x))
    f.add(xt)
    v.add(xt)
    fD, fI = f.search(xq, 10)
    D, I = v.search(xq, 10)
    same_as_faiss(D, I, fD, fI)
    check_search(D, I, v.sa_encode(xq), v.sa_encode(xt), 10)


CONFIGS = list(itertools.product([False, True], [False, True]))


@pytest.mark.parametrize("rot,tt", CONFIGS)
def test_faiss_file_read_by_vecdex(faiss_ref, rng, tmp_path, rot, tt):
    d, nbits = 32, (48 if rot else 24)
    xt, xq = data(rng, 1000, d), data(rng, 50, d)
    f = faiss_ref.IndexLSH(d, nbits, rot, tt)
    f.train(xt)
    f.add(xt)
    path = str(tmp_path / "lsh.faiss")
    faiss_ref.write_index(f, path)
    v = vecdex.read_index(path)
    assert type(v) is vecdex.IndexLSH
    assert (v.nbits, v.rotate_data, v.train_thresholds) == (nbits, rot, tt)
    assert v.ntotal == 1000 and v.is_trained
    fq = f.sa_encode(xq)
    vq = v.sa_encode(xq)
    # rotation: float rounding may flip a bit within ~1e-7 of its threshold
    flips = np.unpackbits(fq ^ vq).sum()
    assert flips == 0 if not rot else flips <= 2
    fD, fI = f.search(xq, 10)
    D, I = v.search(xq, 10)
    if flips == 0:
        same_as_faiss(D, I, fD, fI)
    # the stored codes are FAISS's own
    check_search(D, I, vq, f.sa_encode(xt), 10)
    # byte-identical round trip
    assert bytes(vecdex.serialize_index(v)) == bytes(
        faiss_ref.serialize_index(f))


@pytest.mark.parametrize("rot,tt", CONFIGS)
def test_vecdex_file_read_by_faiss(faiss_ref, rng, tmp_path, rot, tt):
    d, nbits = 24, (40 if rot else 16)
    xt, xq = data(rng, 501, d), data(rng, 40, d)
    v = vecdex.IndexLSH(d, nbits, rot, tt)
    v.train(xt)
    v.add(xt)
    path = str(tmp_path / "lsh.vecdex")
    vecdex.write_index(v, path)
    f = faiss_ref.read_index(path)
    assert isinstance(f, faiss_ref.IndexLSH)
    assert (f.nbits, f.rotate_data, f.train_thresholds) == (nbits, rot, tt)
    assert f.ntotal == 501
    flips = np.unpackbits(f.sa_encode(xq) ^ v.sa_encode(xq)).sum()
    assert flips == 0 if not rot else flips <= 2
    D, I = v.search(xq, 8)
    fD, fI = f.search(xq, 8)
    if flips == 0:
        same_as_faiss(D, I, fD, fI)
    check_search(D, I, v.sa_encode(xq), v.sa_encode(xt), 8)


def test_empty_slots_selectors_remove(rng):
    d = 16
    xb = data(rng, 6, d)
    v = vecdex.IndexLSH(d, 16, False)
    v.add(xb)
    D, I = v.search(xb[:1], 8)
    assert list(I[0, 6:]) == [-1, -1] and list(D[0, 6:]) == [EMPTY, EMPTY]
    p = vecdex.SearchParameters(sel=vecdex.IDSelectorRange(2, 4))
    D, I = v.search(xb[:1], 3, params=p)
    assert sorted(I[0, :2]) == [2, 3] and I[0, 2] == -1
    codes = v.sa_encode(xb)
    assert v.remove_ids(np.array([0, 3], dtype=np.int64)) == 2
    assert v.ntotal == 4
    D, I = v.search(xb, 1)
    check_search(D, I, codes, codes[[1, 2, 4, 5]], 1)
    v.reset()
    assert v.ntotal == 0


def test_bad_input(rng):
    with pytest.raises(ValueError):
        vecdex.IndexLSH(0, 8)
    with pytest.raises(ValueError):
        vecdex.IndexLSH(8, 9, rotate_data=False)
    v = vecdex.IndexLSH(8, 8, train_thresholds=True)
    with pytest.raises(RuntimeError):
        v.add(data(rng, 3, 8))
    with pytest.raises(RuntimeError):
        v.sa_encode(data(rng, 3, 8))
    with pytest.raises(AssertionError):
        v.sa_encode(data(rng, 3, 7))
    x = data(rng, 3, 8)
    x[1, 2] = np.nan
    with pytest.raises(ValueError):
        v.train(x)


@pytest.mark.parametrize("desc", ["LSH", "LSHr", "LSHt", "LSHrt", "LSH16",
                                  "LSH48rt", "IDMap,LSH"])
def test_factory_like_faiss(faiss_ref, rng, desc):
    d = 32
    xt, xq = data(rng, 300, d), data(rng, 20, d)
    f = faiss_ref.index_factory(d, desc)
    v = vecdex.index_factory(d, desc)
    fl = faiss_ref.downcast_index(f.index) if desc.startswith("IDMap") else f
    vl = v.index if desc.startswith("IDMap") else v
    assert (vl.nbits, vl.rotate_data, vl.train_thresholds) == (
        fl.nbits, fl.rotate_data, fl.train_thresholds)
    if not fl.rotate_data:
        f.train(xt)
        v.train(xt)
        np.testing.assert_array_equal(vl.sa_encode(xq), fl.sa_encode(xq))


@pytest.mark.parametrize("desc", ["LSHx", "LSH0", "LSHtr", "IVF4,LSH",
                                  "LSH,Flat", "LSH64"])
def test_factory_bad(desc):
    with pytest.raises(ValueError):
        vecdex.index_factory(32, desc)
    with pytest.raises(ValueError):
        vecdex.index_factory(32, "LSH", vecdex.METRIC_INNER_PRODUCT)


def test_same_rotation_as_faiss(faiss_ref):
    """IndexLSH draws FAISS's rotation for the same seed: faiss reads
    vecdex's file, and its rotation and codes are FAISS's own.  The rotation
    is orthogonalised by LAPACK, whose kernels (vecdex's OpenBLAS, faiss's
    bundled one, each picked per CPU) round differently: the matrices agree to
    float precision, not bit for bit, and a code bit may differ only where the
    projection is within rounding of the threshold."""
    x = np.random.default_rng(1).standard_normal((500, 24)).astype("float32")
    for nbits in (16, 24, 40):
        a = vecdex.IndexLSH(24, nbits, True, False)
        b = faiss_ref.IndexLSH(24, nbits, True, False)
        a.add(x)
        b.add(x)
        fa = faiss_ref.deserialize_index(
            np.frombuffer(bytes(vecdex.serialize_index(a)), dtype="uint8"))
        assert (fa.d, fa.nbits, fa.ntotal) == (24, nbits, 500)
        A = faiss_ref.vector_to_array(fa.rrot.A)
        B = faiss_ref.vector_to_array(b.rrot.A)
        np.testing.assert_allclose(A, B, rtol=0, atol=2e-6)
        ca = np.unpackbits(faiss_ref.vector_to_array(fa.codes), bitorder="little")
        cb = np.unpackbits(faiss_ref.vector_to_array(b.codes), bitorder="little")
        proj = (x @ B.reshape(nbits, 24).T).ravel()
        bits_per_row = fa.code_size * 8
        ca = ca.reshape(500, bits_per_row)[:, :nbits].ravel()
        cb = cb.reshape(500, bits_per_row)[:, :nbits].ravel()
        tie = np.abs(proj) < 1e-4
        assert np.array_equal(ca[~tie], cb[~tie])
