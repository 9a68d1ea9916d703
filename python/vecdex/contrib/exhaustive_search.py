"""Exact search over data given block by block (faiss.contrib.
exhaustive_search's names, written for vecdex): k-NN and range ground
truth, and range search that lowers its radius to cap the result count.
vecdex has no multi-GPU cloner here: `ngpu` and `shard` are accepted and
the search runs on the CPU."""
import numpy as np

import vecdex

__all__ = ["knn_ground_truth", "knn", "range_ground_truth",
           "threshold_radius", "threshold_radius_nres",
           "range_search_max_results", "exponential_query_iterator"]


def _similarity(metric):
    return metric == vecdex.METRIC_INNER_PRODUCT


def knn_ground_truth(xq, db_iterator, k, metric_type=vecdex.METRIC_L2,
                     shard=False, ngpu=-1):
    """Exact (D, I) of the k nearest neighbours of xq among the blocks that
    db_iterator yields (ids numbered across blocks)."""
    xq = np.ascontiguousarray(xq, dtype="float32")
    nq, d = xq.shape
    rh = vecdex.ResultHeap(nq, k, keep_max=_similarity(metric_type))
    i0 = 0
    for xb in db_iterator:
        xb = np.ascontiguousarray(xb, dtype="float32")
        index = vecdex.IndexFlat(d, metric_type)
        index.add(xb)
        D, I = index.search(xq, k)
        rh.add_result(D, np.where(I >= 0, I + i0, -1))
        i0 += xb.shape[0]
    rh.finalize()
    return rh.D, rh.I


def knn(xq, xb, k, metric=vecdex.METRIC_L2):
    """Exact k-NN of xq in xb: (D, I)."""
    return vecdex.knn(xq, xb, k, metric)


def range_ground_truth(xq, db_iterator, threshold,
                       metric_type=vecdex.METRIC_L2, shard=False, ngpu=-1):
    """Exact range search (lims, D, I) of xq among the blocks of
    db_iterator."""
    xq = np.ascontiguousarray(xq, dtype="float32")
    nq, d = xq.shape
    per_q = [[] for _ in range(nq)]
    i0 = 0
    for xb in db_iterator:
        xb = np.ascontiguousarray(xb, dtype="float32")
        index = vecdex.IndexFlat(d, metric_type)
        index.add(xb)
        lims, D, I = index.range_search(xq, threshold)
        for q in range(nq):
            a, b = lims[q], lims[q + 1]
            per_q[q].append((D[a:b], I[a:b] + i0))
        i0 += xb.shape[0]
    lims = np.zeros(nq + 1, dtype="int64")
    Ds, Is = [], []
    for q in range(nq):
        for D, I in per_q[q]:
            Ds.append(D)
            Is.append(I)
        lims[q + 1] = lims[q] + sum(len(D) for D, _ in per_q[q])
    D = np.hstack(Ds).astype("float32") if Ds else np.zeros(0, "float32")
    I = np.hstack(Is).astype("int64") if Is else np.zeros(0, "int64")
    return lims, D, I


def threshold_radius_nres(nres, dis, ids, thresh, keep_max=False):
    """Keeps the results beyond thresh; per-query counts instead of lims."""
    mask = dis > thresh if keep_max else dis < thresh
    bounds = np.concatenate([[0], np.cumsum(np.asarray(nres, "int64"))])
    csum = np.concatenate([[0], np.cumsum(mask)])
    return np.diff(csum[bounds]).astype(np.asarray(nres).dtype), dis[mask], \
        ids[mask]


def threshold_radius(lims, dis, ids, thresh, keep_max=False):
    """Keeps the range results beyond thresh: new (lims, dis, ids)."""
    mask = dis > thresh if keep_max else dis < thresh
    csum = np.concatenate([[0], np.cumsum(mask)])
    return csum[np.asarray(lims)].astype(np.asarray(lims).dtype), \
        dis[mask], ids[mask]


def range_search_max_results(index, query_iterator, radius,
                             max_results=None, min_results=None,
                             shard=False, ngpu=0, clip_to_min=False):
    """Range search of the query blocks of query_iterator; whenever the
    results exceed max_results the radius is tightened so that
    min_results remain (and applied to the earlier blocks too).  Returns
    (radius, lims, D, I)."""
    if min_results is None:
        if max_results is None:
            raise ValueError("range_search_max_results: give max_results "
                             "or min_results")
        min_results = int(0.8 * max_results)
    if max_results is None:
        max_results = int(min_results * 1.5)
    keep_max = _similarity(index.metric_type)
    batches = []
    total = 0
    for xq in query_iterator:
        lims, D, I = index.range_search(
            np.ascontiguousarray(xq, dtype="float32"), radius)
        batches.append([np.diff(lims), D, I])
        total += len(D)
        if total > max_results:
            radius, total = _tighten(batches, min_results, keep_max)
    if clip_to_min and total > min_results:
        radius, total = _tighten(batches, min_results, keep_max)
    nres = np.hstack([b[0] for b in batches]) if batches else \
        np.zeros(0, "int64")
    lims = np.concatenate([[0], np.cumsum(nres)]).astype("int64")
    D = np.hstack([b[1] for b in batches]) if batches else \
        np.zeros(0, "float32")
    I = np.hstack([b[2] for b in batches]) if batches else \
        np.zeros(0, "int64")
    return radius, lims, D, I


def _tighten(batches, target, keep_max):
    alld = np.hstack([b[1] for b in batches])
    if len(alld) <= target:
        return None, len(alld)
    s = np.sort(alld)
    radius = float(s[len(s) - 1 - target] if keep_max else s[target])
    total = 0
    for b in batches:
        b[0], b[1], b[2] = threshold_radius_nres(b[0], b[1], b[2], radius,
                                                 keep_max)
        total += len(b[1])
    return radius, total


def exponential_query_iterator(xq, start_bs=32, max_bs=20000):
    """Yields blocks of xq, doubling in size from start_bs up to max_bs."""
    i0, bs = 0, int(start_bs)
    if bs <= 0:
        raise ValueError(f"start_bs must be > 0, got {start_bs}")
    while i0 < len(xq):
        yield xq[i0:i0 + bs]
        i0 += bs
        bs = min(max_bs, bs * 2)
