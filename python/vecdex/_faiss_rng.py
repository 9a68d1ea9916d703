"""FAISS's random number streams (faiss.rand / randn / randint and the
float_rand / float_randn / int64_rand / int64_rand_max helpers), reproduced
value for value, so code and tests that depend on FAISS's data (reference
recalls measured on faiss.randn datasets) see the same numbers.

The scheme, as FAISS's utils/random.cpp defines it: a Mersenne twister
(mt19937) seeded with `seed` gives two draws a0, b0 (31 bits each); the
output is cut into nblock = 1024 equal blocks (1 when n < 1024), block j
drawn from its own mt19937 seeded with (a0 + j * b0) mod 2^32.  Uniforms
are u / (2^32 - 1) (as float for rand, as double for randn); normals come
by Marsaglia's polar method in double, two per accepted pair (the second
of a block's last pair is dropped when the block length is odd); int64s
are two 31-bit draws, low then high.  numpy's legacy RandomState(seed) is
that same twister, and randint(0, 2^32, dtype=uint32) its raw output.
"""
import numpy as np

__all__ = ["rand", "randn", "randint", "float_rand", "float_randn",
           "int64_rand", "int64_rand_max"]

_M32 = 0xFFFFFFFF


class _MT:
    """mt19937 seeded as std::mt19937(seed); draw(m) -> m raw uint32.
    numpy's MT19937 with its legacy seeding is that generator (about 100x
    cheaper to seed than a RandomState, which matters: 1024 per call)."""

    def __init__(self, seed):
        seed &= _M32
        try:
            self._bg = np.random.MT19937(0)
            self._bg._legacy_seeding(seed)
            self._rs = None
        except AttributeError:   # a numpy without it: the slower route
            self._bg, self._rs = None, np.random.RandomState(seed)

    def draw(self, m):
        if self._bg is not None:
            return self._bg.random_raw(m).astype(np.uint32)
        return self._rs.randint(0, 1 << 32, size=m, dtype=np.uint32)


def _blocks(n, seed):
    """(start, end, mt19937 stream) for each block of n outputs."""
    a0, b0 = _MT(int(seed)).draw(2).astype(np.int64) & 0x7FFFFFFF
    nblock = 1 if n < 1024 else 1024
    g = None
    for j in range(nblock):
        s = (int(a0) + j * int(b0)) & _M32
        if g is None:
            g = _MT(s)
        elif g._bg is not None:
            g._bg._legacy_seeding(s)
        else:
            g = _MT(s)
        yield j * n // nblock, (j + 1) * n // nblock, g


def _raw(g, m):
    return g.draw(m)


def _size(n):
    n = int(np.prod(n)) if np.ndim(n) else int(n)
    if n < 0:
        raise ValueError("n must be >= 0, got %d" % n)
    return n


def rand(n, seed=12345):
    """Uniform float32 numbers in [0, 1], FAISS's stream; n an int or a
    shape."""
    shape, m = n, _size(n)
    out = np.empty(m, dtype=np.float32)
    for i0, i1, g in _blocks(m, seed):
        out[i0:i1] = _raw(g, i1 - i0).astype(np.float32) / np.float32(_M32)
    return out.reshape(shape)


def _normals(g, m):
    """m normals from stream g by the polar method: pairs (a, b) of
    uniforms in (-1, 1) until a^2 + b^2 < 1, each accepted pair giving
    a * f and b * f, f = sqrt(-2 ln s / s).  The block's stream is its own,
    so drawing past the last pair needed changes nothing."""
    npair = (m + 1) // 2
    keep_a, keep_b, got = [], [], 0
    while got < npair:
        want = npair - got
        u = _raw(g, 2 * (want + want // 4 + 16)).astype(np.float64) / _M32
        a = 2.0 * u[0::2] - 1
        b = 2.0 * u[1::2] - 1
        ok = np.flatnonzero(a * a + b * b < 1.0)[:want]
        keep_a.append(a[ok])
        keep_b.append(b[ok])
        got += len(ok)
    a = np.concatenate(keep_a)
    b = np.concatenate(keep_b)
    s = a * a + b * b
    f = np.sqrt(-2.0 * np.log(s) / s)
    out = np.empty(2 * npair, dtype=np.float64)
    out[0::2] = a * f
    out[1::2] = b * f
    return out[:m].astype(np.float32)


def randn(n, seed=12345):
    """Standard normal float32 numbers, FAISS's stream; n an int or a
    shape."""
    shape, m = n, _size(n)
    out = np.empty(m, dtype=np.float32)
    for i0, i1, g in _blocks(m, seed):
        if i1 > i0:
            out[i0:i1] = _normals(g, i1 - i0)
    return out.reshape(shape)


def randint(n, seed=12345, vmax=None):
    """int64 numbers, FAISS's stream: in [0, 2^62) without vmax, else
    taken modulo vmax; n an int or a shape."""
    shape, m = n, _size(n)
    if vmax is not None and int(vmax) <= 0:
        raise ValueError("randint: vmax must be > 0, got %s" % vmax)
    out = np.empty(m, dtype=np.int64)
    for i0, i1, g in _blocks(m, seed):
        r = _raw(g, 2 * (i1 - i0)).astype(np.int64) & 0x7FFFFFFF
        v = r[0::2] | (r[1::2] << 31)
        out[i0:i1] = v if vmax is None else v % int(vmax)
    return out.reshape(shape)


def _target(x, n, dtype, who):
    if not isinstance(x, np.ndarray) or x.dtype != dtype or \
            not x.flags.c_contiguous:
        raise TypeError("%s: expected a contiguous %s array" % (who, dtype))
    n = int(n)
    if n < 0 or n > x.size:
        raise ValueError("%s: n=%d for an array of %d" % (who, n, x.size))
    return x.reshape(-1), n


def float_rand(x, n, seed):
    x, n = _target(x, n, np.float32, "float_rand")
    x[:n] = rand(n, seed)


def float_randn(x, n, seed):
    x, n = _target(x, n, np.float32, "float_randn")
    x[:n] = randn(n, seed)


def int64_rand(x, n, seed):
    x, n = _target(x, n, np.int64, "int64_rand")
    x[:n] = randint(n, seed)


def int64_rand_max(x, n, vmax, seed):
    x, n = _target(x, n, np.int64, "int64_rand_max")
    x[:n] = randint(n, seed, vmax)
