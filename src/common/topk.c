/*
 * topk.c — the out-of-line parts of the top-k heaps (see topk.h).
 */
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
