/*
 * test_io_aq.c — the additive-quantizer kinds in FAISS's format
 * (src/io/aq_io.c): FAISS-written goldens (tests/fuzz/make_corpus.py,
 * AQ_GOLDEN: codebooks on separate axes, so every code, reconstruction and
 * search result is known exactly), written back byte for byte; every
 * truncation and corrupt fields fail cleanly; vecdex-built indexes of every
 * kind and search type round-trip.
 */
#include "test.h"
#include "io_test_util.h"

/* AQ_VECS of make_corpus.py: (a, b) -> the vector (a, b, 0, 0), code a | b << 3 */
static const int VEC[5][2] = {{3, 5}, {0, 0}, {7, 7}, {1, 6}, {4, 2}};

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

/* serialising ix gives the file's bytes */
static void same_bytes(const vdx_index *ix, const uint8_t *b, size_t n) {
    uint8_t *out = NULL;
    size_t on = 0;
    CHECK_OK(vdx_serialize_index(ix, &out, &on));
    CHECK(on == n && memcmp(out, b, n) == 0);
    vdx_free_buffer(out);
}

static void test_golden_flat(void) {
    const char *names[4] = {"rq2x3_l2_d4_n5.index", "rq2x3_nfloat_l2_d4_n5.index",
                            "lsq2x3_ip_d4_n5.index", "prq2x1x3_l2_d4_n5.index"};
    const char *types[4] = {"IndexResidualQuantizer", "IndexResidualQuantizer",
                            "IndexLocalSearchQuantizer",
                            "IndexProductResidualQuantizer"};
    const size_t cs[4] = {1, 5, 1, 1};
    for (int g = 0; g < 4; g++) {
        uint8_t *b;
        size_t n;
        vdx_index *ix = load(names[g], &b, &n);
        if (!ix) {
            free(b);
            continue;
        }
        CHECK(strcmp(vdx_index_type_name(ix), types[g]) == 0);
        CHECK(vdx_index_ntotal(ix) == 5 && vdx_index_d(ix) == 4);
        vdx_aq *aq = vdx_index_aq(ix);
        CHECK(vdx_aq_code_size(aq) == cs[g]);
        CHECK(vdx_aq_search_type(aq) == (g == 1 ? VDX_AQ_ST_NORM_FLOAT
                                          : g == 2 ? VDX_AQ_ST_LUT_NONORM : 0));
        const uint8_t *codes = vdx_index_aq_codes(ix);
        for (int i = 0; i < 5; i++) {
            /* the product splits (a, b) over two 2-d halves: a | b << 3 too */
            int a = VEC[i][0], bb = VEC[i][1];
            float want[4] = {(float)a, g == 3 ? 0.0f : (float)bb,
                             g == 3 ? (float)bb : 0.0f, 0};
            CHECK(codes[i * cs[g]] == (uint8_t)(a | bb << 3));
            float y[4];
            CHECK_OK(vdx_index_reconstruct(ix, i, y));
            CHECK(memcmp(y, want, sizeof y) == 0);
            if (g == 1) { /* the norm follows the 6 index bits */
                uint64_t v = 0;
                for (int k = 0; k < 5; k++) v |= (uint64_t)codes[i * 5 + k] << (8 * k);
                uint32_t u = (uint32_t)(v >> 6);
                float nf;
                memcpy(&nf, &u, 4);
                CHECK(nf == (float)(a * a + bb * bb));
            }
        }
        /* the query (7, 7, 0, 0) (split for the product) finds vector 2 */
        float q[4] = {7, g == 3 ? 0.0f : 7, g == 3 ? 7.0f : 0, 0}, D[2];
        vdx_idx_t I[2];
        CHECK_OK(vdx_index_search(ix, 1, q, 2, NULL, D, I));
        CHECK(I[0] == 2);
        CHECK(g == 2 ? D[0] == 98.0f : D[0] == 0.0f);
        same_bytes(ix, b, n);
        vdx_index_free(ix);
        free(b);
    }
}

