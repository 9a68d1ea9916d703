/*
 * store.c — the life of a store: create, open (checkpoint + replay), close,
 * the writer's lock file, the pool of read connections, checkpoints,
 * compaction, stats and the integrity check.  The design is described in
 * store.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define DB_NAME "store.db"
#define LOCK_NAME "store.lock"

/* ---- small helpers ---------------------------------------------------- */
vdx_status store_sql_err(sqlite3 *db, const char *what) {
    int rc = sqlite3_errcode(db);
    vdx_status st = VDX_ERR_IO;
    int prim = rc & 0xff;
    if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB) st = VDX_ERR_FORMAT;
    else if (prim == SQLITE_NOMEM) st = VDX_ERR_OUT_OF_MEMORY;
    else if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) st = VDX_ERR_BUSY;
    else if (prim == SQLITE_READONLY) st = VDX_ERR_READ_ONLY;
    else if (prim == SQLITE_CONSTRAINT || prim == SQLITE_MISMATCH ||
             prim == SQLITE_RANGE || prim == SQLITE_TOOBIG)
        st = VDX_ERR_INVALID_ARGUMENT;
    return vdx_raise(st, "store: %s: %s (SQLite error %d)", what,
                     sqlite3_errmsg(db), rc);
}

vdx_status store_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        vdx_status st = store_sql_err(db, sql);
        sqlite3_free(msg);
        return st;
    }
    return VDX_OK;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = vdx_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = vdx_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static char *index_path(const vdx_store *s, int64_t gen) {
    char name[64];
    snprintf(name, sizeof name, "index.%lld.faiss", (long long)gen);
    return path_join(s->path, name);
}

static char *cols_path(const vdx_store *s, int64_t gen) {
    char name[64];
    snprintf(name, sizeof name, "cols.%lld.bin", (long long)gen);
    return path_join(s->path, name);
}

/* ---- connections ------------------------------------------------------ */
static void conn_close(store_conn *c) {
    if (!c) return;
    sqlite3_finalize(c->row_by_vid);
    sqlite3_finalize(c->vec_by_vid);
    for (int i = 0; i < STORE_STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        vdx_free(c->cache[i].sql);
    }
    sqlite3_close(c->db);
    memset(c, 0, sizeof *c);
}

static vdx_status conn_open(const vdx_store *s, const char *dbp, int ro,
                            int create, store_conn *c) {
    memset(c, 0, sizeof *c);
    int flags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(dbp, &c->db, flags, NULL) != SQLITE_OK) {
        vdx_status st =
            c->db ? store_sql_err(c->db, "open")
                  : vdx_raise(VDX_ERR_OUT_OF_MEMORY, "store: open: no memory");
        sqlite3_close(c->db);
        c->db = NULL;
        return st;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    /* filters read index pages and rows at random: memory-mapped pages and
     * a 64 MiB cache instead of SQLite's 2 MiB default (1500 row look-ups
     * of a 1% filter over 30k rows: 10 ms -> see bench_store.py) */
    sqlite3_exec(c->db, "PRAGMA mmap_size=4294967296; PRAGMA cache_size=-65536",
                 NULL, NULL, NULL);
    (void)s;
    return VDX_OK;
}

static vdx_status conn_prepare_fixed(store_conn *c) {
    if (sqlite3_prepare_v3(c->db,
                           "SELECT key, meta, text FROM vdx_rows WHERE vid=?1",
                           -1, SQLITE_PREPARE_PERSISTENT, &c->row_by_vid,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(c->db, "SELECT vec FROM vdx_vectors WHERE vid=?1",
                           -1, SQLITE_PREPARE_PERSISTENT, &c->vec_by_vid,
                           NULL) != SQLITE_OK)
        return store_sql_err(c->db, "prepare");
    return VDX_OK;
}

vdx_status store_prepare(store_conn *c, const char *sql, sqlite3_stmt **st) {
    for (int i = 0; i < STORE_STMT_CACHE; i++)
        if (c->cache[i].sql && !strcmp(c->cache[i].sql, sql)) {
            sqlite3_reset(c->cache[i].st);
            sqlite3_clear_bindings(c->cache[i].st);
            *st = c->cache[i].st;
            return VDX_OK;
        }
    sqlite3_stmt *p = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &p,
                           NULL) != SQLITE_OK)
        return store_sql_err(c->db, "prepare");
    char *copy = dupstr(sql);
    if (!copy) {
        sqlite3_finalize(p);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    int j = c->cache_next;
    c->cache_next = (j + 1) % STORE_STMT_CACHE;
    sqlite3_finalize(c->cache[j].st);
    vdx_free(c->cache[j].sql);
    c->cache[j].sql = copy;
    c->cache[j].st = p;
    *st = p;
    return VDX_OK;
}

store_conn *store_conn_get(vdx_store *s) {
    pthread_mutex_lock(&s->pool_mu);
    for (;;) {
        if (s->nidle > 0) {
            store_conn *c = s->idle[--s->nidle];
            pthread_mutex_unlock(&s->pool_mu);
            return c;
        }
        if (s->npool < STORE_POOL_MAX) break;
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    }
    s->npool++;
    pthread_mutex_unlock(&s->pool_mu);
    store_conn *c = vdx_calloc(1, sizeof *c);
    char *dbp = c ? path_join(s->path, DB_NAME) : NULL;
    vdx_status st = dbp ? conn_open(s, dbp, 1, 0, c) : VDX_ERR_OUT_OF_MEMORY;
    vdx_free(dbp);
    if (st == VDX_OK) st = conn_prepare_fixed(c);
    if (st != VDX_OK) {
        if (c) conn_close(c);
        vdx_free(c);
        pthread_mutex_lock(&s->pool_mu);
        s->npool--;
        pthread_cond_signal(&s->pool_cv);
        pthread_mutex_unlock(&s->pool_mu);
        return NULL;
    }
    return c;
}

void store_conn_put(vdx_store *s, store_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&s->pool_mu);
    s->idle[s->nidle++] = c;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

/* ---- options, schema -------------------------------------------------- */
void vdx_store_options_init(vdx_store_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->metric = VDX_STORE_METRIC_COSINE;
    o->text = 1;
    o->synchronous = 2;
}

static const char *type_names[] = {"int", "float", "text", "tags"};

