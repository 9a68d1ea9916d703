"""Binary indexes in FAISS's file format (impl/index_read.cpp and
index_write.cpp of FAISS, read for the layout): IBxF (flat), IBwF (IVF),
IBMp / IBM2 (IDMap / IDMap2), IBFf (from-float), IBHf (HNSW), IBHh (hash),
IBHm (multi-hash).  Little-endian, sizes as in FAISS: the header is
d (int32), code_size (int32), ntotal (int64), is_trained (uint8),
metric_type (int32).

The reader trusts nothing: every count is checked against the bytes that
remain before anything is allocated, and a corrupt or truncated buffer is a
RuntimeError naming the problem, never a crash or a giant allocation.
"""
import struct

import numpy as np

from . import _binary as B

__all__ = ["serialize_index_binary", "deserialize_index_binary",
           "write_index_binary", "read_index_binary"]


class _W:
    def __init__(self):
        self.parts = []

    def raw(self, b):
        self.parts.append(bytes(b))

    def i32(self, v):
        self.raw(struct.pack("<i", int(v)))

    def u8(self, v):
        self.raw(struct.pack("<B", int(v)))

    def i64(self, v):
        self.raw(struct.pack("<q", int(v)))

    def u64(self, v):
        self.raw(struct.pack("<Q", int(v)))

    def vec(self, a, dtype):
        a = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
        self.u64(a.size)
        self.raw(a.tobytes())

    def data(self):
        return b"".join(self.parts)


class _R:
    def __init__(self, buf):
        self.b = memoryview(buf).cast("B")
        self.o = 0

    def left(self):
        return len(self.b) - self.o

    def take(self, n, what):
        if n < 0 or n > self.left():
            raise RuntimeError(f"read_index_binary: truncated or corrupt "
                               f"file: {what} needs {n} bytes, {self.left()} "
                               f"remain")
        r = self.b[self.o:self.o + n]
        self.o += n
        return r

    def i32(self, what):
        return struct.unpack("<i", self.take(4, what))[0]

    def u8(self, what):
        return self.take(1, what)[0]

    def i64(self, what):
        return struct.unpack("<q", self.take(8, what))[0]

    def u64(self, what):
        return struct.unpack("<Q", self.take(8, what))[0]

    def vec(self, dtype, what, expect=None):
        n = self.u64(what + " size")
        item = np.dtype(dtype).itemsize
        if expect is not None and n != expect:
            raise RuntimeError(f"read_index_binary: {what} has {n} entries, "
                               f"expected {expect}")
        if n > self.left() // item:
            raise RuntimeError(f"read_index_binary: {what} claims {n} "
                               f"entries, only {self.left()} bytes remain")
        return np.frombuffer(self.take(n * item, what), dtype=dtype).copy()

    def fourcc(self):
        return bytes(self.take(4, "fourcc"))


def _write_header(idx, w):
    w.i32(idx.d)
    w.i32(idx.code_size)
    w.i64(idx.ntotal)
    w.u8(1 if idx.is_trained else 0)
    w.i32(idx.metric_type)


def _read_header(r):
    d = r.i32("d")
    cs = r.i32("code_size")
    ntotal = r.i64("ntotal")
    trained = r.u8("is_trained")
    metric = r.i32("metric_type")
    if d <= 0 or d % 8 or d > (1 << 24) or cs != d // 8:
        raise RuntimeError(f"read_index_binary: bad header: d={d}, "
                           f"code_size={cs} (expected d > 0, a multiple of 8, "
                           f"code_size = d / 8)")
    if ntotal < 0:
        raise RuntimeError(f"read_index_binary: bad header: ntotal={ntotal}")
    return d, cs, ntotal, bool(trained), metric


def _set_header(idx, h):
    idx.d, idx.code_size, idx.ntotal, idx.is_trained, idx.metric_type = h


def _float_index_bytes(findex):
    from ._vecdex import serialize_index
    return serialize_index(findex).tobytes()


