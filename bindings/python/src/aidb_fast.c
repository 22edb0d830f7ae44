/* aidb._fast: the single-query search of the Python binding as a CPython
 * extension (aidb/_search.py uses it when it is built; ctypes otherwise).
 *
 * The per-call cost of the ctypes route (argument objects, libffi, the
 * struct unpack of the hits, the tuple building done by Python's iterators)
 * is several microseconds per query; here it is one C call that takes the
 * query through the buffer protocol, releases the GIL around
 * aidb_collection_search and builds the Hit tuples directly.
 *
 * The module does not link libaidb: init() receives the addresses of the C
 * functions from the library ctypes loaded (aidb/_capi.py), so the extension
 * and the rest of the binding always use the same library, whichever one
 * AIDB_LIBRARY, the bundled copy or the dynamic loader chose. Only aidb.h's
 * types are compiled in (the header of the build, or the system header;
 * _search.py checks the hit layout and the ABI version against _capi.py
 * before using the module). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <aidb.h>

#include <string.h>

typedef int (*search_fn)(aidb_collection*, const float*, size_t, const aidb_search_options*,
                         aidb_search_result**, char**);
typedef int (*hits_fn)(const aidb_search_result*, size_t, const aidb_hit**, size_t*, char**);
typedef void (*free_result_fn)(aidb_search_result*);
typedef void (*free_fn)(void*);

/* Set once by init(), before any search (the module is private to the
 * package, which calls init() on import). */
static search_fn c_search;
static hits_fn c_hits;
static free_result_fn c_free_result;
static free_fn c_free;
static PyObject* raise_error;  /* raise_error(status, message) raises AIDB's exception */
static PyTypeObject* hit_type; /* aidb.Hit, a tuple subclass */

static const char result_capsule[] = "aidb._fast.result";

static void free_result_capsule(PyObject* capsule) {
  aidb_search_result* r = PyCapsule_GetPointer(capsule, result_capsule);
  if (r != NULL && c_free_result != NULL) c_free_result(r);
}

static int address_arg(PyObject* o, void** out, const char* what) {
  *out = PyLong_AsVoidPtr(o);
  if (*out == NULL) {
    if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%s: NULL address", what);
    return -1;
  }
  return 0;
}

/* init(search, hits_v2, result_free, free, raise_error, Hit) */
static PyObject* fast_init(PyObject* self, PyObject* args) {
  (void)self;
  PyObject *a_search, *a_hits, *a_free_result, *a_free, *raise, *type;
  if (!PyArg_ParseTuple(args, "OOOOOO!:init", &a_search, &a_hits, &a_free_result, &a_free, &raise,
                        &PyType_Type, &type))
    return NULL;
  if (!PyType_IsSubtype((PyTypeObject*)type, &PyTuple_Type)) {
    PyErr_SetString(PyExc_TypeError, "init: the hit type must be a tuple subclass");
    return NULL;
  }
  if (!PyCallable_Check(raise)) {
    PyErr_SetString(PyExc_TypeError, "init: raise_error must be callable");
    return NULL;
  }
  void *p_search, *p_hits, *p_free_result, *p_free;
  if (address_arg(a_search, &p_search, "search") < 0 || address_arg(a_hits, &p_hits, "hits") < 0 ||
      address_arg(a_free_result, &p_free_result, "result_free") < 0 ||
      address_arg(a_free, &p_free, "free") < 0)
    return NULL;
  /* Object pointers to function pointers: POSIX guarantees the round trip
   * (dlsym relies on it). */
  c_search = (search_fn)p_search;
  c_hits = (hits_fn)p_hits;
  c_free_result = (free_result_fn)p_free_result;
  c_free = (free_fn)p_free;
  Py_INCREF(raise);
  Py_XSETREF(raise_error, raise);
  Py_INCREF(type);
  Py_XSETREF(hit_type, (PyTypeObject*)type);
  Py_RETURN_NONE;
}

/* Raises the binding's exception for a non-zero status; frees the message. */
static PyObject* raise_status(int rc, char* msg) {
  PyObject* text = msg ? PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace")
                       : PyUnicode_FromString("");
  if (msg) c_free(msg);
  if (text == NULL) return NULL;
  PyObject* r = PyObject_CallFunction(raise_error, "iO", rc, text);
  Py_DECREF(text);
  if (r != NULL) {
    Py_DECREF(r);
    PyErr_Format(PyExc_RuntimeError, "aidb: status %d without an exception", rc);
  }
  return NULL;
}

/* A Hit in _search.py's tuple layout: (id, score, owner, payload address,
 * payload length, None). `owner` keeps the C result alive while a hit may
 * still read its payload in place. */
