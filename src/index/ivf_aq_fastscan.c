/*
 * ivf_aq_fastscan.c — IVF over 4-bit additive codes scanned with the
 * fast-scan kernels (FAISS's IndexIVFAdditiveQuantizerFastScan family:
 * IndexIVFResidualQuantizerFastScan, IndexIVFLocalSearchQuantizerFastScan
 * and the product kinds).
 *
 * A vector x in list l with centroid c is coded (by_residual) as the
 * additive code of r = x - c plus, for L2, the 2x4-bit code of |c + r'|^2
 * (r' the reconstruction of r: the norm of the whole reconstruction, not of
 * the residual, as FAISS's compute_codes_add_centroids).  Then
 *   |q - x'|^2 - |q|^2 = -2 <q, c> + sum_m -2 <q, entry_m> + |x'|^2,
 * one table of Mfs x 16 keys per query (the aq_fastscan.c table: M
 * inner-product rows and the two norm rows) whatever the list, plus a bias
 * per probed list (-2 <q, c>; inner product: keys are -scores, the bias
 * -<q, c>).  Without by_residual the bias is 0.  Distances are reported
 * without |q|^2, as FAISS's.
 *
 * The IVF framework (ivf.c) keeps the flat codes (Mfs nibbles, FAISS's
 * code_size = M2 / 2 bytes) and does training of the coarse quantizer,
 * add, remove_ids, the direct map and the generic paths (range search)
 * through the scanner below.  The k-NN search has its own driver: the
 * tables of a chunk of queries in one sgemm, each query's 8-bit table once,
 * the packed copy of each probed list (ivfpq_fastscan.c's lazy mirror)
 * scanned with its bias folded into the table's — batches list by list in
 * one parallel region (search_chunk), single queries in probe order — and
 * the 2k candidates re-scored with the float table (André et al., VLDB
 * 2015, for the scan;
 * Babenko & Lempitsky, CVPR 2014, for the additive tables).
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_aq.h"
#include "index_fastscan.h"
#include "common/threads.h"
#include "common/topk.h"
#include "quant/transform.h"
#include "simd/kernels.h"

static const vdx_ivfaqfs *as_fs(const vdx_ivf *ivf) {
    return (const vdx_ivfaqfs *)(const void *)ivf;
}

static void centroid(const vdx_ivf *ivf, int64_t list, float *c) {
    if (list < 0 || ivf->quantizer->ops->reconstruct(ivf->quantizer, list, c))
        memset(c, 0, (size_t)ivf->base.d * sizeof(float));
}

/* ---- codec (flat codes in the lists) ------------------------------------ */

static vdx_status fs_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                            const int64_t *lists, uint8_t *codes) {
    const vdx_ivfaqfs *p = as_fs(ivf);
    const int64_t d = ivf->base.d, M = p->aq->M, chunk = 16384;
    if (!p->by_residual) return vdx_aq_encode(p->aq, n, x, codes);
    const int64_t nc = VDX_MIN(n, chunk) + 1;
    float *r = vdx_malloc_array((size_t)nc, (size_t)d * sizeof(float));
    float *c = vdx_malloc_array((size_t)nc, (size_t)d * sizeof(float));
    int32_t *idx = vdx_malloc_array((size_t)nc, (size_t)M * sizeof(int32_t));
    vdx_status st = r && c && idx ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i0 = 0; i0 < n && !st; i0 += chunk) {
        const int64_t ni = VDX_MIN(chunk, n - i0);
        for (int64_t i = 0; i < ni; i++) {
            float *ri = r + i * d, *ci = c + i * d;
            const float *xi = x + (i0 + i) * d;
            /* as FAISS: a vector with no list is coded as a zero residual */
            centroid(ivf, lists[i0 + i], ci);
            for (int64_t j = 0; j < d; j++)
                ri[j] = lists[i0 + i] >= 0 ? xi[j] - ci[j] : 0.0f;
        }
        st = vdx_aq_encode_idx(p->aq, ni, r, idx);
        /* the norm is that of the whole reconstruction, centroid added */
        if (!st) {
            memset(codes + i0 * p->aq->code_size, 0, (size_t)ni * p->aq->code_size);
            st = vdx_aq_pack(p->aq, ni, idx, M, NULL, c,
                             codes + i0 * p->aq->code_size);
        }
    }
    vdx_free(r);
    vdx_free(c);
    vdx_free(idx);
    return st;
}

static void fs_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                      float *out) {
    const vdx_ivfaqfs *p = as_fs(ivf);
    const int64_t d = ivf->base.d;
    vdx_aq_decode_n(p->aq, 1, code, out);
    if (!p->by_residual) return;
    float cb[256];
    float *c = d <= 256 ? cb : vdx_malloc_array((size_t)d, sizeof(float));
    if (!c) return;
    centroid(ivf, list, c);
    for (int64_t j = 0; j < d; j++) out[j] += c[j];
    if (c != cb) vdx_free(c);
}

/* The float key table of query x (Mfs x 16, smaller is better): the
 * inner-product rows, then for L2 the norm quantizer's two rows. */
static void query_tables(const vdx_ivfaqfs *p, int64_t n, const float *x,
                         float *tabs) {
    const int ip = p->ivf.base.metric == VDX_METRIC_INNER_PRODUCT;
    const int64_t ts = p->Mfs * 16;
    vdx_aq_lut(p->aq, n, x, ip ? -1.0f : -2.0f, tabs, ts);
    if (!ip)
        for (int64_t i = 0; i < n; i++)
            memcpy(tabs + i * ts + p->aq->M * 16, p->aq->norm_tabs,
                   32 * sizeof(float));
}

