/*
 * py_nsg.c — the k-NN-graph indexes: IndexNNDescent (base) and
 * IndexNNDescentFlat with its `index.nndescent` view (K, S, R, L, iter,
 * search_L, random_seed, has_built, final_graph), IndexNSG (base) and
 * IndexNSGFlat / IndexNSGPQ / IndexNSGSQ with their own fields (GK,
 * build_type, nndescent_*, is_built), `index.build(x, knn_graph)` and the
 * `index.nsg` view (R, L, C, search_L, enterpoint, is_built, ntotal,
 * dfs(vt, root, cnt)), and VisitedTable (also VisitedTableVector), the
 * visited marks FAISS's NSG.dfs fills.  `index.storage` is the storage
 * index, a borrowed child as for HNSW.
 */
#include "py_vecdex.h"

/* ========================================================================= */
/* VisitedTable                                                              */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    uint8_t *v;
    Py_ssize_t n;
} VisitedObject;

static void Visited_dealloc(VisitedObject *self) {
    PyMem_Free(self->v);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Visited_init(VisitedObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"size", NULL};
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n:VisitedTable", kwlist, &n))
        return -1;
    if (n < 0 || n > ((Py_ssize_t)1 << 40)) {
        PyErr_Format(PyExc_ValueError, "VisitedTable: size=%zd out of range", n);
        return -1;
    }
    PyMem_Free(self->v);
    self->v = PyMem_Calloc((size_t)(n ? n : 1), 1);
    if (!self->v) {
        PyErr_NoMemory();
        return -1;
    }
    self->n = n;
    return 0;
}

static int visited_index(VisitedObject *self, PyObject *arg, Py_ssize_t *i) {
    *i = PyLong_AsSsize_t(arg);
    if (*i == -1 && PyErr_Occurred()) return -1;
    if (*i < 0 || *i >= self->n) {
        PyErr_Format(PyExc_IndexError, "VisitedTable: %zd not in 0..%zd", *i,
                     self->n - 1);
        return -1;
    }
    return 0;
}

static PyObject *Visited_get(VisitedObject *self, PyObject *arg) {
    Py_ssize_t i;
    if (visited_index(self, arg, &i) < 0) return NULL;
    return PyBool_FromLong(self->v[i]);
}

static PyObject *Visited_set(VisitedObject *self, PyObject *arg) {
    Py_ssize_t i;
    if (visited_index(self, arg, &i) < 0) return NULL;
    self->v[i] = 1;
    Py_RETURN_NONE;
}

static PyObject *Visited_advance(VisitedObject *self, PyObject *unused) {
    (void)unused;
    memset(self->v, 0, (size_t)self->n);
    Py_RETURN_NONE;
}

static PyMethodDef Visited_methods[] = {
    {"get", (PyCFunction)Visited_get, METH_O, "get(i) -> whether i is marked"},
    {"set", (PyCFunction)Visited_set, METH_O, "set(i): marks i"},
    {"advance", (PyCFunction)Visited_advance, METH_NOARGS, "clears every mark"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject VisitedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.VisitedTable",
    .tp_basicsize = sizeof(VisitedObject),
    .tp_dealloc = (destructor)Visited_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "VisitedTable(size): one mark per node (NSG.dfs fills it).",
    .tp_methods = Visited_methods,
    .tp_init = (initproc)Visited_init,
    .tp_new = PyType_GenericNew,
};

/* ========================================================================= */
/* The .nndescent and .nsg views                                             */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    IndexObject *index; /* strong */
} GraphViewObject;

