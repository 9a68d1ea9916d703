/*
 * aq_api.c — the public entry points of the additive quantizers
 * (vecdex.h): argument checks, thread teams, then the internals of aq.c,
 * rq.c, lsq.c and paq.c.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "aq.h"
#include "common/threads.h"
#include "common/topk.h"
#include "simd/kernels.h"
#include "index/index_internal.h"

/* internals of rq.c / lsq.c without a header of their own */
vdx_status vdx_rq_step_exhaustive(int64_t d, int64_t K, const float *cent,
                                  int64_t n, int64_t beam, const float *res,
                                  int64_t m, const int32_t *codes, int64_t L,
                                  int32_t *ncodes, float *nres, float *ndis);
vdx_status vdx_rq_step_tab(int64_t K, int64_t n, int64_t beam,
                           const float *cross, int64_t ldc, const int64_t *off,
                           const float *qcp, int64_t ldqc, const float *cn,
                           int64_t m, const int32_t *codes, const float *dis,
                           int64_t L, int32_t *ncodes, float *ndis);
vdx_status vdx_lsq_update_codebooks_internal(vdx_aq *lsq, const float *x,
                                             const int32_t *codes, int64_t n);
vdx_status vdx_lsq_binary_terms_internal(const vdx_aq *lsq, float *bin);
vdx_status vdx_lsq_unary_terms_internal(const vdx_aq *lsq, int64_t n,
                                        const float *x, float *u);
vdx_status vdx_lsq_icm_step_internal(const vdx_aq *lsq, int32_t *codes,
                                     const float *u, const float *bin,
                                     int64_t n, int64_t iters);

#define CHECK_AQ(aq, what)                                                   \
    do {                                                                     \
        if (!(aq))                                                           \
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: quantizer is NULL", \
                             what);                                          \
    } while (0)

static vdx_status need_trained(const vdx_aq *aq, const char *what) {
    if (!aq->is_trained || !aq->codebooks)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "%s: the additive quantizer is not trained", what);
    return VDX_OK;
}

static vdx_status owner_changed(vdx_aq *aq) {
    return aq->owner && aq->changed ? aq->changed(aq->owner) : VDX_OK;
}

/* ---- construction --------------------------------------------------------- */

vdx_status vdx_rq_new(int64_t d, int64_t M, const int *nbits, int search_type,
                      vdx_aq **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!nbits && M > 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "ResidualQuantizer: nbits is NULL");
    return vdx_aq_make(VDX_AQ_RQ, d, M, nbits, search_type, out);
}

vdx_status vdx_lsq_new(int64_t d, int64_t M, int nbits, int search_type,
                       vdx_aq **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (M < 1 || M > VDX_AQ_M_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "LocalSearchQuantizer: M=%lld must be in 1..%d",
                         (long long)M, VDX_AQ_M_MAX);
    int *nb = vdx_malloc_array((size_t)M, sizeof(int));
    if (!nb) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t m = 0; m < M; m++) nb[m] = nbits;
    vdx_status st = vdx_aq_make(VDX_AQ_LSQ, d, M, nb, search_type, out);
    vdx_free(nb);
    return st;
}

vdx_status vdx_product_aq_new(int kind, int64_t d, int64_t nsplits,
                              int64_t Msub, int nbits, int search_type,
                              vdx_aq **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    return vdx_paq_make(kind, d, nsplits, Msub, nbits, search_type, out);
}

void vdx_aq_free(vdx_aq *aq) {
    if (aq && aq->owner) return; /* borrowed from an index */
    vdx_aq_destroy(aq);
}

vdx_status vdx_aq_clone(const vdx_aq *aq, vdx_aq **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    CHECK_AQ(aq, "clone");
    return vdx_aq_clone_internal(aq, out);
}

/* ---- train / encode / decode ----------------------------------------------- */

vdx_status vdx_aq_train(vdx_aq *aq, int64_t n, const float *x) {
    vdx_clear_error();
    CHECK_AQ(aq, "train");
    if (n < 0 || (n > 0 && !x))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "train: bad n=%lld or NULL x",
                         (long long)n);
    vdx_status st = vdx_check_vectors(x, n, aq->d, "training vectors");
    if (st) return st;
    vdx_team_begin();
    st = vdx_aq_train_internal(aq, n, x);
    vdx_team_end();
    return st;
}

