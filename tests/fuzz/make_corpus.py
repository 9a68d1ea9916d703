#!/usr/bin/env python3
"""Write a seed corpus for the index-reader fuzz target, using FAISS itself.

    make_corpus.py OUTDIR             golden files + more valid files written by
                                      faiss + corrupted and hostile variants
    make_corpus.py --golden OUTDIR    only the four golden files that are
                                      committed under tests/fuzz/corpus/ and
                                      checked value by value in tests/c/test_io.c
    make_corpus.py --check FILE...    load files (e.g. written by vecdex) with
                                      faiss and print what faiss sees

Everything is deterministic: vectors are small arange()s (exact in float32),
ids are fixed lists.  Keep GOLDEN in sync with tests/c/test_io.c.
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
    return out


# Offsets inside a flat index: fourcc 0, d 4, ntotal 8, dummies 16 and 24,
# is_trained 32, metric 33, float count 37, floats 45.
def patched(data, off, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def full(outdir):
    g = golden(outdir)
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
    # a kind vecdex does not read (yet)
    q = faiss.IndexFlatL2(D)
    ivf = faiss.IndexIVFFlat(q, D, 1)
    ivf.train(vecs(1.0, 0.0))
    ivf.add(vecs(1.0, 0.0))
    write(outdir, "unsupported_ivfflat.index", ser(ivf))

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
    # IDMap over IDMap over IDMap ... deeper than any reader should follow
    hdr_end = 37
    deep = m1[:hdr_end] * 40 + m1[hdr_end:]
    write(outdir, "bad_deep_nesting.index", deep)
    # an IDMap wrapping itself forever (truncated chain)
    write(outdir, "bad_idmap_chain.index", m1[:hdr_end] * 3)


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
