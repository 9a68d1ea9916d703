/*
 * stub.c — the GPU API in a build without CUDA (no nvcc at configure time,
 * or -DVDX_GPU=OFF): no devices, resources that can be made and freed (so
 * code that creates them first gets its error where FAISS code expects it,
 * at the clone), and VDX_ERR_UNSUPPORTED for everything that needs a GPU.
 * Compiled instead of the rest of src/gpu/.
 */
#include <string.h>

#include "common/common.h"
#include "vecdex_gpu.h"

#define NO_CUDA "vecdex was built without CUDA (nvcc was not found, or VDX_GPU=OFF)"

struct vdx_gpu_resources {
    size_t temp;
};

static vdx_status no_gpu(const char *what) {
    return vdx_raise(VDX_ERR_UNSUPPORTED, "%s: no GPU available (%s)", what,
                     NO_CUDA);
}

int vdx_gpu_num_devices(void) { return 0; }
const char *vdx_gpu_info(void) { return NO_CUDA; }
int64_t vdx_gpu_max_k(int device) {
    (void)device;
    return 0;
}

vdx_status vdx_gpu_resources_new(vdx_gpu_resources **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = vdx_calloc(1, sizeof **out);
    if (!*out) return VDX_ERR_OUT_OF_MEMORY;
    (*out)->temp = SIZE_MAX;
    return VDX_OK;
}
void vdx_gpu_resources_free(vdx_gpu_resources *res) { vdx_free(res); }
vdx_status vdx_gpu_resources_set_temp_memory(vdx_gpu_resources *res,
                                             size_t bytes) {
    vdx_clear_error();
    if (!res) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "resources is NULL");
    res->temp = bytes;
    return VDX_OK;
}
size_t vdx_gpu_resources_temp_memory(const vdx_gpu_resources *res) {
    return res ? res->temp : 0;
}
vdx_status vdx_gpu_resources_sync(vdx_gpu_resources *res, int device) {
    (void)res;
    (void)device;
    vdx_clear_error();
    return no_gpu("sync");
}

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

#define NO_INDEX(what)                  \
    do {                                \
        vdx_clear_error();              \
        if (out) *out = NULL;           \
        return no_gpu(what);            \
    } while (0)

vdx_status vdx_gpu_index_flat_new(vdx_gpu_resources *res, int64_t d,
                                  vdx_metric metric, const vdx_gpu_config *cfg,
                                  vdx_index **out) {
    (void)res, (void)d, (void)metric, (void)cfg;
    NO_INDEX("GpuIndexFlat");
}
vdx_status vdx_gpu_index_ivf_flat_new(vdx_gpu_resources *res, int64_t d,
                                      int64_t nlist, vdx_metric metric,
                                      const vdx_gpu_config *cfg,
                                      vdx_index **out) {
    (void)res, (void)d, (void)nlist, (void)metric, (void)cfg;
    NO_INDEX("GpuIndexIVFFlat");
}
vdx_status vdx_gpu_index_ivfpq_new(vdx_gpu_resources *res, int64_t d,
                                   int64_t nlist, int64_t M, int nbits,
                                   vdx_metric metric, const vdx_gpu_config *cfg,
                                   vdx_index **out) {
    (void)res, (void)d, (void)nlist, (void)M, (void)nbits, (void)metric,
        (void)cfg;
    NO_INDEX("GpuIndexIVFPQ");
}
vdx_status vdx_gpu_index_ivf_sq_new(vdx_gpu_resources *res, int64_t d,
                                    int64_t nlist, int qtype, vdx_metric metric,
                                    int by_residual, const vdx_gpu_config *cfg,
                                    vdx_index **out) {
    (void)res, (void)d, (void)nlist, (void)qtype, (void)metric,
        (void)by_residual, (void)cfg;
    NO_INDEX("GpuIndexIVFScalarQuantizer");
}