vdx_status vdx_aq_compute_codes(const vdx_aq *aq, int64_t n, const float *x,
                                uint8_t *codes) {
    vdx_clear_error();
    CHECK_AQ(aq, "compute_codes");
    if (n < 0 || (n > 0 && (!x || !codes)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "compute_codes: bad arguments");
    vdx_status st = need_trained(aq, "compute_codes");
    if (!st) st = vdx_check_vectors(x, n, aq->d, "vectors to encode");
    if (st || n == 0) return st;
    vdx_team_begin();
    st = vdx_aq_encode(aq, n, x, codes);
    vdx_team_end();
    return st;
}

vdx_status vdx_aq_decode(const vdx_aq *aq, int64_t n, const uint8_t *codes,
                         float *x) {
    vdx_clear_error();
    CHECK_AQ(aq, "decode");
    if (n < 0 || (n > 0 && (!x || !codes)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "decode: bad arguments");
    vdx_status st = need_trained(aq, "decode");
    if (st || n == 0) return st;
    vdx_team_begin();
    vdx_aq_decode_n(aq, n, codes, x);
    vdx_team_end();
    return VDX_OK;
}

vdx_status vdx_aq_compute_LUT(const vdx_aq *aq, int64_t n, const float *x,
                              float alpha, float *lut) {
    vdx_clear_error();
    CHECK_AQ(aq, "compute_LUT");
    if (n < 0 || (n > 0 && (!x || !lut)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "compute_LUT: bad arguments");
    vdx_status st = need_trained(aq, "compute_LUT");
    if (!st) st = vdx_check_vectors(x, n, aq->d, "queries");
    if (st || n == 0) return st;
    vdx_team_begin();
    vdx_aq_lut(aq, n, x, alpha, lut, aq->total_cb);
    vdx_team_end();
    return VDX_OK;
}

static vdx_status check_idx(const vdx_aq *aq, int64_t n, const int32_t *codes,
                            int64_t ld, const char *what) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t m = 0; m < aq->M; m++) {
            int32_t c = codes[i * ld + m];
            if (c < 0 || c >= ((int32_t)1 << aq->nbits[m]))
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "%s: code %d of vector %lld, codebook %lld is "
                                 "outside 0..%d",
                                 what, c, (long long)i, (long long)m,
                                 (1 << aq->nbits[m]) - 1);
        }
    return VDX_OK;
}

