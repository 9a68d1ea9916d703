/*
 * test_transform.c — vector transforms (src/quant/transform.c, opq.c) and
 * IndexPreTransform (src/index/pretransform.c), against independent
 * references written here: Gram matrices for orthonormality, power
 * iteration on a double-precision scatter matrix for PCA, sums of squares
 * for whitening, plain PQ for OPQ, manual transform + sub-index search for
 * the pre-transform.
 */
#include <float.h>

#include "test.h"

static double dot(const float *a, const float *b, int64_t d) {
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

/* Anisotropic data: x_j = u_j * scale_j + offset, then mixed by a fixed
 * rotation-like shear so that the principal axes are not the coordinates. */
static float *make_data(int64_t n, int64_t d, uint64_t seed) {
    float *x = malloc((size_t)(n * d) * sizeof(float));
    float *u = malloc((size_t)(n * d) * sizeof(float));
    test_rand_fill(u, (size_t)(n * d), seed);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double v = 0;
            for (int64_t k = 0; k < d; k++) {
                double s = (double)(d - k) / (double)d; /* decaying scales */
                double m = ((j * 7 + k * 3) % 5 == 0) ? 1.0 : 0.2;
                v += (u[i * d + k] - 0.5) * s * s * m * (k == j ? 3.0 : 1.0);
            }
            x[i * d + j] = (float)v + 1.0f;
        }
    free(u);
    return x;
}

static double max_gram_error(const float *A, int64_t rows, int64_t len,
                             int by_rows) {
    double e = 0;
    if (by_rows) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < rows; j++) {
                double v = dot(A + i * len, A + j * len, len) - (i == j);
                if (fabs(v) > e) e = fabs(v);
            }
    } else { /* columns of a rows x len matrix */
        for (int64_t i = 0; i < len; i++)
            for (int64_t j = 0; j < len; j++) {
                double s = 0;
                for (int64_t r = 0; r < rows; r++) s += (double)A[r * len + i] * A[r * len + j];
                s -= (i == j);
                if (fabs(s) > e) e = fabs(s);
            }
    }
    return e;
}

static void test_random_rotation(void) {
    const int64_t dims[][2] = {{16, 8}, {16, 16}, {8, 20}, {1, 1}, {33, 5}};
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        int64_t din = dims[t][0], dout = dims[t][1];
        vdx_vt *rr = NULL, *rr2 = NULL;
        CHECK_OK(vdx_vt_random_rotation_new(din, dout, &rr));
        CHECK(!vdx_vt_is_trained(rr));
        CHECK_OK(vdx_vt_train(rr, 0, NULL)); /* draws with seed 12345 */
        CHECK(vdx_vt_is_trained(rr) && vdx_vt_is_orthonormal(rr));
        size_t na = 0;
        const float *A = vdx_vt_array(rr, VDX_VT_A, &na);
        CHECK(A && na == (size_t)(din * dout));
        if (!A) continue;
        CHECK(max_gram_error(A, dout, din, dout <= din) < 1e-5);
        /* deterministic per seed, different across seeds */
        CHECK_OK(vdx_vt_random_rotation_new(din, dout, &rr2));
        CHECK_OK(vdx_vt_rr_init(rr2, 12345));
        const float *A2 = vdx_vt_array(rr2, VDX_VT_A, NULL);
        CHECK(A2 && !memcmp(A, A2, na * sizeof(float)));
        CHECK_OK(vdx_vt_rr_init(rr2, 7));
        A2 = vdx_vt_array(rr2, VDX_VT_A, NULL);
        if (na > 1) CHECK(memcmp(A, A2, na * sizeof(float)) != 0);
        /* apply = A x, reverse = A^T y (exact inverse when d_out >= d_in) */
        float x[3 * 33], y[3 * 20], xr[3 * 33];
        test_rand_fill(x, (size_t)(3 * din), 11 + t);
        CHECK_OK(vdx_vt_apply(rr, 3, x, y));
        double err = 0;
        for (int64_t i = 0; i < 3; i++)
            for (int64_t j = 0; j < dout; j++)
                err = fmax(err, fabs(y[i * dout + j] - dot(A + j * din, x + i * din, din)));
        CHECK(err < 1e-5);
        CHECK_OK(vdx_vt_reverse(rr, 3, y, xr));
        if (dout >= din) {
            err = 0;
            for (int64_t i = 0; i < 3 * din; i++) err = fmax(err, fabs(xr[i] - x[i]));
            CHECK(err < 1e-5);
        }
        vdx_vt_free(rr);
        vdx_vt_free(rr2);
    }
}

/* Top eigenpairs of the scatter matrix by power iteration with deflation
 * (double precision), the reference for PCA. */
