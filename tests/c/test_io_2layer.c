/*
 * test_io_2layer.c — Index2Layer and IndexHNSW2Level: the FAISS-written
 * goldens (tests/fuzz/make_corpus.py: centroids set by formula, so every
 * code is recomputed here independently) load, decode and search like
 * brute force, save back byte for byte; vecdex-built indexes search like
 * brute force over their decoded vectors, round-trip, and come from the
 * factory strings FAISS accepts; truncated or corrupted files are refused
 * cleanly.
 */
#include "test.h"
#include "io_test_util.h"

#define NLIST 3

static void golden_vecs(float *x) {
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)(((i * 7 + j * 5) % 13) - 6);
}

/* make_corpus.py's twolevel_centroids */
static float qcent(int l, int j) { return (float)((l - 1) * 4 + 0.25 * j + 0.125); }
static float pcent(int m, int k, int c) {
    return (float)(((k * 5 + c * 3 + m) % 11 - 5) * 0.5 + 0.03125 * k);
}

/* The expected reconstruction of x: nearest coarse centroid, then for each
 * of the 2 sub-vectors of the residual its nearest of 2^nbit centroids. */
static void expect_decode(const float *x, int nbit, float *out) {
    int best = 0;
    float bd = INFINITY;
    for (int l = 0; l < NLIST; l++) {
        float s = 0;
        for (int j = 0; j < 4; j++) s += (x[j] - qcent(l, j)) * (x[j] - qcent(l, j));
        if (s < bd) bd = s, best = l;
    }
    for (int m = 0; m < 2; m++) {
        float r[2], pb = INFINITY;
        int kb = 0;
        for (int c = 0; c < 2; c++) r[c] = x[2 * m + c] - qcent(best, 2 * m + c);
        for (int k = 0; k < (1 << nbit); k++) {
            float s = 0;
            for (int c = 0; c < 2; c++) s += (r[c] - pcent(m, k, c)) * (r[c] - pcent(m, k, c));
            if (s < pb) pb = s, kb = k;
        }
        for (int c = 0; c < 2; c++)
            out[2 * m + c] = qcent(best, 2 * m + c) + pcent(m, kb, c);
    }
}

static uint8_t *load(const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", name);
    return slurp(path, n);
}

static void test_goldens(void) {
    float x[80];
    golden_vecs(x);
    const char *names[] = {"ix2l_l2_d4_n20.index", "hnsw2l_l2_d4_n20.index"};
    for (int g = 0; g < 2; g++) {
        size_t n = 0;
        uint8_t *buf = load(names[g], &n);
        CHECK(buf != NULL);
        if (!buf) continue;
        vdx_index *ix = NULL;
        CHECK_OK(vdx_deserialize_index(buf, n, &ix));
        if (!ix) {
            free(buf);
            continue;
        }
        vdx_index *st = g ? vdx_index_hnsw_storage(ix) : ix;
        CHECK(!strcmp(vdx_index_type_name(ix), g ? "IndexHNSW2Level" : "Index2Layer"));
        CHECK(vdx_index_is_2layer(st) && vdx_index_2layer_nlist(st) == NLIST);
        CHECK(vdx_index_ntotal(ix) == 20 && vdx_index_d(ix) == 4 &&
              vdx_index_is_trained(ix));
        CHECK(vdx_index_2layer_code_size(st, 1) == 1);
        CHECK(vdx_index_2layer_code_size(st, 2) == (g ? 2u : 1u));
        CHECK(vdx_index_ntotal(vdx_index_2layer_quantizer(st)) == NLIST);
        if (g) CHECK(vdx_index_hnsw_M(ix) == 4);
        /* every vector decodes to what its code must be */
        float rec[80], e[4];
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, 20, rec));
        int bad = 0;
        for (int i = 0; i < 20; i++) {
            expect_decode(x + 4 * i, g ? 8 : 2, e);
            for (int j = 0; j < 4; j++) bad += rec[4 * i + j] != e[j];
        }
        CHECK(bad == 0);
        /* saved back: the same bytes */
        uint8_t *out = NULL;
        size_t on = 0;
        CHECK_OK(vdx_serialize_index(ix, &out, &on));
        CHECK(on == n && out && !memcmp(out, buf, n));
        vdx_free_buffer(out);
        /* search (exhaustive, or HNSW with ef >= ntotal) = brute force over
         * the decoded vectors */
        vdx_index *f = NULL;
        CHECK_OK(vdx_index_flat_new(4, VDX_METRIC_L2, &f));
        CHECK_OK(vdx_index_add(f, 20, rec));
        float dh[80], df[80];
        vdx_idx_t ih[80], iff[80];
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 20;
        CHECK_OK(vdx_index_search(ix, 20, x, 4, &p, dh, ih));
        CHECK_OK(vdx_index_search(f, 20, x, 4, NULL, df, iff));
        for (int i = 0; i < 80; i++) CHECK(fabsf(dh[i] - df[i]) < 1e-4f);
        vdx_index_free(f);
        vdx_index_free(ix);
        free(buf);
    }
}

