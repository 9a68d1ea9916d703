/*
 * test_sq.c — the scalar quantizer and its indexes: the AVX2 kernels against
 * the scalar reference for many d, encode/decode error bounds per qtype,
 * scoring on codes against distances to the decoded vectors, and recall of
 * IndexScalarQuantizer / IndexIVFScalarQuantizer against brute force.
 */
#include "test.h"
#include "quant/sq.h"

static const int all_qtypes[] = {VDX_SQ_8BIT,         VDX_SQ_4BIT,
                                 VDX_SQ_8BIT_UNIFORM, VDX_SQ_4BIT_UNIFORM,
                                 VDX_SQ_FP16,         VDX_SQ_8BIT_DIRECT,
                                 VDX_SQ_6BIT,         VDX_SQ_BF16};
#define NQT 8

static int close_rel(float a, float b, float tol) {
    return fabsf(a - b) <= tol * (1.0f + fabsf(a) + fabsf(b));
}

static void test_kernels_vs_scalar(void) {
    const vdx_sq_kernels *R = vdx_sq_kernels_level("scalar");
    const vdx_sq_kernels *A = vdx_sq_kernels_level("avx2");
    CHECK(R != NULL);
    if (!A) {
        printf("  (no AVX2 on this machine: kernel comparison skipped)\n");
        return;
    }
    for (size_t d = 1; d <= 150; d += (d < 40 ? 1 : 13)) {
        float *q = malloc(d * sizeof(float)), *b = malloc(d * sizeof(float));
        uint8_t *c = malloc(2 * d);
        test_rand_fill(q, d, d);
        test_rand_fill(b, d, d + 1000);
        for (size_t i = 0; i < 2 * d; i++) c[i] = (uint8_t)(i * 37 + d);
        /* keep the 16-bit codes finite: clear the top exponent bits */
        uint8_t *h = malloc(2 * d);
        for (size_t i = 0; i < d; i++) {
            h[2 * i] = c[2 * i];
            h[2 * i + 1] = (uint8_t)(c[2 * i + 1] & 0x3b);
        }
        CHECK(close_rel(A->l2_u8(q, b, c, d), R->l2_u8(q, b, c, d), 1e-5f));
        CHECK(close_rel(A->ip_u8(q, c, d), R->ip_u8(q, c, d), 1e-5f));
        CHECK(close_rel(A->l2_f16(q, h, d), R->l2_f16(q, h, d), 1e-5f));
        CHECK(close_rel(A->ip_f16(q, h, d), R->ip_f16(q, h, d), 1e-5f));
        CHECK(close_rel(A->l2_bf16(q, h, d), R->l2_bf16(q, h, d), 1e-5f));
        CHECK(close_rel(A->ip_bf16(q, h, d), R->ip_bf16(q, h, d), 1e-5f));
        CHECK(close_rel(A->l2_u4(q, b, c, d), R->l2_u4(q, b, c, d), 1e-5f));
        CHECK(close_rel(A->ip_u4(q, c, d), R->ip_u4(q, c, d), 1e-5f));
        free(q);
        free(b);
        free(c);
        free(h);
    }
}

/* The encoders of every level equal the scalar ones bit for bit, on random
 * values and on the special ones: fp16 and bf16 ties, subnormals, values
 * past the fp16 range, infinities, NaNs, signed zeros; 8-bit codes with
 * values outside the trained range and a zero-width dimension. */
