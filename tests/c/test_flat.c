/* test_flat.c — IndexFlat against an independent double-precision brute
 * force: k-NN (both paths, both metrics, k > ntotal, ties, selectors),
 * range search, reconstruct and remove_ids. */
#include "test.h"

typedef struct { double dist; int64_t id; } pair;

static int cmp_asc(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* brute force: L2 ascending, IP descending (stored negated) */
static void brute(const float *xb, int64_t nb, const float *xq, int64_t d,
                  int ip, int64_t k, const vdx_selector *sel, double *D,
                  int64_t *I) {
    pair *p = malloc(sizeof(pair) * (size_t)(nb ? nb : 1));
    int64_t m = 0;
    for (int64_t j = 0; j < nb; j++) {
        if (sel && !vdx_selector_is_member(sel, j)) continue;
        double s = 0;
        for (int64_t t = 0; t < d; t++) {
            double a = xq[t], b = xb[j * d + t];
            s += ip ? a * b : (a - b) * (a - b);
        }
        p[m].dist = ip ? -s : s;
        p[m++].id = j;
    }
    qsort(p, (size_t)m, sizeof(pair), cmp_asc);
    for (int64_t i = 0; i < k; i++) {
        D[i] = i < m ? (ip ? -p[i].dist : p[i].dist) : (ip ? -INFINITY : INFINITY);
        I[i] = i < m ? p[i].id : -1;
    }
    free(p);
}

static double exact(const float *xb, const float *xq, int64_t d, int ip,
                    int64_t j) {
    double s = 0;
    for (int64_t t = 0; t < d; t++) {
        double a = xq[t], b = xb[j * d + t];
        s += ip ? a * b : (a - b) * (a - b);
    }
    return s;
}

/* compares results allowing swaps among near-equal distances (sgemm's
 * |x|^2 + |y|^2 - 2<x,y> loses ~1e-7 relative to the norms) */
static int same_results(int64_t k, const float *D, const int64_t *I,
                        const double *RD, const int64_t *RI, const float *xb,
                        const float *xq, int64_t d, int ip) {
    for (int64_t i = 0; i < k; i++) {
        if (RI[i] < 0) {
            if (I[i] != -1 || fabsf(D[i]) != FLT_MAX || (D[i] > 0) != (RD[i] > 0)) return 0;
            continue;
        }
        double tol = 1e-4 * (fabs(RD[i]) + 1);
        if (fabs(D[i] - RD[i]) > tol) return 0;
        if (I[i] != RI[i] &&
            (I[i] < 0 || fabs(exact(xb, xq, d, ip, I[i]) - RD[i]) > tol))
            return 0;
    }
    return 1;
}

static void run_case(int64_t d, int64_t nb, int64_t nq, int64_t k, int ip,
                     const vdx_selector *sel) {
    float *xb = malloc(sizeof(float) * (size_t)(nb * d + 1));
    float *xq = malloc(sizeof(float) * (size_t)(nq * d));
    test_rand_fill(xb, (size_t)(nb * d), (uint64_t)(d * 7 + nb));
    test_rand_fill(xq, (size_t)(nq * d), (uint64_t)(d * 11 + nq));
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2, &ix));
    /* add in two batches to exercise growth */
    CHECK_OK(vdx_index_add(ix, nb / 2, xb));
    CHECK_OK(vdx_index_add(ix, nb - nb / 2, xb + (nb / 2) * d));
    CHECK(vdx_index_ntotal(ix) == nb);
    float *D = malloc(sizeof(float) * (size_t)(nq * k));
    int64_t *I = malloc(sizeof(int64_t) * (size_t)(nq * k));
    double *RD = malloc(sizeof(double) * (size_t)k);
    int64_t *RI = malloc(sizeof(int64_t) * (size_t)k);
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.sel = sel;
    CHECK_OK(vdx_index_search(ix, nq, xq, k, &p, D, I));
    int bad = 0;
    for (int64_t q = 0; q < nq; q++) {
        brute(xb, nb, xq + q * d, d, ip, k, sel, RD, RI);
        if (!same_results(k, D + q * k, I + q * k, RD, RI, xb, xq + q * d, d, ip)) {
            if (!bad)
                fprintf(stderr, "  mismatch d=%lld nb=%lld nq=%lld k=%lld ip=%d q=%lld: got %lld %g want %lld %g\n",
                        (long long)d, (long long)nb, (long long)nq, (long long)k, ip,
                        (long long)q, (long long)I[q * k], D[q * k], (long long)RI[0], RD[0]);
            bad++;
        }
    }
    CHECK(bad == 0);
    free(D); free(I); free(RD); free(RI); free(xb); free(xq);
    vdx_index_free(ix);
}

