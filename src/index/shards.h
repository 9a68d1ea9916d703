/*
 * shards.h — private header of IndexShards, IndexShardsIVF (shards.c) and
 * IndexReplicas (replicas.c): the common structure, the shard runner and
 * the consistency checks.
 */
#ifndef VDX_SHARDS_H
#define VDX_SHARDS_H

#include <pthread.h>

#include "index_internal.h"

enum { VDX_SHARDS = 1, VDX_REPLICAS = 2, VDX_SHARDS_IVF = 3 };

/* One worker thread of a threaded index: it runs the jobs queued to it in
 * order (several calls may be in flight at once). */
typedef struct vdx_shard_job vdx_shard_job;
typedef struct vdx_shard_worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vdx_shard_job *head, *tail;
    int stop;
} vdx_shard_worker;

typedef struct vdx_shards {
    vdx_index base;
    int kind;           /* VDX_SHARDS, VDX_REPLICAS, VDX_SHARDS_IVF */
    int threaded;       /* one worker thread per sub-index */
    int successive_ids; /* shard s numbers its vectors from the total of
                           shards 0..s-1 (IndexShards only) */
    int64_t n, cap;     /* sub-indexes */
    vdx_index **sub;
    unsigned char *own; /* per sub-index: freed with the index */
    /* the worker threads: worker w serves sub-index w + 1 (the calling
     * thread runs sub-index 0); grown under pool_mu */
    pthread_mutex_t pool_mu;
    vdx_shard_worker **workers;
    int64_t nworkers, wcap;
    /* IndexShardsIVF: the common coarse quantizer (owned) */
    vdx_index *quantizer;
    int64_t nlist;
    vdx_kmeans_params cp;
} vdx_shards;

VDX_INTERNAL vdx_shards *vdx_as_shards(const vdx_index *ix);

/* A job run on sub-index i; ctx is the call's.  Runs on the calling thread
 * or on a worker, with the share of the call's threads set. */
typedef vdx_status (*vdx_shard_fn)(const vdx_shards *s, int64_t i, void *ctx);

/* Runs fn on every sub-index (all of them, even after a failure, as FAISS
 * does), in parallel when the index is threaded.  On failure raises, in
 * the calling thread, "<Type> <what>: shard <i> of <n> (<type>) failed:
 * <its message>" for the lowest failing i (replicas say "replica") and
 * returns its status. */
VDX_INTERNAL vdx_status vdx_shards_run(const vdx_shards *s, vdx_shard_fn fn,
                                       void *ctx, const char *what);

/* Recomputes d, metric, ntotal and is_trained from the sub-indexes (FAISS:
 * syncWithSubIndexes); an inconsistent sub-index is an error naming it. */
VDX_INTERNAL vdx_status vdx_shards_sync(vdx_shards *s);

/* Trains every sub-index on the same vectors, then syncs (shards and
 * replicas alike); reset empties every sub-index, then syncs. */
VDX_INTERNAL vdx_status vdx_shards_train_all(vdx_shards *s, int64_t n,
                                             const float *x);
VDX_INTERNAL vdx_status vdx_shards_reset(vdx_index *ix);

/* Common constructor of the three kinds (ops chosen by kind). */
VDX_INTERNAL vdx_status vdx_shards_make(int kind, int64_t d, int threaded,
                                        int successive_ids, vdx_index **out);

/* "shard" or "replica" */
static inline const char *vdx_shards_part(const vdx_shards *s) {
    return s->kind == VDX_REPLICAS ? "replica" : "shard";
}

/* vdx_raise with the calling thread's current message appended after ": "
 * (copied first: the message buffer is also the destination). */
VDX_INTERNAL vdx_status vdx_raise_wrap(vdx_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Merges nshard sorted result lists per query (Dall / Iall: nshard x n x k,
 * FAISS's layout) into the k best, ties to the lower id; -1 labels end a
 * list.  No argument checks (vdx_merge_knn_results does them). */
VDX_INTERNAL void vdx_merge_knn(int64_t n, int64_t k, int64_t nshard,
                                const float *Dall, const vdx_idx_t *Iall,
                                int keep_max, float *D, vdx_idx_t *I);

/* The ops tables, defined in shards.c and replicas.c. */
VDX_INTERNAL extern const vdx_index_ops vdx_shards_ops, vdx_shards_ivf_ops,
    vdx_replicas_ops;
/* Destroys any of the kinds (stops workers, frees owned sub-indexes). */
VDX_INTERNAL void vdx_shards_destroy(vdx_index *ix);

#endif
