/*
 * lsh.c — IndexLSH, as FAISS defines it: each vector becomes nbits sign
 * bits of
 *     y = R x  (rotate_data: a random rotation d -> nbits; else the first
 *               nbits components of x, which needs d >= nbits)
 * minus per-bit thresholds (train_thresholds: the medians of the training
 * vectors' y; else 0).  Bit j of a code (y_j - threshold_j >= 0) is bit j % 8 of
 * byte j / 8, as FAISS packs it.  Search is exhaustive by Hamming distance
 * (popcount of XORed 64-bit words; a POPCNT build of the scan is picked at
 * run time on x86), distances are the integer bit counts as float32, ties go
 * to the lower id, and empty result slots hold label -1 and distance
 * 2147483647 (FAISS's int heap sentinel converted to float).
 *
 * The rotation is FAISS's own for the same seed (see make_rotation), so a
 * vecdex IndexLSH encodes exactly as FAISS's; it is stored in files too.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "index_lsh.h"
#include "common/blas.h"
#include "common/rng.h"
#include "quant/transform.h"
#include "common/threads.h"
#include "common/topk.h"
#include "simd/kernels.h"

#define LSH_ROT_SEED 5

static const vdx_index_ops lsh_ops;

int vdx_is_lsh(const vdx_index *ix) { return ix && ix->ops == &lsh_ops; }

vdx_status vdx_lsh_reserve(vdx_lsh *l, int64_t n) {
    if (n <= l->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, l->cap + l->cap / 2);
    uint8_t *c = vdx_realloc_array(l->codes, (size_t)nc, l->code_size);
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    l->codes = c;
    l->cap = nc;
    return VDX_OK;
}

/* ---- rotation ------------------------------------------------------------ */

/* A (nbits x d): the matrix FAISS's RandomRotationMatrix(d, nbits).init(5)
 * draws (FAISS's IndexLSH seed), bit for bit: normal draws from FAISS's
 * generator, then a LAPACK QR; orthonormal rows when nbits <= d, else the
 * first d columns of an nbits x nbits orthonormal matrix. */
static vdx_status make_rotation(int64_t d, int nbits, float **out) {
    const int64_t len = nbits <= d ? d : nbits;
    float *q = vdx_malloc_array((size_t)nbits, (size_t)len * sizeof(float));
    if (!q) return VDX_ERR_OUT_OF_MEMORY;
    vdx_randn(q, (size_t)nbits * (size_t)len, LSH_ROT_SEED);
    vdx_status st = vdx_matrix_qr(len, nbits, q);
    if (st) {
        vdx_free(q);
        return st;
    }
    if (nbits > d)
        for (int64_t i = 0; i < nbits; i++)
            memmove(q + i * d, q + i * len, (size_t)d * sizeof(float));
    *out = q;
    return VDX_OK;
}

/* ---- encoding ------------------------------------------------------------ */

/* y (n x nbits) = the pre-threshold values of the n vectors x: one sgemm
 * with the rotation (as FAISS's LinearTransform), or the first nbits
 * components. */
static void project_n(const vdx_lsh *l, int64_t n, const float *x, float *y) {
    const int64_t d = l->base.d;
    const int nb = l->nbits;
    if (l->rotate_data && l->A) {
        vdx_gemm_xyt((int)n, nb, (int)d, 1.0f, x, l->A, y);
        if (l->b)
            for (int64_t i = 0; i < n; i++)
                for (int j = 0; j < nb; j++) y[i * nb + j] += l->b[j];
    } else {
        for (int64_t i = 0; i < n; i++)
            memcpy(y + i * nb, x + i * d, (size_t)nb * sizeof(float));
    }
}

static void bits_of(const vdx_lsh *l, const float *y, uint8_t *code) {
    const float *t = l->train_thresholds ? l->thresholds : NULL;
    const int nb = l->nbits;
    /* FAISS: x - t >= 0, which is exactly x >= t in IEEE arithmetic; eight
     * compares per byte, branch-free so that the compiler vectorises them */
    int j0 = 0;
    for (; j0 + 8 <= nb; j0 += 8) {
        unsigned b = 0;
        if (t)
            for (int i = 0; i < 8; i++) b |= (unsigned)(y[j0 + i] >= t[j0 + i]) << i;
        else
            for (int i = 0; i < 8; i++) b |= (unsigned)(y[j0 + i] >= 0.0f) << i;
        code[j0 >> 3] = (uint8_t)b;
    }
    if (j0 < nb) {
        unsigned b = 0;
        for (int j = j0; j < nb; j++)
            b |= (unsigned)(y[j] >= (t ? t[j] : 0.0f)) << (j - j0);
        code[j0 >> 3] = (uint8_t)b;
        for (size_t c = (size_t)(j0 >> 3) + 1; c < l->code_size; c++) code[c] = 0;
    }
}