static void test_golden_coarse(void) {
    uint8_t *b;
    size_t n;
    vdx_index *q = load("rcq2x3_l2_d4.index", &b, &n);
    if (q) {
        CHECK(strcmp(vdx_index_type_name(q), "ResidualCoarseQuantizer") == 0);
        CHECK(vdx_index_ntotal(q) == 64 && vdx_index_rcq_beam_factor(q) == 4.0f);
        float x[4] = {1, 6, 0, 0}, D[3], y[4];
        vdx_idx_t I[3];
        CHECK_OK(vdx_index_search(q, 1, x, 3, NULL, D, I));
        CHECK(I[0] == (1 | 6 << 3) && D[0] == 0.0f);
        CHECK_OK(vdx_index_reconstruct(q, 5 | 2 << 3, y));
        CHECK(y[0] == 5 && y[1] == 2 && y[2] == 0);
        same_bytes(q, b, n);
        vdx_index_free(q);
    }
    free(b);
    /* IVF-RQ: lists around (+-50, 0, 0, 0), residual codes as above */
    vdx_index *ix = load("ivfrq2x3_l2_d4_n10.index", &b, &n);
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexIVFResidualQuantizer") == 0);
        CHECK(vdx_index_ntotal(ix) == 10 && vdx_index_ivf_nlist(ix) == 2);
        CHECK(vdx_index_ivf_aq_by_residual(ix) == 1);
        CHECK(vdx_index_ivf_list_size(ix, 0) == 5 && vdx_index_ivf_list_size(ix, 1) == 5);
        float x[4] = {-50 + 4, 2, 0, 0}, D[2];
        vdx_idx_t I[2];
        CHECK_OK(vdx_index_search(ix, 1, x, 2, NULL, D, I));
        CHECK(I[0] == 9 && D[0] == 0.0f);
        same_bytes(ix, b, n);
        vdx_index_free(ix);
    }
    free(b);
    /* IVF-Flat over an RCQ of 2 centroids */
    ix = load("ivf_rcq_flat_l2_d4_n10.index", &b, &n);
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(vdx_index_ivf_quantizer(ix)),
                     "ResidualCoarseQuantizer") == 0);
        float x[4] = {20 + 3, 5, 0, 0}, D[1];
        vdx_idx_t I[1];
        CHECK_OK(vdx_index_search(ix, 1, x, 1, NULL, D, I));
        CHECK(I[0] == 0 && D[0] == 0.0f);
        same_bytes(ix, b, n);
        vdx_index_free(ix);
    }
    free(b);
}

/* trained FAISS files with the other norm encodings load and write back */
static void test_valid_trained(void) {
    const char *names[5] = {"valid_aq_IVF4_LSQ2x3_Nqint8.index",
                            "valid_aq_LSQ2x3_Nlsq2x4.index",
                            "valid_aq_PLSQ2x1x3_Nqint4.index",
                            "valid_aq_RQ2x3_Ncqint4.index",
                            "valid_aq_RQ2x3_Nrq2x4.index"};
    for (int g = 0; g < 5; g++) {
        uint8_t *b;
        size_t n;
        vdx_index *ix = load(names[g], &b, &n);
        if (ix) {
            CHECK(vdx_index_ntotal(ix) == 7);
            float x[4] = {0.5f, 0.5f, 0.5f, 0.5f}, D[3];
            vdx_idx_t I[3];
            CHECK_OK(vdx_index_search(ix, 1, x, 3, NULL, D, I));
            CHECK(I[0] >= 0 && I[0] < 7);
            same_bytes(ix, b, n);
            vdx_index_free(ix);
        }
        free(b);
    }
}

/* every strict prefix of a file fails with VDX_ERR_FORMAT */
static void truncations(const char *name) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "%s", name);
    size_t n;
    uint8_t *b = slurp(path, &n);
    CHECK(b != NULL);
    if (!b) return;
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        vdx_index *ix = (vdx_index *)1;
        vdx_status s = vdx_deserialize_index(b, len, &ix);
        if (s != VDX_ERR_FORMAT || ix != NULL) {
            if (!bad)
                fprintf(stderr, "  %s cut at %zu: %s %s\n", name, len,
                        vdx_status_name(s), vdx_last_error());
            bad = 1;
            if (s == VDX_OK) vdx_index_free(ix);
        }
    }
    CHECK(!bad);
    free(b);
}

