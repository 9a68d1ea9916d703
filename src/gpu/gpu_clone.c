/*
 * gpu_clone.c — moving indexes between the CPU and GPUs (FAISS:
 * GpuCloner.cpp: index_cpu_to_gpu, index_gpu_to_cpu,
 * index_cpu_to_gpu_multiple, ToGpuClonerMultiple::clone_Index_to_shards).
 *
 * Kinds with a GPU version: IndexFlat* (-> GpuIndexFlat), IndexIVFFlat,
 * IndexIVFPQ, IndexIVFScalarQuantizer (-> their GPU kinds) and
 * IndexScalarQuantizer fp16 (-> GpuIndexFlat in fp16, as FAISS).  The
 * wrappers IndexIDMap, IndexIDMap2 and IndexPreTransform stay on the CPU
 * around a copy of what they wrap.  Anything else is refused with a message
 * naming the kind: a GPU index must never silently be a CPU copy.
 */
#include <string.h>

#include "gpu_internal.h"
#include "index/index_pq.h"
#include "index/index_sq.h"
#include "index/pretransform.h"

#define COPY_ROWS 1048576

static const char *const GPU_KINDS =
    "GPU kinds: IndexFlat, IndexFlatL2, IndexFlatIP, IndexIVFFlat, "
    "IndexIVFPQ, IndexIVFScalarQuantizer, IndexScalarQuantizer (fp16); "
    "IndexIDMap, IndexIDMap2 and IndexPreTransform move what they wrap";

static void config_of(const vdx_gpu_cloner_options *o, int device,
                      vdx_gpu_config *c) {
    vdx_gpu_config_init(c);
    c->device = device;
    if (!o) return;
    c->use_float16 = o->use_float16;
    c->use_float16_coarse = o->use_float16_coarse;
    c->indices_options = o->indices_options;
    c->use_precomputed = o->use_precomputed;
}

static int is_sq_fp16(const vdx_index *ix) {
    const vdx_sq *sq = vdx_index_sq_quantizer(ix);
    return sq && vdx_is_index_sq(ix) && sq->qtype == VDX_SQ_FP16;
}

static int is_ivf_kind(const vdx_index *ix) {
    return vdx_index_is_ivf(ix) &&
           (vdx_is_ivfpq(ix) || vdx_is_ivfsq(ix) ||
            strcmp(vdx_index_type_name(ix), "IndexIVFFlat") == 0);
}

/* ---- wrappers ----------------------------------------------------------------- */

/* A copy of the IDMap / PreTransform src around sub; consumes sub. */
static vdx_status rewrap(const vdx_index *src, vdx_index *sub,
                         vdx_index **out) {
    *out = NULL;
    vdx_status st;
    if (vdx_is_idmap(src)) {
        const vdx_idmap *s = (const vdx_idmap *)src;
        vdx_index *w = NULL;
        /* the constructor wants an empty sub-index; the positions it holds
         * are the ones id_map describes */
        int64_t saved = sub->ntotal;
        sub->ntotal = 0;
        st = s->is_map2 ? vdx_index_idmap2_new(sub, &w)
                        : vdx_index_idmap_new(sub, &w);
        sub->ntotal = saved;
        if (st) {
            vdx_index_free(sub);
            return st;
        }
        vdx_idmap *m = (vdx_idmap *)w;
        if (!(st = vdx_idmap_reserve(m, src->ntotal))) {
            if (src->ntotal)
                memcpy(m->id_map, s->id_map, (size_t)src->ntotal * 8);
            w->ntotal = src->ntotal;
            w->is_trained = sub->is_trained;
            if (s->is_map2) st = vdx_idmap2_rebuild(m);
        }
        if (st) {
            vdx_index_free(w);
            return st;
        }
        *out = w;
        return VDX_OK;
    }
    int64_t nc = vdx_index_pretransform_chain_size(src);
    vdx_vt **chain = vdx_calloc((size_t)(nc ? nc : 1), sizeof(vdx_vt *));
    if (!chain) {
        vdx_index_free(sub);
        return VDX_ERR_OUT_OF_MEMORY;
    }
    st = VDX_OK;
    for (int64_t i = 0; i < nc && !st; i++)
        st = vdx_vt_clone(vdx_index_pretransform_chain(src, i), &chain[i]);
    if (!st) st = vdx_pretransform_make(chain, nc, sub, out);
    if (st) {
        for (int64_t i = 0; i < nc; i++) vdx_vt_free(chain[i]);
        vdx_index_free(sub);
    }
    vdx_free(chain);
    return st;
}

