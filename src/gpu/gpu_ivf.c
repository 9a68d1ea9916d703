/*
 * gpu_ivf.c — the GPU inverted-file kinds (FAISS: GpuIndexIVFFlat,
 * GpuIndexIVFPQ, GpuIndexIVFScalarQuantizer).
 *
 * Each GPU IVF index keeps a "template": a CPU index of the same kind whose
 * inverted lists stay empty.  It holds what is small and learnt (the coarse
 * centroids in a flat quantizer, the PQ codebooks, the SQ ranges, nprobe,
 * the k-means settings) and does what the CPU already does exactly: training
 * (k-means runs on the CPU, then the results move to the device), encoding
 * of added vectors and decoding for reconstruct, and the file format (a CPU
 * copy is the template's copy with its lists filled from the device).
 *
 * On the device: the centroids (a GpuIndexFlat for the coarse search, and
 * as floats for residuals), the codebooks / ranges / precomputed tables,
 * and per list its codes and (by indicesOptions) ids, each list its own
 * allocation grown by doubling.  The ids are mirrored on the host, where
 * selectors are evaluated, reconstruct finds its key and INDICES_CPU
 * translates results.
 *
 * Search of a chunk of queries: coarse search (tiled sgemm + selection of
 * nprobe) -> the probed lists come back to the host, which lays out one
 * candidate row per query (the lists' sizes, max_codes applied in probe
 * order) and cuts the chunk into batches whose candidates fit in scratch
 * memory -> per batch, the scan kernel writes every candidate's key, the
 * selection kernel keeps each row's k best positions, and the map kernel
 * turns positions into ids.  Distances are finished on the host by the CPU
 * index's finishing code.
 */
#include <math.h>
#include <string.h>

#include "common/selector.h"
#include "common/topk.h"
#include "gpu_internal.h"
#include "index/index_pq.h"
#include "index/index_sq.h"

#define ADD_CHUNK 65536
#define QUERY_CHUNK 4096

typedef struct vdx_gpu_ivf {
    vdx_gpu_index g;
    int ivf_kind;       /* VDX_GK_IVF_* */
    vdx_index *tmpl;    /* CPU IVF of the same kind, lists empty (owned) */
    int64_t nlist;
    int code_size;
    int by_residual;
    vdx_gpu_flat *coarse; /* the centroids (owned) */
    float *d_centroids;
    /* lists: host sizes, capacities, device storage, host ids */
    int64_t *sizes, *caps;
    uint8_t **d_codes;
    void **d_ids;
    vdx_idx_t **h_ids;
    int64_t list_bytes;
    /* device copies of the per-list pointers and sizes */
    uint8_t **t_codes;
    void **t_ids;
    int64_t *t_sizes;
    int dirty;
    /* PQ */
    int M, nbits;
    float *d_pq, *d_pre;
    /* SQ */
    int sq_layout;
    float *d_sq_a, *d_sq_b;
} vdx_gpu_ivf;

static const vdx_index_ops givf_flat_ops, givf_pq_ops, givf_sq_ops;

int vdx_gpu_is_ivf(const vdx_index *ix) {
    return ix && (ix->ops == &givf_flat_ops || ix->ops == &givf_pq_ops ||
                  ix->ops == &givf_sq_ops);
}

static vdx_gpu_ivf *as_givf(const vdx_index *ix) {
    return vdx_gpu_is_ivf(ix) ? (vdx_gpu_ivf *)(void *)ix : NULL;
}

static vdx_ivf *tmpl_ivf(const vdx_gpu_ivf *v) { return (vdx_ivf *)v->tmpl; }

static int id_layout(const vdx_gpu_ivf *v) {
    switch (v->g.cfg.indices_options) {
    case VDX_GPU_INDICES_64_BIT: return VDX_GK_IDS_I64;
    case VDX_GPU_INDICES_32_BIT: return VDX_GK_IDS_I32;
    default: return VDX_GK_IDS_LISTNO;
    }
}

static size_t id_bytes(const vdx_gpu_ivf *v) {
    int l = id_layout(v);
    return l == VDX_GK_IDS_I64 ? 8 : l == VDX_GK_IDS_I32 ? 4 : 0;
}

int64_t vdx_gpu_index_memory(const vdx_index *ix) {
    if (vdx_gpu_is_flat(ix)) return ((const vdx_gpu_flat *)ix)->bytes;
    const vdx_gpu_ivf *v = as_givf(ix);
    if (!v) return 0;
    int64_t b = v->list_bytes + v->coarse->bytes + v->nlist * ix->d * 4 +
                v->nlist * 24;
    if (v->d_pre) b += v->nlist * v->M * ((int64_t)1 << v->nbits) * 4;
    return b;
}

/* ---- device parameters ------------------------------------------------------ */

static vdx_status upload(vdx_gpu_dev *g, float **dst, const float *src,
                         size_t n, const char *what) {
    vdx_gpu_free(*dst);
    *dst = NULL;
    vdx_status st = vdx_gpu_alloc(g, n * 4, what, (void **)dst);
    return st ? st : vdx_gpu_h2d(g, *dst, src, n * 4);
}

/* Moves what the template learnt to the device (after training / copy). */
static vdx_status sync_params(vdx_gpu_ivf *v, vdx_gpu_dev *g) {
    const vdx_ivf *t = tmpl_ivf(v);
    const int64_t d = v->g.base.d;
    const float *cent = vdx_index_flat_data(t->quantizer);
    if (!cent || t->quantizer->ntotal != v->nlist)
        return vdx_raise(VDX_ERR_INTERNAL,
                         "GPU IVF: the template holds %lld centroids, not "
                         "nlist=%lld",
                         (long long)t->quantizer->ntotal, (long long)v->nlist);
    v->coarse->g.base.ntotal = 0;
    vdx_status st = vdx_gpu_flat_append(v->coarse, g, v->nlist, cent);
    if (!st)
        st = upload(g, &v->d_centroids, cent, (size_t)(v->nlist * d),
                    "IVF centroids");
    if (st) return st;
    if (v->ivf_kind == VDX_GK_IVF_PQ) {
        const vdx_ivfpq *p = (const vdx_ivfpq *)(const void *)t;
        v->by_residual = p->by_residual;
        if ((st = upload(g, &v->d_pq, p->pq.centroids,
                         (size_t)(p->pq.M * p->pq.ksub * p->pq.dsub),
                         "PQ centroids")))
            return st;
        vdx_gpu_free(v->d_pre);
        v->d_pre = NULL;
        const float *pre =
            v->g.cfg.use_precomputed ? vdx_ivfpq_precomputed_table(p) : NULL;
        if (v->g.cfg.use_precomputed && pre &&
            (st = upload(g, &v->d_pre, pre,
                         (size_t)(v->nlist * p->pq.M * p->pq.ksub),
                         "IVFPQ precomputed tables")))
            return st;
    } else if (v->ivf_kind == VDX_GK_IVF_SQ) {
        const vdx_ivfsq *s = (const vdx_ivfsq *)(const void *)t;
        v->by_residual = s->by_residual;
        if ((st = upload(g, &v->d_sq_a, s->sq.a, (size_t)d, "SQ ranges")) ||
            (st = upload(g, &v->d_sq_b, s->sq.b, (size_t)d, "SQ ranges")))
            return st;
    }
    return vdx_gpu_sync(g, "IVF parameters");
}

