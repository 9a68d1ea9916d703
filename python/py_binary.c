/*
 * py_binary.c — the Hamming kernels of the binary indexes for Python:
 * _hamming_knn, _hamming_range, _hamming_distances.  The index classes
 * (IndexBinaryFlat, IndexBinaryIVF, ...) are in vecdex/_binary.py over
 * these calls, which release the GIL while they run.
 */
#include "py_vecdex.h"

#include <string.h>

/* obj as a C-contiguous uint8 (n, code_size) matrix, or ShapeError */
static PyArrayObject *as_codes(PyObject *obj, Py_ssize_t code_size,
                               const char *what) {
    PyArrayObject *a = as_array(obj, NPY_UINT8);
    if (!a) return NULL;
    if (PyArray_NDIM(a) != 2 || PyArray_DIM(a, 1) != code_size) {
        char buf[64];
        format_shape(buf, sizeof buf, PyArray_NDIM(a), PyArray_DIMS(a));
        PyErr_Format(ShapeError, "%s: expected uint8 codes of shape (n, %zd), "
                     "got %s", what, code_size, buf);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

static int parse2(PyObject *args, PyObject **xq, PyObject **xb,
                  Py_ssize_t *cs, PyArrayObject **aq, PyArrayObject **ab,
                  const char *what, const char *fmt, void *extra) {
    if (extra) {
        if (!PyArg_ParseTuple(args, fmt, xq, xb, cs, extra)) return -1;
    } else if (!PyArg_ParseTuple(args, fmt, xq, xb, cs)) {
        return -1;
    }
    if (*cs <= 0) {
        PyErr_Format(PyExc_ValueError, "%s: code_size must be > 0, got %zd",
                     what, *cs);
        return -1;
    }
    *aq = as_codes(*xq, *cs, what);
    if (!*aq) return -1;
    *ab = as_codes(*xb, *cs, what);
    if (!*ab) {
        Py_DECREF(*aq);
        return -1;
    }
    return 0;
}

static PyObject *mod_hamming_knn(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *xq, *xb;
    Py_ssize_t cs;
    long long k;
    PyObject *idso = Py_None;
    PyArrayObject *aq, *ab, *ids = NULL;
    if (!PyArg_ParseTuple(args, "OOnL|O", &xq, &xb, &cs, &k, &idso))
        return NULL;
    PyObject *args4 = Py_BuildValue("OOnL", xq, xb, cs, k);
    if (!args4) return NULL;
    int rc = parse2(args4, &xq, &xb, &cs, &aq, &ab, "hamming_knn", "OOnL", &k);
    Py_DECREF(args4);
    if (rc < 0) return NULL;
    if (idso != Py_None) {
        ids = as_vector(idso, NPY_INT64, PyArray_DIM(ab, 0), "hamming_knn ids");
        if (!ids) {
            Py_DECREF(aq);
            Py_DECREF(ab);
            return NULL;
        }
    }
    if (k <= 0) {
        Py_DECREF(aq);
        Py_DECREF(ab);
        PyErr_Format(ShapeError, "hamming_knn: k must be > 0, got %lld", k);
        return NULL;
    }
    npy_intp nq = PyArray_DIM(aq, 0), nb = PyArray_DIM(ab, 0);
    npy_intp dims[2] = {nq, (npy_intp)k};
    PyArrayObject *Dis = NULL, *Lab = NULL;
    if ((double)nq * (double)k > 1e10) {
        PyErr_Format(PyExc_MemoryError, "hamming_knn: nq * k = %lld results "
                     "is too many", (long long)nq * k);
        goto fail;
    }
    Dis = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT32, 0);
    Lab = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT64, 0);
    if (!Dis || !Lab) goto fail;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_hamming_knn(PyArray_DATA(aq), nq, PyArray_DATA(ab),
                                     nb, (size_t)cs,
                                     ids ? PyArray_DATA(ids) : NULL, k,
                                     PyArray_DATA(Dis),
                                     PyArray_DATA(Lab)));
    Py_END_ALLOW_THREADS
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        goto fail;
    }
    Py_DECREF(aq);
    Py_DECREF(ab);
    Py_XDECREF(ids);
    return Py_BuildValue("NN", Dis, Lab);
fail:
    Py_DECREF(aq);
    Py_DECREF(ab);
    Py_XDECREF(ids);
    Py_XDECREF(Dis);
    Py_XDECREF(Lab);
    return NULL;
}

