/*
 * py_aq.c — the additive quantizers: AdditiveQuantizer (base, with FAISS's
 * ST_* search types), ResidualQuantizer (with the Train_* flags),
 * LocalSearchQuantizer, ProductAdditiveQuantizer, ProductResidualQuantizer,
 * ProductLocalSearchQuantizer, and FAISS's beam_search_encode_step(_tab).
 *
 * A quantizer object owns its C quantizer (made by its constructor), or
 * borrows one: an index's (`index.rq`, keeping the index wrapper alive and
 * taking its owner lock for every call) or a product's sub-quantizer
 * (`prq.subquantizer(0)`, keeping the product alive).  FAISS's pointer-style
 * calls (lsq.compute_binary_terms(swig_ptr(out)), ...) take numpy arrays
 * here and write into them; swig_ptr is the identity.
 */
#include "py_vecdex.h"

#include <string.h>

typedef struct AQObject {
    PyObject_HEAD
    vdx_aq *aq;
    IndexObject *index; /* the index owning aq (strong), or NULL */
    PyObject *parent;   /* the product owning aq (strong), or NULL */
} AQObject;

PyTypeObject AdditiveQuantizerType, ResidualQuantizerType,
    LocalSearchQuantizerType, ProductAdditiveQuantizerType,
    ProductResidualQuantizerType, ProductLocalSearchQuantizerType;

/* the index whose lock guards aq, if any */
static IndexObject *aq_index(AQObject *self) {
    for (AQObject *o = self; o; o = (AQObject *)o->parent)
        if (o->index) return o->index;
    return NULL;
}

#define AQ_RUN(self, mode, e, call)                         \
    do {                                                    \
        IndexObject *ix_ = aq_index(self);                  \
        if (ix_)                                            \
            RUN_LOCKED(ix_->owner, mode, e, call);          \
        else {                                              \
            Py_BEGIN_ALLOW_THREADS                          \
            cerr_capture(&(e), (call));                     \
            Py_END_ALLOW_THREADS                            \
        }                                                   \
    } while (0)

static int aq_ready(AQObject *self) {
    if (self->aq) return 0;
    PyErr_SetString(PyExc_RuntimeError, "additive quantizer not initialised");
    return -1;
}

static void AQ_dealloc(AQObject *self) {
    if (!self->index && !self->parent) vdx_aq_free(self->aq);
    Py_XDECREF(self->index);
    Py_XDECREF(self->parent);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject *type_of_kind(int kind) {
    switch (kind) {
    case VDX_AQ_RQ: return &ResidualQuantizerType;
    case VDX_AQ_LSQ: return &LocalSearchQuantizerType;
    case VDX_AQ_PRQ: return &ProductResidualQuantizerType;
    default: return &ProductLocalSearchQuantizerType;
    }
}

PyObject *aq_view(vdx_aq *aq, IndexObject *index, PyObject *parent) {
    if (!aq) {
        PyErr_SetString(PyExc_AttributeError, "this index has no additive quantizer");
        return NULL;
    }
    PyTypeObject *t = type_of_kind(vdx_aq_kind(aq));
    AQObject *o = (AQObject *)t->tp_alloc(t, 0);
    if (!o) return NULL;
    o->aq = aq;
    Py_XINCREF(index);
    o->index = index;
    Py_XINCREF(parent);
    o->parent = parent;
    return (PyObject *)o;
}

/* ---- arrays for the pointer-style calls ------------------------------------ */

/* A C-contiguous array of exactly typenum holding >= need elements; for
 * outputs (writable) no conversion is made, so writes reach the caller. */
static PyArrayObject *arg_array(PyObject *o, int typenum, npy_intp need,
                                int writable, const char *what) {
    if (writable) {
        if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != typenum ||
            !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)o) ||
            !PyArray_ISWRITEABLE((PyArrayObject *)o)) {
            PyErr_Format(PyExc_TypeError,
                         "%s must be a writable C-contiguous numpy array of %s",
                         what, typenum == NPY_FLOAT32 ? "float32"
                               : typenum == NPY_INT32 ? "int32"
                               : typenum == NPY_INT64 ? "int64" : "uint8");
            return NULL;
        }
        Py_INCREF(o);
    } else {
        o = (PyObject *)as_array(o, typenum);
        if (!o) return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)o;
    if (PyArray_SIZE(a) < need) {
        PyErr_Format(ShapeError, "%s holds %lld elements, %lld needed", what,
                     (long long)PyArray_SIZE(a), (long long)need);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* ---- constructors ------------------------------------------------------- */

/* nbits given as an int or a sequence of ints */
static int parse_nbits(PyObject *o, int **out, Py_ssize_t *n) {
    PyObject *seq = PySequence_Fast(o, "nbits must be a sequence of ints");
    if (!seq) return -1;
    *n = PySequence_Fast_GET_SIZE(seq);
    *out = PyMem_Malloc(sizeof(int) * (size_t)(*n ? *n : 1));
    if (!*out) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(*out);
            Py_DECREF(seq);
            return -1;
        }
        (*out)[i] = (int)v;
    }
    Py_DECREF(seq);
    return 0;
}

static int set_new(AQObject *self, vdx_status st, vdx_aq *aq) {
    if (st) {
        raise_status(st);
        return -1;
    }
    self->aq = aq;
    return 0;
}

static int already(AQObject *self) {
    if (!self->aq) return 0;
    PyErr_SetString(PyExc_RuntimeError, "already initialised");
    return 1;
}

/* ResidualQuantizer(d, M, nbits=8, search_type=0) or (d, nbits_list, st) */
static int RQ_init(AQObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "search_type", NULL};
    long long d;
    PyObject *mo;
    PyObject *nbo = NULL;
    int st = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LO|Oi:ResidualQuantizer", kwlist,
                                     &d, &mo, &nbo, &st))
        return -1;
    if (already(self)) return -1;
    int *nb = NULL;
    Py_ssize_t M = 0;
    if (PyLong_Check(mo)) {
        M = PyLong_AsSsize_t(mo);
        if (M < 0 && PyErr_Occurred()) return -1;
        long b = nbo ? PyLong_AsLong(nbo) : 8;
        if (b == -1 && PyErr_Occurred()) return -1;
        nb = PyMem_Malloc(sizeof(int) * (size_t)(M > 0 ? M : 1));
        if (!nb) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < M; i++) nb[i] = (int)b;
    } else {
        if (parse_nbits(mo, &nb, &M) < 0) return -1;
        if (nbo) { /* (d, nbits, search_type) */
            st = (int)PyLong_AsLong(nbo);
            if (st == -1 && PyErr_Occurred()) {
                PyMem_Free(nb);
                return -1;
            }
        }
    }
    vdx_aq *aq = NULL;
    vdx_status s = vdx_rq_new(d, M, nb, st, &aq);
    PyMem_Free(nb);
    return set_new(self, s, aq);
}

