/*
 * test_store.c — the store (src/store): round trips, filters against a
 * brute-force evaluation written here, filtered search against brute-force
 * k-NN, keyword and hybrid search, delete / compact / reopen, and every
 * kind of bad input of issue 18 §4 (a clear error, nothing changed).
 */
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define D 16

static char tmpl[] = "/tmp/vdx_store_test_XXXXXX";
static char root[64];

static void path_of(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", root, name);
}

static vdx_store *create(const char *name, const char *index, int metric,
                         const char *schema) {
    char p[256];
    path_of(p, sizeof p, name);
    vdx_store_options o;
    vdx_store_options_init(&o);
    o.index = index;
    o.metric = metric;
    o.schema = schema;
    o.synchronous = 1;
    vdx_store *s = NULL;
    CHECK_OK(vdx_store_create(p, D, &o, &s));
    return s;
}

static vdx_store *reopen(const char *name, int ro) {
    char p[256];
    path_of(p, sizeof p, name);
    vdx_store_options o;
    vdx_store_options_init(&o);
    o.read_only = ro;
    vdx_store *s = NULL;
    CHECK_OK(vdx_store_open(p, &o, &s));
    return s;
}

static const char *cats[] = {"ml", "db", "web", "os"};

/* row i: year 2000 + i % 25, category cats[i % 4], tags "t<i%3>" and
 * (i % 5 == 0) "rag" */
static void meta_of(int64_t i, char *buf, size_t n) {
    snprintf(buf, n,
             "{\"year\": %lld, \"category\": \"%s\", \"price\": %.2f, "
             "\"tags\": [\"t%lld\"%s]}",
             (long long)(2000 + i % 25), cats[i % 4], (double)(i % 7) * 1.5,
             (long long)(i % 3), i % 5 == 0 ? ", \"rag\"" : "");
}

static int ref_match(int64_t i, int which) {
    int year = (int)(2000 + i % 25);
    switch (which) {
    case 0: return cats[i % 4][0] == 'm' && year >= 2020;
    case 1: return i % 5 == 0 && i % 3 != 1;
    case 2: return year < 2003 || (i % 4 == 2);
    case 3: return !(year >= 2010);
    }
    return 0;
}

static const char *filters[] = {
    "{\"category\": \"ml\", \"year\": {\"$gte\": 2020}}",
    "{\"tags\": {\"$contains\": \"rag\"}, \"$not\": {\"tags\": \"t1\"}}",
    "{\"$or\": [{\"year\": {\"$lt\": 2003}}, {\"category\": {\"$in\": "
    "[\"web\"]}}]}",
    "{\"$not\": {\"year\": {\"$gte\": 2010}}}",
};

#define N 3000

static float *data(void) {
    float *x = malloc(sizeof(float) * N * D);
    test_rand_fill(x, N * D, 7);
    return x;
}

static void upsert_all(vdx_store *s, const float *x, int64_t n) {
    vdx_store_key *k = malloc(sizeof *k * (size_t)n);
    char **m = malloc(sizeof *m * (size_t)n);
    char **t = malloc(sizeof *t * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        k[i].text = NULL;
        k[i].id = i * 10;
        m[i] = malloc(200);
        meta_of(i, m[i], 200);
        t[i] = malloc(64);
        snprintf(t[i], 64, "document number %lld about %s", (long long)i,
                 cats[i % 4]);
    }
    for (int64_t b = 0; b < n; b += 1000) {
        int64_t e = b + 1000 < n ? b + 1000 : n;
        CHECK_OK(vdx_store_upsert(s, e - b, k + b, x + b * D,
                                  (const char *const *)m + b,
                                  (const char *const *)t + b));
    }
    for (int64_t i = 0; i < n; i++) free(m[i]), free(t[i]);
    free(k);
    free(m);
    free(t);
}

/* brute-force top-k L2 of q among rows admitted by `which` (-1: all) */
static int brute(const float *x, const float *q, int which, int64_t k,
                 int64_t *out, const int *dead) {
    double best[64];
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; i++) {
        if (dead && dead[i]) continue;
        if (which >= 0 && !ref_match(i, which)) continue;
        double d = 0;
        for (int j = 0; j < D; j++) {
            double u = (double)x[i * D + j] - q[j];
            d += u * u;
        }
        int64_t p = cnt < k ? cnt++ : k;
        if (p == k && d >= best[k - 1]) continue;
        if (p == k) p = k - 1;
        while (p > 0 && best[p - 1] > d) {
            best[p] = best[p - 1];
            out[p] = out[p - 1];
            p--;
        }
        best[p] = d;
        out[p] = i * 10;
    }
    return (int)cnt;
}

