//! Safe Rust binding of AIDB, an embedded vector database engine, over its
//! C API (`aidb.h`, through [`aidb_sys`]).
//!
//! ```no_run
//! use aidb::{Collection, CollectionOptions, Metric, SearchOptions};
//!
//! let coll = Collection::open(
//!     &CollectionOptions::new("docs", 3).metric(Metric::Cosine).wal_path("docs.wal"),
//! )?;
//! let id = aidb::new_id();
//! coll.upsert(&id, &[0.1, 0.2, 0.3], Some(r#"{"lang":"en"}"#))?;
//! let hits = coll.search(&[0.1, 0.2, 0.3], &SearchOptions::new().top_k(5).filter(r#"{"lang":"en"}"#))?;
//! assert_eq!(hits[0].id, id);
//! coll.snapshot_to("docs.snapshot")?; // checkpoint: the WAL is now empty
//! # Ok::<(), aidb::Error>(())
//! ```
//!
//! Handles are `Send + Sync` (the C API is thread-safe) and are closed on
//! `Drop`; a handle cannot be used after it is dropped, so "use after close"
//! is a compile error:
//!
//! ```compile_fail
//! let coll = aidb::Collection::open(&aidb::CollectionOptions::new("c", 2)).unwrap();
//! coll.close();
//! coll.count().unwrap(); // error: use of moved value
//! ```
//!
//! Vectors are `&[f32]` and are handed to the library without copying.
//! Payloads and filters are JSON text.

mod collection;
mod db;
mod error;
mod log;
mod options;
mod points;
mod recovery;
mod search;

pub use collection::*;
pub use db::*;
pub use error::{Error, Result, Status};
pub use log::{set_logger, LogEvent, LogLevel};
pub use options::*;
pub use points::*;
pub use recovery::*;
pub use search::*;

use aidb_sys as sys;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version of the loaded library, e.g. "0.2.0".
pub fn version() -> Result<String> {
    error::ensure_loaded()?;
    // SAFETY: returns a static NUL-terminated string.
    Ok(unsafe { cstr_to_string(sys::aidb_version()) })
}

/// The version of the loaded library as X*1000000 + Y*1000 + Z.
pub fn version_number() -> Result<i32> {
    error::ensure_loaded()?;
    // SAFETY: no arguments.
    Ok(unsafe { sys::aidb_version_number() })
}

/// The version of `aidb.h` this crate was written against (the crates'
/// version, see `aidb-sys`).
pub const HEADER_VERSION_NUMBER: i32 = sys::AIDB_VERSION_NUMBER;

/// A new random (version 4) UUID in canonical form.
pub fn new_id() -> String {
    error::ensure_loaded().expect("libaidb");
    let mut buf = [0 as c_char; 37];
    // SAFETY: buf has the 37 bytes the function writes.
    unsafe {
        sys::aidb_uuid_generate(buf.as_mut_ptr());
        cstr_to_string(buf.as_ptr())
    }
}

/// Checks a textual UUID and returns its canonical lower-case form.
pub fn canonical_id(id: &str) -> Result<String> {
    error::ensure_loaded()?;
    let cid = cstring(id)?;
    let mut buf = [0 as c_char; 37];
    let mut msg = std::ptr::null_mut();
    // SAFETY: valid C string, 37-byte buffer, msg out-pointer.
    let rc = unsafe { sys::aidb_uuid_canonical(cid.as_ptr(), buf.as_mut_ptr(), &mut msg) };
    error::check(rc, msg)?;
    // SAFETY: the library wrote a NUL-terminated id.
    Ok(unsafe { cstr_to_string(buf.as_ptr()) })
}

/// Checks a snapshot file (header, checksum, schema) without loading it.
pub fn verify_snapshot(path: impl AsRef<Path>) -> Result<SnapshotInfo> {
    error::ensure_loaded()?;
    let cpath = path_cstring(path.as_ref())?;
    // All-zero is a valid aidb_snapshot_info (it has no init function).
    let mut info: sys::aidb_snapshot_info = c_init(|_| {});
    let mut msg = std::ptr::null_mut();
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe { sys::aidb_snapshot_verify(cpath.as_ptr(), &mut info, &mut msg) };
    error::check(rc, msg)?;
    Ok(SnapshotInfo::from_raw(&info))
}

/// Checks every record checksum of a WAL file; returns (records, valid bytes).
pub fn verify_wal(path: impl AsRef<Path>) -> Result<(u64, u64)> {
    error::ensure_loaded()?;
    let cpath = path_cstring(path.as_ref())?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut msg = std::ptr::null_mut();
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe { sys::aidb_wal_verify(cpath.as_ptr(), &mut records, &mut bytes, &mut msg) };
    error::check(rc, msg)?;
    Ok((records, bytes))
}

/// Copies a NUL-terminated C string (NULL gives "").
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
pub(crate) unsafe fn cstr_to_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

pub(crate) fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(Status::InvalidArgument, "string contains a NUL byte"))
}

pub(crate) fn path_cstring(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::new(Status::InvalidArgument, "path contains a NUL byte"))
}

/// A C struct of `aidb.h` filled by `init` (an `aidb_*_init` function) from
/// all zeros, so the defaults are the library's.
pub(crate) fn c_init<T: Copy>(init: impl FnOnce(*mut T)) -> T {
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    init(v.as_mut_ptr());
    // SAFETY: the structs of aidb.h are plain data (integers, arrays and
    // pointers), for which all-zero is a valid value.
    unsafe { v.assume_init() }
}

/// A time in Unix nanoseconds, as the C API reports them.
pub(crate) fn time_from_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}
