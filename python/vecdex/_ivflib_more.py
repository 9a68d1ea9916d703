"""The rest of FAISS's ivflib (faiss/IVFlib.h) over vecdex's IVF indexes:
merging two indexes, the coarse assignment of queries, search that reports
which list each result came from, copying a range of inverted lists out
and back in.  Everything goes through the IVF index's public methods
(quantizer search, search_preassigned, invlists, remove_ids, add_sa_codes),
so the C side checks every argument as it does for any call."""
import numpy as np

from . import _vecdex

__all__ = ["check_compatible_for_merge", "merge_into", "search_centroid",
           "search_and_return_centroids", "get_invlist_range",
           "set_invlist_range", "ArrayInvertedLists"]


def _ivf(index):
    from . import extract_index_ivf
    return extract_index_ivf(index)


def _pre(index, x):
    """(x after the index's transforms, the index under them)."""
    x = np.ascontiguousarray(x, dtype="float32")
    if isinstance(index, _vecdex.IndexPreTransform):
        return index.apply_py(x), index.index
    return x, index


def check_compatible_for_merge(index0, index1):
    """Raises RuntimeError unless index1's entries can be merged into
    index0: the same transforms (by kind), the same kind of index, d and
    metric, and for IVF indexes the same quantizer and code layout."""
    if isinstance(index0, _vecdex.IndexPreTransform):
        if not isinstance(index1, _vecdex.IndexPreTransform):
            raise RuntimeError("check_compatible_for_merge: both indexes "
                               "should be pretransforms")
        c0, c1 = list(index0.chain), list(index1.chain)
        if len(c0) != len(c1) or any(type(a) is not type(b)
                                     for a, b in zip(c0, c1)):
            raise RuntimeError("check_compatible_for_merge: the transform "
                               "chains differ")
        index0, index1 = index0.index, index1.index
    if type(index0) is not type(index1):
        raise RuntimeError("check_compatible_for_merge: %s and %s"
                           % (type(index0).__name__, type(index1).__name__))
    if index0.d != index1.d or index0.metric_type != index1.metric_type:
        raise RuntimeError("check_compatible_for_merge: d=%d metric %d vs "
                           "d=%d metric %d" % (index0.d, index0.metric_type,
                                               index1.d, index1.metric_type))
    if isinstance(index0, _vecdex.IndexIVF):
        index0.check_compatible_for_merge(index1)


def merge_into(index0, index1, shift_ids):
    """Moves index1's entries into index0 (index1 is left empty); with
    shift_ids the moved ids are shifted by index0's ntotal."""
    check_compatible_for_merge(index0, index1)
    ivf0, ivf1 = _ivf(index0), _ivf(index1)
    ivf0.merge_from(ivf1, ivf0.ntotal if shift_ids else 0)


def search_centroid(index, x, n=None, centroid_ids=None):
    """The list (nearest centroid) of each row of x, after the index's
    transforms: an (n,) int64 array, also written into centroid_ids when
    given (FAISS's out-pointer)."""
    x = np.ascontiguousarray(x, dtype="float32")
    if n is not None:
        x = x.reshape(-1, _pre_dim(index))[:int(n)]
    xt, sub = _pre(index, x)
    if not isinstance(sub, _vecdex.IndexIVF):
        raise RuntimeError("search_centroid: could not extract IVF index")
    _, I = sub.quantizer.search(xt, 1)
    ids = I[:, 0].astype(np.int64)
    if centroid_ids is not None:
        np.asarray(centroid_ids).reshape(-1)[:len(ids)] = ids
    return ids


def _pre_dim(index):
    return index.d


def _list_of_ids(ivf, lists):
    """{id: list} over the given lists (the first list wins for an id
    stored twice)."""
    where = {}
    il = ivf.invlists
    for l in lists:
        for v in il.get_ids(int(l)):
            where.setdefault(int(v), int(l))
    return where


def search_and_return_centroids(index, n, xin=None, k=None, distances=None,
                                labels=None, query_centroid_ids=None,
                                result_centroid_ids=None):
    """Search that also reports the query's first list and each result's
    list.  FAISS's form search_and_return_centroids(index, n, x, k, D, I,
    qc, rc) fills the given arrays; the short form (index, x, k) returns
    (D, I, query_centroid_ids (n,), result_centroid_ids (n, k))."""
    if xin is None or k is None or np.ndim(n) == 2:   # (index, x, k)
        x, k = np.asarray(n), int(xin if k is None else k)
    else:
        x = np.ascontiguousarray(xin, dtype="float32").reshape(
            -1, index.d)[:int(n)]
    xt, ivf = _pre(index, x)
    if not isinstance(ivf, _vecdex.IndexIVF):
        raise RuntimeError("search_and_return_centroids: could not extract "
                           "IVF index")
    nprobe = min(ivf.nprobe, ivf.nlist)
    Dq, Iq = ivf.quantizer.search(xt, nprobe)
    D, I = ivf.search_preassigned(xt, k, Iq, Dq)
    qc = Iq[:, 0].astype(np.int64)
    where = _list_of_ids(ivf, np.unique(Iq[Iq >= 0]))
    rc = np.array([[where.get(int(v), -1) if v >= 0 else -1 for v in row]
                   for row in I], dtype=np.int64).reshape(I.shape)
    for out, val in ((distances, D), (labels, I), (query_centroid_ids, qc),
                     (result_centroid_ids, rc)):
        if out is not None:
            np.asarray(out).reshape(-1)[:val.size] = val.reshape(-1)
    return D, I, qc, rc


