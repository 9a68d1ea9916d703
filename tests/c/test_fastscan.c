/*
 * test_fastscan.c — the 4-bit fast-scan kernels (src/quant/fastscan*.c),
 * IndexPQFastScan and IndexIVFPQFastScan.  References: the scalar kernel
 * (every SIMD level must equal it bit for bit), an independent statement of
 * FAISS's block layout, and IndexPQ / IndexIVFPQ with the same centroids
 * (fast-scan results must equal the float-table results on the same codes).
 */
#include "test.h"
#include "index/index_fastscan.h"
#include "index/index_pq.h"
#include "common/topk.h"
#include "io_test_util.h"

static uint64_t rng_state = 88172645463325252ULL;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* every level the machine runs equals the scalar kernel: sums and masks */
static void test_kernels_vs_scalar(void) {
    const char *levels[] = {"avx2", "avx512"};
    int64_t nsqs[] = {2, 4, 6, 16, 32, 34, 64, 258, 300};
    for (int li = 0; li < 2; li++) {
        const vdx_fs_kernels *K = vdx_fs_kernels_level(levels[li]);
        if (!K) {
            printf("     (level %s not available here)\n", levels[li]);
            continue;
        }
        for (size_t ni = 0; ni < sizeof nsqs / sizeof nsqs[0]; ni++) {
            int64_t nsq = nsqs[ni], bbs = 64;
            uint8_t *blk = malloc((size_t)(nsq / 2 * bbs));
            uint8_t *lut = vdx_aligned_alloc((size_t)nsq, 16);
            for (int rep = 0; rep < 20; rep++) {
                for (int64_t i = 0; i < nsq / 2 * bbs; i++) blk[i] = (uint8_t)rnd();
                int sat = rep % 3 == 0; /* many 255s: 16-bit saturation */
                for (int64_t i = 0; i < nsq * 16; i++)
                    lut[i] = sat ? (uint8_t)(255 - (rnd() & 3)) : (uint8_t)rnd();
                uint16_t thr = (uint16_t)(rep == 1 ? 65535 : rnd() % (nsq * 200));
                for (int g = 0; g < 2; g++) {
                    uint16_t s0[32], s1[32];
                    uint32_t m0 = vdx_fs_kernels_scalar.scan32(blk + 32 * g, (size_t)bbs, lut, nsq, thr, s0);
                    uint32_t m1 = K->scan32(blk + 32 * g, (size_t)bbs, lut, nsq, thr, s1);
                    CHECK(m0 == m1);
                    CHECK(memcmp(s0, s1, sizeof s0) == 0);
                    /* several queries per pass: each as alone */
                    for (int nq = 1; nq <= VDX_FS_MAX_QBS; nq++) {
                        const uint8_t *luts[VDX_FS_MAX_QBS];
                        uint8_t *extra = vdx_aligned_alloc((size_t)nsq * VDX_FS_MAX_QBS, 16);
                        uint16_t thr3[VDX_FS_MAX_QBS], sm[32 * VDX_FS_MAX_QBS];
                        uint32_t mm[VDX_FS_MAX_QBS];
                        for (int j = 0; j < nq; j++) {
                            luts[j] = extra + (size_t)j * nsq * 16;
                            for (int64_t i = 0; i < nsq * 16; i++)
                                extra[j * nsq * 16 + i] = (uint8_t)rnd();
                            thr3[j] = (uint16_t)(rnd() % (nsq * 200));
                        }
                        K->scan32_multi(blk + 32 * g, (size_t)bbs, luts, nq, nsq, thr3, sm, mm);
                        for (int j = 0; j < nq; j++) {
                            uint32_t mr = vdx_fs_kernels_scalar.scan32(blk + 32 * g, (size_t)bbs, luts[j], nsq, thr3[j], s0);
                            CHECK(mr == mm[j]);
                            CHECK(memcmp(s0, sm + 32 * j, sizeof s0) == 0);
                        }
                        vdx_aligned_free(extra);
                    }
                }
            }
            free(blk);
            vdx_aligned_free(lut);
        }
    }
}

/* scan_run of every level equals the scalar one: the same hit groups in
 * the same order, their sums and masks, and the same resume point, for
 * block sizes where a group's neighbour is in the same block or the next,
 * odd runs (a lone last group), runs that start mid-block, every cap */
