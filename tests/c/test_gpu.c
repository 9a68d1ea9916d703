/*
 * test_gpu.c — the GPU C API.  Without a device (CI: a CUDA build without a
 * driver, or a build without CUDA): no device is reported, nothing crashes,
 * and every GPU constructor and clone fails with VDX_ERR_UNSUPPORTED and a
 * message.  With a device — a real one, or the CPU emulation of a test
 * build configured with -DVDX_GPU=EMULATE — GPU results are compared with
 * the CPU index's on the same data.
 */
#include "test.h"
#include "vecdex_gpu.h"

static float *randn(int64_t n, int64_t d, unsigned seed) {
    float *x = malloc((size_t)(n * d) * sizeof(float));
    srand(seed);
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    return x;
}

static void test_no_device(void) {
    if (vdx_gpu_num_devices() > 0) return;
    printf("  no GPU: %s\n", vdx_gpu_info());
    CHECK(vdx_gpu_info()[0] != 0);
    CHECK(vdx_gpu_max_k(0) == 0);
    vdx_gpu_resources *res = NULL;
    CHECK_OK(vdx_gpu_resources_new(&res));
    CHECK_OK(vdx_gpu_resources_set_temp_memory(res, 1 << 20));
    vdx_index *cpu = NULL, *g = (vdx_index *)1;
    CHECK_OK(vdx_index_flat_new(8, VDX_METRIC_L2, &cpu));
    CHECK_ERR(vdx_gpu_index_cpu_to_gpu(res, 0, cpu, NULL, &g),
              VDX_ERR_UNSUPPORTED);
    CHECK(g == NULL);
    CHECK(strstr(vdx_last_error(), "no GPU") != NULL);
    CHECK_ERR(vdx_gpu_index_flat_new(res, 8, VDX_METRIC_L2, NULL, &g),
              VDX_ERR_UNSUPPORTED);
    CHECK_ERR(vdx_gpu_index_ivf_flat_new(res, 8, 4, VDX_METRIC_L2, NULL, &g),
              VDX_ERR_UNSUPPORTED);
    vdx_gpu_resources *rs[1] = {res};
    int dev[1] = {0};
    CHECK_ERR(vdx_gpu_index_cpu_to_gpu_multiple(1, rs, dev, cpu, NULL, &g),
              VDX_ERR_UNSUPPORTED);
    CHECK(!vdx_gpu_index_is_gpu(cpu));
    vdx_index_free(cpu);
    vdx_gpu_resources_free(res);
}

/* ids of the GPU and CPU results agree except where distances tie (within
 * a relative tolerance); returns the number of disagreements. */
static int64_t compare(int64_t n, int64_t k, const float *D1, const int64_t *I1,
                       const float *D2, const int64_t *I2, float tol) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n * k; i++) {
        float a = D1[i], b = D2[i];
        if (fabsf(a - b) > tol * (fabsf(a) + fabsf(b) + 1e-3f)) bad++;
        else if (I1[i] != I2[i] && fabsf(a - b) > 1e-6f * (fabsf(a) + 1)) {
            /* equal distances may come in either order only if tied */
            int tied = (i % k + 1 < k && fabsf(D1[i + 1] - a) <= tol * (fabsf(a) + 1e-3f)) ||
                       (i % k > 0 && fabsf(D1[i - 1] - a) <= tol * (fabsf(a) + 1e-3f));
            bad += !tied;
        }
    }
    return bad;
}

static void test_flat(void) {
    if (vdx_gpu_num_devices() == 0) return;
    const int64_t d = 37, nb = 3000, nq = 40, k = 10;
    float *xb = randn(nb, d, 1), *xq = randn(nq, d, 2);
    vdx_gpu_resources *res = NULL;
    CHECK_OK(vdx_gpu_resources_new(&res));
    CHECK_OK(vdx_gpu_resources_set_temp_memory(res, 1 << 20)); /* many tiles */
    for (int m = 0; m < 2; m++) {
        vdx_metric metric = m ? VDX_METRIC_INNER_PRODUCT : VDX_METRIC_L2;
        vdx_index *cpu = NULL, *g = NULL, *back = NULL;
        CHECK_OK(vdx_index_flat_new(d, metric, &cpu));
        CHECK_OK(vdx_index_add(cpu, nb, xb));
        CHECK_OK(vdx_gpu_index_cpu_to_gpu(res, 0, cpu, NULL, &g));
        CHECK(vdx_gpu_index_is_gpu(g));
        CHECK(vdx_index_ntotal(g) == nb);
        float D1[40 * 10], D2[40 * 10];
        int64_t I1[40 * 10], I2[40 * 10];
        CHECK_OK(vdx_index_search(cpu, nq, xq, k, NULL, D1, I1));
        CHECK_OK(vdx_index_search(g, nq, xq, k, NULL, D2, I2));
        CHECK(compare(nq, k, D1, I1, D2, I2, 1e-4f) == 0);
        /* k above ntotal: -1 padding */
        float *D3 = malloc(4 * 4000);
        int64_t *I3 = malloc(8 * 4000);
        CHECK_OK(vdx_index_search(g, 1, xq, 4000, NULL, D3, I3));
        CHECK(I3[nb - 1] >= 0 && I3[nb] == -1);
        free(D3);
        free(I3);
        /* a selector */
        vdx_selector *sel = NULL;
        CHECK_OK(vdx_selector_range(100, 200, &sel));
        vdx_search_params p;
        vdx_search_params_init(&p);
        p.sel = sel;
        CHECK_OK(vdx_index_search(cpu, nq, xq, k, &p, D1, I1));
        CHECK_OK(vdx_index_search(g, nq, xq, k, &p, D2, I2));
        CHECK(compare(nq, k, D1, I1, D2, I2, 1e-4f) == 0);
        for (int64_t i = 0; i < nq * k; i++) CHECK(I2[i] >= 100 && I2[i] < 200);
        vdx_selector_free(sel);
        /* back to the CPU: the same vectors */
        CHECK_OK(vdx_gpu_index_gpu_to_cpu(g, &back));
        CHECK(strcmp(vdx_index_type_name(back), "IndexFlat") == 0 ||
              strncmp(vdx_index_type_name(back), "IndexFlat", 9) == 0);
        CHECK(memcmp(vdx_index_flat_data(back), xb, (size_t)(nb * d) * 4) == 0);
        /* k beyond the device's limit */
        int64_t big = vdx_gpu_max_k(0) + 1;
        CHECK(vdx_gpu_max_k(0) >= 2048);
        float *Db = malloc((size_t)big * 4);
        int64_t *Ib = malloc((size_t)big * 8);
        CHECK_ERR(vdx_index_search(g, 1, xq, big, NULL, Db, Ib),
                  VDX_ERR_INVALID_ARGUMENT);
        free(Db);
        free(Ib);
        vdx_index_free(back);
        vdx_index_free(g);
        vdx_index_free(cpu);
    }
    vdx_gpu_resources_free(res);
    free(xb);
    free(xq);
}

