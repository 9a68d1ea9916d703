/*
 * test_sq_tqmse.c — the TurboQuant-MSE scalar quantizers (sq_tqmse.c): the
 * Lloyd-Max tables satisfy their own optimality conditions (each centroid
 * the conditional mean of its cell, computed here by numerical integration,
 * each boundary the midpoint), the 2-bit table against the textbook values,
 * encode against a brute-force nearest centroid, decode, scoring on codes
 * against distances to the decoded vectors, error decreasing with the bits,
 * and a file round trip.
 */
#include "test.h"
#include "quant/sq.h"

static const int tq[] = {VDX_SQ_1BIT_TQMSE, VDX_SQ_2BIT_TQMSE, VDX_SQ_3BIT_TQMSE,
                         VDX_SQ_4BIT_TQMSE, VDX_SQ_8BIT_TQMSE};
static const int tq_bits[] = {1, 2, 3, 4, 8};

/* E[X | a < X < b], X ~ N(0,1), by Simpson's rule on [max(a,-12), min(b,12)] */
static double cond_mean(double a, double b) {
    if (a < -12) a = -12;
    if (b > 12) b = 12;
    const int n = 4000;
    double h = (b - a) / n, s0 = 0, s1 = 0;
    for (int i = 0; i <= n; i++) {
        double x = a + i * h, w = (i == 0 || i == n) ? 1 : (i & 1) ? 4 : 2;
        double p = exp(-0.5 * x * x);
        s0 += w * p;
        s1 += w * x * p;
    }
    return s1 / s0;
}

static void test_tables_are_lloyd_max(void) {
    for (int t = 0; t < 5; t++) {
        const int k = 1 << tq_bits[t];
        float *tab = malloc((size_t)(2 * k - 1) * sizeof(float));
        vdx_sq_tqmse_table(1, tq_bits[t], tab);
        const float *c = tab, *b = tab + k;
        for (int j = 0; j + 1 < k; j++) {
            CHECK(c[j] < b[j] && b[j] < c[j + 1]);
            CHECK(fabsf(b[j] - 0.5f * (c[j] + c[j + 1])) < 1e-5f);
        }
        for (int j = 0; j < k; j++) {
            double lo = j ? b[j - 1] : -INFINITY, hi = j + 1 < k ? b[j] : INFINITY;
            CHECK(fabs(cond_mean(lo, hi) - c[j]) < 2e-4);
            CHECK(c[j] == -c[k - 1 - j]);
        }
        /* scaled by 1/sqrt(d) */
        float *t64 = malloc((size_t)(2 * k - 1) * sizeof(float));
        vdx_sq_tqmse_table(64, tq_bits[t], t64);
        for (int j = 0; j < 2 * k - 1; j++) CHECK(fabsf(t64[j] * 8 - tab[j]) < 1e-5f);
        free(t64);
        free(tab);
    }
    /* Max (1960): 2 levels +-0.7979, 4 levels +-0.4528, +-1.510 */
    float t2[3], t4[7];
    vdx_sq_tqmse_table(1, 1, t2);
    vdx_sq_tqmse_table(1, 2, t4);
    CHECK(fabsf(t2[1] - 0.7979f) < 1e-4f && t2[2] == 0);
    CHECK(fabsf(t4[2] - 0.4528f) < 1e-3f && fabsf(t4[3] - 1.510f) < 1e-3f);
    CHECK(fabsf(t4[4 + 2] - 0.9816f) < 1e-3f);
}

static void test_encode_decode_score(void) {
    const int64_t d = 37, n = 200;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    float *y = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), 99);
    for (int64_t i = 0; i < n * d; i++) x[i] = (x[i] - 0.5f) * 0.6f; /* ~ 1/sqrt(d) */
    double prev_err = INFINITY;
    for (int t = 0; t < 5; t++) {
        vdx_sq *sq = NULL;
        CHECK_OK(vdx_sq_new(d, tq[t], &sq));
        if (!sq) continue;
        CHECK(vdx_sq_code_size(sq) == (size_t)((d * tq_bits[t] + 7) / 8));
        CHECK_OK(vdx_sq_train(sq, n, x));
        size_t nt = 0;
        const float *tab = vdx_sq_trained(sq, &nt);
        const int k = 1 << tq_bits[t];
        CHECK(nt == (size_t)(2 * k - 1));
        uint8_t *codes = calloc((size_t)n, vdx_sq_code_size(sq));
        CHECK_OK(vdx_sq_compute_codes(sq, n, x, codes));
        CHECK_OK(vdx_sq_decode(sq, n, codes, y));
        double err = 0;
        for (int64_t i = 0; i < n * d; i++) {
            /* the decoded value is the nearest centroid */
            int best = 0;
            for (int j = 1; j < k; j++)
                if (fabsf(x[i] - tab[j]) < fabsf(x[i] - tab[best])) best = j;
            CHECK(fabsf(fabsf(x[i] - y[i]) - fabsf(x[i] - tab[best])) < 1e-6f);
            err += (double)(x[i] - y[i]) * (x[i] - y[i]);
        }
        CHECK(err < prev_err);
        prev_err = err;
        /* scoring on codes = distances to the decoded vectors */
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_sq_new(d, tq[t], VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_train(ix, n, x));
        CHECK_OK(vdx_index_add(ix, n, x));
        float D[5];
        vdx_idx_t I[5];
        CHECK_OK(vdx_index_search(ix, 1, x + 3 * d, 5, NULL, D, I));
        for (int r = 0; r < 5; r++) {
            if (I[r] < 0) continue;
            double ref = 0;
            for (int64_t j = 0; j < d; j++) {
                double u = x[3 * d + j] - y[I[r] * d + j];
                ref += u * u;
            }
            CHECK(fabs(ref - D[r]) < 1e-4 * (1 + ref));
        }
        /* a file round trip keeps the table and the codes */
        uint8_t *buf = NULL;
        size_t size = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &size));
        vdx_index *back = NULL;
        CHECK_OK(vdx_deserialize_index(buf, size, &back));
        if (back) {
            float D2[5];
            vdx_idx_t I2[5];
            CHECK_OK(vdx_index_search(back, 1, x + 3 * d, 5, NULL, D2, I2));
            CHECK(memcmp(I, I2, sizeof I) == 0 && memcmp(D, D2, sizeof D) == 0);
        }
        vdx_index_free(back);
        vdx_free_buffer(buf);
        vdx_index_free(ix);
        free(codes);
        vdx_sq_free(sq);
    }
    /* unknown types stay refused */
    vdx_sq *bad = NULL;
    CHECK_ERR(vdx_sq_new(d, 9, &bad), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_sq_new(d, 15, &bad), VDX_ERR_INVALID_ARGUMENT);
    free(x);
    free(y);
}

int main(void) {
    RUN(test_tables_are_lloyd_max);
    RUN(test_encode_decode_score);
    return TEST_SUMMARY();
}
