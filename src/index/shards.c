/*
 * shards.c — IndexShards and IndexShardsIVF (FAISS's names and semantics),
 * the machinery they share with IndexReplicas (replicas.c), and
 * vdx_merge_knn_results.
 *
 * IndexShards splits a database over sub-indexes of any kind (another
 * IndexShards included): add() gives shard s the rows [s n / S, (s+1) n / S)
 * of each batch; search asks every shard for its k best and merges the S
 * sorted lists per query (a k-way merge, ties to the lower id, so a sharded
 * exact index returns what one exact index returns).  With successive_ids
 * (FAISS's default) shard s numbers its vectors from the total of the shards
 * before it, so a single add() keeps the ids 0..n-1; without, add() assigns
 * ids ntotal + i and shards store them (add_with_ids: IDMap, IVF).
 *
 * Every call forwards the caller's search parameters (nprobe, efSearch,
 * k_factor, the selector...) to every shard; with successive ids the
 * selector is shifted by the shard's offset, since it speaks global ids.
 * (FAISS's IndexShardsIVF searches its shards without the selector,
 * faiss#5584; this one keeps it.)  A shard that fails makes the whole call
 * fail with the shard's number in the message: no partial result is ever
 * returned silently.
 *
 * IndexShardsIVF holds one coarse quantizer; its shards are IVF indexes
 * with the same nlist whose own quantizers get its centroids at train().
 * add() and search() run the coarse step once and hand the lists to every
 * shard (the IVF framework's preassigned entry points), instead of once per
 * shard; shards of other IVF kinds fall back to their own add and search.
 *
 * threaded: a worker thread per sub-index (but the first, which the calling
 * thread searches), kept for the index's life as FAISS's WorkerThread; each
 * part of a call runs on its share of the call's threads, so S shards on C
 * cores do not start S * C OpenMP threads.
 */
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shards.h"
#include "cluster/kmeans.h"
#include "common/threads.h"

vdx_shards *vdx_as_shards(const vdx_index *ix) {
    if (!ix) return NULL;
    if (ix->ops == &vdx_shards_ops || ix->ops == &vdx_shards_ivf_ops ||
        ix->ops == &vdx_replicas_ops)
        return (vdx_shards *)(void *)ix;
    return NULL;
}

vdx_status vdx_raise_wrap(vdx_status code, const char *fmt, ...) {
    char inner[512], outer[512];
    const char *m = vdx_last_error();
    snprintf(inner, sizeof inner, "%s", (m && *m) ? m : vdx_status_name(code));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(outer, sizeof outer, fmt, ap);
    va_end(ap);
    return vdx_raise(code, "%s: %s", outer, inner);
}

/* ---- the runner ---------------------------------------------------------- */

typedef struct vdx_job_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t left;
} vdx_job_batch;

struct vdx_shard_job {
    vdx_shard_job *next;
    const vdx_shards *s;
    vdx_shard_fn fn;
    void *ctx;
    int64_t i;
    int team;
    vdx_status st;
    char msg[384];
    vdx_job_batch *batch; /* NULL when run by the calling thread */
};

static void job_run(vdx_shard_job *j) {
    vdx_team_saved sv;
    vdx_team_enter(j->team, &sv);
    vdx_clear_error();
    j->st = j->fn(j->s, j->i, j->ctx);
    if (j->st) {
        const char *m = vdx_last_error();
        snprintf(j->msg, sizeof j->msg, "%s", (m && *m) ? m : vdx_status_name(j->st));
    }
    vdx_team_leave(&sv);
}

static void *worker_main(void *arg) {
    vdx_shard_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head) break; /* stop, and nothing left */
        vdx_shard_job *j = w->head;
        w->head = j->next;
        if (!w->head) w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        job_run(j);
        vdx_job_batch *b = j->batch;
        pthread_mutex_lock(&b->mu);
        if (--b->left == 0) pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Grows the pool to `want` workers; those that cannot be started are
 * simply missing (their sub-indexes then run on the calling thread). */
static void pool_grow(vdx_shards *s, int64_t want) {
    pthread_mutex_lock(&s->pool_mu);
    if (want > s->wcap) {
        int64_t nc = VDX_MAX(want, 2 * s->wcap);
        vdx_shard_worker **p =
            vdx_realloc_array(s->workers, (size_t)nc, sizeof *p);
        if (!p) goto out;
        s->workers = p;
        s->wcap = nc;
    }
    while (s->nworkers < want) {
        vdx_shard_worker *w = vdx_calloc(1, sizeof *w);
        if (!w) break;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->cv);
            vdx_free(w);
            break;
        }
        s->workers[s->nworkers++] = w;
    }
out:
    pthread_mutex_unlock(&s->pool_mu);
    vdx_clear_error(); /* a pool that could not grow is not an error */
}

static void pool_stop(vdx_shards *s) {
    for (int64_t w = 0; w < s->nworkers; w++) {
        vdx_shard_worker *k = s->workers[w];
        pthread_mutex_lock(&k->mu);
        k->stop = 1;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->th, NULL);
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        vdx_free(k);
    }
    vdx_free(s->workers);
    s->workers = NULL;
    s->nworkers = s->wcap = 0;
}

static const char *kind_name(const vdx_shards *s) { return s->base.ops->type_name; }

