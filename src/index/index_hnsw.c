/*
 * index_hnsw.c — the HNSW index kinds: IndexHNSWFlat, IndexHNSWSQ and
 * IndexHNSWPQ.  As in FAISS, each wraps a "storage" index that holds the
 * vectors (IndexFlat, IndexScalarQuantizer, IndexPQ) and a graph over their
 * positions (hnsw.c, hnsw_build.c); distances are computed directly on the
 * storage's arrays (flat vectors with the dispatched SIMD kernels, SQ codes
 * with the fused SQ kernels, PQ codes through a per-query ADC table).
 *
 * Ids are positions (FAISS's IndexHNSW has no add_with_ids); remove_ids,
 * which FAISS refuses for HNSW, drops the nodes, repairs the graph and
 * shifts the later ids down exactly as IndexFlat's remove_ids does, so an
 * IndexIDMap / IndexIDMap2 on top keeps user ids stable.
 */
#include <string.h>

#include "hnsw.h"
#include "index_pq.h"
#include "index_sq.h"

static const vdx_index_ops hnsw_flat_ops, hnsw_sq_ops, hnsw_pq_ops,
    hnsw_2level_ops;

int vdx_is_hnsw(const vdx_index *ix) {
    return ix && (ix->ops == &hnsw_flat_ops || ix->ops == &hnsw_sq_ops ||
                  ix->ops == &hnsw_pq_ops || ix->ops == &hnsw_2level_ops);
}

static vdx_index_hnsw *as_hnsw(const vdx_index *ix) {
    return vdx_is_hnsw(ix) ? (vdx_index_hnsw *)ix : NULL;
}

static vdx_status hnsw_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_index_hnsw *h = (vdx_index_hnsw *)ix;
    vdx_status st = vdx_index_train(h->storage, n, x);
    ix->is_trained = h->storage->is_trained;
    return st;
}

static vdx_status hnsw_add(vdx_index *ix, int64_t n, const float *x,
                           const vdx_idx_t *ids) {
    vdx_index_hnsw *h = (vdx_index_hnsw *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s: wrap it in "
                         "IndexIDMap",
                         ix->ops->type_name);
    if (ix->ntotal + n > INT32_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s holds at most 2^31 - 1 vectors (ntotal=%lld, "
                         "adding %lld)",
                         ix->ops->type_name, (long long)ix->ntotal, (long long)n);
    vdx_hnsw *g = &h->g;
    int64_t n0 = g->n;
    vdx_status st = vdx_hnsw_reserve(g, n0 + n);
    if (st) return st;
    st = h->storage->ops->add(h->storage, n, x, NULL);
    if (st) return st;
    for (int64_t i = 0; i < n && !st; i++)
        st = vdx_hnsw_push_node(g, vdx_hnsw_random_level(g));
    if (st) {
        /* no link was made yet: drop the new nodes and vectors */
        vdx_selector *sel = NULL;
        int64_t nr;
        g->n = n0;
        if (!vdx_selector_range(n0, n0 + n, &sel)) {
            h->storage->ops->remove_ids(h->storage, sel, &nr);
            vdx_selector_free(sel);
        }
        return st;
    }
    /* a failed insertion leaves nodes with fewer links, never a dangling
     * one: they are kept (findable through their own links) */
    st = vdx_hnsw_insert(h, n0, x);
    ix->ntotal = g->n;
    if (st == VDX_ERR_INTERRUPTED) {
        /* all or nothing: the new nodes (the last ones, so no id moves)
         * are removed again, and the links made to them repaired */
        vdx_selector *sel = NULL;
        int64_t nr = 0;
        vdx_status rs = vdx_selector_range(n0, n0 + n, &sel);
        if (!rs) rs = ix->ops->remove_ids(ix, sel, &nr);
        vdx_selector_free(sel);
        if (rs) return rs;
        return vdx_raise(VDX_ERR_INTERRUPTED,
                         "%s: add of %lld vectors interrupted; the index "
                         "holds its %lld vectors from before",
                         ix->ops->type_name, (long long)n, (long long)n0);
    }
    return st;
}

static vdx_status hnsw_search(const vdx_index *ix, int64_t n, const float *x,
                              int64_t k, const vdx_search_params *p, float *D,
                              vdx_idx_t *I) {
    return vdx_hnsw_search((const vdx_index_hnsw *)ix, n, x, k, p, D, I);
}

static vdx_status hnsw_range_search(const vdx_index *ix, int64_t n,
                                    const float *x, float radius,
                                    const vdx_search_params *p,
                                    vdx_range_builder *rb) {
    return vdx_hnsw_range_search((const vdx_index_hnsw *)ix, n, x, radius, p, rb);
}

static vdx_status hnsw_reset(vdx_index *ix) {
    vdx_index_hnsw *h = (vdx_index_hnsw *)ix;
    vdx_status st = h->storage->ops->reset(h->storage);
    vdx_hnsw_clear(&h->g);
    ix->ntotal = 0;
    return st;
}

static vdx_status hnsw_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                   float *out) {
    const vdx_index_hnsw *h = (const vdx_index_hnsw *)ix;
    return h->storage->ops->reconstruct(h->storage, key, out);
}

