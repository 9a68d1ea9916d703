/*
 * hnsw.c — the HNSW graph (Malkov & Yashunin, "Efficient and robust
 * approximate nearest neighbor search using Hierarchical Navigable Small
 * World graphs", TPAMI 2018): levels, link storage, distance computers,
 * the neighbour-selection heuristic and the search.
 *
 * Search (alg. 2 and 5 of the paper): a greedy walk from the entry point
 * down the upper levels (beam 1), then a best-first search of level 0 with
 * a beam of ef = max(efSearch, k) nodes.  The walk keeps a min-heap of
 * candidates to expand and a max-heap of the ef best results; it stops when
 * the best candidate is farther than the worst result of a full result set.
 * Per query nothing is allocated: each thread owns its heaps and a visited
 * table of epoch tags (uint16, cleared only when the epoch wraps).  The
 * vectors of a node's neighbours are prefetched before they are scored.
 *
 * Filters (search params `sel`): the walk crosses every node but only
 * admitted nodes enter the results (FAISS's choice: the graph stays
 * connected).  When the filter admits few ids the walk would visit most of
 * the graph before finding k of them, so a sample of ids estimates the
 * selectivity and very selective filters are answered by an exact scan of
 * the admitted ids; the scan also completes any walk that found fewer than
 * k results, so k results come back whenever k admitted vectors exist.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw.h"
#include "index_pq.h"
#include "index_2layer.h"
#include "index_sq.h"
#include "common/interrupt.h"
#include "common/stats.h"
#include "common/threads.h"
#include "common/topk.h"
#include "simd/kernels.h"

/* ---- graph storage ---------------------------------------------------------- */

vdx_status vdx_hnsw_init(vdx_hnsw *g, int M) {
    memset(g, 0, sizeof *g);
    g->M = M;
    g->efConstruction = VDX_HNSW_EF_DEFAULT_CONSTRUCTION;
    g->efSearch = VDX_HNSW_EF_DEFAULT_SEARCH;
    g->max_level = -1;
    g->entry_point = -1;
    g->level_mult = 1.0 / log((double)M);
    vdx_rng_seed(&g->rng, VDX_HNSW_SEED);
    return VDX_OK;
}

void vdx_hnsw_release(vdx_hnsw *g) {
    vdx_mapping_unref(g->map);
    g->map = NULL;
    g->m_nb = g->m_off = NULL;
    g->m_nnb = 0;
    vdx_aligned_free(g->links0);
    vdx_free(g->levels);
    vdx_free(g->uoff);
    vdx_free(g->upool);
    vdx_free(g->locks);
    g->links0 = NULL;
    g->levels = NULL;
    g->uoff = NULL;
    g->upool = NULL;
    g->locks = NULL;
    g->n = g->cap = g->upool_n = g->upool_cap = 0;
}

void vdx_hnsw_clear(vdx_hnsw *g) {
    int M = g->M, efc = g->efConstruction, efs = g->efSearch;
    vdx_hnsw_release(g);
    vdx_hnsw_init(g, M);
    g->efConstruction = efc;
    g->efSearch = efs;
}

const int32_t *vdx_hnsw_mapped_row(const vdx_hnsw *g, int64_t i, int level,
                                   int32_t *buf) {
    buf[0] = 0;
    if (i < 0 || i >= g->n || level < 0 || level > g->levels[i]) return buf;
    uint64_t off;
    memcpy(&off, g->m_off + (size_t)i * 8, 8);
    const int deg = vdx_hnsw_degree(g, level);
    /* the file's offsets were checked at open; checked again here because
     * the map shows the file as it is now */
    if (off > g->m_nnb || g->m_nnb - off < (uint64_t)g->m_cum[level] + (uint64_t)deg)
        return buf;
    memcpy(buf + 1, g->m_nb + (size_t)(off + (uint64_t)g->m_cum[level]) * 4,
           (size_t)deg * sizeof(int32_t));
    int m = 0;
    while (m < deg && buf[1 + m] >= 0 && buf[1 + m] < g->n) m++;
    buf[0] = m;
    return buf;
}

