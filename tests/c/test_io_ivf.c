/*
 * test_io_ivf.c — IndexIVFFlat in FAISS's format (src/io/ivf_io.c).
 *
 * Independent references: the golden ivfflat_*.index files in
 * tests/fuzz/corpus/ were written by FAISS itself (tests/fuzz/make_corpus.py,
 * IVF_GOLDEN); vecdex must read exactly the centroids, lists, ids and direct
 * map FAISS wrote, and write byte-identical files for the same indexes.  The
 * rest checks round trips (file and memory: identical lists, direct map and
 * search results for nprobe 1 and nlist) and that truncated, corrupt and
 * hostile inputs fail cleanly with the right code.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "io_test_util.h"
#include "index/index_internal.h"


static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static const vdx_ivf *ivf_of(const vdx_index *ix) {
    return vdx_index_is_ivf(ix) ? (const vdx_ivf *)ix : NULL;
}

/* ---- building indexes ---------------------------------------------------- */

/* A trained IVF-Flat with n vectors; ids (when `with_ids`) are scattered. */
static vdx_index *make_ivf(int64_t d, vdx_metric m, int64_t nlist, int64_t n,
                           uint64_t seed, int with_ids, int dm) {
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, m, &q));
    CHECK_OK(vdx_index_ivf_flat_new(q, d, nlist, m, &ix));
    if (!ix) return NULL;
    int64_t nt = VDX_MAX(n, nlist * 4);
    float *x = malloc((size_t)(nt * d) * sizeof(float));
    test_rand_fill(x, (size_t)(nt * d), seed);
    CHECK_OK(vdx_index_train(ix, nt, x));
    if (n > 0) {
        if (with_ids) {
            vdx_idx_t *ids = malloc((size_t)n * sizeof(vdx_idx_t));
            for (int64_t i = 0; i < n; i++) ids[i] = 1000003 * i + 17 - 50 * (i & 1);
            CHECK_OK(vdx_index_add_with_ids(ix, n, x, ids));
            free(ids);
        } else {
            CHECK_OK(vdx_index_add(ix, n, x));
        }
    }
    if (dm) CHECK_OK(vdx_index_ivf_make_direct_map(ix, 1));
    free(x);
    return ix;
}

/* ---- comparing indexes --------------------------------------------------- */

static void search_both(const vdx_index *a, const vdx_index *b,
                        int64_t nprobe) {
    enum { NQ = 9, K = 6 };
    int64_t d = vdx_index_d(a);
    float *q = malloc((size_t)(NQ * d) * sizeof(float));
    float da[NQ * K], db[NQ * K];
    vdx_idx_t la[NQ * K], lb[NQ * K];
    test_rand_fill(q, (size_t)(NQ * d), 4242);
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.nprobe = nprobe;
    /* many queries (parallel over queries) and one (probes split) */
    for (int64_t nq = NQ; nq >= 1; nq -= NQ - 1) {
        CHECK_OK(vdx_index_search(a, nq, q, K, &p, da, la));
        CHECK_OK(vdx_index_search(b, nq, q, K, &p, db, lb));
        CHECK(memcmp(la, lb, (size_t)(nq * K) * sizeof(vdx_idx_t)) == 0);
        CHECK(memcmp(da, db, (size_t)(nq * K) * sizeof(float)) == 0);
    }
    free(q);
}

/* Same shape, centroids, lists (ids and codes, in order), direct map and
 * search results for nprobe 1 and nlist. */
static void check_same(const vdx_index *a, const vdx_index *b) {
    const vdx_ivf *ia = ivf_of(a), *ib = ivf_of(b);
    CHECK(ia && ib);
    if (!ia || !ib) return;
    CHECK(strcmp(vdx_index_type_name(a), vdx_index_type_name(b)) == 0);
    CHECK(a->d == b->d && a->ntotal == b->ntotal && a->metric == b->metric);
    CHECK(a->is_trained == b->is_trained);
    CHECK(ia->nlist == ib->nlist && ia->nprobe == ib->nprobe);
    CHECK(ia->code_size == ib->code_size);
    if (a->d != b->d || ia->nlist != ib->nlist) return;
    const vdx_index *qa = ia->quantizer, *qb = ib->quantizer;
    CHECK(qa->ntotal == qb->ntotal && qa->metric == qb->metric);
    if (qa->ntotal == qb->ntotal && qa->ntotal > 0)
        CHECK(memcmp(vdx_index_flat_data(qa), vdx_index_flat_data(qb),
                     (size_t)(qa->ntotal * a->d) * sizeof(float)) == 0);
    for (int64_t l = 0; l < ia->nlist; l++) {
        int64_t n = ia->il->ops->list_size(ia->il, l);
        CHECK(n == ib->il->ops->list_size(ib->il, l));
        if (n != ib->il->ops->list_size(ib->il, l) || n == 0) continue;
        CHECK(memcmp(ia->il->ops->get_ids(ia->il, l),
                     ib->il->ops->get_ids(ib->il, l),
                     (size_t)n * sizeof(vdx_idx_t)) == 0);
        CHECK(memcmp(ia->il->ops->get_codes(ia->il, l),
                     ib->il->ops->get_codes(ib->il, l),
                     (size_t)n * ia->code_size) == 0);
    }
    CHECK((ia->dm == NULL) == (ib->dm == NULL));
    if (ia->dm && ib->dm && a->ntotal > 0)
        CHECK(memcmp(ia->dm, ib->dm, (size_t)a->ntotal * sizeof(int64_t)) == 0);
    if (a->is_trained && b->is_trained) {
        search_both(a, b, 1);
        search_both(a, b, ia->nlist);
    } else {
        float q[64] = {0}, dist[2];
        vdx_idx_t lab[2];
        CHECK_ERR(vdx_index_search(b, 1, q, 2, NULL, dist, lab),
                  VDX_ERR_NOT_TRAINED);
    }
}

/* Writes ix to a file and to memory, reads both back, checks both equal ix
 * and that the file and the buffer hold the same bytes. */
