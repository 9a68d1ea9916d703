/*
 * py_selectors.c — IDSelector* (which ids a search or remove_ids considers)
 * and SearchParameters / SearchParametersIVF (per-call search settings).
 *
 * Selectors are immutable; composite selectors keep Python references to
 * their children (the C composites borrow them).  SearchParameters keep a
 * reference to their selector; a search copies the parameters and holds that
 * reference for the duration of the call (get_params).
 */
#include "py_vecdex.h"

/* ========================================================================= */
/* Selectors                                                                 */
/* ========================================================================= */
static PyTypeObject SelectorRangeType, SelectorBatchType,
    SelectorArrayType, SelectorBitmapType, SelectorNotType, SelectorAndType,
    SelectorOrType;

const vdx_selector *get_selector(PyObject *o, const char *what) {
    if (!PyObject_TypeCheck(o, &SelectorType)) {
        PyErr_Format(PyExc_TypeError, "%s must be an IDSelector, got %.200s",
                     what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    const vdx_selector *s = ((SelectorObject *)o)->sel;
    if (!s)
        PyErr_Format(PyExc_TypeError, "%s is an uninitialised IDSelector",
                     what);
    return s;
}

static void Selector_dealloc(SelectorObject *self) {
    vdx_selector_free(self->sel); /* before the children it borrows */
    self->sel = NULL;
    Py_CLEAR(self->a);
    Py_CLEAR(self->b);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Wraps a freshly built C selector into a new object of `type`. */
static PyObject *selector_wrap(PyTypeObject *type, vdx_status st,
                               vdx_selector *sel) {
    if (st != VDX_OK) return raise_status(st);
    SelectorObject *self = (SelectorObject *)type->tp_alloc(type, 0);
    if (!self) {
        vdx_selector_free(sel);
        return NULL;
    }
    self->sel = sel;
    return (PyObject *)self;
}

static PyObject *Selector_is_member(SelectorObject *self, PyObject *arg) {
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    const vdx_selector *s = get_selector((PyObject *)self, "self");
    if (!s) return NULL;
    return PyBool_FromLong(vdx_selector_is_member(s, (vdx_idx_t)id));
}

static PyMethodDef Selector_methods[] = {
    {"is_member", (PyCFunction)Selector_is_member, METH_O,
     "is_member(id) -> bool: whether id is in the selection."},
    {NULL, NULL, 0, NULL}};

static PyObject *SelectorRange_new(PyTypeObject *type, PyObject *args,
                                   PyObject *kw) {
    static char *kwlist[] = {"imin", "imax", "assume_sorted", NULL};
    long long imin, imax;
    int sorted = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|p:IDSelectorRange", kwlist,
                                     &imin, &imax, &sorted))
        return NULL;
    vdx_selector *sel = NULL;
    vdx_status st = vdx_selector_range(imin, imax, &sel);
    PyObject *o = selector_wrap(type, st, sel);
    if (o) {
        SelectorObject *s = (SelectorObject *)o;
        s->imin = imin;
        s->imax = imax;
        s->assume_sorted = sorted;
    }
    return o;
}

static PyObject *SelectorRange_get(SelectorObject *self, void *which) {
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLongLong(self->imin);
    case 1: return PyLong_FromLongLong(self->imax);
    default: return PyBool_FromLong(self->assume_sorted);
    }
}

static PyGetSetDef SelectorRange_getset[] = {
    {"imin", (getter)SelectorRange_get, NULL, "first id", (void *)0},
    {"imax", (getter)SelectorRange_get, NULL, "end of the range", (void *)1},
    {"assume_sorted", (getter)SelectorRange_get, NULL, "ids sorted hint",
     (void *)2},
    {NULL, NULL, NULL, NULL, NULL}};

/* Parses (array) or (n, array) as FAISS's subset selectors accept; returns a
 * new 1-D contiguous array and the count to use, or NULL. */
