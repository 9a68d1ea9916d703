/*
 * ivfpq_fastscan.c — IndexIVFPQFastScan: IndexIVFPQ with 4-bit
 * sub-quantizers scanned with the fast-scan kernels (FAISS's
 * IndexIVFPQFastScan; André et al., VLDB 2015).
 *
 * The IVF framework (ivf.c) does the work of any IVF kind — coarse
 * quantizer, training, add, nprobe, selectors, remove_ids, direct map,
 * threading — with the codes stored flat (FAISS's PQ layout) in the
 * inverted lists.  For the scan, each list also has a packed copy in
 * fast-scan blocks, rebuilt lazily when the list changed.  Search has its
 * own driver (fs_search): per query the float table (with by_residual,
 * off by default as in FAISS, of the residual to the list's centroid;
 * inner product: the scores plus <x, c>), its 8-bit form, and the same
 * candidate scan as IndexPQFastScan (see fastscan.h and index_fastscan.h),
 * query by query in probe order, or for batches without by_residual list
 * by list (search_chunk).  The framework's scanner (fs_scanner) serves
 * its generic paths.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_fastscan.h"
#include "index_pq.h"
#include "common/stats.h"
#include "common/threads.h"
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
    const float *ct; /* transposed PQ centroids (fs_search), or NULL */
} fs_ctx_head;
#define CTX_HEAD ((sizeof(fs_ctx_head) + 63) / 64 * 64)

static size_t fs_ctx_size(const vdx_ivf *ivf) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    return CTX_HEAD + ctx_table_bytes(p) + ctx_lut_bytes(p) +
           (size_t)ivf->base.d * sizeof(float);
}

static float *ctx_table(const void *ctx) {
    return (float *)(void *)((uint8_t *)(uintptr_t)ctx + CTX_HEAD);
}

/* Key table of query xq without by_residual (keys: L2 distances or
 * -scores); ct: the transposed centroids, or NULL. */
static void query_table(const vdx_ivfpqfs *p, const float *ct, const float *xq,
                        float *table) {
    const vdx_metric metric = p->ivf.base.metric;
    if (ct)
        vdx_pq_table_t(&p->pq, ct, metric, xq, table);
    else
        vdx_pq_table(&p->pq, metric, xq, table);
    if (metric == VDX_METRIC_INNER_PRODUCT)
        for (int64_t i = 0; i < p->pq.M * 16; i++) table[i] = -table[i];
}

/* Key table of query xq for list (keys: L2 distances or -scores) into
 * table (by_residual off: the context's own table, which it caches), and
 * its quantized form into the context. */
