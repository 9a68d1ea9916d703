/*
 * kmeans.c — Lloyd's k-means, as FAISS's Clustering does it.
 *
 * Each run: pick k distinct training points as the first centroids; then
 * `niter` times assign every point to its nearest centroid (an exact flat
 * search with k = 1, i.e. sgemm with a fused arg-min) and move each centroid
 * to the mean of its points.  A cluster left empty is re-seeded by splitting
 * a large one (chosen with probability proportional to its size) into two
 * slightly perturbed copies.  Spherical mode normalises the centroids, for
 * inner-product data.  Above k * max_points_per_centroid points, a random
 * subset of that size is used.  Everything random flows from `seed`, and
 * the per-centroid sums run in point order, so the result does not depend on
 * the thread count.  The sample and the initial centroids are drawn with
 * FAISS's generator and permutation (mt19937, seeds `seed` and
 * `seed + 1 + 15486557 * run`), so for the same seed the centroids equal
 * FAISS's up to float rounding.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "common/common.h"
#include "common/interrupt.h"
#include "common/rng.h"
#include "common/threads.h"
#include "simd/kernels.h"
#include "kmeans.h"
#include "index/index_internal.h"

void vdx_kmeans_params_init(vdx_kmeans_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->niter = 25;
    p->nredo = 1;
    p->seed = 1234;
    p->max_points_per_centroid = 256;
    p->min_points_per_centroid = 39;
}

/* The first m entries of a seeded random permutation of 0..n-1, drawn as
 * FAISS's rand_perm draws it (forward Fisher-Yates, swap position i with
 * i + mt19937() % (n - i), the generator seeded with the low 32 bits of
 * seed), so that the same seed samples the same training points and
 * initial centroids as FAISS.  Positions below m are final after m swaps. */