static void power_iteration(const float *x, int64_t n, int64_t d, int k,
                            double *vals, double *vecs) {
    double *mean = calloc((size_t)d, sizeof(double));
    double *C = calloc((size_t)(d * d), sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t a = 0; a < d; a++)
            for (int64_t b = 0; b < d; b++)
                C[a * d + b] += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
    double *v = malloc((size_t)d * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
    for (int e = 0; e < k; e++) {
        for (int64_t j = 0; j < d; j++) v[j] = 1.0 + 0.01 * (double)j;
        double lam = 0;
        for (int it = 0; it < 5000; it++) {
            for (int64_t a = 0; a < d; a++) {
                w[a] = 0;
                for (int64_t b = 0; b < d; b++) w[a] += C[a * d + b] * v[b];
            }
            double nr = 0;
            for (int64_t a = 0; a < d; a++) nr += w[a] * w[a];
            nr = sqrt(nr);
            for (int64_t a = 0; a < d; a++) v[a] = w[a] / nr;
            lam = nr;
        }
        vals[e] = lam;
        memcpy(vecs + e * d, v, (size_t)d * sizeof(double));
        for (int64_t a = 0; a < d; a++) /* deflate */
            for (int64_t b = 0; b < d; b++) C[a * d + b] -= lam * v[a] * v[b];
    }
    free(mean);
    free(C);
    free(v);
    free(w);
}

static void test_pca_vs_power_iteration(void) {
    const int64_t n = 2000, d = 12;
    float *x = make_data(n, d, 3);
    vdx_vt *pca = NULL;
    CHECK_OK(vdx_vt_pca_new(d, 4, 0.0f, 0, &pca));
    CHECK_ERR(vdx_vt_apply(pca, 1, x, x), VDX_ERR_NOT_TRAINED);
    CHECK_OK(vdx_vt_train(pca, n, x));
    double vals[3], vecs[3 * 12];
    power_iteration(x, n, d, 3, vals, vecs);
    size_t ne = 0, np_ = 0, nm = 0;
    const float *ev = vdx_vt_array(pca, VDX_VT_EIGENVALUES, &ne);
    const float *pm = vdx_vt_array(pca, VDX_VT_PCAMAT, &np_);
    const float *mean = vdx_vt_array(pca, VDX_VT_MEAN, &nm);
    CHECK(ev && ne == (size_t)d && pm && np_ == (size_t)(d * d) && mean && nm == (size_t)d);
    if (!ev || !pm) goto done;
    for (int e = 0; e < 3; e++) {
        CHECK(fabs(ev[e] - vals[e]) <= 1e-3 * vals[e]);
        double c = 0;
        for (int64_t j = 0; j < d; j++) c += pm[e * d + j] * vecs[e * d + j];
        CHECK(fabs(fabs(c) - 1.0) < 1e-3); /* same direction up to sign */
    }
    for (int64_t i = 1; i < d; i++) CHECK(ev[i] <= ev[i - 1]);
    /* y = A (x - mean) with A the first rows of PCAMat */
    float y[4 * 4];
    CHECK_OK(vdx_vt_apply(pca, 4, x, y));
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 4; j++) {
            double r = 0;
            for (int64_t t = 0; t < d; t++) r += pm[j * d + t] * (x[i * d + t] - mean[t]);
            CHECK(fabs(y[i * 4 + j] - r) < 1e-3);
        }
    CHECK(vdx_vt_is_orthonormal(pca));
    /* reconstruction error: PCA's 4 components beat 4 random directions */
    {
        vdx_vt *rr = NULL;
        CHECK_OK(vdx_vt_random_rotation_new(d, 4, &rr));
        CHECK_OK(vdx_vt_rr_init(rr, 99));
        float *yp = malloc((size_t)(n * 4) * sizeof(float));
        float *xr = malloc((size_t)(n * d) * sizeof(float));
        float *xc = malloc((size_t)(n * d) * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - mean[j];
        double e_pca = 0, e_rr = 0;
        /* y = A (x - m); reverse computes A^T (y - b) = A^T A x (as
         * FAISS), so feed it y + b to get the centred reconstruction */
        const float *b = vdx_vt_array(pca, VDX_VT_B, NULL);
        CHECK_OK(vdx_vt_apply(pca, n, x, yp));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < 4; j++) yp[i * 4 + j] += b[j];
        CHECK_OK(vdx_vt_reverse(pca, n, yp, xr));
        for (int64_t i = 0; i < n * d; i++) e_pca += (xr[i] - xc[i]) * (double)(xr[i] - xc[i]);
        CHECK_OK(vdx_vt_apply(rr, n, xc, yp));
        CHECK_OK(vdx_vt_reverse(rr, n, yp, xr));
        for (int64_t i = 0; i < n * d; i++) e_rr += (xr[i] - xc[i]) * (double)(xr[i] - xc[i]);
        CHECK(e_pca < e_rr);
        /* the PCA residual is the sum of the dropped eigenvalues */
        double drop = 0;
        for (int64_t i = 4; i < d; i++) drop += ev[i];
        CHECK(fabs(e_pca - drop) <= 1e-2 * drop + 1e-3);
        free(yp);
        free(xr);
        free(xc);
        vdx_vt_free(rr);
    }
done:
    vdx_vt_free(pca);
    free(x);
}

