/*
 * test_hnsw.c — the HNSW indexes against brute force: recall of Flat / SQ /
 * PQ under L2 and inner product, determinism of a one-thread build, adds in
 * batches, filtered search at 1%, 10% and 50% selectivity, removal (recall
 * within 0.01 of a fresh build on the remaining vectors), range search and
 * argument errors.
 */
#include "test.h"
#include "index/hnsw.h"

#define D 32
#define NB 4000
#define NQ 200
#define K 10

static float *xb, *xq, *xbn, *xqn; /* raw and normalised copies */

static void normalise(float *x, int64_t n) { vdx_normalize_L2(n, D, x); }

/* Clustered data (HNSW's usual regime): points around 64 random centres. */
static void make_data(float *x, int64_t n, uint64_t seed) {
    float *c = malloc(64 * D * sizeof(float));
    float *noise = malloc((size_t)n * D * sizeof(float));
    test_rand_fill(c, 64 * D, 7);
    test_rand_fill(noise, (size_t)n * D, seed);
    for (int64_t i = 0; i < n; i++) {
        int cc = (int)((uint64_t)(i * 2654435761u) % 64);
        for (int j = 0; j < D; j++)
            x[i * D + j] = c[cc * D + j] + 1.5f * (noise[i * D + j] - 0.5f);
    }
    free(c);
    free(noise);
}

/* Fraction of the true top-k found (labels compared as sets per query). */
static double recall(const vdx_idx_t *I, const vdx_idx_t *gt, int64_t nq, int k) {
    int64_t hit = 0, tot = 0;
    for (int64_t q = 0; q < nq; q++)
        for (int i = 0; i < k; i++) {
            if (gt[q * k + i] < 0) continue;
            tot++;
            for (int j = 0; j < k; j++)
                if (I[q * k + j] == gt[q * k + i]) {
                    hit++;
                    break;
                }
        }
    return tot ? (double)hit / (double)tot : 1.0;
}

static void ground_truth(const float *b, int64_t nb, const float *q, int64_t nq,
                         vdx_metric m, const vdx_selector *sel, vdx_idx_t *gt) {
    vdx_index *f = NULL;
    CHECK_OK(vdx_index_flat_new(D, m, &f));
    CHECK_OK(vdx_index_add(f, nb, b));
    float *dd = malloc((size_t)nq * K * sizeof(float));
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.sel = sel;
    CHECK_OK(vdx_index_search(f, nq, q, K, &p, dd, gt));
    free(dd);
    vdx_index_free(f);
}

static double hnsw_recall(vdx_index *ix, const float *q, const vdx_idx_t *gt,
                          int ef) {
    float *dd = malloc((size_t)NQ * K * sizeof(float));
    vdx_idx_t *ii = malloc((size_t)NQ * K * sizeof(vdx_idx_t));
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.efSearch = ef;
    CHECK_OK(vdx_index_search(ix, NQ, q, K, &p, dd, ii));
    /* distances sorted, labels valid */
    for (int64_t i = 0; i < NQ * K; i++) CHECK(ii[i] >= 0 && ii[i] < vdx_index_ntotal(ix));
    double r = recall(ii, gt, NQ, K);
    free(dd);
    free(ii);
    return r;
}

/* The K distances of query q are the exact ones of their labels. */
static void check_exact(int ip, const float *q, const float *b,
                        const float *dd, const vdx_idx_t *ii) {
    for (int j = 0; j < K; j++) {
        float e = 0;
        for (int t = 0; t < D; t++) {
            float a = q[t], c = b[ii[j] * D + t];
            e += ip ? a * c : (a - c) * (a - c);
        }
        CHECK(fabsf(e - dd[j]) <= 1e-4f * (1 + fabsf(e)));
    }
}

