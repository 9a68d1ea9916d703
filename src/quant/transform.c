/*
 * transform.c — vector transforms, FAISS's VectorTransform family:
 *
 *   LinearTransform        y = A x + b (A d_out x d_in, row-major), applied
 *                          in row blocks through sgemm; reverse A^T (y - b)
 *                          when A is orthonormal.
 *   RandomRotationMatrix   a Gaussian matrix orthonormalised by a LAPACK QR
 *                          (rows when d_out <= d_in, else the first d_in
 *                          columns of a d_out x d_out rotation: a tight
 *                          frame), seeded (FAISS's train seed, 12345).
 *   PCAMatrix              principal components (Pearson 1901; the usual
 *                          eigen-decomposition of the scatter matrix): mean,
 *                          scatter sum (x - m)(x - m)^T accumulated with
 *                          ssyrk over centred row blocks, eigenvectors by
 *                          LAPACK dsyev in double; the first d_out rows,
 *                          optionally scaled by eigenvalue^eigen_power
 *                          (whitening at -0.5) and rotated.
 *   NormalizationTransform rows to unit L2 norm.
 *   CenteringTransform     x - mean.
 * OPQMatrix (Ge et al. 2013) is trained in opq.c.
 *
 * The public entry points check their arguments and bracket the work with
 * the thread team of the call; the *_internal functions assume valid input
 * (index/pretransform.c calls them inside its own public calls).
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "transform.h"
#include "common/blas.h"
#include "common/rng.h"
#include "common/threads.h"

/* Largest A accepted (entries): 1 GiB of float32. */
#define VT_MAX_MATRIX ((int64_t)1 << 28)
/* Rows per sgemm block: keeps every BLAS int in range. */
#define VT_BLOCK_ELEMS ((int64_t)1 << 24)

static const char *const kind_names[] = {
    "LinearTransform",        "RandomRotationMatrix", "PCAMatrix",
    "OPQMatrix",              "NormalizationTransform",
    "CenteringTransform",     "HadamardRotation"};

static int is_linear(const vdx_vt *vt) {
    return vt->kind == VDX_VT_LINEAR || vt->kind == VDX_VT_RR ||
           vt->kind == VDX_VT_PCA || vt->kind == VDX_VT_OPQ;
}

/* ---- helpers ------------------------------------------------------------- */

/* Standard normal draws as FAISS's float_randn makes them, so that the
 * same seed gives FAISS's random rotations: n is cut into 1024 blocks (one
 * when n < 1024); a generator seeded with `seed` draws a0, b0 (31-bit
 * ints); block j has its own mt19937 seeded with a0 + j * b0 and fills its
 * range with Marsaglia's polar method, two values per accepted pair. */
void vdx_randn(float *x, size_t n, uint64_t seed) {
    const size_t nblock = n < 1024 ? 1 : 1024;
    vdx_mt19937 g0;
    vdx_mt_seed(&g0, (uint32_t)seed);
    int64_t a0 = (int64_t)(vdx_mt_next(&g0) & 0x7fffffffu);
    int64_t b0 = (int64_t)(vdx_mt_next(&g0) & 0x7fffffffu);
    for (size_t j = 0; j < nblock; j++) {
        vdx_mt19937 g;
        vdx_mt_seed(&g, (uint32_t)(uint64_t)(a0 + (int64_t)j * b0));
        double a = 0, b = 0, s2 = 0;
        int state = 0;
        const size_t i0 = j * n / nblock, i1 = (j + 1) * n / nblock;
        for (size_t i = i0; i < i1; i++) {
            if (state == 0) {
                do {
                    a = 2.0 * ((double)vdx_mt_next(&g) / 4294967295.0) - 1;
                    b = 2.0 * ((double)vdx_mt_next(&g) / 4294967295.0) - 1;
                    s2 = a * a + b * b;
                } while (s2 >= 1.0 || s2 == 0.0);
                x[i] = (float)(a * sqrt(-2.0 * log(s2) / s2));
            } else {
                x[i] = (float)(b * sqrt(-2.0 * log(s2) / s2));
            }
            state = 1 - state;
        }
    }
}

