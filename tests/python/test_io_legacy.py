"""FAISS's legacy IVF layouts ("IvPQ", "IvSQ", "IvFL") and the precomputed
IVFPQ tables.

faiss-cpu 1.15 still reads the legacy layouts but no longer writes them, so
the tests rewrite a file faiss wrote ("IwPQ", "IwSq", "IwFl") into the
legacy layout: the ids of every list move up after the quantizer, the codes
of every list become one vector each.  faiss and vecdex then read the same
legacy bytes and must give the same results.
"""
import struct

import numpy as np
import pytest

import vecdex


def _u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def _split_ivf(b, kind_len):
    """Cuts a faiss-written IVF file (flat quantizer, no direct map, "ilar"
    with "full" sizes) into its parts.  kind_len(b, o) gives the length of
    the kind's own fields starting at offset o."""
    hdr = 4 + 4 + 8 + 8 + 8 + 1 + 4            # fourcc + index header
    nlist = _u64(b, hdr)
    q = hdr + 16                               # nlist, nprobe
    assert b[q:q + 4] in (b"IxF2", b"IxFI")
    qd = struct.unpack_from("<i", b, q + 4)[0]
    qn = _u64(b, q + 4 + 33)
    qend = q + 4 + 33 + 8 + qn * 4
    assert qn == nlist * qd
    assert b[qend] == 0 and _u64(b, qend + 1) == 0   # no direct map
    dmend = qend + 9
    kend = dmend + kind_len(b, dmend)
    assert b[kend:kend + 4] == b"ilar"
    cs = _u64(b, kend + 12)
    assert b[kend + 20:kend + 24] == b"full"
    assert _u64(b, kend + 24) == nlist
    sizes = struct.unpack_from("<%dQ" % nlist, b, kend + 32)
    o = kend + 32 + 8 * nlist
    codes, ids = [], []
    for n in sizes:
        codes.append(b[o:o + n * cs])
        o += n * cs
        ids.append(b[o:o + 8 * n])
        o += 8 * n
    assert o == len(b)
    return dict(head=b[4:qend], kind=b[dmend:kend], codes=codes, ids=ids,
                dm=b[qend:dmend])


