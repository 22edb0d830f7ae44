"""ctypes declarations of AIDB's C API, written by hand after include/aidb.h
(ABI 0). tests/test_layout.py compiles a C program against the header and
checks every structure's size, alignment and field offsets, and every
constant (``AIDB_X`` of the header is ``X`` here).

The library is loaded from $AIDB_LIBRARY when set (a path or a file name);
else the copy bundled in this package (``aidb/libaidb.so.0``, built by
``pip install`` / the wheel); else ``libaidb.so.0`` through the dynamic
loader (LD_LIBRARY_PATH, the system paths); else through
ctypes.util.find_library("aidb"). The bundled copy comes before the system's
because it is the build this package was made and tested with; a package
built with AIDB_PYTHON_BUNDLE=OFF has none and uses the system library.
"""
import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_char, c_char_p, c_float, c_int, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)

from ._version import __version__

# The package is versioned with the library, so the header's version is ours.
VERSION = __version__
VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = (int(x) for x in VERSION.split("."))
VERSION_NUMBER = VERSION_MAJOR * 1000000 + VERSION_MINOR * 1000 + VERSION_PATCH
ABI_VERSION = 0

OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, DIMENSION_MISMATCH, IO_ERROR, \
    CORRUPTION, MISUSE, NO_MEMORY, UNSUPPORTED, INTERNAL, BUSY = range(12)

METRIC_COSINE, METRIC_EUCLIDEAN, METRIC_DOT = 0, 1, 2
INDEX_FLAT, INDEX_HNSW, INDEX_IVF = 0, 1, 2
DURABILITY_FSYNC, DURABILITY_BATCH, DURABILITY_NONE = 0, 1, 2
QUANTIZATION_SQ8, QUANTIZATION_NONE = 0, 1
LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF = range(5)
RECOVER_LATEST, RECOVER_TO_LSN, RECOVER_TO_TIME = 0, 1, 2
WAL_OP_UPSERT, WAL_OP_DELETE, WAL_OP_SET_PARAMS = 1, 2, 3

# The defaults the *_init functions set (AIDB_DEFAULT_* in aidb.h).
DEFAULT_METRIC = METRIC_COSINE
DEFAULT_INDEX_KIND = INDEX_FLAT
DEFAULT_HNSW_M = 16
DEFAULT_HNSW_EF_CONSTRUCTION = 200
DEFAULT_HNSW_EF_SEARCH = 0
DEFAULT_DURABILITY = DURABILITY_FSYNC
DEFAULT_BATCH_INTERVAL_MS = 10
DEFAULT_WAL_MMAP_THRESHOLD = 1048576
DEFAULT_CREATE_IF_MISSING = 1
DEFAULT_TOP_K = 10
DEFAULT_WITH_PAYLOAD = 1
# Which file of a collection aidb_db_collection_path names.
PATH_COLLECTION, PATH_CONFIG, PATH_WAL, PATH_MANIFEST, PATH_SNAPSHOTS = range(5)


class aidb_collection_options(Structure):
    _fields_ = [("struct_size", c_size_t), ("name", c_char_p), ("dim", c_uint32),
                ("metric", c_int), ("index_kind", c_int), ("hnsw_m", c_uint32),
                ("hnsw_ef_construction", c_uint32), ("hnsw_ef_search", c_uint32),
                ("wal_path", c_char_p), ("durability", c_int),
                ("batch_interval_ms", c_uint32), ("wal_mmap_threshold", c_uint64),
                ("ivf_nlist", c_uint32), ("ivf_nprobe", c_uint32), ("ivf_rerank", c_uint32),
                ("quantization", c_int), ("vectors_on_disk", c_int)]


class aidb_collection_info(Structure):
    _fields_ = [("struct_size", c_size_t), ("name", c_char * 72), ("dim", c_uint32),
                ("metric", c_int), ("index_kind", c_int), ("hnsw_m", c_uint32),
                ("hnsw_ef_construction", c_uint32), ("hnsw_ef_search", c_uint32),
                ("durability", c_int), ("count", c_uint64),
                ("ivf_nlist", c_uint32), ("ivf_nprobe", c_uint32), ("ivf_rerank", c_uint32),
                ("quantization", c_int), ("vectors_on_disk", c_int)]


class aidb_search_options(Structure):
    _fields_ = [("struct_size", c_size_t), ("top_k", c_uint32), ("ef_search", c_uint32),
                ("filter", c_char_p), ("with_payload", c_int), ("threads", c_uint32),
                ("exact", c_int), ("nonblocking", c_int), ("ivf_rerank", c_uint32)]