static void test_flat_recall(void) {
    for (int ip = 0; ip <= 1; ip++) {
        vdx_metric m = ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        const float *b = ip ? xbn : xb, *q = ip ? xqn : xq;
        vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
        ground_truth(b, NB, q, NQ, m, NULL, gt);
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_hnsw_flat_new(D, 16, m, &ix));
        CHECK(vdx_index_hnsw_ef_construction(ix) == 40);
        CHECK(vdx_index_hnsw_ef_search(ix) == 16);
        CHECK(vdx_index_hnsw_max_level(ix) == -1);
        CHECK_OK(vdx_index_add(ix, NB, b));
        CHECK(vdx_index_ntotal(ix) == NB);
        CHECK(vdx_index_hnsw_max_level(ix) >= 1);
        int64_t ep = vdx_index_hnsw_entry_point(ix);
        int lv = -1;
        CHECK_OK(vdx_index_hnsw_node_level(ix, ep, &lv));
        CHECK(lv == vdx_index_hnsw_max_level(ix));
        double r16 = hnsw_recall(ix, q, gt, 16), r128 = hnsw_recall(ix, q, gt, 128);
        printf("  %s: recall@10 ef=16 %.3f, ef=128 %.3f\n", ip ? "IP" : "L2", r16, r128);
        CHECK(r128 >= 0.97);
        CHECK(r16 >= 0.7);
        CHECK(r128 >= r16);
        /* distances match exact ones for the returned labels */
        float dd[K];
        vdx_idx_t ii[K];
        CHECK_OK(vdx_index_search(ix, 1, q, K, NULL, dd, ii));
        check_exact(ip, q, b, dd, ii);
        for (int j = 1; j < K; j++)
            CHECK(ip ? dd[j] <= dd[j - 1] : dd[j] >= dd[j - 1]);
        /* the flat storage keeps no squared norms (the walk needs none):
         * its own sgemm search computes them per block, and must still
         * return the exact neighbours */
        vdx_index *st = vdx_index_hnsw_storage(ix);
        CHECK(st != NULL);
        float *sd = malloc((size_t)NQ * K * sizeof(float));
        vdx_idx_t *si = malloc((size_t)NQ * K * sizeof(vdx_idx_t));
        CHECK_OK(vdx_index_search(st, NQ, q, K, NULL, sd, si));
        CHECK(recall(si, gt, NQ, K) >= 0.999);
        check_exact(ip, q, b, sd, si);
        free(sd);
        free(si);
        vdx_index_free(ix);
        free(gt);
    }
}

/* The AVX2 walk (default on this machine) against the generic walk: the
 * same nodes are scored, only the summation order of distances differs. */
static void test_walks_agree(void) {
    if (!strcmp(vdx_simd_level(), "scalar")) {
        printf("  (scalar kernels: one walk only)\n");
        return;
    }
    for (int ip = 0; ip <= 1; ip++) {
        vdx_metric m = ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        const float *b = ip ? xbn : xb, *q = ip ? xqn : xq;
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_hnsw_flat_new(D, 16, m, &ix));
        CHECK_OK(vdx_index_add(ix, NB, b));
        float *d1 = malloc(NQ * K * sizeof(float)), *d2 = malloc(NQ * K * sizeof(float));
        vdx_idx_t *i1 = malloc(NQ * K * sizeof(vdx_idx_t)), *i2 = malloc(NQ * K * sizeof(vdx_idx_t));
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 24;
        CHECK_OK(vdx_index_search(ix, NQ, q, K, &p, d1, i1));
        vdx_hnsw_test_generic = 1;
        CHECK_OK(vdx_index_search(ix, NQ, q, K, &p, d2, i2));
        vdx_hnsw_test_generic = 0;
        int64_t same = 0;
        for (int64_t i = 0; i < NQ * K; i++) {
            same += i1[i] == i2[i];
            CHECK(fabsf(d1[i] - d2[i]) <= 1e-4f * (1 + fabsf(d1[i])));
        }
        CHECK(same >= NQ * K * 99 / 100);
        free(d1);
        free(d2);
        free(i1);
        free(i2);
        vdx_index_free(ix);
    }
}

static void test_sq_pq_recall(void) {
    for (int kind = 0; kind < 2; kind++)
        for (int ip = 0; ip <= 1; ip++) {
            vdx_metric m = ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
            const float *b = ip ? xbn : xb, *q = ip ? xqn : xq;
            vdx_index *ix = NULL, *ref = NULL;
            if (kind == 0) {
                CHECK_OK(vdx_index_hnsw_sq_new(D, VDX_SQ_8BIT, 16, m, &ix));
                CHECK_OK(vdx_index_sq_new(D, VDX_SQ_8BIT, m, &ref));
            } else {
                CHECK_OK(vdx_index_hnsw_pq_new(D, 8, 16, 8, m, &ix));
                CHECK_OK(vdx_index_pq_new(D, 8, 8, m, &ref));
            }
            CHECK(!vdx_index_is_trained(ix) || kind == 0);
            CHECK_ERR(vdx_index_add(ix, NB, b), VDX_ERR_NOT_TRAINED);
            CHECK_OK(vdx_index_train(ix, NB, b));
            CHECK_OK(vdx_index_train(ref, NB, b));
            CHECK(vdx_index_is_trained(ix));
            CHECK_OK(vdx_index_add(ix, NB, b));
            CHECK_OK(vdx_index_add(ref, NB, b));
            /* the exhaustive search over the same codes is the reference */
            vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
            float *dd = malloc(NQ * K * sizeof(float));
            CHECK_OK(vdx_index_search(ref, NQ, q, K, NULL, dd, gt));
            double r = hnsw_recall(ix, q, gt, 128);
            printf("  %s %s: recall@10 vs exhaustive on codes, ef=128: %.3f\n",
                   kind ? "PQ" : "SQ8", ip ? "IP" : "L2", r);
            CHECK(r >= 0.9);
            free(gt);
            free(dd);
            vdx_index_free(ix);
            vdx_index_free(ref);
        }
}

