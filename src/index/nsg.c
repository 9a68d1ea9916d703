/*
 * nsg.c — the Navigating Spreading-out Graph (Fu, Xiang, Wang & Cai, "Fast
 * approximate nearest neighbor search with the navigating spreading-out
 * graph", VLDB 2019) and FAISS's IndexNSGFlat / IndexNSGPQ / IndexNSGSQ.
 *
 * Build, from a k-NN graph (the caller's, or made by add: exact search on
 * the storage when build_type is 0, NN-descent when 1):
 *   1. the navigating node: the node a greedy search of the k-NN graph
 *      finds nearest to the centroid of the data (an approximate medoid);
 *   2. for every node p, a search of the k-NN graph from the navigating
 *      node for p's vector, with a pool of L, collects every node it
 *      scores; with p's k-NN these are p's candidates, of which the first C
 *      by distance go through the MRNG edge selection: a candidate q is
 *      kept unless a kept r is nearer to q than p is (the edge p->q would
 *      be "occluded" by p->r->q), up to R edges;
 *   3. reverse edges: q->p is offered to every q that p links to, and a
 *      row that overflows R is re-selected with the same rule;
 *   4. connectivity: a depth-first walk from the navigating node; each node
 *      it misses is linked from the nearest reached node (found by a search
 *      of the new graph) that still has room under R, and the walk resumes
 *      from there, until every node is reached.
 * Search: a best-first walk from the navigating node's neighbours (the
 * pool topped up with random nodes, always the same ones, so that searches
 * are reproducible) with a pool of max(search_L, k).
 *
 * The build runs on one thread; searches run queries in parallel.  FAISS's
 * file layout and field names (nsg_io.c) are kept.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsg.h"
#include "index_pq.h"
#include "index_sq.h"
#include "../common/threads.h"

typedef struct {
    float d;
    int32_t id;
    int32_t flag;
} nsg_nb;

static int nb_cmp(const void *a, const void *b) {
    const nsg_nb *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* A graph to walk: the caller's k-NN graph (int64, K per row, entries
 * outside [0, n) skipped) or the NSG graph (int32, -1 ends a row). */
typedef struct {
    const int64_t *k64;
    const int32_t *k32;
    int K;
} gview;

typedef struct {
    vdx_hnsw_dc dc;
    int64_t n;
    uint32_t *vis, tag;
    nsg_nb *pool;        /* poolcap + 1 */
    int poolcap;
    nsg_nb *full;        /* the nodes scored by a collecting walk */
    int nfull, fullcap;
    int32_t *nbuf;       /* one row */
    float *vec;          /* d floats */
} nsg_ctx;

static void ctx_free(nsg_ctx *c) {
    vdx_hnsw_dc_free(&c->dc);
    vdx_free(c->vis);
    vdx_free(c->pool);
    vdx_free(c->full);
    vdx_free(c->nbuf);
    vdx_free(c->vec);
}

