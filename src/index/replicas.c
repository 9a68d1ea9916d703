/*
 * replicas.c — IndexReplicas (FAISS's name and semantics): every replica
 * holds the same vectors; add / train / remove go to all of them, and a
 * search batch is cut into count() consecutive slices of
 * ceil(n / count()) queries, slice r answered by replica r (in parallel
 * when threaded, FAISS's default for replicas).  Unlike FAISS, the call's
 * search parameters reach every replica (FAISS refuses them).  The
 * runner, checks and worker threads are those of shards.c.
 */
#include <string.h>

#include "shards.h"

typedef struct {
    int64_t n, k, per;
    const float *x;
    const vdx_search_params *p;
    float *D;
    vdx_idx_t *I;
    const vdx_idx_t *ids;
    float radius;
    vdx_range_result **rr;
    const vdx_selector *sel;
    int64_t *removed;
} rep_ctx;

static vdx_status need(const vdx_shards *s, const char *what) {
    if (s->n > 0) return VDX_OK;
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                     "IndexReplicas %s: it has no replicas (add one with "
                     "add_replica)",
                     what);
}

static vdx_status rep_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "train");
    if (st) return st;
    return vdx_shards_train_all(s, n, x);
}

static vdx_status add_one(const vdx_shards *s, int64_t i, void *vc) {
    const rep_ctx *c = vc;
    if (c->ids) return vdx_index_add_with_ids(s->sub[i], c->n, c->x, c->ids);
    return vdx_index_add(s->sub[i], c->n, c->x);
}

static vdx_status rep_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "add");
    if (st) return st;
    rep_ctx c = {0};
    c.n = n;
    c.x = x;
    c.ids = ids;
    st = vdx_shards_run(s, add_one, &c, "add");
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

static vdx_status search_one(const vdx_shards *s, int64_t i, void *vc) {
    const rep_ctx *c = vc;
    int64_t q0 = i * c->per;
    if (q0 >= c->n) return VDX_OK;
    int64_t m = VDX_MIN(c->per, c->n - q0);
    return vdx_index_search(s->sub[i], m, c->x + q0 * s->base.d, c->k, c->p,
                            c->D + q0 * c->k, c->I + q0 * c->k);
}

static vdx_status rep_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *p, float *D,
                             vdx_idx_t *I) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "search");
    if (st) return st;
    rep_ctx c = {0};
    c.n = n;
    c.k = k;
    c.per = (n + s->n - 1) / s->n;
    c.x = x;
    c.p = p;
    c.D = D;
    c.I = I;
    return vdx_shards_run(s, search_one, &c, "search");
}

static vdx_status range_one(const vdx_shards *s, int64_t i, void *vc) {
    const rep_ctx *c = vc;
    int64_t q0 = i * c->per;
    if (q0 >= c->n) return VDX_OK;
    int64_t m = VDX_MIN(c->per, c->n - q0);
    return vdx_index_range_search(s->sub[i], m, c->x + q0 * s->base.d,
                                  c->radius, c->p, &c->rr[i]);
}

static vdx_status rep_range_search(const vdx_index *ix, int64_t n,
                                   const float *x, float radius,
                                   const vdx_search_params *p,
                                   vdx_range_builder *rb) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "range_search");
    if (st) return st;
    rep_ctx c = {0};
    c.n = n;
    c.per = (n + s->n - 1) / s->n;
    c.x = x;
    c.p = p;
    c.radius = radius;
    c.rr = vdx_calloc((size_t)s->n, sizeof *c.rr);
    if (!c.rr) return VDX_ERR_OUT_OF_MEMORY;
    st = vdx_shards_run(s, range_one, &c, "range_search");
    for (int64_t i = 0; !st && i < s->n; i++) {
        const vdx_range_result *r = c.rr[i];
        if (!r) continue;
        for (int64_t q = 0; q < r->nq && !st; q++)
            for (int64_t j = r->lims[q]; j < r->lims[q + 1] && !st; j++)
                st = vdx_range_builder_add(rb, i * c.per + q, r->distances[j],
                                           r->labels[j]);
    }
    for (int64_t i = 0; i < s->n; i++) vdx_range_result_free(c.rr[i]);
    vdx_free(c.rr);
    return st;
}

/* FAISS reads reconstructions from the first replica */
static vdx_status rep_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                  float *out) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "reconstruct");
    if (st) return st;
    return vdx_index_reconstruct(s->sub[0], key, out);
}

static vdx_status rep_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                    int64_t ni, float *out) {
    const vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "reconstruct_n");
    if (st) return st;
    return vdx_index_reconstruct_n(s->sub[0], i0, ni, out);
}

static vdx_status remove_one(const vdx_shards *s, int64_t i, void *vc) {
    const rep_ctx *c = vc;
    return vdx_index_remove_ids(s->sub[i], c->sel, &c->removed[i]);
}

static vdx_status rep_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                 int64_t *nremoved) {
    vdx_shards *s = vdx_as_shards(ix);
    vdx_status st = need(s, "remove_ids");
    if (st) return st;
    rep_ctx c = {0};
    c.sel = sel;
    c.removed = vdx_calloc((size_t)s->n, sizeof *c.removed);
    if (!c.removed) return VDX_ERR_OUT_OF_MEMORY;
    st = vdx_shards_run(s, remove_one, &c, "remove_ids");
    *nremoved = c.removed[0];
    for (int64_t i = 1; !st && i < s->n; i++)
        if (c.removed[i] != c.removed[0])
            st = vdx_raise(VDX_ERR_INTERNAL,
                           "IndexReplicas remove_ids: replica %lld removed "
                           "%lld vectors, replica 0 %lld (the replicas held "
                           "different vectors)",
                           (long long)i, (long long)c.removed[i],
                           (long long)c.removed[0]);
    vdx_free(c.removed);
    vdx_status st2 = vdx_shards_sync(s);
    return st ? st : st2;
}

const vdx_index_ops vdx_replicas_ops = {
    "IndexReplicas",  rep_train,        rep_add,
    rep_search,       rep_range_search, vdx_shards_reset,
    rep_reconstruct,  rep_reconstruct_n,
    rep_remove_ids,   vdx_shards_destroy};

vdx_status vdx_index_replicas_new(int64_t d, int threaded, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    return vdx_shards_make(VDX_REPLICAS, d, threaded, 0, out);
}
