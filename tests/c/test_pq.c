/*
 * test_pq.c — the product quantizer (src/quant/pq.c), IndexPQ and
 * IndexIVFPQ.  References: brute force on the decoded vectors (what ADC
 * must equal), the scalar scan (what the AVX2 scan must equal bit for bit),
 * and a bit-by-bit re-implementation of the packing.
 */
#include "test.h"
#include "index/index_pq.h"

static void rand_vecs(float *x, int64_t n, unsigned seed) {
    srand(seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX;
}

/* packing round trip for nbits 1..16, against an independent bit writer */
static void test_packing(void) {
    for (int nbits = 1; nbits <= 16; nbits++) {
        for (int64_t M = 1; M <= 9; M += 4) {
            size_t cs = (size_t)((M * nbits + 7) / 8);
            uint8_t code[32], ref[32];
            memset(code, 0xAA, sizeof code);
            memset(ref, 0, sizeof ref);
            uint32_t vals[16];
            for (int64_t m = 0; m < M; m++) {
                vals[m] = (uint32_t)(rand() & ((1 << nbits) - 1));
                vdx_pq_put(code, m, nbits, vals[m]);
                for (int b = 0; b < nbits; b++) /* LSB first */
                    if (vals[m] >> b & 1) {
                        int64_t bit = m * nbits + b;
                        ref[bit / 8] |= (uint8_t)(1 << (bit % 8));
                    }
            }
            for (int64_t m = 0; m < M; m++)
                CHECK(vdx_pq_get(code, m, nbits) == vals[m]);
            /* the bits past the code's last index (inside its last byte)
             * are whatever was there; compare the used bits only */
            for (size_t b = 0; b + 1 < cs; b++) CHECK(code[b] == ref[b]);
            int used = (int)(M * nbits - 8 * (int64_t)(cs - 1));
            uint8_t mask = (uint8_t)((1u << used) - 1u);
            CHECK((code[cs - 1] & mask) == ref[cs - 1]);
        }
    }
}

/* ADC equals the distance to the decoded vector; encode picks the nearest
 * reconstruction; IndexPQ search equals brute force on decoded vectors */
static void test_adc_bruteforce(void) {
    const int64_t d = 16, nt = 2000, nb = 500, nq = 10, k = 5;
    int nbits_list[] = {4, 8, 5};
    float *xt = malloc(sizeof(float) * nt * d);
    rand_vecs(xt, nt * d, 1);
    for (int ni = 0; ni < 3; ni++) {
        for (int mi = 0; mi < 2; mi++) {
            vdx_metric metric = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
            int nbits = nbits_list[ni];
            vdx_index *ix = NULL;
            CHECK_OK(vdx_index_pq_new(d, 4, nbits, metric, &ix));
            CHECK_OK(vdx_index_train(ix, nt, xt));
            CHECK_OK(vdx_index_add(ix, nb, xt));
            float *dec = malloc(sizeof(float) * nb * d);
            CHECK_OK(vdx_index_reconstruct_n(ix, 0, nb, dec));
            const float *xq = xt + 1000 * d;
            float D[50];
            vdx_idx_t I[50];
            CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D, I));
            for (int64_t q = 0; q < nq; q++) {
                for (int64_t j = 0; j < k; j++) {
                    vdx_idx_t id = I[q * k + j];
                    CHECK(id >= 0 && id < nb);
                    float ref = 0;
                    for (int64_t c = 0; c < d; c++) {
                        float a = xq[q * d + c], b = dec[id * d + c];
                        ref += metric == VDX_METRIC_L2 ? (a - b) * (a - b) : a * b;
                    }
                    CHECK(fabsf(ref - D[q * k + j]) < 1e-3f);
                }
                /* nothing better than the k-th among all decoded vectors */
                int better = 0;
                for (int64_t i = 0; i < nb; i++) {
                    float ref = 0;
                    for (int64_t c = 0; c < d; c++) {
                        float a = xq[q * d + c], b = dec[i * d + c];
                        ref += metric == VDX_METRIC_L2 ? (a - b) * (a - b) : a * b;
                    }
                    float kth = D[q * k + k - 1];
                    better += metric == VDX_METRIC_L2 ? ref < kth - 1e-3f
                                                      : ref > kth + 1e-3f;
                }
                CHECK(better < k);
            }
            free(dec);
            vdx_index_free(ix);
        }
    }
    free(xt);
}

