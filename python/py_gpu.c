/*
 * py_gpu.c — the GPU classes and functions with FAISS's names:
 * StandardGpuResources, GpuIndexFlat / GpuIndexFlatL2 / GpuIndexFlatIP,
 * GpuIndexIVFFlat, GpuIndexIVFPQ, GpuIndexIVFScalarQuantizer, the
 * IndexShards / IndexReplicas that index_cpu_to_gpu_multiple returns,
 * get_num_gpus, index_cpu_to_gpu, index_gpu_to_cpu,
 * index_cpu_to_gpu_multiple and knn_gpu (the C part; vecdex/gpu.py adds the
 * option classes and FAISS's pure-Python helpers).  GPU indexes are
 * ordinary Index objects: search, add, train, reset, reconstruct come from
 * the base type.  Without a GPU the classes exist and constructing one
 * raises RuntimeError saying why.
 */
#include "py_vecdex.h"
#include "vecdex_gpu.h"

#include <string.h>

/* ========================================================================= */
/* StandardGpuResources                                                      */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    vdx_gpu_resources *res;
} ResObject;

static int Res_init(ResObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, ":StandardGpuResources", kwlist))
        return -1;
    if (self->res) return 0;
    vdx_status st = vdx_gpu_resources_new(&self->res);
    if (st) {
        raise_status(st);
        return -1;
    }
    return 0;
}

