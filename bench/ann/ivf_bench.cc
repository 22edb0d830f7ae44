// IVF benchmark: AIDB's IvfIndex (k-means partitions, 4-bit fast-scan codes,
// exact re-rank) on Fashion-MNIST (Debian dataset-fashion-mnist: 60k x 784,
// L2) or a generated clustered set, one search thread. The peers (ScaNN,
// FAISS, USearch from PyPI) run on the same exported data through
// bench/ann/ivf_peers.py; bench/ann/run_ivf_bench.sh runs both.
//
//   aidb_ivf_bench [--data fmnist|clustered] [--n N] [--dim D] [--nq Q]
//                  [--metric cosine|euclidean|dot] [--centres C] [--seed S]
//                  [--nprobe 4,8,...] [--rerank R,...] [--threads T]
//                  [--sub-dim 1|2|4] [--export DIR] [--no-filtered] [--no-snapshot]
//                  [--vectors-on-disk] [--gt FILE]
//
// Prints build time (insert + training), memory (index bytes and RSS
// growth; anonymous RSS growth, which with --vectors-on-disk leaves out the
// float vectors: they live in a file in /tmp mapped from the page cache),
// then recall@10 and single-thread QPS per (nprobe, rerank), the
// best QPS at recall >= 0.95 and >= 0.99, filtered search at 50%, 5%, 0.5%
// selectivity against the exact filtered scan (QPS: best of --repeats), and recall after a snapshot
// round trip. QPS are queries per second of the search thread's CPU time
// (and of wall time), best of --repeats, for Search one query at a time and
// for SearchBatch over all queries (which must give the same hits). --export writes base.f32,
// queries.f32 (row-major float32), gt.u32 (top-10 slots per query) and meta.txt for the peers.
// --gt FILE takes the ground truth from an earlier --export of the same data
// (same flags and seed) instead of the exact scans (minutes at 768 dims).
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.h"
#include "core/distance.h"
#include "core/uuid.h"
#include "index/ivf.h"
#include "index/ivf_kernels.h"
#include "storage/snapshot.h"

namespace {

using aidb::Metric;
using aidb::index::Hit;
using aidb::index::IndexConfig;
using aidb::index::IvfIndex;
using aidb::index::SearchParams;
using aidb::index::SlotFilter;
using Clock = std::chrono::steady_clock;
constexpr uint32_t kK = 10;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// This thread's CPU time: searches run on one thread, and on a shared
// machine wall time measures the neighbours (the peers' script does the same
// with the process CPU time).
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// The process's CPU time (user + system, every thread): the build's work,
// which unlike its wall clock does not grow with the machine's load.
double ProcessCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a;
  std::getline(f, a);
  return a.substr(0, a.find(' '));
}

using aidb_bench::LoadIdxImages;
using aidb_bench::Matrix;

// n + nq points around `centres` Gaussian centres (unit variance per
// dimension), spread `spread` around them; the first n are the base.
void Clustered(size_t n, size_t nq, uint32_t dim, uint32_t centres, uint32_t seed, float spread,
               Matrix* base, Matrix* queries) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> c(static_cast<size_t>(centres) * dim);
  for (auto& x : c) x = nd(rng);
  std::uniform_int_distribution<uint32_t> pick(0, centres - 1);
  for (Matrix* m : {base, queries}) {
    const size_t cnt = m == base ? n : nq;
    m->n = static_cast<uint32_t>(cnt);
    m->dim = dim;
    m->v.resize(cnt * dim);
    for (size_t i = 0; i < cnt; ++i) {
      const float* ci = c.data() + static_cast<size_t>(pick(rng)) * dim;
      for (uint32_t j = 0; j < dim; ++j) m->v[i * dim + j] = ci[j] + spread * nd(rng);
    }
  }
}

size_t StatusBytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t len = std::strlen(key);
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(len)) * 1024;
  return 0;
}
size_t RssBytes() { return StatusBytes("VmRSS:"); }
size_t RssAnonBytes() { return StatusBytes("RssAnon:"); }

