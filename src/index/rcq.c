/*
 * rcq.c — additive coarse quantizers (FAISS's AdditiveCoarseQuantizer):
 * an index whose 2^tot_bits "vectors" are all the reconstructions of an
 * additive quantizer, list c being the one whose indices are packed in
 * the bits of c (codebook 0 in the low bits).  It serves as the coarse
 * quantizer of an IVF index with millions of lists at the cost of a few
 * small codebooks.
 *
 *   - ResidualCoarseQuantizer (RQ): a search for k lists runs the residual
 *     quantizer's beam search with a beam of k * beam_factor and returns
 *     the best k beams (their distances are the L2 norms of the final
 *     residuals); beam_factor < 0 searches exhaustively;
 *   - LocalSearchCoarseQuantizer (LSQ): exhaustive search only.
 *
 * The exhaustive search scores all 2^tot_bits centroids per query from
 * the table of <q, entry> (sums built codebook by codebook) and, for L2,
 * the centroid norms computed at training.  The centroids are not stored:
 * add() and reset() are refused, train() trains the quantizer.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "index_aq.h"
#include "common/threads.h"
#include "common/topk.h"

vdx_status vdx_aq_knn_centroids_internal(const vdx_aq *aq, vdx_metric metric,
                                         int64_t n, const float *x, int64_t k,
                                         const float *norms, float *D,
                                         vdx_idx_t *I);

#define ACQ_MAX_BITS 30
#define Q_CHUNK 1024

static vdx_index_ops acq_ops[2];

int vdx_is_acq(const vdx_index *ix) {
    return ix && ix->ops >= acq_ops && ix->ops < acq_ops + 2;
}

static int64_t bits_of(const vdx_aq *aq) { return aq->tot_bits - aq->norm_bits; }

vdx_status vdx_acq_norms(vdx_acq *q) {
    if (q->cnorms) return VDX_OK;
    int64_t nc = (int64_t)1 << bits_of(q->aq);
    float *cn = vdx_malloc_array((size_t)nc, sizeof(float));
    if (!cn) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_aq_compute_centroid_norms(q->aq, cn);
    if (st) {
        vdx_free(cn);
        return st;
    }
    q->cnorms = cn;
    return VDX_OK;
}

static vdx_status acq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_acq *q = (vdx_acq *)ix;
    if (bits_of(q->aq) > ACQ_MAX_BITS ||
        ((uint64_t)sizeof(float) << bits_of(q->aq)) > q->aq->max_mem_distances)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: 2^%lld centroids are too many (the norms table "
                         "must fit max_mem_distances)",
                         ix->ops->type_name, (long long)bits_of(q->aq));
    vdx_status st = vdx_aq_train_internal(q->aq, n, x);
    if (st) return st;
    ix->is_trained = 1;
    ix->ntotal = (int64_t)1 << bits_of(q->aq);
    vdx_free(q->cnorms);
    q->cnorms = NULL;
    return ix->metric == VDX_METRIC_L2 ? vdx_acq_norms(q) : VDX_OK;
}

static vdx_status acq_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    (void)n;
    (void)x;
    (void)ids;
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "%s: add is not applicable (its centroids are the "
                     "quantizer's reconstructions; train() sets them)",
                     ix->ops->type_name);
}

static vdx_status acq_reset(vdx_index *ix) {
    return vdx_raise(VDX_ERR_UNSUPPORTED, "%s: reset is not applicable",
                     ix->ops->type_name);
}

/* Beam search of k lists for n queries: the best k of a beam of b. */
static vdx_status beam_search(const vdx_acq *q, int64_t n, const float *x,
                              int64_t k, float bf, float *D, vdx_idx_t *I) {
    const vdx_aq *rq = q->aq;
    const int64_t M = rq->M;
    int64_t b = (int64_t)((double)k * (double)bf);
    if (b > q->base.ntotal) b = q->base.ntotal;
    if (b < 1) b = 1;
    int64_t qc = VDX_MIN(n, Q_CHUNK);
    int32_t *codes = vdx_malloc_array((size_t)(qc * b), (size_t)M * sizeof(int32_t));
    float *dis = vdx_malloc_array((size_t)(qc * b), sizeof(float));
    vdx_status st = codes && dis ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    for (int64_t q0 = 0; q0 < n && !st; q0 += Q_CHUNK) {
        int64_t nq = VDX_MIN(Q_CHUNK, n - q0);
        st = vdx_rq_refine_beam_internal(rq, nq, x + q0 * rq->d, b, codes, NULL, dis);
        if (st) break;
        for (int64_t i = 0; i < nq; i++) {
            float *Di = D + (q0 + i) * k;
            vdx_idx_t *Ii = I + (q0 + i) * k;
            for (int64_t j = 0; j < k; j++) {
                const int32_t *c = codes + (i * b + j) * M;
                if (j >= b || c[0] < 0) {
                    Di[j] = FLT_MAX;
                    Ii[j] = -1;
                    continue;
                }
                uint64_t l = 0;
                int sh = 0;
                for (int64_t m = 0; m < M; m++) {
                    l |= (uint64_t)c[m] << sh;
                    sh += rq->nbits[m];
                }
                Di[j] = dis[i * b + j];
                Ii[j] = (vdx_idx_t)l;
            }
        }
    }
    vdx_free(codes);
    vdx_free(dis);
    return st;
}

