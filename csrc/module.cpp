// The Python module `inception_core._C`: importing it loads this library, whose static initializers
// register the ops (ops.cpp, ops_cuda.cpp). It has no Python functions; the ops are reached through
// torch.ops.inception_core_cuda.

#include <Python.h>

static struct PyModuleDef inception_core_c_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&inception_core_c_module); }