/* PCA of huge (1e21 .. 3e38) and tiny (1e-33) values: the float scatter
 * sums used to overflow (or underflow) and dsyev failed with
 * VDX_ERR_INTERNAL.  Scaling the data by a power of two must give the same
 * eigenvectors and eigenvalues scaled by its square (FLT_MAX at most). */
static void test_pca_extreme_magnitudes(void) {
    const int64_t n = 500, d = 6;
    float *x = make_data(n, d, 11);
    float *y = malloc((size_t)(n * d) * sizeof(float));
    vdx_vt *ref = NULL;
    CHECK_OK(vdx_vt_pca_new(d, 3, 0.0f, 0, &ref));
    CHECK_OK(vdx_vt_train(ref, n, x));
    const float *ev0 = vdx_vt_array(ref, VDX_VT_EIGENVALUES, NULL);
    const float *pm0 = vdx_vt_array(ref, VDX_VT_PCAMAT, NULL);
    /* past vdx_max_magnitude (1.3e18 at d = 6) the data is refused, as at
     * every other door; below it (2^55 = 3.6e16) and for tiny values the
     * scatter sums are scaled and the eigenvalues scaled back */
    static const int refused[] = {70, 126};
    for (int t = 0; t < 2; t++) {
        for (int64_t i = 0; i < n * d; i++) y[i] = ldexpf(x[i], refused[t]);
        vdx_vt *pca = NULL;
        CHECK_OK(vdx_vt_pca_new(d, 3, 0.0f, 0, &pca));
        CHECK(vdx_vt_train(pca, n, y) == VDX_ERR_INVALID_ARGUMENT);
        CHECK(strstr(vdx_last_error(), "too large") != NULL);
        CHECK(!vdx_vt_is_trained(pca));
        vdx_vt_free(pca);
    }
    static const int exps[] = {55, -110};
    for (int t = 0; t < 2; t++) {
        for (int64_t i = 0; i < n * d; i++) y[i] = ldexpf(x[i], exps[t]);
        vdx_vt *pca = NULL;
        CHECK_OK(vdx_vt_pca_new(d, 3, 0.0f, 0, &pca));
        CHECK_OK(vdx_vt_train(pca, n, y));
        const float *ev = vdx_vt_array(pca, VDX_VT_EIGENVALUES, NULL);
        const float *pm = vdx_vt_array(pca, VDX_VT_PCAMAT, NULL);
        CHECK(ev && pm && ev0 && pm0);
        if (ev && pm && ev0 && pm0) {
            for (int64_t e = 0; e < 3; e++) {
                double want = ldexp((double)ev0[e], 2 * exps[t]);
                if (want > FLT_MAX) want = FLT_MAX;
                CHECK(isfinite(ev[e]) &&
                      fabs(ev[e] - want) <= 1e-3 * want + 1e-44);
                double c = 0;
                for (int64_t j = 0; j < d; j++)
                    c += (double)pm[e * d + j] * pm0[e * d + j];
                CHECK(fabs(fabs(c) - 1.0) < 1e-3);
            }
            float out[3];
            CHECK_OK(vdx_vt_apply(pca, 1, y, out));
        }
        vdx_vt_free(pca);
    }
    vdx_vt_free(ref);
    free(x);
    free(y);
}

static void test_pca_whitening_and_rotation(void) {
    const int64_t n = 3000, d = 10, dout = 6;
    float *x = make_data(n, d, 5);
    float *y = malloc((size_t)(n * dout) * sizeof(float));
    for (int rot = 0; rot < 2; rot++) {
        vdx_vt *pca = NULL;
        CHECK_OK(vdx_vt_pca_new(d, dout, -0.5f, rot, &pca));
        CHECK_OK(vdx_vt_train(pca, n, x));
        CHECK(!vdx_vt_is_orthonormal(pca));
        CHECK_OK(vdx_vt_apply(pca, n, x, y));
        /* whitened: Y^T Y = I (the eigenvalues are scatter sums, as in
         * FAISS, so each output has unit sum of squares) */
        double e = 0;
        for (int64_t a = 0; a < dout; a++)
            for (int64_t b = 0; b < dout; b++) {
                double s = 0;
                for (int64_t i = 0; i < n; i++) s += (double)y[i * dout + a] * y[i * dout + b];
                e = fmax(e, fabs(s - (a == b)));
            }
        CHECK(e < 1e-3);
        CHECK_ERR(vdx_vt_reverse(pca, 1, y, x), VDX_ERR_UNSUPPORTED);
        vdx_vt_free(pca);
    }
    /* random rotation without whitening: orthonormal and distance-preserving
     * relative to plain PCA */
    vdx_vt *p0 = NULL, *pr = NULL;
    CHECK_OK(vdx_vt_pca_new(d, dout, 0.0f, 0, &p0));
    CHECK_OK(vdx_vt_pca_new(d, dout, 0.0f, 1, &pr));
    CHECK_OK(vdx_vt_train(p0, n, x));
    CHECK_OK(vdx_vt_train(pr, n, x));
    CHECK(vdx_vt_is_orthonormal(pr));
    float y0[2 * 6], yr[2 * 6];
    CHECK_OK(vdx_vt_apply(p0, 2, x, y0));
    CHECK_OK(vdx_vt_apply(pr, 2, x, yr));
    double d0 = 0, dr = 0, n0 = 0, nr = 0;
    for (int64_t j = 0; j < dout; j++) {
        d0 += (y0[j] - y0[dout + j]) * (double)(y0[j] - y0[dout + j]);
        dr += (yr[j] - yr[dout + j]) * (double)(yr[j] - yr[dout + j]);
        n0 += y0[j] * (double)y0[j];
        nr += yr[j] * (double)yr[j];
    }
    CHECK(fabs(d0 - dr) < 1e-3 * (d0 + 1) && fabs(n0 - nr) < 1e-3 * (n0 + 1));
    CHECK(memcmp(y0, yr, sizeof y0) != 0);
    vdx_vt_free(p0);
    vdx_vt_free(pr);
    free(x);
    free(y);
}

