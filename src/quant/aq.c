/*
 * aq.c — what every additive quantizer shares (see aq.h): sizes, code
 * packing, decoding, look-up tables and LUT distances, the norm
 * quantizers of the search types, the codebook tables.  The encoders and
 * trainers of the kinds are in rq.c, lsq.c and paq.c.
 *
 * Norm quantizers (FAISS's train_norm / encode_norm): float32 bits; 8 or
 * 4-bit uniform over [norm_min, norm_max] (code floor((x - min) / (max -
 * min) * 2^b), clamped; decoded at the centre of its cell); 8 or 4-bit
 * non-uniform, the centroids of the optimal 1-D k-means of the training
 * norms (computed exactly by dynamic programming over the sorted values);
 * and for the fast-scan kinds a 2 x 4-bit RQ or LSQ of the norms, whose
 * 256 sums form the table the code indexes.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "aq.h"
#include "common/blas.h"
#include "common/rng.h"
#include "common/threads.h"
#include "simd/kernels.h"

int vdx_aq_norm_bits_of(int st) {
    switch (st) {
    case VDX_AQ_ST_DECOMPRESS:
    case VDX_AQ_ST_LUT_NONORM:
    case VDX_AQ_ST_NORM_FROM_LUT: return 0;
    case VDX_AQ_ST_NORM_FLOAT: return 32;
    case VDX_AQ_ST_NORM_QINT8:
    case VDX_AQ_ST_NORM_CQINT8:
    case VDX_AQ_ST_NORM_LSQ2X4:
    case VDX_AQ_ST_NORM_RQ2X4: return 8;
    case VDX_AQ_ST_NORM_QINT4:
    case VDX_AQ_ST_NORM_CQINT4: return 4;
    default: return -1;
    }
}

/* ---- construction -------------------------------------------------------- */

vdx_status vdx_aq_set_derived(vdx_aq *aq) {
    int nb = vdx_aq_norm_bits_of(aq->search_type);
    if (nb < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "additive quantizer: unknown search type %d (expected "
                         "0..9)",
                         aq->search_type);
    int64_t off = 0, bits = 0;
    aq->only_8bit = 1;
    for (int64_t m = 0; m < aq->M; m++) {
        aq->cb_off[m] = off;
        off += (int64_t)1 << aq->nbits[m];
        bits += aq->nbits[m];
        if (aq->nbits[m] != 8) aq->only_8bit = 0;
    }
    aq->cb_off[aq->M] = off;
    aq->total_cb = off;
    aq->norm_bits = nb;
    aq->tot_bits = bits + nb;
    aq->code_size = (size_t)((aq->tot_bits + 7) / 8);
    int64_t per = aq->M / aq->nsplits;
    for (int64_t m = 0; m < aq->M; m++)
        aq->dim0[m] = aq->nsplits > 1 ? (m / per) * aq->ew : 0;
    return VDX_OK;
}

vdx_status vdx_aq_make(int kind, int64_t d, int64_t M, const int *nbits,
                       int search_type, vdx_aq **out) {
    *out = NULL;
    if (d <= 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "additive quantizer: dimension d=%lld must be in "
                         "1..%lld",
                         (long long)d, (long long)VDX_MAX_DIM);
    if (M < 1 || M > VDX_AQ_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "additive quantizer: M=%lld must be in 1..%d",
                         (long long)M, VDX_AQ_M_MAX);
    for (int64_t m = 0; m < M; m++)
        if (nbits[m] < 1 || nbits[m] > VDX_AQ_NBITS_MAX)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "additive quantizer: nbits[%lld]=%d must be in "
                             "1..%d",
                             (long long)m, nbits[m], VDX_AQ_NBITS_MAX);
    if (vdx_aq_norm_bits_of(search_type) < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "additive quantizer: unknown search type %d (expected "
                         "0..9)",
                         search_type);
    vdx_aq *aq = vdx_calloc(1, sizeof *aq);
    if (!aq) return VDX_ERR_OUT_OF_MEMORY;
    aq->nbits = vdx_malloc_array((size_t)M, sizeof(int));
    aq->cb_off = vdx_malloc_array((size_t)M + 1, sizeof(int64_t));
    aq->dim0 = vdx_malloc_array((size_t)M, sizeof(int64_t));
    if (!aq->nbits || !aq->cb_off || !aq->dim0) {
        vdx_aq_destroy(aq);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    memcpy(aq->nbits, nbits, (size_t)M * sizeof(int));
    aq->kind = kind;
    aq->d = d;
    aq->M = M;
    aq->ew = d;
    aq->nsplits = 1;
    aq->search_type = search_type;
    aq->norm_min = NAN;
    aq->norm_max = NAN;
    aq->max_mem_distances = (uint64_t)5 << 30;
    /* RQ: FAISS's ResidualQuantizer and ProgressiveDimClusteringParameters */
    aq->train_type = VDX_RQ_TRAIN_PROGRESSIVE_DIM;
    aq->max_beam_size = 5;
    aq->niter_codebook_refine = 5;
    vdx_kmeans_params_init(&aq->cp);
    aq->cp.niter = 10;
    aq->progressive_dim_steps = 10;
    aq->apply_pca = 1;
    /* LSQ: FAISS's LocalSearchQuantizer */
    aq->K = (int64_t)1 << nbits[0];
    aq->train_iters = 25;
    aq->encode_ils_iters = 16;
    aq->train_ils_iters = 8;
    aq->icm_iters = 4;
    aq->p = 0.5f;
    aq->lambd = 1e-2f;
    aq->chunk_size = 10000;
    aq->random_seed = 0x12345;
    aq->nperts = 4;
    aq->update_codebooks_with_double = 1;
    vdx_status st = vdx_aq_set_derived(aq);
    if (st) {
        vdx_aq_destroy(aq);
        return st;
    }
    *out = aq;
    return VDX_OK;
}

