"""Bodies of C-type methods written in Python (python/py_pymethods.c
forwards to the function of the same name).

FAISS's DistanceComputer (index.get_distance_computer()): set_query(x),
then dc(i) is the distance of x to stored vector i, and
dc.symmetric_dis(i, j) the distance between two stored vectors.

dc(i) must agree with what the index's own search returns for i, so it
asks the index itself: a 1-NN search restricted to id i by an IDSelector
runs the very distance code of search (LUTs for PQ/AQ, the SQ decoder, the
transform of an IndexPreTransform).  Fast-scan indexes search with
8-bit-quantized LUTs; FAISS's computer for them gives the float distance to
the decoded vector, and so does this one (reconstruct, then the metric).
Indexes whose search cannot take a selector (or that would not reach id i,
such as a graph walk) fall back to the decoded-vector distance too.

ProductQuantizer's lookup tables (compute_distance_tables,
compute_inner_prod_tables, sdc_table) come from its centroids.  FAISS
fills sdc_table / transposed_centroids / centroids_sq_lengths only when
asked (compute_sdc_table, sync_transposed_centroids); vecdex's C quantizer
keeps no such caches, so these are computed from the centroids on read and
the "sync"/"clear" calls change nothing (vecdex's encoder does not use a
transposed table)."""
import numpy as np

from . import _vecdex

__all__ = ["DistanceComputer", "IndexFlatCodes"]


class _This:
    """SWIG's `this` handle: FAISS's tests check dc.this.own() (the Python
    object owns the C++ computer); the computer here is Python-owned."""

    def own(self, value=None):
        return True


def _float_distance(metric, x, y):
    # Accumulate in float64 then round once, as close as float32 can be to
    # the exact distance FAISS's decoded-vector computer targets.
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if metric == _vecdex.METRIC_INNER_PRODUCT:
        return float(np.float32(np.dot(x, y)))
    if metric == 2:  # METRIC_L1 (FAISS's number)
        return float(np.float32(np.abs(x - y).sum()))
    if metric == 3:  # METRIC_Linf
        return float(np.float32(np.abs(x - y).max()))
    return float(np.float32(((x - y) ** 2).sum()))


class DistanceComputer:
    """Distances from one query (set_query) to the stored vectors of an
    index, by their sequential number 0 .. ntotal - 1."""

    def __init__(self, index):
        self.index = index
        self.d = index.d
        self.this = _This()
        self._q = None
        name = type(index).__name__
        # Search-by-selector gives the index's own distance except where
        # search is approximate in a way FAISS's computer is not.
        self._by_search = ("FastScan" not in name and "HNSW" not in name
                           and "NSG" not in name)

    def set_query(self, x):
        q = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        if q.size != self.d:
            raise ValueError("set_query: the query has %d components, the "
                             "index d=%d" % (q.size, self.d))
        self._q = q

    def _check(self, i):
        i = int(i)
        if i < 0 or i >= self.index.ntotal:
            raise ValueError("DistanceComputer: id %d not in [0, %d)"
                             % (i, self.index.ntotal))
        return i

    def __call__(self, i):
        if self._q is None:
            raise RuntimeError("DistanceComputer: call set_query first")
        i = self._check(i)
        if self._by_search:
            try:
                sel = _vecdex.IDSelectorRange(i, i + 1)
                D, I = self.index.search(
                    self._q.reshape(1, -1), 1,
                    params=_vecdex.SearchParameters(sel=sel))
                if int(I[0, 0]) == i:
                    return float(D[0, 0])
            except (RuntimeError, ValueError, TypeError, AttributeError):
                pass
            self._by_search = False
        return _float_distance(self.index.metric_type, self._q,
                               self.index.reconstruct(i))

    def symmetric_dis(self, i, j):
        """Distance between stored vectors i and j (both decoded)."""
        i = self._check(i)
        j = self._check(j)
        return _float_distance(self.index.metric_type,
                               self.index.reconstruct(i),
                               self.index.reconstruct(j))

    def distances_batch_4(self, i0, i1, i2, i3):
        return tuple(self(i) for i in (i0, i1, i2, i3))


def get_distance_computer(index):
    return DistanceComputer(index)


