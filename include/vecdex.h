/*
 * vecdex.h — the one public C header of vecdex, a similarity-search library
 * compatible with FAISS's index files and Python API.
 *
 * Conventions (see STYLE.md):
 *  - every fallible call returns a vdx_status; VDX_OK is 0 and the codes are
 *    pinned forever.  The message of the last error of the calling thread is
 *    returned by vdx_last_error().
 *  - inputs are borrowed; outputs go to caller-owned buffers unless a function
 *    says otherwise (and then it names the function that frees them).
 *  - destructors accept NULL.
 *  - an index may be searched from many threads at once; mutating calls
 *    (train, add, remove, reset) need exclusive access.
 */
#ifndef VECDEX_H
#define VECDEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define VDX_API __declspec(dllexport)
#elif defined(__GNUC__)
#define VDX_API __attribute__((visibility("default")))
#else
#define VDX_API
#endif

#define VDX_VERSION_MAJOR 0
#define VDX_VERSION_MINOR 1
#define VDX_VERSION_PATCH 0
#define VDX_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------- */
/* Status codes — pinned forever: never renumber, only append.               */
/* ------------------------------------------------------------------------- */
typedef enum vdx_status {
    VDX_OK = 0,
    VDX_ERR_INVALID_ARGUMENT = 1, /* bad shape, NULL pointer, k <= 0, NaN ... */
    VDX_ERR_OUT_OF_MEMORY = 2,    /* an allocation failed or would overflow   */
    VDX_ERR_NOT_TRAINED = 3,      /* add/search before train                  */
    VDX_ERR_IO = 4,               /* open/read/write/rename failed            */
    VDX_ERR_FORMAT = 5,           /* a file or buffer is corrupt or truncated */
    VDX_ERR_UNSUPPORTED = 6,      /* the index kind cannot do this            */
    VDX_ERR_NOT_FOUND = 7,        /* an id or key does not exist              */
    VDX_ERR_INTERNAL = 8,         /* a bug: please report                     */
    VDX_ERR_INTERRUPTED = 9,      /* the interrupt handler asked to stop      */
    VDX_ERR_BUSY = 10,            /* another process holds the store's lock   */
    VDX_ERR_READ_ONLY = 11,       /* a write to a store opened read-only      */
    VDX_ERR_TIMEOUT = 12          /* a deadline passed (vecdex_dist.h)        */
} vdx_status;

/** @return the pinned name of a status ("VDX_ERR_FORMAT"); never NULL. */
VDX_API const char *vdx_status_name(vdx_status s);

/** @return the message of the last error raised in the calling thread
 *  ("" when none).  Valid until the next vecdex call of that thread. */
VDX_API const char *vdx_last_error(void);

/* ------------------------------------------------------------------------- */
/* Basic types                                                               */
/* ------------------------------------------------------------------------- */
typedef int64_t vdx_idx_t;

/* Numbered as FAISS numbers them, since the value is stored in index files. */
typedef enum vdx_metric {
    VDX_METRIC_INNER_PRODUCT = 0,
    VDX_METRIC_L2 = 1
} vdx_metric;

typedef struct vdx_index vdx_index;       /* opaque */
typedef struct vdx_selector vdx_selector; /* opaque */

/* ------------------------------------------------------------------------- */
/* Library information                                                       */
/* ------------------------------------------------------------------------- */
/** @return "MAJOR.MINOR.PATCH". */
VDX_API const char *vdx_version(void);

/** @return a static, human-readable line: SIMD level in use, BLAS, OpenMP
 *  and CUDA availability, thread count. */
VDX_API const char *vdx_build_info(void);

/** @return the SIMD level the kernels use: "scalar", "avx2" or "avx512".
 *  The environment variable VECDEX_SIMD=scalar|avx2|avx512 forces a level
 *  (never above what the CPU and OS support); it is read once. */
VDX_API const char *vdx_simd_level(void);

/** Sets the SIMD level of the kernels from now on, process-wide: "scalar",
 *  "avx2" or "avx512"; NULL or "" restores the default (the machine's
 *  level, lowered by VECDEX_SIMD).  Calls already running finish with the
 *  level they started with.  For tests and comparisons (FAISS:
 *  SIMDConfig.set_level); results are the same at every level up to
 *  floating-point rounding.
 *  @return VDX_ERR_INVALID_ARGUMENT for an unknown name,
 *  VDX_ERR_UNSUPPORTED for a level the CPU or OS lacks. */
VDX_API vdx_status vdx_set_simd_level(const char *name);
/** @return 1 when the CPU and OS support level `name`, else 0. */
VDX_API int vdx_simd_level_available(const char *name);
/** @return the level used when none is set: the machine's, lowered by
 *  VECDEX_SIMD (what vdx_set_simd_level(NULL) restores). */
VDX_API const char *vdx_simd_level_default(void);

/** Sets the number of threads vecdex calls use, library-wide (from any
 *  thread); n <= 0 restores the default (OpenMP's, which honours
 *  OMP_NUM_THREADS).  Calls running at the same time share the threads:
 *  each takes setting / (calls in flight), at least one, so concurrent
 *  searches never oversubscribe the cores.  n (and OMP_NUM_THREADS) is
 *  clamped to vdx_max_threads(): OpenMP exits the process when it cannot
 *  create a team's threads. */
VDX_API void vdx_set_num_threads(int n);
/** @return the library-wide thread setting (after clamping). */
VDX_API int vdx_get_num_threads(void);
/** @return the most threads a setting may ask for: 4 per processor
 *  (omp_get_num_procs()), at least 64, at most 1024. */
VDX_API int vdx_max_threads(void);
/** @return 1 when OpenMP runs a parallel team of 2 threads (FAISS:
 *  check_openmp), 0 when the build or the system runs it on one. */
VDX_API int vdx_check_openmp(void);

/** An interrupt check (e.g. "did the user press Ctrl-C?"): returns non-zero
 *  to stop the call in progress. */
typedef int (*vdx_interrupt_fn)(void *ctx);

/** Installs fn (NULL: none), process-wide.  Long-running calls poll it from
 *  the thread that made the call, at most every 50 ms: k-means (each
 *  iteration; so the training of IVF, PQ and fast-scan indexes), searches
 *  of flat, IVF and HNSW indexes (between blocks of queries or of the
 *  database; so an IVF add's list assignment too).  A stopped call returns
 *  VDX_ERR_INTERRUPTED having changed nothing (a search's outputs are then
 *  undefined).  Adds that modify an index once begun (an HNSW graph's
 *  insertions, appends to inverted lists) run to the end: stopping them half
 *  way would leave a partly added batch. */
VDX_API void vdx_set_interrupt_handler(vdx_interrupt_fn fn, void *ctx);

/* ------------------------------------------------------------------------- */
/* Vector utilities                                                          */
/* ------------------------------------------------------------------------- */
/** Normalises each of the n rows of x (n x d, row-major) to unit L2 norm,
 *  in place.  Zero rows are left unchanged. */
VDX_API vdx_status vdx_normalize_L2(int64_t n, int64_t d, float *x);

/* ------------------------------------------------------------------------- */
/* ID selectors: which ids a search, range search or remove_ids considers.   */
/* Selectors are immutable after creation and safe to share between threads. */
/* Composite selectors (not/and/or) borrow their children: keep them alive   */
/* as long as the composite is used.                                         */
/* ------------------------------------------------------------------------- */
/** Ids in [imin, imax). */
VDX_API vdx_status vdx_selector_range(vdx_idx_t imin, vdx_idx_t imax,
                                      vdx_selector **out);
/** A set of n ids, copied into a hash set (O(1) membership). */
VDX_API vdx_status vdx_selector_batch(int64_t n, const vdx_idx_t *ids,
                                      vdx_selector **out);
/** A list of n ids, copied; membership is a binary search of a sorted copy. */
VDX_API vdx_status vdx_selector_array(int64_t n, const vdx_idx_t *ids,
                                      vdx_selector **out);
/** Id i is in the set when bit (i & 7) of bitmap[i >> 3] is 1; ids at or past
 *  8 * nbytes are not.  The bitmap is copied. */
VDX_API vdx_status vdx_selector_bitmap(int64_t nbytes, const uint8_t *bitmap,
                                       vdx_selector **out);
VDX_API vdx_status vdx_selector_not(const vdx_selector *a, vdx_selector **out);
VDX_API vdx_status vdx_selector_and(const vdx_selector *a,
                                    const vdx_selector *b, vdx_selector **out);
VDX_API vdx_status vdx_selector_or(const vdx_selector *a,
                                   const vdx_selector *b, vdx_selector **out);
/** @return 1 when id is in the selection, 0 otherwise (0 for a NULL sel). */
VDX_API int vdx_selector_is_member(const vdx_selector *sel, vdx_idx_t id);
VDX_API void vdx_selector_free(vdx_selector *sel);

/* ------------------------------------------------------------------------- */
/* Search parameters: travel with each call, never stored in the index.      */
/* A zero field means "the index's own setting".  Fields a kind does not use */
/* are ignored by it.  Always initialise with vdx_search_params_init().      */
/* ------------------------------------------------------------------------- */
typedef struct vdx_search_params {
    const vdx_selector *sel; /* only ids in this selection; NULL = all      */
    int64_t nprobe;          /* IVF: lists probed                           */
    int64_t max_codes;       /* IVF: scan at most this many codes (0 = none) */
    int efSearch;            /* HNSW: search-time beam width                */
    float k_factor;          /* refine: base index fetches k * k_factor     */
    const struct vdx_search_params *base_params; /* refine / pretransform  */
    int candidates_only;     /* the caller re-ranks the results itself (as
                                IndexRefine does with its base): distances
                                may be the index's approximate ones (fast
                                scan skips its float-table re-scoring)
                                and may come in any order, -1 slots
                                anywhere                                 */
    float beam_factor;       /* ResidualCoarseQuantizer: beam of k * this
                                (< 0: exhaustive); 0 = the index's own     */
    int64_t reserved[7];     /* zero; room to grow without breaking ABI     */
} vdx_search_params;

VDX_API void vdx_search_params_init(vdx_search_params *p);

/* ------------------------------------------------------------------------- */
/* Range-search results (allocated by the library).                          */
/* Results of query i are labels[lims[i] .. lims[i+1]) with their distances. */
/* ------------------------------------------------------------------------- */
typedef struct vdx_range_result {
    int64_t nq;
    int64_t *lims;     /* nq + 1 entries */
    float *distances;  /* lims[nq] entries */
    vdx_idx_t *labels; /* lims[nq] entries */
} vdx_range_result;

VDX_API void vdx_range_result_free(vdx_range_result *r);

/* ------------------------------------------------------------------------- */
/* Index construction                                                        */
/* ------------------------------------------------------------------------- */
/** Exact (brute-force) index over float32 vectors of dimension d.
 *  FAISS: IndexFlat, IndexFlatL2, IndexFlatIP. */
VDX_API vdx_status vdx_index_flat_new(int64_t d, vdx_metric metric,
                                      vdx_index **out);

/** Wraps `sub` so that add_with_ids stores the caller's 64-bit ids.
 *  The new index takes ownership of `sub` (freed with it) on success only.
 *  `sub` must be empty.  FAISS: IndexIDMap. */
VDX_API vdx_status vdx_index_idmap_new(vdx_index *sub, vdx_index **out);

/** As vdx_index_idmap_new, plus a reverse map so that reconstruct takes the
 *  caller's id.  FAISS: IndexIDMap2. */
VDX_API vdx_status vdx_index_idmap2_new(vdx_index *sub, vdx_index **out);

/** Inverted-file index with uncompressed vectors (FAISS: IndexIVFFlat).
 *  `quantizer` (d-dimensional, any vecdex index) assigns vectors to the
 *  nlist lists; the new index takes ownership of it on success only.  When
 *  the quantizer already holds nlist trained centroids, train() keeps them;
 *  otherwise train() runs k-means (FAISS's defaults: 10 iterations, seed
 *  1234, at most 256 points per centroid) and fills it. */
VDX_API vdx_status vdx_index_ivf_flat_new(vdx_index *quantizer, int64_t d,
                                          int64_t nlist, vdx_metric metric,
                                          vdx_index **out);

/* IVF accessors (VDX_ERR_INVALID_ARGUMENT / 0 / NULL for other kinds). */
VDX_API int vdx_index_is_ivf(const vdx_index *index);
VDX_API int64_t vdx_index_ivf_nlist(const vdx_index *index);
VDX_API int64_t vdx_index_ivf_nprobe(const vdx_index *index);
/** Default nprobe of searches without params.nprobe; clamped to nlist.
 *  0 is accepted (as in FAISS) and a search with it fails with
 *  VDX_ERR_INVALID_ARGUMENT; negative values are refused. */
VDX_API vdx_status vdx_index_ivf_set_nprobe(vdx_index *index, int64_t nprobe);
VDX_API int64_t vdx_index_ivf_max_codes(const vdx_index *index);
VDX_API vdx_status vdx_index_ivf_set_max_codes(vdx_index *index,
                                               int64_t max_codes);
/** The coarse quantizer (borrowed). */
VDX_API vdx_index *vdx_index_ivf_quantizer(const vdx_index *index);
/** Number of vectors in list `list_no`, or -1 when out of range. */
VDX_API int64_t vdx_index_ivf_list_size(const vdx_index *index,
                                        int64_t list_no);
/** Copies the ids of list `list_no` (list_size entries) into out. */
VDX_API vdx_status vdx_index_ivf_list_ids(const vdx_index *index,
                                          int64_t list_no, vdx_idx_t *out);
/** Copies the codes of list `list_no` (list_size * code_size bytes) into
 *  out, in the order of its ids. */
VDX_API vdx_status vdx_index_ivf_list_codes(const vdx_index *index,
                                            int64_t list_no, uint8_t *out);
/** Bytes per code in the lists of an IVF index (0 for other kinds): the
 *  float vector for IVF-Flat, the PQ / SQ code otherwise. */
VDX_API size_t vdx_index_ivf_code_size(const vdx_index *index);
/** Builds (on=1) or drops (on=0) the id -> (list, offset) map that
 *  reconstruct needs.  Ids must be sequential (vectors added with add()). */
VDX_API vdx_status vdx_index_ivf_make_direct_map(vdx_index *index, int on);
/** Assigns n vectors to their nearest list: lists[i] in 0..nlist-1. */
VDX_API vdx_status vdx_index_ivf_assign(const vdx_index *index, int64_t n,
                                        const float *x, int64_t *lists);

/** Frees an index and everything it owns.  NULL is accepted. */
VDX_API void vdx_index_free(vdx_index *index);

