"""cvar.indexIVF_stats / hnsw_stats, the `codes` attribute of flat-code
indexes and reconstruct_batch, against FAISS and against counts made here."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")

D = 24


def data(n, seed):
    return np.random.RandomState(seed).rand(n, D).astype("float32")


def ivf_pair(nlist=16, nb=3000):
    """The same IVF-Flat in both libraries: vecdex's centroids copied."""
    xt, xb = data(3000, 1), data(nb, 2)
    ours = vecdex.index_factory(D, "IVF%d,Flat" % nlist)
    ours.train(xt)
    ours.add(xb)
    cent = ours.quantizer.reconstruct_n(0, nlist)
    q = faiss.IndexFlatL2(D)
    q.add(cent)
    ref = faiss.IndexIVFFlat(q, D, nlist)
    ref.is_trained = True
    ref.add(xb)
    return ours, ref, cent


def probed(ours, xq, nprobe, max_codes=0):
    """(nlist, ndis) counted from the lists each query probes."""
    _, cl = ours.quantizer.search(xq, nprobe)
    sizes = [ours.invlists.list_size(int(l)) for l in range(ours.nlist)]
    nl = nd = 0
    for row in cl:
        scanned = 0
        for l in row:
            if max_codes and scanned >= max_codes:
                break
            use = sizes[l] if not max_codes else min(sizes[l], max_codes - scanned)
            scanned += use
            nl += sizes[l] > 0
            nd += use
    return nl, nd


@pytest.mark.parametrize("nq", [1, 40, 300])  # the three search paths
def test_ivf_stats_match_faiss(nq):
    ours, ref, _ = ivf_pair()
    xq = data(nq, 3)
    got = []
    for lib, index in ((vecdex, ours), (faiss, ref)):
        index.nprobe = 5
        st = lib.cvar.indexIVF_stats
        st.reset()
        index.search(xq, 10)
        got.append((st.nq, st.nlist, st.ndis))
        assert st.search_time >= 0 and st.quantization_time >= 0
    assert got[0] == got[1]
    assert got[0][1:] == probed(ours, xq, 5)
    st = vecdex.cvar.indexIVF_stats
    assert 10 * nq <= st.nheap_updates <= st.ndis
    st.reset()
    assert (st.nq, st.nlist, st.ndis, st.nheap_updates) == (0, 0, 0, 0)


def test_ivf_stats_max_codes_like_faiss():
    """FAISS scans only what is left of max_codes in the last list."""
    ours, ref, _ = ivf_pair()
    xq = data(30, 4)
    got = []
    for lib, index in ((vecdex, ours), (faiss, ref)):
        st = lib.cvar.indexIVF_stats
        for q in range(len(xq)):
            st.reset()
            params = lib.SearchParametersIVF(nprobe=8, max_codes=250)
            index.search(xq[q:q + 1], 10, params=params)
            assert st.ndis <= 250
            got.append(st.ndis)
    assert got[:30] == got[30:]
    st = vecdex.cvar.indexIVF_stats
    st.reset()
    ours.search(xq, 10, params=vecdex.SearchParametersIVF(nprobe=8, max_codes=250))
    assert st.ndis == probed(ours, xq, 8, 250)[1]