/* Mean squared PQ reconstruction error of x (n x d) by a PQ trained on it. */
static double pq_error(int64_t n, int64_t d, int64_t M, const float *x) {
    vdx_pq *pq = NULL;
    CHECK_OK(vdx_pq_new(d, M, 8, &pq));
    CHECK_OK(vdx_pq_train(pq, n, x));
    uint8_t *codes = malloc((size_t)(n * M));
    float *r = malloc((size_t)(n * d) * sizeof(float));
    CHECK_OK(vdx_pq_compute_codes(pq, n, x, codes));
    CHECK_OK(vdx_pq_decode(pq, n, codes, r));
    double e = 0;
    for (int64_t i = 0; i < n * d; i++) e += (r[i] - x[i]) * (double)(r[i] - x[i]);
    free(codes);
    free(r);
    vdx_pq_free(pq);
    return e / (double)n;
}

static void test_opq_beats_pq(void) {
    /* correlated data: the same few latent factors spread over all
     * components, which plain PQ's fixed split handles badly */
    const int64_t n = 4000, d = 16, M = 4;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    float lat[4000 * 4];
    test_rand_fill(lat, (size_t)(n * 4), 21);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double v = 0;
            for (int64_t k = 0; k < 4; k++)
                v += (lat[i * 4 + k] - 0.5) * (((j + 3 * k) % 4) + 1) *
                     ((j % 2) ? 1 : -1);
            x[i * d + j] = (float)v;
        }
    vdx_vt *opq = NULL;
    CHECK_OK(vdx_vt_opq_new(d, M, 0, &opq));
    vdx_vt_options o;
    CHECK_OK(vdx_vt_get_options(opq, &o));
    CHECK(o.niter == 50 && o.niter_pq == 4 && o.niter_pq_0 == 40 &&
          o.max_train_points == 65536);
    o.niter = 8; /* enough to show the effect, quick */
    o.niter_pq_0 = 10;
    CHECK_OK(vdx_vt_set_options(opq, &o));
    CHECK_OK(vdx_vt_train(opq, n, x));
    CHECK(vdx_vt_is_trained(opq) && vdx_vt_is_orthonormal(opq));
    size_t na = 0;
    const float *A = vdx_vt_array(opq, VDX_VT_A, &na);
    CHECK(A && na == (size_t)(d * d));
    if (A) CHECK(max_gram_error(A, d, d, 1) < 1e-4);
    float *y = malloc((size_t)(n * d) * sizeof(float));
    CHECK_OK(vdx_vt_apply(opq, n, x, y));
    double e_pq = pq_error(n, d, M, x), e_opq = pq_error(n, d, M, y);
    printf("  PQ error %.4f, OPQ+PQ error %.4f\n", e_pq, e_opq);
    CHECK(e_opq < 0.9 * e_pq);
    /* d2 < d (and M | d2) */
    vdx_vt *o2 = NULL;
    CHECK_OK(vdx_vt_opq_new(d, 2, 8, &o2));
    CHECK_OK(vdx_vt_get_options(o2, &o));
    o.niter = 2;
    o.niter_pq_0 = 3;
    CHECK_OK(vdx_vt_set_options(o2, &o));
    CHECK_OK(vdx_vt_train(o2, n, x));
    A = vdx_vt_array(o2, VDX_VT_A, &na);
    CHECK(A && na == (size_t)(8 * d));
    if (A) CHECK(max_gram_error(A, 8, d, 1) < 1e-4);
    vdx_vt_free(o2);
    /* too few points for 256 centroids */
    CHECK_OK(vdx_vt_opq_new(d, M, 0, &o2));
    CHECK_ERR(vdx_vt_train(o2, 100, x), VDX_ERR_INVALID_ARGUMENT);
    vdx_vt_free(o2);
    vdx_vt_free(opq);
    free(x);
    free(y);
}

