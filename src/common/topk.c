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