static vdx_status ctx_init(nsg_ctx *c, const vdx_index_nsg *s, int64_t n,
                           int poolcap, int rowcap) {
    memset(c, 0, sizeof *c);
    vdx_status st = vdx_hnsw_dc_init(&c->dc, &s->view);
    if (st) return st;
    c->n = n;
    c->poolcap = poolcap;
    c->fullcap = 256;
    c->vis = vdx_calloc((size_t)VDX_MAX(n, 1), sizeof(uint32_t));
    c->pool = vdx_malloc_array((size_t)poolcap + 1, sizeof(nsg_nb));
    c->full = vdx_malloc_array((size_t)c->fullcap, sizeof(nsg_nb));
    c->nbuf = vdx_malloc_array((size_t)VDX_MAX(rowcap, 1), sizeof(int32_t));
    c->vec = vdx_malloc_array((size_t)s->base.d, sizeof(float));
    if (!c->vis || !c->pool || !c->full || !c->nbuf || !c->vec) {
        ctx_free(c);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    return VDX_OK;
}

static int full_push(nsg_ctx *c, int32_t id, float d) {
    if (c->nfull == c->fullcap) {
        nsg_nb *p = vdx_realloc_array(c->full, (size_t)c->fullcap * 2, sizeof *p);
        if (!p) return -1;
        c->full = p;
        c->fullcap *= 2;
    }
    c->full[c->nfull].id = id;
    c->full[c->nfull].d = d;
    c->full[c->nfull].flag = 0;
    c->nfull++;
    return 0;
}

static int row_of(const gview *g, int64_t n, int64_t i, int32_t *out) {
    int c = 0;
    if (g->k64) {
        const int64_t *r = g->k64 + (size_t)i * (size_t)g->K;
        for (int j = 0; j < g->K; j++)
            if (r[j] >= 0 && r[j] < n) out[c++] = (int32_t)r[j];
    } else {
        const int32_t *r = g->k32 + (size_t)i * (size_t)g->K;
        for (int j = 0; j < g->K && r[j] >= 0; j++) out[c++] = r[j];
    }
    return c;
}

/* The best-first walk (FAISS's search_on_graph): leaves the pool_size
 * best in c->pool, sorted; with collect, every node scored in c->full.
 * The nodes scored stay marked (c->tag) until the next walk. */
static vdx_status walk(nsg_ctx *c, const gview *g, int32_t ep, int pool_size,
                       int collect) {
    const int64_t n = c->n;
    if (pool_size > n) pool_size = (int)n;
    if (++c->tag == 0) {
        memset(c->vis, 0, (size_t)n * sizeof(uint32_t));
        c->tag = 1;
    }
    const uint32_t tag = c->tag;
    nsg_nb *pool = c->pool;
    c->nfull = 0;
    int np = 0;
    int cnt = row_of(g, n, ep, c->nbuf);
    for (int j = 0; j < cnt && np < pool_size; j++) {
        if (c->vis[c->nbuf[j]] == tag) continue;
        c->vis[c->nbuf[j]] = tag;
        pool[np++].id = c->nbuf[j];
    }
    /* top up with random nodes: a fixed seed, so that every walk (and a
     * reloaded index) starts from the same ones */
    vdx_rng rng;
    vdx_rng_seed(&rng, 0x1234);
    if (np < pool_size && (int64_t)pool_size * 2 > n) {
        for (int64_t id = 0; id < n && np < pool_size; id++)
            if (c->vis[id] != tag) {
                c->vis[id] = tag;
                pool[np++].id = (int32_t)id;
            }
    }
    while (np < pool_size) {
        int32_t id = (int32_t)vdx_rng_below(&rng, (uint64_t)n);
        if (c->vis[id] == tag) continue;
        c->vis[id] = tag;
        pool[np++].id = id;
    }
    for (int i = 0; i < np; i++) {
        pool[i].d = vdx_hnsw_dc_dist(&c->dc, pool[i].id);
        pool[i].flag = 1;
        if (collect && full_push(c, pool[i].id, pool[i].d)) return VDX_ERR_OUT_OF_MEMORY;
    }
    qsort(pool, (size_t)np, sizeof *pool, nb_cmp);
    int k = 0;
    while (k < np) {
        int upd = np;
        if (pool[k].flag) {
            pool[k].flag = 0;
            int m = row_of(g, n, pool[k].id, c->nbuf);
            for (int j = 0; j < m; j++) {
                int32_t id = c->nbuf[j];
                if (c->vis[id] == tag) continue;
                c->vis[id] = tag;
                float d = vdx_hnsw_dc_dist(&c->dc, id);
                if (collect && full_push(c, id, d)) return VDX_ERR_OUT_OF_MEMORY;
                if (d >= pool[np - 1].d) continue;
                int lo = 0, hi = np - 1;
                while (lo < hi) {
                    int mid = (lo + hi) / 2;
                    if (pool[mid].d <= d) lo = mid + 1;
                    else hi = mid;
                }
                memmove(pool + lo + 1, pool + lo, (size_t)(np - 1 - lo) * sizeof *pool);
                pool[lo].id = id;
                pool[lo].d = d;
                pool[lo].flag = 1;
                if (lo < upd) upd = lo;
            }
        }
        k = upd <= k ? upd : k + 1;
    }
    return VDX_OK;
}

/* MRNG selection over cand[0..n) sorted by distance to node p: keeps a
 * candidate unless it is p, already kept, or nearer to a kept one than
 * to p; at most R, among the first `limit`.  Returns the count kept
 * (written to out). */
static int mrng_select(vdx_hnsw_dc *dc, int32_t p, const nsg_nb *cand, int n,
                       int R, int limit, nsg_nb *out) {
    int nr = 0;
    for (int i = 0; i < n && i < limit && nr < R; i++) {
        const nsg_nb *q = &cand[i];
        if (q->id == p) continue;
        int occluded = 0;
        for (int t = 0; t < nr && !occluded; t++)
            occluded = out[t].id == q->id ||
                       vdx_hnsw_dc_sym(dc, out[t].id, q->id) < q->d;
        if (!occluded) out[nr++] = *q;
    }
    return nr;
}

static vdx_status storage_vec(const vdx_index_nsg *s, int64_t i, float *out) {
    return s->storage->ops->reconstruct(s->storage, i, out);
}

/* Steps 1-4 over the n stored vectors from knn (n x gk). */
static vdx_status build_graph(vdx_index_nsg *s, int64_t n, const int64_t *knn,
                              int gk) {
    vdx_nsg *g = &s->g;
    const int R = g->R, d = (int)s->base.d;
    const gview kg = {knn, NULL, gk};
    nsg_ctx c;
    int rowcap = VDX_MAX(gk, R);
    int poolcap = VDX_MAX(VDX_MAX(g->L, g->search_L), 1);
    vdx_status st = ctx_init(&c, s, n, poolcap, rowcap);
    if (st) return st;
    nsg_nb *tmp = vdx_malloc_array((size_t)n * (size_t)R, sizeof(nsg_nb));
    nsg_nb *sel = vdx_malloc_array((size_t)R + 1, sizeof(nsg_nb));
    nsg_nb *rp = vdx_malloc_array((size_t)R + 1, sizeof(nsg_nb));
    int32_t *fg = vdx_malloc_array((size_t)n * (size_t)R, sizeof(int32_t));
    int *deg = vdx_calloc((size_t)n, sizeof(int));
    int32_t *stack = vdx_malloc_array((size_t)n, sizeof(int32_t));
    uint8_t *reached = vdx_calloc((size_t)n, 1);
    double *center = vdx_calloc((size_t)d, sizeof(double));
    float *cf = vdx_malloc_array((size_t)d, sizeof(float));
    if (!tmp || !sel || !rp || !fg || !deg || !stack || !reached || !center || !cf) {
        st = VDX_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* 1. navigating node */
    for (int64_t i = 0; i < n; i++) {
        if ((st = storage_vec(s, i, c.vec))) goto done;
        for (int j = 0; j < d; j++) center[j] += c.vec[j];
    }
    for (int j = 0; j < d; j++) cf[j] = (float)(center[j] / (double)n);
    vdx_hnsw_dc_set_query(&c.dc, cf);
    {
        vdx_rng rng;
        vdx_rng_seed(&rng, 0x0903);
        int32_t ep0 = (int32_t)vdx_rng_below(&rng, (uint64_t)n);
        if ((st = walk(&c, &kg, ep0, g->L, 0))) goto done;
        g->enterpoint = c.pool[0].id;
    }
    /* 2. candidates and MRNG selection */
    for (int64_t i = 0; i < n; i++) {
        if ((st = storage_vec(s, i, c.vec))) goto done;
        vdx_hnsw_dc_set_query(&c.dc, c.vec);
        if ((st = walk(&c, &kg, g->enterpoint, g->L, 1))) goto done;
        int m = row_of(&kg, n, i, c.nbuf);
        for (int j = 0; j < m; j++) {
            int32_t id = c.nbuf[j];
            if (c.vis[id] == c.tag) continue;
            c.vis[id] = c.tag;
            if (full_push(&c, id, vdx_hnsw_dc_sym(&c.dc, i, id))) {
                st = VDX_ERR_OUT_OF_MEMORY;
                goto done;
            }
        }
        qsort(c.full, (size_t)c.nfull, sizeof *c.full, nb_cmp);
        nsg_nb *row = tmp + (size_t)i * (size_t)R;
        int nr = mrng_select(&c.dc, (int32_t)i, c.full, c.nfull, R, g->C, row);
        for (int j = nr; j < R; j++) row[j].id = -1;
    }
    /* 3. reverse edges */
    for (int64_t q = 0; q < n; q++) {
        for (int t = 0; t < R; t++) {
            nsg_nb e = tmp[(size_t)q * (size_t)R + (size_t)t];
            if (e.id < 0) break;
            nsg_nb *drow = tmp + (size_t)e.id * (size_t)R;
            int cnt = 0, dup = 0;
            for (; cnt < R && drow[cnt].id >= 0; cnt++)
                if (drow[cnt].id == q) dup = 1;
            if (dup) continue;
            if (cnt < R) {
                drow[cnt].id = (int32_t)q;
                drow[cnt].d = e.d;
                continue;
            }
            memcpy(rp, drow, (size_t)R * sizeof *rp);
            rp[R].id = (int32_t)q;
            rp[R].d = e.d;
            qsort(rp, (size_t)R + 1, sizeof *rp, nb_cmp);
            int nr = mrng_select(&c.dc, e.id, rp, R + 1, R, R + 1, sel);
            memcpy(drow, sel, (size_t)nr * sizeof *sel);
            for (int j = nr; j < R; j++) drow[j].id = -1;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        int cnt = 0;
        for (int j = 0; j < R; j++) {
            int32_t id = tmp[(size_t)i * (size_t)R + (size_t)j].id;
            if (id >= 0) fg[(size_t)i * (size_t)R + (size_t)cnt++] = id;
        }
        for (int j = cnt; j < R; j++) fg[(size_t)i * (size_t)R + (size_t)j] = -1;
        deg[i] = cnt;
    }
    /* 4. connectivity repair */
    {
        const gview ng = {NULL, fg, R};
        int64_t cnt = 0, cursor = 0;
        int32_t root = g->enterpoint;
        for (;;) {
            /* depth-first from root over the unreached nodes */
            int64_t sp = 0;
            if (!reached[root]) {
                reached[root] = 1;
                cnt++;
            }
            stack[sp++] = root;
            while (sp > 0) {
                int32_t node = stack[sp - 1], next = -1;
                const int32_t *r = fg + (size_t)node * (size_t)R;
                for (int j = 0; j < R && r[j] >= 0; j++)
                    if (!reached[r[j]]) {
                        next = r[j];
                        break;
                    }
                if (next < 0) {
                    sp--;
                    continue;
                }
                reached[next] = 1;
                cnt++;
                stack[sp++] = next;
            }
            if (cnt >= n) break;
            while (reached[cursor]) cursor++;
            const int32_t id = (int32_t)cursor;
            if ((st = storage_vec(s, id, c.vec))) goto done;
            vdx_hnsw_dc_set_query(&c.dc, c.vec);
            if ((st = walk(&c, &ng, g->enterpoint, VDX_MAX(g->search_L, 1), 1)))
                goto done;
            qsort(c.full, (size_t)c.nfull, sizeof *c.full, nb_cmp);
            int32_t host = -1;
            for (int j = 0; j < c.nfull && host < 0; j++) {
                int32_t v = c.full[j].id;
                if (v != id && reached[v] && deg[v] < R) host = v;
            }
            for (int64_t v = 0; v < n && host < 0; v++)
                if (v != id && reached[v] && deg[v] < R) host = (int32_t)v;
            if (host < 0) {
                st = vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                               "NSG: cannot link node %d: every reached node "
                               "already has R=%d links",
                               id, R);
                goto done;
            }
            fg[(size_t)host * (size_t)R + (size_t)deg[host]++] = id;
            root = host;
        }
    }
    vdx_free(g->graph);
    g->graph = fg;
    fg = NULL;
    g->ntotal = n;
    g->is_built = 1;
done:
    ctx_free(&c);
    vdx_free(tmp);
    vdx_free(sel);
    vdx_free(rp);
    vdx_free(fg);
    vdx_free(deg);
    vdx_free(stack);
    vdx_free(reached);
    vdx_free(center);
    vdx_free(cf);
    return st;
}

/* FAISS's check_knn_graph: invalid entries (outside [0, n) or the row's
 * own node) are skipped by the build, and refused when n / 10 or more. */
static vdx_status check_knn(const int64_t *knn, int64_t n, int gk) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < gk; j++) {
            int64_t id = knn[(size_t)i * (size_t)gk + (size_t)j];
            bad += id < 0 || id >= n || id == i;
        }
    if (bad >= n / 10)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "There are too many invalid entries in the knn graph "
                         "(%lld of %lld). It may be an invalid knn graph.",
                         (long long)bad, (long long)(n * gk));
    return VDX_OK;
}

