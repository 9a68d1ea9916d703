/*
 * py_pq.c — ProductQuantizer, IndexPQ and IndexIVFPQ.
 *
 * A ProductQuantizer object either owns its C quantizer (made with
 * ProductQuantizer(d, M, nbits)) or borrows the one of an index
 * (`index.pq`), keeping the index's wrapper alive and taking its owner
 * lock for every call.  `centroids` is a writable numpy view of the C
 * table (M * ksub * dsub floats, as FAISS's vector) once trained; assigning
 * an array to it copies the values in (and marks an IndexPQ trained).
 * IndexIVFPQ derives from IndexIVF (nlist, nprobe, quantizer, invlists).
 */
#include "py_vecdex.h"

typedef struct {
    PyObject_HEAD
    vdx_pq *pq;
    IndexObject *index; /* the index owning pq (strong), or NULL */
} PQObject;

static PyTypeObject PQType;

/* --- locking around the owner's tree (no-op for a standalone quantizer) -- */
#define PQ_RUN(self, mode, e, call)                       \
    do {                                                  \
        if ((self)->index)                                \
            RUN_LOCKED((self)->index->owner, mode, e, call); \
        else {                                            \
            Py_BEGIN_ALLOW_THREADS                        \
            cerr_capture(&(e), (call));                   \
            Py_END_ALLOW_THREADS                          \
        }                                                 \
    } while (0)

static int PQ_init(PQObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", NULL};
    long long d, M;
    int nbits = 8;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|i:ProductQuantizer", kwlist,
                                     &d, &M, &nbits))
        return -1;
    if (self->pq || self->index) {
        PyErr_SetString(PyExc_RuntimeError, "already initialised");
        return -1;
    }
    vdx_status st = vdx_pq_new(d, M, nbits, &self->pq);
    if (st) {
        raise_status(st);
        return -1;
    }
    return 0;
}

static void PQ_dealloc(PQObject *self) {
    if (!self->index) vdx_pq_free(self->pq);
    Py_XDECREF(self->index);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int pq_ready(PQObject *self) {
    if (self->pq) return 0;
    PyErr_SetString(PyExc_RuntimeError, "ProductQuantizer not initialised");
    return -1;
}

static PyObject *PQ_train(PQObject *self, PyObject *xo) {
    if (pq_ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_pq_d(self->pq), "x");
    if (!x) return NULL;
    cerr e;
    PQ_RUN(self, wr, e,
           vdx_pq_train(self->pq, PyArray_DIM(x, 0), PyArray_DATA(x)));
    Py_DECREF(x);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *PQ_compute_codes(PQObject *self, PyObject *xo) {
    if (pq_ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_pq_d(self->pq), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0),
                        (npy_intp)vdx_pq_code_size(self->pq)};
    PyArrayObject *c = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_UINT8, 0);
    if (!c) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    PQ_RUN(self, rd, e,
           vdx_pq_compute_codes(self->pq, dims[0], PyArray_DATA(x),
                                PyArray_DATA(c)));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(c);
        return raise_cerr(&e);
    }
    return (PyObject *)c;
}

static PyObject *PQ_decode(PQObject *self, PyObject *co) {
    if (pq_ready(self) < 0) return NULL;
    PyArrayObject *c = as_array(co, NPY_UINT8);
    if (!c) return NULL;
    npy_intp cs = (npy_intp)vdx_pq_code_size(self->pq);
    if (PyArray_NDIM(c) != 2 || PyArray_DIM(c, 1) != cs) {
        char shp[64];
        format_shape(shp, sizeof shp, PyArray_NDIM(c), PyArray_DIMS(c));
        PyErr_Format(ShapeError, "codes: expected shape (n, %lld), got %s",
                     (long long)cs, shp);
        Py_DECREF(c);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(c, 0), (npy_intp)vdx_pq_d(self->pq)};
    PyArrayObject *x = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!x) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e;
    PQ_RUN(self, rd, e,
           vdx_pq_decode(self->pq, dims[0], PyArray_DATA(c), PyArray_DATA(x)));
    Py_DECREF(c);
    if (e.st != VDX_OK) {
        Py_DECREF(x);
        return raise_cerr(&e);
    }
    return (PyObject *)x;
}

