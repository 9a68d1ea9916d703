/*
 * ivfpq.c — IndexIVFPQ: the IVF framework (ivf.c) with product-quantizer
 * codes of the residuals x - c_list (Jégou et al., TPAMI 2011, §IV "IVFADC";
 * FAISS's IndexIVFPQ with by_residual).  The codec prepares, per (query,
 * list), an ADC table: for inner product the table of <x, r> plus the
 * constant <x, c>; for L2 the table of |x - c - r|^2, built one of two ways:
 *
 *   - directly from the query's residual x - c (d * ksub flops per list);
 *   - with the precomputed tables of FAISS's IVFPQ (Jégou et al. §IV.C):
 *     |x - c - r|^2 = |x - c|^2 + (|r|^2 + 2<c, r>) - 2<x, r>, where the
 *     middle term depends on the list only (computed once at training, one
 *     nlist x M x ksub table) and the last on the query only (computed once
 *     per query by begin_query), so a list costs M * ksub additions.
 *
 * The constant |x - c|^2 is folded into sub-quantizer 0's row of the table.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "common/blas.h"
#include "common/interrupt.h"
#include "index_pq.h"
#include "simd/kernels.h"

/* floats before the table: the bias, whether this query uses the
 * precomputed tables (set by begin_query), padded to 64 B */
#define CTX_HEAD 16

static const vdx_ivfpq *as_pq(const vdx_ivf *ivf) {
    return (const vdx_ivfpq *)(const void *)ivf;
}

static void centroid(const vdx_ivf *ivf, int64_t list, float *c) {
    if (ivf->quantizer->ops->reconstruct(ivf->quantizer, list, c))
        memset(c, 0, (size_t)ivf->base.d * sizeof(float));
}

/* In blocks of ENC_BLOCK vectors, polling the interrupt handler between
 * them: nothing is stored before the whole batch is encoded, so stopping
 * leaves the index as it was. */
#define ENC_BLOCK 65536
vdx_status vdx_ivf_pq_encode(const vdx_ivf *ivf, const vdx_pq *pq,
                             int by_residual, int64_t n, const float *x,
                             const int64_t *lists, uint8_t *codes) {
    const int64_t d = ivf->base.d;
    float *r = NULL;
    if (by_residual) {
        r = vdx_malloc_array((size_t)VDX_MAX(1, VDX_MIN(n, ENC_BLOCK)),
                             (size_t)d * sizeof(float));
        if (!r) return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i0 = 0; i0 < n; i0 += ENC_BLOCK) {
        if (i0 > 0 && vdx_interrupted()) {
            vdx_free(r);
            return vdx_raise(VDX_ERR_INTERRUPTED,
                             "IVF-PQ encoding of %lld vectors interrupted",
                             (long long)n);
        }
        const int64_t nb = VDX_MIN(ENC_BLOCK, n - i0);
        uint8_t *out = codes + (size_t)i0 * pq->code_size;
        if (!by_residual) {
            vdx_pq_encode(pq, nb, x + (size_t)i0 * (size_t)d, out);
            continue;
        }
        for (int64_t i = 0; i < nb; i++) {
            float *ri = r + i * d;
            const int64_t l = lists[i0 + i];
            if (l < 0) {
                memset(ri, 0, (size_t)d * sizeof(float));
                continue;
            }
            centroid(ivf, l, ri);
            const float *xi = x + (size_t)(i0 + i) * (size_t)d;
            for (int64_t j = 0; j < d; j++) ri[j] = xi[j] - ri[j];
        }
        vdx_pq_encode(pq, nb, r, out);
    }
    vdx_free(r);
    return VDX_OK;
}

void vdx_ivf_pq_decode(const vdx_ivf *ivf, const vdx_pq *pq, int by_residual,
                       int64_t list, const uint8_t *code, float *out) {
    const int64_t d = ivf->base.d;
    vdx_pq_decode_n(pq, 1, code, out);
    if (!by_residual) return;
    float *c = vdx_malloc_array((size_t)d, sizeof(float));
    if (!c) return;
    centroid(ivf, list, c);
    for (int64_t j = 0; j < d; j++) out[j] += c[j];
    vdx_free(c);
}

