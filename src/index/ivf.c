/*
 * ivf.c — the inverted-file (IVF) framework shared by IVF-Flat and the
 * compressed IVF kinds (Jégou et al., "Product quantization for nearest
 * neighbor search", TPAMI 2011, §IV; FAISS's IndexIVF).
 *
 * A coarse quantizer (any index holding nlist centroids) assigns each vector
 * to its nearest centroid's list.  Search asks the quantizer for the nprobe
 * nearest lists of each query and scores only their codes, through the
 * kind's codec, in chunks: codec->scan writes keys into a small buffer and a
 * SIMD threshold filter offers the few that can enter the top k to the heap.
 * Selectors are tested on the stored ids before any distance is computed.
 * Parallel over queries; over the probed lists (per-thread heaps, merged)
 * when there are fewer queries than threads.
 *
 * IVF-Flat with many queries per list takes a list-major path instead: the
 * probes are inverted into "which queries visit list l", and each list is
 * read once and scored against all its visitors with one sgemm per tile
 * (|y|^2 - 2<q,y>, |q|^2 added at the end), so a list costs one pass over
 * memory instead of one per query.  Threads take lists and keep their own
 * heaps per query, merged at the end.
 */
#include <omp.h>
#include <string.h>

#include "index_internal.h"
#include "index_aq.h"
#include "cluster/kmeans.h"
#include "common/blas.h"
#include "common/interrupt.h"
#include "common/stats.h"
#include "common/topk.h"
#include "common/threads.h"
#include "simd/kernels.h"

#define IVF_CHUNK 256

static vdx_ivf *as_ivf(const vdx_index *ix) {
    return vdx_index_is_ivf(ix) ? (vdx_ivf *)ix : NULL;
}

/* ---- training ------------------------------------------------------------ */

static vdx_status ivf_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    vdx_index *q = ivf->quantizer;
    if (q->is_trained && q->ntotal == ivf->nlist) {
        ix->is_trained = 1; /* the caller supplied the centroids */
        return VDX_OK;
    }
    /* new centroids under stored lists would misfile every vector */
    vdx_status st0 = vdx_refuse_populated_train(ix);
    if (st0) return st0;
    if (vdx_is_acq(q)) {
        /* an additive coarse quantizer trains alone (FAISS's
         * quantizer_trains_alone = 1): its centroids are its codes */
        vdx_status st = q->ops->train(q, n, x);
        if (st) return st;
        if (q->ntotal != ivf->nlist)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "IVF train: nlist=%lld is not consistent with the "
                             "%lld centroids of the %s",
                             (long long)ivf->nlist, (long long)q->ntotal,
                             q->ops->type_name);
        ix->is_trained = 1;
        return VDX_OK;
    }
    if (n < ivf->nlist)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IVF train: %lld training points cannot make "
                         "nlist=%lld lists (need n >= nlist)",
                         (long long)n, (long long)ivf->nlist);
    float *cent = vdx_malloc_array((size_t)ivf->nlist,
                                   (size_t)ix->d * sizeof(float));
    if (!cent) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_kmeans_train_metric(ix->d, ivf->nlist, n, x, &ivf->cp,
                                            ix->metric, cent, NULL, NULL);
    if (!st && !(st = vdx_index_reset(q)) && !(st = vdx_index_train(q, ivf->nlist, cent)))
        st = vdx_index_add(q, ivf->nlist, cent);
    vdx_free(cent);
    if (!st) ix->is_trained = 1;
    return st;
}

/* ---- add ------------------------------------------------------------------ */

/* Asks the quantizer for the m nearest lists of n vectors.  Labels outside
 * 0..nlist-1 (a quantizer that is not a plain centroid table may return any
 * id) become -1, so that no list number is ever trusted unchecked. */
static vdx_status coarse(const vdx_ivf *ivf, int64_t n, const float *x,
                         int64_t m, float *dis, int64_t *lists) {
    vdx_status st = ivf->quantizer->ops->search(ivf->quantizer, n, x, m, NULL,
                                                dis, lists);
    if (st) return st;
    for (int64_t i = 0; i < n * m; i++)
        if (lists[i] >= ivf->nlist || lists[i] < -1) lists[i] = -1;
    return VDX_OK;
}

static vdx_status assign_lists(const vdx_ivf *ivf, int64_t n, const float *x,
                               int64_t *lists) {
    float *dis = vdx_malloc_array((size_t)(n ? n : 1), sizeof(float));
    if (!dis) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = coarse(ivf, n, x, 1, dis, lists);
    vdx_free(dis);
    for (int64_t i = 0; i < n && !st; i++)
        if (lists[i] < 0)
            st = vdx_raise(VDX_ERR_INTERNAL,
                           "the quantizer assigned vector %lld to no list "
                           "(does it hold nlist=%lld centroids?)",
                           (long long)i, (long long)ivf->nlist);
    return st;
}

vdx_status vdx_index_ivf_assign(const vdx_index *ix, int64_t n, const float *x,
                                int64_t *lists) {
    vdx_clear_error();
    const vdx_ivf *ivf = as_ivf(ix);
    if (!ivf) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an IVF index");
    if (n < 0 || (n > 0 && (!x || !lists)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "assign: bad arguments");
    if (!ix->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED, "assign: the index is not trained");
    if (n == 0) return VDX_OK;
    return assign_lists(ivf, n, x, lists);
}

/* Appends n encoded entries (code_size bytes each) to the lists given
 * (each checked by the caller to be in 0..nlist-1), with ids (NULL:
 * ntotal + i), keeping the direct map. */
static vdx_status add_encoded(vdx_index *ix, int64_t n, const uint8_t *codes,
                              const int64_t *lists, const vdx_idx_t *ids) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    vdx_status st = VDX_OK;
    if (ivf->dm) {
        int64_t need = ix->ntotal + n;
        if (need > ivf->dm_cap) {
            int64_t nc = VDX_MAX(need, ivf->dm_cap * 2);
            int64_t *p = vdx_realloc_array(ivf->dm, (size_t)nc, sizeof(int64_t));
            if (!p) return VDX_ERR_OUT_OF_MEMORY;
            ivf->dm = p;
            ivf->dm_cap = nc;
        }
    }
    /* each thread appends to the lists it owns, in vector order, so the
     * layout does not depend on the thread count */
#pragma omp parallel num_threads(vdx_nthreads_for((double)n * (double)(ivf->code_size + 64)))
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int64_t i = 0; i < n; i++) {
            int64_t l = lists[i];
            if (l < 0 || l % nt != t) continue;
            vdx_idx_t id = ids ? ids[i] : ix->ntotal + i;
            int64_t off = ivf->il->ops->list_size(ivf->il, l);
            vdx_status s2 = ivf->il->ops->add_entries(
                ivf->il, l, 1, &id, codes + (size_t)i * ivf->code_size);
            if (s2) {
#pragma omp atomic write
                st = s2;
                break;
            }
            if (ivf->dm) ivf->dm[ix->ntotal + i] = (l << 32) | off;
        }
    }
    if (!st) ix->ntotal += n;
    return st;
}

