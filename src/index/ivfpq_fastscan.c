/*
 * ivfpq_fastscan.c — IndexIVFPQFastScan: IndexIVFPQ with 4-bit
 * sub-quantizers scanned with the fast-scan kernels (FAISS's
 * IndexIVFPQFastScan; André et al., VLDB 2015).
 *
 * The IVF framework (ivf.c) does the work of any IVF kind — coarse
 * quantizer, training, add, nprobe, selectors, remove_ids, direct map,
 * threading — with the codes stored flat (FAISS's PQ layout) in the
 * inverted lists.  For the scan, each list also has a packed copy in
 * fast-scan blocks, rebuilt lazily when the list changed; the framework
 * hands each (query, list) to scan_heap, which builds the query's float
 * table (with by_residual, off by default as in FAISS, of the residual to
 * the list's centroid; inner product: the scores plus <x, c>), quantizes it, and runs
 * the same bounded block scan as IndexPQFastScan: results equal those of
 * the float table on the same codes (see fastscan.h).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_fastscan.h"
#include "index_pq.h"
#include "common/topk.h"
#include "simd/kernels.h"

static const vdx_ivfpqfs *as_fs(const vdx_ivf *ivf) {
    return (const vdx_ivfpqfs *)(const void *)ivf;
}

static void centroid(const vdx_ivf *ivf, int64_t list, float *c) {
    if (ivf->quantizer->ops->reconstruct(ivf->quantizer, list, c))
        memset(c, 0, (size_t)ivf->base.d * sizeof(float));
}

/* ---- codec (flat codes in the lists) ------------------------------------ */

static vdx_status fs_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                            const int64_t *lists, uint8_t *codes) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    return vdx_ivf_pq_encode(ivf, &p->pq, p->by_residual, n, x, lists, codes);
}

static void fs_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                      float *out) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    vdx_ivf_pq_decode(ivf, &p->pq, p->by_residual, list, code, out);
}

/* context: the float key table (M x 16), the 8-bit table (nsq x 16), the
 * residual / centroid scratch (d floats) */
static size_t ctx_table_bytes(const vdx_ivfpqfs *p) {
    return ((size_t)p->pq.M * 16 * sizeof(float) + 63) / 64 * 64;
}
static size_t ctx_lut_bytes(const vdx_ivfpqfs *p) {
    return ((size_t)p->nsq * 16 + 63) / 64 * 64;
}

/* context header: the query whose tables the context holds (by_residual
 * off: one table per query, whatever the list), the quantized table's
 * scalars; the framework zeroes contexts at the start of each search */
typedef struct fs_ctx_head {
    const float *xq;
    vdx_fs_lut lut;
} fs_ctx_head;
#define CTX_HEAD 128

static size_t fs_ctx_size(const vdx_ivf *ivf) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    return CTX_HEAD + ctx_table_bytes(p) + ctx_lut_bytes(p) +
           (size_t)ivf->base.d * sizeof(float);
}

static float *ctx_table(const void *ctx) {
    return (float *)(void *)((uint8_t *)(uintptr_t)ctx + CTX_HEAD);
}

/* Key table of query xq for list (keys: L2 distances or -scores). */
static void fs_prepare(const vdx_ivf *ivf, const float *xq, int64_t list,
                       void *ctx) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    const int64_t d = ivf->base.d;
    fs_ctx_head *h = ctx;
    float *table = ctx_table(ctx);
    uint8_t *q = (uint8_t *)table + ctx_table_bytes(p);
    float *r = (float *)(void *)(q + ctx_lut_bytes(p));
    const int64_t tn = p->pq.M * 16;
    if (!p->by_residual) {
        if (h->xq == xq) return; /* this query's tables are already here */
        vdx_pq_table(&p->pq, ivf->base.metric, xq, table);
        if (ivf->base.metric == VDX_METRIC_INNER_PRODUCT)
            for (int64_t i = 0; i < tn; i++) table[i] = -table[i];
    } else {
        centroid(ivf, list, r);
        if (ivf->base.metric == VDX_METRIC_L2) {
            for (int64_t j = 0; j < d; j++) r[j] = xq[j] - r[j];
            vdx_pq_table(&p->pq, VDX_METRIC_L2, r, table);
        } else {
            float xc = vdx_kernels_get()->inner_product(xq, r, (size_t)d);
            vdx_pq_table(&p->pq, VDX_METRIC_INNER_PRODUCT, xq, table);
            for (int64_t i = 0; i < tn; i++) table[i] = -table[i];
            /* the constant -<x, c> rides on sub-quantizer 0 */
            for (int j = 0; j < 16; j++) table[j] -= xc;
        }
    }
    h->lut.q = q;
    vdx_fs_quantize(table, p->pq.M, p->nsq, &h->lut);
    h->xq = p->by_residual ? NULL : xq;
}

