//! Raw declarations of AIDB's C API, written by hand after `include/aidb.h`
//! (ABI 0). See that header for the contract of every function. The test
//! `tests/layout.rs` compiles a C program against the header and checks
//! every struct's size, alignment and field offsets, and every constant.
//!
//! By default the library is linked (found by build.rs through pkg-config or
//! `AIDB_LIB_DIR`). With the `dlopen` feature it is loaded at run time
//! instead: from `$AIDB_LIBRARY` if set, else `libaidb.so.0`; the functions
//! keep the same names and signatures, and [`load`] reports a loading error
//! without panicking (the functions themselves panic if the library cannot be
//! loaded, so call [`load`] first).
#![allow(non_camel_case_types)]
#![no_std]

#[cfg(feature = "dlopen")]
extern crate std;

use core::ffi::{c_char, c_int, c_void};
use core::marker::{PhantomData, PhantomPinned};

/// A decimal number of a version component (`const` parsing).
const fn version_part(s: &str) -> c_int {
    let b = s.as_bytes();
    let mut v: c_int = 0;
    let mut i = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as c_int;
        i += 1;
    }
    v
}

// The crates are versioned with the library (the workspace's Cargo.toml),
// so the header's version is the crate's; tests/layout.rs checks it.
pub const AIDB_VERSION_MAJOR: c_int = version_part(env!("CARGO_PKG_VERSION_MAJOR"));
pub const AIDB_VERSION_MINOR: c_int = version_part(env!("CARGO_PKG_VERSION_MINOR"));
pub const AIDB_VERSION_PATCH: c_int = version_part(env!("CARGO_PKG_VERSION_PATCH"));
pub const AIDB_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const AIDB_VERSION_NUMBER: c_int = AIDB_VERSION_MAJOR * 1_000_000 + AIDB_VERSION_MINOR * 1000 + AIDB_VERSION_PATCH;
pub const AIDB_ABI_VERSION: c_int = 0;

pub const AIDB_OK: c_int = 0;
pub const AIDB_INVALID_ARGUMENT: c_int = 1;
pub const AIDB_NOT_FOUND: c_int = 2;
pub const AIDB_ALREADY_EXISTS: c_int = 3;
pub const AIDB_DIMENSION_MISMATCH: c_int = 4;
pub const AIDB_IO_ERROR: c_int = 5;
pub const AIDB_CORRUPTION: c_int = 6;
pub const AIDB_MISUSE: c_int = 7;
pub const AIDB_NO_MEMORY: c_int = 8;
pub const AIDB_UNSUPPORTED: c_int = 9;
pub const AIDB_INTERNAL: c_int = 10;
pub const AIDB_BUSY: c_int = 11;

pub const AIDB_METRIC_COSINE: c_int = 0;
pub const AIDB_METRIC_EUCLIDEAN: c_int = 1;
pub const AIDB_METRIC_DOT: c_int = 2;

pub const AIDB_INDEX_FLAT: c_int = 0;
pub const AIDB_INDEX_HNSW: c_int = 1;
pub const AIDB_INDEX_IVF: c_int = 2;

pub const AIDB_DURABILITY_FSYNC: c_int = 0;
pub const AIDB_DURABILITY_BATCH: c_int = 1;
pub const AIDB_DURABILITY_NONE: c_int = 2;
pub const AIDB_QUANTIZATION_SQ8: c_int = 0;
pub const AIDB_QUANTIZATION_NONE: c_int = 1;

pub const AIDB_LOG_DEBUG: c_int = 0;
pub const AIDB_LOG_INFO: c_int = 1;
pub const AIDB_LOG_WARN: c_int = 2;
pub const AIDB_LOG_ERROR: c_int = 3;
pub const AIDB_LOG_OFF: c_int = 4;

pub const AIDB_RECOVER_LATEST: c_int = 0;
pub const AIDB_RECOVER_TO_LSN: c_int = 1;
pub const AIDB_RECOVER_TO_TIME: c_int = 2;

pub const AIDB_WAL_OP_UPSERT: c_int = 1;
pub const AIDB_WAL_OP_DELETE: c_int = 2;
pub const AIDB_WAL_OP_SET_PARAMS: c_int = 3;