static void Res_dealloc(ResObject *self) {
    vdx_gpu_resources_free(self->res);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Res_setTempMemory(ResObject *self, PyObject *arg) {
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    vdx_status st = vdx_gpu_resources_set_temp_memory(self->res, (size_t)n);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Res_noTempMemory(ResObject *self, PyObject *unused) {
    (void)unused;
    vdx_status st = vdx_gpu_resources_set_temp_memory(self->res, 0);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Res_getTempMemory(ResObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromUnsignedLongLong(vdx_gpu_resources_temp_memory(self->res));
}

static PyObject *Res_noop(ResObject *self, PyObject *args) {
    (void)self;
    (void)args;
    Py_RETURN_NONE;
}

static PyObject *Res_syncDefaultStream(ResObject *self, PyObject *arg) {
    long dev = PyLong_AsLong(arg);
    if (dev == -1 && PyErr_Occurred()) return NULL;
    vdx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = vdx_gpu_resources_sync(self->res, (int)dev);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyMethodDef Res_methods[] = {
    {"setTempMemory", (PyCFunction)Res_setTempMemory, METH_O,
     "setTempMemory(bytes): size of the temporary-memory pool per device."},
    {"noTempMemory", (PyCFunction)Res_noTempMemory, METH_NOARGS,
     "noTempMemory(): no pool (scratch memory from cudaMalloc)."},
    {"getTempMemory", (PyCFunction)Res_getTempMemory, METH_NOARGS,
     "getTempMemory() -> the pool size set (2**64-1: the default)."},
    {"setPinnedMemory", (PyCFunction)Res_noop, METH_VARARGS,
     "setPinnedMemory(bytes): accepted (vecdex pages through pageable "
     "memory)."},
    {"setDefaultNullStreamAllDevices", (PyCFunction)Res_noop, METH_NOARGS,
     "accepted; vecdex uses its own stream per device."},
    {"syncDefaultStreamCurrentDevice", (PyCFunction)Res_syncDefaultStream,
     METH_O, "syncDefaultStreamCurrentDevice(device): waits for the work."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ResType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.StandardGpuResources",
    .tp_basicsize = sizeof(ResObject),
    .tp_dealloc = (destructor)Res_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "StandardGpuResources(): a stream, a cuBLAS handle and a "
              "temporary-memory pool per device used (created lazily).",
    .tp_methods = Res_methods,
    .tp_init = (initproc)Res_init,
    .tp_new = PyType_GenericNew,
};

static vdx_gpu_resources *get_res(PyObject *o) {
    if (!PyObject_TypeCheck(o, &ResType)) {
        PyErr_Format(PyExc_TypeError,
                     "expected StandardGpuResources, got %.200s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    ResObject *r = (ResObject *)o;
    if (!r->res) {
        PyErr_SetString(PyExc_RuntimeError,
                        "StandardGpuResources is not initialised");
        return NULL;
    }
    return r->res;
}

/* ========================================================================= */
/* Options: attributes of the Python option / config objects                 */
/* ========================================================================= */
static int attr_int(PyObject *o, const char *name, long long *v) {
    if (!o || o == Py_None) return 0;
    PyObject *a = PyObject_GetAttrString(o, name);
    if (!a) {
        PyErr_Clear();
        return 0;
    }
    long long x = PyLong_AsLongLong(a);
    Py_DECREF(a);
    if (x == -1 && PyErr_Occurred()) return -1;
    *v = x;
    return 0;
}

static int cloner_options(PyObject *o, vdx_gpu_cloner_options *c) {
    vdx_gpu_cloner_options_init(c);
    long long v;
    struct {
        const char *name;
        int *field;
    } ints[] = {{"useFloat16", &c->use_float16},
                {"useFloat16CoarseQuantizer", &c->use_float16_coarse},
                {"indicesOptions", &c->indices_options},
                {"usePrecomputed", &c->use_precomputed},
                {"verbose", &c->verbose},
                {"shard", &c->shard},
                {"shard_type", &c->shard_type},
                {"common_ivf_quantizer", &c->common_ivf_quantizer}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        v = *ints[i].field;
        if (attr_int(o, ints[i].name, &v) < 0) return -1;
        *ints[i].field = (int)v;
    }
    v = c->reserve_vecs;
    if (attr_int(o, "reserveVecs", &v) < 0) return -1;
    c->reserve_vecs = v;
    return 0;
}

/* GpuIndex*Config: device, useFloat16 (flat), useFloat16LookupTables,
 * usePrecomputedTables, indicesOptions, flatConfig.useFloat16 */
static int index_config(PyObject *o, vdx_gpu_config *c, int ivfpq) {
    vdx_gpu_config_init(c);
    long long v;
    v = 0;
    if (attr_int(o, "device", &v) < 0) return -1;
    c->device = (int)v;
    v = c->indices_options;
    if (attr_int(o, "indicesOptions", &v) < 0) return -1;
    c->indices_options = (int)v;
    v = 0;
    if (attr_int(o, ivfpq ? "useFloat16LookupTables" : "useFloat16", &v) < 0)
        return -1;
    c->use_float16 = (int)v;
    v = 0;
    if (attr_int(o, "usePrecomputedTables", &v) < 0) return -1;
    c->use_precomputed = (int)v;
    if (o && o != Py_None) {
        PyObject *fc = PyObject_GetAttrString(o, "flatConfig");
        if (!fc) PyErr_Clear();
        v = 0;
        if (fc && attr_int(fc, "useFloat16", &v) < 0) {
            Py_DECREF(fc);
            return -1;
        }
        Py_XDECREF(fc);
        c->use_float16_coarse = (int)v;
    }
    return 0;
}

/* ========================================================================= */
/* GPU index classes                                                         */
/* ========================================================================= */
/* A GPU copy of the CPU index `cpu` into self. */
static int init_from_cpu(IndexObject *self, vdx_gpu_resources *res,
                         PyObject *cpuo, const vdx_gpu_config *cfg) {
    IndexObject *cpu = (IndexObject *)cpuo;
    if (ready(cpu) < 0) return -1;
    vdx_gpu_cloner_options co;
    vdx_gpu_cloner_options_init(&co);
    co.use_float16 = cfg->use_float16;
    co.use_float16_coarse = cfg->use_float16_coarse;
    co.indices_options = cfg->indices_options;
    co.use_precomputed = cfg->use_precomputed;
    vdx_index *out = NULL;
    cerr e;
    RUN_LOCKED(cpu->owner, rd, e,
               vdx_gpu_index_cpu_to_gpu(res, cfg->device, cpu->ix, &co, &out));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return index_take_root(self, VDX_OK, out);
}

static int check_new(vdx_status st, vdx_index *ix, IndexObject *self) {
    return index_take_root(self, st, ix);
}

static int flat_common(IndexObject *self, PyObject *reso, PyObject *a,
                       int metric, PyObject *cfgo) {
    if (index_init_once(self)) return -1;
    vdx_gpu_resources *res = get_res(reso);
    if (!res) return -1;
    vdx_gpu_config cfg;
    if (index_config(cfgo, &cfg, 0) < 0) return -1;
    if (PyObject_TypeCheck(a, &IndexType))
        return init_from_cpu(self, res, a, &cfg);
    long long d = PyLong_AsLongLong(a);
    if (d == -1 && PyErr_Occurred()) return -1;
    vdx_index *ix = NULL;
    vdx_status st_ = vdx_gpu_index_flat_new(res, d, (vdx_metric)metric, &cfg, &ix);
    return check_new(st_, ix, self);
}

static int GpuFlat_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"res", "d", "metric", "config", NULL};
    PyObject *reso, *a, *mo = Py_None, *cfg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OO:GpuIndexFlat", kwlist,
                                     &reso, &a, &mo, &cfg))
        return -1;
    int metric = VDX_METRIC_L2;
    if (mo != Py_None && !PyLong_Check(mo)) { /* (res, index, config) */
        cfg = mo;
    } else if (mo != Py_None) {
        metric = (int)PyLong_AsLong(mo);
        if (metric == -1 && PyErr_Occurred()) return -1;
    }
    return flat_common(self, reso, a, metric, cfg);
}

static int gpu_flat_metric(IndexObject *self, PyObject *args, PyObject *kw,
                           int metric, const char *fmt) {
    static char *kwlist[] = {"res", "d", "config", NULL};
    PyObject *reso, *a, *cfg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &reso, &a, &cfg))
        return -1;
    return flat_common(self, reso, a, metric, cfg);
}

static int GpuFlatL2_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return gpu_flat_metric(self, args, kw, VDX_METRIC_L2, "OO|O:GpuIndexFlatL2");
}