static PyObject *PQ_compute_distance_table(PQObject *self, PyObject *args) {
    PyObject *xo;
    int metric = VDX_METRIC_L2;
    if (!PyArg_ParseTuple(args, "O|i:compute_distance_table", &xo, &metric))
        return NULL;
    if (pq_ready(self) < 0) return NULL;
    PyArrayObject *x = as_vector(xo, NPY_FLOAT32, (npy_intp)vdx_pq_d(self->pq), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {(npy_intp)vdx_pq_M(self->pq),
                        (npy_intp)1 << vdx_pq_nbits(self->pq)};
    PyArrayObject *t = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!t) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    PQ_RUN(self, rd, e,
           vdx_pq_compute_table(self->pq, (vdx_metric)metric, PyArray_DATA(x),
                                PyArray_DATA(t)));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(t);
        return raise_cerr(&e);
    }
    return (PyObject *)t;
}

static PyObject *PQ_get_int(PQObject *self, void *which) {
    if (pq_ready(self) < 0) return NULL;
    const vdx_pq *pq = self->pq;
    long long v;
    switch ((int)(intptr_t)which) {
    case 0: v = vdx_pq_d(pq); break;
    case 1: v = vdx_pq_M(pq); break;
    case 2: v = vdx_pq_nbits(pq); break;
    case 3: v = 1LL << vdx_pq_nbits(pq); break;
    case 4: v = vdx_pq_d(pq) / vdx_pq_M(pq); break;
    default: v = (long long)vdx_pq_code_size(pq); break;
    }
    return PyLong_FromLongLong(v);
}

static PyObject *PQ_get_centroids(PQObject *self, void *c) {
    (void)c;
    if (pq_ready(self) < 0) return NULL;
    const float *cent = vdx_pq_centroids(self->pq);
    npy_intp n = cent ? (npy_intp)(vdx_pq_d(self->pq) << vdx_pq_nbits(self->pq)) : 0;
    return array_over((void *)cent, n, NPY_FLOAT32, (PyObject *)self);
}

static int PQ_set_centroids(PQObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete centroids");
        return -1;
    }
    if (pq_ready(self) < 0) return -1;
    npy_intp n = (npy_intp)(vdx_pq_d(self->pq) << vdx_pq_nbits(self->pq));
    PyArrayObject *a = as_array(v, NPY_FLOAT32);
    if (!a) return -1;
    if (PyArray_SIZE(a) != n) {
        PyErr_Format(ShapeError,
                     "centroids: expected M * ksub * dsub = %lld floats, got "
                     "%lld",
                     (long long)n, (long long)PyArray_SIZE(a));
        Py_DECREF(a);
        return -1;
    }
    const float *src = PyArray_DATA(a);
    cerr e;
    if (src == vdx_pq_centroids(self->pq)) { /* the view itself, unchanged */
        Py_DECREF(a);
        return 0;
    }
    PQ_RUN(self, wr, e, vdx_pq_set_centroids(self->pq, src));
    Py_DECREF(a);
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyMethodDef PQ_methods[] = {
    {"train", (PyCFunction)PQ_train, METH_O,
     "train(x): k-means per subspace (25 iterations, as FAISS)."},
    {"compute_codes", (PyCFunction)PQ_compute_codes, METH_O,
     "compute_codes(x) -> uint8 array (n, code_size), packed as FAISS."},
    {"decode", (PyCFunction)PQ_decode, METH_O,
     "decode(codes) -> float32 array (n, d)."},
    {"compute_distance_table", (PyCFunction)PQ_compute_distance_table,
     METH_VARARGS,
     "compute_distance_table(x, metric=METRIC_L2) -> (M, ksub) table."},
    {"compute_distance_tables", (PyCFunction)pym_compute_distance_tables,
     METH_VARARGS,
     "compute_distance_tables(nx, x, out): L2 tables of nx queries into the "
     "(nx, M, ksub) float32 array out (py_pymethods.c)."},
    {"compute_inner_prod_tables", (PyCFunction)pym_compute_inner_prod_tables,
     METH_VARARGS,
     "compute_inner_prod_tables(nx, x, out): inner-product tables."},
    {"compute_sdc_table", (PyCFunction)pym_compute_sdc_table, METH_VARARGS,
     "compute_sdc_table(): fills sdc_table (centroid-to-centroid L2)."},
    {"sync_transposed_centroids", (PyCFunction)pym_sync_transposed_centroids,
     METH_VARARGS,
     "sync_transposed_centroids(): fills transposed_centroids (FAISS's "
     "encoding speed-up; vecdex's encoder does not need it)."},
    {"clear_transposed_centroids",
     (PyCFunction)pym_clear_transposed_centroids, METH_VARARGS,
     "clear_transposed_centroids(): empties transposed_centroids."},
    {"compute_codes_with_assign_index",
     (PyCFunction)pym_compute_codes_with_assign_index, METH_VARARGS,
     "compute_codes_with_assign_index(x, codes, n): compute_codes into "
     "codes (the nearest centroid, as an assign index finds it)."},
    {NULL, NULL, 0, NULL}};

