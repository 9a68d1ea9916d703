/*
 * test_io.c — the FAISS-format reader and writer (src/io/).
 *
 * Independent references: the golden files in tests/fuzz/corpus/ were
 * written by FAISS itself (tests/fuzz/make_corpus.py); vecdex must read their
 * exact values and write byte-identical files for the same indexes.  The
 * rest checks round trips (file and memory, identical data and search
 * results) and that truncated, corrupt and hostile inputs fail cleanly.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "io_test_util.h"


static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* Entries of tmpdir named like vecdex's temporary files. */
static int count_temporaries(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".vdxtmp.") || strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* ---- building indexes ---------------------------------------------------- */

static vdx_index *make_flat(int64_t d, vdx_metric m, int64_t n, uint64_t seed) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_flat_new(d, m, &ix));
    if (!ix) return NULL;
    if (n > 0) {
        float *x = malloc((size_t)(n * d) * sizeof(float));
        test_rand_fill(x, (size_t)(n * d), seed);
        CHECK_OK(vdx_index_add(ix, n, x));
        free(x);
    }
    return ix;
}

static vdx_index *make_idmap(int map2, int64_t d, vdx_metric m, int64_t n,
                             uint64_t seed) {
    vdx_index *sub = make_flat(d, m, 0, 0), *ix = NULL;
    if (map2)
        CHECK_OK(vdx_index_idmap2_new(sub, &ix));
    else
        CHECK_OK(vdx_index_idmap_new(sub, &ix));
    if (!ix) return NULL;
    if (n > 0) {
        float *x = malloc((size_t)(n * d) * sizeof(float));
        vdx_idx_t *ids = malloc((size_t)n * sizeof(vdx_idx_t));
        test_rand_fill(x, (size_t)(n * d), seed);
        for (int64_t i = 0; i < n; i++) ids[i] = 1000003 * i + 17 - 50 * (i & 1);
        CHECK_OK(vdx_index_add_with_ids(ix, n, x, ids));
        free(x);
        free(ids);
    }
    return ix;
}

/* ---- comparing indexes --------------------------------------------------- */

static const vdx_index *flat_of(const vdx_index *ix) {
    while (vdx_index_sub_index(ix)) ix = vdx_index_sub_index(ix);
    return ix;
}

/* Same kind, shape, stored vectors, ids and search results. */
static void check_same(const vdx_index *a, const vdx_index *b) {
    CHECK(a && b);
    if (!a || !b) return;
    CHECK(strcmp(vdx_index_type_name(a), vdx_index_type_name(b)) == 0);
    CHECK(vdx_index_d(a) == vdx_index_d(b));
    CHECK(vdx_index_ntotal(a) == vdx_index_ntotal(b));
    CHECK(vdx_index_metric(a) == vdx_index_metric(b));
    CHECK(vdx_index_is_trained(a) == vdx_index_is_trained(b));
    int64_t d = vdx_index_d(a), n = vdx_index_ntotal(a);
    if (vdx_index_ntotal(b) != n) return;
    const float *xa = vdx_index_flat_data(flat_of(a));
    const float *xb = vdx_index_flat_data(flat_of(b));
    if (n > 0) {
        CHECK(xa && xb);
        if (xa && xb)
            CHECK(memcmp(xa, xb, (size_t)(n * d) * sizeof(float)) == 0);
    }
    if (vdx_index_sub_index(a)) {
        CHECK(vdx_index_sub_index(b) != NULL);
        vdx_idx_t *ia = malloc((size_t)(n + 1) * sizeof(vdx_idx_t));
        vdx_idx_t *ib = malloc((size_t)(n + 1) * sizeof(vdx_idx_t));
        CHECK_OK(vdx_index_get_id_map(a, ia));
        CHECK_OK(vdx_index_get_id_map(b, ib));
        CHECK(memcmp(ia, ib, (size_t)n * sizeof(vdx_idx_t)) == 0);
        free(ia);
        free(ib);
    }
    enum { NQ = 7, K = 5 };
    float *q = malloc((size_t)(NQ * d) * sizeof(float));
    float da[NQ * K], db[NQ * K];
    vdx_idx_t la[NQ * K], lb[NQ * K];
    test_rand_fill(q, (size_t)(NQ * d), 999);
    CHECK_OK(vdx_index_search(a, NQ, q, K, NULL, da, la));
    CHECK_OK(vdx_index_search(b, NQ, q, K, NULL, db, lb));
    CHECK(memcmp(la, lb, sizeof la) == 0);
    CHECK(memcmp(da, db, sizeof da) == 0);
    free(q);
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

    /* no temporary file is left behind */
    CHECK(count_temporaries() == 0);

    free(fbuf);
    vdx_free_buffer(buf);
    vdx_index_free(f);
    vdx_index_free(m);
    remove(path);
}

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip_flat(void) {
    vdx_index *l2 = make_flat(16, VDX_METRIC_L2, 200, 1);
    vdx_index *ip = make_flat(33, VDX_METRIC_INNER_PRODUCT, 150, 2);
    vdx_index *d1 = make_flat(1, VDX_METRIC_L2, 10, 3);
    roundtrip(l2, "l2.index");
    roundtrip(ip, "ip.index");
    roundtrip(d1, "d1.index");
    vdx_index_free(l2);
    vdx_index_free(ip);
    vdx_index_free(d1);
}

