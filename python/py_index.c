/*
 * py_index.c — the Index base type (train, add, search, range_search,
 * reconstruct, remove_ids, reset, pickling), IndexFlat*, IndexIDMap*, the
 * wrapping of C index trees into Python objects (wrap_tree, index_adopt;
 * the ownership design is described at the top of _vecdex.c), and the
 * persistence functions (read/write/serialize/deserialize/clone_index).
 */
#include "py_vecdex.h"

#include <string.h>

/* ========================================================================= */
/* Indexes                                                                   */
/* ========================================================================= */
static PyTypeObject IndexFlatType, IndexIDMapType, IndexIDMap2Type;

int Index_traverse(IndexObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->dict);
    Py_VISIT(self->sub);
    Py_VISIT(self->sub2);
    return 0;
}

int Index_clear(IndexObject *self) {
    Py_CLEAR(self->dict);
    if (self->sub) {
        ((IndexObject *)self->sub)->parent = NULL;
        Py_CLEAR(self->sub);
    }
    if (self->sub2) {
        ((IndexObject *)self->sub2)->parent = NULL;
        Py_CLEAR(self->sub2);
    }
    return 0;
}

void Index_dealloc(IndexObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    Index_clear(self);
    owner_t *o = self->owner;
    self->owner = NULL;
    self->ix = NULL;
    owner_decref(o);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int ready(IndexObject *self) {
    if (self->ix && self->owner) return 0;
    PyErr_SetString(PyExc_RuntimeError,
                    "index is not initialised (was __init__ called?)");
    return -1;
}

int mutable_(IndexObject *self, const char *what) {
    if (ready(self) < 0) return -1;
    if (self->parent) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: this index belongs to a %.100s (as its %s); modify "
                     "it through that index",
                     what, Py_TYPE(self->parent)->tp_name,
                     vdx_index_is_ivf(self->parent->ix) ? "quantizer"
                                                        : "sub-index");
        return -1;
    }
    return 0;
}

static PyTypeObject *class_for(const vdx_index *ix) {
    const char *tn = vdx_index_type_name(ix);
    if (!tn) tn = "";
    if (shards_class_for(ix)) return shards_class_for(ix);
    if (!strcmp(tn, "IndexFlat") || !strcmp(tn, "IndexFlatL2") ||
        !strcmp(tn, "IndexFlatIP")) {
        /* FAISS writes every L2 flat as IxF2 and reads it as IndexFlatL2 */
        switch (vdx_index_metric(ix)) {
        case VDX_METRIC_L2: return &IndexFlatL2Type;
        case VDX_METRIC_INNER_PRODUCT: return &IndexFlatIPType;
        default: return &IndexFlatType;
        }
    }
    if (!strcmp(tn, "IndexIDMap2")) return &IndexIDMap2Type;
    if (!strcmp(tn, "IndexIDMap")) return &IndexIDMapType;
    if (!strcmp(tn, "IndexIVFFlat")) return &IndexIVFFlatType;
    if (!strcmp(tn, "IndexPQ")) return &IndexPQType;
    if (!strcmp(tn, "IndexIVFPQ")) return &IndexIVFPQType;
    if (!strcmp(tn, "IndexLSH")) return &IndexLSHType;
    if (!strcmp(tn, "IndexScalarQuantizer")) return &IndexScalarQuantizerType;
    if (!strcmp(tn, "IndexIVFScalarQuantizer"))
        return &IndexIVFScalarQuantizerType;
    if (!strcmp(tn, "IndexRefine")) return &IndexRefineType;
    if (!strcmp(tn, "IndexRefineFlat")) return &IndexRefineFlatType;
    if (!strcmp(tn, "IndexPreTransform")) return &IndexPreTransformType;
    if (!strcmp(tn, "IndexHNSWFlat")) return &IndexHNSWFlatType;
    if (!strcmp(tn, "IndexHNSWSQ")) return &IndexHNSWSQType;
    if (!strcmp(tn, "IndexHNSWPQ")) return &IndexHNSWPQType;
    if (!strcmp(tn, "IndexHNSW2Level")) return &IndexHNSW2LevelType;
    if (!strcmp(tn, "Index2Layer")) return &Index2LayerType;
    if (!strcmp(tn, "IndexPQFastScan")) return &IndexPQFastScanType;
    if (!strcmp(tn, "IndexIVFPQFastScan")) return &IndexIVFPQFastScanType;
    PyTypeObject *nsgt = nsg_class_for(tn);
    if (nsgt) return nsgt;
    PyTypeObject *aqt = aq_index_class(tn);
    if (aqt) return aqt;
    PyTypeObject *gt = gpu_class_for(ix, tn);
    if (gt) return gt;
    return &IndexType; /* generic wrapper: every method still works */
}

/* Wraps ix (inside o's tree) and, recursively, its sub-index or
 * quantizer (IndexRefine: base index in sub, refine index in sub2). */