/* ------------------------------------------------------------------------- */
/* Index operations.  n is the number of row-major vectors in x (n x d).     */
/* Vectors (trained, added or queried) with NaN or Inf are rejected with     */
/* VDX_ERR_INVALID_ARGUMENT, and nothing changes.                            */
/* ------------------------------------------------------------------------- */
VDX_API vdx_status vdx_index_train(vdx_index *index, int64_t n,
                                   const float *x);
/** Adds n vectors; their ids are ntotal .. ntotal + n - 1. */
VDX_API vdx_status vdx_index_add(vdx_index *index, int64_t n, const float *x);
/** Adds n vectors with the caller's ids (IDMap, IVF); other kinds return
 *  VDX_ERR_UNSUPPORTED. */
VDX_API vdx_status vdx_index_add_with_ids(vdx_index *index, int64_t n,
                                          const float *x,
                                          const vdx_idx_t *ids);

/** k nearest neighbours of each of the n queries.
 *  distances and labels are caller-owned arrays of n * k entries, sorted per
 *  query (ascending for L2, descending for inner product; ties by lower id).
 *  When fewer than k results exist, the remaining slots hold label -1 and
 *  distance +FLT_MAX (L2) or -FLT_MAX (inner product), as FAISS returns.
 *  @param params may be NULL.
 *  Thread safety: concurrent searches on one index are safe. */
VDX_API vdx_status vdx_index_search(const vdx_index *index, int64_t n,
                                    const float *x, int64_t k,
                                    const vdx_search_params *params,
                                    float *distances, vdx_idx_t *labels);

/** All database vectors within `radius` of each query: L2 (squared)
 *  distance < radius, or inner product > radius.
 *  On success *out is a new result that the caller frees with
 *  vdx_range_result_free. */
VDX_API vdx_status vdx_index_range_search(const vdx_index *index, int64_t n,
                                          const float *x, float radius,
                                          const vdx_search_params *params,
                                          vdx_range_result **out);

/** Removes all vectors. */
VDX_API vdx_status vdx_index_reset(vdx_index *index);

/** Writes the vector stored under `key` into out (d floats).  Flat: the
 *  sequential position; IDMap2: the caller's id; IVF: the id, once the
 *  direct map is on.  IDMap cannot (VDX_ERR_UNSUPPORTED, as FAISS); a
 *  missing key is VDX_ERR_NOT_FOUND. */
VDX_API vdx_status vdx_index_reconstruct(const vdx_index *index,
                                         vdx_idx_t key, float *out);
/** Writes the vectors of the n ids keys[0..n) into out (n x d), as n
 *  calls of vdx_index_reconstruct (FAISS's reconstruct_batch); stops at
 *  the first key that fails, with its error (out then partly written). */
VDX_API vdx_status vdx_index_reconstruct_batch(const vdx_index *index,
                                               int64_t n, const vdx_idx_t *keys,
                                               float *out);
/** Writes vectors i0 .. i0 + ni - 1 (positions) into out (ni x d). */
VDX_API vdx_status vdx_index_reconstruct_n(const vdx_index *index,
                                           vdx_idx_t i0, int64_t ni,
                                           float *out);

/** Removes the vectors whose ids are in sel.  Flat indexes compact their
 *  storage, so the sequential ids of later vectors shift down, as in FAISS.
 *  @param nremoved may be NULL; receives the count removed. */
VDX_API vdx_status vdx_index_remove_ids(vdx_index *index,
                                        const vdx_selector *sel,
                                        int64_t *nremoved);

/* Getters (a NULL index gives 0). */
VDX_API int64_t vdx_index_d(const vdx_index *index);
VDX_API int64_t vdx_index_ntotal(const vdx_index *index);
VDX_API int vdx_index_is_trained(const vdx_index *index);
VDX_API vdx_metric vdx_index_metric(const vdx_index *index);
/** @return a static type name, FAISS's class name ("IndexFlat", ...). */
VDX_API const char *vdx_index_type_name(const vdx_index *index);
/** @return the wrapped index of an IDMap / IDMap2 (borrowed), else NULL. */
VDX_API vdx_index *vdx_index_sub_index(const vdx_index *index);
/** Copies the id map of an IDMap / IDMap2 (ntotal entries) into out. */
VDX_API vdx_status vdx_index_get_id_map(const vdx_index *index,
                                        vdx_idx_t *out);
/** For a flat index: a borrowed pointer to the stored vectors (ntotal x d),
 *  valid until the next mutating call; else NULL. */
VDX_API const float *vdx_index_flat_data(const vdx_index *index);

/* ------------------------------------------------------------------------- */
/* k-means (Lloyd), as FAISS's Clustering / Kmeans                            */
/* ------------------------------------------------------------------------- */
typedef struct vdx_kmeans_params {
    int niter;                       /* iterations per run (default 25)      */
    int nredo;                       /* runs; the best objective wins (1)    */
    int64_t seed;                    /* random seed (1234)                    */
    int spherical;                   /* normalise centroids (inner product)  */
    int64_t max_points_per_centroid; /* sub-sample above k * this (256)      */
    int64_t min_points_per_centroid; /* warn below k * this (39)             */
    int64_t int_centroids;           /* round centroids to integers after each
                                        iteration (0; FAISS: int_centroids) */
    int64_t reserved[5];
} vdx_kmeans_params;

/* Bits of the `warnings` output of vdx_kmeans_train. */
#define VDX_KMEANS_WARN_FEW_POINTS 1 /* n < k * min_points_per_centroid */
#define VDX_KMEANS_WARN_SUBSAMPLED 2 /* n > k * max_points_per_centroid */

VDX_API void vdx_kmeans_params_init(vdx_kmeans_params *p);

/** The clustering parameters an IVF index trains its coarse quantizer with
 *  (FAISS: IndexIVF.cp), or NULL when index is not an IVF index.  Borrowed:
 *  lives as long as the index; changes apply to the next train(). */
VDX_API vdx_kmeans_params *vdx_index_ivf_cp(vdx_index *index);

/** Clusters the n x d points x into k centroids.
 *  @param p NULL for the defaults.
 *  @param centroids caller-owned, k x d floats (output).
 *  @param obj NULL or niter * nredo floats: the objective (sum of squared
 *         distances, or of similarities when spherical) after each
 *         iteration of each run.
 *  @param warnings NULL or receives VDX_KMEANS_WARN_* bits.
 *  @return VDX_ERR_INVALID_ARGUMENT when n < k.  Deterministic for a given
 *  seed whatever the thread count. */
VDX_API vdx_status vdx_kmeans_train(int64_t d, int64_t k, int64_t n,
                                    const float *x,
                                    const vdx_kmeans_params *p,
                                    float *centroids, float *obj,
                                    int *warnings);

/* ------------------------------------------------------------------------- */
/* index_factory                                                             */
/* ------------------------------------------------------------------------- */
/** Builds an empty index from a FAISS factory string, with FAISS's grammar
 *  for the kinds vecdex has: "Flat", "IDMap,Flat", "IDMap2,Flat",
 *  "IVF<n>,Flat" (n may end in k = *1024 or M = *1024^2), and an IDMap /
 *  IDMap2 prefix before any of them ("IDMap,IVF100,Flat"), and a refinement
 *  suffix: ",RFlat" (IndexRefineFlat) or ",Refine(<description>)"
 *  (IndexRefine, e.g. "IVF100,PQ8,Refine(SQfp16)").  Tokens are
 *  case-sensitive and, as in FAISS, whitespace is not allowed.
 *  On success *out is a new index that the caller frees with vdx_index_free.
 *  @return VDX_ERR_INVALID_ARGUMENT for an unknown or malformed description;
 *  the message names the token and its 0-based position ("index_factory:
 *  unknown token 'PQ16x' at position 7 in 'IVF100,PQ16x'"). */
VDX_API vdx_status vdx_index_factory(int64_t d, const char *description,
                                     vdx_metric metric, vdx_index **out);

/* ------------------------------------------------------------------------- */
/* Product quantizer (FAISS: ProductQuantizer, IndexPQ, IndexIVFPQ)           */
/* ------------------------------------------------------------------------- */
typedef struct vdx_pq vdx_pq; /* opaque */

/** A product quantizer cutting d-vectors into M sub-vectors (M divides d),
 *  each encoded on nbits (1..16) bits; codes are packed as FAISS packs them
 *  (ceil(M * nbits / 8) bytes, little-endian bit order).  Free with
 *  vdx_pq_free.  Training: k-means per subspace, 25 iterations, seed 1234,
 *  at most 256 points per centroid (FAISS's defaults). */
VDX_API vdx_status vdx_pq_new(int64_t d, int64_t M, int nbits, vdx_pq **out);
/** Frees a quantizer made by vdx_pq_new (NULL accepted; never one borrowed
 *  from an index). */
VDX_API void vdx_pq_free(vdx_pq *pq);
/** Trains the sub-quantizers on n x d vectors (n >= 2^nbits). */
VDX_API vdx_status vdx_pq_train(vdx_pq *pq, int64_t n, const float *x);
/** Encodes n vectors into n x code_size bytes; VDX_ERR_NOT_TRAINED before
 *  training.  Thread-safe. */
VDX_API vdx_status vdx_pq_compute_codes(const vdx_pq *pq, int64_t n,
                                        const float *x, uint8_t *codes);
/** Decodes n codes into n x d floats. */
VDX_API vdx_status vdx_pq_decode(const vdx_pq *pq, int64_t n,
                                 const uint8_t *codes, float *x);
/** Query-to-centroid table of M x 2^nbits entries: squared L2 distances
 *  (VDX_METRIC_L2) or inner products of each sub-vector of x. */
VDX_API vdx_status vdx_pq_compute_table(const vdx_pq *pq, vdx_metric metric,
                                        const float *x, float *table);
VDX_API int64_t vdx_pq_d(const vdx_pq *pq);
VDX_API int64_t vdx_pq_M(const vdx_pq *pq);
VDX_API int vdx_pq_nbits(const vdx_pq *pq);
VDX_API size_t vdx_pq_code_size(const vdx_pq *pq);
/** The M x 2^nbits x (d/M) centroids (borrowed), or NULL before training. */
VDX_API const float *vdx_pq_centroids(const vdx_pq *pq);
/** Replaces the centroids (M x 2^nbits x (d/M) floats, all finite).  For
 *  the quantizer of an IndexPQ this also marks the index trained. */
VDX_API vdx_status vdx_pq_set_centroids(vdx_pq *pq, const float *centroids);
/** The per-sub-space k-means parameters of pq (FAISS: ProductQuantizer.cp;
 *  25 iterations by default).  Borrowed, lives as long as pq. */
VDX_API vdx_kmeans_params *vdx_pq_cp(vdx_pq *pq);

/** Exhaustive index over PQ codes searched by asymmetric distance
 *  computation (FAISS: IndexPQ).  L2 or inner product. */
VDX_API vdx_status vdx_index_pq_new(int64_t d, int64_t M, int nbits,
                                    vdx_metric metric, vdx_index **out);
/** IVF index over PQ codes of the residuals to the list centroids (FAISS:
 *  IndexIVFPQ, by_residual).  Takes ownership of `quantizer` on success;
 *  the IVF accessors apply. */
VDX_API vdx_status vdx_index_ivfpq_new(vdx_index *quantizer, int64_t d,
                                       int64_t nlist, int64_t M, int nbits,
                                       vdx_metric metric, vdx_index **out);
/** The product quantizer of an IndexPQ or IndexIVFPQ (borrowed, lives as
 *  long as the index), or NULL for other kinds. */
VDX_API vdx_pq *vdx_index_pq_quantizer(const vdx_index *index);
/** IndexIVFPQ's use_precomputed_table (FAISS's meaning): -1 never use the
 *  precomputed L2 tables, 0 use them when they take at most 2 GiB (the
 *  default), 1 always.  The tables (nlist x M x 2^nbits floats) exist for
 *  the L2 metric with residual codes only; setting the value rebuilds or
 *  frees them (search results are the same up to float rounding).  Not
 *  thread-safe against concurrent searches of the same index.
 *  @return VDX_ERR_INVALID_ARGUMENT when index is not an IndexIVFPQ or the
 *  value is not -1, 0 or 1; VDX_ERR_OUT_OF_MEMORY. */
/** by_residual of an IndexIVFPQ (1 by default, as FAISS), 0 for others. */
VDX_API int vdx_index_ivfpq_by_residual(const vdx_index *index);
/** Sets by_residual of an IndexIVFPQ, at any time as in FAISS: codes added
 *  before the change are then read the other way (train and add with the
 *  setting you search with). */
VDX_API vdx_status vdx_index_ivfpq_set_by_residual(vdx_index *index, int on);
VDX_API vdx_status vdx_index_ivfpq_set_use_precomputed_table(vdx_index *index,
                                                             int value);
/** The current use_precomputed_table of an IndexIVFPQ (0 for other kinds);
 *  *active (may be NULL) is set to whether the tables exist now. */
VDX_API int vdx_index_ivfpq_use_precomputed_table(const vdx_index *index,
                                                  int *active);

/* ------------------------------------------------------------------------- */
/* Scalar quantizer (FAISS: ScalarQuantizer, IndexScalarQuantizer,           */
/* IndexIVFScalarQuantizer)                                                  */
/* ------------------------------------------------------------------------- */
/* Quantizer types: FAISS's ScalarQuantizer::QuantizerType numbers (stored in
 * files).  8bit / 4bit / 6bit: per-dimension [min, max] ranges; the
 * _uniform kinds one range for all dimensions; fp16 / bf16: 16-bit floats;
 * 8bit_direct: components stored as (uint8_t)x (values meant to be in
 * 0..255).  fp16, bf16 and 8bit_direct need no training. */
#define VDX_SQ_8BIT 0
#define VDX_SQ_4BIT 1
#define VDX_SQ_8BIT_UNIFORM 2
#define VDX_SQ_4BIT_UNIFORM 3
#define VDX_SQ_FP16 4
#define VDX_SQ_8BIT_DIRECT 5
#define VDX_SQ_6BIT 6
#define VDX_SQ_BF16 7
/* components stored as (uint8_t)(x + 128) (values meant in -128..127) */
#define VDX_SQ_8BIT_DIRECT_SIGNED 8
/* TurboQuant-MSE: a fixed Lloyd-Max table of N(0, 1/d) on 1..8 bits a
 * component (FAISS's QT_<b>bit_tqmse numbers) */
#define VDX_SQ_1BIT_TQMSE 10
#define VDX_SQ_2BIT_TQMSE 11
#define VDX_SQ_3BIT_TQMSE 12
#define VDX_SQ_4BIT_TQMSE 13
#define VDX_SQ_8BIT_TQMSE 14

typedef struct vdx_sq vdx_sq; /* opaque */

/** A scalar quantizer of d-vectors; free with vdx_sq_free.
 *  @return VDX_ERR_INVALID_ARGUMENT for an unknown qtype or a bad d. */
