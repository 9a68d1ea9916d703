/*
 * refine.c — IndexRefine and IndexRefineFlat: a base index proposes
 * k * k_factor candidates, which are re-ranked with exact distances to the
 * vectors of a refine index (a flat index holding the raw vectors, or any
 * index that can reconstruct).  Both indexes receive every added vector, so
 * positions 0..ntotal-1 agree between them.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_internal.h"
#include "index_sq.h"
#include "common/threads.h"
#include "common/topk.h"
#include "simd/kernels.h"

typedef struct vdx_refine {
    vdx_index base;
    vdx_index *base_index;   /* owned */
    vdx_index *refine_index; /* owned */
    float k_factor;
} vdx_refine;

static const vdx_index_ops refine_ops, refine_flat_ops;

int vdx_is_refine(const vdx_index *ix) {
    return ix && (ix->ops == &refine_ops || ix->ops == &refine_flat_ops);
}

/* The base's parameters: the caller's base_params, else defaults with the
 * caller's selector (search and range search alike). */
static void base_params(const vdx_search_params *p, vdx_search_params *bp) {
    if (p && p->base_params) {
        *bp = *p->base_params;
    } else {
        vdx_search_params_init(bp);
        if (p) bp->sel = p->sel;
    }
}

static vdx_status refine_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_refine *r = (vdx_refine *)ix;
    vdx_status st;
    if (!r->base_index->is_trained && r->base_index->ops->train &&
        (st = r->base_index->ops->train(r->base_index, n, x)))
        return st;
    if (!r->refine_index->is_trained && r->refine_index->ops->train &&
        (st = r->refine_index->ops->train(r->refine_index, n, x)))
        return st;
    ix->is_trained = r->base_index->is_trained && r->refine_index->is_trained;
    return VDX_OK;
}

static vdx_status refine_add(vdx_index *ix, int64_t n, const float *x,
                             const vdx_idx_t *ids) {
    vdx_refine *r = (vdx_refine *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s",
                         ix->ops->type_name);
    vdx_status st = r->base_index->ops->add(r->base_index, n, x, NULL);
    if (st) return st;
    if ((st = r->refine_index->ops->add(r->refine_index, n, x, NULL)))
        return st;
    ix->ntotal = r->refine_index->ntotal;
    return VDX_OK;
}

/* Requests the cache lines of rows ids[0 .. n) (-1 and out-of-range
 * ids skipped). */
