/*
 * blas.h — the BLAS routines vecdex calls, declared with the Fortran ABI so
 * that any BLAS (OpenBLAS, MKL, the reference) links without its own
 * header.
 */
#ifndef VDX_BLAS_H
#define VDX_BLAS_H

#include <omp.h>

#include "threads.h"

extern void sgemm_(const char *transa, const char *transb, const int *m,
                   const int *n, const int *k, const float *alpha,
                   const float *a, const int *lda, const float *b,
                   const int *ldb, const float *beta, float *c,
                   const int *ldc);

/* BLAS syrk and the LAPACK routines of the vector transforms (OpenBLAS
 * exports LAPACK too): QR (random rotations), symmetric eigen-decomposition
 * (PCA, in double) and SVD (OPQ's Procrustes step). */
extern void ssyrk_(const char *uplo, const char *trans, const int *n,
                   const int *k, const float *alpha, const float *a,
                   const int *lda, const float *beta, float *c,
                   const int *ldc);
extern void sgeqrf_(const int *m, const int *n, float *a, const int *lda,
                    float *tau, float *work, const int *lwork, int *info);
extern void sorgqr_(const int *m, const int *n, const int *k, float *a,
                    const int *lda, const float *tau, float *work,
                    const int *lwork, int *info);
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a,
                   const int *lda, double *w, double *work, const int *lwork,
                   int *info);
extern void sgesvd_(const char *jobu, const char *jobvt, const int *m,
                    const int *n, float *a, const int *lda, float *s, float *u,
                    const int *ldu, float *vt, const int *ldvt, float *work,
                    const int *lwork, int *info);

/* Cholesky factorisation and solve (additive quantizers' least squares). */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
                    int *info);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs,
                    const double *a, const int *lda, double *b, const int *ldb,
                    int *info);
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda,
                    int *info);
extern void spotrs_(const char *uplo, const int *n, const int *nrhs,
                    const float *a, const int *lda, float *b, const int *ldb,
                    int *info);

/* tile[i * ny + j] = alpha * <x_i, y_j> for the nx x d rows x and ny x d
 * rows y (row-major): one column-major sgemm computing tile^T. */
static inline void vdx_gemm_xyt(int nx, int ny, int d, float alpha,
                                const float *x, const float *y, float *tile) {
    float beta = 0;
    sgemm_("T", "N", &ny, &nx, &d, &alpha, y, &d, x, &d, &beta, tile, &ny);
}

/* As vdx_gemm_xyt, but accumulates into the tile (beta = 1): the caller
 * pre-fills it, and BLAS skips its own zeroing pass. */
static inline void vdx_gemm_xyt_acc(int nx, int ny, int d, float alpha,
                                    const float *x, const float *y,
                                    float *tile) {
    float beta = 1;
    sgemm_("T", "N", &ny, &nx, &d, &alpha, y, &d, x, &d, &beta, tile, &ny);
}

/* sgemm_("T", "N", m, n, k, ...) kept on the calling thread when it is
 * small: outside a parallel region, a product below the library's work
 * threshold (threads.h, a multiply-add counting 1/8) is cut along n into
 * pieces of at most 2^18 multiply-adds, the size above which OpenBLAS
 * threads an sgemm (its OpenMP build wakes a team for each: microseconds
 * idle, a scheduler slice on a loaded machine, for a product of tens of
 * microseconds).  Inside an active region BLAS runs serially by itself.
 * (Setting OpenMP's thread count to 1 around the call would stick:
 * OpenBLAS keeps one thread once it has seen 1.)  Each column of c is
 * computed as by one call. */
#define VDX_BLAS_SERIAL_MNK 262144.0
static inline void vdx_gemm_tn_small(int m, int n, int k, float alpha,
                                     const float *a, int lda, const float *b,
                                     int ldb, float beta, float *c, int ldc) {
    const double mnk = (double)m * (double)n * (double)k;
    int step = n;
    if (mnk > VDX_BLAS_SERIAL_MNK && !omp_in_parallel() &&
        vdx_nthreads_for(mnk / 8) == 1) {
        double s = VDX_BLAS_SERIAL_MNK / ((double)m * (double)k);
        step = s < 1 ? 1 : (int)s;
    }
    for (int j0 = 0; j0 < n; j0 += step) {
        int nj = n - j0 < step ? n - j0 : step;
        sgemm_("T", "N", &m, &nj, &k, &alpha, a, &lda, b + (size_t)j0 * (size_t)ldb,
               &ldb, &beta, c + (size_t)j0 * (size_t)ldc, &ldc);
    }
}

/* vdx_gemm_xyt (beta 0) or vdx_gemm_xyt_acc (beta 1) of a small product,
 * on the calling thread (vdx_gemm_tn_small). */
static inline void vdx_gemm_xyt_small(int nx, int ny, int d, float alpha,
                                      const float *x, const float *y,
                                      float beta, float *tile) {
    vdx_gemm_tn_small(ny, nx, d, alpha, y, d, x, d, beta, tile, ny);
}

#endif
