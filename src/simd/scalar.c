/*
 * scalar.c — reference kernels: plain loops, summed in order.  The SIMD
 * variants are tested against these.
 *
 * Every float is read through ld() (vdx_ld_f32): the vectors may sit at
 * any address (kernels.h), e.g. a memory-mapped flat's.
 */
#include "kernels.h"

#define ld vdx_ld_f32

static float l2sqr(const float *a, const float *b, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) {
        float t = ld(a + i) - ld(b + i);
        s += t * t;
    }
    return s;
}

static float inner_product(const float *a, const float *b, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) s += ld(a + i) * ld(b + i);
    return s;
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
    for (size_t j = 0; j < n; j++) out[j] = norm_sqr(x + j * d, d);
}

static size_t filter_less(const float *v, size_t n, float thr,
                          uint32_t *cand) {
    size_t c = 0;
    for (size_t j = 0; j < n; j++)
        if (v[j] < thr) cand[c++] = (uint32_t)j;
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
    size_t c = 0;
    for (size_t j = 0; j < n; j++)
        if (v[j] > thr) cand[c++] = (uint32_t)j;
    return c;
}

static void l2sqr_ny_t(float *out, const float *x, const float *yt, size_t d,
                       size_t ny) {
    for (size_t j = 0; j < ny; j++) out[j] = 0;
    for (size_t c = 0; c < d; c++) {
        const float *row = yt + c * ny;
        for (size_t j = 0; j < ny; j++) {
            float t = ld(x + c) - ld(row + j);
            out[j] += t * t;
        }
    }
}

static void matvec_t(float *out, const float *a, const float *yt,
                     const float *base, size_t d, size_t ny) {
    for (size_t j = 0; j < ny; j++) out[j] = ld(base + j);
    for (size_t c = 0; c < d; c++)
        for (size_t j = 0; j < ny; j++)
            out[j] += ld(a + c) * ld(yt + c * ny + j);
}

const vdx_kernels vdx_kernels_scalar = {
    "scalar",     l2sqr,        inner_product, norm_sqr,
    l2sqr_ny,     inner_product_ny, norms_sqr_ny, filter_less,
    argmin, filter_greater, l2sqr_ny_t, matvec_t};
