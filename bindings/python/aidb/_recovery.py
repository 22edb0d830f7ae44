"""Snapshots, recovery and the write-ahead log (a part of Collection)."""
import ctypes
import json
from ctypes import byref, c_int, c_void_p

from . import _capi as C
from ._util import _c_init, _check, _cstr

_lib = C.lib
_WAL_OPS = {C.WAL_OP_UPSERT: "upsert", C.WAL_OP_DELETE: "delete", C.WAL_OP_SET_PARAMS: "set_params"}


class _Recovery:
    def snapshot_to(self, path):
        """Writes a snapshot to ``path``, then truncates the WAL to zero bytes."""
        self._call(_lib.aidb_collection_snapshot_to, _cstr(path, "path"))

    def load_snapshot(self, path):
        """Replaces the in-memory state with a snapshot; the WAL is left intact."""
        self._call(_lib.aidb_collection_load_snapshot, _cstr(path, "path"))

    def recover(self, to_lsn=None, to_time_ns=None):
        """Replays WAL records newer than the in-memory state (up to an LSN or
        a Unix-ns timestamp if given). Returns the recovery stats as a dict."""
        o = _c_init(C.aidb_recover_options, _lib.aidb_recover_options_init)
        if to_lsn is not None:
            o.target, o.lsn = C.RECOVER_TO_LSN, to_lsn
        elif to_time_ns is not None:
            o.target, o.timestamp_ns = C.RECOVER_TO_TIME, to_time_ns
        s = _c_init(C.aidb_recover_stats, _lib.aidb_recover_stats_init)
        self._call(_lib.aidb_recover, byref(o), byref(s))
        return {"records_applied": s.records_applied, "records_skipped": s.records_skipped,
                "bytes_read": s.bytes_read, "torn_tail_bytes": s.torn_tail_bytes,
                "last_lsn": s.last_lsn, "torn_tail": bool(s.torn_tail), "used_mmap": bool(s.used_mmap)}

    def wal_stats(self):
        """WAL statistics; ``last_truncate_unix_ns`` is None until a snapshot ran."""
        w = _c_init(C.aidb_wal_info, _lib.aidb_wal_info_init)
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
                e = _c_init(C.aidb_wal_entry, _lib.aidb_wal_entry_init)
                has, msg = c_int(), c_void_p()
                _check(_lib.aidb_wal_iterator_next(it, byref(e), byref(has), byref(msg)), msg)
                if not has.value:
                    return out
                out.append({"lsn": e.lsn, "timestamp_ns": e.timestamp_ns,
                            "op": _WAL_OPS.get(e.op, e.op),
                            "record": json.loads(ctypes.string_at(e.json, e.json_len))})
        finally:
            _lib.aidb_wal_iterator_close(it)
