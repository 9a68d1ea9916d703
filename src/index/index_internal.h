/*
 * index_internal.h — the index vtable.  Every index kind (flat, IDMap, and
 * later IVF, PQ, HNSW, GPU) embeds `struct vdx_index` as its first member and
 * fills a `vdx_index_ops`.  The public entry points in index.c do every
 * common argument check (NULLs, shapes, k, NaN/Inf, trained state) before
 * calling an op, so ops may assume valid arguments.
 */
#ifndef VDX_INDEX_INTERNAL_H
#define VDX_INDEX_INTERNAL_H

#include "../common/common.h"
#include "../common/selector.h"
#include "../common/mapping.h"

/* Growable per-query range-search results, filled by range_search ops. */
typedef struct vdx_range_builder {
    int64_t nq;
    int64_t *counts;     /* per query */
    float **dist;        /* per query arrays */
    vdx_idx_t **lab;
    int64_t *cap;
} vdx_range_builder;

/* Appends the hits of query q among n scored entries: entry j has id
 * ids[j] (or id0 + j when ids is NULL) and value values[j], a distance (hit
 * when < radius) or, with is_ip, a similarity (hit when > radius) that is
 * stored negated when `negated` (the heap keys of the scans).  Entries
 * outside sel are skipped.  Not thread-safe across the same q. */
VDX_INTERNAL vdx_status vdx_range_collect(vdx_range_builder *rb, int64_t q,
                                          const float *values, size_t n,
                                          int is_ip, int negated, float radius,
                                          const vdx_idx_t *ids, vdx_idx_t id0,
                                          const vdx_selector *sel);

/* Appends a hit for query q (not thread-safe across the same q). */
VDX_INTERNAL vdx_status vdx_range_builder_add(vdx_range_builder *rb, int64_t q,
                                              float dist, vdx_idx_t label);

typedef struct vdx_index_ops {
    const char *type_name; /* FAISS class name */
    vdx_status (*train)(vdx_index *ix, int64_t n, const float *x);
    /* ids may be NULL (sequential) */
    vdx_status (*add)(vdx_index *ix, int64_t n, const float *x,
                      const vdx_idx_t *ids);
    vdx_status (*search)(const vdx_index *ix, int64_t n, const float *x,
                         int64_t k, const vdx_search_params *p, float *D,
                         vdx_idx_t *I);
    vdx_status (*range_search)(const vdx_index *ix, int64_t n, const float *x,
                               float radius, const vdx_search_params *p,
                               vdx_range_builder *rb);
    vdx_status (*reset)(vdx_index *ix);
    vdx_status (*reconstruct)(const vdx_index *ix, vdx_idx_t key, float *out);
    vdx_status (*reconstruct_n)(const vdx_index *ix, vdx_idx_t i0, int64_t ni,
                                float *out);
    vdx_status (*remove_ids)(vdx_index *ix, const vdx_selector *sel,
                             int64_t *nremoved);
    void (*destroy)(vdx_index *ix); /* frees everything, including ix */
} vdx_index_ops;

struct vdx_index {
    const vdx_index_ops *ops;
    int64_t d;
    int64_t ntotal;
    int is_trained;
    vdx_metric metric;
    float metric_arg; /* stored in files; unused by L2 / IP */
};

/* ---- IndexFlat ---------------------------------------------------------- */
typedef struct vdx_flat {
    vdx_index base;
    float *xb;       /* ntotal x d, 64-byte aligned */
    float *norms;    /* ntotal squared norms cached for sgemm (L2 only), or
                        NULL: computed per block when needed */
    int64_t cap;     /* capacity in vectors */
    int no_norms;    /* keep no norms (an HNSW storage: the graph walk never
                        reads them, and they would cost 4 bytes a vector) */
    vdx_mapping *map; /* non-NULL: xb points into this read-only file map
                         (cap is 0, norms NULL); any change copies xb first */
} vdx_flat;

/* Training learns what the stored codes were made with (codebooks, ranges,
 * thresholds, centroids): a second train of a populated index would leave
 * them meaningless.  VDX_OK when ix holds nothing, else
 * VDX_ERR_INVALID_ARGUMENT naming the count ("reset() it before training
 * again").  Kinds whose second train changes nothing (flat storage, IVF with
 * its centroids in place, fast-scan PQ as FAISS) do not call it. */