PyObject *wrap_node(vdx_index *ix, owner_t *o) {
    PyTypeObject *t = class_for(ix);
    IndexObject *obj = (IndexObject *)t->tp_alloc(t, 0);
    if (!obj) return NULL;
    obj->ix = ix;
    obj->owner = o;
    o->refs++;
    vdx_index *sub = vdx_index_sub_index(ix);
    if (!sub) sub = vdx_index_ivf_quantizer(ix);
    if (!sub) sub = vdx_index_refine_base(ix);
    if (!sub) sub = vdx_index_pretransform_index(ix);
    if (!sub) sub = vdx_index_hnsw_storage(ix);
    if (!sub) sub = vdx_index_nsg_storage(ix);
    if (!sub) sub = vdx_index_nndescent_storage(ix);
    if (!sub) sub = vdx_index_2layer_quantizer(ix);
    if (!sub) sub = vdx_index_shards_ivf_quantizer(ix);
    if (vdx_index_is_shards(ix) && shards_wrap_children(obj, o) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    vdx_index *sub2 = vdx_index_refine_refine(ix);
    if (sub2) {
        PyObject *child = wrap_node(sub2, o);
        if (!child) {
            Py_DECREF(obj);
            return NULL;
        }
        obj->sub2 = child;
        ((IndexObject *)child)->parent = obj;
    }
    if (sub) {
        PyObject *child = wrap_node(sub, o);
        if (!child) {
            Py_DECREF(obj);
            return NULL;
        }
        obj->sub = child;
        ((IndexObject *)child)->parent = obj;
    }
    return (PyObject *)obj;
}

/* Takes ownership of a new C tree and returns its Python wrapper. */
PyObject *wrap_tree(vdx_index *root) {
    owner_t *o = owner_new(root);
    if (!o) {
        vdx_index_free(root);
        return NULL;
    }
    o->refs = 1; /* held by this function while wrapping */
    PyObject *r = wrap_node(root, o);
    owner_decref(o); /* frees the tree if wrapping failed */
    return r;
}

/* --- constructors -------------------------------------------------------- */
int index_init_once(IndexObject *self) {
    if (!self->ix) return 0;
    PyErr_SetString(PyExc_RuntimeError, "index is already initialised");
    return -1;
}

int index_take_root(IndexObject *self, vdx_status st, vdx_index *ix) {
    if (st != VDX_OK) {
        raise_status(st);
        return -1;
    }
    owner_t *o = owner_new(ix);
    if (!o) {
        vdx_index_free(ix);
        return -1;
    }
    o->refs = 1;
    self->ix = ix;
    self->owner = o;
    return 0;
}

static int flat_init(IndexObject *self, long long d, int metric) {
    if (index_init_once(self)) return -1;
    vdx_index *ix = NULL;
    cerr e;
    cerr_capture(&e, vdx_index_flat_new(d, (vdx_metric)metric, &ix));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return index_take_root(self, VDX_OK, ix);
}

static int IndexFlat_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "metric", NULL};
    long long d;
    int metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L|i:IndexFlat", kwlist, &d,
                                     &metric))
        return -1;
    return flat_init(self, d, metric);
}

static int IndexFlatL2_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", NULL};
    long long d;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L:IndexFlatL2", kwlist, &d))
        return -1;
    return flat_init(self, d, VDX_METRIC_L2);
}

static int IndexFlatIP_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", NULL};
    long long d;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L:IndexFlatIP", kwlist, &d))
        return -1;
    return flat_init(self, d, VDX_METRIC_INNER_PRODUCT);
}

int index_adopt(IndexObject *self, PyObject *childo, adopt_fn build,
                void *ctx) {
    if (index_init_once(self)) return -1;
    IndexObject *sub = (IndexObject *)childo;
    if (ready(sub) < 0) return -1;
    if (self->initialising || sub->parent || sub == self) {
        PyErr_SetString(PyExc_ValueError,
                        sub->parent ? "this index already belongs to another "
                                      "index; wrap a new one"
                                    : "index is being initialised");
        return -1;
    }
    owner_t *o = sub->owner;
    vdx_index *m = NULL;
    int taken = 0;
    cerr e = {VDX_OK, ""};
    /* Claimed before the GIL is released, so that no other thread mutates
     * the child (or initialises self) while the new index is being built. */
    self->initialising = 1;
    sub->parent = self;
    Py_BEGIN_ALLOW_THREADS
    rw_wrlock(&o->lock);
    if (o->root != sub->ix) {
        taken = 1; /* owned by a C index whose wrapper is gone */
    } else {
        cerr_capture(&e, build(sub->ix, ctx, &m));
        if (e.st == VDX_OK) o->root = m;
    }
    rw_wrunlock(&o->lock);
    Py_END_ALLOW_THREADS
    self->initialising = 0;
    if (taken || e.st != VDX_OK) sub->parent = NULL;
    if (taken) {
        PyErr_SetString(PyExc_ValueError,
                        "this index already belongs to another index; wrap a "
                        "new one");
        return -1;
    }
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    self->ix = m;
    self->owner = o;
    o->refs++;
    Py_INCREF(childo);
    self->sub = childo;
    return 0;
}

static vdx_status build_idmap(vdx_index *sub, void *map2, vdx_index **out) {
    return map2 ? vdx_index_idmap2_new(sub, out)
                : vdx_index_idmap_new(sub, out);
}

static int idmap_init(IndexObject *self, PyObject *args, PyObject *kw,
                      int map2) {
    static char *kwlist[] = {"index", NULL};
    PyObject *subo;
    if (!PyArg_ParseTupleAndKeywords(args, kw,
                                     map2 ? "O!:IndexIDMap2" : "O!:IndexIDMap",
                                     kwlist, &IndexType, &subo))
        return -1;
    return index_adopt(self, subo, build_idmap, map2 ? (void *)1 : NULL);
}

static int IndexIDMap_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return idmap_init(self, args, kw, 0);
}

static int IndexIDMap2_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return idmap_init(self, args, kw, 1);
}

/* --- getters ------------------------------------------------------------- */
static PyObject *Index_get_d(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_index_d(self->ix));
}

static PyObject *Index_get_ntotal(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    owner_rdlock_gil(self->owner);
    int64_t n = vdx_index_ntotal(self->ix);
    rw_rdunlock(&self->owner->lock);
    return PyLong_FromLongLong(n);
}

static PyObject *Index_get_is_trained(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    owner_rdlock_gil(self->owner);
    int t = vdx_index_is_trained(self->ix);
    rw_rdunlock(&self->owner->lock);
    return PyBool_FromLong(t);
}

static PyObject *Index_get_metric_type(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLong((long)vdx_index_metric(self->ix));
}

PyObject *Index_get_sub(IndexObject *self, void *c) {
    (void)c;
    PyObject *r = self->sub ? self->sub : Py_None;
    Py_INCREF(r);
    return r;
}

int64_t locked_ntotal(IndexObject *self) {
    owner_rdlock_gil(self->owner);
    int64_t n = vdx_index_ntotal(self->ix);
    rw_rdunlock(&self->owner->lock);
    return n;
}

