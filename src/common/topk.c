/*
 * topk.c — the out-of-line parts of the top-k heaps (see topk.h).
 */
#include <float.h>
#include <math.h>

#include "topk.h"

void vdx_heap_sort(int64_t k, float *key, vdx_idx_t *id) {
    /* pop the worst to the end, repeatedly */
    for (int64_t n = k; n > 1; n--) {
        float wk = key[0];
        vdx_idx_t wi = id[0];
        vdx_heap_replace_top(n - 1, key, id, key[n - 1], id[n - 1]);
        key[n - 1] = wk;
        id[n - 1] = wi;
    }
}

void vdx_heap_merge(int64_t k, float *akey, vdx_idx_t *aid, const float *bkey,
                    const vdx_idx_t *bid) {
    for (int64_t i = 0; i < k; i++)
        if (bid[i] != -1) vdx_heap_push(k, akey, aid, bkey[i], bid[i]);
}

/* Rank sort of up to this many entries (O(n^2) compares, no mispredicts);
 * above, a heap sort. */
#define SORT_RANK_MAX 32

/* Bits set in a 4-bit mask (the baseline target has no popcnt
 * instruction: __builtin_popcount would be a library call). */
static inline int pop4(int m) {
    return (int)((0x4332322132212110ull >> (4 * m)) & 0xF);
}

void vdx_sort_entries(int64_t n, const float *key, const vdx_idx_t *id,
                      float *D, vdx_idx_t *I) {
    if (n <= SORT_RANK_MAX) {
        uint64_t used = 0;
#ifdef __SSE2__
        /* the keys in vectors, padded with +inf (never smaller) */
        __m128 kv[SORT_RANK_MAX / 4];
        float pad[4];
        const int64_t nv = (n + 3) / 4;
        for (int64_t v = 0; v < nv; v++) {
            for (int l = 0; l < 4; l++)
                pad[l] = 4 * v + l < n ? key[4 * v + l] : INFINITY;
            kv[v] = _mm_loadu_ps(pad);
        }
#endif
        for (int64_t i = 0; i < n; i++) {
            const float ki = key[i];
            const vdx_idx_t ii = id[i];
            int64_t r = 0;
#ifdef __SSE2__
            const __m128 b = _mm_set1_ps(ki);
            int eq = 0;
            for (int64_t v = 0; v < nv; v++) {
                r += pop4(_mm_movemask_ps(_mm_cmplt_ps(kv[v], b)));
                eq += pop4(_mm_movemask_ps(_mm_cmpeq_ps(kv[v], b)));
            }
            if (eq != 1) /* equal keys (or NaN): by id too */
#endif
            {
                r = 0;
                for (int64_t j = 0; j < n; j++)
                    r += (key[j] < ki) | ((key[j] == ki) & (id[j] < ii));
            }
            D[r] = ki;
            I[r] = ii;
            used |= (uint64_t)1 << r;
        }
        if (used == ((uint64_t)1 << n) - 1) return;
        /* NaN keys or repeated ids: an insertion sort, NaN last */
        for (int64_t i = 0; i < n; i++) {
            const float ki = key[i];
            const vdx_idx_t ii = id[i];
            int64_t u = i;
            while (u > 0 && (isnan(D[u - 1]) ? !isnan(ki) || I[u - 1] > ii
                                             : vdx_worse(D[u - 1], I[u - 1], ki, ii))) {
                D[u] = D[u - 1];
                I[u] = I[u - 1];
                u--;
            }
            D[u] = ki;
            I[u] = ii;
        }
        return;
    }
    vdx_heap_init(n, D, I);
    for (int64_t i = 0; i < n; i++) vdx_heap_push(n, D, I, key[i], id[i]);
    vdx_heap_sort(n, D, I);
}

void vdx_kset_init(vdx_kset *s, int64_t k, float *key, vdx_idx_t *id) {
    s->key = key;
    s->id = id;
    s->k = k;
    s->fill = 0;
    s->imax = 0;
    s->top = INFINITY;
    for (int64_t e = k; e < vdx_set_slots(k); e++) { /* never the largest */
        key[e] = -INFINITY;
        id[e] = -1;
    }
}

