"""FAISS's SWIG-level idioms that FAISS code (and FAISS's own tests) use
with the additive quantizers: std::vector helpers, bit strings,
eval_intersection.  vecdex hands out numpy arrays where FAISS hands out
std::vector proxies, so these work on arrays."""
import numpy as np

__all__ = ["eval_intersection", "vector_float_to_array", "copy_array_to_vector",
           "UInt64Vector", "Int64Vector", "Float32Vector", "BitstringReader",
           "BitstringWriter", "downcast_Quantizer",
           "downcast_AdditiveQuantizer", "downcast_IndexBinary",
           "downcast_InvertedLists"]


def _downcast(kind):
    def downcast(obj):
        # SWIG hands FAISS's users a base-class proxy that they downcast;
        # vecdex's objects already have their concrete class.
        if obj is None:
            raise TypeError(f"downcast_{kind}: got None")
        return obj
    downcast.__name__ = f"downcast_{kind}"
    downcast.__doc__ = (f"downcast_{kind}(obj) -> obj (vecdex's objects "
                        f"already have their concrete class).")
    return downcast


downcast_Quantizer = _downcast("Quantizer")
downcast_AdditiveQuantizer = _downcast("AdditiveQuantizer")
downcast_IndexBinary = _downcast("IndexBinary")
downcast_InvertedLists = _downcast("InvertedLists")


def eval_intersection(I1, I2):
    """Size of the intersection of the rows of two (n, k) result arrays,
    summed over rows (faiss.eval_intersection); -1 entries never match."""
    I1 = np.asarray(I1)
    I2 = np.asarray(I2)
    if I1.shape[0] != I2.shape[0]:
        raise ValueError("eval_intersection: %d and %d rows"
                         % (I1.shape[0], I2.shape[0]))
    n = 0
    for a, b in zip(I1, I2):
        sa = set(int(v) for v in a if v >= 0)
        n += sum(1 for v in set(int(v) for v in b if v >= 0) if v in sa)
    return n


def vector_float_to_array(v):
    """A numpy copy of a float vector (FAISS's typed vector_to_array)."""
    return np.array(v, dtype="float32", copy=True)


def copy_array_to_vector(a, v):
    """Copies array a into v in place.  v must be a writable array of the
    same size (vecdex's codebooks, centroids...: assign them instead to
    replace them with a different size)."""
    a = np.ascontiguousarray(a)
    if hasattr(v, "_vdx_assign"):   # a growable vector (ByteVector)
        return v._vdx_assign(a)
    if not isinstance(v, np.ndarray):
        raise TypeError("copy_array_to_vector: the target must be an array, got "
                        + type(v).__name__)
    if v.size != a.size:
        raise ValueError("copy_array_to_vector: %d values for a vector of %d "
                         "(assign the attribute instead: obj.codebooks = a)"
                         % (a.size, v.size))
    np.copyto(v.reshape(-1), a.reshape(-1).astype(v.dtype))


class _Vector(list):
    """A growable list with std::vector's names (push_back, at, size)."""
    def push_back(self, x):
        self.append(x)

    def at(self, i):
        return self[i]

    def size(self):
        return len(self)

    def resize(self, n, value=0):
        del self[n:]
        self.extend([value] * (n - len(self)))

    def clear(self):
        del self[:]


class UInt64Vector(_Vector):
    pass


class Int64Vector(_Vector):
    pass


class Float32Vector(_Vector):
    pass


class BitstringReader:
    """Reads values of given bit widths from a byte string, least
    significant bit first (FAISS's BitstringReader(code, code_size))."""

    def __init__(self, code, code_size=None):
        b = np.frombuffer(np.ascontiguousarray(code, dtype=np.uint8).tobytes(),
                          dtype=np.uint8)
        self.code = b if code_size is None else b[:code_size]
        self.i = 0

    def read(self, nbit):
        if nbit < 0 or self.i + nbit > 8 * len(self.code):
            raise ValueError("BitstringReader: %d bits at bit %d overflow "
                             "the %d-byte code" % (nbit, self.i, len(self.code)))
        v = 0
        for j in range(nbit):
            pos = self.i + j
            if (int(self.code[pos // 8]) >> (pos % 8)) & 1:
                v |= 1 << j
        self.i += nbit
        return v


class BitstringWriter:
    """Writes values into a writable uint8 array, least significant bit
    first (FAISS's BitstringWriter(code, code_size))."""

    def __init__(self, code, code_size=None):
        self.code = code
        # FAISS's writer clears its buffer first: write() only sets bits,
        # so stale bits would corrupt the values read back
        n = len(code) if code_size is None else int(code_size)
        if n < 0 or n > len(code):
            raise ValueError("BitstringWriter: code_size=%d for a buffer of "
                             "%d bytes" % (n, len(code)))
        self.code[:n] = 0
        self.nbits = 8 * n
        self.i = 0

    def write(self, x, nbit):
        if nbit < 0 or self.i + nbit > self.nbits:
            raise ValueError("BitstringWriter: %d bits at bit %d overflow "
                             "the %d-bit buffer" % (nbit, self.i, self.nbits))
        for j in range(nbit):
            pos = self.i + j
            if (int(x) >> j) & 1:
                self.code[pos // 8] |= np.uint8(1 << (pos % 8))
        self.i += nbit


class _VectorView(np.ndarray):
    """The arrays vecdex returns for FAISS's std::vector attributes
    (aq.nbits, aq.codebook_offsets...): numpy arrays that also answer
    at(i)."""
    def at(self, i):
        return self[i]


def _register():
    from . import _vecdex
    _vecdex._set_vector_type(_VectorView)


_register()