VDX_API vdx_status vdx_sq_new(int64_t d, int qtype, vdx_sq **out);
/** Frees a quantizer made by vdx_sq_new (NULL accepted; never one borrowed
 *  from an index). */
VDX_API void vdx_sq_free(vdx_sq *sq);
/** Trains the ranges on n x d vectors (FAISS's RS_minmax: per-dimension or
 *  global min and max); a no-op for the kinds that need no training. */
VDX_API vdx_status vdx_sq_train(vdx_sq *sq, int64_t n, const float *x);
/** Encodes n vectors into n x code_size bytes, laid out exactly as FAISS
 *  lays them out; VDX_ERR_NOT_TRAINED before training.  Thread-safe. */
VDX_API vdx_status vdx_sq_compute_codes(const vdx_sq *sq, int64_t n,
                                        const float *x, uint8_t *codes);
/** Decodes n codes into n x d floats. */
VDX_API vdx_status vdx_sq_decode(const vdx_sq *sq, int64_t n,
                                 const uint8_t *codes, float *x);
VDX_API int64_t vdx_sq_d(const vdx_sq *sq);
VDX_API int vdx_sq_qtype(const vdx_sq *sq);
VDX_API size_t vdx_sq_code_size(const vdx_sq *sq);
VDX_API int vdx_sq_is_trained(const vdx_sq *sq);
/** The trained values as FAISS stores them (borrowed; *n receives their
 *  count): [vmin(d), vdiff(d)] per dimension, [vmin, vdiff] for the
 *  uniform kinds, none for fp16 / bf16 / 8bit_direct. */
VDX_API const float *vdx_sq_trained(const vdx_sq *sq, size_t *n);
/** Replaces the trained values (n must be the count above; finite). */
VDX_API vdx_status vdx_sq_set_trained(vdx_sq *sq, const float *t, size_t n);

/** Exhaustive index over scalar-quantized codes; distances are computed on
 *  the codes (FAISS: IndexScalarQuantizer).  L2 or inner product. */
VDX_API vdx_status vdx_index_sq_new(int64_t d, int qtype, vdx_metric metric,
                                    vdx_index **out);
/** IVF index storing scalar-quantized codes (FAISS: IndexIVFScalarQuantizer).
 *  With by_residual (FAISS's default) the codes are of the residuals to the
 *  list centroids and the quantizer is trained on residuals.  Takes
 *  ownership of `quantizer` on success; the IVF accessors apply. */
VDX_API vdx_status vdx_index_ivf_sq_new(vdx_index *quantizer, int64_t d,
                                        int64_t nlist, int qtype,
                                        vdx_metric metric, int by_residual,
                                        vdx_index **out);
/** The scalar quantizer of an IndexScalarQuantizer or IndexIVFScalarQuantizer
 *  (borrowed, lives as long as the index), or NULL for other kinds. */
VDX_API vdx_sq *vdx_index_sq_quantizer(const vdx_index *index);
/** 1 when an IndexIVFScalarQuantizer encodes residuals, else 0. */
VDX_API int vdx_index_ivf_sq_by_residual(const vdx_index *index);
/** Sets by_residual of an IndexIVFScalarQuantizer that holds no vectors yet
 *  (FAISS code sets it between construction and train; stored codes would
 *  decode wrongly, so with ntotal > 0 it is refused). */
VDX_API vdx_status vdx_index_ivf_sq_set_by_residual(vdx_index *index, int on);

/* ------------------------------------------------------------------------- */
/* Refinement: a base index proposes k * k_factor candidates, re-ranked by   */
/* exact distances to the vectors of a refine index.  FAISS: IndexRefine,    */
/* IndexRefineFlat.  Search params: k_factor (0 = the index's own) and       */
/* base_params (passed to the base index's search; when NULL, sel is).       */
/* ------------------------------------------------------------------------- */
/** Wraps base and refine (same d, metric and ntotal; refine must be flat or
 *  able to reconstruct).  Takes ownership of both on success only.
 *  k_factor starts at 1, as in FAISS. */
VDX_API vdx_status vdx_index_refine_new(vdx_index *base, vdx_index *refine,
                                        vdx_index **out);
/** IndexRefineFlat: refines with a new flat index of the raw vectors.
 *  `base` must be empty; ownership passes on success only. */
VDX_API vdx_status vdx_index_refine_flat_new(vdx_index *base,
                                             vdx_index **out);
/** @return the k_factor of a refine index, 0 for other kinds. */
VDX_API float vdx_index_refine_k_factor(const vdx_index *index);
/** Sets k_factor (finite, >= 1). */
VDX_API vdx_status vdx_index_refine_set_k_factor(vdx_index *index,
                                                 float k_factor);
/** @return the base / refine index of a refine index (borrowed), else NULL. */
VDX_API vdx_index *vdx_index_refine_base(const vdx_index *index);
VDX_API vdx_index *vdx_index_refine_refine(const vdx_index *index);

/* ------------------------------------------------------------------------- */
/* LSH (FAISS: IndexLSH)                                                     */
/* ------------------------------------------------------------------------- */
/** Binary codes of nbits bits searched by Hamming distance (FAISS:
 *  IndexLSH).  Bit j of a code is set when y_j >= threshold_j, where y is a
 *  random rotation d -> nbits of the vector (rotate_data; vecdex's own
 *  orthonormal matrix, stored in files) or else its first nbits components
 *  (then nbits <= d), and the thresholds are 0 or, with train_thresholds,
 *  the per-bit medians of the training vectors (training is then needed).
 *  Codes take (nbits + 7) / 8 bytes, bit j in byte j / 8, LSB first, as
 *  FAISS packs them.  Search distances are Hamming distances as float32;
 *  empty slots hold label -1 and distance 2147483647 (as FAISS). */
VDX_API vdx_status vdx_index_lsh_new(int64_t d, int nbits, int rotate_data,
                                     int train_thresholds, vdx_index **out);
/* Getters (0 / NULL for an index that is not an IndexLSH). */
VDX_API int vdx_index_lsh_nbits(const vdx_index *index);
VDX_API int vdx_index_lsh_rotate_data(const vdx_index *index);
VDX_API int vdx_index_lsh_train_thresholds(const vdx_index *index);
VDX_API size_t vdx_index_lsh_code_size(const vdx_index *index);
/** The nbits thresholds (borrowed), or NULL before training. */
VDX_API const float *vdx_index_lsh_thresholds(const vdx_index *index);
/** The nbits x d rotation matrix (borrowed), or NULL without rotation. */
VDX_API const float *vdx_index_lsh_rotation(const vdx_index *index);
/** The ntotal x code_size stored codes (borrowed, valid until the next
 *  mutating call). */
VDX_API const uint8_t *vdx_index_lsh_codes(const vdx_index *index);
/** Encodes n vectors into n x code_size bytes (FAISS: sa_encode). */
VDX_API vdx_status vdx_index_lsh_encode(const vdx_index *index, int64_t n,
                                        const float *x, uint8_t *codes);

/* ------------------------------------------------------------------------- */
/* Vector transforms (FAISS: VectorTransform and its subclasses) and         */
/* IndexPreTransform.  A transform maps d_in-vectors to d_out-vectors.       */
/* Linear kinds compute y = A x + b with A stored row-major d_out x d_in.    */
/* ------------------------------------------------------------------------- */
typedef struct vdx_vt vdx_vt; /* opaque */

/** LinearTransform: A (d_out x d_in) and, with have_bias, b (d_out) are set
 *  by the caller with vdx_vt_set_array; trained once A is set. */
VDX_API vdx_status vdx_vt_linear_new(int64_t d_in, int64_t d_out,
                                     int have_bias, vdx_vt **out);
/** RandomRotationMatrix: a seeded random matrix with orthonormal rows
 *  (d_out <= d_in) or columns (d_out > d_in).  train() draws it with seed
 *  12345, as FAISS does; vdx_vt_rr_init draws it with another seed. */
VDX_API vdx_status vdx_vt_random_rotation_new(int64_t d_in, int64_t d_out,
                                              vdx_vt **out);
VDX_API vdx_status vdx_vt_rr_init(vdx_vt *vt, int64_t seed);
/** PCAMatrix (d_out <= d_in): train computes the mean, the scatter matrix
 *  sum (x - mean)(x - mean)^T and its eigenvectors (largest eigenvalue
 *  first, computed in double precision); A holds the first d_out
 *  eigenvectors, each scaled by (eigenvalue + epsilon)^eigen_power
 *  (-0.5 whitens), then right-multiplied by a random rotation when
 *  random_rotation; b = -A mean.  At most max_points_per_d * d_in training
 *  points are used (a seeded sample; default 1000, as FAISS). */
VDX_API vdx_status vdx_vt_pca_new(int64_t d_in, int64_t d_out,
                                  float eigen_power, int random_rotation,
                                  vdx_vt **out);
/** OPQMatrix (Ge et al., "Optimized product quantization", 2013, the
 *  non-parametric variant): a rotation d -> d2 (d2 = d when d2 <= 0; M must
 *  divide d2) trained by alternating PQ training (8 bits) on the rotated
 *  data and an orthogonal Procrustes update of the rotation (SVD).  FAISS's
 *  defaults: niter 50, niter_pq 4, niter_pq_0 40, max_train_points 65536. */
VDX_API vdx_status vdx_vt_opq_new(int64_t d, int64_t M, int64_t d2,
                                  vdx_vt **out);
/** NormalizationTransform: rows scaled to unit L2 norm (norm must be 2). */
VDX_API vdx_status vdx_vt_normalization_new(int64_t d, float norm,
                                            vdx_vt **out);
/** HadamardRotation(d, seed) (FAISS's): zero-pads to p = the next power of 2
 *  and applies three rounds of random signs + Walsh-Hadamard transform,
 *  normalised (an orthogonal map R^p -> R^p; d_out = p).  Trained at
 *  construction; the signs depend on the seed only (FAISS's default 12345).
 *  Free with vdx_vt_free. */
VDX_API vdx_status vdx_vt_hadamard_new(int64_t d, uint32_t seed, vdx_vt **out);
/** The seed of a HadamardRotation, 0 for other transforms. */
VDX_API uint32_t vdx_vt_hadamard_seed(const vdx_vt *vt);
/** CenteringTransform: subtracts the mean of the training vectors. */
VDX_API vdx_status vdx_vt_centering_new(int64_t d, vdx_vt **out);
/** Frees a transform (NULL accepted; never one owned by an index). */
VDX_API void vdx_vt_free(vdx_vt *vt);
/** A deep copy of vt, freed with vdx_vt_free. */
VDX_API vdx_status vdx_vt_clone(const vdx_vt *vt, vdx_vt **out);

/** Trains on n x d_in vectors (finite).  Kinds with nothing to learn
 *  return VDX_OK. */
VDX_API vdx_status vdx_vt_train(vdx_vt *vt, int64_t n, const float *x);
/** y (n x d_out, caller-owned) = the transform of x (n x d_in);
 *  VDX_ERR_NOT_TRAINED before training.  Thread-safe. */
VDX_API vdx_status vdx_vt_apply(const vdx_vt *vt, int64_t n, const float *x,
                                float *y);
/** x (n x d_in) = the inverse of y (n x d_out): A^T (y - b) for
 *  orthonormal linear transforms, identity for the normalisation (FAISS
 *  does the same), y + mean for centering; VDX_ERR_UNSUPPORTED otherwise. */
VDX_API vdx_status vdx_vt_reverse(const vdx_vt *vt, int64_t n, const float *y,
                                  float *x);

/** FAISS's class name ("PCAMatrix", "OPQMatrix", "RandomRotationMatrix",
 *  "LinearTransform", "NormalizationTransform", "CenteringTransform"). */
VDX_API const char *vdx_vt_type_name(const vdx_vt *vt);
VDX_API int64_t vdx_vt_d_in(const vdx_vt *vt);
VDX_API int64_t vdx_vt_d_out(const vdx_vt *vt);
VDX_API int vdx_vt_is_trained(const vdx_vt *vt);
/** 1 for linear kinds whose A has orthonormal rows (then reverse works). */
VDX_API int vdx_vt_is_orthonormal(const vdx_vt *vt);
/** 1 for linear kinds that add a bias b. */
VDX_API int vdx_vt_have_bias(const vdx_vt *vt);

/* Arrays of a transform, for vdx_vt_array / vdx_vt_set_array. */
#define VDX_VT_A 0           /* d_out x d_in (linear kinds)                */
#define VDX_VT_B 1           /* d_out (linear kinds with a bias)           */
#define VDX_VT_MEAN 2        /* d_in (PCA, centering)                       */
#define VDX_VT_EIGENVALUES 3 /* d_in (PCA), largest first                   */
#define VDX_VT_PCAMAT 4      /* d_in x d_in eigenvectors, one per row (PCA) */

/** A borrowed array (valid until the next mutating call on vt) and its
 *  size in *n; NULL with *n = 0 when the kind has none or it is empty. */
VDX_API const float *vdx_vt_array(const vdx_vt *vt, int which, size_t *n);
/** Replaces A (d_out * d_in floats) or b (d_out) of a LinearTransform;
 *  setting A marks it trained and recomputes is_orthonormal. */
VDX_API vdx_status vdx_vt_set_array(vdx_vt *vt, int which, const float *v,
                                    size_t n);

/* Training settings of the transforms (fields a kind does not use are
 * ignored by it).  Read them with vdx_vt_get_options, change and write back
 * with vdx_vt_set_options. */
typedef struct vdx_vt_options {
    float eigen_power;        /* PCA: 0, or e.g. -0.5 (whitening)          */
    float epsilon;            /* PCA: added to eigenvalues when scaling    */
    int random_rotation;      /* PCA: rotate after the projection          */
    int64_t max_points_per_d; /* PCA: sample above d_in * this (1000)      */
    int niter;                /* OPQ: outer iterations (50)                */
    int niter_pq;             /* OPQ: k-means iterations per PQ step (4)   */
    int niter_pq_0;           /* OPQ: ... for the first step (40)          */
    int64_t max_train_points; /* OPQ: sample above this (65536)            */
    int verbose;              /* stored for FAISS compatibility; silent    */
    int64_t reserved[8];
} vdx_vt_options;

VDX_API vdx_status vdx_vt_get_options(const vdx_vt *vt, vdx_vt_options *o);
VDX_API vdx_status vdx_vt_set_options(vdx_vt *vt, const vdx_vt_options *o);
/** OPQ: the number of sub-quantizers M (0 for other kinds). */
VDX_API int64_t vdx_vt_opq_M(const vdx_vt *vt);

/** Serialises a transform alone in FAISS's format (what
 *  faiss.write_VectorTransform writes) to a new buffer freed with
 *  vdx_free_buffer; OPQMatrix is written as a LinearTransform, as FAISS
 *  does. */
VDX_API vdx_status vdx_serialize_vt(const vdx_vt *vt, uint8_t **buf,
                                    size_t *size);
