"""Python binding of AIDB, an embedded vector database engine.

A thin ctypes layer over the C API (include/aidb.h). Vectors are numpy
float32 arrays handed to the library without copying (C-contiguous float32
arrays are used as they are; anything else is converted once). Handles are
context managers, safe to share between threads (the GIL is released during
library calls), and raise ClosedError after close().

The modules: _capi (the ctypes declarations), collection (Collection, with
_points, _search and _recovery), database (Database), errors, _log
(set_logger); _fast, when the package was built with it, is the compiled
single-query search (src/aidb_fast.c; _search falls back to ctypes).
"""
import ctypes
from ctypes import byref, c_uint64, c_void_p

from . import _capi as C
from ._log import set_logger
from ._search import Hit
from ._util import _check, _cstr, _f32, _snapshot_info  # noqa: F401
from ._version import __version__  # noqa: F401
from .collection import Collection
from .database import Database
from .errors import (AidbError, AidbIOError, AlreadyExistsError, BusyError,  # noqa: F401
                     ClosedError, CorruptionError, DimensionMismatchError, InternalError,
                     InvalidArgumentError, MisuseError, NoMemoryError, NotFoundError,
                     UnsupportedError, error_for)

__all__ = [
    "Collection", "Database", "Hit", "set_logger", "version", "version_number", "new_id", "canonical_id",
    "verify_snapshot", "verify_wal", "AidbError", "InvalidArgumentError", "NotFoundError",
    "AlreadyExistsError", "DimensionMismatchError", "AidbIOError", "CorruptionError",
    "MisuseError", "ClosedError", "NoMemoryError", "UnsupportedError", "InternalError",
    "BusyError",
]

_lib = C.lib
HEADER_VERSION_NUMBER = C.VERSION_NUMBER


def version():
    """The loaded library's version, e.g. "0.2.0"."""
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
