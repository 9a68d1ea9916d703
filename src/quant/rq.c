/*
 * rq.c — the residual quantizer (Chen, Guan, Wang, "Approximate nearest
 * neighbor search by residual vector quantization", Sensors 2010; beam
 * search encoding as in FAISS's ResidualQuantizer).
 *
 * Step m quantizes the residuals left by steps 0..m-1 with a codebook of
 * 2^nbits[m] entries.  A greedy encoder keeps one residual; the beam
 * search keeps the L = max_beam_size best partial codes: each of them is
 * extended by every entry of codebook m, and the L extensions with the
 * smallest residual norms survive.  Training learns the codebooks in step
 * order, each by k-means of the residuals the beam leaves (all L beams of
 * every training vector, or only the best with Train_top_beam), optionally
 * in progressively growing PCA dimensions (FAISS's
 * ProgressiveDimClustering) and followed by a least-squares refinement of
 * all codebooks together (Train_refine_codebook).
 *
 * Speed.  The distances of a block of residuals to a codebook are one
 * sgemm tile (|r|^2 + |c|^2 - 2 <r, c>); the L best of each vector are
 * kept by a bounded heap fed only with the tile entries a SIMD filter
 * finds below its current worst.  The encoder runs all M steps for a block
 * of vectors before the next block (its residuals stay in cache, and
 * blocks go to threads), where FAISS runs each step over all vectors.  With
 * use_beam_LUT the distances come from tables instead (<x, entry>, |entry|^2
 * and the products of entries of different codebooks), and no residual is
 * ever formed.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "aq.h"
#include "cluster/kmeans.h"
#include "common/blas.h"
#include "common/interrupt.h"
#include "common/threads.h"
#include "common/topk.h"
#include "quant/transform.h"
#include "simd/kernels.h"
#include "index/index_internal.h"

/* floats of one distance tile (rows x K) */
#define TILE_FLOATS (1 << 16)

static int64_t kmax_of(const vdx_aq *rq) {
    int64_t k = 1;
    for (int64_t m = 0; m < rq->M; m++)
        k = VDX_MAX(k, (int64_t)1 << rq->nbits[m]);
    return k;
}

/* the largest beam the steps reach for an output beam L */
static int64_t max_beam(const vdx_aq *rq, int64_t L) {
    int64_t b = 1, mx = 1;
    for (int64_t m = 0; m < rq->M; m++) {
        int64_t K = (int64_t)1 << rq->nbits[m];
        b = b > L / K + 1 ? L : VDX_MIN(b * K, L);
        mx = VDX_MAX(mx, b);
    }
    return mx;
}

/* vectors per block for a beam of L */
static int64_t block_of(int64_t L) { return VDX_MAX(1, VDX_MIN(256, 512 / L)); }

/* ---- the workspace of one thread ------------------------------------------ */
typedef struct {
    int64_t nb, L, Kmax;
    float *tile;      /* TILE_FLOATS, or one row of Kmax */
    float *hk;        /* nb x L heap keys */
    vdx_idx_t *hi;    /* nb x L heap ids */
    uint32_t *cand;   /* Kmax */
    float *rnorm;     /* nb x L */
} beam_ws;

static void ws_free(beam_ws *w) {
    vdx_aligned_free(w->tile);
    vdx_free(w->hk);
    vdx_free(w->hi);
    vdx_free(w->cand);
    vdx_free(w->rnorm);
    memset(w, 0, sizeof *w);
}

