"""Writing and reading points (a part of Collection)."""
import ctypes
import json
from ctypes import byref, c_char_p, c_void_p

import numpy as np

from . import _capi as C
from ._util import _cstr, _f32, _json
from .errors import InvalidArgumentError, NotFoundError

_lib = C.lib


class _Points:
    def upsert(self, id, vector, payload=None):
        """Inserts or replaces one point. ``payload``: None, a dict (or other
        JSON-serialisable object) or JSON text."""
        v = _f32(vector, 1)
        p = _json(payload)
        self._call(_lib.aidb_collection_upsert, _cstr(id, "id"), v.ctypes.data, v.shape[0],
                   p, len(p) if p is not None else 0)

    def upsert_batch(self, ids, vectors, payloads=None):
        """Inserts or replaces ``len(ids)`` points atomically. ``vectors`` is a
        2-D (n, dim) float32 array, passed without a copy; ``payloads`` None or
        one payload (or None) per point."""
        ids = list(ids)
        v = _f32(vectors, 2)
        n = len(ids)
        if v.shape[0] != n:
            raise InvalidArgumentError(f"{n} ids but {v.shape[0]} vectors")
        if n == 0:
            return
        id_arr = (c_char_p * n)(*[_cstr(i, "id") for i in ids])
        pl_arr = None
        if payloads is not None:
            payloads = list(payloads)
            if len(payloads) != n:
                raise InvalidArgumentError(f"{n} ids but {len(payloads)} payloads")
            enc = [_json(p) for p in payloads]
            for e in enc:
                if e is not None and b"\0" in e:
                    raise InvalidArgumentError("payload contains a NUL byte")
            pl_arr = (c_char_p * n)(*enc)
        self._call(_lib.aidb_collection_upsert_batch, n, id_arr, v.ctypes.data, v.shape[1], pl_arr)

    def delete(self, id):
        """Deletes a point; NotFoundError if there is none."""
        self._call(_lib.aidb_collection_delete, _cstr(id, "id"))

    def get(self, id, out=None):
        """Returns (vector, payload) of a point; the vector is written into
        ``out`` (a float32 array of length dim) when given."""
        if out is None:
            out = np.empty(self._dim, dtype=np.float32)
        elif out.dtype != np.float32 or not out.flags.c_contiguous or out.ndim != 1:
            raise InvalidArgumentError("out must be a 1-D C-contiguous float32 array")
        pl = c_void_p()
        self._call(_lib.aidb_collection_get, _cstr(id, "id"), out.ctypes.data, out.shape[0], byref(pl))
        payload = None
        if pl.value:
            payload = json.loads(ctypes.string_at(pl.value))
            _lib.aidb_free(pl.value)
        return out, payload

    def __contains__(self, id):
        try:
            self.get(id)
            return True
        except NotFoundError:
            return False