vdx_status vdx_shards_run(const vdx_shards *s, vdx_shard_fn fn, void *ctx,
                          const char *what) {
    const int64_t n = s->n;
    if (n == 0) return VDX_OK;
    vdx_shard_job *jobs = vdx_calloc((size_t)n, sizeof *jobs);
    if (!jobs) return VDX_ERR_OUT_OF_MEMORY;
    int team = vdx_nthreads();
    int par = s->threaded && n > 1;
    int share = par ? (int)VDX_MAX(1, team / n) : team;
    vdx_job_batch b;
    int64_t queued = 0;
    if (par) {
        pthread_mutex_init(&b.mu, NULL);
        pthread_cond_init(&b.cv, NULL);
        b.left = 0;
    }
    for (int64_t i = 0; i < n; i++) {
        vdx_shard_job *j = &jobs[i];
        j->s = s;
        j->fn = fn;
        j->ctx = ctx;
        j->i = i;
        j->team = share;
    }
    if (par) {
        /* count first, so that no worker sees left reach 0 early */
        pthread_mutex_t *pm = (pthread_mutex_t *)&s->pool_mu;
        pthread_mutex_lock(pm);
        int64_t nw = s->nworkers;
        vdx_shard_worker **ws = s->workers;
        pthread_mutex_unlock(pm);
        queued = VDX_MIN(nw, n - 1);
        b.left = queued;
        for (int64_t i = 1; i <= queued; i++) {
            vdx_shard_job *j = &jobs[i];
            vdx_shard_worker *w = ws[i - 1];
            j->batch = &b;
            pthread_mutex_lock(&w->mu);
            if (w->tail) w->tail->next = j;
            else w->head = j;
            w->tail = j;
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
    }
    job_run(&jobs[0]);
    for (int64_t i = queued + 1; i < n; i++) job_run(&jobs[i]);
    if (par) {
        pthread_mutex_lock(&b.mu);
        while (b.left > 0) pthread_cond_wait(&b.cv, &b.mu);
        pthread_mutex_unlock(&b.mu);
        pthread_mutex_destroy(&b.mu);
        pthread_cond_destroy(&b.cv);
    }
    vdx_status st = VDX_OK;
    int64_t first = -1, nfail = 0;
    for (int64_t i = 0; i < n; i++)
        if (jobs[i].st) {
            if (first < 0) first = i;
            nfail++;
        }
    if (first >= 0) {
        const vdx_shard_job *j = &jobs[first];
        char more[64] = "";
        if (nfail > 1)
            snprintf(more, sizeof more, " (and %lld more %s%s failed)",
                     (long long)(nfail - 1), vdx_shards_part(s),
                     nfail > 2 ? "s" : "");
        st = vdx_raise(j->st, "%s %s: %s %lld of %lld (%s) failed: %s%s",
                       kind_name(s), what, vdx_shards_part(s),
                       (long long)first, (long long)n,
                       vdx_index_type_name(s->sub[first]), j->msg, more);
    }
    vdx_free(jobs);
    return st;
}

/* ---- consistency --------------------------------------------------------- */

static const char *metric_name(vdx_metric m) {
    return m == VDX_METRIC_L2 ? "L2" : m == VDX_METRIC_INNER_PRODUCT ? "INNER_PRODUCT" : "other";
}

static int ivf_ready(const vdx_shards *s) {
    return s->quantizer->is_trained && s->quantizer->ntotal == s->nlist;
}

vdx_status vdx_shards_sync(vdx_shards *s) {
    vdx_index *ix = &s->base;
    if (s->n == 0) {
        ix->ntotal = 0;
        /* FAISS says untrained; vecdex says there is nothing to train, so
         * that add and search reach the op and its "no shards" message
         * instead of a misleading "must be trained" */
        ix->is_trained = s->kind == VDX_SHARDS_IVF ? ivf_ready(s) : 1;
        return VDX_OK;
    }
    const vdx_index *f = s->sub[0];
    ix->d = f->d;
    ix->metric = f->metric;
    ix->metric_arg = f->metric_arg;
    int64_t total = f->ntotal;
    int trained = f->is_trained;
    for (int64_t i = 1; i < s->n; i++) {
        const vdx_index *g = s->sub[i];
        if (g->d != f->d || g->metric != f->metric)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "%s: %s %lld has d=%lld, metric %s; %s 0 has "
                             "d=%lld, metric %s",
                             kind_name(s), vdx_shards_part(s), (long long)i,
                             (long long)g->d, metric_name(g->metric),
                             vdx_shards_part(s), (long long)f->d,
                             metric_name(f->metric));
        if (s->kind == VDX_REPLICAS && g->ntotal != f->ntotal)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "IndexReplicas: replica %lld holds %lld vectors, "
                             "replica 0 holds %lld",
                             (long long)i, (long long)g->ntotal,
                             (long long)f->ntotal);
        if (s->kind != VDX_REPLICAS) total += g->ntotal;
        trained = trained && g->is_trained;
    }
    ix->ntotal = total;
    ix->is_trained = trained && (s->kind != VDX_SHARDS_IVF || ivf_ready(s));
    return VDX_OK;
}

/* ---- construction and membership ----------------------------------------- */