static void test_run_vs_scalar(void) {
    const char *levels[] = {"avx2", "avx512"};
    const int64_t nsqs[] = {2, 6, 32, 64, 258}, bbss[] = {32, 64, 96, 128};
    for (int li = 0; li < 2; li++) {
        const vdx_fs_kernels *K = vdx_fs_kernels_level(levels[li]);
        if (!K) continue;
        for (size_t ni = 0; ni < sizeof nsqs / sizeof nsqs[0]; ni++) {
            for (size_t bi = 0; bi < sizeof bbss / sizeof bbss[0]; bi++) {
                const int64_t nsq = nsqs[ni], bbs = bbss[bi], nblk = 5;
                const int64_t ng = nblk * bbs / 32;
                const size_t bsz = vdx_fs_block_size(nsq, bbs);
                uint8_t *blk = malloc(bsz * (size_t)nblk);
                uint8_t *lut = vdx_aligned_alloc((size_t)nsq * VDX_FS_MAX_QBS, 16);
                for (size_t i = 0; i < bsz * (size_t)nblk; i++) blk[i] = (uint8_t)rnd();
                for (int64_t i = 0; i < nsq * 16 * VDX_FS_MAX_QBS; i++) lut[i] = (uint8_t)rnd();
                for (int nq = 1; nq <= VDX_FS_MAX_QBS; nq++) {
                    const uint8_t *luts[VDX_FS_MAX_QBS];
                    uint16_t thr[VDX_FS_MAX_QBS];
                    for (int rep = 0; rep < 6; rep++) {
                        for (int j = 0; j < nq; j++) {
                            luts[j] = lut + (size_t)j * nsq * 16;
                            /* around the mean sum (nsq * 127.5): some hits */
                            thr[j] = (uint16_t)(nsq * 110 + rnd() % (nsq * 20 + 1));
                        }
                        if (rep == 5) thr[0] = 65535; /* every group a hit */
                        int64_t g0 = rnd() % 3, g1 = ng - (int64_t)(rnd() % 2);
                        int cap = 1 + (int)(rnd() % VDX_FS_RUN_HITS);
                        int64_t ga = g0, gb = g0;
                        int nhits = 0;
                        while (ga < g1) {
                            int64_t ha[VDX_FS_RUN_HITS], hb[VDX_FS_RUN_HITS], na, nb;
                            uint16_t sa[32 * VDX_FS_MAX_QBS * VDX_FS_RUN_HITS];
                            uint16_t sb[32 * VDX_FS_MAX_QBS * VDX_FS_RUN_HITS];
                            uint32_t ma[VDX_FS_MAX_QBS * VDX_FS_RUN_HITS];
                            uint32_t mb[VDX_FS_MAX_QBS * VDX_FS_RUN_HITS];
                            int ka = vdx_fs_kernels_scalar.scan_run(blk, bbs, nsq, ga, g1, luts, nq,
                                                                    thr, cap, ha, sa, ma, &na);
                            int kb = K->scan_run(blk, bbs, nsq, gb, g1, luts, nq, thr, cap,
                                                 hb, sb, mb, &nb);
                            CHECK(ka == kb);
                            CHECK(na == nb);
                            if (ka != kb || na == ga) break;
                            CHECK(memcmp(ha, hb, (size_t)ka * sizeof ha[0]) == 0);
                            CHECK(memcmp(ma, mb, (size_t)ka * nq * sizeof ma[0]) == 0);
                            CHECK(memcmp(sa, sb, (size_t)ka * nq * 32 * sizeof sa[0]) == 0);
                            nhits += ka;
                            ga = na;
                            gb = nb;
                        }
                        if (rep == 5) CHECK(nhits == g1 - g0);
                    }
                }
                free(blk);
                vdx_aligned_free(lut);
            }
        }
    }
}

/* the scalar kernel against a direct sum over vdx_fs_get */
static void test_scalar_kernel_sums(void) {
    const int64_t M = 7, nsq = 8, bbs = 32, n = 32;
    uint8_t codes[32 * 4], blk[4 * 32];
    memset(blk, 0, sizeof blk);
    for (size_t i = 0; i < sizeof codes; i++) codes[i] = (uint8_t)rnd();
    vdx_fs_pack(codes, n, M, bbs, nsq, blk, 0);
    uint8_t *lut = vdx_aligned_alloc((size_t)nsq, 16);
    for (int64_t i = 0; i < nsq * 16; i++) lut[i] = (uint8_t)(rnd() % 200);
    memset(lut + M * 16, 0, 16);
    uint16_t s[32];
    vdx_fs_kernels_scalar.scan32(blk, (size_t)bbs, lut, nsq, 65535, s);
    for (int64_t i = 0; i < n; i++) {
        uint32_t ref = 0;
        for (int64_t m = 0; m < M; m++)
            ref += lut[m * 16 + ((codes[i * 4 + m / 2] >> (4 * (m & 1))) & 15)];
        CHECK(s[i] == ref);
    }
    vdx_aligned_free(lut);
}

/* FAISS's layout, stated independently: for pair p and 32-vector group g,
 * byte j < 16 holds vector perm(j) (low nibble) and perm(j) + 16 (high) of
 * sub-quantizer 2p, byte 16 + j the same for 2p + 1; perm = 0,8,1,9,... */
static void test_layout(void) {
    const int64_t M = 6, nsq = 6, bbs = 64, n = 100;
    const int64_t cs = (M + 1) / 2;
    uint8_t *codes = malloc((size_t)(n * cs));
    for (int64_t i = 0; i < n * cs; i++) codes[i] = (uint8_t)rnd();
    int64_t nb = (n + bbs - 1) / bbs;
    size_t bsz = vdx_fs_block_size(nsq, bbs);
    uint8_t *blk = calloc((size_t)nb, bsz);
    vdx_fs_pack(codes, n, M, bbs, nsq, blk, 0);
    static const int perm[16] = {0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15};
    for (int64_t i = 0; i < n; i++) {
        int64_t b = i / bbs, w = i % bbs, g = w / 32, u = w % 32;
        int j = 0;
        while (perm[j] != u % 16) j++;
        for (int64_t m = 0; m < M; m++) {
            uint8_t want = (codes[i * cs + m / 2] >> (4 * (m & 1))) & 15;
            const uint8_t *byte = blk + b * bsz + (m / 2) * bbs + g * 32 + (m & 1) * 16 + j;
            uint8_t got = u >= 16 ? (uint8_t)(*byte >> 4) : (uint8_t)(*byte & 15);
            CHECK(got == want);
            CHECK(vdx_fs_get(blk, bbs, nsq, i, m) == want);
        }
        uint8_t back[8];
        vdx_fs_unpack_1(blk, bbs, nsq, M, i, back);
        CHECK(memcmp(back, codes + i * cs, (size_t)cs) == 0);
    }
    free(codes);
    free(blk);
}

