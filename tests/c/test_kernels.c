/* test_kernels.c — every SIMD level against the scalar reference, d=1..300,
 * the same results from vectors at any byte offset (mapped files), plus the
 * dispatch and the VECDEX_SIMD override. */
#include "test.h"
#include "simd/kernels.h"

/* error relative to the magnitude of the terms (d <= 300, |terms| <= 1):
 * float summation order differs between levels */
static double rel_err(double a, double b) {
    return fabs(a - b) / (fabs(b) > 1.0 ? fabs(b) : 1.0);
}

static void check_level(const vdx_kernels *K) {
    const vdx_kernels *R = &vdx_kernels_scalar;
    enum { NY = 7 };
    float *a = malloc(301 * sizeof(float)), *y = malloc(301 * NY * sizeof(float));
    float out[NY], ref[NY];
    test_rand_fill(a, 301, 1);
    test_rand_fill(y, 301 * NY, 2);
    for (size_t i = 0; i < 301; i++) a[i] -= 0.5f;
    int bad = 0;
    for (size_t d = 1; d <= 300; d++) {
        /* unaligned start to exercise loads */
        const float *x = a + (d & 1), *b = y + 1;
        if (rel_err(K->l2sqr(x, b, d), R->l2sqr(x, b, d)) > 1e-4) bad++;
        if (rel_err(K->inner_product(x, b, d), R->inner_product(x, b, d)) > 1e-4) bad++;
        if (rel_err(K->norm_sqr(x, d), R->norm_sqr(x, d)) > 1e-4) bad++;
        size_t ny = (300 * NY) / d < NY ? (300 * NY) / d : NY;
        K->l2sqr_ny(out, x, y, d, ny);
        R->l2sqr_ny(ref, x, y, d, ny);
        for (size_t j = 0; j < ny; j++) bad += rel_err(out[j], ref[j]) > 1e-4;
        K->inner_product_ny(out, x, y, d, ny);
        R->inner_product_ny(ref, x, y, d, ny);
        for (size_t j = 0; j < ny; j++) bad += rel_err(out[j], ref[j]) > 1e-4;
        K->norms_sqr_ny(out, y, d, ny);
        R->norms_sqr_ny(ref, y, d, ny);
        for (size_t j = 0; j < ny; j++) bad += rel_err(out[j], ref[j]) > 1e-4;
    }
    CHECK(bad == 0);
    /* a row's distance does not depend on where it sits among the rows
     * (one index against the same rows split over shards): rows 1..NY-1
     * scanned from row 0 and from row 1, bit for bit */
    int moved = 0;
    for (size_t d = 8; d <= 256; d += 8) {
        float o0[NY], o1[NY];
        const float *yy = y + 1; /* NY rows of d <= 300 floats fit */
        size_t ny = (300 * NY - 1) / d < NY ? (300 * NY - 1) / d : NY;
        K->l2sqr_ny(o0, a, yy, d, ny);
        K->l2sqr_ny(o1, a, yy + d, d, ny - 1);
        for (size_t j = 1; j < ny; j++) moved += memcmp(&o0[j], &o1[j - 1], sizeof(float)) != 0;
        K->inner_product_ny(o0, a, yy, d, ny);
        K->inner_product_ny(o1, a, yy + d, d, ny - 1);
        for (size_t j = 1; j < ny; j++) moved += memcmp(&o0[j], &o1[j - 1], sizeof(float)) != 0;
    }
    if (moved) printf("     %s: %d row distances depend on the row's position\n", K->name, moved);
    CHECK(moved == 0);
    /* filters: every length 0..300, against the reference */
    float v[300];
    uint32_t c1[300], c2[300];
    test_rand_fill(v, 300, 3);
    for (size_t n = 0; n <= 300; n++) {
        size_t n1 = K->filter_less(v, n, 0.3f, c1), n2 = R->filter_less(v, n, 0.3f, c2);
        CHECK(n1 == n2 && !memcmp(c1, c2, n1 * sizeof(uint32_t)));
        if (n > 0) {
            float w[300], m1, m2;
            memcpy(w, v, n * sizeof(float));
            if (n > 40) w[n / 3] = w[n - 1] = -1.0f; /* a tie: the first wins */
            size_t a1 = K->argmin(w, n, &m1), a2 = R->argmin(w, n, &m2);
            CHECK(a1 == a2 && m1 == m2);
            if (n > 40) CHECK(a1 == n / 3);
        }
        n1 = K->filter_greater(v, n, 0.6f, c1);
        n2 = R->filter_greater(v, n, 0.6f, c2);
        CHECK(n1 == n2 && !memcmp(c1, c2, n1 * sizeof(uint32_t)));
        for (size_t u = 0; u < n2; u++) CHECK(v[c2[u]] > 0.6f);
    }
    free(a);
    free(y);
    /* transposed distances: d = 1..20 rows, ny = 0..70 (all tails), against
     * the reference and against the row-wise kernel on the same vectors */
    float yt[20 * 70], yr[70 * 20], xq[20], o1[70], o2[70], o3[70];
    test_rand_fill(yt, 20 * 70, 4);
    test_rand_fill(xq, 20, 5);
    int badt = 0;
    for (size_t d = 1; d <= 20; d++)
        for (size_t ny = 0; ny <= 70; ny++) {
            for (size_t j = 0; j < ny; j++)
                for (size_t c = 0; c < d; c++) yr[j * d + c] = yt[c * ny + j];
            K->l2sqr_ny_t(o1, xq, yt, d, ny);
            R->l2sqr_ny_t(o2, xq, yt, d, ny);
            R->l2sqr_ny(o3, xq, yr, d, ny);
            for (size_t j = 0; j < ny; j++)
                badt += rel_err(o1[j], o2[j]) > 1e-5 || rel_err(o2[j], o3[j]) > 1e-5;
            /* matvec_t with a = -2x, base = |y|^2: L2 minus |x|^2 */
            float a2[20], nb[70];
            for (size_t c = 0; c < d; c++) a2[c] = -2 * xq[c];
            R->norms_sqr_ny(nb, yr, d, ny);
            K->matvec_t(o1, a2, yt, nb, d, ny);
            float xn = R->norm_sqr(xq, d);
            for (size_t j = 0; j < ny; j++)
                badt += fabs(o1[j] + xn - o3[j]) > 1e-5 * (1 + d);
        }
    CHECK(badt == 0);
}

