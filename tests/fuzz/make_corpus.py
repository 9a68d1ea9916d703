#!/usr/bin/env python3
"""Write a seed corpus for the index-reader fuzz target, using FAISS itself.

    make_corpus.py OUTDIR             golden files + more valid files written by
                                      faiss + corrupted and hostile variants
    make_corpus.py --golden OUTDIR    only the golden files that are
                                      committed under tests/fuzz/corpus/ and
                                      checked value by value in tests/c/test_io.c
                                      (flat, IDMap), tests/c/test_io_ivf.c
                                      (IndexIVFFlat), tests/c/test_io_hnsw.c
                                      (IndexHNSWFlat, IndexHNSWSQ),
                                      tests/c/test_io_sq.c
                                      (IndexScalarQuantizer, IVF-SQ) and
                                      tests/c/test_io_pq.c (IndexPQ, IVF-PQ),
                                      tests/c/test_fastscan.c (IndexPQFastScan,
                                      IndexIVFPQFastScan) and
                                      tests/c/test_io_transform.c
                                      (IndexPreTransform) and
                                      tests/c/test_io_2layer.c
                                      (Index2Layer, IndexHNSW2Level)
    make_corpus.py --check FILE...    load files (e.g. written by vecdex) with
                                      faiss and print what faiss sees

Everything is deterministic: vectors are small arange()s (exact in float32),
ids are fixed lists.  Keep GOLDEN in sync with tests/c/test_io.c and
IVF_GOLDEN with tests/c/test_io_ivf.c.
"""
import os
import struct
import sys

import numpy as np
import faiss

D = 4


def vecs(scale, offset):
    return (np.arange(3 * D, dtype="float32") * scale + offset).reshape(3, D)


# name -> (builder, vectors, ids or None); the C test mirrors these values.
GOLDEN = {
    "flat_l2_d4_n3.index": ("IxF2", vecs(1.0, 0.0), None),
    "flat_ip_d4_n3.index": ("IxFI", vecs(0.25, -1.0), None),
    "idmap_ip_d4_n3.index": ("IxMp", vecs(0.5, -3.0), [1000, 7, 123456789012]),
    "idmap2_l2_d4_n3.index": ("IxM2", vecs(1.0, 100.0), [5, 3, 9]),
}


# IndexIVFFlat goldens: d=4, nlist=4, 10 vectors of small integers (exact),
# centroids placed so that no vector is near a tie between two lists.
def ivf_vecs(mul):
    i = np.arange(10)[:, None]
    j = np.arange(D)[None, :]
    return (((i * mul + j * 3) % 11) - 5).astype("float32")


def ivf_centroids(far):
    l = np.arange(4)[:, None]
    j = np.arange(D)[None, :]
    c = ((((l * 5 + j * 2) % 7) - 3) * 1.5).astype("float32")
    if far:  # lists 2 and 3 stay empty: FAISS writes a "sprs" size table
        c[2:] += 100
    return c


# name -> (metric, vecs mul, far centroids, ids or None, direct map, nprobe)
IVF_GOLDEN = {
    "ivfflat_l2_d4_n10.index": (faiss.METRIC_L2, 7, False, None, False, 1),
    "ivfflat_l2_dm_d4_n10.index": (faiss.METRIC_L2, 5, True, None, True, 4),
    "ivfflat_ip_d4_n10.index": (faiss.METRIC_INNER_PRODUCT, 3, False,
                                [5, 3, 9, 1000, 7, 123456789012, 42, 0, 11,
                                 64], False, 2),
}


# Scalar-quantizer goldens (tests/c/test_io_sq.c): name -> (qtype, metric,
# vectors); IndexScalarQuantizer trained on and holding the vectors.
SQ_GOLDEN = {
    "sq8_l2_d4_n3.index": (faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2,
                           vecs(1.0, 0.0)),
    "sqfp16_ip_d4_n3.index": (faiss.ScalarQuantizer.QT_fp16,
                              faiss.METRIC_INNER_PRODUCT, vecs(0.25, -1.0)),
}
# IndexIVFScalarQuantizer (QT_8bit, by_residual) over the IVF golden shape
IVFSQ_GOLDEN = "ivfsq8_l2_d4_n10.index"


def build_sq(qtype, metric, x):
    ix = faiss.IndexScalarQuantizer(D, qtype, metric)
    ix.train(x)
    ix.add(x)
    return ix


def build_ivfsq():
    q = faiss.IndexFlatL2(D)
    q.add(ivf_centroids(False))
    ivf = faiss.IndexIVFScalarQuantizer(q, D, 4, faiss.ScalarQuantizer.QT_8bit)
    ivf.train(ivf_vecs(7))
    ivf.add(ivf_vecs(7))
    ivf.nprobe = 2
    return ivf


# Product-quantizer goldens (tests/c/test_io_pq.c): fixed centroids
# (centroid j of sub-quantizer m is (m * ksub + j) * 0.5 + (0, 0.25)), so the
# files do not depend on k-means.  name -> (nbits, metric)
PQ_GOLDEN = {
    "pq3_l2_d4_n3.index": (3, faiss.METRIC_L2),
    "pq8_ip_d4_n3.index": (8, faiss.METRIC_INNER_PRODUCT),
}
IVFPQ_GOLDEN = "ivfpq3_l2_d4_n10.index"


def pq_centroids(nbits):
    ksub = 1 << nbits
    c = np.arange(2 * ksub, dtype="float32").repeat(2) * 0.5
    c[1::2] += 0.25
    return c


def set_pq(pq, nbits):
    faiss.copy_array_to_vector(pq_centroids(nbits), pq.centroids)


def build_pq(nbits, metric):
    ix = faiss.IndexPQ(D, 2, nbits, metric)
    set_pq(ix.pq, nbits)
    ix.is_trained = True
    ix.add(vecs(1.0, 0.0))
    return ix


