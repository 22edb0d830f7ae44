use crate::error::{ensure_loaded, Result};
use crate::sys;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::RwLock;

/// Severity of a library log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Off,
}

impl LogLevel {
    fn raw(self) -> c_int {
        match self {
            LogLevel::Debug => sys::AIDB_LOG_DEBUG,
            LogLevel::Info => sys::AIDB_LOG_INFO,
            LogLevel::Warn => sys::AIDB_LOG_WARN,
            LogLevel::Error => sys::AIDB_LOG_ERROR,
            LogLevel::Off => sys::AIDB_LOG_OFF,
        }
    }
    fn from_raw(v: c_int) -> LogLevel {
        match v {
            sys::AIDB_LOG_DEBUG => LogLevel::Debug,
            sys::AIDB_LOG_INFO => LogLevel::Info,
            sys::AIDB_LOG_WARN => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

/// One log event, e.g. target "aidb::storage", event "wal_truncated",
/// fields `collection=docs size_bytes=0`.
#[derive(Debug, Clone, Copy)]
pub struct LogEvent<'a> {
    pub level: LogLevel,
    pub target: &'a str,
    pub event: &'a str,
    pub fields: &'a str,
}

type Logger = Box<dyn Fn(&LogEvent<'_>) + Send + Sync>;
static LOGGER: RwLock<Option<Logger>> = RwLock::new(None);

unsafe extern "C" fn trampoline(
    _user: *mut c_void,
    level: c_int,
    target: *const c_char,
    event: *const c_char,
    fields: *const c_char,
) {
    let s = |p: *const c_char| if p.is_null() { "" } else { CStr::from_ptr(p).to_str().unwrap_or("") };
    let ev = LogEvent { level: LogLevel::from_raw(level), target: s(target), event: s(event), fields: s(fields) };
    // A panic must not unwind into the library.
    let _ = std::panic::catch_unwind(|| {
        if let Ok(guard) = LOGGER.read() {
            if let Some(f) = guard.as_ref() {
                f(&ev);
            }
        }
    });
}

/// Routes the library's log events at or above `min_level` to `logger` (may
/// be called from any thread; must not call back into AIDB). `None`
/// silences the library. Process-wide.
pub fn set_logger(min_level: LogLevel, logger: Option<Logger>) -> Result<()> {
    ensure_loaded()?;
    let on = logger.is_some();
    *LOGGER.write().unwrap_or_else(|e| e.into_inner()) = logger;
    let f: sys::aidb_log_fn = if on { Some(trampoline) } else { None };
    // SAFETY: the trampoline matches aidb_log_fn and lives for the program.
    unsafe { sys::aidb_set_log_callback(f, std::ptr::null_mut(), min_level.raw()) };
    Ok(())
}
