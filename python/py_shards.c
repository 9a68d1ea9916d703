/*
 * py_shards.c — IndexShards, IndexReplicas and IndexShardsIVF (FAISS's
 * classes), merge_knn_results, and the sharded-directory files
 * (write_index_sharded / read_index_sharded).
 *
 * Ownership.  As in FAISS, add_shard(index) does not take the sub-index:
 * the C index borrows it and the Python object keeps a reference to its
 * wrapper (the `shards` list), so it lives as long as it belongs.  While it
 * belongs, the sub-index refuses add / remove_ids / reset made directly
 * (its `parent` is set, as for an IDMap's sub-index): they would leave the
 * IndexShards' totals stale; it is modified through the IndexShards, or
 * after remove_shard.  Indexes read from files own their shards; their
 * wrappers share the file's owner record.
 *
 * Locking.  Searches take the IndexShards' own lock shared: the sub-indexes
 * cannot change under it, since only the IndexShards mutates them.  Calls
 * that mutate (train, add, add_with_ids, remove_ids, reset, add_shard,
 * remove_shard) take exclusively the locks of every owner record in the
 * tree (the IndexShards', each sub-index's, recursively), sorted by
 * address so that two such calls never deadlock, which excludes searches
 * made directly on a sub-index meanwhile.
 */
#include "py_vecdex.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    IndexObject base;
    PyObject *shards; /* list of the sub-index wrappers, in order */
} ShardsObject;

static PyTypeObject IndexShardsType, IndexReplicasType, IndexShardsIVFType;

static int is_shards_obj(PyObject *o) {
    return PyObject_TypeCheck(o, &IndexShardsType) ||
           PyObject_TypeCheck(o, &IndexReplicasType);
}

PyTypeObject *shards_class_for(const vdx_index *ix) {
    switch (vdx_index_is_shards(ix)) {
    case 1: return &IndexShardsType;
    case 2: return &IndexReplicasType;
    case 3: return &IndexShardsIVFType;
    }
    return NULL;
}

/* Wrappers for the sub-indexes of a C shards index read from a file: each
 * becomes the root of an owner record of its own, borrowed by the C index
 * (own = 0) and kept alive by the list, exactly as if add_shard had added
 * it; so every sub-index behaves the same whatever its origin. */
int shards_wrap_children(IndexObject *obj, owner_t *o) {
    (void)o;
    ShardsObject *s = (ShardsObject *)obj;
    s->shards = PyList_New(0);
    if (!s->shards) return -1;
    int64_t n = vdx_index_shards_count(obj->ix);
    for (int64_t i = 0; i < n; i++) {
        vdx_index *sub = vdx_index_shards_at(obj->ix, i);
        if (!vdx_index_shards_owns(obj->ix, i)) continue; /* cannot happen */
        vdx_index_shards_set_own(obj->ix, i, 0);
        PyObject *c = wrap_tree(sub); /* frees sub on failure */
        if (!c) return -1;
        ((IndexObject *)c)->parent = obj;
        int r = PyList_Append(s->shards, c);
        Py_DECREF(c);
        if (r < 0) return -1;
    }
    return 0;
}

/* ---- lock sets ------------------------------------------------------------ */
typedef struct {
    owner_t **o;
    Py_ssize_t n, cap;
} lockset;

static int ls_add(lockset *l, owner_t *o) {
    for (Py_ssize_t i = 0; i < l->n; i++)
        if (l->o[i] == o) return 0;
    if (l->n == l->cap) {
        Py_ssize_t nc = l->cap ? 2 * l->cap : 8;
        owner_t **p = PyMem_Realloc(l->o, (size_t)nc * sizeof *p);
        if (!p) {
            PyErr_NoMemory();
            return -1;
        }
        l->o = p;
        l->cap = nc;
    }
    l->o[l->n++] = o;
    return 0;
}

