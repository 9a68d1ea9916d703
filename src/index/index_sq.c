/*
 * index_sq.c — IndexScalarQuantizer: exhaustive search over scalar-quantized
 * codes (FAISS's IndexScalarQuantizer; the quantizer is in quant/sq.c).
 *
 * Vectors are stored as SQ codes only.  A search prepares each query
 * against the quantizer once and scores the codes in chunks with the fused
 * decode-and-distance kernels (no decoded copy is made); a SIMD threshold
 * filter passes the few keys that can enter the top k to the heap.
 * Parallel over queries, or over the database (per-thread heaps, merged)
 * when there are fewer queries than threads.  Keys are L2 distances or
 * negated inner products so one heap order serves both metrics.
 */
#include <omp.h>
#include <string.h>

#include "index_sq.h"
#include "common/interrupt.h"
#include "common/threads.h"
#include "common/topk.h"
#include "simd/kernels.h"

/* queries scored together against each block of codes */
#define SQ_QB 16
#define SQ_CHUNK 1024

static const vdx_index_ops index_sq_ops;

int vdx_is_index_sq(const vdx_index *ix) {
    return ix && ix->ops == &index_sq_ops;
}

vdx_sq *vdx_index_get_sq(const vdx_index *ix) {
    if (vdx_is_index_sq(ix)) return &((vdx_index_sq *)ix)->sq;
    if (vdx_is_ivfsq(ix)) return &((vdx_ivfsq *)ix)->sq;
    return NULL;
}

vdx_status vdx_index_sq_reserve(vdx_index_sq *s, int64_t n) {
    if (s->map) n = VDX_MAX(n, s->base.ntotal); /* copy-on-write */
    else if (n <= s->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, s->cap + s->cap / 2);
    if (nc == 0) nc = 1;
    /* aligned (rows on cache lines when the code size allows, huge pages
     * when large: refinement reads rows at random) */
    uint8_t *p = vdx_aligned_alloc((size_t)nc, s->sq.code_size);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    if (s->codes)
        memcpy(p, s->codes, (size_t)s->base.ntotal * (size_t)s->sq.code_size);
    if (s->map) {
        vdx_mapping_unref(s->map);
        s->map = NULL;
    } else {
        vdx_aligned_free(s->codes);
    }
    s->codes = p;
    s->cap = nc;
    return VDX_OK;
}

static vdx_status sq_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_index_sq *s = (vdx_index_sq *)ix;
    vdx_status st = VDX_OK;
    /* fp16 / bf16 / 8bit_direct learn nothing: a second train is harmless */
    if (!vdx_sq_trainless(s->sq.qtype) && (st = vdx_refuse_populated_train(ix)))
        return st;
    st = vdx_sq_fit(&s->sq, n, x);
    if (!st) ix->is_trained = 1;
    return st;
}

static vdx_status sq_add(vdx_index *ix, int64_t n, const float *x,
                         const vdx_idx_t *ids) {
    vdx_index_sq *s = (vdx_index_sq *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by "
                         "IndexScalarQuantizer: wrap it in IndexIDMap");
    vdx_status st = vdx_index_sq_reserve(s, ix->ntotal + n);
    if (st) return st;
    vdx_sq_encode_n(&s->sq, n, x, s->codes + (size_t)ix->ntotal * s->sq.code_size);
    ix->ntotal += n;
    return VDX_OK;
}

static vdx_status sq_reset(vdx_index *ix) {
    vdx_index_sq *s = (vdx_index_sq *)ix;
    if (s->map) vdx_mapping_unref(s->map);
    else vdx_free(s->codes);
    s->map = NULL;
    s->codes = NULL;
    s->cap = 0;
    ix->ntotal = 0;
    return VDX_OK;
}

/* Scores rows [b0, b1) for the prepared query into the heap. */
static void scan_range(const vdx_index_sq *s, const vdx_sq_query *qq,
                       int64_t b0, int64_t b1, int64_t k,
                       const vdx_selector *sel, float *hk, vdx_idx_t *hi,
                       float *keys, uint32_t *cand) {
    const vdx_kernels *K = vdx_kernels_get();
    const vdx_sq_kernels *SK = vdx_sq_kernels_get();
    const int ip = s->base.metric == VDX_METRIC_INNER_PRODUCT;
    const size_t cs = s->sq.code_size;
    for (int64_t c0 = b0; c0 < b1; c0 += SQ_CHUNK) {
        size_t cn = (size_t)VDX_MIN(SQ_CHUNK, b1 - c0);
        const uint8_t *codes = s->codes + (size_t)c0 * cs;
        if (sel) {
            for (size_t j = 0; j < cn; j++) {
                vdx_idx_t id = c0 + (vdx_idx_t)j;
                if (!vdx_sel_member(sel, id)) continue;
                float key;
                vdx_sq_score(&s->sq, SK, ip, qq, codes + j * cs, 1, &key);
                vdx_heap_push(k, hk, hi, key, id);
            }
            continue;
        }
        vdx_sq_score(&s->sq, SK, ip, qq, codes, cn, keys);
        size_t nc = K->filter_less(keys, cn, hk[0], cand);
        for (size_t c = 0; c < nc; c++)
            vdx_heap_push(k, hk, hi, keys[cand[c]], c0 + cand[c]);
    }
}

