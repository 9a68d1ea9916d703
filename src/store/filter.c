/*
 * filter.c — JSON filters compiled to parameterised SQL.
 *
 *   {"category": "ml", "year": {"$gte": 2020}, "tags": {"$contains": "rag"},
 *    "$or": [{...}, {...}], "$not": {...}}
 *
 * An object is the AND of its entries; a field maps to a value ($eq) or to
 * an object of operators ($eq $ne $lt $lte $gt $gte $in $nin $contains).
 * Every value becomes a bound parameter; only the schema's own column names
 * (checked identifiers) are part of the statement text, so a value such as
 * "x'; DROP TABLE t; --" is just a string.  A row without the field fails
 * every comparison except $ne and $nin; $not is the complement of its
 * filter, rows without the field included.  Tags fields: a value, $eq and
 * $contains test membership, $in any of the values, $ne / $nin none.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define MAX_BINDS 30000
#define MAX_DEPTH 32

void store_sql_free(store_sql *q) {
    if (!q) return;
    for (int i = 0; i < q->nbinds; i++) vdx_free(q->binds[i].s);
    vdx_free(q->binds);
    vdx_free(q->sql);
    memset(q, 0, sizeof *q);
}

int store_sql_cat(store_sql *q, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) return -1;
    if (q->len + (size_t)need + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        while (cap < q->len + (size_t)need + 1) cap *= 2;
        char *p = vdx_realloc_array(q->sql, cap, 1);
        if (!p) return -1;
        q->sql = p;
        q->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(q->sql + q->len, q->cap - q->len, fmt, ap);
    va_end(ap);
    q->len += (size_t)need;
    return 0;
}

static vdx_status add_bind(store_sql *q, const store_bind *b) {
    if (q->nbinds >= MAX_BINDS)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: more than %d values in one filter", MAX_BINDS);
    if (q->nbinds == q->bcap) {
        int cap = q->bcap ? 2 * q->bcap : 16;
        store_bind *p = vdx_realloc_array(q->binds, (size_t)cap, sizeof *p);
        if (!p) return VDX_ERR_OUT_OF_MEMORY;
        q->binds = p;
        q->bcap = cap;
    }
    q->binds[q->nbinds++] = *b;
    return VDX_OK;
}

static vdx_status bind_text(store_sql *q, const char *s) {
    store_bind b = {SQLITE_TEXT, 0, 0, NULL};
    size_t n = strlen(s) + 1;
    b.s = vdx_malloc(n);
    if (!b.s) return VDX_ERR_OUT_OF_MEMORY;
    memcpy(b.s, s, n);
    vdx_status st = add_bind(q, &b);
    if (st) vdx_free(b.s);
    return st;
}

vdx_status store_sql_bind(const store_sql *q, sqlite3_stmt *st, int first) {
    for (int i = 0; i < q->nbinds; i++) {
        const store_bind *b = &q->binds[i];
        int rc = b->type == SQLITE_INTEGER ? sqlite3_bind_int64(st, first + i, b->i)
                 : b->type == SQLITE_FLOAT ? sqlite3_bind_double(st, first + i, b->f)
                                           : sqlite3_bind_text(st, first + i, b->s,
                                                               -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return vdx_raise(VDX_ERR_INTERNAL, "where: bind %d failed", i);
    }
    return VDX_OK;
}

typedef struct ctx {
    const vdx_store *s;
    store_sql *q;
} ctx;

#define CAT(...)                                                             \
    do {                                                                     \
        if (store_sql_cat(c->q, __VA_ARGS__))                                \
            return VDX_ERR_OUT_OF_MEMORY;                                    \
    } while (0)

static const store_field *find_field(const vdx_store *s, const char *name) {
    for (int i = 0; i < s->nfields; i++)
        if (!strcmp(s->fields[i].name, name)) return &s->fields[i];
    return NULL;
}

static vdx_status unknown_field(const vdx_store *s, const char *name) {
    char list[512] = "";
    size_t len = 0;
    for (int i = 0; i < s->nfields && len < sizeof list - 80; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                i ? ", " : "", s->fields[i].name);
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "where: unknown field '%.80s' (the schema has: %s)", name,
                     s->nfields ? list : "no fields");
}

static const char *type_word(int t) {
    return t == F_INT ? "int" : t == F_FLOAT ? "float" : t == F_TEXT ? "text"
                                                                     : "tags";
}

/* Binds one comparison value of field f (type-checked). */
static vdx_status bind_value(ctx *c, const store_field *f, const char *op,
                             json_t *v) {
    int ok;
    store_bind b = {0, 0, 0, NULL};
    switch (f->type) {
    case F_INT:
    case F_FLOAT:
        ok = json_is_number(v);
        if (ok && json_is_integer(v)) {
            b.type = SQLITE_INTEGER;
            b.i = json_integer_value(v);
        } else if (ok) {
            b.type = SQLITE_FLOAT;
            b.f = json_real_value(v);
        }
        break;
    default:
        ok = json_is_string(v);
        if (ok) return bind_text(c->q, json_string_value(v));
    }
    if (!ok) {
        char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        vdx_status st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                  "where: field '%s' is %s; %s got %.80s", f->name,
                                  type_word(f->type), op, txt ? txt : "?");
        free(txt);
        return st;
    }
    return add_bind(c->q, &b);
}