vdx_status vdx_matrix_qr(int64_t m, int64_t n, float *q) {
    if (n > m || m > INT32_MAX || n < 1)
        return vdx_raise(VDX_ERR_INTERNAL, "matrix_qr: bad sizes %lld x %lld",
                         (long long)m, (long long)n);
    int mi = (int)m, ni = (int)n, lwork = -1, info = 0;
    float wq = 0;
    float *tau = vdx_malloc_array((size_t)n, sizeof(float));
    if (!tau) return VDX_ERR_OUT_OF_MEMORY;
    sgeqrf_(&mi, &ni, q, &mi, tau, &wq, &lwork, &info);
    int64_t lw = (int64_t)wq;
    if (lw < n) lw = n;
    float *work = vdx_malloc_array((size_t)lw, sizeof(float));
    if (!work) {
        vdx_free(tau);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    lwork = (int)lw;
    sgeqrf_(&mi, &ni, q, &mi, tau, work, &lwork, &info);
    if (info == 0) sorgqr_(&mi, &ni, &ni, q, &mi, tau, work, &lwork, &info);
    vdx_free(work);
    vdx_free(tau);
    if (info != 0)
        return vdx_raise(VDX_ERR_INTERNAL, "LAPACK QR failed (info=%d)", info);
    return VDX_OK;
}

vdx_status vdx_subsample(int64_t n, int64_t d, int64_t m, const float *x,
                         uint64_t seed, float **out) {
    *out = NULL;
    if (m <= 0 || n <= m) return VDX_OK;
    int64_t *perm = vdx_malloc_array((size_t)n, sizeof(int64_t));
    float *s = vdx_malloc_array((size_t)m, (size_t)d * sizeof(float));
    if (!perm || !s) {
        vdx_free(perm);
        vdx_free(s);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    vdx_rng r;
    vdx_rng_seed(&r, seed);
    for (int64_t i = 0; i < m; i++) {
        int64_t j = i + (int64_t)vdx_rng_below(&r, (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        memcpy(s + i * d, x + perm[i] * d, (size_t)d * sizeof(float));
    }
    vdx_free(perm);
    *out = s;
    return VDX_OK;
}

static float *dup_floats(const float *v, size_t n, vdx_status *st) {
    if (!v || !n) return NULL;
    float *c = vdx_malloc_array(n, sizeof(float));
    if (!c) {
        *st = VDX_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    memcpy(c, v, n * sizeof(float));
    return c;
}

/* ---- construction -------------------------------------------------------- */

vdx_status vdx_vt_alloc(vdx_vt_kind kind, int64_t d_in, int64_t d_out,
                        vdx_vt **out) {
    vdx_vt *vt = vdx_calloc(1, sizeof *vt);
    if (!vt) return VDX_ERR_OUT_OF_MEMORY;
    vt->kind = kind;
    vt->d_in = d_in;
    vt->d_out = d_out;
    vt->max_points_per_d = 1000;
    vt->niter = 50;
    vt->niter_pq = 4;
    vt->niter_pq_0 = 40;
    vt->max_train_points = 256 * 256;
    vt->norm = 2.0f;
    vt->is_trained = kind == VDX_VT_NORM;
    *out = vt;
    return VDX_OK;
}

static vdx_status check_dims(const char *what, int64_t d_in, int64_t d_out) {
    if (d_in < 1 || d_in > VDX_MAX_DIM || d_out < 1 || d_out > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: d_in=%lld and d_out=%lld must be in 1..%lld",
                         what, (long long)d_in, (long long)d_out,
                         (long long)VDX_MAX_DIM);
    return VDX_OK;
}

static vdx_status check_matrix_size(const char *what, int64_t a, int64_t b) {
    if (a * b > VT_MAX_MATRIX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: a %lld x %lld matrix is too large (limit %lld "
                         "entries)",
                         what, (long long)a, (long long)b,
                         (long long)VT_MAX_MATRIX);
    return VDX_OK;
}

#define CHECK_OUT(out)                                                     \
    do {                                                                   \
        vdx_clear_error();                                                 \
        if (!(out))                                                        \
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");     \
        *(out) = NULL;                                                     \
    } while (0)

vdx_status vdx_vt_linear_new(int64_t d_in, int64_t d_out, int have_bias,
                             vdx_vt **out) {
    CHECK_OUT(out);
    vdx_status st = check_dims("LinearTransform", d_in, d_out);
    if (!st) st = check_matrix_size("LinearTransform", d_out, d_in);
    if (!st) st = vdx_vt_alloc(VDX_VT_LINEAR, d_in, d_out, out);
    if (!st) (*out)->have_bias = have_bias != 0;
    return st;
}

vdx_status vdx_vt_random_rotation_new(int64_t d_in, int64_t d_out,
                                      vdx_vt **out) {
    CHECK_OUT(out);
    vdx_status st = check_dims("RandomRotationMatrix", d_in, d_out);
    if (!st)
        st = check_matrix_size("RandomRotationMatrix", d_out,
                               VDX_MAX(d_in, d_out));
    if (!st) st = vdx_vt_alloc(VDX_VT_RR, d_in, d_out, out);
    return st;
}

vdx_status vdx_vt_pca_new(int64_t d_in, int64_t d_out, float eigen_power,
                          int random_rotation, vdx_vt **out) {
    CHECK_OUT(out);
    vdx_status st = check_dims("PCAMatrix", d_in, d_out);
    if (st) return st;
    if (d_out > d_in)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "PCAMatrix: d_out=%lld must be <= d_in=%lld",
                         (long long)d_out, (long long)d_in);
    if (!isfinite(eigen_power))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "PCAMatrix: eigen_power=%g is not finite",
                         (double)eigen_power);
    if ((st = check_matrix_size("PCAMatrix", d_in, d_in))) return st;
    if ((st = vdx_vt_alloc(VDX_VT_PCA, d_in, d_out, out))) return st;
    (*out)->have_bias = 1;
    (*out)->eigen_power = eigen_power;
    (*out)->random_rotation = random_rotation != 0;
    return VDX_OK;
}

vdx_status vdx_vt_opq_new(int64_t d, int64_t M, int64_t d2, vdx_vt **out) {
    CHECK_OUT(out);
    if (d2 <= 0) d2 = d;
    vdx_status st = check_dims("OPQMatrix", d, d2);
    if (st) return st;
    if (M < 1 || d2 % M != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "OPQMatrix: M=%lld must be >= 1 and divide d2=%lld",
                         (long long)M, (long long)d2);
    int64_t dd = VDX_MAX(d, d2);
    if ((st = check_matrix_size("OPQMatrix", dd, dd))) return st;
    if ((st = vdx_vt_alloc(VDX_VT_OPQ, d, d2, out))) return st;
    (*out)->M = M;
    return VDX_OK;
}

vdx_status vdx_vt_normalization_new(int64_t d, float norm, vdx_vt **out) {
    CHECK_OUT(out);
    vdx_status st = check_dims("NormalizationTransform", d, d);
    if (st) return st;
    if (norm != 2.0f)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NormalizationTransform: norm=%g is not supported "
                         "(only 2, the L2 norm)",
                         (double)norm);
    return vdx_vt_alloc(VDX_VT_NORM, d, d, out);
}

vdx_status vdx_vt_centering_new(int64_t d, vdx_vt **out) {
    CHECK_OUT(out);
    vdx_status st = check_dims("CenteringTransform", d, d);
    if (st) return st;
    return vdx_vt_alloc(VDX_VT_CENTER, d, d, out);
}

void vdx_vt_free(vdx_vt *vt) {
    if (!vt) return;
    vdx_free(vt->A);
    vdx_free(vt->b);
    vdx_free(vt->mean);
    vdx_free(vt->eigenvalues);
    vdx_free(vt->PCAMat);
    vdx_free(vt);
}

vdx_status vdx_vt_clone(const vdx_vt *vt, vdx_vt **out) {
    CHECK_OUT(out);
    if (!vt) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "transform is NULL");
    vdx_vt *c = vdx_malloc(sizeof *c);
    if (!c) return VDX_ERR_OUT_OF_MEMORY;
    *c = *vt;
    vdx_status st = VDX_OK;
    size_t din = (size_t)vt->d_in, dout = (size_t)vt->d_out;
    c->A = dup_floats(vt->A, din * dout, &st);
    c->b = dup_floats(vt->b, dout, &st);
    c->mean = dup_floats(vt->mean, din, &st);
    c->eigenvalues = dup_floats(vt->eigenvalues, din, &st);
    c->PCAMat = dup_floats(vt->PCAMat, din * din, &st);
    if (st) {
        vdx_vt_free(c);
        return st;
    }
    *out = c;
    return VDX_OK;
}

/* ---- apply / reverse ----------------------------------------------------- */

static int64_t block_rows(const vdx_vt *vt) {
    int64_t w = VDX_MAX(vt->d_in, vt->d_out);
    int64_t r = VT_BLOCK_ELEMS / w;
    return r < 1 ? 1 : r;
}

static void linear_apply(const vdx_vt *vt, int64_t n, const float *x,
                         float *y) {
    const int64_t din = vt->d_in, dout = vt->d_out, br = block_rows(vt);
    for (int64_t i0 = 0; i0 < n; i0 += br) {
        int64_t nb = VDX_MIN(br, n - i0);
        float *yb = y + i0 * dout;
        if (vt->b) {
            for (int64_t i = 0; i < nb; i++)
                memcpy(yb + i * dout, vt->b, (size_t)dout * sizeof(float));
            vdx_gemm_xyt_acc((int)nb, (int)dout, (int)din, 1.0f,
                             x + i0 * din, vt->A, yb);
        } else {
            vdx_gemm_xyt((int)nb, (int)dout, (int)din, 1.0f, x + i0 * din,
                         vt->A, yb);
        }
    }
}

/* x = A^T (y - b), in row blocks: X^T (d_in x nb) = A^T Y'^T. */
static vdx_status linear_reverse(const vdx_vt *vt, int64_t n, const float *y,
                                 float *x) {
    const int64_t din = vt->d_in, dout = vt->d_out, br = block_rows(vt);
    float *tmp = NULL;
    if (vt->b) {
        tmp = vdx_malloc_array((size_t)VDX_MIN(br, n), (size_t)dout * sizeof(float));
        if (!tmp) return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i0 = 0; i0 < n; i0 += br) {
        int64_t nb = VDX_MIN(br, n - i0);
        const float *yb = y + i0 * dout;
        if (tmp) {
            for (int64_t i = 0; i < nb; i++)
                for (int64_t j = 0; j < dout; j++)
                    tmp[i * dout + j] = yb[i * dout + j] - vt->b[j];
            yb = tmp;
        }
        int m = (int)din, nn = (int)nb, k = (int)dout;
        float one = 1, zero = 0;
        sgemm_("N", "N", &m, &nn, &k, &one, vt->A, &m, yb, &k, &zero,
               x + i0 * din, &m);
    }
    vdx_free(tmp);
    return VDX_OK;
}

vdx_status vdx_vt_apply_internal(const vdx_vt *vt, int64_t n, const float *x,
                                 float *y) {
    const int64_t d = vt->d_in;
    switch (vt->kind) {
    case VDX_VT_NORM: {
        if (y != x) memcpy(y, x, (size_t)n * (size_t)d * sizeof(float));
        vdx_status st = vdx_normalize_L2(n, d, y);
        return st;
    }
    case VDX_VT_CENTER:
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++)
                y[i * d + j] = x[i * d + j] - vt->mean[j];
        return VDX_OK;
    case VDX_VT_HADAMARD: return vdx_hadamard_apply(vt, n, x, y);
    default: linear_apply(vt, n, x, y); return VDX_OK;
    }
}

int vdx_vt_reversible(const vdx_vt *vt) {
    if (vt->kind == VDX_VT_NORM || vt->kind == VDX_VT_CENTER) return 1;
    return vt->is_orthonormal;
}

vdx_status vdx_vt_reverse_internal(const vdx_vt *vt, int64_t n, const float *y,
                                   float *x) {
    const int64_t d = vt->d_in;
    switch (vt->kind) {
    case VDX_VT_NORM: /* as FAISS: the norm is lost, the direction kept */
        if (y != x) memcpy(x, y, (size_t)n * (size_t)d * sizeof(float));
        return VDX_OK;
    case VDX_VT_CENTER:
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++)
                x[i * d + j] = y[i * d + j] + vt->mean[j];
        return VDX_OK;
    default: return linear_reverse(vt, n, y, x);
    }
}

static vdx_status check_io(const vdx_vt *vt, int64_t n, const float *a,
                           const float *b, const char *what) {
    if (!vt) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: transform is NULL", what);
    if (n < 0 || (n > 0 && (!a || !b)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: n=%lld is negative or an array is NULL", what,
                         (long long)n);
    if (n > INT64_MAX / 8 / VDX_MAX(vt->d_in, vt->d_out))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: n=%lld is too large",
                         what, (long long)n);
    if (!vt->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "%s: the %s must be trained first", what,
                         kind_names[vt->kind]);
    return VDX_OK;
}

vdx_status vdx_vt_apply(const vdx_vt *vt, int64_t n, const float *x,
                        float *y) {
    vdx_clear_error();
    vdx_status st = check_io(vt, n, x, y, "apply");
    if (st) return st;
    if ((st = vdx_check_vectors(x, n, vt->d_in, "vectors to transform")))
        return st;
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    st = vdx_vt_apply_internal(vt, n, x, y);
    vdx_team_end();
    return st;
}

vdx_status vdx_vt_reverse(const vdx_vt *vt, int64_t n, const float *y,
                          float *x) {
    vdx_clear_error();
    vdx_status st = check_io(vt, n, y, x, "reverse_transform");
    if (st) return st;
    if (!vdx_vt_reversible(vt))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "reverse_transform: the %s is not orthonormal, so "
                         "it cannot be reversed",
                         kind_names[vt->kind]);
    if ((st = vdx_check_vectors(y, n, vt->d_out, "vectors to reverse")))
        return st;
    if (n == 0) return VDX_OK;
    vdx_team_begin();
    st = vdx_vt_reverse_internal(vt, n, y, x);
    vdx_team_end();
    return st;
}

