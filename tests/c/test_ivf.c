/* test_ivf.c — IndexIVFFlat against brute force (flat index computed
 * independently in test_flat): exhaustive probing equals exact search,
 * partial probing keeps recall, filters, removal, reconstruct, range search,
 * bad inputs. */
#include "test.h"

enum { D = 16, NB = 6000, NQ = 50, NQL = 200, NLIST = 32 };

static float xb[NB * D], xq[NQL * D]; /* NQL queries take the list-major path */

static vdx_index *make_ivf(vdx_metric m, int64_t nlist) {
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(D, m, &q));
    CHECK_OK(vdx_index_ivf_flat_new(q, D, nlist, m, &ix));
    CHECK(!vdx_index_is_trained(ix));
    CHECK_OK(vdx_index_train(ix, NB, xb));
    CHECK(vdx_index_is_trained(ix));
    CHECK_OK(vdx_index_add(ix, NB, xb));
    return ix;
}

static double exact_key(const float *a, const float *b, int ip) {
    double s = 0;
    for (int t = 0; t < D; t++) s += ip ? (double)a[t] * b[t] : ((double)a[t] - b[t]) * ((double)a[t] - b[t]);
    return ip ? -s : s;
}

static void test_exhaustive_equals_exact(void) {
    for (int ip = 0; ip < 2; ip++) {
        vdx_metric m = ip ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *ix = make_ivf(m, NLIST), *flat = NULL;
        CHECK_OK(vdx_index_flat_new(D, m, &flat));
        CHECK_OK(vdx_index_add(flat, NB, xb));
        int64_t k = 10, total = 0;
        for (int64_t l = 0; l < NLIST; l++) total += vdx_index_ivf_list_size(ix, l);
        CHECK(total == NB && vdx_index_ntotal(ix) == NB);
        static float D1[NQL * 10], D2[NQL * 10];
        static int64_t I1[NQL * 10], I2[NQL * 10];
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.nprobe = NLIST;
        int bad = 0;
        CHECK_OK(vdx_index_search(flat, NQL, xq, k, NULL, D2, I2));
        for (int nq = NQ; nq <= NQL; nq += NQL - NQ) {
        CHECK_OK(vdx_index_search(ix, nq, xq, k, &p, D1, I1));
        for (int i = 0; i < nq * 10; i++)
            if (I1[i] != I2[i] &&
                fabs(exact_key(xq + (i / 10) * D, xb + I1[i] * D, ip) -
                     exact_key(xq + (i / 10) * D, xb + I2[i] * D, ip)) > 1e-4)
                bad++;
        for (int i = 0; i < nq * 10; i++) bad += fabs(D1[i] - D2[i]) > 1e-4 * (1 + fabs(D2[i]));
        }
        CHECK(bad == 0);
        /* single query path (probes split over threads) gives the same */
        CHECK_OK(vdx_index_search(ix, 1, xq, k, &p, D1, I1));
        for (int j = 0; j < 10; j++) CHECK(I1[j] == I2[j] || fabs(D1[j] - D2[j]) < 1e-4);
        /* fewer probes: still a decent recall@10 on this easy data */
        p.nprobe = 8;
        CHECK_OK(vdx_index_search(ix, NQ, xq, k, &p, D1, I1));
        int hit = 0;
        for (int q = 0; q < NQ; q++)
            for (int a = 0; a < 10; a++)
                for (int b = 0; b < 10; b++) hit += I1[q * 10 + a] == I2[q * 10 + b];
        CHECK(hit > NQ * 10 * 0.6);
        vdx_index_free(ix);
        vdx_index_free(flat);
    }
}

static void test_filter_and_remove(void) {
    vdx_index *ix = make_ivf(VDX_METRIC_L2, NLIST);
    /* 1% of the ids */
    int64_t ids[60];
    for (int i = 0; i < 60; i++) ids[i] = i * 100 + 7;
    vdx_selector *s;
    CHECK_OK(vdx_selector_batch(60, ids, &s));
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.sel = s;
    p.nprobe = NLIST;
    static float Dd[NQL * 10];
    static int64_t I[NQL * 10];
    for (int nq = 1; nq <= NQL; nq += NQL - 1) {
        CHECK_OK(vdx_index_search(ix, nq, xq, 10, &p, Dd, I));
        int bad = 0;
        for (int i = 0; i < nq * 10; i++) bad += I[i] < 0 || I[i] % 100 != 7;
        CHECK(bad == 0); /* k results, all admitted */
    }
    /* max_codes limits the work: with a budget of 1, one list is scanned */
    p.sel = NULL;
    p.nprobe = 4;
    p.max_codes = 1;
    CHECK_OK(vdx_index_search(ix, 1, xq, 10, &p, Dd, I));
    int64_t l0;
    CHECK_OK(vdx_index_ivf_assign(ix, 1, xq, &l0));
    int64_t *lids = malloc(sizeof(int64_t) * NB);
    CHECK_OK(vdx_index_ivf_list_ids(ix, l0, lids));
    int64_t ls = vdx_index_ivf_list_size(ix, l0);
    for (int j = 0; j < 10 && I[j] >= 0; j++) {
        int in = 0;
        for (int64_t u = 0; u < ls; u++) in |= lids[u] == I[j];
        CHECK(in);
    }
    free(lids);
    int64_t nr;
    CHECK_OK(vdx_index_remove_ids(ix, s, &nr));
    CHECK(nr == 60 && vdx_index_ntotal(ix) == NB - 60);
    p.sel = NULL;
    p.max_codes = 0;
    p.nprobe = NLIST;
    CHECK_OK(vdx_index_search(ix, NQ, xq, 10, &p, Dd, I));
    int bad = 0;
    for (int i = 0; i < NQ * 10; i++) bad += I[i] % 100 == 7 && I[i] < 6000;
    CHECK(bad == 0);
    vdx_selector_free(s);
    vdx_index_free(ix);
}