static void test_determinism_and_batches(void) {
    int saved = vdx_get_num_threads();
    vdx_set_num_threads(1);
    vdx_index *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &a));
    CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &b));
    CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &c));
    CHECK_OK(vdx_index_add(a, 2000, xb));
    CHECK_OK(vdx_index_add(c, 2000, xb));
    /* b: same vectors in three batches (the insertion order is per batch,
     * highest levels first, so the graph differs; it must search well) */
    CHECK_OK(vdx_index_add(b, 700, xb));
    CHECK_OK(vdx_index_add(b, 1, xb + 700 * D));
    CHECK_OK(vdx_index_add(b, 1299, xb + 701 * D));
    vdx_set_num_threads(saved);
    CHECK(vdx_index_hnsw_entry_point(a) == vdx_index_hnsw_entry_point(c));
    int same = 1;
    int64_t la[64], lb[64];
    for (int64_t i = 0; i < 2000 && same; i++) {
        int va, vb, ca, cb;
        CHECK_OK(vdx_index_hnsw_node_level(a, i, &va));
        CHECK_OK(vdx_index_hnsw_node_level(c, i, &vb));
        CHECK_OK(vdx_index_hnsw_node_level(b, i, &ca));
        if (va != vb || va != ca) same = 0; /* levels: one seeded stream */
        for (int l = 0; l <= va && same; l++) {
            CHECK_OK(vdx_index_hnsw_neighbors(a, i, l, la, &ca));
            CHECK_OK(vdx_index_hnsw_neighbors(c, i, l, lb, &cb));
            same = ca == cb && !memcmp(la, lb, (size_t)ca * sizeof(int64_t));
        }
    }
    CHECK(same); /* one thread: the same graph twice */
    vdx_index_free(c);
    /* a batched build searches well */
    vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
    ground_truth(xb, 2000, xq, NQ, VDX_METRIC_L2, NULL, gt);
    double r = hnsw_recall(b, xq, gt, 64);
    CHECK(r >= 0.95);
    /* the parallel build is as good */
    c = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &c));
    vdx_set_num_threads(2);
    CHECK_OK(vdx_index_add(c, 1000, xb));
    CHECK_OK(vdx_index_add(c, 1000, xb + 1000 * D));
    vdx_set_num_threads(saved);
    double rc = hnsw_recall(c, xq, gt, 64);
    printf("  batched 1 thread %.3f, 2 threads %.3f\n", r, rc);
    CHECK(rc >= 0.95);
    free(gt);
    vdx_index_free(a);
    vdx_index_free(b);
    vdx_index_free(c);
}

