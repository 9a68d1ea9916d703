/*
 * fastscan_avx2.c — the AVX2 fast-scan kernel (compiled with -mavx2): one
 * 256-bit register holds the 8-bit tables of a pair of sub-quantizers (one
 * per 128-bit lane), pshufb looks up the low and the high nibbles of 32
 * codes, and the bytes are widened into saturating 16-bit accumulators
 * (even bytes: vectors 0-7 / 16-23, odd bytes: 8-15 / 24-31, thanks to the
 * block's 0, 8, 1, 9, ... order).  The two lanes (even and odd
 * sub-quantizers) are added at the end.  Same contract as the scalar
 * reference in fastscan.c, bit for bit.
 */
#include <immintrin.h>

#include "fastscan.h"

static inline __m128i fold(__m256i a) {
    return _mm_adds_epu16(_mm256_castsi256_si128(a),
                          _mm256_extracti128_si256(a, 1));
}

static inline uint32_t le_mask(__m256i s, __m256i thr) {
    __m256i le = _mm256_cmpeq_epi16(_mm256_min_epu16(s, thr), s);
    /* two mask bits per 16-bit lane: keep the even ones */
    uint32_t m = (uint32_t)_mm256_movemask_epi8(le);
    m &= 0x55555555u;
    m = (m | (m >> 1)) & 0x33333333u;
    m = (m | (m >> 2)) & 0x0F0F0F0Fu;
    m = (m | (m >> 4)) & 0x00FF00FFu;
    m = (m | (m >> 8)) & 0x0000FFFFu;
    return m;
}

/* nsq <= 256: no sum can reach 65536, so plain (wrapping) 16-bit adds are
 * exact: a0 collects whole 16-bit lanes (odd byte * 256 + even byte), a1
 * the odd bytes, and the even sums are a0 - (a1 << 8) — two adds per
 * lookup instead of a mask, a shift and two saturating adds. */
static uint32_t scan32_avx2_small(const uint8_t *grp, size_t stride,
                                  const uint8_t *lut, int64_t nsq,
                                  uint16_t thr, uint16_t *sums) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const uint8_t *c0 = grp;
    const int64_t np = nsq / 2;
    for (int64_t p = 0; p < np; p++, c0 += stride) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)c0);
        __m256i t = _mm256_load_si256((const __m256i *)(const void *)(lut + p * 32));
        __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, nib));
        __m256i rh = _mm256_shuffle_epi8(
            t, _mm256_and_si256(_mm256_srli_epi16(c, 4), nib));
        a0 = _mm256_add_epi16(a0, rl);
        a1 = _mm256_add_epi16(a1, _mm256_srli_epi16(rl, 8));
        a2 = _mm256_add_epi16(a2, rh);
        a3 = _mm256_add_epi16(a3, _mm256_srli_epi16(rh, 8));
    }
    a0 = _mm256_sub_epi16(a0, _mm256_slli_epi16(a1, 8));
    a2 = _mm256_sub_epi16(a2, _mm256_slli_epi16(a3, 8));
    /* lanes: low = even sub-quantizers, high = odd; add them */
    __m256i s0 = _mm256_add_epi16(_mm256_permute2x128_si256(a0, a1, 0x20),
                                  _mm256_permute2x128_si256(a0, a1, 0x31));
    __m256i s1 = _mm256_add_epi16(_mm256_permute2x128_si256(a2, a3, 0x20),
                                  _mm256_permute2x128_si256(a2, a3, 0x31));
    _mm256_storeu_si256((__m256i *)(void *)sums, s0);
    _mm256_storeu_si256((__m256i *)(void *)(sums + 16), s1);
    const __m256i th = _mm256_set1_epi16((short)thr);
    __m256i le0 = _mm256_cmpeq_epi16(_mm256_min_epu16(s0, th), s0);
    __m256i le1 = _mm256_cmpeq_epi16(_mm256_min_epu16(s1, th), s1);
    /* packs interleaves the 128-bit lanes: put them back in order */
    __m256i b = _mm256_permute4x64_epi64(_mm256_packs_epi16(le0, le1), 0xD8);
    return (uint32_t)_mm256_movemask_epi8(b);
}