static void prefetch_rows(const uint8_t *rows, size_t row_bytes,
                          const vdx_idx_t *ids, int64_t n, int64_t ntotal) {
    for (int64_t j = 0; j < n; j++) {
        vdx_idx_t id = ids[j];
        if (id < 0 || id >= ntotal) continue;
        const uint8_t *p = rows + (size_t)id * row_bytes;
        for (size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(p + o);
        /* a row not aligned on 64 bytes may reach one more line */
        __builtin_prefetch(p + row_bytes - 1);
    }
}

static vdx_status refine_search(const vdx_index *ix, int64_t n, const float *x,
                                int64_t k, const vdx_search_params *p,
                                float *D, vdx_idx_t *I) {
    const vdx_refine *r = (const vdx_refine *)ix;
    float kf = p && p->k_factor > 0 ? p->k_factor : r->k_factor;
    double kbd = (double)k * (double)kf;
    if (!(kbd >= (double)k))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: k_factor=%g gives fewer than k=%lld candidates",
                         ix->ops->type_name, (double)kf, (long long)k);
    if (kbd > (double)VDX_MAX_K) kbd = (double)VDX_MAX_K;
    int64_t kb = (int64_t)kbd;
    /* more candidates than stored vectors only adds -1 padding */
    if (kb > k && kb > ix->ntotal) kb = VDX_MAX(k, ix->ntotal);
    if (n > INT64_MAX / 8 / kb)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: n * k * k_factor is too large");

    /* the base's distances are replaced here: it may return approximate
     * ones (candidates_only) */
    vdx_search_params bp;
    base_params(p, &bp);
    bp.candidates_only = 1;
    const vdx_search_params *bpp = &bp;
    float *bd = vdx_malloc_array((size_t)(n * kb), sizeof(float));
    vdx_idx_t *bi = vdx_malloc_array((size_t)(n * kb), sizeof(vdx_idx_t));
    if (!bd || !bi) {
        vdx_free(bd);
        vdx_free(bi);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    vdx_status st =
        r->base_index->ops->search(r->base_index, n, x, kb, bpp, bd, bi);
    if (st) goto done;

    const vdx_index *ri = r->refine_index;
    const float *xb = vdx_is_flat(ri) ? ((const vdx_flat *)ri)->xb : NULL;
    /* an SQ refine index scores its codes with the fused SQ kernels */
    const vdx_index_sq *rs = vdx_is_index_sq(ri) ? (const vdx_index_sq *)(const void *)ri : NULL;
    const vdx_sq_kernels *SK = vdx_sq_kernels_get();
    const vdx_kernels *kern = vdx_kernels_get();
    int is_ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    size_t d = (size_t)ix->d;
    float *tmp = NULL;
    if (!xb) {
        tmp = vdx_malloc_array((size_t)vdx_nthreads() * d, sizeof(float));
        if (!tmp) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
    }
    /* the rows scored for a query are scattered over the refine index:
     * their cache lines are requested for the next query while this one
     * is scored (30 candidates of d = 64 cost ~3 us of memory latency
     * one after the other) */
    const uint8_t *rows = xb ? (const uint8_t *)xb
                          : rs ? rs->codes : NULL;
    const size_t row_bytes = xb ? d * sizeof(float) : rs ? rs->sq.code_size : 0;
    vdx_status err = VDX_OK;
    /* kb candidates a query, a distance of d/8 SIMD steps (or a random
     * memory access) each */
    int nth = vdx_nthreads_for((double)n * (double)kb * ((double)d / 8 + 64));
#pragma omp parallel for schedule(dynamic, 16) if (n > 1 && nth > 1) num_threads(nth)
    for (int64_t q = 0; q < n; q++) {
        if (rows) {
            /* the first query of a chunk fetches its own rows too */
            int64_t q0 = q == 0 || q % 16 == 0 ? q : q + 1;
            for (int64_t qq = q0; qq <= q + 1 && qq < n; qq++)
                prefetch_rows(rows, row_bytes, bi + qq * kb, kb, ri->ntotal);
        }
        float *buf = tmp ? tmp + (size_t)omp_get_thread_num() * d : NULL;
        const float *xq = x + (size_t)q * d;
        float *Dq = D + q * k;
        vdx_idx_t *Iq = I + q * k;
        vdx_heap_init(k, Dq, Iq);
        vdx_sq_query qq;
        if (rs) vdx_sq_query_init(&rs->sq, is_ip, xq, buf, &qq);
        for (int64_t j = 0; j < kb; j++) {
            vdx_idx_t id = bi[q * kb + j];
            if (id < 0 || id >= ri->ntotal) continue;
            const float *v;
            if (rs) {
                float key;
                vdx_sq_score(&rs->sq, SK, is_ip, &qq,
                             rs->codes + (size_t)id * rs->sq.code_size, 1, &key);
                vdx_heap_push(k, Dq, Iq, key, id);
                continue;
            }
            if (xb) {
                v = xb + (size_t)id * d;
            } else {
                if (ri->ops->reconstruct(ri, id, buf)) {
#pragma omp critical(vdx_refine_err)
                    err = VDX_ERR_INTERNAL;
                    continue;
                }
                v = buf;
            }
            float key = is_ip ? -kern->inner_product(xq, v, d)
                              : kern->l2sqr(xq, v, d);
            vdx_heap_push(k, Dq, Iq, key, id);
        }
        vdx_topk_finish(k, Dq, Iq, is_ip, 0.0f);
    }
    vdx_free(tmp);
    if (err)
        st = vdx_raise(err, "%s: the refine index %s cannot reconstruct",
                       ix->ops->type_name, ri->ops->type_name);
done:
    vdx_free(bd);
    vdx_free(bi);
    return st;
}

/* Range search as FAISS's IndexRefine::range_search: the base index runs
 * with radius * k_factor (results land in rb directly), then each hit's
 * distance is replaced by the exact one from the refine index and the hits
 * outside the requested radius are dropped (the base's approximate
 * distances can put a vector on the wrong side of it).  For a similarity
 * metric radius * k_factor need not widen the search: as in FAISS it is the
 * caller's choice. */
static vdx_status refine_range_search(const vdx_index *ix, int64_t n,
                                      const float *x, float radius,
                                      const vdx_search_params *p,
                                      vdx_range_builder *rb) {
    const vdx_refine *r = (const vdx_refine *)ix;
    const vdx_index *b = r->base_index, *ri = r->refine_index;
    if (!b->ops->range_search)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s.range_search: the base index %s has no range "
                         "search", ix->ops->type_name, b->ops->type_name);
    float kf = p && p->k_factor > 0 ? p->k_factor : r->k_factor;
    vdx_search_params bp;
    base_params(p, &bp);
    vdx_status st = b->ops->range_search(b, n, x, radius * kf, &bp, rb);
    if (st) return st;

    const float *xb = vdx_is_flat(ri) ? ((const vdx_flat *)ri)->xb : NULL;
    const vdx_kernels *kern = vdx_kernels_get();
    int is_ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    size_t d = (size_t)ix->d;
    float *tmp = NULL;
    if (!xb) {
        tmp = vdx_malloc_array((size_t)vdx_nthreads() * d, sizeof(float));
        if (!tmp) return VDX_ERR_OUT_OF_MEMORY;
    }
    vdx_status err = VDX_OK;
    int nth = vdx_nthreads_for((double)n * 64.0 * ((double)d / 8 + 64));
#pragma omp parallel for schedule(dynamic, 16) if (n > 1 && nth > 1) num_threads(nth)
    for (int64_t q = 0; q < n; q++) {
        float *buf = tmp ? tmp + (size_t)omp_get_thread_num() * d : NULL;
        const float *xq = x + (size_t)q * d;
        int64_t w = 0;
        for (int64_t j = 0; j < rb->counts[q]; j++) {
            vdx_idx_t id = rb->lab[q][j];
            if (id < 0 || id >= ri->ntotal) continue;
            const float *v = xb ? xb + (size_t)id * d : buf;
            if (!xb && ri->ops->reconstruct(ri, id, buf)) {
#pragma omp critical(vdx_refine_err)
                err = VDX_ERR_INTERNAL;
                continue;
            }
            float dis = is_ip ? kern->inner_product(xq, v, d)
                              : kern->l2sqr(xq, v, d);
            if (is_ip ? dis > radius : dis < radius) {
                rb->lab[q][w] = id;
                rb->dist[q][w] = dis;
                w++;
            }
        }
        rb->counts[q] = w;
    }
    vdx_free(tmp);
    if (err)
        return vdx_raise(err, "%s: the refine index %s cannot reconstruct",
                         ix->ops->type_name, ri->ops->type_name);
    return VDX_OK;
}

