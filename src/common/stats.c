/*
 * stats.c — process-wide search counters, the counterpart of FAISS's
 * global IndexIVFStats / HNSWStats objects (faiss.cvar.indexIVF_stats).
 *
 * They are statistics, not tunables: no search reads them, so concurrent
 * searches stay independent (their sums just add up).  Each search call
 * accumulates locally and adds its totals with relaxed atomic adds; a
 * reader racing with a search may see part of that search's counts.
 * Times are kept in nanoseconds (integers add atomically) and reported in
 * milliseconds, as FAISS does.
 */
#include <time.h>

#include "stats.h"

static int64_t g_ivf[6]; /* nq, nlist, ndis, nheap, quant_ns, search_ns */
static int64_t g_hnsw[4]; /* n1, n2, ndis, nhops */

int64_t vdx_stats_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void add(int64_t *c, int64_t v) {
    if (v) __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

void vdx_stats_ivf_add(int64_t nq, int64_t nlist, int64_t ndis, int64_t nheap,
                       int64_t quant_ns, int64_t search_ns) {
    add(&g_ivf[0], nq);
    add(&g_ivf[1], nlist);
    add(&g_ivf[2], ndis);
    add(&g_ivf[3], nheap);
    add(&g_ivf[4], quant_ns);
    add(&g_ivf[5], search_ns);
}

void vdx_stats_hnsw_add(int64_t n1, int64_t n2, int64_t ndis, int64_t nhops) {
    add(&g_hnsw[0], n1);
    add(&g_hnsw[1], n2);
    add(&g_hnsw[2], ndis);
    add(&g_hnsw[3], nhops);
}

static int64_t load(const int64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

vdx_status vdx_ivf_stats_get(vdx_ivf_stats *out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    out->nq = load(&g_ivf[0]);
    out->nlist = load(&g_ivf[1]);
    out->ndis = load(&g_ivf[2]);
    out->nheap_updates = load(&g_ivf[3]);
    out->quantization_time = (double)load(&g_ivf[4]) / 1e6;
    out->search_time = (double)load(&g_ivf[5]) / 1e6;
    return VDX_OK;
}

void vdx_ivf_stats_reset(void) {
    for (int i = 0; i < 6; i++) __atomic_store_n(&g_ivf[i], 0, __ATOMIC_RELAXED);
}

vdx_status vdx_hnsw_stats_get(vdx_hnsw_stats *out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    out->n1 = load(&g_hnsw[0]);
    out->n2 = load(&g_hnsw[1]);
    out->ndis = load(&g_hnsw[2]);
    out->nhops = load(&g_hnsw[3]);
    return VDX_OK;
}

void vdx_hnsw_stats_reset(void) {
    for (int i = 0; i < 4; i++) __atomic_store_n(&g_hnsw[i], 0, __ATOMIC_RELAXED);
}
