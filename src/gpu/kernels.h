/*
 * kernels.h — the device kernels of vecdex's GPU part, as seen from the host
 * C code: one launcher per kernel, taking device pointers and a stream and
 * returning the launch's cudaError_t (the kernels run asynchronously on the
 * stream).  The launchers are written in CUDA C (the C subset of what nvcc
 * compiles) in select.cu, distance.cu and ivf_scan.cu; a CPU twin of each
 * (tests/gpu_emu/emu.c) lets the host code be tested without a GPU.  Both
 * follow the contracts written here, which are the reference.
 *
 * Keys: every search orders candidates by a key where smaller is better:
 * an L2 distance (or |y|^2 - 2<x, y>, the part that orders a query's
 * candidates), or minus an inner product.  +INFINITY marks a candidate that
 * does not exist or that the selector excludes; real keys are always finite
 * (inputs are checked at the door, see vdx_max_magnitude).
 */
#ifndef VDX_GPU_KERNELS_H
#define VDX_GPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The launchers are internal to the library (hidden, like VDX_INTERNAL). */
#define VDX_GK_API __attribute__((visibility("hidden")))

/* Threads per block of the selection kernel and the bytes of shared memory
 * it needs besides the k entries (the radix histogram and counters). */
#define VDX_GK_SELECT_THREADS 256
#define VDX_GK_SELECT_HIST 2048
#define VDX_GK_SELECT_FIXED_SMEM (VDX_GK_SELECT_HIST * 4 + 256)

/* Row r of n x d floats -> out[r] = |x_r|^2. */
VDX_GK_API cudaError_t vdx_gk_norms_f32(cudaStream_t s, const float *x,
                                        int64_t n, int d, float *out);
/* The same for fp16 rows (IEEE half bit patterns). */
VDX_GK_API cudaError_t vdx_gk_norms_f16(cudaStream_t s, const uint16_t *x,
                                        int64_t n, int d, float *out);
/* n floats to IEEE halves (round to nearest even) and back. */
VDX_GK_API cudaError_t vdx_gk_f32_to_f16(cudaStream_t s, const float *x,
                                         int64_t n, uint16_t *out);
VDX_GK_API cudaError_t vdx_gk_f16_to_f32(cudaStream_t s, const uint16_t *x,
                                         int64_t n, float *out);

/* ---- k-selection -------------------------------------------------------- */
/* How the selection reads its input values v[j] of a row:            */
#define VDX_GK_KEYS 0 /* key = v[j]                                          */
#define VDX_GK_L2 1   /* key = norms[pos_base + j] - 2 v[j] (v: inner product) */
#define VDX_GK_IP 2   /* key = -v[j] (v: inner product)                      */

typedef struct vdx_gk_select {
    const float *v;           /* the rows                                    */
    int64_t ld;               /* row r starts at v + r * ld ...              */
    int64_t n;                /* ... and has n entries (row_start NULL)      */
    const int64_t *row_start; /* or: row r is v[row_start[r] .. row_start[r+1]) */
    int64_t nrows;
    int mode;                 /* VDX_GK_KEYS / L2 / IP                       */
    int k;                    /* 1 .. the device's maximum                   */
    const float *norms;       /* VDX_GK_L2: database norms, by position      */
    /* Selector: bit p (byte p >> 3, bit p & 7) of mask for the entry at
     * global position p = pos_base + j; a clear bit excludes the entry.
     * NULL: all entries. */
    const uint8_t *mask;
    int64_t pos_base;
    /* ids of the entries: in_ids[(row offset) + j] with the layout of v, or
     * when NULL the position pos_base + j (row_start NULL) / j (ragged). */
    const int64_t *in_ids;
    float *out_keys;          /* row r at out_keys + r * out_ld: k keys ...  */
    int64_t *out_ids;         /* ... and their ids                           */
    int64_t out_ld;
} vdx_gk_select;

/* For each row: its k smallest keys, sorted ascending, equal keys in the
 * order of their positions in the row, and among entries equal to the k-th
 * key those of lowest position; slots past the row's entries, and excluded
 * entries, come last as (+INFINITY, -1).  Shared memory: the next power of
 * two >= k entries of 8 bytes plus VDX_GK_SELECT_FIXED_SMEM. */
VDX_GK_API cudaError_t vdx_gk_select_run(cudaStream_t s,
                                         const vdx_gk_select *a);

/* Shared-memory bytes the selection of k needs. */
static inline size_t vdx_gk_select_smem(int k) {
    size_t p = 1;
    while ((int64_t)p < (int64_t)k) p <<= 1;
    return p * 8 + VDX_GK_SELECT_FIXED_SMEM;
}