/** Reads a transform written by vdx_serialize_vt or FAISS. */
VDX_API vdx_status vdx_deserialize_vt(const uint8_t *buf, size_t size,
                                      vdx_vt **out);

/** IndexPreTransform: applies a chain of transforms, then the sub-index
 *  (whose d must be the chain's output dimension).  Takes ownership of vt
 *  (may be NULL: an empty chain) and sub on success only.  Train trains
 *  the untrained transforms in order, each on the output of the previous
 *  ones, then the sub-index; search params pass through to the sub-index.
 *  reconstruct needs every transform to be reversible. */
VDX_API vdx_status vdx_index_pretransform_new(vdx_vt *vt, vdx_index *sub,
                                              vdx_index **out);
/** Puts vt first in the chain (vt's d_out must equal the index's d, which
 *  becomes vt's d_in); ownership passes on success only.  As in FAISS,
 *  vectors already stored are not transformed again. */
VDX_API vdx_status vdx_index_pretransform_prepend(vdx_index *index,
                                                  vdx_vt *vt);
/** Number of transforms in the chain (0 for other kinds). */
VDX_API int64_t vdx_index_pretransform_chain_size(const vdx_index *index);
/** Transform i of the chain (borrowed), or NULL. */
VDX_API vdx_vt *vdx_index_pretransform_chain(const vdx_index *index,
                                             int64_t i);
/** The sub-index (borrowed), or NULL for other kinds. */
VDX_API vdx_index *vdx_index_pretransform_index(const vdx_index *index);
/** y (n x sub d) = the chain applied to x (n x d) (FAISS: apply_chain). */
VDX_API vdx_status vdx_index_pretransform_apply(const vdx_index *index,
                                                int64_t n, const float *x,
                                                float *y);
/* HNSW graphs (FAISS: IndexHNSWFlat, IndexHNSWSQ, IndexHNSWPQ)              */
/* ------------------------------------------------------------------------- */
/** Hierarchical navigable small-world graph over a storage index holding
 *  the vectors: flat (IndexHNSWFlat), scalar-quantized (IndexHNSWSQ) or
 *  PQ-coded (IndexHNSWPQ, pq_nbits 8 in FAISS).  M: links per node on the
 *  upper levels, 2M on level 0 (2..512; FAISS's default 32).  Defaults as
 *  FAISS: efConstruction 40, efSearch 16 (search params efSearch overrides
 *  it per call).  Ids are positions: add_with_ids is refused; remove_ids
 *  drops nodes, repairs the graph and shifts later ids down (as IndexFlat).
 *  A build with one thread (vdx_set_num_threads(1)) is deterministic. */
VDX_API vdx_status vdx_index_hnsw_flat_new(int64_t d, int M, vdx_metric metric,
                                           vdx_index **out);
VDX_API vdx_status vdx_index_hnsw_sq_new(int64_t d, int qtype, int M,
                                         vdx_metric metric, vdx_index **out);
VDX_API vdx_status vdx_index_hnsw_pq_new(int64_t d, int64_t pq_m, int M,
                                         int pq_nbits, vdx_metric metric,
                                         vdx_index **out);
/** 1 for the HNSW kinds above. */
VDX_API int vdx_index_is_hnsw(const vdx_index *index);
/** The storage index (borrowed), or NULL for other kinds. */
VDX_API vdx_index *vdx_index_hnsw_storage(const vdx_index *index);
/* Getters (0 / -1 for an index that is not HNSW). */
VDX_API int vdx_index_hnsw_M(const vdx_index *index);
VDX_API int vdx_index_hnsw_ef_construction(const vdx_index *index);
VDX_API int vdx_index_hnsw_ef_search(const vdx_index *index);
/** Top level of the graph (-1 while empty). */
VDX_API int vdx_index_hnsw_max_level(const vdx_index *index);
/** The entry node (-1 while empty). */
VDX_API int64_t vdx_index_hnsw_entry_point(const vdx_index *index);
/** Setters: 1 <= ef <= 2^20.  Not safe during a concurrent add. */
VDX_API vdx_status vdx_index_hnsw_set_ef_construction(vdx_index *index, int ef);
VDX_API vdx_status vdx_index_hnsw_set_ef_search(vdx_index *index, int ef);
/** The top level of node i. */
VDX_API vdx_status vdx_index_hnsw_node_level(const vdx_index *index, int64_t i,
                                             int *level);
/** The links of node i at a level into out (room for 2M entries); their
 *  number in *count. */
VDX_API vdx_status vdx_index_hnsw_neighbors(const vdx_index *index, int64_t i,
                                            int level, int64_t *out,
                                            int *count);
/* 4-bit PQ fast scan (FAISS: IndexPQFastScan, IndexIVFPQFastScan)           */
/* ------------------------------------------------------------------------- */
/** Exhaustive index over 4-bit PQ codes packed in blocks of bbs vectors (a
 *  multiple of 32; FAISS's default 32) and scanned with SIMD table lookups.
 *  nbits must be 4.  Results (ids and distances) are those of the float
 *  ADC table on the same codes, as IndexPQ(d, M, 4) computes them.  L2 or
 *  inner product.  Free with vdx_index_free. */
VDX_API vdx_status vdx_index_pq_fastscan_new(int64_t d, int64_t M, int nbits,
                                             vdx_metric metric, int64_t bbs,
                                             vdx_index **out);
/** An IndexPQFastScan holding the product quantizer and the codes of
 *  `index_pq` (an IndexPQ with nbits=4; FAISS: IndexPQFastScan(IndexPQ)),
 *  which is left unchanged; its searches return what index_pq's do.  Free
 *  with vdx_index_free.
 *  @return VDX_ERR_INVALID_ARGUMENT for another kind or nbits != 4. */
VDX_API vdx_status vdx_index_pq_fastscan_from_pq(const vdx_index *index_pq,
                                                 int64_t bbs,
                                                 vdx_index **out);
/** IVF over 4-bit PQ codes (of the vectors, or of the residuals to the
 *  list centroids with by_residual, off by default as in FAISS), scanned
 *  as above.  Takes ownership of `quantizer` on success only. */
VDX_API vdx_status vdx_index_ivfpq_fastscan_new(vdx_index *quantizer,
                                                int64_t d, int64_t nlist,
                                                int64_t M, int nbits,
                                                vdx_metric metric, int64_t bbs,
                                                vdx_index **out);
/** An IndexIVFPQFastScan with the lists (ids and codes), product
 *  quantizer, by_residual and nprobe of `index_ivfpq` (an IndexIVFPQ with
 *  nbits=4; FAISS: IndexIVFPQFastScan(IndexIVFPQ)), which is left
 *  unchanged.  `quantizer` is a copy of index_ivfpq's coarse quantizer (a
 *  quantizer has one owner in vecdex), owned by the new index on success
 *  only.  Free with vdx_index_free. */
VDX_API vdx_status vdx_index_ivfpq_fastscan_from_ivfpq(
    const vdx_index *index_ivfpq, vdx_index *quantizer, int64_t bbs,
    vdx_index **out);
/** FAISS's implem of a fast-scan index (its choice among kernel variants):
 *  vecdex has one SIMD scan for every value but 2, which is FAISS's
 *  reference search with float tables: an IndexPQFastScan then returns
 *  exactly IndexPQ's results on the same codes (at IndexPQ's speed).  The
 *  value is kept and written to files.  Set: 0-6 or 10-15, as FAISS
 *  accepts. */
VDX_API int vdx_index_fastscan_implem(const vdx_index *index);
VDX_API vdx_status vdx_index_fastscan_set_implem(vdx_index *index,
                                                 int implem);
/** The packed code blocks of a flat fast-scan index (IndexPQFastScan,
 *  IndexAdditiveQuantizerFastScan kinds), FAISS's IndexFastScan::codes:
 *  ntotal rounded up to bbs vectors, M2 / 2 * bbs bytes a block, the
 *  padding zero.  With out NULL, *nbytes receives the size; else *nbytes
 *  (in) is out's capacity, which must hold it.  Unsupported for other
 *  kinds. */
VDX_API vdx_status vdx_index_fastscan_codes(const vdx_index *index,
                                            uint8_t *out, size_t *nbytes);
/** FAISS's qbs of a flat fast-scan index (query batch sizes, one per hex
 *  digit; 0 = automatic): kept and written to files, the scan does not
 *  depend on it.  Set: 0 to INT32_MAX, each hex digit 0-4 (FAISS's batch
 *  sizes); 0 for other kinds. */
VDX_API int64_t vdx_index_fastscan_qbs(const vdx_index *index);
VDX_API vdx_status vdx_index_fastscan_set_qbs(vdx_index *index, int64_t qbs);
/** @return bbs of a fast-scan index, 0 for other kinds. */
VDX_API int64_t vdx_index_fastscan_bbs(const vdx_index *index);
/** The product quantizer of a fast-scan index (borrowed), else NULL. */
VDX_API vdx_pq *vdx_index_fastscan_pq(const vdx_index *index);
/** by_residual of an IndexIVFPQFastScan (1 by default), 0 for others. */
VDX_API int vdx_index_fastscan_by_residual(const vdx_index *index);
/** Sets by_residual; only before training. */
VDX_API vdx_status vdx_index_fastscan_set_by_residual(vdx_index *index,
                                                      int on);

/* ------------------------------------------------------------------------- */
/* Persistence in FAISS's binary format                                      */
/* ------------------------------------------------------------------------- */
/** Writes the index to `path` in FAISS's format.
 *
 *  A new file, or an existing regular file with a single link, is replaced
 *  atomically: the bytes go to a temporary file in the same directory,
 *  ".<name>.vdxtmp.<pid>.<random>", which is fsync'd and renamed over the
 *  path, so readers see the old index or the complete new one; concurrent
 *  writes of one path (threads or processes) each use their own temporary,
 *  and the last rename wins, whole.  An existing file keeps its mode, and
 *  its owner and group where the caller may set them (ACLs and extended
 *  attributes are not copied); a new file gets 0666 less the umask.
 *  Symlinks are followed (chains too): the final target is written and the
 *  links stay.  Written through in place, as fopen("wb") would, and so not
 *  atomically: a FIFO or device (never replaced: as root, /dev/null stays
 *  /dev/null; a FIFO waits for its reader; "/dev/stdout" writes to the
 *  process's standard output, pipe or terminal), a regular file with several
 *  hard links (all names keep sharing the new index), a writable file in a
 *  directory the caller cannot write, and another user's writable file in a
 *  sticky directory such as /tmp (where only its owner may replace it).  A file the caller may not write
 *  is refused.  An index that cannot be written fails before the path is
 *  touched.
 *
 *  A writer that is killed leaves its temporary file (up to the index's
 *  size) behind; the next vdx_write_index of the same path removes those
 *  whose writer is gone (no lock held, and the pid gone or the file
 *  unmodified for 10 minutes).  Nothing else removes them: a path that is
 *  never written again keeps its stale temporaries until someone deletes
 *  ".<name>.vdxtmp.*".
 *  @return VDX_OK; VDX_ERR_IO (the message quotes the path and the OS's
 *    reason) with the old file left as it was, except for in-place writes;
 *    VDX_ERR_UNSUPPORTED for an index kind with no writer.
 *  Thread safety: may run concurrently with searches on the same index and
 *  with other writes; SIGPIPE is blocked in the calling thread while it
 *  writes through a FIFO (a reader leaving is VDX_ERR_IO, not a kill). */
VDX_API vdx_status vdx_write_index(const vdx_index *index, const char *path);
/* FAISS's IO flags, with FAISS's values (faiss/index_io.h). */
#define VDX_IO_FLAG_READ_ONLY 2       /* on-disk lists: never written */
#define VDX_IO_FLAG_ONDISK_SAME_DIR 4 /* on-disk lists: data file next to
                                         the index file */
#define VDX_IO_FLAG_SKIP_IVF_DATA 8
/* IndexIVFPQ: no precomputed L2 tables (queries build per-list tables from
 * their residuals).  Without it the tables are built by the first search
 * that needs them, never at open. */
#define VDX_IO_FLAG_SKIP_PRECOMPUTE_TABLE 16
#define VDX_IO_FLAG_MMAP (VDX_IO_FLAG_SKIP_IVF_DATA | 0x646f0000)
#define VDX_IO_FLAG_MMAP_IFC (1 << 9)
/** Reads an index written by vecdex or FAISS from path.
 *  io_flags: 0, or FAISS's flags.  VDX_IO_FLAG_MMAP or VDX_IO_FLAG_MMAP_IFC
 *  map the file read-only (MAP_PRIVATE) and let the index borrow its large
 *  arrays from the map instead of copying them: the vectors of a Flat index
 *  (also under IndexIDMap / IDMap2 and as HNSW storage), PQ / SQ codes, the
 *  inverted lists of IVF-Flat / IVF-PQ / IVF-SQ and HNSW graphs (FAISS's
 *  neighbors / offsets arrays, each row checked when read).  Search results
 *  are the same as without the flag.  Mapped data is never written through: add,
 *  remove_ids or reset copy what they change first (copy-on-write of the
 *  vectors, or of one inverted list), and the file stays as it was.  Sizes
 *  are validated against the file at open; mapped vectors are not scanned
 *  for NaN / Inf (that would read the whole file).  A file truncated in
 *  place by another process while mapped raises SIGBUS on access, as in
 *  FAISS: replace files by rename (as vdx_write_index does) instead.
 *  FAISS's OnDiskInvertedLists ("ilod", lists in a separate .ivfdata file)
 *  are read with or without the flag (the data file is mapped);
 *  VDX_IO_FLAG_ONDISK_SAME_DIR looks for the data file in the index file's
 *  directory.  Unknown flag bits are ignored, as FAISS does.
 *  @return VDX_OK and a new index in *out (free with vdx_index_free);
 *  VDX_ERR_IO, VDX_ERR_FORMAT, VDX_ERR_UNSUPPORTED; *out NULL on error. */
VDX_API vdx_status vdx_read_index(const char *path, int io_flags,
                                  vdx_index **out);
/** Merges the inverted lists of the IVF indexes stored in the nshards files
 *  shard_paths (same kind, d, nlist and code size as index) into one data
 *  file at ivfdata_path in FAISS's OnDiskInvertedLists layout, and makes
 *  index use it (its lists become on-disk lists borrowing from a read-only
 *  map of the file; its old lists are dropped), as
 *  faiss.contrib.ondisk.merge_ondisk does.  Shards are opened memory-mapped
 *  one at a time, twice (sizes, then data), so the memory needed is about
 *  one list table, not the data.  shift_ids: add to each shard's ids the
 *  ntotal of the shards before it.  The data file is written to a temporary
 *  file and renamed.  On error the index is unchanged.  write_index then
 *  writes the index with an "ilod" record naming ivfdata_path (readable by
 *  FAISS).
 *  @return VDX_OK with *ntotal (may be NULL) the entries merged;
 *  VDX_ERR_INVALID_ARGUMENT (incompatible shard, named), VDX_ERR_IO,
 *  VDX_ERR_FORMAT from reading a shard. */
