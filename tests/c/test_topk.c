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

/* Negative ids are ids: only -1 marks an empty slot (a hit with id -54
 * once emptied its slot and every slot after it). */
static void test_negative_ids(void) {
    float a[4], b[4];
    vdx_idx_t ia[4], ib[4];
    vdx_heap_init(4, a, ia);
    vdx_heap_init(4, b, ib);
    vdx_heap_push(4, a, ia, 1.0f, 0);
    vdx_heap_push(4, a, ia, 3.0f, -54);
    vdx_heap_push(4, b, ib, 2.0f, INT64_MIN);
    vdx_heap_push(4, b, ib, 4.0f, 1596);
    vdx_heap_merge(4, a, ia, b, ib);
    vdx_topk_finish(4, a, ia, 0, 0.0f);
    CHECK(ia[0] == 0 && ia[1] == INT64_MIN && ia[2] == -54 && ia[3] == 1596);
    CHECK(a[0] == 1.0f && a[1] == 2.0f && a[2] == 3.0f && a[3] == 4.0f);
    /* fewer hits than k: the negative one stays, then the empty slots */
    vdx_heap_init(4, a, ia);
    vdx_heap_push(4, a, ia, 0.5f, -7);
    vdx_topk_finish(4, a, ia, 1, 0.0f);
    CHECK(ia[0] == -7 && a[0] == -0.5f && ia[1] == -1 && a[1] == -FLT_MAX);
    float d[3] = {2.0f, 1.0f, 3.0f}, D[3];
    vdx_idx_t id[3] = {-3, -2, 5}, I[3];
    vdx_topk_select_sorted(3, 3, d, id, D, I);
    vdx_topk_finish_sorted(3, D, I, 0, 0.0f);
    CHECK(I[0] == -2 && I[1] == -3 && I[2] == 5 && D[2] == 3.0f);
}

/* The set keeps what a heap keeps, candidate for candidate: keys with
 * many ties, ids out of order (as seeded searches offer them), each k. */
static void test_set_vs_heap(void) {
    enum { N = 3000 };
    float v[N];
    vdx_idx_t ids[N];
    test_rand_fill(v, N, 7);
    for (int i = 0; i < N; i++) {
        v[i] = (float)(int)(v[i] * 40.0f); /* 40 distinct keys */
        ids[i] = (vdx_idx_t)((i * 7919) % N);
    }
    for (int64_t k = 1; k <= VDX_SET_MAX; k += k < 16 ? 3 : 16) {
        float hk[VDX_SET_MAX], sk[VDX_SET_MAX], D[VDX_SET_MAX];
        vdx_idx_t hi[VDX_SET_MAX], si[VDX_SET_MAX], I[VDX_SET_MAX];
        vdx_kset s;
        vdx_heap_init(k, hk, hi);
        vdx_kset_init(&s, k, sk, si);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            int took = vdx_kset_takes(&s, v[i], ids[i]);
            if (took) vdx_kset_add(&s, v[i], ids[i]);
            int heap_takes = vdx_worse(hk[0], hi[0], v[i], ids[i]);
            vdx_heap_push(k, hk, hi, v[i], ids[i]);
            bad += took != heap_takes;
            bad += s.fill == k && s.top != hk[0];
        }
        vdx_heap_sort(k, hk, hi);
        vdx_kset_sorted(&s, D, I);
        for (int64_t e = 0; e < k; e++) bad += D[e] != hk[e] || I[e] != hi[e];
        CHECK(bad == 0);
    }
    /* fewer candidates than slots: the rest are empty, sorted last */
    float sk[16], D[16];
    vdx_idx_t si[16], I[16];
    vdx_kset s;
    vdx_kset_init(&s, 5, sk, si);
    vdx_kset_add(&s, 2.0f, 8);
    vdx_kset_add(&s, 1.0f, 9);
    vdx_kset_sorted(&s, D, I);
    CHECK(I[0] == 9 && I[1] == 8 && I[2] == -1 && I[4] == -1 && isinf(D[3]));
}

/* vdx_sort_entries against qsort, both sides of its rank-sort bound, with
 * equal keys ordered by id; NaN keys must still give a permutation. */
static int cmp_entry(const void *a, const void *b) {
    const float *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static void test_sort_entries(void) {
    for (int64_t n = 0; n <= 70; n += n < 40 ? 1 : 15) {
        float key[70], D[70], ref[70][2];
        vdx_idx_t id[70], I[70];
        test_rand_fill(key, 70, (uint64_t)n + 3);
        for (int64_t i = 0; i < n; i++) {
            key[i] = (float)(int)(key[i] * 8.0f); /* ties */
            id[i] = (vdx_idx_t)((i * 37 + 11) % 101);
            ref[i][0] = key[i];
            ref[i][1] = (float)id[i];
        }
        qsort(ref, (size_t)n, sizeof ref[0], cmp_entry);
        vdx_sort_entries(n, key, id, D, I);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += D[i] != ref[i][0] || I[i] != (vdx_idx_t)ref[i][1];
        CHECK(bad == 0);
    }
    float key[6] = {3, NAN, 1, NAN, 2, 0}, D[6];
    vdx_idx_t id[6] = {0, 1, 2, 3, 4, 5}, I[6];
    vdx_sort_entries(6, key, id, D, I);
    int seen = 0;
    for (int i = 0; i < 6; i++) seen |= 1 << I[i];
    CHECK(seen == 63);
}

int main(void) {
    RUN(test_negative_ids);
    RUN(test_set_vs_heap);
    RUN(test_sort_entries);
    RUN(test_heap_vs_sort);
    RUN(test_merge_and_empty);
    RUN(test_finish);
    return TEST_SUMMARY();
}