def build_ivfpq():
    q = faiss.IndexFlatL2(D)
    q.add(ivf_centroids(False))
    ivf = faiss.IndexIVFPQ(q, D, 4, 2, 3)
    set_pq(ivf.pq, 3)
    ivf.is_trained = True
    ivf.add(ivf_vecs(7))
    ivf.nprobe = 2
    return ivf


# 4-bit fast-scan goldens (tests/c/test_fastscan.c): the same fixed
# centroids with nbits = 4, codes packed in FAISS's blocks of bbs vectors.
PQFS_GOLDEN = "pqfs_l2_d4_n3.index"
IVFPQFS_GOLDEN = {
    "ivfpqfs_l2_d4_n10.index": False,     # by_residual off (FAISS's default)
    "ivfpqfsr_l2_d4_n10.index": True,     # "fsr"
}


def build_pqfs():
    ix = faiss.IndexPQFastScan(D, 2, 4, faiss.METRIC_L2, 32)
    set_pq(ix.pq, 4)
    ix.is_trained = True
    ix.add(vecs(1.0, 0.0))
    return ix


def build_ivfpqfs(by_residual):
    q = faiss.IndexFlatL2(D)
    q.add(ivf_centroids(False))
    ivf = faiss.IndexIVFPQFastScan(q, D, 4, 2, 4)
    ivf.by_residual = by_residual
    set_pq(ivf.pq, 4)
    ivf.is_trained = True
    ivf.add(ivf_vecs(7))
    ivf.nprobe = 2
    return ivf


def build_ivf(metric, mul, far, ids, dm, nprobe, empty=False):
    q = faiss.IndexFlat(D, metric)  # the python wrapper keeps it alive
    q.add(ivf_centroids(far))
    ivf = faiss.IndexIVFFlat(q, D, 4, metric)
    assert ivf.is_trained  # the quantizer holds the nlist centroids
    x = ivf_vecs(mul)
    if empty:
        pass
    elif ids is None:
        ivf.add(x)
    else:
        ivf.add_with_ids(x, np.array(ids, dtype="int64"))
    if dm:
        ivf.make_direct_map()
    ivf.nprobe = nprobe
    return ivf


def build(kind, x, ids):
    if kind == "IxF2":
        ix = faiss.IndexFlatL2(D)
    elif kind == "IxFI":
        ix = faiss.IndexFlatIP(D)
    elif kind == "IxMp":
        ix = faiss.IndexIDMap(faiss.IndexFlatIP(D))
    elif kind == "IxM2":
        ix = faiss.IndexIDMap2(faiss.IndexFlatL2(D))
    else:
        raise ValueError(kind)
    if ids is None:
        ix.add(x)
    else:
        ix.add_with_ids(x, np.array(ids, dtype="int64"))
    return ix


# HNSW goldens (tests/c/test_io_hnsw.c): IndexHNSWFlat / IndexHNSWSQ with
# M=4 over 20 vectors of small integers, built with one thread (FAISS's
# build is then deterministic).
def hnsw_vecs():
    i = np.arange(20)[:, None]
    j = np.arange(D)[None, :]
    return (((i * 7 + j * 5) % 13) - 6).astype("float32")


HNSW_GOLDEN = {
    "hnswflat_l2_d4_n20.index": ("IHNf", faiss.METRIC_L2),
    "hnswflat_ip_d4_n20.index": ("IHNf", faiss.METRIC_INNER_PRODUCT),
    "hnswsq8_l2_d4_n20.index": ("IHNs", faiss.METRIC_L2),
}


def build_hnsw(kind, metric):
    faiss.omp_set_num_threads(1)
    x = hnsw_vecs()
    if kind == "IHNf":
        ix = faiss.IndexHNSWFlat(D, 4, metric)
    else:
        ix = faiss.IndexHNSWSQ(D, faiss.ScalarQuantizer.QT_8bit, 4, metric)
        ix.train(x)
    ix.add(x)
    return ix


# Two-level goldens (tests/c/test_io_2layer.c): Index2Layer (nlist=3,
# M=2, nbit=2) and IndexHNSW2Level (nlist=3, m_pq=2, nbit 8, M=4) over
# hnsw_vecs(), with centroids set by formula (exact in float32, no
# training) so that the C test can recompute every code; no vector is
# near a tie (checked here).
TWOLEVEL_GOLDEN = {
    "ix2l_l2_d4_n20.index": ("Ix2L", 2),
    "hnsw2l_l2_d4_n20.index": ("IHN2", 8),
}


_KEEP = []


def twolevel_centroids(nbit):
    qc = np.array([[(l - 1) * 4 + 0.25 * j + 0.125 for j in range(D)]
                   for l in range(3)], dtype="float32")
    K = 1 << nbit
    pc = np.array([[[((k * 5 + c * 3 + m) % 11 - 5) * 0.5 + 0.03125 * k
                     for c in range(2)] for k in range(K)] for m in range(2)],
                  dtype="float32")
    return qc, pc


def check_no_ties(x, qc, pc):
    for xi in x:
        dq = np.sort(((qc - xi) ** 2).sum(1))
        assert dq[1] - dq[0] > 1e-3, (xi, dq[:2])
        r = xi - qc[np.argmin(((qc - xi) ** 2).sum(1))]
        for m in range(2):
            dp = np.sort(((pc[m] - r[2 * m:2 * m + 2]) ** 2).sum(1))
            assert dp[1] - dp[0] > 1e-3, (xi, m, dp[:2])


def build_twolevel(kind, nbit):
    faiss.omp_set_num_threads(1)
    x = hnsw_vecs()
    qc, pc = twolevel_centroids(nbit)
    check_no_ties(x, qc, pc)
    q = faiss.IndexFlatL2(D)
    q.add(qc)
    if kind == "Ix2L":
        ix = faiss.Index2Layer(q, 3, 2, nbit)
        st = ix
    else:
        ix = faiss.IndexHNSW2Level(q, 3, 2, 4)
        st = faiss.downcast_index(ix.storage)
    faiss.copy_array_to_vector(pc.ravel(), st.pq.centroids)
    st.is_trained = True
    ix.is_trained = True
    ix.add(x)
    _KEEP.append(q)  # FAISS's index does not own its quantizer
    return ix