static vdx_status compile_obj(ctx *c, json_t *o, int depth);

/* (?,?,?) of an $in / $nin array */
static vdx_status value_list(ctx *c, const store_field *f, const char *op,
                             json_t *arr) {
    if (!json_is_array(arr))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: %s on field '%s' needs an array", op, f->name);
    CAT("(");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        vdx_status st = bind_value(c, f, op, json_array_get(arr, i));
        if (st) return st;
        CAT("%s?", i ? "," : "");
    }
    CAT(")");
    return VDX_OK;
}

static vdx_status compile_op(ctx *c, const store_field *f, const char *op,
                             json_t *v) {
    vdx_status st;
    if (f->type == F_TAGS) {
        int neg = !strcmp(op, "$ne") || !strcmp(op, "$nin");
        int list = !strcmp(op, "$in") || !strcmp(op, "$nin");
        if (!list && strcmp(op, "$eq") && strcmp(op, "$contains") &&
            strcmp(op, "$ne"))
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "where: operator '%s' does not apply to the tags "
                             "field '%s' (use $contains, $eq, $ne, $in, $nin)",
                             op, f->name);
        if ((st = bind_text(c->q, f->name))) return st;
        CAT("(vid %sIN (SELECT vid FROM vdx_tags WHERE field=? AND tag ",
            neg ? "NOT " : "");
        if (list) {
            CAT("IN ");
            if ((st = value_list(c, f, op, v))) return st;
        } else {
            CAT("= ?");
            if ((st = bind_value(c, f, op, v))) return st;
        }
        CAT("))");
        return VDX_OK;
    }
    static const struct {
        const char *op, *sql;
    } cmp[] = {{"$eq", "="}, {"$lt", "<"}, {"$lte", "<="}, {"$gt", ">"},
               {"$gte", ">="}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++)
        if (!strcmp(op, cmp[i].op)) {
            CAT("\"f_%s\" %s ?", f->name, cmp[i].sql);
            return bind_value(c, f, op, v);
        }
    if (!strcmp(op, "$ne")) {
        CAT("(\"f_%s\" IS NULL OR \"f_%s\" <> ?)", f->name, f->name);
        return bind_value(c, f, op, v);
    }
    if (!strcmp(op, "$in")) {
        CAT("\"f_%s\" IN ", f->name);
        return value_list(c, f, op, v);
    }
    if (!strcmp(op, "$nin")) {
        CAT("(\"f_%s\" IS NULL OR \"f_%s\" NOT IN ", f->name, f->name);
        if ((st = value_list(c, f, op, v))) return st;
        CAT(")");
        return VDX_OK;
    }
    if (!strcmp(op, "$contains"))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: $contains applies to tags fields; '%s' is %s",
                         f->name, type_word(f->type));
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "where: unknown operator '%.40s' on field '%s' (known: "
                     "$eq $ne $lt $lte $gt $gte $in $nin $contains)",
                     op, f->name);
}

static vdx_status compile_field(ctx *c, const char *name, json_t *v) {
    const store_field *f = find_field(c->s, name);
    if (!f) return unknown_field(c->s, name);
    if (!json_is_object(v)) return compile_op(c, f, "$eq", v);
    if (json_object_size(v) == 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: field '%s' has an empty operator object",
                         name);
    CAT("(");
    const char *op;
    json_t *arg;
    int first = 1;
    json_object_foreach(v, op, arg) {
        if (!first) CAT(" AND ");
        first = 0;
        if (op[0] != '$')
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "where: field '%s': '%.40s' is not an operator "
                             "(operators start with '$')",
                             name, op);
        vdx_status st = compile_op(c, f, op, arg);
        if (st) return st;
    }
    CAT(")");
    return VDX_OK;
}

