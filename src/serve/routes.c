/*
 * routes.c — the JSON routes of `vecdex serve` over an index (FAISS file or
 * sharded directory) or a store, with jansson.  Every request is checked
 * before anything changes: the JSON parses, each field has its type, every
 * vector has the index's dimension and finite components, k and the batch
 * size are in range; a failure is a 4xx reply naming the field.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"
#include "common/common.h"

void vdx_reply_error(vdx_reply *r, int status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s, s:i}", "error", msg, "status", status);
    r->status = status;
    r->type = "application/json";
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

static void reply_json(vdx_reply *r, json_t *o) { /* steals o */
    r->status = 200;
    r->type = "application/json";
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

/* the library's status as an HTTP code, with its message */
static void reply_status(vdx_reply *r, vdx_status st, const char *what) {
    int code = st == VDX_ERR_INVALID_ARGUMENT || st == VDX_ERR_UNSUPPORTED ? 400
               : st == VDX_ERR_NOT_FOUND                                   ? 404
               : st == VDX_ERR_NOT_TRAINED                                 ? 409
               : st == VDX_ERR_READ_ONLY                                   ? 403
               : st == VDX_ERR_BUSY || st == VDX_ERR_OUT_OF_MEMORY         ? 503
               : st == VDX_ERR_TIMEOUT                                     ? 504
                                                                           : 500;
    const char *m = vdx_last_error();
    vdx_reply_error(r, code, "%s: %s", what, m && *m ? m : vdx_status_name(st));
}

int vdx_serve_route(const char *method, const char *url, int *write) {
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    *write = 0;
    if (get && !strcmp(url, "/health")) return R_HEALTH;
    if (get && !strcmp(url, "/info")) return R_INFO;
    if (get && !strcmp(url, "/metrics")) return R_METRICS;
    if (post && !strcmp(url, "/search")) return R_SEARCH;
    *write = 1;
    if (post && !strcmp(url, "/add")) return R_ADD;
    if (post && !strcmp(url, "/upsert")) return R_UPSERT;
    if (post && !strcmp(url, "/delete")) return R_DELETE;
    if (post && !strcmp(url, "/save")) return R_SAVE;
    *write = 0;
    return R_OTHER;
}

/* ---- parsing ------------------------------------------------------------- */

