/*
 * nndescent.c — NN-descent (Dong, Moses & Li, "Efficient k-nearest neighbor
 * graph construction for generic similarity measures", WWW 2011) and
 * IndexNNDescentFlat, FAISS's index that searches the graph it builds.
 *
 * Build.  Every node keeps a pool of its L best candidates (a max-heap, each
 * entry flagged "new" until it has been used once), seeded with S random
 * nodes.  One iteration "joins" each node's neighbourhood — every pair of
 * its sampled new neighbours, and every new one with every old one — on
 * the premise that a neighbour of a neighbour is likely a neighbour: each
 * pair's distance is offered to both pools.  Then each node samples up to
 * S of its still-new candidates for the next join, keeps the others as old,
 * and hands itself to the reverse lists (at most R, reservoir-sampled) of
 * the candidates whose pools it is not yet close enough to enter.  After
 * `iter` iterations the K best of each pool form the k-NN graph
 * (final_graph, ntotal x K), FAISS's layout and parameters (K, S, R, L,
 * iter, search_L, random_seed).
 *
 * Search.  A best-first walk over the k-NN graph: a sorted pool of
 * max(search_L, k) entries seeded with random nodes (the same seed for
 * every query, so results are reproducible and a reloaded index answers
 * identically), expanded from its best unexpanded entry until none is left.
 *
 * The build runs on one thread: its pools are shared between nodes (a join
 * writes two of them) and the graphs this index serves are small; searches
 * run queries in parallel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsg.h"
#include "../common/threads.h"

typedef struct {
    float d;
    int32_t id;
    int32_t isnew;
} nnd_nb;

void vdx_nnd_init(vdx_nndescent *g, int K) {
    memset(g, 0, sizeof *g);
    g->K = K;
    g->S = 10;
    g->R = 100;
    g->L = K + 50;
    g->iter = 10;
    g->search_L = 0;
    g->random_seed = 2021;
}

void vdx_nnd_release(vdx_nndescent *g) {
    vdx_free(g->final_graph);
    g->final_graph = NULL;
    g->ntotal = 0;
    g->has_built = 0;
}

void vdx_nnd_sample(vdx_rng *rng, int32_t *out, int size, int N,
                    uint8_t *mark) {
    /* Floyd's algorithm: size distinct values in size draws */
    int k = 0;
    for (int j = N - size; j < N; j++) {
        int t = (int)vdx_rng_below(rng, (uint64_t)j + 1);
        if (mark[t]) t = j;
        mark[t] = 1;
        out[k++] = t;
    }
    for (int i = 0; i < k; i++) mark[out[i]] = 0;
}

/* ---- pools (max-heaps on d) ---------------------------------------------- */
static void heap_down(nnd_nb *h, int n, int i) {
    nnd_nb v = h[i];
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w;
        if (l >= n) break;
        w = (r < n && h[r].d > h[l].d) ? r : l;
        if (h[w].d <= v.d) break;
        h[i] = h[w];
        i = w;
    }
    h[i] = v;
}

