/*
 * py_fastscan.c — IndexPQFastScan and IndexIVFPQFastScan (4-bit PQ codes
 * scanned with SIMD table lookups; results equal the float tables of the
 * same codes).  IndexIVFPQFastScan derives from IndexIVF (nlist, nprobe,
 * quantizer, invlists).
 *
 * `index.pq` returns a vecdex.ProductQuantizer borrowing the index's
 * quantizer.  That type lives in py_pq.c; the view is built here with the
 * same object layout (PQView below must stay equal to py_pq.c's PQObject).
 */
#include "py_vecdex.h"

typedef struct {
    PyObject_HEAD
    vdx_pq *pq;
    IndexObject *index; /* strong reference to the owning index */
} PQView;

static PyTypeObject *pq_type; /* vecdex.ProductQuantizer, set at init */

static PyObject *FS_get_pq(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    vdx_pq *pq = vdx_index_fastscan_pq(self->ix);
    if (!pq || !pq_type) {
        PyErr_SetString(PyExc_AttributeError, "this index has no pq");
        return NULL;
    }
    PQView *o = (PQView *)pq_type->tp_alloc(pq_type, 0);
    if (!o) return NULL;
    o->pq = pq;
    Py_INCREF(self);
    o->index = self;
    return (PyObject *)o;
}

/* which: 0 bbs, 1 M, 2 nbits, 3 code_size, 4 ksub, 5 M2, 6 implem / qbs /
 * skip (FAISS's defaults: 0), 7 ntotal2 (ntotal rounded up to bbs) */
static PyObject *FS_get_int(IndexObject *self, void *which) {
    if (ready(self) < 0) return NULL;
    const vdx_pq *pq = vdx_index_fastscan_pq(self->ix);
    long long bbs = vdx_index_fastscan_bbs(self->ix), v = 0;
    long long M = pq ? vdx_pq_M(pq) : 0;
    switch ((int)(intptr_t)which) {
    case 0: v = bbs; break;
    case 1: v = M; break;
    case 2: v = pq ? vdx_pq_nbits(pq) : 0; break;
    case 3: v = pq ? (long long)vdx_pq_code_size(pq) : 0; break;
    case 4: v = 16; break;
    case 5: v = (M + 1) / 2 * 2; break;
    case 6: v = 0; break;
    case 8: v = vdx_index_fastscan_implem(self->ix); break;
    default: {
        long long n = locked_ntotal(self);
        v = bbs ? (n + bbs - 1) / bbs * bbs : n;
    }
    }
    return PyLong_FromLongLong(v);
}

static PyObject *FS_get_by_residual(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyBool_FromLong(vdx_index_fastscan_by_residual(self->ix));
}

static int FS_set_by_residual(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete by_residual");
        return -1;
    }
    if (mutable_(self, "by_residual") < 0) return -1;
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_fastscan_set_by_residual(self->ix, on));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static int FS_set_implem(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete implem");
        return -1;
    }
    if (ready(self) < 0) return -1;
    long n = PyLong_AsLong(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_fastscan_set_implem(self->ix,
                                             n < -1 || n > 99 ? -1 : (int)n));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

#define FS_COMMON_GETSET                                                     \
    {"pq", (getter)FS_get_pq, NULL, "the product quantizer (nbits = 4)",    \
     NULL},                                                                  \
    {"bbs", (getter)FS_get_int, NULL, "block size (vectors per block)",     \
     (void *)0},                                                             \
    {"M", (getter)FS_get_int, NULL, "number of sub-quantizers", (void *)1}, \
    {"nbits", (getter)FS_get_int, NULL, "bits per index (4)", (void *)2},   \
    {"code_size", (getter)FS_get_int, NULL, "bytes per flat code",          \
     (void *)3},                                                             \
    {"ksub", (getter)FS_get_int, NULL, "centroids per sub-quantizer (16)",  \
     (void *)4},                                                             \
    {"M2", (getter)FS_get_int, NULL, "M rounded up to even", (void *)5},    \
    {"implem", (getter)FS_get_int, (setter)FS_set_implem,                    \
     "FAISS's kernel variant (0: automatic); vecdex has one scan whose "     \
     "results do not depend on it, the value is kept for files",             \
     (void *)8},                                                             \
    {"skip", (getter)FS_get_int, NULL, "FAISS's debug field (0)", (void *)6}

static PyObject *FS_get_qbs(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong((long long)vdx_index_fastscan_qbs(self->ix));
}

static int FS_set_qbs(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete qbs");
        return -1;
    }
    if (mutable_(self, "qbs") < 0) return -1;
    long long n = PyLong_AsLongLong(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e, vdx_index_fastscan_set_qbs(self->ix, n));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

/* FAISS's IndexFastScan::codes (an AlignedTable of the packed blocks, ntotal
 * rounded up to bbs): a copy in a vecdex.AlignedTableUint8, which
 * vector_to_array and AlignedTable_to_array read. */