/* body -> object, or an error reply */
static json_t *parse_body(const char *body, size_t len, vdx_reply *r) {
    json_error_t e;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (!o) {
        vdx_reply_error(r, 400, "malformed JSON at line %d column %d: %s",
                        e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        vdx_reply_error(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* "vectors": [[...], ...] (or "vector": [...]) -> n x d floats (malloc'd) */
static float *parse_vectors(const vdx_server *s, json_t *o, int64_t *n,
                            vdx_reply *r) {
    json_t *v = json_object_get(o, "vectors");
    int single = 0;
    if (!v) {
        v = json_object_get(o, "vector");
        single = v != NULL;
    }
    if (!v) {
        vdx_reply_error(r, 400, "missing field 'vectors' (an array of arrays "
                        "of %lld numbers)", (long long)s->d);
        return NULL;
    }
    if (!json_is_array(v)) {
        vdx_reply_error(r, 400, "'%s' must be an array", single ? "vector" : "vectors");
        return NULL;
    }
    int64_t rows = single ? 1 : (int64_t)json_array_size(v);
    if (rows == 0) {
        vdx_reply_error(r, 400, "'vectors' is empty");
        return NULL;
    }
    if (rows > VDX_SERVE_BATCH_MAX) {
        vdx_reply_error(r, 400, "'vectors' holds %lld vectors; at most %d per "
                        "request", (long long)rows, VDX_SERVE_BATCH_MAX);
        return NULL;
    }
    const int64_t d = s->d;
    float *x = malloc((size_t)rows * (size_t)d * sizeof(float));
    if (!x) {
        vdx_reply_error(r, 503, "out of memory for %lld vectors", (long long)rows);
        return NULL;
    }
    const float lim = vdx_max_magnitude(d);
    for (int64_t i = 0; i < rows; i++) {
        json_t *row = single ? v : json_array_get(v, (size_t)i);
        if (!json_is_array(row)) {
            vdx_reply_error(r, 400, "vector %lld is not an array", (long long)i);
            goto bad;
        }
        if ((int64_t)json_array_size(row) != d) {
            vdx_reply_error(r, 400, "wrong dimension: vector %lld has %zu "
                            "components, the index has d=%lld",
                            (long long)i, json_array_size(row), (long long)d);
            goto bad;
        }
        for (int64_t j = 0; j < d; j++) {
            json_t *e = json_array_get(row, (size_t)j);
            if (!json_is_number(e)) {
                vdx_reply_error(r, 400, "vector %lld component %lld is not a "
                                "number", (long long)i, (long long)j);
                goto bad;
            }
            float f = (float)json_number_value(e);
            if (!isfinite(f) || fabsf(f) > lim) {
                vdx_reply_error(r, 400, "vector %lld component %lld = %g is "
                                "out of range (|x| <= %g)",
                                (long long)i, (long long)j,
                                json_number_value(e), (double)lim);
                goto bad;
            }
            x[i * d + j] = f;
        }
    }
    *n = rows;
    return x;
bad:
    free(x);
    return NULL;
}

/* "ids": [int, ...] -> malloc'd array; want = expected count (or -1) */
static vdx_idx_t *parse_ids(json_t *o, int64_t want, int64_t *n, vdx_reply *r) {
    json_t *v = json_object_get(o, "ids");
    if (!json_is_array(v)) {
        vdx_reply_error(r, 400, v ? "'ids' must be an array of integers"
                                  : "missing field 'ids' (an array of integers)");
        return NULL;
    }
    int64_t m = (int64_t)json_array_size(v);
    if (want >= 0 && m != want) {
        vdx_reply_error(r, 400, "'ids' has %lld entries for %lld vectors",
                        (long long)m, (long long)want);
        return NULL;
    }
    if (m > VDX_SERVE_BATCH_MAX * 10) {
        vdx_reply_error(r, 400, "'ids' has %lld entries; at most %d",
                        (long long)m, VDX_SERVE_BATCH_MAX * 10);
        return NULL;
    }
    vdx_idx_t *ids = malloc((size_t)(m ? m : 1) * sizeof *ids);
    if (!ids) {
        vdx_reply_error(r, 503, "out of memory for %lld ids", (long long)m);
        return NULL;
    }
    for (int64_t i = 0; i < m; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) == -1) {
            vdx_reply_error(r, 400, "ids[%lld] must be an integer other than "
                            "-1", (long long)i);
            free(ids);
            return NULL;
        }
        ids[i] = (vdx_idx_t)json_integer_value(e);
    }
    *n = m;
    return ids;
}

/* store keys: ints or strings; the strings point into o */
static vdx_store_key *parse_keys(json_t *o, int64_t want, int64_t *n,
                                 vdx_reply *r) {
    json_t *v = json_object_get(o, "ids");
    if (!json_is_array(v)) {
        vdx_reply_error(r, 400, v ? "'ids' must be an array of integers or strings"
                                  : "missing field 'ids'");
        return NULL;
    }
    int64_t m = (int64_t)json_array_size(v);
    if (want >= 0 && m != want) {
        vdx_reply_error(r, 400, "'ids' has %lld entries for %lld vectors",
                        (long long)m, (long long)want);
        return NULL;
    }
    vdx_store_key *k = calloc((size_t)(m ? m : 1), sizeof *k);
    if (!k) {
        vdx_reply_error(r, 503, "out of memory for %lld ids", (long long)m);
        return NULL;
    }
    for (int64_t i = 0; i < m; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (json_is_integer(e)) k[i].id = (int64_t)json_integer_value(e);
        else if (json_is_string(e)) k[i].text = json_string_value(e);
        else {
            vdx_reply_error(r, 400, "ids[%lld] must be an integer or a string",
                            (long long)i);
            free(k);
            return NULL;
        }
    }
    *n = m;
    return k;
}

/* an optional integer field in [lo, hi] */
static int opt_int(json_t *o, const char *name, int64_t lo, int64_t hi,
                   int64_t *val, vdx_reply *r) {
    json_t *v = json_object_get(o, name);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi) {
        vdx_reply_error(r, 400, "'%s' must be an integer in %lld..%lld", name,
                        (long long)lo, (long long)hi);
        return -1;
    }
    *val = (int64_t)json_integer_value(v);
    return 0;
}

/* ---- routes -------------------------------------------------------------- */

static json_t *float_or_null(float f) {
    return fabsf(f) == 3.40282347e38f ? json_null() : json_real((double)f);
}

static void do_search(vdx_server *s, json_t *o, vdx_reply *r) {
    int64_t n = 0, k = 10, nprobe = 0, ef = 0;
    if (opt_int(o, "k", 1, VDX_SERVE_K_MAX, &k, r) ||
        opt_int(o, "nprobe", 1, 1 << 30, &nprobe, r) ||
        opt_int(o, "efSearch", 1, 1 << 30, &ef, r))
        return;
    float *x = parse_vectors(s, o, &n, r);
    if (!x) return;
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.nprobe = nprobe;
    p.efSearch = (int)ef;
    vdx_selector *sel = NULL;
    float *D = NULL;
    vdx_idx_t *I = NULL;
    vdx_store_hits *hits = NULL;
    char *where = NULL;
    json_t *out = NULL;
    vdx_status st;
    int answered = 0, total = 0;
    if (s->opt.remote_search) {
        if (json_object_get(o, "ids") || json_object_get(o, "filter")) {
            vdx_reply_error(r, 400, "'ids' and 'filter' are not supported by "
                            "a sharded MPI server");
            goto done;
        }
        json_t *ap = json_object_get(o, "allow_partial");
        if (ap && !json_is_boolean(ap)) {
            vdx_reply_error(r, 400, "'allow_partial' must be true or false");
            goto done;
        }
    }
    if (s->index || s->opt.remote_search) {
        if (json_object_get(o, "ids")) {
            int64_t m;
            vdx_idx_t *allow = parse_ids(o, -1, &m, r);
            if (!allow) goto done;
            st = vdx_selector_batch(m, allow, &sel);
            free(allow);
            if (st) {
                reply_status(r, st, "search");
                goto done;
            }
            p.sel = sel;
        }
        if (json_object_get(o, "filter")) {
            vdx_reply_error(r, 400, "'filter' needs a store; an index takes "
                            "'ids' (the allowed ids)");
            goto done;
        }
        D = malloc((size_t)n * (size_t)k * sizeof *D);
        I = malloc((size_t)n * (size_t)k * sizeof *I);
        if (!D || !I) {
            vdx_reply_error(r, 503, "out of memory for %lld x %lld results",
                            (long long)n, (long long)k);
            goto done;
        }
        if (s->opt.remote_search) {
            pthread_mutex_lock(&s->remote_mu);
            st = s->opt.remote_search(s->opt.remote_ctx, n, x, k, &p,
                                      json_is_true(json_object_get(o, "allow_partial")),
                                      D, I, &answered, &total);
            if (st) reply_status(r, st, "search");
            pthread_mutex_unlock(&s->remote_mu);
        } else {
            pthread_rwlock_rdlock(&s->lock);
            st = vdx_index_search(s->index, n, x, k, &p, D, I);
            if (st) reply_status(r, st, "search");
            pthread_rwlock_unlock(&s->lock);
        }
        if (st) goto done;
        json_t *jd = json_array(), *ji = json_array();
        out = json_object();
        for (int64_t i = 0; i < n; i++) {
            json_t *rd = json_array(), *ri = json_array();
            for (int64_t j = 0; j < k; j++) {
                json_array_append_new(rd, I[i * k + j] < 0 ? json_null()
                                                           : float_or_null(D[i * k + j]));
                json_array_append_new(ri, json_integer((json_int_t)I[i * k + j]));
            }
            json_array_append_new(jd, rd);
            json_array_append_new(ji, ri);
        }
        json_object_set_new(out, "distances", jd);
        json_object_set_new(out, "ids", ji);
        if (s->opt.remote_search) /* as Elasticsearch's _shards */
            json_object_set_new(out, "_shards",
                                json_pack("{s:i, s:i, s:i, s:b}", "total", total,
                                          "successful", answered, "failed",
                                          total - answered, "partial",
                                          answered < total));
    } else {
        json_t *f = json_object_get(o, "filter");
        if (f && !json_is_object(f)) {
            vdx_reply_error(r, 400, "'filter' must be a JSON object");
            goto done;
        }
        if (f && !(where = json_dumps(f, JSON_COMPACT))) {
            vdx_reply_error(r, 503, "out of memory");
            goto done;
        }
        int flags = json_is_true(json_object_get(o, "metadata")) ? VDX_STORE_WITH_METADATA : 0;
        st = vdx_store_search(s->store, n, x, k, where, &p, flags, &hits);
        if (st) {
            reply_status(r, st, "search");
            goto done;
        }
        json_t *js = json_array(), *ji = json_array(), *jm = flags ? json_array() : NULL;
        out = json_object();
        for (int64_t i = 0; i < n; i++) {
            json_t *rs = json_array(), *ri = json_array(), *rm = jm ? json_array() : NULL;
            for (int64_t j = 0; j < hits->count[i]; j++) {
                const vdx_store_hit *h = &hits->hits[i * hits->k + j];
                json_array_append_new(rs, json_real((double)h->score));
                json_array_append_new(ri, h->key.text ? json_string(h->key.text)
                                                      : json_integer((json_int_t)h->key.id));
                if (rm)
                    json_array_append_new(rm, h->metadata ? json_loads(h->metadata, 0, NULL)
                                                          : json_null());
            }
            json_array_append_new(js, rs);
            json_array_append_new(ji, ri);
            if (jm) json_array_append_new(jm, rm);
        }
        json_object_set_new(out, "scores", js);
        json_object_set_new(out, "ids", ji);
        if (jm) json_object_set_new(out, "metadata", jm);
    }
    atomic_fetch_add(&s->metrics.queries, n);
    reply_json(r, out);
    out = NULL;
done:
    json_decref(out);
    free(where);
    vdx_store_hits_free(hits);
    vdx_selector_free(sel);
    free(D);
    free(I);
    free(x);
}

/* metadata / texts of a store upsert: arrays of n (or absent) */
static int parse_strings(json_t *o, const char *name, int64_t n, int dump,
                         char ***out, vdx_reply *r) {
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (!v) return 0;
    if (!json_is_array(v) || (int64_t)json_array_size(v) != n) {
        vdx_reply_error(r, 400, "'%s' must be an array of %lld entries", name,
                        (long long)n);
        return -1;
    }
    char **a = calloc((size_t)n, sizeof *a);
    if (!a) {
        vdx_reply_error(r, 503, "out of memory");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (json_is_null(e)) continue;
        if (dump ? !json_is_object(e) : !json_is_string(e)) {
            vdx_reply_error(r, 400, "%s[%lld] must be %s or null", name,
                            (long long)i, dump ? "an object" : "a string");
            goto bad;
        }
        a[i] = dump ? json_dumps(e, JSON_COMPACT) : strdup(json_string_value(e));
        if (!a[i]) {
            vdx_reply_error(r, 503, "out of memory");
            goto bad;
        }
    }
    *out = a;
    return 0;
bad:
    for (int64_t i = 0; i < n; i++) free(a[i]);
    free(a);
    return -1;
}

static void free_strings(char **a, int64_t n) {
    for (int64_t i = 0; a && i < n; i++) free(a[i]);
    free(a);
}

static void do_write(vdx_server *s, int route, json_t *o, vdx_reply *r) {
    const char *what = route == R_ADD ? "add" : route == R_UPSERT ? "upsert" : "delete";
    int64_t n = 0, m = 0;
    float *x = NULL;
    vdx_idx_t *ids = NULL;
    vdx_store_key *keys = NULL;
    char **meta = NULL, **texts = NULL;
    vdx_selector *sel = NULL;
    vdx_status st = VDX_OK;
    if (route != R_DELETE && !(x = parse_vectors(s, o, &n, r))) goto done;
    if (s->opt.remote_search) {
        /* the shards on MPI ranks: routed by rank 0 (vecdex_dist.h) */
        if (!s->opt.remote_write) {
            vdx_reply_error(r, 400, "%s: this sharded MPI server takes searches "
                            "only", what);
            goto done;
        }
        int with_ids = json_object_get(o, "ids") != NULL;
        if ((with_ids || route != R_ADD) &&
            !(ids = parse_ids(o, route == R_DELETE ? -1 : n, &m, r)))
            goto done;
        int64_t count = 0, nt = 0;
        pthread_mutex_lock(&s->remote_mu);
        st = s->opt.remote_write(s->opt.remote_ctx, route, route == R_DELETE ? m : n,
                                 x, ids, &count, &nt);
        atomic_store(&s->remote_nt, nt);
        if (st) reply_status(r, st, what);
        pthread_mutex_unlock(&s->remote_mu);
        if (st) goto done;
        if (route == R_DELETE)
            reply_json(r, json_pack("{s:I, s:I}", "deleted", (json_int_t)count,
                                    "ntotal", (json_int_t)nt));
        else
            reply_json(r, json_pack("{s:s, s:I, s:I}", "result",
                                    route == R_ADD ? "added" : "upserted", "count",
                                    (json_int_t)count, "ntotal", (json_int_t)nt));
        goto done;
    }
    if (s->store) {
        if (route == R_DELETE) {
            if (!(keys = parse_keys(o, -1, &m, r))) goto done;
            int64_t nd = 0;
            st = vdx_store_delete(s->store, m, keys, NULL, &nd);
            if (st) {
                reply_status(r, st, what);
                goto done;
            }
            reply_json(r, json_pack("{s:I}", "deleted", (json_int_t)nd));
            goto done;
        }
        if (!(keys = parse_keys(o, n, &m, r)) ||
            parse_strings(o, "metadata", n, 1, &meta, r) ||
            parse_strings(o, "texts", n, 0, &texts, r))
            goto done;
        st = vdx_store_upsert(s->store, n, keys, x, (const char *const *)meta,
                              (const char *const *)texts);
        if (st) {
            reply_status(r, st, what);
            goto done;
        }
        reply_json(r, json_pack("{s:I}", "upserted", (json_int_t)n));
        goto done;
    }
    int with_ids = json_object_get(o, "ids") != NULL;
    if ((with_ids || route != R_ADD) &&
        !(ids = parse_ids(o, route == R_DELETE ? -1 : n, &m, r)))
        goto done;
    if (route != R_ADD && (st = vdx_selector_batch(m, ids, &sel))) {
        reply_status(r, st, what);
        goto done;
    }
    int64_t removed = 0;
    pthread_rwlock_wrlock(&s->lock);
    if (route == R_ADD) {
        st = with_ids ? vdx_index_add_with_ids(s->index, n, x, ids)
                      : vdx_index_add(s->index, n, x);
    } else if (route == R_DELETE) {
        st = vdx_index_remove_ids(s->index, sel, &removed);
    } else if (!vdx_index_is_trained(s->index)) {
        st = vdx_raise(VDX_ERR_NOT_TRAINED, "the index is not trained");
    } else if (!(st = vdx_index_add_with_ids(s->index, 0, x, ids))) {
        /* the kind takes ids (probed with no vectors) and the vectors were
         * checked: the removal is then followed by an add that succeeds */
        st = vdx_index_remove_ids(s->index, sel, &removed);
        if (!st) st = vdx_index_add_with_ids(s->index, n, x, ids);
    }
    int64_t ntotal = vdx_index_ntotal(s->index);
    if (st) reply_status(r, st, what);
    pthread_rwlock_unlock(&s->lock);
    if (st) goto done;
    if (route == R_DELETE)
        reply_json(r, json_pack("{s:I, s:I}", "deleted", (json_int_t)removed,
                                "ntotal", (json_int_t)ntotal));
    else
        reply_json(r, json_pack("{s:s, s:I, s:I}", "result",
                                route == R_ADD ? "added" : "upserted", "count",
                                (json_int_t)n, "ntotal", (json_int_t)ntotal));
done:
    free_strings(meta, n);
    free_strings(texts, n);
    vdx_selector_free(sel);
    free(keys);
    free(ids);
    free(x);
}

static void do_save(vdx_server *s, vdx_reply *r) {
    if (!s->opt.remote_write) {
        vdx_reply_error(r, 400, "save: only a sharded MPI server (vecdex serve "
                        "--sharded DIR) saves; write an index with vecdex build");
        return;
    }
    int64_t count = 0, nt = 0;
    pthread_mutex_lock(&s->remote_mu);
    vdx_status st = s->opt.remote_write(s->opt.remote_ctx, R_SAVE, 0, NULL, NULL,
                                        &count, &nt);
    if (st) reply_status(r, st, "save");
    pthread_mutex_unlock(&s->remote_mu);
    if (!st)
        reply_json(r, json_pack("{s:s, s:I}", "result", "saved", "ntotal",
                                (json_int_t)nt));
}

static void do_info(vdx_server *s, vdx_reply *r) {
    if (s->opt.remote_search) {
        reply_json(r, json_pack("{s:s, s:I, s:I}", "kind", "mpi-sharded", "d",
                                (json_int_t)s->d, "ntotal",
                                (json_int_t)atomic_load(&s->remote_nt)));
        return;
    }
    if (s->store) {
        const char *info = vdx_store_info(s->store);
        json_t *o = info ? json_loads(info, 0, NULL) : NULL;
        if (!o) {
            vdx_reply_error(r, 500, "the store's description is not JSON");
            return;
        }
        json_object_set_new(o, "kind", json_string("store"));
        reply_json(r, o);
        return;
    }
    pthread_rwlock_rdlock(&s->lock);
    vdx_index *ix = s->index;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:s, s:I}", "kind", "index",
                          "type", vdx_index_type_name(ix), "d", (json_int_t)vdx_index_d(ix),
                          "ntotal", (json_int_t)vdx_index_ntotal(ix), "is_trained",
                          vdx_index_is_trained(ix), "metric",
                          vdx_index_metric(ix) == VDX_METRIC_L2 ? "L2" : "INNER_PRODUCT",
                          "shards", (json_int_t)vdx_index_shards_count(ix));
    pthread_rwlock_unlock(&s->lock);
    reply_json(r, o);
}

