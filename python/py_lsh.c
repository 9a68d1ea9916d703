/*
 * py_lsh.c — IndexLSH(d, nbits, rotate_data=True, train_thresholds=False):
 * binary codes searched by Hamming distance, as FAISS's IndexLSH.
 */
#include "py_vecdex.h"

static int IndexLSH_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "nbits", "rotate_data", "train_thresholds",
                             NULL};
    long long d;
    int nbits, rotate = 1, tt = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Li|pp:IndexLSH", kwlist, &d,
                                     &nbits, &rotate, &tt))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_lsh_new(d, nbits, rotate, tt, &ix);
    return index_take_root(self, st, ix);
}

static PyObject *LSH_get(IndexObject *self, void *c) {
    if (ready(self) < 0) return NULL;
    switch ((int)(intptr_t)c) {
    case 0: return PyLong_FromLong(vdx_index_lsh_nbits(self->ix));
    case 1: return PyBool_FromLong(vdx_index_lsh_rotate_data(self->ix));
    case 2: return PyBool_FromLong(vdx_index_lsh_train_thresholds(self->ix));
    default:
        return PyLong_FromSize_t(vdx_index_lsh_code_size(self->ix));
    }
}

/* A copy of the thresholds (empty before training). */
static PyObject *LSH_get_thresholds(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    owner_rdlock_gil(self->owner);
    const float *t = vdx_index_lsh_thresholds(self->ix);
    npy_intp n = t ? vdx_index_lsh_nbits(self->ix) : 0;
    PyArrayObject *a = (PyArrayObject *)PyArray_ZEROS(1, &n, NPY_FLOAT32, 0);
    if (a && n) memcpy(PyArray_DATA(a), t, (size_t)n * sizeof(float));
    rw_rdunlock(&self->owner->lock);
    return (PyObject *)a;
}

static PyObject *LSH_sa_encode(IndexObject *self, PyObject *xo) {
    if (ready(self) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    npy_intp dims[2] = {PyArray_DIM(x, 0),
                        (npy_intp)vdx_index_lsh_code_size(self->ix)};
    PyArrayObject *c = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_UINT8, 0);
    if (!c) {
        Py_DECREF(x);
        return NULL;
    }
    cerr e;
    RUN_LOCKED(self->owner, rd, e,
               vdx_index_lsh_encode(self->ix, dims[0], PyArray_DATA(x),
                                    PyArray_DATA(c)));
    Py_DECREF(x);
    if (e.st != VDX_OK) {
        Py_DECREF(c);
        return raise_cerr(&e);
    }
    return (PyObject *)c;
}

static PyMethodDef IndexLSH_methods[] = {
    {"sa_encode", (PyCFunction)LSH_sa_encode, METH_O,
     "sa_encode(x) -> uint8 array (n, code_size): the binary codes, bit j "
     "in byte j // 8, LSB first (as FAISS)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef IndexLSH_getset[] = {
    {"nbits", (getter)LSH_get, NULL, "bits per code", (void *)0},
    {"rotate_data", (getter)LSH_get, NULL, "random rotation before the signs",
     (void *)1},
    {"train_thresholds", (getter)LSH_get, NULL,
     "per-bit median thresholds learnt by train", (void *)2},
    {"code_size", (getter)LSH_get, NULL, "bytes per code", (void *)3},
    {"thresholds", (getter)LSH_get_thresholds, NULL,
     "the nbits thresholds (a copy; empty before training)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexLSHType = INDEX_TYPE_BODY(
    "IndexLSH",
    "IndexLSH(d, nbits, rotate_data=True, train_thresholds=False): binary "
    "codes of nbits sign bits, searched by Hamming distance (as FAISS).",
    &IndexType, IndexLSH_init, IndexLSH_methods, IndexLSH_getset);

int pyvdx_init_lsh(PyObject *m) { return add_type(m, &IndexLSHType); }
