// aidb_ingest_bench: durable ingest of Fashion-MNIST-sized records (784 float32
// + ~40 bytes of JSON + a 16-byte id) into
//   - AIDB: a flat collection through the public C API, durability fsync,
//     batch and none, with aidb_collection_upsert (batch 1) or
//     aidb_collection_upsert_batch;
//   - SQLite: WAL journal, synchronous=FULL, table (id BLOB PRIMARY KEY,
//     vector BLOB, payload TEXT), one transaction per batch;
//   - RocksDB: WriteOptions.sync = true, one WriteBatch per batch, key = the
//     16-byte id, value = vector bytes + payload;
//   - raw: the disk's floor for one durable batch, the same record bytes
//     written with one pwrite + fdatasync per batch, appending to a new file
//     ("append", what every system above does) or overwriting a file that
//     was zero-filled and synced beforehand ("prealloc", no metadata to
//     journal per sync; 64 MiB, reused circularly);
// with the same records and batch sizes (1, 32, 1000), data in one directory
// on the same filesystem. "aidb8" is AIDB fsync with 8 threads each upserting
// single points (group commit), against "aidb" fsync batch 1 (one writer). Each configuration
// writes into a fresh directory until it has written --records records or
// has spent --seconds in its write calls (only those are timed; before each,
// the batch's input is read once, as a caller that just produced it has it
// in cache), and runs --runs times after --warmup unrecorded rounds
// (configurations interleaved, every other round in reverse order); medians
// are reported, then the ratios the targets ask for (bench/README.md,
// "Targets").
//
// --memory-probe measures the first store into fresh memory freed a moment
// or some seconds before (a VM's free page reporting makes the second slow).
//
// --sync-probe instead measures fdatasync latency after a pwrite that appends
// (the file grows) vs one that overwrites zero blocks written and synced
// before, and vs fallocate(KEEP_SIZE) space, for 4 KB, 100 KB and 3 MB writes.
//
// Usage: aidb_ingest_bench [--runs N] [--warmup N] [--seconds S] [--records N] [--dir D]
//                          [--systems aidb,aidb8,sqlite,rocksdb,raw]
//                          [--batches 1,32,1000] [--modes fsync,batch,none]
//        aidb_ingest_bench --sync-probe [--runs N] [--dir D]
//        aidb_ingest_bench --memory-probe [--runs N]
// Data goes to D/aidb_ingest_bench (D: the build's bench-data by default, on
// the disk to measure), made fresh and removed at the end; nothing else in D
// is touched.
#include <aidb.h>
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "records.h"

using aidb_bench::kDim;
using aidb_bench::Records;

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "aidb_ingest_bench: %s\n", what.c_str());
  std::exit(1);
}

struct RunResult {
  size_t records = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // user + system of the process over the timed writes
};

// Reads `len` bytes once (one load per cache line): a batch's input as the
// caller that just produced it would have it, in cache, rather than in
// memory the process last touched seconds ago (on this VM such memory reads
// at a fraction of its speed: bench/README.md, "Fresh memory on this VM").
void Touch(const void* p, size_t len) {
  static volatile uint64_t sink;
  uint64_t s = 0;
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < len; i += 64) s += b[i];
  if (len > 0) s += b[len - 1];
  sink = s;
}

// The input of records [first, first + n) as every system but raw reads it:
// ids, vectors and payloads.
void WarmRecords(const Records& recs, size_t first, size_t n) {
  Touch(recs.vector(first), n * kDim * sizeof(float));
  for (size_t i = first; i < first + n; ++i) {
    Touch(recs.id_bytes[i].data(), recs.id_bytes[i].size());
    Touch(recs.ids[i].data(), recs.ids[i].size());
    Touch(recs.payloads[i].data(), recs.payloads[i].size());
  }
}

