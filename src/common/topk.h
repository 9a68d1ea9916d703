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

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Writes the n entries (key, id) sorted best first into (D, I)[0 .. n)
 * (distinct ids; small n sorts by rank, with no data-dependent branch). */
VDX_INTERNAL void vdx_sort_entries(int64_t n, const float *key,
                                   const vdx_idx_t *id, float *D,
                                   vdx_idx_t *I);

/* Finishes a heap into search results: sorts it best first, turns keys
 * into the distances FAISS reports (L2: key + add, clamped at 0 since the
 * sgemm form can round below it; IP: -key), orders entries whose final
 * distances are equal by id, and marks empty slots with label -1 and
 * distance +FLT_MAX (L2) or -FLT_MAX (IP), as FAISS does. */
VDX_INTERNAL void vdx_topk_finish(int64_t k, float *D, vdx_idx_t *I, int is_ip,
                                  float add);
/* The same for (D, I) already sorted best first, empty slots last. */
VDX_INTERNAL void vdx_topk_finish_sorted(int64_t k, float *D, vdx_idx_t *I,
                                         int is_ip, float add);

/* The k best of n entries (key, id), sorted best first, into (D, I) (empty
 * slots: key +inf, id -1), ready for vdx_topk_finish_sorted. */
VDX_INTERNAL void vdx_topk_select_sorted(int64_t k, int64_t n, const float *key,
                                         const vdx_idx_t *id, float *D,
                                         vdx_idx_t *I);

/* ---- a small set of the k best (k <= VDX_SET_MAX) ----------------------
 *
 * k unordered slots, padded with -inf keys to a multiple of 16, whose
 * largest key is top.  Until the k slots are filled candidates are just
 * stored; then a candidate (its key below top) replaces the slot holding
 * top, and the next largest is found by a branch-free SIMD pass.  This
 * keeps what a max-heap keeps (between equal largest keys the larger id
 * leaves, as from a heap's root) without the heap's sift, which
 * mispredicts at every level. */
#define VDX_SET_MAX 64

static inline int64_t vdx_set_slots(int64_t k) { return (k + 15) & ~(int64_t)15; }

/* The slot of the largest of the nk (a multiple of 16) keys, the larger id
 * among equal ones, and that key in *top (four independent maxima per 16
 * slots: a chain of dependent maxps would cost more than the loads). */
static inline int64_t vdx_set_argmax(const float *key, const vdx_idx_t *id,
                                     int64_t nk, float *top) {
#ifdef __SSE2__
    __m128 m0 = _mm_loadu_ps(key), m1 = _mm_loadu_ps(key + 4);
    __m128 m2 = _mm_loadu_ps(key + 8), m3 = _mm_loadu_ps(key + 12);
    for (int64_t i = 16; i < nk; i += 16) {
        m0 = _mm_max_ps(m0, _mm_loadu_ps(key + i));
        m1 = _mm_max_ps(m1, _mm_loadu_ps(key + i + 4));
        m2 = _mm_max_ps(m2, _mm_loadu_ps(key + i + 8));
        m3 = _mm_max_ps(m3, _mm_loadu_ps(key + i + 12));
    }
    __m128 m = _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    uint64_t bits = 0;
    for (int64_t i = 0; i < nk; i += 16) {
        uint64_t b = (uint64_t)_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(key + i), m)) |
                     (uint64_t)_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(key + i + 4), m)) << 4 |
                     (uint64_t)_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(key + i + 8), m)) << 8 |
                     (uint64_t)_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(key + i + 12), m)) << 12;
        bits |= b << i;
    }
    *top = _mm_cvtss_f32(m);
    if (!bits) return 0; /* NaN keys */
    int64_t im = __builtin_ctzll(bits);
    for (bits &= bits - 1; bits; bits &= bits - 1) { /* ties: rare */
        int64_t j = __builtin_ctzll(bits);
        if (id[j] > id[im]) im = j;
    }
    return im;
#else
    int64_t im = 0;
    for (int64_t i = 1; i < nk; i++)
        if (key[i] > key[im] || (key[i] == key[im] && id[i] > id[im])) im = i;
    *top = key[im];
    return im;
#endif
}

/* key[slot] = v through a 16-byte store: the next vdx_set_argmax reads
 * the slots in 16-byte loads, which a scalar store just before would stall
 * (a narrow store does not forward to a wider load). */
static inline void vdx_set_store(float *key, int64_t slot, float v) {
#ifdef __SSE2__
    float *at = key + (slot & ~(int64_t)3);
    const __m128i lane = _mm_set_epi32(3, 2, 1, 0);
    const __m128 m = _mm_castsi128_ps(_mm_cmpeq_epi32(lane, _mm_set1_epi32((int)(slot & 3))));
    const __m128 old = _mm_loadu_ps(at);
    _mm_storeu_ps(at, _mm_or_ps(_mm_and_ps(m, _mm_set1_ps(v)), _mm_andnot_ps(m, old)));
#else
    key[slot] = v;
#endif
}

typedef struct vdx_kset {
    float *key;    /* vdx_set_slots(k) slots */
    vdx_idx_t *id;
    int64_t k, fill, imax;
    float top;     /* +inf until the k slots are filled */
} vdx_kset;

VDX_INTERNAL void vdx_kset_init(vdx_kset *s, int64_t k, float *key,
                                vdx_idx_t *id);

/* Whether the set takes (key, id): below top, or equal to it with a smaller
 * id than top's (as a heap's comparison would). */
static inline int vdx_kset_takes(const vdx_kset *s, float key, vdx_idx_t id) {
    return key < s->top ||
           (key == s->top && s->fill == s->k && id < s->id[s->imax]);
}

/* Adds (key, id), which the set takes; returns 1 when top changed. */
static inline int vdx_kset_add(vdx_kset *s, float key, vdx_idx_t id) {
    if (s->fill < s->k) {
        s->key[s->fill] = key;
        s->id[s->fill] = id;
        if (++s->fill < s->k) return 0;
    } else {
        vdx_set_store(s->key, s->imax, key);
        s->id[s->imax] = id;
    }
    s->imax = vdx_set_argmax(s->key, s->id, vdx_set_slots(s->k), &s->top);
    return 1;
}

/* Writes the set's entries sorted best first into (D, I), k of them (empty
 * slots: key +inf, id -1), ready for vdx_topk_finish_sorted. */
VDX_INTERNAL void vdx_kset_sorted(const vdx_kset *s, float *D, vdx_idx_t *I);

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