static void test_reconstruct_range(void) {
    vdx_index *ix = make_ivf(VDX_METRIC_L2, NLIST);
    float out[D * 5];
    CHECK_ERR(vdx_index_reconstruct(ix, 5, out), VDX_ERR_UNSUPPORTED);
    CHECK_OK(vdx_index_ivf_make_direct_map(ix, 1));
    CHECK_OK(vdx_index_reconstruct(ix, 1234, out));
    CHECK(!memcmp(out, xb + 1234 * D, sizeof(float) * D));
    CHECK_ERR(vdx_index_reconstruct(ix, NB, out), VDX_ERR_NOT_FOUND);
    CHECK_OK(vdx_index_reconstruct_n(ix, 100, 5, out));
    CHECK(!memcmp(out, xb + 100 * D, sizeof(float) * D * 5));
    /* adding keeps the direct map up to date */
    CHECK_OK(vdx_index_add(ix, 1, xq));
    CHECK_OK(vdx_index_reconstruct(ix, NB, out));
    CHECK(!memcmp(out, xq, sizeof(float) * D));
    int64_t one = 3;
    CHECK_ERR(vdx_index_add_with_ids(ix, 1, xq, &one), VDX_ERR_UNSUPPORTED);
    vdx_selector *s;
    CHECK_OK(vdx_selector_range(0, 10, &s));
    CHECK_ERR(vdx_index_remove_ids(ix, s, NULL), VDX_ERR_UNSUPPORTED);
    CHECK_OK(vdx_index_ivf_make_direct_map(ix, 0));
    CHECK_OK(vdx_index_remove_ids(ix, s, NULL));
    vdx_selector_free(s);
    /* range search with all lists probed = brute force */
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.nprobe = NLIST;
    vdx_range_result *r;
    float radius = 0.35f;
    CHECK_OK(vdx_index_range_search(ix, 5, xq, radius, &p, &r));
    int bad = 0;
    for (int q = 0; q < 5; q++) {
        int64_t cnt = 0;
        for (int64_t j = 10; j < NB; j++) {
            double dd = exact_key(xq + q * D, xb + j * D, 0);
            if (fabs(dd - radius) < 1e-5) continue;
            cnt += dd < radius;
        }
        int64_t got = r->lims[q + 1] - r->lims[q];
        for (int64_t u = r->lims[q]; u < r->lims[q + 1]; u++) bad += r->labels[u] < 10;
        bad += got < cnt || got > cnt + 2;
    }
    CHECK(bad == 0);
    vdx_range_result_free(r);
    vdx_index_free(ix);
}

static void test_bad_inputs(void) {
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(D + 1, VDX_METRIC_L2, &q));
    CHECK_ERR(vdx_index_ivf_flat_new(q, D, NLIST, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "d=17") != NULL);
    vdx_index_free(q);
    CHECK_OK(vdx_index_flat_new(D, VDX_METRIC_L2, &q));
    CHECK_ERR(vdx_index_ivf_flat_new(q, D, 0, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_ivf_flat_new(q, D, NLIST, VDX_METRIC_L2, &ix));
    float Dd[10];
    int64_t I[10];
    CHECK_ERR(vdx_index_add(ix, 10, xb), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_search(ix, 1, xq, 10, NULL, Dd, I), VDX_ERR_NOT_TRAINED);
    CHECK_ERR(vdx_index_train(ix, NLIST - 1, xb), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "nlist=32") != NULL);
    CHECK_OK(vdx_index_train(ix, NB, xb));
    CHECK_OK(vdx_index_add(ix, 5, xb));
    CHECK_OK(vdx_index_ivf_set_nprobe(ix, 1000));
    CHECK(vdx_index_ivf_nprobe(ix) == NLIST); /* clamped */
    CHECK_ERR(vdx_index_ivf_set_nprobe(ix, -1), VDX_ERR_INVALID_ARGUMENT);
    /* 0 is accepted (FAISS) and refused by a search, which writes nothing */
    CHECK_OK(vdx_index_ivf_set_nprobe(ix, 0));
    I[0] = 12345;
    CHECK_ERR(vdx_index_search(ix, 1, xb, 10, NULL, Dd, I),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "nprobe=0") != NULL && I[0] == 12345);
    CHECK_OK(vdx_index_ivf_set_nprobe(ix, 1000));
    CHECK_OK(vdx_index_search(ix, 1, xb, 10, NULL, Dd, I)); /* k > ntotal */
    CHECK(I[0] == 0 && I[5] == -1 && Dd[5] == FLT_MAX);
    CHECK(vdx_index_ivf_nlist(ix) == NLIST && vdx_index_ivf_quantizer(ix) != NULL);
    CHECK(vdx_index_ivf_list_size(ix, NLIST) == -1);
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexIVFFlat"));
    vdx_index_free(ix);
}