def _write(idx, w):
    if isinstance(idx, B.IndexBinaryFlat):
        w.raw(b"IBxF")
        _write_header(idx, w)
        w.vec(idx._xb, np.uint8)
    elif isinstance(idx, B.IndexBinaryIVF):
        w.raw(b"IBwF")
        _write_header(idx, w)
        w.u64(idx.nlist)
        w.u64(idx.nprobe)
        _write(idx.quantizer, w)
        # direct map: type, array (Array kind), pairs (Hashtable kind)
        t = idx.direct_map_type
        w.u8(t)
        if t == 1:
            arr = np.empty(idx.ntotal, np.int64)
            for key, (l, o) in idx._dm.items():
                arr[key] = (l << 32) | o
            w.vec(arr, np.int64)
        else:
            w.vec(np.empty(0, np.int64), np.int64)
        if t == 2:
            pairs = np.array([(k, (l << 32) | o) for k, (l, o) in
                              idx._dm.items()], dtype=np.int64).reshape(-1)
            w.vec(pairs, np.int64)
        _write_invlists(idx.invlists, w)
    elif isinstance(idx, B.IndexBinaryFromFloat):
        w.raw(b"IBFf")
        _write_header(idx, w)
        w.raw(_float_index_bytes(idx.index))
    elif isinstance(idx, B.IndexBinaryHNSW):
        w.raw(b"IBHf")
        _write_header(idx, w)
        w.raw(_hnsw_section(idx))
        _write(idx.storage, w)
    elif isinstance(idx, B.IndexBinaryIDMap):
        w.raw(b"IBM2" if isinstance(idx, B.IndexBinaryIDMap2) else b"IBMp")
        _write_header(idx, w)
        _write(idx.index, w)
        w.vec(idx.id_map, np.int64)
    else:
        from . import _binary_hash as H
        if isinstance(idx, (H.IndexBinaryHash, H.IndexBinaryMultiHash)):
            H.write(idx, w, _write_header, _write)
            return
        raise RuntimeError(f"write_index_binary: don't know how to serialize "
                           f"{type(idx).__name__}")


def _write_invlists(il, w):
    w.raw(b"ilar")
    w.u64(il.nlist)
    w.u64(il.code_size)
    sizes = np.array([len(i) for i in il.ids], dtype=np.uint64)
    if int((sizes > 0).sum()) > il.nlist // 2:
        w.raw(b"full")
        w.vec(sizes, np.uint64)
    else:
        w.raw(b"sprs")
        nz = np.nonzero(sizes)[0]
        w.vec(np.stack([nz, sizes[nz]], axis=1).reshape(-1).astype(np.uint64),
              np.uint64)
    for l in range(il.nlist):
        if len(il.ids[l]):
            w.raw(np.ascontiguousarray(il.codes[l]).tobytes())
            w.raw(np.ascontiguousarray(il.ids[l], dtype=np.int64).tobytes())


def _read_invlists(r, nlist, code_size):
    h = r.fourcc()
    il = B._BinaryInvertedLists(nlist, code_size)
    if h == b"il00":
        return il
    if h != b"ilar":
        raise RuntimeError(f"read_index_binary: inverted lists of kind "
                           f"{h!r} are not supported (expected 'ilar')")
    n = r.u64("invlists nlist")
    cs = r.u64("invlists code_size")
    if n != nlist or cs != code_size:
        raise RuntimeError(f"read_index_binary: inverted lists have nlist={n}"
                           f", code_size={cs}; the index has {nlist}, "
                           f"{code_size}")
    kind = r.fourcc()
    if kind == b"full":
        sizes = r.vec(np.uint64, "list sizes", expect=nlist)
    elif kind == b"sprs":
        pairs = r.vec(np.uint64, "sparse list sizes")
        if pairs.size % 2:
            raise RuntimeError("read_index_binary: odd sparse size table")
        sizes = np.zeros(nlist, np.uint64)
        for l, s in pairs.reshape(-1, 2):
            if l >= nlist:
                raise RuntimeError(f"read_index_binary: list {l} >= nlist "
                                   f"{nlist}")
            sizes[l] = s
    else:
        raise RuntimeError(f"read_index_binary: unknown list type {kind!r}")
    per = code_size + 8
    for l in range(nlist):
        s = int(sizes[l])
        if s == 0:
            continue
        if s > r.left() // per:
            raise RuntimeError(f"read_index_binary: list {l} claims {s} "
                               f"entries, only {r.left()} bytes remain")
        il.codes[l] = np.frombuffer(r.take(s * code_size, "codes"),
                                    np.uint8).reshape(s, code_size).copy()
        il.ids[l] = np.frombuffer(r.take(s * 8, "ids"), np.int64).copy()
    return il


