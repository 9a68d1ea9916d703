"""index.cp and pq.cp (FAISS's ClusteringParameters views): the settings
reach the next train()."""
import numpy as np
import pytest

import vecdex


def _data(n=3000, d=16, seed=3):
    return np.random.default_rng(seed).standard_normal((n, d)).astype("float32")


def _ivf(seed, niter):
    ix = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(16), 16, 32)
    ix.cp.seed = seed
    ix.cp.niter = niter
    assert ix.cp.seed == seed and ix.cp.niter == niter
    ix.train(_data())
    return ix.quantizer.reconstruct_n(0, 32)


def test_ivf_cp_reaches_training():
    a, b = _ivf(1, 10), _ivf(1, 10)
    np.testing.assert_array_equal(a, b)           # deterministic
    assert not np.array_equal(a, _ivf(2, 10))     # the seed is used
    assert not np.array_equal(a, _ivf(1, 1))      # so is niter


def test_pq_cp_reaches_training():
    x = _data(d=16)
    out = []
    for seed in (5, 5, 6):
        pq = vecdex.ProductQuantizer(16, 4, 4)
        pq.cp.seed = seed
        pq.cp.niter = 4
        pq.train(x)
        out.append(np.array(pq.centroids))
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])
    ivfpq = vecdex.IndexIVFPQ(vecdex.IndexFlatL2(16), 16, 8, 4, 4)
    ivfpq.pq.cp.niter = 2
    assert ivfpq.pq.cp.niter == 2 and ivfpq.cp.niter != 2


def test_cp_checks_values():
    cp = vecdex.ClusteringParameters()
    assert cp.niter == 25 and cp.seed == 1234
    for name, bad in (("niter", 0), ("nredo", -1), ("max_points_per_centroid", 0)):
        with pytest.raises(ValueError, match=name):
            setattr(cp, name, bad)
    cp.verbose = True  # accepted for FAISS scripts
    with pytest.raises(AttributeError):
        vecdex.IndexFlatL2(4).cp