/* Rows per projection block (bounded so that a block stays small). */
static int64_t enc_block(const vdx_lsh *l) {
    return VDX_MAX(1, VDX_MIN(256, ((int64_t)1 << 18) / l->nbits));
}

static vdx_status encode_n(const vdx_lsh *l, int64_t n, const float *x,
                           uint8_t *codes) {
    const int64_t d = l->base.d;
    if (!(l->rotate_data && l->A)) {
        /* the first nbits components, thresholded in place: no copy */
#pragma omp parallel for schedule(static) if (n * l->nbits > 65536) num_threads(vdx_nthreads())
        for (int64_t i = 0; i < n; i++)
            bits_of(l, x + (size_t)i * (size_t)d, codes + (size_t)i * l->code_size);
        return VDX_OK;
    }
    const int64_t B = enc_block(l), nblk = (n + B - 1) / B;
    const int nthreads = nblk > 1 ? vdx_nthreads() : 1;
    float *y = vdx_malloc_array((size_t)nthreads, (size_t)(B * l->nbits) * sizeof(float));
    if (!y) return VDX_ERR_OUT_OF_MEMORY;
#pragma omp parallel for schedule(dynamic, 1) if (nblk > 1) num_threads(nthreads)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t i0 = b * B, bn = VDX_MIN(B, n - i0);
        float *yt = y + (size_t)omp_get_thread_num() * (size_t)(B * l->nbits);
        project_n(l, bn, x + (size_t)i0 * (size_t)d, yt);
        for (int64_t i = 0; i < bn; i++)
            bits_of(l, yt + i * l->nbits, codes + (size_t)(i0 + i) * l->code_size);
    }
    vdx_free(y);
    return VDX_OK;
}

/* The k-th smallest of v[0..n) (0-based; v is reordered): Hoare's
 * selection with a median-of-three pivot, expected O(n) where a sort takes
 * O(n log n).  The values are finite (checked at the door). */
static float select_kth(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], c = v[hi];
        float p = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        /* now v[lo..j] <= p <= v[i..hi], and v[j+1..i-1] == p */
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

/* The median as FAISS takes it: the middle value, or the mean of the two
 * middle values when n is even. */
static float median_of(float *v, int64_t n) {
    float hi = select_kth(v, n, n / 2);
    if (n % 2) return hi;
    /* the lower middle is the largest of v[0..n/2), all <= hi */
    float lo = v[0];
    for (int64_t i = 1; i < n / 2; i++)
        if (v[i] > lo) lo = v[i];
    return (lo + hi) / 2;
}