vdx_status vdx_ivf_add_codes(vdx_index *ix, int64_t n, const uint8_t *codes,
                             const int64_t *lists, const vdx_idx_t *ids) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    if (ivf->dm && ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_sa_codes with ids is not possible while the "
                         "direct map is on (it needs sequential ids)");
    if (!ivf->il->ops->add_entries)
        return vdx_raise(VDX_ERR_UNSUPPORTED, "the inverted lists are read-only");
    for (int64_t i = 0; i < n; i++)
        if (lists[i] < 0 || lists[i] >= ivf->nlist)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "add_sa_codes: list %lld of code %lld is outside "
                             "0..nlist-1=%lld",
                             (long long)lists[i], (long long)i,
                             (long long)ivf->nlist - 1);
    return add_encoded(ix, n, codes, lists, ids);
}

/* Adds n vectors whose lists the caller computed (lists == NULL: assign
 * them here), as ivf_add. */
static vdx_status add_core(vdx_index *ix, int64_t n, const float *x,
                           const vdx_idx_t *ids, const int64_t *given) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    if (ivf->dm && ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not possible while the direct map "
                         "is on (it needs sequential ids)");
    if (!ivf->il->ops->add_entries)
        return vdx_raise(VDX_ERR_UNSUPPORTED, "the inverted lists are read-only");
    vdx_status st = VDX_OK;
    int64_t *lists = vdx_malloc_array((size_t)n, sizeof(int64_t));
    uint8_t *codes = vdx_malloc_array((size_t)n, ivf->code_size);
    if (!lists || !codes) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (given) {
        for (int64_t i = 0; i < n; i++) {
            if (given[i] < 0 || given[i] >= ivf->nlist) {
                st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                               "add: list %lld of vector %lld is outside "
                               "0..nlist-1=%lld",
                               (long long)given[i], (long long)i,
                               (long long)ivf->nlist - 1);
                goto done;
            }
            lists[i] = given[i];
        }
    } else if ((st = assign_lists(ivf, n, x, lists))) {
        goto done;
    }
    if ((st = ivf->codec->encode(ivf, n, x, lists, codes))) goto done;
    st = add_encoded(ix, n, codes, lists, ids);
done:
    vdx_free(lists);
    vdx_free(codes);
    return st;
}

static vdx_status ivf_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    return add_core(ix, n, x, ids, NULL);
}

/* ---- search --------------------------------------------------------------- */

typedef struct {
    int64_t nprobe, max_codes;
    const vdx_selector *sel;
} ivf_knobs;

static ivf_knobs knobs_of(const vdx_ivf *ivf, const vdx_search_params *p) {
    ivf_knobs k;
    k.nprobe = p && p->nprobe > 0 ? p->nprobe : ivf->nprobe;
    if (k.nprobe > ivf->nlist) k.nprobe = ivf->nlist;
    /* nprobe = 0 may be set (FAISS allows it) but a search refuses it:
     * k.nprobe stays 0 and the searches check it (knobs_check) */
    k.max_codes = p && p->max_codes > 0 ? p->max_codes : ivf->max_codes;
    k.sel = p ? p->sel : NULL;
    return k;
}

/* Scores list `l` for query xq into the heap; returns the codes scanned. */
static size_t codec_ctx_size(const vdx_ivf *ivf) {
    size_t b = ivf->scanner ? ivf->scanner->ctx_size(ivf) : 0;
    return (b + 63) & ~(size_t)63;
}

/* The scanner's per-query hook, if it has one. */
static inline void begin_query(const vdx_ivf *ivf, const float *xq, void *ctx) {
    if (ivf->scanner && ivf->scanner->begin_query)
        ivf->scanner->begin_query(ivf, xq, ctx);
}

/* codec->scan, or the scanner's scan on the context prepared for this list */
static inline void codec_scan(const vdx_ivf *ivf, const float *xq, int64_t l,
                              const void *ctx, const uint8_t *codes, size_t n,
                              float *keys) {
    if (ivf->scanner)
        ivf->scanner->scan(ivf, ctx, codes, n, keys);
    else
        ivf->codec->scan(ivf, xq, l, codes, n, keys);
}

/* Counts of one search call for the process-wide stats (stats.h). */
typedef struct {
    int64_t nlist, ndis, nheap;
} ivf_count;

/* Scores the first min(list size, limit) entries of list l (limit: what
 * is left of max_codes, as FAISS truncates the last list it scans). */
static int64_t scan_list(const vdx_ivf *ivf, const float *xq, int64_t l,
                         int64_t k, const vdx_selector *sel, float *hk,
                         vdx_idx_t *hi, float *keys, uint32_t *cand,
                         void *ctx, ivf_count *cnt, int64_t limit) {
    const vdx_invlists *il = ivf->il;
    int64_t ls = VDX_MIN(il->ops->list_size(il, l), limit);
    if (ls <= 0) return 0;
    cnt->nlist++;
    if (ivf->scanner) ivf->scanner->prepare(ivf, xq, l, ctx);
    const uint8_t *codes = il->ops->get_codes(il, l);
    const vdx_idx_t *ids = il->ops->get_ids(il, l);
    const vdx_kernels *K = vdx_kernels_get();
    for (int64_t c0 = 0; c0 < ls; c0 += IVF_CHUNK) {
        size_t cn = (size_t)VDX_MIN(IVF_CHUNK, ls - c0);
        if (sel) {
            /* score only admitted entries, one at a time */
            for (size_t j = 0; j < cn; j++) {
                vdx_idx_t id = ids[c0 + (int64_t)j];
                if (!vdx_sel_member(sel, id)) continue;
                float key;
                codec_scan(ivf, xq, l, ctx,
                           codes + (size_t)(c0 + (int64_t)j) * ivf->code_size,
                           1, &key);
                cnt->ndis++;
                cnt->nheap += vdx_worse(hk[0], hi[0], key, id);
                vdx_heap_push(k, hk, hi, key, id);
            }
            continue;
        }
        codec_scan(ivf, xq, l, ctx, codes + (size_t)c0 * ivf->code_size, cn,
                   keys);
        size_t nc = K->filter_less(keys, cn, hk[0], cand);
        cnt->ndis += (int64_t)cn;
        cnt->nheap += (int64_t)nc;
        for (size_t c = 0; c < nc; c++)
            vdx_heap_push(k, hk, hi, keys[cand[c]], ids[c0 + cand[c]]);
    }
    return ls;
}

