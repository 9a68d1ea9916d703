/*
 * topk.h — bounded "keep the k smallest" heaps over (key, id) pairs, the
 * result collector of every search.  Larger keys are worse; between equal
 * keys the larger id is worse, so ties resolve to the lower id.  Inner
 * product searches store -score as the key, so one heap serves both metrics.
 *
 * A heap of k entries lives in caller memory (usually the output arrays of
 * the search), initialised to key = +inf, id = -1.
 */
#ifndef VDX_TOPK_H
#define VDX_TOPK_H

#include <math.h>

#include "common.h"

static inline int vdx_worse(float ka, vdx_idx_t ia, float kb, vdx_idx_t ib) {
    return ka > kb || (ka == kb && ia > ib);
}

static inline void vdx_heap_init(int64_t k, float *key, vdx_idx_t *id) {
    for (int64_t i = 0; i < k; i++) {
        key[i] = INFINITY;
        id[i] = -1;
    }
}

/* Replaces the worst entry (the root) by (nk, ni) and restores the heap. */
static inline void vdx_heap_replace_top(int64_t k, float *key, vdx_idx_t *id,
                                        float nk, vdx_idx_t ni) {
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w;
        if (l >= k) break;
        w = (r < k && vdx_worse(key[r], id[r], key[l], id[l])) ? r : l;
        if (!vdx_worse(key[w], id[w], nk, ni)) break;
        key[i] = key[w];
        id[i] = id[w];
        i = w;
    }
    key[i] = nk;
    id[i] = ni;
}

/* Offers (nk, ni): kept when better than the current worst. */
static inline void vdx_heap_push(int64_t k, float *key, vdx_idx_t *id,
                                 float nk, vdx_idx_t ni) {
    if (vdx_worse(key[0], id[0], nk, ni)) vdx_heap_replace_top(k, key, id, nk, ni);
}

/* Turns a heap into an array sorted best first (in place). */
VDX_INTERNAL void vdx_heap_sort(int64_t k, float *key, vdx_idx_t *id);

/* Finishes a heap into search results: sorts it best first, turns keys
 * into the distances FAISS reports (L2: key + add, clamped at 0 since the
 * sgemm form can round below it; IP: -key), orders entries whose final
 * distances are equal by id, and marks empty slots with label -1 and
 * distance +FLT_MAX (L2) or -FLT_MAX (IP), as FAISS does. */
VDX_INTERNAL void vdx_topk_finish(int64_t k, float *D, vdx_idx_t *I, int is_ip,
                                  float add);

/* Merges heap b into heap a (both of size k). */
VDX_INTERNAL void vdx_heap_merge(int64_t k, float *akey, vdx_idx_t *aid,
                                 const float *bkey, const vdx_idx_t *bid);

#endif