static void test_roundtrip_empty(void) {
    vdx_index *e1 = make_flat(8, VDX_METRIC_L2, 0, 0);
    vdx_index *e2 = make_idmap(0, 8, VDX_METRIC_INNER_PRODUCT, 0, 0);
    vdx_index *e3 = make_idmap(1, 8, VDX_METRIC_L2, 0, 0);
    roundtrip(e1, "e1.index");
    roundtrip(e2, "e2.index");
    roundtrip(e3, "e3.index");
    /* an emptied index (reset) too */
    vdx_index *r = make_idmap(1, 8, VDX_METRIC_L2, 20, 5);
    CHECK_OK(vdx_index_reset(r));
    roundtrip(r, "reset.index");
    vdx_index_free(e1);
    vdx_index_free(e2);
    vdx_index_free(e3);
    vdx_index_free(r);
}

static void test_roundtrip_idmap(void) {
    vdx_index *m1 = make_idmap(0, 12, VDX_METRIC_L2, 300, 7);
    vdx_index *m2 = make_idmap(0, 12, VDX_METRIC_INNER_PRODUCT, 30, 8);
    roundtrip(m1, "m1.index");
    roundtrip(m2, "m2.index");
    vdx_index_free(m1);
    vdx_index_free(m2);
}

static void test_roundtrip_idmap2(void) {
    vdx_index *m = make_idmap(1, 10, VDX_METRIC_L2, 100, 9);
    roundtrip(m, "m2.index");
    /* the reverse map is rebuilt: reconstruct by user id */
    uint8_t *buf = NULL;
    size_t size = 0;
    vdx_index *r = NULL;
    CHECK_OK(vdx_serialize_index(m, &buf, &size));
    CHECK_OK(vdx_deserialize_index(buf, size, &r));
    if (r) {
        float a[10], b[10];
        for (int64_t i = 0; i < 100; i += 9) {
            vdx_idx_t id = 1000003 * i + 17 - 50 * (i & 1);
            CHECK_OK(vdx_index_reconstruct(m, id, a));
            CHECK_OK(vdx_index_reconstruct(r, id, b));
            CHECK(memcmp(a, b, sizeof a) == 0);
        }
        CHECK_ERR(vdx_index_reconstruct(r, 12345, b), VDX_ERR_NOT_FOUND);
    }
    vdx_free_buffer(buf);
    vdx_index_free(r);
    vdx_index_free(m);
}

