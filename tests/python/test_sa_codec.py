"""Every index as a standalone codec (sa_code_size / sa_encode / sa_decode /
add_sa_codes), compared with faiss's codes on the same trained state and
with what the index itself stores and reconstructs."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")

D = 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return (rng.random((3000, D), dtype="float32"),
            rng.random((400, D), dtype="float32"))


def transfer(ix):
    """A faiss index in the same trained state, through FAISS's format."""
    return faiss.deserialize_index(vecdex.serialize_index(ix))


KEYS = ["Flat", "SQ8", "SQ4", "SQfp16", "LSH", "LSHrt", "PQ4np", "PQ8x4np",
        "IVF16,Flat", "IVF300,SQ8", "IVF16,PQ4np", "PCAR16,IVF16,SQ8",
        "PQ4np,Refine(SQ8)", "PCA16,Flat"]


@pytest.mark.parametrize("key", KEYS)
def test_codes_as_faiss(data, key):
    """The same bytes as faiss's sa_encode of the same index, and decodes
    that agree."""
    xt, xb = data
    ix = vecdex.index_factory(D, key)
    ix.train(xt)
    ref = transfer(ix)
    assert ix.sa_code_size() == ref.sa_code_size()
    c = ix.sa_encode(xb)
    cr = ref.sa_encode(xb)
    assert c.shape == (len(xb), ref.sa_code_size()) and c.dtype == np.uint8
    if key.startswith("PCA") and key.endswith(",Flat"):
        # float codes of transformed vectors: equal up to rounding
        np.testing.assert_allclose(c.view("float32"), cr.view("float32"),
                                   rtol=1e-4, atol=1e-5)
    else:
        # float rounding in transforms / distances may flip a rare tie
        assert (c != cr).any(axis=1).mean() <= 0.02
    np.testing.assert_allclose(ix.sa_decode(cr), ref.sa_decode(cr),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("key", ["Flat", "SQ8", "PQ4np", "LSH", "IVF16,Flat",
                                 "IVF16,PQ4np", "IVF16,SQ8"])
def test_codes_are_what_add_stores(data, key):
    """add_sa_codes(sa_encode(x)) builds the index add(x) builds: the same
    search results and reconstructions."""
    xt, xb = data
    a = vecdex.index_factory(D, key)
    a.train(xt)
    b = vecdex.deserialize_index(vecdex.serialize_index(a))
    a.add(xb)
    b.add_sa_codes(a.sa_encode(xb))
    assert b.ntotal == a.ntotal
    for ix in (a, b):
        if hasattr(ix, "nprobe"):
            ix.nprobe = 4
    Da, Ia = a.search(xb[:30], 5)
    Db, Ib = b.search(xb[:30], 5)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)
    if "IVF" not in key and "LSH" not in key:
        np.testing.assert_allclose(a.reconstruct_n(0, 50),
                                   a.sa_decode(a.sa_encode(xb[:50])),
                                   rtol=1e-6, atol=1e-6)


def test_ivf_list_numbers(data):
    """IVF codes open with the vector's nearest centroid, little endian on
    ceil(log256(nlist)) bytes."""
    xt, xb = data
    ix = vecdex.index_factory(D, "IVF300,Flat")
    ix.train(xt)
    c = ix.sa_encode(xb)
    assert ix.sa_code_size() == 2 + 4 * D
    cent = ix.quantizer.reconstruct_n(0, 300)
    d2 = ((xb[:, None, :].astype("f8") - cent[None]) ** 2).sum(-1)
    lists = c[:, 0].astype(int) | (c[:, 1].astype(int) << 8)
    best = d2[np.arange(len(xb)), lists]
    assert np.all(best <= d2.min(1) + 1e-5)
    np.testing.assert_array_equal(c[:, 2:].view("float32"), xb)


def test_idmap_add_sa_codes(data):
    xt, xb = data
    ids = np.arange(len(xb), dtype="int64") * 7 + 3
    for key in ("IDMap2,PQ4np", "IDMap,IVF16,Flat"):
        ref = vecdex.index_factory(D, key)
        ref.train(xt)
        ref.add_with_ids(xb, ids)
        ix = vecdex.index_factory(D, key)
        ix.train(xt)
        ix.add_sa_codes(ix.index.sa_encode(xb), ids)
        Dr, Ir = ref.search(xb[:20], 5)
        Dn, In = ix.search(xb[:20], 5)
        np.testing.assert_array_equal(Ir, In)
        np.testing.assert_array_equal(Dr, Dn)
        with pytest.raises(ValueError):
            ix.add_sa_codes(ix.index.sa_encode(xb[:3]))  # ids required


def test_codec_errors(data):
    xt, xb = data
    pq = vecdex.IndexPQ(D, 4, 8)
    with pytest.raises(RuntimeError, match="not trained"):
        pq.sa_encode(xb[:2])
    pq.train(xt)
    with pytest.raises(ValueError):
        pq.sa_decode(np.zeros((2, 5), "uint8"))  # code size is 4
    with pytest.raises(ValueError):
        pq.sa_encode(np.full((1, D), np.nan, "float32"))
    with pytest.raises(RuntimeError):  # ids on a positional kind
        pq.add_sa_codes(pq.sa_encode(xb[:2]), np.arange(2))
    ivf = vecdex.index_factory(D, "IVF16,Flat")
    ivf.train(xt)
    bad = ivf.sa_encode(xb[:2])
    bad[1, 0] = 200  # list 200 of 16
    with pytest.raises(ValueError, match="list"):
        ivf.sa_decode(bad)
    with pytest.raises(ValueError, match="list"):
        ivf.add_sa_codes(bad)
    assert ivf.ntotal == 0
    h = vecdex.IndexHNSWFlat(D, 8)
    with pytest.raises(RuntimeError, match="standalone codec"):
        h.sa_encode(xb[:2])
