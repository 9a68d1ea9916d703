"""Binary indexes under FAISS's names: codes of d bits (d/8 bytes), compared
with the Hamming distance (int32).

The distance work is in C (src/index/binary/hamming.c: POPCNT and AVX-512
VPOPCNTDQ kernels, exact k-NN with FAISS's tie order, range search), reached
through vecdex._vecdex._hamming_*; the classes here hold the codes as numpy
arrays and follow FAISS's semantics:

- IndexBinaryFlat: exhaustive search, ties by id, range search (d < radius).
- IndexBinaryIDMap / IDMap2: external ids over any binary index.
- IndexBinaryFromFloat: a float index over the codes seen as +-1 vectors,
  its distances divided by 4 (||a - b||^2 = 4 * hamming(a, b)).
- IndexBinaryIVF: inverted lists; trained as FAISS does (float k-means on
  the +-1 vectors, centroids binarised by sign), lists scanned exactly.
- IndexBinaryHNSW: vecdex's HNSW graph over the +-1 vectors (same graph as
  FAISS's IndexBinaryHNSW builds: the neighbour order under L2 on +-1
  vectors is the Hamming order), distances returned as exact Hamming.

Serialization (serialize_index_binary, write_index_binary, ...) is in
vecdex/_binary_io.py, the factory in index_binary_factory below.
"""
import numpy as np

from . import _vecdex
from ._vecdex import ShapeError

__all__ = ["IndexBinary", "IndexBinaryFlat", "IndexBinaryIDMap",
           "IndexBinaryIDMap2", "IndexBinaryFromFloat", "IndexBinaryIVF",
           "IndexBinaryHNSW", "index_binary_factory", "knn_hamming",
           "hamming_knn", "binary_to_real", "real_to_binary",
           "hamming_distances", "IndexBinaryShards", "IndexBinaryReplicas"]

_INT_MAX = 2147483647


def _codes(x, code_size, what):
    """x as a C-contiguous uint8 (n, code_size) array, or ShapeError."""
    a = np.ascontiguousarray(x)
    if a.dtype != np.uint8:
        if a.dtype.kind not in "ui" or (a.size and (a.min() < 0 or a.max() > 255)):
            raise TypeError(f"{what}: expected uint8 codes, got {a.dtype}")
        a = a.astype(np.uint8)
    if a.ndim == 1 and code_size and a.size % code_size == 0 and a.size:
        a = a.reshape(-1, code_size)
    if a.ndim != 2 or a.shape[1] != code_size:
        raise ShapeError(f"{what}: expected codes of shape (n, {code_size}), "
                         f"got {a.shape}")
    return a


def _check_k(k, what):
    k = int(k)
    if k <= 0:
        raise ShapeError(f"{what}: k must be > 0, got {k}")
    return k


def binary_to_real(x):
    """Codes (n, d/8) -> float32 (n, d) with bit i of byte j at 8j + i as
    +1 (set) or -1 (clear), as FAISS's binary_to_real."""
    x = np.ascontiguousarray(x, dtype=np.uint8)
    n = x.shape[0] if x.ndim == 2 else 1
    bits = np.unpackbits(x.reshape(n, -1), axis=1, bitorder="little")
    return (bits.astype(np.float32) * 2 - 1)


def real_to_binary(x):
    """float (n, d) -> codes (n, d/8): bit set where x > 0 (FAISS's
    real_to_binary)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.shape[1] % 8:
        raise ValueError(f"real_to_binary: d must be a multiple of 8, got "
                         f"{x.shape[1]}")
    return np.packbits(x > 0, axis=1, bitorder="little")


def hamming_distances(a, b):
    """int32 (na, nb) Hamming distances of two sets of codes."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    b = np.ascontiguousarray(b, dtype=np.uint8)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(f"hamming_distances: expected (na, cs) and (nb, cs) "
                         f"codes, got {a.shape} and {b.shape}")
    return _vecdex._hamming_distances(a, b, a.shape[1])