VDX_API vdx_status vdx_index_ivf_merge_ondisk(vdx_index *index,
                                              const char *const *shard_paths,
                                              int nshards,
                                              const char *ivfdata_path,
                                              int shift_ids, int64_t *ntotal);
/** FAISS's IndexIVF::replace_invlists: dst's inverted lists become src's
 *  (the same lists, shared, not a copy: a change through either index is
 *  seen by both, as in FAISS).  Both indexes must be of the same kind, d,
 *  nlist and code size; fast-scan IVF kinds are refused.  The lists are
 *  reference counted, so `own` (FAISS's ownership flag) is accepted and
 *  ignored: they live until the last index holding them is freed.  Unlike
 *  FAISS, dst's ntotal is set to the lists' total (FAISS leaves it for the
 *  caller to set), and a direct map on dst is rebuilt.
 *  @return VDX_OK; VDX_ERR_INVALID_ARGUMENT (incompatible, named),
 *  VDX_ERR_UNSUPPORTED; on error dst is unchanged.
 *  Thread safety: a mutation of dst; src is only read. */
VDX_API vdx_status vdx_index_ivf_replace_invlists(vdx_index *dst,
                                                  const vdx_index *src,
                                                  int own);
/** Moves every entry of the IVF index src into dst (same kind, d, nlist,
 *  metric), adding add_id to the ids; src is left empty (FAISS's
 *  IndexIVF::merge_from).  Refused with a direct map on either.
 *  @return VDX_OK, VDX_ERR_INVALID_ARGUMENT, VDX_ERR_UNSUPPORTED. */
VDX_API vdx_status vdx_index_ivf_merge_from(vdx_index *dst, vdx_index *src,
                                            int64_t add_id);
/** Bytes of one code of the index as a standalone codec (FAISS's
 *  sa_code_size): IndexFlat d * 4, the flat-code kinds their code size,
 *  IVF kinds the list number (ceil(log256(nlist)) bytes, little endian)
 *  plus the list code, IndexPreTransform its sub-index's, IndexRefine the
 *  base's plus the refine's; 0 for kinds that are no codec. */
VDX_API size_t vdx_index_sa_code_size(const vdx_index *index);
/** Encodes n vectors into n x sa_code_size bytes, FAISS's layout (FAISS's
 *  sa_encode); nothing is added.
 *  @return VDX_OK; VDX_ERR_NOT_TRAINED; VDX_ERR_UNSUPPORTED (no codec);
 *  VDX_ERR_INVALID_ARGUMENT (NaN/Inf, NULL). */
VDX_API vdx_status vdx_index_sa_encode(const vdx_index *index, int64_t n,
                                       const float *x, uint8_t *codes);
/** Decodes n codes into n x d floats (FAISS's sa_decode; IndexRefine
 *  decodes its refine part).  An IVF code naming a list outside
 *  0..nlist-1 is refused (VDX_ERR_INVALID_ARGUMENT) before any output. */
VDX_API vdx_status vdx_index_sa_decode(const vdx_index *index, int64_t n,
                                       const uint8_t *codes, float *x);
/** Adds n codes made by vdx_index_sa_encode of the same index (FAISS's
 *  add_sa_codes): flat-code kinds append them (ids must be NULL), IVF
 *  kinds add each to the list its code names (ids NULL: ntotal + i),
 *  IndexIDMap / IDMap2 add them to the sub-index and store ids (required).
 *  @return VDX_OK, VDX_ERR_INVALID_ARGUMENT, VDX_ERR_UNSUPPORTED,
 *  VDX_ERR_NOT_TRAINED, VDX_ERR_OUT_OF_MEMORY. */
VDX_API vdx_status vdx_index_add_sa_codes(vdx_index *index, int64_t n,
                                          const uint8_t *codes,
                                          const vdx_idx_t *ids);
/** Whether src's entries can be merged into dst (FAISS's
 *  Index::check_compatible_for_merge): the same kind, d and metric, both
 *  trained, and the same trained parameters (PQ codebooks, SQ ranges, LSH
 *  rotation and thresholds, IVF coarse centroids and nlist, transform
 *  chains).  IndexIDMap / IDMap2 accept either kind of IDMap and check the
 *  sub-indexes; IndexPreTransform checks the chains, then the sub-indexes.
 *  Supported: IndexFlat*, IndexPQ, IndexPQFastScan, IndexScalarQuantizer,
 *  IndexLSH, the IVF kinds, IndexIDMap(2), IndexPreTransform.
 *  @return VDX_OK; VDX_ERR_INVALID_ARGUMENT naming the difference;
 *  VDX_ERR_UNSUPPORTED for other kinds.  Neither index is changed. */
VDX_API vdx_status vdx_index_check_compatible_for_merge(const vdx_index *dst,
                                                        const vdx_index *src);
/** Moves every entry of src into dst (FAISS's Index::merge_from), after
 *  vdx_index_check_compatible_for_merge: src's entries follow dst's, and
 *  src is left empty (still trained).  add_id is added to src's ids by the
 *  kinds that store ids (IVF, IDMap); the others number entries by
 *  position and refuse add_id != 0, as FAISS does.  IVF kinds go through
 *  vdx_index_ivf_merge_from.  A refused merge changes neither index.
 *  @return VDX_OK, VDX_ERR_INVALID_ARGUMENT, VDX_ERR_UNSUPPORTED,
 *  VDX_ERR_OUT_OF_MEMORY.  Thread safety: a mutation of both indexes. */
VDX_API vdx_status vdx_index_merge_from(vdx_index *dst, vdx_index *src,
                                        int64_t add_id);
/** k-NN search of an IVF index over lists chosen by the caller (FAISS's
 *  IndexIVF::search_preassigned): lists holds nprobe list numbers per
 *  query, in probe order, -1 entries skipped.  params as for
 *  vdx_index_search (its nprobe is ignored; max_codes and sel apply).
 *  FAISS also takes the coarse distances: vecdex's kinds recompute what
 *  they need of them, so they are not an argument.
 *  @return VDX_OK; VDX_ERR_INVALID_ARGUMENT (a list outside 0..nlist-1,
 *  named; nprobe < 1; bad k or queries); VDX_ERR_UNSUPPORTED for kinds
 *  other than IVF-Flat, IVFPQ, IVF-SQ and IVF additive quantizers. */
VDX_API vdx_status vdx_index_ivf_search_preassigned(
    const vdx_index *index, int64_t n, const float *x, int64_t k,
    int64_t nprobe, const int64_t *lists, const vdx_search_params *params,
    float *distances, vdx_idx_t *labels);

/* ---- flat code arrays (FAISS's IndexFlatCodes::codes) ------------------ */
/** Bytes per stored entry of a flat-code index: 4 * d for IndexFlat (the
 *  float32 vectors as bytes), code_size for IndexPQ, IndexScalarQuantizer
 *  and IndexLSH; 0 for any other kind. */
VDX_API size_t vdx_index_codes_size(const vdx_index *index);
/** Copies the stored codes of entries i0 .. i0 + n - 1 (n * codes_size
 *  bytes, in entry order) into out.
 *  @return VDX_OK, VDX_ERR_UNSUPPORTED for kinds without a flat code
 *  array, VDX_ERR_INVALID_ARGUMENT for a range outside 0..ntotal. */
VDX_API vdx_status vdx_index_codes_get(const vdx_index *index, int64_t i0,
                                       int64_t n, uint8_t *out);

/* ---- search statistics (FAISS's cvar.indexIVF_stats / hnsw_stats) ------ */
/** Process-wide counters summed over every IVF search and range search
 *  (all IVF kinds, fast-scan included) since the last reset.  They are
 *  statistics only: no search reads them, concurrent searches just add up
 *  (a read racing with a search may see part of its counts). */
typedef struct vdx_ivf_stats {
    int64_t nq;               /**< queries searched */
    int64_t nlist;            /**< non-empty inverted lists visited */
    int64_t ndis;             /**< codes scored (k-NN: a selector's rejects not counted) */
    int64_t nheap_updates;    /**< candidates that entered a k-NN result heap */
    double quantization_time; /**< ms in the coarse quantizer */
    double search_time;       /**< ms in the whole calls */
} vdx_ivf_stats;
/** Copies the IVF counters to *out.  Thread-safe.
 *  @return VDX_OK, VDX_ERR_INVALID_ARGUMENT when out is NULL. */
VDX_API vdx_status vdx_ivf_stats_get(vdx_ivf_stats *out);
/** Sets the IVF counters to zero.  Thread-safe. */
VDX_API void vdx_ivf_stats_reset(void);
/** The same for HNSW searches (FAISS's HNSWStats). */
typedef struct vdx_hnsw_stats {
    int64_t n1;    /**< searches that ended with fewer than k results from the walk */
    int64_t n2;    /**< reserved (FAISS: walks that ran out of candidates); 0 */
    int64_t ndis;  /**< distances computed */
    int64_t nhops; /**< level-0 nodes expanded */
} vdx_hnsw_stats;
/** Copies the HNSW counters to *out.  Thread-safe.
 *  @return VDX_OK, VDX_ERR_INVALID_ARGUMENT when out is NULL. */
VDX_API vdx_status vdx_hnsw_stats_get(vdx_hnsw_stats *out);
/** Sets the HNSW counters to zero.  Thread-safe. */
VDX_API void vdx_hnsw_stats_reset(void);

/** The same as vdx_read_index (the name the FAISS docs use for the call
 *  with flags). */
VDX_API vdx_status vdx_read_index_flags(const char *path, int io_flags,
                                        vdx_index **out);
/** Serialises to a new buffer (*buf, *size); free it with vdx_free_buffer. */
VDX_API vdx_status vdx_serialize_index(const vdx_index *index, uint8_t **buf,
                                       size_t *size);
VDX_API vdx_status vdx_deserialize_index(const uint8_t *buf, size_t size,
                                         vdx_index **out);
VDX_API void vdx_free_buffer(void *buf);

/* ------------------------------------------------------------------------- */
/* Shards and replicas in one process (FAISS: IndexShards, IndexReplicas,    */
/* IndexShardsIVF).  Their sub-indexes may be of any kind, another           */
/* IndexShards included.  Every call forwards its search parameters (nprobe, */
/* efSearch, the selector...) to every sub-index; a sub-index that fails    */
/* fails the call, the message naming it ("IndexShards search: shard 2 of 4 */
/* (IndexIVFFlat) failed: ...").  Sub-indexes are borrowed unless added     */
/* with own=1 (then freed with the index); after changing one directly,     */
/* call vdx_index_shards_sync (FAISS: syncWithSubIndexes).                   */
/* ------------------------------------------------------------------------- */
/** IndexShards: add() splits each batch by rows (shard s gets rows
 *  [s n/S, (s+1) n/S)); search merges the shards' k best per query (ties to
 *  the lower id: a sharded exact index answers as one exact index).
 *  successive_ids (FAISS's default 1): shard s numbers its vectors from the
 *  total of shards 0..s-1, add() is then allowed once and add_with_ids not
 *  at all; 0: add() assigns ids ntotal + i, the shards store ids (they must
 *  take add_with_ids: IDMap, IVF).  threaded: one worker thread per shard
 *  (FAISS's default 0).  d = 0 takes the first shard's.  Without shards it
 *  reports is_trained = 1 (FAISS: 0), so that add and search say "no
 *  shards" rather than "not trained". */
VDX_API vdx_status vdx_index_shards_new(int64_t d, int threaded,
                                        int successive_ids, vdx_index **out);
/** IndexReplicas: every replica holds the same vectors (add, train and
 *  removal go to all); a search batch is split into consecutive slices, one
 *  per replica.  FAISS's default threaded is 1. */
VDX_API vdx_status vdx_index_replicas_new(int64_t d, int threaded,
                                          vdx_index **out);
/** IndexShardsIVF: one coarse quantizer (owned on success) of nlist lists;
 *  the shards are IVF indexes with that nlist.  train() trains the
 *  quantizer (k-means, 10 iterations as FAISS) and copies its centroids to
 *  every shard's quantizer; add() and search() run the coarse step once for
 *  all shards.  nprobe: the call's, else shard 0's. */
VDX_API vdx_status vdx_index_shards_ivf_new(vdx_index *quantizer,
                                            int64_t nlist, int threaded,
                                            int successive_ids,
                                            vdx_index **out);
/** Adds a shard (replica); FAISS: add_shard / addIndex.  Its d, metric and
 *  trained state must match those already there (replicas: ntotal too). */
VDX_API vdx_status vdx_index_shards_add(vdx_index *index, vdx_index *shard,
                                        int own);
/** Removes a shard (replica) given by pointer, freeing it when owned;
 *  VDX_ERR_NOT_FOUND when it is not one. */
VDX_API vdx_status vdx_index_shards_remove(vdx_index *index,
                                           const vdx_index *shard);
/** 1 IndexShards, 2 IndexReplicas, 3 IndexShardsIVF, 0 other kinds. */
VDX_API int vdx_index_is_shards(const vdx_index *index);
VDX_API int64_t vdx_index_shards_count(const vdx_index *index);
/** Sub-index i (borrowed), or NULL. */
VDX_API vdx_index *vdx_index_shards_at(const vdx_index *index, int64_t i);
/** Whether sub-index i is freed with the index; and its setter. */
VDX_API int vdx_index_shards_owns(const vdx_index *index, int64_t i);
VDX_API vdx_status vdx_index_shards_set_own(vdx_index *index, int64_t i,
                                            int own);
VDX_API int vdx_index_shards_successive_ids(const vdx_index *index);
VDX_API int vdx_index_shards_threaded(const vdx_index *index);
/** The quantizer of an IndexShardsIVF (borrowed), else NULL; its k-means
 *  parameters (FAISS: cp), else NULL. */
VDX_API vdx_index *vdx_index_shards_ivf_quantizer(const vdx_index *index);
VDX_API vdx_kmeans_params *vdx_index_shards_ivf_cp(vdx_index *index);
/** Recomputes d, metric, ntotal and is_trained from the sub-indexes. */
VDX_API vdx_status vdx_index_shards_sync(vdx_index *index);
/** Merges nshard sorted k-NN results (Dall, Iall: nshard x n x k, each row
 *  sorted best first, -1 labels last) into the k best per query (D, I:
 *  n x k): smallest distances (keep_max = 0, L2) or largest (keep_max = 1,
 *  inner product), ties to the lower label; missing slots get label -1 and
 *  +FLT_MAX (L2) or -FLT_MAX.  FAISS: merge_knn_results. */
