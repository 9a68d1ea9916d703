/* test_kmeans.c — k-means: finds planted clusters, objective decreases,
 * deterministic across thread counts, spherical centroids have unit norm,
 * bad inputs. */
#include "test.h"

static void test_planted(void) {
    enum { D = 8, K = 10, PER = 200, N = K * PER };
    float *x = malloc(sizeof(float) * N * D), centers[K * D];
    test_rand_fill(centers, K * D, 5);
    for (int i = 0; i < K * D; i++) centers[i] *= 100;
    float *noise = malloc(sizeof(float) * N * D);
    test_rand_fill(noise, N * D, 6);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) x[i * D + j] = centers[(i % K) * D + j] + noise[i * D + j];
    float cent[K * D], obj[25];
    int warn = -1;
    vdx_kmeans_params p;
    vdx_kmeans_params_init(&p);
    p.nredo = 3;
    float obj3[75];
    CHECK_OK(vdx_kmeans_train(D, K, N, x, &p, cent, obj3, &warn));
    CHECK(warn == 0);
    /* planted centers recovered within the noise radius (random seeding can
     * merge two clusters in a run; the best of 3 runs finds nearly all) */
    int found = 0;
    for (int c = 0; c < K; c++) {
        double best = 1e30;
        for (int e = 0; e < K; e++) {
            double s = 0;
            for (int j = 0; j < D; j++) {
                double t = centers[c * D + j] + 0.5 - cent[e * D + j];
                s += t * t;
            }
            if (s < best) best = s;
        }
        found += best < 0.1;
    }
    /* random seeding often puts two first centroids in one well-separated
     * cluster, which Lloyd cannot undo (FAISS shares this): ask for half */
    printf("     planted centers found: %d / %d\n", found, K);
    CHECK(found >= K / 2);
    /* independent objective of the final centroids (double precision): an
     * update step never increases it, so it is <= the last assignment's */
    double o = 0;
    for (int i = 0; i < N; i++) {
        double best = 1e300;
        for (int e = 0; e < K; e++) {
            double s2 = 0;
            for (int j = 0; j < D; j++) {
                double t = (double)x[i * D + j] - cent[e * D + j];
                s2 += t * t;
            }
            if (s2 < best) best = s2;
        }
        o += best;
    }
    float last = obj3[24];
    if (obj3[49] < last) last = obj3[49];
    if (obj3[74] < last) last = obj3[74];
    CHECK(o <= last * (1 + 1e-4));
    CHECK(o >= last * 0.5);
    /* the best of the runs is kept: its final objective is the lowest */
    float fin = obj3[24];
    if (obj3[49] < fin) fin = obj3[49];
    if (obj3[74] < fin) fin = obj3[74];
    CHECK(fin <= obj3[24] && fin <= obj3[49] && fin <= obj3[74]);
    CHECK_OK(vdx_kmeans_train(D, K, N, x, NULL, cent, obj, NULL));
    for (int i = 1; i < 25; i++) CHECK(obj[i] <= obj[i - 1] * (1 + 1e-5));
    free(x);
    free(noise);
}

static void test_deterministic_and_spherical(void) {
    enum { D = 12, K = 20, N = 5000 };
    float *x = malloc(sizeof(float) * N * D), c1[K * D], c2[K * D];
    test_rand_fill(x, N * D, 8);
    vdx_set_num_threads(1);
    CHECK_OK(vdx_kmeans_train(D, K, N, x, NULL, c1, NULL, NULL));
    vdx_set_num_threads(2);
    CHECK_OK(vdx_kmeans_train(D, K, N, x, NULL, c2, NULL, NULL));
    vdx_set_num_threads(0);
    CHECK(!memcmp(c1, c2, sizeof c1));
    vdx_kmeans_params p;
    vdx_kmeans_params_init(&p);
    p.seed = 99;
    CHECK_OK(vdx_kmeans_train(D, K, N, x, &p, c2, NULL, NULL));
    CHECK(memcmp(c1, c2, sizeof c1) != 0);
    p.spherical = 1;
    CHECK_OK(vdx_kmeans_train(D, K, N, x, &p, c2, NULL, NULL));
    for (int c = 0; c < K; c++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += c2[c * D + j] * c2[c * D + j];
        CHECK(fabs(s - 1) < 1e-4);
    }
    int warn = 0;
    p.spherical = 0;
    p.max_points_per_centroid = 10; /* 5000 > 20 * 10: subsampled */
    CHECK_OK(vdx_kmeans_train(D, K, N, x, &p, c2, NULL, &warn));
    CHECK(warn & VDX_KMEANS_WARN_SUBSAMPLED);
    p.max_points_per_centroid = 256;
    CHECK_OK(vdx_kmeans_train(D, K, 100, x, &p, c2, NULL, &warn));
    CHECK(warn & VDX_KMEANS_WARN_FEW_POINTS);
    free(x);
}

