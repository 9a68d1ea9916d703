"""Kmeans: FAISS's Python k-means object over vdx_kmeans_train, checked
against numpy (assignment, objective) and against FAISS (objective)."""
import warnings

import numpy as np
import pytest

import vecdex


def blobs(rng, n, d, centers=12, spread=0.3):
    """Gaussian blobs: a clustering with a clear optimum."""
    c = rng.standard_normal((centers, d)) * 3
    lab = rng.integers(0, centers, size=n)
    return (c[lab] + spread * rng.standard_normal((n, d))).astype(np.float32)


def sqdist(x, c):
    x = x.astype(np.float64)
    c = c.astype(np.float64)
    return np.maximum((x ** 2).sum(1)[:, None] + (c ** 2).sum(1)[None] - 2 * x @ c.T, 0)


def train(km, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return km.train(x)


def test_train_fills_centroids_obj_and_index(rng):
    d, k, niter = 8, 10, 12
    x = blobs(rng, 2000, d)
    km = vecdex.Kmeans(d, k, niter=niter)
    assert km.centroids is None and km.obj is None
    assert km.d == d and km.k == k and km.niter == niter and km.cp.niter == niter
    assert km.nredo == 1 and km.seed == 1234 and not km.spherical and not km.verbose
    assert km.max_points_per_centroid == 256 and km.min_points_per_centroid == 39
    assert type(km.index) is vecdex.IndexFlatL2 and km.index.ntotal == 0
    final = km.train(x)
    assert km.centroids.shape == (k, d) and km.centroids.dtype == np.float32
    assert km.obj.shape == (niter,) and km.obj.dtype == np.float64     # as FAISS
    assert final == pytest.approx(km.obj[-1])
    assert len(km.iteration_stats) == niter
    assert km.iteration_stats[-1]["obj"] == pytest.approx(km.obj[-1])
    # the objective never goes up (Lloyd), and does go down
    assert np.all(np.diff(km.obj) <= 1e-4 * km.obj[:-1])
    assert km.obj[-1] < km.obj[0]
    # obj is the sum of squared distances to the nearest centroid: with the
    # centroids moved once more, numpy finds at most the last value
    ref = sqdist(x, km.centroids).min(1).sum()
    assert ref <= km.obj[-1] * (1 + 1e-4)
    assert ref >= km.obj[-1] * 0.9
    # the index holds the centroids, as FAISS leaves it
    assert km.index.ntotal == k
    np.testing.assert_array_equal(km.index.reconstruct_n(0, k), km.centroids)


def test_assign_vs_numpy(rng, faiss_ref):
    d, k = 6, 7
    x = blobs(rng, 700, d, centers=7)
    km = vecdex.Kmeans(d, k, niter=10)
    with pytest.raises(RuntimeError, match="train"):
        km.assign(x)
    train(km, x)
    D, I = km.assign(x[:100])
    assert D.shape == I.shape == (100,) and D.dtype == np.float32 and I.dtype == np.int64
    dist = sqdist(x[:100], km.centroids)
    np.testing.assert_array_equal(I, dist.argmin(1))
    np.testing.assert_allclose(D, dist.min(1), rtol=1e-4, atol=1e-4)
    # FAISS's Kmeans.assign on the same centroids
    fk = faiss_ref.Kmeans(d, k)
    fk.centroids = km.centroids
    Df, If = fk.assign(x[:100])
    np.testing.assert_array_equal(I, If)


def test_deterministic_for_a_seed_whatever_the_threads(rng):
    d, k = 8, 16
    x = blobs(rng, 3000, d, centers=20)
    runs = []
    for seed, threads in [(7, 1), (7, 2), (7, 0), (8, 0)]:
        vecdex.omp_set_num_threads(threads)
        km = vecdex.Kmeans(d, k, niter=8, seed=seed)
        train(km, x)
        runs.append((km.centroids, km.obj))
    for c, o in runs[1:3]:
        np.testing.assert_array_equal(c, runs[0][0])
        np.testing.assert_array_equal(o, runs[0][1])
    assert not np.array_equal(runs[3][0], runs[0][0])


def test_nredo_keeps_the_best_run(rng):
    d, k, niter, nredo = 8, 15, 6, 3
    x = blobs(rng, 2000, d, centers=20)
    km = vecdex.Kmeans(d, k, niter=niter, nredo=nredo, seed=3)
    train(km, x)
    assert km.obj.shape == (niter * nredo,)
    last = km.obj[niter - 1::niter]
    ref = sqdist(x, km.centroids).min(1).sum()
    assert ref <= last.min() * (1 + 1e-4)
    single = vecdex.Kmeans(d, k, niter=niter, seed=3)
    train(single, x)
    np.testing.assert_allclose(km.obj[:niter], single.obj, rtol=1e-6)   # run 0 = seed


def test_spherical(rng):
    d, k = 10, 8
    x = blobs(rng, 1500, d)
    vecdex.normalize_L2(x)
    km = vecdex.Kmeans(d, k, niter=10, spherical=True)
    assert km.spherical and type(km.index) is vecdex.IndexFlatIP
    train(km, x)
    np.testing.assert_allclose(np.linalg.norm(km.centroids, axis=1), 1, rtol=1e-5)
    # the objective is a total similarity: it goes up
    assert km.obj[-1] > km.obj[0]
    assert np.all(np.diff(km.obj) >= -1e-4 * np.abs(km.obj[:-1]))
    D, I = km.assign(x[:50])
    np.testing.assert_array_equal(I, (x[:50] @ km.centroids.T).argmax(1))


def test_warnings_and_errors(rng):
    d, k = 4, 10
    x = rng.standard_normal((100, d)).astype(np.float32)
    km = vecdex.Kmeans(d, k, niter=3)
    with pytest.warns(UserWarning, match=r"clustering 100 points to 10 centroids: "
                                         r"please provide at least 390 training points"):
        km.train(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vecdex.Kmeans(d, k, niter=3, min_points_per_centroid=5).train(x)   # enough now
        vecdex.Kmeans(d, 2, niter=3).train(x)
    with pytest.raises(vecdex.InvalidArgumentError, match="n >= k") as e:
        vecdex.Kmeans(d, k).train(x[:9])                # n < k
    assert isinstance(e.value, ValueError) and isinstance(e.value, RuntimeError)
    assert km.centroids is not None                     # a failed call kept nothing
    with pytest.raises(AssertionError):                 # ShapeError, as FAISS asserts
        km.train(x[:, :3])
    with pytest.raises(NotImplementedError):
        km.train(x, weights=np.ones(100, dtype=np.float32))
    with pytest.raises(NotImplementedError):
        km.train(x, init_centroids=x[:k])
    with pytest.raises(ValueError):
        vecdex.Kmeans(0, 3)
    with pytest.raises(ValueError):
        vecdex.Kmeans(d, k, niter=0).train(x)
    with pytest.raises(vecdex.InvalidArgumentError):
        bad = x.copy()
        bad[3, 1] = np.inf
        vecdex.Kmeans(d, 2).train(bad)
    # FAISS's keyword parameters that vecdex does not use are kept
    km = vecdex.Kmeans(d, 2, gpu=False, int_centroids=False, update_index=True)
    assert km.gpu is False and km.update_index is True
    with pytest.raises(TypeError):
        vecdex.Kmeans(d, 2, niter="many")


def test_subsampling_and_verbose(rng, capsys):
    d, k = 4, 3
    x = rng.standard_normal((1000, d)).astype(np.float32)
    km = vecdex.Kmeans(d, k, niter=2, max_points_per_centroid=50, verbose=True)
    km.train(x)
    out = capsys.readouterr().out
    assert "Clustering 1000 points in 4D to 3 clusters" in out
    assert "150 / 1000" in out
    km.reset(5)
    assert km.k == 5 and km.centroids is None and km.obj is None
    km.verbose = False
    train(km, x)
    assert km.centroids.shape == (5, d) and km.index.ntotal == 5
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("spherical", [False, True])
def test_objective_comparable_to_faiss(rng, faiss_ref, spherical):
    d, k, niter = 16, 32, 20
    x = rng.standard_normal((4000, d)).astype(np.float32)
    if spherical:
        vecdex.normalize_L2(x)
    v = vecdex.Kmeans(d, k, niter=niter, seed=1234, spherical=spherical)
    f = faiss_ref.Kmeans(d, k, niter=niter, seed=1234, spherical=spherical)
    train(v, x)
    f.train(x)
    assert v.obj.shape == f.obj.shape
    # different random draws, so not equal, but as good
    assert abs(v.obj[-1] - f.obj[-1]) <= 0.05 * abs(f.obj[-1])
    # and the centroids as good for FAISS's own assignment
    fv = faiss_ref.IndexFlatIP(d) if spherical else faiss_ref.IndexFlatL2(d)
    fv.add(v.centroids)
    Dv, _ = fv.search(x, 1)
    assert abs(Dv.sum() - f.obj[-1]) <= 0.05 * abs(f.obj[-1])


def test_ivf_training_uses_the_same_kmeans(rng):
    """IndexIVFFlat.train runs k-means with FAISS's IVF defaults (niter=10,
    seed 1234): Kmeans with those settings gives the same centroids."""
    d, nlist = 8, 16
    x = blobs(rng, 2000, d)
    ix = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, nlist)
    ix.train(x)
    km = vecdex.Kmeans(d, nlist, niter=10, seed=1234)
    train(km, x)
    np.testing.assert_array_equal(ix.quantizer.reconstruct_n(0, nlist), km.centroids)


def test_same_seed_same_centroids_as_faiss(faiss_ref):
    """The sample and the initial centroids are drawn as FAISS draws them,
    so the same seed gives FAISS's centroids (up to float rounding)."""
    x = np.random.default_rng(0).standard_normal((5000, 16)).astype("float32")
    for seed in (1234, 7):
        kf = faiss_ref.Kmeans(16, 20, niter=10, seed=seed)
        kf.train(x)
        kv = vecdex.Kmeans(16, 20, niter=10, seed=seed)
        kv.train(x)
        np.testing.assert_allclose(kv.centroids, kf.centroids, rtol=1e-4, atol=1e-4)
