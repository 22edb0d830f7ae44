//! Checks the declarations of `src/lib.rs` against `aidb.h` as a C compiler
//! sees it: a C program generated from the header prints the size and
//! alignment of every struct, the offset of every field and the value of
//! every `AIDB_*` constant, and each must match the Rust side. Fields are
//! enumerated from the header, so a field missing on the Rust side fails
//! even where tail padding would hide it from a size comparison.
//!
//! The header is `$AIDB_INCLUDE_DIR/aidb.h`, else pkg-config's (`aidb.pc`),
//! else the repository's `include/aidb.h`; the compiler is `$CC`, else `cc`.
use aidb_sys as sys;
use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust side of one struct: size, alignment, fields with offsets.
struct RustLayout {
    name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize)>,
}

macro_rules! layouts {
    ($($s:ident { $($f:ident),* $(,)? })*) => {
        vec![$(RustLayout {
            name: stringify!($s),
            size: size_of::<sys::$s>(),
            align: align_of::<sys::$s>(),
            fields: vec![$((stringify!($f), offset_of!(sys::$s, $f))),*],
        }),*]
    };
}

fn rust_layouts() -> Vec<RustLayout> {
    layouts! {
        aidb_collection_options {
            struct_size, name, dim, metric, index_kind, hnsw_m, hnsw_ef_construction, hnsw_ef_search,
            wal_path, durability, batch_interval_ms, wal_mmap_threshold, ivf_nlist, ivf_nprobe, ivf_rerank,
            quantization, vectors_on_disk,
        }
        aidb_collection_info {
            struct_size, name, dim, metric, index_kind, hnsw_m, hnsw_ef_construction, hnsw_ef_search,
            durability, count, ivf_nlist, ivf_nprobe, ivf_rerank, quantization, vectors_on_disk,
        }
        aidb_search_options {
            struct_size, top_k, ef_search, filter, with_payload, threads, exact, nonblocking, ivf_rerank,
        }
        aidb_hit { id, score, reserved, payload, payload_len }
        aidb_recover_options { struct_size, target, lsn, timestamp_ns }
        aidb_recover_stats {
            struct_size, records_applied, records_skipped, bytes_read, torn_tail_bytes, last_lsn, torn_tail,
            used_mmap,
        }
        aidb_wal_info { struct_size, size_bytes, has_last_truncate, last_truncate_unix_ns, bytes_since_truncate, last_lsn }
        aidb_wal_entry { struct_size, lsn, timestamp_ns, op, json, json_len }
        aidb_db_options { struct_size, create_if_missing, durability, batch_interval_ms, wal_mmap_threshold }
        aidb_snapshot_info { path, lsn, size_bytes, created_unix_ns, count }
    }
}

macro_rules! consts {
    ($($c:ident),* $(,)?) => { BTreeMap::from([$((stringify!($c), i64::from(sys::$c))),*]) };
}

fn rust_consts() -> BTreeMap<&'static str, i64> {
    consts! {
        AIDB_VERSION_MAJOR, AIDB_VERSION_MINOR, AIDB_VERSION_PATCH, AIDB_VERSION_NUMBER, AIDB_ABI_VERSION,
        AIDB_OK, AIDB_INVALID_ARGUMENT, AIDB_NOT_FOUND, AIDB_ALREADY_EXISTS, AIDB_DIMENSION_MISMATCH,
        AIDB_IO_ERROR, AIDB_CORRUPTION, AIDB_MISUSE, AIDB_NO_MEMORY, AIDB_UNSUPPORTED, AIDB_INTERNAL, AIDB_BUSY,
        AIDB_METRIC_COSINE, AIDB_METRIC_EUCLIDEAN, AIDB_METRIC_DOT,
        AIDB_INDEX_FLAT, AIDB_INDEX_HNSW, AIDB_INDEX_IVF,
        AIDB_DURABILITY_FSYNC, AIDB_DURABILITY_BATCH, AIDB_DURABILITY_NONE,
        AIDB_QUANTIZATION_SQ8, AIDB_QUANTIZATION_NONE,
        AIDB_LOG_DEBUG, AIDB_LOG_INFO, AIDB_LOG_WARN, AIDB_LOG_ERROR, AIDB_LOG_OFF,
        AIDB_RECOVER_LATEST, AIDB_RECOVER_TO_LSN, AIDB_RECOVER_TO_TIME,
        AIDB_WAL_OP_UPSERT, AIDB_WAL_OP_DELETE, AIDB_WAL_OP_SET_PARAMS,
        AIDB_DEFAULT_METRIC, AIDB_DEFAULT_INDEX_KIND, AIDB_DEFAULT_HNSW_M,
        AIDB_DEFAULT_HNSW_EF_CONSTRUCTION, AIDB_DEFAULT_HNSW_EF_SEARCH, AIDB_DEFAULT_DURABILITY,
        AIDB_DEFAULT_BATCH_INTERVAL_MS, AIDB_DEFAULT_WAL_MMAP_THRESHOLD,
        AIDB_DEFAULT_CREATE_IF_MISSING, AIDB_DEFAULT_TOP_K, AIDB_DEFAULT_WITH_PAYLOAD,
        AIDB_PATH_COLLECTION, AIDB_PATH_CONFIG, AIDB_PATH_WAL, AIDB_PATH_MANIFEST, AIDB_PATH_SNAPSHOTS,
    }
}