// Runs write(first, n) over consecutive batches until `max_records` are
// written or `budget` seconds of writing have passed. Before each write its
// batch's input is read once (warm(first, n), by default WarmRecords); only
// the writes are timed.
template <typename WriteFn, typename WarmFn>
RunResult Drive(const Records& recs, size_t batch, size_t max_records, double budget,
                WriteFn&& write, WarmFn&& warm) {
  RunResult r;
  size_t i = 0;
  while (i + batch <= max_records && r.seconds < budget) {
    warm(i, batch);
    const double c0 = aidb_bench::ProcessCpuSeconds();
    const double t0 = aidb_bench::NowSeconds();
    write(i, batch);
    r.seconds += aidb_bench::NowSeconds() - t0;
    r.cpu_seconds += aidb_bench::ProcessCpuSeconds() - c0;
    for (size_t k = i; k < i + batch; ++k) r.bytes += recs.record_bytes(k);
    i += batch;
  }
  r.records = i;
  return r;
}

template <typename WriteFn>
RunResult Drive(const Records& recs, size_t batch, size_t max_records, double budget,
                WriteFn&& write) {
  return Drive(recs, batch, max_records, budget, std::forward<WriteFn>(write),
               [&](size_t first, size_t n) { WarmRecords(recs, first, n); });
}

// ---------------------------------------------------------------------------
// AIDB

struct AidbInputs {
  std::vector<const char*> ids;
  std::vector<const char*> payloads;
};

// The bench's collection: flat, Euclidean, its WAL in `dir`.
aidb_collection* OpenIngestCollection(const std::string& dir, int durability) {
  const std::string wal = dir + "/wal.log";
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "ingest";
  o.dim = kDim;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.index_kind = AIDB_INDEX_FLAT;
  o.wal_path = wal.c_str();
  o.durability = durability;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  if (aidb_collection_open(&o, &c, &err) != AIDB_OK) Die(std::string("aidb open: ") + err);
  return c;
}

// Checks that the collection holds every record the run wrote, and closes it.
RunResult CheckAndClose(aidb_collection* c, const RunResult& r) {
  uint64_t count = 0;
  char* err = nullptr;
  if (aidb_collection_count(c, &count, &err) != AIDB_OK || count != r.records) {
    Die("aidb: collection holds " + std::to_string(count) + " points, wrote " +
        std::to_string(r.records));
  }
  aidb_collection_close(c);
  return r;
}

RunResult RunAidb(const Records& recs, const AidbInputs& in, const std::string& dir, int durability,
                  size_t batch, size_t max_records, double budget) {
  aidb_collection* c = OpenIngestCollection(dir, durability);
  char* err = nullptr;
  RunResult r = Drive(recs, batch, max_records, budget, [&](size_t first, size_t n) {
    int st;
    if (n == 1) {
      st = aidb_collection_upsert(c, in.ids[first], recs.vector(first), kDim, in.payloads[first],
                                  recs.payloads[first].size(), &err);
    } else {
      st = aidb_collection_upsert_batch(c, n, in.ids.data() + first, recs.vector(first), kDim,
                                        in.payloads.data() + first, &err);
    }
    if (st != AIDB_OK) Die(std::string("aidb upsert: ") + err);
  });
  return CheckAndClose(c, r);
}

// `threads` writers, each upserting single points of its own share of the
// records until the share is written or the budget has passed (fsync mode:
// what group commit buys concurrent clients).
RunResult RunAidbConcurrent(const Records& recs, const AidbInputs& in, const std::string& dir,
                            int durability, size_t threads, size_t max_records, double budget) {
  aidb_collection* c = OpenIngestCollection(dir, durability);
  std::vector<size_t> done(threads, 0);
  std::vector<uint64_t> bytes(threads, 0);
  std::atomic<bool> stop{false};
  const size_t share = max_records / threads;
  const double c0 = aidb_bench::ProcessCpuSeconds();
  const double t0 = aidb_bench::NowSeconds();
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      char* e = nullptr;
      for (size_t k = 0; k < share && !stop.load(std::memory_order_relaxed); ++k) {
        const size_t i = t * share + k;
        if (aidb_collection_upsert(c, in.ids[i], recs.vector(i), kDim, in.payloads[i],
                                   recs.payloads[i].size(), &e) != AIDB_OK) {
          Die(std::string("aidb upsert: ") + e);
        }
        done[t]++;
        bytes[t] += recs.record_bytes(i);
        if (aidb_bench::NowSeconds() - t0 >= budget) stop.store(true);
      }
    });
  }
  for (auto& th : ts) th.join();
  RunResult r;
  r.seconds = aidb_bench::NowSeconds() - t0;
  r.cpu_seconds = aidb_bench::ProcessCpuSeconds() - c0;
  for (size_t t = 0; t < threads; ++t) {
    r.records += done[t];
    r.bytes += bytes[t];
  }
  return CheckAndClose(c, r);
}