vdx_status vdx_hnsw_own(vdx_hnsw *g) {
    if (!g->m_nb) return VDX_OK;
    vdx_hnsw ng;
    vdx_hnsw_init(&ng, g->M);
    vdx_status st = vdx_hnsw_reserve(&ng, g->n);
    int32_t *buf = vdx_malloc_array((size_t)(1 + 2 * g->M), sizeof(int32_t));
    if (!st && !buf) st = VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < g->n && !st; i++) {
        if ((st = vdx_hnsw_push_node(&ng, g->levels[i]))) break;
        for (int l = 0; l <= g->levels[i]; l++) {
            const int32_t *row = vdx_hnsw_mapped_row(g, i, l, buf);
            memcpy(vdx_hnsw_row(&ng, i, l), row,
                   (size_t)(1 + row[0]) * sizeof(int32_t));
        }
    }
    vdx_free(buf);
    if (st) {
        vdx_hnsw_release(&ng);
        return st;
    }
    ng.efConstruction = g->efConstruction;
    ng.efSearch = g->efSearch;
    ng.max_level = g->max_level;
    ng.entry_point = g->entry_point;
    ng.level_mult = g->level_mult;
    ng.rng = g->rng;
    ng.nremoved = g->nremoved;
    vdx_hnsw_release(g);
    *g = ng;
    return VDX_OK;
}

