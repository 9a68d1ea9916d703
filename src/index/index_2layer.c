/*
 * index_2layer.c — Index2Layer: FAISS's two-level codec, an IVFPQ without
 * inverted lists (Jégou, Douze, Schmid, "Product quantization for nearest
 * neighbor search", TPAMI 2011, §IV: the coarse quantizer plus a product
 * quantizer of the residual).  Vector i is stored, in insertion order, as
 *
 *     [ list number: code_size_1 bytes, little-endian | PQ code of x - c ]
 *
 * so any vector can be decoded at random (c_list + PQ residual), which is
 * what IndexHNSW2Level needs from its storage.
 *
 * Training follows FAISS: k-means of nlist centroids into the quantizer (10
 * iterations; skipped when the quantizer already holds nlist centroids),
 * then at most max_points_per_centroid x ksub points (a seeded sample) are
 * assigned and the PQ is trained on their residuals.
 *
 * Search.  FAISS's Index2Layer refuses search ("not implemented"); vecdex
 * searches exhaustively over the reconstructed vectors: codes are decoded
 * a block at a time, then every query of the batch is scored against the
 * block with the dispatched *_ny kernels, so each code is decoded once per
 * batch however many queries there are.  With at least as many queries as
 * threads the queries run in parallel on each block; with fewer, the
 * blocks are shared out among threads (per-thread heaps, merged).
 */
#include <omp.h>
#include <string.h>

#include "index_2layer.h"
#include "cluster/kmeans.h"
#include "common/threads.h"
#include "common/topk.h"
#include "quant/transform.h"
#include "simd/kernels.h"

/* Codes decoded per step of a search: 1024, fewer in high dimension so
 * that a decoded block stays near 4 MiB. */
static inline int64_t block_size(size_t d) {
    size_t b = ((size_t)1 << 20) / (d ? d : 1);
    return b > 1024 ? 1024 : b < 16 ? 16 : (int64_t)b;
}
#define ENCODE_BLOCK 32768  /* vectors encoded per step of add (FAISS's) */

static const vdx_index_ops twolayer_ops;

int vdx_is_2layer(const vdx_index *ix) {
    return ix && ix->ops == &twolayer_ops;
}

size_t vdx_2layer_code_size_1(int64_t nlist) {
    size_t b = 0;
    for (uint64_t nl = (uint64_t)(nlist - 1); nl > 0; nl >>= 8) b++;
    return b;
}

vdx_status vdx_2layer_reserve(vdx_index_2layer *t, int64_t n) {
    if (n <= t->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, t->cap + t->cap / 2);
    uint8_t *c = vdx_realloc_array(t->codes, (size_t)nc,
                                   VDX_MAX(t->code_size, (size_t)1));
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    t->codes = c;
    t->cap = nc;
    return VDX_OK;
}

/* Writes centroid `list` into out. */
static void centroid(const vdx_index_2layer *t, int64_t list, float *out) {
    const vdx_index *q = t->quantizer;
    size_t d = (size_t)t->base.d;
    if (vdx_is_flat(q) && list < q->ntotal) {
        memcpy(out, ((const vdx_flat *)q)->xb + (size_t)list * d,
               d * sizeof(float));
        return;
    }
    if (q->ops->reconstruct(q, list, out)) memset(out, 0, d * sizeof(float));
}

void vdx_2layer_decode(const vdx_index_2layer *t, int64_t i, float *out) {
    const uint8_t *code = t->codes + (size_t)i * t->code_size;
    const vdx_pq *pq = &t->pq;
    centroid(t, vdx_2layer_list(t, code), out);
    code += t->code_size_1;
    const int64_t dsub = pq->dsub;
    for (int64_t m = 0; m < pq->M; m++) {
        const float *c = pq->centroids +
                         ((size_t)m * (size_t)pq->ksub +
                          vdx_pq_get(code, m, pq->nbits)) * (size_t)dsub;
        float *o = out + m * dsub;
        for (int64_t j = 0; j < dsub; j++) o[j] += c[j];
    }
}