// ---------------------------------------------------------------------------
// SQLite

void SqlExec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    Die(std::string("sqlite: ") + sql + ": " + m);
  }
}

RunResult RunSqlite(const Records& recs, const std::string& dir, size_t batch, size_t max_records,
                    double budget) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((dir + "/ingest.db").c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    Die("sqlite open");
  }
  SqlExec(db, "PRAGMA journal_mode=WAL");
  SqlExec(db, "PRAGMA synchronous=FULL");
  SqlExec(db, "CREATE TABLE points (id BLOB PRIMARY KEY, vector BLOB, payload TEXT)");
  sqlite3_stmt *ins, *begin, *commit;
  if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO points (id, vector, payload) VALUES (?,?,?)",
                         -1, &ins, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "BEGIN", -1, &begin, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "COMMIT", -1, &commit, nullptr) != SQLITE_OK) {
    Die(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
  }
  auto step = [&](sqlite3_stmt* s) {
    if (sqlite3_step(s) != SQLITE_DONE) Die(std::string("sqlite step: ") + sqlite3_errmsg(db));
    sqlite3_reset(s);
  };
  RunResult r = Drive(recs, batch, max_records, budget, [&](size_t first, size_t n) {
    step(begin);
    for (size_t i = first; i < first + n; ++i) {
      sqlite3_bind_blob(ins, 1, recs.id_bytes[i].data(), 16, SQLITE_STATIC);
      sqlite3_bind_blob(ins, 2, recs.vector(i), kDim * sizeof(float), SQLITE_STATIC);
      sqlite3_bind_text(ins, 3, recs.payloads[i].data(), static_cast<int>(recs.payloads[i].size()),
                        SQLITE_STATIC);
      step(ins);
    }
    step(commit);
  });
  sqlite3_finalize(ins);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  sqlite3_close(db);
  return r;
}

// ---------------------------------------------------------------------------
// RocksDB

RunResult RunRocks(const Records& recs, const std::string& dir, size_t batch, size_t max_records,
                   double budget) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(opts, dir + "/rocks", &raw);
  if (!s.ok()) Die("rocksdb open: " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  RunResult r = Drive(recs, batch, max_records, budget, [&](size_t first, size_t n) {
    rocksdb::WriteBatch b;
    for (size_t i = first; i < first + n; ++i) {
      rocksdb::Slice key(reinterpret_cast<const char*>(recs.id_bytes[i].data()), 16);
      rocksdb::Slice parts[2] = {
          rocksdb::Slice(reinterpret_cast<const char*>(recs.vector(i)), kDim * sizeof(float)),
          rocksdb::Slice(recs.payloads[i])};
      b.Put(rocksdb::SliceParts(&key, 1), rocksdb::SliceParts(parts, 2));
    }
    rocksdb::Status ws = db->Write(wo, &b);
    if (!ws.ok()) Die("rocksdb write: " + ws.ToString());
  });
  s = db->Close();
  if (!s.ok()) Die("rocksdb close: " + s.ToString());
  return r;
}

// ---------------------------------------------------------------------------
// raw: pwrite + fdatasync per batch