static vdx_status lsh_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_lsh *l = (vdx_lsh *)ix;
    if (!l->train_thresholds) return VDX_OK; /* nothing to learn */
    vdx_status st0 = vdx_refuse_populated_train(ix);
    if (st0) return st0;
    if (n < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexLSH: training needs at least 1 vector");
    const int nb = l->nbits;
    float *y = vdx_malloc_array((size_t)n, (size_t)nb * sizeof(float));
    float *col = vdx_malloc_array((size_t)n, sizeof(float));
    float *t = l->thresholds ? l->thresholds : vdx_malloc_array((size_t)nb, sizeof(float));
    if (!y || !col || !t) {
        vdx_free(y);
        vdx_free(col);
        if (t != l->thresholds) vdx_free(t);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    /* y holds every row: few big sgemm calls, not one per small block
     * (each BLAS call opens its own thread team, which costs a scheduler
     * time slice on a loaded machine) */
    const int64_t B = VDX_MAX(1, ((int64_t)1 << 26) / VDX_MAX(nb, (int64_t)ix->d));
    for (int64_t i0 = 0; i0 < n; i0 += B)
        project_n(l, VDX_MIN(B, n - i0), x + (size_t)i0 * (size_t)ix->d,
                  y + (size_t)i0 * nb);
    for (int j = 0; j < nb; j++) {
        for (int64_t i = 0; i < n; i++) col[i] = y[(size_t)i * nb + j];
        t[j] = median_of(col, n);
    }
    vdx_free(y);
    vdx_free(col);
    l->thresholds = t;
    ix->is_trained = 1;
    return VDX_OK;
}

static vdx_status lsh_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    vdx_lsh *l = (vdx_lsh *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexLSH: add_with_ids is not supported (wrap the "
                         "index in an IndexIDMap)");
    vdx_status st = vdx_lsh_reserve(l, ix->ntotal + n);
    if (st) return st;
    st = encode_n(l, n, x, l->codes + (size_t)ix->ntotal * l->code_size);
    if (!st) ix->ntotal += n;
    return st;
}

/* ---- Hamming scan ---------------------------------------------------------- */

#if defined(__GNUC__)
#define LSH_INLINE static inline __attribute__((always_inline))
#else
#define LSH_INLINE static inline
#endif


/* Hamming distances of the query code q to codes[0 .. n) that are <= thr:
 * their positions into cand and distances into dist (in order); returns
 * their count.  Loops specialised for the code sizes of 64 / 128 / 256
 * bits load each word straight from the code (no copy through the stack)
 * and test the bound inline, so that the common case (farther than the
 * current k-th) costs the popcounts and one compare. */
static inline uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#define HAM_FIXED(W)                                                        \
    do {                                                                    \
        uint64_t q0 = ld64(q), q1 = (W) > 1 ? ld64(q + 8) : 0,              \
                 q2 = (W) > 2 ? ld64(q + 16) : 0,                           \
                 q3 = (W) > 2 ? ld64(q + 24) : 0;                           \
        for (size_t i = 0; i < n; i++) {                                    \
            const uint8_t *c = codes + i * 8 * (W);                         \
            uint32_t h = (uint32_t)__builtin_popcountll(ld64(c) ^ q0);      \
            if ((W) > 1)                                                    \
                h += (uint32_t)__builtin_popcountll(ld64(c + 8) ^ q1);      \
            if ((W) > 2)                                                    \
                h += (uint32_t)__builtin_popcountll(ld64(c + 16) ^ q2) +    \
                     (uint32_t)__builtin_popcountll(ld64(c + 24) ^ q3);     \
            if (h <= thr) {                                                 \
                cand[nc] = (uint32_t)i;                                     \
                dist[nc++] = h;                                             \
            }                                                               \
        }                                                                   \
    } while (0)

/* Codes shorter than 8 bytes: byte-exact loads of a fixed size. */
#define HAM_SMALL(B)                                                        \
    do {                                                                    \
        uint64_t qv = 0;                                                    \
        memcpy(&qv, q, (B));                                                \
        for (size_t i = 0; i < n; i++) {                                    \
            uint64_t c = 0;                                                 \
            memcpy(&c, codes + i * (B), (B));                               \
            uint32_t h = (uint32_t)__builtin_popcountll(c ^ qv);            \
            if (h <= thr) {                                                 \
                cand[nc] = (uint32_t)i;                                     \
                dist[nc++] = h;                                             \
            }                                                               \
        }                                                                   \
    } while (0)

LSH_INLINE size_t hamming_body(const uint8_t *q, const uint8_t *codes,
                               size_t n, size_t cs, uint32_t thr,
                               uint32_t *cand, uint32_t *dist) {
    size_t nc = 0;
    switch (cs) {
    case 1: HAM_SMALL(1); return nc;
    case 2: HAM_SMALL(2); return nc;
    case 3: HAM_SMALL(3); return nc;
    case 4: HAM_SMALL(4); return nc;
    case 5: HAM_SMALL(5); return nc;
    case 6: HAM_SMALL(6); return nc;
    case 7: HAM_SMALL(7); return nc;
    case 8: HAM_FIXED(1); return nc;
    case 16: HAM_FIXED(2); return nc;
    case 32: HAM_FIXED(4); return nc;
    default: break;
    }
    /* cs > 8: whole words, then the last 8 bytes (overlapping the words
     * already counted) with the overlap masked off */
    const size_t nw = cs / 8, tail = cs % 8;
    const uint64_t mask = tail ? ~(uint64_t)0 << (8 * (8 - tail)) : 0;
    const uint64_t ql = ld64(q + cs - 8);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        uint32_t h = 0;
        for (size_t w = 0; w < nw; w++)
            h += (uint32_t)__builtin_popcountll(ld64(c + w * 8) ^ ld64(q + w * 8));
        if (tail)
            h += (uint32_t)__builtin_popcountll((ld64(c + cs - 8) ^ ql) & mask);
        if (h <= thr) {
            cand[nc] = (uint32_t)i;
            dist[nc++] = h;
        }
    }
    return nc;
}

