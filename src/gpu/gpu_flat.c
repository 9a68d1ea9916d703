/*
 * gpu_flat.c — GpuIndexFlat (FAISS: GpuIndexFlat / GpuIndexFlatL2 /
 * GpuIndexFlatIP) and the tiled exact search every GPU kind builds on
 * (the coarse quantizer of the IVF kinds, knn_gpu).
 *
 * Search: the database is cut into tiles of DT rows and the queries into
 * tiles of QT; for each pair one sgemm (cuBLAS; GemmEx on fp16 storage,
 * fp32 accumulation) writes the QT x DT inner products to scratch memory,
 * and the selection kernel (select.cu) reads them as keys |y|^2 - 2<x, y>
 * (L2) or -<x, y> (IP) and keeps each query's k best of the tile.  With
 * several database tiles a second selection merges the tiles' k-lists.
 * |x|^2 is added on the host with the CPU index's own finishing code, so
 * distances, the clamping at 0 and the order of ties are the CPU's.
 * Queries and results page through the device in chunks; added vectors
 * likewise, so a search or an add never needs the whole input on the
 * device at once.
 */
#include <math.h>
#include <string.h>

#include "common/selector.h"
#include "common/topk.h"
#include "gpu_internal.h"
#include "quant/sq.h"
#include "simd/kernels.h"

#define FLAT_DB_TILE 65536
#define FLAT_Q_TILE 4096
#define QUERY_CHUNK 16384
#define ADD_CHUNK_BYTES ((size_t)64 << 20)

static const vdx_index_ops gflat_ops_l2, gflat_ops_ip;

int vdx_gpu_is_flat(const vdx_index *ix) {
    return ix && (ix->ops == &gflat_ops_l2 || ix->ops == &gflat_ops_ip);
}

static size_t esize(const vdx_gpu_flat *f) {
    return f->g.cfg.use_float16 ? 2 : 4;
}

vdx_gpu_db vdx_gpu_flat_db(const vdx_gpu_flat *f) {
    vdx_gpu_db db;
    db.x = f->xb;
    db.fp16 = f->g.cfg.use_float16;
    db.norms = f->norms;
    db.nb = f->g.base.ntotal;
    db.d = f->g.base.d;
    db.metric = f->g.base.metric;
    return db;
}

/* ---- the tiled search ------------------------------------------------------- */

