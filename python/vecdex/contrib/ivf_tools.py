"""IVF helpers with faiss.contrib.ivf_tools' names, written for vecdex.

The "preassigned" calls need a C entry point vecdex does not have yet
(search / add with given lists): they raise NotImplementedError."""
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
    _missing("search_preassigned")


def range_search_preassigned(index_ivf, x, radius, list_nos,
                             coarse_dis=None):
    _missing("range_search_preassigned")


def replace_ivf_quantizer(index_ivf, new_quantizer):
    _missing("replace_ivf_quantizer")


def permute_invlists(index_ivf, perm):
    _missing("permute_invlists")


def sort_invlists_by_size(index_ivf):
    _missing("sort_invlists_by_size")