/* The k-NN graph of the n stored vectors x, as build_type says. */
static vdx_status make_knn(vdx_index_nsg *s, int64_t n, const float *x,
                           int64_t **out) {
    const int GK = s->GK;
    *out = NULL;
    int64_t *knn = vdx_malloc_array((size_t)n * (size_t)GK, sizeof(int64_t));
    if (!knn) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    if (s->build_type == 0) {
        const int64_t k1 = (int64_t)GK + 1;
        float *D = vdx_malloc_array((size_t)n * (size_t)k1, sizeof(float));
        vdx_idx_t *I = vdx_malloc_array((size_t)n * (size_t)k1, sizeof(vdx_idx_t));
        if (!D || !I) st = VDX_ERR_OUT_OF_MEMORY;
        if (!st) st = vdx_index_search(s->storage, n, x, k1, NULL, D, I);
        for (int64_t i = 0; i < n && !st; i++) {
            int c = 0;
            for (int64_t j = 0; j < k1 && c < GK; j++) {
                vdx_idx_t id = I[(size_t)i * (size_t)k1 + (size_t)j];
                /* the row's own node is dropped wherever it ranks (with
                 * inner product it need not come first) */
                if (id != i) knn[(size_t)i * (size_t)GK + (size_t)c++] = id;
            }
            while (c < GK) knn[(size_t)i * (size_t)GK + (size_t)c++] = -1;
        }
        vdx_free(D);
        vdx_free(I);
    } else {
        vdx_nndescent nd;
        vdx_nnd_init(&nd, GK);
        nd.S = s->nnd_S;
        nd.R = s->nnd_R;
        nd.L = VDX_MAX(s->nnd_L, GK + 50);
        nd.iter = s->nnd_iter;
        st = vdx_nnd_build(&nd, &s->view, n);
        for (int64_t i = 0; !st && i < n * GK; i++) knn[i] = nd.final_graph[i];
        vdx_nnd_release(&nd);
    }
    if (st) {
        vdx_free(knn);
        return st;
    }
    *out = knn;
    return VDX_OK;
}

