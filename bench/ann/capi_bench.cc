// ANN benchmark through the C API: AIDB's HNSW collection against hnswlib on
// a clustered 128-d cosine set generated here, with AIDB's distance kernels
// forced to each level (AIDB_SIMD, docs/operations.md "Distance kernels") in
// the same run, so AVX2 and AVX-512 rows stand side by side against the same
// hnswlib (compiled with -march=native).
//
//   aidb_ann_capi_bench [--n 200000] [--nq 10000] [--clusters 100] [--spread 1]
//                       [--repeats 5] [--efs 10,16,...] [--levels avx2,avx512]
//                       [--cache-dir D]
//
// The parent generates the data, computes the exact top-10 (cached), builds
// the AIDB collection through aidb_collection_upsert_batch and snapshots it,
// and builds hnswlib (InnerProductSpace on normalised vectors; M=16,
// ef_construction=200 for both). Then, per repeat, each level runs in a child
// process (AIDB_SIMD=<level>, the snapshot loaded through the C API) and
// hnswlib runs in the parent between them; QPS is the median of the repeats.
// An AIDB query is what a user pays: aidb_collection_search (top 10, no
// payloads), reading the hits, parsing their ids, aidb_search_result_free.
#include <aidb.h>
#include <hnswlib/hnswlib.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kK = 10, kM = 16, kEfc = 200, kDim = 128;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Options {
  uint32_t n = 200000, nq = 10000, clusters = 100;
  float spread = 1.0f;
  int repeats = 5;
  std::vector<uint32_t> efs = {10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128};
  std::vector<std::string> levels;
  std::string cache_dir = AIDB_ANN_CACHE_DIR;
  std::string child_level, snapshot;  // child mode
};

// Clustered data, normalised (cosine): centres N(0,1), points centre +
// spread * N(0,1), queries from the same mixture. Spread 1 makes a cluster as
// wide as the distance between centres: a set where recall@10 0.95 needs an
// ef of a few dozen, as on real embeddings (tighter clusters are easy).
void Generate(const Options& o, std::vector<float>* base, std::vector<float>* queries) {
  std::mt19937 rng(20261129);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> centres(static_cast<size_t>(o.clusters) * kDim);
  for (float& c : centres) c = nd(rng);
  std::uniform_int_distribution<uint32_t> pick(0, o.clusters - 1);
  auto fill = [&](std::vector<float>* out, uint32_t n) {
    out->resize(static_cast<size_t>(n) * kDim);
    for (uint32_t i = 0; i < n; ++i) {
      const float* c = centres.data() + static_cast<size_t>(pick(rng)) * kDim;
      float* v = out->data() + static_cast<size_t>(i) * kDim;
      double s = 0;
      for (uint32_t j = 0; j < kDim; ++j) {
        v[j] = c[j] + o.spread * nd(rng);
        s += static_cast<double>(v[j]) * v[j];
      }
      float inv = static_cast<float>(1.0 / std::sqrt(s));
      for (uint32_t j = 0; j < kDim; ++j) v[j] *= inv;
    }
  };
  fill(base, o.n);
  fill(queries, o.nq);
}

std::string CacheStem(const Options& o) {
  char sp[32];
  std::snprintf(sp, sizeof sp, "%.3f", o.spread);
  return o.cache_dir + "/clustered128-n" + std::to_string(o.n) + "-q" + std::to_string(o.nq) +
         "-c" + std::to_string(o.clusters) + "-s" + sp;
}

std::vector<uint32_t> GroundTruth(const Options& o, const std::vector<float>& base,
                                  const std::vector<float>& queries) {
  const std::string path = CacheStem(o) + ".gt";
  std::vector<uint32_t> gt(static_cast<size_t>(o.nq) * kK);
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    bool ok = std::fread(gt.data(), sizeof(uint32_t), gt.size(), f) == gt.size();
    std::fclose(f);
    if (ok) return gt;
  }
  std::atomic<uint32_t> next{0};
  auto work = [&] {
    std::vector<std::pair<float, uint32_t>> d(o.n);
    for (uint32_t q; (q = next.fetch_add(1)) < o.nq;) {
      const float* qv = queries.data() + static_cast<size_t>(q) * kDim;
      for (uint32_t i = 0; i < o.n; ++i) {
        const float* v = base.data() + static_cast<size_t>(i) * kDim;
        float s = 0;
        for (uint32_t j = 0; j < kDim; ++j) s += qv[j] * v[j];
        d[i] = {-s, i};
      }
      std::partial_sort(d.begin(), d.begin() + kK, d.end());
      for (uint32_t j = 0; j < kK; ++j) gt[static_cast<size_t>(q) * kK + j] = d[j].second;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < std::max(1u, std::thread::hardware_concurrency()); ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(gt.data(), sizeof(uint32_t), gt.size(), f);
    std::fclose(f);
  }
  return gt;
}