/* The bias of list l for query xq (c: d floats of scratch). */
static float list_bias(const vdx_ivfaqfs *p, const float *xq, int64_t l,
                       float *c) {
    if (!p->by_residual) return 0;
    const vdx_ivf *ivf = &p->ivf;
    centroid(ivf, l, c);
    float qc = vdx_kernels_get()->inner_product(xq, c, (size_t)ivf->base.d);
    return ivf->base.metric == VDX_METRIC_L2 ? -2.0f * qc : -qc;
}

/* Float-table key of one flat code (two indices a byte, low first). */
static float table_key(int64_t Mfs, const float *table, const uint8_t *c) {
    float s = 0;
    int64_t m = 0;
    for (; m + 1 < Mfs; m += 2, c++)
        s += table[m * 16 + (*c & 15)] + table[(m + 1) * 16 + (*c >> 4)];
    if (m < Mfs) s += table[m * 16 + (*c & 15)];
    return s;
}

/* scanner context: bias, padding, the table, d floats of scratch */
#define CTX_HEAD 16
static size_t fs_ctx_size(const vdx_ivf *ivf) {
    return (size_t)(CTX_HEAD + as_fs(ivf)->Mfs * 16 + ivf->base.d) * sizeof(float);
}

static void fs_prepare(const vdx_ivf *ivf, const float *xq, int64_t list,
                       void *ctx) {
    const vdx_ivfaqfs *p = as_fs(ivf);
    float *f = ctx, *table = f + CTX_HEAD;
    query_tables(p, 1, xq, table);
    f[0] = list_bias(p, xq, list, table + p->Mfs * 16);
}

static void fs_scan_ctx(const vdx_ivf *ivf, const void *ctx,
                        const uint8_t *codes, size_t n, float *keys) {
    const vdx_ivfaqfs *p = as_fs(ivf);
    const float *f = ctx, *table = f + CTX_HEAD;
    for (size_t i = 0; i < n; i++)
        keys[i] = f[0] + table_key(p->Mfs, table, codes + i * p->aq->code_size);
}

static void fs_scan(const vdx_ivf *ivf, const float *xq, int64_t list,
                    const uint8_t *codes, size_t n, float *keys) {
    void *ctx = vdx_aligned_alloc(1, fs_ctx_size(ivf));
    if (!ctx) {
        for (size_t i = 0; i < n; i++) keys[i] = INFINITY;
        return;
    }
    fs_prepare(ivf, xq, list, ctx);
    fs_scan_ctx(ivf, ctx, codes, n, keys);
    vdx_aligned_free(ctx);
}

static const vdx_ivf_codec fs_codec = {fs_encode, fs_decode, fs_scan};
static const vdx_ivf_scanner fs_scanner = {fs_ctx_size, fs_prepare,
                                           fs_scan_ctx, NULL};

/* ---- the packed mirror of the lists (as ivfpq_fastscan.c's) ------------ */

static void mark_stale(vdx_ivfaqfs *p) {
    for (int64_t l = 0; l < p->ivf.nlist; l++)
        __atomic_store_n(&p->packed_n[l], (int64_t)-1, __ATOMIC_RELEASE);
}

/* The packed blocks of list l, rebuilt if stale; NULL when out of memory. */
static const uint8_t *packed_list(const vdx_ivfaqfs *pc, int64_t l, int64_t ls) {
    vdx_ivfaqfs *p = (vdx_ivfaqfs *)(void *)pc; /* a cache, rebuilt under a lock */
    if (__atomic_load_n(&p->packed_n[l], __ATOMIC_ACQUIRE) == ls)
        return p->packed[l];
    const uint8_t *res = NULL;
#pragma omp critical(vdx_ivfaqfs_pack)
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
                vdx_fs_pack(il->ops->get_codes(il, l), ls, p->Mfs, p->bbs,
                            p->nsq, b, 0);
                p->packed[l] = b;
                __atomic_store_n(&p->packed_n[l], ls, __ATOMIC_RELEASE);
                res = b;
            }
        }
    }
    return res;
}

/* ---- search --------------------------------------------------------------- */

/* Longest list whose sums a query's first list may keep for seeding (a
 * 32 KiB buffer per thread); longer ones are scanned in order. */
#define FS_SEED_MAX 16384

/* The probe of list l among a query's probes cl (np), -1 if none. */
static int64_t probe_of(const int64_t *cl, int64_t np, int64_t l) {
    for (int64_t j = 0; j < np; j++)
        if (cl[j] == l) return j;
    return -1;
}

/* The candidates of one query (res: refs r << 32 | offset, r its probe
 * number, or with by_list the list itself) re-scored with its float table
 * into (k, D, I); bias: the query's bias per probe. */
static void finish_one(const vdx_ivfaqfs *p, const float *table,
                       const int64_t *cl, int64_t np, const float *bias,
                       int by_list, vdx_fs_res *res, int64_t k, float *D,
                       vdx_idx_t *I) {
    const vdx_ivf *ivf = &p->ivf;
    const vdx_invlists *il = ivf->il;
    const int ip = ivf->base.metric == VDX_METRIC_INNER_PRODUCT;
    vdx_fs_res_finish(res);
    int64_t m = 0;
    for (int64_t e = 0; e < res->n; e++) {
        if (res->ref[e] < 0) continue;
        int64_t r = res->ref[e] >> 32, off = res->ref[e] & 0xFFFFFFFF;
        int64_t l = by_list ? r : cl[r], j = by_list ? probe_of(cl, np, r) : r;
        const uint8_t *code =
            il->ops->get_codes(il, l) + (size_t)off * p->aq->code_size;
        res->key[m] = (j >= 0 ? bias[j] : 0) + table_key(p->Mfs, table, code);
        res->ref[m++] = il->ops->get_ids(il, l)[off];
    }
    vdx_topk_select_sorted(k, m, res->key, res->ref, D, I);
    /* keys to distances: IP the negated key; L2 the key itself, without
     * |q|^2 as FAISS reports it (not clamped) */
    for (int64_t e = 0; e < k; e++) {
        if (I[e] < 0) D[e] = ip ? -FLT_MAX : FLT_MAX;
        else if (ip) D[e] = -D[e];
    }
}