static vdx_status ws_alloc(beam_ws *w, int64_t nb, int64_t L, int64_t Kmax) {
    memset(w, 0, sizeof *w);
    w->nb = nb;
    w->L = L;
    w->Kmax = Kmax;
    size_t tf = (size_t)VDX_MAX(TILE_FLOATS, Kmax);
    w->tile = vdx_aligned_alloc(tf, sizeof(float));
    w->hk = vdx_malloc_array((size_t)(nb * L), sizeof(float));
    w->hi = vdx_malloc_array((size_t)(nb * L), sizeof(vdx_idx_t));
    w->cand = vdx_malloc_array((size_t)Kmax, sizeof(uint32_t));
    w->rnorm = vdx_malloc_array((size_t)(nb * L), sizeof(float));
    if (!w->tile || !w->hk || !w->hi || !w->cand || !w->rnorm) {
        ws_free(w);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    return VDX_OK;
}

/* Offers the K candidate distances `row` of beam entry b to heap (hk, hi)
 * of L entries, ids b * K + k. */
static inline void offer_row(const vdx_kernels *Kr, const float *row, int64_t K,
                             int64_t b, int64_t L, float *hk, vdx_idx_t *hi,
                             uint32_t *cand) {
    size_t nc = Kr->filter_less(row, (size_t)K, hk[0], cand);
    for (size_t c = 0; c < nc; c++)
        vdx_heap_push(L, hk, hi, row[cand[c]], b * K + (vdx_idx_t)cand[c]);
}

/* Writes the sorted heaps of nb vectors as the new beam: codes (previous
 * beam entry's m codes + the new one), residuals (when res != NULL) and
 * distances. */
static void emit(beam_ws *w, int64_t nb, int64_t d, int64_t K,
                 const float *cent, int64_t beam, const float *res,
                 int64_t m, const int32_t *codes, int64_t L,
                 int32_t *new_codes, float *new_res, float *new_dis) {
    for (int64_t i = 0; i < nb; i++) {
        float *hk = w->hk + i * L;
        vdx_idx_t *hi = w->hi + i * L;
        vdx_heap_sort(L, hk, hi);
        for (int64_t j = 0; j < L; j++) {
            int64_t id = hi[j], js = id / K, ls = id % K;
            int32_t *nc = new_codes + (i * L + j) * (m + 1);
            if (id < 0) {
                /* fewer than L finite candidates (distances that overflow
                 * to Inf or NaN are never offered): an empty entry, code -1,
                 * that later steps carry along and callers skip */
                for (int64_t t = 0; t <= m; t++) nc[t] = -1;
                if (new_res) memset(new_res + (i * L + j) * d, 0, (size_t)d * sizeof(float));
                new_dis[i * L + j] = FLT_MAX;
                continue;
            }
            if (m > 0)
                memcpy(nc, codes + (i * beam + js) * m, (size_t)m * sizeof(int32_t));
            nc[m] = (int32_t)ls;
            if (new_res) {
                const float *r = res + (i * beam + js) * d, *c = cent + ls * d;
                float *o = new_res + (i * L + j) * d;
                for (int64_t t = 0; t < d; t++) o[t] = r[t] - c[t];
            }
            new_dis[i * L + j] = hk[j] < 0 ? 0 : hk[j];
        }
    }
}

/* One beam step for nb vectors from their residuals (the exhaustive
 * distances to the K entries cent, whose squared norms are cn). */
static void step_block(beam_ws *w, int64_t d, int64_t K, const float *cent,
                       const float *cn, int64_t nb, int64_t beam,
                       const float *res, int64_t m, const int32_t *codes,
                       int64_t L, int32_t *new_codes, float *new_res,
                       float *new_dis) {
    const vdx_kernels *Kr = vdx_kernels_get();
    const int64_t rows = nb * beam;
    Kr->norms_sqr_ny(w->rnorm, res, (size_t)d, (size_t)rows);
    for (int64_t i = 0; i < nb; i++) vdx_heap_init(L, w->hk + i * L, w->hi + i * L);
    const int64_t R = VDX_MAX(1, TILE_FLOATS / K);
    for (int64_t r0 = 0; r0 < rows; r0 += R) {
        int64_t nr = VDX_MIN(R, rows - r0);
        vdx_aq_l2_tile(nr, K, d, res + r0 * d, w->rnorm + r0, cent, cn, w->tile);
        for (int64_t r = 0; r < nr; r++) {
            int64_t g = r0 + r, i = g / beam, b = g % beam;
            if (m > 0 && codes[g * m] < 0) continue; /* an empty entry (emit) */
            offer_row(Kr, w->tile + r * K, K, b, L, w->hk + i * L, w->hi + i * L,
                      w->cand);
        }
    }
    emit(w, nb, d, K, cent, beam, res, m, codes, L, new_codes, new_res, new_dis);
}

/* One step from tables (no residuals): candidate (b, k) of vector i costs
 * dis[i, b] + cn[k] - 2 qcp[i][k] + 2 sum_l cross[(off[l] + code_l) ldc + k]. */
static void step_tab_block(beam_ws *w, int64_t K, int64_t nb, int64_t beam,
                           const float *cross, int64_t ldc, const int64_t *off,
                           const float *qcp, int64_t ldqc, const float *cn,
                           int64_t m, const int32_t *codes, const float *dis,
                           int64_t L, int32_t *new_codes, float *new_dis) {
    const vdx_kernels *Kr = vdx_kernels_get();
    float *row = w->tile;
    for (int64_t i = 0; i < nb; i++) {
        float *hk = w->hk + i * L;
        vdx_idx_t *hi = w->hi + i * L;
        vdx_heap_init(L, hk, hi);
        const float *q = qcp + i * ldqc;
        for (int64_t b = 0; b < beam; b++) {
            const int32_t *cb = codes + (i * beam + b) * m;
            float base = dis[i * beam + b];
            if (m > 0 && cb[0] < 0) continue; /* an empty entry (see emit) */
            for (int64_t k = 0; k < K; k++) row[k] = 0;
            for (int64_t l = 0; l < m; l++) {
                const float *cr = cross + (off[l] + cb[l]) * ldc;
                for (int64_t k = 0; k < K; k++) row[k] += cr[k];
            }
            for (int64_t k = 0; k < K; k++)
                row[k] = base + cn[k] - 2 * q[k] + 2 * row[k];
            offer_row(Kr, row, K, b, L, hk, hi, w->cand);
        }
    }
    emit(w, nb, 0, K, NULL, beam, NULL, m, codes, L, new_codes, NULL, new_dis);
}

/* ---- encoding: all steps for a block of vectors ------------------------ */

typedef struct {
    float *res[2];
    int32_t *codes[2];
    float *dis[2];
    float *qcp; /* use_beam_LUT: nb x total_cb */
} block_bufs;

static void bufs_free(block_bufs *b) {
    for (int i = 0; i < 2; i++) {
        vdx_free(b->res[i]);
        vdx_free(b->codes[i]);
        vdx_free(b->dis[i]);
    }
    vdx_free(b->qcp);
    memset(b, 0, sizeof *b);
}

static vdx_status bufs_alloc(block_bufs *b, const vdx_aq *rq, int64_t nb,
                             int64_t Lmax, int lut) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < 2; i++) {
        b->res[i] = lut ? NULL : vdx_malloc_array((size_t)(nb * Lmax), (size_t)rq->d * sizeof(float));
        b->codes[i] = vdx_malloc_array((size_t)(nb * Lmax), (size_t)(rq->M + 1) * sizeof(int32_t));
        b->dis[i] = vdx_malloc_array((size_t)(nb * Lmax), sizeof(float));
        if ((!lut && !b->res[i]) || !b->codes[i] || !b->dis[i]) {
            bufs_free(b);
            return VDX_ERR_OUT_OF_MEMORY;
        }
    }
    if (lut) {
        b->qcp = vdx_malloc_array((size_t)nb, (size_t)rq->total_cb * sizeof(float));
        if (!b->qcp) {
            bufs_free(b);
            return VDX_ERR_OUT_OF_MEMORY;
        }
    }
    return VDX_OK;
}