static size_t hamming_generic(const uint8_t *q, const uint8_t *codes,
                              size_t n, size_t cs, uint32_t thr,
                              uint32_t *cand, uint32_t *dist) {
    return hamming_body(q, codes, n, cs, thr, cand, dist);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("popcnt"))) static size_t
hamming_popcnt(const uint8_t *q, const uint8_t *codes, size_t n, size_t cs,
               uint32_t thr, uint32_t *cand, uint32_t *dist) {
    return hamming_body(q, codes, n, cs, thr, cand, dist);
}
#endif

typedef size_t (*hamming_fn)(const uint8_t *, const uint8_t *, size_t, size_t,
                             uint32_t, uint32_t *, uint32_t *);

static hamming_fn pick_hamming(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("popcnt")) return hamming_popcnt;
#endif
    return hamming_generic;
}

#define LSH_CHUNK 1024
#define LSH_EMPTY_DIST 2147483647.0f

/* Offers codes [i0, i1) to the heap (hk, hi) of query code qq; dd holds
 * 2 * LSH_CHUNK entries (candidates and their distances). */
static void scan_range(const vdx_lsh *l, hamming_fn ham, const uint8_t *qq,
                       int64_t i0, int64_t i1, int64_t k,
                       const vdx_selector *sel, float *hk, vdx_idx_t *hi,
                       uint32_t *dd) {
    const size_t cs = l->code_size;
    uint32_t *cand = dd, *cd = dd + LSH_CHUNK;
    /* the heap's worst distance as an integer (distances are < 2^31) */
    uint32_t thr = isinf(hk[0]) ? UINT32_MAX : (uint32_t)hk[0];
    for (int64_t c0 = i0; c0 < i1; c0 += LSH_CHUNK) {
        size_t cn = (size_t)VDX_MIN(LSH_CHUNK, i1 - c0);
        size_t nc = ham(qq, l->codes + (size_t)c0 * cs, cn, cs, thr, cand, cd);
        for (size_t j = 0; j < nc; j++) {
            if (cd[j] > thr) continue; /* the bound moved since */
            vdx_idx_t id = c0 + (int64_t)cand[j];
            if (sel && !vdx_sel_member(sel, id)) continue;
            vdx_heap_push(k, hk, hi, (float)cd[j], id);
            thr = isinf(hk[0]) ? UINT32_MAX : (uint32_t)hk[0];
        }
    }
}

static void finish(int64_t k, float *hk, vdx_idx_t *hi) {
    vdx_topk_finish(k, hk, hi, 0, 0);
    for (int64_t j = 0; j < k; j++)
        if (hi[j] < 0) hk[j] = LSH_EMPTY_DIST;
}