def knn_hamming(xq, xb, k, variant=None):
    """Exact k nearest codes: (D int32, I int64), ties by position (FAISS's
    knn_hamming; `variant` is accepted and ignored: one exact kernel)."""
    xq = np.ascontiguousarray(xq, dtype=np.uint8)
    xb = np.ascontiguousarray(xb, dtype=np.uint8)
    if xq.ndim != 2 or xb.ndim != 2 or xq.shape[1] != xb.shape[1]:
        raise ShapeError(f"knn_hamming: expected (nq, cs) and (nb, cs) codes, "
                         f"got {xq.shape} and {xb.shape}")
    return _vecdex._hamming_knn(xq, xb, xq.shape[1], _check_k(k, "knn_hamming"))


hamming_knn = knn_hamming


def _new_code_store(code_size):
    return np.empty((0, code_size), dtype=np.uint8)


class IndexBinary:
    """The base of the binary indexes: d bits, code_size = d / 8 bytes."""

    def __init__(self, d=0, metric=1):
        d = int(d)
        if d < 0 or d % 8:
            raise RuntimeError(f"Error: 'd % 8 == 0' failed: binary indexes "
                               f"need d a multiple of 8, got d={d}")
        self.d = d
        self.code_size = d // 8
        self.ntotal = 0
        self.is_trained = True
        self.metric_type = metric
        self.verbose = False
        self.thisown = True

    def _x(self, x, what):
        return _codes(x, self.code_size, f"{type(self).__name__}.{what}")

    def train(self, x):
        self._x(x, "train")
        self.is_trained = True

    def add_with_ids(self, x, ids):
        raise RuntimeError(f"add_with_ids not implemented for "
                           f"{type(self).__name__}")

    def assign(self, x, k, labels=None):
        _, I = self.search(x, k)
        if labels is not None:
            labels[...] = I
            return labels
        return I

    def reconstruct_n(self, i0=0, ni=None):
        if ni is None:
            ni = self.ntotal - i0
        return np.vstack([self.reconstruct(i) for i in range(i0, i0 + ni)]) \
            if ni > 0 else np.empty((0, self.code_size), np.uint8)

    def reconstruct_batch(self, keys):
        return np.vstack([self.reconstruct(int(k)) for k in keys])

    def _out(self, D, I, Dn, In):
        if D is not None:
            D[...] = Dn
            Dn = D
        if I is not None:
            I[...] = In
            In = I
        return Dn, In

    def remove_ids(self, sel):
        raise RuntimeError(f"remove_ids not implemented for "
                           f"{type(self).__name__}")


def _member_mask(sel, ids):
    """Which of `ids` the selector (or array of ids) selects."""
    ids = np.asarray(ids, dtype=np.int64)
    if isinstance(sel, (np.ndarray, list, tuple)):
        return np.isin(ids, np.asarray(sel, dtype=np.int64))
    if hasattr(sel, "is_member"):
        return np.fromiter((bool(sel.is_member(int(i))) for i in ids),
                           dtype=bool, count=len(ids))
    raise TypeError("remove_ids: expected an IDSelector or an array of ids")


