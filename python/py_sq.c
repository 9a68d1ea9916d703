/*
 * py_sq.c — the scalar quantizer: ScalarQuantizer (standalone, or the
 * borrowed `index.sq` of an SQ index), IndexScalarQuantizer and
 * IndexIVFScalarQuantizer (FAISS's classes and QT_* numbers).
 *
 * A borrowed ScalarQuantizer keeps its index's wrapper alive and takes the
 * index's owner lock around every call; a standalone one owns its C
 * quantizer.  IndexIVFScalarQuantizer derives from IndexIVF (nprobe,
 * quantizer, invlists, direct map); its own attributes are by_residual and
 * sq.
 */
#include "py_vecdex.h"

/* ========================================================================= */
/* ScalarQuantizer                                                           */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    vdx_sq *sq;
    IndexObject *index; /* borrowed from this index when not NULL */
} SQObject;

static PyTypeObject SQType;

static void SQ_dealloc(SQObject *self) {
    if (self->index) Py_CLEAR(self->index);
    else vdx_sq_free(self->sq);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int SQ_init(SQObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "qtype", NULL};
    long long d = 0;
    int qtype = VDX_SQ_8BIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L|i:ScalarQuantizer", kwlist,
                                     &d, &qtype))
        return -1;
    if (self->sq || self->index) {
        PyErr_SetString(PyExc_RuntimeError, "already initialised");
        return -1;
    }
    vdx_status st = vdx_sq_new(d, qtype, &self->sq);
    if (st != VDX_OK) {
        raise_status(st);
        return -1;
    }
    return 0;
}

static int sq_ready(SQObject *self) {
    if (self->sq) return 0;
    PyErr_SetString(PyExc_RuntimeError, "ScalarQuantizer is not initialised");
    return -1;
}

/* Runs a call on the quantizer, under the index's lock when borrowed. */
#define SQ_RUN(self, mode, e, call)                                         \
    do {                                                                    \
        if ((self)->index) {                                                \
            RUN_LOCKED((self)->index->owner, mode, e, call);                \
        } else {                                                            \
            Py_BEGIN_ALLOW_THREADS cerr_capture(&(e), (call));              \
            Py_END_ALLOW_THREADS                                            \
        }                                                                   \
    } while (0)

static PyObject *SQ_train(SQObject *self, PyObject *xo) {
    if (sq_ready(self) < 0) return NULL;
    if (self->index) {
        PyErr_SetString(PyExc_RuntimeError,
                        "train the index, not its scalar quantizer");
        return NULL;
    }
    PyArrayObject *x = as_matrix(xo, vdx_sq_d(self->sq), "x");
    if (!x) return NULL;
    cerr e;
    SQ_RUN(self, wr, e,
           vdx_sq_train(self->sq, PyArray_DIM(x, 0), PyArray_DATA(x)));
    Py_DECREF(x);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *SQ_compute_codes(SQObject *self, PyObject *xo) {
    if (sq_ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_sq_d(self->sq), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)vdx_sq_code_size(self->sq)};
    PyArrayObject *c = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_UINT8);
    if (!c) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    SQ_RUN(self, rd, e,
           vdx_sq_compute_codes(self->sq, dims[0], PyArray_DATA(x),
                                PyArray_DATA(c)));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(c);
        return raise_cerr(&e);
    }
    return (PyObject *)c;
}

static PyObject *SQ_decode(SQObject *self, PyObject *co) {
    if (sq_ready(self) < 0) return NULL;
    PyArrayObject *c = as_array(co, NPY_UINT8);
    if (!c) return NULL;
    npy_intp cs = (npy_intp)vdx_sq_code_size(self->sq);
    if (PyArray_NDIM(c) != 2 || PyArray_DIM(c, 1) != cs) {
        char buf[64];
        format_shape(buf, sizeof buf, PyArray_NDIM(c), PyArray_DIMS(c));
        PyErr_Format(ShapeError, "codes must have shape (n, %zd), got %s",
                     (Py_ssize_t)cs, buf);
        Py_DECREF(c);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(c, 0), (npy_intp)vdx_sq_d(self->sq)};
    PyArrayObject *x = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    if (!x) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e;
    SQ_RUN(self, rd, e,
           vdx_sq_decode(self->sq, dims[0], PyArray_DATA(c), PyArray_DATA(x)));
    Py_DECREF(c);
    if (e.st != VDX_OK) {
        Py_DECREF(x);
        return raise_cerr(&e);
    }
    return (PyObject *)x;
}

