/*
 * gpu_multi.c — IndexShards and IndexReplicas over GPU indexes, as
 * index_cpu_to_gpu_multiple builds them (FAISS: IndexShards, IndexReplicas
 * in their GPU use).  Members run in their own threads, one per member, so
 * members on different devices (or on one device through different
 * resources) work at the same time.
 *
 *   - replicas hold the same vectors: a search splits the queries among
 *     them; adds, trains and resets go to all;
 *   - shards split the vectors: a search asks every shard for the k best
 *     and merges (ties to the lower id); with successive ids (flat shards)
 *     shard i numbers its vectors from 0 and its ids are shifted by the
 *     vectors of the shards before it, and selectors are translated to
 *     shard positions; otherwise ids are the stored ones (IVF shards).
 *
 * These are private to the GPU part; the CPU IndexShards / IndexReplicas of
 * issue 21 may replace them once they exist.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/selector.h"
#include "gpu_internal.h"

typedef struct vdx_gpu_multi {
    vdx_index base;
    int kind;
    int n;
    vdx_index **sub;
    int successive;
} vdx_gpu_multi;

static const vdx_index_ops shards_ops, replicas_ops;

static vdx_gpu_multi *as_multi(const vdx_index *ix) {
    return ix && (ix->ops == &shards_ops || ix->ops == &replicas_ops)
               ? (vdx_gpu_multi *)(void *)ix
               : NULL;
}

int64_t vdx_gpu_multi_count(const vdx_index *ix) {
    const vdx_gpu_multi *m = as_multi(ix);
    return m ? m->n : 0;
}

vdx_index *vdx_gpu_multi_at(const vdx_index *ix, int64_t i) {
    const vdx_gpu_multi *m = as_multi(ix);
    return m && i >= 0 && i < m->n ? m->sub[i] : NULL;
}

int vdx_gpu_multi_kind(const vdx_index *ix) {
    const vdx_gpu_multi *m = as_multi(ix);
    return m ? m->kind : 0;
}

int vdx_gpu_multi_successive(const vdx_index *ix) {
    const vdx_gpu_multi *m = as_multi(ix);
    return m ? m->successive : 0;
}

static void refresh(vdx_gpu_multi *m) {
    int64_t nt = 0;
    int tr = 1;
    for (int i = 0; i < m->n; i++) {
        if (m->kind == VDX_GPU_MULTI_SHARDS || i == 0) nt += m->sub[i]->ntotal;
        tr = tr && m->sub[i]->is_trained;
    }
    m->base.ntotal = nt;
    m->base.is_trained = tr;
}

/* ---- running one job per member in parallel ------------------------------ */

typedef struct job {
    vdx_status (*fn)(struct job *j);
    const vdx_gpu_multi *m;
    int i;
    void *ctx;
    vdx_status st;
    char msg[512];
} job;

static void *job_main(void *p) {
    job *j = p;
    j->st = j->fn(j);
    if (j->st) snprintf(j->msg, sizeof j->msg, "%s", vdx_last_error());
    return NULL;
}

static vdx_status run_all(const vdx_gpu_multi *m, vdx_status (*fn)(job *),
                          void *ctx, const char *what) {
    job *jobs = vdx_calloc((size_t)m->n, sizeof *jobs);
    pthread_t *th = vdx_calloc((size_t)m->n, sizeof *th);
    char *started = vdx_calloc((size_t)m->n, 1);
    if (!jobs || !th || !started) {
        vdx_free(jobs);
        vdx_free(th);
        vdx_free(started);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < m->n; i++) {
        jobs[i].fn = fn;
        jobs[i].m = m;
        jobs[i].i = i;
        jobs[i].ctx = ctx;
    }
    for (int i = 1; i < m->n; i++)
        started[i] = pthread_create(&th[i], NULL, job_main, &jobs[i]) == 0;
    job_main(&jobs[0]);
    for (int i = 1; i < m->n; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            job_main(&jobs[i]); /* no thread: run it here */
    }
    vdx_status st = VDX_OK;
    for (int i = 0; i < m->n && !st; i++)
        if (jobs[i].st) {
            st = vdx_raise(jobs[i].st, "%s %d of %s: %s",
                           m->kind == VDX_GPU_MULTI_SHARDS ? "shard" : "replica",
                           i, what, jobs[i].msg);
        }
    vdx_free(jobs);
    vdx_free(th);
    vdx_free(started);
    return st;
}

/* ---- search ------------------------------------------------------------------ */

typedef struct search_ctx {
    int64_t n, k;
    const float *x;
    const vdx_search_params *p;
    float *D;      /* replicas: the output; shards: n x k per shard */
    vdx_idx_t *I;
} search_ctx;

