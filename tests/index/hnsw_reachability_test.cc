// HNSW reachability: every live node must stay reachable from the entry point
// on every level it lives on, through rounds of inserts, deletes and
// compactions. The neighbour-selection heuristic alone (hnswlib's) prunes
// away every in-link of about 1 in 40,000 new nodes; the index keeps the last
// in-link of a node when it prunes a list (CommitLinks), links a new node
// that every neighbour pruned from its nearest neighbour that can take it
// (ForceLink), and Compact re-links whatever its relinking cut off.
//
// AIDB_LONG_TESTS=1 also runs the 1M-point version (minutes; figures in
// bench/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "index/hnsw.h"
#include "sanitizers.h"
#include "test_data.h"

namespace aidb::index {
namespace {

using testing::Hnsw;

constexpr uint32_t kScale = aidbtest::kSanitized ? 8 : 1;  // sanitizer builds run 1/8 of the points

struct RoundsConfig {
  uint32_t total;          // points inserted in all
  uint32_t round;          // points inserted per round
  double delete_share;     // of the live points, removed after each round
  uint32_t compact_every;  // compact after every n-th round (0: never)
  uint32_t dim = 16;
  uint32_t m = 8;
  uint32_t efc = 48;
  uint32_t threads = 2;
};

// Inserts clustered points in rounds (a fresh cluster set per round, so new
// points land both inside and beside existing ones), removes a random share
// of the live points after each round, compacts every few rounds, and checks
// after every round that no live node is unreachable. Returns the number of
// live nodes found unreachable over all checks.
size_t RunRounds(const RoundsConfig& rc, size_t* checks_out = nullptr) {
  HnswIndex idx(Hnsw(rc.dim, Metric::kCosine, rc.m, rc.efc));
  std::mt19937 rng(1234);
  std::vector<uint32_t> live;
  size_t unreachable = 0, checks = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t done = 0, r = 0; done < rc.total; done += rc.round, ++r) {
    const uint32_t n = std::min(rc.round, rc.total - done);
    // Tight clusters with many near-duplicates: the hard case for pruning.
    std::vector<float> v =
        testing::Clustered(n, rc.dim, 50 + r % 7, 99 + r, 0.05f + 0.1f * (r % 3));
    std::vector<uint32_t> slots(n);
    EXPECT_TRUE(idx.AddBatch(v.data(), n, slots.data(), rc.threads).ok());
    live.insert(live.end(), slots.begin(), slots.end());
    std::shuffle(live.begin(), live.end(), rng);
    size_t del = static_cast<size_t>(static_cast<double>(live.size()) * rc.delete_share);
    for (size_t i = 0; i < del; ++i) idx.Remove(live[live.size() - 1 - i]);
    live.resize(live.size() - del);
    if (rc.compact_every != 0 && (r + 1) % rc.compact_every == 0) {
      EXPECT_TRUE(idx.Compact().ok());
    }
    std::vector<uint32_t> bad = idx.UnreachableSlots();
    ++checks;
    unreachable += bad.size();
    EXPECT_TRUE(bad.empty()) << bad.size() << " unreachable live nodes after round " << r
                             << " (first: slot " << (bad.empty() ? 0 : bad[0]) << ")";
    EXPECT_EQ(idx.Size(), live.size());
  }
  if (std::getenv("AIDB_REACH_VERBOSE") != nullptr)
    std::fprintf(stderr, "%u points, %zu checks, %zu unreachable, %.1f s\n", rc.total, checks,
                 unreachable,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (checks_out != nullptr) *checks_out = checks;
  return unreachable;
}

TEST(HnswReachability, InsertsAndDeletesInRoundsLeaveNoNodeUnreachable) {
  RoundsConfig rc;
  rc.total = 200000 / kScale;
  rc.round = 20000 / kScale;
  rc.delete_share = 0.3;
  rc.compact_every = 2;
  EXPECT_EQ(RunRounds(rc), 0u);
}

TEST(HnswReachability, WalkFindsEveryNodeByItsOwnVector) {
  // What the runbook checks through the C API: a search with an exhaustive
  // breadth finds each point by its own vector.
  const uint32_t dim = 16, n = 20000;
  HnswIndex idx(Hnsw(dim, Metric::kCosine, 8, 48));
  std::vector<float> v = testing::Clustered(n, dim, 40, 5, 0.05f);
  std::vector<uint32_t> slots(n);
  ASSERT_TRUE(idx.AddBatch(v.data(), n, slots.data(), 2).ok());
  EXPECT_TRUE(idx.UnreachableSlots().empty());
  SearchParams p;
  p.k = 1;
  p.ef = n;
  std::vector<Hit> got;
  int missing = 0;
  for (uint32_t i = 0; i < n; i += 97) {
    bool found = false;
    // Near-duplicates may tie at distance 0: the point must be among them.
    SearchParams all = p;
    all.k = 64;
    ASSERT_TRUE(idx.Search(v.data() + static_cast<size_t>(i) * dim, all, &got).ok());
    for (const Hit& h : got) found |= h.slot == slots[i];
    missing += !found;
  }
  EXPECT_EQ(missing, 0);
}

TEST(HnswReachability, CompactSlotReuseAndUpdatesKeepEveryNodeReachable) {
  const uint32_t dim = 16, n = 20000;
  HnswIndex idx(Hnsw(dim, Metric::kEuclidean, 6, 32));
  std::vector<float> v = testing::Clustered(n, dim, 10, 3, 0.05f);
  std::vector<uint32_t> slots(n);
  ASSERT_TRUE(idx.AddBatch(v.data(), n, slots.data(), 2).ok());
  for (uint32_t i = 0; i < n; i += 3) idx.Remove(slots[i]);
  ASSERT_TRUE(idx.Compact().ok());
  EXPECT_TRUE(idx.UnreachableSlots().empty());
  std::vector<float> w = testing::Clustered(n / 2, dim, 10, 4, 0.05f);
  ASSERT_TRUE(idx.AddBatch(w.data(), n / 2, slots.data(), 2).ok());  // reuses freed slots
  EXPECT_TRUE(idx.UnreachableSlots().empty());
  // Updates move points across the space and relink them.
  for (uint32_t i = 0; i < n / 2; i += 5)
    ASSERT_TRUE(idx.Update(slots[i], v.data() + static_cast<size_t>(n - 1 - i) * dim).ok());
  EXPECT_TRUE(idx.UnreachableSlots().empty());
}

TEST(HnswReachability, LongInsertsAndDeletesOfAMillionPoints) {
  const char* e = std::getenv("AIDB_LONG_TESTS");
  if (e == nullptr || std::string(e) != "1") GTEST_SKIP() << "set AIDB_LONG_TESTS=1";
  RoundsConfig rc;
  rc.total = 1000000;
  rc.round = 50000;
  rc.delete_share = 0.3;
  rc.compact_every = 3;
  size_t checks = 0;
  EXPECT_EQ(RunRounds(rc, &checks), 0u);
  EXPECT_EQ(checks, 20u);
}

}  // namespace
}  // namespace aidb::index