def test_ivf_stats_selector_and_range():
    ours, ref, _ = ivf_pair()
    xq = data(200, 5)
    st = vecdex.cvar.indexIVF_stats
    ours.nprobe = 16
    st.reset()
    ours.search(xq, 10)
    full = st.ndis
    assert full == len(xq) * ours.ntotal
    sel = vecdex.IDSelectorBatch(np.arange(0, ours.ntotal, 2).astype("int64"))
    st.reset()
    ours.search(xq, 10, params=vecdex.SearchParametersIVF(nprobe=16, sel=sel))
    assert st.ndis == len(xq) * ((ours.ntotal + 1) // 2)
    # range search: every code of the probed lists, as FAISS counts
    got = []
    for lib, index in ((vecdex, ours), (faiss, ref)):
        index.nprobe = 4
        s = lib.cvar.indexIVF_stats
        s.reset()
        index.range_search(xq[:50], 1.0)
        got.append((s.nq, s.nlist, s.ndis))
    assert got[0] == got[1]


def test_fastscan_ivf_stats():
    xt, xb, xq = data(3000, 1), data(3000, 2), data(50, 3)
    ours = vecdex.index_factory(D, "IVF16,PQ12x4fs")
    ours.train(xt)
    ours.add(xb)
    ours.nprobe = 3
    st = vecdex.cvar.indexIVF_stats
    st.reset()
    ours.search(xq, 5)
    assert st.nq == 50
    assert (st.nlist, st.ndis) == probed(ours, xq, 3)


def test_hnsw_stats():
    xb, xq = data(2000, 1), data(30, 2)
    for lib in (vecdex, faiss):
        index = lib.IndexHNSWFlat(D, 16)
        index.add(xb)
        st = lib.cvar.hnsw_stats
        st.reset()
        index.search(xq, 1)
        # every walk scores at least efSearch nodes' neighbours
        assert st.ndis > len(xq) * index.hnsw.efSearch
        assert st.nhops >= len(xq)
        st.reset()
        assert st.ndis == 0


@pytest.mark.parametrize("key", ["Flat", "SQ8", "SQfp16", "LSH", "PQ6x8"])
def test_codes_match_faiss(key):
    xt, xb = data(2000, 1), data(100, 2)
    ours = vecdex.index_factory(D, key)
    ours.train(xt)
    ours.add(xb)
    # the same codes in FAISS: through its reader, which must agree
    ref = faiss.deserialize_index(vecdex.serialize_index(ours))
    a = vecdex.vector_to_array(ours.codes)
    b = faiss.vector_to_array(ref.codes)
    assert a.dtype == np.uint8 and a.shape == (ours.ntotal * ours.code_size,)
    assert ours.code_size == ref.code_size
    np.testing.assert_array_equal(a, b)
    if key == "Flat":
        np.testing.assert_array_equal(a.view("float32").reshape(-1, D), xb)
    # a copy: it follows later changes only when read again
    ours.remove_ids(np.arange(0, 100, 2).astype("int64"))
    assert ours.codes.shape == (50 * ours.code_size,)
    np.testing.assert_array_equal(ours.codes.reshape(-1, ours.code_size),
                                  b.reshape(-1, ref.code_size)[1::2])


def test_codes_absent_elsewhere():
    ours = vecdex.index_factory(D, "IVF4,Flat")
    assert not hasattr(ours, "codes")
    assert not hasattr(faiss.index_factory(D, "IVF4,Flat"), "codes")


def test_reconstruct_batch():
    xt, xb = data(2000, 1), data(500, 2)
    keys = np.array([7, 0, 499, 7], dtype="int64")
    for key in ["Flat", "PQ6x4fs", "SQ8"]:
        ours = vecdex.index_factory(D, key)
        ours.train(xt)
        ours.add(xb)
        ref = faiss.deserialize_index(vecdex.serialize_index(ours))
        r = ours.reconstruct_batch(keys)
        assert r.shape == (4, D) and r.dtype == np.float32
        np.testing.assert_allclose(r, ref.reconstruct_batch(keys), atol=1e-6)
        np.testing.assert_array_equal(r[1], ours.reconstruct(0))
    ivf = vecdex.index_factory(D, "IVF8,Flat")
    ivf.train(xt)
    ivf.add(xb)
    with pytest.raises(RuntimeError, match="direct map"):
        ivf.reconstruct_batch(keys)
    ivf.make_direct_map()
    np.testing.assert_array_equal(ivf.reconstruct_batch(keys), xb[keys])
    with pytest.raises(RuntimeError, match="500"):
        ivf.reconstruct_batch(np.array([1, 500]))
    with pytest.raises(ValueError):
        ivf.reconstruct_batch(np.zeros((2, 2), dtype="int64"))


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,SQ8", "IVF16,PQ6"])
def test_search_preassigned_matches_search_and_faiss(key):
    from vecdex.contrib import ivf_tools
    xt, xb, xq = data(3000, 1), data(3000, 2), data(60, 3)
    ours = vecdex.index_factory(D, key)
    ours.train(xt)
    ours.add(xb)
    ours.nprobe = 4
    Dq, Iq = ours.quantizer.search(xq, 4)
    Dr, Ir = ours.search(xq, 10)
    D1, I1 = ours.search_preassigned(xq, 10, Iq, Dq)
    D2, I2 = ivf_tools.search_preassigned(ours, xq, 10, Iq)  # no Dq
    np.testing.assert_array_equal(I1, Ir)
    np.testing.assert_array_equal(I2, Ir)
    np.testing.assert_array_equal(D1, Dr)
    # FAISS on the same index (read from vecdex's file), same lists
    ref = faiss.deserialize_index(vecdex.serialize_index(ours))
    Df, If = ref.search_preassigned(xq, 10, Iq, Dq)
    assert (If != I1).mean() < 0.01
    np.testing.assert_allclose(Df, D1, rtol=1e-4, atol=1e-4)
    # other lists than the quantizer's: the nearest within those lists only
    lists = np.tile(np.array([[3, 1]], dtype="int64"), (len(xq), 1))
    D3, I3 = ours.search_preassigned(xq, 5, lists, None)
    members = set()
    for l in (1, 3):
        members |= set(ours.invlists.get_ids(l).tolist())
    assert set(I3.ravel().tolist()) <= members
    with pytest.raises(RuntimeError, match="outside"):
        ours.search_preassigned(xq, 5, lists + 100, None)
    with pytest.raises(ValueError):
        ours.search_preassigned(xq, 5, lists[:3], None)
