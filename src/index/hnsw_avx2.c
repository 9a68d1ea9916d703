/*
 * hnsw_avx2.c — the level-0 walk of HNSW over flat vectors, compiled for
 * AVX2 + FMA (chosen at run time by hnsw.c when the dispatched kernels are
 * AVX2 or better; hnsw.c's generic walk is the reference and the path under
 * VECDEX_SIMD=scalar).
 *
 * Same algorithm as hnsw.c's search_level0 — best-first search with a beam
 * of ef — arranged for the memory system: when a node is expanded, its
 * unvisited neighbours are collected first and all their vectors
 * prefetched, the link row of the next candidate is prefetched, then the
 * distances are computed four at a time (four independent FMA chains that
 * share the query loads, one horizontal sum for the four).
 */
#include <immintrin.h>
#include <string.h>

#include "hnsw.h"

static inline __m256i tail_mask(size_t r) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                  0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

static inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline void hsum4(float *out, __m256 a, __m256 b, __m256 c, __m256 e) {
    __m256 ab = _mm256_hadd_ps(a, b), ce = _mm256_hadd_ps(c, e);
    __m256 s = _mm256_hadd_ps(ab, ce);
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    _mm_storeu_ps(out, r);
}

/* keys (L2 distance or -inner product) of q against y0..y3 */
static inline void key4(float *out, const float *q, const float *y0,
                        const float *y1, const float *y2, const float *y3,
                        size_t d, int ip) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    if (ip) {
        for (; i + 8 <= d; i += 8) {
            __m256 x = _mm256_loadu_ps(q + i);
            s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(y0 + i), s0);
            s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(y1 + i), s1);
            s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(y2 + i), s2);
            s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(y3 + i), s3);
        }
        if (i < d) {
            __m256i m = tail_mask(d - i);
            __m256 x = _mm256_maskload_ps(q + i, m);
            s0 = _mm256_fmadd_ps(x, _mm256_maskload_ps(y0 + i, m), s0);
            s1 = _mm256_fmadd_ps(x, _mm256_maskload_ps(y1 + i, m), s1);
            s2 = _mm256_fmadd_ps(x, _mm256_maskload_ps(y2 + i, m), s2);
            s3 = _mm256_fmadd_ps(x, _mm256_maskload_ps(y3 + i, m), s3);
        }
        hsum4(out, s0, s1, s2, s3);
        for (int j = 0; j < 4; j++) out[j] = -out[j];
        return;
    }
    for (; i + 8 <= d; i += 8) {
        __m256 x = _mm256_loadu_ps(q + i);
        __m256 t0 = _mm256_sub_ps(x, _mm256_loadu_ps(y0 + i));
        __m256 t1 = _mm256_sub_ps(x, _mm256_loadu_ps(y1 + i));
        __m256 t2 = _mm256_sub_ps(x, _mm256_loadu_ps(y2 + i));
        __m256 t3 = _mm256_sub_ps(x, _mm256_loadu_ps(y3 + i));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    if (i < d) {
        __m256i m = tail_mask(d - i);
        __m256 x = _mm256_maskload_ps(q + i, m);
        __m256 t0 = _mm256_sub_ps(x, _mm256_maskload_ps(y0 + i, m));
        __m256 t1 = _mm256_sub_ps(x, _mm256_maskload_ps(y1 + i, m));
        __m256 t2 = _mm256_sub_ps(x, _mm256_maskload_ps(y2 + i, m));
        __m256 t3 = _mm256_sub_ps(x, _mm256_maskload_ps(y3 + i, m));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    hsum4(out, s0, s1, s2, s3);
}

static inline float key1(const float *q, const float *y, size_t d, int ip) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 a0 = _mm256_loadu_ps(q + i), a1 = _mm256_loadu_ps(q + i + 8);
        __m256 b0 = _mm256_loadu_ps(y + i), b1 = _mm256_loadu_ps(y + i + 8);
        if (ip) {
            s0 = _mm256_fmadd_ps(a0, b0, s0);
            s1 = _mm256_fmadd_ps(a1, b1, s1);
        } else {
            __m256 t0 = _mm256_sub_ps(a0, b0), t1 = _mm256_sub_ps(a1, b1);
            s0 = _mm256_fmadd_ps(t0, t0, s0);
            s1 = _mm256_fmadd_ps(t1, t1, s1);
        }
    }
    for (; i < d; i += 8) {
        __m256i m = tail_mask(d - i < 8 ? d - i : 8);
        __m256 a = _mm256_maskload_ps(q + i, m), b = _mm256_maskload_ps(y + i, m);
        if (ip) {
            s0 = _mm256_fmadd_ps(a, b, s0);
        } else {
            __m256 t = _mm256_sub_ps(a, b);
            s0 = _mm256_fmadd_ps(t, t, s0);
        }
    }
    float r = hsum(_mm256_add_ps(s0, s1));
    return ip ? -r : r;
}