static vdx_status ivfpq_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                               const int64_t *lists, uint8_t *codes) {
    const vdx_ivfpq *p = as_pq(ivf);
    return vdx_ivf_pq_encode(ivf, &p->pq, p->by_residual, n, x, lists, codes);
}

static void ivfpq_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                         float *out) {
    const vdx_ivfpq *p = as_pq(ivf);
    vdx_ivf_pq_decode(ivf, &p->pq, p->by_residual, list, code, out);
}

/* context: head | table (M x ksub) | residual (d, padded) | -2<x, r> table */
static size_t ivfpq_ctx_size(const vdx_ivf *ivf) {
    const vdx_ivfpq *p = as_pq(ivf);
    size_t t = (size_t)(p->pq.M * p->pq.ksub);
    return (CTX_HEAD + 2 * t + (size_t)((ivf->base.d + 15) & ~15)) *
           sizeof(float);
}

static float *ctx_term3(const vdx_ivf *ivf, void *ctx) {
    const vdx_ivfpq *p = as_pq(ivf);
    float *f = ctx;
    return f + CTX_HEAD + p->pq.M * p->pq.ksub + ((ivf->base.d + 15) & ~15);
}

/* The choice is made once per query and kept in its context, so a table
 * that another thread finishes building halfway through a query cannot mix
 * the two ways within one query. */
static void ivfpq_begin_query(const vdx_ivf *ivf, const float *xq, void *ctx) {
    const vdx_ivfpq *p = as_pq(ivf);
    float *f = ctx;
    f[1] = 0;
    if (!p->by_residual || !vdx_ivfpq_precomputed_table(p)) return;
    f[1] = 1;
    float *t3 = ctx_term3(ivf, ctx);
    size_t nt = (size_t)(p->pq.M * p->pq.ksub);
    vdx_pq_table(&p->pq, VDX_METRIC_INNER_PRODUCT, xq, t3);
    for (size_t i = 0; i < nt; i++) t3[i] *= -2.0f;
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
    if (f[1] != 0) {
        const size_t nt = (size_t)(p->pq.M * p->pq.ksub);
        const float *t2 = p->precomputed + (size_t)list * nt;
        const float *t3 = ctx_term3(ivf, ctx);
        for (size_t i = 0; i < nt; i++) table[i] = t2[i] + t3[i];
        float c = vdx_kernels_get()->l2sqr(xq, r, (size_t)d);
        for (int64_t j = 0; j < p->pq.ksub; j++) table[j] += c;
        return;
    }
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
    ivfpq_begin_query(ivf, xq, ctx);
    ivfpq_prepare(ivf, xq, list, ctx);
    ivfpq_scan_ctx(ivf, ctx, codes, n, keys);
    vdx_aligned_free(ctx);
}

static const vdx_ivf_codec ivfpq_codec = {ivfpq_encode, ivfpq_decode,
                                          ivfpq_scan};
static const vdx_ivf_scanner ivfpq_scanner = {ivfpq_ctx_size, ivfpq_prepare,
                                              ivfpq_scan_ctx, ivfpq_begin_query};

/* FAISS's cap on the tables (precomputed_table_max_bytes) */
#define PRECOMPUTED_MAX_BYTES ((size_t)2 << 30)

static int precompute_applies(const vdx_ivfpq *p) {
    const vdx_ivf *ivf = &p->ivf;
    if (p->use_precomputed_table < 0 || !p->by_residual ||
        ivf->base.metric != VDX_METRIC_L2 || !p->pq.centroids ||
        !ivf->base.is_trained || ivf->quantizer->ntotal != ivf->nlist)
        return 0;
    size_t nt = (size_t)(p->pq.M * p->pq.ksub);
    return p->use_precomputed_table != 0 ||
           (size_t)ivf->nlist * nt * sizeof(float) <= PRECOMPUTED_MAX_BYTES;
}

vdx_status vdx_ivfpq_precompute(vdx_ivfpq *p) {
    vdx_free(p->precomputed);
    p->precomputed = NULL;
    __atomic_store_n(&p->pre_state,
                     precompute_applies(p) ? VDX_IVFPQ_PRE_PENDING
                                           : VDX_IVFPQ_PRE_NONE,
                     __ATOMIC_RELEASE);
    return VDX_OK;
}

