"""FAISS's Clustering object: k-means (Lloyd's algorithm) whose assignment
step is a 1-NN search in a caller-given index, as FAISS's
Clustering::train(x, index) runs it:

  sample k training points as initial centroids (points already in
  `centroids` are kept as the first ones); then niter times: index holds
  the centroids, assign every point to its nearest (or most similar, for
  an inner-product index) centroid, move each centroid to the (weighted)
  mean of its points, split a large cluster into any empty one, normalise
  (spherical) or round (int_centroids); stop early when the objective
  changes by at most early_stop_threshold (relative).  nredo runs with
  different seeds; the best objective wins.  On return the index holds the
  centroids.

It is driver code over the index API, not an index: vecdex's own k-means
(Kmeans, IVF training) is the C one in src/cluster/kmeans.c."""
import time

import numpy as np

from ._swig_idioms import _Vector

__all__ = ["Clustering", "ClusteringIterationStats"]


class ClusteringIterationStats:
    """One k-means iteration: obj (sum of the distances the index reports),
    time and time_search (seconds, cumulative), imbalance_factor, nsplit."""

    def __init__(self, obj, t, t_search, imbalance, nsplit):
        self.obj = obj
        self.time = t
        self.time_search = t_search
        self.imbalance_factor = imbalance
        self.nsplit = nsplit

    def __repr__(self):
        return ("ClusteringIterationStats(obj=%g, time=%g, nsplit=%d)"
                % (self.obj, self.time, self.nsplit))


_PARAMS = dict(niter=25, nredo=1, verbose=False, spherical=False,
               int_centroids=False, update_index=False,
               frozen_centroids=False, min_points_per_centroid=39,
               max_points_per_centroid=256, seed=1234,
               decode_block_size=32768, check_input_data_for_NaNs=True,
               use_faster_subsampling=False, early_stop_threshold=0.0)


def _imbalance(counts):
    n = counts.sum()
    return float(len(counts) * (counts.astype(np.float64) ** 2).sum() / n / n) \
        if n else 0.0


