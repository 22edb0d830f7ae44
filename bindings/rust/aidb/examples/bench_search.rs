//! Search QPS through the Rust binding on the data set written by
//! tests/packaging/bench/capi_search_bench (`prepare`), doing exactly what
//! its `run` does: load the snapshot, run every query ROUNDS times on one
//! thread, top 10 with payloads.
//!
//!     cargo run --release --example bench_search -- DIR [ROUNDS]
use aidb::{Collection, CollectionOptions, Metric, SearchOptions};
use std::time::Instant;

const DIM: usize = 784;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: bench_search DIR [ROUNDS]")?);
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let coll = Collection::open(&CollectionOptions::new("bench", DIM as u32).metric(Metric::Euclidean).hnsw(16, 100))?;
    coll.load_snapshot(dir.join("bench.snapshot"))?;
    let raw = std::fs::read(dir.join("queries.f32"))?;
    let q: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let nq = q.len() / DIM;
    let opts = SearchOptions::new().top_k(10);
    let mut hits = 0usize;
    let start = Instant::now();
    for _ in 0..rounds {
        for query in q.chunks_exact(DIM) {
            hits += coll.search(query, &opts)?.len();
        }
    }
    let dt = start.elapsed().as_secs_f64();
    println!("rust qps={:.1} queries={} hits={}", (nq * rounds) as f64 / dt, nq * rounds, hits);
    Ok(())
}