static void roundtrip(const vdx_index *ix, const char *name) {
    const char *path = tmp_path(name);
    CHECK_OK(vdx_write_index(ix, path));
    vdx_index *f = NULL, *m = NULL;
    CHECK_OK(vdx_read_index(path, 0, &f));
    check_same(ix, f);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    CHECK_OK(vdx_deserialize_index(buf, size, &m));
    check_same(ix, m);
    size_t fsize = 0;
    uint8_t *fbuf = slurp(path, &fsize);
    CHECK(fbuf && fsize == size && memcmp(fbuf, buf, size) == 0);
    /* and what was read writes the same bytes again */
    uint8_t *buf2 = NULL;
    size_t size2 = 0;
    if (m) {
        CHECK_OK(vdx_serialize_index(m, &buf2, &size2));
        CHECK(size2 == size && memcmp(buf, buf2, size) == 0);
    }
    free(fbuf);
    vdx_free_buffer(buf);
    vdx_free_buffer(buf2);
    vdx_index_free(f);
    vdx_index_free(m);
    remove(path);
}

/* ---- layout of a vecdex-written IVF-Flat (flat quantizer, L2 or IP) ------ */

typedef struct {
    size_t nlist, nprobe;      /* IVF header fields */
    size_t q, q_d, q_ntotal;   /* the nested quantizer */
    size_t dm_type, dm_count, dm_data;
    size_t il, il_nlist, il_cs, table_type, table_count, table, data;
} ivf_offsets;

static ivf_offsets offsets_of(const vdx_index *ix) {
    const vdx_ivf *ivf = ivf_of(ix);
    ivf_offsets o;
    o.nlist = 37;
    o.nprobe = 45;
    o.q = 53;
    o.q_d = o.q + 4;
    o.q_ntotal = o.q + 8;
    o.dm_type = o.q + 37 + 8 + (size_t)(ivf->quantizer->ntotal * ix->d) * 4;
    o.dm_count = o.dm_type + 1;
    o.dm_data = o.dm_count + 8;
    o.il = o.dm_data + (ivf->dm ? (size_t)ix->ntotal * 8 : 0);
    o.il_nlist = o.il + 4;
    o.il_cs = o.il + 12;
    o.table_type = o.il + 20;
    o.table_count = o.il + 24;
    o.table = o.il + 32;
    size_t nonempty = 0;
    for (int64_t l = 0; l < ivf->nlist; l++)
        nonempty += ivf->il->ops->list_size(ivf->il, l) > 0;
    o.data = o.table + 8 * (nonempty > (size_t)ivf->nlist / 2
                                ? (size_t)ivf->nlist
                                : 2 * nonempty);
    return o;
}

static uint8_t *patched(const uint8_t *buf, size_t size, size_t off,
                        const void *v, size_t n) {
    uint8_t *c = malloc(size);
    memcpy(c, buf, size);
    if (off + n <= size) memcpy(c + off, v, n);
    return c;
}

/* Deserializes buf (size bytes) and expects `code` with `needle` in the
 * message; returns the index when code is VDX_OK. */
static vdx_index *expect(const uint8_t *buf, size_t size, vdx_status code,
                         const char *needle, int line) {
    uint8_t *exact = malloc(size ? size : 1);
    memcpy(exact, buf, size);
    vdx_index *r = (vdx_index *)1;
    vdx_status s = vdx_deserialize_index(exact, size, &r);
    free(exact);
    int good = s == code && (code == VDX_OK ? r != NULL : r == NULL) &&
               (!needle || strstr(vdx_last_error(), needle) != NULL);
    if (!good) {
        fprintf(stderr, "  line %d: got %s '%s', want %s containing '%s'\n",
                line, vdx_status_name(s), vdx_last_error(),
                vdx_status_name(code), needle ? needle : "");
        test_failed_checks++;
        test_cur_failed = 1;
    }
    return s == VDX_OK ? r : NULL;
}
#define EXPECT(buf, size, code, needle) \
    vdx_index_free(expect(buf, size, code, needle, __LINE__))

static void expect_patch_u64(const uint8_t *buf, size_t size, size_t off,
                             uint64_t v, vdx_status code, const char *needle,
                             int line) {
    uint8_t *c = patched(buf, size, off, &v, 8);
    vdx_index_free(expect(c, size, code, needle, line));
    free(c);
}
#define PATCH64(buf, size, off, v, code, needle) \
    expect_patch_u64(buf, size, off, (uint64_t)(v), code, needle, __LINE__)

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip(void) {
    vdx_index *a = make_ivf(8, VDX_METRIC_L2, 16, 500, 1, 0, 0);
    vdx_index *b = make_ivf(5, VDX_METRIC_INNER_PRODUCT, 7, 200, 2, 1, 0);
    vdx_index *c = make_ivf(3, VDX_METRIC_L2, 1, 40, 3, 0, 0); /* nlist 1 */
    /* 64 lists, 10 vectors: at most 10 non-empty lists, a "sprs" table */
    vdx_index *s = make_ivf(4, VDX_METRIC_L2, 64, 10, 4, 0, 0);
    CHECK_OK(vdx_index_ivf_set_nprobe(a, 5));
    roundtrip(a, "a.index");
    roundtrip(b, "b.index");
    roundtrip(c, "c.index");
    roundtrip(s, "s.index");
    /* after removals (lists of uneven sizes, ids with holes) */
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_range(100, 300, &sel));
    int64_t nrem = 0;
    CHECK_OK(vdx_index_remove_ids(a, sel, &nrem));
    CHECK(nrem == 200);
    roundtrip(a, "a2.index");
    vdx_selector_free(sel);
    vdx_index_free(a);
    vdx_index_free(b);
    vdx_index_free(c);
    vdx_index_free(s);
}

