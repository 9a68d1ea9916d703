/*
 * paq.c — the product additive quantizers (FAISS's
 * ProductResidualQuantizer, ProductLocalSearchQuantizer): the vector is
 * cut into nsplits consecutive sub-vectors of d / nsplits components, each
 * encoded by its own RQ or LSQ of Msub codebooks; the code is the
 * concatenation of the sub-codes (and one norm field for the whole
 * reconstruction).  The product's codebooks are the sub-quantizers'
 * concatenated, entry width d / nsplits, which is what decoding and the
 * look-up tables use; encoding goes through the sub-quantizers.
 */
#include <string.h>

#include "aq.h"
#include "common/threads.h"
#include "simd/kernels.h"

vdx_status vdx_paq_make(int kind, int64_t d, int64_t nsplits, int64_t Msub,
                        int nbits, int search_type, vdx_aq **out) {
    *out = NULL;
    if (kind != VDX_AQ_PRQ && kind != VDX_AQ_PLSQ)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "product additive quantizer: kind %d is not PRQ (%d) "
                         "or PLSQ (%d)",
                         kind, VDX_AQ_PRQ, VDX_AQ_PLSQ);
    if (nsplits < 1 || d < 1 || d % nsplits != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "product additive quantizer: nsplits=%lld must be >= "
                         "1 and divide d=%lld",
                         (long long)nsplits, (long long)d);
    if (Msub < 1 || Msub > VDX_AQ_M_MAX || nsplits * Msub > VDX_AQ_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "product additive quantizer: Msub=%lld x nsplits=%lld "
                         "must be in 1..%d",
                         (long long)Msub, (long long)nsplits, VDX_AQ_M_MAX);
    const int64_t M = nsplits * Msub;
    int *nb = vdx_malloc_array((size_t)M, sizeof(int));
    if (!nb) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t m = 0; m < M; m++) nb[m] = nbits;
    vdx_aq *p = NULL;
    vdx_status st = vdx_aq_make(kind, d, M, nb, search_type, &p);
    if (st) {
        vdx_free(nb);
        return st;
    }
    p->ew = d / nsplits;
    p->sub = vdx_calloc((size_t)nsplits, sizeof(vdx_aq *));
    if (!p->sub) st = VDX_ERR_OUT_OF_MEMORY;
    for (int64_t s = 0; !st && s < nsplits; s++)
        st = vdx_aq_make(kind == VDX_AQ_PRQ ? VDX_AQ_RQ : VDX_AQ_LSQ, p->ew, Msub,
                         nb, VDX_AQ_ST_DECOMPRESS, &p->sub[s]);
    if (!st) {
        p->nsplits = nsplits;
        st = vdx_aq_set_derived(p);
    }
    vdx_free(nb);
    if (st) {
        vdx_aq_destroy(p);
        return st;
    }
    *out = p;
    return VDX_OK;
}

vdx_status vdx_paq_gather_codebooks(vdx_aq *p) {
    for (int64_t s = 0; s < p->nsplits; s++)
        if (!p->sub[s]->codebooks)
            return vdx_raise(VDX_ERR_NOT_TRAINED,
                             "product additive quantizer: sub-quantizer %lld "
                             "has no codebooks",
                             (long long)s);
    vdx_status st = vdx_aq_alloc_codebooks(p);
    if (st) return st;
    float *cb = p->codebooks;
    for (int64_t s = 0; s < p->nsplits; s++) {
        size_t nf = (size_t)(p->sub[s]->total_cb * p->sub[s]->ew);
        memcpy(cb, p->sub[s]->codebooks, nf * sizeof(float));
        cb += nf;
    }
    return VDX_OK;
}

/* sub-vector s of n vectors into xs (n x ew) */
static void split(const vdx_aq *p, int64_t n, const float *x, int64_t s,
                  float *xs) {
    const int64_t ew = p->ew;
#pragma omp parallel for if (n > 10000) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++)
        memcpy(xs + i * ew, x + i * p->d + s * ew, (size_t)ew * sizeof(float));
}

vdx_status vdx_paq_encode(const vdx_aq *p, int64_t n, const float *x,
                          int32_t *idx) {
    const int64_t Msub = p->M / p->nsplits;
    float *xs = vdx_malloc_array((size_t)(n ? n : 1), (size_t)p->ew * sizeof(float));
    int32_t *ci = vdx_malloc_array((size_t)(n ? n : 1), (size_t)Msub * sizeof(int32_t));
    vdx_status st = xs && ci ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    for (int64_t s = 0; s < p->nsplits && !st; s++) {
        split(p, n, x, s, xs);
        if ((st = vdx_aq_encode_idx(p->sub[s], n, xs, ci))) break;
        for (int64_t i = 0; i < n; i++)
            memcpy(idx + i * p->M + s * Msub, ci + i * Msub,
                   (size_t)Msub * sizeof(int32_t));
    }
    vdx_free(xs);
    vdx_free(ci);
    return st;
}

vdx_status vdx_paq_train(vdx_aq *p, int64_t n, const float *x) {
    if (p->is_trained) return VDX_OK; /* as FAISS */
    float *xs = vdx_malloc_array((size_t)(n ? n : 1), (size_t)p->ew * sizeof(float));
    if (!xs) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    for (int64_t s = 0; s < p->nsplits && !st; s++) {
        split(p, n, x, s, xs);
        st = vdx_aq_train_internal(p->sub[s], n, xs);
    }
    vdx_free(xs);
    if (st) return st;
    if ((st = vdx_paq_gather_codebooks(p))) return st;
    vdx_aq_drop_tables(p);
    p->is_trained = 1;
    /* the norms of the training reconstructions */
    int32_t *idx = vdx_malloc_array((size_t)n, (size_t)p->M * sizeof(int32_t));
    float *rec = vdx_malloc_array((size_t)n, (size_t)p->d * sizeof(float));
    float *norms = vdx_malloc_array((size_t)n, sizeof(float));
    if (!idx || !rec || !norms) st = VDX_ERR_OUT_OF_MEMORY;
    if (!st) st = vdx_paq_encode(p, n, x, idx);
    if (!st) {
        vdx_aq_decode_idx(p, n, idx, p->M, rec);
        vdx_kernels_get()->norms_sqr_ny(norms, rec, (size_t)p->d, (size_t)n);
        st = vdx_aq_train_norm(p, n, norms);
    }
    if (st) p->is_trained = 0;
    vdx_free(idx);
    vdx_free(rec);
    vdx_free(norms);
    return st;
}
