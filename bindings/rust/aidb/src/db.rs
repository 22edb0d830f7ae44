use crate::collection::Collection;
use crate::error::{call, ensure_loaded, Error, Result, Status};
use crate::options::{millis_u32, CollectionOptions, Durability};
use crate::{c_init, cstr_to_string, cstring, path_cstring, sys, time_from_ns};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Options of [`Db::open`]; `None` fields take the library's defaults
/// (`aidb_db_options_init`).
#[derive(Debug, Clone, Default)]
pub struct DbOptions {
    /// Fail when the directory does not exist (default: create it).
    pub error_if_missing: bool,
    pub durability: Durability,
    pub batch_interval: Option<Duration>,
    pub wal_mmap_threshold: Option<u64>,
}

/// The C database handle, closed when the last `Db` or `Collection` that
/// refers to it is dropped (the C API wants collections closed first).
pub(crate) struct DbHandle(NonNull<sys::aidb_db>);

// SAFETY: the C API is thread-safe (aidb.h convention 7).
unsafe impl Send for DbHandle {}
unsafe impl Sync for DbHandle {}

impl Drop for DbHandle {
    fn drop(&mut self) {
        // SAFETY: the last reference; every collection handle is gone.
        unsafe { sys::aidb_db_close(self.0.as_ptr()) }
    }
}

/// A database directory with one folder per collection. Opening it brings
/// every collection back (latest snapshot, then WAL replay). `Send + Sync`.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbHandle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("ptr", &self.inner.0).finish()
    }
}

/// A snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    /// Last LSN the snapshot covers.
    pub lsn: u64,
    pub size_bytes: u64,
    pub created: SystemTime,
    pub count: u64,
}

impl SnapshotInfo {
    pub(crate) fn from_raw(i: &sys::aidb_snapshot_info) -> SnapshotInfo {
        SnapshotInfo {
            // SAFETY: NUL-terminated within its 4096 bytes.
            path: PathBuf::from(unsafe { cstr_to_string(i.path.as_ptr()) }),
            lsn: i.lsn,
            size_bytes: i.size_bytes,
            created: time_from_ns(i.created_unix_ns),
            count: i.count,
        }
    }
}

impl Db {
    /// Opens (and recovers) the database directory `dir`.
    pub fn open(dir: impl AsRef<Path>, opts: Option<&DbOptions>) -> Result<Db> {
        ensure_loaded()?;
        let cdir = path_cstring(dir.as_ref())?;
        // SAFETY: the library initialises the struct.
        let mut o = c_init(|p| unsafe { sys::aidb_db_options_init(p) });
        if let Some(opts) = opts {
            if opts.error_if_missing {
                o.create_if_missing = 0;
            }
            o.durability = opts.durability.raw();
            if let Some(d) = opts.batch_interval {
                o.batch_interval_ms = millis_u32(d);
            }
            if let Some(t) = opts.wal_mmap_threshold {
                o.wal_mmap_threshold = t;
            }
        }
        let mut out = ptr::null_mut();
        call(|m| unsafe { sys::aidb_db_open(cdir.as_ptr(), &o, &mut out, m) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::new(Status::Internal, "NULL database handle"))?;
        Ok(Db { inner: Arc::new(DbHandle(ptr)) })
    }

    fn raw(&self) -> *mut sys::aidb_db {
        self.inner.0.as_ptr()
    }

    /// Creates a collection (`opts.wal_path` is ignored) and returns a handle.
    pub fn create_collection(&self, opts: &CollectionOptions) -> Result<Collection> {
        let (mut raw, _name, _wal) = opts.to_raw()?;
        raw.wal_path = ptr::null();
        let mut out = ptr::null_mut();
        call(|m| unsafe { sys::aidb_db_create_collection(self.raw(), &raw, &mut out, m) })?;
        Collection::from_raw(out, Some(self.inner.clone()))
    }

    /// A new handle to an existing collection ([`Status::NotFound`] if none).
    pub fn collection(&self, name: &str) -> Result<Collection> {
        let cname = cstring(name)?;
        let mut out = ptr::null_mut();
        call(|m| unsafe { sys::aidb_db_open_collection(self.raw(), cname.as_ptr(), &mut out, m) })?;
        Collection::from_raw(out, Some(self.inner.clone()))
    }

    /// Deletes a collection and its files; its handles then fail with NotFound.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let cname = cstring(name)?;
        call(|m| unsafe { sys::aidb_db_drop_collection(self.raw(), cname.as_ptr(), m) })
    }

    /// The names of all collections, sorted.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let mut names = ptr::null_mut();
        let mut n = 0usize;
        call(|m| unsafe { sys::aidb_db_list_collections(self.raw(), &mut names, &mut n, m) })?;
        if names.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: n strings, freed once with aidb_free_string_array.
        unsafe {
            let out = std::slice::from_raw_parts(names, n).iter().map(|&s| cstr_to_string(s)).collect();
            sys::aidb_free_string_array(names, n);
            Ok(out)
        }
    }

    /// Snapshots a collection into its snapshots folder and truncates its WAL.
    pub fn snapshot(&self, name: &str) -> Result<PathBuf> {
        let cname = cstring(name)?;
        let mut p = ptr::null_mut();
        call(|m| unsafe { sys::aidb_db_snapshot(self.raw(), cname.as_ptr(), &mut p, m) })?;
        // SAFETY: malloc'd NUL-terminated path, freed with aidb_free.
        unsafe {
            let s = cstr_to_string(p);
            sys::aidb_free(p.cast());
            Ok(PathBuf::from(s))
        }
    }

    /// A collection's snapshots, oldest first.
    pub fn list_snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        let cname = cstring(name)?;
        let mut infos = ptr::null_mut();
        let mut n = 0usize;
        call(|m| unsafe { sys::aidb_db_list_snapshots(self.raw(), cname.as_ptr(), &mut infos, &mut n, m) })?;
        if infos.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: n infos, freed once with aidb_free.
        unsafe {
            let out = std::slice::from_raw_parts(infos, n).iter().map(SnapshotInfo::from_raw).collect();
            sys::aidb_free(infos.cast());
            Ok(out)
        }
    }

    /// The restore of docs/operations.md in one call: load the snapshot at `path`
    /// (absolute, or relative to the collection's snapshots folder), replay
    /// newer WAL records, seal the result as the new baseline.
    pub fn restore(&self, name: &str, path: impl AsRef<Path>) -> Result<()> {
        let cname = cstring(name)?;
        let cpath = path_cstring(path.as_ref())?;
        call(|m| unsafe { sys::aidb_db_restore(self.raw(), cname.as_ptr(), cpath.as_ptr(), m) })
    }
}
