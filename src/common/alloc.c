/*
 * alloc.c — every allocation of the library goes through these wrappers:
 * sizes are overflow-checked and bounded, and failures raise
 * VDX_ERR_OUT_OF_MEMORY with the size asked for.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "common.h"

/* Refuse single requests above this size outright: a corrupt count must never
 * turn into a multi-terabyte request that the OS might overcommit. */
#define VDX_MAX_ALLOC ((size_t)1 << 44)
/* Aligned requests from this size on are placed on 2 MiB boundaries. */
#define VDX_HUGE_PAGE ((size_t)2 << 20)
#define VDX_HUGE_MIN ((size_t)8 << 20)

/* Large arrays (codes, vectors, graph links) are read at random by scans,
 * refinement and graph walks: the whole 2 MiB pages inside [p, p + t) are
 * advised to be backed by huge pages where the kernel grants transparent
 * huge pages on request (a TLB miss per random row otherwise: under
 * virtualisation a two-level walk, measured 3x slower for refinement rows
 * of 256 bytes).  Pages already touched keep their size. */
static void advise_huge(void *p, size_t t) {
#ifdef MADV_HUGEPAGE
    if (!p || t < VDX_HUGE_MIN) return;
    uintptr_t a = ((uintptr_t)p + VDX_HUGE_PAGE - 1) & ~(uintptr_t)(VDX_HUGE_PAGE - 1);
    uintptr_t e = ((uintptr_t)p + t) & ~(uintptr_t)(VDX_HUGE_PAGE - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)t;
#endif
}

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
    advise_huge(p, size);
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
    advise_huge(p, t);
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
    if (t >= VDX_HUGE_MIN) {
        /* Large arrays (vectors, graph links) are read at random by graph
         * walks and scans: on 2 MiB boundaries, with the advice to back
         * them with huge pages (fewer TLB misses) where the kernel grants
         * transparent huge pages on request.  Only whole huge pages are
         * advised (advise_huge): the tail keeps small pages, so no memory
         * is added. */
        size_t len = (t + 63) & ~(size_t)63;
        if (posix_memalign(&p, VDX_HUGE_PAGE, len) != 0) {
            vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                      "out of memory allocating %zu bytes", t);
            return NULL;
        }
        advise_huge(p, len);
        return p;
    }
    if (posix_memalign(&p, 64, t ? (t + 63) & ~(size_t)63 : 64) != 0) {
        vdx_raise(VDX_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                  t);
        return NULL;
    }
    return p;
}

void vdx_free(void *p) { free(p); }
void vdx_aligned_free(void *p) { free(p); }
