/*
 * hnsw_build.c — insertion into the HNSW graph (alg. 1 of Malkov &
 * Yashunin) and removal with repair.
 *
 * Insertion of node x at level L: greedy descent (beam 1) from the entry
 * point to level L + 1, then on each level l <= L a beam search of
 * efConstruction nodes whose result is pruned by the neighbour-selection
 * heuristic (hnsw.c) to at most degree(l) links (2M on level 0, M above, as
 * FAISS); each chosen neighbour gets a back link to x, its list re-pruned by
 * the heuristic when full.
 *
 * Parallel insertion (hnswlib's scheme): nodes are inserted by an OpenMP
 * team; each node has a one-byte spin lock held while its lists are read
 * or written, so a thread copies a list under the lock and scores it
 * outside; a node whose level exceeds the current top holds a global mutex
 * during its insertion, so the entry point changes under it only.  Levels
 * are drawn beforehand from the seeded generator in id order, and nodes
 * are inserted as FAISS inserts them, highest level first, shuffled within
 * a level by a seeded generator, so a one-thread build is deterministic.
 *
 * Removal: deleted nodes are dropped from the graph.  Every surviving node
 * that linked to a deleted one rebuilds that level's list with the
 * heuristic from its surviving neighbours and the survivors reached through
 * its deleted neighbours (the deleted nodes' "bridges", crossed breadth-
 * first through chains of deleted nodes), then the graph is compacted so
 * ids shift down as IndexFlat's remove_ids shifts them.  Once 40% of the
 * nodes have been removed since the graph was built, repairs would patch a
 * graph made mostly of holes, so the links are rebuilt over the survivors
 * instead (VDX_HNSW_REBUILD_PCT).
 */
#include <omp.h>
#include <string.h>

#include "hnsw.h"
#include "common/interrupt.h"
#include "common/threads.h"

static inline void node_lock(uint8_t *l) {
    while (__atomic_test_and_set(l, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
}
static inline void node_unlock(uint8_t *l) { __atomic_clear(l, __ATOMIC_RELEASE); }

/* Per-thread build state. */
typedef struct build_ctx {
    vdx_hnsw_dc dc;
    uint32_t *vis; /* epoch tags over all nodes */
    uint32_t epoch;
    vdx_hnsw_cand *cand, *res, *sel;
    int candcap, rescap;
    int32_t *links; /* copy of one list */
    float *keys;    /* their distances */
} build_ctx;

static vdx_status bctx_init(build_ctx *c, const vdx_index_hnsw *h) {
    memset(c, 0, sizeof *c);
    vdx_status st = vdx_hnsw_dc_init(&c->dc, h);
    if (st) return st;
    int ef = VDX_MAX(h->g.efConstruction, 1);
    int deg = 2 * h->g.M;
    c->vis = vdx_calloc((size_t)VDX_MAX(h->g.n, 1), sizeof(uint32_t));
    c->candcap = ef + deg + 64;
    c->rescap = ef + deg + 2;
    c->cand = vdx_malloc_array((size_t)c->candcap, sizeof(vdx_hnsw_cand));
    c->res = vdx_malloc_array((size_t)c->rescap, sizeof(vdx_hnsw_cand));
    c->sel = vdx_malloc_array((size_t)(deg + 2), sizeof(vdx_hnsw_cand));
    c->links = vdx_malloc_array((size_t)(deg + 2), sizeof(int32_t));
    c->keys = vdx_malloc_array((size_t)(deg + 2), sizeof(float));
    if (!c->vis || !c->cand || !c->res || !c->sel || !c->links || !c->keys)
        return VDX_ERR_OUT_OF_MEMORY;
    return VDX_OK;
}

static void bctx_free(build_ctx *c) {
    vdx_hnsw_dc_free(&c->dc);
    vdx_free(c->vis);
    vdx_free(c->cand);
    vdx_free(c->res);
    vdx_free(c->sel);
    vdx_free(c->links);
    vdx_free(c->keys);
}

/* Copies node i's list at level l under its lock; returns the count. */
static int copy_links(vdx_hnsw *g, int64_t i, int l, int32_t *out) {
    node_lock(vdx_hnsw_lock(g, i));
    const int32_t *row = vdx_hnsw_row(g, i, l);
    int cnt = row[0];
    memcpy(out, row + 1, (size_t)cnt * sizeof(int32_t));
    node_unlock(vdx_hnsw_lock(g, i));
    return cnt;
}

/* Heaps over vdx_hnsw_cand (same as hnsw.c's, kept local to stay inline). */
static inline void hpush(vdx_hnsw_cand *h, int *n, vdx_hnsw_cand v, int max) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) >> 1;
        if (max ? h[p].d >= v.d : h[p].d <= v.d) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}