static PyObject *PQ_get_cp(PQObject *self, void *c) {
    (void)c;
    if (pq_ready(self) < 0) return NULL;
    return cp_view(vdx_pq_cp(self->pq), (PyObject *)self);
}

static PyGetSetDef PQ_getset[] = {
    {"cp", (getter)PQ_get_cp, NULL,
     "ClusteringParameters of the per-sub-space k-means (FAISS: pq.cp)", NULL},
    {"d", (getter)PQ_get_int, NULL, "dimension", (void *)0},
    {"M", (getter)PQ_get_int, NULL, "number of sub-quantizers", (void *)1},
    {"nbits", (getter)PQ_get_int, NULL, "bits per sub-quantizer index",
     (void *)2},
    {"ksub", (getter)PQ_get_int, NULL, "centroids per sub-quantizer",
     (void *)3},
    {"dsub", (getter)PQ_get_int, NULL, "dimension of a sub-vector",
     (void *)4},
    {"code_size", (getter)PQ_get_int, NULL, "bytes per code", (void *)5},
    {"centroids", (getter)PQ_get_centroids, (setter)PQ_set_centroids,
     "M * ksub * dsub float32 centroids (a writable view once trained; "
     "assign an array to replace them)",
     NULL},
    {"sdc_table", (getter)pym_get_sdc_table, NULL,
     "(M, ksub, ksub) centroid-to-centroid L2 distances once "
     "compute_sdc_table() ran (py_pymethods.c)", NULL},
    {"transposed_centroids", (getter)pym_get_transposed_centroids, NULL,
     "centroids as (dsub, M, ksub), once sync_transposed_centroids() ran",
     NULL},
    {"centroids_sq_lengths", (getter)pym_get_centroids_sq_lengths, NULL,
     "squared norms of the centroids (M * ksub), once "
     "sync_transposed_centroids() ran", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject PQType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.ProductQuantizer",
    .tp_basicsize = sizeof(PQObject),
    .tp_dealloc = (destructor)PQ_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "ProductQuantizer(d, M, nbits=8): FAISS's product quantizer.",
    .tp_methods = PQ_methods,
    .tp_getset = PQ_getset,
    .tp_init = (initproc)PQ_init,
    .tp_new = PyType_GenericNew,
};

/* A ProductQuantizer view of pq, owned by index (Index2Layer.pq). */
PyObject *pq_view(vdx_pq *pq, IndexObject *index) {
    if (!pq) {
        PyErr_SetString(PyExc_AttributeError, "this index has no pq");
        return NULL;
    }
    PQObject *o = (PQObject *)PQType.tp_alloc(&PQType, 0);
    if (!o) return NULL;
    o->pq = pq;
    Py_INCREF(index);
    o->index = index;
    return (PyObject *)o;
}

/* index.pq */
static PyObject *Index_get_pq(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return pq_view(vdx_index_pq_quantizer(self->ix), self);
}

static PyObject *Index_get_code_size(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    vdx_pq *pq = vdx_index_pq_quantizer(self->ix);
    return PyLong_FromLongLong(pq ? (long long)vdx_pq_code_size(pq) : 0);
}

/* ========================================================================= */
/* IndexPQ                                                                   */
/* ========================================================================= */
static int IndexPQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", NULL};
    long long d, M;
    int nbits = 8, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|ii:IndexPQ", kwlist, &d,
                                     &M, &nbits, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_pq_new(d, M, nbits, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static PyGetSetDef IndexPQ_getset[] = {
    {"pq", (getter)Index_get_pq, NULL, "the product quantizer", NULL},
    {"code_size", (getter)Index_get_code_size, NULL, "bytes per code", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexPQType = INDEX_TYPE_BODY(
    "IndexPQ",
    "IndexPQ(d, M, nbits=8, metric=METRIC_L2): exhaustive search over "
    "product-quantizer codes (asymmetric distances).",
    &IndexType, IndexPQ_init, NULL, IndexPQ_getset);

/* ========================================================================= */
/* IndexIVFPQ                                                                */
/* ========================================================================= */
typedef struct {
    int64_t d, nlist, M;
    int nbits;
    vdx_metric metric;
} ivfpq_args;

static vdx_status build_ivfpq(vdx_index *quantizer, void *ctx,
                              vdx_index **out) {
    const ivfpq_args *a = ctx;
    return vdx_index_ivfpq_new(quantizer, a->d, a->nlist, a->M, a->nbits,
                               a->metric, out);
}

static int IndexIVFPQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "M", "nbits",
                             "metric", NULL};
    PyObject *qo;
    long long d, nlist, M;
    int nbits = 8, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LLL|ii:IndexIVFPQ", kwlist,
                                     &IndexType, &qo, &d, &nlist, &M, &nbits,
                                     &metric))
        return -1;
    ivfpq_args a = {d, nlist, M, nbits, (vdx_metric)metric};
    return adopt_quantizer(self, qo, build_ivfpq, &a);
}

