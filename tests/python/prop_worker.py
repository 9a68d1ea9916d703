"""The child side of the property suite (tests/python/test_properties.py).

A *case* is a small JSON object (an index kind, a dimension, seeds, data
magnitudes, array layouts, ids, k and search parameters, which operations
to run).  `run_case` rebuilds the data from the seeds, drives the vecdex
Python API through train / add / remove / search / range search /
serialize, and checks every answer against a float64 numpy brute force
over the vectors the index holds, or checks that the call raised a clear
exception (a ValueError, RuntimeError, TypeError, MemoryError or
OverflowError whose message says more than a status name).

The parent runs this file as a worker process (`--serve`: one case per
line on stdin, one JSON answer per line on stdout), so that a segfault or
an abort kills only the worker and the parent can report the signal with
the case that caused it.  Any case reproduces alone with

    python tests/python/prop_worker.py --replay '<case JSON>'

which runs it in-process and prints the failure (or dies of the crash).
"""
import json
import math
import os
import sys
import tempfile
import traceback

import numpy as np

import vecdex

FLT_MAX = float(np.finfo(np.float32).max)

# ---------------------------------------------------------------------------
# KNOWN_OPEN: bugs that other engineers are fixing now.  Each name switches
# off exactly the inputs that hit one bug, so that CI stays green until the
# fix merges; remove a name (and the code under it goes live again) once its
# fix is on main.  The generator keeps producing these inputs either way.
# ---------------------------------------------------------------------------
KNOWN_OPEN = {
    # k-means crashes or hangs on huge values (1e20 sentinel columns, 1e19
    # data): src/cluster/kmeans.c.  Skips training a k-means kind (IVF, PQ,
    # OPQ, Residual, HNSW-PQ, fast scan) on "huge" / "sentinel" data.
    "kmeans_huge_values",
    # IVF search drops vectors added with negative ids (add_with_ids on an
    # IVF index directly).  Skips the result checks of such cases.
    "ivf_negative_ids",
    # omp_set_num_threads(100000) crashes.  Skips thread counts > 4096.
    "omp_huge_thread_count",
    # Search returns -1 (empty slots) where distances overflow to Inf
    # (1e19..3e38 data, fp16 codes of data beyond 65504, ...): PQ / SQ /
    # HNSW-SQ with 1e38 data (the suite sees it for every kind: the heaps
    # drop Inf keys).  Relaxes "min(k, ntotal) results" to the results
    # whose reference distance is finite in float32.
    "inf_distances_dropped",
    # HNSW after heavy remove_ids (graph repair).  Skips removing more
    # than a quarter of an HNSW index's vectors.
    "hnsw_heavy_remove",
    # Retraining a populated fast-scan index.  Skips the "train again after
    # add" step for the fast-scan kinds.
    "fastscan_retrain_populated",
    # An IDMap written with repeated ids does not read back.  Skips the
    # serialize round trip of IDMap / IDMap2 cases with duplicate ids.
    "idmap_repeated_ids_file",
}


class CaseFailure(AssertionError):
    """A property did not hold; the message says which."""


def fail(msg):
    raise CaseFailure(msg)


# ---------------------------------------------------------------------------
# The index kinds: factory templates over every kind the factory builds.
# Placeholders: {nl} nlist, {m} PQ sub-quantizers (divides d), {nb} PQ bits,
# {M} HNSW links, {d} the dimension, {d2} a smaller dimension (divides by m
# where a PQ follows).
# ---------------------------------------------------------------------------
KINDS = {
    "Flat": "Flat",
    "IDMap,Flat": "IDMap,Flat",
    "IDMap2,Flat": "IDMap2,Flat",
    "IVF,Flat": "IVF{nl},Flat",
    "IDMap,IVF,Flat": "IDMap,IVF{nl},Flat",
    "IDMap2,IVF,Flat": "IDMap2,IVF{nl},Flat",
    "IVF_HNSW,Flat": "IVF{nl}_HNSW{M},Flat",
    "PQ": "PQ{m}x{nb}",
    "IVF,PQ": "IVF{nl},PQ{m}x{nb}",
    "SQ8": "SQ8", "SQ4": "SQ4", "SQ6": "SQ6", "SQfp16": "SQfp16",
    "SQbf16": "SQbf16",
    "IVF,SQ8": "IVF{nl},SQ8",
    "IVF,SQfp16": "IVF{nl},SQfp16",
    "LSH": "LSH", "LSHrt": "LSH{nbits}rt", "LSHt": "LSHt",
    "RR,LSH": "RR{d},LSH",
    "PQfs": "PQ{m}x4fs", "PQfs_64": "PQ{m}x4fs_64",
    "IVF,PQfs": "IVF{nl},PQ{m}x4fs", "IVF,PQfsr": "IVF{nl},PQ{m}x4fsr",
    "HNSW": "HNSW{M}", "HNSW,SQ8": "HNSW{M},SQ8", "HNSW,PQ": "HNSW{M},PQ{m}x4",
    "IDMap,HNSW": "IDMap,HNSW{M}",
    "HNSW2Level": "HNSW{M}_{nl}+PQ{m}",
    "Residual": "Residual{nl},PQ{m}x4",
    "IVF,PQ,RFlat": "IVF{nl},PQ{m}x4,RFlat",
    "PQfs,RFlat": "PQ{m}x4fs,RFlat",
    "PQ,Refine(SQfp16)": "PQ{m}x4,Refine(SQfp16)",
    "SQ8,RFlat": "SQ8,RFlat",
    "PCA,Flat": "PCA{d2},Flat", "PCAW,IVF,Flat": "PCAW{d2},IVF{nl},Flat",
    "PCAR,Flat": "PCAR{d2},Flat",
    "OPQ,PQ": "OPQ{m}_{d},PQ{m}x4",
    "RR,Flat": "RR{d},Flat", "L2norm,Flat": "L2norm,Flat",
    "L2norm,IVF,SQ8": "L2norm,IVF{nl},SQ8",
    "IDMap,PCA,Flat": "IDMap,PCA{d2},Flat",
    "PCA,IDMap2,Flat": "PCA{d2},IDMap2,Flat",
}