/* The scan of list l (ls codes, packed copy blocks or NULL) for one query
 * into res, refs ref0 + offset: the 8-bit table lut (its bias the list's
 * already), seeded when the heap is still empty, or the float table with
 * the list's bias when the packed copy is missing. */
static void scan_list(const vdx_ivfaqfs *p, const vdx_fs_kernels *K, int64_t l,
                      int64_t ls, const uint8_t *blocks, const vdx_fs_lut *lut,
                      const float *table, float lbias, const vdx_selector *sel,
                      int64_t ref0, uint16_t *seed, vdx_fs_res *res) {
    const vdx_invlists *il = p->ivf.il;
    const vdx_idx_t *ids = il->ops->get_ids(il, l);
    if (blocks && seed && !sel && res->top == INFINITY && ls >= 2 * res->k2 &&
        ls <= FS_SEED_MAX) {
        vdx_fs_scan_blocks_seeded(K, blocks, ls, p->bbs, p->nsq, lut, ids, ref0,
                                  res, seed);
        return;
    }
    if (blocks) {
        vdx_fs_scan_blocks(K, blocks, ls, p->bbs, p->nsq, lut, ids, ref0, sel, res);
        return;
    }
    /* no memory for the packed copy: the float scan */
    const uint8_t *codes = il->ops->get_codes(il, l);
    for (int64_t i = 0; i < ls; i++) {
        if (sel && !vdx_sel_member(sel, ids[i])) continue;
        float key = lbias + table_key(p->Mfs, table, codes + (size_t)i * p->aq->code_size);
        if (key < res->top) vdx_fs_res_add(res, key, ref0 + i);
    }
}

/* per-thread scratch of the query-major search */
typedef struct fs_work {
    float *key;     /* candidate keys (cap) */
    int64_t *ref;   /* candidate refs (cap): probe << 32 | offset */
    uint8_t *lutq;  /* the 8-bit table (nsq x 16) */
    float *bias;    /* per probe */
    float *c;       /* d floats */
    uint16_t *seed; /* FS_SEED_MAX sums */
} fs_work;

/* One query: table (its float table), the probed lists cl (np, -1 = none)
 * in probe order (max_codes: stop once that many codes were scanned), the
 * candidates by 8-bit keys, re-scored with the float table. */
static void search_one(const vdx_ivfaqfs *p, const float *xq,
                       const float *table, const int64_t *cl, int64_t np,
                       int64_t max_codes, const vdx_selector *sel, int64_t k2,
                       fs_work *w, int64_t k, float *D, vdx_idx_t *I) {
    const vdx_invlists *il = p->ivf.il;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    vdx_fs_lut lut;
    lut.q = w->lutq;
    vdx_fs_quantize(table, p->Mfs, p->nsq, &lut);
    const float bias0 = lut.bias;
    vdx_fs_res res;
    vdx_fs_res_init(&res, w->key, w->ref, k2);
    int64_t nscan = 0;
    for (int64_t j = 0; j < np; j++) {
        int64_t l = cl[j];
        w->bias[j] = 0;
        if (l < 0) continue;
        if (max_codes && nscan >= max_codes) break;
        int64_t ls = il->ops->list_size(il, l);
        if (ls == 0) continue;
        nscan += ls;
        w->bias[j] = list_bias(p, xq, l, w->c);
        /* the list's bias shifts every key of the list alike */
        lut.bias = bias0 + w->bias[j];
        scan_list(p, K, l, ls, packed_list(p, l, ls), &lut, table, w->bias[j],
                  sel, j << 32, w->seed, &res);
    }
    finish_one(p, table, cl, np, w->bias, 0, &res, k, D, I);
}

/* ---- list-major search ---------------------------------------------------
 *
 * A query's table is the same for all its lists, up to the list's bias
 * (folded into the 8-bit table's bias): so a chunk of queries goes list by
 * list, as FAISS's implem 12.  Each query first scans its nearest
 * non-empty list on its own (seeded: its threshold tight from the start),
 * then the other (query, list) pairs are sorted by list, and each list is
 * scanned for the queries of the chunk that probe it one after the other,
 * while it sits in the first-level cache.
 * Refs are list << 32 | offset.  The candidates kept are the same as query
 * by query (the 2k smallest 8-bit keys; only ties may go either way). */

/* Most queries per chunk, and most workspace bytes per thread. */
#define FS_LM_CHUNK 512
#define FS_LM_BYTES ((size_t)32 << 20)

typedef struct lm_layout {
    size_t tables, lq, luts, res, key, ref, bias, pairs, seed, cvec, total;
} lm_layout;

