/*
 * py_vecdex.h — private header of the CPython extension vecdex._vecdex.
 *
 * The extension is split by concept:
 *   _vecdex.c       module init, errors, array conversion, owner records,
 *                   small module functions (threads, normalize_L2, ...)
 *   py_selectors.c  IDSelector* and SearchParameters*
 *   py_index.c      the Index base type, flat and IDMap indexes, wrapping
 *                   of C index trees, persistence (read/write/serialize)
 *   py_ivf.c        IndexIVF, IndexIVFFlat and the inverted lists
 *   py_pq.c         ProductQuantizer, IndexPQ, IndexIVFPQ
 *   py_aq.c         ResidualQuantizer, LocalSearchQuantizer and the product
 *                   kinds; py_aq_index.c their indexes (flat, coarse, IVF)
 *   py_lsh.c        IndexLSH
 *   py_sq.c         ScalarQuantizer, IndexScalarQuantizer, IndexIVFScalarQuantizer
 *   py_kmeans.c     Kmeans
 *   py_factory.c    index_factory
 *   py_transform.c  vector transforms (PCAMatrix, OPQMatrix, ...),
 *                   IndexPreTransform
 * The ownership design (owner records shared by the wrappers of one C index
 * tree) is described at the top of _vecdex.c.
 *
 * Every symbol declared here is hidden: the module exports PyInit__vecdex
 * only.
 */
#ifndef PY_VECDEX_H
#define PY_VECDEX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef NPY_NO_DEPRECATED_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#endif
/* One numpy API table for all the files; _vecdex.c defines it (and fills
 * it with import_array). */
#define PY_ARRAY_UNIQUE_SYMBOL vecdex_ARRAY_API
#ifndef PYVDX_DEFINE_ARRAY_API
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#endif

#include "vecdex.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* PyMethodDef entries taking keywords (silences -Wcast-function-type). */
#define METH_KW_FN(f) ((PyCFunction)(void (*)(void))(f))

/* ========================================================================= */
/* Errors (_vecdex.c)                                                        */
/* ========================================================================= */

/* vecdex.ShapeError(ValueError, AssertionError) */
extern PyObject *ShapeError;
/* vecdex.InvalidArgumentError(ValueError, RuntimeError) */
extern PyObject *InvalidArgumentError;

/* A C status and its message, captured in the thread that made the call
 * (vdx_last_error() is per thread), possibly without the GIL. */
typedef struct cerr {
    vdx_status st;
    char msg[512];
} cerr;

void cerr_capture(cerr *e, vdx_status st);
/* Sets the Python exception for a failed C call; returns NULL. */
PyObject *raise_cerr(const cerr *e);
/* raise_cerr for a status just returned in this thread (GIL held). */
PyObject *raise_status(vdx_status st);
/* "(10, 63)" */
void format_shape(char *buf, size_t len, int ndim, const npy_intp *dims);

/* ========================================================================= */
/* Owner records: one per C allocation tree (_vecdex.c)                      */
/* ========================================================================= */
#ifdef _WIN32
typedef SRWLOCK rwlock_t;
#else
typedef pthread_rwlock_t rwlock_t;
#endif
void rw_rdlock(rwlock_t *l);
void rw_rdunlock(rwlock_t *l);
void rw_wrlock(rwlock_t *l);
void rw_wrunlock(rwlock_t *l);

/* `refs` and `root` are only changed with the GIL held (`root` also under
 * the exclusive lock, since searches read the tree without the GIL). */
typedef struct owner {
    vdx_index *root;
    Py_ssize_t refs;
    rwlock_t lock;
} owner_t;

/* A new record for `root` with refs = 0, or NULL with an exception. */
owner_t *owner_new(vdx_index *root);
/* Drops one reference; the last one frees the tree (GIL held). */
void owner_decref(owner_t *o);
/* Shared lock taken while holding the GIL (release with rw_rdunlock). */
void owner_rdlock_gil(owner_t *o);