void vdx_ivfpq_skip_precompute(vdx_ivfpq *p) {
    vdx_free(p->precomputed);
    p->precomputed = NULL;
    __atomic_store_n(&p->pre_state, VDX_IVFPQ_PRE_NONE, __ATOMIC_RELEASE);
}

/* Builds the tables (the caller holds pre_mu and saw PENDING). */
static vdx_status build_precomputed(vdx_ivfpq *p) {
    vdx_ivf *ivf = &p->ivf;
    const int64_t d = ivf->base.d, M = p->pq.M, ksub = p->pq.ksub,
                  dsub = p->pq.dsub, nlist = ivf->nlist;
    size_t nt = (size_t)(M * ksub);
    float *t = vdx_malloc_array((size_t)nlist * nt, sizeof(float));
    float *c = vdx_malloc_array((size_t)nlist * (size_t)d, sizeof(float));
    float *cm = vdx_malloc_array((size_t)nlist * (size_t)dsub, sizeof(float));
    float *ip = vdx_malloc_array((size_t)nlist * (size_t)ksub, sizeof(float));
    float *rn = vdx_malloc_array((size_t)nt, sizeof(float));
    vdx_status st = VDX_OK;
    if (!t || !c || !cm || !ip || !rn) {
        st = vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                       "IndexIVFPQ: no memory for the precomputed tables "
                       "(%lld lists x %lld entries)",
                       (long long)nlist, (long long)nt);
        goto done;
    }
    if ((st = ivf->quantizer->ops->reconstruct_n(ivf->quantizer, 0, nlist, c)))
        goto done;
    const vdx_kernels *K = vdx_kernels_get();
    for (int64_t m = 0; m < M; m++) {
        const float *cb = p->pq.centroids + (size_t)(m * ksub * dsub);
        for (int64_t j = 0; j < ksub; j++)
            rn[m * ksub + j] = K->norm_sqr(cb + j * dsub, (size_t)dsub);
        for (int64_t l = 0; l < nlist; l++)
            memcpy(cm + l * dsub, c + l * d + m * dsub,
                   (size_t)dsub * sizeof(float));
        /* ip[l][j] = <c_l,m, r_mj> */
        vdx_gemm_xyt((int)nlist, (int)ksub, (int)dsub, 2.0f, cm, cb, ip);
        for (int64_t l = 0; l < nlist; l++) {
            float *row = t + (size_t)l * nt + (size_t)(m * ksub);
            for (int64_t j = 0; j < ksub; j++)
                row[j] = rn[m * ksub + j] + ip[l * ksub + j];
        }
    }
    p->precomputed = t;
    t = NULL;
done:
    vdx_free(t);
    vdx_free(c);
    vdx_free(cm);
    vdx_free(ip);
    vdx_free(rn);
    return st;
}

/* One lock for every index: builds are rare (once per index after a
 * change) and waiting for another index's build only delays a first query. */
static pthread_mutex_t pre_mu = PTHREAD_MUTEX_INITIALIZER;