static vdx_status lsh_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *prm,
                             float *D, vdx_idx_t *I) {
    const vdx_lsh *l = (const vdx_lsh *)ix;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t cs = l->code_size;
    const int64_t nb = ix->ntotal;
    const hamming_fn ham = pick_hamming();
    /* a popcount per 8 code bytes */
    const int nthreads = vdx_nthreads_for((double)n * (double)nb * (double)(cs / 8 + 1));
    /* split the database when there are fewer queries than threads */
    const int split = n < nthreads && nthreads > 1 && nb >= 4 * LSH_CHUNK;
    uint8_t *qc = vdx_malloc_array((size_t)n, cs);
    uint32_t *dist = vdx_malloc_array((size_t)nthreads, 2 * LSH_CHUNK * sizeof(uint32_t));
    float *tk = split ? vdx_malloc_array((size_t)nthreads, (size_t)k * sizeof(float)) : NULL;
    vdx_idx_t *ti = split ? vdx_malloc_array((size_t)nthreads, (size_t)k * sizeof(vdx_idx_t)) : NULL;
    vdx_status st = (!qc || !dist || (split && (!tk || !ti)))
                        ? VDX_ERR_OUT_OF_MEMORY : VDX_OK;
    if (!st) st = encode_n(l, n, x, qc);
    if (!st && !split) {
        /* cache blocking: each thread takes a slice of the queries and
         * walks the database in blocks of about 256 KiB, scanning each
         * block for all its queries while the block is in cache */
        const int64_t blk = VDX_MAX((int64_t)LSH_CHUNK,
                                    (int64_t)((256 << 10) / cs) / LSH_CHUNK *
                                        LSH_CHUNK);
        const int64_t qb = 32; /* queries per slice */
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && nthreads > 1) num_threads(nthreads)
        for (int64_t q0 = 0; q0 < n; q0 += qb) {
            int64_t q1 = VDX_MIN(n, q0 + qb);
            uint32_t *dd = dist + (size_t)omp_get_thread_num() * 2 * LSH_CHUNK;
            for (int64_t q = q0; q < q1; q++) vdx_heap_init(k, D + q * k, I + q * k);
            for (int64_t b0 = 0; b0 < nb; b0 += blk) {
                int64_t b1 = VDX_MIN(nb, b0 + blk);
                for (int64_t q = q0; q < q1; q++)
                    scan_range(l, ham, qc + (size_t)q * cs, b0, b1, k, sel,
                               D + q * k, I + q * k, dd);
            }
            for (int64_t q = q0; q < q1; q++) finish(k, D + q * k, I + q * k);
        }
    } else if (!st) {
        for (int64_t q = 0; q < n; q++) {
            /* all heaps, in case the team is smaller than asked */
            vdx_heap_init((int64_t)nthreads * k, tk, ti);
#pragma omp parallel num_threads(nthreads)
            {
                int t = omp_get_thread_num(), nt = omp_get_num_threads();
                float *hk = tk + (size_t)t * k;
                vdx_idx_t *hi = ti + (size_t)t * k;
                int64_t per = (nb + nt - 1) / nt;
                int64_t i0 = VDX_MIN(nb, per * t), i1 = VDX_MIN(nb, i0 + per);
                scan_range(l, ham, qc + (size_t)q * cs, i0, i1, k, sel, hk, hi,
                           dist + (size_t)t * 2 * LSH_CHUNK);
            }
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            memcpy(hk, tk, (size_t)k * sizeof(float));
            memcpy(hi, ti, (size_t)k * sizeof(vdx_idx_t));
            for (int t = 1; t < nthreads; t++)
                vdx_heap_merge(k, hk, hi, tk + (size_t)t * k, ti + (size_t)t * k);
            finish(k, hk, hi);
        }
    }
    vdx_free(qc);
    vdx_free(dist);
    vdx_free(tk);
    vdx_free(ti);
    return st;
}

/* Hits with Hamming distance < radius. */
static vdx_status lsh_range_search(const vdx_index *ix, int64_t n,
                                   const float *x, float radius,
                                   const vdx_search_params *prm,
                                   vdx_range_builder *rb) {
    const vdx_lsh *l = (const vdx_lsh *)ix;
    const vdx_selector *sel = prm ? prm->sel : NULL;
    const size_t cs = l->code_size;
    const hamming_fn ham = pick_hamming();
    const int nthreads =
        vdx_nthreads_for((double)n * (double)ix->ntotal * (double)(cs / 8 + 1));
    uint8_t *qc = vdx_malloc_array((size_t)n, cs);
    uint32_t *dist = vdx_malloc_array((size_t)nthreads, 2 * LSH_CHUNK * sizeof(uint32_t));
    vdx_status st = (!qc || !dist) ? VDX_ERR_OUT_OF_MEMORY : VDX_OK;
    if (!st) st = encode_n(l, n, x, qc);
    /* hits: integer distances h < radius, i.e. h <= thr */
    const int none = !(radius > 0);
    const uint32_t thr = none ? 0
                         : radius > 4294967295.0f ? UINT32_MAX
                                                  : (uint32_t)ceilf(radius) - 1;
    if (!st && !none) {
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && nthreads > 1) num_threads(nthreads)
        for (int64_t q = 0; q < n; q++) {
            uint32_t *dd = dist + (size_t)omp_get_thread_num() * 2 * LSH_CHUNK;
            for (int64_t c0 = 0; c0 < ix->ntotal; c0 += LSH_CHUNK) {
                size_t cn = (size_t)VDX_MIN(LSH_CHUNK, ix->ntotal - c0);
                size_t nc = ham(qc + (size_t)q * cs, l->codes + (size_t)c0 * cs,
                                cn, cs, thr, dd, dd + LSH_CHUNK);
                for (size_t j = 0; j < nc; j++) {
                    float v = (float)dd[LSH_CHUNK + j];
                    vdx_idx_t id = c0 + (int64_t)dd[j];
                    if (!(v < radius)) continue;
                    if (sel && !vdx_sel_member(sel, id)) continue;
                    if (vdx_range_builder_add(rb, q, v, id)) {
#pragma omp atomic write
                        st = VDX_ERR_OUT_OF_MEMORY;
                    }
                }
            }
        }
    }
    vdx_free(qc);
    vdx_free(dist);
    return st;
}