static int GpuFlatIP_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return gpu_flat_metric(self, args, kw, VDX_METRIC_INNER_PRODUCT,
                           "OO|O:GpuIndexFlatIP");
}

/* (res, d, nlist, metric, config), (res, quantizer, d, nlist, metric,
 * config) or (res, cpu_ivf_index, config) */
static int ivf_args(PyObject *args, PyObject *kw, int nextra,
                    const char *name, vdx_gpu_resources **res, PyObject **cpu,
                    long long *d, long long *nlist, long long *extra,
                    int *metric, PyObject **cfg) {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    *cpu = NULL;
    *cfg = kw ? PyDict_GetItemString(kw, "config") : NULL;
    if (!*cfg) *cfg = Py_None;
    if (n < 2) {
        PyErr_Format(PyExc_TypeError, "%s(res, d, nlist, ...) or %s(res, index)",
                     name, name);
        return -1;
    }
    if (!(*res = get_res(PyTuple_GET_ITEM(args, 0)))) return -1;
    Py_ssize_t i = 1;
    PyObject *a = PyTuple_GET_ITEM(args, 1);
    if (PyObject_TypeCheck(a, &IndexType)) {
        if (n <= 3 && vdx_index_is_ivf(((IndexObject *)a)->ix)) {
            *cpu = a;
            if (n == 3) *cfg = PyTuple_GET_ITEM(args, 2);
            return 0;
        }
        i = 2; /* a quantizer: only its dimension is used (the GPU index
                  trains its own coarse centroids) */
    }
    long long vals[8] = {0};
    int nv = 0;
    for (; i < n && nv < 2 + nextra + 2; i++, nv++) {
        PyObject *it = PyTuple_GET_ITEM(args, i);
        if (nv >= 2 + nextra + 1 || (!PyLong_Check(it) && !PyBool_Check(it))) {
            *cfg = it;
            nv++;
            break;
        }
        vals[nv] = PyLong_AsLongLong(it);
        if (vals[nv] == -1 && PyErr_Occurred()) return -1;
    }
    if (nv < 2 + nextra) {
        PyErr_Format(PyExc_TypeError, "%s: expected d, nlist and %d more "
                                      "arguments",
                     name, nextra);
        return -1;
    }
    *d = vals[0];
    *nlist = vals[1];
    for (int j = 0; j < nextra; j++) extra[j] = vals[2 + j];
    *metric = nv > 2 + nextra ? (int)vals[2 + nextra] : VDX_METRIC_L2;
    if (kw) {
        PyObject *m = PyDict_GetItemString(kw, "metric");
        if (m) *metric = (int)PyLong_AsLong(m);
    }
    return 0;
}