static void test_overwrite_existing(void) {
    const char *path = tmp_path("over.index");
    vdx_index *a = make_flat(4, VDX_METRIC_L2, 5, 1);
    vdx_index *b = make_flat(6, VDX_METRIC_INNER_PRODUCT, 9, 2);
    vdx_index *r = NULL;
    CHECK_OK(vdx_write_index(a, path));
    CHECK_OK(vdx_write_index(b, path));
    CHECK_OK(vdx_read_index(path, 0, &r));
    check_same(b, r);
    vdx_index_free(a);
    vdx_index_free(b);
    vdx_index_free(r);
    remove(path);
}

/* ---- FAISS-written golden files ----------------------------------------- */

/* Mirrors GOLDEN in tests/fuzz/make_corpus.py: 3 vectors of d=4,
 * x[i] = scale * i + offset for i = 0..11. */
struct golden {
    const char *file;
    const char *type;
    vdx_metric metric;
    float scale, offset;
    vdx_idx_t ids[3];
    int has_ids, map2;
};
static const struct golden goldens[] = {
    {"flat_l2_d4_n3.index", "IndexFlat", VDX_METRIC_L2, 1.0f, 0.0f, {0}, 0, 0},
    {"flat_ip_d4_n3.index", "IndexFlat", VDX_METRIC_INNER_PRODUCT, 0.25f,
     -1.0f, {0}, 0, 0},
    {"idmap_ip_d4_n3.index", "IndexIDMap", VDX_METRIC_INNER_PRODUCT, 0.5f,
     -3.0f, {1000, 7, 123456789012LL}, 1, 0},
    {"idmap2_l2_d4_n3.index", "IndexIDMap2", VDX_METRIC_L2, 1.0f, 100.0f,
     {5, 3, 9}, 1, 1},
};
#define NGOLDEN (sizeof goldens / sizeof goldens[0])

static vdx_index *build_golden(const struct golden *g) {
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = g->scale * (float)i + g->offset;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_flat_new(4, g->metric, &ix));
    if (g->has_ids) {
        vdx_index *m = NULL;
        if (g->map2)
            CHECK_OK(vdx_index_idmap2_new(ix, &m));
        else
            CHECK_OK(vdx_index_idmap_new(ix, &m));
        ix = m;
        CHECK_OK(vdx_index_add_with_ids(ix, 3, x, g->ids));
    } else {
        CHECK_OK(vdx_index_add(ix, 3, x));
    }
    return ix;
}