static void test_knn(void) {
    int64_t ds[] = {1, 3, 8, 17, 64, 100};
    for (int ip = 0; ip < 2; ip++)
        for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
            run_case(ds[i], 1000, 1, 10, ip, NULL);     /* scan, split db */
            run_case(ds[i], 5000, 3, 5, ip, NULL);      /* scan */
            run_case(ds[i], 3000, 300, 7, ip, NULL);    /* sgemm path */
            run_case(ds[i], 1234, 40, 1, ip, NULL);
            run_case(ds[i], 3000, 70, 100, ip, NULL); /* reservoir (k > 64) */
        }
    run_case(16, 10, 5, 20, 0, NULL);  /* k > ntotal, scan */
    run_case(16, 10, 50, 20, 1, NULL); /* k > ntotal, sgemm */
    run_case(16, 0, 20, 3, 0, NULL);   /* empty index */
}

static void test_selector_search(void) {
    vdx_selector *r = NULL, *b = NULL, *n = NULL;
    CHECK_OK(vdx_selector_range(100, 130, &r));
    int64_t ids[] = {5, 77, 3000, 4999, 12};
    CHECK_OK(vdx_selector_batch(5, ids, &b));
    CHECK_OK(vdx_selector_not(r, &n));
    for (int ip = 0; ip < 2; ip++) {
        run_case(32, 5000, 2, 10, ip, r);
        run_case(32, 5000, 100, 10, ip, r);
        run_case(32, 5000, 3, 10, ip, b);   /* fewer admitted than k */
        run_case(32, 5000, 64, 10, ip, b);
        run_case(32, 5000, 64, 10, ip, n);
    }
    vdx_selector_free(n); vdx_selector_free(r); vdx_selector_free(b);
}

static void test_ties(void) {
    /* identical vectors: ties must go to the lower id on both paths */
    int64_t d = 4, nb = 50;
    float xb[200];
    for (int i = 0; i < 200; i++) xb[i] = 1.0f;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_add(ix, nb, xb));
    float xq[4 * 32];
    for (int i = 0; i < 4 * 32; i++) xq[i] = 0.5f;
    float D[32 * 5];
    int64_t I[32 * 5];
    for (int nq = 1; nq <= 32; nq += 31) {
        CHECK_OK(vdx_index_search(ix, nq, xq, 5, NULL, D, I));
        for (int q = 0; q < nq; q++)
            for (int j = 0; j < 5; j++) CHECK(I[q * 5 + j] == j);
    }
    vdx_index_free(ix);
}

/* Small integer coordinates: sgemm's distances are exact, so the many
 * equal distances must come out exactly as a (distance, id) sort of the
 * brute force has them (the extraction and set paths of the sgemm search,
 * seeded or not, the reservoir above k = 64; the scan path). */
static void exact_ties(int64_t nq) {
    const int64_t d = 8;
    const int64_t nbs[] = {7, 60, 100, 513, 1500, 5000};
    const int64_t ks[] = {1, 2, 10, 33, 64, 65};
    float xq[40 * 8];
    for (int64_t i = 0; i < nq * d; i++) xq[i] = (float)((i * 5 + 3) % 3);
    for (size_t a = 0; a < sizeof nbs / sizeof nbs[0]; a++) {
        const int64_t nb = nbs[a];
        float *xb = malloc(sizeof(float) * (size_t)(nb * d));
        for (int64_t i = 0; i < nb * d; i++)
            xb[i] = (float)(((i * 7919) >> 3) % 3);
        for (int ip = 0; ip < 2; ip++) {
            vdx_index *ix = NULL;
            CHECK_OK(vdx_index_flat_new(d, ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2, &ix));
            CHECK_OK(vdx_index_add(ix, nb, xb));
            for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
                const int64_t k = ks[b];
                float *D = malloc(sizeof(float) * (size_t)(nq * k));
                int64_t *I = malloc(sizeof(int64_t) * (size_t)(nq * k));
                double *RD = malloc(sizeof(double) * (size_t)k);
                int64_t *RI = malloc(sizeof(int64_t) * (size_t)k);
                CHECK_OK(vdx_index_search(ix, nq, xq, k, NULL, D, I));
                int bad = 0;
                for (int64_t q = 0; q < nq; q++) {
                    brute(xb, nb, xq + q * d, d, ip, k, NULL, RD, RI);
                    for (int64_t j = 0; j < k; j++) {
                        int ok = I[q * k + j] == RI[j] &&
                                 (RI[j] < 0 || (double)D[q * k + j] == RD[j]);
                        if (!ok && !bad)
                            fprintf(stderr, "  nq=%lld nb=%lld k=%lld ip=%d q=%lld j=%lld: got %lld %g want %lld %g\n",
                                    (long long)nq, (long long)nb, (long long)k, ip, (long long)q,
                                    (long long)j, (long long)I[q * k + j],
                                    D[q * k + j], (long long)RI[j], RD[j]);
                        bad += !ok;
                    }
                }
                CHECK(bad == 0);
                free(D); free(I); free(RD); free(RI);
            }
            vdx_index_free(ix);
        }
        free(xb);
    }
}