static PyObject *mod_hamming_distances(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *xq, *xb;
    Py_ssize_t cs;
    PyArrayObject *aq, *ab;
    if (parse2(args, &xq, &xb, &cs, &aq, &ab, "hamming_distances", "OOn",
               NULL) < 0)
        return NULL;
    npy_intp dims[2] = {PyArray_DIM(aq, 0), PyArray_DIM(ab, 0)};
    PyArrayObject *Dis = NULL;
    if ((double)dims[0] * (double)dims[1] > 1e10) {
        PyErr_SetString(PyExc_MemoryError, "hamming_distances: nq * nb is "
                        "too large");
        goto fail;
    }
    Dis = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT32, 0);
    if (!Dis) goto fail;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_hamming_distances(PyArray_DATA(aq), dims[0],
                                           PyArray_DATA(ab), dims[1],
                                           (size_t)cs, PyArray_DATA(Dis)));
    Py_END_ALLOW_THREADS
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        goto fail;
    }
    Py_DECREF(aq);
    Py_DECREF(ab);
    return (PyObject *)Dis;
fail:
    Py_DECREF(aq);
    Py_DECREF(ab);
    Py_XDECREF(Dis);
    return NULL;
}

static PyObject *mod_hamming_range(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *xq, *xb;
    Py_ssize_t cs;
    int radius;
    PyArrayObject *aq, *ab;
    if (parse2(args, &xq, &xb, &cs, &aq, &ab, "hamming_range", "OOni",
               &radius) < 0)
        return NULL;
    npy_intp nq = PyArray_DIM(aq, 0), nb = PyArray_DIM(ab, 0);
    vdx_range_result *r = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_hamming_range_search(PyArray_DATA(aq), nq,
                                              PyArray_DATA(ab), nb, (size_t)cs,
                                              radius, &r));
    Py_END_ALLOW_THREADS
    Py_DECREF(aq);
    Py_DECREF(ab);
    if (e.st != VDX_OK) return raise_cerr(&e);
    npy_intp n1 = nq + 1, tot = (npy_intp)r->lims[nq];
    PyArrayObject *lims = (PyArrayObject *)PyArray_EMPTY(1, &n1, NPY_UINT64, 0);
    PyArrayObject *Dis = (PyArrayObject *)PyArray_EMPTY(1, &tot, NPY_INT32, 0);
    PyArrayObject *Lab = (PyArrayObject *)PyArray_EMPTY(1, &tot, NPY_INT64, 0);
    if (!lims || !Dis || !Lab) {
        Py_XDECREF(lims);
        Py_XDECREF(Dis);
        Py_XDECREF(Lab);
        vdx_range_result_free(r);
        return NULL;
    }
    memcpy(PyArray_DATA(lims), r->lims, (size_t)n1 * sizeof(int64_t));
    int32_t *dd = PyArray_DATA(Dis);
    for (npy_intp i = 0; i < tot; i++) dd[i] = (int32_t)r->distances[i];
    if (tot) memcpy(PyArray_DATA(Lab), r->labels, (size_t)tot * sizeof(int64_t));
    vdx_range_result_free(r);
    return Py_BuildValue("NNN", lims, Dis, Lab);
}

/* _hamming_knn_lists(xq, code_size, codes, ids, assign, k): codes and ids
 * are sequences of nlist arrays (list l: (n_l, code_size) uint8, n_l int64),
 * assign an int64 (nq, nprobe) array of list numbers. */
