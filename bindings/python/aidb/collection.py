"""Collection: the handle, with its methods grouped by concern in
_points.py, _search.py and _recovery.py."""
from ctypes import byref, c_uint64, c_void_p

from . import _capi as C
from ._handle import _Handle
from ._options import _collection_options
from ._points import _Points
from ._recovery import _Recovery
from ._search import _Search
from ._util import _c_init, _check

_lib = C.lib


class Collection(_Points, _Search, _Recovery, _Handle):
    """A collection of points (UUID id, float32 vector, optional JSON payload).

    ``Collection(name, dim, metric=None, index=None, wal_path=None, ...)``
    opens a standalone collection. Options left None take the library's
    defaults (aidb_collection_options_init: cosine, flat, fsync, ...). If ``wal_path`` names an existing WAL, its
    records are not applied until ``load_snapshot()`` and/or ``recover()``
    run (the restore workflow of docs/operations.md). Keyword-only:
    ``quantization`` ("sq8", the default, or "none": what an HNSW walk
    scores), ``vectors_on_disk`` (any index: float vectors in a
    file-backed mapping beside the WAL, which it then needs) and ``ivf``
    (index "ivf": a dict of any of ``nlist``, ``nprobe``, ``rerank``; 0 or
    missing = automatic). Use it as a context manager.
    """

    def __init__(self, name=None, dim=None, metric=None, index=None, m=None,
                 ef_construction=None, ef_search=0, wal_path=None, durability=None,
                 batch_interval_ms=None, wal_mmap_threshold=None, *, quantization=None,
                 vectors_on_disk=False, ivf=None, _ptr=None, _owner=None):
        self._owner = _owner  # the Database this handle belongs to, kept alive
        if _ptr is None:
            keep = []
            o = _collection_options(name, dim, metric, index, m, ef_construction, ef_search,
                                    wal_path, durability, batch_interval_ms,
                                    wal_mmap_threshold, keep, quantization, vectors_on_disk, ivf)
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
        i = _c_init(C.aidb_collection_info, _lib.aidb_collection_info_init)
        self._call(_lib.aidb_collection_get_info, byref(i))
        return {"name": i.name.decode(), "dim": i.dim, "metric": _lib.aidb_metric_name(i.metric).decode(),
                "index": _lib.aidb_index_kind_name(i.index_kind).decode(), "hnsw_m": i.hnsw_m,
                "hnsw_ef_construction": i.hnsw_ef_construction, "hnsw_ef_search": i.hnsw_ef_search,
                "durability": _lib.aidb_durability_name(i.durability).decode(), "count": i.count,
                "ivf_nlist": i.ivf_nlist, "ivf_nprobe": i.ivf_nprobe, "ivf_rerank": i.ivf_rerank,
                "quantization": "none" if i.quantization == C.QUANTIZATION_NONE else "sq8",
                "vectors_on_disk": bool(i.vectors_on_disk)}

    def count(self):
        """The number of live points."""
        n = c_uint64()
        self._call(_lib.aidb_collection_count, byref(n))
        return n.value

    def __len__(self):
        return self.count()

    def set_ef_search(self, ef):
        """Sets the default ef_search of an HNSW collection, or the
        partitions an IVF collection probes by default."""
        self._call(_lib.aidb_collection_set_ef_search, ef)

    def compact(self):
        self._call(_lib.aidb_collection_compact)
