/*
 * sq.c — the scalar quantizer: training (FAISS's RS_minmax range), FAISS's
 * code layouts, decoding, and scoring of codes without decoding them to
 * memory; the scalar reference kernels live here too.
 *
 * Layouts (as FAISS's QuantizerTemplate / Codec*):
 *   8bit, 8bit_uniform: one byte per component, (int)(255 * t);
 *   4bit, 4bit_uniform: two per byte, component i in the nibble
 *                       (i & 1) * 4 of byte i / 2, (int)(15 * t);
 *   6bit: four per 3 bytes, little-endian bit order, (int)(63 * t);
 *   fp16: IEEE half, ties rounded away from zero (FAISS's encode_fp16);
 *   bf16: the float's top 16 bits, rounded to nearest, ties to even (IEEE's
 *         default and what AVX512-BF16's VCVTNEPS2BF16 computes; FAISS's
 *         generic code rounds ties up, its AVX512_SPR build to even, so the
 *         two agree except on exact ties, 1 value in 65536);
 *   8bit_direct: (uint8_t)x.
 * where t = clamp((x - vmin) / vdiff, 0, 1) (0 when vdiff == 0), and a code
 * c decodes to vmin + (c + 0.5) / levels * vdiff.
 */
#include <math.h>
#include <string.h>

#include "sq.h"
#include "simd/kernels.h"
#include "common/threads.h"

/* ---- half floats ---------------------------------------------------------- */

/* FAISS's encode_fp16 (ryg's float_to_half_fast3 variant): ties round
 * away from zero, not to even, so F16C's conversion cannot be used. */
static inline uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t vdx_fp16_from_float(float x) {
    uint32_t fint = fbits(x);
    uint32_t sign = fint & 0x80000000u;
    fint ^= sign;
    const uint32_t f32infty = 255u << 23;
    uint32_t o = fint > f32infty ? 0x7e00u : 0x7c00u;
    const uint32_t round_mask = ~0xfffu;
    float fscale = bitsf(fint & round_mask) * bitsf(15u << 23);
    float cap = bitsf((31u << 23) - 0x1000u);
    if (cap < fscale) fscale = cap;
    uint32_t fint2 = fbits(fscale) - round_mask;
    if (fint < f32infty) o = fint2 >> 13;
    return (uint16_t)(o | (sign >> 16));
}

float vdx_fp16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu, u;
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f); /* 2^-24 */
        memcpy(&u, &v, 4);
        u |= sign;
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t rd16(const uint8_t *c, size_t i) {
    return (uint16_t)(c[2 * i] | (c[2 * i + 1] << 8));
}

/* ---- scalar reference kernels ------------------------------------------- */

static float l2_u8_ref(const float *r, const float *b, const uint8_t *c,
                       size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) {
        float t = r[i] - b[i] * (float)c[i];
        s += t * t;
    }
    return s;
}

static float ip_u8_ref(const float *w, const uint8_t *c, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) s += w[i] * (float)c[i];
    return s;
}

static float l2_f16_ref(const float *q, const uint8_t *c, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) {
        float t = q[i] - vdx_fp16_to_float(rd16(c, i));
        s += t * t;
    }
    return s;
}

static float ip_f16_ref(const float *q, const uint8_t *c, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) s += q[i] * vdx_fp16_to_float(rd16(c, i));
    return s;
}

static float l2_bf16_ref(const float *q, const uint8_t *c, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) {
        float t = q[i] - bf16_to_float(rd16(c, i));
        s += t * t;
    }
    return s;
}

static float ip_bf16_ref(const float *q, const uint8_t *c, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) s += q[i] * bf16_to_float(rd16(c, i));
    return s;
}

static float l2_u4_ref(const float *r, const float *b, const uint8_t *c,
                       size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++) {
        float t = r[i] - b[i] * (float)((c[i / 2] >> ((i & 1) * 4)) & 15);
        s += t * t;
    }
    return s;
}

