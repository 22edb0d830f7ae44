use crate::error::{check, ensure_loaded, Error, Result, Status};
use crate::{cstr_to_string, cstring, path_cstring, sys};
use std::ffi::CString;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Distance metric; scores are "higher is better".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    #[default]
    Cosine,
    Euclidean,
    Dot,
}

impl Metric {
    fn raw(self) -> i32 {
        match self {
            Metric::Cosine => sys::AIDB_METRIC_COSINE,
            Metric::Euclidean => sys::AIDB_METRIC_EUCLIDEAN,
            Metric::Dot => sys::AIDB_METRIC_DOT,
        }
    }
    fn from_raw(v: i32) -> Metric {
        match v {
            sys::AIDB_METRIC_EUCLIDEAN => Metric::Euclidean,
            sys::AIDB_METRIC_DOT => Metric::Dot,
            _ => Metric::Cosine,
        }
    }
}

/// Index kind: exact `Flat` or approximate `Hnsw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexKind {
    #[default]
    Flat,
    Hnsw,
}

/// When a mutating call returns (see `aidb.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Fsync,
    Batch,
    None,
}

impl Durability {
    pub(crate) fn raw(self) -> i32 {
        match self {
            Durability::Fsync => sys::AIDB_DURABILITY_FSYNC,
            Durability::Batch => sys::AIDB_DURABILITY_BATCH,
            Durability::None => sys::AIDB_DURABILITY_NONE,
        }
    }
    fn from_raw(v: i32) -> Durability {
        match v {
            sys::AIDB_DURABILITY_BATCH => Durability::Batch,
            sys::AIDB_DURABILITY_NONE => Durability::None,
            _ => Durability::Fsync,
        }
    }
}

/// Configuration of a collection. `None` fields take the library's defaults.
#[derive(Debug, Clone, Default)]
pub struct CollectionOptions {
    pub name: String,
    pub dim: u32,
    pub metric: Metric,
    pub index: IndexKind,
    pub hnsw_m: Option<u32>,
    pub hnsw_ef_construction: Option<u32>,
    /// Default HNSW search breadth; 0 = adapt to k.
    pub hnsw_ef_search: u32,
    /// WAL of a standalone collection; `None` keeps it in memory only.
    /// Ignored by [`crate::Db::create_collection`].
    pub wal_path: Option<PathBuf>,
    pub durability: Durability,
    pub batch_interval: Option<Duration>,
    pub wal_mmap_threshold: Option<u64>,
}

impl CollectionOptions {
    pub fn new(name: impl Into<String>, dim: u32) -> Self {
        CollectionOptions { name: name.into(), dim, ..Default::default() }
    }
    pub fn metric(mut self, m: Metric) -> Self {
        self.metric = m;
        self
    }
    pub fn index(mut self, k: IndexKind) -> Self {
        self.index = k;
        self
    }
    pub fn hnsw(mut self, m: u32, ef_construction: u32) -> Self {
        self.index = IndexKind::Hnsw;
        self.hnsw_m = Some(m);
        self.hnsw_ef_construction = Some(ef_construction);
        self
    }
    pub fn wal_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.wal_path = Some(p.into());
        self
    }
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Fills a C options struct; the returned CStrings back its pointers.
    pub(crate) fn to_raw(&self) -> Result<(sys::aidb_collection_options, CString, Option<CString>)> {
        let name = cstring(&self.name)?;
        let wal = self.wal_path.as_deref().map(path_cstring).transpose()?;
        // SAFETY: the struct is plain data, initialised by the library.
        let mut o: sys::aidb_collection_options = unsafe { std::mem::zeroed() };
        unsafe { sys::aidb_collection_options_init(&mut o) };
        o.name = name.as_ptr();
        o.dim = self.dim;
        o.metric = self.metric.raw();
        o.index_kind = match self.index {
            IndexKind::Flat => sys::AIDB_INDEX_FLAT,
            IndexKind::Hnsw => sys::AIDB_INDEX_HNSW,
        };
        if let Some(m) = self.hnsw_m {
            o.hnsw_m = m;
        }
        if let Some(ef) = self.hnsw_ef_construction {
            o.hnsw_ef_construction = ef;
        }
        o.hnsw_ef_search = self.hnsw_ef_search;
        o.wal_path = wal.as_ref().map_or(ptr::null(), |w| w.as_ptr());
        o.durability = self.durability.raw();
        if let Some(d) = self.batch_interval {
            o.batch_interval_ms = d.as_millis().min(u32::MAX as u128) as u32;
        }
        if let Some(t) = self.wal_mmap_threshold {
            o.wal_mmap_threshold = t;
        }
        Ok((o, name, wal))
    }
}

