"""Hash-based binary indexes under FAISS's names.

IndexBinaryHash(d, b): codes bucketed by their first b bits (read as a
little-endian bit string, bit 0 the low bit of byte 0); a query visits its
own bucket and those whose keys differ in up to `nflip` bits, in FAISS's
order (fewest flips first; among equal counts, the flip masks in decreasing
value), and compares exactly there.

IndexBinaryMultiHash(d, nhash, b): nhash tables over consecutive b-bit
slices, codes kept in an IndexBinaryFlat `storage`; the candidates of all
tables are compared once.

The k-NN selection is the C Hamming core (FAISS's heap rule), so equal
distances resolve as FAISS's do wherever the scan order is FAISS's: exact
for IndexBinaryHash; IndexBinaryMultiHash scans its shortlist by increasing
id (FAISS's is an unordered set), so only ties at the k-th distance may
pick other ids.
"""
from itertools import combinations

import numpy as np

from . import _vecdex
from . import _binary as B

__all__ = ["IndexBinaryHash", "IndexBinaryMultiHash"]


def _slices(x, nslice, b):
    """The nslice b-bit keys of each code: int64 (n, nslice)."""
    bits = np.unpackbits(x, axis=1, bitorder="little")[:, :nslice * b]
    w = (np.int64(1) << np.arange(b, dtype=np.int64))
    return (bits.reshape(x.shape[0], nslice, b).astype(np.int64) * w).sum(2)


def _flip_masks(b, nflip):
    """The key masks a query visits, in FAISS's order."""
    yield 0
    for f in range(1, min(nflip, b) + 1):
        for pos in combinations(range(b - 1, -1, -1), f):
            m = 0
            for p in pos:
                m |= 1 << p
            yield m


class _HashList:
    __slots__ = ("ids", "vecs")

    def __init__(self, code_size):
        self.ids = np.empty(0, np.int64)
        self.vecs = np.empty((0, code_size), np.uint8)


class IndexBinaryHash(B.IndexBinary):
    """Codes bucketed by a b-bit prefix (FAISS's IndexBinaryHash)."""

    def __init__(self, d=0, b=0):
        super().__init__(d)
        b = int(b)
        if b < 0 or b > min(self.d, 63):
            raise ValueError(f"IndexBinaryHash: b must be in [0, "
                             f"{min(self.d, 63)}], got {b}")
        self.b = b
        self.nflip = 0
        self.invlists = {}

    def reset(self):
        self.invlists = {}
        self.ntotal = 0

    def add(self, x):
        x = self._x(x, "add")
        self.add_with_ids(x, np.arange(self.ntotal, self.ntotal + x.shape[0]))

    def add_with_ids(self, x, ids):
        x = self._x(x, "add_with_ids")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != x.shape[0]:
            raise B.ShapeError(f"add_with_ids: {x.shape[0]} codes but "
                               f"{ids.shape[0]} ids")
        keys = _slices(x, 1, self.b)[:, 0] if self.b else \
            np.zeros(x.shape[0], np.int64)
        for key in dict.fromkeys(keys.tolist()):
            m = keys == key
            il = self.invlists.setdefault(key, _HashList(self.code_size))
            il.ids = np.concatenate([il.ids, ids[m]])
            il.vecs = np.concatenate([il.vecs, x[m]])
        self.ntotal += x.shape[0]

    def hashtable_size(self):
        return len(self.invlists)

    def _candidates(self, q):
        key = int(_slices(q[None], 1, self.b)[0, 0]) if self.b else 0
        codes, ids = [], []
        for m in _flip_masks(self.b, int(self.nflip)):
            il = self.invlists.get(key ^ m)
            if il is not None and il.ids.size:
                codes.append(il.vecs)
                ids.append(il.ids)
        if not ids:
            return None, None
        return np.concatenate(codes), np.concatenate(ids)

    def search(self, x, k, *, params=None, D=None, I=None):
        if params is not None:
            raise RuntimeError("search params not supported for this index")
        x = self._x(x, "search")
        k = B._check_k(k, "IndexBinaryHash.search")
        Dn = np.full((x.shape[0], k), B._INT_MAX, np.int32)
        In = np.full((x.shape[0], k), -1, np.int64)
        for i in range(x.shape[0]):
            codes, ids = self._candidates(x[i])
            if ids is not None:
                d, l = _vecdex._hamming_knn(x[i:i + 1], codes, self.code_size,
                                            k, ids)
                Dn[i], In[i] = d[0], l[0]
        return self._out(D, I, Dn, In)

    def range_search(self, x, radius, *, params=None):
        if params is not None:
            raise RuntimeError("search params not supported for this index")
        x = self._x(x, "range_search")
        lims = np.zeros(x.shape[0] + 1, np.uint64)
        Ds, Is = [], []
        for i in range(x.shape[0]):
            codes, ids = self._candidates(x[i])
            n = 0
            if ids is not None:
                dis = _vecdex._hamming_distances(x[i:i + 1], codes,
                                                 self.code_size)[0]
                m = dis < int(radius)
                Ds.append(dis[m])
                Is.append(ids[m])
                n = int(m.sum())
            lims[i + 1] = lims[i] + n
        return (lims, np.concatenate(Ds).astype(np.int32) if Ds else
                np.empty(0, np.int32),
                np.concatenate(Is) if Is else np.empty(0, np.int64))