static void test_golden_read(void) {
    for (size_t k = 0; k < NGOLDEN; k++) {
        const struct golden *g = &goldens[k];
        char path[1024];
        snprintf(path, sizeof path, "%s%s", CORPUS, g->file);
        vdx_index *ix = NULL;
        CHECK_OK(vdx_read_index(path, 0, &ix));
        if (!ix) continue;
        CHECK(strncmp(vdx_index_type_name(ix), g->type, strlen(g->type)) == 0);
        CHECK(vdx_index_d(ix) == 4);
        CHECK(vdx_index_ntotal(ix) == 3);
        CHECK(vdx_index_metric(ix) == g->metric);
        CHECK(vdx_index_is_trained(ix) == 1);
        const float *x = vdx_index_flat_data(flat_of(ix));
        CHECK(x != NULL);
        for (int i = 0; x && i < 12; i++)
            CHECK(x[i] == g->scale * (float)i + g->offset);
        if (g->has_ids) {
            vdx_idx_t ids[3];
            CHECK_OK(vdx_index_get_id_map(ix, ids));
            CHECK(memcmp(ids, g->ids, sizeof ids) == 0);
        } else {
            CHECK(vdx_index_sub_index(ix) == NULL);
        }
        /* search the loaded index: the nearest vector to x[1] is id 1 (L2) */
        if (g->metric == VDX_METRIC_L2 && x) {
            float dist[3];
            vdx_idx_t lab[3];
            CHECK_OK(vdx_index_search(ix, 1, x + 4, 3, NULL, dist, lab));
            CHECK(lab[0] == (g->has_ids ? g->ids[1] : 1));
            CHECK(dist[0] == 0.0f);
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
        CHECK(fbytes && size == fsize && memcmp(buf, fbytes, size) == 0);
        if (!(fbytes && size == fsize && memcmp(buf, fbytes, size) == 0))
            fprintf(stderr, "  %s differs (%zu vs %zu bytes)\n", g->file,
                    size, fsize);
        vdx_free_buffer(buf);
        free(fbytes);
        vdx_index_free(ix);
    }
}

/* ---- truncation and corruption ------------------------------------------ */

static void test_every_truncation(void) {
    vdx_index *ixs[3] = {make_flat(5, VDX_METRIC_L2, 4, 1),
                         make_idmap(0, 3, VDX_METRIC_INNER_PRODUCT, 4, 2),
                         make_idmap(1, 2, VDX_METRIC_L2, 3, 3)};
    for (int k = 0; k < 3; k++) {
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
                    fprintf(stderr, "  length %zu of %zu: %s '%s'\n", n, size,
                            vdx_status_name(s), vdx_last_error());
            }
            free(cut);
        }
        CHECK(bad == 0);
        /* the same through a file */
        const char *path = tmp_path("trunc.index");
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, size / 2, f);
        fclose(f);
        vdx_index *r = NULL;
        CHECK_ERR(vdx_read_index(path, 0, &r), VDX_ERR_FORMAT);
        CHECK(r == NULL);
        CHECK(strstr(vdx_last_error(), path) != NULL);
        CHECK(strstr(vdx_last_error(), "truncated file") != NULL);
        remove(path);
        vdx_free_buffer(buf);
        vdx_index_free(ixs[k]);
    }
}

static void test_random_corruption(void) {
    vdx_index *ixs[2] = {make_idmap(1, 4, VDX_METRIC_L2, 5, 1),
                         make_flat(3, VDX_METRIC_INNER_PRODUCT, 6, 2)};
    uint64_t seed = 0x1234567;
    int ok = 0, failed = 0;
    for (int k = 0; k < 2; k++) {
        read_damaged_copies(ixs[k], 3000, &seed, NULL, &ok, &failed);
        vdx_index_free(ixs[k]);
    }
    CHECK(ok > 0 && failed > 0);
}

/* ---- hostile headers ----------------------------------------------------- */

