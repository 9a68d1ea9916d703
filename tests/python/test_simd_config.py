"""FAISS's SIMD-level API over vecdex's kernels, check_openmp, and the IVF
list accessors (get_codes) that contrib.inspect_tools builds on."""
import numpy as np
import pytest

import vecdex as faiss
from vecdex.contrib import inspect_tools


def brute_knn(xq, xb, k):
    d = ((xq[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.fixture
def restore_level():
    yield
    faiss.SIMDConfig.set_level(faiss.SIMDConfig.get_dispatched_level())


def test_levels_listed_and_settable(restore_level):
    levels = faiss.SIMDConfig.supported_simd_levels()
    assert faiss.SIMDLevel_NONE in levels
    opts = faiss.get_compile_options().split()
    for lv, name in ((faiss.SIMDLevel_AVX2, "AVX2"),
                     (faiss.SIMDLevel_AVX512, "AVX512")):
        assert (name in opts) == (lv in levels)
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((500, 37)).astype("float32")
    xq = rng.standard_normal((20, 37)).astype("float32")
    ref = brute_knn(xq, xb, 5)
    for lv in levels:
        faiss.SIMDConfig.set_level(lv)
        assert faiss.SIMDConfig.get_level() == lv
        index = faiss.IndexFlatL2(37)
        index.add(xb)
        _, I = index.search(xq, 5)
        assert (I == ref).mean() > 0.99, lv


def test_unavailable_level_refused(restore_level):
    before = faiss.SIMDConfig.get_level()
    with pytest.raises(RuntimeError, match="not available"):
        faiss.SIMDConfig.set_level(faiss.SIMDLevel_ARM_NEON)
    with pytest.raises(ValueError, match="unknown SIMD level"):
        faiss.SIMDConfig.set_level(99)
    assert faiss.SIMDConfig.get_level() == before


def test_check_openmp_and_cvar():
    assert faiss.check_openmp() in (True, False)
    assert faiss.omp_get_max_threads() >= 1
    faiss.cvar.distance_compute_blas_threshold = 1
    faiss.cvar.distance_compute_blas_threshold = 20


def test_ivf_codes_flat_and_pq():
    rng = np.random.default_rng(1)
    d = 16
    xb = rng.standard_normal((800, d)).astype("float32")
    q = faiss.IndexFlatL2(d)
    ivf = faiss.IndexIVFFlat(q, d, 8)
    ivf.train(xb)
    ivf.add(xb)
    seen = 0
    for l in range(ivf.nlist):
        ids, codes = inspect_tools.get_invlist(ivf.invlists, l)
        assert codes.shape == (len(ids), d * 4)
        np.testing.assert_array_equal(codes.view("float32"), xb[ids])
        seen += len(ids)
    assert seen == ivf.ntotal
    sizes = inspect_tools.get_invlist_sizes(ivf.invlists)
    assert sizes.sum() == ivf.ntotal

    q2 = faiss.IndexFlatL2(d)
    pq = faiss.IndexIVFPQ(q2, d, 8, 4, 8)
    pq.train(xb)
    pq.add(xb)
    cent = q2.reconstruct_n(0, 8)
    for l in range(pq.nlist):
        ids, codes = inspect_tools.get_invlist(pq.invlists, l)
        if len(ids) == 0:
            continue
        ref = pq.pq.compute_codes(xb[ids] - cent[l])
        np.testing.assert_array_equal(codes, ref)
    with pytest.raises((ValueError, RuntimeError)):
        pq.invlists.get_codes(8)
