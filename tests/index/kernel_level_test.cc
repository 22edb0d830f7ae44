// AIDB_SIMD caps the kernel level of a process (core/distance.h). For every
// level this CPU supports, a child process of this test runs with
// AIDB_SIMD=<level>, builds HNSW indexes and searches them; the parent checks
// the child used that level and that every level gives the same exact top-10
// and scores, and the same recall from the graph walk.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/distance.h"
#include "index/hnsw.h"
#include "test_data.h"

extern char** environ;

namespace aidb::index {
namespace {

constexpr const char* kOutEnv = "AIDB_KERNEL_LEVEL_TEST_OUT";

TEST(KernelLevel, LevelNamesResolveToSupportedKernels) {
  std::vector<distance::KernelImpl> all = distance::SupportedKernels();
  auto has = [&](const char* n) {
    return std::any_of(all.begin(), all.end(),
                       [&](const distance::KernelImpl& k) { return std::string(k.name) == n; });
  };
  EXPECT_STREQ(distance::KernelsForLevel("scalar").name, "portable");
  EXPECT_STREQ(distance::KernelsForLevel("portable").name, "portable");
  EXPECT_STREQ(distance::KernelsForLevel(nullptr).name, all.back().name);
  EXPECT_STREQ(distance::KernelsForLevel("auto").name, all.back().name);
  EXPECT_STREQ(distance::KernelsForLevel("").name, all.back().name);
  EXPECT_STREQ(distance::KernelsForLevel("avx2").name, has("avx2") ? "avx2" : "portable");
  // A level the CPU lacks gives the best one below it.
  EXPECT_STREQ(distance::KernelsForLevel("avx512").name, all.back().name);
  const distance::KernelImpl k = distance::KernelsForLevel("scalar");
  EXPECT_EQ(k.dot, all.front().dot);
  EXPECT_EQ(k.sq_l2, all.front().sq_l2);
  EXPECT_EQ(k.sq_l2_batch, all.front().sq_l2_batch);
}

// The child: writes the kernel name, then per metric and query the exact
// top-10 (slot score) and the walk's top-10 slots.
TEST(KernelLevel, Child) {
  const char* out_path = std::getenv(kOutEnv);
  if (out_path == nullptr) GTEST_SKIP() << "run by KernelLevel.EveryLevelGivesTheSameResults";
  std::ofstream out(out_path);
  out << distance::KernelName() << "\n";
  const uint32_t dim = 100, n = 3000, nq = 40;  // 100: SIMD bodies and tails
  std::vector<float> base = testing::Clustered(n, dim, 20, 11);
  // Queries near stored points (each a perturbed base vector).
  std::vector<float> queries(static_cast<size_t>(nq) * dim);
  std::mt19937 rng(12);
  std::normal_distribution<float> noise(0.f, 0.2f);
  for (uint32_t q = 0; q < nq; ++q)
    for (uint32_t j = 0; j < dim; ++j)
      queries[q * dim + j] = base[static_cast<size_t>(q) * 61 * dim + j] + noise(rng);
  for (Metric metric : {Metric::kCosine, Metric::kEuclidean, Metric::kDot}) {
    HnswIndex idx(testing::Hnsw(dim, metric, 16, 100));
    std::vector<uint32_t> slots(n);
    ASSERT_TRUE(idx.AddBatch(base.data(), n, slots.data(), 1).ok());
    ASSERT_EQ(idx.Quantized(), true);
    for (uint32_t q = 0; q < nq; ++q) {
      SearchParams p;
      p.k = 10;
      p.exact = true;
      std::vector<Hit> hits;
      ASSERT_TRUE(idx.Search(queries.data() + q * dim, p, &hits).ok());
      out << "exact";
      for (const Hit& h : hits) out << " " << h.slot << " " << h.score;
      out << "\nwalk";
      p.exact = false;
      p.ef = 64;
      ASSERT_TRUE(idx.Search(queries.data() + q * dim, p, &hits).ok());
      for (const Hit& h : hits) out << " " << h.slot;
      out << "\n";
    }
  }
}

struct ChildOutput {
  std::string kernel;
  std::vector<std::vector<std::pair<uint32_t, double>>> exact;
  std::vector<std::vector<uint32_t>> walk;
};

bool RunChild(const std::string& level, ChildOutput* out) {
  char tmpl[] = "/tmp/aidb-kernel-level-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return false;
  close(fd);
  std::string path = tmpl;
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string v = *e;
    if (v.rfind("AIDB_SIMD=", 0) == 0 || v.rfind(std::string(kOutEnv) + "=", 0) == 0) continue;
    if (v.rfind("GTEST_", 0) == 0) continue;  // sharding and filters of ctest
    env_s.push_back(v);
  }
  env_s.push_back("AIDB_SIMD=" + level);
  env_s.push_back(std::string(kOutEnv) + "=" + path);
  std::vector<char*> envp;
  for (std::string& v : env_s) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", filter = "--gtest_filter=KernelLevel.Child";
  char* argv[] = {self.data(), filter.data(), nullptr};
  pid_t pid;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data()) != 0) return false;
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(path);
  std::string line;
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && std::getline(in, out->kernel);
  while (ok && std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind == "exact") {
      out->exact.emplace_back();
      uint32_t s;
      double sc;
      while (ls >> s >> sc) out->exact.back().push_back({s, sc});
    } else {
      out->walk.emplace_back();
      uint32_t s;
      while (ls >> s) out->walk.back().push_back(s);
    }
  }
  std::remove(path.c_str());
  return ok;
}

