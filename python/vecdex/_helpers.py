"""FAISS's small numeric helpers (faiss.rand, kmin, ResultHeap, the
partition and histogram primitives, ...), written for vecdex over numpy.

FAISS exposes these through SWIG with raw pointers (``faiss.swig_ptr(a)``);
vecdex's swig_ptr is the identity, so "pointer" arguments here are the numpy
arrays themselves and outputs are written into them in place.  Inputs are
checked (sizes against the counts given) so that a wrong call raises
ValueError instead of reading past an array, as FAISS would.

Deliberate difference: the random generators are numpy's (PCG64 seeded with
`seed`), not FAISS's mt19937 streams, so the same seed gives other numbers
(the distributions are the same: uniform [0, 1), standard normal, uniform
integers).
"""
import numpy as np

__all__ = [
    "rand", "randn", "randint", "lrand", "float_rand", "float_randn",
    "int64_rand", "int64_rand_max", "rand_smooth_vectors",
    "eval_intersection", "ranklist_intersection_size", "kmin", "kmax",
    "ResultHeap", "merge_knn_results", "bucket_sort",
    "matrix_bucket_sort_inplace", "fvec_L2sqr_ny", "fvec_inner_products_ny",
    "fvec_madd", "fvec_madd_and_argmin", "pairwise_indexed_L2sqr",
    "pairwise_indexed_inner_product", "fvec_norm_L2sqr", "fvec_norms_L2sqr",
    "fvec_norms_L2", "fvec_renorm_L2", "CMax_float_partition_fuzzy",
    "CMin_float_partition_fuzzy", "CMax_uint16_partition_fuzzy",
    "CMin_uint16_partition_fuzzy", "AlignedTableUint8", "AlignedTableUint16",
    "copy_array_to_AlignedTable", "array_to_AlignedTable",
    "AlignedTable_to_array", "simd_histogram_8", "simd_histogram_16",
    "popcount64", "get_mem_usage_kb", "quantize_LUT_and_bias",
]


def _flat(a, dtype, n, name):
    """a as a writable 1-d view of `dtype` with at least n entries."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got "
                        f"{type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got "
                        f"{a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: array must be C-contiguous")
    v = a.reshape(-1)
    if v.size < n:
        raise ValueError(f"{name}: array has {v.size} entries, {n} needed")
    return v


def _count(n, name):
    n = int(n)
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


# ---- random numbers ----

def rand(n, seed=12345):
    """Uniform float32 numbers in [0, 1); n an int or a shape."""
    return np.random.default_rng(seed).random(n, dtype=np.float32)


def randn(n, seed=12345):
    """Standard normal float32 numbers; n an int or a shape."""
    return np.random.default_rng(seed).standard_normal(n, dtype=np.float32)


def randint(n, seed=12345, vmax=None):
    """int64 numbers, uniform in [0, vmax) (or over [0, 2^63) without
    vmax); n an int or a shape."""
    hi = np.iinfo(np.int64).max if vmax is None else int(vmax)
    if hi <= 0:
        raise ValueError(f"randint: vmax must be > 0, got {vmax}")
    return np.random.default_rng(seed).integers(0, hi, size=n,
                                                dtype=np.int64)


lrand = randint


def float_rand(x, n, seed):
    _flat(x, "float32", _count(n, "n"), "float_rand")[:n] = rand(n, seed)


def float_randn(x, n, seed):
    _flat(x, "float32", _count(n, "n"), "float_randn")[:n] = randn(n, seed)


def int64_rand(x, n, seed):
    _flat(x, "int64", _count(n, "n"), "int64_rand")[:n] = randint(n, seed)


def int64_rand_max(x, n, vmax, seed):
    _flat(x, "int64", _count(n, "n"), "int64_rand_max")[:n] = randint(
        n, seed, vmax)


def rand_smooth_vectors(n, d, seed=1234):
    """n vectors of d dims that lie near a low-dimensional manifold (a
    random linear map of few latent dims, then a smooth non-linearity), so
    that they compress well, as FAISS's rand_smooth_vectors."""
    rng = np.random.default_rng(seed)
    d1 = max(1, min(d, 10))
    latent = rng.standard_normal((n, d1))
    proj = rng.standard_normal((d1, d)) / np.sqrt(d1)
    x = latent @ proj
    x = np.sin(x) + 0.1 * x
    return np.ascontiguousarray(x, dtype=np.float32)


