// The in-process side of bench/http: builds the benchmark collection and
// measures search / upsert throughput through the C API with N threads, so
// run.py can compare it with the same work over HTTP (aidbd + wrk).
//
//   aidb_http_bench_inproc build  DIR NAME BASE.f32 DIM INDEX M EF_CONSTRUCTION
//   aidb_http_bench_inproc search DIR NAME QUERIES.f32 DIM THREADS SECONDS TOP_K EF_SEARCH
//   aidb_http_bench_inproc upsert DIR NAME VECTORS.f32 DIM THREADS SECONDS DURABILITY
//
// .f32 files are raw little-endian float32 rows. Results are one JSON line.
#include <aidb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what, int st, char* err) {
  std::fprintf(stderr, "inproc: %s: %s (%s)\n", what.c_str(), err ? err : "", aidb_status_name(st));
  std::exit(1);
}

std::vector<float> ReadF32(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    std::fprintf(stderr, "inproc: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::streamsize n = f.tellg();
  f.seekg(0);
  std::vector<float> v(static_cast<size_t>(n) / sizeof(float));
  f.read(reinterpret_cast<char*>(v.data()), n);
  return v;
}

aidb_db* Open(const std::string& dir, int durability) {
  aidb_db_options o;
  aidb_db_options_init(&o);
  o.durability = durability;
  aidb_db* db = nullptr;
  char* err = nullptr;
  int st = aidb_db_open(dir.c_str(), &o, &db, &err);
  if (st != AIDB_OK) Die("open " + dir, st, err);
  return db;
}

aidb_collection* Coll(aidb_db* db, const std::string& name) {
  aidb_collection* c = nullptr;
  char* err = nullptr;
  int st = aidb_db_open_collection(db, name.c_str(), &c, &err);
  if (st != AIDB_OK) Die("open collection " + name, st, err);
  return c;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

int Build(char** a) {
  std::string dir = a[0], name = a[1];
  std::vector<float> base = ReadF32(a[2]);
  size_t dim = std::strtoul(a[3], nullptr, 10);
  aidb_db* db = Open(dir, AIDB_DURABILITY_NONE);
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = name.c_str();
  o.dim = static_cast<uint32_t>(dim);
  o.metric = AIDB_METRIC_EUCLIDEAN;
  char* err = nullptr;
  int st = aidb_index_kind_from_string(a[4], &o.index_kind, &err);
  if (st != AIDB_OK) Die("index kind", st, err);
  o.hnsw_m = static_cast<uint32_t>(std::strtoul(a[5], nullptr, 10));
  o.hnsw_ef_construction = static_cast<uint32_t>(std::strtoul(a[6], nullptr, 10));
  st = aidb_db_create_collection(db, &o, nullptr, &err);
  if (st != AIDB_OK) Die("create", st, err);
  aidb_collection* c = Coll(db, name);
  size_t n = base.size() / dim;
  auto t0 = Clock::now();
  const size_t kBatch = 1000;
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; i += kBatch) {
    size_t m = std::min(kBatch, n - i);
    ids.assign(m, std::string());
    std::vector<const char*> ptrs(m);
    for (size_t k = 0; k < m; ++k) {
      char id[37];
      aidb_uuid_generate(id);
      ids[k] = id;
      ptrs[k] = ids[k].c_str();
    }
    st = aidb_collection_upsert_batch(c, m, ptrs.data(), base.data() + i * dim, dim, nullptr, &err);
    if (st != AIDB_OK) Die("upsert_batch", st, err);
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  aidb_collection_close(c);
  st = aidb_db_snapshot(db, name.c_str(), nullptr, &err);
  if (st != AIDB_OK) Die("snapshot", st, err);
  aidb_db_close(db);
  std::printf("{\"points\":%zu,\"build_seconds\":%.3f}\n", n, secs);
  return 0;
}

struct Run {
  uint64_t ops = 0;
  std::vector<double> lat_ms;
};

template <typename Op>
void Measure(int threads, double seconds, Op op, const char* what, bool print = true) {
  std::vector<Run> runs(threads);
  std::vector<std::thread> ts;
  std::atomic<bool> go{false};
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      Run& r = runs[t];
      size_t i = static_cast<size_t>(t) * 7919;
      for (;;) {
        auto s = Clock::now();
        if (s >= end) break;
        op(i++);
        auto e = Clock::now();
        r.ops++;
        r.lat_ms.push_back(std::chrono::duration<double, std::milli>(e - s).count());
      }
    });
  }
  t0 = Clock::now();
  end = t0 + std::chrono::duration<double>(seconds);
  go.store(true);
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t ops = 0;
  std::vector<double> lat;
  for (auto& r : runs) {
    ops += r.ops;
    lat.insert(lat.end(), r.lat_ms.begin(), r.lat_ms.end());
  }
  if (!print) return;
  double p50 = Percentile(lat, 0.50), p99 = Percentile(lat, 0.99);
  std::printf(
      "{\"op\":\"%s\",\"threads\":%d,\"seconds\":%.3f,\"ops\":%llu,\"qps\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      what, threads, secs, static_cast<unsigned long long>(ops), static_cast<double>(ops) / secs,
      p50, p99);
}