vdx_status vdx_aq_alloc_codebooks(vdx_aq *aq) {
    if (aq->codebooks) return VDX_OK;
    aq->codebooks = vdx_malloc_array((size_t)aq->total_cb,
                                     (size_t)aq->ew * sizeof(float));
    return aq->codebooks ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
}

void vdx_aq_drop_tables(vdx_aq *aq) {
    vdx_free(aq->centroid_norms);
    vdx_free(aq->cross);
    aq->centroid_norms = NULL;
    aq->cross = NULL;
    aq->ncross = 0;
}

void vdx_aq_destroy(vdx_aq *aq) {
    if (!aq) return;
    for (int64_t s = 0; aq->sub && s < aq->nsplits; s++)
        vdx_aq_destroy(aq->sub[s]);
    vdx_free(aq->sub);
    vdx_free(aq->nbits);
    vdx_free(aq->cb_off);
    vdx_free(aq->dim0);
    vdx_free(aq->codebooks);
    vdx_free(aq->qnorm);
    vdx_free(aq->qnorm_perm);
    vdx_free(aq->norm_tabs);
    vdx_aq_drop_tables(aq);
    vdx_free(aq);
}

static vdx_status dup_floats(const float *src, size_t n, float **dst) {
    *dst = NULL;
    if (!src) return VDX_OK;
    *dst = vdx_malloc_array(n ? n : 1, sizeof(float));
    if (!*dst) return VDX_ERR_OUT_OF_MEMORY;
    memcpy(*dst, src, n * sizeof(float));
    return VDX_OK;
}

vdx_status vdx_aq_clone_internal(const vdx_aq *aq, vdx_aq **out) {
    *out = NULL;
    vdx_aq *c = NULL;
    vdx_status st = vdx_aq_make(aq->kind, aq->d, aq->M, aq->nbits,
                                aq->search_type, &c);
    if (st) return st;
    int *nb = c->nbits;
    int64_t *off = c->cb_off, *dim0 = c->dim0;
    *c = *aq;
    c->nbits = nb;
    c->cb_off = off;
    c->dim0 = dim0;
    memcpy(c->dim0, aq->dim0, (size_t)aq->M * sizeof(int64_t));
    c->codebooks = c->qnorm = c->norm_tabs = c->centroid_norms = c->cross = NULL;
    c->qnorm_perm = NULL;
    c->sub = NULL;
    c->owner = NULL;
    c->changed = NULL;
    int64_t nsub = aq->sub ? aq->nsplits : 0;
    c->nsplits = aq->nsplits;
    if (!st) st = dup_floats(aq->codebooks, (size_t)(aq->total_cb * aq->ew), &c->codebooks);
    if (!st) st = dup_floats(aq->qnorm, (size_t)aq->nqnorm, &c->qnorm);
    if (!st) st = dup_floats(aq->norm_tabs, (size_t)aq->nnorm_tabs, &c->norm_tabs);
    if (!st) st = dup_floats(aq->centroid_norms, (size_t)aq->total_cb, &c->centroid_norms);
    if (!st) st = dup_floats(aq->cross, aq->ncross, &c->cross);
    if (!st && aq->qnorm) st = vdx_aq_norm_index(c);
    if (!st && nsub) {
        c->sub = vdx_calloc((size_t)nsub, sizeof(vdx_aq *));
        if (!c->sub) st = VDX_ERR_OUT_OF_MEMORY;
        for (int64_t s = 0; !st && s < nsub; s++)
            st = vdx_aq_clone_internal(aq->sub[s], &c->sub[s]);
    }
    if (st) {
        if (!c->sub) c->nsplits = 1;
        vdx_aq_destroy(c);
        return st;
    }
    *out = c;
    return VDX_OK;
}

