/*
 * test_io_transform.c — IndexPreTransform ("IxPT") and the vector
 * transforms in FAISS's format: golden files written by FAISS
 * (tests/fuzz/make_corpus.py --golden; values mirrored here), byte-exact
 * rewriting, round trips of every transform kind, and hostile inputs
 * (truncation at every length, patched counts and dimensions).
 */
#include "test.h"
#include "io_test_util.h"

#define D 4

/* make_corpus.py pt_vecs(n, 4) */
static void pt_vecs(int n, float *x) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++) x[i * D + j] = (float)((i * 7 + j * 5) % 13 - 6) * 0.5f;
}

static vdx_index *load(const char *name, uint8_t **bytes, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", name);
    *bytes = slurp(path, n);
    CHECK(*bytes != NULL);
    if (!*bytes) return NULL;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_deserialize_index(*bytes, *n, &ix));
    return ix;
}

/* vecdex writes back the exact bytes FAISS wrote. */
static void check_rewrite(const vdx_index *ix, const uint8_t *bytes, size_t n) {
    uint8_t *buf = NULL;
    size_t sz = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &sz));
    CHECK(sz == n && buf && !memcmp(buf, bytes, n));
    vdx_free_buffer(buf);
}

/* Every proper prefix fails cleanly. */
static void check_truncations(const uint8_t *bytes, size_t n) {
    for (size_t len = 0; len < n; len++) {
        vdx_index *ix = NULL;
        vdx_status st = vdx_deserialize_index(bytes, len, &ix);
        if (st == VDX_OK || ix) {
            fprintf(stderr, "  prefix of %zu bytes accepted\n", len);
            CHECK(0);
            vdx_index_free(ix);
            break;
        }
        CHECK(st == VDX_ERR_FORMAT);
    }
}

static void test_golden_ltra(void) {
    uint8_t *b = NULL;
    size_t n = 0;
    vdx_index *ix = load("pt_ltra_flat_d4_n8.index", &b, &n);
    if (!ix) goto done;
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexPreTransform"));
    CHECK(vdx_index_d(ix) == D && vdx_index_ntotal(ix) == 8);
    CHECK(vdx_index_pretransform_chain_size(ix) == 1);
    vdx_vt *vt = vdx_index_pretransform_chain(ix, 0);
    CHECK(!strcmp(vdx_vt_type_name(vt), "LinearTransform"));
    CHECK(vdx_vt_have_bias(vt) && vdx_vt_is_orthonormal(vt) && vdx_vt_is_trained(vt));
    const float Aw[16] = {0, 1, 0, 0, -1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0};
    const float bw[4] = {1, 2, 3, 4};
    size_t na = 0, nb = 0;
    const float *A = vdx_vt_array(vt, VDX_VT_A, &na), *bb = vdx_vt_array(vt, VDX_VT_B, &nb);
    CHECK(na == 16 && nb == 4 && A && bb && !memcmp(A, Aw, sizeof Aw) && !memcmp(bb, bw, sizeof bw));
    float x[8 * D], y[8 * D], rec[D];
    pt_vecs(8, x);
    /* the sub-index holds A x + b, exactly */
    CHECK_OK(vdx_index_reconstruct_n(vdx_index_pretransform_index(ix), 0, 8, y));
    for (int i = 0; i < 8; i++)
        for (int r = 0; r < D; r++) {
            float want = bw[r];
            for (int c = 0; c < D; c++) want += Aw[r * D + c] * x[i * D + c];
            CHECK(y[i * D + r] == want);
        }
    for (int i = 0; i < 8; i++) { /* reverse transform gives x back */
        CHECK_OK(vdx_index_reconstruct(ix, i, rec));
        CHECK(!memcmp(rec, x + i * D, sizeof rec));
    }
    float Dd[2];
    vdx_idx_t I[2];
    CHECK_OK(vdx_index_search(ix, 1, x + 3 * D, 2, NULL, Dd, I));
    CHECK(I[0] == 3 && Dd[0] == 0.0f);
    check_rewrite(ix, b, n);
    check_truncations(b, n);
done:
    vdx_index_free(ix);
    free(b);
}

