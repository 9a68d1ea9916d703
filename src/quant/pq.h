/*
 * pq.h — the product quantizer (Jégou, Douze, Schmid, "Product quantization
 * for nearest neighbor search", TPAMI 2011), laid out as FAISS's
 * ProductQuantizer so that its centroids and codes are interchangeable:
 *
 *   - a d-vector is cut into M sub-vectors of dsub = d / M components;
 *   - sub-quantizer m has ksub = 2^nbits centroids, stored at
 *     centroids[(m * ksub + j) * dsub];
 *   - a code is M indices of nbits bits packed little-endian, least
 *     significant bit first, into code_size = ceil(M * nbits / 8) bytes
 *     (FAISS's PQEncoderGeneric; for nbits = 8 one byte per index).
 *
 * Search uses asymmetric distance computation (ADC): a table of M x ksub
 * partial distances between the query's sub-vectors and the centroids, then
 * one table lookup per sub-quantizer and code.
 */
#ifndef VDX_PQ_H
#define VDX_PQ_H

#include "common/common.h"

#define VDX_PQ_NBITS_MIN 1
#define VDX_PQ_NBITS_MAX 16

struct vdx_pq {
    int64_t d, M, dsub, ksub;
    int nbits;
    size_t code_size;
    float *centroids;     /* M x ksub x dsub, NULL until trained or set */
    vdx_kmeans_params cp; /* per-subspace training (FAISS: 25 iterations) */
    vdx_index *owner;     /* the IndexPQ / IndexIVFPQ holding it, or NULL */
    /* called after the centroids are replaced, so that the owner can
     * rebuild what it derives from them (IVFPQ's precomputed tables) */
    vdx_status (*centroids_changed)(vdx_index *owner);
};

/* Fills pq for (d, M, nbits) with no centroids; checks the arguments. */
VDX_INTERNAL vdx_status vdx_pq_setup(vdx_pq *pq, int64_t d, int64_t M,
                                     int nbits);
/* Frees the centroids (not pq itself). */
VDX_INTERNAL void vdx_pq_clear(vdx_pq *pq);
/* Allocates the centroid table (uninitialised) if missing. */
VDX_INTERNAL vdx_status vdx_pq_alloc_centroids(vdx_pq *pq);

VDX_INTERNAL vdx_status vdx_pq_train_internal(vdx_pq *pq, int64_t n,
                                              const float *x);
/* Encodes / decodes n vectors (threaded); centroids must be set. */
VDX_INTERNAL void vdx_pq_encode(const vdx_pq *pq, int64_t n, const float *x,
                                uint8_t *codes);
VDX_INTERNAL void vdx_pq_decode_n(const vdx_pq *pq, int64_t n,
                                  const uint8_t *codes, float *x);

/* Bit-packed access to index m of a code. */
static inline uint32_t vdx_pq_get(const uint8_t *code, int64_t m, int nbits) {
    uint64_t bit = (uint64_t)m * (uint64_t)nbits;
    const uint8_t *p = code + bit / 8;
    unsigned sh = (unsigned)(bit % 8);
    uint32_t v = 0;
    int need = nbits + (int)sh; /* at most 23 bits: 3 bytes */
    for (int b = 0; b * 8 < need; b++) v |= (uint32_t)p[b] << (8 * b);
    return (v >> sh) & ((1u << nbits) - 1u);
}
static inline void vdx_pq_put(uint8_t *code, int64_t m, int nbits,
                              uint32_t v) {
    uint64_t bit = (uint64_t)m * (uint64_t)nbits;
    uint8_t *p = code + bit / 8;
    unsigned sh = (unsigned)(bit % 8);
    uint32_t val = v << sh, mask = ((1u << nbits) - 1u) << sh;
    int need = nbits + (int)sh;
    for (int b = 0; b * 8 < need; b++) {
        uint8_t mb = (uint8_t)(mask >> (8 * b));
        p[b] = (uint8_t)((p[b] & ~mb) | ((val >> (8 * b)) & mb));
    }
}

/* Distance table of one query: table[m * ksub + j] = |x_m - c_mj|^2 (L2)
 * or <x_m, c_mj> (inner product). */
/* The centroids transposed per sub-quantizer, ct[(m * dsub + c) * ksub +
 * j] (M * ksub * dsub floats), and the table of x computed from them: the
 * same values as vdx_pq_table, faster for small dsub (one SIMD pass per
 * component over the ksub centroids instead of ksub short dot products). */
VDX_INTERNAL void vdx_pq_transpose_centroids(const vdx_pq *pq, float *ct);
VDX_INTERNAL void vdx_pq_table_t(const vdx_pq *pq, const float *ct,
                                 vdx_metric metric, const float *x,
                                 float *table);
VDX_INTERNAL void vdx_pq_table(const vdx_pq *pq, vdx_metric metric,
                               const float *x, float *table);
/* keys[i] = sum_m table[m * ksub + code_i[m]] for n codes. */
VDX_INTERNAL void vdx_pq_scan(const vdx_pq *pq, const float *table,
                              const uint8_t *codes, size_t n, float *keys);
/* The scalar reference of vdx_pq_scan (tests). */
VDX_INTERNAL void vdx_pq_scan_scalar(const vdx_pq *pq, const float *table,
                                     const uint8_t *codes, size_t n,
                                     float *keys);
/* The nbits = 8 scan, four codes at a time (bit-identical to the
 * reference). */
VDX_INTERNAL void vdx_pq_scan8_x4(const float *table, int64_t M,
                                  const uint8_t *codes, size_t n, float *keys);

#endif