static int GpuIVFFlat_init(IndexObject *self, PyObject *args, PyObject *kw) {
    if (index_init_once(self)) return -1;
    vdx_gpu_resources *res;
    PyObject *cpu, *cfgo;
    long long d, nlist, extra[1];
    int metric;
    if (ivf_args(args, kw, 0, "GpuIndexIVFFlat", &res, &cpu, &d, &nlist, extra,
                 &metric, &cfgo) < 0)
        return -1;
    vdx_gpu_config cfg;
    if (index_config(cfgo, &cfg, 0) < 0) return -1;
    if (cpu) return init_from_cpu(self, res, cpu, &cfg);
    vdx_index *ix = NULL;
    vdx_status st_ = vdx_gpu_index_ivf_flat_new(res, d, nlist, (vdx_metric)metric,
                                                &cfg, &ix);
    return check_new(st_, ix, self);
}

static int GpuIVFPQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    if (index_init_once(self)) return -1;
    vdx_gpu_resources *res;
    PyObject *cpu, *cfgo;
    long long d, nlist, extra[2];
    int metric;
    if (ivf_args(args, kw, 2, "GpuIndexIVFPQ", &res, &cpu, &d, &nlist, extra,
                 &metric, &cfgo) < 0)
        return -1;
    vdx_gpu_config cfg;
    if (index_config(cfgo, &cfg, 1) < 0) return -1;
    if (cpu) return init_from_cpu(self, res, cpu, &cfg);
    vdx_index *ix = NULL;
    vdx_status st_ = vdx_gpu_index_ivfpq_new(res, d, nlist, extra[0], (int)extra[1],
                                             (vdx_metric)metric, &cfg, &ix);
    return check_new(st_, ix, self);
}

static int GpuIVFSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    if (index_init_once(self)) return -1;
    vdx_gpu_resources *res;
    PyObject *cpu, *cfgo;
    long long d, nlist, extra[1];
    int metric;
    if (ivf_args(args, kw, 1, "GpuIndexIVFScalarQuantizer", &res, &cpu, &d,
                 &nlist, extra, &metric, &cfgo) < 0)
        return -1;
    vdx_gpu_config cfg;
    if (index_config(cfgo, &cfg, 0) < 0) return -1;
    if (cpu) return init_from_cpu(self, res, cpu, &cfg);
    int by_res = 1;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n >= 7 && PyBool_Check(PyTuple_GET_ITEM(args, 6)))
        by_res = PyObject_IsTrue(PyTuple_GET_ITEM(args, 6));
    if (kw) {
        PyObject *r = PyDict_GetItemString(kw, "encodeResidual");
        if (r) by_res = PyObject_IsTrue(r);
    }
    vdx_index *ix = NULL;
    vdx_status st_ = vdx_gpu_index_ivf_sq_new(res, d, nlist, (int)extra[0],
                                              (vdx_metric)metric, by_res, &cfg,
                                              &ix);
    return check_new(st_, ix, self);
}

/* ---- shared getters ------------------------------------------------------- */
static PyObject *Gpu_getDevice(IndexObject *self, PyObject *unused) {
    (void)unused;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLong(vdx_gpu_index_device(self->ix));
}

static PyObject *Gpu_get_nprobe(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_gpu_index_ivf_nprobe(self->ix));
}

static int Gpu_set_nprobe(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (ready(self) < 0) return -1;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete nprobe");
        return -1;
    }
    long long n = PyLong_AsLongLong(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    vdx_status st = vdx_gpu_index_ivf_set_nprobe(self->ix, n);
    if (st) {
        raise_status(st);
        return -1;
    }
    return 0;
}