int Search(char** a) {
  std::string dir = a[0], name = a[1];
  std::vector<float> q = ReadF32(a[2]);
  size_t dim = std::strtoul(a[3], nullptr, 10);
  int threads = std::atoi(a[4]);
  double seconds = std::atof(a[5]);
  uint32_t top_k = static_cast<uint32_t>(std::strtoul(a[6], nullptr, 10));
  uint32_t ef = static_cast<uint32_t>(std::strtoul(a[7], nullptr, 10));
  aidb_db* db = Open(dir, AIDB_DURABILITY_FSYNC);
  aidb_collection* c = Coll(db, name);
  size_t nq = q.size() / dim;
  aidb_search_options o;
  aidb_search_options_init(&o);
  o.top_k = top_k;
  o.ef_search = ef;
  o.with_payload = 1;  // as the HTTP route does by default
  auto search = [&](size_t i) {
    aidb_search_result* r = nullptr;
    char* err = nullptr;
    int st = aidb_collection_search(c, q.data() + (i % nq) * dim, dim, &o, &r, &err);
    if (st != AIDB_OK) Die("search", st, err);
    aidb_search_result_free(r);
  };
  // Warm-up (page cache, mapped snapshot chunks), as run.py does for HTTP.
  Measure(threads, 1.0, search, "warmup", false);
  Measure(threads, seconds, search, "search");
  aidb_collection_close(c);
  aidb_db_close(db);
  return 0;
}

int Upsert(char** a) {
  std::string dir = a[0], name = a[1];
  std::vector<float> v = ReadF32(a[2]);
  size_t dim = std::strtoul(a[3], nullptr, 10);
  int threads = std::atoi(a[4]);
  double seconds = std::atof(a[5]);
  int durability = 0;
  char* err = nullptr;
  int st = aidb_durability_from_string(a[6], &durability, &err);
  if (st != AIDB_OK) Die("durability", st, err);
  aidb_db* db = Open(dir, durability);
  aidb_collection* c = Coll(db, name);
  size_t nv = v.size() / dim;
  Measure(
      threads, seconds,
      [&](size_t i) {
        char id[37];
        aidb_uuid_generate(id);
        char* e = nullptr;
        int s = aidb_collection_upsert(c, id, v.data() + (i % nv) * dim, dim, nullptr, 0, &e);
        if (s != AIDB_OK) Die("upsert", s, e);
      },
      "upsert");
  aidb_collection_close(c);
  aidb_db_close(db);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "build") == 0 && argc == 9) return Build(argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "search") == 0 && argc == 10) return Search(argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "upsert") == 0 && argc == 9) return Upsert(argv + 2);
  std::fprintf(stderr, "usage: see the comment at the top of bench/http/inproc.cc\n");
  return 2;
}
