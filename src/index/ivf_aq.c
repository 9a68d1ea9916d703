/*
 * ivf_aq.c — IVF over additive-quantizer codes (FAISS's
 * IndexIVFAdditiveQuantizer family: IndexIVFResidualQuantizer,
 * IndexIVFLocalSearchQuantizer, IndexIVFProductResidualQuantizer,
 * IndexIVFProductLocalSearchQuantizer).  The IVF framework (ivf.c) with a
 * codec that stores the additive code of x - c_list (by_residual, the
 * default) or of x.
 *
 * Scoring a list, as FAISS's AQInvertedListScanner does:
 *   - ST_decompress: L2 |q' - y|^2 with q' = q - c_list (by_residual) or
 *     q; inner product <c_list, q> + <q, y> (by_residual) or <q, y>; y
 *     the decoded code (decoded by blocks of 64, scored by the SIMD
 *     kernels);
 *   - the table search types: a table of <q', entry> (L2 by_residual:
 *     q' = q - c_list, else q) and the code's norm: L2 |q' |^2 + norm -
 *     2 sum, inner product <c_list, q> + sum.
 * The encoder is trained on at most 1024 x 2^nbits training vectors
 * (LSQ: 1024 x M x 2^nbits), a seeded sample, as FAISS trains it.
 */
#include <math.h>
#include <string.h>

#include "index_aq.h"
#include "quant/transform.h"
#include "simd/kernels.h"

#define CTX_HEAD 16 /* floats before the table: bias, padded to 64 bytes */
#define DEC_BLOCK 64

static const vdx_ivfaq *as_aq(const vdx_ivf *ivf) {
    return (const vdx_ivfaq *)(const void *)ivf;
}

static int64_t pad16(int64_t n) { return (n + 15) & ~(int64_t)15; }

static void centroid(const vdx_ivf *ivf, int64_t list, float *c) {
    if (list < 0 || ivf->quantizer->ops->reconstruct(ivf->quantizer, list, c))
        memset(c, 0, (size_t)ivf->base.d * sizeof(float));
}

static vdx_status ivfaq_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                               const int64_t *lists, uint8_t *codes) {
    const vdx_ivfaq *p = as_aq(ivf);
    const int64_t d = ivf->base.d;
    if (!p->by_residual) return vdx_aq_encode(p->aq, n, x, codes);
    float *r = vdx_malloc_array((size_t)(n ? n : 1), (size_t)d * sizeof(float));
    if (!r) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        float *ri = r + i * d;
        /* as FAISS, a vector with no list is coded against list 0 */
        centroid(ivf, lists[i] >= 0 ? lists[i] : 0, ri);
        for (int64_t j = 0; j < d; j++) ri[j] = x[i * d + j] - ri[j];
    }
    vdx_status st = vdx_aq_encode(p->aq, n, r, codes);
    vdx_free(r);
    return st;
}

static void ivfaq_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                         float *out) {
    const vdx_ivfaq *p = as_aq(ivf);
    const int64_t d = ivf->base.d;
    vdx_aq_decode_n(p->aq, 1, code, out);
    if (!p->by_residual) return;
    float c[256];
    float *cb = d <= 256 ? c : vdx_malloc_array((size_t)d, sizeof(float));
    if (!cb) return;
    centroid(ivf, list, cb);
    for (int64_t j = 0; j < d; j++) out[j] += cb[j];
    if (cb != c) vdx_free(cb);
}

/* ctx: head (bias) | table (total_cb) | q' (d) | decoded block */
static size_t ivfaq_ctx_size(const vdx_ivf *ivf) {
    const vdx_ivfaq *p = as_aq(ivf);
    int64_t d = pad16(ivf->base.d);
    return (size_t)(CTX_HEAD + pad16(p->aq->total_cb) + d + DEC_BLOCK * d + d) *
           sizeof(float);
}

static float *ctx_table(void *ctx) { return (float *)ctx + CTX_HEAD; }
static float *ctx_query(const vdx_ivf *ivf, void *ctx) {
    return ctx_table(ctx) + pad16(as_aq(ivf)->aq->total_cb);
}

