/*
 * fastscan.c — packing of 4-bit PQ codes into FAISS's fast-scan blocks,
 * quantization of query tables, the scalar reference kernel and the
 * dispatch of the SIMD ones (fastscan_avx2.c, fastscan_avx512.c).  See
 * fastscan.h for the layout and for why the 16-bit sums are lower bounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "fastscan.h"
#include "simd/kernels.h"

static inline size_t elem_addr(int64_t bbs, int64_t nsq, int64_t i, int64_t m,
                               int *high) {
    int64_t b = i / bbs, w = i % bbs;
    int64_t g = w / 32, u = w % 32;
    *high = u >= 16;
    u &= 15;
    int64_t j = u < 8 ? 2 * u : 2 * (u - 8) + 1;
    return (size_t)b * vdx_fs_block_size(nsq, bbs) + (size_t)(m / 2) * (size_t)bbs +
           (size_t)g * 32 + (size_t)(m & 1) * 16 + (size_t)j;
}

uint8_t vdx_fs_get(const uint8_t *blocks, int64_t bbs, int64_t nsq, int64_t i,
                   int64_t m) {
    int high;
    uint8_t v = blocks[elem_addr(bbs, nsq, i, m, &high)];
    return high ? (uint8_t)(v >> 4) : (uint8_t)(v & 15);
}

void vdx_fs_set(uint8_t *blocks, int64_t bbs, int64_t nsq, int64_t i,
                int64_t m, uint8_t v) {
    int high;
    uint8_t *p = blocks + elem_addr(bbs, nsq, i, m, &high);
    if (high)
        *p = (uint8_t)((*p & 15) | ((v & 15) << 4));
    else
        *p = (uint8_t)((*p & 0xF0) | (v & 15));
}

void vdx_fs_pack(const uint8_t *codes, int64_t n, int64_t M, int64_t bbs,
                 int64_t nsq, uint8_t *blocks, int64_t i0) {
    const int64_t cs = (M + 1) / 2;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        for (int64_t m = 0; m < nsq; m++) {
            uint8_t v = m < M ? (uint8_t)((c[m / 2] >> (4 * (m & 1))) & 15) : 0;
            vdx_fs_set(blocks, bbs, nsq, i0 + i, m, v);
        }
    }
}

void vdx_fs_unpack_1(const uint8_t *blocks, int64_t bbs, int64_t nsq,
                     int64_t M, int64_t i, uint8_t *code) {
    const int64_t cs = (M + 1) / 2;
    memset(code, 0, (size_t)cs);
    for (int64_t m = 0; m < M; m++)
        code[m / 2] |= (uint8_t)(vdx_fs_get(blocks, bbs, nsq, i, m) << (4 * (m & 1)));
}

/* Moves the kth smallest of r[0..n) to r[kth] (quickselect, median of
 * three; NaN-free input). */
static void select_kth(float *r, int64_t n, int64_t kth) {
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        float a = r[lo], b = r[mid], c = r[hi];
        float piv = a < b ? (b < c ? b : (a < c ? c : a))
                          : (a < c ? a : (b < c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (r[i] < piv) i++;
            while (r[j] > piv) j--;
            if (i <= j) {
                float t = r[i];
                r[i++] = r[j];
                r[j--] = t;
            }
        }
        if (kth <= j)
            hi = j;
        else if (kth >= i)
            lo = i;
        else
            return;
    }
}

/* q[j] = min(255, round((t[j] - lo) * inv)) for 16 entries; NaN (inf - inf
 * from overflowing tables of absurd centroids) saturates like any entry
 * too wide for the scale. */
static inline void quantize16(const float *t, float lo, float inv,
                              uint8_t *q) {
#ifdef __SSE2__
    const __m128 vlo = _mm_set1_ps(lo), vinv = _mm_set1_ps(inv);
    const __m128 half = _mm_set1_ps(0.5f), top = _mm_set1_ps(255.0f);
    const __m128 zero = _mm_setzero_ps();
    __m128i w[4];
    for (int i = 0; i < 4; i++) {
        __m128 v = _mm_add_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(t + 4 * i), vlo), vinv), half);
        v = _mm_max_ps(_mm_min_ps(v, top), zero); /* minps(NaN, top) = top */
        w[i] = _mm_cvttps_epi32(v);
    }
    __m128i h = _mm_packus_epi16(_mm_packs_epi32(w[0], w[1]),
                                 _mm_packs_epi32(w[2], w[3]));
    _mm_storeu_si128((__m128i *)(void *)q, h);
#else
    for (int j = 0; j < 16; j++) {
        float v = (t[j] - lo) * inv + 0.5f;
        v = v < 255.0f ? v : 255.0f;
        v = v > 0.0f ? v : 0.0f;
        q[j] = (uint8_t)(int)v;
    }
#endif
}

