/*
 * pretransform.h — private entry points of IndexPreTransform
 * (pretransform.c) for the file reader and writer.
 */
#ifndef VDX_PRETRANSFORM_H
#define VDX_PRETRANSFORM_H

#include "index_internal.h"

/* Longest chain accepted (API and files). */
#define VDX_PT_MAX_CHAIN 64

VDX_INTERNAL int vdx_is_pretransform(const vdx_index *ix);
/* Builds the index over chain[0..nchain) (copied; the transforms and sub
 * are owned on success) without checks: the reader checks the dimensions. */
VDX_INTERNAL vdx_status vdx_pretransform_make(vdx_vt **chain, int64_t nchain,
                                              vdx_index *sub,
                                              vdx_index **out);

#endif
