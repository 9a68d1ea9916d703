/*
 * test_aq.c — the additive quantizers (src/quant/aq.c, rq.c, lsq.c, paq.c)
 * and their indexes (index_aq.c, rcq.c, ivf_aq.c).  References: an
 * independent bit packer, brute force over every code combination (what a
 * full beam must find), sequential nearest entries (what a beam of 1 must
 * find), brute force over the decoded vectors (what every search must
 * equal), least-squares optimality by perturbation, and 1-D clusters with
 * known centres.
 */
#include "test.h"
#include "quant/aq.h"
#include "index/index_aq.h"
#include <time.h>

static void rand_vecs(float *x, int64_t n, unsigned seed) {
    test_rand_fill(x, (size_t)n, seed);
}

static float l2(const float *a, const float *b, int64_t d) {
    float s = 0;
    for (int64_t j = 0; j < d; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}
static float dot(const float *a, const float *b, int64_t d) {
    float s = 0;
    for (int64_t j = 0; j < d; j++) s += a[j] * b[j];
    return s;
}

/* bit strings against a bit-by-bit writer */
static void test_bits(void) {
    uint8_t code[16], ref[16];
    for (int trial = 0; trial < 200; trial++) {
        memset(code, 0, sizeof code);
        memset(ref, 0, sizeof ref);
        uint64_t pos = 0;
        uint32_t vals[8];
        int nb[8];
        srand((unsigned)trial);
        for (int m = 0; m < 3; m++) {
            nb[m] = 1 + rand() % 32;
            vals[m] = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
            if (nb[m] < 32) vals[m] &= (1u << nb[m]) - 1u;
            vdx_bits_put(code, pos, vals[m], nb[m]);
            for (int b = 0; b < nb[m]; b++)
                if (vals[m] >> b & 1) ref[(pos + b) / 8] |= (uint8_t)(1u << ((pos + b) % 8));
            pos += (uint64_t)nb[m];
        }
        CHECK(memcmp(code, ref, sizeof code) == 0);
        pos = 0;
        for (int m = 0; m < 3; m++) {
            CHECK(vdx_bits_get(code, pos, nb[m]) == vals[m]);
            pos += (uint64_t)nb[m];
        }
    }
}

/* codebooks on separate axes: (a, b, 0, 0) is encoded exactly as (a, b) */
static void test_exact_codes(void) {
    const int64_t d = 4;
    float cb[16 * 4] = {0};
    for (int k = 0; k < 8; k++) {
        cb[k * 4 + 0] = (float)k;
        cb[(8 + k) * 4 + 1] = (float)k;
    }
    const int nbits[2] = {3, 3};
    for (int kind = 0; kind < 2; kind++) {
        vdx_aq *aq = NULL;
        if (kind == 0) CHECK_OK(vdx_rq_new(d, 2, nbits, VDX_AQ_ST_NORM_FLOAT, &aq));
        else CHECK_OK(vdx_lsq_new(d, 2, 3, VDX_AQ_ST_NORM_FLOAT, &aq));
        if (!aq) continue;
        CHECK(vdx_aq_code_size(aq) == 5); /* 6 + 32 bits */
        float x[3 * 4] = {3, 5, 0, 0, 7, 0, 0, 0, 1, 6, 0, 0};
        uint8_t c[3 * 5];
        CHECK_ERR(vdx_aq_compute_codes(aq, 3, x, c), VDX_ERR_NOT_TRAINED);
        CHECK_OK(vdx_aq_set_codebooks(aq, cb, 64));
        CHECK_OK(vdx_aq_set_trained(aq, 1));
        CHECK_OK(vdx_aq_compute_codes(aq, 3, x, c));
        CHECK(c[0] == (3 | 5 << 3));
        CHECK(c[5] == 7);
        CHECK(c[10] == (1 | 6 << 3));
        float norm;
        memcpy(&norm, c + 1, 4); /* the 32 norm bits follow the 6 index bits */
        uint32_t u;
        memcpy(&u, &norm, 4);
        uint32_t stored = (uint32_t)(c[0] >> 6) | (uint32_t)c[1] << 2 |
                          (uint32_t)c[2] << 10 | (uint32_t)c[3] << 18 |
                          (uint32_t)c[4] << 26;
        memcpy(&norm, &stored, 4);
        CHECK(norm == 34.0f);
        float y[12];
        CHECK_OK(vdx_aq_decode(aq, 3, c, y));
        CHECK(memcmp(x, y, sizeof x) == 0);
        int32_t un[6];
        CHECK_OK(vdx_aq_unpack_codes(aq, 3, c, un));
        CHECK(un[0] == 3 && un[1] == 5 && un[2] == 7 && un[3] == 0);
        uint8_t c2[15];
        CHECK_OK(vdx_aq_pack_codes(aq, 3, un, 0, NULL, c2));
        CHECK(memcmp(c, c2, sizeof c) == 0);
        un[1] = 8;
        CHECK_ERR(vdx_aq_pack_codes(aq, 3, un, 0, NULL, c2), VDX_ERR_INVALID_ARGUMENT);
        vdx_aq_free(aq);
    }
}

/* the best of all 2^tot_bits combinations for x (brute force) */
static float best_combo(const vdx_aq *aq, const float *x, uint64_t *best) {
    float bd = INFINITY, y[64];
    for (uint64_t c = 0; c < (1ull << aq->tot_bits); c++) {
        vdx_aq_decode_64(aq, c, y);
        float e = l2(x, y, aq->d);
        if (e < bd) {
            bd = e;
            *best = c;
        }
    }
    return bd;
}

/* RQ: a full beam finds the best combination, a beam of 1 the greedy
 * sequence; training beats random codebooks; LUT beam = residual beam */
static void test_rq_beam(void) {
    const int64_t d = 8, n = 2000, nq = 40;
    const int nbits[3] = {3, 3, 3};
    float *x = malloc(sizeof(float) * n * d);
    rand_vecs(x, n * d, 11);
    vdx_aq *rq = NULL;
    CHECK_OK(vdx_rq_new(d, 3, nbits, VDX_AQ_ST_DECOMPRESS, &rq));
    CHECK_OK(vdx_aq_train(rq, n, x));
    vdx_aq_options o;
    CHECK_OK(vdx_aq_get_options(rq, &o));
    CHECK(o.max_beam_size == 5 && o.train_type == 1);
    o.max_beam_size = 512;
    CHECK_OK(vdx_aq_set_options(rq, &o));
    const float *xq = x + 1000 * d;
    uint8_t codes[40 * 2];
    CHECK_OK(vdx_aq_compute_codes(rq, nq, xq, codes));
    float y[8];
    for (int64_t i = 0; i < nq; i++) {
        uint64_t best = 0;
        float e = best_combo(rq, xq + i * d, &best);
        CHECK_OK(vdx_aq_decode(rq, 1, codes + i * 2, y));
        CHECK(l2(xq + i * d, y, d) <= e + 1e-5f);
    }
    /* greedy: each step the nearest entry to the residual */
    o.max_beam_size = 1;
    CHECK_OK(vdx_aq_set_options(rq, &o));
    CHECK_OK(vdx_aq_compute_codes(rq, nq, xq, codes));
    for (int64_t i = 0; i < nq; i++) {
        float r[8];
        memcpy(r, xq + i * d, sizeof r);
        uint32_t want = 0;
        for (int m = 0; m < 3; m++) {
            int bk = 0;
            float bd = INFINITY;
            for (int k = 0; k < 8; k++) {
                float e = l2(r, rq->codebooks + (m * 8 + k) * d, d);
                if (e < bd) bd = e, bk = k;
            }
            for (int64_t j = 0; j < d; j++) r[j] -= rq->codebooks[(m * 8 + bk) * d + j];
            want |= (uint32_t)bk << (3 * m);
        }
        uint32_t got = codes[i * 2] | (uint32_t)codes[i * 2 + 1] << 8;
        CHECK(got == want);
    }
    /* the table-driven beam gives the same codes */
    o.max_beam_size = 5;
    CHECK_OK(vdx_aq_set_options(rq, &o));
    uint8_t c1[40 * 2];
    CHECK_OK(vdx_aq_compute_codes(rq, nq, xq, codes));
    o.use_beam_LUT = 1;
    CHECK_OK(vdx_aq_set_options(rq, &o));
    CHECK_OK(vdx_aq_compute_codes(rq, nq, xq, c1));
    CHECK(memcmp(codes, c1, sizeof c1) == 0);
    /* refine_beam: distances ascending and equal to the residual norms */
    int32_t bc[40 * 5 * 3];
    float bd[40 * 5], br[40 * 5 * 8];
    CHECK_OK(vdx_rq_refine_beam(rq, nq, xq, 5, bc, br, bd));
    for (int64_t i = 0; i < nq * 5; i++) {
        float nr = dot(br + i * d, br + i * d, d);
        CHECK(fabsf(nr - bd[i]) < 1e-4f);
        if (i % 5) CHECK(bd[i] >= bd[i - 1]);
    }
    vdx_aq_free(rq);
    free(x);
}

/* the public beam step against a direct computation */
static void test_beam_step(void) {
    const int64_t d = 5, K = 7, n = 30, beam = 3, m = 2, L = 4;
    float cent[7 * 5], res[30 * 3 * 5];
    int32_t codes[30 * 3 * 2], nc[30 * 4 * 3];
    float nr[30 * 4 * 5], nd[30 * 4];
    rand_vecs(cent, K * d, 3);
    rand_vecs(res, n * beam * d, 4);
    for (int64_t i = 0; i < n * beam * m; i++) codes[i] = (int32_t)(i % 5);
    CHECK_OK(vdx_rq_beam_search_encode_step(d, K, cent, n, beam, res, m, codes,
                                            L, nc, nr, nd, NULL));
    for (int64_t i = 0; i < n; i++) {
        float all[21];
        for (int64_t b = 0; b < beam; b++)
            for (int64_t k = 0; k < K; k++)
                all[b * K + k] = l2(res + (i * beam + b) * d, cent + k * d, d);
        for (int64_t j = 0; j < L; j++) {
            int32_t ls = nc[(i * L + j) * 3 + 2];
            CHECK(ls >= 0 && ls < K);
            /* j-th smallest of all */
            float v = nd[i * L + j];
            int less = 0;
            for (int e = 0; e < 21; e++) less += all[e] < v - 1e-5f;
            CHECK(less == j);
            CHECK(fabsf(dot(nr + (i * L + j) * d, nr + (i * L + j) * d, d) - v) < 1e-4f);
        }
    }
    CHECK_ERR(vdx_rq_beam_search_encode_step(d, K, cent, n, beam, res, m, codes,
                                             22, nc, nr, nd, NULL),
              VDX_ERR_INVALID_ARGUMENT);
}

/* LSQ: ICM step equals a direct sweep; encoding beats random codes;
 * codebook update is least-squares optimal */
static void test_lsq(void) {
    const int64_t d = 6, n = 600, M = 3, K = 16;
    float *x = malloc(sizeof(float) * n * d);
    rand_vecs(x, n * d, 21);
    vdx_aq *lsq = NULL;
    CHECK_OK(vdx_lsq_new(d, M, 4, VDX_AQ_ST_DECOMPRESS, &lsq));
    vdx_aq_options o;
    CHECK_OK(vdx_aq_get_options(lsq, &o));
    o.train_iters = 6;
    CHECK_OK(vdx_aq_set_options(lsq, &o));
    CHECK_OK(vdx_aq_train(lsq, n, x));
    float *bin = malloc(sizeof(float) * M * M * K * K);
    float *un = malloc(sizeof(float) * M * n * K);
    CHECK_OK(vdx_lsq_compute_binary_terms(lsq, bin));
    CHECK_OK(vdx_lsq_compute_unary_terms(lsq, n, x, un));
    const float *cb = lsq->codebooks;
    CHECK(fabsf(bin[((0 * M + 1) * K + 3) * K + 5] - 2 * dot(cb + 3 * d, cb + (K + 5) * d, d)) < 1e-4f);
    CHECK(fabsf(un[(2 * n + 7) * K + 9] - (dot(cb + (2 * K + 9) * d, cb + (2 * K + 9) * d, d) -
                                           2 * dot(x + 7 * d, cb + (2 * K + 9) * d, d))) < 1e-4f);
    int32_t *codes = malloc(sizeof(int32_t) * n * M);
    for (int64_t i = 0; i < n * M; i++) codes[i] = (int32_t)((i * 7) % K);
    int32_t *ref = malloc(sizeof(int32_t) * n * M);
    memcpy(ref, codes, sizeof(int32_t) * n * M);
    CHECK_OK(vdx_lsq_icm_encode_step(lsq, codes, un, bin, n, 1));
    for (int64_t i = 0; i < n; i++) /* one direct sweep */
        for (int64_t m = 0; m < M; m++) {
            float bv = INFINITY;
            int bk = 0;
            for (int k = 0; k < K; k++) {
                ref[i * M + m] = k;
                float y[6];
                CHECK_OK(vdx_aq_decode_unpacked(lsq, 1, ref + i * M, 0, y));
                float e = l2(x + i * d, y, d);
                if (e < bv - 1e-5f) bv = e, bk = k;
            }
            ref[i * M + m] = bk;
        }
    int diff = 0;
    for (int64_t i = 0; i < n * M; i++) diff += ref[i] != codes[i];
    CHECK(diff <= 3); /* near-ties of float sums only */
    /* encoding: better than its random start, not worse than one ICM sweep */
    uint8_t *pc = malloc((size_t)(n * vdx_aq_code_size(lsq)));
    float *y = malloc(sizeof(float) * n * d), *yr = malloc(sizeof(float) * n * d);
    CHECK_OK(vdx_aq_compute_codes(lsq, n, x, pc));
    CHECK_OK(vdx_aq_decode(lsq, n, pc, y));
    CHECK_OK(vdx_aq_decode_unpacked(lsq, n, codes, 0, yr));
    double e1 = 0, e2 = 0;
    for (int64_t i = 0; i < n; i++) {
        e1 += l2(x + i * d, y + i * d, d);
        e2 += l2(x + i * d, yr + i * d, d);
    }
    CHECK(e1 <= e2 * 1.0001);
    /* update_codebooks minimises the error of fixed codes (lambd ~ 0) */
    o.lambd = 1e-6f;
    CHECK_OK(vdx_aq_set_options(lsq, &o));
    CHECK_OK(vdx_aq_unpack_codes(lsq, n, pc, codes));
    CHECK_OK(vdx_lsq_update_codebooks(lsq, x, codes, n));
    CHECK_OK(vdx_aq_decode_unpacked(lsq, n, codes, 0, y));
    double e0 = 0;
    for (int64_t i = 0; i < n; i++) e0 += l2(x + i * d, y + i * d, d);
    CHECK(e0 <= e1 + 1e-3);
    float *save = malloc(sizeof(float) * M * K * d);
    memcpy(save, lsq->codebooks, sizeof(float) * M * K * d);
    for (int t = 0; t < 5; t++) {
        float *p = malloc(sizeof(float) * M * K * d);
        rand_vecs(p, M * K * d, 100 + t);
        for (int64_t i = 0; i < M * K * d; i++) p[i] = save[i] + (p[i] - 0.5f) * 0.01f;
        CHECK_OK(vdx_aq_set_codebooks(lsq, p, (size_t)(M * K * d)));
        CHECK_OK(vdx_aq_decode_unpacked(lsq, n, codes, 0, y));
        double ep = 0;
        for (int64_t i = 0; i < n; i++) ep += l2(x + i * d, y + i * d, d);
        CHECK(ep >= e0 - 1e-3);
        free(p);
    }
    free(save);
    free(pc);
    free(y);
    free(yr);
    free(codes);
    free(ref);
    free(bin);
    free(un);
    vdx_aq_free(lsq);
    free(x);
}

/* product: the code of each split is the sub-quantizer's code of the
 * sub-vector; nsplits = 1 gives the RQ's codes */
static void test_product(void) {
    const int64_t d = 8, n = 1500;
    float *x = malloc(sizeof(float) * n * d);
    rand_vecs(x, n * d, 31);
    vdx_aq *p = NULL;
    CHECK_OK(vdx_product_aq_new(VDX_AQ_PRQ, d, 2, 2, 4, VDX_AQ_ST_DECOMPRESS, &p));
    vdx_aq *bad = NULL;
    CHECK_ERR(vdx_product_aq_new(VDX_AQ_PRQ, 9, 2, 2, 4, 0, &bad), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_aq_train(p, n, x));
    CHECK(vdx_aq_nsplits(p) == 2 && vdx_aq_M(p) == 4 && vdx_aq_code_size(p) == 2);
    uint8_t c[20 * 2], cs[20];
    float xs[20 * 4];
    CHECK_OK(vdx_aq_compute_codes(p, 20, x, c));
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 20; i++) memcpy(xs + i * 4, x + i * d + s * 4, 16);
        CHECK_OK(vdx_aq_compute_codes(vdx_aq_subquantizer(p, s), 20, xs, cs));
        for (int i = 0; i < 20; i++) CHECK(c[i * 2 + s] == cs[i]);
    }
    float y[20 * 8], ys[20 * 4];
    CHECK_OK(vdx_aq_decode(p, 20, c, y));
    for (int i = 0; i < 20; i++) {
        CHECK_OK(vdx_aq_decode(vdx_aq_subquantizer(p, 1), 1, c + i * 2 + 1, ys));
        CHECK(memcmp(ys, y + i * d + 4, 16) == 0);
    }
    /* its table: <x, entry> on the entry's own components */
    float lut[2 * 32];
    CHECK_OK(vdx_aq_compute_LUT(p, 1, x, 1.0f, lut));
    const float *cb = vdx_aq_codebooks(p, NULL);
    CHECK(fabsf(lut[40] - dot(x + 4, cb + 40 * 4, 4)) < 1e-5f);
    vdx_aq_free(p);
    free(x);
}

