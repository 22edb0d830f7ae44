//! Collection configuration: the metric, index and durability enums and
//! [`CollectionOptions`] / [`CollectionInfo`].
use crate::error::{check, ensure_loaded, Error, Result};
use crate::{c_init, cstr_to_string, cstring, path_cstring, sys};
use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::ptr;
use std::str::FromStr;
use std::time::Duration;

/// An enum of `aidb.h` whose names belong to the library: `Display` prints
/// the library's name (`aidb_*_name`), `FromStr` parses what the library
/// accepts (`aidb_*_from_string`, aliases included).
macro_rules! c_enum {
    (
        $(#[$meta:meta])* $name:ident, $c_name:ident, $c_parse:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:path ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            pub(crate) fn raw(self) -> i32 {
                match self {
                    $( $name::$variant => $value ),+
                }
            }
            /// Values this crate does not know map to the default.
            pub(crate) fn from_raw(v: i32) -> $name {
                $( if v == $value { return $name::$variant; } )+
                $name::default()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if ensure_loaded().is_err() {
                    return fmt::Debug::fmt(self, f);
                }
                // SAFETY: returns a static NUL-terminated string for any value.
                f.write_str(&unsafe { cstr_to_string(sys::$c_name(self.raw())) })
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                ensure_loaded()?;
                let cs = cstring(s)?;
                let mut v = 0;
                let mut msg = ptr::null_mut();
                // SAFETY: valid C string and out-pointers for the call.
                check(unsafe { sys::$c_parse(cs.as_ptr(), &mut v, &mut msg) }, msg)?;
                Ok($name::from_raw(v))
            }
        }
    };
}

c_enum! {
    /// Distance metric; search scores are distances, lower is better: 1 - cosine
    /// similarity, the L2 distance, the negated dot product.
    Metric, aidb_metric_name, aidb_metric_from_string {
        #[default]
        Cosine = sys::AIDB_METRIC_COSINE,
        Euclidean = sys::AIDB_METRIC_EUCLIDEAN,
        Dot = sys::AIDB_METRIC_DOT,
    }
}

c_enum! {
    /// Index kind: exact `Flat`, approximate `Hnsw` or `Ivf`.
    IndexKind, aidb_index_kind_name, aidb_index_kind_from_string {
        #[default]
        Flat = sys::AIDB_INDEX_FLAT,
        Hnsw = sys::AIDB_INDEX_HNSW,
        Ivf = sys::AIDB_INDEX_IVF,
    }
}

c_enum! {
    /// When a mutating call returns (see `aidb.h`).
    Durability, aidb_durability_name, aidb_durability_from_string {
        #[default]
        Fsync = sys::AIDB_DURABILITY_FSYNC,
        Batch = sys::AIDB_DURABILITY_BATCH,
        None = sys::AIDB_DURABILITY_NONE,
    }
}

/// What an HNSW walk scores (see `aidb.h`): 8-bit codes with an exact
/// re-rank (`Sq8`, the default) or the float vectors (`None`). Flat and IVF
/// collections do not use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantization {
    #[default]
    Sq8,
    None,
}

impl Quantization {
    pub(crate) fn raw(self) -> i32 {
        match self {
            Quantization::Sq8 => sys::AIDB_QUANTIZATION_SQ8,
            Quantization::None => sys::AIDB_QUANTIZATION_NONE,
        }
    }
    /// Values this crate does not know map to the default.
    pub(crate) fn from_raw(v: i32) -> Quantization {
        if v == sys::AIDB_QUANTIZATION_NONE {
            Quantization::None
        } else {
            Quantization::Sq8
        }
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantization::Sq8 => "sq8",
            Quantization::None => "none",
        })
    }
}

