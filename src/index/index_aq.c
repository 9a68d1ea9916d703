/*
 * index_aq.c — the flat additive-quantizer indexes (FAISS's
 * IndexAdditiveQuantizer family: IndexResidualQuantizer,
 * IndexLocalSearchQuantizer, IndexProductResidualQuantizer,
 * IndexProductLocalSearchQuantizer): every vector stored as an additive
 * code (aq.h), searched exhaustively.
 *
 * ST_decompress: the exact distance to each reconstruction.  FAISS decodes
 * every code once per query; here a block of 1024 codes is decoded once
 * for all the queries of a batch, and the distances of the batch to the
 * block are one sgemm tile (|q|^2 + |y|^2 - 2 <q, y>; threads take
 * blocks, each with heaps for all queries, merged at the end).  The other
 * search types score a code with the query's table of <q, entry> (one
 * sgemm for all queries) and the norm the code stores or implies
 * (aq.c's vdx_aq_lut_distances); threads take queries, or code ranges when
 * queries are fewer than threads.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_aq.h"
#include "common/blas.h"
#include "common/interrupt.h"
#include "common/threads.h"
#include "common/topk.h"
#include "simd/kernels.h"

#define DB_BLOCK 1024 /* codes decoded per block */
#define Q_BATCH 256   /* queries per sgemm tile */
#define Q_CHUNK 4096  /* queries whose heaps are kept per pass */
#define SCAN 256      /* codes scored per LUT pass */

static vdx_index_ops aq_ops[4];

const char *vdx_index_aq_name(int kind) {
    static const char *names[4] = {"IndexResidualQuantizer",
                                   "IndexLocalSearchQuantizer",
                                   "IndexProductResidualQuantizer",
                                   "IndexProductLocalSearchQuantizer"};
    return kind >= 0 && kind < 4 ? names[kind] : "IndexAdditiveQuantizer";
}

int vdx_is_index_aq(const vdx_index *ix) {
    return ix && ix->ops >= aq_ops && ix->ops < aq_ops + 4;
}

vdx_status vdx_index_aq_reserve(vdx_aqi *p, int64_t n) {
    if (n <= p->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, p->cap + p->cap / 2);
    uint8_t *c = vdx_realloc_array(p->codes, (size_t)nc, p->aq->code_size);
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    p->codes = c;
    p->cap = nc;
    return VDX_OK;
}

static vdx_status aqi_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_aqi *p = (vdx_aqi *)ix;
    vdx_status st = vdx_aq_train_internal(p->aq, n, x);
    ix->is_trained = !st && p->aq->is_trained;
    return st;
}

static vdx_status aqi_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    vdx_aqi *p = (vdx_aqi *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s: add_with_ids is not supported (wrap the index in "
                         "an IndexIDMap)",
                         ix->ops->type_name);
    vdx_status st = vdx_index_aq_reserve(p, ix->ntotal + n);
    if (st) return st;
    st = vdx_aq_encode(p->aq, n, x,
                       p->codes + (size_t)ix->ntotal * p->aq->code_size);
    if (!st) ix->ntotal += n;
    return st;
}

/* Sorted results from a key heap where L2 keys are (distance - add):
 * FAISS does not clamp LUT distances, so neither does this. */
static void finish_lut(int64_t k, float *D, vdx_idx_t *I, int ip, float add) {
    if (ip) {
        vdx_topk_finish(k, D, I, 1, 0);
        return;
    }
    vdx_heap_sort(k, D, I);
    /* negated, the sorted finish of similarities restores them unclamped
     * and orders ties by id */
    for (int64_t j = 0; j < k; j++) D[j] = -(D[j] + add);
    vdx_topk_finish_sorted(k, D, I, 1, 0);
    for (int64_t j = 0; j < k; j++)
        if (I[j] < 0) D[j] = FLT_MAX;
}

/* ---- decompress search ---------------------------------------------------- */

