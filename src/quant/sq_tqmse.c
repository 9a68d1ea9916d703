/*
 * sq_tqmse.c — FAISS's "TurboQuant MSE" scalar quantizers (QT_1bit_tqmse ..
 * QT_8bit_tqmse, factory SQtqmse1/2/3/4/8): every component is coded on
 * `bits` bits by one fixed Lloyd-Max quantizer of the standard normal law,
 * scaled by 1/sqrt(d).  The scale is that of the components of a random
 * unit vector in R^d (about N(0, 1/d)), the input TurboQuant (Zandieh et
 * al., 2025) designs it for, after a random rotation.  Training does not
 * look at the data: it only writes the table.
 *
 * The table (2^bits centroids c_j, then the 2^bits - 1 boundaries
 * b_j = (c_j + c_{j+1}) / 2) is computed here, not stored: Lloyd-Max
 * conditions are c_j = E[X | b_{j-1} < X < b_j], the boundaries midway.
 * Solved by shooting (Max, 1960): from a guess of c_0, each next boundary
 * follows from the conditional mean and each next centroid by reflection;
 * bisection on c_0 until the middle boundary lands on 0 (the law is
 * symmetric).  For 1..4 bits this gives FAISS's tables to float precision;
 * for 8 bits FAISS ships a table that is not this optimum (its centre
 * spacing is 0.0102 against the 0.0169 the equations give), so vecdex's
 * SQtqmse8 codes differ from FAISS's: a deliberate difference (lower error).
 * A file written by FAISS keeps its own table, read as stored.
 *
 * Codes: component i's index at bit i * bits, least significant bit first
 * (FAISS's layout); an index is the count of boundaries <= x (upper bound).
 */
#include <math.h>
#include <string.h>

#include "sq.h"

int vdx_sq_tqmse_bits(int qtype) {
    switch (qtype) {
    case VDX_QT_TQMSE1: return 1;
    case VDX_QT_TQMSE2: return 2;
    case VDX_QT_TQMSE3: return 3;
    case VDX_QT_TQMSE4: return 4;
    case VDX_QT_TQMSE8: return 8;
    default: return 0;
    }
}

static double pdf(double x) {
    return isinf(x) ? 0.0 : exp(-0.5 * x * x) * 0.3989422804014327;
}
static double cdf(double x) { return 0.5 * erfc(-x * 0.7071067811865476); }

/* E[X | a < X < b] for X ~ N(0, 1). */
static double cmean(double a, double b) {
    double den = cdf(b) - cdf(a);
    if (den <= 1e-300) return isinf(a) ? b : isinf(b) ? a : 0.5 * (a + b);
    return (pdf(a) - pdf(b)) / den;
}

/* The b > a with E[X | a < X < b] = c, or NAN when even b = +inf falls
 * short (c too large: the guess overshot). */
static double next_boundary(double a, double c) {
    if (cmean(a, INFINITY) <= c) return NAN;
    double lo = isinf(a) || c > a ? c : a, hi = lo + 1.0;
    while (cmean(a, hi) < c) hi += hi - lo;
    for (int it = 0; it < 80; it++) {
        double m = 0.5 * (lo + hi);
        if (cmean(a, m) < c) lo = m;
        else hi = m;
    }
    return 0.5 * (lo + hi);
}

/* The lower half (k/2 centroids, k/2 boundaries, the last one the middle)
 * from c0; returns the middle boundary, or NAN on overshoot. */
static double shoot(double c0, int half, double *c, double *b) {
    double a = -INFINITY;
    c[0] = c0;
    for (int j = 0; j < half; j++) {
        b[j] = next_boundary(a, c[j]);
        if (isnan(b[j])) return NAN;
        if (j + 1 < half) c[j + 1] = 2 * b[j] - c[j];
        a = b[j];
    }
    return b[half - 1];
}

void vdx_sq_tqmse_table(int64_t d, int bits, float *out) {
    const int k = 1 << bits, half = k / 2;
    double c[128], b[128], lo = -8.0, hi = 0.0;
    for (int it = 0; it < 64; it++) {
        double m = 0.5 * (lo + hi), mid = shoot(m, half, c, b);
        if (isnan(mid) || mid > 0) hi = m;
        else lo = m;
    }
    shoot(0.5 * (lo + hi), half, c, b);
    const double s = 1.0 / sqrt((double)d);
    for (int j = 0; j < half; j++) {
        out[j] = (float)(c[j] * s);
        out[k - 1 - j] = (float)(-c[j] * s);
    }
    for (int j = 0; j + 1 < half; j++) {
        out[k + j] = (float)(b[j] * s);
        out[k + k - 2 - j] = (float)(-b[j] * s);
    }
    out[k + half - 1] = 0.0f;
}

static inline int index_of(const float *bound, int nb, float x) {
    int lo = 0, hi = nb; /* first boundary > x */
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (bound[m] <= x) lo = m + 1;
        else hi = m;
    }
    return lo;
}

static inline int get_index(const uint8_t *code, int64_t i, int bits) {
    const int64_t bit = i * bits;
    unsigned v = code[bit >> 3];
    if ((bit & 7) + bits > 8) v |= (unsigned)code[(bit >> 3) + 1] << 8;
    return (int)((v >> (bit & 7)) & ((1u << bits) - 1));
}

void vdx_sq_tqmse_encode(const vdx_sq *sq, const float *x, uint8_t *code) {
    const int bits = vdx_sq_tqmse_bits(sq->qtype), k = 1 << bits;
    const float *bound = sq->trained + k;
    memset(code, 0, sq->code_size);
    for (int64_t i = 0; i < sq->d; i++) {
        /* NaN compares false everywhere: index 0, never out of range */
        unsigned v = (unsigned)index_of(bound, k - 1, x[i]) << ((i * bits) & 7);
        const int64_t byte = (i * bits) >> 3;
        code[byte] |= (uint8_t)(v & 0xff);
        if (((i * bits) & 7) + bits > 8) code[byte + 1] |= (uint8_t)(v >> 8);
    }
}

void vdx_sq_tqmse_decode(const vdx_sq *sq, const uint8_t *code, float *x) {
    const int bits = vdx_sq_tqmse_bits(sq->qtype);
    for (int64_t i = 0; i < sq->d; i++)
        x[i] = sq->trained[get_index(code, i, bits)];
}

float vdx_sq_tqmse_score(const vdx_sq *sq, int ip, const float *q,
                         const uint8_t *code) {
    const int bits = vdx_sq_tqmse_bits(sq->qtype);
    const float *cent = sq->trained;
    float s = 0;
    if (ip) {
        for (int64_t i = 0; i < sq->d; i++) s += q[i] * cent[get_index(code, i, bits)];
        return s;
    }
    for (int64_t i = 0; i < sq->d; i++) {
        float t = q[i] - cent[get_index(code, i, bits)];
        s += t * t;
    }
    return s;
}