/* Runs the M steps for nb vectors x with an output beam L; returns the
 * final beam size, its codes in bufs->codes[*which], distances in
 * bufs->dis[*which] and residuals in bufs->res[*which]. */
static int64_t encode_block(const vdx_aq *rq, const float *cn, int lut,
                            int64_t nb, const float *x, int64_t L,
                            block_bufs *bb, beam_ws *w, int *which) {
    const int64_t d = rq->d;
    int cur = 0;
    int64_t beam = 1;
    if (lut) {
        vdx_aq_lut(rq, nb, x, 1.0f, bb->qcp, rq->total_cb);
        vdx_kernels_get()->norms_sqr_ny(bb->dis[0], x, (size_t)d, (size_t)nb);
    } else {
        memcpy(bb->res[0], x, (size_t)(nb * d) * sizeof(float));
    }
    size_t cross_ofs = 0;
    for (int64_t m = 0; m < rq->M; m++) {
        int64_t K = (int64_t)1 << rq->nbits[m];
        int64_t nbeam = beam > L / K + 1 ? L : VDX_MIN(beam * K, L);
        if (lut)
            step_tab_block(w, K, nb, beam, rq->cross ? rq->cross + cross_ofs : NULL,
                           K, rq->cb_off,
                           bb->qcp + rq->cb_off[m], rq->total_cb,
                           cn + rq->cb_off[m], m, bb->codes[cur], bb->dis[cur],
                           nbeam, bb->codes[1 - cur], bb->dis[1 - cur]);
        else
            step_block(w, d, K, rq->codebooks + (size_t)rq->cb_off[m] * (size_t)d,
                       cn + rq->cb_off[m], nb, beam, bb->res[cur], m,
                       bb->codes[cur], nbeam, bb->codes[1 - cur],
                       bb->res[1 - cur], bb->dis[1 - cur]);
        cross_ofs += (size_t)rq->cb_off[m] * (size_t)K;
        cur = 1 - cur;
        beam = nbeam;
    }
    *which = cur;
    return beam;
}

