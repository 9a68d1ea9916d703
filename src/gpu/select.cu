/*
 * select.cu — k-selection on the device: the k smallest keys of each row
 * of a matrix (a tile of sgemm output, the candidates of an IVF search, the
 * partial results of several tiles), one thread block per row.
 *
 * The algorithm is a block-wide radix select followed by a sort of the k
 * survivors (cf. Alabi et al., "Fast k-selection algorithms for graphics
 * processing units", JEA 2012, and the radix selection of Pytorch's topk):
 *
 *   1. keys are mapped to order-preserving 32-bit patterns (flip every bit
 *      of a negative float, the sign bit of a positive one);
 *   2. three passes over the row, each a 2048-bin (then 1024-bin) shared
 *      histogram of the next 11 (11, 10) bits of the keys that match the
 *      prefix found so far, find the exact bit pattern T of the k-th
 *      smallest key and how many keys equal to T belong to the k;
 *   3. one more pass gathers every key < T (any order, an atomic slot
 *      counter) and the first keys == T in position order (a block-wide
 *      prefix count per chunk of the row), which makes the result
 *      deterministic: ties at the k-th place go to the lowest positions,
 *      i.e. the lowest ids for flat tiles, as the CPU heap does;
 *   4. a bitonic sort of the next power of two >= k entries in shared
 *      memory, by (key, position).
 *
 * Four reads of the row in all (the row of a tile stays in L2 between
 * them), k limited by shared memory: 8 bytes per entry, so 16384 on Hopper
 * (227 KB per block) where FAISS stops at 2048.  k = 1 takes a one-pass
 * arg-min instead.  The keys are computed on the fly from the stored values
 * (|y|^2 - 2<x, y> for L2 tiles), so the distance matrix is never written.
 */
#include <cuda_runtime.h>
#include <math_constants.h>
#include <stdint.h>

#include "kernels.h"

#define NT VDX_GK_SELECT_THREADS

static __device__ __forceinline__ uint32_t key_bits(float f) {
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* The key of entry j of a row (see VDX_GK_KEYS / L2 / IP, and the mask). */
static __device__ __forceinline__ float key_of(const vdx_gk_select *a,
                                               const float *row, int64_t j) {
    float v = row[j];
    float key = a->mode == VDX_GK_L2   ? a->norms[a->pos_base + j] - 2.0f * v
                : a->mode == VDX_GK_IP ? -v
                                       : v;
    if (a->mask) {
        int64_t p = a->pos_base + j;
        if (!((a->mask[p >> 3] >> (p & 7)) & 1)) key = CUDART_INF_F;
    }
    return key;
}

/* Exclusive prefix sum of v over the block (blockDim.x a multiple of 32,
 * every thread calls it); *total receives the sum.  wsum: 32 shared words. */
static __device__ uint32_t block_scan(uint32_t v, uint32_t *wsum,
                                      uint32_t *total) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int nw = blockDim.x >> 5;
    uint32_t x = v;
    for (int o = 1; o < 32; o <<= 1) {
        uint32_t y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) wsum[w] = x;
    __syncthreads();
    if (w == 0) {
        uint32_t s = lane < nw ? wsum[lane] : 0;
        for (int o = 1; o < 32; o <<= 1) {
            uint32_t y = __shfl_up_sync(0xffffffffu, s, o);
            if (lane >= o) s += y;
        }
        if (lane < nw) wsum[lane] = s;
    }
    __syncthreads();
    uint32_t before = (w > 0 ? wsum[w - 1] : 0) + x - v;
    *total = wsum[nw - 1];
    __syncthreads(); /* wsum may be reused at once */
    return before;
}

/* Where row r lives: its values, length and the offset of its ids. */
static __device__ __forceinline__ const float *row_of(const vdx_gk_select *a,
                                                      int64_t r, int64_t *len,
                                                      int64_t *off) {
    if (a->row_start) {
        int64_t s0 = a->row_start[r];
        *len = a->row_start[r + 1] - s0;
        *off = s0;
        return a->v + s0;
    }
    *len = a->n;
    *off = r * a->ld;
    return a->v + r * a->ld;
}

static __device__ __forceinline__ int64_t id_of(const vdx_gk_select *a,
                                                int64_t off, int64_t pos) {
    if (a->in_ids) return a->in_ids[off + pos];
    return a->row_start ? pos : a->pos_base + pos;
}

