"""search_and_reconstruct, search_and_return_codes and copy_subset_to
(vecdex/_composite.py): an index built by faiss is read into vecdex, so
both hold the same lists, and each method's output is compared with
faiss's own on that index (and with brute force where it is exact)."""
import numpy as np
import pytest

import vecdex

real_faiss = pytest.importorskip("faiss")

D = 24


def _data(seed=0, nt=1500, nb=600, nq=20):
    rng = np.random.default_rng(seed)
    return (rng.random((nt, D), dtype="float32"),
            rng.random((nb, D), dtype="float32"),
            rng.random((nq, D), dtype="float32"))


def _pair(key, nprobe=4, seed=0):
    xt, xb, xq = _data(seed)
    ref = real_faiss.index_factory(D, key)
    ref.train(xt)
    ref.add(xb)
    ix = vecdex.deserialize_index(real_faiss.serialize_index(ref))
    if "IVF" in key:
        real_faiss.extract_index_ivf(ref).nprobe = nprobe
        vecdex.extract_index_ivf(ix).nprobe = nprobe
    return ref, ix, xb, xq


def _lists(index, mod):
    ivf = mod.extract_index_ivf(index)
    il = ivf.invlists
    out = []
    for l in range(ivf.nlist):
        n = il.list_size(l)
        if mod is real_faiss:
            ids = real_faiss.rev_swig_ptr(il.get_ids(l), n).copy()
            codes = real_faiss.rev_swig_ptr(il.get_codes(l),
                                            n * il.code_size).copy()
        else:
            ids = np.asarray(il.get_ids(l)).copy()
            codes = np.asarray(il.get_codes(l)).reshape(-1).copy()
        out.append((ids, codes))
    return out


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,PQ4np",
                                 "PCA12,IVF16,SQ8", "Flat"])
def test_search_and_reconstruct_matches_faiss(key):
    ref, ix, xb, xq = _pair(key)
    Dr, Ir, Rr = ref.search_and_reconstruct(xq, 7)
    Dv, Iv, Rv = ix.search_and_reconstruct(xq, 7)
    np.testing.assert_array_equal(Ir, Iv)
    np.testing.assert_allclose(Dr, Dv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Rr, Rv, rtol=1e-5, atol=1e-6)
    if key in ("IVF16,Flat", "Flat"):   # exact storage: the vectors back
        np.testing.assert_array_equal(Rv, xb[Iv])


def test_search_and_reconstruct_missing_results_are_nan():
    ref, ix, xb, xq = _pair("IVF16,Flat", nprobe=1)
    _, I, R = ix.search_and_reconstruct(xq, 200)
    assert (I == -1).any()
    assert np.isnan(R[I == -1]).all()
    assert not np.isnan(R[I >= 0]).any()


@pytest.mark.parametrize("key", ["IVF20,PQ4x4np", "IVF20,SQ8",
                                 "IVF300,Flat"])
@pytest.mark.parametrize("listnos", [False, True])
def test_search_and_return_codes_matches_faiss(key, listnos):
    ref, ix, xb, xq = _pair(key, nprobe=10)
    Dr, Ir, Cr = ref.search_and_return_codes(xq, 9, include_listnos=listnos)
    Dv, Iv, Cv = ix.search_and_return_codes(xq, 9, include_listnos=listnos)
    np.testing.assert_array_equal(Ir, Iv)
    np.testing.assert_array_equal(Cr, Cv)
    if listnos:   # the codes are sa codes: they decode to the results
        dec = ix.sa_decode(Cv[0])
        np.testing.assert_allclose(((xq[0] - dec) ** 2).sum(1), Dv[0],
                                   rtol=1e-4)


@pytest.mark.parametrize("key", ["IVF30,Flat", "IVF30,PQ4np"])
@pytest.mark.parametrize("subset_type,args", [
    (0, [(0, 200), (200, 450), (450, 10**9)]),
    (1, [(3, 0), (3, 1), (3, 2)]),
    (2, [(0, 200), (200, 400), (400, 600)]),
    (3, [(3, 0), (3, 1), (3, 2)]),
    (4, [(0, 10), (10, 20), (20, 30)])])
def test_copy_subset_to_matches_faiss(key, subset_type, args):
    ref, ix, xb, xq = _pair(key)
    total = 0
    for a1, a2 in args:
        r_sub = real_faiss.clone_index(ref)
        r_sub.reset()
        v_sub = vecdex.deserialize_index(real_faiss.serialize_index(r_sub))
        ref.copy_subset_to(r_sub, subset_type, a1, a2)
        n = ix.copy_subset_to(v_sub, subset_type, a1, a2)
        assert n == r_sub.ntotal == v_sub.ntotal
        total += n
        for (ri, rc), (vi, vc) in zip(_lists(r_sub, real_faiss),
                                      _lists(v_sub, vecdex)):
            np.testing.assert_array_equal(ri, vi)
            np.testing.assert_array_equal(rc, vc)
    assert total == ix.ntotal     # each of these splits is a partition


def test_copy_subset_to_rejects_bad_arguments():
    _, ix, _, _ = _pair("IVF30,Flat")
    other = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(D), D, 12)
    with pytest.raises(ValueError):
        ix.copy_subset_to(other, 0, 0, 10)          # nlist differs
    same = vecdex.clone_index(ix)
    same.reset()
    for st, a1 in ((5, 1), (-1, 1), (1, 0), (3, 0)):
        with pytest.raises(ValueError):
            ix.copy_subset_to(same, st, a1, 0)
    with pytest.raises(ValueError):
        ix.copy_subset_to(ix, 0, 0, 10)
    with pytest.raises(TypeError):
        ix.copy_subset_to(vecdex.IndexFlatL2(D), 0, 0, 10)
    assert same.ntotal == 0


def test_install_method_refuses_to_replace():
    with pytest.raises(ValueError):
        vecdex._vecdex._install_method(vecdex.Index, "search",
                                       lambda self: None)
    with pytest.raises(TypeError):
        vecdex._vecdex._install_method(int, "x", lambda self: None)
