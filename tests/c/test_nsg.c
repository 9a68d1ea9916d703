/*
 * test_nsg.c — NN-descent (nndescent.c), the NSG indexes (nsg.c) and their
 * FAISS records (nsg_io.c): graph recall against a brute-force k-NN graph
 * computed here, search recall against brute force, connectivity from the
 * navigating node, all-or-nothing errors, file round trips (identical
 * answers), every truncation refused, damaged copies never crashing.
 */
#include "test.h"
#include "io_test_util.h"

#define D 16
#define NB 1200
#define NQ 100

static float xb[NB * D], xq[NQ * D];

static float l2(const float *a, const float *b) {
    float s = 0;
    for (int j = 0; j < D; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* index of the nearest of xb to q (brute force, independent of vecdex) */
static int64_t nearest(const float *q) {
    int64_t best = 0;
    float bd = l2(q, xb);
    for (int64_t i = 1; i < NB; i++) {
        float d = l2(q, xb + i * D);
        if (d < bd) bd = d, best = i;
    }
    return best;
}

static int recall_at1(vdx_index *ix, float *Dout, vdx_idx_t *I) {
    CHECK_OK(vdx_index_search(ix, NQ, xq, 1, NULL, Dout, I));
    int hit = 0;
    for (int q = 0; q < NQ; q++) hit += I[q] == nearest(xq + q * D);
    return hit;
}

static void test_nndescent_graph(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_nndescent_flat_new(D, 10, VDX_METRIC_L2, &ix));
    vdx_nndescent_params p;
    CHECK_OK(vdx_index_nndescent_get(ix, &p));
    CHECK(p.K == 10 && p.S == 10 && p.R == 100 && p.L == 60 && p.iter == 10);
    CHECK_ERR(vdx_index_add(ix, 100, xb), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ntotal(ix) == 0); /* nothing kept from a refused add */
    p.L = 30;
    p.iter = 6;
    CHECK_OK(vdx_index_nndescent_set(ix, &p));
    CHECK_OK(vdx_index_add(ix, NB, xb));
    int64_t len = 0;
    CHECK_OK(vdx_index_nndescent_graph(ix, NULL, 0, &len));
    CHECK(len == (int64_t)NB * 10);
    int32_t *g = malloc(sizeof(int32_t) * (size_t)len);
    CHECK_OK(vdx_index_nndescent_graph(ix, g, len, &len));
    /* brute-force 10-NN of a sample of nodes: recall of the graph */
    long hits = 0, tot = 0;
    for (int i = 0; i < NB; i += 7) {
        float bd[10];
        int bi[10], nb = 0;
        for (int j = 0; j < NB; j++) {
            if (j == i) continue;
            float d = l2(xb + i * D, xb + j * D);
            if (nb < 10 || d < bd[nb - 1]) {
                int pos = nb < 10 ? nb++ : 9;
                while (pos > 0 && bd[pos - 1] > d) {
                    bd[pos] = bd[pos - 1];
                    bi[pos] = bi[pos - 1];
                    pos--;
                }
                bd[pos] = d;
                bi[pos] = j;
            }
        }
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                if (g[i * 10 + a] == bi[b]) {
                    hits++;
                    break;
                }
        tot += 10;
    }
    CHECK((double)hits / (double)tot > 0.95);
    free(g);
    vdx_index_free(ix);
}

static void test_nndescent_search_io(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_nndescent_flat_new(D, 32, VDX_METRIC_L2, &ix));
    vdx_nndescent_params p;
    CHECK_OK(vdx_index_nndescent_get(ix, &p));
    p.search_L = 16;
    CHECK_OK(vdx_index_nndescent_set(ix, &p));
    CHECK_OK(vdx_index_add(ix, NB, xb));
    float D1[NQ], D2[NQ];
    vdx_idx_t I1[NQ], I2[NQ];
    CHECK(recall_at1(ix, D1, I1) >= 90);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    vdx_index *r = NULL;
    CHECK_OK(vdx_deserialize_index(buf, size, &r));
    CHECK(r && !strcmp(vdx_index_type_name(r), "IndexNNDescentFlat"));
    if (r) {
        CHECK_OK(vdx_index_search(r, NQ, xq, 1, NULL, D2, I2));
        CHECK(!memcmp(I1, I2, sizeof I1) && !memcmp(D1, D2, sizeof D1));
    }
    for (size_t cut = 0; cut < size; cut += (cut < 200 ? 1 : 97)) {
        vdx_index *t = NULL;
        vdx_status s = vdx_deserialize_index(buf, cut, &t);
        CHECK(s == VDX_ERR_FORMAT && t == NULL);
    }
    vdx_free_buffer(buf);
    vdx_index_free(r);
    vdx_index_free(ix);
}