static void truncations(const char *name) {
    size_t n = 0;
    uint8_t *buf = load(name, &n);
    CHECK(buf != NULL);
    if (!buf) return;
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        vdx_index *ix = NULL;
        vdx_status s = vdx_deserialize_index(buf, len, &ix);
        if (s == VDX_OK || ix) bad++;
        vdx_index_free(ix);
    }
    CHECK(bad == 0);
    free(buf);
}

/* Offsets in the Ix2L golden: header 37, quantizer 37..130, nlist 130,
 * trains_alone 138, PQ 139..235, code sizes 235 / 243 / 251, codes count
 * 259, codes 267 (2 bytes each: list, PQ). */
static void test_hostile(void) {
    truncations("ix2l_l2_d4_n20.index");
    truncations("hnsw2l_l2_d4_n20.index");
    size_t n = 0;
    uint8_t *buf = load("ix2l_l2_d4_n20.index", &n);
    CHECK(buf != NULL && n == 307);
    if (!buf || n != 307) {
        free(buf);
        return;
    }
    uint8_t *c = malloc(n);
    struct { size_t at; int width; uint64_t v; } pokes[] = {
        {130, 8, (uint64_t)1 << 40}, /* nlist huge */
        {130, 8, 0},                 /* nlist 0 */
        {130, 8, 4},                 /* nlist != the quantizer's 3 */
        {138, 1, 9},                 /* trains_alone not 0..2 */
        {139, 8, 8},                 /* PQ d != 4 */
        {147, 8, 3},                 /* PQ M does not divide d */
        {235, 8, 2},                 /* code_size_1 */
        {243, 8, 5},                 /* code_size_2 */
        {251, 8, (uint64_t)1 << 62}, /* code_size */
        {259, 8, (uint64_t)1 << 63}, /* codes count huge */
        {259, 8, 39},                /* codes count short */
        {267, 1, 3},                 /* list number == nlist */
        {267 + 38, 1, 200},          /* list number of the last code */
        {12, 4, 7},                  /* header d disagrees with quantizer */
        {37 + 12, 4, 5},             /* quantizer d */
    };
    for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
        memcpy(c, buf, n);
        memcpy(c + pokes[i].at, &pokes[i].v, (size_t)pokes[i].width);
        vdx_index *ix = NULL;
        vdx_status s = vdx_deserialize_index(c, n, &ix);
        if (s == VDX_OK) fprintf(stderr, "  poke %zu accepted\n", i);
        CHECK(s == VDX_ERR_FORMAT || s == VDX_ERR_UNSUPPORTED);
        CHECK(ix == NULL);
    }
    free(c);
    free(buf);
    /* IHN2 whose storage is not an Index2Layer: the IxF2 quantizer bytes
     * spliced in place of the storage */
    uint8_t *h2 = load("hnsw2l_l2_d4_n20.index", &n);
    uint8_t *tl = load("ix2l_l2_d4_n20.index", &(size_t){0});
    if (h2) { /* a graph link out of range: node 0's first level-0 link */
        uint64_t np;
        memcpy(&np, h2 + 37, 8);
        size_t nb_at = 37 + 8 + (size_t)np * 8 + 8 + (size_t)(np + 1) * 4 +
                       8 + 20 * 4 + 8 + 21 * 8 + 8;
        uint8_t *c2 = malloc(n);
        int32_t far = 20;
        memcpy(c2, h2, n);
        memcpy(c2 + nb_at, &far, 4);
        vdx_index *ix = NULL;
        CHECK_ERR(vdx_deserialize_index(c2, n, &ix), VDX_ERR_FORMAT);
        CHECK(strstr(vdx_last_error(), "link") != NULL);
        free(c2);
    }
    if (h2 && tl) {
        const uint8_t *p = NULL; /* the storage's fourcc */
        for (size_t i = 0; i + 4 <= n; i++)
            if (!memcmp(h2 + i, "Ix2L", 4)) p = h2 + i;
        CHECK(p != NULL);
        if (p) {
            size_t at = (size_t)(p - h2);
            uint8_t *bad = malloc(at + 93);
            memcpy(bad, h2, at);
            memcpy(bad + at, tl + 37, 93); /* a flat of 3 vectors */
            vdx_index *ix = NULL;
            CHECK_ERR(vdx_deserialize_index(bad, at + 93, &ix), VDX_ERR_FORMAT);
            free(bad);
        }
    }
    free(h2);
    free(tl);
}