static void test_roundtrip_empty_untrained(void) {
    /* trained, no vectors */
    vdx_index *e = make_ivf(6, VDX_METRIC_L2, 8, 0, 5, 0, 0);
    roundtrip(e, "e.index");
    /* emptied by reset */
    vdx_index *r = make_ivf(6, VDX_METRIC_INNER_PRODUCT, 8, 100, 6, 0, 0);
    CHECK_OK(vdx_index_reset(r));
    roundtrip(r, "r.index");
    /* never trained: search refuses before and after */
    vdx_index *q = NULL, *u = NULL;
    CHECK_OK(vdx_index_flat_new(6, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivf_flat_new(q, 6, 8, VDX_METRIC_L2, &u));
    CHECK(!vdx_index_is_trained(u));
    roundtrip(u, "u.index");
    /* a loaded untrained index can be trained and filled */
    uint8_t *buf = NULL;
    size_t size = 0;
    vdx_index *l = NULL;
    CHECK_OK(vdx_serialize_index(u, &buf, &size));
    CHECK_OK(vdx_deserialize_index(buf, size, &l));
    if (l) {
        float x[6 * 64];
        test_rand_fill(x, 6 * 64, 7);
        CHECK_OK(vdx_index_train(l, 64, x));
        CHECK_OK(vdx_index_add(l, 64, x));
        CHECK(vdx_index_ntotal(l) == 64);
    }
    vdx_free_buffer(buf);
    vdx_index_free(l);
    vdx_index_free(e);
    vdx_index_free(r);
    vdx_index_free(u);
}

static void test_direct_map_survives(void) {
    vdx_index *ix = make_ivf(7, VDX_METRIC_L2, 9, 300, 8, 0, 1);
    roundtrip(ix, "dm.index");
    uint8_t *buf = NULL;
    size_t size = 0;
    vdx_index *r = NULL;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    CHECK_OK(vdx_deserialize_index(buf, size, &r));
    if (r) {
        float a[7], b[7];
        for (int64_t i = 0; i < 300; i += 7) {
            CHECK_OK(vdx_index_reconstruct(ix, i, a));
            CHECK_OK(vdx_index_reconstruct(r, i, b));
            CHECK(memcmp(a, b, sizeof a) == 0);
        }
        CHECK_ERR(vdx_index_reconstruct(r, 300, b), VDX_ERR_NOT_FOUND);
        /* the direct map keeps working as vectors are added */
        float x[7 * 5];
        test_rand_fill(x, 7 * 5, 99);
        CHECK_OK(vdx_index_add(r, 5, x));
        CHECK_OK(vdx_index_reconstruct(r, 302, b));
        CHECK(memcmp(b, x + 14, sizeof b) == 0);
    }
    vdx_free_buffer(buf);
    vdx_index_free(r);
    /* dropped: no direct map after reading either */
    CHECK_OK(vdx_index_ivf_make_direct_map(ix, 0));
    roundtrip(ix, "nodm.index");
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    CHECK_OK(vdx_deserialize_index(buf, size, &r));
    if (r) {
        float b[7];
        CHECK_ERR(vdx_index_reconstruct(r, 3, b), VDX_ERR_UNSUPPORTED);
    }
    vdx_free_buffer(buf);
    vdx_index_free(r);
    /* an empty index with a direct map */
    vdx_index *e = make_ivf(3, VDX_METRIC_L2, 4, 0, 9, 0, 1);
    roundtrip(e, "dm_empty.index");
    vdx_index_free(e);
    vdx_index_free(ix);
}

static void test_idmap_over_ivf(void) {
    /* FAISS's IndexIDMap(IndexIVFFlat): the IVF nests inside the IDMap */
    vdx_index *ivf = make_ivf(4, VDX_METRIC_L2, 4, 0, 10, 0, 0), *m = NULL;
    CHECK_OK(vdx_index_idmap_new(ivf, &m));
    float x[4 * 30];
    vdx_idx_t ids[30];
    test_rand_fill(x, 4 * 30, 11);
    for (int i = 0; i < 30; i++) ids[i] = 77 * i + 5;
    CHECK_OK(vdx_index_add_with_ids(m, 30, x, ids));
    uint8_t *buf = NULL;
    size_t size = 0;
    vdx_index *r = NULL;
    CHECK_OK(vdx_serialize_index(m, &buf, &size));
    CHECK_OK(vdx_deserialize_index(buf, size, &r));
    if (r) {
        CHECK(strcmp(vdx_index_type_name(r), "IndexIDMap") == 0);
        check_same(vdx_index_sub_index(m), vdx_index_sub_index(r));
        vdx_idx_t a[30], b[30];
        CHECK_OK(vdx_index_get_id_map(m, a));
        CHECK_OK(vdx_index_get_id_map(r, b));
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    vdx_free_buffer(buf);
    vdx_index_free(r);
    vdx_index_free(m);
}

/* ---- FAISS-written golden files ----------------------------------------- */

/* Mirrors IVF_GOLDEN in tests/fuzz/make_corpus.py: d=4, nlist=4, 10 vectors
 * x[i][j] = ((i * mul + 3 j) % 11) - 5, centroids
 * c[l][j] = (((5 l + 2 j) % 7) - 3) * 1.5 (+ 100 for lists 2, 3 when far);
 * `list` is the list FAISS put each vector in. */
struct golden {
    const char *file;
    vdx_metric metric;
    int mul, far;
    const vdx_idx_t *ids; /* NULL: sequential */
    int dm;
    int64_t nprobe;
    int64_t list[10];
};
static const vdx_idx_t golden_ip_ids[10] = {5, 3, 9, 1000, 7, 123456789012LL,
                                            42, 0, 11, 64};
static const struct golden goldens[] = {
    {"ivfflat_l2_d4_n10.index", VDX_METRIC_L2, 7, 0, NULL, 0, 1,
     {0, 2, 3, 1, 2, 3, 1, 2, 0, 1}},
    {"ivfflat_l2_dm_d4_n10.index", VDX_METRIC_L2, 5, 1, NULL, 1, 4,
     {0, 1, 1, 0, 1, 0, 1, 0, 1, 0}},
    {"ivfflat_ip_d4_n10.index", VDX_METRIC_INNER_PRODUCT, 3, 0, golden_ip_ids,
     0, 2, {0, 3, 2, 1, 0, 3, 2, 1, 3, 2}},
};
#define NGOLDEN (sizeof goldens / sizeof goldens[0])

static void golden_vecs(const struct golden *g, float x[40]) {
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 4; j++)
            x[i * 4 + j] = (float)(((i * g->mul + j * 3) % 11) - 5);
}

static void golden_centroids(const struct golden *g, float c[16]) {
    for (int l = 0; l < 4; l++)
        for (int j = 0; j < 4; j++)
            c[l * 4 + j] = (float)(((l * 5 + j * 2) % 7) - 3) * 1.5f +
                           (g->far && l >= 2 ? 100.0f : 0.0f);
}

static vdx_idx_t golden_id(const struct golden *g, int i) {
    return g->ids ? g->ids[i] : i;
}

static vdx_index *build_golden(const struct golden *g) {
    float x[40], c[16];
    golden_vecs(g, x);
    golden_centroids(g, c);
    vdx_index *q = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(4, g->metric, &q));
    CHECK_OK(vdx_index_add(q, 4, c));
    CHECK_OK(vdx_index_ivf_flat_new(q, 4, 4, g->metric, &ix));
    if (!ix) return NULL;
    CHECK(vdx_index_is_trained(ix));
    if (g->ids)
        CHECK_OK(vdx_index_add_with_ids(ix, 10, x, g->ids));
    else
        CHECK_OK(vdx_index_add(ix, 10, x));
    if (g->dm) CHECK_OK(vdx_index_ivf_make_direct_map(ix, 1));
    CHECK_OK(vdx_index_ivf_set_nprobe(ix, g->nprobe));
    return ix;
}