fn header_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIDB_INCLUDE_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(out) = Command::new("pkg-config").args(["--variable=includedir", "aidb"]).output() {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && Path::new(&dir).join("aidb.h").is_file() {
            return PathBuf::from(dir);
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../include")
}

/// The text without C comments.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i + 2..].split_once("*/").map_or("", |(_, r)| r);
    }
    out.push_str(rest);
    out.lines().map(|l| l.split_once("//").map_or(l, |(a, _)| a)).collect::<Vec<_>>().join("\n")
}

/// `typedef struct NAME { ... } NAME;` of the header: name and field names.
fn header_structs(h: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = h;
    while let Some(i) = rest.find("typedef struct ") {
        rest = &rest[i + "typedef struct ".len()..];
        let Some((name, body)) = rest.split_once('{').filter(|(n, _)| !n.contains(';')) else {
            continue; // an opaque handle: typedef struct x x;
        };
        let (body, after) = body.split_once('}').expect("unterminated struct");
        rest = after;
        let fields = body
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                let d = d.split('[').next().unwrap();
                d.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap().to_string()
            })
            .collect();
        out.push((name.trim().to_string(), fields));
    }
    out
}

/// Every `AIDB_*` constant: `#define`d values and enum members.
fn header_consts(h: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in h.lines() {
        if let Some(def) = line.trim().strip_prefix("#define ") {
            let mut parts = def.splitn(2, char::is_whitespace);
            let (name, value) = (parts.next().unwrap(), parts.next().unwrap_or("").trim());
            if name.starts_with("AIDB_") && name != "AIDB_H" && name != "AIDB_EXPORT" && !value.is_empty() {
                names.push(name.to_string());
            }
        }
    }
    let mut rest = h;
    while let Some(i) = rest.find("enum {") {
        let (body, after) = rest[i + 6..].split_once('}').expect("unterminated enum");
        rest = after;
        for member in body.split(',') {
            let name = member.split('=').next().unwrap().trim();
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Compiles and runs the C program; its output, line by line.
fn c_report(dir: &Path, structs: &[(String, Vec<String>)], consts: &[String]) -> Vec<String> {
    let mut c = String::from("#include <stddef.h>\n#include <stdio.h>\n#include <aidb.h>\nint main(void) {\n");
    for (s, fields) in structs {
        c += &format!("  printf(\"struct {s} %zu %zu\\n\", sizeof({s}), _Alignof({s}));\n");
        for f in fields {
            c += &format!("  printf(\"field {s} {f} %zu\\n\", offsetof({s}, {f}));\n");
        }
    }
    for k in consts {
        if k == "AIDB_VERSION" {
            c += &format!("  printf(\"string {k} %s\\n\", {k});\n");
        } else {
            c += &format!("  printf(\"const {k} %lld\\n\", (long long)({k}));\n");
        }
    }
    c += "  return 0;\n}\n";
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("aidb-layout-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (src, exe) = (tmp.join("layout.c"), tmp.join("layout"));
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(dir)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(st.success(), "{cc} failed on {}", src.display());
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&tmp);
    String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
}

/// `pub struct` declarations of src/lib.rs with their `pub` fields, in order.
fn source_structs() -> BTreeMap<String, Vec<String>> {
    let src = include_str!("../src/lib.rs");
    let mut out = BTreeMap::new();
    let mut rest = src;
    while let Some(i) = rest.find("\npub struct ") {
        rest = &rest[i + "\npub struct ".len()..];
        let (name, body) = rest.split_once('{').unwrap();
        let (body, after) = body.split_once("\n}").unwrap();
        rest = after;
        let fields = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub "))
            .map(|l| l.split(':').next().unwrap().trim().to_string())
            .collect();
        out.insert(name.trim().to_string(), fields);
    }
    out
}

#[test]
fn every_struct_field_and_constant_matches_the_header() {
    let dir = header_dir();
    let text = std::fs::read_to_string(dir.join("aidb.h")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let h = strip_comments(&text);
    let structs = header_structs(&h);
    let consts = header_consts(&h);
    assert!(structs.len() >= 10 && consts.len() >= 30, "header parse: {structs:?} {consts:?}");
    let report = c_report(&dir, &structs, &consts);

    let rust = rust_layouts();
    let source = source_structs();
    let mut problems = Vec::new();
    let c_names: Vec<&str> = structs.iter().map(|(n, _)| n.as_str()).collect();
    let rust_names: Vec<&str> = rust.iter().map(|r| r.name).collect();
    if c_names != rust_names {
        problems.push(format!("structs: header {c_names:?}, this test {rust_names:?}"));
    }
    let mut sorted = rust_names.clone();
    sorted.sort();
    let src_names: Vec<&str> = source.keys().map(String::as_str).collect();
    if src_names != sorted {
        problems.push(format!("structs: src/lib.rs {src_names:?}, this test {sorted:?}"));
    }
    for r in &rust {
        let fields: Vec<&str> = r.fields.iter().map(|(f, _)| *f).collect();
        if let Some(src_fields) = source.get(r.name) {
            if *src_fields != fields {
                problems.push(format!("{}: src/lib.rs fields {src_fields:?}, this test {fields:?}", r.name));
            }
        }
        if let Some((_, c_fields)) = structs.iter().find(|(n, _)| n == r.name) {
            if *c_fields != fields {
                problems.push(format!("{}: header fields {c_fields:?}, Rust {fields:?}", r.name));
            }
        }
        let want = format!("struct {} {} {}", r.name, r.size, r.align);
        if !report.contains(&want) {
            problems.push(format!("{}: Rust size/align `{want}`, C {:?}", r.name, c_line(&report, "struct", r.name)));
        }
        for (f, off) in &r.fields {
            let want = format!("field {} {f} {off}", r.name);
            if !report.contains(&want) {
                let key = format!("{} {f}", r.name);
                problems.push(format!("{}.{f}: Rust offset {off}, C {:?}", r.name, c_line(&report, "field", &key)));
            }
        }
    }

    let rust_consts = rust_consts();
    for k in &consts {
        if k == "AIDB_VERSION" {
            let want = format!("string AIDB_VERSION {}", sys::AIDB_VERSION);
            if !report.contains(&want) {
                problems.push(format!(
                    "AIDB_VERSION: Rust {}, C {:?}",
                    sys::AIDB_VERSION,
                    c_line(&report, "string", k)
                ));
            }
            continue;
        }
        match rust_consts.get(k.as_str()) {
            None => problems.push(format!("{k} is not declared in aidb-sys (or not listed in this test)")),
            Some(v) if !report.contains(&format!("const {k} {v}")) => {
                problems.push(format!("{k}: Rust {v}, C {:?}", c_line(&report, "const", k)))
            }
            Some(_) => {}
        }
    }
    for k in rust_consts.keys() {
        if !consts.iter().any(|c| c == k) {
            problems.push(format!("{k} is not in the header"));
        }
    }
    assert!(problems.is_empty(), "aidb-sys differs from {}/aidb.h:\n{}", dir.display(), problems.join("\n"));
}

fn c_line<'a>(report: &'a [String], kind: &str, key: &str) -> Option<&'a String> {
    let prefix = format!("{kind} {key} ");
    report.iter().find(|l| l.starts_with(&prefix))
}
