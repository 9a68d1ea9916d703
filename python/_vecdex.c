/*
 * _vecdex.c — the CPython extension behind `import vecdex as faiss`: module
 * init, errors, owner records, array conversion and small module functions.
 * The other files are listed in py_vecdex.h.
 *
 * It mirrors FAISS's Python API (class names, argument names and defaults,
 * return types) on top of the C API in include/vecdex.h.  Everything heavy
 * runs with the GIL released.
 *
 * Ownership design
 * ----------------
 * vdx_index_idmap_new() takes ownership of the C sub-index, and
 * vdx_index_ivf_flat_new() of the quantizer, so one C allocation tree (an
 * IDMap and the index it wraps, an IVF index and its quantizer) may be
 * reachable from several Python objects: the IDMap wrapper and the wrapper
 * of its sub-index (`idmap.index`), the IVF wrapper and the wrapper of its
 * quantizer (`ivf.quantizer`).  Such a tree is owned by one `owner_t`: the
 * root C index, a count of the Python wrappers that point into the tree and
 * a readers-writer lock.  Every wrapper holds one count; the last wrapper to
 * die frees the root (and with it the whole tree).  Wrapping an index in an
 * IDMap, or making it the quantizer of an IVF index (both are "adoption",
 * index_adopt in py_index.c), just moves the owner's root up to the new
 * index, so the Python object of the sub-index stays valid for as long as
 * it lives, even after the IDMap wrapper is gone (as in FAISS).  The parent
 * wrapper holds a strong reference to its child's wrapper (`.index`,
 * `.quantizer`); the child holds only a borrowed back pointer (`parent`,
 * cleared by the parent when it dies), so there is no reference cycle and
 * an index is freed as soon as its last wrapper goes.  While the parent is
 * alive the child refuses add/remove/reset, which would desynchronise the
 * IDMap (or leave the IVF lists pointing at the wrong centroids).
 *
 * Concurrency: searches take the owner's lock shared, mutations take it
 * exclusive; the lock is only ever taken with the GIL released (or tried
 * without blocking while holding it), and released before the GIL is taken
 * back, so it cannot deadlock with the GIL.  Concurrent add + search from
 * two Python threads is therefore safe, unlike in FAISS.
 *
 * Selectors are immutable; composite selectors keep Python references to
 * their children (the C composites borrow them).  SearchParameters keep a
 * reference to their selector, and a search copies the parameters and holds
 * that reference for the duration of the call.
 */
#define PYVDX_DEFINE_ARRAY_API /* this file owns the numpy API table */
#include "py_vecdex.h"

#include <stdio.h>
#include <string.h>

/* ========================================================================= */
/* Errors                                                                    */
/* ========================================================================= */

/* vecdex.ShapeError(ValueError, AssertionError): FAISS's wrappers assert on
 * shapes, so code catching either keeps working. */
PyObject *ShapeError;
/* vecdex.InvalidArgumentError(ValueError, RuntimeError): the C library's
 * VDX_ERR_INVALID_ARGUMENT (NaN/Inf, out-of-range keys...); FAISS raises
 * RuntimeError for most of these. */
PyObject *InvalidArgumentError;

void cerr_capture(cerr *e, vdx_status st) {
    e->st = st;
    e->msg[0] = '\0';
    if (st != VDX_OK) {
        const char *m = vdx_last_error();
        snprintf(e->msg, sizeof e->msg, "%s",
                 (m && *m) ? m : vdx_status_name(st));
    }
}

