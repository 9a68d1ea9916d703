/*
 * py_store.c — vecdex._vecdex._Store, the binding of vdx_store_* (the
 * store over SQLite).  Metadata and filters travel as JSON text; the
 * pure-Python vecdex.Store (python/vecdex/store.py) converts dicts, ids
 * and results.  Every C call runs with the GIL released; the C store
 * does its own locking (many searching threads, one writer).
 */
#include "py_vecdex.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    vdx_store *s;
    int64_t dim;
} StoreObject;

static PyTypeObject StoreType;

static int st_ready(StoreObject *o) {
    if (!o->s) {
        PyErr_SetString(PyExc_RuntimeError, "the store is closed");
        return -1;
    }
    return 0;
}

/* Python ids (int or str) -> keys; the str objects are kept in *keep. */
static vdx_store_key *to_keys(PyObject *ids, Py_ssize_t *n, PyObject **keep) {
    PyObject *seq = PySequence_Fast(ids, "ids must be a sequence");
    if (!seq) return NULL;
    *n = PySequence_Fast_GET_SIZE(seq);
    vdx_store_key *k = PyMem_Calloc((size_t)(*n ? *n : 1), sizeof *k);
    if (!k) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
        if (PyUnicode_Check(v)) {
            k[i].text = PyUnicode_AsUTF8(v);
            if (!k[i].text) goto fail;
        } else {
            long long x = PyLong_AsLongLong(v);
            if (x == -1 && PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError,
                             "ids must be int or str, got %.100s at %zd",
                             Py_TYPE(v)->tp_name, i);
                goto fail;
            }
            k[i].id = x;
        }
    }
    *keep = seq;
    return k;
fail:
    PyMem_Free(k);
    Py_DECREF(seq);
    return NULL;
}

/* None or a list of str/None -> const char ** (borrowed from the list). */
static const char **to_strs(PyObject *o, Py_ssize_t n, const char *what,
                            PyObject **keep) {
    *keep = NULL;
    if (o == NULL || o == Py_None) return NULL;
    PyObject *seq = PySequence_Fast(o, "expected a sequence");
    if (!seq) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(ShapeError, "%s has %zd entries, ids %zd", what,
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return NULL;
    }
    const char **r = PyMem_Calloc((size_t)(n ? n : 1), sizeof *r);
    for (Py_ssize_t i = 0; r && i < n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
        if (v == Py_None) continue;
        if (!PyUnicode_Check(v)) {
            PyErr_Format(PyExc_TypeError, "%s[%zd] must be str or None", what,
                         i);
            PyMem_Free(r);
            Py_DECREF(seq);
            return NULL;
        }
        r[i] = PyUnicode_AsUTF8(v);
        if (!r[i]) {
            /* non-UTF-8 (lone surrogates) */
            PyErr_Clear();
            PyErr_Format(InvalidArgumentError,
                         "%s[%zd] is not valid UTF-8 text", what, i);
            PyMem_Free(r);
            Py_DECREF(seq);
            return NULL;
        }
    }
    if (!r) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    *keep = seq;
    return r;
}

static int opts_from(PyObject *kw, vdx_store_options *o, PyObject **keep) {
    vdx_store_options_init(o);
    *keep = kw;
    if (!kw) return 0;
    PyObject *v;
#define GETS(name, field)                                         \
    if ((v = PyDict_GetItemString(kw, name)) && v != Py_None) {   \
        o->field = PyUnicode_AsUTF8(v);                           \
        if (!o->field) return -1;                                 \
    }
#define GETI(name, field)                                         \
    if ((v = PyDict_GetItemString(kw, name)) && v != Py_None) {   \
        o->field = PyLong_AsLongLong(v);                          \
        if (PyErr_Occurred()) return -1;                          \
    }
    GETS("index", index)
    GETS("schema", schema)
    GETI("metric", metric)
    GETI("text", text)
    GETI("train_size", train_size)
    GETI("read_only", read_only)
    GETI("synchronous", synchronous)
    GETI("busy_timeout_ms", busy_timeout_ms)
    GETI("checkpoint_rows", checkpoint_rows)
    GETI("exact_threshold", exact_threshold)
    return 0;
}

