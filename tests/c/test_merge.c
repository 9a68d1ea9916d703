/* test_merge.c — vdx_index_merge_from / vdx_index_check_compatible_for_merge
 * on the non-IVF kinds (and IVF through the same entry point): an index
 * built in two halves and merged answers exactly as one built in one go;
 * incompatible pairs are refused and left unchanged. */
#include "test.h"

enum { NB = 600, NT = 1000, NQ = 20, D = 16, K = 5 };

static float xb[NB * D], xt[NT * D], xq[NQ * D];

static vdx_index *clone(const vdx_index *ix) {
    uint8_t *buf = NULL;
    size_t sz = 0;
    vdx_index *out = NULL;
    CHECK_OK(vdx_serialize_index(ix, &buf, &sz));
    CHECK_OK(vdx_deserialize_index(buf, sz, &out));
    vdx_free_buffer(buf);
    return out;
}

/* reference (all added at once) vs two halves merged */
static void check_key(const char *key, int with_ids) {
    /* an IVF stores ids: without an IDMap the second half's continue the
     * first's only through add_id, as in FAISS */
    const int ivf_ids = !with_ids && !strncmp(key, "IVF", 3);
    vdx_index *ref = NULL;
    CHECK_OK(vdx_index_factory(D, key, VDX_METRIC_L2, &ref));
    if (!ref) return;
    CHECK_OK(vdx_index_train(ref, NT, xt));
    vdx_index *a = clone(ref), *b = clone(ref);
    int64_t ids[NB];
    for (int64_t i = 0; i < NB; i++) ids[i] = 5000 + 3 * i;
    const int64_t h = 250;
    if (with_ids) {
        CHECK_OK(vdx_index_add_with_ids(ref, NB, xb, ids));
        CHECK_OK(vdx_index_add_with_ids(a, h, xb, ids));
        CHECK_OK(vdx_index_add_with_ids(b, NB - h, xb + h * D, ids + h));
    } else {
        CHECK_OK(vdx_index_add(ref, NB, xb));
        CHECK_OK(vdx_index_add(a, h, xb));
        CHECK_OK(vdx_index_add(b, NB - h, xb + h * D));
    }
    CHECK_OK(vdx_index_check_compatible_for_merge(a, b));
    CHECK_OK(vdx_index_merge_from(a, b, ivf_ids ? h : 0));
    CHECK(vdx_index_ntotal(a) == NB && vdx_index_ntotal(b) == 0);
    float D1[NQ * K], D2[NQ * K];
    int64_t I1[NQ * K], I2[NQ * K];
    CHECK_OK(vdx_index_search(ref, NQ, xq, K, NULL, D1, I1));
    CHECK_OK(vdx_index_search(a, NQ, xq, K, NULL, D2, I2));
    CHECK(!memcmp(I1, I2, sizeof I1));
    for (int i = 0; i < NQ * K; i++) CHECK(fabsf(D1[i] - D2[i]) <= 1e-5f * (1 + D1[i]));
    /* the emptied source still works and can be merged again (nothing) */
    CHECK_OK(vdx_index_merge_from(a, b, 0));
    CHECK(vdx_index_ntotal(a) == NB);
    if (!with_ids && !ivf_ids) /* positions as ids: add_id is refused, nothing moves */
        CHECK_ERR(vdx_index_merge_from(a, b, 7), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_merge_from(a, a, 0), VDX_ERR_INVALID_ARGUMENT);
    if (with_ids) {
        /* add_id shifts the moved ids */
        vdx_index *c = clone(ref);
        CHECK_OK(vdx_index_reset(c));
        CHECK_OK(vdx_index_add_with_ids(c, 1, xq, ids));
        CHECK_OK(vdx_index_merge_from(a, c, 100000));
        CHECK_OK(vdx_index_search(a, 1, xq, 1, NULL, D2, I2));
        CHECK(I2[0] == ids[0] + 100000);
        vdx_index_free(c);
    }
    vdx_index_free(ref);
    vdx_index_free(a);
    vdx_index_free(b);
}