static PyArrayObject *parse_subset(PyObject *args, PyObject *kw,
                                   int typenum, const char *name,
                                   npy_intp *n_out) {
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if ((kw && PyDict_GET_SIZE(kw) > 0) || nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "%s(ids) or %s(n, ids) takes one or two positional "
                     "arguments",
                     name, name);
        return NULL;
    }
    long long n = -1;
    if (nargs == 2) {
        n = PyLong_AsLongLong(PyTuple_GET_ITEM(args, 0));
        if (n == -1 && PyErr_Occurred()) return NULL;
        if (n < 0) {
            PyErr_Format(ShapeError, "%s: n must be >= 0, got %lld", name, n);
            return NULL;
        }
    }
    PyObject *src = PyTuple_GET_ITEM(args, nargs - 1);
    PyArrayObject *a;
    if (typenum == NPY_UINT8 && PyArray_Check(src) &&
        PyArray_TYPE((PyArrayObject *)src) != NPY_UINT8) {
        /* FAISS takes a uint8 pointer; a bool mask here is a classic slip. */
        PyErr_Format(PyExc_TypeError,
                     "%s expects a uint8 array of packed bits (e.g. "
                     "np.packbits(mask, bitorder='little'))",
                     name);
        return NULL;
    }
    a = as_vector(src, typenum, -1, "ids");
    if (!a) return NULL;
    if (n > (long long)PyArray_DIM(a, 0)) {
        PyErr_Format(ShapeError, "%s: n=%lld but the array has %lld entries",
                     name, n, (long long)PyArray_DIM(a, 0));
        Py_DECREF(a);
        return NULL;
    }
    *n_out = n >= 0 ? (npy_intp)n : PyArray_DIM(a, 0);
    return a;
}

static PyObject *SelectorBatch_new(PyTypeObject *type, PyObject *args,
                                   PyObject *kw) {
    npy_intp n;
    PyArrayObject *a = parse_subset(args, kw, NPY_INT64, "IDSelectorBatch", &n);
    if (!a) return NULL;
    vdx_selector *sel = NULL;
    vdx_status st = vdx_selector_batch(n, PyArray_DATA(a), &sel);
    Py_DECREF(a);
    return selector_wrap(type, st, sel);
}

static PyObject *SelectorArray_new(PyTypeObject *type, PyObject *args,
                                   PyObject *kw) {
    npy_intp n;
    PyArrayObject *a = parse_subset(args, kw, NPY_INT64, "IDSelectorArray", &n);
    if (!a) return NULL;
    vdx_selector *sel = NULL;
    vdx_status st = vdx_selector_array(n, PyArray_DATA(a), &sel);
    Py_DECREF(a);
    return selector_wrap(type, st, sel);
}

static PyObject *SelectorBitmap_new(PyTypeObject *type, PyObject *args,
                                    PyObject *kw) {
    npy_intp n;
    PyArrayObject *a =
        parse_subset(args, kw, NPY_UINT8, "IDSelectorBitmap", &n);
    if (!a) return NULL;
    vdx_selector *sel = NULL;
    vdx_status st = vdx_selector_bitmap(n, PyArray_DATA(a), &sel);
    Py_DECREF(a);
    return selector_wrap(type, st, sel);
}

static PyObject *SelectorNot_new(PyTypeObject *type, PyObject *args,
                                 PyObject *kw) {
    static char *kwlist[] = {"sel", NULL};
    PyObject *ao;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:IDSelectorNot", kwlist, &ao))
        return NULL;
    const vdx_selector *a = get_selector(ao, "sel");
    if (!a) return NULL;
    vdx_selector *sel = NULL;
    vdx_status st = vdx_selector_not(a, &sel);
    PyObject *o = selector_wrap(type, st, sel);
    if (o) {
        Py_INCREF(ao);
        ((SelectorObject *)o)->a = ao;
    }
    return o;
}

static PyObject *selector_binary(PyTypeObject *type, PyObject *args,
                                 PyObject *kw, int is_and) {
    static char *kwlist[] = {"lhs", "rhs", NULL};
    PyObject *ao, *bo;
    if (!PyArg_ParseTupleAndKeywords(args, kw,
                                     is_and ? "OO:IDSelectorAnd"
                                            : "OO:IDSelectorOr",
                                     kwlist, &ao, &bo))
        return NULL;
    const vdx_selector *a = get_selector(ao, "lhs");
    if (!a) return NULL;
    const vdx_selector *b = get_selector(bo, "rhs");
    if (!b) return NULL;
    vdx_selector *sel = NULL;
    vdx_status st = is_and ? vdx_selector_and(a, b, &sel)
                           : vdx_selector_or(a, b, &sel);
    PyObject *o = selector_wrap(type, st, sel);
    if (o) {
        Py_INCREF(ao);
        Py_INCREF(bo);
        ((SelectorObject *)o)->a = ao;
        ((SelectorObject *)o)->b = bo;
    }
    return o;
}