static void test_truncated(void) {
    truncations("rq2x3_nfloat_l2_d4_n5.index");
    truncations("lsq2x3_ip_d4_n5.index");
    truncations("prq2x1x3_l2_d4_n5.index");
    truncations("rcq2x3_l2_d4.index");
    truncations("ivfrq2x3_l2_d4_n10.index");
    truncations("valid_aq_RQ2x3_Nrq2x4.index");
    truncations("valid_aq_PLSQ2x1x3_Nqint4.index");
}

static void patch(uint8_t *b, size_t off, const void *v, size_t len) {
    memcpy(b + off, v, len);
}

static void expect_bad(const uint8_t *b, size_t n, vdx_status code,
                       const char *needle) {
    vdx_index *ix = (vdx_index *)1;
    vdx_status s = vdx_deserialize_index(b, n, &ix);
    CHECK(s == code);
    CHECK(ix == NULL);
    CHECK(strstr(vdx_last_error(), needle) != NULL);
    if (s != code || !strstr(vdx_last_error(), needle))
        fprintf(stderr, "  got %s '%s', want %s containing '%s'\n",
                vdx_status_name(s), vdx_last_error(), vdx_status_name(code),
                needle);
    if (s == VDX_OK) vdx_index_free(ix);
}

/* IxRq: header 0..36, d 37, M 45, nbits count 53, nbits 61 / 69,
 * is_trained 77, codebook count 78, codebooks 86 (64 floats), search_type
 * 342, norm_min 346, norm_max 350, train_type 354, max_beam_size 358,
 * code_size 362, code count 370, codes 378 */
static void test_corrupt_rq(void) {
    size_t n;
    uint8_t *orig = slurp(CORPUS "rq2x3_l2_d4_n5.index", &n);
    CHECK(orig && n == 383);
    if (!orig || n != 383) {
        free(orig);
        return;
    }
    uint8_t *b = malloc(n);
    uint64_t v;
    int32_t i32;
#define RESET() memcpy(b, orig, n)
    RESET(); v = 5; patch(b, 37, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "d=5");
    RESET(); v = 0; patch(b, 45, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "M=0");
    RESET(); v = 3; patch(b, 53, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "for M=2");
    RESET(); v = 20; patch(b, 61, &v, 8);
    expect_bad(b, n, VDX_ERR_UNSUPPORTED, "nbits=20");
    RESET(); v = 40; patch(b, 61, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "nbits=40");
    RESET(); b[77] = 2;
    expect_bad(b, n, VDX_ERR_FORMAT, "is_trained");
    RESET(); v = 63; patch(b, 78, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "expected total_codebook_size");
    RESET(); v = (uint64_t)1 << 62; patch(b, 78, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "at most 64");
    RESET(); { float f = INFINITY; patch(b, 90, &f, 4); }
    expect_bad(b, n, VDX_ERR_FORMAT, "non-finite");
    RESET(); i32 = 10; patch(b, 342, &i32, 4);
    expect_bad(b, n, VDX_ERR_FORMAT, "search type 10");
    RESET(); i32 = 0; patch(b, 358, &i32, 4);
    expect_bad(b, n, VDX_ERR_FORMAT, "max_beam_size=0");
    RESET(); v = 2; patch(b, 362, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "code_size=2");
    RESET(); v = 6; patch(b, 370, &v, 8);
    expect_bad(b, n, VDX_ERR_FORMAT, "");
    RESET(); b[32] = 0; /* an untrained index holding codes */
    expect_bad(b, n, VDX_ERR_FORMAT, "not trained");
    /* a trained index without codebooks */
    {
        uint8_t *c = malloc(n);
        memcpy(c, orig, 78);
        v = 0;
        memcpy(c + 78, &v, 8);
        memcpy(c + 86, orig + 342, n - 342);
        expect_bad(c, n - 256, VDX_ERR_FORMAT, "no codebooks");
        free(c);
    }
#undef RESET
    free(b);
    free(orig);
}