static PyObject *IVFPQ_get_by_residual(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyBool_FromLong(vdx_index_ivfpq_by_residual(self->ix));
}

static int IVFPQ_set_by_residual(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete by_residual");
        return -1;
    }
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    if (mutable_(self, "by_residual") < 0) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e, vdx_index_ivfpq_set_by_residual(self->ix, on));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *IVFPQ_get_upt(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLong(vdx_index_ivfpq_use_precomputed_table(self->ix, NULL));
}

static int IVFPQ_set_upt(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot delete use_precomputed_table");
        return -1;
    }
    long val = PyLong_AsLong(v);
    if (val == -1 && PyErr_Occurred()) return -1;
    if (mutable_(self, "use_precomputed_table") < 0) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_ivfpq_set_use_precomputed_table(
                   self->ix, val < -2 || val > 2 ? 9 : (int)val));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *IVFPQ_precompute_table(IndexObject *self, PyObject *noargs) {
    (void)noargs;
    if (mutable_(self, "precompute_table") < 0) return NULL;
    cerr e;
    int v = vdx_index_ivfpq_use_precomputed_table(self->ix, NULL);
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_ivfpq_set_use_precomputed_table(self->ix, v));
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyMethodDef IndexIVFPQ_methods[] = {
    {"precompute_table", (PyCFunction)IVFPQ_precompute_table, METH_NOARGS,
     "precompute_table(): rebuilds the precomputed L2 tables (as FAISS)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef IndexIVFPQ_getset[] = {
    {"use_precomputed_table", (getter)IVFPQ_get_upt, (setter)IVFPQ_set_upt,
     "-1: never use the precomputed L2 tables; 0: when they fit in 2 GiB "
     "(default); 1: always",
     NULL},
    {"pq", (getter)Index_get_pq, NULL, "the product quantizer (residuals)",
     NULL},
    {"code_size", (getter)Index_get_code_size, NULL, "bytes per code", NULL},
    {"by_residual", (getter)IVFPQ_get_by_residual, (setter)IVFPQ_set_by_residual,
     "codes encode x - centroid (True by default; settable, as in FAISS)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexIVFPQType = INDEX_TYPE_BODY(
    "IndexIVFPQ",
    "IndexIVFPQ(quantizer, d, nlist, M, nbits=8, metric=METRIC_L2): "
    "inverted-file index over PQ codes of the residuals.  Takes ownership "
    "of the quantizer.",
    &IndexIVFType, IndexIVFPQ_init, IndexIVFPQ_methods, IndexIVFPQ_getset);

int pyvdx_init_pq(PyObject *m) {
    if (add_type(m, &PQType) < 0 || add_type(m, &IndexPQType) < 0 ||
        add_type(m, &IndexIVFPQType) < 0)
        return -1;
    return 0;
}
