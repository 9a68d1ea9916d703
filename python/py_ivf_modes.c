/*
 * py_ivf_modes.c — FAISS's IndexIVF.parallel_mode, and the one bit of it
 * that changes results: PARALLEL_MODE_NO_HEAP_INIT (1024).
 *
 * parallel_mode picks how FAISS splits a search over its OpenMP threads;
 * vecdex picks its own split, so the value is kept (a class default of 0,
 * an instance attribute once set) and does not change the results, as it
 * does not in FAISS.  With NO_HEAP_INIT, search_preassigned(..., D=, I=)
 * adds its results to those already in D and I instead of overwriting
 * them: FAISS code scans the lists in several passes into one result heap
 * (a faiss.ResultHeap's D and I).  The k best of the 2k are kept, the ones
 * already there first on ties.
 */
#include "py_vecdex.h"

#define NO_HEAP_INIT 1024

int ivf_no_heap_init(PyObject *self) {
    PyObject *v = PyObject_GetAttrString(self, "parallel_mode");
    if (!v) {
        PyErr_Clear();
        return 0;
    }
    long m = PyLong_AsLong(v);
    Py_DECREF(v);
    if (m == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return (m & NO_HEAP_INIT) != 0;
}

/* Merges row by row; larger_better for inner products.  0, or -1 with
 * MemoryError. */
int merge_knn_rows(int64_t n, int64_t k, int larger_better, float *dis,
                   int64_t *ids, const float *new_dis, const int64_t *new_ids) {
    float *md = PyMem_Malloc((size_t)(k > 0 ? k : 1) * sizeof(float));
    int64_t *ml = PyMem_Malloc((size_t)(k > 0 ? k : 1) * sizeof(int64_t));
    if (!md || !ml) {
        PyMem_Free(md);
        PyMem_Free(ml);
        PyErr_NoMemory();
        return -1;
    }
    for (int64_t q = 0; q < n; q++) {
        float *d = dis + q * k;
        int64_t *l = ids + q * k;
        const float *dn = new_dis + q * k;
        const int64_t *ln = new_ids + q * k;
        /* both rows hold their best first (a ResultHeap's are sorted, the
         * search's are); the merge keeps that order, old entries first on
         * ties; an id of -1 is an empty slot and loses to anything */
        int64_t a = 0, b = 0;
        for (int64_t j = 0; j < k; j++) {
            int take_old;
            if (a >= k) take_old = 0;
            else if (b >= k) take_old = 1;
            else if (l[a] < 0) take_old = ln[b] < 0;
            else if (ln[b] < 0) take_old = 1;
            else take_old = larger_better ? d[a] >= dn[b] : d[a] <= dn[b];
            if (take_old) {
                md[j] = d[a];
                ml[j] = l[a++];
            } else {
                md[j] = dn[b];
                ml[j] = ln[b++];
            }
        }
        memcpy(d, md, (size_t)k * sizeof(float));
        memcpy(l, ml, (size_t)k * sizeof(int64_t));
    }
    PyMem_Free(md);
    PyMem_Free(ml);
    return 0;
}

int pyvdx_init_ivf_modes(PyObject *m) {
    (void)m;
    static const struct { const char *name; long v; } attrs[] = {
        {"parallel_mode", 0},
        {"PARALLEL_MODE_NO_HEAP_INIT", NO_HEAP_INIT},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        PyObject *v = PyLong_FromLong(attrs[i].v);
        if (!v || PyDict_SetItemString(IndexIVFType.tp_dict, attrs[i].name, v) < 0) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
    }
    PyType_Modified(&IndexIVFType);
    return 0;
}