/* IxLS tail at 354: K, train_iters, ...; IxPR: nsplits at 226, sub-quantizer
 * 0 at 234 (d = 2); ImRQ: beam_factor in the last 4 bytes */
static void test_corrupt_others(void) {
    size_t n;
    uint64_t v;
    uint8_t *o = slurp(CORPUS "lsq2x3_ip_d4_n5.index", &n);
    if (o && n == 444) {
        v = 16;
        patch(o, 354, &v, 8);
        expect_bad(o, n, VDX_ERR_FORMAT, "LSQ K=16");
        v = 8;
        patch(o, 354, &v, 8);
        v = (uint64_t)1 << 40; /* train_iters */
        patch(o, 362, &v, 8);
        expect_bad(o, n, VDX_ERR_FORMAT, "out of range");
    } else {
        CHECK(0);
    }
    free(o);
    o = slurp(CORPUS "prq2x1x3_l2_d4_n5.index", &n);
    if (o && n == 505) {
        v = 3;
        patch(o, 226, &v, 8);
        expect_bad(o, n, VDX_ERR_FORMAT, "nsplits=3");
        v = 2;
        patch(o, 226, &v, 8);
        v = 4;
        patch(o, 234, &v, 8);
        expect_bad(o, n, VDX_ERR_FORMAT, "expected 2");
    } else {
        CHECK(0);
    }
    free(o);
    o = slurp(CORPUS "rcq2x3_l2_d4.index", &n);
    if (o) {
        float f = 0.5f;
        patch(o, n - 4, &f, 4);
        expect_bad(o, n, VDX_ERR_FORMAT, "beam_factor=0.5");
        int64_t nt = 63;
        f = 4.0f;
        patch(o, n - 4, &f, 4);
        patch(o, 8, &nt, 8);
        expect_bad(o, n, VDX_ERR_FORMAT, "2^tot_bits");
    }
    free(o);
    o = slurp(CORPUS "ivfrq2x3_l2_d4_n10.index", &n);
    if (o && n == 615) {
        v = 3; /* IVF code_size */
        patch(o, 139, &v, 8);
        expect_bad(o, n, VDX_ERR_FORMAT, "code_size=3");
        v = 1;
        patch(o, 139, &v, 8);
        o[472] = 9; /* by_residual */
        expect_bad(o, n, VDX_ERR_FORMAT, "by_residual=9");
    } else {
        CHECK(0);
    }
    free(o);
}

/* vecdex-trained indexes of every kind: a round trip keeps results and
 * bytes */
