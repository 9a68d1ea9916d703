/*
 * emu.c — a CPU stand-in for the device, for test builds only
 * (-DVDX_GPU=EMULATE): the few CUDA runtime calls the GPU host code makes,
 * cuBLAS's sgemm / GemmEx, and a CPU twin of every kernel launcher of
 * src/gpu/kernels.h, written from the contracts there.  "Device" memory is
 * host memory, streams are synchronous.  With it the host side of the GPU
 * part (resources and the pool, tiling and paging, IVF list management,
 * cloning, shards and replicas, selectors, error paths) runs in CI on
 * machines without a GPU.  It says nothing about the CUDA kernels
 * themselves: those are checked by tests/python/test_gpu.py on a GPU.
 *
 * VECDEX_GPU_EMU_MEMORY=<bytes> sets the emulated device's memory (default
 * 4 GiB), so that out-of-memory paths can be tested.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/blas.h"
#include "gpu/gpu_internal.h"

/* ---- the runtime ---------------------------------------------------------- */

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t mem_used, mem_total;
static cudaError_t last_error = cudaSuccess;

static size_t total_memory(void) {
    if (!mem_total) {
        const char *e = getenv("VECDEX_GPU_EMU_MEMORY");
        mem_total = e && *e ? (size_t)strtoull(e, NULL, 10) : ((size_t)4 << 30);
    }
    return mem_total;
}

static cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    strcpy(p->name, "vecdex CPU emulation of a GPU");
    p->major = 9;
    p->minor = 0;
    p->totalGlobalMem = total_memory();
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr,
                                   int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice);
    *value = attr == cudaDevAttrMaxSharedMemoryPerBlockOptin ? 232448 : 0;
    return cudaSuccess;
}
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    default: return "emulated error";
    }
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    default: return "cudaErrorUnknown";
    }
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    pthread_mutex_lock(&mem_lock);
    *tot = total_memory();
    *fr = *tot - mem_used;
    pthread_mutex_unlock(&mem_lock);
    return cudaSuccess;
}
static char the_stream;
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    (void)flags;
    *s = (cudaStream_t)(void *)&the_stream;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}

/* allocations carry their size in a 64-byte header */
cudaError_t cudaMalloc(void **p, size_t size) {
    *p = NULL;
    pthread_mutex_lock(&mem_lock);
    int ok = size <= total_memory() - mem_used;
    if (ok) mem_used += size;
    pthread_mutex_unlock(&mem_lock);
    if (!ok) return fail(cudaErrorMemoryAllocation);
    uint8_t *b = malloc(size + 64);
    if (!b) {
        pthread_mutex_lock(&mem_lock);
        mem_used -= size;
        pthread_mutex_unlock(&mem_lock);
        return fail(cudaErrorMemoryAllocation);
    }
    memcpy(b, &size, sizeof size);
    /* fresh device memory holds garbage: make reads of unwritten memory
     * visible as NaN rather than zeros */
    memset(b + 64, 0xff, size);
    *p = b + 64;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    uint8_t *b = (uint8_t *)p - 64;
    size_t size;
    memcpy(&size, b, sizeof size);
    pthread_mutex_lock(&mem_lock);
    mem_used -= size;
    pthread_mutex_unlock(&mem_lock);
    free(b);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n,
                            enum cudaMemcpyKind kind, cudaStream_t s) {
    (void)kind;
    (void)s;
    memmove(dst, src, n);
    return cudaSuccess;
}

/* ---- cuBLAS ------------------------------------------------------------------ */

