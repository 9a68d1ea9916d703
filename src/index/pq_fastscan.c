/*
 * pq_fastscan.c — IndexPQFastScan: IndexPQ with 4-bit sub-quantizers whose
 * codes live in FAISS's fast-scan blocks (André et al., VLDB 2015; FAISS's
 * IndexPQFastScan), searched with in-register table lookups.
 *
 * Search, per query: the float ADC table (M x 16), its 8-bit quantization
 * (fastscan.h: per-sub-quantizer bias, percentile scale, saturation), then
 * one SIMD pass per group of 32 codes giving 16-bit sums that bound the
 * float-table key from below; only codes whose bound beats the current
 * k-th key are re-scored with the float table (M lookups) and offered to
 * the heap.  The results are therefore those of IndexPQ (nbits = 4) on the
 * same codes, keys and distances included, whatever the spread of the
 * data, at the speed of the integer scan.  Threads take queries.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_fastscan.h"
#include "common/topk.h"
#include "common/threads.h"

static const vdx_index_ops pqfs_ops;

int vdx_is_pqfs(const vdx_index *ix) { return ix && ix->ops == &pqfs_ops; }

/* ---- the shared block scan --------------------------------------------- */

/* float-table key of lane v of a group (grp = the group's pair-0 bytes) */
static inline float rescore(const uint8_t *grp, size_t stride, int v,
                            const float *table, int64_t M) {
    int u = v & 15, sh = v >= 16 ? 4 : 0;
    int j = u < 8 ? 2 * u : 2 * (u - 8) + 1;
    float s = 0;
    int64_t m = 0;
    for (; m + 1 < M; m += 2) {
        const uint8_t *c = grp + (size_t)(m / 2) * stride;
        s += table[m * 16 + ((c[j] >> sh) & 15)];
        s += table[(m + 1) * 16 + ((c[16 + j] >> sh) & 15)];
    }
    if (m < M) {
        const uint8_t *c = grp + (size_t)(m / 2) * stride;
        s += table[m * 16 + ((c[j] >> sh) & 15)];
    }
    return s;
}

/* The bound again with the exact entries of the wide sub-quantizers:
 * sum_m t >= sum_{m not wide} (b_m + scale (q_m - 1/2)) + sum_{m wide} t_m;
 * 0 when it cannot beat top (with the slack of vdx_fs_threshold). */
static inline int wide_check(const vdx_fs_lut *lut, const uint8_t *grp,
                             size_t stride, int v, const float *table,
                             uint16_t s, float top) {
    int u = v & 15, sh = v >= 16 ? 4 : 0;
    int j = u < 8 ? 2 * u : 2 * (u - 8) + 1;
    double rest_q = s, exact = 0, bias = lut->bias;
    for (int w = 0; w < lut->nwide; w++) {
        int64_t m = lut->wide[w];
        const uint8_t *c = grp + (size_t)(m / 2) * stride + (m & 1) * 16;
        int code = (c[j] >> sh) & 15;
        rest_q -= lut->q[m * 16 + code];
        exact += table[m * 16 + code];
        bias -= lut->wide_min[w];
    }
    double lb = bias + lut->scale * (rest_q - 0.5 * (double)(lut->M - lut->nwide) - 2.0) + exact;
    return lb < (double)top;
}

/* Offers the candidates of one group (mask, sums) for one query. */
static inline int64_t take_group(const uint8_t *grp, int64_t bbs,
                                 uint32_t mask, const uint16_t *sums,
                                 int32_t *thr, int64_t i0, int64_t M,
                                 const float *table, const vdx_fs_lut *lut,
                                 const vdx_idx_t *ids, vdx_idx_t id0,
                                 const vdx_selector *sel, int64_t k, float *hk,
                                 vdx_idx_t *hi) {
    int64_t nres = 0;
    while (mask) {
        int v = __builtin_ctz(mask);
        mask &= mask - 1;
        if ((int32_t)sums[v] > *thr) continue; /* tightened meanwhile */
        vdx_idx_t id = ids ? ids[i0 + v] : id0 + i0 + v;
        if (sel && !vdx_sel_member(sel, id)) continue;
        if (lut->nwide &&
            !wide_check(lut, grp, (size_t)bbs, v, table, sums[v], hk[0]))
            continue;
        float key = rescore(grp, (size_t)bbs, v, table, M);
        nres++;
        if (vdx_worse(hk[0], hi[0], key, id)) {
            vdx_heap_replace_top(k, hk, hi, key, id);
            *thr = vdx_fs_threshold(lut, hk[0]);
        }
    }
    return nres;
}