static void ivfaq_prepare(const vdx_ivf *ivf, const float *xq, int64_t list,
                          void *ctx) {
    const vdx_ivfaq *p = as_aq(ivf);
    const int64_t d = ivf->base.d;
    const int ip = ivf->base.metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_kernels *K = vdx_kernels_get();
    float *f = ctx, *q = ctx_query(ivf, ctx);
    float *c = q + pad16(d) + DEC_BLOCK * pad16(d);
    float bias = 0;
    if (p->by_residual) {
        centroid(ivf, list, c);
        if (ip) {
            bias = K->inner_product(xq, c, (size_t)d);
            memcpy(q, xq, (size_t)d * sizeof(float));
        } else {
            for (int64_t j = 0; j < d; j++) q[j] = xq[j] - c[j];
        }
    } else {
        memcpy(q, xq, (size_t)d * sizeof(float));
    }
    if (p->aq->search_type != VDX_AQ_ST_DECOMPRESS) {
        vdx_aq_lut(p->aq, 1, q, 1.0f, ctx_table(ctx), p->aq->total_cb);
        if (!ip) bias = K->norm_sqr(q, (size_t)d);
    }
    f[0] = bias;
}

static void ivfaq_scan_ctx(const vdx_ivf *ivf, const void *ctx,
                           const uint8_t *codes, size_t n, float *keys) {
    const vdx_ivfaq *p = as_aq(ivf);
    const int64_t d = ivf->base.d;
    const int ip = ivf->base.metric == VDX_METRIC_INNER_PRODUCT;
    const float *f = ctx;
    const float bias = f[0];
    void *mctx = (void *)(uintptr_t)ctx; /* the decode block is scratch */
    const float *q = ctx_query(ivf, mctx);
    if (p->aq->search_type == VDX_AQ_ST_DECOMPRESS) {
        const vdx_kernels *K = vdx_kernels_get();
        float *y = (float *)q + pad16(d);
        for (size_t i0 = 0; i0 < n; i0 += DEC_BLOCK) {
            size_t bn = n - i0 < DEC_BLOCK ? n - i0 : DEC_BLOCK;
            for (size_t i = 0; i < bn; i++)
                vdx_aq_decode_n(p->aq, 1, codes + (i0 + i) * p->aq->code_size, y + i * d);
            if (ip) {
                K->inner_product_ny(keys + i0, q, y, (size_t)d, bn);
                for (size_t i = 0; i < bn; i++) keys[i0 + i] = -(bias + keys[i0 + i]);
            } else {
                K->l2sqr_ny(keys + i0, q, y, (size_t)d, bn);
            }
        }
        return;
    }
    vdx_aq_lut_distances(p->aq, ip, codes, n, ctx_table(mctx), keys);
    if (ip)
        for (size_t i = 0; i < n; i++) keys[i] = -(bias + keys[i]);
    else
        for (size_t i = 0; i < n; i++) keys[i] += bias;
}

static void ivfaq_scan(const vdx_ivf *ivf, const float *xq, int64_t list,
                       const uint8_t *codes, size_t n, float *keys) {
    void *ctx = vdx_aligned_alloc(1, ivfaq_ctx_size(ivf));
    if (!ctx) {
        for (size_t i = 0; i < n; i++) keys[i] = INFINITY;
        return;
    }
    ivfaq_prepare(ivf, xq, list, ctx);
    ivfaq_scan_ctx(ivf, ctx, codes, n, keys);
    vdx_aligned_free(ctx);
}

static const vdx_ivf_codec ivfaq_codec = {ivfaq_encode, ivfaq_decode,
                                          ivfaq_scan};
static const vdx_ivf_scanner ivfaq_scanner = {ivfaq_ctx_size, ivfaq_prepare,
                                              ivfaq_scan_ctx, NULL};

/* ---- ops: the generic IVF ones with training and destruction extended --- */

static vdx_index_ops ivfaq_ops[4];
static vdx_index_ops generic;

static vdx_status ivfaq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfaq *p = (vdx_ivfaq *)ix;
    vdx_status st = generic.train(ix, n, x);
    if (st) return st;
    ix->is_trained = 0;
    const vdx_aq *aq = p->aq;
    int64_t max = (int64_t)1024 << aq->nbits[0];
    if (aq->kind == VDX_AQ_LSQ) max *= aq->M;
    float *sub = NULL, *r = NULL;
    int64_t *lists = NULL;
    if ((st = vdx_subsample(n, ix->d, max, x, 1234, &sub))) return st;
    const float *xt = sub ? sub : x;
    int64_t nt = sub ? max : n;
    if (p->by_residual) {
        r = vdx_malloc_array((size_t)(nt ? nt : 1), (size_t)ix->d * sizeof(float));
        lists = vdx_malloc_array((size_t)(nt ? nt : 1), sizeof(int64_t));
        if (!r || !lists) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        ix->is_trained = 1; /* assign needs it */
        st = vdx_index_ivf_assign(ix, nt, xt, lists);
        ix->is_trained = 0;
        if (st) goto done;
        for (int64_t i = 0; i < nt; i++) {
            float *ri = r + i * ix->d;
            centroid(&p->ivf, lists[i], ri);
            for (int64_t j = 0; j < ix->d; j++) ri[j] = xt[i * ix->d + j] - ri[j];
        }
        xt = r;
    }
    st = vdx_aq_train_internal(p->aq, nt, xt);
    if (!st) ix->is_trained = 1;
