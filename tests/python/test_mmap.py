"""Memory-mapped loading (IO_FLAG_MMAP), FAISS's on-disk inverted lists
("ilod" + .ivfdata), merge_ondisk and merge_from.

Every mapped index is compared with the same file loaded into memory and
with faiss opening the same file; files are checksummed around changes to
a mapped index to show that nothing is written through the map.
"""
import hashlib
import os
import struct

import numpy as np
import pytest

import vecdex

faiss = pytest.importorskip("faiss")
faiss.omp_set_num_threads(1)  # the tests are small; spinning threads are not

D = 24
NB = 3000

# (factory key, whether vecdex keeps the file mapped after open)
KINDS = [
    ("Flat", True),
    ("IDMap,Flat", True),
    ("IDMap2,Flat", True),
    ("IVF16,Flat", True),
    ("IVF16,PQ6", True),
    ("IVF16,SQ8", True),
    ("HNSW12", True),
    ("PQ6", False),
    ("SQ8", False),
    # fast-scan lists are unpacked on read (copied); only the coarse
    # quantizer's centroids stay borrowed from the map
    ("IVF16,PQ6x4fs", True),
]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def mapped_paths():
    with open("/proc/self/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f
                if len(line.split(None, 5)) == 6}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    xb = rng.standard_normal((NB, D)).astype("float32")
    xq = rng.standard_normal((25, D)).astype("float32")
    return xb, xq


_BUILT = {}


def build_faiss(key, xb):
    """A faiss index of key over xb (built once per key, then cloned)."""
    if key in _BUILT:
        return faiss.deserialize_index(_BUILT[key])
    fi = faiss.index_factory(D, key)
    fi.train(xb)
    if key.startswith("IDMap"):
        fi.add_with_ids(xb, np.arange(NB, dtype="int64") * 7 + 3)
    else:
        fi.add(xb)
    _BUILT[key] = faiss.serialize_index(fi)
    return fi


def set_nprobe(*ixs):
    for ix in ixs:
        if hasattr(ix, "nprobe"):
            ix.nprobe = 4


def test_flag_values_are_faiss_values():
    for name in ("IO_FLAG_MMAP", "IO_FLAG_READ_ONLY", "IO_FLAG_MMAP_IFC",
                 "IO_FLAG_ONDISK_SAME_DIR", "IO_FLAG_SKIP_IVF_DATA"):
        assert getattr(vecdex, name) == getattr(faiss, name), name


@pytest.mark.parametrize("key,keeps_map", KINDS)
@pytest.mark.parametrize("flag", ["IO_FLAG_MMAP", "IO_FLAG_MMAP_IFC"])
def test_mapped_search_equals_in_memory_and_faiss(tmp_path, data, key,
                                                  keeps_map, flag):
    xb, xq = data
    fi = build_faiss(key, xb)
    p = str(tmp_path / "ix.faiss")
    faiss.write_index(fi, p)
    mem = vecdex.read_index(p)
    mm = vecdex.read_index(p, getattr(vecdex, flag))
    assert mm.ntotal == mem.ntotal == fi.ntotal
    assert (os.path.realpath(p) in mapped_paths()) == keeps_map
    set_nprobe(fi, mem, mm)
    Dm, Im = mem.search(xq, 10)
    Dp, Ip = mm.search(xq, 10)
    np.testing.assert_array_equal(Ip, Im)
    np.testing.assert_array_equal(Dp, Dm)
    # faiss opening the same file, with the flag where faiss accepts it
    try:
        ff = faiss.read_index(p, getattr(faiss, flag))
    except RuntimeError:
        ff = faiss.read_index(p)
    set_nprobe(ff)
    Df, If = ff.search(xq, 10)
    if key.endswith("fs"):
        # 4-bit fast-scan: both libraries quantize the lookup tables, each
        # its own way, so near-ties order differently
        assert (If == Ip).mean() > 0.85
    else:
        assert (If == Ip).mean() > 0.99
        np.testing.assert_allclose(Dp, Df, rtol=1e-4, atol=1e-3)
    del mm, ff
    assert os.path.realpath(p) not in mapped_paths()


@pytest.mark.parametrize("key", ["Flat", "IDMap,Flat", "IVF16,Flat",
                                 "IVF16,PQ6", "IVF16,SQ8", "HNSW12"])
def test_changes_copy_and_leave_the_file_intact(tmp_path, data, key):
    xb, xq = data
    fi = build_faiss(key, xb)
    p = str(tmp_path / "ix.faiss")
    faiss.write_index(fi, p)
    before = sha(p)
    mm = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
    mem = vecdex.read_index(p)
    extra = xb[:50] + 0.5
    if key.startswith("IDMap") or key.startswith("IVF"):
        ids = np.arange(10 ** 6, 10 ** 6 + 50, dtype="int64")
        mm.add_with_ids(extra, ids)
        mem.add_with_ids(extra, ids)
    else:
        mm.add(extra)
        mem.add(extra)
    if not key.startswith("HNSW"):
        sel = np.arange(0, 600, 3, dtype="int64")
        if key.startswith("IDMap"):
            sel = sel * 7 + 3
        assert mm.remove_ids(sel) == mem.remove_ids(sel) > 0
    assert mm.ntotal == mem.ntotal
    set_nprobe(mem, mm)
    Dm, Im = mem.search(xq, 10)
    Dp, Ip = mm.search(xq, 10)
    np.testing.assert_array_equal(Ip, Im)
    np.testing.assert_allclose(Dp, Dm, rtol=1e-6)
    del mm
    assert sha(p) == before
    # a mapped index can be written over its own file (rename, no
    # truncation in place) and read back
    mm2 = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
    mm2.add(xb[:5]) if not (key.startswith("IDMap") or
                            key.startswith("IVF")) else None
    vecdex.write_index(mm2, p)
    back = vecdex.read_index(p)
    assert back.ntotal == mm2.ntotal


def test_reset_of_mapped_index(tmp_path, data):
    xb, xq = data
    p = str(tmp_path / "f.faiss")
    faiss.write_index(build_faiss("IVF16,Flat", xb), p)
    before = sha(p)
    mm = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
    mm.reset()
    assert mm.ntotal == 0
    mm.add(xb[:10])
    assert mm.search(xb[:1], 1)[1][0, 0] == 0
    assert sha(p) == before


# ---- hostile files ---------------------------------------------------------

@pytest.mark.parametrize("key", ["Flat", "IVF16,Flat", "IVF16,PQ6", "HNSW12"])
def test_truncated_file_is_refused_when_mapped(tmp_path, data, key):
    xb, _ = data
    p = str(tmp_path / "t.faiss")
    faiss.write_index(build_faiss(key, xb), p)
    raw = open(p, "rb").read()
    for cut in (len(raw) - 1, len(raw) - 9, len(raw) // 2, 40, 3):
        q = str(tmp_path / "cut.faiss")
        open(q, "wb").write(raw[:cut])
        with pytest.raises(RuntimeError, match="truncated|expected|out of"):
            vecdex.read_index(q, vecdex.IO_FLAG_MMAP)


def test_mmap_of_missing_file_and_directory(tmp_path):
    with pytest.raises(RuntimeError, match="cannot open"):
        vecdex.read_index(str(tmp_path / "nope"), vecdex.IO_FLAG_MMAP)
    with pytest.raises(RuntimeError):
        vecdex.read_index(str(tmp_path), vecdex.IO_FLAG_MMAP)
