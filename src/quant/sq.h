/*
 * sq.h — the scalar quantizer (FAISS's ScalarQuantizer), private to the
 * library.  Each component of a vector is coded on its own: mapped into the
 * trained range [vmin, vmin + vdiff] and stored on 8, 6 or 4 bits, or kept
 * as a 16-bit float (fp16, bf16), or truncated to a byte (8bit_direct).
 * Codes, trained ranges and qtype numbers are FAISS's, byte for byte.
 *
 * Distances to codes are computed without decoding them to memory: a
 * query is first "prepared" against the quantizer (per-dimension affine
 * terms folded into it), then fused decode-and-accumulate kernels score
 * codes directly.  Kernels: a scalar reference (sq.c) and AVX2 (sq_avx2.c),
 * chosen once at run time with the distance kernels' level.
 */
#ifndef VDX_SQ_H
#define VDX_SQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* FAISS's ScalarQuantizer::QuantizerType numbers (stored in files). */
enum {
    VDX_QT_8BIT = 0,
    VDX_QT_4BIT = 1,
    VDX_QT_8BIT_UNIFORM = 2,
    VDX_QT_4BIT_UNIFORM = 3,
    VDX_QT_FP16 = 4,
    VDX_QT_8BIT_DIRECT = 5,
    VDX_QT_6BIT = 6,
    VDX_QT_BF16 = 7,
    VDX_QT_COUNT = 8,
    /* components stored as (uint8_t)(x + 128): x meant in -128..127 */
    VDX_QT_8BIT_DIRECT_SIGNED = 8,
    /* FAISS's numbers for the TurboQuant-MSE kinds (sq_tqmse.c) */
    VDX_QT_TQMSE1 = 10,
    VDX_QT_TQMSE2 = 11,
    VDX_QT_TQMSE3 = 12,
    VDX_QT_TQMSE4 = 13,
    VDX_QT_TQMSE8 = 14
};

/* FAISS's RangeStat; only RS_minmax (0) is implemented. */
enum { VDX_RS_MINMAX = 0 };

typedef struct vdx_sq {
    int qtype;
    int rangestat;
    float rangestat_arg;
    int64_t d;
    size_t code_size;
    float *trained;   /* as FAISS: [vmin(d), vdiff(d)], [vmin, vdiff] or [] */
    size_t ntrained;
    /* per-dimension decode for the integer codes: x_i = a_i + b_i * c_i
     * (folds the "+0.5" of FAISS's decode and broadcasts uniform ranges) */
    float *a, *b;
} vdx_sq;

/* Per-query state for scoring codes: 2 * d floats of scratch. */
typedef struct vdx_sq_query {
    const float *q;  /* the query (fp16/bf16) */
    float *r;        /* L2: q - a; IP: q * b */
    float c0;        /* IP: <q, a> */
} vdx_sq_query;

/* The fused kernels of one ISA.  l2_u8: sum (r_i - b_i c_i)^2;
 * ip_u8: sum w_i c_i; *_f16 / *_bf16: L2 or IP against decoded halves;
 * *_u4: as *_u8 on 4-bit codes. */
typedef struct vdx_sq_kernels {
    const char *name;
    float (*l2_u8)(const float *r, const float *b, const uint8_t *c, size_t d);
    float (*ip_u8)(const float *w, const uint8_t *c, size_t d);
    float (*l2_f16)(const float *q, const uint8_t *c, size_t d);
    float (*ip_f16)(const float *q, const uint8_t *c, size_t d);
    float (*l2_bf16)(const float *q, const uint8_t *c, size_t d);
    float (*ip_bf16)(const float *q, const uint8_t *c, size_t d);
    /* 4-bit codes (component i in nibble i & 1 of byte i / 2) */
    float (*l2_u4)(const float *r, const float *b, const uint8_t *c, size_t d);
    float (*ip_u4)(const float *w, const uint8_t *c, size_t d);
    /* encoders, bit for bit the reference's (sq.c): fp16 (FAISS's rounding,
     * ties away from zero), bf16 (nearest even), and 8-bit codes
     * (int)(255 * clamp((x_i - vmin_i) / vdiff_i, 0, 1)), 0 where vdiff_i = 0 */
    void (*enc_f16)(const float *x, uint8_t *c, size_t d);
    void (*enc_bf16)(const float *x, uint8_t *c, size_t d);
    void (*enc_u8)(const float *x, const float *vmin, const float *vdiff,
                   uint8_t *c, size_t d);
} vdx_sq_kernels;

