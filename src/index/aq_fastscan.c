/*
 * aq_fastscan.c — the 4-bit additive quantizers under fast scan (FAISS's
 * IndexAdditiveQuantizerFastScan family: IndexResidualQuantizerFastScan,
 * IndexLocalSearchQuantizerFastScan and the product kinds).
 *
 * Every codebook has 16 entries, so a code is M 4-bit indices; for L2 the
 * squared norm of the reconstruction is stored by a 2x4-bit norm quantizer
 * (search type ST_norm_rq2x4 or ST_norm_lsq2x4) as two more 4-bit indices.
 * The M (+ 2) indices are packed in blocks as the PQ fast-scan codes
 * (quant/fastscan.h), and a query's table is, per index m < M, -2 <q, c_m>
 * (L2) or -<q, c_m> (inner product, as keys: smaller is better), and for
 * the two norm indices the norm quantizer's two 16-entry tables, so that
 * |q - x|^2 - |q|^2 = the sum of M + 2 entries (the L2 distances reported
 * are that sum, without |q|^2, as FAISS's) (Babenko & Lempitsky,
 * "Additive quantization", CVPR 2014, for the LUT form; Martinez et al.'s
 * and FAISS's 4-bit form).  The 8-bit quantized table selects 2k
 * candidates through pq_fastscan.c's block scan, and they are re-scored
 * with the float table: the distances reported are the float table's, and
 * the neighbours almost always its own (the rare miss is a code whose
 * 8-bit key rounded past 2k others).
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_aq.h"
#include "index_fastscan.h"
#include "common/threads.h"
#include "common/topk.h"

static vdx_index_ops aqfs_ops[4];

static const char *aqfs_name(int kind) {
    static const char *names[4] = {"IndexResidualQuantizerFastScan",
                                   "IndexLocalSearchQuantizerFastScan",
                                   "IndexProductResidualQuantizerFastScan",
                                   "IndexProductLocalSearchQuantizerFastScan"};
    return kind >= 0 && kind < 4 ? names[kind] : "IndexAdditiveQuantizerFastScan";
}

int vdx_is_aqfs(const vdx_index *ix) {
    return ix && ix->ops >= aqfs_ops && ix->ops < aqfs_ops + 4;
}

/* The quantizer fits fast scan with this metric: 4-bit codebooks, the
 * norm in 2x4 bits for L2, no norm for inner product (FAISS's init). */
vdx_status vdx_aqfs_check_aq(const vdx_aq *aq, vdx_metric metric, const char *who) {
    for (int64_t m = 0; m < aq->M; m++)
        if (aq->nbits[m] != 4)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "%s: every codebook must have nbits=4, codebook %lld "
                             "has %d",
                             who, (long long)m, aq->nbits[m]);
    int st = aq->search_type;
    if (metric == VDX_METRIC_INNER_PRODUCT && st != VDX_AQ_ST_LUT_NONORM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: search type must be ST_LUT_nonorm (%d) for inner "
                         "product, got %d",
                         who, VDX_AQ_ST_LUT_NONORM, st);
    if (metric == VDX_METRIC_L2 && st != VDX_AQ_ST_NORM_LSQ2X4 &&
        st != VDX_AQ_ST_NORM_RQ2X4)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: search type must be ST_norm_lsq2x4 (%d) or "
                         "ST_norm_rq2x4 (%d) for L2, got %d",
                         who, VDX_AQ_ST_NORM_LSQ2X4, VDX_AQ_ST_NORM_RQ2X4, st);
    return VDX_OK;
}

vdx_status vdx_aqfs_reserve(vdx_aqfs *p, int64_t n) {
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

/* The float table of query x (Mfs x 16 keys, smaller is better). */
static void query_table(const vdx_aqfs *p, const float *x, float *table) {
    const vdx_aq *aq = p->aq;
    const int ip = p->base.metric == VDX_METRIC_INNER_PRODUCT;
    vdx_aq_lut(aq, 1, x, ip ? -1.0f : -2.0f, table, aq->total_cb);
    if (!ip) memcpy(table + aq->M * 16, aq->norm_tabs, 32 * sizeof(float));
}

/* FAISS's estimate_norm_scale: the mean over training vectors of the
 * widest norm table's span over the widest inner-product table's, rounded
 * (>= 1).  vecdex re-scores with the float table and does not need it; it
 * is stored in files for FAISS's 8-bit search. */
static void estimate_norm_scale(vdx_aqfs *p, int64_t n, const float *x) {
    const int64_t M = p->aq->M, step = n > 65536 ? n / 65536 + 1 : 1;
    float *t = vdx_malloc_array((size_t)p->Mfs * 16, sizeof(float));
    if (!t) return;
    double sum = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i += step, cnt++) {
        query_table(p, x + i * p->base.d, t);
        float sip = -HUGE_VALF, snorm = -HUGE_VALF;
        for (int64_t m = 0; m < p->Mfs; m++) {
            float lo = t[m * 16], hi = lo;
            for (int j = 1; j < 16; j++) {
                lo = fminf(lo, t[m * 16 + j]);
                hi = fmaxf(hi, t[m * 16 + j]);
            }
            if (m < M) sip = fmaxf(sip, hi - lo);
            else snorm = fmaxf(snorm, hi - lo);
        }
        /* the LUT's are -2 <q, c> as FAISS's: the same spans */
        sum += sip > 0 ? snorm / sip : 1;
    }
    vdx_free(t);
    double s = cnt ? sum / (double)cnt : 1;
    p->norm_scale = (int32_t)roundf((float)fmax(s, 1.0));
}

