"""FAISS index methods that are compositions of vecdex's C calls, attached
to the C index types at import (py_methods.c's _install_method).

- search_and_reconstruct(x, k): search, then the stored vectors of the
  results.  IVF indexes (also under IndexPreTransform) decode the codes
  taken from the inverted lists (list number + code, the sa_decode layout),
  so no direct map is needed, as in FAISS; other kinds use
  reconstruct_batch.  Missing results (-1) get NaN rows, as FAISS fills
  them.
- search_and_return_codes(x, k, include_listnos=False): search, then the
  stored codes of the results, read from the lists (codes of -1 results are
  0xff bytes, as FAISS fills them).
- copy_subset_to(other, subset_type, a1, a2): FAISS's
  InvertedLists::copy_subset_to (types 0-4): the selected entries' codes
  and ids go into other's lists through add_sa_codes, unchanged.

The result -> (list, offset) lookup scans the lists' ids once per call (an
id present in several lists maps to one of them); a vecdex search returns
ids only, so this is the price of answering from the stored codes.
"""
import numpy as np

from . import _vecdex

__all__ = []

SUBSET_TYPE_ID_RANGE = 0
SUBSET_TYPE_ID_MOD = 1
SUBSET_TYPE_ELEMENT_RANGE = 2
SUBSET_TYPE_INVLIST_FRACTION = 3
SUBSET_TYPE_INVLIST = 4
__all__ += ["SUBSET_TYPE_ID_RANGE", "SUBSET_TYPE_ID_MOD",
            "SUBSET_TYPE_ELEMENT_RANGE", "SUBSET_TYPE_INVLIST_FRACTION",
            "SUBSET_TYPE_INVLIST"]


def _ivf_under(index):
    """The IVF index that holds index's codes in the sa layout: index
    itself, or the IVF under a chain of IndexPreTransform; else None."""
    ix = index
    for _ in range(32):
        if isinstance(ix, _vecdex.IndexIVF):
            return ix
        if not isinstance(ix, _vecdex.IndexPreTransform):
            return None
        ix = ix.index
    return None


def _listno_bytes(ivf):
    """Bytes of the list number in ivf's sa codes (FAISS's coarse code
    size, ceil(log256(nlist)))."""
    return ivf.sa_code_size() - ivf.invlists.code_size


def _lists(ivf):
    il = ivf.invlists
    for l in range(il.nlist):
        n = il.list_size(l)
        if n:
            ids = np.asarray(il.get_ids(l), dtype=np.int64)
            codes = np.asarray(il.get_codes(l), dtype=np.uint8)
            yield l, ids, codes.reshape(n, -1)


def _sa_codes_of(ivf, ids):
    """(len(ids), sa_code_size) uint8: list number + stored code of each id
    (ids must all be >= 0); KeyError-free: an id not found raises."""
    want = np.unique(ids)
    nb = _listno_bytes(ivf)
    cs = ivf.invlists.code_size
    found = np.zeros(len(want), dtype=bool)
    table = np.empty((len(want), nb + cs), dtype=np.uint8)
    for l, lids, codes in _lists(ivf):
        pos = np.searchsorted(want, lids)
        pos[pos == len(want)] = 0
        hit = want[pos] == lids
        if hit.any():
            p = pos[hit]
            table[p, :nb] = np.frombuffer(
                int(l).to_bytes(8, "little")[:nb], dtype=np.uint8)
            table[p, nb:] = codes[hit]
            found[p] = True
    if not found.all():
        raise RuntimeError("id %d is not in the index"
                           % int(want[~found][0]))
    return table[np.searchsorted(want, ids)]


def _search(index, x, k, params):
    if params is None:
        return index.search(x, k)
    return index.search(x, k, params=params)


def search_and_reconstruct(self, x, k, params=None, D=None, I=None, R=None):
    """search(x, k) and the stored vectors of the results: (D, I, R), R
    float32 (n, k, d), NaN rows where I is -1."""
    Dr, Ir = _search(self, x, k, params)
    out = np.full(Ir.shape + (self.d,), np.nan, dtype=np.float32)
    valid = Ir >= 0
    if valid.any():
        ivf = _ivf_under(self)
        if ivf is not None:
            out[valid] = self.sa_decode(_sa_codes_of(ivf, Ir[valid]))
        else:
            out[valid] = self.reconstruct_batch(Ir[valid])
    for given, got in ((D, Dr), (I, Ir), (R, out)):
        if given is not None:
            given[...] = got
    return Dr, Ir, out