/* Entry norms: the tables' when present, else computed. */
static float *entry_norms(const vdx_aq *rq, int *owned) {
    *owned = 0;
    if (rq->centroid_norms) return rq->centroid_norms;
    float *cn = vdx_malloc_array((size_t)rq->total_cb, sizeof(float));
    if (!cn) return NULL;
    vdx_kernels_get()->norms_sqr_ny(cn, rq->codebooks, (size_t)rq->d,
                                    (size_t)rq->total_cb);
    *owned = 1;
    return cn;
}

/* The shared driver: best codes (idx, n x M) and reconstruction norms
 * (norms), or the whole final beams (codes n x L x M, distances, residuals
 * n x L x d); any output may be NULL. */
static vdx_status run_encoder(const vdx_aq *rq, int64_t n, const float *x,
                              int64_t L, int lut, int32_t *idx, float *norms,
                              int32_t *codes, float *residuals,
                              float *distances) {
    if (lut && rq->M > 1 && !rq->cross)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "ResidualQuantizer: use_beam_LUT needs the codebook "
                         "tables (call compute_codebook_tables first)");
    int owned = 0;
    float *cn = entry_norms(rq, &owned);
    if (!cn) return VDX_ERR_OUT_OF_MEMORY;
    const int64_t d = rq->d, M = rq->M, Lmax = max_beam(rq, L);
    const int64_t nb = block_of(Lmax), Kmax = kmax_of(rq);
    const int64_t nblocks = (n + nb - 1) / nb;
    const int nth = vdx_nthreads();
    vdx_status st = VDX_OK;
    int stop = 0;
#pragma omp parallel num_threads(nth) if (nblocks > 1)
    {
        beam_ws w;
        block_bufs bb;
        vdx_status sl = ws_alloc(&w, nb, Lmax, Kmax);
        if (!sl && (sl = bufs_alloc(&bb, rq, nb, Lmax, lut))) ws_free(&w);
        if (sl) {
#pragma omp atomic write
            st = sl;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (sl || vdx_poll_stop(&stop)) continue;
            int64_t i0 = blk * nb, ni = VDX_MIN(nb, n - i0);
            int which;
            int64_t fb = encode_block(rq, cn, lut, ni, x + i0 * d, L, &bb, &w, &which);
            const int32_t *bc = bb.codes[which];
            for (int64_t i = 0; i < ni; i++) {
                if (idx) memcpy(idx + (i0 + i) * M, bc + i * fb * M, (size_t)M * sizeof(int32_t));
                if (norms && !lut)
                    norms[i0 + i] = vdx_kernels_get()->l2sqr(
                        x + (i0 + i) * d, bb.res[which] + i * fb * d, (size_t)d);
                for (int64_t j = 0; j < L; j++) {
                    int64_t o = (i0 + i) * L + j;
                    if (codes) {
                        if (j < fb)
                            memcpy(codes + o * M, bc + (i * fb + j) * M, (size_t)M * sizeof(int32_t));
                        else
                            for (int64_t t = 0; t < M; t++) codes[o * M + t] = -1;
                    }
                    if (distances) distances[o] = j < fb ? bb.dis[which][i * fb + j] : INFINITY;
                    if (residuals) {
                        if (j < fb && !lut)
                            memcpy(residuals + o * d, bb.res[which] + (i * fb + j) * d,
                                   (size_t)d * sizeof(float));
                        else
                            memset(residuals + o * d, 0, (size_t)d * sizeof(float));
                    }
                }
            }
        }
        if (!sl) {
            ws_free(&w);
            bufs_free(&bb);
        }
    }
    if (owned) vdx_free(cn);
    if (st) return st;
    if (stop)
        return vdx_raise(VDX_ERR_INTERRUPTED,
                         "ResidualQuantizer: encoding of %lld vectors interrupted",
                         (long long)n);
    return VDX_OK;
}

