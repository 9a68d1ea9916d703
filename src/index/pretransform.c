/*
 * pretransform.c — IndexPreTransform: a chain of vector transforms (PCA,
 * OPQ, random rotations, normalisation ...; src/quant/transform.h) applied
 * to every vector before a sub-index sees it.  The sub-index works in the
 * chain's output dimension; ids, selectors and search parameters are the
 * sub-index's own, so they pass through unchanged (params->base_params, when
 * set, replaces params for the sub-index, as FAISS's
 * SearchParametersPreTransform.index_params).
 *
 * Training follows FAISS: the transforms that are not trained yet are
 * trained in chain order, each on the training vectors transformed by the
 * ones before it, then the sub-index on the output of the whole chain.
 * Reconstruction reverses the chain (only orthonormal linear transforms,
 * centring and normalisation can be reversed; the last loses the norm).
 */
#include <string.h>

#include "pretransform.h"
#include "common/threads.h"
#include "quant/transform.h"

typedef struct vdx_pretransform {
    vdx_index base;
    vdx_vt **chain; /* owned, nchain entries */
    int64_t nchain;
    vdx_index *index; /* owned */
} vdx_pretransform;

static const vdx_index_ops pt_ops;

int vdx_is_pretransform(const vdx_index *ix) {
    return ix && ix->ops == &pt_ops;
}

static void update_trained(vdx_pretransform *p) {
    int t = p->index->is_trained;
    for (int64_t i = 0; i < p->nchain; i++) t = t && p->chain[i]->is_trained;
    p->base.is_trained = t;
}

/* Applies chain[0..upto) to x; *out is x itself (nothing applied) or a new
 * array the caller frees (*owned = 1). */
static vdx_status apply_chain(const vdx_pretransform *p, int64_t upto,
                              int64_t n, const float *x, const float **out,
                              int *owned) {
    *out = x;
    *owned = 0;
    const float *cur = x;
    float *prev = NULL;
    for (int64_t i = 0; i < upto; i++) {
        const vdx_vt *vt = p->chain[i];
        float *y = vdx_malloc_array((size_t)n, (size_t)vt->d_out * sizeof(float));
        if (!y) {
            vdx_free(prev);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        vdx_status st = vdx_vt_apply_internal(vt, n, cur, y);
        vdx_free(prev);
        if (st) {
            vdx_free(y);
            return st;
        }
        prev = y;
        cur = y;
    }
    *out = cur;
    *owned = prev != NULL;
    return VDX_OK;
}

static vdx_status pt_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_pretransform *p = (vdx_pretransform *)ix;
    int64_t last = -1; /* last element (nchain = the sub-index) to train */
    if (!p->index->is_trained) last = p->nchain;
    else
        for (int64_t i = p->nchain - 1; i >= 0; i--)
            if (!p->chain[i]->is_trained) {
                last = i;
                break;
            }
    const float *cur = x;
    float *owned = NULL;
    vdx_status st = VDX_OK;
    for (int64_t i = 0; i <= last; i++) {
        if (i < p->nchain) {
            vdx_vt *vt = p->chain[i];
            if (!vt->is_trained) {
                if (n < 1 && vt->kind != VDX_VT_RR && vt->kind != VDX_VT_NORM) {
                    st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                   "IndexPreTransform: training transform %lld "
                                   "needs at least one vector",
                                   (long long)i);
                    break;
                }
                if ((st = vdx_vt_train_internal(vt, n, cur))) break;
            }
        } else {
            if (p->index->ops->train &&
                (st = p->index->ops->train(p->index, n, cur)))
                break;
            break;
        }
        if (i == last) break;
        float *y = vdx_malloc_array((size_t)n, (size_t)p->chain[i]->d_out * sizeof(float));
        if (!y) {
            st = VDX_ERR_OUT_OF_MEMORY;
            break;
        }
        if ((st = vdx_vt_apply_internal(p->chain[i], n, cur, y))) {
            vdx_free(y);
            break;
        }
        vdx_free(owned);
        owned = y;
        cur = y;
    }
    vdx_free(owned);
    update_trained(p);
    return st;
}

static vdx_status pt_add(vdx_index *ix, int64_t n, const float *x,
                         const vdx_idx_t *ids) {
    vdx_pretransform *p = (vdx_pretransform *)ix;
    if (ids && vdx_is_flat(p->index)) /* index.c's rule for flat */
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s: wrap it in "
                         "IndexIDMap",
                         p->index->ops->type_name);
    const float *xt;
    int owned;
    vdx_status st = apply_chain(p, p->nchain, n, x, &xt, &owned);
    if (st) return st;
    st = p->index->ops->add(p->index, n, xt, ids);
    if (owned) vdx_free((void *)xt);
    ix->ntotal = p->index->ntotal;
    return st;
}

