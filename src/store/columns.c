/*
 * columns.c — the schema's fields held in memory, column by column, and
 * filters evaluated over them into the matching vids.
 *
 * A filtered search needs the vids of the matching rows before it scores
 * anything; SQLite finds them through one index and then steps through
 * every candidate row (milliseconds at 100k rows).  The columns answer the
 * same question in one pass of comparisons over arrays: an int64 or double
 * per vid (with a has-value byte), a dictionary code per vid for text
 * fields (a filter becomes a table of matching codes), and a sorted
 * posting list of vids per tag (vids only grow, so appending keeps them
 * sorted).  Dead vids keep their stale values; the live bitmap masks them.
 * The callers' int64 keys by vid let a search that wants no metadata answer
 * without touching SQLite at all.
 *
 * Semantics are those of the SQL that filter.c compiles, in two-valued
 * form: a comparison with a missing value is false, except $ne and $nin
 * (filter.c's "IS NULL OR ..."), and $not is NOT coalesce(inner, 0), so a
 * NULL never reaches a NOT and two values suffice.  Numbers compare as
 * SQLite compares them (exactly, integer against real); text compares
 * bytewise, shorter first (BINARY collation).
 *
 * The columns follow the index: loaded at open, extended by each commit
 * under the exclusive lock, rebuilt after compact.  When anything fails
 * (no memory) they are switched off and filters go to SQLite again.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* ---- dictionaries ------------------------------------------------------ */
static uint64_t hash_str(const char *p) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*p) h = (h ^ (unsigned char)*p++) * 1099511628211ull;
    return h;
}

/* The code of str, or -1. */
static int32_t dict_find(const store_dict *d, const char *str) {
    if (!d->nslot) return -1;
    uint64_t m = d->nslot - 1;
    for (uint64_t i = hash_str(str) & m;; i = (i + 1) & m) {
        int32_t c = d->slot[i];
        if (c < 0) return -1;
        if (!strcmp(d->str[c], str)) return c;
    }
}

/* The code of str, added when new; -1 on OOM. */
static int32_t dict_add(store_dict *d, const char *str) {
    int32_t c = dict_find(d, str);
    if (c >= 0) return c;
    if (d->n >= INT32_MAX / 4) return -1;
    if ((uint64_t)(d->n + 1) * 2 > d->nslot) {
        uint32_t ns = d->nslot ? d->nslot * 2 : 64;
        int32_t *sl = vdx_malloc_array(ns, sizeof *sl);
        if (!sl) return -1;
        for (uint32_t i = 0; i < ns; i++) sl[i] = -1;
        for (int32_t j = 0; j < d->n; j++)
            for (uint64_t i = hash_str(d->str[j]) & (ns - 1);; i = (i + 1) & (ns - 1))
                if (sl[i] < 0) {
                    sl[i] = j;
                    break;
                }
        vdx_free(d->slot);
        d->slot = sl;
        d->nslot = ns;
    }
    if (d->n == d->cap) {
        int32_t cap = d->cap ? d->cap * 2 : 16;
        char **p = vdx_realloc_array(d->str, (size_t)cap, sizeof *p);
        if (!p) return -1;
        d->str = p;
        d->cap = cap;
    }
    size_t len = strlen(str) + 1;
    char *copy = vdx_malloc(len);
    if (!copy) return -1;
    memcpy(copy, str, len);
    c = d->n++;
    d->str[c] = copy;
    uint64_t m = d->nslot - 1;
    for (uint64_t i = hash_str(str) & m;; i = (i + 1) & m)
        if (d->slot[i] < 0) {
            d->slot[i] = c;
            break;
        }
    return c;
}

static void dict_free(store_dict *d) {
    for (int32_t i = 0; i < d->n; i++) vdx_free(d->str[i]);
    vdx_free(d->str);
    vdx_free(d->slot);
    memset(d, 0, sizeof *d);
}