static void finish(const vdx_index *ix, int64_t k, float *D, vdx_idx_t *I) {
    vdx_topk_finish(k, D, I, ix->metric == VDX_METRIC_INNER_PRODUCT, 0);
}

/* Share of the stored ids a selector admits, estimated on up to 1024 ids
 * spread over the lists (1 when there is no selector). */
static double admitted_share(const vdx_ivf *ivf, const vdx_selector *sel) {
    if (!sel || ivf->base.ntotal == 0) return 1.0;
    int64_t tested = 0, admitted = 0;
    int64_t step = VDX_MAX(1, ivf->base.ntotal / 1024);
    int64_t skip = 0; /* position within the concatenation of the lists */
    for (int64_t l = 0; l < ivf->nlist && tested < 1024; l++) {
        int64_t ls = ivf->il->ops->list_size(ivf->il, l);
        const vdx_idx_t *ids = ls ? ivf->il->ops->get_ids(ivf->il, l) : NULL;
        for (; skip < ls && tested < 1024; skip += step, tested++)
            admitted += vdx_sel_member(sel, ids[skip]);
        skip -= ls;
    }
    return tested ? (double)admitted / (double)tested : 1.0;
}

/* ---- list-major search (IVF-Flat, many queries per list) ---------------- */

#define LM_QB 128 /* queries per sgemm tile */
#define LM_DB 512 /* list entries per sgemm tile */
#define LM_RUN 64 /* entries filtered per threshold refresh */

static int codec_is_flat(const vdx_ivf *ivf);

static vdx_status search_list_major(const vdx_ivf *ivf, int64_t n,
                                    const float *x, int64_t k,
                                    const vdx_selector *sel, int64_t np,
                                    const int64_t *cl, float *D,
                                    vdx_idx_t *I, ivf_count *cnt) {
    const vdx_index *ix = &ivf->base;
    const vdx_kernels *K = vdx_kernels_get();
    const int d = (int)ix->d, is_l2 = ix->metric == VDX_METRIC_L2;
    const int64_t nlist = ivf->nlist;
    const int nthreads = vdx_nthreads();
    vdx_status st = VDX_OK;
    /* CSR of visitors per list */
    int64_t *start = vdx_calloc((size_t)nlist + 1, sizeof(int64_t));
    int64_t *visit = vdx_malloc_array((size_t)n * (size_t)np, sizeof(int64_t));
    size_t hs = (size_t)n * (size_t)k;
    float *tk = vdx_malloc_array((size_t)nthreads * hs, sizeof(float));
    vdx_idx_t *ti = vdx_malloc_array((size_t)nthreads * hs, sizeof(vdx_idx_t));
    int64_t maxls = 0;
    for (int64_t l = 0; l < nlist; l++)
        maxls = VDX_MAX(maxls, ivf->il->ops->list_size(ivf->il, l));
    size_t per = (size_t)LM_QB * LM_DB + (size_t)LM_QB * (size_t)d +
                 (size_t)maxls + LM_RUN;
    float *work = vdx_aligned_alloc((size_t)nthreads, per * sizeof(float));
    if (!start || !visit || !tk || !ti || !work) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < n * np; i++)
        if (cl[i] >= 0) start[cl[i] + 1]++;
    for (int64_t l = 0; l < nlist; l++) start[l + 1] += start[l];
    {
        int64_t *fill = vdx_malloc_array((size_t)nlist, sizeof(int64_t));
        if (!fill) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        memcpy(fill, start, (size_t)nlist * sizeof(int64_t));
        for (int64_t i = 0; i < n * np; i++) /* visitors in query order */
            if (cl[i] >= 0) visit[fill[cl[i]]++] = i / np;
        vdx_free(fill);
    }
    int stop = 0; /* the interrupt handler asked to stop */
    int64_t c_nlist = 0, c_ndis = 0, c_nheap = 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : c_nlist, c_ndis, c_nheap)
    {
        int t = omp_get_thread_num();
        float *hk0 = tk + (size_t)t * hs;
        vdx_idx_t *hi0 = ti + (size_t)t * hs;
        float *tile = work + (size_t)t * per;
        float *qbuf = tile + (size_t)LM_QB * LM_DB;
        float *ynorm = qbuf + (size_t)LM_QB * (size_t)d;
        uint32_t *cand = (uint32_t *)(ynorm + maxls);
        for (size_t i = 0; i < hs; i++) {
            hk0[i] = INFINITY;
            hi0[i] = -1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t l = 0; l < nlist; l++) {
            if (vdx_poll_stop(&stop)) continue;
            int64_t nv = start[l + 1] - start[l];
            int64_t ls = ivf->il->ops->list_size(ivf->il, l);
            if (!nv || !ls) continue;
            const float *y = (const float *)(const void *)ivf->il->ops->get_codes(ivf->il, l);
            const vdx_idx_t *ids = ivf->il->ops->get_ids(ivf->il, l);
            /* sgemm scores the whole tile, the selector then drops its
             * rejects unseen: ndis counts the admitted entries, as a
             * per-entry scan (and FAISS) would */
            int64_t adm = ls;
            if (sel) {
                adm = 0;
                for (int64_t e = 0; e < ls; e++) adm += vdx_sel_member(sel, ids[e]);
            }
            c_nlist += nv;
            c_ndis += nv * adm;
            if (is_l2) K->norms_sqr_ny(ynorm, y, (size_t)d, (size_t)ls);
            for (int64_t v0 = 0; v0 < nv && !vdx_poll_stop(&stop); v0 += LM_QB) {
                int qn = (int)VDX_MIN(LM_QB, nv - v0);
                const int64_t *vq = visit + start[l] + v0;
                for (int i = 0; i < qn; i++)
                    memcpy(qbuf + (size_t)i * d, x + vq[i] * d, (size_t)d * sizeof(float));
                for (int64_t b0 = 0; b0 < ls; b0 += LM_DB) {
                    int bn = (int)VDX_MIN(LM_DB, ls - b0);
                    if (is_l2) { /* |y|^2 laid down, sgemm adds -2<q,y> */
                        for (int i = 0; i < qn; i++)
                            memcpy(tile + (size_t)i * bn, ynorm + b0,
                                   (size_t)bn * sizeof(float));
                        vdx_gemm_xyt_acc(qn, bn, d, -2.0f, qbuf,
                                         y + (size_t)b0 * d, tile);
                    } else {
                        vdx_gemm_xyt(qn, bn, d, -1.0f, qbuf, y + (size_t)b0 * d,
                                     tile);
                    }
                    for (int i = 0; i < qn; i++) {
                        float *row = tile + (size_t)i * bn;
                        float *hk = hk0 + vq[i] * k;
                        vdx_idx_t *hi = hi0 + vq[i] * k;
                        for (int c0 = 0; c0 < bn; c0 += LM_RUN) {
                            size_t cn = (size_t)VDX_MIN(LM_RUN, bn - c0);
                            size_t nc = K->filter_less(row + c0, cn, hk[0], cand);
                            for (size_t c = 0; c < nc; c++) {
                                vdx_idx_t id = ids[b0 + c0 + cand[c]];
                                if (sel && !vdx_sel_member(sel, id)) continue;
                                c_nheap++;
                                vdx_heap_push(k, hk, hi, row[c0 + cand[c]], id);
                            }
                        }
                    }
                }
            }
        }
        /* implicit barrier, then merge the per-thread heaps per query */
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n; q++) {
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            memcpy(hk, tk + q * k, (size_t)k * sizeof(float));
            memcpy(hi, ti + q * k, (size_t)k * sizeof(vdx_idx_t));
            for (int u = 1; u < nthreads; u++)
                vdx_heap_merge(k, hk, hi, tk + (size_t)u * hs + q * k,
                               ti + (size_t)u * hs + q * k);
            vdx_topk_finish(k, hk, hi, !is_l2,
                            is_l2 ? K->norm_sqr(x + q * d, (size_t)d) : 0);
        }
    }
    cnt->nlist += c_nlist;
    cnt->ndis += c_ndis;
    cnt->nheap += c_nheap;
    if (stop)
        st = vdx_raise(VDX_ERR_INTERRUPTED, "search of %lld queries interrupted",
                       (long long)n);