static int valid_ident(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n >= 64) return 0;
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') ||
          k[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Parses the schema JSON into s->fields. */
static vdx_status parse_schema(vdx_store *s, const char *schema) {
    if (!schema || !*schema) return VDX_OK;
    json_error_t err;
    json_t *j = json_loads(schema, 0, &err);
    if (!j)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: schema is not valid JSON (line %d, column "
                         "%d: %s)",
                         err.line, err.column, err.text);
    vdx_status st = VDX_OK;
    if (!json_is_object(j)) {
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "store: schema must be a JSON object {\"field\": "
                       "\"int\"|\"float\"|\"text\"|\"tags\"}");
        goto done;
    }
    size_t n = json_object_size(j);
    if (n > 256) {
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "store: schema has %zu fields, at most 256", n);
        goto done;
    }
    s->fields = vdx_calloc(n ? n : 1, sizeof *s->fields);
    if (!s->fields) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (!valid_ident(key)) {
            st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                           "store: schema field name '%.80s' must be 1-63 "
                           "letters, digits or '_', not starting with a digit",
                           key);
            goto done;
        }
        int t = -1;
        if (json_is_string(v))
            for (int i = 0; i < 4; i++)
                if (!strcmp(json_string_value(v), type_names[i])) t = i;
        if (t < 0) {
            char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                           "store: schema field '%s' has type %.80s; expected "
                           "\"int\", \"float\", \"text\" or \"tags\"",
                           key, txt ? txt : "?");
            free(txt);
            goto done;
        }
        snprintf(s->fields[s->nfields].name, 64, "%s", key);
        s->fields[s->nfields].type = t;
        s->nfields++;
    }
done:
    json_decref(j);
    return st;
}

static char *schema_json(const vdx_store *s) {
    json_t *o = json_object();
    for (int i = 0; i < s->nfields; i++)
        json_object_set_new(o, s->fields[i].name,
                            json_string(type_names[s->fields[i].type]));
    char *r = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return r;
}

static const char *metric_name(int m) {
    return m == VDX_STORE_METRIC_L2   ? "l2"
           : m == VDX_STORE_METRIC_IP ? "ip"
                                      : "cosine";
}

static vdx_status make_info(vdx_store *s) {
    json_t *o = json_object();
    char *sch = schema_json(s);
    json_t *schema = sch ? json_loads(sch, 0, NULL) : NULL;
    free(sch);
    json_object_set_new(o, "format_version",
                        json_integer(VDX_STORE_FORMAT_VERSION));
    json_object_set_new(o, "path", json_string(s->path));
    json_object_set_new(o, "dim", json_integer(s->dim));
    json_object_set_new(o, "metric", json_string(metric_name(s->metric)));
    json_object_set_new(o, "index", json_string(s->factory));
    json_object_set_new(o, "index_type",
                        json_string(vdx_index_type_name(s->index)));
    json_object_set_new(o, "schema", schema ? schema : json_object());
    json_object_set_new(o, "text", json_boolean(s->text_on));
    json_object_set_new(o, "read_only", json_boolean(s->read_only));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!txt) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "store: info: no memory");
    free(s->info_json);
    s->info_json = txt;
    return VDX_OK;
}

const char *vdx_store_info(const vdx_store *s) {
    return s && s->info_json ? s->info_json : "{}";
}

vdx_status store_new_index(const vdx_store *s, vdx_index **out) {
    vdx_status st = vdx_index_factory(s->dim, s->factory, s->imetric, out);
    if (st)
        return vdx_raise(st, "store: index '%s': %s", s->factory,
                         vdx_last_error());
    /* FAISS's efConstruction 40 builds graphs whose recall@10 stalls at
     * 0.93-0.98 on clustered 384-d embeddings (bench_store.py, 100k rows,
     * any efSearch); 100 is what chromadb builds with.  The file records
     * it, so reopened stores keep it. */
    if (vdx_index_is_hnsw(*out) && vdx_index_hnsw_ef_construction(*out) == 40)
        vdx_index_hnsw_set_ef_construction(*out, STORE_HNSW_EF_CONSTRUCTION);
    return VDX_OK;
}

int store_live_set(vdx_store *s, int64_t vid, int on) {
    int64_t byte = vid >> 3;
    if (byte >= s->live_cap) {
        if (!on) return 0;
        int64_t cap = s->live_cap ? s->live_cap : 1024;
        while (cap <= byte) cap *= 2;
        uint8_t *p = vdx_realloc_array(s->live, (size_t)cap, 1);
        if (!p) return -1;
        memset(p + s->live_cap, 0, (size_t)(cap - s->live_cap));
        s->live = p;
        s->live_cap = cap;
    }
    uint8_t bit = (uint8_t)(1u << (vid & 7));
    int was = (s->live[byte] & bit) != 0;
    if (on && !was) {
        s->live[byte] |= bit;
        s->nlive++;
    } else if (!on && was) {
        s->live[byte] &= (uint8_t)~bit;
        s->nlive--;
    }
    return 0;
}

vdx_status store_read_vectors(vdx_store *s, store_conn *c, int64_t v0,
                              int64_t v1, float *x) {
    sqlite3_stmt *st;
    vdx_status r = store_prepare(
        c, "SELECT vid, vec FROM vdx_vectors WHERE vid>=?1 AND vid<?2 "
           "ORDER BY vid", &st);
    if (r) return r;
    sqlite3_bind_int64(st, 1, v0);
    sqlite3_bind_int64(st, 2, v1);
    int64_t want = v0;
    size_t bytes = (size_t)s->dim * sizeof(float);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t vid = sqlite3_column_int64(st, 0);
        const void *b = sqlite3_column_blob(st, 1);
        if (vid != want || (size_t)sqlite3_column_bytes(st, 1) != bytes || !b) {
            sqlite3_reset(st);
            return vdx_raise(VDX_ERR_FORMAT,
                             "store: %s/" DB_NAME " is damaged: vector %lld "
                             "is missing or has %d bytes, expected %zu "
                             "(restore the database from a backup)",
                             s->path, (long long)want,
                             vid == want ? sqlite3_column_bytes(st, 1) : 0,
                             bytes);
        }
        memcpy(x + (size_t)(vid - v0) * (size_t)s->dim, b, bytes);
        want++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return store_sql_err(c->db, "read vectors");
    if (want != v1)
        return vdx_raise(VDX_ERR_FORMAT,
                         "store: %s/" DB_NAME " is damaged: vectors %lld.. "
                         "%lld are missing (restore the database from a "
                         "backup)",
                         s->path, (long long)want, (long long)v1 - 1);
    return VDX_OK;
}