static lm_layout lm_plan(const vdx_ivfaqfs *p, int64_t c, int64_t np,
                         int64_t cap) {
    lm_layout o;
    size_t at = 0;
#define LM_TAKE(f, bytes) (o.f = at, at += ((size_t)(bytes) + 63) / 64 * 64)
    LM_TAKE(tables, (size_t)c * (size_t)p->Mfs * 16 * sizeof(float));
    LM_TAKE(lq, (size_t)c * (((size_t)p->nsq * 16 + 63) / 64 * 64));
    LM_TAKE(luts, (size_t)c * sizeof(vdx_fs_lut));
    LM_TAKE(res, (size_t)c * sizeof(vdx_fs_res));
    LM_TAKE(key, (size_t)c * (size_t)cap * sizeof(float));
    LM_TAKE(ref, (size_t)c * (size_t)cap * sizeof(int64_t));
    LM_TAKE(bias, (size_t)c * (size_t)np * sizeof(float));
    LM_TAKE(pairs, (size_t)2 * (size_t)c * (size_t)np * sizeof(uint64_t)); /* + sort */
    LM_TAKE(seed, FS_SEED_MAX * sizeof(uint16_t));
    LM_TAKE(cvec, (size_t)p->ivf.base.d * sizeof(float));
#undef LM_TAKE
    o.total = at;
    return o;
}

/* The bias of a query for the list whose centroid is c (as list_bias). */
static float bias_with(const vdx_ivfaqfs *p, const float *xq, const float *c) {
    if (!p->by_residual) return 0;
    float qc = vdx_kernels_get()->inner_product(xq, c, (size_t)p->ivf.base.d);
    return p->ivf.base.metric == VDX_METRIC_L2 ? -2.0f * qc : -qc;
}

/* Queries q0 .. q0 + nq list by list (their probes in cl, np each). */
static void search_chunk(const vdx_ivfaqfs *p, const float *x, int64_t q0,
                         int64_t nq, const int64_t *cl, int64_t np,
                         const vdx_selector *sel, uint8_t *w,
                         const lm_layout *o, int64_t cap, int64_t k2, int64_t k,
                         float *D, vdx_idx_t *I) {
    const vdx_ivf *ivf = &p->ivf;
    const vdx_invlists *il = ivf->il;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    const int64_t d = ivf->base.d, TS = p->Mfs * 16;
    const size_t lbytes = ((size_t)p->nsq * 16 + 63) / 64 * 64;
    float *tables = (float *)(void *)(w + o->tables);
    uint8_t *lq = w + o->lq;
    vdx_fs_lut *luts = (vdx_fs_lut *)(void *)(w + o->luts);
    vdx_fs_res *res = (vdx_fs_res *)(void *)(w + o->res);
    float *key = (float *)(void *)(w + o->key);
    int64_t *ref = (int64_t *)(void *)(w + o->ref);
    float *bias = (float *)(void *)(w + o->bias);
    uint64_t *pairs = (uint64_t *)(void *)(w + o->pairs);
    uint16_t *seed = (uint16_t *)(void *)(w + o->seed);
    float *cvec = (float *)(void *)(w + o->cvec);
    /* the chunk's tables in one sgemm (serial BLAS: inside the team, or
     * small) */
    query_tables(p, nq, x + q0 * d, tables);
    int64_t npairs = 0;
    for (int64_t qi = 0; qi < nq; qi++) {
        const float *xq = x + (q0 + qi) * d, *table = tables + qi * TS;
        luts[qi].q = lq + (size_t)qi * lbytes;
        vdx_fs_quantize(table, p->Mfs, p->nsq, &luts[qi]);
        vdx_fs_res_init(&res[qi], key + qi * cap, ref + qi * cap, k2);
        const int64_t *cq = cl + (q0 + qi) * np;
        int first = 1;
        for (int64_t j = 0; j < np; j++) {
            int64_t l = cq[j];
            bias[qi * np + j] = 0;
            if (l < 0) continue;
            int64_t ls = il->ops->list_size(il, l);
            if (ls == 0) continue;
            if (!first) {
                pairs[npairs++] = (uint64_t)l << 32 | (uint64_t)(qi * np + j);
                continue;
            }
            first = 0;
            centroid(ivf, l, cvec);
            const float b = bias_with(p, xq, cvec);
            bias[qi * np + j] = b;
            const float b0 = luts[qi].bias;
            luts[qi].bias = b0 + b;
            scan_list(p, K, l, ls, packed_list(p, l, ls), &luts[qi], table, b,
                      sel, l << 32, seed, &res[qi]);
            luts[qi].bias = b0;
        }
    }
    vdx_fs_sort_pairs(pairs, pairs + npairs, npairs, ivf->nlist);
    for (int64_t e = 0; e < npairs;) {
        const int64_t l = (int64_t)(pairs[e] >> 32);
        int64_t f = e + 1;
        while (f < npairs && (int64_t)(pairs[f] >> 32) == l) f++;
        const int64_t ls = il->ops->list_size(il, l);
        const uint8_t *blocks = packed_list(p, l, ls);
        if (p->by_residual) centroid(ivf, l, cvec);
        /* query by query over the list, which stays in the first-level
         * cache: the kernel's two-query pass needed copies of both tables'
         * headers (with their wide-entry corrections, 340 bytes), which
         * cost more than the second pass over the cached codes */
        for (int64_t g = e; g < f; g++) {
            const int64_t pj = (int64_t)(pairs[g] & 0xFFFFFFFFu), qi = pj / np;
            const float b = bias_with(p, x + (q0 + qi) * d, cvec);
            bias[pj] = b;
            vdx_fs_lut *lu = &luts[qi];
            const float b0 = lu->bias;
            lu->bias = b0 + b;
            scan_list(p, K, l, ls, blocks, lu, tables + qi * TS, b, sel, l << 32,
                      NULL, &res[qi]);
            lu->bias = b0;
        }
        e = f;
    }
    for (int64_t qi = 0; qi < nq; qi++)
        finish_one(p, tables + qi * TS, cl + (q0 + qi) * np, np, bias + qi * np,
                   1, &res[qi], k, D + (q0 + qi) * k, I + (q0 + qi) * k);
}

