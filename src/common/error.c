/*
 * error.c — the per-thread last-error message and the pinned status names.
 */
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
    }
    return "VDX_ERR_UNKNOWN";
}

vdx_status vdx_check_finite(const float *x, int64_t n, int64_t d,
                            const char *what) {
    size_t total = (size_t)n * (size_t)d;
    /* branch-free accumulation keeps this at memory speed; locate the
     * offender only when one exists */
    int bad = 0;
    for (size_t i = 0; i < total; i++) bad |= !isfinite_f(x[i]);
    if (!bad) return VDX_OK;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite_f(x[i]))
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "%s contains a non-finite value (%s) at row %lld, "
                             "column %lld",
                             what, x[i] != x[i] ? "NaN" : "Inf",
                             (long long)(i / (size_t)d),
                             (long long)(i % (size_t)d));
    }
    return VDX_OK;
}
