/*
 * py_2layer.c — Index2Layer(quantizer, nlist, M, nbit=8, metric=METRIC_L2)
 * and IndexHNSW2Level(quantizer, nlist, m_pq, M), as in FAISS.  Both take
 * the quantizer over (it becomes index.q1.quantizer / the storage's
 * quantizer and can no longer be modified on its own).  Index2Layer shows
 * FAISS's pq, code_size_1, code_size_2, code_size and q1 (a snapshot with
 * quantizer and nlist).
 */
#include "py_vecdex.h"

PyTypeObject Index2LayerType, IndexHNSW2LevelType;

typedef struct {
    int64_t nlist, M;
    int nbits, hnsw_M;
    vdx_metric metric;
} twolayer_args;

static vdx_status build_2layer(vdx_index *q, void *ctx, vdx_index **out) {
    const twolayer_args *a = ctx;
    return vdx_index_2layer_new(q, a->nlist, a->M, a->nbits, a->metric, out);
}

static vdx_status build_hnsw2(vdx_index *q, void *ctx, vdx_index **out) {
    const twolayer_args *a = ctx;
    return vdx_index_hnsw_2level_new(q, a->nlist, a->M, a->hnsw_M, out);
}

static int Index2Layer_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"quantizer", "nlist", "M", "nbit", "metric", NULL};
    PyObject *qo;
    long long nlist, M;
    int nbits = 8, metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LL|ii:Index2Layer", kwlist,
                                     &IndexType, &qo, &nlist, &M, &nbits,
                                     &metric))
        return -1;
    twolayer_args a = {nlist, M, nbits, 0, (vdx_metric)metric};
    return adopt_quantizer(self, qo, build_2layer, &a); /* FAISS shares it */
}

static int IndexHNSW2Level_init(IndexObject *self, PyObject *args,
                                PyObject *kw) {
    static char *kwlist[] = {"quantizer", "nlist", "m_pq", "M", NULL};
    PyObject *qo;
    long long nlist, m_pq;
    int M;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!LLi:IndexHNSW2Level", kwlist,
                                     &IndexType, &qo, &nlist, &m_pq, &M))
        return -1;
    twolayer_args a = {nlist, m_pq, 8, M, VDX_METRIC_L2};
    if (index_adopt(self, qo, build_hnsw2, &a) < 0) return -1;
    /* index_adopt left the quantizer's wrapper in self->sub; the tree is
     * HNSW -> Index2Layer storage -> quantizer, so put a storage wrapper in
     * between (index.storage returns self->sub) */
    IndexObject *so =
        (IndexObject *)Index2LayerType.tp_alloc(&Index2LayerType, 0);
    if (!so) return -1;
    so->ix = vdx_index_hnsw_storage(self->ix);
    so->owner = self->owner;
    self->owner->refs++;
    so->sub = self->sub; /* the reference moves */
    ((IndexObject *)so->sub)->parent = so;
    so->parent = self;
    self->sub = (PyObject *)so;
    return 0;
}

static PyObject *TL_get_size(IndexObject *self, void *part) {
    if (ready(self) < 0) return NULL;
    return PyLong_FromSize_t(
        vdx_index_2layer_code_size(self->ix, (int)(intptr_t)part));
}

static PyObject *TL_get_pq(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    return pq_view(vdx_index_2layer_pq(self->ix), self);
}

/* q1: FAISS's Level1Quantizer, as a read-only snapshot. */
static PyObject *TL_get_q1(IndexObject *self, void *c) {
    (void)c;
    if (ready(self) < 0) return NULL;
    PyObject *quant = Index_get_sub(self, NULL);
    if (!quant) return NULL;
    PyObject *types = PyImport_ImportModule("types");
    PyObject *ns = types ? PyObject_GetAttrString(types, "SimpleNamespace") : NULL;
    Py_XDECREF(types);
    PyObject *kw = ns ? Py_BuildValue("{s:O,s:L}", "quantizer", quant, "nlist",
                                      (long long)vdx_index_2layer_nlist(self->ix))
                      : NULL;
    PyObject *empty = kw ? PyTuple_New(0) : NULL;
    PyObject *r = empty ? PyObject_Call(ns, empty, kw) : NULL;
    Py_XDECREF(empty);
    Py_XDECREF(kw);
    Py_XDECREF(ns);
    Py_DECREF(quant);
    return r;
}

static PyGetSetDef TL_getset[] = {
    {"pq", (getter)TL_get_pq, NULL, "the product quantizer of the residuals",
     NULL},
    {"q1", (getter)TL_get_q1, NULL,
     "the level-1 quantizer (quantizer, nlist), a snapshot", NULL},
    {"code_size_1", (getter)TL_get_size, NULL, "bytes of the list number",
     (void *)1},
    {"code_size_2", (getter)TL_get_size, NULL, "bytes of the PQ code",
     (void *)2},
    {"code_size", (getter)TL_get_size, NULL, "bytes per vector", (void *)0},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject Index2LayerType = INDEX_TYPE_BODY(
    "Index2Layer",
    "Index2Layer(quantizer, nlist, M, nbit=8, metric=METRIC_L2): coarse list "
    "number + PQ code of the residual per vector, in insertion order "
    "(search is exhaustive over the decoded vectors).",
    &IndexType, Index2Layer_init, NULL, TL_getset);

PyTypeObject IndexHNSW2LevelType = INDEX_TYPE_BODY(
    "IndexHNSW2Level",
    "IndexHNSW2Level(quantizer, nlist, m_pq, M): HNSW graph over an "
    "Index2Layer storage (train first).",
    &IndexHNSWType, IndexHNSW2Level_init, NULL, NULL);

int pyvdx_init_2layer(PyObject *m) {
    return add_type(m, &Index2LayerType) < 0 ||
                   add_type(m, &IndexHNSW2LevelType) < 0
               ? -1
               : 0;
}