done:
    vdx_free(sub);
    vdx_free(r);
    vdx_free(lists);
    return st;
}

static void ivfaq_destroy(vdx_index *ix) {
    vdx_ivfaq *p = (vdx_ivfaq *)ix;
    if (p->aq) p->aq->owner = NULL;
    vdx_aq_destroy(p->aq);
    generic.destroy(ix);
}

static vdx_status ivfaq_changed(vdx_index *ix) {
    vdx_ivfaq *p = (vdx_ivfaq *)ix;
    const vdx_index *q = p->ivf.quantizer;
    ix->is_trained = p->aq->is_trained && q->is_trained && q->ntotal == p->ivf.nlist;
    if (ix->ntotal == 0 && p->ivf.code_size != p->aq->code_size) {
        /* the search type changed the code size of the empty lists */
        vdx_invlists *il = NULL;
        vdx_status st = vdx_invlists_array_new(p->ivf.nlist, p->aq->code_size, &il);
        if (st) return st;
        p->ivf.il->ops->destroy(p->ivf.il);
        p->ivf.il = il;
        p->ivf.code_size = p->aq->code_size;
    }
    return VDX_OK;
}

int vdx_is_ivfaq(const vdx_index *ix) {
    return ix && ix->ops >= ivfaq_ops && ix->ops < ivfaq_ops + 4;
}

static const char *ivf_name(int kind) {
    static const char *names[4] = {"IndexIVFResidualQuantizer",
                                   "IndexIVFLocalSearchQuantizer",
                                   "IndexIVFProductResidualQuantizer",
                                   "IndexIVFProductLocalSearchQuantizer"};
    return names[kind];
}

vdx_status vdx_index_ivf_aq_new(vdx_index *quantizer, int64_t nlist,
                                vdx_aq *aq, vdx_metric metric,
                                vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!aq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the quantizer is NULL");
    if (aq->owner)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "the additive quantizer already belongs to an index");
#pragma omp critical(vdx_ivfaq_ops)
    if (!ivfaq_ops[0].type_name) {
        vdx_ivf_generic_ops(&generic, "IndexIVFAdditiveQuantizer");
        for (int k = 0; k < 4; k++) {
            vdx_index_ops o = generic;
            o.type_name = ivf_name(k);
            o.train = ivfaq_train;
            o.destroy = ivfaq_destroy;
            ivfaq_ops[k] = o;
        }
    }
    vdx_ivfaq *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_ivf_init(&p->ivf, &ivfaq_ops[aq->kind], quantizer,
                                 aq->d, nlist, metric, aq->code_size);
    if (st) {
        vdx_free(p);
        return st;
    }
    p->aq = aq;
    aq->owner = &p->ivf.base;
    aq->changed = ivfaq_changed;
    p->by_residual = 1;
    p->ivf.codec = &ivfaq_codec;
    p->ivf.scanner = &ivfaq_scanner;
    p->ivf.base.is_trained = p->ivf.base.is_trained && aq->is_trained;
    *out = &p->ivf.base;
    return VDX_OK;
}

int vdx_index_ivf_aq_by_residual(const vdx_index *ix) {
    if (vdx_is_ivfaqfs(ix)) return ((const vdx_ivfaqfs *)(const void *)ix)->by_residual;
    return vdx_is_ivfaq(ix) ? ((const vdx_ivfaq *)(const void *)ix)->by_residual : 0;
}

vdx_status vdx_index_ivf_aq_set_by_residual(vdx_index *ix, int on) {
    vdx_clear_error();
    if (vdx_is_ivfaqfs(ix)) {
        vdx_ivfaqfs *f = (vdx_ivfaqfs *)(void *)ix;
        /* the codes and the norm quantizer depend on it */
        if ((ix->ntotal > 0 || ix->is_trained) && (on != 0) != f->by_residual)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "by_residual can only change before training");
        f->by_residual = on != 0;
        return VDX_OK;
    }
    if (!vdx_is_ivfaq(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual: not an IVF additive-quantizer index");
    if (ix->ntotal > 0 && (on != 0) != ((vdx_ivfaq *)(void *)ix)->by_residual)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual: the index already holds %lld vectors",
                         (long long)ix->ntotal);
    ((vdx_ivfaq *)(void *)ix)->by_residual = on != 0;
    return VDX_OK;
}
