/*
 * pq_index.c — IndexPQ: every vector stored as a product-quantizer code
 * (Jégou et al., TPAMI 2011), searched exhaustively with asymmetric
 * distance computation: one M x ksub table per query, then a table-lookup
 * scan of all codes (AVX2 gathers for nbits = 8), a SIMD threshold filter
 * and a heap.  Threaded over queries, or over the codes (per-thread heaps,
 * merged) when there are fewer queries than threads.  Keys are L2 distances
 * or negated inner products so that one heap order serves both metrics.
 */
#include <omp.h>
#include <string.h>

#include "index_pq.h"
#include "common/topk.h"
#include "common/interrupt.h"
#include "common/threads.h"
#include "simd/kernels.h"

#define PQ_CHUNK 256

static const vdx_index_ops pq_ops;

int vdx_is_index_pq(const vdx_index *ix) { return ix && ix->ops == &pq_ops; }

vdx_status vdx_index_pq_reserve(vdx_index_pq *p, int64_t n) {
    if (p->map) {
        /* copy-on-write of codes borrowed from a file map */
        int64_t nc = VDX_MAX(n, p->base.ntotal);
        uint8_t *c = vdx_malloc_array((size_t)(nc ? nc : 1), p->pq.code_size);
        if (!c) return VDX_ERR_OUT_OF_MEMORY;
        memcpy(c, p->codes, (size_t)p->base.ntotal * p->pq.code_size);
        vdx_mapping_unref(p->map);
        p->map = NULL;
        p->codes = c;
        p->cap = nc;
        return VDX_OK;
    }
    if (n <= p->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, p->cap + p->cap / 2);
    uint8_t *c = vdx_realloc_array(p->codes, (size_t)nc, p->pq.code_size);
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    p->codes = c;
    p->cap = nc;
    return VDX_OK;
}

static vdx_status pq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_index_pq *p = (vdx_index_pq *)ix;
    vdx_status st = vdx_refuse_populated_train(ix);
    if (st) return st;
    st = vdx_pq_train_internal(&p->pq, n, x);
    if (!st) ix->is_trained = 1;
    return st;
}