/* A little byte builder for hand-made inputs. */
typedef struct {
    uint8_t b[4096];
    size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_i32(bytes *o, int32_t v) { put(o, &v, 4); }
static void put_i64(bytes *o, int64_t v) { put(o, &v, 8); }
static void put_f32(bytes *o, float v) { put(o, &v, 4); }
static void put_header(bytes *o, const char *fourcc, int32_t d, int64_t ntotal,
                       uint8_t trained, int32_t metric) {
    put(o, fourcc, 4);
    put_i32(o, d);
    put_i64(o, ntotal);
    put_i64(o, 1 << 20);
    put_i64(o, 1 << 20);
    put(o, &trained, 1);
    put_i32(o, metric);
    if (metric > 1) put_f32(o, 0.0f);
}
/* a whole flat index: header, count, then `nvec` floats actually present */
static void put_flat(bytes *o, const char *fourcc, int32_t d, int64_t ntotal,
                     int32_t metric, uint64_t count, int64_t nfloats) {
    put_header(o, fourcc, d, ntotal, 1, metric);
    put_i64(o, (int64_t)count);
    for (int64_t i = 0; i < nfloats; i++) put_f32(o, (float)i);
}

static void expect(const bytes *o, vdx_status code, const char *needle) {
    vdx_index *r = (vdx_index *)1;
    vdx_status s = vdx_deserialize_index(o->b, o->n, &r);
    CHECK(s == code);
    CHECK(r == NULL);
    CHECK(strstr(vdx_last_error(), needle) != NULL);
    if (s != code || !strstr(vdx_last_error(), needle))
        fprintf(stderr, "  got %s '%s', want %s containing '%s'\n",
                vdx_status_name(s), vdx_last_error(), vdx_status_name(code),
                needle);
    vdx_index_free(s == VDX_OK ? r : NULL);
}

static void test_hostile_headers(void) {
    bytes o;
    /* the good one parses */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, 3, 1, 12, 12);
    vdx_index *r = NULL;
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    vdx_index_free(r);

    /* huge ntotal with a consistent count: refused on the byte budget */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, (int64_t)1 << 40, 1, (uint64_t)1 << 42, 12);
    expect(&o, VDX_ERR_FORMAT, "truncated buffer: need 17592186044416 bytes");
    /* huge ntotal, the count of the real data */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, (int64_t)1 << 40, 1, 12, 12);
    expect(&o, VDX_ERR_FORMAT, "expected 4398046511104");
    /* ntotal * d overflows */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 1 << 20, INT64_MAX, 1, 12, 12);
    expect(&o, VDX_ERR_FORMAT, "overflows");
    /* d out of range */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", (1 << 20) + 1, 1, 1, (1 << 20) + 1, 0);
    expect(&o, VDX_ERR_FORMAT, "d=1048577");
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 0, 0, 1, 0, 0);
    expect(&o, VDX_ERR_FORMAT, "d=0");
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", -4, 3, 1, 12, 12);
    expect(&o, VDX_ERR_FORMAT, "d=-4");
    /* negative ntotal */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, -3, 1, 12, 12);
    expect(&o, VDX_ERR_FORMAT, "negative ntotal=-3");
    /* count disagrees with ntotal * d */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, 3, 1, 11, 12);
    expect(&o, VDX_ERR_FORMAT, "vectors: 11 entries at offset 37, expected 12");
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, 3, 1, (uint64_t)-1, 12);
    expect(&o, VDX_ERR_FORMAT, "expected 12");
    /* is_trained must be 0 or 1; metric must be one FAISS knows */
    memset(&o, 0, sizeof o);
    put_header(&o, "IxF2", 4, 0, 2, 1);
    put_i64(&o, 0);
    expect(&o, VDX_ERR_FORMAT, "is_trained");
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, 0, 7, 0, 0);
    expect(&o, VDX_ERR_FORMAT, "unknown metric_type 7");
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 4, 0, -1, 0, 0);
    expect(&o, VDX_ERR_FORMAT, "unknown metric_type -1");
    /* a metric FAISS knows but vecdex does not handle */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxFl", 4, 1, 2, 4, 4);
    expect(&o, VDX_ERR_UNSUPPORTED, "L1");
    /* non-finite vectors */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 3);
    put_f32(&o, NAN);
    expect(&o, VDX_ERR_FORMAT, "vector 1, component 1");
    /* beyond vdx_max_magnitude(2) = 2.3e18, which add refuses too */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 2);
    put_f32(&o, -3e18f), put_f32(&o, 0.5f);
    expect(&o, VDX_ERR_FORMAT,
           "value -3e+18 in vector 1, component 0 at offset");
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 2);
    put_f32(&o, -2.3e18f), put_f32(&o, 0.5f); /* within the bound */
    {
        vdx_index *ok = NULL;
        CHECK_OK(vdx_deserialize_index(o.b, o.n, &ok));
        vdx_index_free(ok);
    }

    /* IDMap: id count, ntotal and sub-index must agree */
    memset(&o, 0, sizeof o);
    put_header(&o, "IxMp", 2, 2, 1, 1);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 4);
    put_i64(&o, 3);
    put_i64(&o, 10), put_i64(&o, 11), put_i64(&o, 12);
    expect(&o, VDX_ERR_FORMAT, "id map: 3 entries");
    memset(&o, 0, sizeof o);
    put_header(&o, "IxMp", 2, 2, 1, 1);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 4);
    put_i64(&o, (int64_t)1 << 60);
    expect(&o, VDX_ERR_FORMAT, "expected 2");
    memset(&o, 0, sizeof o);
    put_header(&o, "IxM2", 2, 3, 1, 1);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 4);
    put_i64(&o, 3);
    put_i64(&o, 10), put_i64(&o, 11), put_i64(&o, 12);
    expect(&o, VDX_ERR_FORMAT, "disagrees");
    memset(&o, 0, sizeof o);
    put_header(&o, "IxMp", 3, 2, 1, 1);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 4);
    put_i64(&o, 2);
    put_i64(&o, 10), put_i64(&o, 11);
    expect(&o, VDX_ERR_FORMAT, "disagrees");
    memset(&o, 0, sizeof o);
    put_header(&o, "IxMp", 2, 2, 1, 0);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 4);
    put_i64(&o, 2);
    put_i64(&o, 10), put_i64(&o, 11);
    expect(&o, VDX_ERR_FORMAT, "disagrees");
    /* the good IDMap parses */
    memset(&o, 0, sizeof o);
    put_header(&o, "IxM2", 2, 2, 1, 1);
    put_flat(&o, "IxF2", 2, 2, 1, 4, 4);
    put_i64(&o, 2);
    put_i64(&o, 10), put_i64(&o, 11);
    r = NULL;
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    vdx_index_free(r);

    /* nesting beyond the limit (an IDMap chain) */
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 40; i++) put_header(&o, "IxMp", 2, 0, 1, 1);
    put_flat(&o, "IxF2", 2, 0, 1, 0, 0);
    for (int i = 0; i < 40; i++) put_i64(&o, 0);
    expect(&o, VDX_ERR_FORMAT, "nested");
    /* ... but a few levels are fine */
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 3; i++) put_header(&o, "IxMp", 2, 0, 1, 1);
    put_flat(&o, "IxF2", 2, 0, 1, 0, 0);
    for (int i = 0; i < 3; i++) put_i64(&o, 0);
    r = NULL;
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    if (r) roundtrip(r, "nested.index");
    vdx_index_free(r);
}