/* ---- orthonormality ------------------------------------------------------ */

int vdx_vt_check_orthonormal(const vdx_vt *vt) {
    if (!is_linear(vt) || !vt->A) return 0;
    /* Gram matrix of the rows (d_out <= d_in) or of the columns */
    int rows = vt->d_out <= vt->d_in;
    int64_t k = rows ? vt->d_out : vt->d_in;
    int64_t len = rows ? vt->d_in : vt->d_out;
    if (k * k > VT_MAX_MATRIX) return 0;
    float *g = vdx_malloc_array((size_t)k, (size_t)k * sizeof(float));
    if (!g) {
        vdx_clear_error();
        return 0;
    }
    int ki = (int)k, li = (int)len, di = (int)vt->d_in;
    float one = 1, zero = 0;
    if (rows) /* G = A A^T: col-major A^T is d_in x d_out */
        sgemm_("T", "N", &ki, &ki, &li, &one, vt->A, &di, vt->A, &di, &zero, g,
               &ki);
    else /* G = A^T A: col-major view (d_in x d_out) times its transpose */
        sgemm_("N", "T", &ki, &ki, &li, &one, vt->A, &di, vt->A, &di, &zero, g,
               &ki);
    int ok = 1;
    for (int64_t i = 0; i < k && ok; i++)
        for (int64_t j = 0; j < k; j++) {
            float v = g[i * k + j] - (i == j ? 1.0f : 0.0f);
            if (!(fabsf(v) <= 1e-4f)) {
                ok = 0;
                break;
            }
        }
    vdx_free(g);
    return ok;
}

