// aidb_ondisk_bench: memory and speed of AIDB's HNSW with the 8-bit walk and
// the float vectors on disk (IndexConfig::vectors_on_disk, a file-backed
// shared mapping), against hnswlib, in the same run.
//
//   aidb_ondisk_bench --data fashion|synth [--n N] [--nq Q] [--efc E]
//                     [--threads T] [--repeats R] [--efs a,b,...] [--dir DIR]
//
// fashion: Fashion-MNIST (Debian dataset-fashion-mnist), 60k x 784, the 10k
// test images as queries (--nq takes the first Q). synth: N x 128 points
// around 1000 Gaussian centres, fixed seed (default N = 1M), queries from the
// same distribution. L2, M = 16, ef_construction E (default 200).
//
// The run is three processes, so that each memory figure is a fresh one:
//  1. build (child): builds AIDB (vectors on disk, T threads) and saves a
//     snapshot, then hnswlib (T threads) and saves its index; peak VmRSS and
//     RssAnon growth of each build, sampled every 20 ms; exact top-10 ground
//     truth (cached in DIR).
//  2. load (child): RssAnon growth of loading AIDB from its snapshot (the
//     vectors file rebuilt: the restart path) and then hnswlib's index;
//     the single-thread ef sweep (AIDB and hnswlib interleaved, medians of R
//     runs; with the vectors file in the page cache); then, for the smallest
//     ef reaching recall@10 >= 0.95, AIDB's QPS and recall with half of the
//     vectors file evicted before each run (fdatasync, then
//     madvise(MADV_PAGEOUT) on the first half of the mapping; mincore
//     reports what stayed resident).
//  3. the parent prints both and the load average.
// AIDB_SIMD (e.g. avx2) caps AIDB's kernels; hnswlib is compiled with
// -march=native.
#include <fcntl.h>
#include <hnswlib/hnswlib.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
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
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.h"
#include "core/distance.h"
#include "index/hnsw.h"
#include "index/vector_file.h"
#include "storage/snapshot.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