PyObject *raise_cerr(const cerr *e) {
    PyObject *type;
    /* interrupted by the handler below: the KeyboardInterrupt (or whatever
     * the signal handler raised) is already set */
    if (e->st == VDX_ERR_INTERRUPTED && PyErr_Occurred()) return NULL;
    switch (e->st) {
    case VDX_ERR_INTERRUPTED: type = PyExc_KeyboardInterrupt; break;
    case VDX_ERR_INVALID_ARGUMENT: type = InvalidArgumentError; break;
    case VDX_ERR_OUT_OF_MEMORY: type = PyExc_MemoryError; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_Format(type, "%s [%s]", e->msg, vdx_status_name(e->st));
    return NULL;
}

PyObject *raise_status(vdx_status st) {
    cerr e;
    cerr_capture(&e, st);
    return raise_cerr(&e);
}

void format_shape(char *buf, size_t len, int ndim,
                         const npy_intp *dims) {
    size_t pos = 0;
    int w = snprintf(buf, len, "(");
    pos = (w > 0) ? (size_t)w : 0;
    for (int i = 0; i < ndim && pos < len; i++) {
        w = snprintf(buf + pos, len - pos, "%s%lld", i ? ", " : "",
                     (long long)dims[i]);
        if (w < 0) break;
        pos += (size_t)w;
    }
    if (pos < len) snprintf(buf + pos, len - pos, ndim == 1 ? ",)" : ")");
}

/* ========================================================================= */
/* Readers-writer lock (one per C allocation tree)                           */
/* ========================================================================= */
#ifdef _WIN32
static int rw_init(rwlock_t *l) { InitializeSRWLock(l); return 0; }
static void rw_destroy(rwlock_t *l) { (void)l; }
void rw_rdlock(rwlock_t *l) { AcquireSRWLockShared(l); }
static int rw_tryrdlock(rwlock_t *l) { return TryAcquireSRWLockShared(l) != 0; }
void rw_rdunlock(rwlock_t *l) { ReleaseSRWLockShared(l); }
void rw_wrlock(rwlock_t *l) { AcquireSRWLockExclusive(l); }
void rw_wrunlock(rwlock_t *l) { ReleaseSRWLockExclusive(l); }
#else
static int rw_init(rwlock_t *l) { return pthread_rwlock_init(l, NULL); }
static void rw_destroy(rwlock_t *l) { pthread_rwlock_destroy(l); }
void rw_rdlock(rwlock_t *l) { pthread_rwlock_rdlock(l); }
static int rw_tryrdlock(rwlock_t *l) { return pthread_rwlock_tryrdlock(l) == 0; }
void rw_rdunlock(rwlock_t *l) { pthread_rwlock_unlock(l); }
void rw_wrlock(rwlock_t *l) { pthread_rwlock_wrlock(l); }
void rw_wrunlock(rwlock_t *l) { pthread_rwlock_unlock(l); }
#endif

owner_t *owner_new(vdx_index *root) {
    owner_t *o = PyMem_RawMalloc(sizeof *o);
    if (!o) {
        PyErr_NoMemory();
        return NULL;
    }
    if (rw_init(&o->lock) != 0) {
        PyMem_RawFree(o);
        PyErr_SetString(PyExc_RuntimeError, "cannot create an index lock");
        return NULL;
    }
    o->root = root;
    o->refs = 0;
    return o;
}

void owner_decref(owner_t *o) {
    if (o && --o->refs == 0) {
        vdx_index_free(o->root);
        rw_destroy(&o->lock);
        PyMem_RawFree(o);
    }
}

/* Shared lock taken while holding the GIL: try first, else wait with the
 * GIL released (a writer never needs the GIL to finish). */
void owner_rdlock_gil(owner_t *o) {
    if (rw_tryrdlock(&o->lock)) return;
    Py_BEGIN_ALLOW_THREADS
    rw_rdlock(&o->lock);
    Py_END_ALLOW_THREADS
}

/* ========================================================================= */
/* Array conversion                                                          */
/* ========================================================================= */

PyArrayObject *as_array(PyObject *obj, int typenum) {
    return (PyArrayObject *)PyArray_FROMANY(
        obj, typenum, 0, 0, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
}

PyArrayObject *as_matrix(PyObject *obj, int64_t d, const char *what) {
    PyArrayObject *a = as_array(obj, NPY_FLOAT32);
    if (!a) return NULL;
    if (PyArray_NDIM(a) != 2 || PyArray_DIM(a, 1) != (npy_intp)d) {
        char s[160];
        format_shape(s, sizeof s, PyArray_NDIM(a), PyArray_DIMS(a));
        PyErr_Format(ShapeError, "%s has shape %s, expected (n, %lld)", what,
                     s, (long long)d);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

PyArrayObject *as_vector(PyObject *obj, int typenum, npy_intp n,
                         const char *what) {
    PyArrayObject *a = as_array(obj, typenum);
    if (!a) return NULL;
    if (PyArray_NDIM(a) != 1 || (n >= 0 && PyArray_DIM(a, 0) != n)) {
        char s[160];
        format_shape(s, sizeof s, PyArray_NDIM(a), PyArray_DIMS(a));
        if (n >= 0)
            PyErr_Format(ShapeError, "%s has shape %s, expected (%lld,)",
                         what, s, (long long)n);
        else
            PyErr_Format(ShapeError, "%s has shape %s, expected (n,)", what,
                         s);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* Validates a caller-provided output array; returns 0 or -1 (exception). */
static int check_out(PyObject *o, int typenum, int ndim, const npy_intp *dims,
                     const char *what) {
    if (!PyArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy array, got %.200s",
                     what, Py_TYPE(o)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)o;
    if (PyArray_TYPE(a) != typenum || !PyArray_ISNOTSWAPPED(a)) {
        PyArray_Descr *want = PyArray_DescrFromType(typenum);
        PyObject *ws = want ? PyObject_Str((PyObject *)want) : NULL;
        PyObject *gs = PyObject_Str((PyObject *)PyArray_DESCR(a));
        if (ws && gs)
            PyErr_Format(PyExc_TypeError, "%s must have dtype %U, got %U",
                         what, ws, gs);
        Py_XDECREF(want);
        Py_XDECREF(ws);
        Py_XDECREF(gs);
        return -1;
    }
    int same = PyArray_NDIM(a) == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = PyArray_DIM(a, i) == dims[i];
    if (!same) {
        char s[160], e[160];
        format_shape(s, sizeof s, PyArray_NDIM(a), PyArray_DIMS(a));
        format_shape(e, sizeof e, ndim, dims);
        PyErr_Format(ShapeError, "%s has shape %s, expected %s", what, s, e);
        return -1;
    }
    if (!PyArray_ISCARRAY(a)) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be C-contiguous, aligned and writeable", what);
        return -1;
    }
    return 0;
}

PyArrayObject *out_array(PyObject *given, int typenum, int ndim,
                         const npy_intp *dims, const char *what) {
    if (given == NULL || given == Py_None)
        return (PyArrayObject *)PyArray_SimpleNew(ndim, (npy_intp *)dims,
                                                  typenum);
    if (check_out(given, typenum, ndim, dims, what) < 0) return NULL;
    Py_INCREF(given);
    return (PyArrayObject *)given;
}

PyObject *array_over(void *data, npy_intp n, int typenum, PyObject *base) {
    if (n == 0 || data == NULL) return PyArray_ZEROS(1, &n, typenum, 0);
    PyObject *a = PyArray_SimpleNewFromData(1, &n, typenum, data);
    if (!a) return NULL;
    Py_INCREF(base);
    if (PyArray_SetBaseObject((PyArrayObject *)a, base) < 0) {
        Py_DECREF(base);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* ========================================================================= */
/* Module functions                                                          */
/* ========================================================================= */
static PyObject *mod_normalize_L2(PyObject *m, PyObject *x) {
    (void)m;
    if (!PyArray_Check(x)) {
        PyErr_Format(PyExc_TypeError,
                     "normalize_L2 expects a float32 numpy array, got %.200s",
                     Py_TYPE(x)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)x;
    if (PyArray_TYPE(a) != NPY_FLOAT32 || !PyArray_ISNOTSWAPPED(a)) {
        PyObject *gs = PyObject_Str((PyObject *)PyArray_DESCR(a));
        if (gs)
            PyErr_Format(PyExc_TypeError,
                         "normalize_L2 works in place on float32, got %U", gs);
        Py_XDECREF(gs);
        return NULL;
    }
    if (PyArray_NDIM(a) != 2) {
        char s[160];
        format_shape(s, sizeof s, PyArray_NDIM(a), PyArray_DIMS(a));
        PyErr_Format(ShapeError, "x has shape %s, expected (n, d)", s);
        return NULL;
    }
    if (!PyArray_ISCARRAY(a)) {
        PyErr_SetString(PyExc_ValueError,
                        "normalize_L2 works in place: x must be C-contiguous, "
                        "aligned and writeable");
        return NULL;
    }
    int64_t n = PyArray_DIM(a, 0), d = PyArray_DIM(a, 1);
    float *p = PyArray_DATA(a);
    cerr e = {VDX_OK, ""};
    if (n > 0 && d > 0) {
        Py_BEGIN_ALLOW_THREADS
        cerr_capture(&e, vdx_normalize_L2(n, d, p));
        Py_END_ALLOW_THREADS
    }
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *mod_omp_set_num_threads(PyObject *m, PyObject *arg) {
    (void)m;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    /* vdx_set_num_threads clamps to vdx_max_threads() (say so through
     * omp_get_max_threads(), which returns the clamped value) */
    if (n > vdx_max_threads()) n = vdx_max_threads();
    vdx_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *mod_omp_get_max_threads(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyLong_FromLong(vdx_get_num_threads());
}

static PyObject *mod_vector_to_array(PyObject *m, PyObject *arg) {
    (void)m;
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_O(arg);
    if (!a) return NULL;
    PyObject *r = PyArray_NewCopy(a, NPY_CORDER);
    Py_DECREF(a);
    return r;
}

static PyObject *mod_build_info(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(vdx_build_info());
}

/* FAISS's rev_swig_ptr(ptr, n) views n entries behind a raw pointer; vecdex
 * hands out arrays (invlists.get_ids...), so this is np.asarray(x)[:n] and
 * that idiom keeps working. */
static PyObject *mod_rev_swig_ptr(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"x", "n", NULL};
    PyObject *xo;
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "On:rev_swig_ptr", kwlist, &xo,
                                     &n))
        return NULL;
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_O(xo);
    if (!a) return NULL;
    if (PyArray_NDIM(a) != 1 || n < 0 || n > PyArray_DIM(a, 0)) {
        char s[160];
        format_shape(s, sizeof s, PyArray_NDIM(a), PyArray_DIMS(a));
        PyErr_Format(ShapeError,
                     "rev_swig_ptr: cannot view %zd entries of an array of "
                     "shape %s",
                     n, s);
        Py_DECREF(a);
        return NULL;
    }
    PyObject *r = PySequence_GetSlice((PyObject *)a, 0, n);
    Py_DECREF(a);
    return r;
}

/* The SIMD level of the kernels (vecdex.SIMDConfig is built on these). */
static PyObject *mod_simd_level(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(vdx_simd_level());
}

static PyObject *mod_simd_level_default(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(vdx_simd_level_default());
}

static PyObject *mod_set_simd_level(PyObject *m, PyObject *arg) {
    (void)m;
    const char *name = NULL;
    if (arg != Py_None) {
        name = PyUnicode_AsUTF8(arg);
        if (!name) return NULL;
    }
    vdx_status st = vdx_set_simd_level(name);
    if (st != VDX_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *mod_simd_level_available(PyObject *m, PyObject *arg) {
    (void)m;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    return PyBool_FromLong(vdx_simd_level_available(name));
}

static PyObject *mod_check_openmp(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = vdx_check_openmp();
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

/* The process-wide search counters (cvar.indexIVF_stats / hnsw_stats) as
 * tuples; vecdex/__init__.py wraps them in FAISS-shaped objects. */
static PyObject *mod_ivf_stats(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    vdx_ivf_stats s;
    vdx_ivf_stats_get(&s);
    return Py_BuildValue("(LLLLdd)", (long long)s.nq, (long long)s.nlist,
                         (long long)s.ndis, (long long)s.nheap_updates,
                         s.quantization_time, s.search_time);
}

static PyObject *mod_ivf_stats_reset(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    vdx_ivf_stats_reset();
    Py_RETURN_NONE;
}

static PyObject *mod_hnsw_stats(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    vdx_hnsw_stats s;
    vdx_hnsw_stats_get(&s);
    return Py_BuildValue("(LLLL)", (long long)s.n1, (long long)s.n2,
                         (long long)s.ndis, (long long)s.nhops);
}

static PyObject *mod_hnsw_stats_reset(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    vdx_hnsw_stats_reset();
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"ivf_stats", (PyCFunction)mod_ivf_stats, METH_NOARGS,
     "ivf_stats() -> (nq, nlist, ndis, nheap_updates, quantization_time_ms, "
     "search_time_ms) summed over IVF searches since the last reset."},
    {"ivf_stats_reset", (PyCFunction)mod_ivf_stats_reset, METH_NOARGS,
     "ivf_stats_reset(): zeroes the IVF search counters."},
    {"hnsw_stats", (PyCFunction)mod_hnsw_stats, METH_NOARGS,
     "hnsw_stats() -> (n1, n2, ndis, nhops) summed over HNSW searches."},
    {"hnsw_stats_reset", (PyCFunction)mod_hnsw_stats_reset, METH_NOARGS,
     "hnsw_stats_reset(): zeroes the HNSW search counters."},
    {"check_openmp", (PyCFunction)mod_check_openmp, METH_NOARGS,
     "check_openmp() -> True when OpenMP runs parallel teams."},
    {"simd_level", (PyCFunction)mod_simd_level, METH_NOARGS,
     "simd_level() -> 'scalar', 'avx2' or 'avx512': the kernels in use."},
    {"simd_level_default", (PyCFunction)mod_simd_level_default, METH_NOARGS,
     "simd_level_default() -> the level used when none is set."},
    {"set_simd_level", (PyCFunction)mod_set_simd_level, METH_O,
     "set_simd_level(name): 'scalar', 'avx2', 'avx512', or None for the "
     "default; RuntimeError for a level the CPU lacks."},
    {"simd_level_available", (PyCFunction)mod_simd_level_available, METH_O,
     "simd_level_available(name) -> bool."},
    {"normalize_L2", (PyCFunction)mod_normalize_L2, METH_O,
     "normalize_L2(x): L2-normalises the rows of a C-contiguous float32 "
     "(n, d) array in place."},
    {"omp_set_num_threads", (PyCFunction)mod_omp_set_num_threads, METH_O,
     "omp_set_num_threads(n): threads used by vecdex (n <= 0: default)."},
    {"omp_get_max_threads", (PyCFunction)mod_omp_get_max_threads, METH_NOARGS,
     "omp_get_max_threads() -> int."},
    {"vector_to_array", (PyCFunction)mod_vector_to_array, METH_O,
     "vector_to_array(x) -> a numpy copy of x."},
    {"rev_swig_ptr", METH_KW_FN(mod_rev_swig_ptr), METH_VARARGS | METH_KEYWORDS,
     "rev_swig_ptr(x, n) -> np.asarray(x)[:n] (FAISS views raw pointers; "
     "vecdex already returns arrays)."},
    {"build_info", (PyCFunction)mod_build_info, METH_NOARGS,
     "build_info() -> str: SIMD level, BLAS, OpenMP, threads."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "vecdex._vecdex",
    .m_doc = "C core of the vecdex Python package (FAISS-compatible API).",
    .m_size = -1, .m_methods = module_methods,
};

int add_object(PyObject *m, const char *name, PyObject *o) {
    if (!o) return -1;
    if (PyModule_AddObject(m, name, o) < 0) {
        Py_DECREF(o);
        return -1;
    }
    return 0;
}

int add_type(PyObject *m, PyTypeObject *t) {
    if (PyType_Ready(t) < 0) return -1;
    const char *name = strrchr(t->tp_name, '.') + 1;
    Py_INCREF(t);
    return add_object(m, name, (PyObject *)t);
}

/* An exception class vecdex.<name>(base1, base2) */
static PyObject *new_exception(const char *qualname, PyObject *b1,
                               PyObject *b2, const char *doc) {
    PyObject *bases = PyTuple_Pack(2, b1, b2);
    if (!bases) return NULL;
    PyObject *e = PyErr_NewExceptionWithDoc(qualname, doc, bases, NULL);
    Py_DECREF(bases);
    return e;
}

/* ---- Ctrl-C during long C calls ------------------------------------------
 * The library polls this handler (at most every 50 ms) from the thread that
 * made the call, which released the GIL.  Only Python's main thread runs
 * signal handlers, so other threads answer at once without the GIL; the
 * main thread takes the GIL back and lets Python run its pending handlers:
 * SIGINT's raises KeyboardInterrupt, which the call then returns with. */
static unsigned long main_thread_ident;

static int check_signals(void *ctx) {
    (void)ctx;
    if (PyThread_get_thread_ident() != main_thread_ident) return 0;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = PyErr_CheckSignals() != 0;
    PyGILState_Release(g);
    return stop;
}

static int install_interrupt_handler(void) {
    PyObject *threading = PyImport_ImportModule("threading");
    if (!threading) return -1;
    PyObject *mt = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (!mt) return -1;
    PyObject *ident = PyObject_GetAttrString(mt, "ident");
    Py_DECREF(mt);
    if (!ident) return -1;
    main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred()) return -1;
    vdx_set_interrupt_handler(check_signals, NULL);
    return 0;
}

PyMODINIT_FUNC PyInit__vecdex(void); /* the one exported symbol */

PyMODINIT_FUNC PyInit__vecdex(void) {
    import_array();
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;

    ShapeError = new_exception(
        "vecdex.ShapeError", PyExc_ValueError, PyExc_AssertionError,
        "An argument has the wrong shape (or k <= 0).  Derives from both "
        "ValueError and AssertionError (what FAISS's wrappers raise).");
    if (!ShapeError) goto fail;
    Py_INCREF(ShapeError);
    if (add_object(m, "ShapeError", ShapeError) < 0) goto fail;
    InvalidArgumentError = new_exception(
        "vecdex.InvalidArgumentError", PyExc_ValueError, PyExc_RuntimeError,
        "The C library rejected an argument (NaN/Inf, out-of-range key...). "
        "Derives from ValueError and RuntimeError (what FAISS raises).");
    if (!InvalidArgumentError) goto fail;
    Py_INCREF(InvalidArgumentError);
    if (add_object(m, "InvalidArgumentError", InvalidArgumentError) < 0)
        goto fail;

    if (PyModule_AddIntConstant(m, "IO_FLAG_READ_ONLY",
                                VDX_IO_FLAG_READ_ONLY) < 0 ||
        PyModule_AddIntConstant(m, "IO_FLAG_ONDISK_SAME_DIR",
                                VDX_IO_FLAG_ONDISK_SAME_DIR) < 0 ||
        PyModule_AddIntConstant(m, "IO_FLAG_SKIP_IVF_DATA",
                                VDX_IO_FLAG_SKIP_IVF_DATA) < 0 ||
        PyModule_AddIntConstant(m, "IO_FLAG_SKIP_PRECOMPUTE_TABLE",
                                VDX_IO_FLAG_SKIP_PRECOMPUTE_TABLE) < 0 ||
        PyModule_AddIntConstant(m, "IO_FLAG_MMAP", VDX_IO_FLAG_MMAP) < 0 ||
        PyModule_AddIntConstant(m, "IO_FLAG_MMAP_IFC", VDX_IO_FLAG_MMAP_IFC) <
            0)
        goto fail;
    if (PyModule_AddIntConstant(m, "METRIC_INNER_PRODUCT",
                                VDX_METRIC_INNER_PRODUCT) < 0 ||
        PyModule_AddIntConstant(m, "METRIC_L2", VDX_METRIC_L2) < 0 ||
        PyModule_AddStringConstant(m, "__version__", vdx_version()) < 0)
        goto fail;

    if (pyvdx_init_selectors(m) < 0 || pyvdx_init_index(m) < 0 ||
        pyvdx_init_ivf(m) < 0 || pyvdx_init_kmeans(m) < 0 ||
        pyvdx_init_pq(m) < 0 || pyvdx_init_lsh(m) < 0 ||
        pyvdx_init_sq(m) < 0 || pyvdx_init_refine(m) < 0 ||
        pyvdx_init_hnsw(m) < 0 || pyvdx_init_nsg(m) < 0 || pyvdx_init_fastscan(m) < 0 ||
        pyvdx_init_2layer(m) < 0 || pyvdx_init_shards(m) < 0 ||
        pyvdx_init_aq(m) < 0 || pyvdx_init_aq_index(m) < 0 ||
        pyvdx_init_cp(m) < 0 || pyvdx_init_store(m) < 0 ||
        pyvdx_init_factory(m) < 0 || pyvdx_init_transform(m) < 0 ||
        pyvdx_init_gpu(m) < 0 || pyvdx_init_binary(m) < 0)
        goto fail;
    if (pyvdx_init_methods(m) < 0) goto fail; /* py_methods.c */
    if (pyvdx_init_ivf_modes(m) < 0) goto fail; /* py_ivf_modes.c */
    if (install_interrupt_handler() < 0) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