# ---- result tables ----

def ranklist_intersection_size(k1, v1, k2, v2):
    """The number of distinct ids of v1[:k1] found in v2[:k2] (ids < 0
    ignored)."""
    a = np.asarray(v1).reshape(-1)[:int(k1)]
    b = np.asarray(v2).reshape(-1)[:int(k2)]
    a = np.unique(a[a >= 0])
    return int(np.isin(a, b).sum())


def eval_intersection(I1, I2):
    """Summed over rows, the size of the intersection of the rows of two
    result tables."""
    I1 = np.asarray(I1)
    I2 = np.asarray(I2)
    if I1.ndim != 2 or I2.ndim != 2 or I1.shape[0] != I2.shape[0]:
        raise ValueError(f"eval_intersection: expected two tables with the "
                         f"same number of rows, got {I1.shape} and "
                         f"{I2.shape}")
    return sum(ranklist_intersection_size(I1.shape[1], I1[i], I2.shape[1],
                                          I2[i])
               for i in range(I1.shape[0]))


def _kbest(array, k, largest):
    x = np.asarray(array, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {x.shape}")
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n, m = x.shape
    key = -x if largest else x
    kk = min(k, m)
    order = np.argsort(key, axis=1, kind="stable")[:, :kk]
    D = np.full((n, k), -np.inf if largest else np.inf, dtype=np.float32)
    I = np.full((n, k), -1, dtype=np.int64)
    D[:, :kk] = np.take_along_axis(x, order, 1)
    I[:, :kk] = order
    return D, I


def kmin(array, k):
    """(D, I): the k smallest values of each row and their columns."""
    return _kbest(array, k, False)


def kmax(array, k):
    """(D, I): the k largest values of each row and their columns."""
    return _kbest(array, k, True)


class ResultHeap:
    """Accumulates the k best (distance, id) of nq queries over batches of
    results: add_result(D, I) with D, I of shape (nq, m); finalize() sorts;
    then .D and .I hold the (nq, k) results."""

    def __init__(self, nq, k, keep_max=False):
        self.nq, self.k, self.keep_max = int(nq), int(k), bool(keep_max)
        if self.nq < 0 or self.k < 0:
            raise ValueError(f"ResultHeap: nq and k must be >= 0, got "
                             f"{nq}, {k}")
        self.D = np.full((self.nq, self.k), -np.inf if keep_max else np.inf,
                         dtype=np.float32)
        self.I = np.full((self.nq, self.k), -1, dtype=np.int64)

    def _merge(self, rows, D, I):
        D = np.asarray(D, dtype=np.float32)
        I = np.asarray(I, dtype=np.int64)
        if D.shape != I.shape or D.ndim != 2 or D.shape[0] != len(rows):
            raise ValueError(f"ResultHeap: expected D and I of shape "
                             f"({len(rows)}, m), got {D.shape} and {I.shape}")
        allD = np.hstack([self.D[rows], D])
        allI = np.hstack([self.I[rows], I])
        key = -allD if self.keep_max else allD
        o = np.argsort(key, axis=1, kind="stable")[:, :self.k]
        self.D[rows] = np.take_along_axis(allD, o, 1)
        self.I[rows] = np.take_along_axis(allI, o, 1)

    def add_result(self, D, I):
        self._merge(np.arange(self.nq), D, I)

    def add_result_subset(self, subset, D, I):
        subset = np.asarray(subset, dtype=np.int64)
        if subset.size and (subset.min() < 0 or subset.max() >= self.nq):
            raise ValueError("ResultHeap: subset holds a query out of range")
        self._merge(subset, D, I)

    def finalize(self):
        pass  # kept sorted at every add


def merge_knn_results(Dall, Iall, keep_max=False):
    """Merges (nshard, nq, k) result tables into (nq, k); ties go to the
    lower shard, as in FAISS."""
    Dall = np.asarray(Dall, dtype=np.float32)
    Iall = np.asarray(Iall, dtype=np.int64)
    if Dall.shape != Iall.shape or Dall.ndim != 3:
        raise ValueError(f"merge_knn_results: expected two (nshard, nq, k) "
                         f"arrays, got {Dall.shape} and {Iall.shape}")
    ns, nq, k = Dall.shape
    D = Dall.transpose(1, 0, 2).reshape(nq, ns * k)
    I = Iall.transpose(1, 0, 2).reshape(nq, ns * k)
    # results of a shard past its last valid one (-1) never win
    key = np.where(I < 0, np.inf, -D if keep_max else D)
    o = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, o, 1), np.take_along_axis(I, o, 1)


