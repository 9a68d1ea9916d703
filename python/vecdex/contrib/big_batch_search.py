"""faiss.contrib.big_batch_search's entry point, written for vecdex.

FAISS's version scans the inverted lists one by one for large query
batches; vecdex's IVF search already runs the queries of a batch in
parallel over lists, so this searches the index in query blocks of
`bs` and returns the same results as index.search with the index's
nprobe (or the given one)."""
import numpy as np

__all__ = ["big_batch_search"]


def big_batch_search(index, xq, k, method="knn_function", pre_assign=None,
                     verbose=0, threaded=0, use_float16=False,
                     prefetch_threads=1, computation_threads=1,
                     q_assign=None, checkpoint=None, checkpoint_freq=7200,
                     start_list=0, end_list=None, crash_at=-1, bs=65536):
    """(D, I) of the k nearest neighbours of xq in the IVF `index`."""
    if method not in ("knn_function", "index", "pairwise_distances"):
        raise ValueError(f"big_batch_search: unknown method {method!r}")
    xq = np.ascontiguousarray(xq, dtype="float32")
    nq = xq.shape[0]
    D = np.empty((nq, k), dtype="float32")
    I = np.empty((nq, k), dtype="int64")
    for i0 in range(0, nq, bs):
        D[i0:i0 + bs], I[i0:i0 + bs] = index.search(xq[i0:i0 + bs], k)
    return D, I
