/*
 * search.c — reading a store: vector search with filters inside the
 * search, keyword search (FTS5 BM25), hybrid fusion, get and count.
 *
 * A filtered vector search first finds the vids of the matching rows, m
 * of them, from the in-memory columns (columns.c; SQL when they cannot
 * answer), then a cost model picks how to score:
 *   - exactly, over those m rows, on the calling thread: gathered from the
 *     raw vectors when the index keeps them in memory (flat, or HNSW over
 *     flat storage; ~m), else read from SQLite (~4 m);
 *   - or through the index with the rows as a bitmap selector: HNSW's walk
 *     visits about 20 ef / (m / ntotal) nodes to find ef admitted ones,
 *     IVF scans nprobe / nlist of the vectors, a flat index all of them.
 * Either way a query gets k hits whenever k rows match (HNSW's filtered
 * walk keeps going until it has them).  Fusion follows Cormack et al.,
 * "Reciprocal rank fusion outperforms Condorcet and individual rank
 * learning methods" (SIGIR 2009): score = sum of w / (rrf_k + rank).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/topk.h"
#include "simd/kernels.h"
#include "store.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- results ---------------------------------------------------------- */
void vdx_store_hits_free(vdx_store_hits *h) {
    if (!h) return;
    if (h->hits)
        for (int64_t i = 0; i < h->nq * h->k; i++) {
            vdx_free((void *)h->hits[i].key.text);
            vdx_free((void *)h->hits[i].metadata);
            vdx_free((void *)h->hits[i].text);
        }
    vdx_free(h->hits);
    vdx_free(h->count);
    vdx_free(h);
}

static char *dup_col(sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    if (!t) return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, col) + 1;
    char *p = vdx_malloc(n);
    if (p) memcpy(p, t, n);
    return p;
}

static vdx_status alloc_hits(int64_t nq, int64_t k, vdx_store_hits **out) {
    vdx_store_hits *h = vdx_calloc(1, sizeof *h);
    if (!h) return VDX_ERR_OUT_OF_MEMORY;
    h->nq = nq;
    h->k = k;
    h->count = vdx_calloc((size_t)(nq ? nq : 1), sizeof *h->count);
    size_t nk;
    if (!vdx_mul_ok((size_t)nq, (size_t)k, &nk)) nk = SIZE_MAX;
    h->hits = h->count ? vdx_calloc(nk ? nk : 1, sizeof *h->hits) : NULL;
    if (!h->hits) {
        vdx_store_hits_free(h);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    *out = h;
    return VDX_OK;
}

/* Fills hit slot (q, j) for vid; 0 when the row is gone (skipped). */
static vdx_status fill_hit(store_conn *c, vdx_store_hits *h, int64_t q,
                           int64_t vid, float score, int flags) {
    sqlite3_stmt *st = c->row_by_vid;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, vid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return VDX_OK;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return store_sql_err(c->db, "read row");
    }
    vdx_store_hit *hit = &h->hits[q * h->k + h->count[q]];
    vdx_status r = VDX_OK;
    if (sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
        hit->key.id = sqlite3_column_int64(st, 0);
    } else {
        hit->key.text = dup_col(st, 0);
        if (!hit->key.text) r = VDX_ERR_OUT_OF_MEMORY;
    }
    hit->score = score;
    if ((flags & VDX_STORE_WITH_METADATA) &&
        sqlite3_column_type(st, 1) != SQLITE_NULL &&
        !(hit->metadata = dup_col(st, 1)))
        r = VDX_ERR_OUT_OF_MEMORY;
    if ((flags & VDX_STORE_WITH_TEXT) &&
        sqlite3_column_type(st, 2) != SQLITE_NULL &&
        !(hit->text = dup_col(st, 2)))
        r = VDX_ERR_OUT_OF_MEMORY;
    sqlite3_reset(st);
    h->count[q]++;
    return r;
}

