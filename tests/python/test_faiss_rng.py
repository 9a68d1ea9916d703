"""faiss.rand / randn / randint and the float_rand-style helpers: the same
values as FAISS's for small (one block) and large (1024 blocks) sizes,
shapes, and seeds beyond 32 bits (FAISS keeps the low 32)."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("n", [1, 3, 1023, 1024, 4097, 300000])
@pytest.mark.parametrize("seed", [12345, 0, -7, 2 ** 40 + 5])
def test_streams_equal_faiss(n, seed):
    np.testing.assert_array_equal(vecdex.rand(n, seed), faiss.rand(n, seed))
    np.testing.assert_array_equal(vecdex.randn(n, seed), faiss.randn(n, seed))
    np.testing.assert_array_equal(vecdex.randint(n, seed), faiss.randint(n, seed))
    np.testing.assert_array_equal(vecdex.randint(n, seed, vmax=37),
                                  faiss.randint(n, seed, vmax=37))


def test_helpers_fill_in_place():
    for fv, ff, dt in ((vecdex.float_rand, faiss.float_rand, "float32"),
                       (vecdex.float_randn, faiss.float_randn, "float32"),
                       (vecdex.int64_rand, faiss.int64_rand, "int64")):
        a = np.zeros(2000, dt)
        b = np.zeros(2000, dt)
        fv(a, 1500, 9)
        ff(faiss.swig_ptr(b), 1500, 9)
        np.testing.assert_array_equal(a, b)
        assert not a[1500:].any()
    a = np.zeros(100, "int64")
    b = np.zeros(100, "int64")
    vecdex.int64_rand_max(a, 100, 1000, 4)
    faiss.int64_rand_max(faiss.swig_ptr(b), 100, 1000, 4)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        vecdex.float_rand(np.zeros(3, "float32"), 4, 1)
    with pytest.raises(TypeError):
        vecdex.float_rand(np.zeros(3, "float64"), 3, 1)
    assert vecdex.randn((4, 5)).shape == (4, 5)
