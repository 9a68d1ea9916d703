/*
 * threads.h — team sizes for parallel regions (see threads.c).
 */
#ifndef VDX_THREADS_H
#define VDX_THREADS_H

#include "common.h"

/* Team size for a parallel region of the current call. */
VDX_INTERNAL int vdx_nthreads(void);
/* Work, in elementary steps (a float multiply-add in SIMD code counts
 * 1/8, a table look-up or a scalar compare 1), below which a call runs
 * serially: waking an OpenMP team costs microseconds on an idle machine and
 * a scheduler time slice (milliseconds) on a busy one, far more than half a
 * millisecond of work shared.  VECDEX_PAR_MIN_WORK overrides it (tests). */
#define VDX_PAR_MIN_WORK (1 << 20)
/* Team size for a region doing about `work` steps: 1 below the threshold
 * (the region then runs on the calling thread, no team woken), else
 * vdx_nthreads(). */
VDX_INTERNAL int vdx_nthreads_for(double work);
/* Bracket every public entry point that may run parallel regions. */
VDX_INTERNAL void vdx_team_begin(void);
VDX_INTERNAL void vdx_team_end(void);

#endif
