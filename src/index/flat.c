/*
 * flat.c — IndexFlat: exact search over float32 vectors (L2 and inner
 * product).
 *
 * Two search paths:
 *  - many queries: the database is cut into blocks and the queries into
 *    tiles; each thread owns a tile of queries and, per database block,
 *    computes the inner products with one sgemm into a small, cache-resident
 *    buffer, turns them into distances (|y|^2 - 2<x,y>; |x|^2 is added at the
 *    end since it does not change the order) and offers them to the per-query
 *    heaps through a SIMD threshold filter.  No nq x nb matrix is ever held,
 *    and the tile is consumed while it is still in cache.
 *  - few queries: SIMD distance scans, threaded over the database with one
 *    heap per thread, merged at the end.
 * Results: per query sorted best first, ties to the lower id, empty slots
 * -1 / +inf (L2) or -1 / -inf (IP), as FAISS.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "index_internal.h"
#include "common/blas.h"
#include "common/interrupt.h"
#include "common/topk.h"
#include "common/threads.h"
#include "simd/kernels.h"

/* Below this many queries the scan path wins (the database is streamed once
 * per query either way, sgemm only pays off when it is reused). */
#define FLAT_BLAS_MIN_QUERIES 16
/* Tile sizes of the sgemm path.  OpenBLAS packs both operands on every
 * call, so tall query tiles amortise the packing of the database block;
 * measured on Zen (d=64, nb=1e5): 1024 x 512 is ~15% faster than 128 x 512.
 * The query tile shrinks for small batches so that every thread has work. */
#define FLAT_QB_MAX 1024
#define FLAT_QB_MIN 32
#define FLAT_DB 512
/* Database rows sampled to seed the thresholds (<= FLAT_DB: the tile holds
 * them). */
#define FLAT_SEED_SAMPLES 256
/* Entries filtered against one threshold before it is refreshed (short
 * runs: with few rows, as an IVF quantizer has, the first run would
 * otherwise all go through the heap; 16 measured 1.4x faster than 64 for
 * 100 rows, k = 10, and no slower for 20k rows). */
#define FLAT_FILTER_RUN 16
/* Database chunk of the scan path. */
#define FLAT_SCAN_CHUNK 1024

static const vdx_index_ops flat_ops_l2, flat_ops_ip;

int vdx_is_flat(const vdx_index *ix) {
    return ix && (ix->ops == &flat_ops_l2 || ix->ops == &flat_ops_ip);
}

/* Squared norms are kept for the L2 sgemm path only. */
static int flat_keeps_norms(const vdx_flat *f) {
    return f->base.metric == VDX_METRIC_L2 && !f->no_norms;
}

void vdx_flat_drop_norms(vdx_flat *f) {
    f->no_norms = 1;
    vdx_aligned_free(f->norms);
    f->norms = NULL;
}