vdx_status vdx_hnsw_reserve(vdx_hnsw *g, int64_t n) {
    vdx_status ost = vdx_hnsw_own(g);
    if (ost) return ost;
    if (n <= g->cap) return VDX_OK;
    int64_t nc = VDX_MAX(n, g->cap + g->cap / 2);
    size_t stride = (size_t)(1 + 2 * g->M) * sizeof(int32_t);
    int32_t *l0 = vdx_aligned_alloc((size_t)nc, stride);
    if (!l0) return VDX_ERR_OUT_OF_MEMORY;
    if (g->n) memcpy(l0, g->links0, (size_t)g->n * stride);
    int8_t *lv = vdx_realloc_array(g->levels, (size_t)nc, 1);
    if (!lv) {
        vdx_aligned_free(l0);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    g->levels = lv;
    uint32_t *uo = vdx_realloc_array(g->uoff, (size_t)nc, sizeof(uint32_t));
    if (!uo) {
        vdx_aligned_free(l0);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    g->uoff = uo;
    if (!g->locks && !(g->locks = vdx_calloc(VDX_HNSW_NLOCKS, 1))) {
        vdx_aligned_free(l0);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    vdx_aligned_free(g->links0);
    g->links0 = l0;
    g->cap = nc;
    return VDX_OK;
}

vdx_status vdx_hnsw_push_node(vdx_hnsw *g, int level) {
    if (g->n >= g->cap) {
        vdx_status st = vdx_hnsw_reserve(g, g->n + 1);
        if (st) return st;
    }
    int64_t i = g->n;
    g->levels[i] = (int8_t)level;
    g->uoff[i] = 0;
    vdx_hnsw_row(g, i, 0)[0] = 0;
    if (level > 0) {
        int64_t need = (int64_t)level * (1 + g->M);
        if (g->upool_n + need > (int64_t)UINT32_MAX)
            return vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                             "HNSW: upper-level link pool exceeds 2^32 entries");
        if (g->upool_n + need > g->upool_cap) {
            int64_t nc = VDX_MAX(g->upool_n + need, g->upool_cap * 2 + 1024);
            int32_t *p = vdx_realloc_array(g->upool, (size_t)nc, sizeof(int32_t));
            if (!p) return VDX_ERR_OUT_OF_MEMORY;
            g->upool = p;
            g->upool_cap = nc;
        }
        g->uoff[i] = (uint32_t)g->upool_n;
        for (int l = 1; l <= level; l++)
            g->upool[g->upool_n + (int64_t)(l - 1) * (1 + g->M)] = 0;
        g->upool_n += need;
    }
    g->n++;
    return VDX_OK;
}

int vdx_hnsw_random_level(vdx_hnsw *g) {
    /* FAISS's table: p_l = exp(-l / mult) (1 - exp(-1 / mult)), cut where
     * p_l < 1e-9; a uniform draw walks down it */
    double f = (double)(vdx_rng_next(&g->rng) >> 11) * (1.0 / 9007199254740992.0);
    double mult = g->level_mult;
    int l;
    for (l = 0; l < VDX_HNSW_MAX_LEVELS - 1; l++) {
        double p = exp(-l / mult) * (1 - exp(-1 / mult));
        if (p < 1e-9) return l > 0 ? l - 1 : 0;
        if (f < p) return l;
        f -= p;
    }
    return l;
}

/* ---- distance computers ----------------------------------------------------- */

vdx_status vdx_hnsw_dc_init(vdx_hnsw_dc *dc, const vdx_index_hnsw *h) {
    memset(dc, 0, sizeof *dc);
    dc->h = h;
    dc->ip = h->base.metric == VDX_METRIC_INNER_PRODUCT;
    dc->K = vdx_kernels_get();
    size_t d = (size_t)h->base.d, ntab = 0;
    if (h->kind == VDX_HNSW_SQ) {
        dc->SK = vdx_sq_kernels_get();
        ntab = d;
    } else if (h->kind == VDX_HNSW_PQ) {
        const vdx_pq *pq = &((const vdx_index_pq *)h->storage)->pq;
        ntab = (size_t)(pq->M * pq->ksub);
    }
    if (h->kind == VDX_HNSW_FLAT &&
        strcmp(((const vdx_kernels *)dc->K)->name, "scalar") != 0)
        dc->xb = ((const vdx_flat *)h->storage)->xb;
    if (h->kind != VDX_HNSW_FLAT) {
        dc->tab = vdx_aligned_alloc(ntab + 2 * d, sizeof(float));
        if (!dc->tab) return VDX_ERR_OUT_OF_MEMORY;
        dc->tmp = dc->tab + ntab;
    }
    return VDX_OK;
}

void vdx_hnsw_dc_free(vdx_hnsw_dc *dc) {
    vdx_aligned_free(dc->tab);
    dc->tab = NULL;
}

void vdx_hnsw_dc_set_query(vdx_hnsw_dc *dc, const float *q) {
    const vdx_index_hnsw *h = dc->h;
    dc->q = q;
    if (h->kind == VDX_HNSW_SQ) {
        const vdx_index_sq *s = (const vdx_index_sq *)h->storage;
        vdx_sq_query_init(&s->sq, dc->ip, q, dc->tab, &dc->sqq);
    } else if (h->kind == VDX_HNSW_PQ) {
        const vdx_index_pq *p = (const vdx_index_pq *)h->storage;
        vdx_pq_table(&p->pq, h->base.metric, q, dc->tab);
    }
}

static inline const float *flat_vec(const vdx_index_hnsw *h, int64_t id) {
    return ((const vdx_flat *)h->storage)->xb + (size_t)id * (size_t)h->base.d;
}

float vdx_hnsw_dc_dist(vdx_hnsw_dc *dc, int64_t id) {
    const vdx_index_hnsw *h = dc->h;
    const vdx_kernels *K = dc->K;
    size_t d = (size_t)h->base.d;
    float key;
    switch (h->kind) {
    case VDX_HNSW_FLAT:
        return dc->ip ? -K->inner_product(dc->q, flat_vec(h, id), d)
                      : K->l2sqr(dc->q, flat_vec(h, id), d);
    case VDX_HNSW_2L: /* decoded, then compared, as FAISS's Distance2Level */
        vdx_2layer_decode((const vdx_index_2layer *)h->storage, id, dc->tmp);
        return dc->ip ? -K->inner_product(dc->q, dc->tmp, d)
                      : K->l2sqr(dc->q, dc->tmp, d);
    case VDX_HNSW_SQ: {
        const vdx_index_sq *s = (const vdx_index_sq *)h->storage;
        vdx_sq_score(&s->sq, dc->SK, dc->ip, &dc->sqq,
                     s->codes + (size_t)id * s->sq.code_size, 1, &key);
        return key;
    }
    default: {
        const vdx_index_pq *p = (const vdx_index_pq *)h->storage;
        vdx_pq_scan(&p->pq, dc->tab, p->codes + (size_t)id * p->pq.code_size, 1,
                    &key);
        return dc->ip ? -key : key;
    }
    }
}

void vdx_hnsw_dc_keys(vdx_hnsw_dc *dc, const int32_t *ids, int n,
                      float *keys) {
    if (dc->xb) {
        vdx_hnsw_keys_flat_avx2(dc->q, dc->xb, (size_t)dc->h->base.d, dc->ip,
                                ids, n, keys);
        return;
    }
    for (int j = 0; j < n; j++) keys[j] = vdx_hnsw_dc_dist(dc, ids[j]);
}

void vdx_hnsw_dc_sym_keys(vdx_hnsw_dc *dc, int64_t a, const int32_t *ids, int n,
                          float *keys) {
    if (dc->xb) {
        vdx_hnsw_keys_flat_avx2(flat_vec(dc->h, a), dc->xb,
                                (size_t)dc->h->base.d, dc->ip, ids, n, keys);
        return;
    }
    for (int j = 0; j < n; j++) keys[j] = vdx_hnsw_dc_sym(dc, a, ids[j]);
}

float vdx_hnsw_dc_sym(vdx_hnsw_dc *dc, int64_t a, int64_t b) {
    const vdx_index_hnsw *h = dc->h;
    const vdx_kernels *K = dc->K;
    size_t d = (size_t)h->base.d;
    const float *va, *vb;
    if (h->kind == VDX_HNSW_FLAT) {
        va = flat_vec(h, a);
        vb = flat_vec(h, b);
    } else if (h->kind == VDX_HNSW_SQ) {
        const vdx_index_sq *s = (const vdx_index_sq *)h->storage;
        vdx_sq_decode_n(&s->sq, 1, s->codes + (size_t)a * s->sq.code_size, dc->tmp);
        vdx_sq_decode_n(&s->sq, 1, s->codes + (size_t)b * s->sq.code_size,
                        dc->tmp + d);
        va = dc->tmp;
        vb = dc->tmp + d;
    } else if (h->kind == VDX_HNSW_2L) {
        const vdx_index_2layer *t = (const vdx_index_2layer *)h->storage;
        vdx_2layer_decode(t, a, dc->tmp);
        vdx_2layer_decode(t, b, dc->tmp + d);
        va = dc->tmp;
        vb = dc->tmp + d;
    } else {
        const vdx_index_pq *p = (const vdx_index_pq *)h->storage;
        vdx_pq_decode_n(&p->pq, 1, p->codes + (size_t)a * p->pq.code_size, dc->tmp);
        vdx_pq_decode_n(&p->pq, 1, p->codes + (size_t)b * p->pq.code_size,
                        dc->tmp + d);
        va = dc->tmp;
        vb = dc->tmp + d;
    }
    return dc->ip ? -K->inner_product(va, vb, d) : K->l2sqr(va, vb, d);
}

/* ---- neighbour selection ------------------------------------------------------ */

static int cand_cmp(const void *a, const void *b) {
    const vdx_hnsw_cand *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

void vdx_hnsw_sort_cands(vdx_hnsw_cand *c, int n) {
    /* insertion sort for the short lists of the build, qsort beyond */
    if (n > 48) {
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        return;
    }
    for (int i = 1; i < n; i++) {
        vdx_hnsw_cand v = c[i];
        int j = i - 1;
        while (j >= 0 && cand_cmp(&c[j], &v) > 0) {
            c[j + 1] = c[j];
            j--;
        }
        c[j + 1] = v;
    }
}

int vdx_hnsw_select(vdx_hnsw_dc *dc, vdx_hnsw_cand *cand, int n, int max_keep) {
    /* FAISS prunes only lists that reach the degree: a new node keeps all
     * its (fewer than 2M) level-0 candidates, which makes a denser,
     * better-connected level 0 than pruning everything (hnswlib) */
    if (n < max_keep) return n;
    int kept = 0;
    int32_t ids[4];
    float k4[4];
    for (int i = 0; i < n && kept < max_keep; i++) {
        vdx_hnsw_cand c = cand[i];
        int good = 1;
        /* against the kept ones, four at a time */
        for (int j = 0; j < kept && good; j += 4) {
            int m = VDX_MIN(4, kept - j);
            for (int t = 0; t < m; t++) ids[t] = cand[j + t].id;
            vdx_hnsw_dc_sym_keys(dc, c.id, ids, m, k4);
            for (int t = 0; t < m; t++)
                if (k4[t] < c.d) good = 0;
        }
        if (good) cand[kept++] = c;
    }
    return kept;
}

int vdx_hnsw_test_generic = 0;

/* ---- search ---------------------------------------------------------------------- */

/* Per-thread search state. */
typedef struct hnsw_ctx {
    vdx_hnsw_dc dc;
    uint16_t *vis;
    uint16_t epoch;
    int64_t nvis;
    int64_t ndis, nhops; /* counters for the stats (stats.h) */
    vdx_hnsw_cand *cand, *res; /* capacities: candcap, ef + 1 */
    int candcap, rescap;
} hnsw_ctx;

static vdx_status ctx_init(hnsw_ctx *c, const vdx_index_hnsw *h, int ef) {
    memset(c, 0, sizeof *c);
    vdx_status st = vdx_hnsw_dc_init(&c->dc, h);
    if (st) return st;
    c->nvis = h->g.n;
    c->vis = vdx_calloc((size_t)VDX_MAX(c->nvis, 1), sizeof(uint16_t));
    /* the candidate heap holds at most the visited nodes, and never more
     * than ef + (nodes scored while the heap is full) — grown on demand */
    c->candcap = VDX_MAX(2 * ef + 4 * h->g.M + 16, 64);
    c->rescap = ef + 1;
    c->cand = vdx_malloc_array((size_t)c->candcap, sizeof(vdx_hnsw_cand));
    c->res = vdx_malloc_array((size_t)c->rescap, sizeof(vdx_hnsw_cand));
    if (!c->vis || !c->cand || !c->res) return VDX_ERR_OUT_OF_MEMORY;
    return VDX_OK;
}

static void ctx_free(hnsw_ctx *c) {
    vdx_hnsw_dc_free(&c->dc);
    vdx_free(c->vis);
    vdx_free(c->cand);
    vdx_free(c->res);
}

static inline void ctx_new_epoch(hnsw_ctx *c) {
    if (++c->epoch == 0) {
        memset(c->vis, 0, (size_t)c->nvis * sizeof(uint16_t));
        c->epoch = 1;
    }
}

static inline int cand_push(hnsw_ctx *c, int *nc, vdx_hnsw_cand v) {
    if (*nc == c->candcap) {
        int ncap = c->candcap * 2;
        vdx_hnsw_cand *p = vdx_realloc_array(c->cand, (size_t)ncap, sizeof *p);
        if (!p) return -1;
        c->cand = p;
        c->candcap = ncap;
    }
    minheap_push(c->cand, nc, v);
    return 0;
}

/* Greedy descent through the upper levels; returns the entry of level 0. */
static vdx_hnsw_cand greedy_upper(const vdx_hnsw *g, vdx_hnsw_dc *dc,
                                  int64_t *ndis) {
    vdx_hnsw_cand cur = {vdx_hnsw_dc_dist(dc, g->entry_point), g->entry_point};
    ++*ndis;
    float keys[VDX_HNSW_M_MAX];
    int32_t rbuf[1 + 2 * VDX_HNSW_M_MAX];
    for (int l = g->max_level; l >= 1; l--) {
        for (;;) {
            const int32_t *row = vdx_hnsw_row_get(g, cur.id, l, rbuf);
            int cnt = row[0], moved = 0;
            vdx_hnsw_dc_keys(dc, row + 1, cnt, keys);
            *ndis += cnt;
            for (int j = 1; j <= cnt; j++) {
                float d = keys[j - 1];
                if (d < cur.d || (d == cur.d && row[j] < cur.id)) {
                    cur.d = d;
                    cur.id = row[j];
                    moved = 1;
                }
            }
            if (!moved) break;
        }
    }
    return cur;
}

static inline void prefetch_node(const vdx_index_hnsw *h, int32_t id) {
    if (h->kind == VDX_HNSW_FLAT) {
        const char *p = (const char *)flat_vec(h, id);
        __builtin_prefetch(p);
        __builtin_prefetch(p + 64);
    }
}

/* Best-first search of level 0 from ep.  Results (admitted nodes only, at
 * most ef) are left in c->res as a max-heap; returns their count, or -1 on
 * allocation failure.  With radius_key finite, the walk also keeps
 * expanding candidates nearer than it (range search). */
static int search_level0(const vdx_index_hnsw *h, hnsw_ctx *c,
                         vdx_hnsw_cand ep, int ef, const vdx_selector *sel,
                         float radius_key, vdx_range_builder *rb, int64_t q,
                         int is_ip) {
    const vdx_hnsw *g = &h->g;
    const int stride = 1 + 2 * g->M;
    int32_t rbuf[1 + 2 * VDX_HNSW_M_MAX];
    uint16_t *vis = c->vis;
    ctx_new_epoch(c);
    const uint16_t ep_tag = c->epoch;
    int nc = 0, nr = 0;
    vis[ep.id] = ep_tag;
    if (cand_push(c, &nc, ep)) return -1;
    if (vdx_sel_member(sel, ep.id)) {
        maxheap_push(c->res, &nr, ep);
        if (rb && ep.d < radius_key &&
            vdx_range_builder_add(rb, q, is_ip ? -ep.d : ep.d, ep.id))
            return -1;
    }
    while (nc > 0) {
        vdx_hnsw_cand cur = c->cand[0];
        float bound = nr == ef ? c->res[0].d : INFINITY;
        if (cur.d > bound && cur.d >= radius_key) break;
        minheap_pop(c->cand, &nc);
        c->nhops++;
        const int32_t *row =
            g->links0 ? g->links0 + (size_t)cur.id * (size_t)stride
                      : vdx_hnsw_mapped_row(g, cur.id, 0, rbuf);
        int cnt = row[0];
        /* prefetch the first neighbours' data and visited tags */
        for (int j = 1; j <= cnt && j <= 4; j++) {
            __builtin_prefetch(&vis[row[j]]);
            prefetch_node(h, row[j]);
        }
        for (int j = 1; j <= cnt; j++) {
            int32_t nb = row[j];
            if (j + 4 <= cnt) {
                __builtin_prefetch(&vis[row[j + 4]]);
                prefetch_node(h, row[j + 4]);
            }
            if (vis[nb] == ep_tag) continue;
            vis[nb] = ep_tag;
            float d = vdx_hnsw_dc_dist(&c->dc, nb);
            c->ndis++;
            float worst = nr == ef ? c->res[0].d : INFINITY;
            if (d < worst || d < radius_key) {
                vdx_hnsw_cand v = {d, nb};
                if (cand_push(c, &nc, v)) return -1;
                if (vdx_sel_member(sel, nb)) {
                    if (rb && d < radius_key &&
                        vdx_range_builder_add(rb, q, is_ip ? -d : d, nb))
                        return -1;
                    if (d < worst) {
                        if (nr == ef) maxheap_pop(c->res, &nr);
                        maxheap_push(c->res, &nr, v);
                    }
                }
            }
        }
    }
    return nr;
}

/* Exact top-k over the admitted ids into the heap (D, I) (keys). */
static void scan_admitted(const vdx_index_hnsw *h, hnsw_ctx *c, int64_t k,
                          const vdx_selector *sel, float *hk, vdx_idx_t *hi) {
    for (int64_t i = 0; i < h->g.n; i++) {
        if (!vdx_sel_member(sel, i)) continue;
        float d = vdx_hnsw_dc_dist(&c->dc, i);
        vdx_heap_push(k, hk, hi, d, i);
    }
}

/* Share of the ids the selector admits, from an evenly spread sample. */
static double estimate_selectivity(const vdx_selector *sel, int64_t n) {
    if (!sel || n == 0) return 1.0;
    int64_t ns = VDX_MIN(n, 1024), hit = 0;
    for (int64_t s = 0; s < ns; s++) {
        int64_t id = (int64_t)((double)s * (double)n / (double)ns);
        hit += vdx_sel_member(sel, id);
    }
    return (double)hit / (double)ns;
}

/* The exact top-k of a whole batch over the ids sel admits, for flat
 * storage: the admitted vectors are gathered once into a temporary flat
 * index and searched with its sgemm path, instead of each query testing
 * every id against the selector and reading the admitted rows from memory
 * on its own.  Returns VDX_ERR_UNSUPPORTED (nothing written) when the copy
 * would be too large; the caller then scans per query. */
static vdx_status search_admitted_flat(const vdx_index_hnsw *h, int64_t n,
                                       const float *x, int64_t k,
                                       const vdx_selector *sel, float *D,
                                       vdx_idx_t *I) {
    const int64_t nb = h->g.n, d = h->base.d;
    const float *xb = ((const vdx_flat *)h->storage)->xb;
    int64_t na = 0;
    vdx_idx_t *adm = vdx_malloc_array((size_t)(nb ? nb : 1), sizeof(vdx_idx_t));
    if (!adm) return VDX_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < nb; i++)
        if (vdx_sel_member(sel, i)) adm[na++] = i;
    if ((double)na * (double)d * sizeof(float) > (double)(1u << 30)) {
        vdx_free(adm);
        return VDX_ERR_UNSUPPORTED;
    }
    vdx_index *tmp = NULL;
    vdx_status st = vdx_index_flat_new(d, h->base.metric, &tmp);
    float *buf = st ? NULL
                    : vdx_malloc_array((size_t)(na ? na : 1), (size_t)d * sizeof(float));
    if (!st && !buf) st = VDX_ERR_OUT_OF_MEMORY;
    if (!st) {
        for (int64_t i = 0; i < na; i++)
            memcpy(buf + i * d, xb + adm[i] * d, (size_t)d * sizeof(float));
        if (na) st = tmp->ops->add(tmp, na, buf, NULL);
    }
    vdx_free(buf);
    if (!st && na == 0) { /* nothing admitted: empty results */
        const int ip = h->base.metric == VDX_METRIC_INNER_PRODUCT;
        for (int64_t q = 0; q < n; q++) {
            vdx_heap_init(k, D + q * k, I + q * k);
            vdx_topk_finish(k, D + q * k, I + q * k, ip, 0);
        }
    } else if (!st) {
        st = tmp->ops->search(tmp, n, x, k, NULL, D, I);
    }
    if (!st)
        for (int64_t i = 0; i < n * k; i++)
            if (I[i] >= 0) I[i] = adm[I[i]];
    vdx_index_free(tmp);
    vdx_free(adm);
    return st;
}

vdx_status vdx_hnsw_search(const vdx_index_hnsw *h, int64_t n, const float *x,
                           int64_t k, const vdx_search_params *p, float *D,
                           vdx_idx_t *I) {
    const vdx_hnsw *g = &h->g;
    const vdx_selector *sel = p ? p->sel : NULL;
    int efs = p && p->efSearch > 0 ? p->efSearch : g->efSearch;
    int64_t ef64 = VDX_MAX((int64_t)efs, k);
    if (ef64 > VDX_HNSW_EF_MAX) ef64 = VDX_MAX(k, VDX_HNSW_EF_MAX);
    int ef = (int)VDX_MIN(ef64, (int64_t)INT32_MAX / 4);
    const int is_ip = h->base.metric == VDX_METRIC_INNER_PRODUCT;
    const int64_t d = h->base.d;
    /* a walk that must collect ef admitted nodes expands the ~ef / frac
     * nodes nearer than the ef-th admitted one and scores their unvisited
     * neighbours (measured: ~32 ef / frac distances in all, each a random
     * memory access); a scan scores frac * n nodes and tests n ids against
     * the selector (~1/16 of a distance each).  A batch of queries over
     * flat storage scans with sgemm, once for the whole batch: its
     * distances count 1/8 (measured at 500k x d=128, 10% admitted: the
     * walk ran at 1.3k QPS), the selector tests are shared by the batch.
     * Scan when that is cheaper. */
    double frac = estimate_selectivity(sel, g->n);
    const int batched = h->kind == VDX_HNSW_FLAT && n >= 32;
    const double scan_cost =
        frac * (double)g->n / (batched ? 8.0 : 1.0) +
        (double)g->n / 16 / (batched ? (double)n : 1.0);
    int brute = g->n == 0 ||
                (sel && scan_cost < 32.0 * (double)ef / VDX_MAX(frac, 1e-9));
    if (brute && sel && h->kind == VDX_HNSW_FLAT && g->n > 0) {
        vdx_status bs = search_admitted_flat(h, n, x, k, sel, D, I);
        if (bs != VDX_ERR_UNSUPPORTED) return bs;
        vdx_clear_error();
    }
    /* the AVX2 walk for flat storage, unless the kernels are forced lower */
    const int fast = h->kind == VDX_HNSW_FLAT && !vdx_hnsw_test_generic &&
                     strcmp(vdx_kernels_get()->name, "scalar") != 0;
    vdx_status st = VDX_OK;
    int stop = 0; /* the interrupt handler asked to stop */
    /* a walk visits about ef * 2M neighbours of d/8 SIMD steps each (or
     * scans everything when brute): serial for small batches (threads.h) */
    const int nthreads = vdx_nthreads_for(
        (double)n * (double)h->base.d / 8 *
        (brute ? (double)g->n : (double)VDX_MAX(ef, (int)k) * 2.0 * (double)g->M));
    int64_t s_n1 = 0, s_ndis = 0, s_nhops = 0;
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads) \
    reduction(+ : s_n1, s_ndis, s_nhops)
    {
        hnsw_ctx c;
        vdx_status lst = ctx_init(&c, h, ef);
        if (lst) {
#pragma omp atomic write
            st = lst;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < n; q++) {
            if (lst || vdx_poll_stop(&stop)) continue;
            float *hk = D + q * k;
            vdx_idx_t *hi = I + q * k;
            vdx_heap_init(k, hk, hi);
            vdx_hnsw_dc_set_query(&c.dc, x + q * d);
            int64_t found = 0;
            if (!brute) {
                vdx_hnsw_cand ep = greedy_upper(g, &c.dc, &c.ndis);
                int nr;
                if (fast) {
                    ctx_new_epoch(&c);
                    vdx_hnsw_l0_args a = {g->links0, g, 1 + 2 * g->M,
                                          ((const vdx_flat *)h->storage)->xb,
                                          (size_t)d, is_ip, x + q * d, c.vis,
                                          c.epoch, ef, sel, &c.cand,
                                          &c.candcap, c.res, &c.ndis,
                                          &c.nhops};
                    nr = vdx_hnsw_l0_flat_avx2(&a, ep);
                } else {
                    nr = search_level0(h, &c, ep, ef, sel, -INFINITY, NULL, q,
                                       is_ip);
                }
                if (nr < 0) {
                    lst = VDX_ERR_OUT_OF_MEMORY;
#pragma omp atomic write
                    st = lst;
                    continue;
                }
                for (int i = 0; i < nr; i++)
                    vdx_heap_push(k, hk, hi, c.res[i].d, c.res[i].id);
                found = VDX_MIN((int64_t)nr, k);
            }
            /* too few nodes reached (a filter the walk rarely meets, a
             * graph cut by removals): complete exactly, so that k results
             * come back whenever k admitted vectors exist */
            if (found < k && (brute || sel || found < g->n)) {
                s_n1 += !brute;
                vdx_heap_init(k, hk, hi);
                scan_admitted(h, &c, k, sel, hk, hi);
            }
            vdx_topk_finish(k, hk, hi, is_ip, 0);
        }
        s_ndis += c.ndis;
        s_nhops += c.nhops;
        ctx_free(&c);
    }
    if (!st) vdx_stats_hnsw_add(s_n1, 0, s_ndis, s_nhops);
    if (!st && stop)
        st = vdx_raise(VDX_ERR_INTERRUPTED,
                       "HNSW search of %lld queries interrupted", (long long)n);
    return st;
}

vdx_status vdx_hnsw_range_search(const vdx_index_hnsw *h, int64_t n,
                                 const float *x, float radius,
                                 const vdx_search_params *p,
                                 vdx_range_builder *rb) {
    const vdx_hnsw *g = &h->g;
    const vdx_selector *sel = p ? p->sel : NULL;
    int ef = p && p->efSearch > 0 ? p->efSearch : g->efSearch;
    const int is_ip = h->base.metric == VDX_METRIC_INNER_PRODUCT;
    const float rkey = is_ip ? -radius : radius;
    const int64_t d = h->base.d;
    if (g->n == 0) return VDX_OK;
    vdx_status st = VDX_OK;
    /* a walk visits about ef * 2M neighbours, then the radius grows it */
    const int nthreads = vdx_nthreads_for((double)n * (double)d / 8 * (double)ef *
                                          2.0 * (double)g->M * 4.0);
    int64_t s_ndis = 0, s_nhops = 0;
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads) \
    reduction(+ : s_ndis, s_nhops)
    {
        hnsw_ctx c;
        vdx_status lst = ctx_init(&c, h, ef);
        if (lst) {
#pragma omp atomic write
            st = lst;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < n; q++) {
            if (lst) continue;
            vdx_hnsw_dc_set_query(&c.dc, x + q * d);
            vdx_hnsw_cand ep = greedy_upper(g, &c.dc, &c.ndis);
            if (search_level0(h, &c, ep, ef, sel, rkey, rb, q, is_ip) < 0) {
                lst = VDX_ERR_OUT_OF_MEMORY;
#pragma omp atomic write
                st = lst;
            }
        }
        s_ndis += c.ndis;
        s_nhops += c.nhops;
        ctx_free(&c);
    }
    if (!st) vdx_stats_hnsw_add(0, 0, s_ndis, s_nhops);
    return st;
}