vdx_status vdx_rq_encode(const vdx_aq *rq, int64_t n, const float *x,
                         int32_t *idx, float *norms) {
    int lut = rq->use_beam_LUT != 0;
    return run_encoder(rq, n, x, rq->max_beam_size, lut, idx, lut ? NULL : norms,
                       NULL, NULL, NULL);
}

vdx_status vdx_rq_refine_beam_internal(const vdx_aq *rq, int64_t n,
                                       const float *x, int64_t out_beam,
                                       int32_t *codes, float *residuals,
                                       float *distances) {
    return run_encoder(rq, n, x, out_beam, 0, NULL, NULL, codes, residuals,
                       distances);
}

/* ---- training ----------------------------------------------------------- */

/* k-means in growing dimensions of the PCA basis (FAISS's
 * ProgressiveDimClustering): stage s clusters the first
 * int(d^((s + 1) / steps)) PCA components, starting from the previous
 * stage's centroids padded with zeros. */
static vdx_status progressive_kmeans(const vdx_aq *rq, int64_t d, int64_t K,
                                     int64_t n, const float *x, float *cent) {
    vdx_status st = VDX_OK;
    vdx_vt *pca = NULL;
    float *xp = NULL, *xs = NULL, *c = NULL, *cprev = NULL;
    const float *xw = x;
    if (rq->apply_pca) {
        if ((st = vdx_vt_pca_new(d, d, 0.0f, 0, &pca)) ||
            (st = vdx_vt_train_internal(pca, n, x)))
            goto done;
        xp = vdx_malloc_array((size_t)n, (size_t)d * sizeof(float));
        if (!xp) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        if ((st = vdx_vt_apply_internal(pca, n, x, xp))) goto done;
        xw = xp;
    }
    xs = vdx_malloc_array((size_t)n, (size_t)d * sizeof(float));
    c = vdx_malloc_array((size_t)K, (size_t)d * sizeof(float));
    cprev = vdx_malloc_array((size_t)K, (size_t)d * sizeof(float));
    if (!xs || !c || !cprev) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    int64_t dprev = 0;
    int steps = rq->progressive_dim_steps > 0 ? rq->progressive_dim_steps : 1;
    for (int s = 0; s < steps; s++) {
        int64_t di = (int64_t)pow((double)d, (1.0 + s) / steps);
        if (di < 1) di = 1;
        if (di > d) di = d;
        for (int64_t i = 0; i < n; i++)
            memcpy(xs + i * di, xw + i * d, (size_t)di * sizeof(float));
        if (dprev > 0) {
            for (int64_t k = 0; k < K; k++) {
                int64_t dc = VDX_MIN(dprev, di);
                memcpy(c + k * di, cprev + k * dprev, (size_t)dc * sizeof(float));
                for (int64_t j = dc; j < di; j++) c[k * di + j] = 0;
            }
            st = vdx_kmeans_train_from(di, K, n, xs, &rq->cp, VDX_METRIC_L2, c);
        } else {
            st = vdx_kmeans_train_metric(di, K, n, xs, &rq->cp, VDX_METRIC_L2, c,
                                         NULL, NULL);
        }
        if (st) goto done;
        memcpy(cprev, c, (size_t)(K * di) * sizeof(float));
        dprev = di;
    }
    /* the last stage is in dimension d */
    if (pca) st = vdx_vt_reverse_internal(pca, K, cprev, cent);
    else memcpy(cent, cprev, (size_t)(K * d) * sizeof(float));
done:
    vdx_vt_free(pca);
    vdx_free(xp);
    vdx_free(xs);
    vdx_free(c);
    vdx_free(cprev);
    return st;
}

/* One step of training: the beam of all n training vectors extended by
 * codebook m (threads take blocks). */