static vdx_status sample(int64_t n, int64_t m, uint64_t seed, int64_t **out) {
    int64_t *perm = vdx_malloc_array((size_t)n, sizeof(int64_t));
    if (!perm) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    vdx_mt19937 g;
    vdx_mt_seed(&g, (uint32_t)seed);
    for (int64_t i = 0; i < m && i + 1 < n; i++) {
        /* FAISS: int rand_int(int max) { return mt() % max; } */
        int64_t j = i + (int64_t)((uint64_t)vdx_mt_next(&g) % (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    *out = perm;
    return VDX_OK;
}

static void normalize_rows(float *x, int64_t n, int64_t d) {
    const vdx_kernels *K = vdx_kernels_get();
    for (int64_t i = 0; i < n; i++) {
        float nr = K->norm_sqr(x + i * d, (size_t)d);
        if (nr > 0) {
            float inv = 1.0f / sqrtf(nr);
            for (int64_t j = 0; j < d; j++) x[i * d + j] *= inv;
        }
    }
}

/* Re-seeds empty clusters by splitting populated ones.  Returns how many
 * were split.  The counts add up to n >= k (every point has a centroid), so
 * while a cluster is empty another holds two points or more and the draw
 * ends; one full cycle has total probability sum (count - 1) / (n - k) =
 * 1, so it ends within a few cycles.  The cycles are still bounded, then
 * the largest cluster is split, so that no input can make it spin. */
static int64_t split_empty(float *cent, int64_t *count, int64_t k, int64_t d,
                           int64_t n, vdx_rng *r) {
    const float eps = 1.0f / 1024;
    int64_t nsplit = 0;
    for (int64_t ci = 0; ci < k; ci++) {
        if (count[ci] != 0) continue;
        int64_t cj = 0, tries = 0;
        for (;;) { /* size-proportional choice of the cluster to split */
            float pr = n > k ? (float)(count[cj] - 1) / (float)(n - k)
                             : (float)(count[cj] > 1);
            if (vdx_rng_float(r) < pr) break;
            cj = (cj + 1) % k;
            if (++tries == 64 * k) {
                cj = 0;
                for (int64_t c = 1; c < k; c++)
                    if (count[c] > count[cj]) cj = c;
                break;
            }
        }
        if (count[cj] < 2) break; /* nothing left to split */
        memcpy(cent + ci * d, cent + cj * d, (size_t)d * sizeof(float));
        for (int64_t j = 0; j < d; j++) {
            float s = (j % 2 == 0) ? 1 + eps : 1 - eps;
            cent[ci * d + j] *= s;
            cent[cj * d + j] *= 2 - s;
        }
        count[ci] = count[cj] / 2;
        count[cj] -= count[ci];
        nsplit++;
    }
    return nsplit;
}

/* Below this dimension (L2) the assignment step uses the transposed
 * distance kernel instead of the flat index's sgemm: with a handful of
 * components sgemm's inner products are too short to pay for its packing
 * (PQ sub-spaces are 4 to 16 wide). */
#define SMALL_D 16

/* assign[i] = nearest centroid of x_i (first on ties), dist[i] its
 * squared distance; ct is the k centroids transposed (d rows of k), cn
 * their squared norms.  As the sgemm path, distances are expanded as
 * |x|^2 + |c|^2 - 2<x, c> (one FMA per component and centroid). */
static void assign_small_d(int64_t d, int64_t k, int64_t n, const float *x,
                           const float *ct, const float *cn, float *dist,
                           int64_t *assign, float *scratch, int nth) {
    const vdx_kernels *K = vdx_kernels_get();
#pragma omp parallel num_threads(nth)
    {
        float *dis = scratch + (size_t)omp_get_thread_num() * (size_t)k;
        float a[SMALL_D];
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * d;
            for (int64_t c = 0; c < d; c++) a[c] = -2.0f * xi[c];
            K->matvec_t(dis, a, ct, cn, (size_t)d, (size_t)k);
            float m;
            assign[i] = (int64_t)K->argmin(dis, (size_t)k, &m);
            m += K->norm_sqr(xi, (size_t)d);
            dist[i] = m > 0 ? m : 0;
        }
    }
}

/* One Lloyd run; returns the final objective in *final. */
static vdx_status run_once(int64_t d, int64_t k, int64_t n, const float *x,
                           const vdx_kmeans_params *p, vdx_metric metric,
                           uint64_t seed, const float *init,
                           float *cent, float *obj, double *final) {
    vdx_status st = VDX_OK;
    if (init) {
        memcpy(cent, init, (size_t)k * (size_t)d * sizeof(float));
    } else {
        int64_t *perm = NULL;
        if ((st = sample(n, k, seed, &perm))) return st;
        for (int64_t c = 0; c < k; c++)
            memcpy(cent + c * d, x + perm[c] * d, (size_t)d * sizeof(float));
        vdx_free(perm);
    }
    if (p->spherical) normalize_rows(cent, k, d);

    float *dist = vdx_malloc_array((size_t)n, sizeof(float));
    int64_t *assign = vdx_malloc_array((size_t)n, sizeof(int64_t));
    int64_t *count = vdx_malloc_array((size_t)k, sizeof(int64_t));
    const int small = metric == VDX_METRIC_L2 && d < SMALL_D;
    /* a small problem runs on one thread: an iteration would cost less
     * than the team's barriers (much less on a loaded machine, where a
     * spinning team waits for descheduled threads) */
    const int nth = (double)n * (double)k * (double)d < 4e6 ? 1 : vdx_nthreads();
    float *ct = NULL, *scratch = NULL;
    vdx_index *q = NULL;
    vdx_rng r;
    vdx_rng_seed(&r, seed ^ 0x5eed5eedULL);
    if (!dist || !assign || !count) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (small) {
        ct = vdx_malloc_array((size_t)k, (size_t)(d + 1) * sizeof(float));
        scratch = vdx_malloc_array((size_t)nth, (size_t)k * sizeof(float));
        if (!ct || !scratch) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
    } else if ((st = vdx_index_flat_new(d, metric, &q))) {
        goto done;
    }
    for (int it = 0; it < p->niter; it++) {
        if (vdx_interrupted()) {
            st = vdx_raise(VDX_ERR_INTERRUPTED, "kmeans: interrupted at iteration %d of %d",
                           it + 1, p->niter);
            goto done;
        }
        if (small) {
            float *cn = ct + d * k; /* the norms follow the d rows */
            for (int64_t c = 0; c < k; c++) {
                float s2 = 0;
                for (int64_t j = 0; j < d; j++) {
                    ct[j * k + c] = cent[c * d + j];
                    s2 += cent[c * d + j] * cent[c * d + j];
                }
                cn[c] = s2;
            }
            assign_small_d(d, k, n, x, ct, cn, dist, assign, scratch, nth);
        } else {
            if ((st = vdx_index_reset(q)) || (st = vdx_index_add(q, k, cent)))
                goto done;
            /* x was checked once; the op skips the public entry's re-check */
            if ((st = q->ops->search(q, n, x, 1, NULL, dist, assign))) goto done;
        }
        /* every point must have a centroid (a -1 would index count[-1]):
         * inputs are bounded by vdx_max_magnitude, so distances are finite */
        for (int64_t i = 0; i < n; i++)
            if (assign[i] < 0 || assign[i] >= k) {
                st = vdx_raise(VDX_ERR_INTERNAL,
                               "kmeans: point %lld was assigned to no centroid "
                               "(label %lld, distance %g)",
                               (long long)i, (long long)assign[i], (double)dist[i]);
                goto done;
            }
        double o = 0;
        for (int64_t i = 0; i < n; i++) o += dist[i];
        if (obj) obj[it] = (float)o;
        *final = o;
        /* new centroids: each thread owns a slice of centroids and sums
         * their points in point order (deterministic for any thread count) */
        memset(count, 0, (size_t)k * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++) count[assign[i]]++;
#pragma omp parallel num_threads(nth)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t c0 = k * t / nt, c1 = k * (t + 1) / nt;
            for (int64_t c = c0; c < c1; c++)
                if (count[c]) memset(cent + c * d, 0, (size_t)d * sizeof(float));
            for (int64_t i = 0; i < n; i++) {
                int64_t c = assign[i];
                if (c < c0 || c >= c1) continue;
                float *ce = cent + c * d;
                const float *xi = x + i * d;
                for (int64_t j = 0; j < d; j++) ce[j] += xi[j];
            }
            for (int64_t c = c0; c < c1; c++) {
                if (!count[c]) continue;
                float inv = 1.0f / (float)count[c];
                for (int64_t j = 0; j < d; j++) cent[c * d + j] *= inv;
            }
        }
        split_empty(cent, count, k, d, n, &r);
        if (p->spherical) normalize_rows(cent, k, d);
        if (p->int_centroids)
            for (int64_t j = 0; j < k * d; j++) cent[j] = roundf(cent[j]);
    }
done:
    vdx_index_free(q);
    vdx_free(ct);
    vdx_free(scratch);
    vdx_free(dist);
    vdx_free(assign);
    vdx_free(count);
    return st;
}

vdx_status vdx_kmeans_train(int64_t d, int64_t k, int64_t n, const float *x,
                            const vdx_kmeans_params *params, float *centroids,
                            float *obj, int *warnings) {
    vdx_clear_error();
    int sph = params ? params->spherical : 0;
    vdx_team_begin();
    vdx_status st = vdx_kmeans_train_metric(
        d, k, n, x, params,
        sph ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2, centroids, obj,
        warnings);
    vdx_team_end();
    return st;
}

static vdx_status train_common(int64_t d, int64_t k, int64_t n,
                               const float *x, const vdx_kmeans_params *params,
                               vdx_metric metric, const float *init,
                               float *centroids, float *obj, int *warnings);

vdx_status vdx_kmeans_train_metric(int64_t d, int64_t k, int64_t n,
                                   const float *x,
                                   const vdx_kmeans_params *params,
                                   vdx_metric metric, float *centroids,
                                   float *obj, int *warnings) {
    return train_common(d, k, n, x, params, metric, NULL, centroids, obj,
                        warnings);
}

vdx_status vdx_kmeans_train_from(int64_t d, int64_t k, int64_t n,
                                 const float *x,
                                 const vdx_kmeans_params *params,
                                 vdx_metric metric, float *centroids) {
    float *init = vdx_malloc_array((size_t)k, (size_t)d * sizeof(float));
    if (!init) return VDX_ERR_OUT_OF_MEMORY;
    memcpy(init, centroids, (size_t)k * (size_t)d * sizeof(float));
    vdx_status st = train_common(d, k, n, x, params, metric, init, centroids,
                                 NULL, NULL);
    vdx_free(init);
    return st;
}

static vdx_status train_common(int64_t d, int64_t k, int64_t n,
                               const float *x, const vdx_kmeans_params *params,
                               vdx_metric metric, const float *init,
                               float *centroids, float *obj, int *warnings) {
    vdx_kmeans_params p;
    if (params) p = *params;
    else vdx_kmeans_params_init(&p);
    if (warnings) *warnings = 0;
    if (d <= 0 || d > VDX_MAX_DIM || k <= 0 || n < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "kmeans: bad sizes d=%lld k=%lld n=%lld",
                         (long long)d, (long long)k, (long long)n);
    if (!x || !centroids)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "kmeans: NULL data");
    if (p.niter <= 0 || p.nredo <= 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "kmeans: niter=%d and nredo=%d must be positive",
                         p.niter, p.nredo);
    if (n < k)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "kmeans: %lld training points cannot make %lld "
                         "clusters (need n >= k)",
                         (long long)n, (long long)k);
    vdx_status st = vdx_check_vectors(x, n, d, "training vectors");
    if (st) return st;
    const float *xt = x;
    float *sub = NULL;
    if (p.max_points_per_centroid > 0 && n > k * p.max_points_per_centroid) {
        int64_t m = k * p.max_points_per_centroid, *perm = NULL;
        if ((st = sample(n, m, (uint64_t)p.seed, &perm))) return st;
        sub = vdx_malloc_array((size_t)m, (size_t)d * sizeof(float));
        if (!sub) {
            vdx_free(perm);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        for (int64_t i = 0; i < m; i++)
            memcpy(sub + i * d, x + perm[i] * d, (size_t)d * sizeof(float));
        vdx_free(perm);
        xt = sub;
        n = m;
        if (warnings) *warnings |= VDX_KMEANS_WARN_SUBSAMPLED;
    } else if (n < k * p.min_points_per_centroid && warnings) {
        *warnings |= VDX_KMEANS_WARN_FEW_POINTS;
    }
    float *best = p.nredo > 1 ? vdx_malloc_array((size_t)k, (size_t)d * sizeof(float)) : NULL;
    if (p.nredo > 1 && !best) {
        vdx_free(sub);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    double best_obj = 0;
    for (int r = 0; r < p.nredo && !st; r++) {
        double fin = 0;
        st = run_once(d, k, n, xt, &p, metric,
                      (uint64_t)p.seed + 1 + 15486557ULL * (uint64_t)r, init,
                      centroids,
                      obj ? obj + (int64_t)r * p.niter : NULL, &fin);
        if (st) break;
        /* L2: lower is better; similarities: higher */
        int better = r == 0 || (metric == VDX_METRIC_INNER_PRODUCT
                                    ? fin > best_obj
                                    : fin < best_obj);
        if (better) {
            best_obj = fin;
            if (best) memcpy(best, centroids, (size_t)k * (size_t)d * sizeof(float));
        }
    }
    if (!st && best) memcpy(centroids, best, (size_t)k * (size_t)d * sizeof(float));
    vdx_free(best);
    vdx_free(sub);
    return st;
}