class aidb_hit(Structure):
    _fields_ = [("id", c_char * 40), ("score", c_float), ("reserved", c_uint32),
                ("payload", c_void_p), ("payload_len", c_size_t)]


class aidb_recover_options(Structure):
    _fields_ = [("struct_size", c_size_t), ("target", c_int), ("lsn", c_uint64),
                ("timestamp_ns", c_int64)]


class aidb_recover_stats(Structure):
    _fields_ = [("struct_size", c_size_t), ("records_applied", c_uint64),
                ("records_skipped", c_uint64), ("bytes_read", c_uint64),
                ("torn_tail_bytes", c_uint64), ("last_lsn", c_uint64),
                ("torn_tail", c_int), ("used_mmap", c_int)]


class aidb_wal_info(Structure):
    _fields_ = [("struct_size", c_size_t), ("size_bytes", c_uint64),
                ("has_last_truncate", c_int), ("last_truncate_unix_ns", c_int64),
                ("bytes_since_truncate", c_uint64), ("last_lsn", c_uint64)]


class aidb_wal_entry(Structure):
    _fields_ = [("struct_size", c_size_t), ("lsn", c_uint64), ("timestamp_ns", c_int64),
                ("op", c_int), ("json", c_void_p), ("json_len", c_size_t)]


class aidb_db_options(Structure):
    _fields_ = [("struct_size", c_size_t), ("create_if_missing", c_int),
                ("durability", c_int), ("batch_interval_ms", c_uint32),
                ("wal_mmap_threshold", c_uint64)]


class aidb_snapshot_info(Structure):
    _fields_ = [("path", c_char * 4096), ("lsn", c_uint64), ("size_bytes", c_uint64),
                ("created_unix_ns", c_int64), ("count", c_uint64)]


# Opaque handles travel as void*.
handle = c_void_p
errmsg = POINTER(c_void_p)  # char** errmsg: read as void* so it can be freed
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p, c_char_p, c_char_p)

