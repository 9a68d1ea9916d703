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

int main(void) {
    RUN(test_thread_clamp);
    RUN(test_reserved_id);
    RUN(test_magnitude_limit);
    RUN(test_bad_inputs);
    RUN(test_getters_and_utils);
    return TEST_SUMMARY();
}