/* the tutorial's data: uniform [0, 1) with column 0 spread over 0..scale */
static float *make_data(int64_t n, int64_t d, uint64_t seed, float spread) {
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    test_rand_fill(x, (size_t)(n * d), seed);
    for (int64_t i = 0; i < n; i++) x[i * d] += spread * (float)i / (float)n;
    return x;
}

/* IndexPQ(d, M, 4) with the centroids of pq, holding the same vectors */
static vdx_index *twin_pq(const vdx_pq *pq, vdx_metric metric, int64_t n,
                          const float *x) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_pq_new(vdx_pq_d(pq), vdx_pq_M(pq), 4, metric, &ix));
    CHECK_OK(vdx_pq_set_centroids(vdx_index_pq_quantizer(ix), vdx_pq_centroids(pq)));
    if (n) CHECK_OK(vdx_index_add(ix, n, x));
    return ix;
}

/* Fast-scan results (D1, I1) against the float-table search of the same
 * codes (D0, I0): the same number of results; rank by rank, never better
 * than the exact ones (the returned distances are the float-table
 * distances of the returned ids, so this fails on a wrong distance as on
 * a wrong ordering); where an id is in both, the same distance; and at
 * least min_share of the ids in common. */
static int near_results(int64_t nq, int64_t k, int ip, const float *D0,
                        const vdx_idx_t *I0, const float *D1,
                        const vdx_idx_t *I1, double min_share) {
    int ok = 1;
    int64_t common = 0, total = 0;
    for (int64_t q = 0; q < nq; q++) {
        const float *d0 = D0 + q * k, *d1 = D1 + q * k;
        const vdx_idx_t *i0 = I0 + q * k, *i1 = I1 + q * k;
        for (int64_t j = 0; j < k; j++) {
            float tol = 1e-4f * (fabsf(d0[j]) + 1);
            if (i0[j] < 0) {
                if (i1[j] != -1) ok = 0;
                continue;
            }
            total++;
            if (i1[j] < 0) {
                ok = 0;
                continue;
            }
            if (ip ? d1[j] > d0[j] + tol : d1[j] < d0[j] - tol) ok = 0;
            for (int64_t jj = 0; jj < k; jj++) {
                if (i0[jj] != i1[j]) continue;
                common++;
                if (fabsf(d0[jj] - d1[j]) > 1e-4f * (fabsf(d0[jj]) + 1)) ok = 0;
            }
        }
    }
    return ok && (double)common >= min_share * (double)total;
}

static int cmp_idx(const void *a, const void *b) {
    vdx_idx_t x = *(const vdx_idx_t *)a, y = *(const vdx_idx_t *)b;
    return (x > y) - (x < y);
}