/* ---- the index kinds ---------------------------------------------------------- */
static const vdx_index_ops nsg_flat_ops, nsg_pq_ops, nsg_sq_ops;

int vdx_is_nsg(const vdx_index *ix) {
    return ix && (ix->ops == &nsg_flat_ops || ix->ops == &nsg_pq_ops ||
                  ix->ops == &nsg_sq_ops);
}

static vdx_index_nsg *as_nsg(const vdx_index *ix) {
    return vdx_is_nsg(ix) ? (vdx_index_nsg *)ix : NULL;
}

static vdx_status nsg_train(vdx_index *ix, int64_t n, const float *x) {
    vdx_index_nsg *s = (vdx_index_nsg *)ix;
    vdx_status st = vdx_index_train(s->storage, n, x);
    ix->is_trained = s->storage->is_trained;
    return st;
}

/* Adds x to the empty storage and builds the graph from knn (or from the
 * k-NN graph made by build_type when knn is NULL); all or nothing. */
static vdx_status nsg_fill(vdx_index_nsg *s, int64_t n, const float *x,
                           const int64_t *knn, int gk) {
    if (n > INT32_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s holds at most 2^31 - 1 vectors (adding %lld)",
                         s->base.ops->type_name, (long long)n);
    if (!knn && s->build_type != 0 && s->build_type != 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "build_type should be 0 or 1, got %d", s->build_type);
    if (knn) {
        vdx_status st = check_knn(knn, n, gk);
        if (st) return st;
    }
    vdx_status st = s->storage->ops->add(s->storage, n, x, NULL);
    if (st) return st;
    int64_t *own = NULL;
    if (!knn) {
        st = make_knn(s, n, x, &own);
        if (!st) st = check_knn(own, n, s->GK);
        knn = own;
        gk = s->GK;
    }
    if (!st) st = build_graph(s, n, knn, gk);
    vdx_free(own);
    if (st) {
        vdx_status keep = st;
        s->storage->ops->reset(s->storage);
        s->g.is_built = 0;
        s->g.ntotal = 0;
        return keep;
    }
    s->base.ntotal = n;
    return VDX_OK;
}

