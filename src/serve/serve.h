/*
 * serve.h — private header of the HTTP server (`vecdex serve`), built into
 * libvecdex_serve (linked by the vecdex command and its tests, not by the
 * core library, which so keeps no HTTP dependency).
 *
 *   server.c   the daemon (libmicrohttpd), request bodies, limits, auth
 *   routes.c   the JSON routes over an index or a store (jansson)
 *   metrics.c  counters and the latency histogram, /metrics text
 *
 * Routes (JSON in, JSON out; errors are {"error": "...", "status": code}):
 *   GET  /health            {"status": "ok"}
 *   GET  /info              the index's (or store's) description
 *   GET  /metrics           Prometheus text format 0.0.4
 *   POST /search            {"vectors": [[...], ...] | "vector": [...],
 *                            "k": 10, "nprobe": n, "efSearch": n,
 *                            "ids": [allowed ids] (index) |
 *                            "filter": {...} (store)}
 *   POST /add               {"vectors": [[...]], "ids": [...]}
 *   POST /upsert            {"vectors": [[...]], "ids": [...],
 *                            "metadata": [...], "texts": [...] (store)}
 *   POST /delete            {"ids": [...]}
 *   POST /save              (the MPI-sharded server: saves every shard
 *                            into its directory)
 * Writes need "Authorization: Bearer TOKEN" when a token is set.
 */
#ifndef VDX_SERVE_H
#define VDX_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vecdex.h"

/* DEFAULT / MIN / MAX of the tunables */
#define VDX_SERVE_BODY_DEFAULT ((size_t)64 << 20)
#define VDX_SERVE_BODY_MIN ((size_t)1 << 10)
#define VDX_SERVE_BODY_MAX ((size_t)1 << 32)
#define VDX_SERVE_THREADS_DEFAULT 4
#define VDX_SERVE_THREADS_MAX 256
#define VDX_SERVE_K_MAX 10000
#define VDX_SERVE_BATCH_MAX 100000

/* A search answered elsewhere (the shards on MPI ranks of `vecdex serve
 * --sharded`): as vdx_index_search, plus allow_partial and, out, the
 * shards that answered of the total.  Called by one request at a time. */
typedef vdx_status (*vdx_serve_search_fn)(void *ctx, int64_t n, const float *x,
                                          int64_t k, const vdx_search_params *p,
                                          int allow_partial, float *D,
                                          vdx_idx_t *I, int *answered,
                                          int *total);

/* A write answered elsewhere (the same): route R_ADD (ids may be NULL),
 * R_UPSERT (ids given), R_DELETE (n ids, no vectors) or R_SAVE (nothing);
 * *count: the vectors added / upserted / removed; *ntotal: the vectors
 * after it.  A partial write is an error (its message says how far it
 * got).  Called by one request at a time, never during a search. */
typedef vdx_status (*vdx_serve_write_fn)(void *ctx, int route, int64_t n,
                                         const float *x, const vdx_idx_t *ids,
                                         int64_t *count, int64_t *ntotal);

typedef struct vdx_serve_options {
    const char *host;  /* address to bind; NULL = "127.0.0.1"            */
    int port;          /* 0: any free port (see vdx_serve_port)          */
    size_t max_body;   /* request bodies above this get 413              */
    const char *token; /* bearer token guarding writes; NULL: none       */
    int threads;       /* threads answering requests                     */
    /* instead of an index or a store: searches by this function, of
     * vectors of dimension remote_d among remote_ntotal */
    vdx_serve_search_fn remote_search;
    vdx_serve_write_fn remote_write; /* NULL: a remote index takes no writes */
    void *remote_ctx;
    int64_t remote_d, remote_ntotal;
} vdx_serve_options;

void vdx_serve_options_init(vdx_serve_options *o);

/* ---- metrics (metrics.c) ------------------------------------------------ */
enum { R_SEARCH, R_ADD, R_UPSERT, R_DELETE, R_INFO, R_HEALTH, R_METRICS,
       R_SAVE, R_OTHER, R_COUNT };
#define VDX_SERVE_NBUCKET 14
typedef struct vdx_serve_metrics {
    atomic_llong requests[R_COUNT];
    atomic_llong client_errors[R_COUNT]; /* 4xx */
    atomic_llong server_errors[R_COUNT]; /* 5xx */
    atomic_llong queries;                /* vectors searched */
    atomic_llong lat_bucket[R_COUNT][VDX_SERVE_NBUCKET]; /* cumulative at print */
    atomic_llong lat_sum_ns[R_COUNT];
} vdx_serve_metrics;

const char *vdx_serve_route_name(int route);
void vdx_serve_metrics_record(vdx_serve_metrics *m, int route, int status,
                              double seconds);
/* The /metrics page (malloc'd), or NULL when out of memory. */
char *vdx_serve_metrics_text(vdx_serve_metrics *m, int64_t ntotal);

/* ---- the server ---------------------------------------------------------- */
typedef struct vdx_server {
    struct MHD_Daemon *daemon;
    vdx_serve_options opt;
    char *token; /* copy */
    vdx_index *index; /* borrowed; or */
    vdx_store *store; /* borrowed */
    int64_t d;
    pthread_rwlock_t lock; /* index: searches share, writes exclude */
    pthread_mutex_t remote_mu; /* remote calls: one at a time */
    atomic_llong remote_nt;    /* a remote index's ntotal, after each write */
    vdx_serve_metrics metrics;
} vdx_server;

/* Starts answering on a thread pool; the index or store (exactly one, or
 * none with opt->remote_search) is
 * borrowed until vdx_serve_stop.  VDX_ERR_IO when the address cannot be
 * bound (the message says why). */
vdx_status vdx_serve_start(vdx_index *index, vdx_store *store,
                           const vdx_serve_options *opt, vdx_server **out);
int vdx_serve_port(const vdx_server *s);
/* Stops (waits for requests in flight) and frees; NULL accepted. */
void vdx_serve_stop(vdx_server *s);

/* ---- routes (routes.c) --------------------------------------------------- */
/* A response: status code and a malloc'd body with its content type. */
typedef struct vdx_reply {
    int status;
    char *body;
    const char *type;
} vdx_reply;

/* The route of (method, url), R_OTHER when none; *write says whether it
 * changes the data (and so needs the token). */
int vdx_serve_route(const char *method, const char *url, int *write);
/* Answers one request whose body (NUL-terminated, len bytes) was read. */
void vdx_serve_handle(vdx_server *s, int route, const char *body, size_t len,
                      vdx_reply *r);
/* An error reply {"error": msg, "status": code}. */
void vdx_reply_error(vdx_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
