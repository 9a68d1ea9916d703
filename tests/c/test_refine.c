/* test_refine.c — IndexRefine / IndexRefineFlat: exact re-ranking, k_factor
 * and per-call params, ownership, files, factory strings, bad inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

enum { N = 400, D = 16, NQ = 20, K = 5 };

static float xb[N * D], xq[NQ * D];

static void exact(vdx_metric m, float *Dd, int64_t *I, int64_t k) {
    vdx_index *f = NULL;
    CHECK_OK(vdx_index_flat_new(D, m, &f));
    CHECK_OK(vdx_index_add(f, N, xb));
    CHECK_OK(vdx_index_search(f, NQ, xq, k, NULL, Dd, I));
    vdx_index_free(f);
}

static void test_exact_when_covered(void) {
    for (int mi = 0; mi < 2; mi++) {
        vdx_metric m = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *pq = NULL, *r = NULL;
        CHECK_OK(vdx_index_pq_new(D, 4, 4, m, &pq));
        CHECK_OK(vdx_index_refine_flat_new(pq, &r));
        CHECK(!strcmp(vdx_index_type_name(r), "IndexRefineFlat"));
        CHECK(vdx_index_refine_base(r) == pq);
        CHECK(vdx_index_refine_k_factor(r) == 1.0f);
        CHECK(!vdx_index_is_trained(r));
        CHECK_OK(vdx_index_train(r, N, xb));
        CHECK(vdx_index_is_trained(r));
        CHECK_OK(vdx_index_add(r, N, xb));
        CHECK(vdx_index_ntotal(r) == N);
        CHECK(vdx_index_ntotal(vdx_index_refine_refine(r)) == N);
        float De[NQ * K], Dr[NQ * K];
        int64_t Ie[NQ * K], Ir[NQ * K];
        exact(m, De, Ie, K);
        /* k * k_factor = N covers everything: exact results */
        CHECK_OK(vdx_index_refine_set_k_factor(r, (float)N / K));
        CHECK_OK(vdx_index_search(r, NQ, xq, K, NULL, Dr, Ir));
        for (int i = 0; i < NQ * K; i++) {
            CHECK(Ir[i] == Ie[i]);
            CHECK(fabsf(Dr[i] - De[i]) < 1e-4f * (1 + fabsf(De[i])));
        }
        /* per-call k_factor overrides the index's */
        CHECK_OK(vdx_index_refine_set_k_factor(r, 1.0f));
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.k_factor = (float)N / K;
        memset(Ir, 0, sizeof Ir);
        CHECK_OK(vdx_index_search(r, NQ, xq, K, &p, Dr, Ir));
        for (int i = 0; i < NQ * K; i++) CHECK(Ir[i] == Ie[i]);
        /* k_factor 1: sorted, distances exact for the labels returned */
        CHECK_OK(vdx_index_search(r, NQ, xq, K, NULL, Dr, Ir));
        for (int q = 0; q < NQ; q++)
            for (int j = 1; j < K; j++)
                CHECK(mi ? Dr[q * K + j - 1] >= Dr[q * K + j]
                         : Dr[q * K + j - 1] <= Dr[q * K + j]);
        /* base_params with a selector reach the base search */
        vdx_selector *s;
        CHECK_OK(vdx_selector_range(100, 200, &s));
        vdx_search_params bp;
        vdx_search_params_init(&bp);
        bp.sel = s;
        p.base_params = &bp;
        CHECK_OK(vdx_index_search(r, NQ, xq, K, &p, Dr, Ir));
        for (int i = 0; i < NQ * K; i++) CHECK(Ir[i] >= 100 && Ir[i] < 200);
        vdx_selector_free(s);
        /* k larger than ntotal pads */
        float Dp[N + 3];
        int64_t Ip[N + 3];
        CHECK_OK(vdx_index_search(r, 1, xq, N + 3, NULL, Dp, Ip));
        CHECK(Ip[N] == -1 && Ip[N + 2] == -1 && Ip[N - 1] >= 0);
        CHECK(Dp[N] == (mi ? -FLT_MAX : FLT_MAX));
        /* reconstruct from the refine index */
        float v[D];
        CHECK_OK(vdx_index_reconstruct(r, 7, v));
        CHECK(!memcmp(v, xb + 7 * D, sizeof v));
        /* serialization round trip */
        uint8_t *buf;
        size_t sz;
        CHECK_OK(vdx_index_refine_set_k_factor(r, 2.5f));
        CHECK_OK(vdx_serialize_index(r, &buf, &sz));
        CHECK(!memcmp(buf, "IxRF", 4));
        vdx_index *r2 = NULL;
        CHECK_OK(vdx_deserialize_index(buf, sz, &r2));
        CHECK(r2 && !strcmp(vdx_index_type_name(r2), "IndexRefineFlat"));
        CHECK(vdx_index_refine_k_factor(r2) == 2.5f);
        float D1[NQ * K], D2[NQ * K];
        int64_t I1[NQ * K], I2[NQ * K];
        CHECK_OK(vdx_index_search(r, NQ, xq, K, NULL, D1, I1));
        CHECK_OK(vdx_index_search(r2, NQ, xq, K, NULL, D2, I2));
        CHECK(!memcmp(I1, I2, sizeof I1) && !memcmp(D1, D2, sizeof D1));
        /* truncated files fail cleanly */
        for (size_t cut = 0; cut < sz; cut += sz / 7 + 1) {
            vdx_index *bad = NULL;
            CHECK(vdx_deserialize_index(buf, cut, &bad) != VDX_OK);
            CHECK(bad == NULL);
        }
        vdx_index_free(r2);
        CHECK_ERR(vdx_deserialize_index(buf, sz - 1, &r2), VDX_ERR_FORMAT);
        CHECK(r2 == NULL);
        vdx_free_buffer(buf);
        /* remove_ids on both (PQ + flat compact in order) */
        int64_t nr = 0;
        CHECK_OK(vdx_selector_range(0, 10, &s));
        CHECK_OK(vdx_index_remove_ids(r, s, &nr));
        CHECK(nr == 10 && vdx_index_ntotal(r) == N - 10);
        vdx_selector_free(s);
        CHECK_OK(vdx_index_reset(r));
        CHECK(vdx_index_ntotal(r) == 0);
        CHECK(vdx_index_ntotal(pq) == 0);
        vdx_index_free(r);
    }
}