static PyObject *Index_get_id_map(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    /* allocate without holding the lock (allocation may run Python code) */
    for (;;) {
        npy_intp n = (npy_intp)locked_ntotal(self);
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64);
        if (!a) return NULL;
        cerr e = {VDX_OK, ""};
        int same;
        owner_rdlock_gil(self->owner);
        same = vdx_index_ntotal(self->ix) == (int64_t)n;
        if (same)
            cerr_capture(&e,
                         vdx_index_get_id_map(self->ix, PyArray_DATA(a)));
        rw_rdunlock(&self->owner->lock);
        if (!same) {
            Py_DECREF(a);
            continue;
        }
        if (e.st != VDX_OK) {
            Py_DECREF(a);
            return raise_cerr(&e);
        }
        return (PyObject *)a;
    }
}

/* FAISS's IndexFlatCodes::codes: a uint8 copy of the ntotal x code_size
 * code array (IndexFlat: the float32 vectors as bytes); AttributeError for
 * kinds without one, as FAISS's objects lack the attribute. */
/* code_size of the flat-code kinds that define none of their own. */
static PyObject *Index_get_flat_code_size(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    size_t cs = vdx_index_codes_size(self->ix);
    if (!cs) {
        PyErr_Format(PyExc_AttributeError,
                     "'%s' object has no attribute 'code_size'",
                     Py_TYPE(self)->tp_name);
        return NULL;
    }
    return PyLong_FromSize_t(cs);
}

static PyObject *Index_get_codes(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    size_t cs = vdx_index_codes_size(self->ix);
    if (!cs) {
        PyErr_Format(PyExc_AttributeError,
                     "'%s' object has no attribute 'codes' (no flat code array)",
                     Py_TYPE(self)->tp_name);
        return NULL;
    }
    for (;;) { /* allocate without holding the lock, as Index_get_id_map */
        int64_t n = locked_ntotal(self);
        npy_intp len = (npy_intp)((size_t)n * cs);
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_UINT8);
        if (!a) return NULL;
        cerr e = {VDX_OK, ""};
        int same;
        owner_rdlock_gil(self->owner);
        same = vdx_index_ntotal(self->ix) == n;
        if (same)
            cerr_capture(&e, vdx_index_codes_get(self->ix, 0, n, PyArray_DATA(a)));
        rw_rdunlock(&self->owner->lock);
        if (!same) {
            Py_DECREF(a);
            continue;
        }
        if (e.st != VDX_OK) {
            Py_DECREF(a);
            return raise_cerr(&e);
        }
        return (PyObject *)a;
    }
}

/* A capsule whose destructor frees a library allocation. */
#define RANGE_CAPSULE "vecdex.range_result"
#define BUFFER_CAPSULE "vecdex.buffer"

static void range_capsule_free(PyObject *cap) {
    vdx_range_result_free(PyCapsule_GetPointer(cap, RANGE_CAPSULE));
}

static void buffer_capsule_free(PyObject *cap) {
    vdx_free_buffer(PyCapsule_GetPointer(cap, BUFFER_CAPSULE));
}


/* --- methods ------------------------------------------------------------- */
static PyObject *Index_train(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:train", kwlist, &xo))
        return NULL;
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    cerr e;
    int64_t n = PyArray_DIM(x, 0);
    const float *xp = PyArray_DATA(x);
    RUN_LOCKED(self->owner, wr, e, vdx_index_train(self->ix, n, xp));
    Py_DECREF(x);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *Index_add(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:add", kwlist, &xo))
        return NULL;
    if (!quantizer_fillable(self) && mutable_(self, "add") < 0)
        return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    int64_t n = PyArray_DIM(x, 0);
    const float *xp = PyArray_DATA(x);
    cerr e = {VDX_OK, ""};
    if (n > 0) RUN_LOCKED(self->owner, wr, e, vdx_index_add(self->ix, n, xp));
    Py_DECREF(x);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *Index_add_with_ids(IndexObject *self, PyObject *args,
                                    PyObject *kw) {
    static char *kwlist[] = {"x", "ids", NULL};
    PyObject *xo, *io;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:add_with_ids", kwlist, &xo,
                                     &io))
        return NULL;
    if (!quantizer_fillable(self) && mutable_(self, "add_with_ids") < 0)
        return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    int64_t n = PyArray_DIM(x, 0);
    PyArrayObject *ids = as_vector(io, NPY_INT64, (npy_intp)n, "ids");
    if (!ids) {
        Py_DECREF(x);
        return NULL;
    }
    const float *xp = PyArray_DATA(x);
    const vdx_idx_t *ip = PyArray_DATA(ids);
    cerr e = {VDX_OK, ""};
    if (n > 0)
        RUN_LOCKED(self->owner, wr, e,
                   vdx_index_add_with_ids(self->ix, n, xp, ip));
    Py_DECREF(x);
    Py_DECREF(ids);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *Index_search(IndexObject *self, PyObject *args,
                              PyObject *kw) {
    static char *kwlist[] = {"x", "k", "params", "D", "I", NULL};
    PyObject *xo, *po = Py_None, *Do = Py_None, *Io = Py_None;
    long long k;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OL|$OOO:search", kwlist, &xo,
                                     &k, &po, &Do, &Io))
        return NULL;
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    /* D and I (but complex.h defines the macro I) */
    PyArrayObject *dist = NULL, *lab = NULL;
    PyObject *keep = NULL;
    vdx_search_params p;
    const vdx_search_params *pp;
    if (k <= 0) {
        PyErr_Format(ShapeError, "k must be > 0, got %lld", k);
        goto fail;
    }
    if (get_params(po, &p, &pp, &keep) < 0) goto fail;
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)k};
    if ((long long)dims[1] != k) {
        PyErr_Format(ShapeError, "k=%lld is too large", k);
        goto fail;
    }
    dist = out_array(Do, NPY_FLOAT32, 2, dims, "D");
    if (!dist) goto fail;
    lab = out_array(Io, NPY_INT64, 2, dims, "I");
    if (!lab) goto fail;
    if (dims[0] > 0) {
        cerr e;
        int64_t n = dims[0];
        const float *xp = PyArray_DATA(x);
        float *dp = PyArray_DATA(dist);
        vdx_idx_t *lp = PyArray_DATA(lab);
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_search(self->ix, n, xp, k, pp, dp, lp));
        if (e.st != VDX_OK) {
            raise_cerr(&e);
            goto fail;
        }
    }
    Py_DECREF(x);
    Py_XDECREF(keep);
    return Py_BuildValue("NN", dist, lab);
