/*
 * write.c — upsert and delete.  Each call validates everything first (keys,
 * vectors, metadata against the schema, texts), then runs one SQLite
 * transaction on the writer's connection, then commits it and applies it to
 * the in-memory index under the exclusive lock, so a search sees either all
 * of a write or none of it.  A crash before the commit leaves nothing; after
 * it, the rows are in the database and the next open adds their vectors to
 * the index again.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int store_utf8_valid(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned min;
        if ((c & 0xe0) == 0xc0) len = 2, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0) len = 3, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0) len = 4, min = 0x10000, c &= 0x07;
        else return 0;
        if (i + (size_t)len > n) return 0;
        for (int j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += (size_t)len;
    }
    return 1;
}

void store_key_str(const vdx_store_key *k, char *buf, size_t n) {
    if (k->text) snprintf(buf, n, "'%.100s'", k->text);
    else snprintf(buf, n, "%lld", (long long)k->id);
}

vdx_status store_bind_key(sqlite3_stmt *st, int i, const vdx_store_key *k) {
    int rc = k->text ? sqlite3_bind_text(st, i, k->text, -1, SQLITE_STATIC)
                     : sqlite3_bind_int64(st, i, k->id);
    return rc == SQLITE_OK ? VDX_OK
                           : vdx_raise(VDX_ERR_INTERNAL, "store: bind failed");
}

static int key_cmp(const vdx_store_key *a, const vdx_store_key *b) {
    if (!a->text != !b->text) return a->text ? 1 : -1;
    if (a->text) return strcmp(a->text, b->text);
    return (a->id > b->id) - (a->id < b->id);
}

static const vdx_store_key *sort_keys;
static int idx_cmp(const void *x, const void *y) {
    int64_t i = *(const int64_t *)x, j = *(const int64_t *)y;
    int c = key_cmp(&sort_keys[i], &sort_keys[j]);
    return c ? c : (i > j) - (i < j);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

vdx_status store_check_keys(int64_t n, const vdx_store_key *keys) {
    if (n > 0 && !keys)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: keys is NULL for n=%lld",
                         (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (keys[i].text) {
            size_t len = strlen(keys[i].text);
            if (len == 0 || len > 4096)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "store: id %lld is a string of %zu bytes, "
                                 "expected 1..4096",
                                 (long long)i, len);
            if (!store_utf8_valid(keys[i].text, len))
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "store: id at position %lld is not valid "
                                 "UTF-8",
                                 (long long)i);
        }
    return VDX_OK;
}

/* Duplicate keys inside one batch: the first pair found, by position. */
static vdx_status check_duplicates(int64_t n, const vdx_store_key *keys) {
    if (n < 2) return VDX_OK;
    int64_t *ord = vdx_malloc_array((size_t)n, sizeof *ord);
    if (!ord) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    pthread_mutex_lock(&sort_mu);
    sort_keys = keys;
    qsort(ord, (size_t)n, sizeof *ord, idx_cmp);
    pthread_mutex_unlock(&sort_mu);
    vdx_status st = VDX_OK;
    for (int64_t i = 1; i < n; i++)
        if (!key_cmp(&keys[ord[i - 1]], &keys[ord[i]])) {
            char b[128];
            store_key_str(&keys[ord[i]], b, sizeof b);
            st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                           "store: upsert: id %s appears twice in the batch, "
                           "at positions %lld and %lld",
                           b, (long long)ord[i - 1], (long long)ord[i]);
            break;
        }
    vdx_free(ord);
    return st;
}

/* One validated row's metadata: the canonical JSON text and the values of
 * the schema's fields. */
typedef struct row_meta {
    json_t *obj;  /* NULL: no metadata */
    char *text;   /* json_dumps of obj */
} row_meta;