static void heap_up(nnd_nb *h, int i) {
    nnd_nb v = h[i];
    while (i > 0) {
        int p = (i - 1) >> 1;
        if (h[p].d >= v.d) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static void heapify(nnd_nb *h, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) heap_down(h, n, i);
}

static int nb_cmp(const void *a, const void *b) {
    const nnd_nb *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

typedef struct {
    int n, L, S, R, ncap, ocap;
    nnd_nb *pool;
    int *np, *M;
    int32_t *nn_new, *nn_old, *rnn_new, *rnn_old;
    int *nnew, *nold, *nrnew, *nrold;
    vdx_rng rng;
} nnd_work;

static void work_free(nnd_work *w) {
    vdx_free(w->pool);
    vdx_free(w->np);
    vdx_free(w->M);
    vdx_free(w->nn_new);
    vdx_free(w->nn_old);
    vdx_free(w->rnn_new);
    vdx_free(w->rnn_old);
    vdx_free(w->nnew);
}

static vdx_status work_alloc(nnd_work *w, const vdx_nndescent *g, int n) {
    memset(w, 0, sizeof *w);
    w->n = n;
    w->L = g->L;
    w->S = g->S;
    w->R = g->R;
    /* new: the initial 2S samples, or S sampled plus R reverse ones; old:
     * up to L pool entries plus R reverse ones (then cut to 2R) */
    w->ncap = VDX_MAX(2 * g->S, g->S + g->R);
    w->ocap = g->L + g->R;
    size_t N = (size_t)n;
    w->pool = vdx_malloc_array(N * (size_t)g->L, sizeof(nnd_nb));
    w->np = vdx_calloc(N, sizeof(int));
    w->M = vdx_calloc(N, sizeof(int));
    w->nn_new = vdx_malloc_array(N * (size_t)w->ncap, sizeof(int32_t));
    w->nn_old = vdx_malloc_array(N * (size_t)w->ocap, sizeof(int32_t));
    w->rnn_new = vdx_malloc_array(N * (size_t)VDX_MAX(g->R, 1), sizeof(int32_t));
    w->rnn_old = vdx_malloc_array(N * (size_t)VDX_MAX(g->R, 1), sizeof(int32_t));
    w->nnew = vdx_calloc(4 * N, sizeof(int));
    if (!w->pool || !w->np || !w->M || !w->nn_new || !w->nn_old ||
        !w->rnn_new || !w->rnn_old || !w->nnew) {
        work_free(w);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    w->nold = w->nnew + N;
    w->nrnew = w->nold + N;
    w->nrold = w->nrnew + N;
    return VDX_OK;
}

/* Offers (id, d) to node i's pool. */
static void pool_insert(nnd_work *w, int i, int32_t id, float d) {
    nnd_nb *p = w->pool + (size_t)i * (size_t)w->L;
    int c = w->np[i];
    if (c == w->L && d >= p[0].d) return;
    for (int j = 0; j < c; j++)
        if (p[j].id == id) return;
    nnd_nb v = {d, id, 1};
    if (c < w->L) {
        p[c] = v;
        heap_up(p, c);
        w->np[i] = c + 1;
    } else {
        p[0] = v;
        heap_down(p, c, 0);
    }
}

static void join(nnd_work *w, vdx_hnsw_dc *dc) {
    for (int v = 0; v < w->n; v++) {
        const int32_t *nw = w->nn_new + (size_t)v * (size_t)w->ncap;
        const int32_t *od = w->nn_old + (size_t)v * (size_t)w->ocap;
        int cn = w->nnew[v], co = w->nold[v];
        for (int a = 0; a < cn; a++) {
            int32_t i = nw[a];
            for (int b = 0; b < cn; b++) {
                int32_t j = nw[b];
                if (i >= j) continue;
                float d = vdx_hnsw_dc_sym(dc, i, j);
                pool_insert(w, i, j, d);
                pool_insert(w, j, i, d);
            }
            for (int b = 0; b < co; b++) {
                int32_t j = od[b];
                if (i == j) continue;
                float d = vdx_hnsw_dc_sym(dc, i, j);
                pool_insert(w, i, j, d);
                pool_insert(w, j, i, d);
            }
        }
    }
}

static void reverse_add(nnd_work *w, int32_t *lists, int *counts, int other,
                        int32_t id) {
    if (w->R <= 0) return;
    int32_t *l = lists + (size_t)other * (size_t)w->R;
    if (counts[other] < w->R) l[counts[other]++] = id;
    else l[vdx_rng_below(&w->rng, (uint64_t)w->R)] = id;
}

static void update(nnd_work *w) {
    const int n = w->n, L = w->L, S = w->S;
    for (int i = 0; i < n; i++) {
        nnd_nb *p = w->pool + (size_t)i * (size_t)L;
        int c = w->np[i];
        w->nnew[i] = w->nold[i] = 0;
        qsort(p, (size_t)c, sizeof *p, nb_cmp);
        /* the next join samples at most S new candidates, from a prefix
         * that grows by S per iteration */
        int maxl = VDX_MIN(w->M[i] + S, c), l = 0, cnt = 0;
        while (l < maxl && cnt < S) {
            if (p[l].isnew) cnt++;
            l++;
        }
        w->M[i] = l;
    }
    for (int i = 0; i < n; i++) {
        nnd_nb *p = w->pool + (size_t)i * (size_t)L;
        int32_t *nw = w->nn_new + (size_t)i * (size_t)w->ncap;
        int32_t *od = w->nn_old + (size_t)i * (size_t)w->ocap;
        for (int l = 0; l < w->M[i]; l++) {
            int other = p[l].id;
            const nnd_nb *op = w->pool + (size_t)other * (size_t)L;
            float oworst = w->np[other] ? op[w->np[other] - 1].d : INFINITY;
            if (p[l].isnew) {
                nw[w->nnew[i]++] = other;
                if (p[l].d > oworst)
                    reverse_add(w, w->rnn_new, w->nrnew, other, i);
                p[l].isnew = 0;
            } else {
                od[w->nold[i]++] = other;
                if (p[l].d > oworst)
                    reverse_add(w, w->rnn_old, w->nrold, other, i);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        heapify(w->pool + (size_t)i * (size_t)L, w->np[i]);
        int32_t *nw = w->nn_new + (size_t)i * (size_t)w->ncap;
        int32_t *od = w->nn_old + (size_t)i * (size_t)w->ocap;
        const int32_t *rn = w->rnn_new + (size_t)i * (size_t)VDX_MAX(w->R, 1);
        const int32_t *ro = w->rnn_old + (size_t)i * (size_t)VDX_MAX(w->R, 1);
        for (int j = 0; j < w->nrnew[i] && w->nnew[i] < w->ncap; j++)
            nw[w->nnew[i]++] = rn[j];
        for (int j = 0; j < w->nrold[i] && w->nold[i] < w->ocap; j++)
            od[w->nold[i]++] = ro[j];
        if (w->nold[i] > 2 * w->R) w->nold[i] = 2 * w->R;
        w->nrnew[i] = w->nrold[i] = 0;
    }
}

vdx_status vdx_nnd_build(vdx_nndescent *g, const vdx_index_hnsw *view,
                         int64_t n64) {
    if (n64 <= VDX_NND_MIN_N)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent.build cannot build a graph smaller than "
                         "%d nodes (got %lld)",
                         VDX_NND_MIN_N + 1, (long long)n64);
    if (n64 > INT32_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent: ntotal=%lld exceeds 2^31 - 1 nodes",
                         (long long)n64);
    if (g->L < g->K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent: L=%d should be >= K=%d", g->L, g->K);
    if (g->K >= n64)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent: K=%d must be smaller than ntotal=%lld",
                         g->K, (long long)n64);
    if (g->S < 1 || g->R < 0 || g->iter < 0)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent: S=%d must be >= 1, R=%d and iter=%d >= 0",
                         g->S, g->R, g->iter);
    const int n = (int)n64;
    nnd_work w;
    vdx_status st = work_alloc(&w, g, n);
    if (st) return st;
    vdx_hnsw_dc dc;
    uint8_t *mark = vdx_calloc((size_t)n, 1);
    int32_t *tmp = vdx_malloc_array((size_t)w.ncap + (size_t)g->S, sizeof(int32_t));
    int32_t *fg = vdx_malloc_array((size_t)n * (size_t)g->K, sizeof(int32_t));
    if (!mark || !tmp || !fg || (st = vdx_hnsw_dc_init(&dc, view))) {
        if (!st) st = VDX_ERR_OUT_OF_MEMORY;
        else fg = (vdx_free(fg), NULL);
        vdx_free(mark);
        vdx_free(tmp);
        vdx_free(fg);
        work_free(&w);
        return st;
    }
    vdx_rng_seed(&w.rng, (uint64_t)(uint32_t)g->random_seed * 6007u + 1);
    const int ns = VDX_MIN(g->S, n), nn0 = VDX_MIN(2 * g->S, n);
    for (int i = 0; i < n; i++) {
        vdx_nnd_sample(&w.rng, w.nn_new + (size_t)i * (size_t)w.ncap, nn0, n,
                       mark);
        w.nnew[i] = nn0;
        w.M[i] = g->S;
        vdx_nnd_sample(&w.rng, tmp, ns, n, mark);
        for (int j = 0; j < ns; j++)
            if (tmp[j] != i)
                pool_insert(&w, i, tmp[j], vdx_hnsw_dc_sym(&dc, i, tmp[j]));
    }
    for (int it = 0; it < g->iter; it++) {
        join(&w, &dc);
        update(&w);
    }
    for (int i = 0; i < n; i++) {
        nnd_nb *p = w.pool + (size_t)i * (size_t)w.L;
        qsort(p, (size_t)w.np[i], sizeof *p, nb_cmp);
        for (int j = 0; j < g->K; j++)
            fg[(size_t)i * (size_t)g->K + (size_t)j] = j < w.np[i] ? p[j].id : -1;
    }
    vdx_hnsw_dc_free(&dc);
    vdx_free(mark);
    vdx_free(tmp);
    work_free(&w);
    vdx_free(g->final_graph);
    g->final_graph = fg;
    g->ntotal = n;
    g->has_built = 1;
    return VDX_OK;
}

/* ---- IndexNNDescentFlat ------------------------------------------------------ */
static const vdx_index_ops nnd_flat_ops;

int vdx_is_nnd(const vdx_index *ix) { return ix && ix->ops == &nnd_flat_ops; }

static vdx_status nnd_add(vdx_index *ix, int64_t n, const float *x,
                          const vdx_idx_t *ids) {
    vdx_index_nnd *m = (vdx_index_nnd *)ix;
    if (ids)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "add_with_ids is not supported by %s: wrap it in "
                         "IndexIDMap",
                         ix->ops->type_name);
    int64_t n0 = m->storage->ntotal;
    if (n0 + n <= VDX_NND_MIN_N)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent.build cannot build a graph smaller than "
                         "%d nodes (ntotal would be %lld)",
                         VDX_NND_MIN_N + 1, (long long)(n0 + n));
    vdx_status st = m->storage->ops->add(m->storage, n, x, NULL);
    if (st) return st;
    /* as FAISS: a second add rebuilds the graph over all the vectors */
    st = vdx_nnd_build(&m->g, &m->view, m->storage->ntotal);
    if (st) {
        /* all or nothing: drop the vectors just added */
        vdx_selector *sel = NULL;
        int64_t nr;
        if (!vdx_selector_range(n0, n0 + n, &sel)) {
            m->storage->ops->remove_ids(m->storage, sel, &nr);
            vdx_selector_free(sel);
        }
        return st;
    }
    ix->ntotal = m->storage->ntotal;
    return VDX_OK;
}

/* The walk of one query: pool (cap + 1 entries), vis (epoch tags), mark
 * (zeroed bytes for sampling). */
static void nnd_search_one(const vdx_index_nnd *m, vdx_hnsw_dc *dc, int64_t k,
                           nnd_nb *pool, uint32_t *vis, uint32_t tag,
                           uint8_t *mark, int32_t *init, float *D,
                           vdx_idx_t *I) {
    const vdx_nndescent *g = &m->g;
    const int n = (int)g->ntotal, K = g->K;
    int L = (int)VDX_MIN((int64_t)VDX_MAX(g->search_L, (int)VDX_MIN(k, n)), n);
    vdx_rng rng;
    vdx_rng_seed(&rng, (uint64_t)(uint32_t)g->random_seed + 1);
    vdx_nnd_sample(&rng, init, L, n, mark);
    for (int i = 0; i < L; i++) {
        pool[i].id = init[i];
        pool[i].d = vdx_hnsw_dc_dist(dc, init[i]);
        pool[i].isnew = 1;
        vis[init[i]] = tag;
    }
    qsort(pool, (size_t)L, sizeof *pool, nb_cmp);
    int c = 0;
    while (c < L) {
        int nk = L;
        if (pool[c].isnew) {
            pool[c].isnew = 0;
            const int32_t *row = g->final_graph + (size_t)pool[c].id * (size_t)K;
            for (int j = 0; j < K; j++) {
                int32_t id = row[j];
                if (id < 0 || vis[id] == tag) continue;
                vis[id] = tag;
                float d = vdx_hnsw_dc_dist(dc, id);
                if (d >= pool[L - 1].d) continue;
                /* insertion point: after every entry <= d */
                int lo = 0, hi = L - 1;
                while (lo < hi) {
                    int mid = (lo + hi) / 2;
                    if (pool[mid].d <= d) lo = mid + 1;
                    else hi = mid;
                }
                memmove(pool + lo + 1, pool + lo,
                        (size_t)(L - 1 - lo) * sizeof *pool);
                pool[lo].id = id;
                pool[lo].d = d;
                pool[lo].isnew = 1;
                if (lo < nk) nk = lo;
            }
        }
        c = nk <= c ? nk : c + 1;
    }
    const int ip = m->base.metric == VDX_METRIC_INNER_PRODUCT;
    for (int64_t i = 0; i < k; i++) {
        if (i < L) {
            I[i] = pool[i].id;
            D[i] = ip ? -pool[i].d : pool[i].d;
        } else {
            I[i] = -1;
            D[i] = ip ? -INFINITY : INFINITY;
        }
    }
}

static vdx_status nnd_search(const vdx_index *ix, int64_t n, const float *x,
                             int64_t k, const vdx_search_params *p, float *D,
                             vdx_idx_t *I) {
    const vdx_index_nnd *m = (const vdx_index_nnd *)ix;
    if (p && p->sel)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "%s: search with a selector is not supported",
                         ix->ops->type_name);
    const vdx_nndescent *g = &m->g;
    if (!g->has_built || g->ntotal == 0) {
        for (int64_t i = 0; i < n * k; i++) {
            I[i] = -1;
            D[i] = ix->metric == VDX_METRIC_INNER_PRODUCT ? -INFINITY : INFINITY;
        }
        return VDX_OK;
    }
    const int64_t L = VDX_MIN(VDX_MAX((int64_t)g->search_L, k), g->ntotal);
    vdx_status st = VDX_OK;
    const int nthreads = vdx_nthreads_for((double)n * (double)ix->d / 8 *
                                          (double)L * (double)g->K);
#pragma omp parallel if (n > 1 && nthreads > 1) num_threads(nthreads)
    {
        vdx_hnsw_dc dc;
        vdx_status lst = vdx_hnsw_dc_init(&dc, &m->view);
        nnd_nb *pool = vdx_malloc_array((size_t)L + 1, sizeof *pool);
        int32_t *init = vdx_malloc_array((size_t)L, sizeof *init);
        uint32_t *vis = vdx_calloc((size_t)g->ntotal, sizeof *vis);
        uint8_t *mark = vdx_calloc((size_t)g->ntotal, 1);
        if (!lst && (!pool || !init || !vis || !mark)) lst = VDX_ERR_OUT_OF_MEMORY;
        if (lst) {
#pragma omp atomic write
            st = lst;
        }
        uint32_t tag = 0;
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < n; q++) {
            if (lst) continue;
            vdx_hnsw_dc_set_query(&dc, x + q * ix->d);
            nnd_search_one(m, &dc, k, pool, vis, ++tag, mark, init, D + q * k,
                           I + q * k);
        }
        if (!lst) vdx_hnsw_dc_free(&dc);
        vdx_free(pool);
        vdx_free(init);
        vdx_free(vis);
        vdx_free(mark);
    }
    return st;
}