vdx_status vdx_aq_pack_codes(const vdx_aq *aq, int64_t n, const int32_t *codes,
                             int64_t ld, const float *norms, uint8_t *packed) {
    vdx_clear_error();
    CHECK_AQ(aq, "pack_codes");
    if (ld == 0) ld = aq->M;
    if (n < 0 || ld < aq->M || (n > 0 && (!codes || !packed)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "pack_codes: bad n=%lld, ld_codes=%lld (M=%lld) or "
                         "NULL arrays",
                         (long long)n, (long long)ld, (long long)aq->M);
    vdx_status st = check_idx(aq, n, codes, ld, "pack_codes");
    if (st || n == 0) return st;
    if (aq->norm_bits && !norms && (st = need_trained(aq, "pack_codes"))) return st;
    vdx_team_begin();
    st = vdx_aq_pack(aq, n, codes, ld, norms, NULL, packed);
    vdx_team_end();
    return st;
}

vdx_status vdx_aq_unpack_codes(const vdx_aq *aq, int64_t n,
                               const uint8_t *packed, int32_t *codes) {
    vdx_clear_error();
    CHECK_AQ(aq, "unpack_codes");
    if (n < 0 || (n > 0 && (!codes || !packed)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "unpack_codes: bad arguments");
    vdx_aq_unpack(aq, n, packed, codes);
    return VDX_OK;
}

vdx_status vdx_aq_decode_unpacked(const vdx_aq *aq, int64_t n,
                                  const int32_t *codes, int64_t ld, float *x) {
    vdx_clear_error();
    CHECK_AQ(aq, "decode_unpacked");
    if (ld == 0) ld = aq->M;
    if (n < 0 || ld < aq->M || (n > 0 && (!codes || !x)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "decode_unpacked: bad arguments");
    vdx_status st = need_trained(aq, "decode_unpacked");
    if (!st) st = check_idx(aq, n, codes, ld, "decode_unpacked");
    if (st) return st;
    vdx_aq_decode_idx(aq, n, codes, ld, x);
    return VDX_OK;
}

/* ---- getters / setters -------------------------------------------------- */

int vdx_aq_kind(const vdx_aq *aq) { return aq ? aq->kind : -1; }
int64_t vdx_aq_d(const vdx_aq *aq) { return aq ? aq->d : 0; }
int64_t vdx_aq_M(const vdx_aq *aq) { return aq ? aq->M : 0; }
int vdx_aq_nbits(const vdx_aq *aq, int64_t m) {
    return aq && m >= 0 && m < aq->M ? aq->nbits[m] : -1;
}
size_t vdx_aq_code_size(const vdx_aq *aq) { return aq ? aq->code_size : 0; }
int64_t vdx_aq_tot_bits(const vdx_aq *aq) { return aq ? aq->tot_bits : 0; }
int64_t vdx_aq_norm_bits(const vdx_aq *aq) { return aq ? aq->norm_bits : 0; }
int64_t vdx_aq_total_codebook_size(const vdx_aq *aq) {
    return aq ? aq->total_cb : 0;
}
int64_t vdx_aq_codebook_offset(const vdx_aq *aq, int64_t m) {
    return aq && m >= 0 && m <= aq->M ? aq->cb_off[m] : -1;
}
int vdx_aq_is_trained(const vdx_aq *aq) { return aq ? aq->is_trained : 0; }
int vdx_aq_search_type(const vdx_aq *aq) { return aq ? aq->search_type : -1; }
int64_t vdx_aq_nsplits(const vdx_aq *aq) { return aq ? aq->nsplits : 0; }

vdx_aq *vdx_aq_subquantizer(const vdx_aq *aq, int64_t s) {
    if (!aq || !aq->sub || s < 0 || s >= aq->nsplits) return NULL;
    return aq->sub[s];
}

vdx_status vdx_aq_set_trained(vdx_aq *aq, int trained) {
    vdx_clear_error();
    CHECK_AQ(aq, "is_trained");
    if (trained && !aq->codebooks)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "is_trained: the quantizer has no codebooks");
    aq->is_trained = trained != 0;
    return owner_changed(aq);
}

vdx_status vdx_aq_set_search_type(vdx_aq *aq, int st_) {
    vdx_clear_error();
    CHECK_AQ(aq, "search_type");
    int nb = vdx_aq_norm_bits_of(st_);
    if (nb < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search_type: unknown search type %d (expected 0..9)",
                         st_);
    if (aq->owner && aq->owner->ntotal > 0 && nb != aq->norm_bits)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "search_type: the index holds %lld codes of %lld norm "
                         "bits; search type %d needs %d",
                         (long long)aq->owner->ntotal, (long long)aq->norm_bits,
                         st_, nb);
    int old = aq->search_type;
    aq->search_type = st_;
    vdx_status st = vdx_aq_set_derived(aq);
    if (!st) st = owner_changed(aq);
    if (st) {
        aq->search_type = old;
        vdx_aq_set_derived(aq);
        owner_changed(aq);
    }
    return st;
}

const float *vdx_aq_codebooks(const vdx_aq *aq, size_t *n) {
    if (n) *n = aq && aq->codebooks ? (size_t)(aq->total_cb * aq->ew) : 0;
    return aq ? aq->codebooks : NULL;
}

vdx_status vdx_aq_set_codebooks(vdx_aq *aq, const float *cb, size_t n) {
    vdx_clear_error();
    CHECK_AQ(aq, "codebooks");
    size_t want = (size_t)(aq->total_cb * aq->ew);
    if (!cb || n != want)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "codebooks: expected total_codebook_size x %lld = %zu "
                         "floats, got %zu",
                         (long long)aq->ew, want, cb ? n : 0);
    vdx_status st = vdx_check_finite(cb, (int64_t)n, 1, "codebook values");
    if (st) return st;
    if ((st = vdx_aq_alloc_codebooks(aq))) return st;
    if (cb != aq->codebooks) memmove(aq->codebooks, cb, n * sizeof(float));
    if (aq->centroid_norms) st = vdx_aq_compute_tables(aq);
    if (!st) st = owner_changed(aq);
    return st;
}

