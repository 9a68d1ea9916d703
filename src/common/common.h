/*
 * common.h — private helpers shared by every part of vecdex: error raising,
 * overflow-checked allocation, small utilities.
 */
#ifndef VDX_COMMON_H
#define VDX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "vecdex.h"

#define VDX_INTERNAL __attribute__((visibility("hidden")))

/* Records msg (printf-style) as the calling thread's last error and returns
 * code, so that callers write `return vdx_raise(VDX_ERR_..., "...")`. */
VDX_INTERNAL vdx_status vdx_raise(vdx_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Clears the calling thread's last error (start of each public call). */
VDX_INTERNAL void vdx_clear_error(void);

/* Allocation: every size goes through the overflow-checked wrappers.  They
 * return NULL (having raised VDX_ERR_OUT_OF_MEMORY) on failure or overflow.
 */
VDX_INTERNAL void *vdx_malloc(size_t size);
VDX_INTERNAL void *vdx_calloc(size_t n, size_t size);
VDX_INTERNAL void *vdx_malloc_array(size_t n, size_t size);
VDX_INTERNAL void *vdx_realloc_array(void *p, size_t n, size_t size);
VDX_INTERNAL void *vdx_aligned_alloc(size_t n, size_t size); /* 64-byte */
VDX_INTERNAL void vdx_free(void *p);
VDX_INTERNAL void vdx_aligned_free(void *p);

/* a * b into *out; returns 0 on overflow. */
static inline int vdx_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* Largest dimension accepted anywhere (sanity bound for files and API). */
#define VDX_MAX_DIM ((int64_t)1 << 20)
/* Largest k accepted by search. */
#define VDX_MAX_K ((int64_t)1 << 30)

/* Returns VDX_OK when the n x d floats are all finite and no larger in
 * magnitude than vdx_max_magnitude(d), else raises with the position and
 * value of the first offender.  `what` names the argument (a plural noun:
 * "training vectors"). */
VDX_INTERNAL vdx_status vdx_check_vectors(const float *x, int64_t n, int64_t d,
                                          const char *what);
/* The largest component magnitude accepted in vectors of dimension d:
 * sqrt(FLT_MAX / (32 d)) (5.8e17 at d = 32, 1.0e17 at d = 1024), below which
 * no distance, residual or reconstruction the library computes overflows
 * float32. */
VDX_INTERNAL float vdx_max_magnitude(int64_t d);
/* The same test for finiteness alone: parameter arrays (trained ranges,
 * transform matrices) rather than vectors. */
VDX_INTERNAL vdx_status vdx_check_finite(const float *x, int64_t n, int64_t d,
                                         const char *what);

#define VDX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VDX_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
