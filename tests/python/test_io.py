"""Files and byte buffers in FAISS's format, both directions, and the
handling of corrupt input."""
import copy
import os
import pathlib
import pickle

import numpy as np
import pytest

import vecdex

KINDS = ["IndexFlatL2", "IndexFlatIP", "IndexFlat", "IndexIDMap", "IndexIDMap2"]


def build(mod, kind, xb, ids):
    d = xb.shape[1]
    if kind == "IndexFlat":
        ix = mod.IndexFlat(d, mod.METRIC_INNER_PRODUCT)
    elif kind.startswith("IndexIDMap"):
        ix = getattr(mod, kind)(mod.IndexFlatIP(d))
    else:
        ix = getattr(mod, kind)(d)
    if kind.startswith("IndexIDMap"):
        ix.add_with_ids(xb, ids)
    else:
        ix.add(xb)
    return ix


# class FAISS gives an index read back from a file
EXPECTED_CLASS = {"IndexFlatL2": "IndexFlatL2", "IndexFlatIP": "IndexFlatIP",
                  "IndexFlat": "IndexFlatIP", "IndexIDMap": "IndexIDMap",
                  "IndexIDMap2": "IndexIDMap2"}


@pytest.fixture
def dataset(rng):
    xb = rng.standard_normal((300, 12)).astype(np.float32)
    xq = rng.standard_normal((20, 12)).astype(np.float32)
    ids = rng.choice(10**6, 300, replace=False).astype(np.int64)
    return xb, xq, ids


def same_results(a, b, xq):
    Da, Ia = a.search(xq, 7)
    Db, Ib = b.search(xq, 7)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_allclose(Da, Db, rtol=1e-5, atol=1e-5)
    assert a.ntotal == b.ntotal and a.d == b.d and a.metric_type == b.metric_type


@pytest.mark.parametrize("kind", KINDS)
def test_vecdex_writes_faiss_reads(tmp_path, faiss_ref, dataset, kind):
    xb, xq, ids = dataset
    v = build(vecdex, kind, xb, ids)
    f = build(faiss_ref, kind, xb, ids)
    path = str(tmp_path / "v.index")
    vecdex.write_index(v, path)
    g = faiss_ref.read_index(path)
    assert type(g).__name__ == EXPECTED_CLASS[kind]
    same_results(g, v, xq)
    same_results(g, f, xq)
    # byte-identical to what FAISS writes for the same index
    fpath = str(tmp_path / "f.index")
    faiss_ref.write_index(f, fpath)
    assert pathlib.Path(path).read_bytes() == pathlib.Path(fpath).read_bytes()
    if kind.startswith("IndexIDMap"):
        np.testing.assert_array_equal(faiss_ref.vector_to_array(g.id_map), ids)


@pytest.mark.parametrize("kind", KINDS)
def test_faiss_writes_vecdex_reads(tmp_path, faiss_ref, dataset, kind):
    xb, xq, ids = dataset
    f = build(faiss_ref, kind, xb, ids)
    path = tmp_path / "f.index"
    faiss_ref.write_index(f, str(path))
    v = vecdex.read_index(str(path))
    assert type(v).__name__ == EXPECTED_CLASS[kind]
    assert type(v) is getattr(vecdex, EXPECTED_CLASS[kind])
    same_results(v, f, xq)
    if kind.startswith("IndexIDMap"):
        np.testing.assert_array_equal(v.id_map, ids)
        assert type(v.index) is vecdex.IndexFlatIP and v.index.ntotal == 300
        v.add_with_ids(xb[:2], np.array([-2, -3]))          # still fully usable
        assert v.ntotal == 302 and v.index.ntotal == 302
        with pytest.raises(RuntimeError):
            v.index.add(xb[:1])
    else:
        np.testing.assert_array_equal(v.reconstruct_n(), xb)
    assert type(vecdex.read_index(path)) is type(v)            # os.PathLike
    assert type(vecdex.read_index(os.fsencode(str(path)))) is type(v)


@pytest.mark.parametrize("kind", KINDS)
def test_serialize_both_ways(faiss_ref, dataset, kind):
    xb, xq, ids = dataset
    v = build(vecdex, kind, xb, ids)
    f = build(faiss_ref, kind, xb, ids)
    buf = vecdex.serialize_index(v)
    assert isinstance(buf, np.ndarray) and buf.dtype == np.uint8 and buf.ndim == 1
    np.testing.assert_array_equal(buf, faiss_ref.serialize_index(f))
    same_results(faiss_ref.deserialize_index(buf), f, xq)
    v2 = vecdex.deserialize_index(faiss_ref.serialize_index(f))
    assert type(v2).__name__ == EXPECTED_CLASS[kind]
    same_results(v2, v, xq)
    for form in (buf.tobytes(), bytearray(buf.tobytes()), memoryview(buf.tobytes())):
        same_results(vecdex.deserialize_index(form), v, xq)
    del v                     # the buffer owns its memory
    assert vecdex.deserialize_index(buf).ntotal == 300


