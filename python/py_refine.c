/*
 * py_refine.c — IndexRefine(base_index, refine_index) and
 * IndexRefineFlat(base_index): a base index proposes k * k_factor
 * candidates, re-ranked with exact distances to the refine index's vectors.
 *
 * Ownership: the C IndexRefine owns both C indexes.  The base index is
 * adopted as IDMap adopts its sub-index (index_adopt: the owner record of
 * the base becomes the tree's).  The refine index came with an owner record
 * of its own: its wrappers (the refine wrapper and its children) move to
 * the base's record, which the refine record then leaves, so one record
 * owns the whole tree.  `base_index` and `refine_index` keep returning the
 * caller's objects; while the IndexRefine lives they refuse mutations.
 */
#include "py_vecdex.h"

/* Counts the wrappers of the tree under w that belong to owner o. */
static Py_ssize_t count_wrappers(IndexObject *w, owner_t *o) {
    if (!w) return 0;
    return (w->owner == o) + count_wrappers((IndexObject *)w->sub, o) +
           count_wrappers((IndexObject *)w->sub2, o);
}

static void move_wrappers(IndexObject *w, owner_t *to) {
    if (!w) return;
    w->owner = to;
    to->refs++;
    move_wrappers((IndexObject *)w->sub, to);
    move_wrappers((IndexObject *)w->sub2, to);
}

static vdx_status build_refine(vdx_index *base, void *ctx, vdx_index **out) {
    IndexObject *r = ctx;
    rw_wrlock(&r->owner->lock);
    vdx_status st = vdx_index_refine_new(base, r->ix, out);
    rw_wrunlock(&r->owner->lock);
    return st;
}

static vdx_status build_refine_flat(vdx_index *base, void *ctx,
                                    vdx_index **out) {
    (void)ctx;
    return vdx_index_refine_flat_new(base, out);
}

static int IndexRefine_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"base_index", "refine_index", NULL};
    PyObject *bo, *ro;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!:IndexRefine", kwlist,
                                     &IndexType, &bo, &IndexType, &ro))
        return -1;
    IndexObject *b = (IndexObject *)bo, *r = (IndexObject *)ro;
    if (ready(b) < 0 || ready(r) < 0) return -1;
    if (index_init_once(self) < 0) return -1;
    if (b == r || b->owner == r->owner) {
        PyErr_SetString(PyExc_ValueError,
                        "IndexRefine: base and refine must be distinct, "
                        "independent indexes");
        return -1;
    }
    owner_t *ro_owner = r->owner;
    if (r->parent || r->initialising || r == self ||
        ro_owner->root != r->ix ||
        count_wrappers(r, ro_owner) != ro_owner->refs) {
        PyErr_SetString(PyExc_ValueError,
                        "IndexRefine: the refine index already belongs to "
                        "another index (or other objects share it); wrap a "
                        "new one");
        return -1;
    }
    r->parent = self; /* claimed while the GIL is released */
    if (index_adopt(self, bo, build_refine, r) < 0) {
        r->parent = NULL;
        return -1;
    }
    /* the tree is now owned by self->owner (the base's record) */
    move_wrappers(r, self->owner);
    ro_owner->root = NULL;
    ro_owner->refs = 1;
    owner_decref(ro_owner);
    Py_INCREF(ro);
    self->sub2 = ro;
    return 0;
}

static int IndexRefineFlat_init(IndexObject *self, PyObject *args,
                                PyObject *kw) {
    static char *kwlist[] = {"base_index", NULL};
    PyObject *bo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!:IndexRefineFlat", kwlist,
                                     &IndexType, &bo))
        return -1;
    if (index_adopt(self, bo, build_refine_flat, NULL) < 0) return -1;
    PyObject *child = wrap_node(vdx_index_refine_refine(self->ix), self->owner);
    if (!child) return -1;
    ((IndexObject *)child)->parent = self;
    self->sub2 = child;
    return 0;
}

static PyObject *get_refine(IndexObject *self, void *c) {
    (void)c;
    PyObject *r = self->sub2 ? self->sub2 : Py_None;
    Py_INCREF(r);
    return r;
}

static PyObject *get_k_factor(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    owner_rdlock_gil(self->owner);
    float kf = vdx_index_refine_k_factor(self->ix);
    rw_rdunlock(&self->owner->lock);
    return PyFloat_FromDouble(kf);
}

static int set_k_factor(IndexObject *self, PyObject *v, void *c) {
    (void)c;
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete k_factor");
        return -1;
    }
    if (ready(self) < 0) return -1;
    double f = PyFloat_AsDouble(v);
    if (f == -1.0 && PyErr_Occurred()) return -1;
    cerr e;
    owner_t *o = self->owner;
    RUN_LOCKED(o, wr, e, vdx_index_refine_set_k_factor(self->ix, (float)f));
    if (e.st != VDX_OK) {
        raise_cerr(&e);
        return -1;
    }
    return 0;
}

static PyGetSetDef IndexRefine_getset[] = {
    {"base_index", (getter)Index_get_sub, NULL,
     "the index that proposes candidates", NULL},
    {"refine_index", (getter)get_refine, NULL,
     "the index whose vectors re-rank the candidates", NULL},
    {"k_factor", (getter)get_k_factor, (setter)set_k_factor,
     "the base index fetches k * k_factor candidates (default 1)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject IndexRefineType = INDEX_TYPE_BODY(
    "IndexRefine",
    "IndexRefine(base_index, refine_index): re-ranks the base index's "
    "k * k_factor candidates with exact distances to the refine index's "
    "vectors.  Takes ownership of both indexes.",
    &IndexType, IndexRefine_init, NULL, IndexRefine_getset);
PyTypeObject IndexRefineFlatType = INDEX_TYPE_BODY(
    "IndexRefineFlat",
    "IndexRefineFlat(base_index): IndexRefine whose refine index is a flat "
    "index of the raw vectors.  base_index must be empty.",
    &IndexRefineType, IndexRefineFlat_init, NULL, NULL);

int pyvdx_init_refine(PyObject *m) {
    if (add_type(m, &IndexRefineType) < 0) return -1;
    return add_type(m, &IndexRefineFlatType);
}
