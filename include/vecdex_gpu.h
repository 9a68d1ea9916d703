/*
 * vecdex_gpu.h — vecdex on NVIDIA GPUs (FAISS: faiss/gpu).
 *
 * GPU indexes are ordinary vdx_index handles: vdx_index_train / add / search
 * / reset / reconstruct / free work on them, searches take host arrays and
 * return host arrays (queries and results page through the device in
 * chunks).  What is new here is how they are made: from a resources object
 * (a stream, a cuBLAS handle and a temporary-memory pool per device) either
 * directly (vdx_gpu_index_flat_new, ...) or by cloning a CPU index
 * (vdx_gpu_index_cpu_to_gpu), and how they go back (vdx_gpu_index_gpu_to_cpu,
 * whose result vdx_write_index writes in FAISS's format).
 *
 * Every function exists in every build.  In a build without CUDA (no nvcc
 * at configure time, or -DVDX_GPU=OFF) vdx_gpu_num_devices() returns 0 and
 * every constructor returns VDX_ERR_UNSUPPORTED; in a CUDA build on a
 * machine without a driver or a GPU, likewise, with the reason in
 * vdx_gpu_info() and in the error message.  The CUDA runtime is linked
 * statically and cuBLAS is loaded on first use (dlopen), so the library
 * loads and its CPU part works on machines without either.
 *
 * Thread safety: a resources object serialises the work of all the indexes
 * that use it on one device (one stream); indexes on different resources
 * or devices run concurrently.  Mutating calls need exclusive access to the
 * index, as for CPU indexes.
 */
#ifndef VECDEX_GPU_H
#define VECDEX_GPU_H

#include "vecdex.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* Devices and resources                                                     */
/* ------------------------------------------------------------------------- */
/** @return the number of CUDA devices usable by vecdex (FAISS:
 *  get_num_gpus); 0 in a build without CUDA, without a driver or without a
 *  device.  Never fails; the first call initialises the CUDA runtime. */
VDX_API int vdx_gpu_num_devices(void);

/** @return a static line saying what the GPU support is: "CUDA 13.0,
 *  1 device(s): NVIDIA H200 (sm_90, 139 GiB)", or why there is none
 *  ("built without CUDA", "CUDA driver not found (cudaErrorInsufficientDriver)
 *  ..."). */
VDX_API const char *vdx_gpu_info(void);

/** The largest k a GPU search accepts on `device` (the k-selection keeps
 *  the k best in shared memory: 16384 on Hopper; FAISS's limit is 2048), or
 *  0 when the device does not exist. */
VDX_API int64_t vdx_gpu_max_k(int device);

typedef struct vdx_gpu_resources vdx_gpu_resources; /* opaque */

/** A resources object (FAISS: StandardGpuResources): per device used, one
 *  stream, one cuBLAS handle and a temporary-memory pool (by default 18% of
 *  the device memory, at most 1.5 GiB, reserved at the first use of the
 *  device).  Device state is created lazily, so this call succeeds on a
 *  machine without GPUs.  Free with vdx_gpu_resources_free. */
VDX_API vdx_status vdx_gpu_resources_new(vdx_gpu_resources **out);
/** Drops the caller's reference: the object (streams, handles, pools) goes
 *  when the last GPU index made with it is freed too.  NULL accepted. */
VDX_API void vdx_gpu_resources_free(vdx_gpu_resources *res);
/** Sets the size of the temporary-memory pool of every device of res
 *  (FAISS: setTempMemory); 0 means no pool (FAISS: noTempMemory): scratch
 *  buffers are then taken with cudaMalloc and released after each call.
 *  Applies to devices already in use too (after their work has finished).
 *  @return VDX_ERR_INVALID_ARGUMENT above 1 TiB. */
VDX_API vdx_status vdx_gpu_resources_set_temp_memory(vdx_gpu_resources *res,
                                                     size_t bytes);
/** The pool size set (or the default, (size_t)-1, before any setting). */
VDX_API size_t vdx_gpu_resources_temp_memory(const vdx_gpu_resources *res);
/** Waits for the work queued on `device` through res.
 *  @return VDX_ERR_INVALID_ARGUMENT for a device res has not used. */
VDX_API vdx_status vdx_gpu_resources_sync(vdx_gpu_resources *res, int device);

/* ------------------------------------------------------------------------- */
/* Configuration (FAISS: GpuIndexFlatConfig, GpuIndexIVF*Config,             */
/* GpuClonerOptions, GpuMultipleClonerOptions)                               */
/* ------------------------------------------------------------------------- */
/* How an IVF index stores its ids (FAISS's IndicesOptions, same numbers). */
#define VDX_GPU_INDICES_CPU 0    /* on the host, translated after search   */
#define VDX_GPU_INDICES_IVF 1    /* none: results are (list << 32 | offset) */
#define VDX_GPU_INDICES_32_BIT 2 /* on the device, as int32                 */
#define VDX_GPU_INDICES_64_BIT 3 /* on the device, as int64 (the default)   */

