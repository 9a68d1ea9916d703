"""Datasets with faiss.contrib.datasets's interface.

SyntheticDataset makes exactly the vectors faiss.contrib.datasets makes for
the same arguments (same generator, same seed), so results can be compared
across the two libraries; its ground truth is computed with vecdex's exact
flat index.
"""
import numpy as np

from .vecs_io import (bvecs_read, fvecs_read, fvecs_write,  # noqa: F401
                      ivecs_read, ivecs_write, bvecs_write)

__all__ = ["Dataset", "SyntheticDataset", "fvecs_read", "ivecs_read",
           "bvecs_read", "fvecs_write", "ivecs_write", "bvecs_write"]


class Dataset:
    """Generic dataset: train, database and query vectors, ground truth."""

    def __init__(self):
        self.d = -1
        self.metric = "L2"
        self.nq = self.nb = self.nt = -1

    def get_queries(self):
        raise NotImplementedError

    def get_train(self, maxtrain=None):
        raise NotImplementedError

    def get_database(self):
        raise NotImplementedError

    def database_iterator(self, bs=128, split=(1, 0)):
        """Blocks of bs database vectors (split=(n, i): i-th of n parts)."""
        xb = self.get_database()
        nsplit, rank = split
        i0, i1 = self.nb * rank // nsplit, self.nb * (rank + 1) // nsplit
        for j0 in range(i0, i1, bs):
            yield xb[j0:min(j0 + bs, i1)]

    def get_groundtruth(self, k=None):
        raise NotImplementedError

    def __str__(self):
        return (f"dataset in dimension {self.d}, with metric {self.metric}, "
                f"size: Q {self.nq} B {self.nb} T {self.nt}")

    def check_sizes(self):
        assert self.get_queries().shape == (self.nq, self.d)
        if self.nt > 0:
            assert self.get_train().shape == (self.nt, self.d)
        assert self.get_database().shape == (self.nb, self.d)


class SyntheticDataset(Dataset):
    """Vectors on a 10-dimensional ellipsoid bent by a sine into d
    dimensions: not uniform and not trivially easy to index."""

    def __init__(self, d, nt, nb, nq, metric="L2", seed=1338):
        Dataset.__init__(self)
        if metric not in ("L2", "IP"):
            raise ValueError(f"metric must be 'L2' or 'IP', got {metric!r}")
        self.d, self.nt, self.nb, self.nq = d, nt, nb, nq
        self.metric = metric
        d1 = 10  # intrinsic dimension
        n = nb + nt + nq
        rs = np.random.RandomState(seed)
        x = rs.normal(size=(n, d1))
        x = np.dot(x, rs.rand(d1, d))
        x = x * (rs.rand(d) * 4 + 0.1)
        x = np.sin(x).astype("float32")
        self.xt = x[:nt]
        self.xb = x[nt:nt + nb]
        self.xq = x[nt + nb:]

    def get_queries(self):
        return self.xq

    def get_train(self, maxtrain=None):
        return self.xt[:maxtrain if maxtrain is not None else self.nt]

    def get_database(self):
        return self.xb

    def get_groundtruth(self, k=100):
        """(nq, k) int64 ids of the exact k nearest database vectors."""
        from .. import knn, METRIC_L2, METRIC_INNER_PRODUCT
        metric = METRIC_L2 if self.metric == "L2" else METRIC_INNER_PRODUCT
        return knn(self.xq, self.xb, k, metric)[1]