vdx_status vdx_flat_reserve(vdx_flat *f, int64_t n) {
    if (n <= f->cap) return VDX_OK;
    /* geometric growth for repeated adds, exact for one large add (loads) */
    int64_t nc = VDX_MAX(n, f->cap + f->cap / 2);
    size_t d = (size_t)f->base.d;
    const int keep = flat_keeps_norms(f);
    float *nx = vdx_aligned_alloc((size_t)nc, d * sizeof(float));
    if (!nx) return VDX_ERR_OUT_OF_MEMORY;
    float *nn = keep ? vdx_aligned_alloc((size_t)nc, sizeof(float)) : NULL;
    if (keep && !nn) {
        vdx_aligned_free(nx);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    if (f->base.ntotal) {
        memcpy(nx, f->xb, (size_t)f->base.ntotal * d * sizeof(float));
        if (keep && f->norms)
            memcpy(nn, f->norms, (size_t)f->base.ntotal * sizeof(float));
        else if (keep) /* a mapped index keeps no norms until it is copied */
            vdx_kernels_get()->norms_sqr_ny(nn, nx, d,
                                            (size_t)f->base.ntotal);
    }
    if (f->map) {
        /* the old vectors were borrowed from the file map: never freed */
        vdx_mapping_unref(f->map);
        f->map = NULL;
    } else {
        vdx_aligned_free(f->xb);
    }
    vdx_aligned_free(f->norms);
    f->xb = nx;
    f->norms = nn;
    f->cap = nc;
    return VDX_OK;
}

static vdx_status flat_add(vdx_index *ix, int64_t n, const float *x,
                           const vdx_idx_t *ids) {
    (void)ids; /* rejected by index.c for flat */
    vdx_flat *f = (vdx_flat *)ix;
    vdx_status st = vdx_flat_reserve(f, ix->ntotal + n);
    if (st) return st;
    size_t d = (size_t)ix->d;
    memcpy(f->xb + (size_t)ix->ntotal * d, x, (size_t)n * d * sizeof(float));
    if (f->norms)
        vdx_kernels_get()->norms_sqr_ny(f->norms + ix->ntotal, x, d, (size_t)n);
    ix->ntotal += n;
    return VDX_OK;
}

vdx_status vdx_flat_unmap(vdx_flat *f) {
    if (!f->map || f->base.ntotal == 0) {
        if (f->map) {
            vdx_mapping_unref(f->map);
            f->map = NULL;
            f->xb = NULL;
        }
        return VDX_OK;
    }
    return vdx_flat_reserve(f, f->base.ntotal); /* cap is 0: copies */
}

/* Releases the vectors: unmaps borrowed ones, frees owned ones. */
static void flat_release(vdx_flat *f) {
    if (f->map) {
        vdx_mapping_unref(f->map);
        f->map = NULL;
    } else {
        vdx_aligned_free(f->xb);
    }
    f->xb = NULL;
}

static vdx_status flat_reset(vdx_index *ix) {
    vdx_flat *f = (vdx_flat *)ix;
    flat_release(f);
    vdx_aligned_free(f->norms);
    f->xb = f->norms = NULL;
    f->cap = 0;
    ix->ntotal = 0;
    return VDX_OK;
}

/* ---- search: result finishing ------------------------------------------ */

static void finish_heap(const vdx_index *ix, int64_t k, float *D,
                        vdx_idx_t *I, float add) {
    vdx_topk_finish(k, D, I, ix->metric == VDX_METRIC_INNER_PRODUCT, add);
}

/* ---- search: sgemm path ------------------------------------------------ */

/* Per query of a tile, the k best so far: a set (topk.h) for small k
 * (every candidate tightens the threshold), a reservoir for large k (no
 * per-candidate maximum). */
typedef struct flat_coll {
    vdx_kset s;
    vdx_reservoir r;
} flat_coll;

static inline float threshold(const flat_coll *c, int use_set) {
    return use_set ? c->s.top : c->r.thr;
}

/* ---- the k smallest of a tile row, by extraction ----
 *
 * With a small k most of a row never enters the set, and what does enters
 * in an order no branch predictor guesses: filtering against the set's top
 * and adding costs a mispredicted branch or two per candidate.  Instead the
 * row's smallest keys are taken out one at a time, in ascending order,
 * until one is not better than the set's top: a minimum per block of 64
 * keys, the smallest block minimum, its first position, and that block's
 * minimum again (about 50 vector operations per key, no data-dependent
 * branch but the last).  Ascending order with the first position among
 * equal keys is the order a heap of (key, id) would take them in. */
#define XB 64 /* keys per block */

/* The minimum of the XB keys at b. */
static inline float block_min(const float *b) {
#ifdef __SSE2__
    __m128 m0 = _mm_loadu_ps(b), m1 = _mm_loadu_ps(b + 4);
    __m128 m2 = _mm_loadu_ps(b + 8), m3 = _mm_loadu_ps(b + 12);
    for (int i = 16; i < XB; i += 16) {
        m0 = _mm_min_ps(m0, _mm_loadu_ps(b + i));
        m1 = _mm_min_ps(m1, _mm_loadu_ps(b + i + 4));
        m2 = _mm_min_ps(m2, _mm_loadu_ps(b + i + 8));
        m3 = _mm_min_ps(m3, _mm_loadu_ps(b + i + 12));
    }
    __m128 m = _mm_min_ps(_mm_min_ps(m0, m1), _mm_min_ps(m2, m3));
    m = _mm_min_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_min_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtss_f32(m);
#else
    float m = b[0];
    for (int i = 1; i < XB; i++) m = b[i] < m ? b[i] : m;
    return m;
#endif
}

/* Mask of the positions of b[0 .. 4 * nv) equal to v (nv <= 16). */
static inline uint64_t eq_mask(const float *b, int nv, float v) {
    uint64_t at = 0;
#ifdef __SSE2__
    const __m128 vv = _mm_set1_ps(v);
    for (int j = 0; j < nv; j++)
        at |= (uint64_t)_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(b + 4 * j), vv)) << (4 * j);