typedef struct vdx_gpu_config {
    int device;              /* CUDA device number (0)                      */
    int use_float16;         /* flat: vectors stored as fp16; IVFPQ: fp16
                                lookup tables (FAISS useFloat16LookupTables) */
    int use_float16_coarse;  /* IVF: the coarse quantizer in fp16           */
    int indices_options;     /* VDX_GPU_INDICES_* (64_BIT)                  */
    int use_precomputed;     /* IVFPQ (L2, residual): precomputed tables    */
    int reserved_pad;
    int64_t reserved[8];     /* zero                                        */
} vdx_gpu_config;

/** device 0, indices 64-bit, everything else off (FAISS's defaults). */
VDX_API void vdx_gpu_config_init(vdx_gpu_config *c);

typedef struct vdx_gpu_cloner_options {
    int use_float16;          /* useFloat16: flat storage / IVFPQ tables     */
    int use_float16_coarse;   /* useFloat16CoarseQuantizer                   */
    int indices_options;      /* indicesOptions (64-bit)                     */
    int use_precomputed;      /* usePrecomputed (off, as FAISS)              */
    int64_t reserve_vecs;     /* reserveVecs: accepted, a hint only          */
    int verbose;              /* accepted, silent                            */
    /* cloning to several devices (GpuMultipleClonerOptions) */
    int shard;                /* 0: replicas, 1: shards                      */
    int shard_type;           /* IVF shards: 1 ids modulo n (default), 2 id
                                 ranges, 4 ranges of lists                    */
    int common_ivf_quantizer; /* not supported (must be 0)                   */
    int64_t reserved[8];      /* zero                                        */
} vdx_gpu_cloner_options;

/** FAISS's defaults: indices 64-bit, shard_type 1, everything else off. */
VDX_API void vdx_gpu_cloner_options_init(vdx_gpu_cloner_options *o);

/* ------------------------------------------------------------------------- */
/* GPU index kinds.  Each takes a reference on res (the caller keeps its     */
/* own).  cfg may be NULL (the defaults).  Free with vdx_index_free.         */
/* ------------------------------------------------------------------------- */
/** Exact search: cuBLAS sgemm (GemmEx on fp16 storage) and a k-selection
 *  on the device.  FAISS: GpuIndexFlat, GpuIndexFlatL2, GpuIndexFlatIP. */
VDX_API vdx_status vdx_gpu_index_flat_new(vdx_gpu_resources *res, int64_t d,
                                          vdx_metric metric,
                                          const vdx_gpu_config *cfg,
                                          vdx_index **out);
/** FAISS: GpuIndexIVFFlat.  Training (k-means) runs on the CPU with vecdex's
 *  implementation, then the centroids move to the device. */
VDX_API vdx_status vdx_gpu_index_ivf_flat_new(vdx_gpu_resources *res,
                                              int64_t d, int64_t nlist,
                                              vdx_metric metric,
                                              const vdx_gpu_config *cfg,
                                              vdx_index **out);
/** FAISS: GpuIndexIVFPQ; nbits 8 or 4; residual codes. */
VDX_API vdx_status vdx_gpu_index_ivfpq_new(vdx_gpu_resources *res, int64_t d,
                                           int64_t nlist, int64_t M,
                                           int nbits, vdx_metric metric,
                                           const vdx_gpu_config *cfg,
                                           vdx_index **out);
/** FAISS: GpuIndexIVFScalarQuantizer; qtype VDX_SQ_* except 6-bit. */
VDX_API vdx_status vdx_gpu_index_ivf_sq_new(vdx_gpu_resources *res, int64_t d,
                                            int64_t nlist, int qtype,
                                            vdx_metric metric, int by_residual,
                                            const vdx_gpu_config *cfg,
                                            vdx_index **out);

/** 1 for the GPU kinds above, 0 otherwise (wrappers included). */
VDX_API int vdx_gpu_index_is_gpu(const vdx_index *index);
/** The device of a GPU index, -1 for other indexes. */
VDX_API int vdx_gpu_index_device(const vdx_index *index);
/** The resources of a GPU index (borrowed), NULL for other indexes. */
VDX_API vdx_gpu_resources *vdx_gpu_index_resources(const vdx_index *index);
/** The configuration a GPU index was made with. */
VDX_API vdx_status vdx_gpu_index_config(const vdx_index *index,
                                        vdx_gpu_config *out);
/** Bytes of device memory the index holds (storage, lists, tables). */
VDX_API int64_t vdx_gpu_index_memory(const vdx_index *index);