vdx_status vdx_shards_make(int kind, int64_t d, int threaded,
                           int successive_ids, vdx_index **out) {
    if (d < 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dimension d=%lld must be in 0..%lld (0: that of the "
                         "first shard)",
                         (long long)d, (long long)VDX_MAX_DIM);
    vdx_shards *s = vdx_calloc(1, sizeof *s);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    s->base.ops = kind == VDX_SHARDS     ? &vdx_shards_ops
                  : kind == VDX_REPLICAS ? &vdx_replicas_ops
                                         : &vdx_shards_ivf_ops;
    s->base.d = d;
    s->base.metric = VDX_METRIC_L2;
    s->base.is_trained = kind != VDX_SHARDS_IVF;
    s->kind = kind;
    s->threaded = threaded != 0;
    s->successive_ids = kind != VDX_REPLICAS && successive_ids != 0;
    pthread_mutex_init(&s->pool_mu, NULL);
    *out = &s->base;
    return VDX_OK;
}

vdx_status vdx_index_shards_new(int64_t d, int threaded, int successive_ids,
                                vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    return vdx_shards_make(VDX_SHARDS, d, threaded, successive_ids, out);
}

vdx_status vdx_index_shards_ivf_new(vdx_index *quantizer, int64_t nlist,
                                    int threaded, int successive_ids,
                                    vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!quantizer)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "quantizer is NULL");
    if (nlist <= 0 || nlist > ((int64_t)1 << 31))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nlist=%lld must be in 1..2^31", (long long)nlist);
    if (vdx_as_shards(quantizer))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "the quantizer of an IndexShardsIVF cannot be %s",
                         vdx_index_type_name(quantizer));
    vdx_status st = vdx_shards_make(VDX_SHARDS_IVF, quantizer->d, threaded,
                                    successive_ids, out);
    if (st) return st;
    vdx_shards *s = vdx_as_shards(*out);
    s->quantizer = quantizer;
    s->nlist = nlist;
    s->base.metric = quantizer->metric;
    vdx_kmeans_params_init(&s->cp);
    s->cp.niter = 10; /* FAISS's Level1Quantizer default */
    s->base.is_trained = ivf_ready(s);
    return VDX_OK;
}

/* 1 when `inner` is ix or holds it (directly or deeper). */
static int contains(const vdx_index *inner, const vdx_index *ix) {
    if (inner == ix) return 1;
    const vdx_shards *s = vdx_as_shards(inner);
    for (int64_t i = 0; s && i < s->n; i++)
        if (contains(s->sub[i], ix)) return 1;
    return 0;
}

vdx_status vdx_index_shards_add(vdx_index *ix, vdx_index *shard, int own) {
    vdx_clear_error();
    vdx_shards *s = vdx_as_shards(ix);
    if (!s)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "add_shard: %s is not an IndexShards, IndexShardsIVF "
                         "or IndexReplicas",
                         ix ? vdx_index_type_name(ix) : "NULL");
    const char *part = vdx_shards_part(s);
    if (!shard)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "add_%s: the %s is NULL",
                         part, part);
    if (contains(shard, ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "add_%s: the %s is this %s or contains it", part,
                         part, kind_name(s));
    for (int64_t i = 0; i < s->n; i++)
        if (s->sub[i] == shard)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_%s: this index is already %s %lld", part,
                             part, (long long)i);
    if (ix->d != 0 && shard->d != ix->d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "add_%s: dimension mismatch: expected d=%lld, the "
                         "new %s has d=%lld",
                         part, (long long)ix->d, part, (long long)shard->d);
    if (s->n > 0) {
        const vdx_index *f = s->sub[0];
        if (shard->metric != f->metric)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_%s: the new %s has metric %s, the others %s",
                             part, part, metric_name(shard->metric),
                             metric_name(f->metric));
        if (shard->is_trained != f->is_trained)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_%s: the new %s is %s, %s 0 is %s", part,
                             part, shard->is_trained ? "trained" : "not trained",
                             part, f->is_trained ? "trained" : "not trained");
        if (s->kind == VDX_REPLICAS && shard->ntotal != f->ntotal)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_replica: the new replica holds %lld vectors, "
                             "replica 0 holds %lld",
                             (long long)shard->ntotal, (long long)f->ntotal);
    }
    if (s->kind == VDX_SHARDS_IVF) {
        if (!vdx_index_is_ivf(shard))
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_shard: IndexShardsIVF takes IVF indexes "
                             "only, not %s",
                             vdx_index_type_name(shard));
        if (vdx_index_ivf_nlist(shard) != s->nlist)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_shard: the new shard has nlist=%lld, the "
                             "IndexShardsIVF nlist=%lld",
                             (long long)vdx_index_ivf_nlist(shard),
                             (long long)s->nlist);
        if (shard->metric != s->quantizer->metric)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_shard: the new shard has metric %s, the "
                             "quantizer %s",
                             metric_name(shard->metric),
                             metric_name(s->quantizer->metric));
    }
    if (s->n == s->cap) {
        int64_t nc = s->cap ? 2 * s->cap : 4;
        vdx_index **p = vdx_realloc_array(s->sub, (size_t)nc, sizeof *p);
        if (!p) return VDX_ERR_OUT_OF_MEMORY;
        s->sub = p;
        unsigned char *o = vdx_realloc_array(s->own, (size_t)nc, 1);
        if (!o) return VDX_ERR_OUT_OF_MEMORY;
        s->own = o;
        s->cap = nc;
    }
    s->sub[s->n] = shard;
    s->own[s->n] = own != 0;
    s->n++;
    vdx_status st = vdx_shards_sync(s);
    if (st) { /* cannot happen after the checks above; undo anyway */
        s->n--;
        vdx_shards_sync(s);
        return st;
    }
    if (s->threaded && s->n > 1) pool_grow(s, s->n - 1);
    return VDX_OK;
}

