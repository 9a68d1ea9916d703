/*
 * runtime.c — devices, resources and errors of the GPU part.
 *
 * Linking: the CUDA runtime is linked statically (libcudart_static), and it
 * loads the driver (libcuda.so.1) itself at its first call; without a
 * driver that call returns cudaErrorInsufficientDriver, so on a machine with
 * no GPU vdx_gpu_num_devices() is 0 and nothing else happens.  cuBLAS is
 * loaded with dlopen when a device is first used (a few entry points
 * only), so the library has no load-time dependency on any CUDA library and
 * the CPU part works where none is installed.
 *
 * Resources: one state per (resources object, device), created lazily:
 * a non-blocking stream, a cuBLAS handle bound to it, and a temporary pool
 * (FAISS's StandardGpuResources "temp memory"): a stack over one cudaMalloc
 * from which the calls take their scratch buffers in LIFO order; requests
 * that do not fit fall back to cudaMalloc.  Work is ordered by the stream,
 * so a buffer released to the pool can be reused by the next launch without
 * waiting.  Each state has a mutex held for the duration of a GPU call.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "gpu_internal.h"

#ifndef VDX_CUDA_LIBDIR
#define VDX_CUDA_LIBDIR ""
#endif

/* Scratch budget planned by calls when no pool is set. */
#define NO_POOL_BUDGET ((size_t)256 << 20)
#define MAX_TEMP ((size_t)1 << 40)

/* ---- devices ---------------------------------------------------------------- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_count;
static char probe_info[512];

static void probe(void) {
    int n = 0, rt = 0, drv = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    cudaRuntimeGetVersion(&rt);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky-less error state */
        snprintf(probe_info, sizeof probe_info,
                 "CUDA runtime %d.%d, no usable device: %s (%s)", rt / 1000,
                 (rt % 1000) / 10, cudaGetErrorString(e), cudaGetErrorName(e));
        probe_count = 0;
        return;
    }
    cudaDriverGetVersion(&drv);
    if (n > VDX_GPU_MAX_DEVICES) n = VDX_GPU_MAX_DEVICES;
    probe_count = n;
    int len = snprintf(probe_info, sizeof probe_info,
                       "CUDA runtime %d.%d, driver %d.%d, %d device(s)",
                       rt / 1000, (rt % 1000) / 10, drv / 1000,
                       (drv % 1000) / 10, n);
    for (int i = 0; i < n && len > 0 && (size_t)len < sizeof probe_info; i++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        len += snprintf(probe_info + len, sizeof probe_info - (size_t)len,
                        "%s %d: %s (sm_%d%d, %.0f GiB)", i ? ";" : ":", i,
                        p.name, p.major, p.minor,
                        (double)p.totalGlobalMem / (double)(1 << 30));
    }
}

int vdx_gpu_num_devices(void) {
    pthread_once(&probe_once, probe);
    return probe_count;
}

const char *vdx_gpu_info(void) {
    pthread_once(&probe_once, probe);
    return probe_info;
}

vdx_status vdx_gpu_check_device(int device, const char *what) {
    int n = vdx_gpu_num_devices();
    if (n == 0)
        return vdx_raise(VDX_ERR_UNSUPPORTED, "%s: no GPU available (%s)",
                         what, vdx_gpu_info());
    if (device < 0 || device >= n)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: device %d does not exist (%d device(s): 0..%d)",
                         what, device, n, n - 1);
    return VDX_OK;
}

/* ---- errors ----------------------------------------------------------------- */

vdx_status vdx_gpu_cuda(const vdx_gpu_dev *g, cudaError_t e,
                        const char *what) {
    if (e == cudaSuccess) return VDX_OK;
    cudaGetLastError();
    vdx_status st = e == cudaErrorMemoryAllocation ? VDX_ERR_OUT_OF_MEMORY
                                                   : VDX_ERR_INTERNAL;
    return vdx_raise(st, "GPU %d: %s failed: %s (%s)", g ? g->device : -1,
                     what, cudaGetErrorString(e), cudaGetErrorName(e));
}

vdx_status vdx_gpu_blas(const vdx_gpu_dev *g, cublasStatus_t e,
                        const char *what) {
    if (e == CUBLAS_STATUS_SUCCESS) return VDX_OK;
    vdx_status st = e == CUBLAS_STATUS_ALLOC_FAILED ? VDX_ERR_OUT_OF_MEMORY
                                                    : VDX_ERR_INTERNAL;
    return vdx_raise(st, "GPU %d: cuBLAS %s failed with status %d",
                     g ? g->device : -1, what, (int)e);
}

