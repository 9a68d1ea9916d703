/*
 * py_shared_quantizer.c — one coarse quantizer given to several IVF
 * indexes, as FAISS code does (own_fields False: `IndexIVFFlat(q, ...)`
 * twice, or `IndexShardsIVF(ivf.quantizer, ...)`).
 *
 * vecdex's C index tree has one owner, so a node cannot hang under two
 * roots.  But a quantizer under an IVF index can no longer be changed
 * (its add / train / reset are refused while it belongs to the IVF, and a
 * trained IVF never retrains a trained quantizer of nlist centroids), so
 * once it is trained and filled, a copy behaves as the shared object
 * would: the second index gets a clone of it.  A quantizer that is still
 * empty or untrained could change through its first index later, so it is
 * not copied and stays refused ("already belongs to another index") — a
 * silent stale copy would be worse than the error.  Deliberate difference
 * from FAISS: `index2.quantizer is q` is False, and memory holds two
 * copies of the centroids.
 */
#include "py_vecdex.h"

/* 1 when qo belongs to another index and is trained with ntotal > 0. */
static int frozen_elsewhere(IndexObject *q) {
    if (!q->ix || !q->owner) return 0;
    if (!q->parent && q->owner->root == q->ix) return 0; /* free: adopt it */
    owner_rdlock_gil(q->owner);
    int frozen = vdx_index_is_trained(q->ix) && vdx_index_ntotal(q->ix) > 0;
    rw_rdunlock(&q->owner->lock);
    return frozen;
}

int adopt_quantizer(IndexObject *self, PyObject *qo, adopt_fn build,
                    void *ctx) {
    IndexObject *q = (IndexObject *)qo;
    if (!PyObject_TypeCheck(qo, &IndexType) || ready(q) < 0 ||
        !frozen_elsewhere(q))
        return index_adopt(self, qo, build, ctx);
    PyObject *mod = PyImport_ImportModule("vecdex._vecdex");
    if (!mod) return -1;
    PyObject *copy = PyObject_CallMethod(mod, "clone_index", "O", qo);
    Py_DECREF(mod);
    if (!copy) return -1;
    int r = index_adopt(self, copy, build, ctx); /* keeps its own ref */
    Py_DECREF(copy);
    return r;
}
