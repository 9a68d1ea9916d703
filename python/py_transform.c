/*
 * py_transform.c — the vector transforms (VectorTransform, LinearTransform,
 * RandomRotationMatrix, PCAMatrix, OPQMatrix, NormalizationTransform,
 * CenteringTransform) and IndexPreTransform.
 *
 * Ownership: a transform object owns its C transform until it is given to
 * an IndexPreTransform (constructor or prepend_transform); from then on the
 * C index tree owns it and the Python object borrows it, holding a count on
 * the tree's owner record (so the tree outlives it) and taking the
 * record's lock for every call, as the sub-index wrappers do.  Training the
 * index therefore shows through the caller's object (pca.eigenvalues after
 * index.train), as in FAISS.  `index.chain` wraps the chain's transforms
 * the same way.  A transform belongs to at most one index.
 *
 * Arrays (A, b, mean, eigenvalues, PCAMat) are returned as numpy copies, so
 * faiss.vector_to_array(pca.eigenvalues) works; a LinearTransform's A and b
 * can be assigned numpy arrays.
 */
#include "py_vecdex.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    vdx_vt *vt;
    owner_t *owner;  /* the index tree's record when borrowed, else NULL */
    int adopting;    /* an IndexPreTransform is taking it */
    PyObject *dict;
} VTObject;

static PyTypeObject VTType, LinearTransformType, RRType, PCAType, OPQType,
    NormType, CenterType, VTChainType, HadamardType;
PyTypeObject IndexPreTransformType;

#define VT_RUN(self, mode, e, call)                        \
    do {                                                   \
        if ((self)->owner)                                 \
            RUN_LOCKED((self)->owner, mode, e, call);      \
        else {                                             \
            Py_BEGIN_ALLOW_THREADS                         \
            cerr_capture(&(e), (call));                    \
            Py_END_ALLOW_THREADS                           \
        }                                                  \
    } while (0)

static int vt_ready(VTObject *self) {
    if (self->vt) return 0;
    PyErr_SetString(PyExc_RuntimeError,
                    "vector transform is not initialised (was __init__ "
                    "called?)");
    return -1;
}

static void VT_dealloc(VTObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->dict);
    if (self->owner) owner_decref(self->owner);
    else vdx_vt_free(self->vt);
    self->vt = NULL;
    self->owner = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int VT_traverse(VTObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->dict);
    return 0;
}

static int VT_clear(VTObject *self) {
    Py_CLEAR(self->dict);
    return 0;
}

/* Takes a new C transform into a fresh (uninitialised) object. */
static int vt_take(VTObject *self, vdx_status st, vdx_vt *vt) {
    if (st != VDX_OK) {
        raise_status(st);
        return -1;
    }
    if (self->vt) {
        vdx_vt_free(vt);
        PyErr_SetString(PyExc_RuntimeError, "already initialised");
        return -1;
    }
    self->vt = vt;
    return 0;
}

static PyTypeObject *class_for_vt(const vdx_vt *vt) {
    const char *tn = vdx_vt_type_name(vt);
    if (!strcmp(tn, "PCAMatrix")) return &PCAType;
    if (!strcmp(tn, "OPQMatrix")) return &OPQType;
    if (!strcmp(tn, "RandomRotationMatrix")) return &RRType;
    if (!strcmp(tn, "NormalizationTransform")) return &NormType;
    if (!strcmp(tn, "CenteringTransform")) return &CenterType;
    if (!strcmp(tn, "HadamardRotation")) return &HadamardType;
    if (!strcmp(tn, "LinearTransform")) return &LinearTransformType;
    return &VTType;
}

/* A borrowing wrapper of vt inside o's tree. */
static PyObject *wrap_vt(vdx_vt *vt, owner_t *o) {
    PyTypeObject *t = class_for_vt(vt);
    VTObject *obj = (VTObject *)t->tp_alloc(t, 0);
    if (!obj) return NULL;
    obj->vt = vt;
    obj->owner = o;
    o->refs++;
    return (PyObject *)obj;
}

/* --- constructors ---------------------------------------------------------- */
static int VT_init(VTObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    (void)args;
    (void)kw;
    PyErr_SetString(PyExc_TypeError,
                    "VectorTransform is abstract; use PCAMatrix, OPQMatrix, "
                    "RandomRotationMatrix, LinearTransform, "
                    "NormalizationTransform or CenteringTransform");
    return -1;
}

