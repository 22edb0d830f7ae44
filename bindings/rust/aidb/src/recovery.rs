//! Snapshots, recovery and the write-ahead log (statistics, change feed).
use crate::collection::Collection;
use crate::error::{call, Error, Result, Status};
use crate::{c_init, path_cstring, sys, time_from_ns};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far [`Collection::recover`] replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoverTarget {
    #[default]
    Latest,
    /// Apply records with LSN <= this.
    Lsn(u64),
    /// Apply records written at or before this time.
    Time(SystemTime),
}

/// What [`Collection::recover`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverStats {
    pub records_applied: u64,
    pub records_skipped: u64,
    pub bytes_read: u64,
    pub torn_tail_bytes: u64,
    pub last_lsn: u64,
    pub torn_tail: bool,
    pub used_mmap: bool,
}

/// WAL statistics of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalStats {
    pub size_bytes: u64,
    /// `None` until a snapshot truncated the WAL in this process.
    pub last_truncate: Option<SystemTime>,
    pub bytes_since_truncate: u64,
    pub last_lsn: u64,
}

/// Operation of a WAL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalOp {
    Upsert,
    Delete,
    SetParams,
    Unknown(i32),
}

/// One record of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    pub lsn: u64,
    pub timestamp: SystemTime,
    pub op: WalOp,
    /// The record as a JSON object.
    pub json: String,
}

impl Collection {
    /// Writes a snapshot to `path`, then truncates the WAL to zero bytes.
    pub fn snapshot_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let p = path_cstring(path.as_ref())?;
        call(|m| unsafe { sys::aidb_collection_snapshot_to(self.raw(), p.as_ptr(), m) })
    }

    /// Replaces the in-memory state with a snapshot; the WAL is left intact.
    pub fn load_snapshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let p = path_cstring(path.as_ref())?;
        call(|m| unsafe { sys::aidb_collection_load_snapshot(self.raw(), p.as_ptr(), m) })
    }

    /// Replays the WAL records newer than the in-memory state.
    pub fn recover(&self, target: RecoverTarget) -> Result<RecoverStats> {
        // SAFETY: the library initialises the structs.
        let mut o = c_init(|p| unsafe { sys::aidb_recover_options_init(p) });
        let mut s = c_init(|p| unsafe { sys::aidb_recover_stats_init(p) });
        match target {
            RecoverTarget::Latest => o.target = sys::AIDB_RECOVER_LATEST,
            RecoverTarget::Lsn(l) => {
                o.target = sys::AIDB_RECOVER_TO_LSN;
                o.lsn = l;
            }
            RecoverTarget::Time(t) => {
                o.target = sys::AIDB_RECOVER_TO_TIME;
                o.timestamp_ns = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
                    Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
                };
            }
        }
        call(|m| unsafe { sys::aidb_recover(self.raw(), &o, &mut s, m) })?;
        Ok(RecoverStats {
            records_applied: s.records_applied,
            records_skipped: s.records_skipped,
            bytes_read: s.bytes_read,
            torn_tail_bytes: s.torn_tail_bytes,
            last_lsn: s.last_lsn,
            torn_tail: s.torn_tail != 0,
            used_mmap: s.used_mmap != 0,
        })
    }

    /// WAL statistics.
    pub fn wal_stats(&self) -> Result<WalStats> {
        // SAFETY: the library initialises the struct.
        let mut w = c_init(|p| unsafe { sys::aidb_wal_info_init(p) });
        call(|m| unsafe { sys::aidb_wal_stats(self.raw(), &mut w, m) })?;
        Ok(WalStats {
            size_bytes: w.size_bytes,
            last_truncate: (w.has_last_truncate != 0).then(|| time_from_ns(w.last_truncate_unix_ns)),
            bytes_since_truncate: w.bytes_since_truncate,
            last_lsn: w.last_lsn,
        })
    }

    /// The WAL records with LSN >= `from_lsn`, as of this call.
    pub fn wal_entries(&self, from_lsn: u64) -> Result<WalIter<'_>> {
        let mut it = ptr::null_mut();
        call(|m| unsafe { sys::aidb_wal_iterator_open(self.raw(), from_lsn, &mut it, m) })?;
        let ptr = NonNull::new(it).ok_or_else(|| Error::new(Status::Internal, "NULL iterator"))?;
        Ok(WalIter { ptr, _coll: std::marker::PhantomData, done: false })
    }
}

/// Iterator over WAL records; borrows its collection.
pub struct WalIter<'a> {
    ptr: NonNull<sys::aidb_wal_iterator>,
    _coll: std::marker::PhantomData<&'a Collection>,
    done: bool,
}

impl Iterator for WalIter<'_> {
    type Item = Result<WalEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // SAFETY: the library initialises the struct.
        let mut e = c_init(|p| unsafe { sys::aidb_wal_entry_init(p) });
        let mut has = 0;
        if let Err(err) = call(|m| unsafe { sys::aidb_wal_iterator_next(self.ptr.as_ptr(), &mut e, &mut has, m) }) {
            self.done = true;
            return Some(Err(err));
        }
        if has == 0 {
            self.done = true;
            return None;
        }
        // SAFETY: json/json_len are valid until the next call.
        let json = unsafe { std::slice::from_raw_parts(e.json.cast::<u8>(), e.json_len) };
        Some(Ok(WalEntry {
            lsn: e.lsn,
            timestamp: time_from_ns(e.timestamp_ns),
            op: match e.op {
                sys::AIDB_WAL_OP_UPSERT => WalOp::Upsert,
                sys::AIDB_WAL_OP_DELETE => WalOp::Delete,
                sys::AIDB_WAL_OP_SET_PARAMS => WalOp::SetParams,
                o => WalOp::Unknown(o),
            },
            json: String::from_utf8_lossy(json).into_owned(),
        }))
    }
}

impl Drop for WalIter<'_> {
    fn drop(&mut self) {
        // SAFETY: owned iterator, closed once.
        unsafe { sys::aidb_wal_iterator_close(self.ptr.as_ptr()) }
    }
}
