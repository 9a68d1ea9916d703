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
 * the heap.  The k best by that approximate key are kept per query and
 * re-scored with the float table, so the distances returned are exact
 * float-table distances but, as with FAISS's fast scan, a code whose
 * approximate key misses the k best may be missed.  implem 2 (FAISS's
 * float-table reference) searches the codes unpacked into an IndexPQ:
 * exactly IndexPQ's results.  Threads take queries.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "index_fastscan.h"
#include "index_pq.h"
#include "index_aq.h"
#include "common/topk.h"
#include "common/threads.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* The approximate key of lane v from its 16-bit sum s: bias + scale s,
 * with the saturating wide sub-quantizers' entries replaced by their exact
 * float values (one lookup of their corrections each). */
static inline float approx_key(const vdx_fs_lut *lut, const uint8_t *grp,
                               size_t stride, int v, uint16_t s) {
    float a = lut->bias + lut->scale * (float)s;
    if (lut->nwide) {
        int u = v & 15, sh = v >= 16 ? 4 : 0;
        int j = u < 8 ? 2 * u : 2 * (u - 8) + 1;
        for (int w = 0; w < lut->nwide; w++) {
            int64_t m = lut->wide[w];
            const uint8_t *c = grp + (size_t)(m / 2) * stride + (m & 1) * 16;
            a += lut->wide_corr[w][(c[j] >> sh) & 15];
        }
    }
    return a;
}

/* ---- the candidates of a query (index_fastscan.h) ----------------------- */

void vdx_fs_res_init(vdx_fs_res *r, float *key, int64_t *ref, int64_t k2) {
    r->key = key;
    r->ref = ref;
    r->k2 = k2;
    r->cap = vdx_fs_res_cap(k2);
    r->top = INFINITY;
    r->imax = 0;
    r->fill = 0;
    if (vdx_fs_res_is_set(r)) {
        for (int64_t e = 0; e < k2; e++) {
            key[e] = INFINITY;
            ref[e] = -1;
        }
        for (int64_t e = k2; e < r->cap; e++) { /* padding: never the largest */
            key[e] = -INFINITY;
            ref[e] = -1;
        }
        r->n = k2;
    } else {
        r->n = 0;
    }
}