static void test_golden_read(void) {
    for (size_t k = 0; k < NGOLDEN; k++) {
        const struct golden *g = &goldens[k];
        char path[1024];
        snprintf(path, sizeof path, "%s%s", CORPUS, g->file);
        vdx_index *ix = NULL;
        CHECK_OK(vdx_read_index(path, 0, &ix));
        const vdx_ivf *ivf = ivf_of(ix);
        CHECK(ivf != NULL);
        if (!ivf) {
            vdx_index_free(ix);
            continue;
        }
        float x[40], c[16];
        golden_vecs(g, x);
        golden_centroids(g, c);
        CHECK(strcmp(vdx_index_type_name(ix), "IndexIVFFlat") == 0);
        CHECK(vdx_index_d(ix) == 4 && vdx_index_ntotal(ix) == 10);
        CHECK(vdx_index_metric(ix) == g->metric && vdx_index_is_trained(ix));
        CHECK(vdx_index_ivf_nlist(ix) == 4);
        CHECK(vdx_index_ivf_nprobe(ix) == g->nprobe);
        const vdx_index *q = vdx_index_ivf_quantizer(ix);
        CHECK(q && vdx_index_ntotal(q) == 4 && vdx_index_metric(q) == g->metric);
        if (q && vdx_index_ntotal(q) == 4)
            CHECK(memcmp(vdx_index_flat_data(q), c, sizeof c) == 0);
        /* each list holds, in add order, the ids and vectors FAISS put in */
        for (int64_t l = 0; l < 4; l++) {
            vdx_idx_t want[10], got[10];
            int64_t n = 0;
            for (int i = 0; i < 10; i++)
                if (g->list[i] == l) want[n++] = golden_id(g, i);
            CHECK(vdx_index_ivf_list_size(ix, l) == n);
            if (vdx_index_ivf_list_size(ix, l) != n) continue;
            CHECK_OK(vdx_index_ivf_list_ids(ix, l, got));
            CHECK(n == 0 || memcmp(want, got, (size_t)n * sizeof(vdx_idx_t)) == 0);
            const float *codes = (const float *)(const void *)
                ivf->il->ops->get_codes(ivf->il, l);
            for (int64_t o = 0, i = 0; i < 10; i++)
                if (g->list[i] == l) {
                    CHECK(memcmp(codes + o * 4, x + i * 4, 16) == 0);
                    o++;
                }
        }
        /* vecdex assigns the vectors to the lists FAISS chose */
        int64_t lists[10];
        CHECK_OK(vdx_index_ivf_assign(ix, 10, x, lists));
        CHECK(memcmp(lists, g->list, sizeof lists) == 0);
        /* the direct map, when FAISS stored one */
        float rec[4];
        if (g->dm) {
            CHECK(ivf->dm != NULL);
            for (int i = 0; i < 10; i++) {
                CHECK_OK(vdx_index_reconstruct(ix, i, rec));
                CHECK(memcmp(rec, x + i * 4, sizeof rec) == 0);
            }
        } else {
            CHECK(ivf->dm == NULL);
            CHECK_ERR(vdx_index_reconstruct(ix, 0, rec), VDX_ERR_UNSUPPORTED);
        }
        /* exhaustive search finds each vector (L2) or the best score (IP) */
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.nprobe = 4;
        float dist[10];
        vdx_idx_t lab[10];
        CHECK_OK(vdx_index_search(ix, 10, x, 1, &p, dist, lab));
        for (int i = 0; i < 10; i++) {
            if (g->metric == VDX_METRIC_L2) {
                CHECK(lab[i] == golden_id(g, i) && dist[i] == 0.0f);
            } else {
                float best = -1e30f;
                for (int j = 0; j < 10; j++) {
                    float s = 0;
                    for (int t = 0; t < 4; t++) s += x[i * 4 + t] * x[j * 4 + t];
                    if (s > best) best = s;
                }
                CHECK(dist[i] == best);
            }
        }
        vdx_index_free(ix);
    }
}

