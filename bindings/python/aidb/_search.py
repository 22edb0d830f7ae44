"""Search (a part of Collection) and its hits."""
import ctypes
import json
import struct
from ctypes import byref, c_size_t, c_void_p

import numpy as np

from . import _capi as C
from ._options import _default_top_k, _search_options
from ._util import _check, _f32

_lib = C.lib
_string_at = ctypes.string_at
# The layout of aidb_hit, checked against the ctypes declaration at import.
_HIT = struct.Struct("=40sfIQQ")
assert _HIT.size == ctypes.sizeof(C.aidb_hit)
assert struct.calcsize("=40sfI") == C.aidb_hit.payload.offset


class _Result:
    """Owns a C search result; freed when the last Hit that may still read a
    payload from it is gone (payloads are read in place, on first access)."""

    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr

    def __del__(self):
        if self.ptr and _lib is not None:
            _lib.aidb_search_result_free(self.ptr)
            self.ptr = None


class Hit(tuple):
    """One search hit: ``id``, ``score`` (higher is better), ``payload_json``
    (the payload's JSON text as bytes, or None) and ``payload`` (parsed).

    Payloads stay in the library's result until read, so a search whose
    payloads are not read copies nothing but ids and scores. (A tuple
    subclass: hits are built without running Python code per hit.)"""

    __slots__ = ()

    def __new__(cls, id, score, payload_json=None):
        return tuple.__new__(cls, (id, score, None, payload_json))

    id = property(lambda self: self[0], doc="canonical textual UUID")
    score = property(lambda self: self[1], doc="higher is better")

    @property
    def payload_json(self):
        src = self[2]
        if src is not None:
            return _string_at(src[1], src[2])
        return self[3]

    @property
    def payload(self):
        j = self.payload_json
        return None if j is None else json.loads(j)

    def __repr__(self):
        return f"Hit(id={self.id!r}, score={self.score!r}, payload={self.payload_json!r})"


_new_hit = tuple.__new__
_search = _lib.aidb_collection_search


def _hits(owner, q):
    hp = c_void_p()
    n = c_size_t()
    if _lib.aidb_search_result_hits(owner.ptr, q, byref(hp), byref(n)) != 0 or not n.value:
        return []
    # Parse the aidb_hit array in place (one pass over its bytes).
    raw = (ctypes.c_char * (n.value * _HIT.size)).from_address(hp.value)
    return [_new_hit(Hit, (id.rstrip(b"\0").decode(), score, (owner, p, ln) if p else None, None))
            for id, score, _, p, ln in _HIT.iter_unpack(raw)]


class _Search:
    def search(self, query, k=None, filter=None, ef_search=0, with_payload=True, exact=False,
               nonblocking=False):
        """The ``k`` best hits for one query vector (a list of Hit); ``k``
        None takes the library's default. ``nonblocking=True`` never waits
        for a lock: BusyError instead (retry, or search without it)."""
        q = _f32(query, 1)
        o, _f = _search_options(k, filter, ef_search, with_payload, 0, exact, nonblocking)
        res, msg = c_void_p(), c_void_p()
        ptr = self._enter()  # _call, inlined on the hot path
        try:
            rc = _search(ptr, q.ctypes.data, q.shape[0], byref(o), byref(res), byref(msg))
        finally:
            self._leave()
        if rc:
            _check(rc, msg)
        return _hits(_Result(res.value), 0)

    def search_batch(self, queries, k=None, filter=None, ef_search=0, with_payload=True,
                     threads=0, exact=False, nonblocking=False):
        """Searches a 2-D (nq, dim) float32 array of queries at once (no
        copy). Returns one list of Hit per query."""
        q = _f32(queries, 2)
        o, _f = _search_options(k, filter, ef_search, with_payload, threads, exact, nonblocking)
        res = c_void_p()
        self._call(_lib.aidb_collection_search_batch, q.ctypes.data, q.shape[0], q.shape[1],
                   byref(o), byref(res))
        owner = _Result(res.value)
        return [_hits(owner, i) for i in range(_lib.aidb_search_result_query_count(owner.ptr))]

    def search_batch_arrays(self, queries, k=None, **kw):
        """Like search_batch, but returns (ids, scores): a list of id lists
        and an (nq, k) float32 array of scores (-inf where fewer than k hits)."""
        if k is None:
            k = _default_top_k()
        hits = self.search_batch(queries, k=k, with_payload=False, **kw)
        scores = np.full((len(hits), k), -np.inf, dtype=np.float32)
        for i, hs in enumerate(hits):
            scores[i, :len(hs)] = [h.score for h in hs]
        return [[h.id for h in hs] for hs in hits], scores