static uint32_t scan32_avx2_sat(const uint8_t *grp, size_t stride,
                            const uint8_t *lut, int64_t nsq, uint16_t thr,
                            uint16_t *sums) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i lo8 = _mm256_set1_epi16(0x00FF);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t p = 0; p < nsq / 2; p++) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(grp + (size_t)p * stride));
        __m256i t = _mm256_load_si256((const __m256i *)(const void *)(lut + p * 32));
        __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, nib));
        __m256i rh = _mm256_shuffle_epi8(
            t, _mm256_and_si256(_mm256_srli_epi16(c, 4), nib));
        a0 = _mm256_adds_epu16(a0, _mm256_and_si256(rl, lo8));
        a1 = _mm256_adds_epu16(a1, _mm256_srli_epi16(rl, 8));
        a2 = _mm256_adds_epu16(a2, _mm256_and_si256(rh, lo8));
        a3 = _mm256_adds_epu16(a3, _mm256_srli_epi16(rh, 8));
    }
    __m256i s0 = _mm256_set_m128i(fold(a1), fold(a0)); /* vectors 0..15 */
    __m256i s1 = _mm256_set_m128i(fold(a3), fold(a2)); /* vectors 16..31 */
    _mm256_storeu_si256((__m256i *)(void *)sums, s0);
    _mm256_storeu_si256((__m256i *)(void *)(sums + 16), s1);
    const __m256i th = _mm256_set1_epi16((short)thr);
    return le_mask(s0, th) | (le_mask(s1, th) << 16);
}

static uint32_t scan32_avx2(const uint8_t *grp, size_t stride,
                            const uint8_t *lut, int64_t nsq, uint16_t thr,
                            uint16_t *sums) {
    return nsq <= 256 ? scan32_avx2_small(grp, stride, lut, nsq, thr, sums)
                      : scan32_avx2_sat(grp, stride, lut, nsq, thr, sums);
}

/* The 32 sums of one group for NQ queries per pass over the codes (nsq <=
 * 256): the code loads and the nibble extraction are shared, 4
 * accumulators per query; s[j][0] holds vectors 0..15 of query j,
 * s[j][1] vectors 16..31. */
static inline __attribute__((always_inline)) void
group_sums(const uint8_t *grp, size_t stride, const uint8_t *const *luts,
           const int NQ, int64_t np, __m256i s[][2]) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i a[VDX_FS_MAX_QBS][4];
    for (int j = 0; j < NQ; j++)
        a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm256_setzero_si256();
    const uint8_t *c0 = grp;
    for (int64_t p = 0; p < np; p++, c0 += stride) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)c0);
        __m256i lo = _mm256_and_si256(c, nib);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), nib);
        for (int j = 0; j < NQ; j++) {
            __m256i t = _mm256_load_si256((const __m256i *)(const void *)(luts[j] + p * 32));
            __m256i rl = _mm256_shuffle_epi8(t, lo);
            __m256i rh = _mm256_shuffle_epi8(t, hi);
            a[j][0] = _mm256_add_epi16(a[j][0], rl);
            a[j][1] = _mm256_add_epi16(a[j][1], _mm256_srli_epi16(rl, 8));
            a[j][2] = _mm256_add_epi16(a[j][2], rh);
            a[j][3] = _mm256_add_epi16(a[j][3], _mm256_srli_epi16(rh, 8));
        }
    }
    for (int j = 0; j < NQ; j++) {
        __m256i a0 = _mm256_sub_epi16(a[j][0], _mm256_slli_epi16(a[j][1], 8));
        __m256i a2 = _mm256_sub_epi16(a[j][2], _mm256_slli_epi16(a[j][3], 8));
        s[j][0] = _mm256_add_epi16(_mm256_permute2x128_si256(a0, a[j][1], 0x20),
                                   _mm256_permute2x128_si256(a0, a[j][1], 0x31));
        s[j][1] = _mm256_add_epi16(_mm256_permute2x128_si256(a2, a[j][3], 0x20),
                                   _mm256_permute2x128_si256(a2, a[j][3], 0x31));
    }
}

/* 0xFF bytes where a sum is <= th, in lane-interleaved order (packs);
 * le_order puts them back in vector order */
static inline __m256i le_bytes(__m256i s0, __m256i s1, __m256i th) {
    __m256i l0 = _mm256_cmpeq_epi16(_mm256_min_epu16(s0, th), s0);
    __m256i l1 = _mm256_cmpeq_epi16(_mm256_min_epu16(s1, th), s1);
    return _mm256_packs_epi16(l0, l1);
}
static inline uint32_t le_order(__m256i le) {
    return (uint32_t)_mm256_movemask_epi8(_mm256_permute4x64_epi64(le, 0xD8));
}