/* ---- the columns -------------------------------------------------------- */
void store_cols_free(vdx_store *s) {
    if (s->cols)
        for (int f = 0; f < s->nfields; f++) {
            store_col *c = &s->cols[f];
            vdx_free(c->iv);
            vdx_free(c->fv);
            vdx_free(c->code);
            vdx_free(c->has);
            for (int32_t t = 0; t < c->dict.n && c->post; t++)
                vdx_free(c->post[t].v);
            vdx_free(c->post);
            dict_free(&c->dict);
        }
    vdx_free(s->cols);
    vdx_free(s->cols_key);
    vdx_free(s->cols_kint);
    s->cols = NULL;
    s->cols_key = NULL;
    s->cols_kint = NULL;
    s->cols_n = s->cols_cap = 0;
    s->cols_ok = 0;
}

int64_t store_cols_bytes(const vdx_store *s) {
    if (!s->cols_ok) return 0;
    int64_t b = s->cols_cap * 9;
    for (int f = 0; f < s->nfields; f++) {
        const store_col *c = &s->cols[f];
        int t = s->fields[f].type;
        b += t == F_INT || t == F_FLOAT ? s->cols_cap * 9
             : t == F_TEXT             ? s->cols_cap * 4
                                       : 0;
        b += (int64_t)c->dict.cap * 8 + (int64_t)c->dict.nslot * 4;
        for (int32_t i = 0; i < c->dict.n; i++)
            b += (int64_t)strlen(c->dict.str[i]) + 1;
        for (int32_t i = 0; c->post && i < c->dict.n; i++)
            b += c->post[i].cap * 8;
    }
    return b;
}

vdx_status store_cols_init(vdx_store *s) {
    store_cols_free(s);
    s->cols = vdx_calloc((size_t)(s->nfields ? s->nfields : 1), sizeof *s->cols);
    if (!s->cols) return VDX_ERR_OUT_OF_MEMORY;
    s->cols_ok = 1;
    return VDX_OK;
}

/* Room for vids < n in every column; 0 or -1. */
static int cols_reserve(vdx_store *s, int64_t n) {
    if (n <= s->cols_cap) return 0;
    int64_t cap = s->cols_cap ? s->cols_cap : 1024;
    while (cap < n) cap *= 2;
    int64_t *k = vdx_realloc_array(s->cols_key, (size_t)cap, sizeof *k);
    if (!k) return -1;
    s->cols_key = k;
    uint8_t *ki = vdx_realloc_array(s->cols_kint, (size_t)cap, 1);
    if (!ki) return -1;
    s->cols_kint = ki;
    for (int f = 0; f < s->nfields; f++) {
        store_col *c = &s->cols[f];
        int t = s->fields[f].type;
        if (t == F_INT) {
            int64_t *p = vdx_realloc_array(c->iv, (size_t)cap, sizeof *p);
            if (!p) return -1;
            c->iv = p;
        } else if (t == F_FLOAT) {
            double *p = vdx_realloc_array(c->fv, (size_t)cap, sizeof *p);
            if (!p) return -1;
            c->fv = p;
        } else if (t == F_TEXT) {
            int32_t *p = vdx_realloc_array(c->code, (size_t)cap, sizeof *p);
            if (!p) return -1;
            c->code = p;
        }
        if (t == F_INT || t == F_FLOAT) {
            uint8_t *p = vdx_realloc_array(c->has, (size_t)cap, 1);
            if (!p) return -1;
            c->has = p;
        }
    }
    s->cols_cap = cap;
    return 0;
}