void vdx_serve_handle(vdx_server *s, int route, const char *body, size_t len,
                      vdx_reply *r) {
    vdx_clear_error();
    if (route == R_HEALTH) {
        reply_json(r, json_pack("{s:s}", "status", "ok"));
        return;
    }
    if (route == R_INFO) {
        do_info(s, r);
        return;
    }
    if (route == R_METRICS) {
        int64_t nt = atomic_load(&s->remote_nt);
        if (s->index) {
            pthread_rwlock_rdlock(&s->lock);
            nt = vdx_index_ntotal(s->index);
            pthread_rwlock_unlock(&s->lock);
        } else if (s->store) {
            vdx_store_stats stt;
            if (!vdx_store_stats_get(s->store, &stt)) nt = stt.rows;
        }
        r->status = 200;
        r->type = "text/plain; version=0.0.4; charset=utf-8";
        r->body = vdx_serve_metrics_text(&s->metrics, nt);
        return;
    }
    if (route == R_SAVE) {
        do_save(s, r);
        return;
    }
    if (route == R_OTHER) {
        vdx_reply_error(r, 404, "no such route; the routes are GET /health, "
                        "/info, /metrics and POST /search, /add, /upsert, "
                        "/delete, /save");
        return;
    }
    json_t *o = parse_body(body, len, r);
    if (!o) return;
    if (route == R_SEARCH) do_search(s, o, r);
    else do_write(s, route, o, r);
    json_decref(o);
}
