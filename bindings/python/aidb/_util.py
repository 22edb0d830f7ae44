"""Argument conversion and status checking shared by the binding's modules."""
import ctypes
import json
import os
from ctypes import byref, c_int, c_void_p

import numpy as np

from . import _capi as C
from .errors import DimensionMismatchError, InvalidArgumentError, error_for

_lib = C.lib


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


def _c_init(struct, init):
    """A C options struct filled with the library's defaults by its
    aidb_*_init function."""
    o = struct()
    init(byref(o))
    return o


_FROM_STRING = {"metric": _lib.aidb_metric_from_string,
                "index": _lib.aidb_index_kind_from_string,
                "durability": _lib.aidb_durability_from_string}


def _set_enum(o, field, what, value):
    """Sets a metric, index kind or durability field of an options struct
    unless ``value`` is None (the library's default stays)."""
    if value is not None:
        setattr(o, field, _enum(what, value))


def _enum(what, value):
    """A metric, index kind or durability: a name the library parses
    (aidb_*_from_string, aliases included) or the AIDB_* number."""
    if not isinstance(value, (str, bytes)):
        return int(value)
    out, msg = c_int(), c_void_p()
    _check(_FROM_STRING[what](_cstr(value, what), byref(out), byref(msg)), msg)
    return out.value


def _snapshot_info(i):
    """An aidb_snapshot_info as a dict."""
    return {"path": i.path.decode(), "lsn": i.lsn, "size_bytes": i.size_bytes,
            "created_unix_ns": i.created_unix_ns, "count": i.count}