/* ---- meta table ------------------------------------------------------- */
static vdx_status meta_set_text(sqlite3 *db, const char *k, const char *v) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO vdx_meta(key, value) "
                           "VALUES (?1, ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_err(db, "meta");
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? VDX_OK : store_sql_err(db, "meta");
}

static vdx_status meta_set_int(sqlite3 *db, const char *k, int64_t v) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO vdx_meta(key, value) "
                           "VALUES (?1, ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_err(db, "meta");
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? VDX_OK : store_sql_err(db, "meta");
}

vdx_status store_bump_wseq(sqlite3 *db) {
    return store_exec(db, "INSERT INTO vdx_meta(key, value) VALUES ('wseq', 1) "
                          "ON CONFLICT(key) DO UPDATE SET value = value + 1");
}

/* The write sequence (0 when no write has set it yet), or -1 on error. */
static int64_t meta_wseq(sqlite3 *db) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM vdx_meta WHERE key='wseq'",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                : rc == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return v;
}

/* Writes the snapshot of the live bitmap and columns (columns.c) when the
 * database moved since the last one; a failure only costs the next open
 * its scan (the stale file is removed; its stamp would not match anyway). */
static void save_snapshot(vdx_store *s) {
    int64_t stamp = meta_wseq(s->w.db);
    if (stamp < 0 || stamp == s->snap_stamp) return;
    char *cp = cols_path(s, s->generation);
    if (!cp) return;
    if (store_cols_save(s, cp, stamp) == 0) s->snap_stamp = stamp;
    else unlink(cp);
    vdx_free(cp);
}

/* The text (malloc'd, vdx_free) or integer of key k; VDX_ERR_FORMAT when
 * absent. */
static vdx_status meta_get(vdx_store *s, const char *k, char **text,
                           int64_t *num) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->w.db, "SELECT value FROM vdx_meta WHERE key=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_err(s->w.db, "read " DB_NAME);
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    vdx_status r = VDX_OK;
    if (rc == SQLITE_ROW) {
        if (num) *num = sqlite3_column_int64(st, 0);
        if (text) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            *text = dupstr(t ? t : "");
            if (!*text) r = VDX_ERR_OUT_OF_MEMORY;
        }
    } else if (rc == SQLITE_DONE) {
        r = vdx_raise(VDX_ERR_FORMAT,
                      "store: %s/" DB_NAME " is damaged: its settings lack "
                      "'%s'",
                      s->path, k);
    } else {
        r = store_sql_err(s->w.db, "read " DB_NAME);
    }
    sqlite3_finalize(st);
    return r;
}

/* ---- lock file -------------------------------------------------------- */
static vdx_status take_lock(vdx_store *s, int timeout_ms) {
    char *lp = path_join(s->path, LOCK_NAME);
    if (!lp) return VDX_ERR_OUT_OF_MEMORY;
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        vdx_status st = vdx_raise(VDX_ERR_IO, "store: cannot open %s: %s", lp,
                                  strerror(errno));
        vdx_free(lp);
        return st;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double ms = (double)(t.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
        if (errno != EWOULDBLOCK || ms >= timeout_ms) {
            char pid[32] = "";
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = 0;
            pid[strcspn(pid, " \n")] = 0;
            close(fd);
            vdx_status st = vdx_raise(
                VDX_ERR_BUSY,
                "store: %s is open for writing by another process (pid "
                "%s%s); open it read-only, or wait (busy_timeout_ms)",
                s->path, pid[0] ? pid : "?",
                timeout_ms > 0 ? ", still after the timeout" : "");
            vdx_free(lp);
            return st;
        }
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    /* The pid, padded to a fixed width, overwrites the previous one in
     * place: no ftruncate, which costs 0.3-6 ms on ext4 (a journal
     * transaction; the largest part of a 20k-row store's open).  A lock
     * file of an older vecdex ("<pid>\n", shorter) is simply extended. */
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%-20ld\n", (long)getpid());
    if (pwrite(fd, pid, (size_t)len, 0) < 0) {
        /* the pid is only a hint for messages */
    }
    vdx_free(lp);
    s->lock_fd = fd;
    return VDX_OK;
}

/* ---- freeing ---------------------------------------------------------- */
static void store_free(vdx_store *s) {
    if (!s) return;
    for (int i = 0; i < s->nidle; i++) {
        conn_close(s->idle[i]);
        vdx_free(s->idle[i]);
    }
    conn_close(&s->w);
    vdx_index_free(s->index);
    vdx_free(s->live);
    store_cols_free(s);
    vdx_free(s->fields);
    vdx_free(s->factory);
    free(s->info_json);
    if (s->lock_fd >= 0) close(s->lock_fd);
    vdx_free(s->path);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    pthread_rwlock_destroy(&s->rw);
    pthread_mutex_destroy(&s->lat_mu);
    store_kw_free(s);
    pthread_mutex_destroy(&s->kw_mu);
    vdx_free(s);
}

static vdx_store *store_alloc(const char *path) {
    vdx_store *s = vdx_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->lock_fd = -1;
    s->snap_stamp = -1;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    /* writers first: with readers preferred (glibc's default), searches
     * overlapping without pause would starve the writer */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->lat_mu, NULL);
    pthread_mutex_init(&s->kw_mu, NULL);
    s->path = dupstr(path);
    if (!s->path) {
        store_free(s);
        return NULL;
    }
    return s;
}

static vdx_status set_pragmas(vdx_store *s, const vdx_store_options *o) {
    int sync = o ? o->synchronous : 2;
    if (sync < 0 || sync > 3)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: synchronous=%d, expected 0 (off), 1 "
                         "(normal), 2 (full) or 3 (extra)",
                         sync);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%d", sync);
    vdx_status st = store_exec(s->w.db, sql);
    if (!st) st = store_exec(s->w.db, "PRAGMA foreign_keys=OFF");
    return st;
}