VDX_API vdx_status vdx_merge_knn_results(int64_t n, int64_t k, int64_t nshard,
                                         const float *Dall,
                                         const vdx_idx_t *Iall, int keep_max,
                                         float *Dout, vdx_idx_t *Iout);
/** Writes a shards / replicas index (FAISS has no file format for them) as
 *  the directory `dir` (created if needed): one FAISS file per sub-index
 *  (shard-<i>.faissindex; a sub-index that is itself sharded becomes the
 *  sub-directory shard-<i>), the quantizer of an IndexShardsIVF
 *  (quantizer.faissindex), and vecdex-manifest.txt, a small text file
 *  naming them, written last through a rename. */
VDX_API vdx_status vdx_write_sharded(const vdx_index *index, const char *dir);
/** Reads what vdx_write_sharded wrote (dir, or the manifest's path); the
 *  sub-indexes are owned.  io_flags: 0. */
VDX_API vdx_status vdx_read_sharded(const char *dir, int io_flags,
                                    vdx_index **out);
/** The manifest's name inside a sharded directory. */
#define VDX_SHARDS_MANIFEST "vecdex-manifest.txt"

/* ------------------------------------------------------------------------- */
/* The store: a folder holding a SQLite database (rows: the caller's ids,    */
/* vectors, JSON metadata, texts; WAL journal, FTS5, JSON1) and a vecdex     */
/* index in FAISS's format, a checkpoint derived from the database.          */
/* Metadata and filters are JSON text.  See README.md, "Store".              */
/* Thread safety: any number of threads may search (search, keyword,        */
/* hybrid, get, count, stats) while one writes; writes are serialised.       */
/* One process at a time may open a store for writing (VDX_ERR_BUSY).        */
/* ------------------------------------------------------------------------- */
typedef struct vdx_store vdx_store; /* opaque */

/* Store metrics: the index metrics, plus cosine (inner product of vectors
 * normalised on the way in, queries included). */
#define VDX_STORE_METRIC_IP 0
#define VDX_STORE_METRIC_L2 1
#define VDX_STORE_METRIC_COSINE 2

/* The store format written by this vecdex; newer ones are refused. */
#define VDX_STORE_FORMAT_VERSION 1

/** One of the caller's ids: a string when text is not NULL (UTF-8), else
 *  the integer id.  1 and "1" are different ids. */
typedef struct vdx_store_key {
    const char *text;
    int64_t id;
} vdx_store_key;

typedef struct vdx_store_options {
    /* creation only */
    const char *index;   /* index_factory string; NULL = "HNSW32"         */
    int metric;          /* VDX_STORE_METRIC_*; default cosine              */
    const char *schema;  /* JSON object {"field": "int"|"float"|"text"|
                            "tags"}: the filterable metadata fields; NULL
                            = none                                         */
    int text;            /* 1 (default): keep texts, keyword search (FTS5) */
    int64_t train_size;  /* indexes that need training train once this many
                            vectors are in (0 = auto: max(1000, 40 nlist)),
                            a flat buffer serving until then               */
    /* creation and open */
    int read_only;        /* open: refuse writes (VDX_ERR_READ_ONLY)       */
    int synchronous;      /* SQLite synchronous: 0 off, 1 normal, 2 full
                             (default: an acknowledged write survives power
                             loss), 3 extra                                */
    int busy_timeout_ms;  /* wait this long for another writer process's
                             lock (0: fail at once with VDX_ERR_BUSY)      */
    int64_t checkpoint_rows; /* write the index file once this many vectors
                                were added since the last one (0 = auto:
                                max(10000, half the vectors)); close(),
                                compact() and training write it too       */
    int64_t exact_threshold; /* filtered searches whose filter matches at
                                most this many rows score them exactly
                                (0 = the cost model decides, -1 = never) */
    int64_t reserved[8];      /* zero */
} vdx_store_options;

/** Fills o with the defaults above. */
VDX_API void vdx_store_options_init(vdx_store_options *o);

/** Creates a store in folder `path` (created; it must not hold a store
 *  already) for vectors of dimension dim.  opts may be NULL.  On success
 *  *out is the open store (for writing), closed with vdx_store_close.
 *  @return VDX_ERR_INVALID_ARGUMENT for a bad factory string, schema or
 *  metric (the message says which), VDX_ERR_IO when the folder cannot be
 *  made or already holds a store. */
VDX_API vdx_status vdx_store_create(const char *path, int64_t dim,
                                    const vdx_store_options *opts,
                                    vdx_store **out);
/** Opens an existing store (opts may be NULL: read-write, defaults).
 *  Vectors added after the index file's checkpoint are added again; a
 *  missing index file is rebuilt from the database.
 *  @return VDX_ERR_IO (not a store), VDX_ERR_FORMAT (a damaged database or
 *  index file, or a newer format version: the message names the file and
 *  the remedy), VDX_ERR_BUSY (another process has it open for writing). */
VDX_API vdx_status vdx_store_open(const char *path,
                                  const vdx_store_options *opts,
                                  vdx_store **out);
/** Writes a last checkpoint (when writable) and frees the store (NULL
 *  accepted).  The store is freed even when the checkpoint fails; nothing
 *  acknowledged is lost then (the next open replays it). */
VDX_API vdx_status vdx_store_close(vdx_store *s);

/** Inserts or replaces n rows in one transaction: keys[i] (unique within
 *  the batch), vectors row i (n x dim, finite), metadata[i] (a JSON object
 *  or NULL; metadata itself may be NULL) and texts[i] (UTF-8 or NULL).  An
 *  existing key is replaced atomically.  When it returns VDX_OK the rows
 *  are in the database (durable as `synchronous` says); on error nothing
 *  changed. */
VDX_API vdx_status vdx_store_upsert(vdx_store *s, int64_t n,
                                    const vdx_store_key *keys,
                                    const float *vectors,
                                    const char *const *metadata,
                                    const char *const *texts);
/** Deletes the rows of the n keys (missing ones ignored) and/or the rows
 *  matching `where` (JSON filter, NULL = none), in one transaction.
 *  *ndeleted (may be NULL) receives the number of rows removed. */
VDX_API vdx_status vdx_store_delete(vdx_store *s, int64_t n,
                                    const vdx_store_key *keys,
                                    const char *where, int64_t *ndeleted);
/** Number of rows matching where (NULL: all rows). */
VDX_API vdx_status vdx_store_count(vdx_store *s, const char *where,
                                   int64_t *count);

/* Flags of what search results carry besides ids and scores. */
#define VDX_STORE_WITH_METADATA 1
#define VDX_STORE_WITH_TEXT 2

/** One result.  key.text and the strings point into the vdx_store_hits
 *  that holds them. */
typedef struct vdx_store_hit {
    vdx_store_key key;
    float score;          /* L2: squared distance (smaller is nearer);
                             ip / cosine: similarity; keyword: -bm25;
                             hybrid: the fused score (larger is better) */
    const char *metadata; /* JSON object, or NULL (not asked / none)     */
    const char *text;     /* or NULL                                     */
} vdx_store_hit;

/** Results of nq queries: query i has count[i] hits at hits[i * k ...]. */
typedef struct vdx_store_hits {
    int64_t nq, k;
    int64_t *count;
    vdx_store_hit *hits;
} vdx_store_hits;
VDX_API void vdx_store_hits_free(vdx_store_hits *h);

/** k nearest rows to each of the nq queries (nq x dim) among the rows
 *  matching where (NULL: all).  The filter runs inside the search: the
 *  matching rows become a selector for the index, or, when few rows match,
 *  those rows are scored exactly; so a query gets k hits whenever k rows
 *  match.  params (may be NULL) tunes the index (efSearch, nprobe...;
 *  sel is ignored).  *out is freed with vdx_store_hits_free. */
VDX_API vdx_status vdx_store_search(vdx_store *s, int64_t nq, const float *x,
                                    int64_t k, const char *where,
                                    const vdx_search_params *params,
                                    int flags, vdx_store_hits **out);
/** The k rows whose texts best match `text` (BM25 through FTS5; the words
 *  of text are searched for, any of them), among rows matching where. */
VDX_API vdx_status vdx_store_keyword_search(vdx_store *s, const char *text,
                                            int64_t k, const char *where,
                                            int flags, vdx_store_hits **out);

#define VDX_FUSION_RRF 0      /* sum of w / (rrf_k + rank), ranks from 1 */
#define VDX_FUSION_WEIGHTED 1 /* sum of w * min-max normalised scores   */
typedef struct vdx_store_fusion {
    int method;          /* VDX_FUSION_*                                   */
    double rrf_k;        /* 60 when 0                                      */
    double w_vector, w_text; /* weights; both 0 = (1, 1)                   */
    int64_t candidates;  /* per list; 0 = max(4k, 50)                      */
    int64_t reserved[4];
} vdx_store_fusion;

/** Hybrid search: the vector search of `x` (one query, dim floats) and the
 *  keyword search of `text`, each over the rows matching where, fused
 *  (fusion may be NULL: RRF, rrf_k 60, weights 1, 1). */
VDX_API vdx_status vdx_store_hybrid_search(vdx_store *s, const float *x,
                                           const char *text, int64_t k,
                                           const char *where,
                                           const vdx_store_fusion *fusion,
                                           const vdx_search_params *params,
                                           int flags, vdx_store_hits **out);

/** Rows of n keys: found[i] says whether keys[i] exists; its vector (as
 *  stored: normalised for cosine), metadata and text. */
typedef struct vdx_store_rows {
    int64_t n, d;
    int *found;
    float *vectors;          /* n x d (zeros where not found) */
    const char **metadata;   /* JSON or NULL                  */
    const char **texts;      /* or NULL                       */
} vdx_store_rows;
VDX_API vdx_status vdx_store_get(vdx_store *s, int64_t n,
                                 const vdx_store_key *keys,
                                 vdx_store_rows **out);
VDX_API void vdx_store_rows_free(vdx_store_rows *r);

/** Trains the index now (on every vector in the store), when it needs
 *  training and is not trained; VDX_OK when there is nothing to do. */
VDX_API vdx_status vdx_store_train(vdx_store *s);
/** Writes the index file now (the checkpoint). */
VDX_API vdx_status vdx_store_checkpoint(vdx_store *s);
/** Rebuilds the index from the live rows only (deleted and replaced rows'
 *  vectors are dropped from the database and the index), then writes it. */
VDX_API vdx_status vdx_store_compact(vdx_store *s);
/** Integrity check: SQLite's integrity_check of the database, then the
 *  store's own invariants (every row has its vector, FTS and tag rows match
 *  the rows, the index holds every vector).  VDX_ERR_FORMAT names the
 *  first problem. */
VDX_API vdx_status vdx_store_check(vdx_store *s);

typedef struct vdx_store_stats {
    int64_t rows;           /* live rows                                   */
    int64_t vectors;        /* vectors in the index (live + dead)          */
    int64_t dead;           /* deleted / replaced, until compact()         */
    int64_t checkpointed;   /* vectors in the index file                   */
    int trained;            /* 0 while a flat buffer serves                */
    int64_t bytes_disk;     /* database + WAL + index file                 */
    int64_t bytes_memory;   /* index (estimated from its file) + SQLite   */
    int64_t searches;       /* searches timed (all kinds)                  */
    double p50_ms, p95_ms, p99_ms; /* latency of the last <= 1024 searches */
    int64_t reserved[8];
} vdx_store_stats;
VDX_API vdx_status vdx_store_stats_get(vdx_store *s, vdx_store_stats *out);

/** A JSON object describing the store: format_version, dim, metric,
 *  index (factory string), index_type, schema, text, path, read_only.
 *  Borrowed: valid until vdx_store_close. */
VDX_API const char *vdx_store_info(const vdx_store *s);

/* ------------------------------------------------------------------------- */
/* Two-level codes (FAISS: Index2Layer, IndexHNSW2Level)                     */
/* ------------------------------------------------------------------------- */
/** Index2Layer: each vector stored as its coarse list number (the nearest
 *  of the quantizer's nlist centroids, in code_size_1 bytes) followed by a
 *  PQ code (M sub-quantizers of nbits bits) of the residual x - centroid;
 *  codes are kept in insertion order (an IVFPQ without inverted lists).
 *  d is the quantizer's.  train(): k-means of nlist centroids into the
 *  quantizer (10 iterations; skipped when it already holds nlist
 *  centroids), then the PQ on the residuals.  Search is exhaustive over the
 *  decoded vectors (FAISS's Index2Layer has none).  Takes ownership of
 *  `quantizer` on success only.  Free with vdx_index_free. */
VDX_API vdx_status vdx_index_2layer_new(vdx_index *quantizer, int64_t nlist,
                                        int64_t M, int nbits,
                                        vdx_metric metric, vdx_index **out);
/** 1 for an Index2Layer. */
VDX_API int vdx_index_is_2layer(const vdx_index *index);
/** The coarse quantizer (borrowed), or NULL for other kinds. */
VDX_API vdx_index *vdx_index_2layer_quantizer(const vdx_index *index);
/** The product quantizer of the residuals (borrowed), or NULL. */
VDX_API vdx_pq *vdx_index_2layer_pq(const vdx_index *index);
/** nlist, or 0 for other kinds. */
VDX_API int64_t vdx_index_2layer_nlist(const vdx_index *index);
/** Bytes per code: part 1 the list number (code_size_1), part 2 the PQ
 *  code (code_size_2), anything else the whole code; 0 for other kinds. */
VDX_API size_t vdx_index_2layer_code_size(const vdx_index *index, int part);
/** IndexHNSW2Level: an HNSW graph (M links per node, as the HNSW kinds
 *  above) over an Index2Layer(quantizer, nlist, m_pq, 8 bits, L2) storage,
 *  searched by the plain HNSW search with distances to the decoded
 *  vectors (FAISS's default path).  Takes ownership of `quantizer` on
 *  success only.  The HNSW accessors apply; vdx_index_hnsw_storage gives
 *  the Index2Layer. */
VDX_API vdx_status vdx_index_hnsw_2level_new(vdx_index *quantizer,
                                             int64_t nlist, int64_t m_pq,
                                             int M, vdx_index **out);

/* ------------------------------------------------------------------------- */
/* Additive quantizers (FAISS: ResidualQuantizer, LocalSearchQuantizer,      */
/* ProductResidualQuantizer, ProductLocalSearchQuantizer) and their indexes  */
/* ------------------------------------------------------------------------- */
/* A vector is approximated by the sum of M codebook entries, one per
 * codebook (2^nbits entries each); codes pack the M indices (nbits bits
 * each) and, depending on the search type, an encoding of the squared norm
 * of the reconstruction, least significant bit first, as FAISS packs them. */
typedef struct vdx_aq vdx_aq; /* opaque */