/* ---- random rotation ----------------------------------------------------- */

static vdx_status rr_draw(vdx_vt *vt, uint64_t seed) {
    const int64_t din = vt->d_in, dout = vt->d_out;
    int64_t len = dout <= din ? din : dout; /* vector length */
    float *q = vdx_malloc_array((size_t)dout, (size_t)len * sizeof(float));
    if (!q) return VDX_ERR_OUT_OF_MEMORY;
    vdx_randn(q, (size_t)(dout * len), seed);
    vdx_status st = vdx_matrix_qr(len, dout, q);
    if (st) {
        vdx_free(q);
        return st;
    }
    if (dout > din) /* keep the first d_in columns: a tight frame */
        for (int64_t i = 0; i < dout; i++)
            memmove(q + i * din, q + i * dout, (size_t)din * sizeof(float));
    vdx_free(vt->A);
    vt->A = q;
    vdx_free(vt->b);
    vt->b = NULL;
    vt->have_bias = 0;
    vt->is_orthonormal = 1;
    vt->is_trained = 1;
    return VDX_OK;
}

vdx_status vdx_vt_rr_init(vdx_vt *vt, int64_t seed) {
    vdx_clear_error();
    if (!vt || vt->kind != VDX_VT_RR)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "init: the transform is not a RandomRotationMatrix");
    vdx_team_begin();
    vdx_status st = rr_draw(vt, (uint64_t)seed);
    vdx_team_end();
    return st;
}