/* plain k-means steps (the progressive-dim training is tested above) */
static void train_fast(vdx_aq *aq) {
    vdx_aq_options o;
    if (!aq || vdx_aq_get_options(aq, &o)) return;
    o.train_type = VDX_RQ_TRAIN_DEFAULT;
    vdx_aq_set_options(aq, &o);
}

/* brute force over an index's reconstructions: the k best as (key, id) */
static void brute(const float *rec, int64_t nb, const float *q, int64_t d,
                  int ip, int64_t k, float *D, vdx_idx_t *I) {
    for (int64_t j = 0; j < k; j++) D[j] = ip ? -INFINITY : INFINITY, I[j] = -1;
    for (int64_t i = 0; i < nb; i++) {
        float v = ip ? dot(q, rec + i * d, d) : l2(q, rec + i * d, d);
        int64_t j = k;
        while (j > 0 && (ip ? v > D[j - 1] : v < D[j - 1])) j--;
        if (j == k) continue;
        for (int64_t u = k - 1; u > j; u--) D[u] = D[u - 1], I[u] = I[u - 1];
        D[j] = v;
        I[j] = i;
    }
}

static int64_t count_common(const vdx_idx_t *a, const vdx_idx_t *b, int64_t k) {
    int64_t c = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) c += a[i] == b[j];
    return c;
}