static vdx_status ensure_tables(vdx_gpu_ivf *v, vdx_gpu_dev *g) {
    if (!v->dirty) return VDX_OK;
    const size_t nb = (size_t)v->nlist * 8;
    vdx_status st = VDX_OK;
    if (!v->t_codes &&
        ((st = vdx_gpu_alloc(g, nb, "IVF list table", (void **)&v->t_codes)) ||
         (st = vdx_gpu_alloc(g, nb, "IVF list table", (void **)&v->t_ids)) ||
         (st = vdx_gpu_alloc(g, nb, "IVF list table", (void **)&v->t_sizes))))
        return st;
    if ((st = vdx_gpu_h2d(g, v->t_codes, v->d_codes, nb)) ||
        (st = vdx_gpu_h2d(g, v->t_ids, v->d_ids, nb)) ||
        (st = vdx_gpu_h2d(g, v->t_sizes, v->sizes, nb)) ||
        (st = vdx_gpu_sync(g, "IVF list table")))
        return st;
    v->dirty = 0;
    return VDX_OK;
}

/* ---- lists -------------------------------------------------------------------- */

static vdx_status list_reserve(vdx_gpu_ivf *v, vdx_gpu_dev *g, int64_t l,
                               int64_t need) {
    if (need <= v->caps[l]) return VDX_OK;
    int64_t nc = VDX_MAX(need, VDX_MAX(2 * v->caps[l], (int64_t)16));
    const size_t cs = (size_t)v->code_size, ib = id_bytes(v);
    void *nco = NULL, *nid = NULL;
    vdx_status st = vdx_gpu_alloc(g, (size_t)nc * cs, "IVF list codes", &nco);
    if (!st && ib) st = vdx_gpu_alloc(g, (size_t)nc * ib, "IVF list ids", &nid);
    vdx_idx_t *nh = NULL;
    if (!st) {
        nh = vdx_realloc_array(v->h_ids[l], (size_t)nc, sizeof(vdx_idx_t));
        if (!nh) st = VDX_ERR_OUT_OF_MEMORY;
        else v->h_ids[l] = nh;
    }
    if (!st && v->sizes[l]) {
        st = vdx_gpu_d2d(g, nco, v->d_codes[l], (size_t)v->sizes[l] * cs);
        if (!st && ib)
            st = vdx_gpu_d2d(g, nid, v->d_ids[l], (size_t)v->sizes[l] * ib);
        if (!st) st = vdx_gpu_sync(g, "IVF list growth");
    }
    if (st) {
        vdx_gpu_free(nco);
        vdx_gpu_free(nid);
        return st;
    }
    vdx_gpu_free(v->d_codes[l]);
    vdx_gpu_free(v->d_ids[l]);
    v->d_codes[l] = nco;
    v->d_ids[l] = nid;
    v->list_bytes += (nc - v->caps[l]) * (int64_t)(cs + ib);
    v->caps[l] = nc;
    v->dirty = 1;
    return VDX_OK;
}

/* Appends n entries (host codes and ids) to list l. */
static vdx_status list_append(vdx_gpu_ivf *v, vdx_gpu_dev *g, int64_t l,
                              int64_t n, const uint8_t *codes,
                              const vdx_idx_t *ids) {
    if (n == 0) return VDX_OK;
    const int lay = id_layout(v);
    if (lay == VDX_GK_IDS_I32)
        for (int64_t i = 0; i < n; i++)
            if (ids[i] < INT32_MIN || ids[i] > INT32_MAX)
                return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                                 "INDICES_32_BIT cannot store id %lld",
                                 (long long)ids[i]);
    vdx_status st = list_reserve(v, g, l, v->sizes[l] + n);
    if (st) return st;
    const int64_t s0 = v->sizes[l];
    const size_t cs = (size_t)v->code_size;
    if ((st = vdx_gpu_h2d(g, v->d_codes[l] + (size_t)s0 * cs, codes,
                          (size_t)n * cs)))
        return st;
    if (lay == VDX_GK_IDS_I64) {
        st = vdx_gpu_h2d(g, (int64_t *)v->d_ids[l] + s0, ids, (size_t)n * 8);
    } else if (lay == VDX_GK_IDS_I32) {
        int32_t *t = vdx_malloc_array((size_t)n, 4);
        if (!t) return VDX_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < n; i++) t[i] = (int32_t)ids[i];
        st = vdx_gpu_h2d(g, (int32_t *)v->d_ids[l] + s0, t, (size_t)n * 4);
        if (!st) st = vdx_gpu_sync(g, "IVF ids");
        vdx_free(t);
    }
    if (st) return st;
    memmove(v->h_ids[l] + s0, ids, (size_t)n * sizeof(vdx_idx_t));
    v->sizes[l] = s0 + n;
    v->dirty = 1;
    return VDX_OK;
}

static void free_lists(vdx_gpu_ivf *v) {
    for (int64_t l = 0; l < v->nlist; l++) {
        vdx_gpu_free(v->d_codes[l]);
        vdx_gpu_free(v->d_ids[l]);
        vdx_free(v->h_ids[l]);
        v->d_codes[l] = NULL;
        v->d_ids[l] = NULL;
        v->h_ids[l] = NULL;
        v->sizes[l] = v->caps[l] = 0;
    }
    v->list_bytes = 0;
    v->dirty = 1;
}

/* ---- train, add ------------------------------------------------------------------ */

static vdx_status givf_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)ix;
    vdx_status st;
    /* the codes live on the device, so the CPU template is empty and cannot
     * see that retraining its PQ / SQ would orphan them: only an IVFFlat
     * whose centroids are in place (training changes nothing) may go on */
    if (ix->ntotal > 0) {
        const vdx_ivf *t = (const vdx_ivf *)v->tmpl;
        int keeps = strcmp(v->tmpl->ops->type_name, "IndexIVFFlat") == 0 &&
                    t->quantizer->is_trained && t->quantizer->ntotal == t->nlist;
        if (!keeps) return vdx_refuse_populated_train(ix);
    }
    st = vdx_index_train(v->tmpl, n, x); /* on the CPU */
    if (st) return st;
    vdx_gpu_dev *g;
    if ((st = vdx_gpu_enter(v->g.res, v->g.device, &g))) return st;
    st = sync_params(v, g);
    vdx_gpu_leave(g);
    if (!st) ix->is_trained = 1;
    return st;
}