static inline void minmax16(const float *t, float *lo, float *hi) {
#ifdef __SSE2__
    __m128 a = _mm_loadu_ps(t), b = _mm_loadu_ps(t + 4);
    __m128 c = _mm_loadu_ps(t + 8), d = _mm_loadu_ps(t + 12);
    __m128 mn = _mm_min_ps(_mm_min_ps(a, b), _mm_min_ps(c, d));
    __m128 mx = _mm_max_ps(_mm_max_ps(a, b), _mm_max_ps(c, d));
    mn = _mm_min_ps(mn, _mm_shuffle_ps(mn, mn, _MM_SHUFFLE(1, 0, 3, 2)));
    mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
    mn = _mm_min_ss(mn, _mm_shuffle_ps(mn, mn, _MM_SHUFFLE(2, 3, 0, 1)));
    mx = _mm_max_ss(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
    *lo = _mm_cvtss_f32(mn);
    *hi = _mm_cvtss_f32(mx);
#else
    float l = t[0], h = t[0];
    for (int j = 1; j < 16; j++) {
        l = t[j] < l ? t[j] : l;
        h = t[j] > h ? t[j] : h;
    }
    *lo = l;
    *hi = h;
#endif
}

#define QZ_KEEP 256 /* sub-quantizers whose minimum and width are kept */

/* The kth smallest of r[0 .. n) when few entries lie above it (n - kth <=
 * 8, n <= 64): the n - kth largest are taken out one by one, each a SIMD
 * maximum and a search for its first position, with no data-dependent
 * branch (quickselect mispredicts about once per entry, and at M = 32 it
 * took most of the table quantization). */
static float kth_by_removal(const float *src, int64_t n, int64_t kth) {
#ifdef __SSE2__
    float r[64];
    const int64_t nv = (n + 3) / 4;
    for (int64_t i = 0; i < n; i++) /* NaN (inf - inf): the widest */
        r[i] = src[i] == src[i] ? src[i] : INFINITY;
    for (int64_t i = n; i < nv * 4; i++) r[i] = -INFINITY;
    float m = -INFINITY;
    for (int64_t e = 0; e < n - kth; e++) {
        __m128 mx = _mm_loadu_ps(r);
        for (int64_t v = 1; v < nv; v++) mx = _mm_max_ps(mx, _mm_loadu_ps(r + 4 * v));
        mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
        mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
        m = _mm_cvtss_f32(mx);
        uint64_t at = 0; /* positions of the maximum */
        for (int64_t v = 0; v < nv; v++)
            at |= (uint64_t)_mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(r + 4 * v), mx))
                  << (4 * v);
        r[__builtin_ctzll(at)] = -INFINITY;
    }
    return m;
#else
    float r[64];
    memcpy(r, src, (size_t)n * sizeof(float));
    select_kth(r, n, kth);
    return r[kth];
#endif
}

void vdx_fs_quantize(const float *table, int64_t M, int64_t nsq,
                     vdx_fs_lut *lut) {
    /* the scale: the 90th percentile of the per-sub-quantizer ranges (of
     * the first 512 sub-quantizers), so that a few wide sub-quantizers
     * saturate instead of flattening all the others */
    float r[512], los[QZ_KEEP], ws[QZ_KEEP], widest = 0, bias = 0;
    r[0] = 0; /* M >= 1: set below; quiets the compiler */
    const int64_t nr = M < 512 ? M : 512;
    for (int64_t m = 0; m < M; m++) {
        float lo, hi;
        minmax16(table + m * 16, &lo, &hi);
        if (m < QZ_KEEP) {
            los[m] = lo;
            ws[m] = hi - lo;
        }
        if (m < nr) r[m] = hi - lo;
        widest = hi - lo > widest ? hi - lo : widest;
    }
    const int64_t kth = (nr - 1) * 9 / 10;
    float ref;
    if (nr <= 64 && nr - kth <= 8) {
        ref = kth_by_removal(r, nr, kth);
    } else {
        select_kth(r, nr, kth);
        ref = r[kth];
    }
    if (!(ref > 0)) ref = widest;
    if (!(ref > 0)) ref = 1;
    const float inv = 255.0f / ref;
    float wide_w[VDX_FS_MAX_WIDE];
    lut->nwide = 0;
    for (int64_t m = 0; m < M; m++) {
        const float *t = table + m * 16;
        float lo, w;
        if (m < QZ_KEEP) {
            lo = los[m];
            w = ws[m];
        } else {
            float hi;
            minmax16(t, &lo, &hi);
            w = hi - lo;
        }
        bias += lo;
        quantize16(t, lo, inv, lut->q + m * 16);
        /* the widest saturating sub-quantizers, widest first: any whose
         * entries saturate (w > ref), else a range just above ref (the
         * second widest of a few, as the 2x4-bit norm tables of the
         * additive fast-scan kinds) is cut off without correction and
         * the approximate keys the candidates are kept by go wrong by up
         * to ref */
        if (!(w > ref)) continue;
        int pos = lut->nwide;
        if (pos == VDX_FS_MAX_WIDE) {
            if (!(w > wide_w[pos - 1])) continue;
            pos--;
        } else {
            lut->nwide++;
        }
        for (; pos > 0 && wide_w[pos - 1] < w; pos--) {
            wide_w[pos] = wide_w[pos - 1];
            lut->wide[pos] = lut->wide[pos - 1];
            lut->wide_min[pos] = lut->wide_min[pos - 1];
        }
        wide_w[pos] = w;
        lut->wide[pos] = m;
        lut->wide_min[pos] = lo;
    }
    for (int64_t m = M; m < nsq; m++) memset(lut->q + m * 16, 0, 16);
    lut->bias = bias;
    lut->scale = ref / 255.0f;
    lut->inv_scale = inv;
    for (int w = 0; w < lut->nwide; w++) {
        const int64_t m = lut->wide[w];
        for (int c = 0; c < 16; c++)
            lut->wide_corr[w][c] = table[m * 16 + c] - lut->wide_min[w] -
                                   lut->scale * (float)lut->q[m * 16 + c];
    }
    lut->M = M;
    lut->nsq = nsq;
}

