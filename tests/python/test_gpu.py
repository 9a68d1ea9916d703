"""GPU indexes (issue 22), compared with the CPU indexes on the same data.

Without a GPU (CI) only the no-GPU behaviour is checked and the rest skips
with a message.  On a GPU machine (scripts/gpu_check.sh) everything runs; it
also runs on the CPU emulation of the device of a -DVDX_GPU=EMULATE build,
which checks the host code but not the CUDA kernels.
"""
import os
import tempfile

import numpy as np
import pytest

import vecdex

NGPU = vecdex.get_num_gpus()
need_gpu = pytest.mark.skipif(
    NGPU == 0, reason="no GPU: " + vecdex.gpu_info())


def data(n, d, seed):
    rs = np.random.RandomState(seed)
    return rs.rand(n, d).astype("float32")


def clustered(n, d, seed, nc=50):
    rs = np.random.RandomState(seed)
    c = rs.rand(nc, d).astype("float32") * 4
    return (c[rs.randint(nc, size=n)] + rs.rand(n, d).astype("float32")).astype("float32")


def same_up_to_ties(D1, I1, D2, I2, rtol=1e-4):
    """Distances equal to rtol; ids equal except within runs of ties."""
    np.testing.assert_allclose(D1, D2, rtol=rtol, atol=1e-4)
    tol = rtol * (np.abs(D1).max() + 1)
    for q in range(I1.shape[0]):
        for j in np.nonzero(I1[q] != I2[q])[0]:
            near = np.abs(D1[q] - D1[q, j]) <= tol
            assert near.sum() > 1 or j == I1.shape[1] - 1, (q, j, I1[q], I2[q])


def recall(I_ref, I):
    """Share of the reference's results (-1 slots aside) found in I."""
    hit = tot = 0
    for a, b in zip(I_ref, I):
        a = set(a[a >= 0].tolist()) if (a < 0).any() else set(a.tolist())
        hit += len(a & set(b.tolist()))
        tot += len(a)
    return hit / max(tot, 1)


# ---- without a GPU -------------------------------------------------------

def test_num_gpus_and_info():
    assert NGPU >= 0
    assert isinstance(vecdex.gpu_info(), str) and vecdex.gpu_info()


@pytest.mark.skipif(NGPU > 0, reason="a GPU is present")
def test_no_gpu_errors():
    res = vecdex.StandardGpuResources()
    res.setTempMemory(1 << 20)
    res.noTempMemory()
    with pytest.raises(RuntimeError, match="no GPU"):
        vecdex.index_cpu_to_gpu(res, 0, vecdex.IndexFlatL2(8))
    with pytest.raises(RuntimeError, match="no GPU"):
        vecdex.GpuIndexFlatL2(res, 8)
    with pytest.raises(RuntimeError, match="no GPU"):
        vecdex.index_cpu_to_all_gpus(vecdex.IndexFlatL2(8))
    # the classes exist with FAISS's names
    for name in ["GpuIndexFlat", "GpuIndexFlatIP", "GpuIndexIVFFlat",
                 "GpuIndexIVFPQ", "GpuIndexIVFScalarQuantizer",
                 "GpuClonerOptions", "GpuMultipleClonerOptions",
                 "GpuIndexFlatConfig", "GpuIndexIVFPQConfig"]:
        assert hasattr(vecdex, name)


# ---- with a GPU ------------------------------------------------------------

@pytest.fixture(scope="module")
def res():
    return vecdex.StandardGpuResources()


@need_gpu
@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("k", [1, 10, 100, 2048, 3000])
def test_flat_vs_cpu(res, metric, k):
    d, nb, nq = 48, 20000, 64
    xb, xq = data(nb, d, 1), data(nq, d, 2)
    cpu = vecdex.IndexFlat(d, metric)
    cpu.add(xb)
    gpu = vecdex.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(gpu, vecdex.GpuIndexFlat)
    assert gpu.ntotal == nb
    D1, I1 = cpu.search(xq, k)
    D2, I2 = gpu.search(xq, k)
    same_up_to_ties(D1, I1, D2, I2)


