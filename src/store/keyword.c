/*
 * keyword.c — keyword search (BM25 through FTS5) without scoring every
 * matching row on every query.
 *
 * FTS5's `ORDER BY rank` computes bm25() for every row that matches any of
 * the query's words (its docsize lookup and phrase walk included) and sorts
 * them all: with common words that is most of the table, ~3 ms per 1,000
 * rows.  But FTS5's bm25 of an OR of phrases p_1..p_n is, per row, the sum
 * over the phrases of idf(p_i) * tf(p_i) (k1 + 1) / (tf(p_i) + k1 (1 - b +
 * b |D| / avgdl)), each term depending only on that phrase and that row
 * (idf counts the rows matching p_i over the whole table).  So the store
 * asks FTS5 once per phrase for `-bm25()` of the one-phrase query, row by
 * row (FTS5's own tokenizer, stemmer and arithmetic: nothing re-implemented),
 * keeps that list (ascending rowid) in a cache, and a query merges its
 * phrases' lists, summing in FTS5's order (so the double scores are the same
 * bits), and keeps the top k in a heap.  Ties go to the lower vid, as FTS5's
 * rowid-ordered scan gives them.
 *
 * The cache is valid for one state of the FTS table: every write that
 * changes it bumps s->fts_epoch under `rw` exclusive, and the next lookup
 * (under `rw` shared, so no reader still holds an old list) drops the old
 * lists.  Lists are immutable once cached; kw_mu guards the table of them.
 * Past STORE_KW_CACHE_MAX entries in all, a list is built for its query
 * only and freed after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* up to this many phrases, a query merges their sorted lists (no
 * allocation); past it, it sums them into a dense array (linear in the
 * postings, whatever the number of phrases) */
#define STORE_KW_MERGE_MAX 8

struct store_kw_list {
    char *phrase;
    int64_t n;
    int64_t *vid; /* ascending */
    double *sc;   /* -bm25 of the one-phrase query */
};

static void list_free(store_kw_list *l) {
    if (!l) return;
    vdx_free(l->phrase);
    vdx_free(l->vid);
    vdx_free(l->sc);
    vdx_free(l);
}

void store_kw_free(vdx_store *s) {
    for (int64_t i = 0; i < s->nkw; i++) list_free(s->kw[i]);
    vdx_free(s->kw);
    s->kw = NULL;
    s->nkw = s->kw_cap = s->kw_entries = 0;
}

/* Reads the list of one phrase ("word", quoted) from FTS5. */
static vdx_status list_read(store_conn *c, const char *phrase,
                            store_kw_list **out) {
    *out = NULL;
    store_kw_list *l = vdx_calloc(1, sizeof *l);
    if (!l) return VDX_ERR_OUT_OF_MEMORY;
    size_t len = strlen(phrase) + 1;
    l->phrase = vdx_malloc(len);
    if (!l->phrase) {
        list_free(l);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    memcpy(l->phrase, phrase, len);
    sqlite3_stmt *q;
    vdx_status st = store_prepare(c,
                                  "SELECT rowid, -bm25(vdx_fts) FROM vdx_fts "
                                  "WHERE vdx_fts MATCH ?1 ORDER BY rowid",
                                  &q);
    if (st) {
        list_free(l);
        return st;
    }
    sqlite3_bind_text(q, 1, phrase, -1, SQLITE_STATIC);
    int64_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (l->n == cap) {
            int64_t nc = cap ? 2 * cap : 256;
            int64_t *v = vdx_realloc_array(l->vid, (size_t)nc, sizeof *v);
            if (v) l->vid = v;
            double *d = v ? vdx_realloc_array(l->sc, (size_t)nc, sizeof *d) : NULL;
            if (d) l->sc = d;
            if (!v || !d) {
                st = VDX_ERR_OUT_OF_MEMORY;
                break;
            }
            cap = nc;
        }
        l->vid[l->n] = sqlite3_column_int64(q, 0);
        l->sc[l->n] = sqlite3_column_double(q, 1);
        l->n++;
    }
    if (!st && rc != SQLITE_DONE) st = store_sql_err(c->db, "keyword search");
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (st) {
        list_free(l);
        return st;
    }
    *out = l;
    return VDX_OK;
}

/* The list of phrase: cached (*owned = 0) or the caller's (*owned = 1).
 * Under `rw` shared. */
static vdx_status list_get(vdx_store *s, store_conn *c, const char *phrase,
                           store_kw_list **out, int *owned) {
    *owned = 0;
    pthread_mutex_lock(&s->kw_mu);
    if (s->kw_epoch != s->fts_epoch) {
        store_kw_free(s);
        s->kw_epoch = s->fts_epoch;
    }
    for (int64_t i = 0; i < s->nkw; i++)
        if (!strcmp(s->kw[i]->phrase, phrase)) {
            *out = s->kw[i];
            pthread_mutex_unlock(&s->kw_mu);
            return VDX_OK;
        }
    pthread_mutex_unlock(&s->kw_mu);
    /* read unlocked: two threads may both read a new phrase; the second
     * one's copy is then its own */
    store_kw_list *l;
    vdx_status st = list_read(c, phrase, &l);
    if (st) return st;
    pthread_mutex_lock(&s->kw_mu);
    int dup = 0;
    for (int64_t i = 0; i < s->nkw && !dup; i++)
        dup = !strcmp(s->kw[i]->phrase, phrase);
    if (!dup && s->kw_entries + l->n <= STORE_KW_CACHE_MAX &&
        s->kw_epoch == s->fts_epoch) {
        if (s->nkw == s->kw_cap) {
            int64_t nc = s->kw_cap ? 2 * s->kw_cap : 16;
            store_kw_list **t = vdx_realloc_array(s->kw, (size_t)nc, sizeof *t);
            if (t) {
                s->kw = t;
                s->kw_cap = nc;
            }
        }
        if (s->nkw < s->kw_cap) {
            s->kw[s->nkw++] = l;
            s->kw_entries += l->n;
            pthread_mutex_unlock(&s->kw_mu);
            *out = l;
            return VDX_OK;
        }
    }
    pthread_mutex_unlock(&s->kw_mu);
    *out = l;
    *owned = 1;
    return VDX_OK;
}

