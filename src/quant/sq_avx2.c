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

const vdx_sq_kernels vdx_sq_kernels_avx2 = {
    "avx2", l2_u8,   ip_u8, l2_f16, ip_f16,
    l2_bf16, ip_bf16, l2_u4, ip_u4};
