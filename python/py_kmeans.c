/*
 * py_kmeans.c — Kmeans, FAISS's Python k-means object, over
 * vdx_kmeans_train (Lloyd's algorithm as FAISS's Clustering runs it).
 *
 * As in FAISS: the clustering parameters are keyword arguments (kept as
 * attributes, also reachable as `km.cp.<name>`); train() fills `centroids`
 * (k x d float32), `obj` (the objective after each iteration of each run)
 * and `index` (an IndexFlatL2, or IndexFlatIP when spherical, holding the
 * centroids) and returns the last objective; assign() searches `index`.
 * Too few training points for k give a Python warning with FAISS's text
 * (FAISS prints it); n < k is an InvalidArgumentError.
 */
#include "py_vecdex.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    long long d, k;
    vdx_kmeans_params p;
    int verbose;
    PyObject *centroids, *obj, *iteration_stats, *index;
    PyObject *dict;
} KmeansObject;

static int Kmeans_traverse(KmeansObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->centroids);
    Py_VISIT(self->obj);
    Py_VISIT(self->iteration_stats);
    Py_VISIT(self->index);
    Py_VISIT(self->dict);
    return 0;
}

static int Kmeans_clear(KmeansObject *self) {
    Py_CLEAR(self->centroids);
    Py_CLEAR(self->obj);
    Py_CLEAR(self->iteration_stats);
    Py_CLEAR(self->index);
    Py_CLEAR(self->dict);
    return 0;
}

static void Kmeans_dealloc(KmeansObject *self) {
    PyObject_GC_UnTrack(self);
    Kmeans_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Kmeans_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    KmeansObject *self = (KmeansObject *)type->tp_alloc(type, 0);
    if (self) vdx_kmeans_params_init(&self->p);
    return (PyObject *)self;
}

/* A new empty IndexFlatIP (spherical) or IndexFlatL2 of dimension d. */
static PyObject *new_flat(long long d, int spherical) {
    PyTypeObject *t = spherical ? &IndexFlatIPType : &IndexFlatL2Type;
    return PyObject_CallFunction((PyObject *)t, "L", d);
}

static int Kmeans_init(KmeansObject *self, PyObject *args, PyObject *kw) {
    long long d, k;
    if (!PyArg_ParseTuple(args, "LL:Kmeans", &d, &k)) return -1;
    if (d <= 0 || k <= 0) {
        PyErr_Format(InvalidArgumentError,
                     "Kmeans: d=%lld and k=%lld must be positive", d, k);
        return -1;
    }
    self->d = d;
    self->k = k;
    vdx_kmeans_params_init(&self->p);
    self->verbose = 0;
    /* Known parameters go through their attribute setters (type checks);
     * others (gpu, ...) are only stored. */
    if (kw) {
        PyObject *key, *val;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kw, &pos, &key, &val))
            if (PyObject_SetAttr((PyObject *)self, key, val) < 0) return -1;
    }
    Py_CLEAR(self->centroids);
    Py_CLEAR(self->obj);
    Py_CLEAR(self->iteration_stats);
    Py_XSETREF(self->index, new_flat(d, self->p.spherical));
    return self->index ? 0 : -1;
}

/* --- train / assign ------------------------------------------------------- */
static PyObject *call_method(PyObject *o, const char *name, PyObject *arg) {
    return arg ? PyObject_CallMethod(o, name, "O", arg)
               : PyObject_CallMethod(o, name, NULL);
}