/* The list of each of n vectors (nearest centroid). */
static vdx_status assign(const vdx_index_2layer *t, int64_t n, const float *x,
                         int64_t *lists) {
    float *dis = vdx_malloc_array((size_t)VDX_MAX(n, 1), sizeof(float));
    if (!dis) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = t->quantizer->ops->search(t->quantizer, n, x, 1, NULL, dis,
                                              lists);
    vdx_free(dis);
    for (int64_t i = 0; i < n && !st; i++)
        if (lists[i] < 0 || lists[i] >= t->nlist)
            st = vdx_raise(VDX_ERR_INTERNAL,
                           "Index2Layer: the quantizer assigned vector %lld "
                           "to list %lld, outside [0, nlist=%lld)",
                           (long long)i, (long long)lists[i],
                           (long long)t->nlist);
    return st;
}

/* r = x - centroid(lists[i]) for n vectors. */
static void residuals(const vdx_index_2layer *t, int64_t n, const float *x,
                      const int64_t *lists, float *r) {
    const int64_t d = t->base.d;
#pragma omp parallel for if (n > 1024) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++) {
        float *ri = r + i * d;
        centroid(t, lists[i], ri);
        for (int64_t j = 0; j < d; j++) ri[j] = x[i * d + j] - ri[j];
    }
}

static vdx_status tl_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_index_2layer *t = (vdx_index_2layer *)ix;
    vdx_index *q = t->quantizer;
    const int64_t d = ix->d;
    vdx_status st = vdx_refuse_populated_train(ix);
    if (st) return st;
    if (!(q->is_trained && q->ntotal == t->nlist)) {
        if (t->trains_alone != 0)
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "Index2Layer: quantizer_trains_alone=%d is not "
                             "supported: train the quantizer first (it must "
                             "hold nlist=%lld centroids)",
                             t->trains_alone, (long long)t->nlist);
        if (n < t->nlist)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "Index2Layer train: %lld training points cannot "
                             "make nlist=%lld centroids (need n >= nlist)",
                             (long long)n, (long long)t->nlist);
        float *cent = vdx_malloc_array((size_t)t->nlist,
                                       (size_t)d * sizeof(float));
        if (!cent) return VDX_ERR_OUT_OF_MEMORY;
        st = vdx_kmeans_train_metric(d, t->nlist, n, x, &t->cp, q->metric,
                                     cent, NULL, NULL);
        if (!st && !(st = vdx_index_reset(q)) &&
            !(st = vdx_index_train(q, t->nlist, cent)))
            st = vdx_index_add(q, t->nlist, cent);
        vdx_free(cent);
        if (st) return st;
    }
    /* as FAISS: the PQ sees at most max_points_per_centroid x ksub points */
    float *sub = NULL;
    st = vdx_subsample(n, d, t->pq.cp.max_points_per_centroid * t->pq.ksub, x,
                       (uint64_t)t->pq.cp.seed, &sub);
    if (st) return st;
    if (sub) {
        n = t->pq.cp.max_points_per_centroid * t->pq.ksub;
        x = sub;
    }
    float *r = vdx_malloc_array((size_t)VDX_MAX(n, 1), (size_t)d * sizeof(float));
    int64_t *lists = vdx_malloc_array((size_t)VDX_MAX(n, 1), sizeof(int64_t));
    if (!r || !lists) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((st = assign(t, n, x, lists))) goto done;
    residuals(t, n, x, lists, r);
    if ((st = vdx_pq_train_internal(&t->pq, n, r))) goto done;
    ix->is_trained = 1;
done:
    vdx_free(sub);
    vdx_free(r);
    vdx_free(lists);
    return st;
}