void vdx_fs_res_shrink(vdx_fs_res *r) {
    float *key = r->key;
    int64_t *ref = r->ref;
    int64_t lo = 0, hi = r->n - 1;
    const int64_t kth = r->k2 - 1;
    while (hi > lo) { /* quickselect (median of three), refs moved along */
        int64_t mid = lo + (hi - lo) / 2;
        float x = key[lo], y = key[mid], z = key[hi];
        float piv = x < y ? (y < z ? y : (x < z ? z : x))
                          : (x < z ? x : (y < z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (key[i] < piv) i++;
            while (key[j] > piv) j--;
            if (i <= j) {
                float tk = key[i];
                key[i] = key[j];
                key[j] = tk;
                int64_t tr = ref[i];
                ref[i++] = ref[j];
                ref[j--] = tr;
            }
        }
        if (kth <= j)
            hi = j;
        else if (kth >= i)
            lo = i;
        else
            break;
    }
    r->n = r->k2;
    float top = key[0];
    for (int64_t e = 1; e < r->n; e++) top = key[e] > top ? key[e] : top;
    r->top = top;
}

void vdx_fs_res_finish(vdx_fs_res *r) {
    if (!vdx_fs_res_is_set(r) && r->n > r->k2) vdx_fs_res_shrink(r);
}

/* Offers the candidates of one group (mask, sums) for one query to its
 * heap; a candidate's ref is ref0 + its position, its id
 * ids[position] (the ref itself when ids is NULL). */
static inline void take_group(const uint8_t *grp, int64_t bbs, uint32_t mask,
                              const uint16_t *sums, int32_t *thr, int64_t i0,
                              const vdx_fs_lut *lut,
                              const vdx_idx_t *ids, int64_t ref0,
                              const vdx_selector *sel, vdx_fs_res *r) {
    while (mask) {
        int v = __builtin_ctz(mask);
        mask &= mask - 1;
        if ((int32_t)sums[v] > *thr) continue; /* tightened meanwhile */
        int64_t ref = ref0 + i0 + v;
        if (sel && !vdx_sel_member(sel, ids ? ids[i0 + v] : ref)) continue;
        float a = approx_key(lut, grp, (size_t)bbs, v, sums[v]);
        if (!(a < r->top)) continue;
        if (vdx_fs_res_add(r, a, ref)) *thr = vdx_fs_threshold(lut, r->top);
    }
}

/* The group scan of nq queries over n packed vectors: the kernel runs
 * until a group has candidates, which go to take_group. */
static void scan_run(const vdx_fs_kernels *K, const uint8_t *blocks,
                     int64_t n, int64_t bbs, int64_t nsq, int nq,
                     const vdx_fs_lut *luts,
                     const vdx_idx_t *ids, int64_t ref0,
                     const vdx_selector *sel, vdx_fs_res *res) {
    uint16_t sums[32 * VDX_FS_MAX_QBS * VDX_FS_RUN_HITS], thr16[VDX_FS_MAX_QBS];
    uint32_t masks[VDX_FS_MAX_QBS * VDX_FS_RUN_HITS];
    int64_t hits[VDX_FS_RUN_HITS];
    int32_t thr[VDX_FS_MAX_QBS];
    const uint8_t *q[VDX_FS_MAX_QBS];
    for (int j = 0; j < nq; j++) {
        thr[j] = vdx_fs_threshold(&luts[j], res[j].top);
        thr16[j] = thr[j] < 0 ? 0 : (uint16_t)thr[j];
        q[j] = luts[j].q;
    }
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    const int64_t ng = (n + 31) / 32, gpb = bbs / 32;
    for (int64_t g = 0; g < ng;) {
        int nh = K->scan_run(blocks, bbs, nsq, g, ng, q, nq, thr16,
                             VDX_FS_RUN_HITS, hits, sums, masks, &g);
        for (int h = 0; h < nh; h++) {
            const int64_t gh = hits[h];
            const uint8_t *grp = blocks + (size_t)(gh / gpb) * bsz + (size_t)(gh % gpb) * 32;
            const int64_t i0 = gh * 32;
            const uint32_t tail = n - i0 < 32 ? (1u << (n - i0)) - 1u : ~0u;
            for (int j = 0; j < nq; j++) {
                uint32_t mask = thr[j] < 0 ? 0 : masks[h * nq + j] & tail;
                if (!mask) continue;
                take_group(grp, bbs, mask, sums + 32 * (h * nq + j), &thr[j],
                           i0, &luts[j], ids, ref0, sel, &res[j]);
                thr16[j] = thr[j] < 0 ? 0 : (uint16_t)thr[j];
            }
        }
    }
}

void vdx_fs_scan_blocks(const vdx_fs_kernels *K, const uint8_t *blocks,
                        int64_t n, int64_t bbs, int64_t nsq,
                        const vdx_fs_lut *lut,
                        const vdx_idx_t *ids, int64_t ref0,
                        const vdx_selector *sel, vdx_fs_res *res) {
    scan_run(K, blocks, n, bbs, nsq, 1, lut, ids, ref0, sel, res);
}

void vdx_fs_scan_blocks_multi(const vdx_fs_kernels *K, const uint8_t *blocks,
                              int64_t n, int64_t bbs, int64_t nsq, int nq,
                              const vdx_fs_lut *luts, const vdx_idx_t *ids,
                              int64_t ref0, const vdx_selector *sel,
                              vdx_fs_res *res) {
    scan_run(K, blocks, n, bbs, nsq, nq, luts, ids, ref0, sel, res);
}

/* Entries of s[0 .. n) that are <= t. */
static int64_t count_le(const uint16_t *s, int64_t n, uint16_t t) {
    int64_t c = 0, i = 0;
#ifdef __SSE2__
    const __m128i tv = _mm_set1_epi16((short)t), z = _mm_setzero_si128();
    while (i + 32 <= n) { /* lane counts stay below 2^15 (madd is signed) */
        /* four independent sums: one would wait on its own latency */
        __m128i a0 = z, a1 = z, a2 = z, a3 = z;
        int64_t e = VDX_MIN(n, i + ((int64_t)1 << 19));
        for (; i + 32 <= e; i += 32) {
            const __m128i *p = (const __m128i *)(const void *)(s + i);
            /* v <= t exactly where the saturating v - t is 0 */
            a0 = _mm_sub_epi16(a0, _mm_cmpeq_epi16(_mm_subs_epu16(_mm_loadu_si128(p), tv), z));
            a1 = _mm_sub_epi16(a1, _mm_cmpeq_epi16(_mm_subs_epu16(_mm_loadu_si128(p + 1), tv), z));
            a2 = _mm_sub_epi16(a2, _mm_cmpeq_epi16(_mm_subs_epu16(_mm_loadu_si128(p + 2), tv), z));
            a3 = _mm_sub_epi16(a3, _mm_cmpeq_epi16(_mm_subs_epu16(_mm_loadu_si128(p + 3), tv), z));
        }
        /* widen to 32 bits before adding the four */
        __m128i w = _mm_add_epi32(
            _mm_add_epi32(_mm_madd_epi16(a0, _mm_set1_epi16(1)), _mm_madd_epi16(a1, _mm_set1_epi16(1))),
            _mm_add_epi32(_mm_madd_epi16(a2, _mm_set1_epi16(1)), _mm_madd_epi16(a3, _mm_set1_epi16(1))));
        uint32_t l[4];
        _mm_storeu_si128((__m128i *)(void *)l, w);
        c += (int64_t)l[0] + l[1] + l[2] + l[3];
    }
#endif
    for (; i < n; i++) c += s[i] <= t;
    return c;
}

/* Mask of the 32 entries of s that are <= t. */
static inline uint32_t le_mask32(const uint16_t *s, uint16_t t) {
#ifdef __SSE2__
    const __m128i tv = _mm_set1_epi16((short)t), z = _mm_setzero_si128();
    uint32_t m = 0;
    for (int h = 0; h < 2; h++) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * h));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * h + 8));
        __m128i la = _mm_cmpeq_epi16(_mm_subs_epu16(a, tv), z);
        __m128i lb = _mm_cmpeq_epi16(_mm_subs_epu16(b, tv), z);
        m |= (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(la, lb)) << (16 * h);
    }
    return m;