static void check_connected(vdx_index *ix) {
    vdx_nsg_params p;
    CHECK_OK(vdx_index_nsg_get(ix, &p));
    CHECK(p.is_built && p.enterpoint >= 0);
    uint8_t *vis = calloc(NB, 1);
    int64_t cnt = 0;
    CHECK_OK(vdx_index_nsg_dfs(ix, vis, NB, p.enterpoint, 0, &cnt));
    CHECK(cnt == NB);
    free(vis);
    int64_t nb[64];
    int c = 0;
    for (int i = 0; i < NB; i++) {
        CHECK_OK(vdx_index_nsg_neighbors(ix, i, nb, &c));
        CHECK(c <= p.R);
        for (int j = 0; j < c; j++) CHECK(nb[j] >= 0 && nb[j] < NB && nb[j] != i);
    }
}

static void test_nsg_flat(int build_type) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_nsg_flat_new(D, 16, VDX_METRIC_L2, &ix));
    vdx_nsg_params p;
    CHECK_OK(vdx_index_nsg_get(ix, &p));
    CHECK(p.R == 16 && p.L == 48 && p.C == 116 && p.search_L == 16 &&
          p.build_type == 1 && p.GK == 64);
    p.GK = 32;
    p.build_type = build_type;
    CHECK_OK(vdx_index_nsg_set(ix, &p));
    CHECK_OK(vdx_index_add(ix, NB, xb));
    float D1[NQ], D2[NQ];
    vdx_idx_t I1[NQ], I2[NQ];
    CHECK(recall_at1(ix, D1, I1) >= 90);
    check_connected(ix);
    CHECK_ERR(vdx_index_add(ix, 10, xb), VDX_ERR_UNSUPPORTED);
    CHECK(vdx_index_ntotal(ix) == NB);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    vdx_index *r = NULL;
    CHECK_OK(vdx_deserialize_index(buf, size, &r));
    CHECK(r && vdx_index_is_nsg(r));
    if (r) {
        CHECK_OK(vdx_index_search(r, NQ, xq, 1, NULL, D2, I2));
        CHECK(!memcmp(I1, I2, sizeof I1) && !memcmp(D1, D2, sizeof D1));
    }
    for (size_t cut = 0; cut < size; cut += (cut < 300 ? 1 : 101)) {
        vdx_index *t = NULL;
        vdx_status s = vdx_deserialize_index(buf, cut, &t);
        CHECK(s == VDX_ERR_FORMAT && t == NULL);
    }
    vdx_free_buffer(buf);
    vdx_index_free(r);
    CHECK_OK(vdx_index_reset(ix));
    CHECK(vdx_index_ntotal(ix) == 0);
    CHECK_OK(vdx_index_add(ix, NB, xb));
    CHECK(recall_at1(ix, D1, I1) >= 90);
    vdx_index_free(ix);
}

static void test_nsg_flat_bruteforce(void) { test_nsg_flat(0); }
static void test_nsg_flat_nndescent(void) { test_nsg_flat(1); }