static const char *SCHEMA =
    "{\"year\": \"int\", \"category\": \"text\", \"price\": \"float\", "
    "\"tags\": \"tags\"}";

/* The index checkpoint is opened memory-mapped (MAP_PRIVATE, read-only):
 * writes after the open copy what they change (the flat's vectors on the
 * first add) and never write through the map, so the checkpoint file keeps
 * its bytes until the next checkpoint replaces it by rename.  A flat's
 * vectors sit at file offset 45 (not 4-byte aligned): every search here
 * runs on them under UBSan in the sanitizer builds. */
static uint8_t *slurp_index(const char *name, long *len) {
    char p[256];
    path_of(p, sizeof p, name);
    strcat(p, "/index.0.faiss");
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)*len + 1);
    if (fread(b, 1, (size_t)*len, f) != (size_t)*len) *len = -1;
    fclose(f);
    return b;
}

static void check_against_brute(vdx_store *s, const float *x, const int *dead);

static void test_mapped_open_writes(void) {
    float *x = data();
    vdx_store *s = create("mapped", "Flat", VDX_STORE_METRIC_L2, SCHEMA);
    int *dead = calloc(N, sizeof *dead);
    if (!s) goto done;
    upsert_all(s, x, N / 2); /* rows 0 .. N/2 - 1 */
    CHECK_OK(vdx_store_close(s));
    long n0 = 0, n1 = 0;
    uint8_t *before = slurp_index("mapped", &n0);
    CHECK(before != NULL && n0 > 45);
    s = reopen("mapped", 0);
    if (!s) {
        free(before);
        goto done;
    }
    for (int64_t i = N / 2; i < N; i++) dead[i] = 1;
    check_against_brute(s, x, dead); /* searches the mapped vectors */
    /* the rest of the rows, then a delete, on the mapped index */
    vdx_store_key *k = malloc(sizeof *k * N);
    char **m = malloc(sizeof *m * N);
    for (int64_t i = N / 2; i < N; i++) {
        k[i].text = NULL;
        k[i].id = i * 10;
        m[i] = malloc(200);
        meta_of(i, m[i], 200);
        dead[i] = 0;
    }
    CHECK_OK(vdx_store_upsert(s, N - N / 2, k + N / 2, x + (N / 2) * D,
                              (const char *const *)m + N / 2, NULL));
    for (int64_t i = N / 2; i < N; i++) free(m[i]);
    free(m);
    free(k);
    vdx_store_key del[3] = {{NULL, 0}, {NULL, 10 * (N / 2)}, {NULL, 10 * (N - 1)}};
    int64_t nd = 0;
    CHECK_OK(vdx_store_delete(s, 3, del, NULL, &nd));
    CHECK(nd == 3);
    dead[0] = dead[N / 2] = dead[N - 1] = 1;
    check_against_brute(s, x, dead);
    /* the checkpoint file still holds its bytes (nothing wrote through) */
    uint8_t *mid = slurp_index("mapped", &n1);
    CHECK(mid && n1 == n0 && !memcmp(before, mid, (size_t)n0));
    free(mid);
    CHECK_OK(vdx_store_close(s));
    /* the next checkpoint holds every row, read back mapped */
    s = reopen("mapped", 0);
    if (s) {
        check_against_brute(s, x, dead);
        vdx_store_stats st;
        CHECK_OK(vdx_store_stats_get(s, &st));
        CHECK(st.rows == N - 3 && st.checkpointed == N);
        vdx_store_close(s);
    }
    free(before);
done:
    free(dead);
    free(x);
}

static void test_flat_roundtrip(void) {
    float *x = data();
    vdx_store *s = create("flat", "Flat", VDX_STORE_METRIC_L2, SCHEMA);
    if (!s) return;
    upsert_all(s, x, N);
    int64_t c = 0;
    CHECK_OK(vdx_store_count(s, NULL, &c));
    CHECK(c == N);
    for (int w = 0; w < 4; w++) {
        int64_t ref = 0;
        for (int64_t i = 0; i < N; i++) ref += ref_match(i, w);
        CHECK_OK(vdx_store_count(s, filters[w], &c));
        if (c != ref) fprintf(stderr, "  filter %d: %lld vs %lld\n", w, (long long)c, (long long)ref);
        CHECK(c == ref);
    }
    float q[4 * D];
    test_rand_fill(q, 4 * D, 99);
    for (int w = -1; w < 4; w++) {
        vdx_store_hits *h = NULL;
        CHECK_OK(vdx_store_search(s, 4, q, 10, w < 0 ? NULL : filters[w], NULL,
                                  VDX_STORE_WITH_METADATA, &h));
        if (!h) continue;
        for (int qi = 0; qi < 4; qi++) {
            int64_t ref[10];
            int nr = brute(x, q + qi * D, w, 10, ref, NULL);
            CHECK(h->count[qi] == nr);
            for (int j = 0; j < nr && j < h->count[qi]; j++) {
                CHECK(h->hits[qi * 10 + j].key.text == NULL);
                CHECK(h->hits[qi * 10 + j].key.id == ref[j]);
                CHECK(h->hits[qi * 10 + j].metadata != NULL);
            }
        }
        vdx_store_hits_free(h);
    }
    CHECK_OK(vdx_store_check(s));
    CHECK_OK(vdx_store_close(s));
    free(x);
}