static PyObject *Gpu_setNumProbes(IndexObject *self, PyObject *v) {
    if (Gpu_set_nprobe(self, v, NULL) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Gpu_get_nlist(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_gpu_index_ivf_nlist(self->ix));
}

static PyObject *Gpu_getListLength(IndexObject *self, PyObject *v) {
    if (ready(self) < 0) return NULL;
    long long l = PyLong_AsLongLong(v);
    if (l == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(vdx_gpu_index_ivf_list_size(self->ix, l));
}

static PyObject *Gpu_memory(IndexObject *self, PyObject *unused) {
    (void)unused;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_gpu_index_memory(self->ix));
}

static PyMethodDef Gpu_methods[] = {
    {"getDevice", (PyCFunction)Gpu_getDevice, METH_NOARGS,
     "getDevice() -> the CUDA device of the index."},
    {"deviceMemory", (PyCFunction)Gpu_memory, METH_NOARGS,
     "deviceMemory() -> bytes of device memory the index holds."},
    {NULL, NULL, 0, NULL}};

static PyMethodDef GpuIVF_methods[] = {
    {"setNumProbes", (PyCFunction)Gpu_setNumProbes, METH_O,
     "setNumProbes(n): nprobe = n."},
    {"getListLength", (PyCFunction)Gpu_getListLength, METH_O,
     "getListLength(list) -> entries in the list."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef GpuIVF_getset[] = {
    {"nprobe", (getter)Gpu_get_nprobe, (setter)Gpu_set_nprobe,
     "lists probed per query (search params override it)", NULL},
    {"nlist", (getter)Gpu_get_nlist, NULL, "number of inverted lists", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject GpuIndexType = INDEX_TYPE_BODY(
    "GpuIndex", "Base class of the GPU indexes.", &IndexType, NULL,
    Gpu_methods, NULL);
static PyTypeObject GpuIndexFlatType = INDEX_TYPE_BODY(
    "GpuIndexFlat",
    "GpuIndexFlat(res, d, metric=METRIC_L2, config=None) or "
    "GpuIndexFlat(res, index_flat, config=None): exact search on a GPU.",
    &GpuIndexType, GpuFlat_init, NULL, NULL);
static PyTypeObject GpuIndexFlatL2Type = INDEX_TYPE_BODY(
    "GpuIndexFlatL2", "GpuIndexFlatL2(res, d or index, config=None).",
    &GpuIndexFlatType, GpuFlatL2_init, NULL, NULL);
static PyTypeObject GpuIndexFlatIPType = INDEX_TYPE_BODY(
    "GpuIndexFlatIP", "GpuIndexFlatIP(res, d or index, config=None).",
    &GpuIndexFlatType, GpuFlatIP_init, NULL, NULL);
static PyTypeObject GpuIndexIVFType = INDEX_TYPE_BODY(
    "GpuIndexIVF", "Base class of the GPU IVF indexes.", &GpuIndexType, NULL,
    GpuIVF_methods, GpuIVF_getset);
static PyTypeObject GpuIndexIVFFlatType = INDEX_TYPE_BODY(
    "GpuIndexIVFFlat",
    "GpuIndexIVFFlat(res, d, nlist, metric=METRIC_L2, config=None), "
    "(res, quantizer, d, nlist, metric, config) or (res, index_ivf_flat).",
    &GpuIndexIVFType, GpuIVFFlat_init, NULL, NULL);
static PyTypeObject GpuIndexIVFPQType = INDEX_TYPE_BODY(
    "GpuIndexIVFPQ",
    "GpuIndexIVFPQ(res, d, nlist, M, nbits, metric=METRIC_L2, config=None) "
    "or (res, index_ivfpq, config): nbits 8 or 4.",
    &GpuIndexIVFType, GpuIVFPQ_init, NULL, NULL);
static PyTypeObject GpuIndexIVFSQType = INDEX_TYPE_BODY(
    "GpuIndexIVFScalarQuantizer",
    "GpuIndexIVFScalarQuantizer(res, d, nlist, qtype, metric=METRIC_L2, "
    "encodeResidual=True, config=None) or (res, index_ivfsq).",
    &GpuIndexIVFType, GpuIVFSQ_init, NULL, NULL);

/* ---- IndexShards / IndexReplicas of GPU indexes ----------------------------- */
static PyObject *Multi_at(IndexObject *self, PyObject *v) {
    if (ready(self) < 0) return NULL;
    long long i = PyLong_AsLongLong(v);
    if (i == -1 && PyErr_Occurred()) return NULL;
    vdx_index *s = vdx_gpu_multi_at(self->ix, i);
    if (!s) {
        PyErr_Format(PyExc_IndexError, "member %lld out of range (%lld)", i,
                     (long long)vdx_gpu_multi_count(self->ix));
        return NULL;
    }
    return wrap_node(s, self->owner);
}

static PyObject *Multi_count(IndexObject *self, PyObject *unused) {
    (void)unused;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_gpu_multi_count(self->ix));
}

static PyMethodDef Multi_methods[] = {
    {"at", (PyCFunction)Multi_at, METH_O, "at(i) -> member i."},
    {"count", (PyCFunction)Multi_count, METH_NOARGS, "count() -> members."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject GpuShardsType = INDEX_TYPE_BODY(
    "IndexShards", "Shards over GPU indexes (from index_cpu_to_gpu_multiple).",
    &IndexType, NULL, Multi_methods, NULL);
static PyTypeObject GpuReplicasType = INDEX_TYPE_BODY(
    "IndexReplicas",
    "Replicas over GPU indexes (from index_cpu_to_gpu_multiple).", &IndexType,
    NULL, Multi_methods, NULL);

PyTypeObject *gpu_class_for(const vdx_index *ix, const char *tn);
PyTypeObject *gpu_class_for(const vdx_index *ix, const char *tn) {
    if (!strncmp(tn, "GpuIndexFlat", 12))
        return vdx_index_metric(ix) == VDX_METRIC_L2 ? &GpuIndexFlatL2Type
                                                     : &GpuIndexFlatIPType;
    if (!strcmp(tn, "GpuIndexIVFFlat")) return &GpuIndexIVFFlatType;
    if (!strcmp(tn, "GpuIndexIVFPQ")) return &GpuIndexIVFPQType;
    if (!strcmp(tn, "GpuIndexIVFScalarQuantizer")) return &GpuIndexIVFSQType;
    if (vdx_gpu_multi_kind(ix) == 1) return &GpuShardsType;
    if (vdx_gpu_multi_kind(ix) == 2) return &GpuReplicasType;
    return NULL;
}

/* ========================================================================= */
/* Module functions                                                          */
/* ========================================================================= */
static PyObject *mod_get_num_gpus(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    int n;
    Py_BEGIN_ALLOW_THREADS
    n = vdx_gpu_num_devices();
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(n);
}

static PyObject *mod_gpu_info(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(vdx_gpu_info());
}

static IndexObject *get_ix(PyObject *o) {
    if (!PyObject_TypeCheck(o, &IndexType)) {
        PyErr_Format(PyExc_TypeError, "expected a vecdex Index, got %.200s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    IndexObject *ix = (IndexObject *)o;
    return ready(ix) < 0 ? NULL : ix;
}

static PyObject *mod_cpu_to_gpu(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"provider", "device", "index", "options", NULL};
    PyObject *reso, *io, *oo = Py_None;
    int device;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OiO|O:index_cpu_to_gpu", kwlist,
                                     &reso, &device, &io, &oo))
        return NULL;
    vdx_gpu_resources *res = get_res(reso);
    IndexObject *ix = res ? get_ix(io) : NULL;
    if (!ix) return NULL;
    vdx_gpu_cloner_options co;
    if (cloner_options(oo, &co) < 0) return NULL;
    vdx_index *out = NULL;
    cerr e;
    RUN_LOCKED(ix->owner, rd, e,
               vdx_gpu_index_cpu_to_gpu(res, device, ix->ix, &co, &out));
    if (e.st) return raise_cerr(&e);
    return wrap_tree(out);
}

static PyObject *mod_gpu_to_cpu(PyObject *m, PyObject *io) {
    (void)m;
    IndexObject *ix = get_ix(io);
    if (!ix) return NULL;
    vdx_index *out = NULL;
    cerr e;
    RUN_LOCKED(ix->owner, rd, e, vdx_gpu_index_gpu_to_cpu(ix->ix, &out));
    if (e.st) return raise_cerr(&e);
    return wrap_tree(out);
}

static PyObject *mod_cpu_to_gpu_multiple(PyObject *m, PyObject *args,
                                         PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"provider", "devices", "index", "options", NULL};
    PyObject *rl, *dl, *io, *oo = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|O:index_cpu_to_gpu_multiple",
                                     kwlist, &rl, &dl, &io, &oo))
        return NULL;
    IndexObject *ix = get_ix(io);
    if (!ix) return NULL;
    PyObject *rs = PySequence_Fast(rl, "resources must be a sequence");
    if (!rs) return NULL;
    PyObject *ds = PySequence_Fast(dl, "devices must be a sequence");
    if (!ds) {
        Py_DECREF(rs);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(rs);
    PyObject *result = NULL;
    vdx_gpu_resources **res = NULL;
    int *devs = NULL;
    if (n < 1 || n != PySequence_Fast_GET_SIZE(ds)) {
        PyErr_Format(PyExc_ValueError,
                     "index_cpu_to_gpu_multiple: %zd resources for %zd devices",
                     n, PySequence_Fast_GET_SIZE(ds));
        goto done;
    }
    res = PyMem_Calloc((size_t)n, sizeof *res);
    devs = PyMem_Calloc((size_t)n, sizeof *devs);
    if (!res || !devs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!(res[i] = get_res(PySequence_Fast_GET_ITEM(rs, i)))) goto done;
        long dv = PyLong_AsLong(PySequence_Fast_GET_ITEM(ds, i));
        if (dv == -1 && PyErr_Occurred()) goto done;
        devs[i] = (int)dv;
    }
    vdx_gpu_cloner_options co;
    if (cloner_options(oo, &co) < 0) goto done;
    vdx_index *out = NULL;
    cerr e;
    RUN_LOCKED(ix->owner, rd, e,
               vdx_gpu_index_cpu_to_gpu_multiple((int)n, res, devs, ix->ix, &co,
                                                 &out));
    if (e.st) {
        raise_cerr(&e);
        goto done;
    }
    result = wrap_tree(out);
done:
    PyMem_Free(res);
    PyMem_Free(devs);
    Py_DECREF(rs);
    Py_DECREF(ds);
    return result;
}

static PyObject *mod_knn_gpu(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"res", "xq", "xb", "k", "metric", "device", NULL};
    PyObject *reso, *xqo, *xbo;
    long long k;
    int metric = VDX_METRIC_L2, device = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOL|ii:_knn_gpu", kwlist,
                                     &reso, &xqo, &xbo, &k, &metric, &device))
        return NULL;
    vdx_gpu_resources *res = get_res(reso);
    if (!res) return NULL;
    PyArrayObject *xb = as_array(xbo, NPY_FLOAT32);
    if (!xb) return NULL;
    if (PyArray_NDIM(xb) != 2) {
        Py_DECREF(xb);
        PyErr_SetString(ShapeError, "knn_gpu: xb must be (nb, d)");
        return NULL;
    }
    int64_t d = PyArray_DIM(xb, 1);
    PyArrayObject *xq = as_matrix(xqo, d, "xq");
    if (!xq) {
        Py_DECREF(xb);
        return NULL;
    }
    if (k <= 0) {
        Py_DECREF(xb);
        Py_DECREF(xq);
        PyErr_Format(ShapeError, "k must be > 0, got %lld", k);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(xq, 0), (npy_intp)k};
    PyArrayObject *Dout = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    PyArrayObject *Iout = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT64);
    if (!Dout || !Iout) {
        Py_XDECREF(Dout);
        Py_XDECREF(Iout);
        Py_DECREF(xb);
        Py_DECREF(xq);
        return NULL;
    }
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_gpu_knn(res, device, (vdx_metric)metric, d,
                                 PyArray_DIM(xq, 0), PyArray_DATA(xq),
                                 PyArray_DIM(xb, 0), PyArray_DATA(xb), k,
                                 PyArray_DATA(Dout), PyArray_DATA(Iout)));
    Py_END_ALLOW_THREADS
    Py_DECREF(xb);
    Py_DECREF(xq);
    if (e.st) {
        Py_DECREF(Dout);
        Py_DECREF(Iout);
        return raise_cerr(&e);
    }
    return Py_BuildValue("NN", Dout, Iout);
}