/* index.reset(); index.add(centroids) — as FAISS leaves it after train */
static int fill_index(KmeansObject *self) {
    if (!self->index || self->index == Py_None) {
        Py_XSETREF(self->index, new_flat(self->d, self->p.spherical));
        if (!self->index) return -1;
    }
    PyObject *r = call_method(self->index, "reset", NULL);
    if (!r) return -1;
    Py_DECREF(r);
    r = call_method(self->index, "add", self->centroids);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *Kmeans_train(KmeansObject *self, PyObject *args,
                              PyObject *kw) {
    static char *kwlist[] = {"x", "weights", "init_centroids", NULL};
    PyObject *xo, *wo = Py_None, *io = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO:train", kwlist, &xo, &wo,
                                     &io))
        return NULL;
    if (wo != Py_None || io != Py_None) {
        PyErr_Format(PyExc_NotImplementedError,
                     "Kmeans.train: %s is not supported by vecdex",
                     wo != Py_None ? "weights" : "init_centroids");
        return NULL;
    }
    if (self->d <= 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Kmeans is not initialised (was __init__ called?)");
        return NULL;
    }
    PyArrayObject *x = as_matrix(xo, self->d, "x");
    if (!x) return NULL;
    int64_t n = PyArray_DIM(x, 0), k = self->k, d = self->d;
    vdx_kmeans_params p = self->p;
    npy_intp cdims[2] = {(npy_intp)k, (npy_intp)d};
    npy_intp nobj = p.niter > 0 && p.nredo > 0 ? (npy_intp)p.niter * p.nredo
                                               : 0;
    PyArrayObject *cent = NULL, *obj32 = NULL;
    PyObject *obj = NULL, *stats = NULL;
    if (k <= 0) { /* k is writable */
        PyErr_Format(InvalidArgumentError, "Kmeans: k=%lld must be positive",
                     (long long)k);
        goto fail;
    }
    cent = (PyArrayObject *)PyArray_SimpleNew(2, cdims, NPY_FLOAT32);
    obj32 = (PyArrayObject *)PyArray_SimpleNew(1, &nobj, NPY_FLOAT32);
    if (!cent || !obj32) goto fail;
    if (self->verbose)
        PySys_WriteStdout("Clustering %lld points in %lldD to %lld clusters, "
                          "redo %d times, %d iterations\n",
                          (long long)n, (long long)d, (long long)k, p.nredo,
                          p.niter);
    cerr e;
    int warnings = 0;
    const float *xp = PyArray_DATA(x);
    float *cp = PyArray_DATA(cent);
    float *op = nobj ? PyArray_DATA(obj32) : NULL;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_kmeans_train(d, k, n, xp, &p, cp, op, &warnings));
    Py_END_ALLOW_THREADS
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        goto fail;
    }
    obj = PyArray_SimpleNew(1, &nobj, NPY_FLOAT64); /* as FAISS's */
    stats = PyList_New(nobj);
    if (!obj || !stats) goto fail;
    for (npy_intp i = 0; i < nobj; i++) {
        double v = ((const float *)PyArray_DATA(obj32))[i];
        ((double *)PyArray_DATA((PyArrayObject *)obj))[i] = v;
        PyObject *st = Py_BuildValue("{s:d}", "obj", v);
        if (!st) goto fail;
        PyList_SET_ITEM(stats, i, st);
        if (self->verbose)
            PySys_WriteStdout("  Iteration %zd (run %zd): objective=%g\n",
                              (Py_ssize_t)(i % p.niter),
                              (Py_ssize_t)(i / p.niter), v);
    }
    if (self->verbose && (warnings & VDX_KMEANS_WARN_SUBSAMPLED))
        PySys_WriteStdout("Sampled a subset of %lld / %lld for training\n",
                          (long long)(k * p.max_points_per_centroid),
                          (long long)n);
    Py_XSETREF(self->centroids, (PyObject *)cent);
    Py_XSETREF(self->obj, obj);
    Py_XSETREF(self->iteration_stats, stats);
    cent = NULL;
    obj = stats = NULL;
    Py_CLEAR(obj32);
    Py_DECREF(x);
    x = NULL;
    if (fill_index(self) < 0) return NULL;
    if ((warnings & VDX_KMEANS_WARN_FEW_POINTS) &&
        PyErr_WarnFormat(PyExc_UserWarning, 1,
                         "WARNING clustering %lld points to %lld centroids: "
                         "please provide at least %lld training points",
                         (long long)n, (long long)k,
                         (long long)(k * p.min_points_per_centroid)) < 0)
        return NULL;
    npy_intp m = PyArray_DIM((PyArrayObject *)self->obj, 0);
    return PyFloat_FromDouble(
        m ? ((const double *)PyArray_DATA((PyArrayObject *)self->obj))[m - 1]
          : 0.0);
fail:
    Py_XDECREF(x);
    Py_XDECREF(cent);
    Py_XDECREF(obj32);
    Py_XDECREF(obj);
    Py_XDECREF(stats);
    return NULL;
}

static PyObject *Kmeans_assign(KmeansObject *self, PyObject *args,
                               PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:assign", kwlist, &xo))
        return NULL;
    if (!self->centroids || self->centroids == Py_None) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Kmeans.assign: should train before assigning");
        return NULL;
    }
    if (fill_index(self) < 0) return NULL;
    PyObject *r = PyObject_CallMethod(self->index, "search", "Oi", xo, 1);
    if (!r) return NULL;
    PyObject *dist = NULL, *lab = NULL; /* D, I (complex.h defines I) */
    if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2) {
        dist = PyObject_CallMethod(PyTuple_GET_ITEM(r, 0), "ravel", NULL);
        lab = dist ? PyObject_CallMethod(PyTuple_GET_ITEM(r, 1), "ravel", NULL)
                   : NULL;
    } else {
        PyErr_SetString(PyExc_TypeError,
                        "Kmeans.index.search did not return (D, I)");
    }
    Py_DECREF(r);
    if (!lab) {
        Py_XDECREF(dist);
        return NULL;
    }
    return Py_BuildValue("NN", dist, lab);
}

static PyObject *Kmeans_reset(KmeansObject *self, PyObject *args,
                              PyObject *kw) {
    static char *kwlist[] = {"k", NULL};
    PyObject *ko = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:reset", kwlist, &ko))
        return NULL;
    if (ko != Py_None) {
        long long k = PyLong_AsLongLong(ko);
        if (k == -1 && PyErr_Occurred()) return NULL;
        self->k = k;
    }
    Py_CLEAR(self->centroids);
    Py_CLEAR(self->obj);
    Py_CLEAR(self->iteration_stats);
    Py_RETURN_NONE;
}

