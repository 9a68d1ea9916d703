/*
 * test_io_pq.c — IndexPQ ("IxPq") and IndexIVFPQ ("IwPQ") in FAISS's
 * format (src/io/pq_io.c).
 *
 * Independent references: the golden pq*.index / ivfpq*.index files in
 * tests/fuzz/corpus/ were written by FAISS itself with fixed centroids
 * (tests/fuzz/make_corpus.py, PQ_GOLDEN): vecdex must read the codes FAISS
 * computed and write the same bytes back.  Then round trips, every
 * truncation, and corrupt fields, which must fail cleanly with the right
 * code.
 */
#include "test.h"
#include "io_test_util.h"
#include "index/index_pq.h"


/* reads a golden file, checks it serialises back byte for byte */
static vdx_index *golden(const char *name, uint8_t **bytes, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", name);
    *bytes = slurp(path, n);
    CHECK(*bytes != NULL);
    if (!*bytes) return NULL;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_deserialize_index(*bytes, *n, &ix));
    if (!ix) return NULL;
    uint8_t *out = NULL;
    size_t on = 0;
    CHECK_OK(vdx_serialize_index(ix, &out, &on));
    CHECK(on == *n && memcmp(out, *bytes, on) == 0);
    vdx_free_buffer(out);
    return ix;
}

static void test_golden_pq(void) {
    uint8_t *b;
    size_t n;
    vdx_index *ix = golden("pq3_l2_d4_n3.index", &b, &n);
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexPQ") == 0);
        CHECK(vdx_index_ntotal(ix) == 3 && vdx_index_d(ix) == 4);
        CHECK(vdx_index_metric(ix) == VDX_METRIC_L2);
        vdx_pq *pq = vdx_index_pq_quantizer(ix);
        CHECK(vdx_pq_M(pq) == 2 && vdx_pq_nbits(pq) == 3 &&
              vdx_pq_code_size(pq) == 1);
        /* the codes FAISS computed, and their reconstructions */
        const uint8_t want[3] = {1, 47, 63};
        CHECK(memcmp(((vdx_index_pq *)ix)->codes, want, 3) == 0);
        float x[12];
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, 3, x));
        const float ref[12] = {0.5f, 0.75f, 4.0f, 4.25f, 3.5f, 3.75f,
                               6.5f, 6.75f, 3.5f, 3.75f, 7.5f, 7.75f};
        CHECK(memcmp(x, ref, sizeof ref) == 0);
        /* our encoder gives FAISS's codes for the same vectors */
        float v[12];
        for (int i = 0; i < 12; i++) v[i] = (float)i;
        uint8_t c[3];
        CHECK_OK(vdx_pq_compute_codes(pq, 3, v, c));
        CHECK(memcmp(c, want, 3) == 0);
        vdx_index_free(ix);
    }
    free(b);
    ix = golden("pq8_ip_d4_n3.index", &b, &n);
    if (ix) {
        CHECK(vdx_index_metric(ix) == VDX_METRIC_INNER_PRODUCT);
        const uint8_t want[6] = {1, 0, 9, 0, 17, 0};
        CHECK(memcmp(((vdx_index_pq *)ix)->codes, want, 6) == 0);
        vdx_index_free(ix);
    }
    free(b);
}

static void test_golden_ivfpq(void) {
    uint8_t *b;
    size_t n;
    vdx_index *ix = golden("ivfpq3_l2_d4_n10.index", &b, &n);
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexIVFPQ") == 0);
        CHECK(vdx_index_is_ivf(ix) && vdx_index_ivf_nlist(ix) == 4);
        CHECK(vdx_index_ivf_nprobe(ix) == 2 && vdx_index_ntotal(ix) == 10);
        const int64_t sizes[4] = {2, 3, 3, 2};
        const vdx_idx_t ids1[3] = {3, 6, 9};
        vdx_idx_t got[3];
        for (int l = 0; l < 4; l++) CHECK(vdx_index_ivf_list_size(ix, l) == sizes[l]);
        CHECK_OK(vdx_index_ivf_list_ids(ix, 1, got));
        CHECK(memcmp(got, ids1, sizeof ids1) == 0);
        vdx_index_free(ix);
    }
    free(b);
}

/* every strict prefix of a valid file fails with VDX_ERR_FORMAT */
static void truncations(const char *name) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", name);
    size_t n;
    uint8_t *b = slurp(path, &n);
    CHECK(b != NULL);
    if (!b) return;
    for (size_t len = 0; len < n; len++) {
        vdx_index *ix = (vdx_index *)1;
        vdx_status s = vdx_deserialize_index(b, len, &ix);
        CHECK(s == VDX_ERR_FORMAT);
        CHECK(ix == NULL);
        if (s != VDX_ERR_FORMAT) {
            fprintf(stderr, "  %s cut at %zu: %s\n", name, len, vdx_last_error());
            vdx_index_free(ix);
            break;
        }
    }
    free(b);
}

static void test_truncated(void) {
    truncations("pq3_l2_d4_n3.index");
    truncations("pq8_ip_d4_n3.index");
    truncations("ivfpq3_l2_d4_n10.index");
}

static void patch(uint8_t *b, size_t off, const void *v, size_t len) {
    memcpy(b + off, v, len);
}

static void expect_bad(const uint8_t *b, size_t n, vdx_status code,
                       const char *needle) {
    vdx_index *ix = (vdx_index *)1;
    vdx_status s = vdx_deserialize_index(b, n, &ix);
    CHECK(s == code);
    CHECK(ix == NULL);
    CHECK(strstr(vdx_last_error(), needle) != NULL);
    if (s != code || !strstr(vdx_last_error(), needle))
        fprintf(stderr, "  got %s '%s', want %s containing '%s'\n",
                vdx_status_name(s), vdx_last_error(), vdx_status_name(code),
                needle);
    if (s == VDX_OK) vdx_index_free(ix);
}

