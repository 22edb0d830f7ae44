"""Database: a directory of collections."""
import ctypes
import weakref
from ctypes import byref, c_char_p, c_size_t, c_void_p

from . import _capi as C
from ._handle import _Handle
from ._options import _collection_options, _db_options
from ._util import _check, _cstr, _snapshot_info
from .collection import Collection

_lib = C.lib


class Database(_Handle):
    """A directory of collections. Opening it brings every collection back
    (latest snapshot, then WAL replay). Closing it closes the collection
    handles obtained from it first. Options left None take the library's
    defaults (aidb_db_options_init)."""

    def __init__(self, path, create_if_missing=True, durability=None,
                 batch_interval_ms=None, wal_mmap_threshold=None):
        o = _db_options(create_if_missing, durability, batch_interval_ms, wal_mmap_threshold)
        out, msg = c_void_p(), c_void_p()
        _check(_lib.aidb_db_open(_cstr(path, "path"), byref(o), byref(out), byref(msg)), msg)
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

    def create_collection(self, name, dim, metric=None, index=None, m=None,
                          ef_construction=None, ef_search=0, *, quantization=None,
                          vectors_on_disk=False, ivf=None):
        """Creates a collection and returns a handle to it (``quantization``,
        ``vectors_on_disk`` and ``ivf`` as for Collection)."""
        keep = []
        o = _collection_options(name, dim, metric, index, m, ef_construction, ef_search,
                                None, None, None, None, keep, quantization, vectors_on_disk,
                                ivf)
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
        """Load a snapshot, replay newer WAL records, seal as the new baseline
        (the restore of docs/operations.md)."""
        self._call(_lib.aidb_db_restore, _cstr(name, "name"), _cstr(path, "path"))