static vdx_status replica_search(job *j) {
    const search_ctx *c = j->ctx;
    const int64_t a = c->n * j->i / j->m->n, b = c->n * (j->i + 1) / j->m->n;
    if (b == a) return VDX_OK;
    const int64_t d = j->m->base.d;
    return vdx_index_search(j->m->sub[j->i], b - a, c->x + a * d, c->k, c->p,
                            c->D + a * c->k, c->I + a * c->k);
}

static int64_t shard_offset(const vdx_gpu_multi *m, int i) {
    int64_t o = 0;
    for (int s = 0; s < i; s++) o += m->sub[s]->ntotal;
    return o;
}

static vdx_status shard_search(job *j) {
    const search_ctx *c = j->ctx;
    const vdx_gpu_multi *m = j->m;
    vdx_index *s = m->sub[j->i];
    const size_t off = (size_t)j->i * (size_t)(c->n * c->k);
    if (!(c->p && c->p->sel && m->successive))
        return vdx_index_search(s, c->n, c->x, c->k, c->p, c->D + off,
                                c->I + off);
    /* the caller's selector speaks global ids: translate positions */
    const int64_t o = shard_offset(m, j->i), nt = s->ntotal;
    vdx_idx_t *map = vdx_malloc_array((size_t)(nt ? nt : 1), 8);
    if (!map) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < nt; i++) map[i] = o + i;
    vdx_selector tr = vdx_selector_translated(c->p->sel, map, nt);
    vdx_search_params sp = *c->p;
    sp.sel = &tr;
    vdx_status st = vdx_index_search(s, c->n, c->x, c->k, &sp, c->D + off,
                                     c->I + off);
    vdx_free(map);
    return st;
}

static vdx_status multi_search(const vdx_index *ix, int64_t n, const float *x,
                               int64_t k, const vdx_search_params *p, float *D,
                               vdx_idx_t *I) {
    const vdx_gpu_multi *m = (const vdx_gpu_multi *)ix;
    search_ctx c = {n, k, x, p, D, I};
    if (m->kind == VDX_GPU_MULTI_REPLICAS)
        return run_all(m, replica_search, &c, "search");
    const size_t per = (size_t)(n * k);
    float *sd = vdx_malloc_array(per, (size_t)m->n * 4);
    vdx_idx_t *si = vdx_malloc_array(per, (size_t)m->n * 8);
    float *tk = vdx_malloc_array((size_t)k, 4);
    vdx_idx_t *ti = vdx_malloc_array((size_t)k, 8);
    vdx_status st = VDX_OK;
    if (!sd || !si || !tk || !ti) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    c.D = sd;
    c.I = si;
    if ((st = run_all(m, shard_search, &c, "search"))) goto done;
    const int is_ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    /* merge on keys where smaller is better */
    if (is_ip)
        for (size_t i = 0; i < per * (size_t)m->n; i++) sd[i] = -sd[i];
    for (int64_t q = 0; q < n; q++) {
        float *ok = D + q * k;
        vdx_idx_t *oi = I + q * k;
        memcpy(ok, sd + q * k, (size_t)k * 4);
        memcpy(oi, si + q * k, (size_t)k * 8);
        for (int s = 1; s < m->n; s++) {
            int64_t shift = m->successive ? shard_offset(m, s) : 0;
            vdx_gpu_merge_rows(k, ok, oi, sd + (size_t)s * per + (size_t)(q * k),
                               si + (size_t)s * per + (size_t)(q * k), shift, tk,
                               ti);
            memcpy(ok, tk, (size_t)k * 4);
            memcpy(oi, ti, (size_t)k * 8);
        }
        for (int64_t j = 0; j < k; j++) {
            if (oi[j] == -1) ok[j] = is_ip ? -FLT_MAX : FLT_MAX;
            else if (is_ip) ok[j] = -ok[j];
        }
    }
done:
    vdx_free(sd);
    vdx_free(si);
    vdx_free(tk);
    vdx_free(ti);
    return st;
}

/* ---- add, train, reset, reconstruct ------------------------------------------ */

typedef struct add_ctx {
    int64_t n;
    const float *x;
    const vdx_idx_t *ids; /* shards without successive ids: all ids */
} add_ctx;

static vdx_status member_add(job *j) {
    const add_ctx *c = j->ctx;
    const vdx_gpu_multi *m = j->m;
    if (m->kind == VDX_GPU_MULTI_REPLICAS)
        return c->ids ? vdx_index_add_with_ids(m->sub[j->i], c->n, c->x, c->ids)
                      : vdx_index_add(m->sub[j->i], c->n, c->x);
    const int64_t a = c->n * j->i / m->n, b = c->n * (j->i + 1) / m->n;
    if (b == a) return VDX_OK;
    const float *xs = c->x + a * m->base.d;
    if (m->successive) return vdx_index_add(m->sub[j->i], b - a, xs);
    return vdx_index_add_with_ids(m->sub[j->i], b - a, xs, c->ids + a);
}