static double recall_at(const vdx_idx_t *a, const vdx_idx_t *b, int nq, int k) {
    int hit = 0;
    for (int q = 0; q < nq; q++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) hit += a[q * k + i] == b[q * k + j];
    return (double)hit / (nq * k);
}

static void test_build_roundtrip(void) {
    const int d = 16, nb = 3000, nq = 40, k = 10;
    float *x = malloc((size_t)nb * d * sizeof(float));
    float *rec = malloc((size_t)nb * d * sizeof(float));
    test_rand_fill(x, (size_t)nb * d, 7);
    for (int kind = 0; kind < 2; kind++) {
        vdx_index *q = NULL, *ix = NULL, *back = NULL;
        CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &q));
        if (kind == 0) CHECK_OK(vdx_index_2layer_new(q, 300, 4, 8, VDX_METRIC_L2, &ix));
        else CHECK_OK(vdx_index_hnsw_2level_new(q, 32, 8, 16, &ix));
        if (!ix) continue;
        CHECK_ERR(vdx_index_add(ix, 10, x), VDX_ERR_NOT_TRAINED);
        CHECK_OK(vdx_index_train(ix, nb, x));
        CHECK_OK(vdx_index_add(ix, nb, x));
        vdx_index *st = kind ? vdx_index_hnsw_storage(ix) : ix;
        CHECK(vdx_index_2layer_code_size(st, 1) == (kind ? 1u : 2u));
        /* exact search over the decoded vectors */
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, nb, rec));
        vdx_index *f = NULL;
        CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &f));
        CHECK_OK(vdx_index_add(f, nb, rec));
        float D1[400], D2[400], D3[400];
        vdx_idx_t I1[400], I2[400], I3[400], G[400];
        CHECK_OK(vdx_index_search(f, nq, x, k, NULL, D2, I2));
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 128;
        CHECK_OK(vdx_index_search(ix, nq, x, k, &p, D1, I1));
        if (kind == 0) {
            for (int i = 0; i < nq * k; i++) CHECK(fabsf(D1[i] - D2[i]) < 1e-3f);
            /* one query at a time (the blocks shared out among threads)
             * gives the batch's results */
            vdx_set_num_threads(3);
            for (int qi = 0; qi < 5; qi++) {
                float d1[10];
                vdx_idx_t i1[10];
                CHECK_OK(vdx_index_search(ix, 1, x + qi * d, k, NULL, d1, i1));
                CHECK(!memcmp(i1, I1 + qi * k, sizeof i1) &&
                      !memcmp(d1, D1 + qi * k, sizeof d1));
            }
            vdx_set_num_threads(0);
        } else {
            CHECK(recall_at(I1, I2, nq, k) > 0.9);
        }
        /* the codes are useful: recall against the raw vectors */
        vdx_index *raw = NULL;
        CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &raw));
        CHECK_OK(vdx_index_add(raw, nb, x));
        float Dg[400];
        CHECK_OK(vdx_index_search(raw, nq, x, k, NULL, Dg, G));
        int found = 0; /* 1-recall@10: the true nearest among the 10 */
        for (int qi = 0; qi < nq; qi++)
            for (int j = 0; j < k; j++) found += I1[qi * k + j] == G[qi * k];
        CHECK(found > nq * 8 / 10);
        /* round trip: same results, same bytes */
        uint8_t *b = NULL, *b2 = NULL;
        size_t n = 0, n2 = 0;
        CHECK_OK(vdx_serialize_index(ix, &b, &n));
        CHECK_OK(vdx_deserialize_index(b, n, &back));
        if (back) {
            CHECK(!strcmp(vdx_index_type_name(back), vdx_index_type_name(ix)));
            CHECK_OK(vdx_index_search(back, nq, x, k, &p, D3, I3));
            CHECK(!memcmp(I1, I3, sizeof(vdx_idx_t) * nq * k));
            CHECK_OK(vdx_serialize_index(back, &b2, &n2));
            CHECK(n2 == n && !memcmp(b, b2, n));
        }
        /* removal compacts (Index2Layer) */
        if (kind == 0) {
            vdx_selector *sel = NULL;
            int64_t nr = 0;
            float r0[16];
            CHECK_OK(vdx_selector_range(0, 100, &sel));
            CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
            CHECK(nr == 100 && vdx_index_ntotal(ix) == nb - 100);
            CHECK_OK(vdx_index_reconstruct(ix, 0, r0));
            CHECK(!memcmp(r0, rec + 100 * d, sizeof r0));
            vdx_selector_free(sel);
            CHECK_OK(vdx_index_reset(ix));
            CHECK(vdx_index_ntotal(ix) == 0);
        }
        vdx_free_buffer(b);
        vdx_free_buffer(b2);
        vdx_index_free(f);
        vdx_index_free(raw);
        vdx_index_free(ix);
        vdx_index_free(back);
    }
    free(x);
    free(rec);
}