/* The process-wide counters (vdx_ivf_stats) against counts made here from
 * the probed lists: each search path (probes split over threads for one
 * query, one query per thread, list-major for many), with a selector (its
 * rejects are not scored), with max_codes, and range search. */
static void expect_counts(vdx_index *ix, int64_t n, int64_t np,
                          const vdx_selector *sel, int64_t max_codes,
                          int64_t *nlist, int64_t *ndis) {
    vdx_index *q = vdx_index_ivf_quantizer(ix);
    static float cd[NQL * NLIST];
    static int64_t cl[NQL * NLIST];
    static int64_t ids[NB];
    CHECK_OK(vdx_index_search(q, n, xq, np, NULL, cd, cl));
    *nlist = *ndis = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t scanned = 0;
        for (int64_t j = 0; j < np; j++) {
            int64_t l = cl[i * np + j], ls = vdx_index_ivf_list_size(ix, l);
            if (max_codes && scanned >= max_codes) break;
            int64_t use = max_codes && max_codes - scanned < ls ? max_codes - scanned : ls;
            scanned += use;
            if (!ls) continue;
            ++*nlist;
            CHECK_OK(vdx_index_ivf_list_ids(ix, l, ids));
            for (int64_t e = 0; e < use; e++)
                *ndis += !sel || vdx_selector_is_member(sel, ids[e]);
        }
    }
}

static void test_stats(void) {
    vdx_index *ix = make_ivf(VDX_METRIC_L2, NLIST);
    static float D1[NQL * 10];
    static int64_t I1[NQL * 10];
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.nprobe = 8;
    vdx_selector *half;
    CHECK_OK(vdx_selector_range(0, NB / 2, &half));
    vdx_ivf_stats st;
    CHECK_ERR(vdx_ivf_stats_get(NULL), VDX_ERR_INVALID_ARGUMENT);
    const int64_t ns[3] = {1, NQ, NQL};
    for (int c = 0; c < 3 * 3; c++) {
        int64_t n = ns[c % 3], nlist, ndis;
        p.sel = c / 3 == 1 ? half : NULL;
        p.max_codes = c / 3 == 2 ? 300 : 0;
        expect_counts(ix, n, p.nprobe, p.sel, p.max_codes, &nlist, &ndis);
        vdx_ivf_stats_reset();
        CHECK_OK(vdx_index_search(ix, n, xq, 10, &p, D1, I1));
        CHECK_OK(vdx_ivf_stats_get(&st));
        CHECK(st.nq == n);
        CHECK(st.nlist == nlist);
        CHECK(st.ndis == ndis);
        if (p.max_codes && !p.sel) CHECK(st.ndis <= n * p.max_codes);
        CHECK(st.nheap_updates >= 10 * n && st.nheap_updates <= st.ndis);
        CHECK(st.search_time >= st.quantization_time && st.quantization_time >= 0);
        /* counts add up over calls until a reset */
        CHECK_OK(vdx_index_search(ix, n, xq, 10, &p, D1, I1));
        CHECK_OK(vdx_ivf_stats_get(&st));
        CHECK(st.nq == 2 * n && st.ndis == 2 * ndis);
    }
    vdx_ivf_stats_reset();
    CHECK_OK(vdx_ivf_stats_get(&st));
    CHECK(st.nq == 0 && st.nlist == 0 && st.ndis == 0 && st.nheap_updates == 0 &&
          st.search_time == 0);
    /* range search scores every entry of the probed lists */
    int64_t nlist, ndis;
    p.sel = NULL;
    p.max_codes = 0;
    expect_counts(ix, NQ, p.nprobe, NULL, 0, &nlist, &ndis);
    vdx_range_result *rr = NULL;
    CHECK_OK(vdx_index_range_search(ix, NQ, xq, 1.0f, &p, &rr));
    vdx_range_result_free(rr);
    CHECK_OK(vdx_ivf_stats_get(&st));
    CHECK(st.nq == NQ && st.nlist == nlist && st.ndis == ndis);
    /* a refused search counts nothing */
    vdx_ivf_stats_reset();
    CHECK_ERR(vdx_index_search(ix, NQ, xq, 0, &p, D1, I1), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_ivf_stats_get(&st));
    CHECK(st.nq == 0 && st.ndis == 0);
    vdx_selector_free(half);
    vdx_index_free(ix);
}

int main(void) {
    test_rand_fill(xb, NB * D, 101);
    test_rand_fill(xq, NQL * D, 102);
    RUN(test_exhaustive_equals_exact);
    RUN(test_filter_and_remove);
    RUN(test_reconstruct_range);
    RUN(test_bad_inputs);
    RUN(test_stats);
    return TEST_SUMMARY();
}
