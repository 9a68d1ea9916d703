/*
 * py_aq_index.c — the additive-quantizer indexes: IndexAdditiveQuantizer
 * (base of IndexResidualQuantizer, IndexLocalSearchQuantizer,
 * IndexProductResidualQuantizer, IndexProductLocalSearchQuantizer),
 * AdditiveCoarseQuantizer (base of ResidualCoarseQuantizer,
 * LocalSearchCoarseQuantizer) and IndexIVFAdditiveQuantizer (base of the
 * four IVF kinds, derived from IndexIVF).  The quantizer is reachable as
 * `index.aq` and under FAISS's per-kind names (`rq`, `lsq`, `prq`,
 * `plsq`), a view borrowing the index (py_aq.c).
 */
#include "py_vecdex.h"

PyObject *aq_view(vdx_aq *aq, IndexObject *index, PyObject *parent);

PyTypeObject IndexAdditiveQuantizerType, IndexResidualQuantizerType,
    IndexLocalSearchQuantizerType, IndexProductResidualQuantizerType,
    IndexProductLocalSearchQuantizerType, AdditiveCoarseQuantizerType,
    ResidualCoarseQuantizerType, LocalSearchCoarseQuantizerType,
    IndexIVFAdditiveQuantizerType, IndexIVFResidualQuantizerType,
    IndexIVFLocalSearchQuantizerType, IndexIVFProductResidualQuantizerType,
    IndexIVFProductLocalSearchQuantizerType, IndexAdditiveQuantizerFastScanType,
    IndexResidualQuantizerFastScanType, IndexLocalSearchQuantizerFastScanType,
    IndexProductResidualQuantizerFastScanType,
    IndexProductLocalSearchQuantizerFastScanType,
    IndexIVFAdditiveQuantizerFastScanType, IndexIVFResidualQuantizerFastScanType,
    IndexIVFLocalSearchQuantizerFastScanType,
    IndexIVFProductResidualQuantizerFastScanType,
    IndexIVFProductLocalSearchQuantizerFastScanType;

static PyObject *IAQ_get_aq(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return aq_view(vdx_index_aq(self->ix), self, NULL);
}

/* a new index tree rooted at ix, owned by self (constructors) */
/* nbits: an int with M, or a sequence (FAISS's vector<size_t> overloads) */
static int nbits_arg(PyObject *mo, PyObject *bo, int **nb, Py_ssize_t *M) {
    if (PyLong_Check(mo)) {
        *M = PyLong_AsSsize_t(mo);
        long b = bo ? PyLong_AsLong(bo) : 8;
        if ((*M < 0 || b == -1) && PyErr_Occurred()) return -1;
        *nb = PyMem_Malloc(sizeof(int) * (size_t)(*M > 0 ? *M : 1));
        if (!*nb) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < *M; i++) (*nb)[i] = (int)b;
        return 0;
    }
    PyObject *seq = PySequence_Fast(mo, "nbits must be an int or a sequence");
    if (!seq) return -1;
    *M = PySequence_Fast_GET_SIZE(seq);
    *nb = PyMem_Malloc(sizeof(int) * (size_t)(*M ? *M : 1));
    if (!*nb) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *M; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(*nb);
            Py_DECREF(seq);
            return -1;
        }
        (*nb)[i] = (int)v;
    }
    Py_DECREF(seq);
    return 0;
}

/* ---- the flat kinds ------------------------------------------------------ */

static int flat_init(IndexObject *self, vdx_status st, vdx_aq *aq, int metric) {
    if (st) {
        raise_status(st);
        return -1;
    }
    vdx_index *ix = NULL;
    st = vdx_index_aq_new(aq, (vdx_metric)metric, &ix);
    if (st) vdx_aq_free(aq);
    return index_take_root(self, st, ix);
}

/* IndexResidualQuantizer(d, M, nbits, metric=L2, search_type=0) or
 * (d, nbits_list, metric=L2, search_type=0) */
static int IRQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", "search_type", NULL};
    long long d;
    PyObject *mo, *a2 = NULL, *a3 = NULL, *a4 = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LO|OOO:IndexResidualQuantizer",
                                     kwlist, &d, &mo, &a2, &a3, &a4))
        return -1;
    if (index_init_once(self)) return -1;
    int metric = VDX_METRIC_L2, stype = 0;
    PyObject *nbo = NULL;
    if (PyLong_Check(mo)) { /* (d, M, nbits, metric, st) */
        nbo = a2;
        if (a3 && (metric = (int)PyLong_AsLong(a3)) == -1 && PyErr_Occurred()) return -1;
        if (a4 && (stype = (int)PyLong_AsLong(a4)) == -1 && PyErr_Occurred()) return -1;
    } else { /* (d, nbits, metric, st) */
        if (a2 && (metric = (int)PyLong_AsLong(a2)) == -1 && PyErr_Occurred()) return -1;
        if (a3 && (stype = (int)PyLong_AsLong(a3)) == -1 && PyErr_Occurred()) return -1;
    }
    int *nb = NULL;
    Py_ssize_t M = 0;
    if (nbits_arg(mo, nbo, &nb, &M) < 0) return -1;
    vdx_aq *aq = NULL;
    vdx_status st = vdx_rq_new(d, M, nb, stype, &aq);
    PyMem_Free(nb);
    return flat_init(self, st, aq, metric);
}

static int ILSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", "search_type", NULL};
    long long d, M;
    int nbits, metric = VDX_METRIC_L2, stype = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LLi|ii:IndexLocalSearchQuantizer",
                                     kwlist, &d, &M, &nbits, &metric, &stype))
        return -1;
    if (index_init_once(self)) return -1;
    vdx_aq *aq = NULL;
    vdx_status st = vdx_lsq_new(d, M, nbits, stype, &aq);
    return flat_init(self, st, aq, metric);
}

