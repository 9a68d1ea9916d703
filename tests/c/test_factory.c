/* test_factory.c — vdx_index_factory: every accepted string builds the right
 * tree (type, metric, nlist, children); malformed strings fail with a message
 * naming the token and its position; a built index actually works. */
#include "test.h"

static void test_accepted(void) {
    static const struct {
        const char *desc;
        const char *type, *sub; /* sub: child (IDMap) type or NULL */
        int64_t nlist;          /* of the IVF (top or child), 0 if none */
    } cases[] = {
        {"Flat", "IndexFlat", NULL, 0},
        {"IDMap,Flat", "IndexIDMap", "IndexFlat", 0},
        {"IDMap2,Flat", "IndexIDMap2", "IndexFlat", 0},
        {"IVF100,Flat", "IndexIVFFlat", NULL, 100},
        {"IVF1,Flat", "IndexIVFFlat", NULL, 1},
        {"IVF4096,Flat", "IndexIVFFlat", NULL, 4096},
        {"IVF2k,Flat", "IndexIVFFlat", NULL, 2048},
        {"IDMap,IVF100,Flat", "IndexIDMap", "IndexIVFFlat", 100},
        {"IDMap2,IVF7,Flat", "IndexIDMap2", "IndexIVFFlat", 7},
        /* FAISS takes the wrapper as a suffix too */
        {"Flat,IDMap", "IndexIDMap", "IndexFlat", 0},
        {"Flat,IDMap2", "IndexIDMap2", "IndexFlat", 0},
        {"IVF9,Flat,IDMap", "IndexIDMap", "IndexIVFFlat", 9},
        {"IVF9,Flat,IDMap2", "IndexIDMap2", "IndexIVFFlat", 9},
    };
    vdx_metric metrics[2] = {VDX_METRIC_L2, VDX_METRIC_INNER_PRODUCT};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int m = 0; m < 2; m++) {
            vdx_index *ix = NULL;
            CHECK_OK(vdx_index_factory(16, cases[c].desc, metrics[m], &ix));
            if (!ix) continue;
            const char *tn = vdx_index_type_name(ix);
            /* flat indexes may name themselves by metric (IndexFlatL2) */
            CHECK(!strncmp(tn, cases[c].type, strlen(cases[c].type)));
            CHECK(vdx_index_d(ix) == 16);
            CHECK(vdx_index_ntotal(ix) == 0);
            CHECK(vdx_index_metric(ix) == metrics[m]);
            vdx_index *sub = vdx_index_sub_index(ix);
            if (cases[c].sub) {
                CHECK(sub && !strncmp(vdx_index_type_name(sub), cases[c].sub,
                                      strlen(cases[c].sub)));
                CHECK(sub && vdx_index_metric(sub) == metrics[m]);
            } else {
                CHECK(sub == NULL);
            }
            const vdx_index *ivf = vdx_index_is_ivf(ix) ? ix : sub;
            if (cases[c].nlist) {
                CHECK(ivf && vdx_index_is_ivf(ivf));
                CHECK(vdx_index_ivf_nlist(ivf) == cases[c].nlist);
                vdx_index *q = vdx_index_ivf_quantizer(ivf);
                CHECK(q && vdx_index_metric(q) == metrics[m]);
                CHECK(q && vdx_index_d(q) == 16);
            } else {
                CHECK(!vdx_index_is_ivf(ix));
            }
            vdx_index_free(ix);
        }
    }
}