TEST(KernelLevel, EveryLevelGivesTheSameResults) {
  std::vector<ChildOutput> outs;
  std::vector<std::string> levels;
  for (const distance::KernelImpl& k : distance::SupportedKernels())
    levels.push_back(std::string(k.name) == "portable" ? "scalar" : k.name);
  for (const std::string& level : levels) {
    ChildOutput o;
    ASSERT_TRUE(RunChild(level, &o)) << "child with AIDB_SIMD=" << level;
    EXPECT_EQ(o.kernel, level == "scalar" ? "portable" : level);
    ASSERT_EQ(o.exact.size(), 120u);
    ASSERT_EQ(o.walk.size(), 120u);
    outs.push_back(std::move(o));
  }
  const ChildOutput& ref = outs.front();
  for (size_t l = 1; l < outs.size(); ++l) {
    const ChildOutput& o = outs[l];
    double walk_ref = 0, walk_o = 0;
    for (size_t q = 0; q < ref.exact.size(); ++q) {
      ASSERT_EQ(o.exact[q].size(), ref.exact[q].size());
      for (size_t i = 0; i < ref.exact[q].size(); ++i) {
        // Sums in another order round differently: equal scores within float
        // tolerance, equal ids except where two scores are that close.
        EXPECT_NEAR(o.exact[q][i].second, ref.exact[q][i].second,
                    1e-4 * std::max(1.0, std::fabs(ref.exact[q][i].second)))
            << levels[l] << " query " << q << " rank " << i;
        bool tie =
            (i > 0 && std::fabs(ref.exact[q][i].second - ref.exact[q][i - 1].second) < 1e-3) ||
            (i + 1 < ref.exact[q].size() &&
             std::fabs(ref.exact[q][i].second - ref.exact[q][i + 1].second) < 1e-3);
        if (!tie) {
          EXPECT_EQ(o.exact[q][i].first, ref.exact[q][i].first) << levels[l];
        }
      }
      std::set<uint32_t> truth;
      for (auto& h : ref.exact[q]) truth.insert(h.first);
      for (uint32_t s : ref.walk[q]) walk_ref += truth.count(s);
      for (uint32_t s : o.walk[q]) walk_o += truth.count(s);
    }
    // The graphs may differ in a few links (a distance that rounds the other
    // way flips a pruning decision); recall must not.
    EXPECT_NEAR(walk_o / (10.0 * ref.exact.size()), walk_ref / (10.0 * ref.exact.size()), 0.01)
        << levels[l];
    EXPECT_GE(walk_o / (10.0 * ref.exact.size()), 0.95) << levels[l];
  }
}

}  // namespace
}  // namespace aidb::index