vdx_status vdx_aq_get_options(const vdx_aq *aq, vdx_aq_options *o) {
    vdx_clear_error();
    CHECK_AQ(aq, "get_options");
    if (!o) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "get_options: NULL options");
    memset(o, 0, sizeof *o);
    o->verbose = aq->verbose;
    o->norm_min = aq->norm_min;
    o->norm_max = aq->norm_max;
    o->max_mem_distances = aq->max_mem_distances;
    o->train_type = aq->train_type;
    o->max_beam_size = aq->max_beam_size;
    o->use_beam_LUT = aq->use_beam_LUT;
    o->niter_codebook_refine = aq->niter_codebook_refine;
    o->progressive_dim_steps = aq->progressive_dim_steps;
    o->apply_pca = aq->apply_pca;
    o->train_iters = aq->train_iters;
    o->encode_ils_iters = aq->encode_ils_iters;
    o->train_ils_iters = aq->train_ils_iters;
    o->icm_iters = aq->icm_iters;
    o->chunk_size = aq->chunk_size;
    o->nperts = aq->nperts;
    o->p = aq->p;
    o->lambd = aq->lambd;
    o->random_seed = aq->random_seed;
    o->update_codebooks_with_double = aq->update_codebooks_with_double;
    return VDX_OK;
}

vdx_status vdx_aq_set_options(vdx_aq *aq, const vdx_aq_options *o) {
    vdx_clear_error();
    CHECK_AQ(aq, "set_options");
    if (!o) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "set_options: NULL options");
#define RANGE(f, lo, hi)                                                     \
    if ((o->f) < (lo) || (o->f) > (hi))                                      \
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,                           \
                         "set_options: " #f "=%lld is outside %lld..%lld",   \
                         (long long)(o->f), (long long)(lo), (long long)(hi));
    RANGE(max_beam_size, 1, 1 << 20)
    RANGE(niter_codebook_refine, 0, 1 << 20)
    RANGE(progressive_dim_steps, 1, 1 << 10)
    RANGE(train_iters, 0, 1 << 24)
    RANGE(encode_ils_iters, 0, 1 << 24)
    RANGE(train_ils_iters, 0, 1 << 24)
    RANGE(icm_iters, 0, 1 << 24)
    RANGE(nperts, 0, 1 << 24)
    RANGE(chunk_size, 0, (int64_t)1 << 40)
#undef RANGE
    if (o->use_beam_LUT != 0 && o->use_beam_LUT != 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_options: use_beam_LUT=%d must be 0 or 1",
                         o->use_beam_LUT);
    if (!isfinite(o->p) || !isfinite(o->lambd) || o->lambd < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_options: p=%g and lambd=%g must be finite, lambd "
                         ">= 0",
                         (double)o->p, (double)o->lambd);
    aq->verbose = o->verbose;
    aq->norm_min = o->norm_min;
    aq->norm_max = o->norm_max;
    aq->max_mem_distances = o->max_mem_distances;
    aq->train_type = o->train_type;
    aq->max_beam_size = o->max_beam_size;
    aq->use_beam_LUT = o->use_beam_LUT;
    aq->niter_codebook_refine = o->niter_codebook_refine;
    aq->progressive_dim_steps = o->progressive_dim_steps;
    aq->apply_pca = o->apply_pca;
    aq->train_iters = o->train_iters;
    aq->encode_ils_iters = o->encode_ils_iters;
    aq->train_ils_iters = o->train_ils_iters;
    aq->icm_iters = o->icm_iters;
    aq->chunk_size = o->chunk_size;
    aq->nperts = o->nperts;
    aq->p = o->p;
    aq->lambd = o->lambd;
    aq->random_seed = o->random_seed;
    aq->update_codebooks_with_double = o->update_codebooks_with_double != 0;
    return VDX_OK;
}

vdx_kmeans_params *vdx_aq_cp(vdx_aq *aq) { return aq ? &aq->cp : NULL; }

/* ---- codebook tables and centroid searches ----------------------------- */

vdx_status vdx_aq_compute_codebook_tables(vdx_aq *aq) {
    vdx_clear_error();
    CHECK_AQ(aq, "compute_codebook_tables");
    vdx_team_begin();
    vdx_status st = vdx_aq_compute_tables(aq);
    vdx_team_end();
    return st;
}

const float *vdx_aq_centroid_norms(const vdx_aq *aq, size_t *n) {
    if (n) *n = aq && aq->centroid_norms ? (size_t)aq->total_cb : 0;
    return aq ? aq->centroid_norms : NULL;
}

const float *vdx_aq_codebook_cross_products(const vdx_aq *aq, size_t *n) {
    if (n) *n = aq && aq->cross ? aq->ncross : 0;
    return aq ? aq->cross : NULL;
}

static int64_t index_bits(const vdx_aq *aq) { return aq->tot_bits - aq->norm_bits; }