static int iprod_init(IndexObject *self, PyObject *args, PyObject *kw, int kind,
                      const char *fmt) {
    static char *kwlist[] = {"d", "nsplits", "Msub", "nbits", "metric",
                             "search_type", NULL};
    long long d, ns, ms;
    int nbits, metric = VDX_METRIC_L2, stype = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &d, &ns, &ms, &nbits,
                                     &metric, &stype))
        return -1;
    if (index_init_once(self)) return -1;
    vdx_aq *aq = NULL;
    vdx_status st = vdx_product_aq_new(kind, d, ns, ms, nbits, stype, &aq);
    return flat_init(self, st, aq, metric);
}
static int IPRQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return iprod_init(self, args, kw, VDX_AQ_PRQ,
                      "LLLi|ii:IndexProductResidualQuantizer");
}
static int IPLSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return iprod_init(self, args, kw, VDX_AQ_PLSQ,
                      "LLLi|ii:IndexProductLocalSearchQuantizer");
}

static int abstract_init(IndexObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    (void)args;
    (void)kw;
    PyErr_SetString(PyExc_TypeError, "abstract index class: use a concrete kind");
    return -1;
}

static PyObject *IAQ_sa_code_size(IndexObject *self, PyObject *noargs) {
    (void)noargs;
    if (ready(self) < 0) return NULL;
    return PyLong_FromSize_t(vdx_aq_code_size(vdx_index_aq(self->ix)));
}

static PyObject *IAQ_sa_encode(IndexObject *self, PyObject *xo) {
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0),
                        (npy_intp)vdx_aq_code_size(vdx_index_aq(self->ix))};
    PyArrayObject *c = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_UINT8, 0);
    if (!c) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_aq_sa_encode(self->ix, dims[0], PyArray_DATA(x), PyArray_DATA(c)));
    Py_DECREF(x);
    if (e.st) {
        Py_DECREF(c);
        return raise_cerr(&e);
    }
    return (PyObject *)c;
}

static PyObject *IAQ_sa_decode(IndexObject *self, PyObject *co) {
    if (ready(self) < 0) return NULL;
    PyArrayObject *c = as_array(co, NPY_UINT8);
    if (!c) return NULL;
    npy_intp cs = (npy_intp)vdx_aq_code_size(vdx_index_aq(self->ix));
    if (PyArray_NDIM(c) != 2 || PyArray_DIM(c, 1) != cs) {
        PyErr_Format(ShapeError, "codes: expected shape (n, %lld)", (long long)cs);
        Py_DECREF(c);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(c, 0), (npy_intp)vdx_index_d(self->ix)};
    PyArrayObject *x = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!x) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_aq_sa_decode(self->ix, dims[0], PyArray_DATA(c), PyArray_DATA(x)));
    Py_DECREF(c);
    if (e.st) {
        Py_DECREF(x);
        return raise_cerr(&e);
    }
    return (PyObject *)x;
}

/* index.codes: a copy of the stored codes (ntotal x code_size bytes, flat
 * as FAISS's vector) */
static PyObject *IAQ_get_codes(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    owner_rdlock_gil(self->owner);
    npy_intp n = (npy_intp)(vdx_index_ntotal(self->ix) *
                            (int64_t)vdx_aq_code_size(vdx_index_aq(self->ix)));
    PyArrayObject *a = (PyArrayObject *)PyArray_ZEROS(1, &n, NPY_UINT8, 0);
    if (a && n) memcpy(PyArray_DATA(a), vdx_index_aq_codes(self->ix), (size_t)n);
    rw_rdunlock(&self->owner->lock);
    return (PyObject *)a;
}

static PyObject *IAQ_get_code_size(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromSize_t(vdx_aq_code_size(vdx_index_aq(self->ix)));
}

/* is_trained is settable, as FAISS code does after assigning codebooks:
 * it marks the quantizer trained (the index follows) */
static PyObject *IAQ_get_is_trained(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyBool_FromLong(vdx_index_is_trained(self->ix));
}

static int IAQ_set_is_trained(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete is_trained");
        return -1;
    }
    if (ready(self) < 0) return -1;
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e, vdx_aq_set_trained(vdx_index_aq(self->ix), on));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyMethodDef IAQ_methods[] = {
    {"sa_code_size", (PyCFunction)IAQ_sa_code_size, METH_NOARGS, "bytes per code"},
    {"sa_encode", (PyCFunction)IAQ_sa_encode, METH_O,
     "sa_encode(x) -> uint8 (n, code_size): the codes add() would store"},
    {"sa_decode", (PyCFunction)IAQ_sa_decode, METH_O, "sa_decode(codes) -> (n, d)"},
    {NULL, NULL, 0, NULL}};

#define AQ_GET(name, doc) {name, (getter)IAQ_get_aq, NULL, doc, NULL}
#define IAQ_COMMON                                                            \
    AQ_GET("aq", "the additive quantizer"),                                   \
        {"code_size", (getter)IAQ_get_code_size, NULL, "bytes per code", NULL}, \
        {"is_trained", (getter)IAQ_get_is_trained, (setter)IAQ_set_is_trained,  \
         "trained (setting it marks the quantizer trained)", NULL}