static void test_faiss_semantics(void) {
    bytes o;
    vdx_index *r = NULL;
    /* IxFl carries its metric in the header */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxFl", 2, 1, 0, 2, 2);
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    CHECK(r && vdx_index_metric(r) == VDX_METRIC_INNER_PRODUCT);
    vdx_index_free(r);
    /* the header's metric wins over the fourcc, as in FAISS */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 2, 1, 0, 2, 2);
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    CHECK(r && vdx_index_metric(r) == VDX_METRIC_INNER_PRODUCT);
    vdx_index_free(r);
    /* is_trained comes from the header */
    memset(&o, 0, sizeof o);
    put_header(&o, "IxF2", 2, 0, 0, 1);
    put_i64(&o, 0);
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    CHECK(r && vdx_index_is_trained(r) == 0);
    vdx_index_free(r);
    /* bytes after the index are ignored */
    memset(&o, 0, sizeof o);
    put_flat(&o, "IxF2", 2, 1, 1, 2, 2);
    put_i64(&o, 0x5555);
    CHECK_OK(vdx_deserialize_index(o.b, o.n, &r));
    CHECK(r && vdx_index_ntotal(r) == 1);
    vdx_index_free(r);
}

/* ---- bad paths, unknown types, arguments -------------------------------- */

static void test_bad_path(void) {
    vdx_index *r = (vdx_index *)1;
    CHECK_ERR(vdx_read_index("/nonexistent-dir/x.index", 0, &r), VDX_ERR_IO);
    CHECK(r == NULL);
    CHECK(strstr(vdx_last_error(), "/nonexistent-dir/x.index") != NULL);
    CHECK_ERR(vdx_read_index(tmpdir, 0, &r), VDX_ERR_IO); /* a directory */
    vdx_index *ix = make_flat(4, VDX_METRIC_L2, 3, 1);
    CHECK_ERR(vdx_write_index(ix, "/nonexistent-dir/x.index"), VDX_ERR_IO);
    /* a directory in the way: refused, and no temporary file is left */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/adir", tmpdir);
    mkdir(sub, 0700);
    char inner[700];
    snprintf(inner, sizeof inner, "%s/x", sub);
    FILE *f = fopen(inner, "w");
    if (f) fclose(f);
    CHECK_ERR(vdx_write_index(ix, sub), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "adir") != NULL);
    CHECK(count_temporaries() == 0);
    remove(inner);
    rmdir(sub);
    /* a FIFO is refused without blocking */
    const char *fifo = tmp_path("fifo");
    if (mkfifo(fifo, 0600) == 0) {
        CHECK_ERR(vdx_read_index(fifo, 0, &r), VDX_ERR_IO);
        CHECK(strstr(vdx_last_error(), "not a regular file") != NULL);
        remove(fifo);
    }
    /* an empty file */
    const char *path = tmp_path("empty.index");
    f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK_ERR(vdx_read_index(path, 0, &r), VDX_ERR_FORMAT);
    remove(path);
    vdx_index_free(ix);
}