static void finish(const vdx_index *ix, int64_t k, float *D, vdx_idx_t *I) {
    vdx_topk_finish(k, D, I, ix->metric == VDX_METRIC_INNER_PRODUCT, 0);
}

static vdx_status sq_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *p, float *D,
                            vdx_idx_t *I) {
    const vdx_index_sq *s = (const vdx_index_sq *)ix;
    const vdx_selector *sel = p ? p->sel : NULL;
    const int64_t nb = ix->ntotal, d = ix->d;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    /* codes are widened and scored in SIMD: ~ d/4 steps a code */
    const int nthreads = vdx_nthreads_for((double)n * (double)nb * (double)d / 4);
    /* per thread: keys, candidates, SQ_QB prepared queries */
    const size_t per = 2 * SQ_CHUNK + SQ_QB * (size_t)d;
    float *scratch = vdx_aligned_alloc((size_t)nthreads, per * sizeof(float));
    if (!scratch) return VDX_ERR_OUT_OF_MEMORY;
    int split = n < 2 * nthreads && nb >= 4 * SQ_CHUNK && nthreads > 1;
    if (!split) {
        /* cache blocking: a thread takes SQ_QB queries and walks the codes
         * in blocks of about 128 KiB, scoring each block for all of them
         * while it is in cache (the codes are read once per SQ_QB queries
         * from memory instead of once per query) */
        const int64_t blk =
            VDX_MAX(1, (int64_t)((128 << 10) / s->sq.code_size) / SQ_CHUNK) *
            SQ_CHUNK;
        const int64_t qb = VDX_MAX(1, VDX_MIN(SQ_QB, (n + nthreads - 1) / nthreads));
        int stop = 0; /* the interrupt handler asked to stop */
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && nthreads > 1) num_threads(nthreads)
        for (int64_t q0 = 0; q0 < n; q0 += qb) {
            if (vdx_poll_stop(&stop)) continue;
            const int64_t q1 = VDX_MIN(n, q0 + qb);
            float *w = scratch + (size_t)omp_get_thread_num() * per;
            vdx_sq_query qq[SQ_QB];
            for (int64_t q = q0; q < q1; q++) {
                vdx_sq_query_init(&s->sq, ip, x + q * d,
                                  w + 2 * SQ_CHUNK + (size_t)(q - q0) * (size_t)d,
                                  &qq[q - q0]);
                vdx_heap_init(k, D + q * k, I + q * k);
            }
            for (int64_t b0 = 0; b0 < nb; b0 += blk)
                for (int64_t q = q0; q < q1; q++)
                    scan_range(s, &qq[q - q0], b0, VDX_MIN(nb, b0 + blk), k, sel,
                               D + q * k, I + q * k, w,
                               (uint32_t *)(w + SQ_CHUNK));
            for (int64_t q = q0; q < q1; q++) finish(ix, k, D + q * k, I + q * k);
        }
        vdx_aligned_free(scratch);
        if (stop)
            return vdx_raise(VDX_ERR_INTERRUPTED,
                             "IndexScalarQuantizer search of %lld queries "
                             "interrupted",
                             (long long)n);
        return VDX_OK;
    }
    size_t hs;
    if (!vdx_mul_ok((size_t)n, (size_t)k, &hs)) {
        vdx_aligned_free(scratch);
        return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "n * k overflows");
    }
    float *tk = vdx_malloc_array((size_t)nthreads * hs, sizeof(float));
    vdx_idx_t *ti = vdx_malloc_array((size_t)nthreads * hs, sizeof(vdx_idx_t));
    if (!tk || !ti) {
        vdx_free(tk);
        vdx_free(ti);
        vdx_aligned_free(scratch);
        return VDX_ERR_OUT_OF_MEMORY;
    }
#pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t chunk = (nb + nt - 1) / nt;
        int64_t b0 = VDX_MIN(nb, (int64_t)t * chunk), b1 = VDX_MIN(nb, b0 + chunk);
        float *w = scratch + (size_t)t * per;
        for (int64_t q = 0; q < n; q++) {
            float *hk = tk + (size_t)t * hs + q * k;
            vdx_idx_t *hi = ti + (size_t)t * hs + q * k;
            vdx_sq_query qq;
            vdx_sq_query_init(&s->sq, ip, x + q * d, w + 2 * SQ_CHUNK, &qq);
            vdx_heap_init(k, hk, hi);
            scan_range(s, &qq, b0, b1, k, sel, hk, hi, w,
                       (uint32_t *)(w + SQ_CHUNK));
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n; q++) {
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            memcpy(hk, tk + q * k, (size_t)k * sizeof(float));
            memcpy(hi, ti + q * k, (size_t)k * sizeof(vdx_idx_t));
            for (int u = 1; u < nt; u++)
                vdx_heap_merge(k, hk, hi, tk + (size_t)u * hs + q * k,
                               ti + (size_t)u * hs + q * k);
            finish(ix, k, hk, hi);
        }
    }
    vdx_free(tk);
    vdx_free(ti);
    vdx_aligned_free(scratch);
    return VDX_OK;
}

static vdx_status sq_range_search(const vdx_index *ix, int64_t n,
                                  const float *x, float radius,
                                  const vdx_search_params *p,
                                  vdx_range_builder *rb) {
    const vdx_index_sq *s = (const vdx_index_sq *)ix;
    const vdx_selector *sel = p ? p->sel : NULL;
    const vdx_sq_kernels *SK = vdx_sq_kernels_get();
    const int64_t nb = ix->ntotal, d = ix->d;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const size_t cs = s->sq.code_size;
    vdx_status st = VDX_OK;
    const int nthreads = vdx_nthreads_for((double)n * (double)nb * (double)d / 4);
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads)
    {
        float *w = vdx_aligned_alloc(SQ_CHUNK + (size_t)d, sizeof(float));
        if (!w) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            if (!w || st) continue;
            vdx_sq_query qq;
            vdx_sq_query_init(&s->sq, ip, x + q * d, w + SQ_CHUNK, &qq);
            for (int64_t c0 = 0; c0 < nb; c0 += SQ_CHUNK) {
                size_t cn = (size_t)VDX_MIN(SQ_CHUNK, nb - c0);
                vdx_sq_score(&s->sq, SK, ip, &qq, s->codes + (size_t)c0 * cs,
                             cn, w);
                if (vdx_range_collect(rb, q, w, cn, ip, ip, radius, NULL, c0,
                                      sel)) {
#pragma omp atomic write
                    st = VDX_ERR_OUT_OF_MEMORY;
                    break;
                }
            }
        }
        vdx_aligned_free(w);
    }
    return st;
}

static vdx_status sq_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                 float *out) {
    const vdx_index_sq *s = (const vdx_index_sq *)ix;
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    vdx_sq_decode_n(&s->sq, 1, s->codes + (size_t)key * s->sq.code_size, out);
    return VDX_OK;
}

static vdx_status sq_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                   int64_t ni, float *out) {
    const vdx_index_sq *s = (const vdx_index_sq *)ix;
    vdx_sq_decode_n(&s->sq, ni, s->codes + (size_t)i0 * s->sq.code_size, out);
    return VDX_OK;
}

/* Compacts the kept codes to the front, in order (FAISS's semantics). */
static vdx_status sq_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    vdx_index_sq *c = (vdx_index_sq *)ix;
    if (c->map) {
        vdx_status st = vdx_index_sq_reserve(c, ix->ntotal); /* copy first */
        if (st) return st;
    }
    return vdx_codes_remove_ids(ix, c->codes, c->sq.code_size, sel, nremoved);
}

static void sq_destroy(vdx_index *ix) {
    vdx_index_sq *s = (vdx_index_sq *)ix;
    vdx_sq_release(&s->sq);
    if (s->map) vdx_mapping_unref(s->map);
    else vdx_free(s->codes);
    vdx_free(s);
}

static const vdx_index_ops index_sq_ops = {
    .type_name = "IndexScalarQuantizer",
    .train = sq_train,
    .add = sq_add,
    .search = sq_search,
    .range_search = sq_range_search,
    .reset = sq_reset,
    .reconstruct = sq_reconstruct,
    .reconstruct_n = sq_reconstruct_n,
    .remove_ids = sq_remove_ids,
    .destroy = sq_destroy,
};

vdx_status vdx_index_sq_new(int64_t d, int qtype, vdx_metric metric,
                            vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "metric %d is not supported (0 = inner product, "
                         "1 = L2)",
                         (int)metric);
    vdx_index_sq *s = vdx_calloc(1, sizeof *s);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_sq_init(&s->sq, d, qtype);
    if (st) {
        vdx_free(s);
        return st;
    }
    s->base.ops = &index_sq_ops;
    s->base.d = d;
    s->base.metric = metric;
    s->base.is_trained = vdx_sq_trainless(qtype);
    *out = &s->base;
    return VDX_OK;
}
