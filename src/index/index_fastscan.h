/*
 * index_fastscan.h — private structures of the 4-bit fast-scan PQ kinds:
 * IndexPQFastScan (pq_fastscan.c) and IndexIVFPQFastScan
 * (ivfpq_fastscan.c), and the block scan they share.
 */
#ifndef VDX_INDEX_FASTSCAN_H
#define VDX_INDEX_FASTSCAN_H

#include "index_internal.h"
#include "quant/fastscan.h"
#include "quant/pq.h"

typedef struct vdx_pqfs {
    vdx_index base;
    vdx_pq pq;       /* nbits = 4 */
    int64_t bbs;     /* block size, a multiple of 32 */
    int64_t nsq;     /* M rounded up to even (FAISS: M2) */
    uint8_t *codes;  /* packed blocks covering ntotal (FAISS: ntotal2) */
    int64_t cap;     /* capacity in vectors, a multiple of bbs */
    int32_t implem, qbs; /* FAISS fields kept for files */
} vdx_pqfs;

typedef struct vdx_ivfpqfs {
    vdx_ivf ivf;     /* flat 4-bit codes in the inverted lists */
    vdx_pq pq;
    int by_residual;
    int64_t bbs, nsq;
    int32_t implem;
    uint64_t qbs2;
    /* per list: packed blocks mirroring the list's codes, rebuilt lazily
     * (in a critical section) when the list changed since the last scan */
    uint8_t **packed;
    int64_t *packed_n; /* entries packed per list, -1 = stale */
} vdx_ivfpqfs;

VDX_INTERNAL int vdx_is_pqfs(const vdx_index *ix);
VDX_INTERNAL int vdx_is_ivfpqfs(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_pqfs_reserve(vdx_pqfs *p, int64_t n);
VDX_INTERNAL vdx_status vdx_ivfpqfs_alloc(vdx_index *quantizer, int64_t d,
                                          int64_t nlist, int64_t M,
                                          vdx_metric metric, int64_t bbs,
                                          int by_residual, vdx_ivfpqfs **out);

/* Scans n packed vectors (blocks) against a query: table (M x 16 float
 * keys, smaller is better), lut (its quantized form).  Vector i has id
 * ids[i] (or id0 + i when ids is NULL); ids outside sel are skipped.
 * Offers the float-table key of every vector whose 16-bit lower bound can
 * beat the heap's worst to the heap (k, hk, hi).  Returns the number of
 * vectors re-scored. */
VDX_INTERNAL int64_t vdx_fs_scan_blocks(const vdx_fs_kernels *K,
                                        const uint8_t *blocks, int64_t n,
                                        int64_t bbs, int64_t M, int64_t nsq,
                                        const float *table,
                                        const vdx_fs_lut *lut,
                                        const vdx_idx_t *ids, vdx_idx_t id0,
                                        const vdx_selector *sel, int64_t k,
                                        float *hk, vdx_idx_t *hi);

#endif