static int LSQ_init(AQObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "nbits", "search_type", NULL};
    long long d, M;
    int nbits, st = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LLi|i:LocalSearchQuantizer",
                                     kwlist, &d, &M, &nbits, &st))
        return -1;
    if (already(self)) return -1;
    vdx_aq *aq = NULL;
    vdx_status s = vdx_lsq_new(d, M, nbits, st, &aq);
    return set_new(self, s, aq);
}

static int product_init(AQObject *self, PyObject *args, PyObject *kw,
                        int kind, const char *fmt) {
    static char *kwlist[] = {"d", "nsplits", "Msub", "nbits", "search_type", NULL};
    long long d, ns, ms;
    int nbits, st = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &d, &ns, &ms,
                                     &nbits, &st))
        return -1;
    if (already(self)) return -1;
    vdx_aq *aq = NULL;
    vdx_status s = vdx_product_aq_new(kind, d, ns, ms, nbits, st, &aq);
    return set_new(self, s, aq);
}
static int PRQ_init(AQObject *self, PyObject *args, PyObject *kw) {
    return product_init(self, args, kw, VDX_AQ_PRQ,
                        "LLLi|i:ProductResidualQuantizer");
}
static int PLSQ_init(AQObject *self, PyObject *args, PyObject *kw) {
    return product_init(self, args, kw, VDX_AQ_PLSQ,
                        "LLLi|i:ProductLocalSearchQuantizer");
}
static int abstract_init(AQObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    (void)args;
    (void)kw;
    PyErr_SetString(PyExc_TypeError,
                    "AdditiveQuantizer is abstract: make a ResidualQuantizer, "
                    "LocalSearchQuantizer or a product kind");
    return -1;
}

/* ---- train / encode / decode ---------------------------------------------- */

static PyObject *AQ_train(AQObject *self, PyObject *xo) {
    if (aq_ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_aq_d(self->aq), "x");
    if (!x) return NULL;
    cerr e;
    AQ_RUN(self, wr, e, vdx_aq_train(self->aq, PyArray_DIM(x, 0), PyArray_DATA(x)));
    Py_DECREF(x);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *AQ_compute_codes(AQObject *self, PyObject *xo) {
    if (aq_ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_aq_d(self->aq), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)vdx_aq_code_size(self->aq)};
    PyArrayObject *c = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_UINT8, 0);
    if (!c) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e, vdx_aq_compute_codes(self->aq, dims[0], PyArray_DATA(x),
                                            PyArray_DATA(c)));
    Py_DECREF(x);
    if (e.st) {
        Py_DECREF(c);
        return raise_cerr(&e);
    }
    return (PyObject *)c;
}

static PyObject *AQ_decode(AQObject *self, PyObject *co) {
    if (aq_ready(self) < 0) return NULL;
    PyArrayObject *c = as_array(co, NPY_UINT8);
    if (!c) return NULL;
    npy_intp cs = (npy_intp)vdx_aq_code_size(self->aq);
    if (PyArray_NDIM(c) != 2 || PyArray_DIM(c, 1) != cs) {
        char shp[64];
        format_shape(shp, sizeof shp, PyArray_NDIM(c), PyArray_DIMS(c));
        PyErr_Format(ShapeError, "codes: expected shape (n, %lld), got %s",
                     (long long)cs, shp);
        Py_DECREF(c);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(c, 0), (npy_intp)vdx_aq_d(self->aq)};
    PyArrayObject *x = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!x) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e, vdx_aq_decode(self->aq, dims[0], PyArray_DATA(c),
                                     PyArray_DATA(x)));
    Py_DECREF(c);
    if (e.st) {
        Py_DECREF(x);
        return raise_cerr(&e);
    }
    return (PyObject *)x;
}

/* decode_c(codes, x, n): FAISS's pointer form of decode */
static PyObject *AQ_decode_c(AQObject *self, PyObject *args) {
    PyObject *co, *xo;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOn:decode_c", &co, &xo, &n)) return NULL;
    if (aq_ready(self) < 0) return NULL;
    PyArrayObject *c = arg_array(co, NPY_UINT8, n * (npy_intp)vdx_aq_code_size(self->aq), 0, "codes");
    if (!c) return NULL;
    PyArrayObject *x = arg_array(xo, NPY_FLOAT32, n * (npy_intp)vdx_aq_d(self->aq), 1, "x");
    if (!x) {
        Py_DECREF(c);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e, vdx_aq_decode(self->aq, n, PyArray_DATA(c), PyArray_DATA(x)));
    Py_DECREF(c);
    Py_DECREF(x);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* compute_LUT(x, alpha=1) -> (n, total_codebook_size), or FAISS's
 * compute_LUT(n, x, lut, alpha=1) filling lut */
static PyObject *AQ_compute_LUT(AQObject *self, PyObject *args) {
    if (aq_ready(self) < 0) return NULL;
    const int64_t T = vdx_aq_total_codebook_size(self->aq), d = vdx_aq_d(self->aq);
    PyObject *a0, *xo = NULL, *lo = NULL;
    float alpha = 1.0f;
    if (!PyArg_ParseTuple(args, "O|OOf:compute_LUT", &a0, &xo, &lo, &alpha)) return NULL;
    cerr e;
    if (!xo || PyFloat_Check(xo)) { /* compute_LUT(x[, alpha]) */
        if (xo) alpha = (float)PyFloat_AsDouble(xo);
        PyArrayObject *x = as_matrix(a0, d, "x");
        if (!x) return NULL;
        npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)T};
        PyArrayObject *l = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
        if (!l) {
            Py_DECREF(x);
            return NULL;
        }
        AQ_RUN(self, rd, e, vdx_aq_compute_LUT(self->aq, dims[0], PyArray_DATA(x),
                                              alpha, PyArray_DATA(l)));
        Py_DECREF(x);
        if (e.st) {
            Py_DECREF(l);
            return raise_cerr(&e);
        }
        return (PyObject *)l;
    }
    Py_ssize_t n = PyLong_AsSsize_t(a0);
    if (n < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    if (!lo) {
        PyErr_SetString(PyExc_TypeError, "compute_LUT(n, x, lut, alpha=1)");
        return NULL;
    }
    PyArrayObject *x = arg_array(xo, NPY_FLOAT32, n * d, 0, "x");
    if (!x) return NULL;
    PyArrayObject *l = arg_array(lo, NPY_FLOAT32, n * T, 1, "LUT");
    if (!l) {
        Py_DECREF(x);
        return NULL;
    }
    AQ_RUN(self, rd, e, vdx_aq_compute_LUT(self->aq, n, PyArray_DATA(x), alpha,
                                          PyArray_DATA(l)));
    Py_DECREF(x);
    Py_DECREF(l);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* pack_codes(n, codes, packed, ld_codes=-1, norms=None) */
static PyObject *AQ_pack_codes(AQObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"n", "codes", "packed_codes", "ld_codes", "norms", NULL};
    Py_ssize_t n, ld = -1;
    PyObject *co, *po, *no = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nOO|nO:pack_codes", kwlist, &n,
                                     &co, &po, &ld, &no))
        return NULL;
    if (aq_ready(self) < 0) return NULL;
    int64_t M = vdx_aq_M(self->aq);
    if (ld <= 0) ld = M;
    if (n < 0 || ld < M) {
        PyErr_Format(PyExc_ValueError, "pack_codes: bad n=%zd or ld_codes=%zd", n, ld);
        return NULL;
    }
    PyArrayObject *c = arg_array(co, NPY_INT32, n ? (n - 1) * ld + M : 0, 0, "codes");
    if (!c) return NULL;
    PyArrayObject *p = arg_array(po, NPY_UINT8, n * (npy_intp)vdx_aq_code_size(self->aq), 1,
                                 "packed_codes");
    PyArrayObject *nr = NULL;
    if (p && no != Py_None) nr = arg_array(no, NPY_FLOAT32, n, 0, "norms");
    if (!p || (no != Py_None && !nr)) {
        Py_DECREF(c);
        Py_XDECREF(p);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e, vdx_aq_pack_codes(self->aq, n, PyArray_DATA(c), ld,
                                         nr ? PyArray_DATA(nr) : NULL, PyArray_DATA(p)));
    Py_DECREF(c);
    Py_DECREF(p);
    Py_XDECREF(nr);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *AQ_set_derived_values(AQObject *self, PyObject *noargs) {
    (void)noargs;
    if (aq_ready(self) < 0) return NULL;
    Py_RETURN_NONE; /* vecdex keeps the derived sizes up to date */
}

