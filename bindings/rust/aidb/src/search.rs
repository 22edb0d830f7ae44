//! Search: [`SearchOptions`], [`Hit`] and the search methods.
use crate::collection::Collection;
use crate::error::{call, ensure_loaded, Error, Result, Status};
use crate::{c_init, cstr_to_string, cstring, sys};
use std::ffi::CString;
use std::ptr;

/// Options of a search. `SearchOptions::new()` takes the library's defaults
/// (`aidb_search_options_init`: 10 hits, with payloads, blocking).
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub top_k: u32,
    /// HNSW breadth, IVF partitions to scan, for this query; 0 = the
    /// collection's default.
    pub ef_search: u32,
    /// JSON filter (short or full form, see `aidb.h`).
    pub filter: Option<String>,
    pub with_payload: bool,
    /// Worker threads of a batch search; 0 = all cores.
    pub threads: u32,
    /// Exact scan even on HNSW collections.
    pub exact: bool,
    /// Never wait for a lock: fail with [`Status::Busy`] instead when a
    /// writer holds or waits for the collection, or when an HNSW walk would
    /// take far longer than ef predicts (see `aidb_search_options.nonblocking`
    /// in `aidb.h`). Retry, or search again without it.
    pub nonblocking: bool,
    /// IVF candidates re-ranked exactly for this query; 0 = the
    /// collection's default.
    pub ivf_rerank: u32,
}

/// The library's default search options. With the `dlopen` feature and no
/// library to load, a zeroed struct: every search then fails with
/// [`Status::LibraryUnavailable`] anyway.
fn raw_defaults() -> sys::aidb_search_options {
    // SAFETY: the library initialises the struct; all-zero is valid too.
    c_init(|p| {
        if ensure_loaded().is_ok() {
            unsafe { sys::aidb_search_options_init(p) }
        }
    })
}

impl Default for SearchOptions {
    fn default() -> Self {
        let o = raw_defaults();
        SearchOptions {
            top_k: o.top_k,
            ef_search: o.ef_search,
            filter: None,
            with_payload: o.with_payload != 0,
            threads: o.threads,
            exact: o.exact != 0,
            nonblocking: o.nonblocking != 0,
            ivf_rerank: o.ivf_rerank,
        }
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
    pub fn nonblocking(mut self, yes: bool) -> Self {
        self.nonblocking = yes;
        self
    }
    pub fn ivf_rerank(mut self, n: u32) -> Self {
        self.ivf_rerank = n;
        self
    }

    fn to_raw(&self) -> Result<(sys::aidb_search_options, Option<CString>)> {
        let filter = self.filter.as_deref().map(cstring).transpose()?;
        let mut o = raw_defaults();
        o.top_k = self.top_k;
        o.ef_search = self.ef_search;
        o.filter = filter.as_ref().map_or(ptr::null(), |f| f.as_ptr());
        o.with_payload = self.with_payload as i32;
        o.threads = self.threads;
        o.exact = self.exact as i32;
        o.nonblocking = self.nonblocking as i32;
        o.ivf_rerank = self.ivf_rerank;
        Ok((o, filter))
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Canonical textual UUID.
    pub id: String,
    /// A distance, lower is better (hits come in ascending order): 1 - cosine
    /// similarity (0 for an exact match), the L2 distance `||a-b||`, or the
    /// negated dot product. (Before 0.2.0 higher was better.)
    pub score: f32,
    /// JSON object, if the point has one and payloads were asked for.
    pub payload: Option<String>,
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

impl Collection {
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
}