static void test_empty_clusters_and_bad(void) {
    /* many duplicates force empty clusters that must be split */
    enum { D = 4, K = 16, N = 200 };
    float x[N * D], c[K * D];
    for (int i = 0; i < N * D; i++) x[i] = (float)((i / D) % 3);
    CHECK_OK(vdx_kmeans_train(D, K, N, x, NULL, c, NULL, NULL));
    for (int i = 0; i < K * D; i++) CHECK(isfinite(c[i]));
    CHECK_ERR(vdx_kmeans_train(D, K, K - 1, x, NULL, c, NULL, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "n >= k") != NULL);
    CHECK_ERR(vdx_kmeans_train(0, K, N, x, NULL, c, NULL, NULL), VDX_ERR_INVALID_ARGUMENT);
    x[7] = NAN;
    CHECK_ERR(vdx_kmeans_train(D, K, N, x, NULL, c, NULL, NULL), VDX_ERR_INVALID_ARGUMENT);
}

/* A 1e20 "missing value" sentinel in one column of 1% of the rows made
 * the assignment return -1 and k-means write count[-1] (heap corruption);
 * now such data is refused with its value and place.  Just below the
 * limit, training works and gives finite centroids. */
static void test_huge_magnitudes(void) {
    enum { D = 32, K = 16, N = 2000 };
    float *x = malloc(sizeof(float) * N * D), c[K * D];
    uint64_t s = 7;
    for (int i = 0; i < N * D; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)(s >> 40) / (float)(1 << 24);
    }
    for (int i = 0; i < N; i += 100) x[i * D + 5] = 1e20f;
    CHECK_ERR(vdx_kmeans_train(D, K, N, x, NULL, c, NULL, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "too large") && strstr(vdx_last_error(), "1e+20"));
    CHECK(strstr(vdx_last_error(), "row 0, column 5"));
    /* all of it at 1e19: once an endless split_empty loop */
    for (int i = 0; i < N * D; i++) x[i] = (float)(i % 97) * 1e19f;
    CHECK_ERR(vdx_kmeans_train(D, K, N, x, NULL, c, NULL, NULL), VDX_ERR_INVALID_ARGUMENT);
    /* the largest accepted magnitude: sqrt(FLT_MAX / (32 d)) */
    const float lim = sqrtf(FLT_MAX / (32.0f * D)) * 0.999f;
    for (int i = 0; i < N * D; i++) x[i] = (float)((i * 31 + i / D) % 101) / 100.0f * lim;
    CHECK_OK(vdx_kmeans_train(D, K, N, x, NULL, c, NULL, NULL));
    for (int i = 0; i < K * D; i++) CHECK(isfinite(c[i]) && fabsf(c[i]) <= lim * 1.01f);
    free(x);
}

static int calls;
static int stop_at_second(void *ctx) {
    (void)ctx;
    return ++calls >= 2;
}

/* The interrupt handler stops k-means between iterations. */
static void test_interrupt(void) {
    enum { D = 8, K = 64, N = 20000 };
    float *x = malloc(sizeof(float) * N * D), c[K * D];
    for (int i = 0; i < N * D; i++) x[i] = (float)((i * 7919) % 1009);
    vdx_kmeans_params p;
    vdx_kmeans_params_init(&p);
    p.niter = 1000000; /* would run for hours */
    calls = 0;
    vdx_set_interrupt_handler(stop_at_second, NULL);
    CHECK_ERR(vdx_kmeans_train(D, K, N, x, &p, c, NULL, NULL), VDX_ERR_INTERRUPTED);
    CHECK(strstr(vdx_last_error(), "interrupted") != NULL);
    CHECK(calls == 2);
    vdx_set_interrupt_handler(NULL, NULL);
    p.niter = 3;
    CHECK_OK(vdx_kmeans_train(D, K, N, x, &p, c, NULL, NULL));
    free(x);
}

int main(void) {
    RUN(test_huge_magnitudes);
    RUN(test_interrupt);
    RUN(test_planted);
    RUN(test_deterministic_and_spherical);
    RUN(test_empty_clusters_and_bad);
    return TEST_SUMMARY();
}