int vdx_aq_same_layout(const vdx_aq *a, const vdx_aq *b) {
    if (a->kind != b->kind || a->d != b->d || a->M != b->M ||
        a->nsplits != b->nsplits || a->search_type != b->search_type)
        return 0;
    for (int64_t m = 0; m < a->M; m++)
        if (a->nbits[m] != b->nbits[m]) return 0;
    return 1;
}

/* ---- codes ---------------------------------------------------------------- */

/* The M indices of one code. */
static inline void unpack_one(const vdx_aq *aq, const uint8_t *c, int32_t *o) {
    const int64_t M = aq->M;
    if (aq->only_8bit) {
        for (int64_t m = 0; m < M; m++) o[m] = c[m];
        return;
    }
    uint64_t pos = 0;
    for (int64_t m = 0; m < M; m++) {
        o[m] = (int32_t)vdx_bits_get(c, pos, aq->nbits[m]);
        pos += (uint64_t)aq->nbits[m];
    }
}

void vdx_aq_unpack(const vdx_aq *aq, int64_t n, const uint8_t *codes,
                   int32_t *idx) {
#pragma omp parallel for if (n > 10000) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++)
        unpack_one(aq, codes + (size_t)i * aq->code_size, idx + i * aq->M);
}

/* The entries of one unpacked code summed into x (d floats). */
static inline void decode_one(const vdx_aq *aq, const int32_t *idx, float *x) {
    const int64_t ew = aq->ew;
    if (aq->nsplits == 1) {
        const float *c0 = aq->codebooks + (size_t)(aq->cb_off[0] + idx[0]) * ew;
        memcpy(x, c0, (size_t)ew * sizeof(float));
        for (int64_t m = 1; m < aq->M; m++) {
            const float *c = aq->codebooks + (size_t)(aq->cb_off[m] + idx[m]) * ew;
            for (int64_t j = 0; j < ew; j++) x[j] += c[j];
        }
        return;
    }
    memset(x, 0, (size_t)aq->d * sizeof(float));
    for (int64_t m = 0; m < aq->M; m++) {
        const float *c = aq->codebooks + (size_t)(aq->cb_off[m] + idx[m]) * ew;
        float *xs = x + aq->dim0[m];
        for (int64_t j = 0; j < ew; j++) xs[j] += c[j];
    }
}

void vdx_aq_decode_idx(const vdx_aq *aq, int64_t n, const int32_t *codes,
                       int64_t ld, float *x) {
#pragma omp parallel for if (n > 1000) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++)
        decode_one(aq, codes + i * ld, x + i * aq->d);
}

void vdx_aq_decode_n(const vdx_aq *aq, int64_t n, const uint8_t *codes,
                     float *x) {
    if (n <= 1000 && aq->M <= 64) { /* no parallel region for small batches */
        int32_t idx[64];
        for (int64_t i = 0; i < n; i++) {
            unpack_one(aq, codes + (size_t)i * aq->code_size, idx);
            decode_one(aq, idx, x + i * aq->d);
        }
        return;
    }
#pragma omp parallel if (n > 1000) num_threads(vdx_nthreads())
    {
        int32_t stack[64];
        int32_t *idx = aq->M <= 64 ? stack : vdx_malloc_array((size_t)aq->M, sizeof(int32_t));
#pragma omp for
        for (int64_t i = 0; i < n; i++) {
            if (!idx) continue;
            unpack_one(aq, codes + (size_t)i * aq->code_size, idx);
            decode_one(aq, idx, x + i * aq->d);
        }
        if (idx != stack) vdx_free(idx);
    }
}

void vdx_aq_decode_64(const vdx_aq *aq, uint64_t bits, float *x) {
    int32_t stack[64];
    int32_t *idx = aq->M <= 64 ? stack : vdx_malloc_array((size_t)aq->M, sizeof(int32_t));
    if (!idx) {
        memset(x, 0, (size_t)aq->d * sizeof(float));
        return;
    }
    for (int64_t m = 0; m < aq->M; m++) {
        idx[m] = (int32_t)(bits & ((1ull << aq->nbits[m]) - 1));
        bits >>= aq->nbits[m];
    }
    decode_one(aq, idx, x);
    if (idx != stack) vdx_free(idx);
}