vdx_status vdx_index_shards_remove(vdx_index *ix, const vdx_index *shard) {
    vdx_clear_error();
    vdx_shards *s = vdx_as_shards(ix);
    if (!s)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "remove_shard: %s is not an IndexShards, "
                         "IndexShardsIVF or IndexReplicas",
                         ix ? vdx_index_type_name(ix) : "NULL");
    for (int64_t i = 0; i < s->n; i++) {
        if (s->sub[i] != shard) continue;
        vdx_index *g = s->sub[i];
        int owned = s->own[i];
        memmove(s->sub + i, s->sub + i + 1, (size_t)(s->n - i - 1) * sizeof *s->sub);
        memmove(s->own + i, s->own + i + 1, (size_t)(s->n - i - 1));
        s->n--;
        if (owned) vdx_index_free(g);
        return vdx_shards_sync(s);
    }
    return vdx_raise(VDX_ERR_NOT_FOUND, "remove_%s: the index is not one of "
                     "the %lld %ss of this %s",
                     vdx_shards_part(s), (long long)s->n,
                     vdx_shards_part(s), kind_name(s));
}

int vdx_index_is_shards(const vdx_index *ix) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s ? s->kind : 0;
}
int64_t vdx_index_shards_count(const vdx_index *ix) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s ? s->n : 0;
}
vdx_index *vdx_index_shards_at(const vdx_index *ix, int64_t i) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s && i >= 0 && i < s->n ? s->sub[i] : NULL;
}
int vdx_index_shards_owns(const vdx_index *ix, int64_t i) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s && i >= 0 && i < s->n ? s->own[i] : 0;
}
vdx_status vdx_index_shards_set_own(vdx_index *ix, int64_t i, int own) {
    vdx_clear_error();
    vdx_shards *s = vdx_as_shards(ix);
    if (!s || i < 0 || i >= s->n)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_own: no sub-index %lld", (long long)i);
    s->own[i] = own != 0;
    return VDX_OK;
}
int vdx_index_shards_successive_ids(const vdx_index *ix) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s ? s->successive_ids : 0;
}
int vdx_index_shards_threaded(const vdx_index *ix) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s ? s->threaded : 0;
}
vdx_index *vdx_index_shards_ivf_quantizer(const vdx_index *ix) {
    const vdx_shards *s = vdx_as_shards(ix);
    return s ? s->quantizer : NULL;
}
vdx_kmeans_params *vdx_index_shards_ivf_cp(vdx_index *ix) {
    vdx_shards *s = vdx_as_shards(ix);
    return s && s->kind == VDX_SHARDS_IVF ? &s->cp : NULL;
}
vdx_status vdx_index_shards_sync(vdx_index *ix) {
    vdx_clear_error();
    vdx_shards *s = vdx_as_shards(ix);
    if (!s)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "sync: %s is not an IndexShards, IndexShardsIVF or "
                         "IndexReplicas",
                         ix ? vdx_index_type_name(ix) : "NULL");
    return vdx_shards_sync(s);
}

void vdx_shards_destroy(vdx_index *ix) {
    vdx_shards *s = (vdx_shards *)(void *)ix;
    pool_stop(s);
    for (int64_t i = 0; i < s->n; i++)
        if (s->own[i]) vdx_index_free(s->sub[i]);
    vdx_index_free(s->quantizer);
    vdx_free(s->sub);
    vdx_free(s->own);
    pthread_mutex_destroy(&s->pool_mu);
    vdx_free(s);
}

/* ---- merging ------------------------------------------------------------- */

/* a is better than b: nearer (L2) or more similar (IP), ties to the lower
 * id, as every vecdex search orders its results */
static inline int better(float da, vdx_idx_t ia, float db, vdx_idx_t ib,
                         int keep_max) {
    if (da != db) return keep_max ? da > db : da < db;
    return ia < ib;
}

static void merge_one(int64_t k, int64_t nshard, int64_t stride,
                      const float *Din, const vdx_idx_t *Iin, int keep_max,
                      float *D, vdx_idx_t *I, int64_t *pos) {
    for (int64_t s = 0; s < nshard; s++) pos[s] = 0;
    int64_t j = 0;
    for (; j < k; j++) {
        int64_t bs = -1;
        float bd = 0;
        vdx_idx_t bi = -1;
        for (int64_t s = 0; s < nshard; s++) {
            int64_t p = pos[s];
            if (p >= k) continue;
            vdx_idx_t id = Iin[s * stride + p];
            if (id < 0) continue; /* the rest of this list is empty */
            float dv = Din[s * stride + p];
            if (bs < 0 || better(dv, id, bd, bi, keep_max)) {
                bs = s;
                bd = dv;
                bi = id;
            }
        }
        if (bs < 0) break;
        D[j] = bd;
        I[j] = bi;
        pos[bs]++;
    }
    for (; j < k; j++) {
        D[j] = keep_max ? -FLT_MAX : FLT_MAX;
        I[j] = -1;
    }
}