/// A collection's configuration and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    pub name: String,
    pub dim: u32,
    pub metric: Metric,
    pub index: IndexKind,
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    pub hnsw_ef_search: u32,
    pub durability: Durability,
    pub count: u64,
}

/// Options of a search. `SearchOptions::new()` asks for 10 hits with payloads.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub top_k: u32,
    /// HNSW breadth for this query; 0 = the collection's default.
    pub ef_search: u32,
    /// JSON filter (short or full form, see `aidb.h`).
    pub filter: Option<String>,
    pub with_payload: bool,
    /// Worker threads of a batch search; 0 = all cores.
    pub threads: u32,
    /// Exact scan even on HNSW collections.
    pub exact: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { top_k: 10, ef_search: 0, filter: None, with_payload: true, threads: 0, exact: false }
    }
}

impl SearchOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn top_k(mut self, k: u32) -> Self {
        self.top_k = k;
        self
    }
    pub fn ef_search(mut self, ef: u32) -> Self {
        self.ef_search = ef;
        self
    }
    pub fn filter(mut self, json: impl Into<String>) -> Self {
        self.filter = Some(json.into());
        self
    }
    pub fn with_payload(mut self, yes: bool) -> Self {
        self.with_payload = yes;
        self
    }
    pub fn threads(mut self, n: u32) -> Self {
        self.threads = n;
        self
    }
    pub fn exact(mut self, yes: bool) -> Self {
        self.exact = yes;
        self
    }

    fn to_raw(&self) -> Result<(sys::aidb_search_options, Option<CString>)> {
        let filter = self.filter.as_deref().map(cstring).transpose()?;
        // SAFETY: plain data, initialised by the library.
        let mut o: sys::aidb_search_options = unsafe { std::mem::zeroed() };
        unsafe { sys::aidb_search_options_init(&mut o) };
        o.top_k = self.top_k;
        o.ef_search = self.ef_search;
        o.filter = filter.as_ref().map_or(ptr::null(), |f| f.as_ptr());
        o.with_payload = self.with_payload as i32;
        o.threads = self.threads;
        o.exact = self.exact as i32;
        Ok((o, filter))
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Canonical textual UUID.
    pub id: String,
    /// Higher is better.
    pub score: f32,
    /// JSON object, if the point has one and payloads were asked for.
    pub payload: Option<String>,
}

/// A point read back with [`Collection::get`].
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub vector: Vec<f32>,
    pub payload: Option<String>,
}

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

pub(crate) fn time_from_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

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

/// Calls `f(errmsg)` and maps the status.
#[inline]
fn call(f: impl FnOnce(*mut *mut c_char) -> i32) -> Result<()> {
    let mut msg = ptr::null_mut();
    let rc = f(&mut msg);
    check(rc, msg)
}

impl Collection {
    pub(crate) fn from_raw(ptr: *mut sys::aidb_collection, db: Option<Arc<crate::db::DbHandle>>) -> Result<Self> {
        NonNull::new(ptr)
            .map(|ptr| Collection { ptr, _db: db })
            .ok_or_else(|| Error::new(Status::Internal, "library returned a NULL handle"))
    }

    fn raw(&self) -> *mut sys::aidb_collection {
        self.ptr.as_ptr()
    }