static vdx_status search_decompress(const vdx_aqi *p, int64_t n,
                                    const float *x, int64_t k,
                                    const vdx_selector *sel, float *D,
                                    vdx_idx_t *I) {
    const vdx_index *ix = &p->base;
    const int64_t d = ix->d, nt = ix->ntotal;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const int nth = vdx_nthreads();
    const vdx_kernels *K = vdx_kernels_get();
    const int64_t qc = VDX_MIN(n, Q_CHUNK);
    const size_t hs = (size_t)qc * (size_t)k;
    float *tk = vdx_malloc_array((size_t)nth * hs, sizeof(float));
    vdx_idx_t *ti = vdx_malloc_array((size_t)nth * hs, sizeof(vdx_idx_t));
    const size_t per = (size_t)DB_BLOCK * (size_t)d + DB_BLOCK +
                       (size_t)Q_BATCH * DB_BLOCK + DB_BLOCK;
    float *work = vdx_aligned_alloc((size_t)nth, per * sizeof(float));
    float *qn = vdx_malloc_array((size_t)qc, sizeof(float));
    vdx_status st = tk && ti && work && qn ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    int stop = 0;
    for (int64_t q0 = 0; q0 < n && !st; q0 += Q_CHUNK) {
        const int64_t nq = VDX_MIN(Q_CHUNK, n - q0);
        const float *xq = x + q0 * d;
        if (!ip) K->norms_sqr_ny(qn, xq, (size_t)d, (size_t)nq);
        const int64_t nblk = (nt + DB_BLOCK - 1) / DB_BLOCK;
#pragma omp parallel num_threads(nth)
        {
            const int t = omp_get_thread_num();
            float *hk0 = tk + (size_t)t * hs;
            vdx_idx_t *hi0 = ti + (size_t)t * hs;
            float *y = work + (size_t)t * per;
            float *yn = y + (size_t)DB_BLOCK * d;
            float *tile = yn + DB_BLOCK;
            uint32_t *cand = (uint32_t *)(tile + (size_t)Q_BATCH * DB_BLOCK);
            for (int64_t q = 0; q < nq; q++) vdx_heap_init(k, hk0 + q * k, hi0 + q * k);
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nblk; b++) {
                if (vdx_poll_stop(&stop)) continue;
                const int64_t i0 = b * DB_BLOCK, bn = VDX_MIN(DB_BLOCK, nt - i0);
                vdx_aq_decode_n(p->aq, bn, p->codes + (size_t)i0 * p->aq->code_size, y);
                if (!ip) K->norms_sqr_ny(yn, y, (size_t)d, (size_t)bn);
                for (int64_t qb = 0; qb < nq; qb += Q_BATCH) {
                    const int64_t qn_ = VDX_MIN(Q_BATCH, nq - qb);
                    if (ip) {
                        vdx_gemm_xyt((int)qn_, (int)bn, (int)d, -1.0f, xq + qb * d, y, tile);
                    } else {
                        for (int64_t q = 0; q < qn_; q++)
                            for (int64_t i = 0; i < bn; i++)
                                tile[q * bn + i] = qn[qb + q] + yn[i];
                        vdx_gemm_xyt_acc((int)qn_, (int)bn, (int)d, -2.0f, xq + qb * d,
                                         y, tile);
                    }
                    for (int64_t q = 0; q < qn_; q++) {
                        float *hk = hk0 + (qb + q) * k;
                        vdx_idx_t *hi = hi0 + (qb + q) * k;
                        const float *row = tile + q * bn;
                        size_t nc = K->filter_less(row, (size_t)bn, hk[0], cand);
                        for (size_t c = 0; c < nc; c++) {
                            vdx_idx_t id = i0 + cand[c];
                            if (sel && !vdx_sel_member(sel, id)) continue;
                            vdx_heap_push(k, hk, hi, row[cand[c]], id);
                        }
                    }
                }
            }
#pragma omp for schedule(static)
            for (int64_t q = 0; q < nq; q++) {
                float *hk = D + (q0 + q) * k;
                vdx_idx_t *hi = I + (q0 + q) * k;
                memcpy(hk, tk + q * k, (size_t)k * sizeof(float));
                memcpy(hi, ti + q * k, (size_t)k * sizeof(vdx_idx_t));
                for (int u = 1; u < omp_get_num_threads(); u++)
                    vdx_heap_merge(k, hk, hi, tk + (size_t)u * hs + q * k,
                                   ti + (size_t)u * hs + q * k);
                vdx_topk_finish(k, hk, hi, ip, 0);
            }
        }
        if (stop)
            st = vdx_raise(VDX_ERR_INTERRUPTED, "search of %lld queries interrupted",
                           (long long)n);
    }
    vdx_free(tk);
    vdx_free(ti);
    vdx_aligned_free(work);
    vdx_free(qn);
    return st;
}