static vdx_status acq_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *prm, float *D,
                             vdx_idx_t *I) {
    vdx_acq *q = (vdx_acq *)(void *)ix;
    float bf = prm && prm->beam_factor != 0 ? prm->beam_factor : q->beam_factor;
    if (q->aq->kind == VDX_AQ_RQ && bf > 0)
        return beam_search(q, n, x, k, bf, D, I);
    if (ix->metric == VDX_METRIC_L2 && !q->cnorms) {
        /* computed once; searches racing here compute the same table */
        vdx_status st;
#pragma omp critical(vdx_acq_norms)
        st = vdx_acq_norms(q);
        if (st) return st;
    }
    return vdx_aq_knn_centroids_internal(q->aq, ix->metric, n, x, k, q->cnorms,
                                         D, I);
}

static vdx_status acq_range_search(const vdx_index *ix, int64_t n,
                                   const float *x, float radius,
                                   const vdx_search_params *prm,
                                   vdx_range_builder *rb) {
    (void)n;
    (void)x;
    (void)radius;
    (void)prm;
    (void)rb;
    return vdx_raise(VDX_ERR_UNSUPPORTED, "%s: range search is not supported",
                     ix->ops->type_name);
}

static vdx_status acq_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                  float *out) {
    const vdx_acq *q = (const vdx_acq *)ix;
    vdx_status st = vdx_check_key(ix, key);
    if (st) return st;
    vdx_aq_decode_64(q->aq, (uint64_t)key, out);
    return VDX_OK;
}

static vdx_status acq_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                    int64_t ni, float *out) {
    const vdx_acq *q = (const vdx_acq *)ix;
    vdx_status st = vdx_check_range(ix, i0, ni);
    if (st) return st;
#pragma omp parallel for if (ni > 1000) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < ni; i++)
        vdx_aq_decode_64(q->aq, (uint64_t)(i0 + i), out + i * ix->d);
    return VDX_OK;
}

static vdx_status acq_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                 int64_t *nremoved) {
    (void)sel;
    (void)nremoved;
    return vdx_raise(VDX_ERR_UNSUPPORTED, "%s: remove_ids is not applicable",
                     ix->ops->type_name);
}

static void acq_destroy(vdx_index *ix) {
    vdx_acq *q = (vdx_acq *)ix;
    if (q->aq) q->aq->owner = NULL;
    vdx_aq_destroy(q->aq);
    vdx_free(q->cnorms);
    vdx_free(q);
}

