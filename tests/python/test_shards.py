"""IndexShards, IndexReplicas, IndexShardsIVF: compared with one index of
the same kind (a sharded exact index answers exactly as one), with FAISS's
classes on the same data, and with numpy's brute force; parameters and
selectors forwarded, errors naming the shard, files, merge_knn_results."""
import gc
import threading

import numpy as np
import pytest

import vecdex

D = 24


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(123)
    xb = rs.rand(4000, D).astype("float32")
    xq = rs.rand(60, D).astype("float32")
    return xb, xq


def flat(metric):
    return vecdex.IndexFlatL2(D) if metric == vecdex.METRIC_L2 else vecdex.IndexFlatIP(D)


@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("threaded", [False, True])
def test_sharded_flat_equals_single(data, metric, threaded):
    xb, xq = data
    one = flat(metric)
    one.add(xb)
    sh = vecdex.IndexShards(D, threaded=threaded)
    subs = [flat(metric) for _ in range(3)]
    for s in subs:
        sh.add_shard(s)
    sh.add(xb)
    assert sh.ntotal == len(xb) and [s.ntotal for s in subs] == [1333, 1333, 1334]
    assert sh.count() == 3 and sh.at(1) is subs[1]
    for k in (1, 10, 1400, 4005):
        D1, I1 = one.search(xq[:5] if k > 100 else xq, k)
        D2, I2 = sh.search(xq[:5] if k > 100 else xq, k)
        np.testing.assert_array_equal(I1, I2)
        # one sgemm over 4000 rows against three over ~1333: OpenBLAS's
        # blocking (its Haswell kernels) can round the last bit differently
        np.testing.assert_allclose(D1, D2, rtol=1e-5, atol=1e-5)
    # the selector reaches every shard in global ids
    sel = vecdex.IDSelectorRange(1000, 2900)
    p = vecdex.SearchParameters(sel=sel)
    D1, I1 = one.search(xq, 10, params=p)
    D2, I2 = sh.search(xq, 10, params=p)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, rtol=1e-5, atol=1e-5)
    assert ((I2 >= 1000) & (I2 < 2900)).all()
    np.testing.assert_array_equal(sh.reconstruct(3999), xb[3999])
    np.testing.assert_array_equal(sh.reconstruct_n(1330, 10), xb[1330:1340])


def test_vs_faiss_shards(data, faiss_ref):
    xb, xq = data
    for successive in (True, False):
        ref = faiss_ref.IndexShards(D, False, successive)
        ours = vecdex.IndexShards(D, False, successive)
        keep = []
        for _ in range(4):
            if successive:
                a, b = faiss_ref.IndexFlatL2(D), vecdex.IndexFlatL2(D)
            else:
                a = faiss_ref.IndexIDMap(faiss_ref.IndexFlatL2(D))
                b = vecdex.IndexIDMap(vecdex.IndexFlatL2(D))
            keep.append(a)
            ref.add_shard(a)
            ours.add_shard(b)
        ref.add(xb)
        ours.add(xb)
        if not successive:  # a second batch continues the ids
            ref.add(xq)
            ours.add(xq)
        assert ours.ntotal == ref.ntotal
        Dr, Ir = ref.search(xq, 20)
        Do, Io = ours.search(xq, 20)
        np.testing.assert_array_equal(Io, Ir)
        np.testing.assert_allclose(Do, Dr, rtol=1e-5, atol=1e-5)
        assert ours.successive_ids == successive


def test_vs_faiss_replicas(data, faiss_ref):
    xb, xq = data
    base = vecdex.index_factory(D, "IVF32,Flat")
    base.train(xb)
    base.add(xb)
    fbase = faiss_ref.deserialize_index(vecdex.serialize_index(base))
    ours, ref = vecdex.IndexReplicas(D), faiss_ref.IndexReplicas(D)
    fkeep = []
    for _ in range(3):
        ours.add_replica(vecdex.clone_index(base))
        c = faiss_ref.clone_index(fbase)
        fkeep.append(c)
        ref.addIndex(c)
    for c in fkeep:
        c.nprobe = 8
    assert ours.ntotal == ref.ntotal == len(xb)
    Dr, Ir = ref.search(xq, 10)
    # FAISS refuses search parameters for replicas; vecdex forwards them
    Do, Io = ours.search(xq, 10, params=vecdex.SearchParametersIVF(nprobe=8))
    np.testing.assert_array_equal(Io, Ir)
    np.testing.assert_allclose(Do, Dr, rtol=1e-5, atol=1e-5)
    D1, I1 = base.search(xq, 10, params=vecdex.SearchParametersIVF(nprobe=8))
    np.testing.assert_array_equal(Io, I1)
    # adds go to every replica
    ours.add(xq)
    assert ours.ntotal == len(xb) + len(xq)
    assert all(ours.at(i).ntotal == ours.ntotal for i in range(3))
    assert isinstance(vecdex.IndexProxy(D), vecdex.IndexReplicas)