static int is_wrapper(const vdx_index *ix) {
    return vdx_is_idmap(ix) || vdx_is_pretransform(ix);
}

static const vdx_index *wrapped(const vdx_index *ix) {
    return vdx_is_idmap(ix) ? vdx_index_sub_index(ix)
                            : vdx_index_pretransform_index(ix);
}

/* ---- to one GPU ------------------------------------------------------------------ */

/* Adds cpu's vectors [i0, i1) (a flat or SQ-fp16 index) to the GPU flat g. */
static vdx_status copy_rows(const vdx_index *cpu, int64_t i0, int64_t i1,
                            vdx_index *g) {
    const float *data = vdx_index_flat_data(cpu);
    if (data) return vdx_index_add(g, i1 - i0, data + i0 * cpu->d);
    float *buf = vdx_malloc_array((size_t)VDX_MIN(i1 - i0, (int64_t)COPY_ROWS),
                                  (size_t)cpu->d * 4);
    if (!buf) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    for (int64_t a = i0; a < i1 && !st; a += COPY_ROWS) {
        int64_t m = VDX_MIN((int64_t)COPY_ROWS, i1 - a);
        st = vdx_index_reconstruct_n(cpu, a, m, buf);
        if (!st) st = vdx_index_add(g, m, buf);
    }
    vdx_free(buf);
    return st;
}

static vdx_status to_gpu(vdx_gpu_resources *res, int device,
                         const vdx_index *cpu, const vdx_gpu_cloner_options *o,
                         vdx_index **out) {
    *out = NULL;
    vdx_gpu_config cfg;
    config_of(o, device, &cfg);
    vdx_status st;
    if (vdx_is_flat(cpu) || is_sq_fp16(cpu)) {
        if (is_sq_fp16(cpu)) cfg.use_float16 = 1;
        vdx_index *g = NULL;
        if ((st = vdx_gpu_index_flat_new(res, cpu->d, cpu->metric, &cfg, &g)))
            return st;
        if ((st = copy_rows(cpu, 0, cpu->ntotal, g))) {
            vdx_index_free(g);
            return st;
        }
        *out = g;
        return VDX_OK;
    }
    if (is_ivf_kind(cpu))
        return vdx_gpu_ivf_from_cpu(res, cpu, &cfg, NULL, NULL, out);
    if (is_wrapper(cpu)) {
        vdx_index *sub = NULL;
        if ((st = to_gpu(res, device, wrapped(cpu), o, &sub))) return st;
        return rewrap(cpu, sub, out);
    }
    if (vdx_gpu_index_is_gpu(cpu)) { /* GPU -> GPU through the host */
        vdx_index *c = NULL;
        if ((st = vdx_gpu_index_gpu_to_cpu(cpu, &c))) return st;
        st = to_gpu(res, device, c, o, out);
        vdx_index_free(c);
        return st;
    }
    return vdx_raise(VDX_ERR_UNSUPPORTED,
                     "index_cpu_to_gpu: %s has no GPU version in vecdex (%s)",
                     vdx_index_type_name(cpu), GPU_KINDS);
}

vdx_status vdx_gpu_index_cpu_to_gpu(vdx_gpu_resources *res, int device,
                                    const vdx_index *cpu,
                                    const vdx_gpu_cloner_options *opts,
                                    vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!cpu) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index is NULL");
    if (!res) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "resources is NULL");
    vdx_status st = vdx_gpu_check_device(device, "index_cpu_to_gpu");
    if (st) return st;
    return to_gpu(res, device, cpu, opts, out);
}

/* ---- back to the CPU ------------------------------------------------------------- */

static vdx_status to_cpu(const vdx_index *ix, vdx_index **out);

