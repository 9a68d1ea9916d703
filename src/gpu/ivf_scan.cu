/*
 * ivf_scan.cu — scoring the inverted lists probed by each query (Jégou et
 * al., TPAMI 2011, IVFADC; FAISS's IVFFlatScan / IVFPQ / IVFSQ kernels),
 * one block per (probe, query):
 *
 *   - IVF-Flat and IVF-SQ: one warp per code, its lanes reading consecutive
 *     components (coalesced), a shuffle reduction per code; the query (or,
 *     for L2 with residual codes, its residual to the list's centroid) sits
 *     in shared memory;
 *   - IVF-PQ: the block first builds the (query, list) lookup table of M x
 *     2^nbits partial distances in shared memory (fp32 or fp16), directly
 *     from the residual or from the precomputed list term |r|^2 + 2<c, r>
 *     plus -2<x, r>, then each thread sums M table entries per code.
 *
 * Keys follow kernels.h: L2 distance, or minus the inner product (adding
 * <x, c> of the coarse search for residual codes).  A list's keys land at
 * the offset the host computed, so the candidates of a query form one row
 * for the selection kernel; ids are looked up only for the k selected
 * (ivf_map_kernel).
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>
#include <stdint.h>

#include "kernels.h"

#define NT 256

static __device__ __forceinline__ int masked_out(const vdx_gk_ivf_scan *a,
                                                 int64_t list, int64_t j) {
    if (!a->mask) return 0;
    int64_t p = a->slot_base[list] + j;
    return !((a->mask[p >> 3] >> (p & 7)) & 1);
}

static __device__ __forceinline__ float warp_sum(float s) {
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

/* Component i of a scalar-quantized code. */
static __device__ __forceinline__ float sq_component(const vdx_gk_ivf_scan *a,
                                                     const uint8_t *code,
                                                     int i) {
    switch (a->sq_layout) {
    case VDX_GK_SQ_U8: return a->sq_a[i] + a->sq_b[i] * (float)code[i];
    case VDX_GK_SQ_U4:
        return a->sq_a[i] +
               a->sq_b[i] * (float)((code[i >> 1] >> ((i & 1) << 2)) & 15);
    case VDX_GK_SQ_F16: return __half2float(((const __half *)code)[i]);
    default: {
        uint32_t h = ((const uint16_t *)code)[i];
        return __uint_as_float(h << 16);
    }
    }
}

/* Flat and SQ lists: one warp per code. */
static __device__ void scan_warp_per_code(const vdx_gk_ivf_scan *a,
                                          const float *qv, int64_t list,
                                          int64_t n, float add, float *keys) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int d = a->d;
    const uint8_t *codes = a->codes[list];
    for (int64_t j = warp; j < n; j += NT / 32) {
        if (masked_out(a, list, j)) {
            if (lane == 0) keys[j] = CUDART_INF_F;
            continue;
        }
        const uint8_t *code = codes + j * (int64_t)a->code_size;
        float s = 0;
        if (a->kind == VDX_GK_IVF_FLAT) {
            const float *y = (const float *)code;
            if (a->is_ip)
                for (int i = lane; i < d; i += 32) s += qv[i] * y[i];
            else
                for (int i = lane; i < d; i += 32) {
                    float t = qv[i] - y[i];
                    s += t * t;
                }
        } else {
            if (a->is_ip)
                for (int i = lane; i < d; i += 32)
                    s += qv[i] * sq_component(a, code, i);
            else
                for (int i = lane; i < d; i += 32) {
                    float t = qv[i] - sq_component(a, code, i);
                    s += t * t;
                }
        }
        s = warp_sum(s);
        if (lane == 0) keys[j] = a->is_ip ? -(add + s) : s;
    }
}

/* PQ lists: the lookup table, then one thread per code. */
static __device__ void scan_pq(const vdx_gk_ivf_scan *a, float *qv,
                               const float *x, int64_t list, int64_t p_index,
                               int64_t n, float *keys, void *lut_mem) {
    const int tid = threadIdx.x, d = a->d, M = a->M, nbits = a->nbits;
    const int ksub = 1 << nbits, dsub = d / M;
    const float *c = a->centroids + list * (int64_t)d;
    const int residual_l2 = a->by_residual && !a->is_ip;
    const int pre = residual_l2 && a->precomputed != NULL;
    float coarse = a->coarse[p_index];
    /* the vector the table is computed for */
    for (int i = tid; i < d; i += NT)
        qv[i] = residual_l2 && !pre ? x[i] - c[i] : x[i];
    __syncthreads();
    float *lut32 = (float *)lut_mem;
    __half *lut16 = (__half *)lut_mem;
    const float *pret = pre ? a->precomputed + list * (int64_t)M * ksub : NULL;
    for (int e = tid; e < M * ksub; e += NT) {
        int m = e / ksub, j = e - m * ksub;
        const float *cen = a->pq_centroids + ((int64_t)m * ksub + j) * dsub;
        const float *xs = qv + m * dsub;
        float v = 0;
        if (pre) {
            for (int t = 0; t < dsub; t++) v += xs[t] * cen[t];
            v = pret[e] - 2.0f * v + (m == 0 ? coarse : 0.0f);
        } else if (a->is_ip) {
            for (int t = 0; t < dsub; t++) v += xs[t] * cen[t];
        } else {
            for (int t = 0; t < dsub; t++) {
                float u = xs[t] - cen[t];
                v += u * u;
            }
        }
        if (a->lut_f16)
            lut16[e] = __float2half_rn(v);
        else
            lut32[e] = v;
    }
    __syncthreads();
    const float add = a->is_ip && a->by_residual ? coarse : 0.0f;
    const uint8_t *codes = a->codes[list];
    const int cs = a->code_size;
    for (int64_t j = tid; j < n; j += NT) {
        if (masked_out(a, list, j)) {
            keys[j] = CUDART_INF_F;
            continue;
        }
        const uint8_t *code = codes + j * (int64_t)cs;
        float s = 0;
        for (int m = 0; m < M; m++) {
            int idx = nbits == 8 ? code[m]
                                 : (code[m >> 1] >> ((m & 1) << 2)) & 15;
            int e = m * ksub + idx;
            s += a->lut_f16 ? __half2float(lut16[e]) : lut32[e];
        }
        keys[j] = a->is_ip ? -(add + s) : s;
    }
}