done:
    vdx_free(start);
    vdx_free(visit);
    vdx_free(tk);
    vdx_free(ti);
    vdx_aligned_free(work);
    return st;
}

static vdx_status knobs_check(const ivf_knobs *kn) {
    if (kn->nprobe < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search: nprobe=%lld, it must be > 0",
                         (long long)kn->nprobe);
    return VDX_OK;
}

/* Team size for scanning np lists for each of n queries: serial when the
 * expected work is small (threads.h): codes of an average list times the
 * cost of a code (flat: d/8 SIMD steps; else about a step a byte). */
static int scan_threads(const vdx_ivf *ivf, int64_t n, int64_t np) {
    const vdx_index *ix = &ivf->base;
    double per_code = codec_is_flat(ivf) ? (double)ix->d / 8 : (double)ivf->code_size;
    double listlen = (double)ix->ntotal / (double)VDX_MAX(ivf->nlist, (int64_t)1);
    return vdx_nthreads_for((double)n * (double)np * (listlen * per_code + 16));
}

/* The search after the coarse step: cl holds the np lists to probe per
 * query (-1 entries skipped). */
static vdx_status search_preassigned(const vdx_ivf *ivf, int64_t n,
                                     const float *x, int64_t k,
                                     ivf_knobs kn, int64_t np,
                                     const int64_t *cl, float *D,
                                     vdx_idx_t *I, int64_t quant_ns) {
    const vdx_index *ix = &ivf->base;
    const int64_t d = ix->d;
    const int64_t t0 = vdx_stats_now_ns();
    ivf_count cnt = {0, 0, 0};
    vdx_status st = VDX_OK;
    int nthreads = scan_threads(ivf, n, np);
    /* per thread: keys, candidates, then the codec's context */
    const size_t per = 2 * IVF_CHUNK * sizeof(float) + codec_ctx_size(ivf);
    uint8_t *scratch = vdx_aligned_alloc((size_t)nthreads, per);
    if (!scratch) return VDX_ERR_OUT_OF_MEMORY;
    /* contexts start zeroed: a scanner may cache per-query state in them */
    memset(scratch, 0, (size_t)nthreads * per);
    /* enough visitors per list for sgemm to pay: the list-major path, unless
     * a selective filter makes scoring only the admitted entries cheaper */
    if (codec_is_flat(ivf) && !kn.max_codes && n * np >= 4 * ivf->nlist &&
        n >= 64 && admitted_share(ivf, kn.sel) >= 0.25) {
        st = search_list_major(ivf, n, x, k, kn.sel, np, cl, D, I, &cnt);
        goto done;
    }
    if (n >= nthreads || nthreads == 1) {
        int stop = 0; /* the interrupt handler asked to stop */
        int64_t c_nlist = 0, c_ndis = 0, c_nheap = 0;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && nthreads > 1) num_threads(nthreads) \
    reduction(+ : c_nlist, c_ndis, c_nheap)
        for (int64_t q = 0; q < n; q++) {
            if (vdx_poll_stop(&stop)) continue;
            uint8_t *w = scratch + (size_t)omp_get_thread_num() * per;
            float *keys = (float *)(void *)w;
            uint32_t *cand = (uint32_t *)(keys + IVF_CHUNK);
            void *ctx = w + 2 * IVF_CHUNK * sizeof(float);
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            vdx_heap_init(k, hk, hi);
            begin_query(ivf, x + q * d, ctx);
            int64_t nscan = 0;
            ivf_count qc = {0, 0, 0};
            for (int64_t j = 0; j < np; j++) {
                int64_t l = cl[q * np + j];
                if (l < 0) continue;
                if (kn.max_codes && nscan >= kn.max_codes) break;
                nscan += scan_list(ivf, x + q * d, l, k, kn.sel, hk, hi, keys, cand,
                                   ctx, &qc,
                                   kn.max_codes ? kn.max_codes - nscan : INT64_MAX);
            }
            c_nlist += qc.nlist;
            c_ndis += qc.ndis;
            c_nheap += qc.nheap;
            finish(ix, k, hk, hi);
        }
        cnt.nlist = c_nlist;
        cnt.ndis = c_ndis;
        cnt.nheap = c_nheap;
        if (stop)
            st = vdx_raise(VDX_ERR_INTERRUPTED, "search of %lld queries interrupted",
                           (long long)n);
        goto done;
    }
    /* few queries: split each query's probes over threads */
    {
        size_t hs = (size_t)k;
        float *tk = vdx_malloc_array((size_t)nthreads * hs, sizeof(float));
        vdx_idx_t *ti = vdx_malloc_array((size_t)nthreads * hs, sizeof(vdx_idx_t));
        if (!tk || !ti) {
            vdx_free(tk);
            vdx_free(ti);
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        int64_t *lim = vdx_malloc_array((size_t)np, sizeof(int64_t));
        if (!lim) {
            vdx_free(tk);
            vdx_free(ti);
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int64_t q = 0; q < n; q++) {
            int64_t budget = kn.max_codes; /* limits apply in probe order */
            int64_t np_eff = np;
            for (int64_t j = 0; j < np; j++) lim[j] = INT64_MAX;
            if (budget) {
                int64_t s = 0;
                for (np_eff = 0; np_eff < np && s < budget; np_eff++) {
                    int64_t l = cl[q * np + np_eff];
                    lim[np_eff] = budget - s;
                    if (l >= 0) s += ivf->il->ops->list_size(ivf->il, l);
                }
            }
            int64_t c_nlist = 0, c_ndis = 0, c_nheap = 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : c_nlist, c_ndis, c_nheap)
            {
                int t = omp_get_thread_num();
                ivf_count qc = {0, 0, 0};
                uint8_t *w = scratch + (size_t)t * per;
                float *keys = (float *)(void *)w;
                uint32_t *cand = (uint32_t *)(keys + IVF_CHUNK);
                void *ctx = w + 2 * IVF_CHUNK * sizeof(float);
                float *hk = tk + (size_t)t * hs;
                vdx_idx_t *hi = ti + (size_t)t * hs;
                vdx_heap_init(k, hk, hi);
                begin_query(ivf, x + q * d, ctx);
#pragma omp for schedule(dynamic, 1)
                for (int64_t j = 0; j < np_eff; j++) {
                    int64_t l = cl[q * np + j];
                    if (l >= 0)
                        scan_list(ivf, x + q * d, l, k, kn.sel, hk, hi, keys, cand,
                                  ctx, &qc, lim[j]);
                }
                c_nlist += qc.nlist;
                c_ndis += qc.ndis;
                c_nheap += qc.nheap;
            }
            cnt.nlist += c_nlist;
            cnt.ndis += c_ndis;
            cnt.nheap += c_nheap;
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            memcpy(hk, tk, hs * sizeof(float));
            memcpy(hi, ti, hs * sizeof(vdx_idx_t));
            for (int t = 1; t < nthreads; t++)
                vdx_heap_merge(k, hk, hi, tk + (size_t)t * hs, ti + (size_t)t * hs);
            finish(ix, k, hk, hi);
        }
        vdx_free(lim);
        vdx_free(tk);
        vdx_free(ti);
    }