static void test_refine_sq(void) {
    /* IndexRefine with a non-flat refine index (reconstruct path) */
    vdx_index *pq = NULL, *sq = NULL, *r = NULL;
    CHECK_OK(vdx_index_pq_new(D, 4, 4, VDX_METRIC_L2, &pq));
    CHECK_OK(vdx_index_sq_new(D, VDX_SQ_FP16, VDX_METRIC_L2, &sq));
    CHECK_OK(vdx_index_refine_new(pq, sq, &r));
    CHECK(!strcmp(vdx_index_type_name(r), "IndexRefine"));
    CHECK_OK(vdx_index_train(r, N, xb));
    CHECK_OK(vdx_index_add(r, N, xb));
    float De[NQ * K], Dr[NQ * K];
    int64_t Ie[NQ * K], Ir[NQ * K];
    exact(VDX_METRIC_L2, De, Ie, K);
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.k_factor = (float)N / K;
    CHECK_OK(vdx_index_search(r, NQ, xq, K, &p, Dr, Ir));
    int same = 0;
    for (int i = 0; i < NQ * K; i++) {
        same += Ir[i] == Ie[i];
        CHECK(fabsf(Dr[i] - De[i]) < 1e-2f * (1 + De[i]));
    }
    CHECK(same >= NQ * K * 9 / 10);
    /* file: stays IndexRefine */
    uint8_t *buf;
    size_t sz;
    CHECK_OK(vdx_serialize_index(r, &buf, &sz));
    vdx_index *r2 = NULL;
    CHECK_OK(vdx_deserialize_index(buf, sz, &r2));
    CHECK(r2 && !strcmp(vdx_index_type_name(r2), "IndexRefine"));
    vdx_free_buffer(buf);
    vdx_index_free(r2);
    vdx_index_free(r);
}

/* Over fast-scan bases (which return approximate distances to
 * IndexRefine: candidates_only), the result is the exact re-ranking of the
 * candidate set the base returns to a plain search with k * k_factor. */
static void test_fastscan_base(void) {
    const char *descs[2] = {"PQ8x4fs,RFlat", "IVF4,PQ8x4fs,RFlat"};
    enum { KF = 3, KB = K * KF };
    for (int di = 0; di < 2; di++)
        for (int mi = 0; mi < 2; mi++) {
            vdx_metric m = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
            vdx_index *r = NULL;
            CHECK_OK(vdx_index_factory(D, descs[di], m, &r));
            CHECK_OK(vdx_index_train(r, N, xb));
            CHECK_OK(vdx_index_add(r, N, xb));
            if (di) CHECK_OK(vdx_index_ivf_set_nprobe(vdx_index_refine_base(r), 2));
            vdx_search_params p;
            vdx_search_params_init(&p);
            p.k_factor = KF;
            float Dr[NQ * K], Db[NQ * KB];
            int64_t Ir[NQ * K], Ib[NQ * KB];
            CHECK_OK(vdx_index_search(r, NQ, xq, K, &p, Dr, Ir));
            CHECK_OK(vdx_index_search(vdx_index_refine_base(r), NQ, xq, KB,
                                      NULL, Db, Ib));
            for (int q = 0; q < NQ; q++) {
                /* exact keys of the base's candidates, best K by selection */
                float key[KB];
                for (int j = 0; j < KB; j++) {
                    key[j] = INFINITY;
                    if (Ib[q * KB + j] < 0) continue;
                    const float *v = xb + Ib[q * KB + j] * D, *u = xq + q * D;
                    float e = 0;
                    for (int t = 0; t < D; t++)
                        e += mi ? -u[t] * v[t] : (u[t] - v[t]) * (u[t] - v[t]);
                    key[j] = e;
                }
                for (int j = 0; j < K; j++) {
                    int b = 0;
                    for (int t = 1; t < KB; t++) b = key[t] < key[b] ? t : b;
                    float want = mi ? -key[b] : key[b];
                    CHECK(fabsf(Dr[q * K + j] - want) <= 1e-4f * (1 + fabsf(want)));
                    key[b] = INFINITY;
                }
            }
            vdx_index_free(r);
        }
}