/* The nearest list of n device vectors, on the host. */
static vdx_status assign(vdx_gpu_ivf *v, vdx_gpu_dev *g, int64_t n,
                         const float *dx, int64_t *lists) {
    vdx_gpu_tmp_mark mark = vdx_gpu_tmp_mark_get(g);
    float *dk = NULL;
    int64_t *di = NULL;
    vdx_gpu_db db = vdx_gpu_flat_db(v->coarse);
    vdx_status st;
    if (!(st = vdx_gpu_tmp(g, (size_t)n * 4, "assignment", (void **)&dk)) &&
        !(st = vdx_gpu_tmp(g, (size_t)n * 8, "assignment", (void **)&di)) &&
        !(st = vdx_gpu_db_search(g, &db, n, dx, 1, NULL, dk, di)))
        st = vdx_gpu_d2h(g, lists, di, (size_t)n * 8);
    vdx_gpu_tmp_release(g, mark);
    for (int64_t i = 0; !st && i < n; i++)
        if (lists[i] < 0 || lists[i] >= v->nlist)
            st = vdx_raise(VDX_ERR_INTERNAL,
                           "GPU IVF: vector %lld was assigned to list %lld",
                           (long long)i, (long long)lists[i]);
    return st;
}

static vdx_status givf_add(vdx_index *ix, int64_t n, const float *x,
                           const vdx_idx_t *ids) {
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)ix;
    const int64_t d = ix->d, cs = v->code_size;
    const int64_t chunk = VDX_MIN(n, (int64_t)ADD_CHUNK);
    int64_t *lists = vdx_malloc_array((size_t)chunk, 8);
    uint8_t *codes = vdx_malloc_array((size_t)chunk, (size_t)cs);
    uint8_t *sorted = vdx_malloc_array((size_t)chunk, (size_t)cs);
    vdx_idx_t *sids = vdx_malloc_array((size_t)chunk, 8);
    int64_t *start = vdx_malloc_array((size_t)v->nlist + 1, 8);
    int64_t *fill = vdx_malloc_array((size_t)v->nlist, 8);
    vdx_status st = VDX_OK;
    vdx_gpu_dev *g = NULL;
    if (!lists || !codes || !sorted || !sids || !start || !fill) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((st = vdx_gpu_enter(v->g.res, v->g.device, &g))) goto done;
    for (int64_t i0 = 0; i0 < n && !st; i0 += chunk) {
        const int64_t m = VDX_MIN(chunk, n - i0);
        const float *xc = x + i0 * d;
        vdx_gpu_tmp_mark mark = vdx_gpu_tmp_mark_get(g);
        float *dx = NULL;
        if (!(st = vdx_gpu_tmp(g, (size_t)(m * d) * 4, "added vectors",
                               (void **)&dx)) &&
            !(st = vdx_gpu_h2d(g, dx, xc, (size_t)(m * d) * 4)))
            st = assign(v, g, m, dx, lists);
        vdx_gpu_tmp_release(g, mark);
        if (st) break;
        if ((st = tmpl_ivf(v)->codec->encode(tmpl_ivf(v), m, xc, lists, codes)))
            break;
        /* group by list, in vector order within a list */
        memset(start, 0, ((size_t)v->nlist + 1) * 8);
        for (int64_t i = 0; i < m; i++) start[lists[i] + 1]++;
        for (int64_t l = 0; l < v->nlist; l++) start[l + 1] += start[l];
        memcpy(fill, start, (size_t)v->nlist * 8);
        for (int64_t i = 0; i < m; i++) {
            int64_t o = fill[lists[i]]++;
            memcpy(sorted + o * cs, codes + i * cs, (size_t)cs);
            sids[o] = ids ? ids[i0 + i] : ix->ntotal + i0 + i;
        }
        for (int64_t l = 0; l < v->nlist && !st; l++)
            st = list_append(v, g, l, start[l + 1] - start[l],
                             sorted + start[l] * cs, sids + start[l]);
        if (!st) st = vdx_gpu_sync(g, "add");
        if (!st) ix->ntotal += m;
    }
done:
    if (g) vdx_gpu_leave(g);
    vdx_free(lists);
    vdx_free(codes);
    vdx_free(sorted);
    vdx_free(sids);
    vdx_free(start);
    vdx_free(fill);
    return st;
}

/* ---- search ------------------------------------------------------------------------ */

/* Device bitmap over the list slots (slot_base[l] + offset) of the entries
 * sel admits, and the slot bases. */
static vdx_status slot_mask(vdx_gpu_ivf *v, vdx_gpu_dev *g,
                            const vdx_selector *sel, uint8_t **mask,
                            int64_t **base) {
    *mask = NULL;
    *base = NULL;
    if (!sel) return VDX_OK;
    int64_t *hb = vdx_malloc_array((size_t)v->nlist, 8);
    size_t nbytes = (size_t)(v->g.base.ntotal + 7) / 8 + 1;
    uint8_t *hm = vdx_calloc(nbytes, 1);
    vdx_status st = VDX_OK;
    if (!hb || !hm) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    int64_t s = 0;
    for (int64_t l = 0; l < v->nlist; l++) {
        hb[l] = s;
        for (int64_t o = 0; o < v->sizes[l]; o++, s++)
            if (vdx_sel_member(sel, v->h_ids[l][o]))
                hm[s >> 3] |= (uint8_t)(1u << (s & 7));
    }
    if (!(st = vdx_gpu_tmp(g, nbytes, "selector mask", (void **)mask)) &&
        !(st = vdx_gpu_tmp(g, (size_t)v->nlist * 8, "selector mask",
                           (void **)base)) &&
        !(st = vdx_gpu_h2d(g, *mask, hm, nbytes)) &&
        !(st = vdx_gpu_h2d(g, *base, hb, (size_t)v->nlist * 8)))
        st = vdx_gpu_sync(g, "selector mask");
done:
    vdx_free(hb);
    vdx_free(hm);
    return st;
}

/* INDICES_CPU: positions of a query's row -> ids, on the host. */
static void map_on_host(const vdx_gpu_ivf *v, int64_t np, const int64_t *probes,
                        const int64_t *off, int64_t k, int64_t *I) {
    for (int64_t i = 0; i < k; i++) {
        if (I[i] < 0) continue;
        int64_t abs = off[0] + I[i];
        int64_t lo = 0, hi = np - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi + 1) / 2;
            if (off[mid] <= abs) lo = mid;
            else hi = mid - 1;
        }
        int64_t l = probes[lo];
        I[i] = v->h_ids[l][abs - off[lo]];
    }
}

