/*
 * py_hnsw.c — the HNSW indexes: IndexHNSW (base), IndexHNSWFlat,
 * IndexHNSWSQ, IndexHNSWPQ, and the `index.hnsw` view (FAISS's HNSW struct:
 * efConstruction and efSearch read-write, max_level, entry_point, levels
 * and neighbor lists read-only).  `index.storage` wraps the storage index
 * (IndexFlat / IndexScalarQuantizer / IndexPQ) as a borrowed child: it can
 * be searched and read, not mutated on its own.
 */
#include "py_vecdex.h"

/* ========================================================================= */
/* The .hnsw view                                                            */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    IndexObject *index; /* strong */
} HNSWObject;

static void HNSW_dealloc(HNSWObject *self) {
    Py_CLEAR(self->index);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* which: 0 efConstruction, 1 efSearch, 2 max_level, 3 entry_point, 4 M */
static PyObject *HNSW_get(HNSWObject *self, void *which) {
    if (ready(self->index) < 0) return NULL;
    const vdx_index *ix = self->index->ix;
    long long v;
    owner_rdlock_gil(self->index->owner);
    switch ((int)(intptr_t)which) {
    case 0: v = vdx_index_hnsw_ef_construction(ix); break;
    case 1: v = vdx_index_hnsw_ef_search(ix); break;
    case 2: v = vdx_index_hnsw_max_level(ix); break;
    case 3: v = vdx_index_hnsw_entry_point(ix); break;
    default: v = vdx_index_hnsw_M(ix); break;
    }
    rw_rdunlock(&self->index->owner->lock);
    return PyLong_FromLongLong(v);
}

static int HNSW_set(HNSWObject *self, PyObject *v, void *which) {
    int w = (int)(intptr_t)which;
    const char *name = w ? "efSearch" : "efConstruction";
    if (!v) {
        PyErr_Format(PyExc_AttributeError, "cannot delete %s", name);
        return -1;
    }
    if (ready(self->index) < 0) return -1;
    long long ef = PyLong_AsLongLong(v);
    if (ef == -1 && PyErr_Occurred()) return -1;
    if (ef < 1 || ef > (1 << 20)) {
        PyErr_Format(PyExc_ValueError, "%s must be in 1..%d, got %lld", name,
                     1 << 20, ef);
        return -1;
    }
    cerr e;
    vdx_index *ix = self->index->ix;
    if (w) RUN_LOCKED(self->index->owner, wr, e, vdx_index_hnsw_set_ef_search(ix, (int)ef));
    else RUN_LOCKED(self->index->owner, wr, e,
                    vdx_index_hnsw_set_ef_construction(ix, (int)ef));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

/* hnsw.levels: FAISS's array (top level + 1 per node), a copy. */
static PyObject *HNSW_get_levels(HNSWObject *self, void *c) {
    (void)c;
    if (ready(self->index) < 0) return NULL;
    owner_rdlock_gil(self->index->owner);
    const vdx_index *ix = self->index->ix;
    npy_intp n = (npy_intp)vdx_index_ntotal(ix);
    PyObject *a = PyArray_SimpleNew(1, &n, NPY_INT32);
    if (a) {
        int32_t *p = PyArray_DATA((PyArrayObject *)a);
        for (npy_intp i = 0; i < n; i++) {
            int lv = 0;
            vdx_index_hnsw_node_level(ix, i, &lv);
            p[i] = lv + 1;
        }
    }
    rw_rdunlock(&self->index->owner->lock);
    return a;
}

/* hnsw.neighbors_of(i, level=0) -> int64 array of node i's links. */
static PyObject *HNSW_neighbors_of(HNSWObject *self, PyObject *args) {
    long long i;
    int level = 0;
    if (!PyArg_ParseTuple(args, "L|i:neighbors_of", &i, &level)) return NULL;
    if (ready(self->index) < 0) return NULL;
    int64_t buf[1024];
    int cnt = 0;
    cerr e;
    RUN_LOCKED(self->index->owner, rd, e,
               vdx_index_hnsw_neighbors(self->index->ix, i, level, buf, &cnt));
    if (e.st != VDX_OK) return raise_cerr(&e);
    npy_intp n = cnt;
    PyObject *a = PyArray_SimpleNew(1, &n, NPY_INT64);
    if (a) memcpy(PyArray_DATA((PyArrayObject *)a), buf, (size_t)cnt * 8);
    return a;
}

/* hnsw.nb_neighbors(level): FAISS's links per node at a level. */
static PyObject *HNSW_nb_neighbors(HNSWObject *self, PyObject *arg) {
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) return NULL;
    if (ready(self->index) < 0) return NULL;
    int M = vdx_index_hnsw_M(self->index->ix);
    return PyLong_FromLong(level == 0 ? 2 * M : M);
}

/* hnsw.is_similarity: FAISS's flag for a metric where larger is better
 * (inner product), derived from the index's metric as FAISS's reader
 * derives it. */
static PyObject *HNSW_get_is_similarity(HNSWObject *self, void *c) {
    (void)c;
    if (ready(self->index) < 0) return NULL;
    return PyBool_FromLong(vdx_index_metric(self->index->ix) ==
                           VDX_METRIC_INNER_PRODUCT);
}

/* hnsw.search_bounded_queue: FAISS's choice between a candidate queue cut
 * at efSearch entries and an unbounded one.  vecdex's level-0 walk never
 * drops a candidate that can still improve the efSearch best (what FAISS's
 * unbounded queue does), so both settings run that one search; the value
 * is kept on the index (its __dict__) for code that sets and reads it. */
static PyObject *HNSW_get_sbq(HNSWObject *self, void *c) {
    (void)c;
    if (ready(self->index) < 0) return NULL;
    PyObject *d = self->index->dict;
    PyObject *v = d ? PyDict_GetItemString(d, "_search_bounded_queue") : NULL;
    if (!v) Py_RETURN_TRUE; /* FAISS's default */
    Py_INCREF(v);
    return v;
}

static int HNSW_set_sbq(HNSWObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete search_bounded_queue");
        return -1;
    }
    if (ready(self->index) < 0) return -1;
    int b = PyObject_IsTrue(v);
    if (b < 0) return -1;
    if (!self->index->dict && !(self->index->dict = PyDict_New())) return -1;
    return PyDict_SetItemString(self->index->dict, "_search_bounded_queue",
                                b ? Py_True : Py_False);
}

