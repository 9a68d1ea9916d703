"""Bad inputs at every entry point: the right exception, never a crash, and
the index left unchanged."""
import numpy as np
import pytest

import vecdex

D = 8


def fresh(kind="flat"):
    if kind == "flat":
        ix = vecdex.IndexFlatL2(D)
        ix.add(np.ones((4, D), np.float32))
    else:
        ix = vecdex.IndexIDMap2(vecdex.IndexFlatL2(D))
        ix.add_with_ids(np.ones((4, D), np.float32), np.arange(4))
    return ix


def entry_points(kind):
    """(name, callable taking the vectors argument) for every x-taking call."""
    return [
        ("train", lambda ix, x: ix.train(x)),
        ("add", (lambda ix, x: ix.add(x)) if kind == "flat"
         else (lambda ix, x: ix.add_with_ids(x, np.arange(len(np.atleast_1d(x)))))),
        ("search", lambda ix, x: ix.search(x, 2)),
        ("range_search", lambda ix, x: ix.range_search(x, 1.0)),
    ]


BAD_SHAPES = [
    np.zeros((3, D - 1), np.float32),
    np.zeros((3, D + 1), np.float32),
    np.zeros(D, np.float32),                # 1-D
    np.zeros((2, 3, D), np.float32),        # 3-D
    np.float32(1.0),                        # 0-d
    [[1.0, 2.0]],
]


@pytest.mark.parametrize("kind", ["flat", "idmap"])
def test_wrong_shapes_raise_value_and_assertion_error(kind):
    ix = fresh(kind)
    for name, call in entry_points(kind):
        for x in BAD_SHAPES:
            with pytest.raises(ValueError):
                call(ix, x)
            with pytest.raises(AssertionError):
                call(ix, x)
            with pytest.raises(vecdex.ShapeError):
                call(ix, x)
    assert ix.ntotal == 4


def test_shape_message_names_expected_and_given():
    ix = vecdex.IndexFlatL2(64)
    with pytest.raises(ValueError, match=r"\(10, 63\).*\(n, 64\)"):
        ix.search(np.zeros((10, 63), np.float32), 1)
    with pytest.raises(ValueError, match=r"\(64,\)"):
        ix.add(np.zeros(64, np.float32))


def test_faiss_raises_assertion_error_too(faiss_ref):
    """The compatibility the ShapeError trick is for."""
    f = faiss_ref.IndexFlatL2(D)
    with pytest.raises(AssertionError):
        f.search(np.zeros((3, D - 1), np.float32), 2)
    with pytest.raises(AssertionError):
        f.search(np.zeros((3, D), np.float32), 0)
    assert issubclass(vecdex.ShapeError, ValueError)
    assert issubclass(vecdex.ShapeError, AssertionError)


@pytest.mark.parametrize("k", [0, -1, -(2**40)])
def test_bad_k(k):
    ix = fresh()
    for exc in (ValueError, AssertionError):
        with pytest.raises(exc, match="k"):
            ix.search(np.zeros((2, D), np.float32), k)
    with pytest.raises(TypeError):
        ix.search(np.zeros((2, D), np.float32), 2.5)
    with pytest.raises((TypeError, OverflowError)):
        ix.search(np.zeros((2, D), np.float32), 2**70)


@pytest.mark.parametrize("kind", ["flat", "idmap"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_rejected(kind, bad):
    ix = fresh(kind)
    x = np.ones((5, D), np.float32)
    x[3, 2] = bad
    for name, call in entry_points(kind)[:2]:       # train, add
        with pytest.raises(ValueError):
            call(ix, x)
        assert ix.ntotal == 4                        # nothing added
    x64 = x.astype(np.float64)
    with pytest.raises(ValueError):
        entry_points(kind)[1][1](ix, x64)
    assert ix.ntotal == 4
    # queries with NaN: vecdex rejects them too (FAISS computes garbage)
    with pytest.raises(ValueError):
        ix.search(x, 2)


def test_unconvertible_inputs():
    ix = fresh()
    for x in (["a", "b"], [[object()] * D], None, {"x": 1}):
        with pytest.raises((ValueError, TypeError)):
            ix.add(x)
        with pytest.raises((ValueError, TypeError)):
            ix.search(x, 1)
    with pytest.raises(ValueError):
        ix.remove_ids(np.zeros((2, 2), np.int64))       # ids must be 1-D
    with pytest.raises(ValueError):
        ix.remove_ids(5)
    with pytest.raises(TypeError):
        ix.range_search(np.ones((1, D)), "far")
    assert ix.ntotal == 4


def test_uninitialised_objects_do_not_crash():
    u = vecdex.IndexFlatL2.__new__(vecdex.IndexFlatL2)
    for call in (lambda: u.ntotal, lambda: u.d, lambda: u.add(np.ones((1, D))),
                 lambda: u.search(np.ones((1, D)), 1), lambda: u.reset(),
                 lambda: u.reconstruct(0), lambda: vecdex.write_index(u, "/tmp/x"),
                 lambda: vecdex.serialize_index(u)):
        with pytest.raises(RuntimeError):
            call()
    with pytest.raises(RuntimeError):
        vecdex.IndexIDMap(u)
    assert "uninitialised" in repr(u)
    ix = vecdex.IndexFlatL2(4)
    with pytest.raises(RuntimeError):
        ix.__init__(4)


def test_bad_constructor_arguments():
    for d in (0, -3, 2**40):
        with pytest.raises(ValueError):
            vecdex.IndexFlatL2(d)
    with pytest.raises(ValueError):
        vecdex.IndexFlat(4, 7)                          # unknown metric
    with pytest.raises(TypeError):
        vecdex.IndexFlatL2("4")
    with pytest.raises(TypeError):
        vecdex.IndexFlatIP()


def test_normalize_L2_errors_like_faiss(faiss_ref):
    cases = [
        (np.ones((3, 4)), TypeError),                              # float64
        (np.ones((4, 3), np.float32).T, ValueError),                # not C-contiguous
        (np.ones((3, 8), np.float32)[:, ::2], ValueError),
    ]
    for x, exc in cases:
        with pytest.raises(exc):
            vecdex.normalize_L2(x)
        with pytest.raises(exc):
            faiss_ref.normalize_L2(x)
    with pytest.raises(ValueError):
        vecdex.normalize_L2(np.ones(4, np.float32))                  # 1-D
    with pytest.raises(TypeError):
        vecdex.normalize_L2([[1.0, 2.0]])
    ro = np.ones((2, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        vecdex.normalize_L2(ro)
    np.testing.assert_array_equal(ro, 1.0)


def test_error_messages_come_from_the_library():
    with pytest.raises(RuntimeError, match="add_with_ids"):
        vecdex.IndexIDMap(vecdex.IndexFlatL2(3)).add(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="VDX_ERR_NOT_FOUND"):
        vecdex.IndexIDMap2(vecdex.IndexFlatL2(3)).reconstruct(1)
    with pytest.raises(ValueError, match="NaN"):
        vecdex.IndexFlatL2(3).add(np.full((1, 3), np.nan))


def test_untrained_index_kinds():
    # every kind bound so far needs no training (IVF will add the
    # "train before add" checks); train is accepted and keeps it trained
    for ix in (vecdex.IndexFlatL2(3), vecdex.IndexIDMap(vecdex.IndexFlatIP(3))):
        assert ix.is_trained
        ix.train(np.ones((2, 3)))
        assert ix.is_trained and ix.ntotal == 0