def test_shards_ivf_keeps_selector(data, faiss_ref):
    """faiss#5584: FAISS's IndexShardsIVF searches its shards without the
    selector; vecdex's returns what one IVF index with the selector does."""
    xb, xq = data
    nlist = 32
    q = vecdex.IndexFlatL2(D)
    sh = vecdex.IndexShardsIVF(q, nlist, False, False)
    assert sh.quantizer is q
    for _ in range(3):
        sh.add_shard(vecdex.IndexIVFFlat(vecdex.IndexFlatL2(D), D, nlist))
    sh.train(xb)
    assert sh.is_trained and q.ntotal == nlist
    sh.add(xb)
    # the reference: one IVF index with the same centroids
    q1 = vecdex.IndexFlatL2(D)
    q1.add(q.reconstruct_n(0, nlist))
    one = vecdex.IndexIVFFlat(q1, D, nlist)
    one.train(xb)
    one.add(xb)
    sel = vecdex.IDSelectorRange(500, 1500)
    for nprobe in (1, 4, 32):
        p = vecdex.SearchParametersIVF(nprobe=nprobe, sel=sel)
        D1, I1 = one.search(xq, 10, params=p)
        D2, I2 = sh.search(xq, 10, params=p)
        np.testing.assert_array_equal(I1, I2)
        np.testing.assert_allclose(D1, D2, rtol=1e-5, atol=1e-5)
        assert ((I2 == -1) | ((I2 >= 500) & (I2 < 1500))).all()
    # and FAISS, on the same shards, without a selector agrees
    fq = faiss_ref.IndexFlatL2(D)
    fq.add(q.reconstruct_n(0, nlist))
    fsh = faiss_ref.IndexShardsIVF(fq, nlist, False, False)
    fkeep = [faiss_ref.deserialize_index(vecdex.serialize_index(sh.at(i))) for i in range(3)]
    for f in fkeep:
        f.nprobe = 4
        fsh.add_shard(f)
    Dr, Ir = fsh.search(xq, 10)
    Do, Io = sh.search(xq, 10, params=vecdex.SearchParametersIVF(nprobe=4))
    np.testing.assert_array_equal(Io, Ir)


def test_hnsw_shards_forward_efsearch(data):
    xb, xq = data
    sh = vecdex.IndexShards(D, True, True)
    subs = [vecdex.IndexHNSWFlat(D, 16) for _ in range(2)]
    for s in subs:
        sh.add_shard(s)
    sh.add(xb)
    gt = vecdex.knn(xq, xb, 10)[1]
    for ef in (4, 64):
        p = vecdex.SearchParametersHNSW(efSearch=ef)
        D2, I2 = sh.search(xq, 10, params=p)
        # the same as merging the shards' own searches with that efSearch
        parts = [s.search(xq, 10, params=p) for s in subs]
        Dall = np.stack([parts[0][0], parts[1][0]])
        Iall = np.stack([parts[0][1], parts[1][1] + subs[0].ntotal])
        Dm, Im = vecdex.merge_knn_results(Dall, Iall)
        np.testing.assert_array_equal(I2, Im)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I2, gt)])
        if ef == 64:
            assert recall > 0.95


def test_errors_name_the_shard(data):
    xb, xq = data
    sh = vecdex.IndexShards(D, False, False)  # shards must store ids
    sh.add_shard(vecdex.IndexIDMap(vecdex.IndexFlatL2(D)))
    sh.add_shard(vecdex.IndexFlatL2(D))
    with pytest.raises(RuntimeError, match=r"shard 1 of 2 \(IndexFlatL2\) failed"):
        sh.add(xb)
    sh2 = vecdex.IndexShards(D)
    sh2.add_shard(vecdex.IndexFlatL2(D))
    sh2.add_shard(vecdex.IndexRefineFlat(vecdex.IndexFlatL2(D)))
    sh2.add(xb)
    # IndexRefineFlat has range search (stop 30): the shards' equals a flat's
    lims, _, _ = sh2.range_search(xq, 0.5)
    ref = vecdex.IndexFlatL2(D)
    ref.add(xb)
    assert lims[-1] == ref.range_search(xq, 0.5)[0][-1]
    with pytest.raises(ValueError, match="expected d=24"):
        sh2.add_shard(vecdex.IndexFlatL2(D + 1))
    with pytest.raises(ValueError, match="single pass"):
        sh2.add(xb)
    with pytest.raises(ValueError, match="no shards"):
        vecdex.IndexShards(D).search(xq, 1)
    with pytest.raises(ValueError, match="IVF indexes only"):
        vecdex.IndexShardsIVF(vecdex.IndexFlatL2(D), 8).add_shard(vecdex.IndexFlatL2(D))
    f = vecdex.IndexFlatL2(D)
    sh2.add_shard(f)
    with pytest.raises(ValueError, match="already"):
        sh2.add_shard(f)
    with pytest.raises(ValueError, match="already belongs"):
        vecdex.IndexShards(D).add_shard(f)