# name: (restype, argtypes)
PROTOTYPES = {
    "aidb_version": (c_char_p, []),
    "aidb_version_number": (c_int, []),
    "aidb_status_name": (c_char_p, [c_int]),
    "aidb_free": (None, [c_void_p]),
    "aidb_free_string_array": (None, [POINTER(c_char_p), c_size_t]),
    "aidb_metric_from_string": (c_int, [c_char_p, POINTER(c_int), errmsg]),
    "aidb_index_kind_from_string": (c_int, [c_char_p, POINTER(c_int), errmsg]),
    "aidb_durability_from_string": (c_int, [c_char_p, POINTER(c_int), errmsg]),
    "aidb_metric_name": (c_char_p, [c_int]),
    "aidb_index_kind_name": (c_char_p, [c_int]),
    "aidb_durability_name": (c_char_p, [c_int]),
    "aidb_set_log_callback": (None, [LOG_FN, c_void_p, c_int]),
    "aidb_uuid_generate": (None, [c_char_p]),
    "aidb_uuid_canonical": (c_int, [c_char_p, c_char_p, errmsg]),
    "aidb_collection_options_init": (None, [POINTER(aidb_collection_options)]),
    "aidb_collection_open": (c_int, [POINTER(aidb_collection_options), POINTER(handle), errmsg]),
    "aidb_collection_close": (None, [handle]),
    "aidb_collection_info_init": (None, [POINTER(aidb_collection_info)]),
    "aidb_collection_get_info": (c_int, [handle, POINTER(aidb_collection_info), errmsg]),
    "aidb_collection_count": (c_int, [handle, POINTER(c_uint64), errmsg]),
    "aidb_collection_set_ef_search": (c_int, [handle, c_uint32, errmsg]),
    "aidb_collection_upsert": (c_int, [handle, c_char_p, c_void_p, c_size_t, c_char_p, c_size_t, errmsg]),
    "aidb_collection_upsert_batch": (c_int, [handle, c_size_t, POINTER(c_char_p), c_void_p, c_size_t,
                                             POINTER(c_char_p), errmsg]),
    "aidb_collection_delete": (c_int, [handle, c_char_p, errmsg]),
    "aidb_collection_get": (c_int, [handle, c_char_p, c_void_p, c_size_t, POINTER(c_void_p), errmsg]),
    "aidb_search_options_init": (None, [POINTER(aidb_search_options)]),
    "aidb_collection_search": (c_int, [handle, c_void_p, c_size_t, POINTER(aidb_search_options),
                                       POINTER(handle), errmsg]),
    "aidb_collection_search_batch": (c_int, [handle, c_void_p, c_size_t, c_size_t,
                                             POINTER(aidb_search_options), POINTER(handle), errmsg]),
    "aidb_search_result_query_count": (c_size_t, [handle]),
    # const aidb_hit** hits: read as void* (the binding views the array with numpy).
    "aidb_search_result_hits": (c_int, [handle, c_size_t, POINTER(c_void_p), POINTER(c_size_t)]),
    "aidb_search_result_free": (None, [handle]),
    "aidb_collection_snapshot_to": (c_int, [handle, c_char_p, errmsg]),
    "aidb_collection_load_snapshot": (c_int, [handle, c_char_p, errmsg]),
    "aidb_recover_options_init": (None, [POINTER(aidb_recover_options)]),
    "aidb_recover_stats_init": (None, [POINTER(aidb_recover_stats)]),
    "aidb_recover": (c_int, [handle, POINTER(aidb_recover_options), POINTER(aidb_recover_stats), errmsg]),
    "aidb_wal_info_init": (None, [POINTER(aidb_wal_info)]),
    "aidb_wal_stats": (c_int, [handle, POINTER(aidb_wal_info), errmsg]),
    "aidb_wal_iterator_open": (c_int, [handle, c_uint64, POINTER(handle), errmsg]),
    "aidb_wal_entry_init": (None, [POINTER(aidb_wal_entry)]),
    "aidb_wal_iterator_next": (c_int, [handle, POINTER(aidb_wal_entry), POINTER(c_int), errmsg]),
    "aidb_wal_iterator_close": (None, [handle]),
    "aidb_collection_compact": (c_int, [handle, errmsg]),
    "aidb_db_options_init": (None, [POINTER(aidb_db_options)]),
    "aidb_db_open": (c_int, [c_char_p, POINTER(aidb_db_options), POINTER(handle), errmsg]),
    "aidb_db_close": (None, [handle]),
    "aidb_db_create_collection": (c_int, [handle, POINTER(aidb_collection_options), POINTER(handle), errmsg]),
    "aidb_db_open_collection": (c_int, [handle, c_char_p, POINTER(handle), errmsg]),
    "aidb_db_drop_collection": (c_int, [handle, c_char_p, errmsg]),
    "aidb_db_list_collections": (c_int, [handle, POINTER(POINTER(c_char_p)), POINTER(c_size_t), errmsg]),
    "aidb_db_snapshot": (c_int, [handle, c_char_p, POINTER(c_void_p), errmsg]),
    "aidb_db_list_snapshots": (c_int, [handle, c_char_p, POINTER(POINTER(aidb_snapshot_info)),
                                       POINTER(c_size_t), errmsg]),
    "aidb_db_restore": (c_int, [handle, c_char_p, c_char_p, errmsg]),
    "aidb_snapshot_verify": (c_int, [c_char_p, POINTER(aidb_snapshot_info), errmsg]),
    "aidb_wal_verify": (c_int, [c_char_p, POINTER(c_uint64), POINTER(c_uint64), errmsg]),
    "aidb_uuid_generate_v2": (c_int, [c_char_p, errmsg]),
    "aidb_search_result_hits_v2": (c_int, [handle, c_size_t, POINTER(c_void_p), POINTER(c_size_t),
                                           errmsg]),
    "aidb_snapshot_export": (c_int, [c_char_p, c_char_p, POINTER(aidb_snapshot_info), errmsg]),
    "aidb_db_collection_path": (c_int, [c_char_p, c_char_p, c_int, POINTER(c_void_p), errmsg]),
    "aidb_db_path_is_managed": (c_int, [c_char_p, c_char_p, POINTER(c_int), errmsg]),
}


BUNDLED_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               f"libaidb.so.{ABI_VERSION}")


def _candidates():
    name = os.environ.get("AIDB_LIBRARY")
    if name:
        return [name]
    bundled = [BUNDLED_LIBRARY] if os.path.isfile(BUNDLED_LIBRARY) else []
    return bundled + [f"libaidb.so.{ABI_VERSION}", ctypes.util.find_library("aidb")]


def _load():
    errors = []
    for cand in _candidates():
        if not cand:
            continue
        try:
            return ctypes.CDLL(cand), cand
        except OSError as e:
            errors.append(str(e))
    raise OSError("cannot load libaidb (set AIDB_LIBRARY or LD_LIBRARY_PATH): "
                  + "; ".join(errors or ["not found"]))


# LIBRARY: what was loaded (a path or a name given to the dynamic loader).
lib, LIBRARY = _load()
for _name, (_res, _args) in PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args
del _name, _res, _args, _fn
