"""Hostile and unlucky input (the reliability issue): huge magnitudes,
negative ids, absurd thread counts, Ctrl-C during long calls.

Cases that once crashed or hung run in a child process with a time limit,
so that a regression fails the test instead of killing or stalling the run.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecdex


def run_child(code, timeout=120):
    """Runs `code` in a fresh interpreter; returns (returncode, stdout+err)."""
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def max_magnitude(d):
    return float(np.sqrt(np.finfo(np.float32).max / (32.0 * d)))


# ---- huge magnitudes: refused at the door, with the value and its place ----

def sentinel_data(n=2000, d=32, share=100, seed=0):
    x = np.random.RandomState(seed).rand(n, d).astype("float32")
    x[::share, 5] = 1e20  # a "missing value" sentinel in one column
    return x


TRAINERS = {
    "IVFFlat": lambda d: vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, 32),
    "IVFPQ": lambda d: vecdex.IndexIVFPQ(vecdex.IndexFlatL2(d), d, 16, 4, 8),
    "PQ-dsub16": lambda d: vecdex.IndexPQ(d, 2, 8),
    "SQ8": lambda d: vecdex.IndexScalarQuantizer(d, vecdex.ScalarQuantizer.QT_8bit),
    "HNSWSQ": lambda d: vecdex.IndexHNSWSQ(d, vecdex.ScalarQuantizer.QT_8bit, 16),
    "PQfs": lambda d: vecdex.index_factory(d, "PQ16x4fs"),
    "IVFfs": lambda d: vecdex.index_factory(d, "IVF32,PQ16x4fs"),
}


@pytest.mark.parametrize("kind", sorted(TRAINERS))
@pytest.mark.parametrize("share", [100, 10])
def test_sentinel_training_data_refused(kind, share):
    """Item 1: a 1e20 sentinel in 1% (or 10%) of the rows crashed k-means
    (count[-1]++); now training says which value is too large and leaves
    the index untrained and usable."""
    d = 32
    ix = TRAINERS[kind](d)
    with pytest.raises(ValueError, match=r"too large.*1e\+20 at row 0, column 5"):
        ix.train(sentinel_data(share=share))
    assert not ix.is_trained
    x = np.random.RandomState(1).rand(2000, d).astype("float32")
    ix.train(x)
    ix.add(x)
    D, I = ix.search(x[:5], 3)
    assert (I >= 0).all()


def test_kmeans_object_refuses_sentinels():
    km = vecdex.Kmeans(32, 16, niter=5)
    with pytest.raises(ValueError, match="too large"):
        km.train(sentinel_data())
    km.train(np.random.RandomState(1).rand(1000, 32).astype("float32"))
    assert np.isfinite(km.centroids).all()


@pytest.mark.parametrize("scale", [1e19, 1e38])
def test_huge_data_refused_promptly(scale):
    """Item 2 (1e19: k-means never returned) and item 11 (1e38: every
    result -1): refused with a clear error, in a child with a deadline."""
    rc, out = run_child(f"""
        import numpy as np, vecdex
        x = np.random.RandomState(0).rand(1000, 32).astype('float32') * {scale!r}
        for make in (lambda: vecdex.IndexIVFFlat(vecdex.IndexFlatL2(32), 32, 32),
                     lambda: vecdex.IndexPQ(32, 8, 8),
                     lambda: vecdex.IndexScalarQuantizer(32, vecdex.ScalarQuantizer.QT_8bit),
                     lambda: vecdex.IndexHNSWSQ(32, vecdex.ScalarQuantizer.QT_8bit, 16)):
            ix = make()
            try:
                ix.train(x)
            except ValueError as e:
                assert 'too large' in str(e), e
            else:
                raise SystemExit('trained on ' + repr({scale!r}))
        f = vecdex.IndexFlatL2(32)
        for call in (lambda: f.add(x), lambda: f.search(x[:3], 2)):
            try:
                call()
            except ValueError as e:
                assert 'too large' in str(e), e
            else:
                raise SystemExit('accepted')
        print('ok')
    """, timeout=60)
    assert rc == 0 and "ok" in out, out


@pytest.mark.parametrize("kind", ["Flat", "IVF16,Flat", "PQ8", "SQ8", "HNSW16,SQ8"])
def test_largest_accepted_magnitude_searches_correctly(kind, bf):
    """Just under the limit everything works: no Inf, no -1, and the exact
    kinds return the brute-force neighbours (scale-free data)."""
    d = 32
    lim = max_magnitude(d)
    rs = np.random.RandomState(3)
    base = rs.rand(1500, d)
    x = (base * lim * 0.99).astype("float32")
    ix = vecdex.index_factory(d, kind)
    ix.train(x)
    ix.add(x)
    if kind.startswith("IVF"):
        ix.nprobe = 16
    D, I = ix.search(x[:20], 5)
    assert (I >= 0).all() and np.isfinite(D).all()
    if kind in ("Flat", "IVF16,Flat"):
        Dref, Iref = bf.knn(base[:20], base, 5, vecdex.METRIC_L2)
        np.testing.assert_array_equal(I[:, 0], np.arange(20))
        bf.assert_knn_equal(D / (lim * 0.99) ** 2, I, Dref, Iref, rtol=1e-3, atol=1e-5)
    else:  # approximate: each query finds itself among its 5
        assert np.mean([q in I[q] for q in range(20)]) >= 0.8


def test_magnitude_message_names_limit():
    f = vecdex.IndexFlatL2(4)
    x = np.zeros((3, 4), dtype="float32")
    x[2, 1] = -3e20
    with pytest.raises(ValueError) as e:
        f.add(x)
    msg = str(e.value)
    assert "-3e+20 at row 2, column 1" in msg and "d=4" in msg, msg
    assert f.ntotal == 0


def test_cli_build_refuses_sentinels(tmp_path):
    """`vecdex build` on sentinel data exited 139 (segfault)."""
    import shutil
    exe = os.environ.get("VECDEX_CLI") or shutil.which("vecdex")
    if not exe:
        pytest.skip("vecdex command not installed")
    np.save(tmp_path / "x.npy", sentinel_data())
    p = subprocess.run([exe, "build", "--factory", "IVF32,Flat", "--train",
                        str(tmp_path / "x.npy"), "--add", str(tmp_path / "x.npy"),
                        "-o", str(tmp_path / "o.index")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode in (1, 2), (p.returncode, p.stderr)
    assert "too large" in p.stderr, p.stderr
    assert not (tmp_path / "o.index").exists()


# ---- threads -----------------------------------------------------------------

@pytest.mark.parametrize("n", [32768, 100000, 2**31 - 1])
def test_absurd_thread_counts_clamped(n):
    """Item 3: 32768 threads made libgomp exit the process, 100000 crashed.
    The setting is clamped to 4 per processor (64..1024)."""
    rc, out = run_child(f"""
        import numpy as np, vecdex
        vecdex.omp_set_num_threads({n})
        got = vecdex.omp_get_max_threads()
        assert 64 <= got <= 1024, got
        d = 32
        x = np.random.RandomState(0).rand(2000, d).astype('float32')
        ix = vecdex.IndexHNSWFlat(d, 16)
        ix.add(x)
        D, I = ix.search(x[:100], 5)
        assert (I[:, 0] == np.arange(100)).mean() >= 0.95  # a graph built by many threads
        iv = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, 16)
        iv.train(x)
        iv.add(x)
        iv.search(x[:100], 5)
        print('ok', got)
    """)
    assert rc == 0 and "ok" in out, out


def test_omp_num_threads_environment_clamped():
    env = dict(os.environ, OMP_NUM_THREADS="100000")
    p = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import numpy as np, vecdex
        assert vecdex.omp_get_max_threads() <= 1024
        x = np.random.RandomState(0).rand(3000, 16).astype('float32')
        iv = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(16), 16, 16)
        iv.train(x)
        print('ok')
    """)], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr


# ---- negative ids ------------------------------------------------------------

ID_KINDS = ["IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8", "IVF16,PQ16x4fs",
            "IVF16,PQ16x4fsr", "IDMap,Flat", "IDMap2,HNSW16", "IDMap,PQ8",
            "IDMap,SQ8", "IDMap,LSH"]


@pytest.mark.parametrize("kind", ID_KINDS)
def test_negative_ids_are_results(kind):
    """Item 4: an id < 0 was taken for an empty slot, so negative ids and
    every hit ranked after one vanished.  The same index built with
    positions as ids must give exactly the same hits, mapped."""
    d, n = 32, 3000
    vecdex.omp_set_num_threads(1)  # HNSW: the same graph both times
    rs = np.random.RandomState(5)
    x = rs.rand(n, d).astype("float32")
    xq = rs.rand(40, d).astype("float32")
    hashes = rs.randint(-2**63, 2**63 - 1, size=n, dtype=np.int64)
    hashes[hashes == -1] = -2  # -1 is "no result"
    hashes[::2] = -np.abs(hashes[::2]) - 2  # at least half negative
    a = vecdex.index_factory(d, kind)
    b = vecdex.index_factory(d, kind)
    a.train(x)
    b.train(x)
    a.add_with_ids(x, hashes)
    b.add_with_ids(x, np.arange(n, dtype=np.int64))
    for ix in (a, b):
        if hasattr(ix, "nprobe"):
            ix.nprobe = 4
    for nq in (40, 1):  # batch and single-query paths
        Da, Ia = a.search(xq[:nq], 10)
        Db, Ib = b.search(xq[:nq], 10)
        assert (Ib >= 0).all()
        np.testing.assert_array_equal(Ia, hashes[Ib])
        np.testing.assert_array_equal(Da, Db)


