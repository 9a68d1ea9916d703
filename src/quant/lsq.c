/*
 * lsq.c — the local search quantizer, LSQ++ (Martinez, Zakhmi, Hoos,
 * Little, "LSQ++: lower running time and higher recall in multi-codebook
 * quantization", ECCV 2018; Martinez et al., "Revisiting additive
 * quantization", ECCV 2016), with FAISS's LocalSearchQuantizer defaults.
 *
 * Encoding minimises |x - sum_m C_m[i_m]|^2 over all M codes jointly:
 *     |x|^2 + sum_m U_m[i_m] + sum_{m < o} B_mo[i_m][i_o],
 * with unary terms U_m[k] = |C_m[k]|^2 - 2 <x, C_m[k]> and binary terms
 * B_mo[k][l] = 2 <C_m[k], C_o[l]>.  Iterated conditional modes (ICM) set
 * each code in turn to its best value given the others (icm_iters sweeps);
 * iterated local search (ILS) perturbs nperts random codes before each ICM
 * run and keeps the result when it lowers the error.  Training alternates
 * the least-squares codebooks for the current codes (C = (B'B + lambd I)^-1
 * B'X, B the one-hot code matrix), a perturbation of the codebooks that
 * anneals to 0 (stochastic relaxation, SR-D), and an ILS re-encoding.
 *
 * Speed.  ICM needs, for code m, the sum S_m = sum_{o != m} B_om[i_o] (M-1
 * rows of K floats from a table of M^2 K^2 floats that does not fit the
 * caches).  FAISS re-adds those rows at every step; here S is kept per
 * vector and updated only when a code changes (2 (M-1) rows), and a sweep
 * that changes nothing ends the ICM run (further sweeps could not change
 * anything either).  The least-squares step solves B'B C = B'X by
 * Cholesky (FAISS inverts B'B: about five times the flops).  Threads take
 * blocks of vectors; each vector draws its perturbations from its own
 * generator seeded by (seed, vector number), so codes do not depend on
 * the thread count.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "aq.h"
#include "common/blas.h"
#include "common/interrupt.h"
#include "common/rng.h"
#include "common/threads.h"
#include "simd/kernels.h"

#define LSQ_BLOCK 32 /* vectors per block (their unaries stay in cache) */

static inline uint64_t mix(uint64_t a, uint64_t b) {
    vdx_rng r;
    vdx_rng_seed(&r, a ^ (b * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL));
    return vdx_rng_next(&r);
}

/* binaries[((m1 * M + m2) * K + k1) * K + k2] = 2 <C_m1[k1], C_m2[k2]> */
static void binary_terms(const vdx_aq *lsq, float *bin) {
    const int64_t M = lsq->M, K = lsq->K, d = lsq->d;
#pragma omp parallel for schedule(dynamic, 1) num_threads(vdx_nthreads())
    for (int64_t mm = 0; mm < M * M; mm++) {
        int64_t m1 = mm / M, m2 = mm % M;
        vdx_gemm_xyt((int)K, (int)K, (int)d, 2.0f,
                     lsq->codebooks + (size_t)(m1 * K * d),
                     lsq->codebooks + (size_t)(m2 * K * d),
                     bin + (size_t)mm * (size_t)(K * K));
    }
}

/* u[i * M * K + m * K + k] = |C_m[k]|^2 - 2 <x_i, C_m[k]> for nb vectors */
static void unary_block(const vdx_aq *lsq, const float *cnorm, int64_t nb,
                        const float *x, float *u) {
    const int64_t MK = lsq->M * lsq->K;
    for (int64_t i = 0; i < nb; i++) memcpy(u + i * MK, cnorm, (size_t)MK * sizeof(float));
    vdx_gemm_xyt_acc((int)nb, (int)MK, (int)lsq->d, -2.0f, x, lsq->codebooks, u);
}

static float code_error(const vdx_aq *lsq, const float *x, const int32_t *c,
                        float *buf) {
    vdx_aq_decode_idx(lsq, 1, c, lsq->M, buf);
    return vdx_kernels_get()->l2sqr(x, buf, (size_t)lsq->d);
}