/* search is close to IndexPQ's float-table search on the same codes */
static void test_pqfs_vs_pq(void) {
    struct { int64_t d, M, bbs, n; float spread; vdx_metric metric; } cases[] = {
        {16, 8, 32, 1000, 0, VDX_METRIC_L2},
        {32, 16, 32, 2000, 100, VDX_METRIC_L2}, /* the tutorial's spread */
        {20, 5, 64, 777, 0, VDX_METRIC_L2},     /* odd M, bbs 64, tail */
        {16, 8, 96, 1234, 0, VDX_METRIC_INNER_PRODUCT},
        {24, 12, 32, 31, 10, VDX_METRIC_INNER_PRODUCT}, /* fewer than 32 */
    };
    const char *levels[] = {"scalar", "avx2", "avx512"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t d = cases[c].d, n = cases[c].n, nq = 20, k = 10;
        float *x = make_data(n, d, 7 + c, cases[c].spread);
        float *xt = make_data(2000, d, 70 + c, cases[c].spread);
        float *xq = make_data(nq, d, 700 + c, cases[c].spread * 0.1f);
        vdx_index *fs = NULL;
        CHECK_OK(vdx_index_pq_fastscan_new(d, cases[c].M, 4, cases[c].metric, cases[c].bbs, &fs));
        CHECK_OK(vdx_index_train(fs, 2000, xt));
        CHECK_OK(vdx_index_add(fs, n, x));
        vdx_index *pq = twin_pq(vdx_index_fastscan_pq(fs), cases[c].metric, n, x);
        float *D0 = malloc(sizeof(float) * (size_t)(nq * k)), *D1 = malloc(sizeof(float) * (size_t)(nq * k));
        vdx_idx_t *I0 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * k)), *I1 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * k));
        const int ip = cases[c].metric == VDX_METRIC_INNER_PRODUCT;
        CHECK_OK(vdx_index_search(pq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        CHECK(near_results(nq, k, ip, D0, I0, D1, I1, 0.9));
        /* the kernels of every level find the same candidates as the
         * search (which calls the dispatched one) */
        const vdx_pqfs *p = (const vdx_pqfs *)(const void *)fs;
        for (int li = 0; li < 3; li++) {
            const vdx_fs_kernels *K = vdx_fs_kernels_level(levels[li]);
            if (!K) continue;
            float table[64 * 16];
            uint8_t *q = vdx_aligned_alloc((size_t)p->nsq, 16);
            for (int64_t qi = 0; qi < nq; qi++) {
                float hk[16]; /* vdx_fs_res_cap(k) */
                int64_t hr[16];
                vdx_idx_t want[10];
                vdx_fs_res res;
                CHECK(vdx_fs_res_cap(k) <= 16);
                vdx_fs_res_init(&res, hk, hr, k);
                vdx_pq_table(&p->pq, cases[c].metric, xq + qi * d, table);
                if (ip)
                    for (int64_t i = 0; i < p->pq.M * 16; i++) table[i] = -table[i];
                vdx_fs_lut lut;
                lut.q = q;
                vdx_fs_quantize(table, p->pq.M, p->nsq, &lut);
                vdx_fs_scan_blocks(K, p->codes, n, p->bbs, p->nsq, &lut, NULL, 0, NULL, &res);
                memcpy(want, I1 + qi * k, sizeof want);
                qsort(hr, (size_t)k, sizeof hr[0], cmp_idx);
                qsort(want, (size_t)k, sizeof want[0], cmp_idx);
                CHECK(memcmp(hr, want, sizeof want) == 0);
            }
            vdx_aligned_free(q);
        }
        /* selectors */
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_range(n / 4, n / 2, &sel));
        vdx_search_params prm;
        vdx_search_params_init(&prm);
        prm.sel = sel;
        CHECK_OK(vdx_index_search(pq, nq, xq, k, &prm, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, &prm, D1, I1));
        CHECK(near_results(nq, k, ip, D0, I0, D1, I1, 0.9));
        for (int64_t i = 0; i < nq * k; i++) CHECK(I1[i] == -1 || (I1[i] >= n / 4 && I1[i] < n / 2));
        /* remove_ids compacts as IndexPQ does; add after search */
        int64_t r0 = 0, r1 = 0;
        CHECK_OK(vdx_index_remove_ids(pq, sel, &r0));
        CHECK_OK(vdx_index_remove_ids(fs, sel, &r1));
        CHECK(r0 == r1 && vdx_index_ntotal(fs) == n - r1);
        CHECK_OK(vdx_index_add(pq, 100, xt));
        CHECK_OK(vdx_index_add(fs, 100, xt));
        CHECK_OK(vdx_index_search(pq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        CHECK(near_results(nq, k, ip, D0, I0, D1, I1, 0.9));
        /* reconstruct equals IndexPQ's decode */
        float r_a[64], r_b[64];
        CHECK_OK(vdx_index_reconstruct(pq, 3, r_a));
        CHECK_OK(vdx_index_reconstruct(fs, 3, r_b));
        CHECK(memcmp(r_a, r_b, sizeof(float) * (size_t)d) == 0);
        /* range search equals IndexPQ's */
        vdx_range_result *ra = NULL, *rb = NULL;
        float radius = cases[c].metric == VDX_METRIC_L2 ? D0[5] : D0[5];
        CHECK_OK(vdx_index_range_search(pq, nq, xq, radius, NULL, &ra));
        CHECK_OK(vdx_index_range_search(fs, nq, xq, radius, NULL, &rb));
        if (ra && rb) {
            CHECK(ra->lims[nq] == rb->lims[nq]);
            for (int64_t i = 0; i < nq + 1; i++) CHECK(ra->lims[i] == rb->lims[i]);
        }
        vdx_range_result_free(ra);
        vdx_range_result_free(rb);
        vdx_selector_free(sel);
        vdx_index_free(pq);
        vdx_index_free(fs);
        free(D0); free(D1); free(I0); free(I1);
        free(x); free(xt); free(xq);
    }
}

/* IVF fast scan: by_residual off equals IndexPQ with nprobe = nlist; with
 * by_residual on equals IndexIVFPQ trained identically */
static void test_ivf(void) {
    const int64_t d = 32, M = 16, nlist = 16, n = 3000, nq = 15, k = 10;
    float *x = make_data(n, d, 11, 100);
    float *xq = make_data(nq, d, 12, 10);
    for (int mi = 0; mi < 2; mi++) {
        vdx_metric metric = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        float D0[150], D1[150];
        vdx_idx_t I0[150], I1[150];
        /* by_residual = 0 */
        vdx_index *q = NULL, *fs = NULL;
        CHECK_OK(vdx_index_flat_new(d, metric, &q));
        CHECK_OK(vdx_index_ivfpq_fastscan_new(q, d, nlist, M, 4, metric, 32, &fs));
        CHECK(vdx_index_fastscan_by_residual(fs) == 0);
        CHECK_OK(vdx_index_train(fs, n, x));
        CHECK_OK(vdx_index_add(fs, n, x));
        vdx_index *pq = twin_pq(vdx_index_fastscan_pq(fs), metric, n, x);
        CHECK_OK(vdx_index_ivf_set_nprobe(fs, nlist));
        const int ip = metric == VDX_METRIC_INNER_PRODUCT;
        CHECK_OK(vdx_index_search(pq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        CHECK(near_results(nq, k, ip, D0, I0, D1, I1, 0.9));
        /* nprobe through params, selectors, remove_ids, add after search */
        vdx_search_params prm;
        vdx_search_params_init(&prm);
        prm.nprobe = 3;
        CHECK_OK(vdx_index_search(fs, nq, xq, k, &prm, D1, I1));
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_range(0, n / 2, &sel));
        prm.nprobe = nlist;
        prm.sel = sel;
        CHECK_OK(vdx_index_search(pq, nq, xq, k, &prm, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, &prm, D1, I1));
        CHECK(near_results(nq, k, ip, D0, I0, D1, I1, 0.9));
        int64_t nr = 0;
        CHECK_OK(vdx_index_remove_ids(fs, sel, &nr));
        CHECK(nr == n / 2 && vdx_index_ntotal(fs) == n - n / 2);
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        for (int64_t i = 0; i < nq * k; i++) CHECK(I1[i] >= n / 2);
        /* IVF ids are kept: the reference keeps the second half too */
        vdx_selector *all = NULL;
        CHECK_OK(vdx_selector_range(n / 2, n, &all));
        prm.sel = all;
        CHECK_OK(vdx_index_search(pq, nq, xq, k, &prm, D0, I0));
        CHECK(near_results(nq, k, ip, D0, I0, D1, I1, 0.9));
        CHECK_OK(vdx_index_add(fs, n / 2, x)); /* ids n .. */
        CHECK(vdx_index_ntotal(fs) == n);
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        for (int64_t i = 0; i < nq * k; i++) CHECK(I1[i] >= n / 2 && I1[i] < n + n / 2);
        vdx_selector_free(sel);
        vdx_selector_free(all);
        vdx_index_free(pq);
        vdx_index_free(fs);

        /* by_residual = 1 against IndexIVFPQ (same training, same codes) */
        vdx_index *q1 = NULL, *q2 = NULL, *ivfpq = NULL;
        CHECK_OK(vdx_index_flat_new(d, metric, &q1));
        CHECK_OK(vdx_index_flat_new(d, metric, &q2));
        CHECK_OK(vdx_index_ivfpq_fastscan_new(q1, d, nlist, M, 4, metric, 32, &fs));
        CHECK_OK(vdx_index_fastscan_set_by_residual(fs, 1));
        CHECK_OK(vdx_index_ivfpq_new(q2, d, nlist, M, 4, metric, &ivfpq));
        CHECK_OK(vdx_index_train(fs, n, x));
        CHECK_OK(vdx_index_train(ivfpq, n, x));
        CHECK_OK(vdx_index_add(fs, n, x));
        CHECK_OK(vdx_index_add(ivfpq, n, x));
        CHECK_OK(vdx_index_ivf_set_nprobe(fs, 4));
        CHECK_OK(vdx_index_ivf_set_nprobe(ivfpq, 4));
        CHECK_OK(vdx_index_search(ivfpq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        int same = 0;
        for (int64_t i = 0; i < nq * k; i++) same += I0[i] == I1[i];
        CHECK(same >= nq * k * 95 / 100); /* float sums may order ties differently */
        vdx_index_free(ivfpq);
        vdx_index_free(fs);
    }
    free(x);
    free(xq);
}

/* Many equal codes (each vector 40 times): the seeding of a query's
 * first list meets long runs of equal sums; no id may come back twice and
 * the distances stay those of the float-table search, for k under and
 * over VDX_FS_HEAP_MAX. */
static void test_ties(void) {
    const int64_t d = 16, M = 8, nd = 60, rep = 40, n = nd * rep, nq = 9, nlist = 4;
    float *u = make_data(nd, d, 31, 5);
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < n; i++)
        memcpy(x + i * d, u + (i % nd) * d, sizeof(float) * (size_t)d);
    float *xq = make_data(nq, d, 32, 5);
    const int64_t ks[2] = {10, 150};
    float *D0 = malloc(sizeof(float) * (size_t)(nq * 150)), *D1 = malloc(sizeof(float) * (size_t)(nq * 150));
    vdx_idx_t *I0 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * 150)), *I1 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * 150));
    vdx_index *q = NULL, *ivf = NULL;
    CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &q));
    CHECK_OK(vdx_index_ivfpq_fastscan_new(q, d, nlist, M, 4, VDX_METRIC_L2, 32, &ivf));
    CHECK_OK(vdx_index_train(ivf, n, x));
    CHECK_OK(vdx_index_add(ivf, n, x));
    CHECK_OK(vdx_index_ivf_set_nprobe(ivf, nlist));
    vdx_index *pq = twin_pq(vdx_index_fastscan_pq(ivf), VDX_METRIC_L2, n, x);
    for (int ki = 0; ki < 2; ki++) {
        const int64_t k = ks[ki];
        CHECK_OK(vdx_index_search(pq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(ivf, nq, xq, k, NULL, D1, I1));
        CHECK(near_results(nq, k, 0, D0, I0, D1, I1, 0.0));
        for (int64_t qq = 0; qq < nq; qq++) {
            vdx_idx_t *row = I1 + qq * k;
            qsort(row, (size_t)k, sizeof *row, cmp_idx);
            for (int64_t j = 1; j < k; j++) CHECK(row[j] != row[j - 1]);
            /* the k-th distance equals the float-table k-th distance:
             * ties are cut at the same value */
            CHECK(fabsf(D1[qq * k + k - 1] - D0[qq * k + k - 1]) <=
                  1e-4f * (fabsf(D0[qq * k + k - 1]) + 1));
        }
    }
    vdx_index_free(pq);
    vdx_index_free(ivf);
    free(D0); free(D1); free(I0); free(I1);
    free(u); free(x); free(xq);
}