def test_negative_ids_exact_ivf(bf):
    d, n = 16, 2000
    rs = np.random.RandomState(6)
    x = rs.rand(n, d).astype("float32")
    ids = -np.arange(2, n + 2, dtype=np.int64) * 7
    ix = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(d), d, 8)
    ix.train(x)
    ix.add_with_ids(x, ids)
    ix.nprobe = 8
    D, I = ix.search(x[:30], 5)
    Dref, Iref = bf.knn(x[:30], x, 5, vecdex.METRIC_L2, ids=ids)
    bf.assert_knn_equal(D, I, Dref, Iref)
    # range search and remove_ids see them too
    lims, Dr, Ir = ix.range_search(x[:3], 0.05)
    assert set(Ir[lims[0]:lims[1]].tolist()) >= {int(ids[0])}
    assert ix.remove_ids(vecdex.IDSelectorBatch(ids[:10])) == 10
    D2, I2 = ix.search(x[:10], 1)
    assert not set(I2.ravel()) & set(ids[:10].tolist())


def test_id_minus_one_refused():
    ix = vecdex.IndexIDMap(vecdex.IndexFlatL2(4))
    x = np.zeros((3, 4), dtype="float32")
    with pytest.raises(ValueError, match=r"ids\[1\] is -1"):
        ix.add_with_ids(x, np.array([5, -1, 7], dtype=np.int64))
    assert ix.ntotal == 0


# ---- Ctrl-C ------------------------------------------------------------------

@pytest.mark.parametrize("work", ["kmeans", "flat", "ivf", "hnsw", "hnsw_add",
                                  "pq", "sq", "ivfpq_add"])
