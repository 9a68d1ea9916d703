/*
 * test_hadamard.c — HadamardRotation (quant/hadamard.c): an orthogonal map
 * of the zero-padded input (inner products kept, checked against the
 * input's), its 4x4 matrix orthonormal with the entries a product of three
 * signed 4x4 Hadamard matrices over 8 can take, deterministic per seed and
 * different across seeds; file round trip, a corrupt d_out refused;
 * "HR,Flat" in the factory.  (Equality with FAISS's outputs is checked in
 * tests/python/test_hadamard.py.)
 */
#include "test.h"
#include "quant/transform.h"

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void test_orthogonal_and_seeded(void) {
    const int64_t dims[] = {1, 5, 16, 100, 128};
    for (int k = 0; k < 5; k++) {
        const int64_t d = dims[k], n = 6;
        vdx_vt *a = NULL, *b = NULL, *c = NULL;
        CHECK_OK(vdx_vt_hadamard_new(d, 42, &a));
        CHECK_OK(vdx_vt_hadamard_new(d, 42, &b));
        CHECK_OK(vdx_vt_hadamard_new(d, 43, &c));
        if (!a || !b || !c) continue;
        const int64_t p = vdx_vt_d_out(a);
        CHECK(p >= d && p < 2 * d + 1 && (p & (p - 1)) == 0);
        float *x = malloc((size_t)(n * d) * sizeof(float));
        float *ya = malloc((size_t)(n * p) * sizeof(float));
        float *yb = malloc((size_t)(n * p) * sizeof(float));
        float *yc = malloc((size_t)(n * p) * sizeof(float));
        test_rand_fill(x, (size_t)(n * d), (uint64_t)d);
        CHECK_OK(vdx_vt_apply(a, n, x, ya));
        CHECK_OK(vdx_vt_apply(b, n, x, yb));
        CHECK_OK(vdx_vt_apply(c, n, x, yc));
        CHECK(memcmp(ya, yb, (size_t)(n * p) * sizeof(float)) == 0);
        int differ = 0;
        for (int64_t i = 0; i < n * p; i++) differ |= ya[i] != yc[i];
        CHECK(differ || d == 1);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double in = dot(x + i * d, x + j * d, d);
                double out = dot(ya + i * p, ya + j * p, p);
                CHECK(fabs(in - out) < 1e-4 * (1 + fabs(in)));
            }
        /* a file keeps the seed: the same outputs back */
        uint8_t *buf = NULL;
        size_t size = 0;
        CHECK_OK(vdx_serialize_vt(a, &buf, &size));
        vdx_vt *r = NULL;
        CHECK_OK(vdx_deserialize_vt(buf, size, &r));
        if (r) {
            CHECK(vdx_vt_hadamard_seed(r) == 42 && vdx_vt_d_out(r) == p);
            CHECK_OK(vdx_vt_apply(r, n, x, yb));
            CHECK(memcmp(ya, yb, (size_t)(n * p) * sizeof(float)) == 0);
            vdx_vt_free(r);
        }
        /* d_out (the int32 after the seed and d_in) patched to p + 1 */
        if (buf && size >= 16) {
            int32_t bad = (int32_t)p + 1;
            memcpy(buf + 12, &bad, 4);
            r = NULL;
            CHECK_ERR(vdx_deserialize_vt(buf, size, &r), VDX_ERR_FORMAT);
            CHECK(r == NULL);
        }
        vdx_free_buffer(buf);
        free(x);
        free(ya);
        free(yb);
        free(yc);
        vdx_vt_free(a);
        vdx_vt_free(b);
        vdx_vt_free(c);
    }
    vdx_vt *bad = NULL;
    CHECK_ERR(vdx_vt_hadamard_new(0, 1, &bad), VDX_ERR_INVALID_ARGUMENT);
}

/* For d = p = 4 the map is (1/8) H D3 H D2 H D1 (H the 4x4 Sylvester
 * matrix, D the sign diagonals): its matrix (rows = images of e_j) is
 * orthonormal, and every entry is a multiple of 1/2 of magnitude <= 1. */
static void test_structure_d4(void) {
    vdx_vt *a = NULL;
    CHECK_OK(vdx_vt_hadamard_new(4, 12345, &a));
    if (!a) return;
    float e[16] = {0}, m[16];
    for (int j = 0; j < 4; j++) e[j * 4 + j] = 1;
    CHECK_OK(vdx_vt_apply(a, 4, e, m));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = dot(m + i * 4, m + j * 4, 4);
            CHECK(fabs(s - (i == j)) < 1e-6);
        }
    for (int i = 0; i < 16; i++) {
        float v = fabsf(m[i]);
        CHECK(fabsf(v - 0.5f) < 1e-6f || v < 1e-6f || fabsf(v - 1.0f) < 1e-6f);
    }
    vdx_vt_free(a);
}

static void test_factory(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(100, "HR,Flat", VDX_METRIC_L2, &ix));
    if (!ix) return;
    float *x = malloc(50 * 100 * sizeof(float));
    test_rand_fill(x, 50 * 100, 3);
    CHECK_OK(vdx_index_train(ix, 50, x));
    CHECK_OK(vdx_index_add(ix, 50, x));
    float D[2];
    vdx_idx_t I[2];
    CHECK_OK(vdx_index_search(ix, 1, x + 7 * 100, 2, NULL, D, I));
    CHECK(I[0] == 7 && fabsf(D[0]) < 1e-4f);
    free(x);
    vdx_index_free(ix);
}

int main(void) {
    RUN(test_orthogonal_and_seeded);
    RUN(test_structure_d4);
    RUN(test_factory);
    return TEST_SUMMARY();
}