done:
    vdx_aligned_free(scratch);
    if (!st)
        vdx_stats_ivf_add(n, cnt.nlist, cnt.ndis, cnt.nheap, quant_ns,
                          quant_ns + vdx_stats_now_ns() - t0);
    return st;
}

static vdx_status ivf_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *p, float *D,
                             vdx_idx_t *I) {
    const vdx_ivf *ivf = (const vdx_ivf *)ix;
    ivf_knobs kn = knobs_of(ivf, p);
    if (knobs_check(&kn)) return VDX_ERR_INVALID_ARGUMENT;
    const int64_t np = kn.nprobe;
    vdx_status st = VDX_ERR_OUT_OF_MEMORY;
    float *cd = vdx_malloc_array((size_t)n * (size_t)np, sizeof(float));
    int64_t *cl = vdx_malloc_array((size_t)n * (size_t)np, sizeof(int64_t));
    const int64_t t0 = vdx_stats_now_ns();
    if (cd && cl && !(st = coarse(ivf, n, x, np, cd, cl)))
        st = search_preassigned(ivf, n, x, k, kn, np, cl, D, I,
                                vdx_stats_now_ns() - t0);
    vdx_free(cd);
    vdx_free(cl);
    return st;
}

int vdx_ivf_preassigned_ok(const vdx_index *ix) {
    return ix && ix->ops->search == ivf_search && ix->ops->add == ivf_add;
}

vdx_status vdx_ivf_add_preassigned(vdx_index *ix, int64_t n, const float *x,
                                   const vdx_idx_t *ids,
                                   const int64_t *lists) {
    return add_core(ix, n, x, ids, lists);
}

vdx_status vdx_ivf_search_preassigned(const vdx_index *ix, int64_t n,
                                      const float *x, int64_t k,
                                      const vdx_search_params *p, int64_t np,
                                      const int64_t *lists, float *D,
                                      vdx_idx_t *I) {
    const vdx_ivf *ivf = (const vdx_ivf *)ix;
    ivf_knobs kn = knobs_of(ivf, p);
    if (np < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search_preassigned: nprobe=%lld must be >= 1",
                         (long long)np);
    kn.nprobe = np;
    for (int64_t i = 0; i < n * np; i++)
        if (lists[i] >= ivf->nlist)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "search_preassigned: list %lld (entry %lld) is "
                             "outside 0..nlist-1=%lld",
                             (long long)lists[i], (long long)i,
                             (long long)ivf->nlist - 1);
    return search_preassigned(ivf, n, x, k, kn, np, lists, D, I, 0);
}

static vdx_status ivf_range_search(const vdx_index *ix, int64_t n,
                                   const float *x, float radius,
                                   const vdx_search_params *p,
                                   vdx_range_builder *rb) {
    const vdx_ivf *ivf = (const vdx_ivf *)ix;
    ivf_knobs kn = knobs_of(ivf, p);
    if (knobs_check(&kn)) return VDX_ERR_INVALID_ARGUMENT;
    const int64_t np = kn.nprobe, d = ix->d;
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    vdx_status st = VDX_OK;
    float *cd = vdx_malloc_array((size_t)n * (size_t)np, sizeof(float));
    int64_t *cl = vdx_malloc_array((size_t)n * (size_t)np, sizeof(int64_t));
    if (!cd || !cl) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    const int64_t t0 = vdx_stats_now_ns();
    if ((st = coarse(ivf, n, x, np, cd, cl)))
        goto done;
    const int64_t tq = vdx_stats_now_ns();
    const int nthreads = scan_threads(ivf, n, np);
    int64_t c_nlist = 0, c_ndis = 0;
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads) \
    reduction(+ : c_nlist, c_ndis)
    {
        float keys[IVF_CHUNK];
        size_t ctxb = codec_ctx_size(ivf);
        void *ctx = ctxb ? vdx_aligned_alloc(1, ctxb) : NULL;
        if (ctx) memset(ctx, 0, ctxb);
        if (ctxb && !ctx) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            int64_t nscan = 0;
            if (ctx) begin_query(ivf, x + q * d, ctx);
            for (int64_t j = 0; j < np && !st; j++) {
                int64_t l = cl[q * np + j];
                if (l < 0) continue;
                if (kn.max_codes && nscan >= kn.max_codes) break;
                int64_t ls = ivf->il->ops->list_size(ivf->il, l);
                const uint8_t *codes = ivf->il->ops->get_codes(ivf->il, l);
                const vdx_idx_t *ids = ivf->il->ops->get_ids(ivf->il, l);
                nscan += ls;
                c_nlist += ls > 0;
                c_ndis += ls;
                if (ls && ivf->scanner)
                    ivf->scanner->prepare(ivf, x + q * d, l, ctx);
                for (int64_t c0 = 0; c0 < ls; c0 += IVF_CHUNK) {
                    size_t cn = (size_t)VDX_MIN(IVF_CHUNK, ls - c0);
                    codec_scan(ivf, x + q * d, l, ctx,
                               codes + (size_t)c0 * ivf->code_size, cn, keys);
                    if (vdx_range_collect(rb, q, keys, cn, ip, ip, radius,
                                          ids + c0, 0, kn.sel)) {
#pragma omp atomic write
                        st = VDX_ERR_OUT_OF_MEMORY;
                    }
                }
            }
        }
        vdx_aligned_free(ctx);
    }
    if (!st)
        vdx_stats_ivf_add(n, c_nlist, c_ndis, 0, tq - t0, vdx_stats_now_ns() - t0);
