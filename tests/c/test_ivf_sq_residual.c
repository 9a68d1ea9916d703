/*
 * test_ivf_sq_residual.c — vdx_index_ivf_sq_set_by_residual: switched off
 * on an empty IndexIVFScalarQuantizer, the codes are of the vectors
 * themselves (a vector decodes within the 8-bit step of its own value, and
 * search distances equal those to the decoded vectors); refused once the
 * index holds codes, accepted again after reset.  And QT_8bit_direct_signed
 * against a flat index.
 */
#include "test.h"

static void test_toggle(void) {
    const int64_t d = 16, nlist = 4, n = 300;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    float *y = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), 5);
    for (int on = 0; on <= 1; on++) {
        vdx_index *q = NULL, *ix = NULL;
        CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &q));
        CHECK_OK(vdx_index_ivf_sq_new(q, d, nlist, VDX_SQ_8BIT, VDX_METRIC_L2, 1, &ix));
        if (!ix) continue;
        CHECK_OK(vdx_index_ivf_sq_set_by_residual(ix, on));
        CHECK(vdx_index_ivf_sq_by_residual(ix) == on);
        CHECK_OK(vdx_index_train(ix, n, x));
        CHECK_OK(vdx_index_add(ix, n, x));
        CHECK_OK(vdx_index_ivf_set_nprobe(ix, nlist));
        CHECK_OK(vdx_index_ivf_make_direct_map(ix, 1));
        for (int64_t i = 0; i < n; i++) CHECK_OK(vdx_index_reconstruct(ix, i, y + i * d));
        double maxerr = 0;
        for (int64_t i = 0; i < n * d; i++) maxerr = fmax(maxerr, fabs(x[i] - y[i]));
        CHECK(maxerr < 1.0 / 255 + 1e-4 || on); /* ranges span [0, 1) */
        CHECK(maxerr < 0.05);
        float D[4];
        vdx_idx_t I[4];
        CHECK_OK(vdx_index_search(ix, 1, x + 7 * d, 4, NULL, D, I));
        for (int r = 0; r < 4; r++) {
            double ref = 0;
            for (int64_t j = 0; j < d; j++) {
                double u = x[7 * d + j] - y[I[r] * d + j];
                ref += u * u;
            }
            CHECK(I[r] >= 0 && fabs(ref - D[r]) < 1e-4 * (1 + ref));
        }
        CHECK_ERR(vdx_index_ivf_sq_set_by_residual(ix, !on), VDX_ERR_INVALID_ARGUMENT);
        CHECK(vdx_index_ivf_sq_by_residual(ix) == on);
        CHECK_OK(vdx_index_ivf_sq_set_by_residual(ix, on)); /* unchanged: fine */
        CHECK_OK(vdx_index_reset(ix));
        CHECK_OK(vdx_index_ivf_sq_set_by_residual(ix, !on));
        vdx_index_free(ix);
    }
    vdx_index *flat = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &flat));
    CHECK_ERR(vdx_index_ivf_sq_set_by_residual(flat, 0), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(flat);
    free(x);
    free(y);
}

/* QT_8bit_direct_signed: integer components in -128..127 are stored
 * exactly (code x + 128), so searches equal a flat index's bit for bit
 * (sums of integer-valued floats are exact in any order). */
static void test_direct_signed(void) {
    const int64_t d = 19, n = 200;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), 77);
    for (int64_t i = 0; i < n * d; i++) x[i] = floorf(x[i] * 256.0f) - 128.0f;
    for (int m = 0; m < 2; m++) {
        vdx_metric metric = m ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *sq = NULL, *flat = NULL;
        CHECK_OK(vdx_index_sq_new(d, VDX_SQ_8BIT_DIRECT_SIGNED, metric, &sq));
        CHECK_OK(vdx_index_flat_new(d, metric, &flat));
        if (!sq || !flat) continue;
        CHECK_OK(vdx_index_add(sq, n, x));
        CHECK_OK(vdx_index_add(flat, n, x));
        float D1[5 * 5], D2[5 * 5];
        vdx_idx_t I1[5 * 5], I2[5 * 5];
        CHECK_OK(vdx_index_search(sq, 5, x, 5, NULL, D1, I1));
        CHECK_OK(vdx_index_search(flat, 5, x, 5, NULL, D2, I2));
        CHECK(memcmp(D1, D2, sizeof D1) == 0 && memcmp(I1, I2, sizeof I1) == 0);
        float y[19];
        CHECK_OK(vdx_index_reconstruct(sq, 3, y));
        CHECK(memcmp(y, x + 3 * d, sizeof y) == 0);
        vdx_index_free(sq);
        vdx_index_free(flat);
    }
    free(x);
}

int main(void) {
    RUN(test_toggle);
    RUN(test_direct_signed);
    return TEST_SUMMARY();
}