/* IndexResidualQuantizer & co: every search type equals brute force on the
 * reconstructions (exactly for the exact norms, within the norm's
 * quantization for the others) */
static void test_index_search(void) {
    const int64_t d = 16, nt = 3000, nb = 2000, nq = 20, k = 10;
    float *x = malloc(sizeof(float) * nt * d);
    rand_vecs(x, nt * d, 41);
    const float *xq = x + 2500 * d;
    const int nbits[4] = {6, 6, 6, 6};
    struct { int st; vdx_metric m; float tol; } cases[] = {
        {VDX_AQ_ST_DECOMPRESS, VDX_METRIC_L2, 1e-4f},
        {VDX_AQ_ST_DECOMPRESS, VDX_METRIC_INNER_PRODUCT, 1e-4f},
        {VDX_AQ_ST_LUT_NONORM, VDX_METRIC_INNER_PRODUCT, 1e-4f},
        {VDX_AQ_ST_NORM_FLOAT, VDX_METRIC_L2, 1e-4f},
        {VDX_AQ_ST_NORM_FROM_LUT, VDX_METRIC_L2, 1e-3f},
        {VDX_AQ_ST_NORM_QINT8, VDX_METRIC_L2, -1},
        {VDX_AQ_ST_NORM_CQINT8, VDX_METRIC_L2, -1},
        {VDX_AQ_ST_NORM_QINT4, VDX_METRIC_L2, -1},
        {VDX_AQ_ST_NORM_CQINT4, VDX_METRIC_L2, -1},
        {VDX_AQ_ST_NORM_RQ2X4, VDX_METRIC_L2, -1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vdx_aq *aq = NULL;
        vdx_index *ix = NULL;
        CHECK_OK(vdx_rq_new(d, 4, nbits, cases[c].st, &aq));
        train_fast(aq);
        CHECK_OK(vdx_index_aq_new(aq, cases[c].m, &ix));
        if (!ix) continue;
        CHECK(strcmp(vdx_index_type_name(ix), "IndexResidualQuantizer") == 0);
        CHECK_OK(vdx_index_train(ix, nt, x));
        CHECK_OK(vdx_index_add(ix, nb, x));
        float *rec = malloc(sizeof(float) * nb * d);
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, nb, rec));
        float D[200], Dr[10];
        vdx_idx_t I[200], Ir[10];
        CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D, I));
        int ip = cases[c].m == VDX_METRIC_INNER_PRODUCT;
        int64_t common = 0;
        for (int64_t q = 0; q < nq; q++) {
            brute(rec, nb, xq + q * d, d, ip, k, Dr, Ir);
            common += count_common(I + q * k, Ir, k);
            if (cases[c].tol > 0)
                for (int64_t j = 0; j < k; j++)
                    CHECK(fabsf(D[q * k + j] - Dr[j]) < cases[c].tol * (1 + fabsf(Dr[j])));
            for (int64_t j = 1; j < k; j++)
                CHECK(ip ? D[q * k + j] <= D[q * k + j - 1] : D[q * k + j] >= D[q * k + j - 1]);
        }
        /* exact norms: the same neighbours up to ties; quantized: most */
        CHECK(common >= (cases[c].tol > 0 ? nq * k - 2 : nq * k * 6 / 10));
        /* one query per thread-split path and a selector */
        float D1[10];
        vdx_idx_t I1[10];
        CHECK_OK(vdx_index_search(ix, 1, xq, k, NULL, D1, I1));
        CHECK(memcmp(I1, I, sizeof I1) == 0);
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_range(0, 100, &sel));
        vdx_search_params sp;
        vdx_search_params_init(&sp);
        sp.sel = sel;
        CHECK_OK(vdx_index_search(ix, 1, xq, k, &sp, D1, I1));
        for (int j = 0; j < k; j++) CHECK(I1[j] >= 0 && I1[j] < 100);
        vdx_selector_free(sel);
        /* range search: the same distances as brute force decides */
        if (cases[c].tol > 0 && !ip) {
            vdx_range_result *rr = NULL;
            float radius = D[k / 2];
            CHECK_OK(vdx_index_range_search(ix, 1, xq, radius, NULL, &rr));
            if (rr) {
                int64_t want = 0;
                for (int64_t i = 0; i < nb; i++) want += l2(xq, rec + i * d, d) < radius;
                CHECK(llabs(rr->lims[1] - want) <= 1);
            }
            vdx_range_result_free(rr);
        }
        free(rec);
        vdx_index_free(ix);
    }
    free(x);
}