static PyObject *AQ_compute_codebook_tables(AQObject *self, PyObject *noargs) {
    (void)noargs;
    if (aq_ready(self) < 0) return NULL;
    cerr e;
    AQ_RUN(self, wr, e, vdx_aq_compute_codebook_tables(self->aq));
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* compute_centroid_norms(norms=None): fills norms (2^tot_bits), or returns
 * a new array */
static PyObject *AQ_compute_centroid_norms(AQObject *self, PyObject *args) {
    PyObject *no = NULL;
    if (!PyArg_ParseTuple(args, "|O:compute_centroid_norms", &no)) return NULL;
    if (aq_ready(self) < 0) return NULL;
    int64_t b = vdx_aq_tot_bits(self->aq) - vdx_aq_norm_bits(self->aq);
    if (b > 30) {
        PyErr_Format(PyExc_ValueError, "2^%lld centroids is too many", (long long)b);
        return NULL;
    }
    npy_intp nc = (npy_intp)1 << b;
    PyArrayObject *a = no ? arg_array(no, NPY_FLOAT32, nc, 1, "norms")
                          : (PyArrayObject *)PyArray_ZEROS(1, &nc, NPY_FLOAT32, 0);
    if (!a) return NULL;
    cerr e;
    AQ_RUN(self, rd, e, vdx_aq_compute_centroid_norms(self->aq, PyArray_DATA(a)));
    if (e.st) {
        Py_DECREF(a);
        return raise_cerr(&e);
    }
    if (no) {
        Py_DECREF(a);
        Py_RETURN_NONE;
    }
    return (PyObject *)a;
}

/* knn_centroids_inner_product(n, xq, k, D, I) / knn_centroids_L2(n, xq, k,
 * D, I, norms) */
static PyObject *knn_centroids(AQObject *self, PyObject *args, int l2) {
    Py_ssize_t n, k;
    PyObject *xo, *Do, *Io, *no = NULL;
    if (!PyArg_ParseTuple(args, l2 ? "nOnOOO:knn_centroids_L2"
                                   : "nOnOO:knn_centroids_inner_product",
                          &n, &xo, &k, &Do, &Io, &no))
        return NULL;
    if (aq_ready(self) < 0) return NULL;
    if (n < 0 || k < 1) {
        PyErr_SetString(PyExc_ValueError, "bad n or k");
        return NULL;
    }
    int64_t b = vdx_aq_tot_bits(self->aq) - vdx_aq_norm_bits(self->aq);
    PyArrayObject *x = arg_array(xo, NPY_FLOAT32, n * (npy_intp)vdx_aq_d(self->aq), 0, "xq");
    PyArrayObject *Dv = x ? arg_array(Do, NPY_FLOAT32, n * k, 1, "distances") : NULL;
    PyArrayObject *Iv = Dv ? arg_array(Io, NPY_INT64, n * k, 1, "labels") : NULL;
    PyArrayObject *nr = Iv && l2 && b <= 30
                            ? arg_array(no, NPY_FLOAT32, (npy_intp)1 << b, 0, "norms")
                            : NULL;
    if (!Iv || (l2 && !nr)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "too many centroids");
        Py_XDECREF(x);
        Py_XDECREF(Dv);
        Py_XDECREF(Iv);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e,
           vdx_aq_knn_centroids(self->aq, l2 ? VDX_METRIC_L2 : VDX_METRIC_INNER_PRODUCT,
                                n, PyArray_DATA(x), k, nr ? PyArray_DATA(nr) : NULL,
                                PyArray_DATA(Dv), PyArray_DATA(Iv)));
    Py_DECREF(x);
    Py_DECREF(Dv);
    Py_DECREF(Iv);
    Py_XDECREF(nr);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}
static PyObject *AQ_knn_ip(AQObject *self, PyObject *args) {
    return knn_centroids(self, args, 0);
}
static PyObject *AQ_knn_l2(AQObject *self, PyObject *args) {
    return knn_centroids(self, args, 1);
}

/* ---- RQ methods ----------------------------------------------------------- */

static int need_rq(AQObject *self, int kind) {
    if (aq_ready(self) < 0) return -1;
    if (vdx_aq_kind(self->aq) != kind) {
        PyErr_SetString(PyExc_TypeError, "not available for this quantizer kind");
        return -1;
    }
    return 0;
}

