/*
 * opq.c — OPQMatrix training: T. Ge, K. He, Q. Ke, J. Sun, "Optimized
 * Product Quantization", CVPR 2013 / TPAMI 2014, the non-parametric
 * alternating optimisation, with FAISS's schedule:
 *
 *   x <- a sample of max_train_points vectors, centred, zero-padded to
 *        d = max(d_in, d_out) components;
 *   R <- the first d_out rows of a random d x d rotation (seed 1234);
 *   niter times:
 *     y = R x;  train a PQ (M sub-quantizers, 8 bits) on y — k-means from
 *     scratch for niter_pq_0 iterations the first time, then niter_pq
 *     Lloyd iterations hot-started from the previous centroids;
 *     y' = decode(encode(y));
 *     R <- argmin ||R x - y'|| over matrices with orthonormal rows
 *          (orthogonal Procrustes: SVD of Y' X^T = U S V^T, R = U V^T).
 *
 * The PQ steps reuse src/quant/pq.h (encode / decode) and k-means; the
 * hot-started Lloyd iterations are local here (pq.h has no hot start).
 * The transform has no bias: centring only conditions the training, as in
 * FAISS.
 */
#include <string.h>

#include "transform.h"
#include "pq.h"
#include "cluster/kmeans.h"
#include "common/blas.h"
#include "common/rng.h"
#include "index/index_internal.h"

/* y (n x d2) = x (n x d) R^T, in row blocks (BLAS ints stay in range). */
static void project(int64_t n, int64_t d, int64_t d2, const float *x,
                    const float *R, float *y) {
    int64_t br = VDX_MAX((int64_t)1, ((int64_t)1 << 24) / VDX_MAX(d, d2));
    for (int64_t i0 = 0; i0 < n; i0 += br) {
        int64_t nb = VDX_MIN(br, n - i0);
        vdx_gemm_xyt((int)nb, (int)d2, (int)d, 1.0f, x + i0 * d, R,
                     y + i0 * d2);
    }
}

/* niter Lloyd iterations on the n x dsub points xs, from the k centroids
 * in cent (updated in place).  Empty clusters take half of a populated
 * one (split with a small perturbation), as k-means does. */
static vdx_status lloyd(int64_t dsub, int64_t k, int64_t n, const float *xs,
                        int niter, float *cent, float *dist, int64_t *assign,
                        int64_t *count, double *sum, vdx_rng *r) {
    vdx_index *q = NULL;
    vdx_status st = vdx_index_flat_new(dsub, VDX_METRIC_L2, &q);
    if (st) return st;
    for (int it = 0; it < niter && !st; it++) {
        if ((st = q->ops->reset(q)) || (st = q->ops->add(q, k, cent, NULL)) ||
            (st = q->ops->search(q, n, xs, 1, NULL, dist, assign)))
            break;
        memset(count, 0, (size_t)k * sizeof(int64_t));
        memset(sum, 0, (size_t)(k * dsub) * sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            int64_t c = assign[i];
            if (c < 0 || c >= k) continue;
            count[c]++;
            for (int64_t j = 0; j < dsub; j++) sum[c * dsub + j] += xs[i * dsub + j];
        }
        for (int64_t c = 0; c < k; c++)
            if (count[c])
                for (int64_t j = 0; j < dsub; j++)
                    cent[c * dsub + j] = (float)(sum[c * dsub + j] / (double)count[c]);
        for (int64_t c = 0; c < k; c++) {
            if (count[c]) continue;
            /* size-proportional choice of the cluster to split */
            int64_t cj = 0;
            for (;;) {
                float pr = n > k ? (float)(count[cj] - 1) / (float)(n - k)
                                 : (float)(count[cj] > 1);
                if (vdx_rng_float(r) < pr) break;
                cj = (cj + 1) % k;
            }
            const float eps = 1.0f / 1024;
            for (int64_t j = 0; j < dsub; j++) {
                float s = (j % 2 == 0) ? 1 + eps : 1 - eps;
                cent[c * dsub + j] = cent[cj * dsub + j] * s;
                cent[cj * dsub + j] *= 2 - s;
            }
            count[c] = count[cj] / 2;
            count[cj] -= count[c];
        }
    }
    vdx_index_free(q);
    return st;
}