/* S_m = sum_{o != m} B_om[c_o] for all m */
static void sums_from_scratch(const float *bin, int64_t M, int64_t K,
                              const int32_t *c, float *S) {
    memset(S, 0, (size_t)(M * K) * sizeof(float));
    for (int64_t o = 0; o < M; o++)
        for (int64_t m = 0; m < M; m++) {
            if (m == o) continue;
            const float *row = bin + ((size_t)(o * M + m) * (size_t)K + (size_t)c[o]) * (size_t)K;
            float *s = S + m * K;
            for (int64_t k = 0; k < K; k++) s[k] += row[k];
        }
}

/* ICM sweeps over one vector's codes c with unaries u (M x K) and sums S */
static void icm_vector(const float *bin, int64_t M, int64_t K, int64_t iters,
                       const float *u, float *S, int32_t *c, float *obj) {
    const vdx_kernels *Kr = vdx_kernels_get();
    for (int64_t it = 0; it < iters; it++) {
        int changed = 0;
        for (int64_t m = 0; m < M; m++) {
            const float *um = u + m * K, *sm = S + m * K;
            for (int64_t k = 0; k < K; k++) obj[k] = um[k] + sm[k];
            float mv;
            int32_t best = (int32_t)Kr->argmin(obj, (size_t)K, &mv);
            int32_t old = c[m];
            if (best == old) continue;
            changed = 1;
            for (int64_t o = 0; o < M; o++) {
                if (o == m) continue;
                const float *rn = bin + ((size_t)(m * M + o) * (size_t)K + (size_t)best) * (size_t)K;
                const float *ro = bin + ((size_t)(m * M + o) * (size_t)K + (size_t)old) * (size_t)K;
                float *so = S + o * K;
                for (int64_t k = 0; k < K; k++) so[k] += rn[k] - ro[k];
            }
            c[m] = best;
        }
        if (!changed) break;
    }
}

/* Iterated local search for n vectors x (codes n x M, updated in place):
 * ils_iters rounds of (perturb, ICM, keep if better).  Vector i draws from
 * a generator seeded by (seed, i0 + i). */
static vdx_status ils_encode(const vdx_aq *lsq, int64_t n, const float *x,
                             int32_t *codes, int64_t ils_iters, uint64_t seed,
                             int64_t i0base) {
    const int64_t M = lsq->M, K = lsq->K, d = lsq->d, MK = M * K;
    const int64_t nperts = VDX_MIN(lsq->nperts, M);
    float *bin = vdx_malloc_array((size_t)(M * M), (size_t)(K * K) * sizeof(float));
    float *cnorm = vdx_malloc_array((size_t)MK, sizeof(float));
    if (!bin || !cnorm) {
        vdx_free(bin);
        vdx_free(cnorm);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    binary_terms(lsq, bin);
    vdx_kernels_get()->norms_sqr_ny(cnorm, lsq->codebooks, (size_t)d, (size_t)MK);
    const int64_t nblocks = (n + LSQ_BLOCK - 1) / LSQ_BLOCK;
    vdx_status st = VDX_OK;
    int stop = 0;
#pragma omp parallel num_threads(vdx_nthreads()) if (nblocks > 1)
    {
        float *u = vdx_malloc_array((size_t)LSQ_BLOCK, (size_t)MK * sizeof(float));
        float *S = vdx_malloc_array((size_t)MK, sizeof(float));
        float *obj = vdx_malloc_array((size_t)K, sizeof(float));
        float *buf = vdx_malloc_array((size_t)d, sizeof(float));
        int32_t *best = vdx_malloc_array((size_t)M, sizeof(int32_t));
        int ok = u && S && obj && buf && best;
        if (!ok) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (!ok || vdx_poll_stop(&stop)) continue;
            int64_t b0 = blk * LSQ_BLOCK, nb = VDX_MIN(LSQ_BLOCK, n - b0);
            unary_block(lsq, cnorm, nb, x + b0 * d, u);
            for (int64_t i = 0; i < nb; i++) {
                const float *xi = x + (b0 + i) * d, *ui = u + i * MK;
                int32_t *c = codes + (b0 + i) * M;
                vdx_rng r;
                vdx_rng_seed(&r, mix(seed, (uint64_t)(i0base + b0 + i)));
                memcpy(best, c, (size_t)M * sizeof(int32_t));
                float best_obj = code_error(lsq, xi, c, buf);
                for (int64_t it = 0; it < ils_iters; it++) {
                    for (int64_t p = 0; p < nperts; p++) {
                        int64_t m = (int64_t)vdx_rng_below(&r, (uint64_t)M);
                        c[m] = (int32_t)vdx_rng_below(&r, (uint64_t)K);
                    }
                    sums_from_scratch(bin, M, K, c, S);
                    icm_vector(bin, M, K, lsq->icm_iters, ui, S, c, obj);
                    float e = code_error(lsq, xi, c, buf);
                    if (e < best_obj) {
                        best_obj = e;
                        memcpy(best, c, (size_t)M * sizeof(int32_t));
                    } else {
                        memcpy(c, best, (size_t)M * sizeof(int32_t));
                    }
                }
            }
        }
        vdx_free(u);
        vdx_free(S);
        vdx_free(obj);
        vdx_free(buf);
        vdx_free(best);
    }
    vdx_free(bin);
    vdx_free(cnorm);
    if (st) return st;
    if (stop)
        return vdx_raise(VDX_ERR_INTERRUPTED,
                         "LocalSearchQuantizer: encoding of %lld vectors "
                         "interrupted",
                         (long long)n);
    return VDX_OK;
}

