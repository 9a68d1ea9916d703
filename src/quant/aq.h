/*
 * aq.h — additive quantizers, laid out as FAISS's AdditiveQuantizer so that
 * codebooks, codes and files are interchangeable.
 *
 * An additive quantizer approximates x by a sum of M codebook entries,
 * x ~ c_{0,i_0} + ... + c_{M-1,i_{M-1}}, codebook m holding 2^nbits[m]
 * entries.  The kinds differ by how they choose the entries:
 *
 *   - residual quantization (RQ, rq.c): step m quantizes the residual of
 *     steps 0..m-1, keeping a beam of the best partial codes (Chen, Guan,
 *     Wang, "Approximate nearest neighbor search by residual vector
 *     quantization", Sensors 2010; the beam as in Liu et al. and FAISS);
 *   - local search quantization (LSQ, lsq.c): all M codes jointly, by
 *     iterated conditional modes with random perturbations (Martinez et
 *     al., "Revisiting additive quantization", ECCV 2016, and "LSQ++",
 *     ECCV 2018);
 *   - the product forms (PRQ, PLSQ, paq.c): the vector is cut into nsplits
 *     sub-vectors, each quantized by its own RQ or LSQ of Msub codebooks.
 *
 * Layout (FAISS's): codebook m starts at entry cb_off[m] (cb_off[M] =
 * total_cb) of `codebooks`, one entry ew floats (ew = d, or d / nsplits for
 * the product kinds, whose entry m covers components dim0[m] ..
 * dim0[m] + ew - 1).  A code packs the M indices, nbits[m] bits each, then
 * norm_bits bits of the encoded squared norm of the reconstruction, least
 * significant bit first (FAISS's BitstringWriter), in code_size bytes.
 *
 * The search type (FAISS's Search_type_t numbers, stored in files) decides
 * what the norm field holds and how distances are computed: decompressing
 * every code, or a look-up table of <q, entry> plus the stored norm.
 */
#ifndef VDX_AQ_H
#define VDX_AQ_H

#include "common/common.h"

/* bounds of the constructors (and of files) */
#define VDX_AQ_NBITS_MAX 16
#define VDX_AQ_M_MAX 4096

struct vdx_aq {
    int kind; /* VDX_AQ_RQ / LSQ / PRQ / PLSQ */
    int64_t d, M;
    int *nbits;       /* M */
    int64_t *cb_off;  /* M + 1 */
    int64_t *dim0;    /* M: first component a codebook covers */
    int64_t ew;       /* floats per codebook entry */
    int64_t total_cb; /* entries in all codebooks */
    int64_t tot_bits, norm_bits;
    size_t code_size;
    int only_8bit; /* every nbits[m] == 8 (fast paths) */
    int is_trained;
    int search_type;
    float norm_min, norm_max;
    float *codebooks; /* total_cb x ew, NULL until trained or set */
    /* norm quantizers: the sorted centroids of cqint8/4, the 256 sums of
     * the 2x4 norm quantizer (entry i * 16 + j = tab[j] + tab[16 + i]) */
    float *qnorm;
    int64_t nqnorm;
    int64_t *qnorm_perm; /* qnorm's ranks, for the nearest-value search */
    float *norm_tabs;    /* 32 for lsq2x4 / rq2x4 */
    int64_t nnorm_tabs;
    /* derived tables (never stored): |entry|^2 and, for step m, the
     * <entry of an earlier codebook, entry of codebook m> block
     * (cb_off[m] x K_m, row-major), FAISS's codebook_cross_products */
    float *centroid_norms;
    float *cross;
    size_t ncross;
    uint64_t max_mem_distances;
    int verbose;
    /* RQ */
    int train_type, max_beam_size, use_beam_LUT, niter_codebook_refine;
    vdx_kmeans_params cp; /* k-means of each step (FAISS: niter 10) */
    int progressive_dim_steps, apply_pca;
    /* LSQ */
    int64_t K, train_iters, encode_ils_iters, train_ils_iters, icm_iters,
        chunk_size, nperts;
    float p, lambd;
    int32_t random_seed;
    int update_codebooks_with_double;
    /* product kinds: the sub-quantizers (owned), each of dimension ew */
    int64_t nsplits;
    vdx_aq **sub;
    /* the index that owns this quantizer (NULL when standalone) and its
     * hook, called after codebooks or search type change */
    vdx_index *owner;
    vdx_status (*changed)(vdx_index *owner);
};