/* --- attributes ----------------------------------------------------------- */
static PyObject *Kmeans_get_cp(KmeansObject *self, void *c) {
    (void)c;
    Py_INCREF(self); /* FAISS's km.cp.<param>: the parameters live here */
    return (PyObject *)self;
}

/* which: 0 = spherical, 1 = verbose, 2 = int_centroids */
static PyObject *Kmeans_get_flag(KmeansObject *self, void *which) {
    if (which == (void *)2) return PyBool_FromLong(self->p.int_centroids != 0);
    return PyBool_FromLong(which ? self->verbose : self->p.spherical);
}

static int Kmeans_set_flag(KmeansObject *self, PyObject *v, void *which) {
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    int b = PyObject_IsTrue(v);
    if (b < 0) return -1;
    if (which == (void *)2) self->p.int_centroids = b;
    else if (which) self->verbose = b;
    else self->p.spherical = b;
    return 0;
}

#define KM_OFF(f) offsetof(KmeansObject, f)
static PyMemberDef Kmeans_members[] = {
    {"d", T_LONGLONG, KM_OFF(d), READONLY, "vector dimension"},
    {"k", T_LONGLONG, KM_OFF(k), 0, "number of centroids"},
    {"niter", T_INT, KM_OFF(p.niter), 0, "iterations per run (25)"},
    {"nredo", T_INT, KM_OFF(p.nredo), 0,
     "runs; the one with the best objective wins (1)"},
    {"seed", T_LONGLONG, KM_OFF(p.seed), 0, "random seed (1234)"},
    {"max_points_per_centroid", T_LONGLONG,
     KM_OFF(p.max_points_per_centroid), 0,
     "train on a random subset above k * this many points (256)"},
    {"min_points_per_centroid", T_LONGLONG,
     KM_OFF(p.min_points_per_centroid), 0,
     "warn below k * this many points (39)"},
    {"centroids", T_OBJECT, KM_OFF(centroids), 0,
     "(k, d) float32 centroids; None before train"},
    {"obj", T_OBJECT, KM_OFF(obj), 0,
     "objective after each iteration of each run; None before train"},
    {"iteration_stats", T_OBJECT, KM_OFF(iteration_stats), 0,
     "per-iteration dicts ({'obj': ...}); None before train"},
    {"index", T_OBJECT, KM_OFF(index), 0,
     "IndexFlatL2 (IndexFlatIP when spherical) holding the centroids after "
     "train"},
    {NULL, 0, 0, 0, NULL}};

static PyGetSetDef Kmeans_getset[] = {
    {"int_centroids", (getter)Kmeans_get_flag, (setter)Kmeans_set_flag,
     "round the centroids to integers after each iteration (False)",
     (void *)2},
    {"spherical", (getter)Kmeans_get_flag, (setter)Kmeans_set_flag,
     "normalise the centroids (inner-product clustering)", (void *)0},
    {"verbose", (getter)Kmeans_get_flag, (setter)Kmeans_set_flag,
     "print progress to stdout", (void *)1},
    {"cp", (getter)Kmeans_get_cp, NULL,
     "the clustering parameters (this object)", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef Kmeans_methods[] = {
    {"train", METH_KW_FN(Kmeans_train), METH_VARARGS | METH_KEYWORDS,
     "train(x, weights=None, init_centroids=None) -> float: clusters the "
     "(n, d) vectors x; returns the last objective.  weights and "
     "init_centroids are not supported (NotImplementedError)."},
    {"assign", METH_KW_FN(Kmeans_assign), METH_VARARGS | METH_KEYWORDS,
     "assign(x) -> (D, I): distance to and number of the nearest centroid "
     "of each vector (1-D arrays)."},
    {"reset", METH_KW_FN(Kmeans_reset), METH_VARARGS | METH_KEYWORDS,
     "reset(k=None): forgets the centroids (and sets a new k)."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject KmeansType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.Kmeans",
    .tp_basicsize = sizeof(KmeansObject),
    .tp_dealloc = (destructor)Kmeans_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Kmeans(d, k, niter=25, nredo=1, seed=1234, spherical=False, "
              "verbose=False, max_points_per_centroid=256, "
              "min_points_per_centroid=39, **kwargs): k-means clustering "
              "(FAISS's faiss.Kmeans).",
    .tp_traverse = (traverseproc)Kmeans_traverse,
    .tp_clear = (inquiry)Kmeans_clear,
    .tp_methods = Kmeans_methods,
    .tp_members = Kmeans_members,
    .tp_getset = Kmeans_getset,
    .tp_dictoffset = offsetof(KmeansObject, dict),
    .tp_init = (initproc)Kmeans_init,
    .tp_new = Kmeans_new,
};

int pyvdx_init_kmeans(PyObject *m) { return add_type(m, &KmeansType); }