/* HNSW: filtered recall vs brute force at several selectivities; the
 * exact path and the selector path both exercised. */
static void test_hnsw_filtered(void) {
    float *x = data();
    vdx_store *s = create("hnsw", "HNSW16", VDX_STORE_METRIC_L2, SCHEMA);
    if (!s) return;
    upsert_all(s, x, N);
    float q[20 * D];
    test_rand_fill(q, 20 * D, 5);
    for (int w = -1; w < 4; w++) {
        vdx_store_hits *h = NULL;
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 64;
        CHECK_OK(vdx_store_search(s, 20, q, 10, w < 0 ? NULL : filters[w], &p,
                                  0, &h));
        if (!h) continue;
        int64_t hit = 0, tot = 0;
        for (int qi = 0; qi < 20; qi++) {
            int64_t ref[10];
            int nr = brute(x, q + qi * D, w, 10, ref, NULL);
            CHECK(h->count[qi] == nr); /* full results */
            for (int j = 0; j < nr; j++)
                for (int u = 0; u < h->count[qi]; u++)
                    hit += h->hits[qi * 10 + u].key.id == ref[j];
            tot += nr;
        }
        double rec = (double)hit / (double)tot;
        if (rec < 0.95) fprintf(stderr, "  filter %d: recall %.3f\n", w, rec);
        CHECK(rec >= 0.95);
        vdx_store_hits_free(h);
    }
    CHECK_OK(vdx_store_close(s));
    free(x);
}

static void test_delete_compact_reopen(void) {
    float *x = data();
    vdx_store *s = create("del", "HNSW16", VDX_STORE_METRIC_L2, SCHEMA);
    if (!s) return;
    upsert_all(s, x, N);
    int *dead = calloc(N, sizeof *dead);
    /* delete every id whose row is in category "db", and ids 0, 10, 20 */
    int64_t nd = 0;
    CHECK_OK(vdx_store_delete(s, 0, NULL, "{\"category\": \"db\"}", &nd));
    CHECK(nd == N / 4);
    vdx_store_key k3[3] = {{NULL, 0}, {NULL, 10}, {NULL, 20}};
    CHECK_OK(vdx_store_delete(s, 3, k3, NULL, &nd));
    CHECK(nd == 2); /* 10 is row 1, category db: already gone */
    for (int64_t i = 0; i < N; i++) dead[i] = i % 4 == 1 || i == 0 || i == 2;
    /* replace row 3 with row 4's vector */
    vdx_store_key k = {NULL, 30};
    CHECK_OK(vdx_store_upsert(s, 1, &k, x + 4 * D, NULL, NULL));
    float q[8 * D];
    test_rand_fill(q, 8 * D, 11);
    for (int round = 0; round < 3; round++) {
        if (round == 1) CHECK_OK(vdx_store_compact(s));
        if (round == 2) {
            CHECK_OK(vdx_store_close(s));
            s = reopen("del", 0);
            if (!s) break;
        }
        vdx_store_stats st;
        CHECK_OK(vdx_store_stats_get(s, &st));
        CHECK(st.rows == N - N / 4 - 2);
        CHECK(round > 0 || st.dead == N / 4 + 2 + 1);
        CHECK(round == 0 || st.dead == 0);
        vdx_store_hits *h = NULL;
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.efSearch = 64;
        CHECK_OK(vdx_store_search(s, 8, q, 5, NULL, &p, 0, &h));
        if (!h) continue;
        for (int qi = 0; qi < 8; qi++) {
            CHECK(h->count[qi] == 5);
            for (int j = 0; j < h->count[qi]; j++) {
                int64_t id = h->hits[qi * 5 + j].key.id;
                CHECK(id % 10 == 0 && !dead[id / 10]);
            }
        }
        vdx_store_hits_free(h);
        vdx_store_rows *r = NULL;
        vdx_store_key g[2] = {{NULL, 30}, {NULL, 20}};
        CHECK_OK(vdx_store_get(s, 2, g, &r));
        if (r) {
            CHECK(r->found[0] && !r->found[1]);
            CHECK(!memcmp(r->vectors, x + 4 * D, sizeof(float) * D));
            CHECK(r->metadata[0] == NULL);
            vdx_store_rows_free(r);
        }
        CHECK_OK(vdx_store_check(s));
    }
    vdx_store_close(s);
    free(dead);
    free(x);
}

