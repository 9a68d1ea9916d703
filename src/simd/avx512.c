/*
 * avx512.c — AVX-512F kernels (compiled with -mavx512f ...).  Two 16-lane
 * accumulators; the tail is a single masked load (any d).
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"

static inline __mmask16 tail_mask(size_t r) {
    return (__mmask16)((1u << r) - 1u);
}

static inline float l2sqr(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
                                  _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        s1 = _mm512_fmadd_ps(t1, t1, s1);
    }
    if (i + 16 <= d) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        i += 16;
    }
    if (i < d) {
        __mmask16 m = tail_mask(d - i);
        __m512 t0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
                                  _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(t0, t0, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline float inner_product(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                             _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= d) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < d) {
        __mmask16 m = tail_mask(d - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                             _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float l2sqr_f(const float *a, const float *b, size_t d) {
    return l2sqr(a, b, d);
}
static float inner_product_f(const float *a, const float *b, size_t d) {
    return inner_product(a, b, d);
}
static float norm_sqr(const float *a, size_t d) {
    return inner_product(a, a, d);
}

static void l2sqr_ny(float *out, const float *x, const float *y, size_t d,
                     size_t ny) {
    for (size_t j = 0; j < ny; j++) out[j] = l2sqr(x, y + j * d, d);
}

static void inner_product_ny(float *out, const float *x, const float *y,
                             size_t d, size_t ny) {
    for (size_t j = 0; j < ny; j++) out[j] = inner_product(x, y + j * d, d);
}

static void norms_sqr_ny(float *out, const float *x, size_t d, size_t n) {
    for (size_t j = 0; j < n; j++) out[j] = inner_product(x + j * d, x + j * d, d);
}

static size_t filter_less(const float *v, size_t n, float thr,
                          uint32_t *cand) {
    __m512 t = _mm512_set1_ps(thr);
    size_t c = 0, j = 0;
    for (; j < n; j += 16) {
        __mmask16 lm = n - j >= 16 ? (__mmask16)0xffff : tail_mask(n - j);
        unsigned m = _mm512_mask_cmp_ps_mask(
            lm, _mm512_maskz_loadu_ps(lm, v + j), t, _CMP_LT_OQ);
        while (m) {
            cand[c++] = (uint32_t)(j + (unsigned)__builtin_ctz(m));
            m &= m - 1;
        }
    }
    return c;
}

static size_t argmin(const float *v, size_t n, float *minval) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] < v[best]) best = j;
    *minval = v[best];
    return best;
}

static size_t filter_greater(const float *v, size_t n, float thr,
                             uint32_t *cand) {
    __m512 t = _mm512_set1_ps(thr);
    size_t c = 0, j = 0;
    for (; j < n; j += 16) {
        __mmask16 lm = n - j >= 16 ? (__mmask16)0xffff : tail_mask(n - j);
        unsigned m = _mm512_mask_cmp_ps_mask(
            lm, _mm512_maskz_loadu_ps(lm, v + j), t, _CMP_GT_OQ);
        while (m) {
            cand[c++] = (uint32_t)(j + (unsigned)__builtin_ctz(m));
            m &= m - 1;
        }
    }
    return c;
}

/* 16 vectors per step in one ZMM register, then the tail (masked). */
static void l2sqr_ny_t(float *out, const float *x, const float *yt, size_t d,
                       size_t ny) {
    for (size_t j = 0; j < ny; j += 16) {
        __mmask16 m = ny - j >= 16 ? (__mmask16)0xffff
                                   : (__mmask16)((1u << (ny - j)) - 1u);
        __m512 s0 = _mm512_setzero_ps();
        for (size_t c = 0; c < d; c++) {
            __m512 t0 = _mm512_sub_ps(_mm512_set1_ps(vdx_ld_f32(x + c)),
                                      _mm512_maskz_loadu_ps(m, yt + c * ny + j));
            s0 = _mm512_fmadd_ps(t0, t0, s0);
        }
        _mm512_mask_storeu_ps(out + j, m, s0);
    }
}

static void matvec_t(float *out, const float *a, const float *yt,
                     const float *base, size_t d, size_t ny) {
    for (size_t j = 0; j < ny; j += 16) {
        __mmask16 m = ny - j >= 16 ? (__mmask16)0xffff
                                   : (__mmask16)((1u << (ny - j)) - 1u);
        __m512 s0 = _mm512_maskz_loadu_ps(m, base + j);
        for (size_t c = 0; c < d; c++)
            s0 = _mm512_fmadd_ps(_mm512_set1_ps(vdx_ld_f32(a + c)),
                                 _mm512_maskz_loadu_ps(m, yt + c * ny + j), s0);
        _mm512_mask_storeu_ps(out + j, m, s0);
    }
}

const vdx_kernels vdx_kernels_avx512 = {
    "avx512", l2sqr_f,          inner_product_f, norm_sqr,
    l2sqr_ny, inner_product_ny, norms_sqr_ny,    filter_less,
    argmin, filter_greater, l2sqr_ny_t, matvec_t};