#else
    for (int j = 0; j < 4 * nv; j++) at |= (uint64_t)(b[j] == v) << j;
#endif
    return at;
}

/* Offers the smallest keys of row[0 .. n) (plus add[0 .. n) unless NULL;
 * n <= FLAT_DB; ids id0 + j) to
 * the set, smallest first, while the set takes them; ids that are
 * multiples of stride below ns * stride were offered already (the seed
 * sample) and are passed over.  buf: room for FLAT_DB keys. */
static void extract_into(const float *row, const float *add, int64_t n,
                         vdx_idx_t id0, int64_t stride, int64_t ns,
                         vdx_kset *s, float *buf) {
    const int nblk = (int)((n + XB - 1) / XB);
    float bm[FLAT_DB / XB + 4];
    int64_t j0 = 0;
#ifdef __SSE2__
    if (add) /* whole vectors: the compiler would not, for the aliasing */
        for (; j0 + 4 <= n; j0 += 4)
            _mm_storeu_ps(buf + j0, _mm_add_ps(_mm_loadu_ps(row + j0),
                                               _mm_loadu_ps(add + j0)));
#endif
    for (int64_t j = j0; j < n; j++) buf[j] = add ? row[j] + add[j] : row[j];
    for (int64_t j = n; j < (int64_t)nblk * XB; j++) buf[j] = INFINITY;
    const int nbv = (nblk + 3) / 4;
    for (int b = 0; b < 4 * nbv; b++)
        bm[b] = b < nblk ? block_min(buf + b * XB) : INFINITY;
    for (;;) {
        float m = bm[0];
        for (int b = 1; b < 4 * nbv; b++) m = bm[b] < m ? bm[b] : m;
        if (!(m < INFINITY)) return; /* all taken (or NaN) */
        uint64_t bb = eq_mask(bm, nbv, m);
        if (!bb) return;
        const int blk = __builtin_ctzll(bb);
        uint64_t at = eq_mask(buf + blk * XB, XB / 4, m);
        if (!at) return;
        const int64_t j = (int64_t)blk * XB + __builtin_ctzll(at);
        const vdx_idx_t id = id0 + j;
        if (!vdx_kset_takes(s, m, id)) return;
        if (!(ns && id % stride == 0 && id / stride < ns)) vdx_kset_add(s, m, id);
        vdx_set_store(buf, j, INFINITY);
        vdx_set_store(bm, blk, block_min(buf + blk * XB));
    }
}

/* Offers a candidate.  A key equal to the reservoir's threshold may still
 * win on its id (when the seed sample came first, ids arrive out of
 * order); its selection sorts that out. */
static inline void collect(flat_coll *c, int use_set, float key, vdx_idx_t id) {
    if (use_set) {
        if (vdx_kset_takes(&c->s, key, id)) vdx_kset_add(&c->s, key, id);
    } else if (key <= c->r.thr) {
        vdx_reservoir_push(&c->r, key, id);
    }
}