/* Filtered exact (Flat) searches and counts of store s against brute force
 * over the rows not dead. */
static void check_against_brute(vdx_store *s, const float *x, const int *dead) {
    float q[4 * D];
    test_rand_fill(q, 4 * D, 123);
    for (int w = -1; w < 4; w++) {
        int64_t ref = 0, c = -1;
        for (int64_t i = 0; i < N; i++)
            ref += !dead[i] && (w < 0 || ref_match(i, w));
        CHECK_OK(vdx_store_count(s, w < 0 ? NULL : filters[w], &c));
        CHECK(c == ref);
        vdx_store_hits *h = NULL;
        CHECK_OK(vdx_store_search(s, 4, q, 10, w < 0 ? NULL : filters[w], NULL,
                                  0, &h));
        if (!h) continue;
        for (int qi = 0; qi < 4; qi++) {
            int64_t r[10];
            int nr = brute(x, q + qi * D, w, 10, r, dead);
            CHECK(h->count[qi] == nr);
            for (int j = 0; j < nr && j < h->count[qi]; j++)
                CHECK(h->hits[qi * 10 + j].key.id == r[j]);
        }
        vdx_store_hits_free(h);
    }
    CHECK_OK(vdx_store_check(s));
}

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    char buf[4096];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b) fclose(b);
    return ok ? 0 : -1;
}

/* The snapshot of the live bitmap and columns (cols.<gen>.bin) written at
 * close: a reopen reads it; a stale one (a file from before a delete put
 * back), a damaged one or a missing one must not be trusted: the deleted
 * rows stay deleted and every filter still agrees with brute force. */
static void test_snapshot(void) {
    float *x = data();
    int *dead = calloc(N, sizeof *dead);
    vdx_store *s = create("snap", "Flat", VDX_STORE_METRIC_L2, SCHEMA);
    if (!s) return;
    upsert_all(s, x, N);
    CHECK_OK(vdx_store_close(s));
    char cp[256], old[256];
    path_of(cp, sizeof cp, "snap/cols.0.bin");
    path_of(old, sizeof old, "snap_cols_before_delete.bin");
    CHECK(access(cp, F_OK) == 0);
    CHECK(copy_file(cp, old) == 0);
    s = reopen("snap", 1);
    if (!s) return;
    check_against_brute(s, x, dead);
    CHECK_OK(vdx_store_close(s));
    /* deletes only (no vector added, no index checkpoint): close must
     * still write a new snapshot */
    s = reopen("snap", 0);
    if (!s) return;
    int64_t nd = 0;
    CHECK_OK(vdx_store_delete(s, 0, NULL, "{\"category\": \"db\"}", &nd));
    for (int64_t i = 0; i < N; i++) dead[i] = i % 4 == 1;
    CHECK(nd == N / 4);
    check_against_brute(s, x, dead);
    CHECK_OK(vdx_store_close(s));
    for (int round = 0; round < 4; round++) {
        if (round == 1) CHECK(copy_file(old, cp) == 0); /* stale stamp */
        if (round == 2) {
            /* damaged in the middle: the checksum catches it */
            FILE *f = fopen(cp, "r+b");
            CHECK(f != NULL);
            if (f) {
                fseek(f, 200, SEEK_SET);
                fputc(0x5a, f);
                fclose(f);
            }
        }
        if (round == 3) unlink(cp);
        s = reopen("snap", round == 1);
        if (!s) break;
        check_against_brute(s, x, dead);
        vdx_store_stats st;
        CHECK_OK(vdx_store_stats_get(s, &st));
        CHECK(st.rows == N - N / 4);
        CHECK_OK(vdx_store_close(s));
    }
    /* after the last writable reopen and close the snapshot is back */
    s = reopen("snap", 0);
    if (s) CHECK_OK(vdx_store_close(s));
    CHECK(access(cp, F_OK) == 0);
    s = reopen("snap", 1);
    if (s) {
        check_against_brute(s, x, dead);
        CHECK_OK(vdx_store_close(s));
    }
    free(dead);
    free(x);
}