def test_ctrl_c_interrupts_long_calls(work):
    """Item 2's second half: long C calls let Python see Ctrl-C.  A SIGINT
    sent 0.5 s into a call that would run for minutes raises
    KeyboardInterrupt within seconds, and the index is unchanged."""
    rc, out = run_child(f"""
        import os, signal, threading, time
        import numpy as np, vecdex
        rs = np.random.RandomState(0)
        work = {work!r}
        if work == 'kmeans':
            x = rs.rand(60000, 64).astype('float32')
            obj = vecdex.Kmeans(64, 1024, niter=100000)
            call = lambda: obj.train(x)
        elif work == 'flat':
            obj = vecdex.IndexFlatL2(128)
            obj.add(rs.rand(200000, 128).astype('float32'))
            xq = rs.rand(200000, 128).astype('float32')
            call = lambda: obj.search(xq, 10)
        elif work == 'hnsw':
            obj = vecdex.IndexHNSWFlat(32, 16)
            obj.add(rs.rand(20000, 32).astype('float32'))
            obj.hnsw.efSearch = 512
            xq = rs.rand(2000000, 32).astype('float32')
            call = lambda: obj.search(xq, 10)
        elif work == 'hnsw_add':
            obj = vecdex.IndexHNSWFlat(64, 32)
            obj.add(rs.rand(2000, 64).astype('float32'))
            obj.hnsw.efConstruction = 400
            xq = rs.rand(400000, 64).astype('float32')
            call = lambda: obj.add(xq)
        elif work == 'ivfpq_add':
            obj = vecdex.IndexIVFPQ(vecdex.IndexFlatL2(64), 64, 16, 32, 8)
            obj.train(rs.rand(10000, 64).astype('float32'))
            obj.add(rs.rand(100, 64).astype('float32'))
            xq = rs.rand(1500000, 64).astype('float32')
            call = lambda: obj.add(xq)
        elif work in ('pq', 'sq'):
            obj = (vecdex.IndexPQ(32, 8, 8) if work == 'pq' else
                   vecdex.IndexScalarQuantizer(32, vecdex.ScalarQuantizer.QT_8bit))
            xb = rs.rand(200000, 32).astype('float32')
            obj.train(xb[:10000])
            obj.add(xb)
            xq = rs.rand(200000, 32).astype('float32')
            call = lambda: obj.search(xq, 10)
        else:
            obj = vecdex.IndexIVFFlat(vecdex.IndexFlatL2(64), 64, 16)
            xb = rs.rand(100000, 64).astype('float32')
            obj.train(xb[:5000])
            obj.add(xb)
            obj.nprobe = 16
            xq = rs.rand(300000, 64).astype('float32')
            call = lambda: obj.search(xq, 10)
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.time()
        try:
            call()
        except KeyboardInterrupt:
            print('interrupted after %.2f s' % (time.time() - t0))
        else:
            print('not interrupted after %.2f s' % (time.time() - t0))
        if work == 'kmeans':  # the library still trains afterwards
            again = vecdex.Kmeans(64, 8, niter=2)
            again.train(x[:1000])
            assert np.isfinite(again.centroids).all()
        elif work in ('hnsw_add', 'ivfpq_add'):  # all or nothing
            assert obj.ntotal == (2000 if work == 'hnsw_add' else 100), obj.ntotal
            D, I = obj.search(xq[:5], 3)
            assert (I >= 0).all() and (I < obj.ntotal).all()
        else:
            assert obj.ntotal > 0
            obj.search(xq[:5], 3)  # still usable
        print('ok')
    """, timeout=300)
    assert rc == 0 and "ok" in out, out
    line = [s for s in out.splitlines() if "interrupted" in s][0]
    assert line.startswith("interrupted"), out
    assert float(line.split()[2]) < 5.0, out


# ---- item 9: training a populated index again ----------------------------

def _recall(I, gt):
    return float(np.mean([len(set(a) & set(b)) / len(b)
                          for a, b in zip(I.tolist(), gt.tolist())]))


# (factory string, refused): a second train either changes nothing (as in
# FAISS for IndexPQFastScan, an IVF whose centroids are in place, flat
# storage, trained transforms) or is refused naming the count
RETRAIN = [
    ("PQ8", True), ("PQ8x4fs", False), ("IVF16,Flat", False),
    ("IVF16,PQ8", True), ("IVF16,PQ8x4fs", True), ("IVF16,SQ8", True),
    ("IVF16,SQfp16", False), ("SQ8", True), ("SQfp16", False),
    ("LSHt", True), ("HNSW16", False), ("HNSW16,PQ8", True),
    ("HNSW16,SQ8", True), ("PCA16,IVF16,PQ8", False),
    ("IVF16,PQ8,RFlat", False), ("IDMap,PQ8", True), ("IDMap2,SQ8", True),
    ("IDMap,PQ8x4fs", False), ("Residual16,PQ8", True),
]