done:
    vdx_free(cd);
    vdx_free(cl);
    return st;
}

/* ---- maintenance ---------------------------------------------------------- */

static vdx_status ivf_reset(vdx_index *ix) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    for (int64_t l = 0; l < ivf->nlist; l++) {
        vdx_status st = ivf->il->ops->resize(ivf->il, l, 0);
        if (st) return st;
    }
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status ivf_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                 int64_t *nremoved) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    if (ivf->dm)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "remove_ids is not possible while the direct map is "
                         "on: call make_direct_map(False) first");
    if (!ivf->il->ops->codes_rw)
        return vdx_raise(VDX_ERR_UNSUPPORTED, "the inverted lists are read-only");
    int64_t removed = 0;
    int failed = 0;
    size_t cs = ivf->code_size;
#pragma omp parallel for reduction(+ : removed, failed) schedule(dynamic, 16) num_threads(vdx_nthreads())
    for (int64_t l = 0; l < ivf->nlist; l++) {
        int64_t ls = ivf->il->ops->list_size(ivf->il, l), j = 0;
        if (!ls) continue;
        /* only a list that loses an entry asks for writable views, which
         * copy a list borrowed from a file map (copy-on-write) */
        const vdx_idx_t *rids = ivf->il->ops->get_ids(ivf->il, l);
        int64_t first = 0;
        while (first < ls && !vdx_sel_member(sel, rids[first])) first++;
        if (first == ls) continue;
        uint8_t *codes = ivf->il->ops->codes_rw(ivf->il, l);
        vdx_idx_t *ids = ivf->il->ops->ids_rw(ivf->il, l);
        if (!codes || !ids) {
            failed++;
            continue;
        }
        j = first;
        for (int64_t i = first; i < ls; i++) {
            if (vdx_sel_member(sel, ids[i])) continue;
            if (i != j) {
                ids[j] = ids[i];
                memcpy(codes + (size_t)j * cs, codes + (size_t)i * cs, cs);
            }
            j++;
        }
        removed += ls - j;
        ivf->il->ops->resize(ivf->il, l, j); /* shrinking cannot fail */
    }
    ix->ntotal -= removed;
    *nremoved = removed;
    if (failed)
        return vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                         "remove_ids: no memory to copy %d memory-mapped "
                         "inverted lists (removed %lld entries elsewhere)",
                         failed, (long long)removed);
    return VDX_OK;
}

static vdx_status ivf_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                  float *out) {
    const vdx_ivf *ivf = (const vdx_ivf *)ix;
    if (!ivf->dm)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "reconstruct needs the direct map: call "
                         "make_direct_map() first");
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    int64_t lo = ivf->dm[key], l = lo >> 32, off = lo & 0xffffffffLL;
    ivf->codec->decode(ivf, l,
                       ivf->il->ops->get_codes(ivf->il, l) + (size_t)off * ivf->code_size,
                       out);
    return VDX_OK;
}

/* reconstruct_n works without the direct map: ids in [i0, i0+ni) are found
 * by scanning the lists. */
static vdx_status ivf_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                    int64_t ni, float *out) {
    const vdx_ivf *ivf = (const vdx_ivf *)ix;
    for (int64_t l = 0; l < ivf->nlist; l++) {
        int64_t ls = ivf->il->ops->list_size(ivf->il, l);
        const vdx_idx_t *ids = ivf->il->ops->get_ids(ivf->il, l);
        const uint8_t *codes = ivf->il->ops->get_codes(ivf->il, l);
        for (int64_t o = 0; o < ls; o++)
            if (ids[o] >= i0 && ids[o] < i0 + ni)
                ivf->codec->decode(ivf, l, codes + (size_t)o * ivf->code_size,
                                   out + (ids[o] - i0) * ix->d);
    }
    return VDX_OK;
}

vdx_status vdx_ivf_rebuild_direct_map(vdx_ivf *ivf) {
    int64_t nt = ivf->base.ntotal;
    int64_t *dm = vdx_malloc_array((size_t)(nt ? nt : 1), sizeof(int64_t));
    if (!dm) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < nt; i++) dm[i] = -1;
    for (int64_t l = 0; l < ivf->nlist; l++) {
        int64_t ls = ivf->il->ops->list_size(ivf->il, l);
        const vdx_idx_t *ids = ivf->il->ops->get_ids(ivf->il, l);
        for (int64_t o = 0; o < ls; o++) {
            if (ids[o] < 0 || ids[o] >= nt || dm[ids[o]] != -1) {
                vdx_free(dm);
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "direct map: ids must be 0..ntotal-1, each "
                                 "once (found id %lld in list %lld)",
                                 (long long)ids[o], (long long)l);
            }
            dm[ids[o]] = (l << 32) | o;
        }
    }
    vdx_free(ivf->dm);
    ivf->dm = dm;
    ivf->dm_cap = nt ? nt : 1;
    return VDX_OK;
}

vdx_status vdx_index_ivf_make_direct_map(vdx_index *ix, int on) {
    vdx_clear_error();
    vdx_ivf *ivf = as_ivf(ix);
    if (!ivf) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an IVF index");
    if (!on) {
        vdx_free(ivf->dm);
        ivf->dm = NULL;
        ivf->dm_cap = 0;
        return VDX_OK;
    }
    return vdx_ivf_rebuild_direct_map(ivf);
}