static void test_keyword_hybrid_strings(void) {
    vdx_store *s = create("kw", "Flat", VDX_STORE_METRIC_COSINE, SCHEMA);
    if (!s) return;
    const char *texts[] = {"the cat sat on the mat", "dogs chase cats",
                           "vector databases store embeddings",
                           "retrieval augmented generation with vectors",
                           "x'; DROP TABLE vdx_rows; --"};
    vdx_store_key keys[5] = {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"e", 0}};
    float x[5 * D];
    test_rand_fill(x, 5 * D, 3);
    CHECK_OK(vdx_store_upsert(s, 5, keys, x, NULL, texts));
    vdx_store_hits *h = NULL;
    CHECK_OK(vdx_store_keyword_search(s, "vector embeddings", 3, NULL,
                                      VDX_STORE_WITH_TEXT, &h));
    if (h) {
        CHECK(h->count[0] == 2);
        CHECK(h->count[0] > 0 && !strcmp(h->hits[0].key.text, "c"));
        CHECK(h->count[0] > 0 && h->hits[0].text &&
              !strcmp(h->hits[0].text, texts[2]));
        vdx_store_hits_free(h);
    }
    /* FTS5 syntax and SQL in the query are just words */
    CHECK_OK(vdx_store_keyword_search(s, "x'; DROP TABLE vdx_rows; -- NEAR(", 3,
                                      NULL, 0, &h));
    if (h) {
        CHECK(h->count[0] >= 1 && !strcmp(h->hits[0].key.text, "e"));
        vdx_store_hits_free(h);
    }
    /* hybrid: the vector of "a" and the words of "d": both on top */
    CHECK_OK(vdx_store_hybrid_search(s, x, "retrieval generation", 2, NULL,
                                     NULL, NULL, 0, &h));
    if (h) {
        CHECK(h->count[0] == 2);
        int sa = 0, sd = 0;
        for (int j = 0; j < h->count[0]; j++) {
            sa |= !strcmp(h->hits[j].key.text, "a");
            sd |= !strcmp(h->hits[j].key.text, "d");
        }
        CHECK(sa && sd);
        /* RRF: rank 1 in one list, absent or lower in the other */
        CHECK(h->hits[0].score >= 1.0 / 61 - 1e-6);
        vdx_store_hits_free(h);
    }
    vdx_store_fusion f = {VDX_FUSION_WEIGHTED, 0, 0, 1, 0, {0}};
    CHECK_OK(vdx_store_hybrid_search(s, x, "retrieval generation", 1, NULL, &f,
                                     NULL, 0, &h));
    if (h) {
        CHECK(h->count[0] == 1 && !strcmp(h->hits[0].key.text, "d"));
        vdx_store_hits_free(h);
    }
    int64_t c = -1;
    CHECK_OK(vdx_store_count(s, NULL, &c));
    CHECK(c == 5);
    CHECK_OK(vdx_store_check(s));
    vdx_store_close(s);
}

/* Keyword search (keyword.c merges per-phrase BM25 lists) against FTS5's
 * own ORDER BY rank over the OR of the phrases, asked here on a connection
 * of the test's own: same rows, same order (ties by vid), same scores;
 * with a filter, with repeated and stemmed words, and again after writes
 * (the cached lists must follow them). */
static const char *WORDS[] = {"vector", "vectors", "store", "search",
                              "index", "query", "graph", "model"};

static void kw_text(int64_t i, int salt, char *buf, size_t n) {
    uint64_t h = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull + (uint64_t)salt;
    size_t len = 0;
    int nw = 3 + (int)(h % 5);
    for (int w = 0; w < nw; w++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        len += (size_t)snprintf(buf + len, n - len, "%s%s", w ? " " : "",
                                WORDS[(h >> 33) % 8]);
    }
    snprintf(buf + len, n - len, " doc%lld", (long long)i);
}

static void kw_compare(vdx_store *s, sqlite3 *db, const char *text,
                       const char *fts, const char *where, const char *wsql,
                       int64_t k) {
    vdx_store_hits *h = NULL;
    CHECK_OK(vdx_store_keyword_search(s, text, k, where, 0, &h));
    if (!h) return;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT r.key, -bm25(vdx_fts) FROM vdx_fts JOIN vdx_rows r ON "
             "r.vid = vdx_fts.rowid WHERE vdx_fts MATCH ?1%s%s ORDER BY rank, "
             "vdx_fts.rowid LIMIT %lld",
             wsql ? " AND " : "", wsql ? wsql : "", (long long)k);
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK);
    sqlite3_bind_text(q, 1, fts, -1, SQLITE_STATIC);
    int64_t j = 0, bad = 0;
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        if (j < h->count[0]) {
            bad += h->hits[j].key.id != sqlite3_column_int64(q, 0);
            bad += h->hits[j].score != (float)sqlite3_column_double(q, 1);
        }
        j++;
    }
    sqlite3_finalize(q);
    CHECK(j > 0);
    CHECK(h->count[0] == j);
    CHECK(bad == 0);
    if (bad) fprintf(stderr, "  query '%s': %lld mismatches\n", text, (long long)bad);
    vdx_store_hits_free(h);
}