void vdx_merge_knn(int64_t n, int64_t k, int64_t nshard, const float *Dall,
                   const vdx_idx_t *Iall, int keep_max, float *D,
                   vdx_idx_t *I) {
    const int64_t stride = n * k;
    int par = n * k * nshard > 100000;
#pragma omp parallel if (par) num_threads(vdx_nthreads())
    {
        int64_t stackpos[64];
        int64_t *pos = nshard <= 64 ? stackpos : vdx_malloc_array((size_t)nshard, sizeof(int64_t));
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n; q++) {
            if (!pos) { /* cannot happen below 2^60 shards; keep it total */
                for (int64_t j = 0; j < k; j++) {
                    D[q * k + j] = keep_max ? -FLT_MAX : FLT_MAX;
                    I[q * k + j] = -1;
                }
                continue;
            }
            merge_one(k, nshard, stride, Dall + q * k, Iall + q * k, keep_max,
                      D + q * k, I + q * k, pos);
        }
        if (pos != stackpos) vdx_free(pos);
    }
}

vdx_status vdx_merge_knn_results(int64_t n, int64_t k, int64_t nshard,
                                 const float *Dall, const vdx_idx_t *Iall,
                                 int keep_max, float *D, vdx_idx_t *I) {
    vdx_clear_error();
    if (n < 0 || k <= 0 || k > VDX_MAX_K || nshard < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_knn_results: n=%lld, k=%lld, nshard=%lld "
                         "(need n >= 0, 1 <= k <= %lld, nshard >= 0)",
                         (long long)n, (long long)k, (long long)nshard,
                         (long long)VDX_MAX_K);
    if (n > 0 && (!D || !I || (nshard > 0 && (!Dall || !Iall))))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_knn_results: an array is NULL");
    size_t tot;
    if (!vdx_mul_ok((size_t)n, (size_t)k, &tot) ||
        !vdx_mul_ok(tot, (size_t)(nshard ? nshard : 1), &tot) ||
        tot > (size_t)INT64_MAX / 8)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_knn_results: n * k * nshard is too large");
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    vdx_merge_knn(n, k, nshard, Dall, Iall, keep_max, D, I);
    vdx_team_end();
    return VDX_OK;
}

/* ---- IndexShards ops ----------------------------------------------------- */

/* offsets[s] = ntotal of shards 0..s-1 (successive ids), else 0 */
static vdx_status offsets_of(const vdx_shards *s, vdx_idx_t **out) {
    vdx_idx_t *o = vdx_calloc((size_t)s->n + 1, sizeof *o);
    if (!o) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < s->n; i++)
        o[i + 1] = o[i] + (s->successive_ids ? s->sub[i]->ntotal : 0);
    *out = o;
    return VDX_OK;
}

static vdx_status need_shards(const vdx_shards *s, const char *what) {
    if (s->n > 0) return VDX_OK;
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s %s: it has no %ss (add "
                     "one with add_%s)",
                     kind_name(s), what, vdx_shards_part(s), vdx_shards_part(s));
}

/* the caller's params for shard i: the selector shifted by its offset */
typedef struct {
    vdx_search_params p;
    vdx_selector shifted;
} shard_params;

static const vdx_search_params *params_for(const vdx_search_params *p,
                                           vdx_idx_t offset, shard_params *sp) {
    if (!p || !p->sel || offset == 0) return p;
    sp->p = *p;
    sp->shifted = vdx_selector_shifted(p->sel, offset);
    sp->p.sel = &sp->shifted;
    return &sp->p;
}

static void translate(int64_t cnt, vdx_idx_t *I, vdx_idx_t offset) {
    if (!offset) return;
    for (int64_t i = 0; i < cnt; i++)
        if (I[i] >= 0) I[i] += offset;
}

typedef struct {
    int64_t n;
    const float *x;
    const vdx_idx_t *ids;
    const int64_t *lists; /* IndexShardsIVF: precomputed assignment */
} add_ctx;

static vdx_status add_one(const vdx_shards *s, int64_t i, void *vctx) {
    const add_ctx *c = vctx;
    vdx_index *sub = s->sub[i];
    int64_t i0 = i * c->n / s->n, i1 = (i + 1) * c->n / s->n;
    const float *x0 = c->x + i0 * s->base.d;
    if (i1 == i0) return VDX_OK;
    if (c->lists)
        return vdx_ivf_add_preassigned(sub, i1 - i0, x0,
                                       c->ids ? c->ids + i0 : NULL,
                                       c->lists + i0);
    if (c->ids) return vdx_index_add_with_ids(sub, i1 - i0, x0, c->ids + i0);
    return vdx_index_add(sub, i1 - i0, x0);
}

static vdx_status train_one(const vdx_shards *s, int64_t i, void *vctx) {
    const add_ctx *c = vctx;
    return vdx_index_train(s->sub[i], c->n, c->x);
}

vdx_status vdx_shards_train_all(vdx_shards *s, int64_t n, const float *x) {
    add_ctx c = {n, x, NULL, NULL};
    vdx_status st = vdx_shards_run(s, train_one, &c, "train");
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

static vdx_status shards_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need_shards(s, "train");
    if (st) return st;
    return vdx_shards_train_all(s, n, x);
}

