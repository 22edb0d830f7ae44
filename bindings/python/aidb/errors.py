"""Exceptions, one class per AIDB status code."""
from . import _capi as C


class AidbError(Exception):
    """A failed AIDB call. ``status`` is the library's name of the code (e.g.
    "NOT_FOUND"), ``code`` the number, ``message`` the library's message."""

    code = -1

    def __init__(self, message="", code=None, status=None):
        if code is not None:
            self.code = code
        self.message = message
        self.status = status or C.lib.aidb_status_name(self.code).decode()
        super().__init__(f"{self.status}: {message}" if message else self.status)


class InvalidArgumentError(AidbError, ValueError):
    code = C.INVALID_ARGUMENT


class NotFoundError(AidbError, LookupError):
    code = C.NOT_FOUND


class AlreadyExistsError(AidbError):
    code = C.ALREADY_EXISTS


class DimensionMismatchError(AidbError, ValueError):
    code = C.DIMENSION_MISMATCH


class AidbIOError(AidbError):
    code = C.IO_ERROR


class CorruptionError(AidbError):
    code = C.CORRUPTION


class MisuseError(AidbError):
    code = C.MISUSE


class ClosedError(MisuseError):
    """A method was called on a closed handle."""


class NoMemoryError(AidbError, MemoryError):
    code = C.NO_MEMORY


class UnsupportedError(AidbError):
    code = C.UNSUPPORTED


class InternalError(AidbError):
    code = C.INTERNAL


class BusyError(AidbError):
    """A nonblocking call (``nonblocking=True``) found a lock taken, or an
    HNSW walk far longer than ef predicts; nothing changed. Retry, or call
    without ``nonblocking``."""
    code = C.BUSY


_BY_CODE = {cls.code: cls for cls in (
    InvalidArgumentError, NotFoundError, AlreadyExistsError, DimensionMismatchError,
    AidbIOError, CorruptionError, MisuseError, NoMemoryError, UnsupportedError, InternalError,
    BusyError)}


def error_for(code, message=""):
    """The exception for a status code; unknown codes give a plain AidbError."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return AidbError(message, code=code)
    return cls(message)