static vdx_status tl_add(vdx_index *ix, int64_t n, const float *x,
                         const vdx_idx_t *ids) {
    vdx_index_2layer *t = (vdx_index_2layer *)ix;
    const int64_t d = ix->d;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "Index2Layer: add_with_ids is not supported (wrap "
                         "the index in an IndexIDMap)");
    vdx_status st = vdx_2layer_reserve(t, ix->ntotal + n);
    if (st) return st;
    int64_t bs = VDX_MIN(n, ENCODE_BLOCK);
    float *r = vdx_malloc_array((size_t)VDX_MAX(bs, 1), (size_t)d * sizeof(float));
    int64_t *lists = vdx_malloc_array((size_t)VDX_MAX(bs, 1), sizeof(int64_t));
    uint8_t *pc = vdx_malloc_array((size_t)VDX_MAX(bs, 1), t->code_size_2);
    if (!r || !lists || !pc) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i0 = 0; i0 < n; i0 += bs) {
        int64_t m = VDX_MIN(bs, n - i0);
        const float *xb = x + i0 * d;
        if ((st = assign(t, m, xb, lists))) goto done;
        residuals(t, m, xb, lists, r);
        vdx_pq_encode(&t->pq, m, r, pc);
        uint8_t *dst = t->codes + (size_t)(ix->ntotal + i0) * t->code_size;
        for (int64_t i = 0; i < m; i++, dst += t->code_size) {
            uint64_t l = (uint64_t)lists[i];
            for (size_t b = 0; b < t->code_size_1; b++) dst[b] = (uint8_t)(l >> (8 * b));
            memcpy(dst + t->code_size_1, pc + (size_t)i * t->code_size_2,
                   t->code_size_2);
        }
    }
    ix->ntotal += n; /* only once everything is encoded */
done:
    vdx_free(r);
    vdx_free(lists);
    vdx_free(pc);
    return st;
}

/* Decodes codes [i0, i0 + m) into buf (m x d), threaded. */
static void decode_block(const vdx_index_2layer *t, int64_t i0, int64_t m,
                         float *buf) {
    const int64_t d = t->base.d;
#pragma omp parallel for if (m * d > 16384) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < m; i++) vdx_2layer_decode(t, i0 + i, buf + i * d);
}

/* values[j] = L2 distance or inner product of q and block vector j. */
static void score(const vdx_kernels *K, int ip, const float *q,
                  const float *buf, size_t d, size_t m, float *values) {
    if (ip) K->inner_product_ny(values, q, buf, d, m);
    else K->l2sqr_ny(values, q, buf, d, m);
}

/* Scores block [i0, i0 + m) (decoded in buf) for query q into its heap. */
static void scan_block(const vdx_kernels *K, int ip, const float *q,
                       const float *buf, size_t d, int64_t i0, int64_t m,
                       int64_t k, const vdx_selector *sel, float *v, float *hk,
                       vdx_idx_t *hi) {
    score(K, ip, q, buf, d, (size_t)m, v);
    for (int64_t j = 0; j < m; j++) {
        if (sel && !vdx_sel_member(sel, i0 + j)) continue;
        vdx_heap_push(k, hk, hi, ip ? -v[j] : v[j], i0 + j);
    }
}