void ParallelFor(size_t n, unsigned threads, const std::function<void(size_t)>& fn) {
  aidb_bench::ParallelFor(0, n, threads, fn);
}

// Exact top-k slots per query, by the index's own exact scan.
std::vector<uint32_t> GroundTruth(const IvfIndex& idx, const Matrix& q, unsigned threads,
                                  const SlotFilter* f = nullptr) {
  std::vector<uint32_t> gt(static_cast<size_t>(q.n) * kK, UINT32_MAX);
  ParallelFor(q.n, threads, [&](size_t i) {
    SearchParams p;
    p.k = kK;
    p.exact = true;
    p.filter = f;
    std::vector<Hit> out;
    (void)idx.Search(q.row(i), p, &out);
    for (size_t j = 0; j < out.size(); ++j) gt[i * kK + j] = out[j].slot;
  });
  return gt;
}

double RecallOf(const std::vector<std::vector<Hit>>& got, const std::vector<uint32_t>& gt) {
  double sum = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    std::set<uint32_t> t;
    for (uint32_t j = 0; j < kK; ++j)
      if (gt[i * kK + j] != UINT32_MAX) t.insert(gt[i * kK + j]);
    size_t hit = 0;
    for (const Hit& h : got[i]) hit += t.count(h.slot);
    sum += t.empty() ? 1.0 : static_cast<double>(hit) / t.size();
  }
  return sum / got.size();
}

struct Run {
  double recall = 0, qps = 0, wall_qps = 0;
  std::vector<std::vector<Hit>> got;
};

// One query at a time through Search, or (batch) all of them through
// SearchBatch in one call (each list scanned once for the queries probing
// it), on this thread.
Run RunQueries(const IvfIndex& idx, const Matrix& q, const std::vector<uint32_t>& gt,
               SearchParams p, int repeats, bool batch = false) {
  Run run;
  run.got.resize(q.n);
  for (int r = 0; r < repeats; ++r) {
    const double t0 = CpuSeconds();
    const auto w0 = Clock::now();
    if (batch) {
      (void)idx.SearchBatch(q.row(0), q.n, p, &run.got);
    } else {
      for (uint32_t i = 0; i < q.n; ++i) (void)idx.Search(q.row(i), p, &run.got[i]);
    }
    // Best of the repeats: the machine may be shared (the peers' script
    // does the same).
    run.qps = std::max(run.qps, q.n / std::max(CpuSeconds() - t0, 1e-9));
    run.wall_qps = std::max(run.wall_qps, q.n / std::max(Seconds(w0, Clock::now()), 1e-9));
  }
  run.recall = RecallOf(run.got, gt);
  return run;
}

bool SameHits(const std::vector<std::vector<Hit>>& a, const std::vector<std::vector<Hit>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (size_t j = 0; j < a[i].size(); ++j)
      if (a[i][j].slot != b[i][j].slot || a[i][j].score != b[i][j].score) return false;
  }
  return true;
}

// Slots with slot % mod == 0, counted and listed as a payload index would.
class ModFilter final : public SlotFilter {
 public:
  ModFilter(uint32_t mod, uint32_t limit) : mod_(mod), limit_(limit) {}
  bool Allowed(uint32_t s) const override { return s % mod_ == 0; }
  int64_t EstimatedMatches() const override { return (limit_ + mod_ - 1) / mod_; }
  bool ListMatches(std::vector<uint32_t>* out) const override {
    out->clear();
    for (uint32_t s = 0; s < limit_; s += mod_) out->push_back(s);
    return true;
  }

 private:
  uint32_t mod_, limit_;
};

std::vector<uint32_t> ParseList(const std::string& s) {
  std::vector<uint32_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(static_cast<uint32_t>(std::stoul(item)));
  return v;
}