static vdx_status fs_search(const vdx_index *ix, int64_t n, const float *x,
                            int64_t k, const vdx_search_params *prm, float *D,
                            vdx_idx_t *I) {
    const vdx_ivfaqfs *p = (const vdx_ivfaqfs *)(const void *)ix;
    const vdx_ivf *ivf = &p->ivf;
    int64_t np = prm && prm->nprobe > 0 ? prm->nprobe : ivf->nprobe;
    if (np < 1) /* nprobe = 0 can be set, as in FAISS, not searched with */
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: nprobe=%lld, it must be > 0", (long long)np);
    np = VDX_MIN(np, ivf->nlist);
    const int64_t max_codes =
        prm && prm->max_codes > 0 ? prm->max_codes : ivf->max_codes;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    /* twice k candidates by the 8-bit keys, as aq_fastscan.c (the norm
     * rows' wide range makes the 8-bit keys coarser than PQ's) */
    const int64_t k2 = VDX_MIN(VDX_MAX(2 * k, k + 8), VDX_MAX(ix->ntotal, k));
    const int64_t cap = (vdx_fs_res_cap(k2) + 15) / 16 * 16;
    const int64_t d = ix->d, TS = p->Mfs * 16, QC = 4096;
    const double listlen = (double)ix->ntotal / (double)VDX_MAX(ivf->nlist, (int64_t)1);
    /* per probed list: its codes (a 4-bit look-up is 1/32 of a shuffle),
     * plus the bias, the table's share, the candidates it adds and the
     * re-scoring (measured: about 300 ns, 600 steps, a (query, list) pair
     * for lists of 160 codes with Mfs = 10); serial for small calls
     * (threads.h) */
    const int nthreads = vdx_nthreads_for(
        (double)n * (double)np * (listlen * (double)p->Mfs / 32 + 512));
    float *cd = vdx_malloc_array((size_t)n, (size_t)np * sizeof(float));
    int64_t *cl = vdx_malloc_array((size_t)n, (size_t)np * sizeof(int64_t));
    uint8_t *work = NULL, *lmw = NULL;
    float *tabs = NULL;
    vdx_status st = VDX_OK;
    if (!cd || !cl) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* list-major when the queries of a chunk share lists (about two per
     * probed list or more), in one parallel region over chunks, each chunk
     * doing its own coarse quantization (as FAISS's threads slices: the
     * region then holds all of the call's work) */
    if (!max_codes) {
        int64_t chunk = nthreads > 1
                            ? (n + 2 * nthreads - 1) / (2 * nthreads)
                            : n;
        chunk = VDX_MIN(chunk, FS_LM_CHUNK);
        lm_layout lo = lm_plan(p, chunk, np, cap);
        while (chunk > 1 && lo.total > FS_LM_BYTES) {
            chunk /= 2;
            lo = lm_plan(p, chunk, np, cap);
        }
        lmw = chunk * np >= 2 * ivf->nlist
                  ? vdx_aligned_alloc((size_t)nthreads, lo.total)
                  : NULL;
        if (lmw) {
            const int64_t nchunk = (n + chunk - 1) / chunk;
            vdx_status qst = VDX_OK;
#pragma omp parallel for schedule(dynamic, 1) if (nthreads > 1) num_threads(nthreads)
            for (int64_t c = 0; c < nchunk; c++) {
                const int64_t q0 = c * chunk, nq = VDX_MIN(chunk, n - q0);
                vdx_status cst = ivf->quantizer->ops->search(
                    ivf->quantizer, nq, x + q0 * d, np, NULL, cd + q0 * np,
                    cl + q0 * np);
                if (cst) {
#pragma omp atomic write
                    qst = cst;
                    continue;
                }
                for (int64_t i = q0 * np; i < (q0 + nq) * np; i++)
                    if (cl[i] >= ivf->nlist || cl[i] < -1) cl[i] = -1; /* trust no quantizer */
                search_chunk(p, x, q0, nq, cl, np, sel,
                             lmw + (size_t)omp_get_thread_num() * lo.total, &lo,
                             cap, k2, k, D, I);
            }
            /* a worker's message stays on its thread: the quantizer is
             * asked again here for the caller's */
            if (qst) {
                st = ivf->quantizer->ops->search(ivf->quantizer, n, x, np, NULL,
                                                 cd, cl);
                if (!st)
                    st = vdx_raise(qst, "search: the coarse quantizer failed "
                                        "(status %d)", (int)qst);
            }
            goto done;
        }
        vdx_clear_error(); /* optional: queries then go one by one */
    }
    st = ivf->quantizer->ops->search(ivf->quantizer, n, x, np, NULL, cd, cl);
    if (st) goto done;
    for (int64_t i = 0; i < n * np; i++)
        if (cl[i] >= ivf->nlist || cl[i] < -1) cl[i] = -1; /* trust no quantizer */
    const size_t lbytes = ((size_t)p->nsq * 16 + 63) / 64 * 64;
    const size_t per = (size_t)cap * (sizeof(float) + sizeof(int64_t)) + lbytes +
                       (size_t)(np + d + 16) * sizeof(float) +
                       FS_SEED_MAX * sizeof(uint16_t);
    const size_t perw = (per + 63) / 64 * 64;
    work = vdx_aligned_alloc((size_t)nthreads, perw);
    tabs = vdx_malloc_array((size_t)VDX_MIN(n, QC), (size_t)TS * sizeof(float));
    if (!work || !tabs) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t c0 = 0; c0 < n; c0 += QC) {
        const int64_t nc = VDX_MIN(QC, n - c0);
        /* the tables of a chunk in one sgemm, before the threads */
        query_tables(p, nc, x + c0 * d, tabs);
#pragma omp parallel for schedule(dynamic, 4) if (nc > 1 && nthreads > 1) num_threads(nthreads)
        for (int64_t q = c0; q < c0 + nc; q++) {
            uint8_t *b = work + (size_t)omp_get_thread_num() * perw;
            fs_work w;
            w.key = (float *)(void *)b;
            w.ref = (int64_t *)(void *)(b + (size_t)cap * sizeof(float));
            w.lutq = b + (size_t)cap * (sizeof(float) + sizeof(int64_t));
            w.bias = (float *)(void *)(w.lutq + lbytes);
            w.c = w.bias + np;
            w.seed = (uint16_t *)(void *)(w.c + d + 16);
            search_one(p, x + q * d, tabs + (q - c0) * TS, cl + q * np, np,
                       max_codes, sel, k2, &w, k, D + q * k, I + q * k);
        }
    }
done:
    vdx_free(cd);
    vdx_free(cl);
    vdx_aligned_free(work);
    vdx_aligned_free(lmw);
    vdx_free(tabs);
    return st;
}