static vdx_status search_blas(const vdx_flat *f, int64_t n, const float *x,
                              int64_t k, const vdx_selector *sel, float *D,
                              vdx_idx_t *I) {
    const vdx_index *ix = &f->base;
    const vdx_kernels *K = vdx_kernels_get();
    const int64_t nb = ix->ntotal;
    const int d = (int)ix->d;
    const int is_l2 = ix->metric == VDX_METRIC_L2;
    int nthreads = vdx_nthreads_for((double)n * (double)nb * d / 8);
    int64_t qb = (n + nthreads - 1) / nthreads;
    qb = VDX_MAX(FLAT_QB_MIN, VDX_MIN(FLAT_QB_MAX, qb));
    const int64_t ntiles = (n + qb - 1) / qb;
    if (nthreads > ntiles) nthreads = (int)ntiles;

    /* per-thread: a tile buffer, a candidate list and a collector per query
     * of the tile */
    const int use_set = k <= VDX_SET_MAX;
    const int64_t rcap = use_set ? vdx_set_slots(k) : vdx_reservoir_cap(k);
    /* the tile never needs more columns than the database has rows */
    const int64_t db = VDX_MAX(VDX_MIN(FLAT_DB, nb), FLAT_SEED_SAMPLES);
    /* tile, candidate positions (db), extraction buffer (FLAT_DB) */
    size_t per = (size_t)qb * (size_t)db + (size_t)db + FLAT_DB;
    float *work = vdx_aligned_alloc((size_t)nthreads, per * sizeof(float));
    float *rkey = vdx_malloc_array((size_t)nthreads * qb, (size_t)rcap * sizeof(float));
    vdx_idx_t *rid = vdx_malloc_array((size_t)nthreads * qb,
                                      (size_t)rcap * sizeof(vdx_idx_t));
    flat_coll *res = vdx_malloc_array((size_t)nthreads * qb, sizeof(flat_coll));
    /* A spread sample of the database seeds every query's reservoir, so
     * the filter threshold is tight from the first block on instead of
     * starting at +inf (it matters most when scores trend along the ids).
     * Sampled rows are real candidates; the main scan skips them. */
    int64_t stride = nb / FLAT_SEED_SAMPLES, ns = 0;
    float *sx = NULL, *sn = NULL;
    /* only when the sample is a small share of the work (<= 1/16) */
    if (stride >= 16 && nb >= 8 * k) {
        ns = FLAT_SEED_SAMPLES;
        sx = vdx_aligned_alloc((size_t)ns, (size_t)d * sizeof(float));
        sn = vdx_aligned_alloc((size_t)ns, sizeof(float));
        if (sx && sn)
            for (int64_t j = 0; j < ns; j++) {
                memcpy(sx + j * d, f->xb + (size_t)(j * stride) * d, (size_t)d * sizeof(float));
                const float *v = f->xb + (size_t)(j * stride) * d;
                sn[j] = !is_l2     ? 0.0f
                        : f->norms ? f->norms[j * stride]
                                   : K->inner_product(v, v, (size_t)d);
            }
    }
    if (!work || !rkey || !rid || !res || (ns && (!sx || !sn))) {
        vdx_aligned_free(sx);
        vdx_aligned_free(sn);
        vdx_aligned_free(work);
        vdx_free(rkey);
        vdx_free(rid);
        vdx_free(res);
        return VDX_ERR_OUT_OF_MEMORY;
    }

    int stop = 0; /* the interrupt handler asked to stop */
#pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num();
        float *tile = work + (size_t)t * per;
        uint32_t *cand = (uint32_t *)(tile + (size_t)qb * (size_t)db);
        float *xbuf = tile + (size_t)qb * (size_t)db + (size_t)db;
        flat_coll *R = res + (size_t)t * qb;
#pragma omp for schedule(dynamic, 1)
        for (int64_t tt = 0; tt < ntiles; tt++) {
            if (vdx_poll_stop(&stop)) continue;
            int64_t q0 = tt * qb, qn = VDX_MIN(qb, n - q0);
            for (int64_t i = 0; i < qn; i++) {
                float *ck = rkey + ((size_t)t * qb + (size_t)i) * (size_t)rcap;
                vdx_idx_t *ci = rid + ((size_t)t * qb + (size_t)i) * (size_t)rcap;
                if (use_set) vdx_kset_init(&R[i].s, k, ck, ci);
                else vdx_reservoir_init(&R[i].r, k, ck, ci);
            }
            if (ns) {
                vdx_gemm_xyt_small((int)qn, (int)ns, d, is_l2 ? -2.0f : -1.0f,
                                   x + (size_t)q0 * d, sx, 0.0f, tile);
                for (int64_t i = 0; i < qn; i++) {
                    float *row = tile + (size_t)i * ns;
                    for (int64_t j = 0; j < ns; j++) {
                        vdx_idx_t id = j * stride;
                        if (sel && !vdx_sel_member(sel, id)) continue;
                        collect(&R[i], use_set, is_l2 ? row[j] + sn[j] : row[j], id);
                    }
                    if (!use_set) vdx_reservoir_shrink(&R[i].r);
                }
            }
            for (int64_t b0 = 0; b0 < nb && !vdx_poll_stop(&stop); b0 += FLAT_DB) {
                int bn = (int)VDX_MIN(FLAT_DB, nb - b0), qni = (int)qn;
                /* L2: tile[i*bn + j] = |y_j|^2 - 2 <x_i, y_j> (the norms are
                 * laid down first and sgemm accumulates onto them);
                 * IP: tile[i*bn + j] = -<x_i, y_j> */
                /* extraction adds the norms as it copies a row */
                const int extract = use_set && k > 1 && !sel;
                const float *add = extract && is_l2 ? f->norms : NULL;
                if (add) {
                    add += b0;
                    vdx_gemm_xyt_small(qni, bn, d, -2.0f, x + (size_t)q0 * d,
                                       f->xb + (size_t)b0 * d, 0.0f, tile);
                } else if (is_l2) {
                    if (f->norms) {
                        memcpy(tile, f->norms + b0, (size_t)bn * sizeof(float));
                    } else {
                        K->norms_sqr_ny(tile, f->xb + (size_t)b0 * d,
                                        (size_t)d, (size_t)bn);
                    }
                    for (int64_t i = 1; i < qn; i++)
                        memcpy(tile + (size_t)i * bn, tile,
                               (size_t)bn * sizeof(float));
                    vdx_gemm_xyt_small(qni, bn, d, -2.0f, x + (size_t)q0 * d,
                                       f->xb + (size_t)b0 * d, 1.0f, tile);
                } else {
                    vdx_gemm_xyt_small(qni, bn, d, -1.0f, x + (size_t)q0 * d,
                                       f->xb + (size_t)b0 * d, 0.0f, tile);
                }
                for (int64_t i = 0; i < qn; i++) {
                    float *row = tile + (size_t)i * bn;
                    flat_coll *r = &R[i];
                    if (extract) {
                        extract_into(row, add, bn, b0, stride, ns, &r->s, xbuf);
                        continue;
                    }
                    if (k == 1 && !sel) { /* nearest only: a SIMD arg-min */
                        float m;
                        size_t j = K->argmin(row, (size_t)bn, &m);
                        collect(r, 1, m, b0 + (vdx_idx_t)j);
                        continue;
                    }
                    /* filter in short runs so that the threshold tightens as
                     * the reservoir improves (matters when scores trend
                     * upward along the ids, as in the tutorial data) */
                    for (int c0 = 0; c0 < bn; c0 += FLAT_FILTER_RUN) {
                        size_t cn = (size_t)VDX_MIN(FLAT_FILTER_RUN, bn - c0);
                        /* after the seed sample, keys equal to the
                         * threshold can win on a lower id */
                        float th = threshold(r, use_set);
                        if (ns) th = nextafterf(th, INFINITY);
                        size_t nc = K->filter_less(row + c0, cn, th, cand);
                        for (size_t c = 0; c < nc; c++) {
                            vdx_idx_t id = b0 + c0 + cand[c];
                            if (ns && id % stride == 0 && id / stride < ns)
                                continue; /* seeded already */
                            if (sel && !vdx_sel_member(sel, id)) continue;
                            collect(r, use_set, row[c0 + cand[c]], id);
                        }
                    }
                }
            }
            for (int64_t q = q0; q < q0 + qn; q++) {
                float xn = is_l2 ? K->norm_sqr(x + q * d, (size_t)d) : 0;
                if (use_set) {
                    vdx_kset_sorted(&R[q - q0].s, D + q * k, I + q * k);
                    vdx_topk_finish_sorted(k, D + q * k, I + q * k,
                                           ix->metric == VDX_METRIC_INNER_PRODUCT,
                                           is_l2 ? xn : 0);
                    continue;
                }
                vdx_reservoir_to_heap(&R[q - q0].r, D + q * k, I + q * k);
                finish_heap(ix, k, D + q * k, I + q * k, is_l2 ? xn : 0);
            }
        }
    }
    vdx_aligned_free(sx);
    vdx_aligned_free(sn);
    vdx_aligned_free(work);
    vdx_free(rkey);
    vdx_free(rid);
    vdx_free(res);
    if (stop)
        return vdx_raise(VDX_ERR_INTERRUPTED, "search of %lld queries interrupted",
                         (long long)n);
    return VDX_OK;
}

