/*
 * py_factory.c — vecdex.index_factory(d, description, metric=METRIC_L2):
 * builds the C index tree with vdx_index_factory and wraps it with
 * wrap_tree, so that every node gets its FAISS class (IndexIDMap around an
 * IndexIVFFlat around an IndexFlatL2 quantizer...) as read_index does.
 * A bad description raises InvalidArgumentError (a ValueError) whose
 * message names the offending token and its position.
 */
#include "py_vecdex.h"

static PyObject *mod_index_factory(PyObject *m, PyObject *args, PyObject *kw) {
    (void)m;
    static char *kwlist[] = {"d", "description", "metric", NULL};
    long long d = 0;
    const char *desc = NULL;
    int metric = VDX_METRIC_L2;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Ls|i:index_factory", kwlist,
                                     &d, &desc, &metric))
        return NULL;
    vdx_index *ix = NULL;
    cerr e;
    cerr_capture(&e, vdx_index_factory((int64_t)d, desc, (vdx_metric)metric,
                                       &ix));
    if (e.st != VDX_OK) return raise_cerr(&e);
    return wrap_tree(ix);
}

static PyMethodDef factory_functions[] = {
    {"index_factory", METH_KW_FN(mod_index_factory),
     METH_VARARGS | METH_KEYWORDS,
     "index_factory(d, description, metric=METRIC_L2) -> Index.\n\n"
     "Builds an empty index from a FAISS factory string: 'Flat', "
     "'IDMap,Flat', 'IDMap2,Flat', 'IVF<n>,Flat', 'IDMap,IVF<n>,Flat'."},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_factory(PyObject *m) {
    return PyModule_AddFunctions(m, factory_functions);
}
