/*
 * py_pymethods.c — methods of the C types whose bodies are in Python
 * (vecdex/_pymethods.py): FAISS conveniences that are pure bookkeeping
 * over what the C API already gives (a DistanceComputer that asks the
 * index's own search, the PQ lookup tables from the centroids).  The
 * types are static, so such methods must sit in their C method tables;
 * each one here forwards (self, *args) to the function of the same name.
 */
#include "py_vecdex.h"

static PyObject *forward(const char *fn, PyObject *self, PyObject *args) {
    PyObject *mod = PyImport_ImportModule("vecdex._pymethods");
    if (!mod) return NULL;
    PyObject *f = PyObject_GetAttrString(mod, fn);
    Py_DECREF(mod);
    if (!f) return NULL;
    Py_ssize_t n = args ? PyTuple_GET_SIZE(args) : 0;
    PyObject *all = PyTuple_New(n + 1);
    if (!all) {
        Py_DECREF(f);
        return NULL;
    }
    Py_INCREF(self);
    PyTuple_SET_ITEM(all, 0, self);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        Py_INCREF(a);
        PyTuple_SET_ITEM(all, i + 1, a);
    }
    PyObject *r = PyObject_Call(f, all, NULL);
    Py_DECREF(all);
    Py_DECREF(f);
    return r;
}

#define FORWARD(name)                                              \
    PyObject *pym_##name(PyObject *self, PyObject *args) {         \
        return forward(#name, self, args);                         \
    }
FORWARD(get_distance_computer)
FORWARD(compute_distance_tables)
FORWARD(compute_inner_prod_tables)
FORWARD(compute_sdc_table)
FORWARD(sync_transposed_centroids)
FORWARD(clear_transposed_centroids)
FORWARD(compute_codes_with_assign_index)
FORWARD(get_CodePacker)

#define FORWARD_GET(name)                                          \
    PyObject *pym_get_##name(PyObject *self, void *c) {            \
        (void)c;                                                   \
        return forward("get_" #name, self, NULL);                  \
    }
FORWARD_GET(sdc_table)
FORWARD_GET(transposed_centroids)
FORWARD_GET(centroids_sq_lengths)