/* ---- search: scan path ------------------------------------------------- */

/* Scans database rows [b0, b1) for query xq into the heap (hk, hi). dist is
 * a FLAT_SCAN_CHUNK scratch, cand likewise. */
static void scan_range(const vdx_flat *f, const float *xq, int64_t b0,
                       int64_t b1, int64_t k, const vdx_selector *sel,
                       float *hk, vdx_idx_t *hi, float *dist,
                       uint32_t *cand) {
    const vdx_kernels *K = vdx_kernels_get();
    const size_t d = (size_t)f->base.d;
    const int is_l2 = f->base.metric == VDX_METRIC_L2;
    /* as in the sgemm path: seed the heap with a spread sample of this
     * range (a few scattered rows) so the filter threshold starts tight;
     * the scan skips the sampled rows */
    int64_t stride = (b1 - b0) / FLAT_SEED_SAMPLES;
    if (stride < 16 || sel || (b1 - b0) < 8 * k) stride = 0;
    for (int64_t j = 0; stride && j < FLAT_SEED_SAMPLES; j++) {
        const float *y = f->xb + (size_t)(b0 + j * stride) * d;
        float v = is_l2 ? K->l2sqr(xq, y, d) : -K->inner_product(xq, y, d);
        vdx_heap_push(k, hk, hi, v, b0 + j * stride);
    }
#define SEEDED(id)                                                           \
    (stride && ((id) - b0) % stride == 0 &&                                  \
     ((id) - b0) / stride < FLAT_SEED_SAMPLES)
    for (int64_t c0 = b0; c0 < b1; c0 += FLAT_SCAN_CHUNK) {
        size_t cn = (size_t)VDX_MIN(FLAT_SCAN_CHUNK, b1 - c0);
        const float *y = f->xb + (size_t)c0 * d;
        if (sel) {
            /* compute only the admitted rows */
            for (size_t j = 0; j < cn; j++) {
                vdx_idx_t id = c0 + (vdx_idx_t)j;
                if (!vdx_sel_member(sel, id)) continue;
                float v = is_l2 ? K->l2sqr(xq, y + j * d, d)
                                : -K->inner_product(xq, y + j * d, d);
                vdx_heap_push(k, hk, hi, v, id);
            }
            continue;
        }
        /* the filters admit keys equal to the heap's worst too: a seeded
         * row of a higher id may hold the top with the same key, and the
         * heap breaks that tie by id (nextafterf: <= as a strict test) */
        if (is_l2) {
            K->l2sqr_ny(dist, xq, y, d, cn);
            size_t nc = K->filter_less(dist, cn, nextafterf(hk[0], HUGE_VALF), cand);
            for (size_t c = 0; c < nc; c++)
                if (!SEEDED(c0 + cand[c]))
                    vdx_heap_push(k, hk, hi, dist[cand[c]], c0 + cand[c]);
        } else { /* scores above -(worst key) can enter */
            K->inner_product_ny(dist, xq, y, d, cn);
            size_t nc = K->filter_greater(dist, cn, nextafterf(-hk[0], -HUGE_VALF), cand);
            for (size_t c = 0; c < nc; c++)
                if (!SEEDED(c0 + cand[c]))
                    vdx_heap_push(k, hk, hi, -dist[cand[c]], c0 + cand[c]);
        }
    }
#undef SEEDED
}