fail:
    Py_DECREF(x);
    Py_XDECREF(keep);
    Py_XDECREF(dist);
    Py_XDECREF(lab);
    return NULL;
}

static PyObject *Index_range_search(IndexObject *self, PyObject *args,
                                    PyObject *kw) {
    static char *kwlist[] = {"x", "thresh", "params", NULL};
    PyObject *xo, *po = Py_None;
    float thresh;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Of|$O:range_search", kwlist,
                                     &xo, &thresh, &po))
        return NULL;
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    PyObject *keep = NULL, *cap = NULL, *lims = NULL;
    PyObject *dist = NULL, *lab = NULL;
    vdx_search_params p;
    const vdx_search_params *pp;
    if (get_params(po, &p, &pp, &keep) < 0) goto fail;
    npy_intp n = PyArray_DIM(x, 0);
    if (n == 0) {
        npy_intp one = 1, zero = 0;
        lims = PyArray_ZEROS(1, &one, NPY_UINT64, 0);
        dist = PyArray_ZEROS(1, &zero, NPY_FLOAT32, 0);
        lab = PyArray_ZEROS(1, &zero, NPY_INT64, 0);
        if (!lims || !dist || !lab) goto fail;
    } else {
        cerr e;
        vdx_range_result *r = NULL;
        const float *xp = PyArray_DATA(x);
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_range_search(self->ix, n, xp, thresh, pp, &r));
        if (e.st != VDX_OK) {
            raise_cerr(&e);
            goto fail;
        }
        cap = PyCapsule_New(r, RANGE_CAPSULE, range_capsule_free);
        if (!cap) {
            vdx_range_result_free(r);
            goto fail;
        }
        npy_intp tot = (npy_intp)r->lims[n];
        /* FAISS returns lims as uint64 (size_t); the counts are >= 0 */
        lims = array_over(r->lims, n + 1, NPY_UINT64, cap);
        dist = lims ? array_over(r->distances, tot, NPY_FLOAT32, cap) : NULL;
        lab = dist ? array_over(r->labels, tot, NPY_INT64, cap) : NULL;
        Py_CLEAR(cap);
        if (!lab) goto fail;
    }
    Py_DECREF(x);
    Py_XDECREF(keep);
    return Py_BuildValue("NNN", lims, dist, lab);
fail:
    Py_DECREF(x);
    Py_XDECREF(keep);
    Py_XDECREF(cap);
    Py_XDECREF(lims);
    Py_XDECREF(dist);
    Py_XDECREF(lab);
    return NULL;
}

static PyObject *Index_reconstruct(IndexObject *self, PyObject *args,
                                   PyObject *kw) {
    static char *kwlist[] = {"key", "x", NULL};
    long long key;
    PyObject *xo = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L|O:reconstruct", kwlist, &key,
                                     &xo))
        return NULL;
    if (ready(self) < 0) return NULL;
    npy_intp d = (npy_intp)vdx_index_d(self->ix);
    PyArrayObject *out = out_array(xo, NPY_FLOAT32, 1, &d, "x");
    if (!out) return NULL;
    cerr e;
    owner_rdlock_gil(self->owner);
    cerr_capture(&e, vdx_index_reconstruct(self->ix, key, PyArray_DATA(out)));
    rw_rdunlock(&self->owner->lock);
    if (e.st != VDX_OK) {
        Py_DECREF(out);
        return raise_cerr(&e);
    }
    return (PyObject *)out;
}

static PyObject *Index_reconstruct_batch(IndexObject *self, PyObject *args,
                                         PyObject *kw) {
    static char *kwlist[] = {"key", "x", NULL};
    PyObject *ko, *xo = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:reconstruct_batch", kwlist,
                                     &ko, &xo))
        return NULL;
    if (ready(self) < 0) return NULL;
    PyArrayObject *keys = as_array(ko, NPY_INT64);
    if (!keys) return NULL;
    if (PyArray_NDIM(keys) != 1) {
        PyErr_Format(PyExc_ValueError,
                     "reconstruct_batch: keys must be a 1-d array of ids, got "
                     "%d dimensions", PyArray_NDIM(keys));
        Py_DECREF(keys);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(keys, 0), (npy_intp)vdx_index_d(self->ix)};
    PyArrayObject *out = out_array(xo, NPY_FLOAT32, 2, dims, "x");
    if (!out) {
        Py_DECREF(keys);
        return NULL;
    }
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_reconstruct_batch(self->ix, (int64_t)dims[0],
                                           PyArray_DATA(keys), PyArray_DATA(out)));
    Py_DECREF(keys);
    if (e.st != VDX_OK) {
        Py_DECREF(out);
        return raise_cerr(&e);
    }
    return (PyObject *)out;
}

static PyObject *Index_reconstruct_n(IndexObject *self, PyObject *args,
                                     PyObject *kw) {
    static char *kwlist[] = {"n0", "ni", "x", NULL};
    long long n0 = 0, ni = -1;
    PyObject *xo = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LLO:reconstruct_n", kwlist,
                                     &n0, &ni, &xo))
        return NULL;
    if (ready(self) < 0) return NULL;
    if (ni == -1) ni = (long long)locked_ntotal(self) - n0;
    if (ni < 0) {
        PyErr_Format(InvalidArgumentError,
                     "reconstruct_n: cannot reconstruct %lld vectors from "
                     "n0=%lld (ntotal=%lld)",
                     ni, n0, (long long)locked_ntotal(self));
        return NULL;
    }
    npy_intp dims[2] = {(npy_intp)ni, (npy_intp)vdx_index_d(self->ix)};
    PyArrayObject *out = out_array(xo, NPY_FLOAT32, 2, dims, "x");
    if (!out) return NULL;
    cerr e = {VDX_OK, ""};
    float *op = PyArray_DATA(out);
    if (ni > 0)
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_reconstruct_n(self->ix, n0, ni, op));
    if (e.st != VDX_OK) {
        Py_DECREF(out);
        return raise_cerr(&e);
    }
    return (PyObject *)out;
}

