use crate::sys;
use std::fmt;
use std::os::raw::{c_char, c_int};

/// The status of a failed call: the `AIDB_*` codes of `aidb.h`. Later library
/// versions may add codes; they arrive as [`Status::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    DimensionMismatch,
    Io,
    Corruption,
    Misuse,
    NoMemory,
    Unsupported,
    Internal,
    /// A nonblocking call found a lock taken (or an HNSW walk far longer
    /// than ef predicts); nothing changed: retry, or call without
    /// [`SearchOptions::nonblocking`](crate::SearchOptions::nonblocking).
    Busy,
    /// The library could not be loaded (`dlopen` feature only); not a C code.
    LibraryUnavailable,
    /// A code this crate does not know.
    Unknown(i32),
}

impl Status {
    /// Maps a non-zero C status code.
    pub fn from_code(code: i32) -> Status {
        match code {
            sys::AIDB_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::AIDB_NOT_FOUND => Status::NotFound,
            sys::AIDB_ALREADY_EXISTS => Status::AlreadyExists,
            sys::AIDB_DIMENSION_MISMATCH => Status::DimensionMismatch,
            sys::AIDB_IO_ERROR => Status::Io,
            sys::AIDB_CORRUPTION => Status::Corruption,
            sys::AIDB_MISUSE => Status::Misuse,
            sys::AIDB_NO_MEMORY => Status::NoMemory,
            sys::AIDB_UNSUPPORTED => Status::Unsupported,
            sys::AIDB_INTERNAL => Status::Internal,
            sys::AIDB_BUSY => Status::Busy,
            other => Status::Unknown(other),
        }
    }

    /// The C status code (-1 for `LibraryUnavailable`).
    pub fn code(self) -> i32 {
        match self {
            Status::InvalidArgument => sys::AIDB_INVALID_ARGUMENT,
            Status::NotFound => sys::AIDB_NOT_FOUND,
            Status::AlreadyExists => sys::AIDB_ALREADY_EXISTS,
            Status::DimensionMismatch => sys::AIDB_DIMENSION_MISMATCH,
            Status::Io => sys::AIDB_IO_ERROR,
            Status::Corruption => sys::AIDB_CORRUPTION,
            Status::Misuse => sys::AIDB_MISUSE,
            Status::NoMemory => sys::AIDB_NO_MEMORY,
            Status::Unsupported => sys::AIDB_UNSUPPORTED,
            Status::Internal => sys::AIDB_INTERNAL,
            Status::Busy => sys::AIDB_BUSY,
            Status::LibraryUnavailable => -1,
            Status::Unknown(c) => c,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::LibraryUnavailable => f.write_str("LIBRARY_UNAVAILABLE"),
            // SAFETY: aidb_status_name returns a static string for any code.
            s => f.write_str(&unsafe { crate::cstr_to_string(sys::aidb_status_name(s.code())) }),
        }
    }
}

/// A failed call: its status and the library's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }
    /// The status of the failure.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The C status code.
    pub fn code(&self) -> i32 {
        self.status.code()
    }
    /// The library's message (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aidb: {}", self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Turns a status and optional library message into a `Result`, freeing the
/// message with `aidb_free`.
pub(crate) fn check(rc: c_int, msg: *mut c_char) -> Result<()> {
    if rc == sys::AIDB_OK {
        return Ok(());
    }
    let message = if msg.is_null() {
        String::new()
    } else {
        // SAFETY: the library hands out a NUL-terminated malloc'd message.
        unsafe {
            let s = crate::cstr_to_string(msg);
            sys::aidb_free(msg.cast());
            s
        }
    };
    Err(Error { status: Status::from_code(rc), message })
}

/// Calls `f(errmsg)` (one C call) and maps its status.
#[inline]
pub(crate) fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> Result<()> {
    let mut msg = std::ptr::null_mut();
    let rc = f(&mut msg);
    check(rc, msg)
}

/// With the `dlopen` feature, loads the library or reports why it cannot.
#[inline]
pub(crate) fn ensure_loaded() -> Result<()> {
    #[cfg(feature = "dlopen")]
    if let Err(e) = sys::load() {
        return Err(Error::new(Status::LibraryUnavailable, e));
    }
    Ok(())
}
