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

/* A reservoir: the cheaper collector when many candidates arrive (sgemm
 * paths).  Candidates are appended in O(1); when the buffer fills, a
 * selection keeps the k best and the worst kept key becomes the threshold
 * that the SIMD filters test against.  Amortised O(1) per candidate instead
 * of a heap's log k data-dependent branches. */
typedef struct vdx_reservoir {
    float *key;
    vdx_idx_t *id;
    int64_t n, k, cap; /* cap > k */
    float thr;         /* candidates must have key < thr */
} vdx_reservoir;

/* capacity to allocate for a given k */
static inline int64_t vdx_reservoir_cap(int64_t k) { return 2 * k + 32; }

static inline void vdx_reservoir_init(vdx_reservoir *r, int64_t k, float *key,
                                      vdx_idx_t *id) {
    r->key = key;
    r->id = id;
    r->n = 0;
    r->k = k;
    r->cap = vdx_reservoir_cap(k);
    r->thr = INFINITY;
}

/* Keeps the k best of the buffer and tightens the threshold. */
VDX_INTERNAL void vdx_reservoir_shrink(vdx_reservoir *r);

static inline void vdx_reservoir_push(vdx_reservoir *r, float key,
                                      vdx_idx_t id) {
    r->key[r->n] = key;
    r->id[r->n] = id;
    if (++r->n == r->cap) vdx_reservoir_shrink(r);
}

/* Writes the k best, as a heap would hold them, into (D, I) for
 * vdx_topk_finish (unfilled slots key +inf, id -1). */
VDX_INTERNAL void vdx_reservoir_to_heap(vdx_reservoir *r, float *D,
                                        vdx_idx_t *I);

/* Merges heap b into heap a (both of size k). */
VDX_INTERNAL void vdx_heap_merge(int64_t k, float *akey, vdx_idx_t *aid,
                                 const float *bkey, const vdx_idx_t *bid);

#endif