static PyObject *Index_remove_ids(IndexObject *self, PyObject *args,
                                  PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:remove_ids", kwlist, &xo))
        return NULL;
    if (mutable_(self, "remove_ids") < 0) return NULL;
    const vdx_selector *sel;
    vdx_selector *tmp = NULL;
    cerr e;
    if (PyObject_TypeCheck(xo, &SelectorType)) {
        sel = get_selector(xo, "x"); /* xo is kept alive by args */
        if (!sel) return NULL;
    } else {
        PyArrayObject *ids = as_vector(xo, NPY_INT64, -1, "x");
        if (!ids) return NULL;
        cerr_capture(&e, vdx_selector_batch(PyArray_DIM(ids, 0),
                                            PyArray_DATA(ids), &tmp));
        Py_DECREF(ids);
        if (e.st != VDX_OK) return raise_cerr(&e);
        sel = tmp;
    }
    int64_t nremoved = 0;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_remove_ids(self->ix, sel, &nremoved));
    vdx_selector_free(tmp);
    if (e.st != VDX_OK) return raise_cerr(&e);
    return PyLong_FromLongLong(nremoved);
}

static PyObject *Index_reset(IndexObject *self, PyObject *unused) {
    (void)unused;
    if (mutable_(self, "reset") < 0) return NULL;
    cerr e;
    RUN_LOCKED(self->owner, wr, e, vdx_index_reset(self->ix));
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *serialize(IndexObject *self);
static PyObject *deserialize_func; /* vecdex._vecdex.deserialize_index */

/* Pickling (and copy.deepcopy) through the FAISS byte format, as FAISS. */
static PyObject *Index_reduce(IndexObject *self, PyObject *unused) {
    (void)unused;
    if (ready(self) < 0) return NULL;
    PyObject *data = serialize(self);
    if (!data) return NULL;
    PyObject *state =
        (self->dict && PyDict_GET_SIZE(self->dict) > 0) ? self->dict : Py_None;
    return Py_BuildValue("O(N)O", deserialize_func, data, state);
}

static PyObject *Index_repr(IndexObject *self) {
    if (!self->ix)
        return PyUnicode_FromFormat("<%s (uninitialised)>",
                                    Py_TYPE(self)->tp_name);
    return PyUnicode_FromFormat(
        "<%s d=%lld ntotal=%lld metric=%s>", Py_TYPE(self)->tp_name,
        (long long)vdx_index_d(self->ix), (long long)locked_ntotal(self),
        vdx_index_metric(self->ix) == VDX_METRIC_L2 ? "L2" : "INNER_PRODUCT");
}

/* merge_from(otherIndex, add_id=0) and check_compatible_for_merge(other):
 * one entry point for every kind (vdx_index_merge_from dispatches, IVF
 * included).  FAISS raises RuntimeError for an incompatible index. */
static int merge_other(IndexObject *self, PyObject *other_obj,
                       const char *what, IndexObject **out) {
    if (!PyObject_TypeCheck(other_obj, &IndexType)) {
        PyErr_Format(PyExc_TypeError, "%s: expected an index, got %.200s",
                     what, Py_TYPE(other_obj)->tp_name);
        return -1;
    }
    *out = (IndexObject *)other_obj;
    if (ready(*out) < 0) return -1;
    if (*out == self) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: cannot merge an index into itself", what);
        return -1;
    }
    return 0;
}

static PyObject *merge_error(const cerr *e) {
    /* an incompatible index is FAISS's RuntimeError (its THROW_IF_NOT):
     * InvalidArgumentError is one; a kind without merge too */
    if (e->st == VDX_ERR_UNSUPPORTED) {
        PyErr_SetString(PyExc_RuntimeError, e->msg);
        return NULL;
    }
    return raise_cerr(e);
}

static PyObject *Index_merge_from(IndexObject *self, PyObject *args,
                                  PyObject *kw) {
    static char *kwlist[] = {"otherIndex", "add_id", NULL};
    PyObject *other_obj;
    long long add_id = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|L:merge_from", kwlist,
                                     &other_obj, &add_id))
        return NULL;
    if (mutable_(self, "merge_from") < 0) return NULL;
    IndexObject *other;
    if (merge_other(self, other_obj, "merge_from", &other) < 0) return NULL;
    if (mutable_(other, "merge_from") < 0) return NULL;
    cerr e;
    if (other->owner == self->owner) {
        RUN_LOCKED(self->owner, wr, e,
                   vdx_index_merge_from(self->ix, other->ix, add_id));
    } else {
        Py_BEGIN_ALLOW_THREADS
        rw_wrlock(&self->owner->lock);
        rw_wrlock(&other->owner->lock);
        cerr_capture(&e, vdx_index_merge_from(self->ix, other->ix, add_id));
        rw_wrunlock(&other->owner->lock);
        rw_wrunlock(&self->owner->lock);
        Py_END_ALLOW_THREADS
    }
    if (e.st != VDX_OK) return merge_error(&e);
    Py_RETURN_NONE;
}

static PyObject *Index_check_compatible_for_merge(IndexObject *self,
                                                  PyObject *other_obj) {
    if (ready(self) < 0) return NULL;
    IndexObject *other;
    if (merge_other(self, other_obj, "check_compatible_for_merge", &other) < 0)
        return NULL;
    cerr e;
    if (other->owner == self->owner) {
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_check_compatible_for_merge(self->ix, other->ix));
    } else {
        Py_BEGIN_ALLOW_THREADS
        rw_rdlock(&self->owner->lock);
        rw_rdlock(&other->owner->lock);
        cerr_capture(&e,
                     vdx_index_check_compatible_for_merge(self->ix, other->ix));
        rw_rdunlock(&other->owner->lock);
        rw_rdunlock(&self->owner->lock);
        Py_END_ALLOW_THREADS
    }
    if (e.st != VDX_OK) return merge_error(&e);
    Py_RETURN_NONE;
}