static void test_round_trip(void) {
    const int64_t d = 8, nt = 1500;
    float *x = malloc(sizeof(float) * nt * d);
    test_rand_fill(x, (size_t)(nt * d), 9);
    const char *keys[] = {"RQ2x4_Ncqint8", "RQ1x6_1x4_Nqint4", "LSQ2x4_Nrq2x4",
                          "PRQ2x2x3_Nfloat", "PLSQ2x1x4", "IVF8,RQ2x4_Nlsq2x4",
                          "IVF8,PLSQ2x1x4_Ncqint4", "IVF8(RCQ1x3),Flat",
                          "IVF4(RCQ2x1),PRQ2x1x4", "RQ2x5_Nfloat"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(d, keys[k], k == 9 ? VDX_METRIC_INNER_PRODUCT
                                                      : VDX_METRIC_L2, &ix));
        if (!ix) continue;
        vdx_aq *aq = vdx_index_aq(ix);
        for (int64_t s = 0; aq && s < vdx_aq_nsplits(aq); s++) {
            vdx_aq *q = vdx_aq_nsplits(aq) > 1 ? vdx_aq_subquantizer(aq, s) : aq;
            vdx_aq_options o;
            CHECK_OK(vdx_aq_get_options(q, &o));
            o.train_iters = 3; /* LSQ: quick */
            CHECK_OK(vdx_aq_set_options(q, &o));
        }
        CHECK_OK(vdx_index_train(ix, nt, x));
        CHECK_OK(vdx_index_add(ix, 300, x));
        uint8_t *buf = NULL, *buf2 = NULL;
        size_t bn = 0, bn2 = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &bn));
        vdx_index *r = NULL;
        CHECK_OK(vdx_deserialize_index(buf, bn, &r));
        if (r) {
            float D1[20], D2[20];
            vdx_idx_t I1[20], I2[20];
            CHECK_OK(vdx_index_search(ix, 4, x + 1000 * d, 5, NULL, D1, I1));
            CHECK_OK(vdx_index_search(r, 4, x + 1000 * d, 5, NULL, D2, I2));
            CHECK(memcmp(I1, I2, sizeof I1) == 0 && memcmp(D1, D2, sizeof D1) == 0);
            CHECK_OK(vdx_serialize_index(r, &buf2, &bn2));
            CHECK(bn == bn2 && memcmp(buf, buf2, bn) == 0);
            vdx_free_buffer(buf2);
        }
        vdx_index_free(r);
        vdx_free_buffer(buf);
        vdx_index_free(ix);
    }
    /* an untrained index round-trips too (FAISS's reader refuses these) */
    vdx_index *u = NULL, *r = NULL;
    CHECK_OK(vdx_index_factory(d, "IVF4,LSQ2x4", VDX_METRIC_L2, &u));
    uint8_t *buf = NULL;
    size_t bn = 0;
    CHECK_OK(vdx_serialize_index(u, &buf, &bn));
    CHECK_OK(vdx_deserialize_index(buf, bn, &r));
    CHECK(r && !vdx_index_is_trained(r));
    vdx_free_buffer(buf);
    vdx_index_free(r);
    vdx_index_free(u);
    free(x);
}

/* The fast-scan kinds (IRfs / ILfs / IPRf, FAISS-trained): type, sizes,
 * byte-identical round trip, search = the float look-up table over the
 * stored codes (checked against each stored vector's table key computed
 * here from its reconstruction and its stored norm), every truncation and
 * the hostile fields refused. */
