"""vecdex.index_factory and vecdex.knn, compared with faiss where faiss
is installed and with numpy otherwise."""
import numpy as np
import pytest

import vecdex

CASES = [
    ("Flat", vecdex.IndexFlatL2, None),
    ("IDMap,Flat", vecdex.IndexIDMap, vecdex.IndexFlatL2),
    ("IDMap2,Flat", vecdex.IndexIDMap2, vecdex.IndexFlatL2),
    ("IVF50,Flat", vecdex.IndexIVFFlat, None),
    ("IDMap,IVF50,Flat", vecdex.IndexIDMap, vecdex.IndexIVFFlat),
]


@pytest.mark.parametrize("desc,cls,sub", CASES)
def test_classes(desc, cls, sub):
    ix = vecdex.index_factory(12, desc)
    assert type(ix) is cls and ix.d == 12 and ix.ntotal == 0
    assert ix.metric_type == vecdex.METRIC_L2
    if sub is not None:
        assert type(ix.index) is sub
    ivf = ix if isinstance(ix, vecdex.IndexIVFFlat) else getattr(ix, "index", None)
    if isinstance(ivf, vecdex.IndexIVFFlat):
        assert ivf.nlist == 50
        assert type(ivf.quantizer) is vecdex.IndexFlatL2


def test_ip_metric():
    ix = vecdex.index_factory(8, "Flat", vecdex.METRIC_INNER_PRODUCT)
    assert type(ix) is vecdex.IndexFlatIP
    ix = vecdex.index_factory(8, "IVF4,Flat", metric=vecdex.METRIC_INNER_PRODUCT)
    assert ix.metric_type == vecdex.METRIC_INNER_PRODUCT
    assert type(ix.quantizer) is vecdex.IndexFlatIP


@pytest.mark.parametrize("desc,needle", [
    ("IVF100,PQ16x", "'PQ16x' at position 7"),
    ("", "position 0"),
    ("Flat,", "position 5"),
    ("IVF10", "'IVF10'"),
    (" Flat", "' Flat'"),
])
def test_bad_strings(desc, needle):
    with pytest.raises(ValueError) as e:
        vecdex.index_factory(8, desc)
    assert needle in str(e.value)
    assert isinstance(e.value, vecdex.InvalidArgumentError)


def test_factory_index_works():
    rs = np.random.RandomState(3)
    xb = rs.rand(3000, 16).astype("f4")
    ix = vecdex.index_factory(16, "IDMap,IVF20,Flat")
    ix.train(xb)
    ix.add_with_ids(xb, np.arange(3000) * 2 + 1)
    ix.index.nprobe = 20
    D, I = ix.search(xb[:10], 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(10) * 2 + 1)


def test_same_as_faiss():
    faiss = pytest.importorskip("faiss")
    for desc in ("Flat", "IDMap,Flat", "IDMap2,Flat", "IVF30,Flat",
                 "IDMap,IVF30,Flat"):
        a = vecdex.index_factory(10, desc)
        b = faiss.index_factory(10, desc)
        assert type(a).__name__ in (type(b).__name__, "IndexFlatL2")
        if hasattr(b, "nlist"):
            assert a.nlist == b.nlist


@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_knn(metric):
    rs = np.random.RandomState(5)
    xb = rs.rand(500, 8).astype("f4")
    xq = rs.rand(20, 8).astype("f4")
    D, I = vecdex.knn(xq, xb, 5, metric)
    if metric == vecdex.METRIC_L2:
        full = ((xq[:, None, :].astype("f8") - xb[None].astype("f8")) ** 2).sum(-1)
        ref = np.argsort(full, axis=1)[:, :5]
    else:
        full = xq.astype("f8") @ xb.T.astype("f8")
        ref = np.argsort(-full, axis=1)[:, :5]
    np.testing.assert_array_equal(I, ref)
    np.testing.assert_allclose(D, np.take_along_axis(full, ref, 1), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError):
        vecdex.knn(xq, xb[:, :4], 5)


@pytest.mark.parametrize("desc", ["HNSW", "HNSW,Flat", "HNSW_SQ8", "HNSW16",
                                  "HNSW,PQ4", "IVF8_HNSW,Flat",
                                  "Flat,IDMap", "Flat,IDMap2", "IDMap2,Flat",
                                  "IVF8,Flat,IDMap", "PCA8,Flat,IDMap2",
                                  "IDMap,HNSW"])
def test_factory_forms_as_faiss(desc):
    """HNSW without M (M = 32) and the IDMap suffix forms build what
    faiss's index_factory builds: the same class tree and parameters."""
    faiss = pytest.importorskip("faiss")
    a = vecdex.index_factory(16, desc)
    b = faiss.index_factory(16, desc)

    def tree(ix, lib):
        out = []
        while ix is not None:
            name = type(ix).__name__
            out.append("IndexFlat" if name.startswith("IndexFlat") else name)
            if hasattr(ix, "hnsw"):
                out.append(("M", ix.hnsw.nb_neighbors(1)))
            if hasattr(ix, "nlist"):
                out.append(("nlist", ix.nlist))
                q = lib.downcast_index(ix.quantizer)
                if hasattr(q, "hnsw"):
                    out.append(("quantizer M", q.hnsw.nb_neighbors(1)))
            sub = getattr(ix, "index", None)
            ix = None if sub is None else lib.downcast_index(sub)
        return out

    assert tree(a, vecdex) == tree(b, faiss)