static int vdx_index_is_idmap_kind(const vdx_index *ix) {
    const char *tn = vdx_index_type_name(ix);
    return tn && !strncmp(tn, "IndexIDMap", 10);
}

/* The standalone codec (FAISS's sa_code_size / sa_encode / sa_decode /
 * add_sa_codes): one set of methods for every kind, vdx_index_sa_* does the
 * dispatch. */
static size_t sa_size_locked(IndexObject *self) {
    rw_rdlock(&self->owner->lock);
    size_t cs = vdx_index_sa_code_size(self->ix);
    rw_rdunlock(&self->owner->lock);
    return cs;
}

static PyObject *Index_sa_code_size(IndexObject *self, PyObject *noargs) {
    (void)noargs;
    if (ready(self) < 0) return NULL;
    size_t cs = sa_size_locked(self);
    if (!cs && !vdx_index_is_idmap_kind(self->ix)) {
        PyErr_Format(PyExc_RuntimeError,
                     "sa_code_size: %s is not a standalone codec",
                     vdx_index_type_name(self->ix));
        return NULL;
    }
    return PyLong_FromSize_t(cs);
}

/* codes as a C-contiguous uint8 (n, cs) array, or ShapeError */
static PyArrayObject *as_codes(PyObject *co, size_t cs, const char *what) {
    PyArrayObject *c = as_array(co, NPY_UINT8);
    if (!c) return NULL;
    if (PyArray_NDIM(c) != 2 || (size_t)PyArray_DIM(c, 1) != cs) {
        PyErr_Format(ShapeError, "%s: codes must be (n, %zu) uint8, got %d "
                     "dimensions (last %lld)", what, cs, PyArray_NDIM(c),
                     PyArray_NDIM(c) ? (long long)PyArray_DIM(c, PyArray_NDIM(c) - 1)
                                     : 0LL);
        Py_DECREF(c);
        return NULL;
    }
    return c;
}

static PyObject *Index_sa_encode(IndexObject *self, PyObject *xo) {
    if (ready(self) < 0) return NULL;
    size_t cs = sa_size_locked(self);
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)cs};
    PyArrayObject *c = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_UINT8, 0);
    if (!c) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_sa_encode(self->ix, dims[0], PyArray_DATA(x),
                                   PyArray_DATA(c)));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(c);
        if (e.st == VDX_ERR_UNSUPPORTED) {
            PyErr_SetString(PyExc_RuntimeError, e.msg);
            return NULL;
        }
        return raise_cerr(&e);
    }
    return (PyObject *)c;
}

static PyObject *Index_sa_decode(IndexObject *self, PyObject *co) {
    if (ready(self) < 0) return NULL;
    size_t cs = sa_size_locked(self);
    PyArrayObject *c = as_codes(co, cs, "sa_decode");
    if (!c) return NULL;
    npy_intp dims[2] = {PyArray_DIM(c, 0), (npy_intp)vdx_index_d(self->ix)};
    PyArrayObject *x = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!x) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_sa_decode(self->ix, dims[0], PyArray_DATA(c),
                                   PyArray_DATA(x)));
    Py_DECREF(c);
    if (e.st != VDX_OK) {
        Py_DECREF(x);
        if (e.st == VDX_ERR_UNSUPPORTED) {
            PyErr_SetString(PyExc_RuntimeError, e.msg);
            return NULL;
        }
        return raise_cerr(&e);
    }
    return (PyObject *)x;
}

static PyObject *Index_add_sa_codes(IndexObject *self, PyObject *args,
                                    PyObject *kw) {
    static char *kwlist[] = {"codes", "ids", NULL};
    PyObject *co, *io = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:add_sa_codes", kwlist, &co,
                                     &io))
        return NULL;
    if (mutable_(self, "add_sa_codes") < 0) return NULL;
    rw_rdlock(&self->owner->lock);
    const vdx_index *sub = vdx_index_sub_index(self->ix);
    size_t cs = vdx_index_sa_code_size(vdx_index_is_idmap_kind(self->ix) && sub
                                           ? sub : self->ix);
    rw_rdunlock(&self->owner->lock);
    PyArrayObject *c = as_codes(co, cs, "add_sa_codes");
    if (!c) return NULL;
    int64_t n = PyArray_DIM(c, 0);
    PyArrayObject *ids = NULL;
    if (io != Py_None &&
        !(ids = as_vector(io, NPY_INT64, (npy_intp)n, "ids"))) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e = {VDX_OK, ""};
    if (n > 0)
        RUN_LOCKED(self->owner, wr, e,
                   vdx_index_add_sa_codes(self->ix, n, PyArray_DATA(c),
                                          ids ? PyArray_DATA(ids) : NULL));
    Py_DECREF(c);
    Py_XDECREF(ids);
    if (e.st != VDX_OK) {
        if (e.st == VDX_ERR_UNSUPPORTED) {
            PyErr_SetString(PyExc_RuntimeError, e.msg);
            return NULL;
        }
        return raise_cerr(&e);
    }
    Py_RETURN_NONE;
}