class _FlatCodesMeta(type):
    """isinstance(x, IndexFlatCodes): the indexes that keep one code per
    vector in a flat array, as FAISS's IndexFlatCodes subclasses do."""

    def __instancecheck__(cls, obj):
        names = ("IndexFlat", "IndexPQ", "IndexScalarQuantizer",
                 "IndexAdditiveQuantizer", "IndexLSH",
                 "IndexNeuralNetCodec")
        return any(isinstance(obj, getattr(_vecdex, n))
                   for n in names if hasattr(_vecdex, n)) and \
            "FastScan" not in type(obj).__name__


class IndexFlatCodes(metaclass=_FlatCodesMeta):
    """Only for isinstance checks (FAISS's IndexFlatCodes base class)."""

    def __init__(self, *a, **kw):
        raise TypeError("IndexFlatCodes is abstract: build an IndexPQ, "
                        "IndexScalarQuantizer, ... instead")


# ---- ProductQuantizer ------------------------------------------------------

def _pq_centroids(pq):
    c = np.asarray(pq.centroids, dtype=np.float32)
    if c.size != pq.M * pq.ksub * pq.dsub:
        raise RuntimeError("ProductQuantizer: not trained (no centroids)")
    return c.reshape(pq.M, pq.ksub, pq.dsub)


def _pq_tables_args(pq, nx, x, out):
    nx = int(nx)
    x = np.asarray(x)
    if nx < 0 or x.dtype != np.float32 or x.size < nx * pq.d:
        raise ValueError("x: expected %d x %d float32 values, got %s %s"
                         % (nx, pq.d, x.dtype, x.shape))
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or \
            out.size < nx * pq.M * pq.ksub or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError("out: expected a writable contiguous float32 array "
                         "of %d x %d x %d values" % (nx, pq.M, pq.ksub))
    xs = np.ascontiguousarray(x.reshape(-1)[:nx * pq.d]).reshape(
        nx, pq.M, pq.dsub)
    return nx, xs, out.reshape(-1)[:nx * pq.M * pq.ksub].reshape(
        nx, pq.M, pq.ksub)


def compute_distance_tables(pq, nx, x, out):
    cent = _pq_centroids(pq)
    nx, xs, o = _pq_tables_args(pq, nx, x, out)
    for m in range(pq.M):
        diff = xs[:, m, None, :] - cent[None, m, :, :]
        o[:, m, :] = (diff * diff).sum(2)


def compute_inner_prod_tables(pq, nx, x, out):
    cent = _pq_centroids(pq)
    nx, xs, o = _pq_tables_args(pq, nx, x, out)
    for m in range(pq.M):
        o[:, m, :] = xs[:, m, :] @ cent[m].T


def compute_sdc_table(pq):
    _pq_centroids(pq)


def get_sdc_table(pq):
    if np.asarray(pq.centroids).size == 0:
        return np.zeros(0, dtype=np.float32)
    cent = _pq_centroids(pq)
    t = np.empty((pq.M, pq.ksub, pq.ksub), dtype=np.float32)
    for m in range(pq.M):
        diff = cent[m, :, None, :] - cent[m, None, :, :]
        t[m] = (diff * diff).sum(2)
    return t.reshape(-1)


def sync_transposed_centroids(pq):
    _pq_centroids(pq)


def clear_transposed_centroids(pq):
    pass


def get_transposed_centroids(pq):
    if np.asarray(pq.centroids).size == 0:
        return np.zeros(0, dtype=np.float32)
    # FAISS's layout: [dsub][M][ksub]
    return np.ascontiguousarray(
        _pq_centroids(pq).transpose(2, 0, 1)).reshape(-1)


def get_centroids_sq_lengths(pq):
    if np.asarray(pq.centroids).size == 0:
        return np.zeros(0, dtype=np.float32)
    c = _pq_centroids(pq)
    return (c * c).sum(2).astype(np.float32).reshape(-1)


def compute_codes_with_assign_index(pq, x, codes, n):
    n = int(n)
    x = np.asarray(x, dtype=np.float32).reshape(-1)[:n * pq.d]
    c = pq.compute_codes(x.reshape(n, pq.d))
    if not isinstance(codes, np.ndarray) or codes.size < c.size or \
            codes.dtype != np.uint8:
        raise ValueError("codes: expected a uint8 array of %d x %d bytes"
                         % (n, pq.code_size))
    codes.reshape(-1)[:c.size] = c.reshape(-1)


def get_CodePacker(index):
    """FAISS's index.get_CodePacker(): the 4-bit block packer of the
    fast-scan kinds (nsq = M, nvec = bbs)."""
    from ._codepacker import CodePackerPQ4
    return CodePackerPQ4(index.M, index.bbs)
