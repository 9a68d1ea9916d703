/*
 * index_aq.h — private structures of the additive-quantizer index kinds:
 * the flat-code indexes (index_aq.c: IndexResidualQuantizer and the LSQ /
 * product kinds), the coarse quantizers (rcq.c: ResidualCoarseQuantizer,
 * LocalSearchCoarseQuantizer), the IVF kinds (ivf_aq.c) and the fast-scan
 * kinds (aq_fastscan.c).
 */
#ifndef VDX_INDEX_AQ_H
#define VDX_INDEX_AQ_H

#include "index_internal.h"
#include "quant/aq.h"

typedef struct vdx_aqi {
    vdx_index base;
    vdx_aq *aq;     /* owned */
    uint8_t *codes; /* ntotal x aq->code_size */
    int64_t cap;    /* capacity in codes */
} vdx_aqi;

typedef struct vdx_acq {
    vdx_index base; /* ntotal = 2^tot_bits once trained */
    vdx_aq *aq;     /* owned: RQ (ResidualCoarseQuantizer) or LSQ */
    float beam_factor;
    float *cnorms;  /* |centroid|^2 of every centroid (L2), or NULL */
} vdx_acq;

typedef struct vdx_ivfaq {
    vdx_ivf ivf;
    vdx_aq *aq; /* owned */
    int by_residual;
    int32_t use_precomputed_table; /* FAISS field, stored only */
} vdx_ivfaq;

/* the fast-scan kinds (aq_fastscan.c): 4-bit codebooks, codes packed in
 * blocks as quant/fastscan.h lays them out */
typedef struct vdx_aqfs {
    vdx_index base;
    vdx_aq *aq;     /* owned; nbits 4, ST_LUT_nonorm (IP) or a 2x4 norm (L2) */
    int64_t Mfs;    /* 4-bit indices per code: aq->M, + 2 for L2 (FAISS: M) */
    int64_t nsq;    /* Mfs rounded up to even (FAISS: M2) */
    int64_t bbs;
    uint8_t *codes; /* packed blocks covering ntotal */
    int64_t cap;    /* capacity in vectors, a multiple of bbs */
    /* FAISS fields kept for files (norm_scale is estimated by train as
     * FAISS does; vecdex's search re-scores and does not use it) */
    int32_t implem, qbs, norm_scale;
    int rescale_norm;
    uint64_t max_train_points;
} vdx_aqfs;

/* the IVF fast-scan kinds (ivf_aq_fastscan.c): flat codes of Mfs 4-bit
 * indices in the lists (the additive code, its 2x4-bit norm last for L2),
 * each list mirrored lazily in packed blocks for the scan */
typedef struct vdx_ivfaqfs {
    vdx_ivf ivf;
    vdx_aq *aq; /* owned */
    int by_residual;
    int64_t Mfs, nsq, bbs;
    /* FAISS fields kept for files (norm_scale estimated by train as FAISS
     * does; vecdex re-scores with the float table and does not use it) */
    int32_t implem, qbs, norm_scale;
    uint64_t qbs2, max_train_points;
    int rescale_norm;
    uint8_t **packed;  /* per list: packed blocks, rebuilt when stale */
    int64_t *packed_n; /* entries packed per list, -1 = stale */
} vdx_ivfaqfs;

VDX_INTERNAL int vdx_is_ivfaqfs(const vdx_index *ix);
/* Builds an IVF fast-scan index (no argument checks beyond aq's fit);
 * takes quantizer and aq on success only. */
VDX_INTERNAL vdx_status vdx_ivfaqfs_alloc(vdx_index *quantizer, int64_t nlist,
                                          vdx_aq *aq, vdx_metric metric,
                                          int64_t bbs, vdx_ivfaqfs **out);
/* aq fits fast scan with metric: 4-bit codebooks, ST_LUT_nonorm for inner
 * product, a 2x4-bit norm for L2 (who names the caller in messages). */
VDX_INTERNAL vdx_status vdx_aqfs_check_aq(const vdx_aq *aq, vdx_metric metric,
                                          const char *who);
VDX_INTERNAL int vdx_is_aqfs(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_aqfs_reserve(vdx_aqfs *p, int64_t n);
VDX_INTERNAL int vdx_is_index_aq(const vdx_index *ix);
VDX_INTERNAL int vdx_is_acq(const vdx_index *ix);
VDX_INTERNAL int vdx_is_ivfaq(const vdx_index *ix);
VDX_INTERNAL vdx_status vdx_index_aq_reserve(vdx_aqi *p, int64_t n);
/* The centroid norms of an additive coarse quantizer (L2 exhaustive
 * search), computed when missing. */
VDX_INTERNAL vdx_status vdx_acq_norms(vdx_acq *q);
/* The FAISS class name of each kind by the quantizer's kind. */
VDX_INTERNAL const char *vdx_index_aq_name(int kind);

#endif
