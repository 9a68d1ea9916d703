/*
 * gpu_internal.h — private header of vecdex's GPU part (src/gpu/).
 *
 * Layout: runtime.c (devices, resources, the temporary-memory pool, errors,
 * cuBLAS loading), gpu_flat.c (GpuIndexFlat and the tiled exact search all
 * GPU kinds use), gpu_ivf.c (the GPU IVF kinds), gpu_multi.c (IndexShards /
 * IndexReplicas over GPU indexes), gpu_clone.c (CPU <-> GPU cloning); the
 * kernels are behind kernels.h.  The host code is plain C11 calling the
 * CUDA runtime's C API.
 *
 * Every GPU call goes through vdx_gpu_enter / vdx_gpu_leave, which lock the
 * (resources, device) state: one stream, so kernels, copies and the
 * temporary pool are ordered, and concurrent callers are serialised.
 */
#ifndef VDX_GPU_INTERNAL_H
#define VDX_GPU_INTERNAL_H

#include <pthread.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "common/common.h"
#include "index/index_internal.h"
#include "kernels.h"
#include "vecdex_gpu.h"

#define VDX_GPU_MAX_DEVICES 64

/* ---- cuBLAS, loaded at first use (runtime.c) ------------------------------ */
typedef struct vdx_cublas {
    cublasStatus_t (*create)(cublasHandle_t *h);
    cublasStatus_t (*destroy)(cublasHandle_t h);
    cublasStatus_t (*set_stream)(cublasHandle_t h, cudaStream_t s);
    cublasStatus_t (*sgemm)(cublasHandle_t h, cublasOperation_t ta,
                            cublasOperation_t tb, int m, int n, int k,
                            const float *alpha, const float *A, int lda,
                            const float *B, int ldb, const float *beta,
                            float *C, int ldc);
    cublasStatus_t (*gemm_ex)(cublasHandle_t h, cublasOperation_t ta,
                              cublasOperation_t tb, int m, int n, int k,
                              const void *alpha, const void *A,
                              cudaDataType_t at, int lda, const void *B,
                              cudaDataType_t bt, int ldb, const void *beta,
                              void *C, cudaDataType_t ct, int ldc,
                              cublasComputeType_t compute,
                              cublasGemmAlgo_t algo);
} vdx_cublas;

/* The table, or NULL having raised VDX_ERR_UNSUPPORTED with the reason. */
VDX_INTERNAL const vdx_cublas *vdx_gpu_cublas(void);

/* ---- per (resources, device) state ---------------------------------------- */
typedef struct vdx_gpu_tmp_mark {
    size_t used;
    int nover;
} vdx_gpu_tmp_mark;

typedef struct vdx_gpu_dev {
    int device;
    pthread_mutex_t lock;
    cudaStream_t stream;
    cublasHandle_t blas;
    const vdx_cublas *cb;
    size_t smem_optin;  /* shared memory per block with opt-in */
    int64_t max_k;
    /* the temporary pool: a stack in one allocation; requests that do not
     * fit are plain cudaMalloc's, freed when released */
    uint8_t *pool;
    size_t pool_size, pool_used, pool_want;
    void **over;
    int nover, cap_over;
} vdx_gpu_dev;

struct vdx_gpu_resources {
    pthread_mutex_t lock; /* refs and the creation of device states */
    int refs;
    size_t temp_bytes;    /* SIZE_MAX: the default */
    vdx_gpu_dev *dev[VDX_GPU_MAX_DEVICES];
};

/* Takes a reference (an index using res). */
VDX_INTERNAL void vdx_gpu_res_ref(vdx_gpu_resources *res);
/* Checks that `device` exists (VDX_ERR_UNSUPPORTED with vdx_gpu_info()'s
 * reason when there is no GPU, VDX_ERR_INVALID_ARGUMENT when out of
 * range); `what` names the caller in the message. */
VDX_INTERNAL vdx_status vdx_gpu_check_device(int device, const char *what);
/* Locks the state of (res, device), creating it on first use, and makes
 * `device` current.  Pair with vdx_gpu_leave. */
VDX_INTERNAL vdx_status vdx_gpu_enter(vdx_gpu_resources *res, int device,
                                      vdx_gpu_dev **out);
VDX_INTERNAL void vdx_gpu_leave(vdx_gpu_dev *g);

