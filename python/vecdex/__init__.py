"""vecdex: fast, safe similarity search in C with FAISS's Python API.

``import vecdex as faiss`` runs FAISS code written for the supported index
kinds unchanged.  Everything lives in the C extension ``vecdex._vecdex``;
this file only re-exports it and adds the few pure-Python idioms FAISS code
relies on.
"""
from . import _vecdex
from ._vecdex import *  # noqa: F401,F403  (the public API)
from ._vecdex import __version__  # noqa: F401
from ._swig_idioms import *  # noqa: F401,F403
from . import _swig_idioms
from .store import Store, Hits  # noqa: F401
from . import _io_objects
from ._io_objects import *  # noqa: F401,F403,E402  (IOReader / IOWriter)
from . import _composite  # noqa: E402  (search_and_reconstruct ...)
from ._composite import *  # noqa: F401,F403,E402
from . import _ivflib  # noqa: E402
from ._ivflib import *  # noqa: F401,F403,E402  (search_with_parameters)


def swig_ptr(a):
    """FAISS passes raw pointers (``faiss.swig_ptr(arr)``) to constructors
    such as ``IDSelectorBatch(n, ptr)``; vecdex takes the array itself, so
    this is the identity and that idiom keeps working."""
    return a


def knn(xq, xb, k, metric=METRIC_L2, metric_arg=0.0):  # noqa: F405
    """Exact k nearest neighbours of the rows of xq among the rows of xb:
    (D, I), each (nq, k), as faiss.knn returns (squared L2 distances, inner
    products, or one of the extra metrics of vecdex._metrics, metric_arg
    being Lp's p)."""
    import numpy as np
    xb = np.ascontiguousarray(xb, dtype="float32")
    xq = np.ascontiguousarray(xq, dtype="float32")
    if xb.ndim != 2 or xq.ndim != 2 or xb.shape[1] != xq.shape[1]:
        raise ShapeError(  # noqa: F405
            f"knn: expected xq (nq, d) and xb (nb, d), got {xq.shape} and "
            f"{xb.shape}")
    if metric not in (METRIC_L2, METRIC_INNER_PRODUCT):  # noqa: F405
        from ._metrics import knn_extra
        return knn_extra(xq, xb, k, metric, metric_arg)
    if metric_arg != 0:
        raise ValueError("knn: metric_arg is only used by METRIC_Lp")
    index = IndexFlat(xb.shape[1], metric)  # noqa: F405
    index.add(xb)
    return index.search(xq, k)


def write_VectorTransform(vt, fname):
    """Writes a vector transform alone in FAISS's format (to a file name or
    an IOWriter)."""
    data = serialize_VectorTransform(vt)  # noqa: F405
    if isinstance(fname, _io_objects.IOWriter):
        return _io_objects.write_to(data.tobytes(), fname)
    with open(fname, "wb") as f:
        f.write(data.tobytes())


def read_VectorTransform(fname):
    """Reads a vector transform written by vecdex or FAISS (from a file
    name or an IOReader)."""
    if isinstance(fname, _io_objects.IOReader):
        return _io_objects.read_from(
            fname, lambda b: deserialize_VectorTransform(b))  # noqa: F405
    with open(fname, "rb") as f:
        return deserialize_VectorTransform(f.read())  # noqa: F405


def extract_index_ivf(index):
    """The IVF index inside `index` (itself, or under IndexRefine /
    IndexIDMap wrappers), as faiss.extract_index_ivf; RuntimeError when
    there is none."""
    ix = index
    for _ in range(32):
        if isinstance(ix, IndexIVF):  # noqa: F405
            return ix
        sub = getattr(ix, "base_index", None)
        if sub is None:
            sub = getattr(ix, "index", None)
        if sub is None:
            break
        ix = sub
    raise RuntimeError("extract_index_ivf: no IVF index in "
                       + type(index).__name__)


def write_index(index, fname):
    """Writes the index in FAISS's format; a sharded index (IndexShards,
    IndexShardsIVF, IndexReplicas, for which FAISS has no format) becomes
    the directory `fname`: FAISS files plus a manifest.  fname may be an
    IOWriter (PyCallbackIOWriter, VectorIOWriter...); index None writes
    FAISS's null record there."""
    if isinstance(fname, _io_objects.IOWriter):
        return _io_objects.write_to(
            _io_objects.serialize_index_or_null(index), fname)
    if isinstance(index, (IndexShards, IndexReplicas)):  # noqa: F405
        return write_index_sharded(index, fname)  # noqa: F405
    return _vecdex.write_index(index, fname)


def read_index(fname, io_flags=0):
    """Reads an index written by vecdex or FAISS, or a sharded directory
    written by write_index / write_index_sharded, or from an IOReader
    (None for FAISS's null record)."""
    import os
    if isinstance(fname, _io_objects.IOReader):
        return _io_objects.read_from(
            fname, lambda b: _io_objects.parse_index(b, io_flags))
    if os.path.isdir(fname) or str(fname).endswith("vecdex-manifest.txt"):
        return read_index_sharded(fname, io_flags)  # noqa: F405
    return _vecdex.read_index(fname, io_flags)


IndexProxy = IndexReplicas  # noqa: F405  (FAISS's old name)