/* random codes for vectors i0base .. i0base + n - 1 */
static void random_codes(const vdx_aq *lsq, int64_t n, int32_t *codes,
                         uint64_t seed, int64_t i0base) {
    for (int64_t i = 0; i < n; i++) {
        vdx_rng r;
        vdx_rng_seed(&r, mix(seed ^ 0xC0DEC0DEULL, (uint64_t)(i0base + i)));
        for (int64_t m = 0; m < lsq->M; m++)
            codes[i * lsq->M + m] = (int32_t)vdx_rng_below(&r, (uint64_t)lsq->K);
    }
}

vdx_status vdx_lsq_encode(const vdx_aq *lsq, int64_t n, const float *x,
                          int32_t *idx) {
    uint64_t seed = (uint64_t)(uint32_t)lsq->random_seed;
    random_codes(lsq, n, idx, seed, 0);
    return ils_encode(lsq, n, x, idx, lsq->encode_ils_iters, seed, 0);
}

/* ---- codebook update ------------------------------------------------------ */

vdx_status vdx_lsq_update_codebooks_internal(vdx_aq *lsq, const float *x,
                                             const int32_t *codes, int64_t n);

vdx_status vdx_lsq_update_codebooks_internal(vdx_aq *lsq, const float *x,
                                             const int32_t *codes, int64_t n) {
    const int64_t M = lsq->M, K = lsq->K, d = lsq->d, T = M * K;
    const int dbl = lsq->update_codebooks_with_double;
    double *A = vdx_calloc((size_t)(T * T), sizeof(double));
    double *B = vdx_calloc((size_t)(T * d), sizeof(double)); /* T x d */
    float *Af = NULL, *Bf = NULL;
    vdx_status st = A && B ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    if (st) goto done;
    for (int64_t i = 0; i < n; i++) {
        const int32_t *c = codes + i * M;
        for (int64_t m = 0; m < M; m++) {
            int64_t a = m * K + c[m];
            A[a * T + a] += 1;
            for (int64_t o = m + 1; o < M; o++) {
                int64_t b = o * K + c[o];
                A[a * T + b] += 1;
                A[b * T + a] += 1;
            }
            double *br = B + a * d;
            const float *xi = x + i * d;
            for (int64_t j = 0; j < d; j++) br[j] += xi[j];
        }
    }
    for (int64_t a = 0; a < T; a++) A[a * T + a] += lsq->lambd;
    int ti = (int)T, di = (int)d, info = 0;
    /* column-major right-hand sides: T x d with leading dimension T */
    if (dbl) {
        double *Bc = vdx_malloc_array((size_t)(T * d), sizeof(double));
        if (!Bc) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int64_t a = 0; a < T; a++)
            for (int64_t j = 0; j < d; j++) Bc[j * T + a] = B[a * d + j];
        dpotrf_("U", &ti, A, &ti, &info);
        if (info == 0) dpotrs_("U", &ti, &di, A, &ti, Bc, &ti, &info);
        if (info == 0)
            for (int64_t a = 0; a < T; a++)
                for (int64_t j = 0; j < d; j++)
                    lsq->codebooks[a * d + j] = (float)Bc[j * T + a];
        vdx_free(Bc);
    } else {
        Af = vdx_malloc_array((size_t)(T * T), sizeof(float));
        Bf = vdx_malloc_array((size_t)(T * d), sizeof(float));
        if (!Af || !Bf) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int64_t a = 0; a < T * T; a++) Af[a] = (float)A[a];
        for (int64_t a = 0; a < T; a++)
            for (int64_t j = 0; j < d; j++) Bf[j * T + a] = (float)B[a * d + j];
        spotrf_("U", &ti, Af, &ti, &info);
        if (info == 0) spotrs_("U", &ti, &di, Af, &ti, Bf, &ti, &info);
        if (info == 0)
            for (int64_t a = 0; a < T; a++)
                for (int64_t j = 0; j < d; j++)
                    lsq->codebooks[a * d + j] = Bf[j * T + a];
    }
    if (info != 0)
        st = vdx_raise(VDX_ERR_INTERNAL,
                       "LocalSearchQuantizer: B'B + lambd I is not positive "
                       "definite (LAPACK info %d; lambd=%g)",
                       info, (double)lsq->lambd);
