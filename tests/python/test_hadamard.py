"""HadamardRotation: outputs bit-identical to FAISS's for the same seed
(power-of-2 and padded dimensions), norms kept, files exchanged with FAISS
both ways, and "HR,..." in the factory searching as FAISS's does."""
import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("d", [1, 7, 64, 100, 192])
@pytest.mark.parametrize("seed", [12345, 1, 2 ** 32 - 1])
def test_same_as_faiss(d, seed):
    x = np.random.RandomState(d).randn(20, d).astype("float32")
    v, f = vecdex.HadamardRotation(d, seed), faiss.HadamardRotation(d, seed)
    assert v.d_out == f.d_out and v.seed == seed
    np.testing.assert_array_equal(v.apply(x), f.apply(x))
    if d == v.d_out:
        np.testing.assert_allclose(np.linalg.norm(v.apply(x), axis=1),
                                   np.linalg.norm(x, axis=1), rtol=1e-5)


def test_files_and_factory_both_ways(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.randn(300, 48).astype("float32")
    for src, dst in ((faiss, vecdex), (vecdex, faiss)):
        ix = src.index_factory(48, "HR,Flat")
        ix.train(x)
        ix.add(x)
        fn = str(tmp_path / "hr.index")
        src.write_index(ix, fn)
        back = dst.read_index(fn)
        D0, I0 = ix.search(x[:10], 5)
        D1, I1 = back.search(x[:10], 5)
        np.testing.assert_array_equal(I0, I1)
        np.testing.assert_allclose(D0, D1, rtol=1e-5, atol=1e-5)
    fn = str(tmp_path / "hr.vt")
    faiss.write_VectorTransform(faiss.HadamardRotation(30, 9), fn)
    vt = vecdex.read_VectorTransform(fn)
    assert isinstance(vt, vecdex.HadamardRotation) and vt.seed == 9
    vecdex.write_VectorTransform(vt, fn)
    assert faiss.read_VectorTransform(fn).seed == 9
    with pytest.raises(ValueError):
        vecdex.HadamardRotation(8, -1)
    with pytest.raises(Exception):
        vecdex.HadamardRotation(0)