#else
    uint32_t m = 0;
    for (int v = 0; v < 32; v++) m |= (uint32_t)(s[v] <= t) << v;
    return m;
#endif
}

void vdx_fs_scan_blocks_seeded(const vdx_fs_kernels *K, const uint8_t *blocks,
                               int64_t n, int64_t bbs, int64_t nsq,
                               const vdx_fs_lut *lut,
                               const vdx_idx_t *ids, int64_t ref0,
                               vdx_fs_res *res, uint16_t *sums) {
    (void)ids;
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    const int64_t ng = (n + 31) / 32, gpb = bbs / 32;
    uint16_t lo = 0xFFFF, hi = 0;
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *grp = blocks + (size_t)(g / gpb) * bsz + (size_t)(g % gpb) * 32;
        K->scan32(grp, (size_t)bbs, lut->q, nsq, 0, sums + 32 * g);
    }
    for (int64_t i = 0; i < n; i++) { /* vectorised by the compiler */
        lo = sums[i] < lo ? sums[i] : lo;
        hi = sums[i] > hi ? sums[i] : hi;
    }
    /* t: about the k2-th smallest sum, by bisection of [lo, hi] while
     * count(<= hi) >= k2 (a few more seeds than k2 cost little) */
    for (int it = 0; it < 10 && lo < hi; it++) {
        uint16_t mid = (uint16_t)(lo + (hi - lo) / 2);
        int64_t c = count_le(sums, n, mid);
        if (c >= res->k2) {
            hi = mid;
            if (c <= res->k2 + res->k2 / 4 + 4) break; /* close enough */
        } else {
            lo = (uint16_t)(mid + 1);
        }
    }
    const uint16_t t = hi;
    int32_t thr = vdx_fs_threshold(lut, res->top);
    for (int pass = 0; pass < 2 && thr >= 0; pass++) {
        /* pass 0: the seeds (sum <= t); pass 1: the others that pass the
         * threshold the seeds set */
        for (int64_t g = 0; g < ng && thr >= 0; g++) {
            const uint16_t *gs = sums + 32 * g;
            uint32_t mask = pass == 0 ? le_mask32(gs, t)
                                      : le_mask32(gs, (uint16_t)VDX_MIN(thr, 0xFFFF)) &
                                            ~le_mask32(gs, t);
            if (n - 32 * g < 32) mask &= (1u << (n - 32 * g)) - 1u;
            const uint8_t *grp = blocks + (size_t)(g / gpb) * bsz + (size_t)(g % gpb) * 32;
            while (mask) {
                int v = __builtin_ctz(mask);
                mask &= mask - 1;
                if (pass == 1 && (int32_t)gs[v] > thr) continue;
                float a = approx_key(lut, grp, (size_t)bbs, v, gs[v]);
                if (!(a < res->top)) continue;
                if (vdx_fs_res_add(res, a, ref0 + 32 * g + v))
                    thr = vdx_fs_threshold(lut, res->top);
            }
        }
    }
}