done:
    vdx_free(A);
    vdx_free(B);
    vdx_free(Af);
    vdx_free(Bf);
    return st;
}

/* standard normal from r (Box-Muller) */
static double gauss(vdx_rng *r) {
    double u1 = ((double)(vdx_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(vdx_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

vdx_status vdx_lsq_train(vdx_aq *lsq, int64_t n, const float *x) {
    const int64_t M = lsq->M, K = lsq->K, d = lsq->d;
    for (int64_t m = 0; m < M; m++)
        if (lsq->nbits[m] != lsq->nbits[0])
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "LocalSearchQuantizer: every codebook needs the "
                             "same nbits (%d and %d)",
                             lsq->nbits[0], lsq->nbits[m]);
    if (n < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "LocalSearchQuantizer train: no training vectors");
    lsq->nperts = VDX_MIN(lsq->nperts, M); /* as FAISS (it is stored) */
    vdx_status st = vdx_aq_alloc_codebooks(lsq);
    if (st) return st;
    vdx_aq_drop_tables(lsq);
    memset(lsq->codebooks, 0, (size_t)(M * K * d) * sizeof(float));
    int32_t *codes = vdx_malloc_array((size_t)n, (size_t)M * sizeof(int32_t));
    double *stddev = vdx_calloc((size_t)d, sizeof(double));
    float *rec = NULL, *norms = NULL;
    if (!codes || !stddev) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    vdx_rng g;
    vdx_rng_seed(&g, (uint64_t)(uint32_t)lsq->random_seed);
    random_codes(lsq, n, codes, vdx_rng_next(&g), 0);
    for (int64_t j = 0; j < d; j++) {
        double mean = 0, s = 0;
        for (int64_t i = 0; i < n; i++) mean += x[i * d + j];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) {
            double t = x[i * d + j] - mean;
            s += t * t;
        }
        stddev[j] = sqrt(s / (double)n);
    }
    lsq->is_trained = 0;
    for (int64_t it = 0; it < lsq->train_iters; it++) {
        if (vdx_interrupted()) {
            st = vdx_raise(VDX_ERR_INTERRUPTED,
                           "LocalSearchQuantizer train: interrupted at "
                           "iteration %lld of %lld",
                           (long long)it + 1, (long long)lsq->train_iters);
            goto done;
        }
        if ((st = vdx_lsq_update_codebooks_internal(lsq, x, codes, n))) goto done;
        /* SR-D: codebook noise annealed to 0 */
        double T = pow(1.0 - (double)(it + 1) / (double)lsq->train_iters,
                       (double)lsq->p);
        for (int64_t e = 0; e < M * K; e++)
            for (int64_t j = 0; j < d; j++)
                lsq->codebooks[e * d + j] +=
                    (float)(T * gauss(&g) * stddev[j] / (double)M);
        if ((st = ils_encode(lsq, n, x, codes, lsq->train_ils_iters,
                             vdx_rng_next(&g), 0)))
            goto done;
    }
    lsq->is_trained = 1;
    rec = vdx_malloc_array((size_t)n, (size_t)d * sizeof(float));
    norms = vdx_malloc_array((size_t)n, sizeof(float));
    if (!rec || !norms) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    vdx_aq_decode_idx(lsq, n, codes, M, rec);
    vdx_kernels_get()->norms_sqr_ny(norms, rec, (size_t)d, (size_t)n);
    st = vdx_aq_train_norm(lsq, n, norms);
done:
    if (st) lsq->is_trained = 0;
    vdx_free(codes);
    vdx_free(stddev);
    vdx_free(rec);
    vdx_free(norms);
    return st;
}

/* ---- FAISS's test-facing pieces ----------------------------------------- */

vdx_status vdx_lsq_binary_terms_internal(const vdx_aq *lsq, float *bin);
vdx_status vdx_lsq_binary_terms_internal(const vdx_aq *lsq, float *bin) {
    binary_terms(lsq, bin);
    return VDX_OK;
}

vdx_status vdx_lsq_unary_terms_internal(const vdx_aq *lsq, int64_t n,
                                        const float *x, float *u);
vdx_status vdx_lsq_unary_terms_internal(const vdx_aq *lsq, int64_t n,
                                        const float *x, float *u) {
    /* FAISS's layout: u[(m * n + i) * K + k] */
    const int64_t M = lsq->M, K = lsq->K, d = lsq->d;
    float *cn = vdx_malloc_array((size_t)(M * K), sizeof(float));
    if (!cn) return VDX_ERR_OUT_OF_MEMORY;
    vdx_kernels_get()->norms_sqr_ny(cn, lsq->codebooks, (size_t)d, (size_t)(M * K));
    for (int64_t m = 0; m < M; m++) {
        float *um = u + (size_t)(m * n * K);
        for (int64_t i = 0; i < n; i++)
            memcpy(um + i * K, cn + m * K, (size_t)K * sizeof(float));
        if (n > 0)
            vdx_gemm_xyt_acc((int)n, (int)K, (int)d, -2.0f, x,
                             lsq->codebooks + (size_t)(m * K * d), um);
    }
    vdx_free(cn);
    return VDX_OK;
}

vdx_status vdx_lsq_icm_step_internal(const vdx_aq *lsq, int32_t *codes,
                                     const float *u, const float *bin,
                                     int64_t n, int64_t iters);
vdx_status vdx_lsq_icm_step_internal(const vdx_aq *lsq, int32_t *codes,
                                     const float *u, const float *bin,
                                     int64_t n, int64_t iters) {
    /* the plain sweeps (FAISS's icm_encode_step, same summation order) */
    const int64_t M = lsq->M, K = lsq->K;
    vdx_status st = VDX_OK;
#pragma omp parallel num_threads(vdx_nthreads()) if (n > 64)
    {
        float *obj = vdx_malloc_array((size_t)K, sizeof(float));
        if (!obj) {
#pragma omp atomic write
            st = VDX_ERR_OUT_OF_MEMORY;
        }
        const vdx_kernels *Kr = vdx_kernels_get();
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < n; i++) {
            if (!obj) continue;
            int32_t *c = codes + i * M;
            for (int64_t it = 0; it < iters; it++)
                for (int64_t m = 0; m < M; m++) {
                    memcpy(obj, u + (size_t)((m * n + i) * K), (size_t)K * sizeof(float));
                    for (int64_t o = 0; o < M; o++) {
                        if (o == m) continue;
                        const float *row = bin + ((size_t)(o * M + m) * (size_t)K + (size_t)c[o]) * (size_t)K;
                        for (int64_t k = 0; k < K; k++) obj[k] += row[k];
                    }
                    float mv;
                    c[m] = (int32_t)Kr->argmin(obj, (size_t)K, &mv);
                }
        }
        vdx_free(obj);
    }
    return st;
}