static vdx_status train_step(const vdx_aq *rq, int64_t m, int64_t n,
                             int64_t beam, const float *res,
                             const int32_t *codes, int64_t L, int32_t *ncodes,
                             float *nres, float *ndis) {
    const int64_t d = rq->d, K = (int64_t)1 << rq->nbits[m];
    const float *cent = rq->codebooks + (size_t)rq->cb_off[m] * (size_t)d;
    float *cn = vdx_malloc_array((size_t)K, sizeof(float));
    if (!cn) return VDX_ERR_OUT_OF_MEMORY;
    vdx_kernels_get()->norms_sqr_ny(cn, cent, (size_t)d, (size_t)K);
    const int64_t nb = block_of(VDX_MAX(beam, L));
    const int64_t nblocks = (n + nb - 1) / nb;
    vdx_status st = VDX_OK;
#pragma omp parallel num_threads(vdx_nthreads()) if (nblocks > 1)
    {
        beam_ws w;
        vdx_status sl = ws_alloc(&w, nb, VDX_MAX(beam, L), K);
        if (sl) {
#pragma omp atomic write
            st = sl;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (sl) continue;
            int64_t i0 = blk * nb, ni = VDX_MIN(nb, n - i0);
            step_block(&w, d, K, cent, cn, ni, beam, res + i0 * beam * d, m,
                       codes + i0 * beam * m, L, ncodes + i0 * L * (m + 1),
                       nres + i0 * L * d, ndis + i0 * L);
        }
        if (!sl) ws_free(&w);
    }
    vdx_free(cn);
    return st;
}

vdx_status vdx_rq_train(vdx_aq *rq, int64_t n, const float *x) {
    const int64_t d = rq->d, M = rq->M;
    const int64_t L = VDX_MAX(1, rq->max_beam_size), Lmax = max_beam(rq, L);
    for (int64_t m = 0; m < M; m++)
        if (n < ((int64_t)1 << rq->nbits[m]))
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "ResidualQuantizer train: %lld training vectors "
                             "cannot make the %lld entries of codebook %lld "
                             "(need n >= 2^nbits)",
                             (long long)n, (long long)1 << rq->nbits[m],
                             (long long)m);
    vdx_status st = vdx_aq_alloc_codebooks(rq);
    if (st) return st;
    vdx_aq_drop_tables(rq);
    float *res[2], *dis;
    int32_t *codes[2];
    res[0] = vdx_malloc_array((size_t)n, (size_t)(Lmax * d) * sizeof(float));
    res[1] = vdx_malloc_array((size_t)n, (size_t)(Lmax * d) * sizeof(float));
    codes[0] = vdx_malloc_array((size_t)n, (size_t)(Lmax * M) * sizeof(int32_t) + 4);
    codes[1] = vdx_malloc_array((size_t)n, (size_t)(Lmax * M) * sizeof(int32_t) + 4);
    dis = vdx_malloc_array((size_t)n, (size_t)Lmax * sizeof(float));
    float *top = NULL, *cent = NULL, *norms = NULL;
    if (!res[0] || !res[1] || !codes[0] || !codes[1] || !dis) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    memcpy(res[0], x, (size_t)(n * d) * sizeof(float));
    int cur = 0;
    int64_t beam = 1;
    rq->is_trained = 0;
    for (int64_t m = 0; m < M; m++) {
        const int64_t K = (int64_t)1 << rq->nbits[m];
        if (vdx_interrupted()) {
            st = vdx_raise(VDX_ERR_INTERRUPTED,
                           "ResidualQuantizer train: interrupted at step %lld "
                           "of %lld",
                           (long long)m + 1, (long long)M);
            goto done;
        }
        /* the training set of this codebook: every beam's residual, or the
         * best one's */
        const float *tr = res[cur];
        int64_t nt = n * beam;
        if ((rq->train_type & VDX_RQ_TRAIN_TOP_BEAM) && beam > 1) {
            vdx_free(top);
            top = vdx_malloc_array((size_t)n, (size_t)d * sizeof(float));
            if (!top) {
                st = VDX_ERR_OUT_OF_MEMORY;
                goto done;
            }
            for (int64_t i = 0; i < n; i++)
                memcpy(top + i * d, res[cur] + i * beam * d, (size_t)d * sizeof(float));
            tr = top;
            nt = n;
        }
        cent = rq->codebooks + (size_t)rq->cb_off[m] * (size_t)d;
        st = (rq->train_type & VDX_RQ_TRAIN_PROGRESSIVE_DIM)
                 ? progressive_kmeans(rq, d, K, nt, tr, cent)
                 : vdx_kmeans_train_metric(d, K, nt, tr, &rq->cp, VDX_METRIC_L2,
                                           cent, NULL, NULL);
        if (st) {
            if (st != VDX_ERR_INTERRUPTED)
                st = vdx_raise(st,
                               "ResidualQuantizer train: the k-means of step "
                               "%lld (%lld entries on %lld residuals) failed: "
                               "%s",
                               (long long)m, (long long)K, (long long)nt,
                               vdx_last_error());
            goto done;
        }
        int64_t nbeam = beam > L / K + 1 ? L : VDX_MIN(beam * K, L);
        if ((st = train_step(rq, m, n, beam, res[cur], codes[cur], nbeam,
                             codes[1 - cur], res[1 - cur], dis)))
            goto done;
        cur = 1 - cur;
        beam = nbeam;
    }
    rq->is_trained = 1;
    if (rq->train_type & VDX_RQ_TRAIN_REFINE_CODEBOOK)
        for (int it = 0; it < rq->niter_codebook_refine && !st; it++)
            st = vdx_rq_retrain_codebook(rq, n, x, NULL);
    if (st) goto done;
    /* the norms of the training reconstructions, |x - best residual|^2 */
    norms = vdx_malloc_array((size_t)n, sizeof(float));
    if (!norms) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        norms[i] = vdx_kernels_get()->l2sqr(x + i * d, res[cur] + i * beam * d,
                                            (size_t)d);
    if ((st = vdx_aq_train_norm(rq, n, norms))) goto done;
    if (!(rq->train_type & VDX_RQ_SKIP_CODEBOOK_TABLES))
        st = vdx_aq_compute_tables(rq);