static void test_norm_center_linear(void) {
    const int64_t d = 5, n = 20;
    float x[20 * 5], y[20 * 5], z[20 * 5];
    test_rand_fill(x, (size_t)(n * d), 8);
    vdx_vt *nt = NULL, *ct = NULL, *lt = NULL;
    CHECK_OK(vdx_vt_normalization_new(d, 2.0f, &nt));
    CHECK(vdx_vt_is_trained(nt));
    CHECK_OK(vdx_vt_apply(nt, n, x, y));
    for (int64_t i = 0; i < n; i++) CHECK(fabs(dot(y + i * d, y + i * d, d) - 1) < 1e-5);
    CHECK_ERR(vdx_vt_normalization_new(d, 1.0f, &ct), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_vt_centering_new(d, &ct));
    CHECK_ERR(vdx_vt_apply(ct, n, x, y), VDX_ERR_NOT_TRAINED);
    CHECK_OK(vdx_vt_train(ct, n, x));
    CHECK_OK(vdx_vt_apply(ct, n, x, y));
    for (int64_t j = 0; j < d; j++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += y[i * d + j];
        CHECK(fabs(s) < 1e-4);
    }
    CHECK_OK(vdx_vt_reverse(ct, n, y, z));
    for (int64_t i = 0; i < n * d; i++) CHECK(fabs(z[i] - x[i]) < 1e-5);
    /* LinearTransform with a caller's A and b */
    CHECK_OK(vdx_vt_linear_new(d, 3, 1, &lt));
    CHECK(!vdx_vt_is_trained(lt));
    CHECK_ERR(vdx_vt_train(lt, n, x), VDX_ERR_UNSUPPORTED);
    float A[15], b[3] = {1, -2, 0.5f};
    test_rand_fill(A, 15, 4);
    CHECK_ERR(vdx_vt_set_array(lt, VDX_VT_A, A, 14), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_vt_set_array(lt, VDX_VT_A, A, 15));
    CHECK_OK(vdx_vt_set_array(lt, VDX_VT_B, b, 3));
    CHECK(vdx_vt_is_trained(lt) && !vdx_vt_is_orthonormal(lt));
    CHECK_OK(vdx_vt_apply(lt, n, x, y));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < 3; j++)
            CHECK(fabs(y[i * 3 + j] - (dot(A + j * d, x + i * d, d) + b[j])) < 1e-5);
    CHECK_ERR(vdx_vt_reverse(lt, n, y, z), VDX_ERR_UNSUPPORTED);
    /* clone is deep */
    vdx_vt *c = NULL;
    CHECK_OK(vdx_vt_clone(lt, &c));
    CHECK(c && vdx_vt_array(c, VDX_VT_A, NULL) != vdx_vt_array(lt, VDX_VT_A, NULL));
    CHECK(!strcmp(vdx_vt_type_name(c), "LinearTransform"));
    vdx_vt_free(c);
    vdx_vt_free(nt);
    vdx_vt_free(ct);
    vdx_vt_free(lt);
}

static void test_transform_errors(void) {
    vdx_vt *vt = NULL;
    CHECK_ERR(vdx_vt_pca_new(8, 9, 0, 0, &vt), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "d_out=9"));
    CHECK_ERR(vdx_vt_pca_new(0, 0, 0, 0, &vt), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_pca_new(8, 4, NAN, 0, &vt), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_opq_new(10, 3, 0, &vt), VDX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vdx_last_error(), "M=3"));
    CHECK_ERR(vdx_vt_random_rotation_new(1 << 20, 1 << 20, &vt),
              VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_linear_new(4, 4, 0, NULL), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_vt_pca_new(4, 2, 0, 0, &vt));
    float x[8] = {1, 2, 3, NAN, 0, 0, 0, 0}, y[4];
    CHECK_ERR(vdx_vt_train(vt, 2, x), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_train(vt, 0, x), VDX_ERR_INVALID_ARGUMENT);
    x[3] = 4;
    CHECK_OK(vdx_vt_train(vt, 2, x));
    CHECK_ERR(vdx_vt_apply(vt, -1, x, y), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_apply(NULL, 1, x, y), VDX_ERR_INVALID_ARGUMENT);
    vdx_vt_options o;
    CHECK_OK(vdx_vt_get_options(vt, &o));
    o.niter_pq = 0;
    CHECK_ERR(vdx_vt_set_options(vt, &o), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_rr_init(vt, 1), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_vt_set_array(vt, VDX_VT_A, x, 8), VDX_ERR_INVALID_ARGUMENT);
    vdx_vt_free(vt);
    vdx_vt_free(NULL);
}