static PyObject *mod_max_k(PyObject *m, PyObject *arg) {
    (void)m;
    long dev = PyLong_AsLong(arg);
    if (dev == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(vdx_gpu_max_k((int)dev));
}

static PyMethodDef gpu_functions[] = {
    {"get_num_gpus", (PyCFunction)mod_get_num_gpus, METH_NOARGS,
     "get_num_gpus() -> CUDA devices usable (0 without a GPU or driver)."},
    {"gpu_info", (PyCFunction)mod_gpu_info, METH_NOARGS,
     "gpu_info() -> what the GPU support is, or why there is none."},
    {"gpu_max_k", (PyCFunction)mod_max_k, METH_O,
     "gpu_max_k(device) -> the largest k a GPU search accepts."},
    {"index_cpu_to_gpu", METH_KW_FN(mod_cpu_to_gpu), METH_VARARGS | METH_KEYWORDS,
     "index_cpu_to_gpu(res, device, index, options=None) -> a GPU copy."},
    {"index_gpu_to_cpu", (PyCFunction)mod_gpu_to_cpu, METH_O,
     "index_gpu_to_cpu(index) -> a CPU copy."},
    {"index_cpu_to_gpu_multiple", METH_KW_FN(mod_cpu_to_gpu_multiple),
     METH_VARARGS | METH_KEYWORDS,
     "index_cpu_to_gpu_multiple(resources, devices, index, options=None)."},
    {"_knn_gpu", METH_KW_FN(mod_knn_gpu), METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_gpu(PyObject *m);
int pyvdx_init_gpu(PyObject *m) {
    PyTypeObject *types[] = {&ResType,           &GpuIndexType,
                             &GpuIndexFlatType,  &GpuIndexFlatL2Type,
                             &GpuIndexFlatIPType, &GpuIndexIVFType,
                             &GpuIndexIVFFlatType, &GpuIndexIVFPQType,
                             &GpuIndexIVFSQType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    /* the containers are registered only if the module has none (issue 21
     * brings the CPU ones) */
    if (PyType_Ready(&GpuShardsType) < 0 || PyType_Ready(&GpuReplicasType) < 0)
        return -1;
    if (!PyObject_HasAttrString(m, "IndexShards")) {
        Py_INCREF(&GpuShardsType);
        if (add_object(m, "IndexShards", (PyObject *)&GpuShardsType) < 0) return -1;
    }
    if (!PyObject_HasAttrString(m, "IndexReplicas")) {
        Py_INCREF(&GpuReplicasType);
        if (add_object(m, "IndexReplicas", (PyObject *)&GpuReplicasType) < 0)
            return -1;
    }
    if (PyModule_AddIntConstant(m, "INDICES_CPU", VDX_GPU_INDICES_CPU) < 0 ||
        PyModule_AddIntConstant(m, "INDICES_IVF", VDX_GPU_INDICES_IVF) < 0 ||
        PyModule_AddIntConstant(m, "INDICES_32_BIT", VDX_GPU_INDICES_32_BIT) < 0 ||
        PyModule_AddIntConstant(m, "INDICES_64_BIT", VDX_GPU_INDICES_64_BIT) < 0)
        return -1;
    return PyModule_AddFunctions(m, gpu_functions);
}
