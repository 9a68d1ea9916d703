/*
 * threads.h — team sizes for parallel regions (see threads.c).
 */
#ifndef VDX_THREADS_H
#define VDX_THREADS_H

#include "common.h"

/* Team size for a parallel region of the current call. */
VDX_INTERNAL int vdx_nthreads(void);
/* Bracket every public entry point that may run parallel regions. */
VDX_INTERNAL void vdx_team_begin(void);
VDX_INTERNAL void vdx_team_end(void);

#endif