static double recall(int64_t n, int64_t k, const int64_t *ref,
                     const int64_t *got) {
    int64_t hit = 0;
    for (int64_t q = 0; q < n; q++)
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++)
                if (ref[q * k + i] == got[q * k + j] && ref[q * k + i] >= 0) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(n * k);
}

static void test_ivf(void) {
    if (vdx_gpu_num_devices() == 0) return;
    const int64_t d = 32, nb = 4000, nq = 30, k = 10, nlist = 16;
    float *xb = randn(nb, d, 3), *xq = randn(nq, d, 4);
    vdx_gpu_resources *res = NULL;
    CHECK_OK(vdx_gpu_resources_new(&res));
    for (int kind = 0; kind < 3; kind++) {
        vdx_index *q = NULL, *cpu = NULL, *g = NULL, *back = NULL;
        CHECK_OK(vdx_index_flat_new(d, VDX_METRIC_L2, &q));
        if (kind == 0) CHECK_OK(vdx_index_ivf_flat_new(q, d, nlist, VDX_METRIC_L2, &cpu));
        if (kind == 1) CHECK_OK(vdx_index_ivfpq_new(q, d, nlist, 8, 8, VDX_METRIC_L2, &cpu));
        if (kind == 2)
            CHECK_OK(vdx_index_ivf_sq_new(q, d, nlist, VDX_SQ_8BIT, VDX_METRIC_L2, 1, &cpu));
        CHECK_OK(vdx_index_train(cpu, nb, xb));
        CHECK_OK(vdx_index_add(cpu, nb, xb));
        CHECK_OK(vdx_index_ivf_set_nprobe(cpu, 4));
        CHECK_OK(vdx_gpu_index_cpu_to_gpu(res, 0, cpu, NULL, &g));
        CHECK(vdx_gpu_index_ivf_nprobe(g) == 4);
        CHECK(vdx_index_ntotal(g) == nb);
        float D1[300], D2[300];
        int64_t I1[300], I2[300];
        CHECK_OK(vdx_index_search(cpu, nq, xq, k, NULL, D1, I1));
        CHECK_OK(vdx_index_search(g, nq, xq, k, NULL, D2, I2));
        double r = recall(nq, k, I1, I2);
        printf("  kind %d: GPU/CPU agreement %.3f\n", kind, r);
        CHECK(r >= 0.97);
        CHECK_OK(vdx_gpu_index_gpu_to_cpu(g, &back));
        CHECK(vdx_index_ntotal(back) == nb);
        CHECK_OK(vdx_index_search(back, nq, xq, k, NULL, D2, I2));
        CHECK(recall(nq, k, I1, I2) == 1.0);
        vdx_index_free(back);
        vdx_index_free(g);
        vdx_index_free(cpu);
    }
    vdx_gpu_resources_free(res);
    free(xb);
    free(xq);
}

static void test_unsupported_kind(void) {
    if (vdx_gpu_num_devices() == 0) return;
    vdx_gpu_resources *res = NULL;
    CHECK_OK(vdx_gpu_resources_new(&res));
    vdx_index *h = NULL, *g = NULL;
    CHECK_OK(vdx_index_hnsw_flat_new(8, 16, VDX_METRIC_L2, &h));
    CHECK_ERR(vdx_gpu_index_cpu_to_gpu(res, 0, h, NULL, &g), VDX_ERR_UNSUPPORTED);
    CHECK(strstr(vdx_last_error(), "IndexHNSWFlat") != NULL);
    CHECK_ERR(vdx_gpu_index_cpu_to_gpu(res, 99, h, NULL, &g),
              VDX_ERR_INVALID_ARGUMENT);
    vdx_index_free(h);
    vdx_gpu_resources_free(res);
}

int main(void) {
    printf("GPU: %s\n", vdx_gpu_info());
    RUN(test_no_device);
    RUN(test_flat);
    RUN(test_ivf);
    RUN(test_unsupported_kind);
    return TEST_SUMMARY();
}