vdx_status vdx_aq_pack(const vdx_aq *aq, int64_t n, const int32_t *codes,
                       int64_t ld, const float *norms, const float *centroids,
                       uint8_t *packed) {
    float *nb = NULL;
    if (aq->norm_bits && (!norms || centroids)) {
        /* the norms of the reconstructions (plus centroids) */
        const int64_t B = 1024, d = aq->d;
        nb = vdx_malloc_array((size_t)(n ? n : 1), sizeof(float));
        float *xr = vdx_malloc_array((size_t)B, (size_t)d * sizeof(float));
        if (!nb || !xr) {
            vdx_free(nb);
            vdx_free(xr);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        const vdx_kernels *K = vdx_kernels_get();
        for (int64_t i0 = 0; i0 < n; i0 += B) {
            int64_t ni = VDX_MIN(B, n - i0);
            vdx_aq_decode_idx(aq, ni, codes + i0 * ld, ld, xr);
            if (centroids)
                for (int64_t j = 0; j < ni * d; j++) xr[j] += centroids[i0 * d + j];
            K->norms_sqr_ny(nb + i0, xr, (size_t)d, (size_t)ni);
        }
        vdx_free(xr);
        norms = nb;
    }
#pragma omp parallel for if (n > 1000) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++) {
        uint8_t *c = packed + (size_t)i * aq->code_size;
        const int32_t *ci = codes + i * ld;
        memset(c, 0, aq->code_size);
        uint64_t pos = 0;
        if (aq->only_8bit) {
            for (int64_t m = 0; m < aq->M; m++) c[m] = (uint8_t)ci[m];
            pos = (uint64_t)aq->M * 8;
        } else {
            for (int64_t m = 0; m < aq->M; m++) {
                vdx_bits_put(c, pos, (uint32_t)ci[m], aq->nbits[m]);
                pos += (uint64_t)aq->nbits[m];
            }
        }
        if (aq->norm_bits)
            vdx_bits_put(c, pos, vdx_aq_encode_norm(aq, norms[i]),
                         (int)aq->norm_bits);
    }
    vdx_free(nb);
    return VDX_OK;
}

vdx_status vdx_aq_encode_idx(const vdx_aq *aq, int64_t n, const float *x,
                             int32_t *idx) {
    switch (aq->kind) {
    case VDX_AQ_RQ: return vdx_rq_encode(aq, n, x, idx, NULL);
    case VDX_AQ_LSQ: return vdx_lsq_encode(aq, n, x, idx);
    default: return vdx_paq_encode(aq, n, x, idx);
    }
}

vdx_status vdx_aq_encode(const vdx_aq *aq, int64_t n, const float *x,
                         uint8_t *codes) {
    /* by blocks: the unpacked codes of a block, then packed */
    const int64_t B = 65536;
    int32_t *idx = vdx_malloc_array((size_t)VDX_MIN(n, B) + 1,
                                    (size_t)aq->M * sizeof(int32_t));
    float *norms = aq->kind == VDX_AQ_RQ && aq->norm_bits
                       ? vdx_malloc_array((size_t)VDX_MIN(n, B) + 1, sizeof(float))
                       : NULL;
    vdx_status st = idx && (norms || !(aq->kind == VDX_AQ_RQ && aq->norm_bits))
                        ? VDX_OK
                        : VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i0 = 0; i0 < n && !st; i0 += B) {
        int64_t ni = VDX_MIN(B, n - i0);
        const float *xi = x + i0 * aq->d;
        /* RQ knows the norms of its reconstructions (|x - residual|^2) */
        st = aq->kind == VDX_AQ_RQ ? vdx_rq_encode(aq, ni, xi, idx, norms)
                                   : vdx_aq_encode_idx(aq, ni, xi, idx);
        if (!st)
            st = vdx_aq_pack(aq, ni, idx, aq->M, norms, NULL,
                             codes + (size_t)i0 * aq->code_size);
    }
    vdx_free(idx);
    vdx_free(norms);
    return st;
}

vdx_status vdx_aq_train_internal(vdx_aq *aq, int64_t n, const float *x) {
    vdx_status st;
    switch (aq->kind) {
    case VDX_AQ_RQ: st = vdx_rq_train(aq, n, x); break;
    case VDX_AQ_LSQ: st = vdx_lsq_train(aq, n, x); break;
    default: st = vdx_paq_train(aq, n, x); break;
    }
    if (!st && aq->changed && aq->owner) st = aq->changed(aq->owner);
    return st;
}

/* ---- norms ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The optimal 1-D k-means of n values (k <= n), by dynamic programming:
 * cost[j][i] = the least within-cluster sum of squares of the i smallest
 * values in j clusters; its argmin in the last cluster's start is
 * monotonic in i, so each layer is filled by divide and conquer (O(n log
 * n) per layer).  centroids: the k means, ascending. */
typedef struct {
    const double *ps, *ps2; /* prefix sums of v and v^2 */
    const double *prev;
    double *cur;
    uint16_t *arg; /* start of the last cluster - (j - 1), per i */
    int64_t j;
} dp_ctx;

static inline double seg_cost(const dp_ctx *c, int64_t a, int64_t b) {
    /* values [a, b) */
    double s = c->ps[b] - c->ps[a], s2 = c->ps2[b] - c->ps2[a];
    double r = s2 - s * s / (double)(b - a);
    return r > 0 ? r : 0;
}

