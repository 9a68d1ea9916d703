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


def swig_ptr(a):
    """FAISS passes raw pointers (``faiss.swig_ptr(arr)``) to constructors
    such as ``IDSelectorBatch(n, ptr)``; vecdex takes the array itself, so
    this is the identity and that idiom keeps working."""
    return a


def knn(xq, xb, k, metric=METRIC_L2, metric_arg=0.0):  # noqa: F405
    """Exact k nearest neighbours of the rows of xq among the rows of xb,
    computed with a flat index: (D, I), each (nq, k), as faiss.knn returns
    (squared L2 distances, or inner products).  metric_arg is accepted for
    FAISS compatibility and must be 0."""
    import numpy as np
    if metric_arg != 0:
        raise ValueError("knn: metric_arg is not supported")
    xb = np.ascontiguousarray(xb, dtype="float32")
    xq = np.ascontiguousarray(xq, dtype="float32")
    if xb.ndim != 2 or xq.ndim != 2 or xb.shape[1] != xq.shape[1]:
        raise ShapeError(  # noqa: F405
            f"knn: expected xq (nq, d) and xb (nb, d), got {xq.shape} and "
            f"{xb.shape}")
    index = IndexFlat(xb.shape[1], metric)  # noqa: F405
    index.add(xb)
    return index.search(xq, k)


def write_VectorTransform(vt, fname):
    """Writes a vector transform alone in FAISS's format."""
    data = serialize_VectorTransform(vt)  # noqa: F405
    with open(fname, "wb") as f:
        f.write(data.tobytes())


def read_VectorTransform(fname):
    """Reads a vector transform written by vecdex or FAISS."""
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


from .gpu import *  # noqa: F401,F403,E402  (GPU options and helpers)
from . import gpu as _gpu  # noqa: E402

__all__ = [name for name in dir(_vecdex) if not name.startswith("_")]
__all__ += _gpu.__all__
__all__ += ["Store", "Hits", "swig_ptr", "knn", "__version__", "write_VectorTransform",
            "read_VectorTransform", "extract_index_ivf"]
__all__ += _swig_idioms.__all__