const float *vdx_ivfpq_precomputed_table(const vdx_ivfpq *cp) {
    int s = __atomic_load_n(&cp->pre_state, __ATOMIC_ACQUIRE);
    if (s == VDX_IVFPQ_PRE_READY) return cp->precomputed;
    if (s == VDX_IVFPQ_PRE_NONE) return NULL;
    /* the lazy fields are the only ones written, and only under pre_mu */
    vdx_ivfpq *p = (vdx_ivfpq *)(uintptr_t)cp;
    pthread_mutex_lock(&pre_mu);
    if (__atomic_load_n(&p->pre_state, __ATOMIC_ACQUIRE) ==
        VDX_IVFPQ_PRE_PENDING) {
        /* a failed build (no memory) leaves the residual tables in use; the
         * search itself succeeds, so the error is not left behind */
        int ok = build_precomputed(p) == VDX_OK;
        if (!ok) vdx_clear_error();
        __atomic_store_n(&p->pre_state,
                         ok ? VDX_IVFPQ_PRE_READY : VDX_IVFPQ_PRE_NONE,
                         __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&pre_mu);
    return __atomic_load_n(&p->pre_state, __ATOMIC_ACQUIRE) ==
                   VDX_IVFPQ_PRE_READY
               ? p->precomputed
               : NULL;
}

/* ---- ops: the generic IVF ones, with training and destruction extended -- */

static vdx_index_ops ivfpq_ops;
static vdx_index_ops generic;

vdx_status vdx_ivf_pq_train(vdx_index *ix, vdx_pq *pq, int by_residual,
                            int64_t n, const float *x) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    vdx_status st = VDX_OK;
    float *r = vdx_malloc_array((size_t)(n ? n : 1), (size_t)ix->d * sizeof(float));
    int64_t *lists = vdx_malloc_array((size_t)(n ? n : 1), sizeof(int64_t));
    if (!r || !lists) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (by_residual) {
        /* residuals to the assigned centroids, as FAISS's train_encoder */
        int was = ix->is_trained;
        ix->is_trained = 1; /* assign needs it */
        st = vdx_index_ivf_assign(ix, n, x, lists);
        ix->is_trained = was;
        if (st) goto done;
        for (int64_t i = 0; i < n; i++) {
            float *ri = r + i * ix->d;
            centroid(ivf, lists[i], ri);
            for (int64_t j = 0; j < ix->d; j++) ri[j] = x[i * ix->d + j] - ri[j];
        }
    } else {
        memcpy(r, x, (size_t)n * (size_t)ix->d * sizeof(float));
    }
    st = vdx_pq_train_internal(pq, n, r);
done:
    vdx_free(r);
    vdx_free(lists);
    return st;
}

static vdx_status ivfpq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfpq *p = (vdx_ivfpq *)ix;
    vdx_status st = vdx_refuse_populated_train(ix);
    if (st) return st;
    st = generic.train(ix, n, x);
    if (st) return st;
    ix->is_trained = 0;
    st = vdx_ivf_pq_train(ix, &p->pq, p->by_residual, n, x);
    if (!st) {
        ix->is_trained = 1;
        st = vdx_ivfpq_precompute(p);
    }
    return st;
}

static void ivfpq_destroy(vdx_index *ix) {
    vdx_ivfpq *p = (vdx_ivfpq *)ix;
    vdx_pq_clear(&p->pq);
    vdx_free(p->precomputed);
    generic.destroy(ix);
}

static vdx_status centroids_changed(vdx_index *ix) {
    return vdx_ivfpq_precompute((vdx_ivfpq *)(void *)ix);
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
    p->pq.centroids_changed = centroids_changed;
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

int vdx_index_ivfpq_by_residual(const vdx_index *ix) {
    return vdx_is_ivfpq(ix) ? ((const vdx_ivfpq *)(const void *)ix)->by_residual
                            : 0;
}

vdx_status vdx_index_ivfpq_set_by_residual(vdx_index *ix, int on) {
    vdx_clear_error();
    if (!vdx_is_ivfpq(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual: not an IndexIVFPQ");
    vdx_ivfpq *p = (vdx_ivfpq *)(void *)ix;
    p->by_residual = on ? 1 : 0;
    /* the precomputed tables exist only with residuals */
    return vdx_ivfpq_precompute(p);
}

vdx_status vdx_index_ivfpq_set_use_precomputed_table(vdx_index *ix, int v) {
    vdx_clear_error();
    if (!vdx_is_ivfpq(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "use_precomputed_table: not an IndexIVFPQ");
    if (v < -1 || v > 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "use_precomputed_table: expected -1, 0 or 1, got %d",
                         v);
    vdx_ivfpq *p = (vdx_ivfpq *)(void *)ix;
    p->use_precomputed_table = v;
    return vdx_ivfpq_precompute(p);
}

int vdx_index_ivfpq_use_precomputed_table(const vdx_index *ix, int *active) {
    if (active) *active = 0;
    if (!vdx_is_ivfpq(ix)) return 0;
    const vdx_ivfpq *p = (const vdx_ivfpq *)(const void *)ix;
    /* pending counts: the first search builds them */
    if (active)
        *active = __atomic_load_n(&p->pre_state, __ATOMIC_ACQUIRE) !=
                  VDX_IVFPQ_PRE_NONE;
    return p->use_precomputed_table;
}