@pytest.mark.parametrize("desc,refused", RETRAIN)
def test_retrain_populated_index(desc, refused):
    d, nb = 32, 2000
    rs = np.random.RandomState(0)
    xb = rs.rand(nb, d).astype("float32")
    xq = rs.rand(30, d).astype("float32")
    xt = (rs.rand(nb, d) * 3 - 1).astype("float32")
    gt = ((xq[:, None] - xb[None]) ** 2).sum(-1).argsort(1)[:, :10]
    ix = vecdex.index_factory(d, desc)
    ix.train(xb)
    if desc.startswith("IDMap"):
        ix.add_with_ids(xb, np.arange(nb, dtype=np.int64))
    else:
        ix.add(xb)
    D1, I1 = ix.search(xq, 10)
    r1 = _recall(I1, gt)
    if refused:
        with pytest.raises(RuntimeError,
                           match="index holds 2000 vectors; reset"):
            ix.train(xt)
    else:
        ix.train(xt)
    assert ix.ntotal == nb
    D2, I2 = ix.search(xq, 10)
    assert r1 > 0.1  # 10-NN set overlap of lossy kinds on uniform data
    assert _recall(I2, gt) == r1
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)
    ix.reset()
    ix.train(xt)  # an empty index trains again


def test_retrain_fastscan_matches_faiss():
    """The issue's case: faiss ignores a second train of a populated
    IndexPQFastScan; vecdex gives the same results as faiss before and after
    it (both run the same PQ training, so their recalls agree closely)."""
    faiss = pytest.importorskip("faiss")
    d = 32
    rs = np.random.RandomState(0)
    xb = rs.rand(2000, d).astype("float32")
    xq = rs.rand(20, d).astype("float32")
    xt = rs.rand(2000, d).astype("float32") * 3 - 1
    gt = ((xq[:, None] - xb[None]) ** 2).sum(-1).argsort(1)[:, :10]
    rec = {}
    for lib in (vecdex, faiss):
        ix = lib.IndexPQFastScan(d, 8, 4)
        ix.train(xb)
        ix.add(xb)
        r1 = _recall(ix.search(xq, 10)[1], gt)
        ix.train(xt)
        r2 = _recall(ix.search(xq, 10)[1], gt)
        rec[lib.__name__] = (r1, r2)
    assert rec["vecdex"][0] == rec["vecdex"][1], rec
    assert rec["faiss"][0] == rec["faiss"][1], rec
    assert abs(rec["vecdex"][0] - rec["faiss"][0]) < 0.15, rec


# ---- item 10: the reader checks the invariants it relies on ----------------

def _idmap_ivf_bytes(desc="IDMap,IVF2,Flat"):
    d = 8
    xb = np.random.RandomState(0).rand(40, d).astype("float32")
    ix = vecdex.index_factory(d, desc)
    ix.train(xb)
    ix.add_with_ids(xb, np.arange(40, dtype="int64") * 10 + 1000)
    buf = bytearray(np.asarray(vecdex.serialize_index(ix)).tobytes())
    ids0 = np.asarray(vecdex.extract_index_ivf(ix).invlists.get_ids(0))
    off = bytes(buf).find(np.array(ids0[:2], "<i8").tobytes())
    assert off > 0
    return ix, xb, buf, off, ids0


@pytest.mark.parametrize("desc", ["IDMap,IVF2,Flat", "IDMap2,IVF2,Flat",
                                  "IDMap,IVF2,SQ8", "IDMap,PCA4,IVF2,Flat"])
@pytest.mark.parametrize("bad", ["repeated", "out of range"])
def test_idmap_inner_ids_checked_on_read(desc, bad):
    """The repro of item 10 (shared/repros/repro_5.py): inner IVF ids that
    repeat (or leave 0..ntotal-1) under an IDMap are refused on read, with
    the id and its list, instead of loading and failing later."""
    ix, xb, buf, off, ids0 = _idmap_ivf_bytes(desc)
    # PCA: the codes come first in a list, so the pattern is found too
    val = int(ids0[0]) if bad == "repeated" else 40
    buf[off + 8:off + 16] = np.array([val], "<i8").tobytes()
    with pytest.raises(RuntimeError,
                       match="holds id %d \\(list 0, entry 1\\), %s" %
                       (val, "a second time" if bad == "repeated"
                        else "out of range")):
        vecdex.deserialize_index(np.frombuffer(bytes(buf), dtype="uint8"))