static vdx_status check_meta(const vdx_store *s, const char *m,
                             const vdx_store_key *k, row_meta *out) {
    out->obj = NULL;
    out->text = NULL;
    if (!m) return VDX_OK;
    char kb[128];
    store_key_str(k, kb, sizeof kb);
    json_error_t err;
    json_t *j = json_loads(m, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: metadata of id %s is not valid JSON (line "
                         "%d, column %d: %s)",
                         kb, err.line, err.column, err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: metadata of id %s must be a JSON object", kb);
    }
    for (int f = 0; f < s->nfields; f++) {
        json_t *v = json_object_get(j, s->fields[f].name);
        if (!v || json_is_null(v)) continue;
        int ok;
        switch (s->fields[f].type) {
        case F_INT: ok = json_is_integer(v); break;
        case F_FLOAT: ok = json_is_number(v); break;
        case F_TEXT:
            ok = json_is_string(v);
            break;
        default: {
            ok = json_is_array(v);
            for (size_t i = 0; ok && i < json_array_size(v); i++)
                ok = json_is_string(json_array_get(v, i));
        }
        }
        if (!ok) {
            static const char *want[] = {"an integer", "a number", "a string",
                                         "an array of strings"};
            char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            vdx_status st = vdx_raise(
                VDX_ERR_INVALID_ARGUMENT,
                "store: metadata of id %s: field '%s' must be %s, got %.80s",
                kb, s->fields[f].name, want[s->fields[f].type],
                txt ? txt : "?");
            free(txt);
            json_decref(j);
            return st;
        }
        if (s->fields[f].type == F_FLOAT && !isfinite(json_number_value(v))) {
            json_decref(j);
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "store: metadata of id %s: field '%s' is not "
                             "finite",
                             kb, s->fields[f].name);
        }
    }
    out->text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!out->text) {
        json_decref(j);
        return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "store: metadata: no memory");
    }
    out->obj = j;
    return VDX_OK;
}

static void free_metas(row_meta *m, int64_t n) {
    if (!m) return;
    for (int64_t i = 0; i < n; i++) {
        json_decref(m[i].obj);
        free(m[i].text);
    }
    vdx_free(m);
}

/* Removes the row of vid (its tags and keyword entry); the vector stays. */
static vdx_status delete_vid(vdx_store *s, int64_t vid) {
    sqlite3_stmt *st;
    vdx_status r;
    if ((r = store_prepare(&s->w, "DELETE FROM vdx_rows WHERE vid=?1", &st)))
        return r;
    sqlite3_bind_int64(st, 1, vid);
    if (sqlite3_step(st) != SQLITE_DONE) return store_sql_err(s->w.db, "delete");
    sqlite3_reset(st);
    if ((r = store_prepare(&s->w, "DELETE FROM vdx_tags WHERE vid=?1", &st)))
        return r;
    sqlite3_bind_int64(st, 1, vid);
    if (sqlite3_step(st) != SQLITE_DONE) return store_sql_err(s->w.db, "delete");
    sqlite3_reset(st);
    if (s->text_on) {
        if ((r = store_prepare(&s->w, "DELETE FROM vdx_fts WHERE rowid=?1", &st)))
            return r;
        sqlite3_bind_int64(st, 1, vid);
        if (sqlite3_step(st) != SQLITE_DONE)
            return store_sql_err(s->w.db, "delete");
        sqlite3_reset(st);
    }
    return VDX_OK;
}

/* The INSERT statement of a row with the schema's columns. */
static vdx_status row_insert_sql(const vdx_store *s, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n,
                                  "INSERT INTO vdx_rows(vid, key, meta, text");
    for (int f = 0; f < s->nfields; f++)
        if (s->fields[f].type != F_TAGS)
            len += (size_t)snprintf(buf + len, n - len, ", \"f_%s\"",
                                    s->fields[f].name);
    len += (size_t)snprintf(buf + len, n - len, ") VALUES (?1, ?2, ?3, ?4");
    int p = 5;
    for (int f = 0; f < s->nfields; f++)
        if (s->fields[f].type != F_TAGS)
            len += (size_t)snprintf(buf + len, n - len, ", ?%d", p++);
    len += (size_t)snprintf(buf + len, n - len, ")");
    return len < n ? VDX_OK
                   : vdx_raise(VDX_ERR_INTERNAL, "store: statement too long");
}