static vdx_status nnd_reset(vdx_index *ix) {
    vdx_index_nnd *m = (vdx_index_nnd *)ix;
    vdx_status st = m->storage->ops->reset(m->storage);
    if (st) return st;
    vdx_nnd_release(&m->g);
    ix->ntotal = 0;
    return VDX_OK;
}

static vdx_status nnd_reconstruct(const vdx_index *ix, vdx_idx_t key,
                                  float *out) {
    const vdx_index_nnd *m = (const vdx_index_nnd *)ix;
    return m->storage->ops->reconstruct(m->storage, key, out);
}

static void nnd_destroy(vdx_index *ix) {
    vdx_index_nnd *m = (vdx_index_nnd *)ix;
    vdx_nnd_release(&m->g);
    vdx_index_free(m->storage);
    vdx_free(m);
}

static const vdx_index_ops nnd_flat_ops = {
    "IndexNNDescentFlat", NULL, nnd_add, nnd_search, NULL, nnd_reset,
    nnd_reconstruct, NULL, NULL, nnd_destroy};

vdx_status vdx_nnd_make(vdx_index *storage, int K, vdx_index_nnd **out) {
    *out = NULL;
    if (K < 1 || K > VDX_NND_K_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent: K=%d must be in 1..%d", K, VDX_NND_K_MAX);
    vdx_index_nnd *m = vdx_calloc(1, sizeof *m);
    if (!m) return VDX_ERR_OUT_OF_MEMORY;
    m->base.ops = &nnd_flat_ops;
    m->base.d = storage->d;
    m->base.metric = storage->metric;
    m->base.is_trained = 1;
    m->base.ntotal = storage->ntotal;
    m->storage = storage;
    m->view.base.d = storage->d;
    m->view.base.metric = storage->metric;
    m->view.kind = VDX_HNSW_FLAT;
    m->view.storage = storage;
    vdx_nnd_init(&m->g, K);
    *out = m;
    return VDX_OK;
}

static vdx_index_nnd *as_nnd(const vdx_index *ix) {
    return vdx_is_nnd(ix) ? (vdx_index_nnd *)ix : NULL;
}

vdx_status vdx_index_nndescent_flat_new(int64_t d, int K, vdx_metric metric,
                                        vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "IndexNNDescentFlat: metric %d is not supported (L2 "
                         "or inner product)",
                         (int)metric);
    if (K < 1 || K > VDX_NND_K_MAX)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "NNDescent: K=%d must be in 1..%d", K, VDX_NND_K_MAX);
    vdx_index *s = NULL;
    vdx_status st = vdx_index_flat_new(d, metric, &s);
    if (st) return st;
    vdx_flat_drop_norms((vdx_flat *)s);
    vdx_index_nnd *m = NULL;
    if ((st = vdx_nnd_make(s, K, &m))) {
        vdx_index_free(s);
        return st;
    }
    *out = &m->base;
    return VDX_OK;
}

