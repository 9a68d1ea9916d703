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
           "counts_to_PR", "range_PR_multiple_thresholds",
           "sort_range_res_1", "sort_range_res_2", "check_ref_knn_with_draws",
           "check_ref_range_results", "OperatingPoints"]


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


def range_PR_multiple_thresholds(lims_ref, Iref, lims_new, Dnew, Inew,
                                 thresholds, mode="overall",
                                 do_sort="ref,new"):
    """(precisions, recalls), one per threshold: range_PR of the new
    results filtered to D < threshold.  do_sort is faiss's argument (which
    inputs it sorts first); the result here does not depend on the order,
    so it is accepted and only the membership counts are used."""
    thresholds = np.asarray(thresholds)
    P = np.zeros(len(thresholds))
    R = np.zeros(len(thresholds))
    for i, t in enumerate(thresholds):
        lims2, _, I2 = filter_range_results(lims_new, Dnew, Inew, t)
        P[i], R[i] = range_PR(lims_ref, Iref, lims2, I2, mode=mode)
    return P, R


def sort_range_res_1(lims, I):
    """A copy of I with each query's ids sorted."""
    I = np.array(I)
    for q in range(len(lims) - 1):
        I[lims[q]:lims[q + 1]].sort()
    return I


def sort_range_res_2(lims, D, I):
    """(I, D) -- in faiss's order: ids first -- with each query's results
    sorted by distance.  Ties are broken by id so that results equal up to
    order compare equal (faiss's argsort leaves ties in input order)."""
    D, I = np.array(D), np.array(I)
    for q in range(len(lims) - 1):
        a, b = lims[q], lims[q + 1]
        o = np.lexsort((I[a:b], D[a:b]))
        D[a:b], I[a:b] = D[a:b][o], I[a:b][o]
    return I, D


def _cluster_with_tolerance(tab1, tab2, thr):
    """Cluster ids of the values of two tables, values closer than thr
    (after sorting both together) falling in the same cluster."""
    tab = np.sort(np.hstack([tab1, tab2]))
    diffs = np.ones(len(tab))
    diffs[1:] = tab[1:] - tab[:-1]
    starts = tab[diffs > thr]
    return (np.searchsorted(starts, tab1, side="right") - 1,
            np.searchsorted(starts, tab2, side="right") - 1)


def check_ref_knn_with_draws(Dref, Iref, Dnew, Inew, rtol=1e-5, atol=0):
    """Asserts that k-NN results (Dnew, Inew) equal the reference up to the
    order of results at equal distance: distances close (rtol, atol), and
    per row the same ids within each group of equal reference distances
    (within rtol * max distance + atol), except the last group, which the
    cut at k may split differently."""
    Dref, Iref = np.asarray(Dref), np.asarray(Iref)
    Dnew, Inew = np.asarray(Dnew), np.asarray(Inew)
    np.testing.assert_allclose(Dref, Dnew, rtol=rtol, atol=atol)
    for i in range(Dref.shape[0]):
        if np.array_equal(Iref[i], Inew[i]):
            continue
        r = rtol * Dref[i].max() + atol
        cref, _ = _cluster_with_tolerance(Dref[i], Dnew[i], r)
        for c in np.unique(cref):
            if c == cref[-1]:
                continue
            mask = cref == c
            if set(Iref[i, mask].tolist()) != set(Inew[i, mask].tolist()):
                raise AssertionError(
                    f"row {i}: ids {sorted(Iref[i, mask].tolist())} "
                    f"expected at distance {Dref[i, mask][0]}, got "
                    f"{sorted(Inew[i, mask].tolist())}")


def check_ref_range_results(Lref, Dref, Iref, Lnew, Dnew, Inew):
    """Asserts that range results are the same up to the order within each
    query: equal lims, same ids, distances close."""
    Lref, Lnew = np.asarray(Lref), np.asarray(Lnew)
    np.testing.assert_array_equal(Lref, Lnew)
    for q in range(len(Lref) - 1):
        a, b = Lref[q], Lref[q + 1]
        o1 = np.argsort(Iref[a:b], kind="stable")
        o2 = np.argsort(Inew[a:b], kind="stable")
        np.testing.assert_array_equal(np.asarray(Iref[a:b])[o1],
                                      np.asarray(Inew[a:b])[o2])
        np.testing.assert_allclose(np.asarray(Dref[a:b])[o1],
                                   np.asarray(Dnew[a:b])[o2], rtol=1e-5,
                                   atol=1e-5)


class OperatingPoints:
    """The Pareto front of (performance, time) points, higher performance
    and lower time being better: operating_points holds (key, perf, t)
    sorted by time, none dominated by another."""

    def __init__(self):
        self.operating_points = []
        self.suboptimal_points = []

    def is_pareto_optimal(self, perf_new, t_new):
        return not any(p >= perf_new and t <= t_new
                       for _, p, t in self.operating_points)

    def predict_bounds(self, key):
        """Bounds (perf_max, t_min) nothing else can tell: no prediction."""
        return np.inf, 0.0

    def should_run_experiment(self, key):
        return True

    def add_operating_point(self, key, perf, t):
        if not self.is_pareto_optimal(perf, t):
            self.suboptimal_points.append((key, perf, t))
            return False
        keep = []
        for op in self.operating_points:
            if perf >= op[1] and t <= op[2]:
                self.suboptimal_points.append(op)
            else:
                keep.append(op)
        keep.append((key, perf, t))
        keep.sort(key=lambda op: op[2])
        self.operating_points = keep
        return True