def ser(ix):
    return faiss.serialize_index(ix).tobytes()


def write(outdir, name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)


def golden(outdir):
    out = {}
    for name, (kind, x, ids) in GOLDEN.items():
        data = ser(build(kind, x, ids))
        assert data[:4] == kind.encode(), (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    for name, args in IVF_GOLDEN.items():
        data = ser(build_ivf(*args))
        assert data[:4] == b"IwFl", (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    for name, args in SQ_GOLDEN.items():
        data = ser(build_sq(*args))
        assert data[:4] == b"IxSQ", (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    for name, args in PQ_GOLDEN.items():
        data = ser(build_pq(*args))
        assert data[:4] == b"IxPq", (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    data = ser(build_ivfpq())
    assert data[:4] == b"IwPQ", data[:4]
    write(outdir, IVFPQ_GOLDEN, data)
    out[IVFPQ_GOLDEN] = data
    data = ser(build_ivfsq())
    assert data[:4] == b"IwSq", data[:4]
    write(outdir, IVFSQ_GOLDEN, data)
    out[IVFSQ_GOLDEN] = data
    for name, kind in PT_GOLDEN.items():
        data = ser(build_pt(kind))
        assert data[:4] == b"IxPT", (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    for name, args in HNSW_GOLDEN.items():
        data = ser(build_hnsw(*args))
        assert data[:4] == args[0].encode(), (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    data = ser(build_pqfs())
    assert data[:4] == b"IPfs", data[:4]
    write(outdir, PQFS_GOLDEN, data)
    out[PQFS_GOLDEN] = data
    for name, by_residual in IVFPQFS_GOLDEN.items():
        data = ser(build_ivfpqfs(by_residual))
        assert data[:4] == b"IwPf", (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    for name, args in TWOLEVEL_GOLDEN.items():
        data = ser(build_twolevel(*args))
        assert data[:4] == args[0].encode(), (name, data[:4])
        write(outdir, name, data)
        out[name] = data
    out.update(aq_golden(outdir))
    return out


# IndexPreTransform goldens (tests/c/test_io_transform.c): every transform
# fourcc vecdex reads, over small sub-indexes.  Vectors are exact in float32.
def pt_vecs(n, d):
    i = np.arange(n)[:, None]
    j = np.arange(d)[None, :]
    return (((i * 7 + j * 5) % 13) - 6).astype("float32") * 0.5


def build_pt(kind):
    x = pt_vecs(8, D)
    if kind == "pca":  # Pcam: PCAMatrix(4, 2) trained on 8 vectors
        vt = faiss.PCAMatrix(D, 2)
        vt.train(pt_vecs(32, D))
        ix = faiss.IndexPreTransform(vt, faiss.IndexFlatL2(2))
    elif kind == "ltra":  # LTra: a signed permutation with a bias
        vt = faiss.LinearTransform(D, D, True)
        A = np.array([[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]],
                     dtype="float32")
        faiss.copy_array_to_vector(A.ravel(), vt.A)
        faiss.copy_array_to_vector(np.array([1, 2, 3, 4], dtype="float32"),
                                   vt.b)
        vt.is_trained = True
        ix = faiss.IndexPreTransform(vt, faiss.IndexFlatL2(D))
    elif kind == "rrnorm":  # VNrm then rrot (4 -> 6), inner product
        rr = faiss.RandomRotationMatrix(D, 6)
        rr.init(1)
        ix = faiss.IndexPreTransform(rr, faiss.IndexFlatIP(6))
        ix.prepend_transform(faiss.NormalizationTransform(D))
    elif kind == "center":  # VCnt over an IDMap
        vt = faiss.CenteringTransform(D)
        vt.train(pt_vecs(32, D))
        ix = faiss.IndexPreTransform(vt, faiss.IndexIDMap(faiss.IndexFlatL2(D)))
        ix.add_with_ids(x, np.arange(8, dtype="int64") * 10 + 5)
        return ix
    else:
        raise ValueError(kind)
    ix.add(x)
    return ix


PT_GOLDEN = {
    "pt_pca_flat_d4_n8.index": "pca",
    "pt_ltra_flat_d4_n8.index": "ltra",
    "pt_norm_rr_ip_d4_n8.index": "rrnorm",
    "pt_center_idmap_d4_n8.index": "center",
}


# Offsets inside a flat index: fourcc 0, d 4, ntotal 8, dummies 16 and 24,
# is_trained 32, metric 33, float count 37, floats 45.
def patched(data, off, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


# NSG / NN-descent seeds (nsg_io.c): IndexNSGFlat (R=4, exact 4-NN graph)
# over 60 random vectors, IndexNNDescentFlat (K=4) over 120, and
# hostile variants: a link outside [0, ntotal), a row without its -1, a
# graph entry out of range, files cut short.
def nsg_vecs(n):
    # distinct points in general position: on a lattice with many equal
    # distances FAISS's connectivity repair can search forever for a node
    # with room (seen with faiss 1.15)
    return np.random.RandomState(n).rand(n, D).astype("float32")


def nsg_full(outdir):
    faiss.omp_set_num_threads(1)
    ix = faiss.IndexNSGFlat(D, 4)
    ix.build_type = 0
    ix.GK = 4
    ix.add(nsg_vecs(60))  # more than its pool L = R + 32: FAISS needs it
    a = ser(ix)
    write(outdir, "nsgflat_l2_d4_n60.index", a)
    g0 = 37 + 21 + 24 + 1  # header, IndexNSG fields, NSG ints, is_built
    write(outdir, "bad_nsg_link.index", patched(a, g0, "<i", 60))
    write(outdir, "bad_nsg_R.index", patched(a, 37 + 21 + 4, "<i", 1 << 30))
    write(outdir, "bad_nsg_norow_end.index", patched(a, 37 + 21 + 4, "<i", 1))
    write(outdir, "bad_nsg_truncated.index", a[: g0 + 40])
    nd = faiss.IndexNNDescentFlat(D, 4)
    nd.add(nsg_vecs(120))
    b = ser(nd)
    write(outdir, "nndflat_l2_d4_n120.index", b)
    write(outdir, "bad_nnd_graph.index", patched(b, 37 + 37 + 8, "<i", 120))
    write(outdir, "bad_nnd_truncated.index", b[: 37 + 37 + 100])


def full(outdir):
    g = golden(outdir)
    nsg_full(outdir)
    aq_full(outdir, g)
    aq_fs_full(outdir)
    aq_ivffs_full(outdir)
    l2 = g["flat_l2_d4_n3.index"]
    m1 = g["idmap_ip_d4_n3.index"]
    m2 = g["idmap2_l2_d4_n3.index"]

    # more valid files
    write(outdir, "valid_flat_empty.index", ser(faiss.IndexFlatL2(8)))
    ix = faiss.IndexFlatIP(1)
    ix.add(np.arange(5, dtype="float32").reshape(5, 1))
    write(outdir, "valid_flat_d1.index", ser(ix))
    ix = faiss.IndexFlatL2(16)
    ix.add(np.random.RandomState(0).rand(6, 16).astype("float32"))
    write(outdir, "valid_flat_d16.index", ser(ix))
    write(outdir, "valid_idmap_empty.index",
          ser(faiss.IndexIDMap(faiss.IndexFlatL2(3))))
    write(outdir, "valid_idmap2_empty.index",
          ser(faiss.IndexIDMap2(faiss.IndexFlatIP(3))))
    # a metric vecdex does not support (FAISS writes metric_arg after it)
    ix = faiss.IndexFlat(D, faiss.METRIC_L1)
    ix.add(vecs(1.0, 0.0))
    write(outdir, "unsupported_flat_l1.index", ser(ix))
    ix = faiss.IndexFlat(D, faiss.METRIC_Lp)
    ix.metric_arg = 3.0
    ix.add(vecs(1.0, 0.0))
    write(outdir, "unsupported_flat_lp.index", ser(ix))
    # IndexIVFFlat beyond the goldens (tests/c/test_io_ivf.c covers these
    # shapes too): nlist 1, empty, untrained, no lists, inside an IDMap
    q = faiss.IndexFlatL2(D)
    ivf = faiss.IndexIVFFlat(q, D, 1)
    ivf.train(vecs(1.0, 0.0))
    ivf.add(vecs(1.0, 0.0))
    write(outdir, "valid_ivfflat_nlist1.index", ser(ivf))
    write(outdir, "valid_ivfflat_empty.index",
          ser(build_ivf(faiss.METRIC_L2, 7, False, None, True, 2, empty=True)))
    write(outdir, "valid_ivfflat_untrained.index",
          ser(faiss.IndexIVFFlat(faiss.IndexFlatIP(D), D, 3,
                                 faiss.METRIC_INNER_PRODUCT)))
    ivf = build_ivf(faiss.METRIC_L2, 7, False, None, False, 1, empty=True)
    ivf.replace_invlists(None, False)
    write(outdir, "valid_ivfflat_il00.index", ser(ivf))
    ivf = faiss.IndexIDMap(build_ivf(faiss.METRIC_L2, 5, True, None, False, 1, empty=True))
    ivf.add_with_ids(ivf_vecs(5), np.arange(10, dtype="int64") * 1000 + 1)
    write(outdir, "valid_idmap_ivfflat.index", ser(ivf))
    # valid FAISS that vecdex does not handle
    ivf = build_ivf(faiss.METRIC_L2, 7, False, None, False, 1)
    ivf.replace_invlists(None, False)  # ntotal stays 10
    write(outdir, "unsupported_ivfflat_il00_ntotal.index", ser(ivf))
    ivf = build_ivf(faiss.METRIC_L2, 5, False, None, False, 1)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    write(outdir, "unsupported_ivfflat_hashtable.index", ser(ivf))
    qh = faiss.IndexHNSWFlat(D, 8)
    qh.add(ivf_centroids(False))
    ivf = faiss.IndexIVFFlat(qh, D, 4)
    ivf.add(ivf_vecs(7))
    write(outdir, "valid_ivfflat_hnsw_quantizer.index", ser(ivf))

    # truncations
    for n in (0, 1, 3, 4, 12, 36, 37, 41, 44, 45, 60, len(l2) - 1):
        write(outdir, "trunc_flat_%d.index" % n, l2[:n])
    for n in (45, 90, len(m1) - 8, len(m1) - 1):
        write(outdir, "trunc_idmap_%d.index" % n, m1[:n])

    # hostile headers
    write(outdir, "bad_ntotal_huge.index", patched(l2, 8, "<q", 1 << 40))
    write(outdir, "bad_ntotal_max.index", patched(l2, 8, "<q", (1 << 63) - 1))
    write(outdir, "bad_ntotal_neg.index", patched(l2, 8, "<q", -3))
    write(outdir, "bad_d_zero.index", patched(l2, 4, "<i", 0))
    write(outdir, "bad_d_neg.index", patched(l2, 4, "<i", -4))
    write(outdir, "bad_d_huge.index", patched(l2, 4, "<i", 1 << 30))
    write(outdir, "bad_count_small.index", patched(l2, 37, "<Q", 11))
    write(outdir, "bad_count_huge.index", patched(l2, 37, "<Q", 1 << 62))
    write(outdir, "bad_trained.index", patched(l2, 32, "<B", 2))
    write(outdir, "bad_metric.index", patched(l2, 33, "<i", 7))
    write(outdir, "bad_metric_neg.index", patched(l2, 33, "<i", -1))
    write(outdir, "bad_nan.index", patched(l2, 45 + 4 * 5, "<f", float("nan")))
    write(outdir, "bad_inf.index", patched(l2, 45, "<f", float("inf")))
    write(outdir, "bad_fourcc.index", b"IwXY" + l2[4:])
    write(outdir, "bad_fourcc_binary.index", b"\x00\xff\x01\x80" + l2[4:])
    # IDMap: header at 0..37, nested flat at 37, ids count at len - 32
    write(outdir, "bad_idmap_ntotal.index", patched(m1, 8, "<q", 2))
    write(outdir, "bad_idmap_d.index", patched(m1, 4, "<i", 5))
    write(outdir, "bad_idmap_metric.index", patched(m1, 33, "<i", 1))
    write(outdir, "bad_idmap_count.index", patched(m1, len(m1) - 32, "<Q", 4))
    write(outdir, "bad_idmap2_count.index",
          patched(m2, len(m2) - 32, "<Q", 1 << 61))
    # IndexIVFFlat: header 0..37, nlist 37, nprobe 45, quantizer at 53
    # (109 bytes for d=4, nlist=4), direct map at 162, then "ilar" with
    # nlist +4, code_size +12, size table type +20, its count +24, table +32
    full_l = g["ivfflat_l2_d4_n10.index"]    # "full" table, no direct map
    sprs_dm = g["ivfflat_l2_dm_d4_n10.index"]  # "sprs" table + direct map
    il_f, il_s = full_l.find(b"ilar"), sprs_dm.find(b"ilar")
    assert (il_f, il_s) == (171, 251)
    for n in (37, 45, 53, 100, 162, 163, 171, il_f + 20, il_f + 40,
              il_f + 64, len(full_l) - 8, len(full_l) - 1):
        write(outdir, "trunc_ivf_%d.index" % n, full_l[:n])
    for n in (200, il_s, il_s + 30, len(sprs_dm) - 100):
        write(outdir, "trunc_ivf_dm_%d.index" % n, sprs_dm[:n])
    write(outdir, "bad_ivf_nlist0.index", patched(full_l, 37, "<Q", 0))
    write(outdir, "bad_ivf_nlist_huge.index", patched(full_l, 37, "<Q", 1 << 40))
    write(outdir, "bad_ivf_nlist5.index", patched(full_l, 37, "<Q", 5))
    write(outdir, "valid_ivf_nprobe0.index", patched(full_l, 45, "<Q", 0))
    write(outdir, "valid_ivf_nprobe_huge.index",
          patched(full_l, 45, "<Q", (1 << 64) - 1))
    write(outdir, "bad_ivf_quantizer_d.index", patched(full_l, 57, "<i", 3))
    write(outdir, "bad_ivf_quantizer_ntotal.index",
          patched(full_l, 61, "<q", 3))
    write(outdir, "bad_ivf_ntotal.index", patched(full_l, 8, "<q", 11))
    write(outdir, "bad_ivf_untrained.index", patched(full_l, 32, "<B", 0))
    write(outdir, "bad_ivf_dm_type.index", patched(full_l, 162, "<B", 7))
    write(outdir, "bad_ivf_dm_entry.index",
          patched(sprs_dm, 171 + 8 * 3, "<q", 1 << 32))
    write(outdir, "bad_ivf_dm_count.index", patched(sprs_dm, 163, "<Q", 9))
    write(outdir, "bad_ivf_il_nlist.index", patched(full_l, il_f + 4, "<Q", 3))
    write(outdir, "bad_ivf_code_size.index",
          patched(full_l, il_f + 12, "<Q", 12))
    write(outdir, "bad_ivf_list_type.index",
          full_l[:il_f + 20] + b"half" + full_l[il_f + 24:])
    write(outdir, "unsupported_ivf_invlists_type.index",
          full_l[:il_f] + b"ilod" + full_l[il_f + 4:])
    write(outdir, "bad_ivf_full_count.index",
          patched(full_l, il_f + 24, "<Q", 1 << 60))
    write(outdir, "bad_ivf_full_size.index",
          patched(full_l, il_f + 32, "<Q", 3))
    write(outdir, "bad_ivf_full_size_huge.index",
          patched(full_l, il_f + 32, "<Q", (1 << 64) - 1))
    write(outdir, "bad_ivf_sprs_odd.index", patched(sprs_dm, il_s + 24, "<Q", 3))
    write(outdir, "bad_ivf_sprs_count_huge.index",
          patched(sprs_dm, il_s + 24, "<Q", 1 << 62))
    write(outdir, "bad_ivf_sprs_list.index",
          patched(sprs_dm, il_s + 32, "<Q", 4))
    write(outdir, "bad_ivf_sprs_dup.index",
          patched(sprs_dm, il_s + 48, "<Q", 0))
    write(outdir, "bad_ivf_sprs_size.index",
          patched(sprs_dm, il_s + 40, "<Q", 1 << 40))
    write(outdir, "bad_ivf_nan.index",
          patched(full_l, il_f + 64, "<f", float("nan")))
    write(outdir, "bad_ivf_id.index",
          patched(sprs_dm, il_s + 64 + 5 * 16, "<q", 12))
    # IndexScalarQuantizer (d=4, QT_8bit): header 0..37, qtype 37,
    # rangestat 41, rangestat_arg 45, d 49, code_size 57, trained count 65,
    # trained floats 73..105, codes count 105, codes 113..125
    sq8 = g["sq8_l2_d4_n3.index"]
    assert len(sq8) == 125
    for n in (37, 41, 49, 65, 73, 100, 105, 113, len(sq8) - 1):
        write(outdir, "trunc_sq_%d.index" % n, sq8[:n])
    write(outdir, "bad_sq_qtype.index", patched(sq8, 37, "<i", 9))
    write(outdir, "unsupported_sq_rangestat.index", patched(sq8, 41, "<i", 2))
    write(outdir, "bad_sq_d.index", patched(sq8, 49, "<Q", 5))
    write(outdir, "bad_sq_code_size.index", patched(sq8, 57, "<Q", 2))
    write(outdir, "bad_sq_trained_count.index", patched(sq8, 65, "<Q", 3))
    write(outdir, "bad_sq_trained_huge.index", patched(sq8, 65, "<Q", 1 << 62))
    write(outdir, "bad_sq_trained_nan.index",
          patched(sq8, 73, "<f", float("nan")))
    write(outdir, "bad_sq_codes_count.index", patched(sq8, 105, "<Q", 13))
    write(outdir, "bad_sq_codes_huge.index", patched(sq8, 105, "<Q", 1 << 63))
    write(outdir, "valid_sq_untrained.index",
          ser(faiss.IndexScalarQuantizer(D, faiss.ScalarQuantizer.QT_4bit)))
    for qt in range(8):
        x = vecs(1.0, 0.0)
        write(outdir, "valid_sq_qtype%d.index" % qt,
              ser(build_sq(qt, faiss.METRIC_L2, x)))
    ivsq = g[IVFSQ_GOLDEN]
    for n in (53, 162, 171, 200, ivsq.find(b"ilar"), len(ivsq) - 1):
        write(outdir, "trunc_ivfsq_%d.index" % n, ivsq[:n])
    write(outdir, "bad_ivfsq_qtype.index", patched(ivsq, 171, "<i", -1))
    write(outdir, "bad_ivfsq_by_residual.index",
          patched(ivsq, ivsq.find(b"ilar") - 1, "<B", 5))
    hn = g["hnswflat_l2_d4_n20.index"]
    for n in (20, 60, 200, 400, len(hn) - 1):
        write(outdir, "trunc_hnsw_%d.index" % n, hn[:n])
    # a link out of range: the first level-0 link of node 0 (header 37
    # bytes, then assign_probas, cum_nneighbor_per_level, levels, offsets)
    np_ = struct.unpack_from("<Q", hn, 37)[0]
    off = 37 + 8 + 8 * np_ + 8 + 4 * (np_ + 1) + 8 + 4 * 20 + 8 + 8 * 21 + 8
    write(outdir, "bad_hnsw_link.index", patched(hn, off, "<i", 1000))
    write(outdir, "bad_hnsw_link_neg.index", patched(hn, off, "<i", -7))
    # Index2Layer: header 37 bytes, the quantizer (IxF2: 37 + 8 + 3 x 4 x
    # 4 = 93 bytes) to 130, nlist 130, trains_alone 138, the PQ 139 (d, M,
    # nbits, centroid count, 16 floats) to 235, code sizes 235, 243, 251,
    # the codes' count 259, the codes 267
    tl = g["ix2l_l2_d4_n20.index"]
    for n in (20, 100, 131, 139, 180, 237, 260, 270, len(tl) - 1):
        write(outdir, "trunc_ix2l_%d.index" % n, tl[:n])
    write(outdir, "bad_ix2l_nlist.index", patched(tl, 130, "<Q", 1 << 40))
    write(outdir, "bad_ix2l_nlist_q.index", patched(tl, 130, "<Q", 4))
    write(outdir, "bad_ix2l_alone.index", patched(tl, 138, "<B", 9))
    write(outdir, "bad_ix2l_cs1.index", patched(tl, 235, "<Q", 2))
    write(outdir, "bad_ix2l_cs.index", patched(tl, 251, "<Q", 1 << 62))
    write(outdir, "bad_ix2l_codes.index", patched(tl, 259, "<Q", 1 << 63))
    write(outdir, "bad_ix2l_list.index", patched(tl, 267, "<B", 3))
    h2 = g["hnsw2l_l2_d4_n20.index"]
    for n in (40, 300, len(h2) - 3000, len(h2) - 1):
        write(outdir, "trunc_hnsw2l_%d.index" % n, h2[:n])
    np_ = struct.unpack_from("<Q", h2, 37)[0]
    off = 37 + 8 + 8 * np_ + 8 + 4 * (np_ + 1) + 8 + 4 * 20 + 8 + 8 * 21 + 8
    write(outdir, "bad_hnsw2l_link.index", patched(h2, off, "<i", 20))
    # IDMap over IDMap over IDMap ... deeper than any reader should follow
    hdr_end = 37
    deep = m1[:hdr_end] * 40 + m1[hdr_end:]
    write(outdir, "bad_deep_nesting.index", deep)
    # an IDMap wrapping itself forever (truncated chain)
    write(outdir, "bad_idmap_chain.index", m1[:hdr_end] * 3)

    # IndexPreTransform: chain length at 37, the first transform at 41; in
    # the LTra golden have_bias 45, A count 46, b count 118, d_in 142,
    # d_out 146, is_trained 150, the sub-index from 151
    lt = g["pt_ltra_flat_d4_n8.index"]
    pca = g["pt_pca_flat_d4_n8.index"]
    write(outdir, "bad_pt_chain_len.index", patched(lt, 37, "<i", 1 << 30))
    write(outdir, "bad_pt_chain_neg.index", patched(lt, 37, "<i", -1))
    write(outdir, "bad_pt_vt_fourcc.index", patched(lt, 41, "<I", 0x01020304))
    write(outdir, "unsupported_pt_itq.index",
          lt[:41] + b"Viqm" + lt[45:])
    write(outdir, "bad_pt_bias.index", patched(lt, 45, "<B", 7))
    write(outdir, "bad_pt_A_count.index", patched(lt, 46, "<Q", 15))
    write(outdir, "bad_pt_A_huge.index", patched(lt, 46, "<Q", 1 << 62))
    write(outdir, "bad_pt_A_nan.index", patched(lt, 54, "<f", float("nan")))
    write(outdir, "bad_pt_b_count.index", patched(lt, 118, "<Q", 3))
    write(outdir, "bad_pt_d_in.index", patched(lt, 142, "<i", 5))
    write(outdir, "bad_pt_d_out.index", patched(lt, 146, "<i", 3))
    write(outdir, "bad_pt_trained.index", patched(lt, 150, "<B", 2))
    write(outdir, "bad_pt_sub_d.index", patched(lt, 155, "<i", 3))
    write(outdir, "bad_pt_ntotal.index", patched(lt, 8, "<q", 9))
    write(outdir, "bad_pt_truncated.index", lt[:len(lt) // 2])
    write(outdir, "bad_pt_pca_truncated.index", pca[:60])
    rr = faiss.RandomRotationMatrix(D, D)
    rr.init(3)
    write(outdir, "valid_pt_empty_chain.index",
          lt[:37] + struct.pack("<i", 0) + lt[151:])
    ix = faiss.IndexPreTransform(rr, faiss.IndexFlatL2(D))
    write(outdir, "valid_pt_rr_empty.index", ser(ix))
    ondisk(outdir)


def ondisk(outdir):
    """OnDiskInvertedLists ("ilod"): the record names a data file that the
    fuzzer's working directory lacks, so a reader gets past the record's
    checks to the open; corrupt copies stop at the checks."""
    import tempfile
    rs = np.random.RandomState(5)
    x = rs.rand(10, 4).astype("float32")
    q = faiss.IndexFlatL2(4)
    ix = faiss.IndexIVFFlat(q, 4, 2)
    ix.train(x)
    with tempfile.TemporaryDirectory() as t:
        old = os.getcwd()
        os.chdir(t)
        try:
            il = faiss.OnDiskInvertedLists(2, ix.code_size, "fz.ivfdata")
            ix.replace_invlists(il, True)
            il.this.disown()
            ix.add(x)
            data = ser(ix)
        finally:
            os.chdir(old)
    write(outdir, "valid_ilod_d4_n10.index", data)
    at = data.rfind(b"ilod")
    write(outdir, "bad_ilod_table_count.index", patched(data, at + 20, "<Q", 3))
    write(outdir, "bad_ilod_offset.index", patched(data, at + 28 + 16, "<Q", 1 << 40))
    write(outdir, "bad_ilod_size.index", patched(data, at + 28, "<Q", 1 << 30))
    write(outdir, "bad_ilod_truncated.index", data[:at + 40])



# ---- additive quantizers (tests/c/test_io_aq.c) --------------------------
# d=4, codebooks on separate axes with integer entries: codebook m of an RQ
# / LSQ holds (k, 0, 0, 0) or (0, k, 0, 0), so a vector (a, b, 0, 0) with
# a, b in 0..7 is encoded exactly as (a, b) by any encoder, and its code
# byte is a | b << 3 (2 x 3 bits).  The product kind splits 4 = 2 + 2 and
# stores (a, 0, b, 0).
AQ_GOLDEN = {
    "rq2x3_l2_d4_n5.index": ("RQ", 1, 0),
    "rq2x3_nfloat_l2_d4_n5.index": ("RQ", 1, 3),
    "lsq2x3_ip_d4_n5.index": ("LSQ", 0, 1),
    "prq2x1x3_l2_d4_n5.index": ("PRQ", 1, 0),
    "rcq2x3_l2_d4.index": ("RCQ", 1, 0),
    "ivfrq2x3_l2_d4_n10.index": ("IVFRQ", 1, 0),
    "ivf_rcq_flat_l2_d4_n10.index": ("IVFRCQ", 1, 0),
}
AQ_VECS = [(3, 5), (0, 0), (7, 7), (1, 6), (4, 2)]


def aq_codebooks(axes, dim):
    cb = np.zeros((len(axes) * 8, dim), dtype="float32")
    for m, ax in enumerate(axes):
        cb[m * 8:(m + 1) * 8, ax] = np.arange(8)
    return cb


def aq_vecs(offset=None, second=1):
    x = np.zeros((len(AQ_VECS), D), dtype="float32")
    for i, (a, b) in enumerate(AQ_VECS):
        x[i, 0], x[i, second] = a, b
    return x if offset is None else np.vstack([x + offset, x - offset])


def aq_set(q, cb):
    faiss.copy_array_to_vector(cb.ravel(), q.codebooks)
    q.is_trained = True


def build_aq(kind, metric, st):
    if kind in ("RQ", "RCQ", "IVFRQ"):
        if kind == "RCQ":
            ix = faiss.ResidualCoarseQuantizer(D, 2, 3, metric)
        elif kind == "RQ":
            ix = faiss.IndexResidualQuantizer(D, 2, 3, metric, st)
        else:
            qz = faiss.IndexFlat(D, metric)
            qz.add(np.array([[50, 0, 0, 0], [-50, 0, 0, 0]], dtype="float32"))
            ix = faiss.IndexIVFResidualQuantizer(qz, D, 2, 2, 3, metric, st)
            ix.own_fields = True
            qz.this.disown()
        aq_set(ix.rq, aq_codebooks([0, 1], D))
        ix.rq.compute_codebook_tables()
    elif kind == "LSQ":
        ix = faiss.IndexLocalSearchQuantizer(D, 2, 3, metric, st)
        aq_set(ix.lsq, aq_codebooks([0, 1], D))
        ix.lsq.nperts = 2  # what training sets (nperts <= M)
    elif kind == "PRQ":
        ix = faiss.IndexProductResidualQuantizer(D, 2, 1, 3, metric, st)
        cb = aq_codebooks([0], 2)
        for s in range(2):
            aq_set(ix.prq.subquantizer(s), cb)
        aq_set(ix.prq, np.vstack([cb, cb]))
    else:  # IVFRCQ: an IndexIVFFlat whose lists are an RCQ's centroids
        rcq = faiss.ResidualCoarseQuantizer(D, 1, 1, metric)
        aq_set(rcq.rq, np.array([[20, 0, 0, 0], [-20, 0, 0, 0]], "float32"))
        rcq.ntotal = 2
        rcq.is_trained = True
        rcq.set_beam_factor(-1)
        ix = faiss.IndexIVFFlat(rcq, D, 2, metric)
        ix.own_fields = True
        rcq.this.disown()
        ix.is_trained = True
        ix.add(aq_vecs([20, 0, 0, 0]))
        return ix
    if kind == "RCQ":
        ix.ntotal = 64
        ix.is_trained = True
        return ix
    ix.is_trained = True
    # the product's halves are components (0, 1) and (2, 3): (a, 0, b, 0)
    ix.add(aq_vecs([50, 0, 0, 0]) if kind == "IVFRQ"
           else aq_vecs(second=2 if kind == "PRQ" else 1))
    return ix


def aq_golden(outdir):
    out = {}
    for name, args in AQ_GOLDEN.items():
        data = ser(build_aq(*args))
        write(outdir, name, data)
        out[name] = data
    return out


def aq_full(outdir, g):
    # trained quantizers with the other norm encodings, and hostile fields
    rs = np.random.RandomState(123)
    xt = rs.rand(600, D).astype("float32")
    for key in ("RQ2x3_Ncqint4", "RQ2x3_Nrq2x4", "LSQ2x3_Nlsq2x4",
                "PLSQ2x1x3_Nqint4", "IVF4,LSQ2x3_Nqint8"):
        ix = faiss.index_factory(D, key)
        ix.train(xt)
        ix.add(xt[:7])
        write(outdir, "valid_aq_" + key.replace(",", "_") + ".index", ser(ix))
    rq = g["rq2x3_l2_d4_n5.index"]
    # header 37, d 37, M 45, nbits count 53, nbits 61/69, is_trained 77,
    # codebook count 78, codebooks 86 (64 floats), search_type 342
    write(outdir, "bad_aq_M0.index", patched(rq, 45, "<Q", 0))
    write(outdir, "bad_aq_nbits40.index", patched(rq, 61, "<Q", 40))
    write(outdir, "bad_aq_cbcount.index", patched(rq, 78, "<Q", 63))
    write(outdir, "bad_aq_cbhuge.index", patched(rq, 78, "<Q", 1 << 61))
    write(outdir, "bad_aq_st.index", patched(rq, 342, "<i", 42))
    write(outdir, "bad_aq_nan.index", patched(rq, 90, "<f", float("nan")))
    write(outdir, "bad_aq_truncated.index", rq[:len(rq) - 3])
    ivf = g["ivfrq2x3_l2_d4_n10.index"]
    write(outdir, "bad_aq_ivf_truncated.index", ivf[:len(ivf) // 2])
    rcq = g["rcq2x3_l2_d4.index"]
    write(outdir, "bad_aq_rcq_beam.index",
          rcq[:-4] + struct.pack("<f", float("nan")))

def aq_fs_full(outdir):
    # the 4-bit fast-scan kinds (IRfs / ILfs / IPRf), trained by faiss, and
    # hostile fields of their fast-scan tail
    rs = np.random.RandomState(321)
    xt = rs.rand(1000, D).astype("float32")
    out = {}
    for key, metric in (("RQ2x4fs_Nrq2x4", faiss.METRIC_L2),
                        ("LSQ2x4fs_Nlsq2x4", faiss.METRIC_L2),
                        ("PRQ2x1x4fs_Nrq2x4", faiss.METRIC_L2),
                        ("RQ3x4fs", faiss.METRIC_INNER_PRODUCT)):
        ix = faiss.index_factory(D, key, metric)
        ix.train(xt)
        ix.add(xt[:37])
        name = "valid_aq_" + key + ("_ip" if metric == faiss.METRIC_INNER_PRODUCT else "") + ".index"
        out[name] = ser(ix)
        write(outdir, name, out[name])
    rq = out["valid_aq_RQ2x4fs_Nrq2x4.index"]
    # the tail after the quantizer: implem, bbs, qbs (int32), M, nbits,
    # ksub, code_size, ntotal2, M2 (uint64), rescale_norm (uint8),
    # norm_scale (int32), max_train_points (uint64), code count, codes
    tail = len(rq) - (8 + 64 * 2) - (4 * 3 + 8 * 6 + 1 + 4 + 8)
    write(outdir, "bad_aqfs_bbs.index", patched(rq, tail + 4, "<i", 48))
    write(outdir, "bad_aqfs_M.index", patched(rq, tail + 12, "<Q", 5))
    write(outdir, "bad_aqfs_ntotal2.index", patched(rq, tail + 44, "<Q", 1 << 40))
    write(outdir, "bad_aqfs_normscale.index", patched(rq, tail + 61, "<i", -3))
    write(outdir, "bad_aqfs_truncated.index", rq[:len(rq) - 5])
    return out


def aq_ivffs_full(outdir):
    # the IVF 4-bit fast-scan kinds (IVRf / IVLf / NPRf / NPLf), trained by
    # faiss over 4 lists
    rs = np.random.RandomState(322)
    xt = rs.rand(1000, D).astype("float32")
    out = {}
    for key in ("IVF4,RQ2x4fsr_Nrq2x4", "IVF4,LSQ2x4fs_Nlsq2x4",
                "IVF4,PRQ2x1x4fsr_Nrq2x4", "IVF4,PLSQ2x1x4fs_Nlsq2x4"):
        ix = faiss.index_factory(D, key)
        ix.train(xt)
        ix.add(xt[:45])
        name = "valid_aq_" + key.replace(",", "_") + ".index"
        out[name] = ser(ix)
        write(outdir, name, out[name])
    return out


def check(paths):
    for p in paths:
        ix = faiss.read_index(p)
        print(p, type(ix).__name__, "d=%d ntotal=%d metric=%d trained=%s"
              % (ix.d, ix.ntotal, ix.metric_type, ix.is_trained))
        base = faiss.downcast_index(ix.index) if hasattr(ix, "id_map") else ix
        if ix.ntotal:
            print("  vectors", base.reconstruct_n(0, ix.ntotal).tolist())
        if hasattr(ix, "id_map"):
            print("  ids", faiss.vector_to_array(ix.id_map).tolist())
        if isinstance(ix, faiss.IndexIVF):
            il = ix.invlists
            print("  nlist=%d nprobe=%d direct_map=%d" %
                  (ix.nlist, ix.nprobe, ix.direct_map.type))
            for l in range(ix.nlist):
                n = il.list_size(l)
                if n:
                    ids = faiss.rev_swig_ptr(il.get_ids(l), n).tolist()
                    print("  list %d ids %s" % (l, ids))


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        check(argv[1:])
        return 0
    if len(argv) == 2 and argv[0] == "--golden":
        os.makedirs(argv[1], exist_ok=True)
        golden(argv[1])
        return 0
    if len(argv) == 1 and not argv[0].startswith("-"):
        os.makedirs(argv[0], exist_ok=True)
        full(argv[0])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
