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