static void dp_layer(dp_ctx *c, int64_t lo, int64_t hi, int64_t olo,
                     int64_t ohi) {
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2, best = olo;
        double bv = INFINITY;
        int64_t top = VDX_MIN(ohi, mid - 1);
        for (int64_t a = olo; a <= top; a++) {
            double v = c->prev[a] + seg_cost(c, a, mid);
            if (v < bv) {
                bv = v;
                best = a;
            }
        }
        c->cur[mid] = bv;
        c->arg[mid] = (uint16_t)(best - (c->j - 1));
        /* left half recursively, right half by iteration */
        if (lo < mid) dp_layer(c, lo, mid - 1, olo, best);
        lo = mid + 1;
        olo = best;
    }
}

static vdx_status kmeans1d(const float *x, int64_t n, int64_t k,
                           float *centroids) {
    /* FAISS subsamples above k * 256 points (kmeans1d then runs on them) */
    int64_t m = n > k * 256 ? k * 256 : n;
    double *v = vdx_malloc_array((size_t)m + 1, sizeof(double));
    if (!v) return VDX_ERR_OUT_OF_MEMORY;
    if (m < n) {
        int64_t *perm = vdx_malloc_array((size_t)n, sizeof(int64_t));
        if (!perm) {
            vdx_free(v);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        vdx_mt19937 g;
        vdx_mt_seed(&g, 1234);
        for (int64_t i = 0; i < m; i++) {
            int64_t j = i + (int64_t)((uint64_t)vdx_mt_next(&g) % (uint64_t)(n - i));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            v[i] = x[perm[i]];
        }
        vdx_free(perm);
    } else {
        for (int64_t i = 0; i < n; i++) v[i] = x[i];
    }
    qsort(v, (size_t)m, sizeof(double), cmp_double);
    if (m <= k) { /* one value per centroid, the largest repeated */
        for (int64_t j = 0; j < k; j++)
            centroids[j] = m ? (float)v[VDX_MIN(j, m - 1)] : 0.0f;
        vdx_free(v);
        return VDX_OK;
    }
    double *ps = vdx_malloc_array((size_t)m + 1, sizeof(double));
    double *ps2 = vdx_malloc_array((size_t)m + 1, sizeof(double));
    double *l0 = vdx_malloc_array((size_t)m + 1, sizeof(double));
    double *l1 = vdx_malloc_array((size_t)m + 1, sizeof(double));
    uint16_t *arg = vdx_malloc_array((size_t)k * (size_t)(m + 1), sizeof(uint16_t));
    vdx_status st = ps && ps2 && l0 && l1 && arg ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    if (!st) {
        ps[0] = ps2[0] = 0;
        for (int64_t i = 0; i < m; i++) {
            ps[i + 1] = ps[i] + v[i];
            ps2[i + 1] = ps2[i] + v[i] * v[i];
        }
        dp_ctx c = {ps, ps2, NULL, NULL, NULL, 0};
        for (int64_t i = 1; i <= m; i++) l0[i] = seg_cost(&c, 0, i);
        l0[0] = 0;
        double *prev = l0, *cur = l1;
        for (int64_t j = 2; j <= k; j++) {
            c.prev = prev;
            c.cur = cur;
            c.arg = arg + (size_t)(j - 1) * (size_t)(m + 1);
            c.j = j;
            for (int64_t i = 0; i < j; i++) cur[i] = INFINITY;
            /* i points in j clusters: i >= j; the last starts in j-1..i-1 */
            dp_layer(&c, j, m, j - 1, m - 1);
            double *t = prev;
            prev = cur;
            cur = t;
        }
        /* backtrack the cluster boundaries */
        int64_t end = m;
        for (int64_t j = k; j >= 1; j--) {
            int64_t start =
                j == 1 ? 0 : (int64_t)arg[(size_t)(j - 1) * (size_t)(m + 1) + (size_t)end] + (j - 1);
            centroids[j - 1] = (float)((ps[end] - ps[start]) / (double)(end - start));
            end = start;
        }
    }
    vdx_free(v);
    vdx_free(ps);
    vdx_free(ps2);
    vdx_free(l0);
    vdx_free(l1);
    vdx_free(arg);
    return st;
}

/* qnorm_perm: qnorm's indices by increasing value (ties by index). */
vdx_status vdx_aq_norm_index(vdx_aq *aq) {
    vdx_free(aq->qnorm_perm);
    aq->qnorm_perm = NULL;
    if (!aq->qnorm || aq->nqnorm <= 0) return VDX_OK;
    aq->qnorm_perm = vdx_malloc_array((size_t)aq->nqnorm, sizeof(int64_t));
    if (!aq->qnorm_perm) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < aq->nqnorm; i++) aq->qnorm_perm[i] = i;
    /* insertion sort (at most 256 entries): no global comparator state */
    int64_t *p = aq->qnorm_perm;
    const float *v = aq->qnorm;
    for (int64_t i = 1; i < aq->nqnorm; i++) {
        int64_t t = p[i], j = i;
        while (j > 0 && (v[p[j - 1]] > v[t] || (v[p[j - 1]] == v[t] && p[j - 1] > t))) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = t;
    }
    return VDX_OK;
}