/* Kinds */
#define VDX_AQ_RQ 0   /* residual quantizer, beam-search encoding          */
#define VDX_AQ_LSQ 1  /* local search quantizer (LSQ++), ICM encoding      */
#define VDX_AQ_PRQ 2  /* product of nsplits residual quantizers            */
#define VDX_AQ_PLSQ 3 /* product of nsplits local search quantizers        */

/* Search types: FAISS's AdditiveQuantizer::Search_type_t numbers (stored in
 * files).  DECOMPRESS decodes every code; the others score a code with a
 * table of <q, entry> and a norm: none (LUT_NONORM, for inner product),
 * computed from codebook products (NORM_FROM_LUT), or stored in the code:
 * float32, 8 / 4-bit uniform, 8 / 4-bit non-uniform (1-D k-means), or the
 * 2 x 4-bit additive quantizers of the fast-scan kinds. */
#define VDX_AQ_ST_DECOMPRESS 0
#define VDX_AQ_ST_LUT_NONORM 1
#define VDX_AQ_ST_NORM_FROM_LUT 2
#define VDX_AQ_ST_NORM_FLOAT 3
#define VDX_AQ_ST_NORM_QINT8 4
#define VDX_AQ_ST_NORM_QINT4 5
#define VDX_AQ_ST_NORM_CQINT8 6
#define VDX_AQ_ST_NORM_CQINT4 7
#define VDX_AQ_ST_NORM_LSQ2X4 8
#define VDX_AQ_ST_NORM_RQ2X4 9

/* Residual quantizer train_type bits (FAISS's values) */
#define VDX_RQ_TRAIN_DEFAULT 0
#define VDX_RQ_TRAIN_PROGRESSIVE_DIM 1 /* k-means in growing PCA dims (default) */
#define VDX_RQ_TRAIN_REFINE_CODEBOOK 2 /* least-squares codebook refinement   */
#define VDX_RQ_TRAIN_TOP_BEAM 1024     /* train each step on the best beam only */
#define VDX_RQ_SKIP_CODEBOOK_TABLES 2048 /* no codebook tables after training */

/** ResidualQuantizer for d-vectors with M steps of nbits[m] bits each
 *  (1..16).  Defaults as FAISS: max_beam_size 5, progressive-dim training,
 *  k-means of 10 iterations per step.  Free with vdx_aq_free. */
VDX_API vdx_status vdx_rq_new(int64_t d, int64_t M, const int *nbits,
                              int search_type, vdx_aq **out);
/** LocalSearchQuantizer: M codebooks of 2^nbits entries (nbits 1..16).
 *  Defaults as FAISS: train_iters 25, encode_ils_iters 16, train_ils_iters
 *  8, icm_iters 4, p 0.5, lambd 0.01, nperts 4, random_seed 0x12345. */
VDX_API vdx_status vdx_lsq_new(int64_t d, int64_t M, int nbits,
                               int search_type, vdx_aq **out);
/** ProductResidualQuantizer (kind VDX_AQ_PRQ) or ProductLocalSearchQuantizer
 *  (VDX_AQ_PLSQ): nsplits (dividing d) sub-quantizers of Msub codebooks of
 *  nbits bits over the consecutive d / nsplits-component sub-vectors. */
VDX_API vdx_status vdx_product_aq_new(int kind, int64_t d, int64_t nsplits,
                                      int64_t Msub, int nbits,
                                      int search_type, vdx_aq **out);
/** Frees a quantizer (NULL accepted; never one borrowed from an index). */
VDX_API void vdx_aq_free(vdx_aq *aq);
/** A deep copy, freed with vdx_aq_free. */
VDX_API vdx_status vdx_aq_clone(const vdx_aq *aq, vdx_aq **out);

/** Trains on n x d vectors (n >= the largest codebook).  Threaded;
 *  deterministic for a given thread count setting and input. */
VDX_API vdx_status vdx_aq_train(vdx_aq *aq, int64_t n, const float *x);
/** Encodes n vectors into n x code_size bytes; VDX_ERR_NOT_TRAINED before
 *  training.  Thread-safe. */
VDX_API vdx_status vdx_aq_compute_codes(const vdx_aq *aq, int64_t n,
                                        const float *x, uint8_t *codes);
/** Decodes n codes into n x d floats. */
VDX_API vdx_status vdx_aq_decode(const vdx_aq *aq, int64_t n,
                                 const uint8_t *codes, float *x);
/** lut (n x total_codebook_size) = alpha * <x_i, codebook entry j>. */
VDX_API vdx_status vdx_aq_compute_LUT(const vdx_aq *aq, int64_t n,
                                      const float *x, float alpha, float *lut);
/** Packs n codes given as M int32 indices (row i at codes + i * ld_codes,
 *  ld_codes >= M; 0 means M) into n x code_size bytes; the norm field, when
 *  the search type has one, is that of norms[i] or, with norms NULL, of the
 *  reconstruction. */
VDX_API vdx_status vdx_aq_pack_codes(const vdx_aq *aq, int64_t n,
                                     const int32_t *codes, int64_t ld_codes,
                                     const float *norms, uint8_t *packed);
/** The M indices of n packed codes into codes (n x M int32). */
VDX_API vdx_status vdx_aq_unpack_codes(const vdx_aq *aq, int64_t n,
                                       const uint8_t *packed, int32_t *codes);
/** Decodes n codes given as M int32 indices (stride ld_codes, 0 = M). */
VDX_API vdx_status vdx_aq_decode_unpacked(const vdx_aq *aq, int64_t n,
                                          const int32_t *codes,
                                          int64_t ld_codes, float *x);

/* Getters (0 / -1 for NULL). */
VDX_API int vdx_aq_kind(const vdx_aq *aq);
VDX_API int64_t vdx_aq_d(const vdx_aq *aq);
VDX_API int64_t vdx_aq_M(const vdx_aq *aq);
/** nbits of codebook m (0 <= m < M), -1 out of range. */
VDX_API int vdx_aq_nbits(const vdx_aq *aq, int64_t m);
VDX_API size_t vdx_aq_code_size(const vdx_aq *aq);
VDX_API int64_t vdx_aq_tot_bits(const vdx_aq *aq);
VDX_API int64_t vdx_aq_norm_bits(const vdx_aq *aq);
VDX_API int64_t vdx_aq_total_codebook_size(const vdx_aq *aq);
/** First entry of codebook m (0 <= m <= M; m = M gives the total). */
VDX_API int64_t vdx_aq_codebook_offset(const vdx_aq *aq, int64_t m);
VDX_API int vdx_aq_is_trained(const vdx_aq *aq);
/** Marks the quantizer trained or not (FAISS code sets is_trained after
 *  assigning codebooks); trained needs codebooks. */
VDX_API vdx_status vdx_aq_set_trained(vdx_aq *aq, int trained);
VDX_API int vdx_aq_search_type(const vdx_aq *aq);
/** Changes the search type (the code size follows); refused when the
 *  quantizer's index holds codes whose size would change. */
VDX_API vdx_status vdx_aq_set_search_type(vdx_aq *aq, int search_type);
/** The codebooks (total_codebook_size x entry width floats, borrowed; the
 *  entry width is d, or d / nsplits for the product kinds), NULL before
 *  training; their count in *n. */
VDX_API const float *vdx_aq_codebooks(const vdx_aq *aq, size_t *n);
/** Replaces the codebooks (n = total_codebook_size x entry width finite
 *  floats); the derived tables are recomputed.  Does not change
 *  is_trained. */
VDX_API vdx_status vdx_aq_set_codebooks(vdx_aq *aq, const float *cb,
                                        size_t n);
/** The product kinds' split count (1 for RQ / LSQ) and sub-quantizer s
 *  (borrowed), NULL for the others or out of range. */
VDX_API int64_t vdx_aq_nsplits(const vdx_aq *aq);
VDX_API vdx_aq *vdx_aq_subquantizer(const vdx_aq *aq, int64_t s);

/* Training and encoding settings; a kind ignores the fields it does not
 * use.  Read with vdx_aq_get_options, change, write back. */
typedef struct vdx_aq_options {
    int verbose;                /* stored for FAISS; vecdex never prints */
    float norm_min, norm_max;   /* the uniform norm quantizers' range     */
    uint64_t max_mem_distances; /* RQ: beam memory bound (5 GiB)          */
    int train_type;             /* RQ: VDX_RQ_TRAIN_* bits (1)            */
    int max_beam_size;          /* RQ: beam width (5)                     */
    int use_beam_LUT;           /* RQ: encode with codebook tables (0)    */
    int niter_codebook_refine;  /* RQ: refinement iterations (5)          */
    int progressive_dim_steps;  /* RQ: progressive-dim stages (10)        */
    int apply_pca;              /* RQ: PCA before progressive dims (1)    */
    int64_t train_iters;        /* LSQ (25)                               */
    int64_t encode_ils_iters;   /* LSQ (16)                               */
    int64_t train_ils_iters;    /* LSQ (8)                                */
    int64_t icm_iters;          /* LSQ (4)                                */
    int64_t chunk_size;         /* LSQ (10000): stored only               */
    int64_t nperts;             /* LSQ: codes perturbed per ILS step (4)  */
    float p;                    /* LSQ: annealing temperature power (0.5) */
    float lambd;                /* LSQ: codebook regularisation (0.01)    */
    int random_seed;            /* LSQ (0x12345)                          */
    int update_codebooks_with_double; /* LSQ (1)                          */
    int64_t reserved[8];
} vdx_aq_options;

VDX_API vdx_status vdx_aq_get_options(const vdx_aq *aq, vdx_aq_options *o);
VDX_API vdx_status vdx_aq_set_options(vdx_aq *aq, const vdx_aq_options *o);
/** The k-means parameters of each RQ step (FAISS: rq.cp; niter 10 by
 *  default).  Borrowed, lives as long as aq. */
VDX_API vdx_kmeans_params *vdx_aq_cp(vdx_aq *aq);

/* Derived tables: |entry|^2 (total_codebook_size floats) and the products
 * of each codebook's entries with the earlier codebooks' (FAISS's
 * codebook_cross_products layout), used by ST_NORM_FROM_LUT and
 * use_beam_LUT.  Computed after training unless
 * VDX_RQ_SKIP_CODEBOOK_TABLES. */
VDX_API vdx_status vdx_aq_compute_codebook_tables(vdx_aq *aq);
/** Borrowed tables (NULL with *n = 0 when absent). */
VDX_API const float *vdx_aq_centroid_norms(const vdx_aq *aq, size_t *n);
VDX_API const float *vdx_aq_codebook_cross_products(const vdx_aq *aq,
                                                    size_t *n);
/** norms[c] = |reconstruction of c|^2 for every c < 2^tot_bits (the list
 *  numbers of a coarse quantizer; tot_bits <= 30). */
VDX_API vdx_status vdx_aq_compute_centroid_norms(const vdx_aq *aq,
                                                 float *norms);
/** Exact k nearest of the 2^tot_bits reconstructions (tot_bits <= 30) for
 *  n queries: L2 (needs the norms above) or inner product (norms NULL). */
VDX_API vdx_status vdx_aq_knn_centroids(const vdx_aq *aq, vdx_metric metric,
                                        int64_t n, const float *x, int64_t k,
                                        const float *norms, float *distances,
                                        vdx_idx_t *labels);

/** One beam-search step of residual quantization: for each of the n
 *  vectors, its beam_size residuals (n x beam_size x d) and their codes (n
 *  x beam_size x m int32) are extended by the K entries of cent (K x d);
 *  the new_beam_size (<= beam_size * K) best become new_codes (n x
 *  new_beam_size x (m + 1)), new_residuals (n x new_beam_size x d) and
 *  new_distances (squared norms of the residuals, ascending).
 *  assign_index (may be NULL) holding the K entries (or empty: they are
 *  added) searches the residuals instead of the exhaustive distances. */
VDX_API vdx_status vdx_rq_beam_search_encode_step(
    int64_t d, int64_t K, const float *cent, int64_t n, int64_t beam_size,
    const float *residuals, int64_t m, const int32_t *codes,
    int64_t new_beam_size, int32_t *new_codes, float *new_residuals,
    float *new_distances, vdx_index *assign_index);
/** The same step from tables (FAISS's beam_search_encode_step_tab): the
 *  candidate distance of entry k after beam entry b is distances[b] +
 *  cent_norms[k] - 2 query_cp[k] + 2 sum_l cross[(codebook_offsets[l] +
 *  code_l) * ldc + k] over the m earlier codes l. */
VDX_API vdx_status vdx_rq_beam_search_encode_step_tab(
    int64_t K, int64_t n, int64_t beam_size, const float *cross, int64_t ldc,
    const uint64_t *codebook_offsets, const float *query_cp, int64_t ldqc,
    const float *cent_norms, int64_t m, const int32_t *codes,
    const float *distances, int64_t new_beam_size, int32_t *new_codes,
    float *new_distances);
/** The out_beam best codes of each of n vectors (n x out_beam x M int32),
 *  their distances (n x out_beam, ascending; may be NULL) and residuals (n
 *  x out_beam x d; may be NULL). */
VDX_API vdx_status vdx_rq_refine_beam(const vdx_aq *rq, int64_t n,
                                      const float *x, int64_t out_beam,
                                      int32_t *codes, float *residuals,
                                      float *distances);
/** Least-squares re-estimation of all codebooks for the codes of x (n >=
 *  total_codebook_size): FAISS's retrain_AQ_codebook.  *err (may be NULL)
 *  receives the quantization error of the old codes with the new
 *  codebooks. */
VDX_API vdx_status vdx_rq_retrain_codebook(vdx_aq *rq, int64_t n,
                                           const float *x, float *err);
/** Makes rq (M steps) a copy of steps skip_M .. skip_M + M - 1 of other
 *  (its settings and codebooks), keeping rq's M and search type. */
VDX_API vdx_status vdx_rq_initialize_from(vdx_aq *rq, const vdx_aq *other,
                                          int64_t skip_M);

/** LSQ internals (FAISS's names, layouts of its tests): binaries (M x M x
 *  K x K) = 2 <c_{m1,k1}, c_{m2,k2}>; unaries (M x n x K) = |c_{m,k}|^2 -
 *  2 <x_i, c_{m,k}>; one ICM pass per n_iters over the M codes of each of
 *  n vectors (codes n x M, updated in place); the least-squares codebooks
 *  of codes (n x M) for x (with the lambd regularisation). */
VDX_API vdx_status vdx_lsq_compute_binary_terms(const vdx_aq *lsq,
                                                float *binaries);
VDX_API vdx_status vdx_lsq_compute_unary_terms(const vdx_aq *lsq, int64_t n,
                                               const float *x,
                                               float *unaries);
VDX_API vdx_status vdx_lsq_icm_encode_step(const vdx_aq *lsq, int32_t *codes,
                                           const float *unaries,
                                           const float *binaries, int64_t n,
                                           int64_t n_iters);