/* ---- reading under the lock ------------------------------------------ */
typedef struct reader {
    vdx_store *s;
    store_conn *c;
    double t0;
} reader;

/* The reader's SQLite read transaction, begun on first use: under the
 * shared lock, so what it reads agrees with the index whenever it starts. */
static vdx_status reader_sql(reader *r) {
    if (r->c) return VDX_OK;
    r->c = store_conn_get(r->s);
    if (!r->c) return VDX_ERR_IO;
    if (sqlite3_exec(r->c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        vdx_status st = store_sql_err(r->c->db, "begin");
        store_conn_put(r->s, r->c);
        r->c = NULL;
        return st;
    }
    return VDX_OK;
}

/* Takes the shared lock; lazy = 1 leaves SQLite until reader_sql. */
static vdx_status reader_begin_lazy(vdx_store *s, reader *r, int lazy) {
    r->s = s;
    r->t0 = now_ms();
    r->c = NULL;
    pthread_rwlock_rdlock(&s->rw);
    vdx_status st = lazy ? VDX_OK : reader_sql(r);
    if (st) pthread_rwlock_unlock(&s->rw);
    return st;
}

static vdx_status reader_begin(vdx_store *s, reader *r) {
    return reader_begin_lazy(s, r, 0);
}

static void reader_end(reader *r, int timed) {
    if (r->c) sqlite3_exec(r->c->db, "COMMIT", NULL, NULL, NULL);
    pthread_rwlock_unlock(&r->s->rw);
    if (r->c) store_conn_put(r->s, r->c);
    if (timed) store_record_latency(r->s, now_ms() - r->t0);
}

/* ---- vector search core ---------------------------------------------- */
/* Result lists by vid: nq x kk (vid -1 = none), scores. */
typedef struct vlist {
    int64_t nq, k;
    int64_t *vid;
    float *score;
} vlist;

static void vlist_free(vlist *v) {
    vdx_free(v->vid);
    vdx_free(v->score);
}

static vdx_status vlist_alloc(vlist *v, int64_t nq, int64_t k) {
    v->nq = nq;
    v->k = k;
    size_t nk;
    if (!vdx_mul_ok((size_t)nq, (size_t)k, &nk))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: nq * k overflows");
    v->vid = vdx_malloc_array(nk ? nk : 1, sizeof *v->vid);
    v->score = vdx_malloc_array(nk ? nk : 1, sizeof *v->score);
    if (!v->vid || !v->score) {
        vlist_free(v);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < nk; i++) v->vid[i] = -1;
    return VDX_OK;
}

/* The index that holds the raw vectors by vid, or NULL. */
static const vdx_index *flat_storage(const vdx_store *s) {
    if (vdx_index_flat_data(s->index)) return s->index;
    if (vdx_index_is_hnsw(s->index)) {
        const vdx_index *st = vdx_index_hnsw_storage(s->index);
        /* >=: an upsert adds its vectors ahead of publishing them
         * (write.c); the scans read only published vids < s->ntotal */
        if (st && vdx_index_flat_data(st) && vdx_index_ntotal(st) >= s->ntotal)
            return st;
    }
    return NULL;
}

static int64_t ef_of(const vdx_store *s, const vdx_search_params *p) {
    int64_t ef = p && p->efSearch > 0 ? p->efSearch
                                      : vdx_index_hnsw_ef_search(s->index);
    return ef > 0 ? ef : 16;
}

/* 1 when scoring the m matching rows exactly is cheaper (store.h).  An
 * exact scan costs m distances (the rows gathered from the raw vectors in
 * memory), or ~4 m when the vectors must be read from SQLite. */
static int choose_exact(const vdx_store *s, int64_t m, int64_t k,
                        const vdx_search_params *p) {
    if (s->exact_threshold > 0) return m <= s->exact_threshold;
    if (s->exact_threshold < 0) return 0;
    double n = (double)s->ntotal, sel = (double)m / (n > 0 ? n : 1);
    const vdx_index *fs = flat_storage(s);
    double exact = fs ? (double)m : 4.0 * (double)m;
    double idx;
    if (fs == s->index) return 1; /* a flat index: exact either way */
    if (vdx_index_is_hnsw(s->index)) {
        double ef = (double)ef_of(s, p);
        if (ef < (double)k) ef = (double)k;
        idx = 20.0 * ef / sel;
    } else if (vdx_index_is_ivf(s->index)) {
        int64_t nl = vdx_index_ivf_nlist(s->index);
        int64_t np = p && p->nprobe > 0 ? p->nprobe : vdx_index_ivf_nprobe(s->index);
        idx = n * (double)np / (double)(nl > 0 ? nl : 1) + (double)nl;
        /* an IVF probe may find fewer than k admitted rows */
        if (sel * idx < 4.0 * (double)k) return 1;
    } else {
        idx = n;
    }
    return exact <= idx;
}

/* Exact k nearest of nq queries among the m rows vids[]: the vector of
 * vids[i] at base + vids[i] * d (dense = 0: the index's flat storage) or at
 * base + i * d (dense = 1: gathered).  On the calling thread: these scans
 * are small (the cost model sends large ones to the index), and an OpenMP
 * team costs more than such a scan, much more on a loaded machine. */
static void exact_scan(const vdx_store *s, const float *base, int dense,
                       const float *x, int64_t nq, int64_t k,
                       const int64_t *vids, int64_t m, vlist *out) {
    const vdx_kernels *kr = vdx_kernels_get();
    int ip = s->imetric == VDX_METRIC_INNER_PRODUCT;
    size_t d = (size_t)s->dim;
    for (int64_t q = 0; q < nq; q++) {
        float *key = out->score + q * k;
        int64_t *id = out->vid + q * k;
        const float *xq = x + (size_t)q * d;
        vdx_heap_init(k, key, id);
        for (int64_t i = 0; i < m; i++) {
            if (!dense && (vids[i] < 0 || vids[i] >= s->ntotal)) continue;
            const float *y = base + (size_t)(dense ? i : vids[i]) * d;
            float v = ip ? -kr->inner_product(xq, y, d) : kr->l2sqr(xq, y, d);
            if (vdx_worse(key[0], id[0], v, vids[i]))
                vdx_heap_replace_top(k, key, id, v, vids[i]);
        }
        vdx_topk_finish(k, key, id, ip, 0.0f);
    }
}

static vdx_status make_bitmap_sel(const vdx_store *s, const int64_t *vids,
                                  int64_t m, vdx_selector **sel) {
    int64_t nbytes = (s->ntotal + 7) / 8;
    uint8_t *bm = vdx_calloc((size_t)(nbytes ? nbytes : 1), 1);
    if (!bm) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < m; i++)
        if (vids[i] >= 0 && vids[i] < s->ntotal)
            bm[vids[i] >> 3] |= (uint8_t)(1u << (vids[i] & 7));
    vdx_status st = vdx_selector_bitmap(nbytes, bm, sel);
    vdx_free(bm);
    return st;
}