static inline void hpop(vdx_hnsw_cand *h, int *n, int max) {
    vdx_hnsw_cand v = h[--(*n)];
    int i = 0, m = *n;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w;
        if (l >= m) break;
        if (max) {
            w = (r < m && h[r].d > h[l].d) ? r : l;
            if (h[w].d <= v.d) break;
        } else {
            w = (r < m && h[r].d < h[l].d) ? r : l;
            if (h[w].d >= v.d) break;
        }
        h[i] = h[w];
        i = w;
    }
    if (m) h[i] = v;
}

/* Beam search of level l from ep with beam ef; the results (a max-heap of
 * at most ef) are left in c->res; returns their count. */
static int search_layer(vdx_hnsw *g, build_ctx *c, vdx_hnsw_cand ep, int l,
                        int ef) {
    if (++c->epoch == 0) {
        memset(c->vis, 0, (size_t)g->n * sizeof(uint32_t));
        c->epoch = 1;
    }
    int nc = 0, nr = 0;
    c->vis[ep.id] = c->epoch;
    hpush(c->cand, &nc, ep, 0);
    hpush(c->res, &nr, ep, 1);
    while (nc > 0) {
        vdx_hnsw_cand cur = c->cand[0];
        if (nr == ef && cur.d > c->res[0].d) break;
        hpop(c->cand, &nc, 0);
        int cnt = copy_links(g, cur.id, l, c->links), m = 0;
        for (int j = 0; j < cnt; j++) {
            int32_t nb = c->links[j];
            if (c->vis[nb] == c->epoch) continue;
            c->vis[nb] = c->epoch;
            c->links[m++] = nb;
        }
        vdx_hnsw_dc_keys(&c->dc, c->links, m, c->keys);
        for (int j = 0; j < m; j++) {
            int32_t nb = c->links[j];
            float d = c->keys[j];
            if (nr < ef || d < c->res[0].d) {
                vdx_hnsw_cand v = {d, nb};
                if (nc == c->candcap) { /* the ef bound keeps this rare */
                    int ncap = c->candcap * 2;
                    vdx_hnsw_cand *p =
                        vdx_realloc_array(c->cand, (size_t)ncap, sizeof *p);
                    if (!p) return -1;
                    c->cand = p;
                    c->candcap = ncap;
                }
                hpush(c->cand, &nc, v, 0);
                if (nr == ef) hpop(c->res, &nr, 1);
                hpush(c->res, &nr, v, 1);
            }
        }
    }
    return nr;
}

/* Adds link src -> dst at level l (src locked by the caller), re-pruning
 * src's list when it is full. */
static void add_link(vdx_hnsw *g, build_ctx *c, int32_t src, int32_t dst,
                     int l) {
    int32_t *row = vdx_hnsw_row(g, src, l);
    int max = vdx_hnsw_degree(g, l), cnt = row[0];
    for (int j = 1; j <= cnt; j++)
        if (row[j] == dst) return;
    if (cnt < max) {
        row[1 + cnt] = dst;
        row[0] = cnt + 1;
        return;
    }
    vdx_hnsw_cand *s = c->sel;
    vdx_hnsw_dc_sym_keys(&c->dc, src, row + 1, cnt, c->keys);
    for (int j = 0; j < cnt; j++) {
        s[j].id = row[1 + j];
        s[j].d = c->keys[j];
    }
    s[cnt].id = dst;
    s[cnt].d = vdx_hnsw_dc_sym(&c->dc, src, dst);
    vdx_hnsw_sort_cands(s, cnt + 1);
    int kept = vdx_hnsw_select(&c->dc, s, cnt + 1, max);
    for (int j = 0; j < kept; j++) row[1 + j] = s[j].id;
    row[0] = kept;
}