/* Runs `call` (a vdx_status expression) with the GIL released under the
 * owner's lock (mode rd or wr), capturing its error into e. */
#define RUN_LOCKED(o, mode, e, call)            \
    do {                                        \
        Py_BEGIN_ALLOW_THREADS                  \
        rw_##mode##lock(&(o)->lock);            \
        cerr_capture(&(e), (call));             \
        rw_##mode##unlock(&(o)->lock);          \
        Py_END_ALLOW_THREADS                    \
    } while (0)

/* ========================================================================= */
/* Array conversion (_vecdex.c)                                              */
/* ========================================================================= */
/* np.ascontiguousarray(obj, dtype=typenum) */
PyArrayObject *as_array(PyObject *obj, int typenum);
/* obj as a C-contiguous float32 (n, d) matrix, or ShapeError. */
PyArrayObject *as_matrix(PyObject *obj, int64_t d, const char *what);
/* obj as a 1-D C-contiguous array of typenum with n entries (any n when
 * n < 0), or ShapeError. */
PyArrayObject *as_vector(PyObject *obj, int typenum, npy_intp n,
                         const char *what);
/* An output array: the caller's (validated, new reference) or a new one. */
PyArrayObject *out_array(PyObject *given, int typenum, int ndim,
                         const npy_intp *dims, const char *what);
/* A 1-D array over `data` (n entries) kept alive by `base` (borrowed; a
 * reference is added on success).  An empty array owns its own memory. */
PyObject *array_over(void *data, npy_intp n, int typenum, PyObject *base);

/* PyModule_AddObject that always consumes `o`. */
int add_object(PyObject *m, const char *name, PyObject *o);
/* PyType_Ready + add under the last component of tp_name. */
int add_type(PyObject *m, PyTypeObject *t);

/* ========================================================================= */
/* Selectors and search parameters (py_selectors.c)                          */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    vdx_selector *sel;
    PyObject *a, *b; /* children of NOT / AND / OR, kept alive */
    vdx_idx_t imin, imax;
    int assume_sorted;
} SelectorObject;

extern PyTypeObject SelectorType;

/* The C selector of a Python IDSelector, or NULL with TypeError. */
const vdx_selector *get_selector(PyObject *o, const char *what);

/* Copies a SearchParameters (or None) for one call.  *keep receives a new
 * reference to the selector object that must outlive the call. */
int get_params(PyObject *po, vdx_search_params *out,
               const vdx_search_params **pp, PyObject **keep);

int pyvdx_init_selectors(PyObject *m);

/* ========================================================================= */
/* Indexes (py_index.c)                                                      */
/* ========================================================================= */
typedef struct IndexObject {
    PyObject_HEAD
    vdx_index *ix;            /* points into owner's tree; NULL until init */
    owner_t *owner;
    PyObject *sub;            /* IDMap sub-index / IVF quantizer (strong) */
    PyObject *sub2;           /* IndexRefine's refine index (strong) */
    struct IndexObject *parent; /* borrowed; cleared by the parent */
    int initialising;         /* an IDMap / IVF __init__ is under way */
    PyObject *dict;
    PyObject *weakreflist;
} IndexObject;

extern PyTypeObject IndexType, IndexFlatL2Type, IndexFlatIPType;

int Index_traverse(IndexObject *self, visitproc visit, void *arg);
int Index_clear(IndexObject *self);
void Index_dealloc(IndexObject *self);
/* 0 when self is a usable index, else -1 with RuntimeError. */
int ready(IndexObject *self);
/* ready(), and not the sub-index of a live wrapper (mutations of a
 * sub-index would desynchronise the index that owns it). */
int mutable_(IndexObject *self, const char *what);
int64_t locked_ntotal(IndexObject *self);
PyObject *Index_get_sub(IndexObject *self, void *c);

/* Builds the C index that takes ownership of `child` (see index_adopt). */
typedef vdx_status (*adopt_fn)(vdx_index *child, void *ctx, vdx_index **out);
/* __init__ of an index that takes ownership of the C index of `childo`
 * (IndexIDMap's sub-index, IndexIVFFlat's quantizer): the new C index
 * becomes the root of the child's owner record and self->sub keeps the
 * child's wrapper alive.  Returns 0 or -1 with an exception. */
