/*
 * test_lsh.c — IndexLSH: codes against an independent computation, Hamming
 * search against brute force (ties to the lower id, selectors, empty
 * slots), threshold training, remove_ids / reset, serialisation round trip
 * and bad arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "vecdex.h"

/* Reference code: bit j set when y_j >= t_j, bit j of byte j / 8. */
static void ref_code(const vdx_index *ix, int64_t d, int nbits,
                     const float *x, uint8_t *code) {
    const float *A = vdx_index_lsh_rotation(ix);
    const float *t = vdx_index_lsh_train_thresholds(ix)
                         ? vdx_index_lsh_thresholds(ix) : NULL;
    memset(code, 0, (size_t)(nbits + 7) / 8);
    for (int j = 0; j < nbits; j++) {
        double y = 0;
        if (A) {
            for (int64_t i = 0; i < d; i++) y += (double)A[j * d + i] * x[i];
        } else {
            y = x[j];
        }
        if (y >= (t ? t[j] : 0.0)) code[j / 8] |= (uint8_t)(1u << (j % 8));
    }
}

static int ham(const uint8_t *a, const uint8_t *b, size_t cs) {
    int h = 0;
    for (size_t i = 0; i < cs; i++) h += __builtin_popcount((unsigned)(a[i] ^ b[i]));
    return h;
}

static void check_codes(int64_t d, int nbits, int rot, int tt) {
    const int64_t n = 300;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), (uint64_t)(d * 31 + nbits));
    for (int64_t i = 0; i < n * d; i++) x[i] -= 0.5f;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_lsh_new(d, nbits, rot, tt, &ix));
    CHECK(vdx_index_is_trained(ix) == !tt);
    CHECK_OK(vdx_index_train(ix, n, x));
    CHECK(vdx_index_is_trained(ix));
    size_t cs = vdx_index_lsh_code_size(ix);
    CHECK(cs == (size_t)(nbits + 7) / 8);
    uint8_t *c = calloc((size_t)n, cs), *r = calloc((size_t)n, cs);
    CHECK_OK(vdx_index_lsh_encode(ix, n, x, c));
    int mismatched = 0;
    for (int64_t i = 0; i < n; i++) {
        ref_code(ix, d, nbits, x + i * d, r + i * cs);
        mismatched += ham(c + i * cs, r + i * cs, cs);
    }
    /* with rotation, float vs double dot products may flip a bit that is
     * within rounding of its threshold */
    CHECK(rot ? mismatched <= 2 : mismatched == 0);
    if (tt) { /* each threshold splits the training data in halves */
        const uint8_t *sc = c;
        for (int j = 0; j < nbits; j++) {
            int ones = 0;
            for (int64_t i = 0; i < n; i++) ones += (sc[i * cs + j / 8] >> (j % 8)) & 1;
            CHECK(ones >= n / 2 - 2 && ones <= n / 2 + 2);
        }
    }
    /* search vs brute force over the stored codes */
    CHECK_OK(vdx_index_add(ix, n, x));
    CHECK(memcmp(vdx_index_lsh_codes(ix), c, (size_t)n * cs) == 0);
    const int64_t nq = 7, k = 10;
    float D[70];
    vdx_idx_t I[70];
    CHECK_OK(vdx_index_search(ix, nq, x + 50 * d, k, NULL, D, I));
    for (int64_t q = 0; q < nq; q++) {
        const uint8_t *qc = c + (size_t)(50 + q) * cs;
        /* reference: sort (dist, id) */
        int64_t prev_d = -1, prev_i = -1;
        for (int64_t j = 0; j < k; j++) {
            int64_t id = I[q * k + j];
            CHECK(id >= 0 && id < n);
            int h = ham(qc, c + (size_t)id * cs, cs);
            CHECK(D[q * k + j] == (float)h);
            CHECK(h > prev_d || (h == prev_d && id > prev_i));
            prev_d = h;
            prev_i = id;
        }
        /* nothing better or tied-lower was missed */
        int64_t worse = 0;
        for (int64_t i = 0; i < n; i++) {
            int h = ham(qc, c + (size_t)i * cs, cs);
            if (h < prev_d || (h == prev_d && i < prev_i)) worse++;
        }
        CHECK(worse == k - 1);
    }
    vdx_index_free(ix);
    free(x);
    free(c);
    free(r);
}