@need_gpu
def test_flat_large_k_beyond_faiss(res):
    d, nb = 16, 40000
    xb, xq = data(nb, d, 3), data(5, d, 4)
    g = vecdex.GpuIndexFlatL2(res, d)
    g.add(xb)
    k = min(vecdex.gpu_max_k(0), 16384)
    assert k > 2048
    D, I = g.search(xq, k)
    c = vecdex.IndexFlatL2(d)
    c.add(xb)
    Dc, Ic = c.search(xq, k)
    same_up_to_ties(Dc, Ic, D, I)
    with pytest.raises(ValueError, match="k="):
        g.search(xq, vecdex.gpu_max_k(0) + 1)


@need_gpu
def test_flat_fp16_tiles_and_paging(res):
    d, nb, nq = 64, 150000, 300
    xb, xq = data(nb, d, 5), data(nq, d, 6)
    r = vecdex.StandardGpuResources()
    r.setTempMemory(8 << 20)  # small pool: many tiles and chunks
    cfg = vecdex.GpuIndexFlatConfig()
    cfg.useFloat16 = True
    g = vecdex.GpuIndexFlatL2(r, d, cfg)
    g.add(xb)
    c = vecdex.IndexFlatL2(d)
    c.add(xb)
    Dc, Ic = c.search(xq, 10)
    D, I = g.search(xq, 10)
    assert recall(Ic, I) > 0.95
    np.testing.assert_allclose(D, Dc, rtol=2e-2)
    r2 = vecdex.StandardGpuResources()
    r2.noTempMemory()
    g2 = vecdex.index_cpu_to_gpu(r2, 0, c)
    D2, I2 = g2.search(xq, 10)
    same_up_to_ties(Dc, Ic, D2, I2)


@need_gpu
def test_flat_empty_reset_reconstruct_remove(res):
    d = 8
    g = vecdex.GpuIndexFlatL2(res, d)
    D, I = g.search(data(3, d, 1), 5)
    assert (I == -1).all()
    xb = data(100, d, 2)
    g.add(xb)
    np.testing.assert_array_equal(g.reconstruct(7), xb[7])
    np.testing.assert_array_equal(g.reconstruct_n(10, 5), xb[10:15])
    assert g.remove_ids(np.arange(0, 50, dtype="int64")) == 50
    np.testing.assert_array_equal(g.reconstruct(0), xb[50])
    g.reset()
    assert g.ntotal == 0
    with pytest.raises(RuntimeError, match="IDMap"):
        g.add_with_ids(xb, np.arange(100))


@need_gpu
def test_selector_on_gpu(res):
    d, nb, nq = 16, 5000, 20
    xb, xq = data(nb, d, 7), data(nq, d, 8)
    c = vecdex.IndexFlatL2(d)
    c.add(xb)
    g = vecdex.index_cpu_to_gpu(res, 0, c)
    for sel in [vecdex.IDSelectorRange(100, 900),
                vecdex.IDSelectorBatch(np.arange(0, nb, 7).astype("int64"))]:
        p = vecdex.SearchParameters(sel=sel)
        D1, I1 = c.search(xq, 10, params=p)
        D2, I2 = g.search(xq, 10, params=p)
        same_up_to_ties(D1, I1, D2, I2)


def ivf_cpu(kind, d, nlist, metric=vecdex.METRIC_L2):
    q = vecdex.IndexFlat(d, metric)
    if kind == "flat":
        return vecdex.IndexIVFFlat(q, d, nlist, metric)
    if kind == "pq8":
        return vecdex.IndexIVFPQ(q, d, nlist, 8, 8, metric)
    if kind == "pq4":
        return vecdex.IndexIVFPQ(q, d, nlist, 8, 4, metric)
    if kind == "sq8":
        return vecdex.IndexIVFScalarQuantizer(q, d, nlist, vecdex.ScalarQuantizer.QT_8bit, metric)
    if kind == "sqfp16":
        return vecdex.IndexIVFScalarQuantizer(q, d, nlist, vecdex.ScalarQuantizer.QT_fp16, metric)
    raise ValueError(kind)