static cublasStatus_t b_create(cublasHandle_t *h) {
    *h = (cublasHandle_t)(void *)&the_stream;
    return CUBLAS_STATUS_SUCCESS;
}
static cublasStatus_t b_destroy(cublasHandle_t h) {
    (void)h;
    return CUBLAS_STATUS_SUCCESS;
}
static cublasStatus_t b_set_stream(cublasHandle_t h, cudaStream_t s) {
    (void)h;
    (void)s;
    return CUBLAS_STATUS_SUCCESS;
}
static cublasStatus_t b_sgemm(cublasHandle_t h, cublasOperation_t ta,
                              cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda,
                              const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
    (void)h;
    const char *sa = ta == CUBLAS_OP_N ? "N" : "T", *sb = tb == CUBLAS_OP_N ? "N" : "T";
    sgemm_(sa, sb, &m, &n, &k, alpha, A, &lda, B, &ldb, beta, C, &ldc);
    return CUBLAS_STATUS_SUCCESS;
}

static float h2f(uint16_t h) {
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}
static uint16_t f2h(float f) {
    _Float16 v = (_Float16)f; /* round to nearest even, as __float2half_rn */
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}

/* fp16 inputs, fp32 output and accumulation: the operands are widened */
static cublasStatus_t b_gemm_ex(cublasHandle_t h, cublasOperation_t ta,
                                cublasOperation_t tb, int m, int n, int k,
                                const void *alpha, const void *A,
                                cudaDataType_t at, int lda, const void *B,
                                cudaDataType_t bt, int ldb, const void *beta,
                                void *C, cudaDataType_t ct, int ldc,
                                cublasComputeType_t compute,
                                cublasGemmAlgo_t algo) {
    (void)compute;
    (void)algo;
    if (at != CUDA_R_16F || bt != CUDA_R_16F || ct != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    size_t na = (size_t)lda * (size_t)(ta == CUBLAS_OP_N ? k : m);
    size_t nb = (size_t)ldb * (size_t)(tb == CUBLAS_OP_N ? n : k);
    float *fa = malloc(na * 4), *fb = malloc(nb * 4);
    if (!fa || !fb) {
        free(fa);
        free(fb);
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    for (size_t i = 0; i < na; i++) fa[i] = h2f(((const uint16_t *)A)[i]);
    for (size_t i = 0; i < nb; i++) fb[i] = h2f(((const uint16_t *)B)[i]);
    cublasStatus_t s = b_sgemm(h, ta, tb, m, n, k, alpha, fa, lda, fb, ldb,
                               beta, C, ldc);
    free(fa);
    free(fb);
    return s;
}

static const vdx_cublas emu_cublas = {b_create, b_destroy, b_set_stream,
                                      b_sgemm, b_gemm_ex};

const vdx_cublas *vdx_gpu_emu_cublas(void);
const vdx_cublas *vdx_gpu_emu_cublas(void) { return &emu_cublas; }

/* ---- the kernels' twins --------------------------------------------------------- */

cudaError_t vdx_gk_norms_f32(cudaStream_t s, const float *x, int64_t n, int d,
                             float *out) {
    (void)s;
    for (int64_t r = 0; r < n; r++) {
        float a = 0;
        for (int i = 0; i < d; i++) a += x[r * d + i] * x[r * d + i];
        out[r] = a;
    }
    return cudaSuccess;
}

cudaError_t vdx_gk_norms_f16(cudaStream_t s, const uint16_t *x, int64_t n,
                             int d, float *out) {
    (void)s;
    for (int64_t r = 0; r < n; r++) {
        float a = 0;
        for (int i = 0; i < d; i++) {
            float v = h2f(x[r * d + i]);
            a += v * v;
        }
        out[r] = a;
    }
    return cudaSuccess;
}

cudaError_t vdx_gk_f32_to_f16(cudaStream_t s, const float *x, int64_t n,
                              uint16_t *out) {
    (void)s;
    for (int64_t i = 0; i < n; i++) out[i] = f2h(x[i]);
    return cudaSuccess;
}

cudaError_t vdx_gk_f16_to_f32(cudaStream_t s, const uint16_t *x, int64_t n,
                              float *out) {
    (void)s;
    for (int64_t i = 0; i < n; i++) out[i] = h2f(x[i]);
    return cudaSuccess;
}

typedef struct {
    float key;
    int64_t pos;
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->key < y->key) return -1;
    if (x->key > y->key) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

cudaError_t vdx_gk_select_run(cudaStream_t s, const vdx_gk_select *a) {
    (void)s;
    if (a->nrows <= 0) return cudaSuccess;
    if (a->k < 1 || vdx_gk_select_smem(a->k) > 232448)
        return fail(cudaErrorInvalidValue);
    for (int64_t r = 0; r < a->nrows; r++) {
        int64_t len, off;
        if (a->row_start) {
            off = a->row_start[r];
            len = a->row_start[r + 1] - off;
        } else {
            off = r * a->ld;
            len = a->n;
        }
        const float *row = a->v + off;
        entry *e = malloc((size_t)(len ? len : 1) * sizeof *e);
        if (!e) return fail(cudaErrorMemoryAllocation);
        for (int64_t j = 0; j < len; j++) {
            float v = row[j];
            float key = a->mode == VDX_GK_L2   ? a->norms[a->pos_base + j] - 2.0f * v
                        : a->mode == VDX_GK_IP ? -v
                                               : v;
            if (a->mask) {
                int64_t p = a->pos_base + j;
                if (!((a->mask[p >> 3] >> (p & 7)) & 1)) key = INFINITY;
            }
            e[j].key = key;
            e[j].pos = j;
        }
        qsort(e, (size_t)len, sizeof *e, cmp_entry);
        float *ok = a->out_keys + r * a->out_ld;
        int64_t *oi = a->out_ids + r * a->out_ld;
        for (int i = 0; i < a->k; i++) {
            if (i >= len || e[i].key == INFINITY) {
                ok[i] = INFINITY;
                oi[i] = -1;
                continue;
            }
            ok[i] = e[i].key;
            oi[i] = a->in_ids ? a->in_ids[off + e[i].pos]
                    : a->row_start ? e[i].pos
                                   : a->pos_base + e[i].pos;
        }
        free(e);
    }
    return cudaSuccess;
}

cudaError_t vdx_gk_finish(cudaStream_t s, float *keys, const int64_t *ids,
                          int64_t nrows, int k, const float *qnorms,
                          int is_ip) {
    (void)s;
    for (int64_t i = 0; i < nrows * k; i++) {
        if (ids[i] == -1) keys[i] = is_ip ? -FLT_MAX : FLT_MAX;
        else if (is_ip) keys[i] = -keys[i];
        else {
            float v = keys[i] + (qnorms ? qnorms[i / k] : 0.0f);
            keys[i] = v < 0 ? 0 : v;
        }
    }
    return cudaSuccess;
}

static float sq_component(const vdx_gk_ivf_scan *a, const uint8_t *code,
                          int i) {
    switch (a->sq_layout) {
    case VDX_GK_SQ_U8: return a->sq_a[i] + a->sq_b[i] * (float)code[i];
    case VDX_GK_SQ_U4:
        return a->sq_a[i] +
               a->sq_b[i] * (float)((code[i >> 1] >> ((i & 1) << 2)) & 15);
    case VDX_GK_SQ_F16: return h2f(((const uint16_t *)code)[i]);
    default: {
        uint32_t u = (uint32_t)((const uint16_t *)code)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    }
}

cudaError_t vdx_gk_ivf_scan_run(cudaStream_t s, const vdx_gk_ivf_scan *a) {
    (void)s;
    if (a->nq > 65535) return fail(cudaErrorInvalidValue);
    const int d = a->d;
    float *qv = malloc((size_t)d * 4);
    float *lut = NULL;
    if (a->kind == VDX_GK_IVF_PQ) lut = malloc((size_t)a->M * ((size_t)1 << a->nbits) * 4);
    if (!qv || (a->kind == VDX_GK_IVF_PQ && !lut)) {
        free(qv);
        free(lut);
        return fail(cudaErrorMemoryAllocation);
    }
    for (int q = 0; q < a->nq; q++)
        for (int p = 0; p < a->nprobe; p++) {
            const int64_t pi = (int64_t)q * a->nprobe + p;
            const int64_t list = a->probes[pi];
            if (list < 0) continue;
            const int64_t n = a->sizes[list];
            float *keys = a->keys + a->offsets[(int64_t)q * (a->nprobe + 1) + p];
            const float *x = a->xq + (int64_t)q * d;
            const float *c = a->centroids ? a->centroids + list * d : NULL;
            const int res_l2 = a->by_residual && !a->is_ip;
            const float coarse = a->coarse[pi];
            const uint8_t *codes = a->codes[list];
            const int ksub = 1 << a->nbits;
            const int pre = a->kind == VDX_GK_IVF_PQ && res_l2 && a->precomputed;
            for (int i = 0; i < d; i++)
                qv[i] = res_l2 && !pre ? x[i] - c[i] : x[i];
            if (a->kind == VDX_GK_IVF_PQ) {
                const int dsub = d / a->M;
                for (int e = 0; e < a->M * ksub; e++) {
                    int m = e / ksub, j = e % ksub;
                    const float *cen = a->pq_centroids + ((int64_t)m * ksub + j) * dsub;
                    const float *xs = qv + m * dsub;
                    float v = 0;
                    if (pre) {
                        for (int t = 0; t < dsub; t++) v += xs[t] * cen[t];
                        v = a->precomputed[list * a->M * ksub + e] - 2.0f * v +
                            (m == 0 ? coarse : 0.0f);
                    } else if (a->is_ip) {
                        for (int t = 0; t < dsub; t++) v += xs[t] * cen[t];
                    } else {
                        for (int t = 0; t < dsub; t++) {
                            float u = xs[t] - cen[t];
                            v += u * u;
                        }
                    }
                    lut[e] = a->lut_f16 ? h2f(f2h(v)) : v;
                }
            }
            const float add = a->is_ip && a->by_residual ? coarse : 0.0f;
            for (int64_t j = 0; j < n; j++) {
                if (a->mask) {
                    int64_t sl = a->slot_base[list] + j;
                    if (!((a->mask[sl >> 3] >> (sl & 7)) & 1)) {
                        keys[j] = INFINITY;
                        continue;
                    }
                }
                const uint8_t *code = codes + j * a->code_size;
                float acc = 0;
                if (a->kind == VDX_GK_IVF_PQ) {
                    for (int m = 0; m < a->M; m++) {
                        int idx = a->nbits == 8 ? code[m]
                                                : (code[m >> 1] >> ((m & 1) << 2)) & 15;
                        acc += lut[m * ksub + idx];
                    }
                } else {
                    for (int i = 0; i < d; i++) {
                        float y = a->kind == VDX_GK_IVF_FLAT
                                      ? ((const float *)(const void *)code)[i]
                                      : sq_component(a, code, i);
                        if (a->is_ip) acc += qv[i] * y;
                        else acc += (qv[i] - y) * (qv[i] - y);
                    }
                }
                keys[j] = a->is_ip ? -(add + acc) : acc;
            }
        }
    free(qv);
    free(lut);
    return cudaSuccess;
}

cudaError_t vdx_gk_ivf_map_run(cudaStream_t s, const vdx_gk_ivf_map *a) {
    (void)s;
    for (int64_t i = 0; i < (int64_t)a->nq * a->k; i++) {
        int64_t pos = a->labels[i];
        if (pos < 0) continue;
        const int64_t q = i / a->k;
        const int64_t *o = a->offsets + q * (a->nprobe + 1);
        const int64_t abs = o[0] + pos;
        int lo = 0, hi = a->nprobe - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >> 1;
            if (o[mid] <= abs) lo = mid;
            else hi = mid - 1;
        }
        const int64_t list = a->probes[q * a->nprobe + lo], off = abs - o[lo];
        if (a->id_layout == VDX_GK_IDS_I64)
            a->labels[i] = ((const int64_t *)a->ids[list])[off];
        else if (a->id_layout == VDX_GK_IDS_I32)
            a->labels[i] = ((const int32_t *)a->ids[list])[off];
        else
            a->labels[i] = (list << 32) | off;
    }
    return cudaSuccess;
}
