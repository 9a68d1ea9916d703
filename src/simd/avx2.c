/*
 * avx2.c — AVX2 + FMA kernels (compiled with -mavx2 -mfma).  Two 8-lane
 * accumulators hide the FMA latency; tails use masked loads so any d works
 * without reading past the vector.
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"

static inline __m256i tail_mask(size_t r) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                  0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline float l2sqr(const float *a, const float *b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
                                  _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    if (i + 8 <= d) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        i += 8;
    }
    if (i < d) {
        __m256i m = tail_mask(d - i);
        __m256 t0 = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
                                  _mm256_maskload_ps(b + i, m));
        s1 = _mm256_fmadd_ps(t0, t0, s1);
    }
    return hsum(_mm256_add_ps(s0, s1));
}

static inline float inner_product(const float *a, const float *b, size_t d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= d) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    if (i < d) {
        __m256i m = tail_mask(d - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
                             _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum(_mm256_add_ps(s0, s1));
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

/* Sums the lanes of four accumulators into out[0..3]. */
static inline void hsum4(float *out, __m256 a, __m256 b, __m256 c, __m256 e) {
    __m256 ab = _mm256_hadd_ps(a, b), ce = _mm256_hadd_ps(c, e);
    __m256 s = _mm256_hadd_ps(ab, ce); /* a0+a1+a2+a3, b.., c.., e.. per half */
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    _mm_storeu_ps(out, r);
}

/* Four database rows at a time: four independent FMA chains keep the
 * pipeline and the memory system busy (one row at a time is one chain). */
static void l2sqr_ny(float *out, const float *x, const float *y, size_t d,
                     size_t ny) {
    size_t j = 0;
    if (d % 8 == 0) {
        for (; j + 4 <= ny; j += 4) {
            const float *y0 = y + j * d, *y1 = y0 + d, *y2 = y1 + d, *y3 = y2 + d;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t i = 0; i < d; i += 8) {
                __m256 xv = _mm256_loadu_ps(x + i);
                __m256 t0 = _mm256_sub_ps(xv, _mm256_loadu_ps(y0 + i));
                __m256 t1 = _mm256_sub_ps(xv, _mm256_loadu_ps(y1 + i));
                __m256 t2 = _mm256_sub_ps(xv, _mm256_loadu_ps(y2 + i));
                __m256 t3 = _mm256_sub_ps(xv, _mm256_loadu_ps(y3 + i));
                s0 = _mm256_fmadd_ps(t0, t0, s0);
                s1 = _mm256_fmadd_ps(t1, t1, s1);
                s2 = _mm256_fmadd_ps(t2, t2, s2);
                s3 = _mm256_fmadd_ps(t3, t3, s3);
            }
            hsum4(out + j, s0, s1, s2, s3);
        }
        /* the last rows summed in the same order, so that a row's distance
         * does not depend on where it sits (a shard's rows against one
         * index's) */
        for (; j < ny; j++) {
            const float *y0 = y + j * d;
            __m256 s0 = _mm256_setzero_ps();
            for (size_t i = 0; i < d; i += 8) {
                __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y0 + i));
                s0 = _mm256_fmadd_ps(t0, t0, s0);
            }
            float r[4];
            hsum4(r, s0, s0, s0, s0);
            out[j] = r[0];
        }
    }
    for (; j < ny; j++) out[j] = l2sqr(x, y + j * d, d);
}

static void inner_product_ny(float *out, const float *x, const float *y,
                             size_t d, size_t ny) {
    size_t j = 0;
    if (d % 8 == 0) {
        for (; j + 4 <= ny; j += 4) {
            const float *y0 = y + j * d, *y1 = y0 + d, *y2 = y1 + d, *y3 = y2 + d;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t i = 0; i < d; i += 8) {
                __m256 xv = _mm256_loadu_ps(x + i);
                s0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y0 + i), s0);
                s1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y1 + i), s1);
                s2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y2 + i), s2);
                s3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y3 + i), s3);
            }
            hsum4(out + j, s0, s1, s2, s3);
        }
        for (; j < ny; j++) { /* as in l2sqr_ny */
            const float *y0 = y + j * d;
            __m256 s0 = _mm256_setzero_ps();
            for (size_t i = 0; i < d; i += 8)
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y0 + i), s0);
            float r[4];
            hsum4(r, s0, s0, s0, s0);
            out[j] = r[0];
        }
    }
    for (; j < ny; j++) out[j] = inner_product(x, y + j * d, d);
}