/* k above VDX_FS_HEAP_MAX: the candidates go through the reservoir */
static void test_large_k(void) {
    const int64_t d = 16, M = 8, n = 3000, nq = 7, k = 100, nlist = 8;
    float *x = make_data(n, d, 21, 20);
    float *xq = make_data(nq, d, 22, 2);
    float *D0 = malloc(sizeof(float) * (size_t)(nq * k)), *D1 = malloc(sizeof(float) * (size_t)(nq * k));
    vdx_idx_t *I0 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * k)), *I1 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * k));
    for (int mi = 0; mi < 2; mi++) {
        vdx_metric metric = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *fs = NULL, *q = NULL, *ivf = NULL;
        CHECK_OK(vdx_index_pq_fastscan_new(d, M, 4, metric, 32, &fs));
        CHECK_OK(vdx_index_train(fs, n, x));
        CHECK_OK(vdx_index_add(fs, n, x));
        vdx_index *pq = twin_pq(vdx_index_fastscan_pq(fs), metric, n, x);
        CHECK_OK(vdx_index_search(pq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(fs, nq, xq, k, NULL, D1, I1));
        CHECK(near_results(nq, k, mi, D0, I0, D1, I1, 0.9));
        vdx_index_free(pq);
        CHECK_OK(vdx_index_flat_new(d, metric, &q));
        CHECK_OK(vdx_index_ivfpq_fastscan_new(q, d, nlist, M, 4, metric, 32, &ivf));
        CHECK_OK(vdx_index_train(ivf, n, x));
        CHECK_OK(vdx_index_add(ivf, n, x));
        CHECK_OK(vdx_index_ivf_set_nprobe(ivf, nlist));
        pq = twin_pq(vdx_index_fastscan_pq(ivf), metric, n, x);
        CHECK_OK(vdx_index_search(pq, nq, xq, k, NULL, D0, I0));
        CHECK_OK(vdx_index_search(ivf, nq, xq, k, NULL, D1, I1));
        CHECK(near_results(nq, k, mi, D0, I0, D1, I1, 0.9));
        vdx_index_free(pq);
        vdx_index_free(ivf);
        vdx_index_free(fs);
    }
    free(D0); free(D1); free(I0); free(I1);
    free(x); free(xq);
}