static void fs_scan_ctx(const vdx_ivf *ivf, const void *ctx,
                        const uint8_t *codes, size_t n, float *keys) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    const float *table = ctx_table(ctx);
    const int64_t M = p->pq.M;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * p->pq.code_size;
        float s = 0;
        for (int64_t m = 0; m < M; m++)
            s += table[m * 16 + ((c[m / 2] >> (4 * (m & 1))) & 15)];
        keys[i] = s;
    }
}

static void fs_scan(const vdx_ivf *ivf, const float *xq, int64_t list,
                    const uint8_t *codes, size_t n, float *keys) {
    void *ctx = vdx_aligned_alloc(1, fs_ctx_size(ivf));
    if (!ctx) {
        for (size_t i = 0; i < n; i++) keys[i] = INFINITY;
        return;
    }
    memset(ctx, 0, sizeof(fs_ctx_head));
    fs_prepare(ivf, xq, list, ctx);
    fs_scan_ctx(ivf, ctx, codes, n, keys);
    vdx_aligned_free(ctx);
}

static const vdx_ivf_codec fs_codec = {fs_encode, fs_decode, fs_scan};
static const vdx_ivf_scanner fs_scanner = {fs_ctx_size, fs_prepare,
                                           fs_scan_ctx, NULL};

/* ---- the packed mirror of the lists -------------------------------------- */

static void mark_stale(vdx_ivfpqfs *p) {
    for (int64_t l = 0; l < p->ivf.nlist; l++)
        __atomic_store_n(&p->packed_n[l], (int64_t)-1, __ATOMIC_RELEASE);
}

/* The packed blocks of list l, rebuilt if stale; NULL when out of memory. */
static const uint8_t *packed_list(const vdx_ivfpqfs *pc, int64_t l,
                                  int64_t ls) {
    vdx_ivfpqfs *p = (vdx_ivfpqfs *)(void *)pc; /* a cache, rebuilt under a lock */
    if (__atomic_load_n(&p->packed_n[l], __ATOMIC_ACQUIRE) == ls)
        return p->packed[l];
    const uint8_t *res = NULL;
#pragma omp critical(vdx_ivfpqfs_pack)
    {
        if (p->packed_n[l] == ls) {
            res = p->packed[l];
        } else {
            int64_t nb = (ls + p->bbs - 1) / p->bbs;
            size_t bsz = vdx_fs_block_size(p->nsq, p->bbs);
            uint8_t *b = vdx_realloc_array(p->packed[l], (size_t)(nb ? nb : 1), bsz);
            if (b) {
                memset(b, 0, (size_t)(nb ? nb : 1) * bsz);
                const vdx_invlists *il = p->ivf.il;
                vdx_fs_pack(il->ops->get_codes(il, l), ls, p->pq.M, p->bbs,
                            p->nsq, b, 0);
                p->packed[l] = b;
                __atomic_store_n(&p->packed_n[l], ls, __ATOMIC_RELEASE);
                res = b;
            }
        }
    }
    return res;
}

static int64_t fs_scan_heap(const vdx_ivf *ivf, const void *ctx, int64_t l,
                            int64_t k, const vdx_selector *sel, float *hk,
                            vdx_idx_t *hi) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    const vdx_invlists *il = ivf->il;
    int64_t ls = il->ops->list_size(il, l);
    if (ls == 0) return 0;
    const float *table = ctx_table(ctx);
    const fs_ctx_head *h = ctx;
    const vdx_idx_t *ids = il->ops->get_ids(il, l);
    const uint8_t *blocks = packed_list(p, l, ls);
    if (!blocks) { /* no memory for the packed copy: the float scan */
        const uint8_t *codes = il->ops->get_codes(il, l);
        for (int64_t i = 0; i < ls; i++) {
            if (sel && !vdx_sel_member(sel, ids[i])) continue;
            float key;
            fs_scan_ctx(ivf, ctx, codes + (size_t)i * p->pq.code_size, 1, &key);
            vdx_heap_push(k, hk, hi, key, ids[i]);
        }
        return ls;
    }
    const vdx_fs_lut lut = h->lut;
    vdx_fs_scan_blocks(vdx_fs_kernels_get(), blocks, ls, p->bbs, p->pq.M,
                       p->nsq, table, &lut, ids, 0, sel, k, hk, hi);
    return ls;
}

/* ---- ops: the generic IVF ones, with training, mutations and destruction
 * extended -------------------------------------------------------------- */

static vdx_index_ops fs_ops;
static vdx_index_ops generic;