static PyObject *SelectorAnd_new(PyTypeObject *type, PyObject *args,
                                 PyObject *kw) {
    return selector_binary(type, args, kw, 1);
}

static PyObject *SelectorOr_new(PyTypeObject *type, PyObject *args,
                                PyObject *kw) {
    return selector_binary(type, args, kw, 0);
}

#define SELECTOR_TYPE(var, name, doc, newfn, getset)                       \
    static PyTypeObject var = {                                            \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex." name,          \
        .tp_basicsize = sizeof(SelectorObject),                            \
        .tp_dealloc = (destructor)Selector_dealloc,                        \
        .tp_flags = Py_TPFLAGS_DEFAULT,                                    \
        .tp_doc = doc,                                                     \
        .tp_getset = getset,                                               \
        .tp_base = &SelectorType,                                          \
        .tp_new = newfn,                                                   \
    }

PyTypeObject SelectorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.IDSelector",
    .tp_basicsize = sizeof(SelectorObject),
    .tp_dealloc = (destructor)Selector_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base class of the id selectors (abstract).",
    .tp_methods = Selector_methods,
};

SELECTOR_TYPE(SelectorRangeType, "IDSelectorRange",
              "IDSelectorRange(imin, imax, assume_sorted=False): ids in "
              "[imin, imax).",
              SelectorRange_new, SelectorRange_getset);
SELECTOR_TYPE(SelectorBatchType, "IDSelectorBatch",
              "IDSelectorBatch(ids) or IDSelectorBatch(n, ids): a set of ids "
              "(hash set).",
              SelectorBatch_new, NULL);
SELECTOR_TYPE(SelectorArrayType, "IDSelectorArray",
              "IDSelectorArray(ids) or IDSelectorArray(n, ids): a list of ids.",
              SelectorArray_new, NULL);
SELECTOR_TYPE(SelectorBitmapType, "IDSelectorBitmap",
              "IDSelectorBitmap(bitmap) or IDSelectorBitmap(n, bitmap): id i "
              "is selected when bitmap[i >> 3] >> (i & 7) & 1 (n = bytes).",
              SelectorBitmap_new, NULL);
SELECTOR_TYPE(SelectorNotType, "IDSelectorNot",
              "IDSelectorNot(sel): ids not in sel.", SelectorNot_new, NULL);
SELECTOR_TYPE(SelectorAndType, "IDSelectorAnd",
              "IDSelectorAnd(lhs, rhs): ids in both.", SelectorAnd_new, NULL);
SELECTOR_TYPE(SelectorOrType, "IDSelectorOr",
              "IDSelectorOr(lhs, rhs): ids in either.", SelectorOr_new, NULL);

/* ========================================================================= */
/* Search parameters                                                         */
/* ========================================================================= */
typedef struct {
    PyObject_HEAD
    vdx_search_params p;
    PyObject *sel;  /* IDSelector or NULL */
    PyObject *base; /* IndexRefineSearchParameters: base_index_params */
} ParamsObject;

static PyTypeObject ParamsType, ParamsIVFType, ParamsRefineType;

static PyObject *Params_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    ParamsObject *self = (ParamsObject *)type->tp_alloc(type, 0);
    if (self) vdx_search_params_init(&self->p);
    return (PyObject *)self;
}

static void Params_dealloc(ParamsObject *self) {
    Py_CLEAR(self->sel);
    Py_CLEAR(self->base);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Params_set_sel(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete sel");
        return -1;
    }
    const vdx_selector *s = NULL;
    if (v != Py_None) {
        s = get_selector(v, "sel");
        if (!s) return -1;
    }
    PyObject *old = self->sel;
    if (v != Py_None) Py_INCREF(v);
    self->sel = v == Py_None ? NULL : v;
    self->p.sel = s;
    Py_XDECREF(old);
    return 0;
}

static PyObject *Params_get_sel(ParamsObject *self, void *c) {
    (void)c;
    PyObject *r = self->sel ? self->sel : Py_None;
    Py_INCREF(r);
    return r;
}

static int set_count(int64_t *field, PyObject *v, const char *name) {
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError, "cannot delete %s", name);
        return -1;
    }
    long long n = PyLong_AsLongLong(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %lld", name, n);
        return -1;
    }
    *field = n;
    return 0;
}