vdx_status vdx_aq_compute_centroid_norms(const vdx_aq *aq, float *norms) {
    vdx_clear_error();
    CHECK_AQ(aq, "compute_centroid_norms");
    if (!norms)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "compute_centroid_norms: NULL norms");
    vdx_status st = need_trained(aq, "compute_centroid_norms");
    if (st) return st;
    int64_t b = index_bits(aq);
    if (b > 30)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "compute_centroid_norms: 2^%lld centroids is too many "
                         "(tot_bits <= 30)",
                         (long long)b);
    const int64_t nc = (int64_t)1 << b;
    vdx_team_begin();
#pragma omp parallel num_threads(vdx_nthreads())
    {
        float *t = vdx_malloc_array((size_t)aq->d, sizeof(float));
        const vdx_kernels *K = vdx_kernels_get();
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nc; c++) {
            if (!t) {
                norms[c] = NAN;
                continue;
            }
            vdx_aq_decode_64(aq, (uint64_t)c, t);
            norms[c] = K->norm_sqr(t, (size_t)aq->d);
        }
        vdx_free(t);
    }
    vdx_team_end();
    return VDX_OK;
}

/* ips[c] = sum_m lut[off_m + i_m(c)] for every c < 2^bits */
static void all_sums(const vdx_aq *aq, const float *lut, float *ips) {
    int64_t prev = 1;
    for (int64_t m = 0; m < aq->M; m++) {
        const float *lm = lut + aq->cb_off[m];
        int64_t nc = (int64_t)1 << aq->nbits[m];
        if (m == 0) {
            memcpy(ips, lm, (size_t)nc * sizeof(float));
        } else {
            for (int64_t i = nc - 1; i >= 0; i--) {
                float v = lm[i];
                float *dst = ips + i * prev;
                for (int64_t j = 0; j < prev; j++) dst[j] = ips[j] + v;
            }
        }
        prev *= nc;
    }
}

vdx_status vdx_aq_knn_centroids_internal(const vdx_aq *aq, vdx_metric metric,
                                         int64_t n, const float *x, int64_t k,
                                         const float *norms, float *D,
                                         vdx_idx_t *I);

vdx_status vdx_aq_knn_centroids_internal(const vdx_aq *aq, vdx_metric metric,
                                         int64_t n, const float *x, int64_t k,
                                         const float *norms, float *D,
                                         vdx_idx_t *I) {
    const int64_t nc = (int64_t)1 << index_bits(aq), T = aq->total_cb;
    const int ip = metric == VDX_METRIC_INNER_PRODUCT;
    float *lut = vdx_malloc_array((size_t)(n ? n : 1), (size_t)T * sizeof(float));
    if (!lut) return VDX_ERR_OUT_OF_MEMORY;
    vdx_aq_lut(aq, n, x, 1.0f, lut, T);
    vdx_status st = VDX_OK;
#pragma omp parallel num_threads(vdx_nthreads()) if (n > 1)
    {
        float *dis = vdx_malloc_array((size_t)nc, sizeof(float));
        uint32_t *cand = vdx_malloc_array(1024, sizeof(uint32_t));
        if (!dis || !cand) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
        const vdx_kernels *K = vdx_kernels_get();
#pragma omp for schedule(dynamic, 1)
        for (int64_t q = 0; q < n; q++) {
            if (!dis || !cand) continue;
            all_sums(aq, lut + q * T, dis);
            float qn = ip ? 0 : K->norm_sqr(x + q * aq->d, (size_t)aq->d);
            for (int64_t c = 0; c < nc; c++)
                dis[c] = ip ? -dis[c] : qn + norms[c] - 2 * dis[c];
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            vdx_heap_init(k, hk, hi);
            for (int64_t c0 = 0; c0 < nc; c0 += 1024) {
                size_t cn = (size_t)VDX_MIN(1024, nc - c0);
                size_t nf = K->filter_less(dis + c0, cn, hk[0], cand);
                for (size_t j = 0; j < nf; j++)
                    vdx_heap_push(k, hk, hi, dis[c0 + cand[j]], c0 + cand[j]);
            }
            vdx_topk_finish(k, hk, hi, ip, 0);
        }
        vdx_free(dis);
        vdx_free(cand);
    }
    vdx_free(lut);
    return st;
}