/* Exact scores of the m rows vids[] for nq queries, from SQLite vectors. */
static vdx_status exact_from_db(reader *r, const float *x, int64_t nq,
                                int64_t k, const int64_t *vids, int64_t m,
                                vlist *out) {
    vdx_store *s = r->s;
    float *buf = vdx_malloc_array((size_t)m * (size_t)s->dim, sizeof(float));
    vdx_status st = !buf ? VDX_ERR_OUT_OF_MEMORY : VDX_OK;
    sqlite3_stmt *q = r->c->vec_by_vid;
    size_t bytes = (size_t)s->dim * sizeof(float);
    for (int64_t i = 0; i < m && !st; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, vids[i]);
        if (sqlite3_step(q) != SQLITE_ROW ||
            (size_t)sqlite3_column_bytes(q, 0) != bytes)
            st = vdx_raise(VDX_ERR_FORMAT,
                           "store: %s/store.db is damaged: vector %lld is "
                           "missing",
                           s->path, (long long)vids[i]);
        else
            memcpy(buf + i * s->dim, sqlite3_column_blob(q, 0), bytes);
    }
    sqlite3_reset(q);
    if (!st) exact_scan(s, buf, 1, x, nq, k, vids, m, out);
    vdx_free(buf);
    return st;
}

/* k nearest vids of nq (normalised) queries, filtered; under the lock. */
static vdx_status vsearch(reader *r, const float *x, int64_t nq, int64_t k,
                          const char *where, const vdx_search_params *params,
                          vlist *out) {
    vdx_store *s = r->s;
    vdx_status st = vlist_alloc(out, nq, k);
    if (st) return st;
    vdx_search_params p;
    vdx_search_params_init(&p);
    if (params) p = *params;
    p.sel = NULL;
    vdx_selector *sel = NULL;
    int64_t *vids = NULL, m = -1;
    const vdx_index *target = s->index;
    if (where) {
        store_sql chk;
        if ((st = store_filter_compile(s, where, &chk))) goto done;
        store_sql_free(&chk);
        if (store_cols_filter(s, where, &vids, &m) &&
            ((st = reader_sql(r)) ||
             (st = store_filter_vids(s, r->c, where, &vids, &m))))
            goto done;
        if (m == 0) goto done;
        if (choose_exact(s, m, k, &p)) {
            const vdx_index *fs = flat_storage(s);
            if (!fs && !(st = reader_sql(r)))
                st = exact_from_db(r, x, nq, k, vids, m, out);
            else
                exact_scan(s, vdx_index_flat_data(fs), 0, x, nq, k, vids, m,
                           out);
            goto done;
        }
        if ((st = make_bitmap_sel(s, vids, m, &sel))) goto done;
    } else if (s->nlive < s->ntotal ||
               vdx_index_ntotal(s->index) > s->ntotal) {
        /* dead vids, or an upsert's vectors added but not yet published
         * (write.c): the live bitmap admits neither */
        if (s->nlive == 0) goto done;
        int64_t nbytes = (s->ntotal + 7) / 8;
        if ((st = vdx_selector_bitmap(nbytes, s->live, &sel))) goto done;
    }
    if (s->ntotal == 0) goto done;
    p.sel = sel;
    if (target == s->index && vdx_index_is_hnsw(s->index) && p.efSearch <= 0)
        p.efSearch = (int)ef_of(s, &p);
    if (target == s->index && vdx_index_is_hnsw(s->index) && p.efSearch < k)
        p.efSearch = (int)k;
    {
        float *D = vdx_malloc_array((size_t)nq * (size_t)k, sizeof(float));
        if (!D) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        st = vdx_index_search(target, nq, x, k, &p, D, out->vid);
        for (int64_t i = 0; !st && i < nq * k; i++) out->score[i] = D[i];
        vdx_free(D);
    }
done:
    vdx_selector_free(sel);
    vdx_free(vids);
    return st;
}