static void test_filters(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(D, 16, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_add(ix, NB, xb));
    const double fracs[3] = {0.01, 0.10, 0.50};
    uint8_t *bm = malloc(NB / 8 + 1);
    for (int f = 0; f < 3; f++) {
        memset(bm, 0, NB / 8 + 1);
        float *r = malloc(NB * sizeof(float));
        test_rand_fill(r, NB, 99 + f);
        int64_t nadm = 0;
        for (int i = 0; i < NB; i++)
            if (r[i] < fracs[f]) {
                bm[i >> 3] |= (uint8_t)(1 << (i & 7));
                nadm++;
            }
        free(r);
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_bitmap(NB / 8 + 1, bm, &sel));
        vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
        ground_truth(xb, NB, xq, NQ, VDX_METRIC_L2, sel, gt);
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.sel = sel;
        p.efSearch = 64;
        float *dd = malloc(NQ * K * sizeof(float));
        vdx_idx_t *ii = malloc(NQ * K * sizeof(vdx_idx_t));
        CHECK_OK(vdx_index_search(ix, NQ, xq, K, &p, dd, ii));
        int64_t bad = 0, missing = 0;
        for (int64_t i = 0; i < NQ * K; i++) {
            if (ii[i] < 0) missing++;
            else if (!((bm[ii[i] >> 3] >> (ii[i] & 7)) & 1)) bad++;
        }
        double rec = recall(ii, gt, NQ, K);
        printf("  filter %.0f%% (%lld admitted): recall@10 %.3f\n", fracs[f] * 100,
               (long long)nadm, rec);
        CHECK(nadm >= K);
        CHECK(missing == 0); /* k results whenever k admitted vectors exist */
        CHECK(bad == 0);
        CHECK(rec >= (fracs[f] < 0.05 ? 0.99 : 0.9));
        /* efSearch 16: at 50% the graph walk answers (the scan is chosen
         * only when the walk would cost more), at 1% and 10% the scan */
        p.efSearch = 16;
        CHECK_OK(vdx_index_search(ix, NQ, xq, K, &p, dd, ii));
        int64_t bad16 = 0;
        for (int64_t i = 0; i < NQ * K; i++)
            if (ii[i] < 0 || !((bm[ii[i] >> 3] >> (ii[i] & 7)) & 1)) bad16++;
        double rec16 = recall(ii, gt, NQ, K);
        printf("  filter %.0f%%, efSearch 16: recall@10 %.3f\n", fracs[f] * 100, rec16);
        CHECK(bad16 == 0);
        CHECK(rec16 >= 0.75);
        p.efSearch = 64;
        /* a filter admitting fewer than k: exactly the admitted come back */
        vdx_selector *few = NULL;
        vdx_idx_t ids3[3] = {5, 77, 3999};
        CHECK_OK(vdx_selector_array(3, ids3, &few));
        p.sel = few;
        CHECK_OK(vdx_index_search(ix, 1, xq, K, &p, dd, ii));
        int got = 0;
        for (int j = 0; j < K; j++)
            if (ii[j] >= 0) {
                got++;
                CHECK(ii[j] == 5 || ii[j] == 77 || ii[j] == 3999);
            }
        CHECK(got == 3);
        vdx_selector_free(few);
        vdx_selector_free(sel);
        free(gt);
        free(dd);
        free(ii);
    }
    free(bm);
    vdx_index_free(ix);
}

static void test_remove(void) {
    for (int ip = 0; ip <= 1; ip++) {
        vdx_metric m = ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        const float *b = ip ? xbn : xb, *q = ip ? xqn : xq;
        vdx_index *ix = NULL, *fresh = NULL;
        CHECK_OK(vdx_index_hnsw_flat_new(D, 16, m, &ix));
        CHECK_OK(vdx_index_add(ix, NB, b));
        /* delete 10%: every id with id % 10 == 3, plus the entry point */
        int64_t ep = vdx_index_hnsw_entry_point(ix);
        uint8_t *bm = calloc(NB / 8 + 1, 1);
        float *rest = malloc(NB * D * sizeof(float));
        int64_t nrest = 0;
        for (int64_t i = 0; i < NB; i++) {
            if (i % 10 == 3 || i == ep) bm[i >> 3] |= (uint8_t)(1 << (i & 7));
            else memcpy(rest + (nrest++) * D, b + i * D, D * sizeof(float));
        }
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_bitmap(NB / 8 + 1, bm, &sel));
        int64_t nr = 0;
        CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
        CHECK(nr == NB - nrest);
        CHECK(vdx_index_ntotal(ix) == nrest);
        /* ids shifted as IndexFlat: position j is the j-th kept vector */
        float v[D];
        CHECK_OK(vdx_index_reconstruct(ix, nrest / 2, v));
        CHECK(!memcmp(v, rest + (nrest / 2) * D, sizeof v));
        CHECK_OK(vdx_index_hnsw_flat_new(D, 16, m, &fresh));
        CHECK_OK(vdx_index_add(fresh, nrest, rest));
        vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
        ground_truth(rest, nrest, q, NQ, m, NULL, gt);
        for (int ef = 16; ef <= 64; ef *= 4) {
            double rr = hnsw_recall(ix, q, gt, ef), rf = hnsw_recall(fresh, q, gt, ef);
            printf("  %s ef=%d: recall after removal %.4f, fresh build %.4f\n",
                   ip ? "IP" : "L2", ef, rr, rf);
            CHECK(rr >= rf - 0.01);
        }
        /* and further adds after the removal work */
        CHECK_OK(vdx_index_add(ix, 10, b + 3 * D));
        CHECK(vdx_index_ntotal(ix) == nrest + 10);
        float dd[K];
        vdx_idx_t ii[K];
        CHECK_OK(vdx_index_search(ix, 1, b + 3 * D, K, NULL, dd, ii));
        CHECK(ii[0] == nrest || fabsf(ip ? dd[0] - 1 : dd[0]) < 1e-5f);
        vdx_selector_free(sel);
        free(bm);
        free(rest);
        free(gt);
        vdx_index_free(ix);
        vdx_index_free(fresh);
    }
    /* removing everything leaves an empty, usable index */
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(D, 4, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_add(ix, 100, xb));
    vdx_selector *all = NULL;
    CHECK_OK(vdx_selector_range(0, 100, &all));
    int64_t nr;
    CHECK_OK(vdx_index_remove_ids(ix, all, &nr));
    CHECK(nr == 100 && vdx_index_ntotal(ix) == 0);
    CHECK(vdx_index_hnsw_entry_point(ix) == -1);
    float dd[K];
    vdx_idx_t ii[K];
    CHECK_OK(vdx_index_search(ix, 1, xq, K, NULL, dd, ii));
    CHECK(ii[0] == -1);
    CHECK_OK(vdx_index_add(ix, 50, xb));
    CHECK_OK(vdx_index_search(ix, 1, xb, K, NULL, dd, ii));
    CHECK(ii[0] == 0);
    vdx_selector_free(all);
    vdx_index_free(ix);
}