static vdx_status hnsw_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                     int64_t ni, float *out) {
    const vdx_index_hnsw *h = (const vdx_index_hnsw *)ix;
    return h->storage->ops->reconstruct_n(h->storage, i0, ni, out);
}

static vdx_status hnsw_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                  int64_t *nremoved) {
    vdx_index_hnsw *h = (vdx_index_hnsw *)ix;
    /* the graph first (it scores with the storage's vectors), then the
     * storage, which compacts in the same order */
    vdx_status st = vdx_hnsw_remove(h, sel, nremoved);
    if (st || *nremoved == 0) return st;
    int64_t nr2 = 0;
    st = h->storage->ops->remove_ids(h->storage, sel, &nr2);
    if (!st && nr2 != *nremoved)
        st = vdx_raise(VDX_ERR_INTERNAL,
                       "remove_ids: graph removed %lld nodes, storage %lld",
                       (long long)*nremoved, (long long)nr2);
    ix->ntotal = h->g.n;
    return st;
}

static void hnsw_destroy(vdx_index *ix) {
    vdx_index_hnsw *h = (vdx_index_hnsw *)ix;
    vdx_index_free(h->storage);
    vdx_hnsw_release(&h->g);
    vdx_free(h);
}

#define HNSW_OPS(name)                                                        \
    {name,            hnsw_train,       hnsw_add,          hnsw_search,       \
     hnsw_range_search, hnsw_reset,     hnsw_reconstruct,  hnsw_reconstruct_n,\
     hnsw_remove_ids, hnsw_destroy}

static const vdx_index_ops hnsw_flat_ops = HNSW_OPS("IndexHNSWFlat");
static const vdx_index_ops hnsw_sq_ops = HNSW_OPS("IndexHNSWSQ");
static const vdx_index_ops hnsw_pq_ops = HNSW_OPS("IndexHNSWPQ");
/* IndexHNSW2Level (index_2layer.c builds it): the plain HNSW search
 * over an Index2Layer storage */
static const vdx_index_ops hnsw_2level_ops = HNSW_OPS("IndexHNSW2Level");

vdx_status vdx_hnsw_make(vdx_index *storage, int kind, int M,
                         vdx_index_hnsw **out) {
    *out = NULL;
    if (M < VDX_HNSW_M_MIN || M > VDX_HNSW_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "HNSW: M=%d must be in %d..%d", M, VDX_HNSW_M_MIN,
                         VDX_HNSW_M_MAX);
    vdx_index_hnsw *h = vdx_calloc(1, sizeof *h);
    if (!h) return VDX_ERR_OUT_OF_MEMORY;
    h->base.ops = kind == VDX_HNSW_FLAT ? &hnsw_flat_ops
                  : kind == VDX_HNSW_SQ ? &hnsw_sq_ops
                  : kind == VDX_HNSW_2L ? &hnsw_2level_ops
                                        : &hnsw_pq_ops;
    h->base.d = storage->d;
    h->base.metric = storage->metric;
    h->base.is_trained = storage->is_trained;
    h->kind = kind;
    h->storage = storage;
    if (kind == VDX_HNSW_FLAT && vdx_is_flat(storage))
        vdx_flat_drop_norms((vdx_flat *)storage);
    vdx_hnsw_init(&h->g, M);
    *out = h;
    return VDX_OK;
}

static vdx_status finish_new(vdx_status st, vdx_index *storage, int kind,
                             int M, vdx_index **out) {
    if (st) return st;
    vdx_index_hnsw *h = NULL;
    if ((st = vdx_hnsw_make(storage, kind, M, &h))) {
        vdx_index_free(storage);
        return st;
    }
    *out = &h->base;
    return VDX_OK;
}

vdx_status vdx_index_hnsw_flat_new(int64_t d, int M, vdx_metric metric,
                                   vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_index *s = NULL;
    if (M < VDX_HNSW_M_MIN || M > VDX_HNSW_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "HNSW: M=%d must be in %d..%d", M, VDX_HNSW_M_MIN,
                         VDX_HNSW_M_MAX);
    vdx_status st = vdx_index_flat_new(d, metric, &s);
    return finish_new(st, s, VDX_HNSW_FLAT, M, out);
}

