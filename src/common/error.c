/*
 * error.c — the per-thread last-error message and the pinned status names.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include <string.h>

#include "common.h"

/* finite test on the bit pattern: immune to -ffast-math and vectorisable */
static inline int isfinite_f(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return (u & 0x7f800000u) != 0x7f800000u;
}

static _Thread_local char vdx_err_msg[512];

vdx_status vdx_raise(vdx_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vdx_err_msg, sizeof vdx_err_msg, fmt, ap);
    va_end(ap);
    return code;
}

void vdx_clear_error(void) { vdx_err_msg[0] = 0; }

const char *vdx_last_error(void) { return vdx_err_msg; }

const char *vdx_status_name(vdx_status s) {
    switch (s) {
    case VDX_OK: return "VDX_OK";
    case VDX_ERR_INVALID_ARGUMENT: return "VDX_ERR_INVALID_ARGUMENT";
    case VDX_ERR_OUT_OF_MEMORY: return "VDX_ERR_OUT_OF_MEMORY";
    case VDX_ERR_NOT_TRAINED: return "VDX_ERR_NOT_TRAINED";
    case VDX_ERR_IO: return "VDX_ERR_IO";
    case VDX_ERR_FORMAT: return "VDX_ERR_FORMAT";
    case VDX_ERR_UNSUPPORTED: return "VDX_ERR_UNSUPPORTED";
    case VDX_ERR_NOT_FOUND: return "VDX_ERR_NOT_FOUND";
    case VDX_ERR_INTERNAL: return "VDX_ERR_INTERNAL";
    case VDX_ERR_INTERRUPTED: return "VDX_ERR_INTERRUPTED";
    case VDX_ERR_BUSY: return "VDX_ERR_BUSY";
    case VDX_ERR_READ_ONLY: return "VDX_ERR_READ_ONLY";
    }
    return "VDX_ERR_UNKNOWN";
}

float vdx_max_magnitude(int64_t d) {
    /* Components bounded by B keep every squared distance the library
     * forms below FLT_MAX: IVF residuals and PQ/SQ reconstructions stay
     * within 2B per component, so an L2 distance (or its |x|^2 + |y|^2 -
     * 2<x, y> expansion) is at most 4 d (2B)^2 = 16 d B^2 < FLT_MAX / 2. */
    if (d < 1) d = 1;
    return (float)sqrt((double)FLT_MAX / (32.0 * (double)d));
}

static vdx_status check_values(const float *x, int64_t n, int64_t d,
                               const char *what, float lim) {
    size_t total = (size_t)n * (size_t)d;
    uint32_t lim_bits;
    memcpy(&lim_bits, &lim, 4);
    /* one branch-free pass at memory speed: the largest magnitude as bits
     * (non-negative floats order as their bit patterns, Inf and NaN above
     * every finite value); the offender is located only when one exists */
    uint32_t worst = 0;
    for (size_t i = 0; i < total; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        u &= 0x7fffffffu;
        worst = u > worst ? u : worst;
    }
    if (worst <= lim_bits) return VDX_OK;
    for (size_t i = 0; i < total; i++) {
        long long row = (long long)(i / (size_t)d), col = (long long)(i % (size_t)d);
        if (!isfinite_f(x[i]))
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "%s contain a non-finite value (%s) at row %lld, "
                             "column %lld",
                             what, x[i] != x[i] ? "NaN" : "Inf", row, col);
        if (fabsf(x[i]) > lim)
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "%s contain a value too large for float32 "
                             "distances: %g at row %lld, column %lld (vecdex "
                             "accepts magnitudes up to %.3g for d=%lld)",
                             what, (double)x[i], row, col, (double)lim,
                             (long long)d);
    }
    return VDX_OK;
}

vdx_status vdx_check_vectors(const float *x, int64_t n, int64_t d,
                             const char *what) {
    return check_values(x, n, d, what, vdx_max_magnitude(d));
}

vdx_status vdx_check_finite(const float *x, int64_t n, int64_t d,
                            const char *what) {
    return check_values(x, n, d, what, FLT_MAX);
}