static vdx_status givf_search(const vdx_index *ix, int64_t n, const float *x,
                              int64_t k, const vdx_search_params *p, float *D,
                              vdx_idx_t *I) {
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)(void *)ix;
    const vdx_ivf *t = tmpl_ivf(v);
    const int64_t d = ix->d;
    const int is_ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    int64_t np = p && p->nprobe > 0 ? p->nprobe : t->nprobe;
    np = VDX_MAX((int64_t)1, VDX_MIN(np, v->nlist));
    const int64_t max_codes = p && p->max_codes > 0 ? p->max_codes : t->max_codes;
    const vdx_selector *sel = p ? p->sel : NULL;
    const int64_t qc = VDX_MIN(n, (int64_t)QUERY_CHUNK);
    int64_t *hp = vdx_malloc_array((size_t)(qc * np), 8);
    int64_t *ho = vdx_malloc_array((size_t)(qc * (np + 1)), 8);
    int64_t *hrb = vdx_malloc_array((size_t)qc + 1, 8);
    vdx_status st = VDX_OK;
    vdx_gpu_dev *g = NULL;
    if (!hp || !ho || !hrb) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if ((st = vdx_gpu_enter(v->g.res, v->g.device, &g))) goto done;
    if ((st = vdx_gpu_check_k(g, k, ix->ops->type_name)) ||
        (st = vdx_gpu_check_k(g, np, "nprobe")) || (st = ensure_tables(v, g)))
        goto done;
    uint8_t *mask;
    int64_t *slot_base;
    if ((st = slot_mask(v, g, sel, &mask, &slot_base))) goto done;
    vdx_gk_ivf_scan a;
    memset(&a, 0, sizeof a);
    a.kind = v->ivf_kind;
    a.is_ip = is_ip;
    a.d = (int)d;
    a.codes = (const uint8_t *const *)v->t_codes;
    a.sizes = v->t_sizes;
    a.code_size = v->code_size;
    a.mask = mask;
    a.slot_base = slot_base;
    a.by_residual = v->by_residual;
    a.centroids = v->d_centroids;
    a.sq_layout = v->sq_layout;
    a.sq_a = v->d_sq_a;
    a.sq_b = v->d_sq_b;
    a.M = v->M;
    a.nbits = v->nbits;
    a.pq_centroids = v->d_pq;
    a.precomputed = v->d_pre;
    a.lut_f16 = v->ivf_kind == VDX_GK_IVF_PQ && v->g.cfg.use_float16;
    if (vdx_gk_ivf_scan_smem(&a) + 64 > g->smem_optin) {
        st = vdx_raise(VDX_ERR_UNSUPPORTED,
                       "%s: the scan needs %zu bytes of shared memory per "
                       "block (d=%lld%s), device %d has %zu",
                       ix->ops->type_name, vdx_gk_ivf_scan_smem(&a) + 64,
                       (long long)d,
                       a.kind == VDX_GK_IVF_PQ ? " and the lookup table" : "",
                       g->device, g->smem_optin);
        goto done;
    }
    vdx_gpu_db cdb = vdx_gpu_flat_db(v->coarse);
    for (int64_t q0 = 0; q0 < n && !st; q0 += qc) {
        const int64_t qn = VDX_MIN(qc, n - q0);
        vdx_gpu_tmp_mark m0 = vdx_gpu_tmp_mark_get(g);
        float *dx = NULL, *dck = NULL, *dqn = NULL;
        int64_t *dci = NULL;
        if ((st = vdx_gpu_tmp(g, (size_t)(qn * d) * 4, "queries", (void **)&dx)) ||
            (st = vdx_gpu_tmp(g, (size_t)(qn * np) * 4, "coarse results",
                              (void **)&dck)) ||
            (st = vdx_gpu_tmp(g, (size_t)(qn * np) * 8, "coarse results",
                              (void **)&dci)) ||
            (st = vdx_gpu_tmp(g, (size_t)qn * 4, "query norms", (void **)&dqn)) ||
            (st = vdx_gpu_h2d(g, dx, x + q0 * d, (size_t)(qn * d) * 4)) ||
            (st = vdx_gpu_db_search(g, &cdb, qn, dx, np, NULL, dck, dci)) ||
            (!is_ip &&
             (st = vdx_gpu_launch(g, vdx_gk_norms_f32(g->stream, dx, qn, (int)d, dqn),
                                  "norms"))) ||
            (st = vdx_gpu_launch(g, vdx_gk_finish(g->stream, dck, dci, qn, (int)np,
                                                  is_ip ? NULL : dqn, is_ip),
                                 "finish")) ||
            (st = vdx_gpu_d2h(g, hp, dci, (size_t)(qn * np) * 8))) {
            vdx_gpu_tmp_release(g, m0);
            break;
        }
        /* max_codes: lists are scanned in probe order until the budget is
         * reached (the list that crosses it is scanned whole, as on the CPU) */
        for (int64_t q = 0; q < qn; q++) {
            int64_t scanned = 0;
            for (int64_t j = 0; j < np; j++) {
                int64_t *l = hp + q * np + j;
                if (*l < 0 || *l >= v->nlist) {
                    *l = -1;
                    continue;
                }
                if (max_codes && scanned >= max_codes) *l = -1;
                else scanned += v->sizes[*l];
            }
        }
        const size_t budget = vdx_gpu_tmp_budget(g);
        const int64_t cand_max = (int64_t)(budget / 2 / 4);
        for (int64_t b0 = 0; b0 < qn && !st;) {
            /* a batch of queries whose candidates fit */
            int64_t total = 0, b1 = b0;
            while (b1 < qn) {
                int64_t rowlen = 0;
                for (int64_t j = 0; j < np; j++) {
                    int64_t l = hp[b1 * np + j];
                    if (l >= 0) rowlen += v->sizes[l];
                }
                if (rowlen >= ((int64_t)1 << 31)) {
                    st = vdx_raise(VDX_ERR_UNSUPPORTED,
                                   "%s: query %lld probes %lld codes, more than "
                                   "a GPU selection row holds (2^31)",
                                   ix->ops->type_name, (long long)(q0 + b1),
                                   (long long)rowlen);
                    break;
                }
                if (b1 > b0 && total + rowlen > cand_max) break;
                if (b1 - b0 >= 65535) break;
                int64_t *o = ho + (b1 - b0) * (np + 1);
                hrb[b1 - b0] = total;
                o[0] = total;
                for (int64_t j = 0; j < np; j++) {
                    int64_t l = hp[b1 * np + j];
                    o[j + 1] = o[j] + (l >= 0 ? v->sizes[l] : 0);
                }
                total += rowlen;
                b1++;
            }
            if (st) break;
            const int64_t bq = b1 - b0;
            hrb[bq] = total;
            vdx_gpu_tmp_mark m1 = vdx_gpu_tmp_mark_get(g);
            int64_t *dp = NULL, *doff = NULL, *drb = NULL, *doi = NULL;
            float *dkeys = NULL, *dok = NULL;
            if ((st = vdx_gpu_tmp(g, (size_t)(bq * np) * 8, "probes", (void **)&dp)) ||
                (st = vdx_gpu_tmp(g, (size_t)(bq * (np + 1)) * 8, "offsets",
                                  (void **)&doff)) ||
                (st = vdx_gpu_tmp(g, (size_t)(bq + 1) * 8, "offsets", (void **)&drb)) ||
                (st = vdx_gpu_tmp(g, (size_t)VDX_MAX(total, (int64_t)1) * 4,
                                  "candidate keys", (void **)&dkeys)) ||
                (st = vdx_gpu_tmp(g, (size_t)(bq * k) * 4, "results", (void **)&dok)) ||
                (st = vdx_gpu_tmp(g, (size_t)(bq * k) * 8, "results", (void **)&doi)) ||
                (st = vdx_gpu_h2d(g, dp, hp + b0 * np, (size_t)(bq * np) * 8)) ||
                (st = vdx_gpu_h2d(g, doff, ho, (size_t)(bq * (np + 1)) * 8)) ||
                (st = vdx_gpu_h2d(g, drb, hrb, (size_t)(bq + 1) * 8))) {
                vdx_gpu_tmp_release(g, m1);
                break;
            }
            a.nq = (int)bq;
            a.nprobe = (int)np;
            a.xq = dx + b0 * d;
            a.probes = dp;
            a.coarse = dck + b0 * np;
            a.offsets = doff;
            a.keys = dkeys;
            vdx_gk_select s;
            memset(&s, 0, sizeof s);
            s.v = dkeys;
            s.row_start = drb;
            s.nrows = bq;
            s.mode = VDX_GK_KEYS;
            s.k = (int)k;
            s.out_keys = dok;
            s.out_ids = doi;
            s.out_ld = k;
            vdx_gk_ivf_map mp;
            memset(&mp, 0, sizeof mp);
            mp.nq = (int)bq;
            mp.nprobe = (int)np;
            mp.k = (int)k;
            mp.probes = dp;
            mp.offsets = doff;
            mp.labels = doi;
            mp.id_layout = id_layout(v);
            mp.ids = (const void *const *)v->t_ids;
            float *Dq = D + (q0 + b0) * k;
            int64_t *Iq = I + (q0 + b0) * k;
            if (!(st = vdx_gpu_launch(g, vdx_gk_ivf_scan_run(g->stream, &a), "IVF scan")) &&
                !(st = vdx_gpu_launch(g, vdx_gk_select_run(g->stream, &s), "select")) &&
                (v->g.cfg.indices_options == VDX_GPU_INDICES_CPU ||
                 !(st = vdx_gpu_launch(g, vdx_gk_ivf_map_run(g->stream, &mp),
                                       "id map"))) &&
                !(st = vdx_gpu_d2h(g, Dq, dok, (size_t)(bq * k) * 4)))
                st = vdx_gpu_d2h(g, Iq, doi, (size_t)(bq * k) * 8);
            vdx_gpu_tmp_release(g, m1);
            if (st) break;
            for (int64_t q = 0; q < bq; q++) {
                if (v->g.cfg.indices_options == VDX_GPU_INDICES_CPU)
                    map_on_host(v, np, hp + (b0 + q) * np, ho + q * (np + 1), k,
                                Iq + q * k);
                vdx_topk_finish_sorted(k, Dq + q * k, Iq + q * k, is_ip, 0);
            }
            b0 = b1;
        }
        vdx_gpu_tmp_release(g, m0);
    }
