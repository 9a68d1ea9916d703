/*
 * py_ivf.c — IndexIVFFlat (FAISS's inverted-file index over uncompressed
 * vectors) and the read-only `invlists` view of its lists.
 *
 * vdx_index_ivf_flat_new() takes ownership of the quantizer's C index, so
 * the constructor adopts it exactly as IndexIDMap adopts its sub-index
 * (index_adopt in py_index.c): the IVF index becomes the root of the
 * quantizer's owner record and `ivf.quantizer` keeps returning the caller's
 * Python object.  While the IVF wrapper lives, the quantizer refuses
 * add/remove_ids/reset (they would leave the lists pointing at the wrong
 * centroids); train() on the IVF fills it, and its ntotal shows that.
 * Loaded indexes get a quantizer wrapper of their own (wrap_tree).
 *
 * nprobe and max_codes are the index's defaults; a SearchParametersIVF
 * passed to search() overrides them for that call only, so concurrent
 * searches with different settings are safe.
 */
#include "py_vecdex.h"

#include <string.h>

/* ========================================================================= */
/* IndexIVFFlat                                                              */
/* ========================================================================= */
typedef struct {
    int64_t d, nlist;
    vdx_metric metric;
} ivf_args;

static vdx_status build_ivf_flat(vdx_index *quantizer, void *ctx,
                                 vdx_index **out) {
    const ivf_args *a = ctx;
    return vdx_index_ivf_flat_new(quantizer, a->d, a->nlist, a->metric, out);
}

static int IndexIVFFlat_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "metric", NULL};
    PyObject *qo;
    long long d, nlist;
    int metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LL|i:IndexIVFFlat", kwlist,
                                     &IndexType, &qo, &d, &nlist, &metric))
        return -1;
    ivf_args a = {d, nlist, (vdx_metric)metric};
    return adopt_quantizer(self, qo, build_ivf_flat, &a);
}

/* --- attributes ---------------------------------------------------------- */
static PyObject *IVF_get_nlist(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_index_ivf_nlist(self->ix));
}

/* which: 0 = nprobe, 1 = max_codes */
static PyObject *IVF_get_knob(IndexObject *self, void *which) {
    if (ready(self) < 0) return NULL;
    owner_rdlock_gil(self->owner);
    int64_t v = which ? vdx_index_ivf_max_codes(self->ix)
                      : vdx_index_ivf_nprobe(self->ix);
    rw_rdunlock(&self->owner->lock);
    return PyLong_FromLongLong(v);
}

static int IVF_set_knob(IndexObject *self, PyObject *v, void *which) {
    const char *name = which ? "max_codes" : "nprobe";
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError, "cannot delete %s", name);
        return -1;
    }
    if (ready(self) < 0) return -1;
    long long n = PyLong_AsLongLong(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    cerr e;
    /* exclusive: searches running now keep the value they started with */
    RUN_LOCKED(self->owner, wr, e,
               which ? vdx_index_ivf_set_max_codes(self->ix, n)
                     : vdx_index_ivf_set_nprobe(self->ix, n));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *InvLists_new_for(IndexObject *ivf);

static PyObject *IVF_get_invlists(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return InvLists_new_for(self);
}

/* --- methods ------------------------------------------------------------- */
static PyObject *direct_map(IndexObject *self, int on) {
    if (ready(self) < 0) return NULL;
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_ivf_make_direct_map(self->ix, on));
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *IVF_make_direct_map(IndexObject *self, PyObject *args,
                                     PyObject *kw) {
    static char *kwlist[] = {"new_maintain", NULL};
    int on = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:make_direct_map", kwlist,
                                     &on))
        return NULL;
    return direct_map(self, on);
}