static vdx_status require_writable(const vdx_store *s, const char *what) {
    if (!s) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store is NULL");
    if (s->read_only)
        return vdx_raise(VDX_ERR_READ_ONLY,
                         "store: %s: %s is open read-only; open it with "
                         "read_only=0 to write",
                         what, s->path);
    if (s->broken)
        return vdx_raise(VDX_ERR_INTERNAL,
                         "store: %s: an earlier write reached the database but "
                         "not the in-memory index; reopen the store (nothing "
                         "is lost)",
                         what);
    return VDX_OK;
}

/* Adds the nnew vectors xs (vids ntotal..) to the index ahead of the
 * commit, STORE_ADD_CHUNK at a time, each chunk under the exclusive lock:
 * between chunks the searches run (an HNSW add of a 5000-row batch takes
 * seconds; one lock hold over all of it stalled every search that long).
 * The added vids are not published yet (>= s->ntotal, not live, and their
 * rows are uncommitted), so searches skip them (search.c).  On failure the
 * index holds vectors that no committed row will claim: broken. */
static vdx_status add_unpublished(vdx_store *s, int64_t nnew, const float *xs) {
    vdx_status st = VDX_OK;
    for (int64_t b = 0; b < nnew && st == VDX_OK; b += STORE_ADD_CHUNK) {
        int64_t c = nnew - b < STORE_ADD_CHUNK ? nnew - b : STORE_ADD_CHUNK;
        pthread_rwlock_wrlock(&s->rw);
        st = vdx_index_add(s->index, c, xs + b * s->dim);
        if (st != VDX_OK) s->broken = 1;
        pthread_rwlock_unlock(&s->rw);
    }
    return st;
}

/* Commits the writer's transaction and applies it in memory: vectors xs
 * (nnew of them, vids ntotal..) added, vids kill[] dead.  Called with the
 * transaction open; on failure it is rolled back. */
static vdx_status commit_apply(vdx_store *s, int64_t nnew, const float *xs,
                               const row_meta *meta, const vdx_store_key *keys,
                               const int64_t *kill,
                               int64_t nkill) {
    vdx_status st = nnew > 0 ? add_unpublished(s, nnew, xs) : VDX_OK;
    if (st != VDX_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vdx_last_error());
        sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
        return vdx_raise(st,
                         "store: upsert: the in-memory index could not take "
                         "the vectors (%s): nothing was saved; reopen the "
                         "store",
                         msg);
    }
    pthread_rwlock_wrlock(&s->rw);
    if (sqlite3_exec(s->w.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = store_sql_err(s->w.db, "commit");
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vdx_last_error());
        sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
        /* the index already holds the vectors of the rolled-back rows */
        if (nnew > 0) s->broken = 1;
        pthread_rwlock_unlock(&s->rw);
        return vdx_raise(st, "%s%s", msg,
                         nnew > 0 ? " (nothing was saved; reopen the store)"
                                  : "");
    }
    s->fts_epoch++; /* the keyword lists (keyword.c) are stale now */
    for (int64_t i = 0; i < nnew && st == VDX_OK; i++)
        if (store_live_set(s, s->ntotal + i, 1)) st = VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < nkill; i++) store_live_set(s, kill[i], 0);
    for (int64_t i = 0; i < nnew; i++)
        store_cols_add(s, s->ntotal + i, meta ? meta[i].obj : NULL, &keys[i]);
    s->ntotal += nnew;
    if (st != VDX_OK) {
        s->broken = 1;
        st = vdx_raise(st,
                       "store: the rows are saved, but the in-memory index "
                       "could not take them (%s); reopen the store",
                       vdx_last_error());
    }
    pthread_rwlock_unlock(&s->rw);
    return st;
}

static int64_t auto_train_size(const vdx_store *s, const vdx_index *fresh) {
    if (s->train_size > 0) return s->train_size;
    int64_t need = 1000;
    if (vdx_index_is_ivf(fresh) && 40 * vdx_index_ivf_nlist(fresh) > need)
        need = 40 * vdx_index_ivf_nlist(fresh);
    return need;
}