VDX_INTERNAL vdx_status vdx_refuse_populated_train(const vdx_index *ix);

VDX_INTERNAL int vdx_is_flat(const vdx_index *ix);
/* Makes room for n vectors in total (keeps contents). */
VDX_INTERNAL vdx_status vdx_flat_reserve(vdx_flat *f, int64_t n);
/* VDX_OK when key is a position in [0, ntotal), else VDX_ERR_NOT_FOUND
 * naming it (reconstruct of the kinds numbered by position). */
VDX_INTERNAL vdx_status vdx_check_key(const vdx_index *ix, vdx_idx_t key);
/* The same for the positions [i0, i0 + ni) (reconstruct_n). */
VDX_INTERNAL vdx_status vdx_check_range(const vdx_index *ix, vdx_idx_t i0,
                                        int64_t ni);
/* Makes a mapped flat index own its vectors (copy-on-write before a
 * change); a no-op for an index in memory. */
VDX_INTERNAL vdx_status vdx_flat_unmap(vdx_flat *f);
/* Frees the cached norms and keeps none from then on. */
VDX_INTERNAL void vdx_flat_drop_norms(vdx_flat *f);

/* ---- IndexIDMap / IndexIDMap2 ------------------------------------------- */
typedef struct vdx_idmap {
    vdx_index base;
    vdx_index *sub;
    vdx_idx_t *id_map; /* ntotal entries */
    int64_t cap;
    int is_map2;
    /* IDMap2 reverse map: open addressing, keys = user ids, vals = positions */
    vdx_idx_t *rev_keys;
    int64_t *rev_vals;
    int64_t rev_cap; /* power of two, 0 when no map */
} vdx_idmap;

VDX_INTERNAL int vdx_is_idmap(const vdx_index *ix);
/* Rebuilds the IDMap2 reverse map from id_map (after load or removal). */
VDX_INTERNAL vdx_status vdx_idmap2_rebuild(vdx_idmap *m);
/* VDX_OK unless an IVF index holds sub's vectors (sub itself or below
 * pre-transforms) and its ids are not the positions 0..ntotal-1, each once,
 * which an IDMap relies on; then raises `code` with `what`, the id and its
 * list.  The file reader calls it before it trusts a wrapped IVF. */
VDX_INTERNAL vdx_status vdx_idmap_check_positions(const vdx_index *sub,
                                                  vdx_status code,
                                                  const char *what);
/* Appends n entries to id_map (used by add and by the file reader). */
VDX_INTERNAL vdx_status vdx_idmap_reserve(vdx_idmap *m, int64_t n);

/* ---- IndexRefine / IndexRefineFlat (refine.c) ---------------------------- */
VDX_INTERNAL int vdx_is_refine(const vdx_index *ix);
/* Builds the wrapper without checks (the file reader checks); takes
 * ownership of both on success; flat selects the IndexRefineFlat name. */
VDX_INTERNAL vdx_status vdx_refine_make(vdx_index *base, vdx_index *refine,
                                        int flat, vdx_index **out);

/* remove_ids of the flat-code kinds (FAISS's IndexFlatCodes): the codes
 * (code_size bytes each) of the ids outside sel are moved to the front in
 * order, so ids are renumbered 0..kept-1; sets ntotal and *nremoved. */
VDX_INTERNAL vdx_status vdx_codes_remove_ids(vdx_index *ix, uint8_t *codes,
                                             size_t code_size,
                                             const vdx_selector *sel,
                                             int64_t *nremoved);

/* ---- IVF ------------------------------------------------------------------ */
#include "invlists.h"

typedef struct vdx_ivf vdx_ivf;

/* What distinguishes IVF kinds: how vectors become codes and how a query is
 * scored against the codes of one list.  scan writes keys (L2: distance,
 * IP: -score) so the generic search keeps one heap order. */
typedef struct vdx_ivf_codec {
    vdx_status (*encode)(const vdx_ivf *ivf, int64_t n, const float *x,
                         const int64_t *lists, uint8_t *codes);
    void (*decode)(const vdx_ivf *ivf, int64_t list, const uint8_t *code,
                   float *out);
    void (*scan)(const vdx_ivf *ivf, const float *xq, int64_t list,
                 const uint8_t *codes, size_t n, float *keys);
} vdx_ivf_codec;