static float ip_u4_ref(const float *w, const uint8_t *c, size_t d) {
    float s = 0;
    for (size_t i = 0; i < d; i++)
        s += w[i] * (float)((c[i / 2] >> ((i & 1) * 4)) & 15);
    return s;
}

static void enc_f16_ref(const float *x, uint8_t *c, size_t d) {
    for (size_t i = 0; i < d; i++) {
        uint16_t h = vdx_fp16_from_float(x[i]);
        c[2 * i] = (uint8_t)h;
        c[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

static void enc_bf16_ref(const float *x, uint8_t *c, size_t d) {
    for (size_t i = 0; i < d; i++) {
        uint16_t h = bf16_from_float(x[i]);
        c[2 * i] = (uint8_t)h;
        c[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

static void enc_u8_ref(const float *x, const float *vmin, const float *vdiff,
                       uint8_t *c, size_t d) {
    for (size_t i = 0; i < d; i++) {
        float t = 0;
        if (vdiff[i] != 0) {
            t = (x[i] - vmin[i]) / vdiff[i];
            if (t < 0) t = 0;
            if (t > 1.0f) t = 1.0f;
        }
        c[i] = (uint8_t)(int)(t * 255.0f);
    }
}

const vdx_sq_kernels vdx_sq_kernels_scalar = {
    "scalar",    l2_u8_ref,   ip_u8_ref,   l2_f16_ref,  ip_f16_ref,
    l2_bf16_ref, ip_bf16_ref, l2_u4_ref,   ip_u4_ref,   enc_f16_ref,
    enc_bf16_ref, enc_u8_ref};

const vdx_sq_kernels *vdx_sq_kernels_get(void) {
    const vdx_kernels *k = vdx_kernels_get();
    return strcmp(k->name, "scalar") == 0 ? &vdx_sq_kernels_scalar
                                          : &vdx_sq_kernels_avx2;
}

const vdx_sq_kernels *vdx_sq_kernels_level(const char *name) {
    if (!vdx_kernels_level(name)) return NULL;
    return strcmp(name, "scalar") == 0 ? &vdx_sq_kernels_scalar
                                       : &vdx_sq_kernels_avx2;
}

/* ---- sizes, construction ------------------------------------------------ */

static int levels_of(int qtype) {
    switch (qtype) {
    case VDX_QT_8BIT:
    case VDX_QT_8BIT_UNIFORM: return 255;
    case VDX_QT_4BIT:
    case VDX_QT_4BIT_UNIFORM: return 15;
    case VDX_QT_6BIT: return 63;
    default: return 0;
    }
}

static int is_uniform(int qtype) {
    return qtype == VDX_QT_8BIT_UNIFORM || qtype == VDX_QT_4BIT_UNIFORM;
}

int vdx_sq_trainless(int qtype) {
    return qtype == VDX_QT_FP16 || qtype == VDX_QT_BF16 ||
           qtype == VDX_QT_8BIT_DIRECT || qtype == VDX_QT_8BIT_DIRECT_SIGNED;
}

size_t vdx_sq_code_bytes(int qtype, int64_t d) {
    size_t n = (size_t)d;
    switch (qtype) {
    case VDX_QT_8BIT:
    case VDX_QT_8BIT_UNIFORM:
    case VDX_QT_8BIT_DIRECT:
    case VDX_QT_8BIT_DIRECT_SIGNED: return n;
    case VDX_QT_4BIT:
    case VDX_QT_4BIT_UNIFORM: return (n + 1) / 2;
    case VDX_QT_6BIT: return (n * 6 + 7) / 8;
    case VDX_QT_FP16:
    case VDX_QT_BF16: return 2 * n;
    default:
        return (n * (size_t)vdx_sq_tqmse_bits(qtype) + 7) / 8; /* 0: unknown */
    }
}

size_t vdx_sq_ntrained(int qtype, int64_t d) {
    if (vdx_sq_trainless(qtype)) return 0;
    if (vdx_sq_tqmse_bits(qtype))
        return 2 * ((size_t)1 << vdx_sq_tqmse_bits(qtype)) - 1;
    return is_uniform(qtype) ? 2 : 2 * (size_t)d;
}

vdx_status vdx_sq_init(vdx_sq *sq, int64_t d, int qtype) {
    memset(sq, 0, sizeof *sq);
    if ((qtype < 0 || qtype >= VDX_QT_COUNT) && !vdx_sq_tqmse_bits(qtype) &&
        qtype != VDX_QT_8BIT_DIRECT_SIGNED)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "unknown scalar quantizer type %d (expected 0..7: "
                         "QT_8bit, QT_4bit, QT_8bit_uniform, QT_4bit_uniform, "
                         "QT_fp16, QT_8bit_direct, QT_6bit, QT_bf16, "
                         "QT_8bit_direct_signed, or 10..14: "
                         "QT_1/2/3/4/8bit_tqmse)",
                         qtype);
    if (d <= 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dimension d=%lld must be in 1..%lld", (long long)d,
                         (long long)VDX_MAX_DIM);
    sq->qtype = qtype;
    sq->d = d;
    sq->code_size = vdx_sq_code_bytes(qtype, d);
    sq->a = vdx_malloc_array((size_t)d, sizeof(float));
    sq->b = vdx_malloc_array((size_t)d, sizeof(float));
    if (!sq->a || !sq->b) {
        vdx_sq_release(sq);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < d; i++) { /* 8bit_direct: c decodes to c */
        sq->a[i] = qtype == VDX_QT_8BIT_DIRECT_SIGNED ? -128.0f : 0.0f;
        sq->b[i] = 1;
    }
    return VDX_OK;
}

void vdx_sq_release(vdx_sq *sq) {
    if (!sq) return;
    vdx_free(sq->trained);
    vdx_free(sq->a);
    vdx_free(sq->b);
    sq->trained = sq->a = sq->b = NULL;
    sq->ntrained = 0;
}

vdx_status vdx_sq_copy(vdx_sq *dst, const vdx_sq *src) {
    vdx_status st = vdx_sq_init(dst, src->d, src->qtype);
    if (st) return st;
    dst->rangestat = src->rangestat;
    dst->rangestat_arg = src->rangestat_arg;
    if (src->ntrained &&
        (st = vdx_sq_install(dst, src->trained, src->ntrained))) {
        vdx_sq_release(dst);
        return st;
    }
    return VDX_OK;
}

/* Recomputes the affine decode terms from the trained ranges. */
static void derive(vdx_sq *sq) {
    int L = levels_of(sq->qtype);
    if (!L || !sq->ntrained) return;
    const int64_t d = sq->d;
    for (int64_t i = 0; i < d; i++) {
        float vmin = is_uniform(sq->qtype) ? sq->trained[0] : sq->trained[i];
        float vdiff = is_uniform(sq->qtype) ? sq->trained[1] : sq->trained[d + i];
        sq->b[i] = vdiff / (float)L;
        sq->a[i] = vmin + 0.5f * sq->b[i];
    }
}

vdx_status vdx_sq_install(vdx_sq *sq, const float *t, size_t ntrained) {
    size_t want = vdx_sq_ntrained(sq->qtype, sq->d);
    if (ntrained != want)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "scalar quantizer: %zu trained values, expected %zu",
                         ntrained, want);
    float *nt = NULL;
    if (want) {
        nt = vdx_malloc_array(want, sizeof(float));
        if (!nt) return VDX_ERR_OUT_OF_MEMORY;
        memcpy(nt, t, want * sizeof(float));
    }
    vdx_free(sq->trained);
    sq->trained = nt;
    sq->ntrained = want;
    derive(sq);
    return VDX_OK;
}

vdx_status vdx_sq_fit(vdx_sq *sq, int64_t n, const float *x) {
    if (vdx_sq_trainless(sq->qtype)) return VDX_OK;
    if (vdx_sq_tqmse_bits(sq->qtype)) { /* a fixed table: the data unused */
        size_t nt = vdx_sq_ntrained(sq->qtype, sq->d);
        float *t = vdx_malloc_array(nt, sizeof(float));
        if (!t) return VDX_ERR_OUT_OF_MEMORY;
        vdx_sq_tqmse_table(sq->d, vdx_sq_tqmse_bits(sq->qtype), t);
        vdx_status st = vdx_sq_install(sq, t, nt);
        vdx_free(t);
        return st;
    }
    if (sq->rangestat != VDX_RS_MINMAX)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "scalar quantizer: range statistic %d is not "
                         "implemented (only RS_minmax = 0)",
                         sq->rangestat);
    if (n < 1)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "scalar quantizer: training needs at least one "
                         "vector, got n=%lld", (long long)n);
    const int64_t d = sq->d;
    const float arg = sq->rangestat_arg;
    size_t nt = vdx_sq_ntrained(sq->qtype, d);
    float *t = vdx_malloc_array(nt, sizeof(float));
    if (!t) return VDX_ERR_OUT_OF_MEMORY;
    if (is_uniform(sq->qtype)) {
        float vmin = HUGE_VALF, vmax = -HUGE_VALF;
        for (int64_t i = 0; i < n * d; i++) {
            if (x[i] < vmin) vmin = x[i];
            if (x[i] > vmax) vmax = x[i];
        }
        float vexp = (vmax - vmin) * arg;
        vmin -= vexp;
        vmax += vexp;
        t[0] = vmin;
        t[1] = vmax - vmin;
    } else {
        float *vmin = t, *vmax = t + d;
        memcpy(vmin, x, (size_t)d * sizeof(float));
        memcpy(vmax, x, (size_t)d * sizeof(float));
        for (int64_t i = 1; i < n; i++)
            for (int64_t j = 0; j < d; j++) {
                float v = x[i * d + j];
                if (v < vmin[j]) vmin[j] = v;
                if (v > vmax[j]) vmax[j] = v;
            }
        for (int64_t j = 0; j < d; j++) {
            float vexp = (vmax[j] - vmin[j]) * arg;
            vmin[j] -= vexp;
            vmax[j] += vexp;
            vmax[j] -= vmin[j]; /* FAISS stores vdiff */
        }
    }
    vdx_status st = vdx_sq_install(sq, t, nt);
    vdx_free(t);
    return st;
}

/* ---- encode / decode ------------------------------------------------------ */

static inline void put_bits(int qtype, uint8_t *code, int64_t i, int bits) {
    switch (qtype) {
    case VDX_QT_4BIT:
    case VDX_QT_4BIT_UNIFORM:
        code[i / 2] |= (uint8_t)(bits << ((i & 1) << 2));
        break;
    case VDX_QT_6BIT: {
        uint8_t *c = code + (i >> 2) * 3;
        switch (i & 3) {
        case 0: c[0] |= (uint8_t)bits; break;
        case 1:
            c[0] |= (uint8_t)(bits << 6);
            c[1] |= (uint8_t)(bits >> 2);
            break;
        case 2:
            c[1] |= (uint8_t)(bits << 4);
            c[2] |= (uint8_t)(bits >> 4);
            break;
        default: c[2] |= (uint8_t)(bits << 2); break;
        }
        break;
    }
    default: code[i] = (uint8_t)bits; break;
    }
}

static inline int get_bits(int qtype, const uint8_t *code, int64_t i) {
    switch (qtype) {
    case VDX_QT_4BIT:
    case VDX_QT_4BIT_UNIFORM: return (code[i / 2] >> ((i & 1) << 2)) & 0xf;
    case VDX_QT_6BIT: {
        const uint8_t *c = code + (i >> 2) * 3;
        switch (i & 3) {
        case 0: return c[0] & 0x3f;
        case 1: return (c[0] >> 6) | ((c[1] & 0xf) << 2);
        case 2: return (c[1] >> 4) | ((c[2] & 3) << 4);
        default: return c[2] >> 2;
        }
    }
    default: return code[i];
    }
}

static void encode_one(const vdx_sq *sq, const vdx_sq_kernels *SK,
                       const float *x, uint8_t *code) {
    const int64_t d = sq->d;
    switch (sq->qtype) {
    case VDX_QT_FP16: SK->enc_f16(x, code, (size_t)d); return;
    case VDX_QT_BF16: SK->enc_bf16(x, code, (size_t)d); return;
    case VDX_QT_8BIT:
        SK->enc_u8(x, sq->trained, sq->trained + d, code, (size_t)d);
        return;
    case VDX_QT_8BIT_DIRECT:
        /* FAISS casts; values outside [0, 256) are clamped here instead of
         * being undefined behaviour */
        for (int64_t i = 0; i < d; i++) {
            float v = x[i];
            code[i] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
        }
        return;
    case VDX_QT_8BIT_DIRECT_SIGNED: /* FAISS: (uint8_t)(x + 128), clamped */
        for (int64_t i = 0; i < d; i++) {
            float v = x[i] + 128.0f;
            code[i] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
        }
        return;
    default:
        if (vdx_sq_tqmse_bits(sq->qtype)) {
            vdx_sq_tqmse_encode(sq, x, code);
            return;
        }
        break;
    }
    memset(code, 0, sq->code_size);
    const int L = levels_of(sq->qtype), uni = is_uniform(sq->qtype);
    for (int64_t i = 0; i < d; i++) {
        float vmin = uni ? sq->trained[0] : sq->trained[i];
        float vdiff = uni ? sq->trained[1] : sq->trained[d + i];
        float t = 0;
        if (vdiff != 0) {
            t = (x[i] - vmin) / vdiff;
            if (t < 0) t = 0;
            if (t > 1.0f) t = 1.0f;
        }
        put_bits(sq->qtype, code, i, (int)(t * (float)L));
    }
}

void vdx_sq_encode_n(const vdx_sq *sq, int64_t n, const float *x,
                   uint8_t *codes) {
    const vdx_sq_kernels *SK = vdx_sq_kernels_get();
    /* a few microseconds a vector at most: a team only for big batches */
#pragma omp parallel for schedule(static) if (n * sq->d > 65536) num_threads(vdx_nthreads())
    for (int64_t i = 0; i < n; i++)
        encode_one(sq, SK, x + i * sq->d, codes + (size_t)i * sq->code_size);
}

static void decode_one(const vdx_sq *sq, const uint8_t *code, float *x) {
    const int64_t d = sq->d;
    switch (sq->qtype) {
    case VDX_QT_FP16:
        for (int64_t i = 0; i < d; i++) x[i] = vdx_fp16_to_float(rd16(code, (size_t)i));
        return;
    case VDX_QT_BF16:
        for (int64_t i = 0; i < d; i++) x[i] = bf16_to_float(rd16(code, (size_t)i));
        return;
    case VDX_QT_8BIT_DIRECT:
        for (int64_t i = 0; i < d; i++) x[i] = (float)code[i];
        return;
    case VDX_QT_8BIT_DIRECT_SIGNED:
        for (int64_t i = 0; i < d; i++) x[i] = (float)code[i] - 128.0f;
        return;
    default:
        if (vdx_sq_tqmse_bits(sq->qtype)) {
            vdx_sq_tqmse_decode(sq, code, x);
            return;
        }
        break;
    }
    const int L = levels_of(sq->qtype), uni = is_uniform(sq->qtype);
    for (int64_t i = 0; i < d; i++) {
        float vmin = uni ? sq->trained[0] : sq->trained[i];
        float vdiff = uni ? sq->trained[1] : sq->trained[d + i];
        float t = ((float)get_bits(sq->qtype, code, i) + 0.5f) / (float)L;
        x[i] = vmin + t * vdiff;
    }
}

void vdx_sq_decode_n(const vdx_sq *sq, int64_t n, const uint8_t *codes,
                   float *x) {
    for (int64_t i = 0; i < n; i++)
        decode_one(sq, codes + (size_t)i * sq->code_size, x + i * sq->d);
}

/* ---- scoring ---------------------------------------------------------------- */

void vdx_sq_query_init(const vdx_sq *sq, int ip, const float *q,
                       float *scratch, vdx_sq_query *out) {
    out->q = q;
    out->r = scratch;
    out->c0 = 0;
    if (sq->qtype == VDX_QT_FP16 || sq->qtype == VDX_QT_BF16) return;
    const int64_t d = sq->d;
    if (ip) {
        float c0 = 0;
        for (int64_t i = 0; i < d; i++) {
            scratch[i] = q[i] * sq->b[i];
            c0 += q[i] * sq->a[i];
        }
        out->c0 = c0;
    } else {
        for (int64_t i = 0; i < d; i++) scratch[i] = q[i] - sq->a[i];
    }
}

/* 6 bits: unpack and accumulate in one pass. */
static float score_packed(const vdx_sq *sq, int ip, const vdx_sq_query *qq,
                          const uint8_t *c) {
    const int64_t d = sq->d;
    float s = 0;
    if (ip) {
        for (int64_t i = 0; i < d; i++)
            s += qq->r[i] * (float)get_bits(sq->qtype, c, i);
        return qq->c0 + s;
    }
    for (int64_t i = 0; i < d; i++) {
        float t = qq->r[i] - sq->b[i] * (float)get_bits(sq->qtype, c, i);
        s += t * t;
    }
    return s;
}

void vdx_sq_score(const vdx_sq *sq, const vdx_sq_kernels *K, int ip,
                  const vdx_sq_query *qq, const uint8_t *codes, size_t n,
                  float *keys) {
    const size_t d = (size_t)sq->d, cs = sq->code_size;
    switch (sq->qtype) {
    case VDX_QT_FP16:
        if (ip)
            for (size_t j = 0; j < n; j++) keys[j] = -K->ip_f16(qq->q, codes + j * cs, d);
        else
            for (size_t j = 0; j < n; j++) keys[j] = K->l2_f16(qq->q, codes + j * cs, d);
        return;
    case VDX_QT_BF16:
        if (ip)
            for (size_t j = 0; j < n; j++) keys[j] = -K->ip_bf16(qq->q, codes + j * cs, d);
        else
            for (size_t j = 0; j < n; j++) keys[j] = K->l2_bf16(qq->q, codes + j * cs, d);
        return;
    case VDX_QT_8BIT:
    case VDX_QT_8BIT_UNIFORM:
    case VDX_QT_8BIT_DIRECT:
    case VDX_QT_8BIT_DIRECT_SIGNED: /* decode c - 128: a = -128, b = 1 */
        if (ip)
            for (size_t j = 0; j < n; j++)
                keys[j] = -(qq->c0 + K->ip_u8(qq->r, codes + j * cs, d));
        else
            for (size_t j = 0; j < n; j++)
                keys[j] = K->l2_u8(qq->r, sq->b, codes + j * cs, d);
        return;
    case VDX_QT_4BIT:
    case VDX_QT_4BIT_UNIFORM:
        if (ip)
            for (size_t j = 0; j < n; j++)
                keys[j] = -(qq->c0 + K->ip_u4(qq->r, codes + j * cs, d));
        else
            for (size_t j = 0; j < n; j++)
                keys[j] = K->l2_u4(qq->r, sq->b, codes + j * cs, d);
        return;
    default: /* 6 bits */
        if (vdx_sq_tqmse_bits(sq->qtype)) {
            for (size_t j = 0; j < n; j++) {
                float v = vdx_sq_tqmse_score(sq, ip, qq->q, codes + j * cs);
                keys[j] = ip ? -v : v;
            }
            return;
        }
        for (size_t j = 0; j < n; j++) {
            float v = score_packed(sq, ip, qq, codes + j * cs);
            keys[j] = ip ? -v : v;
        }
        return;
    }
}

/* ---- public API ----------------------------------------------------------- */

int vdx_sq_is_trained(const vdx_sq *sq) {
    return sq && (vdx_sq_trainless(sq->qtype) ||
                  sq->ntrained == vdx_sq_ntrained(sq->qtype, sq->d));
}

vdx_status vdx_sq_new(int64_t d, int qtype, vdx_sq **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    vdx_sq *sq = vdx_calloc(1, sizeof *sq);
    if (!sq) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = vdx_sq_init(sq, d, qtype);
    if (st) {
        vdx_free(sq);
        return st;
    }
    *out = sq;
    return VDX_OK;
}

void vdx_sq_free(vdx_sq *sq) {
    if (!sq) return;
    vdx_sq_release(sq);
    vdx_free(sq);
}

static vdx_status check_io(const vdx_sq *sq, int64_t n, const void *a,
                           const void *b, const char *what) {
    if (!sq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "%s: sq is NULL", what);
    if (n < 0 || (n > 0 && (!a || !b)))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: n=%lld with NULL buffers", what, (long long)n);
    if (!vdx_sq_is_trained(sq))
        return vdx_raise(VDX_ERR_NOT_TRAINED,
                         "%s: the scalar quantizer is not trained", what);
    return VDX_OK;
}

vdx_status vdx_sq_train(vdx_sq *sq, int64_t n, const float *x) {
    vdx_clear_error();
    if (!sq) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "sq is NULL");
    if (n < 0 || (n > 0 && !x))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "train: bad arguments");
    vdx_status st = vdx_check_vectors(x, n, sq->d, "training vectors");
    if (st) return st;
    return vdx_sq_fit(sq, n, x);
}

