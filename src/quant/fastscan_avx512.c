/*
 * fastscan_avx512.c — the AVX-512BW fast-scan kernel (compiled with the
 * flags of src/simd/avx512.c): two pairs of sub-quantizers per 512-bit
 * register (four 128-bit lanes of 16 table entries), otherwise the AVX2
 * scheme of fastscan_avx2.c; an odd last pair goes through 256-bit
 * registers.  Same contract as the scalar reference, bit for bit.
 */
#include <immintrin.h>

#include "fastscan.h"

static inline __m128i fold4(__m512i a) {
    __m256i h = _mm256_adds_epu16(_mm512_castsi512_si256(a),
                                  _mm512_extracti64x4_epi64(a, 1));
    return _mm_adds_epu16(_mm256_castsi256_si128(h),
                          _mm256_extracti128_si256(h, 1));
}

static inline __m128i fold2(__m256i a) {
    return _mm_adds_epu16(_mm256_castsi256_si128(a),
                          _mm256_extracti128_si256(a, 1));
}

static uint32_t scan32_avx512(const uint8_t *grp, size_t stride,
                              const uint8_t *lut, int64_t nsq, uint16_t thr,
                              uint16_t *sums) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const __m512i lo8 = _mm512_set1_epi16(0x00FF);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    const int64_t np = nsq / 2;
    int64_t p = 0;
    for (; p + 2 <= np; p += 2) {
        __m256i c0 = _mm256_loadu_si256((const __m256i *)(const void *)(grp + (size_t)p * stride));
        __m256i c1 = _mm256_loadu_si256((const __m256i *)(const void *)(grp + (size_t)(p + 1) * stride));
        __m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);
        __m512i t = _mm512_loadu_si512((const void *)(lut + p * 32));
        __m512i rl = _mm512_shuffle_epi8(t, _mm512_and_si512(c, nib));
        __m512i rh = _mm512_shuffle_epi8(
            t, _mm512_and_si512(_mm512_srli_epi16(c, 4), nib));
        a0 = _mm512_adds_epu16(a0, _mm512_and_si512(rl, lo8));
        a1 = _mm512_adds_epu16(a1, _mm512_srli_epi16(rl, 8));
        a2 = _mm512_adds_epu16(a2, _mm512_and_si512(rh, lo8));
        a3 = _mm512_adds_epu16(a3, _mm512_srli_epi16(rh, 8));
    }
    __m128i f0 = fold4(a0), f1 = fold4(a1), f2 = fold4(a2), f3 = fold4(a3);
    if (p < np) {
        const __m256i n8 = _mm256_set1_epi8(0x0F);
        const __m256i l8 = _mm256_set1_epi16(0x00FF);
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(grp + (size_t)p * stride));
        __m256i t = _mm256_loadu_si256((const __m256i *)(const void *)(lut + p * 32));
        __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, n8));
        __m256i rh = _mm256_shuffle_epi8(
            t, _mm256_and_si256(_mm256_srli_epi16(c, 4), n8));
        f0 = _mm_adds_epu16(f0, fold2(_mm256_and_si256(rl, l8)));
        f1 = _mm_adds_epu16(f1, fold2(_mm256_srli_epi16(rl, 8)));
        f2 = _mm_adds_epu16(f2, fold2(_mm256_and_si256(rh, l8)));
        f3 = _mm_adds_epu16(f3, fold2(_mm256_srli_epi16(rh, 8)));
    }
    __m256i s0 = _mm256_set_m128i(f1, f0); /* vectors 0..15 */
    __m256i s1 = _mm256_set_m128i(f3, f2); /* vectors 16..31 */
    _mm256_storeu_si256((__m256i *)(void *)sums, s0);
    _mm256_storeu_si256((__m256i *)(void *)(sums + 16), s1);
    const __m256i th = _mm256_set1_epi16((short)thr);
    __mmask16 m0 = _mm256_cmple_epu16_mask(s0, th);
    __mmask16 m1 = _mm256_cmple_epu16_mask(s1, th);
    return (uint32_t)m0 | ((uint32_t)m1 << 16);
}

static void scan32_multi_avx512(const uint8_t *grp, size_t stride,
                                const uint8_t *const *luts, int nq,
                                int64_t nsq, const uint16_t *thr,
                                uint16_t *sums, uint32_t *masks) {
    for (int j = 0; j < nq; j++)
        masks[j] = scan32_avx512(grp, stride, luts[j], nsq, thr[j], sums + 32 * j);
}

static int scan_run_avx512(const uint8_t *blocks, int64_t bbs, int64_t nsq,
                           int64_t g0, int64_t g1, const uint8_t *const *luts,
                           int nq, const uint16_t *thr, int cap,
                           int64_t *hits, uint16_t *sums, uint32_t *masks,
                           int64_t *next) {
    return vdx_fs_scan_run_with(scan32_multi_avx512, blocks, bbs, nsq, g0, g1,
                                luts, nq, thr, cap, hits, sums, masks, next);
}

const vdx_fs_kernels vdx_fs_kernels_avx512 = {"avx512", scan32_avx512,
                                              scan32_multi_avx512,
                                              scan_run_avx512};