done:
    if (g) vdx_gpu_leave(g);
    vdx_free(hp);
    vdx_free(ho);
    vdx_free(hrb);
    return st;
}

/* ---- reset, reconstruct, remove ------------------------------------------------ */

static vdx_status givf_reset(vdx_index *ix) {
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)ix;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(v->g.res, v->g.device, &g);
    if (st) return st;
    free_lists(v);
    ix->ntotal = 0;
    vdx_gpu_leave(g);
    return VDX_OK;
}

/* Decodes entry o of list l into out. */
static vdx_status decode_entry(const vdx_gpu_ivf *v, vdx_gpu_dev *g, int64_t l,
                               int64_t o, float *out) {
    uint8_t *code = vdx_malloc((size_t)v->code_size);
    if (!code) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_gpu_d2h(g, code, v->d_codes[l] + o * v->code_size,
                                (size_t)v->code_size);
    if (!st) tmpl_ivf(v)->codec->decode(tmpl_ivf(v), l, code, out);
    vdx_free(code);
    return st;
}

static vdx_status givf_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                   float *out) {
    const vdx_gpu_ivf *v = (const vdx_gpu_ivf *)(const void *)ix;
    for (int64_t l = 0; l < v->nlist; l++)
        for (int64_t o = 0; o < v->sizes[l]; o++)
            if (v->h_ids[l][o] == key) {
                vdx_gpu_dev *g;
                vdx_status st = vdx_gpu_enter(v->g.res, v->g.device, &g);
                if (st) return st;
                st = decode_entry(v, g, l, o, out);
                vdx_gpu_leave(g);
                return st;
            }
    return vdx_raise(VDX_ERR_NOT_FOUND, "reconstruct: id %lld is not in %s",
                     (long long)key, ix->ops->type_name);
}

/* Copies list l's codes to a new host buffer. */
static vdx_status download_codes(const vdx_gpu_ivf *v, vdx_gpu_dev *g,
                                 int64_t l, uint8_t **out) {
    *out = vdx_malloc_array((size_t)VDX_MAX(v->sizes[l], (int64_t)1),
                            (size_t)v->code_size);
    if (!*out) return VDX_ERR_OUT_OF_MEMORY;
    return vdx_gpu_d2h(g, *out, v->d_codes[l],
                       (size_t)v->sizes[l] * (size_t)v->code_size);
}

static vdx_status givf_reconstruct_n(const vdx_index *ix, vdx_idx_t i0,
                                     int64_t ni, float *out) {
    const vdx_gpu_ivf *v = (const vdx_gpu_ivf *)(const void *)ix;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(v->g.res, v->g.device, &g);
    if (st) return st;
    for (int64_t l = 0; l < v->nlist && !st; l++) {
        int any = 0;
        for (int64_t o = 0; o < v->sizes[l] && !any; o++)
            any = v->h_ids[l][o] >= i0 && v->h_ids[l][o] < i0 + ni;
        if (!any) continue;
        uint8_t *codes;
        if (!(st = download_codes(v, g, l, &codes)))
            for (int64_t o = 0; o < v->sizes[l]; o++) {
                vdx_idx_t id = v->h_ids[l][o];
                if (id >= i0 && id < i0 + ni)
                    tmpl_ivf(v)->codec->decode(tmpl_ivf(v), l,
                                               codes + o * v->code_size,
                                               out + (id - i0) * ix->d);
            }
        vdx_free(codes);
    }
    vdx_gpu_leave(g);
    return st;
}

static vdx_status givf_remove_ids(vdx_index *ix, const vdx_selector *sel,
                                  int64_t *nremoved) {
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)ix;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(v->g.res, v->g.device, &g);
    if (st) return st;
    int64_t removed = 0;
    const size_t cs = (size_t)v->code_size;
    for (int64_t l = 0; l < v->nlist && !st; l++) {
        int64_t ls = v->sizes[l], drop = 0;
        for (int64_t o = 0; o < ls; o++) drop += vdx_sel_member(sel, v->h_ids[l][o]);
        if (!drop) continue;
        uint8_t *codes;
        if (!(st = download_codes(v, g, l, &codes))) {
            vdx_idx_t *ids = v->h_ids[l];
            int64_t j = 0;
            for (int64_t o = 0; o < ls; o++) {
                if (vdx_sel_member(sel, ids[o])) continue;
                memmove(codes + j * cs, codes + o * cs, cs);
                ids[j++] = ids[o];
            }
            v->sizes[l] = 0;
            st = list_append(v, g, l, j, codes, ids);
            removed += ls - j;
            if (!st) st = vdx_gpu_sync(g, "remove_ids");
        }
        vdx_free(codes);
    }
    ix->ntotal -= removed;
    *nremoved = removed;
    v->dirty = 1;
    vdx_gpu_leave(g);
    return st;
}