static void test_keyword_vs_fts5(void) {
    vdx_store *s = create("kwref", "Flat", VDX_STORE_METRIC_COSINE, SCHEMA);
    if (!s) return;
    float *x = data();
    upsert_all(s, x, N); /* metadata; texts replaced below */
    vdx_store_key *k = malloc(sizeof *k * N);
    char **m = malloc(sizeof *m * N), **t = malloc(sizeof *t * N);
    for (int64_t i = 0; i < N; i++) {
        k[i].text = NULL;
        k[i].id = i * 10;
        m[i] = malloc(200);
        meta_of(i, m[i], 200);
        t[i] = malloc(128);
        kw_text(i, 0, t[i], 128);
    }
    CHECK_OK(vdx_store_upsert(s, N, k, x, (const char *const *)m,
                              (const char *const *)t));
    char p[256];
    path_of(p, sizeof p, "kwref/store.db");
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    for (int round = 0; round < 2; round++) {
        kw_compare(s, db, "vector store", "\"vector\" OR \"store\"", NULL, NULL, 10);
        kw_compare(s, db, "Vectors, GRAPH graph!", "\"Vectors\" OR \"GRAPH\" OR \"graph\"",
                   NULL, NULL, 50);
        kw_compare(s, db, "query doc17", "\"query\" OR \"doc17\"", NULL, NULL, 5);
        /* more words than keyword.c merges: the dense path */
        kw_compare(s, db, "graph model vector search index query store doc9 graph model",
                   "\"graph\" OR \"model\" OR \"vector\" OR \"search\" OR \"index\" OR "
                   "\"query\" OR \"store\" OR \"doc9\" OR \"graph\" OR \"model\"",
                   "{\"year\": {\"$lt\": 2005}}", "r.f_year < 2005", 30);
        kw_compare(s, db, "model index", "\"model\" OR \"index\"",
                   "{\"year\": {\"$gte\": 2010}}", "r.f_year >= 2010", 20);
        kw_compare(s, db, "search", "\"search\"", "{\"tags\": {\"$contains\": \"rag\"}}",
                   "r.vid IN (SELECT vid FROM vdx_tags WHERE tag = 'rag')", 3000);
        /* writes between rounds: replaced texts, deletions */
        for (int64_t i = 0; i < N / 3; i++) kw_text(i, 1, t[i], 128);
        CHECK_OK(vdx_store_upsert(s, N / 3, k, x, (const char *const *)m,
                                  (const char *const *)t));
        CHECK_OK(vdx_store_delete(s, 100, k + N / 2, NULL, NULL));
    }
    sqlite3_close(db);
    for (int64_t i = 0; i < N; i++) free(m[i]), free(t[i]);
    free(k);
    free(m);
    free(t);
    free(x);
    vdx_store_close(s);
}

