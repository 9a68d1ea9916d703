/*
 * ivf_sq.c — IndexIVFScalarQuantizer: the IVF framework (ivf.c) with
 * scalar-quantized codes (FAISS's IndexIVFScalarQuantizer).
 *
 * With by_residual (FAISS's default) a vector is stored as the SQ code of
 * its residual to the centroid of its list, and the quantizer's ranges are
 * trained on the residuals of the training set to their nearest centroids.
 * Searching a list first prepares the query for that list (L2: the query's
 * residual to the centroid, folded into the SQ affine terms; IP: the
 * constant <q, centroid> added to every score), then scores the codes with
 * the fused kernels of quant/sq.c, never decoding them to memory.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "index_sq.h"

static vdx_index_ops ivfsq_ops;
static vdx_status (*generic_train)(vdx_index *, int64_t, const float *);
static void (*generic_destroy)(vdx_index *);

int vdx_is_ivfsq(const vdx_index *ix) { return ix && ix->ops == &ivfsq_ops; }

/* The centroid of list l: a pointer into a flat quantizer, else
 * reconstructed into buf. */
static const float *centroid(const vdx_ivf *ivf, int64_t l, float *buf) {
    const float *c = vdx_index_flat_data(ivf->quantizer);
    if (c) return c + l * ivf->base.d;
    if (ivf->quantizer->ops->reconstruct(ivf->quantizer, l, buf))
        memset(buf, 0, (size_t)ivf->base.d * sizeof(float));
    return buf;
}

/* ---- codec ---------------------------------------------------------------- */

static vdx_status sq_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                            const int64_t *lists, uint8_t *codes) {
    const vdx_ivfsq *s = (const vdx_ivfsq *)ivf;
    if (!s->by_residual) {
        vdx_sq_encode_n(&s->sq, n, x, codes);
        return VDX_OK;
    }
    const int64_t d = ivf->base.d;
    vdx_status st = VDX_OK;
#pragma omp parallel if (n > 1000)
    {
        float *r = vdx_malloc_array(2 * (size_t)d, sizeof(float));
        if (!r) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for
        for (int64_t i = 0; i < n; i++) {
            if (!r) continue;
            const float *c = centroid(ivf, lists[i] < 0 ? 0 : lists[i], r + d);
            for (int64_t j = 0; j < d; j++) r[j] = x[i * d + j] - c[j];
            vdx_sq_encode_n(&s->sq, 1, r, codes + (size_t)i * ivf->code_size);
        }
        vdx_free(r);
    }
    return st;
}

static void sq_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                      float *out) {
    const vdx_ivfsq *s = (const vdx_ivfsq *)ivf;
    vdx_sq_decode_n(&s->sq, 1, code, out);
    if (!s->by_residual) return;
    const int64_t d = ivf->base.d;
    float *buf = vdx_malloc_array((size_t)d, sizeof(float));
    if (!buf && !vdx_index_flat_data(ivf->quantizer)) return;
    const float *c = centroid(ivf, list, buf);
    for (int64_t j = 0; j < d; j++) out[j] += c[j];
    vdx_free(buf);
}

/* Per-(query, list) context: the prepared query, then 2 d floats (the
 * query's residual and the SQ scratch). */
typedef struct {
    vdx_sq_query qq;
    float add; /* IP with residuals: <q, centroid> */
    float pad[11];
} sq_ctx;

static size_t sq_ctx_size(const vdx_ivf *ivf) {
    return sizeof(sq_ctx) + 2 * (size_t)ivf->base.d * sizeof(float);
}

static void sq_prepare(const vdx_ivf *ivf, const float *xq, int64_t list,
                       void *ctxp) {
    const vdx_ivfsq *s = (const vdx_ivfsq *)ivf;
    sq_ctx *ctx = ctxp;
    float *qr = (float *)(ctx + 1), *scratch = qr + ivf->base.d;
    const int64_t d = ivf->base.d;
    const int ip = ivf->base.metric == VDX_METRIC_INNER_PRODUCT;
    ctx->add = 0;
    const float *q = xq;
    if (s->by_residual) {
        const float *c = centroid(ivf, list, scratch);
        if (ip) {
            float a = 0;
            for (int64_t j = 0; j < d; j++) a += xq[j] * c[j];
            ctx->add = a;
        } else {
            for (int64_t j = 0; j < d; j++) qr[j] = xq[j] - c[j];
            q = qr;
        }
    }
    vdx_sq_query_init(&s->sq, ip, q, scratch, &ctx->qq);
}

static void sq_scan_ctx(const vdx_ivf *ivf, const void *ctxp,
                        const uint8_t *codes, size_t n, float *keys) {
    const vdx_ivfsq *s = (const vdx_ivfsq *)ivf;
    const sq_ctx *ctx = ctxp;
    const int ip = ivf->base.metric == VDX_METRIC_INNER_PRODUCT;
    vdx_sq_score(&s->sq, vdx_sq_kernels_get(), ip, &ctx->qq, codes, n, keys);
    if (ctx->add != 0)
        for (size_t j = 0; j < n; j++) keys[j] -= ctx->add; /* keys are -IP */
}

