/*
 * alloc.c — every allocation of the library goes through these wrappers:
 * sizes are overflow-checked and bounded, and failures raise
 * VDX_ERR_OUT_OF_MEMORY with the size asked for.
 */
#include <stdlib.h>

#include "common.h"

/* Refuse single requests above this size outright: a corrupt count must never
 * turn into a multi-terabyte request that the OS might overcommit. */
#define VDX_MAX_ALLOC ((size_t)1 << 44)

void *vdx_malloc(size_t size) {
    if (size > VDX_MAX_ALLOC) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY, "allocation of %zu bytes refused",
                  size);
        return NULL;
    }
    void *p = malloc(size ? size : 1);
    if (!p)
        vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                  size);
    return p;
}

void *vdx_calloc(size_t n, size_t size) {
    size_t t;
    if (!vdx_mul_ok(n, size, &t) || t > VDX_MAX_ALLOC) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                  "allocation of %zu x %zu bytes overflows or is refused", n,
                  size);
        return NULL;
    }
    void *p = calloc(t ? n : 1, t ? size : 1);
    if (!p)
        vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                  t);
    return p;
}

void *vdx_malloc_array(size_t n, size_t size) {
    size_t t;
    if (!vdx_mul_ok(n, size, &t)) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                  "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    return vdx_malloc(t);
}

void *vdx_realloc_array(void *old, size_t n, size_t size) {
    size_t t;
    if (!vdx_mul_ok(n, size, &t) || t > VDX_MAX_ALLOC) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                  "allocation of %zu x %zu bytes overflows or is refused", n,
                  size);
        return NULL;
    }
    void *p = realloc(old, t ? t : 1);
    if (!p)
        vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                  t);
    return p;
}

void *vdx_aligned_alloc(size_t n, size_t size) {
    size_t t;
    if (!vdx_mul_ok(n, size, &t) || t > VDX_MAX_ALLOC) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                  "allocation of %zu x %zu bytes overflows or is refused", n,
                  size);
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, t ? (t + 63) & ~(size_t)63 : 64) != 0) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                  t);
        return NULL;
    }
    return p;
}

void vdx_free(void *p) { free(p); }
void vdx_aligned_free(void *p) { free(p); }