def _legacy(parts, fourcc, kind=None, float_codes=False):
    out = [fourcc, parts["head"]]
    for ids in parts["ids"]:
        out += [struct.pack("<Q", len(ids) // 8), ids]
    out.append(parts["dm"])
    out.append(parts["kind"] if kind is None else kind)
    for c in parts["codes"]:
        n = len(c) // 4 if float_codes else len(c)
        out += [struct.pack("<Q", n), c]
    return b"".join(out)


def _pq_len(b, o):
    # by_residual u8, code_size u64, d, M, nbits, centroid count + floats
    n = _u64(b, o + 1 + 8 + 24)
    return 1 + 8 + 24 + 8 + 4 * n


def _sq_len(b, o):
    # qtype, rangestat i32, rangestat_arg f32, d, code_size, trained vector,
    # then the IVF code_size u64 and by_residual u8
    n = _u64(b, o + 12 + 16)
    return 12 + 16 + 8 + 4 * n + 8 + 1


def _data(rng, n, d):
    return rng.standard_normal((n, d)).astype("float32")


def _check_same(faiss, blob, tmp_path, xq, k, nprobe):
    p = str(tmp_path / "legacy.index")
    open(p, "wb").write(blob)
    fi = faiss.read_index(p)
    vi = vecdex.read_index(p)
    fi.nprobe = vi.nprobe = nprobe
    assert vi.ntotal == fi.ntotal and vi.nlist == fi.nlist
    Df, If = fi.search(xq, k)
    Dv, Iv = vi.search(xq, k)
    np.testing.assert_allclose(Dv, Df, rtol=1e-3, atol=1e-3)
    assert (Iv == If).mean() > 0.97
    return vi


def test_legacy_ivfpq(faiss_ref, rng, tmp_path):
    d, nlist = 32, 12
    xt, xq = _data(rng, 3000, d), _data(rng, 30, d)
    fi = faiss_ref.index_factory(d, "IVF12,PQ8np")
    fi.cp.niter = fi.pq.cp.niter = 8
    fi.train(xt)
    ids = np.arange(2000, dtype="int64") * 7 + 3   # ids other than positions
    fi.add_with_ids(xt[:2000], ids)
    parts = _split_ivf(faiss_ref.serialize_index(fi).tobytes(), _pq_len)
    vi = _check_same(faiss_ref, _legacy(parts, b"IvPQ"), tmp_path, xq, 10, 4)
    assert type(vi) is vecdex.IndexIVFPQ and vi.pq.M == 8
    # the precomputed tables are rebuilt on load, as faiss does
    assert vi.use_precomputed_table == 0
    # written back in today's layout, faiss reads the same index
    fi2 = faiss_ref.deserialize_index(vecdex.serialize_index(vi))
    fi2.nprobe = 4
    np.testing.assert_array_equal(fi2.search(xq, 10)[1], vi.search(xq, 10)[1])


def test_legacy_ivfsq_and_ivfflat(faiss_ref, rng, tmp_path):
    d = 16
    xt, xq = _data(rng, 2000, d), _data(rng, 20, d)
    fi = faiss_ref.index_factory(d, "IVF8,SQ8")
    fi.train(xt)
    fi.add(xt[:1500])
    parts = _split_ivf(faiss_ref.serialize_index(fi).tobytes(), _sq_len)
    kind = parts["kind"][:-1]                   # IvSQ has no by_residual
    vi = _check_same(faiss_ref, _legacy(parts, b"IvSQ", kind), tmp_path, xq, 5, 3)
    assert type(vi) is vecdex.IndexIVFScalarQuantizer

    fi = faiss_ref.index_factory(d, "IVF8,Flat")
    fi.train(xt)
    fi.add(xt[:1500])
    parts = _split_ivf(faiss_ref.serialize_index(fi).tobytes(), lambda b, o: 0)
    for fourcc, fl in ((b"IvFL", False), (b"IvFl", True)):
        vi = _check_same(faiss_ref, _legacy(parts, fourcc, float_codes=fl),
                         tmp_path, xq, 5, 3)
        assert type(vi) is vecdex.IndexIVFFlat


def test_legacy_corrupt(faiss_ref, rng, tmp_path):
    d = 16
    xt = _data(rng, 1000, d)
    fi = faiss_ref.index_factory(d, "IVF4,PQ4np")
    fi.cp.niter = fi.pq.cp.niter = 8
    fi.train(xt)
    fi.add(xt[:500])
    parts = _split_ivf(faiss_ref.serialize_index(fi).tobytes(), _pq_len)
    blob = _legacy(parts, b"IvPQ")
    for cut in range(0, len(blob), max(1, len(blob) // 300)):
        with pytest.raises(Exception) as e:
            vecdex.deserialize_index(np.frombuffer(blob[:cut], dtype="uint8"))
        assert not isinstance(e.value, (SystemError, MemoryError))
    # a list that claims more ids than the index holds
    head_end = len(parts["head"]) + 4
    bad = bytearray(blob)
    struct.pack_into("<Q", bad, head_end, 10 ** 12)
    with pytest.raises(Exception, match="ids"):
        vecdex.deserialize_index(np.frombuffer(bytes(bad), dtype="uint8"))
    # a code vector of the wrong length
    good = vecdex.deserialize_index(np.frombuffer(blob, dtype="uint8"))
    assert good.ntotal == 500


@pytest.fixture(scope="module")
def ivfpq_pair():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    d = 32
    xt, xq = _data(rng, 4000, d), _data(rng, 40, d)
    fi = faiss.index_factory(d, "IVF16,PQ8np")
    fi.cp.niter = 8
    fi.pq.cp.niter = 8
    fi.train(xt)
    fi.add(xt)
    fi.nprobe = 5
    return faiss, fi, xq


@pytest.mark.parametrize("upt", [-1, 0, 1])
def test_ivfpq_precomputed_tables_match_faiss(ivfpq_pair, upt):
    faiss, fi, xq = ivfpq_pair
    k = 10
    vi = vecdex.deserialize_index(faiss.serialize_index(fi))
    vi.nprobe = 5
    vi.use_precomputed_table = upt
    assert vi.use_precomputed_table == upt
    fi.use_precomputed_table = upt
    fi.precompute_table()
    Df, If = fi.search(xq, k)
    Dv, Iv = vi.search(xq, k)
    np.testing.assert_allclose(Dv, Df, rtol=1e-4, atol=1e-3)
    assert (Iv == If).mean() > 0.98
    with pytest.raises(ValueError):
        vi.use_precomputed_table = 5