    /// Opens a standalone collection. If `opts.wal_path` names an existing
    /// WAL, its records are not applied until [`load_snapshot`](Self::load_snapshot)
    /// and/or [`recover`](Self::recover) run (the runbook's restore workflow).
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
        // SAFETY: plain data, initialised by the library.
        let mut i: sys::aidb_collection_info = unsafe { std::mem::zeroed() };
        unsafe { sys::aidb_collection_info_init(&mut i) };
        call(|m| unsafe { sys::aidb_collection_get_info(self.raw(), &mut i, m) })?;
        Ok(CollectionInfo {
            // SAFETY: the name is NUL-terminated within its 72 bytes.
            name: unsafe { cstr_to_string(i.name.as_ptr()) },
            dim: i.dim,
            metric: Metric::from_raw(i.metric),
            index: if i.index_kind == sys::AIDB_INDEX_HNSW { IndexKind::Hnsw } else { IndexKind::Flat },
            hnsw_m: i.hnsw_m,
            hnsw_ef_construction: i.hnsw_ef_construction,
            hnsw_ef_search: i.hnsw_ef_search,
            durability: Durability::from_raw(i.durability),
            count: i.count,
        })
    }

    /// The number of live points.
    pub fn count(&self) -> Result<u64> {
        let mut n = 0u64;
        call(|m| unsafe { sys::aidb_collection_count(self.raw(), &mut n, m) })?;
        Ok(n)
    }

    /// Changes the default ef_search of an HNSW collection.
    pub fn set_ef_search(&self, ef: u32) -> Result<()> {
        call(|m| unsafe { sys::aidb_collection_set_ef_search(self.raw(), ef, m) })
    }

    /// Inserts or replaces one point; `payload` is a JSON object or `None`.
    pub fn upsert(&self, id: &str, vector: &[f32], payload: Option<&str>) -> Result<()> {
        let cid = cstring(id)?;
        let (pp, pl) = payload.map_or((ptr::null(), 0), |p| (p.as_ptr().cast::<c_char>(), p.len()));
        // SAFETY: the slices outlive the call; the payload is passed with its length.
        call(|m| unsafe {
            sys::aidb_collection_upsert(self.raw(), cid.as_ptr(), vector.as_ptr(), vector.len(), pp, pl, m)
        })
    }

    /// Inserts or replaces `ids.len()` points atomically. `vectors` holds
    /// `ids.len() * dim` floats, row-major (not copied); `payloads` is `None`
    /// or one optional JSON object per point.
    pub fn upsert_batch<S: AsRef<str>>(
        &self,
        ids: &[S],
        vectors: &[f32],
        payloads: Option<&[Option<&str>]>,
    ) -> Result<()> {
        let n = ids.len();
        if n == 0 {
            return Ok(());
        }
        if vectors.len() % n != 0 {
            return Err(Error::new(Status::DimensionMismatch, "vectors.len() is not a multiple of ids.len()"));
        }
        let cids = ids.iter().map(|s| cstring(s.as_ref())).collect::<Result<Vec<_>>>()?;
        let id_ptrs: Vec<*const c_char> = cids.iter().map(|c| c.as_ptr()).collect();
        let cpl = match payloads {
            None => None,
            Some(p) if p.len() != n => return Err(Error::new(Status::InvalidArgument, "payloads.len() != ids.len()")),
            Some(p) => Some(p.iter().map(|o| o.map(cstring).transpose()).collect::<Result<Vec<_>>>()?),
        };
        let pl_ptrs: Option<Vec<*const c_char>> =
            cpl.as_ref().map(|v| v.iter().map(|o| o.as_ref().map_or(ptr::null(), |c| c.as_ptr())).collect());
        let pl_ptr = pl_ptrs.as_ref().map_or(ptr::null(), |v| v.as_ptr());
        // SAFETY: all arrays hold n valid entries and outlive the call.
        call(|m| unsafe {
            sys::aidb_collection_upsert_batch(
                self.raw(),
                n,
                id_ptrs.as_ptr(),
                vectors.as_ptr(),
                vectors.len() / n,
                pl_ptr,
                m,
            )
        })
    }

    /// Deletes a point ([`Status::NotFound`] if there is none).
    pub fn delete(&self, id: &str) -> Result<()> {
        let cid = cstring(id)?;
        call(|m| unsafe { sys::aidb_collection_delete(self.raw(), cid.as_ptr(), m) })
    }

    /// Reads a point: its stored vector (normalised for cosine) and payload.
    pub fn get(&self, id: &str) -> Result<Point> {
        let mut vector = vec![0f32; self.info()?.dim as usize];
        let payload = self.get_into(id, &mut vector)?;
        Ok(Point { vector, payload })
    }

    /// Reads a point's vector into `out` (its length must be the dimension)
    /// and returns its payload.
    pub fn get_into(&self, id: &str, out: &mut [f32]) -> Result<Option<String>> {
        let cid = cstring(id)?;
        let mut pl: *mut c_char = ptr::null_mut();
        call(|m| unsafe {
            sys::aidb_collection_get(self.raw(), cid.as_ptr(), out.as_mut_ptr(), out.len(), &mut pl, m)
        })?;
        if pl.is_null() {
            return Ok(None);
        }
        // SAFETY: a malloc'd NUL-terminated JSON string, freed with aidb_free.
        unsafe {
            let s = cstr_to_string(pl);
            sys::aidb_free(pl.cast());
            Ok(Some(s))
        }
    }

    /// The best hits for one query (not copied).
    pub fn search(&self, query: &[f32], opts: &SearchOptions) -> Result<Vec<Hit>> {
        let (o, _filter) = opts.to_raw()?;
        let mut res = ptr::null_mut();
        call(|m| unsafe { sys::aidb_collection_search(self.raw(), query.as_ptr(), query.len(), &o, &mut res, m) })?;
        let res = SearchResult(res);
        Ok(res.hits(0))
    }

    /// Searches `queries.len() / dim` queries at once (row-major, not
    /// copied); one hit list per query.
    pub fn search_batch(&self, queries: &[f32], dim: usize, opts: &SearchOptions) -> Result<Vec<Vec<Hit>>> {
        if dim == 0 || queries.len() % dim != 0 {
            return Err(Error::new(Status::DimensionMismatch, "queries.len() is not a multiple of dim"));
        }
        let (o, _filter) = opts.to_raw()?;
        let mut res = ptr::null_mut();
        call(|m| unsafe {
            sys::aidb_collection_search_batch(self.raw(), queries.as_ptr(), queries.len() / dim, dim, &o, &mut res, m)
        })?;
        let res = SearchResult(res);
        // SAFETY: res is a valid result.
        let nq = unsafe { sys::aidb_search_result_query_count(res.0) };
        Ok((0..nq).map(|q| res.hits(q)).collect())
    }

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
        // SAFETY: plain data, initialised by the library.
        let mut o: sys::aidb_recover_options = unsafe { std::mem::zeroed() };
        let mut s: sys::aidb_recover_stats = unsafe { std::mem::zeroed() };
        unsafe {
            sys::aidb_recover_options_init(&mut o);
            sys::aidb_recover_stats_init(&mut s);
        }
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
        // SAFETY: plain data, initialised by the library.
        let mut w: sys::aidb_wal_info = unsafe { std::mem::zeroed() };
        unsafe { sys::aidb_wal_info_init(&mut w) };
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

    /// Drops deleted points' traces from the index.
    pub fn compact(&self) -> Result<()> {
        call(|m| unsafe { sys::aidb_collection_compact(self.raw(), m) })
    }
}