# ---- HNSW: the graph section, shared with vecdex's float IndexHNSWFlat ----

_FLOAT_HDR = 4 + 4 + 8 + 8 + 8 + 1 + 4  # fourcc d ntotal dummy dummy trained metric


def _hnsw_section(idx):
    """The HNSW struct bytes of the float graph (IHNf header and IxF2
    storage cut off)."""
    b = _float_index_bytes(idx._f)
    if b[:4] != b"IHNf":
        raise RuntimeError("write_index_binary: unexpected float HNSW layout")
    d = idx._f.d
    storage = 4 + 4 + 8 + 8 + 8 + 1 + 4 + 8 + 4 * d * idx._f.ntotal
    return b[_FLOAT_HDR:len(b) - storage]


def _read_hnsw_section(r):
    """Skips (checking sizes) FAISS's HNSW struct; returns its bytes."""
    start = r.o
    r.vec(np.float64, "assign_probas")
    cum = r.vec(np.int32, "cum_nneighbor_per_level")
    levels = r.vec(np.int32, "levels")
    offsets = r.vec(np.uint64, "offsets")
    neigh = r.vec(np.int32, "neighbors")
    ep = r.i32("entry_point")
    r.i32("max_level")
    r.i32("efConstruction")
    r.i32("efSearch")
    r.i32("upper_beam")
    n = levels.size
    if offsets.size != n + 1 or (n and int(offsets[-1]) != neigh.size):
        raise RuntimeError("read_index_binary: inconsistent HNSW offsets")
    if n and not (0 <= ep < n):
        raise RuntimeError(f"read_index_binary: HNSW entry point {ep} out of "
                           f"range [0, {n})")
    if neigh.size and (neigh.min() < -1 or neigh.max() >= max(n, 1)):
        raise RuntimeError("read_index_binary: HNSW neighbour out of range")
    if cum.size == 0 or (levels.size and (levels.min() < 0 or
                                          levels.max() >= cum.size)):
        raise RuntimeError("read_index_binary: bad HNSW levels")
    return bytes(r.b[start:r.o]), n


def _read(r, depth=0):
    if depth > 8:
        raise RuntimeError("read_index_binary: indexes nested too deep")
    h = r.fourcc()
    if h == b"IBxF":
        hdr = _read_header(r)
        idx = B.IndexBinaryFlat(hdr[0])
        xb = r.vec(np.uint8, "codes", expect=hdr[2] * hdr[1])
        _set_header(idx, hdr)
        idx._xb = xb.reshape(hdr[2], hdr[1])
        return idx
    if h == b"IBwF":
        hdr = _read_header(r)
        nlist = r.u64("nlist")
        nprobe = r.u64("nprobe")
        if nlist == 0 or nlist > (1 << 28):
            raise RuntimeError(f"read_index_binary: bad nlist {nlist}")
        q = _read(r, depth + 1)
        if q.d != hdr[0]:
            raise RuntimeError(f"read_index_binary: quantizer d={q.d}, index "
                               f"d={hdr[0]}")
        dm_type = r.u8("direct map type")
        if dm_type > 2:
            raise RuntimeError(f"read_index_binary: bad direct map type "
                               f"{dm_type}")
        r.vec(np.int64, "direct map")
        if dm_type == 2:
            r.vec(np.int64, "direct map hashtable")
        idx = B.IndexBinaryIVF(q, hdr[0], int(nlist))
        _set_header(idx, hdr)
        idx.nprobe = int(nprobe)
        idx.own_fields = True
        idx.invlists = _read_invlists(r, int(nlist), hdr[1])
        if idx.invlists.compute_ntotal() != hdr[2]:
            raise RuntimeError(f"read_index_binary: lists hold "
                               f"{idx.invlists.compute_ntotal()} codes, "
                               f"ntotal is {hdr[2]}")
        if dm_type:
            idx.direct_map_type = dm_type
            idx._build_dm()
        return idx
    if h in (b"IBMp", b"IBM2"):
        hdr = _read_header(r)
        sub = _read(r, depth + 1)
        ids = r.vec(np.int64, "id_map", expect=sub.ntotal)
        idx = (B.IndexBinaryIDMap2 if h == b"IBM2" else B.IndexBinaryIDMap)(
            B.IndexBinaryFlat(hdr[0]))
        idx.index = sub
        _set_header(idx, hdr)
        idx.ntotal = sub.ntotal
        idx.id_map = ids
        idx.own_fields = True
        if h == b"IBM2":
            idx.construct_rev_map()
        return idx
    if h == b"IBFf":
        hdr = _read_header(r)
        from ._vecdex import deserialize_index
        rest = np.frombuffer(r.take(r.left(), "float index"), np.uint8)
        try:
            f = deserialize_index(rest.copy())
        except Exception as e:
            raise RuntimeError(f"read_index_binary: bad float index in IBFf: "
                               f"{e}") from None
        idx = B.IndexBinaryFromFloat(f)
        _set_header(idx, hdr)
        idx.ntotal = f.ntotal
        idx.own_fields = True
        return idx
    if h == b"IBHf":
        hdr = _read_header(r)
        sec, n = _read_hnsw_section(r)
        storage = _read(r, depth + 1)
        if not isinstance(storage, B.IndexBinaryFlat) or \
                storage.ntotal != n or storage.d != hdr[0]:
            raise RuntimeError("read_index_binary: HNSW storage does not "
                               "match the graph")
        return _hnsw_from(hdr, sec, storage)
    if h in (b"IBHh", b"IBHm"):
        from . import _binary_hash as H
        return H.read(h, r, _read_header, _set_header, _read, depth)
    raise RuntimeError(f"read_index_binary: unknown or unsupported index "
                       f"fourcc {h!r}")