static vdx_status check_common(const vdx_store *s, int64_t k, int flags) {
    if (!s) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store is NULL");
    if (k < 1 || k > 100000)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: k=%lld, expected 1..100000", (long long)k);
    if (flags & ~(VDX_STORE_WITH_METADATA | VDX_STORE_WITH_TEXT))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: unknown flags 0x%x",
                         (unsigned)flags);
    return VDX_OK;
}

/* Queries prepared for the metric: a normalised copy for cosine. */
static vdx_status prep_queries(const vdx_store *s, int64_t nq, const float *x,
                               float **out) {
    *out = NULL;
    vdx_status st = vdx_check_vectors(x, nq, s->dim, "queries");
    if (st) return st;
    float *q = vdx_malloc_array((size_t)nq * (size_t)s->dim, sizeof(float));
    if (!q) return VDX_ERR_OUT_OF_MEMORY;
    memcpy(q, x, (size_t)nq * (size_t)s->dim * sizeof(float));
    if (s->metric == VDX_STORE_METRIC_COSINE) vdx_normalize_L2(nq, s->dim, q);
    *out = q;
    return VDX_OK;
}

vdx_status vdx_store_search(vdx_store *s, int64_t nq, const float *x,
                            int64_t k, const char *where,
                            const vdx_search_params *params, int flags,
                            vdx_store_hits **out) {
    vdx_clear_error();
    if (out) *out = NULL;
    vdx_status st = check_common(s, k, flags);
    if (st) return st;
    if (!out || nq < 0 || (nq > 0 && !x))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: search: bad arguments (nq=%lld, x %s, out %s)",
                         (long long)nq, x ? "set" : "NULL",
                         out ? "set" : "NULL");
    float *q = NULL;
    if ((st = prep_queries(s, nq, x, &q))) return st;
    vdx_store_hits *h = NULL;
    if ((st = alloc_hits(nq, k, &h))) {
        vdx_free(q);
        return st;
    }
    reader r;
    if ((st = reader_begin_lazy(s, &r, 1))) {
        vdx_free(q);
        vdx_store_hits_free(h);
        return st;
    }
    vlist v = {0};
    st = vsearch(&r, q, nq, k, where, params, &v);
    for (int64_t i = 0; !st && i < nq; i++)
        for (int64_t j = 0; j < k && !st; j++) {
            int64_t vid = v.vid[i * k + j], id;
            if (vid < 0) continue;
            if (!flags && store_cols_key(s, vid, &id)) {
                vdx_store_hit *hit = &h->hits[i * k + h->count[i]++];
                hit->key.id = id;
                hit->score = v.score[i * k + j];
            } else if (!(st = reader_sql(&r))) {
                st = fill_hit(r.c, h, i, vid, v.score[i * k + j], flags);
            }
        }
    reader_end(&r, st == VDX_OK);
    vlist_free(&v);
    vdx_free(q);
    if (st) {
        vdx_store_hits_free(h);
        return st;
    }
    *out = h;
    return VDX_OK;
}