/* Heavy deletion (issue 17, item 8): after removing 30% to 99% of the
 * vectors (a seeded random choice), every query still gets K results and
 * recall@K against brute force on the survivors stays within 0.02 of a
 * fresh build on them (30%: repaired, beyond: rebuilt); with a filter, K
 * results whenever K survivors are admitted.  M = 8 makes the graph sparse
 * enough for repairs to matter. */
static void heavy_remove_case(int kind, double frac) {
    vdx_index *ix = NULL, *fresh = NULL;
    if (kind == 0) {
        CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &fresh));
    } else {
        CHECK_OK(vdx_index_hnsw_sq_new(D, VDX_SQ_8BIT, 8, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_hnsw_sq_new(D, VDX_SQ_8BIT, 8, VDX_METRIC_L2, &fresh));
        CHECK_OK(vdx_index_train(ix, NB, xb));
    }
    if (!ix || !fresh) return;
    CHECK_OK(vdx_index_add(ix, NB, xb));
    float *u = malloc(NB * sizeof(float));
    test_rand_fill(u, NB, 99 + (uint64_t)(frac * 1000));
    uint8_t *bm = calloc(NB / 8 + 1, 1);
    float *rest = malloc(NB * D * sizeof(float));
    int64_t nrest = 0;
    for (int64_t i = 0; i < NB; i++) {
        if (u[i] < frac) bm[i >> 3] |= (uint8_t)(1 << (i & 7));
        else memcpy(rest + (nrest++) * D, xb + i * D, D * sizeof(float));
    }
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_bitmap(NB / 8 + 1, bm, &sel));
    int64_t nr = 0;
    CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
    CHECK(nr == NB - nrest && vdx_index_ntotal(ix) == nrest);
    float v[D];
    CHECK_OK(vdx_index_reconstruct(ix, nrest - 1, v));
    if (kind == 0) CHECK(!memcmp(v, rest + (nrest - 1) * D, sizeof v));
    if (kind == 1) CHECK_OK(vdx_index_train(fresh, NB, xb));
    CHECK_OK(vdx_index_add(fresh, nrest, rest));
    vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
    ground_truth(rest, nrest, xq, NQ, VDX_METRIC_L2, NULL, gt);
    float *dd = malloc(NQ * K * sizeof(float));
    vdx_idx_t *ii = malloc(NQ * K * sizeof(vdx_idx_t));
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.efSearch = 32;
    CHECK_OK(vdx_index_search(ix, NQ, xq, K, &p, dd, ii));
    int64_t short_q = 0;
    for (int64_t q = 0; q < NQ; q++) short_q += ii[q * K + K - 1] < 0;
    CHECK(short_q == 0);
    double rr = hnsw_recall(ix, xq, gt, 32), rf = hnsw_recall(fresh, xq, gt, 32);
    printf("  %s, %.0f%% removed (%lld left): recall@%d %.4f, fresh build "
           "%.4f, queries short of k: %lld\n",
           kind ? "HNSW8,SQ8" : "HNSW8", frac * 100, (long long)nrest, K, rr,
           rf, (long long)short_q);
    CHECK(rr >= rf - 0.02);
    /* a filter admitting every other survivor: K results while K exist */
    vdx_selector *odd = NULL;
    uint8_t *ob = calloc(NB / 8 + 1, 1);
    for (int64_t i = 1; i < nrest; i += 2) ob[i >> 3] |= (uint8_t)(1 << (i & 7));
    CHECK_OK(vdx_selector_bitmap(NB / 8 + 1, ob, &odd));
    p.sel = odd;
    CHECK_OK(vdx_index_search(ix, NQ, xq, K, &p, dd, ii));
    int64_t want = VDX_MIN(K, nrest / 2);
    for (int64_t q = 0; q < NQ; q++)
        for (int j = 0; j < K; j++) {
            vdx_idx_t id = ii[q * K + j];
            CHECK(j < want ? id >= 0 && id % 2 == 1 : id == -1);
        }
    vdx_selector_free(odd);
    free(ob);
    vdx_selector_free(sel);
    free(u);
    free(bm);
    free(rest);
    free(gt);
    free(dd);
    free(ii);
    vdx_index_free(ix);
    vdx_index_free(fresh);
}

