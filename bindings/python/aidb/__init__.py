"""Python binding of AIDB, an embedded vector database engine.

A thin ctypes layer over the C API (include/aidb.h). Vectors are numpy
float32 arrays handed to the library without copying (C-contiguous float32
arrays are used as they are; anything else is converted once). Handles are
context managers, safe to share between threads (the GIL is released during
library calls), and raise ClosedError after close().
"""
import ctypes
import json
import os
import struct
import threading
from ctypes import byref, c_char_p, c_int, c_size_t, c_uint64, c_void_p

import numpy as np

from . import _capi as C
from .errors import (AidbError, AidbIOError, AlreadyExistsError, ClosedError,  # noqa: F401
                     CorruptionError, DimensionMismatchError, InternalError,
                     InvalidArgumentError, MisuseError, NoMemoryError, NotFoundError,
                     UnsupportedError, error_for)

__all__ = [
    "Collection", "Database", "Hit", "set_logger", "version", "version_number", "new_id", "canonical_id",
    "verify_snapshot", "verify_wal", "AidbError", "InvalidArgumentError", "NotFoundError",
    "AlreadyExistsError", "DimensionMismatchError", "AidbIOError", "CorruptionError",
    "MisuseError", "ClosedError", "NoMemoryError", "UnsupportedError", "InternalError",
]

_lib = C.lib
HEADER_VERSION_NUMBER = C.AIDB_VERSION_NUMBER


def _check(rc, msg):
    """Raises the exception of a non-zero status, freeing the message."""
    if rc == 0:
        return
    text = ""
    if msg.value:
        text = ctypes.string_at(msg.value).decode("utf-8", "replace")
        _lib.aidb_free(msg.value)
    raise error_for(rc, text)


def _cstr(s, what="string"):
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, str):
        s = s.encode()
    if not isinstance(s, bytes):
        raise InvalidArgumentError(f"{what} must be str or bytes, not {type(s).__name__}")
    if b"\0" in s:
        raise InvalidArgumentError(f"{what} contains a NUL byte")
    return s


def _json(obj, what="payload"):
    """None, JSON text (str/bytes) or a JSON-serialisable object -> bytes."""
    if obj is None:
        return None
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode()
    try:
        return json.dumps(obj, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{what}: {e}") from None


def _f32(a, ndim):
    """A C-contiguous float32 view of `a` (no copy when it already is one)."""
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if arr.ndim != ndim:
        if ndim == 2 and arr.ndim == 1:
            arr = arr.reshape(1, -1)
        else:
            raise DimensionMismatchError(f"expected a {ndim}-D array, got {arr.ndim}-D")
    return arr


def version():
    """The loaded library's version, e.g. "0.1.0"."""
    return _lib.aidb_version().decode()


def version_number():
    """The loaded library's version as X*1000000 + Y*1000 + Z."""
    return _lib.aidb_version_number()


def new_id():
    """A new random UUID in canonical form."""
    buf = ctypes.create_string_buffer(37)
    _lib.aidb_uuid_generate(buf)
    return buf.value.decode()


def canonical_id(id):
    """Checks a textual UUID and returns its canonical form."""
    buf = ctypes.create_string_buffer(37)
    msg = c_void_p()
    _check(_lib.aidb_uuid_canonical(_cstr(id, "id"), buf, byref(msg)), msg)
    return buf.value.decode()


def _snapshot_info(i):
    return {"path": i.path.decode(), "lsn": i.lsn, "size_bytes": i.size_bytes,
            "created_unix_ns": i.created_unix_ns, "count": i.count}


def verify_snapshot(path):
    """Checks a snapshot file; returns its info as a dict."""
    info = C.aidb_snapshot_info()
    msg = c_void_p()
    _check(_lib.aidb_snapshot_verify(_cstr(path, "path"), byref(info), byref(msg)), msg)
    return _snapshot_info(info)


def verify_wal(path):
    """Checks every record of a WAL file; returns (records, valid_bytes)."""
    r, b, msg = c_uint64(), c_uint64(), c_void_p()
    _check(_lib.aidb_wal_verify(_cstr(path, "path"), byref(r), byref(b), byref(msg)), msg)
    return r.value, b.value


_LOG_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "off": 4}
_log_callback = None  # keeps the ctypes trampoline alive