static PyObject *FS_get_codes(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    PyArrayObject *a = NULL;
    for (;;) { /* allocate without holding the lock, as Index_get_codes */
        size_t size = 0;
        cerr e = {VDX_OK, ""};
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_fastscan_codes(self->ix, NULL, &size));
        if (e.st != VDX_OK) return raise_cerr(&e);
        npy_intp len = (npy_intp)size;
        a = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_UINT8);
        if (!a) return NULL;
        size_t have = size;
        RUN_LOCKED(self->owner, rd, e,
                   vdx_index_fastscan_codes(self->ix, PyArray_DATA(a), &have));
        if (e.st == VDX_OK) break;
        Py_DECREF(a);
        if (e.st != VDX_ERR_INVALID_ARGUMENT) return raise_cerr(&e);
        /* grown between the two calls: again */
    }
    PyObject *mod = PyImport_ImportModule("vecdex._helpers");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, "AlignedTableUint8") : NULL;
    Py_XDECREF(mod);
    PyObject *tab = cls ? PyObject_CallNoArgs(cls) : NULL;
    Py_XDECREF(cls);
    if (!tab || PyObject_SetAttrString(tab, "_a", (PyObject *)a) < 0) {
        Py_XDECREF(tab);
        Py_DECREF(a);
        return NULL;
    }
    Py_DECREF(a);
    return tab;
}

static PyMethodDef FS_methods[] = {
    {"get_CodePacker", (PyCFunction)pym_get_CodePacker, METH_VARARGS,
     "get_CodePacker() -> CodePackerPQ4(M, bbs): where each vector's code "
     "sits in the packed blocks"},
    {NULL, NULL, 0, NULL}};

/* ========================================================================= */
/* IndexPQFastScan                                                           */
/* ========================================================================= */
/* IndexPQFastScan(index_pq, bbs=32): FAISS's conversion constructor */
static vdx_status pqfs_from(PyObject *args, PyObject *kw, vdx_index **ix) {
    static char *kwlist[] = {"orig", "bbs", NULL};
    PyObject *src;
    long long bbs = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|L:IndexPQFastScan", kwlist,
                                     &IndexType, &src, &bbs))
        return VDX_ERR_INVALID_ARGUMENT;
    IndexObject *so = (IndexObject *)src;
    if (!so->ix) {
        PyErr_SetString(PyExc_RuntimeError, "source index is not initialised");
        return VDX_ERR_INVALID_ARGUMENT;
    }
    cerr e = {VDX_OK, ""};
    owner_rdlock_gil(so->owner);
    cerr_capture(&e, vdx_index_pq_fastscan_from_pq(so->ix, bbs, ix));
    rw_rdunlock(&so->owner->lock);
    if (e.st) raise_cerr(&e);
    return e.st;
}

static int IndexPQFastScan_init(IndexObject *self, PyObject *args,
                                PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", "bbs", NULL};
    long long d, M, bbs = 32;
    int nbits = 4, metric = VDX_METRIC_L2;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st;
    if (PyTuple_GET_SIZE(args) >= 1 &&
        PyObject_TypeCheck(PyTuple_GET_ITEM(args, 0), &IndexType)) {
        if (pqfs_from(args, kw, &ix)) return -1;
        st = VDX_OK;
    } else {
        if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|iiL:IndexPQFastScan",
                                         kwlist, &d, &M, &nbits, &metric,
                                         &bbs))
            return -1;
        st = vdx_index_pq_fastscan_new(d, M, nbits, (vdx_metric)metric, bbs,
                                       &ix);
    }
    return index_take_root(self, st, ix);
}