static void test_fastscan(void) {
    const char *names[4] = {"valid_aq_RQ2x4fs_Nrq2x4.index",
                            "valid_aq_LSQ2x4fs_Nlsq2x4.index",
                            "valid_aq_PRQ2x1x4fs_Nrq2x4.index",
                            "valid_aq_RQ3x4fs_ip.index"};
    const char *types[4] = {"IndexResidualQuantizerFastScan",
                            "IndexLocalSearchQuantizerFastScan",
                            "IndexProductResidualQuantizerFastScan",
                            "IndexResidualQuantizerFastScan"};
    for (int g = 0; g < 4; g++) {
        uint8_t *b;
        size_t n;
        vdx_index *ix = load(names[g], &b, &n);
        if (!ix) {
            free(b);
            continue;
        }
        CHECK(strcmp(vdx_index_type_name(ix), types[g]) == 0);
        CHECK(vdx_index_ntotal(ix) == 37 && vdx_index_d(ix) == 4);
        CHECK(vdx_index_aq_fastscan_bbs(ix) == 32);
        same_bytes(ix, b, n);
        const int ip = g == 3;
        const int64_t nt = 37;
        float rec[37 * 4], q[4] = {0.3f, 0.9f, 0.1f, 0.5f}, zero[4] = {0, 0, 0, 0};
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, nt, rec));
        float D[37], D0[37];
        vdx_idx_t I[37], I0[37];
        CHECK_OK(vdx_index_search(ix, 1, q, nt, NULL, D, I));
        int ok = 1;
        if (!ip) {
            /* a zero query's distances are the stored norms */
            CHECK_OK(vdx_index_search(ix, 1, zero, nt, NULL, D0, I0));
            float norm[37];
            for (int64_t j = 0; j < nt; j++) norm[I0[j]] = D0[j];
            for (int64_t j = 0; j < nt; j++) {
                float ipq = 0, nr = 0;
                for (int c = 0; c < 4; c++) {
                    ipq += q[c] * rec[I[j] * 4 + c];
                    nr += rec[I[j] * 4 + c] * rec[I[j] * 4 + c];
                }
                if (fabsf(D[j] - (norm[I[j]] - 2 * ipq)) > 1e-4f) ok = 0;
                /* the stored norm is a 2x4-bit approximation of |x|^2 */
                if (fabsf(norm[I[j]] - nr) > 0.25f * (nr + 0.1f)) ok = 0;
            }
        } else {
            for (int64_t j = 0; j < nt; j++) {
                float ipq = 0;
                for (int c = 0; c < 4; c++) ipq += q[c] * rec[I[j] * 4 + c];
                if (fabsf(D[j] - ipq) > 1e-4f) ok = 0;
            }
        }
        /* all 37 returned, each once, best first */
        int seen[37] = {0};
        for (int64_t j = 0; j < nt; j++) {
            if (I[j] < 0 || I[j] >= nt || seen[I[j]]++) ok = 0;
            if (j && (ip ? D[j] > D[j - 1] : D[j] < D[j - 1])) ok = 0;
        }
        CHECK(ok);
        vdx_index_free(ix);
        free(b);
        truncations(names[g]);
    }
    const char *bad[5] = {"bad_aqfs_bbs.index", "bad_aqfs_M.index",
                          "bad_aqfs_ntotal2.index", "bad_aqfs_normscale.index",
                          "bad_aqfs_truncated.index"};
    const char *why[5] = {"bbs=48", "M=5", "ntotal2=", "norm_scale=-3", ""};
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", bad[i]);
        size_t n;
        uint8_t *b = slurp(path, &n);
        CHECK(b != NULL);
        if (!b) continue;
        expect_bad(b, n, VDX_ERR_FORMAT, why[i]);
        free(b);
    }
}

/* The IVF fast-scan kinds (IVRf / IVLf / NPRf / NPLf), vecdex-built: the
 * round trip gives the same bytes and the same search results, every strict
 * prefix fails with VDX_ERR_FORMAT, damaged copies fail cleanly or load into
 * an index that searches. */
