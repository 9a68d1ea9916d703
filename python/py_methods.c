/*
 * py_methods.c — _vecdex._install_method(type, name, func): adds a Python
 * function as a method of one of vecdex's index types.
 *
 * vecdex's index classes are static C types, whose dicts Python code may
 * not assign to.  A few of FAISS's methods are compositions of existing
 * calls (search_and_reconstruct = search + decode of the stored codes,
 * copy_subset_to = read the lists + add_sa_codes ...); they are written in
 * Python (vecdex/_composite.py) and attached here at import, once, so that
 * index.search_and_reconstruct(...) works on every subclass as in FAISS.
 * Only vecdex.Index and its subclasses are accepted, and a name the type
 * already defines (in C or by an earlier call) is refused: this can add
 * methods, never replace one.
 */
#include "py_vecdex.h"

static PyObject *mod_install_method(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *t, *name, *func;
    if (!PyArg_ParseTuple(args, "O!UO:_install_method", &PyType_Type, &t,
                          &name, &func))
        return NULL;
    PyTypeObject *type = (PyTypeObject *)t;
    if (!PyType_IsSubtype(type, &IndexType) ||
        (type->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_Format(PyExc_TypeError,
                     "_install_method: %.200s is not one of vecdex's index "
                     "types", type->tp_name);
        return NULL;
    }
    if (!PyFunction_Check(func)) {
        PyErr_Format(PyExc_TypeError,
                     "_install_method: expected a Python function, got "
                     "%.200s", Py_TYPE(func)->tp_name);
        return NULL;
    }
    PyObject *dict = type->tp_dict;
    int has = dict ? PyDict_Contains(dict, name) : -1;
    if (has < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError,
                            "_install_method: the type is not ready");
        return NULL;
    }
    if (has) {
        PyErr_Format(PyExc_ValueError,
                     "_install_method: %.200s already defines %U",
                     type->tp_name, name);
        return NULL;
    }
    if (PyDict_SetItem(dict, name, func) < 0) return NULL;
    PyType_Modified(type); /* drop the attribute caches of subclasses */
    Py_RETURN_NONE;
}

static PyMethodDef methods_methods[] = {
    {"_install_method", (PyCFunction)mod_install_method, METH_VARARGS,
     "_install_method(type, name, func): adds func as a method of a vecdex "
     "index type that does not define name yet."},
    {NULL, NULL, 0, NULL}};

int pyvdx_init_methods(PyObject *m) {
    return PyModule_AddFunctions(m, methods_methods);
}
