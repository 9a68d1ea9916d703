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

/* ---- scan_run: two groups per 512-bit register ---------------------------
 *
 * For nsq <= 256 (no sum reaches 65536, so wrapping 16-bit adds are exact,
 * as in fastscan_avx2.c's small kernels) the run kernel puts group g in the
 * low 256 bits and group g + 1 in the high 256 bits of one register, so one
 * byte shuffle looks up 64 codes against the pair's table broadcast to both
 * halves.  Lanes after accumulation: a0 / a2 hold [g even-sq, g odd-sq,
 * g+1 even-sq, g+1 odd-sq] 16-bit sums of the low / high nibbles (vectors
 * 0-7 / 16-23, odd bytes 8-15 / 24-31 in a1 / a3).  The threshold test is
 * a mask compare on those sums as they come out of the lane folding; the
 * sums are put in vector order and stored only for a group with a hit, so
 * groups without candidates never leave registers. */

/* 64-bit halves of a, as the block's second group is a + 32 bytes
 * (bbs >= 64, both in one block) or the next block's first */
static inline __attribute__((always_inline)) __m512i
load_pair(const uint8_t *ga, const uint8_t *gb, const int CONTIG) {
    if (CONTIG) return _mm512_loadu_si512((const void *)ga);
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)ga)),
        _mm256_loadu_si256((const __m256i *)(const void *)gb), 1);
}

/* a += b in place: GCC 12 otherwise writes each loop-carried accumulator
 * to a new register and copies it back every iteration (a register move
 * per accumulator and pair of sub-quantizers).  Plain intrinsics where
 * the AVX-512 instructions are emulated (tests/emu). */
static inline __m512i acc16(__m512i a, __m512i b) {
#if defined(__AVX512BW__) && defined(__GNUC__)
    __asm__("vpaddw %1, %0, %0" : "+v"(a) : "v"(b));
    return a;
#else
    return _mm512_add_epi16(a, b);
#endif
}

/* an empty asm that pins the accumulators to their registers across
 * iterations (the same GCC 12 weakness) */
#if defined(__AVX512BW__) && defined(__GNUC__)
#define VDX_FS_PIN(A0, A1, A2, A3) __asm__("" : "+v"(A0), "+v"(A1), "+v"(A2), "+v"(A3))
#else
#define VDX_FS_PIN(A0, A1, A2, A3) ((void)0)
#endif

/* one query's look-ups of a pair of sub-quantizers into its four
 * accumulators (named variables: GCC 12 keeps arrays of them in
 * registers but adds a register copy per accumulator and iteration) */
#define VDX_FS_ACC(A0, A1, A2, A3, LUT)                                        \
    do {                                                                       \
        __m512i t_ = _mm512_broadcast_i64x4(                                   \
            _mm256_load_si256((const __m256i *)(const void *)((LUT) + p * 32))); \
        __m512i rl_ = _mm512_shuffle_epi8(t_, lo);                             \
        __m512i rh_ = _mm512_shuffle_epi8(t_, hi);                             \
        A0 = acc16(A0, rl_);                                        \
        A1 = acc16(A1, _mm512_srli_epi16(rl_, 8));                  \
        A2 = acc16(A2, rh_);                                        \
        A3 = acc16(A3, _mm512_srli_epi16(rh_, 8));                  \
    } while (0)

/* the 16-bit sums from the accumulators of one nibble half: w whole
 * lanes, o odd bytes; [a 0-7, b 0-7, a 8-15, b 8-15] (+16 for the high
 * nibbles) */
static inline __m512i fold_pair(__m512i w, __m512i o) {
    __m512i e = _mm512_sub_epi16(w, _mm512_slli_epi16(o, 8));
    /* [a even-sq, b even-sq, a odd bytes, b odd bytes] + the odd sq */
    __m512i x = _mm512_shuffle_i64x2(e, o, _MM_SHUFFLE(2, 0, 2, 0));
    __m512i y = _mm512_shuffle_i64x2(e, o, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm512_add_epi16(x, y);
}

/* The sums of groups a and b for NQ (1 or 2) queries: s[j][0] holds
 * [a 0-7, b 0-7, a 8-15, b 8-15], s[j][1] the same for vectors 16-31. */
static inline __attribute__((always_inline)) void
pair_sums(const uint8_t *ga, const uint8_t *gb, size_t stride,
          const uint8_t *const *luts, const int NQ, int64_t np,
          const int CONTIG, __m512i s[][2]) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const uint8_t *l0 = luts[0], *l1 = NQ > 1 ? luts[1] : luts[0];
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t p = 0; /* np >= 1 */
    do {
        __m512i c = load_pair(ga + (size_t)p * stride, gb + (size_t)p * stride, CONTIG);
        __m512i lo = _mm512_and_si512(c, nib);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), nib);
        VDX_FS_ACC(a0, a1, a2, a3, l0);
        if (NQ > 1) VDX_FS_ACC(b0, b1, b2, b3, l1);
        VDX_FS_PIN(a0, a1, a2, a3);
        if (NQ > 1) VDX_FS_PIN(b0, b1, b2, b3);
    } while (++p < np);
    s[0][0] = fold_pair(a0, a1);
    s[0][1] = fold_pair(a2, a3);
    if (NQ > 1) {
        s[1][0] = fold_pair(b0, b1);
        s[1][1] = fold_pair(b2, b3);
    }
}