static void test_rejected(void) {
    static const struct {
        const char *desc;
        const char *needle; /* must appear in the message */
    } cases[] = {
        {"IVF100,PQ16x", "'PQ16x' at position 7"},
        {"", "position 0"},
        {"Flat,", "position 5"},
        {",Flat", "position 0"},
        {" Flat", "' Flat' at position 0"},
        {"IVF10 ,Flat", "'IVF10 ' at position 0"},
        {"flat", "'flat' at position 0"},
        {"IVF100", "'IVF100' at position 0"},
        {"IVF,Flat", "'IVF' at position 0"},
        {"IVF0,Flat", "'IVF0' at position 0"},
        {"IVF10x,Flat", "'IVF10x' at position 0"},
        {"IVF-3,Flat", "'IVF-3' at position 0"},
        {"IVF99999999999999999999,Flat", "position 0"},
        {"Flat,IDMap,Flat", "'IDMap' at position 5"},
        {",IDMap", "position 0"},
        {"Bogus,IDMap2", "'Bogus' at position 0"},
        {"Flat,Flat", "'Flat' at position 5"},
        {"IVF10,IVF10,Flat", "'IVF10' at position 6"},
        {"IVF10,IDMap,Flat", "'IDMap' at position 6"},
        {"IDMap,IDMap2,Flat", "'IDMap2' at position 6"},
        {"IDMap3,Flat", "'IDMap3' at position 0"},
        {"IDMap,,Flat", "position 6"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vdx_index *ix = (vdx_index *)&ix; /* must be reset to NULL */
        CHECK_ERR(vdx_index_factory(8, cases[c].desc, VDX_METRIC_L2, &ix),
                  VDX_ERR_INVALID_ARGUMENT);
        CHECK(ix == NULL);
        if (!strstr(vdx_last_error(), cases[c].needle)) {
            fprintf(stderr, "  '%s': message '%s' lacks '%s'\n",
                    cases[c].desc, vdx_last_error(), cases[c].needle);
            CHECK(0);
        }
        CHECK(strstr(vdx_last_error(), "index_factory") != NULL);
    }
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_factory(0, "Flat", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_factory(8, NULL, VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_factory(8, "Flat", (vdx_metric)7, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_factory(8, "Flat", VDX_METRIC_L2, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    /* a transform the core was built for but that cannot be made: the
     * core is freed (the ASan pass's leak check; found by fuzz_factory) */
    ix = (vdx_index *)&ix;
    CHECK_ERR(vdx_index_factory(16, "OPQ3_999993,Flat", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL && strstr(vdx_last_error(), "999993") != NULL);
    /* the exact message of the issue */
    CHECK_ERR(vdx_index_factory(8, "IVF100,PQ16x", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(!strcmp(vdx_last_error(), "index_factory: unknown token 'PQ16x' at "
                                    "position 7 in 'IVF100,PQ16x'"));
}

/* "HNSW" without M is M = 32 as in FAISS, alone, before a storage and as
 * an IVF's quantizer ("IVF8_HNSW"); an explicit M is kept. */
static void test_hnsw_default_m(void) {
    static const struct { const char *desc; int m; } cases[] = {
        {"HNSW", 32}, {"HNSW,Flat", 32}, {"HNSW_SQ8", 32}, {"HNSW,PQ4", 32},
        {"HNSW16", 16}, {"HNSW8,Flat", 8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(16, cases[c].desc, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK(vdx_index_is_hnsw(ix));
        if (vdx_index_hnsw_M(ix) != cases[c].m) {
            fprintf(stderr, "  '%s': M=%d, want %d\n", cases[c].desc,
                    vdx_index_hnsw_M(ix), cases[c].m);
            CHECK(0);
        }
        vdx_index_free(ix);
    }
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(16, "IVF8_HNSW,Flat", VDX_METRIC_L2, &ix));
    if (ix) {
        vdx_index *q = vdx_index_ivf_quantizer(ix);
        CHECK(q && vdx_index_is_hnsw(q) && vdx_index_hnsw_M(q) == 32);
        vdx_index_free(ix);
    }
    CHECK_ERR(vdx_index_factory(16, "HNSW1", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_factory(16, "HNSWx,Flat", VDX_METRIC_L2, &ix),
              VDX_ERR_INVALID_ARGUMENT);
}

/* A factory-built IVF trains, adds and finds each stored vector. */
static void test_works(void) {
    enum { N = 2000, D = 8 };
    static float x[N * D];
    test_rand_fill(x, N * D, 5);
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(D, "IDMap,IVF16,Flat", VDX_METRIC_L2, &ix));
    if (!ix) return;
    CHECK_OK(vdx_index_train(ix, N, x));
    int64_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 10 * i + 3;
    CHECK_OK(vdx_index_add_with_ids(ix, N, x, ids));
    vdx_search_params sp;
    vdx_search_params_init(&sp);
    sp.nprobe = 16;
    float Dd[5];
    int64_t I[5];
    for (int q = 0; q < N; q += 397) {
        CHECK_OK(vdx_index_search(ix, 1, x + q * D, 5, &sp, Dd, I));
        CHECK(I[0] == ids[q] && Dd[0] < 1e-5f);
    }
    vdx_index_free(ix);
}

/* the compressed encodings, alone and under IVF */
static void test_compressed(void) {
    static const struct {
        const char *desc, *type;
        int64_t nlist;
    } cases[] = {
        {"PQ4", "IndexPQ", 0},
        {"PQ2x4", "IndexPQ", 0},
        {"SQ8", "IndexScalarQuantizer", 0},
        {"SQfp16", "IndexScalarQuantizer", 0},
        {"SQ4", "IndexScalarQuantizer", 0},
        {"IVF16,PQ4", "IndexIVFPQ", 16},
        {"IVF16,SQ8", "IndexIVFScalarQuantizer", 16},
        {"IDMap2,SQbf16", "IndexIDMap2", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(8, cases[i].desc, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        if (strcmp(vdx_index_type_name(ix), cases[i].type))
            fprintf(stderr, "  %s built %s\n", cases[i].desc, vdx_index_type_name(ix));
        CHECK(!strcmp(vdx_index_type_name(ix), cases[i].type));
        if (cases[i].nlist) CHECK(vdx_index_ivf_nlist(ix) == cases[i].nlist);
        vdx_index_free(ix);
    }
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_factory(8, "PQ3", VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT); /* 8 % 3 */
    CHECK_ERR(vdx_index_factory(8, "SQ7", VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "'SQ7' at position 0") != NULL);
    CHECK_ERR(vdx_index_factory(8, "IVF4,PQx8", VDX_METRIC_L2, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
}

int main(void) {
    RUN(test_accepted);
    RUN(test_compressed);
    RUN(test_rejected);
    RUN(test_hnsw_default_m);
    RUN(test_works);
    return TEST_SUMMARY();
}
