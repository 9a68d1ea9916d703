/*
 * sq_avx2.c — AVX2 + FMA + F16C fused scalar-quantizer kernels (compiled
 * with -mavx2 -mfma -mf16c): codes are widened to floats in registers and
 * accumulated against the prepared query, never written out decoded.
 * Same contracts as the scalar reference in sq.c; tails done one by one.
 * 8-bit, 4-bit, fp16 and bf16 codes; 6-bit codes use the scalar path.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "sq.h"

static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline __m256 u8x8(const uint8_t *c) {
    __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)c);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
}

static inline __m256 f16x8(const uint8_t *c) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)c));
}

static inline __m256 bf16x8(const uint8_t *c) {
    __m256i v = _mm256_cvtepu16_epi32(
        _mm_loadu_si128((const __m128i *)(const void *)c));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static inline float f16_1(const uint8_t *c) {
    uint16_t h;
    memcpy(&h, c, 2);
    return _cvtsh_ss(h);
}

static inline float bf16_1(const uint8_t *c) {
    uint16_t h;
    memcpy(&h, c, 2);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float l2_u8(const float *r, const float *b, const uint8_t *c,
                   size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), u8x8(c + i),
                                     _mm256_loadu_ps(r + i));
        __m256 t1 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 8),
                                     u8x8(c + i + 8), _mm256_loadu_ps(r + i + 8));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    if (i + 8 <= d) {
        __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), u8x8(c + i),
                                     _mm256_loadu_ps(r + i));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        i += 8;
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; i++) {
        float t = r[i] - b[i] * (float)c[i];
        s += t * t;
    }
    return s;
}

static float ip_u8(const float *w, const uint8_t *c, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), u8x8(c + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), u8x8(c + i + 8), s1);
    }
    if (i + 8 <= d) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), u8x8(c + i), s0);
        i += 8;
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; i++) s += w[i] * (float)c[i];
    return s;
}

#define HALF_KERNELS(NAME, LOAD8, LOAD1)                                     \
    static float l2_##NAME(const float *q, const uint8_t *c, size_t d) {     \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();           \
        size_t i = 0;                                                        \
        for (; i + 16 <= d; i += 16) {                                       \
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD8(c + 2 * i)); \
            __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8),            \
                                      LOAD8(c + 2 * i + 16));                \
            s0 = _mm256_fmadd_ps(t0, t0, s0);                                \
            s1 = _mm256_fmadd_ps(t1, t1, s1);                                \
        }                                                                    \
        if (i + 8 <= d) {                                                    \
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD8(c + 2 * i)); \
            s0 = _mm256_fmadd_ps(t0, t0, s0);                                \
            i += 8;                                                          \
        }                                                                    \
        float s = hsum(_mm256_add_ps(s0, s1));                               \
        for (; i < d; i++) {                                                 \
            float t = q[i] - LOAD1(c + 2 * i);                               \
            s += t * t;                                                      \
        }                                                                    \
        return s;                                                            \
    }                                                                        \
    static float ip_##NAME(const float *q, const uint8_t *c, size_t d) {     \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();           \
        size_t i = 0;                                                        \
        for (; i + 16 <= d; i += 16) {                                       \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD8(c + 2 * i), s0); \
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8),                 \
                                 LOAD8(c + 2 * i + 16), s1);                 \
        }                                                                    \
        if (i + 8 <= d) {                                                    \
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD8(c + 2 * i), s0); \
            i += 8;                                                          \
        }                                                                    \
        float s = hsum(_mm256_add_ps(s0, s1));                               \
        for (; i < d; i++) s += q[i] * LOAD1(c + 2 * i);                     \
        return s;                                                            \
    }

HALF_KERNELS(f16, f16x8, f16_1)
HALF_KERNELS(bf16, bf16x8, bf16_1)

/* 16 components from 8 bytes of 4-bit codes, as two vectors of 8 floats */
static inline void u4x16(const uint8_t *c, __m256 *f0, __m256 *f1) {
    const __m128i m = _mm_set1_epi8(0x0f);
    __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)c);
    __m128i lo = _mm_and_si128(v, m);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    __m128i il = _mm_unpacklo_epi8(lo, hi); /* components in order */
    *f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(il));
    *f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(il, 8)));
}

static inline float nib(const uint8_t *c, size_t i) {
    return (float)((c[i / 2] >> ((i & 1) * 4)) & 15);
}

static float l2_u4(const float *r, const float *b, const uint8_t *c,
                   size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 c0, c1;
        u4x16(c + i / 2, &c0, &c1);
        __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), c0, _mm256_loadu_ps(r + i));
        __m256 t1 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 8), c1,
                                     _mm256_loadu_ps(r + i + 8));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; i++) {
        float t = r[i] - b[i] * nib(c, i);
        s += t * t;
    }
    return s;
}