@need_gpu
@pytest.mark.parametrize("kind", ["flat", "pq8", "pq4", "sq8", "sqfp16"])
@pytest.mark.parametrize("metric", [vecdex.METRIC_L2, vecdex.METRIC_INNER_PRODUCT])
def test_ivf_vs_cpu(res, kind, metric):
    d, nb, nq, nlist = 32, 20000, 200, 64
    xb, xq = clustered(nb, d, 9), clustered(nq, d, 10)
    cpu = ivf_cpu(kind, d, nlist, metric)
    cpu.train(xb)
    cpu.add(xb)
    for nprobe in [1, 8]:
        cpu.nprobe = nprobe
        g = vecdex.index_cpu_to_gpu(res, 0, cpu)
        assert g.nprobe == nprobe and g.ntotal == nb
        D1, I1 = cpu.search(xq, 10)
        D2, I2 = g.search(xq, 10)
        assert recall(I1, I2) >= 0.99, (kind, nprobe, recall(I1, I2))
        # the same lists are probed: the candidates' distances agree
        np.testing.assert_allclose(np.sort(D1, 1)[:, 0], np.sort(D2, 1)[:, 0],
                                   rtol=1e-2, atol=1e-3)


@need_gpu
def test_ivfpq_options(res):
    d, nb, nq, nlist = 32, 10000, 100, 32
    xb, xq = clustered(nb, d, 11), clustered(nq, d, 12)
    cpu = ivf_cpu("pq8", d, nlist)
    cpu.train(xb)
    cpu.add(xb)
    cpu.nprobe = 4
    D1, I1 = cpu.search(xq, 10)
    for fp16, pre, ind in [(True, False, vecdex.INDICES_64_BIT),
                           (False, True, vecdex.INDICES_32_BIT),
                           (True, True, vecdex.INDICES_CPU)]:
        co = vecdex.GpuClonerOptions()
        co.useFloat16 = fp16
        co.usePrecomputed = pre
        co.indicesOptions = ind
        g = vecdex.index_cpu_to_gpu(res, 0, cpu, co)
        D2, I2 = g.search(xq, 10)
        assert recall(I1, I2) >= 0.97, (fp16, pre, ind)
    co = vecdex.GpuClonerOptions()
    co.indicesOptions = vecdex.INDICES_IVF
    g = vecdex.index_cpu_to_gpu(res, 0, cpu, co)
    _, I3 = g.search(xq, 10)
    assert ((I3 >> 32) < nlist).all()