static void test_bad_input(void) {
    vdx_store *s = create("bad", "Flat", VDX_STORE_METRIC_L2, SCHEMA);
    if (!s) return;
    float x[3 * D];
    test_rand_fill(x, 3 * D, 1);
    vdx_store_key k[3] = {{NULL, 1}, {NULL, 2}, {NULL, 3}};
    CHECK_OK(vdx_store_upsert(s, 3, k, x, NULL, NULL));
    float bad[3 * D];
    memcpy(bad, x, sizeof bad);
    bad[D + 3] = NAN;
    vdx_store_key k2[3] = {{NULL, 4}, {NULL, 5}, {NULL, 6}};
    CHECK_ERR(vdx_store_upsert(s, 3, k2, bad, NULL, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "row 1"));
    bad[D + 3] = INFINITY;
    CHECK_ERR(vdx_store_upsert(s, 3, k2, bad, NULL, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    vdx_store_key dup[3] = {{NULL, 4}, {NULL, 5}, {NULL, 4}};
    CHECK_ERR(vdx_store_upsert(s, 3, dup, x, NULL, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "id 4") &&
          strstr(vdx_last_error(), "positions 0 and 2"));
    const char *m[3] = {"{\"year\": \"2020\"}", NULL, NULL};
    CHECK_ERR(vdx_store_upsert(s, 3, k2, x, m, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "'year'") && strstr(vdx_last_error(), "\"2020\""));
    const char *m2[3] = {"{not json", NULL, NULL};
    CHECK_ERR(vdx_store_upsert(s, 3, k2, x, m2, NULL), VDX_ERR_INVALID_ARGUMENT);
    const char *t[3] = {"ok", "bad \xff\xfe utf8", NULL};
    CHECK_ERR(vdx_store_upsert(s, 3, k2, x, NULL, t), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "UTF-8") && strstr(vdx_last_error(), "id 5"));
    vdx_store_key badkey = {"\xc3\x28", 0};
    CHECK_ERR(vdx_store_upsert(s, 1, &badkey, x, NULL, NULL),
              VDX_ERR_INVALID_ARGUMENT);
    /* nothing of those landed */
    int64_t c = 0;
    CHECK_OK(vdx_store_count(s, NULL, &c));
    CHECK(c == 3);
    /* filters */
    CHECK_ERR(vdx_store_count(s, "{\"colour\": \"red\"}", &c),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "'colour'"));
    CHECK_ERR(vdx_store_count(s, "{\"year\": {\"$regex\": 1}}", &c),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "$regex"));
    CHECK_ERR(vdx_store_count(s, "{\"year\": {\"$gt\": \"x\"}}", &c),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_store_count(s, "{\"$xor\": []}", &c), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_store_count(s, "[1]", &c), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_store_count(s, "{\"year\": ", &c), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_store_count(s, "{\"category\": \"x'; DROP TABLE vdx_rows; --\"}",
                             &c));
    CHECK(c == 0);
    CHECK_OK(vdx_store_count(s, NULL, &c));
    CHECK(c == 3);
    vdx_store_hits *h = NULL;
    CHECK_ERR(vdx_store_search(s, 1, x, 0, NULL, NULL, 0, &h),
              VDX_ERR_INVALID_ARGUMENT);
    float q[D];
    memcpy(q, x, sizeof q);
    q[0] = NAN;
    CHECK_ERR(vdx_store_search(s, 1, q, 1, NULL, NULL, 0, &h),
              VDX_ERR_INVALID_ARGUMENT);
    vdx_store_close(s);

    /* not a store; newer format; damaged files; read-only writes */
    char p[256], f[300];
    vdx_store *o = NULL;
    CHECK_ERR(vdx_store_open("/nonexistent/vdx", NULL, &o), VDX_ERR_IO);
    CHECK_ERR(vdx_store_open(root, NULL, &o), VDX_ERR_IO);
    CHECK(strstr(vdx_last_error(), "not a store"));
    path_of(p, sizeof p, "bad");
    char dup2[256];
    path_of(dup2, sizeof dup2, "bad");
    vdx_store_options opt;
    vdx_store_options_init(&opt);
    CHECK_ERR(vdx_store_create(dup2, D, &opt, &o), VDX_ERR_IO);
    opt.index = "HNSW32,Bogus";
    path_of(dup2, sizeof dup2, "never");
    CHECK_ERR(vdx_store_create(dup2, D, &opt, &o), VDX_ERR_INVALID_ARGUMENT);
    CHECK(access(dup2, F_OK) != 0);
    opt.index = NULL;
    opt.schema = "{\"a b\": \"int\"}";
    CHECK_ERR(vdx_store_create(dup2, D, &opt, &o), VDX_ERR_INVALID_ARGUMENT);
    opt.schema = "{\"a\": \"date\"}";
    CHECK_ERR(vdx_store_create(dup2, D, &opt, &o), VDX_ERR_INVALID_ARGUMENT);

    vdx_store *r = reopen("bad", 1);
    if (r) {
        CHECK_ERR(vdx_store_upsert(r, 1, k, x, NULL, NULL), VDX_ERR_READ_ONLY);
        CHECK_ERR(vdx_store_delete(r, 1, k, NULL, NULL), VDX_ERR_READ_ONLY);
        CHECK_ERR(vdx_store_compact(r), VDX_ERR_READ_ONLY);
        CHECK_OK(vdx_store_count(r, NULL, &c));
        CHECK(c == 3);
        vdx_store_close(r);
    }
    /* a second writer is refused; a reader is not */
    vdx_store *w1 = reopen("bad", 0), *w2 = NULL;
    CHECK_ERR(vdx_store_open(p, NULL, &w2), VDX_ERR_BUSY);
    CHECK(strstr(vdx_last_error(), "another process") != NULL);
    {
        /* the holder's pid, as written in place in store.lock (padded) */
        char want[48];
        int wl = snprintf(want, sizeof want, "(pid %ld", (long)getpid());
        const char *at = strstr(vdx_last_error(), want);
        CHECK(at != NULL && (at[wl] == ')' || at[wl] == ','));
    }
    vdx_store_close(w1);

    /* damaged index file: named, with the remedy; deleting it rebuilds */
    snprintf(f, sizeof f, "%s/index.0.faiss", p);
    FILE *fp = fopen(f, "r+b");
    CHECK(fp != NULL);
    if (fp) {
        fseek(fp, 0, SEEK_SET);
        fwrite("JUNKJUNK", 1, 8, fp);
        fclose(fp);
    }
    CHECK_ERR(vdx_store_open(p, NULL, &o), VDX_ERR_FORMAT);
    CHECK(strstr(vdx_last_error(), "index.0.faiss") &&
          strstr(vdx_last_error(), "rebuild"));
    unlink(f);
    o = reopen("bad", 0);
    if (o) {
        CHECK_OK(vdx_store_count(o, NULL, &c));
        CHECK(c == 3);
        CHECK_OK(vdx_store_check(o));
        vdx_store_close(o);
    }
    /* newer format version */
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd,
                 "sqlite3 '%s/store.db' \"UPDATE vdx_meta SET value=99 WHERE "
                 "key='format_version'\" 2>/dev/null",
                 p);
        if (system(cmd) == 0) {
            CHECK_ERR(vdx_store_open(p, NULL, &o), VDX_ERR_FORMAT);
            CHECK(strstr(vdx_last_error(), "format version 99"));
        }
    }
    /* a damaged database */
    snprintf(f, sizeof f, "%s/store.db", p);
    unlink(f);
    snprintf(f, sizeof f, "%s/store.db-wal", p);
    unlink(f);
    snprintf(f, sizeof f, "%s/store.db", p);
    fp = fopen(f, "wb");
    if (fp) {
        for (int i = 0; i < 4096; i++) fputc(i * 7, fp);
        fclose(fp);
    }
    CHECK_ERR(vdx_store_open(p, NULL, &o), VDX_ERR_FORMAT);
    CHECK(strstr(vdx_last_error(), "store.db") &&
          strstr(vdx_last_error(), "damaged"));
}