/* Appends vid to the posting list of tag in field c; 0 or -1. */
static int post_add(store_col *c, const char *tag, int64_t vid) {
    int32_t before = c->dict.n, code = dict_add(&c->dict, tag);
    if (code < 0) return -1;
    if (c->dict.n > before && c->dict.n > c->npost_cap) {
        int32_t cap = c->npost_cap ? c->npost_cap * 2 : 16;
        store_post *p = vdx_realloc_array(c->post, (size_t)cap, sizeof *p);
        if (!p) return -1;
        memset(p + c->npost_cap, 0, (size_t)(cap - c->npost_cap) * sizeof *p);
        c->post = p;
        c->npost_cap = cap;
    }
    store_post *p = &c->post[code];
    if (p->n && p->v[p->n - 1] >= vid) return p->v[p->n - 1] == vid ? 0 : -1;
    if (p->n == p->cap) {
        int64_t cap = p->cap ? p->cap * 2 : 8;
        int64_t *v = vdx_realloc_array(p->v, (size_t)cap, sizeof *v);
        if (!v) return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = vid;
    return 0;
}

/* Clears vids [from, to) to "no value". */
static void cols_clear(vdx_store *s, int64_t from, int64_t to) {
    memset(s->cols_kint + from, 0, (size_t)(to - from));
    for (int f = 0; f < s->nfields; f++) {
        store_col *c = &s->cols[f];
        if (c->has) memset(c->has + from, 0, (size_t)(to - from));
        if (c->code)
            for (int64_t v = from; v < to; v++) c->code[v] = -1;
    }
}

void store_cols_add(vdx_store *s, int64_t vid, const void *meta,
                    const vdx_store_key *key) {
    const json_t *obj = meta;
    if (!s->cols_ok) return;
    if (vid != s->cols_n || cols_reserve(s, vid + 1)) goto off;
    cols_clear(s, vid, vid + 1);
    s->cols_n = vid + 1;
    if (key && !key->text) {
        s->cols_key[vid] = key->id;
        s->cols_kint[vid] = 1;
    }
    for (int f = 0; obj && f < s->nfields; f++) {
        store_col *c = &s->cols[f];
        json_t *v = json_object_get(obj, s->fields[f].name);
        if (!v || json_is_null(v)) continue;
        switch (s->fields[f].type) {
        case F_INT:
            c->iv[vid] = json_integer_value(v);
            c->has[vid] = 1;
            break;
        case F_FLOAT:
            c->fv[vid] = json_number_value(v);
            c->has[vid] = 1;
            break;
        case F_TEXT:
            if ((c->code[vid] = dict_add(&c->dict, json_string_value(v))) < 0)
                goto off;
            break;
        default:
            for (size_t t = 0; t < json_array_size(v); t++)
                if (post_add(c, json_string_value(json_array_get(v, t)), vid))
                    goto off;
        }
    }
    return;
off:
    store_cols_free(s);
}

void store_cols_extend(vdx_store *s, int64_t n) {
    if (!s->cols_ok || n <= s->cols_n) return;
    if (cols_reserve(s, n)) {
        store_cols_free(s);
        return;
    }
    cols_clear(s, s->cols_n, n);
    s->cols_n = n;
}

vdx_status store_cols_load(vdx_store *s, sqlite3 *db) {
    vdx_status st = store_cols_init(s);
    if (st) return st;
    /* the typed columns, in vid order */
    char sql[256 * 80 + 64];
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT vid, key");
    for (int f = 0; f < s->nfields; f++)
        if (s->fields[f].type != F_TAGS)
            len += (size_t)snprintf(sql + len, sizeof sql - len, ", \"f_%s\"",
                                    s->fields[f].name);
    snprintf(sql + len, sizeof sql - len, " FROM vdx_rows ORDER BY vid");
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return store_sql_err(db, "read the metadata columns");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t vid = sqlite3_column_int64(q, 0);
        if (vid < s->cols_n || vid > s->ntotal) {
            rc = SQLITE_CORRUPT;
            break;
        }
        if (cols_reserve(s, vid + 1)) {
            rc = SQLITE_NOMEM;
            break;
        }
        cols_clear(s, s->cols_n, vid + 1);
        s->cols_n = vid + 1;
        if (sqlite3_column_type(q, 1) == SQLITE_INTEGER) {
            s->cols_key[vid] = sqlite3_column_int64(q, 1);
            s->cols_kint[vid] = 1;
        }
        int col = 2;
        for (int f = 0; f < s->nfields; f++) {
            store_col *c = &s->cols[f];
            int t = s->fields[f].type;
            if (t == F_TAGS) continue;
            int ct = sqlite3_column_type(q, col);
            if (ct == SQLITE_NULL) {
                col++;
                continue;
            }
            if (t == F_INT) {
                c->iv[vid] = sqlite3_column_int64(q, col);
                c->has[vid] = 1;
            } else if (t == F_FLOAT) {
                c->fv[vid] = sqlite3_column_double(q, col);
                c->has[vid] = 1;
            } else {
                const char *txt = (const char *)sqlite3_column_text(q, col);
                if (!txt || (c->code[vid] = dict_add(&c->dict, txt)) < 0) {
                    rc = SQLITE_NOMEM;
                    break;
                }
            }
            col++;
        }
        if (rc == SQLITE_NOMEM) break;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        store_cols_free(s);
        return rc == SQLITE_NOMEM ? VDX_OK /* filters use SQLite */
                                  : vdx_raise(VDX_ERR_FORMAT,
                                              "store: %s/store.db: vdx_rows "
                                              "holds a vid out of range",
                                              s->path);
    }
    store_cols_extend(s, s->ntotal);
    /* tags: the primary key's order is (field, tag, vid) */
    if (sqlite3_prepare_v2(db, "SELECT field, tag, vid FROM vdx_tags", -1, &q,
                           NULL) != SQLITE_OK)
        return store_sql_err(db, "read the tags");
    while (s->cols_ok && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *field = (const char *)sqlite3_column_text(q, 0);
        const char *tag = (const char *)sqlite3_column_text(q, 1);
        int64_t vid = sqlite3_column_int64(q, 2);
        int f = 0;
        while (f < s->nfields && (s->fields[f].type != F_TAGS || !field ||
                                  strcmp(s->fields[f].name, field)))
            f++;
        if (f == s->nfields || !tag || vid < 0 || vid >= s->cols_n ||
            post_add(&s->cols[f], tag, vid))
            store_cols_free(s); /* unexpected: filters use SQLite */
    }
    sqlite3_finalize(q);
    return VDX_OK;
}