/* At least 10 candidates by approximate key are re-scored: a search for
 * k < 10 then returns the first k results of a k = 10 search (the same
 * candidates), so results do not depend on k there, as with FAISS's
 * kernels.  Above, k: what a search for k > 10 adds costs no extra. */
int64_t vdx_fs_k2(int64_t k, int64_t ntotal) {
    (void)ntotal;
    return VDX_MAX(k, 10);
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
    /* as FAISS's IndexPQFastScan::train: a trained index ignores the call,
     * so the stored codes keep their codebook */
    if (ix->is_trained) return VDX_OK;
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
static void query_table(const vdx_pq *pq, const float *ct, vdx_metric metric,
                        const float *x, float *table) {
    vdx_pq_table_t(pq, ct, metric, x, table);
    if (metric == VDX_METRIC_INNER_PRODUCT)
        for (int64_t i = 0; i < pq->M * 16; i++) table[i] = -table[i];
}

/* The exact float-table keys of a heap's candidates (refs =
 * positions), offered to the output heap (k, D, I). */
static void pqfs_rescore(const vdx_pqfs *p, const float *table,
                         const vdx_fs_res *r, int approx, int64_t k, float *D,
                         vdx_idx_t *I) {
    const size_t bsz = vdx_fs_block_size(p->nsq, p->bbs);
    if (approx) { /* candidates only: their approximate keys */
        for (int64_t e = 0; e < r->n; e++)
            if (r->ref[e] >= 0) vdx_heap_push(k, D, I, r->key[e], r->ref[e]);
        return;
    }
    /* the candidates' groups are scattered over the codes (a group spans
     * nsq / 2 lines of bbs bytes): all their lines are requested first,
     * so the misses overlap instead of following each other */
    for (int64_t e = 0; e < r->n; e++) {
        int64_t i = r->ref[e];
        if (i < 0) continue;
        const uint8_t *grp = p->codes + (size_t)(i / p->bbs) * bsz +
                             (size_t)(i % p->bbs / 32 * 32);
        for (int64_t m = 0; m < p->nsq; m += 2)
            __builtin_prefetch(grp + (size_t)(m / 2) * (size_t)p->bbs);
    }
    for (int64_t e = 0; e < r->n; e++) {
        int64_t i = r->ref[e];
        if (i < 0) continue;
        const uint8_t *grp = p->codes + (size_t)(i / p->bbs) * bsz +
                             (size_t)(i % p->bbs / 32 * 32);
        float key = rescore(grp, (size_t)p->bbs, (int)(i % 32), table, p->pq.M);
        vdx_heap_push(k, D, I, key, i);
    }
}

/* The codes unpacked into a new IndexPQ with the same centroids. */
static vdx_status pqfs_as_pq(const vdx_pqfs *p, vdx_index **out) {
    vdx_index *tmp = NULL;
    vdx_status st = vdx_index_pq_new(p->base.d, p->pq.M, 4, p->base.metric, &tmp);
    if (st) return st;
    vdx_index_pq *q = (vdx_index_pq *)(void *)tmp;
    if (p->pq.centroids && !(st = vdx_pq_alloc_centroids(&q->pq)))
        memcpy(q->pq.centroids, p->pq.centroids,
               (size_t)(p->pq.M * p->pq.ksub * p->pq.dsub) * sizeof(float));
    if (!st) st = vdx_index_pq_reserve(q, p->base.ntotal);
    if (st) {
        vdx_index_free(tmp);
        return st;
    }
    for (int64_t i = 0; i < p->base.ntotal; i++)
        vdx_fs_unpack_1(p->codes, p->bbs, p->nsq, p->pq.M, i,
                        q->codes + (size_t)i * q->pq.code_size);
    tmp->ntotal = p->base.ntotal;
    tmp->is_trained = p->base.is_trained;
    *out = tmp;
    return VDX_OK;
}

static vdx_status pqfs_search(const vdx_index *ix, int64_t n, const float *x,
                              int64_t k, const vdx_search_params *prm,
                              float *D, vdx_idx_t *I) {
    const vdx_pqfs *p = (const vdx_pqfs *)ix;
    if (p->implem == 2) { /* the float-table reference (see the top) */
        vdx_index *pq = NULL;
        vdx_status st = pqfs_as_pq(p, &pq);
        if (!st) st = vdx_index_search(pq, n, x, k, prm, D, I);
        vdx_index_free(pq);
        return st;
    }
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const int approx = prm && prm->candidates_only;
    const vdx_fs_kernels *K = vdx_fs_kernels_get();
    /* a 4-bit look-up is 1/32 of a shuffle; serial for small calls */
    const int nthreads = vdx_nthreads_for((double)n * (double)ix->ntotal *
                                          (double)p->pq.M / 32 + (double)n * 4096);
    const int QB = VDX_FS_MAX_QBS;
    const int64_t k2 = vdx_fs_k2(k, ix->ntotal);
    /* per query, whole cache lines: threads must not share them */
    const int64_t cap = (vdx_fs_res_cap(k2) + 15) / 16 * 16;
    const size_t tbytes = ((size_t)p->pq.M * 16 * sizeof(float) + 63) / 64 * 64;
    const size_t lbytes = ((size_t)p->nsq * 16 + 63) / 64 * 64;
    const size_t per = (size_t)QB * (tbytes + lbytes);
    uint8_t *work = vdx_aligned_alloc((size_t)nthreads, per);
    float *ak = vdx_aligned_alloc((size_t)nthreads * QB, (size_t)cap * sizeof(float));
    int64_t *aref = vdx_aligned_alloc((size_t)nthreads * QB, (size_t)cap * sizeof(int64_t));
    float *ct = vdx_malloc_array((size_t)(p->pq.M * p->pq.ksub),
                                 (size_t)p->pq.dsub * sizeof(float));
    if (!work || !ak || !aref || !ct) {
        vdx_free(ct);
        vdx_aligned_free(work);
        vdx_aligned_free(ak);
        vdx_aligned_free(aref);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    vdx_pq_transpose_centroids(&p->pq, ct);
    /* queries go by batches of QB through one pass over the codes */
    const int64_t nbatch = (n + QB - 1) / QB;
#pragma omp parallel for schedule(dynamic, 1) if (nbatch > 1) num_threads(nthreads)
    for (int64_t b = 0; b < nbatch; b++) {
        const int t = omp_get_thread_num();
        uint8_t *w = work + (size_t)t * per;
        const float *tables[VDX_FS_MAX_QBS];
        vdx_fs_lut luts[VDX_FS_MAX_QBS];
        vdx_fs_res res[VDX_FS_MAX_QBS];
        int64_t q0 = b * QB;
        int nq = (int)VDX_MIN(QB, n - q0);
        for (int j = 0; j < nq; j++) {
            float *table = (float *)(void *)(w + (size_t)j * (tbytes + lbytes));
            luts[j].q = (uint8_t *)table + tbytes;
            size_t o = ((size_t)t * QB + (size_t)j) * (size_t)cap;
            vdx_fs_res_init(&res[j], ak + o, aref + o, k2);
            query_table(&p->pq, ct, ix->metric, x + (q0 + j) * ix->d, table);
            vdx_fs_quantize(table, p->pq.M, p->nsq, &luts[j]);
            tables[j] = table;
        }
        scan_run(K, p->codes, ix->ntotal, p->bbs, p->nsq, nq, luts,
                 NULL, 0, sel, res);
        for (int j = 0; j < nq; j++) {
            float *Dq = D + (q0 + j) * k;
            vdx_idx_t *Iq = I + (q0 + j) * k;
            vdx_fs_res_finish(&res[j]);
            if (approx && res[j].n <= k) { /* unsorted (vdx_search_params) */
                for (int64_t e = 0; e < k; e++) {
                    int64_t rf = e < res[j].n ? res[j].ref[e] : -1;
                    Dq[e] = rf < 0 ? (ip ? -FLT_MAX : FLT_MAX)
                                   : vdx_fs_key_distance(res[j].key[e], ip);
                    Iq[e] = rf < 0 ? -1 : rf;
                }
                continue;
            }
            vdx_heap_init(k, Dq, Iq);
            pqfs_rescore(p, tables[j], &res[j], approx, k, Dq, Iq);
            vdx_topk_finish(k, Dq, Iq, ip, 0);
        }
    }
    vdx_aligned_free(work);
    vdx_aligned_free(ak);
    vdx_aligned_free(aref);
    vdx_free(ct);
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
    const int nthreads = vdx_nthreads_for((double)n * (double)ix->ntotal *
                                          (double)p->pq.M / 32 + (double)n * 4096);
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads)
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
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    return decode_range((const vdx_pqfs *)ix, key, 1, out);
}

static vdx_status pqfs_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                     int64_t ni, float *out) {
    vdx_status rst = vdx_check_range(ix, i0, ni);
    if (rst) return rst;
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

vdx_status vdx_index_pq_fastscan_from_pq(const vdx_index *orig, int64_t bbs,
                                         vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!vdx_is_index_pq(orig))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexPQFastScan(index): expected an IndexPQ, got "
                         "%s", orig ? orig->ops->type_name : "NULL");
    const vdx_index_pq *src = (const vdx_index_pq *)(const void *)orig;
    if (src->pq.nbits != 4)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexPQFastScan(index): the IndexPQ must have "
                         "nbits=4, got %d", src->pq.nbits);
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_pq_fastscan_new(orig->d, src->pq.M, 4,
                                              orig->metric, bbs, &ix);
    if (st) return st;
    vdx_pqfs *p = (vdx_pqfs *)ix;
    if (src->pq.centroids) {
        st = vdx_pq_alloc_centroids(&p->pq);
        if (!st)
            memcpy(p->pq.centroids, src->pq.centroids,
                   (size_t)(p->pq.M * p->pq.ksub * p->pq.dsub) *
                       sizeof(float));
    }
    if (!st) st = vdx_pqfs_reserve(p, orig->ntotal);
    if (st) {
        vdx_index_free(ix);
        return st;
    }
    /* the same codes, packed into blocks (they need no re-encoding) */
    if (orig->ntotal)
        vdx_fs_pack(src->codes, orig->ntotal, p->pq.M, p->bbs, p->nsq,
                    p->codes, 0);
    ix->ntotal = orig->ntotal;
    ix->is_trained = orig->is_trained;
    *out = ix;
    return VDX_OK;
}