/* which: 0 d, 1 qtype, 2 code_size, 3 is_trained */
static PyObject *SQ_get_int(SQObject *self, void *which) {
    if (sq_ready(self) < 0) return NULL;
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLongLong(vdx_sq_d(self->sq));
    case 1: return PyLong_FromLong(vdx_sq_qtype(self->sq));
    case 2: return PyLong_FromSize_t(vdx_sq_code_size(self->sq));
    default: return PyBool_FromLong(vdx_sq_is_trained(self->sq));
    }
}

static PyObject *SQ_get_trained(SQObject *self, void *c) {
    (void)c;
    if (sq_ready(self) < 0) return NULL;
    size_t n;
    if (self->index) owner_rdlock_gil(self->index->owner);
    const float *t = vdx_sq_trained(self->sq, &n);
    npy_intp dims[1] = {(npy_intp)n};
    PyObject *a = PyArray_SimpleNew(1, dims, NPY_FLOAT32);
    if (a && n) memcpy(PyArray_DATA((PyArrayObject *)a), t, n * sizeof(float));
    if (self->index) rw_rdunlock(&self->index->owner->lock);
    return a;
}

static int SQ_set_trained(SQObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete trained");
        return -1;
    }
    if (sq_ready(self) < 0) return -1;
    PyArrayObject *a = as_vector(v, NPY_FLOAT32, -1, "trained");
    if (!a) return -1;
    cerr e;
    SQ_RUN(self, wr, e,
           vdx_sq_set_trained(self->sq, PyArray_DATA(a),
                              (size_t)PyArray_DIM(a, 0)));
    Py_DECREF(a);
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyMethodDef SQ_methods[] = {
    {"train", (PyCFunction)SQ_train, METH_O,
     "train(x): learns the ranges (min / max, per dimension or global)."},
    {"compute_codes", (PyCFunction)SQ_compute_codes, METH_O,
     "compute_codes(x) -> uint8 array (n, code_size), FAISS's layout."},
    {"decode", (PyCFunction)SQ_decode, METH_O,
     "decode(codes) -> float32 array (n, d)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef SQ_getset[] = {
    {"d", (getter)SQ_get_int, NULL, "dimension", (void *)0},
    {"qtype", (getter)SQ_get_int, NULL, "quantizer type (QT_*)", (void *)1},
    {"code_size", (getter)SQ_get_int, NULL, "bytes per code", (void *)2},
    {"is_trained", (getter)SQ_get_int, NULL, "ranges learnt", (void *)3},
    {"trained", (getter)SQ_get_trained, (setter)SQ_set_trained,
     "the trained values as FAISS stores them (a float32 copy)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject SQType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.ScalarQuantizer",
    .tp_basicsize = sizeof(SQObject),
    .tp_dealloc = (destructor)SQ_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "ScalarQuantizer(d, qtype=QT_8bit): codes each component on "
              "8, 6 or 4 bits or as a 16-bit float, as FAISS does.",
    .tp_methods = SQ_methods,
    .tp_getset = SQ_getset,
    .tp_init = (initproc)SQ_init,
    .tp_new = PyType_GenericNew,
};

/* index.sq: a borrowed view (keeps the index wrapper alive). */
static PyObject *Index_get_sq(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    SQObject *o = (SQObject *)SQType.tp_alloc(&SQType, 0);
    if (!o) return NULL;
    o->sq = vdx_index_sq_quantizer(self->ix);
    Py_INCREF(self);
    o->index = self;
    return (PyObject *)o;
}

/* ========================================================================= */
/* IndexScalarQuantizer                                                      */
/* ========================================================================= */
static int IndexSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "qtype", "metric", NULL};
    long long d;
    int qtype, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Li|i:IndexScalarQuantizer",
                                     kwlist, &d, &qtype, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    cerr e;
    cerr_capture(&e, vdx_index_sq_new(d, qtype, (vdx_metric)metric, &ix));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return index_take_root(self, VDX_OK, ix);
}