/* ---- LUT search ----------------------------------------------------------- */

/* keys (L2: distance - |q|^2; IP: -score) of codes [i0, i1) into a heap */
static void lut_scan(const vdx_aqi *p, const float *lut, int ip,
                     int64_t i0, int64_t i1, int64_t k, const vdx_selector *sel,
                     float *hk, vdx_idx_t *hi, float *keys, uint32_t *cand) {
    const vdx_kernels *K = vdx_kernels_get();
    const size_t cs = p->aq->code_size;
    for (int64_t c0 = i0; c0 < i1; c0 += SCAN) {
        size_t cn = (size_t)VDX_MIN(SCAN, i1 - c0);
        vdx_aq_lut_distances(p->aq, ip, p->codes + (size_t)c0 * cs, cn, lut, keys);
        if (ip)
            for (size_t j = 0; j < cn; j++) keys[j] = -keys[j];
        size_t nc = K->filter_less(keys, cn, hk[0], cand);
        for (size_t c = 0; c < nc; c++) {
            vdx_idx_t id = c0 + cand[c];
            if (sel && !vdx_sel_member(sel, id)) continue;
            vdx_heap_push(k, hk, hi, keys[cand[c]], id);
        }
    }
}

static vdx_status search_lut(const vdx_aqi *p, int64_t n, const float *x,
                             int64_t k, const vdx_selector *sel, float *D,
                             vdx_idx_t *I) {
    const vdx_index *ix = &p->base;
    const int64_t d = ix->d, T = p->aq->total_cb, nt = ix->ntotal;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const int nth = vdx_nthreads();
    const vdx_kernels *K = vdx_kernels_get();
    if (p->aq->search_type == VDX_AQ_ST_NORM_FROM_LUT && !ip && !p->aq->centroid_norms)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: ST_norm_from_LUT needs the codebook tables (call "
                         "compute_codebook_tables)",
                         ix->ops->type_name);
    const int64_t qc = VDX_MIN(n, Q_CHUNK);
    float *lut = vdx_malloc_array((size_t)qc, (size_t)T * sizeof(float));
    float *work = vdx_malloc_array((size_t)nth, 2 * SCAN * sizeof(float));
    float *tk = NULL;
    vdx_idx_t *ti = NULL;
    vdx_status st = lut && work ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    const int by_query = n >= nth || nth == 1 || nt < 4 * SCAN;
    if (!st && !by_query) {
        tk = vdx_malloc_array((size_t)nth * (size_t)k, sizeof(float));
        ti = vdx_malloc_array((size_t)nth * (size_t)k, sizeof(vdx_idx_t));
        if (!tk || !ti) st = VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t q0 = 0; q0 < n && !st; q0 += Q_CHUNK) {
        const int64_t nq = VDX_MIN(Q_CHUNK, n - q0);
        vdx_aq_lut(p->aq, nq, x + q0 * d, 1.0f, lut, T);
        if (by_query) {
#pragma omp parallel for schedule(dynamic, 1) if (nq > 1) num_threads(nth)
            for (int64_t q = 0; q < nq; q++) {
                float *keys = work + (size_t)omp_get_thread_num() * 2 * SCAN;
                uint32_t *cand = (uint32_t *)(keys + SCAN);
                float *hk = D + (q0 + q) * k;
                vdx_idx_t *hi = I + (q0 + q) * k;
                vdx_heap_init(k, hk, hi);
                lut_scan(p, lut + q * T, ip, 0, nt, k, sel, hk, hi, keys, cand);
                finish_lut(k, hk, hi, ip,
                           ip ? 0 : K->norm_sqr(x + (q0 + q) * d, (size_t)d));
            }
            continue;
        }
        for (int64_t q = 0; q < nq; q++) {
#pragma omp parallel num_threads(nth)
            {
                int t = omp_get_thread_num(), ntt = omp_get_num_threads();
                float *keys = work + (size_t)t * 2 * SCAN;
                uint32_t *cand = (uint32_t *)(keys + SCAN);
                float *hk = tk + (size_t)t * k;
                vdx_idx_t *hi = ti + (size_t)t * k;
                vdx_heap_init(k, hk, hi);
                int64_t per_t = (nt + ntt - 1) / ntt;
                int64_t a = VDX_MIN(nt, per_t * t), b = VDX_MIN(nt, a + per_t);
                lut_scan(p, lut + q * T, ip, a, b, k, sel, hk, hi, keys, cand);
            }
            float *hk = D + (q0 + q) * k;
            vdx_idx_t *hi = I + (q0 + q) * k;
            memcpy(hk, tk, (size_t)k * sizeof(float));
            memcpy(hi, ti, (size_t)k * sizeof(vdx_idx_t));
            for (int t = 1; t < nth; t++)
                vdx_heap_merge(k, hk, hi, tk + (size_t)t * k, ti + (size_t)t * k);
            finish_lut(k, hk, hi, ip,
                       ip ? 0 : K->norm_sqr(x + (q0 + q) * d, (size_t)d));
        }
    }
    vdx_free(lut);
    vdx_free(work);
    vdx_free(tk);
    vdx_free(ti);
    return st;
}

