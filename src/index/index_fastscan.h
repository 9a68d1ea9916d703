/*
 * index_fastscan.h — private structures of the 4-bit fast-scan PQ kinds:
 * IndexPQFastScan (pq_fastscan.c) and IndexIVFPQFastScan
 * (ivfpq_fastscan.c), and the block scan they share.
 */
#ifndef VDX_INDEX_FASTSCAN_H
#define VDX_INDEX_FASTSCAN_H

#include "index_internal.h"
#include "common/topk.h"
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

/* The candidates of one query, by approximate key (bias + scale * the
 * 16-bit sum, the wide sub-quantizers' entries exact, see fastscan.h)
 * with their refs.  For k2 <= VDX_FS_HEAP_MAX an unordered set of k2
 * slots (unfilled ones +inf / -1) whose largest key is top, as topk.h's
 * vdx_kset: a candidate replaces the largest, and the next largest is found
 * by a branch-free SIMD pass over the slots (padded with -inf to a multiple
 * of 16).  It beat a binary max-heap (whose sift mispredicts at every
 * level) at k = 10 and k = 30.  Above, a reservoir of cap entries that
 * keeps its k2 best when full (appends are cheaper, but top tightens in
 * steps, so more candidates pass: measured slower than the set for k =
 * 30).  A candidate must beat top. */
#define VDX_FS_HEAP_MAX 64

typedef struct vdx_fs_res {
    float *key;
    int64_t *ref;
    int64_t k2, n, cap;
    float top;
    int64_t imax; /* set: the slot holding top */
    int64_t fill; /* set: slots filled so far (top stays +inf until all
                     are: the first k2 candidates are just stored) */
} vdx_fs_res;

/* Entries key and ref must hold for k2 (a set is padded to a multiple of
 * 16 slots). */
static inline int64_t vdx_fs_res_cap(int64_t k2) {
    return k2 <= VDX_FS_HEAP_MAX ? (k2 + 15) / 16 * 16 : 3 * k2;
}
static inline int vdx_fs_res_is_set(const vdx_fs_res *r) {
    return r->k2 <= VDX_FS_HEAP_MAX;
}
VDX_INTERNAL void vdx_fs_res_init(vdx_fs_res *r, float *key, int64_t *ref,
                                  int64_t k2);
/* Reservoir: keeps the k2 best in key[0 .. k2) and sets top. */
VDX_INTERNAL void vdx_fs_res_shrink(vdx_fs_res *r);
/* After the scan: at most k2 candidates remain in [0, n) (refs -1 are
 * empty slots). */
VDX_INTERNAL void vdx_fs_res_finish(vdx_fs_res *r);

/* Set: the largest key of the nk (a multiple of 16) slots into top, its
 * slot into imax (topk.h). */
static inline void vdx_fs_set_max(vdx_fs_res *r, int64_t nk) {
    r->imax = vdx_set_argmax(r->key, r->ref, nk, &r->top);
}

/* Adds (a, ref), a < top; returns 1 when top changed. */
static inline int vdx_fs_res_add(vdx_fs_res *r, float a, int64_t ref) {
    if (vdx_fs_res_is_set(r)) {
        if (r->fill < r->k2) {
            r->key[r->fill] = a;
            r->ref[r->fill] = ref;
            if (++r->fill < r->k2) return 0;
            vdx_fs_set_max(r, (r->k2 + 15) & ~(int64_t)15);
            return 1;
        }
        vdx_set_store(r->key, r->imax, a);
        r->ref[r->imax] = ref;
        vdx_fs_set_max(r, (r->k2 + 15) & ~(int64_t)15);
        return 1;
    }
    r->key[r->n] = a;
    r->ref[r->n] = ref;
    if (++r->n < r->cap) return 0;
    vdx_fs_res_shrink(r);
    return 1;
}

/* The distance of a key (smaller is better) as vdx_topk_finish gives it:
 * inner product the negated key, L2 the key clamped at 0. */
static inline float vdx_fs_key_distance(float key, int ip) {
    return ip ? -key : (key < 0 ? 0 : key);
}

/* Scans n packed vectors (blocks) against a query: lut (the quantized
 * form of its M x 16 float keys, smaller is better).  Vector i has ref
 * ref0 + i and id ids[i] (the ref when ids is NULL); ids outside sel are
 * skipped.  The heap collects the refs of the best approximate keys;
 * the caller re-scores them with the float table. */
VDX_INTERNAL void vdx_fs_scan_blocks(const vdx_fs_kernels *K,
                                     const uint8_t *blocks, int64_t n,
                                     int64_t bbs, int64_t nsq,
                                     const vdx_fs_lut *lut,
                                     const vdx_idx_t *ids, int64_t ref0,
                                     const vdx_selector *sel, vdx_fs_res *res);
/* As vdx_fs_scan_blocks for nq <= VDX_FS_MAX_QBS queries in one pass
 * over the codes: query j with luts[j] and res[j]. */
VDX_INTERNAL void vdx_fs_scan_blocks_multi(const vdx_fs_kernels *K,
                                           const uint8_t *blocks, int64_t n,
                                           int64_t bbs, int64_t nsq, int nq,
                                           const vdx_fs_lut *luts,
                                           const vdx_idx_t *ids, int64_t ref0,
                                           const vdx_selector *sel,
                                           vdx_fs_res *res);
/* As vdx_fs_scan_blocks for a query whose heap is still empty, without
 * selector (IVF: its first list): the 32-aligned sums of all n vectors go
 * to sums (room for n rounded up to 32), about the k2 smallest seed the
 * heap first, then only the vectors under the threshold they set are
 * offered.  Fills the heap with ~k2 additions instead of the ~k2 (1 + ln
 * (n / k2)) of a scan in order. */
VDX_INTERNAL void vdx_fs_scan_blocks_seeded(const vdx_fs_kernels *K,
                                            const uint8_t *blocks, int64_t n,
                                            int64_t bbs, int64_t nsq,
                                            const vdx_fs_lut *lut,
                                            const vdx_idx_t *ids, int64_t ref0,
                                            vdx_fs_res *res, uint16_t *sums);
/* The number of candidates kept for k results among ntotal. */
VDX_INTERNAL int64_t vdx_fs_k2(int64_t k, int64_t ntotal);

/* IVF list-major scans: sorts n (list << 32 | query) keys by list, queries
 * staying in order (LSD radix, through tmp with room for n). */
VDX_INTERNAL void vdx_fs_sort_pairs(uint64_t *a, uint64_t *tmp, int64_t n,
                                    int64_t nlist);

#endif