static __global__ void __launch_bounds__(NT)
    select_kernel(const vdx_gk_select a, int P) {
    extern __shared__ uint32_t smem[];
    uint32_t *hist = smem;                           /* 2048 bins   */
    uint32_t *ctr = smem + VDX_GK_SELECT_HIST;       /* 32 counters */
    uint32_t *wsum = ctr + 32;                       /* 32 words    */
    float *skey = (float *)(ctr + 64);               /* P keys      */
    int32_t *spos = (int32_t *)(skey + P);           /* P positions */
    const int tid = threadIdx.x;
    const int64_t r = blockIdx.x;
    int64_t len, off;
    const float *row = row_of(&a, r, &len, &off);
    const int k = a.k;
    const int ksel = len < (int64_t)k ? (int)len : k;

    if (len <= (int64_t)k) {
        for (int64_t j = tid; j < len; j += NT) {
            skey[j] = key_of(&a, row, j);
            spos[j] = (int32_t)j;
        }
    } else {
        /* 2. the bit pattern T of the k-th smallest key */
        uint32_t prefix = 0, pmask = 0;
        uint32_t kk = (uint32_t)k; /* rank of T among the matching keys */
        for (int pass = 0; pass < 3; pass++) {
            const int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
            const int nbins = pass == 2 ? 1024 : 2048;
            const int per = nbins / NT;
            for (int b = tid; b < nbins; b += NT) hist[b] = 0;
            __syncthreads();
            for (int64_t j = tid; j < len; j += NT) {
                uint32_t u = key_bits(key_of(&a, row, j));
                if ((u & pmask) == prefix)
                    atomicAdd(&hist[(u >> shift) & (uint32_t)(nbins - 1)], 1u);
            }
            __syncthreads();
            uint32_t local = 0;
            for (int i = 0; i < per; i++) local += hist[tid * per + i];
            uint32_t total;
            uint32_t before = block_scan(local, wsum, &total);
            if (before < kk && kk <= before + local) {
                uint32_t c = before;
                for (int i = 0; i < per; i++) {
                    uint32_t h = hist[tid * per + i];
                    if (c + h >= kk) {
                        ctr[0] = (uint32_t)(tid * per + i);
                        ctr[1] = c;
                        break;
                    }
                    c += h;
                }
            }
            __syncthreads();
            prefix |= ctr[0] << shift;
            pmask |= (uint32_t)(nbins - 1) << shift;
            kk -= ctr[1];
            __syncthreads();
        }
        /* 3. gather: all keys < T, then the first kk keys == T */
        const uint32_t T = prefix;
        const int nlt = k - (int)kk;
        if (tid == 0) ctr[2] = 0;
        __syncthreads();
        uint32_t taken = 0; /* keys == T taken so far (block-uniform) */
        for (int64_t base = 0; base < len; base += NT) {
            int64_t j = base + tid;
            float key = 0;
            uint32_t u = 0xffffffffu;
            if (j < len) {
                key = key_of(&a, row, j);
                u = key_bits(key);
                if (u < T) {
                    uint32_t slot = atomicAdd(&ctr[2], 1u);
                    skey[slot] = key;
                    spos[slot] = (int32_t)j;
                }
            }
            if (taken < kk) { /* uniform: every thread calls block_scan */
                uint32_t flag = (j < len && u == T) ? 1u : 0u, tot;
                uint32_t rank = block_scan(flag, wsum, &tot);
                if (flag && taken + rank < kk) {
                    int slot = nlt + (int)(taken + rank);
                    skey[slot] = key;
                    spos[slot] = (int32_t)j;
                }
                taken += tot;
            }
        }
    }
    /* 4. pad to P and sort by (key, position) */
    for (int i = ksel + tid; i < P; i += NT) {
        skey[i] = CUDART_INF_F;
        spos[i] = 0x7fffffff;
    }
    __syncthreads();
    for (int size = 2; size <= P; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int t = tid; t < P / 2; t += NT) {
                int i = 2 * t - (t & (stride - 1)), j = i + stride;
                int up = (i & size) == 0;
                float ki = skey[i], kj = skey[j];
                int32_t pi = spos[i], pj = spos[j];
                int gt = ki > kj || (ki == kj && pi > pj);
                if (gt == up) {
                    skey[i] = kj;
                    skey[j] = ki;
                    spos[i] = pj;
                    spos[j] = pi;
                }
            }
            __syncthreads();
        }
    }
    float *ok = a.out_keys + r * a.out_ld;
    int64_t *oi = a.out_ids + r * a.out_ld;
    for (int i = tid; i < k; i += NT) {
        float key = skey[i];
        if (i >= ksel || key == CUDART_INF_F) {
            ok[i] = CUDART_INF_F;
            oi[i] = -1;
        } else {
            ok[i] = key;
            oi[i] = id_of(&a, off, spos[i]);
        }
    }
}

/* k = 1: one pass, the smallest (key, position) of the row. */
static __global__ void __launch_bounds__(NT) argmin_kernel(const vdx_gk_select a) {
    __shared__ float wk[NT / 32];
    __shared__ int64_t wp[NT / 32];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const int64_t r = blockIdx.x;
    int64_t len, off;
    const float *row = row_of(&a, r, &len, &off);
    float best = CUDART_INF_F;
    int64_t bp = INT64_MAX;
    for (int64_t j = tid; j < len; j += NT) {
        float key = key_of(&a, row, j);
        if (key < best) { /* j increases: the first minimum stays */
            best = key;
            bp = j;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ok = __shfl_xor_sync(0xffffffffu, best, o);
        int64_t op = __shfl_xor_sync(0xffffffffu, bp, o);
        if (ok < best || (ok == best && op < bp)) {
            best = ok;
            bp = op;
        }
    }
    if (lane == 0) {
        wk[w] = best;
        wp[w] = bp;
    }
    __syncthreads();
    if (tid == 0) {
        for (int i = 1; i < NT / 32; i++)
            if (wk[i] < best || (wk[i] == best && wp[i] < bp)) {
                best = wk[i];
                bp = wp[i];
            }
        if (best == CUDART_INF_F) {
            a.out_keys[r * a.out_ld] = CUDART_INF_F;
            a.out_ids[r * a.out_ld] = -1;
        } else {
            a.out_keys[r * a.out_ld] = best;
            a.out_ids[r * a.out_ld] = id_of(&a, off, bp);
        }
    }
}

extern "C" cudaError_t vdx_gk_select_run(cudaStream_t s,
                                         const vdx_gk_select *a) {
    if (a->nrows <= 0) return cudaSuccess;
    if (a->nrows > 0x7fffffffLL || a->k < 1) return cudaErrorInvalidValue;
    if (a->k == 1) {
        argmin_kernel<<<(unsigned)a->nrows, NT, 0, s>>>(*a);
        return cudaGetLastError();
    }
    int P = 1;
    while (P < a->k) P <<= 1;
    size_t smem = vdx_gk_select_smem(a->k);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(
            select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
            (int)smem);
        if (e != cudaSuccess) return e;
    }
    select_kernel<<<(unsigned)a->nrows, NT, smem, s>>>(*a, P);
    return cudaGetLastError();
}