/* vecdex writes the very bytes FAISS wrote for the same index. */
static void test_golden_write_identical(void) {
    for (size_t k = 0; k < NGOLDEN; k++) {
        const struct golden *g = &goldens[k];
        char path[1024];
        snprintf(path, sizeof path, "%s%s", CORPUS, g->file);
        size_t fsize = 0;
        uint8_t *fbytes = slurp(path, &fsize);
        CHECK(fbytes != NULL);
        vdx_index *ix = build_golden(g);
        uint8_t *buf = NULL;
        size_t size = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &size));
        int same = fbytes && size == fsize && memcmp(buf, fbytes, size) == 0;
        CHECK(same);
        if (!same)
            fprintf(stderr, "  %s differs (%zu vs %zu bytes)\n", g->file,
                    size, fsize);
        /* and through a file */
        const char *tp = tmp_path("golden.index");
        CHECK_OK(vdx_write_index(ix, tp));
        size_t tsize = 0;
        uint8_t *tbytes = slurp(tp, &tsize);
        CHECK(tbytes && fbytes && tsize == fsize &&
              memcmp(tbytes, fbytes, fsize) == 0);
        remove(tp);
        free(tbytes);
        vdx_free_buffer(buf);
        free(fbytes);
        vdx_index_free(ix);
    }
}

/* ---- truncation and corruption ------------------------------------------ */

static void test_every_truncation(void) {
    vdx_index *ixs[4] = {
        make_ivf(3, VDX_METRIC_L2, 4, 10, 1, 0, 1),              /* full, dm */
        make_ivf(2, VDX_METRIC_INNER_PRODUCT, 8, 3, 2, 1, 0),    /* sprs */
        make_ivf(2, VDX_METRIC_L2, 3, 0, 3, 0, 0),               /* empty */
        NULL};
    vdx_index *q = NULL;
    CHECK_OK(vdx_index_flat_new(2, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivf_flat_new(q, 2, 3, VDX_METRIC_L2, &ixs[3]));
    for (int k = 0; k < 4; k++) {
        uint8_t *buf = NULL;
        size_t size = 0;
        CHECK_OK(vdx_serialize_index(ixs[k], &buf, &size));
        int bad = 0;
        for (size_t n = 0; n < size; n++) {
            /* an exact-size copy so ASan sees any read past the end */
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, buf, n);
            vdx_index *r = (vdx_index *)1;
            vdx_status s = vdx_deserialize_index(cut, n, &r);
            if (s != VDX_ERR_FORMAT || r != NULL ||
                strstr(vdx_last_error(), "truncated") == NULL) {
                if (!bad++)
                    fprintf(stderr, "  index %d, length %zu of %zu: %s '%s'\n",
                            k, n, size, vdx_status_name(s), vdx_last_error());
            }
            free(cut);
        }
        CHECK(bad == 0);
        /* the whole buffer reads */
        EXPECT(buf, size, VDX_OK, NULL);
        /* the same through a file */
        const char *path = tmp_path("trunc.index");
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, size - 3, f);
        fclose(f);
        vdx_index *r = NULL;
        CHECK_ERR(vdx_read_index(path, 0, &r), VDX_ERR_FORMAT);
        CHECK(r == NULL && strstr(vdx_last_error(), "truncated file") != NULL);
        remove(path);
        vdx_free_buffer(buf);
        vdx_index_free(ixs[k]);
    }
}