/* ---- PCA ----------------------------------------------------------------- */

/* A and b from PCAMat, eigenvalues and mean (FAISS's prepare_Ab). */
static vdx_status pca_prepare_Ab(vdx_vt *vt) {
    const int64_t din = vt->d_in, dout = vt->d_out;
    float *A = vdx_malloc_array((size_t)dout, (size_t)din * sizeof(float));
    float *b = vdx_malloc_array((size_t)dout, sizeof(float));
    float *f = vdx_malloc_array((size_t)dout, sizeof(float));
    vdx_status st = A && b && f ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    if (st) goto fail;
    for (int64_t i = 0; i < dout; i++) {
        double e = (double)vt->eigenvalues[i] + vt->epsilon;
        /* a vanishing eigenvalue cannot be whitened: drop the component
         * rather than emit Inf */
        f[i] = vt->eigen_power == 0 ? 1.0f
               : e > 0             ? (float)pow(e, vt->eigen_power)
                                   : 0.0f;
        if (!isfinite(f[i])) f[i] = 0.0f;
    }
    if (!vt->random_rotation) {
        for (int64_t i = 0; i < dout; i++)
            for (int64_t j = 0; j < din; j++)
                A[i * din + j] = vt->PCAMat[i * din + j] * f[i];
    } else {
        vdx_vt *rr = NULL;
        if ((st = vdx_vt_alloc(VDX_VT_RR, dout, dout, &rr))) goto fail;
        if ((st = rr_draw(rr, 5))) { /* FAISS's seed for this rotation */
            vdx_vt_free(rr);
            goto fail;
        }
        /* A = R diag(f) P: scale the columns of R, then one sgemm */
        for (int64_t i = 0; i < dout; i++)
            for (int64_t j = 0; j < dout; j++) rr->A[j * dout + i] *= f[i];
        int m = (int)din, nn = (int)dout, k = (int)dout;
        float one = 1, zero = 0;
        /* col-major: A^T (d_in x d_out) = P^T (d_in x d_out) R^T */
        sgemm_("N", "N", &m, &nn, &k, &one, vt->PCAMat, &m, rr->A, &k, &zero,
               A, &m);
        vdx_vt_free(rr);
    }
    for (int64_t i = 0; i < dout; i++) {
        double acc = 0;
        for (int64_t j = 0; j < din; j++)
            acc -= (double)vt->mean[j] * A[i * din + j];
        b[i] = (float)acc;
    }
    vdx_free(f);
    vdx_free(vt->A);
    vdx_free(vt->b);
    vt->A = A;
    vt->b = b;
    vt->have_bias = 1;
    vt->is_orthonormal = vt->eigen_power == 0;
    return VDX_OK;
fail:
    vdx_free(A);
    vdx_free(b);
    vdx_free(f);
    return st;
}