/* ---- construction (aq.c) ------------------------------------------------ */
/* A quantizer of `kind` for d-vectors with M codebooks of nbits[m] bits
 * (the nsplits sub-quantizers of the product kinds are made by the
 * caller); checks the arguments, computes the derived sizes. */
VDX_INTERNAL vdx_status vdx_aq_make(int kind, int64_t d, int64_t M,
                                    const int *nbits, int search_type,
                                    vdx_aq **out);
/* Recomputes cb_off, tot_bits, norm_bits, code_size (FAISS's
 * set_derived_values) after M, nbits, search_type or nsplits changed. */
VDX_INTERNAL vdx_status vdx_aq_set_derived(vdx_aq *aq);
/* norm bits of a search type (0, 4, 8 or 32), -1 when unknown */
VDX_INTERNAL int vdx_aq_norm_bits_of(int search_type);
/* Allocates the codebooks (uninitialised) if missing. */
VDX_INTERNAL vdx_status vdx_aq_alloc_codebooks(vdx_aq *aq);
/* Rebuilds qnorm_perm after qnorm changed. */
VDX_INTERNAL vdx_status vdx_aq_norm_index(vdx_aq *aq);
VDX_INTERNAL vdx_status vdx_aq_compute_tables(vdx_aq *aq);
/* Frees the derived tables. */
VDX_INTERNAL void vdx_aq_drop_tables(vdx_aq *aq);

/* ---- codes ---------------------------------------------------------------*/
/* LSB-first bit strings (FAISS's BitstringWriter / Reader), v < 2^nbits,
 * nbits <= 32. */
static inline void vdx_bits_put(uint8_t *code, uint64_t pos, uint32_t v,
                                int nbits) {
    uint8_t *p = code + pos / 8;
    unsigned sh = (unsigned)(pos % 8);
    uint64_t val = (uint64_t)v << sh;
    int nb = (int)(sh + (unsigned)nbits + 7) / 8;
    for (int b = 0; b < nb; b++) p[b] |= (uint8_t)(val >> (8 * b));
}
static inline uint32_t vdx_bits_get(const uint8_t *code, uint64_t pos,
                                    int nbits) {
    const uint8_t *p = code + pos / 8;
    unsigned sh = (unsigned)(pos % 8);
    int nb = (int)(sh + (unsigned)nbits + 7) / 8;
    uint64_t v = 0;
    for (int b = 0; b < nb; b++) v |= (uint64_t)p[b] << (8 * b);
    return (uint32_t)((v >> sh) & ((nbits == 32) ? 0xffffffffull
                                                 : ((1ull << nbits) - 1)));
}

/* Unpacks the M indices of n codes into idx (n x M). */
VDX_INTERNAL void vdx_aq_unpack(const vdx_aq *aq, int64_t n,
                                const uint8_t *codes, int32_t *idx);
/* Packs n unpacked codes (row i at codes + i * ld) into packed codes;
 * the norm field holds the encoding of norms[i] (the squared norm of the
 * reconstruction), computed here when norms is NULL and the search type
 * stores one.  centroids (NULL or n x d) are added to the reconstructions
 * before their norms are taken (IVF fast scan). */
VDX_INTERNAL vdx_status vdx_aq_pack(const vdx_aq *aq, int64_t n,
                                    const int32_t *codes, int64_t ld,
                                    const float *norms, const float *centroids,
                                    uint8_t *packed);
/* x (n x d) = the sum of the entries of n unpacked codes (stride ld). */
VDX_INTERNAL void vdx_aq_decode_idx(const vdx_aq *aq, int64_t n,
                                    const int32_t *codes, int64_t ld,
                                    float *x);
/* x (n x d) = the reconstructions of n packed codes. */
VDX_INTERNAL void vdx_aq_decode_n(const vdx_aq *aq, int64_t n,
                                  const uint8_t *codes, float *x);
/* Reconstruction of the entries whose indices are packed in `bits`, step
 * m taking nbits[m] bits (ResidualCoarseQuantizer's list numbers). */
VDX_INTERNAL void vdx_aq_decode_64(const vdx_aq *aq, uint64_t bits, float *x);
/* Encodes n vectors (the kind's encoder), then packs them. */
VDX_INTERNAL vdx_status vdx_aq_encode(const vdx_aq *aq, int64_t n,
                                      const float *x, uint8_t *codes);
/* The kind's encoder alone: n x M indices. */
VDX_INTERNAL vdx_status vdx_aq_encode_idx(const vdx_aq *aq, int64_t n,
                                          const float *x, int32_t *idx);
VDX_INTERNAL vdx_status vdx_aq_train_internal(vdx_aq *aq, int64_t n,
                                              const float *x);

