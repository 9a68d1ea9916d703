"""FAISS's pack_bitstrings / unpack_bitstrings: rows of small integers
packed into bytes, least significant bit first, each row starting on a
byte boundary (code_size = ceil(total bits / 8)), as FAISS's
BitstringWriter lays them out.  Widths are one nbit for all M columns, or
one per column.  Done with numpy's bit (un)packing: each value becomes its
nbit bits, the rows of bits are packed 8 to a byte."""
import numpy as np

__all__ = ["pack_bitstrings", "unpack_bitstrings"]


def _widths(nbit, M, who):
    if np.ndim(nbit) == 0:
        w = np.full(M, int(nbit), dtype=np.int64)
    else:
        w = np.asarray(nbit, dtype=np.int64).reshape(-1)
        if w.size != M:
            raise ValueError("%s: %d widths for %d columns" % (who, w.size, M))
    if w.size and (w.min() < 1 or w.max() > 32):
        raise ValueError("%s: bit widths must be in 1..32, got %s"
                         % (who, w.tolist()))
    return w


def pack_bitstrings(a, nbit):
    """Packs the (n, M) integer array a, column j on nbit bits (an int) or
    nbit[j] bits (a sequence): an (n, code_size) uint8 array."""
    a = np.asarray(a)
    if a.ndim != 2 or a.dtype.kind not in "iu":
        raise ValueError("pack_bitstrings: expected an (n, M) integer array, "
                         "got %s of shape %s" % (a.dtype, a.shape))
    n, M = a.shape
    w = _widths(nbit, M, "pack_bitstrings")
    a64 = a.astype(np.int64)
    if a64.size and (a64.min() < 0 or (a64 >= (np.int64(1) << w)).any()):
        raise ValueError("pack_bitstrings: a value does not fit its bit width")
    total = int(w.sum())
    code_size = (total + 7) // 8
    bits = np.zeros((n, code_size * 8), dtype=np.uint8)
    pos = 0
    for j in range(M):
        shifts = np.arange(w[j], dtype=np.int64)
        bits[:, pos:pos + w[j]] = (a64[:, j:j + 1] >> shifts) & 1
        pos += int(w[j])
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_bitstrings(b, M_or_nbits, nbit=None):
    """Inverse of pack_bitstrings: unpack_bitstrings(b, M, nbit) or
    unpack_bitstrings(b, nbits): an (n, M) int32 array."""
    b = np.ascontiguousarray(b, dtype=np.uint8)
    if b.ndim != 2:
        raise ValueError("unpack_bitstrings: expected (n, code_size) bytes, "
                         "got shape %s" % (b.shape,))
    if nbit is None:
        w = _widths(M_or_nbits, len(np.asarray(M_or_nbits).reshape(-1)),
                    "unpack_bitstrings")
    else:
        w = _widths(nbit, int(M_or_nbits), "unpack_bitstrings")
    total = int(w.sum())
    n, code_size = b.shape
    if code_size != (total + 7) // 8:
        raise ValueError("unpack_bitstrings: %d bits need code_size=%d, got "
                         "%d" % (total, (total + 7) // 8, code_size))
    bits = np.unpackbits(b, axis=1, bitorder="little").astype(np.int64)
    out = np.zeros((n, w.size), dtype=np.int64)
    pos = 0
    for j in range(w.size):
        weights = np.int64(1) << np.arange(w[j], dtype=np.int64)
        out[:, j] = bits[:, pos:pos + w[j]] @ weights
        pos += int(w[j])
    return out.astype(np.int32)