static vdx_status lsh_reset(vdx_index *ix) {
    vdx_lsh *l = (vdx_lsh *)ix;
    vdx_free(l->codes);
    l->codes = NULL;
    l->cap = 0;
    ix->ntotal = 0;
    return VDX_OK;
}

/* As FAISS (IndexFlatCodes): the kept codes are compacted and renumbered. */
static vdx_status lsh_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                 int64_t *nremoved) {
    vdx_lsh *c = (vdx_lsh *)ix;
    return vdx_codes_remove_ids(ix, c->codes, c->code_size, sel, nremoved);
}

static void lsh_destroy(vdx_index *ix) {
    vdx_lsh *l = (vdx_lsh *)ix;
    vdx_free(l->A);
    vdx_free(l->b);
    vdx_free(l->thresholds);
    vdx_free(l->codes);
    vdx_free(l);
}

static const vdx_index_ops lsh_ops = {
    "IndexLSH",       lsh_train, lsh_add, lsh_search,
    lsh_range_search, lsh_reset, NULL,    NULL,
    lsh_remove_ids,   lsh_destroy};

/* ---- public API -------------------------------------------------------------- */

vdx_status vdx_index_lsh_new(int64_t d, int nbits, int rotate_data,
                             int train_thresholds, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_lsh *l = NULL;
    vdx_status st = vdx_lsh_alloc(d, nbits, rotate_data, train_thresholds, 1, &l);
    if (!st) *out = &l->base;
    return st;
}

vdx_status vdx_lsh_alloc(int64_t d, int nbits, int rotate_data,
                         int train_thresholds, int make_rot, vdx_lsh **out) {
    if (d <= 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dimension d=%lld must be in 1..%lld", (long long)d,
                         (long long)VDX_MAX_DIM);
    if (nbits < 1 || nbits > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexLSH: nbits=%d must be in 1..%lld", nbits,
                         (long long)VDX_MAX_DIM);
    if (!rotate_data && nbits > d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexLSH: without rotate_data nbits=%d must be <= "
                         "d=%lld",
                         nbits, (long long)d);
    if ((uint64_t)nbits * (uint64_t)d > ((uint64_t)1 << 31) && rotate_data)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "IndexLSH: rotation of %d x %lld is too large",
                         nbits, (long long)d);
    vdx_lsh *l = vdx_calloc(1, sizeof *l);
    if (!l) return VDX_ERR_OUT_OF_MEMORY;
    l->base.ops = &lsh_ops;
    l->base.d = d;
    l->base.metric = VDX_METRIC_L2; /* what FAISS stores */
    l->base.is_trained = !train_thresholds;
    l->nbits = nbits;
    l->rotate_data = rotate_data != 0;
    l->train_thresholds = train_thresholds != 0;
    l->code_size = ((size_t)nbits + 7) / 8;
    if (l->rotate_data && make_rot) {
        vdx_status st = make_rotation(d, nbits, &l->A);
        if (st) {
            vdx_free(l);
            return st;
        }
        l->rot_trained = 1;
    }
    *out = l;
    return VDX_OK;
}

static vdx_lsh *as_lsh(const vdx_index *ix) {
    return vdx_is_lsh(ix) ? (vdx_lsh *)ix : NULL;
}

int vdx_index_lsh_nbits(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->nbits : 0;
}
int vdx_index_lsh_rotate_data(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->rotate_data : 0;
}
int vdx_index_lsh_train_thresholds(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->train_thresholds : 0;
}
size_t vdx_index_lsh_code_size(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->code_size : 0;
}
const float *vdx_index_lsh_thresholds(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->thresholds : NULL;
}
const float *vdx_index_lsh_rotation(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->A : NULL;
}
const uint8_t *vdx_index_lsh_codes(const vdx_index *ix) {
    vdx_lsh *l = as_lsh(ix);
    return l ? l->codes : NULL;
}

vdx_status vdx_index_lsh_encode(const vdx_index *ix, int64_t n,
                                const float *x, uint8_t *codes) {
    vdx_clear_error();
    vdx_lsh *l = as_lsh(ix);
    if (!l) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not an IndexLSH");
    if (n < 0 || (n > 0 && (!x || !codes)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "sa_encode: bad n=%lld or NULL array", (long long)n);
    if (!ix->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "IndexLSH: the index must be trained before encoding");
    vdx_status st = vdx_check_vectors(x, n, ix->d, "encoded vectors");
    if (st || n == 0) return st;
    vdx_team_begin();
    st = encode_n(l, n, x, codes);
    vdx_team_end();
    return st;
}