int vdx_gpu_index_is_gpu(const vdx_index *ix) {
    (void)ix;
    return 0;
}
int vdx_gpu_index_device(const vdx_index *ix) {
    (void)ix;
    return -1;
}
vdx_gpu_resources *vdx_gpu_index_resources(const vdx_index *ix) {
    (void)ix;
    return NULL;
}
vdx_status vdx_gpu_index_config(const vdx_index *ix, vdx_gpu_config *out) {
    (void)ix, (void)out;
    vdx_clear_error();
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU index");
}
int64_t vdx_gpu_index_memory(const vdx_index *ix) {
    (void)ix;
    return 0;
}
int64_t vdx_gpu_index_ivf_nlist(const vdx_index *ix) {
    (void)ix;
    return 0;
}
int64_t vdx_gpu_index_ivf_nprobe(const vdx_index *ix) {
    (void)ix;
    return 0;
}
vdx_status vdx_gpu_index_ivf_set_nprobe(vdx_index *ix, int64_t nprobe) {
    (void)ix, (void)nprobe;
    vdx_clear_error();
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU IVF index");
}
int64_t vdx_gpu_index_ivf_list_size(const vdx_index *ix, int64_t list) {
    (void)ix, (void)list;
    return -1;
}
vdx_status vdx_gpu_index_ivf_list_ids(const vdx_index *ix, int64_t list,
                                      vdx_idx_t *out) {
    (void)ix, (void)list, (void)out;
    vdx_clear_error();
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU IVF index");
}
vdx_status vdx_gpu_index_ivf_centroids(const vdx_index *ix, float *out) {
    (void)ix, (void)out;
    vdx_clear_error();
    return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "not a GPU IVF index");
}
int64_t vdx_gpu_index_ivfpq_M(const vdx_index *ix) {
    (void)ix;
    return 0;
}
int vdx_gpu_index_ivfpq_nbits(const vdx_index *ix) {
    (void)ix;
    return 0;
}
int vdx_gpu_index_ivf_sq_qtype(const vdx_index *ix) {
    (void)ix;
    return -1;
}

vdx_status vdx_gpu_index_cpu_to_gpu(vdx_gpu_resources *res, int device,
                                    const vdx_index *cpu,
                                    const vdx_gpu_cloner_options *opts,
                                    vdx_index **out) {
    (void)res, (void)device, (void)cpu, (void)opts;
    NO_INDEX("index_cpu_to_gpu");
}

/* No GPU index can exist: the CPU copy of an index is a plain copy. */
vdx_status vdx_gpu_index_gpu_to_cpu(const vdx_index *ix, vdx_index **out) {
    vdx_clear_error();
    if (!out || !ix)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index or out is NULL");
    *out = NULL;
    uint8_t *buf = NULL;
    size_t size = 0;
    vdx_status st = vdx_serialize_index(ix, &buf, &size);
    if (st) return st;
    st = vdx_deserialize_index(buf, size, out);
    vdx_free_buffer(buf);
    return st;
}

vdx_status vdx_gpu_index_cpu_to_gpu_multiple(int ndev,
                                             vdx_gpu_resources *const *res,
                                             const int *devices,
                                             const vdx_index *cpu,
                                             const vdx_gpu_cloner_options *o,
                                             vdx_index **out) {
    (void)ndev, (void)res, (void)devices, (void)cpu, (void)o;
    NO_INDEX("index_cpu_to_gpu_multiple");
}
int64_t vdx_gpu_multi_count(const vdx_index *ix) {
    (void)ix;
    return 0;
}
vdx_index *vdx_gpu_multi_at(const vdx_index *ix, int64_t i) {
    (void)ix, (void)i;
    return NULL;
}
int vdx_gpu_multi_kind(const vdx_index *ix) {
    (void)ix;
    return 0;
}

vdx_status vdx_gpu_knn(vdx_gpu_resources *res, int device, vdx_metric metric,
                       int64_t d, int64_t nq, const float *xq, int64_t nb,
                       const float *xb, int64_t k, float *distances,
                       vdx_idx_t *labels) {
    (void)res, (void)device, (void)metric, (void)d, (void)nq, (void)xq,
        (void)nb, (void)xb, (void)k, (void)distances, (void)labels;
    vdx_clear_error();
    return no_gpu("knn_gpu");
}