static __global__ void __launch_bounds__(NT) ivf_scan_kernel(const vdx_gk_ivf_scan a) {
    extern __shared__ float sm[];
    const int p = blockIdx.x, q = blockIdx.y;
    const int64_t pi = (int64_t)q * a.nprobe + p;
    const int64_t list = a.probes[pi];
    if (list < 0) return;
    const int64_t n = a.sizes[list];
    if (n == 0) return;
    float *keys = a.keys + a.offsets[(int64_t)q * (a.nprobe + 1) + p];
    const float *x = a.xq + (int64_t)q * a.d;
    float *qv = sm;
    if (a.kind == VDX_GK_IVF_PQ) {
        scan_pq(&a, qv, x, list, pi, n, keys, sm + ((a.d + 15) & ~15));
        return;
    }
    const int residual_l2 = a.by_residual && !a.is_ip;
    const float *c = residual_l2 ? a.centroids + list * (int64_t)a.d : NULL;
    for (int i = threadIdx.x; i < a.d; i += NT) qv[i] = c ? x[i] - c[i] : x[i];
    __syncthreads();
    float add = a.is_ip && a.by_residual ? a.coarse[pi] : 0.0f;
    scan_warp_per_code(&a, qv, list, n, add, keys);
}

/* Position in a query's row -> (probe, offset) -> id. */
static __global__ void ivf_map_kernel(const vdx_gk_ivf_map a) {
    const int64_t total = (int64_t)a.nq * a.k;
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * NT) {
        int64_t pos = a.labels[i];
        if (pos < 0) continue;
        const int64_t q = i / a.k;
        const int64_t *o = a.offsets + q * (a.nprobe + 1);
        const int64_t abs = o[0] + pos;
        /* last probe p with o[p] <= abs (empty lists share offsets) */
        int lo = 0, hi = a.nprobe - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >> 1;
            if (o[mid] <= abs)
                lo = mid;
            else
                hi = mid - 1;
        }
        const int64_t list = a.probes[q * a.nprobe + lo];
        const int64_t off = abs - o[lo];
        int64_t id;
        if (a.id_layout == VDX_GK_IDS_I64)
            id = ((const int64_t *)a.ids[list])[off];
        else if (a.id_layout == VDX_GK_IDS_I32)
            id = ((const int32_t *)a.ids[list])[off];
        else
            id = (list << 32) | off;
        a.labels[i] = id;
    }
}

extern "C" cudaError_t vdx_gk_ivf_scan_run(cudaStream_t s,
                                           const vdx_gk_ivf_scan *a) {
    if (a->nq <= 0 || a->nprobe <= 0) return cudaSuccess;
    if (a->nq > 65535 ||
        (a->kind == VDX_GK_IVF_PQ &&
         (a->M <= 0 || a->d % a->M != 0 || (a->nbits != 8 && a->nbits != 4))))
        return cudaErrorInvalidValue;
    size_t smem = vdx_gk_ivf_scan_smem(a) + 64;
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(
            ivf_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
            (int)smem);
        if (e != cudaSuccess) return e;
    }
    dim3 grid((unsigned)a->nprobe, (unsigned)a->nq);
    ivf_scan_kernel<<<grid, NT, smem, s>>>(*a);
    return cudaGetLastError();
}

extern "C" cudaError_t vdx_gk_ivf_map_run(cudaStream_t s,
                                          const vdx_gk_ivf_map *a) {
    int64_t total = (int64_t)a->nq * a->k;
    if (total <= 0) return cudaSuccess;
    int64_t b = (total + NT - 1) / NT;
    if (b > 65536) b = 65536;
    ivf_map_kernel<<<(unsigned)b, NT, 0, s>>>(*a);
    return cudaGetLastError();
}