static PyGetSetDef IAQ_getset[] = {
    IAQ_COMMON,
    {"codes", (getter)IAQ_get_codes, NULL, "the stored codes (a copy)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef IRQ_getset[] = {AQ_GET("rq", "the residual quantizer"),
                                   {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef ILSQ_getset[] = {AQ_GET("lsq", "the local search quantizer"),
                                    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef IPRQ_getset[] = {AQ_GET("prq", "the product residual quantizer"),
                                    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef IPLSQ_getset[] = {
    AQ_GET("plsq", "the product local search quantizer"),
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexAdditiveQuantizerType = INDEX_TYPE_BODY(
    "IndexAdditiveQuantizer", "Base of the flat additive-quantizer indexes.",
    &IndexType, abstract_init, IAQ_methods, IAQ_getset);
PyTypeObject IndexResidualQuantizerType = INDEX_TYPE_BODY(
    "IndexResidualQuantizer",
    "IndexResidualQuantizer(d, M, nbits, metric=METRIC_L2, search_type=ST_decompress)"
    " or IndexResidualQuantizer(d, nbits_list, metric, search_type)",
    &IndexAdditiveQuantizerType, IRQ_init, NULL, IRQ_getset);
PyTypeObject IndexLocalSearchQuantizerType = INDEX_TYPE_BODY(
    "IndexLocalSearchQuantizer",
    "IndexLocalSearchQuantizer(d, M, nbits, metric=METRIC_L2, search_type=ST_decompress)",
    &IndexAdditiveQuantizerType, ILSQ_init, NULL, ILSQ_getset);
PyTypeObject IndexProductResidualQuantizerType = INDEX_TYPE_BODY(
    "IndexProductResidualQuantizer",
    "IndexProductResidualQuantizer(d, nsplits, Msub, nbits, metric=METRIC_L2, "
    "search_type=ST_decompress)",
    &IndexAdditiveQuantizerType, IPRQ_init, NULL, IPRQ_getset);
PyTypeObject IndexProductLocalSearchQuantizerType = INDEX_TYPE_BODY(
    "IndexProductLocalSearchQuantizer",
    "IndexProductLocalSearchQuantizer(d, nsplits, Msub, nbits, metric=METRIC_L2, "
    "search_type=ST_decompress)",
    &IndexAdditiveQuantizerType, IPLSQ_init, NULL, IPLSQ_getset);

/* ---- the fast-scan kinds -------------------------------------------------- */

static int fs_init(IndexObject *self, vdx_status st, vdx_aq *aq, int metric,
                   long long bbs) {
    if (st) {
        raise_status(st);
        return -1;
    }
    vdx_index *ix = NULL;
    st = vdx_index_aq_fastscan_new(aq, (vdx_metric)metric, bbs, &ix);
    if (st) vdx_aq_free(aq);
    return index_take_root(self, st, ix);
}

/* IndexResidualQuantizerFastScan(d, M, nbits, metric=L2,
 * search_type=ST_norm_rq2x4, bbs=32) and the LSQ kind */
static int iaqfs_init(IndexObject *self, PyObject *args, PyObject *kw, int lsq,
                      const char *fmt) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", "search_type", "bbs", NULL};
    long long d, M, bbs = 32;
    int nbits, metric = VDX_METRIC_L2;
    int stype = lsq ? VDX_AQ_ST_NORM_LSQ2X4 : VDX_AQ_ST_NORM_RQ2X4;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &d, &M, &nbits, &metric,
                                     &stype, &bbs))
        return -1;
    if (index_init_once(self)) return -1;
    if (M < 0 || M > 4096) {
        PyErr_Format(PyExc_ValueError, "M must be in 1..4096, got %lld", M);
        return -1;
    }
    vdx_aq *aq = NULL;
    vdx_status st;
    if (lsq) {
        st = vdx_lsq_new(d, M, nbits, stype, &aq);
    } else {
        int *nb = PyMem_Malloc(sizeof(int) * (size_t)(M ? M : 1));
        if (!nb) {
            PyErr_NoMemory();
            return -1;
        }
        for (long long i = 0; i < M; i++) nb[i] = nbits;
        st = vdx_rq_new(d, M, nb, stype, &aq);
        PyMem_Free(nb);
    }
    return fs_init(self, st, aq, metric, bbs);
}
static int IRQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return iaqfs_init(self, args, kw, 0, "LLi|iiL:IndexResidualQuantizerFastScan");
}
static int ILSQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return iaqfs_init(self, args, kw, 1, "LLi|iiL:IndexLocalSearchQuantizerFastScan");
}

static int iprodfs_init(IndexObject *self, PyObject *args, PyObject *kw, int kind,
                        const char *fmt) {
    static char *kwlist[] = {"d", "nsplits", "Msub", "nbits", "metric",
                             "search_type", "bbs", NULL};
    long long d, ns, ms, bbs = 32;
    int nbits, metric = VDX_METRIC_L2;
    int stype = kind == VDX_AQ_PLSQ ? VDX_AQ_ST_NORM_LSQ2X4 : VDX_AQ_ST_NORM_RQ2X4;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &d, &ns, &ms, &nbits,
                                     &metric, &stype, &bbs))
        return -1;
    if (index_init_once(self)) return -1;
    vdx_aq *aq = NULL;
    vdx_status st = vdx_product_aq_new(kind, d, ns, ms, nbits, stype, &aq);
    return fs_init(self, st, aq, metric, bbs);
}
static int IPRQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return iprodfs_init(self, args, kw, VDX_AQ_PRQ,
                        "LLLi|iiL:IndexProductResidualQuantizerFastScan");
}
static int IPLSQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return iprodfs_init(self, args, kw, VDX_AQ_PLSQ,
                        "LLLi|iiL:IndexProductLocalSearchQuantizerFastScan");
}

static PyObject *IAQFS_get_bbs(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(vdx_index_aq_fastscan_bbs(self->ix));
}

/* FAISS's IndexFastScan.M: 4-bit indices per code (the quantizer's M, + 2
 * for L2's norm); M2 rounded up to even; code_size (M * 4 + 7) / 8 */
static long long fs_M(IndexObject *self) {
    const vdx_aq *aq = vdx_index_aq(self->ix);
    return (long long)vdx_aq_M(aq) +
           (vdx_index_metric(self->ix) == VDX_METRIC_L2 ? 2 : 0);
}
static PyObject *IAQFS_get_M(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong(fs_M(self));
}
static PyObject *IAQFS_get_M2(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLongLong((fs_M(self) + 1) / 2 * 2);
}
static PyObject *IAQFS_get_ksub(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLong(16);
}
static PyObject *IAQFS_get_nbits(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyLong_FromLong(4);
}

