/* test_topk.c — the bounded heaps against sorting everything. */
#include "test.h"
#include "common/topk.h"

static void test_heap_vs_sort(void) {
    enum { N = 2000 };
    float v[N];
    test_rand_fill(v, N, 42);
    for (int i = 0; i < N; i += 7) v[i] = 0.5f; /* plenty of ties */
    for (int64_t k = 1; k <= 64; k *= 2) {
        float key[64];
        vdx_idx_t id[64];
        vdx_heap_init(k, key, id);
        for (int i = 0; i < N; i++) vdx_heap_push(k, key, id, v[i], i);
        vdx_heap_sort(k, key, id);
        /* reference: selection by repeated minimum with id tiebreak */
        char used[N] = {0};
        for (int64_t r = 0; r < k; r++) {
            int best = -1;
            for (int i = 0; i < N; i++)
                if (!used[i] && (best < 0 || v[i] < v[best])) best = i;
            used[best] = 1;
            CHECK(id[r] == best && key[r] == v[best]);
        }
    }
}

static void test_merge_and_empty(void) {
    float a[4], b[4];
    vdx_idx_t ia[4], ib[4];
    vdx_heap_init(4, a, ia);
    vdx_heap_init(4, b, ib);
    vdx_heap_push(4, a, ia, 3.0f, 30);
    vdx_heap_push(4, a, ia, 1.0f, 10);
    vdx_heap_push(4, b, ib, 2.0f, 20);
    vdx_heap_push(4, b, ib, 1.0f, 5);
    vdx_heap_merge(4, a, ia, b, ib);
    vdx_heap_sort(4, a, ia);
    CHECK(ia[0] == 5 && ia[1] == 10 && ia[2] == 20 && ia[3] == 30);
    vdx_heap_init(4, a, ia);
    vdx_heap_push(4, a, ia, 7.0f, 1);
    vdx_heap_sort(4, a, ia);
    CHECK(ia[0] == 1 && ia[1] == -1 && isinf(a[3]));
}

static void test_finish(void) {
    /* keys that become equal distances after conversion are ordered by id;
     * empty slots get -1 and FLT_MAX (L2) / -FLT_MAX (IP) */
    float k1[5];
    vdx_idx_t i1[5];
    vdx_heap_init(5, k1, i1);
    vdx_heap_push(5, k1, i1, -1e-7f, 9); /* rounds below zero: clamps to 0 */
    vdx_heap_push(5, k1, i1, -2e-7f, 12);
    vdx_heap_push(5, k1, i1, 0.0f, 3);
    vdx_heap_push(5, k1, i1, 0.5f, 1);
    vdx_topk_finish(5, k1, i1, 0, 0.0f);
    CHECK(i1[0] == 3 && i1[1] == 9 && i1[2] == 12 && i1[3] == 1 && i1[4] == -1);
    CHECK(k1[0] == 0 && k1[2] == 0 && k1[3] == 0.5f && k1[4] == FLT_MAX);
    vdx_heap_init(5, k1, i1);
    vdx_heap_push(5, k1, i1, -2.0f, 4); /* IP score 2 */
    vdx_topk_finish(5, k1, i1, 1, 0.0f);
    CHECK(i1[0] == 4 && k1[0] == 2.0f && i1[1] == -1 && k1[1] == -FLT_MAX);
}

int main(void) {
    RUN(test_heap_vs_sort);
    RUN(test_merge_and_empty);
    RUN(test_finish);
    return TEST_SUMMARY();
}
