/*
 * test_io_hnsw.c — the HNSW indexes in FAISS's format: the golden files
 * written by FAISS (tests/fuzz/make_corpus.py) load with their graph and
 * search like brute force, save back byte for byte, vecdex-built indexes
 * round-trip, and truncated or corrupted files (links out of range, bad
 * offsets, bad levels) are refused with VDX_ERR_FORMAT, never a crash.
 */
#include "test.h"
#include "io_test_util.h"

static const char *goldens[] = {"hnswflat_l2_d4_n20.index",
                                "hnswflat_ip_d4_n20.index",
                                "hnswsq8_l2_d4_n20.index"};

static void golden_vecs(float *x) {
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)(((i * 7 + j * 5) % 13) - 6);
}

static void test_goldens(void) {
    float x[80];
    golden_vecs(x);
    for (int g = 0; g < 3; g++) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", goldens[g]);
        size_t n = 0;
        uint8_t *buf = slurp(path, &n);
        CHECK(buf != NULL);
        if (!buf) continue;
        vdx_index *ix = NULL;
        CHECK_OK(vdx_deserialize_index(buf, n, &ix));
        if (!ix) {
            free(buf);
            continue;
        }
        CHECK(vdx_index_is_hnsw(ix));
        CHECK(!strcmp(vdx_index_type_name(ix), g == 2 ? "IndexHNSWSQ" : "IndexHNSWFlat"));
        CHECK(vdx_index_ntotal(ix) == 20 && vdx_index_d(ix) == 4);
        CHECK(vdx_index_hnsw_M(ix) == 4);
        CHECK(vdx_index_hnsw_ef_construction(ix) == 40);
        CHECK(vdx_index_hnsw_ef_search(ix) == 16);
        int lv;
        CHECK_OK(vdx_index_hnsw_node_level(ix, vdx_index_hnsw_entry_point(ix), &lv));
        CHECK(lv == vdx_index_hnsw_max_level(ix));
        /* saved back: the same bytes */
        uint8_t *out = NULL;
        size_t on = 0;
        CHECK_OK(vdx_serialize_index(ix, &out, &on));
        CHECK(on == n && out && !memcmp(out, buf, n));
        vdx_free_buffer(out);
        /* search with ef >= ntotal is exact on 20 nodes: same distances as
         * brute force over the storage */
        if (g < 2) {
            vdx_index *f = NULL;
            vdx_metric m = vdx_index_metric(ix);
            CHECK_OK(vdx_index_flat_new(4, m, &f));
            CHECK_OK(vdx_index_add(f, 20, x));
            float dh[80], df[80];
            vdx_idx_t ih[80], iff[80];
            vdx_search_params p;
            vdx_search_params_init(&p);
            p.efSearch = 20;
            CHECK_OK(vdx_index_search(ix, 20, x, 4, &p, dh, ih));
            CHECK_OK(vdx_index_search(f, 20, x, 4, NULL, df, iff));
            for (int i = 0; i < 80; i++) CHECK(fabsf(dh[i] - df[i]) < 1e-4f);
            vdx_index_free(f);
        }
        vdx_index_free(ix);
        free(buf);
    }
}

