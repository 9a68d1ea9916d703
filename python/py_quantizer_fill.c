/*
 * py_quantizer_fill.c — filling the coarse quantizer of an IVF index by
 * hand, as FAISS code does to set the centroids itself:
 *
 *     index = IndexIVFFlat(IndexFlatL2(d), d, nlist)
 *     index.quantizer.add(centroids)          # or add_with_ids
 *
 * A sub-index is otherwise read-only through Python (py_index.c's
 * mutable_), since changing it under a filled IVF would move vectors to
 * lists they were not assigned to.  Filling is safe while both are empty:
 * no vector has been assigned yet, and the IVF's train() then finds the
 * quantizer trained (it skips k-means when it holds nlist centroids, as
 * FAISS does).  After that the quantizer is frozen again, which is what
 * py_shared_quantizer.c relies on when it hands a second index a copy.
 */
#include "py_vecdex.h"

int quantizer_fillable(IndexObject *self) {
    IndexObject *p = self->parent;
    if (!self->ix || !self->owner || !p || !p->ix) return 0;
    owner_rdlock_gil(self->owner);
    int ok = vdx_index_is_ivf(p->ix) &&
             vdx_index_ivf_quantizer(p->ix) == self->ix &&
             vdx_index_ntotal(p->ix) == 0 && vdx_index_ntotal(self->ix) == 0;
    rw_rdunlock(&self->owner->lock);
    return ok;
}