static PyGetSetDef IndexPQFastScan_getset[] = {
    FS_COMMON_GETSET,
    {"ntotal2", (getter)FS_get_int, NULL, "ntotal rounded up to bbs",
     (void *)7},
    {"qbs", (getter)FS_get_qbs, (setter)FS_set_qbs,
     "FAISS's query batch sizes (hex digits; 0: automatic); vecdex's scan "
     "does not depend on it, the value is kept for files", NULL},
    {"codes", (getter)FS_get_codes, NULL,
     "the packed code blocks (a copy, as an AlignedTableUint8)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexPQFastScanType = INDEX_TYPE_BODY(
    "IndexPQFastScan",
    "IndexPQFastScan(d, M, nbits=4, metric=METRIC_L2, bbs=32): exhaustive "
    "search over 4-bit PQ codes with SIMD table lookups (results equal the "
    "float tables of the same codes).",
    &IndexType, IndexPQFastScan_init, FS_methods, IndexPQFastScan_getset);

/* ========================================================================= */
/* IndexIVFPQFastScan                                                        */
/* ========================================================================= */
typedef struct {
    int64_t d, nlist, M, bbs;
    int nbits;
    vdx_metric metric;
} ivffs_args;

static vdx_status build_ivffs(vdx_index *quantizer, void *ctx,
                              vdx_index **out) {
    const ivffs_args *a = ctx;
    return vdx_index_ivfpq_fastscan_new(quantizer, a->d, a->nlist, a->M,
                                        a->nbits, a->metric, a->bbs, out);
}

/* IndexIVFPQFastScan(index_ivfpq, bbs=32): FAISS's conversion
 * constructor.  FAISS shares the quantizer; vecdex gives the new index a
 * copy (an index has one owner here). */
typedef struct {
    IndexObject *src;
    int64_t bbs;
} ivffs_from_args;

static vdx_status build_ivffs_from(vdx_index *quantizer, void *ctx,
                                   vdx_index **out) {
    const ivffs_from_args *a = ctx;
    rw_rdlock(&a->src->owner->lock);
    vdx_status st = vdx_index_ivfpq_fastscan_from_ivfpq(a->src->ix, quantizer,
                                                        a->bbs, out);
    rw_rdunlock(&a->src->owner->lock);
    return st;
}

static int ivffs_from(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"orig", "bbs", NULL};
    PyObject *src;
    long long bbs = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|L:IndexIVFPQFastScan",
                                     kwlist, &IndexType, &src, &bbs))
        return -1;
    if (!((IndexObject *)src)->ix) {
        PyErr_SetString(PyExc_RuntimeError, "source index is not initialised");
        return -1;
    }
    PyObject *mod = PyImport_ImportModule("vecdex");
    if (!mod) return -1;
    PyObject *q = PyObject_GetAttrString(src, "quantizer");
    PyObject *bytes = q ? PyObject_CallMethod(mod, "serialize_index", "O", q)
                        : NULL;
    PyObject *copy = bytes ? PyObject_CallMethod(mod, "deserialize_index", "O",
                                                 bytes)
                           : NULL;
    Py_XDECREF(q);
    Py_XDECREF(bytes);
    Py_DECREF(mod);
    if (!copy) return -1;
    if (!PyObject_TypeCheck(copy, &IndexType)) {
        Py_DECREF(copy);
        PyErr_SetString(PyExc_TypeError, "quantizer copy is not an index");
        return -1;
    }
    ivffs_from_args a = {(IndexObject *)src, bbs};
    int r = index_adopt(self, copy, build_ivffs_from, &a);
    Py_DECREF(copy);
    return r;
}

static int IndexIVFPQFastScan_init(IndexObject *self, PyObject *args,
                                   PyObject *kw) {
    if (PyTuple_GET_SIZE(args) >= 1 && PyTuple_GET_SIZE(args) <= 2 &&
        !(kw && PyDict_GetItemString(kw, "d")))
        return ivffs_from(self, args, kw);
    static char *kwlist[] = {"quantizer", "d", "nlist", "M", "nbits",
                             "metric", "bbs", NULL};
    PyObject *qo;
    long long d, nlist, M, bbs = 32;
    int nbits = 4, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LLL|iiL:IndexIVFPQFastScan",
                                     kwlist, &IndexType, &qo, &d, &nlist, &M,
                                     &nbits, &metric, &bbs))
        return -1;
    ivffs_args a = {d, nlist, M, bbs, nbits, (vdx_metric)metric};
    return adopt_quantizer(self, qo, build_ivffs, &a); /* FAISS shares it */
}

static PyGetSetDef IndexIVFPQFastScan_getset[] = {
    FS_COMMON_GETSET,
    {"by_residual", (getter)FS_get_by_residual, (setter)FS_set_by_residual,
     "codes encode x - centroid (False by default, as FAISS; settable "
     "before training)",
     NULL},
    {"qbs", (getter)FS_get_int, NULL, "FAISS's query batch size (0)",
     (void *)6},
    {"qbs2", (getter)FS_get_int, NULL, "FAISS's query batch size (0)",
     (void *)6},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexIVFPQFastScanType = INDEX_TYPE_BODY(
    "IndexIVFPQFastScan",
    "IndexIVFPQFastScan(quantizer, d, nlist, M, nbits=4, metric=METRIC_L2, "
    "bbs=32): inverted-file index over 4-bit PQ codes scanned with SIMD "
    "table lookups.  Takes ownership of the quantizer.",
    &IndexIVFType, IndexIVFPQFastScan_init, FS_methods,
    IndexIVFPQFastScan_getset);

int pyvdx_init_fastscan(PyObject *m) {
    PyObject *t = PyObject_GetAttrString(m, "ProductQuantizer");
    if (!t) return -1;
    if (!PyType_Check(t) ||
        ((PyTypeObject *)t)->tp_basicsize != (Py_ssize_t)sizeof(PQView)) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_ImportError,
                        "vecdex: ProductQuantizer layout mismatch");
        return -1;
    }
    pq_type = (PyTypeObject *)t; /* the module keeps it alive */
    Py_DECREF(t);
    if (add_type(m, &IndexPQFastScanType) < 0 ||
        add_type(m, &IndexIVFPQFastScanType) < 0)
        return -1;
    return 0;
}