/* Used only where no context is offered: prepares on every call. */
static void sq_scan(const vdx_ivf *ivf, const float *xq, int64_t list,
                    const uint8_t *codes, size_t n, float *keys) {
    void *ctx = vdx_aligned_alloc(1, sq_ctx_size(ivf));
    if (!ctx) {
        for (size_t j = 0; j < n; j++) keys[j] = INFINITY;
        return;
    }
    sq_prepare(ivf, xq, list, ctx);
    sq_scan_ctx(ivf, ctx, codes, n, keys);
    vdx_aligned_free(ctx);
}

static const vdx_ivf_codec sq_codec = {sq_encode, sq_decode, sq_scan};
static const vdx_ivf_scanner sq_scanner = {sq_ctx_size, sq_prepare,
                                           sq_scan_ctx, NULL};

/* ---- ops: training and destruction add the quantizer's part ------------- */

static vdx_status ivfsq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfsq *s = (vdx_ivfsq *)ix;
    vdx_ivf *ivf = &s->ivf;
    vdx_status st;
    if (!vdx_sq_trainless(s->sq.qtype) && (st = vdx_refuse_populated_train(ix)))
        return st;
    st = generic_train(ix, n, x);
    if (st) return st;
    if (vdx_sq_trainless(s->sq.qtype)) return VDX_OK;
    ix->is_trained = 0;
    if (!s->by_residual) {
        if ((st = vdx_sq_fit(&s->sq, n, x))) return st;
        ix->is_trained = 1;
        return VDX_OK;
    }
    const int64_t d = ix->d;
    float *r = vdx_malloc_array((size_t)n, (size_t)d * sizeof(float));
    float *dis = vdx_malloc_array((size_t)n, sizeof(float));
    int64_t *lists = vdx_malloc_array((size_t)n, sizeof(int64_t));
    float *cbuf = vdx_malloc_array((size_t)d, sizeof(float));
    if (!r || !dis || !lists || !cbuf) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((st = ivf->quantizer->ops->search(ivf->quantizer, n, x, 1, NULL, dis,
                                          lists)))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        int64_t l = lists[i] < 0 || lists[i] >= ivf->nlist ? 0 : lists[i];
        const float *c = centroid(ivf, l, cbuf);
        for (int64_t j = 0; j < d; j++) r[i * d + j] = x[i * d + j] - c[j];
    }
    if ((st = vdx_sq_fit(&s->sq, n, r))) goto done;
    ix->is_trained = 1;
done:
    vdx_free(r);
    vdx_free(dis);
    vdx_free(lists);
    vdx_free(cbuf);
    return st;
}

static void ivfsq_destroy(vdx_index *ix) {
    vdx_sq_release(&((vdx_ivfsq *)ix)->sq);
    generic_destroy(ix);
}

static void make_ops(void) {
    vdx_ivf_generic_ops(&ivfsq_ops, "IndexIVFScalarQuantizer");
    generic_train = ivfsq_ops.train;
    generic_destroy = ivfsq_ops.destroy;
    ivfsq_ops.train = ivfsq_train;
    ivfsq_ops.destroy = ivfsq_destroy;
}

vdx_status vdx_ivfsq_alloc(vdx_index *quantizer, int64_t d, int64_t nlist,
                           int qtype, vdx_metric metric, int by_residual,
                           vdx_ivfsq **out) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_ops);
    *out = NULL;
    vdx_ivfsq *s = vdx_calloc(1, sizeof *s);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_sq_init(&s->sq, d, qtype);
    if (st) {
        vdx_free(s);
        return st;
    }
    st = vdx_ivf_init(&s->ivf, &ivfsq_ops, quantizer, d, nlist, metric,
                      s->sq.code_size);
    if (st) {
        vdx_sq_release(&s->sq);
        vdx_free(s);
        return st;
    }
    s->ivf.codec = &sq_codec;
    s->ivf.scanner = &sq_scanner;
    s->by_residual = by_residual ? 1 : 0;
    if (!vdx_sq_trainless(qtype)) s->ivf.base.is_trained = 0;
    *out = s;
    return VDX_OK;
}

vdx_status vdx_index_ivf_sq_new(vdx_index *quantizer, int64_t d, int64_t nlist,
                                int qtype, vdx_metric metric, int by_residual,
                                vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    vdx_ivfsq *s = NULL;
    vdx_status st = vdx_ivfsq_alloc(quantizer, d, nlist, qtype, metric,
                                    by_residual, &s);
    *out = s ? &s->ivf.base : NULL;
    return st;
}

vdx_sq *vdx_index_sq_quantizer(const vdx_index *index) {
    return vdx_index_get_sq(index);
}

int vdx_index_ivf_sq_by_residual(const vdx_index *index) {
    return vdx_is_ivfsq(index) ? ((const vdx_ivfsq *)index)->by_residual : 0;
}

vdx_status vdx_index_ivf_sq_set_by_residual(vdx_index *index, int on) {
    vdx_clear_error();
    if (!vdx_is_ivfsq(index))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual: not an IndexIVFScalarQuantizer");
    vdx_ivfsq *s = (vdx_ivfsq *)index;
    if (s->by_residual == (on ? 1 : 0)) return VDX_OK;
    if (index->ntotal > 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual: the index holds ntotal=%lld codes made "
                         "with by_residual=%d; reset it first",
                         (long long)index->ntotal, s->by_residual);
    s->by_residual = on ? 1 : 0;
    return VDX_OK;
}