vdx_status vdx_aq_train_norm(vdx_aq *aq, int64_t n, const float *norms) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        lo = norms[i] < lo ? norms[i] : lo;
        hi = norms[i] > hi ? norms[i] : hi;
    }
    aq->norm_min = lo;
    aq->norm_max = hi;
    const int st_ = aq->search_type;
    vdx_status st = VDX_OK;
    if (st_ == VDX_AQ_ST_NORM_CQINT8 || st_ == VDX_AQ_ST_NORM_CQINT4) {
        int64_t k = st_ == VDX_AQ_ST_NORM_CQINT8 ? 256 : 16;
        float *q = vdx_malloc_array((size_t)k, sizeof(float));
        if (!q) return VDX_ERR_OUT_OF_MEMORY;
        if ((st = kmeans1d(norms, n, k, q))) {
            vdx_free(q);
            return st;
        }
        vdx_free(aq->qnorm);
        aq->qnorm = q;
        aq->nqnorm = k;
        return vdx_aq_norm_index(aq);
    }
    if (st_ == VDX_AQ_ST_NORM_LSQ2X4 || st_ == VDX_AQ_ST_NORM_RQ2X4) {
        /* a 2 x 4-bit quantizer of the 1-D norms */
        vdx_aq *q = NULL;
        const int nb[2] = {4, 4};
        if ((st = vdx_aq_make(st_ == VDX_AQ_ST_NORM_LSQ2X4 ? VDX_AQ_LSQ : VDX_AQ_RQ,
                              1, 2, nb, VDX_AQ_ST_DECOMPRESS, &q)))
            return st;
        if (!(st = vdx_aq_train_internal(q, n, norms))) {
            float *tabs = vdx_malloc_array(32, sizeof(float));
            float *flat = vdx_malloc_array(256, sizeof(float));
            if (!tabs || !flat) {
                vdx_free(tabs);
                vdx_free(flat);
                st = VDX_ERR_OUT_OF_MEMORY;
            } else {
                memcpy(tabs, q->codebooks, 32 * sizeof(float));
                for (int i = 0; i < 16; i++)
                    for (int j = 0; j < 16; j++)
                        flat[i * 16 + j] = tabs[j] + tabs[16 + i];
                vdx_free(aq->norm_tabs);
                vdx_free(aq->qnorm);
                aq->norm_tabs = tabs;
                aq->nnorm_tabs = 32;
                aq->qnorm = flat;
                aq->nqnorm = 256;
                st = vdx_aq_norm_index(aq);
            }
        }
        vdx_aq_destroy(q);
    }
    return st;
}

/* nearest of the qnorm values, as FAISS's IndexFlat1D (ties: the larger) */
static uint32_t nearest_qnorm(const vdx_aq *aq, float x) {
    const float *v = aq->qnorm;
    const int64_t *p = aq->qnorm_perm;
    int64_t n = aq->nqnorm;
    if (!v || !p || n <= 0) return 0;
    if (v[p[0]] > x) return (uint32_t)p[0];
    if (v[p[n - 1]] <= x) return (uint32_t)p[n - 1];
    int64_t i0 = 0, i1 = n;
    while (i0 + 1 < i1) {
        int64_t mid = (i0 + i1) / 2;
        if (v[p[mid]] <= x) i0 = mid;
        else i1 = mid;
    }
    return x - v[p[i0]] < v[p[i1]] - x ? (uint32_t)p[i0] : (uint32_t)p[i1];
}

uint32_t vdx_aq_encode_norm(const vdx_aq *aq, float norm) {
    switch (aq->search_type) {
    case VDX_AQ_ST_NORM_FLOAT: {
        uint32_t u;
        memcpy(&u, &norm, 4);
        return u;
    }
    case VDX_AQ_ST_NORM_QINT8:
    case VDX_AQ_ST_NORM_QINT4: {
        float lev = aq->search_type == VDX_AQ_ST_NORM_QINT8 ? 256.0f : 16.0f;
        float x1 = (norm - aq->norm_min) / (aq->norm_max - aq->norm_min) * lev;
        float f = floorf(x1);
        int32_t xi = f != f ? 0 : f < -1e9f ? -1 : f > 1e9f ? 1000000000 : (int32_t)f;
        int32_t top = (int32_t)lev - 1;
        return (uint32_t)(xi < 0 ? 0 : xi > top ? top : xi);
    }
    case VDX_AQ_ST_NORM_CQINT8:
    case VDX_AQ_ST_NORM_CQINT4:
    case VDX_AQ_ST_NORM_LSQ2X4:
    case VDX_AQ_ST_NORM_RQ2X4: return nearest_qnorm(aq, norm);
    default: return 0;
    }
}

