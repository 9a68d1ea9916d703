/* test_idmap.c — IndexIDMap / IndexIDMap2: user ids in results, selectors in
 * user ids, removal, reconstruct by id, ownership. */
#include "test.h"

static void make(int map2, vdx_index **out, float *xb, int64_t n, int64_t d,
                 int64_t *ids) {
    vdx_index *flat = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &flat));
    CHECK_OK(map2 ? vdx_index_idmap2_new(flat, out) : vdx_index_idmap_new(flat, out));
    test_rand_fill(xb, (size_t)(n * d), 77);
    for (int64_t i = 0; i < n; i++) ids[i] = 1000 + 7 * i;
    CHECK_OK(vdx_index_add_with_ids(*out, n, xb, ids));
}

static void test_search_ids(void) {
    enum { N = 500, D = 8 };
    float xb[N * D], Dd[40 * 3];
    int64_t ids[N], I[40 * 3];
    for (int map2 = 0; map2 < 2; map2++) {
        vdx_index *ix;
        make(map2, &ix, xb, N, D, ids);
        CHECK(vdx_index_ntotal(ix) == N);
        CHECK(vdx_index_sub_index(ix) != NULL);
        CHECK(!strcmp(vdx_index_type_name(ix), map2 ? "IndexIDMap2" : "IndexIDMap"));
        /* querying the stored vectors finds them under their user ids */
        for (int nq = 1; nq <= 40; nq += 39) {
            CHECK_OK(vdx_index_search(ix, nq, xb + 100 * D, 3, NULL, Dd, I));
            for (int q = 0; q < nq; q++) CHECK(I[q * 3] == ids[100 + q] && Dd[q * 3] < 1e-5);
        }
        /* selector speaks user ids */
        vdx_selector *s;
        CHECK_OK(vdx_selector_range(1000 + 7 * 300, 1000 + 7 * 310, &s));
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.sel = s;
        CHECK_OK(vdx_index_search(ix, 40, xb, 3, &p, Dd, I));
        for (int q = 0; q < 40 * 3; q++) CHECK(I[q] >= 1000 + 7 * 300 && I[q] < 1000 + 7 * 310);
        vdx_range_result *r;
        CHECK_OK(vdx_index_range_search(ix, 1, xb + 5 * D, 1e-6f, NULL, &r));
        CHECK(r->lims[1] == 1 && r->labels[0] == ids[5]);
        vdx_range_result_free(r);
        /* removal compacts both the vectors and the id map */
        int64_t nr;
        CHECK_OK(vdx_index_remove_ids(ix, s, &nr));
        CHECK(nr == 10 && vdx_index_ntotal(ix) == N - 10);
        int64_t *map = malloc(sizeof(int64_t) * N);
        CHECK_OK(vdx_index_get_id_map(ix, map));
        CHECK(map[299] == ids[299] && map[300] == ids[310]);
        free(map);
        CHECK_OK(vdx_index_search(ix, 1, xb + 320 * D, 1, NULL, Dd, I));
        CHECK(I[0] == ids[320]);
        float rec[D];
        if (map2) {
            CHECK_OK(vdx_index_reconstruct(ix, ids[320], rec));
            CHECK(!memcmp(rec, xb + 320 * D, sizeof rec));
            CHECK_ERR(vdx_index_reconstruct(ix, ids[305], rec), VDX_ERR_NOT_FOUND);
            CHECK_ERR(vdx_index_reconstruct(ix, 3, rec), VDX_ERR_NOT_FOUND);
        } else {
            CHECK_ERR(vdx_index_reconstruct(ix, ids[320], rec), VDX_ERR_UNSUPPORTED);
        }
        CHECK_ERR(vdx_index_add(ix, 1, xb), VDX_ERR_UNSUPPORTED);
        CHECK_OK(vdx_index_reset(ix));
        CHECK(vdx_index_ntotal(ix) == 0);
        if (map2) CHECK_ERR(vdx_index_reconstruct(ix, ids[320], rec), VDX_ERR_NOT_FOUND);
        vdx_selector_free(s);
        vdx_index_free(ix);
    }
}

static void test_bad(void) {
    vdx_index *flat, *m;
    CHECK_ERR(vdx_index_idmap_new(NULL, &m), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_flat_new(4, VDX_METRIC_L2, &flat));
    float x[8] = {0};
    CHECK_OK(vdx_index_add(flat, 2, x));
    CHECK_ERR(vdx_index_idmap_new(flat, &m), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(flat);
    CHECK_OK(vdx_index_flat_new(4, VDX_METRIC_L2, &flat));
    CHECK_OK(vdx_index_idmap2_new(flat, &m));
    int64_t ids[2] = {INT64_MIN, 3};
    CHECK_ERR(vdx_index_add_with_ids(m, 2, x, ids), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ntotal(m) == 0);
    CHECK_ERR(vdx_index_add_with_ids(m, 2, x, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_get_id_map(flat, ids), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(m);
}

/* IDMap over an IVF index: remove_ids used to compact the id map while the
 * IVF lists kept their old positions, so later vectors came back under
 * other vectors' ids (and the same label twice).  Each vector searched for
 * itself must come back under its own id, after removals and more adds. */
static void test_remove_over_ivf(void) {
    const int64_t d = 2, n = 12;
    float x[14 * 2];
    for (int64_t i = 0; i < 14; i++) {
        x[i * d] = (float)(i * 3 % 14);
        x[i * d + 1] = (float)(i % 2) * 50.0f;
    }
    {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(d, "IDMap,IVF2,Flat", VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_train(ix, n, x));
        vdx_idx_t ids[14];
        for (int64_t i = 0; i < 14; i++) ids[i] = 100 + i;
        CHECK_OK(vdx_index_add_with_ids(ix, n, x, ids));
        vdx_idx_t gone[3] = {100, 103, 107};
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_batch(3, gone, &sel));
        int64_t nr = 0;
        CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
        CHECK(nr == 3 && vdx_index_ntotal(ix) == n - 3);
        CHECK_OK(vdx_index_add_with_ids(ix, 2, x + n * d, ids + n));
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.nprobe = 2;
        for (int64_t i = 0; i < 14; i++) {
            if (vdx_selector_is_member(sel, ids[i])) continue;
            float D[2];
            vdx_idx_t I[2];
            CHECK_OK(vdx_index_search(ix, 1, x + i * d, 2, &p, D, I));
            CHECK(I[0] == ids[i] && D[0] == 0.0f);
            CHECK(I[1] != I[0]);
        }
        vdx_selector_free(sel);
        vdx_index_free(ix);
    }
}

int main(void) {
    RUN(test_search_ids);
    RUN(test_bad);
    RUN(test_remove_over_ivf);
    return TEST_SUMMARY();
}
