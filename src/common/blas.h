/*
 * blas.h — the BLAS routines vecdex calls, declared with the Fortran ABI so
 * that any BLAS (OpenBLAS, MKL, the reference) links without its own
 * header.
 */
#ifndef VDX_BLAS_H
#define VDX_BLAS_H

extern void sgemm_(const char *transa, const char *transb, const int *m,
                   const int *n, const int *k, const float *alpha,
                   const float *a, const int *lda, const float *b,
                   const int *ldb, const float *beta, float *c,
                   const int *ldc);

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

#endif