class IndexBinaryFlat(IndexBinary):
    """Exhaustive Hamming search (FAISS's IndexBinaryFlat)."""

    def __init__(self, d=0, metric=1):
        super().__init__(d, metric)
        self._xb = _new_code_store(self.code_size)
        self.use_heap = True
        self.query_batch_size = 32
        self.approx_topk_mode = 0

    @property
    def xb(self):
        """The codes as a flat uint8 array (FAISS's std::vector xb)."""
        return self._xb.reshape(-1)

    def codes_array(self):
        return self._xb

    def add(self, x):
        x = self._x(x, "add")
        self._xb = np.concatenate([self._xb, x]) if self.ntotal else x.copy()
        self.ntotal = self._xb.shape[0]

    def reset(self):
        self._xb = _new_code_store(self.code_size)
        self.ntotal = 0

    def search(self, x, k, *, params=None, D=None, I=None):
        x = self._x(x, "search")
        k = _check_k(k, "IndexBinaryFlat.search")
        xb, ids = self._xb, None
        sel = getattr(params, "sel", None) if params is not None else None
        if sel is not None:
            ids = np.nonzero(_member_mask(sel, np.arange(self.ntotal)))[0]
            xb = np.ascontiguousarray(self._xb[ids])
        Dn, In = _vecdex._hamming_knn(x, xb, self.code_size, k)
        if ids is not None:
            In = np.where(In >= 0, ids[np.maximum(In, 0)], -1)
        return self._out(D, I, Dn, In)

    def range_search(self, x, radius, *, params=None):
        x = self._x(x, "range_search")
        return _vecdex._hamming_range(x, self._xb, self.code_size, int(radius))

    def reconstruct(self, key, recons=None):
        key = int(key)
        if not 0 <= key < self.ntotal:
            raise RuntimeError(f"reconstruct: key {key} out of range "
                               f"[0, {self.ntotal})")
        r = self._xb[key].copy()
        if recons is not None:
            recons[...] = r
            return recons
        return r

    def reconstruct_n(self, i0=0, ni=None):
        if ni is None:
            ni = self.ntotal - i0
        i0, ni = int(i0), int(ni)
        if i0 < 0 or ni < 0 or i0 + ni > self.ntotal:
            raise RuntimeError(f"reconstruct_n: range [{i0}, {i0 + ni}) out "
                               f"of [0, {self.ntotal})")
        return self._xb[i0:i0 + ni].copy()

    def remove_ids(self, sel):
        keep = ~_member_mask(sel, np.arange(self.ntotal))
        removed = int(self.ntotal - keep.sum())
        self._xb = np.ascontiguousarray(self._xb[keep])
        self.ntotal = self._xb.shape[0]
        return removed

    def merge_from(self, other, add_id=0):
        if not isinstance(other, IndexBinaryFlat) or other.d != self.d:
            raise RuntimeError("merge_from: expected an IndexBinaryFlat of the "
                               "same d")
        self.add(other._xb)
        other.reset()


class IndexBinaryIDMap(IndexBinary):
    """External ids over a binary index (FAISS's IndexBinaryIDMap)."""

    def __init__(self, index=None):
        if index is None:
            super().__init__(0)
            self.index = None
        else:
            super().__init__(index.d, index.metric_type)
            self.index = index
            self.ntotal = index.ntotal
            self.is_trained = index.is_trained
            if index.ntotal:
                raise RuntimeError("IndexBinaryIDMap: the index must be empty")
        self.own_fields = False
        self.id_map = np.empty(0, dtype=np.int64)

    def train(self, x):
        self.index.train(x)
        self.is_trained = self.index.is_trained

    def add(self, x):
        raise RuntimeError("add does not make sense with IndexBinaryIDMap, "
                           "use add_with_ids")

    def add_with_ids(self, x, ids):
        x = self._x(x, "add_with_ids")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != x.shape[0]:
            raise ShapeError(f"add_with_ids: {x.shape[0]} codes but "
                             f"{ids.shape[0]} ids")
        self.index.add(x)
        self.id_map = np.concatenate([self.id_map, ids])
        self.ntotal = self.index.ntotal

    def search(self, x, k, *, params=None, D=None, I=None):
        Dn, In = self.index.search(x, k)
        In = np.where(In >= 0, self.id_map[np.maximum(In, 0)], -1) \
            if self.id_map.size else np.full_like(In, -1)
        return self._out(D, I, Dn, In)

    def range_search(self, x, radius, *, params=None):
        lims, Dn, In = self.index.range_search(x, radius)
        return lims, Dn, self.id_map[In] if In.size else In

    def remove_ids(self, sel):
        mask = _member_mask(sel, self.id_map)
        n = int(mask.sum())
        if n:
            self.index.remove_ids(np.nonzero(mask)[0])
            self.id_map = self.id_map[~mask]
            self.ntotal = self.index.ntotal
        return n

    def reset(self):
        self.index.reset()
        self.id_map = np.empty(0, dtype=np.int64)
        self.ntotal = 0


