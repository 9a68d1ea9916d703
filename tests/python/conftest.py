"""Shared fixtures for the vecdex Python tests.

Every result is checked against an independent reference: a float64 numpy
brute force (`bf`) and, where installed, FAISS itself (`faiss_ref`).
"""
import types

import numpy as np
import pytest

import vecdex

FLT_MAX = float(np.finfo(np.float32).max)


@pytest.fixture(autouse=True)
def _restore_threads():
    n = vecdex.omp_get_max_threads()
    yield
    vecdex.omp_set_num_threads(n)


@pytest.fixture
def faiss_ref():
    """FAISS itself, for the comparison tests only."""
    return pytest.importorskip("faiss")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _distances(xq, xb, metric):
    xq = np.asarray(xq, dtype=np.float64)
    xb = np.asarray(xb, dtype=np.float64)
    ip = xq @ xb.T
    if metric == vecdex.METRIC_L2:
        # float64 expansion: exact enough, and no (nq, nb, d) temporary
        d2 = (xq ** 2).sum(1)[:, None] + (xb ** 2).sum(1)[None, :] - 2 * ip
        return np.maximum(d2, 0)
    return ip


def _knn(xq, xb, k, metric, ids=None, mask=None):
    """Exact k-NN in float64: (D, I) with FAISS's conventions: ascending L2 /
    descending IP, ties by lower id, -1 and +-FLT_MAX where missing."""
    dist = _distances(xq, xb, metric)
    nb = dist.shape[1]
    ids = np.arange(nb) if ids is None else np.asarray(ids)
    if mask is None:
        mask = np.ones(nb, dtype=bool)
    fill = FLT_MAX if metric == vecdex.METRIC_L2 else -FLT_MAX
    D = np.full((len(xq), k), fill, dtype=np.float64)
    I = np.full((len(xq), k), -1, dtype=np.int64)
    cand = np.flatnonzero(mask)
    for i in range(len(xq)):
        d = dist[i, cand]
        key = d if metric == vecdex.METRIC_L2 else -d
        order = np.lexsort((ids[cand], key))[:k]
        D[i, : len(order)] = d[order]
        I[i, : len(order)] = ids[cand][order]
    return D, I


def _range(xq, xb, radius, metric, ids=None, mask=None):
    """Exact range search: list (per query) of {id: distance}."""
    dist = _distances(xq, xb, metric)
    nb = dist.shape[1]
    ids = np.arange(nb) if ids is None else np.asarray(ids)
    if mask is None:
        mask = np.ones(nb, dtype=bool)
    out = []
    for i in range(len(xq)):
        hit = (dist[i] < radius) if metric == vecdex.METRIC_L2 else (dist[i] > radius)
        hit &= mask
        out.append({int(ids[j]): dist[i, j] for j in np.flatnonzero(hit)})
    return out


def _range_to_dicts(lims, D, I):
    # lims are uint64 (size_t), in vecdex as in FAISS
    assert lims.dtype == np.uint64
    assert D.dtype == np.float32 and I.dtype == np.int64
    assert lims[0] == 0 and np.all(np.diff(lims) >= 0) and lims[-1] == len(D) == len(I)
    return [dict(zip(I[lims[i]:lims[i + 1]].tolist(), D[lims[i]:lims[i + 1]].tolist()))
            for i in range(len(lims) - 1)]


def _assert_range_equal(got, ref, radius, tol=1e-4):
    """Same hits with close distances, except for hits whose distance is
    within `tol` (relative) of the radius, which float32 may decide either
    way."""
    margin = tol * max(1.0, abs(radius))
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        for key in set(g) | set(r):
            if key in g and key in r:
                assert abs(g[key] - r[key]) <= tol * max(1.0, abs(r[key])), key
            else:
                d = g[key] if key in g else r[key]
                assert abs(d - radius) <= margin, f"id {key} (distance {d})"


def _assert_knn_equal(D, I, Dref, Iref, rtol=1e-4, atol=1e-4):
    """Distances close; labels equal except where the reference has a
    near-tie at that rank (float32 rounding may swap those)."""
    D = np.asarray(D, dtype=np.float64)
    assert D.shape == Dref.shape and I.shape == Iref.shape
    finite = np.abs(Dref) < FLT_MAX
    np.testing.assert_allclose(D[finite], Dref[finite], rtol=rtol, atol=atol)
    assert np.array_equal(I == -1, Iref == -1)
    bad = np.argwhere(I != Iref)
    for i, j in bad:
        row = Dref[i]
        near = np.abs(row - row[j]) <= atol + rtol * abs(row[j])
        assert near.sum() > 1, f"row {i} rank {j}: {I[i]} vs {Iref[i]}"


@pytest.fixture
def bf():
    """Independent brute-force references."""
    return types.SimpleNamespace(
        knn=_knn, range=_range, range_to_dicts=_range_to_dicts,
        assert_range_equal=_assert_range_equal,
        assert_knn_equal=_assert_knn_equal, FLT_MAX=FLT_MAX)