VDX_API vdx_status vdx_lsq_update_codebooks(vdx_aq *lsq, const float *x,
                                            const int32_t *codes, int64_t n);

/** Exhaustive index over additive-quantizer codes (FAISS:
 *  IndexResidualQuantizer, IndexLocalSearchQuantizer,
 *  IndexProductResidualQuantizer, IndexProductLocalSearchQuantizer by the
 *  quantizer's kind), searched as the search type says.  L2 or inner
 *  product.  Takes ownership of aq on success only. */
VDX_API vdx_status vdx_index_aq_new(vdx_aq *aq, vdx_metric metric,
                                    vdx_index **out);
/** The 4-bit fast-scan form (FAISS: IndexResidualQuantizerFastScan,
 *  IndexLocalSearchQuantizerFastScan and the product kinds by the
 *  quantizer's kind): every codebook of aq must have nbits = 4, its search
 *  type ST_norm_rq2x4 or ST_norm_lsq2x4 for L2, ST_LUT_nonorm for inner
 *  product; codes are packed in blocks of bbs (a multiple of 32, FAISS's
 *  default 32).  Results are those of the float look-up table on the
 *  stored codes.  Takes ownership of aq on success only. */
VDX_API vdx_status vdx_index_aq_fastscan_new(vdx_aq *aq, vdx_metric metric,
                                             int64_t bbs, vdx_index **out);
/** The block size of an additive fast-scan index, 0 for other kinds. */
VDX_API int64_t vdx_index_aq_fastscan_bbs(const vdx_index *index);
/** IVF over additive-quantizer codes, of the residuals to the list
 *  centroids by default (FAISS: IndexIVFResidualQuantizer and the LSQ /
 *  product kinds).  d is aq's.  Takes ownership of quantizer and aq on
 *  success only; the IVF accessors apply. */
VDX_API vdx_status vdx_index_ivf_aq_new(vdx_index *quantizer, int64_t nlist,
                                        vdx_aq *aq, vdx_metric metric,
                                        vdx_index **out);
/** IVF over 4-bit additive codes scanned with the fast-scan kernels
 *  (FAISS: IndexIVFResidualQuantizerFastScan, IndexIVFLocalSearchQuantizer-
 *  FastScan and the product kinds, by aq's kind).  aq must fit fast scan as
 *  for vdx_index_aq_fastscan_new; codes are of the residuals to the list
 *  centroids by default (by_residual, see vdx_index_ivf_aq_set_by_residual)
 *  and L2 distances are reported without |q|^2, as FAISS's.  Lists are
 *  packed in blocks of bbs (a multiple of 32).  Takes ownership of
 *  quantizer and aq on success only; the IVF accessors apply. */
VDX_API vdx_status vdx_index_ivf_aq_fastscan_new(vdx_index *quantizer,
                                                 int64_t nlist, vdx_aq *aq,
                                                 vdx_metric metric, int64_t bbs,
                                                 vdx_index **out);
/** FAISS's converting constructor: the fast-scan form of an IVF
 *  additive-quantizer index (4-bit codebooks, a fitting search type; an L2
 *  index must have by_residual off), with a copy of its quantizer, the same
 *  codes and ids.  quantizer: a copy of orig's coarse quantizer, owned by
 *  the new index on success only. */
VDX_API vdx_status vdx_index_ivf_aq_fastscan_from_ivf_aq(const vdx_index *orig,
                                                         vdx_index *quantizer,
                                                         int64_t bbs,
                                                         vdx_index **out);
/** FAISS's stored fields of the additive fast-scan kinds (flat and IVF):
 *  "implem", "qbs", "qbs2" (IVF), "norm_scale", "rescale_norm",
 *  "max_train_points".  vecdex's search re-scores with the float table and
 *  does not depend on them; they are kept and written to files (train
 *  estimates norm_scale as FAISS does). */
VDX_API vdx_status vdx_index_aq_fastscan_param(const vdx_index *index,
                                               const char *name,
                                               int64_t *value);
VDX_API vdx_status vdx_index_aq_fastscan_set_param(vdx_index *index,
                                                   const char *name,
                                                   int64_t value);
/** A coarse quantizer whose 2^tot_bits centroids are the reconstructions
 *  of an RQ (FAISS: ResidualCoarseQuantizer, searched by beam search of
 *  k * beam_factor, exhaustively when beam_factor < 0) or an LSQ
 *  (LocalSearchCoarseQuantizer, exhaustive).  train() trains the quantizer
 *  and sets ntotal; add and reset are refused.  tot_bits <= 30.  Takes
 *  ownership of aq on success only. */
VDX_API vdx_status vdx_index_additive_coarse_new(vdx_aq *aq,
                                                 vdx_metric metric,
                                                 vdx_index **out);
/** The additive quantizer of any of the index kinds above (and of the
 *  fast-scan ones), borrowed; NULL for other kinds. */
VDX_API vdx_aq *vdx_index_aq(const vdx_index *index);
/** ResidualCoarseQuantizer's beam factor (4 by default; 0 for others). */
VDX_API float vdx_index_rcq_beam_factor(const vdx_index *index);
/** Sets it (>= 1, or < 0 for exhaustive search, which needs the centroid
 *  norms for L2: computed here). */
VDX_API vdx_status vdx_index_rcq_set_beam_factor(vdx_index *index,
                                                 float beam_factor);
/** by_residual of an IVF additive-quantizer index (1 by default). */
VDX_API int vdx_index_ivf_aq_by_residual(const vdx_index *index);
/** Sets by_residual; refused once the index holds vectors. */
VDX_API vdx_status vdx_index_ivf_aq_set_by_residual(vdx_index *index, int on);
/** Codes of the flat additive-quantizer kinds as stored (FAISS: sa_encode /
 *  sa_decode); code_size bytes each. */
VDX_API vdx_status vdx_index_aq_sa_encode(const vdx_index *index, int64_t n,
                                          const float *x, uint8_t *codes);
VDX_API vdx_status vdx_index_aq_sa_decode(const vdx_index *index, int64_t n,
                                          const uint8_t *codes, float *x);
/** The stored codes of a flat additive-quantizer index (ntotal x
 *  code_size, borrowed, valid until the next mutating call). */
VDX_API const uint8_t *vdx_index_aq_codes(const vdx_index *index);

/* ------------------------------------------------------------------------- */
/* Binary codes: Hamming distances (src/index/binary).                        */
/* A code is code_size bytes (d = 8 * code_size bits); the distance of two    */
/* codes is the number of bits in which they differ.  The kernel follows the  */
/* SIMD level in use (scalar; POPCNT with avx2; VPOPCNTDQ with avx512 where   */
/* the CPU has it).  All are thread-safe and allocate nothing but what they   */
/* return.                                                                    */
/* ------------------------------------------------------------------------- */

/** out[i * nb + j] = Hamming distance of query code i and database code j.
 *  @return VDX_ERR_INVALID_ARGUMENT for code_size 0 or > 2^20, negative
 *  counts, sizes that overflow or NULL pointers. */
VDX_API vdx_status vdx_hamming_distances(const uint8_t *xq, int64_t nq,
                                         const uint8_t *xb, int64_t nb,
                                         size_t code_size, int32_t *out);
/** Exact k nearest database codes of each query, ascending by (distance,
 *  label).  labels are ids[j] for code j, or the positions 0..nb-1 when
 *  ids is NULL.  The selection is FAISS's heap (a code enters only when
 *  strictly closer than the current k-th), so ties at the k-th distance
 *  keep the codes met first, as FAISS does.  distances and labels are
 *  nq x k, caller-owned; rows with fewer than k codes are padded with
 *  INT32_MAX / -1.
 *  @return VDX_ERR_INVALID_ARGUMENT as vdx_hamming_distances, or for k
 *  outside [1, 2^30]. */
VDX_API vdx_status vdx_hamming_knn(const uint8_t *xq, int64_t nq,
                                   const uint8_t *xb, int64_t nb,
                                   size_t code_size, const int64_t *ids,
                                   int64_t k, int32_t *distances,
                                   int64_t *labels);
/** vdx_hamming_knn over inverted lists: query i scans the lists
 *  assign[i * nprobe + p] (p < nprobe, in that order; negative entries are
 *  skipped), list l holding list_sizes[l] codes at list_codes[l] with ids
 *  list_ids[l] (borrowed).  Same selection rule, hence FAISS's
 *  IndexBinaryIVF results, ties included.
 *  @return VDX_ERR_INVALID_ARGUMENT for a list number >= nlist, negative
 *  sizes, NULL pointers, or as vdx_hamming_knn. */
VDX_API vdx_status vdx_hamming_knn_lists(const uint8_t *xq, int64_t nq,
                                         size_t code_size, int64_t nlist,
                                         const uint8_t *const *list_codes,
                                         const int64_t *const *list_ids,
                                         const int64_t *list_sizes,
                                         const int64_t *assign, int64_t nprobe,
                                         int64_t k, int32_t *distances,
                                         int64_t *labels);
/** The database codes at distance < radius (strictly, as FAISS) of each
 *  query, in increasing position; *out is allocated by the library (free
 *  it with vdx_range_result_free), distances are the integer distances as
 *  floats.  @return as vdx_hamming_distances, VDX_ERR_OUT_OF_MEMORY. */
VDX_API vdx_status vdx_hamming_range_search(const uint8_t *xq, int64_t nq,
                                            const uint8_t *xb, int64_t nb,
                                            size_t code_size, int32_t radius,
                                            vdx_range_result **out);

/* ------------------------------------------------------------------------- */
/* Graph indexes built from a k-NN graph (FAISS's IndexNNDescentFlat and      */
/* IndexNSGFlat / IndexNSGPQ / IndexNSGSQ).  Ids are positions; the graph is  */
/* built once, by the first add (a second add of an NNDescent index rebuilds  */
/* it over every vector; an NSG index refuses it).  Searches are safe to run  */
/* concurrently; setters and adds are not.                                    */
/* ------------------------------------------------------------------------- */
/** NN-descent's parameters (FAISS's NNDescent fields). */
typedef struct vdx_nndescent_params {
    int K;           /* neighbours per node (fixed at construction)        */
    int S;           /* new candidates sampled per node and iteration (10) */
    int R;           /* reverse links kept per node, 0 = none (100)        */
    int L;           /* candidate pool per node during the build (K + 50)  */
    int iter;        /* iterations (10)                                    */
    int search_L;    /* search pool (0: k)                                 */
    int random_seed; /* seed of the build's and search's samples (2021)    */
    int has_built;   /* read only                                          */
} vdx_nndescent_params;

/** A new IndexNNDescentFlat of dimension d, K neighbours per node, metric
 *  L2 or inner product.  @return VDX_OK and *out (free with
 *  vdx_index_free).  Adding needs more than 100 vectors in all. */
VDX_API vdx_status vdx_index_nndescent_flat_new(int64_t d, int K,
                                                vdx_metric metric,
                                                vdx_index **out);
VDX_API int vdx_index_is_nndescent(const vdx_index *index);
/** The IndexFlat holding the vectors (borrowed), or NULL. */
VDX_API vdx_index *vdx_index_nndescent_storage(const vdx_index *index);
VDX_API vdx_status vdx_index_nndescent_get(const vdx_index *index,
                                           vdx_nndescent_params *p);
/** Sets every field but K (which must equal the index's) and has_built;
 *  they apply to the next build / search. */
VDX_API vdx_status vdx_index_nndescent_set(vdx_index *index,
                                           const vdx_nndescent_params *p);
/** The k-NN graph (ntotal x K node numbers, -1 where a node got fewer):
 *  *len = its entries; copied to out when out is not NULL (cap entries). */
VDX_API vdx_status vdx_index_nndescent_graph(const vdx_index *index,
                                             int32_t *out, int64_t cap,
                                             int64_t *len);

/** NSG's parameters (FAISS's IndexNSG and NSG fields). */
typedef struct vdx_nsg_params {
    int R;              /* out-degree bound (fixed at construction)        */
    int L;              /* search pool while linking (R + 32)              */
    int C;              /* candidates considered per node (R + 100)        */
    int search_L;       /* search pool (16; at least k is used)            */
    int GK;             /* k of the k-NN graph built by add (64)           */
    int build_type;     /* 0: exact k-NN graph, 1: NN-descent (Flat: 1)    */
    int nndescent_S, nndescent_R, nndescent_L, nndescent_iter;
    int enterpoint;     /* read only: the navigating node (-1 unbuilt)     */
    int is_built;       /* read only                                       */
} vdx_nsg_params;

/** New NSG indexes over an IndexFlat / IndexPQ (pq_m sub-quantizers of
 *  nbits) / IndexScalarQuantizer (qtype) storage, out-degree R.  PQ and SQ
 *  need training.  @return VDX_OK and *out (free with vdx_index_free). */
VDX_API vdx_status vdx_index_nsg_flat_new(int64_t d, int R, vdx_metric metric,
                                          vdx_index **out);
VDX_API vdx_status vdx_index_nsg_pq_new(int64_t d, int64_t pq_m, int R,
                                        int nbits, vdx_metric metric,
                                        vdx_index **out);
VDX_API vdx_status vdx_index_nsg_sq_new(int64_t d, int qtype, int R,
                                        vdx_metric metric, vdx_index **out);
VDX_API int vdx_index_is_nsg(const vdx_index *index);
/** The storage index (borrowed), or NULL. */
VDX_API vdx_index *vdx_index_nsg_storage(const vdx_index *index);
VDX_API vdx_status vdx_index_nsg_get(const vdx_index *index, vdx_nsg_params *p);
/** Sets every field but R, enterpoint and is_built (R must equal the
 *  index's). */
VDX_API vdx_status vdx_index_nsg_set(vdx_index *index, const vdx_nsg_params *p);
/** FAISS's IndexNSG::build: adds the n vectors x to the empty index and
 *  builds the graph from the caller's k-NN graph knn (n x gk positions;
 *  entries outside [0, n) or equal to their row are skipped, and refused
 *  when they are n / 10 or more).  On error the index stays empty. */
VDX_API vdx_status vdx_index_nsg_build(vdx_index *index, int64_t n,
                                       const float *x, const int64_t *knn,
                                       int gk);
/** Node i's links (at most R) into out; *count set. */
VDX_API vdx_status vdx_index_nsg_neighbors(const vdx_index *index, int64_t i,
                                           int64_t *out, int *count);
/** FAISS's NSG::dfs: marks in visited (ntotal bytes) the nodes reached from
 *  root by a depth-first walk; *count = cnt + the nodes newly marked. */
VDX_API vdx_status vdx_index_nsg_dfs(const vdx_index *index, uint8_t *visited,
                                     int64_t nvisited, int64_t root,
                                     int64_t cnt, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif /* VECDEX_H */