/* mask bits of group a (b = 0) or b (b = 1) from the lane order of
 * pair_sums: bits 0-7 a, 8-15 b, 16-23 a, 24-31 b */
static inline uint32_t half_mask(uint32_t lo, uint32_t hi, int b) {
    uint32_t m0 = ((lo >> (8 * b)) & 0xFFu) | ((lo >> (8 + 8 * b)) & 0xFF00u);
    uint32_t m1 = ((hi >> (8 * b)) & 0xFFu) | ((hi >> (8 + 8 * b)) & 0xFF00u);
    return m0 | (m1 << 16);
}

static inline __attribute__((always_inline)) int
run_pairs(const uint8_t *blocks, int64_t bbs, int64_t nsq, int64_t g0,
          int64_t g1, const uint8_t *const *luts, const int NQ,
          const uint16_t *thr, int cap, int64_t *hits, uint16_t *sums,
          uint32_t *masks, int64_t *next, const int CONTIG) {
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    const int64_t gpb = bbs / 32;
    /* vector order of the 64-bit quarters: a 0-7, a 8-15, b 0-7, b 8-15 */
    const __m512i order = _mm512_set_epi64(7, 6, 3, 2, 5, 4, 1, 0);
    __m512i th[VDX_FS_MAX_QBS];
    for (int j = 0; j < NQ; j++) th[j] = _mm512_set1_epi16((short)thr[j]);
    int nh = 0;
    for (int64_t g = g0; g < g1; g += 2) {
        const uint8_t *ga = blocks + (size_t)(g / gpb) * bsz + (size_t)(g % gpb) * 32;
        const int two = g + 1 < g1;
        /* a lone last group is scanned twice over (its copy ignored) */
        const uint8_t *gb = !two ? ga
                            : (g + 1) % gpb ? ga + 32
                                            : blocks + (size_t)((g + 1) / gpb) * bsz;
        __m512i s[VDX_FS_MAX_QBS][2];
        uint32_t mlo[VDX_FS_MAX_QBS], mhi[VDX_FS_MAX_QBS], any = 0;
        if (CONTIG && gb == ga + 32)
            pair_sums(ga, gb, (size_t)bbs, luts, NQ, nsq / 2, 1, s);
        else
            pair_sums(ga, gb, (size_t)bbs, luts, NQ, nsq / 2, 0, s);
        for (int j = 0; j < NQ; j++) {
            mlo[j] = (uint32_t)_mm512_cmple_epu16_mask(s[j][0], th[j]);
            mhi[j] = (uint32_t)_mm512_cmple_epu16_mask(s[j][1], th[j]);
            any |= mlo[j] | mhi[j];
        }
        if (!any) continue;
        for (int b = 0; b < 1 + two; b++) {
            uint32_t m[VDX_FS_MAX_QBS], anyb = 0;
            for (int j = 0; j < NQ; j++) {
                m[j] = half_mask(mlo[j], mhi[j], b);
                anyb |= m[j];
            }
            if (!anyb) continue;
            uint16_t *sh = sums + (size_t)32 * nh * NQ;
            for (int j = 0; j < NQ; j++) {
                __m512i v0 = _mm512_permutexvar_epi64(order, s[j][0]);
                __m512i v1 = _mm512_permutexvar_epi64(order, s[j][1]);
                __m256i w0 = b ? _mm512_extracti64x4_epi64(v0, 1) : _mm512_castsi512_si256(v0);
                __m256i w1 = b ? _mm512_extracti64x4_epi64(v1, 1) : _mm512_castsi512_si256(v1);
                _mm256_storeu_si256((__m256i *)(void *)(sh + 32 * j), w0);
                _mm256_storeu_si256((__m256i *)(void *)(sh + 32 * j + 16), w1);
                masks[nh * NQ + j] = m[j];
            }
            hits[nh++] = g + b;
            if (nh == cap) {
                *next = g + b + 1;
                return nh;
            }
        }
    }
    *next = g1;
    return nh;
}

static int scan_run_avx512(const uint8_t *blocks, int64_t bbs, int64_t nsq,
                           int64_t g0, int64_t g1, const uint8_t *const *luts,
                           int nq, const uint16_t *thr, int cap,
                           int64_t *hits, uint16_t *sums, uint32_t *masks,
                           int64_t *next) {
    /* bbs >= 64: most pairs of groups lie side by side in a block */
    if (nsq <= 256 && nq == 1)
        return bbs >= 64 ? run_pairs(blocks, bbs, nsq, g0, g1, luts, 1, thr, cap,
                                     hits, sums, masks, next, 1)
                         : run_pairs(blocks, bbs, nsq, g0, g1, luts, 1, thr, cap,
                                     hits, sums, masks, next, 0);
    if (nsq <= 256 && nq == 2)
        return bbs >= 64 ? run_pairs(blocks, bbs, nsq, g0, g1, luts, 2, thr, cap,
                                     hits, sums, masks, next, 1)
                         : run_pairs(blocks, bbs, nsq, g0, g1, luts, 2, thr, cap,
                                     hits, sums, masks, next, 0);
    return vdx_fs_scan_run_with(scan32_multi_avx512, blocks, bbs, nsq, g0, g1,
                                luts, nq, thr, cap, hits, sums, masks, next);
}

const vdx_fs_kernels vdx_fs_kernels_avx512 = {"avx512", scan32_avx512,
                                              scan32_multi_avx512,
                                              scan_run_avx512};