static vdx_status tl_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *prm, float *D,
                            vdx_idx_t *I) {
    const vdx_index_2layer *t = (const vdx_index_2layer *)ix;
    const vdx_kernels *K = vdx_kernels_get();
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t d = (size_t)ix->d;
    const int nth = vdx_nthreads();
    const int64_t blk = block_size(d);
    const int64_t nblocks = (ix->ntotal + blk - 1) / blk;
    for (int64_t q = 0; q < n; q++) vdx_heap_init(k, D + q * k, I + q * k);
    if (n >= nth || nth == 1 || nblocks < 2) {
        /* many queries: each block decoded once (threaded), then the
         * queries scored against it in parallel */
        float *buf = vdx_malloc_array((size_t)blk, d * sizeof(float));
        float *vals = vdx_malloc_array((size_t)nth * (size_t)blk, sizeof(float));
        if (!buf || !vals) {
            vdx_free(buf);
            vdx_free(vals);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        for (int64_t i0 = 0; i0 < ix->ntotal; i0 += blk) {
            int64_t m = VDX_MIN(blk, ix->ntotal - i0);
            decode_block(t, i0, m, buf);
#pragma omp parallel for if (n > 1) num_threads(nth)
            for (int64_t q = 0; q < n; q++)
                scan_block(K, ip, x + (size_t)q * d, buf, d, i0, m, k, sel,
                           vals + (size_t)omp_get_thread_num() * (size_t)blk,
                           D + q * k, I + q * k);
        }
        vdx_free(buf);
        vdx_free(vals);
    } else {
        /* few queries: the blocks shared out among threads, each with its
         * own heaps for every query, merged at the end */
        size_t per = (size_t)blk * d + (size_t)blk;
        float *work = vdx_malloc_array((size_t)nth, per * sizeof(float));
        float *tk = vdx_malloc_array((size_t)nth * (size_t)(n * k), sizeof(float));
        vdx_idx_t *ti =
            vdx_malloc_array((size_t)nth * (size_t)(n * k), sizeof(vdx_idx_t));
        if (!work || !tk || !ti) {
            vdx_free(work);
            vdx_free(tk);
            vdx_free(ti);
            return VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp parallel num_threads(nth)
        {
            int th = omp_get_thread_num();
            float *buf = work + (size_t)th * per, *v = buf + (size_t)blk * d;
            float *hk = tk + (size_t)th * (size_t)(n * k);
            vdx_idx_t *hi = ti + (size_t)th * (size_t)(n * k);
            for (int64_t q = 0; q < n; q++) vdx_heap_init(k, hk + q * k, hi + q * k);
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nblocks; b++) {
                int64_t i0 = b * blk, m = VDX_MIN(blk, ix->ntotal - i0);
                for (int64_t i = 0; i < m; i++)
                    vdx_2layer_decode(t, i0 + i, buf + (size_t)i * d);
                for (int64_t q = 0; q < n; q++)
                    scan_block(K, ip, x + (size_t)q * d, buf, d, i0, m, k, sel,
                               v, hk + q * k, hi + q * k);
            }
        }
        for (int th = 0; th < nth; th++)
            for (int64_t q = 0; q < n; q++)
                vdx_heap_merge(k, D + q * k, I + q * k,
                               tk + (size_t)th * (size_t)(n * k) + q * k,
                               ti + (size_t)th * (size_t)(n * k) + q * k);
        vdx_free(work);
        vdx_free(tk);
        vdx_free(ti);
    }
    for (int64_t q = 0; q < n; q++) vdx_topk_finish(k, D + q * k, I + q * k, ip, 0);
    return VDX_OK;
}

static vdx_status tl_range_search(const vdx_index *ix, int64_t n,
                                  const float *x, float radius,
                                  const vdx_search_params *prm,
                                  vdx_range_builder *rb) {
    const vdx_index_2layer *t = (const vdx_index_2layer *)ix;
    const vdx_kernels *K = vdx_kernels_get();
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t d = (size_t)ix->d;
    const int nth = vdx_nthreads();
    const int64_t blk = block_size(d);
    float *buf = vdx_malloc_array((size_t)blk, d * sizeof(float));
    float *vals = vdx_malloc_array((size_t)nth * (size_t)blk, sizeof(float));
    vdx_status st = buf && vals ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i0 = 0; !st && i0 < ix->ntotal; i0 += blk) {
        int64_t m = VDX_MIN(blk, ix->ntotal - i0);
        decode_block(t, i0, m, buf);
#pragma omp parallel for if (n > 1) num_threads(nth)
        for (int64_t q = 0; q < n; q++) {
            float *v = vals + (size_t)omp_get_thread_num() * (size_t)blk;
            score(K, ip, x + (size_t)q * d, buf, d, (size_t)m, v);
            vdx_status s = vdx_range_collect(rb, q, v, (size_t)m, ip, 0, radius,
                                             NULL, i0, sel);
            if (s) {
#pragma omp atomic write
                st = s;
            }
        }
    }
    vdx_free(buf);
    vdx_free(vals);
    return st;
}

static vdx_status tl_reset(vdx_index *ix) {
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status tl_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                 float *out) {
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    vdx_2layer_decode((const vdx_index_2layer *)ix, key, out);
    return VDX_OK;
}

static vdx_status tl_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                   int64_t ni, float *out) {
    vdx_status rst = vdx_check_range(ix, i0, ni);
    if (rst) return rst;
    decode_block((const vdx_index_2layer *)ix, i0, ni, out);
    return VDX_OK;
}

/* As FAISS's IndexFlatCodes: kept codes compacted, renumbered 0..n-1. */
static vdx_status tl_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    vdx_index_2layer *c = (vdx_index_2layer *)ix;
    return vdx_codes_remove_ids(ix, c->codes, c->code_size, sel, nremoved);
}

static void tl_destroy(vdx_index *ix) {
    vdx_index_2layer *t = (vdx_index_2layer *)ix;
    vdx_index_free(t->quantizer);
    vdx_pq_clear(&t->pq);
    vdx_free(t->codes);
    vdx_free(t);
}