static PyGetSetDef IAQFS_getset[] = {
    IAQ_COMMON,
    {"bbs", (getter)IAQFS_get_bbs, NULL, "block size (vectors per packed block)", NULL},
    {"M", (getter)IAQFS_get_M, NULL,
     "4-bit indices per code (the quantizer's M, + 2 for L2's norm)", NULL},
    {"M2", (getter)IAQFS_get_M2, NULL, "M rounded up to even", NULL},
    {"ksub", (getter)IAQFS_get_ksub, NULL, "16", NULL},
    {"nbits", (getter)IAQFS_get_nbits, NULL, "4", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexAdditiveQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexAdditiveQuantizerFastScan",
    "Base of the 4-bit fast-scan additive-quantizer indexes.", &IndexType,
    abstract_init, IAQ_methods, IAQFS_getset);
PyTypeObject IndexResidualQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexResidualQuantizerFastScan",
    "IndexResidualQuantizerFastScan(d, M, nbits=4, metric=METRIC_L2, "
    "search_type=ST_norm_rq2x4, bbs=32)",
    &IndexAdditiveQuantizerFastScanType, IRQFS_init, NULL, IRQ_getset);
PyTypeObject IndexLocalSearchQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexLocalSearchQuantizerFastScan",
    "IndexLocalSearchQuantizerFastScan(d, M, nbits=4, metric=METRIC_L2, "
    "search_type=ST_norm_lsq2x4, bbs=32)",
    &IndexAdditiveQuantizerFastScanType, ILSQFS_init, NULL, ILSQ_getset);
PyTypeObject IndexProductResidualQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexProductResidualQuantizerFastScan",
    "IndexProductResidualQuantizerFastScan(d, nsplits, Msub, nbits=4, "
    "metric=METRIC_L2, search_type=ST_norm_rq2x4, bbs=32)",
    &IndexAdditiveQuantizerFastScanType, IPRQFS_init, NULL, IPRQ_getset);
PyTypeObject IndexProductLocalSearchQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexProductLocalSearchQuantizerFastScan",
    "IndexProductLocalSearchQuantizerFastScan(d, nsplits, Msub, nbits=4, "
    "metric=METRIC_L2, search_type=ST_norm_lsq2x4, bbs=32)",
    &IndexAdditiveQuantizerFastScanType, IPLSQFS_init, NULL, IPLSQ_getset);

/* ---- coarse quantizers -------------------------------------------------- */

static int coarse_init(IndexObject *self, vdx_status st, vdx_aq *aq, int metric) {
    if (st) {
        raise_status(st);
        return -1;
    }
    vdx_index *ix = NULL;
    st = vdx_index_additive_coarse_new(aq, (vdx_metric)metric, &ix);
    if (st) vdx_aq_free(aq);
    return index_take_root(self, st, ix);
}

/* ResidualCoarseQuantizer(d, M, nbits, metric=L2) or (d, nbits_list, metric) */
static int RCQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", NULL};
    long long d;
    PyObject *mo, *a2 = NULL, *a3 = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LO|OO:ResidualCoarseQuantizer", kwlist,
                                     &d, &mo, &a2, &a3))
        return -1;
    if (index_init_once(self)) return -1;
    int metric = VDX_METRIC_L2;
    PyObject *nbo = NULL, *mt = NULL;
    if (PyLong_Check(mo)) nbo = a2, mt = a3;
    else mt = a2;
    if (mt && (metric = (int)PyLong_AsLong(mt)) == -1 && PyErr_Occurred()) return -1;
    int *nb = NULL;
    Py_ssize_t M = 0;
    if (nbits_arg(mo, nbo, &nb, &M) < 0) return -1;
    vdx_aq *aq = NULL;
    vdx_status st = vdx_rq_new(d, M, nb, 0, &aq);
    PyMem_Free(nb);
    return coarse_init(self, st, aq, metric);
}

static int LSCQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "metric", NULL};
    long long d, M;
    int nbits, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LLi|i:LocalSearchCoarseQuantizer",
                                     kwlist, &d, &M, &nbits, &metric))
        return -1;
    if (index_init_once(self)) return -1;
    vdx_aq *aq = NULL;
    vdx_status st = vdx_lsq_new(d, M, nbits, 0, &aq);
    return coarse_init(self, st, aq, metric);
}

static PyObject *RCQ_get_bf(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyFloat_FromDouble(vdx_index_rcq_beam_factor(self->ix));
}

static int set_bf(IndexObject *self, PyObject *v) {
    double f = PyFloat_AsDouble(v);
    if (f == -1 && PyErr_Occurred()) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e, vdx_index_rcq_set_beam_factor(self->ix, (float)f));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static int RCQ_set_bf(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete beam_factor");
        return -1;
    }
    if (ready(self) < 0) return -1;
    return set_bf(self, v);
}

static PyObject *RCQ_set_beam_factor(IndexObject *self, PyObject *v) {
    if (ready(self) < 0 || set_bf(self, v) < 0) return NULL;
    Py_RETURN_NONE;
}

/* centroid_norms: |c|^2 of every list, a new array */
static PyObject *RCQ_get_norms(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    vdx_aq *aq = vdx_index_aq(self->ix);
    if (!vdx_aq_is_trained(aq)) return PyArray_ZEROS(1, (npy_intp[]){0}, NPY_FLOAT32, 0);
    npy_intp n = (npy_intp)vdx_index_ntotal(self->ix);
    PyArrayObject *a = (PyArrayObject *)PyArray_ZEROS(1, &n, NPY_FLOAT32, 0);
    if (!a) return NULL;
    cerr e;
    RUN_LOCKED(self->owner, rd, e, vdx_aq_compute_centroid_norms(aq, PyArray_DATA(a)));
    if (e.st) {
        Py_DECREF(a);
        return raise_cerr(&e);
    }
    return (PyObject *)a;
}