int index_adopt(IndexObject *self, PyObject *childo, adopt_fn build,
                void *ctx);

#define INDEX_FLAGS \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)

#define INDEX_TYPE_BODY(name, doc, base, init, methods, getset)             \
    {                                                                       \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex." name,           \
        .tp_basicsize = sizeof(IndexObject),                                \
        .tp_dealloc = (destructor)Index_dealloc,                            \
        .tp_flags = INDEX_FLAGS,                                            \
        .tp_doc = doc,                                                      \
        .tp_traverse = (traverseproc)Index_traverse,                        \
        .tp_clear = (inquiry)Index_clear,                                   \
        .tp_weaklistoffset = offsetof(IndexObject, weakreflist),            \
        .tp_methods = methods,                                              \
        .tp_getset = getset,                                                \
        .tp_base = base,                                                    \
        .tp_dictoffset = offsetof(IndexObject, dict),                       \
        .tp_init = (initproc)init,                                          \
        .tp_new = PyType_GenericNew,                                        \
    }

/* Takes ownership of a new C index tree (freed on failure too) and returns
 * its Python wrapper: the right class for each node, children wrapped. */
PyObject *wrap_tree(vdx_index *root);
/* Wraps ix, a node inside o's tree, and its children (adds to o->refs). */
PyObject *wrap_node(vdx_index *ix, owner_t *o);

int pyvdx_init_index(PyObject *m);

/* ========================================================================= */
/* IVF (py_ivf.c) and k-means (py_kmeans.c)                                  */
/* ========================================================================= */
extern PyTypeObject IndexIVFType, IndexIVFFlatType;
int pyvdx_init_ivf(PyObject *m);
/* ProductQuantizer, IndexPQ, IndexIVFPQ (py_pq.c) */
extern PyTypeObject IndexPQType, IndexIVFPQType;
int pyvdx_init_pq(PyObject *m);
/* ScalarQuantizer, IndexScalarQuantizer, IndexIVFScalarQuantizer (py_sq.c) */
extern PyTypeObject IndexScalarQuantizerType, IndexIVFScalarQuantizerType;
int pyvdx_init_sq(PyObject *m);
/* IndexLSH (py_lsh.c) */
extern PyTypeObject IndexLSHType;
int pyvdx_init_lsh(PyObject *m);
int pyvdx_init_kmeans(PyObject *m);
/* IndexRefine, IndexRefineFlat (py_refine.c) */
extern PyTypeObject IndexRefineType, IndexRefineFlatType;
int pyvdx_init_refine(PyObject *m);
/* methods with Python bodies in vecdex/_pymethods.py (py_pymethods.c) */
PyObject *pym_get_distance_computer(PyObject *self, PyObject *args);
PyObject *pym_get_CodePacker(PyObject *self, PyObject *args);
PyObject *pym_compute_distance_tables(PyObject *self, PyObject *args);
PyObject *pym_compute_inner_prod_tables(PyObject *self, PyObject *args);
PyObject *pym_compute_sdc_table(PyObject *self, PyObject *args);
PyObject *pym_sync_transposed_centroids(PyObject *self, PyObject *args);
PyObject *pym_clear_transposed_centroids(PyObject *self, PyObject *args);
PyObject *pym_compute_codes_with_assign_index(PyObject *self, PyObject *args);
PyObject *pym_get_sdc_table(PyObject *self, void *c);
PyObject *pym_get_transposed_centroids(PyObject *self, void *c);
PyObject *pym_get_centroids_sq_lengths(PyObject *self, void *c);
/* vector transforms and IndexPreTransform (py_transform.c) */
extern PyTypeObject IndexPreTransformType;
int pyvdx_init_transform(PyObject *m);
/* IndexHNSW, IndexHNSWFlat, IndexHNSWSQ, IndexHNSWPQ (py_hnsw.c) */
extern PyTypeObject IndexHNSWType, IndexHNSWFlatType, IndexHNSWSQType,
    IndexHNSWPQType;
int pyvdx_init_hnsw(PyObject *m);
/* Index2Layer, IndexHNSW2Level (py_2layer.c) */
extern PyTypeObject Index2LayerType, IndexHNSW2LevelType;
int pyvdx_init_2layer(PyObject *m);
/* A ProductQuantizer object viewing pq, kept alive by index (py_pq.c). */
PyObject *pq_view(vdx_pq *pq, IndexObject *index);
/* IndexPQFastScan, IndexIVFPQFastScan (py_fastscan.c) */
extern PyTypeObject IndexPQFastScanType, IndexIVFPQFastScanType;
int pyvdx_init_fastscan(PyObject *m);
/* IndexShards, IndexReplicas, IndexShardsIVF (py_shards.c): the class of
 * a C shards index (NULL for other kinds), and wrap_node's hook that wraps
 * its sub-indexes (0, or -1 with an exception). */
PyTypeObject *shards_class_for(const vdx_index *ix);
int shards_wrap_children(IndexObject *obj, owner_t *o);
int pyvdx_init_shards(PyObject *m);
/* additive quantizers (py_aq.c) and their indexes (py_aq_index.c) */
int pyvdx_init_aq(PyObject *m);
int pyvdx_init_aq_index(PyObject *m);
/* The class of an additive-quantizer index kind by FAISS's name, or NULL. */
PyTypeObject *aq_index_class(const char *type_name);
/* GPU classes and functions (py_gpu.c) */
int pyvdx_init_gpu(PyObject *m);
/* The Python class of a GPU index or of its shards / replicas, or NULL. */
PyTypeObject *gpu_class_for(const vdx_index *ix, const char *type_name);
/* vecdex._Store (py_store.c) */
int pyvdx_init_store(PyObject *m);
/* IndexNSG* and IndexNNDescent* (py_nsg.c): the class of a kind by
 * FAISS's name, or NULL */
PyTypeObject *nsg_class_for(const char *type_name);
int pyvdx_init_nsg(PyObject *m);
/* index_factory (py_factory.c) */
int pyvdx_init_factory(PyObject *m);

/* ClusteringParameters (py_cp.c): a view of p kept alive by owner */
PyObject *cp_view(vdx_kmeans_params *p, PyObject *owner);
int pyvdx_init_cp(PyObject *m);
int pyvdx_init_binary(PyObject *m); /* py_binary.c */
int pyvdx_init_methods(PyObject *m); /* py_methods.c: _install_method */
/* index_adopt for an IVF quantizer; one that already belongs to another
 * index is copied when trained and filled (py_shared_quantizer.c). */
/* Constructors: 0 when self holds no index yet, else RuntimeError ("index
 * is already initialised") and -1. */
int index_init_once(IndexObject *self);
/* Constructors: raises st when it is not VDX_OK; else self becomes the
 * owner of the new root ix (freed if that fails).  0 or -1. */
int index_take_root(IndexObject *self, vdx_status st, vdx_index *ix);

int adopt_quantizer(IndexObject *self, PyObject *qo, adopt_fn build,
                    void *ctx);
/* 1 when self is the empty quantizer of an empty IVF index: add /
 * add_with_ids may then fill it (py_quantizer_fill.c). */
int quantizer_fillable(IndexObject *self);
/* py_ivf_modes.c: IndexIVF.parallel_mode has PARALLEL_MODE_NO_HEAP_INIT;
 * merge n rows of k new results into D / I (0, or -1 with MemoryError);
 * the class attributes. */
int ivf_no_heap_init(PyObject *self);
int merge_knn_rows(int64_t n, int64_t k, int larger_better, float *dis,
                   int64_t *ids, const float *new_dis, const int64_t *new_ids);
int pyvdx_init_ivf_modes(PyObject *m);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* PY_VECDEX_H */