static const vdx_search_params *sub_params(const vdx_search_params *p) {
    return p && p->base_params ? p->base_params : p;
}

static vdx_status pt_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *prm, float *D,
                            vdx_idx_t *I) {
    const vdx_pretransform *p = (const vdx_pretransform *)ix;
    const float *xt;
    int owned;
    vdx_status st = apply_chain(p, p->nchain, n, x, &xt, &owned);
    if (st) return st;
    st = p->index->ops->search(p->index, n, xt, k, sub_params(prm), D, I);
    if (owned) vdx_free((void *)xt);
    return st;
}

static vdx_status pt_range_search(const vdx_index *ix, int64_t n,
                                  const float *x, float radius,
                                  const vdx_search_params *prm,
                                  vdx_range_builder *rb) {
    const vdx_pretransform *p = (const vdx_pretransform *)ix;
    if (!p->index->ops->range_search)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "range_search is not supported by %s",
                         p->index->ops->type_name);
    const float *xt;
    int owned;
    vdx_status st = apply_chain(p, p->nchain, n, x, &xt, &owned);
    if (st) return st;
    st = p->index->ops->range_search(p->index, n, xt, radius, sub_params(prm),
                                     rb);
    if (owned) vdx_free((void *)xt);
    return st;
}

static vdx_status pt_reset(vdx_index *ix) {
    vdx_pretransform *p = (vdx_pretransform *)ix;
    vdx_status st = p->index->ops->reset(p->index);
    ix->ntotal = p->index->ntotal;
    return st;
}

static vdx_status check_reversible(const vdx_pretransform *p) {
    for (int64_t i = 0; i < p->nchain; i++)
        if (!vdx_vt_reversible(p->chain[i]))
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "IndexPreTransform: reconstruct needs reversible "
                             "transforms; chain element %lld (%s) is not "
                             "orthonormal",
                             (long long)i, vdx_vt_type_name(p->chain[i]));
    return VDX_OK;
}

/* out (ni x d) = the chain reversed on y (ni x sub d); y is consumed. */
static vdx_status reverse_chain(const vdx_pretransform *p, int64_t ni,
                                float *y, float *out) {
    float *cur = y;
    for (int64_t i = p->nchain - 1; i >= 0; i--) {
        const vdx_vt *vt = p->chain[i];
        float *dst = i == 0 ? out
                            : vdx_malloc_array((size_t)ni,
                                               (size_t)vt->d_in * sizeof(float));
        if (!dst) {
            if (cur != y) vdx_free(cur);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        vdx_status st = vdx_vt_reverse_internal(vt, ni, cur, dst);
        if (cur != y) vdx_free(cur);
        if (st) {
            if (dst != out) vdx_free(dst);
            return st;
        }
        cur = dst;
    }
    if (p->nchain == 0)
        memcpy(out, y, (size_t)ni * (size_t)p->base.d * sizeof(float));
    return VDX_OK;
}

static vdx_status pt_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                   int64_t ni, float *out) {
    const vdx_pretransform *p = (const vdx_pretransform *)ix;
    vdx_status st = check_reversible(p);
    if (st) return st;
    float *y = vdx_malloc_array((size_t)ni, (size_t)p->index->d * sizeof(float));
    if (!y) return VDX_ERR_OUT_OF_MEMORY;
    if (!(st = vdx_index_reconstruct_n(p->index, i0, ni, y)))
        st = reverse_chain(p, ni, y, out);
    vdx_free(y);
    return st;
}

static vdx_status pt_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                 float *out) {
    const vdx_pretransform *p = (const vdx_pretransform *)ix;
    vdx_status st = check_reversible(p);
    if (st) return st;
    float *y = vdx_malloc_array((size_t)p->index->d, sizeof(float));
    if (!y) return VDX_ERR_OUT_OF_MEMORY;
    if (!(st = vdx_index_reconstruct(p->index, key, y)))
        st = reverse_chain(p, 1, y, out);
    vdx_free(y);
    return st;
}

static vdx_status pt_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    vdx_pretransform *p = (vdx_pretransform *)ix;
    if (!p->index->ops->remove_ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "remove_ids is not supported by %s",
                         p->index->ops->type_name);
    vdx_status st = p->index->ops->remove_ids(p->index, sel, nremoved);
    ix->ntotal = p->index->ntotal;
    return st;
}

static void pt_destroy(vdx_index *ix) {
    vdx_pretransform *p = (vdx_pretransform *)ix;
    for (int64_t i = 0; i < p->nchain; i++) vdx_vt_free(p->chain[i]);
    vdx_free(p->chain);
    vdx_index_free(p->index);
    vdx_free(p);
}