static PyMethodDef RCQ_methods[] = {
    {"set_beam_factor", (PyCFunction)RCQ_set_beam_factor, METH_O,
     "set_beam_factor(f): beam of k * f (< 0: exhaustive search)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef ACQ_getset[] = {
    AQ_GET("aq", "the additive quantizer"),
    {"centroid_norms", (getter)RCQ_get_norms, NULL, "|centroid|^2 of every list", NULL},
    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef RCQ_getset[] = {
    AQ_GET("rq", "the residual quantizer"),
    {"beam_factor", (getter)RCQ_get_bf, (setter)RCQ_set_bf,
     "beam of k * beam_factor per search (< 0: exhaustive); 4 by default", NULL},
    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef LSCQ_getset[] = {AQ_GET("lsq", "the local search quantizer"),
                                    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject AdditiveCoarseQuantizerType = INDEX_TYPE_BODY(
    "AdditiveCoarseQuantizer",
    "Base of the additive coarse quantizers: its 2^tot_bits centroids are the "
    "quantizer's reconstructions.",
    &IndexType, abstract_init, NULL, ACQ_getset);
PyTypeObject ResidualCoarseQuantizerType = INDEX_TYPE_BODY(
    "ResidualCoarseQuantizer",
    "ResidualCoarseQuantizer(d, M, nbits, metric=METRIC_L2) or (d, nbits_list, "
    "metric): an IVF coarse quantizer searched by beam search.",
    &AdditiveCoarseQuantizerType, RCQ_init, RCQ_methods, RCQ_getset);
PyTypeObject LocalSearchCoarseQuantizerType = INDEX_TYPE_BODY(
    "LocalSearchCoarseQuantizer",
    "LocalSearchCoarseQuantizer(d, M, nbits, metric=METRIC_L2): exhaustive "
    "search of an LSQ's reconstructions.",
    &AdditiveCoarseQuantizerType, LSCQ_init, NULL, LSCQ_getset);

/* ---- IVF kinds --------------------------------------------------------- */

typedef struct {
    int kind;
    int64_t d, nlist, M, ns;
    int *nbits, nbit, metric, st;
} ivfaq_args;

static vdx_status build_ivfaq(vdx_index *quantizer, void *ctx, vdx_index **out) {
    const ivfaq_args *a = ctx;
    vdx_aq *aq = NULL;
    vdx_status st;
    switch (a->kind) {
    case VDX_AQ_RQ: st = vdx_rq_new(a->d, a->M, a->nbits, a->st, &aq); break;
    case VDX_AQ_LSQ: st = vdx_lsq_new(a->d, a->M, a->nbit, a->st, &aq); break;
    default:
        st = vdx_product_aq_new(a->kind, a->d, a->ns, a->M, a->nbit, a->st, &aq);
    }
    if (st) return st;
    st = vdx_index_ivf_aq_new(quantizer, a->nlist, aq, (vdx_metric)a->metric, out);
    if (st) vdx_aq_free(aq);
    return st;
}

/* IndexIVFResidualQuantizer(quantizer, d, nlist, M, nbits, metric=L2,
 * search_type=0) or (quantizer, d, nlist, nbits_list, metric, st) */
static int IVFRQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "M", "nbits", "metric",
                             "search_type", NULL};
    PyObject *qo, *mo, *a4 = NULL, *a5 = NULL, *a6 = NULL;
    long long d, nlist;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LLO|OOO:IndexIVFResidualQuantizer",
                                     kwlist, &IndexType, &qo, &d, &nlist, &mo, &a4,
                                     &a5, &a6))
        return -1;
    ivfaq_args a = {VDX_AQ_RQ, d, nlist, 0, 1, NULL, 0, VDX_METRIC_L2, 0};
    PyObject *nbo = NULL, *mt, *stp;
    if (PyLong_Check(mo)) nbo = a4, mt = a5, stp = a6;
    else mt = a4, stp = a5;
    if (mt && (a.metric = (int)PyLong_AsLong(mt)) == -1 && PyErr_Occurred()) return -1;
    if (stp && (a.st = (int)PyLong_AsLong(stp)) == -1 && PyErr_Occurred()) return -1;
    Py_ssize_t M = 0;
    if (nbits_arg(mo, nbo, &a.nbits, &M) < 0) return -1;
    a.M = M;
    int r = adopt_quantizer(self, qo, build_ivfaq, &a);
    PyMem_Free(a.nbits);
    return r;
}

static int IVFLSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "M", "nbits", "metric",
                             "search_type", NULL};
    PyObject *qo;
    ivfaq_args a = {VDX_AQ_LSQ, 0, 0, 0, 1, NULL, 0, VDX_METRIC_L2, 0};
    long long d, nlist, M;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LLLi|ii:IndexIVFLocalSearchQuantizer",
                                     kwlist, &IndexType, &qo, &d, &nlist, &M, &a.nbit,
                                     &a.metric, &a.st))
        return -1;
    a.d = d;
    a.nlist = nlist;
    a.M = M;
    return adopt_quantizer(self, qo, build_ivfaq, &a);
}

static int ivfprod_init(IndexObject *self, PyObject *args, PyObject *kw, int kind,
                        const char *fmt) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "nsplits", "Msub", "nbits",
                             "metric", "search_type", NULL};
    PyObject *qo;
    ivfaq_args a = {kind, 0, 0, 0, 1, NULL, 0, VDX_METRIC_L2, 0};
    long long d, nlist, ns, ms;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &IndexType, &qo, &d,
                                     &nlist, &ns, &ms, &a.nbit, &a.metric, &a.st))
        return -1;
    a.d = d;
    a.nlist = nlist;
    a.ns = ns;
    a.M = ms;
    return adopt_quantizer(self, qo, build_ivfaq, &a);
}
static int IVFPRQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return ivfprod_init(self, args, kw, VDX_AQ_PRQ,
                        "O!LLLLi|ii:IndexIVFProductResidualQuantizer");
}
static int IVFPLSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return ivfprod_init(self, args, kw, VDX_AQ_PLSQ,
                        "O!LLLLi|ii:IndexIVFProductLocalSearchQuantizer");
}