/* Turns selected keys into distances, in place, for nrows rows of k:
 * L2 (qnorms != NULL): max(0, key + qnorms[r]); IP: -key; slots whose id
 * is -1 become FLT_MAX (L2) or -FLT_MAX (IP). */
VDX_GK_API cudaError_t vdx_gk_finish(cudaStream_t s, float *keys,
                                     const int64_t *ids, int64_t nrows, int k,
                                     const float *qnorms, int is_ip);

/* ---- IVF list scans ------------------------------------------------------- */
#define VDX_GK_IVF_FLAT 0
#define VDX_GK_IVF_SQ 1
#define VDX_GK_IVF_PQ 2

/* Code layouts of the scalar quantizer on the device. */
#define VDX_GK_SQ_U8 0   /* one byte per component: a_i + b_i * c          */
#define VDX_GK_SQ_U4 1   /* nibble (i & 1) of byte i / 2: a_i + b_i * c     */
#define VDX_GK_SQ_F16 2  /* IEEE half                                       */
#define VDX_GK_SQ_BF16 3 /* top 16 bits of a float                          */

typedef struct vdx_gk_ivf_scan {
    int kind;                 /* VDX_GK_IVF_*                                */
    int is_ip;
    int d;
    int nq, nprobe;
    const float *xq;          /* nq x d queries                              */
    const int64_t *probes;    /* nq x nprobe lists (-1: skipped)             */
    const float *coarse;      /* nq x nprobe: |x - c|^2 (L2) or <x, c> (IP)  */
    /* nq x (nprobe + 1): the keys of the codes of probe p of query q go to
     * keys[offsets[q (np + 1) + p] ...], one per code of the list */
    const int64_t *offsets;
    const uint8_t *const *codes; /* nlist device pointers                    */
    const int64_t *sizes;     /* nlist list sizes                            */
    int code_size;
    /* selector: bit slot_base[list] + offset of mask (NULL: all) */
    const uint8_t *mask;
    const int64_t *slot_base;
    /* residual codes: of x - centroids[list] */
    int by_residual;
    const float *centroids;   /* nlist x d                                   */
    /* scalar quantizer */
    int sq_layout;            /* VDX_GK_SQ_*                                 */
    const float *sq_a, *sq_b; /* d each (integer layouts)                    */
    /* product quantizer: M sub-quantizers of 2^nbits centroids (nbits 4, 8),
     * dsub = d / M; pq_centroids is M x ksub x dsub; precomputed, when not
     * NULL, is nlist x M x ksub of |r|^2 + 2 <c, r> (L2 with residuals) */
    int M, nbits;
    const float *pq_centroids;
    const float *precomputed;
    int lut_f16;              /* keep the lookup table in fp16               */
    float *keys;              /* output                                      */
} vdx_gk_ivf_scan;

/* Writes one key per code of every probed list: the L2 distance or minus
 * the inner product between the query and the code's vector, as the CPU
 * index computes it (PQ: from the per-(query, list) lookup table; SQ: from
 * the affine decode a_i + b_i c_i).  Codes excluded by the mask get
 * +INFINITY.  Grid: one block per (probe, query). */
VDX_GK_API cudaError_t vdx_gk_ivf_scan_run(cudaStream_t s,
                                           const vdx_gk_ivf_scan *a);

/* Shared-memory bytes a scan needs (the query or its residual, and for PQ
 * the lookup table). */
static inline size_t vdx_gk_ivf_scan_smem(const vdx_gk_ivf_scan *a) {
    size_t b = (size_t)a->d * 4 + 64;
    if (a->kind == VDX_GK_IVF_PQ)
        b += (size_t)a->M * ((size_t)1 << a->nbits) * (a->lut_f16 ? 2 : 4);
    return b;
}

/* Id layouts of the lists on the device. */
#define VDX_GK_IDS_LISTNO 0 /* none: id = list << 32 | offset             */
#define VDX_GK_IDS_I32 1
#define VDX_GK_IDS_I64 2

typedef struct vdx_gk_ivf_map {
    int nq, nprobe, k;
    const int64_t *probes;    /* as in the scan                              */
    const int64_t *offsets;   /* as in the scan                              */
    /* in: positions in the query's row (offsets[q (np + 1)] is position 0),
     * or -1; out: the ids */
    int64_t *labels;
    int id_layout;            /* VDX_GK_IDS_*                                */
    const void *const *ids;   /* nlist device pointers (I32, I64)            */
} vdx_gk_ivf_map;

/* Replaces each selected position by the id of its code. */
VDX_GK_API cudaError_t vdx_gk_ivf_map_run(cudaStream_t s,
                                          const vdx_gk_ivf_map *a);

#ifdef __cplusplus
}
#endif
#endif