static PyObject *new_store(vdx_store *s) {
    StoreObject *o = PyObject_New(StoreObject, &StoreType);
    if (!o) {
        vdx_store_close(s);
        return NULL;
    }
    o->s = s;
    return (PyObject *)o;
}

/* _Store.create(path, dim, **options) / _Store.open(path, **options) */
static PyObject *st_create(PyObject *cls, PyObject *args, PyObject *kw) {
    (void)cls;
    const char *path;
    long long dim;
    if (!PyArg_ParseTuple(args, "sL", &path, &dim)) return NULL;
    vdx_store_options o;
    PyObject *keep;
    if (opts_from(kw, &o, &keep) < 0) return NULL;
    vdx_store *s = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_create(path, dim, &o, &s));
    Py_END_ALLOW_THREADS
    if (e.st) return raise_cerr(&e);
    return new_store(s);
}

static PyObject *st_open(PyObject *cls, PyObject *args, PyObject *kw) {
    (void)cls;
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    vdx_store_options o;
    PyObject *keep;
    if (opts_from(kw, &o, &keep) < 0) return NULL;
    vdx_store *s = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_open(path, &o, &s));
    Py_END_ALLOW_THREADS
    if (e.st) return raise_cerr(&e);
    return new_store(s);
}

static PyObject *st_close(StoreObject *self, PyObject *unused) {
    (void)unused;
    vdx_store *s = self->s;
    self->s = NULL;
    if (!s) Py_RETURN_NONE;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_close(s));
    Py_END_ALLOW_THREADS
    if (e.st) return raise_cerr(&e);
    Py_RETURN_NONE;
}

static int64_t store_dim(StoreObject *self) {
    /* from the info JSON: "dim":N */
    const char *i = strstr(vdx_store_info(self->s), "\"dim\":");
    return i ? atoll(i + 6) : 0;
}

/* upsert(ids, vectors, metadata_json_list|None, texts|None) */
static PyObject *st_upsert(StoreObject *self, PyObject *args) {
    PyObject *ids, *xo, *mo, *to;
    if (!PyArg_ParseTuple(args, "OOOO", &ids, &xo, &mo, &to)) return NULL;
    if (st_ready(self)) return NULL;
    Py_ssize_t n;
    PyObject *kk, *mk = NULL, *tk = NULL;
    vdx_store_key *keys = to_keys(ids, &n, &kk);
    if (!keys) return NULL;
    PyArrayObject *x = NULL;
    const char **m = NULL, **t = NULL;
    PyObject *r = NULL;
    x = as_matrix(xo, store_dim(self), "vectors");
    if (!x) goto out;
    if (PyArray_DIM(x, 0) != n) {
        PyErr_Format(ShapeError, "%zd ids but %zd vectors", n,
                     (Py_ssize_t)PyArray_DIM(x, 0));
        goto out;
    }
    m = to_strs(mo, n, "metadata", &mk);
    if (PyErr_Occurred()) goto out;
    t = to_strs(to, n, "texts", &tk);
    if (PyErr_Occurred()) goto out;
    cerr e;
    const float *xd = PyArray_DATA(x);
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_upsert(self->s, n, keys, xd,
                                      (const char *const *)m,
                                      (const char *const *)t));
    Py_END_ALLOW_THREADS
    if (e.st) raise_cerr(&e);
    else r = Py_NewRef(Py_None);
out:
    PyMem_Free(keys);
    PyMem_Free(m);
    PyMem_Free(t);
    Py_XDECREF(x);
    Py_XDECREF(kk);
    Py_XDECREF(mk);
    Py_XDECREF(tk);
    return r;
}

