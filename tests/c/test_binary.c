/*
 * test_binary.c — the Hamming kernels and the exact binary k-NN / range
 * search (src/index/binary/hamming.c) against a bit-by-bit brute force
 * written here, at every SIMD level the machine has, for many code sizes
 * (tails of the word and vector loops included).
 */
#include "test.h"

static uint64_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* the reference: one bit at a time */
static int32_t ham_ref(const uint8_t *a, const uint8_t *b, size_t cs) {
    int32_t n = 0;
    for (size_t i = 0; i < cs; i++)
        for (int bit = 0; bit < 8; bit++)
            n += ((a[i] >> bit) & 1) != ((b[i] >> bit) & 1);
    return n;
}

static const char *levels[] = {"scalar", "avx2", "avx512"};
static const size_t sizes[] = {1, 3, 4, 8, 12, 16, 24, 31, 32, 40, 64, 65, 100, 128, 257};

static void fill(uint8_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)rnd();
}

static void test_distances_all_levels(void) {
    size_t nq = 5, nb = 37;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t cs = sizes[si];
        uint8_t *xq = malloc(nq * cs), *xb = malloc(nb * cs);
        int32_t *out = malloc(nq * nb * sizeof *out);
        fill(xq, nq * cs);
        fill(xb, nb * cs);
        for (int l = 0; l < 3; l++) {
            if (!vdx_simd_level_available(levels[l])) continue;
            CHECK_OK(vdx_set_simd_level(levels[l]));
            CHECK_OK(vdx_hamming_distances(xq, (int64_t)nq, xb, (int64_t)nb, cs, out));
            for (size_t i = 0; i < nq; i++)
                for (size_t j = 0; j < nb; j++)
                    if (out[i * nb + j] != ham_ref(xq + i * cs, xb + j * cs, cs)) {
                        fprintf(stderr, "  level %s cs %zu (%zu,%zu)\n", levels[l], cs, i, j);
                        CHECK(0);
                        goto next;
                    }
        next:;
        }
        CHECK_OK(vdx_set_simd_level(NULL));
        free(xq);
        free(xb);
        free(out);
    }
}

/* k-NN: sorted by (distance, position) — codes of few bits make many ties */
static void test_knn_vs_brute(void) {
    size_t nq = 7, nb = 3000, k = 50;
    size_t css[] = {1, 8, 16, 32, 33};
    for (size_t c = 0; c < sizeof css / sizeof *css; c++) {
        size_t cs = css[c];
        uint8_t *xq = malloc(nq * cs), *xb = malloc(nb * cs);
        int32_t *D = malloc(nq * k * sizeof *D);
        int64_t *I = malloc(nq * k * sizeof *I);
        int32_t *all = malloc(nb * sizeof *all);
        fill(xq, nq * cs);
        fill(xb, nb * cs);
        for (int l = 0; l < 3; l++) {
            if (!vdx_simd_level_available(levels[l])) continue;
            CHECK_OK(vdx_set_simd_level(levels[l]));
            CHECK_OK(vdx_hamming_knn(xq, (int64_t)nq, xb, (int64_t)nb, cs, NULL, (int64_t)k, D, I));
            for (size_t i = 0; i < nq; i++) {
                for (size_t j = 0; j < nb; j++) all[j] = ham_ref(xq + i * cs, xb + j * cs, cs);
                /* the expected list: scan distances 0.. in order, ids ascending */
                size_t got = 0;
                for (int32_t dist = 0; dist <= (int32_t)(8 * cs) && got < k; dist++)
                    for (size_t j = 0; j < nb && got < k; j++)
                        if (all[j] == dist) {
                            CHECK(D[i * k + got] == dist);
                            CHECK(I[i * k + got] == (int64_t)j);
                            got++;
                        }
                CHECK(got == k);
            }
        }
        CHECK_OK(vdx_set_simd_level(NULL));
        free(xq); free(xb); free(D); free(I); free(all);
    }
}