static void apply_tunables(vdx_store *s, const vdx_store_options *o) {
    s->checkpoint_rows = o ? o->checkpoint_rows : 0;
    s->exact_threshold = o ? o->exact_threshold : 0;
}

/* ---- create ----------------------------------------------------------- */
vdx_status vdx_store_create(const char *path, int64_t dim,
                            const vdx_store_options *opts, vdx_store **out) {
    vdx_clear_error();
    if (!path || !out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: path or out is NULL");
    *out = NULL;
    if (dim < 1 || dim > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: dim=%lld, expected 1..%lld", (long long)dim,
                         (long long)VDX_MAX_DIM);
    vdx_store_options def;
    vdx_store_options_init(&def);
    const vdx_store_options *o = opts ? opts : &def;
    if (o->metric < 0 || o->metric > 2)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: metric=%d, expected VDX_STORE_METRIC_IP (0), "
                         "_L2 (1) or _COSINE (2)",
                         o->metric);
    if (o->read_only)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: cannot create a store read-only");
    if (o->train_size < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "store: train_size=%lld is negative",
                         (long long)o->train_size);
    vdx_store *s = store_alloc(path);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st;
    char *dbp = NULL;
    s->dim = dim;
    s->metric = o->metric;
    s->imetric = o->metric == VDX_STORE_METRIC_L2 ? VDX_METRIC_L2
                                                  : VDX_METRIC_INNER_PRODUCT;
    s->factory = dupstr(o->index ? o->index : "HNSW32");
    s->text_on = o->text != 0;
    s->train_size = o->train_size;
    apply_tunables(s, o);
    if (!s->factory) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    if ((st = parse_schema(s, o->schema))) goto fail;
    /* the factory string is checked before anything touches the disk */
    if ((st = store_new_index(s, &s->index))) goto fail;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        st = vdx_raise(VDX_ERR_IO, "store: cannot create folder %s: %s", path,
                       strerror(errno));
        goto fail;
    }
    dbp = path_join(path, DB_NAME);
    if (!dbp) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    if (access(dbp, F_OK) == 0) {
        st = vdx_raise(VDX_ERR_IO,
                       "store: %s already holds a store (%s); open it, or "
                       "remove the folder first",
                       path, dbp);
        goto fail;
    }
    if ((st = take_lock(s, 0))) goto fail;
    if ((st = conn_open(s, dbp, 0, 1, &s->w))) goto fail;
    {
        /* pages of 64 KiB: a vector row is d * 4 bytes (1.5 KiB at d=384),
         * and small pages spend more on page headers, b-tree splits and
         * WAL frames than on the vectors (raw SQLite, 384-d rows: 8.6 us
         * per row at 4 KiB, 3.6 at 64 KiB).  Set before the first table
         * and before WAL, which fix it. */
        if ((st = store_exec(s->w.db, "PRAGMA page_size=65536"))) goto fail;
    }
    if ((st = store_exec(s->w.db, "PRAGMA journal_mode=WAL"))) goto fail;
    if ((st = set_pragmas(s, o))) goto fail;
    if ((st = store_exec(s->w.db, "BEGIN IMMEDIATE"))) goto fail;
    {
        /* the schema's columns: names checked by valid_ident, so they can
         * be part of the statement text */
        char sql[256 * 96 + 512];
        size_t len = (size_t)snprintf(
            sql, sizeof sql,
            "CREATE TABLE vdx_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
            "CREATE TABLE vdx_vectors(vid INTEGER PRIMARY KEY, vec BLOB NOT "
            "NULL);"
            "CREATE TABLE vdx_tags(field TEXT NOT NULL, tag TEXT NOT NULL, "
            "vid INTEGER NOT NULL, PRIMARY KEY(field, tag, vid)) WITHOUT "
            "ROWID;"
            "CREATE INDEX vdx_tags_vid ON vdx_tags(vid);"
            "CREATE TABLE vdx_rows(vid INTEGER PRIMARY KEY, key NOT NULL "
            "UNIQUE, meta TEXT, text TEXT");
        static const char *sqlt[] = {"INTEGER", "REAL", "TEXT", "TEXT"};
        for (int i = 0; i < s->nfields; i++)
            if (s->fields[i].type != F_TAGS)
                len += (size_t)snprintf(sql + len, sizeof sql - len,
                                        ", \"f_%s\" %s", s->fields[i].name,
                                        sqlt[s->fields[i].type]);
        len += (size_t)snprintf(sql + len, sizeof sql - len, ");");
        for (int i = 0; i < s->nfields; i++)
            if (s->fields[i].type != F_TAGS)
                len += (size_t)snprintf(
                    sql + len, sizeof sql - len,
                    "CREATE INDEX \"vdx_rows_f_%s\" ON vdx_rows(\"f_%s\");",
                    s->fields[i].name, s->fields[i].name);
        if (s->text_on)
            snprintf(sql + len, sizeof sql - len,
                     "CREATE VIRTUAL TABLE vdx_fts USING fts5(text, "
                     "tokenize='porter unicode61');");
        if ((st = store_exec(s->w.db, sql))) goto rollback;
    }
    char *sch = schema_json(s);
    if (!sch) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto rollback;
    }
    if ((st = meta_set_int(s->w.db, "format_version",
                           VDX_STORE_FORMAT_VERSION)) ||
        (st = meta_set_int(s->w.db, "dim", dim)) ||
        (st = meta_set_int(s->w.db, "metric", s->metric)) ||
        (st = meta_set_text(s->w.db, "index", s->factory)) ||
        (st = meta_set_text(s->w.db, "schema", sch)) ||
        (st = meta_set_int(s->w.db, "text", s->text_on)) ||
        (st = meta_set_int(s->w.db, "train_size", s->train_size)) ||
        (st = meta_set_int(s->w.db, "generation", 0)) ||
        (st = meta_set_int(s->w.db, "checkpoint", 0))) {
        free(sch);
        goto rollback;
    }
    free(sch);
    if ((st = store_exec(s->w.db, "COMMIT"))) goto rollback;
    if ((st = conn_prepare_fixed(&s->w))) goto fail;
    s->needs_training = !vdx_index_is_trained(s->index);
    if (s->needs_training) {
        vdx_index_free(s->index);
        s->index = NULL;
        if ((st = vdx_index_flat_new(dim, s->imetric, &s->index))) goto fail;
    }
    s->trained = !s->needs_training;
    if ((st = store_cols_init(s))) goto fail;
    if ((st = make_info(s))) goto fail;
    vdx_free(dbp);
    *out = s;
    return VDX_OK;
