/*
 * interrupt.c — the process-wide interrupt check (vdx_set_interrupt_handler)
 * that long-running calls poll between blocks of work.
 *
 * Polls are rate-limited per thread with the coarse monotonic clock (a vDSO
 * read of a few ns), so a loop may poll every block and the handler still
 * runs at most every VDX_POLL_MS: the Python binding's handler takes the
 * GIL, which must not happen per block.
 */
#include <omp.h>
#include <time.h>

#include "interrupt.h"

#define VDX_POLL_MS 50

static vdx_interrupt_fn g_fn;
static void *g_ctx;
static _Thread_local int64_t tl_last_ms;

void vdx_set_interrupt_handler(vdx_interrupt_fn fn, void *ctx) {
    __atomic_store_n(&g_ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&g_fn, fn, __ATOMIC_RELEASE);
}

static int64_t now_ms(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vdx_interrupted(void) {
    vdx_interrupt_fn fn = __atomic_load_n(&g_fn, __ATOMIC_ACQUIRE);
    if (!fn) return 0;
    int64_t t = now_ms();
    if (t - tl_last_ms < VDX_POLL_MS) return 0;
    tl_last_ms = t;
    return fn(__atomic_load_n(&g_ctx, __ATOMIC_RELAXED)) != 0;
}

int vdx_poll_stop(int *stop) {
    if (omp_get_thread_num() == 0 && !__atomic_load_n(stop, __ATOMIC_RELAXED) &&
        vdx_interrupted())
        __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
    return __atomic_load_n(stop, __ATOMIC_RELAXED);
}