static PyObject *IVFAQ_get_br(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return PyBool_FromLong(vdx_index_ivf_aq_by_residual(self->ix));
}

static int IVFAQ_set_br(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete by_residual");
        return -1;
    }
    if (mutable_(self, "by_residual") < 0) return -1;
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    cerr e;
    RUN_LOCKED(self->owner, wr, e, vdx_index_ivf_aq_set_by_residual(self->ix, on));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyGetSetDef IVFAQ_getset[] = {
    IAQ_COMMON,
    {"by_residual", (getter)IVFAQ_get_br, (setter)IVFAQ_set_br,
     "codes of x - centroid (True, the default) or of x", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexIVFAdditiveQuantizerType = INDEX_TYPE_BODY(
    "IndexIVFAdditiveQuantizer", "Base of the IVF additive-quantizer indexes.",
    &IndexIVFType, abstract_init, NULL, IVFAQ_getset);
PyTypeObject IndexIVFResidualQuantizerType = INDEX_TYPE_BODY(
    "IndexIVFResidualQuantizer",
    "IndexIVFResidualQuantizer(quantizer, d, nlist, M, nbits, metric=METRIC_L2, "
    "search_type=ST_decompress) or (quantizer, d, nlist, nbits_list, metric, "
    "search_type).  Takes ownership of the quantizer.",
    &IndexIVFAdditiveQuantizerType, IVFRQ_init, NULL, IRQ_getset);
PyTypeObject IndexIVFLocalSearchQuantizerType = INDEX_TYPE_BODY(
    "IndexIVFLocalSearchQuantizer",
    "IndexIVFLocalSearchQuantizer(quantizer, d, nlist, M, nbits, "
    "metric=METRIC_L2, search_type=ST_decompress)",
    &IndexIVFAdditiveQuantizerType, IVFLSQ_init, NULL, ILSQ_getset);
PyTypeObject IndexIVFProductResidualQuantizerType = INDEX_TYPE_BODY(
    "IndexIVFProductResidualQuantizer",
    "IndexIVFProductResidualQuantizer(quantizer, d, nlist, nsplits, Msub, nbits, "
    "metric=METRIC_L2, search_type=ST_decompress)",
    &IndexIVFAdditiveQuantizerType, IVFPRQ_init, NULL, IPRQ_getset);
PyTypeObject IndexIVFProductLocalSearchQuantizerType = INDEX_TYPE_BODY(
    "IndexIVFProductLocalSearchQuantizer",
    "IndexIVFProductLocalSearchQuantizer(quantizer, d, nlist, nsplits, Msub, "
    "nbits, metric=METRIC_L2, search_type=ST_decompress)",
    &IndexIVFAdditiveQuantizerType, IVFPLSQ_init, NULL, IPLSQ_getset);

/* ---- IVF fast-scan kinds ------------------------------------------------ */

typedef struct {
    ivfaq_args a;
    long long bbs;
} ivfaqfs_args;

static vdx_status build_ivfaqfs(vdx_index *quantizer, void *ctx, vdx_index **out) {
    const ivfaqfs_args *f = ctx;
    const ivfaq_args *a = &f->a;
    vdx_aq *aq = NULL;
    vdx_status st;
    switch (a->kind) {
    case VDX_AQ_RQ: st = vdx_rq_new(a->d, a->M, a->nbits, a->st, &aq); break;
    case VDX_AQ_LSQ: st = vdx_lsq_new(a->d, a->M, a->nbit, a->st, &aq); break;
    default:
        st = vdx_product_aq_new(a->kind, a->d, a->ns, a->M, a->nbit, a->st, &aq);
    }
    if (st) return st;
    st = vdx_index_ivf_aq_fastscan_new(quantizer, a->nlist, aq, (vdx_metric)a->metric,
                                       f->bbs, out);
    if (st) vdx_aq_free(aq);
    return st;
}

/* IndexIVFAdditiveQuantizerFastScan(index_ivfaq, bbs=32): FAISS's
 * conversion constructor.  FAISS shares the quantizers; vecdex gives the
 * new index copies (an index has one owner here). */
typedef struct {
    IndexObject *src;
    long long bbs;
} ivfaqfs_from_args;

static vdx_status build_ivfaqfs_from(vdx_index *quantizer, void *ctx,
                                     vdx_index **out) {
    const ivfaqfs_from_args *a = ctx;
    rw_rdlock(&a->src->owner->lock);
    vdx_status st = vdx_index_ivf_aq_fastscan_from_ivf_aq(a->src->ix, quantizer,
                                                          a->bbs, out);
    rw_rdunlock(&a->src->owner->lock);
    return st;
}

static int IVFAQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"orig", "bbs", NULL};
    PyObject *src;
    long long bbs = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|L:IndexIVFAdditiveQuantizerFastScan",
                                     kwlist, &IndexIVFAdditiveQuantizerType, &src, &bbs))
        return -1;
    if (!((IndexObject *)src)->ix) {
        PyErr_SetString(PyExc_RuntimeError, "source index is not initialised");
        return -1;
    }
    PyObject *mod = PyImport_ImportModule("vecdex");
    if (!mod) return -1;
    PyObject *q = PyObject_GetAttrString(src, "quantizer");
    PyObject *bytes = q ? PyObject_CallMethod(mod, "serialize_index", "O", q) : NULL;
    PyObject *copy = bytes ? PyObject_CallMethod(mod, "deserialize_index", "O", bytes)
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
    ivfaqfs_from_args a = {(IndexObject *)src, bbs};
    int r = index_adopt(self, copy, build_ivfaqfs_from, &a);
    Py_DECREF(copy);
    return r;
}