class IndexBinaryMultiHash(B.IndexBinary):
    """nhash hash tables over b-bit slices (FAISS's IndexBinaryMultiHash)."""

    def __init__(self, d=0, nhash=0, b=0):
        super().__init__(d)
        nhash, b = int(nhash), int(b)
        if nhash < 0 or b < 0 or b > 63 or nhash * b > self.d:
            raise RuntimeError(f"IndexBinaryMultiHash: need nhash * b <= d "
                               f"and b <= 63, got nhash={nhash}, b={b}, "
                               f"d={self.d}")
        self.nhash, self.b, self.nflip = nhash, b, 0
        self.storage = B.IndexBinaryFlat(self.d)
        self.own_fields = True
        self.maps = [dict() for _ in range(nhash)]

    def reset(self):
        self.storage.reset()
        self.maps = [dict() for _ in range(self.nhash)]
        self.ntotal = 0

    def add(self, x):
        x = self._x(x, "add")
        self.storage.add(x)
        if self.nhash and x.shape[0]:
            keys = _slices(x, self.nhash, self.b)
            for h in range(self.nhash):
                mp = self.maps[h]
                for i, key in enumerate(keys[:, h].tolist()):
                    mp.setdefault(key, []).append(self.ntotal + i)
        self.ntotal += x.shape[0]

    def hashtable_size(self):
        return sum(len(m) for m in self.maps)

    def _shortlist(self, q):
        keys = _slices(q[None], self.nhash, self.b)[0] if self.nhash else []
        s = set()
        for h in range(self.nhash):
            mp = self.maps[h]
            for m in _flip_masks(self.b, int(self.nflip)):
                v = mp.get(int(keys[h]) ^ m)
                if v:
                    s.update(v)
        return np.array(sorted(s), dtype=np.int64)

    def search(self, x, k, *, params=None, D=None, I=None):
        if params is not None:
            raise RuntimeError("search params not supported for this index")
        x = self._x(x, "search")
        k = B._check_k(k, "IndexBinaryMultiHash.search")
        Dn = np.full((x.shape[0], k), B._INT_MAX, np.int32)
        In = np.full((x.shape[0], k), -1, np.int64)
        for i in range(x.shape[0]):
            ids = self._shortlist(x[i])
            if ids.size:
                d, l = _vecdex._hamming_knn(
                    x[i:i + 1], np.ascontiguousarray(self.storage._xb[ids]),
                    self.code_size, k, ids)
                Dn[i], In[i] = d[0], l[0]
        return self._out(D, I, Dn, In)

    def range_search(self, x, radius, *, params=None):
        if params is not None:
            raise RuntimeError("search params not supported for this index")
        x = self._x(x, "range_search")
        lims = np.zeros(x.shape[0] + 1, np.uint64)
        Ds, Is = [], []
        for i in range(x.shape[0]):
            ids = self._shortlist(x[i])
            n = 0
            if ids.size:
                dis = _vecdex._hamming_distances(
                    x[i:i + 1], np.ascontiguousarray(self.storage._xb[ids]),
                    self.code_size)[0]
                m = dis < int(radius)
                Ds.append(dis[m])
                Is.append(ids[m])
                n = int(m.sum())
            lims[i + 1] = lims[i] + n
        return (lims, np.concatenate(Ds).astype(np.int32) if Ds else
                np.empty(0, np.int32),
                np.concatenate(Is) if Is else np.empty(0, np.int64))

    def reconstruct(self, key, recons=None):
        return self.storage.reconstruct(key, recons)


# ---- FAISS's layout (IBHh, IBHm): bit strings, little-endian bits ---------