vdx_status vdx_gpu_db_search(vdx_gpu_dev *g, const vdx_gpu_db *db, int64_t nq,
                             const float *xq, int64_t k, const uint8_t *mask,
                             float *keys, int64_t *ids) {
    if (nq <= 0) return VDX_OK;
    vdx_status st = vdx_gpu_check_k(g, k, "search");
    if (st) return st;
    const int64_t nb = db->nb, d = db->d;
    vdx_gk_select sel;
    memset(&sel, 0, sizeof sel);
    sel.k = (int)k;
    if (nb == 0) { /* every slot empty */
        sel.v = keys;
        sel.nrows = nq;
        sel.out_keys = keys;
        sel.out_ids = ids;
        sel.out_ld = k;
        return vdx_gpu_launch(g, vdx_gk_select_run(g->stream, &sel), "select");
    }
    int64_t DT = VDX_MAX((int64_t)FLAT_DB_TILE, 4 * k);
    if (DT > nb) DT = nb;
    const int64_t ntiles = (nb + DT - 1) / DT;
    const size_t perq = (size_t)DT * 4 +
                        (ntiles > 1 ? (size_t)(ntiles * k) * 12 : 0) +
                        (db->fp16 ? (size_t)d * 2 : 0);
    int64_t QT = (int64_t)(vdx_gpu_tmp_budget(g) / perq);
    if (QT > FLAT_Q_TILE) QT = FLAT_Q_TILE;
    if (QT > nq) QT = nq;
    if (QT < 1) QT = 1;
    vdx_gpu_tmp_mark mark = vdx_gpu_tmp_mark_get(g);
    float *ip = NULL, *pk = NULL;
    int64_t *pi = NULL;
    uint16_t *xq16 = NULL;
    if ((st = vdx_gpu_tmp(g, (size_t)(QT * DT) * 4, "inner products",
                          (void **)&ip)))
        goto done;
    if (ntiles > 1 &&
        ((st = vdx_gpu_tmp(g, (size_t)(QT * ntiles * k) * 4, "tile results",
                           (void **)&pk)) ||
         (st = vdx_gpu_tmp(g, (size_t)(QT * ntiles * k) * 8, "tile results",
                           (void **)&pi))))
        goto done;
    if (db->fp16 && (st = vdx_gpu_tmp(g, (size_t)(QT * d) * 2, "fp16 queries",
                                      (void **)&xq16)))
        goto done;
    const float one = 1.0f, zero = 0.0f;
    for (int64_t q0 = 0; q0 < nq; q0 += QT) {
        const int64_t qn = VDX_MIN(QT, nq - q0);
        const float *xc = xq + q0 * d;
        if (db->fp16 &&
            (st = vdx_gpu_launch(g, vdx_gk_f32_to_f16(g->stream, xc, qn * d, xq16),
                                 "fp16 conversion")))
            goto done;
        for (int64_t t = 0; t < ntiles; t++) {
            const int64_t j0 = t * DT, dn = VDX_MIN(DT, nb - j0);
            /* ip (row-major qn x dn) = xq . xb[j0:j0+dn]^T, in cuBLAS's
             * column-major terms the dn x qn matrix xb_tile^T xq */
            cublasStatus_t bs;
            if (db->fp16)
                bs = g->cb->gemm_ex(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)dn,
                                    (int)qn, (int)d, &one,
                                    (const uint16_t *)db->x + j0 * d,
                                    CUDA_R_16F, (int)d, xq16, CUDA_R_16F,
                                    (int)d, &zero, ip, CUDA_R_32F, (int)dn,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            else
                bs = g->cb->sgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)dn,
                                  (int)qn, (int)d, &one,
                                  (const float *)db->x + j0 * d, (int)d, xc,
                                  (int)d, &zero, ip, (int)dn);
            if ((st = vdx_gpu_blas(g, bs, "sgemm"))) goto done;
            sel.v = ip;
            sel.ld = dn;
            sel.n = dn;
            sel.row_start = NULL;
            sel.nrows = qn;
            sel.mode = db->metric == VDX_METRIC_L2 ? VDX_GK_L2 : VDX_GK_IP;
            sel.norms = db->norms;
            sel.mask = mask;
            sel.pos_base = j0;
            sel.in_ids = NULL;
            if (ntiles == 1) {
                sel.out_keys = keys + q0 * k;
                sel.out_ids = ids + q0 * k;
                sel.out_ld = k;
            } else {
                sel.out_keys = pk + t * k;
                sel.out_ids = pi + t * k;
                sel.out_ld = ntiles * k;
            }
            if ((st = vdx_gpu_launch(g, vdx_gk_select_run(g->stream, &sel),
                                     "select")))
                goto done;
        }
        if (ntiles > 1) {
            vdx_gk_select m;
            memset(&m, 0, sizeof m);
            m.v = pk;
            m.ld = ntiles * k;
            m.n = ntiles * k;
            m.nrows = qn;
            m.mode = VDX_GK_KEYS;
            m.k = (int)k;
            m.in_ids = pi;
            m.out_keys = keys + q0 * k;
            m.out_ids = ids + q0 * k;
            m.out_ld = k;
            if ((st = vdx_gpu_launch(g, vdx_gk_select_run(g->stream, &m),
                                     "merge select")))
                goto done;
        }
    }
done:
    vdx_gpu_tmp_release(g, mark);
    return st;
}

void vdx_gpu_merge_rows(int64_t k, const float *ak, const int64_t *ai,
                        const float *bk, const int64_t *bi, int64_t b_shift,
                        float *ok, int64_t *oi) {
    int64_t a = 0, b = 0;
    for (int64_t o = 0; o < k; o++) {
        int a_ok = a < k && ai[a] != -1, b_ok = b < k && bi[b] != -1;
        int take_a;
        if (!a_ok && !b_ok) {
            ok[o] = INFINITY;
            oi[o] = -1;
            continue;
        }
        if (!b_ok)
            take_a = 1;
        else if (!a_ok)
            take_a = 0;
        else
            take_a = ak[a] < bk[b] ||
                     (ak[a] == bk[b] && ai[a] <= bi[b] + b_shift);
        if (take_a) {
            ok[o] = ak[a];
            oi[o] = ai[a++];
        } else {
            ok[o] = bk[b];
            oi[o] = bi[b++] + b_shift;
        }
    }
}