int64_t vdx_fs_scan_blocks(const vdx_fs_kernels *K, const uint8_t *blocks,
                           int64_t n, int64_t bbs, int64_t M, int64_t nsq,
                           const float *table, const vdx_fs_lut *lut,
                           const vdx_idx_t *ids, vdx_idx_t id0,
                           const vdx_selector *sel, int64_t k, float *hk,
                           vdx_idx_t *hi) {
    uint16_t sums[32];
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    int64_t nres = 0;
    int32_t thr = vdx_fs_threshold(lut, hk[0]);
    const uint8_t *blk = blocks;
    int64_t in_blk = 0; /* offset of i0 inside its block */
    for (int64_t i0 = 0; i0 < n; i0 += 32, in_blk += 32) {
        if (thr < 0) break; /* the bound only tightens */
        if (in_blk == bbs) {
            blk += bsz;
            in_blk = 0;
        }
        const uint8_t *grp = blk + in_blk;
        uint32_t mask = K->scan32(grp, (size_t)bbs, lut->q, nsq,
                                  (uint16_t)thr, sums);
        if (n - i0 < 32) mask &= (1u << (n - i0)) - 1u;
        if (mask)
            nres += take_group(grp, bbs, mask, sums, &thr, i0, M, table, lut,
                               ids, id0, sel, k, hk, hi);
    }
    return nres;
}

/* As vdx_fs_scan_blocks for nq <= VDX_FS_MAX_QBS queries in one pass:
 * query j has tables[j], luts[j] and the heap hk + j k, hi + j k. */
static void scan_blocks_multi(const vdx_fs_kernels *K, const uint8_t *blocks,
                              int64_t n, int64_t bbs, int64_t M, int64_t nsq,
                              int nq, const float *const *tables,
                              const vdx_fs_lut *luts, const vdx_selector *sel,
                              int64_t k, float *hk, vdx_idx_t *hi) {
    uint16_t sums[32 * VDX_FS_MAX_QBS], thr16[VDX_FS_MAX_QBS];
    uint32_t masks[VDX_FS_MAX_QBS];
    int32_t thr[VDX_FS_MAX_QBS];
    const uint8_t *q[VDX_FS_MAX_QBS];
    for (int j = 0; j < nq; j++) {
        thr[j] = vdx_fs_threshold(&luts[j], hk[j * k]);
        q[j] = luts[j].q;
    }
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    const uint8_t *blk = blocks;
    int64_t in_blk = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 32, in_blk += 32) {
        if (in_blk == bbs) {
            blk += bsz;
            in_blk = 0;
        }
        const uint8_t *grp = blk + in_blk;
        for (int j = 0; j < nq; j++) thr16[j] = thr[j] < 0 ? 0 : (uint16_t)thr[j];
        K->scan32_multi(grp, (size_t)bbs, q, nq, nsq, thr16, sums, masks);
        uint32_t tail = n - i0 < 32 ? (1u << (n - i0)) - 1u : ~0u;
        for (int j = 0; j < nq; j++) {
            uint32_t mask = thr[j] < 0 ? 0 : masks[j] & tail;
            if (mask)
                take_group(grp, bbs, mask, sums + 32 * j, &thr[j], i0, M,
                           tables[j], &luts[j], NULL, 0, sel, k, hk + j * k,
                           hi + j * k);
        }
    }
}

/* ---- IndexPQFastScan ---------------------------------------------------- */

vdx_status vdx_pqfs_reserve(vdx_pqfs *p, int64_t n) {
    if (n <= p->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, p->cap + p->cap / 2);
    nc = (nc + p->bbs - 1) / p->bbs * p->bbs;
    size_t bsz = vdx_fs_block_size(p->nsq, p->bbs);
    uint8_t *c = vdx_realloc_array(p->codes, (size_t)(nc / p->bbs), bsz);
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    /* new blocks start zeroed: packing ORs nibbles into place */
    memset(c + (size_t)(p->cap / p->bbs) * bsz, 0,
           (size_t)((nc - p->cap) / p->bbs) * bsz);
    p->codes = c;
    p->cap = nc;
    return VDX_OK;
}

static vdx_status pqfs_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_pqfs *p = (vdx_pqfs *)ix;
    vdx_status st = vdx_pq_train_internal(&p->pq, n, x);
    if (!st) ix->is_trained = 1;
    return st;
}

static vdx_status pqfs_add(vdx_index *ix, int64_t n, const float *x,
                           const vdx_idx_t *ids) {
    vdx_pqfs *p = (vdx_pqfs *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexPQFastScan: add_with_ids is not supported "
                         "(wrap the index in an IndexIDMap)");
    vdx_status st = vdx_pqfs_reserve(p, ix->ntotal + n);
    if (st) return st;
    const int64_t chunk = 65536;
    uint8_t *flat = vdx_malloc_array((size_t)VDX_MIN(n, chunk) + 1,
                                     p->pq.code_size);
    if (!flat) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        int64_t ni = VDX_MIN(chunk, n - i0);
        vdx_pq_encode(&p->pq, ni, x + i0 * ix->d, flat);
        vdx_fs_pack(flat, ni, p->pq.M, p->bbs, p->nsq, p->codes,
                    ix->ntotal + i0);
    }
    vdx_free(flat);
    ix->ntotal += n;
    return VDX_OK;
}