/* Trains the factory's index on the flat buffer's vectors when there are
 * enough of them (or when forced) and swaps it in.  Writer only. */
vdx_status store_maybe_train(vdx_store *s, int force) {
    if (s->trained) return VDX_OK;
    vdx_index *fresh = NULL;
    vdx_status st = store_new_index(s, &fresh);
    if (st) return st;
    int64_t n = s->ntotal;
    if ((!force && n < auto_train_size(s, fresh)) || n == 0) {
        vdx_index_free(fresh);
        if (force && n == 0)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "store: train: the store holds no vectors");
        return VDX_OK;
    }
    /* the buffer is a flat index whose positions are the vids; only the
     * writer modifies it, and the writer is here */
    const float *x = vdx_index_flat_data(s->index);
    if (!x) {
        vdx_index_free(fresh);
        return vdx_raise(VDX_ERR_INTERNAL, "store: the buffer is not flat");
    }
    st = vdx_index_train(fresh, n, x);
    if (st) {
        vdx_index_free(fresh);
        if (!force) return VDX_OK; /* e.g. too few points: wait for more */
        return vdx_raise(st, "store: train on %lld vectors: %s", (long long)n,
                         vdx_last_error());
    }
    if ((st = vdx_index_add(fresh, n, x))) {
        vdx_index_free(fresh);
        return st;
    }
    pthread_rwlock_wrlock(&s->rw);
    vdx_index *old = s->index;
    s->index = fresh;
    s->trained = 1;
    pthread_rwlock_unlock(&s->rw);
    vdx_index_free(old);
    return store_checkpoint_locked(s);
}

vdx_status vdx_store_train(vdx_store *s) {
    vdx_clear_error();
    vdx_status st = require_writable(s, "train");
    if (st) return st;
    pthread_mutex_lock(&s->wmu);
    st = store_maybe_train(s, 1);
    pthread_mutex_unlock(&s->wmu);
    return st;
}

static vdx_status maybe_checkpoint(vdx_store *s) {
    int64_t every = s->checkpoint_rows;
    if (every <= 0) {
        every = s->ntotal / 2;
        if (every < 10000) every = 10000;
    }
    if (s->ntotal - s->ck_ntotal >= every) return store_checkpoint_locked(s);
    return VDX_OK;
}

/* Looks up the vid of key k on the writer's connection: 1 found, 0 not,
 * -1 error. */
static int find_vid(vdx_store *s, const vdx_store_key *k, int64_t *vid) {
    sqlite3_stmt *st;
    if (store_prepare(&s->w, "SELECT vid FROM vdx_rows WHERE key=?1", &st))
        return -1;
    store_bind_key(st, 1, k);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *vid = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 1;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    store_sql_err(s->w.db, "find id");
    return -1;
}