vdx_status vdx_index_hnsw_sq_new(int64_t d, int qtype, int M,
                                 vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_index *s = NULL;
    if (M < VDX_HNSW_M_MIN || M > VDX_HNSW_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "HNSW: M=%d must be in %d..%d", M, VDX_HNSW_M_MIN,
                         VDX_HNSW_M_MAX);
    vdx_status st = vdx_index_sq_new(d, qtype, metric, &s);
    return finish_new(st, s, VDX_HNSW_SQ, M, out);
}

vdx_status vdx_index_hnsw_pq_new(int64_t d, int64_t pq_m, int M, int pq_nbits,
                                 vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_index *s = NULL;
    if (M < VDX_HNSW_M_MIN || M > VDX_HNSW_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "HNSW: M=%d must be in %d..%d", M, VDX_HNSW_M_MIN,
                         VDX_HNSW_M_MAX);
    vdx_status st = vdx_index_pq_new(d, pq_m, pq_nbits, metric, &s);
    return finish_new(st, s, VDX_HNSW_PQ, M, out);
}

int vdx_index_is_hnsw(const vdx_index *ix) { return vdx_is_hnsw(ix); }

vdx_index *vdx_index_hnsw_storage(const vdx_index *ix) {
    vdx_index_hnsw *h = as_hnsw(ix);
    return h ? h->storage : NULL;
}

int vdx_index_hnsw_M(const vdx_index *ix) {
    vdx_index_hnsw *h = as_hnsw(ix);
    return h ? h->g.M : 0;
}
int vdx_index_hnsw_ef_construction(const vdx_index *ix) {
    vdx_index_hnsw *h = as_hnsw(ix);
    return h ? h->g.efConstruction : 0;
}
int vdx_index_hnsw_ef_search(const vdx_index *ix) {
    vdx_index_hnsw *h = as_hnsw(ix);
    return h ? h->g.efSearch : 0;
}
int vdx_index_hnsw_max_level(const vdx_index *ix) {
    vdx_index_hnsw *h = as_hnsw(ix);
    return h ? h->g.max_level : -1;
}
int64_t vdx_index_hnsw_entry_point(const vdx_index *ix) {
    vdx_index_hnsw *h = as_hnsw(ix);
    return h ? h->g.entry_point : -1;
}

static vdx_status set_ef(vdx_index *ix, int ef, int which) {
    vdx_clear_error();
    vdx_index_hnsw *h = as_hnsw(ix);
    if (!h)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: not an HNSW index",
                         which ? "set_ef_search" : "set_ef_construction");
    if (ef < 1 || ef > VDX_HNSW_EF_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s=%d must be in 1..%d",
                         which ? "efSearch" : "efConstruction", ef,
                         VDX_HNSW_EF_MAX);
    if (which) h->g.efSearch = ef;
    else h->g.efConstruction = ef;
    return VDX_OK;
}

vdx_status vdx_index_hnsw_set_ef_construction(vdx_index *ix, int ef) {
    return set_ef(ix, ef, 0);
}
vdx_status vdx_index_hnsw_set_ef_search(vdx_index *ix, int ef) {
    return set_ef(ix, ef, 1);
}

vdx_status vdx_index_hnsw_node_level(const vdx_index *ix, int64_t i,
                                     int *level) {
    vdx_clear_error();
    vdx_index_hnsw *h = as_hnsw(ix);
    if (!h || !level) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an HNSW index");
    if (i < 0 || i >= h->g.n)
        return vdx_raise(VDX_ERR_NOT_FOUND, "node %lld is outside [0, %lld)",
                         (long long)i, (long long)h->g.n);
    *level = h->g.levels[i];
    return VDX_OK;
}

vdx_status vdx_index_hnsw_neighbors(const vdx_index *ix, int64_t i, int level,
                                    int64_t *out, int *count) {
    vdx_clear_error();
    vdx_index_hnsw *h = as_hnsw(ix);
    if (!h || !out || !count)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an HNSW index");
    if (i < 0 || i >= h->g.n)
        return vdx_raise(VDX_ERR_NOT_FOUND, "node %lld is outside [0, %lld)",
                         (long long)i, (long long)h->g.n);
    if (level < 0 || level > h->g.levels[i])
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "level %d is outside node %lld's levels 0..%d", level,
                         (long long)i, h->g.levels[i]);
    int32_t buf[1 + 2 * VDX_HNSW_M_MAX];
    const int32_t *row = vdx_hnsw_row_get(&h->g, i, level, buf);
    for (int j = 0; j < row[0]; j++) out[j] = row[1 + j];
    *count = row[0];
    return VDX_OK;
}