static vdx_status refine_reset(vdx_index *ix) {
    vdx_refine *r = (vdx_refine *)ix;
    vdx_status st = r->base_index->ops->reset(r->base_index);
    if (st) return st;
    if ((st = r->refine_index->ops->reset(r->refine_index))) return st;
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status refine_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                     float *out) {
    const vdx_refine *r = (const vdx_refine *)ix;
    return vdx_index_reconstruct(r->refine_index, key, out);
}

static vdx_status refine_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                       int64_t ni, float *out) {
    const vdx_refine *r = (const vdx_refine *)ix;
    return vdx_index_reconstruct_n(r->refine_index, i0, ni, out);
}

/* Only when both indexes number vectors by position and compact in order
 * on removal (IVF keeps ids, so positions would drift apart). */
static vdx_status refine_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                    int64_t *nremoved) {
    vdx_refine *r = (vdx_refine *)ix;
    vdx_index *b = r->base_index, *f = r->refine_index;
    if (vdx_index_is_ivf(b) || vdx_index_is_ivf(f) || !b->ops->remove_ids ||
        !f->ops->remove_ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "remove_ids is not supported by %s over %s and %s",
                         ix->ops->type_name, b->ops->type_name,
                         f->ops->type_name);
    int64_t nb = 0, nf = 0;
    vdx_status st = b->ops->remove_ids(b, sel, &nb);
    if (st) return st;
    if ((st = f->ops->remove_ids(f, sel, &nf))) return st;
    if (nb != nf || b->ntotal != f->ntotal)
        return vdx_raise(VDX_ERR_INTERNAL,
                         "remove_ids: base and refine indexes disagree");
    ix->ntotal = f->ntotal;
    *nremoved = nf;
    return VDX_OK;
}