static vdx_status compile_list(ctx *c, const char *op, json_t *arr, int depth) {
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: %s needs a non-empty array of filters", op);
    CAT("(");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (i) CAT(!strcmp(op, "$or") ? " OR " : " AND ");
        vdx_status st = compile_obj(c, json_array_get(arr, i), depth + 1);
        if (st) return st;
    }
    CAT(")");
    return VDX_OK;
}

static vdx_status compile_obj(ctx *c, json_t *o, int depth) {
    if (depth > MAX_DEPTH)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: filters nested deeper than %d", MAX_DEPTH);
    if (!json_is_object(o))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where: a filter must be a JSON object");
    if (json_object_size(o) == 0) {
        CAT("1");
        return VDX_OK;
    }
    CAT("(");
    const char *key;
    json_t *v;
    int first = 1;
    json_object_foreach(o, key, v) {
        if (!first) CAT(" AND ");
        first = 0;
        vdx_status st;
        if (!strcmp(key, "$and") || !strcmp(key, "$or")) {
            st = compile_list(c, key, v, depth);
        } else if (!strcmp(key, "$not")) {
            /* NULL (a missing field) counts as false inside, so NOT of it
             * is true */
            CAT("NOT coalesce(");
            st = compile_obj(c, v, depth + 1);
            if (!st) CAT(", 0)");
        } else if (key[0] == '$') {
            st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                           "where: unknown operator '%.40s' (known at the top "
                           "level: $and $or $not)",
                           key);
        } else {
            st = compile_field(c, key, v);
        }
        if (st) return st;
    }
    CAT(")");
    return VDX_OK;
}

vdx_status store_filter_compile(const vdx_store *s, const char *where,
                                store_sql *out) {
    memset(out, 0, sizeof *out);
    json_error_t err;
    json_t *j = json_loads(where, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "where is not valid JSON (line %d, column %d: %s)",
                         err.line, err.column, err.text);
    ctx c = {s, out};
    vdx_status st = compile_obj(&c, j, 0);
    json_decref(j);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vdx_last_error());
        store_sql_free(out);
        return vdx_raise(st == VDX_ERR_OUT_OF_MEMORY ? st : st, "%s",
                         msg[0] ? msg : "where: no memory");
    }
    return VDX_OK;
}

vdx_status store_filter_vids(vdx_store *s, store_conn *conn, const char *where,
                             int64_t **vids, int64_t *n) {
    *vids = NULL;
    *n = 0;
    store_sql q;
    vdx_status st = store_filter_compile(s, where, &q);
    if (st) return st;
    store_sql full = {0};
    if (store_sql_cat(&full, "SELECT vid FROM vdx_rows WHERE %s ORDER BY vid",
                      q.sql)) {
        store_sql_free(&q);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    sqlite3_stmt *stm;
    st = store_prepare(conn, full.sql, &stm);
    store_sql_free(&full);
    if (!st) st = store_sql_bind(&q, stm, 1);
    if (st) {
        store_sql_free(&q);
        return st;
    }
    int64_t cap = 1024, cnt = 0;
    int64_t *v = vdx_malloc_array((size_t)cap, sizeof *v);
    int rc = SQLITE_DONE;
    while (v && (rc = sqlite3_step(stm)) == SQLITE_ROW) {
        if (cnt == cap) {
            int64_t *p = vdx_realloc_array(v, (size_t)cap * 2, sizeof *v);
            if (!p) {
                vdx_free(v);
                v = NULL;
                break;
            }
            v = p;
            cap *= 2;
        }
        v[cnt++] = sqlite3_column_int64(stm, 0);
    }
    if (!v) st = VDX_ERR_OUT_OF_MEMORY;
    else if (rc != SQLITE_DONE) st = store_sql_err(conn->db, "filter");
    sqlite3_reset(stm);
    /* the statement borrows the binds' strings: clear before freeing */
    sqlite3_clear_bindings(stm);
    store_sql_free(&q);
    if (st) {
        vdx_free(v);
        return st;
    }
    *vids = v;
    *n = cnt;
    return VDX_OK;
}
