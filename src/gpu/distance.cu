/*
 * distance.cu — the small element-wise kernels around the sgemm of exact
 * search: squared norms of stored rows (float or fp16), float <-> fp16
 * conversion, and the finishing of selected keys into distances.
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>

#include "kernels.h"

#define NT 256

/* One warp per row: lanes read consecutive components (coalesced). */
static __global__ void norms_f32_kernel(const float *x, int64_t n, int d,
                                        float *out) {
    const int64_t row = (int64_t)blockIdx.x * (NT / 32) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= n) return;
    const float *p = x + row * d;
    float s = 0;
    for (int i = lane; i < d; i += 32) s += p[i] * p[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) out[row] = s;
}

static __global__ void norms_f16_kernel(const __half *x, int64_t n, int d,
                                        float *out) {
    const int64_t row = (int64_t)blockIdx.x * (NT / 32) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= n) return;
    const __half *p = x + row * d;
    float s = 0;
    for (int i = lane; i < d; i += 32) {
        float v = __half2float(p[i]);
        s += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) out[row] = s;
}

static __global__ void f32_to_f16_kernel(const float *x, int64_t n,
                                         __half *out) {
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        out[i] = __float2half_rn(x[i]);
}

static __global__ void f16_to_f32_kernel(const __half *x, int64_t n,
                                         float *out) {
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        out[i] = __half2float(x[i]);
}

static __global__ void finish_kernel(float *keys, const int64_t *ids,
                                     int64_t total, int k,
                                     const float *qnorms, int is_ip) {
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * NT) {
        if (ids[i] == -1) {
            keys[i] = is_ip ? -FLT_MAX : FLT_MAX;
        } else if (is_ip) {
            keys[i] = -keys[i];
        } else {
            float v = keys[i] + (qnorms ? qnorms[i / k] : 0.0f);
            keys[i] = v < 0 ? 0 : v;
        }
    }
}

static unsigned grid_for(int64_t n) {
    int64_t b = (n + NT - 1) / NT;
    if (b > 65536) b = 65536; /* grid-stride loops cover the rest */
    return (unsigned)(b < 1 ? 1 : b);
}

static unsigned rows_grid(int64_t n) {
    return (unsigned)((n + NT / 32 - 1) / (NT / 32));
}

extern "C" cudaError_t vdx_gk_norms_f32(cudaStream_t s, const float *x,
                                        int64_t n, int d, float *out) {
    if (n <= 0) return cudaSuccess;
    norms_f32_kernel<<<rows_grid(n), NT, 0, s>>>(x, n, d, out);
    return cudaGetLastError();
}

extern "C" cudaError_t vdx_gk_norms_f16(cudaStream_t s, const uint16_t *x,
                                        int64_t n, int d, float *out) {
    if (n <= 0) return cudaSuccess;
    norms_f16_kernel<<<rows_grid(n), NT, 0, s>>>((const __half *)x, n, d, out);
    return cudaGetLastError();
}

extern "C" cudaError_t vdx_gk_f32_to_f16(cudaStream_t s, const float *x,
                                         int64_t n, uint16_t *out) {
    if (n <= 0) return cudaSuccess;
    f32_to_f16_kernel<<<grid_for(n), NT, 0, s>>>(x, n, (__half *)out);
    return cudaGetLastError();
}

extern "C" cudaError_t vdx_gk_f16_to_f32(cudaStream_t s, const uint16_t *x,
                                         int64_t n, float *out) {
    if (n <= 0) return cudaSuccess;
    f16_to_f32_kernel<<<grid_for(n), NT, 0, s>>>((const __half *)x, n, out);
    return cudaGetLastError();
}

extern "C" cudaError_t vdx_gk_finish(cudaStream_t s, float *keys,
                                     const int64_t *ids, int64_t nrows, int k,
                                     const float *qnorms, int is_ip) {
    int64_t total = nrows * (int64_t)k;
    if (total <= 0) return cudaSuccess;
    finish_kernel<<<grid_for(total), NT, 0, s>>>(keys, ids, total, k, qnorms,
                                                 is_ip);
    return cudaGetLastError();
}