static PyObject *Params_get_nprobe(ParamsObject *self, void *c) {
    (void)c;
    return PyLong_FromLongLong(self->p.nprobe);
}
static int Params_set_nprobe(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    return set_count(&self->p.nprobe, v, "nprobe");
}
static PyObject *Params_get_max_codes(ParamsObject *self, void *c) {
    (void)c;
    return PyLong_FromLongLong(self->p.max_codes);
}
static int Params_set_max_codes(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    return set_count(&self->p.max_codes, v, "max_codes");
}

static int Params_init(ParamsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"sel", NULL};
    PyObject *sel = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:SearchParameters", kwlist,
                                     &sel))
        return -1;
    return Params_set_sel(self, sel, NULL);
}

static int ParamsIVF_init(ParamsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"sel", "nprobe", "max_codes", NULL};
    PyObject *sel = Py_None, *nprobe = NULL, *max_codes = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOO:SearchParametersIVF",
                                     kwlist, &sel, &nprobe, &max_codes))
        return -1;
    if (Params_set_sel(self, sel, NULL) < 0) return -1;
    if (nprobe && set_count(&self->p.nprobe, nprobe, "nprobe") < 0) return -1;
    if (max_codes && set_count(&self->p.max_codes, max_codes, "max_codes") < 0)
        return -1;
    return 0;
}

static int Params_set_k_factor(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete k_factor");
        return -1;
    }
    double f = PyFloat_AsDouble(v);
    if (f == -1.0 && PyErr_Occurred()) return -1;
    if (!(f >= 1.0) || f > 1e9) {
        /* PyErr_Format has no %g: the number goes through %R */
        PyErr_Format(PyExc_ValueError, "k_factor must be in [1, 1e9], got %R", v);
        return -1;
    }
    self->p.k_factor = (float)f;
    return 0;
}
static PyObject *Params_get_k_factor(ParamsObject *self, void *c) {
    (void)c;
    return PyFloat_FromDouble(self->p.k_factor);
}
static int Params_set_base(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot delete base_index_params");
        return -1;
    }
    if (v != Py_None && !PyObject_TypeCheck(v, &ParamsType)) {
        PyErr_Format(PyExc_TypeError,
                     "base_index_params must be a SearchParameters, got "
                     "%.200s",
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    /* a chain through itself would make get_params loop */
    for (PyObject *b = v; b && b != Py_None; b = ((ParamsObject *)b)->base)
        if (b == (PyObject *)self) {
            PyErr_SetString(PyExc_ValueError,
                            "base_index_params cannot contain itself");
            return -1;
        }
    PyObject *old = self->base;
    if (v != Py_None) Py_INCREF(v);
    self->base = v == Py_None ? NULL : v;
    Py_XDECREF(old);
    return 0;
}
static PyObject *Params_get_base(ParamsObject *self, void *c) {
    (void)c;
    PyObject *r = self->base ? self->base : Py_None;
    Py_INCREF(r);
    return r;
}

static int ParamsRefine_init(ParamsObject *self, PyObject *args,
                             PyObject *kw) {
    static char *kwlist[] = {"sel", "k_factor", "base_index_params", NULL};
    PyObject *sel = Py_None, *kf = NULL, *base = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw,
                                     "|OOO:IndexRefineSearchParameters",
                                     kwlist, &sel, &kf, &base))
        return -1;
    if (Params_set_sel(self, sel, NULL) < 0) return -1;
    self->p.k_factor = 1.0f; /* FAISS's default */
    if (kf && Params_set_k_factor(self, kf, NULL) < 0) return -1;
    return Params_set_base(self, base, NULL);
}

static PyGetSetDef ParamsRefine_getset[] = {
    {"k_factor", (getter)Params_get_k_factor, (setter)Params_set_k_factor,
     "the base index fetches k * k_factor candidates", NULL},
    {"base_index_params", (getter)Params_get_base, (setter)Params_set_base,
     "SearchParameters passed to the base index's search, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

/* SearchParametersPreTransform(sel=None, index_params=None): index_params
 * (kept in `base`) go to the sub-index of an IndexPreTransform. */
static int ParamsPT_init(ParamsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"sel", "index_params", NULL};
    PyObject *sel = Py_None, *base = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw,
                                     "|OO:SearchParametersPreTransform",
                                     kwlist, &sel, &base))
        return -1;
    if (Params_set_sel(self, sel, NULL) < 0) return -1;
    return Params_set_base(self, base, NULL);
}