static int ls_collect(lockset *l, IndexObject *x) {
    if (ls_add(l, x->owner) < 0) return -1;
    if (!is_shards_obj((PyObject *)x)) return 0;
    PyObject *lst = ((ShardsObject *)x)->shards;
    for (Py_ssize_t i = 0; lst && i < PyList_GET_SIZE(lst); i++)
        if (ls_collect(l, (IndexObject *)PyList_GET_ITEM(lst, i)) < 0) return -1;
    return 0;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(owner_t *const *)a, y = (uintptr_t)*(owner_t *const *)b;
    return x < y ? -1 : x > y;
}

static void ls_lock(lockset *l) {
    qsort(l->o, (size_t)l->n, sizeof *l->o, cmp_ptr);
    for (Py_ssize_t i = 0; i < l->n; i++) rw_wrlock(&l->o[i]->lock);
}

static void ls_unlock(lockset *l) {
    for (Py_ssize_t i = l->n; i-- > 0;) rw_wrunlock(&l->o[i]->lock);
}

static void ls_free(lockset *l) { PyMem_Free(l->o); }

/* Runs `call` with the GIL released under the exclusive locks of every
 * owner in self's tree (plus `extra` when not NULL). */
#define RUN_TREE_LOCKED(self, extra, e, call)                               \
    do {                                                                    \
        lockset ls_ = {0};                                                  \
        if (ls_collect(&ls_, (IndexObject *)(self)) < 0 ||                  \
            ((extra) && ls_add(&ls_, (extra)) < 0)) {                       \
            ls_free(&ls_);                                                  \
            return NULL;                                                    \
        }                                                                   \
        Py_BEGIN_ALLOW_THREADS                                              \
        ls_lock(&ls_);                                                      \
        cerr_capture(&(e), (call));                                         \
        ls_unlock(&ls_);                                                    \
        Py_END_ALLOW_THREADS                                                \
        ls_free(&ls_);                                                      \
    } while (0)

/* ---- constructors -------------------------------------------------------- */
static int init_new(ShardsObject *self, vdx_status st, vdx_index *ix) {
    if (index_take_root(&self->base, st, ix) < 0) return -1;
    self->shards = PyList_New(0);
    return self->shards ? 0 : -1;
}

static int IndexShards_init(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "threaded", "successive_ids", NULL};
    PyObject *a0 = NULL;
    int threaded = 0, succ = 1;
    long long d = 0;
    if (index_init_once(&self->base)) return -1;
    /* FAISS's overloads: (d, threaded=False, successive_ids=True) and
     * (threaded, successive_ids) with d from the first shard */
    if (PyTuple_GET_SIZE(args) >= 1 && PyBool_Check(PyTuple_GET_ITEM(args, 0))) {
        static char *kw2[] = {"threaded", "successive_ids", NULL};
        if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp:IndexShards", kw2,
                                         &threaded, &succ))
            return -1;
    } else {
        if (!PyArg_ParseTupleAndKeywords(args, kw, "|Opp:IndexShards", kwlist,
                                         &a0, &threaded, &succ))
            return -1;
        if (a0) {
            d = PyLong_AsLongLong(a0);
            if (d == -1 && PyErr_Occurred()) return -1;
        }
    }
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_shards_new(d, threaded, succ, &ix);
    return init_new(self, st, ix);
}

static int IndexReplicas_init(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"d", "threaded", NULL};
    PyObject *a0 = NULL;
    int threaded = 1;
    long long d = 0;
    if (index_init_once(&self->base)) return -1;
    if (PyTuple_GET_SIZE(args) >= 1 && PyBool_Check(PyTuple_GET_ITEM(args, 0))) {
        static char *kw2[] = {"threaded", NULL};
        if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:IndexReplicas", kw2, &threaded))
            return -1;
    } else {
        if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op:IndexReplicas", kwlist,
                                         &a0, &threaded))
            return -1;
        if (a0) {
            d = PyLong_AsLongLong(a0);
            if (d == -1 && PyErr_Occurred()) return -1;
        }
    }
    vdx_index *ix = NULL;
    vdx_status st = vdx_index_replicas_new(d, threaded, &ix);
    return init_new(self, st, ix);
}