vdx_status vdx_gpu_position_mask(vdx_gpu_dev *g, const vdx_selector *sel,
                                 int64_t n, uint8_t **mask) {
    *mask = NULL;
    if (!sel) return VDX_OK;
    size_t nbytes = (size_t)(n + 7) / 8 + 1;
    uint8_t *h = vdx_calloc(nbytes, 1);
    if (!h) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++)
        if (vdx_sel_member(sel, i)) h[i >> 3] |= (uint8_t)(1u << (i & 7));
    vdx_status st = vdx_gpu_tmp(g, nbytes, "selector mask", (void **)mask);
    if (!st) st = vdx_gpu_h2d(g, *mask, h, nbytes);
    /* the copy from pageable memory is staged before it returns */
    vdx_free(h);
    return st;
}

/* ---- storage -------------------------------------------------------------------- */

static vdx_status flat_reserve(vdx_gpu_flat *f, vdx_gpu_dev *g, int64_t n) {
    if (n <= f->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, f->cap + f->cap / 2);
    const size_t rowb = (size_t)f->g.base.d * esize(f);
    void *nx = NULL, *nn = NULL;
    vdx_status st = vdx_gpu_alloc(g, (size_t)nc * rowb, "GpuIndexFlat vectors",
                                  &nx);
    if (!st)
        st = vdx_gpu_alloc(g, (size_t)nc * 4, "GpuIndexFlat norms", &nn);
    if (!st && f->g.base.ntotal) {
        st = vdx_gpu_d2d(g, nx, f->xb, (size_t)f->g.base.ntotal * rowb);
        if (!st)
            st = vdx_gpu_d2d(g, nn, f->norms, (size_t)f->g.base.ntotal * 4);
        if (!st) st = vdx_gpu_sync(g, "GpuIndexFlat growth");
    }
    if (st) {
        vdx_gpu_free(nx);
        vdx_gpu_free(nn);
        return st;
    }
    vdx_gpu_free(f->xb);
    vdx_gpu_free(f->norms);
    f->xb = nx;
    f->norms = nn;
    f->cap = nc;
    f->bytes = (int64_t)((size_t)nc * (rowb + 4));
    return VDX_OK;
}

vdx_status vdx_gpu_flat_append(vdx_gpu_flat *f, vdx_gpu_dev *g, int64_t n,
                               const float *x) {
    const int64_t d = f->g.base.d, n0 = f->g.base.ntotal;
    vdx_status st = flat_reserve(f, g, n0 + n);
    if (st) return st;
    int64_t chunk = (int64_t)(ADD_CHUNK_BYTES / ((size_t)d * 4));
    if (chunk < 1) chunk = 1;
    vdx_gpu_tmp_mark mark = vdx_gpu_tmp_mark_get(g);
    float *tmp = NULL;
    if (f->g.cfg.use_float16 &&
        (st = vdx_gpu_tmp(g, (size_t)(VDX_MIN(chunk, n) * d) * 4,
                          "vectors being added", (void **)&tmp)))
        goto done;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t m = VDX_MIN(chunk, n - i0), row = n0 + i0;
        if (f->g.cfg.use_float16) {
            uint16_t *dst = (uint16_t *)f->xb + row * d;
            if ((st = vdx_gpu_h2d(g, tmp, x + i0 * d, (size_t)(m * d) * 4)) ||
                (st = vdx_gpu_launch(g, vdx_gk_f32_to_f16(g->stream, tmp, m * d, dst),
                                     "fp16 conversion")) ||
                (st = vdx_gpu_launch(g, vdx_gk_norms_f16(g->stream, dst, m, (int)d,
                                                         f->norms + row),
                                     "norms")))
                goto done;
            /* tmp is reused by the next chunk: the stream orders it */
        } else {
            float *dst = (float *)f->xb + row * d;
            if ((st = vdx_gpu_h2d(g, dst, x + i0 * d, (size_t)(m * d) * 4)) ||
                (st = vdx_gpu_launch(g, vdx_gk_norms_f32(g->stream, dst, m, (int)d,
                                                         f->norms + row),
                                     "norms")))
                goto done;
        }
    }
    st = vdx_gpu_sync(g, "add");
    if (!st) f->g.base.ntotal = n0 + n;
done:
    vdx_gpu_tmp_release(g, mark);
    return st;
}