static vdx_status pca_train(vdx_vt *vt, int64_t n, const float *x) {
    const int64_t d = vt->d_in;
    float *sub = NULL, *cov = NULL, *blk = NULL, *mean = NULL, *ev = NULL,
          *pm = NULL;
    double *a = NULL, *w = NULL, *work = NULL, *acc = NULL;
    vdx_status st;
    if (vt->max_points_per_d > 0 && vt->max_points_per_d <= INT64_MAX / d &&
        n > vt->max_points_per_d * d) {
        if ((st = vdx_subsample(n, d, vt->max_points_per_d * d, x, 1234, &sub)))
            return st;
        x = sub;
        n = vt->max_points_per_d * d;
    }
    const int64_t br = VDX_MAX((int64_t)1, VDX_MIN(n, VT_BLOCK_ELEMS / d));
    mean = vdx_malloc_array((size_t)d, sizeof(float));
    acc = vdx_calloc((size_t)d, sizeof(double));
    cov = vdx_calloc((size_t)(d * d), sizeof(float));
    blk = vdx_malloc_array((size_t)br, (size_t)d * sizeof(float));
    a = vdx_malloc_array((size_t)(d * d), sizeof(double));
    w = vdx_malloc_array((size_t)d, sizeof(double));
    ev = vdx_malloc_array((size_t)d, sizeof(float));
    pm = vdx_malloc_array((size_t)(d * d), sizeof(float));
    if (!mean || !acc || !cov || !blk || !a || !w || !ev || !pm) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* the mean: per-thread double sums over contiguous row ranges, added
     * in thread order (the same for a given thread count) */
    {
        const int nth = vdx_nthreads();
        double *part = vdx_calloc((size_t)nth * (size_t)d, sizeof(double));
        if (!part) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
#pragma omp parallel num_threads(nth)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            double *pa = part + (size_t)t * (size_t)d;
            for (int64_t i = n * t / nt; i < n * (t + 1) / nt; i++)
                for (int64_t j = 0; j < d; j++) pa[j] += x[i * d + j];
        }
        for (int t = 0; t < nth; t++)
            for (int64_t j = 0; j < d; j++) acc[j] += part[(size_t)t * (size_t)d + j];
        vdx_free(part);
    }
    for (int64_t j = 0; j < d; j++) mean[j] = (float)(acc[j] / (double)n);
    /* Values far from 1 (1e19 .. 3e38, or 1e-30) would overflow or
     * underflow the float scatter sums (dsyev then fails on Inf): centred
     * values are scaled by a power of two into [1, 2) at the largest, which
     * leaves the eigenvectors as they are and divides the eigenvalues by
     * scale^2 (undone below).  Ordinary data keeps scale 1, bit for bit. */
    double amax = 0, scale = 1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double v = fabs((double)x[i * d + j] - (double)mean[j]);
            if (v > amax) amax = v;
        }
    if (amax > 0x1p40 || (amax > 0 && amax < 0x1p-40))
        scale = ldexp(1.0, -ilogb(amax));
    /* scatter matrix over centred blocks (no cancellation from the mean) */
    for (int64_t i0 = 0; i0 < n; i0 += br) {
        int64_t nb = VDX_MIN(br, n - i0);
#pragma omp parallel for schedule(static) num_threads(vdx_nthreads())
        for (int64_t i = 0; i < nb; i++)
            for (int64_t j = 0; j < d; j++)
                blk[i * d + j] =
                    scale == 1 ? x[(i0 + i) * d + j] - mean[j]
                               : (float)(((double)x[(i0 + i) * d + j] -
                                          (double)mean[j]) * scale);
        int di = (int)d, ki = (int)nb;
        float one = 1;
        /* sgemm rather than ssyrk: twice the flops, but OpenBLAS's sgemm
         * kernels run them several times faster */
        sgemm_("N", "T", &di, &di, &ki, &one, blk, &di, blk, &di, &one, cov,
               &di);
    }
    /* col-major upper triangle -> full symmetric double matrix */
    for (int64_t j = 0; j < d; j++)
        for (int64_t i = 0; i <= j; i++)
            a[j * d + i] = a[i * d + j] = (double)cov[j * d + i];
    {
        int di = (int)d, lwork = -1, info = 0;
        double wq = 0;
        dsyev_("V", "U", &di, a, &di, w, &wq, &lwork, &info);
        int64_t lw = VDX_MAX((int64_t)wq, 3 * d);
        work = vdx_malloc_array((size_t)lw, sizeof(double));
        if (!work) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        lwork = (int)lw;
        dsyev_("V", "U", &di, a, &di, w, work, &lwork, &info);
        if (info != 0) {
            st = vdx_raise(VDX_ERR_INTERNAL,
                           "PCAMatrix: LAPACK dsyev failed (info=%d)", info);
            goto done;
        }
    }
    /* ascending -> largest first; eigenvector i (column) -> row i */
    for (int64_t i = 0; i < d; i++) {
        int64_t src = d - 1 - i;
        double e = w[src] / (scale * scale);
        /* rounding can leave a tiny negative eigenvalue: clamp both ways */
        ev[i] = (float)VDX_MAX(VDX_MIN(e, (double)FLT_MAX), -(double)FLT_MAX);
        for (int64_t j = 0; j < d; j++) pm[i * d + j] = (float)a[src * d + j];
    }
    vdx_free(vt->mean);
    vdx_free(vt->eigenvalues);
    vdx_free(vt->PCAMat);
    vt->mean = mean;
    vt->eigenvalues = ev;
    vt->PCAMat = pm;
    mean = ev = pm = NULL;
    if ((st = pca_prepare_Ab(vt))) goto done;
    vt->is_trained = 1;