class IndexBinaryIDMap2(IndexBinaryIDMap):
    """IndexBinaryIDMap that can also reconstruct by external id."""

    def __init__(self, index=None):
        super().__init__(index)
        self.rev_map = {}

    def _rebuild(self):
        self.rev_map = {int(v): i for i, v in enumerate(self.id_map)}

    def add_with_ids(self, x, ids):
        super().add_with_ids(x, ids)
        self._rebuild()

    def remove_ids(self, sel):
        n = super().remove_ids(sel)
        self._rebuild()
        return n

    def construct_rev_map(self):
        self._rebuild()

    def reconstruct(self, key, recons=None):
        key = int(key)
        if key not in self.rev_map:
            raise RuntimeError(f"reconstruct: key {key} not found")
        r = self.index.reconstruct(self.rev_map[key])
        if recons is not None:
            recons[...] = r
            return recons
        return r

    def reset(self):
        super().reset()
        self.rev_map = {}


class IndexBinaryFromFloat(IndexBinary):
    """A float index over the codes seen as +-1 vectors (FAISS's
    IndexBinaryFromFloat); distances are the float ones / 4, rounded."""

    def __init__(self, index=None):
        if index is None:
            super().__init__(0)
            self.index = None
            return
        super().__init__(index.d)
        self.index = index
        self.own_fields = False
        self.is_trained = index.is_trained
        self.ntotal = index.ntotal

    def add(self, x):
        x = self._x(x, "add")
        self.index.add(binary_to_real(x))
        self.ntotal = self.index.ntotal

    def train(self, x):
        x = self._x(x, "train")
        self.index.train(binary_to_real(x))
        self.is_trained = True
        self.ntotal = self.index.ntotal

    def reset(self):
        self.index.reset()
        self.ntotal = 0

    def search(self, x, k, *, params=None, D=None, I=None):
        if params is not None:
            raise RuntimeError("search params not supported for this index")
        x = self._x(x, "search")
        k = _check_k(k, "IndexBinaryFromFloat.search")
        Df, In = self.index.search(binary_to_real(x), k)
        Dn = np.where(In >= 0, np.round(np.minimum(Df, 4.0 * _INT_MAX) / 4.0),
                      _INT_MAX).astype(np.int32)
        return self._out(D, I, Dn, In)


class _DirectMap:
    NoMap, Array, Hashtable = 0, 1, 2


class _BinaryInvertedLists:
    """Per-list codes and ids (FAISS's ArrayInvertedLists, read side)."""

    def __init__(self, nlist, code_size):
        self.nlist = nlist
        self.code_size = code_size
        self.codes = [np.empty((0, code_size), np.uint8) for _ in range(nlist)]
        self.ids = [np.empty(0, np.int64) for _ in range(nlist)]

    def list_size(self, i):
        return int(self.ids[i].shape[0])

    def get_codes(self, i):
        return self.codes[i].reshape(-1)

    def get_ids(self, i):
        return self.ids[i]

    def compute_ntotal(self):
        return sum(len(i) for i in self.ids)

    def imbalance_factor(self):
        s = np.array([len(i) for i in self.ids], dtype=np.float64)
        tot = s.sum()
        return float((s * s).sum() * len(s) / (tot * tot)) if tot else 0.0