static void test_corrupt_fields(void) {
    /* d=3, nlist=4, 10 vectors, direct map: a "full" table */
    vdx_index *ix = make_ivf(3, VDX_METRIC_L2, 4, 10, 21, 0, 1);
    const vdx_ivf *ivf = ivf_of(ix);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    ivf_offsets o = offsets_of(ix);
    CHECK(memcmp(buf + o.q, "IxF2", 4) == 0);
    CHECK(memcmp(buf + o.il, "ilar", 4) == 0);
    CHECK(memcmp(buf + o.table_type, "full", 4) == 0);
    CHECK(o.data + 10 * (12 + 8) == size);
    int64_t l0 = -1; /* a non-empty list */
    for (int64_t l = 0; l < 4 && l0 < 0; l++)
        if (ivf->il->ops->list_size(ivf->il, l) > 0) l0 = l;
    uint64_t s0 = (uint64_t)ivf->il->ops->list_size(ivf->il, l0);

    /* nlist of the IVF header */
    PATCH64(buf, size, o.nlist, 0, VDX_ERR_FORMAT, "nlist=0");
    PATCH64(buf, size, o.nlist, (uint64_t)1 << 40, VDX_ERR_FORMAT,
            "nlist=1099511627776");
    PATCH64(buf, size, o.nlist, 5, VDX_ERR_FORMAT, "disagrees with its quantizer");
    PATCH64(buf, size, o.nlist, 3, VDX_ERR_FORMAT, "disagrees with its quantizer");
    /* nlist of the inverted lists */
    PATCH64(buf, size, o.il_nlist, 5, VDX_ERR_FORMAT, "nlist=5, the index nlist=4");
    PATCH64(buf, size, o.il_nlist, UINT64_MAX, VDX_ERR_FORMAT, "the index nlist=4");
    /* code_size */
    PATCH64(buf, size, o.il_cs, 16, VDX_ERR_FORMAT, "code_size=16");
    PATCH64(buf, size, o.il_cs, 0, VDX_ERR_FORMAT, "code_size=0");
    PATCH64(buf, size, o.il_cs, UINT64_MAX, VDX_ERR_FORMAT, "expected d x 4 = 12");
    /* nested quantizer d and ntotal */
    {
        int32_t d = 4;
        uint8_t *c = patched(buf, size, o.q_d, &d, 4);
        EXPECT(c, size, VDX_ERR_FORMAT, NULL); /* its vector count is off */
        free(c);
        /* a consistent quantizer of the wrong d: 4 x 3 floats as 3 x 4 */
        uint8_t *c2 = patched(buf, size, o.q_d, &d, 4);
        int64_t qn = 3;
        memcpy(c2 + o.q_ntotal, &qn, 8);
        EXPECT(c2, size, VDX_ERR_FORMAT, "(d=4, ntotal=3)");
        free(c2);
    }
    PATCH64(buf, size, o.q_ntotal, 3, VDX_ERR_FORMAT, "entries"); /* count */
    /* ntotal of the IVF header */
    PATCH64(buf, size, 8, 11, VDX_ERR_FORMAT, "direct map: 10 entries");
    PATCH64(buf, size, 8, (uint64_t)-1, VDX_ERR_FORMAT, "negative ntotal");
    /* list sizes */
    PATCH64(buf, size, o.table + 8 * (uint64_t)l0, s0 + 1, VDX_ERR_FORMAT,
            "add up to 11, the header says ntotal=10");
    PATCH64(buf, size, o.table + 8 * (uint64_t)l0, s0 - 1, VDX_ERR_FORMAT,
            "add up to 9");
    PATCH64(buf, size, o.table + 8 * (uint64_t)l0, UINT64_MAX, VDX_ERR_FORMAT,
            "overflow");
    PATCH64(buf, size, o.table + 8 * (uint64_t)l0, (uint64_t)1 << 62,
            VDX_ERR_FORMAT, "add up to");
    PATCH64(buf, size, o.table_count, 3, VDX_ERR_FORMAT,
            "list sizes: 3 entries");
    PATCH64(buf, size, o.table_count, (uint64_t)1 << 61, VDX_ERR_FORMAT,
            "expected 4");
    {
        uint8_t *c = patched(buf, size, o.table_type, "fuLL", 4);
        EXPECT(c, size, VDX_ERR_FORMAT, "unknown inverted list size table 'fuLL'");
        free(c);
        c = patched(buf, size, o.table_type, "\x01\x02\x03\x04", 4);
        EXPECT(c, size, VDX_ERR_FORMAT, "size table type");
        free(c);
        /* an "ilar" body read as "ilod" (on-disk lists): its table is
         * refused on its count, before anything is allocated */
        c = patched(buf, size, o.il, "ilod", 4);
        EXPECT(c, size, VDX_ERR_FORMAT, "on-disk list table");
        free(c);
        c = patched(buf, size, o.il, "\xff\xfe\x00\x01", 4);
        EXPECT(c, size, VDX_ERR_FORMAT, "bad inverted lists type");
        free(c);
    }
    /* the direct map */
    {
        uint8_t t = 2;
        uint8_t *c = patched(buf, size, o.dm_type, &t, 1);
        EXPECT(c, size, VDX_ERR_UNSUPPORTED, "hashtable");
        free(c);
        t = 3;
        c = patched(buf, size, o.dm_type, &t, 1);
        EXPECT(c, size, VDX_ERR_FORMAT, "unknown direct map type 3");
        free(c);
        t = 0; /* no map, but 10 entries follow */
        c = patched(buf, size, o.dm_type, &t, 1);
        EXPECT(c, size, VDX_ERR_FORMAT, "direct map: 10 entries");
        free(c);
    }
    PATCH64(buf, size, o.dm_count, 9, VDX_ERR_FORMAT, "expected 10");
    PATCH64(buf, size, o.dm_data + 8 * 4, 0x12345, VDX_ERR_FORMAT,
            "direct map entry 4");
    /* an id outside 0..ntotal-1 contradicts the direct map */
    PATCH64(buf, size, o.data + s0 * 12 + 0 * 8, 77, VDX_ERR_FORMAT,
            "do not allow one");
    /* non-finite codes */
    {
        float nan = NAN;
        uint8_t *c = patched(buf, size, o.data + 4, &nan, 4);
        EXPECT(c, size, VDX_ERR_FORMAT, "non-finite value (NaN) in inverted list");
        free(c);
    }
    /* a vector beyond vdx_max_magnitude(d) (add refuses it too) */
    {
        float big = 1e30f;
        uint8_t *c = patched(buf, size, o.data + 4, &big, 4);
        EXPECT(c, size, VDX_ERR_FORMAT, "value 1e+30 in inverted list");
        free(c);
    }
    /* nprobe: values past nlist are clamped; 0 is kept, as FAISS reads and
     * the setter accepts it, and searches refuse it with a message (the
     * fixpoint of write / read / write holds either way) */
    uint64_t probes[] = {0, 2, 4, 5, UINT64_MAX};
    int64_t want[] = {0, 2, 4, 4, 4};
    for (int k = 0; k < 5; k++) {
        uint8_t *c = patched(buf, size, o.nprobe, &probes[k], 8);
        vdx_index *r = expect(c, size, VDX_OK, NULL, __LINE__);
        CHECK(vdx_index_ivf_nprobe(r) == want[k]);
        if (r) {
            float qv[3] = {0.5f, 0.5f, 0.5f}, dist[3];
            vdx_idx_t lab[3];
            if (want[k] == 0) {
                CHECK_ERR(vdx_index_search(r, 1, qv, 3, NULL, dist, lab),
                          VDX_ERR_INVALID_ARGUMENT);
                CHECK(strstr(vdx_last_error(), "nprobe=0") != NULL);
            } else {
                CHECK_OK(vdx_index_search(r, 1, qv, 3, NULL, dist, lab));
            }
        }
        vdx_index_free(r);
        free(c);
    }
    /* is_trained = 0 with vectors */
    {
        uint8_t z = 0;
        uint8_t *c = patched(buf, size, 32, &z, 1);
        EXPECT(c, size, VDX_ERR_FORMAT, "not trained but holds ntotal=10");
        free(c);
    }
    /* a metric vecdex does not handle */
    {
        int32_t m = 3;
        uint8_t *c = patched(buf, size, 33, &m, 4);
        EXPECT(c, size, VDX_ERR_UNSUPPORTED, "Linf");
        free(c);
    }
    vdx_free_buffer(buf);
    vdx_index_free(ix);
}