# kinds that FAISS (and vecdex) build for the L2 metric only
L2_ONLY = {"LSH", "LSHrt", "LSHt", "RR,LSH", "HNSW2Level", "Residual"}


def kmeans_kind(kind):
    return any(t in kind for t in ("IVF", "PQ", "OPQ", "Residual", "2Level"))


def min_train(kind, p):
    """Training points below which a clear 'too few points' error is fine."""
    tpl = KINDS[kind]
    need = 1
    if "IVF" in tpl or "Residual" in tpl or "+PQ" in tpl:
        need = max(need, p["nl"])
    if "x{nb}" in tpl:
        need = max(need, 2 ** p["nb"])
    elif "x4" in tpl:
        need = max(need, 16)
    elif "+PQ" in tpl:          # 8-bit codes
        need = max(need, 256)
    if "OPQ" in tpl:            # trains 8-bit PQs inside
        need = max(need, 256)
    return need


def describe(case):
    p = case["p"]
    return KINDS[case["kind"]].format(**p)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def make_values(rng, n, d, mag):
    """float64 (n, d) values of one magnitude profile."""
    g = rng.standard_normal((n, d))
    if mag == "unit":
        return g
    if mag == "ints":          # many exact ties
        return rng.integers(-2, 3, (n, d)).astype(np.float64)
    if mag == "dup":           # few distinct rows
        rows = rng.standard_normal((max(1, min(3, n)), d))
        return rows[rng.integers(0, len(rows), n)] if n else g
    if mag == "zeros":
        return np.zeros((n, d))
    if mag == "tiny":          # squares underflow float32
        return g * 1e-30
    if mag == "big":
        return g * 10.0 ** rng.uniform(3, 15)
    if mag == "huge":          # 1e19 .. 3e38: distances overflow float32
        return np.clip(g * 10.0 ** rng.uniform(19, 38.5), -3e38, 3e38)
    if mag == "sentinel":      # one column of 1e20 (a "missing" marker)
        g[:, rng.integers(0, d)] = 1e20
        return g
    raise ValueError(mag)