typedef struct build_shared {
    omp_lock_t top; /* entry point / max level */
} build_shared;

static vdx_status insert_one(vdx_index_hnsw *h, build_ctx *c,
                             build_shared *bs, int32_t id, const float *x) {
    vdx_hnsw *g = &h->g;
    int L = g->levels[id];
    omp_set_lock(&bs->top);
    int maxl = g->max_level;
    int32_t ep = g->entry_point;
    int hold = L > maxl;
    if (ep < 0) { /* the first node */
        g->entry_point = id;
        g->max_level = L;
        omp_unset_lock(&bs->top);
        return VDX_OK;
    }
    if (!hold) omp_unset_lock(&bs->top);

    vdx_hnsw_dc_set_query(&c->dc, x);
    vdx_hnsw_cand cur = {vdx_hnsw_dc_dist(&c->dc, ep), ep};
    for (int l = maxl; l > L; l--) {
        for (int moved = 1; moved;) {
            moved = 0;
            int cnt = copy_links(g, cur.id, l, c->links);
            for (int j = 0; j < cnt; j++) {
                float d = vdx_hnsw_dc_dist(&c->dc, c->links[j]);
                if (d < cur.d) {
                    cur.d = d;
                    cur.id = c->links[j];
                    moved = 1;
                }
            }
        }
    }
    int ef = VDX_MAX(g->efConstruction, 1);
    for (int l = VDX_MIN(L, maxl); l >= 0; l--) {
        int nr = search_layer(g, c, cur, l, ef);
        if (nr < 0) {
            if (hold) omp_unset_lock(&bs->top);
            return VDX_ERR_OUT_OF_MEMORY;
        }
        /* the results, nearest first, without the node itself */
        vdx_hnsw_cand *r = c->res;
        int m = 0;
        for (int i = 0; i < nr; i++)
            if (r[i].id != id) r[m++] = r[i];
        vdx_hnsw_sort_cands(r, m);
        if (m) cur = r[0];
        int kept = vdx_hnsw_select(&c->dc, r, m, vdx_hnsw_degree(g, l));
        node_lock(vdx_hnsw_lock(g, id));
        int32_t *row = vdx_hnsw_row(g, id, l);
        for (int j = 0; j < kept; j++) row[1 + j] = r[j].id;
        row[0] = kept;
        node_unlock(vdx_hnsw_lock(g, id));
        for (int j = 0; j < kept; j++) {
            int32_t nb = r[j].id;
            node_lock(vdx_hnsw_lock(g, nb));
            add_link(g, c, nb, id, l);
            node_unlock(vdx_hnsw_lock(g, nb));
        }
    }
    if (hold) {
        g->max_level = L;
        g->entry_point = id;
        omp_unset_lock(&bs->top);
    }
    return VDX_OK;
}

/* Inserts nodes [n0, g->n) except those with skip[i] set (skip may be
 * NULL); node i's vector is x + row * d with row = xrow[i] when xrow is
 * given, else i - n0. */
/* interruptible: poll the interrupt handler between nodes (an add, which
 * its caller rolls back; never a rebuild, which must finish) */
/* nodes linked by one thread before the team starts (see insert_nodes) */
#define VDX_HNSW_SERIAL_NODES 1024