static void test_factory(void) {
    static const struct { const char *s, *tn, *base, *ref; } cases[] = {
        {"PQ4x4,RFlat", "IndexRefineFlat", "IndexPQ", "IndexFlat"},
        {"SQ8,Refine(Flat)", "IndexRefine", "IndexScalarQuantizer", "IndexFlat"},
        {"IVF4,PQ4x4,Refine(SQfp16)", "IndexRefine", "IndexIVFPQ",
         "IndexScalarQuantizer"},
        {"IVF4,Flat,RFlat", "IndexRefineFlat", "IndexIVFFlat", "IndexFlat"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(D, cases[i].s, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK(!strcmp(vdx_index_type_name(ix), cases[i].tn));
        CHECK(!strcmp(vdx_index_type_name(vdx_index_refine_base(ix)), cases[i].base));
        const char *rn = vdx_index_type_name(vdx_index_refine_refine(ix));
        CHECK(!strncmp(rn, cases[i].ref, strlen(cases[i].ref)));
        CHECK_OK(vdx_index_train(ix, N, xb));
        CHECK_OK(vdx_index_add(ix, N, xb));
        float Dd[K];
        int64_t I[K];
        CHECK_OK(vdx_index_search(ix, 1, xb + 3 * D, K, NULL, Dd, I));
        CHECK(I[0] == 3);
        vdx_index_free(ix);
    }
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_factory(D, "PQ4,Refine(Bogus)", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_factory(D, "Bogus,RFlat", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_factory(D, ",RFlat", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
}

static void test_bad(void) {
    vdx_index *a = NULL, *b = NULL, *r = NULL, *c = NULL;
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &a));
    CHECK_OK(vdx_index_flat_new(D + 1, VDX_METRIC_L2, &b));
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_INNER_PRODUCT, &c));
    CHECK_ERR(vdx_index_refine_new(a, b, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_new(a, c, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_new(a, a, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_new(NULL, a, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_new(a, a, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_flat_new(NULL, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    vdx_index_free(b);
    vdx_index_free(c);
    /* non-empty base for RefineFlat; ntotal mismatch for Refine */
    CHECK_OK(vdx_index_add(a, N, xb));
    CHECK_ERR(vdx_index_refine_flat_new(a, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &b));
    CHECK_ERR(vdx_index_refine_new(a, b, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_add(b, N, xb));
    /* equal ntotal: accepted, and owns both (freed with r) */
    CHECK_OK(vdx_index_refine_new(a, b, &r));
    CHECK(vdx_index_ntotal(r) == N);
    CHECK_ERR(vdx_index_refine_set_k_factor(r, 0.5f), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_set_k_factor(r, NAN), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_refine_set_k_factor(a, 2.0f), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_refine_k_factor(a) == 0.0f);
    CHECK(vdx_index_refine_base(a) == NULL && vdx_index_refine_refine(NULL) == NULL);
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.k_factor = 0.5f;
    float Dd[K];
    int64_t I[K];
    CHECK_ERR(vdx_index_search(r, 1, xq, K, &p, Dd, I), VDX_ERR_INVALID_ARGUMENT);
    int64_t ids[2] = {1, 2};
    CHECK_ERR(vdx_index_add_with_ids(r, 2, xb, ids), VDX_ERR_UNSUPPORTED);
    CHECK(vdx_index_ntotal(r) == N);
    vdx_index_free(r);
    /* untrained base: search refused */
    CHECK_OK(vdx_index_pq_new(D, 4, 4, VDX_METRIC_L2, &a));
    CHECK_OK(vdx_index_refine_flat_new(a, &r));
    CHECK_ERR(vdx_index_search(r, 1, xq, K, NULL, Dd, I), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_add(r, 1, xq), VDX_ERR_NOT_TRAINED);
    vdx_index_free(r);
    vdx_index_free(NULL);
}

/* range_search: the base runs with radius * k_factor, its hits get exact
 * distances from the refine index and those outside radius are dropped
 * (FAISS's IndexRefine::range_search).  Checked against the base's own
 * range search and brute-force distances. */
static void check_range(vdx_index *r, vdx_metric m, float radius, float kf,
                        int exact_refine) {
    int is_ip = m == VDX_METRIC_INNER_PRODUCT;
    CHECK_OK(vdx_index_refine_set_k_factor(r, kf));
    vdx_range_result *rr = NULL, *rb = NULL;
    CHECK_OK(vdx_index_range_search(r, NQ, xq, radius, NULL, &rr));
    CHECK_OK(vdx_index_range_search(vdx_index_refine_base(r), NQ, xq,
                                    radius * kf, NULL, &rb));
    if (!rr || !rb) {
        vdx_range_result_free(rr);
        vdx_range_result_free(rb);
        return;
    }
    int64_t total = 0;
    for (int q = 0; q < NQ; q++) {
        /* expected: the base's hits whose exact distance is within radius */
        int64_t want = 0;
        for (int64_t j = rb->lims[q]; j < rb->lims[q + 1]; j++) {
            const float *v = xb + rb->labels[j] * D, *u = xq + q * D;
            double e = 0;
            for (int t = 0; t < D; t++)
                e += is_ip ? (double)u[t] * v[t]
                           : ((double)u[t] - v[t]) * ((double)u[t] - v[t]);
            if (is_ip ? e > radius : e < radius) want++;
        }
        /* an approximate refine index (fp16) may differ at the boundary */
        if (exact_refine)
            CHECK(rr->lims[q + 1] - rr->lims[q] == want);
        else
            CHECK(rr->lims[q + 1] - rr->lims[q] <= rb->lims[q + 1] - rb->lims[q]);
        for (int64_t j = rr->lims[q]; j < rr->lims[q + 1]; j++) {
            const float *v = xb + rr->labels[j] * D, *u = xq + q * D;
            double e = 0;
            for (int t = 0; t < D; t++)
                e += is_ip ? (double)u[t] * v[t]
                           : ((double)u[t] - v[t]) * ((double)u[t] - v[t]);
            CHECK(fabs(e - rr->distances[j]) < (exact_refine ? 1e-4 : 1e-2) * (1 + fabs(e)));
            CHECK(is_ip ? rr->distances[j] > radius
                        : rr->distances[j] < radius);
        }
        total += want;
    }
    CHECK(total > 0 && total < (int64_t)NQ * N); /* not vacuous */
    vdx_range_result_free(rr);
    vdx_range_result_free(rb);
}

static void test_range_search(void) {
    for (int mi = 0; mi < 2; mi++) {
        vdx_metric m = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *sq = NULL, *r = NULL;
        CHECK_OK(vdx_index_sq_new(D, VDX_SQ_4BIT, m, &sq));
        CHECK_OK(vdx_index_refine_flat_new(sq, &r));
        CHECK_OK(vdx_index_train(r, N, xb));
        CHECK_OK(vdx_index_add(r, N, xb));
        /* uniform [0,1) data: E[ip] = D / 4, E[l2] = D / 6 */
        float radius = mi ? (float)D / 4 : (float)D / 6;
        check_range(r, m, radius, 1.0f, 1);
        /* k_factor >= 1 only narrows a positive similarity radius */
        check_range(r, m, radius, mi ? 1.0f : 2.0f, 1);
        vdx_index_free(r);
    }
    /* a refine index that reconstructs (SQ fp16) */
    vdx_index *pq = NULL, *sq = NULL, *r = NULL;
    CHECK_OK(vdx_index_sq_new(D, VDX_SQ_8BIT, VDX_METRIC_L2, &pq));
    CHECK_OK(vdx_index_sq_new(D, VDX_SQ_FP16, VDX_METRIC_L2, &sq));
    CHECK_OK(vdx_index_refine_new(pq, sq, &r));
    CHECK_OK(vdx_index_train(r, N, xb));
    CHECK_OK(vdx_index_add(r, N, xb));
    check_range(r, VDX_METRIC_L2, (float)D / 6, 1.5f, 0);
    vdx_index_free(r);
}

int main(void) {
    test_rand_fill(xb, sizeof xb / sizeof xb[0], 11);
    test_rand_fill(xq, sizeof xq / sizeof xq[0], 12);
    RUN(test_exact_when_covered);
    RUN(test_refine_sq);
    RUN(test_fastscan_base);
    RUN(test_factory);
    RUN(test_range_search);
    RUN(test_bad);
    return TEST_SUMMARY();
}