static void prepare_into(const vdx_ivf *ivf, const float *xq, int64_t list,
                         void *ctx, float *table) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    const int64_t d = ivf->base.d;
    fs_ctx_head *h = ctx;
    uint8_t *q = (uint8_t *)ctx_table(ctx) + ctx_table_bytes(p);
    float *r = (float *)(void *)(q + ctx_lut_bytes(p));
    const int64_t tn = p->pq.M * 16;
    if (!p->by_residual) {
        if (h->xq == xq) return; /* this query's tables are already here */
        query_table(p, h->ct, xq, table);
    } else {
        centroid(ivf, list, r);
        if (ivf->base.metric == VDX_METRIC_L2) {
            for (int64_t j = 0; j < d; j++) r[j] = xq[j] - r[j];
            if (h->ct)
                vdx_pq_table_t(&p->pq, h->ct, VDX_METRIC_L2, r, table);
            else
                vdx_pq_table(&p->pq, VDX_METRIC_L2, r, table);
        } else {
            float xc = vdx_kernels_get()->inner_product(xq, r, (size_t)d);
            if (h->ct)
                vdx_pq_table_t(&p->pq, h->ct, VDX_METRIC_INNER_PRODUCT, xq, table);
            else
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

static void fs_prepare(const vdx_ivf *ivf, const float *xq, int64_t list,
                       void *ctx) {
    prepare_into(ivf, xq, list, ctx, ctx_table(ctx));
}

/* Float-table key of one code. */
static float table_key(const vdx_ivfpqfs *p, const float *table,
                       const uint8_t *c) {
    const int64_t M = p->pq.M;
    float s = 0;
    int64_t m = 0;
    for (; m + 1 < M; m += 2, c++) /* two indices per byte */
        s += table[m * 16 + (*c & 15)] + table[(m + 1) * 16 + (*c >> 4)];
    if (m < M) s += table[m * 16 + (*c & 15)];
    return s;
}

static void fs_scan_ctx(const vdx_ivf *ivf, const void *ctx,
                        const uint8_t *codes, size_t n, float *keys) {
    const vdx_ivfpqfs *p = as_fs(ivf);
    const float *table = ctx_table(ctx);
    for (size_t i = 0; i < n; i++)
        keys[i] = table_key(p, table, codes + i * p->pq.code_size);
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

/* The exact float-table key of a code of list l for query xq: without
 * by_residual from the query's table qtab; with it from the list's float
 * table when kept (tab), else through the decoded vector. */
static float exact_key(const vdx_ivfpqfs *p, const float *xq,
                       const float *qtab, const float *tab, int64_t l,
                       const uint8_t *code, float *buf) {
    const vdx_ivf *ivf = &p->ivf;
    if (!p->by_residual) return table_key(p, qtab, code);
    if (tab) return table_key(p, tab, code);
    const vdx_kernels *K = vdx_kernels_get();
    vdx_ivf_pq_decode(ivf, &p->pq, 1, l, code, buf);
    return ivf->base.metric == VDX_METRIC_L2
               ? K->l2sqr(xq, buf, (size_t)ivf->base.d)
               : -K->inner_product(xq, buf, (size_t)ivf->base.d);
}

/* Float tables kept per probed list (by_residual) for the exact keys of
 * the candidates, up to this many bytes per thread; above, candidates are
 * decoded. */
#define FS_PROBE_TABLES_MAX ((size_t)4 << 20)

/* Longest list whose sums a query's first list may keep for seeding (a
 * 32 KiB buffer per thread); longer ones are scanned in order. */
#define FS_SEED_MAX 16384

/* The candidates of one query (res) into its results (k, D, I): their
 * approximate keys (approx), else their exact float-table keys.  A ref is
 * probe << 32 | offset with the probes' lists in cl, or list << 32 |
 * offset when cl is NULL; qtab: the query's table (by_residual off), tabs:
 * the per-probe tables (by_residual) or NULL; buf: d floats. */
static void finish_one(const vdx_ivfpqfs *p, const float *xq,
                       const int64_t *cl, const float *qtab, const float *tabs,
                       float *buf, vdx_fs_res *res, int approx, int64_t k,
                       float *D, vdx_idx_t *I) {
    const vdx_ivf *ivf = &p->ivf;
    const vdx_invlists *il = ivf->il;
    const int64_t tn = p->pq.M * 16;
    const int ip = ivf->base.metric == VDX_METRIC_INNER_PRODUCT;
    vdx_fs_res_finish(res);
    /* the candidates' ids and codes (cold: the scan read the packed copy)
     * are requested together, so their misses overlap */
    for (int64_t e = 0; e < res->n; e++) {
        if (res->ref[e] < 0) continue;
        int64_t r = res->ref[e] >> 32, off = res->ref[e] & 0xFFFFFFFF;
        int64_t l = cl ? cl[r] : r;
        __builtin_prefetch(il->ops->get_ids(il, l) + off);
        if (!approx)
            __builtin_prefetch(il->ops->get_codes(il, l) + (size_t)off * p->pq.code_size);
    }
    if (approx && res->n <= k) { /* unsorted (see vdx_search_params) */
        for (int64_t e = 0; e < k; e++) {
            int64_t rf = e < res->n ? res->ref[e] : -1;
            if (rf < 0) {
                D[e] = ip ? -FLT_MAX : FLT_MAX;
                I[e] = -1;
                continue;
            }
            int64_t r = rf >> 32, off = rf & 0xFFFFFFFF;
            D[e] = vdx_fs_key_distance(res->key[e], ip);
            I[e] = il->ops->get_ids(il, cl ? cl[r] : r)[off];
        }
        return;
    }
    /* the candidates, compacted in place: their keys, their ids */
    int64_t m = 0;
    for (int64_t e = 0; e < res->n; e++) {
        if (res->ref[e] < 0) continue;
        int64_t r = res->ref[e] >> 32, off = res->ref[e] & 0xFFFFFFFF;
        int64_t l = cl ? cl[r] : r;
        float key = res->key[e];
        if (!approx) {
            const uint8_t *code =
                il->ops->get_codes(il, l) + (size_t)off * p->pq.code_size;
            key = exact_key(p, xq, qtab, tabs && cl ? tabs + r * tn : NULL, l,
                            code, buf);
        }
        res->key[m] = key;
        res->ref[m++] = il->ops->get_ids(il, l)[off];
    }
    vdx_topk_select_sorted(k, m, res->key, res->ref, D, I);
    vdx_topk_finish_sorted(k, D, I, ip, 0);
}

/* One query: the nprobe lists of cl in probe order (max_codes: stop once
 * that many codes were scanned) into the heap of approximate keys (refs
 * probe << 32 | offset), then the exact keys of those into (k, D, I).
 * tabs (by_residual, or NULL): room for np float tables. */
static void search_one(const vdx_ivfpqfs *p, const float *xq,
                       const int64_t *cl, int64_t np, int64_t max_codes,
                       const vdx_selector *sel, void *ctx, float *tabs,
                       uint16_t *seed, vdx_fs_res *res, int approx,
                       int64_t k, float *D, vdx_idx_t *I) {
    const vdx_ivf *ivf = &p->ivf;
    const vdx_invlists *il = ivf->il;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    const fs_ctx_head *h = ctx;
    const int64_t tn = p->pq.M * 16;
    float *buf = (float *)(void *)((uint8_t *)ctx + CTX_HEAD + ctx_table_bytes(p) +
                                   ctx_lut_bytes(p));
    int64_t nscan = 0;
    for (int64_t j = 0; j < np; j++) {
        int64_t l = cl[j];
        if (l < 0) continue;
        if (max_codes && nscan >= max_codes) break;
        int64_t ls = il->ops->list_size(il, l);
        if (ls == 0) continue;
        nscan += ls;
        float *table = tabs ? tabs + j * tn : ctx_table(ctx);
        prepare_into(ivf, xq, l, ctx, table);
        const vdx_idx_t *ids = il->ops->get_ids(il, l);
        const uint8_t *blocks = packed_list(p, l, ls);
        if (blocks && seed && !sel && res->top == INFINITY &&
            ls >= 2 * res->k2 && ls <= FS_SEED_MAX) {
            vdx_fs_scan_blocks_seeded(K, blocks, ls, p->bbs, p->nsq, &h->lut,
                                      ids, j << 32, res, seed);
            continue;
        }
        if (blocks) {
            vdx_fs_scan_blocks(K, blocks, ls, p->bbs, p->nsq, &h->lut, ids,
                               j << 32, sel, res);
            continue;
        }
        /* no memory for the packed copy: the float scan */
        const uint8_t *codes = il->ops->get_codes(il, l);
        for (int64_t i = 0; i < ls; i++) {
            if (sel && !vdx_sel_member(sel, ids[i])) continue;
            float key = table_key(p, table, codes + (size_t)i * p->pq.code_size);
            if (key < res->top) vdx_fs_res_add(res, key, j << 32 | i);
        }
    }
    finish_one(p, xq, cl, ctx_table(ctx), tabs, buf, res, approx, k, D, I);
}

/* ---- list-major search (by_residual off) -------------------------------
 *
 * The scan of a list reads its codes at about 30 GB/s, more than one core
 * gets from memory: query by query, a search is bound by memory bandwidth
 * once the lists outgrow the caches.  So a chunk of queries goes list by
 * list instead: every query first scans its nearest non-empty list on its
 * own (seeded, so its threshold is tight from the start), then the other
 * (query, list) pairs are sorted by list and each list is scanned once for
 * the queries of the chunk that probe it, two at a time through one pass of
 * the kernel, while the list sits in the first-level cache.  Without
 * by_residual a query has one table for all lists, so refs are list << 32
 * | offset. */

/* Most queries per chunk, and most workspace bytes per thread. */
#define FS_LM_CHUNK 512
#define FS_LM_BYTES ((size_t)32 << 20)

typedef struct lm_layout {
    size_t tables, lq, luts, res, key, ref, pairs, seed, total;
} lm_layout;

/* Offsets of the workspace of a chunk of c queries. */
static lm_layout lm_plan(const vdx_ivfpqfs *p, int64_t c, int64_t np,
                         int64_t cap) {
    lm_layout o;
    size_t at = 0;
#define LM_TAKE(f, bytes) (o.f = at, at += ((size_t)(bytes) + 63) / 64 * 64)
    LM_TAKE(tables, (size_t)c * ctx_table_bytes(p));
    LM_TAKE(lq, (size_t)c * ctx_lut_bytes(p));
    LM_TAKE(luts, (size_t)c * sizeof(vdx_fs_lut));
    LM_TAKE(res, (size_t)c * sizeof(vdx_fs_res));
    LM_TAKE(key, (size_t)c * (size_t)cap * sizeof(float));
    LM_TAKE(ref, (size_t)c * (size_t)cap * sizeof(int64_t));
    LM_TAKE(pairs, (size_t)2 * (size_t)c * (size_t)np * sizeof(uint64_t)); /* + sort */
    LM_TAKE(seed, FS_SEED_MAX * sizeof(uint16_t));
#undef LM_TAKE
    o.total = at;
    return o;
}

/* Sorts n keys by their high 32 bits (list numbers below nlist), the low
 * ones (query numbers) staying in order: an LSD radix sort, 11 bits per
 * pass, through tmp (room for n).  The IVF AQ fast scan sorts its pairs
 * with it too. */
void vdx_fs_sort_pairs(uint64_t *a, uint64_t *tmp, int64_t n, int64_t nlist) {
    int passes = 0;
    for (int64_t v = nlist - 1; v > 0; v >>= 11) passes++;
    uint64_t *src = a, *dst = tmp;
    for (int ps = 0; ps < passes; ps++) {
        int64_t cnt[2048] = {0};
        const int sh = 32 + 11 * ps;
        for (int64_t i = 0; i < n; i++) cnt[(src[i] >> sh) & 2047]++;
        int64_t sum = 0;
        for (int b = 0; b < 2048; b++) {
            int64_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[cnt[(src[i] >> sh) & 2047]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(uint64_t));
}

static void search_chunk(const vdx_ivfpqfs *p, const float *x, int64_t q0,
                         int64_t nq, const int64_t *cl, int64_t np,
                         const vdx_selector *sel, const float *ct,
                         uint8_t *w, const lm_layout *o, int64_t cap,
                         int64_t k2, int approx, int64_t k, float *D,
                         vdx_idx_t *I) {
    const vdx_ivf *ivf = &p->ivf;
    const vdx_invlists *il = ivf->il;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    const int64_t d = ivf->base.d, tn = ctx_table_bytes(p) / sizeof(float);
    float *tables = (float *)(void *)(w + o->tables);
    uint8_t *lq = w + o->lq;
    vdx_fs_lut *luts = (vdx_fs_lut *)(void *)(w + o->luts);
    vdx_fs_res *res = (vdx_fs_res *)(void *)(w + o->res);
    float *key = (float *)(void *)(w + o->key);
    int64_t *ref = (int64_t *)(void *)(w + o->ref);
    uint64_t *pairs = (uint64_t *)(void *)(w + o->pairs);
    uint16_t *seed = (uint16_t *)(void *)(w + o->seed);
    int64_t npairs = 0;
    for (int64_t qi = 0; qi < nq; qi++) {
        const float *xq = x + (q0 + qi) * d;
        float *table = tables + qi * tn;
        luts[qi].q = lq + (size_t)qi * ctx_lut_bytes(p);
        query_table(p, ct, xq, table);
        vdx_fs_quantize(table, p->pq.M, p->nsq, &luts[qi]);
        vdx_fs_res_init(&res[qi], key + qi * cap, ref + qi * cap, k2);
        const int64_t *cq = cl + (q0 + qi) * np;
        int first = 1;
        for (int64_t j = 0; j < np; j++) {
            int64_t l = cq[j];
            if (l < 0) continue;
            int64_t ls = il->ops->list_size(il, l);
            if (ls == 0) continue;
            if (!first) {
                pairs[npairs++] = (uint64_t)l << 32 | (uint64_t)qi;
                continue;
            }
            first = 0;
            const vdx_idx_t *ids = il->ops->get_ids(il, l);
            const uint8_t *blocks = packed_list(p, l, ls);
            if (blocks && !sel && ls >= 2 * k2 && ls <= FS_SEED_MAX)
                vdx_fs_scan_blocks_seeded(K, blocks, ls, p->bbs, p->nsq,
                                          &luts[qi], ids, l << 32, &res[qi],
                                          seed);
            else /* the pair list takes it */
                pairs[npairs++] = (uint64_t)l << 32 | (uint64_t)qi;
        }
    }
    vdx_fs_sort_pairs(pairs, pairs + npairs, npairs, ivf->nlist);
    for (int64_t e = 0; e < npairs;) {
        const int64_t l = (int64_t)(pairs[e] >> 32);
        int64_t f = e + 1;
        while (f < npairs && (int64_t)(pairs[f] >> 32) == l) f++;
        const int64_t ls = il->ops->list_size(il, l);
        const vdx_idx_t *ids = il->ops->get_ids(il, l);
        const uint8_t *blocks = packed_list(p, l, ls);
        for (int64_t g = e; g < f; g += VDX_FS_MAX_QBS) {
            const int nqq = (int)VDX_MIN(VDX_FS_MAX_QBS, f - g);
            const float *tb[VDX_FS_MAX_QBS];
            vdx_fs_lut lu[VDX_FS_MAX_QBS];
            vdx_fs_res rs[VDX_FS_MAX_QBS];
            int64_t qs[VDX_FS_MAX_QBS];
            for (int j = 0; j < nqq; j++) {
                qs[j] = (int64_t)(pairs[g + j] & 0xFFFFFFFFu);
                tb[j] = tables + qs[j] * tn;
                lu[j] = luts[qs[j]];
                rs[j] = res[qs[j]];
            }
            if (blocks) {
                vdx_fs_scan_blocks_multi(K, blocks, ls, p->bbs, p->nsq, nqq,
                                         lu, ids, l << 32, sel, rs);
            } else { /* no memory for the packed copy: the float scan */
                const uint8_t *codes = il->ops->get_codes(il, l);
                for (int j = 0; j < nqq; j++)
                    for (int64_t i = 0; i < ls; i++) {
                        if (sel && !vdx_sel_member(sel, ids[i])) continue;
                        float a = table_key(p, tb[j], codes + (size_t)i * p->pq.code_size);
                        if (a < rs[j].top) vdx_fs_res_add(&rs[j], a, l << 32 | i);
                    }
            }
            for (int j = 0; j < nqq; j++) res[qs[j]] = rs[j];
        }
        e = f;
    }
    for (int64_t qi = 0; qi < nq; qi++)
        finish_one(p, x + (q0 + qi) * d, NULL, tables + qi * tn, NULL, NULL,
                   &res[qi], approx, k, D + (q0 + qi) * k, I + (q0 + qi) * k);
}

static vdx_status fs_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *prm, float *D,
                            vdx_idx_t *I) {
    const vdx_ivfpqfs *p = (const vdx_ivfpqfs *)(const void *)ix;
    const vdx_ivf *ivf = &p->ivf;
    int64_t np = prm && prm->nprobe > 0 ? prm->nprobe : ivf->nprobe;
    if (np < 1) /* nprobe = 0 can be set, as in FAISS, not searched with */
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: nprobe=%lld, it must be > 0", (long long)np);
    np = VDX_MIN(np, ivf->nlist);
    const int64_t max_codes =
        prm && prm->max_codes > 0 ? prm->max_codes : ivf->max_codes;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const int64_t k2 = vdx_fs_k2(k, ix->ntotal);
    /* per query, whole cache lines: threads must not share them */
    const int64_t cap = (vdx_fs_res_cap(k2) + 15) / 16 * 16;
    /* np average lists of 4-bit codes (1/32 of a shuffle each) plus the
     * tables: serial for small calls (threads.h) */
    const double listlen = (double)ix->ntotal / (double)VDX_MAX(ivf->nlist, (int64_t)1);
    const int nthreads = vdx_nthreads_for(
        (double)n * (double)np * (listlen * (double)p->pq.M / 32 + 4096));
    const size_t csz = (fs_ctx_size(ivf) + 63) / 64 * 64;
    float *cd = vdx_malloc_array((size_t)n, (size_t)np * sizeof(float));
    int64_t *cl = vdx_malloc_array((size_t)n, (size_t)np * sizeof(int64_t));
    uint8_t *ctxs = vdx_aligned_alloc((size_t)nthreads, csz);
    float *ak = vdx_aligned_alloc((size_t)nthreads, (size_t)cap * sizeof(float));
    int64_t *aref = vdx_aligned_alloc((size_t)nthreads, (size_t)cap * sizeof(int64_t));
    float *ct = vdx_malloc_array((size_t)(p->pq.M * p->pq.ksub),
                                 (size_t)p->pq.dsub * sizeof(float));
    const size_t tabsz = (size_t)np * (size_t)p->pq.M * 16 * sizeof(float);
    float *tabs = p->by_residual && tabsz <= FS_PROBE_TABLES_MAX
                      ? vdx_aligned_alloc((size_t)nthreads, tabsz)
                      : NULL;
    if (p->by_residual && tabsz <= FS_PROBE_TABLES_MAX && !tabs)
        vdx_clear_error(); /* optional: candidates are then decoded */
    uint16_t *seeds = vdx_aligned_alloc((size_t)nthreads, FS_SEED_MAX * sizeof(uint16_t));
    if (!seeds) vdx_clear_error(); /* optional: lists are then scanned in order */
    vdx_status st = VDX_OK;
    int64_t t0 = 0, tq = 0, ndis_total = 0, nlist_total = 0;
    if (!cd || !cl || !ctxs || !ak || !aref || !ct) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* no cached query tables from an earlier search */
    memset(ctxs, 0, (size_t)nthreads * csz);
    t0 = vdx_stats_now_ns();
    vdx_pq_transpose_centroids(&p->pq, ct);
    for (int t = 0; t < nthreads; t++)
        ((fs_ctx_head *)(void *)(ctxs + (size_t)t * csz))->ct = ct;
    st = ivf->quantizer->ops->search(ivf->quantizer, n, x, np, NULL, cd, cl);
    if (st) goto done;
    for (int64_t i = 0; i < n * np; i++)
        if (cl[i] >= ivf->nlist || cl[i] < -1) cl[i] = -1; /* trust no quantizer */
    tq = vdx_stats_now_ns();
    {   /* the stats: every code of a visited list is scored (the selector
         * filters after the block kernels), lists in probe order until
         * max_codes, as search_one does */
        int64_t c_nlist = 0, c_ndis = 0;
        for (int64_t q = 0; q < n; q++) {
            int64_t nscan = 0;
            for (int64_t j = 0; j < np; j++) {
                int64_t l = cl[q * np + j];
                if (l < 0) continue;
                if (max_codes && nscan >= max_codes) break;
                int64_t ls = ivf->il->ops->list_size(ivf->il, l);
                nscan += ls;
                c_nlist += ls > 0;
            }
            c_ndis += nscan;
        }
        ndis_total = c_ndis;
        nlist_total = c_nlist;
    }
    /* list-major when the queries of a chunk share lists (about two per
     * probed list or more) */
    if (!p->by_residual && !max_codes) {
        int64_t chunk = VDX_MIN(FS_LM_CHUNK, (n + 2 * nthreads - 1) / (2 * nthreads));
        lm_layout lo = lm_plan(p, chunk, np, cap);
        while (chunk > 1 && lo.total > FS_LM_BYTES) {
            chunk /= 2;
            lo = lm_plan(p, chunk, np, cap);
        }
        uint8_t *lmw = chunk * np >= 2 * ivf->nlist
                           ? vdx_aligned_alloc((size_t)nthreads, lo.total)
                           : NULL;
        if (lmw) {
            const int64_t nchunk = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
            for (int64_t c = 0; c < nchunk; c++)
                search_chunk(p, x, c * chunk, VDX_MIN(chunk, n - c * chunk), cl,
                             np, sel, ct,
                             lmw + (size_t)omp_get_thread_num() * lo.total, &lo,
                             cap, k2, prm && prm->candidates_only, k, D, I);
            vdx_aligned_free(lmw);
            goto done;
        }
        vdx_clear_error(); /* optional: queries then go one by one */
    }
    /* chunks of queries: neighbouring output rows share cache lines */
#pragma omp parallel for schedule(dynamic, 8) if (n > 1 && nthreads > 1) num_threads(nthreads)
    for (int64_t q = 0; q < n; q++) {
        const int t = omp_get_thread_num();
        vdx_fs_res res;
        vdx_fs_res_init(&res, ak + (size_t)t * cap, aref + (size_t)t * cap, k2);
        search_one(p, x + q * ix->d, cl + q * np, np, max_codes, sel,
                   ctxs + (size_t)t * csz,
                   tabs ? tabs + (size_t)t * (tabsz / sizeof(float)) : NULL,
                   seeds ? seeds + (size_t)t * FS_SEED_MAX : NULL, &res,
                   prm && prm->candidates_only, k, D + q * k, I + q * k);
    }
done:
    if (!st && t0)
        vdx_stats_ivf_add(n, nlist_total, ndis_total, 0, tq - t0,
                          vdx_stats_now_ns() - t0);
    vdx_free(cd);
    vdx_free(cl);
    vdx_aligned_free(ctxs);
    vdx_aligned_free(ak);
    vdx_aligned_free(aref);
    vdx_free(ct);
    vdx_aligned_free(tabs);
    vdx_aligned_free(seeds);
    return st;
}

/* ---- ops: the generic IVF ones, with training, mutations and destruction
 * extended -------------------------------------------------------------- */

static vdx_index_ops fs_ops;
static vdx_index_ops generic;

static vdx_status fs_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfpqfs *p = (vdx_ivfpqfs *)ix;
    /* FAISS's IVF fast scan retrains its PQ (IndexIVF::train): refused */
    vdx_status st = vdx_refuse_populated_train(ix);
    if (st) return st;
    st = generic.train(ix, n, x);
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
        o.search = fs_search;
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

vdx_status vdx_index_ivfpq_fastscan_from_ivfpq(const vdx_index *orig,
                                               vdx_index *quantizer,
                                               int64_t bbs, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!vdx_is_ivfpq(orig))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFPQFastScan(index): expected an IndexIVFPQ, "
                         "got %s", orig ? orig->ops->type_name : "NULL");
    const vdx_ivfpq *src = (const vdx_ivfpq *)(const void *)orig;
    if (src->pq.nbits != 4)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFPQFastScan(index): the IndexIVFPQ must have "
                         "nbits=4, got %d", src->pq.nbits);
    if (!quantizer || quantizer->d != orig->d ||
        quantizer->ntotal != src->ivf.quantizer->ntotal)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFPQFastScan(index): the quantizer copy does "
                         "not match the index's quantizer");
    vdx_ivfpqfs *p = NULL;
    vdx_status st = vdx_ivfpqfs_alloc(quantizer, orig->d, src->ivf.nlist,
                                      src->pq.M, orig->metric, bbs,
                                      src->by_residual, &p);
    if (st) return st;
    if (src->pq.centroids) {
        st = vdx_pq_alloc_centroids(&p->pq);
        if (!st)
            memcpy(p->pq.centroids, src->pq.centroids,
                   (size_t)(p->pq.M * p->pq.ksub * p->pq.dsub) *
                       sizeof(float));
    }
    /* the same codes and ids, list by list (packed lazily at search) */
    const vdx_invlists *sil = src->ivf.il;
    for (int64_t l = 0; !st && l < src->ivf.nlist; l++) {
        int64_t n = sil->ops->list_size(sil, l);
        if (n)
            st = p->ivf.il->ops->add_entries(p->ivf.il, l, n,
                                             sil->ops->get_ids(sil, l),
                                             sil->ops->get_codes(sil, l));
    }
    if (st) {
        p->ivf.quantizer = NULL; /* still the caller's on failure */
        fs_destroy(&p->ivf.base);
        return st;
    }
    p->ivf.base.ntotal = orig->ntotal;
    p->ivf.base.is_trained = orig->is_trained;
    p->ivf.nprobe = src->ivf.nprobe;
    mark_stale(p);
    *out = &p->ivf.base;
    return VDX_OK;
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
