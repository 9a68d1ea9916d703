"""Readers and writers of the TEXMEX formats (http://corpus-texmex.irisa.fr/),
with faiss.contrib.vecs_io's names.

Every vector is stored as its dimension (int32, little-endian) followed by
its components: float32 (.fvecs), int32 (.ivecs) or uint8 (.bvecs).  The
readers check the file instead of trusting it: the size must be a whole
number of records and every record must carry the same dimension, else
ValueError.
"""
import numpy as np

__all__ = ["ivecs_read", "fvecs_read", "bvecs_read", "ivecs_mmap",
           "fvecs_mmap", "bvecs_mmap", "ivecs_write", "fvecs_write",
           "bvecs_write"]


def _read(fname, item, dtype, mmap):
    raw = (np.memmap(fname, dtype="uint8", mode="r") if mmap
           else np.fromfile(fname, dtype="uint8"))
    if raw.size == 0:
        return np.zeros((0, 0), dtype=dtype)
    if raw.size < 4:
        raise ValueError(f"{fname}: truncated: {raw.size} bytes, no header")
    d = int(raw[:4].view("<i4")[0])
    if d <= 0 or d > (1 << 24):
        raise ValueError(f"{fname}: invalid dimension {d} in the first record")
    rec = 4 + d * item
    if raw.size % rec:
        raise ValueError(f"{fname}: truncated or inconsistent: {raw.size} "
                         f"bytes is not a multiple of the record size {rec} "
                         f"(d={d})")
    rows = raw.reshape(-1, rec)
    dims = rows[:, :4].copy().view("<i4").ravel()
    if np.any(dims != d):
        bad = int(np.flatnonzero(dims != d)[0])
        raise ValueError(f"{fname}: record {bad} has dimension {dims[bad]}, "
                         f"expected {d}")
    body = rows[:, 4:]
    if mmap:
        return body.view(np.dtype(dtype).newbyteorder("<"))
    return np.ascontiguousarray(body).view(
        np.dtype(dtype).newbyteorder("<")).astype(dtype)


def ivecs_read(fname):
    """(n, d) int32 array of an .ivecs file."""
    return _read(fname, 4, "int32", False)


def fvecs_read(fname):
    """(n, d) float32 array of an .fvecs file."""
    return _read(fname, 4, "float32", False)


def bvecs_read(fname):
    """(n, d) uint8 array of a .bvecs file."""
    return _read(fname, 1, "uint8", False)


def ivecs_mmap(fname):
    return _read(fname, 4, "int32", True)


def fvecs_mmap(fname):
    return _read(fname, 4, "float32", True)


def bvecs_mmap(fname):
    return _read(fname, 1, "uint8", True)


def _write(fname, m, dtype):
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {m.shape}")
    n, d = m.shape
    item = np.dtype(dtype).itemsize
    out = np.empty((n, 4 + d * item), dtype="uint8")
    out[:, :4] = np.array([d], dtype="<i4").view("uint8")
    out[:, 4:] = np.ascontiguousarray(
        m.astype(np.dtype(dtype).newbyteorder("<"))).view("uint8").reshape(n, -1)
    out.tofile(fname)


def ivecs_write(fname, m):
    _write(fname, m, "int32")


def fvecs_write(fname, m):
    _write(fname, m, "float32")


def bvecs_write(fname, m):
    _write(fname, m, "uint8")