/* GPU IVF accessors (0 / VDX_ERR_INVALID_ARGUMENT for other indexes). */
VDX_API int64_t vdx_gpu_index_ivf_nlist(const vdx_index *index);
VDX_API int64_t vdx_gpu_index_ivf_nprobe(const vdx_index *index);
/** Default nprobe (search params override it per call); clamped to nlist. */
VDX_API vdx_status vdx_gpu_index_ivf_set_nprobe(vdx_index *index,
                                                int64_t nprobe);
/** Number of vectors in a list, -1 when out of range. */
VDX_API int64_t vdx_gpu_index_ivf_list_size(const vdx_index *index,
                                            int64_t list);
/** Copies the ids of a list (list_size entries). */
VDX_API vdx_status vdx_gpu_index_ivf_list_ids(const vdx_index *index,
                                              int64_t list, vdx_idx_t *out);
/** The coarse centroids (nlist x d floats) into out. */
VDX_API vdx_status vdx_gpu_index_ivf_centroids(const vdx_index *index,
                                               float *out);
/** IVFPQ: M, nbits (0 for other kinds); IVFSQ: qtype (-1 otherwise). */
VDX_API int64_t vdx_gpu_index_ivfpq_M(const vdx_index *index);
VDX_API int vdx_gpu_index_ivfpq_nbits(const vdx_index *index);
VDX_API int vdx_gpu_index_ivf_sq_qtype(const vdx_index *index);

/* ------------------------------------------------------------------------- */
/* Cloning                                                                   */
/* ------------------------------------------------------------------------- */
/** A GPU copy of a CPU index (FAISS: index_cpu_to_gpu): IndexFlat* ->
 *  GpuIndexFlat, IndexIVFFlat -> GpuIndexIVFFlat, IndexIVFPQ (nbits 8 or 4)
 *  -> GpuIndexIVFPQ, IndexIVFScalarQuantizer -> GpuIndexIVFScalarQuantizer,
 *  IndexScalarQuantizer fp16 -> GpuIndexFlat in fp16 (as FAISS);
 *  IndexIDMap, IndexIDMap2 and IndexPreTransform stay on the CPU around a
 *  GPU copy of what they wrap.  Any other kind is VDX_ERR_UNSUPPORTED with
 *  a message naming it, never a silent CPU copy.  opts may be NULL. */
VDX_API vdx_status vdx_gpu_index_cpu_to_gpu(vdx_gpu_resources *res,
                                            int device, const vdx_index *cpu,
                                            const vdx_gpu_cloner_options *opts,
                                            vdx_index **out);
/** A CPU copy (FAISS: index_gpu_to_cpu) of a GPU index, of a wrapper around
 *  one, of replicas (one of them) or of shards (merged into one index).  A
 *  CPU index without GPU parts is copied as is. */
VDX_API vdx_status vdx_gpu_index_gpu_to_cpu(const vdx_index *index,
                                            vdx_index **out);
/** Copies of cpu on ndev (resources, device) pairs (FAISS:
 *  index_cpu_to_gpu_multiple): with opts->shard, an IndexShards whose
 *  shards split the vectors (Flat: contiguous rows, ids shifted; IVF: by
 *  shard_type), else an IndexReplicas whose replicas split the queries.
 *  One pair gives a plain GPU index.  The same resources and device may
 *  appear several times (two shards on one GPU). */
VDX_API vdx_status vdx_gpu_index_cpu_to_gpu_multiple(
    int ndev, vdx_gpu_resources *const *res, const int *devices,
    const vdx_index *cpu, const vdx_gpu_cloner_options *opts,
    vdx_index **out);
/** IndexShards / IndexReplicas made by the call above: their count and
 *  member i (borrowed); 0 / NULL for other indexes. */
VDX_API int64_t vdx_gpu_multi_count(const vdx_index *index);
VDX_API vdx_index *vdx_gpu_multi_at(const vdx_index *index, int64_t i);
/** 1 for IndexShards, 2 for IndexReplicas made here, 0 otherwise. */
VDX_API int vdx_gpu_multi_kind(const vdx_index *index);

/* ------------------------------------------------------------------------- */
/* Brute force on host arrays (FAISS: knn_gpu / bfKnn)                       */
/* ------------------------------------------------------------------------- */
/** The k nearest of each of the nq queries among the nb vectors xb, both
 *  on the host, computed on `device`: both are paged through the device in
 *  chunks, so neither needs to fit in its memory.  Outputs as
 *  vdx_index_search. */
VDX_API vdx_status vdx_gpu_knn(vdx_gpu_resources *res, int device,
                               vdx_metric metric, int64_t d, int64_t nq,
                               const float *xq, int64_t nb, const float *xb,
                               int64_t k, float *distances, vdx_idx_t *labels);

#ifdef __cplusplus
}
#endif
#endif /* VECDEX_GPU_H */