vdx_status vdx_aq_knn_centroids(const vdx_aq *aq, vdx_metric metric, int64_t n,
                                const float *x, int64_t k, const float *norms,
                                float *D, vdx_idx_t *I) {
    vdx_clear_error();
    CHECK_AQ(aq, "knn_centroids");
    if (n < 0 || k < 1 || k > VDX_MAX_K || (n > 0 && (!x || !D || !I)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "knn_centroids: bad arguments");
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "knn_centroids: metric %d is not supported", (int)metric);
    if (metric == VDX_METRIC_L2 && !norms)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "knn_centroids: L2 needs the centroid norms");
    vdx_status st = need_trained(aq, "knn_centroids");
    if (!st && index_bits(aq) > 30)
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "knn_centroids: 2^%lld centroids is too many",
                       (long long)index_bits(aq));
    if (!st) st = vdx_check_vectors(x, n, aq->d, "queries");
    if (st || n == 0) return st;
    vdx_team_begin();
    st = vdx_aq_knn_centroids_internal(aq, metric, n, x, k, norms, D, I);
    vdx_team_end();
    return st;
}

/* ---- RQ ----------------------------------------------------------------- */

static vdx_status need_kind(const vdx_aq *aq, int kind, const char *what) {
    if (!aq)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: quantizer is NULL", what);
    if (aq->kind != kind)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: needs a %s, got kind %d", what,
                         kind == VDX_AQ_RQ ? "ResidualQuantizer"
                                           : "LocalSearchQuantizer",
                         aq->kind);
    return VDX_OK;
}

vdx_status vdx_rq_beam_search_encode_step(
    int64_t d, int64_t K, const float *cent, int64_t n, int64_t beam,
    const float *res, int64_t m, const int32_t *codes, int64_t L,
    int32_t *ncodes, float *nres, float *ndis, vdx_index *assign) {
    vdx_clear_error();
    if (d < 1 || d > VDX_MAX_DIM || K < 1 || K > (1 << 24) || n < 0 ||
        beam < 1 || m < 0 || m > VDX_AQ_M_MAX || L < 1 || L > beam * K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "beam_search_encode_step: bad sizes d=%lld K=%lld "
                         "n=%lld beam_size=%lld m=%lld new_beam_size=%lld "
                         "(need new_beam_size <= beam_size * K)",
                         (long long)d, (long long)K, (long long)n,
                         (long long)beam, (long long)m, (long long)L);
    if (n > 0 && (!cent || !res || (m > 0 && !codes) || !ncodes || !nres || !ndis))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "beam_search_encode_step: NULL array");
    if (n == 0) return VDX_OK;
    vdx_status st = vdx_check_vectors(cent, K, d, "centroids");
    if (!st) st = vdx_check_vectors(res, n * beam, d, "residuals");
    if (st) return st;
    vdx_team_begin();
    if (!assign) {
        st = vdx_rq_step_exhaustive(d, K, cent, n, beam, res, m, codes, L,
                                    ncodes, nres, ndis);
        vdx_team_end();
        return st;
    }
    /* the assignment index proposes L entries per residual */
    float *cd = NULL;
    vdx_idx_t *ci = NULL;
    if (assign->d != d) {
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "beam_search_encode_step: assign_index has d=%lld, "
                       "expected %lld",
                       (long long)assign->d, (long long)d);
        goto done;
    }
    if (assign->ntotal == 0) st = vdx_index_add(assign, K, cent);
    else if (assign->ntotal != K)
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "beam_search_encode_step: assign_index holds %lld "
                       "vectors, expected K=%lld",
                       (long long)assign->ntotal, (long long)K);
    if (st) goto done;
    cd = vdx_malloc_array((size_t)(n * beam), (size_t)L * sizeof(float));
    ci = vdx_malloc_array((size_t)(n * beam), (size_t)L * sizeof(vdx_idx_t));
    if (!cd || !ci) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((st = vdx_index_search(assign, n * beam, res, L, NULL, cd, ci))) goto done;
    for (int64_t i = 0; i < n; i++) {
        float hk[1024];
        vdx_idx_t hi[1024];
        float *k2 = L <= 1024 ? hk : vdx_malloc_array((size_t)L, sizeof(float));
        vdx_idx_t *i2 = L <= 1024 ? hi : vdx_malloc_array((size_t)L, sizeof(vdx_idx_t));
        if (!k2 || !i2) {
            if (k2 != hk) vdx_free(k2);
            if (i2 != hi) vdx_free(i2);
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        vdx_heap_init(L, k2, i2);
        for (int64_t e = 0; e < beam * L; e++)
            if (ci[i * beam * L + e] >= 0)
                vdx_heap_push(L, k2, i2, cd[i * beam * L + e], e);
        vdx_heap_sort(L, k2, i2);
        for (int64_t j = 0; j < L; j++) {
            int64_t e = i2[j] < 0 ? 0 : i2[j], js = e / L;
            int64_t ls = ci[i * beam * L + e] < 0 ? 0 : ci[i * beam * L + e];
            int32_t *nc = ncodes + (i * L + j) * (m + 1);
            if (m > 0) memcpy(nc, codes + (i * beam + js) * m, (size_t)m * sizeof(int32_t));
            nc[m] = (int32_t)ls;
            const float *r = res + (i * beam + js) * d, *c = cent + ls * d;
            for (int64_t t = 0; t < d; t++) nres[(i * L + j) * d + t] = r[t] - c[t];
            ndis[i * L + j] = k2[j];
        }
        if (k2 != hk) vdx_free(k2);
        if (i2 != hi) vdx_free(i2);
    }
done:
    vdx_free(cd);
    vdx_free(ci);
    vdx_team_end();
    return st;
}

