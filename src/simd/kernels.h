/*
 * kernels.h — the distance kernels of vecdex and their runtime dispatch.
 *
 * scalar.c is the reference and always built; avx2.c and avx512.c are the
 * same functions compiled for those ISAs.  dispatch.c picks one table once
 * (cpuid + OS support via xgetbv); VECDEX_SIMD=scalar|avx2|avx512 forces a
 * level no higher than the machine supports.  Every kernel takes any d.
 *
 * Alignment: the vectors a kernel reads (a, b, x, y, yt, base) may sit at
 * any byte address, and every level reads them with unaligned loads
 * (loadu / masked intrinsics, or vdx_ld_f32 below for single floats):
 * memory-mapped indexes hand their stored vectors straight to the kernels,
 * and FAISS's format puts them at odd offsets (a flat's floats start 45
 * bytes into its record).  The arrays a kernel writes or scans as results
 * (out, v, cand) are the caller's own, naturally aligned.
 */
#ifndef VDX_KERNELS_H
#define VDX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* One float from any address: read through a 1-byte-aligned float type,
 * which the compiler loads with the same instructions as a float (x86
 * loads need no alignment) but never assumes aligned, and UBSan's
 * alignment check accepts.  (A 4-byte memcpy does the same but makes GCC
 * pick integer moves in the scalar loops.) */
typedef float vdx_f32_unaligned __attribute__((aligned(1)));
static inline float vdx_ld_f32(const float *p) {
    return *(const vdx_f32_unaligned *)p;
}

typedef struct vdx_kernels {
    const char *name; /* "scalar", "avx2", "avx512" */
    float (*l2sqr)(const float *a, const float *b, size_t d);
    float (*inner_product)(const float *a, const float *b, size_t d);
    float (*norm_sqr)(const float *a, size_t d);
    /* out[j] = dist(x, y + j*d) for j < ny */
    void (*l2sqr_ny)(float *out, const float *x, const float *y, size_t d,
                     size_t ny);
    void (*inner_product_ny)(float *out, const float *x, const float *y,
                             size_t d, size_t ny);
    /* out[j] = |x_j|^2 for j < n */
    void (*norms_sqr_ny)(float *out, const float *x, size_t d, size_t n);
    /* Top-k pre-filter: writes the indices j < n with v[j] < thr to cand
     * (in increasing order) and returns their count. */
    size_t (*filter_less)(const float *v, size_t n, float thr, uint32_t *cand);
    /* Index of the smallest of v[0..n) (the first one on ties; n > 0),
     * its value in *minval.  The k = 1 search (k-means, IVF assignment). */
    size_t (*argmin)(const float *v, size_t n, float *minval);
    /* As filter_less with v[j] > thr (inner-product scores). */
    size_t (*filter_greater)(const float *v, size_t n, float thr,
                             uint32_t *cand);
    /* out[j] = sum_c (x[c] - yt[c * ny + j])^2 for j < ny: L2 distances to
     * ny vectors stored transposed (d rows of ny), so that SIMD lanes run
     * over vectors rather than components.  For small d (PQ sub-vectors,
     * k-means of sub-spaces), where the row-wise kernels spend their time
     * in horizontal sums. */
    void (*l2sqr_ny_t)(float *out, const float *x, const float *yt, size_t d,
                       size_t ny);
    /* out[j] = base[j] + sum_c a[c] * yt[c * ny + j] for j < ny (same
     * layout): with a = -2x and base = |y_j|^2, the L2 distances minus
     * |x|^2 at one FMA per component (k-means assignment). */
    void (*matvec_t)(float *out, const float *a, const float *yt,
                     const float *base, size_t d, size_t ny);
} vdx_kernels;

/* The table in use (chosen on first call, then cached). */
VDX_INTERNAL const vdx_kernels *vdx_kernels_get(void);
/* The table of a given level, or NULL when the CPU/OS lacks it (tests). */
VDX_INTERNAL const vdx_kernels *vdx_kernels_level(const char *name);

VDX_INTERNAL extern const vdx_kernels vdx_kernels_scalar;
VDX_INTERNAL extern const vdx_kernels vdx_kernels_avx2;
VDX_INTERNAL extern const vdx_kernels vdx_kernels_avx512;

#endif
