/*
 * stats.h — process-wide search counters (FAISS's indexIVF_stats,
 * hnsw_stats), see stats.c.  Searches count into locals and add them here
 * once per call, so the cost is a few atomic adds per search.
 */
#ifndef VDX_STATS_H
#define VDX_STATS_H

#include "common.h"

/* Monotonic clock in nanoseconds (for the stats' times). */
VDX_INTERNAL int64_t vdx_stats_now_ns(void);

/* Adds one IVF search call's counts: nq queries, nlist non-empty lists
 * visited, ndis codes scored, nheap candidates that entered a result heap,
 * quant_ns spent in the coarse step, search_ns in the whole call. */
VDX_INTERNAL void vdx_stats_ivf_add(int64_t nq, int64_t nlist, int64_t ndis,
                                    int64_t nheap, int64_t quant_ns,
                                    int64_t search_ns);

/* Adds one HNSW search call's counts (see vdx_hnsw_stats). */
VDX_INTERNAL void vdx_stats_hnsw_add(int64_t n1, int64_t n2, int64_t ndis,
                                     int64_t nhops);

#endif