static void test_golden_pca(void) {
    uint8_t *b = NULL;
    size_t n = 0;
    vdx_index *ix = load("pt_pca_flat_d4_n8.index", &b, &n);
    if (!ix) goto done;
    vdx_vt *vt = vdx_index_pretransform_chain(ix, 0);
    CHECK(!strcmp(vdx_vt_type_name(vt), "PCAMatrix"));
    CHECK(vdx_vt_d_in(vt) == 4 && vdx_vt_d_out(vt) == 2);
    vdx_index *sub = vdx_index_pretransform_index(ix);
    CHECK(vdx_index_d(sub) == 2 && vdx_index_ntotal(sub) == 8);
    size_t ne = 0, nm = 0, np_ = 0;
    const float *ev = vdx_vt_array(vt, VDX_VT_EIGENVALUES, &ne);
    const float *mean = vdx_vt_array(vt, VDX_VT_MEAN, &nm);
    const float *pm = vdx_vt_array(vt, VDX_VT_PCAMAT, &np_);
    CHECK(ne == 4 && nm == 4 && np_ == 16 && ev && mean && pm);
    if (!ev || !mean || !pm) goto done;
    /* FAISS's statistics of pt_vecs(32, 4): check them against our own
     * training on the same data (eigenvalues equal, vectors up to sign) */
    float t[32 * D];
    pt_vecs(32, t);
    vdx_vt *mine = NULL;
    CHECK_OK(vdx_vt_pca_new(4, 2, 0, 0, &mine));
    CHECK_OK(vdx_vt_train(mine, 32, t));
    const float *ev2 = vdx_vt_array(mine, VDX_VT_EIGENVALUES, NULL);
    const float *mean2 = vdx_vt_array(mine, VDX_VT_MEAN, NULL);
    const float *pm2 = vdx_vt_array(mine, VDX_VT_PCAMAT, NULL);
    for (int i = 0; i < 4; i++) {
        CHECK(fabs(ev[i] - ev2[i]) <= 1e-4 * (fabs(ev[i]) + 1));
        CHECK(fabs(mean[i] - mean2[i]) <= 1e-5);
    }
    for (int i = 0; i < 2; i++) { /* distinct eigenvalues: unique up to sign */
        double c = 0;
        for (int j = 0; j < 4; j++) c += (double)pm[i * 4 + j] * pm2[i * 4 + j];
        CHECK(fabs(fabs(c) - 1) < 1e-4);
    }
    /* searching the golden = applying its own A, b to the query */
    float x[8 * D], q[2];
    pt_vecs(8, x);
    const float *A = vdx_vt_array(vt, VDX_VT_A, NULL), *bb = vdx_vt_array(vt, VDX_VT_B, NULL);
    for (int r = 0; r < 2; r++) {
        q[r] = bb[r];
        for (int c = 0; c < D; c++) q[r] += A[r * D + c] * x[5 * D + c];
    }
    float Dd[1], Ds[1];
    vdx_idx_t I[1], Is[1];
    CHECK_OK(vdx_index_search(ix, 1, x + 5 * D, 1, NULL, Dd, I));
    CHECK_OK(vdx_index_search(sub, 1, q, 1, NULL, Ds, Is));
    CHECK(I[0] == Is[0] && fabs(Dd[0] - Ds[0]) < 1e-5);
    vdx_vt_free(mine);
    check_rewrite(ix, b, n);
    check_truncations(b, n);
done:
    vdx_index_free(ix);
    free(b);
}