static PyObject *st_delete(StoreObject *self, PyObject *args) {
    PyObject *ids;
    const char *where;
    if (!PyArg_ParseTuple(args, "Oz", &ids, &where)) return NULL;
    if (st_ready(self)) return NULL;
    Py_ssize_t n = 0;
    PyObject *kk = NULL;
    vdx_store_key *keys = NULL;
    if (ids != Py_None && !(keys = to_keys(ids, &n, &kk))) return NULL;
    int64_t nd = 0;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_delete(self->s, n, keys, where, &nd));
    Py_END_ALLOW_THREADS
    PyMem_Free(keys);
    Py_XDECREF(kk);
    if (e.st) return raise_cerr(&e);
    return PyLong_FromLongLong(nd);
}

static PyObject *st_count(StoreObject *self, PyObject *args) {
    const char *where;
    if (!PyArg_ParseTuple(args, "z", &where)) return NULL;
    if (st_ready(self)) return NULL;
    int64_t c = 0;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_count(self->s, where, &c));
    Py_END_ALLOW_THREADS
    if (e.st) return raise_cerr(&e);
    return PyLong_FromLongLong(c);
}

static PyObject *key_obj(const vdx_store_key *k) {
    return k->text ? PyUnicode_FromString(k->text) : PyLong_FromLongLong(k->id);
}

static PyObject *opt_str(const char *s) {
    return s ? PyUnicode_FromString(s) : Py_NewRef(Py_None);
}

/* [(ids, scores, metadata_json, texts) per query] */
static PyObject *hits_to_py(vdx_store_hits *h) {
    PyObject *out = PyList_New(h->nq);
    for (int64_t q = 0; out && q < h->nq; q++) {
        int64_t c = h->count[q];
        PyObject *ids = PyList_New(c), *sc = PyList_New(c), *md = PyList_New(c),
                 *tx = PyList_New(c);
        for (int64_t j = 0; ids && sc && md && tx && j < c; j++) {
            vdx_store_hit *e = &h->hits[q * h->k + j];
            PyList_SET_ITEM(ids, j, key_obj(&e->key));
            PyList_SET_ITEM(sc, j, PyFloat_FromDouble(e->score));
            PyList_SET_ITEM(md, j, opt_str(e->metadata));
            PyList_SET_ITEM(tx, j, opt_str(e->text));
        }
        PyObject *t = (ids && sc && md && tx) ? PyTuple_Pack(4, ids, sc, md, tx)
                                              : NULL;
        Py_XDECREF(ids);
        Py_XDECREF(sc);
        Py_XDECREF(md);
        Py_XDECREF(tx);
        if (!t) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, q, t);
    }
    vdx_store_hits_free(h);
    return out;
}

static int params_from(PyObject *p, vdx_search_params *sp) {
    vdx_search_params_init(sp);
    if (!p || p == Py_None) return 0;
    if (!PyDict_Check(p)) {
        PyErr_SetString(PyExc_TypeError, "params must be a dict");
        return -1;
    }
    PyObject *v;
    if ((v = PyDict_GetItemString(p, "efSearch"))) sp->efSearch = (int)PyLong_AsLong(v);
    if ((v = PyDict_GetItemString(p, "nprobe"))) sp->nprobe = PyLong_AsLongLong(v);
    if ((v = PyDict_GetItemString(p, "k_factor"))) sp->k_factor = (float)PyFloat_AsDouble(v);
    return PyErr_Occurred() ? -1 : 0;
}

/* search(queries, k, where, params, flags) */
static PyObject *st_search(StoreObject *self, PyObject *args) {
    PyObject *xo, *po;
    long long k;
    const char *where;
    int flags;
    if (!PyArg_ParseTuple(args, "OLzOi", &xo, &k, &where, &po, &flags))
        return NULL;
    if (st_ready(self)) return NULL;
    vdx_search_params sp;
    if (params_from(po, &sp) < 0) return NULL;
    PyArrayObject *x = as_matrix(xo, store_dim(self), "queries");
    if (!x) return NULL;
    vdx_store_hits *h = NULL;
    cerr e;
    int64_t nq = PyArray_DIM(x, 0);
    const float *xd = PyArray_DATA(x);
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_search(self->s, nq, xd, k, where, &sp, flags, &h));
    Py_END_ALLOW_THREADS
    Py_DECREF(x);
    if (e.st) return raise_cerr(&e);
    return hits_to_py(h);
}