static PyObject *IVF_set_direct_map_type(IndexObject *self, PyObject *args,
                                         PyObject *kw) {
    static char *kwlist[] = {"type", NULL};
    int type;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i:set_direct_map_type",
                                     kwlist, &type))
        return NULL;
    if (type != 0 && type != 1) {
        PyErr_Format(InvalidArgumentError,
                     "set_direct_map_type: type %d is not supported; use "
                     "DirectMap.NoMap (0) or DirectMap.Array (1)%s",
                     type,
                     type == 2 ? " (Hashtable, for arbitrary ids, is not "
                                 "implemented)"
                               : "");
        return NULL;
    }
    return direct_map(self, type);
}

static PyObject *IVF_replace_invlists(IndexObject *self, PyObject *args,
                                      PyObject *kw);

/* _merge_ondisk(index, shard_fnames, ivfdata_fname, shift_ids): see
 * vecdex.contrib.ondisk.merge_ondisk. */
static PyObject *IVF_merge_ondisk(IndexObject *self, PyObject *args) {
    PyObject *seq, *outp = NULL;
    int shift = 0;
    if (!PyArg_ParseTuple(args, "OO&|p:_merge_ondisk", &seq,
                          PyUnicode_FSConverter, &outp, &shift))
        return NULL;
    if (mutable_(self, "merge_ondisk") < 0) {
        Py_DECREF(outp);
        return NULL;
    }
    PyObject *fast = PySequence_Fast(seq, "shard_fnames must be a sequence");
    if (!fast) {
        Py_DECREF(outp);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **bytes = PyMem_Calloc((size_t)(n ? n : 1), sizeof(PyObject *));
    const char **paths = PyMem_Calloc((size_t)(n ? n : 1), sizeof(char *));
    PyObject *ret = NULL;
    if (!bytes || !paths) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(fast, i),
                                   &bytes[i]))
            goto done;
        paths[i] = PyBytes_AS_STRING(bytes[i]);
    }
    cerr e;
    int64_t nt = 0;
    const char *op = PyBytes_AS_STRING(outp);
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_ivf_merge_ondisk(self->ix, paths, (int)n, op, shift,
                                          &nt));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        goto done;
    }
    ret = PyLong_FromLongLong(nt);
done:
    if (bytes)
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(bytes[i]);
    PyMem_Free(bytes);
    PyMem_Free(paths);
    Py_DECREF(fast);
    Py_DECREF(outp);
    return ret;
}

/* search_preassigned(x, k, Iq, Dq=None, *, params=None, D=None, I=None):
 * FAISS's IndexIVF.search_preassigned.  Dq (coarse distances) is checked
 * for shape and otherwise unused: vecdex recomputes what it needs. */