static void test_knn_pad_and_empty(void) {
    uint8_t xq[16], xb[3 * 16];
    fill(xq, sizeof xq);
    fill(xb, sizeof xb);
    int32_t D[5];
    int64_t I[5];
    CHECK_OK(vdx_hamming_knn(xq, 1, xb, 3, 16, NULL, 5, D, I));
    CHECK(D[3] == INT32_MAX && I[3] == -1 && D[4] == INT32_MAX && I[4] == -1);
    CHECK(I[0] >= 0 && I[1] >= 0 && I[2] >= 0);
    CHECK(D[0] <= D[1] && D[1] <= D[2]);
    CHECK_OK(vdx_hamming_knn(xq, 1, xb, 0, 16, NULL, 2, D, I));
    CHECK(I[0] == -1 && I[1] == -1);
}

/* With ids (inverted lists scanned in probe order): FAISS's rule, written
 * here as a sorted array of k: a code enters only when strictly closer than
 * the k-th, and the largest (distance, id) leaves. */
static void test_knn_ids_faiss_rule(void) {
    size_t nb = 2000, cs = 2, k = 20;
    uint8_t xq[2], *xb = malloc(nb * cs);
    int64_t *ids = malloc(nb * sizeof *ids);
    fill(xq, cs);
    fill(xb, nb * cs);
    for (size_t j = 0; j < nb; j++) ids[j] = (int64_t)((j * 7919) % 10007);
    int32_t D[20], rd[20];
    int64_t I[20], ri[20];
    CHECK_OK(vdx_hamming_knn(xq, 1, xb, (int64_t)nb, cs, ids, (int64_t)k, D, I));
    size_t n = 0;
    for (size_t j = 0; j < nb; j++) {
        int32_t d = ham_ref(xq, xb + j * cs, cs);
        if (n == k && d >= rd[k - 1]) continue;
        if (n == k) n--; /* the last (largest) leaves */
        size_t p = n;
        while (p > 0 && (rd[p - 1] > d || (rd[p - 1] == d && ri[p - 1] > ids[j]))) {
            rd[p] = rd[p - 1];
            ri[p] = ri[p - 1];
            p--;
        }
        rd[p] = d;
        ri[p] = ids[j];
        n++;
    }
    CHECK(n == k);
    for (size_t c = 0; c < k; c++) CHECK(D[c] == rd[c] && I[c] == ri[c]);
    free(xb);
    free(ids);
}

/* Lists scanned in probe order = one knn over their concatenation */
static void test_knn_lists(void) {
    enum { NL = 5, CS = 8, K = 15, NQ = 4, NP = 3 };
    int64_t sizes[NL] = {100, 0, 250, 37, 1300};
    uint8_t *codes[NL];
    int64_t *ids[NL];
    int64_t next = 0;
    for (int l = 0; l < NL; l++) {
        codes[l] = malloc((size_t)(sizes[l] ? sizes[l] : 1) * CS);
        ids[l] = malloc((size_t)(sizes[l] ? sizes[l] : 1) * sizeof(int64_t));
        fill(codes[l], (size_t)sizes[l] * CS);
        for (int64_t j = 0; j < sizes[l]; j++) ids[l][j] = (next++ * 37) % 5003;
    }
    uint8_t xq[NQ * CS];
    fill(xq, sizeof xq);
    int64_t assign[NQ * NP] = {4, 0, 2, 1, -1, 3, 2, 4, 0, 3, 3, -1};
    int32_t D[NQ * K], rD[K];
    int64_t I[NQ * K], rI[K];
    CHECK_OK(vdx_hamming_knn_lists(xq, NQ, CS, NL, (const uint8_t *const *)codes,
                                   (const int64_t *const *)ids, sizes, assign,
                                   NP, K, D, I));
    for (int i = 0; i < NQ; i++) {
        size_t tot = 0;
        for (int p = 0; p < NP; p++)
            if (assign[i * NP + p] >= 0) tot += (size_t)sizes[assign[i * NP + p]];
        uint8_t *cat = malloc(tot * CS + 1);
        int64_t *cid = malloc(tot * sizeof(int64_t) + 8);
        size_t o = 0;
        for (int p = 0; p < NP; p++) {
            int64_t l = assign[i * NP + p];
            if (l < 0) continue;
            memcpy(cat + o * CS, codes[l], (size_t)sizes[l] * CS);
            memcpy(cid + o, ids[l], (size_t)sizes[l] * sizeof(int64_t));
            o += (size_t)sizes[l];
        }
        CHECK_OK(vdx_hamming_knn(xq + i * CS, 1, cat, (int64_t)tot, CS, cid, K, rD, rI));
        for (int c = 0; c < K; c++) CHECK(D[i * K + c] == rD[c] && I[i * K + c] == rI[c]);
        free(cat);
        free(cid);
    }
    int64_t bad[NQ * NP] = {5};
    CHECK_ERR(vdx_hamming_knn_lists(xq, NQ, CS, NL, (const uint8_t *const *)codes,
                                    (const int64_t *const *)ids, sizes, bad, NP,
                                    K, D, I), VDX_ERR_INVALID_ARGUMENT);
    for (int l = 0; l < NL; l++) {
        free(codes[l]);
        free(ids[l]);
    }
}