done:
    if (st) rq->is_trained = 0;
    vdx_free(res[0]);
    vdx_free(res[1]);
    vdx_free(codes[0]);
    vdx_free(codes[1]);
    vdx_free(dis);
    vdx_free(top);
    vdx_free(norms);
    return st;
}

/* ---- codebook refinement ------------------------------------------------ */

vdx_status vdx_rq_retrain_codebook(vdx_aq *rq, int64_t n, const float *x,
                                   float *err) {
    if (!rq || rq->kind != VDX_AQ_RQ || !rq->codebooks || n < 0 || (n > 0 && !x))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "retrain_AQ_codebook: needs a ResidualQuantizer with "
                         "codebooks and n vectors");
    const int64_t T = rq->total_cb, d = rq->d, M = rq->M;
    if (n < T)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "retrain_AQ_codebook: %lld vectors for %lld codebook "
                         "entries (need n >= total_codebook_size)",
                         (long long)n, (long long)T);
    if (T > 65536)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "retrain_AQ_codebook: %lld codebook entries is too "
                         "many for the normal equations (at most 65536)",
                         (long long)T);
    int32_t *idx = vdx_malloc_array((size_t)n, (size_t)M * sizeof(int32_t));
    double *A = vdx_calloc((size_t)(T * T), sizeof(double));
    /* the right-hand sides S^T X, column-major T x d (one column per
     * component) */
    double *B = vdx_calloc((size_t)(T * d), sizeof(double));
    float *dec = NULL;
    vdx_status st = idx && A && B ? VDX_OK : VDX_ERR_OUT_OF_MEMORY;
    if (!st) st = vdx_rq_encode(rq, n, x, idx, NULL);
    if (st) goto done;
    /* the least-squares codebooks C minimise |x - sum_m C[off_m + i_m]|^2:
     * (S^T S) C = S^T X for the 0/1 selection matrix S, solved by Cholesky
     * in double with a tiny ridge (entries no vector uses get ~0, as the
     * minimum-norm solution of FAISS's sgelsd) */
    for (int64_t i = 0; i < n; i++) {
        const int32_t *ci = idx + i * M;
        for (int64_t m = 0; m < M; m++) {
            int64_t a = rq->cb_off[m] + ci[m];
            for (int64_t l = 0; l < M; l++) A[a * T + rq->cb_off[l] + ci[l]] += 1;
            for (int64_t j = 0; j < d; j++) B[j * T + a] += x[i * d + j];
        }
    }
    for (int64_t a = 0; a < T; a++) A[a * T + a] += 1e-6;
    int ti = (int)T, di = (int)d, info = 0;
    dpotrf_("U", &ti, A, &ti, &info);
    if (info == 0) dpotrs_("U", &ti, &di, A, &ti, B, &ti, &info);
    if (info != 0) {
        st = vdx_raise(VDX_ERR_INTERNAL,
                       "retrain_AQ_codebook: the normal equations are not "
                       "positive definite (LAPACK info %d)",
                       info);
        goto done;
    }
    for (int64_t a = 0; a < T * d; a++)
        if (!isfinite(B[a])) {
            st = vdx_raise(VDX_ERR_INTERNAL,
                           "retrain_AQ_codebook: non-finite codebook value");
            goto done;
        }
    for (int64_t a = 0; a < T; a++)
        for (int64_t j = 0; j < d; j++) rq->codebooks[a * d + j] = (float)B[j * T + a];
    if (rq->centroid_norms && (st = vdx_aq_compute_tables(rq))) goto done;
    if (err) {
        dec = vdx_malloc_array((size_t)n, (size_t)d * sizeof(float));
        if (!dec) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        vdx_aq_decode_idx(rq, n, idx, M, dec);
        double e = 0;
        for (int64_t i = 0; i < n * d; i++) {
            double t = (double)x[i] - dec[i];
            e += t * t;
        }
        *err = (float)e;
    }
