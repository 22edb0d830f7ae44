//! The binding's behaviour against the real library: the checkpoint/restore
//! flow of docs/operations.md, a database directory, filtered search, threads,
//! bad input.
use aidb::{
    Collection, CollectionOptions, Db, Durability, IndexKind, Metric, Quantization, RecoverTarget, SearchOptions,
    Status, WalOp,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::var_os("AIDB_TEST_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!("aidb-rs-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vec_for(i: usize, dim: usize) -> Vec<f32> {
    (0..dim).map(|j| ((i * dim + j + 1) as f32).sin() + (i % 7) as f32).collect()
}

#[test]
fn version_matches_header() {
    assert_eq!(aidb::version_number().unwrap(), aidb::HEADER_VERSION_NUMBER);
    // The crates are versioned with the library.
    assert_eq!(aidb::version().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_library_status_has_a_variant() {
    let mut named = 0;
    for code in 1..1000 {
        let name = Status::Unknown(code).to_string();
        if name == "UNKNOWN" {
            break;
        }
        named += 1;
        let s = Status::from_code(code);
        assert!(!matches!(s, Status::Unknown(_)), "status {code} ({name}) has no variant");
        assert_eq!((s.code(), s.to_string()), (code, name));
    }
    assert!(named >= 11, "{named}");
    assert_eq!(Status::from_code(11), Status::Busy);
    assert_eq!(Status::Busy.to_string(), "BUSY");
}

#[test]
fn enum_names_are_the_librarys() {
    assert_eq!("l2".parse::<Metric>().unwrap(), Metric::Euclidean);
    assert_eq!("hnsw".parse::<IndexKind>().unwrap(), IndexKind::Hnsw);
    assert_eq!("batch".parse::<Durability>().unwrap(), Durability::Batch);
    assert_eq!("nope".parse::<Metric>().unwrap_err().status(), Status::InvalidArgument);
    assert_eq!(Metric::Dot.to_string(), "dot");
    assert_eq!(IndexKind::Flat.to_string(), "flat");
    assert_eq!(Durability::None.to_string(), "none");
    // Defaults are the library's (aidb_search_options_init).
    let o = SearchOptions::new();
    assert!(o.top_k > 0 && o.with_payload && !o.exact && !o.nonblocking, "{o:?}");
}

/// An HNSW collection of a cluster of points and one far away: the cluster's
/// ids and the far point's.
fn busy_collection() -> (Collection, Vec<String>, String) {
    let dim = 8;
    let c =
        Collection::open(&CollectionOptions::new("busy", dim as u32).metric(Metric::Euclidean).index(IndexKind::Hnsw))
            .unwrap();
    let cluster: Vec<String> = (0..500).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    let far = aidb::new_id();
    let mut flat: Vec<f32> = (0..500 * dim).map(|k| ((k + 1) as f32).sin()).collect();
    flat.extend(std::iter::repeat(100.0).take(dim));
    let ids: Vec<&str> = cluster.iter().map(String::as_str).chain([far.as_str()]).collect();
    c.upsert_batch(&ids, &flat, None).unwrap();
    (c, cluster, far)
}

/// `nonblocking` reaches the library: on an idle collection it answers like
/// a blocking search, and it gets `Status::Busy` where the library must
/// refuse (an HNSW walk through a graph of deleted points needs far more
/// distance computations than ef predicts) while a blocking search answers.
#[test]
fn nonblocking_search_answers_or_says_busy() {
    let (c, cluster, far) = busy_collection();
    for q in 0..20 {
        let query = c.get(&cluster[q * 17]).unwrap().vector;
        let want = c.search(&query, &SearchOptions::new().top_k(5)).unwrap();
        let got = c.search(&query, &SearchOptions::new().top_k(5).nonblocking(true)).unwrap();
        assert_eq!(got, want);
        let batch = c.search_batch(&query, query.len(), &SearchOptions::new().top_k(5).nonblocking(true)).unwrap();
        assert_eq!(batch, vec![want]);
    }
    let query = c.get(&cluster[0]).unwrap().vector;
    for id in &cluster {
        c.delete(id).unwrap();
    }
    let opts = SearchOptions::new().top_k(1).ef_search(1).nonblocking(true);
    let err = c.search(&query, &opts).unwrap_err();
    assert_eq!(err.status(), Status::Busy, "{err}");
    assert_eq!(err.code(), 11);
    assert!(!err.message().is_empty());
    assert_eq!(c.search_batch(&query, query.len(), &opts).unwrap_err().status(), Status::Busy);
    let hits = c.search(&query, &opts.nonblocking(false)).unwrap();
    assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec![far.as_str()]);
}

#[test]
fn ids_are_canonicalised() {
    assert_eq!(aidb::new_id().len(), 36);
    assert_eq!(
        aidb::canonical_id("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}").unwrap(),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(aidb::canonical_id("nope").unwrap_err().status(), Status::InvalidArgument);
}

#[test]
fn checkpoint_then_restore_sees_points_from_before_and_after() {
    let dir = TempDir::new();
    let snap = dir.path("docs.snapshot");
    let opts = CollectionOptions::new("docs", 8).metric(Metric::Euclidean).wal_path(dir.path("docs.wal"));

    let c = Collection::open(&opts).unwrap();
    let before: Vec<String> = (0..3).map(|_| aidb::new_id()).collect();
    for (i, id) in before.iter().enumerate() {
        c.upsert(id, &vec_for(i, 8), Some(&format!(r#"{{"phase":"before","i":{i}}}"#))).unwrap();
    }
    let w = c.wal_stats().unwrap();
    assert!(w.size_bytes > 0 && w.last_truncate.is_none(), "{w:?}");
    c.snapshot_to(&snap).unwrap();
    let w = c.wal_stats().unwrap();
    assert_eq!(w.size_bytes, 0, "checkpoint must empty the WAL");
    assert!(w.last_truncate.is_some());
    let after: Vec<String> = (0..2).map(|_| aidb::new_id()).collect();
    for (i, id) in after.iter().enumerate() {
        c.upsert(id, &vec_for(10 + i, 8), Some(r#"{"phase":"after"}"#)).unwrap();
    }
    c.delete(&before[2]).unwrap();
    drop(c);

    let r = Collection::open(&opts).unwrap();
    r.load_snapshot(&snap).unwrap();
    assert_eq!(r.count().unwrap(), 3, "the snapshot alone");
    let st = r.recover(RecoverTarget::Latest).unwrap();
    assert_eq!(st.records_applied, 3, "{st:?}");
    assert!(!st.torn_tail);
    assert_eq!(r.count().unwrap(), 4);
    for id in before[..2].iter().chain(after.iter()) {
        r.get(id).unwrap();
    }
    assert_eq!(r.get(&before[2]).unwrap_err().status(), Status::NotFound);
    let hits = r.search(&vec_for(10, 8), &SearchOptions::new().top_k(1)).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, after[0]);
    assert!(hits[0].payload.as_deref().unwrap().contains("after"));
    r.snapshot_to(&snap).unwrap();
    assert_eq!(r.wal_stats().unwrap().size_bytes, 0);
    assert_eq!(aidb::verify_snapshot(&snap).unwrap().count, 4);
}

#[test]
fn vectors_on_disk_and_quantization_reach_the_library() {
    let dir = TempDir::new();
    for (i, q) in [Quantization::Sq8, Quantization::None].into_iter().enumerate() {
        let opts = CollectionOptions::new(format!("od{i}"), 8)
            .metric(Metric::Euclidean)
            .index(IndexKind::Hnsw)
            .quantization(q)
            .vectors_on_disk(true)
            .wal_path(dir.path(&format!("od{i}.wal")));
        let c = Collection::open(&opts).unwrap();
        let info = c.info().unwrap();
        assert_eq!(info.quantization, q);
        assert!(info.vectors_on_disk);
        assert_eq!((info.ivf_nlist, info.ivf_nprobe, info.ivf_rerank), (0, 0, 0));
        let id = aidb::new_id();
        c.upsert(&id, &vec_for(1, 8), None).unwrap();
        assert_eq!(c.get(&id).unwrap().vector, vec_for(1, 8));
        let hits = c.search(&vec_for(1, 8), &SearchOptions::new().top_k(1)).unwrap();
        assert_eq!(hits[0].id, id);
        assert!(dir.path(&format!("od{i}.wal.vectors")).exists());
    }
    assert_eq!("none".parse::<Quantization>().unwrap(), Quantization::None);
    // No WAL path, no place for the vectors file.
    let err = Collection::open(&CollectionOptions::new("mem", 8).vectors_on_disk(true)).unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
}

/// An IVF collection with its vectors on disk (trained: more than 2048
/// points): the IVF parameters reach the library and come back in `info`,
/// `set_ef_search` sets the partitions probed, the configured re-rank of 10
/// candidates misses some exact hits while probing every partition with a
/// per-query re-rank of all points gives the exact scan's hits (single and
/// batch), before and after a snapshot + restore.
#[test]
fn ivf_with_vectors_on_disk() {
    const N: usize = 3000;
    const DIM: usize = 16;
    const NQ: usize = 20;
    let dir = TempDir::new();
    let wal = dir.path("ivf.wal");
    let opts = CollectionOptions::new("ivf", DIM as u32)
        .metric(Metric::Euclidean)
        .ivf(8, 2, 10)
        .vectors_on_disk(true)
        .wal_path(&wal);
    let c = Collection::open(&opts).unwrap();
    let ids: Vec<String> = (0..N).map(|_| aidb::new_id()).collect();
    let vectors: Vec<f32> = (0..N).flat_map(|i| vec_for(i, DIM)).collect();
    c.upsert_batch(&ids, &vectors, None).unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.index, IndexKind::Ivf);
    assert!(info.vectors_on_disk);
    assert_eq!((info.ivf_nlist, info.ivf_nprobe, info.ivf_rerank), (8, 2, 10));
    c.set_ef_search(8).unwrap();
    assert_eq!(c.info().unwrap().ivf_nprobe, 8);

    let queries: Vec<f32> = (0..NQ).flat_map(|q| vec_for(N + q, DIM)).collect();
    let all = SearchOptions::new().top_k(10).ef_search(8).ivf_rerank(N as u32).with_payload(false);
    let exact = SearchOptions::new().top_k(10).exact(true).with_payload(false);
    let ids_of = |hits: &[aidb::Hit]| hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    let same = |c: &Collection, what: &str| {
        let want = c.search_batch(&queries, DIM, &exact).unwrap();
        let got = c.search_batch(&queries, DIM, &all).unwrap();
        let narrow = c.search_batch(&queries, DIM, &SearchOptions::new().top_k(10).with_payload(false)).unwrap();
        assert!(
            (0..NQ).any(|q| ids_of(&narrow[q]) != ids_of(&want[q])),
            "{what}: re-ranking 10 candidates found every exact hit: not an IVF search"
        );
        for q in 0..NQ {
            let one = c.search(&queries[q * DIM..(q + 1) * DIM], &all).unwrap();
            assert_eq!(want[q].len(), 10, "{what}: query {q}");
            assert_eq!(ids_of(&got[q]), ids_of(&want[q]), "{what}: batch, query {q}");
            assert_eq!(ids_of(&one), ids_of(&want[q]), "{what}: single, query {q}");
        }
    };
    same(&c, "before restart");
    let snap = dir.path("ivf.snapshot");
    c.snapshot_to(&snap).unwrap();
    drop(c);
    // The vectors file is a cache: rebuilt from the snapshot at the next open.
    std::fs::remove_file(dir.path("ivf.wal.vectors")).unwrap();
    let r = Collection::open(&opts).unwrap();
    r.load_snapshot(&snap).unwrap();
    r.recover(RecoverTarget::Latest).unwrap();
    assert_eq!(r.count().unwrap(), N as u64);
    let info = r.info().unwrap();
    assert_eq!((info.ivf_nlist, info.ivf_nprobe, info.ivf_rerank), (8, 8, 10));
    same(&r, "after restore");
}

#[test]
fn database_directory_persists_snapshots_and_restores() {
    let tmp = TempDir::new();
    let dir = tmp.path("db");
    let ids: Vec<String> = (0..3).map(|_| aidb::new_id()).collect();
    let snap;
    {
        let db = Db::open(&dir, None).unwrap();
        let c = db.create_collection(&CollectionOptions::new("items", 4).index(IndexKind::Hnsw)).unwrap();
        assert_eq!(
            db.create_collection(&CollectionOptions::new("items", 4)).unwrap_err().status(),
            Status::AlreadyExists
        );
        c.upsert(&ids[0], &vec_for(0, 4), None).unwrap();
        snap = db.snapshot("items").unwrap();
        let mut flat = vec_for(1, 4);
        flat.extend(vec_for(2, 4));
        c.upsert_batch(&ids[1..], &flat, Some(&[None, Some(r#"{"k":1}"#)])).unwrap();
        let snaps = db.list_snapshots("items").unwrap();
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0].count, 1);
        // The collection handle keeps the database open past `db`'s drop.
        drop(db);
        assert_eq!(c.count().unwrap(), 3);
    }
    let db = Db::open(&dir, None).unwrap();
    assert_eq!(db.list_collections().unwrap(), vec!["items".to_string()]);
    let c = db.collection("items").unwrap();
    assert_eq!(c.count().unwrap(), 3, "snapshot + WAL replay on open");
    db.restore("items", snap.file_name().unwrap()).unwrap();
    assert_eq!(c.count().unwrap(), 3);
    assert_eq!(db.collection("nope").unwrap_err().status(), Status::NotFound);
    db.drop_collection("items").unwrap();
    assert!(db.list_collections().unwrap().is_empty());
    assert_eq!(c.upsert(&aidb::new_id(), &vec_for(9, 4), None).unwrap_err().status(), Status::NotFound);
}

#[test]
fn filtered_search_returns_only_matches() {
    let c = Collection::open(&CollectionOptions::new("f", 8).metric(Metric::Dot).durability(Durability::None)).unwrap();
    let n = 500;
    let ids: Vec<String> = (0..n).map(|_| aidb::new_id()).collect();
    let flat: Vec<f32> = (0..n).flat_map(|i| vec_for(i, 8)).collect();
    let payloads: Vec<String> = (0..n).map(|i| format!(r#"{{"group":{},"meta":{{"rank":{i}}}}}"#, i % 50)).collect();
    let pl: Vec<Option<&str>> = payloads.iter().map(|s| Some(s.as_str())).collect();
    c.upsert_batch(&ids, &flat, Some(&pl)).unwrap();
    assert_eq!(c.count().unwrap(), n as u64);

    let hits = c.search(&vec_for(1, 8), &SearchOptions::new().top_k(10).filter(r#"{"group":7}"#)).unwrap();
    assert_eq!(hits.len(), 10, "a selective filter still returns k hits");
    for h in &hits {
        assert!(h.payload.as_deref().unwrap().contains(r#""group":7"#), "{h:?}");
    }
    let hits = c
        .search(
            &vec_for(1, 8),
            &SearchOptions::new()
                .top_k(100)
                .with_payload(false)
                .filter(r#"{"must":[{"key":"meta.rank","range":{"gte":10,"lt":20}}]}"#),
        )
        .unwrap();
    assert_eq!(hits.len(), 10);
    assert!(hits.windows(2).all(|w| w[0].score <= w[1].score), "distances ascend: {hits:?}");
    assert!(hits.iter().all(|h| h.payload.is_none()));

    let res = c.search_batch(&flat[..3 * 8], 8, &SearchOptions::new().top_k(5).filter(r#"{"group":3}"#)).unwrap();
    assert_eq!(res.len(), 3);
    assert!(res.iter().all(|h| h.len() == 5));
    let err = c.search(&vec_for(1, 8), &SearchOptions::new().filter(r#"{"must": ["#)).unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
}

#[test]
fn threads_share_one_collection() {
    let dir = TempDir::new();
    let c = Collection::open(
        &CollectionOptions::new("conc", 16).hnsw(16, 100).wal_path(dir.path("wal")).durability(Durability::Batch),
    )
    .unwrap();
    std::thread::scope(|s| {
        for w in 0..8 {
            let c = &c;
            s.spawn(move || {
                for i in 0..50 {
                    let v = vec_for(w * 50 + i, 16);
                    c.upsert(&aidb::new_id(), &v, Some(&format!(r#"{{"w":{w}}}"#))).unwrap();
                    c.search(&v, &SearchOptions::new().top_k(3)).unwrap();
                }
            });
        }
    });
    assert_eq!(c.count().unwrap(), 400);
    // Handles move across threads too.
    let n = std::thread::spawn(move || c.count().unwrap()).join().unwrap();
    assert_eq!(n, 400);
}

#[test]
fn bad_input_is_rejected_with_the_right_status() {
    let dir = TempDir::new();
    let c = Collection::open(&CollectionOptions::new("bad", 4)).unwrap();
    let id = aidb::new_id();
    let v = [1.0f32, 2.0, 3.0, 4.0];
    let cases: Vec<(&str, aidb::Result<()>, Status)> = vec![
        ("wrong dim", c.upsert(&id, &v[..3], None), Status::DimensionMismatch),
        ("NaN", c.upsert(&id, &[1.0, f32::NAN, 3.0, 4.0], None), Status::InvalidArgument),
        ("Inf", c.upsert(&id, &[1.0, f32::INFINITY, 3.0, 4.0], None), Status::InvalidArgument),
        ("bad UUID", c.upsert("xyz", &v, None), Status::InvalidArgument),
        ("bad JSON", c.upsert(&id, &v, Some(r#"{"a":"#)), Status::InvalidArgument),
        ("non-object payload", c.upsert(&id, &v, Some("[1,2]")), Status::InvalidArgument),
        ("NUL in id", c.upsert("a\0b", &v, None), Status::InvalidArgument),
        (
            "batch with one bad id",
            c.upsert_batch(&[aidb::new_id(), "nope".into()], &[v, v].concat(), None),
            Status::InvalidArgument,
        ),
        ("delete missing", c.delete(&aidb::new_id()), Status::NotFound),
        ("search wrong dim", c.search(&[1.0], &SearchOptions::new()).map(|_| ()), Status::DimensionMismatch),
        ("set_ef_search on flat", c.set_ef_search(10), Status::Unsupported),
        ("bad name", Collection::open(&CollectionOptions::new("no spaces", 4)).map(|_| ()), Status::InvalidArgument),
        ("zero dim", Collection::open(&CollectionOptions::new("z", 0)).map(|_| ()), Status::InvalidArgument),
        ("missing snapshot", c.load_snapshot(dir.path("none")), Status::NotFound),
    ];
    for (name, res, want) in cases {
        let err = res.expect_err(name);
        assert_eq!(err.status(), want, "{name}: {err}");
        assert_eq!(err.code(), want.code());
    }
    assert_eq!(c.count().unwrap(), 0, "nothing half-applied");
}

#[test]
fn unknown_status_codes_are_tolerated() {
    let s = Status::from_code(4242);
    assert_eq!(s, Status::Unknown(4242));
    assert_eq!(s.code(), 4242);
    assert_eq!(s.to_string(), "UNKNOWN");
}

#[test]
fn wal_iterator_replays_the_change_feed() {
    let dir = TempDir::new();
    let c = Collection::open(&CollectionOptions::new("feed", 2).wal_path(dir.path("wal"))).unwrap();
    let id = aidb::new_id();
    c.upsert(&id, &[1.0, 2.0], None).unwrap();
    c.delete(&id).unwrap();
    let entries: Vec<_> = c.wal_entries(0).unwrap().collect::<aidb::Result<_>>().unwrap();
    assert_eq!(entries.iter().map(|e| e.op).collect::<Vec<_>>(), vec![WalOp::Upsert, WalOp::Delete]);
    assert!(entries[0].lsn < entries[1].lsn);
    assert!(entries[0].json.starts_with('{'));
}

fn assert_send_sync<T: Send + Sync>() {}
#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<Collection>();
    assert_send_sync::<Db>();
    assert_send_sync::<aidb::Error>();
}

#[test]
fn logger_receives_wal_truncated_event() {
    use std::sync::{Arc, Mutex};
    let events: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = events.clone();
    aidb::set_logger(
        aidb::LogLevel::Info,
        Some(Box::new(move |e: &aidb::LogEvent<'_>| {
            sink.lock().unwrap().push((e.target.to_string(), e.event.to_string()));
        })),
    )
    .unwrap();
    let dir = TempDir::new();
    let c = Collection::open(&CollectionOptions::new("logged", 2).wal_path(dir.path("wal"))).unwrap();
    c.upsert(&aidb::new_id(), &[1.0, 2.0], None).unwrap();
    c.snapshot_to(dir.path("snap")).unwrap();
    aidb::set_logger(aidb::LogLevel::Off, None).unwrap();
    let seen = events.lock().unwrap().iter().any(|(t, e)| t == "aidb::storage" && e == "wal_truncated");
    // Other tests run concurrently in this process; only check our event arrived.
    assert!(seen, "{:?}", events.lock().unwrap());
}

/// Scores are distances, lower is better, hits ascending: hand-computed for
/// q = (1,1) against a = (1,0), b = (0,2), c = (3,4), d = (-2,0).
#[test]
fn scores_are_distances_ascending() {
    let pts: [[f32; 2]; 4] = [[1.0, 0.0], [0.0, 2.0], [3.0, 4.0], [-2.0, 0.0]];
    let r2 = std::f32::consts::SQRT_2;
    let want = [
        (Metric::Cosine, [1.0 - 1.0 / r2, 1.0 - 1.0 / r2, 1.0 - 7.0 / (5.0 * r2), 1.0 + 1.0 / r2]),
        (Metric::Euclidean, [1.0, r2, 13f32.sqrt(), 10f32.sqrt()]),
        (Metric::Dot, [-1.0, -2.0, -7.0, 2.0]),
    ];
    for index in [IndexKind::Flat, IndexKind::Hnsw] {
        for (metric, dist) in want {
            let c = Collection::open(
                &CollectionOptions::new("d", 2).metric(metric).index(index).durability(Durability::None),
            )
            .unwrap();
            let ids: Vec<String> = pts.iter().map(|_| aidb::new_id()).collect();
            for (id, p) in ids.iter().zip(&pts) {
                c.upsert(id, p, None).unwrap();
            }
            let hits = c.search(&[1.0, 1.0], &SearchOptions::new().top_k(4)).unwrap();
            assert_eq!(hits.len(), 4);
            assert!(hits.windows(2).all(|w| w[0].score <= w[1].score), "{metric:?}/{index:?}: {hits:?}");
            for h in &hits {
                let i = ids.iter().position(|id| *id == h.id).unwrap();
                assert!((h.score - dist[i]).abs() < 1e-5, "{metric:?}/{index:?}: point {i} scored {}", h.score);
            }
            // An exact match is the best hit: 0 for cosine and Euclidean.
            let best = &c.search(&pts[2], &SearchOptions::new().top_k(1)).unwrap()[0];
            assert_eq!(best.id, ids[2]);
            if metric == Metric::Dot {
                assert!((best.score + 25.0).abs() < 1e-4, "{}", best.score);
            } else {
                assert!(best.score.abs() <= 1e-6 && best.score.is_sign_positive(), "{}", best.score);
            }
        }
    }
}