vdx_status vdx_gpu_flat_download(const vdx_gpu_flat *f, vdx_gpu_dev *g,
                                 int64_t i0, int64_t ni, float *out) {
    const int64_t d = f->g.base.d;
    if (!f->g.cfg.use_float16)
        return vdx_gpu_d2h(g, out, (const float *)f->xb + i0 * d,
                           (size_t)(ni * d) * 4);
    int64_t chunk = (int64_t)(ADD_CHUNK_BYTES / ((size_t)d * 2));
    if (chunk < 1) chunk = 1;
    uint16_t *h = vdx_malloc_array((size_t)(VDX_MIN(chunk, ni) * d), 2);
    if (!h) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    for (int64_t c = 0; c < ni && !st; c += chunk) {
        int64_t m = VDX_MIN(chunk, ni - c);
        st = vdx_gpu_d2h(g, h, (const uint16_t *)f->xb + (i0 + c) * d,
                         (size_t)(m * d) * 2);
        for (int64_t j = 0; !st && j < m * d; j++)
            out[(c * d) + j] = vdx_fp16_to_float(h[j]);
    }
    vdx_free(h);
    return st;
}

/* ---- ops --------------------------------------------------------------------------- */

static vdx_status gflat_add(vdx_index *ix, int64_t n, const float *x,
                            const vdx_idx_t *ids) {
    vdx_gpu_flat *f = (vdx_gpu_flat *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s: wrap it in "
                         "IndexIDMap",
                         ix->ops->type_name);
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(f->g.res, f->g.device, &g);
    if (st) return st;
    st = vdx_gpu_flat_append(f, g, n, x);
    vdx_gpu_leave(g);
    return st;
}

static vdx_status gflat_search(const vdx_index *ix, int64_t n, const float *x,
                               int64_t k, const vdx_search_params *p, float *D,
                               vdx_idx_t *I) {
    const vdx_gpu_flat *f = (const vdx_gpu_flat *)ix;
    const int64_t d = ix->d;
    const int is_ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(f->g.res, f->g.device, &g);
    if (st) return st;
    if ((st = vdx_gpu_check_k(g, k, ix->ops->type_name))) goto out;
    uint8_t *mask = NULL;
    if ((st = vdx_gpu_position_mask(g, p ? p->sel : NULL, ix->ntotal, &mask)))
        goto out;
    vdx_gpu_db db = vdx_gpu_flat_db(f);
    int64_t qc = (int64_t)(vdx_gpu_tmp_budget(g) / 4 /
                           ((size_t)d * 4 + (size_t)k * 12));
    qc = VDX_MAX((int64_t)1, VDX_MIN(qc, (int64_t)QUERY_CHUNK));
    const vdx_kernels *K = vdx_kernels_get();
    for (int64_t q0 = 0; q0 < n && !st; q0 += qc) {
        const int64_t qn = VDX_MIN(qc, n - q0);
        vdx_gpu_tmp_mark mark = vdx_gpu_tmp_mark_get(g);
        float *dx = NULL, *dk = NULL;
        int64_t *di = NULL;
        if (!(st = vdx_gpu_tmp(g, (size_t)(qn * d) * 4, "queries", (void **)&dx)) &&
            !(st = vdx_gpu_tmp(g, (size_t)(qn * k) * 4, "results", (void **)&dk)) &&
            !(st = vdx_gpu_tmp(g, (size_t)(qn * k) * 8, "results", (void **)&di)) &&
            !(st = vdx_gpu_h2d(g, dx, x + q0 * d, (size_t)(qn * d) * 4)) &&
            !(st = vdx_gpu_db_search(g, &db, qn, dx, k, mask, dk, di)) &&
            !(st = vdx_gpu_d2h(g, D + q0 * k, dk, (size_t)(qn * k) * 4)))
            st = vdx_gpu_d2h(g, I + q0 * k, di, (size_t)(qn * k) * 8);
        vdx_gpu_tmp_release(g, mark);
        if (st) break;
        for (int64_t q = q0; q < q0 + qn; q++) {
            float add = is_ip ? 0 : K->norm_sqr(x + q * d, (size_t)d);
            vdx_topk_finish_sorted(k, D + q * k, I + q * k, is_ip, add);
        }
    }
out:
    vdx_gpu_leave(g);
    return st;
}

static vdx_status gflat_reset(vdx_index *ix) {
    vdx_gpu_flat *f = (vdx_gpu_flat *)ix;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(f->g.res, f->g.device, &g);
    if (st) return st;
    vdx_gpu_free(f->xb);
    vdx_gpu_free(f->norms);
    f->xb = NULL;
    f->norms = NULL;
    f->cap = 0;
    f->bytes = 0;
    ix->ntotal = 0;
    vdx_gpu_leave(g);
    return VDX_OK;
}