static void test_golden_norm_rr_center(void) {
    uint8_t *b = NULL;
    size_t n = 0;
    vdx_index *ix = load("pt_norm_rr_ip_d4_n8.index", &b, &n);
    float x[8 * D];
    pt_vecs(8, x);
    if (ix) {
        CHECK(vdx_index_pretransform_chain_size(ix) == 2);
        CHECK(!strcmp(vdx_vt_type_name(vdx_index_pretransform_chain(ix, 0)),
                      "NormalizationTransform"));
        vdx_vt *rr = vdx_index_pretransform_chain(ix, 1);
        CHECK(!strcmp(vdx_vt_type_name(rr), "RandomRotationMatrix"));
        CHECK(vdx_vt_d_in(rr) == 4 && vdx_vt_d_out(rr) == 6 && vdx_vt_is_orthonormal(rr));
        CHECK(vdx_index_metric(ix) == VDX_METRIC_INNER_PRODUCT);
        /* stored vectors are unit norm (normalised, then a tight frame) */
        float y[8 * 6];
        CHECK_OK(vdx_index_reconstruct_n(vdx_index_pretransform_index(ix), 0, 8, y));
        for (int i = 0; i < 8; i++) {
            double s = 0;
            for (int j = 0; j < 6; j++) s += (double)y[i * 6 + j] * y[i * 6 + j];
            CHECK(fabs(s - 1) < 1e-5);
        }
        float Dd[1];
        vdx_idx_t I[1];
        CHECK_OK(vdx_index_search(ix, 1, x + 2 * D, 1, NULL, Dd, I));
        CHECK(fabs(Dd[0] - 1) < 1e-5);
        check_rewrite(ix, b, n);
        check_truncations(b, n);
        vdx_index_free(ix);
    }
    free(b);
    ix = load("pt_center_idmap_d4_n8.index", &b, &n);
    if (ix) {
        vdx_vt *ct = vdx_index_pretransform_chain(ix, 0);
        CHECK(!strcmp(vdx_vt_type_name(ct), "CenteringTransform"));
        float t[32 * D];
        pt_vecs(32, t);
        const float *mean = vdx_vt_array(ct, VDX_VT_MEAN, NULL);
        for (int j = 0; j < D && mean; j++) {
            double s = 0;
            for (int i = 0; i < 32; i++) s += t[i * D + j];
            CHECK(fabs(mean[j] - s / 32) < 1e-6);
        }
        CHECK(!strcmp(vdx_index_type_name(vdx_index_pretransform_index(ix)), "IndexIDMap"));
        float Dd[1];
        vdx_idx_t I[1];
        CHECK_OK(vdx_index_search(ix, 1, x + 6 * D, 1, NULL, Dd, I));
        CHECK(I[0] == 65 && Dd[0] == 0.0f);
        check_rewrite(ix, b, n);
        check_truncations(b, n);
        vdx_index_free(ix);
    }
    free(b);
}