static float ip_u4(const float *w, const uint8_t *c, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 c0, c1;
        u4x16(c + i / 2, &c0, &c1);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), c0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), c1, s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; i++) s += w[i] * nib(c, i);
    return s;
}

/* ---- encoders ------------------------------------------------------------ */

/* Eight halves (low 16 bits of each 32-bit lane) stored as 16 bytes. */
static inline void store_halves(__m256i h, uint8_t *c) {
    __m128i lo = _mm256_castsi256_si128(h), hi = _mm256_extracti128_si256(h, 1);
    _mm_storeu_si128((__m128i *)(void *)c, _mm_packus_epi32(lo, hi));
}

/* vdx_fp16_from_float on eight lanes, the same operations in the same
 * order (FAISS's generic conversion, ties away from zero; F16C's
 * vcvtps2ph rounds ties to even, so it would change codes). */
static void enc_f16(const float *x, uint8_t *c, size_t d) {
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(255 << 23);
    const __m256i rmask = _mm256_set1_epi32((int)~0xfffu);
    const __m256 scale = _mm256_castsi256_ps(_mm256_set1_epi32(15 << 23));
    const __m256 cap = _mm256_castsi256_ps(_mm256_set1_epi32((31 << 23) - 0x1000));
    const __m256i half = _mm256_set1_epi32(0x1000);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        __m256i a = _mm256_and_si256(u, absm);
        __m256i sign = _mm256_srli_epi32(_mm256_andnot_si256(absm, u), 16);
        __m256 fs = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_and_si256(a, rmask)), scale);
        fs = _mm256_min_ps(fs, cap);
        __m256i o = _mm256_srli_epi32(_mm256_add_epi32(_mm256_castps_si256(fs), half), 13);
        /* Inf -> 0x7c00, NaN -> 0x7e00 */
        __m256i nan = _mm256_cmpgt_epi32(a, inf);
        __m256i big = _mm256_or_si256(nan, _mm256_cmpeq_epi32(a, inf));
        __m256i sp = _mm256_or_si256(_mm256_set1_epi32(0x7c00),
                                     _mm256_and_si256(nan, _mm256_set1_epi32(0x0200)));
        o = _mm256_blendv_epi8(o, sp, big);
        store_halves(_mm256_or_si256(o, sign), c + 2 * i);
    }
    for (; i < d; i++) {
        uint16_t h = vdx_fp16_from_float(x[i]);
        c[2 * i] = (uint8_t)h;
        c[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

/* bf16 with round to nearest even, NaN kept quiet: sq.c's bf16_from_float
 * on eight lanes (integer arithmetic; AVX512-BF16's vcvtneps2bf16 would
 * flush subnormals, so it is not used). */
static void enc_bf16(const float *x, uint8_t *c, size_t d) {
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        __m256i r = _mm256_add_epi32(
            u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
        r = _mm256_srli_epi32(r, 16);
        __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
        store_halves(_mm256_blendv_epi8(r, q, nan), c + 2 * i);
    }
    for (; i < d; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        uint16_t h = (u & 0x7fffffffu) > 0x7f800000u
                         ? (uint16_t)((u >> 16) | 0x40u)
                         : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        c[2 * i] = (uint8_t)h;
        c[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

/* 8-bit codes: the reference's division (exact in IEEE arithmetic, so the
 * same as the scalar one), clamp, scale and truncation. */
static void enc_u8(const float *x, const float *vmin, const float *vdiff,
                   uint8_t *c, size_t d) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f),
                 l = _mm256_set1_ps(255.0f);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 vd = _mm256_loadu_ps(vdiff + i);
        __m256 t = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i),
                                               _mm256_loadu_ps(vmin + i)), vd);
        /* max/min return their second operand on NaN: a 0/0 lane -> 0 */
        t = _mm256_min_ps(_mm256_max_ps(t, zero), one);
        t = _mm256_and_ps(t, _mm256_cmp_ps(vd, zero, _CMP_NEQ_OQ));
        __m256i b = _mm256_cvttps_epi32(_mm256_mul_ps(t, l));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(b),
                                     _mm256_extracti128_si256(b, 1));
        _mm_storel_epi64((__m128i *)(void *)(c + i), _mm_packus_epi16(w, w));
    }
    for (; i < d; i++) {
        float t = 0;
        if (vdiff[i] != 0) {
            t = (x[i] - vmin[i]) / vdiff[i];
            if (t < 0) t = 0;
            if (t > 1.0f) t = 1.0f;
        }
        c[i] = (uint8_t)(int)(t * 255.0f);
    }
}

const vdx_sq_kernels vdx_sq_kernels_avx2 = {
    "avx2",  l2_u8,   ip_u8, l2_f16, ip_f16,  l2_bf16,
    ip_bf16, l2_u4,   ip_u4, enc_f16, enc_bf16, enc_u8};