void vdx_topk_select_sorted(int64_t k, int64_t n, const float *key,
                            const vdx_idx_t *id, float *D, vdx_idx_t *I) {
    if (n > k) {
        vdx_heap_init(k, D, I);
        for (int64_t i = 0; i < n; i++) vdx_heap_push(k, D, I, key[i], id[i]);
        vdx_heap_sort(k, D, I);
        return;
    }
    vdx_sort_entries(n, key, id, D, I);
    for (int64_t e = n; e < k; e++) {
        D[e] = INFINITY;
        I[e] = -1;
    }
}

void vdx_kset_sorted(const vdx_kset *s, float *D, vdx_idx_t *I) {
    vdx_topk_select_sorted(s->k, s->fill, s->key, s->id, D, I);
}

void vdx_topk_finish(int64_t k, float *D, vdx_idx_t *I, int is_ip, float add) {
    vdx_heap_sort(k, D, I);
    vdx_topk_finish_sorted(k, D, I, is_ip, add);
}

void vdx_topk_finish_sorted(int64_t k, float *D, vdx_idx_t *I, int is_ip,
                            float add) {
    /* filled slots come first after the sort; only -1 marks an empty one
     * (user ids may be negative: 64-bit hashes are, half the time) */
    int64_t m = 0;
    while (m < k && I[m] != -1) m++;
    for (int64_t j = 0; j < m; j++) {
        if (is_ip) {
            D[j] = -D[j];
        } else {
            float v = D[j] + add;
            D[j] = v < 0 ? 0 : v;
        }
    }
    /* the conversion can make distinct keys equal (rounding, clamping):
     * restore id order within runs of equal distances (insertion sort,
     * runs are short) */
    for (int64_t j = 1; j < m; j++) {
        float dv = D[j];
        vdx_idx_t iv = I[j];
        int64_t u = j;
        while (u > 0 && D[u - 1] == dv && I[u - 1] > iv) {
            I[u] = I[u - 1];
            u--;
        }
        I[u] = iv;
    }
    for (int64_t j = m; j < k; j++) {
        D[j] = is_ip ? -FLT_MAX : FLT_MAX;
        I[j] = -1;
    }
}

static inline void swap_entry(float *key, vdx_idx_t *id, int64_t a,
                              int64_t b) {
    float tk = key[a];
    key[a] = key[b];
    key[b] = tk;
    vdx_idx_t ti = id[a];
    id[a] = id[b];
    id[b] = ti;
}

/* Reorders key/id[lo, hi) so that the m best (by key, then id) come first. */
static void select_best(float *key, vdx_idx_t *id, int64_t lo, int64_t hi,
                        int64_t m) {
    while (hi - lo > 1 && m > lo && m < hi) {
        /* median of three as pivot, moved to hi - 1 */
        int64_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (vdx_worse(key[lo], id[lo], key[mid], id[mid])) swap_entry(key, id, lo, mid);
        if (vdx_worse(key[mid], id[mid], key[last], id[last])) swap_entry(key, id, mid, last);
        if (vdx_worse(key[lo], id[lo], key[mid], id[mid])) swap_entry(key, id, lo, mid);
        swap_entry(key, id, mid, last);
        float pk = key[last];
        vdx_idx_t pi = id[last];
        int64_t store = lo;
        for (int64_t i = lo; i < last; i++)
            if (vdx_worse(pk, pi, key[i], id[i])) swap_entry(key, id, i, store++);
        swap_entry(key, id, store, last);
        if (store == m || store + 1 == m) return;
        if (store > m) hi = store;
        else lo = store + 1;
    }
}

void vdx_reservoir_shrink(vdx_reservoir *r) {
    if (r->n <= r->k) return;
    select_best(r->key, r->id, 0, r->n, r->k);
    r->n = r->k;
    float worst = r->key[0];
    for (int64_t i = 1; i < r->k; i++)
        if (r->key[i] > worst) worst = r->key[i];
    r->thr = worst;
}

void vdx_reservoir_to_heap(vdx_reservoir *r, float *D, vdx_idx_t *I) {
    vdx_reservoir_shrink(r);
    vdx_heap_init(r->k, D, I);
    for (int64_t i = 0; i < r->n; i++) vdx_heap_push(r->k, D, I, r->key[i], r->id[i]);
}