/* Optional companion of a codec (ivf->scanner, NULL for IVF-Flat): a
 * per-(query, list) precomputation such as PQ distance tables.  Searches
 * give each thread ctx_size(ivf) bytes (64-byte aligned, zeroed at the start
 * of each search), call prepare once before scanning a list for a query,
 * then scan instead of codec->scan for that list. */
typedef struct vdx_ivf_scanner {
    size_t (*ctx_size)(const vdx_ivf *ivf);
    void (*prepare)(const vdx_ivf *ivf, const float *xq, int64_t list,
                    void *ctx);
    void (*scan)(const vdx_ivf *ivf, const void *ctx, const uint8_t *codes,
                 size_t n, float *keys);
    /* Optional (may be NULL): called once per query before the prepare
     * calls of its lists, with the same ctx, for work that depends on the
     * query only (IVFPQ's precomputed-table term -2<x, r>). */
    void (*begin_query)(const vdx_ivf *ivf, const float *xq, void *ctx);
} vdx_ivf_scanner;

struct vdx_ivf {
    vdx_index base;
    vdx_index *quantizer; /* owned */
    int64_t nlist;
    int64_t nprobe;    /* default when params.nprobe is 0 */
    int64_t max_codes; /* default when params.max_codes is 0; 0 = no limit */
    size_t code_size;
    vdx_invlists *il;
    const vdx_ivf_codec *codec;
    int64_t *dm;      /* direct map: id -> list << 32 | offset, or NULL */
    int64_t dm_cap;
    vdx_kmeans_params cp; /* training of the coarse quantizer */
    const vdx_ivf_scanner *scanner; /* optional, see vdx_ivf_scanner */
};

/* Appends n entries already encoded by the codec (code_size bytes each) to
 * the given lists (checked: 0..nlist-1), ids NULL meaning ntotal + i
 * (FAISS's IndexIVF::add_sa_codes after the list numbers are decoded). */
VDX_INTERNAL vdx_status vdx_ivf_add_codes(vdx_index *ix, int64_t n,
                                          const uint8_t *codes,
                                          const int64_t *lists,
                                          const vdx_idx_t *ids);

/* Builds the common part of an IVF index (kinds call this, then set codec
 * and ops).  Takes ownership of quantizer on success. */
VDX_INTERNAL vdx_status vdx_ivf_init(vdx_ivf *ivf, const vdx_index_ops *ops,
                                     vdx_index *quantizer, int64_t d,
                                     int64_t nlist, vdx_metric metric,
                                     size_t code_size);
VDX_INTERNAL vdx_status vdx_ivf_flat_alloc(vdx_index *quantizer, int64_t d,
                                           int64_t nlist, vdx_metric metric,
                                           vdx_ivf **out);
/* Fills *ops with the IVF framework's ops (train, add, search, ...) under
 * another type_name, for IVF kinds that differ only by their codec; any
 * index whose ops come from here (search op included) is recognised by
 * vdx_index_is_ivf. */
VDX_INTERNAL vdx_status vdx_ivf_generic_ops(vdx_index_ops *ops,
                                            const char *type_name);
/* Rebuilds the direct map from the lists (after load). */
VDX_INTERNAL vdx_status vdx_ivf_rebuild_direct_map(vdx_ivf *ivf);
/* 1 when ix is an IVF kind whose add and search are the framework's
 * (IVF-Flat, IVFPQ, IVF-SQ), which can then take lists computed by another
 * quantizer holding the same centroids (IndexShardsIVF). */
VDX_INTERNAL int vdx_ivf_preassigned_ok(const vdx_index *ix);
/* add with the list of each vector given (0..nlist-1, checked); ids may be
 * NULL (sequential).  Arguments otherwise checked by the caller. */
VDX_INTERNAL vdx_status vdx_ivf_add_preassigned(vdx_index *ix, int64_t n,
                                                const float *x,
                                                const vdx_idx_t *ids,
                                                const int64_t *lists);
/* search probing, for query q, lists[q * np .. q * np + np) (-1 skipped),
 * with p's selector and max_codes (its nprobe is replaced by np). */
VDX_INTERNAL vdx_status vdx_ivf_search_preassigned(
    const vdx_index *ix, int64_t n, const float *x, int64_t k,
    const vdx_search_params *p, int64_t np, const int64_t *lists, float *D,
    vdx_idx_t *I);

#endif