def bucket_sort(tab, nbucket=None, nt=0):
    """(lims, perm): perm lists the positions of tab by value, lims[b] ..
    lims[b+1] those holding value b."""
    tab = np.asarray(tab)
    if tab.ndim != 1 or tab.dtype.kind not in "iu":
        raise ValueError("bucket_sort: expected a 1-d integer array")
    if tab.size and tab.min() < 0:
        raise ValueError("bucket_sort: values must be >= 0")
    if nbucket is None:
        nbucket = int(tab.max()) + 1 if tab.size else 0
    perm = np.argsort(tab, kind="stable").astype(np.int64)
    lims = np.zeros(nbucket + 1, dtype=np.int64)
    lims[1:] = np.cumsum(np.bincount(tab, minlength=nbucket)[:nbucket])
    return lims, perm


def matrix_bucket_sort_inplace(tab, nbucket=None, nt=0):
    """Replaces the (nrow, ncol) table of bucket numbers by the row numbers
    sorted by bucket (entries < 0 are ignored); returns lims, as FAISS."""
    if not isinstance(tab, np.ndarray) or tab.ndim != 2 or \
            tab.dtype not in (np.int32, np.int64) or \
            not tab.flags.c_contiguous:
        raise ValueError("matrix_bucket_sort_inplace: expected a "
                         "C-contiguous 2-d int32 or int64 array")
    flat = tab.reshape(-1)
    valid = flat >= 0
    vals = flat[valid]
    if nbucket is None:
        nbucket = int(vals.max()) + 1 if vals.size else 0
    rows = (np.nonzero(valid)[0] // tab.shape[1]).astype(tab.dtype)
    order = np.argsort(vals, kind="stable")
    lims = np.zeros(nbucket + 1, dtype=np.int64)
    lims[1:] = np.cumsum(np.bincount(vals, minlength=nbucket)[:nbucket])
    flat[:len(order)] = rows[order]
    flat[len(order):] = -1
    return lims


# ---- vector kernels with output pointers ----

def fvec_L2sqr_ny(dis, x, y, d, ny):
    d, ny = _count(d, "d"), _count(ny, "ny")
    xv = _flat(x, "float32", d, "fvec_L2sqr_ny x")[:d]
    yv = _flat(y, "float32", d * ny, "fvec_L2sqr_ny y")[:d * ny]
    out = _flat(dis, "float32", ny, "fvec_L2sqr_ny dis")
    out[:ny] = ((yv.reshape(ny, d) - xv) ** 2).sum(1)


def fvec_inner_products_ny(ip, x, y, d, ny):
    d, ny = _count(d, "d"), _count(ny, "ny")
    xv = _flat(x, "float32", d, "fvec_inner_products_ny x")[:d]
    yv = _flat(y, "float32", d * ny, "fvec_inner_products_ny y")[:d * ny]
    out = _flat(ip, "float32", ny, "fvec_inner_products_ny ip")
    out[:ny] = yv.reshape(ny, d) @ xv


def fvec_madd(n, a, bf, b, c):
    """c = a + bf * b over n entries."""
    n = _count(n, "n")
    _flat(c, "float32", n, "fvec_madd c")[:n] = (
        _flat(a, "float32", n, "fvec_madd a")[:n]
        + np.float32(bf) * _flat(b, "float32", n, "fvec_madd b")[:n])


def fvec_madd_and_argmin(n, a, bf, b, c):
    """c = a + bf * b; returns the index of the smallest entry of c."""
    fvec_madd(n, a, bf, b, c)
    return int(np.argmin(c.reshape(-1)[:int(n)])) if int(n) else -1


def _pairwise_indexed(name, d, n, x, ix, y, iy, dis, ip):
    d, n = _count(d, "d"), _count(n, "n")
    xi = np.asarray(ix).reshape(-1)[:n].astype(np.int64)
    yi = np.asarray(iy).reshape(-1)[:n].astype(np.int64)
    if len(xi) < n or len(yi) < n:
        raise ValueError(f"{name}: index arrays shorter than n={n}")
    xs = np.asarray(x, dtype=np.float32).reshape(-1, d)
    ys = np.asarray(y, dtype=np.float32).reshape(-1, d)
    if n and (xi.min() < 0 or xi.max() >= len(xs) or yi.min() < 0
              or yi.max() >= len(ys)):
        raise ValueError(f"{name}: an index is out of range")
    a, b = xs[xi], ys[yi]
    out = _flat(dis, "float32", n, name + " dis")
    out[:n] = (a * b).sum(1) if ip else ((a - b) ** 2).sum(1)


def pairwise_indexed_L2sqr(d, n, x, ix, y, iy, dis):
    _pairwise_indexed("pairwise_indexed_L2sqr", d, n, x, ix, y, iy, dis,
                      False)


def pairwise_indexed_inner_product(d, n, x, ix, y, iy, dis):
    _pairwise_indexed("pairwise_indexed_inner_product", d, n, x, ix, y, iy,
                      dis, True)


def fvec_norm_L2sqr(x, d):
    d = _count(d, "d")
    v = np.asarray(x, dtype=np.float32).reshape(-1)[:d]
    return float(np.dot(v, v))


def fvec_norms_L2sqr(norms, x, d, nx):
    d, nx = _count(d, "d"), _count(nx, "nx")
    v = np.asarray(x, dtype=np.float32).reshape(-1)[:d * nx].reshape(nx, d)
    _flat(norms, "float32", nx, "fvec_norms_L2sqr")[:nx] = (v * v).sum(1)


def fvec_norms_L2(norms, x, d, nx):
    fvec_norms_L2sqr(norms, x, d, nx)
    v = norms.reshape(-1)[:int(nx)]
    v[:] = np.sqrt(v)


def fvec_renorm_L2(d, nx, x):
    d, nx = _count(d, "d"), _count(nx, "nx")
    v = _flat(x, "float32", d * nx, "fvec_renorm_L2")[:d * nx].reshape(nx, d)
    nr = np.sqrt((v * v).sum(1, keepdims=True))
    v /= np.where(nr > 0, nr, 1)


# ---- partitions and histograms (FAISS's fast-scan building blocks) ----

def _partition(name, vals, ids, n, q_min, q_max, q_out, largest, dtype):
    n = _count(n, "n")
    q_min, q_max = int(q_min), int(q_max)
    if not 0 <= q_min <= q_max <= n:
        raise ValueError(f"{name}: expected 0 <= q_min <= q_max <= n, got "
                         f"q_min={q_min} q_max={q_max} n={n}")
    v = _flat(vals, dtype, n, name + " vals")
    i = _flat(ids, "int64", n, name + " ids")
    if q_out is not None:
        _flat(q_out, q_out.dtype, 1, name + " q")
    key = v[:n].astype(np.float64)
    order = np.argsort(-key if largest else key, kind="stable")
    v[:n] = v[:n][order]
    i[:n] = i[:n][order]
    # the smallest q in [q_min, q_max] past which the value changes: FAISS
    # may pick any q there; all entries before it are on the right side
    q = q_min
    if q_out is not None:
        q_out.reshape(-1)[0] = q
    return v[q - 1] if q > 0 else (v[0] if n else 0)


def CMax_float_partition_fuzzy(vals, ids, n, q_min, q_max, q_out):
    """Reorders vals[:n] (and ids along) so that the q smallest come first,
    q in [q_min, q_max] (stored in q_out[0] when given); returns the
    threshold."""
    return _partition("CMax_float_partition_fuzzy", vals, ids, n, q_min,
                      q_max, q_out, False, "float32")


def CMin_float_partition_fuzzy(vals, ids, n, q_min, q_max, q_out):
    """As CMax_float_partition_fuzzy with the q largest first."""
    return _partition("CMin_float_partition_fuzzy", vals, ids, n, q_min,
                      q_max, q_out, True, "float32")


def CMax_uint16_partition_fuzzy(vals, ids, n, q_min, q_max, q_out):
    return _partition("CMax_uint16_partition_fuzzy", vals, ids, n, q_min,
                      q_max, q_out, False, "uint16")


def CMin_uint16_partition_fuzzy(vals, ids, n, q_min, q_max, q_out):
    return _partition("CMin_uint16_partition_fuzzy", vals, ids, n, q_min,
                      q_max, q_out, True, "uint16")


class _AlignedTable:
    """A resizable array (FAISS's AlignedTable); get() returns the numpy
    array itself (vecdex's "pointer")."""
    dtype = None

    def __init__(self, n=0):
        self._a = np.zeros(_count(n, "n"), dtype=self.dtype)

    def get(self):
        return self._a

    def __array__(self, dtype=None, copy=None):
        # numpy reads the table (vector_to_array, np.asarray)
        return self._a if dtype is None else self._a.astype(dtype)

    def __len__(self):
        return self._a.size

    def data(self):
        return self._a

    def size(self):
        return self._a.size

    def nbytes(self):
        return self._a.nbytes

    def resize(self, n):
        n = _count(n, "n")
        a = np.zeros(n, dtype=self.dtype)
        m = min(n, self._a.size)
        a[:m] = self._a[:m]
        self._a = a

    def clear(self):
        self._a = np.zeros(0, dtype=self.dtype)


class AlignedTableUint8(_AlignedTable):
    dtype = np.uint8


class AlignedTableUint16(_AlignedTable):
    dtype = np.uint16


def copy_array_to_AlignedTable(a, tab):
    if not isinstance(tab, _AlignedTable):
        raise TypeError("copy_array_to_AlignedTable: expected an "
                        "AlignedTable")
    tab._a = np.array(np.asarray(a).reshape(-1), dtype=tab.dtype)


def array_to_AlignedTable(a):
    a = np.asarray(a)
    tab = {np.dtype(np.uint8): AlignedTableUint8,
           np.dtype(np.uint16): AlignedTableUint16}.get(a.dtype)
    if tab is None:
        raise TypeError(f"array_to_AlignedTable: no AlignedTable of "
                        f"{a.dtype}")
    t = tab()
    copy_array_to_AlignedTable(a, t)
    return t


def AlignedTable_to_array(tab):
    return tab._a.copy()


def _histogram(name, nbin, data, n, min_, shift, hist):
    n = _count(n, "n")
    v = np.asarray(data).reshape(-1)[:n].astype(np.int64)
    if v.size < n:
        raise ValueError(f"{name}: data has {v.size} entries, {n} needed")
    out = _flat(hist, "int32", nbin, name + " hist")
    if shift < 0:
        b = v - int(min_)  # values taken as bin numbers
    else:
        b = (v - int(min_)) >> int(shift)
        b[v < int(min_)] = -1
    b = b[(b >= 0) & (b < nbin)]
    out[:nbin] = np.bincount(b, minlength=nbin)[:nbin]


def simd_histogram_8(data, n, min_, shift, hist):
    """Histogram of uint16 values into 8 bins of 2^shift starting at min
    (shift < 0: values are the bin numbers); out-of-range values ignored."""
    _histogram("simd_histogram_8", 8, data, n, min_, shift, hist)


def simd_histogram_16(data, n, min_, shift, hist):
    _histogram("simd_histogram_16", 16, data, n, min_, shift, hist)


def popcount64(x):
    return bin(int(x) & 0xFFFFFFFFFFFFFFFF).count("1")


def get_mem_usage_kb():
    """The resident memory of this process in kB (Linux /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def quantize_LUT_and_bias(nprobe, M, ksub, lut_is_3d, LUT, bias, LUTq, M2,
                          biasq, a_out, b_out):
    """Quantizes float look-up tables (and per-probe biases) to uint8
    entries (uint16 biases) with one scale a and offset b, so that a sum
    of entries s approximates the float sum as s / a + b (FAISS's fast-scan
    LUT quantization).  LUT: (M, ksub), or (nprobe, M, ksub) when
    lut_is_3d; bias: nprobe values or None; with biasq None the biases are
    folded into the first sub-quantizer of a 3-d table.  Outputs go to
    LUTq (rows of M2 >= M), biasq, a_out[0] and b_out[0]."""
    nprobe, M, ksub, M2 = (_count(v, n) for v, n in
                           ((nprobe, "nprobe"), (M, "M"), (ksub, "ksub"),
                            (M2, "M2")))
    if M2 < M:
        raise ValueError(f"quantize_LUT_and_bias: M2={M2} < M={M}")
    np3 = nprobe if lut_is_3d else 1
    L = np.array(_flat(LUT, "float32", np3 * M * ksub, "LUT")
                 [:np3 * M * ksub], dtype=np.float64).reshape(np3, M, ksub)
    B = None if bias is None else np.array(
        _flat(bias, "float32", nprobe, "bias")[:nprobe], dtype=np.float64)
    if B is not None and biasq is None:
        if not lut_is_3d:
            raise ValueError("quantize_LUT_and_bias: a bias without biasq "
                             "needs a 3-d LUT to fold it into")
        L[:, 0, :] += B[:, None]
        B = None
    if lut_is_3d and B is not None:
        # per (probe, sub-quantizer) minima; each probe's offset goes to
        # its bias, the smallest offset to b
        mins = L.min(axis=2)                                # (nprobe, M)
        span = (L - mins[:, :, None]).max(axis=2)
        off = B + mins.sum(1)
        b = float(off.min())
        B = off - b
        tot = float((span.sum(1) + B).max())
        mx = float(span.max())
        mins3 = mins[:, :, None]
        bmin = 0.0
    else:
        mins = L.min(axis=(0, 2))                        # per sub-quantizer
        span = (L - mins[None, :, None]).max(axis=(0, 2))
        b = float(mins.sum())
        bmin = 0.0
        if B is not None:
            bmin = float(B.min())
            b += bmin
            B = B - bmin
        tot = float(span.sum()) + (float(B.max()) if B is not None else 0.0)
        mx = float(span.max())
        mins3 = mins[None, :, None]
    cands = [65535.0 / tot if tot > 0 else np.inf,
             255.0 / mx if mx > 0 else np.inf]
    a = min(cands)
    if not np.isfinite(a):
        a = 0.0  # all entries equal: every sum is b
    q = np.clip(np.rint((L - mins3) * a), 0, 255)
    out = _flat(LUTq, "uint8", np3 * M2 * ksub, "LUTq")
    tab = out[:np3 * M2 * ksub].reshape(np3, M2, ksub)
    tab[:, :M] = q.astype(np.uint8)
    tab[:, M:] = 0
    if B is not None:
        _flat(biasq, "uint16", nprobe, "biasq")[:nprobe] = np.clip(
            np.rint(B * a), 0, 65535).astype(np.uint16)
    _flat(a_out, "float32", 1, "a_out")[0] = a
    _flat(b_out, "float32", 1, "b_out")[0] = b