/* ---- scalar reference kernel ------------------------------------------- */

static uint32_t scan32_scalar(const uint8_t *grp, size_t stride,
                              const uint8_t *lut, int64_t nsq, uint16_t thr,
                              uint16_t *sums) {
    uint32_t acc[32] = {0};
    for (int64_t p = 0; p < nsq / 2; p++) {
        const uint8_t *c = grp + (size_t)p * stride;
        const uint8_t *l0 = lut + (2 * p) * 16, *l1 = l0 + 16;
        for (int j = 0; j < 16; j++) {
            int v = j % 2 == 0 ? j / 2 : 8 + j / 2; /* perm(j) */
            acc[v] += l0[c[j] & 15] + l1[c[16 + j] & 15];
            acc[v + 16] += l0[c[j] >> 4] + l1[c[16 + j] >> 4];
        }
    }
    uint32_t mask = 0;
    for (int v = 0; v < 32; v++) {
        /* saturating 16-bit sums of non-negative terms: min(65535, sum) in
         * any order, so every kernel agrees bit for bit */
        uint16_t s = acc[v] > 65535 ? 65535 : (uint16_t)acc[v];
        sums[v] = s;
        if (s <= thr) mask |= 1u << v;
    }
    return mask;
}

static void scan32_multi_scalar(const uint8_t *grp, size_t stride,
                                const uint8_t *const *luts, int nq,
                                int64_t nsq, const uint16_t *thr,
                                uint16_t *sums, uint32_t *masks) {
    for (int j = 0; j < nq; j++)
        masks[j] = scan32_scalar(grp, stride, luts[j], nsq, thr[j], sums + 32 * j);
}

int vdx_fs_scan_run_with(vdx_fs_scan32_multi_fn multi, const uint8_t *blocks,
                         int64_t bbs, int64_t nsq, int64_t g0, int64_t g1,
                         const uint8_t *const *luts, int nq,
                         const uint16_t *thr, int cap, int64_t *hits,
                         uint16_t *sums, uint32_t *masks, int64_t *next) {
    const size_t bsz = vdx_fs_block_size(nsq, bbs);
    const int64_t gpb = bbs / 32;
    int nh = 0;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = blocks + (size_t)(g / gpb) * bsz + (size_t)(g % gpb) * 32;
        uint16_t *s = sums + (size_t)32 * nh * nq;
        uint32_t *m = masks + (size_t)nh * nq;
        multi(grp, (size_t)bbs, luts, nq, nsq, thr, s, m);
        uint32_t any = 0;
        for (int j = 0; j < nq; j++) any |= m[j];
        if (!any) continue;
        hits[nh++] = g;
        if (nh == cap) {
            *next = g + 1;
            return nh;
        }
    }
    *next = g1;
    return nh;
}

static int scan_run_scalar(const uint8_t *blocks, int64_t bbs, int64_t nsq,
                           int64_t g0, int64_t g1, const uint8_t *const *luts,
                           int nq, const uint16_t *thr, int cap,
                           int64_t *hits, uint16_t *sums, uint32_t *masks,
                           int64_t *next) {
    return vdx_fs_scan_run_with(scan32_multi_scalar, blocks, bbs, nsq, g0, g1,
                                luts, nq, thr, cap, hits, sums, masks, next);
}

const vdx_fs_kernels vdx_fs_kernels_scalar = {"scalar", scan32_scalar,
                                              scan32_multi_scalar,
                                              scan_run_scalar};

static const vdx_fs_kernels *fs_table(const char *name) {
    if (!strcmp(name, "avx512")) return &vdx_fs_kernels_avx512;
    if (!strcmp(name, "avx2")) return &vdx_fs_kernels_avx2;
    return &vdx_fs_kernels_scalar;
}

const vdx_fs_kernels *vdx_fs_kernels_get(void) {
    return fs_table(vdx_kernels_get()->name);
}

const vdx_fs_kernels *vdx_fs_kernels_level(const char *name) {
    if (!name || !vdx_kernels_level(name)) return NULL;
    return fs_table(name);
}