done:
    vdx_free(idx);
    vdx_free(A);
    vdx_free(B);
    vdx_free(dec);
    return st;
}

/* ---- the step functions of FAISS's API ----------------------------------- */

vdx_status vdx_rq_step_exhaustive(int64_t d, int64_t K, const float *cent,
                                  int64_t n, int64_t beam, const float *res,
                                  int64_t m, const int32_t *codes, int64_t L,
                                  int32_t *ncodes, float *nres, float *ndis);

vdx_status vdx_rq_step_exhaustive(int64_t d, int64_t K, const float *cent,
                                  int64_t n, int64_t beam, const float *res,
                                  int64_t m, const int32_t *codes, int64_t L,
                                  int32_t *ncodes, float *nres, float *ndis) {
    float *cn = vdx_malloc_array((size_t)K, sizeof(float));
    if (!cn) return VDX_ERR_OUT_OF_MEMORY;
    vdx_kernels_get()->norms_sqr_ny(cn, cent, (size_t)d, (size_t)K);
    const int64_t nb = block_of(VDX_MAX(beam, L)), nblocks = (n + nb - 1) / nb;
    vdx_status st = VDX_OK;
#pragma omp parallel num_threads(vdx_nthreads()) if (nblocks > 1)
    {
        beam_ws w;
        vdx_status sl = ws_alloc(&w, nb, VDX_MAX(beam, L), K);
        if (sl) {
#pragma omp atomic write
            st = sl;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (sl) continue;
            int64_t i0 = blk * nb, ni = VDX_MIN(nb, n - i0);
            step_block(&w, d, K, cent, cn, ni, beam, res + i0 * beam * d, m,
                       codes + i0 * beam * m, L, ncodes + i0 * L * (m + 1),
                       nres + i0 * L * d, ndis + i0 * L);
        }
        if (!sl) ws_free(&w);
    }
    vdx_free(cn);
    return st;
}

vdx_status vdx_rq_step_tab(int64_t K, int64_t n, int64_t beam,
                           const float *cross, int64_t ldc, const int64_t *off,
                           const float *qcp, int64_t ldqc, const float *cn,
                           int64_t m, const int32_t *codes, const float *dis,
                           int64_t L, int32_t *ncodes, float *ndis);

vdx_status vdx_rq_step_tab(int64_t K, int64_t n, int64_t beam,
                           const float *cross, int64_t ldc, const int64_t *off,
                           const float *qcp, int64_t ldqc, const float *cn,
                           int64_t m, const int32_t *codes, const float *dis,
                           int64_t L, int32_t *ncodes, float *ndis) {
    const int64_t nb = block_of(VDX_MAX(beam, L)), nblocks = (n + nb - 1) / nb;
    vdx_status st = VDX_OK;
#pragma omp parallel num_threads(vdx_nthreads()) if (nblocks > 1)
    {
        beam_ws w;
        vdx_status sl = ws_alloc(&w, nb, VDX_MAX(beam, L), K);
        if (sl) {
#pragma omp atomic write
            st = sl;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (sl) continue;
            int64_t i0 = blk * nb, ni = VDX_MIN(nb, n - i0);
            step_tab_block(&w, K, ni, beam, cross, ldc, off, qcp + i0 * ldqc,
                           ldqc, cn, m, codes + i0 * beam * m, dis + i0 * beam,
                           L, ncodes + i0 * L * (m + 1), ndis + i0 * L);
        }
        if (!sl) ws_free(&w);
    }
    return st;
}