static void givf_destroy(vdx_index *ix) {
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)ix;
    vdx_gpu_dev *g = NULL;
    if (v->sizes && vdx_gpu_enter(v->g.res, v->g.device, &g) == VDX_OK) {
        free_lists(v);
        vdx_gpu_free(v->t_codes);
        vdx_gpu_free(v->t_ids);
        vdx_gpu_free(v->t_sizes);
        vdx_gpu_free(v->d_centroids);
        vdx_gpu_free(v->d_pq);
        vdx_gpu_free(v->d_pre);
        vdx_gpu_free(v->d_sq_a);
        vdx_gpu_free(v->d_sq_b);
        vdx_gpu_leave(g);
    }
    /* outside the device lock: the coarse index takes it itself */
    if (v->coarse) vdx_index_free(&v->coarse->g.base);
    vdx_index_free(v->tmpl);
    vdx_free(v->sizes);
    vdx_free(v->caps);
    vdx_free(v->d_codes);
    vdx_free(v->d_ids);
    vdx_free(v->h_ids);
    vdx_gpu_index_release(&v->g);
    vdx_free(v);
}

#define GIVF_OPS(name)                                                     \
    {name,          givf_train,    givf_add,          givf_search,         \
     NULL,          givf_reset,    givf_reconstruct,  givf_reconstruct_n,  \
     givf_remove_ids, givf_destroy}

static const vdx_index_ops givf_flat_ops = GIVF_OPS("GpuIndexIVFFlat");
static const vdx_index_ops givf_pq_ops = GIVF_OPS("GpuIndexIVFPQ");
static const vdx_index_ops givf_sq_ops = GIVF_OPS("GpuIndexIVFScalarQuantizer");

/* ---- construction ------------------------------------------------------------------ */

static int cpu_kind(const vdx_index *cpu) {
    if (vdx_is_ivfpq(cpu)) return VDX_GK_IVF_PQ;
    if (vdx_is_ivfsq(cpu)) return VDX_GK_IVF_SQ;
    if (vdx_index_is_ivf(cpu) &&
        strcmp(vdx_index_type_name(cpu), "IndexIVFFlat") == 0)
        return VDX_GK_IVF_FLAT;
    return -1;
}

/* Builds the GPU index around tmpl (owned on success). */
static vdx_status ivf_create(vdx_gpu_resources *res, vdx_index *tmpl,
                             const vdx_gpu_config *cfg, vdx_index **out) {
    *out = NULL;
    const int kind = cpu_kind(tmpl);
    const vdx_ivf *t = (const vdx_ivf *)tmpl;
    const vdx_index_ops *ops = kind == VDX_GK_IVF_PQ   ? &givf_pq_ops
                               : kind == VDX_GK_IVF_SQ ? &givf_sq_ops
                                                       : &givf_flat_ops;
    int sq_layout = 0, M = 0, nbits = 0;
    if (kind == VDX_GK_IVF_PQ) {
        const vdx_pq *pq = &((const vdx_ivfpq *)(const void *)tmpl)->pq;
        M = (int)pq->M;
        nbits = pq->nbits;
        if (nbits != 8 && nbits != 4)
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "GpuIndexIVFPQ: nbits=%d is not supported on the "
                             "GPU (8 or 4 bits per code)",
                             nbits);
    } else if (kind == VDX_GK_IVF_SQ) {
        switch (((const vdx_ivfsq *)(const void *)tmpl)->sq.qtype) {
        case VDX_SQ_8BIT:
        case VDX_SQ_8BIT_UNIFORM:
        case VDX_SQ_8BIT_DIRECT: sq_layout = VDX_GK_SQ_U8; break;
        case VDX_SQ_4BIT:
        case VDX_SQ_4BIT_UNIFORM: sq_layout = VDX_GK_SQ_U4; break;
        case VDX_SQ_FP16: sq_layout = VDX_GK_SQ_F16; break;
        case VDX_SQ_BF16: sq_layout = VDX_GK_SQ_BF16; break;
        default:
            return vdx_raise(VDX_ERR_UNSUPPORTED,
                             "GpuIndexIVFScalarQuantizer: the 6-bit quantizer "
                             "(QT_6bit) has no GPU version in vecdex");
        }
    } else if (kind < 0) {
        return vdx_raise(VDX_ERR_INTERNAL, "GPU IVF: not an IVF template");
    }
    if (t->code_size > (size_t)INT32_MAX)
        return vdx_raise(VDX_ERR_UNSUPPORTED, "GPU IVF: codes of %zu bytes",
                         t->code_size);
    vdx_gpu_ivf *v = vdx_calloc(1, sizeof *v);
    if (!v) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_gpu_index_init(&v->g, ops, VDX_GPU_KIND_IVF, res,
                                       tmpl->d, tmpl->metric, cfg);
    if (st) {
        vdx_free(v);
        return st;
    }
    v->ivf_kind = kind;
    v->nlist = t->nlist;
    v->code_size = (int)t->code_size;
    v->M = M;
    v->nbits = nbits;
    v->sq_layout = sq_layout;
    v->dirty = 1;
    size_t nl = (size_t)v->nlist;
    v->sizes = vdx_calloc(nl, 8);
    v->caps = vdx_calloc(nl, 8);
    v->d_codes = vdx_calloc(nl, sizeof(void *));
    v->d_ids = vdx_calloc(nl, sizeof(void *));
    v->h_ids = vdx_calloc(nl, sizeof(void *));
    vdx_gpu_config cc = v->g.cfg;
    cc.use_float16 = v->g.cfg.use_float16_coarse;
    vdx_index *coarse = NULL;
    if (!v->sizes || !v->caps || !v->d_codes || !v->d_ids || !v->h_ids)
        st = VDX_ERR_OUT_OF_MEMORY;
    else
        st = vdx_gpu_index_flat_new(res, tmpl->d, tmpl->metric, &cc, &coarse);
    v->coarse = (vdx_gpu_flat *)coarse;
    if (st) {
        givf_destroy(&v->g.base); /* tmpl stays the caller's */
        return st;
    }
    v->tmpl = tmpl;
    v->g.base.is_trained = tmpl->is_trained;
    if (tmpl->is_trained) {
        vdx_gpu_dev *g;
        if (!(st = vdx_gpu_enter(res, v->g.device, &g))) {
            st = sync_params(v, g);
            vdx_gpu_leave(g);
        }
        if (st) {
            v->tmpl = NULL;
            givf_destroy(&v->g.base);
            return st;
        }
    }
    *out = &v->g.base;
    return VDX_OK;
}

static vdx_status check_cfg(const vdx_gpu_config *cfg, int64_t nlist) {
    if (nlist <= 0 || nlist > ((int64_t)1 << 31))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nlist=%lld must be in 1..2^31", (long long)nlist);
    (void)cfg;
    return VDX_OK;
}