static vdx_status pq_add(vdx_index *ix, int64_t n, const float *x,
                         const vdx_idx_t *ids) {
    vdx_index_pq *p = (vdx_index_pq *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexPQ: add_with_ids is not supported (wrap the "
                         "index in an IndexIDMap)");
    vdx_status st = vdx_index_pq_reserve(p, ix->ntotal + n);
    if (st) return st;
    vdx_pq_encode(&p->pq, n, x,
                  p->codes + (size_t)ix->ntotal * p->pq.code_size);
    ix->ntotal += n;
    return VDX_OK;
}

/* Scores codes [i0, i1) for one query table into the heap. */
static void scan_range(const vdx_index_pq *p, const float *table, int ip,
                       int64_t i0, int64_t i1, int64_t k,
                       const vdx_selector *sel, float *hk, vdx_idx_t *hi,
                       float *keys, uint32_t *cand) {
    const vdx_kernels *K = vdx_kernels_get();
    const size_t cs = p->pq.code_size;
    for (int64_t c0 = i0; c0 < i1; c0 += PQ_CHUNK) {
        size_t cn = (size_t)VDX_MIN(PQ_CHUNK, i1 - c0);
        vdx_pq_scan(&p->pq, table, p->codes + (size_t)c0 * cs, cn, keys);
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

static vdx_status pq_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *prm, float *D,
                            vdx_idx_t *I) {
    const vdx_index_pq *p = (const vdx_index_pq *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    /* per query: the tables (ksub * d multiply-adds) and M look-ups a code */
    const int nthreads = vdx_nthreads_for(
        (double)n * ((double)ix->ntotal * (double)p->pq.M +
                     (double)p->pq.ksub * (double)ix->d / 8));
    const size_t tsz = (size_t)(p->pq.M * p->pq.ksub);
    /* per thread: table, keys, candidates */
    const size_t per = tsz + 2 * PQ_CHUNK;
    float *work = vdx_aligned_alloc((size_t)nthreads, per * sizeof(float));
    if (!work) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    int stop = 0; /* the interrupt handler asked to stop */
    if (n >= nthreads || nthreads == 1 || ix->ntotal < 4 * PQ_CHUNK) {
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && nthreads > 1) num_threads(nthreads)
        for (int64_t q = 0; q < n; q++) {
            if (vdx_poll_stop(&stop)) continue;
            float *w = work + (size_t)omp_get_thread_num() * per;
            float *keys = w + tsz;
            uint32_t *cand = (uint32_t *)(keys + PQ_CHUNK);
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            vdx_heap_init(k, hk, hi);
            vdx_pq_table(&p->pq, ix->metric, x + q * ix->d, w);
            scan_range(p, w, ip, 0, ix->ntotal, k, sel, hk, hi, keys, cand);
            vdx_topk_finish(k, hk, hi, ip, 0);
        }
    } else {
        float *tk = vdx_malloc_array((size_t)nthreads * (size_t)k, sizeof(float));
        vdx_idx_t *ti =
            vdx_malloc_array((size_t)nthreads * (size_t)k, sizeof(vdx_idx_t));
        if (!tk || !ti) {
            st = VDX_ERR_OUT_OF_MEMORY;
        } else {
            for (int64_t q = 0; q < n && !vdx_poll_stop(&stop); q++) {
                vdx_pq_table(&p->pq, ix->metric, x + q * ix->d, work);
#pragma omp parallel num_threads(nthreads)
                {
                    int t = omp_get_thread_num(), nt = omp_get_num_threads();
                    float *keys = work + (size_t)t * per + tsz;
                    uint32_t *cand = (uint32_t *)(keys + PQ_CHUNK);
                    float *hk = tk + (size_t)t * k;
                    vdx_idx_t *hi = ti + (size_t)t * k;
                    vdx_heap_init(k, hk, hi);
                    int64_t per_t = (ix->ntotal + nt - 1) / nt;
                    int64_t i0 = VDX_MIN(ix->ntotal, per_t * t);
                    int64_t i1 = VDX_MIN(ix->ntotal, i0 + per_t);
                    scan_range(p, work, ip, i0, i1, k, sel, hk, hi, keys, cand);
                }
                float *hk = D + q * k;
                vdx_idx_t *hi = I + q * k;
                memcpy(hk, tk, (size_t)k * sizeof(float));
                memcpy(hi, ti, (size_t)k * sizeof(vdx_idx_t));
                for (int t = 1; t < nthreads; t++)
                    vdx_heap_merge(k, hk, hi, tk + (size_t)t * k,
                                   ti + (size_t)t * k);
                vdx_topk_finish(k, hk, hi, ip, 0);
            }
        }
        vdx_free(tk);
        vdx_free(ti);
    }
    vdx_aligned_free(work);
    if (!st && stop)
        st = vdx_raise(VDX_ERR_INTERRUPTED,
                       "IndexPQ search of %lld queries interrupted", (long long)n);
    return st;
}

static vdx_status pq_range_search(const vdx_index *ix, int64_t n,
                                  const float *x, float radius,
                                  const vdx_search_params *prm,
                                  vdx_range_builder *rb) {
    const vdx_index_pq *p = (const vdx_index_pq *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t tsz = (size_t)(p->pq.M * p->pq.ksub);
    vdx_status st = VDX_OK;
    const int nthreads = vdx_nthreads_for(
        (double)n * ((double)ix->ntotal * (double)p->pq.M +
                     (double)p->pq.ksub * (double)ix->d / 8));
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads)
    {
        float *table = vdx_malloc_array(tsz + PQ_CHUNK, sizeof(float));
        if (!table) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            if (!table) continue;
            float *keys = table + tsz;
            vdx_pq_table(&p->pq, ix->metric, x + q * ix->d, table);
            for (int64_t c0 = 0; c0 < ix->ntotal; c0 += PQ_CHUNK) {
                size_t cn = (size_t)VDX_MIN(PQ_CHUNK, ix->ntotal - c0);
                vdx_pq_scan(&p->pq, table,
                            p->codes + (size_t)c0 * p->pq.code_size, cn, keys);
                if (vdx_range_collect(rb, q, keys, cn, ip, 0, radius, NULL, c0,
                                      sel)) {
#pragma omp atomic write
                    st = VDX_ERR_OUT_OF_MEMORY;
                }
            }
        }
        vdx_free(table);
    }
    return st;
}

static vdx_status pq_reset(vdx_index *ix) {
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status pq_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                 float *out) {
    const vdx_index_pq *p = (const vdx_index_pq *)ix;
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    vdx_pq_decode_n(&p->pq, 1, p->codes + (size_t)key * p->pq.code_size, out);
    return VDX_OK;
}

static vdx_status pq_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                   int64_t ni, float *out) {
    const vdx_index_pq *p = (const vdx_index_pq *)ix;
    vdx_status rst = vdx_check_range(ix, i0, ni);
    if (rst) return rst;
    vdx_pq_decode_n(&p->pq, ni, p->codes + (size_t)i0 * p->pq.code_size, out);
    return VDX_OK;
}

/* As FAISS's IndexPQ (through IndexFlatCodes): the kept codes are
 * compacted and renumbered 0..ntotal-1. */
static vdx_status pq_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    vdx_index_pq *c = (vdx_index_pq *)ix;
    if (c->map) {
        vdx_status st = vdx_index_pq_reserve(c, ix->ntotal); /* copy first */
        if (st) return st;
    }
    return vdx_codes_remove_ids(ix, c->codes, c->pq.code_size, sel, nremoved);
}

static void pq_destroy(vdx_index *ix) {
    vdx_index_pq *p = (vdx_index_pq *)ix;
    vdx_pq_clear(&p->pq);
    if (p->map) vdx_mapping_unref(p->map);
    else vdx_free(p->codes);
    vdx_free(p);
}

static const vdx_index_ops pq_ops = {
    "IndexPQ",       pq_train,  pq_add,         pq_search,
    pq_range_search, pq_reset,  pq_reconstruct, pq_reconstruct_n,
    pq_remove_ids,   pq_destroy};

vdx_status vdx_index_pq_new(int64_t d, int64_t M, int nbits,
                            vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "metric %d is not supported",
                         (int)metric);
    vdx_index_pq *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_pq_setup(&p->pq, d, M, nbits);
    if (st) {
        vdx_free(p);
        return st;
    }
    p->pq.owner = &p->base;
    p->base.ops = &pq_ops;
    p->base.d = d;
    p->base.metric = metric;
    p->polysemous_ht = (int32_t)(M * nbits + 1);
    *out = &p->base;
    return VDX_OK;
}