static const vdx_index_ops twolayer_ops = {
    "Index2Layer",   tl_train, tl_add,         tl_search,
    tl_range_search, tl_reset, tl_reconstruct, tl_reconstruct_n,
    tl_remove_ids,   tl_destroy};

vdx_status vdx_2layer_make(vdx_index *quantizer, int64_t nlist, int64_t M,
                           int nbits, vdx_metric metric,
                           vdx_index_2layer **out) {
    *out = NULL;
    vdx_index_2layer *t = vdx_calloc(1, sizeof *t);
    if (!t) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_pq_setup(&t->pq, quantizer->d, M, nbits);
    if (st) {
        vdx_free(t);
        return st;
    }
    t->pq.owner = &t->base;
    t->base.ops = &twolayer_ops;
    t->base.d = quantizer->d;
    t->base.metric = metric;
    t->quantizer = quantizer;
    t->nlist = nlist;
    vdx_kmeans_params_init(&t->cp);
    t->cp.niter = 10; /* FAISS's Level1Quantizer default */
    t->code_size_1 = vdx_2layer_code_size_1(nlist);
    t->code_size_2 = t->pq.code_size;
    t->code_size = t->code_size_1 + t->code_size_2;
    *out = t;
    return VDX_OK;
}

vdx_status vdx_index_2layer_new(vdx_index *quantizer, int64_t nlist,
                                int64_t M, int nbits, vdx_metric metric,
                                vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!quantizer)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "Index2Layer: quantizer is NULL");
    if (nlist < 1 || nlist > ((int64_t)1 << 31))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "Index2Layer: nlist=%lld must be in 1..2^31",
                         (long long)nlist);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "Index2Layer: metric %d is not supported", (int)metric);
    if (quantizer->ntotal != 0 && quantizer->ntotal != nlist)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "Index2Layer: the quantizer holds %lld vectors, "
                         "expected 0 or nlist=%lld",
                         (long long)quantizer->ntotal, (long long)nlist);
    vdx_index_2layer *t = NULL;
    vdx_status st = vdx_2layer_make(quantizer, nlist, M, nbits, metric, &t);
    if (st) return st;
    *out = &t->base;
    return VDX_OK;
}

int vdx_index_is_2layer(const vdx_index *ix) { return vdx_is_2layer(ix); }

vdx_index *vdx_index_2layer_quantizer(const vdx_index *ix) {
    return vdx_is_2layer(ix) ? ((const vdx_index_2layer *)ix)->quantizer : NULL;
}

vdx_pq *vdx_index_2layer_pq(const vdx_index *ix) {
    return vdx_is_2layer(ix) ? &((vdx_index_2layer *)(void *)ix)->pq : NULL;
}

int64_t vdx_index_2layer_nlist(const vdx_index *ix) {
    return vdx_is_2layer(ix) ? ((const vdx_index_2layer *)ix)->nlist : 0;
}

size_t vdx_index_2layer_code_size(const vdx_index *ix, int part) {
    if (!vdx_is_2layer(ix)) return 0;
    const vdx_index_2layer *t = (const vdx_index_2layer *)ix;
    return part == 1 ? t->code_size_1 : part == 2 ? t->code_size_2 : t->code_size;
}

/* ---- IndexHNSW2Level: an HNSW graph over an Index2Layer ------------------ */
#include "hnsw.h"

vdx_status vdx_index_hnsw_2level_new(vdx_index *quantizer, int64_t nlist,
                                     int64_t m_pq, int M, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (M < VDX_HNSW_M_MIN || M > VDX_HNSW_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "HNSW: M=%d must be in %d..%d", M, VDX_HNSW_M_MIN,
                         VDX_HNSW_M_MAX);
    vdx_index *s = NULL;
    vdx_status st = vdx_index_2layer_new(quantizer, nlist, m_pq, 8,
                                         VDX_METRIC_L2, &s);
    if (st) return st;
    vdx_index_hnsw *h = NULL;
    if ((st = vdx_hnsw_make(s, VDX_HNSW_2L, M, &h))) {
        ((vdx_index_2layer *)s)->quantizer = NULL; /* stays the caller's */
        vdx_index_free(s);
        return st;
    }
    *out = &h->base;
    return VDX_OK;
}