/* Every kind written by vecdex reads back identical. */
static void test_round_trip_kinds(void) {
    const int64_t d = 16, n = 400;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(x, (size_t)(n * d), 17);
    const char *descs[] = {"PCA8,Flat", "PCAWR8,Flat", "RR12,Flat", "L2norm,Flat",
                           "OPQ4_8,Flat", "L2norm,PCA8,IDMap2,Flat"};
    for (size_t t = 0; t < sizeof descs / sizeof descs[0]; t++) {
        vdx_index *ix = NULL, *back = NULL;
        CHECK_OK(vdx_index_factory(d, descs[t], VDX_METRIC_L2, &ix));
        if (!ix) continue;
        if (strstr(descs[t], "OPQ")) {
            vdx_vt_options o;
            vdx_vt *vt = vdx_index_pretransform_chain(ix, 0);
            CHECK_OK(vdx_vt_get_options(vt, &o));
            o.niter = 2;
            o.niter_pq_0 = 2;
            CHECK_OK(vdx_vt_set_options(vt, &o));
        }
        CHECK_OK(vdx_index_train(ix, n, x));
        if (strstr(descs[t], "IDMap")) {
            vdx_idx_t ids[400];
            for (int i = 0; i < 400; i++) ids[i] = 1000 + i;
            CHECK_OK(vdx_index_add_with_ids(ix, n, x, ids));
        } else {
            CHECK_OK(vdx_index_add(ix, n, x));
        }
        uint8_t *buf = NULL, *buf2 = NULL;
        size_t sz = 0, sz2 = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &sz));
        CHECK_OK(vdx_deserialize_index(buf, sz, &back));
        if (back) {
            CHECK_OK(vdx_serialize_index(back, &buf2, &sz2));
            CHECK(sz == sz2 && buf2 && !memcmp(buf, buf2, sz));
            float D1[5], D2[5];
            vdx_idx_t I1[5], I2[5];
            CHECK_OK(vdx_index_search(ix, 1, x + 9 * d, 5, NULL, D1, I1));
            CHECK_OK(vdx_index_search(back, 1, x + 9 * d, 5, NULL, D2, I2));
            CHECK(!memcmp(I1, I2, sizeof I1) && !memcmp(D1, D2, sizeof D1));
            vdx_vt *a = vdx_index_pretransform_chain(ix, 0),
                   *c = vdx_index_pretransform_chain(back, 0);
            /* OPQ is written as a LinearTransform, as FAISS does */
            CHECK(!strcmp(vdx_vt_type_name(a), vdx_vt_type_name(c)) ||
                  (!strcmp(vdx_vt_type_name(a), "OPQMatrix") &&
                   !strcmp(vdx_vt_type_name(c), "LinearTransform")));
            CHECK(vdx_vt_is_orthonormal(a) == vdx_vt_is_orthonormal(c));
        }
        vdx_free_buffer(buf);
        vdx_free_buffer(buf2);
        vdx_index_free(ix);
        vdx_index_free(back);
    }
    /* an untrained pre-transform round-trips untrained */
    vdx_index *ix = NULL, *back = NULL;
    CHECK_OK(vdx_index_factory(d, "PCA8,Flat", VDX_METRIC_L2, &ix));
    uint8_t *buf = NULL;
    size_t sz = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &sz));
    CHECK_OK(vdx_deserialize_index(buf, sz, &back));
    CHECK(back && !vdx_index_is_trained(back) &&
          !vdx_vt_is_trained(vdx_index_pretransform_chain(back, 0)));
    vdx_free_buffer(buf);
    vdx_index_free(ix);
    vdx_index_free(back);
    free(x);
}

/* Transforms alone (vdx_serialize_vt): every kind, every truncation. */
static void test_vt_alone(void) {
    float x[300 * 8];
    test_rand_fill(x, 300 * 8, 23);
    vdx_vt *vts[5] = {NULL};
    CHECK_OK(vdx_vt_pca_new(8, 3, -0.5f, 1, &vts[0]));
    CHECK_OK(vdx_vt_random_rotation_new(8, 11, &vts[1]));
    CHECK_OK(vdx_vt_normalization_new(8, 2.0f, &vts[2]));
    CHECK_OK(vdx_vt_centering_new(8, &vts[3]));
    CHECK_OK(vdx_vt_linear_new(8, 2, 1, &vts[4]));
    float A[16];
    test_rand_fill(A, 16, 2);
    CHECK_OK(vdx_vt_set_array(vts[4], VDX_VT_A, A, 16));
    for (int i = 0; i < 5; i++) {
        if (!vts[i]) continue;
        CHECK_OK(vdx_vt_train(vts[i], 300, x));
        uint8_t *buf = NULL;
        size_t n = 0;
        CHECK_OK(vdx_serialize_vt(vts[i], &buf, &n));
        vdx_vt *back = NULL;
        CHECK_OK(vdx_deserialize_vt(buf, n, &back));
        if (back) {
            CHECK(!strcmp(vdx_vt_type_name(back), vdx_vt_type_name(vts[i])));
            float y1[4 * 11], y2[4 * 11];
            CHECK_OK(vdx_vt_apply(vts[i], 4, x, y1));
            CHECK_OK(vdx_vt_apply(back, 4, x, y2));
            CHECK(!memcmp(y1, y2, (size_t)(4 * vdx_vt_d_out(back)) * sizeof(float)));
            CHECK(vdx_vt_is_orthonormal(back) == vdx_vt_is_orthonormal(vts[i]));
        }
        vdx_vt_free(back);
        for (size_t len = 0; len < n; len++) {
            back = NULL;
            CHECK_ERR(vdx_deserialize_vt(buf, len, &back), VDX_ERR_FORMAT);
            CHECK(back == NULL);
        }
        vdx_free_buffer(buf);
        vdx_vt_free(vts[i]);
    }
}