/* the flat LSQ / product kinds: names, search equals brute force */
static void test_index_kinds(void) {
    const int64_t d = 8, nt = 1200, nb = 500, k = 5;
    float *x = malloc(sizeof(float) * nt * d);
    rand_vecs(x, nt * d, 51);
    const char *names[4] = {"IndexResidualQuantizer", "IndexLocalSearchQuantizer",
                            "IndexProductResidualQuantizer",
                            "IndexProductLocalSearchQuantizer"};
    for (int kind = 0; kind < 4; kind++) {
        vdx_aq *aq = NULL;
        const int nb4[2] = {4, 4};
        if (kind == 0) CHECK_OK(vdx_rq_new(d, 2, nb4, 0, &aq));
        if (kind == 1) CHECK_OK(vdx_lsq_new(d, 2, 4, 0, &aq));
        if (kind >= 2) CHECK_OK(vdx_product_aq_new(kind, d, 2, 1, 4, 0, &aq));
        if (kind % 2) {
            vdx_aq_options o;
            vdx_aq_get_options(kind == 1 ? aq : vdx_aq_subquantizer(aq, 0), &o);
            o.train_iters = 4;
            vdx_aq_set_options(kind == 1 ? aq : vdx_aq_subquantizer(aq, 0), &o);
            if (kind == 3) vdx_aq_set_options(vdx_aq_subquantizer(aq, 1), &o);
        }
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_aq_new(aq, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK(strcmp(vdx_index_type_name(ix), names[kind]) == 0);
        CHECK(vdx_index_aq(ix) == aq);
        CHECK_OK(vdx_index_train(ix, nt, x));
        CHECK_OK(vdx_index_add(ix, nb, x));
        float *rec = malloc(sizeof(float) * nb * d);
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, nb, rec));
        float D[5], Dr[5];
        vdx_idx_t I[5], Ir[5];
        CHECK_OK(vdx_index_search(ix, 1, x + 1100 * d, k, NULL, D, I));
        brute(rec, nb, x + 1100 * d, d, 0, k, Dr, Ir);
        CHECK(fabsf(D[0] - Dr[0]) < 1e-4f && fabsf(D[k - 1] - Dr[k - 1]) < 1e-4f);
        /* sa_encode / sa_decode are the stored codes */
        uint8_t c[16];
        float y[8];
        CHECK_OK(vdx_index_aq_sa_encode(ix, 1, x, c));
        CHECK(memcmp(c, vdx_index_aq_codes(ix), vdx_aq_code_size(aq)) == 0);
        CHECK_OK(vdx_index_aq_sa_decode(ix, 1, c, y));
        CHECK(memcmp(y, rec, sizeof y) == 0);
        /* removal renumbers */
        vdx_selector *sel = NULL;
        int64_t nr = 0;
        CHECK_OK(vdx_selector_range(0, 10, &sel));
        CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
        CHECK(nr == 10 && vdx_index_ntotal(ix) == nb - 10);
        CHECK_OK(vdx_index_reconstruct(ix, 0, y));
        CHECK(memcmp(y, rec + 10 * d, sizeof y) == 0);
        vdx_selector_free(sel);
        free(rec);
        vdx_index_free(ix);
    }
    free(x);
}