static PyObject *mod_hamming_knn_lists(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *xq, *codes, *ids, *asg;
    Py_ssize_t cs;
    long long k;
    if (!PyArg_ParseTuple(args, "OnOOOL", &xq, &cs, &codes, &ids, &asg, &k))
        return NULL;
    if (cs <= 0 || k <= 0) {
        PyErr_Format(ShapeError, "hamming_knn_lists: code_size and k must be "
                     "> 0, got %zd and %lld", cs, k);
        return NULL;
    }
    PyObject *cseq = PySequence_Fast(codes, "codes must be a sequence");
    if (!cseq) return NULL;
    PyObject *iseq = PySequence_Fast(ids, "ids must be a sequence");
    if (!iseq) {
        Py_DECREF(cseq);
        return NULL;
    }
    Py_ssize_t nlist = PySequence_Fast_GET_SIZE(cseq), got = 0;
    PyArrayObject **keep = NULL, *aq = NULL, *aa = NULL, *Dis = NULL, *Lab = NULL;
    const uint8_t **lc = NULL;
    const int64_t **li = NULL;
    int64_t *ls = NULL;
    if (PySequence_Fast_GET_SIZE(iseq) != nlist) {
        PyErr_SetString(ShapeError, "hamming_knn_lists: codes and ids differ "
                        "in length");
        goto fail;
    }
    keep = PyMem_Calloc((size_t)(2 * nlist + 1), sizeof *keep);
    lc = PyMem_Calloc((size_t)nlist + 1, sizeof *lc);
    li = PyMem_Calloc((size_t)nlist + 1, sizeof *li);
    ls = PyMem_Calloc((size_t)nlist + 1, sizeof *ls);
    if (!keep || !lc || !li || !ls) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t l = 0; l < nlist; l++) {
        PyArrayObject *c = as_array(PySequence_Fast_GET_ITEM(cseq, l), NPY_UINT8);
        if (!c) goto fail;
        keep[got++] = c;
        PyArrayObject *d = as_array(PySequence_Fast_GET_ITEM(iseq, l), NPY_INT64);
        if (!d) goto fail;
        keep[got++] = d;
        npy_intp n = PyArray_SIZE(d);
        if (PyArray_SIZE(c) != n * cs) {
            PyErr_Format(ShapeError, "hamming_knn_lists: list %zd has %zd "
                         "ids but %zd code bytes", l, (Py_ssize_t)n,
                         (Py_ssize_t)PyArray_SIZE(c));
            goto fail;
        }
        lc[l] = PyArray_DATA(c);
        li[l] = PyArray_DATA(d);
        ls[l] = n;
    }
    aq = as_codes(xq, cs, "hamming_knn_lists");
    if (!aq) goto fail;
    aa = as_array(asg, NPY_INT64);
    if (!aa) goto fail;
    npy_intp nq = PyArray_DIM(aq, 0);
    if (PyArray_NDIM(aa) != 2 || PyArray_DIM(aa, 0) != nq) {
        PyErr_SetString(ShapeError, "hamming_knn_lists: assign must be "
                        "(nq, nprobe)");
        goto fail;
    }
    npy_intp dims[2] = {nq, (npy_intp)k};
    Dis = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT32, 0);
    Lab = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT64, 0);
    if (!Dis || !Lab) goto fail;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_hamming_knn_lists(
                         PyArray_DATA(aq), nq, (size_t)cs, nlist, lc, li, ls,
                         PyArray_DATA(aa), PyArray_DIM(aa, 1), k,
                         PyArray_DATA(Dis), PyArray_DATA(Lab)));
    Py_END_ALLOW_THREADS
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        goto fail;
    }
    for (Py_ssize_t j = 0; j < got; j++) Py_DECREF(keep[j]);
    PyMem_Free(keep);
    PyMem_Free(lc);
    PyMem_Free(li);
    PyMem_Free(ls);
    Py_DECREF(cseq);
    Py_DECREF(iseq);
    Py_DECREF(aq);
    Py_DECREF(aa);
    return Py_BuildValue("NN", Dis, Lab);
fail:
    if (keep)
        for (Py_ssize_t j = 0; j < got; j++) Py_DECREF(keep[j]);
    PyMem_Free(keep);
    PyMem_Free(lc);
    PyMem_Free(li);
    PyMem_Free(ls);
    Py_DECREF(cseq);
    Py_DECREF(iseq);
    Py_XDECREF(aq);
    Py_XDECREF(aa);
    Py_XDECREF(Dis);
    Py_XDECREF(Lab);
    return NULL;
}

static PyMethodDef binary_methods[] = {
    {"_hamming_knn_lists", (PyCFunction)mod_hamming_knn_lists, METH_VARARGS,
     "_hamming_knn_lists(xq, code_size, codes, ids, assign, k) -> (D, I): "
     "k-NN over inverted lists scanned in assign's order."},
    {"_hamming_knn", (PyCFunction)mod_hamming_knn, METH_VARARGS,
     "_hamming_knn(xq, xb, code_size, k) -> (Dis int32, Lab int64): exact "
     "Hamming k-NN, ties by position."},
    {"_hamming_distances", (PyCFunction)mod_hamming_distances, METH_VARARGS,
     "_hamming_distances(xq, xb, code_size) -> int32 (nq, nb)."},
    {"_hamming_range", (PyCFunction)mod_hamming_range, METH_VARARGS,
     "_hamming_range(xq, xb, code_size, radius) -> (lims, Dis, Lab): codes at "
     "distance < radius."},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_binary(PyObject *m) {
    return PyModule_AddFunctions(m, binary_methods);
}