rollback:
    sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
fail:
    vdx_free(dbp);
    store_free(s);
    return st;
}

/* ---- open ------------------------------------------------------------- */
/* Removes index files of other generations and stray temporaries. */
static void remove_stale_files(vdx_store *s) {
    char *keep = index_path(s, s->generation);
    if (!keep) return;
    for (int64_t g = s->generation - 8; g < s->generation; g++) {
        if (g < 0) continue;
        char *p = index_path(s, g);
        if (p) unlink(p);
        vdx_free(p);
        p = cols_path(s, g);
        if (p) unlink(p);
        vdx_free(p);
    }
    vdx_free(keep);
}

/* Reads the checkpoint and adds the vectors written after it. */
static vdx_status load_index(vdx_store *s, int64_t nvec) {
    char *ip = index_path(s, s->generation);
    if (!ip) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    vdx_index *fresh = NULL;
    if ((st = store_new_index(s, &fresh))) goto done;
    s->needs_training = !vdx_index_is_trained(fresh);
    if (access(ip, F_OK) == 0) {
        vdx_index *ix = NULL;
        /* mapped (MAP_PRIVATE): open costs no read of the vectors and the
         * graph (0.13 s for 100k x 384 HNSW32 read, ~1 ms mapped); the
         * first add copies what it changes.  Safe against the writer: a
         * checkpoint replaces the file by rename, never in place. */
        st = vdx_read_index(ip, VDX_IO_FLAG_MMAP | VDX_IO_FLAG_MMAP_IFC, &ix);
        if (st) {
            st = vdx_raise(VDX_ERR_FORMAT,
                           "store: the index file %s is damaged (%s); it is "
                           "derived data: delete it and open the store again "
                           "to rebuild it from %s/" DB_NAME,
                           ip, vdx_last_error(), s->path);
            goto done;
        }
        const char *tn = vdx_index_type_name(ix);
        int is_factory = !strcmp(tn, vdx_index_type_name(fresh));
        int is_buffer = s->needs_training && !strcmp(tn, "IndexFlat");
        if (vdx_index_d(ix) != s->dim || vdx_index_metric(ix) != s->imetric ||
            (!is_factory && !is_buffer) || vdx_index_ntotal(ix) > nvec ||
            !vdx_index_is_trained(ix)) {
            st = vdx_raise(VDX_ERR_FORMAT,
                           "store: the index file %s does not belong to this "
                           "store (%s d=%lld, %lld vectors; the store has %s "
                           "d=%lld, %lld vectors); delete it and open the "
                           "store again to rebuild it",
                           ip, tn, (long long)vdx_index_d(ix),
                           (long long)vdx_index_ntotal(ix),
                           vdx_index_type_name(fresh), (long long)s->dim,
                           (long long)nvec);
            vdx_index_free(ix);
            goto done;
        }
        s->index = ix;
        s->trained = is_factory;
        s->ck_ntotal = vdx_index_ntotal(ix);
        struct stat sb;
        if (stat(ip, &sb) == 0) s->index_file_bytes = (int64_t)sb.st_size;
    } else if (s->needs_training) {
        if ((st = vdx_index_flat_new(s->dim, s->imetric, &s->index))) goto done;
        s->trained = 0;
    } else {
        s->index = fresh;
        fresh = NULL;
        s->trained = 1;
    }
    /* replay */
    int64_t have = vdx_index_ntotal(s->index);
    const int64_t chunk = 4096;
    float *buf = vdx_malloc_array((size_t)chunk * (size_t)s->dim, sizeof(float));
    if (!buf) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t v = have; v < nvec && !st; v += chunk) {
        int64_t e = v + chunk < nvec ? v + chunk : nvec;
        st = store_read_vectors(s, &s->w, v, e, buf);
        if (!st) st = vdx_index_add(s->index, e - v, buf);
    }
    vdx_free(buf);
    if (st) goto done;
    s->ntotal = vdx_index_ntotal(s->index);
    if (s->ntotal != nvec)
        st = vdx_raise(VDX_ERR_INTERNAL,
                       "store: the index holds %lld vectors after replay, the "
                       "database %lld",
                       (long long)s->ntotal, (long long)nvec);
done:
    vdx_index_free(fresh);
    vdx_free(ip);
    return st;
}

static vdx_status load_live(vdx_store *s) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->w.db, "SELECT vid FROM vdx_rows", -1, &st,
                           NULL) != SQLITE_OK)
        return store_sql_err(s->w.db, "read rows");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t vid = sqlite3_column_int64(st, 0);
        if (vid < 0 || vid >= s->ntotal) {
            sqlite3_finalize(st);
            return vdx_raise(VDX_ERR_FORMAT,
                             "store: %s/" DB_NAME " is damaged: a row refers "
                             "to vector %lld of %lld (restore the database "
                             "from a backup)",
                             s->path, (long long)vid, (long long)s->ntotal);
        }
        if (store_live_set(s, vid, 1)) {
            sqlite3_finalize(st);
            return VDX_ERR_OUT_OF_MEMORY;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? VDX_OK : store_sql_err(s->w.db, "read rows");
}

