"""Options structs built from keyword arguments, starting from the
library's defaults (the aidb_*_options_init functions)."""
from ctypes import byref

import numpy as np

from . import _capi as C
from ._util import _c_init, _cstr, _json, _set_enum
from .errors import InvalidArgumentError

_lib = C.lib


_QUANTIZATIONS = {"sq8": C.QUANTIZATION_SQ8, "none": C.QUANTIZATION_NONE}


def _collection_options(name, dim, metric, index, m, ef_construction, ef_search,
                        wal_path, durability, batch_interval_ms, wal_mmap_threshold, keep,
                        quantization=None, vectors_on_disk=False, ivf=None):
    """An aidb_collection_options; None (or 0) keeps the library's default.
    The byte strings its pointers refer to are appended to ``keep``."""
    o = _c_init(C.aidb_collection_options, _lib.aidb_collection_options_init)
    name_b = _cstr(name, "name")
    keep.append(name_b)
    o.name = name_b
    if not isinstance(dim, (int, np.integer)) or dim < 0 or dim > 0xFFFFFFFF:
        raise InvalidArgumentError(f"bad dim {dim!r}")
    o.dim = int(dim)
    _set_enum(o, "metric", "metric", metric)
    _set_enum(o, "index_kind", "index", index)
    _set_enum(o, "durability", "durability", durability)
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
    if quantization is not None:
        q = _QUANTIZATIONS.get(quantization.lower()) if isinstance(quantization, str) else None
        if q is None:
            raise InvalidArgumentError(
                f"unknown quantization {quantization!r}: expected 'sq8' or 'none'")
        o.quantization = q
    o.vectors_on_disk = 1 if vectors_on_disk else 0
    for key, value in (ivf or {}).items():
        if key not in ("nlist", "nprobe", "rerank"):
            raise InvalidArgumentError(
                f"unknown ivf parameter {key!r}: expected nlist, nprobe or rerank")
        if not isinstance(value, (int, np.integer)) or not 0 <= value <= 0xFFFFFFFF:
            raise InvalidArgumentError(f"bad ivf {key} {value!r}")
        setattr(o, "ivf_" + key, int(value))
    return o


def _db_options(create_if_missing, durability, batch_interval_ms, wal_mmap_threshold):
    o = _c_init(C.aidb_db_options, _lib.aidb_db_options_init)
    o.create_if_missing = 1 if create_if_missing else 0
    _set_enum(o, "durability", "durability", durability)
    if batch_interval_ms:
        o.batch_interval_ms = batch_interval_ms
    if wal_mmap_threshold:
        o.wal_mmap_threshold = wal_mmap_threshold
    return o


def _default_top_k():
    """The library's default number of hits (aidb_search_options_init)."""
    return _c_init(C.aidb_search_options, _lib.aidb_search_options_init).top_k


def _build_search_options(k, filter, ef_search, with_payload, threads, exact, nonblocking,
                          ivf_rerank=0):
    """An aidb_search_options and the filter bytes it points to."""
    o = _c_init(C.aidb_search_options, _lib.aidb_search_options_init)
    if k is not None:
        o.top_k = k
    o.ef_search = ef_search
    f = _json(filter, "filter")
    if f is not None:
        o.filter = f
    o.with_payload = 1 if with_payload else 0
    o.threads = threads
    o.exact = 1 if exact else 0
    o.nonblocking = 1 if nonblocking else 0
    o.ivf_rerank = ivf_rerank or 0
    return o, f


_search_options_cache = {}


def _search_options(k, filter, ef_search, with_payload, threads, exact, nonblocking,
                    ivf_rerank=0):
    """``(byref(options), filter bytes)``, as the search functions take
    them. Without a filter the struct is read-only for the library, so one
    struct (and its byref) per setting is shared."""
    if filter is not None:
        o, f = _build_search_options(k, filter, ef_search, with_payload, threads, exact,
                                     nonblocking, ivf_rerank)
        return byref(o), f
    key = (k, ef_search, with_payload, threads, exact, nonblocking, ivf_rerank)
    ref = _search_options_cache.get(key)
    if ref is None:
        o, _ = _build_search_options(k, None, ef_search, with_payload, threads, exact, nonblocking,
                                     ivf_rerank)
        ref = byref(o)  # keeps o alive
        if len(_search_options_cache) < 64:
            _search_options_cache[key] = ref
    return ref, None