class IndexBinaryIVF(IndexBinary):
    """Inverted lists over binary codes (FAISS's IndexBinaryIVF)."""

    def __init__(self, quantizer=None, d=None, nlist=None, metric=1):
        if quantizer is None:
            super().__init__(0)
            self.quantizer, self.nlist = None, 0
        else:
            d = quantizer.d if d is None else int(d)
            super().__init__(d)
            if quantizer.d != d:
                raise RuntimeError(f"IndexBinaryIVF: quantizer has d="
                                   f"{quantizer.d}, expected {d}")
            self.quantizer = quantizer
            self.nlist = int(nlist)
            if self.nlist <= 0:
                raise ValueError(f"IndexBinaryIVF: nlist must be > 0, got "
                                 f"{nlist}")
        from ._vecdex import ClusteringParameters
        self.cp = ClusteringParameters()
        self.cp.niter = 10  # FAISS's IndexBinaryIVF default
        self.nprobe = 1
        self.max_codes = 0
        self.use_heap = True
        self.per_invlist_search = False
        self.own_fields = False
        self.clustering_index = None
        self.is_trained = bool(quantizer is not None and quantizer.is_trained
                               and quantizer.ntotal == self.nlist)
        self.invlists = _BinaryInvertedLists(self.nlist, self.code_size)
        self.direct_map_type = _DirectMap.NoMap
        self._dm = None

    def train(self, x):
        x = self._x(x, "train")
        q = self.quantizer
        if not (q.is_trained and q.ntotal == self.nlist):
            from ._vecdex import Kmeans
            cp = self.cp
            km = Kmeans(self.d, self.nlist, niter=cp.niter, nredo=cp.nredo,
                        seed=cp.seed, spherical=cp.spherical,
                        max_points_per_centroid=cp.max_points_per_centroid,
                        min_points_per_centroid=cp.min_points_per_centroid,
                        verbose=bool(self.verbose))
            km.train(binary_to_real(x))
            q.reset()
            q.add(real_to_binary(km.centroids))
            q.is_trained = True
        self.is_trained = True

    def _assign(self, x, nprobe):
        nprobe = max(1, min(int(nprobe), self.nlist))
        _, lists = self.quantizer.search(x, nprobe)
        return lists

    def add(self, x):
        x = self._x(x, "add")
        self.add_with_ids(x, np.arange(self.ntotal, self.ntotal + x.shape[0],
                                       dtype=np.int64))

    def add_core(self, x, ids, assign):
        self._add(self._x(x, "add_core"), ids, np.asarray(assign).reshape(-1))

    def add_with_ids(self, x, ids):
        if not self.is_trained:
            raise RuntimeError("IndexBinaryIVF: add before train")
        x = self._x(x, "add_with_ids")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != x.shape[0]:
            raise ShapeError(f"add_with_ids: {x.shape[0]} codes but "
                             f"{ids.shape[0]} ids")
        if x.shape[0] == 0:
            return
        self._add(x, ids, self._assign(x, 1)[:, 0])

    def _add(self, x, ids, lists):
        il = self.invlists
        if self.direct_map_type == _DirectMap.Array and \
                not np.array_equal(ids, np.arange(self.ntotal,
                                                  self.ntotal + len(ids))):
            raise RuntimeError("add_with_ids: non-sequential ids need "
                               "DirectMap.Hashtable")
        for l in np.unique(lists):
            if l < 0:
                continue
            m = lists == l
            il.codes[l] = np.concatenate([il.codes[l], x[m]])
            il.ids[l] = np.concatenate([il.ids[l], ids[m]])
        self.ntotal += x.shape[0]
        if self.direct_map_type != _DirectMap.NoMap:
            self._build_dm()

    def _build_dm(self):
        dm = {}
        for l in range(self.nlist):
            for o, i in enumerate(self.invlists.ids[l]):
                dm[int(i)] = (l, o)
        self._dm = dm

    def set_direct_map_type(self, t):
        t = int(t)
        if t not in (0, 1, 2):
            raise ValueError(f"set_direct_map_type: unknown type {t}")
        if t == _DirectMap.Array:
            allids = np.sort(np.concatenate(self.invlists.ids)) if self.nlist \
                else np.empty(0, np.int64)
            if not np.array_equal(allids, np.arange(len(allids))):
                raise RuntimeError("DirectMap.Array needs sequential ids")
        self.direct_map_type = t
        self._dm = None
        if t != _DirectMap.NoMap:
            self._build_dm()

    def make_direct_map(self, new_maintain=True):
        self.set_direct_map_type(_DirectMap.Array if new_maintain else 0)

    def reconstruct(self, key, recons=None):
        if self._dm is None:
            raise RuntimeError("reconstruct: no direct map (call "
                               "make_direct_map or set_direct_map_type)")
        key = int(key)
        if key not in self._dm:
            raise RuntimeError(f"reconstruct: key {key} not found")
        l, o = self._dm[key]
        r = self.invlists.codes[l][o].copy()
        if recons is not None:
            recons[...] = r
            return recons
        return r

    def _candidates(self, lists_row):
        il = self.invlists
        ls = [l for l in lists_row if l >= 0]
        if not ls:
            return (np.empty((0, self.code_size), np.uint8),
                    np.empty(0, np.int64))
        return (np.concatenate([il.codes[l] for l in ls]),
                np.concatenate([il.ids[l] for l in ls]))

    def search(self, x, k, *, params=None, D=None, I=None):
        x = self._x(x, "search")
        k = _check_k(k, "IndexBinaryIVF.search")
        if not self.is_trained:
            raise RuntimeError("IndexBinaryIVF.search: not trained")
        nprobe = getattr(params, "nprobe", None) or self.nprobe
        if nprobe <= 0:
            raise RuntimeError(f"IndexBinaryIVF.search: nprobe must be > 0, "
                               f"got {nprobe}")
        n = x.shape[0]
        Dn = np.full((n, k), _INT_MAX, dtype=np.int32)
        In = np.full((n, k), -1, dtype=np.int64)
        if n == 0:
            return self._out(D, I, Dn, In)
        lists = self._assign(x, nprobe)
        # lists in probe order through FAISS's heap rule: same ties
        il = self.invlists
        Dn, In = _vecdex._hamming_knn_lists(x, self.code_size, il.codes,
                                            il.ids, lists, k)
        return self._out(D, I, Dn, In)

    def range_search(self, x, radius, *, params=None):
        x = self._x(x, "range_search")
        nprobe = getattr(params, "nprobe", None) or self.nprobe
        lists = self._assign(x, nprobe)
        lims = np.zeros(x.shape[0] + 1, dtype=np.uint64)
        Ds, Is = [], []
        for i in range(x.shape[0]):
            codes, ids = self._candidates(lists[i])
            if ids.size:
                dis = _vecdex._hamming_distances(x[i:i + 1], codes,
                                                 self.code_size)[0]
                m = dis < int(radius)
                o = np.argsort(ids[m], kind="stable")
                Ds.append(dis[m][o])
                Is.append(ids[m][o])
                lims[i + 1] = lims[i] + int(m.sum())
            else:
                lims[i + 1] = lims[i]
        D = np.concatenate(Ds).astype(np.int32) if Ds else np.empty(0, np.int32)
        I = np.concatenate(Is) if Is else np.empty(0, np.int64)
        return lims, D, I

    def remove_ids(self, sel):
        n = 0
        il = self.invlists
        for l in range(self.nlist):
            if il.ids[l].size == 0:
                continue
            m = _member_mask(sel, il.ids[l])
            if m.any():
                n += int(m.sum())
                il.codes[l] = np.ascontiguousarray(il.codes[l][~m])
                il.ids[l] = il.ids[l][~m]
        self.ntotal -= n
        if self.direct_map_type != _DirectMap.NoMap:
            self._build_dm()
        return n

    def reset(self):
        self.invlists = _BinaryInvertedLists(self.nlist, self.code_size)
        self.ntotal = 0
        if self._dm is not None:
            self._dm = {}

    def get_list_size(self, l):
        return self.invlists.list_size(l)