/* The float table of a query as keys (inner product: negated scores). */
static void query_table(const vdx_pq *pq, vdx_metric metric, const float *x,
                        float *table) {
    vdx_pq_table(pq, metric, x, table);
    if (metric == VDX_METRIC_INNER_PRODUCT)
        for (int64_t i = 0; i < pq->M * 16; i++) table[i] = -table[i];
}

static vdx_status pqfs_search(const vdx_index *ix, int64_t n, const float *x,
                              int64_t k, const vdx_search_params *prm,
                              float *D, vdx_idx_t *I) {
    const vdx_pqfs *p = (const vdx_pqfs *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    const int nthreads = vdx_nthreads();
    const int QB = VDX_FS_MAX_QBS;
    const size_t tbytes = ((size_t)p->pq.M * 16 * sizeof(float) + 63) / 64 * 64;
    const size_t lbytes = ((size_t)p->nsq * 16 + 63) / 64 * 64;
    const size_t per = (size_t)QB * (tbytes + lbytes);
    uint8_t *work = vdx_aligned_alloc((size_t)nthreads, per);
    if (!work) return VDX_ERR_OUT_OF_MEMORY;
    /* queries go by batches of QB through one pass over the codes */
    const int64_t nbatch = (n + QB - 1) / QB;
#pragma omp parallel for schedule(dynamic, 1) if (nbatch > 1) num_threads(nthreads)
    for (int64_t b = 0; b < nbatch; b++) {
        uint8_t *w = work + (size_t)omp_get_thread_num() * per;
        const float *tables[VDX_FS_MAX_QBS];
        vdx_fs_lut luts[VDX_FS_MAX_QBS];
        int64_t q0 = b * QB;
        int nq = (int)VDX_MIN(QB, n - q0);
        for (int j = 0; j < nq; j++) {
            float *table = (float *)(void *)(w + (size_t)j * (tbytes + lbytes));
            luts[j].q = (uint8_t *)table + tbytes;
            vdx_heap_init(k, D + (q0 + j) * k, I + (q0 + j) * k);
            query_table(&p->pq, ix->metric, x + (q0 + j) * ix->d, table);
            vdx_fs_quantize(table, p->pq.M, p->nsq, &luts[j]);
            tables[j] = table;
        }
        scan_blocks_multi(K, p->codes, ix->ntotal, p->bbs, p->pq.M, p->nsq,
                          nq, tables, luts, sel, k, D + q0 * k, I + q0 * k);
        for (int j = 0; j < nq; j++)
            vdx_topk_finish(k, D + (q0 + j) * k, I + (q0 + j) * k, ip, 0);
    }
    vdx_aligned_free(work);
    return VDX_OK;
}

static vdx_status pqfs_range_search(const vdx_index *ix, int64_t n,
                                    const float *x, float radius,
                                    const vdx_search_params *prm,
                                    vdx_range_builder *rb) {
    const vdx_pqfs *p = (const vdx_pqfs *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t tsz = (size_t)p->pq.M * 16;
    vdx_status st = VDX_OK;
#pragma omp parallel if (n > 1) num_threads(vdx_nthreads())
    {
        float *table = vdx_malloc_array(tsz + 32, sizeof(float));
        if (!table) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            if (!table) continue;
            float *keys = table + tsz;
            /* raw table (scores for IP): the collector knows the metric */
            vdx_pq_table(&p->pq, ix->metric, x + q * ix->d, table);
            const size_t bsz = vdx_fs_block_size(p->nsq, p->bbs);
            for (int64_t i0 = 0; i0 < ix->ntotal; i0 += 32) {
                const uint8_t *grp = p->codes + (size_t)(i0 / p->bbs) * bsz +
                                     (size_t)(i0 % p->bbs);
                size_t cn = (size_t)VDX_MIN(32, ix->ntotal - i0);
                for (size_t v = 0; v < cn; v++)
                    keys[v] = rescore(grp, (size_t)p->bbs, (int)v, table,
                                      p->pq.M);
                if (vdx_range_collect(rb, q, keys, cn, ip, 0, radius, NULL,
                                      i0, sel)) {
#pragma omp atomic write
                    st = VDX_ERR_OUT_OF_MEMORY;
                }
            }
        }
        vdx_free(table);
    }
    return st;
}

static vdx_status pqfs_reset(vdx_index *ix) {
    vdx_pqfs *p = (vdx_pqfs *)ix;
    if (p->codes)
        memset(p->codes, 0,
               (size_t)(p->cap / p->bbs) * vdx_fs_block_size(p->nsq, p->bbs));
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status decode_range(const vdx_pqfs *p, int64_t i0, int64_t ni,
                               float *out) {
    uint8_t *flat = vdx_malloc_array(1, p->pq.code_size);
    if (!flat) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < ni; i++) {
        vdx_fs_unpack_1(p->codes, p->bbs, p->nsq, p->pq.M, i0 + i, flat);
        vdx_pq_decode_n(&p->pq, 1, flat, out + i * p->base.d);
    }
    vdx_free(flat);
    return VDX_OK;
}

static vdx_status pqfs_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                   float *out) {
    if (key < 0 || key >= ix->ntotal)
        return vdx_raise(VDX_ERR_NOT_FOUND,
                         "reconstruct: key %lld is outside [0, ntotal=%lld)",
                         (long long)key, (long long)ix->ntotal);
    return decode_range((const vdx_pqfs *)ix, key, 1, out);
}

