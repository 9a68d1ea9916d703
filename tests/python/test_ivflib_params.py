"""search_with_parameters / range_search_with_parameters
(vecdex/_ivflib.py) on an index faiss built and vecdex read: the results
and the number of codes scored (ndis) must be faiss's."""
import numpy as np
import pytest

import vecdex

real_faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(11)
    xt = rng.random((3000, 20), dtype="float32")
    xb = rng.random((5000, 20), dtype="float32")
    xq = rng.random((50, 20), dtype="float32")
    ref = real_faiss.index_factory(20, "IVF50,Flat")
    ref.train(xt)
    ref.add(xb)
    ref.nprobe = 1
    ix = vecdex.deserialize_index(real_faiss.serialize_index(ref))
    ix.nprobe = 1
    return ref, ix, xq


def _params(mod, nprobe):
    p = mod.IVFSearchParameters()
    p.nprobe = nprobe
    return p


@pytest.mark.parametrize("nprobe", [1, 3, 50])
def test_search_with_parameters_matches_faiss(pair, nprobe):
    ref, ix, xq = pair
    Df, If, sf = real_faiss.search_with_parameters(
        ref, xq, 7, _params(real_faiss, nprobe), output_stats=True)
    Dv, Iv, sv = vecdex.search_with_parameters(
        ix, xq, 7, _params(vecdex, nprobe), output_stats=True)
    np.testing.assert_array_equal(If, Iv)
    np.testing.assert_allclose(Df, Dv, rtol=1e-5)
    assert int(sv["ndis"]) == int(sf["ndis"])
    assert set(sv) == set(sf)
    # no params: the index's own nprobe (1)
    _, I1 = vecdex.search_with_parameters(ix, xq, 7)
    np.testing.assert_array_equal(I1, ix.search(xq, 7)[1])


def test_range_search_with_parameters_matches_faiss(pair):
    ref, ix, xq = pair
    r = 1.2   # the nearest neighbours lie at 0.56-1.5 (squared)
    Lf, Df, If, sf = real_faiss.range_search_with_parameters(
        ref, xq, r, _params(real_faiss, 4), output_stats=True)
    Lv, Dv, Iv, sv = vecdex.range_search_with_parameters(
        ix, xq, r, _params(vecdex, 4), output_stats=True)
    assert Lf[-1] >= len(xq)  # results to compare, not empty sets
    for q in range(len(xq)):   # same set per query, order may differ
        a, b = slice(Lf[q], Lf[q + 1]), slice(Lv[q], Lv[q + 1])
        ff, vv = dict(zip(If[a], Df[a])), dict(zip(Iv[b], Dv[b]))
        # an id only one side has must sit on the radius (float rounding)
        for i in set(ff) ^ set(vv):
            assert abs(ff.get(i, vv.get(i)) - r) < 1e-4, (q, i)
        for i in set(ff) & set(vv):
            assert abs(ff[i] - vv[i]) <= 1e-5 * max(1.0, ff[i])
    assert int(sv["ndis"]) == int(sf["ndis"])


def test_bad_shape_raises(pair):
    _, ix, xq = pair
    with pytest.raises(ValueError):
        vecdex.search_with_parameters(ix, xq[:, :5], 3)