static vdx_status flat_to_cpu(const vdx_index *g, vdx_index *dst) {
    const int64_t n = g->ntotal, d = g->d;
    float *buf = vdx_malloc_array((size_t)VDX_MAX(VDX_MIN(n, (int64_t)COPY_ROWS), (int64_t)1),
                                  (size_t)d * 4);
    if (!buf) return VDX_ERR_OUT_OF_MEMORY;
    vdx_status st = VDX_OK;
    for (int64_t a = 0; a < n && !st; a += COPY_ROWS) {
        int64_t m = VDX_MIN((int64_t)COPY_ROWS, n - a);
        st = vdx_index_reconstruct_n(g, a, m, buf);
        if (!st) st = vdx_index_add(dst, m, buf);
    }
    vdx_free(buf);
    return st;
}

static vdx_status to_cpu(const vdx_index *ix, vdx_index **out) {
    *out = NULL;
    vdx_status st;
    if (vdx_gpu_is_flat(ix)) {
        vdx_index *c = NULL;
        if ((st = vdx_index_flat_new(ix->d, ix->metric, &c))) return st;
        if ((st = flat_to_cpu(ix, c))) {
            vdx_index_free(c);
            return st;
        }
        *out = c;
        return VDX_OK;
    }
    if (vdx_gpu_is_ivf(ix)) return vdx_gpu_ivf_to_cpu(ix, out);
    if (vdx_gpu_multi_kind(ix) == VDX_GPU_MULTI_REPLICAS)
        return to_cpu(vdx_gpu_multi_at(ix, 0), out);
    if (vdx_gpu_multi_kind(ix) == VDX_GPU_MULTI_SHARDS) {
        /* one index holding every shard's vectors (FAISS's merge) */
        vdx_index *c = NULL;
        if ((st = to_cpu(vdx_gpu_multi_at(ix, 0), &c))) return st;
        for (int64_t i = 1; i < vdx_gpu_multi_count(ix) && !st; i++) {
            const vdx_index *s = vdx_gpu_multi_at(ix, i);
            if (vdx_gpu_is_flat(s) && vdx_is_flat(c))
                st = flat_to_cpu(s, c);
            else if (vdx_gpu_is_ivf(s) && vdx_index_is_ivf(c))
                st = vdx_gpu_ivf_merge_into(c, s);
            else
                st = vdx_raise(VDX_ERR_UNSUPPORTED,
                               "index_gpu_to_cpu: cannot merge shard %lld "
                               "(%s) into a %s",
                               (long long)i, vdx_index_type_name(s),
                               vdx_index_type_name(c));
        }
        if (st) {
            vdx_index_free(c);
            return st;
        }
        *out = c;
        return VDX_OK;
    }
    if (is_wrapper(ix)) {
        vdx_index *sub = NULL;
        if ((st = to_cpu(wrapped(ix), &sub))) return st;
        return rewrap(ix, sub, out);
    }
    /* a CPU index: an independent copy */
    uint8_t *buf = NULL;
    size_t size = 0;
    if ((st = vdx_serialize_index(ix, &buf, &size))) return st;
    st = vdx_deserialize_index(buf, size, out);
    vdx_free_buffer(buf);
    return st;
}

vdx_status vdx_gpu_index_gpu_to_cpu(const vdx_index *ix, vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!ix) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "index is NULL");
    return to_cpu(ix, out);
}

/* ---- to several GPUs -------------------------------------------------------------- */

typedef struct shard_sel {
    int type;
    int64_t n, i, ntotal, nlist;
} shard_sel;

static int keep_entry(int64_t list, vdx_idx_t id, void *ctx) {
    const shard_sel *s = ctx;
    switch (s->type) {
    case 1: return ((id % s->n) + s->n) % s->n == s->i;
    case 2: return id >= s->i * s->ntotal / s->n && id < (s->i + 1) * s->ntotal / s->n;
    default: return list >= s->i * s->nlist / s->n && list < (s->i + 1) * s->nlist / s->n;
    }
}