// The defaults the *_init functions set (AIDB_DEFAULT_* in aidb.h).
pub const AIDB_DEFAULT_METRIC: c_int = AIDB_METRIC_COSINE;
pub const AIDB_DEFAULT_INDEX_KIND: c_int = AIDB_INDEX_FLAT;
pub const AIDB_DEFAULT_HNSW_M: u32 = 16;
pub const AIDB_DEFAULT_HNSW_EF_CONSTRUCTION: u32 = 200;
pub const AIDB_DEFAULT_HNSW_EF_SEARCH: u32 = 0;
pub const AIDB_DEFAULT_DURABILITY: c_int = AIDB_DURABILITY_FSYNC;
pub const AIDB_DEFAULT_BATCH_INTERVAL_MS: u32 = 10;
pub const AIDB_DEFAULT_WAL_MMAP_THRESHOLD: u32 = 1_048_576; // the field is u64
pub const AIDB_DEFAULT_CREATE_IF_MISSING: c_int = 1;
pub const AIDB_DEFAULT_TOP_K: u32 = 10;
pub const AIDB_DEFAULT_WITH_PAYLOAD: c_int = 1;

// Which file of a collection aidb_db_collection_path names.
pub const AIDB_PATH_COLLECTION: c_int = 0;
pub const AIDB_PATH_CONFIG: c_int = 1;
pub const AIDB_PATH_WAL: c_int = 2;
pub const AIDB_PATH_MANIFEST: c_int = 3;
pub const AIDB_PATH_SNAPSHOTS: c_int = 4;

macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}
opaque!(aidb_collection, aidb_search_result, aidb_wal_iterator, aidb_db);

pub type aidb_log_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: c_int,
        target: *const c_char,
        event: *const c_char,
        fields: *const c_char,
    ),