vdx_status vdx_gpu_launch(const vdx_gpu_dev *g, cudaError_t e,
                          const char *what) {
    if (e == cudaSuccess) return VDX_OK;
    if (e == cudaErrorInvalidValue)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "GPU %d: the %s kernel cannot run with these sizes "
                         "(%s)",
                         g->device, what, cudaGetErrorString(e));
    return vdx_gpu_cuda(g, e, what);
}

/* ---- cuBLAS ------------------------------------------------------------------ */

#ifdef VDX_GPU_EMULATE
/* tests/gpu_emu/emu.c: a CPU implementation of the entry points */
const vdx_cublas *vdx_gpu_emu_cublas(void);
const vdx_cublas *vdx_gpu_cublas(void) { return vdx_gpu_emu_cublas(); }
#else
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;
static vdx_cublas cublas_table;
static int cublas_ok;
static char cublas_err[384];

static void load_cublas(void) {
    char names[3][256];
    snprintf(names[0], sizeof names[0], "libcublas.so.%d", CUBLAS_VER_MAJOR);
    snprintf(names[1], sizeof names[1], "%s/libcublas.so.%d", VDX_CUDA_LIBDIR,
             CUBLAS_VER_MAJOR);
    snprintf(names[2], sizeof names[2], "libcublas.so");
    void *h = NULL;
    const char *why = "";
    for (int i = 0; i < 3 && !h; i++) {
        if (i == 1 && !VDX_CUDA_LIBDIR[0]) continue;
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) why = dlerror();
    }
    if (!h) {
        snprintf(cublas_err, sizeof cublas_err, "cannot load %s: %s", names[0],
                 why ? why : "?");
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"cublasCreate_v2", (void **)&cublas_table.create},
        {"cublasDestroy_v2", (void **)&cublas_table.destroy},
        {"cublasSetStream_v2", (void **)&cublas_table.set_stream},
        {"cublasSgemm_v2", (void **)&cublas_table.sgemm},
        {"cublasGemmEx", (void **)&cublas_table.gemm_ex},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(cublas_err, sizeof cublas_err, "%s has no %s", names[0],
                     syms[i].name);
            return;
        }
        memcpy(syms[i].slot, &f, sizeof f); /* object to function pointer */
    }
    cublas_ok = 1;
}

const vdx_cublas *vdx_gpu_cublas(void) {
    pthread_once(&cublas_once, load_cublas);
    if (!cublas_ok) {
        vdx_raise(VDX_ERR_UNSUPPORTED, "cuBLAS is not available: %s",
                  cublas_err);
        return NULL;
    }
    return &cublas_table;
}
#endif

/* ---- resources ---------------------------------------------------------------- */

vdx_status vdx_gpu_resources_new(vdx_gpu_resources **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    vdx_gpu_resources *r = vdx_calloc(1, sizeof *r);
    if (!r) return VDX_ERR_OUT_OF_MEMORY;
    if (pthread_mutex_init(&r->lock, NULL)) {
        vdx_free(r);
        return vdx_raise(VDX_ERR_INTERNAL, "cannot create a mutex");
    }
    r->refs = 1;
    r->temp_bytes = SIZE_MAX;
    *out = r;
    return VDX_OK;
}

void vdx_gpu_res_ref(vdx_gpu_resources *res) {
    pthread_mutex_lock(&res->lock);
    res->refs++;
    pthread_mutex_unlock(&res->lock);
}

static void pool_free(vdx_gpu_dev *g) {
    if (g->pool) {
        cudaStreamSynchronize(g->stream);
        cudaFree(g->pool);
    }
    g->pool = NULL;
    g->pool_size = g->pool_used = 0;
}

static void dev_destroy(vdx_gpu_dev *g) {
    cudaSetDevice(g->device);
    pool_free(g);
    if (g->blas && g->cb) g->cb->destroy(g->blas);
    if (g->stream) cudaStreamDestroy(g->stream);
    cudaGetLastError();
    vdx_free(g->over);
    pthread_mutex_destroy(&g->lock);
    vdx_free(g);
}

void vdx_gpu_resources_free(vdx_gpu_resources *res) {
    if (!res) return;
    pthread_mutex_lock(&res->lock);
    int last = --res->refs == 0;
    pthread_mutex_unlock(&res->lock);
    if (!last) return;
    for (int i = 0; i < VDX_GPU_MAX_DEVICES; i++)
        if (res->dev[i]) dev_destroy(res->dev[i]);
    pthread_mutex_destroy(&res->lock);
    vdx_free(res);
}