static vdx_status nsg_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    vdx_index_nsg *s = (vdx_index_nsg *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s: wrap it in "
                         "IndexIDMap",
                         ix->ops->type_name);
    if (s->g.is_built || ix->ntotal != 0)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "NSG does not support incremental addition (%s "
                         "holds %lld vectors; reset() it first)",
                         ix->ops->type_name, (long long)ix->ntotal);
    return nsg_fill(s, n, x, NULL, 0);
}

static vdx_status nsg_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *p, float *D,
                             vdx_idx_t *I) {
    const vdx_index_nsg *s = (const vdx_index_nsg *)ix;
    if (p && p->sel)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s: search with a selector is not supported",
                         ix->ops->type_name);
    const int ip = ix->metric == VDX_METRIC_INNER_PRODUCT;
    const vdx_nsg *g = &s->g;
    if (!g->is_built || g->ntotal == 0) {
        for (int64_t i = 0; i < n * k; i++) {
            I[i] = -1;
            D[i] = ip ? -INFINITY : INFINITY;
        }
        return VDX_OK;
    }
    const int L = (int)VDX_MIN(VDX_MAX((int64_t)g->search_L, k), g->ntotal);
    const gview ng = {NULL, g->graph, g->R};
    vdx_status st = VDX_OK;
    const int nthreads = vdx_nthreads_for((double)n * (double)ix->d / 8 *
                                          (double)L * (double)g->R);
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads)
    {
        nsg_ctx c;
        vdx_status lst = ctx_init(&c, s, g->ntotal, L, g->R);
        if (lst) {
#pragma omp atomic write
            st = lst;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < n; q++) {
            if (lst) continue;
            vdx_hnsw_dc_set_query(&c.dc, x + q * ix->d);
            walk(&c, &ng, g->enterpoint, L, 0);
            for (int64_t i = 0; i < k; i++) {
                if (i < L) {
                    I[q * k + i] = c.pool[i].id;
                    D[q * k + i] = ip ? -c.pool[i].d : c.pool[i].d;
                } else {
                    I[q * k + i] = -1;
                    D[q * k + i] = ip ? -INFINITY : INFINITY;
                }
            }
        }
        if (!lst) ctx_free(&c);
    }
    return st;
}