static vdx_status gflat_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                      int64_t ni, float *out) {
    const vdx_gpu_flat *f = (const vdx_gpu_flat *)ix;
    vdx_status st = vdx_check_range(ix, i0, ni);
    if (st) return st;
    vdx_gpu_dev *g;
    if ((st = vdx_gpu_enter(f->g.res, f->g.device, &g))) return st;
    st = vdx_gpu_flat_download(f, g, i0, ni, out);
    vdx_gpu_leave(g);
    return st;
}

static vdx_status gflat_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                    float *out) {
    vdx_status st = vdx_check_key(ix, key);
    return st ? st : gflat_reconstruct_n(ix, key, 1, out);
}

/* FAISS's GPU flat index has no remove_ids; this one downloads the vectors,
 * compacts them on the host (later ids shift down, as IndexFlat) and loads
 * the survivors back. */
static vdx_status gflat_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                   int64_t *nremoved) {
    vdx_gpu_flat *f = (vdx_gpu_flat *)ix;
    const int64_t n = ix->ntotal, d = ix->d;
    float *h = vdx_malloc_array((size_t)(n ? n : 1), (size_t)d * 4);
    if (!h) return VDX_ERR_OUT_OF_MEMORY;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(f->g.res, f->g.device, &g);
    if (st) {
        vdx_free(h);
        return st;
    }
    if (!(st = vdx_gpu_flat_download(f, g, 0, n, h))) {
        int64_t j = 0;
        for (int64_t i = 0; i < n; i++) {
            if (vdx_sel_member(sel, i)) continue;
            if (i != j) memmove(h + j * d, h + i * d, (size_t)d * 4);
            j++;
        }
        *nremoved = n - j;
        if (j != n) {
            ix->ntotal = 0; /* rewrite in place: the capacity is kept */
            st = vdx_gpu_flat_append(f, g, j, h);
        }
    }
    vdx_gpu_leave(g);
    vdx_free(h);
    return st;
}

static void gflat_destroy(vdx_index *ix) {
    vdx_gpu_flat *f = (vdx_gpu_flat *)ix;
    vdx_gpu_dev *g = NULL;
    if (vdx_gpu_enter(f->g.res, f->g.device, &g) == VDX_OK) {
        vdx_gpu_free(f->xb);
        vdx_gpu_free(f->norms);
        vdx_gpu_leave(g);
    }
    vdx_gpu_index_release(&f->g);
    vdx_free(f);
}

#define GFLAT_OPS(name)                                                     \
    {name,          NULL,          gflat_add,          gflat_search,        \
     NULL,          gflat_reset,   gflat_reconstruct,  gflat_reconstruct_n, \
     gflat_remove_ids, gflat_destroy}

static const vdx_index_ops gflat_ops_l2 = GFLAT_OPS("GpuIndexFlatL2");
static const vdx_index_ops gflat_ops_ip = GFLAT_OPS("GpuIndexFlatIP");

vdx_status vdx_gpu_index_flat_new(vdx_gpu_resources *res, int64_t d,
                                  vdx_metric metric, const vdx_gpu_config *cfg,
                                  vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_gpu_flat *f = vdx_calloc(1, sizeof *f);
    if (!f) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_gpu_index_init(
        &f->g, metric == VDX_METRIC_INNER_PRODUCT ? &gflat_ops_ip : &gflat_ops_l2,
        VDX_GPU_KIND_FLAT, res, d, metric, cfg);
    if (st) {
        vdx_free(f);
        return st;
    }
    *out = &f->g.base;
    return VDX_OK;
}

/* ---- knn_gpu: both sides on the host, paged ------------------------------------ */