int vdx_index_fastscan_implem(const vdx_index *ix) {
    if (vdx_is_pqfs(ix)) return ((const vdx_pqfs *)ix)->implem;
    if (vdx_is_ivfpqfs(ix))
        return ((const vdx_ivfpqfs *)(const void *)ix)->implem;
    return 0;
}

vdx_status vdx_index_fastscan_set_implem(vdx_index *ix, int implem) {
    vdx_clear_error();
    if (!vdx_is_pqfs(ix) && !vdx_is_ivfpqfs(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "implem: not a fast-scan index");
    /* FAISS's variants: 0 (automatic), 1-6 and 10-15 */
    if (implem < 0 || implem > 15 || implem == 7 || implem == 8 ||
        implem == 9)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "implem: expected 0-6 or 10-15, got %d", implem);
    if (vdx_is_pqfs(ix)) ((vdx_pqfs *)ix)->implem = implem;
    else ((vdx_ivfpqfs *)(void *)ix)->implem = implem;
    return VDX_OK;
}

vdx_status vdx_index_fastscan_codes(const vdx_index *ix, uint8_t *out,
                                    size_t *nbytes) {
    vdx_clear_error();
    if (!ix || !nbytes)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index or nbytes is NULL");
    const uint8_t *codes;
    int64_t bbs, nsq;
    if (vdx_is_pqfs(ix)) {
        const vdx_pqfs *p = (const vdx_pqfs *)ix;
        codes = p->codes, bbs = p->bbs, nsq = p->nsq;
    } else if (vdx_is_aqfs(ix)) {
        const vdx_aqfs *p = (const vdx_aqfs *)(const void *)ix;
        codes = p->codes, bbs = p->bbs, nsq = p->nsq;
    } else {
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s has no packed code blocks (only the flat "
                         "fast-scan kinds do)", ix->ops->type_name);
    }
    const int64_t nblk = (ix->ntotal + bbs - 1) / bbs;
    const size_t bsz = vdx_fs_block_size(nsq, bbs), size = (size_t)nblk * bsz;
    if (!out) {
        *nbytes = size;
        return VDX_OK;
    }
    if (*nbytes < size)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "fastscan codes: the buffer holds %zu bytes, %zu "
                         "needed", *nbytes, size);
    if (size) memcpy(out, codes, size);
    /* the last block's unused lanes: zero, as FAISS's padding (a removal
     * may have left codes there) */
    for (int64_t i = ix->ntotal; i < nblk * bbs; i++)
        for (int64_t m = 0; m < nsq; m++) vdx_fs_set(out, bbs, nsq, i, m, 0);
    *nbytes = size;
    return VDX_OK;
}

int64_t vdx_index_fastscan_qbs(const vdx_index *ix) {
    if (vdx_is_pqfs(ix)) return ((const vdx_pqfs *)ix)->qbs;
    if (vdx_is_aqfs(ix)) return ((const vdx_aqfs *)(const void *)ix)->qbs;
    return 0;
}

vdx_status vdx_index_fastscan_set_qbs(vdx_index *ix, int64_t qbs) {
    vdx_clear_error();
    if (!vdx_is_pqfs(ix) && !vdx_is_aqfs(ix))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "qbs: not a flat fast-scan index");
    int ok = qbs >= 0 && qbs <= INT32_MAX;
    for (int64_t v = qbs; ok && v; v >>= 4) ok = (v & 15) <= 4;
    if (!ok)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "qbs: expected hex digits of 0-4 (batches of 1-4 "
                         "queries, e.g. 0x223), got %lld (0x%llx)",
                         (long long)qbs, (unsigned long long)qbs);
    if (vdx_is_pqfs(ix)) ((vdx_pqfs *)ix)->qbs = (int32_t)qbs;
    else ((vdx_aqfs *)(void *)ix)->qbs = (int32_t)qbs;
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