static PyObject* new_hit(const aidb_hit* h, PyObject* owner) {
  PyObject* item[6];
  item[0] = PyUnicode_DecodeUTF8(h->id, (Py_ssize_t)strnlen(h->id, sizeof h->id), "strict");
  item[1] = item[0] ? PyFloat_FromDouble((double)h->score) : NULL;
  item[3] = item[1] ? PyLong_FromSize_t((size_t)(uintptr_t)h->payload) : NULL;
  item[4] = item[3] ? PyLong_FromSize_t(h->payload_len) : NULL;
  if (item[4] == NULL) {
    Py_XDECREF(item[0]);
    Py_XDECREF(item[1]);
    Py_XDECREF(item[3]);
    return NULL;
  }
  Py_INCREF(owner);
  item[2] = owner;
  Py_INCREF(Py_None);
  item[5] = Py_None;
#if PY_VERSION_HEX < 0x030E0000
  /* What tuple.__new__(Hit, items) does (tuple_subtype_new: tp_alloc, then
   * the items), without its argument tuples: one object per hit, not three.
   * Up to 3.13 a tuple subclass instance has nothing else to set. */
  PyObject* hit = hit_type->tp_alloc(hit_type, 6);
  if (hit != NULL) {
    for (int i = 0; i < 6; i++) PyTuple_SET_ITEM(hit, i, item[i]);
    return hit;
  }
  for (int i = 0; i < 6; i++) Py_DECREF(item[i]);
  return NULL;
#else
  /* Newer tuples may carry more state (a cached hash): the type's own way. */
  PyObject* items = PyTuple_New(6);
  if (items == NULL) {
    for (int i = 0; i < 6; i++) Py_DECREF(item[i]);
    return NULL;
  }
  for (int i = 0; i < 6; i++) PyTuple_SET_ITEM(items, i, item[i]);
  PyObject* args = PyTuple_Pack(1, items);
  Py_DECREF(items);
  if (args == NULL) return NULL;
  PyObject* hit = PyTuple_Type.tp_new(hit_type, args, NULL);
  Py_DECREF(args);
  return hit;
#endif
}

/* The query's floats, when `query` exports a 1-D C-contiguous buffer of
 * native float32 (a numpy float32 vector, array('f'), a memoryview of one);
 * 0 and no error otherwise. */
static int float_buffer(PyObject* query, Py_buffer* view) {
  if (PyObject_GetBuffer(query, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
    PyErr_Clear();
    return 0;
  }
  const char* f = view->format ? view->format : "B";
  if (view->ndim == 1 && view->itemsize == 4 &&
      (strcmp(f, "f") == 0 || strcmp(f, "=f") == 0 ||
       strcmp(f, PY_LITTLE_ENDIAN ? "<f" : ">f") == 0))
    return 1;
  PyBuffer_Release(view);
  return 0;
}

/* search(collection address, query, options address) -> list of Hit, or
 * NotImplemented when `query` is not a 1-D float32 buffer (the caller
 * converts it and calls again). The caller holds the collection open. */
static PyObject* fast_search(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  (void)self;
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "search(collection, query, options)");
    return NULL;
  }
  if (c_search == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "aidb._fast.init() was not called");
    return NULL;
  }
  void *coll, *opts;
  if (address_arg(args[0], &coll, "collection") < 0 || address_arg(args[2], &opts, "options") < 0)
    return NULL;
  Py_buffer q;
  if (!float_buffer(args[1], &q)) Py_RETURN_NOTIMPLEMENTED;

  aidb_search_result* res = NULL;
  char* msg = NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS;
  rc = c_search((aidb_collection*)coll, (const float*)q.buf, (size_t)q.shape[0],
                (const aidb_search_options*)opts, &res, &msg);
  Py_END_ALLOW_THREADS;
  PyBuffer_Release(&q);
  if (rc != 0) return raise_status(rc, msg);

  const aidb_hit* hits = NULL;
  size_t n = 0;
  if (c_hits(res, 0, &hits, &n, NULL) != 0 || n == 0) {
    c_free_result(res);
    return PyList_New(0);
  }
  /* Payloads are read in place, on first access (Hit.payload_json): the
   * result lives as long as a hit that has one. Without payloads the
   * result is freed now. */
  int payloads = 0;
  for (size_t i = 0; i < n && !payloads; i++) payloads = hits[i].payload != NULL;
  PyObject* owner = Py_None;
  if (payloads) {
    owner = PyCapsule_New(res, result_capsule, free_result_capsule);
    if (owner == NULL) {
      c_free_result(res);
      return NULL;
    }
  } else {
    Py_INCREF(owner);
  }
  PyObject* list = PyList_New((Py_ssize_t)n);
  if (list != NULL) {
    for (size_t i = 0; i < n; i++) {
      PyObject* h = new_hit(&hits[i], owner);
      if (h == NULL) {
        Py_CLEAR(list);
        break;
      }
      PyList_SET_ITEM(list, (Py_ssize_t)i, h);
    }
  }
  Py_DECREF(owner);
  if (!payloads) c_free_result(res);
  return list;
}

static PyMethodDef methods[] = {
    {"init", fast_init, METH_VARARGS,
     "init(search, hits_v2, result_free, free, raise_error, Hit): the C functions' addresses"},
    {"search", (PyCFunction)(void (*)(void))fast_search, METH_FASTCALL,
     "search(collection, query, options) -> list of Hit, or NotImplemented"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                    "aidb._fast",
                                    "Single-query search without ctypes (see aidb/_search.py).",
                                    -1,
                                    methods,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__fast(void) {
  PyObject* m = PyModule_Create(&module);
  if (m == NULL) return NULL;
  /* What _search.py checks against its ctypes declarations. */
  if (PyModule_AddIntConstant(m, "ABI_VERSION", AIDB_ABI_VERSION) < 0 ||
      PyModule_AddIntConstant(m, "HIT_SIZE", (long)sizeof(aidb_hit)) < 0 ||
      PyModule_AddIntConstant(m, "HIT_SCORE_OFFSET", (long)offsetof(aidb_hit, score)) < 0 ||
      PyModule_AddIntConstant(m, "HIT_PAYLOAD_OFFSET", (long)offsetof(aidb_hit, payload)) < 0 ||
      PyModule_AddIntConstant(m, "HIT_PAYLOAD_LEN_OFFSET", (long)offsetof(aidb_hit, payload_len)) <
          0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