typedef struct {
    long long nlist;
    int threaded, succ;
} sivf_args;

static vdx_status build_sivf(vdx_index *q, void *ctx, vdx_index **out) {
    const sivf_args *a = ctx;
    return vdx_index_shards_ivf_new(q, a->nlist, a->threaded, a->succ, out);
}

static int IndexShardsIVF_init(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "nlist", "threaded", "successive_ids", NULL};
    PyObject *qo;
    sivf_args a = {0, 0, 1};
    if (index_init_once(&self->base)) return -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!L|pp:IndexShardsIVF", kwlist,
                                     &IndexType, &qo, &a.nlist, &a.threaded, &a.succ))
        return -1;
    if (adopt_quantizer((IndexObject *)self, qo, build_sivf, &a) < 0) return -1;
    self->shards = PyList_New(0);
    return self->shards ? 0 : -1;
}

/* ---- GC ------------------------------------------------------------------- */
static int Shards_traverse(ShardsObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->shards);
    return Index_traverse(&self->base, visit, arg);
}

static void release_children(ShardsObject *self) {
    PyObject *lst = self->shards;
    for (Py_ssize_t i = 0; lst && i < PyList_GET_SIZE(lst); i++) {
        IndexObject *c = (IndexObject *)PyList_GET_ITEM(lst, i);
        if (c->parent == &self->base) c->parent = NULL;
    }
}

static int Shards_clear(ShardsObject *self) {
    release_children(self);
    Py_CLEAR(self->shards);
    return Index_clear(&self->base);
}

static void Shards_dealloc(ShardsObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->base.weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    /* the C index goes first: it borrows the sub-indexes the list keeps */
    owner_t *o = self->base.owner;
    self->base.owner = NULL;
    self->base.ix = NULL;
    release_children(self);
    PyObject *lst = self->shards;
    self->shards = NULL;
    Index_clear(&self->base);
    owner_decref(o);
    Py_XDECREF(lst);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- membership ------------------------------------------------------------ */
static const char *part(ShardsObject *self) {
    return vdx_index_is_shards(self->base.ix) == 2 ? "replica" : "shard";
}

static PyObject *Shards_add_shard(ShardsObject *self, PyObject *arg) {
    if (mutable_(&self->base, "add_shard") < 0) return NULL;
    if (!PyObject_TypeCheck(arg, &IndexType)) {
        PyErr_Format(PyExc_TypeError, "add_%s: expected a vecdex Index, got %.200s",
                     part(self), Py_TYPE(arg)->tp_name);
        return NULL;
    }
    IndexObject *c = (IndexObject *)arg;
    if (ready(c) < 0) return NULL;
    if (c == &self->base) {
        PyErr_Format(PyExc_ValueError, "add_%s: an index cannot be its own %s",
                     part(self), part(self));
        return NULL;
    }
    if (c->parent || c->initialising || c->owner->root != c->ix) {
        PyErr_Format(PyExc_ValueError,
                     "add_%s: this index already belongs to another index "
                     "(%.100s); remove it from there or add a new one",
                     part(self), c->parent ? Py_TYPE(c->parent)->tp_name : "gone");
        return NULL;
    }
    /* listed (and parented) before the C call: a lock set collected from
     * now on includes it */
    if (PyList_Append(self->shards, arg) < 0) return NULL;
    c->parent = &self->base;
    cerr e;
    RUN_TREE_LOCKED(self, c->owner, e, vdx_index_shards_add(self->base.ix, c->ix, 0));
    if (e.st != VDX_OK) {
        c->parent = NULL;
        Py_ssize_t n = PyList_GET_SIZE(self->shards);
        PyList_SetSlice(self->shards, n - 1, n, NULL);
        return raise_cerr(&e);
    }
    Py_RETURN_NONE;
}

static PyObject *Shards_remove_shard(ShardsObject *self, PyObject *arg) {
    if (mutable_(&self->base, "remove_shard") < 0) return NULL;
    Py_ssize_t at = -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->shards); i++)
        if (PyList_GET_ITEM(self->shards, i) == arg) at = i;
    if (at < 0) {
        PyErr_Format(PyExc_ValueError, "remove_%s: the index is not one of the "
                     "%zd %ss",
                     part(self), PyList_GET_SIZE(self->shards), part(self));
        return NULL;
    }
    IndexObject *c = (IndexObject *)arg;
    cerr e;
    RUN_TREE_LOCKED(self, NULL, e, vdx_index_shards_remove(self->base.ix, c->ix));
    if (e.st != VDX_OK) return raise_cerr(&e);
    c->parent = NULL;
    PyList_SetSlice(self->shards, at, at + 1, NULL);
    Py_RETURN_NONE;
}

