/*
 * fastscan.h — 4-bit PQ "fast scan" (André, Kermarrec, Le Scouarnec, "Cache
 * locality is not enough: high-performance nearest neighbor search with
 * product quantization fast scan", VLDB 2015; FAISS's pq4_fast_scan).
 *
 * Codes of 4-bit sub-quantizers are stored in blocks of bbs vectors (bbs a
 * multiple of 32), in FAISS's layout so that files move both ways: with
 * nsq = M rounded up to even, a block is nsq / 2 * bbs bytes; for each pair
 * of sub-quantizers (2p, 2p + 1) and each group of 32 vectors, 32 bytes:
 * byte j < 16 holds sub-quantizer 2p of vector perm(j) in its low nibble and
 * of vector perm(j) + 16 in its high nibble, byte 16 + j the same for
 * sub-quantizer 2p + 1, with perm = 0, 8, 1, 9, ..., 7, 15.
 *
 * Search quantizes the query's float table to 8 bits so that 16 entries fit
 * one 128-bit lane: each register byte-shuffle (pshufb) looks up 32 codes,
 * accumulated in saturating 16-bit lanes.
 *
 * Why vecdex does not lose recall where FAISS does: the 8-bit table has a
 * bias per sub-quantizer and one shared scale, and FAISS takes that scale
 * from the widest sub-quantizer, so on data where one dimension spans 100x
 * the others the narrow sub-quantizers round to 0.  vecdex takes the scale
 * from a high percentile of the ranges (saturating the few wide entries at
 * 255) and uses the 16-bit sum only as a *lower bound* of the float-table
 * distance: entry q = min(255, round((t - bias) / scale)) implies
 * t - bias >= scale * (q - 1/2), so sum_m t >= B + scale * (s - M / 2) for
 * the (saturated) 16-bit sum s.  Codes whose bound beats the current k-th
 * best key are re-scored with the float table (M lookups), so the results
 * are exactly those of the float table on the same codes, while almost all
 * codes are rejected by the SIMD pass.
 */
#ifndef VDX_FASTSCAN_H
#define VDX_FASTSCAN_H

#include "common/common.h"

#define VDX_FS_BBS_DEFAULT 32
#define VDX_FS_BBS_MAX 4096

/* bytes of one block of bbs vectors for nsq (even) sub-quantizers */
static inline size_t vdx_fs_block_size(int64_t nsq, int64_t bbs) {
    return (size_t)(nsq / 2) * (size_t)bbs;
}

/* Packed element access: sub-quantizer m of vector i (any block). */
VDX_INTERNAL uint8_t vdx_fs_get(const uint8_t *blocks, int64_t bbs,
                                int64_t nsq, int64_t i, int64_t m);
VDX_INTERNAL void vdx_fs_set(uint8_t *blocks, int64_t bbs, int64_t nsq,
                             int64_t i, int64_t m, uint8_t v);
/* Packs n flat codes (FAISS's PQ layout: two 4-bit indices per byte, low
 * nibble first, (M + 1) / 2 bytes each) into positions i0 .. i0 + n of
 * blocks, which must cover them. */
VDX_INTERNAL void vdx_fs_pack(const uint8_t *codes, int64_t n, int64_t M,
                              int64_t bbs, int64_t nsq, uint8_t *blocks,
                              int64_t i0);
/* Unpacks vector i into a flat code of (M + 1) / 2 bytes. */
VDX_INTERNAL void vdx_fs_unpack_1(const uint8_t *blocks, int64_t bbs,
                                  int64_t nsq, int64_t M, int64_t i,
                                  uint8_t *code);

/* A query's quantized table: nsq x 16 bytes (64-byte aligned by the
 * caller), the bias B (sum of the per-sub-quantizer minima) and the scale. */
#define VDX_FS_MAX_WIDE 4

typedef struct vdx_fs_lut {
    uint8_t *q;
    float bias, scale, inv_scale;
    int64_t M, nsq;
    /* the widest sub-quantizers whose entries saturate (at most
     * VDX_FS_MAX_WIDE), with their minima: a candidate that passes the
     * 16-bit bound is checked again with their exact float entries before
     * the full re-scoring (one lookup each instead of M) */
    int nwide;
    int64_t wide[VDX_FS_MAX_WIDE];
    float wide_min[VDX_FS_MAX_WIDE];
    /* per wide sub-quantizer and code: its exact entry minus what the
     * 8-bit sum counts for it (wide_min + scale * q) */
    float wide_corr[VDX_FS_MAX_WIDE][16];
} vdx_fs_lut;