static void test_ivf_fastscan(void) {
    const char *desc[4] = {"IVF4,RQ2x4fsr_Nrq2x4", "IVF4,LSQ2x4fs_Nlsq2x4",
                           "IVF4,PRQ2x1x4fsr_Nrq2x4", "IVF4,PLSQ2x1x4fs_Nlsq2x4"};
    enum { D = 4, NT = 600, NB = 70 };
    float *xt = malloc(sizeof(float) * NT * D);
    uint64_t seed = 12345;
    for (int i = 0; i < NT * D; i++)
        xt[i] = (float)(rng_next(&seed) % 10000) / 10000.0f;
    for (int g = 0; g < 4; g++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(D, desc[g], VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK_OK(vdx_index_train(ix, NT, xt));
        CHECK_OK(vdx_index_add(ix, NB, xt));
        CHECK_OK(vdx_index_ivf_set_nprobe(ix, 4));
        uint8_t *b = NULL;
        size_t n = 0;
        CHECK_OK(vdx_serialize_index(ix, &b, &n));
        vdx_index *r = NULL;
        CHECK_OK(vdx_deserialize_index(b, n, &r));
        if (r) {
            same_bytes(r, b, n);
            CHECK(vdx_index_ntotal(r) == NB);
            float D1[10], D2[10];
            vdx_idx_t I1[10], I2[10];
            CHECK_OK(vdx_index_ivf_set_nprobe(r, 4));
            CHECK_OK(vdx_index_search(ix, 1, xt + 5 * D, 10, NULL, D1, I1));
            CHECK_OK(vdx_index_search(r, 1, xt + 5 * D, 10, NULL, D2, I2));
            CHECK(memcmp(I1, I2, sizeof I1) == 0 && memcmp(D1, D2, sizeof D1) == 0);
            vdx_index_free(r);
        }
        /* a batch goes list by list, with max_codes query by query in probe
         * order: the same candidates (near ties of the 8-bit keys aside),
         * with k2 = 2k in the slot set (k 10) and the reservoir (k 40) */
        for (int kk = 10; kk <= 40; kk += 30) {
            enum { NQ = 50 };
            float *Da = malloc(sizeof(float) * NQ * 40), *Db = malloc(sizeof(float) * NQ * 40);
            vdx_idx_t *Ia = malloc(sizeof(vdx_idx_t) * NQ * 40),
                      *Ib = malloc(sizeof(vdx_idx_t) * NQ * 40);
            vdx_search_params sp;
            vdx_search_params_init(&sp);
            sp.max_codes = (int64_t)1 << 40;
            CHECK_OK(vdx_index_search(ix, NQ, xt + 100 * D, kk, NULL, Da, Ia));
            CHECK_OK(vdx_index_search(ix, NQ, xt + 100 * D, kk, &sp, Db, Ib));
            int rows_diff = 0, dist_bad = 0;
            for (int q = 0; q < NQ; q++) {
                if (memcmp(Ia + q * kk, Ib + q * kk, sizeof(vdx_idx_t) * (size_t)kk)) {
                    rows_diff++;
                    continue;
                }
                for (int j = 0; j < kk; j++)
                    if (Ia[q * kk + j] < 0 ||
                        fabsf(Da[q * kk + j] - Db[q * kk + j]) >
                            1e-4f * (1.0f + fabsf(Da[q * kk + j])))
                        dist_bad++;
            }
            if (rows_diff > NQ / 10 || dist_bad)
                fprintf(stderr, "  %s k=%d: %d rows differ, %d distances\n",
                        desc[g], kk, rows_diff, dist_bad);
            CHECK(rows_diff <= NQ / 10 && dist_bad == 0);
            free(Da);
            free(Db);
            free(Ia);
            free(Ib);
        }
        int bad = 0;
        for (size_t len = 0; len < n; len++) {
            vdx_index *t = (vdx_index *)1;
            vdx_status s = vdx_deserialize_index(b, len, &t);
            if (s != VDX_ERR_FORMAT || t != NULL) {
                if (!bad)
                    fprintf(stderr, "  %s cut at %zu: %s %s\n", desc[g], len,
                            vdx_status_name(s), vdx_last_error());
                bad = 1;
                if (s == VDX_OK) vdx_index_free(t);
            }
        }
        CHECK(!bad);
        vdx_free_buffer(b);
        int ok = 0, failed = 0;
        read_damaged_copies(ix, 300, &seed, NULL, &ok, &failed);
        CHECK(ok + failed == 300 && failed > 0);
        vdx_index_free(ix);
    }
    free(xt);
    /* faiss-written (make_corpus.py aq_ivffs_full): written back byte for
     * byte, every prefix refused */
    const char *names[4] = {"valid_aq_IVF4_RQ2x4fsr_Nrq2x4.index",
                            "valid_aq_IVF4_LSQ2x4fs_Nlsq2x4.index",
                            "valid_aq_IVF4_PRQ2x1x4fsr_Nrq2x4.index",
                            "valid_aq_IVF4_PLSQ2x1x4fs_Nlsq2x4.index"};
    for (int g = 0; g < 4; g++) {
        uint8_t *b;
        size_t n;
        vdx_index *ix = load(names[g], &b, &n);
        if (ix) {
            CHECK(vdx_index_ntotal(ix) == 45 && vdx_index_d(ix) == 4);
            same_bytes(ix, b, n);
            vdx_index_free(ix);
        }
        free(b);
        truncations(names[g]);
    }
}

int main(void) {
    RUN(test_ivf_fastscan);
    RUN(test_fastscan);
    RUN(test_golden_flat);
    RUN(test_golden_coarse);
    RUN(test_valid_trained);
    RUN(test_truncated);
    RUN(test_corrupt_rq);
    RUN(test_corrupt_others);
    RUN(test_round_trip);
    return TEST_SUMMARY();
}