static inline void prefetch_vec(const float *v, size_t bytes) {
    const char *p = (const char *)v;
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

static inline void prefetch_rest(const float *v, size_t from, size_t bytes) {
    const char *p = (const char *)v;
    for (size_t o = from; o < bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

int vdx_hnsw_l0_flat_avx2(const vdx_hnsw_l0_args *a, vdx_hnsw_cand ep) {
    const int32_t *links0 = a->links0;
    const size_t stride = (size_t)a->stride, d = a->d;
    const float *xb = a->xb, *q = a->q;
    const int ip = a->ip, ef = a->ef;
    const vdx_selector *sel = a->sel;
    uint16_t *vis = a->vis;
    const uint16_t tag = a->tag;
    vdx_hnsw_cand *cand = *a->cand, *res = a->res;
    int candcap = *a->candcap, nc = 0, nr = 0;
    /* prefetch at most this much of each vector (the hardware prefetcher
     * follows the rest) */
    const size_t pf = d * sizeof(float) < 256 ? d * sizeof(float) : 256;
    int32_t nbuf[2 * VDX_HNSW_M_MAX], rbuf[1 + 2 * VDX_HNSW_M_MAX];
    float kbuf[2 * VDX_HNSW_M_MAX + 4];
    int rc = 0;
    int64_t ndis = 0, nhops = 0;

    vis[ep.id] = tag;
    cand[nc++] = ep;
    if (vdx_sel_member(sel, ep.id)) maxheap_push(res, &nr, ep);
    while (nc > 0) {
        vdx_hnsw_cand cur = cand[0];
        if (nr == ef && cur.d > res[0].d) break;
        minheap_pop(cand, &nc);
        nhops++;
        if (nc && links0) {
            _mm_prefetch((const char *)(links0 + (size_t)cand[0].id * stride),
                         _MM_HINT_T0);
        } else if (nc) {
            /* a mapped graph: the next candidate's level-0 row where the
             * file has it (level 0 leads each node's links; a prefetch
             * never faults, the bound only keeps it inside the map) */
            uint64_t off;
            memcpy(&off, a->g->m_off + (size_t)cand[0].id * 8, 8);
            if (off < a->g->m_nnb)
                _mm_prefetch((const char *)(a->g->m_nb + off * 4), _MM_HINT_T0);
        }
        const int32_t *row = links0 ? links0 + (size_t)cur.id * stride
                                    : vdx_hnsw_mapped_row(a->g, cur.id, 0, rbuf);
        int cnt = row[0], m = 0;
        for (int j = 1; j <= cnt; j++) {
            int32_t nb = row[j];
            if (vis[nb] == tag) continue;
            vis[nb] = tag;
            nbuf[m++] = nb;
            prefetch_vec(xb + (size_t)nb * d, pf);
        }
        int j = 0;
        /* long vectors: the rest of each vector (past the first pf bytes)
         * is fetched one group of four ahead of its distances */
        const size_t vb = d * sizeof(float);
        if (vb > pf)
            for (int t = 0; t < 4 && t < m; t++)
                prefetch_rest(xb + (size_t)nbuf[t] * d, pf, vb);
        for (; j + 4 <= m; j += 4) {
            if (vb > pf)
                for (int t = j + 4; t < j + 8 && t < m; t++)
                    prefetch_rest(xb + (size_t)nbuf[t] * d, pf, vb);
            key4(kbuf + j, q, xb + (size_t)nbuf[j] * d, xb + (size_t)nbuf[j + 1] * d,
                 xb + (size_t)nbuf[j + 2] * d, xb + (size_t)nbuf[j + 3] * d, d, ip);
        }
        for (; j < m; j++) kbuf[j] = key1(q, xb + (size_t)nbuf[j] * d, d, ip);
        ndis += m;
        for (j = 0; j < m; j++) {
            float dk = kbuf[j];
            if (nr < ef || dk < res[0].d) {
                vdx_hnsw_cand v = {dk, nbuf[j]};
                if (nc == candcap) {
                    int ncap = candcap * 2;
                    vdx_hnsw_cand *p = vdx_realloc_array(cand, (size_t)ncap, sizeof *p);
                    if (!p) {
                        rc = -1;
                        goto out;
                    }
                    cand = p;
                    candcap = ncap;
                }
                minheap_push(cand, &nc, v);
                if (vdx_sel_member(sel, v.id)) {
                    if (nr == ef) maxheap_pop(res, &nr);
                    maxheap_push(res, &nr, v);
                }
            }
        }
    }
    rc = nr;
out:
    *a->ndis += ndis;
    *a->nhops += nhops;
    *a->cand = cand;
    *a->candcap = candcap;
    return rc;
}

void vdx_hnsw_keys_flat_avx2(const float *q, const float *xb, size_t d, int ip,
                             const int32_t *ids, int n, float *out) {
    /* random rows: start the first fetches before the first distance */
    for (int t = 0; t < n && t < 8; t++) _mm_prefetch((const char *)(xb + (size_t)ids[t] * d), _MM_HINT_T0);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        for (int t = j + 8; t < j + 12 && t < n; t++)
            _mm_prefetch((const char *)(xb + (size_t)ids[t] * d), _MM_HINT_T0);
        key4(out + j, q, xb + (size_t)ids[j] * d, xb + (size_t)ids[j + 1] * d,
             xb + (size_t)ids[j + 2] * d, xb + (size_t)ids[j + 3] * d, d, ip);
    }
    for (; j < n; j++) out[j] = key1(q, xb + (size_t)ids[j] * d, d, ip);
}
