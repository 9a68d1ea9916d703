/*
 * test_io_sq.c — IndexScalarQuantizer ("IxSQ") and IndexIVFScalarQuantizer
 * ("IwSq") files: the golden files written by FAISS (tests/fuzz/make_corpus.py)
 * load with the right contents and are written back byte for byte; every
 * truncation and corrupted count is an error, never a crash.
 */
#include "test.h"
#include "io_test_util.h"


static const char *goldens[] = {"sq8_l2_d4_n3.index", "sqfp16_ip_d4_n3.index",
                                "ivfsq8_l2_d4_n10.index"};

/* the vectors of make_corpus.py's vecs(scale, offset) */
static float vec(int i, float scale, float offset) {
    return (float)i * scale + offset;
}

static void test_golden_contents(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_read_index(CORPUS "sq8_l2_d4_n3.index", 0, &ix));
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexScalarQuantizer") == 0);
        CHECK(vdx_index_d(ix) == 4 && vdx_index_ntotal(ix) == 3);
        CHECK(vdx_index_metric(ix) == VDX_METRIC_L2);
        vdx_sq *sq = vdx_index_sq_quantizer(ix);
        CHECK(sq && vdx_sq_qtype(sq) == VDX_SQ_8BIT);
        size_t nt = 0;
        const float *t = vdx_sq_trained(sq, &nt);
        CHECK(nt == 8);
        /* per-dimension min is row 0, range is 8 (rows 0 and 2) */
        for (int j = 0; nt == 8 && j < 4; j++)
            CHECK(t[j] == vec(j, 1, 0) && t[4 + j] == 8.0f);
        float y[12];
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, 3, y));
        for (int i = 0; i < 12; i++) CHECK(fabsf(y[i] - vec(i, 1, 0)) <= 8.0f / 255);
        vdx_index_free(ix);
    }
    CHECK_OK(vdx_read_index(CORPUS "sqfp16_ip_d4_n3.index", 0, &ix));
    if (ix) {
        CHECK(vdx_index_metric(ix) == VDX_METRIC_INNER_PRODUCT);
        float y[12];
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, 3, y));
        for (int i = 0; i < 12; i++) CHECK(y[i] == vec(i, 0.25f, -1.0f));
        vdx_index_free(ix);
    }
    CHECK_OK(vdx_read_index(CORPUS "ivfsq8_l2_d4_n10.index", 0, &ix));
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexIVFScalarQuantizer") == 0);
        CHECK(vdx_index_is_ivf(ix));
        CHECK(vdx_index_ivf_nlist(ix) == 4 && vdx_index_ivf_nprobe(ix) == 2);
        CHECK(vdx_index_ntotal(ix) == 10);
        CHECK(vdx_index_ivf_sq_by_residual(ix) == 1);
        vdx_index_free(ix);
    }
}

static void test_golden_roundtrip(void) {
    for (size_t g = 0; g < sizeof goldens / sizeof goldens[0]; g++) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", goldens[g]);
        size_t n = 0;
        uint8_t *b = slurp(path, &n);
        CHECK(b != NULL);
        if (!b) continue;
        vdx_index *ix = NULL;
        CHECK_OK(vdx_deserialize_index(b, n, &ix));
        uint8_t *out = NULL;
        size_t on = 0;
        if (ix) CHECK_OK(vdx_serialize_index(ix, &out, &on));
        CHECK(on == n && out && memcmp(out, b, n) == 0);
        vdx_free_buffer(out);
        vdx_index_free(ix);
        free(b);
    }
}

static void test_truncations(void) {
    for (size_t g = 0; g < sizeof goldens / sizeof goldens[0]; g++) {
        char path[512];
        snprintf(path, sizeof path, CORPUS "%s", goldens[g]);
        size_t n = 0;
        uint8_t *b = slurp(path, &n);
        if (!b) continue;
        for (size_t k = 0; k < n; k++) {
            vdx_index *ix = NULL;
            vdx_status s = vdx_deserialize_index(b, k, &ix);
            CHECK(s == VDX_ERR_FORMAT && ix == NULL);
            if (s == VDX_OK) vdx_index_free(ix);
        }
        free(b);
    }
}

static void patch_u64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static void patch_i32(uint8_t *b, size_t off, int32_t v) { memcpy(b + off, &v, 4); }

static void test_corrupt_fields(void) {
    size_t n = 0;
    uint8_t *g = slurp(CORPUS "sq8_l2_d4_n3.index", &n);
    CHECK(g && n == 125);
    if (!g || n != 125) return;
    uint8_t *b = malloc(n);
    struct {
        size_t off;
        int is64;
        uint64_t v;
        vdx_status want;
    } cases[] = {
        {37, 0, 9, VDX_ERR_FORMAT},              /* qtype */
        {37, 0, 8, VDX_ERR_FORMAT}, /* 8bit_direct_signed: holds no trained values */
        {41, 0, 2, VDX_ERR_UNSUPPORTED},         /* rangestat */
        {49, 1, 5, VDX_ERR_FORMAT},              /* d */
        {57, 1, 2, VDX_ERR_FORMAT},              /* code_size */
        {65, 1, 3, VDX_ERR_FORMAT},              /* trained count */
        {65, 1, (uint64_t)1 << 62, VDX_ERR_FORMAT},
        {105, 1, 13, VDX_ERR_FORMAT},            /* codes count */
        {105, 1, (uint64_t)1 << 63, VDX_ERR_FORMAT},
        {8, 1, (uint64_t)1 << 60, VDX_ERR_FORMAT}, /* ntotal */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(b, g, n);
        if (cases[c].is64) patch_u64(b, cases[c].off, cases[c].v);
        else patch_i32(b, cases[c].off, (int32_t)cases[c].v);
        vdx_index *ix = NULL;
        vdx_status s = vdx_deserialize_index(b, n, &ix);
        if (s != cases[c].want)
            fprintf(stderr, "  case %zu: %s (%s)\n", c, vdx_status_name(s),
                    vdx_last_error());
        CHECK(s == cases[c].want && ix == NULL);
        if (!s) vdx_index_free(ix);
    }
    /* a NaN range */
    memcpy(b, g, n);
    float nan = NAN;
    memcpy(b + 73, &nan, 4);
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_deserialize_index(b, n, &ix), VDX_ERR_FORMAT);
    free(b);
    free(g);
}

static void test_write_read_all_qtypes(void) {
    const int64_t d = 7, nb = 50;
    float x[7 * 50];
    test_rand_fill(x, sizeof x / sizeof x[0], 3);
    for (int qt = 0; qt < 8; qt++) {
        vdx_index *ix = NULL, *back = NULL;
        CHECK_OK(vdx_index_sq_new(d, qt, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_index_train(ix, nb, x));
        CHECK_OK(vdx_index_add(ix, nb, x));
        uint8_t *buf = NULL;
        size_t n = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &n));
        CHECK_OK(vdx_deserialize_index(buf, n, &back));
        if (back) {
            float a[7], c[7];
            CHECK_OK(vdx_index_reconstruct(ix, 13, a));
            CHECK_OK(vdx_index_reconstruct(back, 13, c));
            CHECK(memcmp(a, c, sizeof a) == 0);
        }
        vdx_free_buffer(buf);
        vdx_index_free(ix);
        vdx_index_free(back);
    }
}

int main(void) {
    RUN(test_golden_contents);
    RUN(test_golden_roundtrip);
    RUN(test_truncations);
    RUN(test_corrupt_fields);
    RUN(test_write_read_all_qtypes);
    return TEST_SUMMARY();
}