static void norms_sqr_ny(float *out, const float *x, size_t d, size_t n) {
    for (size_t j = 0; j < n; j++) out[j] = inner_product(x + j * d, x + j * d, d);
}

/* Most entries fail the threshold test, so one compare + movemask per 8
 * lanes and a rarely taken branch is the whole cost. */
static size_t filter_less(const float *v, size_t n, float thr,
                          uint32_t *cand) {
    __m256 t = _mm256_set1_ps(thr);
    size_t c = 0, j = 0;
    for (; j + 8 <= n; j += 8) {
        unsigned m = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(v + j), t, _CMP_LT_OQ));
        while (m) {
            cand[c++] = (uint32_t)(j + (unsigned)__builtin_ctz(m));
            m &= m - 1;
        }
    }
    for (; j < n; j++)
        if (v[j] < thr) cand[c++] = (uint32_t)j;
    return c;
}

/* Eight running minima with their indices; the lanes are reduced at the
 * end, lowest index first among equal values. */
/* Two passes: the minimum value on four independent vminps chains (no
 * serial compare-and-blend), then the first position holding it. */
static size_t argmin(const float *v, size_t n, float *minval) {
    size_t j = 0;
    float bv = v[0];
    if (n >= 32) {
        __m256 m0 = _mm256_loadu_ps(v), m1 = _mm256_loadu_ps(v + 8);
        __m256 m2 = _mm256_loadu_ps(v + 16), m3 = _mm256_loadu_ps(v + 24);
        for (j = 32; j + 32 <= n; j += 32) {
            m0 = _mm256_min_ps(m0, _mm256_loadu_ps(v + j));
            m1 = _mm256_min_ps(m1, _mm256_loadu_ps(v + j + 8));
            m2 = _mm256_min_ps(m2, _mm256_loadu_ps(v + j + 16));
            m3 = _mm256_min_ps(m3, _mm256_loadu_ps(v + j + 24));
        }
        for (; j + 8 <= n; j += 8) m0 = _mm256_min_ps(m0, _mm256_loadu_ps(v + j));
        m0 = _mm256_min_ps(_mm256_min_ps(m0, m1), _mm256_min_ps(m2, m3));
        __m128 h = _mm_min_ps(_mm256_castps256_ps128(m0),
                              _mm256_extractf128_ps(m0, 1));
        h = _mm_min_ps(h, _mm_movehl_ps(h, h));
        h = _mm_min_ss(h, _mm_movehdup_ps(h));
        bv = _mm_cvtss_f32(h);
    } else {
        j = 0;
    }
    for (; j < n; j++)
        if (v[j] < bv) bv = v[j];
    *minval = bv;
    /* the first position holding it */
    const __m256 mb = _mm256_set1_ps(bv);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        int mask = _mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(v + i), mb, _CMP_EQ_OQ));
        if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
    }
    for (; i < n; i++)
        if (v[i] == bv) return i;
    return 0; /* not reached for finite input */
}

static size_t filter_greater(const float *v, size_t n, float thr,
                             uint32_t *cand) {
    __m256 t = _mm256_set1_ps(thr);
    size_t c = 0, j = 0;
    for (; j + 8 <= n; j += 8) {
        unsigned m = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(v + j), t, _CMP_GT_OQ));
        while (m) {
            cand[c++] = (uint32_t)(j + (unsigned)__builtin_ctz(m));
            m &= m - 1;
        }
    }
    for (; j < n; j++)
        if (v[j] > thr) cand[c++] = (uint32_t)j;
    return c;
}

/* 32 vectors per step (four independent accumulators keep both FMA
 * pipes busy despite the FMA latency), then 16, 8, then the tail one by
 * one in the scalar order. */
