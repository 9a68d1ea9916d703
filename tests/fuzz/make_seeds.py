#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets other than the file reader
(whose corpus make_corpus.py writes):

    tests/fuzz/corpus_factory/   fuzz_factory: d, metric, a factory string
    tests/fuzz/corpus_vecio/     fuzz_vecio: a format byte, a --dim byte, a
                                 vector file (valid ones and corrupt ones)
    tests/fuzz/corpus_ops/       fuzz_ops: a kind, a mode, operations and
                                 value bytes (see fuzz_ops.c)

    make_seeds.py [FUZZ_DIR]     (default: the directory of this script)

Only numpy's .npy writer is used (no faiss); the output is deterministic
and a few KiB per target.  Regression inputs (a finding, minimised) go in
the same directories under a regress_ name and are kept when this script
is run again.
"""
import io
import os
import struct
import sys

import numpy as np

FACTORY = [
    "Flat", "IDMap,Flat", "IDMap2,Flat", "IVF16,Flat", "IVF4k,Flat",
    "IDMap,IVF8,Flat", "IVF8_HNSW16,Flat", "PQ4", "PQ4x4", "PQ4x4np",
    "IVF8,PQ4", "SQ4", "SQ6", "SQ8", "SQfp16", "SQbf16", "IVF8,SQ8", "LSH",
    "LSH32rt", "LSHt", "PQ4x4fs", "PQ4x4fs_64", "IVF8,PQ4x4fs",
    "IVF8,PQ4x4fsr", "HNSW16", "HNSW16,Flat", "HNSW16,SQ8", "HNSW16,PQ4",
    "HNSW16_PQ4", "Residual16,PQ4", "HNSW16_64+PQ4", "PCA8,Flat",
    "PCAW8,IVF4,Flat", "PCAR8,Flat", "PCAWR8,Flat", "OPQ4_16,IVF8,PQ4",
    "OPQ4,PQ4", "RR16,LSH", "L2norm,Flat", "IDMap,PCA8,Flat",
    "PCA8,IDMap2,Flat", "IVF8,PQ4,RFlat", "PQ4,Refine(SQfp16)",
    "PQ4x4fs,RFlat", "IVF8,PQ4x4fs,Refine(SQfp16)",
    # malformed, for the error paths
    "IVF100,PQ16x", "", "Flat,", ",Flat", "IVF", "IVF0,Flat", "PQ0",
    "HNSW1", "Residual4x8,PQ4", "HNSW16_2x8+PQ4", "Refine(Flat)",
    "Flat,Refine(", "IDMap,IDMap,Flat", "PCA99,Flat", "OPQ3_7,Flat",
    "IVF99999999999999,Flat", "PQ4x99", "LSH99999999", "RR0,Flat",
]


def npy(a, fortran=False):
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(a) if fortran else a)
    return buf.getvalue()


def texmex(a, fmt):
    out = b""
    for row in a:
        out += struct.pack("<i", len(row)) + struct.pack(
            "<%d%s" % (len(row), fmt), *row.tolist())
    return out


def vecio_seeds():
    f = np.arange(12, dtype="<f4").reshape(3, 4) - 5.5
    i = np.arange(12, dtype="<i4").reshape(4, 3) * 7 - 20
    u = (np.arange(10, dtype="u1") * 25).reshape(2, 5)
    s = {}
    # byte 0: 0 fvecs, 1 ivecs, 2 bvecs, 3 npy, 4 f32; byte 1: --dim
    s["fvecs_3x4"] = bytes([0, 0]) + texmex(f, "f")
    s["ivecs_4x3"] = bytes([1, 0]) + texmex(i, "i")
    s["bvecs_2x5"] = bytes([2, 0]) + texmex(u.astype(np.int64), "B")
    s["fvecs_dim_mismatch"] = bytes([0, 0]) + texmex(f, "f")[:-16] + \
        struct.pack("<i", 3) + struct.pack("<3f", 1, 2, 3)
    s["fvecs_truncated"] = bytes([0, 0]) + texmex(f, "f")[:-3]
    s["fvecs_huge_dim"] = bytes([0, 0]) + struct.pack("<i", 2 ** 30) + b"\0" * 8
    s["fvecs_dim_flag"] = bytes([0, 0x83]) + texmex(f, "f")
    s["npy_f4"] = bytes([3, 0]) + npy(f)
    s["npy_i4"] = bytes([3, 0]) + npy(i)
    s["npy_i8"] = bytes([3, 0]) + npy(i.astype("<i8"))
    s["npy_u1_1d"] = bytes([3, 0]) + npy(u.reshape(-1))
    s["npy_fortran"] = bytes([3, 0]) + npy(f, fortran=True)
    s["npy_f8"] = bytes([3, 0]) + npy(f.astype("<f8"))
    s["npy_3d"] = bytes([3, 0]) + npy(f.reshape(3, 2, 2))
    s["npy_empty"] = bytes([3, 0]) + npy(np.zeros((0, 4), "<f4"))
    hdr = npy(f)
    s["npy_truncated"] = bytes([3, 0]) + hdr[:-5]
    big = hdr.replace(b"(3, 4)", b"(9999999999999, 4)")
    s["npy_huge_shape"] = bytes([3, 0]) + big
    s["npy_v2"] = bytes([3, 0]) + b"\x93NUMPY\x02\x00" + \
        struct.pack("<I", 118) + hdr[10:]
    s["f32_dim4"] = bytes([4, 3]) + f.tobytes()
    s["f32_ragged"] = bytes([4, 2]) + f.tobytes()[:-4]
    return s


def ops_seed(kind, mode_metric, ops, values):
    return bytes([kind, mode_metric]) + bytes(ops) + bytes(values)


def ops_seeds():
    # opcodes (fuzz_ops.c): 0 train n/2, 1 add n, 2 add_with_ids n mode,
    # 3 search nq k flags [..], 4 range nq r, 5 remove how [..], 6 reset,
    # 7 serialize round trip, 8 file round trip, 9 reconstruct key flag,
    # 10 set nprobe/ef/k_factor v, 11 threads t
    vals = bytes((j * 37 + 11) % 256 for j in range(160))
    s = {}
    # kinds: index into KINDS (fuzz_ops.c)
    for kind, name in [(0, "flat"), (2, "idmap"), (3, "idmap2"),
                       (4, "ivf"), (5, "idmap_ivf"), (7, "pq"), (9, "sq8"),
                       (14, "lsh"), (16, "pqfs"), (17, "ivfpqfs"),
                       (19, "hnsw"), (22, "residual"), (23, "refine"),
                       (26, "pca"), (30, "opq"), (31, "hnsw2level")]:
        # train 40 points, add 20, search, remove a range, search, round
        # trips, reconstruct
        ops = [0, 20, 1, 20, 3, 1, 3, 0, 5, 0, 10, 4, 3, 2, 4, 0x11, 7,
               3, 0, 2, 8, 9, 5, 0]
        if name.startswith("idmap") or name == "ivf":
            ops = [0, 20, 2, 20, 0, 3, 1, 3, 0, 5, 1, 4, 3, 2, 4, 0x11, 7,
                   8, 3, 0, 2]
        s[f"{name}_l2"] = ops_seed(kind, 1, ops, vals)
        s[f"{name}_ip_scaled"] = ops_seed(kind, 2, ops, vals)
    s["flat_raw_bits"] = ops_seed(1, 5, [1, 8, 3, 0, 4, 0, 4, 1, 7], vals)
    s["ivf_neg_dup_ids"] = ops_seed(4, 1, [0, 20, 2, 10, 1, 2, 10, 2, 3, 0,
                                           5, 0, 1], vals)
    s["hnsw_params"] = ops_seed(19, 1, [1, 30, 3, 2, 6, 0x55, 10, 3, 3, 1,
                                        5, 0x32, 11, 3], vals)
    return s


def write(dirname, seeds):
    os.makedirs(dirname, exist_ok=True)
    for f in os.listdir(dirname):
        if not f.startswith("regress_"):
            os.remove(os.path.join(dirname, f))
    for name, data in seeds.items():
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(data)


def main():
    here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.abspath(__file__))
    fac = {}
    for j, desc in enumerate(FACTORY):
        d = 16 if "16" in desc or "OPQ" in desc else 8
        safe = "".join(c if c.isalnum() else "_" for c in desc) or "empty"
        fac[f"{j:02d}_{safe}"[:40]] = bytes([d - 1, 1 + (j % 3 == 2)]) + \
            desc.encode()
    write(os.path.join(here, "corpus_factory"), fac)
    write(os.path.join(here, "corpus_vecio"), vecio_seeds())
    write(os.path.join(here, "corpus_ops"), ops_seeds())


if __name__ == "__main__":
    main()