/* ResidualCoarseQuantizer: list c is the reconstruction of the bits of c;
 * a wide beam finds the exhaustive answer; knn_centroids is brute force */
static void test_rcq(void) {
    const int64_t d = 8, nt = 2000, nq = 20, k = 8;
    float *x = malloc(sizeof(float) * nt * d);
    rand_vecs(x, nt * d, 61);
    const int nbits[2] = {4, 3};
    vdx_aq *rq = NULL;
    vdx_index *q = NULL;
    CHECK_OK(vdx_rq_new(d, 2, nbits, 0, &rq));
    CHECK_OK(vdx_index_additive_coarse_new(rq, VDX_METRIC_L2, &q));
    if (!q) return;
    CHECK(strcmp(vdx_index_type_name(q), "ResidualCoarseQuantizer") == 0);
    CHECK_OK(vdx_index_train(q, nt, x));
    CHECK(vdx_index_ntotal(q) == 128);
    float *cent = malloc(sizeof(float) * 128 * d);
    CHECK_OK(vdx_index_reconstruct_n(q, 0, 128, cent));
    float y[8];
    vdx_aq_decode_64(rq, 5 | 3 << 4, y);
    CHECK(memcmp(y, cent + (5 | 3 << 4) * d, sizeof y) == 0);
    float D[160], De[160], Dr[8];
    vdx_idx_t I[160], Ie[160], Ir[8];
    CHECK(vdx_index_rcq_beam_factor(q) == 4.0f);
    CHECK_OK(vdx_index_rcq_set_beam_factor(q, 16.0f)); /* beam 128: all */
    CHECK_OK(vdx_index_search(q, nq, x, k, NULL, D, I));
    CHECK_OK(vdx_index_rcq_set_beam_factor(q, -1.0f));
    CHECK_OK(vdx_index_search(q, nq, x, k, NULL, De, Ie));
    CHECK_ERR(vdx_index_rcq_set_beam_factor(q, 0.5f), VDX_ERR_INVALID_ARGUMENT);
    for (int64_t i = 0; i < nq; i++) {
        brute(cent, 128, x + i * d, d, 0, k, Dr, Ir);
        CHECK(count_common(Ie + i * k, Ir, k) >= k - 1);
        CHECK(count_common(I + i * k, Ir, k) >= k - 1);
        CHECK(fabsf(De[i * k] - Dr[0]) < 1e-4f && fabsf(D[i * k] - Dr[0]) < 1e-4f);
    }
    /* per-call beam factor: a narrow beam is never better */
    vdx_search_params sp;
    vdx_search_params_init(&sp);
    sp.beam_factor = 1.0f;
    CHECK_OK(vdx_index_search(q, nq, x, k, &sp, D, I));
    for (int64_t i = 0; i < nq; i++) CHECK(D[i * k] >= De[i * k] - 1e-5f);
    /* inner-product knn over the centroids */
    CHECK_OK(vdx_aq_knn_centroids(rq, VDX_METRIC_INNER_PRODUCT, 1, x, k, NULL, D, I));
    brute(cent, 128, x, d, 1, k, Dr, Ir);
    CHECK(I[0] == Ir[0] && fabsf(D[0] - Dr[0]) < 1e-4f);
    CHECK_ERR(vdx_index_add(q, 1, x), VDX_ERR_UNSUPPORTED);
    /* as an IVF quantizer: it trains alone */
    vdx_index *ivf = NULL;
    CHECK_OK(vdx_index_ivf_flat_new(q, d, 128, VDX_METRIC_L2, &ivf));
    CHECK_OK(vdx_index_train(ivf, nt, x));
    CHECK_OK(vdx_index_add(ivf, 1000, x));
    CHECK_OK(vdx_index_ivf_set_nprobe(ivf, 128));
    CHECK_OK(vdx_index_search(ivf, 1, x + 1500 * d, k, NULL, D, I));
    brute(x, 1000, x + 1500 * d, d, 0, k, Dr, Ir);
    CHECK(count_common(I, Ir, k) == k);
    vdx_index_free(ivf);
    free(cent);
    free(x);
}

