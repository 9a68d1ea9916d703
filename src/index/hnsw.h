/*
 * hnsw.h — private structures of the HNSW graph (hnsw.c, hnsw_build.c) and
 * of the index kinds built on it (index_hnsw.c: IndexHNSWFlat, IndexHNSWSQ,
 * IndexHNSWPQ).
 *
 * Layout.  Level 0 — where search spends nearly all its time — is one
 * contiguous block of fixed-stride rows, row i = [count, link_0 .. link_{2M-1}]
 * (int32), so that node i's links are found by one multiplication and read
 * with one or two cache-line fetches (hnswlib's layout).  The upper levels
 * are rare (a node reaches level l with probability M^-l) and live apart, in
 * one pool of int32: node i with top level L >= 1 owns L rows of stride
 * 1 + M starting at upool[uoff[i]], row l - 1 for level l.  Links are node
 * numbers (positions in the storage), -1 never appears inside a row.
 *
 * FAISS keeps every level of every node in one `neighbors` array addressed
 * through `offsets`; the file reader / writer (hnsw_io.c) converts.
 *
 * Mapped graphs.  Opened with IO_FLAG_MMAP, the graph is not converted:
 * FAISS's `neighbors` and `offsets` arrays are searched where they lie in
 * the file map (m_nb, m_off; at any byte offset, so every load is a
 * memcpy), and only the levels (one byte per node) are copied.  A row is
 * then fetched into a caller's buffer by vdx_hnsw_row_get, which checks
 * what it reads (the offset against the array, each link against [0, n),
 * -1 or a bad link ending the list), so a file changed in place after
 * open cannot make a search read outside the map.  Any change to the graph
 * first converts it to the layout above (vdx_hnsw_own).
 */
#include "common/mapping.h"
#ifndef VDX_HNSW_H
#define VDX_HNSW_H

#include "index_internal.h"
#include "common/rng.h"
#include "quant/pq.h"
#include "quant/sq.h"

#define VDX_HNSW_M_MIN 2
#define VDX_HNSW_M_MAX 512
#define VDX_HNSW_EF_DEFAULT_CONSTRUCTION 40 /* FAISS's defaults */
#define VDX_HNSW_EF_DEFAULT_SEARCH 16
#define VDX_HNSW_EF_MAX (1 << 20)
/* Deepest level a node can get (FAISS stops its level table where the
 * probability falls under 1e-9; M = 2 reaches ~30). */
#define VDX_HNSW_MAX_LEVELS 64
/* FAISS's seed for the level generator. */
#define VDX_HNSW_SEED 12345

typedef struct vdx_hnsw {
    int M;                 /* upper-level degree; level 0 has 2M */
    int efConstruction, efSearch;
    int max_level;         /* -1 while empty */
    int32_t entry_point;   /* -1 while empty */
    double level_mult;     /* 1 / ln(M) */
    int64_t n, cap;        /* nodes, allocated rows */
    int32_t *links0;       /* cap x (1 + 2M) */
    int8_t *levels;        /* top level of each node (0-based) */
    uint32_t *uoff;        /* start of the upper rows in upool */
    int32_t *upool;
    int64_t upool_n, upool_cap;
    uint8_t *locks;        /* VDX_HNSW_NLOCKS spin locks, node i's is
                              vdx_hnsw_lock(g, i) (build only; never nested,
                              so nodes may share one) */
    vdx_rng rng;           /* level generator */
    int64_t nremoved;      /* nodes removed since the graph was last built
                              whole (removal rebuilds past n / 2; not kept in
                              files) */
    /* mapped graph (links0, uoff, upool NULL, cap 0): FAISS's arrays in a
     * file map, unaligned; m_nnb int32 neighbors, n + 1 uint64 offsets */
    vdx_mapping *map;
    const uint8_t *m_nb, *m_off;
    uint64_t m_nnb;
    int32_t m_cum[VDX_HNSW_MAX_LEVELS + 1]; /* FAISS's cum_nneighbor_per_level */
} vdx_hnsw;

/* Lock stripes: a byte per node would cost more memory per vector than
 * FAISS's layout; 4096 stripes keep collisions between the few building
 * threads rare. */
#define VDX_HNSW_NLOCKS 4096
static inline uint8_t *vdx_hnsw_lock(const vdx_hnsw *g, int64_t i) {
    return &g->locks[(uint64_t)i & (VDX_HNSW_NLOCKS - 1)];
}

static inline int vdx_hnsw_degree(const vdx_hnsw *g, int level) {
    return level == 0 ? 2 * g->M : g->M;
}

/* The row (count, links) of node i at a level (level <= levels[i]). */
static inline int32_t *vdx_hnsw_row(const vdx_hnsw *g, int64_t i, int level) {
    if (level == 0) return g->links0 + (size_t)i * (size_t)(1 + 2 * g->M);
    return g->upool + g->uoff[i] + (size_t)(level - 1) * (size_t)(1 + g->M);
}