/* Quantizes table (M x 16 keys: smaller is better) into lut->q. */
VDX_INTERNAL void vdx_fs_quantize(const float *table, int64_t M, int64_t nsq,
                                  vdx_fs_lut *lut);
/* The largest 16-bit sum whose approximate key can still beat `top` (the
 * k-th best so far), or -1 when none can; 65535 when all can (top = +inf,
 * or NaN from absurd tables).  The approximate key is bias + scale * s with
 * the wide entries exact, so it is at least bias + scale * (s - nwide / 2):
 * keep s <= (top - bias) / scale + nwide / 2, plus a unit for the float
 * rounding. */
static inline int32_t vdx_fs_threshold(const vdx_fs_lut *lut, float top) {
    float x = (top - lut->bias) * lut->inv_scale + 0.5f * (float)lut->nwide + 1.0f;
    if (!(x < 65535.0f)) return 65535; /* also +inf and NaN */
    if (x < 0) return -1;
    return (int32_t)x;
}

/* One group of 32 vectors: grp points at the group's first 32 bytes for
 * pair 0, pairs follow every `stride` (= bbs) bytes.  Writes the 32
 * saturated 16-bit sums (vector order) and returns the mask of vectors
 * whose sum is <= thr. */
typedef uint32_t (*vdx_fs_scan32_fn)(const uint8_t *grp, size_t stride,
                                     const uint8_t *lut, int64_t nsq,
                                     uint16_t thr, uint16_t *sums);

/* As scan32 for nq <= VDX_FS_MAX_QBS queries at once (the codes are read
 * once): query j uses luts[j] and thr[j], writes sums + 32 j and masks[j]. */
#define VDX_FS_MAX_QBS 2
typedef void (*vdx_fs_scan32_multi_fn)(const uint8_t *grp, size_t stride,
                                       const uint8_t *const *luts, int nq,
                                       int64_t nsq, const uint16_t *thr,
                                       uint16_t *sums, uint32_t *masks);

/* A run of groups g0 .. g1 - 1 of packed blocks (group g: block g * 32 /
 * bbs, offset g * 32 % bbs) for nq <= VDX_FS_MAX_QBS queries: collects
 * the groups where some query has a vector whose sum is <= its threshold,
 * up to cap of them (cap <= VDX_FS_RUN_HITS): hit h's number goes to
 * hits[h], its sums to sums + 32 (h nq + j) for query j, its masks to
 * masks[h nq + j].  Stops after cap hits or at g1; returns the number of
 * hits and sets *next to the first group not scanned.  Most groups have
 * no hit, and a hit does not leave the kernel until cap of them were
 * collected (the caller's thresholds tighten between calls only, so a
 * lane may be reported under a threshold that has tightened since). */
#define VDX_FS_RUN_HITS 8
typedef int (*vdx_fs_scan_run_fn)(const uint8_t *blocks, int64_t bbs,
                                  int64_t nsq, int64_t g0, int64_t g1,
                                  const uint8_t *const *luts, int nq,
                                  const uint16_t *thr, int cap, int64_t *hits,
                                  uint16_t *sums, uint32_t *masks,
                                  int64_t *next);

typedef struct vdx_fs_kernels {
    const char *name;
    vdx_fs_scan32_fn scan32;
    vdx_fs_scan32_multi_fn scan32_multi;
    vdx_fs_scan_run_fn scan_run;
} vdx_fs_kernels;

/* scan_run over a level's scan32_multi, group by group (the scalar and
 * AVX-512 levels; AVX2 has its own). */
VDX_INTERNAL int vdx_fs_scan_run_with(vdx_fs_scan32_multi_fn multi,
                                      const uint8_t *blocks, int64_t bbs,
                                      int64_t nsq, int64_t g0, int64_t g1,
                                      const uint8_t *const *luts, int nq,
                                      const uint16_t *thr, int cap,
                                      int64_t *hits, uint16_t *sums,
                                      uint32_t *masks, int64_t *next);

VDX_INTERNAL extern const vdx_fs_kernels vdx_fs_kernels_scalar;
VDX_INTERNAL extern const vdx_fs_kernels vdx_fs_kernels_avx2;
VDX_INTERNAL extern const vdx_fs_kernels vdx_fs_kernels_avx512;
/* The kernels of the level vdx_kernels_get() chose. */
VDX_INTERNAL const vdx_fs_kernels *vdx_fs_kernels_get(void);
/* The kernels of a level ("scalar", "avx2", "avx512"), NULL when the CPU
 * lacks it (tests). */
VDX_INTERNAL const vdx_fs_kernels *vdx_fs_kernels_level(const char *name);

#endif
