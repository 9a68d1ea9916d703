"""Small FAISS building blocks over numpy: MatrixStats (a report on a data
matrix before indexing it: duplicates, null or non-finite vectors, constant
or badly centred dimensions), MapLong2Long and MapInt64ToInt64 (int64 ->
int64 lookup tables, -1 for a missing key).

MatrixStats writes FAISS's diagnostic phrases (code greps them), each on
its own line.  Deliberate difference: hash_value is vecdex's own hash of
the bytes (BLAKE2b, 64 bits), stable across runs but not FAISS's number."""
import hashlib

import numpy as np

__all__ = ["MatrixStats", "MapLong2Long", "MapInt64ToInt64"]


def _hash64(b):
    return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little")


class _PerDimStats:
    def __init__(self, col):
        fin = col[np.isfinite(col)]
        self.n = len(col)
        self.n_nan = int(np.isnan(col).sum())
        self.n_inf = int(np.isinf(col).sum())
        self.n0 = int((col == 0).sum())
        self.min = float(fin.min()) if len(fin) else np.inf
        self.max = float(fin.max()) if len(fin) else -np.inf
        self.mean = float(fin.astype(np.float64).mean()) if len(fin) else np.nan
        self.stddev = float(fin.astype(np.float64).std()) if len(fin) else np.nan


class MatrixStats:
    """MatrixStats(x): x an (n, d) float32 matrix.  comments: the report;
    also n, d, n_valid (rows without NaN / Inf), n0 (null rows), min_norm2 /
    max_norm2 (after the call: the L2 norms' range, as FAISS leaves them),
    hash_value, per_dim_stats."""

    def __init__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError("MatrixStats: expected an (n, d) matrix, got "
                             "shape %s" % (x.shape,))
        self.n, self.d = n, d = x.shape
        lines = ["analyzing %d vectors of size %d" % (n, d)]
        if d > 1024:
            lines.append("indexing this many dimensions is hard, please "
                         "consider dimensionality reduction (with PCAMatrix)")
        self.hash_value = _hash64(x.tobytes())
        lines.append("hash value 0x%016x" % self.hash_value)

        with np.errstate(over="ignore", invalid="ignore"):
            norms2 = (x.astype(np.float64) ** 2).sum(axis=1)
        valid = np.isfinite(norms2)
        self.n_valid = int(valid.sum())
        null = valid & (norms2 == 0)
        self.n0 = int(null.sum())
        pos = norms2[valid & ~null]
        if self.n_valid == n:
            lines.append("no NaN or Infs in data")
        else:
            lines.append("%d vectors contain NaN or Inf (or have too large "
                         "components), expect bad results with indexing!"
                         % (n - self.n_valid))

        # duplicates: exact byte equality of rows
        self.n_collision = 0
        if n:
            rows = x.view(np.dtype((np.void, 4 * d))).reshape(n)
            _, first, counts = np.unique(rows, return_index=True,
                                         return_counts=True)
            ndistinct = len(counts)
        else:
            ndistinct, first, counts = 0, np.zeros(0, int), np.zeros(0, int)
        if ndistinct == n:
            lines.append("all vectors are distinct")
        else:
            lines.append("%d vectors are distinct (%.2f%%)"
                         % (ndistinct, ndistinct * 100.0 / n))
            j = int(np.argmax(counts))
            lines.append("vector %d has %d copies" % (first[j], counts[j]))

        self.min_norm2 = float(np.sqrt(pos.min())) if len(pos) else np.inf
        self.max_norm2 = float(np.sqrt(pos.max())) if len(pos) else 0.0
        lines.append("range of L2 norms=[%g, %g] (%d null vectors)"
                     % (self.min_norm2, self.max_norm2, self.n0))
        if len(pos) and self.max_norm2 < self.min_norm2 * 1.0001:
            lines.append("vectors are normalized, inner product and L2 "
                         "search are equivalent")
        if len(pos) and self.max_norm2 > self.min_norm2 * 100:
            lines.append("vectors have very large differences in norms, is "
                         "this normal?")

        self.per_dim_stats = [_PerDimStats(x[:, j]) for j in range(d)]
        st = self.per_dim_stats
        n0_entries = sum(s.n0 for s in st)
        n_const = sum(1 for s in st if s.max == s.min)
        n_badmean = sum(1 for s in st if s.max != s.min and s.max < 1.001 * s.min)
        stds = [s.stddev for s in st if np.isfinite(s.stddev)]
        lines.append("matrix contains no 0s" if n0_entries == 0 else
                     "matrix contains %.2f %% 0 entries"
                     % (n0_entries * 100.0 / max(n * d, 1)))
        lines.append("no constant dimensions" if n_const == 0 else
                     "%d dimensions are constant: they can be removed"
                     % n_const)
        lines.append("no dimension has a too large mean" if n_badmean == 0
                     else "%d dimensions are too large wrt. their variance, "
                     "may lose precision in IndexFlatL2 (use "
                     "CenteringTransform)" % n_badmean)
        if stds:
            lo, hi = min(stds), max(stds)
            lines.append("stddevs per dimension are in [%g %g]" % (lo, hi))
            small = sum(1 for s in stds if s < hi * 1e-4)
            if small:
                lines.append("%d dimensions have negligible stddev wrt. the "
                             "largest dimension, they could be ignored" % small)
        self.comments = "\n".join(lines) + "\n"


