"""vecdex: fast, safe similarity search in C with FAISS's Python API.

``import vecdex as faiss`` runs FAISS code written for the supported index
kinds unchanged.  Everything lives in the C extension ``vecdex._vecdex``;
this file only re-exports it and adds the few pure-Python idioms FAISS code
relies on.
"""
from . import _vecdex
from ._vecdex import *  # noqa: F401,F403  (the public API)
from ._vecdex import __version__  # noqa: F401


def swig_ptr(a):
    """FAISS passes raw pointers (``faiss.swig_ptr(arr)``) to constructors
    such as ``IDSelectorBatch(n, ptr)``; vecdex takes the array itself, so
    this is the identity and that idiom keeps working."""
    return a


__all__ = [name for name in dir(_vecdex) if not name.startswith("_")]
__all__ += ["swig_ptr", "__version__"]