static vdx_status search_scan(const vdx_flat *f, int64_t n, const float *x,
                              int64_t k, const vdx_selector *sel, float *D,
                              vdx_idx_t *I) {
    const vdx_index *ix = &f->base;
    const int64_t nb = ix->ntotal;
    const int64_t d = ix->d;
    /* small calls stay on this thread (threads.h) */
    int nthreads = vdx_nthreads_for((double)n * (double)nb * (double)d / 8);
    /* split the database when there are fewer queries than threads */
    int split = n < 2 * nthreads && nb >= 4 * FLAT_SCAN_CHUNK && nthreads > 1;
    if (!split) {
        float *scratch = vdx_aligned_alloc((size_t)nthreads,
                                           2 * FLAT_SCAN_CHUNK * sizeof(float));
        if (!scratch) return VDX_ERR_OUT_OF_MEMORY;
#pragma omp parallel for schedule(dynamic, 1) if (nthreads > 1) num_threads(nthreads)
        for (int64_t q = 0; q < n; q++) {
            float *dist = scratch + (size_t)omp_get_thread_num() * 2 *
                                        FLAT_SCAN_CHUNK;
            vdx_heap_init(k, D + q * k, I + q * k);
            scan_range(f, x + q * d, 0, nb, k, sel, D + q * k, I + q * k,
                       dist, (uint32_t *)(dist + FLAT_SCAN_CHUNK));
            finish_heap(ix, k, D + q * k, I + q * k, 0);
        }
        vdx_aligned_free(scratch);
        return VDX_OK;
    }
    /* per-thread heaps for all queries, merged afterwards */
    size_t heap_sz;
    if (!vdx_mul_ok((size_t)n, (size_t)k, &heap_sz))
        return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "n * k overflows");
    float *tk = vdx_malloc_array((size_t)nthreads * heap_sz, sizeof(float));
    vdx_idx_t *ti = vdx_malloc_array((size_t)nthreads * heap_sz,
                                     sizeof(vdx_idx_t));
    float *scratch = vdx_aligned_alloc((size_t)nthreads,
                                       2 * FLAT_SCAN_CHUNK * sizeof(float));
    if (!tk || !ti || !scratch) {
        vdx_free(tk);
        vdx_free(ti);
        vdx_aligned_free(scratch);
        return VDX_ERR_OUT_OF_MEMORY;
    }
#pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t per = (nb + nt - 1) / nt;
        int64_t b0 = VDX_MIN(nb, (int64_t)t * per), b1 = VDX_MIN(nb, b0 + per);
        float *dist = scratch + (size_t)t * 2 * FLAT_SCAN_CHUNK;
        for (int64_t q = 0; q < n; q++) {
            float *hk = tk + (size_t)t * heap_sz + q * k;
            vdx_idx_t *hi = ti + (size_t)t * heap_sz + q * k;
            vdx_heap_init(k, hk, hi);
            scan_range(f, x + q * d, b0, b1, k, sel, hk, hi, dist,
                       (uint32_t *)(dist + FLAT_SCAN_CHUNK));
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n; q++) {
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            memcpy(hk, tk + q * k, (size_t)k * sizeof(float));
            memcpy(hi, ti + q * k, (size_t)k * sizeof(vdx_idx_t));
            for (int u = 1; u < nt; u++)
                vdx_heap_merge(k, hk, hi, tk + (size_t)u * heap_sz + q * k,
                               ti + (size_t)u * heap_sz + q * k);
            finish_heap(ix, k, hk, hi, 0);
        }
    }
    vdx_free(tk);
    vdx_free(ti);
    vdx_aligned_free(scratch);
    return VDX_OK;
}

static vdx_status flat_search(const vdx_index *ix, int64_t n, const float *x,
                              int64_t k, const vdx_search_params *p, float *D,
                              vdx_idx_t *I) {
    const vdx_flat *f = (const vdx_flat *)ix;
    const vdx_selector *sel = p ? p->sel : NULL;
    if (n >= FLAT_BLAS_MIN_QUERIES && ix->ntotal > 0)
        return search_blas(f, n, x, k, sel, D, I);
    return search_scan(f, n, x, k, sel, D, I);
}

/* ---- range search ------------------------------------------------------ */

static vdx_status flat_range_search(const vdx_index *ix, int64_t n,
                                    const float *x, float radius,
                                    const vdx_search_params *p,
                                    vdx_range_builder *rb) {
    const vdx_flat *f = (const vdx_flat *)ix;
    const vdx_selector *sel = p ? p->sel : NULL;
    const vdx_kernels *K = vdx_kernels_get();
    const int64_t nb = ix->ntotal, d = ix->d;
    const int is_l2 = ix->metric == VDX_METRIC_L2;
    vdx_status st = VDX_OK;
    /* one query per iteration; each query's list is only touched by the
     * thread that owns it */
    const int nthreads = vdx_nthreads_for((double)n * (double)nb * (double)d / 8);
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads)
    {
        float *dist = vdx_aligned_alloc(FLAT_SCAN_CHUNK, sizeof(float));
        if (!dist) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            if (!dist || st) continue;
            const float *xq = x + q * d;
            for (int64_t c0 = 0; c0 < nb; c0 += FLAT_SCAN_CHUNK) {
                size_t cn = (size_t)VDX_MIN(FLAT_SCAN_CHUNK, nb - c0);
                const float *y = f->xb + (size_t)c0 * (size_t)d;
                if (is_l2) K->l2sqr_ny(dist, xq, y, (size_t)d, cn);
                else K->inner_product_ny(dist, xq, y, (size_t)d, cn);
                if (vdx_range_collect(rb, q, dist, cn, !is_l2, 0, radius, NULL,
                                      c0, sel)) {
#pragma omp atomic write
                    st = VDX_ERR_OUT_OF_MEMORY;
                    break;
                }
            }
        }
        vdx_aligned_free(dist);
    }
    return st;
}