/* ---- keyword search --------------------------------------------------- */
/* The words of text as FTS5 phrases: each a quoted string (the OR of them
 * is the query, keyword.c).  Quoting keeps FTS5's own syntax (NEAR, column
 * filters, '*') out of the user's words.  *ph freed with free_phrases. */
static void free_phrases(char **ph, int n) {
    for (int i = 0; i < n; i++) vdx_free(ph[i]);
    vdx_free(ph);
}

static vdx_status fts_phrases(const char *text, char ***ph, int *nph) {
    *ph = NULL;
    *nph = 0;
    int cap = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        while (*p && *p < 0x80 && !((*p >= '0' && *p <= '9') ||
                                    ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
            p++;
        if (!*p) break;
        const unsigned char *b = p;
        while (*p && (*p >= 0x80 || (*p >= '0' && *p <= '9') ||
                      ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
            p++;
        if (*nph == cap) {
            int nc = cap ? 2 * cap : 8;
            char **t = vdx_realloc_array(*ph, (size_t)nc, sizeof *t);
            if (!t) goto oom;
            *ph = t;
            cap = nc;
        }
        size_t len = (size_t)(p - b);
        char *w = vdx_malloc(len + 3);
        if (!w) goto oom;
        w[0] = '"';
        memcpy(w + 1, b, len);
        w[len + 1] = '"';
        w[len + 2] = 0;
        (*ph)[(*nph)++] = w;
    }
    return VDX_OK;
oom:
    free_phrases(*ph, *nph);
    *ph = NULL;
    *nph = 0;
    return VDX_ERR_OUT_OF_MEMORY;
}

static vdx_status ksearch(reader *r, const char *text, int64_t k,
                          const char *where, int64_t *vid, float *score,
                          int64_t *count) {
    vdx_store *s = r->s;
    *count = 0;
    char **ph;
    int nph;
    vdx_status st = fts_phrases(text, &ph, &nph);
    if (st || nph == 0) return st;
    uint8_t *allow = NULL;
    int64_t *wv = NULL, nw = 0, nallow = s->ntotal;
    if (where) {
        store_sql chk;
        if ((st = store_filter_compile(s, where, &chk))) goto out;
        store_sql_free(&chk);
        if (store_cols_filter(s, where, &wv, &nw) &&
            (st = store_filter_vids(s, r->c, where, &wv, &nw)))
            goto out;
        if (nw == 0) goto out;
        allow = vdx_calloc((size_t)((nallow + 7) / 8 + 1), 1);
        if (!allow) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto out;
        }
        for (int64_t i = 0; i < nw; i++)
            if (wv[i] >= 0 && wv[i] < nallow)
                allow[wv[i] >> 3] |= (uint8_t)(1u << (wv[i] & 7));
    }
    st = store_kw_search(s, r->c, ph, nph, k, allow, nallow, vid, score, count);
out:
    free_phrases(ph, nph);
    vdx_free(allow);
    vdx_free(wv);
    return st;
}

static vdx_status check_text_query(const vdx_store *s, const char *text) {
    if (!s->text_on)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "store: keyword search needs a store created with "
                         "text=1");
    if (!text)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: the query text is NULL");
    if (!store_utf8_valid(text, strlen(text)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: the query text is not valid UTF-8");
    return VDX_OK;
}

vdx_status vdx_store_keyword_search(vdx_store *s, const char *text, int64_t k,
                                    const char *where, int flags,
                                    vdx_store_hits **out) {
    vdx_clear_error();
    if (out) *out = NULL;
    vdx_status st = check_common(s, k, flags);
    if (st) return st;
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: out is NULL");
    if ((st = check_text_query(s, text))) return st;
    vdx_store_hits *h = NULL;
    int64_t *vid = vdx_malloc_array((size_t)k, sizeof *vid);
    float *sc = vdx_malloc_array((size_t)k, sizeof *sc);
    if (!vid || !sc || (st = alloc_hits(1, k, &h))) {
        vdx_free(vid);
        vdx_free(sc);
        return st ? st : VDX_ERR_OUT_OF_MEMORY;
    }
    reader r;
    int64_t cnt = 0;
    if (!(st = reader_begin(s, &r))) {
        st = ksearch(&r, text, k, where, vid, sc, &cnt);
        for (int64_t j = 0; !st && j < cnt; j++)
            st = fill_hit(r.c, h, 0, vid[j], sc[j], flags);
        reader_end(&r, st == VDX_OK);
    }
    vdx_free(vid);
    vdx_free(sc);
    if (st) {
        vdx_store_hits_free(h);
        return st;
    }
    *out = h;
    return VDX_OK;
}

/* ---- hybrid ----------------------------------------------------------- */
typedef struct fused {
    int64_t vid;
    double score;
} fused;

static int cmp_fused(const void *a, const void *b) {
    const fused *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->vid > y->vid) - (x->vid < y->vid);
}

static void add_fused(fused *f, int64_t *nf, int64_t vid, double sc) {
    for (int64_t i = 0; i < *nf; i++)
        if (f[i].vid == vid) {
            f[i].score += sc;
            return;
        }
    f[*nf].vid = vid;
    f[*nf].score = sc;
    (*nf)++;
}

/* Min-max normalised score of list entry i, larger = better. */
static double norm_score(const float *sc, int64_t n, int64_t i, int lower) {
    float lo = sc[0], hi = sc[0];
    for (int64_t j = 1; j < n; j++) {
        lo = sc[j] < lo ? sc[j] : lo;
        hi = sc[j] > hi ? sc[j] : hi;
    }
    if (hi == lo) return 1.0;
    double t = ((double)sc[i] - lo) / ((double)hi - lo);
    return lower ? 1.0 - t : t;
}

vdx_status vdx_store_hybrid_search(vdx_store *s, const float *x,
                                   const char *text, int64_t k,
                                   const char *where,
                                   const vdx_store_fusion *fusion,
                                   const vdx_search_params *params, int flags,
                                   vdx_store_hits **out) {
    vdx_clear_error();
    if (out) *out = NULL;
    vdx_status st = check_common(s, k, flags);
    if (st) return st;
    if (!out || !x)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: hybrid: the query vector or out is NULL");
    if ((st = check_text_query(s, text))) return st;
    vdx_store_fusion f = {VDX_FUSION_RRF, 60, 1, 1, 0, {0}};
    if (fusion) f = *fusion;
    if (f.method != VDX_FUSION_RRF && f.method != VDX_FUSION_WEIGHTED)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: hybrid: fusion method %d, expected "
                         "VDX_FUSION_RRF (0) or VDX_FUSION_WEIGHTED (1)",
                         f.method);
    if (f.rrf_k == 0) f.rrf_k = 60;
    if (f.w_vector == 0 && f.w_text == 0) f.w_vector = f.w_text = 1;
    if (!isfinite(f.rrf_k) || f.rrf_k < 0 || !isfinite(f.w_vector) ||
        !isfinite(f.w_text) || f.w_vector < 0 || f.w_text < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: hybrid: rrf_k=%g, weights (%g, %g): expected "
                         "finite values >= 0",
                         f.rrf_k, f.w_vector, f.w_text);
    int64_t kc = f.candidates > 0 ? f.candidates : (4 * k > 50 ? 4 * k : 50);
    if (kc < k) kc = k;
    if (kc > 100000) kc = 100000;
    float *q = NULL;
    if ((st = prep_queries(s, 1, x, &q))) return st;
    int64_t *tv = vdx_malloc_array((size_t)kc, sizeof *tv);
    float *ts = vdx_malloc_array((size_t)kc, sizeof *ts);
    fused *fu = vdx_malloc_array((size_t)kc * 2, sizeof *fu);
    vdx_store_hits *h = NULL;
    if (!tv || !ts || !fu || alloc_hits(1, k, &h)) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto free_bufs;
    }
    reader r;
    if ((st = reader_begin(s, &r))) goto free_bufs;
    vlist v = {0};
    int64_t nt = 0, nv = 0, nf = 0;
    st = vsearch(&r, q, 1, kc, where, params, &v);
    if (!st) st = ksearch(&r, text, kc, where, tv, ts, &nt);
    if (!st) {
        while (nv < kc && v.vid[nv] >= 0) nv++;
        int lower = s->metric == VDX_STORE_METRIC_L2;
        for (int64_t i = 0; i < nv; i++)
            add_fused(fu, &nf, v.vid[i],
                      f.method == VDX_FUSION_RRF
                          ? f.w_vector / (f.rrf_k + (double)(i + 1))
                          : f.w_vector * norm_score(v.score, nv, i, lower));
        for (int64_t i = 0; i < nt; i++)
            add_fused(fu, &nf, tv[i],
                      f.method == VDX_FUSION_RRF
                          ? f.w_text / (f.rrf_k + (double)(i + 1))
                          : f.w_text * norm_score(ts, nt, i, 0));
        qsort(fu, (size_t)nf, sizeof *fu, cmp_fused);
        for (int64_t i = 0; i < nf && h->count[0] < k && !st; i++)
            st = fill_hit(r.c, h, 0, fu[i].vid, (float)fu[i].score, flags);
    }
    reader_end(&r, st == VDX_OK);
    vlist_free(&v);
free_bufs:
    vdx_free(q);
    vdx_free(tv);
    vdx_free(ts);
    vdx_free(fu);
    if (st) {
        vdx_store_hits_free(h);
        return st;
    }
    *out = h;
    return VDX_OK;
}