/* Trains pq on the n x d2 vectors y: from scratch (k-means) when
 * `fresh`, else hot-started Lloyd from pq->centroids. */
static vdx_status pq_step(vdx_pq *pq, int64_t n, const float *y, int fresh,
                          int niter, float *xs, float *dist, int64_t *assign,
                          int64_t *count, double *sum, vdx_rng *r) {
    const int64_t dsub = pq->dsub, d = pq->d, k = pq->ksub;
    vdx_kmeans_params cp;
    vdx_kmeans_params_init(&cp);
    cp.niter = niter;
    cp.max_points_per_centroid = 1000; /* FAISS's setting inside OPQ */
    cp.seed = 1234;
    for (int64_t m = 0; m < pq->M; m++) {
        for (int64_t i = 0; i < n; i++)
            memcpy(xs + i * dsub, y + i * d + m * dsub,
                   (size_t)dsub * sizeof(float));
        float *cent = pq->centroids + m * k * dsub;
        vdx_status st =
            fresh ? vdx_kmeans_train_metric(dsub, k, n, xs, &cp, VDX_METRIC_L2,
                                            cent, NULL, NULL)
                  : lloyd(dsub, k, n, xs, niter, cent, dist, assign, count,
                          sum, r);
        if (st) return st;
    }
    return VDX_OK;
}

/* R (d2 x d, orthonormal rows) <- the Procrustes solution for
 * C = Y'^T X (col-major d2 x d, in xxr; destroyed). */
static vdx_status procrustes(int64_t d, int64_t d2, float *xxr, float *R,
                             float *u, float *vt, float *sv) {
    int di = (int)d, d2i = (int)d2, lwork = -1, info = 0;
    float wq = 0;
    sgesvd_("A", "A", &d2i, &di, xxr, &d2i, sv, u, &d2i, vt, &di, &wq, &lwork,
            &info);
    int64_t lw = VDX_MAX((int64_t)wq, 5 * VDX_MAX(d, d2));
    float *work = vdx_malloc_array((size_t)lw, sizeof(float));
    if (!work) return VDX_ERR_OUT_OF_MEMORY;
    lwork = (int)lw;
    sgesvd_("A", "A", &d2i, &di, xxr, &d2i, sv, u, &d2i, vt, &di, work, &lwork,
            &info);
    vdx_free(work);
    if (info != 0)
        return vdx_raise(VDX_ERR_INTERNAL,
                         "OPQMatrix: LAPACK sgesvd failed (info=%d)", info);
    /* R[i][j] = sum_{l < d2} U[i][l] V[j][l]; col-major: R^T = V_:d2 U^T */
    float one = 1, zero = 0;
    sgemm_("T", "T", &di, &d2i, &d2i, &one, vt, &di, u, &d2i, &zero, R, &di);
    return VDX_OK;
}