static void test_corrupt_sparse(void) {
    /* d=2, nlist=8, 3 vectors: a "sprs" table of (list, size) pairs */
    vdx_index *ix = make_ivf(2, VDX_METRIC_L2, 8, 3, 31, 0, 0);
    const vdx_ivf *ivf = ivf_of(ix);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    ivf_offsets o = offsets_of(ix);
    CHECK(memcmp(buf + o.table_type, "sprs", 4) == 0);
    uint64_t count;
    memcpy(&count, buf + o.table_count, 8);
    int64_t nonempty = 0;
    for (int64_t l = 0; l < 8; l++) nonempty += ivf->il->ops->list_size(ivf->il, l) > 0;
    CHECK(count == 2 * (uint64_t)nonempty);
    CHECK(o.data + 3 * (8 + 8) == size);

    PATCH64(buf, size, o.table_count, count + 1, VDX_ERR_FORMAT, "even number");
    PATCH64(buf, size, o.table_count, 18, VDX_ERR_FORMAT, "up to 2 x nlist = 16");
    PATCH64(buf, size, o.table_count, UINT64_MAX - 1, VDX_ERR_FORMAT, "even number");
    PATCH64(buf, size, o.table, 8, VDX_ERR_FORMAT, "list 8 at offset");
    PATCH64(buf, size, o.table, UINT64_MAX, VDX_ERR_FORMAT, "out of range");
    uint64_t first_size;
    memcpy(&first_size, buf + o.table + 8, 8);
    PATCH64(buf, size, o.table + 8, first_size + 1, VDX_ERR_FORMAT, "add up to 4");
    PATCH64(buf, size, o.table + 8, UINT64_MAX, VDX_ERR_FORMAT, "overflow");
    PATCH64(buf, size, o.table + 8, (uint64_t)1 << 62, VDX_ERR_FORMAT,
            "add up to");
    if (count >= 4) {
        /* the second pair names the first pair's list */
        uint64_t l;
        memcpy(&l, buf + o.table, 8);
        PATCH64(buf, size, o.table + 16, l, VDX_ERR_FORMAT, "listed twice");
        /* FAISS writes the pairs in increasing list order */
        uint8_t *c = malloc(size);
        memcpy(c, buf, size);
        memcpy(c + o.table, buf + o.table + 16, 16); /* swap two pairs */
        memcpy(c + o.table + 16, buf + o.table, 16);
        EXPECT(c, size, VDX_ERR_FORMAT, "out of order");
        free(c);
    }
    /* an empty pair (size 0) is harmless */
    if (count >= 4) {
        uint8_t *c = malloc(size + 16);
        memcpy(c, buf, o.table_count);
        uint64_t nc = count + 2, empty_list = 7, zero = 0;
        int taken = 0;
        for (uint64_t j = 0; j < count; j += 2) {
            uint64_t l;
            memcpy(&l, buf + o.table + 8 * j, 8);
            taken |= l == 7;
        }
        if (!taken) {
            memcpy(c + o.table_count, &nc, 8);
            memcpy(c + o.table, buf + o.table, 8 * count);
            memcpy(c + o.table + 8 * count, &empty_list, 8);
            memcpy(c + o.table + 8 * count + 8, &zero, 8);
            memcpy(c + o.table + 8 * count + 16, buf + o.data, size - o.data);
            vdx_index *r = expect(c, size + 16, VDX_OK, NULL, __LINE__);
            if (r) check_same(ix, r);
            vdx_index_free(r);
        }
        free(c);
    }
    /* the same lists as a "full" table read the same */
    {
        uint8_t *c = malloc(size + 64);
        size_t n = 0;
        memcpy(c, buf, o.table_type);
        n = o.table_type;
        memcpy(c + n, "full", 4);
        n += 4;
        uint64_t nl = 8;
        memcpy(c + n, &nl, 8);
        n += 8;
        for (int64_t l = 0; l < 8; l++) {
            uint64_t s = (uint64_t)ivf->il->ops->list_size(ivf->il, l);
            memcpy(c + n, &s, 8);
            n += 8;
        }
        memcpy(c + n, buf + o.data, size - o.data);
        n += size - o.data;
        vdx_index *r = expect(c, n, VDX_OK, NULL, __LINE__);
        if (r) check_same(ix, r);
        /* ... and are written back as "sprs", as FAISS would */
        uint8_t *b2 = NULL;
        size_t n2 = 0;
        if (r) {
            CHECK_OK(vdx_serialize_index(r, &b2, &n2));
            CHECK(n2 == size && memcmp(b2, buf, size) == 0);
        }
        vdx_free_buffer(b2);
        vdx_index_free(r);
        free(c);
    }
    vdx_free_buffer(buf);
    vdx_index_free(ix);
}

/* FAISS's "no inverted lists" and the untrained limits. */
static void test_il00_and_limits(void) {
    vdx_index *e = make_ivf(2, VDX_METRIC_L2, 4, 0, 41, 0, 0);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(e, &buf, &size));
    ivf_offsets o = offsets_of(e);
    /* "il00" in place of the lists: an empty index loads */
    uint8_t *c = malloc(size);
    memcpy(c, buf, o.il);
    memcpy(c + o.il, "il00", 4);
    vdx_index *r = expect(c, o.il + 4, VDX_OK, NULL, __LINE__);
    if (r) {
        check_same(e, r);
        /* and is written back with (empty) array lists */
        uint8_t *b2 = NULL;
        size_t n2 = 0;
        CHECK_OK(vdx_serialize_index(r, &b2, &n2));
        CHECK(n2 == size && memcmp(b2, buf, size) == 0);
        vdx_free_buffer(b2);
    }
    vdx_index_free(r);
    /* ... an index claiming vectors does not */
    int64_t one = 1;
    memcpy(c + 8, &one, 8);
    EXPECT(c, o.il + 4, VDX_ERR_UNSUPPORTED, "no inverted lists ('il00'");
    free(c);
    vdx_free_buffer(buf);
    vdx_index_free(e);

    /* an untrained index: any nlist up to 2^20, no vectors */
    vdx_index *q = NULL, *u = NULL;
    CHECK_OK(vdx_index_flat_new(2, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivf_flat_new(q, 2, 5, VDX_METRIC_L2, &u));
    CHECK_OK(vdx_serialize_index(u, &buf, &size));
    o = offsets_of(u);
    PATCH64(buf, size, o.nlist, ((uint64_t)1 << 20) + 1, VDX_ERR_FORMAT,
            "limit of 2^20 lists");
    {
        /* 2^20 itself loads (with the lists' nlist to match) */
        uint64_t big = (uint64_t)1 << 20;
        uint8_t *c = patched(buf, size, o.nlist, &big, 8);
        memcpy(c + o.il_nlist, &big, 8);
        vdx_index *r = expect(c, size, VDX_OK, NULL, __LINE__);
        CHECK(vdx_index_ivf_nlist(r) == (int64_t)big);
        vdx_index_free(r);
        free(c);
    }
    PATCH64(buf, size, 8, 1, VDX_ERR_FORMAT, "not trained but holds");
    PATCH64(buf, size, o.il_nlist, 6, VDX_ERR_FORMAT, "nlist=6");
    vdx_free_buffer(buf);
    vdx_index_free(u);
}