static vdx_status aqfs_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_aqfs *p = (vdx_aqfs *)ix;
    vdx_status st = vdx_aq_train_internal(p->aq, n, x);
    if (st) return st;
    ix->is_trained = p->aq->is_trained;
    if (ix->metric == VDX_METRIC_L2 && ix->is_trained) estimate_norm_scale(p, n, x);
    return VDX_OK;
}

static vdx_status aqfs_add(vdx_index *ix, int64_t n, const float *x,
                           const vdx_idx_t *ids) {
    vdx_aqfs *p = (vdx_aqfs *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s: add_with_ids is not supported (wrap the index in "
                         "an IndexIDMap)",
                         ix->ops->type_name);
    vdx_status st = vdx_aqfs_reserve(p, ix->ntotal + n);
    if (st) return st;
    const int64_t chunk = 65536;
    uint8_t *flat = vdx_malloc_array((size_t)VDX_MIN(n, chunk) + 1,
                                     p->aq->code_size);
    if (!flat) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i0 = 0; i0 < n && !st; i0 += chunk) {
        int64_t ni = VDX_MIN(chunk, n - i0);
        st = vdx_aq_encode(p->aq, ni, x + i0 * ix->d, flat);
        if (!st)
            vdx_fs_pack(flat, ni, p->Mfs, p->bbs, p->nsq, p->codes,
                        ix->ntotal + i0);
    }
    vdx_free(flat);
    if (st) { /* the packed part of this call is cleared again */
        for (int64_t i = ix->ntotal; i < ix->ntotal + n && i < p->cap; i++)
            for (int64_t m = 0; m < p->nsq; m++)
                vdx_fs_set(p->codes, p->bbs, p->nsq, i, m, 0);
        return st;
    }
    ix->ntotal += n;
    return VDX_OK;
}

static inline float rescore(const vdx_aqfs *p, int64_t i, const float *table) {
    float s = 0;
    for (int64_t m = 0; m < p->Mfs; m++)
        s += table[m * 16 + vdx_fs_get(p->codes, p->bbs, p->nsq, i, m)];
    return s;
}

