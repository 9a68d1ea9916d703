"""Clustering helpers with faiss.contrib.clustering's names, written for
vecdex (a subset: kmeans on an in-memory array, imbalance_factor,
DatasetAssign)."""
import numpy as np

import vecdex

__all__ = ["kmeans", "imbalance_factor", "DatasetAssign"]


def imbalance_factor(k, assign):
    """k * sum(n_i^2) / n^2 over the cluster sizes n_i: 1 when balanced."""
    h = np.bincount(np.asarray(assign).ravel(), minlength=k).astype(float)
    n = h.sum()
    return float(k * (h ** 2).sum() / (n * n)) if n else 1.0


class DatasetAssign:
    """A dataset in memory that can be assigned to centroids."""

    def __init__(self, x):
        self.x = np.ascontiguousarray(x, dtype="float32")

    def count(self):
        return self.x.shape[0]

    def dim(self):
        return self.x.shape[1]

    def get_subset(self, indices):
        return self.x[indices]

    def perform_search(self, centroids):
        return vecdex.knn(self.x, centroids, 1)

    def assign_to(self, centroids, weights=None):
        D, I = self.perform_search(centroids)
        I = I.ravel()
        D = D.ravel()
        nc, d = centroids.shape
        sum_per_centroid = np.zeros((nc, d), dtype="float32")
        w = np.ones(len(I), "float32") if weights is None else weights
        np.add.at(sum_per_centroid, I, self.x * w[:, None])
        return I, D, sum_per_centroid


def kmeans(k, data, niter=25, seed=1234, checkpoint=None, verbose=False,
           return_stats=False):
    """k-means of the rows of data (a DatasetAssign or an array) with
    vecdex.Kmeans: returns the (k, d) centroids."""
    x = data.x if isinstance(data, DatasetAssign) else \
        np.ascontiguousarray(data, dtype="float32")
    km = vecdex.Kmeans(x.shape[1], k, niter=niter, seed=seed,
                       verbose=verbose)
    km.train(x)
    if return_stats:
        return km.centroids, {"obj": list(km.obj)}
    return km.centroids