/* IndexPreTransform search = manual transform + sub-index search. */
static void test_pretransform_search(void) {
    const int64_t n = 3000, d = 16, dout = 8, nq = 20, k = 5;
    float *x = make_data(n, d, 9);
    vdx_vt *pca = NULL, *nt = NULL;
    vdx_index *sub = NULL, *ix = NULL, *ref = NULL;
    CHECK_OK(vdx_vt_pca_new(d, dout, 0, 0, &pca));
    CHECK_OK(vdx_index_flat_new(dout, VDX_METRIC_L2, &sub));
    CHECK_ERR(vdx_index_pretransform_new(pca, NULL, &ix), VDX_ERR_INVALID_ARGUMENT);
    {
        vdx_index *bad = NULL;
        CHECK_OK(vdx_index_flat_new(dout + 1, VDX_METRIC_L2, &bad));
        CHECK_ERR(vdx_index_pretransform_new(pca, bad, &ix), VDX_ERR_INVALID_ARGUMENT);
        CHECK(strstr(vdx_last_error(), "d_out=8"));
        vdx_index_free(bad);
    }
    CHECK_OK(vdx_index_pretransform_new(pca, sub, &ix));
    CHECK(vdx_index_d(ix) == d && !vdx_index_is_trained(ix));
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexPreTransform"));
    CHECK_ERR(vdx_index_add(ix, n, x), VDX_ERR_NOT_TRAINED);
    CHECK_OK(vdx_index_train(ix, n, x));
    CHECK(vdx_index_is_trained(ix) && vdx_vt_is_trained(pca));
    {
        vdx_idx_t ids[2] = {5, 6};
        CHECK_ERR(vdx_index_add_with_ids(ix, 2, x, ids), VDX_ERR_UNSUPPORTED);
        CHECK(vdx_index_ntotal(ix) == 0);
    }
    CHECK_OK(vdx_index_add(ix, n, x));
    CHECK(vdx_index_ntotal(ix) == n && vdx_index_ntotal(sub) == n);
    CHECK(vdx_index_pretransform_chain_size(ix) == 1);
    CHECK(vdx_index_pretransform_chain(ix, 0) == pca);
    CHECK(vdx_index_pretransform_chain(ix, 1) == NULL);
    CHECK(vdx_index_pretransform_index(ix) == sub);

    /* reference: apply by hand, search a separate flat index */
    float *xt = malloc((size_t)(n * dout) * sizeof(float));
    CHECK_OK(vdx_vt_apply(pca, n, x, xt));
    float *xt2 = malloc((size_t)(n * dout) * sizeof(float));
    CHECK_OK(vdx_index_pretransform_apply(ix, n, x, xt2));
    CHECK(!memcmp(xt, xt2, (size_t)(n * dout) * sizeof(float)));
    CHECK_OK(vdx_index_flat_new(dout, VDX_METRIC_L2, &ref));
    CHECK_OK(vdx_index_add(ref, n, xt));
    float D1[20 * 5], D2[20 * 5];
    vdx_idx_t I1[20 * 5], I2[20 * 5];
    CHECK_OK(vdx_index_search(ix, nq, x + 100 * d, k, NULL, D1, I1));
    float xq[20 * 8]; /* same batch as the index transforms: same rounding */
    CHECK_OK(vdx_vt_apply(pca, nq, x + 100 * d, xq));
    CHECK_OK(vdx_index_search(ref, nq, xq, k, NULL, D2, I2));
    CHECK(!memcmp(I1, I2, sizeof I1) && !memcmp(D1, D2, sizeof D1));
    CHECK(I1[0] == 100);

    /* selectors pass through */
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_range(0, 50, &sel));
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.sel = sel;
    CHECK_OK(vdx_index_search(ix, nq, x + 100 * d, k, &p, D1, I1));
    CHECK_OK(vdx_index_search(ref, nq, xq, k, &p, D2, I2));
    CHECK(!memcmp(I1, I2, sizeof I1));
    for (int64_t i = 0; i < nq * k; i++) CHECK(I1[i] >= 0 && I1[i] < 50);
    /* range search */
    vdx_range_result *r1 = NULL, *r2 = NULL;
    CHECK_OK(vdx_index_range_search(ix, 3, x, D2[4] + 1e-3f, NULL, &r1));
    CHECK_OK(vdx_index_range_search(ref, 3, xt, D2[4] + 1e-3f, NULL, &r2));
    CHECK(r1 && r2 && r1->lims[3] == r2->lims[3] && r1->lims[3] > 0);
    vdx_range_result_free(r1);
    vdx_range_result_free(r2);

    /* reconstruct: the projection back in the input space */
    float rec[16], back[16];
    CHECK_OK(vdx_index_reconstruct(ix, 7, rec));
    CHECK_OK(vdx_vt_reverse(pca, 1, xt + 7 * dout, back));
    for (int64_t j = 0; j < d; j++) CHECK(fabs(rec[j] - back[j]) < 1e-4);
    float recn[2 * 16];
    CHECK_OK(vdx_index_reconstruct_n(ix, 6, 2, recn));
    for (int64_t j = 0; j < d; j++) CHECK(fabs(recn[16 + j] - rec[j]) < 1e-4);

    /* prepend a normalisation: search = normalise, then PCA, then flat */
    CHECK_OK(vdx_vt_normalization_new(d, 2.0f, &nt));
    CHECK_ERR(vdx_index_pretransform_prepend(ix, pca), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_pretransform_prepend(ix, nt));
    CHECK(vdx_index_pretransform_chain_size(ix) == 2 &&
          vdx_index_pretransform_chain(ix, 0) == nt);
    CHECK_OK(vdx_index_search(ix, 1, x, k, NULL, D1, I1));
    float xn[16], xnt[8];
    memcpy(xn, x, sizeof xn);
    CHECK_OK(vdx_normalize_L2(1, d, xn));
    CHECK_OK(vdx_vt_apply(pca, 1, xn, xnt));
    CHECK_OK(vdx_index_search(ref, 1, xnt, k, NULL, D2, I2));
    CHECK(!memcmp(I1, I2, (size_t)k * sizeof(vdx_idx_t)));

    /* remove_ids and reset delegate */
    int64_t nr = 0;
    CHECK_OK(vdx_index_remove_ids(ix, sel, &nr));
    CHECK(nr == 50 && vdx_index_ntotal(ix) == n - 50);
    CHECK_OK(vdx_index_reset(ix));
    CHECK(vdx_index_ntotal(ix) == 0 && vdx_index_ntotal(sub) == 0);

    vdx_selector_free(sel);
    vdx_index_free(ix);
    vdx_index_free(ref);
    free(x);
    free(xt);
    free(xt2);
}