static void test_range_vs_brute(void) {
    size_t nq = 6, nb = 2000, cs = 8;
    uint8_t *xq = malloc(nq * cs), *xb = malloc(nb * cs);
    fill(xq, nq * cs);
    fill(xb, nb * cs);
    int32_t radius = 26;
    vdx_range_result *r = NULL;
    CHECK_OK(vdx_hamming_range_search(xq, (int64_t)nq, xb, (int64_t)nb, cs, radius, &r));
    if (r) {
        CHECK(r->nq == (int64_t)nq && r->lims[0] == 0);
        size_t total = 0;
        for (size_t i = 0; i < nq; i++) {
            int64_t o = r->lims[i];
            for (size_t j = 0; j < nb; j++) {
                int32_t d = ham_ref(xq + i * cs, xb + j * cs, cs);
                if (d < radius) { /* strict */
                    CHECK(o < r->lims[i + 1]);
                    if (o < r->lims[i + 1]) {
                        CHECK(r->labels[o] == (int64_t)j);
                        CHECK(r->distances[o] == (float)d);
                    }
                    o++;
                    total++;
                }
            }
            CHECK(o == r->lims[i + 1]);
        }
        CHECK(total > 0 && total < nq * nb); /* the test discriminates */
    }
    vdx_range_result_free(r);
    free(xq);
    free(xb);
}

static void test_bad_args(void) {
    uint8_t x[8] = {0};
    int32_t D[2];
    int64_t I[2];
    vdx_range_result *r = (vdx_range_result *)1;
    CHECK_ERR(vdx_hamming_knn(x, 1, x, 1, 0, NULL, 1, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_knn(x, 1, x, 1, 8, NULL, 0, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_knn(x, -1, x, 1, 8, NULL, 1, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_knn(NULL, 1, x, 1, 8, NULL, 1, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_knn(x, 1, x, 1, 8, NULL, 1, NULL, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_knn(x, INT64_MAX / 2, x, 1, 8, NULL, 1, D, I), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_distances(x, 1, x, 1, (size_t)1 << 30, D), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_hamming_range_search(x, 1, NULL, 1, 8, 3, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK_ERR(vdx_hamming_range_search(x, 1, x, 1, 8, 3, NULL), VDX_ERR_INVALID_ARGUMENT);
}

int main(void) {
    RUN(test_distances_all_levels);
    RUN(test_knn_vs_brute);
    RUN(test_knn_pad_and_empty);
    RUN(test_knn_ids_faiss_rule);
    RUN(test_knn_lists);
    RUN(test_range_vs_brute);
    RUN(test_bad_args);
    return TEST_SUMMARY();
}