class IndexBinaryHNSW(IndexBinary):
    """HNSW over binary codes (FAISS's IndexBinaryHNSW): vecdex's HNSW graph
    built on the +-1 vectors, whose L2 order is the Hamming order; search
    returns exact Hamming distances.  `storage` is an IndexBinaryFlat view
    of the codes."""

    def __init__(self, d=0, M=32):
        super().__init__(d)
        from ._vecdex import IndexHNSWFlat
        self._f = IndexHNSWFlat(max(self.d, 8), int(M)) if self.d else None
        self.storage = IndexBinaryFlat(self.d)
        self.own_fields = True

    @property
    def hnsw(self):
        return self._f.hnsw

    def add(self, x):
        x = self._x(x, "add")
        self._f.add(binary_to_real(x))
        self.storage.add(x)
        self.ntotal = self.storage.ntotal

    def reset(self):
        self._f.reset()
        self.storage.reset()
        self.ntotal = 0

    def reconstruct(self, key, recons=None):
        return self.storage.reconstruct(key, recons)

    def search(self, x, k, *, params=None, D=None, I=None):
        x = self._x(x, "search")
        k = _check_k(k, "IndexBinaryHNSW.search")
        Df, In = self._f.search(binary_to_real(x), k, params=params)
        Dn = np.where(In >= 0, np.rint(np.minimum(Df, 4.0 * _INT_MAX) / 4.0),
                      _INT_MAX).astype(np.int32)
        return self._out(D, I, Dn, In)

    def range_search(self, x, radius, *, params=None):
        x = self._x(x, "range_search")
        lims, Df, In = self._f.range_search(binary_to_real(x),
                                            4.0 * int(radius) - 2.0)
        return lims, np.rint(Df / 4.0).astype(np.int32), In