/* ---- ops: the generic IVF ones, with training, search, mutations and
 * destruction extended ---------------------------------------------------- */

static vdx_index_ops fs_ops[4];
static vdx_index_ops generic;

/* FAISS's estimate_norm_scale: the mean over (at most 65536) training
 * vectors of the norm rows' widest span over the inner-product rows'
 * widest span, rounded (>= 1).  Stored for FAISS's 8-bit search only. */
static vdx_status estimate_norm_scale(vdx_ivfaqfs *p, int64_t n, const float *x) {
    const int64_t M = p->aq->M, step = n > 65536 ? n / 65536 + 1 : 1;
    float *t = vdx_malloc_array((size_t)p->Mfs * 16, sizeof(float));
    if (!t) return VDX_ERR_OUT_OF_MEMORY;
    double sum = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i += step, cnt++) {
        query_tables(p, 1, x + i * p->ivf.base.d, t);
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
        sum += sip > 0 ? snorm / sip : 1;
    }
    vdx_free(t);
    double s = cnt ? sum / (double)cnt : 1;
    p->norm_scale = (int32_t)roundf((float)fmax(s, 1.0));
    return VDX_OK;
}

/* The norm quantizer trained on |c + r'|^2, the norms the codes store
 * (aq's own training saw the residuals' norms). */
static vdx_status train_full_norms(vdx_ivfaqfs *p, int64_t n, const float *r,
                                   const int64_t *lists) {
    const int64_t d = p->ivf.base.d;
    uint8_t *codes = vdx_malloc_array((size_t)(n ? n : 1), p->aq->code_size);
    float *y = vdx_malloc_array((size_t)(n ? n : 1), (size_t)d * sizeof(float));
    float *norms = vdx_malloc_array((size_t)(n ? n : 1), sizeof(float));
    float *c = vdx_malloc_array((size_t)d, sizeof(float));
    vdx_status st = codes && y && norms && c ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    if (!st) st = vdx_aq_encode(p->aq, n, r, codes);
    if (!st) {
        vdx_aq_decode_n(p->aq, n, codes, y);
        for (int64_t i = 0; i < n; i++) {
            float *yi = y + i * d;
            centroid(&p->ivf, lists[i], c);
            double s = 0;
            for (int64_t j = 0; j < d; j++) {
                yi[j] += c[j];
                s += (double)yi[j] * yi[j];
            }
            norms[i] = (float)s;
        }
        st = vdx_aq_train_norm(p->aq, n, norms);
    }
    vdx_free(codes);
    vdx_free(y);
    vdx_free(norms);
    vdx_free(c);
    return st;
}

static vdx_status fs_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivfaqfs *p = (vdx_ivfaqfs *)ix;
    /* FAISS's IVF fast scan would re-encode nothing: refused when filled */
    vdx_status st = vdx_refuse_populated_train(ix);
    if (st) return st;
    st = generic.train(ix, n, x);
    if (st) return st;
    ix->is_trained = 0;
    const int64_t d = ix->d;
    int64_t max = (int64_t)(p->max_train_points ? p->max_train_points : 1);
    float *sub = NULL, *r = NULL;
    int64_t *lists = NULL;
    if ((st = vdx_subsample(n, d, max, x, 1234, &sub))) return st;
    const float *xt = sub ? sub : x;
    int64_t nt = sub ? max : n;
    lists = vdx_malloc_array((size_t)(nt ? nt : 1), sizeof(int64_t));
    if (!lists) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    ix->is_trained = 1; /* assign needs it */
    st = vdx_index_ivf_assign(ix, nt, xt, lists);
    ix->is_trained = 0;
    if (st) goto done;
    if (p->by_residual) {
        r = vdx_malloc_array((size_t)(nt ? nt : 1), (size_t)d * sizeof(float));
        if (!r) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int64_t i = 0; i < nt; i++) {
            float *ri = r + i * d;
            centroid(&p->ivf, lists[i], ri);
            for (int64_t j = 0; j < d; j++) ri[j] = xt[i * d + j] - ri[j];
        }
        xt = r;
    }
    /* as FAISS, a quantizer trained already is kept as it is */
    if (p->aq->is_trained) {
        ix->is_trained = 1;
        goto done;
    }
    if ((st = vdx_aq_train_internal(p->aq, nt, xt))) goto done;
    if (p->by_residual && ix->metric == VDX_METRIC_L2 &&
        (st = train_full_norms(p, nt, xt, lists)))
        goto done;
    if (ix->metric == VDX_METRIC_L2 && (st = estimate_norm_scale(p, nt, xt)))
        goto done;
    ix->is_trained = 1;