/* The vectors copied to byte offsets 1, 2 and 3 (as a memory-mapped flat's
 * sit: FAISS's flat header is 45 bytes) give the very bits of the aligned
 * call: same level, same data, same order of operations.  Under UBSan
 * (-fsanitize=alignment) a kernel that reads them as float lvalues fails
 * here. */
static void check_misaligned(const vdx_kernels *K) {
    enum { D = 300, NY = 5 };
    float *x = malloc(D * sizeof(float)), *y = malloc(D * NY * sizeof(float));
    unsigned char *bx = malloc(D * sizeof(float) + 4),
                  *by = malloc(D * NY * sizeof(float) + 4);
    test_rand_fill(x, D, 11);
    test_rand_fill(y, D * NY, 12);
    int bad = 0;
    for (size_t off = 1; off < 4; off++) {
        memcpy(bx + off, x, D * sizeof(float));
        memcpy(by + off, y, D * NY * sizeof(float));
        const float *ux = (const float *)(const void *)(bx + off);
        const float *uy = (const float *)(const void *)(by + off);
        for (size_t d = 1; d <= D; d += (d < 40 ? 1 : 37)) {
            float o1[NY], o2[NY];
            bad += K->l2sqr(ux, uy, d) != K->l2sqr(x, y, d);
            bad += K->inner_product(ux, uy, d) != K->inner_product(x, y, d);
            bad += K->norm_sqr(uy, d) != K->norm_sqr(y, d);
            size_t ny = NY;
            K->l2sqr_ny(o1, ux, uy, d, ny);
            K->l2sqr_ny(o2, x, y, d, ny);
            bad += memcmp(o1, o2, ny * sizeof(float)) != 0;
            K->inner_product_ny(o1, ux, uy, d, ny);
            K->inner_product_ny(o2, x, y, d, ny);
            bad += memcmp(o1, o2, ny * sizeof(float)) != 0;
            K->norms_sqr_ny(o1, uy, d, ny);
            K->norms_sqr_ny(o2, y, d, ny);
            bad += memcmp(o1, o2, ny * sizeof(float)) != 0;
        }
        /* transposed layouts (PQ sub-spaces): d rows of ny */
        for (size_t d = 1; d <= 8; d++)
            for (size_t ny = 1; ny <= 40; ny += 13) {
                float o1[40], o2[40], base[40];
                memcpy(base, y, sizeof base);
                K->l2sqr_ny_t(o1, ux, uy, d, ny);
                K->l2sqr_ny_t(o2, x, y, d, ny);
                bad += memcmp(o1, o2, ny * sizeof(float)) != 0;
                K->matvec_t(o1, ux, uy, base, d, ny);
                K->matvec_t(o2, x, y, base, d, ny);
                bad += memcmp(o1, o2, ny * sizeof(float)) != 0;
            }
    }
    CHECK(bad == 0);
    free(x);
    free(y);
    free(bx);
    free(by);
}

static void test_levels(void) {
    const char *names[] = {"scalar", "avx2", "avx512"};
    int tested = 0;
    for (int i = 0; i < 3; i++) {
        const vdx_kernels *K = vdx_kernels_level(names[i]);
        if (!K) {
            printf("     (%s not supported here: skipped)\n", names[i]);
            continue;
        }
        CHECK(!strcmp(K->name, names[i]));
        check_level(K);
        check_misaligned(K);
        tested++;
    }
    CHECK(tested >= 1);
    CHECK(vdx_kernels_level("nonsense") == NULL);
}

static void test_dispatch(void) {
    const char *forced = getenv("VECDEX_SIMD");
    const char *lvl = vdx_simd_level();
    CHECK(!strcmp(lvl, "scalar") || !strcmp(lvl, "avx2") || !strcmp(lvl, "avx512"));
    if (forced && !strcmp(forced, "scalar")) CHECK(!strcmp(lvl, "scalar"));
    CHECK(strstr(vdx_build_info(), lvl) != NULL);
    CHECK(!strcmp(vdx_version(), VDX_VERSION_STRING));
}

int main(void) {
    RUN(test_levels);
    RUN(test_dispatch);
    return TEST_SUMMARY();
}
