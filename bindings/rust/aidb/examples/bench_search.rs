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
    let (start, cpu0) = (Instant::now(), cpu_time());
    for _ in 0..rounds {
        for query in q.chunks_exact(DIM) {
            hits += coll.search(query, &opts)?.len();
        }
    }
    let (dt, dc) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    let n = (nq * rounds) as f64;
    println!("rust qps={:.1} cpu_qps={:.1} queries={} hits={}", n / dt, n / dc, nq * rounds, hits);
    Ok(())
}

/// CPU time of the process in seconds (clock_gettime(CLOCK_PROCESS_CPUTIME_ID)).
fn cpu_time() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer; libc is always linked on Linux.
    unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}