def _hnsw_from(hdr, sec, storage):
    """Rebuilds vecdex's float HNSW from FAISS's graph and the codes."""
    from ._vecdex import deserialize_index
    d = hdr[0]
    xf = B.binary_to_real(storage._xb) if storage.ntotal else \
        np.empty((0, d), np.float32)
    w = _W()
    w.raw(b"IHNf")
    w.i32(d)
    w.i64(storage.ntotal)
    w.i64(1 << 20)
    w.i64(1 << 20)
    w.u8(1)
    w.i32(1)
    w.raw(sec)
    w.raw(b"IxF2")
    w.i32(d)
    w.i64(storage.ntotal)
    w.i64(1 << 20)
    w.i64(1 << 20)
    w.u8(1)
    w.i32(1)
    w.vec(xf, np.float32)
    try:
        f = deserialize_index(np.frombuffer(w.data(), np.uint8).copy())
    except Exception as e:
        raise RuntimeError(f"read_index_binary: bad HNSW graph: {e}") from None
    idx = B.IndexBinaryHNSW(d, 16)
    idx._f = f
    idx.storage = storage
    _set_header(idx, hdr)
    idx.ntotal = storage.ntotal
    return idx


def serialize_index_binary(index):
    """The index in FAISS's format, as a uint8 numpy array."""
    w = _W()
    _write(index, w)
    return np.frombuffer(w.data(), dtype=np.uint8).copy()


def deserialize_index_binary(data):
    """An index from the bytes of serialize_index_binary (vecdex's or
    FAISS's); RuntimeError for a corrupt or truncated buffer."""
    a = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    r = _R(a.tobytes())
    idx = _read(r)
    if r.left():
        raise RuntimeError(f"read_index_binary: {r.left()} trailing bytes "
                           f"after the index")
    return idx


def write_index_binary(index, fname):
    """Writes the index to `fname` in FAISS's format (a temporary file
    renamed into place)."""
    import os
    data = serialize_index_binary(index).tobytes()
    if hasattr(fname, "write"):
        fname.write(data)
        return
    tmp = f"{fname}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, fname)


def read_index_binary(fname, io_flags=0):
    """Reads a binary index written by vecdex or FAISS."""
    if hasattr(fname, "read"):
        return deserialize_index_binary(np.frombuffer(fname.read(), np.uint8))
    with open(fname, "rb") as f:
        return deserialize_index_binary(np.frombuffer(f.read(), np.uint8))
