/*
 * topk.c — the out-of-line parts of the top-k heaps (see topk.h).
 */
#include <float.h>

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
        if (bid[i] >= 0) vdx_heap_push(k, akey, aid, bkey[i], bid[i]);
}

void vdx_topk_finish(int64_t k, float *D, vdx_idx_t *I, int is_ip, float add) {
    vdx_heap_sort(k, D, I);
    int64_t m = 0; /* filled slots come first after the sort */
    while (m < k && I[m] >= 0) m++;
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