static void test_heavy_remove(void) {
    /* one thread: the graphs (and so the recalls compared) are the same on
     * every run; with two, their interleaving moves recall by ~0.02 */
    const int saved = vdx_get_num_threads();
    vdx_set_num_threads(1);
    const double fr[4] = {0.3, 0.5, 0.9, 0.99};
    for (int i = 0; i < 4; i++) heavy_remove_case(0, fr[i]);
    heavy_remove_case(1, 0.9);
    vdx_set_num_threads(saved);
    /* identical vectors: 3000, of which 2700 are removed, then 2990 */
    const int64_t n = 3000;
    float *x = malloc((size_t)n * D * sizeof(float));
    for (int64_t i = 0; i < n; i++) memcpy(x + i * D, xb, D * sizeof(float));
    const int64_t cut[2] = {2700, 2990};
    for (int c = 0; c < 2; c++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_add(ix, n, x));
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_range(0, cut[c], &sel));
        int64_t nr = 0;
        CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
        CHECK(nr == cut[c] && vdx_index_ntotal(ix) == n - cut[c]);
        float dd[K];
        vdx_idx_t ii[K];
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 64;
        CHECK_OK(vdx_index_search(ix, 1, x, K, &p, dd, ii));
        int got = 0, distinct = 1;
        for (int j = 0; j < K; j++) {
            got += ii[j] >= 0 && ii[j] < n - cut[c] && dd[j] == 0.0f;
            for (int t = 0; t < j; t++) distinct &= ii[t] != ii[j];
        }
        printf("  %lld identical vectors, %lld removed: %d of %d results\n",
               (long long)n, (long long)cut[c], got, K);
        CHECK(got == K && distinct);
        /* a filter admitting 5 of the survivors: exactly those 5 */
        vdx_selector *five = NULL;
        CHECK_OK(vdx_selector_range(3, 8, &five));
        p.sel = five;
        CHECK_OK(vdx_index_search(ix, 1, x, K, &p, dd, ii));
        for (int j = 0; j < K; j++)
            CHECK(j < 5 ? ii[j] >= 3 && ii[j] < 8 : ii[j] == -1);
        vdx_selector_free(five);
        vdx_selector_free(sel);
        vdx_index_free(ix);
    }
    free(x);
    /* a graph cut into pieces (here: no links at all, the walk reaches the
     * entry point only) still gives K results, the exact top K */
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(D, 8, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_add(ix, 500, xb));
    vdx_hnsw *g = &((vdx_index_hnsw *)ix)->g;
    for (int64_t i = 0; i < g->n; i++)
        for (int l = 0; l <= g->levels[i]; l++) {
            int32_t *row = vdx_hnsw_row(g, i, l);
            row[0] = 0;
        }
    vdx_idx_t gt[K], ii[K];
    float dd[K];
    for (int q = 0; q < 4; q++) {
        ground_truth(xb, 500, xb + (2 * q + 1) * D, 1, VDX_METRIC_L2, NULL, gt);
        CHECK_OK(vdx_index_search(ix, 1, xb + (2 * q + 1) * D, K, NULL, dd, ii));
        for (int j = 0; j < K; j++) CHECK(ii[j] == gt[j]);
    }
    vdx_index_free(ix);
}