static void refine_destroy(vdx_index *ix) {
    vdx_refine *r = (vdx_refine *)ix;
    vdx_index_free(r->base_index);
    vdx_index_free(r->refine_index);
    vdx_free(r);
}

static const vdx_index_ops refine_ops = {
    "IndexRefine",      refine_train,         refine_add,
    refine_search,      refine_range_search,  refine_reset,
    refine_reconstruct, refine_reconstruct_n, refine_remove_ids,
    refine_destroy};
static const vdx_index_ops refine_flat_ops = {
    "IndexRefineFlat",  refine_train,         refine_add,
    refine_search,      refine_range_search,  refine_reset,
    refine_reconstruct, refine_reconstruct_n, refine_remove_ids,
    refine_destroy};

vdx_status vdx_refine_make(vdx_index *base, vdx_index *refine, int flat,
                           vdx_index **out) {
    vdx_refine *r = vdx_calloc(1, sizeof *r);
    if (!r) return VDX_ERR_OUT_OF_MEMORY;
    r->base.ops = flat ? &refine_flat_ops : &refine_ops;
    r->base.d = base->d;
    r->base.ntotal = refine->ntotal;
    r->base.is_trained = base->is_trained && refine->is_trained;
    r->base.metric = base->metric;
    r->base.metric_arg = base->metric_arg;
    r->base_index = base;
    r->refine_index = refine;
    r->k_factor = 1.0f;
    *out = &r->base;
    return VDX_OK;
}

vdx_status vdx_index_refine_new(vdx_index *base, vdx_index *refine,
                                vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!base || !refine)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefine: base or refine index is NULL");
    if (base == refine)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefine: base and refine are the same index");
    if (base->d != refine->d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefine: base d=%lld, refine d=%lld",
                         (long long)base->d, (long long)refine->d);
    if (base->metric != refine->metric)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefine: base and refine metrics differ");
    if (base->ntotal != refine->ntotal)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefine: base ntotal=%lld, refine ntotal=%lld",
                         (long long)base->ntotal, (long long)refine->ntotal);
    if (!refine->ops->reconstruct && !vdx_is_flat(refine))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefine: the refine index %s cannot reconstruct",
                         refine->ops->type_name);
    return vdx_refine_make(base, refine, 0, out);
}

vdx_status vdx_index_refine_flat_new(vdx_index *base, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!base)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefineFlat: base index is NULL");
    if (base->ntotal != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexRefineFlat: the base index must be empty "
                         "(ntotal=%lld)",
                         (long long)base->ntotal);
    vdx_index *f = NULL;
    vdx_status st = vdx_index_flat_new(base->d, base->metric, &f);
    if (st) return st;
    f->metric_arg = base->metric_arg;
    if ((st = vdx_refine_make(base, f, 1, out))) vdx_index_free(f);
    return st;
}

float vdx_index_refine_k_factor(const vdx_index *ix) {
    return vdx_is_refine(ix) ? ((const vdx_refine *)ix)->k_factor : 0.0f;
}

vdx_status vdx_index_refine_set_k_factor(vdx_index *ix, float k_factor) {
    vdx_clear_error();
    if (!vdx_is_refine(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_k_factor: the index is not an IndexRefine");
    if (!(k_factor >= 1.0f) || !isfinite(k_factor))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "k_factor=%g must be a finite number >= 1",
                         (double)k_factor);
    ((vdx_refine *)ix)->k_factor = k_factor;
    return VDX_OK;
}

vdx_index *vdx_index_refine_base(const vdx_index *ix) {
    return vdx_is_refine(ix) ? ((const vdx_refine *)ix)->base_index : NULL;
}

vdx_index *vdx_index_refine_refine(const vdx_index *ix) {
    return vdx_is_refine(ix) ? ((const vdx_refine *)ix)->refine_index : NULL;
}