RunResult RunRaw(const Records& recs, const std::string& dir, bool prealloc, size_t batch,
                 size_t max_records, double budget) {
  const std::string path = dir + "/raw.log";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path);
  const size_t kPrealloc = 64u << 20;
  if (prealloc) {
    std::vector<char> zeros(8u << 20, 0);
    for (size_t off = 0; off < kPrealloc; off += zeros.size()) {
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(zeros.size())) {
        Die("pwrite zeros");
      }
    }
    if (::fsync(fd) != 0) Die("fsync");
  }
  // The records' bytes back to back, as one batch would be written.
  std::vector<char> buf;
  std::vector<size_t> start(max_records + 1, 0);
  for (size_t i = 0; i < max_records; ++i) {
    start[i] = buf.size();
    buf.insert(buf.end(), recs.id_bytes[i].begin(), recs.id_bytes[i].end());
    const char* v = reinterpret_cast<const char*>(recs.vector(i));
    buf.insert(buf.end(), v, v + kDim * sizeof(float));
    buf.insert(buf.end(), recs.payloads[i].begin(), recs.payloads[i].end());
  }
  start[max_records] = buf.size();
  uint64_t off = 0;
  RunResult r = Drive(
      recs, batch, max_records, budget,
      [&](size_t first, size_t n) {
        const size_t len = start[first + n] - start[first];
        if (prealloc && off + len > kPrealloc) off = 0;
        if (::pwrite(fd, buf.data() + start[first], len, static_cast<off_t>(off)) !=
            static_cast<ssize_t>(len)) {
          Die("pwrite");
        }
        if (::fdatasync(fd) != 0) Die("fdatasync");
        off += len;
      },
      [&](size_t first, size_t n) {
        Touch(buf.data() + start[first], start[first + n] - start[first]);
      });
  ::close(fd);
  return r;
}

// ---------------------------------------------------------------------------
// --sync-probe: fdatasync latency append vs overwrite of synced zero blocks

// Writes `reps` buffers of `size` bytes one after another, each followed by
// fdatasync, and returns the median latency of the fdatasync calls in ms.
// kind 0: appending to a new file; 1: overwriting a file zero-filled and
// synced beforehand; 2: into fallocate(FALLOC_FL_KEEP_SIZE) space (the file
// size still grows with each write); 3: as 1, but written with
// O_DIRECT|O_DSYNC and no fdatasync (the time of the write itself).
double ProbeSync(const std::string& dir, int kind, size_t size, int reps) {
  const std::string path = dir + "/probe.log";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path);
  const size_t total = size * static_cast<size_t>(reps);
  if (kind == 1 || kind == 3) {
    std::vector<char> zeros(std::min<size_t>(total, 8u << 20), 0);
    for (size_t off = 0; off < total; off += zeros.size()) {
      const size_t n = std::min(zeros.size(), total - off);
      if (::pwrite(fd, zeros.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) {
        Die("pwrite zeros");
      }
    }
    if (::fsync(fd) != 0) Die("fsync");
  }
  if (kind == 3) {
    ::close(fd);
    fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
    if (fd < 0) Die("open O_DIRECT " + path);
  } else if (kind == 2) {
    if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(total)) != 0) {
      Die("fallocate");
    }
    if (::fsync(fd) != 0) Die("fsync");
  }
  void* mem = nullptr;
  if (::posix_memalign(&mem, 4096, size) != 0) Die("posix_memalign");
  std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(mem), &std::free);
  for (size_t i = 0; i < size; ++i) buf.get()[i] = static_cast<char>(i * 131 + 7);
  std::vector<double> lat;
  for (int r = 0; r < reps; ++r) {
    const off_t off = static_cast<off_t>(size) * r;
    const double t0 = aidb_bench::NowSeconds();
    if (::pwrite(fd, buf.get(), size, off) != static_cast<ssize_t>(size)) Die("pwrite");
    const double t1 = aidb_bench::NowSeconds();
    if (kind != 3 && ::fdatasync(fd) != 0) Die("fdatasync");
    lat.push_back((aidb_bench::NowSeconds() - (kind == 3 ? t0 : t1)) * 1e3);
  }
  ::close(fd);
  ::unlink(path.c_str());
  return aidb_bench::Median(lat);
}

