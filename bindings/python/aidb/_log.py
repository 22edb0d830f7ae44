"""The library's log events, routed to a Python function."""
import atexit

from . import _capi as C

_lib = C.lib
_LOG_LEVELS = {"debug": C.LOG_DEBUG, "info": C.LOG_INFO, "warn": C.LOG_WARN,
               "error": C.LOG_ERROR, "off": C.LOG_OFF}
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
        _lib.aidb_set_log_callback(C.LOG_FN(), None, C.LOG_OFF)


atexit.register(_silence_at_exit)