vdx_status vdx_store_open(const char *path, const vdx_store_options *opts,
                          vdx_store **out) {
    vdx_clear_error();
    if (!path || !out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: path or out is NULL");
    *out = NULL;
    vdx_store_options def;
    vdx_store_options_init(&def);
    const vdx_store_options *o = opts ? opts : &def;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return vdx_raise(VDX_ERR_IO, "store: %s is not a store (%s)", path,
                         stat(path, &sb) != 0 ? strerror(errno)
                                              : "not a folder");
    vdx_store *s = store_alloc(path);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st;
    char *dbp = path_join(path, DB_NAME), *txt = NULL;
    if (!dbp) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    if (access(dbp, F_OK) != 0) {
        st = vdx_raise(VDX_ERR_IO,
                       "store: %s is not a store (it has no " DB_NAME ")", path);
        goto fail;
    }
    s->read_only = o->read_only != 0;
    apply_tunables(s, o);
    if (!s->read_only && (st = take_lock(s, o->busy_timeout_ms))) goto fail;
    if ((st = conn_open(s, dbp, s->read_only, 0, &s->w))) goto fail;
    /* a database that is not SQLite fails at its first read */
    int64_t ver = 0;
    {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(s->w.db,
                               "SELECT value FROM vdx_meta WHERE "
                               "key='format_version'",
                               -1, &q, NULL) != SQLITE_OK) {
            int prim = sqlite3_errcode(s->w.db) & 0xff;
            if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
                st = vdx_raise(VDX_ERR_FORMAT,
                               "store: %s is damaged: %s (restore it from a "
                               "backup; the index file alone cannot rebuild "
                               "the rows)",
                               dbp, sqlite3_errmsg(s->w.db));
            else
                st = vdx_raise(VDX_ERR_IO,
                               "store: %s is not a store (%s has no vecdex "
                               "tables: %s)",
                               path, dbp, sqlite3_errmsg(s->w.db));
            goto fail;
        }
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) ver = sqlite3_column_int64(q, 0);
        else if (rc != SQLITE_DONE) {
            st = store_sql_err(s->w.db, "read " DB_NAME);
            sqlite3_finalize(q);
            goto fail;
        }
        sqlite3_finalize(q);
    }
    if (!s->read_only && (st = set_pragmas(s, o))) goto fail;
    if (ver > VDX_STORE_FORMAT_VERSION) {
        st = vdx_raise(VDX_ERR_FORMAT,
                       "store: %s has format version %lld, newer than this "
                       "vecdex (%s) reads (%d): upgrade vecdex",
                       path, (long long)ver, vdx_version(),
                       VDX_STORE_FORMAT_VERSION);
        goto fail;
    }
    if (ver < 1) {
        st = vdx_raise(VDX_ERR_FORMAT,
                       "store: %s/" DB_NAME " is damaged: format version "
                       "%lld",
                       path, (long long)ver);
        goto fail;
    }
    int64_t metric = 0, text = 0;
    if ((st = meta_get(s, "dim", NULL, &s->dim)) ||
        (st = meta_get(s, "metric", NULL, &metric)) ||
        (st = meta_get(s, "index", &s->factory, NULL)) ||
        (st = meta_get(s, "schema", &txt, NULL)) ||
        (st = meta_get(s, "text", NULL, &text)) ||
        (st = meta_get(s, "train_size", NULL, &s->train_size)) ||
        (st = meta_get(s, "generation", NULL, &s->generation)))
        goto fail;
    if (s->dim < 1 || s->dim > VDX_MAX_DIM || metric < 0 || metric > 2) {
        st = vdx_raise(VDX_ERR_FORMAT,
                       "store: %s/" DB_NAME " is damaged: dim=%lld metric=%lld",
                       path, (long long)s->dim, (long long)metric);
        goto fail;
    }
    s->metric = (int)metric;
    s->imetric = s->metric == VDX_STORE_METRIC_L2 ? VDX_METRIC_L2
                                                  : VDX_METRIC_INNER_PRODUCT;
    s->text_on = text != 0;
    if ((st = parse_schema(s, txt))) {
        st = vdx_raise(VDX_ERR_FORMAT, "store: %s/" DB_NAME " is damaged: %s",
                       path, vdx_last_error());
        goto fail;
    }
    if ((st = conn_prepare_fixed(&s->w))) goto fail;
    int64_t nvec = 0;
    {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(s->w.db,
                               "SELECT coalesce(max(vid) + 1, 0) FROM "
                               "vdx_vectors",
                               -1, &q, NULL) != SQLITE_OK) {
            st = store_sql_err(s->w.db, "read vectors");
            goto fail;
        }
        if (sqlite3_step(q) == SQLITE_ROW) nvec = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    if ((st = load_index(s, nvec))) goto fail;
    /* the live bitmap and columns from the checkpoint's snapshot when it
     * matches the database, else by a scan of the rows */
    int64_t stamp = meta_wseq(s->w.db);
    char *cp = stamp >= 0 ? cols_path(s, s->generation) : NULL;
    if (cp && store_cols_restore(s, cp, stamp)) {
        s->snap_stamp = stamp;
    } else {
        s->snap_stamp = -1;
        if ((st = load_live(s)) || (st = store_cols_load(s, s->w.db))) {
            vdx_free(cp);
            goto fail;
        }
    }
    vdx_free(cp);
    if (!s->read_only) {
        remove_stale_files(s);
        if ((st = store_maybe_train(s, 0))) goto fail;
    }
    if ((st = make_info(s))) goto fail;
    vdx_free(dbp);
    vdx_free(txt);
    *out = s;
    return VDX_OK;
fail:
    vdx_free(dbp);
    vdx_free(txt);
    store_free(s);
    return st;
}

/* ---- checkpoint, close ------------------------------------------------ */
/* Writes the index file of the current generation (the caller is the
 * writer: holds wmu, or is alone). */
vdx_status store_checkpoint_locked(vdx_store *s) {
    if (s->read_only)
        return vdx_raise(VDX_ERR_READ_ONLY, "store: %s is open read-only",
                         s->path);
    if (s->broken)
        return vdx_raise(VDX_ERR_INTERNAL,
                         "store: the in-memory index missed a write; reopen "
                         "the store (nothing is lost)");
    char *ip = index_path(s, s->generation);
    if (!ip) return VDX_ERR_OUT_OF_MEMORY;
    /* the writer is the only mutator: reading the index here races only
     * with searches, which do not modify it */
    vdx_status st = vdx_write_index(s->index, ip);
    if (st == VDX_OK) {
        int fd = open(ip, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            struct stat sb;
            if (fstat(fd, &sb) == 0) s->index_file_bytes = (int64_t)sb.st_size;
            close(fd);
        }
        int dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        s->ck_ntotal = s->ntotal;
        /* the database records where the checkpoint stands (for stats and
         * the check); open trusts the file's own count */
        st = meta_set_int(s->w.db, "checkpoint", s->ck_ntotal);
        if (!st) save_snapshot(s);
    }
    vdx_free(ip);
    return st;
}

