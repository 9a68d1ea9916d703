/*
 * threads.c — how many threads a vecdex call uses.
 *
 * The count is a library-wide setting (vdx_set_num_threads), not OpenMP's
 * per-thread ICV, so that setting it from one thread applies to calls from
 * every thread.  Calls in flight are counted, and each public call takes an
 * equal share of the setting (at least one thread): two application threads
 * searching at once get half the threads each instead of oversubscribing
 * the cores, where spinning OpenMP teams slow everyone down.  Every parallel
 * region asks vdx_nthreads() for its team size.
 *
 * Both the setting and OpenMP's default (OMP_NUM_THREADS) are clamped to
 * vdx_max_threads(): 4 threads per processor, at least 64 and at most 1024.
 * libgomp cannot fail a team gracefully: past what the system lets it
 * create it exits the process ("Thread creation failed"), and teams of
 * 1e5 threads overflowed its bookkeeping (a segfault).  No search or
 * training gains from more than a few threads per core.
 */
#include <omp.h>
#include <stdlib.h>

#include "threads.h"

static int g_setting;          /* 0 = not set: OpenMP's default */
static int g_default;          /* captured once */
static int g_active;           /* public calls in flight */
static _Thread_local int tl_team, tl_depth, tl_saved_icv;

int vdx_max_threads(void) {
    static int cap;
    int c = __atomic_load_n(&cap, __ATOMIC_RELAXED);
    if (c <= 0) {
        c = 4 * omp_get_num_procs();
        c = c < 64 ? 64 : c > 1024 ? 1024 : c;
        __atomic_store_n(&cap, c, __ATOMIC_RELAXED);
    }
    return c;
}

static int clamp_threads(int n) {
    int c = vdx_max_threads();
    return n < 1 ? 1 : n > c ? c : n;
}

static int setting(void) {
    int s = __atomic_load_n(&g_setting, __ATOMIC_RELAXED);
    if (s > 0) return s;
    int d = __atomic_load_n(&g_default, __ATOMIC_RELAXED);
    if (d <= 0) {
        d = clamp_threads(omp_get_max_threads()); /* honours OMP_NUM_THREADS */
        __atomic_store_n(&g_default, d, __ATOMIC_RELAXED);
    }
    return d;
}

void vdx_set_num_threads(int n) {
    __atomic_store_n(&g_setting, n > 0 ? clamp_threads(n) : 0, __ATOMIC_RELAXED);
}

int vdx_get_num_threads(void) { return setting(); }

int vdx_nthreads(void) { return tl_team > 0 ? tl_team : setting(); }

static double min_work(void) {
    static long long w; /* benign race: all threads compute the same value */
    long long v = __atomic_load_n(&w, __ATOMIC_RELAXED);
    if (v <= 0) {
        const char *e = getenv("VECDEX_PAR_MIN_WORK");
        double f = e && *e ? atof(e) : VDX_PAR_MIN_WORK;
        v = f >= 1 && f < 1e18 ? (long long)f : 1; /* also NaN */
        __atomic_store_n(&w, v, __ATOMIC_RELAXED);
    }
    return (double)v;
}

int vdx_nthreads_for(double work) {
    int n = vdx_nthreads();
    return n > 1 && work < min_work() ? 1 : n;
}

void vdx_team_begin(void) {
    if (tl_depth++ > 0) return; /* nested public call: keep the share */
    int active = __atomic_add_fetch(&g_active, 1, __ATOMIC_RELAXED);
    int team = setting() / (active > 0 ? active : 1);
    tl_team = team > 0 ? team : 1;
    /* BLAS called outside our parallel regions sizes its own team from this
     * thread's OpenMP setting: keep it within the share too */
    tl_saved_icv = omp_get_max_threads();
    if (tl_saved_icv != tl_team) omp_set_num_threads(tl_team);
}

void vdx_team_end(void) {
    if (--tl_depth > 0) return;
    __atomic_sub_fetch(&g_active, 1, __ATOMIC_RELAXED);
    if (tl_saved_icv != tl_team) omp_set_num_threads(tl_saved_icv);
    tl_team = 0;
}

void vdx_team_enter(int team, vdx_team_saved *sv) {
    sv->team = tl_team;
    sv->icv = omp_get_max_threads();
    tl_depth++; /* public calls made meanwhile are nested: they keep it */
    tl_team = team > 0 ? team : 1;
    if (sv->icv != tl_team) omp_set_num_threads(tl_team);
}

void vdx_team_leave(const vdx_team_saved *sv) {
    tl_depth--;
    if (sv->icv != tl_team) omp_set_num_threads(sv->icv);
    tl_team = sv->team;
}

int vdx_check_openmp(void) {
    /* a team of 2 must really run 2 threads, each seeing its own number */
    int seen[2] = {0, 0}, size = 0;
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num();
        if (t >= 0 && t < 2) seen[t] = 1;
#pragma omp master
        size = omp_get_num_threads();
    }
    return size == 2 && seen[0] && seen[1];
}