static int LT_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d_in", "d_out", "have_bias", NULL};
    long long din = 0, dout = 0;
    int bias = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LLp:LinearTransform", kwlist,
                                     &din, &dout, &bias))
        return -1;
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_linear_new(din, dout, bias, &vt);
    return vt_take(self, st, vt);
}

static int RR_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d_in", "d_out", NULL};
    long long din = 0, dout = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LL:RandomRotationMatrix",
                                     kwlist, &din, &dout))
        return -1;
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_random_rotation_new(din, dout, &vt);
    return vt_take(self, st, vt);
}

static int PCA_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d_in", "d_out", "eigen_power", "random_rotation",
                             NULL};
    long long din = 0, dout = 0;
    float ep = 0.0f;
    int rr = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LLfp:PCAMatrix", kwlist, &din,
                                     &dout, &ep, &rr))
        return -1;
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_pca_new(din, dout, ep, rr, &vt);
    return vt_take(self, st, vt);
}

static int OPQ_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "d2", NULL};
    long long d = 0, M = 1, d2 = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LLL:OPQMatrix", kwlist, &d,
                                     &M, &d2))
        return -1;
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_opq_new(d, M, d2, &vt);
    return vt_take(self, st, vt);
}

static int Norm_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "norm", NULL};
    long long d = 0;
    float norm = 2.0f;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Lf:NormalizationTransform",
                                     kwlist, &d, &norm))
        return -1;
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_normalization_new(d, norm, &vt);
    return vt_take(self, st, vt);
}

static int Center_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", NULL};
    long long d = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|L:CenteringTransform", kwlist,
                                     &d))
        return -1;
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_centering_new(d, &vt);
    return vt_take(self, st, vt);
}

static int Hadamard_init(VTObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "seed", NULL};
    long long d = 0, seed = 12345;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LL:HadamardRotation", kwlist,
                                     &d, &seed))
        return -1;
    if (seed < 0 || seed > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "HadamardRotation: seed=%lld must be in 0..2^32-1", seed);
        return -1;
    }
    vdx_vt *vt = NULL;
    vdx_status st = vdx_vt_hadamard_new(d, (uint32_t)seed, &vt);
    return vt_take(self, st, vt);
}

static PyObject *Hadamard_get_seed(VTObject *self, void *c) {
    (void)c;
    if (vt_ready(self) < 0) return NULL;
    return PyLong_FromUnsignedLong(vdx_vt_hadamard_seed(self->vt));
}