vdx_status vdx_opq_train(vdx_vt *vt, int64_t n, const float *x_in) {
    const int64_t din = vt->d_in, d2 = vt->d_out;
    const int64_t d = VDX_MAX(din, d2);
    vdx_status st;
    float *sub = NULL;
    if ((st = vdx_subsample(n, din, vt->max_train_points, x_in, 1234, &sub)))
        return st;
    const float *x = sub ? sub : x_in;
    if (sub) n = vt->max_train_points;

    vdx_pq pq;
    memset(&pq, 0, sizeof pq);
    float *xt = NULL, *R = NULL, *y = NULL, *rec = NULL, *xxr = NULL,
          *u = NULL, *vtm = NULL, *sv = NULL, *xs = NULL, *dist = NULL;
    uint8_t *codes = NULL;
    int64_t *assign = NULL, *count = NULL;
    double *sum = NULL, *mean = NULL;
    if ((st = vdx_pq_setup(&pq, d2, vt->M, 8))) goto done;
    if (n < pq.ksub) {
        st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                       "OPQMatrix: %lld training points cannot train a PQ "
                       "with 256 centroids per sub-quantizer (need n >= 256)",
                       (long long)n);
        goto done;
    }
    xt = vdx_calloc((size_t)n, (size_t)d * sizeof(float));
    R = vdx_malloc_array((size_t)d, (size_t)d * sizeof(float));
    y = vdx_malloc_array((size_t)n, (size_t)d2 * sizeof(float));
    rec = vdx_malloc_array((size_t)n, (size_t)d2 * sizeof(float));
    xxr = vdx_malloc_array((size_t)d, (size_t)d2 * sizeof(float));
    u = vdx_malloc_array((size_t)d2, (size_t)d2 * sizeof(float));
    vtm = vdx_malloc_array((size_t)d, (size_t)d * sizeof(float));
    sv = vdx_malloc_array((size_t)d, sizeof(float));
    xs = vdx_malloc_array((size_t)n, (size_t)pq.dsub * sizeof(float));
    dist = vdx_malloc_array((size_t)n, sizeof(float));
    assign = vdx_malloc_array((size_t)n, sizeof(int64_t));
    count = vdx_malloc_array((size_t)pq.ksub, sizeof(int64_t));
    sum = vdx_malloc_array((size_t)(pq.ksub * pq.dsub), sizeof(double));
    mean = vdx_calloc((size_t)din, sizeof(double));
    codes = vdx_malloc_array((size_t)n, pq.code_size);
    if (!xt || !R || !y || !rec || !xxr || !u || !vtm || !sv || !xs || !dist ||
        !assign || !count || !sum || !mean || !codes ||
        (st = vdx_pq_alloc_centroids(&pq))) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* centre and pad */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < din; j++) mean[j] += x[i * din + j];
    for (int64_t j = 0; j < din; j++) mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < din; j++)
            xt[i * d + j] = (float)(x[i * din + j] - mean[j]);
    /* initial rotation: the caller's A when it fits, else random */
    if (vt->A && d == din) {
        memcpy(R, vt->A, (size_t)(d2 * d) * sizeof(float));
    } else {
        vdx_randn(R, (size_t)(d * d), 1234);
        if ((st = vdx_matrix_qr(d, d, R))) goto done;
    }
    vdx_rng r;
    vdx_rng_seed(&r, 1234 ^ 0x5eed5eedULL);
    for (int iter = 0; iter < vt->niter; iter++) {
        project(n, d, d2, xt, R, y);
        if ((st = pq_step(&pq, n, y, iter == 0,
                          iter == 0 ? vt->niter_pq_0 : vt->niter_pq, xs, dist,
                          assign, count, sum, &r)))
            goto done;
        vdx_pq_encode(&pq, n, y, codes);
        vdx_pq_decode_n(&pq, n, codes, rec);
        /* xxr (col-major d2 x d) = rec^T xt, summed over the n points */
        int d2i = (int)d2, di = (int)d;
        float one = 1, zero = 0;
        int64_t br = VDX_MAX((int64_t)1, ((int64_t)1 << 24) / d);
        for (int64_t i0 = 0; i0 < n; i0 += br) {
            int ki = (int)VDX_MIN(br, n - i0);
            float beta = i0 == 0 ? zero : one;
            sgemm_("N", "T", &d2i, &di, &ki, &one, rec + i0 * d2, &d2i,
                   xt + i0 * d, &di, &beta, xxr, &d2i);
        }
        if ((st = procrustes(d, d2, xxr, R, u, vtm, sv))) goto done;
    }
    /* keep the d_in input columns (drops the padding) */
    float *A = vdx_malloc_array((size_t)d2, (size_t)din * sizeof(float));
    if (!A) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < d2; i++)
        memcpy(A + i * din, R + i * d, (size_t)din * sizeof(float));
    vdx_free(vt->A);
    vdx_free(vt->b);
    vt->A = A;
    vt->b = NULL;
    vt->have_bias = 0;
    vt->is_orthonormal = 1;
    vt->is_trained = 1;
done:
    vdx_pq_clear(&pq);
    vdx_free(sub);
    vdx_free(xt);
    vdx_free(R);
    vdx_free(y);
    vdx_free(rec);
    vdx_free(xxr);
    vdx_free(u);
    vdx_free(vtm);
    vdx_free(sv);
    vdx_free(xs);
    vdx_free(dist);
    vdx_free(assign);
    vdx_free(count);
    vdx_free(sum);
    vdx_free(mean);
    vdx_free(codes);
    return st;
}