/* A batch of queries goes list by list (each list scanned once for the
 * queries of a chunk that probe it); one query alone goes probe by probe.
 * Both keep the k best approximate keys of the same codes, so they agree
 * but for ties at the k-th key: same number of results, ids in both with
 * the same distance, nearly all ids shared.  candidates_only returns the
 * same candidates, unsorted. */
static void test_list_major(void) {
    const int64_t d = 32, M = 16, nlist = 32, n = 6000, nq = 256;
    float *x = make_data(n, d, 41, 30);
    float *xq = make_data(nq, d, 42, 3);
    const int64_t ks[2] = {10, 100}, nps[2] = {4, nlist};
    float *D0 = malloc(sizeof(float) * (size_t)(nq * 100)), *D1 = malloc(sizeof(float) * (size_t)(nq * 100));
    vdx_idx_t *I0 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * 100)), *I1 = malloc(sizeof(vdx_idx_t) * (size_t)(nq * 100));
    vdx_selector *sel = NULL;
    CHECK_OK(vdx_selector_range(0, 2 * n / 3, &sel));
    for (int mi = 0; mi < 2; mi++) {
        vdx_metric metric = mi ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *q = NULL, *ivf = NULL;
        CHECK_OK(vdx_index_flat_new(d, metric, &q));
        CHECK_OK(vdx_index_ivfpq_fastscan_new(q, d, nlist, M, 4, metric, 32, &ivf));
        CHECK_OK(vdx_index_train(ivf, n, x));
        CHECK_OK(vdx_index_add(ivf, n, x));
        for (int c = 0; c < 8; c++) {
            const int64_t k = ks[c & 1];
            vdx_search_params prm;
            vdx_search_params_init(&prm);
            prm.nprobe = nps[(c >> 1) & 1];
            prm.sel = c & 4 ? sel : NULL;
            CHECK_OK(vdx_index_search(ivf, nq, xq, k, &prm, D1, I1));
            for (int64_t i = 0; i < nq; i++)
                CHECK_OK(vdx_index_search(ivf, 1, xq + i * d, k, &prm, D0 + i * k, I0 + i * k));
            int64_t common = 0, total = 0;
            int ok = 1;
            for (int64_t i = 0; i < nq * k; i++) {
                if ((I0[i] < 0) != (I1[i] < 0)) ok = 0;
                if (I1[i] < 0) continue;
                if (c & 4 && I1[i] >= 2 * n / 3) ok = 0;
                total++;
                const int64_t r = i / k * k;
                for (int64_t j = r; j < r + k; j++)
                    if (I0[j] == I1[i]) {
                        common++;
                        if (fabsf(D0[j] - D1[i]) > 1e-4f * (fabsf(D0[j]) + 1)) ok = 0;
                    }
            }
            CHECK(ok && total > 0 && common >= total * 97 / 100);
            /* candidates only: the same ids, in any order */
            prm.candidates_only = 1;
            CHECK_OK(vdx_index_search(ivf, nq, xq, k, &prm, D0, I0));
            for (int64_t i = 0; i < nq; i++) {
                qsort(I0 + i * k, (size_t)k, sizeof(vdx_idx_t), cmp_idx);
                qsort(I1 + i * k, (size_t)k, sizeof(vdx_idx_t), cmp_idx);
            }
            CHECK(memcmp(I0, I1, sizeof(vdx_idx_t) * (size_t)(nq * k)) == 0);
        }
        vdx_index_free(ivf);
    }
    vdx_selector_free(sel);
    free(D0); free(D1); free(I0); free(I1);
    free(x); free(xq);
}