static PyObject *RQ_initialize_from(AQObject *self, PyObject *args) {
    PyObject *oo;
    Py_ssize_t skip = 0;
    if (!PyArg_ParseTuple(args, "O!|n:initialize_from", &ResidualQuantizerType, &oo,
                          &skip))
        return NULL;
    if (need_rq(self, VDX_AQ_RQ) < 0 || aq_ready((AQObject *)oo) < 0) return NULL;
    cerr e;
    AQ_RUN(self, wr, e, vdx_rq_initialize_from(self->aq, ((AQObject *)oo)->aq, skip));
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* retrain_AQ_codebook(n, x) -> the error of the old codes */
static PyObject *RQ_retrain(AQObject *self, PyObject *args) {
    Py_ssize_t n;
    PyObject *xo;
    if (!PyArg_ParseTuple(args, "nO:retrain_AQ_codebook", &n, &xo)) return NULL;
    if (need_rq(self, VDX_AQ_RQ) < 0) return NULL;
    PyArrayObject *x = arg_array(xo, NPY_FLOAT32, n * (npy_intp)vdx_aq_d(self->aq), 0, "x");
    if (!x) return NULL;
    float err = 0;
    cerr e;
    AQ_RUN(self, wr, e, vdx_rq_retrain_codebook(self->aq, n, PyArray_DATA(x), &err));
    Py_DECREF(x);
    if (e.st) return raise_cerr(&e);
    return PyFloat_FromDouble(err);
}

/* ---- LSQ methods ---------------------------------------------------------- */

static PyObject *LSQ_binary(AQObject *self, PyObject *bo) {
    if (need_rq(self, VDX_AQ_LSQ) < 0) return NULL;
    npy_intp M = (npy_intp)vdx_aq_M(self->aq), K = (npy_intp)1 << vdx_aq_nbits(self->aq, 0);
    PyArrayObject *b = arg_array(bo, NPY_FLOAT32, M * M * K * K, 1, "binaries");
    if (!b) return NULL;
    cerr e;
    AQ_RUN(self, rd, e, vdx_lsq_compute_binary_terms(self->aq, PyArray_DATA(b)));
    Py_DECREF(b);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *LSQ_unary(AQObject *self, PyObject *args) {
    PyObject *xo, *uo;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOn:compute_unary_terms", &xo, &uo, &n)) return NULL;
    if (need_rq(self, VDX_AQ_LSQ) < 0) return NULL;
    npy_intp M = (npy_intp)vdx_aq_M(self->aq), K = (npy_intp)1 << vdx_aq_nbits(self->aq, 0);
    PyArrayObject *x = arg_array(xo, NPY_FLOAT32, n * (npy_intp)vdx_aq_d(self->aq), 0, "x");
    PyArrayObject *u = x ? arg_array(uo, NPY_FLOAT32, M * n * K, 1, "unaries") : NULL;
    if (!u) {
        Py_XDECREF(x);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e, vdx_lsq_compute_unary_terms(self->aq, n, PyArray_DATA(x),
                                                   PyArray_DATA(u)));
    Py_DECREF(x);
    Py_DECREF(u);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *LSQ_icm_step(AQObject *self, PyObject *args) {
    PyObject *co, *uo, *bo;
    Py_ssize_t n, iters;
    if (!PyArg_ParseTuple(args, "OOOnn:icm_encode_step", &co, &uo, &bo, &n, &iters))
        return NULL;
    if (need_rq(self, VDX_AQ_LSQ) < 0) return NULL;
    npy_intp M = (npy_intp)vdx_aq_M(self->aq), K = (npy_intp)1 << vdx_aq_nbits(self->aq, 0);
    PyArrayObject *c = arg_array(co, NPY_INT32, n * M, 1, "codes");
    PyArrayObject *u = c ? arg_array(uo, NPY_FLOAT32, M * n * K, 0, "unaries") : NULL;
    PyArrayObject *b = u ? arg_array(bo, NPY_FLOAT32, M * M * K * K, 0, "binaries") : NULL;
    if (!b) {
        Py_XDECREF(c);
        Py_XDECREF(u);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, rd, e, vdx_lsq_icm_encode_step(self->aq, PyArray_DATA(c), PyArray_DATA(u),
                                               PyArray_DATA(b), n, iters));
    Py_DECREF(c);
    Py_DECREF(u);
    Py_DECREF(b);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *LSQ_update(AQObject *self, PyObject *args) {
    PyObject *xo, *co;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOn:update_codebooks", &xo, &co, &n)) return NULL;
    if (need_rq(self, VDX_AQ_LSQ) < 0) return NULL;
    npy_intp M = (npy_intp)vdx_aq_M(self->aq);
    PyArrayObject *x = arg_array(xo, NPY_FLOAT32, n * (npy_intp)vdx_aq_d(self->aq), 0, "x");
    PyArrayObject *c = x ? arg_array(co, NPY_INT32, n * M, 0, "codes") : NULL;
    if (!c) {
        Py_XDECREF(x);
        return NULL;
    }
    cerr e;
    AQ_RUN(self, wr, e, vdx_lsq_update_codebooks(self->aq, PyArray_DATA(x),
                                                PyArray_DATA(c), n));
    Py_DECREF(x);
    Py_DECREF(c);
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *PAQ_subquantizer(AQObject *self, PyObject *so) {
    if (aq_ready(self) < 0) return NULL;
    Py_ssize_t s = PyLong_AsSsize_t(so);
    if (s == -1 && PyErr_Occurred()) return NULL;
    vdx_aq *sub = vdx_aq_subquantizer(self->aq, s);
    if (!sub) {
        PyErr_Format(PyExc_IndexError, "subquantizer %zd out of range 0..%lld", s,
                     (long long)vdx_aq_nsplits(self->aq) - 1);
        return NULL;
    }
    return aq_view(sub, NULL, (PyObject *)self);
}

/* ---- attributes -------------------------------------------------------------- */

enum {
    A_D, A_M, A_CODE_SIZE, A_TOT_BITS, A_NORM_BITS, A_TOTAL_CB, A_NSPLITS, A_K,
    A_ONLY8
};

static PyObject *AQ_get_ro(AQObject *self, void *which) {
    if (aq_ready(self) < 0) return NULL;
    const vdx_aq *aq = self->aq;
    long long v = 0;
    switch ((int)(intptr_t)which) {
    case A_D: v = vdx_aq_d(aq); break;
    case A_M: v = vdx_aq_M(aq); break;
    case A_CODE_SIZE: v = (long long)vdx_aq_code_size(aq); break;
    case A_TOT_BITS: v = vdx_aq_tot_bits(aq); break;
    case A_NORM_BITS: v = vdx_aq_norm_bits(aq); break;
    case A_TOTAL_CB: v = vdx_aq_total_codebook_size(aq); break;
    case A_NSPLITS: v = vdx_aq_nsplits(aq); break;
    case A_K: v = 1LL << vdx_aq_nbits(aq, 0); break;
    case A_ONLY8: {
        int all = 1;
        for (int64_t m = 0; m < vdx_aq_M(aq); m++) all &= vdx_aq_nbits(aq, m) == 8;
        return PyBool_FromLong(all);
    }
    }
    return PyLong_FromLongLong(v);
}

/* The vector-valued attributes are arrays of a subclass registered by
 * vecdex/_swig_idioms.py (std::vector's at()), when it is. */
static PyObject *vector_type;

static PyObject *as_vector_view(PyArrayObject *a) {
    if (!a || !vector_type) return (PyObject *)a;
    PyObject *v = PyArray_View(a, NULL, (PyTypeObject *)vector_type);
    Py_DECREF(a);
    return v;
}

static PyObject *mod_set_vector_type(PyObject *mod, PyObject *t) {
    (void)mod;
    if (!PyType_Check(t) || !PyType_IsSubtype((PyTypeObject *)t, &PyArray_Type)) {
        PyErr_SetString(PyExc_TypeError, "expected an ndarray subclass");
        return NULL;
    }
    Py_INCREF(t);
    Py_XSETREF(vector_type, t);
    Py_RETURN_NONE;
}

/* the vector-valued attributes, as new arrays */
static PyObject *AQ_get_nbits(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    npy_intp M = (npy_intp)vdx_aq_M(self->aq);
    PyArrayObject *a = (PyArrayObject *)PyArray_ZEROS(1, &M, NPY_UINT64, 0);
    if (!a) return NULL;
    uint64_t *p = PyArray_DATA(a);
    for (npy_intp m = 0; m < M; m++) p[m] = (uint64_t)vdx_aq_nbits(self->aq, m);
    return as_vector_view(a);
}

static PyObject *AQ_get_offsets(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    npy_intp n = (npy_intp)vdx_aq_M(self->aq) + 1;
    PyArrayObject *a = (PyArrayObject *)PyArray_ZEROS(1, &n, NPY_UINT64, 0);
    if (!a) return NULL;
    uint64_t *p = PyArray_DATA(a);
    for (npy_intp m = 0; m < n; m++) p[m] = (uint64_t)vdx_aq_codebook_offset(self->aq, m);
    return as_vector_view(a);
}

static PyObject *copy_floats(const float *v, size_t n) {
    npy_intp dn = (npy_intp)n;
    PyArrayObject *a = (PyArrayObject *)PyArray_ZEROS(1, &dn, NPY_FLOAT32, 0);
    if (a && n) memcpy(PyArray_DATA(a), v, n * sizeof(float));
    return as_vector_view(a);
}

static PyObject *AQ_get_centroid_norms(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    size_t n;
    const float *v = vdx_aq_centroid_norms(self->aq, &n);
    return copy_floats(v, n);
}

static PyObject *AQ_get_cross(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    size_t n;
    const float *v = vdx_aq_codebook_cross_products(self->aq, &n);
    return copy_floats(v, n);
}

/* codebooks: a writable view of the C table once it exists */
static PyObject *AQ_get_codebooks(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    size_t n;
    const float *cb = vdx_aq_codebooks(self->aq, &n);
    return array_over((void *)cb, cb ? (npy_intp)n : 0, NPY_FLOAT32, (PyObject *)self);
}

static int AQ_set_codebooks(AQObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete codebooks");
        return -1;
    }
    if (aq_ready(self) < 0) return -1;
    PyArrayObject *a = as_array(v, NPY_FLOAT32);
    if (!a) return -1;
    if (PyArray_DATA(a) == vdx_aq_codebooks(self->aq, NULL)) {
        Py_DECREF(a);
        return 0;
    }
    cerr e;
    AQ_RUN(self, wr, e, vdx_aq_set_codebooks(self->aq, PyArray_DATA(a),
                                            (size_t)PyArray_SIZE(a)));
    Py_DECREF(a);
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *AQ_get_is_trained(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    return PyBool_FromLong(vdx_aq_is_trained(self->aq));
}

static int AQ_set_is_trained(AQObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete is_trained");
        return -1;
    }
    if (aq_ready(self) < 0) return -1;
    int on = PyObject_IsTrue(v);
    if (on < 0) return -1;
    cerr e;
    AQ_RUN(self, wr, e, vdx_aq_set_trained(self->aq, on));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *AQ_get_search_type(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    return PyLong_FromLong(vdx_aq_search_type(self->aq));
}

static int AQ_set_search_type(AQObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete search_type");
        return -1;
    }
    if (aq_ready(self) < 0) return -1;
    long st = PyLong_AsLong(v);
    if (st == -1 && PyErr_Occurred()) return -1;
    cerr e;
    AQ_RUN(self, wr, e, vdx_aq_set_search_type(self->aq, (int)st));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

/* the fields of vdx_aq_options */
enum {
    O_VERBOSE, O_NORM_MIN, O_NORM_MAX, O_MAXMEM, O_TRAIN_TYPE, O_BEAM, O_LUT,
    O_REFINE, O_PDSTEPS, O_PCA, O_TRAIN_ITERS, O_ENC_ILS, O_TRAIN_ILS, O_ICM,
    O_CHUNK, O_NPERTS, O_P, O_LAMBD, O_SEED, O_DOUBLE
};

static PyObject *AQ_get_opt(AQObject *self, void *which) {
    if (aq_ready(self) < 0) return NULL;
    vdx_aq_options o;
    if (vdx_aq_get_options(self->aq, &o)) return raise_status(VDX_ERR_INTERNAL);
    switch ((int)(intptr_t)which) {
    case O_VERBOSE: return PyBool_FromLong(o.verbose);
    case O_NORM_MIN: return PyFloat_FromDouble(o.norm_min);
    case O_NORM_MAX: return PyFloat_FromDouble(o.norm_max);
    case O_MAXMEM: return PyLong_FromUnsignedLongLong(o.max_mem_distances);
    case O_TRAIN_TYPE: return PyLong_FromLong(o.train_type);
    case O_BEAM: return PyLong_FromLong(o.max_beam_size);
    case O_LUT: return PyLong_FromLong(o.use_beam_LUT);
    case O_REFINE: return PyLong_FromLong(o.niter_codebook_refine);
    case O_PDSTEPS: return PyLong_FromLong(o.progressive_dim_steps);
    case O_PCA: return PyBool_FromLong(o.apply_pca);
    case O_TRAIN_ITERS: return PyLong_FromLongLong(o.train_iters);
    case O_ENC_ILS: return PyLong_FromLongLong(o.encode_ils_iters);
    case O_TRAIN_ILS: return PyLong_FromLongLong(o.train_ils_iters);
    case O_ICM: return PyLong_FromLongLong(o.icm_iters);
    case O_CHUNK: return PyLong_FromLongLong(o.chunk_size);
    case O_NPERTS: return PyLong_FromLongLong(o.nperts);
    case O_P: return PyFloat_FromDouble(o.p);
    case O_LAMBD: return PyFloat_FromDouble(o.lambd);
    case O_SEED: return PyLong_FromLong(o.random_seed);
    default: return PyBool_FromLong(o.update_codebooks_with_double);
    }
}

static int AQ_set_opt(AQObject *self, PyObject *v, void *which) {
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    if (aq_ready(self) < 0) return -1;
    vdx_aq_options o;
    if (vdx_aq_get_options(self->aq, &o)) {
        raise_status(VDX_ERR_INTERNAL);
        return -1;
    }
    int w = (int)(intptr_t)which;
    double f = 0;
    long long i = 0;
    if (w == O_NORM_MIN || w == O_NORM_MAX || w == O_P || w == O_LAMBD) {
        f = PyFloat_AsDouble(v);
        if (f == -1 && PyErr_Occurred()) return -1;
    } else {
        i = PyLong_AsLongLong(v);
        if (i == -1 && PyErr_Occurred()) return -1;
    }
    switch (w) {
    case O_VERBOSE: o.verbose = i != 0; break;
    case O_NORM_MIN: o.norm_min = (float)f; break;
    case O_NORM_MAX: o.norm_max = (float)f; break;
    case O_MAXMEM: o.max_mem_distances = (uint64_t)i; break;
    case O_TRAIN_TYPE: o.train_type = (int)i; break;
    case O_BEAM: o.max_beam_size = i > (1 << 30) ? 1 << 30 : (int)i; break;
    case O_LUT: o.use_beam_LUT = (int)i; break;
    case O_REFINE: o.niter_codebook_refine = (int)i; break;
    case O_PDSTEPS: o.progressive_dim_steps = (int)i; break;
    case O_PCA: o.apply_pca = i != 0; break;
    case O_TRAIN_ITERS: o.train_iters = i; break;
    case O_ENC_ILS: o.encode_ils_iters = i; break;
    case O_TRAIN_ILS: o.train_ils_iters = i; break;
    case O_ICM: o.icm_iters = i; break;
    case O_CHUNK: o.chunk_size = i; break;
    case O_NPERTS: o.nperts = i; break;
    case O_P: o.p = (float)f; break;
    case O_LAMBD: o.lambd = (float)f; break;
    case O_SEED: o.random_seed = (int)i; break;
    default: o.update_codebooks_with_double = i != 0; break;
    }
    cerr e;
    AQ_RUN(self, wr, e, vdx_aq_set_options(self->aq, &o));
    if (e.st) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *AQ_get_cp(AQObject *self, void *c) {
    (void)c;
    if (aq_ready(self) < 0) return NULL;
    return cp_view(vdx_aq_cp(self->aq), (PyObject *)self);
}

#define OPT(name, w, doc) {name, (getter)AQ_get_opt, (setter)AQ_set_opt, doc, (void *)(w)}
#define RO(name, w, doc) {name, (getter)AQ_get_ro, NULL, doc, (void *)(w)}

static PyGetSetDef AQ_getset[] = {
    RO("d", A_D, "dimension"),
    RO("M", A_M, "number of codebooks"),
    RO("code_size", A_CODE_SIZE, "bytes per code"),
    RO("tot_bits", A_TOT_BITS, "bits per code (indices + norm)"),
    RO("norm_bits", A_NORM_BITS, "bits of the encoded norm"),
    RO("total_codebook_size", A_TOTAL_CB, "entries in all codebooks"),
    RO("only_8bit", A_ONLY8, "every codebook has 8 bits"),
    {"nbits", (getter)AQ_get_nbits, NULL, "bits of each codebook (uint64 array)", NULL},
    {"codebook_offsets", (getter)AQ_get_offsets, NULL,
     "first entry of each codebook, M + 1 values", NULL},
    {"codebooks", (getter)AQ_get_codebooks, (setter)AQ_set_codebooks,
     "the codebook entries (float32 view; assign an array to replace them)", NULL},
    {"centroid_norms", (getter)AQ_get_centroid_norms, NULL,
     "|entry|^2 of every entry (after compute_codebook_tables)", NULL},
    {"codebook_cross_products", (getter)AQ_get_cross, NULL,
     "products of entries of different codebooks (FAISS's layout)", NULL},
    {"is_trained", (getter)AQ_get_is_trained, (setter)AQ_set_is_trained,
     "trained (settable once codebooks are set)", NULL},
    {"search_type", (getter)AQ_get_search_type, (setter)AQ_set_search_type,
     "AdditiveQuantizer.ST_*: how codes are searched and what norm they store", NULL},
    OPT("verbose", O_VERBOSE, "stored only: vecdex never prints"),
    OPT("norm_min", O_NORM_MIN, "uniform norm quantizers: range minimum"),
    OPT("norm_max", O_NORM_MAX, "uniform norm quantizers: range maximum"),
    OPT("max_mem_distances", O_MAXMEM, "beam memory bound"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef RQ_getset[] = {
    OPT("train_type", O_TRAIN_TYPE, "ResidualQuantizer.Train_* bits"),
    OPT("max_beam_size", O_BEAM, "beam width of training and encoding (5)"),
    OPT("use_beam_LUT", O_LUT, "1: encode with the codebook tables"),
    OPT("niter_codebook_refine", O_REFINE, "Train_refine_codebook iterations (5)"),
    {"cp", (getter)AQ_get_cp, NULL, "k-means parameters of each step", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef LSQ_getset[] = {
    RO("K", A_K, "entries per codebook"),
    OPT("train_iters", O_TRAIN_ITERS, "training iterations (25)"),
    OPT("encode_ils_iters", O_ENC_ILS, "local-search rounds when encoding (16)"),
    OPT("train_ils_iters", O_TRAIN_ILS, "local-search rounds when training (8)"),
    OPT("icm_iters", O_ICM, "ICM sweeps per round (4)"),
    OPT("p", O_P, "annealing temperature exponent (0.5)"),
    OPT("lambd", O_LAMBD, "codebook regularisation (0.01)"),
    OPT("chunk_size", O_CHUNK, "stored only"),
    OPT("random_seed", O_SEED, "seed of the perturbations (0x12345)"),
    OPT("nperts", O_NPERTS, "codes perturbed per round (4)"),
    OPT("update_codebooks_with_double", O_DOUBLE, "least squares in double (True)"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef PAQ_getset[] = {
    RO("nsplits", A_NSPLITS, "number of sub-quantizers"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef AQ_methods[] = {
    {"train", (PyCFunction)AQ_train, METH_O, "train(x)"},
    {"compute_codes", (PyCFunction)AQ_compute_codes, METH_O,
     "compute_codes(x) -> uint8 array (n, code_size)"},
    {"decode", (PyCFunction)AQ_decode, METH_O, "decode(codes) -> float32 (n, d)"},
    {"decode_c", (PyCFunction)AQ_decode_c, METH_VARARGS,
     "decode_c(codes, x, n): decodes into x"},
    {"compute_LUT", (PyCFunction)AQ_compute_LUT, METH_VARARGS,
     "compute_LUT(x, alpha=1) -> (n, total_codebook_size) of alpha <x, entry>; "
     "or compute_LUT(n, x, lut, alpha=1) filling lut"},
    {"pack_codes", METH_KW_FN(AQ_pack_codes), METH_VARARGS | METH_KEYWORDS,
     "pack_codes(n, codes, packed_codes, ld_codes=-1, norms=None)"},
    {"set_derived_values", (PyCFunction)AQ_set_derived_values, METH_NOARGS,
     "no-op (vecdex keeps the derived sizes current)"},
    {"compute_codebook_tables", (PyCFunction)AQ_compute_codebook_tables, METH_NOARGS,
     "computes centroid_norms and codebook_cross_products"},
    {"compute_centroid_norms", (PyCFunction)AQ_compute_centroid_norms, METH_VARARGS,
     "compute_centroid_norms(norms=None): |c|^2 of the 2^tot_bits reconstructions"},
    {"knn_centroids_inner_product", (PyCFunction)AQ_knn_ip, METH_VARARGS,
     "knn_centroids_inner_product(n, xq, k, D, I)"},
    {"knn_centroids_L2", (PyCFunction)AQ_knn_l2, METH_VARARGS,
     "knn_centroids_L2(n, xq, k, D, I, norms)"},
    {NULL, NULL, 0, NULL}};

static PyMethodDef RQ_methods[] = {
    {"initialize_from", (PyCFunction)RQ_initialize_from, METH_VARARGS,
     "initialize_from(other, skip_M=0): copies other's steps skip_M.."},
    {"retrain_AQ_codebook", (PyCFunction)RQ_retrain, METH_VARARGS,
     "retrain_AQ_codebook(n, x) -> error: least-squares codebooks"},
    {NULL, NULL, 0, NULL}};

static PyMethodDef LSQ_methods[] = {
    {"compute_binary_terms", (PyCFunction)LSQ_binary, METH_O,
     "compute_binary_terms(binaries): fills (M, M, K, K)"},
    {"compute_unary_terms", (PyCFunction)LSQ_unary, METH_VARARGS,
     "compute_unary_terms(x, unaries, n): fills (M, n, K)"},
    {"icm_encode_step", (PyCFunction)LSQ_icm_step, METH_VARARGS,
     "icm_encode_step(codes, unaries, binaries, n, n_iters)"},
    {"update_codebooks", (PyCFunction)LSQ_update, METH_VARARGS,
     "update_codebooks(x, codes, n)"},
    {NULL, NULL, 0, NULL}};

static PyMethodDef PAQ_methods[] = {
    {"subquantizer", (PyCFunction)PAQ_subquantizer, METH_O,
     "subquantizer(s): sub-quantizer s (borrowed)"},
    {NULL, NULL, 0, NULL}};

#define AQ_TYPE(tname, doc, base, init, methods, getset)                  \
    {                                                                     \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex." tname,        \
        .tp_basicsize = sizeof(AQObject),                                 \
        .tp_dealloc = (destructor)AQ_dealloc,                             \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,             \
        .tp_doc = doc,                                                    \
        .tp_methods = methods,                                            \
        .tp_getset = getset,                                              \
        .tp_base = base,                                                  \
        .tp_init = (initproc)init,                                        \
        .tp_new = PyType_GenericNew,                                      \
    }

PyTypeObject AdditiveQuantizerType =
    AQ_TYPE("AdditiveQuantizer", "Base of the additive quantizers (ST_* constants).",
            NULL, abstract_init, AQ_methods, AQ_getset);
PyTypeObject ResidualQuantizerType = AQ_TYPE(
    "ResidualQuantizer",
    "ResidualQuantizer(d, M, nbits=8, search_type=ST_decompress) or "
    "ResidualQuantizer(d, nbits_list, search_type): beam-search residual "
    "quantizer.",
    &AdditiveQuantizerType, RQ_init, RQ_methods, RQ_getset);
PyTypeObject LocalSearchQuantizerType = AQ_TYPE(
    "LocalSearchQuantizer",
    "LocalSearchQuantizer(d, M, nbits, search_type=ST_decompress): LSQ++.",
    &AdditiveQuantizerType, LSQ_init, LSQ_methods, LSQ_getset);
PyTypeObject ProductAdditiveQuantizerType =
    AQ_TYPE("ProductAdditiveQuantizer", "Base of the product kinds.",
            &AdditiveQuantizerType, abstract_init, PAQ_methods, PAQ_getset);
PyTypeObject ProductResidualQuantizerType = AQ_TYPE(
    "ProductResidualQuantizer",
    "ProductResidualQuantizer(d, nsplits, Msub, nbits, search_type=0)",
    &ProductAdditiveQuantizerType, PRQ_init, NULL, NULL);
PyTypeObject ProductLocalSearchQuantizerType = AQ_TYPE(
    "ProductLocalSearchQuantizer",
    "ProductLocalSearchQuantizer(d, nsplits, Msub, nbits, search_type=0)",
    &ProductAdditiveQuantizerType, PLSQ_init, NULL, NULL);

/* ---- module functions -------------------------------------------------------- */

/* beam_search_encode_step(d, K, cent, n, beam_size, residuals, m, codes,
 * new_beam_size, new_codes, new_residuals, new_distances, assign_index=None) */
static PyObject *mod_beam_step(PyObject *mod, PyObject *args) {
    (void)mod;
    Py_ssize_t d, K, n, beam, m, L;
    PyObject *co, *ro, *cdo, *nco, *nro, *ndo, *ai = Py_None;
    if (!PyArg_ParseTuple(args, "nnOnnOnOnOOO|O:beam_search_encode_step", &d, &K, &co,
                          &n, &beam, &ro, &m, &cdo, &L, &nco, &nro, &ndo, &ai))
        return NULL;
    if (d < 1 || K < 1 || n < 0 || beam < 1 || m < 0 || L < 1) {
        PyErr_SetString(PyExc_ValueError, "beam_search_encode_step: bad sizes");
        return NULL;
    }
    vdx_index *aix = NULL;
    IndexObject *aio = NULL;
    if (ai != Py_None) {
        if (!PyObject_TypeCheck(ai, &IndexType) || ready((IndexObject *)ai) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "assign_index must be an index");
            return NULL;
        }
        aio = (IndexObject *)ai;
        aix = aio->ix;
    }
    PyArrayObject *c = arg_array(co, NPY_FLOAT32, K * d, 0, "cent");
    PyArrayObject *r = c ? arg_array(ro, NPY_FLOAT32, n * beam * d, 0, "residuals") : NULL;
    PyArrayObject *cd = r ? arg_array(cdo, NPY_INT32, n * beam * m, 0, "codes") : NULL;
    PyArrayObject *nc = cd ? arg_array(nco, NPY_INT32, n * L * (m + 1), 1, "new_codes") : NULL;
    PyArrayObject *nr = nc ? arg_array(nro, NPY_FLOAT32, n * L * d, 1, "new_residuals") : NULL;
    PyArrayObject *nd = nr ? arg_array(ndo, NPY_FLOAT32, n * L, 1, "new_distances") : NULL;
    PyObject *ret = NULL;
    if (nd) {
        cerr e;
        if (aio) {
            RUN_LOCKED(aio->owner, wr, e,
                       vdx_rq_beam_search_encode_step(d, K, PyArray_DATA(c), n, beam,
                                                      PyArray_DATA(r), m, PyArray_DATA(cd),
                                                      L, PyArray_DATA(nc), PyArray_DATA(nr),
                                                      PyArray_DATA(nd), aix));
        } else {
            Py_BEGIN_ALLOW_THREADS
            cerr_capture(&e, vdx_rq_beam_search_encode_step(
                                 d, K, PyArray_DATA(c), n, beam, PyArray_DATA(r), m,
                                 PyArray_DATA(cd), L, PyArray_DATA(nc), PyArray_DATA(nr),
                                 PyArray_DATA(nd), NULL));
            Py_END_ALLOW_THREADS
        }
        if (e.st) raise_cerr(&e);
        else ret = Py_None, Py_INCREF(ret);
    }
    Py_XDECREF(c);
    Py_XDECREF(r);
    Py_XDECREF(cd);
    Py_XDECREF(nc);
    Py_XDECREF(nr);
    Py_XDECREF(nd);
    return ret;
}

/* beam_search_encode_step_tab(K, n, beam_size, cross, ldc, offsets, query_cp,
 * ldqc, cent_norms, m, codes, distances, new_beam_size, new_codes,
 * new_distances) */
static PyObject *mod_beam_step_tab(PyObject *mod, PyObject *args) {
    (void)mod;
    Py_ssize_t K, n, beam, ldc, ldqc, m, L;
    PyObject *xo, *oo, *qo, *cno, *co, *dso, *nco, *ndo;
    if (!PyArg_ParseTuple(args, "nnnOnOOnOnOOnOO:beam_search_encode_step_tab", &K, &n,
                          &beam, &xo, &ldc, &oo, &qo, &ldqc, &cno, &m, &co, &dso, &L,
                          &nco, &ndo))
        return NULL;
    if (K < 1 || n < 0 || beam < 1 || m < 0 || L < 1 || ldc < K || ldqc < K) {
        PyErr_SetString(PyExc_ValueError, "beam_search_encode_step_tab: bad sizes");
        return NULL;
    }
    PyArrayObject *o = arg_array(oo, NPY_UINT64, m, 0, "codebook_offsets");
    /* the cross table: its size is checked against the codes below */
    PyArrayObject *x = o ? arg_array(xo, NPY_FLOAT32, 0, 0, "cross products") : NULL;
    PyArrayObject *q = x ? arg_array(qo, NPY_FLOAT32, n ? (n - 1) * ldqc + K : 0, 0, "query_cp") : NULL;
    PyArrayObject *cn = q ? arg_array(cno, NPY_FLOAT32, K, 0, "cent_norms") : NULL;
    PyArrayObject *c = cn ? arg_array(co, NPY_INT32, n * beam * m, 0, "codes") : NULL;
    PyArrayObject *ds = c ? arg_array(dso, NPY_FLOAT32, n * beam, 0, "distances") : NULL;
    PyArrayObject *nc = ds ? arg_array(nco, NPY_INT32, n * L * (m + 1), 1, "new_codes") : NULL;
    PyArrayObject *nd = nc ? arg_array(ndo, NPY_FLOAT32, n * L, 1, "new_distances") : NULL;
    PyObject *ret = NULL;
    if (nd) {
        /* every code must index a row the cross table holds */
        const int32_t *cc = PyArray_DATA(c);
        const uint64_t *off = PyArray_DATA(o);
        npy_intp have = PyArray_SIZE(x);
        int ok = 1;
        for (npy_intp i = 0; i < n * beam && ok; i++)
            for (npy_intp l = 0; l < m && ok; l++) {
                int64_t row = (int64_t)off[l] + cc[i * m + l];
                if (cc[i * m + l] < 0 || (row + 1) * ldc > have) ok = 0;
            }
        if (!ok) {
            PyErr_SetString(PyExc_ValueError,
                            "beam_search_encode_step_tab: a code indexes past the "
                            "cross-product table");
        } else {
            cerr e;
            Py_BEGIN_ALLOW_THREADS
            cerr_capture(&e, vdx_rq_beam_search_encode_step_tab(
                                 K, n, beam, PyArray_DATA(x), ldc, off, PyArray_DATA(q),
                                 ldqc, PyArray_DATA(cn), m, cc, PyArray_DATA(ds), L,
                                 PyArray_DATA(nc), PyArray_DATA(nd)));
            Py_END_ALLOW_THREADS
            if (e.st) raise_cerr(&e);
            else ret = Py_None, Py_INCREF(ret);
        }
    }
    Py_XDECREF(o);
    Py_XDECREF(x);
    Py_XDECREF(q);
    Py_XDECREF(cn);
    Py_XDECREF(c);
    Py_XDECREF(ds);
    Py_XDECREF(nc);
    Py_XDECREF(nd);
    return ret;
}

static PyMethodDef aq_module_methods[] = {
    {"_set_vector_type", (PyCFunction)mod_set_vector_type, METH_O,
     "internal: the ndarray subclass of vector-valued attributes"},
    {"beam_search_encode_step", (PyCFunction)mod_beam_step, METH_VARARGS,
     "beam_search_encode_step(d, K, cent, n, beam_size, residuals, m, codes, "
     "new_beam_size, new_codes, new_residuals, new_distances, assign_index=None)"},
    {"beam_search_encode_step_tab", (PyCFunction)mod_beam_step_tab, METH_VARARGS,
     "beam_search_encode_step_tab(K, n, beam_size, cross, ldc, offsets, query_cp, "
     "ldqc, cent_norms, m, codes, distances, new_beam_size, new_codes, "
     "new_distances)"},
    {NULL, NULL, 0, NULL}};

static int add_int(PyTypeObject *t, const char *name, long v) {
    PyObject *o = PyLong_FromLong(v);
    if (!o) return -1;
    int r = PyDict_SetItemString(t->tp_dict, name, o);
    Py_DECREF(o);
    return r;
}

int pyvdx_init_aq(PyObject *m) {
    PyTypeObject *types[] = {&AdditiveQuantizerType, &ResidualQuantizerType,
                             &LocalSearchQuantizerType, &ProductAdditiveQuantizerType,
                             &ProductResidualQuantizerType,
                             &ProductLocalSearchQuantizerType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    static const struct { const char *n; long v; } st[] = {
        {"ST_decompress", VDX_AQ_ST_DECOMPRESS}, {"ST_LUT_nonorm", VDX_AQ_ST_LUT_NONORM},
        {"ST_norm_from_LUT", VDX_AQ_ST_NORM_FROM_LUT}, {"ST_norm_float", VDX_AQ_ST_NORM_FLOAT},
        {"ST_norm_qint8", VDX_AQ_ST_NORM_QINT8}, {"ST_norm_qint4", VDX_AQ_ST_NORM_QINT4},
        {"ST_norm_cqint8", VDX_AQ_ST_NORM_CQINT8}, {"ST_norm_cqint4", VDX_AQ_ST_NORM_CQINT4},
        {"ST_norm_lsq2x4", VDX_AQ_ST_NORM_LSQ2X4}, {"ST_norm_rq2x4", VDX_AQ_ST_NORM_RQ2X4},
        {"ST_count", 10}};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        if (add_int(&AdditiveQuantizerType, st[i].n, st[i].v) < 0) return -1;
        /* FAISS's SWIG flattening: faiss.AdditiveQuantizer_ST_decompress */
        char flat[64];
        snprintf(flat, sizeof flat, "AdditiveQuantizer_%s", st[i].n);
        if (add_object(m, flat, PyLong_FromLong(st[i].v)) < 0) return -1;
    }
    static const struct { const char *n; long v; } tt[] = {
        {"Train_default", VDX_RQ_TRAIN_DEFAULT},
        {"Train_progressive_dim", VDX_RQ_TRAIN_PROGRESSIVE_DIM},
        {"Train_refine_codebook", VDX_RQ_TRAIN_REFINE_CODEBOOK},
        {"Train_top_beam", VDX_RQ_TRAIN_TOP_BEAM},
        {"Skip_codebook_tables", VDX_RQ_SKIP_CODEBOOK_TABLES}};
    for (size_t i = 0; i < sizeof tt / sizeof tt[0]; i++)
        if (add_int(&ResidualQuantizerType, tt[i].n, tt[i].v) < 0) return -1;
    PyType_Modified(&AdditiveQuantizerType);
    PyType_Modified(&ResidualQuantizerType);
    for (PyMethodDef *d = aq_module_methods; d->ml_name; d++)
        if (add_object(m, d->ml_name, PyCFunction_New(d, NULL)) < 0) return -1;
    return 0;
}
