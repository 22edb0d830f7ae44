"""Search (a part of Collection) and its hits.

The single-query path is written for a low per-call cost (a search is often
a few hundred microseconds of C): the options struct and the byref() of it
are cached per setting, the query's address is taken through the buffer
protocol (c_char.from_buffer, cheaper than ndarray.ctypes), the in-flight
accounting of _Handle is inlined, and hits are tuples built from one unpack
of the C hit array, with payloads read only when asked for. That is the
ctypes route; when the package has aidb._fast (src/aidb_fast.c) search()
makes one call into it instead (see _load_fast), with the same results."""
import ctypes
import json
import os
import struct
from ctypes import byref, c_size_t, c_void_p
from itertools import repeat

import numpy as np

from . import _capi as C
from ._options import _build_search_options, _default_top_k, _search_options
from ._util import _check, _f32
from .errors import ClosedError, error_for

_lib = C.lib
_string_at = ctypes.string_at
_from_buffer = ctypes.c_char.from_buffer
_ascontiguous = np.ascontiguousarray
_float32 = np.float32
# The layout of aidb_hit, checked against the ctypes declaration at import.
_HIT = struct.Struct("=40sfIQQ")
assert _HIT.size == ctypes.sizeof(C.aidb_hit)
assert struct.calcsize("=40sfI") == C.aidb_hit.payload.offset
# The same layout as a numpy structured dtype, to view a hit array in place.
_HIT_DTYPE = np.dtype({"names": ["id", "score", "payload", "payload_len"],
                       "formats": ["S40", "<f4", "<u8", "<u8"],
                       "offsets": [0, 40, 48, 56], "itemsize": _HIT.size})
assert _HIT_DTYPE.fields["score"][1] == C.aidb_hit.score.offset


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
    """One search hit: ``id``, ``score`` (a distance, lower is better: 1 -
    cosine similarity, the L2 distance or the negated dot product), ``payload_json``
    (the payload's JSON text as bytes, or None) and ``payload`` (parsed).

    Payloads stay in the library's result until read, so a search whose
    payloads are not read copies nothing but ids and scores. (A tuple
    subclass, ``(id, score, result, payload address, payload length,
    payload_json)``: hits are built without running Python code per hit.)"""

    __slots__ = ()

    def __new__(cls, id, score, payload_json=None):
        return tuple.__new__(cls, (id, score, None, 0, 0, payload_json))

    id = property(lambda self: self[0], doc="canonical textual UUID")
    score = property(lambda self: self[1], doc="a distance, lower is better")

    @property
    def payload_json(self):
        if self[3]:
            return _string_at(self[3], self[4])
        return self[5]

    @property
    def payload(self):
        j = self.payload_json
        return None if j is None else json.loads(j)

    def __eq__(self, other):
        if isinstance(other, Hit):
            return (self[0] == other[0] and self[1] == other[1]
                    and self.payload_json == other.payload_json)
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self[0], self[1]))

    def __repr__(self):
        return f"Hit(id={self.id!r}, score={self.score!r}, payload={self.payload_json!r})"


_new_hit = tuple.__new__
_search = _lib.aidb_collection_search
_result_hits = _lib.aidb_search_result_hits
_HIT_SIZE = _HIT.size
_decode = bytes.decode
# Per hit: the id's 36 characters (canonical UUID), its NUL padding, score,
# reserved, payload address and length.
_HIT_FIELDS = "36s4xf4xQQ"
assert struct.calcsize("=" + _HIT_FIELDS) == _HIT_SIZE
_unpackers = {}


def _unpacker(n):
    """struct unpack_from for an array of n hits (cached per n)."""
    u = _unpackers.get(n)
    if u is None:
        u = struct.Struct("=" + _HIT_FIELDS * n).unpack_from
        if n <= 1024:
            _unpackers[n] = u
    return u


def _hits(owner, q):
    hp = c_void_p()
    n = c_size_t()
    if _result_hits(owner.ptr, q, byref(hp), byref(n)) != 0 or not n.value:
        return []
    n = n.value
    # One unpack of the whole aidb_hit array, then the Hit tuples are built
    # by C iterators (map/zip): no Python code runs per hit.
    f = _unpacker(n)(_string_at(hp.value, n * _HIT_SIZE))
    return list(map(_new_hit, repeat(Hit, n),
                    zip(map(_decode, f[0::4]), f[1::4], repeat(owner), f[2::4], f[3::4],
                        repeat(None))))


