/* test_index.c — the common argument checks of index.c: every entry point
 * refuses bad input with the right code and a message, and loses nothing. */
#include "test.h"

static void test_bad_inputs(void) {
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_flat_new(0, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "d=0") != NULL);
    CHECK_ERR(vdx_index_flat_new(-5, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_flat_new(4, (vdx_metric)7, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_flat_new(4, VDX_METRIC_L2, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_flat_new(4, VDX_METRIC_L2, &ix));
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, D[6];
    int64_t I[6];
    CHECK_OK(vdx_index_add(ix, 3, x));
    CHECK_ERR(vdx_index_add(ix, -1, x), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_add(ix, 2, NULL), VDX_ERR_INVALID_ARGUMENT);
    float bad[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
    CHECK_ERR(vdx_index_add(ix, 2, bad), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "NaN") && strstr(vdx_last_error(), "row 1"));
    bad[5] = INFINITY;
    CHECK_ERR(vdx_index_add(ix, 2, bad), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_train(ix, 2, bad), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ntotal(ix) == 3); /* nothing lost, nothing added */
    CHECK_ERR(vdx_index_search(ix, 1, x, 0, NULL, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "k=0") != NULL);
    CHECK_ERR(vdx_index_search(ix, 1, x, -3, NULL, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_search(ix, 1, x, 2, NULL, NULL, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_search(ix, 1, bad + 4, 2, NULL, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_search(NULL, 1, x, 2, NULL, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_search(ix, 1, x, (int64_t)1 << 40, NULL, D, I),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_add_with_ids(ix, 1, x, I), VDX_ERR_UNSUPPORTED);
    CHECK(strstr(vdx_last_error(), "IDMap") != NULL);
    vdx_range_result *r = NULL;
    CHECK_ERR(vdx_index_range_search(ix, 1, x, NAN, NULL, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK_ERR(vdx_index_remove_ids(ix, NULL, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ntotal(ix) == 3);
    /* success clears the previous error */
    CHECK_OK(vdx_index_search(ix, 1, x, 6, NULL, D, I));
    CHECK(vdx_last_error()[0] == 0);
    CHECK(I[0] == 0 && I[3] == -1 && D[3] == FLT_MAX); /* as FAISS */
    /* zero queries is a no-op */
    CHECK_OK(vdx_index_search(ix, 0, NULL, 5, NULL, NULL, NULL));
    vdx_index_free(ix);
    vdx_index_free(NULL);
}

static void test_getters_and_utils(void) {
    vdx_index *ix;
    CHECK_OK(vdx_index_flat_new(3, VDX_METRIC_INNER_PRODUCT, &ix));
    CHECK(vdx_index_d(ix) == 3 && vdx_index_ntotal(ix) == 0);
    CHECK(vdx_index_is_trained(ix) == 1);
    CHECK(vdx_index_metric(ix) == VDX_METRIC_INNER_PRODUCT);
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexFlatIP"));
    CHECK(vdx_index_d(NULL) == 0 && vdx_index_flat_data(NULL) == NULL);
    float q[3] = {1, 0, 0}, D[2];
    int64_t I[2];
    CHECK_OK(vdx_index_search(ix, 1, q, 2, NULL, D, I));
    CHECK(I[0] == -1 && D[0] == -FLT_MAX); /* empty IP slot, as FAISS */
    vdx_index_free(ix);
    float x[6] = {3, 4, 0, 0, 0, 0};
    CHECK_OK(vdx_normalize_L2(2, 3, x));
    CHECK(fabsf(x[0] - 0.6f) < 1e-6 && fabsf(x[1] - 0.8f) < 1e-6 && x[3] == 0);
    CHECK_ERR(vdx_normalize_L2(2, 0, x), VDX_ERR_INVALID_ARGUMENT);
    CHECK(!strcmp(vdx_status_name(VDX_ERR_FORMAT), "VDX_ERR_FORMAT"));
    CHECK(VDX_OK == 0 && VDX_ERR_INVALID_ARGUMENT == 1 && VDX_ERR_INTERNAL == 8);
    int before = vdx_get_num_threads();
    vdx_set_num_threads(1);
    CHECK(vdx_get_num_threads() == 1);
    vdx_set_num_threads(0);
    CHECK(vdx_get_num_threads() == before);
}

/* omp_set_num_threads(100000) crashed the next parallel call; the setting
 * is clamped to vdx_max_threads() (4 per processor, 64..1024). */
static void test_thread_clamp(void) {
    int cap = vdx_max_threads();
    CHECK(cap >= 64 && cap <= 1024);
    vdx_set_num_threads(100000);
    CHECK(vdx_get_num_threads() == cap);
    vdx_set_num_threads(3);
    CHECK(vdx_get_num_threads() == 3);
    vdx_set_num_threads(0);
    CHECK(vdx_get_num_threads() >= 1 && vdx_get_num_threads() <= cap);
}

/* -1 is "no result" in every search: refused as a user id; any other
 * negative id is kept. */
static void test_reserved_id(void) {
    vdx_index *f, *m;
    CHECK_OK(vdx_index_flat_new(2, VDX_METRIC_L2, &f));
    CHECK_OK(vdx_index_idmap_new(f, &m));
    float x[6] = {0, 0, 1, 1, 2, 2};
    vdx_idx_t ids[3] = {-5, -1, 9};
    CHECK_ERR(vdx_index_add_with_ids(m, 3, x, ids), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "ids[1] is -1") != NULL);
    CHECK(vdx_index_ntotal(m) == 0);
    ids[1] = -2;
    CHECK_OK(vdx_index_add_with_ids(m, 3, x, ids));
    float D[3];
    vdx_idx_t I[3];
    float q[2] = {1.1f, 1.1f};
    CHECK_OK(vdx_index_search(m, 1, q, 3, NULL, D, I));
    CHECK(I[0] == -2 && I[1] == 9 && I[2] == -5);
    vdx_index_free(m);
}

/* Vectors whose components exceed vdx_max_magnitude(d) are refused by
 * train, add and search, with the value, row and column. */
static void test_magnitude_limit(void) {
    vdx_index *f;
    CHECK_OK(vdx_index_flat_new(4, VDX_METRIC_L2, &f));
    float x[8] = {0, 1, 2, 3, 4, 5, -3e20f, 7};
    CHECK_ERR(vdx_index_add(f, 2, x), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "-3e+20 at row 1, column 2") != NULL);
    CHECK(vdx_index_ntotal(f) == 0);
    float lim = sqrtf(FLT_MAX / (32.0f * 4));
    x[6] = -lim; /* the limit itself is accepted */
    CHECK_OK(vdx_index_add(f, 2, x));
    float D[2];
    vdx_idx_t I[2];
    x[1] = nextafterf(lim, INFINITY);
    CHECK_ERR(vdx_index_search(f, 1, x, 2, NULL, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_search(f, 1, x + 4, 2, NULL, D, I));
    CHECK(I[0] == 1 && isfinite(D[1]));
    vdx_index_free(f);
}


/* Item 9 of issue 17: a second train of a populated index either changes
 * nothing (the results stay bit for bit the same, as FAISS's
 * IndexPQFastScan::train or an IVF whose centroids are in place) or is
 * refused with a message naming the count; reset() then allows it.  Recall
 * against brute force is checked before and after the call. */
static double recall_at(const float *xb, int64_t nb, const float *xq,
                        int64_t nq, int64_t d, int k, const vdx_idx_t *I) {
    int hit = 0;
    for (int64_t q = 0; q < nq; q++) {
        float best = INFINITY;
        int64_t arg = -1;
        for (int64_t i = 0; i < nb; i++) {
            float s = 0;
            for (int64_t j = 0; j < d; j++) {
                float t = xq[q * d + j] - xb[i * d + j];
                s += t * t;
            }
            if (s < best) best = s, arg = i;
        }
        for (int j = 0; j < k; j++)
            if (I[q * k + j] == arg) hit++;
    }
    return (double)hit / (double)nq;
}

static void test_retrain_populated(void) {
    static const struct {
        const char *desc;
        int refused; /* 1: a second train is refused, 0: it changes nothing */
    } cases[] = {
        {"PQ8", 1},            {"PQ8x4fs", 0},        {"IVF16,Flat", 0},
        {"IVF16,PQ8", 1},      {"IVF16,PQ8x4fs", 1},  {"IVF16,SQ8", 1},
        {"IVF16,SQfp16", 0},   {"SQ8", 1},            {"SQ4", 1},
        {"SQfp16", 0},         {"LSH", 0},            {"LSHt", 1},
        {"HNSW16", 0},         {"HNSW16,PQ8", 1},     {"HNSW16,SQ8", 1},
        {"PCA16,IVF16,PQ8", 0}, {"PCA16,PQ8", 0},     {"IVF16,PQ8,RFlat", 0},
        {"IDMap,PQ8", 1},      {"IDMap2,IVF16,SQ8", 1}, {"IDMap,PQ8x4fs", 0},
        {"Residual16,PQ8", 1},
    };
    const int64_t d = 32, nb = 2000, nq = 50;
    const int k = 10;
    float *xb = malloc(sizeof(float) * nb * d), *xt = malloc(sizeof(float) * nb * d);
    float *xq = malloc(sizeof(float) * nq * d);
    float *D1 = malloc(sizeof(float) * nq * k), *D2 = malloc(sizeof(float) * nq * k);
    vdx_idx_t *I1 = malloc(sizeof(vdx_idx_t) * nq * k), *I2 = malloc(sizeof(vdx_idx_t) * nq * k);
    uint64_t r = 12345;
    for (int64_t i = 0; i < nb * d; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        xb[i] = (float)(r >> 40) / (float)(1 << 24);
        xt[i] = 3 * xb[i] - 1 + 0.5f * (float)((r >> 20) & 0xff) / 256.0f;
    }
    for (int64_t i = 0; i < nq * d; i++) xq[i] = xb[(i * 7) % (nb * d)] + 0.01f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(d, cases[c].desc, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        int idm = !strncmp(cases[c].desc, "IDMap", 5);
        vdx_idx_t *ids = malloc(sizeof(vdx_idx_t) * nb);
        for (int64_t i = 0; i < nb; i++) ids[i] = i;
        CHECK_OK(vdx_index_train(ix, nb, xb));
        CHECK_OK(idm ? vdx_index_add_with_ids(ix, nb, xb, ids) : vdx_index_add(ix, nb, xb));
        CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D1, I1));
        double r1 = recall_at(xb, nb, xq, nq, d, k, I1);
        vdx_status st = vdx_index_train(ix, nb, xt);
        if (cases[c].refused) {
            if (st != VDX_ERR_INVALID_ARGUMENT ||
                !strstr(vdx_last_error(), "index holds 2000 vectors; reset() it before training again")) {
                fprintf(stderr, "  %s: second train -> %s '%s'\n", cases[c].desc,
                        vdx_status_name(st), vdx_last_error());
                CHECK(0);
            }
        } else if (st != VDX_OK) {
            fprintf(stderr, "  %s: second train -> %s '%s'\n", cases[c].desc,
                    vdx_status_name(st), vdx_last_error());
            CHECK(0);
        }
        CHECK(vdx_index_ntotal(ix) == nb);
        CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D2, I2));
        double r2 = recall_at(xb, nb, xq, nq, d, k, I2);
        int same = !memcmp(I1, I2, sizeof(vdx_idx_t) * nq * k) &&
                   !memcmp(D1, D2, sizeof(float) * nq * k);
        /* plain LSH (no thresholds) on positive data sets every bit: no recall */
        double rmin = !strcmp(cases[c].desc, "LSH") ? 0.0 : 0.2;
        if (!same || r1 < rmin || r2 != r1) {
            fprintf(stderr, "  %s: recall@%d %.2f -> %.2f, results %s\n",
                    cases[c].desc, k, r1, r2, same ? "same" : "changed");
            CHECK(0);
        }
        /* after reset() the index trains again */
        CHECK_OK(vdx_index_reset(ix));
        CHECK_OK(vdx_index_train(ix, nb, xt));
        vdx_index_free(ix);
        free(ids);
    }
    free(xb), free(xt), free(xq), free(D1), free(D2), free(I1), free(I2);
}

int main(void) {
    RUN(test_thread_clamp);
    RUN(test_reserved_id);
    RUN(test_magnitude_limit);
    RUN(test_retrain_populated);
    RUN(test_bad_inputs);
    RUN(test_getters_and_utils);
    return TEST_SUMMARY();
}