/* IVF over additive codes: all lists probed = brute force over its
 * reconstructions; with and without residuals; L2 and IP */
static void test_ivf_aq(void) {
    const int64_t d = 16, nt = 3000, nb = 1500, nq = 10, k = 10;
    float *x = malloc(sizeof(float) * nt * d);
    rand_vecs(x, nt * d, 71);
    const int nbits[3] = {5, 5, 5};
    for (int c = 0; c < 6; c++) {
        int by_res = c % 2;
        vdx_metric mt = c >= 4 ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        int st = c >= 4 ? VDX_AQ_ST_LUT_NONORM : c >= 2 ? VDX_AQ_ST_NORM_FLOAT : 0;
        vdx_aq *aq = NULL;
        vdx_index *q = NULL, *ix = NULL;
        CHECK_OK(vdx_rq_new(d, 3, nbits, st, &aq));
        train_fast(aq);
        CHECK_OK(vdx_index_flat_new(d, mt, &q));
        CHECK_OK(vdx_index_ivf_aq_new(q, 16, aq, mt, &ix));
        if (!ix) continue;
        CHECK(strcmp(vdx_index_type_name(ix), "IndexIVFResidualQuantizer") == 0);
        CHECK(vdx_index_ivf_aq_by_residual(ix) == 1);
        CHECK_OK(vdx_index_ivf_aq_set_by_residual(ix, by_res));
        CHECK_OK(vdx_index_train(ix, nt, x));
        CHECK_OK(vdx_index_add(ix, nb, x));
        CHECK_ERR(vdx_index_ivf_aq_set_by_residual(ix, !by_res), VDX_ERR_INVALID_ARGUMENT);
        CHECK_OK(vdx_index_ivf_make_direct_map(ix, 1));
        float *rec = malloc(sizeof(float) * nb * d);
        for (int64_t i = 0; i < nb; i++) CHECK_OK(vdx_index_reconstruct(ix, i, rec + i * d));
        CHECK_OK(vdx_index_ivf_set_nprobe(ix, 16));
        float D[100], Dr[10];
        vdx_idx_t I[100], Ir[10];
        CHECK_OK(vdx_index_search(ix, nq, x + 2000 * d, k, NULL, D, I));
        int64_t common = 0;
        for (int64_t i = 0; i < nq; i++) {
            brute(rec, nb, x + (2000 + i) * d, d, mt == VDX_METRIC_INNER_PRODUCT, k, Dr, Ir);
            common += count_common(I + i * k, Ir, k);
            CHECK(fabsf(D[i * k] - Dr[0]) < 1e-3f * (1 + fabsf(Dr[0])));
        }
        CHECK(common >= nq * k - 2);
        free(rec);
        vdx_index_free(ix);
    }
    free(x);
}

