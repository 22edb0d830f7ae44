//! The collection handle. Its methods are grouped by concern: points.rs
//! (upsert, delete, get), search.rs, recovery.rs (snapshots, recovery, the
//! WAL).
use crate::error::{call, ensure_loaded, Error, Result, Status};
use crate::options::{CollectionInfo, CollectionOptions};
use crate::{c_init, sys};
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// A collection handle: closed on drop; `Send + Sync`.
pub struct Collection {
    ptr: NonNull<sys::aidb_collection>,
    // The owning database, kept open while this handle lives.
    _db: Option<Arc<crate::db::DbHandle>>,
}

// SAFETY: every function of the C API is thread-safe (aidb.h convention 7),
// and the handle is only released in Drop, when no borrow is left.
unsafe impl Send for Collection {}
unsafe impl Sync for Collection {}

impl Drop for Collection {
    fn drop(&mut self) {
        // SAFETY: the handle is valid and dropped once.
        unsafe { sys::aidb_collection_close(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection").field("ptr", &self.ptr).finish()
    }
}

impl Collection {
    pub(crate) fn from_raw(ptr: *mut sys::aidb_collection, db: Option<Arc<crate::db::DbHandle>>) -> Result<Self> {
        NonNull::new(ptr)
            .map(|ptr| Collection { ptr, _db: db })
            .ok_or_else(|| Error::new(Status::Internal, "library returned a NULL handle"))
    }

    pub(crate) fn raw(&self) -> *mut sys::aidb_collection {
        self.ptr.as_ptr()
    }

    /// Opens a standalone collection. If `opts.wal_path` names an existing
    /// WAL, its records are not applied until [`load_snapshot`](Self::load_snapshot)
    /// and/or [`recover`](Self::recover) run (the restore workflow of
    /// docs/operations.md).
    pub fn open(opts: &CollectionOptions) -> Result<Collection> {
        ensure_loaded()?;
        let (raw, _name, _wal) = opts.to_raw()?;
        let mut out = ptr::null_mut();
        // SAFETY: raw's strings are alive; out is a valid out-pointer.
        call(|m| unsafe { sys::aidb_collection_open(&raw, &mut out, m) })?;
        Collection::from_raw(out, None)
    }

    /// Closes the handle now (the same as dropping it).
    pub fn close(self) {}

    /// The configuration and number of points.
    pub fn info(&self) -> Result<CollectionInfo> {
        // SAFETY: the library initialises the struct.
        let mut i = c_init(|p| unsafe { sys::aidb_collection_info_init(p) });
        call(|m| unsafe { sys::aidb_collection_get_info(self.raw(), &mut i, m) })?;
        Ok(CollectionInfo::from_raw(&i))
    }

    /// The number of live points.
    pub fn count(&self) -> Result<u64> {
        let mut n = 0u64;
        call(|m| unsafe { sys::aidb_collection_count(self.raw(), &mut n, m) })?;
        Ok(n)
    }

    /// Changes the default ef_search of an HNSW collection, or the partitions
    /// an IVF collection probes by default.
    pub fn set_ef_search(&self, ef: u32) -> Result<()> {
        call(|m| unsafe { sys::aidb_collection_set_ef_search(self.raw(), ef, m) })
    }

    /// Drops deleted points' traces from the index.
    pub fn compact(&self) -> Result<()> {
        call(|m| unsafe { sys::aidb_collection_compact(self.raw(), m) })
    }
}