/* The quantizer must be a flat index: others may return any label. */
static void test_quantizer_kinds(void) {
    vdx_index *flat = NULL, *qm = NULL, *ix = NULL;
    CHECK_OK(vdx_index_flat_new(2, VDX_METRIC_L2, &flat));
    CHECK_OK(vdx_index_idmap_new(flat, &qm));
    float c[8] = {0, 0, 1, 0, 0, 1, 1, 1};
    vdx_idx_t ids[4] = {0, 1, 2, 3};
    CHECK_OK(vdx_index_add_with_ids(qm, 4, c, ids));
    CHECK_OK(vdx_index_ivf_flat_new(qm, 2, 4, VDX_METRIC_L2, &ix));
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    /* an IDMap over a flat (what FAISS's shard_ivf_index_centroids writes)
     * reads back, its ids kept */
    vdx_index *back = expect(buf, size, VDX_OK, NULL, __LINE__);
    if (back) {
        const vdx_index *bq = vdx_index_ivf_quantizer(back);
        vdx_idx_t got[4] = {0};
        CHECK(bq && vdx_index_ntotal(bq) == 4);
        CHECK_OK(vdx_index_get_id_map(bq, got));
        CHECK(memcmp(got, ids, sizeof got) == 0);
        vdx_index_free(back);
    }
    vdx_free_buffer(buf);
    vdx_index_free(ix);
    /* a negative id in an IDMap quantizer would be taken for a list */
    CHECK_OK(vdx_index_flat_new(2, VDX_METRIC_L2, &flat));
    CHECK_OK(vdx_index_idmap_new(flat, &qm));
    vdx_idx_t neg[4] = {0, -7, 2, 3};
    if (vdx_index_add_with_ids(qm, 4, c, neg) == VDX_OK) {
        CHECK_OK(vdx_index_ivf_flat_new(qm, 2, 4, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_serialize_index(ix, &buf, &size));
        EXPECT(buf, size, VDX_ERR_FORMAT, "holds id -7");
        vdx_free_buffer(buf);
        vdx_index_free(ix);
    } else {
        vdx_index_free(qm);
    }
    /* an IDMap over an IVF is still refused */
    {
        vdx_index *inner = make_ivf(2, VDX_METRIC_L2, 2, 0, 52, 0, 0);
        vdx_idx_t some[4] = {0, 1, 2, 3};
        CHECK_OK(vdx_index_idmap_new(inner, &qm));
        CHECK_OK(vdx_index_add_with_ids(qm, 4, c, some));
        CHECK_OK(vdx_index_ivf_flat_new(qm, 2, 4, VDX_METRIC_L2, &ix));
        CHECK_OK(vdx_serialize_index(ix, &buf, &size));
        EXPECT(buf, size, VDX_ERR_UNSUPPORTED, "over a flat or HNSW index only");
        vdx_free_buffer(buf);
        vdx_index_free(ix);
    }
    /* an IVF whose quantizer is an IVF: hand-patched fourcc */
    vdx_index *a = make_ivf(2, VDX_METRIC_L2, 4, 5, 51, 0, 0);
    CHECK_OK(vdx_serialize_index(a, &buf, &size));
    uint8_t *big = malloc(2 * size);
    memcpy(big, buf, 53);
    memcpy(big + 53, buf, size);
    memcpy(big + 53 + size, buf + 53, size - 53);
    EXPECT(big, 2 * size, VDX_ERR_UNSUPPORTED, "is an IndexIVFFlat");
    free(big);
    vdx_free_buffer(buf);
    vdx_index_free(a);
}

static void test_random_corruption(void) {
    vdx_index *ixs[3] = {make_ivf(3, VDX_METRIC_L2, 4, 12, 61, 0, 1),
                         make_ivf(2, VDX_METRIC_INNER_PRODUCT, 8, 5, 62, 1, 0),
                         make_ivf(4, VDX_METRIC_L2, 2, 6, 63, 0, 0)};
    uint64_t seed = 0x7654321;
    int ok = 0, failed = 0;
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.nprobe = 1000;
    for (int k = 0; k < 3; k++) {
        read_damaged_copies(ixs[k], 3000, &seed, &p, &ok, &failed);
        vdx_index_free(ixs[k]);
    }
    CHECK(ok > 0 && failed > 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vdx_test_io_ivf_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_roundtrip);
    RUN(test_roundtrip_empty_untrained);
    RUN(test_direct_map_survives);
    RUN(test_idmap_over_ivf);
    RUN(test_golden_read);
    RUN(test_golden_write_identical);
    RUN(test_every_truncation);
    RUN(test_corrupt_fields);
    RUN(test_corrupt_sparse);
    RUN(test_il00_and_limits);
    RUN(test_quantizer_kinds);
    RUN(test_random_corruption);
    rmdir(tmpdir);
    return TEST_SUMMARY();
}