static vdx_status pqfs_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                     int64_t ni, float *out) {
    if (i0 < 0 || ni < 0 || i0 + ni > ix->ntotal)
        return vdx_raise(VDX_ERR_NOT_FOUND,
                         "reconstruct_n: [%lld, %lld) is outside [0, "
                         "ntotal=%lld)",
                         (long long)i0, (long long)(i0 + ni),
                         (long long)ix->ntotal);
    return decode_range((const vdx_pqfs *)ix, i0, ni, out);
}

/* As FAISS (IndexFastScan::remove_ids): kept codes are compacted in order
 * and renumbered 0..ntotal-1. */
static vdx_status pqfs_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                  int64_t *nremoved) {
    vdx_pqfs *p = (vdx_pqfs *)ix;
    int64_t j = 0;
    for (int64_t i = 0; i < ix->ntotal; i++) {
        if (vdx_sel_member(sel, i)) continue;
        if (i != j)
            for (int64_t m = 0; m < p->nsq; m++)
                vdx_fs_set(p->codes, p->bbs, p->nsq, j, m,
                           vdx_fs_get(p->codes, p->bbs, p->nsq, i, m));
        j++;
    }
    for (int64_t i = j; i < ix->ntotal; i++) /* clear the freed slots */
        for (int64_t m = 0; m < p->nsq; m++)
            vdx_fs_set(p->codes, p->bbs, p->nsq, i, m, 0);
    *nremoved = ix->ntotal - j;
    ix->ntotal = j;
    return VDX_OK;
}

static void pqfs_destroy(vdx_index *ix) {
    vdx_pqfs *p = (vdx_pqfs *)ix;
    vdx_pq_clear(&p->pq);
    vdx_free(p->codes);
    vdx_free(p);
}

static const vdx_index_ops pqfs_ops = {
    "IndexPQFastScan", pqfs_train,     pqfs_add,
    pqfs_search,       pqfs_range_search, pqfs_reset,
    pqfs_reconstruct,  pqfs_reconstruct_n, pqfs_remove_ids,
    pqfs_destroy};

vdx_status vdx_index_pq_fastscan_new(int64_t d, int64_t M, int nbits,
                                     vdx_metric metric, int64_t bbs,
                                     vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "metric %d is not supported",
                         (int)metric);
    if (nbits != 4)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexPQFastScan: nbits must be 4, got %d", nbits);
    if (bbs <= 0 || bbs % 32 != 0 || bbs > VDX_FS_BBS_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexPQFastScan: bbs must be a positive multiple of "
                         "32 up to %d, got %lld",
                         VDX_FS_BBS_MAX, (long long)bbs);
    vdx_pqfs *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_pq_setup(&p->pq, d, M, 4);
    if (st) {
        vdx_free(p);
        return st;
    }
    p->pq.owner = &p->base;
    p->base.ops = &pqfs_ops;
    p->base.d = d;
    p->base.metric = metric;
    p->bbs = bbs;
    p->nsq = (M + 1) / 2 * 2;
    *out = &p->base;
    return VDX_OK;
}

int64_t vdx_index_fastscan_bbs(const vdx_index *ix) {
    if (vdx_is_pqfs(ix)) return ((const vdx_pqfs *)ix)->bbs;
    if (vdx_is_ivfpqfs(ix)) return ((const vdx_ivfpqfs *)(const void *)ix)->bbs;
    return 0;
}

vdx_pq *vdx_index_fastscan_pq(const vdx_index *ix) {
    if (vdx_is_pqfs(ix)) return &((vdx_pqfs *)(void *)ix)->pq;
    if (vdx_is_ivfpqfs(ix)) return &((vdx_ivfpqfs *)(void *)ix)->pq;
    return NULL;
}
