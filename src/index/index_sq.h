/*
 * index_sq.h — private structures of the scalar-quantizer index kinds:
 * IndexScalarQuantizer (a flat array of SQ codes) and
 * IndexIVFScalarQuantizer (a vdx_ivf whose codec state lives in vdx_ivfsq).
 */
#ifndef VDX_INDEX_SQ_H
#define VDX_INDEX_SQ_H

#include "index_internal.h"
#include "quant/sq.h"

typedef struct vdx_index_sq {
    vdx_index base;
    vdx_sq sq;
    uint8_t *codes; /* ntotal x sq.code_size */
    int64_t cap;    /* capacity in codes */
    vdx_mapping *map; /* non-NULL: codes borrowed from this file map (cap 0);
                         a change copies them first */
} vdx_index_sq;

typedef struct vdx_ivfsq {
    vdx_ivf ivf;
    vdx_sq sq;
    int by_residual;
} vdx_ivfsq;

VDX_INTERNAL int vdx_is_index_sq(const vdx_index *ix);
VDX_INTERNAL int vdx_is_ivfsq(const vdx_index *ix);
/* Makes room for n codes in total. */
VDX_INTERNAL vdx_status vdx_index_sq_reserve(vdx_index_sq *s, int64_t n);
/* Builds an IVF-SQ index (ownership of quantizer passes on success). */
VDX_INTERNAL vdx_status vdx_ivfsq_alloc(vdx_index *quantizer, int64_t d,
                                        int64_t nlist, int qtype,
                                        vdx_metric metric, int by_residual,
                                        vdx_ivfsq **out);
/* The scalar quantizer of an SQ index of either kind, or NULL. */
VDX_INTERNAL vdx_sq *vdx_index_get_sq(const vdx_index *ix);

#endif