>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_collection_options {
    pub struct_size: usize,
    pub name: *const c_char,
    pub dim: u32,
    pub metric: c_int,
    pub index_kind: c_int,
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    pub hnsw_ef_search: u32,
    pub wal_path: *const c_char,
    pub durability: c_int,
    pub batch_interval_ms: u32,
    pub wal_mmap_threshold: u64,
    pub ivf_nlist: u32,
    pub ivf_nprobe: u32,
    pub ivf_rerank: u32,
    pub quantization: c_int,
    pub vectors_on_disk: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_collection_info {
    pub struct_size: usize,
    pub name: [c_char; 72],
    pub dim: u32,
    pub metric: c_int,
    pub index_kind: c_int,
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    pub hnsw_ef_search: u32,
    pub durability: c_int,
    pub count: u64,
    pub ivf_nlist: u32,
    pub ivf_nprobe: u32,
    pub ivf_rerank: u32,
    pub quantization: c_int,
    pub vectors_on_disk: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_search_options {
    pub struct_size: usize,
    pub top_k: u32,
    pub ef_search: u32,
    pub filter: *const c_char,
    pub with_payload: c_int,
    pub threads: u32,
    pub exact: c_int,
    pub nonblocking: c_int,
    pub ivf_rerank: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_hit {
    pub id: [c_char; 40],
    pub score: f32,
    pub reserved: u32,
    pub payload: *const c_char,
    pub payload_len: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_recover_options {
    pub struct_size: usize,
    pub target: c_int,
    pub lsn: u64,
    pub timestamp_ns: i64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_recover_stats {
    pub struct_size: usize,
    pub records_applied: u64,
    pub records_skipped: u64,
    pub bytes_read: u64,
    pub torn_tail_bytes: u64,
    pub last_lsn: u64,
    pub torn_tail: c_int,
    pub used_mmap: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_wal_info {
    pub struct_size: usize,
    pub size_bytes: u64,
    pub has_last_truncate: c_int,
    pub last_truncate_unix_ns: i64,
    pub bytes_since_truncate: u64,
    pub last_lsn: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_wal_entry {
    pub struct_size: usize,
    pub lsn: u64,
    pub timestamp_ns: i64,
    pub op: c_int,
    pub json: *const c_char,
    pub json_len: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_db_options {
    pub struct_size: usize,
    pub create_if_missing: c_int,
    pub durability: c_int,
    pub batch_interval_ms: u32,
    pub wal_mmap_threshold: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aidb_snapshot_info {
    pub path: [c_char; 4096],
    pub lsn: u64,
    pub size_bytes: u64,
    pub created_unix_ns: i64,
    pub count: u64,
}

/// Declares every function once: as `extern "C"` items when linking, or as
/// a table of function pointers resolved with dlsym plus same-named wrappers
/// with the `dlopen` feature.
macro_rules! functions {
    ($( pub fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? ; )*) => {
        #[cfg(not(feature = "dlopen"))]
        extern "C" {
            $( pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
        }

        /// The library's functions, resolved with dlsym.
        #[cfg(feature = "dlopen")]
        pub struct Api {
            $( pub $name: unsafe extern "C" fn($($ty),*) $(-> $ret)?, )*
            _lib: libloading::Library,
        }

        #[cfg(feature = "dlopen")]
        impl Api {
            unsafe fn resolve(lib: libloading::Library) -> Result<Api, libloading::Error> {
                Ok(Api {
                    $( $name: *lib.get::<unsafe extern "C" fn($($ty),*) $(-> $ret)?>(
                        concat!(stringify!($name), "\0").as_bytes())?, )*
                    _lib: lib,
                })
            }
        }

        $(
            #[cfg(feature = "dlopen")]
            #[inline]
            #[allow(clippy::missing_safety_doc)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                (api().$name)($($arg),*)
            }
        )*
    };
}

functions! {
    pub fn aidb_version() -> *const c_char;
    pub fn aidb_version_number() -> c_int;
    pub fn aidb_status_name(status: c_int) -> *const c_char;
    pub fn aidb_free(ptr: *mut c_void);
    pub fn aidb_free_string_array(strings: *mut *mut c_char, count: usize);

    pub fn aidb_metric_from_string(name: *const c_char, metric: *mut c_int, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_index_kind_from_string(name: *const c_char, kind: *mut c_int, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_durability_from_string(name: *const c_char, mode: *mut c_int, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_metric_name(metric: c_int) -> *const c_char;
    pub fn aidb_index_kind_name(kind: c_int) -> *const c_char;
    pub fn aidb_durability_name(mode: c_int) -> *const c_char;

    pub fn aidb_set_log_callback(fn_: aidb_log_fn, user_data: *mut c_void, min_level: c_int);

    pub fn aidb_uuid_generate(out: *mut c_char);
    pub fn aidb_uuid_canonical(id: *const c_char, out: *mut c_char, errmsg: *mut *mut c_char) -> c_int;

    pub fn aidb_collection_options_init(opts: *mut aidb_collection_options);
    pub fn aidb_collection_open(opts: *const aidb_collection_options, out: *mut *mut aidb_collection, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_close(coll: *mut aidb_collection);
    pub fn aidb_collection_info_init(info: *mut aidb_collection_info);
    pub fn aidb_collection_get_info(coll: *mut aidb_collection, out: *mut aidb_collection_info, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_count(coll: *mut aidb_collection, count: *mut u64, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_set_ef_search(coll: *mut aidb_collection, ef_search: u32, errmsg: *mut *mut c_char) -> c_int;

    pub fn aidb_collection_upsert(coll: *mut aidb_collection, id: *const c_char, vector: *const f32, dim: usize, payload: *const c_char, payload_len: usize, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_upsert_batch(coll: *mut aidb_collection, n: usize, ids: *const *const c_char, vectors: *const f32, dim: usize, payloads: *const *const c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_delete(coll: *mut aidb_collection, id: *const c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_get(coll: *mut aidb_collection, id: *const c_char, vector_out: *mut f32, dim: usize, payload_out: *mut *mut c_char, errmsg: *mut *mut c_char) -> c_int;

    pub fn aidb_search_options_init(opts: *mut aidb_search_options);
    pub fn aidb_collection_search(coll: *mut aidb_collection, query: *const f32, dim: usize, opts: *const aidb_search_options, out: *mut *mut aidb_search_result, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_search_batch(coll: *mut aidb_collection, queries: *const f32, nq: usize, dim: usize, opts: *const aidb_search_options, out: *mut *mut aidb_search_result, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_search_result_query_count(result: *const aidb_search_result) -> usize;
    pub fn aidb_search_result_hits(result: *const aidb_search_result, query: usize, hits: *mut *const aidb_hit, count: *mut usize) -> c_int;
    pub fn aidb_search_result_free(result: *mut aidb_search_result);

    pub fn aidb_collection_snapshot_to(coll: *mut aidb_collection, path: *const c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_collection_load_snapshot(coll: *mut aidb_collection, path: *const c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_recover_options_init(opts: *mut aidb_recover_options);
    pub fn aidb_recover_stats_init(stats: *mut aidb_recover_stats);
    pub fn aidb_recover(coll: *mut aidb_collection, opts: *const aidb_recover_options, stats: *mut aidb_recover_stats, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_wal_info_init(info: *mut aidb_wal_info);
    pub fn aidb_wal_stats(coll: *mut aidb_collection, out: *mut aidb_wal_info, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_wal_entry_init(entry: *mut aidb_wal_entry);
    pub fn aidb_wal_iterator_open(coll: *mut aidb_collection, from_lsn: u64, out: *mut *mut aidb_wal_iterator, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_wal_iterator_next(it: *mut aidb_wal_iterator, entry: *mut aidb_wal_entry, has_entry: *mut c_int, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_wal_iterator_close(it: *mut aidb_wal_iterator);
    pub fn aidb_collection_compact(coll: *mut aidb_collection, errmsg: *mut *mut c_char) -> c_int;

    pub fn aidb_db_options_init(opts: *mut aidb_db_options);
    pub fn aidb_db_open(dir: *const c_char, opts: *const aidb_db_options, out: *mut *mut aidb_db, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_close(db: *mut aidb_db);
    pub fn aidb_db_create_collection(db: *mut aidb_db, opts: *const aidb_collection_options, out: *mut *mut aidb_collection, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_open_collection(db: *mut aidb_db, name: *const c_char, out: *mut *mut aidb_collection, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_drop_collection(db: *mut aidb_db, name: *const c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_list_collections(db: *mut aidb_db, names: *mut *mut *mut c_char, count: *mut usize, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_snapshot(db: *mut aidb_db, name: *const c_char, path_out: *mut *mut c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_list_snapshots(db: *mut aidb_db, name: *const c_char, infos: *mut *mut aidb_snapshot_info, count: *mut usize, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_restore(db: *mut aidb_db, name: *const c_char, path: *const c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_snapshot_verify(path: *const c_char, info: *mut aidb_snapshot_info, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_wal_verify(path: *const c_char, records: *mut u64, valid_bytes: *mut u64, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_uuid_generate_v2(out: *mut c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_search_result_hits_v2(result: *const aidb_search_result, query: usize, hits: *mut *const aidb_hit, count: *mut usize, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_snapshot_export(src_path: *const c_char, dest_path: *const c_char, info: *mut aidb_snapshot_info, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_collection_path(db_dir: *const c_char, name: *const c_char, which: c_int, path: *mut *mut c_char, errmsg: *mut *mut c_char) -> c_int;
    pub fn aidb_db_path_is_managed(db_dir: *const c_char, path: *const c_char, managed: *mut c_int, errmsg: *mut *mut c_char) -> c_int;
}

#[cfg(feature = "dlopen")]
mod loader {
    use super::Api;
    use std::string::{String, ToString};
    use std::sync::OnceLock;

    static API: OnceLock<Result<Api, String>> = OnceLock::new();

    /// The file dlopen()ed: `$AIDB_LIBRARY`, else `libaidb.so.<ABI>`.
    pub fn library_name() -> std::ffi::OsString {
        std::env::var_os("AIDB_LIBRARY")
            .unwrap_or_else(|| std::format!("libaidb.so.{}", super::AIDB_ABI_VERSION).into())
    }

    /// Loads the library once (later calls return the same result).
    pub fn load() -> Result<&'static Api, &'static str> {
        API.get_or_init(|| {
            let name = library_name();
            // SAFETY: loading libaidb runs no initialisation code with
            // preconditions; the symbols are checked one by one.
            unsafe {
                let lib = libloading::Library::new(&name)
                    .map_err(|e| std::format!("cannot load {}: {e}", name.to_string_lossy()))?;
                Api::resolve(lib).map_err(|e| e.to_string())
            }
        })
        .as_ref()
        .map_err(|e| e.as_str())
    }

    pub(crate) fn api() -> &'static Api {
        match load() {
            Ok(api) => api,
            Err(e) => panic!("aidb-sys: {e}"),
        }
    }
}
#[cfg(feature = "dlopen")]
use loader::api;
#[cfg(feature = "dlopen")]
pub use loader::{library_name, load};
