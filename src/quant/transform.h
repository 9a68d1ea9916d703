/*
 * transform.h — the vector transforms (FAISS's VectorTransform family),
 * private layout shared by transform.c (the kinds, apply / reverse, PCA,
 * random rotations), opq.c (OPQ training), index/pretransform.c and
 * io/transform_io.c.
 */
#ifndef VDX_TRANSFORM_H
#define VDX_TRANSFORM_H

#include "common/common.h"

typedef enum vdx_vt_kind {
    VDX_VT_LINEAR = 0, /* LinearTransform (also OPQ read back from a file) */
    VDX_VT_RR,         /* RandomRotationMatrix */
    VDX_VT_PCA,        /* PCAMatrix */
    VDX_VT_OPQ,        /* OPQMatrix */
    VDX_VT_NORM,       /* NormalizationTransform */
    VDX_VT_CENTER,     /* CenteringTransform */
    VDX_VT_HADAMARD    /* HadamardRotation (hadamard.c) */
} vdx_vt_kind;

struct vdx_vt {
    vdx_vt_kind kind;
    int64_t d_in, d_out;
    int is_trained;
    /* linear kinds: y = A x + b */
    int have_bias, is_orthonormal;
    float *A; /* d_out x d_in, NULL until trained / set */
    float *b; /* d_out, NULL when !have_bias or untrained */
    /* PCA (mean also for centering) */
    float eigen_power, epsilon;
    int random_rotation, balanced_bins;
    int64_t max_points_per_d;
    float *mean;        /* d_in */
    float *eigenvalues; /* d_in, largest first */
    float *PCAMat;      /* d_in x d_in, eigenvector i in row i */
    /* OPQ */
    int64_t M;
    int niter, niter_pq, niter_pq_0, verbose;
    int64_t max_train_points;
    /* normalisation */
    float norm;
    /* HadamardRotation: the signs' seed (d_out: d_in rounded up to 2^k) */
    uint32_t seed;
};

/* A new transform of `kind` with FAISS's defaults and no arrays; no
 * argument checks (callers check). */
VDX_INTERNAL vdx_status vdx_vt_alloc(vdx_vt_kind kind, int64_t d_in,
                                     int64_t d_out, vdx_vt **out);
/* Applies a trained vt without the public checks (threads: the caller's
 * team). */
VDX_INTERNAL vdx_status vdx_vt_apply_internal(const vdx_vt *vt, int64_t n,
                                              const float *x, float *y);
VDX_INTERNAL vdx_status vdx_vt_reverse_internal(const vdx_vt *vt, int64_t n,
                                                const float *y, float *x);
VDX_INTERNAL vdx_status vdx_vt_train_internal(vdx_vt *vt, int64_t n,
                                              const float *x);
/* 1 when reverse is defined for vt (orthonormal linear, norm, center). */
VDX_INTERNAL int vdx_vt_reversible(const vdx_vt *vt);
/* Whether A (d_out x d_in) has orthonormal rows (or columns when
 * d_out > d_in) up to a float tolerance. */
VDX_INTERNAL int vdx_vt_check_orthonormal(const vdx_vt *vt);

/* q (n vectors of length m, stored one after the other, m >= n) becomes
 * an orthonormal set spanning the same space (LAPACK QR). */
VDX_INTERNAL vdx_status vdx_matrix_qr(int64_t m, int64_t n, float *q);
/* n standard normal floats from seed. */
VDX_INTERNAL void vdx_randn(float *x, size_t n, uint64_t seed);
/* The first m of n rows of x (d floats each) in a seeded random order, as
 * a new array; *out = NULL when n <= m (no sampling needed). */
VDX_INTERNAL vdx_status vdx_subsample(int64_t n, int64_t d, int64_t m,
                                      const float *x, uint64_t seed,
                                      float **out);

/* hadamard.c: the output dimension for d (the next power of 2), and the
 * transform of n rows (y: n x d_out, distinct from x unless d_in == d_out). */
VDX_INTERNAL int64_t vdx_hadamard_dout(int64_t d);
VDX_INTERNAL vdx_status vdx_hadamard_apply(const vdx_vt *vt, int64_t n,
                                           const float *x, float *y);

/* OPQ training (opq.c). */
VDX_INTERNAL vdx_status vdx_opq_train(vdx_vt *vt, int64_t n, const float *x);

#endif