def _hit_view(res, q):
    """The hits of query q of a C result as a numpy structured array viewing
    the library's memory (valid while the result lives)."""
    hp = c_void_p()
    n = c_size_t()
    if _result_hits(res, q, byref(hp), byref(n)) != 0 or not n.value:
        return None
    buf = (ctypes.c_char * (n.value * _HIT_DTYPE.itemsize)).from_address(hp.value)
    return np.frombuffer(buf, dtype=_HIT_DTYPE)


def _raise(rc, text):
    raise error_for(rc, text)


def _load_fast():
    """aidb._fast (src/aidb_fast.c), the compiled single-query search, when
    the package was built with it, agrees with this module's declarations
    and is not turned off by AIDB_PYTHON_FAST=0; else None (ctypes)."""
    if os.environ.get("AIDB_PYTHON_FAST", "1") == "0":
        return None
    try:
        from . import _fast
    except ImportError:
        return None
    if (_fast.ABI_VERSION != C.ABI_VERSION or _fast.HIT_SIZE != _HIT_SIZE
            or _fast.HIT_SCORE_OFFSET != C.aidb_hit.score.offset
            or _fast.HIT_PAYLOAD_OFFSET != C.aidb_hit.payload.offset
            or _fast.HIT_PAYLOAD_LEN_OFFSET != C.aidb_hit.payload_len.offset):
        return None

    def addr(fn):
        return ctypes.cast(fn, c_void_p).value

    # The functions of the library ctypes loaded: one library for both routes.
    _fast.init(addr(_lib.aidb_collection_search), addr(_lib.aidb_search_result_hits_v2),
               addr(_lib.aidb_search_result_free), addr(_lib.aidb_free), _raise, Hit)
    return _fast


_fast = _load_fast()
# Which route search() takes: "extension" (aidb._fast) or "ctypes".
SEARCH_ROUTE = "ctypes" if _fast is None else "extension"
_fast_search = None if _fast is None else _fast.search
# aidb_search_options by setting, for the extension: (address, struct).
_fast_options = {}


def _fast_options_for(k, filter, ef_search, with_payload, exact, nonblocking, ivf_rerank):
    """``(address of an aidb_search_options, what keeps it alive)``; without
    a filter one struct per setting is shared (read-only for the library)."""
    if filter is not None:
        o, f = _build_search_options(k, filter, ef_search, with_payload, 0, exact, nonblocking,
                                     ivf_rerank)
        return ctypes.addressof(o), (o, f)
    key = (k, ef_search, with_payload, exact, nonblocking, ivf_rerank)
    o, _ = _build_search_options(k, None, ef_search, with_payload, 0, exact, nonblocking,
                                 ivf_rerank)
    entry = (ctypes.addressof(o), o)
    if len(_fast_options) < 64:
        _fast_options[key] = entry
    return entry