/* ---- evaluation --------------------------------------------------------- */
typedef struct ev {
    const vdx_store *s;
    int64_t n, nw; /* vids, 64-bit words */
} ev;

#define EV_UNSUPPORTED 1 /* internal: evaluate in SQL instead */

static int cmp_num(long double a, long double b) { return (a > b) - (a < b); }

/* SQLite's BINARY collation: bytes, then the shorter first. */
static int cmp_text(const char *a, const char *b) { return strcmp(a, b); }

enum { OP_EQ, OP_NE, OP_LT, OP_LTE, OP_GT, OP_GTE, OP_IN, OP_NIN, OP_CONTAINS };

static int op_code(const char *op) {
    static const char *names[] = {"$eq", "$ne", "$lt",  "$lte",     "$gt",
                                  "$gte", "$in", "$nin", "$contains"};
    for (int i = 0; i < 9; i++)
        if (!strcmp(op, names[i])) return i;
    return -1;
}

static int cmp_ok(int op, int c) {
    switch (op) {
    case OP_EQ: case OP_IN: return c == 0;
    case OP_NE: case OP_NIN: return c != 0;
    case OP_LT: return c < 0;
    case OP_LTE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* One number of a comparison as a long double (exact for int64 and
 * double alike); 0 when v is not a number. */
static int num_of(const json_t *v, long double *out) {
    if (json_is_integer(v)) *out = (long double)json_integer_value(v);
    else if (json_is_real(v)) *out = (long double)json_real_value(v);
    else return 0;
    return 1;
}

static void set_bit(uint64_t *b, int64_t v) { b[v >> 6] |= 1ull << (v & 63); }

/* out = the vids where field f satisfies op v. */
static int eval_op(const ev *e, const store_field *fd, const store_col *c,
                   int op, const json_t *v, uint64_t *out) {
    memset(out, 0, (size_t)e->nw * 8);
    int list = op == OP_IN || op == OP_NIN;
    int neg = op == OP_NE || op == OP_NIN;
    size_t nv = list ? json_array_size(v) : 1;
    if (list && !json_is_array(v)) return EV_UNSUPPORTED;
    if (fd->type == F_TAGS) {
        if (op != OP_EQ && op != OP_CONTAINS && !list && op != OP_NE)
            return EV_UNSUPPORTED;
        for (size_t i = 0; i < nv; i++) {
            const json_t *t = list ? json_array_get(v, i) : v;
            if (!json_is_string(t)) return EV_UNSUPPORTED;
            int32_t code = dict_find(&c->dict, json_string_value(t));
            if (code < 0) continue;
            const store_post *p = &c->post[code];
            for (int64_t j = 0; j < p->n; j++)
                if (p->v[j] < e->n) set_bit(out, p->v[j]);
        }
        if (neg)
            for (int64_t w = 0; w < e->nw; w++) out[w] = ~out[w];
        return 0;
    }
    if (op == OP_CONTAINS || op < 0) return EV_UNSUPPORTED;
    if (fd->type == F_TEXT) {
        /* which codes match: one comparison per distinct value */
        uint8_t *tbl = vdx_calloc((size_t)(c->dict.n ? c->dict.n : 1), 1);
        if (!tbl) return EV_UNSUPPORTED;
        for (int32_t k = 0; k < c->dict.n; k++) {
            int any = 0, all = 1;
            for (size_t i = 0; i < nv; i++) {
                const json_t *t = list ? json_array_get(v, i) : v;
                if (!json_is_string(t)) {
                    vdx_free(tbl);
                    return EV_UNSUPPORTED;
                }
                int r = cmp_ok(op, cmp_text(c->dict.str[k], json_string_value(t)));
                any |= r;
                all &= r;
            }
            tbl[k] = (uint8_t)(op == OP_NIN ? all : any);
        }
        for (int64_t vid = 0; vid < e->n; vid++) {
            int32_t k = c->code[vid];
            if (k < 0 ? neg : tbl[k]) set_bit(out, vid);
        }
        vdx_free(tbl);
        return 0;
    }
    long double a[64];
    if (nv > 64) return EV_UNSUPPORTED;
    for (size_t i = 0; i < nv; i++)
        if (!num_of(list ? json_array_get(v, i) : v, &a[i])) return EV_UNSUPPORTED;
    for (int64_t vid = 0; vid < e->n; vid++) {
        int r;
        if (!c->has[vid]) {
            r = neg;
        } else {
            long double x = fd->type == F_INT ? (long double)c->iv[vid]
                                              : (long double)c->fv[vid];
            if (!list) {
                r = cmp_ok(op, cmp_num(x, a[0]));
            } else {
                r = 0;
                for (size_t i = 0; i < nv && !r; i++) r = x == a[i];
                if (op == OP_NIN) r = !r;
            }
        }
        if (r) set_bit(out, vid);
    }
    return 0;
}

static int eval_obj(const ev *e, const json_t *o, uint64_t *out, int depth);

static int eval_field(const ev *e, const char *name, const json_t *v,
                      uint64_t *out, uint64_t *tmp) {
    const vdx_store *s = e->s;
    int f = 0;
    while (f < s->nfields && strcmp(s->fields[f].name, name)) f++;
    if (f == s->nfields) return EV_UNSUPPORTED;
    if (!json_is_object(v))
        return eval_op(e, &s->fields[f], &s->cols[f], OP_EQ, v, out);
    memset(out, 0xff, (size_t)e->nw * 8);
    const char *op;
    json_t *arg;
    json_object_foreach((json_t *)v, op, arg) {
        int r = eval_op(e, &s->fields[f], &s->cols[f], op_code(op), arg, tmp);
        if (r) return r;
        for (int64_t w = 0; w < e->nw; w++) out[w] &= tmp[w];
    }
    return 0;
}

static int eval_obj(const ev *e, const json_t *o, uint64_t *out, int depth) {
    if (!json_is_object(o) || depth > 32) return EV_UNSUPPORTED;
    size_t bytes = (size_t)e->nw * 8;
    memset(out, 0xff, bytes);
    uint64_t *a = vdx_malloc(bytes ? bytes : 8);
    uint64_t *b = vdx_malloc(bytes ? bytes : 8);
    int r = (!a || !b) ? EV_UNSUPPORTED : 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        if (r) break;
        if (!strcmp(key, "$and") || !strcmp(key, "$or")) {
            int is_or = key[1] == 'o';
            if (!json_is_array(v) || !json_array_size(v)) {
                r = EV_UNSUPPORTED;
                break;
            }
            for (size_t i = 0; i < json_array_size(v) && !r; i++) {
                if ((r = eval_obj(e, json_array_get(v, i), b, depth + 1))) break;
                if (i == 0) memcpy(a, b, bytes);
                else if (is_or)
                    for (int64_t w = 0; w < e->nw; w++) a[w] |= b[w];
                else
                    for (int64_t w = 0; w < e->nw; w++) a[w] &= b[w];
            }
        } else if (!strcmp(key, "$not")) {
            if (!(r = eval_obj(e, v, a, depth + 1)))
                for (int64_t w = 0; w < e->nw; w++) a[w] = ~a[w];
        } else if (key[0] == '$') {
            r = EV_UNSUPPORTED;
        } else {
            r = eval_field(e, key, v, a, b);
        }
        if (!r)
            for (int64_t w = 0; w < e->nw; w++) out[w] &= a[w];
    }
    vdx_free(a);
    vdx_free(b);
    return r;
}

int store_cols_filter(const vdx_store *s, const char *where, int64_t **vids,
                      int64_t *n) {
    *vids = NULL;
    *n = 0;
    if (!s->cols_ok || s->cols_n != s->ntotal) return -1;
    json_t *j = json_loads(where, JSON_REJECT_DUPLICATES, NULL);
    if (!j) return -1;
    ev e = {s, s->ntotal, (s->ntotal + 63) / 64};
    uint64_t *bm = vdx_malloc((size_t)(e.nw ? e.nw : 1) * 8);
    int r = bm ? eval_obj(&e, j, bm, 0) : EV_UNSUPPORTED;
    json_decref(j);
    if (r) {
        vdx_free(bm);
        return -1;
    }
    int64_t cnt = 0;
    for (int64_t w = 0; w < e.nw; w++) {
        /* the live bitmap is bytes; words of it line up with ours */
        uint64_t live = 0;
        for (int b = 0; b < 8; b++) {
            int64_t byte = w * 8 + b;
            if (byte < s->live_cap) live |= (uint64_t)s->live[byte] << (8 * b);
        }
        if (w == e.nw - 1 && (e.n & 63)) live &= (1ull << (e.n & 63)) - 1;
        bm[w] &= live;
        cnt += __builtin_popcountll(bm[w]);
    }
    int64_t *v = vdx_malloc_array((size_t)(cnt ? cnt : 1), sizeof *v);
    if (!v) {
        vdx_free(bm);
        return -1;
    }
    int64_t k = 0;
    for (int64_t w = 0; w < e.nw; w++)
        for (uint64_t x = bm[w]; x; x &= x - 1)
            v[k++] = w * 64 + __builtin_ctzll(x);
    vdx_free(bm);
    *vids = v;
    *n = cnt;
    return 0;
}

/* ---- the snapshot file ---------------------------------------------------
 * Open used to rebuild the live bitmap and the columns by scanning vdx_rows
 * and vdx_tags (~60 ms of SQLite steps at 100k rows, most of an open once
 * the index is mapped).  The checkpoint also writes them, as they stand,
 * to cols.<generation>.bin, stamped with the database's write sequence
 * (vdx_meta 'wseq', bumped by every upsert / delete / compact transaction).
 * Open takes the file only when its stamp, generation, vector count and
 * schema match the database and its checksum holds; anything else (an
 * older file, a torn one, a write after the checkpoint) falls back to the
 * scan, so the database stays the only truth.  Layout: 8-byte words,
 * native order (the store is a local folder), byte arrays padded to 8:
 *   magic, stamp, generation, ntotal, nfields, nlive, live[ceil(n/8)],
 *   keys[n], kint[n], then per field its type and
 *   int: iv[n] has[n] | float: fv[n] has[n] | text: code[n] (i32), dict |
 *   tags: dict, then per tag: count, vids[count];  dict: count, per string
 *   its length and bytes;  and last the checksum of all words before. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_MAGIC 0x31534c4f43584456ull /* "VDXCOLS1" */

typedef struct snap_buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} snap_buf;