static vdx_status shards_add_common(vdx_shards *s, int64_t n, const float *x,
                                    const vdx_idx_t *ids,
                                    const int64_t *lists) {
    vdx_index *ix = &s->base;
    vdx_status st = need_shards(s, "add");
    if (st) return st;
    if (s->successive_ids && ids)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: add_with_ids makes no sense with successive_ids "
                         "(the ids are the shards' positions shifted); create "
                         "it with successive_ids=0",
                         kind_name(s));
    if (s->successive_ids && ix->ntotal != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: with successive_ids, add() is supported in a "
                         "single pass only (it holds %lld vectors; a second "
                         "add would renumber them)",
                         kind_name(s), (long long)ix->ntotal);
    vdx_idx_t *aids = NULL;
    if (!ids && !s->successive_ids) {
        aids = vdx_malloc_array((size_t)n, sizeof *aids);
        if (!aids) return VDX_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < n; i++) aids[i] = ix->ntotal + i;
        ids = aids;
    }
    add_ctx c = {n, x, ids, lists};
    st = vdx_shards_run(s, add_one, &c, "add");
    vdx_free(aids);
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

static vdx_status shards_add(vdx_index *ix, int64_t n, const float *x,
                             const vdx_idx_t *ids) {
    return shards_add_common(vdx_as_shards(ix), n, x, ids, NULL);
}

typedef struct {
    int64_t n, k;
    const float *x;
    const vdx_search_params *p;
    float *Dall;
    vdx_idx_t *Iall;
    const vdx_idx_t *off;
    int64_t np;           /* IndexShardsIVF: lists probed per query */
    const int64_t *lists; /* ... and which */
    vdx_range_result **rr;
    float radius;
} search_ctx;

static vdx_status search_one(const vdx_shards *s, int64_t i, void *vctx) {
    const search_ctx *c = vctx;
    const vdx_index *sub = s->sub[i];
    shard_params sp;
    const vdx_search_params *p = params_for(c->p, c->off[i], &sp);
    float *D = c->Dall + i * c->n * c->k;
    vdx_idx_t *I = c->Iall + i * c->n * c->k;
    vdx_status st;
    if (c->lists && vdx_ivf_preassigned_ok(sub)) {
        if (!sub->is_trained)
            return vdx_raise(VDX_ERR_NOT_TRAINED, "%s is not trained",
                             vdx_index_type_name(sub));
        st = vdx_ivf_search_preassigned(sub, c->n, c->x, c->k, p, c->np,
                                        c->lists, D, I);
    } else if (c->lists) { /* another IVF kind: its own coarse step */
        vdx_search_params q;
        if (p) q = *p;
        else vdx_search_params_init(&q);
        q.nprobe = c->np;
        st = vdx_index_search(sub, c->n, c->x, c->k, &q, D, I);
    } else {
        st = vdx_index_search(sub, c->n, c->x, c->k, p, D, I);
    }
    if (!st) translate(c->n * c->k, I, c->off[i]);
    return st;
}

static vdx_status search_gather(const vdx_shards *s, search_ctx *c, float *D,
                                vdx_idx_t *I) {
    vdx_status st = vdx_shards_run(s, search_one, c, "search");
    if (!st)
        vdx_merge_knn(c->n, c->k, s->n, c->Dall, c->Iall,
                      s->base.metric == VDX_METRIC_INNER_PRODUCT, D, I);
    return st;
}

static vdx_status shards_search(const vdx_index *ix, int64_t n, const float *x,
                                int64_t k, const vdx_search_params *p,
                                float *D, vdx_idx_t *I) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need_shards(s, "search");
    if (st) return st;
    search_ctx c = {0};
    c.n = n;
    c.k = k;
    c.x = x;
    c.p = p;
    vdx_idx_t *off = NULL;
    c.Dall = vdx_malloc_array((size_t)s->n * (size_t)n, (size_t)k * sizeof(float));
    c.Iall = vdx_malloc_array((size_t)s->n * (size_t)n, (size_t)k * sizeof(vdx_idx_t));
    if (!c.Dall || !c.Iall || (st = offsets_of(s, &off))) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    c.off = off;
    st = search_gather(s, &c, D, I);
done:
    vdx_free(c.Dall);
    vdx_free(c.Iall);
    vdx_free(off);
    return st;
}

static vdx_status range_one(const vdx_shards *s, int64_t i, void *vctx) {
    const search_ctx *c = vctx;
    shard_params sp;
    const vdx_search_params *p = params_for(c->p, c->off[i], &sp);
    return vdx_index_range_search(s->sub[i], c->n, c->x, c->radius, p, &c->rr[i]);
}

/* Appends the results of sub-index i (queries q0..q0+nq) to rb, labels
 * shifted by off. */
static vdx_status range_append(vdx_range_builder *rb, int64_t q0,
                               const vdx_range_result *r, vdx_idx_t off) {
    for (int64_t q = 0; q < r->nq; q++)
        for (int64_t j = r->lims[q]; j < r->lims[q + 1]; j++) {
            vdx_idx_t l = r->labels[j];
            vdx_status st = vdx_range_builder_add(rb, q0 + q, r->distances[j],
                                                  l >= 0 ? l + off : l);
            if (st) return st;
        }
    return VDX_OK;
}

static vdx_status shards_range_search(const vdx_index *ix, int64_t n,
                                      const float *x, float radius,
                                      const vdx_search_params *p,
                                      vdx_range_builder *rb) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need_shards(s, "range_search");
    if (st) return st;
    search_ctx c = {0};
    c.n = n;
    c.x = x;
    c.p = p;
    c.radius = radius;
    vdx_idx_t *off = NULL;
    c.rr = vdx_calloc((size_t)s->n, sizeof *c.rr);
    if (!c.rr || (st = offsets_of(s, &off))) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    c.off = off;
    st = vdx_shards_run(s, range_one, &c, "range_search");
    for (int64_t i = 0; !st && i < s->n; i++)
        st = range_append(rb, 0, c.rr[i], off[i]);
