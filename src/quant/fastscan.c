/*
 * fastscan.c — packing of 4-bit PQ codes into FAISS's fast-scan blocks,
 * quantization of query tables, the scalar reference kernel and the
 * dispatch of the SIMD ones (fastscan_avx2.c, fastscan_avx512.c).  See
 * fastscan.h for the layout and for why the 16-bit sums are lower bounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void vdx_fs_quantize(const float *table, int64_t M, int64_t nsq,
                     vdx_fs_lut *lut) {
    /* the scale: the 90th percentile of the per-sub-quantizer ranges (of
     * the first 512 sub-quantizers), so that a few wide sub-quantizers
     * saturate instead of flattening all the others */
    float r[512] = {0}, widest = 0, bias = 0;
    const int64_t nr = M < 512 ? M : 512;
    for (int64_t m = 0; m < M; m++) {
        const float *t = table + m * 16;
        float lo = t[0], hi = t[0];
        for (int j = 1; j < 16; j++) {
            lo = t[j] < lo ? t[j] : lo;
            hi = t[j] > hi ? t[j] : hi;
        }
        if (m < nr) r[m] = hi - lo;
        widest = hi - lo > widest ? hi - lo : widest;
    }
    if (nr <= 64) { /* the usual M: an insertion sort beats qsort's calls */
        for (int64_t i = 1; i < nr; i++) {
            float v = r[i];
            int64_t j = i;
            for (; j > 0 && r[j - 1] > v; j--) r[j] = r[j - 1];
            r[j] = v;
        }
    } else {
        qsort(r, (size_t)nr, sizeof(float), cmp_float);
    }
    float ref = r[(nr - 1) * 9 / 10];
    if (!(ref > 0)) ref = widest;
    if (!(ref > 0)) ref = 1;
    const float inv = 255.0f / ref;
    for (int64_t m = 0; m < M; m++) {
        const float *t = table + m * 16;
        float lo = t[0];
        for (int j = 1; j < 16; j++) lo = t[j] < lo ? t[j] : lo;
        bias += lo;
        uint8_t *q = lut->q + m * 16;
        for (int j = 0; j < 16; j++) {
            float v = (t[j] - lo) * inv + 0.5f;
            /* NaN (inf - inf from overflowing tables of absurd centroids)
             * saturates like any entry too wide for the scale */
            q[j] = !(v < 255.0f) ? 255 : v > 0 ? (uint8_t)v : 0;
        }
    }
    for (int64_t m = M; m < nsq; m++) memset(lut->q + m * 16, 0, 16);
    /* the widest saturating sub-quantizers, widest first */
    lut->nwide = 0;
    for (int64_t m = 0; m < M; m++) {
        const float *t = table + m * 16;
        float lo = t[0], hi = t[0];
        for (int j = 1; j < 16; j++) {
            lo = t[j] < lo ? t[j] : lo;
            hi = t[j] > hi ? t[j] : hi;
        }
        float w = hi - lo;
        if (!(w > 2 * ref)) continue;
        int pos = lut->nwide;
        if (pos == VDX_FS_MAX_WIDE) {
            const float *tl = table + lut->wide[pos - 1] * 16;
            float l2 = tl[0], h2 = tl[0];
            for (int j = 1; j < 16; j++) {
                l2 = tl[j] < l2 ? tl[j] : l2;
                h2 = tl[j] > h2 ? tl[j] : h2;
            }
            if (!(w > h2 - l2)) continue;
            pos--;
        } else {
            lut->nwide++;
        }
        lut->wide[pos] = m;
        lut->wide_min[pos] = lo;
        /* keep the list ordered by width (insertion step) */
        for (int i = pos; i > 0; i--) {
            const float *ta = table + lut->wide[i - 1] * 16;
            float la = ta[0], ha = ta[0];
            for (int j = 1; j < 16; j++) {
                la = ta[j] < la ? ta[j] : la;
                ha = ta[j] > ha ? ta[j] : ha;
            }
            if (ha - la >= w) break;
            int64_t tm = lut->wide[i]; lut->wide[i] = lut->wide[i - 1]; lut->wide[i - 1] = tm;
            float tf = lut->wide_min[i]; lut->wide_min[i] = lut->wide_min[i - 1]; lut->wide_min[i - 1] = tf;
        }
    }
    lut->bias = bias;
    lut->scale = ref / 255.0f;
    lut->inv_scale = inv;
    lut->M = M;
    lut->nsq = nsq;
}

int32_t vdx_fs_threshold(const vdx_fs_lut *lut, float top) {
    if (!(top < INFINITY)) return 65535;
    /* sum_m t >= bias + scale * (s - M / 2): keep s <= (top - bias) / scale
     * + M / 2, plus two units for the float rounding of the tables and sums */
    double x = ((double)top - (double)lut->bias) * (double)lut->inv_scale +
               0.5 * (double)lut->M + 2.0;
    if (x != x) return 65535; /* NaN (absurd tables): admit, re-score */
    if (x < 0) return -1;
    if (x >= 65535.0) return 65535;
    return (int32_t)x;
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

const vdx_fs_kernels vdx_fs_kernels_scalar = {"scalar", scan32_scalar,
                                              scan32_multi_scalar};

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