static vdx_status aqfs_search(const vdx_index *ix, int64_t n, const float *x,
                              int64_t k, const vdx_search_params *prm,
                              float *D, vdx_idx_t *I) {
    const vdx_aqfs *p = (const vdx_aqfs *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    const int nthreads = vdx_nthreads();
    const int QB = VDX_FS_MAX_QBS;
    /* twice k candidates by the 8-bit keys, re-scored: the keys are off by
     * the rounding of Mfs entries, and the norm tables' wide range makes
     * that coarser than PQ's (2k took the recall of the float table's
     * top 10 from 0.97 to ~1 on clustered data) */
    const int64_t k2 = VDX_MIN(VDX_MAX(2 * k, k + 8), VDX_MAX(ix->ntotal, k));
    const int64_t cap = (vdx_fs_res_cap(k2) + 15) / 16 * 16;
    const size_t tbytes = ((size_t)p->Mfs * 16 * sizeof(float) + 63) / 64 * 64;
    const size_t lbytes = ((size_t)p->nsq * 16 + 63) / 64 * 64;
    const size_t per = (size_t)QB * (tbytes + lbytes);
    uint8_t *work = vdx_aligned_alloc((size_t)nthreads, per);
    float *ak = vdx_aligned_alloc((size_t)nthreads * QB, (size_t)cap * sizeof(float));
    int64_t *aref = vdx_aligned_alloc((size_t)nthreads * QB, (size_t)cap * sizeof(int64_t));
    if (!work || !ak || !aref) {
        vdx_aligned_free(work);
        vdx_aligned_free(ak);
        vdx_aligned_free(aref);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    /* the tables of a chunk of queries in one sgemm, before the threads
     * (one small sgemm per query inside them cost more than the scan) */
    const int64_t TS = p->Mfs * 16, QC = 4096;
    float *tabs = vdx_malloc_array((size_t)VDX_MIN(n, QC), (size_t)TS * sizeof(float));
    if (!tabs) {
        vdx_aligned_free(work);
        vdx_aligned_free(ak);
        vdx_aligned_free(aref);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t c0 = 0; c0 < n; c0 += QC) {
    const int64_t nc = VDX_MIN(QC, n - c0);
    vdx_aq_lut(p->aq, nc, x + c0 * ix->d, ip ? -1.0f : -2.0f, tabs, TS);
    if (!ip)
        for (int64_t q = 0; q < nc; q++)
            memcpy(tabs + q * TS + p->aq->M * 16, p->aq->norm_tabs, 32 * sizeof(float));
    const int64_t nbatch = (nc + QB - 1) / QB;
#pragma omp parallel for schedule(dynamic, 1) if (nbatch > 1) num_threads(nthreads)
    for (int64_t b = 0; b < nbatch; b++) {
        const int t = omp_get_thread_num();
        uint8_t *w = work + (size_t)t * per;
        const float *tables[VDX_FS_MAX_QBS];
        vdx_fs_lut luts[VDX_FS_MAX_QBS];
        vdx_fs_res res[VDX_FS_MAX_QBS];
        int64_t q0 = c0 + b * QB;
        int nq = (int)VDX_MIN(QB, n - q0);
        for (int j = 0; j < nq; j++) {
            const float *table = tabs + (q0 - c0 + j) * TS;
            luts[j].q = w + (size_t)j * (tbytes + lbytes) + tbytes;
            size_t o = ((size_t)t * QB + (size_t)j) * (size_t)cap;
            vdx_fs_res_init(&res[j], ak + o, aref + o, k2);
            vdx_fs_quantize(table, p->Mfs, p->nsq, &luts[j]);
            tables[j] = table;
        }
        vdx_fs_scan_blocks_multi(K, p->codes, ix->ntotal, p->bbs, p->nsq, nq,
                                 luts, NULL, 0, sel, res);
        for (int j = 0; j < nq; j++) {
            float *Dq = D + (q0 + j) * k;
            vdx_idx_t *Iq = I + (q0 + j) * k;
            vdx_fs_res_finish(&res[j]);
            vdx_heap_init(k, Dq, Iq);
            for (int64_t e = 0; e < res[j].n; e++) {
                int64_t i = res[j].ref[e];
                if (i >= 0) vdx_heap_push(k, Dq, Iq, rescore(p, i, tables[j]), i);
            }
            vdx_heap_sort(k, Dq, Iq);
            /* keys to distances: IP the negated key; L2 the key itself,
             * |x|^2 - 2 <q, x> without |q|^2, as FAISS's fast-scan search
             * reports it (not clamped) */
            for (int64_t e = 0; e < k; e++) {
                if (Iq[e] < 0) {
                    Dq[e] = ip ? -FLT_MAX : FLT_MAX;
                    continue;
                }
                if (ip) Dq[e] = -Dq[e];
            }
        }
    }
    }
    vdx_free(tabs);
    vdx_aligned_free(work);
    vdx_aligned_free(ak);
    vdx_aligned_free(aref);
    return VDX_OK;
}

static vdx_status aqfs_range_search(const vdx_index *ix, int64_t n,
                                    const float *x, float radius,
                                    const vdx_search_params *prm,
                                    vdx_range_builder *rb) {
    const vdx_aqfs *p = (const vdx_aqfs *)ix;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t tsz = (size_t)p->Mfs * 16;
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
            float *vals = table + tsz;
            query_table(p, x + q * ix->d, table);
            for (int64_t i0 = 0; i0 < ix->ntotal; i0 += 32) {
                size_t cn = (size_t)VDX_MIN(32, ix->ntotal - i0);
                /* the collector takes distances (L2, as the search reports
                 * them: without |q|^2) or scores (IP) */
                for (size_t v = 0; v < cn; v++) {
                    float key = rescore(p, i0 + (int64_t)v, table);
                    vals[v] = ip ? -key : key;
                }
                if (vdx_range_collect(rb, q, vals, cn, ip, 0, radius, NULL, i0,
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

static vdx_status aqfs_reset(vdx_index *ix) {
    vdx_aqfs *p = (vdx_aqfs *)ix;
    if (p->codes)
        memset(p->codes, 0,
               (size_t)(p->cap / p->bbs) * vdx_fs_block_size(p->nsq, p->bbs));
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status decode_range(const vdx_aqfs *p, int64_t i0, int64_t ni,
                               float *out) {
    uint8_t *flat = vdx_calloc(1, p->aq->code_size + 1);
    if (!flat) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < ni; i++) {
        vdx_fs_unpack_1(p->codes, p->bbs, p->nsq, p->Mfs, i0 + i, flat);
        vdx_aq_decode_n(p->aq, 1, flat, out + i * p->base.d);
    }
    vdx_free(flat);
    return VDX_OK;
}

static vdx_status aqfs_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                   float *out) {
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    return decode_range((const vdx_aqfs *)ix, key, 1, out);
}

static vdx_status aqfs_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                     int64_t ni, float *out) {
    vdx_status rst = vdx_check_range(ix, i0, ni);
    if (rst) return rst;
    return decode_range((const vdx_aqfs *)ix, i0, ni, out);
}

/* As FAISS (IndexFastScan::remove_ids): kept codes compacted in order. */
static vdx_status aqfs_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                  int64_t *nremoved) {
    vdx_aqfs *p = (vdx_aqfs *)ix;
    int64_t j = 0;
    for (int64_t i = 0; i < ix->ntotal; i++) {
        if (vdx_sel_member(sel, i)) continue;
        if (i != j)
            for (int64_t m = 0; m < p->nsq; m++)
                vdx_fs_set(p->codes, p->bbs, p->nsq, j, m,
                           vdx_fs_get(p->codes, p->bbs, p->nsq, i, m));
        j++;
    }
    for (int64_t i = j; i < ix->ntotal; i++)
        for (int64_t m = 0; m < p->nsq; m++)
            vdx_fs_set(p->codes, p->bbs, p->nsq, i, m, 0);
    *nremoved = ix->ntotal - j;
    ix->ntotal = j;
    return VDX_OK;
}

static void aqfs_destroy(vdx_index *ix) {
    vdx_aqfs *p = (vdx_aqfs *)ix;
    if (p->aq) p->aq->owner = NULL;
    vdx_aq_destroy(p->aq);
    vdx_free(p->codes);
    vdx_free(p);
}

/* the quantizer changed: the search type must still fit the metric (the
 * caller restores the old one on error), the codebooks still 4-bit */
static vdx_status aqfs_changed(vdx_index *ix) {
    vdx_aqfs *p = (vdx_aqfs *)ix;
    vdx_status st = vdx_aqfs_check_aq(p->aq, ix->metric, ix->ops->type_name);
    if (st) return st;
    ix->is_trained = p->aq->is_trained;
    return VDX_OK;
}

vdx_status vdx_index_aq_fastscan_new(vdx_aq *aq, vdx_metric metric,
                                     int64_t bbs, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!aq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the quantizer is NULL");
    const char *who = aqfs_name(aq->kind);
    if (aq->owner)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: the quantizer already belongs to an index", who);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: metric %d is not supported", who, (int)metric);
    if (bbs <= 0 || bbs % 32 != 0 || bbs > VDX_FS_BBS_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: bbs must be a positive multiple of 32 up to %d, "
                         "got %lld",
                         who, VDX_FS_BBS_MAX, (long long)bbs);
    vdx_status st = vdx_aqfs_check_aq(aq, metric, who);
    if (st) return st;
#pragma omp critical(vdx_aqfs_ops)
    if (!aqfs_ops[0].type_name)
        for (int kd = 0; kd < 4; kd++) {
            vdx_index_ops o = {aqfs_name(kd),      aqfs_train,
                               aqfs_add,           aqfs_search,
                               aqfs_range_search,  aqfs_reset,
                               aqfs_reconstruct,   aqfs_reconstruct_n,
                               aqfs_remove_ids,    aqfs_destroy};
            aqfs_ops[kd] = o;
        }
    vdx_aqfs *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    p->base.ops = &aqfs_ops[aq->kind];
    p->base.d = aq->d;
    p->base.metric = metric;
    p->base.is_trained = aq->is_trained;
    p->aq = aq;
    p->Mfs = aq->M + (metric == VDX_METRIC_L2 ? 2 : 0);
    p->nsq = (p->Mfs + 1) / 2 * 2;
    p->bbs = bbs;
    p->rescale_norm = 1;
    p->norm_scale = 1;
    p->max_train_points = (uint64_t)1024 * 16 * (uint64_t)p->Mfs;
    aq->owner = &p->base;
    aq->changed = aqfs_changed;
    *out = &p->base;
    return VDX_OK;
}

int64_t vdx_index_aq_fastscan_bbs(const vdx_index *ix) {
    if (vdx_is_ivfaqfs(ix)) return ((const vdx_ivfaqfs *)(const void *)ix)->bbs;
    return vdx_is_aqfs(ix) ? ((const vdx_aqfs *)ix)->bbs : 0;
}