/* ---- get, count ------------------------------------------------------- */
void vdx_store_rows_free(vdx_store_rows *r) {
    if (!r) return;
    for (int64_t i = 0; i < r->n; i++) {
        if (r->metadata) vdx_free((void *)r->metadata[i]);
        if (r->texts) vdx_free((void *)r->texts[i]);
    }
    vdx_free(r->found);
    vdx_free(r->vectors);
    vdx_free(r->metadata);
    vdx_free(r->texts);
    vdx_free(r);
}

vdx_status vdx_store_get(vdx_store *s, int64_t n, const vdx_store_key *keys,
                         vdx_store_rows **out) {
    vdx_clear_error();
    if (out) *out = NULL;
    if (!s || !out || n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: get: bad arguments");
    vdx_status st = store_check_keys(n, keys);
    if (st) return st;
    vdx_store_rows *r = vdx_calloc(1, sizeof *r);
    if (!r) return VDX_ERR_OUT_OF_MEMORY;
    r->n = n;
    r->d = s->dim;
    size_t nn = (size_t)(n ? n : 1);
    r->found = vdx_calloc(nn, sizeof *r->found);
    r->vectors = vdx_calloc(nn * (size_t)s->dim, sizeof(float));
    r->metadata = vdx_calloc(nn, sizeof *r->metadata);
    r->texts = vdx_calloc(nn, sizeof *r->texts);
    if (!r->found || !r->vectors || !r->metadata || !r->texts) {
        vdx_store_rows_free(r);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    reader rd;
    if ((st = reader_begin(s, &rd))) {
        vdx_store_rows_free(r);
        return st;
    }
    sqlite3_stmt *q;
    st = store_prepare(rd.c,
                       "SELECT r.meta, r.text, v.vec FROM vdx_rows r JOIN "
                       "vdx_vectors v ON v.vid = r.vid WHERE r.key=?1",
                       &q);
    size_t bytes = (size_t)s->dim * sizeof(float);
    for (int64_t i = 0; i < n && !st; i++) {
        sqlite3_reset(q);
        store_bind_key(q, 1, &keys[i]);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            r->found[i] = 1;
            r->metadata[i] = dup_col(q, 0);
            r->texts[i] = dup_col(q, 1);
            if ((size_t)sqlite3_column_bytes(q, 2) == bytes)
                memcpy(r->vectors + i * s->dim, sqlite3_column_blob(q, 2),
                       bytes);
        } else if (rc != SQLITE_DONE) {
            st = store_sql_err(rd.c->db, "get");
        }
    }
    if (!st) sqlite3_reset(q);
    reader_end(&rd, 0);
    if (st) {
        vdx_store_rows_free(r);
        return st;
    }
    *out = r;
    return VDX_OK;
}

vdx_status vdx_store_count(vdx_store *s, const char *where, int64_t *count) {
    vdx_clear_error();
    if (!s || !count)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: count: NULL argument");
    *count = 0;
    if (!where) {
        pthread_rwlock_rdlock(&s->rw);
        *count = s->nlive;
        pthread_rwlock_unlock(&s->rw);
        return VDX_OK;
    }
    store_sql w;
    vdx_status st = store_filter_compile(s, where, &w);
    if (st) return st;
    reader rd;
    if ((st = reader_begin(s, &rd))) {
        store_sql_free(&w);
        return st;
    }
    store_sql full = {0};
    sqlite3_stmt *q = NULL;
    if (store_sql_cat(&full, "SELECT count(*) FROM vdx_rows WHERE %s", w.sql))
        st = VDX_ERR_OUT_OF_MEMORY;
    if (!st) st = store_prepare(rd.c, full.sql, &q);
    if (!st) st = store_sql_bind(&w, q, 1);
    if (!st) {
        if (sqlite3_step(q) == SQLITE_ROW) *count = sqlite3_column_int64(q, 0);
        else st = store_sql_err(rd.c->db, "count");
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
    reader_end(&rd, 0);
    store_sql_free(&full);
    store_sql_free(&w);
    return st;
}