done:
    vdx_free(sub);
    vdx_free(r);
    vdx_free(lists);
    return st;
}

static vdx_status fs_add(vdx_index *ix, int64_t n, const float *x,
                         const vdx_idx_t *ids) {
    vdx_status st = generic.add(ix, n, x, ids);
    mark_stale((vdx_ivfaqfs *)ix);
    return st;
}

static vdx_status fs_reset(vdx_index *ix) {
    vdx_status st = generic.reset(ix);
    mark_stale((vdx_ivfaqfs *)ix);
    return st;
}

static vdx_status fs_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                int64_t *nremoved) {
    vdx_status st = generic.remove_ids(ix, sel, nremoved);
    mark_stale((vdx_ivfaqfs *)ix);
    return st;
}

static void fs_destroy(vdx_index *ix) {
    vdx_ivfaqfs *p = (vdx_ivfaqfs *)ix;
    if (p->packed)
        for (int64_t l = 0; l < p->ivf.nlist; l++) vdx_free(p->packed[l]);
    vdx_free(p->packed);
    vdx_free(p->packed_n);
    if (p->aq) p->aq->owner = NULL;
    vdx_aq_destroy(p->aq);
    generic.destroy(ix);
}

/* the quantizer changed (through its Python view): the search type must
 * still fit the metric (the caller restores the old one on error) */
static vdx_status fs_changed(vdx_index *ix) {
    vdx_ivfaqfs *p = (vdx_ivfaqfs *)ix;
    vdx_status st = vdx_aqfs_check_aq(p->aq, ix->metric, ix->ops->type_name);
    if (st) return st;
    const vdx_index *q = p->ivf.quantizer;
    ix->is_trained = p->aq->is_trained && q->is_trained && q->ntotal == p->ivf.nlist;
    mark_stale(p);
    return VDX_OK;
}

static const char *fs_name(int kind) {
    static const char *names[4] = {"IndexIVFResidualQuantizerFastScan",
                                   "IndexIVFLocalSearchQuantizerFastScan",
                                   "IndexIVFProductResidualQuantizerFastScan",
                                   "IndexIVFProductLocalSearchQuantizerFastScan"};
    return kind >= 0 && kind < 4 ? names[kind] : "IndexIVFAdditiveQuantizerFastScan";
}

int vdx_is_ivfaqfs(const vdx_index *ix) {
    return ix && ix->ops >= fs_ops && ix->ops < fs_ops + 4;
}

vdx_status vdx_ivfaqfs_alloc(vdx_index *quantizer, int64_t nlist, vdx_aq *aq,
                             vdx_metric metric, int64_t bbs, vdx_ivfaqfs **out) {
    *out = NULL;
    const char *who = fs_name(aq->kind);
#pragma omp critical(vdx_ivfaqfs_ops)
    if (!fs_ops[0].type_name) {
        vdx_ivf_generic_ops(&generic, "IndexIVFAdditiveQuantizerFastScan");
        for (int kd = 0; kd < 4; kd++) {
            vdx_index_ops o = generic;
            o.type_name = fs_name(kd);
            o.train = fs_train;
            o.search = fs_search;
            o.add = fs_add;
            o.reset = fs_reset;
            o.remove_ids = fs_remove_ids;
            o.destroy = fs_destroy;
            fs_ops[kd] = o;
        }
    }
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
    vdx_ivfaqfs *p = vdx_calloc(1, sizeof *p);
    if (!p) return VDX_ERR_OUT_OF_MEMORY;
    st = vdx_ivf_init(&p->ivf, &fs_ops[aq->kind], quantizer, aq->d, nlist,
                      metric, aq->code_size);
    if (st) {
        vdx_free(p);
        return st;
    }
    p->Mfs = aq->M + (metric == VDX_METRIC_L2 ? 2 : 0);
    p->nsq = (p->Mfs + 1) / 2 * 2;
    p->bbs = bbs;
    p->by_residual = 1; /* FAISS's constructor; its factory: "fsr" only */
    p->norm_scale = 1;
    p->max_train_points = (uint64_t)1024 * 16 * (uint64_t)p->Mfs;
    p->ivf.codec = &fs_codec;
    p->ivf.scanner = &fs_scanner;
    p->ivf.base.is_trained = p->ivf.base.is_trained && aq->is_trained;
    p->packed = vdx_calloc((size_t)nlist, sizeof(uint8_t *));
    p->packed_n = vdx_malloc_array((size_t)nlist, sizeof(int64_t));
    if (!p->packed || !p->packed_n) {
        p->ivf.quantizer = NULL; /* still the caller's on failure */
        fs_destroy(&p->ivf.base);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    mark_stale(p);
    p->aq = aq;
    aq->owner = &p->ivf.base;
    aq->changed = fs_changed;
    *out = p;
    return VDX_OK;
}

vdx_status vdx_index_ivf_aq_fastscan_new(vdx_index *quantizer, int64_t nlist,
                                         vdx_aq *aq, vdx_metric metric,
                                         int64_t bbs, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!aq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the quantizer is NULL");
    if (!quantizer)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "the coarse quantizer is NULL");
    vdx_ivfaqfs *p = NULL;
    vdx_status st = vdx_ivfaqfs_alloc(quantizer, nlist, aq, metric, bbs, &p);
    *out = p ? &p->ivf.base : NULL;
    return st;
}

