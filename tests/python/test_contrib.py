"""vecdex.contrib: datasets (same vectors as faiss's SyntheticDataset),
TEXMEX readers/writers, and evaluation measures, each compared with an
independent numpy implementation (and with faiss where installed)."""
import numpy as np
import pytest

import vecdex
from vecdex.contrib import datasets, evaluation, vecs_io


def test_synthetic_matches_faiss():
    fds = pytest.importorskip("faiss.contrib.datasets")
    for metric, seed in (("L2", 1338), ("IP", 7)):
        a = datasets.SyntheticDataset(24, 300, 1000, 30, metric, seed=seed)
        b = fds.SyntheticDataset(24, 300, 1000, 30, metric, seed=seed)
        np.testing.assert_array_equal(a.get_train(), b.get_train())
        np.testing.assert_array_equal(a.get_database(), b.get_database())
        np.testing.assert_array_equal(a.get_queries(), b.get_queries())
        np.testing.assert_array_equal(a.get_groundtruth(10), b.get_groundtruth(10))
    a.check_sizes()


def test_synthetic_groundtruth_numpy():
    ds = datasets.SyntheticDataset(16, 0, 800, 25)
    xq, xb = ds.get_queries().astype("f8"), ds.get_database().astype("f8")
    d2 = ((xq[:, None] - xb[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ds.get_groundtruth(5),
                                  np.argsort(d2, axis=1)[:, :5])
    assert ds.get_train(0).shape == (0, 16)
    assert "dimension 16" in str(ds)
    with pytest.raises(ValueError):
        datasets.SyntheticDataset(4, 1, 1, 1, metric="cosine")


def test_vecs_roundtrip(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.rand(7, 5).astype("f4")
    i = rs.randint(-5, 1 << 30, size=(4, 3)).astype("i4")
    b = rs.randint(0, 256, size=(6, 9)).astype("u1")
    datasets.fvecs_write(tmp_path / "x.fvecs", x)
    datasets.ivecs_write(tmp_path / "i.ivecs", i)
    vecs_io.bvecs_write(tmp_path / "b.bvecs", b)
    np.testing.assert_array_equal(datasets.fvecs_read(tmp_path / "x.fvecs"), x)
    np.testing.assert_array_equal(datasets.ivecs_read(tmp_path / "i.ivecs"), i)
    np.testing.assert_array_equal(datasets.bvecs_read(tmp_path / "b.bvecs"), b)
    np.testing.assert_array_equal(vecs_io.fvecs_mmap(tmp_path / "x.fvecs"), x)
    # the byte layout by hand: int32 d then the components
    raw = np.fromfile(tmp_path / "x.fvecs", dtype="<i4").reshape(7, 6)
    assert (raw[:, 0] == 5).all()
    np.testing.assert_array_equal(raw[:, 1:].view("<f4"), x)
    fio = pytest.importorskip("faiss.contrib.vecs_io")
    np.testing.assert_array_equal(fio.fvecs_read(str(tmp_path / "x.fvecs")), x)
    np.testing.assert_array_equal(fio.ivecs_read(str(tmp_path / "i.ivecs")), i)


def test_vecs_bad_files(tmp_path):
    x = np.ones((3, 4), "f4")
    datasets.fvecs_write(tmp_path / "x.fvecs", x)
    raw = open(tmp_path / "x.fvecs", "rb").read()
    open(tmp_path / "t.fvecs", "wb").write(raw[:-1])
    with pytest.raises(ValueError, match="truncated"):
        datasets.fvecs_read(tmp_path / "t.fvecs")
    open(tmp_path / "h.fvecs", "wb").write(np.array([-3], "<i4").tobytes())
    with pytest.raises(ValueError, match="dimension"):
        datasets.fvecs_read(tmp_path / "h.fvecs")
    np.array([1, 0, 2, 0, 0], "<i4").tofile(tmp_path / "m.fvecs")
    with pytest.raises(ValueError):
        datasets.fvecs_read(tmp_path / "m.fvecs")


def np_intersection(I1, I2):
    return sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(I1, I2)) / I1.size


def np_ap(ranked, rel):
    rel = set(rel.tolist())
    hits, s = 0, 0.0
    for r, x in enumerate(ranked.tolist()):
        if x in rel:
            hits += 1
            s += hits / (r + 1)
    return s / len(rel)


def test_knn_measures():
    rs = np.random.RandomState(1)
    I1 = rs.randint(0, 30, size=(50, 10))
    I2 = rs.randint(0, 30, size=(50, 10))
    # rows without duplicates, as search results are
    I1 = np.array([rs.permutation(30)[:10] for _ in range(50)])
    I2 = np.array([rs.permutation(30)[:10] for _ in range(50)])
    assert evaluation.knn_intersection_measure(I1, I2) == pytest.approx(
        np_intersection(I1, I2))
    assert evaluation.recall_at_k(I1, I2) == pytest.approx(np_intersection(I1, I2))
    assert evaluation.recall_at_k(I1, I2, 3) == pytest.approx(
        np_intersection(I1[:, :3], I2[:, :3]))
    assert evaluation.recall_at_1(I1, I2) == pytest.approx(
        np.mean([I2[q, 0] in I1[q] for q in range(50)]))
    assert evaluation.recall_at_1(I1, I2, 1) == pytest.approx(
        (I1[:, 0] == I2[:, 0]).mean())
    assert evaluation.mean_average_precision(I1, I2) == pytest.approx(
        np.mean([np_ap(a, b) for a, b in zip(I1, I2)]))
    assert evaluation.mean_average_precision(I2, I2) == pytest.approx(1.0)
    ev = pytest.importorskip("faiss.contrib.evaluation")
    assert evaluation.knn_intersection_measure(I1, I2) == pytest.approx(
        ev.knn_intersection_measure(I1, I2))
    with pytest.raises(ValueError):
        evaluation.knn_intersection_measure(I1, I2[:3])


def np_range(xq, xb, r):
    d2 = ((xq[:, None].astype("f8") - xb[None].astype("f8")) ** 2).sum(-1)
    return [np.flatnonzero(row < r) for row in d2]


def test_range_measures():
    rs = np.random.RandomState(2)
    xb = rs.rand(400, 6).astype("f4")
    xq = rs.rand(15, 6).astype("f4")
    lims, D, I = evaluation.range_ground_truth(xq, xb, 0.2)
    ref = np_range(xq, xb, 0.2)
    assert lims[-1] == sum(len(r) for r in ref)
    for q in range(15):
        assert sorted(I[lims[q]:lims[q + 1]].tolist()) == ref[q].tolist()
    # a smaller radius: perfect precision, partial recall
    l2, D2, I2 = evaluation.filter_range_results(lims, D, I, 0.1)
    ref2 = np_range(xq, xb, 0.1)
    assert l2[-1] == sum(len(r) for r in ref2)
    p, r = evaluation.range_PR(lims, I, l2, I2)
    assert p == pytest.approx(1.0)
    assert r == pytest.approx(sum(map(len, ref2)) / sum(map(len, ref)))
    pa, ra = evaluation.range_PR(lims, I, l2, I2, mode="average")
    ngt = np.array(list(map(len, ref)))
    nres = np.array(list(map(len, ref2)))
    exp = np.where(ngt > 0, nres / np.maximum(ngt, 1), (nres == 0) * 1.0).mean()
    assert pa == pytest.approx(1.0) and ra == pytest.approx(exp)
    ev = pytest.importorskip("faiss.contrib.evaluation")
    for mode in ("overall", "average"):
        assert evaluation.range_PR(lims, I, l2, I2, mode) == pytest.approx(
            ev.range_PR(lims, I, l2, I2, mode))