static void sb_put(snap_buf *b, const void *x, size_t n) {
    size_t pad = (8 - n % 8) % 8;
    if (b->oom) return;
    if (b->n + n + pad > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n + pad) cap *= 2;
        uint8_t *q = vdx_realloc_array(b->p, cap, 1);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, x, n);
    memset(b->p + b->n + n, 0, pad);
    b->n += n + pad;
}

static void sb_i64(snap_buf *b, int64_t v) { sb_put(b, &v, 8); }

static uint64_t snap_sum(const uint8_t *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull, w;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static void sb_dict(snap_buf *b, const store_dict *d) {
    sb_i64(b, d->n);
    for (int32_t i = 0; i < d->n; i++) {
        size_t len = strlen(d->str[i]);
        sb_i64(b, (int64_t)len);
        sb_put(b, d->str[i], len);
    }
}

int store_cols_save(const vdx_store *s, const char *path, int64_t stamp) {
    if (!s->cols_ok || s->cols_n != s->ntotal) return -1;
    int64_t n = s->ntotal, lb = (n + 7) / 8;
    snap_buf b = {0};
    sb_i64(&b, (int64_t)SNAP_MAGIC);
    sb_i64(&b, stamp);
    sb_i64(&b, s->generation);
    sb_i64(&b, n);
    sb_i64(&b, s->nfields);
    sb_i64(&b, s->nlive);
    /* live bytes past live_cap are zero (never set) */
    if (lb <= s->live_cap) {
        sb_put(&b, s->live, (size_t)lb);
    } else {
        uint8_t *z = vdx_calloc((size_t)lb, 1);
        if (!z) b.oom = 1;
        else if (s->live_cap) memcpy(z, s->live, (size_t)s->live_cap);
        sb_put(&b, z, (size_t)lb);
        vdx_free(z);
    }
    sb_put(&b, s->cols_key, (size_t)n * 8);
    sb_put(&b, s->cols_kint, (size_t)n);
    for (int f = 0; f < s->nfields; f++) {
        const store_col *c = &s->cols[f];
        int t = s->fields[f].type;
        sb_i64(&b, t);
        if (t == F_INT || t == F_FLOAT) {
            sb_put(&b, t == F_INT ? (const void *)c->iv : (const void *)c->fv,
                   (size_t)n * 8);
            sb_put(&b, c->has, (size_t)n);
        } else if (t == F_TEXT) {
            sb_put(&b, c->code, (size_t)n * 4);
            sb_dict(&b, &c->dict);
        } else {
            sb_dict(&b, &c->dict);
            for (int32_t i = 0; i < c->dict.n; i++) {
                sb_i64(&b, c->post[i].n);
                sb_put(&b, c->post[i].v, (size_t)c->post[i].n * 8);
            }
        }
    }
    if (b.oom) {
        vdx_free(b.p);
        return -1;
    }
    sb_i64(&b, (int64_t)snap_sum(b.p, b.n));
    if (b.oom) {
        vdx_free(b.p);
        return -1;
    }
    /* a temporary renamed over the file: a reader sees the old file or the
     * whole new one */
    size_t plen = strlen(path);
    char *tmp = vdx_malloc(plen + 5);
    int ok = 0;
    if (tmp) {
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp", 5);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            size_t off = 0;
            while (off < b.n) {
                ssize_t w = write(fd, b.p + off, b.n - off);
                if (w <= 0) break;
                off += (size_t)w;
            }
            ok = off == b.n && fsync(fd) == 0;
            close(fd);
            ok = ok && rename(tmp, path) == 0;
            if (!ok) unlink(tmp);
        }
        vdx_free(tmp);
    }
    vdx_free(b.p);
    return ok ? 0 : -1;
}