class MapLong2Long:
    """int64 -> int64 map (FAISS's MapLong2Long): add(keys, vals),
    search(key) and search_multiple(keys), -1 for a missing key."""

    def __init__(self):
        self.map = {}

    def add(self, keys, vals):
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        vals = np.asarray(vals, dtype=np.int64).reshape(-1)
        if keys.shape != vals.shape:
            raise ValueError("MapLong2Long.add: %d keys, %d values"
                             % (len(keys), len(vals)))
        self.map.update(zip(keys.tolist(), vals.tolist()))

    def search(self, key):
        return self.map.get(int(key), -1)

    def search_multiple(self, keys):
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        return np.array([self.map.get(k, -1) for k in keys.tolist()],
                        dtype=np.int64)


class MapInt64ToInt64:
    """FAISS's fixed-capacity int64 -> int64 hash table: holds at most
    `capacity` keys (>= 0); lookup gives -1 for a missing key."""

    def __init__(self, capacity):
        capacity = int(capacity)
        if capacity <= 0:
            raise ValueError("MapInt64ToInt64: capacity must be > 0, got %d"
                             % capacity)
        self.capacity = capacity
        self._keys = np.zeros(0, np.int64)
        self._vals = np.zeros(0, np.int64)

    def add(self, keys, vals):
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        vals = np.asarray(vals, dtype=np.int64).reshape(-1)
        if keys.shape != vals.shape:
            raise ValueError("MapInt64ToInt64.add: %d keys, %d values"
                             % (len(keys), len(vals)))
        if len(keys) and keys.min() < 0:
            raise ValueError("MapInt64ToInt64.add: keys must be >= 0")
        k = np.concatenate([self._keys, keys])
        v = np.concatenate([self._vals, vals])
        # the last value given for a key wins
        order = np.argsort(k, kind="stable")
        k, v = k[order], v[order]
        last = np.ones(len(k), bool)
        last[:-1] = k[1:] != k[:-1]
        if last.sum() > self.capacity:
            raise RuntimeError("MapInt64ToInt64: %d keys exceed the capacity "
                               "%d" % (last.sum(), self.capacity))
        self._keys, self._vals = k[last], v[last]

    def lookup(self, keys):
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        pos = np.searchsorted(self._keys, keys)
        posc = np.minimum(pos, max(len(self._keys) - 1, 0))
        found = (pos < len(self._keys)) & (
            self._keys[posc] == keys if len(self._keys) else False)
        return np.where(found, self._vals[posc] if len(self._vals) else -1,
                        -1).astype(np.int64)
