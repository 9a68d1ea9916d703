"""Evaluation of search results, with faiss.contrib.evaluation's names where
faiss has the function.

k-NN results: knn_intersection_measure, recall_at_k, recall_at_1,
mean_average_precision.  Range results (lims, D, I as range_search returns
them): range_ground_truth, filter_range_results, range_PR, counts_to_PR.
"""
import numpy as np

__all__ = ["knn_intersection_measure", "recall_at_k", "recall_at_1",
           "average_precision", "mean_average_precision",
           "range_ground_truth", "filter_range_results", "range_PR",
           "counts_to_PR"]


def _pair(I, gt):
    I = np.asarray(I)
    gt = np.asarray(gt)
    if I.ndim != 2 or gt.ndim != 2 or I.shape[0] != gt.shape[0]:
        raise ValueError(f"expected two (nq, k) tables with the same nq, got "
                         f"{I.shape} and {gt.shape}")
    return I, gt


def knn_intersection_measure(I1, I2):
    """Share of the ids of I1 also in I2, row by row (both (nq, k))."""
    I1, I2 = _pair(I1, I2)
    if I1.shape != I2.shape:
        raise ValueError(f"shapes differ: {I1.shape} and {I2.shape}")
    if I1.size == 0:
        return 0.0
    ninter = sum(np.intersect1d(a, b).size for a, b in zip(I1, I2))
    return ninter / I1.size


def recall_at_k(I, gt, k=None):
    """k-recall@k: share of the true k nearest (the first k columns of gt)
    found in the first k columns of I (k defaults to I's width)."""
    I, gt = _pair(I, gt)
    k = I.shape[1] if k is None else k
    if k <= 0 or k > I.shape[1] or k > gt.shape[1]:
        raise ValueError(f"k={k} does not fit the tables {I.shape}, {gt.shape}")
    if I.shape[0] == 0:
        return 0.0
    hits = sum(np.intersect1d(a[:k][a[:k] >= 0], b[:k]).size
               for a, b in zip(I, gt))
    return hits / float(I.shape[0] * k)


def recall_at_1(I, gt, rank=None):
    """1-recall@rank: share of queries whose true nearest neighbour (gt[:, 0])
    is among the first `rank` results (all of them by default)."""
    I, gt = _pair(I, gt)
    rank = I.shape[1] if rank is None else rank
    if I.shape[0] == 0:
        return 0.0
    return float((I[:, :rank] == gt[:, :1]).any(axis=1).mean())


def average_precision(ranked, relevant):
    """Average precision of one ranked list against a set of relevant ids:
    the mean, over relevant ids, of the precision at the rank where each is
    found (0 for those not found)."""
    relevant = set(int(x) for x in np.asarray(relevant).ravel() if x >= 0)
    if not relevant:
        return 0.0
    hits, s, seen = 0, 0.0, set()
    for r, x in enumerate(np.asarray(ranked).ravel()):
        x = int(x)
        if x in relevant and x not in seen:
            seen.add(x)
            hits += 1
            s += hits / (r + 1.0)
    return s / len(relevant)


def mean_average_precision(I, gt):
    """MAP of the result table I (nq, k) against ground truth gt (nq, k'):
    each row of gt is the set of relevant ids of its query."""
    I, gt = _pair(I, gt)
    if I.shape[0] == 0:
        return 0.0
    return float(np.mean([average_precision(a, b) for a, b in zip(I, gt)]))


def range_ground_truth(xq, xb, threshold, metric=None):
    """Exact range search (lims, D, I) of xq in xb with vecdex's flat
    index: L2 distance < threshold, or inner product > threshold."""
    from .. import IndexFlat, METRIC_L2
    metric = METRIC_L2 if metric is None else metric
    xb = np.ascontiguousarray(xb, dtype="float32")
    index = IndexFlat(xb.shape[1], metric)
    index.add(xb)
    return index.range_search(np.ascontiguousarray(xq, dtype="float32"),
                              threshold)


def filter_range_results(lims, D, I, thresh):
    """Keeps the results with D < thresh: new (lims, D, I)."""
    lims, D, I = np.asarray(lims), np.asarray(D), np.asarray(I)
    mask = D < thresh
    csum = np.concatenate([[0], np.cumsum(mask)])
    return csum[lims].astype(lims.dtype), D[mask], I[mask]


def counts_to_PR(ngt, nres, ninter, mode="overall"):
    """Precision and recall from per-query counts of ground-truth results,
    returned results and correct results.  mode "overall" pools the counts;
    "average" averages the per-query ratios (an empty ground truth with an
    empty result counts as recall 1; an empty result as precision 1)."""
    ngt, nres, ninter = (np.asarray(a, dtype="int64").copy()
                         for a in (ngt, nres, ninter))
    if mode == "overall":
        g, r, i = ngt.sum(), nres.sum(), ninter.sum()
        precision = i / r if r > 0 else 1.0
        recall = i / g if g > 0 else (1.0 if r == 0 else 0.0)
        return precision, recall
    if mode == "average":
        recalls = np.where(ngt > 0, ninter / np.maximum(ngt, 1),
                           (nres == 0).astype(float))
        precisions = np.where(nres > 0, ninter / np.maximum(nres, 1), 1.0)
        return precisions.mean(), recalls.mean()
    raise ValueError(f"mode must be 'overall' or 'average', got {mode!r}")


def range_PR(lims_ref, Iref, lims_new, Inew, mode="overall"):
    """Precision and recall of range results (lims_new, Inew) against
    reference results (lims_ref, Iref); distances are not used."""
    lims_ref, lims_new = np.asarray(lims_ref), np.asarray(lims_new)
    nq = lims_ref.size - 1
    if lims_new.size - 1 != nq:
        raise ValueError(f"{nq} reference queries but {lims_new.size - 1} "
                         "result queries")
    ninter = np.array([
        np.intersect1d(Iref[lims_ref[q]:lims_ref[q + 1]],
                       Inew[lims_new[q]:lims_new[q + 1]]).size
        for q in range(nq)], dtype="int64")
    return counts_to_PR(np.diff(lims_ref), np.diff(lims_new), ninter, mode)