done:
    vdx_free(sub);
    vdx_free(mean);
    vdx_free(acc);
    vdx_free(cov);
    vdx_free(blk);
    vdx_free(a);
    vdx_free(w);
    vdx_free(work);
    vdx_free(ev);
    vdx_free(pm);
    return st;
}

static vdx_status center_train(vdx_vt *vt, int64_t n, const float *x) {
    const int64_t d = vt->d_in;
    double *acc = vdx_calloc((size_t)d, sizeof(double));
    float *mean = vdx_malloc_array((size_t)d, sizeof(float));
    if (!acc || !mean) {
        vdx_free(acc);
        vdx_free(mean);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) acc[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) mean[j] = (float)(acc[j] / (double)n);
    vdx_free(acc);
    vdx_free(vt->mean);
    vt->mean = mean;
    vt->is_trained = 1;
    return VDX_OK;
}

vdx_status vdx_vt_train_internal(vdx_vt *vt, int64_t n, const float *x) {
    switch (vt->kind) {
    case VDX_VT_RR: return rr_draw(vt, 12345);
    case VDX_VT_PCA: return pca_train(vt, n, x);
    case VDX_VT_OPQ: return vdx_opq_train(vt, n, x);
    case VDX_VT_CENTER: return center_train(vt, n, x);
    case VDX_VT_NORM: return VDX_OK;
    case VDX_VT_HADAMARD: /* as FAISS: the signs again, seed 0 -> 12345 */
        if (!vt->seed) vt->seed = 12345;
        vt->is_trained = 1;
        return VDX_OK;
    case VDX_VT_LINEAR:
        if (!vt->is_trained)
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "LinearTransform: cannot be trained; set A (and "
                             "b) instead");
        return VDX_OK;
    }
    return VDX_OK;
}

vdx_status vdx_vt_train(vdx_vt *vt, int64_t n, const float *x) {
    vdx_clear_error();
    if (!vt) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "transform is NULL");
    if (n < 0 || (n > 0 && !x) ||
        (n > 0 && n > INT64_MAX / 8 / vt->d_in))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "train: bad n=%lld or NULL data", (long long)n);
    int needs = vt->kind == VDX_VT_PCA || vt->kind == VDX_VT_OPQ ||
                vt->kind == VDX_VT_CENTER;
    if (needs && n < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: training needs at least one vector (n=%lld)",
                         kind_names[vt->kind], (long long)n);
    vdx_status st = vdx_check_vectors(x, n, vt->d_in, "training vectors");
    if (st) return st;
    vdx_team_begin();
    st = vdx_vt_train_internal(vt, n, x);
    vdx_team_end();
    return st;
}

/* ---- accessors ----------------------------------------------------------- */

const char *vdx_vt_type_name(const vdx_vt *vt) {
    return vt ? kind_names[vt->kind] : "";
}
int64_t vdx_vt_d_in(const vdx_vt *vt) { return vt ? vt->d_in : 0; }
int64_t vdx_vt_d_out(const vdx_vt *vt) { return vt ? vt->d_out : 0; }
int vdx_vt_is_trained(const vdx_vt *vt) { return vt ? vt->is_trained : 0; }
int vdx_vt_is_orthonormal(const vdx_vt *vt) {
    return vt && is_linear(vt) ? vt->is_orthonormal : 0;
}
int vdx_vt_have_bias(const vdx_vt *vt) {
    return vt && is_linear(vt) ? vt->have_bias : 0;
}
int64_t vdx_vt_opq_M(const vdx_vt *vt) {
    return vt && vt->kind == VDX_VT_OPQ ? vt->M : 0;
}