static void test_merge_kinds(void) {
    const char *keys[] = {"Flat", "PQ8x4", "PQ4", "SQ8", "SQ4", "SQfp16",
                          "LSH", "PQ8x4fs", "PCA8,SQ8", "IVF8,Flat",
                          "IVF8,PQ4"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        int before = test_failed_checks;
        check_key(keys[i], 0);
        if (test_failed_checks != before) fprintf(stderr, "  (key %s)\n", keys[i]);
    }
    const char *id_keys[] = {"IDMap,Flat", "IDMap2,Flat", "IDMap,SQ8",
                             "IDMap,IVF8,Flat", "IDMap2,PCA8,IVF8,Flat"};
    for (size_t i = 0; i < sizeof id_keys / sizeof *id_keys; i++) {
        int before = test_failed_checks;
        check_key(id_keys[i], 1);
        if (test_failed_checks != before) fprintf(stderr, "  (key %s)\n", id_keys[i]);
    }
}

/* pairs that must be refused, with both left as they were */
static void refuse(vdx_index *a, vdx_index *b, vdx_status code) {
    int64_t na = vdx_index_ntotal(a), nb = vdx_index_ntotal(b);
    CHECK_ERR(vdx_index_check_compatible_for_merge(a, b), code);
    CHECK_ERR(vdx_index_merge_from(a, b, 0), code);
    CHECK(vdx_index_ntotal(a) == na && vdx_index_ntotal(b) == nb);
}

static vdx_index *trained(const char *key, int64_t d, vdx_metric m,
                          const float *train) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(d, key, m, &ix));
    if (ix && train) {
        CHECK_OK(vdx_index_train(ix, NT / 2, train));
        CHECK_OK(vdx_index_add(ix, 10, xb));
    }
    return ix;
}

static void test_refused(void) {
    const float *t1 = xt, *t2 = xt + (NT / 2) * D;
    struct { const char *a, *b; int da, db; vdx_metric ma, mb; const float *ta, *tb; } cases[] = {
        {"Flat", "Flat", D, 8, VDX_METRIC_L2, VDX_METRIC_L2, t1, t1},
        {"Flat", "Flat", D, D, VDX_METRIC_L2, VDX_METRIC_INNER_PRODUCT, t1, t1},
        {"Flat", "SQ8", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t1},
        {"PQ4", "PQ8", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t1},
        {"PQ4", "PQ4", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t2}, /* codebooks */
        {"SQ8", "SQ4", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t1},
        {"SQ8", "SQ8", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t2}, /* ranges */
        {"PQ8x4fs", "PQ8x4fs", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t2},
        {"PCA8,Flat", "PCA8,Flat", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t2},
        {"IVF8,Flat", "IVF8,Flat", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t2},
        {"IVF8,Flat", "IVF4,Flat", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, t1},
        {"IDMap,Flat", "Flat", D, D, VDX_METRIC_L2, VDX_METRIC_L2, NULL, t1},
        {"Flat", "IDMap,Flat", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, NULL},
        {"PQ4", "PQ4", D, D, VDX_METRIC_L2, VDX_METRIC_L2, t1, NULL}, /* untrained */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        vdx_index *a = trained(cases[i].a, cases[i].da, cases[i].ma, cases[i].ta);
        vdx_index *b = trained(cases[i].b, cases[i].db, cases[i].mb, cases[i].tb);
        if (a && b) {
            int before = test_failed_checks;
            refuse(a, b, VDX_ERR_INVALID_ARGUMENT);
            if (test_failed_checks != before) fprintf(stderr, "  (case %zu)\n", i);
        }
        vdx_index_free(a);
        vdx_index_free(b);
    }
    /* a kind without merge */
    vdx_index *h1 = trained("HNSW8", D, VDX_METRIC_L2, t1);
    vdx_index *h2 = trained("HNSW8", D, VDX_METRIC_L2, t1);
    refuse(h1, h2, VDX_ERR_UNSUPPORTED);
    vdx_index_free(h1);
    vdx_index_free(h2);
    CHECK_ERR(vdx_index_merge_from(NULL, NULL, 0), VDX_ERR_INVALID_ARGUMENT);
}

int main(void) {
    test_rand_fill(xb, NB * D, 1);
    test_rand_fill(xt, NT * D, 2);
    test_rand_fill(xq, NQ * D, 3);
    RUN(test_merge_kinds);
    RUN(test_refused);
    return TEST_SUMMARY();
}