static vdx_status nsg_reset(vdx_index *ix) {
    vdx_index_nsg *s = (vdx_index_nsg *)ix;
    vdx_status st = s->storage->ops->reset(s->storage);
    if (st) return st;
    vdx_free(s->g.graph);
    s->g.graph = NULL;
    s->g.ntotal = 0;
    s->g.is_built = 0;
    s->g.enterpoint = -1;
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status nsg_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                  float *out) {
    const vdx_index_nsg *s = (const vdx_index_nsg *)ix;
    return s->storage->ops->reconstruct(s->storage, key, out);
}

static void nsg_destroy(vdx_index *ix) {
    vdx_index_nsg *s = (vdx_index_nsg *)ix;
    vdx_free(s->g.graph);
    vdx_index_free(s->storage);
    vdx_free(s);
}

#define NSG_OPS(name)                                                          \
    {name, nsg_train, nsg_add, nsg_search, NULL, nsg_reset, nsg_reconstruct,   \
     NULL, NULL, nsg_destroy}
static const vdx_index_ops nsg_flat_ops = NSG_OPS("IndexNSGFlat");
static const vdx_index_ops nsg_pq_ops = NSG_OPS("IndexNSGPQ");
static const vdx_index_ops nsg_sq_ops = NSG_OPS("IndexNSGSQ");

vdx_status vdx_nsg_make(vdx_index *storage, int kind, int R,
                        vdx_index_nsg **out) {
    *out = NULL;
    if (R < 1 || R > VDX_NSG_R_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "NSG: R=%d must be in 1..%d",
                         R, VDX_NSG_R_MAX);
    vdx_index_nsg *s = vdx_calloc(1, sizeof *s);
    if (!s) return VDX_ERR_OUT_OF_MEMORY;
    s->base.ops = kind == VDX_HNSW_FLAT ? &nsg_flat_ops
                  : kind == VDX_HNSW_PQ ? &nsg_pq_ops
                                        : &nsg_sq_ops;
    s->base.d = storage->d;
    s->base.metric = storage->metric;
    s->base.is_trained = storage->is_trained;
    s->kind = kind;
    s->storage = storage;
    s->view.base.d = storage->d;
    s->view.base.metric = storage->metric;
    s->view.kind = kind;
    s->view.storage = storage;
    s->g.R = R;
    s->g.L = R + 32;
    s->g.C = R + 100;
    s->g.search_L = 16;
    s->g.enterpoint = -1;
    /* FAISS's defaults (an IndexNSG made over a storage, as IndexNSGFlat,
     * PQ and SQ are, builds its k-NN graph with NN-descent) */
    s->GK = 64;
    s->build_type = 1;
    s->nnd_S = 10;
    s->nnd_R = 100;
    s->nnd_L = s->GK + 50;
    s->nnd_iter = 10;
    *out = s;
    return VDX_OK;
}