const float *vdx_vt_array(const vdx_vt *vt, int which, size_t *n) {
    size_t dummy;
    if (!n) n = &dummy;
    *n = 0;
    if (!vt) return NULL;
    const float *p = NULL;
    size_t din = (size_t)vt->d_in, dout = (size_t)vt->d_out;
    switch (which) {
    case VDX_VT_A: p = vt->A; *n = din * dout; break;
    case VDX_VT_B: p = vt->b; *n = dout; break;
    case VDX_VT_MEAN: p = vt->mean; *n = din; break;
    case VDX_VT_EIGENVALUES: p = vt->eigenvalues; *n = din; break;
    case VDX_VT_PCAMAT: p = vt->PCAMat; *n = din * din; break;
    default: break;
    }
    if (!p) *n = 0;
    return p;
}

vdx_status vdx_vt_set_array(vdx_vt *vt, int which, const float *v, size_t n) {
    vdx_clear_error();
    if (!vt || vt->kind != VDX_VT_LINEAR)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_array: only a LinearTransform's A and b can be "
                         "set");
    size_t want = which == VDX_VT_A   ? (size_t)(vt->d_in * vt->d_out)
                  : which == VDX_VT_B ? (size_t)vt->d_out
                                      : 0;
    if (!want)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_array: unknown array %d", which);
    if (which == VDX_VT_B && !vt->have_bias)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_array: this LinearTransform has no bias");
    if (n != want || !v)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "set_array: expected %zu floats, got %zu", want, n);
    vdx_status st = vdx_check_finite(v, 1, (int64_t)n, "transform values");
    if (st) return st;
    float *c = dup_floats(v, n, &st);
    if (!c) return st ? st : VDX_ERR_OUT_OF_MEMORY;
    if (which == VDX_VT_A) {
        vdx_free(vt->A);
        vt->A = c;
        if (vt->have_bias && !vt->b) {
            vt->b = vdx_calloc((size_t)vt->d_out, sizeof(float));
            if (!vt->b) return VDX_ERR_OUT_OF_MEMORY;
        }
        vt->is_trained = 1;
        vt->is_orthonormal = vdx_vt_check_orthonormal(vt);
    } else {
        vdx_free(vt->b);
        vt->b = c;
    }
    return VDX_OK;
}

vdx_status vdx_vt_get_options(const vdx_vt *vt, vdx_vt_options *o) {
    vdx_clear_error();
    if (!vt || !o)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "transform or options is NULL");
    memset(o, 0, sizeof *o);
    o->eigen_power = vt->eigen_power;
    o->epsilon = vt->epsilon;
    o->random_rotation = vt->random_rotation;
    o->max_points_per_d = vt->max_points_per_d;
    o->niter = vt->niter;
    o->niter_pq = vt->niter_pq;
    o->niter_pq_0 = vt->niter_pq_0;
    o->max_train_points = vt->max_train_points;
    o->verbose = vt->verbose;
    return VDX_OK;
}

vdx_status vdx_vt_set_options(vdx_vt *vt, const vdx_vt_options *o) {
    vdx_clear_error();
    if (!vt || !o)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "transform or options is NULL");
    if (!isfinite(o->eigen_power) || !isfinite(o->epsilon) || o->epsilon < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "eigen_power=%g must be finite and epsilon=%g finite "
                         "and >= 0",
                         (double)o->eigen_power, (double)o->epsilon);
    if (o->max_points_per_d < 0 || o->max_train_points < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "max_points_per_d=%lld and max_train_points=%lld "
                         "must be >= 0 (0: no limit)",
                         (long long)o->max_points_per_d,
                         (long long)o->max_train_points);
    if (o->niter < 0 || o->niter_pq < 1 || o->niter_pq_0 < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "niter=%d must be >= 0, niter_pq=%d and niter_pq_0=%d "
                         ">= 1",
                         o->niter, o->niter_pq, o->niter_pq_0);
    vt->eigen_power = o->eigen_power;
    vt->epsilon = o->epsilon;
    vt->random_rotation = o->random_rotation != 0;
    vt->max_points_per_d = o->max_points_per_d;
    vt->niter = o->niter;
    vt->niter_pq = o->niter_pq;
    vt->niter_pq_0 = o->niter_pq_0;
    vt->max_train_points = o->max_train_points;
    vt->verbose = o->verbose != 0;
    return VDX_OK;
}