void WriteFile(const std::string& path, const void* data, size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "clustered", metric_name = "cosine", export_dir, gt_file;
  size_t n = 100000, nq = 1000;
  uint32_t dim = 128, centres = 1000, seed = 42, threads = 2;
  int repeats = 3;
  float spread = 0.5f;
  std::vector<uint32_t> nprobes = {4, 8, 12, 16, 24, 32, 48, 64};
  std::vector<uint32_t> reranks = {0};
  bool filtered = true, snapshot = true, on_disk = false, single = true, build_only = false;
  aidb::index::IvfTuning tuning;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--data") data = next();
    else if (a == "--n") n = std::stoull(next());
    else if (a == "--nq") nq = std::stoull(next());
    else if (a == "--dim") dim = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--centres") centres = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--spread") spread = std::stof(next());
    else if (a == "--seed") seed = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--metric") metric_name = next();
    else if (a == "--nprobe") nprobes = ParseList(next());
    else if (a == "--rerank") reranks = ParseList(next());
    else if (a == "--threads") threads = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--repeats") repeats = std::stoi(next());
    else if (a == "--export") export_dir = next();
    else if (a == "--gt") gt_file = next();
    else if (a == "--sample-per-list")
      tuning.sample_per_list = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--refine") tuning.refine_passes = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--iters") tuning.kmeans_iters = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--sub-dim") tuning.sub_dim = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--no-filtered") filtered = false;
    else if (a == "--no-snapshot") snapshot = false;
    else if (a == "--no-single") single = false;  // SearchBatch only, no defaults (profiling)
    else if (a == "--vectors-on-disk") on_disk = true;
    else if (a == "--build-only") build_only = true;  // build, print, exit
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  Matrix base, queries;
  Metric metric = metric_name == "euclidean" || metric_name == "l2" ? Metric::kEuclidean
                  : metric_name == "dot"                            ? Metric::kDot
                                                                    : Metric::kCosine;
  if (data == "fmnist") {
    if (!LoadIdxImages("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &base) ||
        !LoadIdxImages("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &queries))
      return 1;
    queries.n = static_cast<uint32_t>(std::min<size_t>(queries.n, nq));
    queries.v.resize(static_cast<size_t>(queries.n) * queries.dim);
    metric = Metric::kEuclidean;
    metric_name = "euclidean";
  } else {
    Clustered(n, nq, dim, centres, seed, spread, &base, &queries);
  }
  std::printf("data %s: %u x %u, %u queries, %s; fast-scan kernel %s, distance kernel %s\n",
              data.c_str(), base.n, base.dim, queries.n, metric_name.c_str(),
              aidb::index::pq4::ScanName(), aidb::distance::KernelName());

  IndexConfig cfg;
  cfg.dim = base.dim;
  cfg.metric = metric;
  cfg.kind = aidb::IndexKind::kIvf;
  cfg.vectors_on_disk = on_disk;
  const std::string vpath = "/tmp/aidb_ivf_bench_" + std::to_string(getpid()) + ".vectors";
  std::unique_ptr<aidb::index::VectorFile> vfile;
  if (on_disk && !aidb::index::VectorFile::Create(vpath, &vfile).ok()) {
    std::fprintf(stderr, "cannot create %s\n", vpath.c_str());
    return 1;
  }
  const size_t rss0 = RssBytes(), anon0 = RssAnonBytes();
  auto idx = std::make_unique<IvfIndex>(cfg, tuning, std::move(vfile));
  std::vector<uint32_t> slots(base.n);
  auto t0 = Clock::now();
  const double c0 = ProcessCpuSeconds();
  // One batch: the first training runs inline on it; WaitIdle covers any
  // background rebuild.
  (void)idx->AddBatch(base.v.data(), base.n, slots.data(), threads);
  if (!idx->Trained()) (void)idx->Train();
  idx->WaitIdle();
  const double build_s = Seconds(t0, Clock::now());
  const double build_cpu = ProcessCpuSeconds() - c0;
  const size_t rss = RssBytes() - rss0, anon = RssAnonBytes() - anon0;
  std::printf(
      "build (insert + train, %u threads): %.2f s wall, %.2f CPU s (load %s); nlist %u, %u "
      "subspaces; index %.1f MiB, RSS growth %.1f MiB, anonymous %.1f MiB (vectors alone %.1f "
      "MiB%s)\n",
      threads, build_s, build_cpu, LoadAverage().c_str(), idx->Nlist(), idx->Subspaces(),
      idx->MemoryBytes() / 1048576.0, rss / 1048576.0, anon / 1048576.0,
      base.v.size() * 4.0 / 1048576.0, on_disk ? ", in the vectors file" : "");

  {
    const auto mp = idx->MemoryBreakdown();
    const double per = 1.0 / std::max<size_t>(idx->Size(), 1);
    std::printf(
        "index bytes per point: vectors %.1f, codes %.1f, list slots %.1f, extra %.1f, slot maps "
        "%.1f, model %.2f, spare list capacity %.1f\n",
        mp.vectors * per, mp.codes * per, mp.list_slots * per, mp.extra * per, mp.slot_maps * per,
        mp.model * per, mp.spare * per);
    std::printf(
        "after training: %llu of %llu vectors searched for their list (the k-means "
        "sample kept its lists)\n",
        static_cast<unsigned long long>(idx->LastRebuildSearched()),
        static_cast<unsigned long long>(idx->Size()));
  }
  if (build_only) return 0;
  auto tg = Clock::now();
  std::vector<uint32_t> gt;
  if (gt_file.empty()) {
    gt = GroundTruth(*idx, queries, threads);
  } else {
    gt.resize(static_cast<size_t>(queries.n) * kK);
    std::ifstream f(gt_file, std::ios::binary);
    if (!f.read(reinterpret_cast<char*>(gt.data()), static_cast<std::streamsize>(gt.size() * 4))) {
      std::fprintf(stderr, "cannot read %zu queries' ground truth from %s\n",
                   static_cast<size_t>(queries.n), gt_file.c_str());
      return 1;
    }
  }
  std::printf("ground truth: %.1f s%s\n", Seconds(tg, Clock::now()),
              gt_file.empty() ? "" : (" (read from " + gt_file + ")").c_str());
  if (!export_dir.empty()) {
    WriteFile(export_dir + "/base.f32", base.v.data(), base.v.size() * 4);
    WriteFile(export_dir + "/queries.f32", queries.v.data(), queries.v.size() * 4);
    WriteFile(export_dir + "/gt.u32", gt.data(), gt.size() * 4);
    std::ofstream m(export_dir + "/meta.txt");
    m << base.n << " " << queries.n << " " << base.dim << " " << metric_name << "\n";
    std::ofstream r(export_dir + "/aidb.txt");
    r << "build_s " << build_s << "\nbuild_cpu_s " << build_cpu << "\nrss_mib " << rss / 1048576.0
      << "\n";
  }

  std::printf(
      "\n| nprobe | rerank | recall@10 | QPS (Search, 1 thread, CPU) | wall | QPS (SearchBatch, "
      "CPU) | wall |\n|---|---|---|---|---|---|---|\n");
  double best95 = 0, best99 = 0, bbest95 = 0, bbest99 = 0;
  std::string at95, at99, bat95, bat99;
  std::ofstream sweep;
  if (!export_dir.empty()) sweep.open(export_dir + "/aidb_sweep.txt");
  bool identical = true;
  for (uint32_t rr : reranks) {
    for (uint32_t np : nprobes) {
      SearchParams p;
      p.k = kK;
      p.ef = np;
      p.rerank = rr;
      Run b = RunQueries(*idx, queries, gt, p, repeats, /*batch=*/true);
      Run r = single ? RunQueries(*idx, queries, gt, p, repeats) : b;
      const bool same = SameHits(r.got, b.got);
      identical = identical && same;
      std::printf("| %u | %u | %.4f | %.0f | %.0f | %.0f | %.0f |%s\n", np,
                  idx->EffectiveRerank(kK, rr), r.recall, r.qps, r.wall_qps, b.qps, b.wall_qps,
                  same ? "" : " (batch hits DIFFER)");
      if (sweep) sweep << np << " " << rr << " " << r.recall << " " << r.qps << "\n";
      std::string what = "nprobe=" + std::to_string(np) +
                         " rerank=" + std::to_string(idx->EffectiveRerank(kK, rr));
      if (r.recall >= 0.95 && r.qps > best95) best95 = r.qps, at95 = what;
      if (r.recall >= 0.99 && r.qps > best99) best99 = r.qps, at99 = what;
      if (b.recall >= 0.95 && b.qps > bbest95) bbest95 = b.qps, bat95 = what;
      if (b.recall >= 0.99 && b.qps > bbest99) bbest99 = b.qps, bat99 = what;
    }
  }
  std::printf("batch hits %s single-query hits at every point\n",
              identical ? "identical to the" : "NOT identical to the");
  std::printf("batch (SearchBatch) best QPS at recall >= 0.95: %.0f (%s); >= 0.99: %.0f (%s)\n",
              bbest95, bat95.c_str(), bbest99, bat99.c_str());
  if (single) {
    Run r = RunQueries(*idx, queries, gt, SearchParams{}, repeats);
    std::printf("defaults (nprobe %u, rerank %u): recall@10 %.4f, %.0f QPS\n",
                idx->EffectiveNprobe(0), idx->EffectiveRerank(kK, 0), r.recall, r.qps);
  }
  std::printf("best QPS at recall >= 0.95: %.0f (%s); >= 0.99: %.0f (%s)\n", best95, at95.c_str(),
              best99, at99.c_str());

  if (filtered) {
    std::printf(
        "\n| selectivity | recall@10 | QPS | exact filtered QPS | speed-up |\n"
        "|---|---|---|---|---|\n");
    for (uint32_t mod : {2u, 20u, 200u}) {
      ModFilter f(mod, base.n);
      const std::vector<uint32_t> fgt = GroundTruth(*idx, queries, threads, &f);
      SearchParams p;
      p.filter = &f;
      Run r = RunQueries(*idx, queries, fgt, p, 1);
      p.exact = true;
      Run e = RunQueries(*idx, queries, fgt, p, 1);
      std::printf("| %.1f%% | %.4f | %.0f | %.0f | %.1fx |\n", 100.0 / mod, r.recall, r.qps, e.qps,
                  r.qps / e.qps);
    }
  }

  if (snapshot) {
    const std::string path = "/tmp/aidb_ivf_bench_" + std::to_string(getpid()) + ".snap";
    aidb::SnapshotMeta meta;
    meta.config.name = "bench";
    meta.config.index = cfg;
    meta.slot_limit = idx->SlotLimit();
    meta.count = idx->Size();
    std::vector<aidb::Uuid> ids(meta.slot_limit);
    for (uint32_t s = 0; s < meta.slot_limit; ++s) {
      ids[s].bytes[0] = 1;
      std::memcpy(ids[s].bytes.data() + 4, &s, 4);
    }
    aidb::storage::SnapshotWriter w;
    auto ts = Clock::now();
    bool ok = w.SetCollection(meta, ids, {}).ok() &&
              idx->Save([&](const aidb::IndexImage& im) { return w.SetIndex(im); }).ok() &&
              w.WriteFile(path).ok();
    const double save_s = Seconds(ts, Clock::now());
    std::unique_ptr<aidb::storage::SnapshotFile> file;
    ts = Clock::now();
    std::unique_ptr<aidb::index::VectorFile> lfile;
    if (on_disk) (void)aidb::index::VectorFile::Create(vpath + ".loaded", &lfile);
    IvfIndex loaded(cfg, tuning, std::move(lfile));
    ok = ok && aidb::storage::SnapshotFile::Open(path, &file).ok() &&
         loaded.Load(file->image(), file->keepalive()).ok();
    const double load_s = Seconds(ts, Clock::now());
    if (!ok) {
      std::printf("snapshot round trip FAILED\n");
    } else {
      Run a = RunQueries(*idx, queries, gt, SearchParams{}, 1);
      Run b = RunQueries(loaded, queries, gt, SearchParams{}, 1);
      std::printf(
          "\nsnapshot: save %.2f s, load %.2f s (%.1f MiB); recall before %.4f, after %.4f\n",
          save_s, load_s, file->file_size() / 1048576.0, a.recall, b.recall);
    }
    std::remove(path.c_str());
    if (on_disk) std::remove((vpath + ".loaded").c_str());
  }
  if (on_disk) std::remove(vpath.c_str());
  return 0;
}