static PyMethodDef Index_methods[] = {
    {"train", METH_KW_FN(Index_train), METH_VARARGS | METH_KEYWORDS,
     "train(x): trains the index on the (n, d) vectors x."},
    {"add", METH_KW_FN(Index_add), METH_VARARGS | METH_KEYWORDS,
     "add(x): adds the (n, d) vectors x with ids ntotal .. ntotal + n - 1."},
    {"add_with_ids", METH_KW_FN(Index_add_with_ids),
     METH_VARARGS | METH_KEYWORDS,
     "add_with_ids(x, ids): adds x with the caller's int64 ids."},
    {"search", METH_KW_FN(Index_search), METH_VARARGS | METH_KEYWORDS,
     "search(x, k, *, params=None, D=None, I=None) -> (D, I): the k nearest "
     "neighbours; D float32 (n, k), I int64 (n, k), -1 where missing."},
    {"range_search", METH_KW_FN(Index_range_search),
     METH_VARARGS | METH_KEYWORDS,
     "range_search(x, thresh, *, params=None) -> (lims, D, I)."},
    {"reconstruct", METH_KW_FN(Index_reconstruct),
     METH_VARARGS | METH_KEYWORDS,
     "reconstruct(key, x=None) -> (d,) float32 vector."},
    {"reconstruct_batch", METH_KW_FN(Index_reconstruct_batch),
     METH_VARARGS | METH_KEYWORDS,
     "reconstruct_batch(keys, x=None) -> (n, d) float32: the vectors of the "
     "ids keys."},
    {"reconstruct_n", METH_KW_FN(Index_reconstruct_n),
     METH_VARARGS | METH_KEYWORDS,
     "reconstruct_n(n0=0, ni=-1, x=None) -> (ni, d) float32 vectors."},
    {"remove_ids", METH_KW_FN(Index_remove_ids), METH_VARARGS | METH_KEYWORDS,
     "remove_ids(x) -> int: removes the ids selected by an IDSelector or "
     "listed in an array; returns the count removed."},
    {"reset", (PyCFunction)Index_reset, METH_NOARGS,
     "reset(): removes all vectors."},
    {"sa_code_size", (PyCFunction)Index_sa_code_size, METH_NOARGS,
     "sa_code_size() -> int: bytes per code of the standalone codec."},
    {"sa_encode", (PyCFunction)Index_sa_encode, METH_O,
     "sa_encode(x) -> uint8 (n, sa_code_size()): the codes, FAISS's layout "
     "(IVF: list number, then the list code)."},
    {"sa_decode", (PyCFunction)Index_sa_decode, METH_O,
     "sa_decode(codes) -> float32 (n, d)."},
    {"add_sa_codes", METH_KW_FN(Index_add_sa_codes),
     METH_VARARGS | METH_KEYWORDS,
     "add_sa_codes(codes, ids=None): adds codes made by sa_encode."},
    {"merge_from", METH_KW_FN(Index_merge_from), METH_VARARGS | METH_KEYWORDS,
     "merge_from(otherIndex, add_id=0): moves every entry of a compatible "
     "index of the same kind into this one (other is left empty); add_id "
     "shifts the moved ids (IVF and IDMap kinds only)."},
    {"check_compatible_for_merge",
     (PyCFunction)Index_check_compatible_for_merge, METH_O,
     "check_compatible_for_merge(other): raises RuntimeError unless "
     "merge_from(other) can run."},
    {"get_distance_computer", (PyCFunction)pym_get_distance_computer,
     METH_VARARGS,
     "get_distance_computer() -> dc: dc.set_query(x), dc(i) the distance "
     "of x to stored vector i as search computes it (py_pymethods.c)."},
    {"get_FlatCodesDistanceComputer",
     (PyCFunction)pym_get_distance_computer, METH_VARARGS,
     "get_FlatCodesDistanceComputer(): as get_distance_computer()."},
    {"__reduce__", (PyCFunction)Index_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Index_getset[] = {
    {"d", (getter)Index_get_d, NULL, "vector dimension", NULL},
    {"ntotal", (getter)Index_get_ntotal, NULL, "number of stored vectors",
     NULL},
    {"is_trained", (getter)Index_get_is_trained, NULL,
     "whether add and search may be called", NULL},
    {"metric_type", (getter)Index_get_metric_type, NULL,
     "METRIC_L2 or METRIC_INNER_PRODUCT", NULL},
    {"code_size", (getter)Index_get_flat_code_size, NULL,
     "flat-code indexes: bytes per stored entry", NULL},
    {"codes", (getter)Index_get_codes, NULL,
     "flat-code indexes: a uint8 copy of the ntotal * code_size stored codes "
     "(IndexFlat: the float32 vectors' bytes)", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef IndexIDMap_getset[] = {
    {"index", (getter)Index_get_sub, NULL, "the wrapped index", NULL},
    {"id_map", (getter)Index_get_id_map, NULL,
     "the stored ids (a copy, int64 array of ntotal entries)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_repr = (reprfunc)Index_repr,
    .tp_flags = INDEX_FLAGS,
    .tp_doc = "Base class of all indexes (abstract).",
    .tp_traverse = (traverseproc)Index_traverse,
    .tp_clear = (inquiry)Index_clear,
    .tp_weaklistoffset = offsetof(IndexObject, weakreflist),
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_dictoffset = offsetof(IndexObject, dict),
};

static PyTypeObject IndexFlatType = INDEX_TYPE_BODY(
    "IndexFlat", "IndexFlat(d, metric=METRIC_L2): exact search.", &IndexType,
    IndexFlat_init, NULL, NULL);
PyTypeObject IndexFlatL2Type = INDEX_TYPE_BODY(
    "IndexFlatL2", "IndexFlatL2(d): exact search, squared L2 distance.",
    &IndexFlatType, IndexFlatL2_init, NULL, NULL);
PyTypeObject IndexFlatIPType = INDEX_TYPE_BODY(
    "IndexFlatIP", "IndexFlatIP(d): exact search, inner product.",
    &IndexFlatType, IndexFlatIP_init, NULL, NULL);
static PyTypeObject IndexIDMapType = INDEX_TYPE_BODY(
    "IndexIDMap",
    "IndexIDMap(index): stores the caller's 64-bit ids (add_with_ids).",
    &IndexType, IndexIDMap_init, NULL, IndexIDMap_getset);
static PyTypeObject IndexIDMap2Type = INDEX_TYPE_BODY(
    "IndexIDMap2",
    "IndexIDMap2(index): IndexIDMap whose reconstruct takes the caller's id.",
    &IndexIDMapType, IndexIDMap2_init, NULL, NULL);

static IndexObject *get_index(PyObject *o, const char *what) {
    if (!PyObject_TypeCheck(o, &IndexType)) {
        PyErr_Format(PyExc_TypeError, "%s must be a vecdex Index, got %.200s",
                     what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    IndexObject *ix = (IndexObject *)o;
    return ready(ix) < 0 ? NULL : ix;
}

/* ========================================================================= */
/* Persistence and other module functions on indexes                         */
/* ========================================================================= */
static PyObject *serialize(IndexObject *self) {
    uint8_t *buf = NULL;
    size_t size = 0;
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_serialize_index(self->ix, &buf, &size));
    if (e.st != VDX_OK) return raise_cerr(&e);
    if (size > (size_t)NPY_MAX_INTP) {
        vdx_free_buffer(buf);
        return PyErr_NoMemory();
    }
    PyObject *cap = PyCapsule_New(buf, BUFFER_CAPSULE, buffer_capsule_free);
    if (!cap) {
        vdx_free_buffer(buf);
        return NULL;
    }
    PyObject *a = array_over(buf, (npy_intp)size, NPY_UINT8, cap);
    Py_DECREF(cap);
    return a;
}

static int check_io_flags(int io_flags) {
    if (io_flags == 0) return 0;
    PyErr_Format(PyExc_ValueError, "io_flags=%d is not supported (only 0)",
                 io_flags);
    return -1;
}

static PyObject *mod_serialize_index(PyObject *m, PyObject *args,
                                     PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"index", "io_flags", NULL};
    PyObject *io;
    int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i:serialize_index", kwlist,
                                     &io, &flags))
        return NULL;
    IndexObject *ix = get_index(io, "index");
    if (!ix || check_io_flags(flags) < 0) return NULL;
    return serialize(ix);
}

static PyObject *deserialize_bytes(const void *buf, size_t size) {
    vdx_index *ix = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_deserialize_index(buf, size, &ix));
    Py_END_ALLOW_THREADS
    if (e.st != VDX_OK) return raise_cerr(&e);
    return wrap_tree(ix);
}

static PyObject *mod_deserialize_index(PyObject *m, PyObject *args,
                                       PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"data", "io_flags", NULL};
    PyObject *data;
    int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i:deserialize_index", kwlist,
                                     &data, &flags))
        return NULL;
    if (check_io_flags(flags) < 0) return NULL;
    if (PyArray_Check(data)) {
        PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(
            data, NPY_UINT8, 0, 0, NPY_ARRAY_IN_ARRAY);
        if (!a) return NULL;
        if (PyArray_NDIM(a) != 1) {
            PyErr_SetString(ShapeError,
                            "deserialize_index expects a 1-D uint8 array");
            Py_DECREF(a);
            return NULL;
        }
        PyObject *r = deserialize_bytes(PyArray_DATA(a),
                                        (size_t)PyArray_NBYTES(a));
        Py_DECREF(a);
        return r;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError,
                     "deserialize_index expects a uint8 array or a bytes-like "
                     "object, got %.200s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    PyObject *r = deserialize_bytes(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return r;
}