vdx_status vdx_sq_compute_codes(const vdx_sq *sq, int64_t n, const float *x,
                                uint8_t *codes) {
    vdx_clear_error();
    vdx_status st = check_io(sq, n, x, codes, "compute_codes");
    if (st) return st;
    if ((st = vdx_check_vectors(x, n, sq->d, "vectors"))) return st;
    vdx_sq_encode_n(sq, n, x, codes);
    return VDX_OK;
}

vdx_status vdx_sq_decode(const vdx_sq *sq, int64_t n, const uint8_t *codes,
                         float *x) {
    vdx_clear_error();
    vdx_status st = check_io(sq, n, codes, x, "decode");
    if (st) return st;
    vdx_sq_decode_n(sq, n, codes, x);
    return VDX_OK;
}

int64_t vdx_sq_d(const vdx_sq *sq) { return sq ? sq->d : 0; }
int vdx_sq_qtype(const vdx_sq *sq) { return sq ? sq->qtype : -1; }
size_t vdx_sq_code_size(const vdx_sq *sq) { return sq ? sq->code_size : 0; }

const float *vdx_sq_trained(const vdx_sq *sq, size_t *n) {
    if (n) *n = sq ? sq->ntrained : 0;
    return sq ? sq->trained : NULL;
}

vdx_status vdx_sq_set_trained(vdx_sq *sq, const float *t, size_t n) {
    vdx_clear_error();
    if (!sq || (n && !t))
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "set_trained: NULL argument");
    vdx_status st = vdx_check_finite(t, 1, (int64_t)n, "trained values");
    if (st) return st;
    return vdx_sq_install(sq, t, n);
}