/* IndexIVFResidualQuantizerFastScan(quantizer, d, nlist, M, nbits,
 * metric=L2, search_type=ST_norm_lsq2x4, bbs=32) and the LSQ kind (FAISS's
 * default search type is ST_norm_lsq2x4 for both) */
static int ivfaqfs_init(IndexObject *self, PyObject *args, PyObject *kw, int kind,
                        const char *fmt) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "M", "nbits", "metric",
                             "search_type", "bbs", "own_invlists", NULL};
    PyObject *qo;
    long long d, nlist, M;
    int own = 1;
    ivfaqfs_args f = {{kind, 0, 0, 0, 1, NULL, 4, VDX_METRIC_L2,
                       VDX_AQ_ST_NORM_LSQ2X4},
                      32};
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &IndexType, &qo, &d,
                                     &nlist, &M, &f.a.nbit, &f.a.metric, &f.a.st,
                                     &f.bbs, &own))
        return -1;
    if (M < 0 || M > 4096) {
        PyErr_Format(PyExc_ValueError, "M must be in 1..4096, got %lld", M);
        return -1;
    }
    f.a.d = d;
    f.a.nlist = nlist;
    f.a.M = M;
    int *nb = NULL;
    if (kind == VDX_AQ_RQ) {
        nb = PyMem_Malloc(sizeof(int) * (size_t)(M ? M : 1));
        if (!nb) {
            PyErr_NoMemory();
            return -1;
        }
        for (long long i = 0; i < M; i++) nb[i] = f.a.nbit;
        f.a.nbits = nb;
    }
    int r = adopt_quantizer(self, qo, build_ivfaqfs, &f);
    PyMem_Free(nb);
    return r;
}
static int IVFRQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return ivfaqfs_init(self, args, kw, VDX_AQ_RQ,
                        "O!LLLi|iiLp:IndexIVFResidualQuantizerFastScan");
}
static int IVFLSQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return ivfaqfs_init(self, args, kw, VDX_AQ_LSQ,
                        "O!LLLi|iiLp:IndexIVFLocalSearchQuantizerFastScan");
}

static int ivfprodfs_init(IndexObject *self, PyObject *args, PyObject *kw, int kind,
                          const char *fmt) {
    static char *kwlist[] = {"quantizer", "d", "nlist", "nsplits", "Msub", "nbits",
                             "metric", "search_type", "bbs", "own_invlists", NULL};
    PyObject *qo;
    long long d, nlist, ns, ms;
    int own = 1;
    ivfaqfs_args f = {{kind, 0, 0, 0, 1, NULL, 4, VDX_METRIC_L2,
                       VDX_AQ_ST_NORM_LSQ2X4},
                      32};
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &IndexType, &qo, &d,
                                     &nlist, &ns, &ms, &f.a.nbit, &f.a.metric,
                                     &f.a.st, &f.bbs, &own))
        return -1;
    f.a.d = d;
    f.a.nlist = nlist;
    f.a.ns = ns;
    f.a.M = ms;
    return adopt_quantizer(self, qo, build_ivfaqfs, &f);
}
static int IVFPRQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return ivfprodfs_init(self, args, kw, VDX_AQ_PRQ,
                          "O!LLLLi|iiLp:IndexIVFProductResidualQuantizerFastScan");
}
static int IVFPLSQFS_init(IndexObject *self, PyObject *args, PyObject *kw) {
    return ivfprodfs_init(self, args, kw, VDX_AQ_PLSQ,
                          "O!LLLLi|iiLp:IndexIVFProductLocalSearchQuantizerFastScan");
}

/* FAISS's stored fields (vdx_index_aq_fastscan_param): closure = the name */
static PyObject *AQFS_get_param(IndexObject *self, void *name) {
    if (ready(self) < 0) return NULL;
    int64_t v = 0;
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_aq_fastscan_param(self->ix, (const char *)name, &v));
    if (e.st) return raise_cerr(&e);
    if (!strcmp((const char *)name, "rescale_norm")) return PyBool_FromLong(v != 0);
    return PyLong_FromLongLong(v);
}

static int AQFS_set_param(IndexObject *self, PyObject *v, void *name) {
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    if (ready(self) < 0) return -1;
    long long x;
    if (PyBool_Check(v)) {
        x = v == Py_True;
    } else {
        x = PyLong_AsLongLong(v);
        if (x == -1 && PyErr_Occurred()) return -1;
    }
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_aq_fastscan_set_param(self->ix, (const char *)name, x));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

#define AQFS_PARAM(n, doc) {n, (getter)AQFS_get_param, (setter)AQFS_set_param, doc, n}

static PyGetSetDef IVFAQFS_getset[] = {
    IAQ_COMMON,
    {"by_residual", (getter)IVFAQ_get_br, (setter)IVFAQ_set_br,
     "codes of x - centroid (True by the constructors; the factory: 'fsr' "
     "only); settable before training",
     NULL},
    {"bbs", (getter)IAQFS_get_bbs, NULL, "block size (vectors per packed block)", NULL},
    {"M", (getter)IAQFS_get_M, NULL,
     "4-bit indices per code (the quantizer's M, + 2 for L2's norm)", NULL},
    {"M2", (getter)IAQFS_get_M2, NULL, "M rounded up to even", NULL},
    {"ksub", (getter)IAQFS_get_ksub, NULL, "16", NULL},
    {"nbits", (getter)IAQFS_get_nbits, NULL, "4", NULL},
    AQFS_PARAM("implem", "FAISS's kernel choice (kept; vecdex has one scan)"),
    AQFS_PARAM("qbs", "FAISS's query batch size (kept)"),
    AQFS_PARAM("qbs2", "FAISS's query batch size (kept)"),
    AQFS_PARAM("norm_scale", "FAISS's norm-table scale (estimated by train; kept)"),
    AQFS_PARAM("rescale_norm", "FAISS's norm rescaling flag (kept)"),
    AQFS_PARAM("max_train_points", "training vectors for the quantizer"),
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexIVFAdditiveQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexIVFAdditiveQuantizerFastScan",
    "IndexIVFAdditiveQuantizerFastScan(index_ivfaq, bbs=32): the fast-scan "
    "form of an IVF additive-quantizer index (4-bit codebooks; L2 needs "
    "by_residual=False), and the base of the four IVF fast-scan kinds.",
    &IndexIVFType, IVFAQFS_init, NULL, IVFAQFS_getset);