vdx_status vdx_rq_beam_search_encode_step_tab(
    int64_t K, int64_t n, int64_t beam, const float *cross, int64_t ldc,
    const uint64_t *offsets, const float *qcp, int64_t ldqc, const float *cn,
    int64_t m, const int32_t *codes, const float *dis, int64_t L,
    int32_t *ncodes, float *ndis) {
    vdx_clear_error();
    if (K < 1 || K > (1 << 24) || n < 0 || beam < 1 || m < 0 ||
        m > VDX_AQ_M_MAX || L < 1 || L > beam * K || ldc < K || ldqc < K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "beam_search_encode_step_tab: bad sizes K=%lld n=%lld "
                         "beam_size=%lld m=%lld new_beam_size=%lld ldc=%lld "
                         "ldqc=%lld",
                         (long long)K, (long long)n, (long long)beam,
                         (long long)m, (long long)L, (long long)ldc,
                         (long long)ldqc);
    if (n > 0 && (!qcp || !cn || !dis || !ncodes || !ndis ||
                  (m > 0 && (!cross || !offsets || !codes))))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "beam_search_encode_step_tab: NULL array");
    if (n == 0) return VDX_OK;
    int64_t *off = vdx_malloc_array((size_t)m + 1, sizeof(int64_t));
    if (!off) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t l = 0; l < m; l++) off[l] = (int64_t)offsets[l];
    vdx_team_begin();
    vdx_status st = vdx_rq_step_tab(K, n, beam, cross, ldc, off, qcp, ldqc, cn,
                                    m, codes, dis, L, ncodes, ndis);
    vdx_team_end();
    vdx_free(off);
    return st;
}

vdx_status vdx_rq_refine_beam(const vdx_aq *rq, int64_t n, const float *x,
                              int64_t out_beam, int32_t *codes,
                              float *residuals, float *distances) {
    vdx_clear_error();
    vdx_status st = need_kind(rq, VDX_AQ_RQ, "refine_beam");
    if (st) return st;
    if (n < 0 || out_beam < 1 || out_beam > (1 << 20) || (n > 0 && (!x || !codes)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "refine_beam: bad n=%lld, out_beam_size=%lld or NULL "
                         "arrays",
                         (long long)n, (long long)out_beam);
    if ((st = need_trained(rq, "refine_beam"))) return st;
    if ((st = vdx_check_vectors(x, n, rq->d, "vectors"))) return st;
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    st = vdx_rq_refine_beam_internal(rq, n, x, out_beam, codes, residuals,
                                     distances);
    vdx_team_end();
    return st;
}

vdx_status vdx_rq_retrain_codebook(vdx_aq *rq, int64_t n, const float *x,
                                   float *err);

vdx_status vdx_rq_initialize_from(vdx_aq *rq, const vdx_aq *other,
                                  int64_t skip_M) {
    vdx_clear_error();
    vdx_status st = need_kind(rq, VDX_AQ_RQ, "initialize_from");
    if (!st) st = need_kind(other, VDX_AQ_RQ, "initialize_from");
    if (st) return st;
    if (skip_M < 0 || rq->M + skip_M > other->M || rq->d != other->d)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "initialize_from: M=%lld + skip_M=%lld exceeds the "
                         "other's M=%lld (or d %lld != %lld)",
                         (long long)rq->M, (long long)skip_M,
                         (long long)other->M, (long long)rq->d,
                         (long long)other->d);
    float *cb = NULL;
    int64_t nf = 0;
    if (other->codebooks) {
        nf = (other->cb_off[skip_M + rq->M] - other->cb_off[skip_M]) * rq->d;
        cb = vdx_malloc_array((size_t)(nf ? nf : 1), sizeof(float));
        if (!cb) return VDX_ERR_OUT_OF_MEMORY;
        memcpy(cb, other->codebooks + (size_t)other->cb_off[skip_M] * (size_t)rq->d,
               (size_t)nf * sizeof(float));
    }
    /* the other's settings (FAISS: *this = other), this M and search type */
    memcpy(rq->nbits, other->nbits + skip_M, (size_t)rq->M * sizeof(int));
    rq->train_type = other->train_type;
    rq->max_beam_size = other->max_beam_size;
    rq->use_beam_LUT = other->use_beam_LUT;
    rq->niter_codebook_refine = other->niter_codebook_refine;
    rq->cp = other->cp;
    rq->progressive_dim_steps = other->progressive_dim_steps;
    rq->apply_pca = other->apply_pca;
    rq->max_mem_distances = other->max_mem_distances;
    rq->norm_min = other->norm_min;
    rq->norm_max = other->norm_max;
    rq->is_trained = other->is_trained;
    vdx_aq_set_derived(rq);
    vdx_aq_drop_tables(rq);
    vdx_free(rq->codebooks);
    rq->codebooks = cb;
    if (cb && !(rq->train_type & VDX_RQ_SKIP_CODEBOOK_TABLES))
        if ((st = vdx_aq_compute_tables(rq))) return st;
    return owner_changed(rq);
}