vdx_status vdx_index_ivf_aq_fastscan_from_ivf_aq(const vdx_index *orig,
                                                 vdx_index *quantizer,
                                                 int64_t bbs, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!vdx_is_ivfaq(orig))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFAdditiveQuantizerFastScan(index): expected an "
                         "IVF additive-quantizer index, got %s",
                         orig ? orig->ops->type_name : "NULL");
    const vdx_ivfaq *src = (const vdx_ivfaq *)(const void *)orig;
    /* L2 by_residual codes store the residual's norm, fast scan the whole
     * reconstruction's: FAISS refuses them too */
    if (orig->metric == VDX_METRIC_L2 && src->by_residual)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFAdditiveQuantizerFastScan(index): an L2 index "
                         "must have by_residual=False");
    if (!quantizer || quantizer->d != orig->d ||
        quantizer->ntotal != src->ivf.quantizer->ntotal)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexIVFAdditiveQuantizerFastScan(index): the quantizer "
                         "copy does not match the index's quantizer");
    vdx_aq *aq = NULL;
    vdx_status st = vdx_aq_clone_internal(src->aq, &aq);
    if (st) return st;
    vdx_ivfaqfs *p = NULL;
    if ((st = vdx_ivfaqfs_alloc(quantizer, src->ivf.nlist, aq, orig->metric, bbs,
                                &p))) {
        vdx_aq_destroy(aq);
        return st;
    }
    p->by_residual = src->by_residual;
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

/* ---- FAISS's stored fields of both additive fast-scan families --------- */

static int64_t *field_i64(vdx_index *ix, const char *name) {
    if (vdx_is_ivfaqfs(ix)) {
        vdx_ivfaqfs *p = (vdx_ivfaqfs *)(void *)ix;
        if (!strcmp(name, "qbs2")) return (int64_t *)(void *)&p->qbs2;
        if (!strcmp(name, "max_train_points"))
            return (int64_t *)(void *)&p->max_train_points;
    } else if (vdx_is_aqfs(ix)) {
        vdx_aqfs *p = (vdx_aqfs *)(void *)ix;
        if (!strcmp(name, "max_train_points"))
            return (int64_t *)(void *)&p->max_train_points;
    }
    return NULL;
}

static int32_t *field_i32(vdx_index *ix, const char *name) {
    if (vdx_is_ivfaqfs(ix)) {
        vdx_ivfaqfs *p = (vdx_ivfaqfs *)(void *)ix;
        if (!strcmp(name, "implem")) return &p->implem;
        if (!strcmp(name, "qbs")) return &p->qbs;
        if (!strcmp(name, "norm_scale")) return &p->norm_scale;
    } else if (vdx_is_aqfs(ix)) {
        vdx_aqfs *p = (vdx_aqfs *)(void *)ix;
        if (!strcmp(name, "implem")) return &p->implem;
        if (!strcmp(name, "qbs")) return &p->qbs;
        if (!strcmp(name, "norm_scale")) return &p->norm_scale;
    }
    return NULL;
}

static int *field_bool(vdx_index *ix, const char *name) {
    if (strcmp(name, "rescale_norm")) return NULL;
    if (vdx_is_ivfaqfs(ix)) return &((vdx_ivfaqfs *)(void *)ix)->rescale_norm;
    if (vdx_is_aqfs(ix)) return &((vdx_aqfs *)(void *)ix)->rescale_norm;
    return NULL;
}

vdx_status vdx_index_aq_fastscan_param(const vdx_index *ix, const char *name,
                                       int64_t *value) {
    vdx_clear_error();
    if (!name || !value)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "name or value is NULL");
    vdx_index *m = (vdx_index *)(uintptr_t)ix; /* read only */
    int64_t *a = field_i64(m, name);
    int32_t *b = field_i32(m, name);
    int *c = field_bool(m, name);
    if (!a && !b && !c)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s has no fast-scan field '%s'",
                         ix ? ix->ops->type_name : "NULL", name);
    *value = a ? *a : b ? (int64_t)*b : (int64_t)(*c != 0);
    return VDX_OK;
}

vdx_status vdx_index_aq_fastscan_set_param(vdx_index *ix, const char *name,
                                           int64_t value) {
    vdx_clear_error();
    if (!name) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "name is NULL");
    int64_t *a = field_i64(ix, name);
    int32_t *b = field_i32(ix, name);
    int *c = field_bool(ix, name);
    if (!a && !b && !c)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s has no fast-scan field '%s'",
                         ix ? ix->ops->type_name : "NULL", name);
    /* the bounds the file readers accept */
    int64_t lo = 0, hi = INT32_MAX;
    if (!strcmp(name, "implem")) hi = 15;
    else if (!strcmp(name, "norm_scale")) lo = 1, hi = 1 << 20;
    else if (c) hi = 1;
    else if (a) hi = INT64_MAX;
    if (value < lo || value > hi)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: %s=%lld is out of range %lld..%lld",
                         ix->ops->type_name, name, (long long)value,
                         (long long)lo, (long long)hi);
    if (a) *a = value;
    else if (b) *b = (int32_t)value;
    else *c = value != 0;
    return VDX_OK;
}