static vdx_status aqi_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *prm, float *D,
                             vdx_idx_t *I) {
    const vdx_aqi *p = (const vdx_aqi *)ix;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    if (p->aq->search_type == VDX_AQ_ST_DECOMPRESS)
        return search_decompress(p, n, x, k, sel, D, I);
    return search_lut(p, n, x, k, sel, D, I);
}

static vdx_status aqi_range_search(const vdx_index *ix, int64_t n,
                                   const float *x, float radius,
                                   const vdx_search_params *prm,
                                   vdx_range_builder *rb) {
    const vdx_aqi *p = (const vdx_aqi *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const int dec = p->aq->search_type == VDX_AQ_ST_DECOMPRESS;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const int64_t d = ix->d, T = p->aq->total_cb;
    const size_t cs = p->aq->code_size;
    vdx_status st = VDX_OK;
#pragma omp parallel if (n > 1) num_threads(vdx_nthreads())
    {
        float *lut = vdx_malloc_array((size_t)T + SCAN + (size_t)(SCAN * d), sizeof(float));
        if (!lut) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
        const vdx_kernels *K = vdx_kernels_get();
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            if (!lut) continue;
            float *vals = lut + T, *y = vals + SCAN;
            const float *xq = x + q * d;
            float qn = ip || dec ? 0 : K->norm_sqr(xq, (size_t)d);
            if (!dec) vdx_aq_lut(p->aq, 1, xq, 1.0f, lut, T);
            for (int64_t c0 = 0; c0 < ix->ntotal; c0 += SCAN) {
                size_t cn = (size_t)VDX_MIN(SCAN, ix->ntotal - c0);
                if (dec) {
                    vdx_aq_decode_n(p->aq, (int64_t)cn, p->codes + (size_t)c0 * cs, y);
                    if (ip) K->inner_product_ny(vals, xq, y, (size_t)d, cn);
                    else K->l2sqr_ny(vals, xq, y, (size_t)d, cn);
                } else {
                    vdx_aq_lut_distances(p->aq, ip, p->codes + (size_t)c0 * cs, cn, lut,
                                         vals);
                    if (!ip)
                        for (size_t j = 0; j < cn; j++) vals[j] += qn;
                }
                if (vdx_range_collect(rb, q, vals, cn, ip, 0, radius, NULL, c0, sel)) {
#pragma omp atomic write
                    st = VDX_ERR_OUT_OF_MEMORY;
                }
            }
        }
        vdx_free(lut);
    }
    return st;
}

static vdx_status aqi_reset(vdx_index *ix) {
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status aqi_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                  float *out) {
    const vdx_aqi *p = (const vdx_aqi *)ix;
    vdx_status st = vdx_check_key(ix, key);
    if (st) return st;
    vdx_aq_decode_n(p->aq, 1, p->codes + (size_t)key * p->aq->code_size, out);
    return VDX_OK;
}