vdx_status vdx_store_upsert(vdx_store *s, int64_t n, const vdx_store_key *keys,
                            const float *vectors, const char *const *metadata,
                            const char *const *texts) {
    vdx_clear_error();
    vdx_status st = require_writable(s, "upsert");
    if (st) return st;
    if (n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: upsert: n=%lld",
                         (long long)n);
    if (n == 0) return VDX_OK;
    if (!vectors)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: upsert: vectors is NULL for n=%lld",
                         (long long)n);
    if ((st = store_check_keys(n, keys))) return st;
    if ((st = check_duplicates(n, keys))) return st;
    if ((st = vdx_check_vectors(vectors, n, s->dim, "upserted vectors")))
        return st;
    if (texts) {
        for (int64_t i = 0; i < n; i++)
            if (texts[i] && !store_utf8_valid(texts[i], strlen(texts[i]))) {
                char kb[128];
                store_key_str(&keys[i], kb, sizeof kb);
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "store: upsert: the text of id %s (position "
                                 "%lld) is not valid UTF-8",
                                 kb, (long long)i);
            }
        if (!s->text_on)
            for (int64_t i = 0; i < n; i++)
                if (texts[i])
                    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                     "store: upsert: texts given, but the "
                                     "store was created with text=0");
    }
    row_meta *meta = vdx_calloc((size_t)n, sizeof *meta);
    float *xs = vdx_malloc_array((size_t)n * (size_t)s->dim, sizeof(float));
    int64_t *kill = vdx_malloc_array((size_t)n, sizeof *kill);
    int64_t nkill = 0;
    if (!meta || !xs || !kill) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int64_t i = 0; i < n && metadata; i++)
        if ((st = check_meta(s, metadata[i], &keys[i], &meta[i]))) goto out;
    memcpy(xs, vectors, (size_t)n * (size_t)s->dim * sizeof(float));
    if (s->metric == VDX_STORE_METRIC_COSINE) {
        for (int64_t i = 0; i < n; i++) {
            double nn = 0;
            for (int64_t j = 0; j < s->dim; j++)
                nn += (double)xs[i * s->dim + j] * xs[i * s->dim + j];
            if (nn == 0) {
                char kb[128];
                store_key_str(&keys[i], kb, sizeof kb);
                st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                               "store: upsert: the vector of id %s (position "
                               "%lld) is zero: it has no cosine direction",
                               kb, (long long)i);
                goto out;
            }
        }
        vdx_normalize_L2(n, s->dim, xs);
    }
    pthread_mutex_lock(&s->wmu);
    if ((st = require_writable(s, "upsert"))) goto unlock;
    if ((st = store_exec(s->w.db, "BEGIN IMMEDIATE"))) goto unlock;
    if ((st = store_bump_wseq(s->w.db))) goto rollback;
    char ins_sql[256 * 80 + 256];
    if ((st = row_insert_sql(s, ins_sql, sizeof ins_sql))) goto rollback;
    for (int64_t i = 0; i < n; i++) {
        int64_t vid = s->ntotal + i, old;
        int f = find_vid(s, &keys[i], &old);
        if (f < 0) {
            st = VDX_ERR_IO;
            goto rollback;
        }
        if (f) {
            if ((st = delete_vid(s, old))) goto rollback;
            kill[nkill++] = old;
        }
        sqlite3_stmt *q;
        if ((st = store_prepare(&s->w,
                                "INSERT INTO vdx_vectors(vid, vec) VALUES "
                                "(?1, ?2)",
                                &q)))
            goto rollback;
        sqlite3_bind_int64(q, 1, vid);
        sqlite3_bind_blob(q, 2, xs + i * s->dim,
                          (int)(s->dim * (int64_t)sizeof(float)), SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) {
            st = store_sql_err(s->w.db, "insert vector");
            sqlite3_reset(q);
            goto rollback;
        }
        sqlite3_reset(q);
        if ((st = store_prepare(&s->w, ins_sql, &q))) goto rollback;
        sqlite3_bind_int64(q, 1, vid);
        store_bind_key(q, 2, &keys[i]);
        if (meta[i].text)
            sqlite3_bind_text(q, 3, meta[i].text, -1, SQLITE_STATIC);
        if (texts && texts[i]) sqlite3_bind_text(q, 4, texts[i], -1, SQLITE_STATIC);
        int p = 5;
        for (int fi = 0; fi < s->nfields; fi++) {
            if (s->fields[fi].type == F_TAGS) continue;
            json_t *v = meta[i].obj ? json_object_get(meta[i].obj,
                                                      s->fields[fi].name)
                                    : NULL;
            if (v && json_is_integer(v) && s->fields[fi].type == F_INT)
                sqlite3_bind_int64(q, p, json_integer_value(v));
            else if (v && json_is_number(v) && s->fields[fi].type == F_FLOAT)
                sqlite3_bind_double(q, p, json_number_value(v));
            else if (v && json_is_string(v))
                sqlite3_bind_text(q, p, json_string_value(v), -1,
                                  SQLITE_STATIC);
            p++;
        }
        if (sqlite3_step(q) != SQLITE_DONE) {
            st = store_sql_err(s->w.db, "insert row");
            sqlite3_reset(q);
            goto rollback;
        }
        sqlite3_reset(q);
        for (int fi = 0; fi < s->nfields && meta[i].obj; fi++) {
            if (s->fields[fi].type != F_TAGS) continue;
            json_t *arr = json_object_get(meta[i].obj, s->fields[fi].name);
            for (size_t t = 0; arr && t < json_array_size(arr); t++) {
                if ((st = store_prepare(&s->w,
                                        "INSERT OR IGNORE INTO vdx_tags(field, "
                                        "tag, vid) VALUES (?1, ?2, ?3)",
                                        &q)))
                    goto rollback;
                sqlite3_bind_text(q, 1, s->fields[fi].name, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, json_string_value(json_array_get(arr, t)),
                                  -1, SQLITE_STATIC);
                sqlite3_bind_int64(q, 3, vid);
                if (sqlite3_step(q) != SQLITE_DONE) {
                    st = store_sql_err(s->w.db, "insert tag");
                    sqlite3_reset(q);
                    goto rollback;
                }
                sqlite3_reset(q);
            }
        }
        if (s->text_on && texts && texts[i]) {
            if ((st = store_prepare(&s->w,
                                    "INSERT INTO vdx_fts(rowid, text) VALUES "
                                    "(?1, ?2)",
                                    &q)))
                goto rollback;
            sqlite3_bind_int64(q, 1, vid);
            sqlite3_bind_text(q, 2, texts[i], -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE) {
                st = store_sql_err(s->w.db, "insert text");
                sqlite3_reset(q);
                goto rollback;
            }
            sqlite3_reset(q);
        }
    }
    st = commit_apply(s, n, xs, meta, keys, kill, nkill);
    if (st == VDX_OK) st = store_maybe_train(s, 0);
    if (st == VDX_OK) st = maybe_checkpoint(s);
    goto unlock;