class IndexBinaryShards(IndexBinary):
    """Binary indexes searched together (FAISS's IndexBinaryShards): add
    splits the codes into consecutive chunks, one per shard; with
    successive_ids the ids of shard s are offset by the sizes before it."""

    def __init__(self, d=0, threaded=False, successive_ids=True):
        if isinstance(d, IndexBinary):  # IndexBinaryShards(index) style
            d = d.d
        super().__init__(d)
        self.successive_ids = bool(successive_ids)
        self.threaded = bool(threaded)
        self.shards = []
        self.own_indices = False

    def add_shard(self, index):
        if index.d != self.d:
            raise RuntimeError(f"add_shard: shard has d={index.d}, expected "
                               f"{self.d}")
        self.shards.append(index)
        self.ntotal = sum(s.ntotal for s in self.shards)

    addIndex = add_shard

    def remove_shard(self, index):
        self.shards = [s for s in self.shards if s is not index]
        self.ntotal = sum(s.ntotal for s in self.shards)

    def count(self):
        return len(self.shards)

    def at(self, i):
        return self.shards[i]

    def add(self, x):
        x = self._x(x, "add")
        if not self.shards:
            raise RuntimeError("IndexBinaryShards.add: no shards")
        n, ns = x.shape[0], len(self.shards)
        for i, sh in enumerate(self.shards):
            sh.add(x[i * n // ns:(i + 1) * n // ns])
        self.ntotal = sum(s.ntotal for s in self.shards)

    def reset(self):
        for s in self.shards:
            s.reset()
        self.ntotal = 0

    def search(self, x, k, *, params=None, D=None, I=None):
        x = self._x(x, "search")
        k = _check_k(k, "IndexBinaryShards.search")
        Ds, Is, off = [], [], 0
        for sh in self.shards:
            d, i = sh.search(x, k)
            if self.successive_ids:
                i = np.where(i >= 0, i + off, -1)
            off += sh.ntotal
            Ds.append(d)
            Is.append(i)
        if not Ds:
            return self._out(D, I, np.full((x.shape[0], k), _INT_MAX, np.int32),
                             np.full((x.shape[0], k), -1, np.int64))
        Dc, Ic = np.hstack(Ds), np.hstack(Is)
        # stable on distance: shard order then rank, as FAISS's merge
        o = np.argsort(Dc, axis=1, kind="stable")[:, :k]
        return self._out(D, I, np.take_along_axis(Dc, o, 1),
                         np.take_along_axis(Ic, o, 1))


class IndexBinaryReplicas(IndexBinary):
    """Copies of one binary index, each answering part of the queries
    (FAISS's IndexBinaryReplicas)."""

    def __init__(self, d=0, threaded=True):
        if isinstance(d, bool):
            d, threaded = 0, d
        super().__init__(int(d))
        self.threaded = threaded
        self.replicas = []
        self.own_indices = False

    def addIndex(self, index):
        if self.replicas and index.d != self.d:
            raise RuntimeError(f"addIndex: replica has d={index.d}, expected "
                               f"{self.d}")
        if not self.replicas:
            self.d, self.code_size = index.d, index.code_size
        self.replicas.append(index)
        self.ntotal = index.ntotal

    add_replica = addIndex

    def count(self):
        return len(self.replicas)

    def at(self, i):
        return self.replicas[i]

    def add(self, x):
        for r in self.replicas:
            r.add(x)
        self.ntotal = self.replicas[0].ntotal if self.replicas else 0

    def reset(self):
        for r in self.replicas:
            r.reset()
        self.ntotal = 0

    def search(self, x, k, *, params=None, D=None, I=None):
        if not self.replicas:
            raise RuntimeError("IndexBinaryReplicas.search: no replicas")
        x = self._x(x, "search")
        k = _check_k(k, "IndexBinaryReplicas.search")
        n, nr = x.shape[0], len(self.replicas)
        Dn = np.empty((n, k), np.int32)
        In = np.empty((n, k), np.int64)
        for i, r in enumerate(self.replicas):
            a, b = i * n // nr, (i + 1) * n // nr
            if b > a:
                Dn[a:b], In[a:b] = r.search(x[a:b], k)
        return self._out(D, I, Dn, In)


def _parse_int(s, what):
    try:
        v = int(s)
    except ValueError:
        raise ValueError(f"index_binary_factory: could not parse '{what}'")
    if v <= 0:
        raise ValueError(f"index_binary_factory: '{what}' needs a positive "
                         f"number")
    return v


def index_binary_factory(d, description, metric=1):
    """Builds a binary index from a FAISS factory string: BFlat, BIVF<n>,
    BIVF<n>_BHNSW<M> (HNSW quantizer), BHNSW<M>, BHash<b>,
    BHash<nhash>x<b>, with an IDMap / IDMap2 prefix or suffix."""
    d = int(d)
    if d <= 0 or d % 8:
        raise ValueError(f"index_binary_factory: d must be a positive "
                         f"multiple of 8, got {d}")
    parts = [p.strip() for p in str(description).split(",")]
    idmap = None
    if parts and parts[0] in ("IDMap", "IDMap2"):
        idmap = parts.pop(0)
    elif len(parts) > 1 and parts[-1] in ("IDMap", "IDMap2"):
        idmap = parts.pop()
    if len(parts) != 1:
        raise ValueError(f"index_binary_factory: could not parse "
                         f"'{description}'")
    s = parts[0]
    import re
    if s == "BFlat":
        index = IndexBinaryFlat(d)
    elif re.fullmatch(r"BIVF\d+", s):
        index = IndexBinaryIVF(IndexBinaryFlat(d), d, _parse_int(s[4:], s))
        index.own_fields = True
    elif re.fullmatch(r"BIVF\d+_BHNSW\d+", s):
        nl, m = s[4:].split("_BHNSW")
        index = IndexBinaryIVF(IndexBinaryHNSW(d, _parse_int(m, s)), d,
                               _parse_int(nl, s))
        index.own_fields = True
    elif re.fullmatch(r"BHNSW\d+", s):
        index = IndexBinaryHNSW(d, _parse_int(s[5:], s))
    elif re.fullmatch(r"BHash\d+x\d+", s):
        from ._binary_hash import IndexBinaryMultiHash
        nh, b = s[5:].split("x")
        index = IndexBinaryMultiHash(d, _parse_int(nh, s), _parse_int(b, s))
    elif re.fullmatch(r"BHash\d+", s):
        from ._binary_hash import IndexBinaryHash
        index = IndexBinaryHash(d, _parse_int(s[5:], s))
    else:
        raise ValueError(f"index_binary_factory: could not parse "
                         f"'{description}'")
    if idmap == "IDMap":
        index = IndexBinaryIDMap(index)
        index.own_fields = True
    elif idmap == "IDMap2":
        index = IndexBinaryIDMap2(index)
        index.own_fields = True
    return index