static PyObject *Shards_at(ShardsObject *self, PyObject *arg) {
    Py_ssize_t i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = self->shards ? PyList_GET_SIZE(self->shards) : 0;
    if (i < 0 || i >= n) {
        PyErr_Format(PyExc_IndexError, "at(%zd): there are %zd %ss", i, n,
                     self->shards ? part(self) : "shard");
        return NULL;
    }
    PyObject *r = PyList_GET_ITEM(self->shards, i);
    Py_INCREF(r);
    return r;
}

static PyObject *Shards_count(ShardsObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromSsize_t(self->shards ? PyList_GET_SIZE(self->shards) : 0);
}

static PyObject *Shards_sync(ShardsObject *self, PyObject *unused) {
    (void)unused;
    if (ready(&self->base) < 0) return NULL;
    cerr e;
    RUN_TREE_LOCKED(self, NULL, e, vdx_index_shards_sync(self->base.ix));
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

/* ---- mutations under the tree's locks ------------------------------------- */
static PyObject *Shards_train(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:train", kwlist, &xo)) return NULL;
    if (mutable_(&self->base, "train") < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->base.ix), "x");
    if (!x) return NULL;
    int64_t n = PyArray_DIM(x, 0);
    const float *xp = PyArray_DATA(x);
    cerr e;
    lockset ls = {0};
    if (ls_collect(&ls, &self->base) < 0) {
        ls_free(&ls);
        Py_DECREF(x);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    ls_lock(&ls);
    cerr_capture(&e, vdx_index_train(self->base.ix, n, xp));
    ls_unlock(&ls);
    Py_END_ALLOW_THREADS
    ls_free(&ls);
    Py_DECREF(x);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *add_impl(ShardsObject *self, PyObject *xo, PyObject *io,
                          const char *what) {
    if (mutable_(&self->base, what) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, vdx_index_d(self->base.ix), "x");
    if (!x) return NULL;
    int64_t n = PyArray_DIM(x, 0);
    PyArrayObject *ids = NULL;
    if (io) {
        ids = as_vector(io, NPY_INT64, (npy_intp)n, "ids");
        if (!ids) {
            Py_DECREF(x);
            return NULL;
        }
    }
    const float *xp = PyArray_DATA(x);
    const vdx_idx_t *ip = ids ? PyArray_DATA(ids) : NULL;
    cerr e = {VDX_OK, ""};
    lockset ls = {0};
    if (ls_collect(&ls, &self->base) < 0) {
        ls_free(&ls);
        Py_DECREF(x);
        Py_XDECREF(ids);
        return NULL;
    }
    if (n > 0) {
        Py_BEGIN_ALLOW_THREADS
        ls_lock(&ls);
        cerr_capture(&e, ip ? vdx_index_add_with_ids(self->base.ix, n, xp, ip)
                            : vdx_index_add(self->base.ix, n, xp));
        ls_unlock(&ls);
        Py_END_ALLOW_THREADS
    }
    ls_free(&ls);
    Py_DECREF(x);
    Py_XDECREF(ids);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *Shards_add(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:add", kwlist, &xo)) return NULL;
    return add_impl(self, xo, NULL, "add");
}

static PyObject *Shards_add_with_ids(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", "ids", NULL};
    PyObject *xo, *io;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:add_with_ids", kwlist, &xo, &io))
        return NULL;
    return add_impl(self, xo, io, "add_with_ids");
}

static PyObject *Shards_reset(ShardsObject *self, PyObject *unused) {
    (void)unused;
    if (mutable_(&self->base, "reset") < 0) return NULL;
    cerr e;
    RUN_TREE_LOCKED(self, NULL, e, vdx_index_reset(self->base.ix));
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *Shards_remove_ids(ShardsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:remove_ids", kwlist, &xo)) return NULL;
    if (mutable_(&self->base, "remove_ids") < 0) return NULL;
    const vdx_selector *sel;
    vdx_selector *tmp = NULL;
    cerr e;
    if (PyObject_TypeCheck(xo, &SelectorType)) {
        sel = get_selector(xo, "x");
        if (!sel) return NULL;
    } else {
        PyArrayObject *ids = as_vector(xo, NPY_INT64, -1, "x");
        if (!ids) return NULL;
        cerr_capture(&e, vdx_selector_batch(PyArray_DIM(ids, 0), PyArray_DATA(ids), &tmp));
        Py_DECREF(ids);
        if (e.st != VDX_OK) return raise_cerr(&e);
        sel = tmp;
    }
    int64_t nremoved = 0;
    lockset ls = {0};
    if (ls_collect(&ls, &self->base) < 0) {
        ls_free(&ls);
        vdx_selector_free(tmp);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    ls_lock(&ls);
    cerr_capture(&e, vdx_index_remove_ids(self->base.ix, sel, &nremoved));
    ls_unlock(&ls);
    Py_END_ALLOW_THREADS
    ls_free(&ls);
    vdx_selector_free(tmp);
    if (e.st != VDX_OK) return raise_cerr(&e);
    return PyLong_FromLongLong(nremoved);
}

/* ---- attributes ------------------------------------------------------------ */
static PyObject *Shards_get_successive(ShardsObject *self, void *c) {
    (void)c;
    if (ready(&self->base) < 0) return NULL;
    return PyBool_FromLong(vdx_index_shards_successive_ids(self->base.ix));
}

static PyObject *Shards_get_threaded(ShardsObject *self, void *c) {
    (void)c;
    if (ready(&self->base) < 0) return NULL;
    return PyBool_FromLong(vdx_index_shards_threaded(self->base.ix));
}

/* FAISS code sets own_indices / own_fields to hand sub-indexes over; here
 * the Python references keep them alive either way: accepted, no effect. */
static PyObject *Shards_get_own(ShardsObject *self, void *c) {
    (void)self;
    (void)c;
    Py_RETURN_FALSE;
}

static int Shards_set_own(ShardsObject *self, PyObject *v, void *c) {
    (void)self;
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete own_indices");
        return -1;
    }
    return PyObject_IsTrue(v) < 0 ? -1 : 0;
}

static PyObject *SIVF_get_cp(ShardsObject *self, void *c) {
    (void)c;
    if (ready(&self->base) < 0) return NULL;
    return cp_view(vdx_index_shards_ivf_cp(self->base.ix), (PyObject *)self);
}

static PyMethodDef Shards_methods[] = {
    {"add_shard", (PyCFunction)Shards_add_shard, METH_O,
     "add_shard(index): adds a sub-index (kept by reference, as in FAISS)."},
    {"addIndex", (PyCFunction)Shards_add_shard, METH_O, "addIndex(index): add_shard."},
    {"remove_shard", (PyCFunction)Shards_remove_shard, METH_O,
     "remove_shard(index): removes a sub-index (it can be modified again)."},
    {"removeIndex", (PyCFunction)Shards_remove_shard, METH_O,
     "removeIndex(index): remove_shard."},
    {"at", (PyCFunction)Shards_at, METH_O, "at(i) -> sub-index i."},
    {"count", (PyCFunction)Shards_count, METH_NOARGS, "count() -> number of sub-indexes."},
    {"syncWithSubIndexes", (PyCFunction)Shards_sync, METH_NOARGS,
     "syncWithSubIndexes(): recomputes ntotal, is_trained from the sub-indexes."},
    {"train", METH_KW_FN(Shards_train), METH_VARARGS | METH_KEYWORDS,
     "train(x): trains every sub-index (IndexShardsIVF: the quantizer, then "
     "the shards)."},
    {"add", METH_KW_FN(Shards_add), METH_VARARGS | METH_KEYWORDS,
     "add(x): shard s gets rows [s n/S, (s+1) n/S) (replicas: all rows)."},
    {"add_with_ids", METH_KW_FN(Shards_add_with_ids), METH_VARARGS | METH_KEYWORDS,
     "add_with_ids(x, ids): with successive_ids=False only."},
    {"reset", (PyCFunction)Shards_reset, METH_NOARGS, "reset(): empties every sub-index."},
    {"remove_ids", METH_KW_FN(Shards_remove_ids), METH_VARARGS | METH_KEYWORDS,
     "remove_ids(x) -> int: removes from every sub-index."},
    {NULL, NULL, 0, NULL}};

static PyMethodDef Replicas_methods[] = {
    {"add_shard", (PyCFunction)Shards_add_shard, METH_O,
     "add_shard(index): adds a sub-index (kept by reference, as in FAISS)."},
    {"addIndex", (PyCFunction)Shards_add_shard, METH_O, "addIndex(index): add_shard."},
    {"remove_shard", (PyCFunction)Shards_remove_shard, METH_O,
     "remove_shard(index): removes a sub-index (it can be modified again)."},
    {"removeIndex", (PyCFunction)Shards_remove_shard, METH_O,
     "removeIndex(index): remove_shard."},
    {"at", (PyCFunction)Shards_at, METH_O, "at(i) -> sub-index i."},
    {"count", (PyCFunction)Shards_count, METH_NOARGS, "count() -> number of sub-indexes."},
    {"syncWithSubIndexes", (PyCFunction)Shards_sync, METH_NOARGS,
     "syncWithSubIndexes(): recomputes ntotal, is_trained from the sub-indexes."},
    {"train", METH_KW_FN(Shards_train), METH_VARARGS | METH_KEYWORDS,
     "train(x): trains every sub-index (IndexShardsIVF: the quantizer, then "
     "the shards)."},
    {"add", METH_KW_FN(Shards_add), METH_VARARGS | METH_KEYWORDS,
     "add(x): shard s gets rows [s n/S, (s+1) n/S) (replicas: all rows)."},
    {"add_with_ids", METH_KW_FN(Shards_add_with_ids), METH_VARARGS | METH_KEYWORDS,
     "add_with_ids(x, ids): with successive_ids=False only."},
    {"reset", (PyCFunction)Shards_reset, METH_NOARGS, "reset(): empties every sub-index."},
    {"remove_ids", METH_KW_FN(Shards_remove_ids), METH_VARARGS | METH_KEYWORDS,
     "remove_ids(x) -> int: removes from every sub-index."},
    {"add_replica", (PyCFunction)Shards_add_shard, METH_O,
     "add_replica(index): adds a replica (same vectors as the others)."},
    {"remove_replica", (PyCFunction)Shards_remove_shard, METH_O,
     "remove_replica(index): removes a replica."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Shards_getset[] = {
    {"successive_ids", (getter)Shards_get_successive, NULL,
     "whether shard ids are shifted by the sizes of the shards before", NULL},
    {"threaded", (getter)Shards_get_threaded, NULL,
     "one worker thread per sub-index", NULL},
    {"own_indices", (getter)Shards_get_own, (setter)Shards_set_own,
     "accepted for FAISS compatibility (Python references keep sub-indexes "
     "alive)", NULL},
    {"own_fields", (getter)Shards_get_own, (setter)Shards_set_own, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef SIVF_getset[] = {
    {"quantizer", (getter)Index_get_sub, NULL, "the common coarse quantizer", NULL},
    {"cp", (getter)SIVF_get_cp, NULL, "k-means parameters of the quantizer", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

#define SHARDS_TYPE(name, doc, base, init, methods, getset)                 \
    {                                                                       \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex." name,           \
        .tp_basicsize = sizeof(ShardsObject),                               \
        .tp_dealloc = (destructor)Shards_dealloc,                           \
        .tp_flags = INDEX_FLAGS,                                            \
        .tp_doc = doc,                                                      \
        .tp_traverse = (traverseproc)Shards_traverse,                       \
        .tp_clear = (inquiry)Shards_clear,                                  \
        .tp_weaklistoffset = offsetof(IndexObject, weakreflist),            \
        .tp_methods = methods,                                              \
        .tp_getset = getset,                                                \
        .tp_base = base,                                                    \
        .tp_dictoffset = offsetof(IndexObject, dict),                       \
        .tp_init = (initproc)init,                                          \
        .tp_new = PyType_GenericNew,                                        \
    }

static PyTypeObject IndexShardsType = SHARDS_TYPE(
    "IndexShards",
    "IndexShards(d=0, threaded=False, successive_ids=True): a database split "
    "over sub-indexes searched together (FAISS's IndexShards); search "
    "parameters reach every shard.",
    &IndexType, IndexShards_init, Shards_methods, Shards_getset);
static PyTypeObject IndexReplicasType = SHARDS_TYPE(
    "IndexReplicas",
    "IndexReplicas(d=0, threaded=True): copies of one index, each answering "
    "a slice of every query batch (FAISS's IndexReplicas).",
    &IndexType, IndexReplicas_init, Replicas_methods, Shards_getset);
static PyTypeObject IndexShardsIVFType = SHARDS_TYPE(
    "IndexShardsIVF",
    "IndexShardsIVF(quantizer, nlist, threaded=False, successive_ids=True): "
    "IVF shards sharing one coarse quantizer (FAISS's IndexShardsIVF); "
    "unlike FAISS's, searches keep the caller's selector.",
    &IndexShardsType, IndexShardsIVF_init, NULL, SIVF_getset);

/* ---- module functions -------------------------------------------------------- */
static PyObject *mod_merge_knn_results(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"Dall", "Iall", "keep_max", NULL};
    PyObject *Do, *Io;
    int keep_max = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p:merge_knn_results", kwlist,
                                     &Do, &Io, &keep_max))
        return NULL;
    PyArrayObject *Da = as_array(Do, NPY_FLOAT32), *Ia = NULL, *Dn = NULL, *In = NULL;
    if (!Da) return NULL;
    Ia = as_array(Io, NPY_INT64);
    if (!Ia) goto fail;
    if (PyArray_NDIM(Da) != 3 || PyArray_NDIM(Ia) != 3 ||
        PyArray_DIM(Da, 0) != PyArray_DIM(Ia, 0) || PyArray_DIM(Da, 1) != PyArray_DIM(Ia, 1) ||
        PyArray_DIM(Da, 2) != PyArray_DIM(Ia, 2)) {
        char a[160], b[160];
        format_shape(a, sizeof a, PyArray_NDIM(Da), PyArray_DIMS(Da));
        format_shape(b, sizeof b, PyArray_NDIM(Ia), PyArray_DIMS(Ia));
        PyErr_Format(ShapeError,
                     "merge_knn_results: Dall %s and Iall %s must both be "
                     "(nshard, nq, k)",
                     a, b);
        goto fail;
    }
    npy_intp dims[2] = {PyArray_DIM(Da, 1), PyArray_DIM(Da, 2)};
    Dn = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    In = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT64);
    if (!Dn || !In) goto fail;
    cerr e;
    const float *dp = PyArray_DATA(Da);
    const vdx_idx_t *ip = PyArray_DATA(Ia);
    float *dn = PyArray_DATA(Dn);
    vdx_idx_t *in = PyArray_DATA(In);
    int64_t ns = PyArray_DIM(Da, 0), nq = dims[0], k = dims[1];
    if (nq == 0 || k == 0) {
        cerr_capture(&e, VDX_OK);
    } else {
        Py_BEGIN_ALLOW_THREADS
        cerr_capture(&e, vdx_merge_knn_results(nq, k, ns, dp, ip, keep_max, dn, in));
        Py_END_ALLOW_THREADS
    }
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        goto fail;
    }
    Py_DECREF(Da);
    Py_DECREF(Ia);
    return Py_BuildValue("NN", Dn, In);
fail:
    Py_XDECREF(Da);
    Py_XDECREF(Ia);
    Py_XDECREF(Dn);
    Py_XDECREF(In);
    return NULL;
}

static PyObject *mod_write_sharded(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"index", "dirname", NULL};
    PyObject *io, *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO&:write_index_sharded", kwlist,
                                     &io, PyUnicode_FSConverter, &path))
        return NULL;
    if (!is_shards_obj(io) || ready((IndexObject *)io) < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError,
                         "write_index_sharded: expected an IndexShards, "
                         "IndexShardsIVF or IndexReplicas, got %.200s",
                         Py_TYPE(io)->tp_name);
        Py_DECREF(path);
        return NULL;
    }
    IndexObject *ix = (IndexObject *)io;
    const char *p = PyBytes_AS_STRING(path);
    cerr e;
    /* shared lock: sub-indexes only change under the tree's exclusive ones */
    RUN_LOCKED(ix->owner, rd, e, vdx_write_sharded(ix->ix, p));
    Py_DECREF(path);
    if (e.st != VDX_OK) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static PyObject *mod_read_sharded(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"dirname", "io_flags", NULL};
    PyObject *path = NULL;
    int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|i:read_index_sharded", kwlist,
                                     PyUnicode_FSConverter, &path, &flags))
        return NULL;
    const char *p = PyBytes_AS_STRING(path);
    vdx_index *ix = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_read_sharded(p, flags, &ix));
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (e.st != VDX_OK) return raise_cerr(&e);
    return wrap_tree(ix);
}

static PyMethodDef shards_functions[] = {
    {"merge_knn_results", METH_KW_FN(mod_merge_knn_results), METH_VARARGS | METH_KEYWORDS,
     "merge_knn_results(Dall, Iall, keep_max=False) -> (D, I): merges "
     "(nshard, nq, k) sorted results into the (nq, k) best, ties to the "
     "lower id."},
    {"write_index_sharded", METH_KW_FN(mod_write_sharded), METH_VARARGS | METH_KEYWORDS,
     "write_index_sharded(index, dirname): a directory of FAISS files plus "
     "a manifest (FAISS has no format for sharded indexes)."},
    {"read_index_sharded", METH_KW_FN(mod_read_sharded), METH_VARARGS | METH_KEYWORDS,
     "read_index_sharded(dirname) -> IndexShards / IndexReplicas / "
     "IndexShardsIVF."},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_shards(PyObject *m) {
    PyTypeObject *types[] = {&IndexShardsType, &IndexReplicasType, &IndexShardsIVFType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    return PyModule_AddFunctions(m, shards_functions);
}
