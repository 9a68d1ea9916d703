"""FAISS's IndexFlat1D: exact search on scalars (d = 1) through a sorted
permutation of the database.  A query finds its place by binary search and
its k neighbours lie in the k entries on either side of it, so a search
costs O(log n + k) instead of O(n).  As in FAISS the distances it returns
are |x - y| (not squared, unlike IndexFlatL2's search); range_search and
the rest are IndexFlatL2's."""
import numpy as np

from . import _vecdex

__all__ = ["IndexFlat1D"]


class IndexFlat1D(_vecdex.IndexFlatL2):
    """IndexFlat1D(continuous_update=True): with continuous_update False,
    call update_permutation() between the last add and the first search."""

    def __init__(self, continuous_update=True):
        super().__init__(1)
        self.continuous_update = bool(continuous_update)
        self.perm = np.zeros(0, dtype=np.int64)
        self._sorted = np.zeros(0, dtype=np.float32)

    def update_permutation(self):
        xb = self.reconstruct_n(0, self.ntotal).reshape(-1) if self.ntotal \
            else np.zeros(0, dtype=np.float32)
        self.perm = np.argsort(xb, kind="stable").astype(np.int64)
        self._sorted = xb[self.perm]

    def add(self, x):
        super().add(x)
        if self.continuous_update:
            self.update_permutation()

    def reset(self):
        super().reset()
        self.perm = np.zeros(0, dtype=np.int64)
        self._sorted = np.zeros(0, dtype=np.float32)

    def search(self, x, k, params=None, D=None, I=None):
        if params is not None:
            raise RuntimeError("IndexFlat1D: search params not supported")
        k = int(k)
        if k <= 0:
            raise ValueError("IndexFlat1D.search: k must be > 0, got %d" % k)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != 1:
            raise ValueError("IndexFlat1D.search: expected x of shape (n, 1), "
                             "got %s" % (x.shape,))
        if not np.isfinite(x).all():
            raise ValueError("IndexFlat1D.search: x holds NaN or Inf")
        if len(self.perm) != self.ntotal:
            raise RuntimeError("IndexFlat1D: call update_permutation before "
                               "search (%d sorted of %d)"
                               % (len(self.perm), self.ntotal))
        q = x[:, 0]
        n, nb = len(q), len(self._sorted)
        Dout = np.full((n, k), np.inf, dtype=np.float32)
        Iout = np.full((n, k), -1, dtype=np.int64)
        if nb:
            # the k nearest are among the k sorted entries each side of q
            pos = np.searchsorted(self._sorted, q, side="right")
            off = np.arange(-k, k)
            cand = pos[:, None] + off[None, :]
            valid = (cand >= 0) & (cand < nb)
            cc = np.clip(cand, 0, nb - 1)
            dist = np.abs(q[:, None] - self._sorted[cc])
            dist[~valid] = np.inf
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]
            dsel = np.take_along_axis(dist, order, axis=1)
            isel = self.perm[np.take_along_axis(cc, order, axis=1)]
            Dout[:] = dsel
            Iout[:] = np.where(np.isfinite(dsel), isel, -1)
        if D is not None:
            D[...] = Dout
        if I is not None:
            I[...] = Iout
        return Dout, Iout