typedef struct snap_rd {
    const uint8_t *p;
    size_t n, at;
    int bad;
} snap_rd;

/* n bytes (and their padding) at the cursor, or NULL (bad). */
static const uint8_t *rd_take(snap_rd *r, uint64_t n) {
    uint64_t pad = (8 - n % 8) % 8;
    if (r->bad || n > r->n - r->at || pad > r->n - r->at - n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->at;
    r->at += (size_t)(n + pad);
    return q;
}

static int64_t rd_i64(snap_rd *r) {
    const uint8_t *q = rd_take(r, 8);
    int64_t v = 0;
    if (q) memcpy(&v, q, 8);
    return v;
}

/* A copy of n elements of size sz from the cursor into a new array. */
static void *rd_array(snap_rd *r, int64_t n, size_t sz) {
    if (n < 0 || (uint64_t)n > (r->n - r->at) / (sz ? sz : 1)) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = rd_take(r, (uint64_t)n * sz);
    void *a = q ? vdx_malloc_array((size_t)(n ? n : 1), sz) : NULL;
    if (!a) {
        r->bad = 1;
        return NULL;
    }
    if (n) memcpy(a, q, (size_t)n * sz);
    return a;
}

static void rd_dict(snap_rd *r, store_dict *d) {
    int64_t cnt = rd_i64(r);
    if (cnt < 0 || cnt > (int64_t)((r->n - r->at) / 8)) r->bad = 1;
    for (int64_t i = 0; i < cnt && !r->bad; i++) {
        int64_t len = rd_i64(r);
        if (len < 0 || len > 1 << 20) {
            r->bad = 1;
            break;
        }
        const uint8_t *q = rd_take(r, (uint64_t)len);
        char *str = q ? vdx_malloc((size_t)len + 1) : NULL;
        if (!str) {
            r->bad = 1;
            break;
        }
        memcpy(str, q, (size_t)len);
        str[len] = 0;
        /* a string twice, or with a NUL inside, is damage */
        if (strlen(str) != (size_t)len || dict_add(d, str) != (int32_t)i)
            r->bad = 1;
        vdx_free(str);
    }
}

int store_cols_restore(vdx_store *s, const char *path, int64_t stamp) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat sb;
    uint8_t *buf = NULL;
    size_t size = 0;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 64 &&
        (uint64_t)sb.st_size % 8 == 0 && (uint64_t)sb.st_size < ((uint64_t)1 << 40)) {
        size = (size_t)sb.st_size;
        buf = vdx_malloc(size);
        size_t off = 0;
        while (buf && off < size) {
            ssize_t got = read(fd, buf + off, size - off);
            if (got <= 0) break;
            off += (size_t)got;
        }
        if (buf && off != size) {
            vdx_free(buf);
            buf = NULL;
        }
    }
    close(fd);
    if (!buf) return 0;
    uint64_t sum;
    memcpy(&sum, buf + size - 8, 8);
    snap_rd r = {buf, size - 8, 0, 0};
    int64_t n = s->ntotal, lb = (n + 7) / 8;
    uint8_t *live = NULL;
    if (snap_sum(buf, size - 8) != sum || rd_i64(&r) != (int64_t)SNAP_MAGIC ||
        rd_i64(&r) != stamp || rd_i64(&r) != s->generation ||
        rd_i64(&r) != n || rd_i64(&r) != s->nfields)
        goto bad;
    int64_t nlive = rd_i64(&r);
    live = rd_array(&r, lb, 1);
    if (r.bad) goto bad;
    {
        int64_t cnt = 0;
        for (int64_t i = 0; i < lb; i++) cnt += __builtin_popcount(live[i]);
        /* bits past ntotal would be live vectors the index lacks */
        if (cnt != nlive || (n % 8 && (live[lb - 1] >> (n % 8)))) goto bad;
    }
    if (store_cols_init(s)) goto bad;
    s->cols_key = rd_array(&r, n, 8);
    s->cols_kint = rd_array(&r, n, 1);
    s->cols_n = s->cols_cap = n;
    for (int f = 0; f < s->nfields && !r.bad; f++) {
        store_col *c = &s->cols[f];
        int t = s->fields[f].type;
        if (rd_i64(&r) != t) goto bad;
        if (t == F_INT || t == F_FLOAT) {
            if (t == F_INT) c->iv = rd_array(&r, n, 8);
            else c->fv = rd_array(&r, n, 8);
            c->has = rd_array(&r, n, 1);
        } else if (t == F_TEXT) {
            c->code = rd_array(&r, n, 4);
            rd_dict(&r, &c->dict);
            for (int64_t v = 0; v < n && !r.bad; v++)
                if (c->code[v] < -1 || c->code[v] >= c->dict.n) r.bad = 1;
        } else {
            rd_dict(&r, &c->dict);
            if (r.bad) break;
            int32_t np = c->dict.n ? c->dict.n : 1;
            c->post = vdx_calloc((size_t)np, sizeof *c->post);
            c->npost_cap = np;
            if (!c->post) r.bad = 1;
            for (int32_t i = 0; i < c->dict.n && !r.bad; i++) {
                int64_t pn = rd_i64(&r);
                store_post *p = &c->post[i];
                p->v = rd_array(&r, pn, 8);
                if (r.bad) break;
                p->n = p->cap = pn;
                for (int64_t j = 0; j < pn && !r.bad; j++)
                    if (p->v[j] < (j ? p->v[j - 1] + 1 : 0) || p->v[j] >= n)
                        r.bad = 1;
            }
        }
    }
    if (r.bad || r.at != r.n) goto bad;
    vdx_free(buf);
    vdx_free(s->live);
    s->live = live;
    s->live_cap = lb;
    s->nlive = nlive;
    return 1;
bad:
    vdx_free(live);
    vdx_free(buf);
    store_cols_free(s);
    return 0;
}