static PyGetSetDef ParamsPT_getset[] = {
    {"index_params", (getter)Params_get_base, (setter)Params_set_base,
     "SearchParameters passed to the sub-index's search, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef Params_getset[] = {
    {"sel", (getter)Params_get_sel, (setter)Params_set_sel,
     "IDSelector restricting the search, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef ParamsIVF_getset[] = {
    {"nprobe", (getter)Params_get_nprobe, (setter)Params_set_nprobe,
     "number of inverted lists probed (0 = the index's own)", NULL},
    {"max_codes", (getter)Params_get_max_codes, (setter)Params_set_max_codes,
     "stop after this many codes (0 = no limit)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ParamsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.SearchParameters",
    .tp_basicsize = sizeof(ParamsObject),
    .tp_dealloc = (destructor)Params_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SearchParameters(sel=None): per-call search settings.",
    .tp_getset = Params_getset,
    .tp_init = (initproc)Params_init,
    .tp_new = Params_new,
};

static PyTypeObject ParamsIVFType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.SearchParametersIVF",
    .tp_basicsize = sizeof(ParamsObject),
    .tp_dealloc = (destructor)Params_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SearchParametersIVF(sel=None, nprobe=0, max_codes=0).",
    .tp_getset = ParamsIVF_getset,
    .tp_init = (initproc)ParamsIVF_init,
    .tp_base = &ParamsType,
    .tp_new = Params_new,
};

static PyObject *Params_get_efSearch(ParamsObject *self, void *c) {
    (void)c;
    return PyLong_FromLong(self->p.efSearch);
}
static int Params_set_efSearch(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    int64_t ef = 0;
    if (set_count(&ef, v, "efSearch") < 0) return -1;
    if (ef > (1 << 20)) {
        PyErr_Format(PyExc_ValueError, "efSearch must be <= %d, got %lld",
                     1 << 20, (long long)ef);
        return -1;
    }
    self->p.efSearch = (int)ef;
    return 0;
}

static int ParamsHNSW_init(ParamsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"sel", "efSearch", NULL};
    PyObject *sel = Py_None, *ef = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:SearchParametersHNSW",
                                     kwlist, &sel, &ef))
        return -1;
    if (Params_set_sel(self, sel, NULL) < 0) return -1;
    self->p.efSearch = 16; /* FAISS's default, not the index's */
    return ef ? Params_set_efSearch(self, ef, NULL) : 0;
}

static PyGetSetDef ParamsHNSW_getset[] = {
    {"efSearch", (getter)Params_get_efSearch, (setter)Params_set_efSearch,
     "beam width of this search (0 = the index's own)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ParamsHNSWType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex.SearchParametersHNSW",
    .tp_basicsize = sizeof(ParamsObject),
    .tp_dealloc = (destructor)Params_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SearchParametersHNSW(sel=None, efSearch=16).",
    .tp_getset = ParamsHNSW_getset,
    .tp_init = (initproc)ParamsHNSW_init,
    .tp_base = &ParamsType,
    .tp_new = Params_new,
};

/* SearchParametersResidualCoarseQuantizer(beam_factor=4) */
static PyObject *Params_get_bf(ParamsObject *self, void *c) {
    (void)c;
    return PyFloat_FromDouble(self->p.beam_factor);
}

static int Params_set_bf(ParamsObject *self, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete beam_factor");
        return -1;
    }
    double f = PyFloat_AsDouble(v);
    if (f == -1 && PyErr_Occurred()) return -1;
    if (f != f || f > 1e6) {
        PyErr_Format(PyExc_ValueError,
                     "beam_factor must be finite and at most 1e6, got %R", v);
        return -1;
    }
    /* 0 would mean "the index's own" in the C struct: keep a beam of k */
    self->p.beam_factor = f == 0 ? -1.0f : (float)f;
    return 0;
}

static int ParamsRCQ_init(ParamsObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"sel", "beam_factor", NULL};
    PyObject *sel = Py_None, *bf = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw,
                                     "|OO:SearchParametersResidualCoarseQuantizer",
                                     kwlist, &sel, &bf))
        return -1;
    if (Params_set_sel(self, sel, NULL) < 0) return -1;
    self->p.beam_factor = 4.0f; /* FAISS's default, not the index's */
    return bf ? Params_set_bf(self, bf, NULL) : 0;
}

