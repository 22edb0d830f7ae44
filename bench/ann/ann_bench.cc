// ANN benchmark: AIDB's HNSW against hnswlib, same process, same data, same
// parameters (Fashion-MNIST from Debian's dataset-fashion-mnist: 60k base
// images, 10k query images, 784 dims, L2; M=16, ef_construction=200).
//
//   aidb_ann_bench [--repeats N] [--threads-max T] [--efs 10,16,...]
//                  [--reuse] [--skip-build] [--filtered-only] [--no-filtered]
//
// Prints: build time with 1 and 2 threads, memory, recall@10 and QPS per
// ef_search with 1 and 2 threads, the single-thread QPS ratio AIDB/hnswlib at
// the smallest ef reaching recall@10 >= 0.95 and >= 0.99, and a filtered-search
// table (50%, 5%, 0.5% selectivity) against the exact filtered scan. Exact
// ground truth is computed once and cached next to the binary. QPS figures are
// medians of --repeats runs (interleaved AIDB / hnswlib, so a noisy neighbour
// hits both alike). --reuse keeps the 1-thread graphs of both libraries in the
// cache directory between runs (search tuning without rebuilding).
#include <hnswlib/hnswlib.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.h"
#include "core/distance.h"
#include "index/hnsw.h"
#include "storage/snapshot.h"

namespace {

using aidb::index::Hit;
using aidb::index::HnswIndex;
using aidb::index::IndexConfig;
using aidb::index::SearchParams;
using aidb::index::SlotFilter;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kK = 10;
constexpr uint32_t kM = 16;
constexpr uint32_t kEfConstruction = 200;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

using aidb_bench::LoadIdxImages;
using aidb_bench::Matrix;

size_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

using aidb_bench::ParallelFor;

// ---- exact ground truth (cached) ------------------------------------------

std::vector<uint32_t> ExactTopK(const Matrix& base, const Matrix& queries, uint32_t k,
                                unsigned threads) {
  std::vector<uint32_t> gt(static_cast<size_t>(queries.n) * k);
  auto l2 = aidb::distance::L2Squared();
  ParallelFor(0, queries.n, threads, [&](size_t q) {
    std::vector<std::pair<float, uint32_t>> d(base.n);
    for (uint32_t i = 0; i < base.n; ++i) d[i] = {l2(queries.row(q), base.row(i), base.dim), i};
    std::partial_sort(d.begin(), d.begin() + k, d.end());
    for (uint32_t j = 0; j < k; ++j) gt[q * k + j] = d[j].second;
  });
  return gt;
}

std::vector<uint32_t> GroundTruth(const Matrix& base, const Matrix& queries,
                                  const std::string& dir) {
  const std::string path = dir + "/fashion-mnist-l2-top10.gt";
  const uint32_t header[4] = {0x41475431u, base.n, queries.n, kK};
  std::vector<uint32_t> gt(static_cast<size_t>(queries.n) * kK);
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    uint32_t h[4];
    bool ok = std::fread(h, sizeof h, 1, f) == 1 && std::memcmp(h, header, sizeof h) == 0 &&
              std::fread(gt.data(), sizeof(uint32_t), gt.size(), f) == gt.size();
    std::fclose(f);
    if (ok) {
      std::printf("ground truth: cached %s\n", path.c_str());
      return gt;
    }
  }
  auto t0 = Clock::now();
  gt = ExactTopK(base, queries, kK, std::max(1u, std::thread::hardware_concurrency()));
  std::printf("ground truth: computed in %.1f s, cached in %s\n", Seconds(t0, Clock::now()),
              path.c_str());
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(header, sizeof header, 1, f);
    std::fwrite(gt.data(), sizeof(uint32_t), gt.size(), f);
    std::fclose(f);
  }
  return gt;
}

// ---- the two engines behind one face --------------------------------------

struct Engine {
  virtual ~Engine() = default;
  virtual const char* name() const = 0;
  // Top-10 ids of query q with this ef into out.
  virtual void Search(const float* q, uint32_t ef, uint32_t* out) = 0;
};

struct AidbEngine : Engine {
  std::unique_ptr<HnswIndex> idx;
  const char* name() const override { return "AIDB"; }
  void Search(const float* q, uint32_t ef, uint32_t* out) override {
    thread_local std::vector<Hit> hits;
    SearchParams p;
    p.k = kK;
    p.ef = ef;
    (void)idx->Search(q, p, &hits);
    for (uint32_t i = 0; i < kK; ++i) out[i] = i < hits.size() ? hits[i].slot : ~0u;
  }
};