static size_t default_pool(int device) {
    size_t fr = 0, tot = 0;
    if (cudaSetDevice(device) != cudaSuccess ||
        cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        cudaGetLastError();
        return (size_t)256 << 20;
    }
    size_t b = tot / 100 * 18, cap = (size_t)3 << 29; /* 18%, <= 1.5 GiB */
    return b < cap ? b : cap;
}

static vdx_status dev_create(vdx_gpu_resources *res, int device,
                             vdx_gpu_dev **out) {
    vdx_gpu_dev *g = vdx_calloc(1, sizeof *g);
    if (!g) return VDX_ERR_OUT_OF_MEMORY;
    g->device = device;
    if (pthread_mutex_init(&g->lock, NULL)) {
        vdx_free(g);
        return vdx_raise(VDX_ERR_INTERNAL, "cannot create a mutex");
    }
    vdx_status st;
    if ((st = vdx_gpu_cuda(g, cudaSetDevice(device), "cudaSetDevice")))
        goto fail;
    if ((st = vdx_gpu_cuda(g, cudaStreamCreateWithFlags(&g->stream,
                                                        cudaStreamNonBlocking),
                           "cudaStreamCreate")))
        goto fail;
    if (!(g->cb = vdx_gpu_cublas())) {
        st = VDX_ERR_UNSUPPORTED;
        goto fail;
    }
    if ((st = vdx_gpu_blas(g, g->cb->create(&g->blas), "cublasCreate")))
        goto fail;
    if ((st = vdx_gpu_blas(g, g->cb->set_stream(g->blas, g->stream),
                           "cublasSetStream")))
        goto fail;
    int smem = 0;
    if ((st = vdx_gpu_cuda(g,
                           cudaDeviceGetAttribute(
                               &smem, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                               device),
                           "cudaDeviceGetAttribute")))
        goto fail;
    g->smem_optin = (size_t)smem;
    g->max_k = 1;
    while (vdx_gk_select_smem((int)(g->max_k * 2)) <= g->smem_optin &&
           g->max_k < ((int64_t)1 << 20))
        g->max_k *= 2;
    g->pool_want = res->temp_bytes == SIZE_MAX ? default_pool(device)
                                               : res->temp_bytes;
    *out = g;
    return VDX_OK;
fail:
    dev_destroy(g);
    return st;
}

vdx_status vdx_gpu_enter(vdx_gpu_resources *res, int device,
                         vdx_gpu_dev **out) {
    *out = NULL;
    vdx_status st = vdx_gpu_check_device(device, "GPU call");
    if (st) return st;
    if (!res) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "resources is NULL");
    pthread_mutex_lock(&res->lock);
    if (!res->dev[device]) st = dev_create(res, device, &res->dev[device]);
    vdx_gpu_dev *g = res->dev[device];
    pthread_mutex_unlock(&res->lock);
    if (st) return st;
    pthread_mutex_lock(&g->lock);
    if ((st = vdx_gpu_cuda(g, cudaSetDevice(device), "cudaSetDevice"))) {
        pthread_mutex_unlock(&g->lock);
        return st;
    }
    /* the pool is (re)made here, outside any call's scratch use */
    if (g->pool_size != g->pool_want || (g->pool_want && !g->pool)) {
        pool_free(g);
        if (g->pool_want) {
            void *p = NULL;
            if (cudaMalloc(&p, g->pool_want) == cudaSuccess) {
                g->pool = p;
                g->pool_size = g->pool_want;
            } else { /* no pool: every request goes to cudaMalloc */
                cudaGetLastError();
                g->pool_want = 0;
            }
        }
    }
    *out = g;
    return VDX_OK;
}

void vdx_gpu_leave(vdx_gpu_dev *g) {
    if (!g) return;
    vdx_gpu_tmp_mark zero = {0, 0};
    vdx_gpu_tmp_release(g, zero);
    pthread_mutex_unlock(&g->lock);
}