/* IxPq offsets: header 0..36, pq d 37, M 45, nbits 53, centroid count 61,
 * centroids 69 (32 floats), code count 197, codes 205 */
static void test_corrupt_pq(void) {
    size_t n;
    uint8_t *orig = slurp(CORPUS "pq3_l2_d4_n3.index", &n);
    CHECK(orig && n == 217);
    if (!orig || n != 217) return;
    uint8_t *b = malloc(n);
    uint64_t v;
#define RESET() memcpy(b, orig, n)
    RESET(); v = 3; patch(b, 45, &v, 8); /* M does not divide d */
    expect_bad(b, n, VDX_ERR_FORMAT, "M dividing d");
    RESET(); v = 0; patch(b, 53, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "nbits=0");
    RESET(); v = 17; patch(b, 53, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "nbits=17");
    RESET(); v = 5; patch(b, 37, &v, 8); /* d disagrees with the header */
    expect_bad(b, n, VDX_ERR_FORMAT, "d=5");
    RESET(); v = 31; patch(b, 61, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "expected d x 2^nbits");
    RESET(); v = (uint64_t)1 << 62; patch(b, 61, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "");
    RESET(); { float nan = NAN; patch(b, 69 + 8, &nan, 4); }
    expect_bad(b, n, VDX_ERR_FORMAT, "non-finite");
    RESET(); v = 4; patch(b, 197, &v, 8); /* codes for ntotal=3 are 3 */
    expect_bad(b, n, VDX_ERR_FORMAT, "");
    RESET(); v = UINT64_MAX; patch(b, 197, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "");
    RESET(); b[32] = 0; /* untrained yet holding codes */
    expect_bad(b, n, VDX_ERR_FORMAT, "not trained");
    RESET(); { int64_t nt = (int64_t)1 << 60; patch(b, 8, &nt, 8); }
    expect_bad(b, n, VDX_ERR_FORMAT, "");
#undef RESET
    free(b);
    free(orig);
}

/* IwPQ: find the by_residual / code_size fields after the direct map:
 * they follow the direct map; located by the first occurrence of the pq's
 * d, M, nbits triple (4, 2, 3 as uint64), 9 bytes after them. */
static void test_corrupt_ivfpq(void) {
    size_t n;
    uint8_t *orig = slurp(CORPUS "ivfpq3_l2_d4_n10.index", &n);
    CHECK(orig != NULL);
    if (!orig) return;
    uint64_t trip[3] = {4, 2, 3};
    size_t at = 0;
    for (size_t i = 0; i + 24 <= n; i++)
        if (memcmp(orig + i, trip, 24) == 0) {
            at = i;
            break;
        }
    CHECK(at > 9);
    uint8_t *b = malloc(n);
    memcpy(b, orig, n);
    uint64_t v = 2;
    patch(b, at - 8, &v, 8); /* code_size 2, the pq's is 1 */
    expect_bad(b, n, VDX_ERR_FORMAT, "code_size=2");
    memcpy(b, orig, n);
    b[at - 9] = 7; /* by_residual not a bool */
    expect_bad(b, n, VDX_ERR_FORMAT, "by_residual");
    memcpy(b, orig, n);
    v = 2;
    patch(b, at, &v, 8); /* pq d disagrees */
    expect_bad(b, n, VDX_ERR_FORMAT, "product quantizer");
    free(b);
    free(orig);
}

/* vecdex-built indexes survive a round trip with identical results */
static void test_round_trip(void) {
    const int64_t d = 8, nt = 1000;
    float *x = malloc(sizeof(float) * nt * d);
    srand(5);
    for (int64_t i = 0; i < nt * d; i++) x[i] = (float)rand() / (float)RAND_MAX;
    for (int kind = 0; kind < 2; kind++) {
        vdx_index *ix = NULL, *q = NULL;
        if (kind == 0) {
            CHECK_OK(vdx_index_pq_new(d, 4, 6, VDX_METRIC_L2, &ix));
        } else {
            CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &q));
            CHECK_OK(vdx_index_ivfpq_new(q, d, 8, 2, 8, VDX_METRIC_L2, &ix));
        }
        CHECK_OK(vdx_index_train(ix, nt, x));
        CHECK_OK(vdx_index_add(ix, 500, x));
        uint8_t *buf = NULL;
        size_t bn = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &bn));
        vdx_index *r = NULL;
        CHECK_OK(vdx_deserialize_index(buf, bn, &r));
        float D1[50], D2[50];
        vdx_idx_t I1[50], I2[50];
        if (r) {
            CHECK_OK(vdx_index_search(ix, 10, x + 600 * d, 5, NULL, D1, I1));
            CHECK_OK(vdx_index_search(r, 10, x + 600 * d, 5, NULL, D2, I2));
            CHECK(memcmp(D1, D2, sizeof D1) == 0 && memcmp(I1, I2, sizeof I1) == 0);
        }
        vdx_free_buffer(buf);
        vdx_index_free(r);
        vdx_index_free(ix);
    }
    free(x);
}

int main(void) {
    RUN(test_golden_pq);
    RUN(test_golden_ivfpq);
    RUN(test_truncated);
    RUN(test_corrupt_pq);
    RUN(test_corrupt_ivfpq);
    RUN(test_round_trip);
    return TEST_SUMMARY();
}