/* Offsets inside the golden: header 37 bytes, then assign_probas. */
static void test_hostile(void) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", goldens[0]);
    size_t n = 0;
    uint8_t *buf = slurp(path, &n);
    CHECK(buf != NULL);
    if (!buf) return;
    /* truncation at every length */
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        vdx_index *ix = NULL;
        vdx_status s = vdx_deserialize_index(buf, len, &ix);
        if (s == VDX_OK || ix) bad++;
        vdx_index_free(ix);
    }
    CHECK(bad == 0);
    uint64_t np;
    memcpy(&np, buf + 37, 8);
    size_t cum_at = 37 + 8 + (size_t)np * 8;
    size_t lev_at = cum_at + 8 + (size_t)(np + 1) * 4;
    size_t off_at = lev_at + 8 + 20 * 4;
    size_t nb_at = off_at + 8 + 21 * 8 + 8;
    uint8_t *c = malloc(n);
    struct { size_t at; int32_t v; } pokes[] = {
        {nb_at, 20},          /* link == ntotal */
        {nb_at, 1000000},     /* link far out */
        {nb_at + 4, -5},      /* negative other than -1 */
        {lev_at + 8, 0},      /* a node with 0 levels */
        {lev_at + 8, 99},     /* more levels than the table */
        {off_at + 16, 3},     /* offsets[1] inconsistent */
        {cum_at + 12, 9},     /* level-0 degree odd */
    };
    for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
        memcpy(c, buf, n);
        memcpy(c + pokes[i].at, &pokes[i].v, 4);
        vdx_index *ix = NULL;
        vdx_status s = vdx_deserialize_index(c, n, &ix);
        if (s == VDX_OK) fprintf(stderr, "  poke %zu accepted\n", i);
        CHECK(s == VDX_ERR_FORMAT || s == VDX_ERR_UNSUPPORTED);
        CHECK(ix == NULL);
    }
    /* the offsets count made huge */
    memcpy(c, buf, n);
    uint64_t huge = (uint64_t)1 << 62;
    memcpy(c + off_at, &huge, 8);
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_deserialize_index(c, n, &ix), VDX_ERR_FORMAT);
    free(c);
    free(buf);
}

static void test_roundtrip(void) {
    const int d = 16, nb = 2000, nq = 50;
    float *x = malloc((size_t)nb * d * sizeof(float));
    test_rand_fill(x, (size_t)nb * d, 5);
    for (int kind = 0; kind < 3; kind++) {
        vdx_index *ix = NULL, *back = NULL;
        if (kind == 0) CHECK_OK(vdx_index_hnsw_flat_new(d, 8, VDX_METRIC_L2, &ix));
        if (kind == 1)
            CHECK_OK(vdx_index_hnsw_sq_new(d, VDX_SQ_8BIT, 8, VDX_METRIC_INNER_PRODUCT, &ix));
        if (kind == 2) CHECK_OK(vdx_index_hnsw_pq_new(d, 4, 8, 6, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK_OK(vdx_index_train(ix, nb, x));
        CHECK_OK(vdx_index_add(ix, nb, x));
        CHECK_OK(vdx_index_hnsw_set_ef_search(ix, 24));
        uint8_t *b = NULL;
        size_t n = 0;
        CHECK_OK(vdx_serialize_index(ix, &b, &n));
        CHECK_OK(vdx_deserialize_index(b, n, &back));
        if (back) {
            CHECK(vdx_index_hnsw_ef_search(back) == 24);
            CHECK(vdx_index_hnsw_entry_point(back) == vdx_index_hnsw_entry_point(ix));
            float d1[500], d2[500];
            vdx_idx_t i1[500], i2[500];
            CHECK_OK(vdx_index_search(ix, nq, x, 10, NULL, d1, i1));
            CHECK_OK(vdx_index_search(back, nq, x, 10, NULL, d2, i2));
            CHECK(!memcmp(i1, i2, sizeof i1) && !memcmp(d1, d2, sizeof d1));
            uint8_t *b2 = NULL;
            size_t n2 = 0;
            CHECK_OK(vdx_serialize_index(back, &b2, &n2));
            CHECK(n2 == n && !memcmp(b, b2, n));
            vdx_free_buffer(b2);
        }
        vdx_free_buffer(b);
        vdx_index_free(ix);
        vdx_index_free(back);
    }
    /* an IVF with an HNSW quantizer round-trips */
    vdx_index *ivf = NULL, *back = NULL;
    CHECK_OK(vdx_index_factory(d, "IVF16_HNSW8,Flat", VDX_METRIC_L2, &ivf));
    CHECK_OK(vdx_index_train(ivf, nb, x));
    CHECK_OK(vdx_index_add(ivf, nb, x));
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_OK(vdx_serialize_index(ivf, &b, &n));
    CHECK_OK(vdx_deserialize_index(b, n, &back));
    CHECK(back && vdx_index_is_hnsw(vdx_index_ivf_quantizer(back)));
    vdx_free_buffer(b);
    vdx_index_free(ivf);
    vdx_index_free(back);
    free(x);
}

int main(void) {
    RUN(test_goldens);
    RUN(test_hostile);
    RUN(test_roundtrip);
    return TEST_SUMMARY();
}