/* cqint norms: the 1-D k-means finds 16 separated clusters exactly */
static void test_norm_clusters(void) {
    vdx_aq *aq = NULL;
    const int nb[1] = {2};
    CHECK_OK(vdx_rq_new(2, 1, nb, VDX_AQ_ST_NORM_CQINT4, &aq));
    if (!aq) return;
    float norms[64];
    for (int i = 0; i < 64; i++) norms[i] = (float)(i % 16) * 10.0f + (i / 16) * 0.5f;
    CHECK_OK(vdx_aq_train_norm(aq, 64, norms));
    CHECK(aq->nqnorm == 16);
    for (int c = 0; c < 16; c++) CHECK(fabsf(aq->qnorm[c] - (c * 10.0f + 0.75f)) < 1e-4f);
    CHECK(vdx_aq_encode_norm(aq, 31.0f) == 3);
    CHECK(vdx_aq_decode_norm(aq, 3) == aq->qnorm[3]);
    CHECK(aq->norm_min == 0.0f && aq->norm_max == 151.5f);
    /* qint8 cells */
    aq->search_type = VDX_AQ_ST_NORM_QINT8;
    aq->norm_min = 0;
    aq->norm_max = 256;
    CHECK(vdx_aq_encode_norm(aq, 10.2f) == 10);
    CHECK(vdx_aq_encode_norm(aq, -5) == 0 && vdx_aq_encode_norm(aq, 999) == 255);
    CHECK(vdx_aq_decode_norm(aq, 10) == 10.5f);
    vdx_aq_free(aq);
}