static PyMethodDef HNSW_methods[] = {
    {"neighbors_of", (PyCFunction)HNSW_neighbors_of, METH_VARARGS,
     "neighbors_of(i, level=0) -> int64 array: the links of node i."},
    {"nb_neighbors", (PyCFunction)HNSW_nb_neighbors, METH_O,
     "nb_neighbors(level) -> links per node at that level (2M on level 0)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef HNSW_getset[] = {
    {"efConstruction", (getter)HNSW_get, (setter)HNSW_set,
     "beam width of the build", (void *)0},
    {"efSearch", (getter)HNSW_get, (setter)HNSW_set,
     "beam width of the search (per-call: SearchParametersHNSW)", (void *)1},
    {"max_level", (getter)HNSW_get, NULL, "top level of the graph (-1 empty)",
     (void *)2},
    {"entry_point", (getter)HNSW_get, NULL, "entry node (-1 empty)", (void *)3},
    {"M", (getter)HNSW_get, NULL, "links per node on the upper levels",
     (void *)4},
    {"is_similarity", (getter)HNSW_get_is_similarity, NULL,
     "whether larger scores are better (inner product)", NULL},
    {"search_bounded_queue", (getter)HNSW_get_sbq, (setter)HNSW_set_sbq,
     "FAISS's queue choice; both run vecdex's one walk (see py_hnsw.c)",
     NULL},
    {"levels", (getter)HNSW_get_levels, NULL,
     "per node: its top level + 1 (a copy, as FAISS's array)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject HNSWType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.HNSW",
    .tp_basicsize = sizeof(HNSWObject),
    .tp_dealloc = (destructor)HNSW_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The graph of an HNSW index (index.hnsw).",
    .tp_methods = HNSW_methods,
    .tp_getset = HNSW_getset,
};

static PyObject *Index_get_hnsw(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    HNSWObject *o = (HNSWObject *)HNSWType.tp_alloc(&HNSWType, 0);
    if (!o) return NULL;
    Py_INCREF(self);
    o->index = self;
    return (PyObject *)o;
}

/* index.storage: the storage index, wrapped once as a child. */
static PyObject *Index_get_storage(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    if (!self->sub) {
        vdx_index *s = vdx_index_hnsw_storage(self->ix);
        if (!s) Py_RETURN_NONE;
        PyObject *child = wrap_node(s, self->owner);
        if (!child) return NULL;
        ((IndexObject *)child)->parent = self;
        self->sub = child;
    }
    Py_INCREF(self->sub);
    return self->sub;
}

/* ========================================================================= */
/* Index types                                                               */
/* ========================================================================= */
static int IndexHNSWFlat_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "M", "metric", NULL};
    long long d;
    int M = 32, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L|ii:IndexHNSWFlat", kwlist, &d,
                                     &M, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_hnsw_flat_new(d, M, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static int IndexHNSWSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "qtype", "M", "metric", NULL};
    long long d;
    int qtype, M = 32, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Li|ii:IndexHNSWSQ", kwlist, &d,
                                     &qtype, &M, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_hnsw_sq_new(d, qtype, M, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static int IndexHNSWPQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "pq_m", "M", "pq_nbits", "metric", NULL};
    long long d, pq_m;
    int M = 32, nbits = 8, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|iii:IndexHNSWPQ", kwlist, &d,
                                     &pq_m, &M, &nbits, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st =
        vdx_index_hnsw_pq_new(d, pq_m, M, nbits, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static int IndexHNSW_init(IndexObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    (void)args;
    (void)kw;
    PyErr_SetString(PyExc_TypeError,
                    "IndexHNSW is abstract: use IndexHNSWFlat, IndexHNSWSQ or "
                    "IndexHNSWPQ");
    return -1;
}

static PyGetSetDef IndexHNSW_getset[] = {
    {"hnsw", (getter)Index_get_hnsw, NULL, "the graph (efSearch, ...)", NULL},
    {"storage", (getter)Index_get_storage, NULL,
     "the index holding the vectors (borrowed)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexHNSWType = INDEX_TYPE_BODY(
    "IndexHNSW",
    "IndexHNSW: base class of the HNSW graph indexes (FAISS's IndexHNSW).",
    &IndexType, IndexHNSW_init, NULL, IndexHNSW_getset);

PyTypeObject IndexHNSWFlatType = INDEX_TYPE_BODY(
    "IndexHNSWFlat",
    "IndexHNSWFlat(d, M=32, metric=METRIC_L2): HNSW graph over float "
    "vectors.",
    &IndexHNSWType, IndexHNSWFlat_init, NULL, NULL);

PyTypeObject IndexHNSWSQType = INDEX_TYPE_BODY(
    "IndexHNSWSQ",
    "IndexHNSWSQ(d, qtype, M=32, metric=METRIC_L2): HNSW graph over "
    "scalar-quantized codes (train first).",
    &IndexHNSWType, IndexHNSWSQ_init, NULL, NULL);

PyTypeObject IndexHNSWPQType = INDEX_TYPE_BODY(
    "IndexHNSWPQ",
    "IndexHNSWPQ(d, pq_m, M=32, pq_nbits=8, metric=METRIC_L2): HNSW graph "
    "over PQ codes (train first).",
    &IndexHNSWType, IndexHNSWPQ_init, NULL, NULL);

int pyvdx_init_hnsw(PyObject *m) {
    if (PyType_Ready(&HNSWType) < 0) return -1;
    Py_INCREF(&HNSWType);
    if (add_object(m, "HNSW", (PyObject *)&HNSWType) < 0) return -1;
    return add_type(m, &IndexHNSWType) < 0 || add_type(m, &IndexHNSWFlatType) < 0 ||
                   add_type(m, &IndexHNSWSQType) < 0 ||
                   add_type(m, &IndexHNSWPQType) < 0
               ? -1
               : 0;
}