/* ---- LSQ ------------------------------------------------------------------ */

vdx_status vdx_lsq_compute_binary_terms(const vdx_aq *lsq, float *bin) {
    vdx_clear_error();
    vdx_status st = need_kind(lsq, VDX_AQ_LSQ, "compute_binary_terms");
    if (!st) st = need_trained(lsq, "compute_binary_terms");
    if (st) return st;
    if (!bin)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "compute_binary_terms: NULL binaries");
    vdx_team_begin();
    st = vdx_lsq_binary_terms_internal(lsq, bin);
    vdx_team_end();
    return st;
}

vdx_status vdx_lsq_compute_unary_terms(const vdx_aq *lsq, int64_t n,
                                       const float *x, float *u) {
    vdx_clear_error();
    vdx_status st = need_kind(lsq, VDX_AQ_LSQ, "compute_unary_terms");
    if (!st) st = need_trained(lsq, "compute_unary_terms");
    if (st) return st;
    if (n < 0 || (n > 0 && (!x || !u)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "compute_unary_terms: bad arguments");
    if ((st = vdx_check_vectors(x, n, lsq->d, "vectors"))) return st;
    vdx_team_begin();
    st = vdx_lsq_unary_terms_internal(lsq, n, x, u);
    vdx_team_end();
    return st;
}

vdx_status vdx_lsq_icm_encode_step(const vdx_aq *lsq, int32_t *codes,
                                   const float *u, const float *bin, int64_t n,
                                   int64_t iters) {
    vdx_clear_error();
    vdx_status st = need_kind(lsq, VDX_AQ_LSQ, "icm_encode_step");
    if (st) return st;
    if (n < 0 || iters < 0 || (n > 0 && (!codes || !u || !bin)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "icm_encode_step: bad arguments");
    for (int64_t i = 0; i < n * lsq->M; i++)
        if (codes[i] < 0 || codes[i] >= lsq->K)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "icm_encode_step: code %d at position %lld is "
                             "outside 0..%lld",
                             codes[i], (long long)i, (long long)lsq->K - 1);
    vdx_team_begin();
    st = vdx_lsq_icm_step_internal(lsq, codes, u, bin, n, iters);
    vdx_team_end();
    return st;
}

vdx_status vdx_lsq_update_codebooks(vdx_aq *lsq, const float *x,
                                    const int32_t *codes, int64_t n) {
    vdx_clear_error();
    vdx_status st = need_kind(lsq, VDX_AQ_LSQ, "update_codebooks");
    if (st) return st;
    if (n < 1 || !x || !codes)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "update_codebooks: bad arguments");
    if ((st = vdx_check_vectors(x, n, lsq->d, "vectors"))) return st;
    if ((st = check_idx(lsq, n, codes, lsq->M, "update_codebooks"))) return st;
    if ((st = vdx_aq_alloc_codebooks(lsq))) return st;
    vdx_team_begin();
    st = vdx_lsq_update_codebooks_internal(lsq, x, codes, n);
    if (!st && lsq->centroid_norms) st = vdx_aq_compute_tables(lsq);
    vdx_team_end();
    if (!st) st = owner_changed(lsq);
    return st;
}
