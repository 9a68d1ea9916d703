"""ParameterSpace / OperatingPoints / criteria: parameters reach the index
they name through the wrappers, and explore() measures what it says."""
import numpy as np
import pytest

import vecdex


def data():
    rng = np.random.default_rng(11)
    return (rng.random((2000, 16)).astype("float32"),
            rng.random((40, 16)).astype("float32"))


@pytest.mark.parametrize("key", ["IVF16,Flat", "IDMap,IVF16,Flat",
                                 "IVF16,SQ8,RFlat", "PCAR16,IVF16,SQ8,RFlat"])
def test_nprobe_through_wrappers(key):
    xb, xq = data()
    index = vecdex.index_factory(16, key)
    index.train(xb)
    if key.startswith("IDMap"):
        index.add_with_ids(xb, np.arange(len(xb)))
    else:
        index.add(xb)
    ivf = vecdex.extract_index_ivf(index)
    ps = vecdex.ParameterSpace()
    ps.set_index_parameter(index, "nprobe", 3)
    assert ivf.nprobe == 3
    D1, I1 = index.search(xq, 5)
    ivf.nprobe = 16
    ps.set_index_parameters(index, "nprobe=3")
    D2, I2 = index.search(xq, 5)
    np.testing.assert_array_equal(I1, I2)
    with pytest.raises(RuntimeError, match="could not set"):
        ps.set_index_parameter(index, "efSearch", 3)


def test_explore_and_criteria():
    xb, xq = data()
    index = vecdex.index_factory(16, "IVF16,Flat")
    index.train(xb)
    index.add(xb)
    gt = vecdex.knn(xq, xb, 10)[1]
    crit = vecdex.OneRecallAtRCriterion(len(xq), 10)
    crit.set_groundtruth(None, gt)
    ps = vecdex.ParameterSpace()
    ps.initialize(index)
    assert ps.n_combinations() == 5  # nprobe 1, 2, 4, 8, 16
    ops = ps.explore(index, xq, crit)
    assert ops.all_pts.size() == 5
    perfs = {p.key: p.perf for p in ops.all_pts}
    assert perfs["nprobe=16"] == 1.0  # exhaustive: exact
    index.nprobe = 1
    _, I = index.search(xq, 10)
    ref = np.mean([gt[q, 0] in I[q] for q in range(len(xq))])
    assert perfs["nprobe=1"] == pytest.approx(ref)
    inter = vecdex.IntersectionCriterion(len(xq), 10)
    inter.set_groundtruth(None, gt)
    assert inter.evaluate(None, gt) == 1.0
    opt = [ops.optimal_pts.at(i) for i in range(ops.optimal_pts.size())]
    for a, b in zip(opt, opt[1:]):
        assert a.t <= b.t and a.perf < b.perf


def test_operating_points_frontier():
    ops = vecdex.OperatingPoints()
    assert ops.add(0.5, 1.0, "A")
    assert ops.add(0.9, 1.0, "B")
    assert not ops.add(0.4, 2.0, "C")
    keys = [ops.optimal_pts.at(i).key for i in range(ops.optimal_pts.size())]
    assert keys == ["", "B"]
    assert ops.t_for_perf(0.8) == 1.0
