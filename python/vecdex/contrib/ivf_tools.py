"""IVF helpers with faiss.contrib.ivf_tools' names, written for vecdex.

search_preassigned runs the index's own search over caller-given lists
(through an IndexPreTransform of one transform too); the other
"preassigned" calls need C entry points vecdex does not have yet (add and
range search with given lists): they raise NotImplementedError."""
import numpy as np

__all__ = ["get_invlist_sizes", "add_preassigned", "search_preassigned",
           "range_search_preassigned", "replace_ivf_quantizer",
           "permute_invlists", "sort_invlists_by_size"]


def get_invlist_sizes(invlists):
    """The number of entries of each list (int64 array of nlist)."""
    return np.array([invlists.list_size(l) for l in range(invlists.nlist)],
                    dtype="int64")


def _missing(name):
    raise NotImplementedError(
        f"{name}: vecdex has no search or add with caller-given lists yet")


def add_preassigned(index_ivf, x, a, ids=None):
    _missing("add_preassigned")


def search_preassigned(index_ivf, xq, k, list_nos, coarse_dis=None):
    """The k nearest neighbours of xq among the lists list_nos (n, nprobe)
    of an IVF index, or of the IVF index under a one-transform
    IndexPreTransform (the queries are transformed first).  coarse_dis is
    accepted and unused (vecdex recomputes what it needs)."""
    import vecdex
    if isinstance(index_ivf, vecdex.IndexPreTransform):
        if index_ivf.chain.size() != 1:
            raise ValueError("search_preassigned: the IndexPreTransform must "
                             "hold one transform, it holds %d"
                             % index_ivf.chain.size())
        xq = index_ivf.chain.at(0).apply(np.ascontiguousarray(xq, dtype="float32"))
        index_ivf = index_ivf.index
    xq = np.ascontiguousarray(xq, dtype="float32")
    list_nos = np.ascontiguousarray(list_nos, dtype="int64")
    if list_nos.ndim != 2 or list_nos.shape[0] != xq.shape[0]:
        raise ValueError("search_preassigned: list_nos must be (n=%d, nprobe),"
                         " got shape %s" % (xq.shape[0], list_nos.shape))
    return index_ivf.search_preassigned(xq, k, list_nos, coarse_dis)


def range_search_preassigned(index_ivf, x, radius, list_nos,
                             coarse_dis=None):
    _missing("range_search_preassigned")


def replace_ivf_quantizer(index_ivf, new_quantizer):
    _missing("replace_ivf_quantizer")


def permute_invlists(index_ivf, perm):
    _missing("permute_invlists")


def sort_invlists_by_size(index_ivf):
    _missing("sort_invlists_by_size")