/* Node i's row (count, links) at a level of a mapped graph, fetched into
 * buf (1 + 2M int32). */
VDX_INTERNAL const int32_t *vdx_hnsw_mapped_row(const vdx_hnsw *g, int64_t i,
                                                int level, int32_t *buf);

/* The row of node i at a level, for reading: in place, or for a mapped
 * graph copied into buf (1 + 2M int32). */
static inline const int32_t *vdx_hnsw_row_get(const vdx_hnsw *g, int64_t i,
                                              int level, int32_t *buf) {
    if (g->m_nb) return vdx_hnsw_mapped_row(g, i, level, buf);
    return vdx_hnsw_row(g, i, level);
}

/* Converts a mapped graph to the owned layout (before any change; no-op
 * otherwise).  On failure the graph stays mapped and unchanged. */
VDX_INTERNAL vdx_status vdx_hnsw_own(vdx_hnsw *g);

enum { VDX_HNSW_FLAT = 0, VDX_HNSW_SQ = 1, VDX_HNSW_PQ = 2,
       VDX_HNSW_2L = 3 /* Index2Layer storage (IndexHNSW2Level) */ };

typedef struct vdx_index_hnsw {
    vdx_index base;
    int kind;             /* VDX_HNSW_FLAT / SQ / PQ */
    vdx_index *storage;   /* owned: IndexFlat / IndexScalarQuantizer / IndexPQ */
    vdx_hnsw g;
} vdx_index_hnsw;

/* A per-thread distance computer: keys are "smaller is better" (L2
 * distance, or the negated inner product, as FAISS's HNSW does). */
typedef struct vdx_hnsw_dc {
    const vdx_index_hnsw *h;
    int ip;
    const float *q;       /* the query */
    float *tab;           /* PQ: M x ksub table; SQ: d floats of prepared query */
    float *tmp;           /* 2 x d floats (decoding for symmetric distances) */
    vdx_sq_query sqq;
    const void *K;        /* vdx_kernels */
    const void *SK;       /* vdx_sq_kernels */
    const float *xb;      /* flat vectors when the AVX2 batch kernels apply */
} vdx_hnsw_dc;

/* ---- graph (hnsw.c) -------------------------------------------------------- */
VDX_INTERNAL vdx_status vdx_hnsw_init(vdx_hnsw *g, int M);
VDX_INTERNAL void vdx_hnsw_release(vdx_hnsw *g);
VDX_INTERNAL void vdx_hnsw_clear(vdx_hnsw *g); /* back to empty, keeps M */
/* Grows the level-0 block and the per-node arrays to hold n nodes. */
VDX_INTERNAL vdx_status vdx_hnsw_reserve(vdx_hnsw *g, int64_t n);
/* Appends a node with the given top level (rows empty). */
VDX_INTERNAL vdx_status vdx_hnsw_push_node(vdx_hnsw *g, int level);
/* FAISS's level generator: P(level = l) = exp(-l/mult) (1 - exp(-1/mult)). */
VDX_INTERNAL int vdx_hnsw_random_level(vdx_hnsw *g);

/* Distance computers. */
VDX_INTERNAL vdx_status vdx_hnsw_dc_init(vdx_hnsw_dc *dc, const vdx_index_hnsw *h);
VDX_INTERNAL void vdx_hnsw_dc_free(vdx_hnsw_dc *dc);
VDX_INTERNAL void vdx_hnsw_dc_set_query(vdx_hnsw_dc *dc, const float *q);
VDX_INTERNAL float vdx_hnsw_dc_dist(vdx_hnsw_dc *dc, int64_t id);
/* keys[j] = distance of the query to node ids[j] (batched when possible). */
VDX_INTERNAL void vdx_hnsw_dc_keys(vdx_hnsw_dc *dc, const int32_t *ids, int n,
                                   float *keys);
/* keys[j] = distance between stored node a and node ids[j]. */
VDX_INTERNAL void vdx_hnsw_dc_sym_keys(vdx_hnsw_dc *dc, int64_t a,
                                       const int32_t *ids, int n, float *keys);
/* Distance between two stored nodes. */
VDX_INTERNAL float vdx_hnsw_dc_sym(vdx_hnsw_dc *dc, int64_t a, int64_t b);

/* A candidate (key, node). */
typedef struct vdx_hnsw_cand {
    float d;
    int32_t id;
} vdx_hnsw_cand;

/* FAISS's neighbour-selection heuristic (Malkov & Yashunin, alg. 4 without
 * extension): walks cand (sorted by increasing distance to the base node)
 * and keeps a candidate only when it is closer to the base than to every
 * candidate kept so far; at most max_keep.  Fewer than max_keep
 * candidates are all kept, as in FAISS.  Writes the kept ones to the
 * front of cand; returns their count. */
