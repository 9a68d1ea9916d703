/*
 * hadamard.c — FAISS's HadamardRotation: a fast pseudo-random rotation,
 * y = (1/p^(3/2)) H D3 H D2 H D1 [x; 0], where p is d rounded up to a power
 * of 2 (x zero-padded), H the unnormalised Walsh-Hadamard matrix (applied
 * by the O(p log p) butterfly, H H = p I) and D1..D3 random diagonal +-1
 * matrices.  Three rounds of sign flips and transforms spread every input
 * direction over all outputs (the structured random rotations of Ailon &
 * Chazelle's fast JL transform); the matrix is orthogonal, so norms and
 * distances are kept exactly up to float rounding.
 *
 * The signs are drawn from the seed alone with SplitMix64 (Steele, Lea &
 * Flood 2014), sign = -1 when the draw is even, D1's p draws first, then
 * D2's and D3's — as FAISS draws them, so an index written by FAISS (which
 * stores only the seed) transforms identically here.  They are redrawn at
 * each apply (3p draws, negligible next to the transforms), so the
 * transform holds no arrays.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "transform.h"
#include "common/threads.h"

static uint64_t splitmix_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t vdx_hadamard_dout(int64_t d) {
    int64_t p = 1;
    while (p < d) p <<= 1;
    return p;
}

static void fwht(float *v, int64_t p) {
    for (int64_t h = 1; h < p; h <<= 1)
        for (int64_t i = 0; i < p; i += h << 1)
            for (int64_t j = i; j < i + h; j++) {
                float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

vdx_status vdx_hadamard_apply(const vdx_vt *vt, int64_t n, const float *x,
                              float *y) {
    const int64_t d = vt->d_in, p = vt->d_out;
    float *sg = vdx_malloc_array((size_t)p * 3, sizeof(float));
    if (!sg) return VDX_ERR_OUT_OF_MEMORY;
    uint64_t s = (uint64_t)vt->seed;
    for (int64_t j = 0; j < 3 * p; j++)
        sg[j] = (splitmix_next(&s) % 2 == 0) ? -1.0f : 1.0f;
    const float scale = 1.0f / ((float)p * sqrtf((float)p));
    /* y may alias x only when d == p (the caller's in-place apply) */
#pragma omp parallel for schedule(static) if (n * p > 65536) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *yo = y + i * p;
        for (int64_t j = 0; j < d; j++) yo[j] = xi[j] * sg[j];
        for (int64_t j = d; j < p; j++) yo[j] = 0.0f;
        fwht(yo, p);
        for (int64_t j = 0; j < p; j++) yo[j] *= sg[p + j];
        fwht(yo, p);
        for (int64_t j = 0; j < p; j++) yo[j] *= sg[2 * p + j];
        fwht(yo, p);
        for (int64_t j = 0; j < p; j++) yo[j] *= scale;
    }
    vdx_free(sg);
    return VDX_OK;
}

vdx_status vdx_vt_hadamard_new(int64_t d, uint32_t seed, vdx_vt **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (d < 1 || d > VDX_MAX_DIM || vdx_hadamard_dout(d) > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "HadamardRotation: d=%lld must be in 1..%lld (its "
                         "power-of-2 output too)",
                         (long long)d, (long long)VDX_MAX_DIM);
    vdx_status st = vdx_vt_alloc(VDX_VT_HADAMARD, d, vdx_hadamard_dout(d), out);
    if (st) return st;
    (*out)->seed = seed;
    (*out)->is_trained = 1;
    return VDX_OK;
}

uint32_t vdx_vt_hadamard_seed(const vdx_vt *vt) {
    return vt && vt->kind == VDX_VT_HADAMARD ? vt->seed : 0;
}