static vdx_status aqi_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                    int64_t ni, float *out) {
    const vdx_aqi *p = (const vdx_aqi *)ix;
    vdx_status st = vdx_check_range(ix, i0, ni);
    if (st) return st;
    vdx_aq_decode_n(p->aq, ni, p->codes + (size_t)i0 * p->aq->code_size, out);
    return VDX_OK;
}

static vdx_status aqi_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                 int64_t *nremoved) {
    vdx_aqi *p = (vdx_aqi *)ix;
    return vdx_codes_remove_ids(ix, p->codes, p->aq->code_size, sel, nremoved);
}

static void aqi_destroy(vdx_index *ix) {
    vdx_aqi *p = (vdx_aqi *)ix;
    if (p->aq) p->aq->owner = NULL;
    vdx_aq_destroy(p->aq);
    vdx_free(p->codes);
    vdx_free(p);
}

/* the quantizer changed (trained, codebooks, search type) */
static vdx_status aqi_changed(vdx_index *ix) {
    vdx_aqi *p = (vdx_aqi *)ix;
    ix->is_trained = p->aq->is_trained;
    if (ix->ntotal == 0 && p->cap) { /* the code size may have changed */
        vdx_free(p->codes);
        p->codes = NULL;
        p->cap = 0;
    }
    return VDX_OK;
}

vdx_status vdx_index_aq_new(vdx_aq *aq, vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!aq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the quantizer is NULL");
    if (aq->owner)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "the quantizer already belongs to an index");
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "metric %d is not supported",
                         (int)metric);
#pragma omp critical(vdx_aq_ops)
    if (!aq_ops[0].type_name)
        for (int k = 0; k < 4; k++) {
            vdx_index_ops o = {vdx_index_aq_name(k), aqi_train, aqi_add,
                               aqi_search, aqi_range_search, aqi_reset,
                               aqi_reconstruct, aqi_reconstruct_n,
                               aqi_remove_ids, aqi_destroy};
            aq_ops[k] = o;
        }
    vdx_aqi *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    p->base.ops = &aq_ops[aq->kind];
    p->base.d = aq->d;
    p->base.metric = metric;
    p->base.is_trained = aq->is_trained;
    p->aq = aq;
    aq->owner = &p->base;
    aq->changed = aqi_changed;
    *out = &p->base;
    return VDX_OK;
}

/* ---- accessors shared by the kinds ------------------------------------ */

static vdx_status sa_check(const vdx_index *ix, int64_t n, const void *a,
                           const void *b, const char *what) {
    if (!vdx_is_index_aq(ix) && !vdx_is_aqfs(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: not a flat additive-quantizer index", what);
    if (n < 0 || (n > 0 && (!a || !b)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: bad arguments", what);
    if (!vdx_index_aq(ix)->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED, "%s: the index is not trained", what);
    return VDX_OK;
}

vdx_status vdx_index_aq_sa_encode(const vdx_index *ix, int64_t n,
                                  const float *x, uint8_t *codes) {
    vdx_clear_error();
    vdx_status st = sa_check(ix, n, x, codes, "sa_encode");
    if (!st) st = vdx_check_vectors(x, n, ix->d, "vectors to encode");
    if (st || n == 0) return st;
    vdx_team_begin();
    st = vdx_aq_encode(vdx_index_aq(ix), n, x, codes);
    vdx_team_end();
    return st;
}

vdx_status vdx_index_aq_sa_decode(const vdx_index *ix, int64_t n,
                                  const uint8_t *codes, float *x) {
    vdx_clear_error();
    vdx_status st = sa_check(ix, n, codes, x, "sa_decode");
    if (st || n == 0) return st;
    vdx_team_begin();
    vdx_aq_decode_n(vdx_index_aq(ix), n, codes, x);
    vdx_team_end();
    return VDX_OK;
}

const uint8_t *vdx_index_aq_codes(const vdx_index *ix) {
    return vdx_is_index_aq(ix) ? ((const vdx_aqi *)ix)->codes : NULL;
}
