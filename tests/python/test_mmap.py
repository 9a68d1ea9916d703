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
    ("HNSW12", True),       # graph (FAISS's arrays) and storage mapped
    ("PQ6", True),
    ("SQ8", True),
    ("HNSW12,SQ8", True),
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
                 "IO_FLAG_ONDISK_SAME_DIR", "IO_FLAG_SKIP_IVF_DATA",
                 "IO_FLAG_SKIP_PRECOMPUTE_TABLE"):
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
                                 "IVF16,PQ6", "IVF16,SQ8", "HNSW12", "PQ6",
                                 "SQ8"])
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


def test_ivfpq_tables_built_by_first_search(tmp_path, data):
    """IVF-PQ opened mapped builds its precomputed L2 tables at the first
    search, not at open: concurrent first searches from several threads get
    the in-memory index's exact results; SKIP_PRECOMPUTE_TABLE gives faiss's
    results with the same flag (both use residual tables)."""
    import threading
    xb, xq = data
    fi = build_faiss("IVF16,PQ6", xb)
    p = str(tmp_path / "pq.faiss")
    faiss.write_index(fi, p)
    before = sha(p)
    mem = vecdex.read_index(p)
    set_nprobe(mem)
    Dm, Im = mem.search(xq, 10)
    for _ in range(3):
        mm = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
        set_nprobe(mm)
        out = [None] * 4

        def run(t):
            out[t] = mm.search(xq, 10)
        ths = [threading.Thread(target=run, args=(t,)) for t in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        for Dp, Ip in out:
            np.testing.assert_array_equal(Ip, Im)
            np.testing.assert_array_equal(Dp, Dm)
    fl = vecdex.IO_FLAG_MMAP | vecdex.IO_FLAG_SKIP_PRECOMPUTE_TABLE
    sk = vecdex.read_index(p, fl)
    ff = faiss.read_index(p, faiss.IO_FLAG_MMAP |
                          faiss.IO_FLAG_SKIP_PRECOMPUTE_TABLE)
    never = vecdex.read_index(p)
    never.use_precomputed_table = -1
    set_nprobe(sk, ff, never)
    Ds, Is = sk.search(xq, 10)
    Dn, In = never.search(xq, 10)
    np.testing.assert_array_equal(Is, In)
    np.testing.assert_array_equal(Ds, Dn)
    Df, If = ff.search(xq, 10)
    assert (If == Is).mean() > 0.99
    np.testing.assert_allclose(Ds, Df, rtol=1e-4, atol=1e-3)
    assert (Is == Im).mean() > 0.99
    np.testing.assert_allclose(Ds, Dm, rtol=1e-4, atol=1e-3)
    del mm, sk
    assert sha(p) == before


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def file_rss_kb(path):
    """Resident pages of this process's maps of path (/proc/self/smaps)."""
    tot, cur = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
                cur = parts[-1] == path
            elif cur and line.startswith("Rss:"):
                tot += int(parts[1])
    return tot


@pytest.mark.parametrize("key", ["IVF64,PQ8", "IVF64,Flat"])
def test_mapped_ivf_open_touches_little_of_the_file(tmp_path, key):
    """FAISS's lists put ids at odd offsets, next to the codes: they are
    copied at first use, so a mapped open leaves the file's pages alone."""
    rng = np.random.default_rng(11)
    xb = rng.standard_normal((40000, 32)).astype("float32")
    fi = faiss.index_factory(32, key)
    fi.train(xb[:5000])
    fi.add(xb)
    p = str(tmp_path / "f.faiss")
    faiss.write_index(fi, p)
    mm = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
    size_kb = os.path.getsize(p) // 1024
    assert file_rss_kb(os.path.realpath(p)) < size_kb * 0.1
    mm.nprobe = fi.nprobe = 64
    xq = xb[:20] + 0.01
    Dp, Ip = mm.search(xq, 5)
    Df, If = fi.search(xq, 5)
    assert (Ip == If).mean() > 0.99
    np.testing.assert_allclose(Dp, Df, rtol=1e-4, atol=1e-3)


def test_hnsw_graph_searched_from_the_map(tmp_path):
    """HNSW opened mapped keeps FAISS's neighbors / offsets arrays in the
    map: opening costs a small part of the graph's memory, searches equal
    the loaded index, and writing the mapped index gives the same bytes."""
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((20000, 8)).astype("float32")
    xq = rng.standard_normal((30, 8)).astype("float32")
    fi = faiss.IndexHNSWFlat(8, 32)
    fi.add(xb)
    p = str(tmp_path / "h.faiss")
    faiss.write_index(fi, p)
    graph_kb = 20000 * 64 * 4 // 1024
    r0 = rss_kb()
    mm = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
    grow_mm = rss_kb() - r0
    r0 = rss_kb()
    mem = vecdex.read_index(p)
    grow_mem = rss_kb() - r0
    assert grow_mm < graph_kb // 4, (grow_mm, grow_mem, graph_kb)
    # (the loaded index's growth is not asserted: the allocator may serve it
    # from memory the process already holds after earlier tests)
    for ix in (mm, mem, fi):
        ix.hnsw.efSearch = 48
    Dm, Im = mem.search(xq, 10)
    Dp, Ip = mm.search(xq, 10)
    np.testing.assert_array_equal(Ip, Im)
    np.testing.assert_array_equal(Dp, Dm)
    Df, If = fi.search(xq, 10)
    assert (If == Ip).mean() > 0.99
    assert (mm.hnsw.levels == faiss.vector_to_array(fi.hnsw.levels)).all()
    a, b = str(tmp_path / "a.faiss"), str(tmp_path / "b.faiss")
    vecdex.write_index(mm, a)
    vecdex.write_index(mem, b)
    assert sha(a) == sha(b)
    # a change copies the graph first; the file is left as it was
    before = sha(p)
    mm.add(xb[:100] + 0.25)
    mem.add(xb[:100] + 0.25)
    np.testing.assert_array_equal(mm.search(xq, 10)[1], mem.search(xq, 10)[1])
    assert sha(p) == before


def test_hnsw_file_altered_after_mapping(tmp_path, data):
    """Graph bytes overwritten in place after a mapped open (the map shows
    the file as it is now): searches read nothing outside the map, return
    ids of stored vectors, and do not crash."""
    xb, xq = data
    p = str(tmp_path / "h.faiss")
    faiss.write_index(build_faiss("HNSW12", xb), p)
    size = os.path.getsize(p)
    storage = NB * D * 4 + 200
    rng = np.random.default_rng(5)
    for fill in ("random", "big"):
        mm = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
        n = size - storage - 300
        junk = (rng.integers(0, 256, n, dtype="uint8").tobytes()
                if fill == "random" else b"\x7f" * n)
        fd = os.open(p, os.O_WRONLY)
        try:
            os.pwrite(fd, junk, 300)
        finally:
            os.close(fd)
        Dp, Ip = mm.search(xq, 10)
        assert ((Ip >= -1) & (Ip < NB)).all()
        del mm
        faiss.write_index(build_faiss("HNSW12", xb), p)


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


# ---- on-disk inverted lists ------------------------------------------------

def make_shards(tmp_path, key, xb, nshards=3):
    tr = faiss.index_factory(D, key)
    tr.train(xb[:2000])
    trained = str(tmp_path / "trained.index")
    faiss.write_index(tr, trained)
    step = len(xb) // nshards
    shards = []
    for i in range(nshards):
        ix = faiss.read_index(trained)
        ix.add_with_ids(xb[i * step:(i + 1) * step],
                        np.arange(i * step, (i + 1) * step, dtype="int64"))
        shards.append(str(tmp_path / ("shard%d.index" % i)))
        faiss.write_index(ix, shards[-1])
    return trained, shards


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,PQ6", "IVF16,SQ8"])
def test_merge_ondisk_both_ways_with_faiss(tmp_path, data, key):
    from faiss.contrib.ondisk import merge_ondisk as faiss_merge
    from vecdex.contrib.ondisk import merge_ondisk
    xb, xq = data
    trained, shards = make_shards(tmp_path, key, xb)
    shard_sums = [sha(s) for s in shards]
    fi = faiss.read_index(trained)
    faiss_merge(fi, shards, str(tmp_path / "f.ivfdata"))
    faiss.write_index(fi, str(tmp_path / "f.index"))
    vi = vecdex.read_index(trained)
    merge_ondisk(vi, shards, str(tmp_path / "v.ivfdata"))
    vecdex.write_index(vi, str(tmp_path / "v.index"))
    assert vi.ntotal == fi.ntotal == NB
    assert [sha(s) for s in shards] == shard_sums
    # the same layout byte for byte (compact, lists in order)
    assert sha(str(tmp_path / "f.ivfdata")) == sha(str(tmp_path / "v.ivfdata"))
    # reference: all the data added to one in-memory index
    ref = faiss.read_index(trained)
    ref.add_with_ids(xb, np.arange(NB, dtype="int64"))
    fv = faiss.read_index(str(tmp_path / "v.index"))        # faiss <- vecdex
    vf = vecdex.read_index(str(tmp_path / "f.index"))       # vecdex <- faiss
    vfm = vecdex.read_index(str(tmp_path / "f.index"), vecdex.IO_FLAG_MMAP)
    set_nprobe(ref, fi, vi, fv, vf, vfm)
    Dr, Ir = ref.search(xq, 10)
    for ix in (fi, vi, fv, vf, vfm):
        D_, I_ = ix.search(xq, 10)
        assert (I_ == Ir).mean() > 0.99
        np.testing.assert_allclose(D_, Dr, rtol=1e-4, atol=1e-3)


def test_add_to_ondisk_index_rewrites_the_data_file_safely(tmp_path, data):
    from vecdex.contrib.ondisk import merge_ondisk
    xb, xq = data
    trained, shards = make_shards(tmp_path, "IVF16,Flat", xb[:2000], 2)
    vi = vecdex.read_index(trained)
    data_file = str(tmp_path / "v.ivfdata")
    merge_ondisk(vi, shards, data_file)
    vecdex.write_index(vi, str(tmp_path / "v.index"))
    before = sha(data_file)
    # a second reader keeps searching its (old) map while the file changes
    reader = vecdex.read_index(str(tmp_path / "v.index"))
    reader.nprobe = 4
    D0, I0 = reader.search(xq, 5)
    vi.add_with_ids(xb[2000:], np.arange(2000, NB, dtype="int64"))
    assert sha(data_file) == before           # copy-on-write in memory
    vecdex.write_index(vi, str(tmp_path / "v.index"))
    assert sha(data_file) != before           # replaced by rename
    assert os.path.getsize(data_file) == NB * (D * 4 + 8)
    D1, I1 = reader.search(xq, 5)
    np.testing.assert_array_equal(I1, I0)
    fv = faiss.read_index(str(tmp_path / "v.index"))
    ref = faiss.read_index(trained)
    ref.add_with_ids(xb, np.arange(NB, dtype="int64"))
    set_nprobe(fv, ref)
    assert fv.ntotal == NB
    np.testing.assert_array_equal(fv.search(xq, 10)[1], ref.search(xq, 10)[1])


def test_read_only_and_same_dir_flags(tmp_path, data):
    from faiss.contrib.ondisk import merge_ondisk as faiss_merge
    xb, xq = data
    sub = tmp_path / "a"
    sub.mkdir()
    trained, shards = make_shards(sub, "IVF16,Flat", xb)
    fi = faiss.read_index(trained)
    faiss_merge(fi, shards, str(sub / "lists.ivfdata"))
    faiss.write_index(fi, str(sub / "x.index"))
    # move both files: the record still names the old place
    moved = tmp_path / "b"
    moved.mkdir()
    os.rename(str(sub / "x.index"), str(moved / "x.index"))
    os.rename(str(sub / "lists.ivfdata"), str(moved / "lists.ivfdata"))
    with pytest.raises(RuntimeError, match="lists.ivfdata"):
        vecdex.read_index(str(moved / "x.index"))
    flags = vecdex.IO_FLAG_ONDISK_SAME_DIR | vecdex.IO_FLAG_READ_ONLY
    vi = vecdex.read_index(str(moved / "x.index"), flags)
    ff = faiss.read_index(str(moved / "x.index"), flags)
    set_nprobe(vi, ff)
    np.testing.assert_array_equal(vi.search(xq, 10)[1], ff.search(xq, 10)[1])


def ondisk_file(tmp_path, xb):
    from faiss.contrib.ondisk import merge_ondisk as faiss_merge
    trained, shards = make_shards(tmp_path, "IVF16,Flat", xb, 2)
    fi = faiss.read_index(trained)
    faiss_merge(fi, shards, str(tmp_path / "d.ivfdata"))
    faiss.write_index(fi, str(tmp_path / "x.index"))
    raw = bytearray(open(str(tmp_path / "x.index"), "rb").read())
    return raw, raw.rfind(b"ilod")


def test_hostile_ondisk_records(tmp_path, data):
    xb, _ = data
    raw, at = ondisk_file(tmp_path, xb)
    nlist = 16
    table = at + 4 + 16 + 8           # after fourcc, nlist, code_size, count
    after_table = table + nlist * 24
    q = str(tmp_path / "bad.index")

    def expect(buf, match):
        open(q, "wb").write(bytes(buf))
        with pytest.raises(RuntimeError, match=match):
            vecdex.read_index(q)
        with pytest.raises(RuntimeError, match=match):
            vecdex.read_index(q, vecdex.IO_FLAG_MMAP)

    def patch64(off, v):
        b = bytearray(raw)
        b[off:off + 8] = struct.pack("<Q", v & (2 ** 64 - 1))
        return b

    # list 3: size > capacity, offset past the end, offset overflowing
    size3, cap3, off3 = struct.unpack_from("<QQQ", raw, table + 3 * 24)
    expect(patch64(table + 3 * 24, cap3 + 1), "capacity")
    expect(patch64(table + 3 * 24 + 16, 10 ** 9), "past the end")
    expect(patch64(table + 3 * 24 + 16, 2 ** 64 - 8), "past the end")
    expect(patch64(table + 3 * 24 + 8, 2 ** 62), "past the end")
    # table count, slots count, name length
    expect(patch64(at + 20, 17), "expected 16")
    expect(patch64(after_table, 2 ** 60), "free slots")
    nslots = struct.unpack_from("<Q", raw, after_table)[0]
    name_at = after_table + 8 + 16 * nslots
    if nslots:
        expect(patch64(after_table + 8, 2 ** 63), "free slot")
    expect(patch64(name_at, 0), "file name")
    expect(patch64(name_at, 2 ** 40), "file name")
    b = bytearray(raw)
    b[name_at + 9] = 0
    expect(b, "NUL")
    # totsize larger than the data file / data file truncated
    tot_at = len(raw) - 8
    expect(patch64(tot_at, struct.unpack_from("<Q", raw, tot_at)[0] + 8),
           "past the end|truncated|holds")
    data_file = str(tmp_path / "d.ivfdata")
    full = open(data_file, "rb").read()
    open(data_file, "wb").write(full[:len(full) // 2])
    expect(raw, "truncated")
    os.remove(data_file)
    expect(raw, "cannot open")
    # truncated record
    for cut in (at + 2, at + 10, table + 5, after_table + 3, len(raw) - 4):
        expect(raw[:cut], "truncated")


def test_merge_ondisk_refuses_incompatible_shards(tmp_path, data):
    from vecdex.contrib.ondisk import merge_ondisk
    xb, _ = data
    trained, shards = make_shards(tmp_path, "IVF16,Flat", xb[:2000], 2)
    other = faiss.index_factory(D, "IVF8,Flat")
    other.train(xb[:1000])
    faiss.write_index(other, str(tmp_path / "other.index"))
    vi = vecdex.read_index(trained)
    out = str(tmp_path / "m.ivfdata")
    with pytest.raises(ValueError, match="shard 1"):
        merge_ondisk(vi, [shards[0], str(tmp_path / "other.index")], out)
    with pytest.raises(RuntimeError, match="cannot open"):
        merge_ondisk(vi, [shards[0], str(tmp_path / "missing")], out)
    assert vi.ntotal == 0 and not os.path.exists(out)


def test_merge_from(data):
    xb, xq = data
    q = vecdex.IndexFlatL2(D)
    a = vecdex.IndexIVFFlat(q, D, 16)
    a.train(xb)
    b = vecdex.deserialize_index(vecdex.serialize_index(a))
    a.add(xb[:1000])
    b.add(xb[1000:])
    a.merge_from(b, 1000)
    assert a.ntotal == NB and b.ntotal == 0
    ref = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, 16)
    ref.train(xb)
    fa = faiss.deserialize_index(faiss.serialize_index(ref))
    fa.add(xb[:1000])
    fb = faiss.deserialize_index(faiss.serialize_index(ref))
    fb.add(xb[1000:])
    fa.merge_from(fb, 1000)
    a.nprobe = fa.nprobe = 16
    Da, Ia = a.search(xq, 10)
    Df, If = fa.search(xq, 10)
    # nprobe = nlist: exact search, whatever the two k-means found
    np.testing.assert_array_equal(Ia, If)
    with pytest.raises(ValueError, match="incompatible"):
        a.merge_from(vecdex.IndexIVFFlat(vecdex.IndexFlatL2(D), D, 8))
    with pytest.raises(RuntimeError):  # faiss: RuntimeError too
        a.merge_from(vecdex.IndexFlatL2(D))


def test_faiss_ondisk_lists_grown_by_add(tmp_path, data):
    """faiss's own growth (power-of-two capacities, moved lists, free
    slots) read by vecdex, searched the same; written back, read by faiss."""
    xb, xq = data
    q = faiss.IndexFlatL2(D)
    fi = faiss.IndexIVFFlat(q, D, 16)
    fi.train(xb)
    il = faiss.OnDiskInvertedLists(16, fi.code_size,
                                   str(tmp_path / "grown.ivfdata"))
    fi.replace_invlists(il, True)
    il.this.disown()
    for i in range(0, NB, 700):
        fi.add(xb[i:i + 700])
    faiss.write_index(fi, str(tmp_path / "grown.index"))
    for flags in (0, vecdex.IO_FLAG_MMAP):
        vi = vecdex.read_index(str(tmp_path / "grown.index"), flags)
        set_nprobe(fi, vi)
        Df, If = fi.search(xq, 10)
        Dv, Iv = vi.search(xq, 10)
        np.testing.assert_array_equal(Iv, If)
        np.testing.assert_allclose(Dv, Df, rtol=1e-5, atol=1e-5)
    vecdex.write_index(vi, str(tmp_path / "back.index"))   # unchanged lists
    fb = faiss.read_index(str(tmp_path / "back.index"))
    set_nprobe(fb)
    np.testing.assert_array_equal(fb.search(xq, 10)[1], If)


# ---- replace_invlists ---------------------------------------------------------

def test_replace_invlists_as_faiss(tmp_path, data):
    """A trained empty index takes a populated (mapped) index's lists, as
    faiss's replace_invlists(il, own) + ntotal; the lists outlive their
    first holder (reference counted) and the file stays intact."""
    xb, xq = data
    key = "IVF16,Flat"
    trained, _ = make_shards(tmp_path, key, xb, nshards=1)
    full = faiss.read_index(trained)
    full.add(xb)
    p = str(tmp_path / "full.index")
    faiss.write_index(full, p)
    before = sha(p)
    # faiss: the lists of one index handed to another
    ff = faiss.read_index(trained)
    fsrc = faiss.read_index(p)
    ff.replace_invlists(fsrc.invlists, False)
    ff.ntotal = fsrc.ntotal
    for own in (False, True):
        vt = vecdex.read_index(trained)
        src = vecdex.read_index(p, vecdex.IO_FLAG_MMAP)
        vt.replace_invlists(src.invlists, own)
        assert vt.ntotal == NB
        del src  # the lists stay alive with vt
        set_nprobe(vt, ff)
        Dv, Iv = vt.search(xq, 10)
        Df, If = ff.search(xq, 10)
        assert (Iv == If).mean() > 0.99
        np.testing.assert_allclose(Dv, Df, rtol=1e-4, atol=1e-3)
        # every list probed: exact, as brute force over the same data
        Db, Ib = faiss.knn(xq, xb, 10)
        vt.nprobe = 16
        Dv, Iv = vt.search(xq, 10)
        assert (Iv == Ib).mean() > 0.99
        np.testing.assert_allclose(Dv, Db, rtol=1e-4, atol=1e-3)
        vt.add(xb[:5])  # copies the borrowed lists it changes
        assert vt.ntotal == NB + 5
    assert sha(p) == before


def test_replace_invlists_shares_and_refuses(tmp_path, data):
    xb, xq = data
    a = vecdex.index_factory(D, "IVF16,Flat")
    a.train(xb)
    b = vecdex.index_factory(D, "IVF16,Flat")
    b.train(xb)
    a.add(xb[:100])
    b.replace_invlists(a.invlists)
    assert b.ntotal == 100
    # shared, as in faiss: entries added through one are in the other's lists
    a.add(xb[100:150])
    assert sum(b.invlists.list_size(l) for l in range(16)) == 150
    c = vecdex.index_factory(D, "IVF8,Flat")
    c.train(xb)
    with pytest.raises(RuntimeError, match="nlist"):
        c.replace_invlists(a.invlists)
    pq = vecdex.index_factory(D, "IVF16,PQ6")
    pq.train(xb)
    with pytest.raises(RuntimeError, match="incompatible"):
        pq.replace_invlists(a.invlists)
    with pytest.raises(TypeError, match="InvertedLists"):
        a.replace_invlists(np.zeros(3))
    assert c.ntotal == 0 and pq.ntotal == 0