/* (score, vid) worse than (score2, vid2): lower score, then higher vid. */
static int kw_worse(double a, int64_t ia, double b, int64_t ib) {
    return a < b || (a == b && ia > ib);
}

static void heap_down(double *sc, int64_t *id, int64_t n, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && kw_worse(sc[l], id[l], sc[w], id[w])) w = l;
        if (r < n && kw_worse(sc[r], id[r], sc[w], id[w])) w = r;
        if (w == i) return;
        double t = sc[i];
        sc[i] = sc[w];
        sc[w] = t;
        int64_t u = id[i];
        id[i] = id[w];
        id[w] = u;
        i = w;
    }
}

static void heap_up(double *sc, int64_t *id, int64_t i) {
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!kw_worse(sc[i], id[i], sc[p], id[p])) return;
        double t = sc[i];
        sc[i] = sc[p];
        sc[p] = t;
        int64_t u = id[i];
        id[i] = id[p];
        id[p] = u;
        i = p;
    }
}

vdx_status store_kw_search(vdx_store *s, store_conn *c, char *const *phrases,
                           int nph, int64_t k, const uint8_t *allow,
                           int64_t nallow, int64_t *vid, float *score,
                           int64_t *count) {
    *count = 0;
    store_kw_list **ls = vdx_calloc((size_t)nph, sizeof *ls);
    int *owned = vdx_calloc((size_t)nph, sizeof *owned);
    int64_t *pos = vdx_calloc((size_t)nph, sizeof *pos);
    double *hs = vdx_malloc_array((size_t)k, sizeof *hs);
    int64_t *hi = vdx_malloc_array((size_t)k, sizeof *hi);
    vdx_status st = VDX_OK;
    if (!ls || !owned || !pos || !hs || !hi) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int i = 0; i < nph && !st; i++)
        st = list_get(s, c, phrases[i], &ls[i], &owned[i]);
    if (st) goto out;
    int64_t n = 0;
    if (nph > STORE_KW_MERGE_MAX) {
        /* many phrases: sum into a dense array (phrase by phrase, so each
         * row's terms still add up in the query's order); every term is
         * > 0 (FTS5 floors idf at 1e-6), so 0 marks an untouched row */
        int64_t nv = 0;
        for (int i = 0; i < nph; i++)
            for (int64_t j = 0; j < ls[i]->n; j++)
                if (ls[i]->vid[j] >= nv) nv = ls[i]->vid[j] + 1;
        double *acc = vdx_calloc((size_t)(nv ? nv : 1), sizeof *acc);
        if (!acc) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto out;
        }
        for (int i = 0; i < nph; i++)
            for (int64_t j = 0; j < ls[i]->n; j++)
                if (ls[i]->vid[j] >= 0) acc[ls[i]->vid[j]] += ls[i]->sc[j];
        for (int64_t v = 0; v < nv; v++) {
            if (acc[v] == 0.0) continue;
            if (allow && (v >= nallow || !((allow[v >> 3] >> (v & 7)) & 1)))
                continue;
            if (n < k) {
                hs[n] = acc[v];
                hi[n] = v;
                heap_up(hs, hi, n++);
            } else if (kw_worse(hs[0], hi[0], acc[v], v)) {
                hs[0] = acc[v];
                hi[0] = v;
                heap_down(hs, hi, n, 0);
            }
        }
        vdx_free(acc);
        goto sorted;
    }
    /* merge the ascending lists: each step takes the smallest vid left */
    for (;;) {
        int64_t v = INT64_MAX;
        for (int i = 0; i < nph; i++)
            if (pos[i] < ls[i]->n && ls[i]->vid[pos[i]] < v)
                v = ls[i]->vid[pos[i]];
        if (v == INT64_MAX) break;
        double sum = 0.0;
        for (int i = 0; i < nph; i++)
            if (pos[i] < ls[i]->n && ls[i]->vid[pos[i]] == v)
                sum += ls[i]->sc[pos[i]++];
        if (allow && (v < 0 || v >= nallow || !((allow[v >> 3] >> (v & 7)) & 1)))
            continue;
        if (n < k) {
            hs[n] = sum;
            hi[n] = v;
            heap_up(hs, hi, n++);
        } else if (kw_worse(hs[0], hi[0], sum, v)) {
            hs[0] = sum;
            hi[0] = v;
            heap_down(hs, hi, n, 0);
        }
    }
sorted:
    /* best first: pop the worst to the back */
    for (int64_t m = n; m > 1; m--) {
        double t = hs[0];
        hs[0] = hs[m - 1];
        hs[m - 1] = t;
        int64_t u = hi[0];
        hi[0] = hi[m - 1];
        hi[m - 1] = u;
        heap_down(hs, hi, m - 1, 0);
    }
    for (int64_t j = 0; j < n; j++) {
        vid[j] = hi[j];
        score[j] = (float)hs[j];
    }
    *count = n;
out:
    for (int i = 0; ls && i < nph; i++)
        if (owned[i]) list_free(ls[i]);
    vdx_free(ls);
    vdx_free(owned);
    vdx_free(pos);
    vdx_free(hs);
    vdx_free(hi);
    return st;
}