float vdx_aq_decode_norm(const vdx_aq *aq, uint32_t c) {
    switch (aq->search_type) {
    case VDX_AQ_ST_NORM_FLOAT: {
        float f;
        memcpy(&f, &c, 4);
        return f;
    }
    case VDX_AQ_ST_NORM_QINT8:
        return (float)(((double)c + 0.5) / 256 *
                           ((double)aq->norm_max - (double)aq->norm_min) +
                       (double)aq->norm_min);
    case VDX_AQ_ST_NORM_QINT4:
        return (float)(((double)c + 0.5) / 16 *
                           ((double)aq->norm_max - (double)aq->norm_min) +
                       (double)aq->norm_min);
    default:
        return aq->qnorm && (int64_t)c < aq->nqnorm ? aq->qnorm[c] : 0.0f;
    }
}

/* ---- look-up tables ---------------------------------------------------- */

/* (small tables stay on the calling thread: a search's are tens of
 * microseconds of sgemm, not worth a team) */
void vdx_aq_lut(const vdx_aq *aq, int64_t n, const float *x, float alpha,
                float *lut, int64_t ld) {
    if (n <= 0) return;
    float beta = 0;
    int ldc = (int)ld, ni = (int)n, ld_x = (int)aq->d;
    if (aq->nsplits == 1) {
        int nc = (int)aq->total_cb, di = (int)aq->d;
        /* lut^T (nc x n, column-major ld) = C (nc x d) x^T */
        vdx_gemm_tn_small(nc, ni, di, alpha, aq->codebooks, di, x, ld_x,
                          beta, lut, ldc);
        return;
    }
    int64_t per = aq->M / aq->nsplits;
    for (int64_t s = 0; s < aq->nsplits; s++) {
        int64_t m0 = s * per;
        int nc = (int)(aq->cb_off[m0 + per] - aq->cb_off[m0]), di = (int)aq->ew;
        vdx_gemm_tn_small(nc, ni, di, alpha,
                          aq->codebooks + (size_t)aq->cb_off[m0] * (size_t)aq->ew,
                          di, x + s * aq->ew, ld_x, beta, lut + aq->cb_off[m0],
                          ldc);
    }
}

float vdx_aq_norm_from_tables(const vdx_aq *aq, const uint8_t *code) {
    /* |sum c_m|^2 = sum |c_m|^2 + 2 sum_{l < m} <c_l, c_m> */
    int32_t stack[64];
    int32_t *idx = aq->M <= 64 ? stack : vdx_malloc_array((size_t)aq->M, sizeof(int32_t));
    if (!idx || !aq->centroid_norms) {
        if (idx != stack) vdx_free(idx);
        return 0;
    }
    unpack_one(aq, code, idx);
    double acc = 0;
    const float *c = aq->cross;
    for (int64_t m = 0; m < aq->M; m++) {
        int64_t K = (int64_t)1 << aq->nbits[m];
        acc += aq->centroid_norms[aq->cb_off[m] + idx[m]];
        if (m > 0 && c) {
            for (int64_t l = 0; l < m; l++)
                acc += 2.0 * c[(aq->cb_off[l] + idx[l]) * K + idx[m]];
            c += (size_t)aq->cb_off[m] * (size_t)K;
        }
    }
    if (idx != stack) vdx_free(idx);
    return (float)acc;
}

/* sum_m lut[cb_off[m] + i_m] and the position after the indices */
static inline float accumulate(const vdx_aq *aq, const uint8_t *code,
                               const float *lut, uint64_t *pos) {
    float s = 0;
    if (aq->only_8bit) {
        for (int64_t m = 0; m < aq->M; m++) s += lut[aq->cb_off[m] + code[m]];
        *pos = (uint64_t)aq->M * 8;
        return s;
    }
    uint64_t p = 0;
    for (int64_t m = 0; m < aq->M; m++) {
        s += lut[aq->cb_off[m] + vdx_bits_get(code, p, aq->nbits[m])];
        p += (uint64_t)aq->nbits[m];
    }
    *pos = p;
    return s;
}

float vdx_aq_lut_distance(const vdx_aq *aq, int is_ip, const uint8_t *code,
                          const float *lut) {
    uint64_t pos;
    float s = accumulate(aq, code, lut, &pos);
    if (is_ip) return s;
    switch (aq->search_type) {
    case VDX_AQ_ST_LUT_NONORM: return -s;
    case VDX_AQ_ST_NORM_FROM_LUT:
        return vdx_aq_norm_from_tables(aq, code) - 2 * s;
    case VDX_AQ_ST_DECOMPRESS: return -2 * s; /* not used for search */
    default:
        return vdx_aq_decode_norm(aq, vdx_bits_get(code, pos, (int)aq->norm_bits)) -
               2 * s;
    }
}