int vdx_index_is_nndescent(const vdx_index *ix) { return vdx_is_nnd(ix); }

vdx_index *vdx_index_nndescent_storage(const vdx_index *ix) {
    vdx_index_nnd *m = as_nnd(ix);
    return m ? m->storage : NULL;
}

vdx_status vdx_index_nndescent_get(const vdx_index *ix, vdx_nndescent_params *p) {
    vdx_clear_error();
    vdx_index_nnd *m = as_nnd(ix);
    if (!m || !p)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nndescent_get: not an IndexNNDescent or p is NULL");
    p->K = m->g.K;
    p->S = m->g.S;
    p->R = m->g.R;
    p->L = m->g.L;
    p->iter = m->g.iter;
    p->search_L = m->g.search_L;
    p->random_seed = m->g.random_seed;
    p->has_built = m->g.has_built;
    return VDX_OK;
}

vdx_status vdx_index_nndescent_set(vdx_index *ix, const vdx_nndescent_params *p) {
    vdx_clear_error();
    vdx_index_nnd *m = as_nnd(ix);
    if (!m || !p)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nndescent_set: not an IndexNNDescent or p is NULL");
    if (p->K != m->g.K)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nndescent_set: K is fixed at construction (K=%d, "
                         "got %d)",
                         m->g.K, p->K);
    if (p->S < 1 || p->S > VDX_NND_K_MAX || p->R < 0 || p->R > VDX_NND_K_MAX ||
        p->L < 1 || p->L > VDX_NND_K_MAX || p->iter < 0 || p->iter > 1000 ||
        p->search_L < 0 || p->search_L > (1 << 24))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nndescent_set: S=%d, R=%d, L=%d, iter=%d, "
                         "search_L=%d out of range (S, L in 1..%d, R in 0..%d, "
                         "iter in 0..1000, search_L in 0..2^24)",
                         p->S, p->R, p->L, p->iter, p->search_L, VDX_NND_K_MAX,
                         VDX_NND_K_MAX);
    m->g.S = p->S;
    m->g.R = p->R;
    m->g.L = p->L;
    m->g.iter = p->iter;
    m->g.search_L = p->search_L;
    m->g.random_seed = p->random_seed;
    return VDX_OK;
}

vdx_status vdx_index_nndescent_graph(const vdx_index *ix, int32_t *out,
                                     int64_t cap, int64_t *len) {
    vdx_clear_error();
    vdx_index_nnd *m = as_nnd(ix);
    if (!m || !len)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nndescent_graph: not an IndexNNDescent or len is NULL");
    int64_t need = m->g.has_built ? m->g.ntotal * m->g.K : 0;
    *len = need;
    if (!out) return VDX_OK;
    if (cap < need)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "nndescent_graph: buffer of %lld entries, need %lld",
                         (long long)cap, (long long)need);
    if (need) memcpy(out, m->g.final_graph, (size_t)need * sizeof(int32_t));
    return VDX_OK;
}