class Clustering:
    """Clustering(d, k[, cp]): FAISS's Clustering (cp: a
    ClusteringParameters whose fields are copied)."""

    def __init__(self, d, k, cp=None):
        d, k = int(d), int(k)
        if d <= 0 or k <= 0:
            raise ValueError("Clustering: d=%d and k=%d must be positive"
                             % (d, k))
        self.d, self.k = d, k
        for name, v in _PARAMS.items():
            setattr(self, name, v)
        if cp is not None:
            for name in _PARAMS:
                if hasattr(cp, name):
                    setattr(self, name, type(_PARAMS[name])(getattr(cp, name)))
        self.centroids = np.zeros(0, dtype=np.float32)
        self.iteration_stats = _Vector()

    # -- the one run -------------------------------------------------------
    def _run(self, x, w, index, init, seed, is_sim):
        n, d, k = x.shape[0], self.d, self.k
        rs = np.random.RandomState(seed & 0x7fffffff)
        cent = np.empty((k, d), dtype=np.float32)
        n0 = init.shape[0]
        cent[:n0] = init
        if n0 < k:
            cent[n0:] = x[rs.permutation(n)[:k - n0]]
        if self.spherical:
            cent[n0:] /= np.maximum(
                np.linalg.norm(cent[n0:], axis=1, keepdims=True), 1e-20)
        stats = _Vector()
        t0 = time.time()
        t_search = 0.0

        def load(c):
            index.reset()
            if self.update_index:
                index.train(c)
            index.add(c)

        load(cent)
        for it in range(self.niter):
            ts = time.time()
            D, I = index.search(x, 1)
            t_search += time.time() - ts
            D, I = D[:, 0].astype(np.float64), I[:, 0]
            if (I < 0).any():
                raise RuntimeError("Clustering: the index returned no "
                                   "neighbour for a training point")
            obj = float(np.float32(D.sum()))
            counts = np.bincount(I, minlength=k)
            wsum = np.bincount(I, weights=w, minlength=k)
            acc = np.zeros((k, d), dtype=np.float64)
            np.add.at(acc, I, x.astype(np.float64) * w[:, None])
            new = cent.copy()
            filled = wsum > 0
            new[filled] = (acc[filled] / wsum[filled, None]).astype(np.float32)
            if self.frozen_centroids:
                new[:n0] = init
            nsplit = 0
            # empty clusters take half of a large one (a perturbed copy of
            # its centroid), as FAISS's split_clusters
            for ci in np.nonzero(~filled)[0]:
                if ci < n0 and self.frozen_centroids:
                    continue
                p = wsum / wsum.sum()
                cj = int(rs.choice(k, p=p))
                while wsum[cj] <= 1 and wsum.max() > 1:
                    cj = int(rs.choice(k, p=p))
                eps = np.float32(1.0 / 1024)
                sign = np.where(np.arange(d) % 2 == 0, 1, -1).astype(np.float32)
                base = new[cj].copy()
                new[ci] = base * (1 + eps * sign)
                new[cj] = base * (1 - eps * sign)
                wsum[ci] = wsum[cj] = wsum[cj] / 2
                nsplit += 1
            if self.spherical:
                new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True),
                                  1e-20)
            if self.int_centroids:
                new = np.round(new)
            cent = new.astype(np.float32)
            stats.push_back(ClusteringIterationStats(
                obj, time.time() - t0, t_search, _imbalance(counts), nsplit))
            if self.verbose:
                print("  Iteration %d (%.2f s, search %.2f s): objective=%g "
                      "imbalance=%.3f nsplit=%d"
                      % (it, time.time() - t0, t_search, obj,
                         _imbalance(counts), nsplit))
            load(cent)
            if it > 0:
                prev = stats[-2].obj
                change = (abs(prev - obj) / abs(prev)) if prev != 0 \
                    else float("inf")
                if change <= self.early_stop_threshold:
                    break
        return cent, stats

    def train(self, x, index, weights=None):
        """Clusters the (n, d) float32 points x (optionally weighted);
        `index` (d, empty or not) does the assignment and holds the
        centroids afterwards."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError("Clustering.train: x must be (n, %d), got %s"
                             % (self.d, x.shape))
        if index.d != self.d:
            raise ValueError("Clustering.train: index d=%d, clustering d=%d"
                             % (index.d, self.d))
        n, k = x.shape[0], self.k
        if self.check_input_data_for_NaNs and not np.isfinite(x).all():
            raise ValueError("Clustering.train: x contains NaN or Inf")
        w = np.ones(n) if weights is None else \
            np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != n:
            raise ValueError("Clustering.train: %d weights for %d points"
                             % (w.shape[0], n))
        init = np.asarray(self.centroids, dtype=np.float32).reshape(-1)
        if init.size % self.d or init.size // self.d > k:
            raise ValueError("Clustering.train: %d initial centroid values "
                             "for k=%d, d=%d" % (init.size, k, self.d))
        init = init.reshape(-1, self.d)
        if n < k:
            raise ValueError("Clustering.train: nb of training points %d "
                             "should be at least as large as the number of "
                             "clusters %d" % (n, k))
        if n == k:
            # every point is a centroid
            self.centroids = x.reshape(-1).copy()
            index.reset()
            index.add(x)
            self.iteration_stats = _Vector()
            return
        if n > k * self.max_points_per_centroid:
            perm = np.random.RandomState(self.seed & 0x7fffffff).permutation(n)
            sub = np.sort(perm[:k * self.max_points_per_centroid])
            x, w = x[sub], w[sub]
        from ._metrics import is_similarity_metric
        is_sim = is_similarity_metric(index.metric_type)
        best = None
        for redo in range(max(1, self.nredo)):
            cent, stats = self._run(x, w, index, init,
                                    self.seed + 15486557 * redo, is_sim)
            obj = stats[-1].obj if len(stats) else 0.0
            if best is None or (obj > best[0] if is_sim else obj < best[0]):
                best = (obj, cent, stats)
        self.centroids = best[1].reshape(-1).copy()
        self.iteration_stats = best[2]
        index.reset()
        if self.update_index:
            index.train(best[1])
        index.add(best[1])

    def train_encoded(self, codes, codec, index, weights=None):
        """Clusters vectors given as codes of `codec` (decoded in blocks of
        decode_block_size)."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codec is None:
            x = codes.view(np.float32).reshape(-1, self.d)
        else:
            cs = codec.sa_code_size()
            codes = codes.reshape(-1, cs)
            bs = max(1, int(self.decode_block_size))
            x = np.vstack([codec.sa_decode(codes[i:i + bs])
                           for i in range(0, codes.shape[0], bs)]) \
                if codes.shape[0] else np.zeros((0, self.d), np.float32)
        self.train(x, index, weights)