done:
    for (int64_t i = 0; c.rr && i < s->n; i++) vdx_range_result_free(c.rr[i]);
    vdx_free(c.rr);
    vdx_free(off);
    return st;
}

static vdx_status reset_one(const vdx_shards *s, int64_t i, void *ctx) {
    (void)ctx;
    return vdx_index_reset(s->sub[i]);
}

vdx_status vdx_shards_reset(vdx_index *ix) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = vdx_shards_run(s, reset_one, NULL, "reset");
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

static vdx_status shards_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                     float *out) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need_shards(s, "reconstruct");
    if (st) return st;
    if (s->successive_ids) {
        vdx_idx_t off = 0;
        for (int64_t i = 0; i < s->n; i++) {
            const vdx_index *sub = s->sub[i];
            if (key >= off && key < off + sub->ntotal) {
                st = vdx_index_reconstruct(sub, key - off, out);
                if (st)
                    return vdx_raise_wrap(st, "%s reconstruct: shard %lld of %lld "
                                     "(%s) failed",
                                     kind_name(s), (long long)i,
                                     (long long)s->n,
                                     vdx_index_type_name(sub));
                return VDX_OK;
            }
            off += sub->ntotal;
        }
        return vdx_raise(VDX_ERR_NOT_FOUND,
                         "reconstruct: key %lld is outside [0, ntotal=%lld)",
                         (long long)key, (long long)ix->ntotal);
    }
    /* the shards hold ids: the first that has it */
    for (int64_t i = 0; i < s->n; i++) {
        st = vdx_index_reconstruct(s->sub[i], key, out);
        if (!st) return VDX_OK;
        if (st != VDX_ERR_NOT_FOUND)
            return vdx_raise_wrap(st, "%s reconstruct: shard %lld of %lld (%s) "
                             "failed",
                             kind_name(s), (long long)i, (long long)s->n,
                             vdx_index_type_name(s->sub[i]));
    }
    return vdx_raise(VDX_ERR_NOT_FOUND,
                     "reconstruct: id %lld is in none of the %lld shards",
                     (long long)key, (long long)s->n);
}

static vdx_status shards_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                       int64_t ni, float *out) {
    const vdx_shards *s = vdx_as_shards(ix);
    if (!s->successive_ids) { /* ids, not positions: one at a time */
        for (int64_t i = 0; i < ni; i++) {
            vdx_status st = shards_reconstruct(ix, i0 + i, out + i * ix->d);
            if (st) return st;
        }
        return VDX_OK;
    }
    vdx_idx_t off = 0;
    for (int64_t i = 0; i < s->n && ni > 0; i++) {
        const vdx_index *sub = s->sub[i];
        vdx_idx_t end = off + sub->ntotal;
        if (i0 < end) {
            int64_t m = VDX_MIN(ni, end - i0);
            vdx_status st = vdx_index_reconstruct_n(sub, i0 - off, m, out);
            if (st)
                return vdx_raise_wrap(st, "%s reconstruct_n: shard %lld of %lld "
                                 "(%s) failed",
                                 kind_name(s), (long long)i, (long long)s->n,
                                 vdx_index_type_name(sub));
            out += m * ix->d;
            i0 += m;
            ni -= m;
        }
        off = end;
    }
    return VDX_OK;
}

typedef struct {
    const vdx_selector *sel;
    const vdx_idx_t *off;
    int64_t *removed;
} remove_ctx;

static vdx_status remove_one(const vdx_shards *s, int64_t i, void *vctx) {
    const remove_ctx *c = vctx;
    vdx_selector sh;
    const vdx_selector *sel = c->sel;
    if (c->off && c->off[i]) {
        sh = vdx_selector_shifted(c->sel, c->off[i]);
        sel = &sh;
    }
    return vdx_index_remove_ids(s->sub[i], sel, &c->removed[i]);
}