static vdx_status finish_new(vdx_status st, vdx_index *storage, int kind,
                             int R, vdx_index **out) {
    if (st) return st;
    vdx_index_nsg *s = NULL;
    if ((st = vdx_nsg_make(storage, kind, R, &s))) {
        vdx_index_free(storage);
        return st;
    }
    *out = &s->base;
    return VDX_OK;
}

static vdx_status check_new(int R, vdx_metric metric, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (R < 1 || R > VDX_NSG_R_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "NSG: R=%d must be in 1..%d",
                         R, VDX_NSG_R_MAX);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexNSG: metric %d is not supported (L2 or inner "
                         "product)",
                         (int)metric);
    return VDX_OK;
}

vdx_status vdx_index_nsg_flat_new(int64_t d, int R, vdx_metric metric,
                                  vdx_index **out) {
    vdx_status st = check_new(R, metric, out);
    if (st) return st;
    vdx_index *s = NULL;
    st = vdx_index_flat_new(d, metric, &s);
    if (!st) vdx_flat_drop_norms((vdx_flat *)s);
    return finish_new(st, s, VDX_HNSW_FLAT, R, out);
}

vdx_status vdx_index_nsg_pq_new(int64_t d, int64_t pq_m, int R, int nbits,
                                vdx_metric metric, vdx_index **out) {
    vdx_status st = check_new(R, metric, out);
    if (st) return st;
    vdx_index *s = NULL;
    st = vdx_index_pq_new(d, pq_m, nbits, metric, &s);
    return finish_new(st, s, VDX_HNSW_PQ, R, out);
}

vdx_status vdx_index_nsg_sq_new(int64_t d, int qtype, int R, vdx_metric metric,
                                vdx_index **out) {
    vdx_status st = check_new(R, metric, out);
    if (st) return st;
    vdx_index *s = NULL;
    st = vdx_index_sq_new(d, qtype, metric, &s);
    return finish_new(st, s, VDX_HNSW_SQ, R, out);
}

int vdx_index_is_nsg(const vdx_index *ix) { return vdx_is_nsg(ix); }

vdx_index *vdx_index_nsg_storage(const vdx_index *ix) {
    vdx_index_nsg *s = as_nsg(ix);
    return s ? s->storage : NULL;
}

vdx_status vdx_index_nsg_get(const vdx_index *ix, vdx_nsg_params *p) {
    vdx_clear_error();
    vdx_index_nsg *s = as_nsg(ix);
    if (!s || !p)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_get: not an IndexNSG or p is NULL");
    p->R = s->g.R;
    p->L = s->g.L;
    p->C = s->g.C;
    p->search_L = s->g.search_L;
    p->GK = s->GK;
    p->build_type = s->build_type;
    p->nndescent_S = s->nnd_S;
    p->nndescent_R = s->nnd_R;
    p->nndescent_L = s->nnd_L;
    p->nndescent_iter = s->nnd_iter;
    p->enterpoint = s->g.is_built ? s->g.enterpoint : -1;
    p->is_built = s->g.is_built;
    return VDX_OK;
}

vdx_status vdx_index_nsg_set(vdx_index *ix, const vdx_nsg_params *p) {
    vdx_clear_error();
    vdx_index_nsg *s = as_nsg(ix);
    if (!s || !p)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_set: not an IndexNSG or p is NULL");
    if (p->R != s->g.R)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_set: R is fixed at construction (R=%d, got %d)",
                         s->g.R, p->R);
    const int M = 1 << 20;
    if (p->L < 1 || p->L > M || p->C < 1 || p->C > M || p->search_L < 1 ||
        p->search_L > M || p->GK < 1 || p->GK > VDX_NND_K_MAX ||
        p->build_type < 0 || p->build_type > 1 || p->nndescent_S < 1 ||
        p->nndescent_S > VDX_NND_K_MAX || p->nndescent_R < 0 ||
        p->nndescent_R > VDX_NND_K_MAX || p->nndescent_L < 1 ||
        p->nndescent_L > VDX_NND_K_MAX || p->nndescent_iter < 0 ||
        p->nndescent_iter > 1000)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_set: out of range: L=%d C=%d search_L=%d (1..2^20), "
                         "GK=%d (1..%d), build_type=%d (0 or 1), nndescent "
                         "S=%d R=%d L=%d iter=%d",
                         p->L, p->C, p->search_L, p->GK, VDX_NND_K_MAX,
                         p->build_type, p->nndescent_S, p->nndescent_R,
                         p->nndescent_L, p->nndescent_iter);
    s->g.L = p->L;
    s->g.C = p->C;
    s->g.search_L = p->search_L;
    s->GK = p->GK;
    s->build_type = p->build_type;
    s->nnd_S = p->nndescent_S;
    s->nnd_R = p->nndescent_R;
    s->nnd_L = p->nndescent_L;
    s->nnd_iter = p->nndescent_iter;
    return VDX_OK;
}