static void test_errors(void) {
    vdx_index *ix = NULL;
    CHECK_ERR(vdx_index_pq_fastscan_new(16, 8, 8, VDX_METRIC_L2, 32, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_pq_fastscan_new(16, 8, 4, VDX_METRIC_L2, 48, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_pq_fastscan_new(16, 8, 4, VDX_METRIC_L2, 0, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_pq_fastscan_new(16, 7, 4, VDX_METRIC_L2, 32, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK(ix == NULL);
    CHECK_OK(vdx_index_pq_fastscan_new(16, 8, 4, VDX_METRIC_L2, 32, &ix));
    float x[16] = {0};
    CHECK_ERR(vdx_index_add(ix, 1, x), VDX_ERR_NOT_TRAINED);
    vdx_idx_t id = 5;
    float xt[16 * 300];
    test_rand_fill(xt, 16 * 300, 3);
    CHECK_OK(vdx_index_train(ix, 300, xt));
    CHECK_ERR(vdx_index_add_with_ids(ix, 1, x, &id), VDX_ERR_UNSUPPORTED);
    CHECK_ERR(vdx_index_reconstruct(ix, 0, x), VDX_ERR_NOT_FOUND);
    vdx_index_free(ix);
    vdx_index *q = NULL;
    CHECK_OK(vdx_index_flat_new(16, VDX_METRIC_L2, &q));
    CHECK_ERR(vdx_index_ivfpq_fastscan_new(q, 16, 4, 8, 5, VDX_METRIC_L2, 32, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_ERR(vdx_index_ivfpq_fastscan_new(q, 16, 4, 8, 4, VDX_METRIC_L2, 33, &ix), VDX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vdx_index_ivfpq_fastscan_new(q, 16, 4, 8, 4, VDX_METRIC_L2, 32, &ix));
    CHECK_OK(vdx_index_train(ix, 300, xt));
    CHECK_ERR(vdx_index_fastscan_set_by_residual(ix, 1), VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(ix);
}

/* factory strings */
static void test_factory(void) {
    struct { const char *s; const char *type; int64_t bbs; int res; } cases[] = {
        {"PQ8x4fs", "IndexPQFastScan", 32, 0},
        {"PQ8x4fs_64", "IndexPQFastScan", 64, 0},
        {"IVF10,PQ8x4fs", "IndexIVFPQFastScan", 32, 0},
        {"IVF10,PQ8x4fsr", "IndexIVFPQFastScan", 32, 1},
        {"IVF10,PQ8x4fsr_96", "IndexIVFPQFastScan", 96, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdx_index *ix = NULL;
        CHECK_OK(vdx_index_factory(16, cases[i].s, VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK(strcmp(vdx_index_type_name(ix), cases[i].type) == 0);
        CHECK(vdx_index_fastscan_bbs(ix) == cases[i].bbs);
        CHECK(vdx_index_fastscan_by_residual(ix) == cases[i].res);
        vdx_index_free(ix);
    }
    vdx_index *ix = NULL;
    CHECK_OK(vdx_index_factory(16, "PQ8x4fs,RFlat", VDX_METRIC_L2, &ix));
    CHECK(ix && strcmp(vdx_index_type_name(vdx_index_refine_base(ix)), "IndexPQFastScan") == 0);
    vdx_index_free(ix);
    ix = NULL;
    CHECK_OK(vdx_index_factory(16, "IVF10,PQ8x4fs,Refine(SQfp16)", VDX_METRIC_L2, &ix));
    CHECK(ix && strcmp(vdx_index_type_name(vdx_index_refine_base(ix)), "IndexIVFPQFastScan") == 0);
    vdx_index_free(ix);
    const char *bad[] = {"PQ8x8fs", "PQ8x4fs_", "PQ8x4fs_33", "PQ8x4fsr", "PQ8x4fsx", "PQ8x4fs_6a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ix = NULL;
        CHECK(vdx_index_factory(16, bad[i], VDX_METRIC_L2, &ix) != VDX_OK);
        CHECK(ix == NULL);
    }
}

/* The golden files written by FAISS (tests/fuzz/make_corpus.py): fixed
 * centroids (sub-quantizer m, centroid j = ((16 m + j) / 2, (16 m + j) / 2
 * + 1/4)), vectors arange(12) (IPfs) and ((7 i + 3 j) % 11) - 5 (IwPf). */
static void ref_pq_vecs(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int m = 0; m < 2; m++) {
            int best = 0;
            float bd = INFINITY;
            for (int j = 0; j < 16; j++) {
                float c0 = (float)(16 * m + j) * 0.5f, c1 = c0 + 0.25f;
                float e0 = x[i * 4 + 2 * m] - c0, e1 = x[i * 4 + 2 * m + 1] - c1;
                float dd = e0 * e0 + e1 * e1;
                if (dd < bd) bd = dd, best = j;
            }
            out[i * 4 + 2 * m] = (float)(16 * m + best) * 0.5f;
            out[i * 4 + 2 * m + 1] = (float)(16 * m + best) * 0.5f + 0.25f;
        }
}

static void check_roundtrip_and_truncations(const char *name) {
    size_t n = 0;
    uint8_t *raw = slurp(name, &n);
    CHECK(raw != NULL);
    if (!raw) return;
    vdx_index *ix = NULL;
    CHECK_OK(vdx_deserialize_index(raw, n, &ix));
    uint8_t *buf = NULL;
    size_t bn = 0;
    CHECK_OK(vdx_serialize_index(ix, &buf, &bn));
    CHECK(bn == n && buf && memcmp(buf, raw, n) == 0);
    vdx_free_buffer(buf);
    vdx_index_free(ix);
    for (size_t cut = 0; cut < n; cut++) {
        vdx_index *t = NULL;
        CHECK(vdx_deserialize_index(raw, cut, &t) != VDX_OK);
        CHECK(t == NULL);
    }
    free(raw);
}

static void test_golden_files(void) {
    vdx_index *ix = NULL;
    CHECK_OK(vdx_read_index(CORPUS "pqfs_l2_d4_n3.index", 0, &ix));
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexPQFastScan") == 0);
        CHECK(vdx_index_ntotal(ix) == 3 && vdx_index_fastscan_bbs(ix) == 32);
        float x[12], want[12], got[12];
        for (int i = 0; i < 12; i++) x[i] = (float)i;
        ref_pq_vecs(want, x, 3);
        CHECK_OK(vdx_index_reconstruct_n(ix, 0, 3, got));
        CHECK(memcmp(want, got, sizeof got) == 0);
        vdx_index_free(ix);
    }
    ix = NULL;
    CHECK_OK(vdx_read_index(CORPUS "ivfpqfs_l2_d4_n10.index", 0, &ix));
    if (ix) {
        CHECK(strcmp(vdx_index_type_name(ix), "IndexIVFPQFastScan") == 0);
        CHECK(vdx_index_ntotal(ix) == 10 && vdx_index_ivf_nprobe(ix) == 2);
        CHECK(vdx_index_fastscan_by_residual(ix) == 0);
        float x[40], rec[40], D[40];
        vdx_idx_t I[40];
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)(((i * 7 + j * 3) % 11) - 5);
        ref_pq_vecs(rec, x, 10);
        vdx_search_params prm;
        vdx_search_params_init(&prm);
        prm.nprobe = 4; /* all lists: exhaustive over the codes */
        CHECK_OK(vdx_index_search(ix, 10, x, 4, &prm, D, I));
        for (int q = 0; q < 10; q++)
            for (int r = 0; r < 4; r++) {
                vdx_idx_t id = I[q * 4 + r];
                CHECK(id >= 0 && id < 10);
                if (id < 0 || id >= 10) continue;
                float dd = 0;
                for (int j = 0; j < 4; j++) {
                    float e = x[q * 4 + j] - rec[id * 4 + j];
                    dd += e * e;
                }
                CHECK(fabsf(dd - D[q * 4 + r]) <= 1e-4f * (1 + dd));
            }
        vdx_index_free(ix);
    }
    ix = NULL;
    CHECK_OK(vdx_read_index(CORPUS "ivfpqfsr_l2_d4_n10.index", 0, &ix));
    CHECK(ix && vdx_index_fastscan_by_residual(ix) == 1);
    vdx_index_free(ix);
    check_roundtrip_and_truncations(CORPUS "pqfs_l2_d4_n3.index");
    check_roundtrip_and_truncations(CORPUS "ivfpqfs_l2_d4_n10.index");
    check_roundtrip_and_truncations(CORPUS "ivfpqfsr_l2_d4_n10.index");
}

/* An IVF fast-scan index over any coarse quantizer the IVF readers take
 * (HNSW or flat here) reads back from its own file and searches
 * as before: same ids, same distances (the fast-scan reader once took a
 * flat quantizer only; found by fuzz_factory on "IVF4_HNSW,PQ4x4fs"). */
static void test_ivf_quantizer_kinds_roundtrip(void) {
    const int64_t d = 16, n = 2000, nq = 8, k = 5;
    float *x = make_data(n, d, 21, 50);
    float *xq = make_data(nq, d, 22, 5);
    const char *descs[] = {"IVF16_HNSW8,PQ8x4fs", "IVF16_HNSW8,PQ8x4fsr",
                           "IVF16_HNSW8,PQ8x4fs_64", "IVF16,PQ8x4fs"};
    for (size_t c = 0; c < sizeof descs / sizeof *descs; c++) {
        vdx_index *ix = NULL, *back = NULL;
        CHECK_OK(vdx_index_factory(d, descs[c], VDX_METRIC_L2, &ix));
        if (!ix) continue;
        CHECK_OK(vdx_index_train(ix, n, x));
        CHECK_OK(vdx_index_add(ix, n, x));
        uint8_t *buf = NULL;
        size_t bn = 0;
        CHECK_OK(vdx_serialize_index(ix, &buf, &bn));
        CHECK_OK(vdx_deserialize_index(buf, bn, &back));
        if (back) {
            CHECK(strcmp(vdx_index_type_name(ix), vdx_index_type_name(back)) == 0);
            CHECK(vdx_index_ntotal(back) == n);
            float D0[40], D1[40];
            vdx_idx_t I0[40], I1[40];
            vdx_search_params prm;
            vdx_search_params_init(&prm);
            prm.nprobe = 4;
            CHECK_OK(vdx_index_search(ix, nq, xq, k, &prm, D0, I0));
            CHECK_OK(vdx_index_search(back, nq, xq, k, &prm, D1, I1));
            CHECK(memcmp(I0, I1, sizeof I0) == 0);
            CHECK(memcmp(D0, D1, sizeof D0) == 0);
            for (int64_t i = 0; i < nq * k; i++) CHECK(I1[i] >= 0 && I1[i] < n);
            /* the file is the same once more: nothing lost on the way */
            uint8_t *buf2 = NULL;
            size_t bn2 = 0;
            CHECK_OK(vdx_serialize_index(back, &buf2, &bn2));
            CHECK(bn2 == bn && buf2 && memcmp(buf, buf2, bn) == 0);
            vdx_free_buffer(buf2);
        }
        /* every truncation of the file is refused cleanly */
        for (size_t cut = 0; cut < bn; cut += 1 + cut / 8) {
            vdx_index *t = NULL;
            CHECK(vdx_deserialize_index(buf, cut, &t) != VDX_OK);
            CHECK(t == NULL);
        }
        vdx_free_buffer(buf);
        vdx_index_free(back);
        vdx_index_free(ix);
    }
    free(x);
    free(xq);
}

int main(void) {
    RUN(test_kernels_vs_scalar);
    RUN(test_run_vs_scalar);
    RUN(test_scalar_kernel_sums);
    RUN(test_layout);
    RUN(test_pqfs_vs_pq);
    RUN(test_ivf);
    RUN(test_large_k);
    RUN(test_list_major);
    RUN(test_ties);
    RUN(test_errors);
    RUN(test_factory);
    RUN(test_golden_files);
    RUN(test_ivf_quantizer_kinds_roundtrip);
    return TEST_SUMMARY();
}