def test_ownership_and_mutation(data):
    xb, xq = data
    sh = vecdex.IndexShards(D)
    a = vecdex.IndexFlatL2(D)
    sh.add_shard(a)
    with pytest.raises(RuntimeError, match="belongs to a vecdex.IndexShards"):
        a.add(xb)
    sh.add(xb)
    del a
    gc.collect()
    assert sh.at(0).ntotal == len(xb)  # kept alive by the shards
    b = sh.at(0)
    sh.remove_shard(b)
    assert sh.ntotal == 0 and sh.count() == 0
    b.add(xq)  # free again
    assert b.ntotal == len(xb) + len(xq)
    s2 = vecdex.IndexShards(D)
    c = vecdex.IndexFlatL2(D)
    s2.add_shard(c)
    del s2
    gc.collect()
    c.add(xq)  # the shards are gone: c is free
    assert c.ntotal == len(xq)


def test_concurrent_search_and_add(data):
    xb, xq = data
    sh = vecdex.IndexShards(D, True, False)
    for _ in range(3):
        sh.add_shard(vecdex.IndexIDMap2(vecdex.IndexFlatL2(D)))
    sh.add(xb[:1000])
    errors = []

    def searcher():
        try:
            for _ in range(30):
                Dd, I = sh.search(xq, 5)
                assert (I >= 0).all()
                sh.at(1).search(xq, 5)  # a shard searched directly meanwhile
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=searcher) for _ in range(3)]
    for t in ts:
        t.start()
    for i in range(1000, 4000, 300):
        sh.add(xb[i:i + 300])
    for t in ts:
        t.join()
    assert not errors and sh.ntotal == 4000
    D1, I1 = sh.search(xq, 10)
    one = vecdex.IndexFlatL2(D)
    one.add(xb)
    np.testing.assert_array_equal(I1, one.search(xq, 10)[1])


def test_files(data, tmp_path):
    xb, xq = data
    outer = vecdex.IndexShards(D, True)
    inner = vecdex.IndexShards(D)
    inner.add_shard(vecdex.IndexFlatL2(D))
    inner.add_shard(vecdex.IndexHNSWFlat(D, 8))
    outer.add_shard(vecdex.IndexFlatL2(D))
    outer.add_shard(inner)
    outer.add(xb)
    D1, I1 = outer.search(xq, 10)
    path = str(tmp_path / "sharded")
    vecdex.write_index(outer, path)
    back = vecdex.read_index(path)
    assert type(back) is vecdex.IndexShards and back.count() == 2 and back.threaded
    assert type(back.at(1)) is vecdex.IndexShards
    assert type(back.at(1).at(1)) is vecdex.IndexHNSWFlat
    D2, I2 = back.search(xq, 10)
    np.testing.assert_array_equal(I1, I2)
    # a loaded shard behaves as an added one
    s0 = back.at(0)
    back.remove_shard(s0)
    del back
    gc.collect()
    assert s0.ntotal == 2000 and s0.search(xq, 1)[1].shape == (60, 1)
    # each shard is a FAISS file
    import os
    assert os.path.exists(os.path.join(path, "shard-0.faissindex"))
    # IndexShardsIVF and replicas round-trip too
    q = vecdex.IndexFlatL2(D)
    sivf = vecdex.IndexShardsIVF(q, 16)
    for _ in range(2):
        sivf.add_shard(vecdex.IndexIVFFlat(vecdex.IndexFlatL2(D), D, 16))
    sivf.train(xb)
    sivf.add(xb)
    vecdex.write_index_sharded(sivf, str(tmp_path / "sivf"))
    b2 = vecdex.read_index_sharded(str(tmp_path / "sivf"))
    assert type(b2) is vecdex.IndexShardsIVF and b2.quantizer.ntotal == 16
    p = vecdex.SearchParametersIVF(nprobe=4)
    np.testing.assert_array_equal(b2.search(xq, 5, params=p)[1], sivf.search(xq, 5, params=p)[1])
    with pytest.raises(RuntimeError, match="vecdex-sharded 1"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "vecdex-manifest.txt").write_text("vecdex-sharded 7\n")
        vecdex.read_index(str(tmp_path / "bad"))


def test_merge_knn_results(faiss_ref):
    rs = np.random.RandomState(0)
    for keep_max in (False, True):
        Dall = np.sort(rs.rand(5, 40, 8).astype("float32"), axis=2)
        if keep_max:
            Dall = Dall[:, :, ::-1].copy()
        Iall = rs.randint(0, 10 ** 6, size=(5, 40, 8)).astype("int64")
        Iall[2, :, 5:] = -1  # a short list
        Dr, Ir = faiss_ref.merge_knn_results(Dall, Iall, keep_max=keep_max)
        Do, Io = vecdex.merge_knn_results(Dall, Iall, keep_max=keep_max)
        np.testing.assert_array_equal(Io, Ir)
        np.testing.assert_array_equal(Do, Dr)