/* A failed CUDA call as a vdx_status (VDX_ERR_OUT_OF_MEMORY for
 * allocation failures, else VDX_ERR_INTERNAL), the message naming `what`
 * and CUDA's error; VDX_OK for cudaSuccess. */
VDX_INTERNAL vdx_status vdx_gpu_cuda(const vdx_gpu_dev *g, cudaError_t e,
                                     const char *what);
VDX_INTERNAL vdx_status vdx_gpu_blas(const vdx_gpu_dev *g, cublasStatus_t e,
                                     const char *what);
/* Device memory that outlives a call (index storage): VDX_ERR_OUT_OF_MEMORY
 * naming `what`, the size and the device's free memory on failure. */
VDX_INTERNAL vdx_status vdx_gpu_alloc(const vdx_gpu_dev *g, size_t bytes,
                                      const char *what, void **p);
VDX_INTERNAL void vdx_gpu_free(void *p);
/* Scratch memory for the current call, from the pool when it fits. */
VDX_INTERNAL vdx_gpu_tmp_mark vdx_gpu_tmp_mark_get(const vdx_gpu_dev *g);
VDX_INTERNAL vdx_status vdx_gpu_tmp(vdx_gpu_dev *g, size_t bytes,
                                    const char *what, void **p);
/* Releases every scratch buffer taken since the mark (stream order makes
 * the pool reusable at once by the next work queued). */
VDX_INTERNAL void vdx_gpu_tmp_release(vdx_gpu_dev *g, vdx_gpu_tmp_mark m);
/* Bytes a call may plan to use as scratch (what is left of the pool, or a
 * fixed amount without one). */
VDX_INTERNAL size_t vdx_gpu_tmp_budget(const vdx_gpu_dev *g);
/* Copies on the device's stream (host memory may be pageable). */
VDX_INTERNAL vdx_status vdx_gpu_h2d(vdx_gpu_dev *g, void *dst,
                                    const void *src, size_t bytes);
VDX_INTERNAL vdx_status vdx_gpu_d2h(vdx_gpu_dev *g, void *dst,
                                    const void *src, size_t bytes);
VDX_INTERNAL vdx_status vdx_gpu_d2d(vdx_gpu_dev *g, void *dst,
                                    const void *src, size_t bytes);
/* Waits for the stream; reports errors of the kernels queued before. */
VDX_INTERNAL vdx_status vdx_gpu_sync(vdx_gpu_dev *g, const char *what);
/* The launch status of a kernel (kernels.h) as a vdx_status. */
VDX_INTERNAL vdx_status vdx_gpu_launch(const vdx_gpu_dev *g, cudaError_t e,
                                       const char *what);

/* ---- GPU indexes ------------------------------------------------------------ */
enum { VDX_GPU_KIND_FLAT = 1, VDX_GPU_KIND_IVF = 2 };

typedef struct vdx_gpu_index {
    vdx_index base;
    int kind;
    int device;
    vdx_gpu_resources *res; /* a reference, dropped by destroy */
    vdx_gpu_config cfg;
} vdx_gpu_index;

VDX_INTERNAL vdx_gpu_index *vdx_gpu_as_index(const vdx_index *ix);
/* Sets up the common part (takes a reference on res). */
VDX_INTERNAL vdx_status vdx_gpu_index_init(vdx_gpu_index *g,
                                           const vdx_index_ops *ops, int kind,
                                           vdx_gpu_resources *res, int64_t d,
                                           vdx_metric metric,
                                           const vdx_gpu_config *cfg);
VDX_INTERNAL void vdx_gpu_index_release(vdx_gpu_index *g);
/* Search checks shared by the GPU kinds: k within the device's limit. */
VDX_INTERNAL vdx_status vdx_gpu_check_k(const vdx_gpu_dev *g, int64_t k,
                                        const char *who);

/* ---- exact search (gpu_flat.c) ---------------------------------------------- */
typedef struct vdx_gpu_flat {
    vdx_gpu_index g;
    void *xb;      /* ntotal x d floats, or fp16 halves with use_float16 */
    float *norms;  /* ntotal squared norms (L2 and IP alike) */
    int64_t cap;
    int64_t bytes; /* device memory held */
} vdx_gpu_flat;