/// Owns a C search result and frees it on drop.
struct SearchResult(*mut sys::aidb_search_result);

impl SearchResult {
    fn hits(&self, q: usize) -> Vec<Hit> {
        let mut hp: *const sys::aidb_hit = ptr::null();
        let mut n = 0usize;
        // SAFETY: valid result; hits point into it while it lives.
        let rc = unsafe { sys::aidb_search_result_hits(self.0, q, &mut hp, &mut n) };
        if rc != sys::AIDB_OK || n == 0 || hp.is_null() {
            return Vec::new();
        }
        let hits = unsafe { std::slice::from_raw_parts(hp, n) };
        hits.iter()
            .map(|h| Hit {
                id: unsafe { cstr_to_string(h.id.as_ptr()) },
                score: h.score,
                payload: (!h.payload.is_null()).then(|| {
                    let b = unsafe { std::slice::from_raw_parts(h.payload.cast::<u8>(), h.payload_len) };
                    String::from_utf8_lossy(b).into_owned()
                }),
            })
            .collect()
    }
}

impl Drop for SearchResult {
    fn drop(&mut self) {
        // SAFETY: owned result, freed once.
        unsafe { sys::aidb_search_result_free(self.0) }
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
        // SAFETY: plain data; struct_size set as the header asks.
        let mut e: sys::aidb_wal_entry = unsafe { std::mem::zeroed() };
        e.struct_size = std::mem::size_of::<sys::aidb_wal_entry>();
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