static PyObject *st_keyword(StoreObject *self, PyObject *args) {
    const char *text, *where;
    long long k;
    int flags;
    if (!PyArg_ParseTuple(args, "sLzi", &text, &k, &where, &flags)) return NULL;
    if (st_ready(self)) return NULL;
    vdx_store_hits *h = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_keyword_search(self->s, text, k, where, flags, &h));
    Py_END_ALLOW_THREADS
    if (e.st) return raise_cerr(&e);
    return hits_to_py(h);
}

/* hybrid(vector, text, k, where, method, rrf_k, w_vector, w_text, params, flags) */
static PyObject *st_hybrid(StoreObject *self, PyObject *args) {
    PyObject *xo, *po;
    const char *text, *where;
    long long k;
    vdx_store_fusion f;
    memset(&f, 0, sizeof f);
    int flags;
    if (!PyArg_ParseTuple(args, "OsLzidddOi", &xo, &text, &k, &where,
                          &f.method, &f.rrf_k, &f.w_vector, &f.w_text, &po,
                          &flags))
        return NULL;
    if (st_ready(self)) return NULL;
    vdx_search_params sp;
    if (params_from(po, &sp) < 0) return NULL;
    PyArrayObject *x = as_vector(xo, NPY_FLOAT32, (npy_intp)store_dim(self),
                                 "query_vector");
    if (!x) return NULL;
    vdx_store_hits *h = NULL;
    cerr e;
    const float *xd = PyArray_DATA(x);
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_hybrid_search(self->s, xd, text, k, where, &f,
                                             &sp, flags, &h));
    Py_END_ALLOW_THREADS
    Py_DECREF(x);
    if (e.st) return raise_cerr(&e);
    return hits_to_py(h);
}

/* get(ids) -> (found list, vectors (n, d), metadata json list, texts) */
static PyObject *st_get(StoreObject *self, PyObject *args) {
    PyObject *ids;
    if (!PyArg_ParseTuple(args, "O", &ids)) return NULL;
    if (st_ready(self)) return NULL;
    Py_ssize_t n;
    PyObject *kk;
    vdx_store_key *keys = to_keys(ids, &n, &kk);
    if (!keys) return NULL;
    vdx_store_rows *r = NULL;
    cerr e;
    Py_BEGIN_ALLOW_THREADS
    cerr_capture(&e, vdx_store_get(self->s, n, keys, &r));
    Py_END_ALLOW_THREADS
    PyMem_Free(keys);
    Py_DECREF(kk);
    if (e.st) return raise_cerr(&e);
    npy_intp dims[2] = {(npy_intp)r->n, (npy_intp)r->d};
    PyObject *vec = PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    PyObject *found = PyList_New(r->n), *md = PyList_New(r->n),
             *tx = PyList_New(r->n);
    PyObject *res = NULL;
    if (vec && found && md && tx) {
        memcpy(PyArray_DATA((PyArrayObject *)vec), r->vectors,
               (size_t)(r->n * r->d) * sizeof(float));
        for (int64_t i = 0; i < r->n; i++) {
            PyList_SET_ITEM(found, i, PyBool_FromLong(r->found[i]));
            PyList_SET_ITEM(md, i, opt_str(r->metadata[i]));
            PyList_SET_ITEM(tx, i, opt_str(r->texts[i]));
        }
        res = PyTuple_Pack(4, found, vec, md, tx);
    }
    Py_XDECREF(vec);
    Py_XDECREF(found);
    Py_XDECREF(md);
    Py_XDECREF(tx);
    vdx_store_rows_free(r);
    return res;
}