def test_idmap_repeated_user_ids_file_reads_like_faiss(tmp_path):
    """Repeated *user* ids are legitimate (FAISS's IndexIDMap allows them):
    a file faiss wrote with them reads, searches as faiss does, and
    remove_ids removes every copy, as faiss does."""
    faiss = pytest.importorskip("faiss")
    d = 8
    rs = np.random.RandomState(1)
    xb = rs.rand(300, d).astype("float32")
    ids = rs.randint(0, 60, 300).astype("int64")
    for cls in ("IndexIDMap", "IndexIDMap2"):
        q = faiss.IndexFlatL2(d)
        ivf = faiss.IndexIVFFlat(q, d, 4)
        ivf.train(xb)
        f = getattr(faiss, cls)(ivf)
        f.add_with_ids(xb, ids)
        fn = str(tmp_path / (cls + ".index"))
        faiss.write_index(f, fn)
        v = vecdex.read_index(fn)
        assert v.ntotal == 300
        Df, If = f.search(xb[:20], 5)
        Dv, Iv = v.search(xb[:20], 5)
        np.testing.assert_array_equal(If, Iv)
        np.testing.assert_allclose(Df, Dv, rtol=1e-5, atol=1e-6)
        gone = np.array([int(ids[0]), int(ids[1])], dtype="int64")
        nf = f.remove_ids(gone)
        nv = v.remove_ids(gone)
        assert nv == nf == int(np.isin(ids, gone).sum())
        assert v.ntotal == f.ntotal
        # after the removal, exact answers over the survivors (all lists
        # probed); faiss's own IDMap over IVF returns wrong labels here,
        # as it does not renumber the kept positions
        vecdex.extract_index_ivf(v).nprobe = 4
        kept = ~np.isin(ids, gone)
        Dv, Iv = v.search(xb[:40], 5)
        dist = ((xb[:40, None] - xb[None, kept]) ** 2).sum(-1)
        want = np.sort(dist, 1)[:, :5]
        np.testing.assert_allclose(Dv, want, rtol=1e-4, atol=1e-5)
        for i in range(40):
            for j in range(5):
                cand = ids[kept][np.abs(dist[i] - Dv[i, j]) <= 1e-5]
                assert Iv[i, j] in set(cand.tolist())
        # and it still writes and reads back
        v2 = vecdex.deserialize_index(vecdex.serialize_index(v))
        np.testing.assert_array_equal(v2.search(xb[:20], 3)[1],
                                      v.search(xb[:20], 3)[1])


# ---- stored vectors: a file cannot bring in what add refuses ---------------

@pytest.mark.parametrize("desc", ["Flat", "IVF2,Flat", "HNSW8", "IDMap,Flat"])
def test_file_vectors_beyond_magnitude_refused(desc):
    d = 8
    x = np.random.RandomState(0).rand(20, d).astype("float32")
    ix = vecdex.index_factory(d, desc)
    ix.train(x)
    if desc.startswith("IDMap"):
        ix.add_with_ids(x, np.arange(20, dtype="int64"))
    else:
        ix.add(x)
    buf = bytearray(np.asarray(vecdex.serialize_index(ix)).tobytes())
    off = bytes(buf).find(x[5].tobytes())
    assert off > 0
    lim = max_magnitude(d)
    buf[off + 8:off + 12] = np.float32(lim * 1.5).tobytes()   # row 5, col 2
    with pytest.raises(RuntimeError, match=r"value [0-9.e+]+ in .*component "
                       r"2 at offset %d .*too large" % (off + 8)):
        vecdex.deserialize_index(np.frombuffer(bytes(buf), dtype="uint8"))
    with pytest.raises(ValueError, match="too large"):
        ix.add(np.frombuffer(np.float32(lim * 1.5).tobytes() * d,
                             dtype="float32").reshape(1, d))
    buf[off + 8:off + 12] = np.float32(lim).tobytes()           # the bound: ok
    back = vecdex.deserialize_index(np.frombuffer(bytes(buf), dtype="uint8"))
    assert back.ntotal == 20