VDX_INTERNAL extern const vdx_sq_kernels vdx_sq_kernels_scalar;
VDX_INTERNAL extern const vdx_sq_kernels vdx_sq_kernels_avx2;
/* The table matching vdx_kernels_get()'s level (avx512 uses avx2). */
VDX_INTERNAL const vdx_sq_kernels *vdx_sq_kernels_get(void);
/* The table of a level ("scalar", "avx2") or NULL when unavailable. */
VDX_INTERNAL const vdx_sq_kernels *vdx_sq_kernels_level(const char *name);

/* Code size in bytes of qtype for d components (0 for an unknown qtype). */
VDX_INTERNAL size_t vdx_sq_code_bytes(int qtype, int64_t d);
/* Number of trained floats qtype stores for d components. */
VDX_INTERNAL size_t vdx_sq_ntrained(int qtype, int64_t d);
VDX_INTERNAL vdx_status vdx_sq_init(vdx_sq *sq, int64_t d, int qtype);
VDX_INTERNAL void vdx_sq_release(vdx_sq *sq);
VDX_INTERNAL vdx_status vdx_sq_copy(vdx_sq *dst, const vdx_sq *src);
/* 1 when the qtype needs no training (fp16, bf16, 8bit_direct). */
VDX_INTERNAL int vdx_sq_trainless(int qtype);
/* FAISS's RS_minmax training (rangestat_arg widens the range). */
VDX_INTERNAL vdx_status vdx_sq_fit(vdx_sq *sq, int64_t n, const float *x);
/* Installs trained values (ntrained must be vdx_sq_ntrained). */
VDX_INTERNAL vdx_status vdx_sq_install(vdx_sq *sq, const float *t,
                                           size_t ntrained);
VDX_INTERNAL void vdx_sq_encode_n(const vdx_sq *sq, int64_t n, const float *x,
                                uint8_t *codes);
VDX_INTERNAL void vdx_sq_decode_n(const vdx_sq *sq, int64_t n,
                                const uint8_t *codes, float *x);
/* Prepares q for scoring (scratch: d floats). */
VDX_INTERNAL void vdx_sq_query_init(const vdx_sq *sq, int ip, const float *q,
                                    float *scratch, vdx_sq_query *out);
/* keys[j] = L2 distance (ip = 0) or -inner product (ip = 1) between the
 * prepared query and code j (codes contiguous, code_size apart). */
VDX_INTERNAL void vdx_sq_score(const vdx_sq *sq, const vdx_sq_kernels *K,
                               int ip, const vdx_sq_query *qq,
                               const uint8_t *codes, size_t n, float *keys);

/* fp16 conversions as FAISS does them (ties away from zero). */
VDX_INTERNAL uint16_t vdx_fp16_from_float(float f);
VDX_INTERNAL float vdx_fp16_to_float(uint16_t h);

/* sq_tqmse.c: bits per component of a TurboQuant-MSE qtype (0 for the
 * others); its table (2^bits centroids then 2^bits - 1 boundaries, for
 * dimension d) into out; encode / decode / score one code (q: the raw
 * query; the score is the squared L2 distance, or the inner product). */
VDX_INTERNAL int vdx_sq_tqmse_bits(int qtype);
VDX_INTERNAL void vdx_sq_tqmse_table(int64_t d, int bits, float *out);
VDX_INTERNAL void vdx_sq_tqmse_encode(const vdx_sq *sq, const float *x,
                                      uint8_t *code);
VDX_INTERNAL void vdx_sq_tqmse_decode(const vdx_sq *sq, const uint8_t *code,
                                      float *x);
VDX_INTERNAL float vdx_sq_tqmse_score(const vdx_sq *sq, int ip, const float *q,
                                      const uint8_t *code);

#endif