static inline __attribute__((always_inline)) void
multi_small(const uint8_t *grp, size_t stride, const uint8_t *const *luts,
            const int NQ, int64_t nsq, const uint16_t *thr, uint16_t *sums,
            uint32_t *masks) {
    __m256i s[VDX_FS_MAX_QBS][2];
    group_sums(grp, stride, luts, NQ, nsq / 2, s);
    for (int j = 0; j < NQ; j++) {
        _mm256_storeu_si256((__m256i *)(void *)(sums + 32 * j), s[j][0]);
        _mm256_storeu_si256((__m256i *)(void *)(sums + 32 * j + 16), s[j][1]);
        masks[j] = le_order(le_bytes(s[j][0], s[j][1],
                                     _mm256_set1_epi16((short)thr[j])));
    }
}

static void scan32_multi_avx2(const uint8_t *grp, size_t stride,
                              const uint8_t *const *luts, int nq, int64_t nsq,
                              const uint16_t *thr, uint16_t *sums,
                              uint32_t *masks) {
    if (nsq > 256 || nq > VDX_FS_MAX_QBS) {
        for (int j = 0; j < nq; j++)
            masks[j] = scan32_avx2(grp, stride, luts[j], nsq, thr[j], sums + 32 * j);
        return;
    }
    switch (nq) {
    case 2: multi_small(grp, stride, luts, 2, nsq, thr, sums, masks); break;
    case 1: multi_small(grp, stride, luts, 1, nsq, thr, sums, masks); break;
    default: break;
    }
}

/* scan_run for NQ queries, nsq <= 256: group_sums with the sums kept in
 * registers unless some vector passes. */
static inline __attribute__((always_inline)) int
run_small(const uint8_t *blocks, int64_t bbs, int64_t nsq, int64_t g0,
          int64_t g1, const uint8_t *const *luts, const int NQ,
          const uint16_t *thr, int cap, int64_t *hits, uint16_t *sums,
          uint32_t *masks, int64_t *next) {
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    const int64_t gpb = bbs / 32;
    __m256i th[VDX_FS_MAX_QBS];
    for (int j = 0; j < NQ; j++) th[j] = _mm256_set1_epi16((short)thr[j]);
    const uint8_t *blk = blocks + (size_t)(g0 / gpb) * bsz;
    int64_t in_blk = g0 % gpb;
    int nh = 0;
    for (int64_t g = g0; g < g1; g++, in_blk++) {
        if (in_blk == gpb) {
            blk += bsz;
            in_blk = 0;
        }
        __m256i s[VDX_FS_MAX_QBS][2], le[VDX_FS_MAX_QBS];
        group_sums(blk + (size_t)in_blk * 32, (size_t)bbs, luts, NQ, nsq / 2, s);
        __m256i any = _mm256_setzero_si256();
        for (int j = 0; j < NQ; j++) {
            le[j] = le_bytes(s[j][0], s[j][1], th[j]);
            any = _mm256_or_si256(any, le[j]);
        }
        if (_mm256_testz_si256(any, any)) continue;
        uint16_t *sh = sums + (size_t)32 * nh * NQ;
        for (int j = 0; j < NQ; j++) {
            _mm256_storeu_si256((__m256i *)(void *)(sh + 32 * j), s[j][0]);
            _mm256_storeu_si256((__m256i *)(void *)(sh + 32 * j + 16), s[j][1]);
            masks[nh * NQ + j] = le_order(le[j]);
        }
        hits[nh++] = g;
        if (nh == cap) {
            *next = g + 1;
            return nh;
        }
    }
    *next = g1;
    return nh;
}

static int scan_run_avx2(const uint8_t *blocks, int64_t bbs, int64_t nsq,
                         int64_t g0, int64_t g1, const uint8_t *const *luts,
                         int nq, const uint16_t *thr, int cap, int64_t *hits,
                         uint16_t *sums, uint32_t *masks, int64_t *next) {
    if (nsq <= 256 && nq == 1)
        return run_small(blocks, bbs, nsq, g0, g1, luts, 1, thr, cap, hits,
                         sums, masks, next);
    if (nsq <= 256 && nq == 2)
        return run_small(blocks, bbs, nsq, g0, g1, luts, 2, thr, cap, hits,
                         sums, masks, next);
    return vdx_fs_scan_run_with(scan32_multi_avx2, blocks, bbs, nsq, g0, g1,
                                luts, nq, thr, cap, hits, sums, masks, next);
}

const vdx_fs_kernels vdx_fs_kernels_avx2 = {"avx2", scan32_avx2,
                                            scan32_multi_avx2, scan_run_avx2};