/* A database on the device, as the tiled search reads it. */
typedef struct vdx_gpu_db {
    const void *x;     /* nb x d, float or fp16 */
    int fp16;
    const float *norms;
    int64_t nb, d;
    vdx_metric metric;
} vdx_gpu_db;

/* Raw search on the device: for the nq device queries xq (floats), the k
 * best keys (kernels.h: |y|^2 - 2<x, y> for L2, -<x, y> for IP; empty
 * slots +inf / -1) and ids (positions) per query into keys / ids (nq x k,
 * device), sorted best first.  mask: a device bitmap over positions, or
 * NULL. */
VDX_INTERNAL vdx_status vdx_gpu_db_search(vdx_gpu_dev *g, const vdx_gpu_db *db,
                                          int64_t nq, const float *xq,
                                          int64_t k, const uint8_t *mask,
                                          float *keys, int64_t *ids);
/* Merges two rows of k sorted (key, id) entries (empty: +inf / -1) into
 * the k best, ties to the lower id; b's ids are shifted by b_shift. */
VDX_INTERNAL void vdx_gpu_merge_rows(int64_t k, const float *ak,
                                     const int64_t *ai, const float *bk,
                                     const int64_t *bi, int64_t b_shift,
                                     float *ok, int64_t *oi);
VDX_INTERNAL vdx_gpu_db vdx_gpu_flat_db(const vdx_gpu_flat *f);
VDX_INTERNAL int vdx_gpu_is_flat(const vdx_index *ix);
/* Appends n host vectors (paged through the device). */
VDX_INTERNAL vdx_status vdx_gpu_flat_append(vdx_gpu_flat *f, vdx_gpu_dev *g,
                                            int64_t n, const float *x);
/* Copies the stored vectors [i0, i0 + ni) to the host as floats. */
VDX_INTERNAL vdx_status vdx_gpu_flat_download(const vdx_gpu_flat *f,
                                              vdx_gpu_dev *g, int64_t i0,
                                              int64_t ni, float *out);
/* Builds the device bitmap of the positions [0, n) admitted by sel
 * (scratch memory of g); *mask is NULL when sel is NULL. */
VDX_INTERNAL vdx_status vdx_gpu_position_mask(vdx_gpu_dev *g,
                                              const vdx_selector *sel,
                                              int64_t n, uint8_t **mask);

/* ---- IVF (gpu_ivf.c) ---------------------------------------------------------- */
VDX_INTERNAL int vdx_gpu_is_ivf(const vdx_index *ix);
/* Decides which entries of the CPU index a copy takes (NULL: all). */
typedef int (*vdx_gpu_entry_filter)(int64_t list, vdx_idx_t id, void *ctx);
/* A GPU copy of the CPU IVF index cpu (IndexIVFFlat, IndexIVFPQ,
 * IndexIVFScalarQuantizer), keeping the entries `keep` accepts. */
VDX_INTERNAL vdx_status vdx_gpu_ivf_from_cpu(vdx_gpu_resources *res,
                                             const vdx_index *cpu,
                                             const vdx_gpu_config *cfg,
                                             vdx_gpu_entry_filter keep,
                                             void *ctx, vdx_index **out);
/* A CPU copy of a GPU IVF index. */
VDX_INTERNAL vdx_status vdx_gpu_ivf_to_cpu(const vdx_index *ix,
                                           vdx_index **out);
/* Appends the entries of GPU IVF src to CPU IVF dst (same kind and
 * quantizer; ids kept as they are). */
VDX_INTERNAL vdx_status vdx_gpu_ivf_merge_into(vdx_index *dst,
                                               const vdx_index *src);

/* ---- IndexShards / IndexReplicas (gpu_multi.c) -------------------------------- */
enum { VDX_GPU_MULTI_SHARDS = 1, VDX_GPU_MULTI_REPLICAS = 2 };
/* Takes ownership of the n members (all of the same d and metric) on
 * success.  successive_ids: shards number their vectors from 0 and their
 * ids are shifted by the shards before them (flat shards). */
VDX_INTERNAL vdx_status vdx_gpu_multi_make(int kind, int n, vdx_index **subs,
                                           int successive_ids,
                                           vdx_index **out);
VDX_INTERNAL int vdx_gpu_multi_successive(const vdx_index *ix);

#endif