/* Wraps tmpl (owned on success) after a constructor made it. */
static vdx_status finish_new(vdx_gpu_resources *res, vdx_index *quantizer,
                             vdx_status st, vdx_index *tmpl,
                             const vdx_gpu_config *cfg, vdx_index **out) {
    if (st) {
        vdx_index_free(quantizer); /* the template did not take it */
        return st;
    }
    if (cfg && cfg->use_precomputed && vdx_is_ivfpq(tmpl))
        vdx_index_ivfpq_set_use_precomputed_table(tmpl, 1);
    else if (vdx_is_ivfpq(tmpl))
        vdx_index_ivfpq_set_use_precomputed_table(tmpl, -1);
    st = ivf_create(res, tmpl, cfg, out);
    if (st) vdx_index_free(tmpl);
    return st;
}

vdx_status vdx_gpu_index_ivf_flat_new(vdx_gpu_resources *res, int64_t d,
                                      int64_t nlist, vdx_metric metric,
                                      const vdx_gpu_config *cfg,
                                      vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_status st = check_cfg(cfg, nlist);
    if (st) return st;
    vdx_index *q = NULL, *t = NULL;
    if ((st = vdx_index_flat_new(d, metric, &q))) return st;
    st = vdx_index_ivf_flat_new(q, d, nlist, metric, &t);
    return finish_new(res, q, st, t, cfg, out);
}

vdx_status vdx_gpu_index_ivfpq_new(vdx_gpu_resources *res, int64_t d,
                                   int64_t nlist, int64_t M, int nbits,
                                   vdx_metric metric, const vdx_gpu_config *cfg,
                                   vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_status st = check_cfg(cfg, nlist);
    if (st) return st;
    if (nbits != 8 && nbits != 4)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "GpuIndexIVFPQ: nbits=%d is not supported on the GPU "
                         "(8 or 4 bits per code)",
                         nbits);
    vdx_index *q = NULL, *t = NULL;
    if ((st = vdx_index_flat_new(d, metric, &q))) return st;
    st = vdx_index_ivfpq_new(q, d, nlist, M, nbits, metric, &t);
    return finish_new(res, q, st, t, cfg, out);
}

vdx_status vdx_gpu_index_ivf_sq_new(vdx_gpu_resources *res, int64_t d,
                                    int64_t nlist, int qtype, vdx_metric metric,
                                    int by_residual, const vdx_gpu_config *cfg,
                                    vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_status st = check_cfg(cfg, nlist);
    if (st) return st;
    if (qtype == VDX_SQ_6BIT)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "GpuIndexIVFScalarQuantizer: the 6-bit quantizer "
                         "(QT_6bit) has no GPU version in vecdex");
    vdx_index *q = NULL, *t = NULL;
    if ((st = vdx_index_flat_new(d, metric, &q))) return st;
    st = vdx_index_ivf_sq_new(q, d, nlist, qtype, metric, by_residual, &t);
    return finish_new(res, q, st, t, cfg, out);
}

/* ---- CPU <-> GPU ------------------------------------------------------------------- */

/* A template with the parameters of the CPU IVF index cpu (lists empty). */
static vdx_status template_of(const vdx_index *cpu, vdx_index **out) {
    *out = NULL;
    const vdx_ivf *src = (const vdx_ivf *)cpu;
    const int64_t d = cpu->d, nlist = src->nlist;
    const int kind = cpu_kind(cpu);
    vdx_index *q = NULL, *t = NULL;
    vdx_status st = vdx_index_flat_new(d, cpu->metric, &q);
    if (st) return st;
    /* the coarse centroids, whatever the CPU quantizer is (FAISS flattens
     * a non-flat quantizer the same way) */
    if (src->quantizer->ntotal == nlist && src->quantizer->is_trained) {
        float *c = vdx_malloc_array((size_t)nlist, (size_t)d * 4);
        if (!c) st = VDX_ERR_OUT_OF_MEMORY;
        if (!st) st = vdx_index_reconstruct_n(src->quantizer, 0, nlist, c);
        if (!st) st = vdx_index_add(q, nlist, c);
        vdx_free(c);
        if (st) {
            vdx_index_free(q);
            return st;
        }
    }
    if (kind == VDX_GK_IVF_PQ) {
        const vdx_ivfpq *p = (const vdx_ivfpq *)(const void *)cpu;
        st = vdx_index_ivfpq_new(q, d, nlist, p->pq.M, p->pq.nbits, cpu->metric,
                                 &t);
        if (!st) {
            vdx_ivfpq *tp = (vdx_ivfpq *)(void *)t;
            tp->by_residual = p->by_residual;
            tp->use_precomputed_table = -1;
            tp->pq.cp = p->pq.cp;
            if (p->pq.centroids)
                st = vdx_pq_set_centroids(&tp->pq, p->pq.centroids);
        }
    } else if (kind == VDX_GK_IVF_SQ) {
        const vdx_ivfsq *s = (const vdx_ivfsq *)(const void *)cpu;
        st = vdx_index_ivf_sq_new(q, d, nlist, s->sq.qtype, cpu->metric,
                                  s->by_residual, &t);
        if (!st && s->sq.ntrained)
            st = vdx_sq_set_trained(&((vdx_ivfsq *)(void *)t)->sq, s->sq.trained,
                                    s->sq.ntrained);
    } else {
        st = vdx_index_ivf_flat_new(q, d, nlist, cpu->metric, &t);
    }
    if (st) {
        if (!t) vdx_index_free(q);
        vdx_index_free(t);
        return st;
    }
    vdx_ivf *ti = (vdx_ivf *)t;
    ti->nprobe = src->nprobe;
    ti->max_codes = src->max_codes;
    ti->cp = src->cp;
    t->is_trained = cpu->is_trained;
    *out = t;
    return VDX_OK;
}