def _pack_bits(fields, nbits_total):
    """fields: list of (value, nbit) -> uint8 array of ceil(total/8)."""
    out = np.zeros((nbits_total + 7) // 8, np.uint8)
    pos = 0
    for v, nb in fields:
        v = int(v)
        for j in range(nb):
            if (v >> j) & 1:
                out[(pos + j) >> 3] |= 1 << ((pos + j) & 7)
        pos += nb
    return out


class _BitReader:
    def __init__(self, buf):
        self.bits = np.unpackbits(np.asarray(buf, np.uint8), bitorder="little")
        self.pos = 0

    def read(self, nb):
        if nb < 0 or self.pos + nb > self.bits.size:
            raise RuntimeError("read_index_binary: hash table bit string is "
                               "truncated")
        seg = self.bits[self.pos:self.pos + nb].astype(np.int64)
        self.pos += nb
        return int((seg << np.arange(nb, dtype=np.int64)).sum()) if nb else 0


def write(idx, w, write_header, write_index):
    if isinstance(idx, IndexBinaryHash):
        w.raw(b"IBHh")
        write_header(idx, w)
        w.i32(idx.b)
        w.i32(idx.nflip)
        w.u64(len(idx.invlists))
        maxil = max((il.ids.size for il in idx.invlists.values()), default=0)
        il_nbit = 0
        while maxil >= (1 << il_nbit):
            il_nbit += 1
        w.i32(il_nbit)
        fields = []
        for key, il in idx.invlists.items():
            fields += [(key, idx.b), (il.ids.size, il_nbit)]
        w.vec(_pack_bits(fields, (idx.b + il_nbit) * len(idx.invlists)),
              np.uint8)
        for il in idx.invlists.values():
            w.vec(il.ids, np.int64)
            w.vec(il.vecs, np.uint8)
        return
    w.raw(b"IBHm")
    write_header(idx, w)
    write_index(idx.storage, w)
    w.i32(idx.b)
    w.i32(idx.nhash)
    w.i32(idx.nflip)
    for mp in idx.maps:
        id_bits = 0
        while idx.ntotal > (1 << id_bits):
            id_bits += 1
        w.i32(id_bits)
        w.u64(len(mp))
        fields = []
        for key, v in mp.items():
            fields += [(key, idx.b), (len(v), id_bits)]
            fields += [(i, id_bits) for i in v]
        w.vec(_pack_bits(fields, (idx.b + id_bits) * len(mp) +
                         idx.ntotal * id_bits), np.uint8)


def read(h, r, read_header, set_header, read_index, depth):
    hdr = read_header(r)
    if h == b"IBHh":
        b = r.i32("b")
        nflip = r.i32("nflip")
        if not 0 <= b <= min(hdr[0], 63) or nflip < 0:
            raise RuntimeError(f"read_index_binary: bad IndexBinaryHash b={b},"
                               f" nflip={nflip}")
        idx = IndexBinaryHash(hdr[0], b)
        set_header(idx, hdr)
        idx.nflip = nflip
        sz = r.u64("hash table size")
        il_nbit = r.i32("il_nbit")
        if il_nbit < 0 or il_nbit > 63 or sz > r.left():
            raise RuntimeError(f"read_index_binary: bad hash table (size {sz}"
                               f", il_nbit {il_nbit})")
        buf = r.vec(np.uint8, "hash table", expect=((b + il_nbit) * sz + 7) // 8)
        br = _BitReader(buf)
        heads = [(br.read(b), br.read(il_nbit)) for _ in range(sz)]
        total = 0
        for key, n in heads:
            il = _HashList(idx.code_size)
            il.ids = r.vec(np.int64, "hash list ids", expect=n)
            il.vecs = r.vec(np.uint8, "hash list codes",
                            expect=n * idx.code_size).reshape(n, idx.code_size)
            if key in idx.invlists:
                raise RuntimeError(f"read_index_binary: duplicate hash key "
                                   f"{key}")
            idx.invlists[key] = il
            total += n
        if total != hdr[2]:
            raise RuntimeError(f"read_index_binary: hash lists hold {total} "
                               f"codes, ntotal is {hdr[2]}")
        return idx
    storage = read_index(r, depth + 1)
    b = r.i32("b")
    nhash = r.i32("nhash")
    nflip = r.i32("nflip")
    if not isinstance(storage, B.IndexBinaryFlat) or storage.d != hdr[0] or \
            storage.ntotal != hdr[2]:
        raise RuntimeError("read_index_binary: multi-hash storage does not "
                           "match the header")
    if b < 0 or b > 63 or nhash < 0 or nhash * b > hdr[0] or nflip < 0:
        raise RuntimeError(f"read_index_binary: bad IndexBinaryMultiHash "
                           f"nhash={nhash}, b={b}")
    idx = IndexBinaryMultiHash(hdr[0], nhash, b)
    set_header(idx, hdr)
    idx.storage = storage
    idx.nflip = nflip
    for hh in range(nhash):
        id_bits = r.i32("id_bits")
        sz = r.u64("map size")
        if id_bits < 0 or id_bits > 63 or sz > r.left() * 8:
            raise RuntimeError(f"read_index_binary: bad map (id_bits "
                               f"{id_bits}, size {sz})")
        nbit = (b + id_bits) * sz + hdr[2] * id_bits
        br = _BitReader(r.vec(np.uint8, "map", expect=(nbit + 7) // 8))
        mp = idx.maps[hh]
        for _ in range(sz):
            key = br.read(b)
            n = br.read(id_bits)
            v = [br.read(id_bits) for _ in range(n)]
            if any(i >= hdr[2] for i in v):
                raise RuntimeError("read_index_binary: multi-hash id out of "
                                   "range")
            mp[key] = v
    return idx