static PyObject *mod_clone_index(PyObject *m, PyObject *arg) {
    (void)m;
    IndexObject *ix = get_index(arg, "index");
    if (!ix) return NULL;
    PyObject *data = serialize(ix);
    if (!data) return NULL;
    PyArrayObject *a = (PyArrayObject *)data;
    PyObject *r = deserialize_bytes(PyArray_DATA(a), (size_t)PyArray_NBYTES(a));
    Py_DECREF(data);
    return r;
}

static PyObject *mod_write_index(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"index", "fname", NULL};
    PyObject *io, *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&:write_index", kwlist, &io,
                                     PyUnicode_FSConverter, &path))
        return NULL;
    IndexObject *ix = get_index(io, "index");
    if (!ix) {
        Py_DECREF(path);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(path);
    cerr e;
    RUN_LOCKED(ix->owner, rd, e, vdx_write_index(ix->ix, p));
    Py_DECREF(path);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *mod_read_index(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"fname", "io_flags", NULL};
    PyObject *path = NULL;
    int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|i:read_index", kwlist,
                                     PyUnicode_FSConverter, &path, &flags))
        return NULL;
    const char *p = PyBytes_AS_STRING(path);
    vdx_index *ix = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_read_index(p, flags, &ix));
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (e.st != VDX_OK) return raise_cerr(&e);
    return wrap_tree(ix);
}

static PyObject *mod_downcast_index(PyObject *m, PyObject *arg) {
    (void)m;
    if (!PyObject_TypeCheck(arg, &IndexType)) {
        PyErr_Format(PyExc_TypeError, "expected a vecdex Index, got %.200s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_INCREF(arg);
    return arg;
}

static PyMethodDef index_functions[] = {
    {"write_index", METH_KW_FN(mod_write_index), METH_VARARGS | METH_KEYWORDS,
     "write_index(index, fname): writes the index in FAISS's format."},
    {"read_index", METH_KW_FN(mod_read_index), METH_VARARGS | METH_KEYWORDS,
     "read_index(fname, io_flags=0) -> Index."},
    {"serialize_index", METH_KW_FN(mod_serialize_index),
     METH_VARARGS | METH_KEYWORDS,
     "serialize_index(index) -> uint8 array in FAISS's format."},
    {"deserialize_index", METH_KW_FN(mod_deserialize_index),
     METH_VARARGS | METH_KEYWORDS,
     "deserialize_index(data, io_flags=0) -> Index."},
    {"clone_index", (PyCFunction)mod_clone_index, METH_O,
     "clone_index(index) -> an independent copy."},
    {"downcast_index", (PyCFunction)mod_downcast_index, METH_O,
     "downcast_index(index) -> index (objects already have their class)."},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_index(PyObject *m) {
    PyTypeObject *types[] = {&IndexType,      &IndexFlatType,
                             &IndexFlatL2Type, &IndexFlatIPType,
                             &IndexIDMapType, &IndexIDMap2Type};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    if (PyModule_AddFunctions(m, index_functions) < 0) return -1;
    deserialize_func = PyObject_GetAttrString(m, "deserialize_index");
    return deserialize_func ? 0 : -1;
}