static vdx_status fs_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfpqfs *p = (vdx_ivfpqfs *)ix;
    vdx_status st = generic.train(ix, n, x);
    if (st) return st;
    ix->is_trained = 0;
    st = vdx_ivf_pq_train(ix, &p->pq, p->by_residual, n, x);
    if (!st) ix->is_trained = 1;
    return st;
}

static vdx_status fs_add(vdx_index *ix, int64_t n, const float *x,
                         const vdx_idx_t *ids) {
    vdx_status st = generic.add(ix, n, x, ids);
    mark_stale((vdx_ivfpqfs *)ix);
    return st;
}

static vdx_status fs_reset(vdx_index *ix) {
    vdx_status st = generic.reset(ix);
    mark_stale((vdx_ivfpqfs *)ix);
    return st;
}

static vdx_status fs_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    vdx_status st = generic.remove_ids(ix, sel, nremoved);
    mark_stale((vdx_ivfpqfs *)ix);
    return st;
}

static void fs_destroy(vdx_index *ix) {
    vdx_ivfpqfs *p = (vdx_ivfpqfs *)ix;
    if (p->packed)
        for (int64_t l = 0; l < p->ivf.nlist; l++) vdx_free(p->packed[l]);
    vdx_free(p->packed);
    vdx_free(p->packed_n);
    vdx_pq_clear(&p->pq);
    generic.destroy(ix);
}

int vdx_is_ivfpqfs(const vdx_index *ix) { return ix && ix->ops == &fs_ops; }

vdx_status vdx_ivfpqfs_alloc(vdx_index *quantizer, int64_t d, int64_t nlist,
                             int64_t M, vdx_metric metric, int64_t bbs,
                             int by_residual, vdx_ivfpqfs **out) {
    *out = NULL;
#pragma omp critical(vdx_ivfpqfs_ops)
    if (!fs_ops.type_name) {
        vdx_ivf_generic_ops(&generic, "IndexIVFPQFastScan");
        vdx_index_ops o = generic;
        o.train = fs_train;
        o.add = fs_add;
        o.reset = fs_reset;
        o.remove_ids = fs_remove_ids;
        o.destroy = fs_destroy;
        fs_ops = o;
    }
    if (bbs <= 0 || bbs % 32 != 0 || bbs > VDX_FS_BBS_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFPQFastScan: bbs must be a positive multiple "
                         "of 32 up to %d, got %lld",
                         VDX_FS_BBS_MAX, (long long)bbs);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFPQFastScan: metric %d is not supported",
                         (int)metric);
    vdx_ivfpqfs *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_pq_setup(&p->pq, d, M, 4);
    if (!st)
        st = vdx_ivf_init(&p->ivf, &fs_ops, quantizer, d, nlist, metric,
                          p->pq.code_size);
    if (st) {
        vdx_free(p);
        return st;
    }
    p->pq.owner = &p->ivf.base;
    p->by_residual = by_residual;
    p->bbs = bbs;
    p->nsq = (M + 1) / 2 * 2;
    p->ivf.codec = &fs_codec;
    p->ivf.scanner = &fs_scanner;
    p->ivf.scan_heap = fs_scan_heap;
    p->ivf.base.is_trained = 0;
    p->packed = vdx_calloc((size_t)nlist, sizeof(uint8_t *));
    p->packed_n = vdx_malloc_array((size_t)nlist, sizeof(int64_t));
    if (!p->packed || !p->packed_n) {
        p->ivf.quantizer = NULL; /* still the caller's on failure */
        fs_destroy(&p->ivf.base);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    mark_stale(p);
    *out = p;
    return VDX_OK;
}

vdx_status vdx_index_ivfpq_fastscan_new(vdx_index *quantizer, int64_t d,
                                        int64_t nlist, int64_t M, int nbits,
                                        vdx_metric metric, int64_t bbs,
                                        vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (nbits != 4)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFPQFastScan: nbits must be 4, got %d", nbits);
    vdx_ivfpqfs *p = NULL;
    /* by_residual = 0 as FAISS's constructor (factory "fsr": 1) */
    vdx_status st = vdx_ivfpqfs_alloc(quantizer, d, nlist, M, metric, bbs, 0, &p);
    *out = p ? &p->ivf.base : NULL;
    return st;
}

int vdx_index_fastscan_by_residual(const vdx_index *ix) {
    return vdx_is_ivfpqfs(ix) ? ((const vdx_ivfpqfs *)(const void *)ix)->by_residual
                              : 0;
}

vdx_status vdx_index_fastscan_set_by_residual(vdx_index *ix, int on) {
    vdx_clear_error();
    if (!vdx_is_ivfpqfs(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual: not an IndexIVFPQFastScan");
    if (ix->ntotal > 0 || ix->is_trained)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "by_residual can only change before training");
    ((vdx_ivfpqfs *)(void *)ix)->by_residual = on ? 1 : 0;
    return VDX_OK;
}