static void test_unknown_fourcc(void) {
    bytes o;
    memset(&o, 0, sizeof o);
    put_flat(&o, "IwXY", 4, 1, 1, 4, 4);
    expect(&o, VDX_ERR_UNSUPPORTED, "unknown index type 'IwXY' at offset 0");
    /* nested inside an IDMap: the offset points at it */
    memset(&o, 0, sizeof o);
    put_header(&o, "IxMp", 4, 0, 1, 1);
    put_flat(&o, "IwXZ", 4, 0, 1, 0, 0);
    expect(&o, VDX_ERR_UNSUPPORTED, "'IwXZ' at offset 37");
    /* not even text */
    memset(&o, 0, sizeof o);
    put_flat(&o, "\x01\xff\x00\x80", 4, 1, 1, 4, 4);
    expect(&o, VDX_ERR_FORMAT, "0x01ff0080");
    /* nothing at all */
    vdx_index *r = (vdx_index *)1;
    CHECK_ERR(vdx_deserialize_index(NULL, 0, &r), VDX_ERR_FORMAT);
    CHECK(r == NULL);
}

static void test_arguments(void) {
    vdx_index *ix = make_flat(4, VDX_METRIC_L2, 3, 1);
    uint8_t *buf = (uint8_t *)1;
    size_t size = 7;
    vdx_index *r = NULL;
    CHECK_ERR(vdx_serialize_index(NULL, &buf, &size), VDX_ERR_INVALID_ARGUMENT);
    CHECK(buf == NULL && size == 0);
    CHECK_ERR(vdx_serialize_index(ix, NULL, &size), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_serialize_index(ix, &buf, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_deserialize_index(NULL, 5, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_deserialize_index((const uint8_t *)"x", 1, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_write_index(NULL, tmp_path("n.index")),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_write_index(ix, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_read_index(NULL, 0, &r), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_read_index(tmp_path("n.index"), 0, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    vdx_free_buffer(NULL);
    /* success clears an earlier error */
    CHECK_OK(vdx_serialize_index(ix, &buf, &size));
    CHECK(vdx_last_error()[0] == 0);
    vdx_free_buffer(buf);
    vdx_index_free(ix);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vdx_test_io_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_roundtrip_flat);
    RUN(test_roundtrip_empty);
    RUN(test_roundtrip_idmap);
    RUN(test_roundtrip_idmap2);
    RUN(test_overwrite_existing);
    RUN(test_golden_read);
    RUN(test_golden_write_identical);
    RUN(test_every_truncation);
    RUN(test_random_corruption);
    RUN(test_hostile_headers);
    RUN(test_faiss_semantics);
    RUN(test_bad_path);
    RUN(test_unknown_fourcc);
    RUN(test_arguments);
    rmdir(tmpdir);
    return TEST_SUMMARY();
}