static vdx_status to_multi(int ndev, vdx_gpu_resources *const *res,
                           const int *devs, const vdx_index *cpu,
                           const vdx_gpu_cloner_options *o, vdx_index **out) {
    *out = NULL;
    vdx_status st;
    if (ndev == 1) return to_gpu(res[0], devs[0], cpu, o, out);
    if (is_wrapper(cpu)) {
        vdx_index *sub = NULL;
        if ((st = to_multi(ndev, res, devs, wrapped(cpu), o, &sub))) return st;
        return rewrap(cpu, sub, out);
    }
    const int flat = vdx_is_flat(cpu), ivf = is_ivf_kind(cpu);
    if (!flat && !ivf && !is_sq_fp16(cpu))
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "index_cpu_to_gpu_multiple: %s has no GPU version in "
                         "vecdex (%s)",
                         vdx_index_type_name(cpu), GPU_KINDS);
    const int shard = o && o->shard;
    if (shard && !flat && !ivf)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "index_cpu_to_gpu_multiple: shards are implemented "
                         "for IndexFlat, IndexIVFFlat, IndexIVFPQ and "
                         "IndexIVFScalarQuantizer, not %s",
                         vdx_index_type_name(cpu));
    const int shard_type = o ? o->shard_type : 1;
    if (shard && ivf && shard_type != 1 && shard_type != 2 && shard_type != 4)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_cpu_to_gpu_multiple: shard_type %d is not "
                         "implemented (1: ids modulo n, 2: id ranges, 4: list "
                         "ranges)",
                         shard_type);
    vdx_index **subs = vdx_calloc((size_t)ndev, sizeof(vdx_index *));
    if (!subs) return VDX_ERR_OUT_OF_MEMORY;
    st = VDX_OK;
    for (int i = 0; i < ndev && !st; i++) {
        if (!shard) {
            st = to_gpu(res[i], devs[i], cpu, o, &subs[i]);
        } else if (flat) {
            vdx_gpu_config cfg;
            config_of(o, devs[i], &cfg);
            st = vdx_gpu_index_flat_new(res[i], cpu->d, cpu->metric, &cfg,
                                        &subs[i]);
            if (!st)
                st = copy_rows(cpu, cpu->ntotal * i / ndev,
                               cpu->ntotal * (i + 1) / ndev, subs[i]);
        } else {
            vdx_gpu_config cfg;
            config_of(o, devs[i], &cfg);
            shard_sel s = {shard_type, ndev, i, cpu->ntotal,
                           vdx_index_ivf_nlist(cpu)};
            st = vdx_gpu_ivf_from_cpu(res[i], cpu, &cfg, keep_entry, &s,
                                      &subs[i]);
        }
    }
    if (!st)
        st = vdx_gpu_multi_make(shard ? VDX_GPU_MULTI_SHARDS
                                      : VDX_GPU_MULTI_REPLICAS,
                                ndev, subs, flat, out);
    if (st)
        for (int i = 0; i < ndev; i++) vdx_index_free(subs[i]);
    vdx_free(subs);
    return st;
}

vdx_status vdx_gpu_index_cpu_to_gpu_multiple(int ndev,
                                             vdx_gpu_resources *const *res,
                                             const int *devices,
                                             const vdx_index *cpu,
                                             const vdx_gpu_cloner_options *o,
                                             vdx_index **out) {
    vdx_clear_error();
    if (!out) return vdx_raise(VDX_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!cpu || ndev < 1 || !res || !devices)
        return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                         "index_cpu_to_gpu_multiple: needs an index and at "
                         "least one (resources, device) pair, got %d",
                         ndev);
    if (o && o->common_ivf_quantizer)
        return vdx_raise(VDX_ERR_UNSUPPORTED,
                         "index_cpu_to_gpu_multiple: common_ivf_quantizer "
                         "(IndexShardsIVF) is not implemented");
    for (int i = 0; i < ndev; i++) {
        if (!res[i])
            return vdx_raise(VDX_ERR_INVALID_ARGUMENT,
                             "index_cpu_to_gpu_multiple: resources %d is NULL",
                             i);
        vdx_status st = vdx_gpu_check_device(devices[i],
                                             "index_cpu_to_gpu_multiple");
        if (st) return st;
    }
    return to_multi(ndev, res, devices, cpu, o, out);
}