vdx_status vdx_gpu_ivf_from_cpu(vdx_gpu_resources *res, const vdx_index *cpu,
                                const vdx_gpu_config *cfg,
                                vdx_gpu_entry_filter keep, void *ctx,
                                vdx_index **out) {
    *out = NULL;
    if (cpu_kind(cpu) < 0)
        return vdx_raise(VDX_ERR_INTERNAL, "GPU IVF: %s is not an IVF kind",
                         vdx_index_type_name(cpu));
    vdx_index *t = NULL;
    vdx_status st = template_of(cpu, &t);
    if (st) return st;
    if (cfg && cfg->use_precomputed && vdx_is_ivfpq(t))
        vdx_index_ivfpq_set_use_precomputed_table(t, 1);
    vdx_index *gi = NULL;
    if ((st = ivf_create(res, t, cfg, &gi))) {
        vdx_index_free(t);
        return st;
    }
    vdx_gpu_ivf *v = (vdx_gpu_ivf *)gi;
    const vdx_ivf *src = (const vdx_ivf *)cpu;
    const vdx_invlists *il = src->il;
    const size_t cs = (size_t)v->code_size;
    vdx_gpu_dev *g;
    if ((st = vdx_gpu_enter(res, v->g.device, &g))) {
        vdx_index_free(gi);
        return st;
    }
    uint8_t *fc = NULL;
    vdx_idx_t *fi = NULL;
    int64_t total = 0;
    for (int64_t l = 0; l < v->nlist && !st; l++) {
        int64_t ls = il->ops->list_size(il, l);
        if (ls <= 0) continue;
        const uint8_t *codes = il->ops->get_codes(il, l);
        const vdx_idx_t *ids = il->ops->get_ids(il, l);
        if (keep) { /* the shard's subset, in list order */
            uint8_t *nc = vdx_realloc_array(fc, (size_t)ls, cs);
            if (nc) fc = nc;
            vdx_idx_t *ni = vdx_realloc_array(fi, (size_t)ls, 8);
            if (ni) fi = ni;
            if (!nc || !ni) {
                st = VDX_ERR_OUT_OF_MEMORY;
                break;
            }
            int64_t m = 0;
            for (int64_t o = 0; o < ls; o++)
                if (keep(l, ids[o], ctx)) {
                    memcpy(fc + m * cs, codes + o * cs, cs);
                    fi[m++] = ids[o];
                }
            codes = fc;
            ids = fi;
            ls = m;
        }
        st = list_append(v, g, l, ls, codes, ids);
        total += ls;
    }
    if (!st) st = vdx_gpu_sync(g, "copy of the lists");
    vdx_gpu_leave(g);
    vdx_free(fc);
    vdx_free(fi);
    if (st) {
        vdx_index_free(gi);
        return st;
    }
    gi->ntotal = total;
    *out = gi;
    return VDX_OK;
}

/* Appends the entries of GPU index v to the CPU IVF dst. */
static vdx_status lists_to(const vdx_gpu_ivf *v, vdx_index *dst) {
    vdx_ivf *d = (vdx_ivf *)dst;
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(v->g.res, v->g.device, &g);
    if (st) return st;
    for (int64_t l = 0; l < v->nlist && !st; l++) {
        if (!v->sizes[l]) continue;
        uint8_t *codes;
        if (!(st = download_codes(v, g, l, &codes)))
            st = d->il->ops->add_entries(d->il, l, v->sizes[l], v->h_ids[l],
                                         codes);
        vdx_free(codes);
    }
    vdx_gpu_leave(g);
    if (!st) dst->ntotal += v->g.base.ntotal;
    return st;
}

vdx_status vdx_gpu_ivf_to_cpu(const vdx_index *ix, vdx_index **out) {
    *out = NULL;
    const vdx_gpu_ivf *v = as_givf(ix);
    if (!v) return vdx_raise(VDX_ERR_INTERNAL, "not a GPU IVF index");
    uint8_t *buf = NULL;
    size_t size = 0;
    vdx_index *cpu = NULL;
    vdx_status st = vdx_serialize_index(v->tmpl, &buf, &size);
    if (!st) st = vdx_deserialize_index(buf, size, &cpu);
    vdx_free_buffer(buf);
    if (st) return st;
    ((vdx_ivf *)cpu)->max_codes = tmpl_ivf(v)->max_codes;
    ((vdx_ivf *)cpu)->cp = tmpl_ivf(v)->cp;
    if (!(st = lists_to(v, cpu)) && vdx_is_ivfpq(cpu))
        st = vdx_index_ivfpq_set_use_precomputed_table(cpu, 0);
    if (st) {
        vdx_index_free(cpu);
        return st;
    }
    *out = cpu;
    return VDX_OK;
}

vdx_status vdx_gpu_ivf_merge_into(vdx_index *dst, const vdx_index *src) {
    const vdx_gpu_ivf *v = as_givf(src);
    if (!v || cpu_kind(dst) != v->ivf_kind ||
        ((vdx_ivf *)dst)->nlist != v->nlist)
        return vdx_raise(VDX_ERR_INTERNAL, "merge: mismatched IVF shards");
    vdx_status st = lists_to(v, dst);
    if (!st && ((vdx_ivf *)dst)->dm) st = vdx_ivf_rebuild_direct_map((vdx_ivf *)dst);
    return st;
}

/* ---- accessors ------------------------------------------------------------------------ */

int64_t vdx_gpu_index_ivf_nlist(const vdx_index *ix) {
    const vdx_gpu_ivf *v = as_givf(ix);
    return v ? v->nlist : 0;
}

int64_t vdx_gpu_index_ivf_nprobe(const vdx_index *ix) {
    const vdx_gpu_ivf *v = as_givf(ix);
    return v ? tmpl_ivf(v)->nprobe : 0;
}

vdx_status vdx_gpu_index_ivf_set_nprobe(vdx_index *ix, int64_t nprobe) {
    vdx_clear_error();
    vdx_gpu_ivf *v = as_givf(ix);
    if (!v) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU IVF index");
    if (nprobe < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "nprobe=%lld must be >= 1",
                         (long long)nprobe);
    tmpl_ivf(v)->nprobe = nprobe > v->nlist ? v->nlist : nprobe;
    return VDX_OK;
}

int64_t vdx_gpu_index_ivf_list_size(const vdx_index *ix, int64_t l) {
    const vdx_gpu_ivf *v = as_givf(ix);
    if (!v || l < 0 || l >= v->nlist) return -1;
    return v->sizes[l];
}

vdx_status vdx_gpu_index_ivf_list_ids(const vdx_index *ix, int64_t l,
                                      vdx_idx_t *out) {
    vdx_clear_error();
    const vdx_gpu_ivf *v = as_givf(ix);
    if (!v || l < 0 || l >= v->nlist || (v->sizes[l] && !out))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "list_ids: not a GPU IVF index or list %lld out of "
                         "range",
                         (long long)l);
    if (v->sizes[l]) memcpy(out, v->h_ids[l], (size_t)v->sizes[l] * 8);
    return VDX_OK;
}

vdx_status vdx_gpu_index_ivf_centroids(const vdx_index *ix, float *out) {
    vdx_clear_error();
    const vdx_gpu_ivf *v = as_givf(ix);
    if (!v || !out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU IVF index");
    const vdx_index *q = tmpl_ivf(v)->quantizer;
    if (q->ntotal != v->nlist)
        return vdx_raise(VDX_ERR_NOT_TRAINED, "%s: not trained",
                         ix->ops->type_name);
    memcpy(out, vdx_index_flat_data(q), (size_t)(v->nlist * ix->d) * 4);
    return VDX_OK;
}

int64_t vdx_gpu_index_ivfpq_M(const vdx_index *ix) {
    const vdx_gpu_ivf *v = as_givf(ix);
    return v ? v->M : 0;
}

int vdx_gpu_index_ivfpq_nbits(const vdx_index *ix) {
    const vdx_gpu_ivf *v = as_givf(ix);
    return v ? v->nbits : 0;
}

int vdx_gpu_index_ivf_sq_qtype(const vdx_index *ix) {
    const vdx_gpu_ivf *v = as_givf(ix);
    if (!v || v->ivf_kind != VDX_GK_IVF_SQ) return -1;
    return ((const vdx_ivfsq *)(const void *)v->tmpl)->sq.qtype;
}