// Point i has the id 00000000-0000-4000-8000-<i as 12 hex digits>.
std::string IdOf(uint32_t i) {
  char b[40];
  std::snprintf(b, sizeof b, "00000000-0000-4000-8000-%012x", i);
  return b;
}
uint32_t IndexOf(const char* id) {
  return static_cast<uint32_t>(std::strtoul(id + 24, nullptr, 16));
}

aidb_collection* OpenCollection() {
  aidb_collection_options co;
  aidb_collection_options_init(&co);
  co.name = "bench";
  co.dim = kDim;
  co.metric = AIDB_METRIC_COSINE;
  co.index_kind = AIDB_INDEX_HNSW;
  co.hnsw_m = kM;
  co.hnsw_ef_construction = kEfc;
  co.durability = AIDB_DURABILITY_NONE;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  if (aidb_collection_open(&co, &c, &err) != AIDB_OK) {
    std::fprintf(stderr, "open: %s\n", err ? err : "?");
    std::exit(1);
  }
  return c;
}

struct Run {
  double qps, cpu_qps, recall;
};

double Recall(const std::vector<uint32_t>& got, const std::vector<uint32_t>& gt, uint32_t nq) {
  size_t hit = 0;
  for (uint32_t q = 0; q < nq; ++q)
    for (uint32_t i = 0; i < kK; ++i)
      for (uint32_t j = 0; j < kK; ++j) hit += got[q * kK + i] == gt[q * kK + j];
  return static_cast<double>(hit) / (static_cast<double>(nq) * kK);
}

Run AidbQueries(aidb_collection* c, const std::vector<float>& queries, uint32_t nq,
                const std::vector<uint32_t>& gt, uint32_t ef) {
  std::vector<uint32_t> got(static_cast<size_t>(nq) * kK, ~0u);
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.top_k = kK;
  so.ef_search = ef;
  so.with_payload = 0;
  auto t0 = Clock::now();
  double c0 = ThreadCpuSeconds();
  for (uint32_t q = 0; q < nq; ++q) {
    aidb_search_result* r = nullptr;
    if (aidb_collection_search(c, queries.data() + static_cast<size_t>(q) * kDim, kDim, &so, &r,
                               nullptr) != AIDB_OK) {
      std::fprintf(stderr, "search failed\n");
      std::exit(1);
    }
    const aidb_hit* hits = nullptr;
    size_t n = 0;
    aidb_search_result_hits_v2(r, 0, &hits, &n, nullptr);
    for (size_t i = 0; i < n && i < kK; ++i) got[q * kK + i] = IndexOf(hits[i].id);
    aidb_search_result_free(r);
  }
  double cpu = ThreadCpuSeconds() - c0;
  double secs = Seconds(t0, Clock::now());
  return {nq / secs, nq / cpu, Recall(got, gt, nq)};
}

Run HnswlibQueries(hnswlib::HierarchicalNSW<float>& h, const std::vector<float>& queries,
                   uint32_t nq, const std::vector<uint32_t>& gt, uint32_t ef) {
  h.setEf(ef);
  std::vector<uint32_t> got(static_cast<size_t>(nq) * kK, ~0u);
  auto t0 = Clock::now();
  double c0 = ThreadCpuSeconds();
  for (uint32_t q = 0; q < nq; ++q) {
    auto pq = h.searchKnn(queries.data() + static_cast<size_t>(q) * kDim, kK);
    uint32_t n = static_cast<uint32_t>(pq.size());
    while (!pq.empty()) {
      got[q * kK + --n] = static_cast<uint32_t>(pq.top().second);
      pq.pop();
    }
  }
  double cpu = ThreadCpuSeconds() - c0;
  double secs = Seconds(t0, Clock::now());
  return {nq / secs, nq / cpu, Recall(got, gt, nq)};
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(item);
  return v;
}