class IndexIVFStats:
    """FAISS's IndexIVFStats: counters summed over every IVF search in the
    process since reset() (vecdex's C counters, read live).  nlist: the
    non-empty lists visited; ndis: codes scored; times in ms."""

    _FIELDS = ("nq", "nlist", "ndis", "nheap_updates", "quantization_time",
               "search_time")

    def reset(self):
        _vecdex.ivf_stats_reset()

    def __getattr__(self, name):
        if name in IndexIVFStats._FIELDS:
            return _vecdex.ivf_stats()[IndexIVFStats._FIELDS.index(name)]
        raise AttributeError(name)

    def __repr__(self):
        return "IndexIVFStats(%s)" % ", ".join(
            "%s=%r" % kv for kv in zip(self._FIELDS, _vecdex.ivf_stats()))


class HNSWStats:
    """FAISS's HNSWStats, summed over HNSW searches since reset():
    ndis (distances computed), nhops (level-0 nodes expanded), n1 (queries
    the walk left short of k results); n2 stays 0."""

    _FIELDS = ("n1", "n2", "ndis", "nhops")

    def reset(self):
        _vecdex.hnsw_stats_reset()

    def __getattr__(self, name):
        if name in HNSWStats._FIELDS:
            return _vecdex.hnsw_stats()[HNSWStats._FIELDS.index(name)]
        raise AttributeError(name)

    def __repr__(self):
        return "HNSWStats(%s)" % ", ".join(
            "%s=%r" % kv for kv in zip(self._FIELDS, _vecdex.hnsw_stats()))


class _Cvar:
    """FAISS's global variables (faiss.cvar).  vecdex keeps no tunables in
    globals (its parameters travel with each call), so these are plain
    attributes: code that sets them runs, and they change nothing; the
    BLAS thresholds are chosen per call by vecdex itself."""

    def __init__(self):
        self.distance_compute_blas_threshold = 20
        self.distance_compute_blas_query_bs = 4096
        self.distance_compute_blas_database_bs = 1024
        self.distance_compute_min_k_reservoir = 100
        self.bucket_sort_verbose = 0
        self.index_factory_verbose = 0
        self.check_compatible_for_merge_expensive_check = True
        self.indexIVF_stats = IndexIVFStats()
        self.hnsw_stats = HNSWStats()


cvar = _Cvar()

from ._simd import *  # noqa: F401,F403,E402
from ._simd import __all__ as _simd_all  # noqa: E402
from ._helpers import *  # noqa: F401,F403,E402
from ._helpers import __all__ as _helpers_all  # noqa: E402
from ._metrics import *  # noqa: F401,F403,E402
from ._metrics import __all__ as _metrics_all  # noqa: E402
from ._autotune import *  # noqa: F401,F403,E402
from ._autotune import __all__ as _autotune_all  # noqa: E402

from ._binary import *  # noqa: F401,F403,E402  (binary indexes)
from ._binary import __all__ as _binary_all  # noqa: E402
from ._binary_io import *  # noqa: F401,F403,E402
from ._binary_io import __all__ as _binary_io_all  # noqa: E402
from ._binary_hash import *  # noqa: F401,F403,E402
from ._binary_hash import __all__ as _binary_hash_all  # noqa: E402

from ._pymethods import DistanceComputer, IndexFlatCodes  # noqa: E402
from ._codepacker import CodePacker, CodePackerFlat, CodePackerPQ4  # noqa: E402,F401
from ._clustering import Clustering, ClusteringIterationStats  # noqa: E402
from .gpu import *  # noqa: F401,F403,E402  (GPU options and helpers)
from . import gpu as _gpu  # noqa: E402

__all__ = [name for name in dir(_vecdex) if not name.startswith("_")]
__all__ += _gpu.__all__ + _simd_all + _helpers_all + _metrics_all + _autotune_all
__all__ += ["cvar", "IndexIVFStats", "HNSWStats"]
__all__ += ["Store", "Hits", "IndexProxy", "swig_ptr", "knn", "__version__", "write_VectorTransform",
            "read_VectorTransform", "extract_index_ivf"]
__all__ += ["DistanceComputer", "IndexFlatCodes", "Clustering", "ClusteringIterationStats"]
__all__ += ["CodePacker", "CodePackerFlat", "CodePackerPQ4"]
__all__ += _io_objects.__all__ + _composite.__all__ + _ivflib.__all__
__all__ += _swig_idioms.__all__ + _binary_all + _binary_io_all + _binary_hash_all

# issue 19 (suite part K): bit strings, IndexFlat1D, the rest of ivflib
from ._bitstrings import *  # noqa: F401,F403,E402
from ._bitstrings import __all__ as _bitstrings_all  # noqa: E402
from ._flat1d import *  # noqa: F401,F403,E402
from ._flat1d import __all__ as _flat1d_all  # noqa: E402
from ._ivflib_more import *  # noqa: F401,F403,E402
from ._ivflib_more import __all__ as _ivflib_more_all  # noqa: E402
__all__ += _bitstrings_all + _flat1d_all + _ivflib_more_all
from ._ivf_shard import *  # noqa: F401,F403,E402
from ._ivf_shard import __all__ as _ivf_shard_all  # noqa: E402
__all__ += _ivf_shard_all
from ._build_blocks import *  # noqa: F401,F403,E402
from ._build_blocks import __all__ as _build_blocks_all  # noqa: E402
__all__ += _build_blocks_all
# FAISS's random streams, value for value (replace _helpers' numpy ones)
from ._faiss_rng import *  # noqa: F401,F403,E402