static void test_range_search(void) {
    for (int ip = 0; ip <= 1; ip++) {
        vdx_metric m = ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        const float *b = ip ? xbn : xb, *q = ip ? xqn : xq;
        vdx_index *ix = NULL, *f = NULL;
        CHECK_OK(vdx_index_hnsw_flat_new(D, 16, m, &ix));
        CHECK_OK(vdx_index_flat_new(D, m, &f));
        CHECK_OK(vdx_index_add(ix, NB, b));
        CHECK_OK(vdx_index_add(f, NB, b));
        /* a radius catching ~20 neighbours per query */
        float dd[30];
        vdx_idx_t ii[30];
        CHECK_OK(vdx_index_search(f, 1, q, 30, NULL, dd, ii));
        float radius = 0.5f * (dd[20] + dd[21]);
        vdx_range_result *rh = NULL, *rf = NULL;
        vdx_search_params rp;
        vdx_search_params_init(&rp);
        rp.efSearch = 128;
        CHECK_OK(vdx_index_range_search(ix, NQ, q, radius, &rp, &rh));
        CHECK_OK(vdx_index_range_search(f, NQ, q, radius, NULL, &rf));
        int64_t hit = 0, tot = rf->lims[NQ], extra = 0;
        for (int64_t qq = 0; qq < NQ; qq++) {
            for (int64_t a = rh->lims[qq]; a < rh->lims[qq + 1]; a++) {
                int found = 0;
                for (int64_t c = rf->lims[qq]; c < rf->lims[qq + 1]; c++)
                    if (rf->labels[c] == rh->labels[a]) {
                        found = 1;
                        CHECK(fabsf(rf->distances[c] - rh->distances[a]) <=
                              1e-4f * (1 + fabsf(rf->distances[c])));
                    }
                hit += found;
                extra += !found;
            }
        }
        printf("  range %s: %lld of %lld hits found\n", ip ? "IP" : "L2",
               (long long)hit, (long long)tot);
        CHECK(extra == 0);
        CHECK(tot > 0 && (double)hit >= 0.9 * (double)tot);
        vdx_range_result_free(rh);
        vdx_range_result_free(rf);
        vdx_index_free(ix);
        vdx_index_free(f);
    }
}