impl FromStr for Quantization {
    type Err = Error;
    fn from_str(s: &str) -> Result<Quantization> {
        match s.to_ascii_lowercase().as_str() {
            "sq8" => Ok(Quantization::Sq8),
            "none" => Ok(Quantization::None),
            _ => Err(Error::new(
                crate::Status::InvalidArgument,
                format!("unknown quantization '{s}': expected sq8 or none"),
            )),
        }
    }
}

/// Configuration of a collection. `None` fields take the library's defaults
/// (`aidb_collection_options_init`).
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
    /// HNSW: what the walk scores (default 8-bit codes).
    pub quantization: Quantization,
    /// Any index: keep the float vectors in a file-backed mapping the
    /// page cache may evict (a standalone collection needs a `wal_path`).
    pub vectors_on_disk: bool,
    /// IVF: partitions, partitions a search probes, candidates re-ranked
    /// exactly; 0 = automatic for each (see `aidb_collection_options`).
    pub ivf_nlist: u32,
    pub ivf_nprobe: u32,
    pub ivf_rerank: u32,
}

/// Milliseconds as the C API's `uint32_t`, saturating.
pub(crate) fn millis_u32(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
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
    pub fn quantization(mut self, q: Quantization) -> Self {
        self.quantization = q;
        self
    }
    pub fn vectors_on_disk(mut self, on: bool) -> Self {
        self.vectors_on_disk = on;
        self
    }
    /// An IVF collection with these parameters (0 = automatic for each).
    pub fn ivf(mut self, nlist: u32, nprobe: u32, rerank: u32) -> Self {
        self.index = IndexKind::Ivf;
        self.ivf_nlist = nlist;
        self.ivf_nprobe = nprobe;
        self.ivf_rerank = rerank;
        self
    }

    /// Fills a C options struct; the returned CStrings back its pointers.
    pub(crate) fn to_raw(&self) -> Result<(sys::aidb_collection_options, CString, Option<CString>)> {
        let name = cstring(&self.name)?;
        let wal = self.wal_path.as_deref().map(path_cstring).transpose()?;
        // SAFETY: the library initialises the struct.
        let mut o = c_init(|p| unsafe { sys::aidb_collection_options_init(p) });
        o.name = name.as_ptr();
        o.dim = self.dim;
        o.metric = self.metric.raw();
        o.index_kind = self.index.raw();
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
            o.batch_interval_ms = millis_u32(d);
        }
        if let Some(t) = self.wal_mmap_threshold {
            o.wal_mmap_threshold = t;
        }
        o.quantization = self.quantization.raw();
        o.vectors_on_disk = i32::from(self.vectors_on_disk);
        o.ivf_nlist = self.ivf_nlist;
        o.ivf_nprobe = self.ivf_nprobe;
        o.ivf_rerank = self.ivf_rerank;
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
    /// IVF parameters as configured (0 = automatic; 0 for other kinds).
    pub ivf_nlist: u32,
    pub ivf_nprobe: u32,
    pub ivf_rerank: u32,
    pub quantization: Quantization,
    pub vectors_on_disk: bool,
}

impl CollectionInfo {
    pub(crate) fn from_raw(i: &sys::aidb_collection_info) -> CollectionInfo {
        CollectionInfo {
            // SAFETY: the name is NUL-terminated within its 72 bytes.
            name: unsafe { cstr_to_string(i.name.as_ptr()) },
            dim: i.dim,
            metric: Metric::from_raw(i.metric),
            index: IndexKind::from_raw(i.index_kind),
            hnsw_m: i.hnsw_m,
            hnsw_ef_construction: i.hnsw_ef_construction,
            hnsw_ef_search: i.hnsw_ef_search,
            durability: Durability::from_raw(i.durability),
            count: i.count,
            ivf_nlist: i.ivf_nlist,
            ivf_nprobe: i.ivf_nprobe,
            ivf_rerank: i.ivf_rerank,
            quantization: Quantization::from_raw(i.quantization),
            vectors_on_disk: i.vectors_on_disk != 0,
        }
    }
}