PyTypeObject IndexIVFResidualQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexIVFResidualQuantizerFastScan",
    "IndexIVFResidualQuantizerFastScan(quantizer, d, nlist, M, nbits=4, "
    "metric=METRIC_L2, search_type=ST_norm_lsq2x4, bbs=32).  Takes ownership "
    "of the quantizer.",
    &IndexIVFAdditiveQuantizerFastScanType, IVFRQFS_init, NULL, IRQ_getset);
PyTypeObject IndexIVFLocalSearchQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexIVFLocalSearchQuantizerFastScan",
    "IndexIVFLocalSearchQuantizerFastScan(quantizer, d, nlist, M, nbits=4, "
    "metric=METRIC_L2, search_type=ST_norm_lsq2x4, bbs=32)",
    &IndexIVFAdditiveQuantizerFastScanType, IVFLSQFS_init, NULL, ILSQ_getset);
PyTypeObject IndexIVFProductResidualQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexIVFProductResidualQuantizerFastScan",
    "IndexIVFProductResidualQuantizerFastScan(quantizer, d, nlist, nsplits, "
    "Msub, nbits=4, metric=METRIC_L2, search_type=ST_norm_lsq2x4, bbs=32)",
    &IndexIVFAdditiveQuantizerFastScanType, IVFPRQFS_init, NULL, IPRQ_getset);
PyTypeObject IndexIVFProductLocalSearchQuantizerFastScanType = INDEX_TYPE_BODY(
    "IndexIVFProductLocalSearchQuantizerFastScan",
    "IndexIVFProductLocalSearchQuantizerFastScan(quantizer, d, nlist, nsplits, "
    "Msub, nbits=4, metric=METRIC_L2, search_type=ST_norm_lsq2x4, bbs=32)",
    &IndexIVFAdditiveQuantizerFastScanType, IVFPLSQFS_init, NULL, IPLSQ_getset);

PyTypeObject *aq_index_class(const char *tn) {
    static const struct { const char *n; PyTypeObject *t; } map[] = {
        {"IndexResidualQuantizer", &IndexResidualQuantizerType},
        {"IndexLocalSearchQuantizer", &IndexLocalSearchQuantizerType},
        {"IndexProductResidualQuantizer", &IndexProductResidualQuantizerType},
        {"IndexProductLocalSearchQuantizer", &IndexProductLocalSearchQuantizerType},
        {"ResidualCoarseQuantizer", &ResidualCoarseQuantizerType},
        {"LocalSearchCoarseQuantizer", &LocalSearchCoarseQuantizerType},
        {"IndexIVFResidualQuantizer", &IndexIVFResidualQuantizerType},
        {"IndexIVFLocalSearchQuantizer", &IndexIVFLocalSearchQuantizerType},
        {"IndexIVFProductResidualQuantizer", &IndexIVFProductResidualQuantizerType},
        {"IndexIVFProductLocalSearchQuantizer",
         &IndexIVFProductLocalSearchQuantizerType},
        {"IndexResidualQuantizerFastScan", &IndexResidualQuantizerFastScanType},
        {"IndexLocalSearchQuantizerFastScan", &IndexLocalSearchQuantizerFastScanType},
        {"IndexProductResidualQuantizerFastScan",
         &IndexProductResidualQuantizerFastScanType},
        {"IndexProductLocalSearchQuantizerFastScan",
         &IndexProductLocalSearchQuantizerFastScanType},
        {"IndexIVFResidualQuantizerFastScan", &IndexIVFResidualQuantizerFastScanType},
        {"IndexIVFLocalSearchQuantizerFastScan",
         &IndexIVFLocalSearchQuantizerFastScanType},
        {"IndexIVFProductResidualQuantizerFastScan",
         &IndexIVFProductResidualQuantizerFastScanType},
        {"IndexIVFProductLocalSearchQuantizerFastScan",
         &IndexIVFProductLocalSearchQuantizerFastScanType},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(tn, map[i].n)) return map[i].t;
    return NULL;
}

int pyvdx_init_aq_index(PyObject *m) {
    PyTypeObject *types[] = {
        &IndexAdditiveQuantizerType, &IndexResidualQuantizerType,
        &IndexLocalSearchQuantizerType, &IndexProductResidualQuantizerType,
        &IndexProductLocalSearchQuantizerType, &AdditiveCoarseQuantizerType,
        &ResidualCoarseQuantizerType, &LocalSearchCoarseQuantizerType,
        &IndexIVFAdditiveQuantizerType, &IndexIVFResidualQuantizerType,
        &IndexIVFLocalSearchQuantizerType, &IndexIVFProductResidualQuantizerType,
        &IndexIVFProductLocalSearchQuantizerType,
        &IndexAdditiveQuantizerFastScanType, &IndexResidualQuantizerFastScanType,
        &IndexLocalSearchQuantizerFastScanType,
        &IndexProductResidualQuantizerFastScanType,
        &IndexProductLocalSearchQuantizerFastScanType,
        &IndexIVFAdditiveQuantizerFastScanType, &IndexIVFResidualQuantizerFastScanType,
        &IndexIVFLocalSearchQuantizerFastScanType,
        &IndexIVFProductResidualQuantizerFastScanType,
        &IndexIVFProductLocalSearchQuantizerFastScanType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    return 0;
}