static PyGetSetDef IndexSQ_getset[] = {
    {"sq", (getter)Index_get_sq, NULL, "the scalar quantizer (borrowed)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexScalarQuantizerType = INDEX_TYPE_BODY(
    "IndexScalarQuantizer",
    "IndexScalarQuantizer(d, qtype, metric=METRIC_L2): exhaustive search "
    "over scalar-quantized codes.",
    &IndexType, IndexSQ_init, NULL, IndexSQ_getset);

/* ========================================================================= */
/* IndexIVFScalarQuantizer                                                   */
/* ========================================================================= */
typedef struct {
    int64_t d, nlist;
    int qtype, by_residual;
    vdx_metric metric;
} ivfsq_args;

static vdx_status build_ivfsq(vdx_index *quantizer, void *ctx,
                              vdx_index **out) {
    const ivfsq_args *a = ctx;
    return vdx_index_ivf_sq_new(quantizer, a->d, a->nlist, a->qtype,
                                a->metric, a->by_residual, out);
}

static int IndexIVFSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "d",       "nlist", "qtype",
                             "metric",    "encode_residual",  NULL};
    PyObject *qo;
    long long d, nlist;
    int qtype, metric = VDX_METRIC_L2, byres = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw,
                                     "O!LLi|ip:IndexIVFScalarQuantizer",
                                     kwlist, &IndexType, &qo, &d, &nlist,
                                     &qtype, &metric, &byres))
        return -1;
    ivfsq_args a = {d, nlist, qtype, byres, (vdx_metric)metric};
    return adopt_quantizer(self, qo, build_ivfsq, &a);
}

static PyObject *IVFSQ_get_by_residual(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyBool_FromLong(vdx_index_ivf_sq_by_residual(self->ix));
}

static int IVFSQ_set_by_residual(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete by_residual");
        return -1;
    }
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    if (mutable_(self, "by_residual") < 0) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_ivf_sq_set_by_residual(self->ix, on));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyGetSetDef IndexIVFSQ_getset[] = {
    {"sq", (getter)Index_get_sq, NULL, "the scalar quantizer (borrowed)",
     NULL},
    {"by_residual", (getter)IVFSQ_get_by_residual,
     (setter)IVFSQ_set_by_residual,
     "codes are of the residuals to the list centroids (settable while the "
     "index is empty)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexIVFScalarQuantizerType = INDEX_TYPE_BODY(
    "IndexIVFScalarQuantizer",
    "IndexIVFScalarQuantizer(quantizer, d, nlist, qtype, metric=METRIC_L2, "
    "encode_residual=True): inverted-file index over scalar-quantized "
    "codes (of the residuals by default).  Takes ownership of the "
    "quantizer.",
    &IndexIVFType, IndexIVFSQ_init, NULL, IndexIVFSQ_getset);

/* ========================================================================= */
/* Registration                                                              */
/* ========================================================================= */
int pyvdx_init_sq(PyObject *m) {
    static const struct {
        const char *name;
        int v;
    } qt[] = {{"QT_8bit", VDX_SQ_8BIT},
              {"QT_4bit", VDX_SQ_4BIT},
              {"QT_8bit_uniform", VDX_SQ_8BIT_UNIFORM},
              {"QT_4bit_uniform", VDX_SQ_4BIT_UNIFORM},
              {"QT_fp16", VDX_SQ_FP16},
              {"QT_8bit_direct", VDX_SQ_8BIT_DIRECT},
              {"QT_6bit", VDX_SQ_6BIT},
              {"QT_bf16", VDX_SQ_BF16},
              {"QT_8bit_direct_signed", VDX_SQ_8BIT_DIRECT_SIGNED},
              {"QT_1bit_tqmse", VDX_SQ_1BIT_TQMSE},
              {"QT_2bit_tqmse", VDX_SQ_2BIT_TQMSE},
              {"QT_3bit_tqmse", VDX_SQ_3BIT_TQMSE},
              {"QT_4bit_tqmse", VDX_SQ_4BIT_TQMSE},
              {"QT_8bit_tqmse", VDX_SQ_8BIT_TQMSE},
              {"RS_minmax", 0}};
    if (PyType_Ready(&SQType) < 0) return -1;
    for (size_t i = 0; i < sizeof qt / sizeof qt[0]; i++) {
        PyObject *v = PyLong_FromLong(qt[i].v);
        if (!v || PyDict_SetItemString(SQType.tp_dict, qt[i].name, v) < 0) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
    }
    PyType_Modified(&SQType);
    Py_INCREF(&SQType);
    if (add_object(m, "ScalarQuantizer", (PyObject *)&SQType) < 0) return -1;
    return add_type(m, &IndexScalarQuantizerType) < 0 ||
                   add_type(m, &IndexIVFScalarQuantizerType) < 0
               ? -1
               : 0;
}