class _Search:
    def _search_fast(self, query, k=None, filter=None, ef_search=0, with_payload=True,
                     exact=False, nonblocking=False, *, ivf_rerank=0):
        # search() through aidb._fast: one C call from the query to the hits.
        o = None if filter is not None else _fast_options.get(
            (k, ef_search, with_payload, exact, nonblocking, ivf_rerank))
        if o is None:
            o = _fast_options_for(k, filter, ef_search, with_payload, exact, nonblocking,
                                  ivf_rerank)
        lock = self._lock
        with lock:  # _Handle._enter/_leave, inlined on the hot path
            ptr = self._ptr
            if ptr is None:
                raise ClosedError(f"{type(self).__name__} is closed")
            self._inflight += 1
        try:
            hits = _fast_search(ptr, query, o[0])
            if hits is NotImplemented:  # not a 1-D float32 buffer: convert
                q = _ascontiguous(query, dtype=_float32)
                if q.ndim != 1:
                    q = _f32(q, 1)  # raises DimensionMismatchError
                hits = _fast_search(ptr, q, o[0])
        finally:
            with lock:
                self._inflight -= 1
                if self._inflight == 0 and self._idle is not None:
                    self._idle.set()
        return hits

    def _search_ctypes(self, query, k=None, filter=None, ef_search=0, with_payload=True,
                       exact=False, nonblocking=False, *, ivf_rerank=0):
        # search() through ctypes (when aidb._fast is not built).
        q = _ascontiguous(query, dtype=_float32)
        if q.ndim != 1:
            q = _f32(q, 1)  # raises DimensionMismatchError
        o, _f = _search_options(k, filter, ef_search, with_payload, 0, exact, nonblocking,
                                ivf_rerank)
        try:
            qp = byref(_from_buffer(q))
        except (TypeError, ValueError):  # a read-only or an empty array
            qp = q.ctypes.data
        res, msg = c_void_p(), c_void_p()
        lock = self._lock
        with lock:  # _Handle._enter/_leave, inlined on the hot path
            ptr = self._ptr
            if ptr is None:
                raise ClosedError(f"{type(self).__name__} is closed")
            self._inflight += 1
        try:
            rc = _search(ptr, qp, q.shape[0], o, byref(res), byref(msg))
        finally:
            with lock:
                self._inflight -= 1
                if self._inflight == 0 and self._idle is not None:
                    self._idle.set()
        if rc:
            _check(rc, msg)
        return _hits(_Result(res.value), 0)

    # One of the two is search() itself (no dispatching frame on the hot path).
    search = _search_ctypes if _fast_search is None else _search_fast
    _search_fast.__doc__ = _search_ctypes.__doc__ = (
        """The ``k`` best hits for one query vector (a list of Hit); ``k``
        None takes the library's default. ``ef_search``: HNSW breadth or
        IVF partitions to scan; ``ivf_rerank``: IVF candidates re-ranked
        exactly (0 for either: the collection's default).
        ``nonblocking=True`` never waits for a lock: BusyError instead
        (retry, or search without it).""")

    def search_batch(self, queries, k=None, filter=None, ef_search=0, with_payload=True,
                     threads=0, exact=False, nonblocking=False, *, ivf_rerank=0):
        """Searches a 2-D (nq, dim) float32 array of queries at once (no
        copy). Returns one list of Hit per query."""
        owner = self._search_batch(queries, k, filter, ef_search, with_payload, threads, exact,
                                   nonblocking, ivf_rerank)
        return [_hits(owner, i) for i in range(_lib.aidb_search_result_query_count(owner.ptr))]

    def _search_batch(self, queries, k, filter, ef_search, with_payload, threads, exact,
                      nonblocking, ivf_rerank=0):
        q = _f32(queries, 2)
        o, _f = _search_options(k, filter, ef_search, with_payload, threads, exact, nonblocking,
                                ivf_rerank)
        res = c_void_p()
        self._call(_lib.aidb_collection_search_batch, q.ctypes.data, q.shape[0], q.shape[1],
                   o, byref(res))
        return _Result(res.value)

    def search_batch_arrays(self, queries, k=None, filter=None, ef_search=0, threads=0,
                            exact=False, nonblocking=False, *, ivf_rerank=0):
        """Batch search for numpy users: ``(ids, scores)``, an (nq, k) array
        of ids (numpy unicode strings, dtype ``<U36``) and an (nq, k)
        float32 array of scores (distances), best (lowest) first, so each
        row ascends. Where a query has fewer than k hits, the rest of its row
        is ``""`` and ``inf`` (worse than any hit: rows stay ascending). No
        Python object per hit: each query's C hit array is viewed as a numpy
        structured array and copied once into the two arrays. Payloads are
        not fetched."""
        if k is None:
            k = _default_top_k()
        owner = self._search_batch(queries, k, filter, ef_search, False, threads, exact,
                                   nonblocking, ivf_rerank)
        nq = _lib.aidb_search_result_query_count(owner.ptr)
        ids = np.zeros((nq, k), dtype="<U36")
        scores = np.full((nq, k), np.inf, dtype=np.float32)
        for i in range(nq):
            v = _hit_view(owner.ptr, i)
            if v is not None:
                n = min(len(v), k)
                ids[i, :n] = v["id"][:n]
                scores[i, :n] = v["score"][:n]
        del owner  # frees the C result; the arrays own copies
        return ids, scores
