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
 *   keyword.c  BM25 top-k from cached per-phrase FTS5 lists
 *   columns.c  the schema's fields in memory; filters evaluated over them
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

/* In-memory columns (columns.c): strings -> dense codes. */
typedef struct store_dict {
    char **str;
    int32_t n, cap;
    int32_t *slot; /* open addressing, -1 empty */
    uint32_t nslot;
} store_dict;

typedef struct store_post {
    int64_t *v; /* ascending vids */
    int64_t n, cap;
} store_post;

typedef struct store_col {
    int64_t *iv;     /* F_INT value by vid */
    double *fv;      /* F_FLOAT value by vid */
    uint8_t *has;    /* F_INT / F_FLOAT: 1 when the row has a value */
    int32_t *code;   /* F_TEXT: code in dict, -1 none */
    store_dict dict; /* F_TEXT values, F_TAGS tags */
    store_post *post; /* F_TAGS: vids by tag code */
    int32_t npost_cap;
} store_col;

#define STORE_POOL_MAX 32
#define STORE_HNSW_EF_CONSTRUCTION 100 /* store.c: store_new_index */
#define STORE_LAT_N 1024
/* write.c: vectors added to the index per hold of the exclusive lock */
#define STORE_ADD_CHUNK 1024
/* keyword.c: cached (vid, score) entries in all, 16 bytes each (~128 MiB) */
#define STORE_KW_CACHE_MAX (8 * 1024 * 1024)
typedef struct store_kw_list store_kw_list;

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
    int64_t snap_stamp; /* write sequence of the last snapshot, -1 none */

    /* the schema's fields by vid (columns.c), under `rw` like the index;
     * cols_ok = 0: off, filters run in SQLite */
    store_col *cols;
    int64_t *cols_key;    /* the caller's int64 key by vid */
    uint8_t *cols_kint;   /* 1: cols_key holds it; 0: a text key (SQLite) */
    int64_t cols_n, cols_cap;
    int cols_ok;

    /* keyword.c: per-phrase BM25 lists, valid while kw_epoch == fts_epoch;
     * fts_epoch is bumped (under `rw` exclusive) by every write to vdx_fts */
    pthread_mutex_t kw_mu;
    struct store_kw_list **kw;
    int64_t nkw, kw_cap, kw_entries;
    int64_t kw_epoch, fts_epoch;

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
/* Bumps the database's write sequence (vdx_meta 'wseq'), inside each
 * writing transaction: the snapshot file is valid only for its stamp. */
VDX_INTERNAL vdx_status store_bump_wseq(sqlite3 *db);
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

/* ---- keyword.c ---- */
/* The top k rows (vid, FTS5's -bm25 as float, best first) of the OR of the
 * nph quoted phrases, restricted to the vids set in bitmap allow (nallow
 * bits; NULL: all); *count of them.  Under `rw` shared, c in its read
 * transaction. */
VDX_INTERNAL vdx_status store_kw_search(vdx_store *s, store_conn *c,
                                        char *const *phrases, int nph,
                                        int64_t k, const uint8_t *allow,
                                        int64_t nallow, int64_t *vid,
                                        float *score, int64_t *count);
/* Drops the cached lists (store close, or epoch change under kw_mu). */
VDX_INTERNAL void store_kw_free(vdx_store *s);

/* ---- columns.c ---- */
VDX_INTERNAL vdx_status store_cols_init(vdx_store *s);
VDX_INTERNAL void store_cols_free(vdx_store *s);
/* Rebuilds the columns from the database (for vids < s->ntotal); on OOM
 * they are switched off (VDX_OK); a vid out of range is VDX_ERR_FORMAT. */
VDX_INTERNAL vdx_status store_cols_load(vdx_store *s, sqlite3 *db);
/* Appends vid (== cols_n) with metadata meta (a json_t object, or NULL);
 * switches the columns off on OOM.  Writer, under `rw` exclusive. */
VDX_INTERNAL void store_cols_add(vdx_store *s, int64_t vid, const void *meta,
                                 const vdx_store_key *key);
/* Bytes the columns hold (under `rw`). */
VDX_INTERNAL int64_t store_cols_bytes(const vdx_store *s);
/* The int64 key of live vid from the columns: 1, or 0 (ask SQLite). */
static inline int store_cols_key(const vdx_store *s, int64_t vid, int64_t *id) {
    if (!s->cols_ok || vid < 0 || vid >= s->cols_n || !s->cols_kint[vid])
        return 0;
    *id = s->cols_key[vid];
    return 1;
}
/* Covers vids < n (no values). */
VDX_INTERNAL void store_cols_extend(vdx_store *s, int64_t n);
/* The live vids matching where (already compiled without error), sorted
 * ascending, from the columns: 0, or -1 when the columns cannot answer
 * (off, or out of memory): ask SQLite. */
VDX_INTERNAL int store_cols_filter(const vdx_store *s, const char *where,
                                   int64_t **vids, int64_t *n);

/* The snapshot file (columns.c): the live bitmap and the columns written
 * at a checkpoint, stamped with the database's write sequence.  save: 0,
 * or -1 (not written: the next open scans).  restore: 1 when the file
 * matches (stamp, generation, s->ntotal, schema, checksum) and was loaded
 * into s->live / s->nlive and the columns; 0 otherwise (nothing changed:
 * scan the database). */
VDX_INTERNAL int store_cols_save(const vdx_store *s, const char *path,
                                 int64_t stamp);
VDX_INTERNAL int store_cols_restore(vdx_store *s, const char *path,
                                    int64_t stamp);

#endif