struct HnswlibEngine : Engine {
  std::unique_ptr<hnswlib::L2Space> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> idx;
  const char* name() const override { return "hnswlib"; }
  void Search(const float* q, uint32_t ef, uint32_t* out) override {
    // hnswlib's ef is index-wide: every call here uses the same ef at a time.
    auto pq = idx->searchKnn(q, kK);
    uint32_t n = static_cast<uint32_t>(pq.size());
    for (uint32_t i = n; i < kK; ++i) out[i] = ~0u;
    while (!pq.empty()) {
      out[--n] = static_cast<uint32_t>(pq.top().second);
      pq.pop();
    }
  }
};

IndexConfig AidbConfig(uint32_t dim) {
  IndexConfig c;
  c.dim = dim;
  c.metric = aidb::Metric::kEuclidean;
  c.kind = aidb::index::IndexKind::kHnsw;
  c.hnsw.m = kM;
  c.hnsw.ef_construction = kEfConstruction;
  return c;
}

std::unique_ptr<AidbEngine> BuildAidb(const Matrix& base, unsigned threads, double* secs,
                                      bool sq8 = true) {
  auto e = std::make_unique<AidbEngine>();
  aidb::index::HnswTuning tuning;
  tuning.sq8 = sq8;
  e->idx = std::make_unique<HnswIndex>(AidbConfig(base.dim), tuning);
  std::vector<uint32_t> slots(base.n);
  auto t0 = Clock::now();
  aidb::Status st = e->idx->AddBatch(base.v.data(), base.n, slots.data(), threads);
  *secs = Seconds(t0, Clock::now());
  if (!st.ok()) {
    std::fprintf(stderr, "AIDB build failed: %s\n", st.ToString().c_str());
    std::exit(1);
  }
  for (uint32_t i = 0; i < base.n; ++i)
    if (slots[i] != i) {
      std::fprintf(stderr, "unexpected slot order\n");
      std::exit(1);
    }
  return e;
}

std::unique_ptr<HnswlibEngine> BuildHnswlib(const Matrix& base, unsigned threads, double* secs) {
  auto e = std::make_unique<HnswlibEngine>();
  e->space = std::make_unique<hnswlib::L2Space>(base.dim);
  auto t0 = Clock::now();
  e->idx = std::make_unique<hnswlib::HierarchicalNSW<float>>(e->space.get(), base.n, kM,
                                                             kEfConstruction, 100);
  e->idx->addPoint(base.row(0), 0);
  ParallelFor(1, base.n, threads, [&](size_t i) { e->idx->addPoint(base.row(i), i); });
  *secs = Seconds(t0, Clock::now());
  return e;
}

bool SaveAidb(const AidbEngine& e, const std::string& path) {
  aidb::SnapshotMeta meta;
  meta.config.name = "ann";
  meta.config.index = e.idx->config();
  meta.slot_limit = e.idx->SlotLimit();
  meta.count = e.idx->Size();
  aidb::storage::SnapshotWriter w;
  return w.SetCollection(meta, {}, {}).ok() &&
         e.idx->Save([&](const aidb::IndexImage& image) { return w.SetIndex(image); }).ok() &&
         w.WriteFile(path).ok();
}

std::unique_ptr<AidbEngine> LoadAidb(uint32_t dim, const std::string& path) {
  std::unique_ptr<aidb::storage::SnapshotFile> file;
  if (!aidb::storage::SnapshotFile::Open(path, &file).ok()) return nullptr;
  auto e = std::make_unique<AidbEngine>();
  e->idx = std::make_unique<HnswIndex>(AidbConfig(dim));
  if (!e->idx->Load(file->image(), file->keepalive()).ok()) return nullptr;
  return e;
}

// ---- measurements -----------------------------------------------------------