@need_gpu
def test_ivf_built_on_gpu(res):
    d, nb, nq = 32, 20000, 100
    xb, xq = clustered(nb, d, 13), clustered(nq, d, 14)
    for g in [vecdex.GpuIndexIVFFlat(res, d, 64, vecdex.METRIC_L2),
              vecdex.GpuIndexIVFPQ(res, d, 64, 8, 8, vecdex.METRIC_L2),
              vecdex.GpuIndexIVFScalarQuantizer(res, d, 64, vecdex.ScalarQuantizer.QT_8bit,
                                                vecdex.METRIC_L2, True)]:
        assert not g.is_trained
        g.train(xb)
        g.add_with_ids(xb, np.arange(nb, dtype="int64") * 3)
        g.nprobe = 16
        D, I = g.search(xq, 10)
        assert (I % 3 == 0).all()
        c = vecdex.index_gpu_to_cpu(g)
        c.nprobe = 16
        Dc, Ic = c.search(xq, 10)
        assert recall(Ic, I) >= 0.99
        sel = vecdex.IDSelectorRange(0, 3 * nb // 2)
        _, Is = g.search(xq, 10, params=vecdex.SearchParametersIVF(sel=sel, nprobe=16))
        assert ((Is == -1) | (Is < 3 * nb // 2)).all()
        assert g.remove_ids(np.arange(0, 3 * 100, 3, dtype="int64")) == 100
        assert g.ntotal == nb - 100
        g.reset()
        assert g.ntotal == 0


@need_gpu
def test_file_from_gpu_readable_by_faiss(res, faiss_ref):
    d, nb = 32, 5000
    xb, xq = clustered(nb, d, 15), clustered(50, d, 16)
    for kind in ["flat", "pq8", "sq8"]:
        cpu = ivf_cpu(kind, d, 32)
        cpu.train(xb)
        cpu.add(xb)
        cpu.nprobe = 8
        g = vecdex.index_cpu_to_gpu(res, 0, cpu)
        back = vecdex.index_gpu_to_cpu(g)
        with tempfile.TemporaryDirectory() as t:
            path = os.path.join(t, "x.index")
            vecdex.write_index(back, path)
            f = faiss_ref.read_index(path)
        f.nprobe = 8
        assert f.ntotal == nb
        D1, I1 = cpu.search(xq, 10)
        D2, I2 = f.search(xq, 10)
        assert recall(I1, I2) >= 0.99


@need_gpu
def test_wrappers_stay_on_cpu(res):
    d, nb = 16, 3000
    xb, xq = data(nb, d, 17), data(20, d, 18)
    idm = vecdex.IndexIDMap2(vecdex.IndexFlatL2(d))
    idm.add_with_ids(xb, np.arange(nb, dtype="int64") * 10 + 5)
    g = vecdex.index_cpu_to_gpu(res, 0, idm)
    assert isinstance(g, vecdex.IndexIDMap2)
    assert isinstance(g.index, vecdex.GpuIndexFlat)
    D1, I1 = idm.search(xq, 5)
    D2, I2 = g.search(xq, 5)
    same_up_to_ties(D1, I1, D2, I2)
    np.testing.assert_array_equal(g.reconstruct(15), xb[1])
    back = vecdex.index_gpu_to_cpu(g)
    assert isinstance(back, vecdex.IndexIDMap2)
    assert isinstance(back.index, vecdex.IndexFlatL2)
    pca = vecdex.index_factory(d, "PCA8,Flat")
    pca.train(xb)
    pca.add(xb)
    gp = vecdex.index_cpu_to_gpu(res, 0, pca)
    assert isinstance(gp, vecdex.IndexPreTransform)
    D1, I1 = pca.search(xq, 5)
    D2, I2 = gp.search(xq, 5)
    same_up_to_ties(D1, I1, D2, I2, rtol=1e-3)


@need_gpu
def test_unsupported_kind_named(res):
    h = vecdex.IndexHNSWFlat(8, 16)
    with pytest.raises(RuntimeError, match="IndexHNSWFlat"):
        vecdex.index_cpu_to_gpu(res, 0, h)
    with pytest.raises(ValueError, match="device 99"):
        vecdex.index_cpu_to_gpu(res, 99, vecdex.IndexFlatL2(8))


@need_gpu
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_replicas_and_shards_on_one_gpu(kind):
    d, nb, nq = 16, 6000, 50
    xb, xq = clustered(nb, d, 19), clustered(nq, d, 20)
    if kind == "flat":
        cpu = vecdex.IndexFlatL2(d)
    else:
        cpu = ivf_cpu("flat", d, 32)
        cpu.train(xb)
        cpu.nprobe = 32  # exhaustive: shards must give the CPU's results
    cpu.add(xb)
    D1, I1 = cpu.search(xq, 10)
    res2 = [vecdex.StandardGpuResources(), vecdex.StandardGpuResources()]
    for shard in [False, True]:
        for shard_type in ([1, 2, 4] if kind == "ivf" and shard else [1]):
            co = vecdex.GpuMultipleClonerOptions()
            co.shard = shard
            co.shard_type = shard_type
            m = vecdex.index_cpu_to_gpu_multiple_py(res2, cpu, co, gpus=[0, 0])
            assert m.ntotal == nb and m.count() == 2
            assert type(m).__name__ == ("IndexShards" if shard else "IndexReplicas")
            D2, I2 = m.search(xq, 10)
            same_up_to_ties(D1, I1, D2, I2)
            back = vecdex.index_gpu_to_cpu(m)
            assert back.ntotal == nb
            if kind == "ivf":
                back.nprobe = 32
            D3, I3 = back.search(xq, 10)
            same_up_to_ties(D1, I1, D3, I3)
    all_ = vecdex.index_cpu_to_all_gpus(cpu)
    assert all_.ntotal == nb


@need_gpu
def test_bad_input(res):
    g = vecdex.GpuIndexFlatL2(res, 8)
    with pytest.raises(ValueError):
        g.add(np.full((2, 8), np.nan, dtype="float32"))
    with pytest.raises(vecdex.ShapeError):
        g.add(np.zeros((2, 7), dtype="float32"))
    g.add(data(10, 8, 1))
    with pytest.raises(vecdex.ShapeError):
        g.search(data(2, 8, 1), 0)
    with pytest.raises(ValueError):
        vecdex.GpuIndexFlatL2(res, 0)
    with pytest.raises(RuntimeError, match="nbits=6"):
        vecdex.GpuIndexIVFPQ(res, 32, 16, 8, 6, vecdex.METRIC_L2)
    with pytest.raises(RuntimeError, match="6-bit"):
        vecdex.GpuIndexIVFScalarQuantizer(res, 32, 16, vecdex.ScalarQuantizer.QT_6bit,
                                          vecdex.METRIC_L2, True)
    ivf = vecdex.GpuIndexIVFFlat(res, 8, 16, vecdex.METRIC_L2)
    with pytest.raises(RuntimeError, match="trained"):
        ivf.add(data(10, 8, 2))


@need_gpu
def test_device_out_of_memory_is_an_error():
    free = None
    if "EMULATION" in vecdex.gpu_info().upper():
        pytest.skip("the emulated device's memory is fixed at start "
                    "(VECDEX_GPU_EMU_MEMORY)")
    res = vecdex.StandardGpuResources()
    g = vecdex.GpuIndexFlatL2(res, 1024)
    x = np.zeros((1 << 16, 1024), dtype="float32")  # 256 MiB a batch
    with pytest.raises(MemoryError, match="out of device memory"):
        for _ in range(100000):  # until the device is full
            g.add(x)
    del free
    g.reset()
    g.add(x[:10])
    assert g.search(x[:2], 1)[1][0, 0] >= 0


@need_gpu
def test_knn_gpu(res):
    d = 24
    xb, xq = data(30000, d, 21), data(40, d, 22)
    D, I = vecdex.knn_gpu(res, xq, xb, 20)
    Dc, Ic = vecdex.knn(xq, xb, 20)
    same_up_to_ties(Dc, Ic, D, I)


@need_gpu
def test_tutorial_4_gpu(res):
    """The FAISS wiki's "Running on GPUs" tutorial, unchanged."""
    faiss = vecdex
    d, nb, nq = 64, 100000, 100
    np.random.seed(1234)
    xb = np.random.random((nb, d)).astype('float32')
    xb[:, 0] += np.arange(nb) / 1000.
    xq = np.random.random((nq, d)).astype('float32')
    xq[:, 0] += np.arange(nq) / 1000.
    index_flat = faiss.IndexFlatL2(d)
    gpu_index_flat = faiss.index_cpu_to_gpu(res, 0, index_flat)
    gpu_index_flat.add(xb)
    k = 4
    D, I = gpu_index_flat.search(xq, k)
    Dc, Ic = vecdex.knn(xq, xb, k)
    same_up_to_ties(Dc, Ic, D, I)
    nlist = 100
    quantizer = faiss.IndexFlatL2(d)
    index_ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
    gpu_index_ivf = faiss.index_cpu_to_gpu(res, 0, index_ivf)
    assert not gpu_index_ivf.is_trained
    gpu_index_ivf.train(xb)
    assert gpu_index_ivf.is_trained
    gpu_index_ivf.add(xb)
    D, I = gpu_index_ivf.search(xq, k)
    assert recall(Ic, I) > 0.5
    cpu_index = faiss.IndexFlatL2(d)
    gpu_index = faiss.index_cpu_to_all_gpus(cpu_index)
    gpu_index.add(xb)
    D, I = gpu_index.search(xq, k)
    same_up_to_ties(Dc, Ic, D, I)


@need_gpu
def test_constructors_from_cpu(res):
    d = 16
    xb, xq = clustered(3000, d, 23), clustered(20, d, 24)
    c = vecdex.IndexFlatIP(d)
    c.add(xb)
    cfg = vecdex.GpuIndexFlatConfig()
    cfg.device = 0
    for g in [vecdex.GpuIndexFlat(res, c, cfg), vecdex.GpuIndexFlatIP(res, c),
              vecdex.GpuIndexFlat(res, d, vecdex.METRIC_INNER_PRODUCT)]:
        if g.ntotal == 0:
            g.add(xb)
        assert g.metric_type == vecdex.METRIC_INNER_PRODUCT and g.getDevice() == 0
        same_up_to_ties(*c.search(xq, 5), *g.search(xq, 5))
    ivf = ivf_cpu("flat", d, 16)
    ivf.train(xb)
    ivf.add(xb)
    g = vecdex.GpuIndexIVFFlat(res, ivf)
    assert g.ntotal == 3000 and g.nlist == 16
    q = vecdex.IndexFlatL2(d)
    g2 = vecdex.GpuIndexIVFFlat(res, q, d, 16, vecdex.METRIC_L2)
    assert not g2.is_trained