def test_pickle_deepcopy_clone(dataset):
    xb, xq, ids = dataset
    v = build(vecdex, "IndexIDMap2", xb, ids)
    v.nprobe = 5
    for c in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v), vecdex.clone_index(v)):
        assert c is not v and type(c) is vecdex.IndexIDMap2
        same_results(c, v, xq)
        c.add_with_ids(xb[:1], np.array([123456789]))          # independent
        assert c.ntotal == v.ntotal + 1
    assert pickle.loads(pickle.dumps(v)).nprobe == 5


def test_empty_index_roundtrip(tmp_path, faiss_ref):
    v = vecdex.IndexFlatL2(5)
    path = str(tmp_path / "e.index")
    vecdex.write_index(v, path)
    assert faiss_ref.read_index(path).ntotal == 0
    r = vecdex.read_index(path)
    assert r.ntotal == 0 and r.d == 5
    e = vecdex.IndexIDMap(vecdex.IndexFlatL2(3))
    r = vecdex.deserialize_index(vecdex.serialize_index(e))
    assert type(r) is vecdex.IndexIDMap and r.id_map.size == 0


def test_bad_paths(tmp_path):
    ix = vecdex.IndexFlatL2(4)
    with pytest.raises(RuntimeError):
        vecdex.read_index(str(tmp_path / "does-not-exist"))
    with pytest.raises(RuntimeError):
        vecdex.write_index(ix, str(tmp_path / "no" / "such" / "dir" / "x.index"))
    with pytest.raises(RuntimeError):
        vecdex.read_index(str(tmp_path))                        # a directory
    with pytest.raises(TypeError):
        vecdex.read_index(42)
    with pytest.raises(TypeError):
        vecdex.write_index("not an index", str(tmp_path / "x"))
    with pytest.raises(ValueError):
        vecdex.serialize_index(ix, io_flags=7)


def corrupt_inputs(buf):
    raw = buf.tobytes()
    yield b""
    yield b"\x00" * 64
    yield b"IxF2" + b"\xff" * 60
    for cut in range(1, len(raw)):                  # every truncation
        yield raw[:cut]
    rng = np.random.default_rng(0)
    for _ in range(300):                            # random byte damage
        b = bytearray(raw)
        for pos in rng.integers(0, len(b), size=rng.integers(1, 4)):
            b[pos] = rng.integers(0, 256)
        yield bytes(b)
    for pos in range(0, min(len(raw), 64)):         # huge size fields
        b = bytearray(raw)
        b[pos:pos + 8] = b"\xff\xff\xff\xff\xff\xff\xff\x7f"[: len(b) - pos]
        yield bytes(b)


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_buffers_raise_not_crash(rng, kind):
    xb = rng.standard_normal((3, 4)).astype(np.float32)
    buf = vecdex.serialize_index(build(vecdex, kind, xb, np.array([4, 5, 6])))
    nerr = 0
    for data in corrupt_inputs(buf):
        try:
            ix = vecdex.deserialize_index(data)
        except RuntimeError:
            nerr += 1
        else:                       # damage that still parses must be usable
            ix.search(np.zeros((1, ix.d), np.float32), 2)
    assert nerr >= len(buf) - 1     # at least every truncation failed


def test_corrupt_files_raise(tmp_path, rng):
    ix = vecdex.IndexIDMap2(vecdex.IndexFlatL2(4))
    ix.add_with_ids(rng.standard_normal((5, 4)).astype(np.float32), np.arange(5))
    raw = vecdex.serialize_index(ix).tobytes()
    p = tmp_path / "c.index"
    for data in (b"", raw[:10], raw[:-1], b"garbage" * 10):
        p.write_bytes(data)
        with pytest.raises(RuntimeError):
            vecdex.read_index(str(p))
    p.write_bytes(raw)
    assert vecdex.read_index(str(p)).ntotal == 5
    with pytest.raises(ValueError):
        vecdex.deserialize_index(np.zeros((2, 8), np.uint8))
    with pytest.raises(TypeError):
        vecdex.deserialize_index(12)