static void test_nsg_build_knn(void) {
    /* exact 8-NN graph, with a few invalid entries the build must skip */
    const int gk = 8;
    int64_t *knn = malloc(sizeof(int64_t) * NB * gk);
    for (int i = 0; i < NB; i++) {
        float bd[8];
        int nb = 0;
        for (int j = 0; j < NB; j++) {
            if (j == i) continue;
            float d = l2(xb + i * D, xb + j * D);
            if (nb < gk || d < bd[nb - 1]) {
                int pos = nb < gk ? nb++ : gk - 1;
                while (pos > 0 && bd[pos - 1] > d) {
                    bd[pos] = bd[pos - 1];
                    knn[i * gk + pos] = knn[i * gk + pos - 1];
                    pos--;
                }
                bd[pos] = d;
                knn[i * gk + pos] = j;
            }
        }
    }
    for (int i = 0; i < 50; i++) knn[i * gk + 3] = -111;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_nsg_flat_new(D, 16, VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_nsg_build(ix, NB, xb, knn, gk));
    float D1[NQ];
    vdx_idx_t I1[NQ];
    CHECK(recall_at1(ix, D1, I1) >= 90);
    check_connected(ix);
    CHECK_ERR(vdx_index_nsg_build(ix, NB, xb, knn, gk), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(ix);
    /* too many invalid entries: refused, nothing kept */
    for (int i = 0; i < NB / 5; i++) knn[i * gk] = NB + 5;
    CHECK_OK(vdx_index_nsg_flat_new(D, 16, VDX_METRIC_L2, &ix));
    CHECK_ERR(vdx_index_nsg_build(ix, NB, xb, knn, gk), VDX_ERR_INVALID_ARGUMENT);
    CHECK(vdx_index_ntotal(ix) == 0);
    vdx_index_free(ix);
    free(knn);
}

static void test_nsg_sq_pq_io(void) {
    vdx_index *ix[2] = {NULL, NULL};
    CHECK_OK(vdx_index_nsg_sq_new(D, 0 /* QT_8bit */, 16, VDX_METRIC_L2, &ix[0]));
    CHECK_OK(vdx_index_nsg_pq_new(D, 4, 16, 8, VDX_METRIC_L2, &ix[1]));
    for (int t = 0; t < 2; t++) {
        if (!ix[t]) continue;
        CHECK_ERR(vdx_index_add(ix[t], NB, xb), VDX_ERR_NOT_TRAINED);
        CHECK_OK(vdx_index_train(ix[t], NB, xb));
        vdx_nsg_params p;
        CHECK_OK(vdx_index_nsg_get(ix[t], &p));
        p.GK = 16;
        CHECK_OK(vdx_index_nsg_set(ix[t], &p));
        CHECK_OK(vdx_index_add(ix[t], NB, xb));
        float D1[NQ], D2[NQ];
        vdx_idx_t I1[NQ], I2[NQ];
        int rec = recall_at1(ix[t], D1, I1);
        CHECK(rec >= (t == 0 ? 80 : 20));
        check_connected(ix[t]);
        uint8_t *buf = NULL;
        size_t size = 0;
        CHECK_OK(vdx_serialize_index(ix[t], &buf, &size));
        vdx_index *r = NULL;
        CHECK_OK(vdx_deserialize_index(buf, size, &r));
        if (r) {
            CHECK(!strcmp(vdx_index_type_name(r), vdx_index_type_name(ix[t])));
            CHECK_OK(vdx_index_search(r, NQ, xq, 1, NULL, D2, I2));
            CHECK(!memcmp(I1, I2, sizeof I1) && !memcmp(D1, D2, sizeof D1));
        }
        vdx_index_free(r);
        vdx_free_buffer(buf);
        vdx_index_free(ix[t]);
    }
}

/* a hostile link id and a row overflowing R are refused by name */
static void test_nsg_hostile(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_nsg_flat_new(4, 4, VDX_METRIC_L2, &ix));
    vdx_nsg_params p;
    CHECK_OK(vdx_index_nsg_get(ix, &p));
    p.build_type = 0;
    p.GK = 4;
    CHECK_OK(vdx_index_nsg_set(ix, &p));
    static float x4[200 * 4];
    test_rand_fill(x4, 200 * 4, 9);
    CHECK_OK(vdx_index_add(ix, 200, x4));
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    /* header (4 + 4 + 8 + 8 + 8 + 1 + 4) + GK..iter (21) + 6 ints + bool */
    const size_t g0 = 37 + 21 + 24 + 1;
    uint8_t *c = malloc(size);
    memcpy(c, buf, size);
    int32_t bad = 100000;
    memcpy(c + g0, &bad, 4);
    vdx_index *r = NULL;
    CHECK_ERR(vdx_deserialize_index(c, size, &r), VDX_ERR_FORMAT);
    CHECK(r == NULL && strstr(vdx_last_error(), "outside"));
    memcpy(c, buf, size);
    int32_t huge_r = 1 << 30; /* R */
    memcpy(c + 37 + 21 + 4, &huge_r, 4);
    CHECK_ERR(vdx_deserialize_index(c, size, &r), VDX_ERR_FORMAT);
    free(c);
    uint64_t seed = 77;
    int ok = 0, failed = 0;
    read_damaged_copies(ix, 300, &seed, NULL, &ok, &failed);
    CHECK(ok + failed == 300);
    vdx_free_buffer(buf);
    vdx_index_free(ix);
}

static void test_nsg_ip(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_nsg_flat_new(D, 16, VDX_METRIC_INNER_PRODUCT, &ix));
    vdx_nsg_params p;
    CHECK_OK(vdx_index_nsg_get(ix, &p));
    p.GK = 32;
    p.build_type = 0;
    CHECK_OK(vdx_index_nsg_set(ix, &p));
    CHECK_OK(vdx_index_add(ix, NB, xb));
    float Dd[NQ * 5];
    vdx_idx_t I[NQ * 5];
    CHECK_OK(vdx_index_search(ix, NQ, xq, 5, NULL, Dd, I));
    int hit = 0;
    for (int q = 0; q < NQ; q++) {
        int64_t best = 0;
        float bs = -INFINITY;
        for (int i = 0; i < NB; i++) {
            float s = 0;
            for (int j = 0; j < D; j++) s += xq[q * D + j] * xb[i * D + j];
            if (s > bs) bs = s, best = i;
        }
        hit += I[q * 5] == best;
        for (int j = 1; j < 5; j++) CHECK(Dd[q * 5 + j - 1] >= Dd[q * 5 + j]);
    }
    CHECK(hit >= 90);
    check_connected(ix);
    vdx_index_free(ix);
}

int main(void) {
    test_rand_fill(xb, NB * D, 1);
    test_rand_fill(xq, NQ * D, 2);
    RUN(test_nndescent_graph);
    RUN(test_nndescent_search_io);
    RUN(test_nsg_flat_bruteforce);
    RUN(test_nsg_flat_nndescent);
    RUN(test_nsg_build_knn);
    RUN(test_nsg_sq_pq_io);
    RUN(test_nsg_hostile);
    RUN(test_nsg_ip);
    return TEST_SUMMARY();
}