def search_and_return_codes(self, x, k, include_listnos=False, params=None,
                            D=None, I=None, codes=None):
    """search(x, k) and the stored codes of the results: (D, I, codes),
    codes uint8 (n, k, code_size), with the list number first when
    include_listnos (then sa_decode reads them)."""
    Dr, Ir = _search(self, x, k, params)
    nb = _listno_bytes(self)
    cs = self.invlists.code_size
    width = nb + cs if include_listnos else cs
    out = np.full(Ir.shape + (width,), 0xff, dtype=np.uint8)
    valid = Ir >= 0
    if valid.any():
        c = _sa_codes_of(self, Ir[valid])
        out[valid] = c if include_listnos else c[:, nb:]
    for given, got in ((D, Dr), (I, Ir), (codes, out)):
        if given is not None:
            given[...] = got
    return Dr, Ir, out


def copy_subset_to(self, other, subset_type, a1, a2):
    """Copies the entries selected by subset_type (FAISS's
    InvertedLists::subset_type_t) into other, an IVF index of the same
    kind, nlist and code size; returns the number copied."""
    if not isinstance(other, _vecdex.IndexIVF):
        raise TypeError("copy_subset_to: other must be an IVF index, got "
                        + type(other).__name__)
    if type(other) is not type(self):
        raise ValueError("copy_subset_to: other is a %s, this index a %s"
                         % (type(other).__name__, type(self).__name__))
    if other.nlist != self.nlist or \
            other.invlists.code_size != self.invlists.code_size:
        raise ValueError("copy_subset_to: other has nlist=%d, code_size=%d;"
                         " expected %d, %d"
                         % (other.nlist, other.invlists.code_size,
                            self.nlist, self.invlists.code_size))
    subset_type, a1, a2 = int(subset_type), int(a1), int(a2)
    if not 0 <= subset_type <= 4:
        raise ValueError("copy_subset_to: subset type %d not implemented"
                         % subset_type)
    if subset_type in (SUBSET_TYPE_ID_MOD, SUBSET_TYPE_INVLIST_FRACTION) \
            and a1 <= 0:
        raise ValueError("copy_subset_to: a1=%d must be > 0 for subset "
                         "type %d" % (a1, subset_type))
    if other is self:
        raise ValueError("copy_subset_to: other is this index")
    nb = _listno_bytes(self)
    il = self.invlists
    ntotal = sum(il.list_size(l) for l in range(il.nlist))
    if ntotal == 0:
        return 0
    accu_n = accu_a1 = accu_a2 = 0
    sel_codes, sel_ids = [], []
    for l in range(il.nlist):
        n = il.list_size(l)
        if n == 0:
            continue
        ids = np.asarray(il.get_ids(l), dtype=np.int64)
        codes = np.asarray(il.get_codes(l), dtype=np.uint8).reshape(n, -1)
        if subset_type == SUBSET_TYPE_ID_RANGE:
            keep = (ids >= a1) & (ids < a2)
        elif subset_type == SUBSET_TYPE_ID_MOD:
            keep = np.fmod(ids, a1) == a2      # C's %, as FAISS computes it
        elif subset_type == SUBSET_TYPE_ELEMENT_RANGE:
            # the share of [a1, a2) of the running total falling in list l
            nxt = accu_n + n
            n1, n2 = nxt * a1 // ntotal, nxt * a2 // ntotal
            keep = np.zeros(n, dtype=bool)
            keep[max(n1 - accu_a1, 0):max(n2 - accu_a2, 0)] = True
            accu_a1, accu_a2 = n1, n2
        elif subset_type == SUBSET_TYPE_INVLIST_FRACTION:
            keep = np.zeros(n, dtype=bool)
            keep[n * a2 // a1:n * (a2 + 1) // a1] = True
        else:
            keep = np.full(n, a1 <= l < a2)
        accu_n += n
        if keep.any():
            prefix = np.frombuffer(int(l).to_bytes(8, "little")[:nb],
                                   dtype=np.uint8)
            c = codes[keep]
            sel_codes.append(np.hstack(
                [np.broadcast_to(prefix, (len(c), nb)), c]))
            sel_ids.append(ids[keep])
    if not sel_ids:
        return 0
    codes = np.ascontiguousarray(np.vstack(sel_codes))
    ids = np.concatenate(sel_ids)
    other.add_sa_codes(codes, ids)
    return len(ids)


def _install():
    put = _vecdex._install_method
    put(_vecdex.Index, "search_and_reconstruct", search_and_reconstruct)
    put(_vecdex.IndexIVF, "search_and_return_codes", search_and_return_codes)
    put(_vecdex.IndexIVF, "copy_subset_to", copy_subset_to)


_install()