/* ---- norms (aq.c) ------------------------------------------------------- */
/* Trains the norm quantizer of the search type on n squared norms (and
 * sets norm_min / norm_max, as FAISS's train_norm, for every type). */
VDX_INTERNAL vdx_status vdx_aq_train_norm(vdx_aq *aq, int64_t n,
                                          const float *norms);
VDX_INTERNAL uint32_t vdx_aq_encode_norm(const vdx_aq *aq, float norm);
VDX_INTERNAL float vdx_aq_decode_norm(const vdx_aq *aq, uint32_t c);

/* ---- look-up tables and distances (aq.c) ------------------------------- */
/* lut (n x total_cb, row stride ld >= total_cb) = alpha <x_i, entry j>. */
VDX_INTERNAL void vdx_aq_lut(const vdx_aq *aq, int64_t n, const float *x,
                             float alpha, float *lut, int64_t ld);
/* The LUT distance of one code as FAISS's compute_1_distance_LUT: for IP
 * (is_ip) the score sum_m lut[m][i_m]; for L2 the distance minus |q|^2:
 * norm - 2 sum (stored / decoded / from-tables norm), or - sum for
 * ST_LUT_nonorm. */
VDX_INTERNAL float vdx_aq_lut_distance(const vdx_aq *aq, int is_ip,
                                       const uint8_t *code, const float *lut);
/* out[i] = vdx_aq_lut_distance of n consecutive codes. */
VDX_INTERNAL void vdx_aq_lut_distances(const vdx_aq *aq, int is_ip,
                                       const uint8_t *codes, size_t n,
                                       const float *lut, float *out);
/* Squared norm of a code's reconstruction from the tables (O(M^2),
 * ST_norm_from_LUT); the tables must exist. */
VDX_INTERNAL float vdx_aq_norm_from_tables(const vdx_aq *aq,
                                           const uint8_t *code);

/* ---- the kinds ----------------------------------------------------------- */
/* rq.c */
VDX_INTERNAL vdx_status vdx_rq_train(vdx_aq *rq, int64_t n, const float *x);
VDX_INTERNAL vdx_status vdx_rq_encode(const vdx_aq *rq, int64_t n,
                                      const float *x, int32_t *idx,
                                      float *norms);
/* The best out_beam codes (n x out_beam x M) of each x with their
 * distances (n x out_beam, ascending) and optionally their residuals. */
VDX_INTERNAL vdx_status vdx_rq_refine_beam_internal(
    const vdx_aq *rq, int64_t n, const float *x, int64_t out_beam,
    int32_t *codes, float *residuals, float *distances);
/* lsq.c */
VDX_INTERNAL vdx_status vdx_lsq_train(vdx_aq *lsq, int64_t n, const float *x);
VDX_INTERNAL vdx_status vdx_lsq_encode(const vdx_aq *lsq, int64_t n,
                                       const float *x, int32_t *idx);
/* paq.c */
VDX_INTERNAL vdx_status vdx_paq_train(vdx_aq *paq, int64_t n, const float *x);
VDX_INTERNAL vdx_status vdx_paq_encode(const vdx_aq *paq, int64_t n,
                                       const float *x, int32_t *idx);
/* Builds the product kind over nsplits new sub-quantizers. */
VDX_INTERNAL vdx_status vdx_paq_make(int kind, int64_t d, int64_t nsplits,
                                     int64_t Msub, int nbits, int search_type,
                                     vdx_aq **out);
/* Copies the sub-quantizers' codebooks into the product's. */
VDX_INTERNAL vdx_status vdx_paq_gather_codebooks(vdx_aq *paq);

/* The squared L2 distance of rows to entries, for blocks of the beam
 * search: dis[i * K + k] = |r_i|^2 + |c_k|^2 - 2 <r_i, c_k> (sgemm). */
VDX_INTERNAL void vdx_aq_l2_tile(int64_t nr, int64_t K, int64_t d,
                                 const float *r, const float *rnorm,
                                 const float *c, const float *cnorm,
                                 float *dis);

/* a deep copy (not the owner link) */
VDX_INTERNAL vdx_status vdx_aq_clone_internal(const vdx_aq *aq, vdx_aq **out);
/* Frees everything (NULL accepted). */
VDX_INTERNAL void vdx_aq_destroy(vdx_aq *aq);
/* 1 when M, nbits, d, kind, nsplits match (same code layout). */
VDX_INTERNAL int vdx_aq_same_layout(const vdx_aq *a, const vdx_aq *b);

#endif