/* IVF: trained on the first upserts once there are enough, a flat buffer
 * serving until then; the index file opens on its own. */
static void test_training(void) {
    char p[256];
    path_of(p, sizeof p, "ivf");
    vdx_store_options o;
    vdx_store_options_init(&o);
    o.index = "IVF16,Flat";
    o.metric = VDX_STORE_METRIC_L2;
    o.train_size = 1500;
    o.schema = SCHEMA;
    o.synchronous = 1;
    vdx_store *s = NULL;
    CHECK_OK(vdx_store_create(p, D, &o, &s));
    if (!s) return;
    float *x = data();
    upsert_all(s, x, 1000);
    vdx_store_stats st;
    CHECK_OK(vdx_store_stats_get(s, &st));
    CHECK(!st.trained && st.rows == 1000);
    upsert_all(s, x, N);
    CHECK_OK(vdx_store_stats_get(s, &st));
    CHECK(st.trained && st.rows == N && st.dead == 1000);
    CHECK(st.bytes_disk > 0 && st.bytes_memory > 0);
    float q[D];
    test_rand_fill(q, D, 4);
    vdx_search_params sp;
    vdx_search_params_init(&sp);
    sp.nprobe = 16;
    vdx_store_hits *h = NULL;
    CHECK_OK(vdx_store_search(s, 1, q, 10, filters[0], &sp, 0, &h));
    if (h) {
        int64_t ref[10];
        int nr = brute(x, q, 0, 10, ref, NULL);
        CHECK(h->count[0] == nr);
        for (int j = 0; j < nr && j < h->count[0]; j++)
            CHECK(h->hits[j].key.id == ref[j]);
        vdx_store_hits_free(h);
    }
    CHECK_OK(vdx_store_stats_get(s, &st));
    CHECK(st.searches == 1 && st.p50_ms > 0);
    CHECK_OK(vdx_store_compact(s));
    CHECK_OK(vdx_store_close(s));
    char f[300];
    snprintf(f, sizeof f, "%s/index.1.faiss", p);
    vdx_index *ix = NULL;
    CHECK_OK(vdx_read_index(f, 0, &ix));
    CHECK(ix && vdx_index_ntotal(ix) == N && vdx_index_is_ivf(ix));
    vdx_index_free(ix);
    free(x);
}

int main(void) {
    if (!mkdtemp(tmpl)) return 1;
    snprintf(root, sizeof root, "%s", tmpl);
    RUN(test_flat_roundtrip);
    RUN(test_hnsw_filtered);
    RUN(test_delete_compact_reopen);
    RUN(test_mapped_open_writes);
    RUN(test_snapshot);
    RUN(test_keyword_hybrid_strings);
    RUN(test_keyword_vs_fts5);
    RUN(test_bad_input);
    RUN(test_training);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", root);
    return TEST_SUMMARY();
}