static void test_encoders_vs_scalar(void) {
    const vdx_sq_kernels *R = vdx_sq_kernels_level("scalar");
    const vdx_sq_kernels *A = vdx_sq_kernels_level("avx2");
    if (!A) {
        printf("  (no AVX2 on this machine: encoder comparison skipped)\n");
        return;
    }
    static const uint32_t special[] = {
        0x00000000u, 0x80000000u, 0x3f801000u, 0x3f803000u, 0xbf801000u, /* fp16 ties */
        0x3f808000u, 0x3f818000u, 0xc00e8000u, /* bf16 ties (-2.2265625) */
        0x33000000u, 0x33000001u, 0xb3800000u, 0x387fe000u, 0x38800000u,
        0x00000001u, 0x807fffffu, /* subnormals of both formats */
        0x477ff000u, 0x477fefffu, 0x47800000u, 0xc7ffffffu, 0x7f7fffffu,
        0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffffffffu};
    const size_t ns = sizeof special / sizeof special[0];
    uint64_t st = 12345;
    for (size_t d = 1; d <= 70; d++) {
        float *x = malloc(d * sizeof(float)), *vmin = malloc(d * sizeof(float)),
              *vdiff = malloc(d * sizeof(float));
        uint8_t *c1 = malloc(2 * d), *c2 = malloc(2 * d);
        for (int rep = 0; rep < 40; rep++) {
            for (size_t i = 0; i < d; i++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t r = (uint32_t)(st >> 32);
                if (rep % 4 == 0) memcpy(x + i, &special[r % ns], 4);
                else if (rep % 4 == 1) memcpy(x + i, &r, 4); /* any bits */
                else x[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 3.0f;
                vmin[i] = -1.0f + (float)(i % 3) * 0.1f;
                vdiff[i] = i % 7 == 3 ? 0.0f : 2.0f;
            }
            int okf = 1, okb = 1, oku = 1;
            R->enc_f16(x, c1, d);
            A->enc_f16(x, c2, d);
            okf = !memcmp(c1, c2, 2 * d);
            R->enc_bf16(x, c1, d);
            A->enc_bf16(x, c2, d);
            okb = !memcmp(c1, c2, 2 * d);
            if (rep % 4 != 1) { /* NaN-free: the 8-bit path's inputs are checked */
                R->enc_u8(x, vmin, vdiff, c1, d);
                A->enc_u8(x, vmin, vdiff, c2, d);
                oku = !memcmp(c1, c2, d);
            }
            CHECK(okf);
            CHECK(okb);
            CHECK(oku);
            if (!okf || !okb || !oku) break;
        }
        free(x);
        free(vmin);
        free(vdiff);
        free(c1);
        free(c2);
    }
    /* the tie that made faiss's builds disagree stays nearest-even */
    float t = -2.2265625f;
    uint8_t c[2];
    A->enc_bf16(&t, c, 1);
    CHECK((c[0] | c[1] << 8) == 0xc00e);
}

static void test_fp16_conversion(void) {
    /* exact values survive; FAISS rounds ties away from zero */
    CHECK(vdx_fp16_from_float(1.0f) == 0x3c00);
    CHECK(vdx_fp16_from_float(-2.0f) == 0xc000);
    CHECK(vdx_fp16_from_float(0.0f) == 0);
    CHECK(vdx_fp16_from_float(1e6f) == 0x7c00);
    CHECK(vdx_fp16_to_float(0x3c00) == 1.0f);
    CHECK(vdx_fp16_to_float(0x0001) == 5.9604645e-08f);
    /* 1 + 2^-11 is a tie between 1 and 1 + 2^-10 */
    CHECK(vdx_fp16_from_float(1.0f + 1.0f / 2048) == 0x3c01);
    for (uint32_t h = 0; h < 0x7c00; h += 7)
        CHECK(vdx_fp16_from_float(vdx_fp16_to_float((uint16_t)h)) == h);
}

/* Per-qtype bound on |x - decode(encode(x))| for data in [0, 1). */
static float err_bound(int qt) {
    switch (qt) {
    case VDX_SQ_8BIT: case VDX_SQ_8BIT_UNIFORM: return 1.0f / 255;
    case VDX_SQ_4BIT: case VDX_SQ_4BIT_UNIFORM: return 1.0f / 15;
    case VDX_SQ_6BIT: return 1.0f / 63;
    case VDX_SQ_FP16: return 1.0f / 1024;
    case VDX_SQ_BF16: return 1.0f / 128;
    default: return 1.0f; /* direct: truncation of x in [0, 255) */
    }
}

static void test_encode_decode_bounds(void) {
    const int64_t n = 200;
    for (int t = 0; t < NQT; t++) {
        int qt = all_qtypes[t];
        for (int64_t d = 1; d <= 37; d += 4) {
            float *x = malloc((size_t)(n * d) * sizeof(float));
            float *y = malloc((size_t)(n * d) * sizeof(float));
            test_rand_fill(x, (size_t)(n * d), (uint64_t)(qt * 100 + d));
            if (qt == VDX_SQ_8BIT_DIRECT)
                for (int64_t i = 0; i < n * d; i++) x[i] *= 255;
            vdx_sq *sq = NULL;
            CHECK_OK(vdx_sq_new(d, qt, &sq));
            uint8_t *c = malloc((size_t)n * vdx_sq_code_size(sq));
            if (!vdx_sq_is_trained(sq))
                CHECK_ERR(vdx_sq_compute_codes(sq, n, x, c), VDX_ERR_NOT_TRAINED);
            CHECK_OK(vdx_sq_train(sq, n, x));
            CHECK_OK(vdx_sq_compute_codes(sq, n, x, c));
            CHECK_OK(vdx_sq_decode(sq, n, c, y));
            float worst = 0;
            for (int64_t i = 0; i < n * d; i++)
                worst = fmaxf(worst, fabsf(x[i] - y[i]));
            CHECK(worst <= err_bound(qt) * 1.0001f);
            /* scoring on codes equals the distance to the decoded vectors */
            const vdx_sq_kernels *K = vdx_sq_kernels_get();
            float *scratch = malloc((size_t)d * sizeof(float));
            for (int ip = 0; ip < 2; ip++) {
                vdx_sq_query qq;
                vdx_sq_query_init(sq, ip, x, scratch, &qq);
                for (int64_t i = 0; i < 10; i++) {
                    float key, ref = 0;
                    vdx_sq_score(sq, K, ip, &qq, c + (size_t)i * sq->code_size, 1,
                                 &key);
                    for (int64_t j = 0; j < d; j++) {
                        float yv = y[i * d + j];
                        ref += ip ? x[j] * yv : (x[j] - yv) * (x[j] - yv);
                    }
                    CHECK(close_rel(ip ? -key : key, ref, 1e-4f));
                }
            }
            free(scratch);
            free(c);
            free(x);
            free(y);
            vdx_sq_free(sq);
        }
    }
}

static void test_bad_args(void) {
    vdx_sq *sq = NULL;
    CHECK_ERR(vdx_sq_new(4, 9, &sq), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_sq_new(0, VDX_SQ_8BIT, &sq), VDX_ERR_INVALID_ARGUMENT);
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_sq_new(4, -1, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_sq_new(4, VDX_SQ_8BIT, VDX_METRIC_L2, &ix));
    float x[8] = {0};
    float D[1];
    vdx_idx_t I[1];
    CHECK(!vdx_index_is_trained(ix));
    CHECK_ERR(vdx_index_add(ix, 2, x), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_search(ix, 1, x, 1, NULL, D, I), VDX_ERR_NOT_TRAINED);
    CHECK(!vdx_index_is_ivf(ix));
    vdx_index_free(ix);
    vdx_index *q = NULL;
    CHECK_OK(vdx_index_flat_new(4, VDX_METRIC_L2, &q));
    CHECK_ERR(vdx_index_ivf_sq_new(q, 4, 2, 99, VDX_METRIC_L2, 1, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_ivf_sq_new(q, 4, 2, VDX_SQ_8BIT, VDX_METRIC_L2, 1, &ix));
    CHECK(vdx_index_is_ivf(ix));
    CHECK(vdx_index_ivf_sq_by_residual(ix) == 1);
    CHECK(vdx_index_sq_quantizer(ix) != NULL);
    vdx_index_free(ix);
}

/* recall@1 of an index against exact L2 search on the same data */
static double recall_at_1(vdx_index *ix, int64_t d, int64_t nb, const float *xb,
                          int64_t nq, const float *xq) {
    vdx_index *ref = NULL;
    CHECK_OK(vdx_index_flat_new(d, vdx_index_metric(ix), &ref));
    CHECK_OK(vdx_index_add(ref, nb, xb));
    float *D = malloc((size_t)nq * sizeof(float));
    vdx_idx_t *I = malloc((size_t)nq * sizeof(vdx_idx_t));
    vdx_idx_t *Ir = malloc((size_t)nq * sizeof(vdx_idx_t));
    CHECK_OK(vdx_index_search(ix, nq, xq, 1, NULL, D, I));
    CHECK_OK(vdx_index_search(ref, nq, xq, 1, NULL, D, Ir));
    int64_t hit = 0;
    for (int64_t i = 0; i < nq; i++) hit += I[i] == Ir[i];
    free(D);
    free(I);
    free(Ir);
    vdx_index_free(ref);
    return (double)hit / (double)nq;
}

static void test_recall(void) {
    const int64_t d = 32, nb = 5000, nq = 100;
    float *xb = malloc((size_t)(nb * d) * sizeof(float));
    float *xq = malloc((size_t)(nq * d) * sizeof(float));
    test_rand_fill(xb, (size_t)(nb * d), 1);
    test_rand_fill(xq, (size_t)(nq * d), 2);
    const struct { int qt; double min; } cases[] = {
        {VDX_SQ_8BIT, 0.9}, {VDX_SQ_FP16, 0.99}, {VDX_SQ_BF16, 0.9},
        {VDX_SQ_6BIT, 0.8}, {VDX_SQ_4BIT, 0.4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int m = 0; m < 2; m++) {
            vdx_metric metric = m ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
            vdx_index *ix = NULL;
            CHECK_OK(vdx_index_sq_new(d, cases[c].qt, metric, &ix));
            CHECK_OK(vdx_index_train(ix, nb, xb));
            CHECK_OK(vdx_index_add(ix, nb, xb));
            double r = recall_at_1(ix, d, nb, xb, nq, xq);
            if (r < cases[c].min)
                fprintf(stderr, "  qtype %d metric %d recall %.3f\n",
                        cases[c].qt, (int)metric, r);
            CHECK(r >= cases[c].min);
            vdx_index_free(ix);
            /* IVF-SQ probing every list finds what the flat SQ finds */
            vdx_index *q = NULL, *iv = NULL;
            CHECK_OK(vdx_index_flat_new(d, metric, &q));
            CHECK_OK(vdx_index_ivf_sq_new(q, d, 16, cases[c].qt, metric, 1, &iv));
            CHECK_OK(vdx_index_train(iv, nb, xb));
            CHECK_OK(vdx_index_add(iv, nb, xb));
            CHECK_OK(vdx_index_ivf_set_nprobe(iv, 16));
            r = recall_at_1(iv, d, nb, xb, nq, xq);
            CHECK(r >= cases[c].min);
            vdx_index_free(iv);
        }
    }
    free(xb);
    free(xq);
}

int main(void) {
    RUN(test_kernels_vs_scalar);
    RUN(test_encoders_vs_scalar);
    RUN(test_fp16_conversion);
    RUN(test_encode_decode_bounds);
    RUN(test_bad_args);
    RUN(test_recall);
    return TEST_SUMMARY();
}
