/*
 * index_pq.h — private structures of the PQ index kinds (IndexPQ here;
 * IndexIVFPQ is a vdx_ivf whose codec state lives in vdx_ivfpq).
 */
#ifndef VDX_INDEX_PQ_H
#define VDX_INDEX_PQ_H

#include "index_internal.h"
#include "quant/pq.h"

typedef struct vdx_index_pq {
    vdx_index base;
    vdx_pq pq;
    uint8_t *codes; /* ntotal x pq.code_size */
    int64_t cap;    /* capacity in codes */
    vdx_mapping *map; /* non-NULL: codes borrowed from this file map (cap 0);
                         a change copies them first */
    /* FAISS fields kept for byte-identical files (unused by search) */
    int32_t search_type, polysemous_ht;
    uint8_t encode_signs;
} vdx_index_pq;

typedef struct vdx_ivfpq {
    vdx_ivf ivf;
    vdx_pq pq;
    int by_residual;
    /* FAISS's use_precomputed_table: -1 never, 0 = when it fits (default),
     * 1 = always (L2 with residuals only). */
    int use_precomputed_table;
    /* L2 + by_residual: nlist x M x ksub table of |r_mj|^2 + 2<c_l, r_mj>
     * (the query-independent terms of |x - c_l - r|^2), or NULL.  Built
     * lazily, by the first query that needs it (see pre_state). */
    float *precomputed;
    /* VDX_IVFPQ_PRE_*, read and written atomically: the table is built on
     * first use under a lock, so opening an index (mapped or not) costs no
     * nlist x M x ksub work and memory until a search needs it. */
    int pre_state;
} vdx_ivfpq;

#define VDX_IVFPQ_PRE_NONE 0    /* no table: queries use residual tables */
#define VDX_IVFPQ_PRE_PENDING 1 /* applies, not built yet */
#define VDX_IVFPQ_PRE_READY 2   /* built: precomputed is valid */

/* Frees the precomputed tables and, when they apply per
 * use_precomputed_table (L2, by_residual, trained, within the size cap),
 * marks them to be built by the first search (after training, loading, or
 * a change of the setting).  Not concurrent with searches (a mutation).
 * @return VDX_OK. */
VDX_INTERNAL vdx_status vdx_ivfpq_precompute(vdx_ivfpq *p);
/* Drops the tables and never builds them until the next
 * vdx_ivfpq_precompute (FAISS's IO_FLAG_SKIP_PRECOMPUTE_TABLE). */
VDX_INTERNAL void vdx_ivfpq_skip_precompute(vdx_ivfpq *p);
/* The precomputed tables, built now if pending (thread-safe: concurrent
 * callers wait for one build), or NULL when they do not apply or could not
 * be allocated (queries then build tables from their residuals: the same
 * distances up to float rounding). */
VDX_INTERNAL const float *vdx_ivfpq_precomputed_table(const vdx_ivfpq *p);

/* PQ codes of n vectors for an IVF index: of x itself, or with by_residual
 * of x - centroid(lists[i]) (a list < 0: of zero).  Shared by IndexIVFPQ
 * and IndexIVFPQFastScan. */
VDX_INTERNAL vdx_status vdx_ivf_pq_encode(const vdx_ivf *ivf, const vdx_pq *pq,
                                          int by_residual, int64_t n,
                                          const float *x, const int64_t *lists,
                                          uint8_t *codes);
/* Trains pq on x (n vectors), or with by_residual on the residuals to the
 * centroids x is assigned to (the coarse quantizer must be trained). */
VDX_INTERNAL vdx_status vdx_ivf_pq_train(vdx_index *ix, vdx_pq *pq,
                                         int by_residual, int64_t n,
                                         const float *x);
/* The inverse of vdx_ivf_pq_encode for one code of list `list`. */
VDX_INTERNAL void vdx_ivf_pq_decode(const vdx_ivf *ivf, const vdx_pq *pq,
                                    int by_residual, int64_t list,
                                    const uint8_t *code, float *out);

VDX_INTERNAL int vdx_is_index_pq(const vdx_index *ix);
VDX_INTERNAL int vdx_is_ivfpq(const vdx_index *ix);
/* Makes room for n codes in total. */
VDX_INTERNAL vdx_status vdx_index_pq_reserve(vdx_index_pq *p, int64_t n);
VDX_INTERNAL vdx_status vdx_ivfpq_alloc(vdx_index *quantizer, int64_t d,
                                        int64_t nlist, int64_t M, int nbits,
                                        vdx_metric metric, vdx_ivfpq **out);

#endif