static void l2sqr_ny_t(float *out, const float *x, const float *yt, size_t d,
                       size_t ny) {
    size_t j = 0;
    for (; j + 32 <= ny; j += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        for (size_t c = 0; c < d; c++) {
            const float *row = yt + c * ny + j;
            __m256 xc = _mm256_set1_ps(vdx_ld_f32(x + c));
            __m256 t0 = _mm256_sub_ps(xc, _mm256_loadu_ps(row));
            __m256 t1 = _mm256_sub_ps(xc, _mm256_loadu_ps(row + 8));
            __m256 t2 = _mm256_sub_ps(xc, _mm256_loadu_ps(row + 16));
            __m256 t3 = _mm256_sub_ps(xc, _mm256_loadu_ps(row + 24));
            s0 = _mm256_fmadd_ps(t0, t0, s0);
            s1 = _mm256_fmadd_ps(t1, t1, s1);
            s2 = _mm256_fmadd_ps(t2, t2, s2);
            s3 = _mm256_fmadd_ps(t3, t3, s3);
        }
        _mm256_storeu_ps(out + j, s0);
        _mm256_storeu_ps(out + j + 8, s1);
        _mm256_storeu_ps(out + j + 16, s2);
        _mm256_storeu_ps(out + j + 24, s3);
    }
    for (; j + 16 <= ny; j += 16) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (size_t c = 0; c < d; c++) {
            __m256 xc = _mm256_set1_ps(vdx_ld_f32(x + c));
            __m256 t0 = _mm256_sub_ps(xc, _mm256_loadu_ps(yt + c * ny + j));
            __m256 t1 = _mm256_sub_ps(xc, _mm256_loadu_ps(yt + c * ny + j + 8));
            s0 = _mm256_fmadd_ps(t0, t0, s0);
            s1 = _mm256_fmadd_ps(t1, t1, s1);
        }
        _mm256_storeu_ps(out + j, s0);
        _mm256_storeu_ps(out + j + 8, s1);
    }
    for (; j + 8 <= ny; j += 8) {
        __m256 s0 = _mm256_setzero_ps();
        for (size_t c = 0; c < d; c++) {
            __m256 t0 = _mm256_sub_ps(_mm256_set1_ps(vdx_ld_f32(x + c)),
                                      _mm256_loadu_ps(yt + c * ny + j));
            s0 = _mm256_fmadd_ps(t0, t0, s0);
        }
        _mm256_storeu_ps(out + j, s0);
    }
    for (; j < ny; j++) {
        float s = 0;
        for (size_t c = 0; c < d; c++) {
            float t = vdx_ld_f32(x + c) - vdx_ld_f32(yt + c * ny + j);
            s += t * t;
        }
        out[j] = s;
    }
}

/* As l2sqr_ny_t: 32 outputs per step on four accumulators, then 8, then
 * the tail in the scalar order. */
static void matvec_t(float *out, const float *a, const float *yt,
                     const float *base, size_t d, size_t ny) {
    size_t j = 0;
    for (; j + 32 <= ny; j += 32) {
        __m256 s0 = _mm256_loadu_ps(base + j), s1 = _mm256_loadu_ps(base + j + 8);
        __m256 s2 = _mm256_loadu_ps(base + j + 16), s3 = _mm256_loadu_ps(base + j + 24);
        for (size_t c = 0; c < d; c++) {
            const float *row = yt + c * ny + j;
            __m256 ac = _mm256_set1_ps(vdx_ld_f32(a + c));
            s0 = _mm256_fmadd_ps(ac, _mm256_loadu_ps(row), s0);
            s1 = _mm256_fmadd_ps(ac, _mm256_loadu_ps(row + 8), s1);
            s2 = _mm256_fmadd_ps(ac, _mm256_loadu_ps(row + 16), s2);
            s3 = _mm256_fmadd_ps(ac, _mm256_loadu_ps(row + 24), s3);
        }
        _mm256_storeu_ps(out + j, s0);
        _mm256_storeu_ps(out + j + 8, s1);
        _mm256_storeu_ps(out + j + 16, s2);
        _mm256_storeu_ps(out + j + 24, s3);
    }
    for (; j + 8 <= ny; j += 8) {
        __m256 s0 = _mm256_loadu_ps(base + j);
        for (size_t c = 0; c < d; c++)
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(vdx_ld_f32(a + c)),
                                 _mm256_loadu_ps(yt + c * ny + j), s0);
        _mm256_storeu_ps(out + j, s0);
    }
    for (; j < ny; j++) {
        float s = vdx_ld_f32(base + j);
        for (size_t c = 0; c < d; c++)
            s += vdx_ld_f32(a + c) * vdx_ld_f32(yt + c * ny + j);
        out[j] = s;
    }
}

const vdx_kernels vdx_kernels_avx2 = {
    "avx2",   l2sqr_f,          inner_product_f, norm_sqr,
    l2sqr_ny, inner_product_ny, norms_sqr_ny,    filter_less,
    argmin, filter_greater, l2sqr_ny_t, matvec_t};