int SyncProbe(const std::string& dir, int runs) {
  const size_t sizes[] = {4096, 100u << 10, 3u << 20};
  const char* names[] = {"append", "overwrite", "keep-size", "direct"};
  std::printf("# fdatasync latency after one pwrite, ms (median of the writes in a run)\n");
  std::printf("%-10s %-9s %9s  %s\n", "size", "kind", "median", "per-run medians");
  for (size_t size : sizes) {
    const int reps = size >= (1u << 20) ? 10 : 40;
    std::vector<std::vector<double>> per(4);
    for (int run = 0; run < runs; ++run) {
      for (int kind = 0; kind < 4; ++kind) per[kind].push_back(ProbeSync(dir, kind, size, reps));
    }
    for (int kind = 0; kind < 4; ++kind) {
      std::string s;
      char b[32];
      for (double x : per[kind]) {
        std::snprintf(b, sizeof b, "%.2f ", x);
        s += b;
      }
      std::printf("%-10zu %-9s %9.2f  %s\n", size, names[kind], aidb_bench::Median(per[kind]),
                  s.c_str());
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------

struct Config {
  std::string system;  // aidb / sqlite / rocksdb
  std::string mode;    // fsync / batch / none for aidb; "sync" for the peers
  size_t batch;
  std::string key() const { return system + "/" + mode + "/" + std::to_string(batch); }
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

// --memory-probe: how fast the first store into fresh anonymous memory runs
// (mmap, MADV_HUGEPAGE like the index's chunks, memset, munmap) when the
// memory was freed a moment ago and when it was freed `idle` seconds
// before. On a VM whose balloon reports free pages to the host (virtio
// free page reporting: the kernel hands back free 2 MiB blocks after about
// 2 s), the second pays for the host backing the pages again.
int MemoryProbe(int runs) {
  constexpr size_t kBytes = 192u << 20;  // about the index of 60,000 records
  auto touch = [] {
    void* p = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) Die("mmap failed");
    ::madvise(p, kBytes, MADV_HUGEPAGE);
    const double t0 = aidb_bench::NowSeconds();
    std::memset(p, 1, kBytes);
    const double s = aidb_bench::NowSeconds() - t0;
    ::munmap(p, kBytes);
    return kBytes / s / 1e9;
  };
  std::printf("# first store into fresh memory (192 MiB, memset), GB/s\n");
  std::printf("%-26s %8s  %s\n", "freed", "median", "per run");
  for (int idle : {0, 1, 3, 5}) {
    std::vector<double> v;
    for (int r = 0; r < runs; ++r) {
      (void)touch();  // the memory the measured touch may reuse
      ::sleep(static_cast<unsigned>(idle));
      v.push_back(touch());
    }
    std::string per;
    char b[32];
    for (double x : v) {
      std::snprintf(b, sizeof b, "%.2f ", x);
      per += b;
    }
    std::snprintf(b, sizeof b, "%d s before", idle);
    std::printf("%-26s %8.2f  %s\n", b, aidb_bench::Median(v), per.c_str());
  }
  return 0;
}

int main(int argc, char** argv) {
  int runs = 3;
  int warmup = 1;
  double budget = 2.0;
  size_t max_records = 60000;
  std::string parent = AIDB_BENCH_DATA_DIR;
  std::vector<std::string> systems = {"aidb", "aidb8", "sqlite", "rocksdb", "raw"};
  std::vector<std::string> modes = {"fsync", "batch", "none"};
  std::vector<size_t> batches = {1, 32, 1000};
  bool sync_probe = false, memory_probe = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--runs") runs = std::atoi(val().c_str());
    else if (a == "--warmup") warmup = std::atoi(val().c_str());
    else if (a == "--seconds") budget = std::atof(val().c_str());
    else if (a == "--records") max_records = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--dir") parent = val();
    else if (a == "--systems") systems = Split(val());
    else if (a == "--sync-probe") sync_probe = true;
    else if (a == "--memory-probe") memory_probe = true;
    else if (a == "--modes") modes = Split(val());
    else if (a == "--batches") {
      batches.clear();
      for (auto& b : Split(val())) batches.push_back(std::strtoull(b.c_str(), nullptr, 10));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--runs N] [--warmup N] [--seconds S] [--records N] [--dir D] "
                   "[--systems aidb,aidb8,sqlite,rocksdb,raw] [--batches 1,32,1000] "
                   "[--modes fsync,batch,none] [--sync-probe] [--memory-probe]\n",
                   argv[0]);
      return 2;
    }
  }
  if (runs < 1 || warmup < 0 || budget <= 0 || max_records == 0) Die("bad arguments");

  const std::string dir = aidb_bench::FreshWorkDir(parent, "aidb_ingest_bench");
  if (dir.empty()) Die("cannot create " + parent + "/aidb_ingest_bench");
  struct statfs fs;
  if (statfs(dir.c_str(), &fs) == 0 && fs.f_type == 0x01021994 /* TMPFS_MAGIC */) {
    std::fprintf(stderr, "warning: %s is on tmpfs: fsync costs nothing there\n", dir.c_str());
  }
  if (memory_probe) return MemoryProbe(runs);
  if (sync_probe) {
    int rc = SyncProbe(dir, runs);
    aidb_bench::RemoveTree(dir);
    return rc;
  }

  const Records recs = aidb_bench::MakeRecords(max_records, AIDB_BENCH_FMNIST_DIR, 42);
  AidbInputs in;
  for (size_t i = 0; i < recs.count; ++i) {
    in.ids.push_back(recs.ids[i].c_str());
    in.payloads.push_back(recs.payloads[i].c_str());
  }
  std::printf("# aidb_ingest_bench: AIDB %s, SQLite %s, RocksDB %d.%d.%d\n", aidb_version(),
              sqlite3_libversion(), ROCKSDB_MAJOR, ROCKSDB_MINOR, ROCKSDB_PATCH);
  std::printf("# records: %s, %zu available, %.0f bytes/record (16 id + %zu vector + payload)\n",
              recs.source.c_str(), recs.count, double(recs.logical_bytes) / recs.count,
              kDim * sizeof(float));
  std::printf(
      "# per run: at most %zu records or %.1f s of writes per configuration; %d runs after "
      "%d warm-up round(s), medians\n",
      max_records, budget, runs, warmup);
  std::printf("# data dir: %s\n", dir.c_str());

  std::vector<Config> configs;
  for (size_t b : batches) {
    if (Has(systems, "aidb")) {
      for (const auto& m : modes) configs.push_back({"aidb", m, b});
    }
    if (b == 1 && Has(systems, "aidb8")) configs.push_back({"aidb8", "fsync", b});
    if (Has(systems, "sqlite")) configs.push_back({"sqlite", "sync", b});
    if (Has(systems, "rocksdb")) configs.push_back({"rocksdb", "sync", b});
    if (Has(systems, "raw")) {
      configs.push_back({"raw", "append", b});
      configs.push_back({"raw", "prealloc", b});
    }
  }

  std::map<std::string, std::vector<double>> rps, mbps, cpu_us;
  std::map<std::string, std::vector<size_t>> counts;
  // Rounds alternate between this order and its reverse, so no
  // configuration always follows the same one. Order matters on a VM: a
  // configuration that needs fresh memory right after one that freed little
  // pays for the host backing it again (bench/README.md, "Fresh memory on
  // this VM"), one after a configuration that freed as much does not.
  // The warm-up rounds (not recorded) come first: the first configurations
  // after start-up would otherwise pay for the memory the records' loading
  // churned through.
  std::printf("# rounds alternate between the order of the table below and its reverse\n");
  for (int run = -warmup; run < runs; ++run) {
    std::vector<Config> order = configs;
    if ((run + warmup) % 2 == 1) std::reverse(order.begin(), order.end());
    for (const Config& c : order) {
      const std::string d = dir + "/run";
      aidb_bench::RemoveTree(d);
      if (!aidb_bench::MakeDirs(d)) Die("cannot create " + d);
      const size_t cap = max_records - max_records % c.batch;
      RunResult r;
      if (c.system == "aidb") {
        int mode;
        if (aidb_durability_from_string(c.mode.c_str(), &mode, nullptr) != AIDB_OK) {
          Die("unknown mode " + c.mode);
        }
        r = RunAidb(recs, in, d, mode, c.batch, cap, budget);
      } else if (c.system == "aidb8") {
        r = RunAidbConcurrent(recs, in, d, AIDB_DURABILITY_FSYNC, 8, cap, budget);
      } else if (c.system == "sqlite") {
        r = RunSqlite(recs, d, c.batch, cap, budget);
      } else if (c.system == "raw") {
        r = RunRaw(recs, d, c.mode == "prealloc", c.batch, cap, budget);
      } else {
        r = RunRocks(recs, d, c.batch, cap, budget);
      }
      aidb_bench::RemoveTree(d);
      std::fprintf(stderr, "%s %d %-22s %7zu records %6.3f s %10.0f rec/s\n",
                   run < 0 ? "warm-up" : "run", run < 0 ? run + warmup + 1 : run + 1,
                   c.key().c_str(), r.records, r.seconds, r.records / r.seconds);
      if (run < 0) continue;
      rps[c.key()].push_back(r.records / r.seconds);
      mbps[c.key()].push_back(r.bytes / r.seconds / 1e6);
      cpu_us[c.key()].push_back(r.records ? r.cpu_seconds * 1e6 / r.records : 0);
      counts[c.key()].push_back(r.records);
    }
  }
  aidb_bench::RemoveTree(dir);

  // CPU us/rec: the process's user + system CPU time over the timed writes
  // per record (all threads, background ones included), median of the runs.
  std::printf("\n%-8s %-8s %6s %12s %9s %10s %9s  %s\n", "system", "mode", "batch", "records/s",
              "MB/s", "CPU us/rec", "records", "records/s per run");
  for (const Config& c : configs) {
    const auto& v = rps[c.key()];
    std::string per;
    for (double x : v) per += std::to_string(static_cast<long long>(x)) + " ";
    std::printf("%-8s %-8s %6zu %12.0f %9.1f %10.2f %9zu  %s\n", c.system.c_str(), c.mode.c_str(),
                c.batch, aidb_bench::Median(v), aidb_bench::Median(mbps[c.key()]),
                aidb_bench::Median(cpu_us[c.key()]), counts[c.key()].back(), per.c_str());
  }

  // The targets (bench/README.md, "Targets"). Configurations run
  // interleaved, so a ratio within one round cancels much of the noise of a
  // shared machine: each ratio is printed per round, as the median of those,
  // and as the ratio of the medians.
  struct Target {
    std::string name;
    std::string num;
    std::vector<std::string> dens;  // the faster of these per round
    double goal;                    // 0: informational
  };
  const std::vector<Target> targets = {
      {"AIDB fsync batch-32 / faster of SQLite, RocksDB batch-32",
       "aidb/fsync/32",
       {"sqlite/sync/32", "rocksdb/sync/32"},
       2.0},
      {"AIDB fsync batch-1000 / raw prealloc batch-1000",
       "aidb/fsync/1000",
       {"raw/prealloc/1000"},
       0.8},
      {"AIDB fsync batch-1000 / raw append batch-1000", "aidb/fsync/1000", {"raw/append/1000"}, 0},
      {"AIDB fsync batch-1000 / AIDB none batch-1000", "aidb/fsync/1000", {"aidb/none/1000"}, 0.8},
      {"AIDB fsync 8 writers / 1 writer (batch 1)", "aidb8/fsync/1", {"aidb/fsync/1"}, 4.0},
  };
  auto med = [&](const std::string& k) {
    auto it = rps.find(k);
    return it == rps.end() ? 0.0 : aidb_bench::Median(it->second);
  };
  std::printf("\n%-58s %8s %8s %-13s  %s\n", "ratio", "median", "of meds", "target", "per round");
  for (const Target& t : targets) {
    auto it = rps.find(t.num);
    if (it == rps.end()) continue;
    std::vector<double> per;
    for (size_t i = 0; i < it->second.size(); ++i) {
      double den = 0;
      for (const auto& d : t.dens) {
        auto jt = rps.find(d);
        if (jt != rps.end() && i < jt->second.size()) den = std::max(den, jt->second[i]);
      }
      if (den > 0) per.push_back(it->second[i] / den);
    }
    if (per.empty()) continue;
    double den_med = 0;
    for (const auto& d : t.dens) den_med = std::max(den_med, med(d));
    std::string rounds;
    char b[32];
    for (double x : per) {
      std::snprintf(b, sizeof b, "%.2f ", x);
      rounds += b;
    }
    const double m = aidb_bench::Median(per);
    std::string goal = "-";
    if (t.goal > 0) {
      std::snprintf(b, sizeof b, ">=%.2f %s", t.goal, m >= t.goal ? "MET" : "MISSED");
      goal = b;
    }
    std::printf("%-58s %7.2fx %7.2fx %-13s  %s\n", t.name.c_str(), m,
                den_med > 0 ? med(t.num) / den_med : 0.0, goal.c_str(), rounds.c_str());
  }
  return 0;
}