VDX_INTERNAL int vdx_hnsw_select(vdx_hnsw_dc *dc, vdx_hnsw_cand *cand, int n,
                                 int max_keep);
VDX_INTERNAL void vdx_hnsw_sort_cands(vdx_hnsw_cand *c, int n);

/* Binary heaps of candidates: a max-heap (results, worst on top) and a
 * min-heap (candidates to expand, best on top). */
static inline void maxheap_push(vdx_hnsw_cand *h, int *n, vdx_hnsw_cand v) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) >> 1;
        if (h[p].d >= v.d) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline void maxheap_pop(vdx_hnsw_cand *h, int *n) {
    vdx_hnsw_cand v = h[--(*n)];
    int i = 0, m = *n;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w;
        if (l >= m) break;
        w = (r < m && h[r].d > h[l].d) ? r : l;
        if (h[w].d <= v.d) break;
        h[i] = h[w];
        i = w;
    }
    if (m) h[i] = v;
}

static inline void minheap_push(vdx_hnsw_cand *h, int *n, vdx_hnsw_cand v) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) >> 1;
        if (h[p].d <= v.d) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline void minheap_pop(vdx_hnsw_cand *h, int *n) {
    vdx_hnsw_cand v = h[--(*n)];
    int i = 0, m = *n;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w;
        if (l >= m) break;
        w = (r < m && h[r].d < h[l].d) ? r : l;
        if (h[w].d >= v.d) break;
        h[i] = h[w];
        i = w;
    }
    if (m) h[i] = v;
}

/* Level-0 search over flat vectors with AVX2 kernels (hnsw_avx2.c; NULL
 * pointer target when not built): the same walk as hnsw.c's generic one,
 * with neighbour distances computed four at a time.  Returns the number of
 * results left in res (a max-heap), or -1 when growing cand failed. */
typedef struct vdx_hnsw_l0_args {
    const int32_t *links0;    /* NULL: a mapped graph, rows through g */
    const vdx_hnsw *g;
    int stride;               /* 1 + 2M */
    const float *xb;
    size_t d;
    int ip;
    const float *q;
    uint16_t *vis;
    uint16_t tag;
    int ef;
    const vdx_selector *sel;
    vdx_hnsw_cand **cand;     /* min-heap storage, grown with realloc */
    int *candcap;
    vdx_hnsw_cand *res;       /* ef + 1 entries */
    int64_t *ndis, *nhops;    /* counters (stats.h): distances, expansions */
} vdx_hnsw_l0_args;
VDX_INTERNAL int vdx_hnsw_l0_flat_avx2(const vdx_hnsw_l0_args *a,
                                       vdx_hnsw_cand ep);
/* out[j] = key of q against flat vector ids[j] (AVX2, four at a time). */
VDX_INTERNAL void vdx_hnsw_keys_flat_avx2(const float *q, const float *xb,
                                          size_t d, int ip, const int32_t *ids,
                                          int n, float *out);

/* Tests only: nonzero makes searches take the generic walk even when the
 * AVX2 one applies, so that the two can be compared in one process. */
VDX_INTERNAL extern int vdx_hnsw_test_generic;

/* The search of a batch of queries (hnsw.c). */
VDX_INTERNAL vdx_status vdx_hnsw_search(const vdx_index_hnsw *h, int64_t n,
                                        const float *x, int64_t k,
                                        const vdx_search_params *p, float *D,
                                        vdx_idx_t *I);
VDX_INTERNAL vdx_status vdx_hnsw_range_search(const vdx_index_hnsw *h,
                                              int64_t n, const float *x,
                                              float radius,
                                              const vdx_search_params *p,
                                              vdx_range_builder *rb);

/* ---- build (hnsw_build.c) -------------------------------------------------- */
/* Inserts nodes [n0, g->n) (storage already holds their vectors; x their
 * raw vectors), in parallel; deterministic with one thread. */
VDX_INTERNAL vdx_status vdx_hnsw_insert(vdx_index_hnsw *h, int64_t n0,
                                        const float *x);
/* Removes the nodes in sel: repairs the lists that pointed to them, then
 * compacts the graph (ids shift down, as IndexFlat's remove_ids). */
VDX_INTERNAL vdx_status vdx_hnsw_remove(vdx_index_hnsw *h,
                                        const vdx_selector *sel,
                                        int64_t *nremoved);

/* ---- index (index_hnsw.c) -------------------------------------------------- */
VDX_INTERNAL int vdx_is_hnsw(const vdx_index *ix);
/* Wraps storage (ownership passes on success) into an HNSW index of kind;
 * the graph is empty (the file reader fills it). */
VDX_INTERNAL vdx_status vdx_hnsw_make(vdx_index *storage, int kind, int M,
                                      vdx_index_hnsw **out);

#endif