static vdx_status multi_add(vdx_index *ix, int64_t n, const float *x,
                            const vdx_idx_t *ids) {
    vdx_gpu_multi *m = (vdx_gpu_multi *)ix;
    if (ids && m->successive)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexShards with successive ids numbers its vectors "
                         "itself: use add, or wrap it in IndexIDMap");
    vdx_idx_t *gen = NULL;
    if (!ids && m->kind == VDX_GPU_MULTI_SHARDS && !m->successive) {
        gen = vdx_malloc_array((size_t)n, 8);
        if (!gen) return VDX_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < n; i++) gen[i] = ix->ntotal + i;
        ids = gen;
    }
    add_ctx c = {n, x, ids};
    vdx_status st = run_all(m, member_add, &c, "add");
    vdx_free(gen);
    refresh(m);
    return st;
}

typedef struct train_ctx {
    int64_t n;
    const float *x;
} train_ctx;

static vdx_status member_train(job *j) {
    const train_ctx *c = j->ctx;
    return vdx_index_train(j->m->sub[j->i], c->n, c->x);
}

static vdx_status multi_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_gpu_multi *m = (vdx_gpu_multi *)ix;
    train_ctx c = {n, x};
    vdx_status st = run_all(m, member_train, &c, "train");
    refresh(m);
    return st;
}

static vdx_status multi_reset(vdx_index *ix) {
    vdx_gpu_multi *m = (vdx_gpu_multi *)ix;
    vdx_status st = VDX_OK;
    for (int i = 0; i < m->n && !st; i++) st = vdx_index_reset(m->sub[i]);
    refresh(m);
    return st;
}

static vdx_status multi_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                    float *out) {
    const vdx_gpu_multi *m = (const vdx_gpu_multi *)ix;
    if (m->kind == VDX_GPU_MULTI_REPLICAS)
        return vdx_index_reconstruct(m->sub[0], key, out);
    if (!m->successive) {
        for (int i = 0; i < m->n; i++) {
            vdx_status st = vdx_index_reconstruct(m->sub[i], key, out);
            if (st != VDX_ERR_NOT_FOUND) return st;
        }
        return vdx_raise(VDX_ERR_NOT_FOUND, "reconstruct: id %lld not found",
                         (long long)key);
    }
    int64_t o = 0;
    for (int i = 0; i < m->n; i++) {
        if (key >= o && key < o + m->sub[i]->ntotal)
            return vdx_index_reconstruct(m->sub[i], key - o, out);
        o += m->sub[i]->ntotal;
    }
    return vdx_raise(VDX_ERR_NOT_FOUND,
                     "reconstruct: key %lld is outside [0, ntotal=%lld)",
                     (long long)key, (long long)ix->ntotal);
}

static void multi_destroy(vdx_index *ix) {
    vdx_gpu_multi *m = (vdx_gpu_multi *)ix;
    for (int i = 0; i < m->n; i++) vdx_index_free(m->sub[i]);
    vdx_free(m->sub);
    vdx_free(m);
}

static const vdx_index_ops shards_ops = {
    "IndexShards", multi_train, multi_add,         multi_search, NULL,
    multi_reset,   multi_reconstruct, NULL,        NULL,         multi_destroy};
static const vdx_index_ops replicas_ops = {
    "IndexReplicas", multi_train, multi_add,         multi_search, NULL,
    multi_reset,     multi_reconstruct, NULL,        NULL,         multi_destroy};

vdx_status vdx_gpu_multi_make(int kind, int n, vdx_index **subs,
                              int successive_ids, vdx_index **out) {
    *out = NULL;
    if (n < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "no members for %s",
                         kind == VDX_GPU_MULTI_SHARDS ? "IndexShards"
                                                      : "IndexReplicas");
    for (int i = 1; i < n; i++)
        if (subs[i]->d != subs[0]->d || subs[i]->metric != subs[0]->metric)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "member %d has d=%lld metric %d, member 0 d=%lld "
                             "metric %d",
                             i, (long long)subs[i]->d, (int)subs[i]->metric,
                             (long long)subs[0]->d, (int)subs[0]->metric);
    vdx_gpu_multi *m = vdx_calloc(1, sizeof *m);
    if (!m) return VDX_ERR_OUT_OF_MEMORY;
    m->sub = vdx_malloc_array((size_t)n, sizeof(vdx_index *));
    if (!m->sub) {
        vdx_free(m);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    memcpy(m->sub, subs, (size_t)n * sizeof(vdx_index *));
    m->n = n;
    m->kind = kind;
    m->successive = kind == VDX_GPU_MULTI_SHARDS && successive_ids;
    m->base.ops = kind == VDX_GPU_MULTI_SHARDS ? &shards_ops : &replicas_ops;
    m->base.d = subs[0]->d;
    m->base.metric = subs[0]->metric;
    m->base.metric_arg = subs[0]->metric_arg;
    refresh(m);
    *out = &m->base;
    return VDX_OK;
}