static PyGetSetDef ParamsRCQ_getset[] = {
    {"beam_factor", (getter)Params_get_bf, (setter)Params_set_bf,
     "beam of k * beam_factor (< 0: exhaustive search)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ParamsRCQType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name =
        "vecdex.SearchParametersResidualCoarseQuantizer",
    .tp_basicsize = sizeof(ParamsObject),
    .tp_dealloc = (destructor)Params_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SearchParametersResidualCoarseQuantizer(sel=None, beam_factor=4).",
    .tp_getset = ParamsRCQ_getset,
    .tp_init = (initproc)ParamsRCQ_init,
    .tp_base = &ParamsType,
    .tp_new = Params_new,
};

static PyTypeObject ParamsRefineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name =
        "vecdex.IndexRefineSearchParameters",
    .tp_basicsize = sizeof(ParamsObject),
    .tp_dealloc = (destructor)Params_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "IndexRefineSearchParameters(sel=None, k_factor=1, "
              "base_index_params=None).",
    .tp_getset = ParamsRefine_getset,
    .tp_init = (initproc)ParamsRefine_init,
    .tp_base = &ParamsType,
    .tp_new = Params_new,
};

static PyTypeObject ParamsPTType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name =
        "vecdex.SearchParametersPreTransform",
    .tp_basicsize = sizeof(ParamsObject),
    .tp_dealloc = (destructor)Params_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SearchParametersPreTransform(sel=None, index_params=None): "
              "index_params go to the sub-index of an IndexPreTransform.",
    .tp_getset = ParamsPT_getset,
    .tp_init = (initproc)ParamsPT_init,
    .tp_base = &ParamsType,
    .tp_new = Params_new,
};

int get_params(PyObject *po, vdx_search_params *out,
                      const vdx_search_params **pp, PyObject **keep) {
    *pp = NULL;
    *keep = NULL;
    if (po == NULL || po == Py_None) return 0;
    if (!PyObject_TypeCheck(po, &ParamsType)) {
        PyErr_Format(PyExc_TypeError,
                     "params must be a SearchParameters, got %.200s",
                     Py_TYPE(po)->tp_name);
        return -1;
    }
    ParamsObject *p = (ParamsObject *)po;
    *out = p->p;
    out->sel = p->sel ? ((SelectorObject *)p->sel)->sel : NULL;
    out->base_params = NULL;
    if (p->base) {
        /* nested parameters (IndexRefineSearchParameters): the call uses
         * the nested objects' own structs, so they and their selectors are
         * kept alive together (a tuple) */
        int depth = 0;
        for (ParamsObject *b = (ParamsObject *)p->base; b;
             b = (ParamsObject *)b->base)
            depth++;
        PyObject *t = PyTuple_New(2 + 2 * depth);
        if (!t) return -1;
        PyObject *ps = p->sel ? p->sel : Py_None;
        Py_INCREF(po);
        PyTuple_SET_ITEM(t, 0, po);
        Py_INCREF(ps);
        PyTuple_SET_ITEM(t, 1, ps);
        int i = 2;
        for (ParamsObject *b = (ParamsObject *)p->base; b;
             b = (ParamsObject *)b->base, i += 2) {
            Py_INCREF(b);
            PyTuple_SET_ITEM(t, i, (PyObject *)b);
            PyObject *bs = b->sel ? b->sel : Py_None;
            Py_INCREF(bs);
            PyTuple_SET_ITEM(t, i + 1, bs);
            b->p.sel = b->sel ? ((SelectorObject *)b->sel)->sel : NULL;
            b->p.base_params = b->base ? &((ParamsObject *)b->base)->p : NULL;
        }
        out->base_params = &((ParamsObject *)p->base)->p;
        *keep = t;
        *pp = out;
        return 0;
    }
    Py_XINCREF(p->sel);
    *keep = p->sel;
    *pp = out;
    return 0;
}

int pyvdx_init_selectors(PyObject *m) {
    PyTypeObject *types[] = {
        &SelectorType,      &SelectorRangeType,  &SelectorBatchType,
        &SelectorArrayType, &SelectorBitmapType, &SelectorNotType,
        &SelectorAndType,   &SelectorOrType,     &ParamsType,
        &ParamsIVFType,     &ParamsRefineType,   &ParamsPTType,
        &ParamsHNSWType,    &ParamsRCQType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (add_type(m, types[i]) < 0) return -1;
    Py_INCREF(&ParamsIVFType);
    return add_object(m, "IVFSearchParameters", (PyObject *)&ParamsIVFType);
}