// Child: load the snapshot, one ef sweep, one line per ef on stdout.
int ChildMain(const Options& o) {
  std::vector<float> base, queries;
  Generate(o, &base, &queries);
  std::vector<uint32_t> gt = GroundTruth(o, base, queries);
  base.clear();
  base.shrink_to_fit();
  aidb_collection* c = OpenCollection();
  char* err = nullptr;
  if (aidb_collection_load_snapshot(c, o.snapshot.c_str(), &err) != AIDB_OK) {
    std::fprintf(stderr, "load: %s\n", err ? err : "?");
    return 1;
  }
  // Warm-up (page faults, caches) at the largest ef.
  AidbQueries(c, queries, std::min<uint32_t>(o.nq, 1000), gt, o.efs.back());
  for (uint32_t ef : o.efs) {
    Run r = AidbQueries(c, queries, o.nq, gt, ef);
    std::printf("%u %.3f %.3f %.6f\n", ef, r.qps, r.cpu_qps, r.recall);
  }
  aidb_collection_close(c);
  return 0;
}

std::map<uint32_t, Run> RunChild(const char* self, const Options& o, const std::string& level) {
  std::string efs;
  for (uint32_t ef : o.efs) efs += (efs.empty() ? "" : ",") + std::to_string(ef);
  std::vector<std::string> args = {self,
                                   "--child",
                                   level,
                                   "--snapshot",
                                   o.snapshot,
                                   "--n",
                                   std::to_string(o.n),
                                   "--nq",
                                   std::to_string(o.nq),
                                   "--clusters",
                                   std::to_string(o.clusters),
                                   "--efs",
                                   efs,
                                   "--cache-dir",
                                   o.cache_dir};
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "AIDB_SIMD=", 10) != 0) env_s.push_back(*e);
  env_s.push_back("AIDB_SIMD=" + level);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) std::exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid;
  if (posix_spawn(&pid, self, &fa, nullptr, argv.data(), envp.data()) != 0) std::exit(1);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t r; (r = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(r));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "child for %s failed\n", level.c_str());
    std::exit(1);
  }
  std::map<uint32_t, Run> res;
  std::istringstream in(out);
  uint32_t ef;
  Run r;
  while (in >> ef >> r.qps >> r.cpu_qps >> r.recall) res[ef] = r;
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--n") o.n = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--nq") o.nq = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--clusters") o.clusters = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--spread") o.spread = std::stof(next());
    else if (a == "--repeats") o.repeats = std::max(1, std::atoi(next().c_str()));
    else if (a == "--efs") {
      o.efs.clear();
      for (auto& s : Split(next())) o.efs.push_back(static_cast<uint32_t>(std::stoul(s)));
    } else if (a == "--levels") o.levels = Split(next());
    else if (a == "--cache-dir") o.cache_dir = next();
    else if (a == "--child") o.child_level = next();
    else if (a == "--snapshot") o.snapshot = next();
    else {
      std::fprintf(stderr,
                   "usage: %s [--n N] [--nq N] [--clusters N] [--repeats N] [--efs a,b] "
                   "[--levels avx2,avx512] [--cache-dir D] [--spread S]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!o.child_level.empty()) return ChildMain(o);
  if (o.levels.empty()) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) o.levels.push_back("avx2");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
      o.levels.push_back("avx512");
    if (o.levels.empty()) o.levels.push_back("scalar");
  }

  std::vector<float> base, queries;
  Generate(o, &base, &queries);
  std::printf(
      "clustered cosine: %u base x %u queries, dim %u, %u clusters, spread %.2f, M=%u, efc=%u\n",
      o.n, o.nq, kDim, o.clusters, o.spread, kM, kEfc);
  auto t0 = Clock::now();
  std::vector<uint32_t> gt = GroundTruth(o, base, queries);
  std::printf("ground truth: %.1f s\n", Seconds(t0, Clock::now()));

  // AIDB through the C API, snapshotted for the children.
  o.snapshot = CacheStem(o) + "-aidb.snap";
  {
    aidb_collection* c = OpenCollection();
    std::vector<std::string> ids(o.n);
    std::vector<const char*> idp(o.n);
    for (uint32_t i = 0; i < o.n; ++i) {
      ids[i] = IdOf(i);
      idp[i] = ids[i].c_str();
    }
    t0 = Clock::now();
    char* err = nullptr;
    const uint32_t step = 10000;
    for (uint32_t i = 0; i < o.n; i += step) {
      uint32_t k = std::min(step, o.n - i);
      if (aidb_collection_upsert_batch(c, k, idp.data() + i,
                                       base.data() + static_cast<size_t>(i) * kDim, kDim, nullptr,
                                       &err) != AIDB_OK) {
        std::fprintf(stderr, "upsert: %s\n", err ? err : "?");
        return 1;
      }
    }
    std::printf("AIDB build (C API, upsert_batch of 10k, all cores): %.1f s\n",
                Seconds(t0, Clock::now()));
    if (aidb_collection_snapshot_to(c, o.snapshot.c_str(), &err) != AIDB_OK) {
      std::fprintf(stderr, "snapshot: %s\n", err ? err : "?");
      return 1;
    }
    aidb_collection_close(c);
  }
  hnswlib::InnerProductSpace space(kDim);
  hnswlib::HierarchicalNSW<float> h(&space, o.n, kM, kEfc, 100);
  t0 = Clock::now();
  {
    h.addPoint(base.data(), 0);
    std::atomic<uint32_t> next{1};
    auto work = [&] {
      for (uint32_t i; (i = next.fetch_add(1)) < o.n;)
        h.addPoint(base.data() + static_cast<size_t>(i) * kDim, i);
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < std::max(1u, std::thread::hardware_concurrency()); ++t)
      pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  std::printf("hnswlib build (all cores): %.1f s\n", Seconds(t0, Clock::now()));
  std::fflush(stdout);

  // Sweeps: per repeat, each level in a child, hnswlib in between.
  std::map<std::string, std::map<uint32_t, std::vector<Run>>> aidb;
  std::map<uint32_t, std::vector<Run>> hn;
  for (int r = 0; r < o.repeats; ++r) {
    for (const std::string& level : o.levels) {
      for (auto& [ef, run] : RunChild(argv[0], o, level)) aidb[level][ef].push_back(run);
      if (&level == &o.levels.front() || o.levels.size() == 1) {
        if (r == 0) HnswlibQueries(h, queries, std::min<uint32_t>(o.nq, 1000), gt, o.efs.back());
        for (uint32_t ef : o.efs) hn[ef].push_back(HnswlibQueries(h, queries, o.nq, gt, ef));
      }
    }
    std::fprintf(stderr, "repeat %d/%d done\n", r + 1, o.repeats);
  }
  auto med = [](const std::vector<Run>& v, double Run::*f) {
    std::vector<double> x;
    for (const Run& r : v) x.push_back(r.*f);
    return Median(x);
  };

  std::printf(
      "\nSingle-thread QPS, medians of %d runs (per CPU second of the searching thread "
      "in brackets); AIDB through aidb_collection_search.\n\n| ef | hnswlib recall@10 |",
      o.repeats);
  for (auto& l : o.levels) std::printf(" AIDB %s recall@10 |", l.c_str());
  std::printf(" hnswlib QPS |");
  for (auto& l : o.levels) std::printf(" AIDB %s QPS | ratio |", l.c_str());
  std::printf("\n|---|---|");
  for (size_t i = 0; i < o.levels.size(); ++i) std::printf("---|");
  std::printf("---|");
  for (size_t i = 0; i < o.levels.size(); ++i) std::printf("---|---|");
  std::printf("\n");
  for (uint32_t ef : o.efs) {
    double hq = med(hn[ef], &Run::qps), hc = med(hn[ef], &Run::cpu_qps);
    std::printf("| %u | %.4f |", ef, hn[ef][0].recall);
    for (auto& l : o.levels) std::printf(" %.4f |", aidb[l][ef][0].recall);
    std::printf(" %.0f (%.0f) |", hq, hc);
    for (auto& l : o.levels) {
      double aq = med(aidb[l][ef], &Run::qps), ac = med(aidb[l][ef], &Run::cpu_qps);
      std::printf(" %.0f (%.0f) | %.2f (%.2f) |", aq, ac, aq / hq, ac / hc);
    }
    std::printf("\n");
  }
  std::printf("\n");
  for (double target : {0.95, 0.99}) {
    uint32_t hef = 0;
    for (uint32_t ef : o.efs)
      if (!hef && hn[ef][0].recall >= target) hef = ef;
    for (auto& l : o.levels) {
      uint32_t aef = 0;
      for (uint32_t ef : o.efs)
        if (!aef && aidb[l][ef][0].recall >= target) aef = ef;
      if (!aef || !hef) {
        std::printf("recall@10 >= %.2f: not reached by %s\n", target,
                    aef ? "hnswlib" : ("AIDB " + l).c_str());
        continue;
      }
      double aq = med(aidb[l][aef], &Run::qps), hq = med(hn[hef], &Run::qps);
      double ac = med(aidb[l][aef], &Run::cpu_qps), hc = med(hn[hef], &Run::cpu_qps);
      std::printf(
          "recall@10 >= %.2f, AIDB %s: ef=%u %.0f QPS vs hnswlib ef=%u %.0f QPS: ratio %.2f "
          "(per CPU second %.2f)\n",
          target, l.c_str(), aef, aq, hef, hq, aq / hq, ac / hc);
    }
  }
  return 0;
}