vdx_status vdx_gpu_resources_set_temp_memory(vdx_gpu_resources *res,
                                             size_t bytes) {
    vdx_clear_error();
    if (!res) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "resources is NULL");
    if (bytes > MAX_TEMP)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "setTempMemory: %zu bytes is more than 1 TiB", bytes);
    pthread_mutex_lock(&res->lock);
    res->temp_bytes = bytes;
    for (int i = 0; i < VDX_GPU_MAX_DEVICES; i++) {
        vdx_gpu_dev *g = res->dev[i];
        if (!g) continue;
        pthread_mutex_lock(&g->lock);
        g->pool_want = bytes; /* applied at the next call */
        pthread_mutex_unlock(&g->lock);
    }
    pthread_mutex_unlock(&res->lock);
    return VDX_OK;
}

size_t vdx_gpu_resources_temp_memory(const vdx_gpu_resources *res) {
    return res ? res->temp_bytes : 0;
}

vdx_status vdx_gpu_resources_sync(vdx_gpu_resources *res, int device) {
    vdx_clear_error();
    if (!res || device < 0 || device >= VDX_GPU_MAX_DEVICES ||
        !res->dev[device])
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "sync: device %d was not used with these resources",
                         device);
    vdx_gpu_dev *g;
    vdx_status st = vdx_gpu_enter(res, device, &g);
    if (st) return st;
    st = vdx_gpu_sync(g, "synchronize");
    vdx_gpu_leave(g);
    return st;
}

int64_t vdx_gpu_max_k(int device) {
    if (device < 0 || device >= vdx_gpu_num_devices()) return 0;
    int smem = 0;
    if (cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                               device) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    int64_t k = 1;
    while (vdx_gk_select_smem((int)(k * 2)) <= (size_t)smem &&
           k < ((int64_t)1 << 20))
        k *= 2;
    return k;
}

/* ---- memory ------------------------------------------------------------------- */

vdx_status vdx_gpu_alloc(const vdx_gpu_dev *g, size_t bytes, const char *what,
                         void **p) {
    *p = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(p, bytes);
    if (e == cudaSuccess) return VDX_OK;
    cudaGetLastError();
    *p = NULL;
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError();
    return vdx_raise(VDX_ERR_OUT_OF_MEMORY,
                     "GPU %d: out of device memory allocating %zu bytes for "
                     "%s (%zu of %zu bytes free): %s",
                     g->device, bytes, what, fr, tot, cudaGetErrorName(e));
}

void vdx_gpu_free(void *p) {
    if (p) cudaFree(p);
}

vdx_gpu_tmp_mark vdx_gpu_tmp_mark_get(const vdx_gpu_dev *g) {
    vdx_gpu_tmp_mark m = {g->pool_used, g->nover};
    return m;
}

size_t vdx_gpu_tmp_budget(const vdx_gpu_dev *g) {
    size_t left = g->pool_size - g->pool_used;
    return left >= ((size_t)64 << 20) ? left : NO_POOL_BUDGET;
}

vdx_status vdx_gpu_tmp(vdx_gpu_dev *g, size_t bytes, const char *what,
                       void **p) {
    *p = NULL;
    size_t sz = (bytes + 255) & ~(size_t)255;
    if (sz < bytes) return vdx_raise(VDX_ERR_OUT_OF_MEMORY, "%s: size overflow", what);
    if (sz == 0) sz = 256;
    if (g->pool && sz <= g->pool_size - g->pool_used) {
        *p = g->pool + g->pool_used;
        g->pool_used += sz;
        return VDX_OK;
    }
    if (g->nover == g->cap_over) {
        int nc = g->cap_over ? 2 * g->cap_over : 16;
        void **no = vdx_realloc_array(g->over, (size_t)nc, sizeof(void *));
        if (!no) return VDX_ERR_OUT_OF_MEMORY;
        g->over = no;
        g->cap_over = nc;
    }
    vdx_status st = vdx_gpu_alloc(g, sz, what, p);
    if (st) return st;
    g->over[g->nover++] = *p;
    return VDX_OK;
}

void vdx_gpu_tmp_release(vdx_gpu_dev *g, vdx_gpu_tmp_mark m) {
    if (g->nover > m.nover) {
        /* cudaFree waits for the work that may still use the buffers */
        for (int i = m.nover; i < g->nover; i++) cudaFree(g->over[i]);
        g->nover = m.nover;
    }
    g->pool_used = m.used;
}

vdx_status vdx_gpu_h2d(vdx_gpu_dev *g, void *dst, const void *src,
                       size_t bytes) {
    if (!bytes) return VDX_OK;
    return vdx_gpu_cuda(g, cudaMemcpyAsync(dst, src, bytes,
                                           cudaMemcpyHostToDevice, g->stream),
                        "copy to the device");
}

