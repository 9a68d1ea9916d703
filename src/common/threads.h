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

/* A part of a call handed to another thread (IndexShards' workers) or run
 * on a smaller team: until the matching vdx_team_leave, the calling thread's
 * parallel regions, and the public calls it makes (nested, so they keep
 * it), use `team` threads (at least 1). */
typedef struct vdx_team_saved {
    int team, icv;
} vdx_team_saved;
VDX_INTERNAL void vdx_team_enter(int team, vdx_team_saved *sv);
VDX_INTERNAL void vdx_team_leave(const vdx_team_saved *sv);

#endif