static void test_bad_args(void) {
    vdx_aq *aq = NULL;
    const int nb[2] = {8, 17};
    CHECK_ERR(vdx_rq_new(8, 2, nb, 0, &aq), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_rq_new(0, 1, nb, 0, &aq), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_rq_new(8, 1, nb, 10, &aq), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_lsq_new(8, 0, 4, 0, &aq), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_rq_new(8, 1, nb, 0, &aq));
    float x[8 * 10];
    rand_vecs(x, 80, 1);
    CHECK_ERR(vdx_aq_train(aq, 10, x), VDX_ERR_INVALID_ARGUMENT); /* n < 256 */
    x[3] = NAN;
    CHECK_ERR(vdx_aq_train(aq, 10, x), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_aq_set_codebooks(aq, x, 7), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_aq_set_trained(aq, 1), VDX_ERR_INVALID_ARGUMENT);
    vdx_aq_options o;
    CHECK_OK(vdx_aq_get_options(aq, &o));
    o.max_beam_size = 0;
    CHECK_ERR(vdx_aq_set_options(aq, &o), VDX_ERR_INVALID_ARGUMENT);
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_aq_new(aq, (vdx_metric)7, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_aq_new(aq, VDX_METRIC_L2, &ix));
    vdx_index *ix2 = NULL;
    CHECK_ERR(vdx_index_aq_new(aq, VDX_METRIC_L2, &ix2), VDX_ERR_INVALID_ARGUMENT);
    vdx_aq_free(aq); /* borrowed by the index: a no-op */
    CHECK_ERR(vdx_index_add(ix, 1, x + 8), VDX_ERR_NOT_TRAINED);
    vdx_index_free(ix);
}

int main(void) {
    RUN(test_bits);
    RUN(test_exact_codes);
    RUN(test_rq_beam);
    RUN(test_beam_step);
    RUN(test_lsq);
    RUN(test_product);
    RUN(test_index_search);
    RUN(test_index_kinds);
    RUN(test_rcq);
    RUN(test_ivf_aq);
    RUN(test_norm_clusters);
    RUN(test_bad_args);
    return TEST_SUMMARY();
}