vdx_status vdx_store_checkpoint(vdx_store *s) {
    vdx_clear_error();
    if (!s) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store is NULL");
    pthread_mutex_lock(&s->wmu);
    vdx_status st = store_checkpoint_locked(s);
    pthread_mutex_unlock(&s->wmu);
    return st;
}

vdx_status vdx_store_close(vdx_store *s) {
    vdx_clear_error();
    if (!s) return VDX_OK;
    vdx_status st = VDX_OK;
    if (!s->read_only && !s->broken && s->ck_ntotal != s->ntotal)
        st = store_checkpoint_locked(s);
    else if (!s->read_only && !s->broken)
        save_snapshot(s); /* e.g. deletes since the last checkpoint */
    if (!s->read_only) sqlite3_exec(s->w.db, "PRAGMA optimize", NULL, NULL, NULL);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", vdx_last_error());
    store_free(s);
    if (st) vdx_raise(st, "%s", msg);
    return st;
}

/* ---- compact ---------------------------------------------------------- */
vdx_status vdx_store_compact(vdx_store *s) {
    vdx_clear_error();
    if (!s) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store is NULL");
    if (s->read_only)
        return vdx_raise(VDX_ERR_READ_ONLY,
                         "store: compact: %s is open read-only", s->path);
    pthread_mutex_lock(&s->wmu);
    vdx_status st;
    sqlite3 *db = s->w.db;
    vdx_index *fresh = NULL;
    float *x = NULL;
    int64_t n = 0;
    if ((st = store_exec(db, "BEGIN IMMEDIATE"))) goto out;
    /* live vids in order get 0..n-1: an order-preserving renumbering, done
     * through negative values so no step collides with a live key */
    static const char *renumber =
        "CREATE TEMP TABLE vdx_remap(old INTEGER PRIMARY KEY, new INTEGER);"
        "INSERT INTO vdx_remap SELECT vid, row_number() OVER (ORDER BY vid) "
        "- 1 FROM vdx_rows;"
        "DELETE FROM vdx_vectors WHERE vid NOT IN (SELECT old FROM vdx_remap);"
        "UPDATE vdx_vectors SET vid = -1 - (SELECT new FROM vdx_remap WHERE "
        "old = vdx_vectors.vid);"
        "UPDATE vdx_vectors SET vid = -1 - vid;"
        "UPDATE vdx_rows SET vid = -1 - (SELECT new FROM vdx_remap WHERE "
        "old = vdx_rows.vid);"
        "UPDATE vdx_rows SET vid = -1 - vid;"
        "UPDATE vdx_tags SET vid = (SELECT new FROM vdx_remap WHERE old = "
        "vdx_tags.vid);";
    if ((st = store_exec(db, renumber))) goto rollback;
    if (s->text_on &&
        (st = store_exec(db, "DELETE FROM vdx_fts;"
                             "INSERT INTO vdx_fts(rowid, text) SELECT vid, "
                             "text FROM vdx_rows WHERE text IS NOT NULL;")))
        goto rollback;
    if ((st = store_exec(db, "DROP TABLE vdx_remap"))) goto rollback;
    if ((st = meta_set_int(db, "generation", s->generation + 1)) ||
        (st = meta_set_int(db, "checkpoint", 0)) ||
        (st = store_bump_wseq(db)))
        goto rollback;
    {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM vdx_vectors", -1, &q,
                               NULL) != SQLITE_OK) {
            st = store_sql_err(db, "compact");
            goto rollback;
        }
        sqlite3_step(q);
        n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    /* the new index, built before the commit so that searches wait only
     * for the swap */
    x = vdx_malloc_array((size_t)(n ? n : 1) * (size_t)s->dim, sizeof(float));
    if (!x) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto rollback;
    }
    if ((st = store_read_vectors(s, &s->w, 0, n, x))) goto rollback;
    if ((st = store_new_index(s, &fresh))) goto rollback;
    int trained = 1;
    if (!vdx_index_is_trained(fresh)) {
        int64_t need = s->train_size;
        if (need <= 0) {
            need = 1000;
            if (vdx_index_is_ivf(fresh) && 40 * vdx_index_ivf_nlist(fresh) > need)
                need = 40 * vdx_index_ivf_nlist(fresh);
        }
        if (n >= need && vdx_index_train(fresh, n, x) == VDX_OK) {
            trained = 1;
        } else {
            vdx_index_free(fresh);
            fresh = NULL;
            trained = 0;
            if ((st = vdx_index_flat_new(s->dim, s->imetric, &fresh)))
                goto rollback;
        }
    }
    if ((st = vdx_index_add(fresh, n, x))) goto rollback;
    pthread_rwlock_wrlock(&s->rw);
    if ((st = store_exec(db, "COMMIT"))) {
        pthread_rwlock_unlock(&s->rw);
        goto rollback;
    }
    vdx_index *old = s->index;
    s->index = fresh;
    fresh = NULL;
    s->trained = trained;
    s->ntotal = n;
    s->generation++;
    s->fts_epoch++;
    s->ck_ntotal = 0;
    memset(s->live, 0, (size_t)s->live_cap);
    s->nlive = 0;
    for (int64_t v = 0; v < n; v++) store_live_set(s, v, 1);
    /* the vids were renumbered; on failure filters use SQLite */
    if (store_cols_load(s, db)) store_cols_free(s);
    pthread_rwlock_unlock(&s->rw);
    vdx_index_free(old);
    st = store_checkpoint_locked(s);
    if (!st) remove_stale_files(s);
    goto out;
rollback:
    {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vdx_last_error());
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_exec(db, "DROP TABLE IF EXISTS temp.vdx_remap", NULL, NULL,
                     NULL);
        vdx_raise(st, "%s", msg);
    }
out:
    vdx_index_free(fresh);
    vdx_free(x);
    pthread_mutex_unlock(&s->wmu);
    return st;
}