class ArrayInvertedLists:
    """Inverted lists held in memory (FAISS's ArrayInvertedLists):
    nlist lists of (ids, codes), code_size bytes a code."""

    def __init__(self, nlist, code_size):
        if nlist < 0 or code_size <= 0:
            raise ValueError("ArrayInvertedLists: nlist=%d code_size=%d"
                             % (nlist, code_size))
        self.nlist = int(nlist)
        self.code_size = int(code_size)
        self.ids = [np.zeros(0, dtype=np.int64) for _ in range(self.nlist)]
        self.codes = [np.zeros((0, self.code_size), dtype=np.uint8)
                      for _ in range(self.nlist)]

    def _check(self, l):
        if not 0 <= l < self.nlist:
            raise ValueError("list %d out of range 0..%d" % (l, self.nlist - 1))

    def list_size(self, l):
        self._check(l)
        return len(self.ids[l])

    def get_ids(self, l):
        self._check(l)
        return self.ids[l]

    def get_codes(self, l):
        self._check(l)
        return self.codes[l].reshape(-1)

    def add_entries(self, l, ids, codes):
        self._check(l)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        codes = np.asarray(codes, dtype=np.uint8).reshape(len(ids),
                                                          self.code_size)
        self.ids[l] = np.concatenate([self.ids[l], ids])
        self.codes[l] = np.concatenate([self.codes[l], codes])
        return len(self.ids[l]) - len(ids)

    def compute_ntotal(self):
        return int(sum(len(i) for i in self.ids))


def _range_check(ivf, i0, i1):
    if not 0 <= i0 <= i1 <= ivf.nlist:
        raise RuntimeError("invlist range %d..%d is not within 0..nlist=%d"
                           % (i0, i1, ivf.nlist))


def get_invlist_range(index, i0, i1):
    """A copy of the lists i0..i1-1 of the index's IVF, as an
    ArrayInvertedLists of i1 - i0 lists."""
    ivf = _ivf(index)
    _range_check(ivf, i0, i1)
    src = ivf.invlists
    il = ArrayInvertedLists(i1 - i0, src.code_size)
    for l in range(i0, i1):
        ids = np.asarray(src.get_ids(l), dtype=np.int64)
        codes = np.asarray(src.get_codes(l), dtype=np.uint8)
        il.add_entries(l - i0, ids, codes.reshape(len(ids), src.code_size))
    return il


def _list_prefix(ivf, l, n):
    """FAISS's coarse code of list l (sa_encode's prefix): the list number
    little-endian on ceil(log2(nlist) / 8) bytes."""
    nbyte = 0
    while (1 << (8 * nbyte)) < ivf.nlist:
        nbyte += 1
    b = np.frombuffer(int(l).to_bytes(max(nbyte, 1), "little"),
                      dtype=np.uint8)[:nbyte]
    return np.tile(b, (n, 1))


def set_invlist_range(index, i0, i1, src):
    """Replaces the lists i0..i1-1 of the index's IVF with src's lists (an
    ArrayInvertedLists of i1 - i0 lists, as get_invlist_range returns)."""
    ivf = _ivf(index)
    _range_check(ivf, i0, i1)
    cs = ivf.invlists.code_size
    if src.nlist != i1 - i0 or src.code_size != cs:
        raise RuntimeError("set_invlist_range: src has nlist=%d code_size=%d,"
                           " expected %d and %d" % (src.nlist, src.code_size,
                                                    i1 - i0, cs))
    if ivf.sa_code_size() != cs + _list_prefix(ivf, 0, 1).shape[1]:
        raise RuntimeError("set_invlist_range: this IVF kind's codes cannot "
                           "be re-added as stored")
    old = [np.asarray(ivf.invlists.get_ids(l)) for l in range(i0, i1)]
    old = np.concatenate(old) if old else np.zeros(0, np.int64)
    if len(old):
        # ids stored in other lists too would go with them
        ivf.remove_ids(_vecdex.IDSelectorArray(np.unique(old)))
    for l in range(i0, i1):
        ids = src.get_ids(l - i0)
        if len(ids):
            codes = src.get_codes(l - i0).reshape(len(ids), cs)
            full = np.hstack([_list_prefix(ivf, l, len(ids)), codes])
            ivf.add_sa_codes(np.ascontiguousarray(full), ids)
