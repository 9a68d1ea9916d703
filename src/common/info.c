/*
 * info.c — version, build information, thread control and small vector
 * utilities.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>

#include "common.h"
#include "common/threads.h"
#include "simd/kernels.h"

const char *vdx_version(void) { return VDX_VERSION_STRING; }

const char *vdx_simd_level(void) { return vdx_kernels_get()->name; }

const char *vdx_build_info(void) {
    static _Thread_local char buf[256];
    snprintf(buf, sizeof buf,
             "vecdex %s; simd=%s; blas=OpenBLAS; openmp=%d (threads=%d); "
             "cuda=%s",
             VDX_VERSION_STRING, vdx_simd_level(), (int)_OPENMP,
             vdx_get_num_threads(),
#ifdef VDX_HAVE_CUDA
             "yes"
#else
             "no"
#endif
    );
    return buf;
}

vdx_status vdx_normalize_L2(int64_t n, int64_t d, float *x) {
    vdx_clear_error();
    if (n < 0 || d <= 0 || d > VDX_MAX_DIM || (n > 0 && !x))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "normalize_L2: bad shape n=%lld d=%lld or NULL x",
                         (long long)n, (long long)d);
    const vdx_kernels *K = vdx_kernels_get();
    vdx_team_begin();
#pragma omp parallel for if (n * d > 65536) schedule(static) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++) {
        float *row = x + i * d;
        float nr = K->norm_sqr(row, (size_t)d);
        if (nr > 0) {
            float inv = 1.0f / sqrtf(nr);
            for (int64_t j = 0; j < d; j++) row[j] *= inv;
        }
    }
    vdx_team_end();
    return VDX_OK;
}