static void test_args_and_factory(void) {
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(8, VDX_METRIC_L2, &q));
    CHECK_ERR(vdx_index_2layer_new(q, 0, 2, 8, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_2layer_new(q, 16, 3, 8, VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_2layer_new(NULL, 16, 2, 8, VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_hnsw_2level_new(q, 16, 2, 1, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
    /* nlist 1: no list bytes */
    CHECK_OK(vdx_index_2layer_new(q, 1, 2, 8, VDX_METRIC_L2, &ix));
    CHECK(vdx_index_2layer_code_size(ix, 1) == 0);
    vdx_index_free(ix); /* and q with it */
    struct { const char *s; const char *type; size_t cs1; } ok[] = {
        {"Residual256,PQ8", "Index2Layer", 1},
        {"Residual257,PQ4x6", "Index2Layer", 2},
        {"HNSW32_256+PQ8", "IndexHNSW2Level", 1},
        {"HNSW16,1000+PQ4", "IndexHNSW2Level", 2},
        {"IDMap,Residual64,PQ4", "IndexIDMap", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ix = NULL;
        CHECK_OK(vdx_index_factory(16, ok[i].s, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK(!strcmp(vdx_index_type_name(ix), ok[i].type));
        vdx_index *st = vdx_index_is_hnsw(ix) ? vdx_index_hnsw_storage(ix) : ix;
        if (ok[i].cs1) CHECK(vdx_index_2layer_code_size(st, 1) == ok[i].cs1);
        vdx_index_free(ix);
    }
    const char *bad[] = {"Residual256,Flat", "Residual256,SQ8", "256+PQ8",
                         "HNSW32_256+PQ", "HNSW32_+PQ8", "Residual,PQ8",
                         "IVF16,256+PQ8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ix = NULL;
        CHECK_ERR(vdx_index_factory(16, bad[i], VDX_METRIC_L2, &ix),
                  VDX_ERR_INVALID_ARGUMENT);
        CHECK(ix == NULL);
    }
    CHECK_ERR(vdx_index_factory(16, "Residual4x8,PQ8", VDX_METRIC_L2, &ix),
              VDX_ERR_UNSUPPORTED);
    CHECK_ERR(vdx_index_factory(16, "HNSW32_2x8+PQ8", VDX_METRIC_L2, &ix),
              VDX_ERR_UNSUPPORTED);
    CHECK_ERR(vdx_index_factory(16, "HNSW32_256+PQ8", VDX_METRIC_INNER_PRODUCT, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
}

int main(void) {
    RUN(test_goldens);
    RUN(test_hostile);
    RUN(test_build_roundtrip);
    RUN(test_args_and_factory);
    return TEST_SUMMARY();
}
