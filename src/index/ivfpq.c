/*
 * ivfpq.c — IndexIVFPQ: the IVF framework (ivf.c) with product-quantizer
 * codes of the residuals x - c_list (Jégou et al., TPAMI 2011, §IV "IVFADC";
 * FAISS's IndexIVFPQ with by_residual).  The codec prepares, per (query,
 * list), an ADC table: for L2 the table of the query's residual to that
 * list's centroid, so that a code's key is |x - c - r|^2 exactly; for inner
 * product the table of <x, r> plus the constant <x, c>.  FAISS's precomputed
 * L2 tables (|r|^2 + 2<r, c> per list) are not used: the per-list table
 * costs d * ksub flops, small next to scanning a list.
 */
#include <math.h>
#include <string.h>

#include "index_pq.h"
#include "simd/kernels.h"

#define CTX_HEAD 16 /* floats before the table: the bias, padded to 64 B */

static const vdx_ivfpq *as_pq(const vdx_ivf *ivf) {
    return (const vdx_ivfpq *)(const void *)ivf;
}

static void centroid(const vdx_ivf *ivf, int64_t list, float *c) {
    if (ivf->quantizer->ops->reconstruct(ivf->quantizer, list, c))
        memset(c, 0, (size_t)ivf->base.d * sizeof(float));
}

static vdx_status ivfpq_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                               const int64_t *lists, uint8_t *codes) {
    const vdx_ivfpq *p = as_pq(ivf);
    const int64_t d = ivf->base.d;
    if (!p->by_residual) {
        vdx_pq_encode(&p->pq, n, x, codes);
        return VDX_OK;
    }
    float *r = vdx_malloc_array((size_t)(n ? n : 1), (size_t)d * sizeof(float));
    if (!r) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        float *ri = r + i * d;
        if (lists[i] < 0) {
            memset(ri, 0, (size_t)d * sizeof(float));
            continue;
        }
        centroid(ivf, lists[i], ri);
        for (int64_t j = 0; j < d; j++) ri[j] = x[i * d + j] - ri[j];
    }
    vdx_pq_encode(&p->pq, n, r, codes);
    vdx_free(r);
    return VDX_OK;
}

static void ivfpq_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                         float *out) {
    const vdx_ivfpq *p = as_pq(ivf);
    const int64_t d = ivf->base.d;
    vdx_pq_decode_n(&p->pq, 1, code, out);
    if (!p->by_residual) return;
    float *c = vdx_malloc_array((size_t)d, sizeof(float));
    if (!c) return;
    centroid(ivf, list, c);
    for (int64_t j = 0; j < d; j++) out[j] += c[j];
    vdx_free(c);
}

static size_t ivfpq_ctx_size(const vdx_ivf *ivf) {
    const vdx_ivfpq *p = as_pq(ivf);
    return (size_t)(CTX_HEAD + p->pq.M * p->pq.ksub + ivf->base.d) *
           sizeof(float);
}

static void ivfpq_prepare(const vdx_ivf *ivf, const float *xq, int64_t list,
                          void *ctx) {
    const vdx_ivfpq *p = as_pq(ivf);
    const int64_t d = ivf->base.d;
    float *f = ctx, *table = f + CTX_HEAD, *r = table + p->pq.M * p->pq.ksub;
    f[0] = 0;
    if (!p->by_residual) {
        vdx_pq_table(&p->pq, ivf->base.metric, xq, table);
        return;
    }
    centroid(ivf, list, r);
    if (ivf->base.metric == VDX_METRIC_L2) {
        for (int64_t j = 0; j < d; j++) r[j] = xq[j] - r[j];
        vdx_pq_table(&p->pq, VDX_METRIC_L2, r, table);
    } else {
        f[0] = vdx_kernels_get()->inner_product(xq, r, (size_t)d);
        vdx_pq_table(&p->pq, VDX_METRIC_INNER_PRODUCT, xq, table);
    }
}

static void ivfpq_scan_ctx(const vdx_ivf *ivf, const void *ctx,
                           const uint8_t *codes, size_t n, float *keys) {
    const vdx_ivfpq *p = as_pq(ivf);
    const float *f = ctx;
    vdx_pq_scan(&p->pq, f + CTX_HEAD, codes, n, keys);
    if (ivf->base.metric != VDX_METRIC_L2)
        for (size_t i = 0; i < n; i++) keys[i] = -(f[0] + keys[i]);
}