vdx_status vdx_gpu_d2h(vdx_gpu_dev *g, void *dst, const void *src,
                       size_t bytes) {
    if (!bytes) return VDX_OK;
    vdx_status st = vdx_gpu_cuda(
        g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream),
        "copy from the device");
    return st ? st : vdx_gpu_sync(g, "copy from the device");
}

vdx_status vdx_gpu_d2d(vdx_gpu_dev *g, void *dst, const void *src,
                       size_t bytes) {
    if (!bytes) return VDX_OK;
    return vdx_gpu_cuda(g, cudaMemcpyAsync(dst, src, bytes,
                                           cudaMemcpyDeviceToDevice, g->stream),
                        "copy on the device");
}

vdx_status vdx_gpu_sync(vdx_gpu_dev *g, const char *what) {
    return vdx_gpu_cuda(g, cudaStreamSynchronize(g->stream), what);
}

/* ---- options -------------------------------------------------------------------- */

void vdx_gpu_config_init(vdx_gpu_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->indices_options = VDX_GPU_INDICES_64_BIT;
}

void vdx_gpu_cloner_options_init(vdx_gpu_cloner_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->indices_options = VDX_GPU_INDICES_64_BIT;
    o->shard_type = 1;
}

/* ---- the common part of GPU indexes --------------------------------------------- */

vdx_status vdx_gpu_index_init(vdx_gpu_index *g, const vdx_index_ops *ops,
                              int kind, vdx_gpu_resources *res, int64_t d,
                              vdx_metric metric, const vdx_gpu_config *cfg) {
    if (!res) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "resources is NULL");
    if (d <= 0 || d > VDX_MAX_DIM)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "dimension d=%lld must be in 1..%lld", (long long)d,
                         (long long)VDX_MAX_DIM);
    if (metric != VDX_METRIC_L2 && metric != VDX_METRIC_INNER_PRODUCT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "metric %d is not supported on the GPU (0 = inner "
                         "product, 1 = L2)",
                         (int)metric);
    vdx_gpu_config c;
    vdx_gpu_config_init(&c);
    if (cfg) c = *cfg;
    if (c.indices_options < VDX_GPU_INDICES_CPU ||
        c.indices_options > VDX_GPU_INDICES_64_BIT)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "indicesOptions=%d is not one of INDICES_CPU (0), "
                         "INDICES_IVF (1), INDICES_32_BIT (2), INDICES_64_BIT "
                         "(3)",
                         c.indices_options);
    vdx_status st = vdx_gpu_check_device(c.device, ops->type_name);
    if (st) return st;
    g->base.ops = ops;
    g->base.d = d;
    g->base.metric = metric;
    g->base.is_trained = 1;
    g->kind = kind;
    g->device = c.device;
    g->cfg = c;
    g->res = res;
    vdx_gpu_res_ref(res);
    return VDX_OK;
}

void vdx_gpu_index_release(vdx_gpu_index *g) {
    vdx_gpu_resources_free(g->res);
    g->res = NULL;
}

vdx_gpu_index *vdx_gpu_as_index(const vdx_index *ix) {
    if (vdx_gpu_is_flat(ix) || vdx_gpu_is_ivf(ix))
        return (vdx_gpu_index *)(void *)ix;
    return NULL;
}

int vdx_gpu_index_is_gpu(const vdx_index *ix) {
    return vdx_gpu_as_index(ix) != NULL;
}

int vdx_gpu_index_device(const vdx_index *ix) {
    vdx_gpu_index *g = vdx_gpu_as_index(ix);
    return g ? g->device : -1;
}

vdx_gpu_resources *vdx_gpu_index_resources(const vdx_index *ix) {
    vdx_gpu_index *g = vdx_gpu_as_index(ix);
    return g ? g->res : NULL;
}

vdx_status vdx_gpu_index_config(const vdx_index *ix, vdx_gpu_config *out) {
    vdx_clear_error();
    vdx_gpu_index *g = vdx_gpu_as_index(ix);
    if (!g || !out)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU index");
    *out = g->cfg;
    return VDX_OK;
}

vdx_status vdx_gpu_check_k(const vdx_gpu_dev *g, int64_t k, const char *who) {
    if (k > g->max_k)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "%s: k=%lld is more than the GPU k-selection allows "
                         "on device %d (k <= %lld)",
                         who, (long long)k, g->device, (long long)g->max_k);
    return VDX_OK;
}