def set_logger(fn, min_level="info"):
    """Routes the library's log events at or above ``min_level`` ("debug",
    "info", "warn", "error") to ``fn(level, target, event, fields)``, e.g.
    (1, "aidb::storage", "wal_truncated", "collection=docs ..."). ``fn`` may
    be called from any thread and must not call back into AIDB. ``None``
    silences the library. Process-wide."""
    global _log_callback
    level = _LOG_LEVELS[min_level] if isinstance(min_level, str) else int(min_level)
    if fn is None:
        _lib.aidb_set_log_callback(C.LOG_FN(), None, level)
        _log_callback = None
        return

    def trampoline(_user, lvl, target, event, fields):
        try:
            fn(lvl, target.decode(), event.decode(), (fields or b"").decode())
        except Exception:  # never unwind into the library
            pass

    cb = C.LOG_FN(trampoline)
    _lib.aidb_set_log_callback(cb, None, level)
    _log_callback = cb


def _silence_at_exit():
    if _log_callback is not None:
        _lib.aidb_set_log_callback(C.LOG_FN(), None, _LOG_LEVELS["off"])


import atexit  # noqa: E402

atexit.register(_silence_at_exit)


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


class _Handle:
    """A C handle with a count of calls in flight, so close() waits for them
    and later calls raise ClosedError instead of touching freed memory."""

    def __init__(self, ptr):
        self._ptr = ptr
        self._lock = threading.Lock()
        self._idle = None  # an Event close() waits on while calls are in flight
        self._inflight = 0

    def _enter(self):
        with self._lock:
            if self._ptr is None:
                raise ClosedError(f"{type(self).__name__} is closed")
            self._inflight += 1
            return self._ptr

    def _leave(self):
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0 and self._idle is not None:
                self._idle.set()

    def _call(self, fn, *args):
        """fn(ptr, *args, &errmsg) with the status checked."""
        ptr = self._enter()
        try:
            msg = c_void_p()
            rc = fn(ptr, *args, byref(msg))
        finally:
            self._leave()
        if rc:
            _check(rc, msg)

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Releases the handle; idempotent. Waits for calls in flight."""
        while True:
            with self._lock:
                if self._inflight == 0:
                    ptr, self._ptr = self._ptr, None
                    break
                if self._idle is None:
                    self._idle = threading.Event()
                self._idle.clear()
                idle = self._idle
            idle.wait()
        if ptr is not None:
            self._release(ptr)

    def _release(self, ptr):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _collection_options(name, dim, metric, index, m, ef_construction, ef_search,
                        wal_path, durability, batch_interval_ms, wal_mmap_threshold, keep):
    o = C.aidb_collection_options()
    _lib.aidb_collection_options_init(byref(o))
    name_b = _cstr(name, "name")
    keep.append(name_b)
    o.name = name_b
    if not isinstance(dim, (int, np.integer)) or dim < 0 or dim > 0xFFFFFFFF:
        raise InvalidArgumentError(f"bad dim {dim!r}")
    o.dim = int(dim)
    try:
        o.metric = C.METRICS[metric] if isinstance(metric, str) else int(metric)
        o.index_kind = C.INDEX_KINDS[index] if isinstance(index, str) else int(index)
        o.durability = C.DURABILITY[durability] if isinstance(durability, str) else int(durability)
    except KeyError as e:
        raise InvalidArgumentError(f"unknown option value {e}") from None
    if m:
        o.hnsw_m = m
    if ef_construction:
        o.hnsw_ef_construction = ef_construction
    o.hnsw_ef_search = ef_search or 0
    if wal_path is not None:
        w = _cstr(wal_path, "wal_path")
        keep.append(w)
        o.wal_path = w
    if batch_interval_ms:
        o.batch_interval_ms = batch_interval_ms
    if wal_mmap_threshold:
        o.wal_mmap_threshold = wal_mmap_threshold
    return o


class Collection(_Handle):
    """A collection of points (UUID id, float32 vector, optional JSON payload).

    ``Collection(name, dim, metric="cosine", index="flat", wal_path=None, ...)``
    opens a standalone collection. If ``wal_path`` names an existing WAL, its
    records are not applied until ``load_snapshot()`` and/or ``recover()``
    run (the runbook's restore workflow). Use it as a context manager.
    """

    def __init__(self, name=None, dim=None, metric="cosine", index="flat", m=None,
                 ef_construction=None, ef_search=0, wal_path=None, durability="fsync",
                 batch_interval_ms=None, wal_mmap_threshold=None, *, _ptr=None, _owner=None):
        self._owner = _owner  # the Database this handle belongs to, kept alive
        if _ptr is None:
            keep = []
            o = _collection_options(name, dim, metric, index, m, ef_construction, ef_search,
                                    wal_path, durability, batch_interval_ms,
                                    wal_mmap_threshold, keep)
            out, msg = c_void_p(), c_void_p()
            _check(_lib.aidb_collection_open(byref(o), byref(out), byref(msg)), msg)
            _ptr = out.value
        super().__init__(_ptr)
        self._dim = self.info()["dim"]

    def _release(self, ptr):
        _lib.aidb_collection_close(ptr)

    @property
    def dim(self):
        return self._dim

    def info(self):
        """The configuration and point count as a dict."""
        i = C.aidb_collection_info()
        _lib.aidb_collection_info_init(byref(i))
        self._call(_lib.aidb_collection_get_info, byref(i))
        return {"name": i.name.decode(), "dim": i.dim, "metric": _lib.aidb_metric_name(i.metric).decode(),
                "index": _lib.aidb_index_kind_name(i.index_kind).decode(), "hnsw_m": i.hnsw_m,
                "hnsw_ef_construction": i.hnsw_ef_construction, "hnsw_ef_search": i.hnsw_ef_search,
                "durability": _lib.aidb_durability_name(i.durability).decode(), "count": i.count}

    def count(self):
        """The number of live points."""
        n = c_uint64()
        self._call(_lib.aidb_collection_count, byref(n))
        return n.value

    def __len__(self):
        return self.count()

    def set_ef_search(self, ef):
        self._call(_lib.aidb_collection_set_ef_search, ef)

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

    _options_cache = {}

    @classmethod
    def _search_options(cls, k, filter, ef_search, with_payload, threads, exact):
        if filter is None:
            # Read-only for the library, so one struct per setting is shared.
            key = (k, ef_search, with_payload, threads, exact)
            o = cls._options_cache.get(key)
            if o is None:
                o, _ = cls._build_search_options(k, None, ef_search, with_payload, threads, exact)
                if len(cls._options_cache) < 64:
                    cls._options_cache[key] = o
            return o, None
        return cls._build_search_options(k, filter, ef_search, with_payload, threads, exact)

    @staticmethod
    def _build_search_options(k, filter, ef_search, with_payload, threads, exact):
        o = C.aidb_search_options()
        _lib.aidb_search_options_init(byref(o))
        o.top_k = k
        o.ef_search = ef_search
        f = _json(filter, "filter")
        if f is not None:
            o.filter = f
        o.with_payload = 1 if with_payload else 0
        o.threads = threads
        o.exact = 1 if exact else 0
        return o, f

    @staticmethod
    def _hits(owner, q):
        hp = c_void_p()
        n = c_size_t()
        if _lib.aidb_search_result_hits(owner.ptr, q, byref(hp), byref(n)) != 0 or not n.value:
            return []
        # Parse the aidb_hit array in place (one pass over its bytes).
        raw = (ctypes.c_char * (n.value * _HIT.size)).from_address(hp.value)
        return [_new_hit(Hit, (id.rstrip(b"\0").decode(), score, (owner, p, ln) if p else None, None))
                for id, score, _, p, ln in _HIT.iter_unpack(raw)]

    def search(self, query, k=10, filter=None, ef_search=0, with_payload=True, exact=False):
        """The ``k`` best hits for one query vector (a list of Hit)."""
        q = _f32(query, 1)
        o, _f = self._search_options(k, filter, ef_search, with_payload, 0, exact)
        res, msg = c_void_p(), c_void_p()
        ptr = self._enter()  # _call, inlined on the hot path
        try:
            rc = _search(ptr, q.ctypes.data, q.shape[0], byref(o), byref(res), byref(msg))
        finally:
            self._leave()
        if rc:
            _check(rc, msg)
        return self._hits(_Result(res.value), 0)

    def search_batch(self, queries, k=10, filter=None, ef_search=0, with_payload=True,
                     threads=0, exact=False):
        """Searches a 2-D (nq, dim) float32 array of queries at once (no
        copy). Returns one list of Hit per query."""
        q = _f32(queries, 2)
        o, _f = self._search_options(k, filter, ef_search, with_payload, threads, exact)
        res = c_void_p()
        self._call(_lib.aidb_collection_search_batch, q.ctypes.data, q.shape[0], q.shape[1],
                   byref(o), byref(res))
        owner = _Result(res.value)
        return [self._hits(owner, i) for i in range(_lib.aidb_search_result_query_count(owner.ptr))]

    def search_batch_arrays(self, queries, k=10, **kw):
        """Like search_batch, but returns (ids, scores): a list of id lists
        and an (nq, k) float32 array of scores (-inf where fewer than k hits)."""
        hits = self.search_batch(queries, k=k, with_payload=False, **kw)
        scores = np.full((len(hits), k), -np.inf, dtype=np.float32)
        for i, hs in enumerate(hits):
            scores[i, :len(hs)] = [h.score for h in hs]
        return [[h.id for h in hs] for hs in hits], scores

    def snapshot_to(self, path):
        """Writes a snapshot to ``path``, then truncates the WAL to zero bytes."""
        self._call(_lib.aidb_collection_snapshot_to, _cstr(path, "path"))

    def load_snapshot(self, path):
        """Replaces the in-memory state with a snapshot; the WAL is left intact."""
        self._call(_lib.aidb_collection_load_snapshot, _cstr(path, "path"))

    def recover(self, to_lsn=None, to_time_ns=None):
        """Replays WAL records newer than the in-memory state (up to an LSN or
        a Unix-ns timestamp if given). Returns the recovery stats as a dict."""
        o = C.aidb_recover_options()
        _lib.aidb_recover_options_init(byref(o))
        if to_lsn is not None:
            o.target, o.lsn = C.RECOVER_TO_LSN, to_lsn
        elif to_time_ns is not None:
            o.target, o.timestamp_ns = C.RECOVER_TO_TIME, to_time_ns
        s = C.aidb_recover_stats()
        _lib.aidb_recover_stats_init(byref(s))
        self._call(_lib.aidb_recover, byref(o), byref(s))
        return {"records_applied": s.records_applied, "records_skipped": s.records_skipped,
                "bytes_read": s.bytes_read, "torn_tail_bytes": s.torn_tail_bytes,
                "last_lsn": s.last_lsn, "torn_tail": bool(s.torn_tail), "used_mmap": bool(s.used_mmap)}

    def wal_stats(self):
        """WAL statistics; ``last_truncate_unix_ns`` is None until a snapshot ran."""
        w = C.aidb_wal_info()
        _lib.aidb_wal_info_init(byref(w))
        self._call(_lib.aidb_wal_stats, byref(w))
        return {"size_bytes": w.size_bytes,
                "last_truncate_unix_ns": w.last_truncate_unix_ns if w.has_last_truncate else None,
                "bytes_since_truncate": w.bytes_since_truncate, "last_lsn": w.last_lsn}

    def wal_entries(self, from_lsn=0):
        """The WAL records with LSN >= from_lsn as dicts (lsn, timestamp_ns, op, record)."""
        it = c_void_p()
        self._call(_lib.aidb_wal_iterator_open, from_lsn, byref(it))
        out = []
        try:
            while True:
                e = C.aidb_wal_entry()
                e.struct_size = ctypes.sizeof(e)
                has, msg = c_int(), c_void_p()
                _check(_lib.aidb_wal_iterator_next(it, byref(e), byref(has), byref(msg)), msg)
                if not has.value:
                    return out
                out.append({"lsn": e.lsn, "timestamp_ns": e.timestamp_ns,
                            "op": C.WAL_OPS.get(e.op, e.op),
                            "record": json.loads(ctypes.string_at(e.json, e.json_len))})
        finally:
            _lib.aidb_wal_iterator_close(it)

    def compact(self):
        self._call(_lib.aidb_collection_compact)


class Database(_Handle):
    """A directory of collections. Opening it brings every collection back
    (latest snapshot, then WAL replay). Closing it closes the collection
    handles obtained from it first."""

    def __init__(self, path, create_if_missing=True, durability="fsync",
                 batch_interval_ms=None, wal_mmap_threshold=None):
        o = C.aidb_db_options()
        _lib.aidb_db_options_init(byref(o))
        o.create_if_missing = 1 if create_if_missing else 0
        o.durability = C.DURABILITY[durability] if isinstance(durability, str) else int(durability)
        if batch_interval_ms:
            o.batch_interval_ms = batch_interval_ms
        if wal_mmap_threshold:
            o.wal_mmap_threshold = wal_mmap_threshold
        out, msg = c_void_p(), c_void_p()
        _check(_lib.aidb_db_open(_cstr(path, "path"), byref(o), byref(out), byref(msg)), msg)
        import weakref
        self._colls = weakref.WeakSet()
        super().__init__(out.value)

    def _release(self, ptr):
        # Runs once no call is in flight and none can start: the collection
        # handles from this database are closed first, as the C API wants.
        for c in list(self._colls):
            c.close()
        _lib.aidb_db_close(ptr)

    def _open(self, fn, *args):
        """fn(db, *args, &out, &errmsg) -> a registered Collection, all while
        the call guard is held, so close() cannot run in between."""
        ptr = self._enter()
        try:
            out, msg = c_void_p(), c_void_p()
            rc = fn(ptr, *args, byref(out), byref(msg))
            if rc:
                _check(rc, msg)
            c = Collection(_ptr=out.value, _owner=self)
            self._colls.add(c)
            return c
        finally:
            self._leave()

    def create_collection(self, name, dim, metric="cosine", index="flat", m=None,
                          ef_construction=None, ef_search=0):
        """Creates a collection and returns a handle to it."""
        keep = []
        o = _collection_options(name, dim, metric, index, m, ef_construction, ef_search,
                                None, "fsync", None, None, keep)
        return self._open(_lib.aidb_db_create_collection, byref(o))

    def collection(self, name):
        """A new handle to an existing collection (NotFoundError if none)."""
        return self._open(_lib.aidb_db_open_collection, _cstr(name, "name"))

    __getitem__ = collection

    def drop_collection(self, name):
        self._call(_lib.aidb_db_drop_collection, _cstr(name, "name"))

    def list_collections(self):
        names = ctypes.POINTER(c_char_p)()
        n = c_size_t()
        self._call(_lib.aidb_db_list_collections, byref(names), byref(n))
        try:
            return [names[i].decode() for i in range(n.value)]
        finally:
            _lib.aidb_free_string_array(names, n.value)

    def snapshot(self, name):
        """Snapshots a collection into its snapshots folder (truncating its
        WAL); returns the snapshot's path."""
        p = c_void_p()
        self._call(_lib.aidb_db_snapshot, _cstr(name, "name"), byref(p))
        try:
            return ctypes.string_at(p.value).decode()
        finally:
            _lib.aidb_free(p.value)

    def list_snapshots(self, name):
        infos = ctypes.POINTER(C.aidb_snapshot_info)()
        n = c_size_t()
        self._call(_lib.aidb_db_list_snapshots, _cstr(name, "name"), byref(infos), byref(n))
        try:
            return [_snapshot_info(infos[i]) for i in range(n.value)]
        finally:
            _lib.aidb_free(ctypes.cast(infos, c_void_p))

    def restore(self, name, path):
        """Load a snapshot, replay newer WAL records, seal as the new baseline."""
        self._call(_lib.aidb_db_restore, _cstr(name, "name"), _cstr(path, "path"))
