"""Looking inside vecdex indexes, with faiss.contrib.inspect_tools' names.

Written for vecdex: the accessors return copies (numpy arrays) rather than
views of raw pointers.
"""
import numpy as np

import vecdex


def get_invlist(invlists, l):
    """(ids, codes) of list l: ids an int64 array, codes a uint8 array of
    shape (list_size, code_size)."""
    ids = invlists.get_ids(l)
    codes = invlists.get_codes(l)
    return ids, codes.reshape(len(ids), invlists.code_size)


def get_invlist_sizes(invlists):
    """The number of entries of each list (an int64 array of nlist)."""
    return np.array([invlists.list_size(l) for l in range(invlists.nlist)],
                    dtype="int64")


def print_object_fields(obj):
    """Prints the public attributes of obj that are plain values."""
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            v = getattr(obj, name)
        except Exception:
            continue
        if isinstance(v, (int, float, str, bool)):
            print(f"{name} = {v!r}")


def get_pq_centroids(pq):
    """The PQ centroids as an array of shape (M, ksub, dsub)."""
    return np.asarray(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)


def get_LinearTransform_matrix(pca):
    """(A, b) of a linear transform: A of shape (d_out, d_in), b of d_out
    (zeros when it has no bias)."""
    A = np.asarray(pca.A).reshape(pca.d_out, pca.d_in)
    b = np.asarray(pca.b) if pca.have_bias else np.zeros(pca.d_out, "float32")
    return A, b


def make_LinearTransform_matrix(A, b=None):
    """A trained LinearTransform y = A x (+ b)."""
    A = np.ascontiguousarray(A, dtype="float32")
    d_out, d_in = A.shape
    lt = vecdex.LinearTransform(d_in, d_out, b is not None)
    lt.A = A.ravel()
    if b is not None:
        lt.b = np.ascontiguousarray(b, dtype="float32").ravel()
    return lt


def get_flat_data(index):
    """The vectors of a flat index, as an (ntotal, d) float32 array."""
    return index.reconstruct_n(0, index.ntotal)


def get_flat_codes(index_flat):
    """The stored codes of a flat-code index, one row per vector."""
    if hasattr(index_flat, "codes"):
        return np.asarray(index_flat.codes).reshape(index_flat.ntotal, -1)
    return get_flat_data(index_flat).view("uint8")


def get_hnsw_graph(index):
    """The HNSW graph's neighbour lists: a list over levels of lists over
    nodes of int64 arrays."""
    hnsw = index.hnsw
    levels = np.asarray(hnsw.levels)
    out = []
    for lev in range(int(levels.max()) if len(levels) else 0):
        out.append([np.asarray(hnsw.neighbors_of(i, lev))
                    if levels[i] > lev else np.zeros(0, "int64")
                    for i in range(len(levels))])
    return out


def get_additive_quantizer_codebooks(aq):
    """The codebooks of an additive quantizer, one (2^nbits, d) array per
    codebook (d / nsplits wide for the product kinds)."""
    co = np.asarray(aq.codebook_offsets).astype(int)
    width = aq.d // getattr(aq, "nsplits", 1) if hasattr(aq, "nsplits") else aq.d
    codebooks = np.array(aq.codebooks, copy=True).reshape(-1, width)
    return [codebooks[co[i]:co[i + 1]] for i in range(aq.M)]