/* ---- stats, latency --------------------------------------------------- */
void store_record_latency(vdx_store *s, double ms) {
    pthread_mutex_lock(&s->lat_mu);
    s->lat_ms[s->nlat % STORE_LAT_N] = (float)ms;
    s->nlat++;
    pthread_mutex_unlock(&s->lat_mu);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int64_t file_size(const vdx_store *s, const char *name) {
    char *p = path_join(s->path, name);
    struct stat sb;
    int64_t r = p && stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
    vdx_free(p);
    return r;
}

vdx_status vdx_store_stats_get(vdx_store *s, vdx_store_stats *o) {
    vdx_clear_error();
    if (!s || !o)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store: stats: NULL argument");
    memset(o, 0, sizeof *o);
    pthread_rwlock_rdlock(&s->rw);
    o->rows = s->nlive;
    o->vectors = s->ntotal;
    o->dead = s->ntotal - s->nlive;
    o->checkpointed = s->ck_ntotal;
    o->trained = s->trained;
    int64_t ifb = s->index_file_bytes, ck = s->ck_ntotal, nt = s->ntotal;
    int64_t colb = store_cols_bytes(s);
    pthread_mutex_lock(&s->kw_mu);
    colb += s->kw_entries * (int64_t)(sizeof(int64_t) + sizeof(double));
    pthread_mutex_unlock(&s->kw_mu);
    pthread_rwlock_unlock(&s->rw);
    char name[64];
    snprintf(name, sizeof name, "index.%lld.faiss", (long long)s->generation);
    o->bytes_disk = file_size(s, DB_NAME) + file_size(s, DB_NAME "-wal") +
                    file_size(s, name);
    /* the serialised index is close to its memory; scaled to the vectors
     * added since it was written (raw vectors when there is no file yet) */
    double per = ck > 0 ? (double)ifb / (double)ck
                        : (double)s->dim * sizeof(float) + 8;
    o->bytes_memory = (int64_t)(per * (double)nt) + s->live_cap + colb +
                      (int64_t)sqlite3_memory_used();
    pthread_mutex_lock(&s->lat_mu);
    int64_t n = s->nlat < STORE_LAT_N ? s->nlat : STORE_LAT_N;
    float tmp[STORE_LAT_N];
    memcpy(tmp, s->lat_ms, (size_t)n * sizeof(float));
    o->searches = s->nlat;
    pthread_mutex_unlock(&s->lat_mu);
    if (n > 0) {
        qsort(tmp, (size_t)n, sizeof(float), cmp_float);
        o->p50_ms = tmp[(n - 1) * 50 / 100];
        o->p95_ms = tmp[(n - 1) * 95 / 100];
        o->p99_ms = tmp[(n - 1) * 99 / 100];
    }
    return VDX_OK;
}

/* ---- integrity check -------------------------------------------------- */
static vdx_status check_query(vdx_store *s, const char *sql, const char *what) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->w.db, sql, -1, &q, NULL) != SQLITE_OK)
        return store_sql_err(s->w.db, what);
    int rc = sqlite3_step(q);
    vdx_status st = VDX_OK;
    if (rc == SQLITE_ROW) {
        int64_t bad = sqlite3_column_int64(q, 0);
        if (bad)
            st = vdx_raise(VDX_ERR_FORMAT, "store check: %s/" DB_NAME ": %s "
                           "(%lld)", s->path, what, (long long)bad);
    } else {
        st = store_sql_err(s->w.db, what);
    }
    sqlite3_finalize(q);
    return st;
}

vdx_status vdx_store_check(vdx_store *s) {
    vdx_clear_error();
    if (!s) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "store is NULL");
    pthread_mutex_lock(&s->wmu);
    pthread_rwlock_rdlock(&s->rw);
    vdx_status st = VDX_OK;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->w.db, "PRAGMA integrity_check", -1, &q, NULL) !=
        SQLITE_OK) {
        st = store_sql_err(s->w.db, "integrity_check");
        goto out;
    }
    if (sqlite3_step(q) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(q, 0);
        if (!r || strcmp(r, "ok"))
            st = vdx_raise(VDX_ERR_FORMAT,
                           "store check: %s/" DB_NAME " is damaged: %.300s",
                           s->path, r ? r : "?");
    } else {
        st = store_sql_err(s->w.db, "integrity_check");
    }
    sqlite3_finalize(q);
    if (st) goto out;
    if ((st = check_query(s, "SELECT count(*) FROM vdx_rows WHERE vid NOT IN "
                             "(SELECT vid FROM vdx_vectors)",
                          "rows without their vector")) ||
        (st = check_query(s, "SELECT count(*) FROM vdx_tags WHERE vid NOT IN "
                             "(SELECT vid FROM vdx_rows)",
                          "tags of missing rows")) ||
        (st = check_query(s, "SELECT (SELECT coalesce(max(vid) + 1, 0) FROM "
                             "vdx_vectors) - (SELECT count(*) FROM "
                             "vdx_vectors)",
                          "gaps in the vector numbering")))
        goto out;
    if (s->text_on &&
        ((st = check_query(s, "SELECT (SELECT count(*) FROM vdx_fts) - "
                              "(SELECT count(*) FROM vdx_rows WHERE text IS "
                              "NOT NULL)",
                           "keyword rows differ from texts")) ||
         (st = check_query(s, "SELECT count(*) FROM vdx_rows WHERE text IS "
                              "NOT NULL AND vid NOT IN (SELECT rowid FROM "
                              "vdx_fts)",
                           "texts missing from the keyword index"))))
        goto out;
    {
        sqlite3_stmt *c;
        if (sqlite3_prepare_v2(s->w.db,
                               "SELECT (SELECT coalesce(max(vid) + 1, 0) FROM "
                               "vdx_vectors), (SELECT count(*) FROM vdx_rows)",
                               -1, &c, NULL) != SQLITE_OK) {
            st = store_sql_err(s->w.db, "check");
            goto out;
        }
        sqlite3_step(c);
        int64_t nv = sqlite3_column_int64(c, 0), nr = sqlite3_column_int64(c, 1);
        sqlite3_finalize(c);
        if (nv != s->ntotal || vdx_index_ntotal(s->index) != s->ntotal ||
            nr != s->nlive)
            st = vdx_raise(VDX_ERR_FORMAT,
                           "store check: the index holds %lld vectors and "
                           "%lld live rows; the database %lld vectors and "
                           "%lld rows",
                           (long long)vdx_index_ntotal(s->index),
                           (long long)s->nlive, (long long)nv, (long long)nr);
    }
out:
    pthread_rwlock_unlock(&s->rw);
    pthread_mutex_unlock(&s->wmu);
    return st;
}