static void test_codes(void) {
    check_codes(16, 12, 0, 0);
    check_codes(16, 16, 0, 1);
    check_codes(32, 64, 1, 0);
    check_codes(20, 77, 1, 1);
    check_codes(70, 13, 1, 0);
    check_codes(40, 128, 1, 0);
    check_codes(64, 256, 1, 1);
    check_codes(30, 200, 1, 0);
    check_codes(50, 50, 0, 1);
}

/* Few queries, many codes: the database is split over the threads. */
static void test_split_search(void) {
    const int64_t d = 64, n = 20000, k = 25;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), 77);
    for (int64_t i = 0; i < n * d; i++) x[i] -= 0.5f;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_lsh_new(d, 64, 0, 0, &ix));
    CHECK_OK(vdx_index_add(ix, n, x));
    const uint8_t *c = vdx_index_lsh_codes(ix);
    float D[25];
    vdx_idx_t I[25];
    for (int64_t q = 0; q < 3; q++) {
        CHECK_OK(vdx_index_search(ix, 1, x + q * 997 * d, k, NULL, D, I));
        const uint8_t *qc = c + (size_t)q * 997 * 8;
        int64_t last_d = (int64_t)D[k - 1], last_i = I[k - 1], better = 0;
        for (int64_t i = 0; i < n; i++) {
            int h = ham(qc, c + (size_t)i * 8, 8);
            if (h < last_d || (h == last_d && i < last_i)) better++;
        }
        CHECK(better == k - 1);
        for (int64_t j = 0; j < k; j++)
            CHECK(D[j] == (float)ham(qc, c + (size_t)I[j] * 8, 8));
        for (int64_t j = 1; j < k; j++)
            CHECK(D[j] > D[j - 1] || (D[j] == D[j - 1] && I[j] > I[j - 1]));
    }
    vdx_index_free(ix);
    free(x);
}

static void test_search_details(void) {
    const int64_t d = 8;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_lsh_new(d, 8, 0, 0, &ix));
    /* five identical vectors: all distance 0, ordered by id */
    float x[5 * 8];
    for (int i = 0; i < 40; i++) x[i] = ((i % 8) % 3) ? 1.0f : -1.0f;
    CHECK_OK(vdx_index_add(ix, 5, x));
    float D[8];
    vdx_idx_t I[8];
    CHECK_OK(vdx_index_search(ix, 1, x, 8, NULL, D, I));
    for (int j = 0; j < 5; j++) CHECK(I[j] == j && D[j] == 0.0f);
    for (int j = 5; j < 8; j++) CHECK(I[j] == -1 && D[j] == 2147483647.0f);
    /* selector */
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_range(2, 4, &sel));
    vdx_search_params p;
    memset(&p, 0, sizeof p);
    p.sel = sel;
    CHECK_OK(vdx_index_search(ix, 1, x, 3, &p, D, I));
    CHECK(I[0] == 2 && I[1] == 3 && I[2] == -1);
    /* remove_ids compacts */
    int64_t nr = 0;
    CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
    CHECK(nr == 2 && vdx_index_ntotal(ix) == 3);
    vdx_selector_free(sel);
    /* round trip */
    uint8_t *buf = NULL;
    size_t sz = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &sz));
    vdx_index *y = NULL;
    CHECK_OK(vdx_deserialize_index(buf, sz, &y));
    CHECK(y && vdx_index_ntotal(y) == 3 && vdx_index_lsh_nbits(y) == 8);
    CHECK(strcmp(vdx_index_type_name(y), "IndexLSH") == 0);
    /* truncations are rejected, never crash */
    for (size_t cut = 0; cut < sz; cut += 3) {
        vdx_index *z = NULL;
        CHECK(vdx_deserialize_index(buf, cut, &z) != VDX_OK && z == NULL);
    }
    vdx_free_buffer(buf);
    vdx_index_free(y);
    CHECK_OK(vdx_index_reset(ix));
    CHECK(vdx_index_ntotal(ix) == 0);
    vdx_index_free(ix);
}