static void ivf_destroy(vdx_index *ix) {
    vdx_ivf *ivf = (vdx_ivf *)ix;
    vdx_index_free(ivf->quantizer);
    vdx_invlists_free(ivf->il);
    vdx_free(ivf->dm);
    vdx_free(ivf);
}

/* ---- construction & accessors ------------------------------------------- */

vdx_status vdx_ivf_init(vdx_ivf *ivf, const vdx_index_ops *ops,
                        vdx_index *quantizer, int64_t d, int64_t nlist,
                        vdx_metric metric, size_t code_size) {
    if (!quantizer)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "quantizer is NULL");
    if (d <= 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dimension d=%lld must be in 1..%lld", (long long)d,
                         (long long)VDX_MAX_DIM);
    if (quantizer->d != d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "the quantizer has d=%lld, the IVF index d=%lld",
                         (long long)quantizer->d, (long long)d);
    if (nlist <= 0 || nlist > ((int64_t)1 << 31))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nlist=%lld must be in 1..2^31", (long long)nlist);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "metric %d is not supported",
                         (int)metric);
    vdx_status st = vdx_invlists_array_new(nlist, code_size, &ivf->il);
    if (st) return st;
    ivf->base.ops = ops;
    ivf->base.d = d;
    ivf->base.metric = metric;
    ivf->base.is_trained = quantizer->is_trained && quantizer->ntotal == nlist;
    ivf->quantizer = quantizer;
    ivf->nlist = nlist;
    ivf->nprobe = 1;
    ivf->code_size = code_size;
    vdx_kmeans_params_init(&ivf->cp);
    ivf->cp.niter = 10; /* FAISS's IVF training default */
    return VDX_OK;
}

/* ---- IVF-Flat: the codes are the float vectors themselves ---------------- */

static vdx_status flat_encode(const vdx_ivf *ivf, int64_t n, const float *x,
                              const int64_t *lists, uint8_t *codes) {
    (void)lists;
    memcpy(codes, x, (size_t)n * ivf->code_size);
    return VDX_OK;
}

static void flat_decode(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                        float *out) {
    (void)list;
    memcpy(out, code, ivf->code_size);
}

static void flat_scan(const vdx_ivf *ivf, const float *xq, int64_t list,
                      const uint8_t *codes, size_t n, float *keys) {
    (void)list;
    const vdx_kernels *K = vdx_kernels_get();
    const float *y = (const float *)(const void *)codes;
    size_t d = (size_t)ivf->base.d;
    if (ivf->base.metric == VDX_METRIC_L2) {
        K->l2sqr_ny(keys, xq, y, d, n);
    } else {
        K->inner_product_ny(keys, xq, y, d, n);
        for (size_t j = 0; j < n; j++) keys[j] = -keys[j];
    }
}

static const vdx_ivf_codec flat_codec = {flat_encode, flat_decode, flat_scan};

static int codec_is_flat(const vdx_ivf *ivf) { return ivf->codec == &flat_codec; }

static const vdx_index_ops ivf_flat_ops = {
    "IndexIVFFlat",   ivf_train,       ivf_add,          ivf_search,
    ivf_range_search, ivf_reset,       ivf_reconstruct,  ivf_reconstruct_n,
    ivf_remove_ids,   ivf_destroy};

/* Every IVF kind searches with ivf_search (its ops come from
 * vdx_ivf_generic_ops), which makes the search op the IVF mark. */
/* Every IVF kind keeps the generic range search (kinds may replace search,
 * as the fast-scan one does). */
int vdx_index_is_ivf(const vdx_index *ix) {
    return ix && ix->ops->range_search == ivf_range_search;
}

/* The generic IVF ops, for kinds that differ only by their codec. */
vdx_status vdx_ivf_generic_ops(vdx_index_ops *ops, const char *type_name) {
    *ops = ivf_flat_ops;
    ops->type_name = type_name;
    return VDX_OK;
}

vdx_status vdx_ivf_flat_alloc(vdx_index *quantizer, int64_t d, int64_t nlist,
                              vdx_metric metric, vdx_ivf **out) {
    *out = NULL;
    vdx_ivf *ivf = vdx_calloc(1, sizeof *ivf);
    if (!ivf) return VDX_ERR_OUT_OF_MEMORY;
    size_t cs;
    if (!vdx_mul_ok((size_t)(d > 0 ? d : 1), sizeof(float), &cs)) cs = 0;
    vdx_status st = vdx_ivf_init(ivf, &ivf_flat_ops, quantizer, d, nlist,
                                 metric, cs);
    if (st) {
        vdx_free(ivf);
        return st;
    }
    ivf->codec = &flat_codec;
    *out = ivf;
    return VDX_OK;
}

vdx_status vdx_index_ivf_flat_new(vdx_index *quantizer, int64_t d,
                                  int64_t nlist, vdx_metric metric,
                                  vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    vdx_ivf *ivf = NULL;
    vdx_status st = vdx_ivf_flat_alloc(quantizer, d, nlist, metric, &ivf);
    *out = ivf ? &ivf->base : NULL;
    return st;
}

int64_t vdx_index_ivf_nlist(const vdx_index *ix) {
    const vdx_ivf *ivf = as_ivf(ix);
    return ivf ? ivf->nlist : 0;
}
int64_t vdx_index_ivf_nprobe(const vdx_index *ix) {
    const vdx_ivf *ivf = as_ivf(ix);
    return ivf ? ivf->nprobe : 0;
}
vdx_status vdx_index_ivf_set_nprobe(vdx_index *ix, int64_t nprobe) {
    vdx_clear_error();
    vdx_ivf *ivf = as_ivf(ix);
    if (!ivf) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an IVF index");
    /* 0 is accepted, as in FAISS, and refused by the searches */
    if (nprobe < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "nprobe=%lld must be >= 0",
                         (long long)nprobe);
    ivf->nprobe = nprobe > ivf->nlist ? ivf->nlist : nprobe;
    return VDX_OK;
}
int64_t vdx_index_ivf_max_codes(const vdx_index *ix) {
    const vdx_ivf *ivf = as_ivf(ix);
    return ivf ? ivf->max_codes : 0;
}
vdx_status vdx_index_ivf_set_max_codes(vdx_index *ix, int64_t max_codes) {
    vdx_clear_error();
    vdx_ivf *ivf = as_ivf(ix);
    if (!ivf) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an IVF index");
    if (max_codes < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "max_codes=%lld must be >= 0",
                         (long long)max_codes);
    ivf->max_codes = max_codes;
    return VDX_OK;
}
vdx_index *vdx_index_ivf_quantizer(const vdx_index *ix) {
    const vdx_ivf *ivf = as_ivf(ix);
    return ivf ? ivf->quantizer : NULL;
}
int64_t vdx_index_ivf_list_size(const vdx_index *ix, int64_t l) {
    const vdx_ivf *ivf = as_ivf(ix);
    if (!ivf || l < 0 || l >= ivf->nlist) return -1;
    return ivf->il->ops->list_size(ivf->il, l);
}
vdx_status vdx_index_ivf_list_ids(const vdx_index *ix, int64_t l,
                                  vdx_idx_t *out) {
    vdx_clear_error();
    const vdx_ivf *ivf = as_ivf(ix);
    if (!ivf || l < 0 || l >= ivf->nlist)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "list %lld is not a list of this index", (long long)l);
    int64_t ls = ivf->il->ops->list_size(ivf->il, l);
    if (ls && !out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    if (ls) memcpy(out, ivf->il->ops->get_ids(ivf->il, l), (size_t)ls * sizeof(vdx_idx_t));
    return VDX_OK;
}

