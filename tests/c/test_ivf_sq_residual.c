/*
 * test_ivf_sq_residual.c — vdx_index_ivf_sq_set_by_residual: switched off
 * on an empty IndexIVFScalarQuantizer, the codes are of the vectors
 * themselves (a vector decodes within the 8-bit step of its own value, and
 * search distances equal those to the decoded vectors); refused once the
 * index holds codes, accepted again after reset.
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

int main(void) {
    RUN(test_toggle);
    return TEST_SUMMARY();
}