def present(x64, layout, rng):
    """The array handed to vecdex (in `layout`) and the float32 values
    vecdex must see (numpy's cast of it, which is what FAISS sees)."""
    if layout == "c32":
        a = np.ascontiguousarray(x64, dtype=np.float32)
    elif layout == "f64":
        a = np.ascontiguousarray(x64)
    elif layout == "fortran":
        a = np.asfortranarray(x64, dtype=np.float32)
    elif layout == "strided":            # every other row and column
        n, d = x64.shape
        big = np.zeros((2 * n, 2 * d), np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            big[::2, ::2] = x64
        a = big[::2, ::2]
    elif layout == "reversed":           # negative strides
        a = np.ascontiguousarray(x64[::-1, ::-1], np.float32)[::-1, ::-1]
    elif layout in ("int32", "int64"):
        info = np.iinfo(layout)
        a = np.clip(np.round(x64), info.min, info.max).astype(layout)
    elif layout == "list":
        a = x64.astype(np.float32).tolist()
    elif layout == "1d":
        a = np.ascontiguousarray(x64, np.float32).reshape(-1)
    elif layout == "3d":
        a = np.ascontiguousarray(x64, np.float32)[None]
    else:
        raise ValueError(layout)
    with np.errstate(over="ignore", invalid="ignore"):
        seen = np.asarray(a, dtype=np.float32)
    return a, seen


# ---------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------
CLEAR = (ValueError, RuntimeError, TypeError, MemoryError, OverflowError)


def check_clear(exc, what, needles=()):
    """exc must be a clear exception; with needles, its message must
    contain one of them (case-insensitive)."""
    if not isinstance(exc, CLEAR):
        fail(f"{what}: unexpected exception type {type(exc).__name__}: {exc}")
    msg = str(exc)
    body = msg.split("[VDX_")[0].strip()
    if len(body) < 8:
        fail(f"{what}: unclear message {msg!r} ({type(exc).__name__})")
    if "%" in body and any(f"%{c}" in body for c in "gfdsz"):
        fail(f"{what}: unformatted message {msg!r}")
    if needles and not any(n.lower() in msg.lower() for n in needles):
        fail(f"{what}: message {msg!r} names none of {needles}")


def call(what, fn, expect_error=None, needles=(), allow_error=False):
    """Runs fn().  expect_error: it must raise a clear exception (naming
    one of needles).  allow_error: a clear exception is acceptable.
    Returns (result, exception)."""
    try:
        r = fn()
    except CaseFailure:
        raise
    except Exception as e:  # noqa: BLE001 - the point is to classify it
        check_clear(e, what, needles if expect_error else ())
        if not expect_error and not allow_error:
            fail(f"{what}: unexpected {type(e).__name__}: {e}")
        return None, e
    if expect_error:
        fail(f"{what}: expected an error ({expect_error}), got success")
    return r, None


# ---------------------------------------------------------------------------
# The reference: what each stored vector looks like to the index
# ---------------------------------------------------------------------------
def unwrap(ix):
    """(query map, innermost index that scores vectors, its stored vectors
    or codes, distance kind, is the storage lossless)."""
    qmaps = []
    while True:
        t = type(ix).__name__
        if t in ("IndexIDMap", "IndexIDMap2"):
            ix = ix.index
        elif t == "IndexPreTransform":
            qmaps.append(ix.apply_chain)
            ix = ix.index
        elif t in ("IndexRefineFlat", "IndexRefine"):
            ix = ix.refine_index
        else:
            break

    def qmap(q):
        for f in qmaps:
            q = f(np.ascontiguousarray(q, np.float32))
        return np.asarray(q, np.float32)
    return qmap, ix, bool(qmaps)


def reference_store(top, raw):
    """What the scoring index holds, one row per stored vector in add
    order: ('vec', float32 array) or ('ham', uint8 codes)."""
    qmap, ix, transformed = unwrap(top)
    t = type(ix).__name__
    n = top.ntotal
    if t == "IndexLSH":
        # codes of the stored vectors, through the library's own encoder
        # (scoring is what is checked here: hamming in numpy)
        return qmap, ("ham", ix, ix.sa_encode(qmap(raw)) if n else
                      np.zeros((0, ix.code_size), np.uint8))
    lossless = t in ("IndexFlat", "IndexFlatL2", "IndexFlatIP",
                     "IndexIVFFlat", "IndexHNSWFlat")
    if lossless and not transformed:
        return qmap, ("vec", ix, raw)
    if n == 0:
        return qmap, ("vec", ix, np.zeros((0, ix.d), np.float32))
    return qmap, ("vec", ix, ix.reconstruct_n(0, n))


def keys_of(store, metric, q):
    """(nq, n) float64 matrix of the distances the index should report."""
    kind, ix, data = store
    if kind == "ham":
        qc = ix.sa_encode(q)
        bits = np.unpackbits(qc[:, None, :] ^ data[None, :, :], axis=2)
        return bits.sum(axis=2).astype(np.float64)
    x = np.asarray(data, np.float64)
    q = np.asarray(q, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if metric == vecdex.METRIC_L2:
            return ((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
        return q @ x.T


def tolerance(store, metric, q, kind_lossy, train_scale=0.0):
    """Absolute tolerance per (query, vector) for comparing distances.
    train_scale: the largest training magnitude; lossy kinds compute with
    centroids of that size (residual codes), whose float32 rounding the
    reconstruction does not show."""
    kind, _, data = store
    if kind == "ham":
        return np.zeros((len(q), len(data)))
    x = np.asarray(data, np.float64)
    q = np.asarray(q, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        qn = (q ** 2).sum(1)[:, None]
        xn = (x ** 2).sum(1)[None, :]
    rel = 2e-3 if kind_lossy else 2e-4
    extra = 0.0
    if kind_lossy and train_scale > 0:
        extra = 1e-6 * train_scale * (np.sqrt(qn) + np.sqrt(xn) + train_scale)
    if metric == vecdex.METRIC_L2:
        return rel * (qn + xn) + 1e-5 + extra
    return rel * np.sqrt(qn * xn) + 1e-5 + extra


def f32_key(k):
    """A float64 distance as float32 would hold it (overflow -> +-inf)."""
    with np.errstate(over="ignore"):
        return np.float32(k).astype(np.float64)


# ---------------------------------------------------------------------------
# Search-result checks
# ---------------------------------------------------------------------------
def check_knn(case, D, I, nq, k, keys, tol, ids, alive, exhaustive, metric,
              is_lsh, id_may_be_minus1, where, overflow=False):
    """keys (nq, n): reference distances; ids (n,): the label of each
    stored vector; alive (n,) bool: still in the index and selected;
    exhaustive: what is_exhaustive says; overflow: the data's squares
    overflow float32 (1e19.. values, 1e20 sentinels)."""
    if D.shape != (nq, k) or I.shape != (nq, k):
        fail(f"{where}: shapes {D.shape} {I.shape}, expected ({nq}, {k})")
    if D.dtype != np.float32 or I.dtype != np.int64:
        fail(f"{where}: dtypes {D.dtype} {I.dtype}")
    ip = metric == vecdex.METRIC_INNER_PRODUCT and not is_lsh
    empty_d = float(np.float32(2147483647)) if is_lsh else (-FLT_MAX if ip else FLT_MAX)
    idset = {}
    for j, (v, a) in enumerate(zip(ids.tolist(), alive.tolist())):
        if a:
            idset.setdefault(v, []).append(j)
    ncand = int(alive.sum())
    relax_inf = "inf_distances_dropped" in KNOWN_OPEN
    for i in range(nq):
        row_i, row_d = I[i], D[i].astype(np.float64)
        got = [(lab, dd) for lab, dd in zip(row_i.tolist(), row_d.tolist())]
        # -1 only after the results (unless -1 is a user id)
        if not id_may_be_minus1:
            first_empty = next((j for j, (l, _) in enumerate(got) if l == -1),
                               k)
            if any(l != -1 for l, _ in got[first_empty:]):
                fail(f"{where}: query {i}: a result after an empty slot: "
                     f"{row_i.tolist()}")
            for l, dd in got[first_empty:]:
                if dd != empty_d:
                    fail(f"{where}: query {i}: empty slot distance {dd}, "
                         f"expected {empty_d}")
            got = got[:first_empty]
        # sorted
        ds = [dd for _, dd in got]
        for a, b in zip(ds, ds[1:]):
            if (b > a) if ip else (b < a):
                fail(f"{where}: query {i}: distances not sorted: {ds}")
        if any(math.isnan(dd) for dd in ds):
            fail(f"{where}: query {i}: NaN distance: {ds}")
        # labels are stored ids; each distance is that vector's
        used = {}
        for l, dd in got:
            if l not in idset:
                if l == -1 and id_may_be_minus1:
                    continue
                fail(f"{where}: query {i}: label {l} is not an id in the "
                     f"index (or not selected); row {row_i.tolist()}")
            used[l] = used.get(l, 0) + 1
            if used[l] > len(idset[l]):
                fail(f"{where}: query {i}: label {l} returned "
                     f"{used[l]} times; row {row_i.tolist()}")
            ok = False
            for j in idset[l]:
                ref = f32_key(keys[i, j])
                if math.isinf(ref) or math.isinf(dd):
                    ok = ok or (math.isinf(dd) and dd == ref) or \
                        (abs(dd) >= FLT_MAX and abs(ref) >= FLT_MAX and
                         np.sign(dd) == np.sign(ref)) or \
                        (abs(ref) > FLT_MAX * 0.99 and abs(dd) >= FLT_MAX)
                else:
                    ok = ok or abs(dd - keys[i, j]) <= tol[i, j]
            if not ok:
                refs = [keys[i, j] for j in idset[l]]
                fail(f"{where}: query {i}: label {l} distance {dd}, "
                     f"reference {refs} (tolerance {tol[i, idset[l][0]]:.3g})")
        if not exhaustive:
            continue
        # exhaustive: the k best of the reference, ties in any order
        cand = np.flatnonzero(alive)
        ck = np.array([f32_key(keys[i, j]) for j in cand])
        order = np.sort(-ck if ip else ck)
        best = -order if ip else order
        nexp = min(k, ncand)
        if relax_inf:
            # KNOWN_OPEN inf_distances_dropped: infinite keys may be dropped
            nfin = int(np.sum(np.abs(best[:nexp]) < np.inf))
            if overflow or (len(got) < nexp and len(got) >= nfin):
                nexp = min(nexp, len(got))
        if exhaustive == "half":
            if 2 * len(got) < nexp:
                fail(f"{where}: query {i}: {len(got)} results of {nexp} "
                     f"expected ({ncand} candidates, k={k}): most of the "
                     f"graph is unreachable")
            continue
        if len(got) != nexp:
            fail(f"{where}: query {i}: {len(got)} results, expected "
                 f"{nexp} (of {ncand} candidates, k={k})")
        if exhaustive != "exact":
            continue
        for r, (l, dd) in enumerate(got):
            want = best[r]
            tol_r = tol[i, cand].max() if len(cand) else 0
            if math.isinf(want) or abs(want) >= FLT_MAX:
                continue
            # the r-th result must be as good as the r-th best
            worse = (dd < want - tol_r) if ip else (dd > want + tol_r)
            if worse:
                fail(f"{where}: query {i} rank {r}: label {l} at {dd}, but "
                     f"the rank-{r} reference distance is {want} "
                     f"(tolerance {tol_r:.3g}); row {row_i.tolist()}")


def check_range(lims, Dr, Ir, nq, radius, keys, tol, ids, alive, metric,
                where):
    if lims.shape != (nq + 1,) or lims[0] != 0 or \
            np.any(np.diff(lims.astype(np.int64)) < 0) or \
            lims[-1] != len(Dr) or len(Dr) != len(Ir):
        fail(f"{where}: inconsistent lims {lims.tolist()[:8]}")
    ip = metric == vecdex.METRIC_INNER_PRODUCT
    for i in range(nq):
        gi = Ir[lims[i]:lims[i + 1]].tolist()
        gd = Dr[lims[i]:lims[i + 1]].tolist()
        got = {}
        for l, dd in zip(gi, gd):
            got.setdefault(l, []).append(dd)
        relax_inf = "inf_distances_dropped" in KNOWN_OPEN
        for j in np.flatnonzero(alive):
            kj, tj = keys[i, j], tol[i, j]
            if relax_inf and math.isinf(f32_key(kj)):
                continue   # KNOWN_OPEN inf_distances_dropped
            hit = kj > radius if ip else kj < radius
            near = abs(kj - radius) <= tj
            l = int(ids[j])
            if hit and not near and l not in got:
                fail(f"{where}: query {i}: id {l} at {kj} within radius "
                     f"{radius} is missing")
        allowed = set(ids[alive].tolist())
        for l, dds in got.items():
            if l not in allowed:
                fail(f"{where}: query {i}: range result {l} is not in the "
                     f"index")
            js = [j for j in np.flatnonzero(alive) if ids[j] == l]
            for dd in dds:
                if not any(abs(dd - keys[i, j]) <= tol[i, j] or
                           (math.isinf(dd) and dd == f32_key(keys[i, j]))
                           for j in js):
                    fail(f"{where}: query {i}: range hit {l} at {dd}, "
                         f"reference {[keys[i, j] for j in js]}")
                if not any((keys[i, j] > radius - tol[i, j]) if ip else
                           (keys[i, j] < radius + tol[i, j]) for j in js):
                    fail(f"{where}: query {i}: range hit {l} at {dd} is "
                         f"outside radius {radius}")


# ---------------------------------------------------------------------------
# Search parameters, following the index tree
# ---------------------------------------------------------------------------
def make_params(ix, case, sel):
    """SearchParameters for ix (or None), and the effective settings
    (nprobe, efSearch, k_factor) the oracle needs.  The selector goes to
    the innermost parameters object: wrappers hand their sub-index the
    nested object (index_params, base_index_params) instead of their own,
    as FAISS does."""
    s = case["search"]
    t = type(ix).__name__
    eff = {}
    if t in ("IndexIDMap", "IndexIDMap2"):
        # parameters pass through; the wrapper translates the selector of
        # the object it is given (over user ids), not of nested ones
        sub, e2 = make_params(ix.index, case, None)
        eff.update(e2)
        if sel is None:
            return sub, eff
        if sub is None:
            return vecdex.SearchParameters(sel=sel), eff
        if type(sub).__name__ in ("SearchParametersPreTransform",
                                  "IndexRefineSearchParameters"):
            # a wrapper under the IDMap hands its sub-index the nested
            # object, without the selector (as FAISS): not expressible
            eff["sel_dropped"] = True
            return sub, eff
        sub.sel = sel
        return sub, eff
    if t == "IndexPreTransform":
        sub, e2 = make_params(ix.index, case, sel)
        eff.update(e2)
        if sub is None:
            return None, eff
        return vecdex.SearchParametersPreTransform(index_params=sub), eff
    if t in ("IndexRefine", "IndexRefineFlat"):
        sub, e2 = make_params(ix.base_index, case, sel)
        eff.update(e2)
        kf = s.get("k_factor")
        eff["k_factor"] = ix.k_factor if kf is None else kf
        if kf is None and sub is None:
            return None, eff
        kw = {"base_index_params": sub}
        if kf is not None:
            kw["k_factor"] = kf
        return vecdex.IndexRefineSearchParameters(**kw), eff
    if hasattr(ix, "nlist"):
        npb = s.get("nprobe")
        eff["nprobe"] = ix.nprobe if not npb else npb
        eff["nlist"] = ix.nlist
        if npb is None and sel is None:
            return None, eff
        return vecdex.SearchParametersIVF(sel=sel, nprobe=npb or 0), eff
    if hasattr(ix, "hnsw"):
        ef = s.get("efSearch")
        eff["efSearch"] = ix.hnsw.efSearch if not ef else ef
        if ef is None and sel is None:
            return None, eff
        return vecdex.SearchParametersHNSW(sel=sel, efSearch=ef or 0), eff
    if sel is None:
        return None, eff
    return vecdex.SearchParameters(sel=sel), eff


def is_exhaustive(ix, eff, k, ncand, distinct):
    """What the search promises over the candidates: "exact" (the k best),
    "count" (min(k, candidates) results: fast scan picks its candidates
    with 8-bit tables, so the order is approximate), "half" (HNSW with a
    beam as wide as the index: at least half of them; small graphs lose a
    few nodes, in FAISS too) or None (nprobe < nlist ...).  distinct: the
    stored vectors are pairwise different (among exact duplicates the
    re-pruned back links keep the lowest ids, so later copies become
    unreachable)."""
    t = type(ix).__name__
    if t in ("IndexIDMap", "IndexIDMap2", "IndexPreTransform"):
        return is_exhaustive(ix.index, eff, k, ncand, distinct)
    if t in ("IndexRefine", "IndexRefineFlat"):
        base = is_exhaustive(ix.base_index, eff, k, ncand, distinct)
        if base is None:
            return None
        if k * eff["k_factor"] >= ncand:
            # the base hands over all (or, from fast scan and HNSW, most)
            # candidates, re-ranked exactly
            return "exact" if base == "exact" else base
        return None
    fast = hasattr(ix, "bbs")
    if hasattr(ix, "nlist"):
        if eff["nprobe"] < eff["nlist"]:
            return None
        return "count" if fast else "exact"
    if hasattr(ix, "hnsw"):
        return ("half" if eff["efSearch"] >= ix.ntotal and
                k <= eff["efSearch"] and distinct and ix.hnsw.M >= 4
                else None)
    return "count" if fast else "exact"


def find(ix, pred):
    """The first index in the tree (ix, its sub-indexes) satisfying pred."""
    seen = 0
    while ix is not None and seen < 8:
        if pred(ix):
            return ix
        nxt = None
        for a in ("index", "base_index"):
            nxt = getattr(ix, a, None) if nxt is None else nxt
        ix, seen = nxt, seen + 1
    return None


# ---------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------
def run_case(case):
    """Runs one case; raises CaseFailure when a property fails.  Returns
    a short note (what was skipped or what error was expected)."""
    notes = []
    kind = case["kind"]
    p = case["p"]
    d = p["d"]
    metric = case["metric"]
    rng = np.random.default_rng(case["seed"])
    mag = case["mag"]
    threads = case.get("threads")
    if threads is not None:
        if threads > 4096 and "omp_huge_thread_count" in KNOWN_OPEN:
            return "skipped: KNOWN_OPEN omp_huge_thread_count"
        call("omp_set_num_threads", lambda: vecdex.omp_set_num_threads(threads),
             allow_error=True)
    if (mag in ("huge", "sentinel") and kmeans_kind(kind) and
            "kmeans_huge_values" in KNOWN_OPEN):
        return "skipped: KNOWN_OPEN kmeans_huge_values"

    desc = describe(case)
    ix, err = call(f"index_factory({d}, {desc!r}, {metric})",
                   lambda: vecdex.index_factory(d, desc, metric),
                   expect_error=(kind in L2_ONLY and metric != vecdex.METRIC_L2)
                   and "L2 only", needles=("L2",))
    if err is not None:
        return "factory refused as expected"

    # --- train -------------------------------------------------------------
    bad = case.get("bad")
    lay = case["layout"]
    target = case["layout_at"]

    def data(n, where, bad_here):
        x64 = make_values(rng, n, d, mag)
        if bad_here and n:
            r, c = rng.integers(0, n), rng.integers(0, d)
            x64[r, c] = {"nan": np.nan, "inf": np.inf, "ninf": -np.inf,
                         "f64_overflow": 1e39}[bad]
        layout = lay if target == where else "c32"
        a, seen = present(x64, layout, rng)
        # an empty list has no second dimension
        shape_bad = layout in ("1d", "3d") or (layout == "list" and n == 0)
        return a, seen, shape_bad

    ntrain = case["ntrain"]
    xt, xt32, tshape = data(ntrain, "train", case.get("bad_at") == "train")
    bad_train = not np.all(np.isfinite(xt32)) and ntrain > 0
    few = ntrain < min_train(kind, p)
    _, err = call("train", lambda: ix.train(xt),
                  expect_error=("shape" if tshape else
                                "non-finite" if bad_train else None),
                  needles=("shape",) if tshape else ("finite", "nan", "inf"),
                  allow_error=few)
    if err is not None:
        if not (tshape or bad_train):
            notes.append(f"train refused ({ntrain} points): {err}")
        if not ix.is_trained:
            # adding to an untrained index must be refused clearly
            xb, _, _ = data(max(1, case["nadd"][0]), "none", False)
            call("add before training", lambda: ix.add(xb),
                 expect_error="not trained", needles=("train",))
            return "; ".join(notes) or "train refused as expected"

    # --- add (one or two batches, with or without ids) ----------------------
    ids_mode = case.get("ids")
    has_idmap = kind.startswith("IDMap") or ",IDMap" in kind
    takes_ids = has_idmap or kind in ("IVF,Flat", "IVF_HNSW,Flat")
    # kinds numbered by position renumber after remove_ids (as FAISS);
    # IVF lists and IDMap keep their ids
    shifting = not (has_idmap or "IVF" in kind)
    raw_rows, id_rows = [], []
    next_seq = 0
    for b, nb in enumerate(case["nadd"]):
        where = f"add{b}"
        xb, xb32, bshape = data(nb, where, case.get("bad_at") == where)
        bad_add = not np.all(np.isfinite(xb32)) and nb > 0
        if ids_mode is None:
            ids = None
        else:
            ids = make_ids(rng, nb, ids_mode, next_seq)
        before = ix.ntotal
        if ids is None:
            # an IDMap takes ids only (as FAISS)
            _, err = call(where, lambda: ix.add(xb),
                          expect_error=("shape" if bshape else
                                        "non-finite" if bad_add else
                                        "ids needed" if has_idmap else None),
                          needles=("shape",) if bshape else
                          ("finite", "nan", "inf") if bad_add else ("ids",))
        else:
            _, err = call(f"{where} with ids", lambda: ix.add_with_ids(xb, ids),
                          expect_error=("shape" if bshape else
                                        "non-finite" if bad_add else
                                        None if takes_ids or nb == 0
                                        else "no ids"),
                          needles=("shape",) if bshape else
                          ("finite", "nan", "inf") if bad_add else
                          ("ids", "IDMap", "support"))
        if err is not None:
            if ix.ntotal != before:
                fail(f"{where}: failed ({err}) but ntotal went {before} -> "
                     f"{ix.ntotal}")
            continue
        if ix.ntotal != before + nb:
            fail(f"{where}: ntotal {before} -> {ix.ntotal} after adding {nb}")
        raw_rows.append(xb32)
        id_rows.append(np.arange(next_seq, next_seq + nb) if ids is None
                       else np.asarray(ids, np.int64))
        next_seq += nb
    raw = (np.concatenate(raw_rows) if raw_rows
           else np.zeros((0, d), np.float32))
    ids_all = (np.concatenate(id_rows).astype(np.int64) if id_rows
               else np.zeros(0, np.int64))
    n = len(raw)
    if ix.ntotal != n:
        fail(f"ntotal {ix.ntotal}, expected {n}")

    # what each stored vector looks like to the index (before any removal:
    # codes do not change when others are removed)
    qmap, store = reference_store(ix, raw)
    lossy = store[0] == "vec" and store[2] is not raw
    t_in = type(store[1]).__name__
    # lossless kinds must reconstruct exactly what was added
    if n and kind in ("Flat", "HNSW", "IVF,Flat") and ids_mode is None:
        if not np.array_equal(ix.reconstruct_n(0, n), raw):
            fail("reconstruct_n of a lossless index differs from the "
                 "vectors added")

    # --- remove -------------------------------------------------------------
    alive = np.ones(n, bool)
    rm = case.get("remove")
    if rm and n:
        frac = rm["frac"]
        if ("HNSW" in kind and frac > 0.25 and
                "hnsw_heavy_remove" in KNOWN_OPEN):
            notes.append("remove skipped: KNOWN_OPEN hnsw_heavy_remove")
        else:
            nrm = int(round(frac * n))
            pick = rng.choice(n, nrm, replace=False) if nrm else []
            sel_ids = np.unique(ids_all[pick]) if nrm else \
                np.zeros(0, np.int64)
            # some kinds cannot remove (IndexRefine over IVF, ...): a
            # clear error is fine
            removed, err = call("remove_ids",
                                lambda: ix.remove_ids(sel_ids.copy()),
                                allow_error=True)
            if err is not None:
                notes.append(f"remove_ids refused: {err}")
            if err is None:
                gone = np.isin(ids_all, sel_ids)
                if removed != int(gone.sum()):
                    fail(f"remove_ids removed {removed}, expected "
                         f"{int(gone.sum())}")
                alive &= ~gone
                if ix.ntotal != int(alive.sum()):
                    fail(f"ntotal {ix.ntotal} after remove_ids, expected "
                         f"{int(alive.sum())}")
                if shifting:  # later ids shift down, as in FAISS
                    ids_all = np.where(alive, np.cumsum(alive) - 1, -2)

    # --- train again on a populated index -------------------------------------
    if case.get("retrain") and n:
        if "fs" in KINDS[kind] and "fastscan_retrain_populated" in KNOWN_OPEN:
            notes.append("retrain skipped: KNOWN_OPEN "
                         "fastscan_retrain_populated")
        else:
            call("train again after add", lambda: ix.train(xt32),
                 allow_error=True)
            if ix.ntotal != int(alive.sum()):
                fail(f"train after add changed ntotal to {ix.ntotal}")
            # the stored codes may now be read with new parameters (the
            # generator never combines retrain with remove)
            qmap, store = reference_store(ix, raw)

    # --- search ---------------------------------------------------------------
    s = case["search"]
    nq = case["nq"]
    qmag = s.get("qmag", mag)
    q64 = make_values(rng, nq, d, qmag)
    if n and nq and s.get("q_from_db"):
        q64[: nq // 2] = raw[rng.integers(0, n, nq // 2)]
    if case.get("bad_at") == "query" and nq:
        q64[rng.integers(0, nq), rng.integers(0, d)] = \
            {"nan": np.nan, "inf": np.inf, "ninf": -np.inf,
             "f64_overflow": 1e39}[bad]
    qa, q32 = present(q64, lay if target == "query" else "c32", rng)
    qshape = target == "query" and (lay in ("1d", "3d") or
                                    (lay == "list" and nq == 0))
    bad_q = not np.all(np.isfinite(q32)) and nq > 0
    k = s["k"]
    sel = None
    selmask = np.ones(n, bool)
    if s.get("sel") and n:
        lo, hi = s["sel"]
        srange = np.sort(ids_all[alive]) if alive.any() else np.zeros(1)
        a = int(srange[int(lo * (len(srange) - 1))])
        b = int(srange[int(hi * (len(srange) - 1))]) + 1
        sel = vecdex.IDSelectorRange(a, b)
        selmask = (ids_all >= a) & (ids_all < b)
    params, perr = call("search parameters",
                        lambda: make_params(ix, case, sel),
                        allow_error=True)
    if perr is not None:
        check_clear(perr, "search parameters", ("must", "nprobe", "efSearch",
                                                "k_factor"))
        return "; ".join(notes + [f"parameters refused: {perr}"])
    params, eff = params
    if eff.get("sel_dropped"):
        selmask = np.ones(n, bool)
    k_bad = not isinstance(k, int) or k <= 0
    res, err = call(f"search(k={k})",
                    lambda: ix.search(qa, k, params=params),
                    expect_error=("shape" if qshape else
                                  "non-finite" if bad_q else
                                  "k <= 0" if k_bad else None),
                    needles=("shape",) if qshape else
                    ("finite", "nan", "inf") if bad_q else ("k",),
                    allow_error=k > 4096 or nq * k > 10 ** 7)
    if err is not None:
        return "; ".join(notes) or f"search refused as expected: {err}"
    D, I = res
    if nq == 0:
        if D.shape != (0, k) or I.shape != (0, k):
            fail(f"search of no queries: shapes {D.shape} {I.shape}")
        return "; ".join(notes) or "ok (no queries)"
    if case.get("ids") == "neg" and kind in ("IVF,Flat", "IVF_HNSW,Flat") and \
            "ivf_negative_ids" in KNOWN_OPEN:
        return "; ".join(notes + ["checks skipped: KNOWN_OPEN "
                                  "ivf_negative_ids"])
    alive_sel = alive & selmask
    qt = qmap(q32) if nq else q32
    keys = keys_of(store, metric, qt) if n else np.zeros((nq, 0))
    fin = xt32[np.isfinite(xt32)] if ntrain else np.zeros(0)
    tscale = float(np.abs(fin).max()) if fin.size else 0.0
    tol = tolerance(store, metric, qt, lossy, tscale) if n else \
        np.zeros((nq, 0))
    ncand = int(alive_sel.sum())
    distinct = store[0] == "vec" and \
        len(np.unique(np.asarray(store[2]), axis=0)) == len(store[2])
    exh = is_exhaustive(ix, eff, k, ncand, distinct)
    is_lsh = store[0] == "ham"
    check_knn(case, D, I, nq, k, keys, tol, ids_all, alive_sel, exh,
              metric, is_lsh, bool(np.any(ids_all == -1)), "search",
              overflow=mag in ("huge", "sentinel") or
              qmag in ("huge", "sentinel"))

    # --- range search -----------------------------------------------------------
    if s.get("radius") is not None and nq and not is_lsh:
        # a radius between the reference distances of the first query
        finite = keys[0][alive_sel & np.isfinite(keys[0])] if n else []
        if len(finite):
            radius = float(np.quantile(finite, s["radius"]))
        else:
            radius = 1.0
        if not math.isfinite(radius) or abs(radius) > FLT_MAX:
            radius = 1.0
        rr, err = call("range_search",
                       lambda: ix.range_search(qa, radius, params=params),
                       allow_error=True)
        if err is not None:
            check_clear(err, "range_search", ("support", "range"))
        elif exh == "exact" and mag not in ("huge", "sentinel") and \
                qmag not in ("huge", "sentinel"):
            check_range(rr[0], rr[1], rr[2], nq, np.float32(radius), keys, tol,
                        ids_all, alive_sel, metric, "range_search")

    # --- serialize round trip: the same answers ---------------------------------
    if case.get("roundtrip"):
        if ("IDMap" in kind and ids_mode == "dup" and
                "idmap_repeated_ids_file" in KNOWN_OPEN):
            notes.append("round trip skipped: KNOWN_OPEN "
                         "idmap_repeated_ids_file")
        else:
            buf = vecdex.serialize_index(ix)
            ix2, _ = call("deserialize_index(serialize_index(ix))",
                          lambda: vecdex.deserialize_index(buf))
            if type(ix2) is not type(ix) or ix2.ntotal != ix.ntotal:
                fail(f"round trip: {type(ix2).__name__} ntotal "
                     f"{ix2.ntotal}, was {type(ix).__name__} {ix.ntotal}")
            p2, _ = make_params(ix2, case, sel)
            D2, I2 = ix2.search(qa, k, params=p2)
            if not (np.array_equal(I, I2) and
                    np.array_equal(D.view(np.int32), D2.view(np.int32))):
                fail(f"round trip: results differ:\n{I}\n{I2}\n{D}\n{D2}")
            if case.get("to_file"):
                with tempfile.TemporaryDirectory() as tmp:
                    fn = os.path.join(tmp, "x.index")
                    vecdex.write_index(ix, fn)
                    ix3 = vecdex.read_index(fn)
                    if bytes(vecdex.serialize_index(ix3)) != bytes(buf):
                        fail("write_index / read_index round trip changed "
                             "the bytes")
    return "; ".join(notes) or "ok"


def make_ids(rng, n, mode, start):
    if mode == "seq":
        return np.arange(start, start + n, dtype=np.int64)
    if mode == "neg":
        return -np.arange(1, n + 1, dtype=np.int64) * 7 - start
    if mode == "dup":
        return rng.integers(0, max(1, n // 3), n).astype(np.int64)
    if mode == "huge":
        return (np.int64(2 ** 62) + np.arange(start, start + n) * 3)
    if mode == "extreme":
        v = np.array([2 ** 63 - 1, -2 ** 63 + 1, 2 ** 31, -2 ** 31, 0,
                      2 ** 32 + 1], np.int64)
        base = rng.permutation(n).astype(np.int64) * 11 + 100 + start * 11
        base[: min(n, len(v))] = v[: min(n, len(v))] if start == 0 else \
            base[: min(n, len(v))]
        return base
    if mode == "minus1":
        ids = np.arange(start, start + n, dtype=np.int64)
        if n:
            ids[0] = -1 if start == 0 else ids[0]
        return ids
    if mode == "int32":
        return np.arange(start, start + n, dtype=np.int32) * 5
    if mode == "list":
        return list(range(start * 2, start * 2 + 2 * n, 2))
    raise ValueError(mode)


# ---------------------------------------------------------------------------
# The worker protocol
# ---------------------------------------------------------------------------
def run_safely(case):
    threads0 = vecdex.omp_get_max_threads()
    try:
        note = run_case(case)
        return {"ok": True, "note": note}
    except CaseFailure as e:
        return {"ok": False, "failure": str(e)}
    except Exception as e:  # noqa: BLE001 - a bug in the harness or vecdex
        return {"ok": False, "failure": "uncaught " + "".join(
            traceback.format_exception_only(type(e), e)).strip(),
            "trace": traceback.format_exc()[-3000:]}
    finally:
        try:
            vecdex.omp_set_num_threads(threads0)
        except Exception:  # noqa: BLE001
            pass


def serve():
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        r = run_safely(case)
        out.write(json.dumps(r) + "\n")
        out.flush()


def main(argv):
    if len(argv) >= 2 and argv[1] == "--serve":
        serve()
        return 0
    if len(argv) >= 3 and argv[1] == "--replay":
        case = json.loads(argv[2])
        r = run_safely(case)
        print(json.dumps(r, indent=1))
        return 0 if r["ok"] else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