static void test_rotation_roundtrip(void) {
    const int64_t d = 24, n = 100;
    float x[100 * 24];
    test_rand_fill(x, (size_t)(n * d), 9);
    for (int i = 0; i < n * d; i++) x[i] -= 0.5f;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_lsh_new(d, 40, 1, 1, &ix));
    CHECK_ERR(vdx_index_add(ix, n, x), VDX_ERR_NOT_TRAINED);
    CHECK_OK(vdx_index_train(ix, n, x));
    CHECK_OK(vdx_index_add(ix, n, x));
    /* the rotation has orthonormal columns when nbits > d */
    const float *A = vdx_index_lsh_rotation(ix);
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double s = 0;
            for (int j = 0; j < 40; j++) s += (double)A[j * d + a] * A[j * d + b];
            CHECK(fabs(s - (a == b)) < 1e-4);
        }
    uint8_t *buf = NULL;
    size_t sz = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &sz));
    vdx_index *y = NULL;
    CHECK_OK(vdx_deserialize_index(buf, sz, &y));
    float D1[50], D2[50];
    vdx_idx_t I1[50], I2[50];
    CHECK_OK(vdx_index_search(ix, 5, x, 10, NULL, D1, I1));
    CHECK_OK(vdx_index_search(y, 5, x, 10, NULL, D2, I2));
    CHECK(memcmp(D1, D2, sizeof D1) == 0 && memcmp(I1, I2, sizeof I1) == 0);
    uint8_t *buf2 = NULL;
    size_t sz2 = 0;
    CHECK_OK(vdx_serialize_index(y, &buf2, &sz2));
    CHECK(sz2 == sz && memcmp(buf, buf2, sz) == 0);
    vdx_free_buffer(buf);
    vdx_free_buffer(buf2);
    vdx_index_free(y);
    vdx_index_free(ix);
}

static void test_bad_args(void) {
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_lsh_new(0, 8, 1, 0, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
    CHECK_ERR(vdx_index_lsh_new(8, 0, 1, 0, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_lsh_new(8, 9, 0, 0, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_lsh_new(8, 8, 0, 0, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_lsh_new(8, 8, 0, 1, &ix));
    float x[8] = {1, 2, 3, NAN, 5, 6, 7, 8};
    uint8_t c[1];
    CHECK_ERR(vdx_index_lsh_encode(ix, 1, x, c), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_train(ix, 1, x), VDX_ERR_INVALID_ARGUMENT);
    x[3] = 4;
    CHECK_OK(vdx_index_train(ix, 1, x));
    x[3] = INFINITY;
    CHECK_ERR(vdx_index_lsh_encode(ix, 1, x, c), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_lsh_encode(NULL, 1, x, c), VDX_ERR_INVALID_ARGUMENT);
    vdx_idx_t ids[1] = {3};
    x[3] = 4;
    CHECK_ERR(vdx_index_add_with_ids(ix, 1, x, ids), VDX_ERR_UNSUPPORTED);
    CHECK(vdx_index_lsh_nbits(NULL) == 0);
    vdx_index_free(ix);
}

int main(void) {
    RUN(test_codes);
    RUN(test_search_details);
    RUN(test_split_search);
    RUN(test_rotation_roundtrip);
    RUN(test_bad_args);
    return TEST_SUMMARY();
}