vdx_status vdx_index_nsg_build(vdx_index *ix, int64_t n, const float *x,
                               const int64_t *knn, int gk) {
    vdx_clear_error();
    vdx_index_nsg *s = as_nsg(ix);
    if (!s) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "nsg_build: not an IndexNSG");
    if (s->g.is_built || ix->ntotal != 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "The IndexNSG is already built (%lld vectors; reset() "
                         "it first)",
                         (long long)ix->ntotal);
    if (n < 1 || !x || !knn)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_build: n=%lld must be >= 1, x and knn not NULL",
                         (long long)n);
    if (gk < 1 || gk > VDX_NND_K_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_build: gk=%d must be in 1..%d", gk, VDX_NND_K_MAX);
    if (!ix->is_trained)
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "%s: the index must be trained before build",
                         ix->ops->type_name);
    vdx_status st = vdx_check_vectors(x, n, ix->d, "built vectors");
    if (st) return st;
    vdx_team_begin();
    st = nsg_fill(s, n, x, knn, gk);
    vdx_team_end();
    return st;
}

vdx_status vdx_index_nsg_neighbors(const vdx_index *ix, int64_t i,
                                   int64_t *out, int *count) {
    vdx_clear_error();
    vdx_index_nsg *s = as_nsg(ix);
    if (!s || !out || !count)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_neighbors: not an IndexNSG or NULL output");
    if (!s->g.is_built || i < 0 || i >= s->g.ntotal)
        return vdx_raise(VDX_ERR_NOT_FOUND,
                         "nsg_neighbors: node %lld not in the graph (%lld nodes)",
                         (long long)i, (long long)(s->g.is_built ? s->g.ntotal : 0));
    const int32_t *r = s->g.graph + (size_t)i * (size_t)s->g.R;
    int c = 0;
    while (c < s->g.R && r[c] >= 0) {
        out[c] = r[c];
        c++;
    }
    *count = c;
    return VDX_OK;
}

vdx_status vdx_index_nsg_dfs(const vdx_index *ix, uint8_t *visited,
                             int64_t nvisited, int64_t root, int64_t cnt,
                             int64_t *count) {
    vdx_clear_error();
    vdx_index_nsg *s = as_nsg(ix);
    if (!s || !visited || !count)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_dfs: not an IndexNSG or NULL argument");
    const int64_t n = s->g.is_built ? s->g.ntotal : 0;
    if (nvisited < n)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nsg_dfs: visited table of %lld entries, the graph "
                         "has %lld nodes",
                         (long long)nvisited, (long long)n);
    if (root < 0 || root >= n)
        return vdx_raise(VDX_ERR_NOT_FOUND, "nsg_dfs: root %lld not in 0..%lld",
                         (long long)root, (long long)n - 1);
    int32_t *stack = vdx_malloc_array((size_t)n, sizeof(int32_t));
    if (!stack) return VDX_ERR_OUT_OF_MEMORY;
    const int R = s->g.R;
    int64_t sp = 0;
    if (!visited[root]) cnt++;
    visited[root] = 1;
    stack[sp++] = (int32_t)root;
    while (sp > 0) {
        const int32_t *r = s->g.graph + (size_t)stack[sp - 1] * (size_t)R;
        int32_t next = -1;
        for (int j = 0; j < R && r[j] >= 0; j++)
            if (!visited[r[j]]) {
                next = r[j];
                break;
            }
        if (next < 0) {
            sp--;
            continue;
        }
        visited[next] = 1;
        cnt++;
        stack[sp++] = next;
    }
    vdx_free(stack);
    *count = cnt;
    return VDX_OK;
}