namespace {

using aidb::index::Hit;
using aidb::index::HnswIndex;
using aidb::index::IndexConfig;
using aidb::index::SearchParams;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kK = 10;
constexpr uint32_t kM = 16;

struct Options {
  std::string data = "fashion";
  uint32_t n = 0, nq = 0, efc = 200, threads = 2, repeats = 3;
  std::vector<uint32_t> efs = {10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256};
  std::string dir;
  std::string phase;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

using aidb_bench::LoadIdxImages;
using aidb_bench::Matrix;

// N points around 1000 Gaussian centres (spread 0.35 of the centres' unit
// normal scale), 128 dims; `seed` picks the points, the centres are fixed.
Matrix Synth(uint32_t n, uint32_t seed) {
  const uint32_t dim = 128, clusters = 1000;
  std::mt19937 crng(12345);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (auto& c : centres) c = nd(crng);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> pick(0, clusters - 1);
  Matrix m;
  m.n = n;
  m.dim = dim;
  m.v.resize(static_cast<size_t>(n) * dim);
  for (size_t i = 0; i < n; ++i) {
    const float* c = centres.data() + static_cast<size_t>(pick(rng)) * dim;
    for (uint32_t j = 0; j < dim; ++j) m.v[i * dim + j] = c[j] + 0.35f * nd(rng);
  }
  return m;
}

bool LoadData(const Options& o, bool base, Matrix* out) {
  if (o.data == "fashion") {
    const std::string dir = "/usr/share/datasets/fashion-mnist/";
    if (!LoadIdxImages(dir + (base ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz"),
                       out))
      return false;
    uint32_t keep = base ? o.n : o.nq;
    if (keep != 0 && keep < out->n) {
      out->n = keep;
      out->v.resize(static_cast<size_t>(keep) * out->dim);
    }
    return true;
  }
  *out = Synth(base ? (o.n ? o.n : 1000000) : (o.nq ? o.nq : 1000), base ? 1 : 2);
  return true;
}

// kB fields of /proc/self/status.
long StatusKb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':')
      return std::stol(line.substr(n + 1));
  return -1;
}

// Samples VmRSS and RssAnon every 20 ms while alive; the peaks.
class PeakSampler {
 public:
  PeakSampler() : rss0_(StatusKb("VmRSS")), anon0_(StatusKb("RssAnon")) {
    t_ = std::thread([this] {
      while (!stop_.load()) {
        Sample();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~PeakSampler() { Stop(); }
  void Stop() {
    if (t_.joinable()) {
      stop_ = true;
      t_.join();
      Sample();
    }
  }
  double PeakRssMiB() const { return (peak_rss_ - rss0_) / 1024.0; }
  double PeakAnonMiB() const { return (peak_anon_ - anon0_) / 1024.0; }

 private:
  void Sample() {
    peak_rss_ = std::max(peak_rss_, StatusKb("VmRSS"));
    peak_anon_ = std::max(peak_anon_, StatusKb("RssAnon"));
  }
  long rss0_, anon0_, peak_rss_ = 0, peak_anon_ = 0;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

using aidb_bench::ParallelFor;

IndexConfig AidbConfig(uint32_t dim, uint32_t efc) {
  IndexConfig c;
  c.dim = dim;
  c.metric = aidb::Metric::kEuclidean;
  c.kind = aidb::index::IndexKind::kHnsw;
  c.hnsw.m = kM;
  c.hnsw.ef_construction = efc;
  c.quantization = aidb::Quantization::kSq8;
  c.vectors_on_disk = true;
  return c;
}

std::unique_ptr<HnswIndex> NewAidb(const Options& o, uint32_t dim) {
  std::unique_ptr<aidb::index::VectorFile> vf;
  aidb::Status st = aidb::index::VectorFile::Create(o.dir + "/aidb.vectors", &vf);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    std::exit(1);
  }
  return std::make_unique<HnswIndex>(AidbConfig(dim, o.efc), aidb::index::HnswTuning(),
                                     std::move(vf));
}

std::string GtPath(const Options& o) {
  return o.dir + "/" + o.data + "-" + std::to_string(o.n) + "-" + std::to_string(o.nq) + ".gt";
}

int Build(const Options& o) {
  Matrix base;
  if (!LoadData(o, true, &base)) return 1;
  std::printf("data: %s, %u x %u, threads %u, ef_construction %u\n", o.data.c_str(), base.n,
              base.dim, o.threads, o.efc);
  {
    PeakSampler s;
    auto t0 = Clock::now();
    auto idx = NewAidb(o, base.dim);
    std::vector<uint32_t> slots(base.n);
    if (!idx->AddBatch(base.v.data(), base.n, slots.data(), o.threads).ok()) return 1;
    double secs = Seconds(t0, Clock::now());
    s.Stop();
    std::printf(
        "build AIDB: %.1f s, peak RSS growth %.1f MiB, peak RssAnon growth %.1f MiB "
        "(own accounting: %.1f MiB anonymous + %.1f MiB vectors file)\n",
        secs, s.PeakRssMiB(), s.PeakAnonMiB(), idx->MemoryBytes() / 1048576.0,
        idx->VectorFileBytes() / 1048576.0);
    aidb::SnapshotMeta meta;
    meta.config.name = "ann";
    meta.config.index = idx->config();
    meta.slot_limit = idx->SlotLimit();
    meta.count = idx->Size();
    aidb::storage::SnapshotWriter w;
    if (!w.SetCollection(meta, {}, {}).ok() ||
        !idx->Save([&](const aidb::IndexImage& image) { return w.SetIndex(image); }).ok() ||
        !w.WriteFile(o.dir + "/aidb.snap").ok()) {
      std::fprintf(stderr, "AIDB snapshot failed\n");
      return 1;
    }
  }
  {
    PeakSampler s;
    auto t0 = Clock::now();
    hnswlib::L2Space space(base.dim);
    hnswlib::HierarchicalNSW<float> h(&space, base.n, kM, o.efc, 100);
    h.addPoint(base.row(0), 0);
    ParallelFor(1, base.n, o.threads, [&](size_t i) { h.addPoint(base.row(i), i); });
    double secs = Seconds(t0, Clock::now());
    s.Stop();
    std::printf("build hnswlib: %.1f s, peak RSS growth %.1f MiB, peak RssAnon growth %.1f MiB\n",
                secs, s.PeakRssMiB(), s.PeakAnonMiB());
    h.saveIndex(o.dir + "/hnswlib.bin");
  }
  // Ground truth (kept in DIR: a --dir run reuses it).
  Matrix queries;
  if (!LoadData(o, false, &queries)) return 1;
  std::vector<uint32_t> gt(static_cast<size_t>(queries.n) * kK);
  if (FILE* f = std::fopen(GtPath(o).c_str(), "rb")) {
    bool ok = std::fread(gt.data(), sizeof(uint32_t), gt.size(), f) == gt.size();
    std::fclose(f);
    if (ok) {
      std::printf("ground truth: cached %s\n", GtPath(o).c_str());
      return 0;
    }
  }
  auto l2 = aidb::distance::L2Squared();
  auto t0 = Clock::now();
  ParallelFor(0, queries.n, std::max(1u, std::thread::hardware_concurrency()), [&](size_t q) {
    std::vector<std::pair<float, uint32_t>> d(base.n);
    for (uint32_t i = 0; i < base.n; ++i) d[i] = {l2(queries.row(q), base.row(i), base.dim), i};
    std::partial_sort(d.begin(), d.begin() + kK, d.end());
    for (uint32_t j = 0; j < kK; ++j) gt[q * kK + j] = d[j].second;
  });
  std::printf("ground truth: %.1f s\n", Seconds(t0, Clock::now()));
  FILE* f = std::fopen(GtPath(o).c_str(), "wb");
  if (f == nullptr) return 1;
  std::fwrite(gt.data(), sizeof(uint32_t), gt.size(), f);
  std::fclose(f);
  return 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Run {
  double qps, recall, cpu_qps;  // cpu_qps: per CPU second of the searching thread
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

template <class SearchFn>
Run RunQueries(const Matrix& queries, const std::vector<uint32_t>& gt, SearchFn search) {
  std::vector<uint32_t> got(static_cast<size_t>(queries.n) * kK, ~0u);
  auto t0 = Clock::now();
  double c0 = ThreadCpuSeconds();
  for (uint32_t q = 0; q < queries.n; ++q) search(queries.row(q), &got[q * kK]);
  double cpu = ThreadCpuSeconds() - c0;
  double secs = Seconds(t0, Clock::now());
  size_t hit = 0;
  for (uint32_t q = 0; q < queries.n; ++q)
    for (uint32_t i = 0; i < kK; ++i)
      for (uint32_t j = 0; j < kK; ++j) hit += got[q * kK + i] == gt[q * kK + j];
  return {queries.n / secs, static_cast<double>(hit) / (static_cast<double>(queries.n) * kK),
          queries.n / cpu};
}

int Load(const Options& o) {
  // Memory first, with nothing else loaded.
  const long anon0 = StatusKb("RssAnon"), rss0 = StatusKb("VmRSS");
  std::unique_ptr<HnswIndex> idx;
  uint32_t dim = 0;
  {
    std::unique_ptr<aidb::storage::SnapshotFile> file;
    if (!aidb::storage::SnapshotFile::Open(o.dir + "/aidb.snap", &file).ok()) return 1;
    dim = file->image().meta.config.index.dim;
    idx = NewAidb(o, dim);
    auto t0 = Clock::now();
    aidb::Status st = idx->Load(file->image(), file->keepalive());
    if (!st.ok()) {
      std::fprintf(stderr, "load: %s\n", st.ToString().c_str());
      return 1;
    }
    std::printf("load AIDB from its snapshot: %.1f s\n", Seconds(t0, Clock::now()));
  }
  long anon1 = StatusKb("RssAnon");
  {
    // Where AIDB's anonymous memory goes (its own accounting), and what the
    // allocator holds beyond it.
    const HnswIndex::MemoryParts m = idx->Memory();
    const double n = std::max<double>(1, idx->SlotLimit());
    struct mallinfo2 mi = mallinfo2();
    std::printf(
        "AIDB anonymous memory per node (%u nodes): codes %.1f B, level-0 links %.1f B, state + "
        "parent %.1f B, upper pointers %.1f B, upper lists %.1f B, other %.1f B = %.1f B; "
        "RssAnon growth %.1f B; malloc: %.1f MiB in use, %.1f MiB free in the heap, %.1f MiB "
        "mmapped\n",
        idx->SlotLimit(), m.codes_or_vectors / n, m.links0 / n, m.node_state / n,
        m.upper_pointers / n, m.upper_lists / n, m.other / n, m.Total() / n,
        (anon1 - anon0) * 1024.0 / n, mi.uordblks / 1048576.0, mi.fordblks / 1048576.0,
        mi.hblkhd / 1048576.0);
    malloc_trim(0);
    const long trimmed = StatusKb("RssAnon");
    std::printf("RssAnon after malloc_trim(0): %.1f MiB (before %.1f MiB)\n",
                (trimmed - anon0) / 1024.0, (anon1 - anon0) / 1024.0);
    anon1 = trimmed;
  }
  const long rss1 = StatusKb("VmRSS");
  hnswlib::L2Space space(dim);
  hnswlib::HierarchicalNSW<float> h(&space, o.dir + "/hnswlib.bin");
  const long anon2 = StatusKb("RssAnon"), rss2 = StatusKb("VmRSS");
  const double a_anon = (anon1 - anon0) / 1024.0, h_anon = (anon2 - anon1) / 1024.0;
  std::printf(
      "after a restart: AIDB RssAnon %.1f MiB (VmRSS %.1f MiB incl. the cached vectors "
      "file), hnswlib RssAnon %.1f MiB (VmRSS %.1f MiB); AIDB / hnswlib anonymous = %.3f\n",
      a_anon, (rss1 - rss0) / 1024.0, h_anon, (rss2 - rss1) / 1024.0, a_anon / h_anon);

  Matrix queries;
  if (!LoadData(o, false, &queries)) return 1;
  std::vector<uint32_t> gt(static_cast<size_t>(queries.n) * kK);
  FILE* f = std::fopen(GtPath(o).c_str(), "rb");
  if (f == nullptr || std::fread(gt.data(), sizeof(uint32_t), gt.size(), f) != gt.size()) return 1;
  std::fclose(f);

  auto aidb_search = [&](uint32_t ef) {
    return [&idx, ef](const float* q, uint32_t* out) {
      thread_local std::vector<Hit> hits;
      SearchParams p;
      p.k = kK;
      p.ef = ef;
      (void)idx->Search(q, p, &hits);
      for (uint32_t i = 0; i < kK && i < hits.size(); ++i) out[i] = hits[i].slot;
    };
  };
  auto hnsw_search = [&h](const float* q, uint32_t* out) {
    auto pq = h.searchKnn(q, kK);
    uint32_t n = static_cast<uint32_t>(pq.size());
    while (!pq.empty()) {
      out[--n] = static_cast<uint32_t>(pq.top().second);
      pq.pop();
    }
  };
  std::printf("\nsingle thread, %u queries, vectors file cached; medians of %u runs\n", queries.n,
              o.repeats);
  std::printf(
      "| ef | AIDB recall@10 | hnswlib recall@10 | AIDB QPS | hnswlib QPS | ratio | AIDB QPS / "
      "CPU-s | hnswlib QPS / CPU-s | ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  uint32_t a95 = 0, h95 = 0;
  double aq95 = 0, hq95 = 0, ar95 = 0, hr95 = 0, ac95 = 0, hc95 = 0;
  for (uint32_t ef : o.efs) {
    h.setEf(ef);
    std::vector<double> aq, hq, ac, hc;
    double ar = 0, hr = 0;
    for (uint32_t r = 0; r < o.repeats; ++r) {
      Run a = RunQueries(queries, gt, aidb_search(ef));
      Run b = RunQueries(queries, gt, hnsw_search);
      aq.push_back(a.qps);
      hq.push_back(b.qps);
      ac.push_back(a.cpu_qps);
      hc.push_back(b.cpu_qps);
      ar = a.recall;
      hr = b.recall;
    }
    double am = Median(aq), hm = Median(hq), acm = Median(ac), hcm = Median(hc);
    std::printf("| %u | %.4f | %.4f | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", ef, ar, hr, am,
                hm, am / hm, acm, hcm, acm / hcm);
    if (a95 == 0 && ar >= 0.95) a95 = ef, aq95 = am, ar95 = ar, ac95 = acm;
    if (h95 == 0 && hr >= 0.95) h95 = ef, hq95 = hm, hr95 = hr, hc95 = hcm;
    std::fflush(stdout);
  }
  if (a95 == 0 || h95 == 0) {
    std::printf("recall 0.95 not reached in the ef sweep\n");
    return 0;
  }
  std::printf(
      "at recall@10 >= 0.95: AIDB ef %u (%.4f) %.0f QPS, hnswlib ef %u (%.4f) %.0f QPS: "
      "%.2fx (per CPU second: %.0f / %.0f = %.2fx)\n",
      a95, ar95, aq95, h95, hr95, hq95, aq95 / hq95, ac95, hc95, ac95 / hc95);

  // Half of the vectors file evicted before each run.
  const aidb::index::VectorFile* vf = idx->vector_file();
  const uint64_t total = vf->MappedBytes(), half = total / 2;
  if (!vf->Sync().ok()) std::printf("fdatasync failed\n");
  std::vector<double> eq, ec;
  double er = 0, res_before = 0, res_after = 0;
  for (uint32_t r = 0; r < o.repeats; ++r) {
    aidb::Status st = vf->Advise(0, half, MADV_PAGEOUT);
    if (!st.ok()) std::printf("MADV_PAGEOUT: %s\n", st.ToString().c_str());
    res_before = static_cast<double>(vf->ResidentBytes(0, half)) / std::max<uint64_t>(half, 1);
    Run a = RunQueries(queries, gt, aidb_search(a95));
    res_after = static_cast<double>(vf->ResidentBytes(0, half)) / std::max<uint64_t>(half, 1);
    eq.push_back(a.qps);
    ec.push_back(a.cpu_qps);
    er = a.recall;
  }
  Run cached = RunQueries(queries, gt, aidb_search(a95));
  std::printf(
      "half of the vectors file (%.1f of %.1f MiB) evicted before each run: AIDB ef %u "
      "recall %.4f, %.0f QPS (cached again right after: %.0f QPS, recall %.4f); resident "
      "share of that half: %.3f after the eviction, %.3f after the run\n",
      half / 1048576.0, total / 1048576.0, a95, er, Median(eq), cached.qps, cached.recall,
      res_before, res_after);
  return 0;
}

std::vector<uint32_t> ParseList(const char* s) {
  std::vector<uint32_t> v;
  for (const char* p = s; *p;) {
    v.push_back(static_cast<uint32_t>(std::strtoul(p, const_cast<char**>(&p), 10)));
    if (*p == ',') ++p;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows while it runs
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--data") o.data = next();
    else if (a == "--n") o.n = static_cast<uint32_t>(std::atol(next()));
    else if (a == "--nq") o.nq = static_cast<uint32_t>(std::atol(next()));
    else if (a == "--efc") o.efc = static_cast<uint32_t>(std::atol(next()));
    else if (a == "--threads") o.threads = static_cast<uint32_t>(std::atol(next()));
    else if (a == "--repeats") o.repeats = static_cast<uint32_t>(std::atol(next()));
    else if (a == "--efs") o.efs = ParseList(next());
    else if (a == "--dir") o.dir = next();
    else if (a == "--phase") o.phase = next();
    else {
      std::fprintf(stderr,
                   "usage: %s --data fashion|synth [--n N] [--nq Q] [--efc E] [--threads T] "
                   "[--repeats R] [--efs a,b,c] [--dir DIR]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.data != "fashion" && o.data != "synth") return 2;
  if (o.dir.empty()) {
    char tmpl[] = "/tmp/aidb-ondisk-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    o.dir = tmpl;
  }
  if (o.phase == "build") return Build(o);
  if (o.phase == "load") return Load(o);
  // Parent: each phase in a fresh process.
  for (const char* phase : {"build", "load"}) {
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      std::vector<std::string> args(argv, argv + argc);
      args.push_back("--dir");
      args.push_back(o.dir);
      args.push_back("--phase");
      args.push_back(phase);
      std::vector<char*> cargs;
      for (auto& s : args) cargs.push_back(s.data());
      cargs.push_back(nullptr);
      execv("/proc/self/exe", cargs.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "phase %s failed\n", phase);
      return 1;
    }
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3)
    std::printf("load average at the end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  std::printf("files in %s (remove when done)\n", o.dir.c_str());
  return 0;
}