/* Training trains each untrained element on the output of the previous
 * ones: PCA(16 -> 8) then an IVF on the projected vectors. */
static void test_pretransform_train_chain(void) {
    const int64_t n = 2000, d = 16;
    float *x = make_data(n, d, 12);
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(d, "PCA8,IVF8,Flat", VDX_METRIC_L2, &ix));
    CHECK_OK(vdx_index_train(ix, n, x));
    vdx_index *ivf = vdx_index_pretransform_index(ix);
    CHECK(ivf && vdx_index_is_ivf(ivf) && vdx_index_d(ivf) == 8);
    CHECK(vdx_index_is_trained(ivf));
    /* the IVF centroids live in PCA space: assignments of projected points
     * equal the IVF's own assignment of them */
    vdx_vt *pca = vdx_index_pretransform_chain(ix, 0);
    float xt[10 * 8];
    CHECK_OK(vdx_vt_apply(pca, 10, x, xt));
    int64_t l1[10];
    CHECK_OK(vdx_index_ivf_assign(ivf, 10, xt, l1));
    for (int i = 0; i < 10; i++) CHECK(l1[i] >= 0 && l1[i] < 8);
    /* search params reach the IVF (nprobe = nlist gives exact results) */
    CHECK_OK(vdx_index_add(ix, n, x));
    vdx_search_params p;
    vdx_search_params_init(&p);
    p.nprobe = 8;
    float D[5], D2[5];
    vdx_idx_t I[5], I2[5];
    CHECK_OK(vdx_index_search(ix, 1, x + 5 * d, 5, &p, D, I));
    vdx_index *flat = NULL;
    float *all = malloc((size_t)(n * 8) * sizeof(float));
    CHECK_OK(vdx_vt_apply(pca, n, x, all));
    CHECK_OK(vdx_index_flat_new(8, VDX_METRIC_L2, &flat));
    CHECK_OK(vdx_index_add(flat, n, all));
    CHECK_OK(vdx_index_search(flat, 1, all + 5 * 8, 5, NULL, D2, I2));
    CHECK(!memcmp(I, I2, sizeof I));
    /* base_params replaces params for the sub-index */
    vdx_search_params outer;
    vdx_search_params_init(&outer);
    outer.base_params = &p;
    CHECK_OK(vdx_index_search(ix, 1, x + 5 * d, 5, &outer, D, I));
    CHECK(!memcmp(I, I2, sizeof I));
    /* reconstruct needs a direct map in the IVF, then works */
    float rec[16];
    CHECK(vdx_index_reconstruct(ix, 3, rec) != VDX_OK);
    free(all);
    vdx_index_free(flat);
    vdx_index_free(ix);
    free(x);
}