static const vdx_index_ops pt_ops = {
    "IndexPreTransform", pt_train,         pt_add,
    pt_search,           pt_range_search,  pt_reset,
    pt_reconstruct,      pt_reconstruct_n, pt_remove_ids,
    pt_destroy};

vdx_status vdx_pretransform_make(vdx_vt **chain, int64_t nchain,
                                 vdx_index *sub, vdx_index **out) {
    vdx_pretransform *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    if (nchain) {
        p->chain = vdx_malloc_array((size_t)nchain, sizeof(vdx_vt *));
        if (!p->chain) {
            vdx_free(p);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        memcpy(p->chain, chain, (size_t)nchain * sizeof(vdx_vt *));
    }
    p->nchain = nchain;
    p->index = sub;
    p->base.ops = &pt_ops;
    p->base.d = nchain ? chain[0]->d_in : sub->d;
    p->base.ntotal = sub->ntotal;
    p->base.metric = sub->metric;
    p->base.metric_arg = sub->metric_arg;
    update_trained(p);
    *out = &p->base;
    return VDX_OK;
}

vdx_status vdx_index_pretransform_new(vdx_vt *vt, vdx_index *sub,
                                      vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!sub)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexPreTransform: the sub-index is NULL");
    if (vt && vt->d_out != sub->d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexPreTransform: the transform outputs d_out=%lld "
                         "but the sub-index has d=%lld",
                         (long long)vt->d_out, (long long)sub->d);
    return vdx_pretransform_make(vt ? &vt : NULL, vt ? 1 : 0, sub, out);
}

vdx_status vdx_index_pretransform_prepend(vdx_index *ix, vdx_vt *vt) {
    vdx_clear_error();
    if (!vdx_is_pretransform(ix) || !vt)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "prepend_transform: needs an IndexPreTransform and "
                         "a transform");
    vdx_pretransform *p = (vdx_pretransform *)ix;
    if (vt->d_out != ix->d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "prepend_transform: the transform outputs d_out=%lld "
                         "but the index takes d=%lld",
                         (long long)vt->d_out, (long long)ix->d);
    for (int64_t i = 0; i < p->nchain; i++)
        if (p->chain[i] == vt)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "prepend_transform: the transform is already in "
                             "the chain");
    if (p->nchain >= VDX_PT_MAX_CHAIN)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "prepend_transform: the chain already holds %d "
                         "transforms",
                         VDX_PT_MAX_CHAIN);
    vdx_vt **c = vdx_realloc_array(p->chain, (size_t)p->nchain + 1,
                                   sizeof(vdx_vt *));
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    memmove(c + 1, c, (size_t)p->nchain * sizeof(vdx_vt *));
    c[0] = vt;
    p->chain = c;
    p->nchain++;
    ix->d = vt->d_in;
    update_trained(p);
    return VDX_OK;
}

int64_t vdx_index_pretransform_chain_size(const vdx_index *ix) {
    return vdx_is_pretransform(ix) ? ((const vdx_pretransform *)ix)->nchain
                                   : 0;
}

vdx_vt *vdx_index_pretransform_chain(const vdx_index *ix, int64_t i) {
    if (!vdx_is_pretransform(ix)) return NULL;
    const vdx_pretransform *p = (const vdx_pretransform *)ix;
    return i >= 0 && i < p->nchain ? p->chain[i] : NULL;
}

vdx_index *vdx_index_pretransform_index(const vdx_index *ix) {
    return vdx_is_pretransform(ix) ? ((const vdx_pretransform *)ix)->index
                                   : NULL;
}

vdx_status vdx_index_pretransform_apply(const vdx_index *ix, int64_t n,
                                        const float *x, float *y) {
    vdx_clear_error();
    if (!vdx_is_pretransform(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "apply_chain: the index is not an IndexPreTransform");
    const vdx_pretransform *p = (const vdx_pretransform *)ix;
    if (n < 0 || (n > 0 && (!x || !y)) || n > INT64_MAX / 8 / VDX_MAX(ix->d, p->index->d))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "apply_chain: bad n=%lld or NULL array", (long long)n);
    for (int64_t i = 0; i < p->nchain; i++)
        if (!p->chain[i]->is_trained)
            return vdx_raise(VDX_ERR_NOT_TRAINED,
                             "apply_chain: transform %lld (%s) is not trained",
                             (long long)i, vdx_vt_type_name(p->chain[i]));
    vdx_status st = vdx_check_vectors(x, n, ix->d, "vectors to transform");
    if (st || n == 0) return st;
    const float *xt;
    int owned;
    vdx_team_begin();
    st = apply_chain(p, p->nchain, n, x, &xt, &owned);
    vdx_team_end();
    if (st) return st;
    memcpy(y, xt, (size_t)n * (size_t)p->index->d * sizeof(float));
    if (owned) vdx_free((void *)xt);
    return VDX_OK;
}