vdx_status vdx_index_ivf_list_codes(const vdx_index *ix, int64_t l,
                                    uint8_t *out) {
    vdx_clear_error();
    const vdx_ivf *ivf = as_ivf(ix);
    if (!ivf || l < 0 || l >= ivf->nlist)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "list %lld is not a list of this index (nlist=%lld)",
                         (long long)l, (long long)(ivf ? ivf->nlist : 0));
    int64_t ls = ivf->il->ops->list_size(ivf->il, l);
    if (ls && !out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    if (ls)
        memcpy(out, ivf->il->ops->get_codes(ivf->il, l),
               (size_t)ls * ivf->code_size);
    return VDX_OK;
}

size_t vdx_index_ivf_code_size(const vdx_index *ix) {
    const vdx_ivf *ivf = as_ivf(ix);
    return ivf ? ivf->code_size : 0;
}

vdx_kmeans_params *vdx_index_ivf_cp(vdx_index *ix) {
    return vdx_index_is_ivf(ix) ? &((vdx_ivf *)(void *)ix)->cp : NULL;
}

/* Moves every entry of src into dst (FAISS's IndexIVF::merge_from): list
 * by list, ids shifted by add_id; src is left empty.  Checked first, so a
 * refused merge changes nothing; an out-of-memory failure midway leaves
 * the entries merged so far in dst and the rest in src (counts kept
 * right). */
vdx_status vdx_index_ivf_replace_invlists(vdx_index *dst,
                                          const vdx_index *src, int own) {
    (void)own; /* reference counted: see vecdex.h */
    vdx_clear_error();
    if (!dst || !src || !vdx_index_is_ivf(dst) || !vdx_index_is_ivf(src))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "replace_invlists: both indexes must be IVF indexes");
    vdx_ivf *a = (vdx_ivf *)dst;
    const vdx_ivf *b = (const vdx_ivf *)src;
    if (a->il == b->il) return VDX_OK;
    if (strstr(dst->ops->type_name, "FastScan") ||
        strstr(src->ops->type_name, "FastScan"))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "replace_invlists: not supported for %s (its lists "
                         "have packed copies derived from them)",
                         strstr(dst->ops->type_name, "FastScan")
                             ? dst->ops->type_name
                             : src->ops->type_name);
    /* FAISS checks nlist and code_size; the kind too here, since lists of
     * another kind with the same code size would be decoded as garbage */
    if (strcmp(dst->ops->type_name, src->ops->type_name) != 0 ||
        a->nlist != b->nlist || a->code_size != b->code_size ||
        dst->d != src->d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "replace_invlists: incompatible lists (%s d=%lld "
                         "nlist=%lld code_size=%zu, lists of %s d=%lld "
                         "nlist=%lld code_size=%zu)",
                         dst->ops->type_name, (long long)dst->d,
                         (long long)a->nlist, a->code_size,
                         src->ops->type_name, (long long)src->d,
                         (long long)b->nlist, b->code_size);
    vdx_invlists *old = a->il;
    const int64_t old_n = dst->ntotal;
    a->il = vdx_invlists_ref(b->il);
    dst->ntotal = vdx_invlists_total(a->il);
    if (a->dm) {
        vdx_status st = vdx_ivf_rebuild_direct_map(a);
        if (st) {
            vdx_invlists_free(a->il);
            a->il = old;
            dst->ntotal = old_n;
            (void)vdx_ivf_rebuild_direct_map(a);
            return st;
        }
    }
    vdx_invlists_free(old);
    return VDX_OK;
}

vdx_status vdx_index_ivf_merge_from(vdx_index *dst, vdx_index *src,
                                    int64_t add_id) {
    vdx_clear_error();
    if (!dst || !src || !vdx_index_is_ivf(dst) || !vdx_index_is_ivf(src))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: both indexes must be IVF indexes");
    if (dst == src)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: cannot merge an index into itself");
    vdx_ivf *a = (vdx_ivf *)dst, *b = (vdx_ivf *)src;
    if (strcmp(dst->ops->type_name, src->ops->type_name) != 0 ||
        dst->d != src->d || a->nlist != b->nlist ||
        a->code_size != b->code_size || dst->metric != src->metric)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "merge_from: incompatible indexes (%s d=%lld "
                         "nlist=%lld vs %s d=%lld nlist=%lld)",
                         dst->ops->type_name, (long long)dst->d,
                         (long long)a->nlist, src->ops->type_name,
                         (long long)src->d, (long long)b->nlist);
    if (a->dm || b->dm)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "merge_from: not possible while a direct map is on: "
                         "call make_direct_map(False) first");
    if (!a->il->ops->add_entries)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "merge_from: the inverted lists are read-only");
    vdx_idx_t *buf = NULL;
    size_t bufn = 0;
    vdx_status st = VDX_OK;
    for (int64_t l = 0; l < a->nlist && !st; l++) {
        int64_t n = b->il->ops->list_size(b->il, l);
        if (!n) continue;
        const vdx_idx_t *ids = b->il->ops->get_ids(b->il, l);
        if (add_id) {
            if ((size_t)n > bufn) {
                vdx_free(buf);
                bufn = (size_t)n;
                if (!(buf = vdx_malloc_array(bufn, sizeof(vdx_idx_t)))) {
                    st = VDX_ERR_OUT_OF_MEMORY;
                    break;
                }
            }
            for (int64_t k = 0; k < n; k++) buf[k] = ids[k] + add_id;
            ids = buf;
        }
        st = a->il->ops->add_entries(a->il, l, n, ids,
                                     b->il->ops->get_codes(b->il, l));
        if (st) break;
        b->il->ops->resize(b->il, l, 0); /* shrinking cannot fail */
        dst->ntotal += n;
        src->ntotal -= n;
    }
    vdx_free(buf);
    return st;
}