static vdx_status shards_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                    int64_t *nremoved) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need_shards(s, "remove_ids");
    if (st) return st;
    vdx_idx_t *off = NULL;
    int64_t *removed = vdx_calloc((size_t)s->n, sizeof *removed);
    if (!removed || (st = offsets_of(s, &off))) {
        vdx_free(removed);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    remove_ctx c = {sel, off, removed};
    st = vdx_shards_run(s, remove_one, &c, "remove_ids");
    int64_t tot = 0;
    for (int64_t i = 0; i < s->n; i++) tot += removed[i];
    *nremoved = tot;
    vdx_free(removed);
    vdx_free(off);
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

const vdx_index_ops vdx_shards_ops = {
    "IndexShards",       shards_train,     shards_add,
    shards_search,       shards_range_search, vdx_shards_reset,
    shards_reconstruct,  shards_reconstruct_n,
    shards_remove_ids,   vdx_shards_destroy};

/* ---- IndexShardsIVF ops -------------------------------------------------- */

static vdx_status ivf_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_index *q = s->quantizer;
    vdx_status st = VDX_OK;
    for (int64_t i = 0; i < s->n; i++)
        if (s->sub[i]->ntotal > 0)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "IndexShardsIVF train: shard %lld already holds "
                             "%lld vectors (train before adding)",
                             (long long)i, (long long)s->sub[i]->ntotal);
    float *cent = vdx_malloc_array((size_t)s->nlist, (size_t)ix->d * sizeof(float));
    if (!cent) return VDX_ERR_OUT_OF_MEMORY;
    if (!ivf_ready(s)) {
        if (n < s->nlist) {
            st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                           "IndexShardsIVF train: %lld training points cannot "
                           "make nlist=%lld lists (need n >= nlist)",
                           (long long)n, (long long)s->nlist);
            goto done;
        }
        if ((st = vdx_kmeans_train_metric(ix->d, s->nlist, n, x, &s->cp,
                                          q->metric, cent, NULL, NULL)))
            goto done;
        if ((st = vdx_index_reset(q)) || (st = vdx_index_train(q, s->nlist, cent)) ||
            (st = vdx_index_add(q, s->nlist, cent)))
            goto done;
    } else if ((st = vdx_index_reconstruct_n(q, 0, s->nlist, cent))) {
        st = vdx_raise_wrap(st, "IndexShardsIVF train: cannot read the centroids "
                       "of the quantizer (%s)",
                       vdx_index_type_name(q));
        goto done;
    }
    /* every shard's quantizer gets the same centroids, then the shard
     * finishes its own training (PQ / SQ codebooks) */
    for (int64_t i = 0; i < s->n && !st; i++) {
        vdx_index *sub = s->sub[i];
        vdx_index *sq = vdx_index_ivf_quantizer(sub);
        if (!(st = vdx_index_reset(sq)) &&
            (sq->is_trained || !(st = vdx_index_train(sq, s->nlist, cent))) &&
            !(st = vdx_index_add(sq, s->nlist, cent)))
            st = vdx_index_train(sub, n, x);
        if (st)
            st = vdx_raise_wrap(st, "IndexShardsIVF train: shard %lld of %lld "
                           "(%s) failed",
                           (long long)i, (long long)s->n,
                           vdx_index_type_name(sub));
    }
done:
    vdx_free(cent);
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

static int all_preassigned(const vdx_shards *s) {
    for (int64_t i = 0; i < s->n; i++)
        if (!vdx_ivf_preassigned_ok(s->sub[i])) return 0;
    return s->n > 0;
}

static vdx_status ivf_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    vdx_shards *s = vdx_as_shards(ix);
    if (!all_preassigned(s)) return shards_add_common(s, n, x, ids, NULL);
    int64_t *lists = vdx_malloc_array((size_t)n, sizeof *lists);
    float *dis = vdx_malloc_array((size_t)n, sizeof *dis);
    vdx_status st = VDX_ERR_OUT_OF_MEMORY;
    if (lists && dis && !(st = vdx_index_search(s->quantizer, n, x, 1, NULL, dis, lists))) {
        for (int64_t i = 0; i < n && !st; i++)
            if (lists[i] < 0 || lists[i] >= s->nlist)
                st = vdx_raise(VDX_ERR_INTERNAL,
                               "IndexShardsIVF add: the quantizer assigned "
                               "vector %lld to list %lld (nlist=%lld)",
                               (long long)i, (long long)lists[i],
                               (long long)s->nlist);
        if (!st) st = shards_add_common(s, n, x, ids, lists);
    }
    vdx_free(lists);
    vdx_free(dis);
    return st;
}

static vdx_status ivf_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *p, float *D,
                             vdx_idx_t *I) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need_shards(s, "search");
    if (st) return st;
    int64_t np = p && p->nprobe > 0 ? p->nprobe : vdx_index_ivf_nprobe(s->sub[0]);
    np = VDX_MAX(1, VDX_MIN(np, s->nlist));
    search_ctx c = {0};
    c.n = n;
    c.k = k;
    c.x = x;
    c.p = p;
    c.np = np;
    vdx_idx_t *off = NULL;
    float *cd = vdx_malloc_array((size_t)n * (size_t)np, sizeof(float));
    int64_t *cl = vdx_malloc_array((size_t)n * (size_t)np, sizeof(int64_t));
    c.Dall = vdx_malloc_array((size_t)s->n * (size_t)n, (size_t)k * sizeof(float));
    c.Iall = vdx_malloc_array((size_t)s->n * (size_t)n, (size_t)k * sizeof(vdx_idx_t));
    if (!cd || !cl || !c.Dall || !c.Iall || offsets_of(s, &off)) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    c.off = off;
    if ((st = vdx_index_search(s->quantizer, n, x, np, NULL, cd, cl))) {
        st = vdx_raise_wrap(st, "IndexShardsIVF search: the quantizer (%s) "
                       "failed",
                       vdx_index_type_name(s->quantizer));
        goto done;
    }
    for (int64_t i = 0; i < n * np; i++)
        if (cl[i] >= s->nlist) cl[i] = -1;
    c.lists = cl;
    st = search_gather(s, &c, D, I);
done:
    vdx_free(cd);
    vdx_free(cl);
    vdx_free(c.Dall);
    vdx_free(c.Iall);
    vdx_free(off);
    return st;
}

const vdx_index_ops vdx_shards_ivf_ops = {
    "IndexShardsIVF",    ivf_train,        ivf_add,
    ivf_search,          shards_range_search, vdx_shards_reset,
    shards_reconstruct,  shards_reconstruct_n,
    shards_remove_ids,   vdx_shards_destroy};