static vdx_status acq_changed(vdx_index *ix) {
    vdx_acq *q = (vdx_acq *)ix;
    vdx_free(q->cnorms);
    q->cnorms = NULL;
    ix->is_trained = q->aq->is_trained;
    ix->ntotal = q->aq->is_trained && bits_of(q->aq) <= ACQ_MAX_BITS
                     ? (int64_t)1 << bits_of(q->aq)
                     : 0;
    return VDX_OK;
}

vdx_status vdx_index_additive_coarse_new(vdx_aq *aq, vdx_metric metric,
                                         vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!aq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the quantizer is NULL");
    if (aq->owner)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "the quantizer already belongs to an index");
    if (aq->kind != VDX_AQ_RQ && aq->kind != VDX_AQ_LSQ)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "additive coarse quantizer: needs an RQ or an LSQ, "
                         "got kind %d",
                         aq->kind);
    if (bits_of(aq) > ACQ_MAX_BITS)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "additive coarse quantizer: tot_bits=%lld exceeds %d",
                         (long long)bits_of(aq), ACQ_MAX_BITS);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "metric %d is not supported",
                         (int)metric);
#pragma omp critical(vdx_acq_ops)
    if (!acq_ops[0].type_name) {
        vdx_index_ops o = {"ResidualCoarseQuantizer", acq_train, acq_add,
                           acq_search, acq_range_search, acq_reset,
                           acq_reconstruct, acq_reconstruct_n, acq_remove_ids,
                           acq_destroy};
        acq_ops[0] = o;
        o.type_name = "LocalSearchCoarseQuantizer";
        acq_ops[1] = o;
    }
    vdx_acq *q = vdx_calloc(1, sizeof *q);
    if (!q) return VDX_ERR_OUT_OF_MEMORY;
    q->base.ops = &acq_ops[aq->kind == VDX_AQ_RQ ? 0 : 1];
    q->base.d = aq->d;
    q->base.metric = metric;
    q->beam_factor = aq->kind == VDX_AQ_RQ ? 4.0f : -1.0f;
    q->aq = aq;
    aq->owner = &q->base;
    aq->changed = acq_changed;
    acq_changed(&q->base);
    *out = &q->base;
    return VDX_OK;
}

vdx_aq *vdx_index_aq(const vdx_index *ix) {
    if (vdx_is_index_aq(ix)) return ((const vdx_aqi *)ix)->aq;
    if (vdx_is_acq(ix)) return ((const vdx_acq *)ix)->aq;
    if (vdx_is_ivfaq(ix)) return ((const vdx_ivfaq *)(const void *)ix)->aq;
    if (vdx_is_aqfs(ix)) return ((const vdx_aqfs *)ix)->aq;
    if (vdx_is_ivfaqfs(ix)) return ((const vdx_ivfaqfs *)(const void *)ix)->aq;
    return NULL;
}

float vdx_index_rcq_beam_factor(const vdx_index *ix) {
    return vdx_is_acq(ix) ? ((const vdx_acq *)ix)->beam_factor : 0.0f;
}

vdx_status vdx_index_rcq_set_beam_factor(vdx_index *ix, float bf) {
    vdx_clear_error();
    if (!vdx_is_acq(ix) || ((vdx_acq *)ix)->aq->kind != VDX_AQ_RQ)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_beam_factor: not a ResidualCoarseQuantizer");
    vdx_acq *q = (vdx_acq *)ix;
    if (!isfinite(bf) || (bf > 0 && bf < 1) || bf > 1e6f)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_beam_factor: beam_factor=%g must be >= 1 (or < 0 "
                         "for an exhaustive search)",
                         (double)bf);
    vdx_status st = VDX_OK;
    vdx_team_begin();
    if (bf > 0) {
        if (q->aq->codebooks && !q->aq->cross) st = vdx_aq_compute_tables(q->aq);
    } else if (ix->metric == VDX_METRIC_L2 && q->aq->is_trained) {
        st = vdx_acq_norms(q);
    }
    vdx_team_end();
    if (!st) q->beam_factor = bf;
    return st;
}