/* The context-free scan (the framework uses prepare + scan_ctx). */
static void ivfpq_scan(const vdx_ivf *ivf, const float *xq, int64_t list,
                       const uint8_t *codes, size_t n, float *keys) {
    float *ctx = vdx_aligned_alloc(1, ivfpq_ctx_size(ivf));
    if (!ctx) {
        for (size_t i = 0; i < n; i++) keys[i] = INFINITY;
        return;
    }
    ivfpq_prepare(ivf, xq, list, ctx);
    ivfpq_scan_ctx(ivf, ctx, codes, n, keys);
    vdx_aligned_free(ctx);
}

static const vdx_ivf_codec ivfpq_codec = {ivfpq_encode, ivfpq_decode,
                                          ivfpq_scan};
static const vdx_ivf_scanner ivfpq_scanner = {ivfpq_ctx_size, ivfpq_prepare,
                                              ivfpq_scan_ctx};

/* ---- ops: the generic IVF ones, with training and destruction extended -- */

static vdx_index_ops ivfpq_ops;
static vdx_index_ops generic;

static vdx_status ivfpq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfpq *p = (vdx_ivfpq *)ix;
    vdx_ivf *ivf = &p->ivf;
    vdx_status st = generic.train(ix, n, x);
    if (st) return st;
    ix->is_trained = 0;
    float *r = vdx_malloc_array((size_t)(n ? n : 1), (size_t)ix->d * sizeof(float));
    int64_t *lists = vdx_malloc_array((size_t)(n ? n : 1), sizeof(int64_t));
    if (!r || !lists) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (p->by_residual) {
        /* residuals to the assigned centroids, as FAISS's train_encoder */
        ix->is_trained = 1; /* assign needs it */
        st = vdx_index_ivf_assign(ix, n, x, lists);
        ix->is_trained = 0;
        if (st) goto done;
        for (int64_t i = 0; i < n; i++) {
            float *ri = r + i * ix->d;
            centroid(ivf, lists[i], ri);
            for (int64_t j = 0; j < ix->d; j++) ri[j] = x[i * ix->d + j] - ri[j];
        }
    } else {
        memcpy(r, x, (size_t)n * (size_t)ix->d * sizeof(float));
    }
    st = vdx_pq_train_internal(&p->pq, n, r);
    if (!st) ix->is_trained = 1;
done:
    vdx_free(r);
    vdx_free(lists);
    return st;
}

static void ivfpq_destroy(vdx_index *ix) {
    vdx_ivfpq *p = (vdx_ivfpq *)ix;
    vdx_pq_clear(&p->pq);
    generic.destroy(ix);
}

int vdx_is_ivfpq(const vdx_index *ix) {
    return ix && ix->ops == &ivfpq_ops;
}

vdx_status vdx_ivfpq_alloc(vdx_index *quantizer, int64_t d, int64_t nlist,
                           int64_t M, int nbits, vdx_metric metric,
                           vdx_ivfpq **out) {
    *out = NULL;
#pragma omp critical(vdx_ivfpq_ops)
    if (!ivfpq_ops.type_name) {
        vdx_ivf_generic_ops(&generic, "IndexIVFPQ");
        vdx_index_ops o = generic;
        o.train = ivfpq_train;
        o.destroy = ivfpq_destroy;
        ivfpq_ops = o;
    }
    vdx_ivfpq *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_pq_setup(&p->pq, d, M, nbits);
    if (!st)
        st = vdx_ivf_init(&p->ivf, &ivfpq_ops, quantizer, d, nlist, metric,
                          p->pq.code_size);
    if (st) {
        vdx_free(p);
        return st;
    }
    p->pq.owner = &p->ivf.base;
    p->by_residual = 1;
    p->ivf.codec = &ivfpq_codec;
    p->ivf.scanner = &ivfpq_scanner;
    p->ivf.base.is_trained = 0; /* the PQ needs training too */
    *out = p;
    return VDX_OK;
}

vdx_status vdx_index_ivfpq_new(vdx_index *quantizer, int64_t d, int64_t nlist,
                               int64_t M, int nbits, vdx_metric metric,
                               vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    vdx_ivfpq *p = NULL;
    vdx_status st = vdx_ivfpq_alloc(quantizer, d, nlist, M, nbits, metric, &p);
    *out = p ? &p->ivf.base : NULL;
    return st;
}

vdx_pq *vdx_index_pq_quantizer(const vdx_index *ix) {
    if (vdx_is_index_pq(ix)) return &((vdx_index_pq *)(void *)ix)->pq;
    if (vdx_is_ivfpq(ix)) return &((vdx_ivfpq *)(void *)ix)->pq;
    return NULL;
}
