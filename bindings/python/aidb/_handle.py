"""The base of Collection and Database: a C handle that close() releases
once no call is in flight."""
import threading
from ctypes import byref, c_void_p

from ._util import _check
from .errors import ClosedError


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
        # New calls raise ClosedError from here on, so the calls in flight
        # drain even while other threads keep calling (waiting for a moment
        # with none in flight could wait for ever).
        with self._lock:
            ptr, self._ptr = self._ptr, None
        while True:
            with self._lock:
                if self._inflight == 0:
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