static vdx_status insert_nodes(vdx_index_hnsw *h, int64_t n0, const float *x,
                               const uint8_t *skip, const int32_t *xrow,
                               int interruptible) {
    vdx_hnsw *g = &h->g;
    const int64_t n1 = g->n, d = h->base.d;
    if (n1 <= n0) return VDX_OK;
    build_shared bs;
    omp_init_lock(&bs.top);
    vdx_status st = VDX_OK;
    /* FAISS's insertion order: the highest levels first, so that the hubs
     * are linked among hubs before the crowd arrives (at d = 384 this gave
     * the recall of FAISS's graph at the same efSearch, which id order did
     * not), shuffled within a level by a seeded generator (deterministic) */
    int64_t cnt = 0;
    for (int64_t i = n0; i < n1; i++) cnt += !(skip && skip[i]);
    if (cnt == 0) {
        omp_destroy_lock(&bs.top);
        return VDX_OK;
    }
    int32_t *order = vdx_malloc_array((size_t)cnt, sizeof(int32_t));
    if (!order) {
        omp_destroy_lock(&bs.top);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    {
        int64_t pos[129] = {0};
        for (int64_t i = n0; i < n1; i++)
            if (!(skip && skip[i])) pos[g->levels[i] + 1]++;
        /* bucket starts, level 127 first */
        int64_t acc = 0;
        for (int L = 127; L >= 0; L--) {
            int64_t c = pos[L + 1];
            pos[L + 1] = acc;
            acc += c;
        }
        for (int64_t i = n0; i < n1; i++)
            if (!(skip && skip[i])) order[pos[g->levels[i] + 1]++] = (int32_t)i;
        uint64_t rs = 789;
        for (int64_t b0 = 0; b0 < cnt;) {
            int64_t b1 = b0;
            while (b1 < cnt && g->levels[order[b1]] == g->levels[order[b0]]) b1++;
            for (int64_t i = b1 - 1; i > b0; i--) { /* Fisher-Yates */
                rs += 0x9E3779B97F4A7C15ull; /* splitmix64 */
                uint64_t z = rs;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                z ^= z >> 31;
                int64_t j = b0 + (int64_t)(z % (uint64_t)(i - b0 + 1));
                int32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            b0 = b1;
        }
    }
    /* the first node alone, so that the team starts from a graph */
    int64_t start = 0;
    if (g->entry_point < 0) {
        g->entry_point = order[0];
        g->max_level = g->levels[order[0]];
        start = 1;
    }
    int stop = 0; /* the interrupt handler asked to stop */
    /* While the graph is small, one thread links the nodes: concurrent
     * inserts into a graph of a few nodes do not see each other and leave
     * poorer lists (recall of a 37-node rebuild at efSearch 32 varied
     * 0.95-1.0 with the threads' interleaving), and there is no speed to
     * gain there. */
    const int64_t warm = VDX_MIN(cnt, VDX_MAX(start, VDX_HNSW_SERIAL_NODES - n0));
    if (warm > start) {
        build_ctx c;
        st = bctx_init(&c, h);
        for (int64_t j = start; j < warm && !st; j++) {
            if (interruptible && vdx_poll_stop(&stop)) break;
            const int32_t i = order[j];
            const int64_t row = xrow ? xrow[i] : i - n0;
            st = insert_one(h, &c, &bs, i, x + row * d);
        }
        bctx_free(&c);
        start = warm;
    }
    /* an insertion walks about efConstruction * 2M neighbours of d/8 SIMD
     * steps: a few vectors (a store's adds) stay on this thread */
    const double ins_work = (double)VDX_MAX(g->efConstruction, 1) * 2.0 *
                            (double)g->M * (double)h->base.d / 8;
    int nth = (int)VDX_MIN((int64_t)vdx_nthreads_for((double)(cnt - start) * ins_work),
                           VDX_MAX(cnt - start, 1));
    if (st || stop) start = cnt; /* the team has nothing to do */
#pragma omp parallel num_threads(nth) if (start < cnt)
    {
        build_ctx c;
        vdx_status lst = bctx_init(&c, h);
        if (lst) {
#pragma omp atomic write
            st = lst;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t j = start; j < cnt; j++) {
            if (lst || (interruptible && vdx_poll_stop(&stop))) continue;
            const int32_t i = order[j];
            const int64_t row = xrow ? xrow[i] : i - n0;
            lst = insert_one(h, &c, &bs, i, x + row * d);
            if (lst) {
#pragma omp atomic write
                st = lst;
            }
        }
        bctx_free(&c);
    }
    vdx_free(order);
    omp_destroy_lock(&bs.top);
    if (!st && stop)
        st = vdx_raise(VDX_ERR_INTERRUPTED,
                       "HNSW add of %lld vectors interrupted", (long long)cnt);
    return st;
}

vdx_status vdx_hnsw_insert(vdx_index_hnsw *h, int64_t n0, const float *x) {
    vdx_status st = vdx_hnsw_own(&h->g); /* a mapped graph is copied first */
    if (st) return st;
    return insert_nodes(h, n0, x, NULL, NULL, 1);
}

/* ---- removal ------------------------------------------------------------------- */

/* Share of a graph's nodes (percent) that may be removed, summed over
 * removals since it was built, before removal rebuilds the links over the
 * survivors instead of repairing them.  Repairs keep recall@10 with a fresh
 * build's up to ~30% at M = 8 (20k x d=32 uniform, efSearch 32: 0.652 vs
 * 0.662) and up to 70% at M = 16, but fall behind beyond at small M (50%:
 * 0.681 vs 0.724; 90%: 0.753 vs 0.884; 99%: 0.65 vs 1.0 on 4k clustered),
 * while a rebuild costs the insertion of the survivors. */
#define VDX_HNSW_REBUILD_PCT 40

/* Repair budgets, per surviving node and level, for a list of degree deg:
 * survivors gathered as candidates (as many as the list and its deleted
 * neighbours' lists hold), and deleted nodes crossed to reach them when
 * the deleted neighbours' own lists do not refill the list. */
#define REPAIR_CANDS(deg) ((deg) * ((deg) + 1))
#define REPAIR_CROSS(deg) (4 * (deg))

/* Repairs in place every list of a surviving node that names a deleted
 * node.  The candidates are the node's surviving neighbours and the
 * survivors found by crossing its deleted neighbours breadth-first — their
 * neighbours, and on through chains of deleted nodes while the list is not
 * refilled (up to REPAIR_CROSS): when most of a neighbourhood is deleted,
 * one hop finds no survivor and the node would be cut off.  The new list is the heuristic's choice among
 * them, then the nearest of the rest up to the degree (the deleted nodes
 * took in-links away; a fuller list gives some back).  Each thread writes
 * only its own nodes' lists and reads only deleted nodes' lists, which do
 * not change; every list keeps naming existing nodes, so a failure part way
 * leaves a valid graph. */
static vdx_status repair(vdx_index_hnsw *h, const uint8_t *del) {
    vdx_hnsw *g = &h->g;
    const int64_t n = g->n;
    const int maxdeg = 2 * g->M;
    const int ccap = REPAIR_CANDS(maxdeg);
    const int qcap = maxdeg * (REPAIR_CROSS(maxdeg) + 1);
    vdx_status st = VDX_OK;
#pragma omp parallel num_threads(vdx_nthreads())
    {
        vdx_hnsw_dc dc;
        vdx_status lst = vdx_hnsw_dc_init(&dc, h);
        vdx_hnsw_cand *cand = vdx_malloc_array((size_t)ccap, sizeof *cand);
        int32_t *queue = vdx_malloc_array((size_t)qcap, sizeof *queue);
        uint32_t *vis = vdx_calloc((size_t)n, sizeof *vis);
        uint32_t epoch = 0;
        if (!lst && (!cand || !queue || !vis)) lst = VDX_ERR_OUT_OF_MEMORY;
        if (lst) {
#pragma omp atomic write
            st = lst;
        }
#pragma omp for schedule(dynamic, 64)
        for (int64_t u = 0; u < n; u++) {
            if (lst || del[u]) continue;
            for (int l = 0; l <= g->levels[u]; l++) {
                int32_t *row = vdx_hnsw_row(g, u, l);
                int cnt = row[0], hit = 0;
                for (int j = 1; j <= cnt; j++) hit |= del[row[j]];
                if (!hit) continue;
                if (++epoch == 0) {
                    memset(vis, 0, (size_t)n * sizeof *vis);
                    epoch = 1;
                }
                vis[u] = epoch;
                int m = 0, nq = 0;
                for (int j = 1; j <= cnt; j++) {
                    int32_t v = row[j];
                    if (vis[v] == epoch) continue;
                    vis[v] = epoch;
                    if (!del[v]) cand[m++].id = v;
                    else queue[nq++] = v;
                }
                /* the deleted neighbours are crossed (their survivors are
                 * the bridges), and beyond them further deleted nodes only
                 * while the list could not be filled; links of level l
                 * lead to nodes that reach level l, so the rows exist */
                const int ring = nq;
                for (int qh = 0; qh < nq && m < ccap &&
                                 (qh < ring || (m < cnt && qh < REPAIR_CROSS(maxdeg)));
                     qh++) {
                    const int32_t *vr = vdx_hnsw_row(g, queue[qh], l);
                    for (int t = 1; t <= vr[0] && m < ccap; t++) {
                        int32_t w = vr[t];
                        if (vis[w] == epoch) continue;
                        vis[w] = epoch;
                        if (!del[w]) cand[m++].id = w;
                        else if (nq < qcap) queue[nq++] = w;
                    }
                }
                for (int a = 0; a < m; a++)
                    cand[a].d = vdx_hnsw_dc_sym(&dc, u, cand[a].id);
                vdx_hnsw_sort_cands(cand, m);
                int deg = vdx_hnsw_degree(g, l), kept = 0;
                for (int a = 0; a < m && kept < deg; a++) {
                    int good = 1;
                    for (int t = 0; t < kept && good; t++)
                        good = vdx_hnsw_dc_sym(&dc, cand[a].id, row[1 + t]) >=
                               cand[a].d;
                    if (good) {
                        row[1 + kept++] = cand[a].id;
                        cand[a].id = -1;
                    }
                }
                for (int a = 0; a < m && kept < deg; a++)
                    if (cand[a].id >= 0) row[1 + kept++] = cand[a].id;
                row[0] = kept;
            }
        }
        vdx_free(cand);
        vdx_free(queue);
        vdx_free(vis);
        vdx_hnsw_dc_free(&dc);
    }
    return st;
}

/* Rebuilds the graph over the survivors, each keeping its level, in the old
 * numbering (deleted nodes stay as empty rows, which compaction drops).
 * The new graph is built beside the old one: on failure the old one is
 * back in place, unchanged.  Flat storage lends its vectors; the others'
 * are decoded (the build's queries; its links are scored on the codes, as
 * in the first build). */
static vdx_status rebuild(vdx_index_hnsw *h, const uint8_t *del,
                          int64_t nkeep) {
    const int64_t n = h->g.n, d = h->base.d;
    const float *x = NULL;
    float *buf = NULL;
    int32_t *xrow = NULL;
    vdx_status st = VDX_OK;
    if (h->kind == VDX_HNSW_FLAT) {
        x = ((const vdx_flat *)h->storage)->xb;
    } else {
        vdx_index *s = h->storage;
        buf = vdx_malloc_array((size_t)VDX_MAX(nkeep, 1), (size_t)d * sizeof(float));
        xrow = vdx_malloc_array((size_t)n, sizeof(int32_t));
        if (!buf || !xrow) {
            st = VDX_ERR_OUT_OF_MEMORY;
            goto done;
        }
        int32_t r = 0;
        for (int64_t i = 0; i < n; i++) xrow[i] = del[i] ? -1 : r++;
#pragma omp parallel for schedule(static, 256) num_threads(vdx_nthreads())
        for (int64_t i = 0; i < n; i++) {
            if (xrow[i] < 0) continue;
            /* positions are in range: reconstruct cannot fail */
            vdx_status rs = s->ops->reconstruct(s, i, buf + (size_t)xrow[i] * d);
            (void)rs;
        }
        x = buf;
    }
    vdx_hnsw old = h->g, ng;
    vdx_hnsw_init(&ng, old.M);
    ng.efConstruction = old.efConstruction;
    ng.efSearch = old.efSearch;
    ng.rng = old.rng; /* later adds continue the level stream */
    st = vdx_hnsw_reserve(&ng, n);
    for (int64_t i = 0; i < n && !st; i++)
        st = vdx_hnsw_push_node(&ng, old.levels[i]);
    if (!st) {
        h->g = ng;
        st = insert_nodes(h, 0, x, del, xrow, 0);
        ng = h->g;
        h->g = old;
    }
    if (st) {
        vdx_hnsw_release(&ng);
    } else {
        vdx_hnsw_release(&h->g);
        h->g = ng;
    }
done:
    vdx_free(buf);
    vdx_free(xrow);
    return st;
}

vdx_status vdx_hnsw_remove(vdx_index_hnsw *h, const vdx_selector *sel,
                           int64_t *nremoved) {
    vdx_hnsw *g = &h->g;
    const int64_t n = g->n;
    *nremoved = 0;
    if (n == 0) return VDX_OK;
    vdx_status ost = vdx_hnsw_own(g); /* a mapped graph is copied first */
    if (ost) return ost;
    uint8_t *del = vdx_calloc((size_t)n, 1);
    int32_t *map = vdx_malloc_array((size_t)n, sizeof(int32_t));
    if (!del || !map) {
        vdx_free(del);
        vdx_free(map);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    int64_t nd = 0;
    for (int64_t i = 0; i < n; i++)
        if (vdx_sel_member(sel, i)) {
            del[i] = 1;
            nd++;
        }
    if (nd == 0) {
        vdx_free(del);
        vdx_free(map);
        return VDX_OK;
    }
    /* the compacted upper pool is allocated first, so that nothing can fail
     * once the graph starts changing shape */
    const size_t stride0 = (size_t)(1 + 2 * g->M);
    const size_t strideu = (size_t)(1 + g->M);
    int64_t pool_n = 0;
    for (int64_t i = 0; i < n; i++)
        if (!del[i]) pool_n += (int64_t)g->levels[i] * (int64_t)strideu;
    int32_t *pool = pool_n ? vdx_malloc_array((size_t)pool_n, sizeof(int32_t)) : NULL;
    if (pool_n && !pool) {
        vdx_free(del);
        vdx_free(map);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    /* 1. links over the survivors: repaired, or rebuilt once more than
     * VDX_HNSW_REBUILD_PCT % of the nodes have gone since the last build */
    const int64_t nkeep = n - nd, gone = g->nremoved + nd;
    const int rebuilt =
        nkeep > 0 && gone * 100 > (gone + nkeep) * VDX_HNSW_REBUILD_PCT;
    vdx_status st = nkeep == 0 ? VDX_OK
                    : rebuilt ? rebuild(h, del, nkeep)
                              : repair(h, del);
    if (st) {
        vdx_free(del);
        vdx_free(map);
        vdx_free(pool);
        return st;
    }
    g = &h->g; /* the rebuild replaced the graph */
    /* 2. new entry point: the highest surviving node (lowest id on ties) */
    int32_t ep = -1;
    int maxl = -1;
    for (int64_t i = 0; i < n; i++)
        if (!del[i] && g->levels[i] > maxl) {
            maxl = g->levels[i];
            ep = (int32_t)i;
        }
    if (g->entry_point >= 0 && !del[g->entry_point] &&
        g->levels[g->entry_point] == maxl)
        ep = g->entry_point;
    /* 3. compaction: rows move down, links are renumbered, the upper pool
     * is rebuilt without the deleted rows */
    int64_t j = 0;
    for (int64_t i = 0; i < n; i++) map[i] = del[i] ? -1 : (int32_t)j++;
    int64_t pn = 0;
    for (int64_t i = 0; i < n; i++) {
        if (del[i]) continue;
        int64_t ni = map[i];
        int L = g->levels[i];
        /* upper rows first (they are read through the old uoff[i]) */
        if (L > 0) {
            memcpy(pool + pn, g->upool + g->uoff[i],
                   (size_t)L * strideu * sizeof(int32_t));
            g->uoff[ni] = (uint32_t)pn;
            pn += (int64_t)L * (int64_t)strideu;
        } else {
            g->uoff[ni] = 0;
        }
        if (ni != i)
            memmove(g->links0 + (size_t)ni * stride0,
                    g->links0 + (size_t)i * stride0, stride0 * sizeof(int32_t));
        g->levels[ni] = (int8_t)L;
    }
    vdx_free(g->upool);
    g->upool = pool;
    g->upool_n = g->upool_cap = pool_n;
    g->n = j;
    /* renumber (any link still to a deleted node — possible only where the
     * repair could not reach — is dropped) */
    for (int64_t i = 0; i < g->n; i++) {
        for (int l = 0; l <= g->levels[i]; l++) {
            int32_t *row = vdx_hnsw_row(g, i, l);
            int m = 0;
            for (int t = 1; t <= row[0]; t++)
                if (map[row[t]] >= 0) row[1 + m++] = map[row[t]];
            row[0] = m;
        }
    }
    g->entry_point = ep >= 0 ? map[ep] : -1;
    g->max_level = ep >= 0 ? maxl : -1;
    g->nremoved = rebuilt || j == 0 ? 0 : g->nremoved + nd;
    *nremoved = nd;
    vdx_free(del);
    vdx_free(map);
    return VDX_OK;
}