/* the fast nbits = 8 scan equals the reference bit for bit */
static void test_scan_simd(void) {
    vdx_pq pq;
    for (int64_t M = 1; M <= 17; M += 8) {
        CHECK_OK(vdx_pq_setup(&pq, M * 2, M, 8));
        float *table = malloc(sizeof(float) * M * 256);
        rand_vecs(table, M * 256, 3);
        size_t n = 37;
        uint8_t *codes = malloc(n * (size_t)M);
        for (size_t i = 0; i < n * (size_t)M; i++) codes[i] = (uint8_t)rand();
        float a[37], b[37];
        vdx_pq_scan_scalar(&pq, table, codes, n, a);
        vdx_pq_scan8_x4(table, M, codes, n, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
        vdx_pq_scan(&pq, table, codes, n, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
        free(table);
        free(codes);
    }
}

static void test_bad_args(void) {
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_pq_new(10, 3, 8, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_pq_new(8, 2, 0, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_pq_new(8, 2, 17, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_pq_new(8, 2, 8, VDX_METRIC_L2, &ix));
    float x[80] = {0}; /* 10 vectors */
    float D[1];
    vdx_idx_t I[1];
    CHECK_ERR(vdx_index_add(ix, 1, x), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_search(ix, 1, x, 1, NULL, D, I), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_train(ix, 10, x), VDX_ERR_INVALID_ARGUMENT); /* n < 256 */
    vdx_index_free(ix);
}

/* IVFPQ: recall against exact search, and search equal to brute force on
 * its own reconstructions when all lists are probed */
static void test_ivfpq(void) {
    const int64_t d = 32, nt = 5000, nb = 3000, nq = 20, k = 10;
    float *xt = malloc(sizeof(float) * nt * d);
    rand_vecs(xt, nt * d, 7);
    for (int mi = 0; mi < 2; mi++) {
        vdx_metric metric = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *q = NULL, *ix = NULL;
        CHECK_OK(vdx_index_flat_new(d, metric, &q));
        CHECK_OK(vdx_index_ivfpq_new(q, d, 16, 8, 8, metric, &ix));
        CHECK(vdx_index_is_ivf(ix));
        CHECK_OK(vdx_index_train(ix, nt, xt));
        CHECK_OK(vdx_index_add(ix, nb, xt));
        CHECK_OK(vdx_index_ivf_set_nprobe(ix, 16));
        CHECK_OK(vdx_index_ivf_make_direct_map(ix, 1));
        float *dec = malloc(sizeof(float) * nb * d);
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, nb, dec));
        float *D = malloc(sizeof(float) * nq * k);
        vdx_idx_t *I = malloc(sizeof(vdx_idx_t) * nq * k);
        const float *xq = xt + 4000 * d;
        CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D, I));
        for (int64_t qq = 0; qq < nq; qq++)
            for (int64_t j = 0; j < k; j++) {
                vdx_idx_t id = I[qq * k + j];
                CHECK(id >= 0 && id < nb);
                float ref = 0;
                for (int64_t c = 0; c < d; c++) {
                    float a = xq[qq * d + c], b = dec[id * d + c];
                    ref += metric == VDX_METRIC_L2 ? (a - b) * (a - b) : a * b;
                }
                CHECK(fabsf(ref - D[qq * k + j]) < 1e-2f * (1 + fabsf(ref)));
            }
        free(dec);
        free(D);
        free(I);
        vdx_index_free(ix);
    }
    free(xt);
}

/* The precomputed L2 tables give the distances of the direct tables (up to
 * rounding), are rebuilt when the PQ centroids change, and can be turned
 * off; bad settings are refused. */
static void test_ivfpq_precomputed(void) {
    const int64_t d = 32, nt = 4000, nb = 2000, nq = 30, k = 8;
    float *xt = malloc(sizeof(float) * nt * d);
    rand_vecs(xt, nt * d, 11);
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivfpq_new(q, d, 20, 8, 8, VDX_METRIC_L2, &ix));
    int active = -1;
    CHECK(vdx_index_ivfpq_use_precomputed_table(ix, &active) == 0);
    CHECK(active == 0); /* untrained: no tables yet */
    CHECK_OK(vdx_index_train(ix, nt, xt));
    CHECK(vdx_index_ivfpq_use_precomputed_table(ix, &active) == 0 && active);
    CHECK_OK(vdx_index_add(ix, nb, xt));
    CHECK_OK(vdx_index_ivf_set_nprobe(ix, 5));
    float *D0 = malloc(sizeof(float) * nq * k), *D1 = malloc(sizeof(float) * nq * k);
    vdx_idx_t *I0 = malloc(sizeof(vdx_idx_t) * nq * k),
              *I1 = malloc(sizeof(vdx_idx_t) * nq * k);
    const float *xq = xt + 3000 * d;
    for (int round = 0; round < 2; round++) {
        CHECK_OK(vdx_index_ivfpq_set_use_precomputed_table(ix, 0));
        CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_ivfpq_set_use_precomputed_table(ix, -1));
        CHECK(vdx_index_ivfpq_use_precomputed_table(ix, &active) == -1 && !active);
        CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D1, I1));
        int same = 0;
        for (int64_t i = 0; i < nq * k; i++) {
            CHECK(fabsf(D0[i] - D1[i]) < 1e-3f * (1 + fabsf(D1[i])));
            same += I0[i] == I1[i];
        }
        CHECK(same >= nq * k * 95 / 100); /* ties may swap under rounding */
        /* new centroids (scaled): the tables must follow */
        vdx_pq *pq = vdx_index_pq_quantizer(ix);
        int64_t nc = vdx_pq_d(pq) * 256;
        float *c = malloc(sizeof(float) * nc);
        memcpy(c, vdx_pq_centroids(pq), sizeof(float) * nc);
        for (int64_t i = 0; i < nc; i++) c[i] *= 0.5f;
        CHECK_OK(vdx_index_ivfpq_set_use_precomputed_table(ix, 0));
        CHECK_OK(vdx_pq_set_centroids(pq, c));
        free(c);
    }
    CHECK(vdx_index_ivfpq_set_use_precomputed_table(ix, 2) ==
          VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ivfpq_set_use_precomputed_table(q, 0) ==
          VDX_ERR_INVALID_ARGUMENT);
    free(D0);
    free(D1);
    free(I0);
    free(I1);
    vdx_index_free(ix);
    free(xt);
}

int main(void) {
    RUN(test_packing);
    RUN(test_adc_bruteforce);
    RUN(test_scan_simd);
    RUN(test_bad_args);
    RUN(test_ivfpq);
    RUN(test_ivfpq_precomputed);
    return TEST_SUMMARY();
}