static void test_errors(void) {
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_hnsw_flat_new(D, 1, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_hnsw_flat_new(D, 100000, VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_hnsw_flat_new(0, 16, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_hnsw_sq_new(D, 99, 16, VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_hnsw_pq_new(D, 7, 16, 8, VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
    CHECK_OK(vdx_index_hnsw_flat_new(D, 16, VDX_METRIC_L2, &ix));
    vdx_idx_t ids[2] = {1, 2};
    CHECK_ERR(vdx_index_add_with_ids(ix, 2, xb, ids), VDX_ERR_UNSUPPORTED);
    CHECK_ERR(vdx_index_hnsw_set_ef_search(ix, 0), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_hnsw_set_ef_construction(ix, -3), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_hnsw_set_ef_search(ix, 33));
    CHECK(vdx_index_hnsw_ef_search(ix) == 33);
    CHECK_OK(vdx_index_hnsw_set_ef_construction(ix, 20));
    CHECK(vdx_index_hnsw_ef_construction(ix) == 20);
    vdx_index *f = NULL;
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &f));
    CHECK_ERR(vdx_index_hnsw_set_ef_search(f, 10), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_hnsw_storage(f) == NULL);
    CHECK(vdx_index_hnsw_storage(ix) != NULL);
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexHNSWFlat"));
    int lv;
    CHECK_ERR(vdx_index_hnsw_node_level(ix, 0, &lv), VDX_ERR_NOT_FOUND);
    /* empty index search: all -1 */
    float dd[K];
    vdx_idx_t ii[K];
    CHECK_OK(vdx_index_search(ix, 1, xq, K, NULL, dd, ii));
    CHECK(ii[0] == -1 && ii[K - 1] == -1);
    /* k larger than ntotal */
    CHECK_OK(vdx_index_add(ix, 5, xb));
    CHECK_OK(vdx_index_search(ix, 1, xq, K, NULL, dd, ii));
    CHECK(ii[4] >= 0 && ii[5] == -1);
    /* reset */
    CHECK_OK(vdx_index_reset(ix));
    CHECK(vdx_index_ntotal(ix) == 0 && vdx_index_hnsw_max_level(ix) == -1);
    CHECK(vdx_index_hnsw_ef_search(ix) == 33);
    vdx_index_free(f);
    vdx_index_free(ix);
}

static void test_factory(void) {
    static const struct { const char *s; const char *type; } cases[] = {
        {"HNSW32", "IndexHNSWFlat"},   {"HNSW32,Flat", "IndexHNSWFlat"},
        {"HNSW32_Flat", "IndexHNSWFlat"}, {"HNSW16,SQ8", "IndexHNSWSQ"},
        {"HNSW32_SQ8", "IndexHNSWSQ"}, {"HNSW32,PQ16", "IndexHNSWPQ"},
        {"HNSW32_PQ16", "IndexHNSWPQ"}, {"IDMap,HNSW8", "IndexIDMap"},
        {"IVF64_HNSW32,Flat", "IndexIVFFlat"},
        {"IVF64_HNSW16,PQ8", "IndexIVFPQ"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(D, cases[i].s, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK(!strcmp(vdx_index_type_name(ix), cases[i].type));
        if (vdx_index_is_hnsw(ix))
            CHECK(vdx_index_hnsw_M(ix) == atoi(cases[i].s + 4));
        if (vdx_index_is_ivf(ix))
            CHECK(vdx_index_is_hnsw(vdx_index_ivf_quantizer(ix)));
        vdx_index_free(ix);
    }
    /* a bare "HNSW" / "IVFn_HNSW" means M=32, as in FAISS */
    const char *dflt[] = {"HNSW", "IVF64_HNSW,Flat"};
    for (size_t i = 0; i < 2; i++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(D, dflt[i], VDX_METRIC_L2, &ix));
        if (!ix) continue;
        const vdx_index *h = vdx_index_is_ivf(ix) ? vdx_index_ivf_quantizer(ix) : ix;
        CHECK(vdx_index_is_hnsw(h) && vdx_index_hnsw_M(h) == 32);
        vdx_index_free(ix);
    }
    const char *bad[] = {"HNSW0", "HNSW32,", "HNSW32_", "HNSW32,IVF4,Flat",
                         "HNSW32x", "Flat,HNSW32"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vdx_index *ix = NULL;
        CHECK_ERR(vdx_index_factory(D, bad[i], VDX_METRIC_L2, &ix),
                  VDX_ERR_INVALID_ARGUMENT);
        CHECK(ix == NULL);
    }
    /* IVF with an HNSW quantizer trains (k-means, then the centroids go
     * into the graph) and searches */
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(D, "IVF64_HNSW16,Flat", VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_train(ix, NB, xb));
    CHECK(vdx_index_ntotal(vdx_index_ivf_quantizer(ix)) == 64);
    CHECK_OK(vdx_index_add(ix, NB, xb));
    CHECK_OK(vdx_index_ivf_set_nprobe(ix, 32));
    vdx_idx_t *gt = malloc(NQ * K * sizeof(vdx_idx_t));
    ground_truth(xb, NB, xq, NQ, VDX_METRIC_L2, NULL, gt);
    double r = hnsw_recall(ix, xq, gt, 0);
    printf("  IVF64_HNSW16,Flat nprobe=32: recall@10 %.3f\n", r);
    CHECK(r >= 0.9);
    free(gt);
    vdx_index_free(ix);
}

int main(void) {
    xb = malloc(NB * D * sizeof(float));
    xq = malloc(NQ * D * sizeof(float));
    xbn = malloc(NB * D * sizeof(float));
    xqn = malloc(NQ * D * sizeof(float));
    make_data(xb, NB, 1);
    make_data(xq, NQ, 2);
    memcpy(xbn, xb, NB * D * sizeof(float));
    memcpy(xqn, xq, NQ * D * sizeof(float));
    /* centre before normalising so inner products discriminate */
    for (int64_t i = 0; i < NB * D; i++) xbn[i] -= 0.5f;
    for (int64_t i = 0; i < NQ * D; i++) xqn[i] -= 0.5f;
    normalise(xbn, NB);
    normalise(xqn, NQ);
    RUN(test_flat_recall);
    RUN(test_walks_agree);
    RUN(test_sq_pq_recall);
    RUN(test_determinism_and_batches);
    RUN(test_filters);
    RUN(test_remove);
    RUN(test_heavy_remove);
    RUN(test_range_search);
    RUN(test_errors);
    RUN(test_factory);
    free(xb);
    free(xq);
    free(xbn);
    free(xqn);
    return TEST_SUMMARY();
}