static void test_factory_transforms(void) {
    struct {
        const char *desc;
        int64_t nchain, sub_d;
        const char *vt0, *sub;
    } cases[] = {
        {"PCA32,IVF100,Flat", 1, 32, "PCAMatrix", "IndexIVFFlat"},
        {"OPQ16_64,IVF256,PQ16", 1, 64, "OPQMatrix", "IndexIVFPQ"},
        {"OPQ8,PQ8", 1, 64, "OPQMatrix", "IndexPQ"},
        {"OPQ16_32,Flat", 1, 32, "OPQMatrix", "IndexFlat"},
        {"RR64,LSH", 1, 64, "RandomRotationMatrix", "IndexLSH"},
        {"RR,Flat", 1, 64, "RandomRotationMatrix", "IndexFlat"},
        {"L2norm,Flat", 1, 64, "NormalizationTransform", "IndexFlat"},
        {"PCAR32,SQ8", 1, 32, "PCAMatrix", "IndexScalarQuantizer"},
        {"PCAW16,Flat", 1, 16, "PCAMatrix", "IndexFlat"},
        {"PCAWR16,Flat", 1, 16, "PCAMatrix", "IndexFlat"},
        {"L2norm,PCA32,Flat", 2, 32, "NormalizationTransform", "IndexFlat"},
        {"PCA16,OPQ4,PQ4", 2, 16, "PCAMatrix", "IndexPQ"},
        {"PCA32,IDMap,Flat", 1, 32, "PCAMatrix", "IndexIDMap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(64, cases[i].desc, VDX_METRIC_L2, &ix));
        if (!ix) {
            fprintf(stderr, "  factory '%s' failed\n", cases[i].desc);
            continue;
        }
        CHECK(!strcmp(vdx_index_type_name(ix), "IndexPreTransform"));
        CHECK(vdx_index_d(ix) == 64);
        CHECK(vdx_index_pretransform_chain_size(ix) == cases[i].nchain);
        vdx_vt *vt = vdx_index_pretransform_chain(ix, 0);
        CHECK(vt && !strcmp(vdx_vt_type_name(vt), cases[i].vt0));
        vdx_index *sub = vdx_index_pretransform_index(ix);
        CHECK(sub && vdx_index_d(sub) == cases[i].sub_d);
        /* "IndexFlat" also matches IndexFlatL2 */
        if (sub && strncmp(vdx_index_type_name(sub), cases[i].sub,
                           strlen(cases[i].sub))) {
            fprintf(stderr, "  '%s': sub-index %s\n", cases[i].desc, vdx_index_type_name(sub));
            CHECK(0);
        }
        vdx_index_free(ix);
    }
    /* whitening and rotation flags */
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(64, "PCAWR16,Flat", VDX_METRIC_L2, &ix));
    vdx_vt_options o;
    CHECK_OK(vdx_vt_get_options(vdx_index_pretransform_chain(ix, 0), &o));
    CHECK(o.eigen_power == -0.5f && o.random_rotation == 1);
    vdx_index_free(ix);
    /* IDMap outside: the IDMap wraps the pre-transform */
    CHECK_OK(vdx_index_factory(64, "IDMap,PCA32,Flat", VDX_METRIC_L2, &ix));
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexIDMap"));
    CHECK(!strcmp(vdx_index_type_name(vdx_index_sub_index(ix)), "IndexPreTransform"));
    vdx_index_free(ix);
    CHECK_OK(vdx_index_factory(64, "PCA32,Flat,RFlat", VDX_METRIC_L2, &ix));
    CHECK(!strcmp(vdx_index_type_name(ix), "IndexRefineFlat"));
    vdx_index_free(ix);
    /* errors name the token and its position */
    struct {
        const char *desc, *msg;
    } bad[] = {
        {"PCA128,Flat", "'PCA128' at position 0"},
        {"OPQ5,PQ5", "'OPQ5' at position 0"},
        {"OPQ16_30,Flat", "'OPQ16_30' at position 0"},
        {"PCA0,Flat", "'PCA0' at position 0"},
        {"IVF10,PCA32,Flat", "'PCA32' at position 6"},
        {"PCA32,PCAX8,Flat", "'PCAX8' at position 6"},
        {"RR8x,Flat", "'RR8x' at position 0"},
        {"L2norm", "ends with 'L2norm'"},
        {"OPQ_8,Flat", "'OPQ_8' at position 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ix = NULL;
        CHECK_ERR(vdx_index_factory(64, bad[i].desc, VDX_METRIC_L2, &ix),
                  VDX_ERR_INVALID_ARGUMENT);
        if (!strstr(vdx_last_error(), bad[i].msg)) {
            fprintf(stderr, "  '%s': message '%s'\n", bad[i].desc, vdx_last_error());
            CHECK(0);
        }
        CHECK(ix == NULL);
    }
}

int main(void) {
    RUN(test_random_rotation);
    RUN(test_pca_vs_power_iteration);
    RUN(test_pca_whitening_and_rotation);
    RUN(test_pca_extreme_magnitudes);
    RUN(test_opq_beats_pq);
    RUN(test_norm_center_linear);
    RUN(test_transform_errors);
    RUN(test_pretransform_search);
    RUN(test_pretransform_train_chain);
    RUN(test_factory_transforms);
    return TEST_SUMMARY();
}