/* ---- reconstruct, remove ----------------------------------------------- */

static vdx_status flat_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                   float *out) {
    const vdx_flat *f = (const vdx_flat *)ix;
    vdx_status kst = vdx_check_key(ix, key);
    if (kst) return kst;
    memcpy(out, f->xb + (size_t)key * (size_t)ix->d,
           (size_t)ix->d * sizeof(float));
    return VDX_OK;
}

static vdx_status flat_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                     int64_t ni, float *out) {
    const vdx_flat *f = (const vdx_flat *)ix;
    memcpy(out, f->xb + (size_t)i0 * (size_t)ix->d,
           (size_t)ni * (size_t)ix->d * sizeof(float));
    return VDX_OK;
}

/* Compacts the kept vectors to the front, preserving their order (FAISS's
 * semantics: later sequential ids shift down). */
static vdx_status flat_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                  int64_t *nremoved) {
    vdx_flat *f = (vdx_flat *)ix;
    size_t d = (size_t)ix->d;
    int64_t j = 0;
    if (f->map) {
        /* copy-on-write: the file map is never written through, and only
         * a removal that removes something pays for the copy */
        int64_t first = 0;
        while (first < ix->ntotal && !vdx_sel_member(sel, first)) first++;
        if (first == ix->ntotal) {
            *nremoved = 0;
            return VDX_OK;
        }
        vdx_status st = vdx_flat_unmap(f);
        if (st) return st;
    }
    for (int64_t i = 0; i < ix->ntotal; i++) {
        if (vdx_sel_member(sel, i)) continue;
        if (i != j) {
            memcpy(f->xb + (size_t)j * d, f->xb + (size_t)i * d,
                   d * sizeof(float));
            if (f->norms) f->norms[j] = f->norms[i];
        }
        j++;
    }
    *nremoved = ix->ntotal - j;
    ix->ntotal = j;
    return VDX_OK;
}

static void flat_destroy(vdx_index *ix) {
    vdx_flat *f = (vdx_flat *)ix;
    flat_release(f);
    vdx_aligned_free(f->norms);
    vdx_free(f);
}

#define FLAT_OPS(name)                                                       \
    {name,           NULL,           flat_add,         flat_search,          \
     flat_range_search, flat_reset,  flat_reconstruct, flat_reconstruct_n,   \
     flat_remove_ids, flat_destroy}

static const vdx_index_ops flat_ops_l2 = FLAT_OPS("IndexFlatL2");
static const vdx_index_ops flat_ops_ip = FLAT_OPS("IndexFlatIP");

vdx_status vdx_index_flat_new(int64_t d, vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (d <= 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dimension d=%lld must be in 1..%lld", (long long)d,
                         (long long)VDX_MAX_DIM);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "metric %d is not supported (0 = inner product, "
                         "1 = L2)",
                         (int)metric);
    vdx_flat *f = vdx_calloc(1, sizeof *f);
    if (!f) return VDX_ERR_OUT_OF_MEMORY;
    f->base.ops = metric == VDX_METRIC_L2 ? &flat_ops_l2 : &flat_ops_ip;
    f->base.d = d;
    f->base.is_trained = 1;
    f->base.metric = metric;
    *out = &f->base;
    return VDX_OK;
}

const float *vdx_index_flat_data(const vdx_index *ix) {
    return vdx_is_flat(ix) ? ((const vdx_flat *)ix)->xb : NULL;
}