void vdx_aq_lut_distances(const vdx_aq *aq, int is_ip, const uint8_t *codes,
                          size_t n, const float *lut, float *out) {
    const size_t cs = aq->code_size;
    const int st = aq->search_type;
    if (aq->only_8bit && (is_ip || st == VDX_AQ_ST_NORM_FLOAT ||
                          st == VDX_AQ_ST_NORM_QINT8 || st == VDX_AQ_ST_NORM_CQINT8 ||
                          st == VDX_AQ_ST_NORM_LSQ2X4 || st == VDX_AQ_ST_NORM_RQ2X4 ||
                          st == VDX_AQ_ST_LUT_NONORM)) {
        /* bytes: four codes at a time for the independent loads */
        const int64_t M = aq->M;
        const int64_t *off = aq->cb_off;
        size_t i = 0;
        float nt[256];
        int tab = !is_ip && st != VDX_AQ_ST_NORM_FLOAT && st != VDX_AQ_ST_LUT_NONORM;
        if (tab)
            for (int c = 0; c < 256; c++) nt[c] = vdx_aq_decode_norm(aq, (uint32_t)c);
        for (; i + 4 <= n; i += 4) {
            const uint8_t *c0 = codes + i * cs, *c1 = c0 + cs, *c2 = c1 + cs,
                          *c3 = c2 + cs;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t m = 0; m < M; m++) {
                const float *l = lut + off[m];
                s0 += l[c0[m]];
                s1 += l[c1[m]];
                s2 += l[c2[m]];
                s3 += l[c3[m]];
            }
            float s[4] = {s0, s1, s2, s3};
            const uint8_t *cc[4] = {c0, c1, c2, c3};
            for (int u = 0; u < 4; u++) {
                if (is_ip) out[i + u] = s[u];
                else if (st == VDX_AQ_ST_LUT_NONORM) out[i + u] = -s[u];
                else if (st == VDX_AQ_ST_NORM_FLOAT) {
                    float nf;
                    memcpy(&nf, cc[u] + M, 4);
                    out[i + u] = nf - 2 * s[u];
                } else {
                    out[i + u] = nt[cc[u][M]] - 2 * s[u];
                }
            }
        }
        for (; i < n; i++) out[i] = vdx_aq_lut_distance(aq, is_ip, codes + i * cs, lut);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = vdx_aq_lut_distance(aq, is_ip, codes + i * cs, lut);
}

/* ---- codebook tables ------------------------------------------------------ */

vdx_status vdx_aq_compute_tables(vdx_aq *aq) {
    if (!aq->codebooks)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "compute_codebook_tables: the quantizer has no "
                         "codebooks");
    size_t ncross = 0;
    for (int64_t m = 0; m < aq->M; m++) {
        size_t blk;
        if (!vdx_mul_ok((size_t)aq->cb_off[m], (size_t)1 << aq->nbits[m], &blk) ||
            __builtin_add_overflow(ncross, blk, &ncross))
            return vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                             "compute_codebook_tables: the tables overflow");
    }
    float *cn = vdx_malloc_array((size_t)aq->total_cb, sizeof(float));
    float *cross = vdx_malloc_array(ncross ? ncross : 1, sizeof(float));
    if (!cn || !cross) {
        vdx_free(cn);
        vdx_free(cross);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    vdx_kernels_get()->norms_sqr_ny(cn, aq->codebooks, (size_t)aq->ew,
                                    (size_t)aq->total_cb);
    size_t ofs = 0;
    int64_t per = aq->M / aq->nsplits;
    for (int64_t m = 1; m < aq->M; m++) {
        int64_t K = (int64_t)1 << aq->nbits[m], kk = aq->cb_off[m];
        float *blk = cross + ofs;
        /* entries of other splits cover other components: product 0 */
        int64_t l0 = aq->nsplits > 1 ? aq->cb_off[(m / per) * per] : 0;
        if (l0 > 0) memset(blk, 0, (size_t)l0 * (size_t)K * sizeof(float));
        if (kk > l0)
            vdx_gemm_xyt((int)(kk - l0), (int)K, (int)aq->ew, 1.0f,
                         aq->codebooks + (size_t)l0 * (size_t)aq->ew,
                         aq->codebooks + (size_t)kk * (size_t)aq->ew,
                         blk + (size_t)l0 * (size_t)K);
        ofs += (size_t)kk * (size_t)K;
    }
    vdx_aq_drop_tables(aq);
    aq->centroid_norms = cn;
    aq->cross = cross;
    aq->ncross = ncross;
    return VDX_OK;
}

void vdx_aq_l2_tile(int64_t nr, int64_t K, int64_t d, const float *r,
                    const float *rnorm, const float *c, const float *cnorm,
                    float *dis) {
    for (int64_t i = 0; i < nr; i++) {
        float *row = dis + i * K;
        for (int64_t k = 0; k < K; k++) row[k] = rnorm[i] + cnorm[k];
    }
    vdx_gemm_xyt_acc((int)nr, (int)K, (int)d, -2.0f, r, c, dis);
}