#define SIMPLE(name, call)                                       \
    static PyObject *name(StoreObject *self, PyObject *unused) { \
        (void)unused;                                            \
        if (st_ready(self)) return NULL;                         \
        cerr e;                                                  \
        Py_BEGIN_ALLOW_THREADS                                   \
        cerr_capture(&e, call(self->s));                         \
        Py_END_ALLOW_THREADS                                     \
        if (e.st) return raise_cerr(&e);                         \
        Py_RETURN_NONE;                                          \
    }
SIMPLE(st_compact, vdx_store_compact)
SIMPLE(st_train, vdx_store_train)
SIMPLE(st_checkpoint, vdx_store_checkpoint)
SIMPLE(st_check, vdx_store_check)

static PyObject *st_stats(StoreObject *self, PyObject *unused) {
    (void)unused;
    if (st_ready(self)) return NULL;
    vdx_store_stats s;
    cerr e;
    cerr_capture(&e, vdx_store_stats_get(self->s, &s));
    if (e.st) return raise_cerr(&e);
    return Py_BuildValue(
        "{s:L,s:L,s:L,s:L,s:O,s:L,s:L,s:L,s:d,s:d,s:d}", "rows",
        (long long)s.rows, "vectors", (long long)s.vectors, "dead",
        (long long)s.dead, "checkpointed", (long long)s.checkpointed,
        "trained", s.trained ? Py_True : Py_False, "bytes_disk",
        (long long)s.bytes_disk, "bytes_memory", (long long)s.bytes_memory,
        "searches", (long long)s.searches, "p50_ms", s.p50_ms, "p95_ms",
        s.p95_ms, "p99_ms", s.p99_ms);
}

static PyObject *st_info(StoreObject *self, PyObject *unused) {
    (void)unused;
    if (st_ready(self)) return NULL;
    return PyUnicode_FromString(vdx_store_info(self->s));
}

static void st_dealloc(StoreObject *self) {
    if (self->s) {
        vdx_store *s = self->s;
        self->s = NULL;
        Py_BEGIN_ALLOW_THREADS
        vdx_store_close(s);
        Py_END_ALLOW_THREADS
    }
    PyObject_Free(self);
}

static PyMethodDef st_methods[] = {
    {"create", METH_KW_FN(st_create), METH_VARARGS | METH_KEYWORDS | METH_CLASS, NULL},
    {"open", METH_KW_FN(st_open), METH_VARARGS | METH_KEYWORDS | METH_CLASS, NULL},
    {"close", (PyCFunction)st_close, METH_NOARGS, NULL},
    {"upsert", (PyCFunction)st_upsert, METH_VARARGS, NULL},
    {"delete", (PyCFunction)st_delete, METH_VARARGS, NULL},
    {"count", (PyCFunction)st_count, METH_VARARGS, NULL},
    {"search", (PyCFunction)st_search, METH_VARARGS, NULL},
    {"keyword_search", (PyCFunction)st_keyword, METH_VARARGS, NULL},
    {"hybrid_search", (PyCFunction)st_hybrid, METH_VARARGS, NULL},
    {"get", (PyCFunction)st_get, METH_VARARGS, NULL},
    {"compact", (PyCFunction)st_compact, METH_NOARGS, NULL},
    {"train", (PyCFunction)st_train, METH_NOARGS, NULL},
    {"checkpoint", (PyCFunction)st_checkpoint, METH_NOARGS, NULL},
    {"check", (PyCFunction)st_check, METH_NOARGS, NULL},
    {"stats", (PyCFunction)st_stats, METH_NOARGS, NULL},
    {"info", (PyCFunction)st_info, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject StoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vecdex._Store",
    .tp_basicsize = sizeof(StoreObject),
    .tp_dealloc = (destructor)st_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The C store (vdx_store_*); use vecdex.Store.",
    .tp_methods = st_methods,
};

int pyvdx_init_store(PyObject *m) {
    return add_type(m, &StoreType);
}
