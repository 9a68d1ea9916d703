/*
 * store.h — private header of the store (src/store): the layout of a store
 * and the functions its files share.
 *
 *   store.c    create / open / close, the folder, the writer's lock file,
 *              the connection pool, checkpoints, compaction, stats, check
 *   write.c    upsert and delete: validation, then one SQLite transaction,
 *              then the in-memory index; training of the flat buffer
 *   filter.c   JSON filters -> parameterised SQL
 *   search.c   vector, keyword and hybrid search, get, count
 *
 * The store depends on the public API (vecdex.h) for its index and on
 * src/common for errors and allocation, nothing else of the library.
 *
 * Design
 * ------
 * SQLite (WAL) holds the truth: vdx_rows (the caller's key, metadata JSON,
 * text, one typed column per schema field), vdx_vectors (append-only within
 * a generation: vid -> float32 blob), vdx_tags (field, tag, vid) and the
 * FTS5 table vdx_fts (rowid = vid).  A vector's vid is its position in the
 * index: vectors are only ever appended (index add), a deleted or replaced
 * row leaves its vector behind as a dead vid, masked out of searches by the
 * live bitmap, until compact() renumbers the live vids 0..n-1 and starts a
 * new generation.  The index file index.<generation>.faiss is a checkpoint:
 * it holds the first ntotal vectors of its generation, so opening reads it
 * and adds the vectors of vids >= ntotal from the database again.  A missing
 * file (a crash after compact's commit, before its file) means a rebuild.
 *
 * Concurrency: `rw` guards the in-memory state (index, live bitmap, counts).
 * Searches hold it shared for their whole run, SQLite reads included (each
 * on a pooled connection of its own, in one read transaction), so the rows
 * they read and the index they search agree.  The writer (serialised by
 * `wmu`) prepares its transaction unlocked and takes `rw` exclusive only to
 * commit and apply it to the index.
 */
#ifndef VDX_STORE_H
#define VDX_STORE_H

#include <pthread.h>
#include <sqlite3.h>

#include "common/common.h"

/* field types of the schema */
enum { F_INT = 0, F_FLOAT = 1, F_TEXT = 2, F_TAGS = 3 };

typedef struct store_field {
    char name[64];
    int type;
} store_field;

#define STORE_STMT_CACHE 24

/* A SQLite connection and its prepared statements. */
typedef struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *row_by_vid; /* key, meta, text of a vid */
    sqlite3_stmt *vec_by_vid;
    struct {
        char *sql;
        sqlite3_stmt *st;
    } cache[STORE_STMT_CACHE];
    int cache_next;
} store_conn;

#define STORE_POOL_MAX 32
#define STORE_LAT_N 1024

struct vdx_store {
    char *path;
    int64_t dim;
    int metric;        /* VDX_STORE_METRIC_* */
    vdx_metric imetric;
    char *factory;
    int text_on, read_only;
    store_field *fields;
    int nfields;
    char *info_json;
    int lock_fd;
    int64_t train_size, checkpoint_rows, exact_threshold;

    store_conn w; /* the writer's connection (read-only opens: reads) */
    pthread_mutex_t wmu;

    pthread_mutex_t pool_mu;
    store_conn *pool[STORE_POOL_MAX];
    int npool, nidle;
    store_conn *idle[STORE_POOL_MAX];
    pthread_cond_t pool_cv;

    pthread_rwlock_t rw;
    vdx_index *index;  /* the factory's index, or a flat buffer */
    int trained;       /* index is the factory's */
    int needs_training;
    int64_t ntotal;    /* vectors in the index == next vid */
    uint8_t *live;     /* bit vid set when a row holds that vector */
    int64_t live_cap;  /* bytes */
    int64_t nlive;
    int64_t generation, ck_ntotal;
    int broken;        /* the index missed a committed write: reopen */
    int64_t index_file_bytes;

    pthread_mutex_t lat_mu;
    float lat_ms[STORE_LAT_N];
    int64_t nlat;
};

/* ---- store.c ---- */
/* Raises the SQLite error of db for `what`. */
VDX_INTERNAL vdx_status store_sql_err(sqlite3 *db, const char *what);
VDX_INTERNAL vdx_status store_exec(sqlite3 *db, const char *sql);
/* A statement prepared once per connection (cached by its text). */
VDX_INTERNAL vdx_status store_prepare(store_conn *c, const char *sql,
                                      sqlite3_stmt **st);
VDX_INTERNAL store_conn *store_conn_get(vdx_store *s);
VDX_INTERNAL void store_conn_put(vdx_store *s, store_conn *c);
VDX_INTERNAL vdx_status store_checkpoint_locked(vdx_store *s);
VDX_INTERNAL void store_record_latency(vdx_store *s, double ms);
/* Sets or clears bit vid of the live bitmap (grows it); 0 or -1 (OOM). */
VDX_INTERNAL int store_live_set(vdx_store *s, int64_t vid, int on);
static inline int store_is_live(const vdx_store *s, int64_t vid) {
    return vid >= 0 && (vid >> 3) < s->live_cap &&
           ((s->live[vid >> 3] >> (vid & 7)) & 1);
}
/* A new index from the store's factory string. */
VDX_INTERNAL vdx_status store_new_index(const vdx_store *s, vdx_index **out);
/* The vectors of vids [v0, v1) read from the database into x. */
VDX_INTERNAL vdx_status store_read_vectors(vdx_store *s, store_conn *c,
                                           int64_t v0, int64_t v1, float *x);

/* ---- write.c ---- */
VDX_INTERNAL vdx_status store_maybe_train(vdx_store *s, int force);
VDX_INTERNAL int store_utf8_valid(const char *p, size_t n);
/* Binds key k to parameter i of st. */
VDX_INTERNAL vdx_status store_bind_key(sqlite3_stmt *st, int i,
                                       const vdx_store_key *k);
/* "42" or "'abc'" for messages */
VDX_INTERNAL void store_key_str(const vdx_store_key *k, char *buf, size_t n);
VDX_INTERNAL vdx_status store_check_keys(int64_t n, const vdx_store_key *keys);

/* ---- filter.c ---- */
typedef struct store_bind {
    int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT */
    int64_t i;
    double f;
    char *s;
} store_bind;

typedef struct store_sql {
    char *sql; /* a boolean SQL expression over vdx_rows' columns */
    size_t len, cap;
    store_bind *binds;
    int nbinds, bcap;
} store_sql;

/* Compiles the JSON filter `where` into out (freed with store_sql_free);
 * VDX_ERR_INVALID_ARGUMENT names the problem. */
VDX_INTERNAL vdx_status store_filter_compile(const vdx_store *s,
                                             const char *where,
                                             store_sql *out);
VDX_INTERNAL void store_sql_free(store_sql *q);
/* Appends printf-style text; 0 or -1 (OOM, raised). */
VDX_INTERNAL int store_sql_cat(store_sql *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Binds q's parameters to st from position first. */
VDX_INTERNAL vdx_status store_sql_bind(const store_sql *q, sqlite3_stmt *st,
                                       int first);
/* The vids of the rows matching where (sorted ascending), *n of them;
 * *vids freed with vdx_free. */
VDX_INTERNAL vdx_status store_filter_vids(vdx_store *s, store_conn *c,
                                          const char *where, int64_t **vids,
                                          int64_t *n);

#endif