static PyObject *IVF_search_preassigned(IndexObject *self, PyObject *args,
                                        PyObject *kw) {
    static char *kwlist[] = {"x", "k", "Iq", "Dq", "params", "D", "I", NULL};
    PyObject *xo, *iqo, *dqo = Py_None, *po = Py_None, *Do = Py_None, *Io = Py_None;
    long long k;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OLO|O$OOO:search_preassigned",
                                     kwlist, &xo, &k, &iqo, &dqo, &po, &Do, &Io))
        return NULL;
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    PyArrayObject *iq = NULL, *dq = NULL, *dist = NULL, *lab = NULL;
    PyObject *keep = NULL;
    vdx_search_params p;
    const vdx_search_params *pp;
    if (k <= 0) {
        PyErr_Format(ShapeError, "k must be > 0, got %lld", k);
        goto fail;
    }
    iq = as_array(iqo, NPY_INT64);
    if (!iq) goto fail;
    npy_intp n = PyArray_DIM(x, 0);
    if (PyArray_NDIM(iq) != 2 || PyArray_DIM(iq, 0) != n || PyArray_DIM(iq, 1) < 1) {
        PyErr_Format(ShapeError,
                     "search_preassigned: Iq must be (n=%lld, nprobe >= 1) list "
                     "numbers", (long long)n);
        goto fail;
    }
    if (dqo != Py_None) {
        dq = as_array(dqo, NPY_FLOAT32);
        if (!dq) goto fail;
        if (PyArray_NDIM(dq) != 2 || PyArray_DIM(dq, 0) != n ||
            PyArray_DIM(dq, 1) != PyArray_DIM(iq, 1)) {
            PyErr_Format(ShapeError,
                         "search_preassigned: Dq must have the shape of Iq "
                         "(%lld, %lld)", (long long)n, (long long)PyArray_DIM(iq, 1));
            goto fail;
        }
    }
    if (get_params(po, &p, &pp, &keep) < 0) goto fail;
    npy_intp dims[2] = {n, (npy_intp)k};
    dist = out_array(Do, NPY_FLOAT32, 2, dims, "D");
    if (!dist) goto fail;
    lab = out_array(Io, NPY_INT64, 2, dims, "I");
    if (!lab) goto fail;
    if (n > 0) {
        cerr e;
        int64_t np = PyArray_DIM(iq, 1);
        const float *xp = PyArray_DATA(x);
        const int64_t *lp = PyArray_DATA(iq);
        float *dp = PyArray_DATA(dist);
        vdx_idx_t *ip = PyArray_DATA(lab);
        /* PARALLEL_MODE_NO_HEAP_INIT: add to what D / I hold
         * (py_ivf_modes.c) */
        const int merge = Do != Py_None && Io != Py_None &&
                          ivf_no_heap_init((PyObject *)self);
        float *tdp = merge ? PyMem_Malloc((size_t)(n * k) * sizeof(float)) : dp;
        vdx_idx_t *tip = merge ? PyMem_Malloc((size_t)(n * k) * sizeof(vdx_idx_t)) : ip;
        if (!tdp || !tip) {
            if (merge) {
                PyMem_Free(tdp);
                PyMem_Free(tip);
            }
            PyErr_NoMemory();
            goto fail;
        }
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_ivf_search_preassigned(self->ix, n, xp, k, np, lp,
                                                    pp, tdp, tip));
        int mr = 0;
        if (merge && e.st == VDX_OK)
            mr = merge_knn_rows(n, k,
                                vdx_index_metric(self->ix) ==
                                    VDX_METRIC_INNER_PRODUCT,
                                dp, ip, tdp, tip);
        if (merge) {
            PyMem_Free(tdp);
            PyMem_Free(tip);
        }
        if (e.st != VDX_OK) {
            raise_cerr(&e);
            goto fail;
        }
        if (mr < 0) goto fail;
    }
    Py_DECREF(x);
    Py_DECREF(iq);
    Py_XDECREF(dq);
    Py_XDECREF(keep);
    return Py_BuildValue("NN", dist, lab);
fail:
    Py_DECREF(x);
    Py_XDECREF(iq);
    Py_XDECREF(dq);
    Py_XDECREF(keep);
    Py_XDECREF(dist);
    Py_XDECREF(lab);
    return NULL;
}

static PyMethodDef IVF_methods[] = {
    {"search_preassigned", METH_KW_FN(IVF_search_preassigned),
     METH_VARARGS | METH_KEYWORDS,
     "search_preassigned(x, k, Iq, Dq=None, *, params=None) -> (D, I): the "
     "k nearest among the lists Iq (n, nprobe) chosen by the caller."},
    {"replace_invlists", METH_KW_FN(IVF_replace_invlists),
     METH_VARARGS | METH_KEYWORDS,
     "replace_invlists(il, own=False): this index's lists become il "
     "(another IVF index's invlists, shared as in FAISS; reference counted, "
     "so own is accepted and ignored); ntotal becomes the lists' total."},
    {"_merge_ondisk", (PyCFunction)IVF_merge_ondisk, METH_VARARGS,
     "_merge_ondisk(shard_fnames, ivfdata_fname, shift_ids=False): see "
     "vecdex.contrib.ondisk.merge_ondisk."},
    {"make_direct_map", METH_KW_FN(IVF_make_direct_map),
     METH_VARARGS | METH_KEYWORDS,
     "make_direct_map(new_maintain=True): builds (or drops) the id -> "
     "(list, offset) map that reconstruct needs; ids must be 0..ntotal-1."},
    {"set_direct_map_type", METH_KW_FN(IVF_set_direct_map_type),
     METH_VARARGS | METH_KEYWORDS,
     "set_direct_map_type(type): DirectMap.NoMap (0) or DirectMap.Array "
     "(1)."},
    {NULL, NULL, 0, NULL}};