static void patch_i32(uint8_t *b, size_t off, int32_t v) { memcpy(b + off, &v, 4); }
static void patch_u64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* Offsets in the LTra golden: chain length 37, "LTra" 41, have_bias 45,
 * A count 46, A 54, b count 118, d_in 142, d_out 146, is_trained 150,
 * sub-index 151 (its d at 155). */
static void test_hostile(void) {
    uint8_t *g = NULL;
    size_t n = 0;
    vdx_index *ix = load("pt_ltra_flat_d4_n8.index", &g, &n);
    vdx_index_free(ix);
    if (!g) return;
    uint8_t *b = malloc(n);
    struct {
        size_t off;
        int kind; /* 0: i32, 1: u64, 2: byte */
        uint64_t v;
        vdx_status want;
    } cases[] = {
        {37, 0, 1u << 30, VDX_ERR_FORMAT},      /* chain length */
        {37, 0, (uint64_t)-1, VDX_ERR_FORMAT},   /* negative */
        {37, 0, 2, VDX_ERR_FORMAT},              /* a second transform */
        {45, 2, 2, VDX_ERR_FORMAT},              /* have_bias */
        {46, 1, 1ull << 62, VDX_ERR_FORMAT},     /* A count huge */
        {46, 1, 0, VDX_ERR_FORMAT},              /* A count too small */
        {118, 1, 5, VDX_ERR_FORMAT},             /* b count */
        {142, 0, 5, VDX_ERR_FORMAT},             /* d_in vs A */
        {142, 0, 0, VDX_ERR_FORMAT},             /* d_in 0 */
        {146, 0, 2, VDX_ERR_FORMAT},             /* d_out vs A */
        {150, 2, 9, VDX_ERR_FORMAT},             /* is_trained */
        {155, 0, 3, VDX_ERR_FORMAT},             /* sub-index d */
        {4, 0, 5, VDX_ERR_FORMAT},               /* header d vs d_in */
        {8, 1, 7, VDX_ERR_FORMAT},               /* ntotal vs sub */
        {41, 0, 0x6d716956, VDX_ERR_UNSUPPORTED}, /* "Viqm" (ITQ) */
        {41, 0, 0x01020304, VDX_ERR_FORMAT},     /* garbage fourcc */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, g, n);
        if (cases[i].kind == 0) patch_i32(b, cases[i].off, (int32_t)cases[i].v);
        else if (cases[i].kind == 1) patch_u64(b, cases[i].off, cases[i].v);
        else b[cases[i].off] = (uint8_t)cases[i].v;
        ix = NULL;
        vdx_status st = vdx_deserialize_index(b, n, &ix);
        if (st != cases[i].want || ix) {
            fprintf(stderr, "  case %zu (offset %zu): %s '%s'\n", i,
                    cases[i].off, vdx_status_name(st), vdx_last_error());
            CHECK(0);
        }
        vdx_index_free(ix);
    }
    /* A with a NaN */
    memcpy(b, g, n);
    float nan = NAN;
    memcpy(b + 54, &nan, 4);
    ix = NULL;
    CHECK_ERR(vdx_deserialize_index(b, n, &ix), VDX_ERR_FORMAT);
    CHECK(strstr(vdx_last_error(), "non-finite"));
    /* an empty chain is valid (identity) */
    uint8_t *e = malloc(n);
    memcpy(e, g, 37);
    patch_i32(e, 37, 0);
    memcpy(e + 41, g + 151, n - 151);
    ix = NULL;
    CHECK_OK(vdx_deserialize_index(e, 41 + n - 151, &ix));
    CHECK(ix && vdx_index_pretransform_chain_size(ix) == 0 && vdx_index_ntotal(ix) == 8);
    vdx_index_free(ix);
    free(e);
    free(b);
    free(g);
}

int main(void) {
    RUN(test_golden_ltra);
    RUN(test_golden_pca);
    RUN(test_golden_norm_rr_center);
    RUN(test_round_trip_kinds);
    RUN(test_vt_alone);
    RUN(test_hostile);
    return TEST_SUMMARY();
}