static void test_exact_ties(void) {
    exact_ties(3);  /* the scan path */
    exact_ties(40); /* the sgemm path */
}

static void test_range(void) {
    int64_t d = 8, nb = 3000, nq = 20;
    float *xb = malloc(sizeof(float) * nb * d), *xq = malloc(sizeof(float) * nq * d);
    test_rand_fill(xb, nb * d, 5);
    test_rand_fill(xq, nq * d, 6);
    for (int ip = 0; ip < 2; ip++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_flat_new(d, ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_add(ix, nb, xb));
        float radius = ip ? 2.5f : 0.2f;
        vdx_range_result *r = NULL;
        CHECK_OK(vdx_index_range_search(ix, nq, xq, radius, NULL, &r));
        int64_t bad = 0, total = 0;
        for (int64_t q = 0; q < nq; q++) {
            int64_t cnt = 0;
            for (int64_t j = 0; j < nb; j++) {
                double s = 0;
                for (int64_t t = 0; t < d; t++) {
                    double a = xq[q * d + t], b = xb[j * d + t];
                    s += ip ? a * b : (a - b) * (a - b);
                }
                int in = ip ? s > radius : s < radius;
                if (fabs(s - radius) < 1e-5) continue; /* boundary: skip */
                if (!in) continue;
                cnt++;
                int found = 0;
                for (int64_t u = r->lims[q]; u < r->lims[q + 1]; u++)
                    if (r->labels[u] == j) {
                        found = 1;
                        if (fabs(r->distances[u] - s) > 1e-4) bad++;
                    }
                bad += !found;
            }
            total += cnt;
            if (r->lims[q + 1] - r->lims[q] < cnt || r->lims[q + 1] - r->lims[q] > cnt + 2) bad++;
        }
        CHECK(bad == 0);
        CHECK(total > 0);
        vdx_range_result_free(r);
        vdx_index_free(ix);
    }
    free(xb); free(xq);
}

static void test_reconstruct_remove(void) {
    int64_t d = 5, nb = 100;
    float xb[500], out[500];
    test_rand_fill(xb, 500, 9);
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_add(ix, nb, xb));
    CHECK_OK(vdx_index_reconstruct(ix, 42, out));
    CHECK(!memcmp(out, xb + 42 * d, d * sizeof(float)));
    CHECK_ERR(vdx_index_reconstruct(ix, 100, out), VDX_ERR_NOT_FOUND);
    CHECK_ERR(vdx_index_reconstruct(ix, -1, out), VDX_ERR_NOT_FOUND);
    CHECK_OK(vdx_index_reconstruct_n(ix, 10, 20, out));
    CHECK(!memcmp(out, xb + 10 * d, 20 * d * sizeof(float)));
    CHECK_ERR(vdx_index_reconstruct_n(ix, 90, 20, out), VDX_ERR_INVALID_ARGUMENT);
    vdx_selector *s = NULL;
    CHECK_OK(vdx_selector_range(10, 20, &s));
    int64_t nr = -1;
    CHECK_OK(vdx_index_remove_ids(ix, s, &nr));
    CHECK(nr == 10);
    CHECK(vdx_index_ntotal(ix) == 90);
    /* compaction: old id 20 is now 10 */
    CHECK_OK(vdx_index_reconstruct(ix, 10, out));
    CHECK(!memcmp(out, xb + 20 * d, d * sizeof(float)));
    /* search still exact after removal (norms moved with the vectors) */
    float D[64 * 1];
    int64_t I[64 * 1];
    float q[64 * 5];
    for (int i = 0; i < 64; i++) memcpy(q + i * d, xb + (30 + i % 60) * d, d * sizeof(float));
    CHECK_OK(vdx_index_search(ix, 64, q, 1, NULL, D, I));
    for (int i = 0; i < 64; i++) CHECK(I[i] == 30 + i % 60 - 10 && D[i] < 1e-5);
    CHECK_OK(vdx_index_reset(ix));
    CHECK(vdx_index_ntotal(ix) == 0);
    CHECK_OK(vdx_index_add(ix, 3, xb));
    CHECK(vdx_index_ntotal(ix) == 3);
    vdx_selector_free(s);
    vdx_index_free(ix);
}

int main(void) {
    RUN(test_knn);
    RUN(test_selector_search);
    RUN(test_ties);
    RUN(test_exact_ties);
    RUN(test_range);
    RUN(test_reconstruct_remove);
    return TEST_SUMMARY();
}
