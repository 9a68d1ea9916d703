"""FAISS's IOReader / IOWriter objects (vecdex/_io_objects.py): bytes
written through a callback, a buffer or a vector are compared with the
bytes faiss itself writes for the same index, and streams read back are
searched against the original; truncated / hostile streams must raise."""
import io
import os
import threading

import numpy as np
import pytest

import vecdex

try:
    import faiss as real_faiss
except ImportError:  # pragma: no cover
    real_faiss = None


def _flat(n=300, d=16, seed=0):
    x = np.random.default_rng(seed).random((n, d), dtype="float32")
    ix = vecdex.IndexFlatL2(d)
    ix.add(x)
    return ix, x


@pytest.mark.parametrize("bs,bsz", [(1234, 0), (7, 123), (1 << 20, 5000)])
def test_callback_writer_matches_serialize_and_faiss(bs, bsz):
    ix, x = _flat()
    f = io.BytesIO()
    w = vecdex.PyCallbackIOWriter(f.write, bs)
    if bsz:
        w = vecdex.BufferedIOWriter(w, bsz)
    vecdex.write_index(ix, w)
    got = f.getvalue()
    assert got == vecdex.serialize_index(ix).tobytes()
    if real_faiss is not None:
        ref = real_faiss.IndexFlatL2(x.shape[1])
        ref.add(x)
        assert got == real_faiss.serialize_index(ref).tobytes()


@pytest.mark.parametrize("bs,bsz", [(1234, 0), (13, 123), (1 << 20, 99999)])
def test_callback_reader_round_trip(tmp_path, bs, bsz):
    ix, x = _flat()
    p = str(tmp_path / "a.index")
    vecdex.write_index(ix, p)
    with open(p, "rb") as f:
        r = vecdex.PyCallbackIOReader(f.read, bs)
        if bsz:
            r = vecdex.BufferedIOReader(r, bsz)
        ix2 = vecdex.read_index(r)
    D0, I0 = ix.search(x[:20], 5)
    D1, I1 = ix2.search(x[:20], 5)
    np.testing.assert_array_equal(I0, I1)
    np.testing.assert_array_equal(D0, D1)
    r = vecdex.BufferedIOReader(vecdex.FileIOReader(p), 77)
    assert vecdex.read_index(r).ntotal == ix.ntotal


@pytest.mark.skipif(real_faiss is None, reason="needs faiss")
def test_reads_a_faiss_stream_through_a_pipe():
    """faiss writes into a pipe that is never closed before the read ends:
    the reader must stop at the end of the record, not wait for EOF."""
    x = np.random.default_rng(1).random((3000, 24), dtype="float32")
    ref = real_faiss.IndexFlatL2(24)
    ref.add(x)
    rf, wf = os.pipe()
    out = {}

    def reader():
        out["ix"] = vecdex.read_index(
            vecdex.PyCallbackIOReader(lambda n: os.read(rf, n)))

    t = threading.Thread(target=reader)
    t.start()
    real_faiss.write_index(ref, real_faiss.PyCallbackIOWriter(
        lambda b: os.write(wf, b)))
    t.join(60)
    os.close(wf)
    os.close(rf)
    assert not t.is_alive()
    assert out["ix"].ntotal == x.shape[0]
    np.testing.assert_array_equal(out["ix"].reconstruct_n(0, x.shape[0]), x)


def test_vector_io_and_null_index():
    ix, x = _flat()
    w = vecdex.VectorIOWriter()
    vecdex.write_index(ix, w)
    data = vecdex.vector_to_array(w.data)
    np.testing.assert_array_equal(data, vecdex.serialize_index(ix))
    r = vecdex.VectorIOReader()
    vecdex.copy_array_to_vector(data, r.data)
    assert r.data.size() == data.size
    assert vecdex.read_index(r).ntotal == ix.ntotal
    r2 = vecdex.VectorIOReader()
    r2.data.swap(w.data)
    assert w.data.size() == 0 and vecdex.read_index(r2).ntotal == ix.ntotal

    w = vecdex.VectorIOWriter()
    vecdex.write_index(None, w)
    if real_faiss is not None:
        fw = real_faiss.VectorIOWriter()
        real_faiss.write_index(None, fw)
        np.testing.assert_array_equal(vecdex.vector_to_array(w.data),
                                      real_faiss.vector_to_array(fw.data))
    r = vecdex.VectorIOReader()
    r.data.swap(w.data)
    assert vecdex.read_index(r) is None


def test_vector_transform_through_vectors():
    xt = np.random.default_rng(2).random((500, 16), dtype="float32")
    pca = vecdex.PCAMatrix(16, 6)
    pca.train(xt)
    w = vecdex.VectorIOWriter()
    vecdex.write_VectorTransform(pca, w)
    r = vecdex.VectorIOReader()
    vecdex.copy_array_to_vector(vecdex.vector_to_array(w.data), r.data)
    pca2 = vecdex.read_VectorTransform(r)
    np.testing.assert_array_equal(pca.apply(xt[:30]), pca2.apply(xt[:30]))


def test_buffered_reader_fills_an_array(tmp_path):
    x = np.random.default_rng(3).random(20)
    p = str(tmp_path / "x.bin")
    x.tofile(p)
    with open(p, "rb") as f:
        r = vecdex.BufferedIOReader(vecdex.PyCallbackIOReader(f.read, 9), 5)
        y = np.zeros_like(x)
        assert r(vecdex.swig_ptr(y), y.nbytes, 1) == 1
    np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError):
        r(np.zeros(2), 100, 1)  # more bytes than the array holds


def test_hostile_streams_raise():
    ix, _ = _flat()
    good = vecdex.serialize_index(ix).tobytes()
    for data in (good[:len(good) // 2], good[:3], b"junk" + good[4:], b""):
        src = io.BytesIO(data)
        with pytest.raises(RuntimeError):
            vecdex.read_index(vecdex.PyCallbackIOReader(src.read, 100))
    with pytest.raises(RuntimeError):   # the callback returns more than asked
        vecdex.read_index(vecdex.PyCallbackIOReader(lambda n: b"x" * (n + 1)))
    with pytest.raises(RuntimeError):   # not bytes
        vecdex.read_index(vecdex.PyCallbackIOReader(lambda n: 42))
    with pytest.raises(TypeError):
        vecdex.read_index(vecdex.PyCallbackIOReader("blabla"))
    with pytest.raises(TypeError):
        vecdex.write_index(ix, vecdex.PyCallbackIOWriter("blabla"))
    with pytest.raises(ValueError):
        vecdex.PyCallbackIOReader(len, 0)
