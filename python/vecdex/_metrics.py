"""FAISS's extra metrics (METRIC_L1 ... METRIC_GOWER) for pairwise
distances and exact k-NN, over numpy.

The values of the METRIC_* constants are FAISS's, so that index files and
code that pass them around agree.  The formulas follow FAISS's, including
its non-finite results (Canberra's 0/0 and Jensen-Shannon's 0*log 0 give
NaN, as in FAISS; scipy skips those terms).  vecdex's indexes take only
METRIC_L2 and METRIC_INNER_PRODUCT; these metrics are for
pairwise_distances and knn.
"""
import numpy as np

METRIC_L1 = 2
METRIC_Linf = 3
METRIC_Lp = 4
METRIC_Canberra = 20
METRIC_BrayCurtis = 21
METRIC_JensenShannon = 22
METRIC_Jaccard = 23
METRIC_NaNEuclidean = 24
METRIC_GOWER = 25

__all__ = ["METRIC_L1", "METRIC_Linf", "METRIC_Lp", "METRIC_Canberra",
           "METRIC_BrayCurtis", "METRIC_JensenShannon", "METRIC_Jaccard",
           "METRIC_NaNEuclidean", "METRIC_GOWER", "pairwise_distances",
           "is_similarity_metric"]

_BLOCK = 1 << 22  # entries of the (nq, nb, d) temporary per step


def is_similarity_metric(mt):
    """True for metrics where larger is closer (inner product, Jaccard)."""
    return int(mt) in (0, METRIC_Jaccard)


def _pair(x, y, mt, arg):
    """(nx, ny) distances between the rows of x and y (float64)."""
    dif = x[:, None, :] - y[None, :, :]
    if mt == 1:
        return (dif ** 2).sum(-1)
    if mt == 0:
        return x @ y.T
    if mt == METRIC_L1:
        return np.abs(dif).sum(-1)
    if mt == METRIC_Linf:
        return np.abs(dif).max(-1)
    if mt == METRIC_Lp:
        return (np.abs(dif) ** arg).sum(-1)
    if mt == METRIC_Canberra:
        return (np.abs(dif) / (np.abs(x[:, None, :])
                               + np.abs(y[None, :, :]))).sum(-1)
    if mt == METRIC_BrayCurtis:
        return np.abs(dif).sum(-1) / np.abs(x[:, None, :]
                                            + y[None, :, :]).sum(-1)
    if mt == METRIC_JensenShannon:
        a, b = x[:, None, :], y[None, :, :]
        m = 0.5 * (a + b)
        return 0.5 * (a * np.log(a / m) + b * np.log(b / m)).sum(-1)
    if mt == METRIC_Jaccard:
        a, b = x[:, None, :], y[None, :, :]
        return np.minimum(a, b).sum(-1) / np.maximum(a, b).sum(-1)
    if mt == METRIC_NaNEuclidean:
        ok = ~np.isnan(dif)
        present = ok.sum(-1)
        s = np.where(ok, dif, 0) ** 2
        d = x.shape[1]
        return np.where(present > 0, s.sum(-1) * d / np.maximum(present, 1),
                        np.nan)
    if mt == METRIC_GOWER:
        a, b = x[:, None, :], y[None, :, :]
        ok = ~(np.isnan(a) | np.isnan(b))
        cat = (a < 0) | (b < 0)
        term = np.where(cat, (a != b).astype(float), np.abs(dif))
        term = np.where(ok, term, 0)
        n = ok.sum(-1)
        return np.where(n > 0, term.sum(-1) / np.maximum(n, 1), np.nan)
    raise ValueError(f"unknown metric {mt}")


def pairwise_distances(xq, xb, mt=1, metric_arg=0.0):
    """The (nq, nb) matrix of distances between the rows of xq and xb
    under metric mt (float32), as faiss.pairwise_distances: squared L2,
    inner product, or one of the extra metrics; for METRIC_Lp, metric_arg
    is p and the result is sum |x-y|^p (not its p-th root)."""
    xq = np.ascontiguousarray(xq, dtype="float32")
    xb = np.ascontiguousarray(xb, dtype="float32")
    if xq.ndim != 2 or xb.ndim != 2 or xq.shape[1] != xb.shape[1]:
        raise ValueError(f"pairwise_distances: expected xq (nq, d) and xb "
                         f"(nb, d), got {xq.shape} and {xb.shape}")
    mt = int(mt)
    if mt not in (0, 1, METRIC_L1, METRIC_Linf, METRIC_Lp, METRIC_Canberra,
                  METRIC_BrayCurtis, METRIC_JensenShannon, METRIC_Jaccard,
                  METRIC_NaNEuclidean, METRIC_GOWER):
        raise ValueError(f"pairwise_distances: unknown metric {mt}")
    if mt == METRIC_Lp and not metric_arg > 0:
        raise ValueError(f"pairwise_distances: METRIC_Lp needs p = "
                         f"metric_arg > 0, got {metric_arg}")
    nq, d = xq.shape
    out = np.empty((nq, xb.shape[0]), dtype="float32")
    x64, y64 = xq.astype(np.float64), xb.astype(np.float64)
    step = max(1, _BLOCK // max(1, d * max(1, xb.shape[0])))
    with np.errstate(all="ignore"):
        for i0 in range(0, nq, step):
            out[i0:i0 + step] = _pair(x64[i0:i0 + step], y64, mt,
                                      float(metric_arg))
    return out


def knn_extra(xq, xb, k, mt, metric_arg):
    """Exact k-NN under an extra metric: (D, I) as faiss.knn (NaN
    distances rank last)."""
    D = pairwise_distances(xq, xb, mt, metric_arg)
    key = -D if is_similarity_metric(mt) else D
    key = np.where(np.isnan(key), np.inf, key)
    kk = min(k, D.shape[1])
    o = np.argsort(key, axis=1, kind="stable")[:, :kk]
    Dk = np.full((D.shape[0], k), -np.inf if is_similarity_metric(mt)
                 else np.inf, dtype="float32")
    Ik = np.full((D.shape[0], k), -1, dtype="int64")
    Dk[:, :kk] = np.take_along_axis(D, o, 1)
    Ik[:, :kk] = o
    return Dk, Ik
