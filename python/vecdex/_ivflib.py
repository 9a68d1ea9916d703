"""FAISS's ivflib helpers that run a search with explicit parameters and
report what it cost: search_with_parameters / range_search_with_parameters.

The statistics come from vecdex's process-wide IVF counters (the ones
faiss.cvar.indexIVF_stats reads), taken before and after the call, so the
user's running totals are left as they are.  Searches run by other threads
at the same moment are counted too (FAISS's per-call counters are not
shared); the figures are exact for a single-threaded caller.
"""
import time

import numpy as np

from . import _vecdex

__all__ = ["search_with_parameters", "range_search_with_parameters"]


def _params_of(index, params):
    if params:
        return params
    # as FAISS: the IVF index's own settings
    from . import extract_index_ivf
    ivf = extract_index_ivf(index)
    p = _vecdex.IVFSearchParameters()
    p.nprobe = ivf.nprobe
    p.max_codes = getattr(ivf, "max_codes", 0)
    return p


def _run(index, x, params, call):
    x = np.ascontiguousarray(x, dtype="float32")
    if x.ndim != 2 or x.shape[1] != index.d:
        raise ValueError("expected x of shape (n, %d), got %s"
                         % (index.d, x.shape))
    params = _params_of(index, params)
    before = _vecdex.ivf_stats()
    t0 = time.perf_counter()
    out = call(x, params)
    wall_ms = (time.perf_counter() - t0) * 1000
    after = _vecdex.ivf_stats()
    quant_ms = after[4] - before[4]
    scan_ms = after[5] - before[5]
    stats = {
        "ndis": np.uint64(after[2] - before[2]),
        # what the IVF stages did not take: the transforms (and the call)
        "pre_transform_ms": max(wall_ms - quant_ms - scan_ms, 0.0),
        "coarse_quantizer_ms": quant_ms,
        "invlist_scan_ms": scan_ms,
    }
    return out, stats


def search_with_parameters(index, x, k, params=None, output_stats=False):
    """index.search(x, k) with params (an IVFSearchParameters; by default
    the IVF index's nprobe / max_codes): (D, I), plus a dict of ndis and
    the time of each stage in ms when output_stats."""
    (D, I), stats = _run(index, x, params,
                         lambda x, p: index.search(x, k, params=p))
    return (D, I, stats) if output_stats else (D, I)


def range_search_with_parameters(index, x, radius, params=None,
                                 output_stats=False):
    """index.range_search(x, radius) with params: (lims, D, I), plus the
    statistics dict when output_stats."""
    (lims, D, I), stats = _run(
        index, x, params,
        lambda x, p: index.range_search(x, radius, params=p))
    return (lims, D, I, stats) if output_stats else (lims, D, I)
