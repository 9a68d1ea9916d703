/*
 * py_cp.c — ClusteringParameters (FAISS's name): the k-means settings of an
 * IVF index's coarse quantizer (`index.cp`), of a ProductQuantizer's
 * sub-spaces (`pq.cp`), or a free-standing set (`ClusteringParameters()`).
 * An attached object is a view: it points into the index or quantizer and
 * holds a reference to the Python object that keeps that memory alive, so
 * `index.cp.niter = 20` changes the next train() as in FAISS.
 */
#include "py_vecdex.h"

typedef struct {
    PyObject_HEAD
    vdx_kmeans_params *p;  /* into `owner`'s C object, or &own */
    vdx_kmeans_params own; /* free-standing storage */
    PyObject *owner;       /* keeps *p alive, or NULL */
} CPObject;

static PyTypeObject CPType;

PyObject *cp_view(vdx_kmeans_params *p, PyObject *owner) {
    if (!p) {
        PyErr_SetString(PyExc_AttributeError,
                        "this object has no clustering parameters");
        return NULL;
    }
    CPObject *o = (CPObject *)CPType.tp_alloc(&CPType, 0);
    if (!o) return NULL;
    o->p = p;
    Py_XINCREF(owner);
    o->owner = owner;
    return (PyObject *)o;
}

static PyObject *CP_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    CPObject *o = (CPObject *)type->tp_alloc(type, 0);
    if (!o) return NULL;
    vdx_kmeans_params_init(&o->own);
    o->p = &o->own;
    return (PyObject *)o;
}

static void CP_dealloc(CPObject *self) {
    Py_CLEAR(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

enum { F_NITER, F_NREDO, F_SEED, F_SPHERICAL, F_MAXP, F_MINP, F_VERBOSE,
       F_INTC };

static PyObject *CP_get(CPObject *self, void *c) {
    const vdx_kmeans_params *p = self->p;
    switch ((int)(intptr_t)c) {
    case F_NITER: return PyLong_FromLong(p->niter);
    case F_NREDO: return PyLong_FromLong(p->nredo);
    case F_SEED: return PyLong_FromLongLong((long long)p->seed);
    case F_SPHERICAL: return PyBool_FromLong(p->spherical);
    case F_INTC: return PyBool_FromLong(p->int_centroids != 0);
    case F_MAXP: return PyLong_FromLongLong((long long)p->max_points_per_centroid);
    case F_MINP: return PyLong_FromLongLong((long long)p->min_points_per_centroid);
    default: Py_RETURN_FALSE; /* verbose: vecdex never prints */
    }
}

static int CP_set(CPObject *self, PyObject *v, void *c) {
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete a parameter");
        return -1;
    }
    int f = (int)(intptr_t)c;
    long long x = f == F_SPHERICAL || f == F_VERBOSE || f == F_INTC ? PyObject_IsTrue(v)
                                                     : PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    vdx_kmeans_params *p = self->p;
    switch (f) {
    case F_NITER:
    case F_NREDO:
        if (x < 1 || x > 1000000) {
            PyErr_Format(PyExc_ValueError, "%s must be in 1..1000000, got %lld",
                         f == F_NITER ? "niter" : "nredo", x);
            return -1;
        }
        if (f == F_NITER) p->niter = (int)x;
        else p->nredo = (int)x;
        return 0;
    case F_SEED: p->seed = (int64_t)x; return 0;
    case F_SPHERICAL: p->spherical = x != 0; return 0;
    case F_INTC: p->int_centroids = x != 0; return 0;
    case F_MAXP:
    case F_MINP:
        if (x < 1) {
            PyErr_Format(PyExc_ValueError, "%s must be >= 1, got %lld",
                         f == F_MAXP ? "max_points_per_centroid"
                                     : "min_points_per_centroid", x);
            return -1;
        }
        if (f == F_MAXP) p->max_points_per_centroid = (int64_t)x;
        else p->min_points_per_centroid = (int64_t)x;
        return 0;
    default: return 0; /* verbose: accepted, vecdex never prints */
    }
}

#define CP_FIELD(name, id, doc) \
    {name, (getter)CP_get, (setter)CP_set, doc, (void *)(intptr_t)(id)}

static PyGetSetDef CP_getset[] = {
    CP_FIELD("niter", F_NITER, "k-means iterations per run"),
    CP_FIELD("nredo", F_NREDO, "runs; the best objective wins"),
    CP_FIELD("seed", F_SEED, "random seed"),
    CP_FIELD("spherical", F_SPHERICAL, "normalise the centroids"),
    CP_FIELD("int_centroids", F_INTC,
             "round the centroids to integers after each iteration"),
    CP_FIELD("max_points_per_centroid", F_MAXP,
             "sub-sample the training set above k times this"),
    CP_FIELD("min_points_per_centroid", F_MINP,
             "fewer training points than k times this is unusual"),
    CP_FIELD("verbose", F_VERBOSE, "accepted for FAISS code; vecdex prints nothing"),
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject CPType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.ClusteringParameters",
    .tp_basicsize = sizeof(CPObject),
    .tp_dealloc = (destructor)CP_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ClusteringParameters(): k-means settings (niter, nredo, seed, "
              "spherical, max/min_points_per_centroid); index.cp and pq.cp "
              "are views of an index's own",
    .tp_new = CP_new,
    .tp_getset = CP_getset,
};

int pyvdx_init_cp(PyObject *m) { return add_type(m, &CPType); }