vdx_status vdx_gpu_knn(vdx_gpu_resources *res, int device, vdx_metric metric,
                       int64_t d, int64_t nq, const float *xq, int64_t nb,
                       const float *xb, int64_t k, float *D, vdx_idx_t *I) {
    vdx_clear_error();
    if (d <= 0 || d > VDX_MAX_DIM || nq < 0 || nb < 0 || k <= 0 ||
        (nq > 0 && (!xq || !D || !I)) || (nb > 0 && !xb))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "knn_gpu: bad arguments (d=%lld, nq=%lld, nb=%lld, "
                         "k=%lld, or a NULL array)",
                         (long long)d, (long long)nq, (long long)nb,
                         (long long)k);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "knn_gpu: metric %d is not supported", (int)metric);
    vdx_status st;
    if ((st = vdx_check_vectors(xq, nq, d, "query vectors")) ||
        (st = vdx_check_vectors(xb, nb, d, "database vectors")))
        return st;
    if (nq == 0) return VDX_OK;
    vdx_gpu_dev *g;
    if ((st = vdx_gpu_enter(res, device, &g))) return st;
    if ((st = vdx_gpu_check_k(g, k, "knn_gpu"))) goto out;
    const int is_ip = metric == VDX_METRIC_INNER_PRODUCT;
    /* a quarter of the scratch for a database chunk, a quarter for the
     * queries and their results, the rest for the tiles */
    size_t budget = vdx_gpu_tmp_budget(g) / 4;
    int64_t bc = (int64_t)(budget / ((size_t)d * 4 + 4));
    bc = VDX_MAX((int64_t)1, VDX_MIN(bc, nb));
    int64_t qc = (int64_t)(budget / ((size_t)d * 4 + (size_t)k * 12));
    qc = VDX_MAX((int64_t)1, VDX_MIN(qc, VDX_MIN(nq, (int64_t)QUERY_CHUNK)));
    float *hk = vdx_malloc_array((size_t)(qc * k), 4);
    int64_t *hi = vdx_malloc_array((size_t)(qc * k), 8);
    float *mk = vdx_malloc_array((size_t)k, 4);
    int64_t *mi = vdx_malloc_array((size_t)k, 8);
    if (!hk || !hi || !mk || !mi) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto free_host;
    }
    const vdx_kernels *K = vdx_kernels_get();
    for (int64_t q0 = 0; q0 < nq && !st; q0 += qc) {
        const int64_t qn = VDX_MIN(qc, nq - q0);
        float *Dq = D + q0 * k;
        int64_t *Iq = I + q0 * k;
        for (int64_t i = 0; i < qn * k; i++) {
            Dq[i] = INFINITY;
            Iq[i] = -1;
        }
        vdx_gpu_tmp_mark mark = vdx_gpu_tmp_mark_get(g);
        float *dx = NULL, *dk = NULL, *dbx = NULL, *dbn = NULL;
        int64_t *di = NULL;
        if ((st = vdx_gpu_tmp(g, (size_t)(qn * d) * 4, "queries", (void **)&dx)) ||
            (st = vdx_gpu_tmp(g, (size_t)(qn * k) * 4, "results", (void **)&dk)) ||
            (st = vdx_gpu_tmp(g, (size_t)(qn * k) * 8, "results", (void **)&di)) ||
            (st = vdx_gpu_tmp(g, (size_t)(bc * d) * 4, "database chunk",
                              (void **)&dbx)) ||
            (st = vdx_gpu_tmp(g, (size_t)bc * 4, "database norms", (void **)&dbn)) ||
            (st = vdx_gpu_h2d(g, dx, xq + q0 * d, (size_t)(qn * d) * 4))) {
            vdx_gpu_tmp_release(g, mark);
            break;
        }
        for (int64_t b0 = 0; b0 < nb && !st; b0 += bc) {
            vdx_gpu_db db = {dbx, 0, dbn, VDX_MIN(bc, nb - b0), d, metric};
            if ((st = vdx_gpu_h2d(g, dbx, xb + b0 * d, (size_t)(db.nb * d) * 4)) ||
                (st = vdx_gpu_launch(g, vdx_gk_norms_f32(g->stream, dbx, db.nb,
                                                         (int)d, dbn),
                                     "norms")) ||
                (st = vdx_gpu_db_search(g, &db, qn, dx, k, NULL, dk, di)) ||
                (st = vdx_gpu_d2h(g, hk, dk, (size_t)(qn * k) * 4)) ||
                (st = vdx_gpu_d2h(g, hi, di, (size_t)(qn * k) * 8)))
                break;
            for (int64_t q = 0; q < qn; q++) {
                vdx_gpu_merge_rows(k, Dq + q * k, Iq + q * k, hk + q * k,
                                   hi + q * k, b0, mk, mi);
                memcpy(Dq + q * k, mk, (size_t)k * 4);
                memcpy(Iq + q * k, mi, (size_t)k * 8);
            }
        }
        vdx_gpu_tmp_release(g, mark);
        for (int64_t q = 0; q < qn && !st; q++) {
            float add = is_ip ? 0 : K->norm_sqr(xq + (q0 + q) * d, (size_t)d);
            vdx_topk_finish_sorted(k, Dq + q * k, Iq + q * k, is_ip, add);
        }
    }
free_host:
    vdx_free(hk);
    vdx_free(hi);
    vdx_free(mk);
    vdx_free(mi);
out:
    vdx_gpu_leave(g);
    return st;
}