rollback: {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", vdx_last_error());
    sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
    vdx_raise(st, "%s", msg);
}
unlock:
    pthread_mutex_unlock(&s->wmu);
out:
    free_metas(meta, n);
    vdx_free(xs);
    vdx_free(kill);
    return st;
}

vdx_status vdx_store_delete(vdx_store *s, int64_t n, const vdx_store_key *keys,
                            const char *where, int64_t *ndeleted) {
    vdx_clear_error();
    if (ndeleted) *ndeleted = 0;
    vdx_status st = require_writable(s, "delete");
    if (st) return st;
    if (n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: delete: n=%lld",
                         (long long)n);
    if ((st = store_check_keys(n, keys))) return st;
    int64_t *kill = NULL, nkill = 0, cap = n;
    int64_t *wv = NULL, nw = 0;
    pthread_mutex_lock(&s->wmu);
    if ((st = store_exec(s->w.db, "BEGIN IMMEDIATE"))) goto unlock;
    if ((st = store_bump_wseq(s->w.db))) goto rollback;
    if (where && (st = store_filter_vids(s, &s->w, where, &wv, &nw)))
        goto rollback;
    cap += nw;
    kill = vdx_malloc_array((size_t)(cap ? cap : 1), sizeof *kill);
    if (!kill) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto rollback;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t vid;
        int f = find_vid(s, &keys[i], &vid);
        if (f < 0) {
            st = VDX_ERR_IO;
            goto rollback;
        }
        if (!f) continue;
        if ((st = delete_vid(s, vid))) goto rollback;
        kill[nkill++] = vid;
    }
    for (int64_t i = 0; i < nw; i++) {
        int dup = 0;
        for (int64_t j = 0; j < nkill && n > 0; j++) dup |= kill[j] == wv[i];
        if (dup) continue;
        if ((st = delete_vid(s, wv[i]))) goto rollback;
        kill[nkill++] = wv[i];
    }
    if (nkill == 0) {
        sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
        goto unlock;
    }
    st = commit_apply(s, 0, NULL, NULL, NULL, kill, nkill);
    if (st == VDX_OK && ndeleted) *ndeleted = nkill;
    goto unlock;
rollback: {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", vdx_last_error());
    sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
    vdx_raise(st, "%s", msg);
}
unlock:
    pthread_mutex_unlock(&s->wmu);
    vdx_free(kill);
    vdx_free(wv);
    return st;
}