/* --- methods --------------------------------------------------------------- */
static PyObject *VT_train(VTObject *self, PyObject *xo) {
    if (vt_ready(self) < 0) return NULL;
    /* inside an index this takes the tree's lock exclusively, as FAISS
     * allows training a chain element directly */
    PyArrayObject *x = as_matrix(xo, vdx_vt_d_in(self->vt), "x");
    if (!x) return NULL;
    cerr e;
    VT_RUN(self, wr, e,
           vdx_vt_train(self->vt, PyArray_DIM(x, 0), PyArray_DATA(x)));
    Py_DECREF(x);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* apply (forward = 1) or reverse_transform. */
static PyObject *vt_map(VTObject *self, PyObject *xo, int forward) {
    if (vt_ready(self) < 0) return NULL;
    int64_t din = vdx_vt_d_in(self->vt), dout = vdx_vt_d_out(self->vt);
    PyArrayObject *x = as_matrix(xo, forward ? din : dout, "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)(forward ? dout : din)};
    PyArrayObject *y = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    if (!y) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    int64_t n = dims[0];
    const float *xp = PyArray_DATA(x);
    float *yp = PyArray_DATA(y);
    if (forward) VT_RUN(self, rd, e, vdx_vt_apply(self->vt, n, xp, yp));
    else VT_RUN(self, rd, e, vdx_vt_reverse(self->vt, n, xp, yp));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(y);
        return raise_cerr(&e);
    }
    return (PyObject *)y;
}

static PyObject *VT_apply(VTObject *self, PyObject *xo) {
    return vt_map(self, xo, 1);
}

static PyObject *VT_reverse(VTObject *self, PyObject *xo) {
    return vt_map(self, xo, 0);
}

static PyObject *RR_init_seed(VTObject *self, PyObject *arg) {
    if (vt_ready(self) < 0) return NULL;
    long long seed = PyLong_AsLongLong(arg);
    if (seed == -1 && PyErr_Occurred()) return NULL;
    cerr e;
    VT_RUN(self, wr, e, vdx_vt_rr_init(self->vt, seed));
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* --- attributes ------------------------------------------------------------ */
enum { A_DIN, A_DOUT, A_TRAINED, A_ORTHO, A_BIAS, A_M };

static PyObject *VT_get_int(VTObject *self, void *c) {
    if (vt_ready(self) < 0) return NULL;
    if (self->owner) owner_rdlock_gil(self->owner);
    long long v = 0;
    int isbool = 0;
    switch ((int)(intptr_t)c) {
    case A_DIN: v = vdx_vt_d_in(self->vt); break;
    case A_DOUT: v = vdx_vt_d_out(self->vt); break;
    case A_TRAINED: v = vdx_vt_is_trained(self->vt), isbool = 1; break;
    case A_ORTHO: v = vdx_vt_is_orthonormal(self->vt), isbool = 1; break;
    case A_BIAS: v = vdx_vt_have_bias(self->vt), isbool = 1; break;
    case A_M: v = vdx_vt_opq_M(self->vt); break;
    }
    if (self->owner) rw_rdunlock(&self->owner->lock);
    return isbool ? PyBool_FromLong((long)v) : PyLong_FromLongLong(v);
}

static PyObject *VT_get_array(VTObject *self, void *c) {
    if (vt_ready(self) < 0) return NULL;
    for (;;) { /* allocate without the lock, then copy under it */
        size_t n = 0;
        if (self->owner) owner_rdlock_gil(self->owner);
        vdx_vt_array(self->vt, (int)(intptr_t)c, &n);
        if (self->owner) rw_rdunlock(&self->owner->lock);
        npy_intp dims[1] = {(npy_intp)n};
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_FLOAT32);
        if (!a) return NULL;
        if (self->owner) owner_rdlock_gil(self->owner);
        size_t n2 = 0;
        const float *p = vdx_vt_array(self->vt, (int)(intptr_t)c, &n2);
        if (n2 == n && n) memcpy(PyArray_DATA(a), p, n * sizeof(float));
        if (self->owner) rw_rdunlock(&self->owner->lock);
        if (n2 == n) return (PyObject *)a;
        Py_DECREF(a);
    }
}

static int VT_set_array(VTObject *self, PyObject *v, void *c) {
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this array");
        return -1;
    }
    if (vt_ready(self) < 0) return -1;
    PyArrayObject *a = as_array(v, NPY_FLOAT32);
    if (!a) return -1;
    cerr e;
    size_t n = (size_t)PyArray_SIZE(a);
    const float *p = PyArray_DATA(a);
    VT_RUN(self, wr, e, vdx_vt_set_array(self->vt, (int)(intptr_t)c, p, n));
    Py_DECREF(a);
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

/* Options: which field (offset into vdx_vt_options) and its kind. */
enum { O_FLOAT, O_INT, O_I64, O_BOOL };
typedef struct { size_t off; int kind; } opt_field;
static const opt_field opt_fields[] = {
    {offsetof(vdx_vt_options, eigen_power), O_FLOAT},
    {offsetof(vdx_vt_options, epsilon), O_FLOAT},
    {offsetof(vdx_vt_options, random_rotation), O_BOOL},
    {offsetof(vdx_vt_options, max_points_per_d), O_I64},
    {offsetof(vdx_vt_options, niter), O_INT},
    {offsetof(vdx_vt_options, niter_pq), O_INT},
    {offsetof(vdx_vt_options, niter_pq_0), O_INT},
    {offsetof(vdx_vt_options, max_train_points), O_I64},
    {offsetof(vdx_vt_options, verbose), O_BOOL},
};
enum { F_EP, F_EPS, F_RR, F_MPD, F_NITER, F_NITER_PQ, F_NITER_PQ0, F_MTP,
       F_VERBOSE };

static PyObject *VT_get_opt(VTObject *self, void *c) {
    if (vt_ready(self) < 0) return NULL;
    vdx_vt_options o;
    if (self->owner) owner_rdlock_gil(self->owner);
    vdx_vt_get_options(self->vt, &o);
    if (self->owner) rw_rdunlock(&self->owner->lock);
    const opt_field *f = &opt_fields[(intptr_t)c];
    char *p = (char *)&o + f->off;
    switch (f->kind) {
    case O_FLOAT: return PyFloat_FromDouble(*(float *)p);
    case O_INT: return PyLong_FromLong(*(int *)p);
    case O_I64: return PyLong_FromLongLong(*(int64_t *)p);
    default: return PyBool_FromLong(*(int *)p);
    }
}

static int VT_set_opt(VTObject *self, PyObject *v, void *c) {
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    if (vt_ready(self) < 0) return -1;
    const opt_field *f = &opt_fields[(intptr_t)c];
    double dv = 0;
    long long iv = 0;
    if (f->kind == O_FLOAT) {
        dv = PyFloat_AsDouble(v);
        if (dv == -1.0 && PyErr_Occurred()) return -1;
    } else if (f->kind == O_BOOL) {
        int t = PyObject_IsTrue(v);
        if (t < 0) return -1;
        iv = t;
    } else {
        iv = PyLong_AsLongLong(v);
        if (iv == -1 && PyErr_Occurred()) return -1;
        if (f->kind == O_INT && (iv > INT32_MAX || iv < INT32_MIN)) {
            PyErr_Format(PyExc_ValueError, "value %lld is out of range", iv);
            return -1;
        }
    }
    cerr e = {VDX_OK, ""};
    if (self->owner) {
        Py_BEGIN_ALLOW_THREADS
        rw_wrlock(&self->owner->lock);
        Py_END_ALLOW_THREADS
    }
    vdx_vt_options o;
    vdx_vt_get_options(self->vt, &o);
    char *p = (char *)&o + f->off;
    switch (f->kind) {
    case O_FLOAT: *(float *)p = (float)dv; break;
    case O_I64: *(int64_t *)p = (int64_t)iv; break;
    default: *(int *)p = (int)iv; break;
    }
    cerr_capture(&e, vdx_vt_set_options(self->vt, &o));
    if (self->owner) rw_wrunlock(&self->owner->lock);
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *VT_repr(VTObject *self) {
    if (!self->vt)
        return PyUnicode_FromFormat("<%s (uninitialised)>",
                                    Py_TYPE(self)->tp_name);
    return PyUnicode_FromFormat("<%s d_in=%lld d_out=%lld is_trained=%d>",
                                Py_TYPE(self)->tp_name,
                                (long long)vdx_vt_d_in(self->vt),
                                (long long)vdx_vt_d_out(self->vt),
                                vdx_vt_is_trained(self->vt));
}

static PyMethodDef VT_methods[] = {
    {"train", (PyCFunction)VT_train, METH_O,
     "train(x): trains the transform on the (n, d_in) vectors x."},
    {"apply", (PyCFunction)VT_apply, METH_O,
     "apply(x) -> (n, d_out) float32: the transform of x."},
    {"apply_py", (PyCFunction)VT_apply, METH_O, "apply_py(x): as apply(x)."},
    {"reverse_transform", (PyCFunction)VT_reverse, METH_O,
     "reverse_transform(y) -> (n, d_in): the inverse (orthonormal "
     "transforms only)."},
    {NULL, NULL, 0, NULL}};

static PyMethodDef RR_methods[] = {
    {"init", (PyCFunction)RR_init_seed, METH_O,
     "init(seed): draws the random rotation from seed."},
    {NULL, NULL, 0, NULL}};

#define GI(name, which, doc) \
    {name, (getter)VT_get_int, NULL, doc, (void *)(intptr_t)(which)}
#define GA(name, which, set, doc) \
    {name, (getter)VT_get_array, set, doc, (void *)(intptr_t)(which)}
#define GO(name, which, doc)                                     \
    {name, (getter)VT_get_opt, (setter)VT_set_opt, doc,         \
     (void *)(intptr_t)(which)}

static PyGetSetDef VT_getset[] = {
    GI("d_in", A_DIN, "input dimension"),
    GI("d_out", A_DOUT, "output dimension"),
    GI("is_trained", A_TRAINED, "whether apply may be called"),
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef LT_getset[] = {
    GI("is_orthonormal", A_ORTHO, "A has orthonormal rows"),
    GI("have_bias", A_BIAS, "y = A x + b (else A x)"),
    GA("A", VDX_VT_A, (setter)VT_set_array,
       "the d_out x d_in matrix, row-major (a copy)"),
    GA("b", VDX_VT_B, (setter)VT_set_array, "the bias (a copy)"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef PCA_getset[] = {
    GA("mean", VDX_VT_MEAN, NULL, "mean of the training vectors (a copy)"),
    GA("eigenvalues", VDX_VT_EIGENVALUES, NULL,
       "eigenvalues of the scatter matrix, largest first (a copy)"),
    GA("PCAMat", VDX_VT_PCAMAT, NULL,
       "d_in x d_in eigenvectors, one per row (a copy)"),
    GO("eigen_power", F_EP, "rows of A scaled by eigenvalue^eigen_power"),
    GO("epsilon", F_EPS, "added to eigenvalues before the power"),
    GO("random_rotation", F_RR, "rotate the output randomly"),
    GO("max_points_per_d", F_MPD, "training sample size per input dimension"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef OPQ_getset[] = {
    GI("M", A_M, "number of sub-quantizers"),
    GO("niter", F_NITER, "outer iterations (50)"),
    GO("niter_pq", F_NITER_PQ, "k-means iterations per PQ step (4)"),
    GO("niter_pq_0", F_NITER_PQ0, "k-means iterations of the first step (40)"),
    GO("max_train_points", F_MTP, "training sample size (65536)"),
    GO("verbose", F_VERBOSE, "accepted for FAISS compatibility (silent)"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef Center_getset[] = {
    GA("mean", VDX_VT_MEAN, NULL, "mean of the training vectors (a copy)"),
    {NULL, NULL, NULL, NULL, NULL}};

#define VT_TYPE(name, doc, base, init, methods, getset)                     \
    {                                                                       \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex." name,           \
        .tp_basicsize = sizeof(VTObject),                                   \
        .tp_dealloc = (destructor)VT_dealloc,                               \
        .tp_repr = (reprfunc)VT_repr,                                       \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |              \
                    Py_TPFLAGS_HAVE_GC,                                     \
        .tp_doc = doc, .tp_traverse = (traverseproc)VT_traverse,            \
        .tp_clear = (inquiry)VT_clear, .tp_methods = methods,               \
        .tp_getset = getset, .tp_base = base,                               \
        .tp_dictoffset = offsetof(VTObject, dict),                          \
        .tp_init = (initproc)init, .tp_new = PyType_GenericNew,            \
    }

static PyTypeObject VTType = VT_TYPE(
    "VectorTransform", "Base class of the vector transforms (abstract).",
    NULL, VT_init, VT_methods, VT_getset);
static PyTypeObject LinearTransformType = VT_TYPE(
    "LinearTransform",
    "LinearTransform(d_in=0, d_out=0, have_bias=False): y = A x + b; set A "
    "(and b) by assignment.",
    &VTType, LT_init, NULL, LT_getset);
static PyTypeObject RRType = VT_TYPE(
    "RandomRotationMatrix",
    "RandomRotationMatrix(d_in, d_out): a random orthonormal matrix, drawn "
    "by train() (seed 12345) or init(seed).",
    &LinearTransformType, RR_init, RR_methods, NULL);
static PyTypeObject PCAType = VT_TYPE(
    "PCAMatrix",
    "PCAMatrix(d_in, d_out, eigen_power=0, random_rotation=False): "
    "projection on the d_out principal components (eigen_power=-0.5 "
    "whitens).",
    &LinearTransformType, PCA_init, NULL, PCA_getset);
static PyTypeObject OPQType = VT_TYPE(
    "OPQMatrix",
    "OPQMatrix(d, M, d2=-1): rotation trained to minimise the error of a "
    "PQ with M sub-quantizers (Ge et al. 2013).",
    &LinearTransformType, OPQ_init, NULL, OPQ_getset);
static PyTypeObject NormType = VT_TYPE(
    "NormalizationTransform",
    "NormalizationTransform(d, norm=2.0): rows scaled to unit L2 norm.",
    &VTType, Norm_init, NULL, NULL);
static PyGetSetDef Hadamard_getset[] = {
    {"seed", (getter)Hadamard_get_seed, NULL, "the random signs' seed", NULL},
    {NULL, NULL, NULL, NULL, NULL}};
static PyTypeObject HadamardType = VT_TYPE(
    "HadamardRotation",
    "HadamardRotation(d, seed=12345): zero-pads to the next power of 2 and "
    "applies three rounds of random signs and Walsh-Hadamard transform "
    "(an orthogonal map; d_out is the power of 2).",
    &VTType, Hadamard_init, NULL, Hadamard_getset);
static PyTypeObject CenterType = VT_TYPE(
    "CenteringTransform",
    "CenteringTransform(d): subtracts the training mean.", &VTType,
    Center_init, NULL, Center_getset);

/* ========================================================================= */
/* The chain: a list with FAISS's std::vector methods                        */
/* ========================================================================= */
static PyObject *Chain_at(PyObject *self, PyObject *arg) {
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= PyList_GET_SIZE(self)) {
        PyErr_Format(PyExc_IndexError, "chain.at(%zd): out of range (size %zd)",
                     i, PyList_GET_SIZE(self));
        return NULL;
    }
    PyObject *r = PyList_GET_ITEM(self, i);
    Py_INCREF(r);
    return r;
}

static PyObject *Chain_size(PyObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromSsize_t(PyList_GET_SIZE(self));
}

static PyMethodDef Chain_methods[] = {
    {"at", (PyCFunction)Chain_at, METH_O, "at(i) -> transform i"},
    {"size", (PyCFunction)Chain_size, METH_NOARGS, "size() -> len(chain)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject VTChainType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.VectorTransformVector",
    .tp_basicsize = sizeof(PyListObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The transforms of an IndexPreTransform (a snapshot list).",
    .tp_methods = Chain_methods,
};

/* ========================================================================= */
/* IndexPreTransform                                                         */
/* ========================================================================= */
static VTObject *get_free_vt(PyObject *o) {
    if (!PyObject_TypeCheck(o, &VTType)) {
        PyErr_Format(PyExc_TypeError,
                     "expected a vecdex VectorTransform, got %.200s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    VTObject *v = (VTObject *)o;
    if (vt_ready(v) < 0) return NULL;
    if (v->owner || v->adopting) {
        PyErr_SetString(PyExc_ValueError,
                        "this transform already belongs to an "
                        "IndexPreTransform; make a new one");
        return NULL;
    }
    return v;
}

static vdx_status build_pt(vdx_index *sub, void *ctx, vdx_index **out) {
    VTObject *v = ctx;
    return vdx_index_pretransform_new(v ? v->vt : NULL, sub, out);
}

static int PT_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"a", "b", NULL};
    PyObject *a = NULL, *b = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:IndexPreTransform", kwlist,
                                     &a, &b))
        return -1;
    PyObject *io = b ? b : a;
    VTObject *v = NULL;
    if (b && !(v = get_free_vt(a))) return -1;
    if (!PyObject_TypeCheck(io, &IndexType)) {
        PyErr_Format(PyExc_TypeError,
                     "IndexPreTransform: expected ([transform,] index), got "
                     "%.200s for the index",
                     Py_TYPE(io)->tp_name);
        return -1;
    }
    if (v) v->adopting = 1;
    int rc = index_adopt(self, io, build_pt, v);
    if (v) {
        v->adopting = 0;
        if (rc == 0) { /* the tree owns the C transform now */
            v->owner = self->owner;
            self->owner->refs++;
        }
    }
    return rc;
}

static PyObject *PT_prepend(IndexObject *self, PyObject *arg) {
    if (mutable_(self, "prepend_transform") < 0) return NULL;
    VTObject *v = get_free_vt(arg);
    if (!v) return NULL;
    v->adopting = 1;
    cerr e;
    owner_t *o = self->owner;
    RUN_LOCKED(o, wr, e, vdx_index_pretransform_prepend(self->ix, v->vt));
    v->adopting = 0;
    if (e.st != VDX_OK) return raise_cerr(&e);
    v->owner = o;
    o->refs++;
    Py_RETURN_NONE;
}

static PyObject *PT_get_chain(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    PyObject *l = PyObject_CallNoArgs((PyObject *)&VTChainType);
    if (!l) return NULL;
    owner_rdlock_gil(self->owner);
    int64_t n = vdx_index_pretransform_chain_size(self->ix);
    vdx_vt *vts[64];
    if (n > 64) n = 64;
    for (int64_t i = 0; i < n; i++)
        vts[i] = vdx_index_pretransform_chain(self->ix, i);
    rw_rdunlock(&self->owner->lock);
    for (int64_t i = 0; i < n; i++) {
        PyObject *w = wrap_vt(vts[i], self->owner);
        if (!w || PyList_Append(l, w) < 0) {
            Py_XDECREF(w);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(w);
    }
    return l;
}

static PyObject *PT_apply_chain(IndexObject *self, PyObject *xo) {
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    vdx_index *sub = vdx_index_pretransform_index(self->ix);
    npy_intp dims[2] = {PyArray_DIM(x, 0), (npy_intp)vdx_index_d(sub)};
    PyArrayObject *y = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    if (!y) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    int64_t n = dims[0];
    const float *xp = PyArray_DATA(x);
    float *yp = PyArray_DATA(y);
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_pretransform_apply(self->ix, n, xp, yp));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(y);
        return raise_cerr(&e);
    }
    return (PyObject *)y;
}

static PyMethodDef PT_methods[] = {
    {"prepend_transform", (PyCFunction)PT_prepend, METH_O,
     "prepend_transform(vt): puts vt first in the chain (takes it)."},
    {"apply_chain", (PyCFunction)PT_apply_chain, METH_O,
     "apply_chain(x) -> x transformed by the whole chain."},
    {"apply_py", (PyCFunction)PT_apply_chain, METH_O,
     "apply_py(x): as apply_chain(x)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef PT_getset[] = {
    {"index", (getter)Index_get_sub, NULL, "the sub-index", NULL},
    {"chain", (getter)PT_get_chain, NULL,
     "the transforms, in order (a list snapshot with at() / size())", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexPreTransformType = INDEX_TYPE_BODY(
    "IndexPreTransform",
    "IndexPreTransform([vt,] index): applies the chain of transforms, then "
    "the sub-index (built for the chain's output dimension).  Takes "
    "ownership of both.",
    &IndexType, PT_init, PT_methods, PT_getset);

/* faiss.downcast_VectorTransform: objects already have their class. */
static PyObject *mod_downcast_vt(PyObject *m, PyObject *arg) {
    (void)m;
    if (!PyObject_TypeCheck(arg, &VTType)) {
        PyErr_Format(PyExc_TypeError, "expected a VectorTransform, got %.200s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_INCREF(arg);
    return arg;
}

static PyObject *mod_serialize_vt(PyObject *m, PyObject *arg) {
    (void)m;
    if (!PyObject_TypeCheck(arg, &VTType)) {
        PyErr_Format(PyExc_TypeError, "expected a VectorTransform, got %.200s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    VTObject *self = (VTObject *)arg;
    if (vt_ready(self) < 0) return NULL;
    uint8_t *buf = NULL;
    size_t size = 0;
    cerr e;
    VT_RUN(self, rd, e, vdx_serialize_vt(self->vt, &buf, &size));
    if (e.st != VDX_OK) return raise_cerr(&e);
    npy_intp n = (npy_intp)size;
    PyObject *a = PyArray_SimpleNew(1, &n, NPY_UINT8);
    if (a) memcpy(PyArray_DATA((PyArrayObject *)a), buf, size);
    vdx_free_buffer(buf);
    return a;
}

static PyObject *mod_deserialize_vt(PyObject *m, PyObject *arg) {
    (void)m;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    vdx_vt *vt = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_deserialize_vt(view.buf, (size_t)view.len, &vt));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (e.st != VDX_OK) return raise_cerr(&e);
    PyTypeObject *t = class_for_vt(vt);
    VTObject *obj = (VTObject *)t->tp_alloc(t, 0);
    if (!obj) {
        vdx_vt_free(vt);
        return NULL;
    }
    obj->vt = vt;
    return (PyObject *)obj;
}

static PyMethodDef vt_functions[] = {
    {"serialize_VectorTransform", (PyCFunction)mod_serialize_vt, METH_O,
     "serialize_VectorTransform(vt) -> uint8 array in FAISS's format."},
    {"deserialize_VectorTransform", (PyCFunction)mod_deserialize_vt, METH_O,
     "deserialize_VectorTransform(data) -> VectorTransform (bytes-like or "
     "uint8 array)."},
    {"downcast_VectorTransform", (PyCFunction)mod_downcast_vt, METH_O,
     "downcast_VectorTransform(vt) -> vt (objects already have their "
     "class)."},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_transform(PyObject *m) {
    VTChainType.tp_base = &PyList_Type;
    PyTypeObject *types[] = {&VTType,   &LinearTransformType, &RRType,
                             &PCAType,  &OPQType,             &NormType,
                             &CenterType, &VTChainType, &HadamardType,
                             &IndexPreTransformType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    return PyModule_AddFunctions(m, vt_functions);
}