static PyObject *IVF_get_cp(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return cp_view(vdx_index_ivf_cp(self->ix), (PyObject *)self);
}

/* FAISS's Level1Quantizer::quantizer_trains_alone: vecdex decides by the
 * quantizer's kind (an additive coarse quantizer trains alone, 1; the
 * others get k-means centroids, 0), so a value set is kept for reading
 * back only */
static PyObject *IVF_get_alone(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    PyObject *v = self->dict ? PyDict_GetItemString(self->dict, "_trains_alone") : NULL;
    if (v) {
        Py_INCREF(v);
        return v;
    }
    vdx_index *q = vdx_index_ivf_quantizer(self->ix);
    int alone = q && (!strcmp(vdx_index_type_name(q), "ResidualCoarseQuantizer") ||
                      !strcmp(vdx_index_type_name(q), "LocalSearchCoarseQuantizer"));
    return PyLong_FromLong(alone);
}

static int IVF_set_alone(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (ready(self) < 0) return -1;
    if (!self->dict && !(self->dict = PyDict_New())) return -1;
    if (!v) return PyDict_DelItemString(self->dict, "_trains_alone");
    return PyDict_SetItemString(self->dict, "_trains_alone", v);
}

static PyGetSetDef IVF_getset[] = {
    {"quantizer_trains_alone", (getter)IVF_get_alone, (setter)IVF_set_alone,
     "1 when the quantizer trains itself (an additive coarse quantizer); "
     "vecdex chooses by the quantizer's kind",
     NULL},
    {"cp", (getter)IVF_get_cp, NULL,
     "ClusteringParameters of the coarse quantizer's k-means (niter, seed, "
     "...), as FAISS's IndexIVF.cp",
     NULL},
    {"quantizer", (getter)Index_get_sub, NULL,
     "the coarse quantizer (holds the nlist centroids once trained)", NULL},
    {"nlist", (getter)IVF_get_nlist, NULL, "number of inverted lists", NULL},
    {"nprobe", (getter)IVF_get_knob, (setter)IVF_set_knob,
     "lists probed by a search without SearchParametersIVF(nprobe=...); "
     "clamped to 1..nlist",
     (void *)0},
    {"max_codes", (getter)IVF_get_knob, (setter)IVF_set_knob,
     "a search stops after this many codes (0 = no limit)", (void *)1},
    {"invlists", (getter)IVF_get_invlists, NULL,
     "read-only view of the inverted lists (list_size, get_ids)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

/* IndexIVF: the common base of the IVF kinds (FAISS's IndexIVF), holding
 * their shared attributes and methods; not constructible itself. */
static int IndexIVF_init(IndexObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    (void)args;
    (void)kw;
    PyErr_SetString(PyExc_TypeError,
                    "IndexIVF is abstract: use IndexIVFFlat, IndexIVFPQ, ...");
    return -1;
}

PyTypeObject IndexIVFType = INDEX_TYPE_BODY(
    "IndexIVF",
    "IndexIVF: the base class of the inverted-file indexes (nlist, nprobe, "
    "quantizer, invlists, make_direct_map).",
    &IndexType, IndexIVF_init, IVF_methods, IVF_getset);

PyTypeObject IndexIVFFlatType = INDEX_TYPE_BODY(
    "IndexIVFFlat",
    "IndexIVFFlat(quantizer, d, nlist, metric=METRIC_L2): inverted-file "
    "index storing the full vectors.  Takes ownership of the quantizer "
    "(an index that must not belong to another index).",
    &IndexIVFType, IndexIVFFlat_init, NULL, NULL);

/* ========================================================================= */
/* InvertedLists: a view of an IVF index's lists (keeps the index alive)     */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    IndexObject *index;
} InvListsObject;

static PyTypeObject InvListsType;

static PyObject *InvLists_new_for(IndexObject *ivf) {
    InvListsObject *self = PyObject_New(InvListsObject, &InvListsType);
    if (!self) return NULL;
    Py_INCREF(ivf);
    self->index = ivf;
    return (PyObject *)self;
}

static void InvLists_dealloc(InvListsObject *self) {
    Py_CLEAR(self->index);
    PyObject_Free(self);
}

/* The list number in arg, or -1 with an exception. */
static long long list_no(InvListsObject *self, PyObject *arg) {
    long long l = PyLong_AsLongLong(arg);
    if (l == -1 && PyErr_Occurred()) return -1;
    int64_t nlist = vdx_index_ivf_nlist(self->index->ix);
    if (l < 0 || l >= nlist) {
        PyErr_Format(InvalidArgumentError,
                     "list %lld is not a list of this index (nlist=%lld)", l,
                     (long long)nlist);
        return -1;
    }
    return l;
}

static int64_t locked_list_size(IndexObject *ix, long long l) {
    owner_rdlock_gil(ix->owner);
    int64_t n = vdx_index_ivf_list_size(ix->ix, l);
    rw_rdunlock(&ix->owner->lock);
    return n;
}

static PyObject *InvLists_list_size(InvListsObject *self, PyObject *arg) {
    long long l = list_no(self, arg);
    if (l < 0) return NULL;
    return PyLong_FromLongLong(locked_list_size(self->index, l));
}

static PyObject *InvLists_get_ids(InvListsObject *self, PyObject *arg) {
    long long l = list_no(self, arg);
    if (l < 0) return NULL;
    IndexObject *ix = self->index;
    /* allocate without holding the lock; retry if the list changed size */
    for (;;) {
        npy_intp n = (npy_intp)locked_list_size(ix, l);
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64);
        if (!a) return NULL;
        cerr e = {VDX_OK, ""};
        owner_rdlock_gil(ix->owner);
        int same = vdx_index_ivf_list_size(ix->ix, l) == (int64_t)n;
        if (same)
            cerr_capture(&e,
                         vdx_index_ivf_list_ids(ix->ix, l, PyArray_DATA(a)));
        rw_rdunlock(&ix->owner->lock);
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

static PyObject *InvLists_get_codes(InvListsObject *self, PyObject *arg) {
    long long l = list_no(self, arg);
    if (l < 0) return NULL;
    IndexObject *ix = self->index;
    size_t cs = vdx_index_ivf_code_size(ix->ix);
    for (;;) {
        npy_intp n = (npy_intp)locked_list_size(ix, l) * (npy_intp)cs;
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_UINT8);
        if (!a) return NULL;
        cerr e = {VDX_OK, ""};
        owner_rdlock_gil(ix->owner);
        int same = vdx_index_ivf_list_size(ix->ix, l) * (npy_intp)cs == n;
        if (same)
            cerr_capture(&e,
                         vdx_index_ivf_list_codes(ix->ix, l, PyArray_DATA(a)));
        rw_rdunlock(&ix->owner->lock);
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

static PyObject *InvLists_get_nlist(InvListsObject *self, void *c) {
    (void)c;
    return PyLong_FromLongLong(vdx_index_ivf_nlist(self->index->ix));
}

static PyObject *InvLists_get_code_size(InvListsObject *self, void *c) {
    (void)c;
    return PyLong_FromLongLong(
        (long long)vdx_index_ivf_code_size(self->index->ix));
}

static PyMethodDef InvLists_methods[] = {
    {"list_size", (PyCFunction)InvLists_list_size, METH_O,
     "list_size(list_no) -> int: number of vectors in the list."},
    {"get_ids", (PyCFunction)InvLists_get_ids, METH_O,
     "get_ids(list_no) -> int64 array: a copy of the ids of the list "
     "(rev_swig_ptr(get_ids(l), n) works as in FAISS)."},
    {"get_codes", (PyCFunction)InvLists_get_codes, METH_O,
     "get_codes(list_no) -> uint8 array: a copy of the codes of the list "
     "(list_size * code_size bytes)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef InvLists_getset[] = {
    {"nlist", (getter)InvLists_get_nlist, NULL, "number of lists", NULL},
    {"code_size", (getter)InvLists_get_code_size, NULL,
     "bytes per stored vector", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject InvListsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.InvertedLists",
    .tp_basicsize = sizeof(InvListsObject),
    .tp_dealloc = (destructor)InvLists_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The inverted lists of an IVF index (index.invlists); keeps "
              "the index alive.",
    .tp_methods = InvLists_methods,
    .tp_getset = InvLists_getset,
};

/* ========================================================================= */
/* Registration                                                              */
/* ========================================================================= */

/* class DirectMap: NoMap = 0; Array = 1; Hashtable = 2 (FAISS's enum) */
static PyObject *make_direct_map_class(void) {
    PyObject *ns = Py_BuildValue("{s:i,s:i,s:i,s:s,s:s}", "NoMap", 0, "Array",
                                 1, "Hashtable", 2, "__module__", "vecdex",
                                 "__doc__",
                                 "Direct map types for "
                                 "IndexIVF.set_direct_map_type (Hashtable "
                                 "is not implemented).");
    if (!ns) return NULL;
    PyObject *cls = PyObject_CallFunction((PyObject *)&PyType_Type, "s(O)O",
                                          "DirectMap", &PyBaseObject_Type, ns);
    Py_DECREF(ns);
    return cls;
}

int pyvdx_init_ivf(PyObject *m) {
    if (add_type(m, &IndexIVFType) < 0 || add_type(m, &IndexIVFFlatType) < 0 ||
        add_type(m, &InvListsType) < 0)
        return -1;
    return add_object(m, "DirectMap", make_direct_map_class());
}

/* replace_invlists(il, own=False): il is an InvertedLists view (another
 * IVF index's invlists) or an IVF index. */
static PyObject *IVF_replace_invlists(IndexObject *self, PyObject *args,
                                      PyObject *kw) {
    static char *kwlist[] = {"il", "own", NULL};
    PyObject *il_obj;
    int own = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:replace_invlists", kwlist,
                                     &il_obj, &own))
        return NULL;
    if (mutable_(self, "replace_invlists") < 0) return NULL;
    IndexObject *other = NULL;
    if (PyObject_TypeCheck(il_obj, &InvListsType))
        other = ((InvListsObject *)il_obj)->index;
    else if (PyObject_TypeCheck(il_obj, &IndexIVFType))
        other = (IndexObject *)il_obj;
    if (!other) {
        PyErr_Format(PyExc_TypeError,
                     "replace_invlists: expected an InvertedLists (an IVF "
                     "index's invlists), got %.200s",
                     Py_TYPE(il_obj)->tp_name);
        return NULL;
    }
    if (ready(other) < 0) return NULL;
    cerr e;
    if (other->owner == self->owner) {
        RUN_LOCKED(self->owner, wr, e,
                   vdx_index_ivf_replace_invlists(self->ix, other->ix, own));
    } else {
        Py_BEGIN_ALLOW_THREADS
        rw_wrlock(&self->owner->lock);
        rw_rdlock(&other->owner->lock);
        cerr_capture(&e,
                     vdx_index_ivf_replace_invlists(self->ix, other->ix, own));
        rw_rdunlock(&other->owner->lock);
        rw_wrunlock(&self->owner->lock);
        Py_END_ALLOW_THREADS
    }
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}