static void View_dealloc(GraphViewObject *self) {
    Py_CLEAR(self->index);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int get_int(PyObject *v, const char *name, int *out) {
    if (!v) {
        PyErr_Format(PyExc_AttributeError, "cannot delete %s", name);
        return -1;
    }
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < INT32_MIN || x > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s=%lld does not fit an int", name, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* --- nndescent: which = 0 K, 1 S, 2 R, 3 L, 4 iter, 5 search_L, 6 seed,
 * 7 has_built, 8 d, 9 ntotal */
static int *nnd_field(vdx_nndescent_params *p, int w) {
    switch (w) {
    case 0: return &p->K;
    case 1: return &p->S;
    case 2: return &p->R;
    case 3: return &p->L;
    case 4: return &p->iter;
    case 5: return &p->search_L;
    case 6: return &p->random_seed;
    default: return &p->has_built;
    }
}
static const char *nnd_names[] = {"K", "S", "R", "L", "iter", "search_L",
                                  "random_seed", "has_built"};

static PyObject *NND_get(GraphViewObject *self, void *which) {
    if (ready(self->index) < 0) return NULL;
    int w = (int)(intptr_t)which;
    if (w == 8) return PyLong_FromLongLong(vdx_index_d(self->index->ix));
    vdx_nndescent_params p;
    cerr e;
    RUN_LOCKED(self->index->owner, rd, e, vdx_index_nndescent_get(self->index->ix, &p));
    if (e.st != VDX_OK) return raise_cerr(&e);
    if (w == 9)
        return PyLong_FromLongLong(p.has_built ? vdx_index_ntotal(self->index->ix) : 0);
    if (w == 7) return PyBool_FromLong(p.has_built);
    return PyLong_FromLong(*nnd_field(&p, w));
}

static int NND_set(GraphViewObject *self, PyObject *v, void *which) {
    int w = (int)(intptr_t)which, x;
    if (get_int(v, nnd_names[w], &x) < 0 || ready(self->index) < 0) return -1;
    vdx_nndescent_params p;
    cerr e;
    vdx_index *ix = self->index->ix;
    RUN_LOCKED(self->index->owner, rd, e, vdx_index_nndescent_get(ix, &p));
    if (e.st == VDX_OK) {
        *nnd_field(&p, w) = x;
        RUN_LOCKED(self->index->owner, wr, e, vdx_index_nndescent_set(ix, &p));
    }
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

/* nndescent.final_graph: ntotal x K int32 (a copy, FAISS's vector). */
static PyObject *NND_get_graph(GraphViewObject *self, void *c) {
    (void)c;
    if (ready(self->index) < 0) return NULL;
    owner_rdlock_gil(self->index->owner);
    int64_t len = 0;
    vdx_status st = vdx_index_nndescent_graph(self->index->ix, NULL, 0, &len);
    PyObject *a = NULL;
    if (st == VDX_OK) {
        npy_intp n = (npy_intp)len;
        a = PyArray_SimpleNew(1, &n, NPY_INT32);
        if (a)
            st = vdx_index_nndescent_graph(self->index->ix,
                                           PyArray_DATA((PyArrayObject *)a), len, &len);
    }
    rw_rdunlock(&self->index->owner->lock);
    if (st != VDX_OK) {
        Py_XDECREF(a);
        return raise_status(st);
    }
    return a;
}

static PyGetSetDef NND_getset[] = {
    {"K", (getter)NND_get, NULL, "neighbours per node", (void *)0},
    {"S", (getter)NND_get, (setter)NND_set, "new candidates sampled per node", (void *)1},
    {"R", (getter)NND_get, (setter)NND_set, "reverse links kept per node", (void *)2},
    {"L", (getter)NND_get, (setter)NND_set, "build pool per node", (void *)3},
    {"iter", (getter)NND_get, (setter)NND_set, "iterations", (void *)4},
    {"search_L", (getter)NND_get, (setter)NND_set, "search pool", (void *)5},
    {"random_seed", (getter)NND_get, (setter)NND_set, "seed", (void *)6},
    {"has_built", (getter)NND_get, NULL, "whether the graph is built", (void *)7},
    {"d", (getter)NND_get, NULL, "dimension", (void *)8},
    {"ntotal", (getter)NND_get, NULL, "nodes of the graph", (void *)9},
    {"final_graph", (getter)NND_get_graph, NULL,
     "the k-NN graph, ntotal x K int32 (a copy)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject NNDType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.NNDescent",
    .tp_basicsize = sizeof(GraphViewObject),
    .tp_dealloc = (destructor)View_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The NN-descent graph of an IndexNNDescent (index.nndescent).",
    .tp_getset = NND_getset,
};

/* --- nsg (and the IndexNSG fields): which = 0 R, 1 L, 2 C, 3 search_L,
 * 4 GK, 5 build_type, 6..9 nndescent S R L iter, 10 enterpoint,
 * 11 is_built, 12 ntotal */
static int *nsg_field(vdx_nsg_params *p, int w) {
    switch (w) {
    case 0: return &p->R;
    case 1: return &p->L;
    case 2: return &p->C;
    case 3: return &p->search_L;
    case 4: return &p->GK;
    case 5: return &p->build_type;
    case 6: return &p->nndescent_S;
    case 7: return &p->nndescent_R;
    case 8: return &p->nndescent_L;
    case 9: return &p->nndescent_iter;
    case 10: return &p->enterpoint;
    default: return &p->is_built;
    }
}
static const char *nsg_names[] = {"R", "L", "C", "search_L", "GK",
                                  "build_type", "nndescent_S", "nndescent_R",
                                  "nndescent_L", "nndescent_iter"};

static PyObject *nsg_get(IndexObject *index, int w) {
    if (ready(index) < 0) return NULL;
    vdx_nsg_params p;
    cerr e;
    RUN_LOCKED(index->owner, rd, e, vdx_index_nsg_get(index->ix, &p));
    if (e.st != VDX_OK) return raise_cerr(&e);
    if (w == 12)
        return PyLong_FromLongLong(p.is_built ? vdx_index_ntotal(index->ix) : 0);
    if (w == 11) return PyBool_FromLong(p.is_built);
    return PyLong_FromLong(*nsg_field(&p, w));
}

static int nsg_set(IndexObject *index, PyObject *v, int w) {
    int x;
    if (get_int(v, nsg_names[w], &x) < 0 || ready(index) < 0) return -1;
    vdx_nsg_params p;
    cerr e;
    RUN_LOCKED(index->owner, rd, e, vdx_index_nsg_get(index->ix, &p));
    if (e.st == VDX_OK) {
        *nsg_field(&p, w) = x;
        RUN_LOCKED(index->owner, wr, e, vdx_index_nsg_set(index->ix, &p));
    }
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyObject *NSGV_get(GraphViewObject *self, void *which) {
    return nsg_get(self->index, (int)(intptr_t)which);
}
static int NSGV_set(GraphViewObject *self, PyObject *v, void *which) {
    return nsg_set(self->index, v, (int)(intptr_t)which);
}

/* nsg.dfs(vt, root, cnt) -> cnt + the nodes newly reached from root */
static PyObject *NSGV_dfs(GraphViewObject *self, PyObject *args) {
    PyObject *vto;
    long long root, cnt;
    if (!PyArg_ParseTuple(args, "OLL:dfs", &vto, &root, &cnt)) return NULL;
    if (!PyObject_TypeCheck(vto, &VisitedType)) {
        PyErr_SetString(PyExc_TypeError, "dfs: vt must be a VisitedTable");
        return NULL;
    }
    if (ready(self->index) < 0) return NULL;
    VisitedObject *vt = (VisitedObject *)vto;
    int64_t out = 0;
    cerr e;
    RUN_LOCKED(self->index->owner, rd, e,
               vdx_index_nsg_dfs(self->index->ix, vt->v, vt->n, root, cnt, &out));
    if (e.st != VDX_OK) return raise_cerr(&e);
    return PyLong_FromLongLong(out);
}

/* nsg.neighbors_of(i) -> int64 array of node i's links */
static PyObject *NSGV_neighbors_of(GraphViewObject *self, PyObject *arg) {
    long long i = PyLong_AsLongLong(arg);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (ready(self->index) < 0) return NULL;
    vdx_nsg_params p;
    cerr e;
    RUN_LOCKED(self->index->owner, rd, e, vdx_index_nsg_get(self->index->ix, &p));
    if (e.st != VDX_OK) return raise_cerr(&e);
    npy_intp n = p.R;
    PyObject *a = PyArray_SimpleNew(1, &n, NPY_INT64);
    if (!a) return NULL;
    int cnt = 0;
    RUN_LOCKED(self->index->owner, rd, e,
               vdx_index_nsg_neighbors(self->index->ix, i,
                                       PyArray_DATA((PyArrayObject *)a), &cnt));
    if (e.st != VDX_OK) {
        Py_DECREF(a);
        return raise_cerr(&e);
    }
    PyObject *r = PySequence_GetSlice(a, 0, cnt);
    Py_DECREF(a);
    return r;
}

static PyMethodDef NSGV_methods[] = {
    {"dfs", (PyCFunction)NSGV_dfs, METH_VARARGS,
     "dfs(vt, root, cnt) -> cnt plus the nodes newly marked in vt by a "
     "depth-first walk from root"},
    {"neighbors_of", (PyCFunction)NSGV_neighbors_of, METH_O,
     "neighbors_of(i) -> int64 array: the links of node i"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef NSGV_getset[] = {
    {"R", (getter)NSGV_get, NULL, "out-degree bound", (void *)0},
    {"L", (getter)NSGV_get, (setter)NSGV_set, "pool while linking", (void *)1},
    {"C", (getter)NSGV_get, (setter)NSGV_set, "candidates per node", (void *)2},
    {"search_L", (getter)NSGV_get, (setter)NSGV_set, "search pool", (void *)3},
    {"enterpoint", (getter)NSGV_get, NULL, "navigating node (-1 unbuilt)", (void *)10},
    {"is_built", (getter)NSGV_get, NULL, "whether the graph is built", (void *)11},
    {"ntotal", (getter)NSGV_get, NULL, "nodes of the graph", (void *)12},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject NSGViewType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.NSG",
    .tp_basicsize = sizeof(GraphViewObject),
    .tp_dealloc = (destructor)View_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The graph of an IndexNSG (index.nsg).",
    .tp_methods = NSGV_methods,
    .tp_getset = NSGV_getset,
};

static PyObject *make_view(IndexObject *self, PyTypeObject *t) {
    if (ready(self) < 0) return NULL;
    GraphViewObject *o = (GraphViewObject *)t->tp_alloc(t, 0);
    if (!o) return NULL;
    Py_INCREF(self);
    o->index = self;
    return (PyObject *)o;
}

static PyObject *Index_get_nnd(IndexObject *self, void *c) {
    (void)c;
    return make_view(self, &NNDType);
}
static PyObject *Index_get_nsg(IndexObject *self, void *c) {
    (void)c;
    return make_view(self, &NSGViewType);
}

/* index.storage: the storage index, wrapped once as a child (wrap_node
 * wraps it when the index comes from a file or a factory). */
static PyObject *Index_get_storage(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    if (!self->sub) {
        vdx_index *s = vdx_index_nsg_storage(self->ix);
        if (!s) s = vdx_index_nndescent_storage(self->ix);
        if (!s) Py_RETURN_NONE;
        PyObject *child = wrap_node(s, self->owner);
        if (!child) return NULL;
        ((IndexObject *)child)->parent = self;
        self->sub = child;
    }
    Py_INCREF(self->sub);
    return self->sub;
}

static PyObject *IndexNSG_get(IndexObject *self, void *which) {
    return nsg_get(self, (int)(intptr_t)which);
}
static int IndexNSG_set(IndexObject *self, PyObject *v, void *which) {
    return nsg_set(self, v, (int)(intptr_t)which);
}

/* index.build(x, knn_graph): FAISS's IndexNSG.build (GK = its columns). */
static PyObject *IndexNSG_build(IndexObject *self, PyObject *args) {
    PyObject *xo, *ko;
    if (!PyArg_ParseTuple(args, "OO:build", &xo, &ko)) return NULL;
    if (mutable_(self, "build") < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->ix), "x");
    if (!x) return NULL;
    PyArrayObject *k = as_array(ko, NPY_INT64);
    if (!k) {
        Py_DECREF(x);
        return NULL;
    }
    npy_intp n = PyArray_DIM(x, 0);
    if (PyArray_NDIM(k) != 2 || PyArray_DIM(k, 0) != n || PyArray_DIM(k, 1) < 1) {
        char got[64];
        format_shape(got, sizeof got, PyArray_NDIM(k), PyArray_DIMS(k));
        PyErr_Format(ShapeError,
                     "build: knn_graph must be (n=%zd, GK >= 1), got %s",
                     (Py_ssize_t)n, got);
        Py_DECREF(x);
        Py_DECREF(k);
        return NULL;
    }
    long long gk = (long long)PyArray_DIM(k, 1);
    if (gk > INT32_MAX) gk = INT32_MAX;
    cerr e;
    RUN_LOCKED(self->owner, wr, e,
               vdx_index_nsg_build(self->ix, n, PyArray_DATA(x),
                                   PyArray_DATA(k), (int)gk));
    Py_DECREF(x);
    Py_DECREF(k);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* ========================================================================= */
/* Index types                                                               */
/* ========================================================================= */
static int IndexNNDescentFlat_init(IndexObject *self, PyObject *args,
                                   PyObject *kw) {
    static char *kwlist[] = {"d", "K", "metric", NULL};
    long long d;
    int K = 32, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L|ii:IndexNNDescentFlat",
                                     kwlist, &d, &K, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_nndescent_flat_new(d, K, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static int IndexNSGFlat_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "R", "metric", NULL};
    long long d;
    int R = 32, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "L|ii:IndexNSGFlat", kwlist, &d,
                                     &R, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_nsg_flat_new(d, R, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static int IndexNSGPQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "pq_m", "M", "pq_nbits", NULL};
    long long d, pq_m;
    int M = 32, nbits = 8;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|ii:IndexNSGPQ", kwlist, &d,
                                     &pq_m, &M, &nbits))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_nsg_pq_new(d, pq_m, M, nbits, VDX_METRIC_L2, &ix);
    return index_take_root(self, st, ix);
}

static int IndexNSGSQ_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "qtype", "M", "metric", NULL};
    long long d;
    int qtype, M = 32, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Li|ii:IndexNSGSQ", kwlist, &d,
                                     &qtype, &M, &metric))
        return -1;
    if (index_init_once(self) < 0) return -1;
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_nsg_sq_new(d, qtype, M, (vdx_metric)metric, &ix);
    return index_take_root(self, st, ix);
}

static int abstract_init(IndexObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    (void)args;
    (void)kw;
    PyErr_SetString(PyExc_TypeError,
                    "IndexNSG / IndexNNDescent are abstract: use IndexNSGFlat, "
                    "IndexNSGPQ, IndexNSGSQ or IndexNNDescentFlat");
    return -1;
}

static PyGetSetDef IndexNND_getset[] = {
    {"nndescent", (getter)Index_get_nnd, NULL, "the graph (search_L, ...)", NULL},
    {"storage", (getter)Index_get_storage, NULL,
     "the index holding the vectors (borrowed)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef IndexNSG_methods[] = {
    {"build", (PyCFunction)IndexNSG_build, METH_VARARGS,
     "build(x, knn_graph): adds x to the empty index and builds the graph "
     "from knn_graph (n x GK int64 positions)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef IndexNSG_getset[] = {
    {"nsg", (getter)Index_get_nsg, NULL, "the graph (search_L, ...)", NULL},
    {"storage", (getter)Index_get_storage, NULL,
     "the index holding the vectors (borrowed)", NULL},
    {"GK", (getter)IndexNSG_get, (setter)IndexNSG_set,
     "k of the k-NN graph add builds", (void *)4},
    {"build_type", (getter)IndexNSG_get, (setter)IndexNSG_set,
     "0: exact k-NN graph, 1: NN-descent", (void *)5},
    {"nndescent_S", (getter)IndexNSG_get, (setter)IndexNSG_set, "NN-descent S", (void *)6},
    {"nndescent_R", (getter)IndexNSG_get, (setter)IndexNSG_set, "NN-descent R", (void *)7},
    {"nndescent_L", (getter)IndexNSG_get, (setter)IndexNSG_set, "NN-descent L", (void *)8},
    {"nndescent_iter", (getter)IndexNSG_get, (setter)IndexNSG_set,
     "NN-descent iterations", (void *)9},
    {"is_built", (getter)IndexNSG_get, NULL, "whether the graph is built", (void *)11},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexNNDescentType = INDEX_TYPE_BODY(
    "IndexNNDescent", "IndexNNDescent: base of the NN-descent indexes.",
    &IndexType, abstract_init, NULL, IndexNND_getset);

PyTypeObject IndexNNDescentFlatType = INDEX_TYPE_BODY(
    "IndexNNDescentFlat",
    "IndexNNDescentFlat(d, K=32, metric=METRIC_L2): a k-NN graph built by "
    "NN-descent over float vectors, searched best-first.",
    &IndexNNDescentType, IndexNNDescentFlat_init, NULL, NULL);

PyTypeObject IndexNSGType = INDEX_TYPE_BODY(
    "IndexNSG", "IndexNSG: base of the NSG graph indexes.", &IndexType,
    abstract_init, IndexNSG_methods, IndexNSG_getset);

PyTypeObject IndexNSGFlatType = INDEX_TYPE_BODY(
    "IndexNSGFlat",
    "IndexNSGFlat(d, R=32, metric=METRIC_L2): NSG graph over float vectors.",
    &IndexNSGType, IndexNSGFlat_init, NULL, NULL);

PyTypeObject IndexNSGPQType = INDEX_TYPE_BODY(
    "IndexNSGPQ",
    "IndexNSGPQ(d, pq_m, M=32, pq_nbits=8): NSG graph over PQ codes (train "
    "first).",
    &IndexNSGType, IndexNSGPQ_init, NULL, NULL);

PyTypeObject IndexNSGSQType = INDEX_TYPE_BODY(
    "IndexNSGSQ",
    "IndexNSGSQ(d, qtype, M=32, metric=METRIC_L2): NSG graph over "
    "scalar-quantized codes (train first).",
    &IndexNSGType, IndexNSGSQ_init, NULL, NULL);

PyTypeObject *nsg_class_for(const char *tn) {
    if (!strcmp(tn, "IndexNSGFlat")) return &IndexNSGFlatType;
    if (!strcmp(tn, "IndexNSGPQ")) return &IndexNSGPQType;
    if (!strcmp(tn, "IndexNSGSQ")) return &IndexNSGSQType;
    if (!strcmp(tn, "IndexNNDescentFlat")) return &IndexNNDescentFlatType;
    return NULL;
}

int pyvdx_init_nsg(PyObject *m) {
    if (PyType_Ready(&NNDType) < 0 || PyType_Ready(&NSGViewType) < 0 ||
        PyType_Ready(&VisitedType) < 0)
        return -1;
    Py_INCREF(&NNDType);
    if (add_object(m, "NNDescent", (PyObject *)&NNDType) < 0) return -1;
    Py_INCREF(&NSGViewType);
    if (add_object(m, "NSG", (PyObject *)&NSGViewType) < 0) return -1;
    Py_INCREF(&VisitedType);
    if (add_object(m, "VisitedTable", (PyObject *)&VisitedType) < 0) return -1;
    Py_INCREF(&VisitedType);
    if (add_object(m, "VisitedTableVector", (PyObject *)&VisitedType) < 0)
        return -1;
    return add_type(m, &IndexNNDescentType) < 0 ||
                   add_type(m, &IndexNNDescentFlatType) < 0 ||
                   add_type(m, &IndexNSGType) < 0 ||
                   add_type(m, &IndexNSGFlatType) < 0 ||
                   add_type(m, &IndexNSGPQType) < 0 ||
                   add_type(m, &IndexNSGSQType) < 0
               ? -1
               : 0;
}