struct RunResult {
  double qps;  // queries per wall-clock second
  double recall;
  double cpu_qps;  // queries per CPU second of the searching threads
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

RunResult RunQueries(Engine& e, const Matrix& queries, const std::vector<uint32_t>& gt, uint32_t ef,
                     unsigned threads) {
  std::vector<uint32_t> got(static_cast<size_t>(queries.n) * kK);
  std::atomic<double> cpu{0};
  auto t0 = Clock::now();
  if (threads <= 1) {
    double c0 = ThreadCpuSeconds();
    for (uint32_t q = 0; q < queries.n; ++q) e.Search(queries.row(q), ef, &got[q * kK]);
    cpu = ThreadCpuSeconds() - c0;
  } else {
    // Contiguous shares, no shared counter on the hot path.
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        double c0 = ThreadCpuSeconds();
        size_t b = queries.n * static_cast<size_t>(t) / threads;
        size_t end = queries.n * static_cast<size_t>(t + 1) / threads;
        for (size_t q = b; q < end; ++q) e.Search(queries.row(q), ef, &got[q * kK]);
        double c = ThreadCpuSeconds() - c0, cur = cpu.load();
        while (!cpu.compare_exchange_weak(cur, cur + c)) {
        }
      });
    }
    for (auto& t : pool) t.join();
  }
  double secs = Seconds(t0, Clock::now());
  size_t hit = 0;
  for (uint32_t q = 0; q < queries.n; ++q)
    for (uint32_t i = 0; i < kK; ++i)
      for (uint32_t j = 0; j < kK; ++j) hit += got[q * kK + i] == gt[q * kK + j];
  return {queries.n / secs, static_cast<double>(hit) / (static_cast<double>(queries.n) * kK),
          queries.n / cpu.load()};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A random subset of slots (hash of the slot), with an exact count and a
// list: what a payload index gives the collection.
class SubsetFilter : public SlotFilter {
 public:
  SubsetFilter(uint32_t n, double fraction) : allowed_(n, 0) {
    for (uint32_t s = 0; s < n; ++s) {
      uint64_t h = (s + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
      if (static_cast<double>(h % 1000000) < fraction * 1e6) {
        allowed_[s] = 1;
        list_.push_back(s);
      }
    }
  }
  bool Allowed(uint32_t slot) const override { return slot < allowed_.size() && allowed_[slot]; }
  int64_t EstimatedMatches() const override { return static_cast<int64_t>(list_.size()); }
  bool ListMatches(std::vector<uint32_t>* out) const override {
    *out = list_;
    return true;
  }
  size_t matches() const { return list_.size(); }

 private:
  std::vector<uint8_t> allowed_;
  std::vector<uint32_t> list_;
};

std::vector<uint32_t> ParseList(const char* s) {
  std::vector<uint32_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(static_cast<uint32_t>(std::stoul(item)));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 3;
  bool reuse = false, skip_build = false, filtered_only = false, filtered = true, with_float = true;
  unsigned max_threads = 2;
  std::vector<uint32_t> efs = {10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256};
  std::string data_dir = AIDB_ANN_DATA_DIR, cache_dir = AIDB_ANN_CACHE_DIR;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (a == "--threads-max" && i + 1 < argc) max_threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--efs" && i + 1 < argc) efs = ParseList(argv[++i]);
    else if (a == "--reuse") reuse = true;
    else if (a == "--skip-build") skip_build = true;
    else if (a == "--filtered-only") filtered_only = true;
    else if (a == "--no-filtered") filtered = false;
    else if (a == "--no-float") with_float = false;
    else if (a == "--data-dir" && i + 1 < argc) data_dir = argv[++i];
    else if (a == "--cache-dir" && i + 1 < argc) cache_dir = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--repeats N] [--threads-max T] [--efs a,b,c] [--reuse] "
                   "[--skip-build] [--filtered-only] [--no-filtered] [--no-float] [--data-dir D] "
                   "[--cache-dir D]\n",
                   argv[0]);
      return 2;
    }
  }

  Matrix base, queries;
  if (!LoadIdxImages(data_dir + "/train-images-idx3-ubyte.gz", &base) ||
      !LoadIdxImages(data_dir + "/t10k-images-idx3-ubyte.gz", &queries))
    return 1;
  std::printf("Fashion-MNIST: %u base x %u queries, dim %u, L2, M=%u, ef_construction=%u\n", base.n,
              queries.n, base.dim, kM, kEfConstruction);
  std::printf("AIDB kernels: %s; hardware threads: %u; QPS = median of %d runs\n",
              aidb::distance::KernelName(), std::thread::hardware_concurrency(), repeats);
  std::vector<uint32_t> gt = GroundTruth(base, queries, cache_dir);

  // ---- build: memory and time with 1 thread (graphs kept for the sweep) ----
  const std::string aidb_cache = cache_dir + "/aidb-fmnist-m16-efc200.snap";
  const std::string hnswlib_cache = cache_dir + "/hnswlib-fmnist-m16-efc200.bin";
  std::unique_ptr<AidbEngine> aidb_e;
  std::unique_ptr<HnswlibEngine> hnsw_e;
  double aidb_t1 = -1, hnsw_t1 = -1, aidb_t2 = -1, hnsw_t2 = -1;
  size_t rss0 = RssBytes();
  if (reuse) aidb_e = LoadAidb(base.dim, aidb_cache);
  if (!aidb_e) {
    aidb_e = BuildAidb(base, 1, &aidb_t1);
    if (reuse) SaveAidb(*aidb_e, aidb_cache);
  }
  size_t aidb_rss = RssBytes() - rss0;
  size_t rss1 = RssBytes();
  FILE* hf = reuse ? std::fopen(hnswlib_cache.c_str(), "rb") : nullptr;
  if (hf != nullptr) {
    std::fclose(hf);
    hnsw_e = std::make_unique<HnswlibEngine>();
    hnsw_e->space = std::make_unique<hnswlib::L2Space>(base.dim);
    hnsw_e->idx =
        std::make_unique<hnswlib::HierarchicalNSW<float>>(hnsw_e->space.get(), hnswlib_cache);
  }
  if (!hnsw_e) {
    hnsw_e = BuildHnswlib(base, 1, &hnsw_t1);
    if (reuse) hnsw_e->idx->saveIndex(hnswlib_cache);
  }
  size_t hnsw_rss = RssBytes() - rss1;
  // AIDB with the float walk (HnswTuning::sq8 = false): the memory-lean mode.
  std::unique_ptr<AidbEngine> aidbf_e;
  double aidbf_t1 = -1;
  size_t aidbf_rss = 0;
  if (!filtered_only && with_float) {
    size_t r = RssBytes();
    aidbf_e = BuildAidb(base, 1, &aidbf_t1, /*sq8=*/false);
    aidbf_rss = RssBytes() - r;
  }
  if (!skip_build && !filtered_only && max_threads >= 2) {
    double t;
    BuildAidb(base, 2, &t);
    aidb_t2 = t;
    BuildHnswlib(base, 2, &t);
    hnsw_t2 = t;
  }
  auto fmt_t = [](double t) {
    char b[32];
    if (t < 0) return std::string("(reused)");
    std::snprintf(b, sizeof b, "%.1f s", t);
    return std::string(b);
  };
  if (!filtered_only) {
    std::printf("\n| | AIDB | hnswlib | AIDB / hnswlib |\n|---|---|---|---|\n");
    if (aidb_t1 > 0 && hnsw_t1 > 0)
      std::printf("| build, 1 thread | %s | %s | %.2f |\n", fmt_t(aidb_t1).c_str(),
                  fmt_t(hnsw_t1).c_str(), aidb_t1 / hnsw_t1);
    if (aidb_t2 > 0)
      std::printf("| build, 2 threads | %s | %s | %.2f |\n", fmt_t(aidb_t2).c_str(),
                  fmt_t(hnsw_t2).c_str(), aidb_t2 / hnsw_t2);
    std::printf("| memory (RSS growth of the build) | %.1f MiB | %.1f MiB | %.2f |\n",
                aidb_rss / 1048576.0, hnsw_rss / 1048576.0,
                static_cast<double>(aidb_rss) / static_cast<double>(hnsw_rss));
    std::printf("| memory (AIDB's own accounting) | %.1f MiB | | |\n",
                aidb_e->idx->MemoryBytes() / 1048576.0);
    if (aidbf_e) {
      std::printf("| AIDB float walk (sq8 off): build, 1 thread | %s | %s | %.2f |\n",
                  fmt_t(aidbf_t1).c_str(), fmt_t(hnsw_t1).c_str(),
                  hnsw_t1 > 0 ? aidbf_t1 / hnsw_t1 : 0.0);
      std::printf("| AIDB float walk (sq8 off): memory | %.1f MiB | %.1f MiB | %.2f |\n",
                  aidbf_rss / 1048576.0, hnsw_rss / 1048576.0,
                  static_cast<double>(aidbf_rss) / static_cast<double>(hnsw_rss));
    }

    // ---- ef sweep ----
    std::printf(
        "\n| ef | AIDB recall@10 | hnswlib recall@10 | AIDB QPS 1t | hnswlib QPS 1t | "
        "ratio 1t | AIDB QPS 2t | hnswlib QPS 2t | ratio 2t | AIDB QPS/CPU-s 1t | "
        "hnswlib QPS/CPU-s 1t | ratio | AIDB float walk recall@10 | AIDB float walk QPS 1t |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    struct Row {
      uint32_t ef;
      double ar, hr, aq1, hq1, aq2, hq2, ac1, hc1, fr, fq1;
    };
    std::vector<Row> rows;
    for (uint32_t ef : efs) {
      hnsw_e->idx->setEf(ef);
      std::vector<double> a1, h1, a2, h2, ac, hc, f1;
      Row row{ef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
      for (int r = 0; r < repeats; ++r) {
        RunResult ra = RunQueries(*aidb_e, queries, gt, ef, 1);
        RunResult rh = RunQueries(*hnsw_e, queries, gt, ef, 1);
        a1.push_back(ra.qps);
        h1.push_back(rh.qps);
        ac.push_back(ra.cpu_qps);
        hc.push_back(rh.cpu_qps);
        row.ar = ra.recall;
        row.hr = rh.recall;
        if (aidbf_e) {
          RunResult rf = RunQueries(*aidbf_e, queries, gt, ef, 1);
          f1.push_back(rf.qps);
          row.fr = rf.recall;
        }
        if (max_threads >= 2) {
          a2.push_back(RunQueries(*aidb_e, queries, gt, ef, 2).qps);
          h2.push_back(RunQueries(*hnsw_e, queries, gt, ef, 2).qps);
        }
      }
      row.aq1 = Median(a1);
      row.hq1 = Median(h1);
      row.ac1 = Median(ac);
      row.hc1 = Median(hc);
      if (!f1.empty()) row.fq1 = Median(f1);
      if (max_threads >= 2) {
        row.aq2 = Median(a2);
        row.hq2 = Median(h2);
      }
      rows.push_back(row);
      std::printf(
          "| %u | %.4f | %.4f | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.4f | %.0f |\n",
          ef, row.ar, row.hr, row.aq1, row.hq1, row.aq1 / row.hq1, row.aq2, row.hq2,
          row.hq2 > 0 ? row.aq2 / row.hq2 : 0.0, row.ac1, row.hc1, row.ac1 / row.hc1, row.fr,
          row.fq1);
      std::fflush(stdout);
    }
    std::printf("\n");
    for (double target : {0.95, 0.99}) {
      const Row* ra = nullptr;
      const Row* rh = nullptr;
      for (const Row& r : rows) {
        if (!ra && r.ar >= target) ra = &r;
        if (!rh && r.hr >= target) rh = &r;
      }
      if (ra && rh)
        std::printf(
            "recall@10 >= %.2f: AIDB ef=%u %.0f QPS, hnswlib ef=%u %.0f QPS, "
            "single-thread QPS ratio AIDB/hnswlib = %.2f (per CPU second: %.2f)\n",
            target, ra->ef, ra->aq1, rh->ef, rh->hq1, ra->aq1 / rh->hq1, ra->ac1 / rh->hc1);
      else
        std::printf("recall@10 >= %.2f: not reached by %s in this ef sweep\n", target,
                    ra ? "hnswlib" : "AIDB");
    }
  }

  // ---- filtered search ----
  if (filtered || filtered_only) {
    const uint32_t nq = std::min<uint32_t>(queries.n, 2000);
    std::printf(
        "\nFiltered top-10 (%u queries, random subsets given with exact counts and "
        "lists, AIDB default ef), against AIDB's exact filtered scan:\n\n",
        nq);
    std::printf(
        "| selectivity | matches | path | recall@10 | QPS 1t | exact scan QPS 1t | speed-up |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (double frac : {0.5, 0.2, 0.05, 0.005}) {
      SubsetFilter f(base.n, frac);
      std::vector<std::vector<Hit>> truth(nq), got(nq);
      std::vector<double> tq, gq;
      for (int r = 0; r < repeats; ++r) {
        auto t0 = Clock::now();
        for (uint32_t q = 0; q < nq; ++q) {
          SearchParams p;
          p.k = kK;
          p.filter = &f;
          p.exact = true;
          (void)aidb_e->idx->Search(queries.row(q), p, &truth[q]);
        }
        tq.push_back(nq / Seconds(t0, Clock::now()));
        t0 = Clock::now();
        for (uint32_t q = 0; q < nq; ++q) {
          SearchParams p;
          p.k = kK;
          p.filter = &f;
          (void)aidb_e->idx->Search(queries.row(q), p, &got[q]);
        }
        gq.push_back(nq / Seconds(t0, Clock::now()));
      }
      size_t hit = 0, total = 0;
      for (uint32_t q = 0; q < nq; ++q) {
        total += truth[q].size();
        for (const Hit& a : got[q])
          for (const Hit& b : truth[q]) hit += a.slot == b.slot;
      }
      bool exact_path = aidb_e->idx->PrefersExactScan(static_cast<int64_t>(f.matches()), kK, 0);
      std::printf("| %.1f%% | %zu | %s | %.4f | %.0f | %.0f | %.2f |\n", frac * 100, f.matches(),
                  exact_path ? "exact scan of the list" : "filtered graph walk",
                  total ? static_cast<double>(hit) / total : 1.0, Median(gq), Median(tq),
                  Median(gq) / Median(tq));
    }
  }
  return 0;
}
